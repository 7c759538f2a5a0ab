//! B1, the spring cage (docs/solids-benchmarks.md): optimise the 8 rest lengths so
//! that the free particle ends at the target. Explicit version: the Warp step (dt = 1/30, 30
//! steps) with gradient descent (lr 0.5, 25 iterations), checked against Warp's pass criteria;
//! implicit version: backward Euler (dt = 1/30, 60 steps) with L-BFGS on the IFT adjoint.

use crate::error::Result;
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::optim::{self, Clock, Evaluation, Trace, fd_error, gradient_descent, lbfgs};
use crate::solids::implicit::{GnParameters, Implicit, ImplicitRollout, NewtonConfig};
use crate::solids::{Model, Rollout, V3, explicit, point_loss, scenes};
use crate::viz::line_plot;
use crate::viz::solids::{every, trajectory_gif};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Damping `μ` of the Gauss-Newton normal equations (the Jacobian entries are O(1) here).
pub const GN_DAMPING: f64 = 1e-12;

/// Settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpringCageConfig {
    /// Explicit step (s).
    pub explicit_dt: f64,
    /// Explicit steps.
    pub explicit_steps: usize,
    /// Gradient-descent rate (Warp's 0.5).
    pub learning_rate: f64,
    /// Gradient-descent iterations (Warp's 25).
    pub gd_iterations: usize,
    /// Implicit step (s).
    pub implicit_dt: f64,
    /// Implicit steps.
    pub implicit_steps: usize,
    /// L-BFGS iterations at most.
    pub lbfgs_iterations: u64,
    /// L-BFGS stops below this loss.
    pub target_loss: f64,
    /// Relative bound on the rest lengths of the box-constrained L-BFGS and Gauss-Newton
    /// runs (0.4: within ±40% of their initial values).
    pub bound: f64,
    /// Horizons (steps) at which one dense and one sparse Gauss-Newton step are timed.
    pub horizons: Vec<usize>,
    /// Longest horizon at which the dense control GN step is timed (its normal matrix has
    /// `(3N)²` entries; 3840 steps would be 1.06 GB and minutes of Cholesky).
    pub dense_control_max_steps: usize,
}

impl Default for SpringCageConfig {
    fn default() -> Self {
        Self {
            explicit_dt: 1.0 / 30.0,
            explicit_steps: 30,
            learning_rate: 0.5,
            gd_iterations: 25,
            implicit_dt: 1.0 / 30.0,
            implicit_steps: 60,
            lbfgs_iterations: 10,
            target_loss: 1e-10,
            bound: 0.4,
            horizons: vec![60, 240, 960, 3840],
            dense_control_max_steps: 960,
        }
    }
}

impl SpringCageConfig {
    /// The toy size: the Gauss-Newton step timed at 60 and 240 steps only (the rest as in full).
    pub fn quick() -> Self {
        Self {
            horizons: vec![60, 240],
            dense_control_max_steps: 240,
            ..Self::default()
        }
    }
}

/// One optimisation's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// The optimisation.
    pub trace: Trace,
    /// `|∇L − FD|∞/|FD|∞`, the adjoint gradient against central differences (step 1e-6):
    /// explicit at the final parameters (the start is an equilibrium with zero
    /// gradient), implicit with rest lengths 5% off equilibrium.
    pub gradient_fd_error: f64,
    /// Mean wall time of one (loss, gradient) evaluation (ms).
    pub ms_per_evaluation: f64,
    /// Newton iterations per step (implicit only; rest lengths 5% off equilibrium): mean and
    /// max.
    pub newton_iterations: Option<(f64, usize)>,
}

