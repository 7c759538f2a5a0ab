//! The corrector's convolution: stride 1, 'same' padding (zeros, or for the 2D U-Net's
//! residual blocks the edge values repeated: [`Padding`]), odd square kernel, with bias, as a
//! backend extension with its own backward node.
//!
//! Why: Burn computes a convolution's weight gradient as a convolution of the input with the
//! output gradient, batch and channel axes swapped, whose "input channels" are the batch. At
//! the training batch of 3, Flex sends that to its small-channel path (≤ 4 input channels),
//! which sweeps a 64×32 "kernel" over 5×5 outputs one (channel, channel) plane at a time: 74%
//! of a SOL-4 training iteration (perf, 32x64, small net). The input gradient is the forward
//! 'same' convolution of `g` with the rotated, channel-swapped kernel; the bias gradient is
//! the sum of `g` over batch and space.
//!
//! On Flex (f32, f64; kernels 1, 3, 5, 7) all three convolutions run the direct kernels of
//! `conv_flex` (register-blocked, AVX2 + FMA when the CPU has them): SOL-4 training 3.4 → 9.0
//! iterations/s, NON 11.7 → 40 (paired runs against the im2col version). Other backends and
//! types run the default bodies: Burn's convolution forward and for the input gradient, and the
//! weight gradient as one batched im2col GEMM, `∂L/∂w = Σ_b g_b · im2col(x_b)ᵀ`.

use super::conv_flex::Padding;
use super::conv_layer_flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Shape, Slice, Tensor};

/// Burn's convolution with stride 1, padding `k / 2` on every side, no dilation, one group.
fn burn_conv_same<B: Backend>(
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    b: Option<FloatTensor<B>>,
) -> FloatTensor<B> {
    let k = w.shape()[2];
    B::conv2d(x, w, b, ConvOptions::new([1, 1], [k / 2; 2], [1, 1], 1))
}

/// `x [B, C, H, W]` padded by `p` cells on both sides of both plane axes, as `padding` says.
fn burn_pad<B: Backend>(x: FloatTensor<B>, p: usize, padding: Padding) -> FloatTensor<B> {
    let mode = match padding {
        Padding::Zero => PadMode::Constant(0.0),
        Padding::Edge => PadMode::Edge,
    };
    B::float_pad(x, &[(0, 0), (0, 0), (p, p), (p, p)], mode)
}

/// [`burn_conv_same`] with `padding`: for edge padding, a valid convolution of the
/// edge-padded input.
fn burn_conv_padded<B: Backend>(
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    b: Option<FloatTensor<B>>,
    padding: Padding,
) -> FloatTensor<B> {
    match padding {
        Padding::Zero => burn_conv_same::<B>(x, w, b),
        Padding::Edge => {
            let p = w.shape()[2] / 2;
            let valid = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
            B::conv2d(burn_pad::<B>(x, p, padding), w, b, valid)
        }
    }
}

/// Convolution ops of the corrector network.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait ConvOps: Backend {
    /// `y = conv(x, w) + b` with zero 'same' padding: `x [B, C_in, H, W]`,
    /// `w [C_out, C_in, k, k]` (k odd), `b [C_out]` → `[B, C_out, H, W]`.
    fn conv_same(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        burn_conv_same::<Self>(x, w, Some(b))
    }

    /// The gradients `[∂x, ∂w, ∂b]` of [`conv_same`](ConvOps::conv_same) from the output
    /// gradient `g [B, C_out, H, W]`; `∂x` is empty (shape `[0]`) unless `want_x`.
    fn conv_same_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        want_x: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        burn_conv_grads::<Self>(x, w, g, Padding::Zero, want_x)
    }

    /// `y = LeakyReLU(conv(x, w) + b)` with negative slope `slope`, the convolution 'same'
    /// with `padding`: a layer of the corrector or a U-Net as one op.
    fn conv_same_act(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        slope: f64,
        padding: Padding,
    ) -> FloatTensor<Self> {
        burn_conv_act::<Self>(x, w, b, None, slope, padding)
    }

    /// `y = LeakyReLU(conv(x, w) + b + r)`: [`ConvOps::conv_same_act`] with a residual
    /// `r [B, C_out, H, W]` added before the activation.
    fn conv_same_add_act(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        r: FloatTensor<Self>,
        slope: f64,
        padding: Padding,
    ) -> FloatTensor<Self> {
        burn_conv_act::<Self>(x, w, b, Some(r), slope, padding)
    }

    /// The gradients `[∂z, ∂x, ∂w, ∂b]` of [`conv_same_act`](ConvOps::conv_same_act) or
    /// [`conv_same_add_act`](ConvOps::conv_same_add_act) from its output `y` and the output
    /// gradient `g`: `∂z` is the gradient before the activation (also the residual's), empty
    /// (shape `[0]`) unless `want_z`; `∂x` empty unless `want_x`.
    #[allow(clippy::too_many_arguments)]
    fn conv_same_act_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        y: FloatTensor<Self>,
        g: FloatTensor<Self>,
        slope: f64,
        padding: Padding,
        want_z: bool,
        want_x: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        let _ = want_z;
        burn_conv_act_grads::<Self>(x, w, y, g, slope, padding, want_x)
    }
}

