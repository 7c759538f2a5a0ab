//! The 1D U-Net's layer as one op: `act(conv(pad(x), w) + b [+ r])` in the batch-innermost
//! layout `x [C_in, L, B] → [C_out, L_out, B]`, with edge (replicate) or zero padding, any
//! stride, and an optional residual added before the activation (a residual block's second
//! convolution). One backward node per layer: the activation's derivative from the saved
//! output, then the input, weight and bias gradients.
//!
//! Why: written as Burn ops, a U-Net layer is a pad (slices and a concatenation), a
//! convolution (Flex runs 1D as 3D, with layout conversions), a bias, an addition and an
//! activation, each with its own autodiff node; at the paper's sizes (≤ 32 channels, ≤ 63
//! points) their overhead and copies cost more than the arithmetic (perf of a DP-CFE
//! evaluation: conv3d and its transposed pass, copies, malloc, masks and thread wake-ups in
//! about equal parts). On Flex (f32, f64, kernels of 1–4 taps) the kernels of
//! `line_conv_flex` vectorise over the batch; other backends run the default bodies (Burn's
//! `conv1d` and tensor ops), differentiated by Burn.

use super::line_conv_flex::{self, LineShape};
pub use super::line_conv_flex::{Activation, LineConvSpec};
use crate::ops::reference::vjp;
use crate::ops::{contiguous, data, with_float};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Shape, Slice, Tensor, TensorData};

/// Line convolutions in the `[C, L, B]` layout.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait LineConvOps: Backend {
    /// `act(conv(pad(x), w) + b)`: `x [C_in, L, B]`, `w [C_out, C_in, K]`, `b [C_out]`.
    fn line_conv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        spec: LineConvSpec,
    ) -> FloatTensor<Self> {
        default_forward::<Self>(x, w, b, None, &spec)
    }
    /// `act(conv(pad(x), w) + b + r)`, `r [C_out, L_out, B]`.
    fn line_conv_residual(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        r: FloatTensor<Self>,
        spec: LineConvSpec,
    ) -> FloatTensor<Self> {
        default_forward::<Self>(x, w, b, Some(r), &spec)
    }
    /// Gradients `(x̄, w̄, b̄, r̄)` from the output `y` and its gradient `g` (`r̄` is the
    /// gradient before the activation, whether or not there was a residual).
    fn line_conv_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        y: FloatTensor<Self>,
        g: FloatTensor<Self>,
        spec: LineConvSpec,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        let bias = zeros::<Self>(&[w.shape()[0]], &w);
        let residual = zeros::<Self>(&y.shape().to_vec(), &y);
        let [gx, gw, gb, gr] = vjp::<Self, 4, 1>([x, w, bias, residual], [g], |[x, w, b, r]| {
            [default_forward::<Autodiff<Self>>(x, w, b, Some(r), &spec)]
        });
        (gx, gw, gb, gr)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl LineConvOps for burn::backend::Cube {}

fn zeros<B: Backend>(dims: &[usize], like: &FloatTensor<B>) -> FloatTensor<B> {
    B::float_zeros(
        Shape::from(dims.to_vec()),
        &like.device(),
        like.dtype().into(),
    )
}

/// Default forward on any backend: permute to `[B, C, L]`, pad, Burn's `conv1d`, residual,
/// activation, permute back.
fn default_forward<B: Backend>(
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    b: FloatTensor<B>,
    r: Option<FloatTensor<B>>,
    spec: &LineConvSpec,
) -> FloatTensor<B> {
    let x = B::float_permute(x, &[2, 0, 1]);
    let [bsz, c, l] = x.shape().dims();
    let mut parts = Vec::new();
    let side = |count: usize, at: usize| -> FloatTensor<B> {
        if spec.edge {
            let s = [
                Slice::full(),
                Slice::full(),
                Slice::new(at as isize, Some(at as isize + 1), 1),
            ];
            B::float_repeat_dim(B::float_slice(x.clone(), &s), 2, count)
        } else {
            zeros::<B>(&[bsz, c, count], &x)
        }
    };
    if spec.pad[0] > 0 {
        parts.push(side(spec.pad[0], 0));
    }
    parts.push(x.clone());
    if spec.pad[1] > 0 {
        parts.push(side(spec.pad[1], l - 1));
    }
    let xp = B::float_cat(parts, 2);
    let y = B::conv1d(xp, w, Some(b), ConvOptions::new([spec.stride], [0], [1], 1));
    let mut y = B::float_permute(y, &[1, 2, 0]);
    if let Some(r) = r {
        y = B::float_add(y, r);
    }
    match spec.act {
        Activation::Linear => y,
        Activation::Relu => B::relu(y),
        Activation::LeakyRelu(s) => B::leaky_relu(y, s.into()),
    }
}

