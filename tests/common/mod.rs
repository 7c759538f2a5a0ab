//! Helpers shared by the op tests: Flex tensors from and to host f64 data, test fields and
//! boundary sets. Not every test crate uses every helper.
#![allow(dead_code)]

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use diffsim::grid::{ArraySpec, Boundaries, Extrap, Grid, Location, Resolution, SideBc};
use diffsim::ops::{AdvectScheme, AdvectSpec};

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

/// Copies the first column/row into the duplicate last one of a periodic face array.
pub fn make_periodic_consistent(q: &mut [f64], s: &ArraySpec) {
    for item in q.chunks_mut(s.len()) {
        for j in 0..s.ny {
            for i in 0..s.nx {
                let (jj, ii) = (
                    if s.ext[2] == Extrap::Periodic {
                        j % s.period_y
                    } else {
                        j
                    },
                    if s.ext[0] == Extrap::Periodic {
                        i % s.period_x
                    } else {
                        i
                    },
                );
                item[j * s.nx + i] = item[jj * s.nx + ii];
            }
        }
    }
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

/// One advection test case: the boundary set, the spec, and `q`, `u`, `v` (batch `b`).
pub struct AdvectionCase {
    pub bcs: Boundaries,
    pub spec: AdvectSpec,
    pub q: Vec<f64>,
    pub u: Vec<f64>,
    pub v: Vec<f64>,
}

/// Every boundary set × advected array (centred scalar, u, v: self-advection) × scheme on a
/// 12x9 grid with batch `b`; `dt/dx = 1.7` sends back-traces up to ~3 cells beyond the edges.
pub fn advection_cases(b: usize) -> Vec<AdvectionCase> {
    let grid = Grid::new(Resolution::new(12, 9), [12.0, 9.0]).unwrap();
    let mut cases = Vec::new();
    for bcs in boundary_sets() {
        let [sc, su, sv] = advection_specs(&bcs, &grid);
        let u = field(b * su.len(), 0.1, 1.3);
        let v = field(b * sv.len(), 0.7, 1.1);
        for (sq, q) in [
            (sc, field(b * sc.len(), 1.9, 1.0)),
            (su, u.clone()),
            (sv, v.clone()),
        ] {
            for scheme in [AdvectScheme::SemiLagrangian, AdvectScheme::MacCormack] {
                let spec = AdvectSpec {
                    q: sq,
                    u: su,
                    v: sv,
                    dt_dx: 1.7,
                    scheme,
                };
                cases.push(AdvectionCase {
                    bcs,
                    spec,
                    q: q.clone(),
                    u: u.clone(),
                    v: v.clone(),
                });
            }
        }
    }
    cases
}

/// A projection's default-body solve (`forward`: `(u, v) ↦ (u, v, p)`) and adjoint
/// (`adjoint`: `(ḡu, ḡv, ḡp) ↦ (ū, v̄)`) against the Flex kernels on `proj`'s grid, batch 2:
/// the largest difference of each output `u, v, p, ū, v̄`.
pub fn projection_vs_kernel(
    proj: &std::sync::Arc<diffsim::ops::PressureProjection>,
    forward: impl Fn(FlexTensor, FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor),
    adjoint: impl Fn(FlexTensor, FlexTensor, FlexTensor) -> (FlexTensor, FlexTensor),
) -> [(&'static str, f64); 5] {
    use burn::backend::Flex;
    use diffsim::ops::ProjectionOps;
    let (b, grid) = (2, proj.system.grid);
    let (du, dv, dp) = (
        [b, grid.ny, grid.nx + 1],
        [b, grid.ny + 1, grid.nx],
        [b, grid.ny, grid.nx],
    );
    let (u, v) = (
        field(b * grid.ny * (grid.nx + 1), 0.3, 1.0),
        field(b * (grid.ny + 1) * grid.nx, 1.3, 1.0),
    );
    let (ku, kv, kp) =
        <Flex as ProjectionOps>::project(flex(u.clone(), du), flex(v.clone(), dv), proj.clone());
    let (ru, rv, rp) = forward(flex(u, du), flex(v, dv));
    let (gu, gv, gp) = (
        field(b * grid.ny * (grid.nx + 1), 2.1, 1.0),
        field(b * (grid.ny + 1) * grid.nx, 0.9, 1.0),
        field(b * grid.cells(), 1.7, 0.3),
    );
    let (ku_bar, kv_bar) = <Flex as ProjectionOps>::project_backward(
        flex(gu.clone(), du),
        flex(gv.clone(), dv),
        flex(gp.clone(), dp),
        proj.clone(),
    );
    let (ru_bar, rv_bar) = adjoint(flex(gu, du), flex(gv, dv), flex(gp, dp));
    let diff = |k: FlexTensor, r: FlexTensor| max_diff(&to_vec(k), &to_vec(r));
    [
        ("u", diff(ku, ru)),
        ("v", diff(kv, rv)),
        ("p", diff(kp, rp)),
        ("ū", diff(ku_bar, ru_bar)),
        ("v̄", diff(kv_bar, rv_bar)),
    ]
}
