//! Ops on lines: batches of 1D fields `[B, 1, N]`, the 2D layout with one row, so that the
//! 2D kernels serve them where the mathematics is the same (explicit diffusion on a one-row
//! array with zero-gradient ends is the 3-point Laplacian with symmetric padding; see
//! [`line_spec`]). What has no 2D counterpart is self-advection by a velocity stored at the
//! field's own points (1D Burgers): [`LineAdvectionOps`], whose CPU kernel and adjoint reuse
//! the padded sampling of the 2D semi-Lagrangian kernels.

use super::flex::{contiguous, data, with_float};
use super::{kernels, reference};
use crate::grid::{ArraySpec, Extrap};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};

/// The spec of a line of `n` points: one row of centred values, the edge value repeated
/// beyond both ends (replicate padding).
pub fn line_spec(n: usize) -> ArraySpec {
    ArraySpec {
        nx: n,
        ny: 1,
        ox: 0.5,
        oy: 0.5,
        ext: [Extrap::ZeroGradient; 4],
        period_x: n,
        period_y: 1,
    }
}

/// Self-advection along lines.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait LineAdvectionOps: Backend {
    /// Semi-Lagrangian advection of `q: [B, 1, N]` by the velocity `u: [B, 1, N]` given at
    /// the same points: `q(x_i − u_i·dt)`, linear interpolation, edge values repeated beyond
    /// the ends; `dt_dx` converts a velocity into points per step.
    fn advect_line(q: FloatTensor<Self>, u: FloatTensor<Self>, dt_dx: f64) -> FloatTensor<Self> {
        let n = q.shape()[2];
        reference::advect_line::<Self>(q, u, &line_spec(n), dt_dx)
    }
    /// Adjoint of [`LineAdvectionOps::advect_line`]: `(q̄, ū)` from the output gradient.
    fn advect_line_backward(
        q: FloatTensor<Self>,
        u: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        dt_dx: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let n = q.shape()[2];
        let [gq, gu] = reference::vjp::<Self, 2, 1>([q, u], [grad], |[q, u]| {
            [reference::advect_line::<Autodiff<Self>>(
                q,
                u,
                &line_spec(n),
                dt_dx,
            )]
        });
        (gq, gu)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl LineAdvectionOps for burn::backend::Cube {}

/// `[B, 1, N]` of a line tensor, checked.
#[track_caller]
fn line_dims(t: &FlexTensor, name: &str) -> [usize; 3] {
    let sh = t.shape();
    assert!(
        sh.num_dims() == 3 && sh[1] == 1,
        "{name}: expected shape [B, 1, N], got {sh:?}"
    );
    [sh[0], 1, sh[2]]
}

impl LineAdvectionOps for Flex {
    fn advect_line(q: FlexTensor, u: FlexTensor, dt_dx: f64) -> FlexTensor {
        let dims = line_dims(&q, "advect_line q");
        assert_eq!(line_dims(&u, "advect_line u"), dims, "advect_line: shapes");
        let (q, u) = (contiguous(q), contiguous(u));
        with_float!(q, T => {
            let mut out = vec![<T as num_traits::Zero>::zero(); dims[0] * dims[2]];
            kernels::semi_lagrangian_line(data::<T>(&q), data::<T>(&u), &line_spec(dims[2]), dt_dx, &mut out);
            FlexTensor::from_data(TensorData::new(out, dims))
        })
    }

    fn advect_line_backward(
        q: FlexTensor,
        u: FlexTensor,
        grad: FlexTensor,
        dt_dx: f64,
    ) -> (FlexTensor, FlexTensor) {
        let dims = line_dims(&q, "advect_line_backward q");
        let (q, u, g) = (contiguous(q), contiguous(u), contiguous(grad));
        with_float!(q, T => {
            let zero = <T as num_traits::Zero>::zero();
            let (mut gq, mut gu) = (vec![zero; dims[0] * dims[2]], vec![zero; dims[0] * dims[2]]);
            kernels::semi_lagrangian_line_adjoint(
                (data::<T>(&q), data::<T>(&u)), &line_spec(dims[2]), dt_dx, data::<T>(&g), &mut gq, &mut gu,
            );
            (FlexTensor::from_data(TensorData::new(gq, dims)), FlexTensor::from_data(TensorData::new(gu, dims)))
        })
    }
}

impl<B: LineAdvectionOps, C: CheckpointStrategy> LineAdvectionOps for Autodiff<B, C> {
    fn advect_line(q: FloatTensor<Self>, u: FloatTensor<Self>, dt_dx: f64) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct AdvectLineBackward;
        impl<B: LineAdvectionOps> Backward<B, 2> for AdvectLineBackward {
            type State = (NodeId, NodeId, f64);
            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                ck: &mut Checkpointer,
            ) {
                let (qid, uid, dt_dx) = ops.state;
                let q: FloatTensor<B> = ck.retrieve_node_output(qid);
                let u: FloatTensor<B> = ck.retrieve_node_output(uid);
                let grad = grads.consume::<B>(&ops.node);
                let (gq, gu) = B::advect_line_backward(q, u, grad, dt_dx);
                let [pq, pu] = &ops.parents;
                if let Some(p) = pq {
                    grads.register::<B>(p.id, gq);
                }
                if let Some(p) = pu {
                    grads.register::<B>(p.id, gu);
                }
            }
        }
        match AdvectLineBackward
            .prepare::<C>([q.node(), u.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let ids = (prep.checkpoint(&q), prep.checkpoint(&u));
                let out = B::advect_line(q.into_primitive(), u.into_primitive(), dt_dx);
                prep.finish((ids.0, ids.1, dt_dx), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::advect_line(
                q.into_primitive(),
                u.into_primitive(),
                dt_dx,
            )),
        }
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn advect_line_backward(
        q: FloatTensor<Self>,
        u: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        dt_dx: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gq, gu) =
            B::advect_line_backward(Self::inner(q), Self::inner(u), Self::inner(grad), dt_dx);
        (Self::from_inner(gq), Self::from_inner(gu))
    }
}

/// Advects the lines `q: [B, 1, N]` by `u` (same shape, same points); see
/// [`LineAdvectionOps::advect_line`].
pub fn advect_line(q: Tensor<3>, u: Tensor<3>, dt_dx: f64) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as LineAdvectionOps>::advect_line(
        q.into_dispatch(),
        u.into_dispatch(),
        dt_dx,
    ))
}
