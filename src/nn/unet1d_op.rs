//! A whole 1D U-Net application as one op: `x [B, inputs, N]` and the packed parameters
//! `[P]` → `y [B, 1, N]`, with one backward node (parents: `x` and the parameters) whose
//! adjoint runs the program of [`UNetArch`] in reverse.
//!
//! On Flex (f32, f64, kernels of 1–4 taps) both passes are [`super::unet1d_flex`]; other
//! backends run the default bodies, the same program in Burn ops (`conv1d`, slices,
//! concatenations) in `[B, C, L]`, differentiated by Burn.

use super::line_conv_flex::{self, Activation, LineConvSpec};
use super::unet1d_flex;
use super::unet1d_plan::{Step, UNetArch};
use super::up_join::upsample_axis;
use crate::ops::reference::{Ft, vjp};
use crate::ops::{contiguous, data, with_float};
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use std::sync::Arc;

/// Whole-network application of a 1D U-Net.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait UNetOps: Backend {
    /// `(y [B, 1, N], saved)`: the network `arch` with packed `params [P]` applied to
    /// `x [B, inputs, N]`; `saved` is what [`UNetOps::unet1d_backward`] reads.
    fn unet1d(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        arch: Arc<UNetArch>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        (default_forward::<Self>(x.clone(), params, &arch), x)
    }
    /// `(∂x, ∂params)` from the output gradient `g [B, 1, N]`.
    fn unet1d_backward(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        saved: FloatTensor<Self>,
        g: FloatTensor<Self>,
        arch: Arc<UNetArch>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let _ = saved;
        let [gx, gp] = vjp::<Self, 2, 1>([x, params], [g], |[x, p]| {
            [default_forward::<Autodiff<Self>>(x, p, &arch)]
        });
        (gx, gp)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl UNetOps for burn::backend::Cube {}

/// One layer in Burn ops on `x [B, C, L]`: pad, `conv1d`, residual, activation.
fn conv_layer<B: Backend>(
    x: Ft<B>,
    w: Ft<B>,
    b: Ft<B>,
    r: Option<Ft<B>>,
    spec: &LineConvSpec,
) -> Ft<B> {
    let dims = x.dims();
    let (bsz, c, l) = (dims[0], dims[1], dims[2]);
    let side = |count: usize, at: usize| -> Ft<B> {
        if spec.edge {
            let edge = x.clone().narrow(2, at, at + 1);
            Ft::cat(vec![edge; count], 2)
        } else {
            Ft::zeros(&[bsz, c, count], &x.0)
        }
    };
    let mut parts = Vec::new();
    if spec.pad[0] > 0 {
        parts.push(side(spec.pad[0], 0));
    }
    parts.push(x.clone());
    if spec.pad[1] > 0 {
        parts.push(side(spec.pad[1], l - 1));
    }
    let xp = Ft::cat(parts, 2);
    let mut y = Ft(B::conv1d(
        xp.0,
        w.0,
        Some(b.0),
        ConvOptions::new([spec.stride], [0], [1], 1),
    ));
    if let Some(r) = r {
        y = y + r;
    }
    Ft(match spec.act {
        Activation::Linear => y.0,
        Activation::Relu => B::relu(y.0),
        Activation::LeakyRelu(s) => B::leaky_relu(y.0, s.into()),
    })
}

/// The default body: the program in Burn ops.
fn default_forward<B: Backend>(
    x: FloatTensor<B>,
    params: FloatTensor<B>,
    arch: &UNetArch,
) -> FloatTensor<B> {
    let x = Ft(x);
    let dims = x.dims();
    let (b, c, n) = (dims[0], dims[1], dims[2]);
    let len = arch.lengths(n);
    let p = Ft(params);
    let mut slots: Vec<Option<Ft<B>>> = vec![None; arch.channels.len()];
    slots[0] = Some(if arch.end_padding > 0 {
        let pad = Ft::zeros(&[b, c, arch.end_padding], &x.0);
        Ft::cat(vec![x, pad], 2)
    } else {
        x
    });
    let get = |s: &[Option<Ft<B>>], k: usize| s[k].clone().expect("slot written before use");
    for step in &arch.steps {
        match *step {
            Step::Conv {
                layer,
                x,
                y,
                residual,
            } => {
                let l = &arch.layers[layer];
                let w = p
                    .clone()
                    .narrow(0, l.weight, l.bias)
                    .reshape(&[l.co, l.ci, l.k]);
                let bias = p.clone().narrow(0, l.bias, l.bias + l.co);
                let r = residual.map(|r| get(&slots, r));
                slots[y] = Some(conv_layer(get(&slots, x), w, bias, r, &l.spec));
            }
            Step::Upsample { x, y } => slots[y] = Some(upsample_axis(get(&slots, x), 2)),
            Step::Skip { x, y, .. } => {
                let skip = get(&slots, x).narrow(2, 0, len[y]);
                slots[y] = Some(Ft::cat(vec![get(&slots, y), skip], 1));
            }
        }
    }
    get(&slots, arch.output()).narrow(2, 0, n).0
}

fn flex_ready(arch: &UNetArch) -> bool {
    arch.layers.iter().all(|l| line_conv_flex::supports(l.k))
}

impl UNetOps for Flex {
    fn unet1d(x: FlexTensor, params: FlexTensor, arch: Arc<UNetArch>) -> (FlexTensor, FlexTensor) {
        if !flex_ready(&arch) {
            return (default_forward::<Self>(x.clone(), params, &arch), x);
        }
        let [b, _, n] = x.shape().dims();
        let (x, params) = (contiguous(x), contiguous(params));
        with_float!(x, T => {
            let (y, saved) = unet1d_flex::forward::<T>(&arch, data(&params), data(&x), [b, n]);
            let len = saved.len();
            (
                FlexTensor::from_data(TensorData::new(y, [b, 1, n])),
                FlexTensor::from_data(TensorData::new(saved, [len])),
            )
        })
    }

    fn unet1d_backward(
        x: FlexTensor,
        params: FlexTensor,
        saved: FlexTensor,
        g: FlexTensor,
        arch: Arc<UNetArch>,
    ) -> (FlexTensor, FlexTensor) {
        if !flex_ready(&arch) {
            let [gx, gp] = vjp::<Self, 2, 1>([x, params], [g], |[x, p]| {
                [default_forward::<Autodiff<Self>>(x, p, &arch)]
            });
            return (gx, gp);
        }
        let [b, c, n] = x.shape().dims();
        let [params, saved, g] = [params, saved, g].map(contiguous);
        with_float!(g, T => {
            let (gx, gp) = unet1d_flex::backward::<T>(&arch, data(&params), data(&saved), data(&g), [b, n]);
            (
                FlexTensor::from_data(TensorData::new(gx, [b, c, n])),
                FlexTensor::from_data(TensorData::new(gp, [arch.params])),
            )
        })
    }
}

/// The network's backward node (parents: `x`, the parameters).
#[derive(Debug)]
struct UNetBackward;

impl<B: UNetOps> Backward<B, 2> for UNetBackward {
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        Arc<UNetArch>,
    );
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, params, saved, arch) = ops.state;
        let g = grads.consume::<B>(&ops.node);
        let (gx, gp) = B::unet1d_backward(x, params, saved, g, arch);
        for (parent, grad) in ops.parents.iter().zip([gx, gp]) {
            if let Some(p) = parent {
                grads.register::<B>(p.id, grad);
            }
        }
    }
}

