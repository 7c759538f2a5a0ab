//! Default bodies of the grid ops, written with Burn tensor primitives only, so that every
//! backend (wgpu, CUDA, Flex) runs them unchanged. They compute the same discretisation as
//! the fused CPU kernels in [`super::kernels`]; tests compare the two on Flex.
//!
//! Sampling pads an array with one ghost layer built from its extrapolation, maps the
//! interpolation indices into the padded array (clamped to the ghost layer, or wrapped on
//! periodic axes) and gathers. The Poisson solves are in [`super::solve`] (iterative) and
//! [`dense_product`] (dense inverse).

use super::solve::solve_iterative;
use super::{AdvectScheme, AdvectSpec, DeviceCache, ImplicitDiffusion, PressureProjection};
use crate::grid::{ArraySpec, Extrap};
use crate::linalg::poisson::FaceRule;
use crate::linalg::{DenseInverse, PoissonSystem};
use burn::backend::autodiff::Autodiff;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, TensorMetadata};
use burn::tensor::{FloatDType, IntDType, Shape, Slice, TensorData};
use std::ops::{Add, Mul, Neg, Sub};

/// A float tensor primitive of backend `B` with arithmetic operators.
#[derive(Clone, Debug)]
pub struct Ft<B: Backend>(pub FloatTensor<B>);

impl<B: Backend> Add for Ft<B> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Ft(B::float_add(self.0, o.0))
    }
}
impl<B: Backend> Sub for Ft<B> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Ft(B::float_sub(self.0, o.0))
    }
}
impl<B: Backend> Mul for Ft<B> {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Ft(B::float_mul(self.0, o.0))
    }
}
impl<B: Backend> Mul<f64> for Ft<B> {
    type Output = Self;
    fn mul(self, s: f64) -> Self {
        Ft(B::float_mul_scalar(self.0, s.into()))
    }
}
impl<B: Backend> Add<f64> for Ft<B> {
    type Output = Self;
    fn add(self, s: f64) -> Self {
        Ft(B::float_add_scalar(self.0, s.into()))
    }
}
impl<B: Backend> Neg for Ft<B> {
    type Output = Self;
    fn neg(self) -> Self {
        Ft(B::float_neg(self.0))
    }
}

impl<B: Backend> Ft<B> {
    /// Shape.
    pub fn dims(&self) -> Vec<usize> {
        self.0.shape().to_vec()
    }
    /// `[start, end)` along `dim`.
    pub fn narrow(self, dim: usize, start: usize, end: usize) -> Self {
        let mut s: Vec<Slice> = vec![Slice::full(); self.dims().len()];
        s[dim] = Slice::new(start as isize, Some(end as isize), 1);
        Ft(B::float_slice(self.0, &s))
    }
    /// Concatenation along `dim`.
    pub fn cat(parts: Vec<Self>, dim: usize) -> Self {
        Ft(B::float_cat(parts.into_iter().map(|t| t.0).collect(), dim))
    }
    /// Elementwise floor.
    pub fn floor(self) -> Self {
        Ft(B::float_floor(self.0))
    }
    /// Elementwise absolute value.
    pub fn abs(self) -> Self {
        Ft(B::float_abs(self.0))
    }
    /// Elementwise clamp to `[lo, hi]`.
    pub fn clamp(self, lo: f64, hi: f64) -> Self {
        Ft(B::float_clamp(self.0, lo.into(), hi.into()))
    }
    /// Euclidean remainder modulo `p` (result in `[0, p)` for integer-valued input).
    pub fn rem_euclid(self, p: f64) -> Self {
        let r = Ft::<B>(B::float_remainder_scalar(self.0, p.into()));
        Ft(B::float_remainder_scalar((r + p).0, p.into()))
    }
    /// Elementwise maximum.
    pub fn max(self, o: Self) -> Self {
        (self.clone() + o.clone() + (self - o).abs()) * 0.5
    }
    /// Elementwise minimum.
    pub fn min(self, o: Self) -> Self {
        (self.clone() + o.clone() - (self - o).abs()) * 0.5
    }
    /// Reshape.
    pub fn reshape(self, dims: &[usize]) -> Self {
        Ft(B::float_reshape(self.0, Shape::from(dims.to_vec())))
    }
    /// Sum over all but the first dimension, keeping them as size 1: `[B, ..] -> [B, 1, ..]`.
    pub fn sum_items(self) -> Self {
        let nd = self.dims().len();
        Ft(B::float_sum_dims(self.0, &(1..nd).collect::<Vec<_>>()))
    }
    /// Largest absolute value, read back to the host.
    pub fn max_abs_host(self) -> f64 {
        let data = pollster::block_on(B::float_into_data(B::float_max_abs(self.0)))
            .expect("read back a scalar");
        data.convert::<f64>().try_to_vec::<f64>().expect("f64 data")[0]
    }
    /// A tensor with the host values `data` (shape `dims`), on the device and dtype of `like`.
    pub fn from_host(data: Vec<f64>, dims: &[usize], like: &FloatTensor<B>) -> Self {
        let t = B::float_from_data(TensorData::new(data, dims.to_vec()), &like.device());
        Ft(B::float_cast(t, FloatDType::from(like.dtype())))
    }
    /// Zeros of shape `dims` like `like`.
    pub fn zeros(dims: &[usize], like: &FloatTensor<B>) -> Self {
        Ft(B::float_zeros(
            Shape::from(dims.to_vec()),
            &like.device(),
            FloatDType::from(like.dtype()),
        ))
    }
    /// A constant of shape `dims` like `like`.
    pub fn full(dims: &[usize], value: f64, like: &FloatTensor<B>) -> Self {
        Ft(B::float_full(
            Shape::from(dims.to_vec()),
            value.into(),
            &like.device(),
            FloatDType::from(like.dtype()),
        ))
    }
}

