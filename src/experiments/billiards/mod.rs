//! R5, DiffTaichi's billiards (`difftaichi/examples/billiards.py`): eleven balls of radius
//! 0.03 m on a table without friction, the cue at `x₀ = (0.1, 0.5)` with `v₀ = (0.3, 0)` m/s,
//! ten more in four rows at `x = 0.5 + 2ri`, `y = 0.5 + 2rj − 0.7ri`; 1023 steps of 3 ms;
//! loss = squared distance of the last ball to (0.9, 0.75) at the end; plain gradient descent
//! with rate 0.01 on `(x₀, v₀)` for 200 iterations. DiffTaichi's balls exchange velocity
//! impulses (restitution 0.8) with a time-of-impact position fix and differentiate that with
//! its tape.
//!
//! Here the balls are diffsim rigid spheres (1 kg each, in the plane z = 0) that touch through
//! the smooth contact law, its damping set so that a head-on collision rebounds with
//! restitution 0.8 (the linear spring-dashpot's `kd = 2ζ√(ke·m/2)`, `ζ = −ln e/√(π² + ln²e)`;
//! the study measures the restitution it gets). Two choices make the loss a smooth function
//! of the cue's start: the balls of a rack row sit `rack_gap` apart instead of touching (the
//! smooth law pushes touching balls apart before the cue arrives), and the step resolves the
//! smoothing (`v·h` below the smoothing length at the cue's speed); with a coarser step the
//! contact's onset falls between steps and the gradient in x₀ and v_x carries a ripple with
//! the period `v·h` (±4 where the loss's slope is −0.05). The loss is minimised by
//! DiffTaichi's gradient descent on the adjoint gradient, and by damped Gauss-Newton on the
//! two residuals (the 2×4 Jacobian from two adjoint sweeps) within bounds that keep the cue
//! left of the rack. The adjoint is checked against central differences, and the gradient
//! at DiffTaichi's start is followed as the contact stiffens (`ke` ×4, step and smoothing ÷2
//! per level) toward the gradient of rigid impacts.

use crate::error::{DiffsimError, Result};
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::optim::{Evaluation, Trace, gauss_newton_box, gradient_descent, median_ms};
use crate::rigid::{
    BodyShape, BodyState, Differentiated, DifferentiatedStep, RigidBody, RigidGrads, RigidModel,
    SemiImplicit, StateBar,
};
use crate::solids::contact::Contact;
use crate::viz::line_plot;
use crate::viz::rigid::{Disc, discs_gif};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Settings (DiffTaichi's example as shipped, plus the contact law).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BilliardsConfig {
    /// Ball radius (m).
    pub radius: f64,
    /// Rows of the rack (DiffTaichi: 4, so 10 balls).
    pub rows: usize,
    /// Gap between neighbours in a row (m; DiffTaichi's touch, which the smooth contact law
    /// would push apart before the cue arrives).
    pub rack_gap: f64,
    /// DiffTaichi's steps of `frame_dt` (its loop runs steps 1..1024).
    pub frames: usize,
    /// DiffTaichi's step (s).
    pub frame_dt: f64,
    /// diffsim steps per DiffTaichi step.
    pub substeps: usize,
    /// Contact stiffness (N/m).
    pub ke: f64,
    /// Contact smoothing length (m).
    pub smoothing: f64,
    /// Restitution of a head-on collision, which sets the contact damping.
    pub restitution: f64,
    /// The cue's start `(x, y, v_x, v_y)` (m, m/s).
    pub start: [f64; 4],
    /// Where the last ball should end (m).
    pub goal: [f64; 2],
    /// Gradient descent's rate.
    pub learning_rate: f64,
    /// Gradient-descent iterations.
    pub iterations: usize,
    /// Gauss-Newton iterations at most.
    pub gn_iterations: usize,
    /// Stiffening levels of the gradient-convergence table (`ke` ×4, step and smoothing ÷2).
    pub levels: usize,
    /// Step of the central differences (m, m/s).
    pub fd_step: f64,
    /// Timed (loss, gradient) evaluations.
    pub repeats: usize,
}

