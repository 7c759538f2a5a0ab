//! The GPU (CubeCL: wgpu, CUDA) implementations of the grid ops: one kernel launch per op
//! pass ([`kernels`]), deferred and ordered by Burn's fusion (the `Fusion` selector of the
//! extension traits; [`meta`] gives the output shapes it needs before running them).
//!
//! Inputs are made contiguous and outputs allocated contiguous, so that CUDA's padded rows
//! never reach a kernel's linear indexing. Adjoints gather (no atomics, deterministic). Ops
//! without a kernel here run their default bodies, which fusion turns into fused tensor-op
//! kernels: the MacCormack adjoint, implicit diffusion (a product with its dense inverse up to
//! 64x128 unknowns, CG above) and the CG projection of grids above 64x128.

mod kernels;
pub mod meta;

use super::{
    AdvectScheme, AdvectSpec, AdvectionOps, DiffusionOps, PressureProjection, ProjectionOps,
    advect_batch, batch_of, reference,
};
use crate::grid::{ArraySpec, Extrap};
use burn::backend::TensorMetadata;
use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::ops::FloatTensorOps;
use burn::tensor::{Shape, TensorData};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::{CubeDim, calculate_cube_count_elemwise};
use kernels::{DimsLaunch, OutsideLaunch};
use std::sync::Arc;

/// A contiguous, uninitialised `dims` tensor on the device and dtype of `like`.
fn output(like: &CubeTensor, dims: [usize; 3]) -> CubeTensor {
    empty_device_contiguous_dtype(
        like.client.clone(),
        like.device.clone(),
        Shape::new(dims),
        like.dtype,
    )
}

/// Cube count and size for one thread per element of `n`.
fn grid_of(like: &CubeTensor, n: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new(&like.client, n);
    (calculate_cube_count_elemwise(&like.client, n, dim), dim)
}

/// `x` as a runtime scalar in the dtype of `like`.
fn scalar(x: f64, like: &CubeTensor) -> InputScalar {
    InputScalar::new(x, dtype_to_storage_type(like.dtype))
}

/// The comptime extrapolation code of `s` (2 bits per side: x-lo, x-hi, y-lo, y-hi).
pub fn ext_code(s: &ArraySpec) -> u32 {
    s.ext.iter().enumerate().fold(0, |code, (k, e)| {
        let side = match e {
            Extrap::ZeroGradient => kernels::ZERO_GRADIENT,
            Extrap::Value(_) => kernels::VALUE,
            Extrap::Periodic => kernels::PERIODIC,
        };
        code | side << (2 * k)
    })
}

/// Sizes and periods of `s`.
fn dims(s: &ArraySpec) -> DimsLaunch {
    DimsLaunch::new(
        s.nx as i32,
        s.ny as i32,
        s.period_x as i32,
        s.period_y as i32,
    )
}

/// The constants `s` reads beyond its sides (0 on the others).
fn outside(s: &ArraySpec, like: &CubeTensor) -> OutsideLaunch {
    let c = |e: Extrap| scalar(if let Extrap::Value(v) = e { v } else { 0.0 }, like);
    OutsideLaunch::new(c(s.ext[0]), c(s.ext[1]), c(s.ext[2]), c(s.ext[3]))
}

/// Location code of an advected array: 0 centre, 1 x-face, 2 y-face (as the CPU kernels
/// tell them apart, by the offsets).
fn location(s: &ArraySpec) -> u32 {
    match (s.ox == 0.0, s.oy == 0.0) {
        (true, _) => 1,
        (_, true) => 2,
        _ => 0,
    }
}

impl AdvectionOps for CubeBackend {
    fn advect(q: CubeTensor, u: CubeTensor, v: CubeTensor, spec: AdvectSpec) -> CubeTensor {
        let b = advect_batch([&q.shape(), &u.shape(), &v.shape()], &spec, "advect");
        let (q, u, v) = (into_contiguous(q), into_contiguous(u), into_contiguous(v));
        let dims_out = [b, spec.q.ny, spec.q.nx];
        let out = output(&q, dims_out);
        if spec.scheme == AdvectScheme::SemiLagrangian {
            // No stencil bounds: 1-element placeholders.
            let none = output(&q, [1, 1, 1]);
            advect_pass(
                kernels::SEMI_LAGRANGIAN,
                [&q, &q, &u, &v, &none, &none, &out],
                &spec,
            );
            return out;
        }
        let (lo, hi) = (output(&q, dims_out), output(&q, dims_out));
        advect_pass(
            kernels::MACCORMACK_FORWARD,
            [&q, &q, &u, &v, &lo, &hi, &out],
            &spec,
        );
        let corrected = output(&q, dims_out);
        advect_pass(
            kernels::MACCORMACK_CORRECT,
            [&q, &out, &u, &v, &lo, &hi, &corrected],
            &spec,
        );
        corrected
    }

