//! R3, Warp's sphere pushing on rails (`warp/tests/sim/test_sim_grad.py`, Warp 1.9.1): per
//! environment a pusher sphere (r 0.4 m) at x = 0 and a passive sphere (r 0.47 m) at x = 2,
//! density 100, no gravity; a force `f_x = action` pushes the pusher for the first 10 of
//! 150 frames (1/30 s each); the pusher hits the passive sphere through contact (ke 1e3,
//! kd 10); loss `Σ_env (3 − x_passive(T))²`. Warp checks its tape gradient against central
//! differences with step 0.2 at an absolute tolerance of 0.2 (and equal signs), for a push
//! that is too far (action 80) and too close (40).
//!
//! Here: Warp's semi-implicit step (10 × 5 substeps per frame, as Warp's test runs it) and
//! backward Euler (10 substeps per frame), both with their adjoints, checked against central
//! differences at 1e-6 relative; then Gauss-Newton on the action to put the passive sphere
//! exactly on the target. The contact law is diffsim's smooth one (normal force
//! `ke·s·softplus(−φ/s)`, damping `kd·σ(−φ/s)·v_n`) with s = 1 cm, which the steps resolve
//! (the spheres close at most 0.5 cm per implicit step): Warp's is a linear penalty with
//! damping on approach only, so the trajectories are close to Warp's, not equal. Both spheres move on the line of their centres (every force lies on
//! it), so Warp's prismatic rails carry no load and are not modelled; the two environments are
//! 5 m apart in y, beyond each other's reach.

use crate::error::{DiffsimError, Result};
use crate::experiments::study::{Progress, Study, study_page};
use crate::optim::median_ms;
use crate::rigid::{
    BodyShape, BodyState, Differentiated, DifferentiatedStep, RigidBody, RigidModel, StateBar,
    Wrench,
};
use crate::solids::contact::Contact;
use crate::viz::line_plot;
use crate::viz::rigid::{Disc, discs_gif};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Settings (Warp's test as shipped).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpherePushingConfig {
    /// Frames of 1/30 s.
    pub frames: usize,
    /// Frames during which the pusher is pushed.
    pub push_frames: usize,
    /// Semi-implicit substeps per frame (Warp's test: 10 × 5).
    pub semi_implicit_substeps: usize,
    /// Backward-Euler substeps per frame.
    pub implicit_substeps: usize,
    /// Contact stiffness (N/m).
    pub ke: f64,
    /// Contact damping (N·s/m).
    pub kd: f64,
    /// Contact smoothing length (m).
    pub smoothing: f64,
    /// Target x of the passive spheres (m).
    pub target: f64,
    /// Actions whose gradients are checked (N).
    pub actions: Vec<f64>,
    /// Relative step of the central differences.
    pub fd_step: f64,
    /// Gauss-Newton iterations on the action at most.
    pub newton_iterations: usize,
    /// Timed (loss, gradient) evaluations.
    pub repeats: usize,
}

impl Default for SpherePushingConfig {
    fn default() -> Self {
        Self {
            frames: 150,
            push_frames: 10,
            semi_implicit_substeps: 50,
            implicit_substeps: 10,
            ke: 1e3,
            kd: 10.0,
            smoothing: 1e-2,
            target: 3.0,
            actions: vec![80.0, 40.0],
            fd_step: 1e-5,
            newton_iterations: 8,
            repeats: 3,
        }
    }
}

const ENVS: usize = 2;