fn shape_of(x: &FlexTensor, w: &FlexTensor) -> LineShape {
    let [ci, l, b] = x.shape().dims();
    let [co, wci, k] = w.shape().dims();
    assert_eq!(
        wci,
        ci,
        "line_conv: weight {:?} for input {:?}",
        w.shape(),
        x.shape()
    );
    LineShape { ci, co, l, b, k }
}

fn flex_forward(
    x: FlexTensor,
    w: FlexTensor,
    b: FlexTensor,
    r: Option<FlexTensor>,
    spec: &LineConvSpec,
) -> FlexTensor {
    let sh = shape_of(&x, &w);
    let (x, w, b) = (contiguous(x), contiguous(w), contiguous(b));
    let r = r.map(contiguous);
    let lout = sh.lout(spec);
    with_float!(x, T => FlexTensor::from_data(TensorData::new(
        line_conv_flex::forward(data::<T>(&x), data(&w), data(&b), r.as_ref().map(data), sh, spec),
        [sh.co, lout, sh.b],
    )))
}

impl LineConvOps for Flex {
    fn line_conv(x: FlexTensor, w: FlexTensor, b: FlexTensor, spec: LineConvSpec) -> FlexTensor {
        if line_conv_flex::supports(w.shape()[2]) {
            flex_forward(x, w, b, None, &spec)
        } else {
            default_forward::<Self>(x, w, b, None, &spec)
        }
    }

    fn line_conv_residual(
        x: FlexTensor,
        w: FlexTensor,
        b: FlexTensor,
        r: FlexTensor,
        spec: LineConvSpec,
    ) -> FlexTensor {
        if line_conv_flex::supports(w.shape()[2]) {
            flex_forward(x, w, b, Some(r), &spec)
        } else {
            default_forward::<Self>(x, w, b, Some(r), &spec)
        }
    }

    fn line_conv_backward(
        x: FlexTensor,
        w: FlexTensor,
        y: FlexTensor,
        g: FlexTensor,
        spec: LineConvSpec,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let sh = shape_of(&x, &w);
        let [x, w, y, g] = [x, w, y, g].map(contiguous);
        let lout = sh.lout(&spec);
        with_float!(x, T => {
            let (gx, gw, gb, pre) = line_conv_flex::backward(data::<T>(&x), data(&w), data(&y), data(&g), sh, &spec);
            (
                FlexTensor::from_data(TensorData::new(gx, [sh.ci, sh.l, sh.b])),
                FlexTensor::from_data(TensorData::new(gw, [sh.co, sh.ci, sh.k])),
                FlexTensor::from_data(TensorData::new(gb, [sh.co])),
                FlexTensor::from_data(TensorData::new(pre, [sh.co, lout, sh.b])),
            )
        })
    }
}

impl<B: LineConvOps, C: CheckpointStrategy> LineConvOps for Autodiff<B, C> {
    fn line_conv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        spec: LineConvSpec,
    ) -> FloatTensor<Self> {
        node::<B, C>(x, w, b, None, spec)
    }

    fn line_conv_residual(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        r: FloatTensor<Self>,
        spec: LineConvSpec,
    ) -> FloatTensor<Self> {
        node::<B, C>(x, w, b, Some(r), spec)
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn line_conv_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        y: FloatTensor<Self>,
        g: FloatTensor<Self>,
        spec: LineConvSpec,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        let (gx, gw, gb, gr) = B::line_conv_backward(
            Self::inner(x),
            Self::inner(w),
            Self::inner(y),
            Self::inner(g),
            spec,
        );
        (
            Self::from_inner(gx),
            Self::from_inner(gw),
            Self::from_inner(gb),
            Self::from_inner(gr),
        )
    }
}

/// The layer's node over `N` parents: `x, w, b` and, when `N = 4`, the residual `r`.
#[derive(Debug)]
struct LineConvBackward;

impl<B: LineConvOps, const N: usize> Backward<B, N> for LineConvBackward {
    type State = (NodeId, NodeId, FloatTensor<B>, LineConvSpec);
    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let (xid, wid, y, spec) = ops.state;
        let x: FloatTensor<B> = ck.retrieve_node_output(xid);
        let w: FloatTensor<B> = ck.retrieve_node_output(wid);
        let g = grads.consume::<B>(&ops.node);
        let (gx, gw, gb, gr) = B::line_conv_backward(x, w, y, g, spec);
        for (parent, grad) in ops.parents.iter().zip([gx, gw, gb, gr]) {
            if let Some(p) = parent {
                grads.register::<B>(p.id, grad);
            }
        }
    }
}