    fn advect_backward(
        q: CubeTensor,
        u: CubeTensor,
        v: CubeTensor,
        grad: CubeTensor,
        spec: AdvectSpec,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        // MacCormack: Burn's autodiff of the default body, as on the CPU.
        if spec.scheme == AdvectScheme::MacCormack {
            return reference::maccormack_adjoint::<Self>(q, u, v, grad, &spec);
        }
        let (q, u, v, g) = (
            into_contiguous(q),
            into_contiguous(u),
            into_contiguous(v),
            into_contiguous(grad),
        );
        let b = batch_of(&q.shape(), &spec.q, "advect_backward q");
        let dtype = dtype_to_storage_type(q.dtype);
        let (loc, eq, eu, ev) = (
            location(&spec.q),
            ext_code(&spec.q),
            ext_code(&spec.u),
            ext_code(&spec.v),
        );
        // The velocity's gradients: one seed per output, gathered onto the faces.
        let (gx, gy) = (
            output(&q, [b, spec.q.ny, spec.q.nx]),
            output(&q, [b, spec.q.ny, spec.q.nx]),
        );
        let (count, dim) = grid_of(&q, b * spec.q.len());
        kernels::advect_velocity_seed::launch(
            &q.client,
            count.clone(),
            dim,
            q.clone().into_tensor_arg(),
            u.clone().into_tensor_arg(),
            v.clone().into_tensor_arg(),
            g.clone().into_tensor_arg(),
            gx.clone().into_tensor_arg(),
            gy.clone().into_tensor_arg(),
            dims(&spec.q),
            dims(&spec.u),
            dims(&spec.v),
            outside(&spec.q, &q),
            outside(&spec.u, &q),
            outside(&spec.v, &q),
            scalar(spec.dt_dx, &q),
            loc,
            eq,
            eu,
            ev,
            dtype,
        );
        let gather = |seed: &CubeTensor, s: &ArraySpec, component: u32, ext: u32| {
            let out = output(&q, [b, s.ny, s.nx]);
            let (count, dim) = grid_of(&q, b * s.len());
            kernels::advect_velocity_adjoint::launch(
                &q.client,
                count,
                dim,
                seed.clone().into_tensor_arg(),
                out.clone().into_tensor_arg(),
                dims(&spec.q),
                dims(s),
                loc,
                component,
                ext,
                dtype,
            );
            out
        };
        let gu = gather(&gx, &spec.u, 0, eu);
        let gv = gather(&gy, &spec.v, 1, ev);
        // The advected array's gradient, gathered from the outputs within the largest
        // departure distance (computed on the device) plus the interpolation stencil.
        let peak = |t: &CubeTensor| Self::float_max(Self::float_abs(t.clone()));
        let radius = Self::float_add_scalar(
            Self::float_mul_scalar(
                Self::float_max(Self::float_cat(vec![peak(&u), peak(&v)], 0)),
                spec.dt_dx.into(),
            ),
            3.0.into(),
        );
        let gq = output(&q, [b, spec.q.ny, spec.q.nx]);
        kernels::advect_q_adjoint::launch(
            &q.client,
            count,
            dim,
            q.clone().into_tensor_arg(),
            u.into_tensor_arg(),
            v.into_tensor_arg(),
            g.into_tensor_arg(),
            into_contiguous(radius).into_tensor_arg(),
            gq.clone().into_tensor_arg(),
            dims(&spec.q),
            dims(&spec.u),
            dims(&spec.v),
            outside(&spec.q, &q),
            outside(&spec.u, &q),
            outside(&spec.v, &q),
            scalar(spec.dt_dx, &q),
            loc,
            eq,
            eu,
            ev,
            dtype,
        );
        (gq, gu, gv)
    }
}

