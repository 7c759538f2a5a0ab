//! Helpers shared by the op tests: Flex tensors from and to host f64 data.

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

/// A Flex tensor of shape `dims` holding `data`.
pub fn flex(data: Vec<f64>, dims: [usize; 3]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, dims))
}

/// The values of a Flex tensor as f64.
pub fn to_vec(t: FlexTensor) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap()
}

/// The largest absolute difference of two equally long slices.
pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
