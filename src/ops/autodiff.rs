//! `Autodiff<B, C>` impls of the op families: each op is one custom backward node whose
//! backward calls the inner backend's `*_backward` adjoint. Inputs an adjoint needs (only
//! advection's: the ops are otherwise linear or affine) go through the checkpointer
//! (`prep.checkpoint`, `retrieve_node_output`), never into the op state. Ops with several
//! outputs (gradient, projection) return them packed into one `[B, Σ n]` tensor that is
//! sliced afterwards, so one node carries all their gradients.

use super::{
    AdvectSpec, AdvectionOps, DiffusionOps, ImplicitDiffusion, PressureProjection, ProjectionOps,
};
use crate::grid::ArraySpec;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, TensorMetadata};
use burn::tensor::{Shape, Slice};
use std::sync::Arc;

/// Flattens `[B, ..]` tensors to `[B, n_k]` and concatenates them: `[B, Σ n_k]`.
fn pack<B: Backend>(parts: Vec<FloatTensor<B>>) -> FloatTensor<B> {
    let flat = parts
        .into_iter()
        .map(|t| {
            let sh = t.shape();
            let b = sh[0];
            let n = sh.num_elements() / b.max(1);
            B::float_reshape(t, Shape::from(vec![b, n]))
        })
        .collect();
    B::float_cat(flat, 1)
}

/// The inverse of [`pack`]: splits `[B, Σ n_k]` into tensors of shapes `[B, ..dims_k]`.
fn unpack<B: Backend>(t: FloatTensor<B>, dims: &[[usize; 2]]) -> Vec<FloatTensor<B>> {
    let b = t.shape()[0];
    let mut start = 0;
    dims.iter()
        .map(|&[ny, nx]| {
            let n = ny * nx;
            let part = B::float_slice(
                t.clone(),
                &[
                    Slice::full(),
                    Slice::new(start as isize, Some((start + n) as isize), 1),
                ],
            );
            start += n;
            B::float_reshape(part, Shape::from(vec![b, ny, nx]))
        })
        .collect()
}

/// Registers `grad` for a parent node when it is tracked (`Some`).
fn register<B: Backend>(grads: &mut Gradients, parent: Option<NodeId>, grad: FloatTensor<B>) {
    if let Some(id) = parent {
        grads.register::<B>(id, grad);
    }
}

impl<B: AdvectionOps, C: CheckpointStrategy> AdvectionOps for Autodiff<B, C> {
    fn advect(
        q: FloatTensor<Self>,
        u: FloatTensor<Self>,
        v: FloatTensor<Self>,
        spec: AdvectSpec,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct AdvectBackward;
        impl<B: AdvectionOps> Backward<B, 3> for AdvectBackward {
            type State = (NodeId, NodeId, NodeId, AdvectSpec);
            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                ck: &mut Checkpointer,
            ) {
                let (qid, uid, vid, spec) = ops.state;
                let q: FloatTensor<B> = ck.retrieve_node_output(qid);
                let u: FloatTensor<B> = ck.retrieve_node_output(uid);
                let v: FloatTensor<B> = ck.retrieve_node_output(vid);
                let grad = grads.consume::<B>(&ops.node);
                let (gq, gu, gv) = B::advect_backward(q, u, v, grad, spec);
                let [pq, pu, pv] = &ops.parents;
                register::<B>(grads, pq.as_ref().map(|n| n.id), gq);
                register::<B>(grads, pu.as_ref().map(|n| n.id), gu);
                register::<B>(grads, pv.as_ref().map(|n| n.id), gv);
            }
        }
        match AdvectBackward
            .prepare::<C>([q.node(), u.node(), v.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let ids = (
                    prep.checkpoint(&q),
                    prep.checkpoint(&u),
                    prep.checkpoint(&v),
                );
                let out = B::advect(
                    q.into_primitive(),
                    u.into_primitive(),
                    v.into_primitive(),
                    spec,
                );
                prep.finish((ids.0, ids.1, ids.2, spec), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::advect(
                q.into_primitive(),
                u.into_primitive(),
                v.into_primitive(),
                spec,
            )),
        }
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn advect_backward(
        q: FloatTensor<Self>,
        u: FloatTensor<Self>,
        v: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        spec: AdvectSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (gq, gu, gv) = B::advect_backward(
            Self::inner(q),
            Self::inner(u),
            Self::inner(v),
            Self::inner(grad),
            spec,
        );
        (
            Self::from_inner(gq),
            Self::from_inner(gu),
            Self::from_inner(gv),
        )
    }
}

/// A custom node for a linear op of one input whose adjoint is `adjoint(grad)`.
macro_rules! linear_op {
    ($name:ident, $state:ty, |$s:ident, $g:ident| $adjoint:expr) => {
        #[derive(Debug)]
        struct $name;
        impl<B: ProjectionOps + DiffusionOps> Backward<B, 1> for $name {
            type State = $state;
            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let $g = grads.consume::<B>(&ops.node);
                let $s = ops.state;
                let [parent] = &ops.parents;
                register::<B>(grads, parent.as_ref().map(|n| n.id), $adjoint);
            }
        }
    };
}

