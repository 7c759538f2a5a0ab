//! B3, the cloth throw (docs/solids-benchmarks.md): the initial velocity of every
//! particle of a 16×16 cloth so that its centre of mass is at (8, 0, 0) after 2 s. Warp's
//! recipe, semi-implicit Euler with 1920 steps and gradient descent (lr 5, 64 iterations), is
//! run as published; next to it the same descent through implicit Euler with one step per
//! frame (120 steps, 16× fewer) and the IFT adjoint.

use crate::error::Result;
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::optim::{Clock, Evaluation, Objective, Trace, fd_error_on, gradient_descent, median_ms};
use crate::solids::implicit::{Implicit, NewtonConfig};
use crate::solids::{Model, Rollout, V3, com_loss, explicit, scenes, segmented_gradient};
use crate::viz::line_plot;
use crate::viz::solids::{every, trajectory_gif};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Settings (Warp's: 60 fps × 16 substeps for 2 s).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClothThrowConfig {
    /// Cells per side of the 1 m cloth (Warp's 16: 289 particles; 64: 4225).
    pub cells: usize,
    /// Explicit time step (s).
    pub dt: f64,
    /// Explicit steps.
    pub steps: usize,
    /// Implicit time step (s).
    pub implicit_dt: f64,
    /// Implicit steps.
    pub implicit_steps: usize,
    /// Gradient-descent rate (on m/s per unit gradient).
    pub learning_rate: f64,
    /// Gradient-descent iterations.
    pub iterations: usize,
    /// Further implicit iterations allowed to reach the explicit descent's final loss.
    pub extra_implicit_iterations: usize,
    /// Run the implicit descent too (at 64×64 cells one implicit evaluation takes about 30 s,
    /// so the large cloth is run with `implicit = false`).
    pub implicit: bool,
}

impl Default for ClothThrowConfig {
    fn default() -> Self {
        Self {
            cells: 16,
            dt: 1.0 / 960.0,
            steps: 1920,
            implicit_dt: 1.0 / 60.0,
            implicit_steps: 120,
            learning_rate: 5.0,
            iterations: 64,
            extra_implicit_iterations: 16,
            implicit: true,
        }
    }
}

impl ClothThrowConfig {
    /// The toy version the test suite runs: a quarter second, 3 iterations.
    pub fn quick() -> Self {
        Self {
            steps: 240,
            implicit_steps: 15,
            iterations: 3,
            extra_implicit_iterations: 2,
            ..Self::default()
        }
    }
}

/// One optimisation's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct ClothThrowRun {
    /// The descent (parameters: `[v₀ₓ, v₀ᵧ, v₀𝓏]` per particle, m/s).
    pub trace: Trace,
    /// Iterations that lowered the loss.
    pub decreasing: usize,
    /// Iterations that lowered the loss by more than 1.0.
    pub decreasing_by_one: usize,
    /// Newton's pass criteria over the iterations its test runs (the first 4): every loss
    /// < 300 and ≥ 80% of the iterations lower it by > 1.
    pub warp_criteria_met: bool,
    /// `|∇L − FD|∞/|FD|∞` at the start over the velocities of 4 particles (corners and
    /// centre, 12 numbers), step 1e-5.
    pub gradient_fd_error: f64,
    /// Mean wall time of one forward + backward (ms).
    pub ms_per_evaluation: f64,
    /// Newton iterations per step over the last trajectory (mean, max); None when explicit.
    pub newton_iterations: Option<(f64, usize)>,
    /// States the adjoint keeps (the whole trajectory).
    pub tape_states: usize,
    /// Their size with, for implicit Euler, every step's Hessian factor (bytes).
    pub tape_bytes: usize,
}

