//! R7, Dojo's box-toss system identification (Dojo.jl, `examples/system_identification/
//! real_block.jl`): 570 real tosses of a 10 cm cube onto a table, recorded at 148 Hz by
//! DAIRLab for ContactNets, lengths ×20 (the cube's nominal half edge is 1, gravity 9.81·20).
//! 25 parameters: the friction coefficient μ and the body-frame positions of the 8 contact
//! corners. Dojo's loss: for the first 100 tosses, from the measured state at frame 50
//! (velocities differenced from frame 49), three predicted steps against the measured states
//! of frames 51–53, `½(z − z*)ᵀQ(z − z*)` with Q = diag(1₃ position, 0.1·1₃ velocity, 1₄
//! quaternion, 0.1·1₃ angular velocity); guess μ 0.4 and corners (±2, ±2, ±2), bounds
//! μ ∈ [0, 0.8] and each corner coordinate within [0.05, 2] on its octant's side; 20
//! Gauss-Newton iterations. Nominal: μ 0.16, corners (±1, ±1, ±1).
//!
//! Here: the same data, parameters, loss, guess, bounds and iteration count; the rotation
//! term in the tangent space (`|½·log(q q*⁻¹)|²`, Dojo's `|q − q*|²` to second order) and the
//! angular velocity in the world frame; diffsim's smooth contact (stiff penalty, smoothing
//! length, regularised Coulomb friction) instead of Dojo's hard complementarity, stepped by
//! backward Euler, whose state `(c, v = (c − cₙ₋₁)/h, q, ω = log(q qₙ₋₁⁻¹)/h)` is exactly the
//! differenced data state. The residuals' Jacobian comes from the rigid adjoint's
//! contact-parameter gradients, one sweep per row, checked against central differences. A
//! second fit uses windows from every `dense_stride`-th frame of the same tosses; both fits
//! are scored on the tosses they did not see.

mod fit;

use crate::error::{DiffsimError, Result};
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::io::{Tosses, contact_nets_tosses, read_tosses};
use crate::optim::gauss_newton_box;
use crate::rigid::{BodyState, Implicit, RigidScheme, so3};
use crate::solids::math::V3;
use crate::viz::{GifWriter, ScenePicture, line_plot};
use faer::linalg::solvers::Solve;
use fit::{PARAMETERS, Window};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Settings (Dojo's protocol).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoxTossConfig {
    /// Folder with `tosses.h5` (empty: `$DIFFSIM_DATA`, else the ContactNets tosses that ship
    /// with diffsim).
    pub data: String,
    /// Tosses fitted: the file's first ones (Dojo: 100).
    pub fit_tosses: usize,
    /// Tosses after them on which the fits are scored (0: all the rest).
    pub held_out_tosses: usize,
    /// Start frames of the prediction windows (Dojo: 50).
    pub start_frames: Vec<usize>,
    /// Predicted frames per window (Dojo: 3, frames 51–53).
    pub horizon: usize,
    /// Stride of the second fit's windows over every frame of the fitted tosses (0: none).
    pub dense_stride: usize,
    /// Gauss-Newton iterations (Dojo: 20).
    pub iterations: usize,
    /// Gauss-Newton's damping `μ` (Levenberg-Marquardt, fixed).
    pub damping: f64,
    /// File length units per metre (gravity is 9.81 times it).
    pub length_scale: f64,
    /// Mass (Dojo: 1).
    pub mass: f64,
    /// Nominal half edge (file units): the inertia and the nominal corners.
    pub half_edge: f64,
    /// Nominal friction coefficient (Dojo: 0.16).
    pub nominal_friction: f64,
    /// Contact stiffness of the fit from Dojo's guess (force per file length unit).
    pub ke: f64,
    /// Stiffer contacts the fit on Dojo's windows is continued through, each from the
    /// previous result (from Dojo's guess the stiffer contact's Newton solves can stall);
    /// the every-frame fit uses the last.
    pub stiffening: Vec<f64>,
    /// Contact damping.
    pub kd: f64,
    /// Contact smoothing length (file units; also the friction regularisation speed).
    pub smoothing: f64,
    /// Guessed friction coefficient (Dojo: 0.4).
    pub guess_friction: f64,
    /// Guessed corner coordinate magnitude (Dojo: 2).
    pub guess_corner: f64,
    /// Bounds of μ.
    pub friction_bounds: [f64; 2],
    /// Bounds of each corner coordinate's magnitude.
    pub corner_bounds: [f64; 2],
    /// Step of the central differences that check the gradient (relative to max(1, |p|)).
    pub fd_step: f64,
    /// Frames of the replay picture.
    pub replay_frames: usize,
}