/// Both versions.
#[derive(Clone, Debug, Serialize)]
pub struct SpringCageResult {
    /// Settings.
    pub config: SpringCageConfig,
    /// Warp step + gradient descent.
    pub explicit: Run,
    /// Warp's pass criteria on the explicit run: every loss < 0.3 and at least half of the
    /// iterations decrease the loss.
    pub warp_criteria_met: bool,
    /// Implicit Euler + L-BFGS.
    pub implicit: Run,
    /// L-BFGS iterations until the loss was below 1e-6 (None: never).
    pub lbfgs_iterations_to_1e6: Option<usize>,
    /// Implicit Euler + box-constrained L-BFGS with every rest length within ±40% of its
    /// initial value.
    pub bounded: Run,
    /// Implicit Euler + dense Gauss-Newton (Jacobian rows by 3 adjoint sweeps).
    pub gauss_newton: Run,
    /// Gauss-Newton iterations until the loss was below 1e-6 (None: never).
    pub gn_iterations_to_1e6: Option<usize>,
    /// Implicit Euler + sparse Gauss-Newton (one KKT solve per step).
    pub sparse_gauss_newton: Run,
    /// Sparse Gauss-Newton iterations until the loss was below 1e-6 (None: never).
    pub sgn_iterations_to_1e6: Option<usize>,
    /// Implicit Euler + projected sparse Gauss-Newton with every rest length within
    /// `±bound` of its initial value.
    pub bounded_gauss_newton: Run,
    /// Rest lengths on a bound at the end of `bounded_gauss_newton`.
    pub bounded_gn_at_bounds: usize,
    /// Time of one Gauss-Newton step (after the forward rollout) against the horizon:
    /// `(steps, dense ms, sparse ms)`, medians of 5.
    pub gn_step_ms_vs_horizon: Vec<(usize, f64, f64)>,
    /// Per-step control forces on the particle instead of rest lengths (3 per step, so the
    /// parameters grow with the horizon): time of one GN step, `(steps, dense ms, sparse
    /// ms)`, medians of 3; dense (adjoint Jacobian rows, then the `3N × 3N` normal matrix)
    /// only up to `dense_control_max_steps`. The course's "asymptotically better" case.
    pub control_gn_step_ms_vs_horizon: Vec<(usize, Option<f64>, f64)>,
    /// Sparse control GN from zero forces (rest lengths 5% off equilibrium, `implicit_steps`
    /// steps, μ = 1e-9): the loss per iteration until it is below `target_loss`.
    pub control_sgn_losses: Vec<f64>,
    /// Implicit (loss, gradient) with the whole trajectory stored against segment
    /// checkpointing (k = ⌈√N⌉): `(steps, states held tape, states held segments, ms tape,
    /// ms segments, max relative gradient difference)`.
    pub checkpointing: Vec<(usize, usize, usize, f64, f64, f64)>,
}

fn with_rest(model: &Model, rest: &[f64]) -> Model {
    let mut m = model.clone();
    m.springs
        .iter_mut()
        .zip(rest)
        .for_each(|(s, r)| s.rest = *r);
    m
}

/// The loss gradients `∂r_a/∂x` of the residuals `r_a = x₀[a] − target[a]`: unit vectors at
/// particle 0, for a model of `n` particles.
fn unit_seeds(n: usize) -> Vec<Vec<V3>> {
    (0..3)
        .map(|a| {
            let mut seed = vec![[0.0; 3]; n];
            seed[0][a] = 1.0;
            seed
        })
        .collect()
}

/// The cage with rest lengths `rest`, its explicit trajectory and the target.
pub fn trajectory(cfg: &SpringCageConfig, rest: &[f64]) -> (Model, Rollout, V3) {
    let (model, x0, target) = scenes::spring_cage();
    let m = with_rest(&model, rest);
    let v0 = vec![[0.0; 3]; m.len()];
    let run = explicit::rollout(&m, &x0, &v0, cfg.explicit_dt, cfg.explicit_steps);
    (m, run, target)
}

/// The (loss, gradient) through Warp's explicit step with respect to the rest lengths (m),
/// and the start rest lengths.
pub fn explicit_objective(cfg: &SpringCageConfig) -> (Evaluation<'static>, Vec<f64>) {
    let (model, x0, target) = scenes::spring_cage();
    let v0 = vec![[0.0; 3]; model.len()];
    let rest0: Vec<f64> = model.springs.iter().map(|s| s.rest).collect();
    let (dt, steps) = (cfg.explicit_dt, cfg.explicit_steps);
    let f = move |rest: &[f64]| -> Result<(f64, Vec<f64>)> {
        let m = with_rest(&model, rest);
        let run = explicit::rollout(&m, &x0, &v0, dt, steps);
        let (l, gx) = point_loss(&run.last().0, 0, target);
        let g = explicit::adjoint(&m, &run, dt, &gx, &vec![[0.0; 3]; m.len()]);
        Ok((l, g.rest))
    };
    (Box::new(f), rest0)
}