/// One (loss, gradient) at the start velocities with the whole trajectory kept (the tape)
/// and with segment checkpointing ([`segmented_gradient`], segments of ⌈√N⌉ steps).
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointingRun {
    /// Steps of the simulation.
    pub steps: usize,
    /// Steps per segment.
    pub segment_steps: usize,
    /// What the tape holds: every state and, for implicit Euler, every step's factor (bytes).
    pub tape_bytes: usize,
    /// The most that segment checkpointing holds at once: the segment starts, one segment's
    /// states and (implicit) its factors (bytes).
    pub segment_bytes: usize,
    /// Wall time with the tape (ms).
    pub tape_ms: f64,
    /// Wall time with segments (ms).
    pub segment_ms: f64,
    /// `|g_segments − g_tape|∞ / |g_tape|∞` over every initial velocity.
    pub gradient_difference: f64,
}

/// What the experiment measured.
#[derive(Clone, Debug, Serialize)]
pub struct ClothThrowResult {
    /// Settings.
    pub config: ClothThrowConfig,
    /// Warp's recipe.
    pub explicit: ClothThrowRun,
    /// Implicit Euler, 16× fewer steps (None when the config skips it).
    pub implicit: Option<ClothThrowRun>,
    /// The explicit (fine) simulation's loss at the velocities the implicit descent found.
    pub implicit_velocities_explicit_loss: Option<f64>,
    /// The implicit descent continued (same rate) from its last iterate: its losses, the
    /// first being that iterate's.
    pub implicit_continued_losses: Vec<f64>,
    /// The implicit descent's iterations, the continuation counted, until its own loss is at
    /// or below the explicit descent's final loss (None: not within the extra iterations).
    pub implicit_iterations_to_explicit_loss: Option<usize>,
    /// Segment checkpointing against the tape, explicit (1920 steps) then, unless skipped,
    /// implicit (120).
    pub checkpointing: Vec<CheckpointingRun>,
}

/// Descent iterations of Newton's cloth test (`newton/tests/test_examples.py`, GPU).
const WARP_TEST_ITERATIONS: usize = 4;

fn flatten(v: &[V3]) -> Vec<f64> {
    v.iter().flatten().copied().collect()
}

fn unflatten(p: &[f64]) -> Vec<V3> {
    p.chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
}

/// The explicit trajectory from the initial velocities `v0` (flattened), and the target.
pub fn trajectory(cfg: &ClothThrowConfig, v0: &[f64]) -> Result<(Model, Rollout, V3)> {
    let (model, x0, _, target) = scenes::cloth_throw(cfg.cells)?;
    let run = explicit::rollout(&model, &x0, &unflatten(v0), cfg.dt, cfg.steps);
    Ok((model, run, target))
}

fn summary(
    trace: Trace,
    gradient_fd_error: f64,
    ms_per_evaluation: f64,
    (states, particles): (usize, usize),
) -> ClothThrowRun {
    let lowered = |by: f64, l: &[f64]| l.windows(2).filter(|w| w[1] < w[0] - by).count();
    let test = &trace.losses[..trace.losses.len().min(WARP_TEST_ITERATIONS + 1)];
    let warp_criteria_met =
        test.iter().all(|l| *l < 300.0) && 5 * lowered(1.0, test) >= 4 * (test.len() - 1);
    ClothThrowRun {
        decreasing: lowered(0.0, &trace.losses),
        decreasing_by_one: lowered(1.0, &trace.losses),
        trace,
        warp_criteria_met,
        gradient_fd_error,
        ms_per_evaluation,
        newton_iterations: None,
        tape_states: states,
        tape_bytes: state_bytes(states, particles),
    }
}

/// The size of `states` states `(x, v)` of `particles` particles (bytes).
fn state_bytes(states: usize, particles: usize) -> usize {
    states * particles * 2 * std::mem::size_of::<V3>()
}