/// One ghost column/row beyond edge `side` of `q` along `dim` (2 = x, 1 = y).
fn ghost<B: Backend>(
    q: &Ft<B>,
    dim: usize,
    n: usize,
    period: usize,
    rule: Extrap,
    high: bool,
) -> Ft<B> {
    match rule {
        Extrap::ZeroGradient => {
            let k = if high { n - 1 } else { 0 };
            q.clone().narrow(dim, k, k + 1)
        }
        Extrap::Periodic => {
            let k = if high { n % period } else { period - 1 };
            q.clone().narrow(dim, k, k + 1)
        }
        Extrap::Value(c) => {
            let mut d = q.dims();
            d[dim] = 1;
            Ft::full(&d, c, &q.0)
        }
    }
}

/// `q: [B, ny, nx]` padded with one ghost layer: `[B, ny+2, nx+2]` (x first, then y).
pub fn pad<B: Backend>(q: Ft<B>, s: &ArraySpec) -> Ft<B> {
    let (l, r) = (
        ghost(&q, 2, s.nx, s.period_x, s.ext[0], false),
        ghost(&q, 2, s.nx, s.period_x, s.ext[1], true),
    );
    let qx = Ft::cat(vec![l, q, r], 2);
    let (b, t) = (
        ghost(&qx, 1, s.ny, s.period_y, s.ext[2], false),
        ghost(&qx, 1, s.ny, s.period_y, s.ext[3], true),
    );
    Ft::cat(vec![b, qx, t], 1)
}

/// Index of padded column/row for integer-valued positions `k` along an axis of `n` elements.
fn padded_index<B: Backend>(k: Ft<B>, n: usize, period: usize, periodic: bool) -> Ft<B> {
    let k = if periodic {
        k.rem_euclid(period as f64)
    } else {
        k.clamp(-1.0, n as f64)
    };
    k + 1.0
}

