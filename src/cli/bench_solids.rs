//! `diffsim bench solids`: the wall time of one forward + backward (loss and gradient) of the
//! solids studies' objectives — the cloth throw through Warp's explicit step and through
//! implicit Euler (16× fewer steps), at Warp's 16×16 cells and at 64×64, the soft-body
//! material and the spring cage — in alternating rounds; `--warp FILE` sets them beside Warp
//! 1.9.1's CPU iterations measured the same day (`benches/warp/solids_iterations.py`).

use super::bench::read_json_lines;
use super::progress::Bar;
use crate::error::{DiffsimError, Result};
use crate::experiments::cloth_throw::{self, ClothThrowConfig};
use crate::experiments::softbody_material::{self, SoftbodyConfig};
use crate::experiments::spring_cage::{self, SpringCageConfig};
use crate::optim::{Evaluation, median_ms};
use crate::solids::scenes;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `diffsim bench solids` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SolidsCase {
    /// The cloth throw, Warp's semi-implicit Euler (1920 steps) with the hand-written adjoint.
    ClothExplicit,
    /// The cloth throw, implicit Euler (120 steps) with the IFT adjoint.
    ClothImplicit,
    /// The soft-body material identification, Warp's step (960 steps), gradient on μ, λ.
    Softbody,
    /// The spring cage, Warp's step (30 steps), gradient on the rest lengths.
    SpringCage,
}

impl SolidsCase {
    /// The case of `benches/warp/solids_iterations.py` that runs the same task.
    fn warp_case(self) -> &'static str {
        match self {
            Self::ClothExplicit | Self::ClothImplicit => "cloth-throw",
            Self::Softbody => "softbody-material",
            Self::SpringCage => "spring-cage",
        }
    }

    fn is_cloth(self) -> bool {
        matches!(self, Self::ClothExplicit | Self::ClothImplicit)
    }
}