/// [`CheckpointingRun`] of one integrator: `tape()` returns the gradient with every state
/// kept, `segments(k)` with segments of `k` steps (and the states it held at once);
/// `factor_bytes` is the size of one step's factor (0 when explicit).
fn checkpointing(
    steps: usize,
    particles: usize,
    factor_bytes: usize,
    tape: impl Fn() -> Result<Vec<V3>>,
    segments: impl Fn(usize) -> Result<(Vec<V3>, usize)>,
) -> Result<CheckpointingRun> {
    let k = (steps as f64).sqrt().ceil() as usize;
    let t = Instant::now();
    let g_tape = flatten(&tape()?);
    let tape_ms = 1e3 * t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (g_seg, held) = segments(k)?;
    let segment_ms = 1e3 * t.elapsed().as_secs_f64();
    let scale = g_tape.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let gradient_difference = g_tape
        .iter()
        .zip(flatten(&g_seg))
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale;
    Ok(CheckpointingRun {
        steps,
        segment_steps: k,
        tape_bytes: state_bytes(steps + 1, particles) + steps * factor_bytes,
        segment_bytes: state_bytes(held, particles) + k * factor_bytes,
        tape_ms,
        segment_ms,
        gradient_difference,
    })
}

/// The scene of `cfg` and its (loss, gradient) through Warp's explicit step (the whole
/// trajectory kept, hand-written adjoint); the parameters are the initial velocities
/// `[v₀ₓ, v₀ᵧ, v₀𝓏]` per particle (m/s). Also returns the start parameters.
pub fn explicit_objective(cfg: &ClothThrowConfig) -> Result<(Evaluation<'static>, Vec<f64>)> {
    let (model, x0, v0, target) = scenes::cloth_throw(cfg.cells)?;
    let (dt, steps) = (cfg.dt, cfg.steps);
    let f = move |p: &[f64]| -> Result<(f64, Vec<f64>)> {
        let run = explicit::rollout(&model, &x0, &unflatten(p), dt, steps);
        let (l, gx) = com_loss(&run.last().0, target);
        let zeros = vec![[0.0; 3]; model.len()];
        Ok((
            l,
            flatten(&explicit::adjoint(&model, &run, dt, &gx, &zeros).v0),
        ))
    };
    Ok((Box::new(f), flatten(&v0)))
}

/// Implicit Euler's (loss, gradient) on the scene of `cfg` with `stepper` (the IFT
/// adjoint); `newton` receives each rollout's Newton iterations per step (mean, max).
fn implicit_evaluation<'a>(
    cfg: &ClothThrowConfig,
    stepper: &'a Implicit<'a>,
    (x0, target): (Vec<V3>, V3),
    newton: &'a std::cell::Cell<(f64, usize)>,
) -> Evaluation<'a> {
    let steps = cfg.implicit_steps;
    Box::new(move |p: &[f64]| -> Result<(f64, Vec<f64>)> {
        let r = stepper.rollout(&x0, &unflatten(p), steps)?;
        newton.set(r.newton_stats());
        let (l, gx) = com_loss(&r.run.last().0, target);
        let zeros = vec![[0.0; 3]; x0.len()];
        Ok((l, flatten(&stepper.adjoint(&r, &gx, &zeros).v0)))
    })
}

/// The median wall time (ms) of one implicit (loss, gradient) evaluation on the scene of
/// `cfg` at its start velocities over `repeats` (after one untimed evaluation), and the
/// Newton iterations per step (mean, max).
pub fn time_implicit(cfg: &ClothThrowConfig, repeats: usize) -> Result<(f64, (f64, usize))> {
    let (model, x0, v0, target) = scenes::cloth_throw(cfg.cells)?;
    let stepper = Implicit::new(&model, cfg.implicit_dt, NewtonConfig::default())?;
    let newton = std::cell::Cell::new((0.0, 0));
    let f = implicit_evaluation(cfg, &stepper, (x0, target), &newton);
    let p0 = flatten(&v0);
    f(&p0)?;
    Ok((median_ms(repeats, &|| f(&p0))?, newton.get()))
}

/// Particles at two corners, the centre and an edge middle of a `cells`×`cells` cloth.
fn probe_particles(cells: usize) -> [usize; 4] {
    let (row, mid) = (cells + 1, cells / 2);
    [0, cells, mid * row + mid, cells * row + mid]
}