impl<B: DiffusionOps + ProjectionOps, C: CheckpointStrategy> DiffusionOps for Autodiff<B, C> {
    fn diffuse_explicit(q: FloatTensor<Self>, spec: ArraySpec, alpha: f64) -> FloatTensor<Self> {
        linear_op!(ExplicitBackward, (ArraySpec, f64), |s, g| {
            B::diffuse_explicit_backward(g, s.0, s.1)
        });
        match ExplicitBackward
            .prepare::<C>([q.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                (spec, alpha),
                B::diffuse_explicit(q.into_primitive(), spec, alpha),
            ),
            OpsKind::UnTracked(prep) => {
                prep.finish(B::diffuse_explicit(q.into_primitive(), spec, alpha))
            }
        }
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn diffuse_explicit_backward(
        grad: FloatTensor<Self>,
        spec: ArraySpec,
        alpha: f64,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::diffuse_explicit_backward(Self::inner(grad), spec, alpha))
    }

    fn diffuse_implicit(q: FloatTensor<Self>, op: Arc<ImplicitDiffusion>) -> FloatTensor<Self> {
        linear_op!(ImplicitBackward, Arc<ImplicitDiffusion>, |s, g| {
            B::diffuse_implicit_backward(g, s)
        });
        match ImplicitBackward
            .prepare::<C>([q.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = B::diffuse_implicit(q.into_primitive(), op.clone());
                prep.finish(op, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::diffuse_implicit(q.into_primitive(), op)),
        }
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn diffuse_implicit_backward(
        grad: FloatTensor<Self>,
        op: Arc<ImplicitDiffusion>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::diffuse_implicit_backward(Self::inner(grad), op))
    }
}

impl<B: DiffusionOps + ProjectionOps, C: CheckpointStrategy> ProjectionOps for Autodiff<B, C> {
    fn divergence(u: FloatTensor<Self>, v: FloatTensor<Self>, dx: f64) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct DivergenceBackward;
        impl<B: ProjectionOps> Backward<B, 2> for DivergenceBackward {
            type State = f64;
            fn backward(self, ops: Ops<f64, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
                let grad = grads.consume::<B>(&ops.node);
                let (gu, gv) = B::divergence_backward(grad, ops.state);
                let [pu, pv] = &ops.parents;
                register::<B>(grads, pu.as_ref().map(|n| n.id), gu);
                register::<B>(grads, pv.as_ref().map(|n| n.id), gv);
            }
        }
        match DivergenceBackward
            .prepare::<C>([u.node(), v.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                dx,
                B::divergence(u.into_primitive(), v.into_primitive(), dx),
            ),
            OpsKind::UnTracked(prep) => {
                prep.finish(B::divergence(u.into_primitive(), v.into_primitive(), dx))
            }
        }
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn divergence_backward(
        grad: FloatTensor<Self>,
        dx: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gu, gv) = B::divergence_backward(Self::inner(grad), dx);
        (Self::from_inner(gu), Self::from_inner(gv))
    }

