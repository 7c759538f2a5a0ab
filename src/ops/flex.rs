//! The Flex (CPU) implementations: the fused kernels over raw slices, in f32 or f64.

use super::{
    AdvectScheme, AdvectSpec, AdvectionOps, DiffusionOps, ImplicitDiffusion, PressureProjection,
    ProjectionOps, advect_batch, batch_of, kernels,
};
use crate::grid::ArraySpec;
use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{Element, TensorData};
use kernels::Real;
use num_traits::Zero;
use std::sync::Arc;

/// Calls `$body` with `$T` bound to the element type of `$t` (f32 or f64).
macro_rules! with_float {
    ($t:expr, $T:ident => $body:expr) => {
        match $t.dtype() {
            burn::backend::DType::F32 => {
                type $T = f32;
                $body
            }
            burn::backend::DType::F64 => {
                type $T = f64;
                $body
            }
            other => panic!("diffsim's CPU kernels support f32 and f64 tensors, got {other:?}"),
        }
    };
}
pub(crate) use with_float;

/// A contiguous copy of `t` if it is not contiguous already (then zero-copy).
pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() && t.layout().start_offset() == 0 {
        t
    } else {
        t.to_contiguous()
    }
}

/// The elements of a contiguous tensor.
pub(crate) fn data<T: Real + Element + bytemuck::Pod>(t: &FlexTensor) -> &[T] {
    t.as_slice::<T>()
        .expect("contiguous tensor of the dispatched dtype")
}

/// An owned `Vec` of the tensor's elements (reusing the buffer when uniquely owned).
fn into_vec<T: Real + Element + bytemuck::Pod>(t: FlexTensor) -> Vec<T> {
    t.into_data()
        .try_into_vec::<T>()
        .expect("tensor of the dispatched dtype")
}

/// Wraps a `Vec` as a tensor of shape `dims`.
fn tensor<T: Real + Element>(v: Vec<T>, dims: [usize; 3]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, dims))
}

impl AdvectionOps for Flex {
    fn advect(q: FlexTensor, u: FlexTensor, v: FlexTensor, spec: AdvectSpec) -> FlexTensor {
        let b = advect_batch([&q.shape(), &u.shape(), &v.shape()], &spec, "advect");
        let (q, u, v) = (contiguous(q), contiguous(u), contiguous(v));
        with_float!(q, T => {
            let args = kernels::Advect {
                q: data::<T>(&q), sq: &spec.q, u: data::<T>(&u), v: data::<T>(&v), su: &spec.u, sv: &spec.v, dt_dx: spec.dt_dx,
            };
            let mut out = vec![T::zero(); b * spec.q.len()];
            match spec.scheme {
                AdvectScheme::SemiLagrangian => kernels::semi_lagrangian(&args, &mut out),
                AdvectScheme::MacCormack => kernels::maccormack(&args, &mut out),
            }
            tensor(out, [b, spec.q.ny, spec.q.nx])
        })
    }

    fn advect_backward(
        q: FlexTensor,
        u: FlexTensor,
        v: FlexTensor,
        grad: FlexTensor,
        spec: AdvectSpec,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        // MacCormack: Burn's autodiff of the default body (the same discretisation).
        if spec.scheme == AdvectScheme::MacCormack {
            return super::reference::maccormack_adjoint::<Flex>(q, u, v, grad, &spec);
        }
        let b = batch_of(&q.shape(), &spec.q, "advect_backward q");
        let (q, u, v, g) = (
            contiguous(q),
            contiguous(u),
            contiguous(v),
            contiguous(grad),
        );
        with_float!(q, T => {
            let args = kernels::Advect {
                q: data::<T>(&q), sq: &spec.q, u: data::<T>(&u), v: data::<T>(&v), su: &spec.u, sv: &spec.v, dt_dx: spec.dt_dx,
            };
            let mut gq = vec![T::zero(); b * spec.q.len()];
            let mut gu = vec![T::zero(); b * spec.u.len()];
            let mut gv = vec![T::zero(); b * spec.v.len()];
            kernels::semi_lagrangian_adjoint(&args, data::<T>(&g), &mut gq, &mut gu, &mut gv);
            (
                tensor(gq, [b, spec.q.ny, spec.q.nx]),
                tensor(gu, [b, spec.u.ny, spec.u.nx]),
                tensor(gv, [b, spec.v.ny, spec.v.nx]),
            )
        })
    }
}

