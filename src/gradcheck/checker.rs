//! Finite-difference gradient checker for functions of `[B, ny, nx]` tensors (f64).
//!
//! [`check`] compares the reverse-mode gradient of a scalar function with central finite
//! differences, along random smooth directions (sums of low-frequency sines with random
//! phases and amplitudes, one per input) and along single entries. A probe passes iff
//! `|AD − FD| ≤ atol + rtol·|FD|`; a non-finite value fails it. Reported relative errors are
//! `|AD − FD| / (|FD| + atol/rtol)`.
//!
//! Semi-Lagrangian interpolation is only piecewise smooth in the velocity: a difference step
//! that moves a back-traced point across a cell edge makes the difference quotient wrong.
//! Every finite difference is therefore taken with two steps, `ε` and `ε/2`; where their
//! quotients disagree by more than the tolerance the probe straddles a kink and is drawn
//! again (up to [`GradCheckConfig::redraws`] times; the report counts redraws).

use crate::error::{DiffsimError, Result};
use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Tolerances and probe counts.
#[derive(Clone, Debug, Serialize)]
pub struct GradCheckConfig {
    /// Finite-difference step along a unit-RMS smooth direction (small: such a step moves
    /// every back-traced point, so a larger one crosses more interpolation kinks).
    pub eps: f64,
    /// Finite-difference step of a single entry (larger: solver round-off over the step is
    /// the error that matters there).
    pub entry_eps: f64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Random smooth directions.
    pub directions: usize,
    /// Single-entry probes per input.
    pub entries: usize,
    /// Redraws allowed per probe when the two step sizes disagree (a kink).
    pub redraws: usize,
    /// Seed of the directions and entries.
    pub seed: u64,
}

impl Default for GradCheckConfig {
    fn default() -> Self {
        Self {
            eps: 1e-6,
            entry_eps: 1e-5,
            rtol: 1e-5,
            atol: 1e-9,
            directions: 3,
            entries: 3,
            redraws: 8,
            seed: 7,
        }
    }
}

/// One compared derivative.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    /// `direction k` or `input i, entry k`.
    pub what: String,
    /// Reverse-mode value.
    pub ad: f64,
    /// Central finite difference.
    pub fd: f64,
    /// `|AD − FD| / (|FD| + atol/rtol)`: the relative error, floored where `FD` is tiny; the
    /// probe passes iff this is at most `rtol`.
    pub rel_error: f64,
    /// Whether it met the tolerance.
    pub passed: bool,
}

/// The outcome of one check.
#[derive(Clone, Debug, Serialize)]
pub struct GradCheckReport {
    /// What was checked.
    pub name: String,
    /// Largest relative error over the probes.
    pub max_rel_error: f64,
    /// Probes redrawn because they straddled a kink.
    pub redraws: usize,
    /// All probes passed.
    pub passed: bool,
    /// The probes.
    pub probes: Vec<Probe>,
}

/// A function under test: inputs on an autodiff device → a scalar tensor `[1]`.
pub type Loss<'a> = dyn Fn(&[Tensor<3>]) -> Tensor<1> + 'a;

/// An f64 tensor on `device` from `values` with shape `dims`.
pub fn tensor_f64(values: Vec<f64>, dims: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values, dims), (device, DType::F64))
}

/// The values of a tensor as f64.
pub fn values(t: &Tensor<3>) -> Vec<f64> {
    t.clone()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("f64 data")
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f64>()
}

/// A smooth random field of shape `dims`, RMS 1: a sum of three sines of wavelength ≥ 4 cells.
pub fn smooth_direction(dims: [usize; 3], rng: &mut StdRng) -> Vec<f64> {
    let [b, ny, nx] = dims;
    let modes: Vec<[f64; 4]> = (0..3 * b.max(1))
        .map(|_| {
            [
                rng.random_range(-1.0..1.0),
                rng.random_range(0.2..1.5),
                rng.random_range(0.2..1.5),
                rng.random_range(0.0..std::f64::consts::TAU),
            ]
        })
        .collect();
    let mut d: Vec<f64> = (0..b * ny * nx)
        .map(|k| {
            let (bi, j, i) = (k / (ny * nx), (k / nx) % ny, k % nx);
            modes[3 * bi..3 * bi + 3]
                .iter()
                .map(|[a, kx, ky, ph]| a * (kx * i as f64 + ky * j as f64 + ph).sin())
                .sum()
        })
        .collect();
    let rms = (d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64).sqrt();
    d.iter_mut().for_each(|x| *x /= rms.max(1e-300));
    d
}

/// A smooth random f64 tensor of shape `dims` times `scale` plus `offset`.
pub fn field(dims: [usize; 3], scale: f64, offset: f64, seed: u64, dev: &Device) -> Tensor<3> {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = smooth_direction(dims, &mut rng);
    tensor_f64(
        d.into_iter().map(|x| offset + scale * x).collect(),
        dims,
        dev,
    )
}

/// `Σ w·t` with a fixed smooth weight `w`.
pub fn weighted(t: Tensor<3>, seed: u64) -> Tensor<1> {
    let w = field(t.dims(), 1.0, 0.0, seed, &t.device());
    (t * w).sum()
}

