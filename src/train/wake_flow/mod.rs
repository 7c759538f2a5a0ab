//! Solver-in-the-Loop on the 2D wake flow (Um et al. 2020; reference §A, CPU scale §C.1):
//! reference data, training of a corrector through unrolled differentiable solves, evaluation.

pub mod dataset;
pub mod eval;
pub mod hybrid;
pub mod train;

pub use dataset::{Manifest, NormStats, Split, WakeData, WakeDataConfig};
pub use train::{ModelKind, TrainConfig, TrainReport, train};
