//! B1, the spring cage (`../shared/reference/solids.md` §2): optimise the 8 rest lengths so
//! that the free particle ends at the target. Explicit version: the Warp step (dt = 1/30, 30
//! steps) with gradient descent (lr 0.5, 25 iterations), checked against Warp's pass criteria;
//! implicit version: backward Euler (dt = 1/30, 60 steps) with L-BFGS on the IFT adjoint.

use super::{Objective, Trace, gradient_descent, lbfgs};
use crate::error::Result;
use crate::solids::implicit::{Implicit, NewtonConfig};
use crate::solids::{MassSpring, V3, explicit, scenes};
use serde::Serialize;
use std::time::Instant;

/// Settings.
#[derive(Clone, Debug, Serialize)]
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
        }
    }
}

/// One optimisation's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// The optimisation.
    pub trace: Trace,
    /// Largest relative difference of the adjoint gradient and central differences (step
    /// 1e-6): explicit at the final parameters (the start is an equilibrium with zero
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
}

fn loss(x: &[V3], target: V3) -> (f64, Vec<V3>) {
    let d: V3 = std::array::from_fn(|a| x[0][a] - target[a]);
    let mut g = vec![[0.0; 3]; x.len()];
    g[0] = d.map(|c| 2.0 * c);
    (d.iter().map(|c| c * c).sum(), g)
}

fn with_rest(model: &MassSpring, rest: &[f64]) -> MassSpring {
    let mut m = model.clone();
    m.springs
        .iter_mut()
        .zip(rest)
        .for_each(|(s, r)| s.rest = *r);
    m
}

/// Max relative difference of `grad` and central differences of `f` at `p` (step 1e-6).
fn fd_error(f: &Objective<'_>, p: &[f64]) -> Result<f64> {
    let (_, g) = f(p)?;
    let mut worst: f64 = 0.0;
    for k in 0..p.len() {
        let at = |d: f64| {
            let mut q = p.to_vec();
            q[k] += d;
            f(&q).map(|r| r.0)
        };
        let fd = (at(1e-6)? - at(-1e-6)?) / 2e-6;
        worst = worst.max((g[k] - fd).abs() / fd.abs().max(1e-8));
    }
    Ok(worst)
}

/// Times `f` over an optimisation: wraps it with a clock.
fn timed<'a>(
    f: &'a Objective<'a>,
    clock: &'a std::cell::Cell<(f64, usize)>,
) -> impl Fn(&[f64]) -> Result<(f64, Vec<f64>)> + 'a {
    move |p| {
        let t = Instant::now();
        let r = f(p);
        let (s, n) = clock.get();
        clock.set((s + t.elapsed().as_secs_f64(), n + 1));
        r
    }
}

/// Runs both versions.
pub fn run(cfg: &SpringCageConfig) -> Result<SpringCageResult> {
    let (model, x0, target) = scenes::spring_cage();
    let v0 = vec![[0.0; 3]; model.len()];
    let rest0: Vec<f64> = model.springs.iter().map(|s| s.rest).collect();

    let explicit_f = |rest: &[f64]| -> Result<(f64, Vec<f64>)> {
        let m = with_rest(&model, rest);
        let run = explicit::rollout(&m, &x0, &v0, cfg.explicit_dt, cfg.explicit_steps);
        let (l, gx) = loss(&run.last().0, target);
        let g = explicit::adjoint(&m, &run, cfg.explicit_dt, &gx, &vec![[0.0; 3]; m.len()]);
        Ok((l, g.rest))
    };
    let clock = std::cell::Cell::new((0.0, 0));
    let trace = gradient_descent(
        &timed(&explicit_f, &clock),
        &rest0,
        cfg.learning_rate,
        cfg.gd_iterations,
    )?;
    let explicit_ms = 1e3 * clock.get().0 / clock.get().1.max(1) as f64;
    let decreasing = trace.losses.windows(2).filter(|w| w[1] < w[0]).count();
    let warp_criteria_met =
        trace.losses.iter().all(|l| *l < 0.3) && 2 * decreasing >= trace.iterations;
    // The Warp start is at equilibrium (zero gradient); check the gradient after one step.
    let explicit = Run {
        gradient_fd_error: fd_error(&explicit_f, &trace.params)?,
        ms_per_evaluation: explicit_ms,
        newton_iterations: None,
        trace,
    };

    let stepper = Implicit::new(&model, cfg.implicit_dt, NewtonConfig::default())?;
    let implicit_f = |rest: &[f64]| -> Result<(f64, Vec<f64>)> {
        let m = with_rest(&model, rest);
        let sim = stepper.with_model(&m)?;
        let r = sim.rollout(&x0, &v0, cfg.implicit_steps)?;
        let (l, gx) = loss(&r.run.last().0, target);
        Ok((l, sim.adjoint(&r, &gx, &vec![[0.0; 3]; m.len()]).rest))
    };
    let mid = with_rest(&model, &rest0.iter().map(|r| r * 1.05).collect::<Vec<_>>());
    let newton = {
        // From the equilibrium start Newton has nothing to do; count it with 5% longer rests.
        let r = stepper
            .with_model(&mid)?
            .rollout(&x0, &v0, cfg.implicit_steps)?;
        let it = &r.newton_iters;
        (
            it.iter().sum::<usize>() as f64 / it.len().max(1) as f64,
            it.iter().copied().max().unwrap_or(0),
        )
    };
    let clock = std::cell::Cell::new((0.0, 0));
    let trace = lbfgs(
        &timed(&implicit_f, &clock),
        &rest0,
        cfg.lbfgs_iterations,
        cfg.target_loss,
        1e-14,
    )?;
    let implicit_ms = 1e3 * clock.get().0 / clock.get().1.max(1) as f64;
    let lbfgs_iterations_to_1e6 = trace.losses.iter().position(|l| *l < 1e-6);
    let implicit = Run {
        gradient_fd_error: fd_error(
            &implicit_f,
            &mid.springs.iter().map(|s| s.rest).collect::<Vec<_>>(),
        )?,
        ms_per_evaluation: implicit_ms,
        newton_iterations: Some(newton),
        trace,
    };
    Ok(SpringCageResult {
        config: cfg.clone(),
        explicit,
        warp_criteria_met,
        implicit,
        lbfgs_iterations_to_1e6,
    })
}
