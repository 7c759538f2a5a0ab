//! B4, soft-body material identification (docs/solids-benchmarks.md): find the
//! per-tetrahedron Lamé parameters (μ, λ) for which a bouncing soft cube's centre of mass
//! ends at a target. Warp's recipe, SGD with lr 1e7 clamped to [500, 4e6] for 300
//! iterations, is run as published; next to it, box-constrained L-BFGS on (ln μ, ln λ) with
//! the same bounds, which needs no learning rate, through the same explicit simulation and
//! through implicit steps (Newton, IFT adjoint) 4× longer: backward Euler and the implicit
//! midpoint rule.

use crate::error::Result;
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::optim::{
    Clock, Evaluation, Objective, Trace, fd_error, fd_error_on, gauss_newton_box, gradient_descent,
    lbfgs_box, median_ms,
};
use crate::solids::implicit::{GnParameters, Implicit, NewtonConfig, Scheme};
use crate::solids::{Model, Rollout, V3, com_loss, com_residuals, explicit, scenes};
use crate::viz::line_plot;
use crate::viz::solids::{every, trajectory_gif};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Settings (Warp's: 60 fps × 16 substeps for 1 s).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftbodyConfig {
    /// Time step (s).
    pub dt: f64,
    /// Steps.
    pub steps: usize,
    /// Contact smoothing length (m).
    pub smoothing: f64,
    /// Warp's SGD rate (on Pa).
    pub sgd_learning_rate: f64,
    /// Warp's SGD iterations.
    pub sgd_iterations: usize,
    /// L-BFGS iterations at most.
    pub lbfgs_iterations: usize,
    /// Bounds of μ and λ (Pa).
    pub bounds: (f64, f64),
    /// Gauss-Newton iterations at most.
    pub gn_iterations: usize,
    /// The implicit schemes' time step (s).
    pub implicit_dt: f64,
    /// Implicit steps.
    pub implicit_steps: usize,
}

impl Default for SoftbodyConfig {
    fn default() -> Self {
        Self {
            dt: 1.0 / 960.0,
            steps: 960,
            smoothing: 1e-3,
            sgd_learning_rate: 1e7,
            sgd_iterations: 300,
            lbfgs_iterations: 50,
            bounds: (500.0, 4e6),
            gn_iterations: 20,
            implicit_dt: 1.0 / 240.0,
            implicit_steps: 240,
        }
    }
}

impl SoftbodyConfig {
    /// The toy size: 30 SGD, 10 L-BFGS and 5 Gauss-Newton iterations (the rest as in full).
    pub fn quick() -> Self {
        Self {
            sgd_iterations: 30,
            lbfgs_iterations: 10,
            gn_iterations: 5,
            ..Self::default()
        }
    }
}

/// One optimisation's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct SoftbodyRun {
    /// The optimisation (parameters `[μ₀, λ₀, μ₁, λ₁, …]` in Pa).
    pub trace: Trace,
    /// Iterations that lowered the loss.
    pub decreasing: usize,
    /// Newton's pass criteria: every loss < 0.8 and ≥ 80% of the iterations lower the loss.
    pub warp_criteria_met: bool,
    /// Mean wall time of one forward + backward (ms).
    pub ms_per_evaluation: f64,
    /// Newton iterations per step over the run's last trajectory (mean, max); None for the
    /// explicit integrator.
    pub newton_iterations: Option<(f64, usize)>,
}

