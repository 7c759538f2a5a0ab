//! `diffsim bench rigid`: the wall time of one (loss, gradient) of the rigid-body studies'
//! objectives — Warp's trajectory tracking through 100 and 1000 steps and Warp's sphere
//! pushing through its 150 frames, each with Warp's semi-implicit step and with backward
//! Euler — in alternating rounds; `--warp FILE` sets
//! them beside Warp 1.9.1's CPU iterations measured the same day
//! (`benches/warp/rigid_iterations.py`).

use super::bench::read_json_lines;
use super::progress::Bar;
use crate::error::{DiffsimError, Result};
use crate::experiments::rigid_trajectory::{self, RigidTrajectoryConfig};
use crate::experiments::sphere_pushing::{self, SpherePushingConfig};
use crate::optim::Evaluation;
use crate::optim::median_ms;
use crate::rigid::DifferentiatedStep;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Arguments of `diffsim bench rigid`.
#[derive(Debug, Clone, Args)]
pub struct RigidBenchArgs {
    /// Steps per evaluation of the trajectory case (repeatable). Default: 100 and 1000.
    #[arg(long)]
    pub steps: Vec<usize>,
    /// Timed evaluations per round (after one untimed one); the round's median is kept.
    #[arg(long, default_value_t = 20)]
    pub repeats: usize,
    /// Rounds over every case (the median of the rounds is reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Warp 1.9.1 timings measured the same day on this machine: the JSON lines of
    /// `benches/warp/rigid_iterations.py --json`.
    #[arg(long, value_name = "FILE")]
    pub warp: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One line of `benches/warp/rigid_iterations.py --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarpRigidIteration {
    /// `trajectory` or `sphere-pushing`.
    pub case: String,
    /// Frames.
    pub frames: usize,
    /// Median wall time of one optimisation iteration (ms).
    pub ms: f64,
}

/// One case's measurement.
#[derive(Debug, Clone, Serialize)]
pub struct RigidBenchRow {
    /// `trajectory` or `sphere-pushing`.
    pub case: &'static str,
    /// The step differentiated.
    pub step: DifferentiatedStep,
    /// Bodies.
    pub bodies: usize,
    /// Time steps per evaluation.
    pub steps: usize,
    /// One (loss, gradient) (ms; median of the rounds' medians).
    pub ms: f64,
    /// `ms` per body and step (µs).
    pub us_per_body_step: f64,
    /// Warp 1.9.1's CPU iteration on the same task (ms), when given.
    pub warp_ms: Option<f64>,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct RigidBenchResult {
    /// One row per case, step and length.
    pub rows: Vec<RigidBenchRow>,
}

impl RigidBenchResult {
    /// The report for people.
    pub fn human(&self) -> String {
        let mut s = String::from(
            "rigid bodies, one (loss, gradient) (median of rounds)\n\
             case            step            bodies  steps         ms  µs/body-step | Warp 1.9.1 ms   ×Warp\n",
        );
        for r in &self.rows {
            s += &format!(
                "{:<15} {:<15} {:>6} {:>6}  {:>9.4}  {:>12.3} | {:>13}  {:>6}\n",
                r.case,
                format!("{:?}", r.step),
                r.bodies,
                r.steps,
                r.ms,
                r.us_per_body_step,
                r.warp_ms.map_or("–".into(), |w| format!("{w:.1}")),
                r.warp_ms.map_or("–".into(), |w| format!("{:.0}", w / r.ms)),
            );
        }
        s
    }
}

/// One timed objective.
struct Job {
    case: &'static str,
    step: DifferentiatedStep,
    bodies: usize,
    steps: usize,
    f: Evaluation<'static>,
    p0: Vec<f64>,
}

/// Times the cases in alternating rounds.
pub fn bench_rigid(args: &RigidBenchArgs) -> Result<RigidBenchResult> {
    if args.repeats == 0 || args.rounds == 0 || args.steps.iter().any(|&n| n < 2) {
        return Err(DiffsimError::config(
            "--repeats and --rounds must be at least 1, --steps at least 2",
        ));
    }
    let warp: Vec<WarpRigidIteration> = match &args.warp {
        Some(f) => read_json_lines(f, "benches/warp/rigid_iterations.py")?,
        None => Vec::new(),
    };
    let lengths = if args.steps.is_empty() {
        vec![100, 1000]
    } else {
        args.steps.clone()
    };
    let mut jobs: Vec<Job> = Vec::new();
    for &frames in &lengths {
        for step in [
            DifferentiatedStep::SemiImplicit,
            DifferentiatedStep::BackwardEuler,
        ] {
            let cfg = RigidTrajectoryConfig {
                frames,
                ..RigidTrajectoryConfig::default()
            };
            let (f, p0) = rigid_trajectory::objective(&cfg, step);
            jobs.push(Job {
                case: "trajectory",
                step,
                bodies: 1,
                steps: frames,
                f,
                p0,
            });
        }
    }
    let push = SpherePushingConfig::default();
    for (step, ps, sub) in [
        (
            DifferentiatedStep::SemiImplicit,
            DifferentiatedStep::SemiImplicit,
            push.semi_implicit_substeps,
        ),
        (
            DifferentiatedStep::BackwardEuler,
            DifferentiatedStep::BackwardEuler,
            push.implicit_substeps,
        ),
    ] {
        let cfg = push.clone();
        let f: Evaluation<'static> = Box::new(move |p: &[f64]| {
            sphere_pushing::evaluate(&cfg, ps, p[0]).map(|r| (r.loss, vec![r.grad]))
        });
        jobs.push(Job {
            case: "sphere-pushing",
            step,
            bodies: 4,
            steps: push.frames * sub,
            f,
            p0: vec![80.0],
        });
    }
    let mut times = vec![Vec::new(); jobs.len()];
    let progress = Bar::new("bench rigid", (args.rounds * jobs.len()) as u64, args.json);
    for round in 0..args.rounds {
        for (k, (job, t)) in jobs.iter().zip(&mut times).enumerate() {
            (job.f)(&job.p0)?;
            t.push(median_ms(args.repeats, &|| (job.f)(&job.p0))?);
            progress.set((round * jobs.len() + k + 1) as u64);
        }
    }
    progress.finish();
    let rows = jobs
        .iter()
        .zip(times)
        .map(|(job, mut t)| {
            t.sort_by(f64::total_cmp);
            let ms = t[t.len() / 2];
            RigidBenchRow {
                case: job.case,
                step: job.step,
                bodies: job.bodies,
                steps: job.steps,
                ms,
                us_per_body_step: 1e3 * ms / (job.steps * job.bodies) as f64,
                warp_ms: warp
                    .iter()
                    .find(|w| {
                        w.case == job.case
                            && (job.case == "sphere-pushing" || w.frames == job.steps)
                    })
                    .map(|w| w.ms),
            }
        })
        .collect();
    Ok(RigidBenchResult { rows })
}
