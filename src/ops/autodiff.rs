//! `Autodiff<B, C>` impls of the op families: each op is one custom backward node whose
//! backward calls the inner backend's `*_backward` adjoint. Inputs an adjoint needs (only
//! advection's: the ops are otherwise linear or affine) go through the checkpointer
//! (`prep.checkpoint`, `retrieve_node_output`), never into the op state. Ops with several
//! outputs (gradient, projection) are one node for their first output plus a small node per
//! extra output that hands its gradient over ([`Slots`]), so one adjoint call serves all.

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
use burn::tensor::Shape;
use std::sync::Arc;

/// The gradients of a multi-output op's extra outputs, handed from their nodes to the op's
/// node.
///
/// A Burn node has one output. An op with outputs `(y₀, y₁, …)` is one node for `y₀`, whose
/// backward runs the op's adjoint, plus one [`ExtraOutputBackward`] node per extra output
/// `yₖ` whose only parent is `y₀`. Being deeper, an extra node runs first: it leaves `∂L/∂yₖ`
/// here and registers zeros for `y₀`, so that the op's node runs, once, even when only `yₖ`
/// reaches the loss. An extra output that does not reach the loss leaves its slot empty and
/// the op's node reads zeros. (Packing the outputs into one tensor instead costs a copy in
/// the forward pass and, per output, a zero-filled copy of the packed gradient in the
/// backward pass.)
#[derive(Debug)]
pub(super) struct Slots<B: Backend> {
    grads: std::sync::Mutex<Vec<Option<FloatTensor<B>>>>,
    /// Shapes of the extra outputs, for the zeros of an empty slot.
    shapes: Vec<Shape>,
}

impl<B: Backend> Slots<B> {
    pub(super) fn new(extra: &[&FloatTensor<B>]) -> Arc<Self> {
        Arc::new(Self {
            grads: std::sync::Mutex::new(vec![None; extra.len()]),
            shapes: extra.iter().map(|t| t.shape()).collect(),
        })
    }

    fn put(&self, k: usize, grad: FloatTensor<B>) {
        self.grads.lock().expect("gradient slots")[k] = Some(grad);
    }

    /// The extra outputs' gradients, zeros (like `like`) where none arrived.
    pub(super) fn take(&self, like: &FloatTensor<B>) -> Vec<FloatTensor<B>> {
        let mut grads = self.grads.lock().expect("gradient slots");
        grads
            .iter_mut()
            .zip(&self.shapes)
            .map(|(g, shape)| {
                g.take().unwrap_or_else(|| {
                    B::float_zeros(shape.clone(), &like.device(), like.dtype().into())
                })
            })
            .collect()
    }
}

/// The node of extra output `k` of a multi-output op (see [`Slots`]).
#[derive(Debug)]
struct ExtraOutputBackward;

impl<B: Backend> Backward<B, 1> for ExtraOutputBackward {
    type State = (Arc<Slots<B>>, usize, Shape);
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (slots, k, main_shape) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let zeros = B::float_zeros(main_shape, &grad.device(), grad.dtype().into());
        slots.put(k, grad);
        let [main] = &ops.parents;
        register::<B>(grads, main.as_ref().map(|n| n.id), zeros);
    }
}

/// The op's outputs as autodiff tensors: `main` (the op's node, already finished, holding
/// `slots` in its state when tracked) followed by the `extra` outputs, each behind an
/// [`ExtraOutputBackward`] node when `main` is tracked.
pub(super) fn with_extra_outputs<B: Backend, C: CheckpointStrategy>(
    main: FloatTensor<Autodiff<B, C>>,
    extra: Vec<FloatTensor<B>>,
    slots: Arc<Slots<B>>,
) -> Vec<FloatTensor<Autodiff<B, C>>> {
    let main_shape = main.shape();
    let extra: Vec<_> = extra
        .into_iter()
        .enumerate()
        .map(|(k, y)| {
            match ExtraOutputBackward
                .prepare::<C>([main.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((slots.clone(), k, main_shape.clone()), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            }
        })
        .collect();
    std::iter::once(main).chain(extra).collect()
}

/// Registers `grad` for a parent node when it is tracked (`Some`).
pub(super) fn register<B: Backend>(
    grads: &mut Gradients,
    parent: Option<NodeId>,
    grad: FloatTensor<B>,
) {
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
        #[derive(Debug)]
        struct GradientBackward;
        impl<B: ProjectionOps> Backward<B, 1> for GradientBackward {
            type State = (ArraySpec, f64, Arc<Slots<B>>);
            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (spec, dx, slots) = ops.state;
                let gu = grads.consume::<B>(&ops.node);
                let gv = slots.take(&gu).pop().expect("one extra output");
                let [parent] = &ops.parents;
                let gp = B::gradient_backward(gu, gv, spec, dx);
                register::<B>(grads, parent.as_ref().map(|n| n.id), gp);
            }
        }
        let prep = GradientBackward
            .prepare::<C>([p.node()])
            .compute_bound()
            .stateful();
        let (gu, gv) = B::gradient(p.into_primitive(), spec, dx);
        let slots = Slots::new(&[&gv]);
        let gu = match prep {
            OpsKind::Tracked(prep) => prep.finish((spec, dx, slots.clone()), gu),
            OpsKind::UnTracked(prep) => prep.finish(gu),
        };
        let [gu, gv] = with_extra_outputs::<B, C>(gu, vec![gv], slots)
            .try_into()
            .expect("two outputs");
        (gu, gv)
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
        #[derive(Debug)]
        struct ProjectBackward;
        impl<B: ProjectionOps> Backward<B, 2> for ProjectBackward {
            type State = (Arc<PressureProjection>, Arc<Slots<B>>);
            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (proj, slots) = ops.state;
                let gu = grads.consume::<B>(&ops.node);
                let [gv, gp]: [_; 2] = slots.take(&gu).try_into().expect("two extra outputs");
                let (bu, bv) = B::project_backward(gu, gv, gp, proj);
                let [pu, pv] = &ops.parents;
                register::<B>(grads, pu.as_ref().map(|n| n.id), bu);
                register::<B>(grads, pv.as_ref().map(|n| n.id), bv);
            }
        }
        let prep = ProjectBackward
            .prepare::<C>([u.node(), v.node()])
            .compute_bound()
            .stateful();
        let (u, v, p) = B::project(u.into_primitive(), v.into_primitive(), proj.clone());
        let slots = Slots::new(&[&v, &p]);
        let u = match prep {
            OpsKind::Tracked(prep) => prep.finish((proj, slots.clone()), u),
            OpsKind::UnTracked(prep) => prep.finish(u),
        };
        let [u, v, p] = with_extra_outputs::<B, C>(u, vec![v, p], slots)
            .try_into()
            .expect("three outputs");
        (u, v, p)
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