/// What the experiment measured.
#[derive(Clone, Debug, Serialize)]
pub struct SoftbodyResult {
    /// Settings.
    pub config: SoftbodyConfig,
    /// Warp's SGD.
    pub sgd: SoftbodyRun,
    /// Box-constrained L-BFGS on (ln μ, ln λ).
    pub lbfgs: SoftbodyRun,
    /// The same through implicit (backward) Euler.
    pub implicit_lbfgs: SoftbodyRun,
    /// `|∇L − FD|∞/|FD|∞` of the implicit gradient at the start (step 1e-5), over the
    /// (ln μ, ln λ) of the first 4 tetrahedra.
    pub implicit_gradient_fd_error: f64,
    /// The same optimisation through the implicit midpoint rule (same step, same cost per
    /// step, no numerical damping).
    pub midpoint_lbfgs: SoftbodyRun,
    /// `implicit_gradient_fd_error` for the midpoint rule.
    pub midpoint_gradient_fd_error: f64,
    /// Projected Gauss-Newton (centre-of-mass residuals, Jacobian by three adjoint sweeps)
    /// on (ln μ, ln λ) within the same bounds, through the midpoint rule.
    pub midpoint_gauss_newton: SoftbodyRun,
    /// `max|J_dense − J_sparse| / max|J_dense|` of the midpoint Gauss-Newton Jacobian at the
    /// start: adjoint sweeps against sparse GN's forward elimination.
    pub midpoint_jacobian_difference: f64,
    /// Wall time of that Jacobian (ms, medians of 3): `(3 adjoint sweeps, sparse GN)`.
    pub midpoint_jacobian_ms: (f64, f64),
    /// `|∇L − FD|∞/|FD|∞` at the start, the gradient with respect to every ln μ and ln λ
    /// against central differences with step 1e-5 (the best step here: truncation error
    /// falls as h², round-off through 960 steps with contact grows as 1/h below it).
    pub gradient_fd_error: f64,
    /// The first L-BFGS iteration whose loss is at or below Warp SGD's final loss.
    pub lbfgs_iterations_to_sgd_loss: Option<usize>,
    /// States the adjoint keeps (the whole trajectory) and their size (bytes).
    pub tape_states: usize,
    /// See `tape_states`.
    pub tape_bytes: usize,
}

/// Damping of the Gauss-Newton normal equations (3 residuals, 2 parameters per tetrahedron:
/// the minimum-norm step).
const GN_DAMPING: f64 = 1e-12;

fn with_materials(model: &Model, p: &[f64]) -> Model {
    let mut m = model.clone();
    for (t, pair) in m.tets.iter_mut().zip(p.chunks(2)) {
        (t.mu, t.lambda) = (pair[0], pair[1]);
    }
    m
}

/// `f` (of parameters in Pa) as a function of their logarithms: `p = e^q`, `∂L/∂q = p·∂L/∂p`.
fn in_log<'a>(f: &'a Objective<'a>) -> impl Fn(&[f64]) -> Result<(f64, Vec<f64>)> + 'a {
    move |q| {
        let p: Vec<f64> = q.iter().map(|v| v.exp()).collect();
        let (l, g) = f(&p)?;
        Ok((l, g.iter().zip(&p).map(|(g, p)| g * p).collect()))
    }
}

fn run_summary(trace: Trace, ms_per_evaluation: f64) -> SoftbodyRun {
    let decreasing = trace.losses.windows(2).filter(|w| w[1] < w[0]).count();
    let warp_criteria_met =
        trace.losses.iter().all(|l| *l < 0.8) && 5 * decreasing >= 4 * trace.iterations;
    SoftbodyRun {
        trace,
        decreasing,
        warp_criteria_met,
        ms_per_evaluation,
        newton_iterations: None,
    }
}

/// The scene with materials `p` (`[μ₀, λ₀, …]`), its trajectory and the target.
pub fn trajectory(cfg: &SoftbodyConfig, p: &[f64]) -> Result<(Model, Rollout, V3)> {
    let (model, x0, v0, target) = scenes::softbody_material(cfg.smoothing)?;
    let m = with_materials(&model, p);
    let run = explicit::rollout(&m, &x0, &v0, cfg.dt, cfg.steps);
    Ok((m, run, target))
}