impl<B: UNetOps, C: CheckpointStrategy> UNetOps for Autodiff<B, C> {
    fn unet1d(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        arch: Arc<UNetArch>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        match UNetBackward
            .prepare::<C>([x.node(), params.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, params) = (x.into_primitive(), params.into_primitive());
                let (y, saved) = B::unet1d(x.clone(), params.clone(), arch.clone());
                let out = Self::from_inner(saved.clone());
                (prep.finish((x, params, saved, arch), y), out)
            }
            OpsKind::UnTracked(prep) => {
                let (y, saved) = B::unet1d(x.into_primitive(), params.into_primitive(), arch);
                (prep.finish(y), Self::from_inner(saved))
            }
        }
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn unet1d_backward(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        saved: FloatTensor<Self>,
        g: FloatTensor<Self>,
        arch: Arc<UNetArch>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gx, gp) = B::unet1d_backward(
            Self::inner(x),
            Self::inner(params),
            Self::inner(saved),
            Self::inner(g),
            arch,
        );
        (Self::from_inner(gx), Self::from_inner(gp))
    }
}

/// [`UNetOps::unet1d`] on tensors: `x [B, inputs, N]`, `params [P]` → `[B, 1, N]`.
pub fn unet1d(x: Tensor<3>, params: Tensor<1>, arch: Arc<UNetArch>) -> Tensor<3> {
    let (y, _) = <Dispatch as UNetOps>::unet1d(x.into_dispatch(), params.into_dispatch(), arch);
    Tensor::from_dispatch(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::test_tensors::{flex, host};

    fn close(a: FlexTensor, b: FlexTensor, tol: f64) {
        let (a, b) = (host(a), host(b));
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let e = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(e < tol * scale, "{e:e} (scale {scale:e})");
    }

    /// A small program with every kind of step: a stride-2 zero-padded down layer, an edge-
    /// padded residual pair, an upsampling joined with the input, a linear output layer.
    fn small_arch() -> UNetArch {
        let mut a = UNetArch::new(3, 3);
        let down = a.conv(
            [3, 5, 2],
            0,
            None,
            LineConvSpec {
                stride: 2,
                pad: [0, 0],
                edge: false,
                act: Activation::Relu,
            },
        );
        let res = LineConvSpec {
            stride: 1,
            pad: [1, 1],
            edge: true,
            act: Activation::LeakyRelu(0.2),
        };
        let h = a.conv([5, 5, 3], down, None, res);
        let y = a.conv([5, 5, 3], h, Some(down), res);
        let joined = a.upsample_join(y, 0);
        a.conv(
            [8, 1, 2],
            joined,
            None,
            LineConvSpec {
                stride: 1,
                pad: [0, 1],
                edge: true,
                act: Activation::Linear,
            },
        );
        a
    }

    /// The kernels (forward and both gradients) against the default body and Burn's
    /// autodiff of it, in f64, for batches of one and several chunks, whole grains or not.
    #[test]
    fn kernels_match_the_default_body() {
        let arch = Arc::new(small_arch());
        for (b, n) in [(1, 5), (5, 9), (37, 13), (64, 6)] {
            let x = flex(&[b, 3, n], 1.0);
            let p = flex(&[arch.params], 2.0);
            let g = flex(&[b, 1, n], 3.0);
            let (y, saved) = Flex::unet1d(x.clone(), p.clone(), arch.clone());
            close(
                y,
                default_forward::<Flex>(x.clone(), p.clone(), &arch),
                1e-12,
            );
            let (gx, gp) =
                Flex::unet1d_backward(x.clone(), p.clone(), saved, g.clone(), arch.clone());
            let [wx, wp] = vjp::<Flex, 2, 1>([x, p], [g], |[x, p]| {
                [default_forward::<Autodiff<Flex>>(x, p, &arch)]
            });
            close(gx, wx, 1e-12);
            close(gp, wp, 1e-12);
        }
    }

    #[test]
    fn upsampling_repeats_the_edges() {
        let x = FlexTensor::from_data(TensorData::new(vec![0.0f64, 4.0, 8.0], [1, 1, 3]));
        assert_eq!(
            host(upsample_axis::<Flex>(Ft(x), 2).0),
            vec![0.0, 1.0, 3.0, 5.0, 7.0, 8.0]
        );
    }
}