impl Default for BilliardsConfig {
    fn default() -> Self {
        Self {
            radius: 0.03,
            rows: 4,
            rack_gap: 4e-4,
            frames: 1023,
            frame_dt: 0.003,
            substeps: 60,
            ke: 2e6,
            smoothing: 2e-5,
            restitution: 0.8,
            start: [0.1, 0.5, 0.3, 0.0],
            goal: [0.9, 0.75],
            learning_rate: 0.01,
            iterations: 200,
            gn_iterations: 12,
            levels: 4,
            fd_step: 1e-5,
            repeats: 3,
        }
    }
}

/// The contact law at stiffening level `level` (0 = the configured one).
fn contact(cfg: &BilliardsConfig, level: usize) -> Contact {
    let ke = cfg.ke * 4f64.powi(level as i32);
    let ln_e = cfg.restitution.ln();
    let zeta = -ln_e / (std::f64::consts::PI.powi(2) + ln_e * ln_e).sqrt();
    // Two 1 kg balls: reduced mass 0.5 kg.
    Contact {
        ke,
        kd: 2.0 * zeta * (ke * 0.5).sqrt(),
        mu: 0.0,
        smoothing: cfg.smoothing / 2f64.powi(level as i32),
    }
}

/// The rack's centres (DiffTaichi's rows).
fn rack(cfg: &BilliardsConfig) -> Vec<[f64; 2]> {
    let (r, gap) = (cfg.radius, cfg.rack_gap);
    (0..cfg.rows)
        .flat_map(|i| {
            (0..=i).map(move |j| {
                let (i, j) = (i as f64, j as f64);
                [0.5 + 2.0 * r * i, 0.5 + (2.0 * r + gap) * j - 0.7 * r * i]
            })
        })
        .collect()
}

/// The model, the start and `(h, steps)` at stiffening level `level`, for balls in `rack`
/// behind a cue starting at `p = (x, y, v_x, v_y)`.
fn scene(
    cfg: &BilliardsConfig,
    p: &[f64],
    level: usize,
) -> Result<(RigidModel, Vec<BodyState>, f64, usize)> {
    let r = cfg.radius;
    let density = 1.0 / (4.0 / 3.0 * std::f64::consts::PI * r.powi(3));
    let ball = RigidBody::from_shape(&BodyShape::Sphere { r }, density)?;
    let mut init = vec![BodyState {
        v: [p[2], p[3], 0.0],
        ..BodyState::at([p[0], p[1], 0.0])
    }];
    init.extend(rack(cfg).iter().map(|c| BodyState::at([c[0], c[1], 0.0])));
    let model = RigidModel {
        bodies: vec![ball; init.len()],
        contact: contact(cfg, level),
        body_contact: true,
        ..Default::default()
    };
    let sub = cfg.substeps * (1 << level);
    Ok((
        model,
        init,
        cfg.frame_dt / sub as f64,
        (cfg.frames - 1) * sub,
    ))
}

/// A rollout's ball centres once per DiffTaichi step (`frames` entries of `(x, y)` per ball)
/// and the adjoint of a seed on the last ball's final `(x, y)`, returning `∂/∂(x₀, v₀)`.
type Adjoint = Box<dyn Fn([f64; 2]) -> [f64; 4]>;

fn simulate(
    cfg: &BilliardsConfig,
    step: DifferentiatedStep,
    p: &[f64],
    level: usize,
) -> Result<(Vec<Vec<[f64; 2]>>, Adjoint)> {
    let (model, init, h, steps) = scene(cfg, p, level)?;
    let every = cfg.substeps << level;
    let last = init.len() - 1;
    let seeds = move |n: usize, bar: [f64; 2]| -> Vec<Vec<StateBar>> {
        let mut bars = vec![Vec::new(); n];
        bars[n - 1] = vec![StateBar::default(); last + 1];
        bars[n - 1][last].c = [bar[0], bar[1], 0.0];
        bars
    };
    let cue = |g: RigidGrads| -> [f64; 4] {
        let s = &g.init[0];
        [s.c[0], s.c[1], s.v[0], s.v[1]]
    };
    let frames = |states: &[Vec<BodyState>]| -> Vec<Vec<[f64; 2]>> {
        states
            .iter()
            .step_by(every)
            .map(|s| s.iter().map(|b| [b.c[0], b.c[1]]).collect())
            .collect()
    };
    let run = Differentiated::run(model, h, step, &init, steps)?;
    let centres = frames(run.states());
    let adjoint: Adjoint = Box::new(move |bar| cue(run.adjoint(&seeds(run.states().len(), bar))));
    Ok((centres, adjoint))
}