/// The (loss, gradient) through Warp's explicit step with respect to the materials
/// `[μ₀, λ₀, μ₁, λ₁, …]` (Pa), and the start materials.
pub fn explicit_objective(cfg: &SoftbodyConfig) -> Result<(Evaluation<'static>, Vec<f64>)> {
    let (model, x0, v0, target) = scenes::softbody_material(cfg.smoothing)?;
    let (dt, steps) = (cfg.dt, cfg.steps);
    let p0: Vec<f64> = model.tets.iter().flat_map(|t| [t.mu, t.lambda]).collect();
    let f = move |p: &[f64]| -> Result<(f64, Vec<f64>)> {
        let m = with_materials(&model, p);
        let run = explicit::rollout(&m, &x0, &v0, dt, steps);
        let (l, gx) = com_loss(&run.last().0, target);
        let g = explicit::adjoint(&m, &run, dt, &gx, &vec![[0.0; 3]; m.len()]);
        Ok((l, GnParameters::Materials.of(&g)))
    };
    Ok((Box::new(f), p0))
}

/// Runs the three optimisations (Warp SGD, bounded L-BFGS explicit and implicit).
pub fn run(cfg: &SoftbodyConfig) -> Result<SoftbodyResult> {
    let (model, x0, v0, target) = scenes::softbody_material(cfg.smoothing)?;
    let np = model.len();
    let (pa, p0) = explicit_objective(cfg)?;
    let q0: Vec<f64> = p0.iter().map(|p| p.ln()).collect();
    let gradient_fd_error = fd_error(&in_log(&pa), &q0, 1e-5)?;
    let n = p0.len();
    let (lo, hi) = (vec![cfg.bounds.0; n], vec![cfg.bounds.1; n]);
    let clock = Clock::default();
    let sgd = gradient_descent(
        &clock.wrap(&pa),
        &p0,
        cfg.sgd_learning_rate,
        cfg.sgd_iterations,
        Some((&lo, &hi)),
    )?;
    let sgd = run_summary(sgd, clock.mean_ms());
    // Bounded L-BFGS on ln(Pa), from ln p₀, within the log bounds.
    let (llo, lhi): (Vec<f64>, Vec<f64>) = (
        lo.iter().map(|v| v.ln()).collect(),
        hi.iter().map(|v| v.ln()).collect(),
    );
    let bounded_lbfgs = |f: &Objective<'_>| -> Result<SoftbodyRun> {
        let clock = Clock::default();
        let mut trace = lbfgs_box(
            &clock.wrap(&in_log(f)),
            &q0,
            (&llo, &lhi),
            cfg.lbfgs_iterations,
            0.0,
            1e-12,
        )?;
        trace.params.iter_mut().for_each(|q| *q = q.exp());
        Ok(run_summary(trace, clock.mean_ms()))
    };
    let lbfgs = bounded_lbfgs(&pa)?;
    let sgd_final = *sgd.trace.losses.last().expect("a loss");
    let lbfgs_iterations_to_sgd_loss = lbfgs.trace.losses.iter().position(|l| *l <= sgd_final);
    // Implicit steps: one symbolic analysis per scheme, reused for every material.
    let implicit_run = |scheme: Scheme| -> Result<(SoftbodyRun, f64, Option<SoftbodyRun>)> {
        let stepper =
            Implicit::new(&model, cfg.implicit_dt, NewtonConfig::default())?.with_scheme(scheme)?;
        let newton = std::cell::Cell::new((0.0, 0));
        let implicit = |p: &[f64]| -> Result<(f64, Vec<f64>)> {
            let m = with_materials(&model, p);
            let sim = stepper.with_model(&m)?;
            let r = sim.rollout(&x0, &v0, cfg.implicit_steps)?;
            newton.set(r.newton_stats());
            let (l, gx) = com_loss(&r.run.last().0, target);
            Ok((
                l,
                GnParameters::Materials.of(&sim.adjoint(&r, &gx, &vec![[0.0; 3]; np])),
            ))
        };
        // FD costs two rollouts per parameter: check the first 4 tetrahedra's (8 numbers).
        let probes: Vec<usize> = (0..8).collect();
        let fd = fd_error_on(&in_log(&implicit), &q0, &probes, 1e-5)?;
        let mut run = bounded_lbfgs(&implicit)?;
        run.newton_iterations = Some(newton.get());
        // Gauss-Newton on r = centre of mass − target (3 residuals), Jacobian rows by three
        // adjoint sweeps through the stored factors, in (ln μ, ln λ) within the log bounds.
        let gn = (scheme == Scheme::Midpoint)
            .then(|| -> Result<SoftbodyRun> {
                let residuals = |q: &[f64]| -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
                    let p: Vec<f64> = q.iter().map(|v| v.exp()).collect();
                    let m = with_materials(&model, &p);
                    let sim = stepper.with_model(&m)?;
                    let r = sim.rollout(&x0, &v0, cfg.implicit_steps)?;
                    newton.set(r.newton_stats());
                    let (res, seeds) = com_residuals(&r.run.last().0, target);
                    let rows = sim
                        .adjoint_jacobian(&r, &seeds, GnParameters::Materials)
                        .iter()
                        .map(|row| row.iter().zip(&p).map(|(g, p)| g * p).collect())
                        .collect();
                    Ok((res, rows))
                };
                let clock = Clock::default();
                let mut trace = gauss_newton_box(
                    &clock.wrap(&residuals),
                    &q0,
                    (&llo, &lhi),
                    GN_DAMPING,
                    cfg.gn_iterations,
                    0.0,
                )?;
                trace.params.iter_mut().for_each(|q| *q = q.exp());
                let mut run = run_summary(trace, clock.mean_ms());
                run.newton_iterations = Some(newton.get());
                Ok(run)
            })
            .transpose()?;
        Ok((run, fd, gn))
    };
    let (implicit_lbfgs, implicit_gradient_fd_error, _) = implicit_run(Scheme::BackwardEuler)?;
    let (midpoint_lbfgs, midpoint_gradient_fd_error, midpoint_gn) = implicit_run(Scheme::Midpoint)?;
    let midpoint_gauss_newton = midpoint_gn.expect("the midpoint run includes Gauss-Newton");
    // The Gauss-Newton Jacobian at the start, through the midpoint rule: 3 adjoint sweeps
    // against sparse GN's forward elimination (80 columns per stored factor).
    let sim = Implicit::new(&model, cfg.implicit_dt, NewtonConfig::default())?
        .with_scheme(Scheme::Midpoint)?;
    let r = sim.rollout(&x0, &v0, cfg.implicit_steps)?;
    let (_, seeds) = com_residuals(&r.run.last().0, target);
    let dense = || -> Result<_> { Ok(sim.adjoint_jacobian(&r, &seeds, GnParameters::Materials)) };
    let sparse = || sim.sparse_gn_jacobian(&r, &seeds, GnParameters::Materials);
    let (jd, js) = (dense()?, sparse()?);
    let scale = jd.iter().flatten().fold(0.0f64, |a, b| a.max(b.abs()));
    let midpoint_jacobian_difference = jd
        .iter()
        .flatten()
        .zip(js.iter().flatten())
        .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()))
        / scale.max(1e-300);
    let midpoint_jacobian_ms = (median_ms(3, &dense)?, median_ms(3, &sparse)?);
    let tape_states = cfg.steps + 1;
    Ok(SoftbodyResult {
        config: cfg.clone(),
        sgd,
        lbfgs,
        implicit_lbfgs,
        implicit_gradient_fd_error,
        midpoint_lbfgs,
        midpoint_gradient_fd_error,
        midpoint_gauss_newton,
        midpoint_jacobian_difference,
        midpoint_jacobian_ms,
        gradient_fd_error,
        lbfgs_iterations_to_sgd_loss,
        tape_states,
        tape_bytes: tape_states * np * 2 * std::mem::size_of::<V3>(),
    })
}