impl Default for BoxTossConfig {
    fn default() -> Self {
        Self {
            data: String::new(),
            fit_tosses: 100,
            held_out_tosses: 0,
            start_frames: vec![50],
            horizon: 3,
            dense_stride: 3,
            iterations: 20,
            damping: 1e-6,
            length_scale: 20.0,
            mass: 1.0,
            half_edge: 1.0,
            nominal_friction: 0.16,
            ke: 1e4,
            stiffening: vec![3e4, 1e5],
            kd: 0.0,
            smoothing: 1e-2,
            guess_friction: 0.4,
            guess_corner: 2.0,
            friction_bounds: [0.0, 0.8],
            corner_bounds: [0.05, 2.0],
            fd_step: 1e-6,
            replay_frames: 40,
        }
    }
}

/// The gradient of the fit's loss at the nominal parameters against central differences.
#[derive(Clone, Debug, Serialize)]
pub struct GradientCheck {
    /// Dojo's loss at the nominal parameters.
    pub loss: f64,
    /// `max|∂L/∂p|` by central differences.
    pub max_fd: f64,
    /// `max|adjoint − fd| / max|fd|` over the 25 entries.
    pub rel_error: f64,
}

/// One Gauss-Newton fit.
#[derive(Clone, Debug, Serialize)]
pub struct Fit {
    /// Which windows.
    pub name: String,
    /// The contact stiffness.
    pub ke: f64,
    /// Prediction windows fitted.
    pub windows: usize,
    /// Dojo's loss per window at the start and after each iteration.
    pub losses: Vec<f64>,
    /// Residual and Jacobian evaluations.
    pub evaluations: usize,
    /// Wall time (s).
    pub seconds: f64,
    /// The identified friction coefficient.
    pub friction: f64,
    /// The identified corners (file units).
    pub corners: Vec<V3>,
    /// `|μ − μ_nominal| / μ_nominal`.
    pub friction_error: f64,
    /// Per corner, `max_i |c_i − c_i,nominal| / half_edge`.
    pub corner_errors: Vec<f64>,
    /// Standard errors of the 25 parameters from the Gauss-Newton covariance
    /// `σ²(JᵀJ)⁻¹`, `σ²` the residuals' mean square (treating them as independent, which
    /// understates them: neighbouring frames' errors are correlated).
    pub standard_errors: Vec<f64>,
}

impl Fit {
    /// The identified parameters `(μ, corners)`.
    fn parameters(&self) -> Vec<f64> {
        std::iter::once(self.friction)
            .chain(self.corners.iter().flatten().copied())
            .collect()
    }
}

/// Prediction errors of one parameter set on one set of windows.
#[derive(Clone, Debug, Serialize)]
pub struct Score {
    /// The parameters (guess, nominal, or a fit).
    pub parameters: String,
    /// The contact stiffness.
    pub ke: f64,
    /// The windows (fitted or held out).
    pub windows: String,
    /// Dojo's loss per window.
    pub loss_per_window: f64,
    /// RMS position error of the predicted frames (mm).
    pub rms_position_mm: f64,
    /// RMS rotation error of the predicted frames (degrees).
    pub rms_rotation_deg: f64,
    /// Windows left out because a step's Newton solve failed (deep initial penetration).
    pub failed: usize,
}