/// The residual `x_last(T) − goal`.
fn residual(cfg: &BilliardsConfig, centres: &[Vec<[f64; 2]>]) -> [f64; 2] {
    let end = centres.last().and_then(|f| f.last()).expect("a rollout");
    [end[0] - cfg.goal[0], end[1] - cfg.goal[1]]
}

/// The loss `|x_last(T) − goal|²` and its gradient with respect to `(x₀, v₀)`.
pub fn objective(
    cfg: &BilliardsConfig,
    step: DifferentiatedStep,
    level: usize,
) -> Evaluation<'static> {
    let cfg = cfg.clone();
    Box::new(move |p: &[f64]| {
        let (centres, adjoint) = simulate(&cfg, step, p, level)?;
        let r = residual(&cfg, &centres);
        let g = adjoint([2.0 * r[0], 2.0 * r[1]]);
        Ok((r[0] * r[0] + r[1] * r[1], g.to_vec()))
    })
}

/// The residual `x_last(T) − goal` and its 2×4 Jacobian (one adjoint sweep per row) at `p`.
fn residuals(cfg: &BilliardsConfig, p: &[f64]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let (centres, adjoint) = simulate(cfg, DifferentiatedStep::SemiImplicit, p, 0)?;
    let r = residual(cfg, &centres);
    let jac = [[1.0, 0.0], [0.0, 1.0]].map(|seed| adjoint(seed).to_vec());
    Ok((r.to_vec(), jac.to_vec()))
}

/// Where the cue may start: left of the rack, within the table's middle, at most 1 m/s.
fn cue_bounds(cfg: &BilliardsConfig) -> ([f64; 4], [f64; 4]) {
    let front = 0.5 - 2.0 * cfg.radius - 0.1 * cfg.radius;
    ([0.0, 0.3, 0.0, -1.0], [front, 0.7, 1.0, 1.0])
}

/// Gauss-Newton's damping `μ`: small next to `JJᵀ`'s largest eigenvalue (about 180 at
/// Gauss-Newton's end).
const GN_DAMPING: f64 = 1e-3;

/// Damped Gauss-Newton (Levenberg-Marquardt with the fixed [`GN_DAMPING`]) on the two
/// residuals within [`cue_bounds`].
fn gauss_newton_run(cfg: &BilliardsConfig) -> Result<Trace> {
    let (lo, hi) = cue_bounds(cfg);
    gauss_newton_box(
        &|p: &[f64]| residuals(cfg, p),
        &cfg.start,
        (&lo, &hi),
        GN_DAMPING,
        cfg.gn_iterations,
        1e-28,
    )
}

/// Adjoint against central differences at one point.
#[derive(Clone, Debug, Serialize)]
pub struct GradientCheck {
    /// The step.
    pub step: DifferentiatedStep,
    /// The loss.
    pub loss: f64,
    /// `∂L/∂(x₀, y₀, v_x, v_y)` from the adjoint.
    pub adjoint: [f64; 4],
    /// The same by central differences.
    pub fd: [f64; 4],
    /// `max|adjoint − fd| / max|fd|`.
    pub rel_error: f64,
}

/// One row of the stiffening table.
#[derive(Clone, Debug, Serialize)]
pub struct StiffeningLevel {
    /// Contact stiffness (N/m).
    pub ke: f64,
    /// Step (s).
    pub h: f64,
    /// Smoothing (m).
    pub smoothing: f64,
    /// The loss at the start.
    pub loss: f64,
    /// The gradient at the start.
    pub gradient: [f64; 4],
    /// `max|∇L − ∇L(previous level)|`, none on the first.
    pub change: Option<f64>,
}