/// Bilinear samples of the padded, flattened array `qp: [B, (ny+2)(nx+2)]` at fractional
/// positions `(px, py)` (cells from the origin), `[B, M]` each; returns the value and the
/// four stencil values.
fn sample4<B: Backend>(qp: &Ft<B>, s: &ArraySpec, px: Ft<B>, py: Ft<B>) -> (Ft<B>, [Ft<B>; 4]) {
    let fx = px + (-s.ox);
    let fy = py + (-s.oy);
    let (x0, y0) = (fx.clone().floor(), fy.clone().floor());
    let (tx, ty) = (fx - x0.clone(), fy - y0.clone());
    let (px_, py_) = (s.ext[0] == Extrap::Periodic, s.ext[2] == Extrap::Periodic);
    let ix = [
        padded_index(x0.clone(), s.nx, s.period_x, px_),
        padded_index(x0 + 1.0, s.nx, s.period_x, px_),
    ];
    let iy = [
        padded_index(y0.clone(), s.ny, s.period_y, py_),
        padded_index(y0 + 1.0, s.ny, s.period_y, py_),
    ];
    let w = (s.nx + 2) as f64;
    let gather = |iy: &Ft<B>, ix: &Ft<B>| {
        let flat = iy.clone() * w + ix.clone();
        Ft(B::float_gather(
            1,
            qp.0.clone(),
            B::float_into_int(flat.0, IntDType::I64),
        ))
    };
    let q = [
        gather(&iy[0], &ix[0]),
        gather(&iy[0], &ix[1]),
        gather(&iy[1], &ix[0]),
        gather(&iy[1], &ix[1]),
    ];
    let one_tx = -tx.clone() + 1.0;
    let one_ty = -ty.clone() + 1.0;
    let v = one_ty * (one_tx.clone() * q[0].clone() + tx.clone() * q[1].clone())
        + ty * (one_tx * q[2].clone() + tx * q[3].clone());
    (v, q)
}

/// Flattened, padded copy of a `[B, ny, nx]` array: `[B, (ny+2)(nx+2)]`.
fn padded_flat<B: Backend>(q: Ft<B>, s: &ArraySpec) -> Ft<B> {
    let b = q.dims()[0];
    pad(q, s).reshape(&[b, (s.ny + 2) * (s.nx + 2)])
}

/// Positions `(px, py)` of the elements of `s`, `[batch, ny*nx]` each.
fn positions<B: Backend>(s: &ArraySpec, batch: usize, like: &FloatTensor<B>) -> (Ft<B>, Ft<B>) {
    let px = (0..s.ny)
        .flat_map(|_| (0..s.nx).map(|i| i as f64 + s.ox))
        .collect();
    let py = (0..s.ny)
        .flat_map(|j| (0..s.nx).map(move |_| j as f64 + s.oy))
        .collect();
    let rep = |t: Ft<B>| Ft(B::float_repeat_dim(t.0, 0, batch));
    (
        rep(Ft::from_host(px, &[1, s.len()], like)),
        rep(Ft::from_host(py, &[1, s.len()], like)),
    )
}

/// Default body of [`super::AdvectionOps::advect`].
pub fn advect<B: Backend>(
    q: FloatTensor<B>,
    u: FloatTensor<B>,
    v: FloatTensor<B>,
    spec: &AdvectSpec,
) -> FloatTensor<B> {
    let b = q.shape()[0];
    let (sq, su, sv) = (&spec.q, &spec.u, &spec.v);
    let (px, py) = positions::<B>(sq, b, &q);
    let (up, vp) = (padded_flat(Ft(u), su), padded_flat(Ft(v), sv));
    let vx = sample4(&up, su, px.clone(), py.clone()).0;
    let vy = sample4(&vp, sv, px.clone(), py.clone()).0;
    let q = Ft(q);
    let qp = padded_flat(q.clone(), sq);
    let s = spec.dt_dx;
    let (fwd, st) = sample4(
        &qp,
        sq,
        px.clone() - vx.clone() * s,
        py.clone() - vy.clone() * s,
    );
    let out = match spec.scheme {
        AdvectScheme::SemiLagrangian => fwd,
        AdvectScheme::MacCormack => {
            let fwd_p = padded_flat(fwd.clone().reshape(&[b, sq.ny, sq.nx]), sq);
            let back = sample4(&fwd_p, sq, px + vx * s, py + vy * s).0;
            let q_flat = q.reshape(&[b, sq.len()]);
            let corrected = fwd + (q_flat - back) * 0.5;
            let [a, bb, c, d] = st;
            let lo = a.clone().min(bb.clone()).min(c.clone()).min(d.clone());
            let hi = a.max(bb).max(c).max(d);
            corrected.max(lo).min(hi)
        }
    };
    out.reshape(&[b, sq.ny, sq.nx]).0
}