    fn gradient(
        p: FloatTensor<Self>,
        spec: ArraySpec,
        dx: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let dims = [[spec.ny, spec.nx + 1], [spec.ny + 1, spec.nx]];
        linear_op!(GradientBackward, (ArraySpec, f64), |s, g| {
            let (spec, dx) = s;
            let mut parts = unpack::<B>(g, &[[spec.ny, spec.nx + 1], [spec.ny + 1, spec.nx]]);
            let gv = parts.pop().expect("two parts");
            let gu = parts.pop().expect("two parts");
            B::gradient_backward(gu, gv, spec, dx)
        });
        let run = |p| {
            let (gu, gv) = B::gradient(p, spec, dx);
            pack::<B>(vec![gu, gv])
        };
        let packed = match GradientBackward
            .prepare::<C>([p.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((spec, dx), run(p.into_primitive())),
            OpsKind::UnTracked(prep) => prep.finish(run(p.into_primitive())),
        };
        let mut parts = unpack::<Self>(packed, &dims);
        let gv = parts.pop().expect("two parts");
        (parts.pop().expect("two parts"), gv)
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn gradient_backward(
        gu: FloatTensor<Self>,
        gv: FloatTensor<Self>,
        spec: ArraySpec,
        dx: f64,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::gradient_backward(
            Self::inner(gu),
            Self::inner(gv),
            spec,
            dx,
        ))
    }

    fn project(
        u: FloatTensor<Self>,
        v: FloatTensor<Self>,
        proj: Arc<PressureProjection>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let g = proj.system.grid;
        let dims = [[g.ny, g.nx + 1], [g.ny + 1, g.nx], [g.ny, g.nx]];
        #[derive(Debug)]
        struct ProjectBackward;
        impl<B: ProjectionOps> Backward<B, 2> for ProjectBackward {
            type State = Arc<PressureProjection>;
            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let proj = ops.state;
                let g = proj.system.grid;
                let dims = [[g.ny, g.nx + 1], [g.ny + 1, g.nx], [g.ny, g.nx]];
                let grad = grads.consume::<B>(&ops.node);
                let mut parts = unpack::<B>(grad, &dims).into_iter();
                let (gu, gv, gp) = (
                    parts.next().expect("u part"),
                    parts.next().expect("v part"),
                    parts.next().expect("p part"),
                );
                let (bu, bv) = B::project_backward(gu, gv, gp, proj);
                let [pu, pv] = &ops.parents;
                register::<B>(grads, pu.as_ref().map(|n| n.id), bu);
                register::<B>(grads, pv.as_ref().map(|n| n.id), bv);
            }
        }
        let run = |u, v, proj| {
            let (u, v, p) = B::project(u, v, proj);
            pack::<B>(vec![u, v, p])
        };
        let packed = match ProjectBackward
            .prepare::<C>([u.node(), v.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = run(u.into_primitive(), v.into_primitive(), proj.clone());
                prep.finish(proj, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(run(u.into_primitive(), v.into_primitive(), proj))
            }
        };
        let mut parts = unpack::<Self>(packed, &dims).into_iter();
        (
            parts.next().expect("u part"),
            parts.next().expect("v part"),
            parts.next().expect("p part"),
        )
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn project_backward(
        gu: FloatTensor<Self>,
        gv: FloatTensor<Self>,
        gp: FloatTensor<Self>,
        proj: Arc<PressureProjection>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (bu, bv) = B::project_backward(Self::inner(gu), Self::inner(gv), Self::inner(gp), proj);
        (Self::from_inner(bu), Self::from_inner(bv))
    }
}