/// Runs the two descents (explicit, Warp's; implicit, 16× fewer steps).
pub fn run(cfg: &ClothThrowConfig) -> Result<ClothThrowResult> {
    let (model, x0, v0, target) = scenes::cloth_throw(cfg.cells)?;
    let np = model.len();
    let zeros = vec![[0.0; 3]; np];
    let p0 = flatten(&v0);
    // The velocities of two corners, the centre and an edge middle.
    let probes: Vec<usize> = probe_particles(cfg.cells)
        .iter()
        .flat_map(|p| (0..3).map(move |a| 3 * p + a))
        .collect();
    let descend = |f: &Objective<'_>| -> Result<(Trace, f64, f64)> {
        let fd = fd_error_on(f, &p0, &probes, 1e-5)?;
        let clock = Clock::default();
        let trace = gradient_descent(&clock.wrap(f), &p0, cfg.learning_rate, cfg.iterations, None)?;
        Ok((trace, fd, clock.mean_ms()))
    };
    let (explicit_loss, _) = explicit_objective(cfg)?;
    let (trace, fd, ms) = descend(&explicit_loss)?;
    let explicit = summary(trace, fd, ms, (cfg.steps + 1, np));
    let seed = |x: &[V3], _: &[V3]| (com_loss(x, target).1, zeros.clone());
    let fine = explicit::Explicit {
        model: &model,
        dt: cfg.dt,
    };
    let mut checkpoints = vec![checkpointing(
        cfg.steps,
        np,
        0,
        || Ok(unflatten(&explicit_loss(&p0)?.1)),
        |k| {
            let (g, held) = segmented_gradient(&fine, (&x0, &v0), cfg.steps, k, seed)?;
            Ok((g.v0, held))
        },
    )?];
    let mut r = ClothThrowResult {
        config: cfg.clone(),
        explicit,
        implicit: None,
        implicit_velocities_explicit_loss: None,
        implicit_continued_losses: Vec::new(),
        implicit_iterations_to_explicit_loss: None,
        checkpointing: Vec::new(),
    };
    if !cfg.implicit {
        r.checkpointing = checkpoints;
        return Ok(r);
    }
    let stepper = Implicit::new(&model, cfg.implicit_dt, NewtonConfig::default())?;
    let newton = std::cell::Cell::new((0.0, 0));
    let implicit_loss = implicit_evaluation(cfg, &stepper, (x0.clone(), target), &newton);
    let (trace, fd, ms) = descend(&implicit_loss)?;
    let mut implicit = summary(trace, fd, ms, (cfg.implicit_steps + 1, np));
    implicit.newton_iterations = Some(newton.get());
    let factor_bytes = stepper.factor_len()? * std::mem::size_of::<f64>();
    implicit.tape_bytes += cfg.implicit_steps * factor_bytes;
    r.implicit_velocities_explicit_loss = Some(explicit_loss(&implicit.trace.params)?.0);
    let goal = *r.explicit.trace.losses.last().expect("a loss");
    r.implicit_continued_losses = gradient_descent(
        &implicit_loss,
        &implicit.trace.params,
        cfg.learning_rate,
        cfg.extra_implicit_iterations,
        None,
    )?
    .losses;
    r.implicit_iterations_to_explicit_loss = implicit
        .trace
        .losses
        .iter()
        .chain(&r.implicit_continued_losses[1..])
        .position(|l| *l <= goal);
    r.implicit = Some(implicit);
    checkpoints.push(checkpointing(
        cfg.implicit_steps,
        np,
        factor_bytes,
        || Ok(unflatten(&implicit_loss(&p0)?.1)),
        |k| {
            let (g, held) = segmented_gradient(&stepper, (&x0, &v0), cfg.implicit_steps, k, seed)?;
            Ok((g.v0, held))
        },
    )?);
    r.checkpointing = checkpoints;
    Ok(r)
}

/// The study: `diffsim experiment cloth-throw`.
pub struct ClothThrow;

impl Study for ClothThrow {
    const NAME: &'static str = "cloth-throw";
    const ABOUT: &'static str = "B3: every particle's initial velocity of a thrown cloth with lift and drag; Warp's explicit recipe and implicit Euler with 16x fewer steps, segment checkpointing";
    type Config = ClothThrowConfig;
    type Result = ClothThrowResult;