/// Default body of [`super::LineAdvectionOps::advect_line`]: `q: [B, 1, N]` sampled at
/// `i − (dt/dx)·u[i]` with the padded bilinear sampling of [`advect`].
pub fn advect_line<B: Backend>(
    q: FloatTensor<B>,
    u: FloatTensor<B>,
    s: &ArraySpec,
    dt_dx: f64,
) -> FloatTensor<B> {
    let b = q.shape()[0];
    let (px, py) = positions::<B>(s, b, &q);
    let qp = padded_flat(Ft(q), s);
    let u = Ft::<B>(u).reshape(&[b, s.len()]);
    sample4(&qp, s, px - u * dt_dx, py)
        .0
        .reshape(&[b, s.ny, s.nx])
        .0
}

/// Default body of [`super::DiffusionOps::diffuse_explicit`].
pub fn diffuse_explicit<B: Backend>(
    q: FloatTensor<B>,
    s: &ArraySpec,
    alpha: f64,
) -> FloatTensor<B> {
    let q = Ft::<B>(q);
    let p = pad(q.clone(), s);
    let inner_y = p.clone().narrow(1, 1, s.ny + 1);
    let inner_x = p.narrow(2, 1, s.nx + 1);
    let lap = inner_y.clone().narrow(2, 0, s.nx)
        + inner_y.narrow(2, 2, s.nx + 2)
        + inner_x.clone().narrow(1, 0, s.ny)
        + inner_x.narrow(1, 2, s.ny + 2)
        - q.clone() * 4.0;
    (q + lap * alpha).0
}

/// Default body of [`super::ProjectionOps::divergence`].
pub fn divergence<B: Backend>(u: FloatTensor<B>, v: FloatTensor<B>, dx: f64) -> FloatTensor<B> {
    (flux(Ft::<B>(u), Ft(v)) * (1.0 / dx)).0
}

/// Default body of [`super::ProjectionOps::gradient`].
pub fn gradient<B: Backend>(
    p: FloatTensor<B>,
    s: &ArraySpec,
    dx: f64,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let (nx, ny) = (s.nx, s.ny);
    let pp = pad(Ft::<B>(p), s);
    let rows = pp.clone().narrow(1, 1, ny + 1);
    let cols = pp.narrow(2, 1, nx + 1);
    let gu = (rows.clone().narrow(2, 1, nx + 2) - rows.narrow(2, 0, nx + 1)) * (1.0 / dx);
    let gv = (cols.clone().narrow(1, 1, ny + 2) - cols.narrow(1, 0, ny + 1)) * (1.0 / dx);
    (gu.0, gv.0)
}

/// Net outflow `u[i+1] − u[i] + v[j+1] − v[j]` per cell (velocity units), `[B, ny, nx]`.
fn flux<B: Backend>(u: Ft<B>, v: Ft<B>) -> Ft<B> {
    let (nx1, ny1) = (u.dims()[2], v.dims()[1]);
    u.clone().narrow(2, 1, nx1) - u.narrow(2, 0, nx1 - 1) + v.clone().narrow(1, 1, ny1)
        - v.narrow(1, 0, ny1 - 1)
}

/// Per-face masks of one rule set as `(keep: not fixed, fixed values, open)`, `[1, ..dims]`.
fn face_masks<B: Backend>(
    rules: &[FaceRule],
    dims: &[usize],
    like: &FloatTensor<B>,
) -> (Ft<B>, Ft<B>, Ft<B>) {
    let mask = |f: &dyn Fn(&FaceRule) -> f64| {
        Ft::<B>::from_host(rules.iter().map(f).collect(), dims, like)
    };
    (
        mask(&|r| {
            if matches!(r, FaceRule::Fixed(_)) {
                0.0
            } else {
                1.0
            }
        }),
        mask(&|r| if let FaceRule::Fixed(x) = r { *x } else { 0.0 }),
        mask(&|r| if *r == FaceRule::Open { 1.0 } else { 0.0 }),
    )
}

