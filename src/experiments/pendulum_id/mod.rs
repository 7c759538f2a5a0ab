//! R7, system identification of a compound pendulum's length (Tiny Differentiable Simulator's
//! `pendulum_sys_id`): one link on a revolute joint about x, mass 1 kg at the end of a massless
//! rod of length `L` along the link's y axis, rotational inertia of a solid sphere of radius
//! 0.15 m about that point, gravity 9.81 m/s² along −z, released from rest with the rod
//! horizontal (q = 0); 100 semi-implicit steps of 0.01 s. The data are the joint angle and
//! velocity before each step of the pendulum with `L = 1.5 m`; the loss is the mean over steps
//! of `(q − q*)² + (q̇ − q̇*)²`, its derivative in `L` comes from the joint-space adjoint
//! (`∂/∂` centre of mass, the rotational inertia about it held). Tiny's protocol is 100
//! gradient-descent steps of rate 0.3 from `L = 1.0`; we run it, L-BFGS on the same loss, and
//! fits to data with Gaussian noise whose spread is compared with the curvature's standard
//! error. The mass cancels from the motion, so the length is the only identifiable parameter.

use crate::articulation::{
    Articulation, Inertia, Joint, JointKind, JointRollout, JointStepper, Link, Scheme, Transform,
};
use crate::error::{DiffsimError, Result};
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::optim::{Trace, fd_error, gradient_descent, lbfgs, median_ms};
use crate::viz::line_plot;
use crate::viz::rigid::{Disc, discs_gif};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PendulumIdConfig {
    /// The length that made the data (m).
    pub true_length: f64,
    /// The first guess (m).
    pub guess: f64,
    /// The bob's mass (kg) and the radius of the sphere whose inertia it has (m).
    pub mass: f64,
    pub radius: f64,
    /// Gravity (m/s², pointing down).
    pub gravity: f64,
    /// Time step (s) and steps observed.
    pub timestep: f64,
    pub steps: usize,
    /// Gradient descent: rate and iterations (Tiny's protocol).
    pub learning_rate: f64,
    pub iterations: usize,
    /// Standard deviation of the noise added to each observed angle (rad) and velocity
    /// (rad/s) in the noisy fits, and how many noisy data sets are fitted.
    pub noise: f64,
    pub trials: usize,
    /// Seed of the noise.
    pub seed: u64,
    /// Timed (loss, gradient) evaluations.
    pub repeats: usize,
}

impl Default for PendulumIdConfig {
    fn default() -> Self {
        Self {
            true_length: 1.5,
            guess: 1.0,
            mass: 1.0,
            radius: 0.15,
            gravity: 9.81,
            timestep: 0.01,
            steps: 100,
            learning_rate: 0.3,
            iterations: 100,
            noise: 0.05,
            trials: 100,
            seed: 7,
            repeats: 50,
        }
    }
}

/// The compound pendulum of length `length` (one link, joint at the world origin).
pub fn compound_pendulum(cfg: &PendulumIdConfig, length: f64) -> Articulation {
    let i = 0.4 * cfg.mass * cfg.radius * cfg.radius;
    Articulation {
        links: vec![Link {
            name: "pendulum".into(),
            parent: None,
            joint: Joint::new(
                JointKind::Revolute {
                    axis: [1.0, 0.0, 0.0],
                },
                Transform::identity(),
            ),
            inertia: Inertia {
                m: cfg.mass,
                com: [0.0, length, 0.0],
                ic: [[i, 0.0, 0.0], [0.0, i, 0.0], [0.0, 0.0, i]],
            },
        }],
        gravity: [0.0, 0.0, -cfg.gravity],
    }
}

/// Observed angles and velocities before each step.
#[derive(Clone, Debug, Serialize)]
pub struct Observations {
    pub q: Vec<f64>,
    pub v: Vec<f64>,
}

/// The pendulum of length `length` released from rest, horizontal.
fn rollout(cfg: &PendulumIdConfig, length: f64) -> Result<JointRollout> {
    let model = compound_pendulum(cfg, length);
    JointStepper::new(&model, cfg.timestep, Scheme::SemiImplicit)?.rollout(
        &[0.0],
        &[0.0],
        &[],
        cfg.steps,
    )
}

