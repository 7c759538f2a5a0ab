//! Implicit (backward) Euler by Newton's method, with an implicit-function-theorem adjoint.
//!
//! A step minimises the incremental potential
//! `Φ(x) = Σ m/(2h²)·|x − xₙ − h·vₙ|² + E(x) + Σ_s kd/(2h)·(n̂ₛ·(Δₛ(x) − Δₛ(xₙ)))² − Σ m·g·x`
//! `+ Σ_contacts [U(x_p) + w/(2h)·(n̂·(x_p − xₙ,p))² + D(x_p)] + Σ_cloth [½ΔᵀKΔ/h − f_air(xₙ, vₙ)·x]`
//! `− Σ uₙ·x`
//! (`E`: springs, stable Neo-Hookean tetrahedra, cloth membranes and bending with its rest
//! edge length; `U` the smooth contact's normal potential, `w = kd·σ(−φ/s)` and `n̂` its
//! damping weight and normal at `xₙ`: contact damping lagged like the springs'; and friction's
//! potential `D = μ·λ·h·√(|T(x − xₙ)/h|² + s²)` with the normal force `λ` and tangent
//! projector `T` at `xₙ` ([`contact::friction`]). Cloth: `K` the membrane damping (exact, `Ḟ` is linear in `v`) and
//! the area and bending damping with `∇J`, `∇θ` lagged at `xₙ`; the air force is taken at
//! `(xₙ, vₙ)`; these lagged terms are evaluated once per step; `uₙ` the step's control
//! forces, [`Model::controls`].)
//! over the free particles (`Δₛ = xᵢ − xⱼ`, `n̂ₛ` the spring direction at `xₙ`: the damping is
//! the Warp spring damping with its direction lagged one step, which keeps `Φ` a potential and
//! its Hessian symmetric). `∇Φ(xₙ₊₁) = 0` is backward Euler with `vₙ₊₁ = (xₙ₊₁ − xₙ)/h`.
//!
//! Newton uses the exact Hessian while it is positive definite and the Hessian with each
//! spring's transverse term clamped at 0 otherwise, with a backtracking line search on `Φ`; the
//! sparse Cholesky's symbolic analysis and the order that sums the element entries into the
//! pattern are computed once per model. After convergence the exact
//! Hessian `H` at `xₙ₊₁` is factorised once more; the adjoint of the step solves `H·λ = x̄ₙ₊₁ +
//!
//! Files: [`step`] (the stepper and Newton), [`adjoint`] (the IFT adjoint), [`lagged`]
//! (the terms taken at the start of a step and their derivatives), [`gauss_newton`] (dense
//! and sparse Gauss-Newton Jacobians and steps).

mod adjoint;
mod gauss_newton;
mod lagged;
mod step;

pub use gauss_newton::GnParameters;
pub(crate) use lagged::Lagged;
pub use step::{Implicit, ImplicitRollout, NewtonConfig, Scheme, StepResult};