/// The affine first half of the projection: constrained faces `(u_c, v_c)` and the Poisson
/// right-hand side `−dx·div(u_c)` (0 in solids, mean-free on floating regions).
pub fn constrain_and_rhs<B: Backend>(
    u: FloatTensor<B>,
    v: FloatTensor<B>,
    sys: &PoissonSystem,
) -> (Ft<B>, Ft<B>, Ft<B>) {
    let (nx, ny, dx) = (sys.grid.nx, sys.grid.ny, sys.grid.dx);
    let (u_keep, u_fixed, _) = face_masks(&sys.u_faces, &[1, ny, nx + 1], &u);
    let (v_keep, v_fixed, _) = face_masks(&sys.v_faces, &[1, ny + 1, nx], &v);
    let mut u = Ft(u) * u_keep + u_fixed;
    let mut v = Ft(v) * v_keep + v_fixed;
    let periodic = sys.stencil.periodic;
    if periodic[0] {
        u = Ft::cat(vec![u.clone().narrow(2, 0, nx), u.narrow(2, 0, 1)], 2);
    }
    if periodic[1] {
        v = Ft::cat(vec![v.clone().narrow(1, 0, ny), v.narrow(1, 0, 1)], 1);
    }
    let fluid = Ft::<B>::from_host(
        sys.solid
            .iter()
            .map(|&s| if s { 0.0 } else { 1.0 })
            .collect(),
        &[1, ny, nx],
        &u.0,
    );
    let mut rhs = flux(u.clone(), v.clone()) * fluid * (-dx);
    for region in &sys.floating {
        let mut m = vec![0.0; nx * ny];
        region.iter().for_each(|&c| m[c as usize] = 1.0);
        let m = Ft::<B>::from_host(m, &[1, ny, nx], &u.0);
        let mean = (rhs.clone() * m.clone()).sum_items() * (1.0 / region.len() as f64);
        rhs = rhs - mean * m;
    }
    (u, v, rhs)
}

/// The linear second half of the projection: the correction `(∇p on open faces)` that is
/// subtracted from the constrained velocity (`p = 0` beyond open sides, wrapped on periodic
/// ones).
pub fn open_gradient<B: Backend>(p: FloatTensor<B>, sys: &PoissonSystem) -> (Ft<B>, Ft<B>) {
    let (nx, ny, dx) = (sys.grid.nx, sys.grid.ny, sys.grid.dx);
    let p = Ft::<B>(p);
    let (_, _, u_open) = face_masks(&sys.u_faces, &[1, ny, nx + 1], &p.0);
    let (_, _, v_open) = face_masks(&sys.v_faces, &[1, ny + 1, nx], &p.0);
    let periodic = sys.stencil.periodic;
    let b = p.dims()[0];
    let edge = |p: &Ft<B>, dim: usize, k: usize, wrap: bool| {
        if wrap {
            p.clone().narrow(dim, k, k + 1)
        } else {
            let mut d = vec![b, ny, nx];
            d[dim] = 1;
            Ft::zeros(&d, &p.0)
        }
    };
    let px = Ft::cat(
        vec![
            edge(&p, 2, nx - 1, periodic[0]),
            p.clone(),
            edge(&p, 2, 0, periodic[0]),
        ],
        2,
    );
    let py = Ft::cat(
        vec![
            edge(&p, 1, ny - 1, periodic[1]),
            p.clone(),
            edge(&p, 1, 0, periodic[1]),
        ],
        1,
    );
    let gu = (px.clone().narrow(2, 1, nx + 2) - px.narrow(2, 0, nx + 1)) * (1.0 / dx);
    let gv = (py.clone().narrow(1, 1, ny + 2) - py.narrow(1, 0, ny + 1)) * (1.0 / dx);
    (gu * u_open, gv * v_open)
}