/// The model for `action` (the same in both environments) and the step length.
fn scene(
    cfg: &SpherePushingConfig,
    step: DifferentiatedStep,
    action: f64,
) -> Result<(RigidModel, Vec<BodyState>, f64, usize)> {
    let sub = match step {
        DifferentiatedStep::SemiImplicit => cfg.semi_implicit_substeps,
        DifferentiatedStep::BackwardEuler => cfg.implicit_substeps,
    };
    let h = 1.0 / 30.0 / sub as f64;
    let pusher = RigidBody::from_shape(&BodyShape::Sphere { r: 0.4 }, 100.0)?;
    let passive = RigidBody::from_shape(&BodyShape::Sphere { r: 0.47 }, 100.0)?;
    let push = Wrench {
        f: [action, 0.0, 0.0],
        t: [0.0; 3],
    };
    let wrenches = vec![[push, Wrench::default()].repeat(ENVS); cfg.push_frames * sub];
    let model = RigidModel {
        bodies: (0..ENVS)
            .flat_map(|_| [pusher.clone(), passive.clone()])
            .collect(),
        contact: Contact {
            ke: cfg.ke,
            kd: cfg.kd,
            mu: 0.0,
            smoothing: cfg.smoothing,
        },
        body_contact: true,
        wrenches,
        ..Default::default()
    };
    let init = (0..ENVS)
        .flat_map(|e| {
            let y = 5.0 * e as f64;
            [BodyState::at([0.0, y, 0.0]), BodyState::at([2.0, y, 0.0])]
        })
        .collect();
    Ok((model, init, h, cfg.frames * sub))
}

/// One rollout's result.
#[derive(Clone, Debug)]
pub struct Push {
    /// The loss.
    pub loss: f64,
    /// dL/daction.
    pub grad: f64,
    /// The final x of env 0's passive sphere (m).
    pub passive_x: f64,
    /// Env 0's (pusher x, passive x) per frame (m).
    pub traj: Vec<(f64, f64)>,
}

/// The loss, its gradient with respect to the action, and env 0's trajectory.
pub fn evaluate(cfg: &SpherePushingConfig, step: DifferentiatedStep, action: f64) -> Result<Push> {
    let (model, init, h, steps) = scene(cfg, step, action)?;
    let pushed = model.wrenches.len();
    let rollout = Differentiated::run(model, h, step, &init, steps)?;
    let grads = rollout.adjoint(&bars(cfg, rollout.states()));
    let run = rollout.states();
    let last = run.last().expect("a rollout has states");
    let loss = (0..ENVS)
        .map(|e| (cfg.target - last[2 * e + 1].c[0]).powi(2))
        .sum();
    // The action is the same force on every pushed step of every environment.
    let grad = grads
        .wrenches
        .iter()
        .take(pushed)
        .flat_map(|w| (0..ENVS).map(move |e| w[2 * e].f[0]))
        .sum();
    let sub = steps / cfg.frames;
    let traj = run
        .iter()
        .step_by(sub)
        .map(|s| (s[0].c[0], s[1].c[0]))
        .collect();
    Ok(Push {
        loss,
        grad,
        passive_x: last[1].c[0],
        traj,
    })
}

/// The loss's gradient with respect to the last state.
fn bars(cfg: &SpherePushingConfig, states: &[Vec<BodyState>]) -> Vec<Vec<StateBar>> {
    let last = states.last().expect("states");
    let mut bars = vec![Vec::new(); states.len()];
    bars[states.len() - 1] = (0..2 * ENVS)
        .map(|b| StateBar {
            c: [
                if b % 2 == 1 {
                    -2.0 * (cfg.target - last[b].c[0])
                } else {
                    0.0
                },
                0.0,
                0.0,
            ],
            ..Default::default()
        })
        .collect();
    bars
}

/// One action's check.
#[derive(Clone, Debug, Serialize)]
pub struct ActionCheck {
    /// The step.
    pub step: DifferentiatedStep,
    /// The action (N).
    pub action: f64,
    /// Loss.
    pub loss: f64,
    /// Final x of the passive sphere (m).
    pub passive_x: f64,
    /// The adjoint's dL/daction.
    pub adjoint: f64,
    /// Central differences with the configured relative step.
    pub fd: f64,
    /// `|adjoint − fd| / |fd|`.
    pub rel_error: f64,
    /// Warp's own check: central differences with step 0.2 (N).
    pub fd_warp_step: f64,
}

/// Gauss-Newton on the action for one step type.
#[derive(Clone, Debug, Serialize)]
pub struct NewtonRun {
    /// The step.
    pub step: DifferentiatedStep,
    /// `(action, loss)` per iteration, the start (80 N) first.
    pub iterates: Vec<(f64, f64)>,
}