    fn full() -> ClothThrowConfig {
        ClothThrowConfig::default()
    }

    fn quick() -> ClothThrowConfig {
        ClothThrowConfig::quick()
    }

    /// Runs the optimisations ([`run`]) and writes `loss.png` and `trajectory.gif`.
    fn run(
        cfg: &ClothThrowConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<ClothThrowResult> {
        progress.start("cloth-throw", 1);
        let r = run(cfg)?;
        let (m, traj, target) = trajectory(cfg, &r.explicit.trace.params)?;
        trajectory_gif(
            &dir.join("trajectory.gif"),
            &m,
            &every(&traj.states, 32),
            Some(target),
            "cloth-throw, optimised initial velocities",
        )?;
        line_plot(
            &dir.join("loss.png"),
            "cloth-throw: loss (log10) per gradient-descent iteration",
            "iteration",
            "log10 loss",
            &[
                (
                    format!("semi-implicit Euler, {} steps (Warp)", cfg.steps),
                    log_loss_curve(&r.explicit.trace.losses, 0),
                ),
                (
                    format!("implicit Euler, {} steps", cfg.implicit_steps),
                    r.implicit
                        .as_ref()
                        .map_or(Vec::new(), |i| log_loss_curve(&i.trace.losses, 0)),
                ),
                (
                    "implicit Euler, continued".into(),
                    log_loss_curve(&r.implicit_continued_losses, cfg.iterations),
                ),
            ],
        )?;
        progress.set(1);
        Ok(r)
    }

    fn report(r: &ClothThrowResult, dir: &Path) -> String {
        let cfg = &r.config;
        let mut lines: Vec<String> = Vec::new();
        let mut runs = vec![(
            format!("{0}x{0} cells, explicit, {1} steps", cfg.cells, cfg.steps),
            &r.explicit,
        )];
        if let Some(i) = &r.implicit {
            runs.push((format!("implicit, {} steps", cfg.implicit_steps), i));
        }
        for (name, run) in runs {
            lines.push(format!(
            "cloth-throw {name}: loss {:.2} -> {:.3} in {} iterations ({} lowered it, {} by > 1; Warp criteria over 4 iterations {}), adjoint vs FD {:.1e}, {:.0} ms per evaluation, tape {} states ({:.1} MB){}",
            run.trace.losses[0],
            run.trace.losses.last().expect("a loss"),
            run.trace.iterations,
            run.decreasing,
            run.decreasing_by_one,
            if run.warp_criteria_met {
                "met"
            } else {
                "NOT met"
            },
            run.gradient_fd_error,
            run.ms_per_evaluation,
            run.tape_states,
            run.tape_bytes as f64 / 1e6,
            run.newton_iterations
                .map_or(String::new(), |(mean, max)| format!(
                    ", Newton iterations per step {mean:.2} (max {max})"
                ))
        ));
        }
        for (name, c) in ["explicit", "implicit"].iter().zip(&r.checkpointing) {
            lines.push(format!(
            "cloth-throw {name}, segment checkpointing ({} steps, segments of {}): the adjoint holds {:.2} MB instead of {:.2} MB, {:.0} ms instead of {:.0} ms, gradient difference {:.1e}",
            c.steps,
            c.segment_steps,
            c.segment_bytes as f64 / 1e6,
            c.tape_bytes as f64 / 1e6,
            c.segment_ms,
            c.tape_ms,
            c.gradient_difference
        ));
        }
        lines.push(match r.implicit_velocities_explicit_loss {
            Some(loss) => format!(
                "cloth-throw: the implicit descent's velocities give {loss:.3} in the explicit simulation; its own loss reaches the explicit final loss {}; pictures in {}",
                r.implicit_iterations_to_explicit_loss.map_or(
                    format!(
                        "not within {} more iterations",
                        cfg.extra_implicit_iterations
                    ),
                    |k| format!("after {k} iterations")
                ),
                dir.display()
            ),
            None => format!(
                "cloth-throw: implicit descent skipped (implicit = false); pictures in {}",
                dir.display()
            ),
        });
        study_page(Self::NAME, &lines)
    }
}