/// Checks the gradient of `f` at `inputs` (f64 tensors on an autodiff device).
pub fn check(
    name: &str,
    inputs: &[Tensor<3>],
    f: &Loss<'_>,
    cfg: &GradCheckConfig,
) -> Result<GradCheckReport> {
    let dims: Vec<[usize; 3]> = inputs.iter().map(|t| t.dims()).collect();
    let device = inputs
        .first()
        .ok_or_else(|| DiffsimError::config("gradcheck needs at least one input"))?
        .device();
    let base: Vec<Vec<f64>> = inputs.iter().map(values).collect();
    // Reverse mode.
    let tracked: Vec<Tensor<3>> = base
        .iter()
        .zip(&dims)
        .map(|(x, d)| tensor_f64(x.clone(), *d, &device).require_grad())
        .collect();
    let loss = f(&tracked);
    let grads = loss.backward();
    let ad: Vec<Vec<f64>> = tracked
        .iter()
        .zip(&dims)
        .map(|(t, d)| match t.grad(&grads) {
            Some(g) => g
                .into_data()
                .convert::<f64>()
                .try_into_vec::<f64>()
                .expect("f64 gradient"),
            None => vec![0.0; d.iter().product()],
        })
        .collect();
    drop(grads);
    // f at base + h·dir (untracked inputs: no graph is kept).
    let eval = |dir: &Vec<Vec<f64>>, h: f64| -> f64 {
        let xs: Vec<Tensor<3>> = base
            .iter()
            .zip(dir)
            .zip(&dims)
            .map(|((x, d), dm)| {
                let v = x.iter().zip(d).map(|(x, d)| x + h * d).collect();
                tensor_f64(v, *dm, &device)
            })
            .collect();
        scalar(f(&xs))
    };
    let n_probes = cfg.directions + cfg.entries * inputs.len();
    let draw = |p: usize, rng: &mut StdRng| -> (String, Vec<Vec<f64>>, f64) {
        if p < cfg.directions {
            let dir = dims.iter().map(|d| smooth_direction(*d, rng)).collect();
            (format!("direction {p}"), dir, cfg.eps)
        } else {
            let input = (p - cfg.directions) / cfg.entries;
            let mut dir: Vec<Vec<f64>> =
                dims.iter().map(|d| vec![0.0; d.iter().product()]).collect();
            let k = rng.random_range(0..dir[input].len());
            dir[input][k] = 1.0;
            (format!("input {input}, entry {k}"), dir, cfg.entry_eps)
        }
    };
    let ad_along = |dir: &Vec<Vec<f64>>| -> f64 {
        ad.iter()
            .zip(dir)
            .map(|(g, d)| g.iter().zip(d).map(|(g, d)| g * d).sum::<f64>())
            .sum()
    };
    Ok(probe_all(name, n_probes, draw, ad_along, eval, cfg))
}

/// Draws `n_probes` probes (`draw` gives a label, a direction and its finite-difference step),
/// compares the reverse-mode derivative along each (`ad_along`) with central differences of
/// `eval` at two steps, `h` and `h/2`, redrawing a probe whose two quotients disagree (a
/// kink), and reports.
fn probe_all<D>(
    name: &str,
    n_probes: usize,
    mut draw: impl FnMut(usize, &mut StdRng) -> (String, D, f64),
    ad_along: impl Fn(&D) -> f64,
    eval: impl Fn(&D, f64) -> f64,
    cfg: &GradCheckConfig,
) -> GradCheckReport {
    let tol = |fd: f64| cfg.atol + cfg.rtol * fd.abs();
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let (mut probes, mut redraws) = (Vec::new(), 0);
    for p in 0..n_probes {
        let mut attempt = 0;
        loop {
            let (what, dir, h) = draw(p, &mut rng);
            let ad_val = ad_along(&dir);
            let fd1 = (eval(&dir, h) - eval(&dir, -h)) / (2.0 * h);
            let fd2 = (eval(&dir, h / 2.0) - eval(&dir, -h / 2.0)) / h;
            let kink = (fd1 - fd2).abs() > tol(fd2);
            if kink && attempt < cfg.redraws && fd1.is_finite() && fd2.is_finite() {
                attempt += 1;
                redraws += 1;
                continue;
            }
            let err = (ad_val - fd2).abs();
            let finite = ad_val.is_finite() && fd2.is_finite();
            probes.push(Probe {
                what,
                ad: ad_val,
                fd: fd2,
                rel_error: err / (fd2.abs() + cfg.atol / cfg.rtol),
                passed: finite && !kink && err <= tol(fd2),
            });
            break;
        }
    }
    let max_rel_error = probes
        .iter()
        .map(|p| {
            if p.rel_error.is_finite() {
                p.rel_error
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max);
    GradCheckReport {
        name: name.to_string(),
        max_rel_error,
        redraws,
        passed: probes.iter().all(|p| p.passed),
        probes,
    }
}

/// Checks a hand-written gradient `ad` of a scalar function `f` of a flat parameter vector,
/// at the parameters `0` (the caller maps them onto its inputs, rotations as rotation-vector
/// perturbations), along `cfg.directions` random unit directions and `cfg.entries · groups`
/// single entries, with the same two-step kink test as [`check`].
pub fn check_flat(
    name: &str,
    ad: &[f64],
    f: &dyn Fn(&[f64]) -> f64,
    groups: usize,
    cfg: &GradCheckConfig,
) -> GradCheckReport {
    let n = ad.len();
    let draw = |p: usize, rng: &mut StdRng| -> (String, Vec<f64>, f64) {
        if p < cfg.directions {
            let mut d: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let norm = d.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
            d.iter_mut().for_each(|x| *x /= norm);
            (format!("direction {p}"), d, cfg.eps)
        } else {
            let k = rng.random_range(0..n);
            let mut d = vec![0.0; n];
            d[k] = 1.0;
            (format!("entry {k}"), d, cfg.entry_eps)
        }
    };
    let ad_along = |dir: &Vec<f64>| -> f64 { ad.iter().zip(dir).map(|(g, d)| g * d).sum() };
    let eval = |dir: &Vec<f64>, h: f64| f(&dir.iter().map(|d| h * d).collect::<Vec<_>>());
    probe_all(
        name,
        cfg.directions + cfg.entries * groups,
        draw,
        ad_along,
        eval,
        cfg,
    )
}
