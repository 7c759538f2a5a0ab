//! f64 Flex tensors for the kernels' tests.

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

/// A tensor of shape `dims` holding `sin(0.77·(k + seed))` at flat index `k`.
pub fn flex(dims: &[usize], seed: f64) -> FlexTensor {
    let n = dims.iter().product::<usize>();
    let v: Vec<f64> = (0..n).map(|k| ((k as f64 + seed) * 0.77).sin()).collect();
    FlexTensor::from_data(TensorData::new(v, dims.to_vec()))
}

/// The values of `t` as f64.
pub fn host(t: FlexTensor) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap()
}
