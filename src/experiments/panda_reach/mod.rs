//! R10, a Franka Panda reaching a point by a trajectory of joint torques, from its URDF
//! (example-robot-data's `panda.urdf`, shipped in `data/robots/`). The arm is welded at its base
//! under gravity with armature on every joint, the URDF's damping and smooth limits; the two
//! fingers are held open by position servos. From a bent pose at rest, `steps` implicit-Euler
//! steps with one torque per arm joint and step (700 parameters for 100 steps). Loss:
//!
//! `L = |p_hand(q_N) − target|² + w_v·|v_N|² + c·h·Σₙ|τₙ|²`
//!
//! (reach, arrive at rest, effort), with every torque inside the Panda's effort limits. The
//! loss is a sum of squares: Levenberg–Marquardt (Marquardt-scaled, within the box) takes the
//! residuals' Jacobian from one adjoint sweep per terminal residual (3 + nv) and the effort
//! rows in closed form. It starts from the torques that hold the start pose, and from the
//! computed-torque feedforward of a minimum-jerk joint path to an inverse-kinematics pose.
//! L-BFGS on the same loss and gradient runs beside it for the same wall time: raw torques
//! are badly conditioned (an early torque moves the hand far more than a late one).

use crate::articulation::{
    Articulation, Drive, JointKind, JointRollout, JointStepper, LimitLaw, Scheme, UrdfOptions,
    joint_forces, placements, read_urdf, rnea, world_point_jacobian,
};
use crate::error::{DiffsimError, Result};
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::optim::{
    Trace, dense_gn_step, fd_error_on, lbfgs_box, levenberg_marquardt_box, median_ms,
};
use crate::viz::line_plot;
use crate::viz::rigid::{Disc, discs_gif};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PandaReachConfig {
    /// The arm's URDF (seven revolute joints, two prismatic fingers).
    pub model: PathBuf,
    /// The link whose origin must reach the target.
    pub hand: String,
    /// The arm's joint angles at the start (rad), at rest.
    pub start: Vec<f64>,
    /// The target: the hand's start position moved by this (m, world frame).
    pub offset: [f64; 3],
    /// Steps and their length (s).
    pub steps: usize,
    pub timestep: f64,
    /// Rotor inertia on every joint (kg·m² or kg).
    pub armature: f64,
    /// Joint-limit stiffness (N·m/rad), damping (N·m·s/rad) and smoothing (rad).
    pub limit: [f64; 3],
    /// The fingers' servo: opening (m), stiffness (N/m), damping (N·s/m).
    pub fingers: [f64; 3],
    /// `w_v`: weight of the final velocities' squares (s²).
    pub velocity_weight: f64,
    /// `c`: weight of the effort `h·Σ|τ|²` (1/(N·m)²/s).
    pub effort_weight: f64,
    /// The arm joints' effort limits (N·m; the Panda URDF's `<limit effort>`).
    pub torque_limits: Vec<f64>,
    /// Levenberg–Marquardt's first damping `μ` in `(JᵀJ + μI)Δ = −Jᵀr`.
    pub damping: f64,
    /// Levenberg–Marquardt and L-BFGS iterations at most (about the same wall time).
    pub lm_iterations: usize,
    pub lbfgs_iterations: usize,
    /// Timed (loss, gradient) evaluations.
    pub repeats: usize,
}

impl Default for PandaReachConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("data/robots/example-robot-data/panda/panda.urdf"),
            hand: "panda_hand".into(),
            start: vec![0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8],
            offset: [0.15, 0.15, -0.10],
            steps: 100,
            timestep: 0.01,
            armature: 0.1,
            limit: [1000.0, 10.0, 0.01],
            fingers: [0.02, 200.0, 5.0],
            velocity_weight: 0.1,
            effort_weight: 1e-7,
            torque_limits: vec![87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0],
            damping: 1e-4,
            lm_iterations: 100,
            lbfgs_iterations: 500,
            repeats: 5,
        }
    }
}

/// The loaded task.
struct Task {
    model: Articulation,
    hand: usize,
    /// Velocity coordinates of the arm joints and of the fingers.
    arm: Vec<usize>,
    fingers: Vec<usize>,
    q0: Vec<f64>,
    target: [f64; 3],
    cfg: PandaReachConfig,
}

/// The residuals at a rollout: hand offset (3), `√w_v·v_N` (nv), `√(c h)·τ` (one per torque).
struct Residuals {
    run: JointRollout,
    r: Vec<f64>,
}

