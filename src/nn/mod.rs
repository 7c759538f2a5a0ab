//! Burn modules (`XConfig` + `X` pairs): the Solver-in-the-Loop ResNet corrector, the 1D
//! U-Net of the Burgers control study, and the
//! 'same' convolution op it runs on (its own backward node, see [`conv`]).

pub mod conv;
mod conv_flex;
mod corrector;
pub mod line_conv;
mod line_conv_flex;
mod unet1d;

pub use conv::{ConvOps, conv_same};
pub use corrector::{Corrector, CorrectorConfig, ResBlock};
pub use line_conv::{Activation, LineConvOps, LineConvSpec, line_conv};
pub use unet1d::{CastParams, FreshParams, ResBlock1d, UNet1d, UNet1dConfig, upsample2x};