/// [`ConvOps::conv_same_act_backward`] in Burn ops (`∂z` always returned): the activation's
/// mask, then [`burn_conv_grads`].
fn burn_conv_act_grads<B: Backend>(
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    y: FloatTensor<B>,
    g: FloatTensor<B>,
    slope: f64,
    padding: Padding,
    want_x: bool,
) -> (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
) {
    let bool_dtype = burn::backend::get_or_init_device_settings::<B>(&y.device()).bool_dtype;
    let mask = B::float_lower_equal_elem(y, 0f32.into(), bool_dtype);
    let scaled = B::float_mul_scalar(g.clone(), slope.into());
    let gz = B::float_mask_where(g, mask, scaled);
    let (gx, gw, gb) = burn_conv_grads::<B>(x, w, gz.clone(), padding, want_x);
    (gz, gx, gw, gb)
}

/// [`ConvOps::conv_same_backward`] in Burn ops, the convolution 'same' with `padding`: the
/// bias gradient as a sum, the weight gradient as [`im2col_weight_gradient`] of the padded
/// input, the input gradient as Burn's convolution with the [`rotated`] kernel (for edge
/// padding, the full convolution onto the padded input, its borders folded onto the edges).
fn burn_conv_grads<B: Backend>(
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    g: FloatTensor<B>,
    padding: Padding,
    want_x: bool,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let [c_out, _, k, _] = w.shape().dims();
    let p = k / 2;
    let gb = B::float_reshape(
        B::float_sum_dims(g.clone(), &[0, 2, 3]),
        Shape::from(vec![c_out]),
    );
    let gw = im2col_weight_gradient::<B>(burn_pad::<B>(x.clone(), p, padding), g.clone(), k);
    let gx = match (want_x, padding) {
        (true, Padding::Zero) => burn_conv_same::<B>(g, rotated::<B>(w), None),
        (true, Padding::Edge) => {
            let full = ConvOptions::new([1, 1], [2 * p; 2], [1, 1], 1);
            let onto_padded = B::conv2d(g, rotated::<B>(w), None, full);
            burn_fold_edges::<B>(burn_fold_edges::<B>(onto_padded, 2, p), 3, p)
        }
        (false, _) => B::float_zeros(Shape::from(vec![0]), &x.device(), x.dtype().into()),
    };
    (gx, gw, gb)
}

/// The gradient of a tensor edge-padded by `p` cells on both sides of `axis`, folded onto
/// the tensor it was padded from: the `p` border cells at each end added to the edge cell
/// they repeat (`n + 2p` → `n` cells along `axis`).
fn burn_fold_edges<B: Backend>(t: FloatTensor<B>, axis: usize, p: usize) -> FloatTensor<B> {
    let n = t.shape()[axis] - 2 * p;
    let part = |start: usize, len: usize| {
        let ranges: Vec<Slice> = (0..4)
            .map(|a| match a == axis {
                true => Slice::new(start as isize, Some((start + len) as isize), 1),
                false => Slice::full(),
            })
            .collect();
        B::float_slice(t.clone(), &ranges)
    };
    let at_end = |sum: FloatTensor<B>, before: usize, after: usize| {
        let mut pads = [(0, 0); 4];
        pads[axis] = (before, after);
        B::float_pad(sum, &pads, PadMode::Constant(0.0))
    };
    let low = at_end(B::float_sum_dim(part(0, p), axis), 0, n - 1);
    let high = at_end(B::float_sum_dim(part(n + p, p), axis), n - 1, 0);
    B::float_add(B::float_add(part(p, n), low), high)
}