/// What the study measured.
#[derive(Clone, Debug, Serialize)]
pub struct BoxTossResult {
    /// The settings.
    pub config: BoxTossConfig,
    /// Tosses in the file.
    pub tosses: usize,
    /// Frames in the file.
    pub frames: usize,
    /// Per corner (Dojo's order), the fitted windows' predicted frames in which the nominal
    /// corner is within 0.05 (2.5 mm) of the table.
    pub corner_contact_frames: Vec<usize>,
    /// The gradient check.
    pub check: GradientCheck,
    /// The fits (Dojo's windows, then every-frame windows).
    pub fits: Vec<Fit>,
    /// Scores of the guess, the nominal values and the fits.
    pub scores: Vec<Score>,
}

/// Dojo's loss of the fitted windows at `p`, its gradient from the Jacobian, and the central
/// differences of the loss.
fn gradient_check(
    cfg: &BoxTossConfig,
    data: &Tosses,
    windows: &[Window],
    p: &[f64],
) -> Result<GradientCheck> {
    let (r, rows) = fit::residuals(cfg, data, windows, p, true)?;
    let ad: Vec<f64> = (0..PARAMETERS)
        .map(|j| rows.iter().zip(&r).map(|(row, ri)| row[j] * ri).sum())
        .collect();
    let loss_at = |q: &[f64]| -> Result<f64> {
        Ok(fit::dojo_loss(
            &fit::residuals(cfg, data, windows, q, false)?.0,
        ))
    };
    let mut fd = Vec::with_capacity(PARAMETERS);
    for j in 0..PARAMETERS {
        let d = cfg.fd_step * p[j].abs().max(1.0);
        let (mut a, mut b) = (p.to_vec(), p.to_vec());
        a[j] += d;
        b[j] -= d;
        fd.push((loss_at(&a)? - loss_at(&b)?) / (2.0 * d));
    }
    let max_fd = fd.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let diff = ad
        .iter()
        .zip(&fd)
        .fold(0.0f64, |m, (a, f)| m.max((a - f).abs()));
    Ok(GradientCheck {
        loss: fit::dojo_loss(&r),
        max_fd,
        rel_error: diff / max_fd.max(1e-300),
    })
}

/// Gauss-Newton within the bounds from `guess` on `windows`.
fn fit_windows(
    cfg: &BoxTossConfig,
    data: &Tosses,
    (name, windows): (&str, &[Window]),
    guess: &[f64],
    progress: &dyn Progress,
) -> Result<Fit> {
    let (lo, hi) = fit::bounds(cfg);
    progress.start(&format!("fit on {name}"), cfg.iterations as u64);
    let count = std::cell::Cell::new(0u64);
    let f = |p: &[f64]| {
        count.set(count.get() + 1);
        progress.set(count.get().min(cfg.iterations as u64));
        fit::residuals(cfg, data, windows, p, true)
    };
    let clock = Instant::now();
    let trace = gauss_newton_box(&f, guess, (&lo, &hi), cfg.damping, cfg.iterations, 0.0)?;
    let seconds = clock.elapsed().as_secs_f64();
    let p = &trace.params;
    let standard_errors = standard_errors(&fit::residuals(cfg, data, windows, p, true)?);
    let nominal = fit::parameters(cfg.nominal_friction, cfg.half_edge);
    let n = windows.len().max(1) as f64;
    Ok(Fit {
        name: name.into(),
        ke: cfg.ke,
        windows: windows.len(),
        // gauss_newton_box minimises |r|² = 2·(Dojo's loss).
        losses: trace.losses.iter().map(|l| 0.5 * l / n).collect(),
        evaluations: trace.evaluations,
        seconds,
        friction: p[0],
        corners: (0..8).map(|k| fit::corner(p, k)).collect(),
        friction_error: (p[0] - cfg.nominal_friction).abs() / cfg.nominal_friction,
        corner_errors: (0..8)
            .map(|k| {
                let (c, c0) = (fit::corner(p, k), fit::corner(&nominal, k));
                (0..3).fold(0.0f64, |m, i| m.max((c[i] - c0[i]).abs())) / cfg.half_edge
            })
            .collect(),
        standard_errors,
    })
}