/// What the pendulum of length `length` shows before each step.
pub fn observe(cfg: &PendulumIdConfig, length: f64) -> Result<Observations> {
    let run = rollout(cfg, length)?;
    Ok(Observations {
        q: run.q[..cfg.steps].iter().map(|q| q[0]).collect(),
        v: run.v[..cfg.steps].iter().map(|v| v[0]).collect(),
    })
}

/// The loss `(1/T) Σₜ (qₜ − q*ₜ)² + (q̇ₜ − q̇*ₜ)²` of length `p[0]` and its derivative.
pub fn evaluate(cfg: &PendulumIdConfig, data: &Observations, p: &[f64]) -> Result<(f64, Vec<f64>)> {
    let length = p[0];
    if !(length.is_finite() && length > 0.0) {
        return Err(DiffsimError::config(format!(
            "pendulum-id: the length left the positive range ({length} m); lower the learning rate"
        )));
    }
    let model = compound_pendulum(cfg, length);
    let stepper = JointStepper::new(&model, cfg.timestep, Scheme::SemiImplicit)?;
    let run = stepper.rollout(&[0.0], &[0.0], &[], cfg.steps)?;
    let t = cfg.steps as f64;
    let mut loss = 0.0;
    let mut bars = vec![(Vec::new(), Vec::new()); cfg.steps + 1];
    for (n, bar) in bars.iter_mut().take(cfg.steps).enumerate() {
        let (dq, dv) = (run.q[n][0] - data.q[n], run.v[n][0] - data.v[n]);
        loss += (dq * dq + dv * dv) / t;
        *bar = (vec![2.0 * dq / t], vec![2.0 * dv / t]);
    }
    // The rod runs along the link's y axis: its length is the centre of mass's y coordinate.
    let (_, dl) = stepper.adjoint_with_params(&run, &[], &bars, &[(0, 2)])?;
    Ok((loss, dl))
}

/// One identification from the first guess.
#[derive(Clone, Debug, Serialize)]
pub struct Fit {
    pub method: String,
    pub trace: Trace,
    /// The identified length (m) and its error `L − L*` (m).
    pub length: f64,
    pub error: f64,
}

/// The fits to noisy data.
#[derive(Clone, Debug, Serialize)]
pub struct NoisyFits {
    /// Every trial's identified length (m).
    pub lengths: Vec<f64>,
    /// Their mean minus the true length, and their standard deviation (m).
    pub bias: f64,
    pub spread: f64,
    /// The mean standard error predicted by the loss's curvature, `√(2σ̂²/(T·L''))` with σ̂²
    /// the residuals' variance (m).
    pub predicted_error: f64,
}

/// What the study measured.
#[derive(Clone, Debug, Serialize)]
pub struct PendulumIdResult {
    pub config: PendulumIdConfig,
    /// Adjoint derivative vs central differences (step 1e-6) at the guess, relative.
    pub fd_error: f64,
    /// The derivative at the guess (1/m).
    pub gradient_at_guess: f64,
    /// Gradient descent (Tiny's protocol), then L-BFGS.
    pub fits: Vec<Fit>,
    pub noisy: NoisyFits,
    /// `(L, loss)` over the plotted range.
    pub landscape: Vec<(f64, f64)>,
    /// One (loss, derivative) in ms (median).
    pub ms_per_evaluation: f64,
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let (u, w): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * w).cos()
}

/// L-BFGS from the guess to a vanishing gradient.
fn lbfgs_fit(cfg: &PendulumIdConfig, data: &Observations) -> Result<Trace> {
    let f = |p: &[f64]| evaluate(cfg, data, p);
    lbfgs(&f, &[cfg.guess], 50, 0.0, 1e-14)
}