impl Task {
    fn load(cfg: &PandaReachConfig) -> Result<Task> {
        let [ke, kd, smoothing] = cfg.limit;
        let options = UrdfOptions {
            armature: cfg.armature,
            limits: Some(LimitLaw { ke, kd, smoothing }),
            ..UrdfOptions::default()
        };
        let mut model = read_urdf(&cfg.model, &options)?;
        let hand = model
            .links
            .iter()
            .position(|l| l.name == cfg.hand)
            .ok_or_else(|| {
                DiffsimError::config(format!(
                    "'{}' has no link '{}'",
                    cfg.model.display(),
                    cfg.hand
                ))
            })?;
        let [opening, fke, fkd] = cfg.fingers;
        let (mut arm, mut fingers) = (Vec::new(), Vec::new());
        let offsets = model.offsets();
        for (l, (_, iv)) in model.links.iter_mut().zip(offsets) {
            match l.joint.kind {
                JointKind::Prismatic { .. } => {
                    l.joint.drive = Drive::Position { ke: fke, kd: fkd };
                    fingers.push(iv);
                }
                JointKind::Revolute { .. } => arm.push(iv),
                JointKind::Fixed => {}
                _ => {
                    return Err(DiffsimError::config(format!(
                        "'{}': link '{}' has a joint that is neither revolute, prismatic nor fixed",
                        cfg.model.display(),
                        l.name
                    )));
                }
            }
        }
        if arm.len() != cfg.start.len() || arm.len() != cfg.torque_limits.len() {
            return Err(DiffsimError::config(format!(
                "'{}' has {} revolute joints, but start has {} angles and torque_limits {} entries",
                cfg.model.display(),
                arm.len(),
                cfg.start.len(),
                cfg.torque_limits.len()
            )));
        }
        let mut q0 = vec![0.0; model.nv()];
        for (&k, &x) in arm.iter().zip(&cfg.start) {
            q0[k] = x;
        }
        for &f in &fingers {
            q0[f] = opening;
        }
        let (p, _) = world_point_jacobian(&model, &q0, hand, [0.0; 3]);
        Ok(Task {
            target: std::array::from_fn(|a| p[a] + cfg.offset[a]),
            model,
            hand,
            arm,
            fingers,
            q0,
            cfg: cfg.clone(),
        })
    }

