//! Helpers shared by the op tests: Flex tensors from and to host f64 data, test fields and
//! boundary sets. Not every test crate uses every helper.
#![allow(dead_code)]

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use diffsim::grid::{ArraySpec, Boundaries, Extrap, Grid, Location, SideBc};

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

/// A smooth, non-symmetric pseudo-random field of `n` values (deterministic).
pub fn field(n: usize, seed: f64, amp: f64) -> Vec<f64> {
    (0..n)
        .map(|k| {
            amp * ((k as f64 * 0.731 + seed).sin() + 0.5 * (k as f64 * 0.113 + 2.0 * seed).cos())
        })
        .collect()
}

/// Boundary sets covering every side kind.
pub fn boundary_sets() -> Vec<Boundaries> {
    vec![
        Boundaries::all(SideBc::Open),
        Boundaries::all(SideBc::Periodic),
        Boundaries::all(SideBc::Dirichlet(0.0)),
        Boundaries {
            x_lo: SideBc::Dirichlet(0.5),
            x_hi: SideBc::Open,
            y_lo: SideBc::Periodic,
            y_hi: SideBc::Periodic,
        },
        Boundaries {
            x_lo: SideBc::Dirichlet(0.0),
            x_hi: SideBc::Dirichlet(0.0),
            y_lo: SideBc::Open,
            y_hi: SideBc::ZeroGradient,
        },
    ]
}

/// The velocity specs and a centred scalar spec with constants on its non-periodic sides.
pub fn advection_specs(bcs: &Boundaries, grid: &Grid) -> [ArraySpec; 3] {
    let (su, sv) = bcs.velocity_specs(grid);
    let px = bcs.periodic(0);
    let py = bcs.periodic(1);
    let ext = [
        if px {
            Extrap::Periodic
        } else {
            Extrap::Value(0.3)
        },
        if px {
            Extrap::Periodic
        } else {
            Extrap::ZeroGradient
        },
        if py {
            Extrap::Periodic
        } else {
            Extrap::Value(-0.2)
        },
        if py {
            Extrap::Periodic
        } else {
            Extrap::ZeroGradient
        },
    ];
    [ArraySpec::new(grid, Location::Center, ext), su, sv]
}
