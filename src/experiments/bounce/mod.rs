//! B2, the Warp bounce (docs/solids-benchmarks.md): gradient descent on the initial
//! velocity of a particle that bounces off the ground and a wall to reach a target, through
//! smooth contact, next to Adam on the same gradients; and the gradient against the contact
//! stiffness.

use crate::error::Result;
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::optim::{AdamSettings, Trace, adam, gradient_descent};
use crate::solids::implicit::{Implicit, NewtonConfig};
use crate::solids::{Model, Rollout, V3, explicit, point_loss, scenes};
use crate::viz::line_plot;
use crate::viz::solids::{every, trajectory_gif};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Settings (Warp's: 60 fps × 8 substeps for 0.6 s, lr 0.02, 250 iterations).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BounceConfig {
    /// Time step (s).
    pub dt: f64,
    /// Steps.
    pub steps: usize,
    /// Gradient-descent rate.
    pub learning_rate: f64,
    /// Iterations (of both optimisers).
    pub iterations: usize,
    /// Adam's step size (m/s per iteration at most, about).
    pub adam_learning_rate: f64,
    /// Contact smoothing length (m).
    pub smoothing: f64,
    /// Stiffnesses of the sweep (N/m).
    pub stiffnesses: Vec<f64>,
    /// Stiffnesses of the implicit sweep (N/m): implicit Euler has no stability limit, so
    /// it goes on where the explicit step blows up.
    pub implicit_stiffnesses: Vec<f64>,
}

impl Default for BounceConfig {
    fn default() -> Self {
        Self {
            dt: 1.0 / 480.0,
            steps: 288,
            learning_rate: 0.02,
            iterations: 250,
            adam_learning_rate: 0.05,
            smoothing: 1e-2,
            stiffnesses: (0..=12)
                .map(|k| 10f64.powf(2.0 + 0.25 * k as f64))
                .collect(),
            implicit_stiffnesses: (0..=20)
                .map(|k| 10f64.powf(2.0 + 0.25 * k as f64))
                .collect(),
        }
    }
}

impl BounceConfig {
    /// The toy size: 50 iterations of each optimiser (the rest as in full).
    pub fn quick() -> Self {
        Self {
            iterations: 50,
            ..Self::default()
        }
    }
}

/// What the experiment measured.
#[derive(Clone, Debug, Serialize)]
pub struct BounceResult {
    /// Settings.
    pub config: BounceConfig,
    /// The optimisation of v₀ by gradient descent (Warp's).
    pub trace: Trace,
    /// The same by Adam.
    pub adam_trace: Trace,
    /// Largest relative difference of the adjoint gradient and central differences at v₀.
    pub gradient_fd_error: f64,
    /// Iterations (the last excepted) that lowered the loss by more than 1e-3 (Newton's test).
    pub decreasing_by_1e3: usize,
    /// `(ke, ∂L/∂v₀ₓ, ∂L/∂v₀ᵧ)` at the initial v₀.
    pub gradient_vs_stiffness: Vec<(f64, f64, f64)>,
    /// The same through implicit Euler at the same dt (frictionless contact; IFT adjoint).
    pub implicit_gradient_vs_stiffness: Vec<(f64, f64, f64)>,
    /// Mean wall time of one forward + backward (ms).
    pub ms_per_evaluation: f64,
}

/// The scene, its trajectory from initial velocity `v0` and the target.
pub fn trajectory(cfg: &BounceConfig, v0: V3) -> (Model, Rollout, V3) {
    let (model, x0, _, target) = scenes::bounce(cfg.smoothing);
    let run = explicit::rollout(&model, &x0, &[v0], cfg.dt, cfg.steps);
    (model, run, target)
}