/// The layer's autodiff node (parents: x, w, b and the residual when there is one).
fn node<B: LineConvOps, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    w: FloatTensor<Autodiff<B, C>>,
    b: FloatTensor<Autodiff<B, C>>,
    r: Option<FloatTensor<Autodiff<B, C>>>,
    spec: LineConvSpec,
) -> FloatTensor<Autodiff<B, C>> {
    let forward = |x, w, b, r: Option<FloatTensor<B>>| match r {
        Some(r) => B::line_conv_residual(x, w, b, r, spec),
        None => B::line_conv(x, w, b, spec),
    };
    macro_rules! run {
        ($parents:expr, $r:expr) => {
            match LineConvBackward
                .prepare::<C>($parents)
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let ids = (prep.checkpoint(&x), prep.checkpoint(&w));
                    let y = forward(
                        x.into_primitive(),
                        w.into_primitive(),
                        b.into_primitive(),
                        $r,
                    );
                    prep.finish((ids.0, ids.1, y.clone(), spec), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(
                    x.into_primitive(),
                    w.into_primitive(),
                    b.into_primitive(),
                    $r,
                )),
            }
        };
    }
    match r {
        Some(r) => {
            let parents = [x.node(), w.node(), b.node(), r.node()];
            run!(parents, Some(r.into_primitive()))
        }
        None => {
            let parents = [x.node(), w.node(), b.node()];
            run!(parents, None)
        }
    }
}

/// [`LineConvOps::line_conv`] on tensors; with `residual`, [`LineConvOps::line_conv_residual`].
pub fn line_conv(
    x: Tensor<3>,
    w: Tensor<3>,
    b: Tensor<1>,
    residual: Option<Tensor<3>>,
    spec: LineConvSpec,
) -> Tensor<3> {
    let (x, w, b) = (x.into_dispatch(), w.into_dispatch(), b.into_dispatch());
    Tensor::from_dispatch(match residual {
        Some(r) => <Dispatch as LineConvOps>::line_conv_residual(x, w, b, r.into_dispatch(), spec),
        None => <Dispatch as LineConvOps>::line_conv(x, w, b, spec),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flex(n: usize, dims: &[usize], seed: f64) -> FlexTensor {
        let v: Vec<f64> = (0..n).map(|k| ((k as f64 + seed) * 0.77).sin()).collect();
        FlexTensor::from_data(TensorData::new(v, dims.to_vec()))
    }

    fn host(t: FlexTensor) -> Vec<f64> {
        t.into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .unwrap()
    }

    fn close(a: FlexTensor, b: FlexTensor) {
        let (a, b) = (host(a), host(b));
        assert_eq!(a.len(), b.len());
        let e = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(e < 1e-11, "{e:e}");
    }

    /// The fused kernels (forward and all four gradients) against Burn's `conv1d` and its
    /// autodiff, in f64, over the U-Net's layer kinds and batches that are and are not whole
    /// register blocks.
    #[test]
    fn kernels_match_burns_convolution() {
        let cases = [
            (
                3,
                4,
                2,
                LineConvSpec {
                    stride: 2,
                    pad: [0, 31],
                    edge: false,
                    act: Activation::Relu,
                },
            ),
            (
                4,
                4,
                3,
                LineConvSpec {
                    stride: 1,
                    pad: [1, 1],
                    edge: true,
                    act: Activation::LeakyRelu(0.2),
                },
            ),
            (
                5,
                3,
                2,
                LineConvSpec {
                    stride: 1,
                    pad: [0, 1],
                    edge: true,
                    act: Activation::Linear,
                },
            ),
        ];
        for (ci, co, k, spec) in cases {
            for (l, b) in [(9, 16), (1, 7), (17, 37)] {
                let lout = (l + spec.pad[0] + spec.pad[1] - k) / spec.stride + 1;
                let x = flex(ci * l * b, &[ci, l, b], 1.0);
                let w = flex(co * ci * k, &[co, ci, k], 2.0);
                let bias = flex(co, &[co], 3.0);
                let r = flex(co * lout * b, &[co, lout, b], 4.0);
                let g = flex(co * lout * b, &[co, lout, b], 5.0);
                let y =
                    Flex::line_conv_residual(x.clone(), w.clone(), bias.clone(), r.clone(), spec);
                close(
                    y.clone(),
                    default_forward::<Flex>(
                        x.clone(),
                        w.clone(),
                        bias.clone(),
                        Some(r.clone()),
                        &spec,
                    ),
                );
                let got =
                    Flex::line_conv_backward(x.clone(), w.clone(), y.clone(), g.clone(), spec);
                let want = vjp::<Flex, 4, 1>([x, w, bias, r], [g], |[x, w, b, r]| {
                    [default_forward::<Autodiff<Flex>>(x, w, b, Some(r), &spec)]
                });
                let [wx, ww, wb, wr] = want;
                close(got.0, wx);
                close(got.1, ww);
                close(got.2, wb);
                close(got.3, wr);
            }
        }
    }
}