/// The weight gradient as an im2col product on any backend: the columns of the padded input
/// `xp [B, C_in, H + k − 1, W + k − 1]` (`[B, C_in·k², H·W]`, ordered `(c, kh, kw)` like the
/// weight) times `g [B, C_out, H, W]`, summed over the batch.
fn im2col_weight_gradient<B: Backend>(
    padded: FloatTensor<B>,
    g: FloatTensor<B>,
    kernel: usize,
) -> FloatTensor<B> {
    let [b, c_out, h, w] = g.shape().dims();
    let c = padded.shape()[1];
    // The k² shifted windows, concatenated along H: `[B, C_in, k²·H, W]` is, in memory,
    // `[B, C_in·k², H·W]` (the views are copied once, by the concatenation).
    let windows: Vec<FloatTensor<B>> = (0..kernel * kernel)
        .map(|s| {
            let (dy, dx) = (s / kernel, s % kernel);
            B::float_slice(
                padded.clone(),
                &[
                    Slice::full(),
                    Slice::full(),
                    Slice::new(dy as isize, Some((dy + h) as isize), 1),
                    Slice::new(dx as isize, Some((dx + w) as isize), 1),
                ],
            )
        })
        .collect();
    let columns = B::float_reshape(
        B::float_cat(windows, 2),
        Shape::from(vec![b, c * kernel * kernel, h * w]),
    );
    // Transpose the small factor: columns [B, C_in·k², H·W] · gᵀ [B, H·W, C_out].
    let g = B::float_swap_dims(
        B::float_reshape(g, Shape::from(vec![b, c_out, h * w])),
        1,
        2,
    );
    let per_item = B::float_matmul(columns, g);
    let summed = B::float_reshape(
        B::float_sum_dim(per_item, 0),
        Shape::from(vec![c * kernel * kernel, c_out]),
    );
    B::float_reshape(
        B::float_swap_dims(summed, 0, 1),
        Shape::from(vec![c_out, c, kernel, kernel]),
    )
}

impl ConvOps for Flex {
    fn conv_same(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if conv_layer_flex::supports(&x, w.shape()[2]) {
            conv_layer_flex::forward_tensor(x, w, Some(b))
        } else {
            burn_conv_same::<Self>(x, w, Some(b))
        }
    }

    fn conv_same_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        want_x: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if conv_layer_flex::supports(&x, w.shape()[2]) {
            let [_, gx, gw, gb] =
                conv_layer_flex::backward_tensor(x, w, None, g, Padding::Zero, [false, want_x]);
            (gx, gw, gb)
        } else {
            burn_conv_grads::<Self>(x, w, g, Padding::Zero, want_x)
        }
    }

    fn conv_same_act(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        slope: f64,
        padding: Padding,
    ) -> FloatTensor<Self> {
        flex_conv_act(x, w, b, None, slope, padding)
    }

    fn conv_same_add_act(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        r: FloatTensor<Self>,
        slope: f64,
        padding: Padding,
    ) -> FloatTensor<Self> {
        flex_conv_act(x, w, b, Some(r), slope, padding)
    }

    fn conv_same_act_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        y: FloatTensor<Self>,
        g: FloatTensor<Self>,
        slope: f64,
        padding: Padding,
        want_z: bool,
        want_x: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        if conv_layer_flex::supports(&x, w.shape()[2]) {
            let act = Some((y, slope));
            let [gz, gx, gw, gb] =
                conv_layer_flex::backward_tensor(x, w, act, g, padding, [want_z, want_x]);
            (gz, gx, gw, gb)
        } else {
            burn_conv_act_grads::<Self>(x, w, y, g, slope, padding, want_x)
        }
    }
}

/// A corrector layer on Flex: the fused kernels where they apply, else Burn's ops.
fn flex_conv_act(
    x: FloatTensor<Flex>,
    w: FloatTensor<Flex>,
    b: FloatTensor<Flex>,
    r: Option<FloatTensor<Flex>>,
    slope: f64,
    padding: Padding,
) -> FloatTensor<Flex> {
    if conv_layer_flex::supports(&x, w.shape()[2]) {
        conv_layer_flex::forward_act_tensor(x, w, b, r, slope, padding)
    } else {
        burn_conv_act::<Flex>(x, w, b, r, slope, padding)
    }
}

