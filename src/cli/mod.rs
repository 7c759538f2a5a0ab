//! The `diffsim` command line (clap). `main.rs` only calls [`main`].

mod bench;
mod bench_articulation;
mod bench_burgers;
mod bench_grad;
mod bench_machine;
mod bench_rigid;
mod bench_solids;
mod bench_train;
mod dataset;
mod eval;
mod experiment;
mod gradcheck;
mod progress;
mod simulate;
mod train;

pub use bench::{BenchArgs, BenchResult, bench_fluid};
pub use bench_grad::{GradBenchResult, bench_grad};
pub use dataset::{DatasetArgs, DatasetName, dataset};
pub use eval::{EvalArgs, eval_cmd};
pub use experiment::{ExperimentArgs, experiment};
pub use gradcheck::{GradcheckArgs, gradcheck};
pub use simulate::{PictureField, SimulateArgs, SimulateSummary, simulate};
pub use train::{TrainArgs, train_cmd};

use crate::error::Result;
use crate::fluid::{BUILTIN_SCENES, SceneConfig};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Differentiable fluid and solid simulation on Burn.
#[derive(Debug, Parser)]
#[command(name = "diffsim", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scene and write HDF5 frames, vorticity pictures and a summary.
    Simulate(SimulateArgs),
    /// Generate reference data (`diffsim dataset wake-flow`): HDF5 files, one per simulation,
    /// and a dataset.toml with the normalisation statistics. Resumable.
    Dataset(DatasetArgs),
    /// Train a Solver-in-the-Loop corrector (`diffsim train wake-flow --unroll M`): NON (M = 1)
    /// or SOL-M through the differentiable solver; checkpoints, --resume, loss curve.
    Train(TrainArgs),
    /// Evaluate trained correctors (`diffsim eval wake-flow --model DIR`): rollouts of SRC and
    /// every model from the test frames, pooled velocity MAE per Reynolds number and per step,
    /// vorticity pictures side by side, GIFs, error curves.
    Eval(EvalArgs),
    /// Time the solver (`diffsim bench fluid`).
    Bench {
        /// What to time.
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Run a reproduced study (`wake-flow`, `burgers-control`, `shape-transition`, `indirect-control`, `smoke-target`, `spring-cage`, `bounce`,
    /// `softbody-material`, `cloth-throw`, `rigid-trajectory`, `sphere-pushing`, `billiards`, `box-toss`, `cartpole-swingup`, `ik-chain`, `pendulum-id`, `panda-reach`; `diffsim experiment list`) and write its pictures,
    /// settings and numbers.
    Experiment(ExperimentArgs),
    /// Check the gradients of every differentiable op and of 16-step unrolls against f64
    /// central finite differences; exits non-zero when any check fails.
    Gradcheck(GradcheckArgs),
    /// List the built-in scenes, or print one as TOML to start a scene file from.
    Scenes {
        /// A built-in scene to print as TOML.
        name: Option<String>,
    },
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Forward step of the `wake-phiflow` scene from the PhiFlow initial state shipped in data/phiflow; with
    /// `--grad`, one (loss, gradient) evaluation through a 16-step unroll.
    Fluid(BenchArgs),
    /// One (loss, gradient) evaluation of the Burgers DP-CFE chain (31 U-Net applications, 32
    /// solver steps, batch 100), the network's and the solver's shares, and a 32-step
    /// solver-only unroll; `--phiflow FILE` sets them beside PhiFlow 3.4 + JAX measured the same day.
    Burgers(bench_burgers::BurgersBenchArgs),
    /// This CPU's f32 FMA peak (one core, all cores) and copy bandwidth: the yardstick for
    /// the kernels' achieved rates.
    Machine(bench_machine::MachineBenchArgs),
    /// Solver-in-the-Loop training iterations per second (NON, SOL-4, SOL-8; small and
    /// mars-moon correctors), the network alone, and the convolution kernels' rates against
    /// the FMA peak; `--phiflow FILE` sets them beside PhiFlow 3.4 measured the same day.
    Train(bench_train::TrainBenchArgs),
    /// One forward + backward of the solids studies (cloth throw explicit and implicit at two
    /// sizes, soft-body material, spring cage); `--warp FILE` sets them beside Warp 1.9.1
    /// measured the same day.
    Solids(bench_solids::SolidsBenchArgs),
    /// One (loss, gradient) of the rigid-body studies through 100 and 1000 steps (Warp's
    /// semi-implicit step and backward Euler); `--warp FILE` sets them beside Warp 1.9.1
    /// measured the same day.
    Rigid(bench_rigid::RigidBenchArgs),
    /// Microseconds per call of RNEA, CRBA, ABA and their derivatives on URDF robots, and one
    /// (loss, gradient) through Warp's cartpole for 100 and 1000 steps; `--pinocchio FILE` and
    /// `--warp FILE` set them beside Pinocchio and Warp 1.9.1 measured the same day.
    Articulation(bench_articulation::ArticulationBenchArgs),
}

pub use crate::device::by_name as device;

/// Parses the arguments, runs, and turns errors into one line on stderr and exit code 1.
pub fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "internal error: {}{at} (please report this)",
            msg.unwrap_or_else(|| "panic".into())
                .lines()
                .next()
                .unwrap_or("")
        );
    }));
    let cli = Cli::parse();
    // The whole command runs on a worker of rayon's pool: the kernels' parallel loops then
    // split work with the other workers directly, instead of each handing its job over from
    // the main thread and sleeping until it is done (a futex round trip per loop: 10% of a
    // Burgers DP-CFE evaluation went to that alone, perf).
    match rayon::scope(|_| run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: {}",
                e.to_string().lines().collect::<Vec<_>>().join("; ")
            );
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` and a newline to stdout; a closed pipe (`diffsim ... | head`) ends the output
/// quietly instead of failing.
fn out(text: &str) -> Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(crate::error::DiffsimError::file("<stdout>", e))
        }
        _ => Ok(()),
    }
}

/// Writes `value` as pretty JSON to stdout.
fn json<T: serde::Serialize>(value: &T) -> Result<()> {
    out(&serde_json::to_string_pretty(value).expect("output serialises"))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Simulate(args) => {
            let summary = simulate(&args)?;
            if args.json {
                json(&summary)?
            } else {
                out(&summary.human())?
            }
        }
        Command::Bench {
            what: BenchWhat::Burgers(args),
        } => {
            let r = bench_burgers::bench_burgers(&args)?;
            if args.json {
                json(&r)?
            } else {
                out(&r.human())?
            }
        }
        Command::Bench {
            what: BenchWhat::Train(args),
        } => {
            let r = bench_train::bench_train(&args)?;
            if args.json {
                json(&r)?
            } else {
                out(&r.human())?
            }
        }
        Command::Bench {
            what: BenchWhat::Solids(args),
        } => {
            let r = bench_solids::bench_solids(&args)?;
            if args.json {
                json(&r)?
            } else {
                out(&r.human())?
            }
        }
        Command::Bench {
            what: BenchWhat::Articulation(args),
        } => {
            let r = bench_articulation::bench_articulation(&args)?;
            if args.json {
                json(&r)?
            } else {
                out(&r.human())?
            }
        }
        Command::Bench {
            what: BenchWhat::Rigid(args),
        } => {
            let r = bench_rigid::bench_rigid(&args)?;
            if args.json {
                json(&r)?
            } else {
                out(&r.human())?
            }
        }
        Command::Bench {
            what: BenchWhat::Machine(args),
        } => {
            let r = bench_machine::bench_machine(&args)?;
            if args.json {
                json(&r)?
            } else {
                out(&r.human())?
            }
        }
        Command::Bench {
            what: BenchWhat::Fluid(args),
        } if args.grad => {
            let results = bench_grad(&args)?;
            if args.json {
                json(&results)?;
            } else {
                for r in &results {
                    out(&r.human())?;
                }
            }
        }
        Command::Bench {
            what: BenchWhat::Fluid(args),
        } => {
            let results = bench_fluid(&args)?;
            if args.json {
                json(&results)?;
            } else {
                for r in &results {
                    out(&r.human())?;
                }
            }
        }
        Command::Dataset(args) => dataset(&args)?,
        Command::Train(args) => {
            let (r, dir) = train_cmd(&args)?;
            if args.json {
                json(&r)?
            } else {
                out(&format!(
                    "{}: {} iterations, loss {:.3e} -> {:.3e}, {:.2} it/s, solver {:.0}% of the forward, {:.1} s",
                    dir.display(),
                    r.iterations,
                    r.losses.first().copied().unwrap_or(f64::NAN),
                    r.losses.last().copied().unwrap_or(f64::NAN),
                    r.iterations_per_s,
                    100.0 * r.solver_share_forward,
                    r.wall_s
                ))?
            }
        }
        Command::Eval(args) => {
            let (r, dir) = eval_cmd(&args)?;
            if args.json {
                json(&r)?
            } else {
                out(&format!("{} ({} steps):\n{}", r.metric, r.steps, r.table()))?;
                for c in &r.acceptance {
                    out(&format!(
                        "{} {}",
                        if c.passed { "ok  " } else { "FAIL" },
                        c.what
                    ))?;
                }
                out(&format!("pictures and eval.json in {}", dir.display()))?;
            }
        }
        Command::Experiment(args) => experiment(&args)?,
        Command::Gradcheck(args) => {
            if args.list {
                return crate::gradcheck::CHECKS.iter().try_for_each(|c| out(c));
            }
            let reports = gradcheck(&args)?;
            if args.json {
                json(&reports)?;
            } else {
                for r in &reports {
                    out(&format!(
                        "{:24} max rel error {:9.2e}  {} probes, {} redrawn  {}",
                        r.name,
                        r.max_rel_error,
                        r.probes.len(),
                        r.redraws,
                        if r.passed { "ok" } else { "FAILED" }
                    ))?;
                }
            }
            let failed: Vec<&str> = reports
                .iter()
                .filter(|r| !r.passed)
                .map(|r| r.name.as_str())
                .collect();
            if !failed.is_empty() {
                return Err(crate::error::DiffsimError::config(format!(
                    "gradient check failed for {} (rtol {})",
                    failed.join(", "),
                    args.rtol
                )));
            }
        }
        Command::Scenes { name: Some(name) } => {
            out(SceneConfig::builtin(&name)?.to_toml().trim_end())?
        }
        Command::Scenes { name: None } => {
            for name in BUILTIN_SCENES {
                let s = SceneConfig::builtin(name)?;
                out(&format!(
                    "{name:14} {:>9}  {} steps, dt {}",
                    s.resolution.to_string(),
                    s.steps,
                    s.dt
                ))?;
            }
            out(
                "\n`diffsim scenes NAME` prints a scene as TOML; a TOML file with `base = \"NAME\"` overrides fields.",
            )?;
        }
    }
    Ok(())
}
