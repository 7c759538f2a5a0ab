//! # diffsim
//!
//! Differentiable simulation on Burn: MAC-grid incompressible Navier-Stokes whose grid
//! operators are Burn backend extensions (fused CPU kernels on Flex, portable tensor-op bodies
//! for GPU backends), a factor-once sparse Cholesky pressure solver, the wake-flow scenes of
//! Solver-in-the-Loop, HDF5 output readable by h5py, and pictures.
//!
//! Every grid op is a Burn custom autodiff op with a hand-written adjoint ([`ops`]), checked by
//! the finite-difference checker and the registry of checks in [`gradcheck`]; [`solids`] holds
//! mass-spring, tetrahedral FEM, cloth and contact models with explicit and implicit
//! (IFT-adjoint) integrators; [`rigid`] rigid bodies with Warp's step, backward Euler and the
//! midpoint rule, each with its adjoint; [`optim`] the optimisers (gradient descent, Adam, L-BFGS,
//! Gauss-Newton, box constraints), which know no physics; [`experiments`] one module per
//! reproduced study.
//!
//! Layers (lower never imports upper): [`grid`] ← [`linalg`] ← [`ops`] ← [`fluid`];
//! [`linalg`] ← [`solids`] ← [`rigid`]; [`cpu`] (instruction-set detection) below everything; [`error`] above [`grid`] and [`linalg`] (their errors convert into
//! it); [`burgers`] (1D Burgers) on [`ops`] beside [`fluid`]; [`nn`], [`optim`], [`io`] and
//! [`viz`] above the physics; [`control`] (learned PDE control) above [`burgers`] and [`nn`];
//! [`gradcheck`] above those; [`experiments`] above those; [`cli`] on top.

pub mod articulation;
pub mod burgers;
pub mod cli;
pub mod config;
pub mod control;
pub mod cpu;
pub mod device;
pub mod error;
pub mod experiments;
pub mod fluid;
pub mod gradcheck;
pub mod grid;
pub mod io;
pub mod linalg;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod rigid;
pub mod solids;
pub mod viz;

pub use error::{DiffsimError, Result};

/// The commonly used types.
pub mod prelude {
    pub use crate::error::{DiffsimError, Result};
    pub use crate::fluid::{FluidState, SceneConfig, Simulation};
    pub use crate::grid::{Boundaries, Geometry, Grid, Location, Resolution, SideBc};
    pub use crate::linalg::{SolveConfig, SolveInfo, SolveMethod};
    pub use crate::ops::AdvectScheme;
}