/// The kernel of the input gradient of a stride-1 'same' convolution: `w [C_out, C_in, k, k]`
/// rotated by 180° with its channel axes swapped (`[C_in, C_out, k, k]`), since the transposed
/// convolution of a 'same' one is the 'same' convolution with that kernel.
fn rotated<B: Backend>(w: FloatTensor<B>) -> FloatTensor<B> {
    B::float_flip(B::float_swap_dims(w, 0, 1), &[2, 3])
}
#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl ConvOps for burn::backend::Cube {}

impl<B: ConvOps, C: CheckpointStrategy> ConvOps for Autodiff<B, C> {
    fn conv_same(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct ConvSameBackward;
        impl<B: ConvOps> Backward<B, 3> for ConvSameBackward {
            type State = (NodeId, NodeId);
            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                ck: &mut Checkpointer,
            ) {
                let (xid, wid) = ops.state;
                let x: FloatTensor<B> = ck.retrieve_node_output(xid);
                let w: FloatTensor<B> = ck.retrieve_node_output(wid);
                let g = grads.consume::<B>(&ops.node);
                let ids = ops.parents.map(|p| p.map(|n| n.id));
                let (gx, gw, gb) = B::conv_same_backward(x, w, g, ids[0].is_some());
                register::<B>(grads, ids, [gx, gw, gb]);
            }
        }
        match ConvSameBackward
            .prepare::<C>([x.node(), w.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let ids = (prep.checkpoint(&x), prep.checkpoint(&w));
                let out = B::conv_same(x.into_primitive(), w.into_primitive(), b.into_primitive());
                prep.finish(ids, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv_same(
                x.into_primitive(),
                w.into_primitive(),
                b.into_primitive(),
            )),
        }
    }

    fn conv_same_act(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        slope: f64,
        padding: Padding,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), w.node(), b.node()];
        conv_act_node::<B, C, 3>(nodes, [x, w, b], None, (slope, padding))
    }

    fn conv_same_add_act(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        r: FloatTensor<Self>,
        slope: f64,
        padding: Padding,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), w.node(), b.node(), r.node()];
        conv_act_node::<B, C, 4>(nodes, [x, w, b], Some(r), (slope, padding))
    }
}

/// [`ConvOps::conv_same_act`] or, with a residual, [`ConvOps::conv_same_add_act`] of `B`.
fn inner_conv_act<B: ConvOps>(
    [x, w, b]: [FloatTensor<B>; 3],
    r: Option<FloatTensor<B>>,
    (slope, padding): (f64, Padding),
) -> FloatTensor<B> {
    match r {
        Some(r) => B::conv_same_add_act(x, w, b, r, slope, padding),
        None => B::conv_same_act(x, w, b, slope, padding),
    }
}

/// The layer in Burn ops: convolution, residual, `leaky_relu`.
fn burn_conv_act<B: Backend>(
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    b: FloatTensor<B>,
    r: Option<FloatTensor<B>>,
    slope: f64,
    padding: Padding,
) -> FloatTensor<B> {
    let z = burn_conv_padded::<B>(x, w, Some(b), padding);
    let z = match r {
        Some(r) => B::float_add(z, r),
        None => z,
    };
    B::leaky_relu(z, slope.into())
}

/// Backward of [`ConvOps::conv_same_act`]: parents `x, w, b` and, when `N = 4`, the residual.
#[derive(Debug)]
struct ConvActBackward;

impl<B: ConvOps, const N: usize> Backward<B, N> for ConvActBackward {
    /// (x, w, the op's output, (slope, padding)).
    type State = (NodeId, NodeId, FloatTensor<B>, (f64, Padding));

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let (xid, wid, y, (slope, padding)) = ops.state;
        let x: FloatTensor<B> = ck.retrieve_node_output(xid);
        let w: FloatTensor<B> = ck.retrieve_node_output(wid);
        let g = grads.consume::<B>(&ops.node);
        let ids = ops.parents.each_ref().map(|p| p.as_ref().map(|n| n.id));
        let residual = ids.get(3).copied().flatten();
        let (want_z, want_x) = (residual.is_some(), ids[0].is_some());
        let (gz, gx, gw, gb) =
            B::conv_same_act_backward(x, w, y, g, slope, padding, want_z, want_x);
        if let Some(id) = residual {
            grads.register::<B>(id, gz);
        }
        register::<B>(grads, [ids[0], ids[1], ids[2]], [gx, gw, gb]);
    }
}