/// Arguments of `diffsim bench solids`.
#[derive(Debug, Clone, Args)]
pub struct SolidsBenchArgs {
    /// Cases to time (repeatable). Default: all.
    #[arg(long, value_enum)]
    pub case: Vec<SolidsCase>,
    /// Cloth cells per side (repeatable; the cloth is 1 m wide). Default: 16 (Warp's, 289
    /// particles) and 64 (4225 particles).
    #[arg(long)]
    pub cells: Vec<usize>,
    /// Timed evaluations per round (after one untimed one); the round's median is kept.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Rounds over every case (the median of the rounds is reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Warp 1.9.1 timings measured the same day on this machine: the JSON lines of
    /// `benches/warp/solids_iterations.py --json`.
    #[arg(long, value_name = "FILE")]
    pub warp: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One line of `benches/warp/solids_iterations.py --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarpIteration {
    /// `cloth-throw`, `softbody-material` or `spring-cage`.
    pub case: String,
    /// Cloth cells per side (cloth only).
    pub cells: Option<usize>,
    /// Median wall time of one optimisation iteration (ms).
    pub ms: f64,
}

/// One case's measurement.
#[derive(Debug, Clone, Serialize)]
pub struct SolidsBenchRow {
    /// The case.
    pub case: SolidsCase,
    /// Cloth cells per side (cloth only).
    pub cells: Option<usize>,
    /// Particles.
    pub particles: usize,
    /// Time steps per evaluation.
    pub steps: usize,
    /// One forward + backward (ms; median of the rounds' medians).
    pub ms: f64,
    /// `ms` per particle and step (µs).
    pub us_per_particle_step: f64,
    /// Newton iterations per step (mean, max), implicit only.
    pub newton_iterations: Option<(f64, usize)>,
    /// Warp 1.9.1's CPU iteration on the same task (ms), when given.
    pub warp_ms: Option<f64>,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct SolidsBenchResult {
    /// One row per case and size.
    pub rows: Vec<SolidsBenchRow>,
}

impl SolidsBenchResult {
    /// The report for people.
    pub fn human(&self) -> String {
        let mut s = String::from(
            "solids, one forward + backward (median of rounds)\n\
             case            cells  particles  steps        ms  µs/particle-step  Newton/step | Warp 1.9.1 ms  ×Warp\n",
        );
        for r in &self.rows {
            s += &format!(
                "{:<15} {:>5}  {:>9}  {:>5}  {:>8.2}  {:>16.4}  {:>11} | {:>13}  {:>5}\n",
                r.case.to_possible_value().expect("a named case").get_name(),
                r.cells.map_or("–".into(), |c| c.to_string()),
                r.particles,
                r.steps,
                r.ms,
                r.us_per_particle_step,
                r.newton_iterations
                    .map_or("–".into(), |(mean, max)| format!("{mean:.2} ({max})")),
                r.warp_ms.map_or("–".into(), |w| format!("{w:.1}")),
                r.warp_ms.map_or("–".into(), |w| format!("{:.1}", w / r.ms)),
            );
        }
        s
    }
}

/// One round's timing (ms) and, implicit, the Newton iterations per step (mean, max).
type Round = (f64, Option<(f64, usize)>);

/// One timed case: its row (timing left empty) and the timer of one round.
struct Job {
    row: SolidsBenchRow,
    time: Box<dyn Fn() -> Result<Round>>,
}

fn job(case: SolidsCase, cells: Option<usize>, repeats: usize) -> Result<Job> {
    let row = |particles, steps| SolidsBenchRow {
        case,
        cells,
        particles,
        steps,
        ms: 0.0,
        us_per_particle_step: 0.0,
        newton_iterations: None,
        warp_ms: None,
    };
    let explicit = |(f, p0): (Evaluation<'static>, Vec<f64>), n, steps| {
        let time: Box<dyn Fn() -> Result<Round>> = Box::new(move || {
            f(&p0)?;
            Ok((median_ms(repeats, &|| f(&p0))?, None))
        });
        Job {
            row: row(n, steps),
            time,
        }
    };
    let cloth = ClothThrowConfig {
        cells: cells.unwrap_or(16),
        ..ClothThrowConfig::default()
    };
    let cloth_particles = (cloth.cells + 1).pow(2);
    Ok(match case {
        SolidsCase::ClothExplicit => explicit(
            cloth_throw::explicit_objective(&cloth)?,
            cloth_particles,
            cloth.steps,
        ),
        SolidsCase::ClothImplicit => Job {
            row: row(cloth_particles, cloth.implicit_steps),
            time: Box::new(move || {
                cloth_throw::time_implicit(&cloth, repeats).map(|(ms, n)| (ms, Some(n)))
            }),
        },
        SolidsCase::Softbody => {
            let cfg = SoftbodyConfig::default();
            let particles = scenes::softbody_material(cfg.smoothing)?.0.len();
            explicit(
                softbody_material::explicit_objective(&cfg)?,
                particles,
                cfg.steps,
            )
        }
        SolidsCase::SpringCage => {
            let cfg = SpringCageConfig::default();
            let particles = scenes::spring_cage().0.len();
            explicit(
                spring_cage::explicit_objective(&cfg),
                particles,
                cfg.explicit_steps,
            )
        }
    })
}

/// Times the cases in alternating rounds.
pub fn bench_solids(args: &SolidsBenchArgs) -> Result<SolidsBenchResult> {
    if args.repeats == 0 || args.rounds == 0 {
        return Err(DiffsimError::config(
            "--repeats and --rounds must be at least 1",
        ));
    }
    if args.cells.contains(&0) {
        return Err(DiffsimError::config("--cells must be at least 1"));
    }
    let warp: Vec<WarpIteration> = match &args.warp {
        Some(f) => read_json_lines(f, "benches/warp/solids_iterations.py")?,
        None => Vec::new(),
    };
    let cases = if args.case.is_empty() {
        SolidsCase::value_variants().to_vec()
    } else {
        args.case.clone()
    };
    let sizes = if args.cells.is_empty() {
        vec![16, 64]
    } else {
        args.cells.clone()
    };
    let mut jobs = Vec::new();
    for case in cases {
        let cells: Vec<Option<usize>> = if case.is_cloth() {
            sizes.iter().map(|&c| Some(c)).collect()
        } else {
            vec![None]
        };
        for c in cells {
            jobs.push(job(case, c, args.repeats)?);
        }
    }
    let mut times = vec![Vec::new(); jobs.len()];
    let progress = Bar::new("bench solids", (args.rounds * jobs.len()) as u64, args.json);
    for round in 0..args.rounds {
        for (k, (job, t)) in jobs.iter().zip(&mut times).enumerate() {
            t.push((job.time)()?);
            progress.set((round * jobs.len() + k + 1) as u64);
        }
    }
    progress.finish();
    let rows = jobs
        .into_iter()
        .zip(times)
        .map(|(job, mut t)| {
            let newton_iterations = t.last().and_then(|r| r.1);
            t.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut row = job.row;
            row.ms = t[t.len() / 2].0;
            row.us_per_particle_step = 1e3 * row.ms / (row.particles * row.steps) as f64;
            row.newton_iterations = newton_iterations;
            row.warp_ms = warp
                .iter()
                .find(|w| w.case == row.case.warp_case() && w.cells == row.cells)
                .map(|w| w.ms);
            row
        })
        .collect();
    Ok(SolidsBenchResult { rows })
}