/// What the study measured.
#[derive(Clone, Debug, Serialize)]
pub struct SpherePushingResult {
    /// The settings.
    pub config: SpherePushingConfig,
    /// The gradient checks.
    pub checks: Vec<ActionCheck>,
    /// Gauss-Newton to the target.
    pub newton: Vec<NewtonRun>,
    /// One (loss, gradient) per step type (ms, median).
    pub ms_per_evaluation: Vec<(DifferentiatedStep, usize, f64)>,
}

/// Runs the study (no pictures).
pub fn run(cfg: &SpherePushingConfig, progress: &dyn Progress) -> Result<SpherePushingResult> {
    let steps = [
        DifferentiatedStep::SemiImplicit,
        DifferentiatedStep::BackwardEuler,
    ];
    progress.start("sphere-pushing", (2 * steps.len()) as u64);
    let mut checks = Vec::new();
    let mut newton = Vec::new();
    let mut timing = Vec::new();
    for (k, &step) in steps.iter().enumerate() {
        let at = |a: f64| evaluate(cfg, step, a);
        for &action in &cfg.actions {
            let Push {
                loss,
                grad: adjoint,
                passive_x,
                ..
            } = at(action)?;
            let d = cfg.fd_step * action.abs().max(1.0);
            let fd = (at(action + d)?.loss - at(action - d)?.loss) / (2.0 * d);
            let fd_warp_step = (at(action + 0.2)?.loss - at(action - 0.2)?.loss) / 0.4;
            checks.push(ActionCheck {
                step,
                action,
                loss,
                passive_x,
                adjoint,
                fd,
                rel_error: (adjoint - fd).abs() / fd.abs().max(1e-300),
                fd_warp_step,
            });
        }
        progress.set((2 * k + 1) as u64);
        // Gauss-Newton on the residual r = x_passive − target, the same in both environments:
        // L = 2r², dL/da = 4r·dr/da, so the step −r/(dr/da) is −2L/(dL/da).
        let mut a = cfg.actions.first().copied().unwrap_or(80.0);
        let mut iterates = Vec::new();
        for _ in 0..=cfg.newton_iterations {
            let Push { loss, grad: g, .. } = at(a)?;
            // Stop at the round-off floor: zero, or no longer decreasing.
            let stalled = iterates
                .last()
                .is_some_and(|&(_, l): &(f64, f64)| loss >= l);
            iterates.push((a, loss));
            if loss < 1e-26 || g == 0.0 || stalled {
                break;
            }
            a -= 2.0 * loss / g;
        }
        newton.push(NewtonRun { step, iterates });
        let (_, _, _, n) = scene(cfg, step, 80.0)?;
        timing.push((step, n, median_ms(cfg.repeats, &|| at(80.0))?));
        progress.set((2 * k + 2) as u64);
    }
    Ok(SpherePushingResult {
        config: cfg.clone(),
        checks,
        newton,
        ms_per_evaluation: timing,
    })
}

/// The study: `diffsim experiment sphere-pushing`.
pub struct SpherePushing;

impl Study for SpherePushing {
    const NAME: &'static str = "sphere-pushing";
    const ABOUT: &'static str = "R3, Warp's sphere pushing on rails: the gradient through contact against central differences at 1e-6 (Warp checks 0.2 absolute), Gauss-Newton on the push to the target";
    type Config = SpherePushingConfig;
    type Result = SpherePushingResult;

    fn full() -> SpherePushingConfig {
        SpherePushingConfig::default()
    }

    fn quick() -> SpherePushingConfig {
        SpherePushingConfig {
            semi_implicit_substeps: 10,
            implicit_substeps: 10,
            newton_iterations: 4,
            repeats: 1,
            ..SpherePushingConfig::default()
        }
    }