/// Launches one [`kernels::advect`] pass on `[q, sampled, u, v, lo, hi, out]`.
fn advect_pass(pass: u32, t: [&CubeTensor; 7], spec: &AdvectSpec) {
    let [q, sampled, u, v, lo, hi, out] = t;
    let (count, dim) = grid_of(q, q.shape().num_elements());
    kernels::advect::launch(
        &q.client,
        count,
        dim,
        q.clone().into_tensor_arg(),
        sampled.clone().into_tensor_arg(),
        u.clone().into_tensor_arg(),
        v.clone().into_tensor_arg(),
        lo.clone().into_tensor_arg(),
        hi.clone().into_tensor_arg(),
        out.clone().into_tensor_arg(),
        dims(&spec.q),
        dims(&spec.u),
        dims(&spec.v),
        outside(&spec.q, q),
        outside(&spec.u, q),
        outside(&spec.v, q),
        scalar(spec.dt_dx, q),
        pass,
        location(&spec.q),
        ext_code(&spec.q),
        ext_code(&spec.u),
        ext_code(&spec.v),
        dtype_to_storage_type(q.dtype),
    );
}

impl DiffusionOps for CubeBackend {
    fn diffuse_explicit(q: CubeTensor, spec: ArraySpec, alpha: f64) -> CubeTensor {
        let b = batch_of(&q.shape(), &spec, "diffuse q");
        let q = into_contiguous(q);
        let out = output(&q, [b, spec.ny, spec.nx]);
        let (count, dim) = grid_of(&q, b * spec.len());
        kernels::diffuse_explicit::launch(
            &q.client,
            count,
            dim,
            q.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            dims(&spec),
            outside(&spec, &q),
            scalar(alpha, &q),
            ext_code(&spec),
            dtype_to_storage_type(q.dtype),
        );
        out
    }

    fn diffuse_explicit_backward(grad: CubeTensor, spec: ArraySpec, alpha: f64) -> CubeTensor {
        let b = batch_of(&grad.shape(), &spec, "diffuse_explicit_backward grad");
        let g = into_contiguous(grad);
        let out = output(&g, [b, spec.ny, spec.nx]);
        let (count, dim) = grid_of(&g, b * spec.len());
        kernels::diffuse_explicit_adjoint::launch(
            &g.client,
            count,
            dim,
            g.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            dims(&spec),
            scalar(alpha, &g),
            ext_code(&spec),
            dtype_to_storage_type(g.dtype),
        );
        out
    }
}

impl ProjectionOps for CubeBackend {
    fn divergence(u: CubeTensor, v: CubeTensor, dx: f64) -> CubeTensor {
        let (su, sv) = (u.shape(), v.shape());
        let (b, ny, nx) = (su[0], su[1], su[2] - 1);
        assert!(
            sv[0] == b && sv[1] == ny + 1 && sv[2] == nx,
            "divergence: u {su:?} and v {sv:?} are not one MAC grid"
        );
        let (u, v) = (into_contiguous(u), into_contiguous(v));
        let out = output(&u, [b, ny, nx]);
        let (count, dim) = grid_of(&u, b * nx * ny);
        kernels::divergence::launch(
            &u.client,
            count,
            dim,
            u.clone().into_tensor_arg(),
            v.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            nx,
            ny,
            scalar(1.0 / dx, &u),
            dtype_to_storage_type(u.dtype),
        );
        out
    }

    fn divergence_backward(grad: CubeTensor, dx: f64) -> (CubeTensor, CubeTensor) {
        let sh = grad.shape();
        let (b, ny, nx) = (sh[0], sh[1], sh[2]);
        let g = into_contiguous(grad);
        let (gu, gv) = (output(&g, [b, ny, nx + 1]), output(&g, [b, ny + 1, nx]));
        let (count, dim) = grid_of(&g, b * (nx + 1) * (ny + 1));
        kernels::divergence_adjoint::launch(
            &g.client,
            count,
            dim,
            g.clone().into_tensor_arg(),
            gu.clone().into_tensor_arg(),
            gv.clone().into_tensor_arg(),
            nx,
            ny,
            scalar(1.0 / dx, &g),
            dtype_to_storage_type(g.dtype),
        );
        (gu, gv)
    }

    fn gradient(p: CubeTensor, spec: ArraySpec, dx: f64) -> (CubeTensor, CubeTensor) {
        let b = batch_of(&p.shape(), &spec, "gradient p");
        let p = into_contiguous(p);
        let (nx, ny) = (spec.nx, spec.ny);
        let (gu, gv) = (output(&p, [b, ny, nx + 1]), output(&p, [b, ny + 1, nx]));
        let (count, dim) = grid_of(&p, b * (nx + 1) * (ny + 1));
        kernels::gradient::launch(
            &p.client,
            count,
            dim,
            p.clone().into_tensor_arg(),
            gu.clone().into_tensor_arg(),
            gv.clone().into_tensor_arg(),
            dims(&spec),
            outside(&spec, &p),
            scalar(1.0 / dx, &p),
            ext_code(&spec),
            dtype_to_storage_type(p.dtype),
        );
        (gu, gv)
    }