/// The study: `diffsim experiment softbody-material`.
pub struct SoftbodyMaterial;

impl Study for SoftbodyMaterial {
    const NAME: &'static str = "softbody-material";
    const ABOUT: &'static str = "B4: per-tetrahedron Lame parameters of a bouncing soft cube; Warp's SGD, bounded L-BFGS, implicit Euler and midpoint, bounded Gauss-Newton";
    type Config = SoftbodyConfig;
    type Result = SoftbodyResult;

    fn full() -> SoftbodyConfig {
        SoftbodyConfig::default()
    }

    fn quick() -> SoftbodyConfig {
        SoftbodyConfig::quick()
    }

    /// Runs the optimisations ([`run`]) and writes `loss.png` and `trajectory.gif`.
    fn run(cfg: &SoftbodyConfig, dir: &Path, progress: &dyn Progress) -> Result<SoftbodyResult> {
        progress.start("softbody-material", 1);
        let r = run(cfg)?;
        let (m, traj, target) = trajectory(cfg, &r.lbfgs.trace.params)?;
        trajectory_gif(
            &dir.join("trajectory.gif"),
            &m,
            &every(&traj.states, 16),
            Some(target),
            "softbody-material, L-BFGS materials",
        )?;
        line_plot(
            &dir.join("loss.png"),
            "softbody-material: loss (log10) per iteration",
            "iteration",
            "log10 loss",
            &[
                (
                    "Warp SGD (lr 1e7, clamped)".into(),
                    log_loss_curve(&r.sgd.trace.losses, 0),
                ),
                (
                    "bounded L-BFGS on ln(mu, lambda)".into(),
                    log_loss_curve(&r.lbfgs.trace.losses, 0),
                ),
                (
                    "implicit Euler (1/240 s), bounded L-BFGS".into(),
                    log_loss_curve(&r.implicit_lbfgs.trace.losses, 0),
                ),
                (
                    "implicit midpoint (1/240 s), bounded L-BFGS".into(),
                    log_loss_curve(&r.midpoint_lbfgs.trace.losses, 0),
                ),
                (
                    "implicit midpoint (1/240 s), bounded Gauss-Newton".into(),
                    log_loss_curve(&r.midpoint_gauss_newton.trace.losses, 0),
                ),
            ],
        )?;
        progress.set(1);
        Ok(r)
    }

