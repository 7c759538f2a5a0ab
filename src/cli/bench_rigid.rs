//! `diffsim bench rigid`: the wall time of one (loss, gradient) of the rigid-body studies'
//! objectives through 100 and 1000 steps — Warp's trajectory tracking with Warp's
//! semi-implicit step and with backward Euler — in alternating rounds; `--warp FILE` sets
//! them beside Warp 1.9.1's CPU iterations measured the same day
//! (`benches/warp/rigid_iterations.py`).

use super::bench::read_json_lines;
use super::progress::Bar;
use crate::error::{DiffsimError, Result};
use crate::experiments::rigid_trajectory::{self, RigidTrajectoryConfig, Step};
use crate::optim::median_ms;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Arguments of `diffsim bench rigid`.
#[derive(Debug, Clone, Args)]
pub struct RigidBenchArgs {
    /// Steps per evaluation (repeatable). Default: 100 and 1000.
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
    /// `trajectory`.
    pub case: String,
    /// Frames (one step each).
    pub frames: usize,
    /// Median wall time of one optimisation iteration (ms).
    pub ms: f64,
}

/// One case's measurement.
#[derive(Debug, Clone, Serialize)]
pub struct RigidBenchRow {
    /// `trajectory`.
    pub case: &'static str,
    /// The step differentiated.
    pub step: Step,
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
             case        step             steps         ms  µs/body-step | Warp 1.9.1 ms   ×Warp\n",
        );
        for r in &self.rows {
            s += &format!(
                "{:<11} {:<15} {:>6}  {:>9.4}  {:>12.3} | {:>13}  {:>6}\n",
                r.case,
                format!("{:?}", r.step),
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
    let mut jobs = Vec::new();
    for &frames in &lengths {
        for step in [Step::SemiImplicit, Step::BackwardEuler] {
            let cfg = RigidTrajectoryConfig {
                frames,
                ..RigidTrajectoryConfig::default()
            };
            jobs.push((frames, step, rigid_trajectory::objective(&cfg, step)));
        }
    }
    let mut times = vec![Vec::new(); jobs.len()];
    let progress = Bar::new("bench rigid", (args.rounds * jobs.len()) as u64, args.json);
    for round in 0..args.rounds {
        for (k, ((_, _, (f, p0)), t)) in jobs.iter().zip(&mut times).enumerate() {
            f(p0)?;
            t.push(median_ms(args.repeats, &|| f(p0))?);
            progress.set((round * jobs.len() + k + 1) as u64);
        }
    }
    progress.finish();
    let rows = jobs
        .iter()
        .zip(times)
        .map(|((frames, step, _), mut t)| {
            t.sort_by(f64::total_cmp);
            let ms = t[t.len() / 2];
            RigidBenchRow {
                case: "trajectory",
                step: *step,
                bodies: 1,
                steps: *frames,
                ms,
                us_per_body_step: 1e3 * ms / *frames as f64,
                warp_ms: warp
                    .iter()
                    .find(|w| w.case == "trajectory" && w.frames == *frames)
                    .map(|w| w.ms),
            }
        })
        .collect();
    Ok(RigidBenchResult { rows })
}
