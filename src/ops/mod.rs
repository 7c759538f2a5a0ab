//! Grid operators as Burn backend extensions.
//!
//! One trait per op family ([`AdvectionOps`], [`DiffusionOps`], [`ProjectionOps`], and
//! [`LineAdvectionOps`] and [`ControlOps`] in their own files). Each op
//! has a fused CPU kernel ([`kernels`], used by the Flex backend over raw slices, f32 and
//! f64) and a default body built from Burn tensor primitives ([`reference`]) that any backend
//! runs unchanged. On the GPU backends (features `wgpu`, `cuda`) the first three families run
//! CubeCL kernels (`cube`, one launch per op pass, deferred by Burn's fusion), the projection
//! of grids up to [`crate::linalg::DENSE_MAX_CELLS`] cells solving with a dense inverse kept on
//! the device. Tests run the default bodies on Flex and compare them with the kernels, and the
//! GPU kernels with the Flex ones (`tests/gpu.rs`, lavapipe without a GPU). The free functions
//! at the bottom are the user-facing API on `Tensor<3>`.
//!
//! Every op is differentiable: `Autodiff<B>` registers one custom backward node per op whose
//! adjoint is the `*_backward` method of the same trait. Flex runs hand-written adjoint
//! kernels ([`kernels::adjoint`]); other backends run default bodies that differentiate the
//! default forward bodies with Burn's own autodiff ([`reference::vjp`]), except the
//! projection, whose adjoint is always one solve with the forward operator (never a
//! backpropagation through solver iterations).
//!
//! Shapes: `u: [B, ny, nx+1]`, `v: [B, ny+1, nx]`, scalars and pressure `[B, ny, nx]`.

mod autodiff;
mod control;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cube;
mod flex;
pub(crate) use flex::{contiguous, data, with_float};
pub mod kernels;
mod line;
pub mod multigrid;
pub mod reference;
pub mod solve;
mod systems;

pub use control::{ControlOps, DensityLoss, density_loss, staggered_curl};
pub use line::{LineAdvectionOps, advect_line, line_spec};

pub use systems::{DeviceCache, ImplicitDiffusion, PressureProjection};

use crate::grid::ArraySpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Advection scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdvectScheme {
    /// First-order semi-Lagrangian with bilinear interpolation.
    #[default]
    SemiLagrangian,
    /// MacCormack (forward + backward semi-Lagrangian) with the min/max limiter.
    MacCormack,
}

/// Everything an advection needs besides its tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdvectSpec {
    /// The advected array (any location).
    pub q: ArraySpec,
    /// The x-velocity array.
    pub u: ArraySpec,
    /// The y-velocity array.
    pub v: ArraySpec,
    /// `dt / dx` (time step over cell size).
    pub dt_dx: f64,
    /// Scheme.
    pub scheme: AdvectScheme,
}

/// Advection of one array by a staggered velocity.
#[backend_extension(
    Flex,
    Autodiff,
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Fusion: cfg(any(feature = "wgpu", feature = "cuda"))
)]
pub trait AdvectionOps: Backend {
    /// Advects `q: [B, qy, qx]` (centred or staggered, per `spec.q`) by `(u, v)` over one step.
    #[fusion(dtype = q, shape = q)]
    fn advect(
        q: FloatTensor<Self>,
        u: FloatTensor<Self>,
        v: FloatTensor<Self>,
        spec: AdvectSpec,
    ) -> FloatTensor<Self> {
        reference::advect::<Self>(q, u, v, &spec)
    }
    /// Adjoint of [`AdvectionOps::advect`]: `(q̄, ū, v̄)` from the output gradient `grad`.
    #[fusion(meta = |q, u, v, _grad, _spec| (q.clone(), u.clone(), v.clone()))]
    fn advect_backward(
        q: FloatTensor<Self>,
        u: FloatTensor<Self>,
        v: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        spec: AdvectSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [gq, gu, gv] = reference::vjp::<Self, 3, 1>([q, u, v], [grad], |[q, u, v]| {
            [reference::advect::<Autodiff<Self>>(q, u, v, &spec)]
        });
        (gq, gu, gv)
    }
}