/// The noisy fits: identified lengths, bias, spread and predicted standard error.
fn noisy_fits(
    cfg: &PendulumIdConfig,
    clean: &Observations,
    progress: &dyn Progress,
) -> Result<NoisyFits> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let (mut lengths, mut predicted) = (Vec::new(), Vec::new());
    let t = cfg.steps as f64;
    for k in 0..cfg.trials {
        let data = Observations {
            q: clean
                .q
                .iter()
                .map(|x| x + cfg.noise * normal(&mut rng))
                .collect(),
            v: clean
                .v
                .iter()
                .map(|x| x + cfg.noise * normal(&mut rng))
                .collect(),
        };
        let trace = lbfgs_fit(cfg, &data)?;
        let l = trace.params[0];
        let d = 1e-5 * l;
        let curvature = (evaluate(cfg, &data, &[l + d])?.1[0]
            - evaluate(cfg, &data, &[l - d])?.1[0])
            / (2.0 * d);
        // The loss is a mean over T steps of two residuals each: Σr² = T·loss.
        let variance = t * trace.losses[trace.losses.len() - 1] / (2.0 * t - 1.0);
        predicted.push((2.0 * variance / (t * curvature)).sqrt());
        lengths.push(l);
        progress.set(k as u64 + 1);
    }
    let n = lengths.len().max(1) as f64;
    let mean = lengths.iter().sum::<f64>() / n;
    let spread =
        (lengths.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    Ok(NoisyFits {
        bias: mean - cfg.true_length,
        spread,
        predicted_error: predicted.iter().sum::<f64>() / n,
        lengths,
    })
}

/// Runs the study (no pictures).
pub fn run(cfg: &PendulumIdConfig, progress: &dyn Progress) -> Result<PendulumIdResult> {
    let data = observe(cfg, cfg.true_length)?;
    let f = |p: &[f64]| evaluate(cfg, &data, p);
    let guess = [cfg.guess];
    let fd = fd_error(&f, &guess, 1e-6)?;
    let gradient_at_guess = f(&guess)?.1[0];
    let ms_per_evaluation = median_ms(cfg.repeats.max(1), &|| f(&guess))?;
    let fit = |method: &str, trace: Trace| Fit {
        method: method.into(),
        length: trace.params[0],
        error: trace.params[0] - cfg.true_length,
        trace,
    };
    let fits = vec![
        fit(
            "gradient descent",
            gradient_descent(&f, &guess, cfg.learning_rate, cfg.iterations, None)?,
        ),
        fit("L-BFGS", lbfgs_fit(cfg, &data)?),
    ];
    let (lo, hi) = (
        0.5 * cfg.guess.min(cfg.true_length),
        1.5 * cfg.guess.max(cfg.true_length),
    );
    let landscape = (0..=100)
        .map(|k| {
            let l = lo + (hi - lo) * f64::from(k) / 100.0;
            f(&[l]).map(|(loss, _)| (l, loss))
        })
        .collect::<Result<Vec<_>>>()?;
    progress.start("pendulum-id: noisy fits", cfg.trials as u64);
    let noisy = noisy_fits(cfg, &data, progress)?;
    Ok(PendulumIdResult {
        config: cfg.clone(),
        fd_error: fd,
        gradient_at_guess,
        fits,
        noisy,
        landscape,
        ms_per_evaluation,
    })
}

/// The study: `diffsim experiment pendulum-id`.
pub struct PendulumId;

impl Study for PendulumId {
    const NAME: &'static str = "pendulum-id";
    const ABOUT: &'static str = "R7, a compound pendulum's length identified from its swing (Tiny Differentiable Simulator's setup): gradient descent and L-BFGS on the adjoint, and noisy-data fits";
    type Config = PendulumIdConfig;
    type Result = PendulumIdResult;

    fn full() -> PendulumIdConfig {
        PendulumIdConfig::default()
    }

    fn quick() -> PendulumIdConfig {
        PendulumIdConfig {
            iterations: 20,
            trials: 5,
            repeats: 5,
            ..PendulumIdConfig::default()
        }
    }

    fn validate(cfg: &PendulumIdConfig) -> Result<()> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        let fine = positive(cfg.true_length)
            && positive(cfg.guess)
            && positive(cfg.mass)
            && cfg.radius.is_finite()
            && cfg.radius >= 0.0
            && positive(cfg.gravity)
            && positive(cfg.timestep)
            && cfg.steps > 0
            && positive(cfg.learning_rate)
            && cfg.noise.is_finite()
            && cfg.noise >= 0.0
            && cfg.trials >= 2;
        if fine {
            Ok(())
        } else {
            Err(DiffsimError::config(
                "pendulum-id needs positive lengths, mass, gravity, time step, step count and learning rate, a non-negative radius and noise, and at least 2 noisy trials (their spread is measured)",
            ))
        }
    }

