//! The box-toss model and residuals: the cube as a rigid body whose 8 contact corners and
//! friction coefficient are the 25 parameters, the measured states, and the weighted
//! prediction residuals with their Jacobian from the rigid adjoint's contact-parameter
//! gradients.

use super::BoxTossConfig;
use crate::error::{DiffsimError, Result};
use crate::io::{Pose, Tosses};
use crate::rigid::{BodyState, Implicit, RigidBody, RigidModel, RigidScheme, StateBar, so3};
use crate::solids::contact::{Contact, Shape};
use crate::solids::math::{V3, sub};
use rayon::prelude::*;

/// Parameters: the friction coefficient, then the 8 corners (x, y, z each).
pub const PARAMETERS: usize = 25;

/// The corners' octants in Dojo's order: bottom four (z < 0), then top four.
pub const OCTANTS: [[f64; 3]; 8] = [
    [1.0, 1.0, -1.0],
    [1.0, -1.0, -1.0],
    [-1.0, 1.0, -1.0],
    [-1.0, -1.0, -1.0],
    [1.0, 1.0, 1.0],
    [1.0, -1.0, 1.0],
    [-1.0, 1.0, 1.0],
    [-1.0, -1.0, 1.0],
];

/// Residuals per predicted frame: position (3), velocity (3), rotation (3), angular velocity
/// (3).
pub const PER_FRAME: usize = 12;

/// Weight of the velocity residuals: `√0.1` (Dojo's Q = 0.1 on velocities).
fn velocity_weight() -> f64 {
    0.1f64.sqrt()
}

/// Weight of the rotation residual `log(q q*⁻¹)`: ½, so that its square equals Dojo's
/// `|q − q*|²` to second order.
const ROTATION_WEIGHT: f64 = 0.5;

/// The parameters `(μ, corners)` with every corner at `half` on its octant's side.
pub fn parameters(mu: f64, half: f64) -> Vec<f64> {
    std::iter::once(mu)
        .chain(OCTANTS.iter().flatten().map(|s| s * half))
        .collect()
}

/// The box bounds of the parameters: `μ ∈ friction`, each corner coordinate's magnitude in
/// `corner` on its octant's side.
pub fn bounds(cfg: &BoxTossConfig) -> (Vec<f64>, Vec<f64>) {
    let [c0, c1] = cfg.corner_bounds;
    let (mut lo, mut hi) = (vec![cfg.friction_bounds[0]], vec![cfg.friction_bounds[1]]);
    for s in OCTANTS.iter().flatten() {
        lo.push(if *s > 0.0 { c0 } else { -c1 });
        hi.push(if *s > 0.0 { c1 } else { -c0 });
    }
    (lo, hi)
}

/// Corner `k` of the parameters.
pub fn corner(p: &[f64], k: usize) -> V3 {
    [p[1 + 3 * k], p[2 + 3 * k], p[3 + 3 * k]]
}

/// The cube (mass and inertia of the nominal one) with its corners and friction from `p`,
/// on the ground `z = 0` under gravity `9.81 · length_scale`.
pub fn model(cfg: &BoxTossConfig, p: &[f64]) -> Result<RigidModel> {
    let a = cfg.half_edge;
    let j = cfg.mass * 2.0 * a * a / 3.0;
    let mut body = RigidBody::given(cfg.mass, [[j, 0.0, 0.0], [0.0, j, 0.0], [0.0, 0.0, j]])?;
    body.points = (0..8).map(|k| corner(p, k)).collect();
    let model = RigidModel {
        bodies: vec![body],
        gravity: [0.0, 0.0, -9.81 * cfg.length_scale],
        obstacles: vec![Shape::Plane {
            normal: [0.0, 0.0, 1.0],
            offset: 0.0,
        }],
        contact: Contact {
            ke: cfg.ke,
            kd: cfg.kd,
            mu: p[0],
            smoothing: cfg.smoothing,
        },
        ..Default::default()
    };
    model.validate()?;
    Ok(model)
}

/// The measured state at frame `f ≥ 1` with velocities differenced from frame `f − 1`:
/// backward Euler's state, `v = (c − cₙ₋₁)/h`, `ω = log(q qₙ₋₁⁻¹)/h`.
pub fn measured(toss: &[Pose], f: usize, h: f64) -> BodyState {
    let ((c0, q0), (c1, q1)) = (toss[f - 1], toss[f]);
    BodyState {
        c: c1,
        q: q1,
        v: sub(c1, c0).map(|x| x / h),
        w: so3::log_quat(so3::quat_mul(q1, so3::conj(q0))).map(|x| x / h),
    }
}

/// One prediction window: toss index and start frame.
pub type Window = (usize, usize);

/// A window's weighted residuals and their Jacobian rows (empty without the Jacobian).
pub type WindowResiduals = (Vec<f64>, Vec<Vec<f64>>);