/// What the study measured.
#[derive(Clone, Debug, Serialize)]
pub struct BilliardsResult {
    /// The settings.
    pub config: BilliardsConfig,
    /// The contact damping used (N·s/m).
    pub kd: f64,
    /// Restitution of a head-on collision at 0.3 m/s, measured.
    pub restitution: f64,
    /// Gradient checks at the start.
    pub checks: Vec<GradientCheck>,
    /// Gradient descent with DiffTaichi's settings.
    pub descent: Trace,
    /// Damped Gauss-Newton within the cue's bounds.
    pub gauss_newton: Trace,
    /// Gauss-Newton's wall time (s).
    pub gauss_newton_s: f64,
    /// The gradient at the start as the contact stiffens.
    pub stiffening: Vec<StiffeningLevel>,
    /// One (loss, gradient) with the semi-implicit step (ms, median).
    pub ms_per_evaluation: f64,
    /// Steps per rollout.
    pub steps: usize,
}

/// The restitution of a head-on collision of two balls at `speed`, with the study's contact.
fn measured_restitution(cfg: &BilliardsConfig, speed: f64) -> Result<f64> {
    let (mut model, _, h, _) = scene(cfg, &cfg.start, 0)?;
    model.bodies.truncate(2);
    let gap = 4.0 * cfg.radius;
    let init = [
        BodyState {
            v: [speed, 0.0, 0.0],
            ..BodyState::at([0.0; 3])
        },
        BodyState::at([gap, 0.0, 0.0]),
    ];
    let steps = (3.0 * gap / speed / h) as usize;
    let run = SemiImplicit::new(&model, h)?.rollout(&init, steps)?;
    let end = run.states.last().expect("a rollout");
    Ok((end[1].v[0] - end[0].v[0]) / speed)
}

/// Central differences of `f` at `p` with step `d`, per parameter.
fn central(f: &Evaluation<'_>, p: &[f64], d: f64) -> Result<[f64; 4]> {
    let mut g = [0.0; 4];
    for (k, gk) in g.iter_mut().enumerate() {
        let at = |s: f64| {
            let mut q = p.to_vec();
            q[k] += s;
            f(&q).map(|r| r.0)
        };
        *gk = (at(d)? - at(-d)?) / (2.0 * d);
    }
    Ok(g)
}

/// Runs the study (no pictures).
pub fn run(cfg: &BilliardsConfig, progress: &dyn Progress) -> Result<BilliardsResult> {
    progress.start("billiards", 4 + cfg.levels as u64);
    let restitution = measured_restitution(cfg, 0.3)?;
    let mut done = 0;
    let mut tick = || {
        done += 1;
        progress.set(done);
    };
    let mut checks = Vec::new();
    for step in [
        DifferentiatedStep::SemiImplicit,
        DifferentiatedStep::BackwardEuler,
    ] {
        let f = objective(cfg, step, 0);
        let (loss, g) = f(&cfg.start)?;
        let fd = central(&f, &cfg.start, cfg.fd_step)?;
        let adjoint = [g[0], g[1], g[2], g[3]];
        let err = (0..4)
            .map(|k| (adjoint[k] - fd[k]).abs())
            .fold(0.0, f64::max);
        let size = fd.iter().map(|x| x.abs()).fold(0.0, f64::max);
        checks.push(GradientCheck {
            step,
            loss,
            adjoint,
            fd,
            rel_error: err / size.max(1e-300),
        });
        tick();
    }
    let f = objective(cfg, DifferentiatedStep::SemiImplicit, 0);
    let descent = gradient_descent(&f, &cfg.start, cfg.learning_rate, cfg.iterations, None)?;
    tick();
    let clock = std::time::Instant::now();
    let gauss_newton = gauss_newton_run(cfg)?;
    let gauss_newton_s = clock.elapsed().as_secs_f64();
    tick();
    let mut stiffening: Vec<StiffeningLevel> = Vec::new();
    for level in 0..cfg.levels {
        let (loss, g) = objective(cfg, DifferentiatedStep::SemiImplicit, level)(&cfg.start)?;
        let gradient = [g[0], g[1], g[2], g[3]];
        let change = stiffening.last().map(|prev| {
            (0..4)
                .map(|k| (gradient[k] - prev.gradient[k]).abs())
                .fold(0.0, f64::max)
        });
        let (model, _, h, _) = scene(cfg, &cfg.start, level)?;
        stiffening.push(StiffeningLevel {
            ke: model.contact.ke,
            h,
            smoothing: model.contact.smoothing,
            loss,
            gradient,
            change,
        });
        tick();
    }
    let ms_per_evaluation = median_ms(cfg.repeats, &|| f(&cfg.start))?;
    let (model, _, _, steps) = scene(cfg, &cfg.start, 0)?;
    Ok(BilliardsResult {
        config: cfg.clone(),
        kd: model.contact.kd,
        restitution,
        checks,
        descent,
        gauss_newton,
        gauss_newton_s,
        stiffening,
        ms_per_evaluation,
        steps,
    })
}