    fn stepper(&self) -> Result<JointStepper<'_>> {
        JointStepper::new(&self.model, self.cfg.timestep, Scheme::ImplicitEuler)
    }

    /// Per-step controls from the torques `p` (`steps × arm`): torques on the arm, the
    /// fingers' servo targets.
    fn controls(&self, p: &[f64]) -> Vec<Vec<f64>> {
        p.chunks(self.arm.len())
            .map(|c| {
                let mut u = vec![0.0; self.model.nv()];
                for (&k, &x) in self.arm.iter().zip(c) {
                    u[k] = x;
                }
                for &f in &self.fingers {
                    u[f] = self.cfg.fingers[0];
                }
                u
            })
            .collect()
    }

    /// The torques that hold the start pose against gravity, every step.
    fn gravity_hold(&self) -> Vec<f64> {
        let nv = self.model.nv();
        let tau = rnea(&self.model, &self.q0, &vec![0.0; nv], &vec![0.0; nv]);
        (0..self.cfg.steps)
            .flat_map(|_| self.arm.iter().map(|&k| tau[k]))
            .collect()
    }

    /// Arm joint angles that put the hand on the target: Levenberg–Marquardt on the hand
    /// offset from the start pose (minimum-norm steps keep the redundant arm near it).
    fn reach_pose(&self) -> Result<Vec<f64>> {
        let mut q = self.q0.clone();
        for _ in 0..50 {
            let (p, jac) = world_point_jacobian(&self.model, &q, self.hand, [0.0; 3]);
            let r: Vec<f64> = (0..3).map(|a| p[a] - self.target[a]).collect();
            if r.iter().map(|x| x * x).sum::<f64>() < 1e-24 {
                return Ok(q);
            }
            let arm: Vec<Vec<f64>> = jac
                .iter()
                .map(|row| self.arm.iter().map(|&k| row[k]).collect())
                .collect();
            for (&k, d) in self.arm.iter().zip(dense_gn_step(&r, &arm, 1e-9)?) {
                q[k] += d;
            }
        }
        Err(DiffsimError::config(format!(
            "panda-reach: the target {:?} is out of the arm's reach",
            self.target
        )))
    }

    /// The torques that make the arm follow a minimum-jerk path in joint space from the start
    /// pose to [`Task::reach_pose`] under the implicit step: `τₙ = RNEA(qₙ₊₁, vₙ₊₁, aₙ) −
    /// τ_passive(qₙ₊₁, vₙ₊₁)` on the arm joints, `vₙ₊₁ = (qₙ₊₁ − qₙ)/h`, `aₙ = (vₙ₊₁ − vₙ)/h`
    /// (exact for the arm; the fingers' servo reacts to the motion, so it is a warm start).
    fn inverse_dynamics_start(&self) -> Result<Vec<f64>> {
        let goal = self.reach_pose()?;
        let (h, steps) = (self.cfg.timestep, self.cfg.steps);
        let path = |n: usize| -> Vec<f64> {
            let t = n as f64 / steps as f64;
            let s = t * t * t * (10.0 - 15.0 * t + 6.0 * t * t);
            self.q0
                .iter()
                .zip(&goal)
                .map(|(a, b)| a + s * (b - a))
                .collect()
        };
        let u0 = self.controls(&vec![0.0; self.arm.len()]).remove(0);
        let mut v = vec![0.0; self.model.nv()];
        let mut p = Vec::with_capacity(steps * self.arm.len());
        for n in 0..steps {
            let (q, q1) = (path(n), path(n + 1));
            let v1: Vec<f64> = q1.iter().zip(&q).map(|(a, b)| (a - b) / h).collect();
            let a: Vec<f64> = v1.iter().zip(&v).map(|(a, b)| (a - b) / h).collect();
            let tau = rnea(&self.model, &q1, &v1, &a);
            let passive = joint_forces(&self.model, &q1, &v1, &u0);
            p.extend(self.arm.iter().map(|&k| tau[k] - passive[k]));
            v = v1;
        }
        Ok(p)
    }

    fn residuals(&self, p: &[f64]) -> Result<Residuals> {
        let nv = self.model.nv();
        let run =
            self.stepper()?
                .rollout(&self.q0, &vec![0.0; nv], &self.controls(p), self.cfg.steps)?;
        let (q, v) = (&run.q[self.cfg.steps], &run.v[self.cfg.steps]);
        let (hand, _) = world_point_jacobian(&self.model, q, self.hand, [0.0; 3]);
        let (wv, we) = self.weights();
        let r = (0..3)
            .map(|a| hand[a] - self.target[a])
            .chain(v.iter().map(|x| wv * x))
            .chain(p.iter().map(|x| we * x))
            .collect();
        Ok(Residuals { run, r })
    }

    /// `(√w_v, √(c·h))`.
    fn weights(&self) -> (f64, f64) {
        let c = &self.cfg;
        (
            c.velocity_weight.sqrt(),
            (c.effort_weight * c.timestep).sqrt(),
        )
    }

    /// The terminal residuals' cotangents `(q̄_N, v̄_N)` for a weighting `y` of them (3 + nv).
    fn terminal_bar(&self, run: &JointRollout, y: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = self.cfg.steps;
        let (_, jac) = world_point_jacobian(&self.model, &run.q[n], self.hand, [0.0; 3]);
        let nv = self.model.nv();
        let qbar = (0..nv)
            .map(|k| (0..3).map(|a| y[a] * jac[a][k]).sum())
            .collect();
        (qbar, y[3..].iter().map(|x| self.weights().0 * x).collect())
    }

    /// `∂(Σ yᵢ rᵢ over the terminal residuals)/∂τ` by one adjoint sweep.
    fn terminal_vjp(&self, run: &JointRollout, p: &[f64], y: &[f64]) -> Result<Vec<f64>> {
        let mut bars = vec![(Vec::new(), Vec::new()); self.cfg.steps + 1];
        bars[self.cfg.steps] = self.terminal_bar(run, y);
        let g = self.stepper()?.adjoint(run, &self.controls(p), &bars)?;
        Ok(g.controls
            .iter()
            .flat_map(|gc| self.arm.iter().map(|&k| gc[k]).collect::<Vec<_>>())
            .collect())
    }

    /// `(L, ∇L)`: one rollout and one adjoint sweep.
    fn evaluate(&self, p: &[f64]) -> Result<(f64, Vec<f64>)> {
        let res = self.residuals(p)?;
        let terminal = 3 + self.model.nv();
        let y: Vec<f64> = res.r[..terminal].iter().map(|x| 2.0 * x).collect();
        let mut g = self.terminal_vjp(&res.run, p, &y)?;
        let we = self.weights().1;
        for (gi, x) in g.iter_mut().zip(p) {
            *gi += 2.0 * we * we * x;
        }
        Ok((res.r.iter().map(|x| x * x).sum(), g))
    }

    /// Residuals and their Jacobian rows: one sweep per terminal residual, the effort rows
    /// `√(c h)·eᵢ`.
    fn jacobian(&self, p: &[f64]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let res = self.residuals(p)?;
        let terminal = 3 + self.model.nv();
        let mut rows = Vec::with_capacity(res.r.len());
        for i in 0..terminal {
            let y: Vec<f64> = (0..terminal).map(|j| f64::from(u8::from(i == j))).collect();
            rows.push(self.terminal_vjp(&res.run, p, &y)?);
        }
        let we = self.weights().1;
        for i in 0..p.len() {
            let mut row = vec![0.0; p.len()];
            row[i] = we;
            rows.push(row);
        }
        Ok((res.r, rows))
    }

    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        let hi: Vec<f64> = (0..self.cfg.steps)
            .flat_map(|_| self.cfg.torque_limits.iter().copied())
            .collect();
        (hi.iter().map(|x| -x).collect(), hi)
    }
}