    fn report(r: &SoftbodyResult, dir: &Path) -> String {
        let mut lines: Vec<String> = Vec::new();
        for (name, run) in [
            ("Warp SGD", &r.sgd),
            ("bounded L-BFGS", &r.lbfgs),
            ("implicit Euler + bounded L-BFGS", &r.implicit_lbfgs),
            ("implicit midpoint + bounded L-BFGS", &r.midpoint_lbfgs),
            (
                "implicit midpoint + bounded Gauss-Newton",
                &r.midpoint_gauss_newton,
            ),
        ] {
            lines.push(format!(
            "softbody-material {name}: loss {:.3e} -> {:.3e} in {} iterations ({} evaluations, {} lowered it; Warp criteria {}), {:.1} ms per evaluation{}",
            run.trace.losses[0],
            run.trace.losses.last().expect("a loss"),
            run.trace.iterations,
            run.trace.evaluations,
            run.decreasing,
            if run.warp_criteria_met {
                "met"
            } else {
                "NOT met"
            },
            run.ms_per_evaluation,
            run.newton_iterations
                .map_or(String::new(), |(mean, max)| format!(
                    ", Newton iterations per step {mean:.2} (max {max})"
                ))
        ));
        }
        lines.push(format!(
        "softbody-material: adjoint vs FD {:.1e} (explicit), {:.1e} (implicit Euler), {:.1e} (midpoint); midpoint GN Jacobian {:.1} ms by 3 adjoint sweeps, {:.1} ms by sparse GN (difference {:.1e}); the explicit tape holds {} states ({:.1} MB); pictures in {}",
        r.gradient_fd_error,
        r.implicit_gradient_fd_error,
        r.midpoint_gradient_fd_error,
        r.midpoint_jacobian_ms.0,
        r.midpoint_jacobian_ms.1,
        r.midpoint_jacobian_difference,
        r.tape_states,
        r.tape_bytes as f64 / 1e6,
        dir.display()
    ));
        study_page(Self::NAME, &lines)
    }
}