    /// Runs [`run`] and writes `loss.png` (both descents), `landscape.png` (the loss against
    /// the length), `angles.png` (data, first guess and fit) and `swing.gif`.
    fn run(
        cfg: &PendulumIdConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<PendulumIdResult> {
        let r = run(cfg, progress)?;
        let series: Vec<_> = r
            .fits
            .iter()
            .map(|f| (f.method.clone(), log_loss_curve(&f.trace.losses, 0)))
            .collect();
        line_plot(
            &dir.join("loss.png"),
            "pendulum-id: loss (log10) per iteration",
            "iteration",
            "log10 loss",
            &series,
        )?;
        line_plot(
            &dir.join("landscape.png"),
            &format!(
                "pendulum-id: loss against the length (data: L = {} m)",
                cfg.true_length
            ),
            "L (m)",
            "loss",
            &[("loss".into(), r.landscape.clone())],
        )?;
        let fitted = r.fits[0].length;
        let runs = [
            (format!("data, L = {} m", cfg.true_length), cfg.true_length),
            (format!("first guess, L = {} m", cfg.guess), cfg.guess),
            (format!("gradient descent, L = {fitted:.5} m"), fitted),
        ];
        let mut angles = Vec::new();
        let mut swings = Vec::new();
        for (name, l) in &runs {
            let o = observe(cfg, *l)?;
            angles.push((
                name.clone(),
                o.q.iter()
                    .enumerate()
                    .map(|(n, q)| (n as f64 * cfg.timestep, *q))
                    .collect(),
            ));
            swings.push((*l, o.q));
        }
        line_plot(
            &dir.join("angles.png"),
            "pendulum-id: joint angle (rad)",
            "t (s)",
            "q (rad)",
            &angles,
        )?;
        // The y–z plane seen along the joint axis: the data's bob and the guess's.
        let frames: Vec<Vec<Disc>> = (0..cfg.steps)
            .step_by(2)
            .map(|n| {
                swings[..2]
                    .iter()
                    .map(|(l, q)| Disc {
                        center: [l * q[n].cos(), l * q[n].sin()],
                        radius: cfg.radius,
                        spoke: [q[n].cos(), q[n].sin()],
                    })
                    .collect()
            })
            .collect();
        discs_gif(
            &dir.join("swing.gif"),
            &frames,
            0,
            &[[0.0, 0.0]],
            "pendulum-id: data (L = 1.5 m) and the first guess (L = 1.0 m)",
        )?;
        Ok(r)
    }

    fn report(r: &PendulumIdResult, dir: &Path) -> String {
        let c = &r.config;
        let mut lines = vec![format!(
            "{} steps of {} s from rest, horizontal; data L* = {} m, guess {} m; dloss/dL at the guess {:.6} m⁻¹ (adjoint vs central differences {:.1e}); one (loss, derivative) {:.3} ms",
            c.steps,
            c.timestep,
            c.true_length,
            c.guess,
            r.gradient_at_guess,
            r.fd_error,
            r.ms_per_evaluation
        )];
        for f in &r.fits {
            let l = &f.trace.losses;
            lines.push(format!(
                "{}: loss {:.4e} → {:.3e} in {} iterations ({} evaluations); L = {:.10} m (error {:.2e} m)",
                f.method,
                l[0],
                l[l.len() - 1],
                f.trace.iterations,
                f.trace.evaluations,
                f.length,
                f.error
            ));
        }
        let n = &r.noisy;
        lines.push(format!(
            "{} noisy data sets (σ = {} rad and rad/s on every observation), L-BFGS each: bias {:.2e} m, spread {:.3e} m, curvature's standard error {:.3e} m",
            n.lengths.len(),
            c.noise,
            n.bias,
            n.spread,
            n.predicted_error
        ));
        lines.push(format!("pictures: {}", dir.display()));
        study_page(PendulumId::NAME, &lines)
    }
}