/// One optimiser's result.
#[derive(Clone, Debug, Serialize)]
pub struct Solve {
    pub method: String,
    pub trace: Trace,
    /// Final hand distance to the target (m), largest final joint speed (rad/s).
    pub distance: f64,
    pub final_speed: f64,
    /// `h·Σ|τ|²` (N²·m²·s) and the largest |τ| / its limit.
    pub effort: f64,
    pub peak_torque_ratio: f64,
    pub seconds: f64,
}

/// What the study measured.
#[derive(Clone, Debug, Serialize)]
pub struct PandaReachResult {
    pub config: PandaReachConfig,
    /// Hand start, target, and their distance (m).
    pub start: [f64; 3],
    pub target: [f64; 3],
    /// The gravity torques at the start pose (N·m), the first guess on every step.
    pub gravity_torques: Vec<f64>,
    /// `|∇L − FD|∞/|FD|∞` over 20 torques spread over the horizon (central differences,
    /// step 1e-5 N·m).
    pub fd_error: f64,
    /// Adjoint sweeps per Jacobian (3 + nv).
    pub jacobian_sweeps: usize,
    /// One (loss, gradient) and one Jacobian, ms.
    pub ms_per_gradient: f64,
    pub ms_per_jacobian: f64,
    pub solves: Vec<Solve>,
}

impl Task {
    fn solve(&self, method: &str, trace: Trace, seconds: f64) -> Result<Solve> {
        let res = self.residuals(&trace.params)?;
        let n = self.cfg.steps;
        let dist = res.r[..3].iter().map(|x| x * x).sum::<f64>().sqrt();
        let peak = trace
            .params
            .chunks(self.arm.len())
            .flat_map(|c| {
                c.iter()
                    .zip(&self.cfg.torque_limits)
                    .map(|(t, l)| t.abs() / l)
            })
            .fold(0.0, f64::max);
        Ok(Solve {
            method: method.into(),
            distance: dist,
            final_speed: res.run.v[n].iter().fold(0.0, |a, x| a.max(x.abs())),
            effort: self.cfg.timestep * trace.params.iter().map(|x| x * x).sum::<f64>(),
            peak_torque_ratio: peak,
            seconds,
            trace,
        })
    }
}

/// Runs the study (no pictures).
pub fn run(cfg: &PandaReachConfig, progress: &dyn Progress) -> Result<PandaReachResult> {
    run_task(&Task::load(cfg)?, progress)
}

