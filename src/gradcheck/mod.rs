//! Gradient checks: the finite-difference checker ([`checker`]) and the registry of every
//! differentiable op's and unroll's check ([`registry`]), which `diffsim gradcheck` and the
//! tests run.

mod articulation;
mod burgers;
pub mod checker;
mod coupled;
mod flow_control;
pub mod registry;
mod rigid;

pub use checker::{
    GradCheckConfig, GradCheckReport, Probe, check, check_flat, smooth_direction, tensor_f64,
    values,
};
pub use registry::{CHECKS, kinetic_loss, run_gradchecks};