    fn validate(cfg: &SpherePushingConfig) -> Result<()> {
        if cfg.frames == 0
            || cfg.semi_implicit_substeps == 0
            || cfg.implicit_substeps == 0
            || cfg.push_frames > cfg.frames
        {
            return Err(DiffsimError::config(
                "sphere-pushing needs frames ≥ push_frames, and at least one substep",
            ));
        }
        if !(cfg.target.is_finite() && cfg.fd_step > 0.0 && cfg.fd_step.is_finite()) {
            return Err(DiffsimError::config(
                "sphere-pushing needs a finite target and a positive, finite fd_step",
            ));
        }
        if cfg.actions.is_empty() || cfg.actions.iter().any(|a| !a.is_finite()) {
            return Err(DiffsimError::config(format!(
                "sphere-pushing needs at least one finite action, got {:?}",
                cfg.actions
            )));
        }
        // The contact law and the bodies, as the run builds them.
        let (model, init, _, _) = scene(cfg, DifferentiatedStep::SemiImplicit, cfg.actions[0])?;
        model.validate()?;
        model.check_states(&init)
    }

    /// Runs [`run`] and writes `trajectory.png` (both spheres' x per frame for the two
    /// actions and Gauss-Newton's last, Warp's step) and `pushing.gif` (Gauss-Newton's push).
    fn run(
        cfg: &SpherePushingConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<SpherePushingResult> {
        let r = run(cfg, progress)?;
        let mut series = Vec::new();
        let mut actions = cfg.actions.clone();
        if let Some(last) = r.newton.first().and_then(|n| n.iterates.last()) {
            actions.push(last.0);
        }
        for a in actions {
            let traj = evaluate(cfg, DifferentiatedStep::SemiImplicit, a)?.traj;
            let t = |k: usize| k as f64 / 30.0;
            series.push((
                format!("pusher, {a:.3} N"),
                traj.iter().enumerate().map(|(k, p)| (t(k), p.0)).collect(),
            ));
            series.push((
                format!("passive, {a:.3} N"),
                traj.iter().enumerate().map(|(k, p)| (t(k), p.1)).collect(),
            ));
        }
        if let Some(&(a, _)) = r.newton.first().and_then(|n| n.iterates.last()) {
            let traj = evaluate(cfg, DifferentiatedStep::SemiImplicit, a)?.traj;
            let frames: Vec<Vec<Disc>> = traj
                .iter()
                .step_by(2)
                .map(|&(p, q)| {
                    let disc = |x: f64, radius: f64| Disc {
                        center: [x, 0.0],
                        radius,
                        spoke: [0.0, 1.0],
                    };
                    vec![disc(p, 0.4), disc(q, 0.47)]
                })
                .collect();
            let title = format!("sphere-pushing: {a:.4} N from Gauss-Newton");
            discs_gif(
                &dir.join("pushing.gif"),
                &frames,
                1,
                &[[cfg.target, 0.0]],
                &title,
            )?;
        }
        line_plot(
            &dir.join("trajectory.png"),
            "sphere-pushing: x of the spheres (env 0)",
            "t (s)",
            "x (m)",
            &series,
        )?;
        Ok(r)
    }

    fn report(r: &SpherePushingResult, dir: &Path) -> String {
        let mut lines = Vec::new();
        for c in &r.checks {
            lines.push(format!(
                "{:?}, action {} N: loss {:.6}, passive x {:.6} m, dL/da adjoint {:.9e}, FD {:.9e} (rel. error {:.1e}); FD with Warp's step 0.2: {:.6e}",
                c.step, c.action, c.loss, c.passive_x, c.adjoint, c.fd, c.rel_error, c.fd_warp_step
            ));
        }
        for n in &r.newton {
            lines.push(format!(
                "{:?}: Gauss-Newton on the action {}",
                n.step,
                n.iterates
                    .iter()
                    .map(|(a, l)| format!("({a:.6} N, {l:.2e})"))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ));
        }
        for (s, n, ms) in &r.ms_per_evaluation {
            lines.push(format!(
                "{s:?}: one (loss, gradient) through {n} steps of 4 bodies: {ms:.1} ms"
            ));
        }
        lines.push(format!("pictures: {}", dir.display()));
        study_page(SpherePushing::NAME, &lines)
    }
}
