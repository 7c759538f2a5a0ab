//! The corrector's layers on Flex tensors: the kernels of [`super::conv_flex`] behind
//! [`ConvOps`](super::ConvOps)' forward ops and its two backward ops (one call per layer
//! computes every gradient of the layer).

use super::conv_flex::{self, ConvShape, Padding};
use crate::ops::{contiguous, data, with_float};
use burn::backend::flex::FlexTensor;
use burn::backend::{DType, TensorMetadata};
use burn::tensor::TensorData;

/// The shape of a 'same' convolution of `x [b, ci, h, w]` with `w [co, ci, k, k]`.
fn shape_of(x: &FlexTensor, w: &FlexTensor) -> ConvShape {
    let [b, ci, h, width] = x.shape().dims();
    let [co, wci, k, k2] = w.shape().dims();
    assert!(
        wci == ci && k == k2 && k % 2 == 1,
        "conv_same: weight {:?} for input {:?}",
        w.shape(),
        x.shape()
    );
    ConvShape {
        b,
        ci,
        co,
        h,
        w: width,
        k,
    }
}

/// Whether the kernels run a convolution of `x` with a `kernel`×`kernel` kernel: f32 or f64,
/// kernel 1, 3, 5 or 7; others take Burn's convolution.
pub fn supports(x: &FlexTensor, kernel: usize) -> bool {
    matches!(x.dtype(), DType::F32 | DType::F64) && matches!(kernel, 1 | 3 | 5 | 7)
}

/// [`conv_flex::forward`] on f32 or f64 Flex tensors ([`supports`]).
pub fn forward_tensor(x: FlexTensor, w: FlexTensor, bias: Option<FlexTensor>) -> FlexTensor {
    let s = shape_of(&x, &w);
    let (x, w) = (contiguous(x), contiguous(w));
    let bias = bias.map(contiguous);
    let out = with_float!(x, T => TensorData::new(
        conv_flex::forward(data::<T>(&x), data(&w), bias.as_ref().map(data), s),
        [s.b, s.co, s.h, s.w],
    ));
    FlexTensor::from_data(out)
}

/// [`conv_flex::forward_act`] on f32 or f64 Flex tensors ([`supports`]): the LeakyReLU of
/// negative slope `slope` of `conv(x, w) + bias + r` ('same', with `padding`),
/// `r [b, co, h, w]` an optional residual.
pub fn forward_act_tensor(
    x: FlexTensor,
    w: FlexTensor,
    bias: FlexTensor,
    r: Option<FlexTensor>,
    slope: f64,
    padding: Padding,
) -> FlexTensor {
    let s = shape_of(&x, &w);
    let (x, w, bias) = (contiguous(x), contiguous(w), contiguous(bias));
    let r = r.map(contiguous);
    let out = with_float!(x, T => TensorData::new(
        conv_flex::forward_act(data::<T>(&x), data(&w), data(&bias), r.as_ref().map(data::<T>), slope, s, padding),
        [s.b, s.co, s.h, s.w],
    ));
    FlexTensor::from_data(out)
}

/// [`conv_flex::layer_backward`] on f32 or f64 Flex tensors ([`supports`]): `[∂z, ∂x, ∂w, ∂b]`
/// of the layer with input `x`, weights `w`, output gradient `g` and, for a LeakyReLU layer,
/// its output `y` and slope; the convolution 'same' with `padding`. `∂z` and `∂x` are empty
/// (shape `[0]`) unless asked for.
pub fn backward_tensor(
    x: FlexTensor,
    w: FlexTensor,
    act: Option<(FlexTensor, f64)>,
    g: FlexTensor,
    padding: Padding,
    want: [bool; 2],
) -> [FlexTensor; 4] {
    let s = shape_of(&x, &w);
    let (x, w, g) = (contiguous(x), contiguous(w), contiguous(g));
    let act = act.map(|(y, slope)| (contiguous(y), slope));
    with_float!(x, T => {
        let grads = conv_flex::layer_backward::<T>(
            data(&x),
            data(&w),
            act.as_ref().map(|(y, slope)| (data::<T>(y), *slope)),
            data(&g),
            s,
            padding,
            want,
        );
        let tensor = |v: Option<Vec<T>>, dims: [usize; 4]| {
            FlexTensor::from_data(match v {
                Some(v) => TensorData::new(v, dims),
                None => TensorData::new(Vec::<T>::new(), [0]),
            })
        };
        [
            tensor(grads.z, [s.b, s.co, s.h, s.w]),
            tensor(grads.x, [s.b, s.ci, s.h, s.w]),
            tensor(Some(grads.w), [s.co, s.ci, s.k, s.k]),
            FlexTensor::from_data(TensorData::new(grads.bias, [s.co])),
        ]
    })
}