/// Runs both versions.
pub fn run(cfg: &SpringCageConfig) -> Result<SpringCageResult> {
    let (model, x0, target) = scenes::spring_cage();
    let v0 = vec![[0.0; 3]; model.len()];
    let rest0: Vec<f64> = model.springs.iter().map(|s| s.rest).collect();

    let (explicit_f, _) = explicit_objective(cfg);
    let clock = Clock::default();
    let trace = gradient_descent(
        &clock.wrap(&explicit_f),
        &rest0,
        cfg.learning_rate,
        cfg.gd_iterations,
        None,
    )?;
    let explicit_ms = clock.mean_ms();
    let decreasing = trace.losses.windows(2).filter(|w| w[1] < w[0]).count();
    let warp_criteria_met =
        trace.losses.iter().all(|l| *l < 0.3) && 2 * decreasing >= trace.iterations;
    // The Warp start is at equilibrium (zero gradient); check the gradient after one step.
    let explicit = Run {
        gradient_fd_error: fd_error(&explicit_f, &trace.params, 1e-6)?,
        ms_per_evaluation: explicit_ms,
        newton_iterations: None,
        trace,
    };

    let stepper = Implicit::new(&model, cfg.implicit_dt, NewtonConfig::default())?;
    let implicit_f = |rest: &[f64]| -> Result<(f64, Vec<f64>)> {
        let m = with_rest(&model, rest);
        let sim = stepper.with_model(&m)?;
        let r = sim.rollout(&x0, &v0, cfg.implicit_steps)?;
        let (l, gx) = point_loss(&r.run.last().0, 0, target);
        Ok((l, sim.adjoint(&r, &gx, &vec![[0.0; 3]; m.len()]).rest))
    };
    let mid = with_rest(&model, &rest0.iter().map(|r| r * 1.05).collect::<Vec<_>>());
    // From the equilibrium start Newton has nothing to do; count it with 5% longer rests.
    let newton = stepper
        .with_model(&mid)?
        .rollout(&x0, &v0, cfg.implicit_steps)?
        .newton_stats();
    let clock = Clock::default();
    let trace = lbfgs(
        &clock.wrap(&implicit_f),
        &rest0,
        cfg.lbfgs_iterations,
        cfg.target_loss,
        1e-14,
    )?;
    let implicit_ms = clock.mean_ms();
    let lbfgs_iterations_to_1e6 = trace.losses.iter().position(|l| *l < 1e-6);
    let implicit_trace = trace;
    let (lo, hi): (Vec<f64>, Vec<f64>) = rest0
        .iter()
        .map(|r| (r * (1.0 - cfg.bound), r * (1.0 + cfg.bound)))
        .unzip();
    let clock = Clock::default();
    let trace = optim::lbfgs_box(
        &clock.wrap(&implicit_f),
        &rest0,
        (&lo, &hi),
        50,
        cfg.target_loss,
        1e-12,
    )?;
    let bounded_ms = clock.mean_ms();
    let implicit = Run {
        gradient_fd_error: fd_error(
            &implicit_f,
            &mid.springs.iter().map(|s| s.rest).collect::<Vec<_>>(),
            1e-6,
        )?,
        ms_per_evaluation: implicit_ms,
        newton_iterations: Some(newton),
        trace: implicit_trace,
    };
    let bounded = Run {
        gradient_fd_error: implicit.gradient_fd_error,
        ms_per_evaluation: bounded_ms,
        newton_iterations: Some(newton),
        trace,
    };
    // Gauss-Newton on r = x₀(T) − target. Dense: one Jacobian row per residual by an adjoint
    // sweep; sparse: one KKT solve over the trajectory.
    let residuals = |rest: &[f64], sparse: bool| -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let m = with_rest(&model, rest);
        let sim = stepper.with_model(&m)?;
        let r = sim.rollout(&x0, &v0, cfg.implicit_steps)?;
        let x = &r.run.last().0;
        let res: Vec<f64> = (0..3).map(|a| x[0][a] - target[a]).collect();
        let seeds = unit_seeds(m.len());
        let rows = if sparse {
            sim.sparse_gn_jacobian(&r, &seeds, GnParameters::RestLengths)?
        } else {
            sim.adjoint_jacobian(&r, &seeds, GnParameters::RestLengths)
        };
        Ok((res, rows))
    };
    let gn_run = |trace: &dyn Fn(&Clock) -> Result<Trace>| -> Result<Run> {
        let clock = Clock::default();
        let trace = trace(&clock)?;
        Ok(Run {
            gradient_fd_error: implicit.gradient_fd_error,
            ms_per_evaluation: clock.mean_ms(),
            newton_iterations: implicit.newton_iterations,
            trace,
        })
    };
    let unbounded_gn = |sparse: bool| {
        gn_run(&|clock| {
            let step = |p: &[f64]| -> Result<(Vec<f64>, Vec<f64>)> {
                let (res, rows) = residuals(p, sparse)?;
                let step = optim::dense_gn_step(&res, &rows, GN_DAMPING)?;
                Ok((res, step))
            };
            optim::gauss_newton(&clock.wrap(&step), &rest0, 10, cfg.target_loss)
        })
    };
    let gauss_newton = unbounded_gn(false)?;
    let sparse_gauss_newton = unbounded_gn(true)?;
    let bounded_gauss_newton = gn_run(&|clock| {
        let f = |p: &[f64]| residuals(p, true);
        optim::gauss_newton_box(
            &clock.wrap(&f),
            &rest0,
            (&lo, &hi),
            GN_DAMPING,
            10,
            cfg.target_loss,
        )
    })?;
    let bounded_gn_at_bounds = bounded_gauss_newton
        .trace
        .params
        .iter()
        .zip(lo.iter().zip(&hi))
        .filter(|&(&p, (&lo, &hi))| p <= lo || p >= hi)
        .count();
    let gn_iterations_to_1e6 = gauss_newton.trace.losses.iter().position(|l| *l < 1e-6);
    let mut gn_step_ms_vs_horizon = Vec::new();
    for steps in cfg.horizons.iter().copied() {
        let sim = stepper.with_model(&mid)?;
        let r = sim.rollout(&x0, &v0, steps)?;
        let x = &r.run.last().0;
        let res: Vec<f64> = (0..3).map(|a| x[0][a] - target[a]).collect();
        let seeds = unit_seeds(mid.len());
        let dense = optim::median_ms(5, &|| {
            let rows = sim.adjoint_jacobian(&r, &seeds, GnParameters::RestLengths);
            optim::dense_gn_step(&res, &rows, GN_DAMPING)
        })?;
        let sparse = optim::median_ms(5, &|| {
            optim::dense_gn_step(
                &res,
                &sim.sparse_gn_jacobian(&r, &seeds, GnParameters::RestLengths)?,
                GN_DAMPING,
            )
        })?;
        gn_step_ms_vs_horizon.push((steps, dense, sparse));
    }
    let control_gn_step_ms_vs_horizon = control_gn_timings(cfg, &stepper, &mid)?;
    let control_sgn_losses = control_gn_run(cfg, &stepper, &mid)?;
    let mut checkpointing = Vec::new();
    for steps in cfg.horizons.iter().copied() {
        let sim = stepper.with_model(&mid)?;
        let zero = vec![[0.0; 3]; mid.len()];
        let t = Instant::now();
        let r = sim.rollout(&x0, &v0, steps)?;
        let tape = sim.adjoint(&r, &point_loss(&r.run.last().0, 0, target).1, &zero);
        let tape_ms = 1e3 * t.elapsed().as_secs_f64();
        let k = (steps as f64).sqrt().ceil() as usize;
        let t = Instant::now();
        let (seg, held) = crate::solids::segmented_gradient(&sim, (&x0, &v0), steps, k, |x, _| {
            (point_loss(x, 0, target).1, zero.clone())
        })?;
        let seg_ms = 1e3 * t.elapsed().as_secs_f64();
        let diff = tape
            .rest
            .iter()
            .zip(&seg.rest)
            .map(|(a, b)| (a - b).abs() / a.abs().max(1e-12))
            .fold(0.0, f64::max);
        checkpointing.push((steps, steps + 1, held, tape_ms, seg_ms, diff));
    }
    let sgn_iterations_to_1e6 = sparse_gauss_newton
        .trace
        .losses
        .iter()
        .position(|l| *l < 1e-6);
    Ok(SpringCageResult {
        config: cfg.clone(),
        explicit,
        warp_criteria_met,
        implicit,
        lbfgs_iterations_to_1e6,
        bounded,
        gauss_newton,
        gn_iterations_to_1e6,
        sparse_gauss_newton,
        sgn_iterations_to_1e6,
        bounded_gauss_newton,
        bounded_gn_at_bounds,
        gn_step_ms_vs_horizon,
        control_gn_step_ms_vs_horizon,
        control_sgn_losses,
        checkpointing,
    })
}