/// Diffusion of one array.
#[backend_extension(
    Flex,
    Autodiff,
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Fusion: cfg(any(feature = "wgpu", feature = "cuda"))
)]
pub trait DiffusionOps: Backend {
    /// One explicit step `q + α·Lap₅(q)` with `α = ν·dt/dx²` (cell units), `q: [B, qy, qx]`.
    #[fusion(dtype = q, shape = q)]
    fn diffuse_explicit(q: FloatTensor<Self>, spec: ArraySpec, alpha: f64) -> FloatTensor<Self> {
        reference::diffuse_explicit::<Self>(q, &spec, alpha)
    }
    /// Adjoint of [`DiffusionOps::diffuse_explicit`] (a linear op: no inputs needed).
    #[fusion(dtype = grad, shape = grad)]
    fn diffuse_explicit_backward(
        grad: FloatTensor<Self>,
        spec: ArraySpec,
        alpha: f64,
    ) -> FloatTensor<Self> {
        let q = reference::Ft::<Self>::zeros(&grad.shape().to_vec(), &grad).0;
        let [gq] = reference::vjp::<Self, 1, 1>([q], [grad], |[q]| {
            [reference::diffuse_explicit::<Autodiff<Self>>(
                q, &spec, alpha,
            )]
        });
        gq
    }
    /// One implicit (backward Euler) step: solves `(I − α·Lap₅) q' = q`. The default body
    /// solves with the operator's dense inverse where it has one, else iteratively
    /// ([`reference::diffuse_implicit`]).
    #[fusion(default)]
    fn diffuse_implicit(q: FloatTensor<Self>, op: Arc<ImplicitDiffusion>) -> FloatTensor<Self> {
        match recorded_dense(op.dense(), &op.solver, q.shape()[0]) {
            Some(dense) => reference::diffuse_implicit_dense::<Self>(q, &op, dense),
            None => reference::diffuse_implicit::<Self>(q, &op),
        }
    }
    /// Adjoint of [`DiffusionOps::diffuse_implicit`]: one solve with the same (symmetric)
    /// operator; a failed solve is recorded on its solver and makes the gradient NaN.
    #[fusion(default)]
    fn diffuse_implicit_backward(
        grad: FloatTensor<Self>,
        op: Arc<ImplicitDiffusion>,
    ) -> FloatTensor<Self> {
        match recorded_dense(op.dense(), &op.solver, grad.shape()[0]) {
            Some(dense) => reference::diffuse_implicit_dense_adjoint::<Self>(grad, &op, dense),
            None => reference::diffuse_implicit_adjoint::<Self>(grad, &op),
        }
    }
}