    fn gradient_backward(gu: CubeTensor, gv: CubeTensor, spec: ArraySpec, dx: f64) -> CubeTensor {
        assert!(
            spec.period_x == spec.nx && spec.period_y == spec.ny,
            "gradient_backward: the gradient of a cell-centred array"
        );
        let b = gu.shape()[0];
        let (gu, gv) = (into_contiguous(gu), into_contiguous(gv));
        let gp = output(&gu, [b, spec.ny, spec.nx]);
        let (count, dim) = grid_of(&gu, b * spec.len());
        // No masks and no base gradient: 1-element placeholders.
        let none = output(&gu, [1, 1, 1]);
        kernels::gradient_adjoint::launch(
            &gu.client,
            count,
            dim,
            gu.clone().into_tensor_arg(),
            gv.into_tensor_arg(),
            none.clone().into_tensor_arg(),
            none.clone().into_tensor_arg(),
            none.into_tensor_arg(),
            gp.clone().into_tensor_arg(),
            dims(&spec),
            scalar(1.0 / dx, &gu),
            ext_code(&spec),
            false,
            dtype_to_storage_type(gu.dtype),
        );
        gp
    }

    fn project_dense(
        u: CubeTensor,
        v: CubeTensor,
        proj: Arc<PressureProjection>,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let sys = &proj.system;
        let g = sys.grid;
        let b = u.shape()[0];
        let (u, v) = (into_contiguous(u), into_contiguous(v));
        let masks = FaceMasks::on(&proj, &u);
        let (uc, vc, rhs) = (
            output(&u, [b, g.ny, g.nx + 1]),
            output(&u, [b, g.ny + 1, g.nx]),
            output(&u, [b, g.ny, g.nx]),
        );
        let (count, dim) = grid_of(&u, b * (g.nx + 1) * (g.ny + 1));
        kernels::constrain_rhs::launch(
            &u.client,
            count.clone(),
            dim,
            u.clone().into_tensor_arg(),
            v.into_tensor_arg(),
            masks.u_keep.clone().into_tensor_arg(),
            masks.u_fixed.clone().into_tensor_arg(),
            masks.v_keep.clone().into_tensor_arg(),
            masks.v_fixed.clone().into_tensor_arg(),
            masks.fluid.clone().into_tensor_arg(),
            uc.clone().into_tensor_arg(),
            vc.clone().into_tensor_arg(),
            rhs.clone().into_tensor_arg(),
            g.nx,
            g.ny,
            scalar(-g.dx, &u),
            sys.stencil.periodic[0],
            sys.stencil.periodic[1],
            dtype_to_storage_type(u.dtype),
        );
        let p = dense_solve(&proj, rhs, false);
        let (uo, vo) = (
            output(&u, [b, g.ny, g.nx + 1]),
            output(&u, [b, g.ny + 1, g.nx]),
        );
        kernels::subtract_gradient::launch(
            &u.client,
            count,
            dim,
            uc.into_tensor_arg(),
            vc.into_tensor_arg(),
            p.clone().into_tensor_arg(),
            masks.u_open.clone().into_tensor_arg(),
            masks.v_open.clone().into_tensor_arg(),
            uo.clone().into_tensor_arg(),
            vo.clone().into_tensor_arg(),
            dims(&sys.pressure),
            outside(&sys.pressure, &u),
            scalar(1.0 / g.dx, &u),
            ext_code(&sys.pressure),
            dtype_to_storage_type(u.dtype),
        );
        (uo, vo, p)
    }