/// Damping of the control GN steps (the forces outnumber the 3 residuals).
const CONTROL_GN_DAMPING: f64 = 1e-9;

/// The free particle's (particle 0's) control forces, flattened `[step][axis]`.
fn particle_controls(controls: &[Vec<V3>]) -> Vec<f64> {
    controls.iter().flat_map(|u| u[0]).collect()
}

/// Per-step forces on particle 0 from `[step][axis]` values.
fn controls_from(m: &Model, flat: &[f64]) -> Vec<Vec<V3>> {
    flat.chunks(3)
        .map(|c| {
            let mut u = vec![[0.0; 3]; m.len()];
            u[0] = [c[0], c[1], c[2]];
            u
        })
        .collect()
}

/// The cage `m` rolled out for `steps` steps: its stepper, the rollout and the residuals
/// `x₀(T) − target`.
fn control_rollout<'m>(
    stepper: &Implicit<'_>,
    m: &'m Model,
    steps: usize,
) -> Result<(Implicit<'m>, ImplicitRollout, Vec<f64>)> {
    let (_, x0, target) = scenes::spring_cage();
    let sim = stepper.with_model(m)?;
    let r = sim.rollout(&x0, &vec![[0.0; 3]; m.len()], steps)?;
    let x = &r.run.last().0;
    let res = (0..3).map(|a| x[0][a] - target[a]).collect();
    Ok((sim, r, res))
}