/// Windows of `horizon` predicted frames starting at `start` in each of `tosses`, refusing
/// tosses too short for them.
pub fn windows(
    tosses: &[Vec<Pose>],
    which: std::ops::Range<usize>,
    starts: &[usize],
    horizon: usize,
) -> Result<Vec<Window>> {
    let mut out = Vec::new();
    for t in which {
        for &s in starts {
            if s == 0 || s + horizon >= tosses[t].len() {
                return Err(DiffsimError::config(format!(
                    "toss {t} has {} frames: too few for a window from frame {s} over {horizon} steps",
                    tosses[t].len()
                )));
            }
            out.push((t, s));
        }
    }
    Ok(out)
}

/// Every `stride`-th start frame of each toss that leaves room for `horizon` predicted frames.
pub fn dense_windows(
    tosses: &[Vec<Pose>],
    which: std::ops::Range<usize>,
    stride: usize,
    horizon: usize,
) -> Vec<Window> {
    which
        .flat_map(|t| {
            (1..tosses[t].len().saturating_sub(horizon))
                .step_by(stride.max(1))
                .map(move |s| (t, s))
        })
        .collect()
}

/// The flat contact-parameter gradient `(∂/∂μ, ∂/∂corners)` of one adjoint.
fn parameter_row(g: &crate::rigid::RigidGrads) -> Vec<f64> {
    std::iter::once(g.friction)
        .chain(g.points[0].iter().flatten().copied())
        .collect()
}

/// The weighted residuals of one window (12 per predicted frame) and, with `jacobian`, their
/// rows over the parameters (one adjoint sweep each).
fn window_residuals(
    model: &RigidModel,
    toss: &[Pose],
    start: usize,
    (h, horizon): (f64, usize),
    jacobian: bool,
) -> Result<WindowResiduals> {
    let stepper = Implicit::new(model, h, RigidScheme::BackwardEuler)?;
    let run = stepper.rollout(&[measured(toss, start, h)], horizon)?;
    let wv = velocity_weight();
    let (mut r, mut rows) = (Vec::new(), Vec::new());
    for n in 1..=horizon {
        let (p, m) = (&run.states[n][0], measured(toss, start + n, h));
        let phi = so3::log_quat(so3::quat_mul(p.q, so3::conj(m.q)));
        r.extend(sub(p.c, m.c));
        r.extend(sub(p.v, m.v).map(|x| wv * x));
        r.extend(phi.map(|x| ROTATION_WEIGHT * x));
        r.extend(sub(p.w, m.w).map(|x| wv * x));
        if !jacobian {
            continue;
        }
        // ∂φ/∂δθ = J_l⁻¹(φ): the seed of row k is its k-th row.
        let jinv = so3::left_jacobian_inv(phi);
        for comp in 0..PER_FRAME {
            let k = comp % 3;
            let mut bar = StateBar::default();
            match comp / 3 {
                0 => bar.c[k] = 1.0,
                1 => bar.v[k] = wv,
                2 => bar.theta = jinv[k].map(|x| ROTATION_WEIGHT * x),
                _ => bar.w[k] = wv,
            }
            let mut bars = vec![Vec::new(); horizon + 1];
            bars[n] = vec![bar];
            rows.push(parameter_row(&stepper.adjoint(&run, &bars)));
        }
    }
    Ok((r, rows))
}

/// The residuals of `windows` at the parameters `p` (and their Jacobian rows), in the
/// windows' order, evaluated in parallel.
pub fn residuals(
    cfg: &BoxTossConfig,
    data: &Tosses,
    windows: &[Window],
    p: &[f64],
    jacobian: bool,
) -> Result<WindowResiduals> {
    let (mut r, mut rows) = (Vec::new(), Vec::new());
    for part in per_window(cfg, data, windows, p, jacobian)? {
        let (pr, prows) = part?;
        r.extend(pr);
        rows.extend(prows);
    }
    Ok((r, rows))
}

/// Each window's residuals and Jacobian rows, or the error of its Newton solve.
pub fn per_window(
    cfg: &BoxTossConfig,
    data: &Tosses,
    windows: &[Window],
    p: &[f64],
    jacobian: bool,
) -> Result<Vec<Result<WindowResiduals>>> {
    let model = model(cfg, p)?;
    let h = 1.0 / data.rate_hz;
    Ok(windows
        .par_iter()
        .map(|&(t, s)| window_residuals(&model, &data.tosses[t], s, (h, cfg.horizon), jacobian))
        .collect())
}

/// Dojo's loss `½ Σ (z − z*)ᵀQ(z − z*)` from the weighted residuals.
pub fn dojo_loss(r: &[f64]) -> f64 {
    0.5 * r.iter().map(|x| x * x).sum::<f64>()
}

/// Root-mean-square prediction errors over the predicted frames: position (the file's
/// length unit) and rotation (rad).
pub fn rms_errors(r: &[f64]) -> (f64, f64) {
    let frames = (r.len() / PER_FRAME).max(1) as f64;
    let sq = |o: usize, w: f64| {
        r.chunks(PER_FRAME)
            .map(|f| f[o..o + 3].iter().map(|x| (x / w).powi(2)).sum::<f64>())
            .sum::<f64>()
    };
    (
        (sq(0, 1.0) / frames).sqrt(),
        (sq(6, ROTATION_WEIGHT) / frames).sqrt(),
    )
}