/// `√diag(σ²(JᵀJ)⁻¹)` for residuals `r` with Jacobian rows `rows`, `σ² = |r|²/(rows −
/// parameters)`.
fn standard_errors((r, rows): &(Vec<f64>, Vec<Vec<f64>>)) -> Vec<f64> {
    let n = PARAMETERS;
    let jtj = faer::Mat::from_fn(n, n, |a, b| {
        rows.iter().map(|row| row[a] * row[b]).sum::<f64>()
    });
    let dof = r.len().saturating_sub(n).max(1) as f64;
    let sigma2 = r.iter().map(|x| x * x).sum::<f64>() / dof;
    let inv = jtj.partial_piv_lu().solve(faer::Mat::<f64>::identity(n, n));
    (0..n)
        .map(|i| (sigma2 * inv[(i, i)]).max(0.0).sqrt())
        .collect()
}

/// The predicted frames of `windows` in which each nominal corner is within 0.05 of the table.
fn corner_contacts(cfg: &BoxTossConfig, data: &Tosses, windows: &[Window]) -> Vec<usize> {
    let nominal = fit::parameters(cfg.nominal_friction, cfg.half_edge);
    let mut counts = vec![0; 8];
    for &(t, s) in windows {
        for f in s + 1..=s + cfg.horizon {
            let (c, q) = data.tosses[t][f];
            let r = so3::to_matrix(q);
            for (k, n) in counts.iter_mut().enumerate() {
                let z = c[2] + so3::mat_vec(&r, fit::corner(&nominal, k))[2];
                *n += usize::from(z < 0.05);
            }
        }
    }
    counts
}

/// Runs the study: the gradient check, the fits, the scores.
pub fn run(cfg: &BoxTossConfig, progress: &dyn Progress) -> Result<BoxTossResult> {
    run_on(cfg, &load(cfg)?, progress)
}

/// [`run`] on the tosses and windows [`load`] read.
fn run_on(
    cfg: &BoxTossConfig,
    (data, fitted, held): &Loaded,
    progress: &dyn Progress,
) -> Result<BoxTossResult> {
    let (data, fitted, held) = (data, fitted.as_slice(), held.as_slice());
    progress.start("gradient check", 1);
    let nominal = fit::parameters(cfg.nominal_friction, cfg.half_edge);
    let check = gradient_check(cfg, data, fitted, &nominal)?;
    progress.set(1);
    let guess = fit::parameters(cfg.guess_friction, cfg.guess_corner);
    let dojo = fit_windows(cfg, data, ("Dojo's windows", fitted), &guess, progress)?;
    let mut fits = vec![dojo];
    let mut stiff = cfg.clone();
    for &ke in &cfg.stiffening {
        stiff.ke = ke;
        let start = fits[fits.len() - 1].parameters();
        let name = "Dojo's windows, stiffer";
        fits.push(fit_windows(&stiff, data, (name, fitted), &start, progress)?);
    }
    if cfg.dense_stride > 0 {
        // From the last fit: Dojo's guess puts the corners a half edge deep into the table
        // in many of these windows, where the Newton solves can stall.
        let dense = fit::dense_windows(
            &data.tosses,
            0..cfg.fit_tosses,
            cfg.dense_stride,
            cfg.horizon,
        );
        let name = format!("windows from every {} frames", cfg.dense_stride);
        let start = fits[fits.len() - 1].parameters();
        fits.push(fit_windows(
            &stiff,
            data,
            (&name, &dense),
            &start,
            progress,
        )?);
    }
    let mut sets: Vec<(String, f64, Vec<f64>)> = vec![
        ("guess".into(), cfg.ke, guess),
        ("nominal".into(), cfg.ke, nominal.clone()),
    ];
    if stiff.ke != cfg.ke {
        sets.push(("nominal".into(), stiff.ke, nominal));
    }
    for f in &fits {
        sets.push((format!("fit on {}", f.name), f.ke, f.parameters()));
    }
    progress.start("scores", sets.len() as u64);
    let mut scores = Vec::new();
    for (k, (name, ke, p)) in sets.iter().enumerate() {
        let at = BoxTossConfig {
            ke: *ke,
            ..cfg.clone()
        };
        for (set, windows) in [("fitted", &fitted), ("held out", &held)] {
            if windows.is_empty() {
                continue;
            }
            let parts = fit::per_window(&at, data, windows, p, false)?;
            let failed = parts.iter().filter(|w| w.is_err()).count();
            let r: Vec<f64> = parts.into_iter().flatten().flat_map(|(r, _)| r).collect();
            let (pos, rot) = fit::rms_errors(&r);
            scores.push(Score {
                parameters: name.clone(),
                ke: *ke,
                windows: format!("{set} ({} windows)", windows.len()),
                loss_per_window: fit::dojo_loss(&r) / (windows.len() - failed).max(1) as f64,
                rms_position_mm: pos / cfg.length_scale * 1e3,
                rms_rotation_deg: rot.to_degrees(),
                failed,
            });
        }
        progress.set(k as u64 + 1);
    }
    Ok(BoxTossResult {
        config: cfg.clone(),
        tosses: data.tosses.len(),
        frames: data.tosses.iter().map(Vec::len).sum(),
        corner_contact_frames: corner_contacts(cfg, data, fitted),
        check,
        fits,
        scores,
    })
}