impl DiffusionOps for Flex {
    fn diffuse_explicit(q: FlexTensor, spec: ArraySpec, alpha: f64) -> FlexTensor {
        let b = batch_of(&q.shape(), &spec, "diffuse q");
        let q = contiguous(q);
        with_float!(q, T => {
            let mut out = vec![T::zero(); b * spec.len()];
            kernels::diffuse_explicit(data::<T>(&q), &spec, alpha, &mut out);
            tensor(out, [b, spec.ny, spec.nx])
        })
    }

    fn diffuse_explicit_backward(grad: FlexTensor, spec: ArraySpec, alpha: f64) -> FlexTensor {
        let b = batch_of(&grad.shape(), &spec, "diffuse_explicit_backward grad");
        let g = contiguous(grad);
        with_float!(g, T => {
            let mut out = vec![T::zero(); b * spec.len()];
            kernels::adjoint::diffuse_explicit(data::<T>(&g), &spec, alpha, &mut out);
            tensor(out, [b, spec.ny, spec.nx])
        })
    }

    fn diffuse_implicit_backward(grad: FlexTensor, op: Arc<ImplicitDiffusion>) -> FlexTensor {
        let s = op.spec;
        let b = batch_of(&grad.shape(), &s, "diffuse_implicit_backward grad");
        let [nx, ny] = op.nodes;
        let g = contiguous(grad);
        with_float!(g, T => {
            let g = data::<T>(&g);
            // Elements that copy a node (periodic duplicates) send their gradient to it.
            let mut rhs = vec![0.0f64; b * nx * ny];
            for bi in 0..b {
                for j in 0..s.ny {
                    for i in 0..s.nx {
                        rhs[bi * nx * ny + (j % ny) * nx + i % nx] += g[bi * s.len() + j * s.nx + i].wide();
                    }
                }
            }
            // A failed solve is recorded on the solver and makes the gradient NaN.
            let fill = if op.solver.solve(&mut rhs, b).is_ok() { T::zero() } else { <T as num_traits::Float>::nan() };
            let mut out = vec![fill; b * s.len()];
            if fill == T::zero() {
                for bi in 0..b {
                    for j in 0..ny {
                        for i in 0..nx {
                            out[bi * s.len() + j * s.nx + i] = T::of(rhs[bi * nx * ny + j * nx + i]);
                        }
                    }
                }
            }
            tensor(out, [b, s.ny, s.nx])
        })
    }

    fn diffuse_implicit(q: FlexTensor, op: Arc<ImplicitDiffusion>) -> FlexTensor {
        let s = op.spec;
        let b = batch_of(&q.shape(), &s, "diffuse_implicit q");
        let [nx, ny] = op.nodes;
        with_float!(q, T => {
            let mut vals = into_vec::<T>(q);
            let mut rhs = vec![0.0f64; b * nx * ny];
            for (k, r) in rhs.iter_mut().enumerate() {
                let (bi, c) = (k / (nx * ny), k % (nx * ny));
                let x = vals[bi * s.len() + (c / nx) * s.nx + c % nx].wide();
                *r = x + op.ghost_rhs[c];
            }
            // A failed solve is recorded in the solver for the caller; the values stay finite.
            if op.solver.solve(&mut rhs, b).is_ok() {
                for bi in 0..b {
                    let item = &mut vals[bi * s.len()..(bi + 1) * s.len()];
                    for j in 0..s.ny {
                        for i in 0..s.nx {
                            let node = (j % ny) * nx + i % nx;
                            item[j * s.nx + i] = T::of(rhs[bi * nx * ny + node]);
                        }
                    }
                }
            }
            tensor(vals, [b, s.ny, s.nx])
        })
    }
}

impl ProjectionOps for Flex {
    fn divergence(u: FlexTensor, v: FlexTensor, dx: f64) -> FlexTensor {
        let (su, sv) = (u.shape(), v.shape());
        let (b, ny, nx) = (su[0], su[1], su[2] - 1);
        assert!(
            sv[0] == b && sv[1] == ny + 1 && sv[2] == nx,
            "divergence: u {su:?} and v {sv:?} are not one MAC grid"
        );
        let (u, v) = (contiguous(u), contiguous(v));
        with_float!(u, T => {
            let mut out = vec![T::zero(); b * nx * ny];
            kernels::divergence(data::<T>(&u), data::<T>(&v), nx, ny, dx, &mut out);
            tensor(out, [b, ny, nx])
        })
    }