/// One control GN step on a rollout: dense (adjoint rows, `3N × 3N` normal matrix) or
/// sparse ([`Implicit::sparse_gn_control_step`]).
fn control_gn_step(
    sim: &Implicit<'_>,
    r: &ImplicitRollout,
    res: &[f64],
    sparse: bool,
) -> Result<Vec<f64>> {
    let particles = r.run.states[0].0.len();
    let seeds = unit_seeds(particles);
    if sparse {
        let du = sim.sparse_gn_control_step(r, res, &seeds, CONTROL_GN_DAMPING)?;
        return Ok(particle_controls(&du));
    }
    let zero = vec![[0.0; 3]; particles];
    let rows: Vec<Vec<f64>> = seeds
        .iter()
        .map(|s| particle_controls(&sim.adjoint(r, s, &zero).controls))
        .collect();
    optim::dense_gn_step(res, &rows, CONTROL_GN_DAMPING)
}

/// One control GN step after the forward rollout at zero forces, per horizon (medians of 3).
fn control_gn_timings(
    cfg: &SpringCageConfig,
    stepper: &Implicit<'_>,
    mid: &Model,
) -> Result<Vec<(usize, Option<f64>, f64)>> {
    cfg.horizons
        .iter()
        .map(|&steps| {
            let m = Model {
                controls: controls_from(mid, &vec![0.0; 3 * steps]),
                ..mid.clone()
            };
            let (sim, r, res) = control_rollout(stepper, &m, steps)?;
            let time = |sparse| optim::median_ms(3, &|| control_gn_step(&sim, &r, &res, sparse));
            let dense = if steps <= cfg.dense_control_max_steps {
                Some(time(false)?)
            } else {
                None
            };
            Ok((steps, dense, time(true)?))
        })
        .collect()
}

fn control_gn_run(cfg: &SpringCageConfig, stepper: &Implicit<'_>, mid: &Model) -> Result<Vec<f64>> {
    let steps = cfg.implicit_steps;
    let f = |u: &[f64]| -> Result<(Vec<f64>, Vec<f64>)> {
        let m = Model {
            controls: controls_from(mid, u),
            ..mid.clone()
        };
        let (sim, r, res) = control_rollout(stepper, &m, steps)?;
        let step = control_gn_step(&sim, &r, &res, true)?;
        Ok((res, step))
    };
    let trace = optim::gauss_newton(&f, &vec![0.0; 3 * steps], 10, cfg.target_loss)?;
    Ok(trace.losses)
}