/// The tosses, Dojo's fitted windows and the held-out windows.
type Loaded = (Tosses, Vec<Window>, Vec<Window>);

/// Reads the tosses and places the fitted and held-out windows.
fn load(cfg: &BoxTossConfig) -> Result<Loaded> {
    let dir = (!cfg.data.is_empty()).then(|| Path::new(&cfg.data));
    let data = read_tosses(&contact_nets_tosses(dir)?)?;
    let total = data.tosses.len();
    let held = if cfg.held_out_tosses == 0 {
        total.saturating_sub(cfg.fit_tosses)
    } else {
        cfg.held_out_tosses
    };
    if cfg.fit_tosses + held > total {
        return Err(DiffsimError::config(format!(
            "box-toss: {} fitted and {held} held-out tosses, the file has {total}",
            cfg.fit_tosses
        )));
    }
    let starts = &cfg.start_frames;
    let fitted = fit::windows(&data.tosses, 0..cfg.fit_tosses, starts, cfg.horizon)?;
    let range = cfg.fit_tosses..cfg.fit_tosses + held;
    let held = fit::windows(&data.tosses, range, starts, cfg.horizon)?;
    Ok((data, fitted, held))
}

/// The cube's 12 edges as corner index pairs of [`fit::OCTANTS`] (corners differing in one
/// sign).
fn cube_edges() -> Vec<(usize, usize)> {
    let o = fit::OCTANTS;
    let mut edges = Vec::new();
    for a in 0..8 {
        for b in a + 1..8 {
            if (0..3).filter(|&i| o[a][i] != o[b][i]).count() == 1 {
                edges.push((a, b));
            }
        }
    }
    edges
}

