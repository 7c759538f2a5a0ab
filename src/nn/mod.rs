//! Burn modules (`XConfig` + `X` pairs): the Solver-in-the-Loop ResNet corrector, and the
//! 'same' convolution op it runs on (its own backward node, see [`conv`]).

pub mod conv;
mod conv_flex;
mod corrector;

pub use conv::{ConvOps, conv_same};
pub use corrector::{Corrector, CorrectorConfig, ResBlock};