/// The study: `diffsim experiment spring-cage`.
pub struct SpringCage;

impl Study for SpringCage {
    const NAME: &'static str = "spring-cage";
    const ABOUT: &'static str = "B1: rest lengths of a spring cage; Warp step + gradient descent, implicit Euler + L-BFGS / Gauss-Newton / sparse Gauss-Newton, per-step controls";
    type Config = SpringCageConfig;
    type Result = SpringCageResult;

    fn full() -> SpringCageConfig {
        SpringCageConfig::default()
    }

    fn quick() -> SpringCageConfig {
        SpringCageConfig::quick()
    }

    /// Runs the optimisations ([`run`]) and writes `loss.png` and `trajectory.gif`.
    fn run(
        cfg: &SpringCageConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<SpringCageResult> {
        progress.start("spring-cage", 1);
        let r = run(cfg)?;
        line_plot(
            &dir.join("loss.png"),
            "spring-cage: loss (log10) per iteration",
            "iteration",
            "log10 loss",
            &[
                (
                    "explicit (Warp step), gradient descent".into(),
                    log_loss_curve(&r.explicit.trace.losses, 0),
                ),
                (
                    "implicit Euler, L-BFGS".into(),
                    log_loss_curve(&r.implicit.trace.losses, 0),
                ),
            ],
        )?;
        let (m, run, target) = trajectory(cfg, &r.explicit.trace.params);
        trajectory_gif(
            &dir.join("trajectory.gif"),
            &m,
            &every(&run.states, 1),
            Some(target),
            "spring-cage, optimised rest lengths",
        )?;
        progress.set(1);
        Ok(r)
    }

    fn report(r: &SpringCageResult, dir: &Path) -> String {
        let cfg = &r.config;
        let mut lines: Vec<String> = Vec::new();
        let last = |t: &Trace| *t.losses.last().expect("a loss");
        lines.push(format!(
        "spring-cage explicit: loss {:.3e} -> {:.3e} in {} GD iterations (Warp criteria {}), adjoint vs FD {:.1e}, {:.3} ms per evaluation",
        r.explicit.trace.losses[0],
        last(&r.explicit.trace),
        r.explicit.trace.iterations,
        if r.warp_criteria_met {
            "met"
        } else {
            "NOT met"
        },
        r.explicit.gradient_fd_error,
        r.explicit.ms_per_evaluation
    ));
        lines.push(format!(
        "spring-cage implicit: loss {:.3e} -> {:.3e} in {} L-BFGS iterations ({} evaluations; < 1e-6 after {}), adjoint vs FD {:.1e}, {:.3} ms per evaluation; pictures in {}",
        r.implicit.trace.losses[0],
        last(&r.implicit.trace),
        r.implicit.trace.iterations,
        r.implicit.trace.evaluations,
        r.lbfgs_iterations_to_1e6
            .map_or("never".into(), |k| k.to_string()),
        r.implicit.gradient_fd_error,
        r.implicit.ms_per_evaluation,
        dir.display()
    ));
        let gn = |t: &Trace| {
            format!(
                "{:.3e} -> {:.3e} in {} iterations",
                t.losses[0],
                last(t),
                t.iterations
            )
        };
        lines.push(format!(
        "spring-cage Gauss-Newton (implicit): dense {}; sparse {}; sparse within ±{:.0}% of the rest lengths {} ({} on a bound)",
        gn(&r.gauss_newton.trace),
        gn(&r.sparse_gauss_newton.trace),
        100.0 * cfg.bound,
        gn(&r.bounded_gauss_newton.trace),
        r.bounded_gn_at_bounds
    ));
        let timings: Vec<String> = r
            .control_gn_step_ms_vs_horizon
            .iter()
            .map(|(n, dense, sparse)| {
                let dense = dense.map_or("not run".into(), |d| format!("{d:.1} ms"));
                format!("N={n}: dense {dense}, sparse {sparse:.1} ms")
            })
            .collect();
        lines.push(format!(
        "spring-cage per-step controls: sparse GN loss {:.3e} -> {:.3e} in {} iterations; one GN step {}",
        r.control_sgn_losses[0],
        r.control_sgn_losses.last().expect("a loss"),
        r.control_sgn_losses.len() - 1,
        timings.join("; ")
    ));
        study_page(Self::NAME, &lines)
    }
}