/// The frames of a GIF of the shot from `p` (every 8th DiffTaichi step).
fn shot_frames(cfg: &BilliardsConfig, p: &[f64]) -> Result<Vec<Vec<Disc>>> {
    let (centres, _) = simulate(cfg, DifferentiatedStep::SemiImplicit, p, 0)?;
    Ok(centres
        .iter()
        .step_by(8)
        .map(|f| {
            f.iter()
                .map(|&center| Disc {
                    center,
                    radius: cfg.radius,
                    spoke: [0.0, 0.0],
                })
                .collect()
        })
        .collect())
}

/// The study: `diffsim experiment billiards`.
pub struct Billiards;

impl Study for Billiards {
    const NAME: &'static str = "billiards";
    const ABOUT: &'static str = "R5, DiffTaichi's billiards: the cue's start and velocity by gradient descent (DiffTaichi's settings) and by Gauss-Newton through 11 balls in contact, the adjoint against central differences, the gradient as the contact stiffens";
    type Config = BilliardsConfig;
    type Result = BilliardsResult;

    fn full() -> BilliardsConfig {
        BilliardsConfig::default()
    }

    fn quick() -> BilliardsConfig {
        BilliardsConfig {
            iterations: 10,
            gn_iterations: 5,
            levels: 2,
            repeats: 1,
            ..BilliardsConfig::default()
        }
    }

    fn validate(cfg: &BilliardsConfig) -> Result<()> {
        let positive = [
            cfg.radius,
            cfg.frame_dt,
            cfg.ke,
            cfg.smoothing,
            cfg.fd_step,
            cfg.learning_rate,
        ];
        if cfg.frames < 2
            || cfg.substeps == 0
            || cfg.rows == 0
            || positive.iter().any(|&x| x <= 0.0 || !x.is_finite())
            || !(cfg.rack_gap >= 0.0 && cfg.rack_gap.is_finite())
        {
            return Err(DiffsimError::config(
                "billiards needs frames ≥ 2, a substep, a rack with a gap ≥ 0, and positive radius, step, stiffness, smoothing, FD step and learning rate",
            ));
        }
        let (lo, hi) = cue_bounds(cfg);
        if (0..4).any(|k| !(lo[k]..=hi[k]).contains(&cfg.start[k])) {
            return Err(DiffsimError::config(format!(
                "billiards: the cue's start {:?} must lie within x0 ∈ [{}, {:.4}], y0 ∈ [{}, {}], v_x ∈ [{}, {}], v_y ∈ [{}, {}] (left of the rack)",
                cfg.start, lo[0], hi[0], lo[1], hi[1], lo[2], hi[2], lo[3], hi[3]
            )));
        }
        if !(cfg.restitution > 0.0 && cfg.restitution <= 1.0) {
            return Err(DiffsimError::config(format!(
                "billiards: restitution must lie in (0, 1], got {}",
                cfg.restitution
            )));
        }
        Ok(())
    }

    /// Runs [`run`] and writes `loss.png` (log₁₀ loss of both optimisers), `start.gif`,
    /// `descent.gif` and `gauss-newton.gif` (the shot before and after each optimiser).
    fn run(cfg: &BilliardsConfig, dir: &Path, progress: &dyn Progress) -> Result<BilliardsResult> {
        let r = run(cfg, progress)?;
        line_plot(
            &dir.join("loss.png"),
            "billiards: log10 loss",
            "iteration",
            "log10 loss",
            &[
                (
                    format!("gradient descent, rate {}", cfg.learning_rate),
                    log_loss_curve(&r.descent.losses, 0),
                ),
                (
                    "Gauss-Newton".into(),
                    log_loss_curve(&r.gauss_newton.losses, 0),
                ),
            ],
        )?;
        let shots = [
            ("start", &cfg.start[..]),
            ("descent", &r.descent.params[..]),
            ("gauss-newton", &r.gauss_newton.params[..]),
        ];
        for (name, p) in shots {
            let frames = shot_frames(cfg, p)?;
            let title = format!(
                "billiards, {name}: x0 ({:.3}, {:.3}), v0 ({:.3}, {:.3})",
                p[0], p[1], p[2], p[3]
            );
            let follow = frames.first().map_or(0, |f| f.len() - 1);
            discs_gif(
                &dir.join(format!("{name}.gif")),
                &frames,
                follow,
                &[cfg.goal],
                &title,
            )?;
        }
        Ok(r)
    }

    fn report(r: &BilliardsResult, dir: &Path) -> String {
        let v4 = |g: &[f64]| {
            g.iter()
                .map(|x| format!("{x:+.6e}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut lines = vec![format!(
            "contact ke {} N/m, kd {:.4} N·s/m, smoothing {} m; head-on restitution at 0.3 m/s: {:.4} (asked {})",
            r.config.ke, r.kd, r.config.smoothing, r.restitution, r.config.restitution
        )];
        for c in &r.checks {
            lines.push(format!(
                "{:?} at the start: loss {:.6e}, dL/d(x0, y0, vx, vy) adjoint ({}), FD ({}), rel. error {:.1e}",
                c.step,
                c.loss,
                v4(&c.adjoint),
                v4(&c.fd),
                c.rel_error
            ));
        }
        let d = &r.descent;
        let marks = [0, 10, 50, 100]
            .into_iter()
            .filter(|&k| k < d.losses.len())
            .map(|k| format!("{:.4e} (iteration {k})", d.losses[k]))
            .chain(d.losses.last().map(|l| format!("{l:.4e} (last)")))
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(format!(
            "gradient descent ({} iterations, rate {}): loss {marks}; x0 ({:.4}, {:.4}), v0 ({:.4}, {:.4})",
            d.iterations,
            r.config.learning_rate,
            d.params[0],
            d.params[1],
            d.params[2],
            d.params[3]
        ));
        let g = &r.gauss_newton;
        lines.push(format!(
            "Gauss-Newton: loss {} in {} iterations ({:.1} s); x0 ({:.6}, {:.6}), v0 ({:.6}, {:.6})",
            g.losses
                .iter()
                .map(|l| format!("{l:.2e}"))
                .collect::<Vec<_>>()
                .join(" -> "),
            g.iterations,
            r.gauss_newton_s,
            g.params[0],
            g.params[1],
            g.params[2],
            g.params[3]
        ));
        for s in &r.stiffening {
            lines.push(format!(
                "ke {:.3e} N/m, h {:.3e} s, smoothing {:.2e} m: loss {:.6e}, gradient ({}), change {}",
                s.ke,
                s.h,
                s.smoothing,
                s.loss,
                v4(&s.gradient),
                s.change.map_or("–".into(), |c| format!("{c:.2e}"))
            ));
        }
        lines.push(format!(
            "one (loss, gradient) through {} steps of 11 balls: {:.1} ms",
            r.steps, r.ms_per_evaluation
        ));
        lines.push(format!("pictures: {}", dir.display()));
        study_page(Billiards::NAME, &lines)
    }
}