/// Default body of [`super::ProjectionOps::project`] (iterative solve, outcome recorded).
pub fn project<B: Backend>(
    u: FloatTensor<B>,
    v: FloatTensor<B>,
    proj: &PressureProjection,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    project_with::<B>(u, v, &proj.system, |rhs| {
        solve_iterative::<B>(rhs, &proj.solver, || proj.multigrid()).0
    })
}

/// Default body of [`super::ProjectionOps::project_dense`]: the solve as one product with the
/// dense inverse (uploaded on every call; GPU backends keep it on the device).
pub fn project_dense<B: Backend>(
    u: FloatTensor<B>,
    v: FloatTensor<B>,
    proj: &PressureProjection,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let dense = proj
        .dense()
        .expect("project_dense on a grid with a dense inverse");
    project_with::<B>(u, v, &proj.system, |rhs| {
        dense_product(rhs, dense, &proj.device_data, false)
    })
}

/// The projection around a solve `rhs ↦ p` (`[B, ny, nx]` both).
fn project_with<B: Backend>(
    u: FloatTensor<B>,
    v: FloatTensor<B>,
    sys: &PoissonSystem,
    solve: impl FnOnce(Ft<B>) -> Ft<B>,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let (u, v, rhs) = constrain_and_rhs(u, v, sys);
    let p = solve(rhs);
    let (gu, gv) = open_gradient(p.0.clone(), sys);
    ((u - gu).0, (v - gv).0, p.0)
}

/// `x ↦ M·x` (or `Mᵀ·x` with `transpose`) for every item of `x: [B, ..]` (`n` values each),
/// `M` the dense inverse: one matrix product of the items as rows with `Mᵀ` (or `M`), uploaded
/// once per backend, device and dtype into `cache`.
pub fn dense_product<B: Backend>(
    x: Ft<B>,
    dense: &DenseInverse,
    cache: &DeviceCache,
    transpose: bool,
) -> Ft<B> {
    let dims = x.dims();
    let n = dense.n;
    let key = format!(
        "{:?} {:?} {:?} dense",
        std::any::TypeId::of::<B>(),
        x.0.device(),
        x.0.dtype()
    );
    let mt: FloatTensor<B> = cache.get_or_insert(key, || {
        Ft::<B>::from_host(dense.transposed.clone(), &[n, n], &x.0).0
    });
    let m = if transpose {
        B::float_transpose(mt)
    } else {
        mt
    };
    let rows = B::float_reshape(x.0, Shape::new([dims[0], n]));
    Ft(B::float_reshape(
        B::float_matmul(rows, m),
        Shape::from(dims),
    ))
}

/// Default body of [`super::ProjectionOps::project_backward`]: `p̄ = ḡp − Gᵀḡu` (Burn's
/// autodiff of [`open_gradient`]), `r̄ = A⁻¹p̄` (one CG solve with the adjoint solver's
/// configuration, outcome recorded on it), then `(ū, v̄)` = the transpose of
/// [`constrain_and_rhs`] applied to `(ḡu, ḡv, r̄)`.
pub fn project_adjoint<B: Backend>(
    gu: FloatTensor<B>,
    gv: FloatTensor<B>,
    gp: FloatTensor<B>,
    proj: &PressureProjection,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let solver = proj.adjoint_solver();
    project_adjoint_with::<B>(gu, gv, gp, &proj.system, |rhs| {
        // A failed solve is recorded on the solver and makes the gradient NaN.
        match solve_iterative::<B>(rhs, solver, || proj.multigrid()) {
            (r, true) => r,
            (r, false) => r * f64::NAN,
        }
    })
}

/// Default body of [`super::ProjectionOps::project_dense_backward`]: as [`project_adjoint`],
/// the solve a product with the transposed dense inverse.
pub fn project_dense_adjoint<B: Backend>(
    gu: FloatTensor<B>,
    gv: FloatTensor<B>,
    gp: FloatTensor<B>,
    proj: &PressureProjection,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let dense = proj
        .dense()
        .expect("project_dense_backward on a grid with a dense inverse");
    project_adjoint_with::<B>(gu, gv, gp, &proj.system, |p| {
        dense_product(p, dense, &proj.device_data, true)
    })
}

