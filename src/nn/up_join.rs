//! The join of a 2D U-Net's up level as one op: `y [B, Cy, H, W]` doubled along both plane
//! axes by PhiFlow's linear `upsample2x` (new cells ¾ of the nearer and ¼ of the farther old
//! neighbour, the edge value repeated beyond), then the skip `s [B, Cs, Hs, Ws]`
//! (`Hs ≥ 2H`, `Ws ≥ 2W`) cut to `2H × 2W` and appended along the channels:
//! `[B, Cy + Cs, 2H, 2W]`, with one backward node.
//!
//! Why: in Burn ops this is, per axis, an edge pad, three slices, four scalar products, two
//! sums, a stack and a reshape, then a slice and a concatenation of the skip, each a copy and
//! an autodiff node: 12% of a shape-transition CFE's forward and backward (perf), more than
//! any convolution layer. On Flex (f32, f64) each pass is one loop over the planes; other
//! backends run those Burn ops, differentiated by Burn.

use crate::ops::reference::{Ft, vjp};
use crate::ops::{contiguous, data, with_float};
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};
use num_traits::Float;
use rayon::prelude::*;

/// The up level's join.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait UpJoinOps: Backend {
    /// `[upsample2x(y), s[.., :2H, :2W]]` along the channels (see the module).
    fn up_join(y: FloatTensor<Self>, s: FloatTensor<Self>) -> FloatTensor<Self> {
        default_up_join::<Self>(Ft(y), Ft(s)).0
    }

    /// `(∂y, ∂s)` from the output gradient `g [B, Cy + Cs, 2H, 2W]` (`∂s` zero outside the
    /// cut). The op is linear: `y` and `s` give the shapes.
    fn up_join_backward(
        y: FloatTensor<Self>,
        s: FloatTensor<Self>,
        g: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        default_up_join_backward::<Self>(y, s, g)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl UpJoinOps for burn::backend::Cube {}

/// The default body in Burn ops.
fn default_up_join<B: Backend>(y: Ft<B>, s: Ft<B>) -> Ft<B> {
    let d = y.dims();
    let (h, w) = (d[2], d[3]);
    let up = upsample_axis(upsample_axis(y, 2), 3);
    Ft::cat(vec![up, s.narrow(2, 0, 2 * h).narrow(3, 0, 2 * w)], 1)
}

/// The default adjoint: Burn's autodiff of [`default_up_join`].
fn default_up_join_backward<B: Backend>(
    y: FloatTensor<B>,
    s: FloatTensor<B>,
    g: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let [gy, gs] = vjp::<B, 2, 1>([y, s], [g], |[y, s]| {
        [default_up_join::<Autodiff<B>>(Ft(y), Ft(s)).0]
    });
    (gy, gs)
}

/// `x` doubled along `axis` by linear interpolation (new cells ¾ of the nearer and ¼ of the
/// farther old neighbour), the edge value repeated beyond: PhiFlow's `upsample2x` along one
/// axis, in Burn ops (the default bodies of both U-Nets).
pub(super) fn upsample_axis<B: Backend>(x: Ft<B>, axis: usize) -> Ft<B> {
    let n = x.dims()[axis];
    let edges = vec![
        x.clone().narrow(axis, 0, 1),
        x.clone(),
        x.clone().narrow(axis, n - 1, n),
    ];
    let padded = Ft::cat(edges, axis);
    let even = padded.clone().narrow(axis, 0, n) * 0.25 + x.clone() * 0.75;
    let odd = x * 0.75 + padded.narrow(axis, 2, n + 2) * 0.25;
    let mut dims = even.dims();
    dims.insert(axis + 1, 1);
    let pairs = Ft::cat(vec![even.reshape(&dims), odd.reshape(&dims)], axis + 1);
    dims.remove(axis + 1);
    dims[axis] *= 2;
    pairs.reshape(&dims)
}

impl UpJoinOps for Flex {
    fn up_join(y: FloatTensor<Self>, s: FloatTensor<Self>) -> FloatTensor<Self> {
        if !matches!(y.dtype(), DType::F32 | DType::F64) {
            return default_up_join::<Self>(Ft(y), Ft(s)).0;
        }
        let shapes = Shapes::of::<Self>(&y, &s);
        let (y, s) = (contiguous(y), contiguous(s));
        FlexTensor::from_data(with_float!(y, T => TensorData::new(
            forward::<T>(data(&y), data(&s), shapes),
            shapes.output(),
        )))
    }

    fn up_join_backward(
        y: FloatTensor<Self>,
        s: FloatTensor<Self>,
        g: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        if !matches!(g.dtype(), DType::F32 | DType::F64) {
            return default_up_join_backward::<Self>(y, s, g);
        }
        let shapes = Shapes::of::<Self>(&y, &s);
        let g = contiguous(g);
        with_float!(g, T => {
            let (gy, gs) = backward::<T>(data(&g), shapes);
            (
                FlexTensor::from_data(TensorData::new(gy, shapes.y)),
                FlexTensor::from_data(TensorData::new(gs, shapes.s)),
            )
        })
    }
}

/// The shapes of one join: `y [b, cy, h, w]`, `s [b, cs, hs, ws]`.
#[derive(Clone, Copy, Debug)]
struct Shapes {
    y: [usize; 4],
    s: [usize; 4],
}

impl Shapes {
    fn of<B: Backend>(y: &FloatTensor<B>, s: &FloatTensor<B>) -> Self {
        let (y, s): ([usize; 4], [usize; 4]) = (y.shape().dims(), s.shape().dims());
        assert!(
            y[0] == s[0] && s[2] >= 2 * y[2] && s[3] >= 2 * y[3],
            "up_join: skip {s:?} does not cover the doubled {y:?}"
        );
        Shapes { y, s }
    }

    /// `[b, cy + cs, 2h, 2w]`.
    fn output(&self) -> [usize; 4] {
        [
            self.y[0],
            self.y[1] + self.s[1],
            2 * self.y[2],
            2 * self.y[3],
        ]
    }
}

/// For each of the `2n` new cells along an axis of `n`: the two old cells it interpolates
/// and their weights.
fn taps<T: Float>(n: usize) -> Vec<[(usize, T); 2]> {
    let (near, far) = (T::from(0.75).unwrap(), T::from(0.25).unwrap());
    (0..2 * n)
        .map(|f| {
            let i = f / 2;
            match f % 2 {
                0 => [(i.saturating_sub(1), far), (i, near)],
                _ => [(i, near), ((i + 1).min(n - 1), far)],
            }
        })
        .collect()
}

/// The Flex forward: each output plane written once, the up-sampled ones through one
/// row-interpolated buffer.
fn forward<T: Float + Send + Sync>(y: &[T], s: &[T], sh: Shapes) -> Vec<T> {
    let [_, cy, h, w] = sh.y;
    let [_, cs, hs, ws] = sh.s;
    let (rows, cols) = (taps::<T>(h), taps::<T>(w));
    let plane = 4 * h * w;
    let mut out = vec![T::zero(); sh.output().iter().product()];
    out.par_chunks_mut(plane).enumerate().for_each(|(k, dst)| {
        let (item, c) = (k / (cy + cs), k % (cy + cs));
        if c >= cy {
            let src = &s[(item * cs + c - cy) * hs * ws..][..hs * ws];
            for (r, row) in dst.chunks_mut(2 * w).enumerate() {
                row.copy_from_slice(&src[r * ws..r * ws + 2 * w]);
            }
            return;
        }
        let src = &y[(item * cy + c) * h * w..][..h * w];
        // Along W first: [h, 2w].
        let mut wide = vec![T::zero(); h * 2 * w];
        for (old, new) in src.chunks(w).zip(wide.chunks_mut(2 * w)) {
            for (v, &[(a, wa), (b, wb)]) in new.iter_mut().zip(&cols) {
                *v = wa * old[a] + wb * old[b];
            }
        }
        for (row, &[(a, wa), (b, wb)]) in dst.chunks_mut(2 * w).zip(&rows) {
            let (ra, rb) = (&wide[a * 2 * w..][..2 * w], &wide[b * 2 * w..][..2 * w]);
            for ((v, &p), &q) in row.iter_mut().zip(ra).zip(rb) {
                *v = wa * p + wb * q;
            }
        }
    });
    out
}

/// The Flex backward: the transposed interpolation per plane of `y`, the cut skip gradient
/// placed into zero planes of the skip's shape.
fn backward<T: Float + Send + Sync>(g: &[T], sh: Shapes) -> (Vec<T>, Vec<T>) {
    let [b, cy, h, w] = sh.y;
    let [_, cs, hs, ws] = sh.s;
    let (rows, cols) = (taps::<T>(h), taps::<T>(w));
    let (plane, channels) = (4 * h * w, cy + cs);
    let mut gy = vec![T::zero(); b * cy * h * w];
    gy.par_chunks_mut(h * w).enumerate().for_each(|(k, dst)| {
        let (item, c) = (k / cy, k % cy);
        let src = &g[(item * channels + c) * plane..][..plane];
        // Rows first: [h, 2w].
        let mut wide = vec![T::zero(); h * 2 * w];
        for (row, &[(a, wa), (b, wb)]) in src.chunks(2 * w).zip(&rows) {
            for (j, &v) in row.iter().enumerate() {
                wide[a * 2 * w + j] = wide[a * 2 * w + j] + wa * v;
                wide[b * 2 * w + j] = wide[b * 2 * w + j] + wb * v;
            }
        }
        for (new, old) in wide.chunks(2 * w).zip(dst.chunks_mut(w)) {
            for (&v, &[(a, wa), (b, wb)]) in new.iter().zip(&cols) {
                old[a] = old[a] + wa * v;
                old[b] = old[b] + wb * v;
            }
        }
    });
    let mut gs = vec![T::zero(); b * cs * hs * ws];
    gs.par_chunks_mut(hs * ws).enumerate().for_each(|(k, dst)| {
        let (item, c) = (k / cs, k % cs);
        let src = &g[(item * channels + cy + c) * plane..][..plane];
        for (r, row) in src.chunks(2 * w).enumerate() {
            dst[r * ws..r * ws + 2 * w].copy_from_slice(row);
        }
    });
    (gy, gs)
}

/// Backward of [`UpJoinOps::up_join`] (parents `y`, `s`).
#[derive(Debug)]
struct UpJoinBackward;

impl<B: UpJoinOps> Backward<B, 2> for UpJoinBackward {
    /// The inputs (their shapes; their values for default bodies that trace the forward).
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (y, s) = ops.state;
        let g = grads.consume::<B>(&ops.node);
        let (gy, gs) = B::up_join_backward(y, s, g);
        for (parent, grad) in ops.parents.into_iter().zip([gy, gs]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: UpJoinOps, C: CheckpointStrategy> UpJoinOps for Autodiff<B, C> {
    fn up_join(y: FloatTensor<Self>, s: FloatTensor<Self>) -> FloatTensor<Self> {
        match UpJoinBackward
            .prepare::<C>([y.node(), s.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, s) = (y.into_primitive(), s.into_primitive());
                let out = B::up_join(y.clone(), s.clone());
                prep.finish((y, s), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::up_join(y.into_primitive(), s.into_primitive()))
            }
        }
    }
}

/// [`UpJoinOps::up_join`] on tensors: `y [B, Cy, H, W]`, `s [B, Cs, ≥ 2H, ≥ 2W]` →
/// `[B, Cy + Cs, 2H, 2W]`.
pub fn up_join(y: Tensor<4>, s: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as UpJoinOps>::up_join(
        y.into_dispatch(),
        s.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, FloatDType};

    /// The Flex kernels against the default body in Burn ops, values and both gradients,
    /// f64, odd sizes and a skip larger than the cut.
    #[test]
    fn kernels_match_the_default_body() {
        let dev = Device::flex().autodiff();
        dev.seed(5);
        let rand = |dims: [usize; 4]| {
            Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &dev)
                .cast(FloatDType::F64)
                .require_grad()
        };
        let (y, s) = (rand([2, 3, 3, 5]), rand([2, 2, 7, 11]));
        let weights = rand([2, 5, 6, 10]).detach();
        let fused = up_join(y.clone(), s.clone());
        let reference = Tensor::<4>::from_dispatch(
            default_up_join::<Dispatch>(
                Ft(y.clone().into_dispatch()),
                Ft(s.clone().into_dispatch()),
            )
            .0,
        );
        let diff: f64 = (fused.clone() - reference.clone())
            .abs()
            .max()
            .into_scalar();
        assert!(diff < 1e-14, "values differ by {diff:e}");
        let ga = (fused * weights.clone()).sum().backward();
        let gb = (reference * weights).sum().backward();
        for x in [&y, &s] {
            let d: f64 = (x.grad(&ga).unwrap() - x.grad(&gb).unwrap())
                .abs()
                .max()
                .into_scalar();
            assert!(d < 1e-13, "gradients differ by {d:e}");
        }
    }
}