    fn project_dense_backward(
        gu: CubeTensor,
        gv: CubeTensor,
        gp: CubeTensor,
        proj: Arc<PressureProjection>,
    ) -> (CubeTensor, CubeTensor) {
        let sys = &proj.system;
        let g = sys.grid;
        let b = gu.shape()[0];
        let (gu, gv, gp) = (
            into_contiguous(gu),
            into_contiguous(gv),
            into_contiguous(gp),
        );
        let masks = FaceMasks::on(&proj, &gu);
        // p̄ = ḡp − Gᵀ(open ∘ ḡu): the gradient's adjoint of the open faces' gradients.
        let pbar = output(&gu, [b, g.ny, g.nx]);
        let (count, dim) = grid_of(&gu, b * g.cells());
        kernels::gradient_adjoint::launch(
            &gu.client,
            count,
            dim,
            gu.clone().into_tensor_arg(),
            gv.clone().into_tensor_arg(),
            masks.u_open.clone().into_tensor_arg(),
            masks.v_open.clone().into_tensor_arg(),
            gp.into_tensor_arg(),
            pbar.clone().into_tensor_arg(),
            dims(&sys.pressure),
            scalar(1.0 / g.dx, &gu),
            ext_code(&sys.pressure),
            true,
            dtype_to_storage_type(gu.dtype),
        );
        let r = dense_solve(&proj, pbar, true);
        let (bu, bv) = (
            output(&gu, [b, g.ny, g.nx + 1]),
            output(&gu, [b, g.ny + 1, g.nx]),
        );
        let (count, dim) = grid_of(&gu, b * (g.nx + 1) * (g.ny + 1));
        kernels::constrain_rhs_adjoint::launch(
            &gu.client,
            count,
            dim,
            gu.clone().into_tensor_arg(),
            gv.into_tensor_arg(),
            r.into_tensor_arg(),
            masks.u_keep.clone().into_tensor_arg(),
            masks.v_keep.clone().into_tensor_arg(),
            masks.fluid.clone().into_tensor_arg(),
            bu.clone().into_tensor_arg(),
            bv.clone().into_tensor_arg(),
            g.nx,
            g.ny,
            scalar(-g.dx, &gu),
            sys.stencil.periodic[0],
            sys.stencil.periodic[1],
            dtype_to_storage_type(gu.dtype),
        );
        (bu, bv)
    }
}

/// `rhs ↦ M·rhs` (`Mᵀ` with `transpose`) for every item of `rhs`, `M` the projection's dense
/// inverse kept on the device ([`reference::dense_product`]), made contiguous for the kernels.
fn dense_solve(proj: &PressureProjection, rhs: CubeTensor, transpose: bool) -> CubeTensor {
    let dense = proj.dense().expect("a grid with a dense inverse");
    let x = reference::dense_product::<CubeBackend>(
        reference::Ft(rhs),
        dense,
        &proj.device_data,
        transpose,
    );
    into_contiguous(x.0)
}

/// Host values as a contiguous tensor of `dims` on the device and dtype of `like`.
fn upload(values: Vec<f64>, dims: &[usize], like: &CubeTensor) -> CubeTensor {
    let data = TensorData::new(values, dims.to_vec()).convert_dtype(like.dtype);
    into_contiguous(CubeBackend::float_from_data(data, &like.device))
}

/// The projection's face rules and fluid cells as device tensors (uploaded once per device
/// and dtype): `keep` 1 where a face is not fixed, `fixed` its value, `open` 1 where the
/// pressure gradient corrects it, `fluid` 1 in fluid cells.
#[derive(Clone)]
struct FaceMasks {
    u_keep: CubeTensor,
    u_fixed: CubeTensor,
    v_keep: CubeTensor,
    v_fixed: CubeTensor,
    u_open: CubeTensor,
    v_open: CubeTensor,
    fluid: CubeTensor,
}

impl FaceMasks {
    fn on(proj: &PressureProjection, like: &CubeTensor) -> Self {
        use crate::linalg::poisson::FaceRule;
        let sys = &proj.system;
        let (nx, ny) = (sys.grid.nx, sys.grid.ny);
        proj.device_data.get_or_insert(
            format!("cube {:?} {:?} masks", like.device, like.dtype),
            || {
                let keep = |rules: &[FaceRule]| {
                    rules
                        .iter()
                        .map(|r| f64::from(!matches!(r, FaceRule::Fixed(_))))
                        .collect()
                };
                let fixed = |rules: &[FaceRule]| {
                    rules
                        .iter()
                        .map(|r| if let FaceRule::Fixed(x) = r { *x } else { 0.0 })
                        .collect()
                };
                let open = |rules: &[FaceRule]| {
                    rules
                        .iter()
                        .map(|r| f64::from(*r == FaceRule::Open))
                        .collect()
                };
                let (du, dv) = ([ny, nx + 1], [ny + 1, nx]);
                Self {
                    u_keep: upload(keep(&sys.u_faces), &du, like),
                    u_fixed: upload(fixed(&sys.u_faces), &du, like),
                    v_keep: upload(keep(&sys.v_faces), &dv, like),
                    v_fixed: upload(fixed(&sys.v_faces), &dv, like),
                    u_open: upload(open(&sys.u_faces), &du, like),
                    v_open: upload(open(&sys.v_faces), &dv, like),
                    fluid: upload(
                        sys.solid.iter().map(|&s| f64::from(!s)).collect(),
                        &[ny, nx],
                        like,
                    ),
                }
            },
        )
    }
}
