//! Optimisation and training loops through unrolled differentiable solves.

pub mod smoke_target;