/// The node of [`ConvOps::conv_same_act`] with `N` parents (`nodes`: those of `x, w, b` and
/// of `r` when given).
fn conv_act_node<B: ConvOps, C: CheckpointStrategy, const N: usize>(
    nodes: [NodeGuard; N],
    [x, w, b]: [FloatTensor<Autodiff<B, C>>; 3],
    r: Option<FloatTensor<Autodiff<B, C>>>,
    act: (f64, Padding),
) -> FloatTensor<Autodiff<B, C>> {
    match ConvActBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let ids = (prep.checkpoint(&x), prep.checkpoint(&w));
            let out = inner_conv_act::<B>(
                [x.into_primitive(), w.into_primitive(), b.into_primitive()],
                r.map(|r| r.into_primitive()),
                act,
            );
            prep.finish((ids.0, ids.1, out.clone(), act), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(inner_conv_act::<B>(
            [x.into_primitive(), w.into_primitive(), b.into_primitive()],
            r.map(|r| r.into_primitive()),
            act,
        )),
    }
}

/// Registers the gradients `[∂x, ∂w, ∂b]` of a convolution's parents, each where it is tracked.
fn register<B: Backend>(
    grads: &mut Gradients,
    ids: [Option<NodeId>; 3],
    values: [FloatTensor<B>; 3],
) {
    for (id, value) in ids.into_iter().zip(values) {
        if let Some(id) = id {
            grads.register::<B>(id, value);
        }
    }
}

/// [`ConvOps::conv_same`] on tensors: `x [B, C_in, H, W]`, `w [C_out, C_in, k, k]`, `b [C_out]`.
pub fn conv_same(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ConvOps>::conv_same(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// [`ConvOps::conv_same_act`] on tensors: `LeakyReLU(conv(x, w) + b + r)` with negative
/// slope `slope`, the convolution 'same' with `padding`; `r [B, C_out, H, W]` an optional
/// residual.
pub fn conv_same_act(
    x: Tensor<4>,
    w: Tensor<4>,
    b: Tensor<1>,
    r: Option<Tensor<4>>,
    slope: f64,
    padding: Padding,
) -> Tensor<4> {
    let (x, w, b) = (x.into_dispatch(), w.into_dispatch(), b.into_dispatch());
    Tensor::from_dispatch(match r {
        Some(r) => {
            <Dispatch as ConvOps>::conv_same_add_act(x, w, b, r.into_dispatch(), slope, padding)
        }
        None => <Dispatch as ConvOps>::conv_same_act(x, w, b, slope, padding),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::test_tensors::{flex, host};
    use burn::backend::flex::FlexTensor;
    use burn::tensor::TensorData;

    /// The default bodies (what the GPU backends run) equal the Flex kernels, with zero and
    /// edge padding, with a residual: the layer's value and its four gradients, f64.
    #[test]
    fn default_bodies_match_the_flex_kernels() {
        let (x, w, r, g) = (
            flex(&[2, 3, 6, 5], 0.1),
            flex(&[4, 3, 3, 3], 0.2),
            flex(&[2, 4, 6, 5], 0.3),
            flex(&[2, 4, 6, 5], 0.4),
        );
        let b = FlexTensor::from_data(TensorData::new(vec![0.1f64, -0.2, 0.3, 0.05], [4]));
        let close = |a: FlexTensor, b: FlexTensor, what: &str| {
            let (a, b) = (host(a), host(b));
            assert_eq!(a.len(), b.len(), "{what}");
            let d = a
                .iter()
                .zip(&b)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max);
            assert!(d < 1e-12, "{what}: differ by {d:e}");
        };
        for padding in [Padding::Zero, Padding::Edge] {
            let run = |f: fn(_, _, _, _, f64, Padding) -> FlexTensor| {
                f(
                    x.clone(),
                    w.clone(),
                    b.clone(),
                    Some(r.clone()),
                    0.2,
                    padding,
                )
            };
            let y = run(flex_conv_act);
            close(y.clone(), run(burn_conv_act::<Flex>), "value");
            let (gz, gx, gw, gb) = <Flex as ConvOps>::conv_same_act_backward(
                x.clone(),
                w.clone(),
                y.clone(),
                g.clone(),
                0.2,
                padding,
                true,
                true,
            );
            let (dz, dx, dw, db) =
                burn_conv_act_grads::<Flex>(x.clone(), w.clone(), y, g.clone(), 0.2, padding, true);
            for (a, b, what) in [(gz, dz, "z"), (gx, dx, "x"), (gw, dw, "w"), (gb, db, "b")] {
                close(a, b, &format!("{padding:?} gradient {what}"));
            }
        }
    }
}