/// The projection's adjoint around an adjoint solve `p̄ ↦ r̄`.
fn project_adjoint_with<B: Backend>(
    gu: FloatTensor<B>,
    gv: FloatTensor<B>,
    gp: FloatTensor<B>,
    sys: &PoissonSystem,
    solve: impl FnOnce(Ft<B>) -> Ft<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let p0 = Ft::<B>::zeros(&gp.shape().to_vec(), &gp).0;
    let [through_u] = vjp::<B, 1, 2>([p0], [gu.clone(), gv.clone()], |[p]| {
        let (cu, cv) = open_gradient::<Autodiff<B>>(p, sys);
        [cu.0, cv.0]
    });
    let r = solve(Ft(gp) - Ft(through_u));
    let (u0, v0) = (
        Ft::<B>::zeros(&gu.shape().to_vec(), &gu).0,
        Ft::<B>::zeros(&gv.shape().to_vec(), &gv).0,
    );
    let [bu, bv] = vjp::<B, 2, 3>([u0, v0], [gu, gv, r.0], |[u, v]| {
        let (u, v, rhs) = constrain_and_rhs::<Autodiff<B>>(u, v, sys);
        [u.0, v.0, rhs.0]
    });
    (bu, bv)
}

/// The adjoint of a MacCormack advection, `(q̄, ū, v̄)` from `grad`: Burn's autodiff of
/// [`advect`] (every backend; no kernel of its own).
pub fn maccormack_adjoint<B: Backend>(
    q: FloatTensor<B>,
    u: FloatTensor<B>,
    v: FloatTensor<B>,
    grad: FloatTensor<B>,
    spec: &AdvectSpec,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let [gq, gu, gv] = vjp::<B, 3, 1>([q, u, v], [grad], |[q, u, v]| {
        [advect::<Autodiff<B>>(q, u, v, spec)]
    });
    (gq, gu, gv)
}

/// Vector-Jacobian product by Burn's autodiff: the gradients of `Σ_m ⟨grads[m], f(x)[m]⟩`
/// with respect to each input `x[n]`, where `f` is written in primitives of `Autodiff<B>`.
/// Default adjoints of the ops are this applied to their default forward bodies.
pub fn vjp<B: Backend, const N: usize, const M: usize>(
    inputs: [FloatTensor<B>; N],
    grads: [FloatTensor<B>; M],
    f: impl FnOnce([FloatTensor<Autodiff<B>>; N]) -> [FloatTensor<Autodiff<B>>; M],
) -> [FloatTensor<B>; N] {
    type Ad<B> = Autodiff<B>;
    let zeros: Vec<FloatTensor<B>> = inputs
        .iter()
        .map(|x| Ft::<B>::zeros(&x.shape().to_vec(), x).0)
        .collect();
    let xs = inputs.map(|x| Ad::<B>::float_set_require_grad(Ad::<B>::from_inner(x), true));
    let outs = f(xs.clone());
    let loss = outs
        .into_iter()
        .zip(grads)
        .map(|(o, g)| Ad::<B>::float_sum(Ad::<B>::float_mul(o, Ad::<B>::from_inner(g))))
        .reduce(Ad::<B>::float_add)
        .expect("at least one output");
    let g = Ad::<B>::backward(loss);
    let mut zeros = zeros.into_iter();
    xs.map(|x| {
        let z = zeros.next().expect("one zero per input");
        Ad::<B>::grad(&x, &g).unwrap_or(z)
    })
}

/// Default body of [`super::DiffusionOps::diffuse_implicit`].
pub fn diffuse_implicit<B: Backend>(q: FloatTensor<B>, op: &ImplicitDiffusion) -> FloatTensor<B> {
    diffuse_implicit_with::<B>(q, op, |rhs| {
        solve_iterative::<B>(rhs, &op.solver, || op.multigrid()).0
    })
}