/// `replay.gif`: the first fitted toss from its first start frame, simulated open loop with
/// the last fit's parameters (edges) against the measured nominal corners (crosses) and the
/// measured centre's path, seen from the side (x right, z up).
fn replay_gif(
    cfg: &BoxTossConfig,
    (data, fitted, _): &Loaded,
    path: &Path,
    p: &[f64],
) -> Result<()> {
    let Some(&(t, s)) = fitted.first() else {
        return Ok(());
    };
    let toss = &data.tosses[t];
    let frames = cfg.replay_frames.min(toss.len() - 1 - s);
    let h = 1.0 / data.rate_hz;
    let model = fit::model(cfg, p)?;
    let run = Implicit::new(&model, h, RigidScheme::BackwardEuler)?
        .rollout(&[fit::measured(toss, s, h)], frames)?;
    let nominal = fit::parameters(cfg.nominal_friction, cfg.half_edge);
    let side = |c: V3, q: so3::Quat, corners: &[f64]| -> Vec<[f64; 2]> {
        let r = so3::to_matrix(q);
        (0..8)
            .map(|k| {
                let x = so3::add(c, so3::mat_vec(&r, fit::corner(corners, k)));
                [x[0], x[2]]
            })
            .collect()
    };
    let sim: Vec<Vec<[f64; 2]>> = run
        .states
        .iter()
        .map(|st: &Vec<BodyState>| side(st[0].c, st[0].q, p))
        .collect();
    let meas: Vec<Vec<[f64; 2]>> = (s..=s + frames)
        .map(|f| side(toss[f].0, toss[f].1, &nominal))
        .collect();
    let all = sim.iter().chain(&meas).flatten();
    let (mut x0, mut x1, mut z1) = (f64::MAX, f64::MIN, 0.0f64);
    for q in all {
        (x0, x1, z1) = (x0.min(q[0]), x1.max(q[0]), z1.max(q[1]));
    }
    let pad = 0.5;
    let view = [x0 - pad, -pad, x1 + pad, z1 + pad];
    let ground = [[view[0], view[1], view[2], 0.0]];
    let edges = cube_edges();
    let mut gif = GifWriter::create(path, ScenePicture::size(view), 80)?;
    let mut trail = Vec::new();
    for (k, (sp, mp)) in sim.iter().zip(&meas).enumerate() {
        let (c, _) = toss[s + k];
        trail.push([c[0], c[2]]);
        gif.add(&ScenePicture {
            points: sp,
            edges: &edges,
            boxes: &ground,
            marks: mp,
            trail: &trail,
            view,
            title: format!(
                "toss {t}, frame {}: simulated (edges) vs measured (crosses)",
                s + k
            ),
        })?;
    }
    gif.finish().map(|_| ())
}

/// The study.
pub struct BoxToss;

impl Study for BoxToss {
    const NAME: &'static str = "box-toss";
    const ABOUT: &'static str = "R7, Dojo's box-toss system identification on 570 real cube tosses (ContactNets): friction and 8 contact corners by Gauss-Newton through the implicit contact step's parameter adjoint, scored on held-out tosses";
    type Config = BoxTossConfig;
    type Result = BoxTossResult;

    fn full() -> BoxTossConfig {
        BoxTossConfig::default()
    }

    fn quick() -> BoxTossConfig {
        BoxTossConfig {
            fit_tosses: 20,
            held_out_tosses: 20,
            dense_stride: 0,
            stiffening: Vec::new(),
            iterations: 6,
            replay_frames: 10,
            ..BoxTossConfig::default()
        }
    }

    fn validate(cfg: &BoxTossConfig) -> Result<()> {
        let positive = [
            cfg.length_scale,
            cfg.mass,
            cfg.half_edge,
            cfg.nominal_friction,
            cfg.ke,
            cfg.smoothing,
            cfg.fd_step,
        ];
        if positive.iter().any(|x| !(*x > 0.0 && x.is_finite())) {
            return Err(DiffsimError::config(
                "box-toss: length_scale, mass, half_edge, nominal_friction, ke, smoothing and fd_step must be positive",
            ));
        }
        if cfg.stiffening.iter().any(|k| !(*k > 0.0 && k.is_finite())) {
            return Err(DiffsimError::config(
                "box-toss: every stiffening value must be positive",
            ));
        }
        if cfg.fit_tosses == 0 || cfg.horizon == 0 || cfg.start_frames.is_empty() {
            return Err(DiffsimError::config(
                "box-toss needs at least one fitted toss, one start frame and horizon ≥ 1",
            ));
        }
        if !(cfg.guess_friction >= 0.0
            && cfg.guess_friction.is_finite()
            && cfg.guess_corner > 0.0
            && cfg.guess_corner.is_finite())
        {
            return Err(DiffsimError::config(format!(
                "box-toss needs guess_friction ≥ 0 and guess_corner > 0, got {} and {}",
                cfg.guess_friction, cfg.guess_corner
            )));
        }
        let [f0, f1] = cfg.friction_bounds;
        let [c0, c1] = cfg.corner_bounds;
        if !(cfg.kd >= 0.0 && 0.0 <= f0 && f0 <= f1 && 0.0 < c0 && c0 <= c1 && cfg.damping >= 0.0) {
            return Err(DiffsimError::config(
                "box-toss: kd and damping must be non-negative, friction bounds 0 ≤ lo ≤ hi, corner bounds 0 < lo ≤ hi",
            ));
        }
        // The tosses file and the windows it must hold.
        load(cfg).map(|_| ())
    }