/// Divergence and pressure projection on the MAC grid.
#[backend_extension(
    Flex,
    Autodiff,
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Fusion: cfg(any(feature = "wgpu", feature = "cuda"))
)]
pub trait ProjectionOps: Backend {
    /// Discrete divergence `[B, ny, nx]` of `(u, v)` (domain units).
    #[fusion(dtype = u, shape = cube::meta::cells_of_u(u))]
    fn divergence(u: FloatTensor<Self>, v: FloatTensor<Self>, dx: f64) -> FloatTensor<Self> {
        reference::divergence::<Self>(u, v, dx)
    }
    /// Adjoint of [`ProjectionOps::divergence`]: `(ū, v̄)` from `grad: [B, ny, nx]`.
    #[fusion(meta = |g, _dx| cube::meta::faces_of(g))]
    fn divergence_backward(
        grad: FloatTensor<Self>,
        dx: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [b, ny, nx] = grad.shape().dims();
        let u = reference::Ft::<Self>::zeros(&[b, ny, nx + 1], &grad).0;
        let v = reference::Ft::<Self>::zeros(&[b, ny + 1, nx], &grad).0;
        let [gu, gv] = reference::vjp::<Self, 2, 1>([u, v], [grad], |[u, v]| {
            [reference::divergence::<Autodiff<Self>>(u, v, dx)]
        });
        (gu, gv)
    }
    /// Gradient `(∂p/∂x on x-faces [B, ny, nx+1], ∂p/∂y on y-faces [B, ny+1, nx])` of a
    /// cell-centred `p: [B, ny, nx]`, continued beyond the edges as `spec` says (see
    /// [`crate::grid::Boundaries::pressure_extrap`]); `dx` is the cell size.
    #[fusion(meta = |p, _spec, _dx| cube::meta::faces_of(p))]
    fn gradient(
        p: FloatTensor<Self>,
        spec: ArraySpec,
        dx: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        reference::gradient::<Self>(p, &spec, dx)
    }
    /// Adjoint of [`ProjectionOps::gradient`]: `p̄` from the face gradients `(gu, gv)`.
    #[fusion(dtype = gu, shape = cube::meta::cells_of_u(gu))]
    fn gradient_backward(
        gu: FloatTensor<Self>,
        gv: FloatTensor<Self>,
        spec: ArraySpec,
        dx: f64,
    ) -> FloatTensor<Self> {
        let p = reference::Ft::<Self>::zeros(&[gu.shape()[0], spec.ny, spec.nx], &gu).0;
        let [gp] = reference::vjp::<Self, 1, 2>([p], [gu, gv], |[p]| {
            let (u, v) = reference::gradient::<Autodiff<Self>>(p, &spec, dx);
            [u, v]
        });
        gp
    }
    /// Makes `(u, v)` discretely divergence-free in every fluid cell; returns `(u, v, p)` where
    /// `u_out = u_constrained − ∇p`. Solver failures are recorded in `proj` (see
    /// [`PressureProjection::take_outcome`]). The default body solves with the dense inverse
    /// ([`ProjectionOps::project_dense`]) where the grid has one, else iteratively
    /// ([`reference::project`]).
    #[fusion(default)]
    fn project(
        u: FloatTensor<Self>,
        v: FloatTensor<Self>,
        proj: Arc<PressureProjection>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match recorded_dense(proj.dense(), &proj.solver, u.shape()[0]) {
            Some(_) => Self::project_dense(u, v, proj),
            None => reference::project::<Self>(u, v, &proj),
        }
    }
    /// [`ProjectionOps::project`] with the solve as one product with `proj`'s dense inverse
    /// (which must exist: [`PressureProjection::dense`]).
    #[fusion(meta = |u, v, _proj| cube::meta::projected(u, v))]
    fn project_dense(
        u: FloatTensor<Self>,
        v: FloatTensor<Self>,
        proj: Arc<PressureProjection>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        reference::project_dense::<Self>(u, v, &proj)
    }
    /// Adjoint of [`ProjectionOps::project`] (affine in `(u, v)`: no inputs needed): `(ū, v̄)`
    /// from the gradients of the returned `(u, v, p)`, with one solve by
    /// [`PressureProjection::adjoint_solver`] (the operator is symmetric; a Cholesky factor is
    /// reused, not recomputed). A failed solve is recorded on that solver and makes the
    /// gradients NaN.
    #[fusion(default)]
    fn project_backward(
        gu: FloatTensor<Self>,
        gv: FloatTensor<Self>,
        gp: FloatTensor<Self>,
        proj: Arc<PressureProjection>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        match recorded_dense(proj.dense(), proj.adjoint_solver(), gu.shape()[0]) {
            Some(_) => Self::project_dense_backward(gu, gv, gp, proj),
            None => reference::project_adjoint::<Self>(gu, gv, gp, &proj),
        }
    }
    /// Adjoint of [`ProjectionOps::project_dense`]: one product with the transposed dense
    /// inverse.
    #[fusion(meta = |gu, gv, _gp, _proj| (gu.clone(), gv.clone()))]
    fn project_dense_backward(
        gu: FloatTensor<Self>,
        gv: FloatTensor<Self>,
        gp: FloatTensor<Self>,
        proj: Arc<PressureProjection>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        reference::project_dense_adjoint::<Self>(gu, gv, gp, &proj)
    }
}