/// [`run`] on the loaded task.
fn run_task(task: &Task, progress: &dyn Progress) -> Result<PandaReachResult> {
    let cfg = &task.cfg;
    let hold = task.gravity_hold();
    let warm = task.inverse_dynamics_start()?;
    let f = |p: &[f64]| task.evaluate(p);
    let probes: Vec<usize> = (0..20).map(|k| k * (hold.len() - 1) / 19).collect();
    let fd = fd_error_on(&f, &warm, &probes, 1e-5)?;
    let ms_per_gradient = median_ms(cfg.repeats.max(1), &|| f(&warm))?;
    let ms_per_jacobian = median_ms(cfg.repeats.max(1), &|| task.jacobian(&warm))?;
    let (lo, hi) = task.bounds();
    let jac = |p: &[f64]| task.jacobian(p);
    let res = |p: &[f64]| task.residuals(p).map(|x| x.r);
    let lm = |p0: &[f64]| {
        levenberg_marquardt_box(
            &res,
            &jac,
            p0,
            (&lo, &hi),
            cfg.damping,
            cfg.lm_iterations,
            0.0,
        )
    };
    let lbfgs = |p0: &[f64]| lbfgs_box(&f, p0, (&lo, &hi), cfg.lbfgs_iterations, 0.0, 1e-12);
    type Solver<'a> = &'a dyn Fn(&[f64]) -> Result<Trace>;
    let runs: [(&str, Solver, &[f64]); 3] = [
        ("Levenberg–Marquardt from inverse dynamics", &lm, &warm),
        ("Levenberg–Marquardt from the gravity hold", &lm, &hold),
        ("L-BFGS from the gravity hold", &lbfgs, &hold),
    ];
    progress.start("panda-reach", runs.len() as u64);
    let mut solves = Vec::new();
    for (name, solver, p0) in runs {
        let t0 = std::time::Instant::now();
        let trace = solver(p0)?;
        solves.push(task.solve(name, trace, t0.elapsed().as_secs_f64())?);
        progress.set(solves.len() as u64);
    }
    let (start, _) = world_point_jacobian(&task.model, &task.q0, task.hand, [0.0; 3]);
    Ok(PandaReachResult {
        config: cfg.clone(),
        start,
        target: task.target,
        gravity_torques: hold[..task.arm.len()].to_vec(),
        fd_error: fd,
        jacobian_sweeps: 3 + task.model.nv(),
        ms_per_gradient,
        ms_per_jacobian,
        solves,
    })
}

/// The study: `diffsim experiment panda-reach`.
pub struct PandaReach;

impl Study for PandaReach {
    const NAME: &'static str = "panda-reach";
    const ABOUT: &'static str = "R10, a Franka Panda (URDF) reaching a point by 700 joint torques through 100 implicit steps: Levenberg–Marquardt within the effort limits, L-BFGS beside it";
    type Config = PandaReachConfig;
    type Result = PandaReachResult;

    fn full() -> PandaReachConfig {
        PandaReachConfig::default()
    }

    fn quick() -> PandaReachConfig {
        PandaReachConfig {
            steps: 20,
            timestep: 0.05,
            lm_iterations: 30,
            lbfgs_iterations: 30,
            repeats: 1,
            ..PandaReachConfig::default()
        }
    }