    fn divergence_backward(grad: FlexTensor, dx: f64) -> (FlexTensor, FlexTensor) {
        let sh = grad.shape();
        let (b, ny, nx) = (sh[0], sh[1], sh[2]);
        let g = contiguous(grad);
        with_float!(g, T => {
            let mut gu = vec![T::zero(); b * ny * (nx + 1)];
            let mut gv = vec![T::zero(); b * (ny + 1) * nx];
            kernels::adjoint::divergence(data::<T>(&g), nx, ny, dx, &mut gu, &mut gv);
            (tensor(gu, [b, ny, nx + 1]), tensor(gv, [b, ny + 1, nx]))
        })
    }

    fn gradient(p: FlexTensor, spec: ArraySpec, dx: f64) -> (FlexTensor, FlexTensor) {
        let b = batch_of(&p.shape(), &spec, "gradient p");
        let p = contiguous(p);
        let (nx, ny) = (spec.nx, spec.ny);
        with_float!(p, T => {
            let mut gu = vec![T::zero(); b * ny * (nx + 1)];
            let mut gv = vec![T::zero(); b * (ny + 1) * nx];
            kernels::gradient(data::<T>(&p), &spec, dx, &mut gu, &mut gv);
            (tensor(gu, [b, ny, nx + 1]), tensor(gv, [b, ny + 1, nx]))
        })
    }

    fn gradient_backward(gu: FlexTensor, gv: FlexTensor, spec: ArraySpec, dx: f64) -> FlexTensor {
        let b = gu.shape()[0];
        let (gu, gv) = (contiguous(gu), contiguous(gv));
        with_float!(gu, T => {
            let mut gp = vec![T::zero(); b * spec.len()];
            kernels::adjoint::gradient(data::<T>(&gu), data::<T>(&gv), &spec, dx, &mut gp);
            tensor(gp, [b, spec.ny, spec.nx])
        })
    }

    fn project(
        u: FlexTensor,
        v: FlexTensor,
        proj: Arc<PressureProjection>,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let g = proj.system.grid;
        let b = u.shape()[0];
        assert_eq!(
            u.shape().to_vec(),
            vec![b, g.ny, g.nx + 1],
            "project: shape of u"
        );
        assert_eq!(
            v.shape().to_vec(),
            vec![b, g.ny + 1, g.nx],
            "project: shape of v"
        );
        with_float!(u, T => {
            let mut uu = into_vec::<T>(u);
            let mut vv = into_vec::<T>(v);
            let p = kernels::project(&proj.system, &mut uu, &mut vv, b, |rhs| proj.solver.solve(rhs, b).map(|_| ()));
            // A failed solve is recorded in the solver; return the constrained input with p = 0.
            let p: Vec<T> = p.unwrap_or_else(|_| vec![T::zero(); b * g.cells()]);
            (tensor(uu, [b, g.ny, g.nx + 1]), tensor(vv, [b, g.ny + 1, g.nx]), tensor(p, [b, g.ny, g.nx]))
        })
    }

    fn project_backward(
        gu: FlexTensor,
        gv: FlexTensor,
        gp: FlexTensor,
        proj: Arc<PressureProjection>,
    ) -> (FlexTensor, FlexTensor) {
        let g = proj.system.grid;
        let b = gu.shape()[0];
        with_float!(gu, T => {
            let mut uu = into_vec::<T>(gu);
            let mut vv = into_vec::<T>(gv);
            let pp = into_vec::<T>(gp);
            let solver = proj.adjoint_solver();
            // A failed solve is recorded on the solver and makes the gradient NaN.
            if kernels::adjoint::project(&proj.system, &mut uu, &mut vv, pp, b, |r| solver.solve(r, b).map(|_| ())).is_err() {
                uu.fill(<T as num_traits::Float>::nan());
                vv.fill(<T as num_traits::Float>::nan());
            }
            (tensor(uu, [b, g.ny, g.nx + 1]), tensor(vv, [b, g.ny + 1, g.nx]))
        })
    }
}