/// `dense`, after recording on `solver` what a solve of `batch` items with it reports (no
/// iterations, the inverse's relative residual measured when it was built); None where the
/// system has no dense inverse (nothing recorded: the iterative solve records its own).
fn recorded_dense<'a>(
    dense: Option<&'a crate::linalg::DenseInverse>,
    solver: &crate::linalg::LinearSolver,
    batch: usize,
) -> Option<&'a crate::linalg::DenseInverse> {
    let dense = dense?;
    solver.record(Ok(crate::linalg::SolveInfo {
        method: crate::linalg::SolveMethod::DenseInverse,
        iterations: 0,
        residual: dense.residual,
        batch,
    }));
    Some(dense)
}

/// Batch size of a `[B, ny, nx]` tensor (shape `sh`) whose items have the shape of `s`,
/// checked.
#[track_caller]
fn batch_of(sh: &burn::tensor::Shape, s: &ArraySpec, name: &str) -> usize {
    assert!(
        sh.num_dims() == 3 && sh[1] == s.ny && sh[2] == s.nx,
        "{name}: expected shape [B, {}, {}], got {sh:?}",
        s.ny,
        s.nx
    );
    sh[0]
}

/// Batch size of an advection's `q`, `u`, `v` (shapes), checked against `spec` and each other.
#[track_caller]
fn advect_batch([q, u, v]: [&burn::tensor::Shape; 3], spec: &AdvectSpec, name: &str) -> usize {
    let b = batch_of(q, &spec.q, &format!("{name} q"));
    assert_eq!(
        batch_of(u, &spec.u, &format!("{name} u")),
        b,
        "{name}: batch of u"
    );
    assert_eq!(
        batch_of(v, &spec.v, &format!("{name} v")),
        b,
        "{name}: batch of v"
    );
    b
}

/// Advects `q` by the staggered velocity `(u, v)`; see [`AdvectionOps::advect`].
pub fn advect(q: Tensor<3>, u: Tensor<3>, v: Tensor<3>, spec: AdvectSpec) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as AdvectionOps>::advect(
        q.into_dispatch(),
        u.into_dispatch(),
        v.into_dispatch(),
        spec,
    ))
}

/// One explicit diffusion step; see [`DiffusionOps::diffuse_explicit`].
pub fn diffuse_explicit(q: Tensor<3>, spec: ArraySpec, alpha: f64) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as DiffusionOps>::diffuse_explicit(
        q.into_dispatch(),
        spec,
        alpha,
    ))
}

/// One implicit diffusion step; see [`DiffusionOps::diffuse_implicit`].
pub fn diffuse_implicit(q: Tensor<3>, op: &Arc<ImplicitDiffusion>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as DiffusionOps>::diffuse_implicit(
        q.into_dispatch(),
        op.clone(),
    ))
}

/// Divergence of `(u, v)`; see [`ProjectionOps::divergence`].
pub fn divergence(u: Tensor<3>, v: Tensor<3>, dx: f64) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as ProjectionOps>::divergence(
        u.into_dispatch(),
        v.into_dispatch(),
        dx,
    ))
}

/// Gradient of a cell-centred field on the MAC faces; see [`ProjectionOps::gradient`].
pub fn gradient(p: Tensor<3>, spec: ArraySpec, dx: f64) -> (Tensor<3>, Tensor<3>) {
    let (gu, gv) = <Dispatch as ProjectionOps>::gradient(p.into_dispatch(), spec, dx);
    (Tensor::from_dispatch(gu), Tensor::from_dispatch(gv))
}

/// Pressure projection; returns `(u, v, p)`. See [`ProjectionOps::project`].
pub fn project(
    u: Tensor<3>,
    v: Tensor<3>,
    proj: &Arc<PressureProjection>,
) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
    let (u, v, p) =
        <Dispatch as ProjectionOps>::project(u.into_dispatch(), v.into_dispatch(), proj.clone());
    (
        Tensor::from_dispatch(u),
        Tensor::from_dispatch(v),
        Tensor::from_dispatch(p),
    )
}