    fn validate(cfg: &PandaReachConfig) -> Result<()> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        let fine = cfg.steps > 0
            && cfg.timestep.is_finite()
            && cfg.timestep > 0.0
            && ok(cfg.armature)
            && cfg.limit.iter().all(|&x| ok(x))
            && cfg.limit[2] > 0.0
            && cfg.fingers.iter().all(|&x| ok(x))
            && ok(cfg.velocity_weight)
            && ok(cfg.effort_weight)
            && ok(cfg.damping)
            && cfg.torque_limits.iter().all(|&x| x.is_finite() && x > 0.0)
            && cfg.start.iter().chain(&cfg.offset).all(|x| x.is_finite());
        if !fine {
            return Err(DiffsimError::config(
                "panda-reach needs a positive step count, time step, limit smoothing and torque limits, and finite non-negative gains and weights",
            ));
        }
        Task::load(cfg).map(|_| ())
    }

    /// Runs [`run`] and writes `loss.png`, `torques.png` (the lowest loss's), `hand.png` (the
    /// hand's distance to the target over time) and `reach.gif` (side view).
    fn run(
        cfg: &PandaReachConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<PandaReachResult> {
        let task = Task::load(cfg)?;
        let r = run_task(&task, progress)?;
        let series: Vec<_> = r
            .solves
            .iter()
            .map(|s| (s.method.clone(), log_loss_curve(&s.trace.losses, 0)))
            .collect();
        line_plot(
            &dir.join("loss.png"),
            "panda-reach: loss (log10) per iteration",
            "iteration",
            "log10 loss",
            &series,
        )?;
        let t = |n: usize| n as f64 * cfg.timestep;
        let last = |s: &Solve| s.trace.losses.last().copied().unwrap_or(f64::INFINITY);
        let best = r
            .solves
            .iter()
            .min_by(|a, b| last(a).total_cmp(&last(b)))
            .expect("a solve");
        let torques: Vec<_> = (0..task.arm.len())
            .map(|j| {
                (
                    format!("joint {}", j + 1),
                    best.trace
                        .params
                        .chunks(task.arm.len())
                        .enumerate()
                        .map(|(n, c)| (t(n), c[j]))
                        .collect(),
                )
            })
            .collect();
        line_plot(
            &dir.join("torques.png"),
            &format!("panda-reach: joint torques (N·m), {}", best.method),
            "t (s)",
            "τ (N·m)",
            &torques,
        )?;
        let mut distances = Vec::new();
        let mut frames = Vec::new();
        for s in &r.solves {
            let res = task.residuals(&s.trace.params)?;
            distances.push((
                s.method.clone(),
                res.run
                    .q
                    .iter()
                    .enumerate()
                    .map(|(n, q)| {
                        let (p, _) = world_point_jacobian(&task.model, q, task.hand, [0.0; 3]);
                        let d2: f64 = (0..3).map(|a| (p[a] - task.target[a]).powi(2)).sum();
                        (t(n), d2.sqrt())
                    })
                    .collect(),
            ));
            if std::ptr::eq(s, best) {
                frames = res
                    .run
                    .q
                    .iter()
                    .step_by(2)
                    .map(|q| side_view(&task, q))
                    .collect();
            }
        }
        line_plot(
            &dir.join("hand.png"),
            "panda-reach: hand distance to the target (m)",
            "t (s)",
            "m",
            &distances,
        )?;
        discs_gif(
            &dir.join("reach.gif"),
            &frames,
            frames.first().map_or(0, |f: &Vec<Disc>| f.len() - 1),
            &[[task.target[0], task.target[2]]],
            &format!("panda-reach: {}, side view (x, z)", best.method),
        )?;
        Ok(r)
    }

    fn report(r: &PandaReachResult, dir: &Path) -> String {
        let c = &r.config;
        let d0: f64 = (0..3)
            .map(|a| (r.target[a] - r.start[a]).powi(2))
            .sum::<f64>()
            .sqrt();
        let mut lines = vec![format!(
            "{} implicit steps of {} s, {} torques; target {:.3} m from the hand; loss |p − target|² + {}|v_N|² + {}·h·Σ|τ|²; first guess: the start pose's gravity torques {:?} N·m on every step; adjoint vs central differences {:.1e}; (loss, gradient) {:.1} ms, Jacobian ({} sweeps) {:.1} ms",
            c.steps,
            c.timestep,
            c.steps * c.start.len(),
            d0,
            c.velocity_weight,
            c.effort_weight,
            r.gravity_torques
                .iter()
                .map(|x| (x * 100.0).round() / 100.0)
                .collect::<Vec<_>>(),
            r.fd_error,
            r.ms_per_gradient,
            r.jacobian_sweeps,
            r.ms_per_jacobian
        )];
        for s in &r.solves {
            let l = &s.trace.losses;
            lines.push(format!(
                "{}: loss {:.4e} → {:.4e} in {} iterations ({} evaluations, {:.1} s); hand {:.3} mm from the target, final joint speeds ≤ {:.2e} rad/s, effort {:.2} N²·m²·s, peak |τ| {:.0}% of its limit",
                s.method,
                l[0],
                l[l.len() - 1],
                s.trace.iterations,
                s.trace.evaluations,
                s.seconds,
                1e3 * s.distance,
                s.final_speed,
                s.effort,
                100.0 * s.peak_torque_ratio
            ));
        }
        lines.push(format!("pictures: {}", dir.display()));
        study_page(PandaReach::NAME, &lines)
    }
}

/// The arm seen from the side (world x, z): a disc at every link origin, the hand last.
fn side_view(task: &Task, q: &[f64]) -> Vec<Disc> {
    let x = placements(&task.model, q);
    let mut discs: Vec<Disc> = x
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != task.hand && !task.model.links[*i].name.contains("finger"))
        .map(|(_, t)| Disc {
            center: [t.r[0], t.r[2]],
            radius: 0.035,
            spoke: [1.0, 0.0],
        })
        .collect();
    let h = &x[task.hand];
    discs.push(Disc {
        center: [h.r[0], h.r[2]],
        radius: 0.025,
        spoke: [h.e[2][0], h.e[2][2]],
    });
    discs
}
