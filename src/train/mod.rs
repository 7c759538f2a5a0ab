//! Optimisation and training loops through unrolled differentiable solves.

pub mod smoke_target;
pub mod wake_flow;