/// [`diffuse_implicit`] with the solve as one product with the operator's dense inverse
/// (GPU backends, systems up to [`crate::linalg::DENSE_MAX_CELLS`] unknowns).
pub fn diffuse_implicit_dense<B: Backend>(
    q: FloatTensor<B>,
    op: &ImplicitDiffusion,
    dense: &DenseInverse,
) -> FloatTensor<B> {
    diffuse_implicit_with::<B>(q, op, |rhs| {
        dense_product(rhs, dense, &op.device_data, false)
    })
}

/// Implicit diffusion around a solve of the nodes' system (`[B, ny, nx]` of nodes).
fn diffuse_implicit_with<B: Backend>(
    q: FloatTensor<B>,
    op: &ImplicitDiffusion,
    solve: impl FnOnce(Ft<B>) -> Ft<B>,
) -> FloatTensor<B> {
    let s = &op.spec;
    let [nx, ny] = op.nodes;
    let nodes = Ft(q.clone()).narrow(2, 0, nx).narrow(1, 0, ny);
    let rhs = nodes + Ft::from_host(op.ghost_rhs.clone(), &[1, ny, nx], &q);
    let x = solve(rhs);
    let x = if nx < s.nx {
        Ft::cat(vec![x.clone(), x.narrow(2, 0, s.nx - nx)], 2)
    } else {
        x
    };
    let x = if ny < s.ny {
        Ft::cat(vec![x.clone(), x.narrow(1, 0, s.ny - ny)], 1)
    } else {
        x
    };
    x.0
}

/// Default body of [`super::DiffusionOps::diffuse_implicit_backward`]: the gradients of the
/// elements that copy a node (the duplicate column/row of a periodic face array) are summed
/// into it, then one CG solve with the symmetric operator (no ghost term: it is constant).
pub fn diffuse_implicit_adjoint<B: Backend>(
    g: FloatTensor<B>,
    op: &ImplicitDiffusion,
) -> FloatTensor<B> {
    diffuse_implicit_adjoint_with::<B>(g, op, |rhs| {
        solve_iterative::<B>(rhs, &op.solver, || op.multigrid()).0
    })
}

/// [`diffuse_implicit_adjoint`] with the dense inverse (symmetric: the same product).
pub fn diffuse_implicit_dense_adjoint<B: Backend>(
    g: FloatTensor<B>,
    op: &ImplicitDiffusion,
    dense: &DenseInverse,
) -> FloatTensor<B> {
    diffuse_implicit_adjoint_with::<B>(g, op, |rhs| {
        dense_product(rhs, dense, &op.device_data, true)
    })
}

/// The implicit diffusion's adjoint around an adjoint solve of the nodes' system.
fn diffuse_implicit_adjoint_with<B: Backend>(
    g: FloatTensor<B>,
    op: &ImplicitDiffusion,
    solve: impl FnOnce(Ft<B>) -> Ft<B>,
) -> FloatTensor<B> {
    let s = &op.spec;
    let [nx, ny] = op.nodes;
    let mut g = Ft::<B>(g);
    if ny < s.ny {
        let extra = g.clone().narrow(1, ny, s.ny);
        let head = g.clone().narrow(1, 0, s.ny - ny) + extra;
        g = Ft::cat(vec![head, g.narrow(1, s.ny - ny, ny)], 1);
    }
    if nx < s.nx {
        let extra = g.clone().narrow(2, nx, s.nx);
        let head = g.clone().narrow(2, 0, s.nx - nx) + extra;
        g = Ft::cat(vec![head, g.narrow(2, s.nx - nx, nx)], 2);
    }
    let x = solve(g.narrow(1, 0, ny).narrow(2, 0, nx));
    let b = x.dims()[0];
    let x = if nx < s.nx {
        Ft::cat(vec![x.clone(), Ft::zeros(&[b, ny, s.nx - nx], &x.0)], 2)
    } else {
        x
    };
    let x = if ny < s.ny {
        Ft::cat(vec![x.clone(), Ft::zeros(&[b, s.ny - ny, s.nx], &x.0)], 1)
    } else {
        x
    };
    x.0
}
