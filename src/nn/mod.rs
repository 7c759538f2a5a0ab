//! Burn modules (`XConfig` + `X` pairs): the Solver-in-the-Loop ResNet corrector.

mod corrector;

pub use corrector::{Corrector, CorrectorConfig, ResBlock};