    /// Runs [`run`] and writes `loss.png` (Dojo's loss per window through each fit) and
    /// `replay.gif` (the first fitted toss with the last fit's parameters).
    fn run(cfg: &BoxTossConfig, dir: &Path, progress: &dyn Progress) -> Result<BoxTossResult> {
        let loaded = load(cfg)?;
        let r = run_on(cfg, &loaded, progress)?;
        let curves: Vec<(String, Vec<(f64, f64)>)> = r
            .fits
            .iter()
            .map(|f| (f.name.clone(), log_loss_curve(&f.losses, 0)))
            .collect();
        line_plot(
            &dir.join("loss.png"),
            "box toss: Gauss-Newton on friction and corners",
            "iteration",
            "log10 loss per window",
            &curves,
        )?;
        if let Some(f) = r.fits.last() {
            let at = BoxTossConfig {
                ke: f.ke,
                ..cfg.clone()
            };
            replay_gif(&at, &loaded, &dir.join("replay.gif"), &f.parameters())?;
        }
        Ok(r)
    }

    fn report(r: &BoxTossResult, dir: &Path) -> String {
        let mut lines = vec![
            format!(
                "data: {} tosses, {} frames; nominal corners' frames within 2.5 mm of the table in the fitted windows: {:?}",
                r.tosses, r.frames, r.corner_contact_frames
            ),
            format!(
                "gradient at the nominal parameters: loss {:.6e}, adjoint vs central differences {:.1e} (max |dL/dp| {:.3e})",
                r.check.loss, r.check.rel_error, r.check.max_fd
            ),
        ];
        for f in &r.fits {
            lines.push(format!(
                "fit on {} (ke {:.0e}, {} windows): loss per window {:.4e} -> {:.4e} in {} iterations ({} evaluations, {:.1} s); μ {:.4} ({:.1}% from nominal); corner errors (fraction of the half edge) {}",
                f.name,
                f.ke,
                f.windows,
                f.losses[0],
                f.losses.last().copied().unwrap_or(f64::NAN),
                f.losses.len() - 1,
                f.evaluations,
                f.seconds,
                f.friction,
                100.0 * f.friction_error,
                f.corner_errors
                    .iter()
                    .map(|e| format!("{e:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let se = &f.standard_errors;
            lines.push(format!(
                "  standard errors: μ {:.4}, corner coordinates up to {:.4} (mean {:.4})",
                se[0],
                se[1..].iter().fold(0.0f64, |m, x| m.max(*x)),
                se[1..].iter().sum::<f64>() / 24.0
            ));
            lines.push(format!(
                "  corners: {}",
                f.corners
                    .iter()
                    .map(|c| format!("({:.3}, {:.3}, {:.3})", c[0], c[1], c[2]))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        for s in &r.scores {
            lines.push(format!(
                "{} (ke {:.0e}) on {}: loss per window {:.4e}, RMS position {:.3} mm, rotation {:.3}°{}",
                s.parameters,
                s.ke,
                s.windows,
                s.loss_per_window,
                s.rms_position_mm,
                s.rms_rotation_deg,
                if s.failed > 0 {
                    format!(" ({} windows left out: Newton did not converge)", s.failed)
                } else {
                    String::new()
                }
            ));
        }
        lines.push(format!("pictures: {}", dir.display()));
        study_page(BoxToss::NAME, &lines)
    }
}