/// Runs the optimisation and the stiffness sweep.
pub fn run(cfg: &BounceConfig) -> Result<BounceResult> {
    let (model, x0, v0, target) = scenes::bounce(cfg.smoothing);
    let objective = |m: &crate::solids::Model, v: &[f64]| -> Result<(f64, Vec<f64>)> {
        let v0 = vec![[v[0], v[1], v[2]]];
        let run = explicit::rollout(m, &x0, &v0, cfg.dt, cfg.steps);
        let (l, gx) = point_loss(&run.last().0, 0, target);
        let g = explicit::adjoint(m, &run, cfg.dt, &gx, &[[0.0; 3]]);
        Ok((l, g.v0[0].to_vec()))
    };
    let f = |v: &[f64]| objective(&model, v);
    let start = v0[0].to_vec();
    let (_, g0) = f(&start)?;
    let mut fd_error: f64 = 0.0;
    for a in 0..3 {
        let at = |d: f64| {
            let mut v = start.clone();
            v[a] += d;
            f(&v).map(|r| r.0)
        };
        let fd = (at(1e-6)? - at(-1e-6)?) / 2e-6;
        fd_error = fd_error.max((g0[a] - fd).abs() / fd.abs().max(1e-6));
    }
    let t = std::time::Instant::now();
    let trace = gradient_descent(&f, &start, cfg.learning_rate, cfg.iterations, None)?;
    let ms_per_evaluation = 1e3 * t.elapsed().as_secs_f64() / trace.evaluations as f64;
    let adam_settings = AdamSettings::with_rate(cfg.adam_learning_rate);
    let adam_trace = adam(&f, &start, adam_settings, cfg.iterations, None)?;
    let decreasing_by_1e3 = trace.losses[..trace.losses.len() - 1]
        .windows(2)
        .filter(|w| w[0] - w[1] > 1e-3)
        .count();
    let gradient_vs_stiffness = cfg
        .stiffnesses
        .iter()
        .map(|&ke| {
            let mut m = model.clone();
            m.contact.ke = ke;
            objective(&m, &start).map(|(_, g)| (ke, g[0], g[1]))
        })
        .collect::<Result<Vec<_>>>()?;
    let implicit_gradient_vs_stiffness = cfg
        .implicit_stiffnesses
        .iter()
        .map(|&ke| {
            let mut m = model.clone();
            m.contact.ke = ke;
            let sim = Implicit::new(&m, cfg.dt, NewtonConfig::default())?;
            let r = sim.rollout(&x0, &v0, cfg.steps)?;
            let (_, gx) = point_loss(&r.run.last().0, 0, target);
            let g = sim.adjoint(&r, &gx, &[[0.0; 3]]);
            Ok((ke, g.v0[0][0], g.v0[0][1]))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(BounceResult {
        config: cfg.clone(),
        trace,
        adam_trace,
        gradient_fd_error: fd_error,
        decreasing_by_1e3,
        gradient_vs_stiffness,
        implicit_gradient_vs_stiffness,
        ms_per_evaluation,
    })
}

/// The study: `diffsim experiment bounce`.
pub struct Bounce;

impl Study for Bounce {
    const NAME: &'static str = "bounce";
    const ABOUT: &'static str = "B2: initial velocity of a particle bouncing off a wall and the ground, through smooth contact; gradient descent and Adam, a contact-stiffness sweep";
    type Config = BounceConfig;
    type Result = BounceResult;

    fn full() -> BounceConfig {
        BounceConfig::default()
    }

    fn quick() -> BounceConfig {
        BounceConfig::quick()
    }

    /// Runs the optimisations ([`run`]) and writes `loss.png` and `trajectory.gif`.
    fn run(cfg: &BounceConfig, dir: &Path, progress: &dyn Progress) -> Result<BounceResult> {
        progress.start("bounce", 1);
        let r = run(cfg)?;
        let p = &r.trace.params;
        let (m, run, target) = trajectory(cfg, [p[0], p[1], p[2]]);
        trajectory_gif(
            &dir.join("trajectory.gif"),
            &m,
            &every(&run.states, 8),
            Some(target),
            "bounce, optimised v0",
        )?;
        line_plot(
            &dir.join("loss.png"),
            "bounce: loss (log10) per iteration",
            "iteration",
            "log10 loss",
            &[
                (
                    format!("gradient descent, lr {}", cfg.learning_rate),
                    log_loss_curve(&r.trace.losses, 0),
                ),
                (
                    format!("Adam, lr {}", cfg.adam_learning_rate),
                    log_loss_curve(&r.adam_trace.losses, 0),
                ),
            ],
        )?;
        let sweep =
            |pts: &[(f64, f64, f64)], pick: fn(&(f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
                pts.iter().map(|s| (s.0.log10(), pick(s))).collect()
            };
        let (ex, im) = (&r.gradient_vs_stiffness, &r.implicit_gradient_vs_stiffness);
        line_plot(
            &dir.join("stiffness.png"),
            "bounce: dL/dv0 at the initial v0 against the contact stiffness",
            "log10 ke (N/m)",
            "dL/dv0",
            &[
                ("dL/dv0x, explicit".into(), sweep(ex, |s| s.1)),
                ("dL/dv0y, explicit".into(), sweep(ex, |s| s.2)),
                ("dL/dv0x, implicit".into(), sweep(im, |s| s.1)),
                ("dL/dv0y, implicit".into(), sweep(im, |s| s.2)),
            ],
        )?;
        progress.set(1);
        Ok(r)
    }

    fn report(r: &BounceResult, dir: &Path) -> String {
        let cfg = &r.config;
        let mut lines: Vec<String> = Vec::new();
        lines.push(format!(
        "bounce: loss {:.3e} -> {:.3e} in {} GD iterations ({} lowered it by > 1e-3), adjoint vs FD {:.1e}, {:.2} ms per evaluation; pictures in {}",
        r.trace.losses[0],
        r.trace.losses.last().expect("a loss"),
        r.trace.iterations,
        r.decreasing_by_1e3,
        r.gradient_fd_error,
        r.ms_per_evaluation,
        dir.display()
    ));
        lines.push(format!(
            "bounce: Adam (lr {}) {:.3e} -> {:.3e} in {} iterations",
            cfg.adam_learning_rate,
            r.adam_trace.losses[0],
            r.adam_trace.losses.last().expect("a loss"),
            r.adam_trace.iterations
        ));
        study_page(Self::NAME, &lines)
    }
}
