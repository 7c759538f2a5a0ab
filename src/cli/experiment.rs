//! `diffsim experiment NAME`: reproducible studies that write their pictures and numbers.

use super::{Progress, json, out};
use crate::error::{DiffsimError, Result};
use crate::optim::spring_cage::{self, SpringCageConfig};
use crate::solids::{Model, V3};
use crate::train::smoke_target::{self, SmokeTargetConfig, SmokeTargetResult};
use crate::viz::{FieldPicture, GifWriter, ScenePicture, line_plot};
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `diffsim experiment`.
#[derive(Debug, Clone, Args)]
pub struct ExperimentArgs {
    /// The experiment: `smoke-target` (optimise an initial velocity so that a smoke blob
    /// reaches a target shape, Adam through the unrolled solver), `spring-cage` (B1: rest
    /// lengths of a spring cage, Warp step + gradient descent, implicit Euler + L-BFGS /
    /// Gauss-Newton / sparse Gauss-Newton) or `bounce` (B2: initial velocity of a particle
    /// bouncing off a wall and the ground, through smooth contact), `softbody-material` (B4:
    /// per-tetrahedron Lamé parameters of a bouncing soft cube, Warp's SGD and bounded
    /// L-BFGS) or `cloth-throw` (B3: every particle's initial velocity of a thrown cloth with
    /// lift and drag, Warp's explicit recipe and implicit Euler with 16× fewer steps) or
    /// `wake-flow` (Solver-in-the-Loop, §C.1: reference data, NON / SOL-4 / SOL-8 correctors,
    /// test rollouts against the source solver, acceptance criteria; resumable).
    pub name: String,
    /// The toy-size version of smoke-target, cloth-throw and wake-flow (the test suite runs
    /// them); the other solids experiments run at full size in seconds and ignore it.
    #[arg(long)]
    pub quick: bool,
    /// A TOML file of settings laid over the defaults (or over --quick's): it names only what it
    /// changes, tables merged key by key (see experiments/NAME/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output folder (default out/NAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// An experiment's settings: `full()`, or `quick()` with --quick, with --config laid over.
pub(super) fn settings<T>(
    args: &ExperimentArgs,
    quick: impl FnOnce() -> T,
    full: impl FnOnce() -> T,
) -> Result<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let base = if args.quick { quick() } else { full() };
    match &args.config {
        Some(p) => read_config_over(p, &base),
        None => Ok(base),
    }
}

/// Reads a TOML settings file laid over `base` (the file names only what it changes).
pub(super) fn read_config_over<T>(path: &Path, base: &T) -> Result<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let text = std::fs::read_to_string(path).map_err(|e| DiffsimError::file(path, e))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| DiffsimError::file(path, e.message()))?;
    crate::config::overlay(base, table, crate::config::Merge::Deep)
        .map_err(|e| DiffsimError::file(path, e.message()))
}

/// Runs the named experiment and writes its outputs.
pub fn experiment(args: &ExperimentArgs) -> Result<()> {
    match args.name.as_str() {
        "smoke-target" => smoke(args),
        "spring-cage" => cage(args),
        "bounce" => bounce(args),
        "softbody-material" => softbody(args),
        "cloth-throw" => cloth_throw(args),
        "wake-flow" => super::wake_flow::experiment(args),
        other => Err(DiffsimError::config(format!(
            "unknown experiment '{other}'; available: smoke-target, spring-cage, bounce, softbody-material, cloth-throw, wake-flow"
        ))),
    }
}

pub(super) fn out_dir(args: &ExperimentArgs) -> Result<PathBuf> {
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&args.name));
    std::fs::create_dir_all(&dir).map_err(|e| DiffsimError::file(&dir, e))?;
    Ok(dir)
}

/// The output folder of an experiment whose settings are a benchmark's (no --config).
fn benchmark_out_dir(args: &ExperimentArgs) -> Result<PathBuf> {
    if args.config.is_some() {
        return Err(DiffsimError::config(format!(
            "{} takes no --config (its settings are the benchmark's)",
            args.name
        )));
    }
    out_dir(args)
}

/// `(iteration, log10 loss)` of losses whose first entry is iteration `first` (0: the
/// starting point of an optimisation; 1: the first training step), floored at 1e-30.
pub(super) fn log_loss_curve(losses: &[f64], first: usize) -> Vec<(f64, f64)> {
    losses
        .iter()
        .enumerate()
        .map(|(k, l)| ((k + first) as f64, l.max(1e-30).log10()))
        .collect()
}

fn cage(args: &ExperimentArgs) -> Result<()> {
    let dir = benchmark_out_dir(args)?;
    let cfg = SpringCageConfig::default();
    let r = spring_cage::run(&cfg)?;
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
    let (m, run, target) = spring_cage::trajectory(&cfg, &r.explicit.trace.params);
    trajectory_gif(
        &dir.join("trajectory.gif"),
        &m,
        &every(&run.states, 1),
        Some(target),
        "spring-cage, optimised rest lengths",
    )?;
    write_json(&r, &dir.join("result.json"))?;
    if args.json {
        return json(&r);
    }
    let last = |t: &crate::optim::Trace| *t.losses.last().expect("a loss");
    out(&format!(
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
    ))?;
    out(&format!(
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
    ))?;
    let gn = |t: &crate::optim::Trace| {
        format!(
            "{:.3e} -> {:.3e} in {} iterations",
            t.losses[0],
            last(t),
            t.iterations
        )
    };
    out(&format!(
        "spring-cage Gauss-Newton (implicit): dense {}; sparse {}; sparse within ±{:.0}% of the rest lengths {} ({} on a bound)",
        gn(&r.gauss_newton.trace),
        gn(&r.sparse_gauss_newton.trace),
        100.0 * cfg.bound,
        gn(&r.bounded_gauss_newton.trace),
        r.bounded_gn_at_bounds
    ))?;
    let timings: Vec<String> = r
        .control_gn_step_ms_vs_horizon
        .iter()
        .map(|(n, dense, sparse)| {
            let dense = dense.map_or("not run".into(), |d| format!("{d:.1} ms"));
            format!("N={n}: dense {dense}, sparse {sparse:.1} ms")
        })
        .collect();
    out(&format!(
        "spring-cage per-step controls: sparse GN loss {:.3e} -> {:.3e} in {} iterations; one GN step {}",
        r.control_sgn_losses[0],
        r.control_sgn_losses.last().expect("a loss"),
        r.control_sgn_losses.len() - 1,
        timings.join("; ")
    ))
}

fn bounce(args: &ExperimentArgs) -> Result<()> {
    let dir = benchmark_out_dir(args)?;
    let cfg = crate::optim::bounce::BounceConfig::default();
    let r = crate::optim::bounce::run(&cfg)?;
    let p = &r.trace.params;
    let (m, run, target) = crate::optim::bounce::trajectory(&cfg, [p[0], p[1], p[2]]);
    trajectory_gif(
        &dir.join("trajectory.gif"),
        &m,
        &every(&run.states, 8),
        Some(target),
        "bounce, optimised v0",
    )?;
    line_plot(
        &dir.join("loss.png"),
        "bounce: loss (log10) per iteration",
        "iteration",
        "log10 loss",
        &[
            (
                format!("gradient descent, lr {}", cfg.learning_rate),
                log_loss_curve(&r.trace.losses, 0),
            ),
            (
                format!("Adam, lr {}", cfg.adam_learning_rate),
                log_loss_curve(&r.adam_trace.losses, 0),
            ),
        ],
    )?;
    let sweep = |pts: &[(f64, f64, f64)], pick: fn(&(f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        pts.iter().map(|s| (s.0.log10(), pick(s))).collect()
    };
    let (ex, im) = (&r.gradient_vs_stiffness, &r.implicit_gradient_vs_stiffness);
    line_plot(
        &dir.join("stiffness.png"),
        "bounce: dL/dv0 at the initial v0 against the contact stiffness",
        "log10 ke (N/m)",
        "dL/dv0",
        &[
            ("dL/dv0x, explicit".into(), sweep(ex, |s| s.1)),
            ("dL/dv0y, explicit".into(), sweep(ex, |s| s.2)),
            ("dL/dv0x, implicit".into(), sweep(im, |s| s.1)),
            ("dL/dv0y, implicit".into(), sweep(im, |s| s.2)),
        ],
    )?;
    write_json(&r, &dir.join("result.json"))?;
    if args.json {
        return json(&r);
    }
    out(&format!(
        "bounce: loss {:.3e} -> {:.3e} in {} GD iterations ({} lowered it by > 1e-3), adjoint vs FD {:.1e}, {:.2} ms per evaluation; pictures in {}",
        r.trace.losses[0],
        r.trace.losses.last().expect("a loss"),
        r.trace.iterations,
        r.decreasing_by_1e3,
        r.gradient_fd_error,
        r.ms_per_evaluation,
        dir.display()
    ))?;
    out(&format!(
        "bounce: Adam (lr {}) {:.3e} -> {:.3e} in {} iterations",
        cfg.adam_learning_rate,
        r.adam_trace.losses[0],
        r.adam_trace.losses.last().expect("a loss"),
        r.adam_trace.iterations
    ))
}

fn softbody(args: &ExperimentArgs) -> Result<()> {
    use crate::optim::softbody::{SoftbodyConfig, run, trajectory};
    let dir = benchmark_out_dir(args)?;
    let cfg = SoftbodyConfig::default();
    let r = run(&cfg)?;
    let (m, traj, target) = trajectory(&cfg, &r.lbfgs.trace.params)?;
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
    write_json(&r, &dir.join("result.json"))?;
    if args.json {
        return json(&r);
    }
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
        out(&format!(
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
        ))?;
    }
    out(&format!(
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
    ))
}

fn cloth_throw(args: &ExperimentArgs) -> Result<()> {
    use crate::optim::cloth_throw::{ClothThrowConfig, run, trajectory};
    let dir = benchmark_out_dir(args)?;
    let cfg = if args.quick {
        ClothThrowConfig::quick()
    } else {
        ClothThrowConfig::default()
    };
    let r = run(&cfg)?;
    let (m, traj, target) = trajectory(&cfg, &r.explicit.trace.params)?;
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
                log_loss_curve(&r.implicit.trace.losses, 0),
            ),
            (
                "implicit Euler, continued".into(),
                log_loss_curve(&r.implicit_continued_losses, cfg.iterations),
            ),
        ],
    )?;
    write_json(&r, &dir.join("result.json"))?;
    if args.json {
        return json(&r);
    }
    for (name, run) in [
        (format!("explicit, {} steps", cfg.steps), &r.explicit),
        (
            format!("implicit, {} steps", cfg.implicit_steps),
            &r.implicit,
        ),
    ] {
        out(&format!(
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
        ))?;
    }
    for (name, c) in ["explicit", "implicit"].iter().zip(&r.checkpointing) {
        out(&format!(
            "cloth-throw {name}, segment checkpointing ({} steps, segments of {}): the adjoint holds {:.2} MB instead of {:.2} MB, {:.0} ms instead of {:.0} ms, gradient difference {:.1e}",
            c.steps,
            c.segment_steps,
            c.segment_bytes as f64 / 1e6,
            c.tape_bytes as f64 / 1e6,
            c.segment_ms,
            c.tape_ms,
            c.gradient_difference
        ))?;
    }
    out(&format!(
        "cloth-throw: the implicit descent's velocities give {:.3} in the explicit simulation; its own loss reaches the explicit final loss {}; pictures in {}",
        r.implicit_velocities_explicit_loss,
        r.implicit_iterations_to_explicit_loss.map_or(
            format!(
                "not within {} more iterations",
                cfg.extra_implicit_iterations
            ),
            |k| format!("after {k} iterations")
        ),
        dir.display()
    ))
}

/// A GIF of positions `frames` of `model` seen from the side (x right, y up): springs and
/// element edges, obstacles, the centre of mass's path and `target`.
fn trajectory_gif(
    path: &Path,
    model: &Model,
    frames: &[&[V3]],
    target: Option<V3>,
    title: &str,
) -> Result<()> {
    use crate::solids::contact::Shape;
    let flat = |p: &V3| [p[0], p[1]];
    let com = |x: &[V3]| -> [f64; 2] {
        let n = x.len().max(1) as f64;
        [0, 1].map(|a| x.iter().map(|p| p[a]).sum::<f64>() / n)
    };
    let mut view = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    let mut grow = |p: [f64; 2]| {
        view = [
            view[0].min(p[0]),
            view[1].min(p[1]),
            view[2].max(p[0]),
            view[3].max(p[1]),
        ]
    };
    frames
        .iter()
        .flat_map(|x| x.iter())
        .for_each(|p| grow(flat(p)));
    target.iter().for_each(|t| grow(flat(t)));
    let pad = 0.08 * (view[2] - view[0]).max(view[3] - view[1]).max(1e-3);
    let view = [view[0] - pad, view[1] - pad, view[2] + pad, view[3] + pad];
    let boxes: Vec<[f64; 4]> = model
        .shapes
        .iter()
        .filter_map(|s| match *s {
            Shape::Box { center, half } => Some([
                center[0] - half[0],
                center[1] - half[1],
                center[0] + half[0],
                center[1] + half[1],
            ]),
            // The ground (a plane facing +y), drawn to the bottom of the window.
            Shape::Plane { normal, offset } if normal[1] > 0.99 => {
                Some([view[0], view[1].min(offset) - pad, view[2], offset])
            }
            Shape::Plane { .. } => None,
        })
        .collect();
    let mut edges: Vec<(usize, usize)> = model.springs.iter().map(|s| (s.i, s.j)).collect();
    let elements = model.tets.iter().map(|t| &t.nodes[..]);
    for nodes in elements.chain(model.tris.iter().map(|t| &t.nodes[..])) {
        for (a, &i) in nodes.iter().enumerate() {
            for &j in &nodes[a + 1..] {
                edges.push((i.min(j), i.max(j)));
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    let marks: Vec<[f64; 2]> = target.iter().map(flat).collect();
    let mut trail = Vec::new();
    let mut gif = GifWriter::create(path, ScenePicture::size(view), 50)?;
    for (k, x) in frames.iter().enumerate() {
        trail.push(com(x));
        let points: Vec<[f64; 2]> = x.iter().map(flat).collect();
        gif.add(&ScenePicture {
            points: &points,
            edges: &edges,
            boxes: &boxes,
            marks: &marks,
            trail: &trail,
            view,
            title: format!("{title} (frame {}/{})", k + 1, frames.len()),
        })?;
    }
    gif.finish().map(|_| ())
}

/// Every `stride`-th state's positions of a trajectory, and the last.
fn every(states: &[(Vec<V3>, Vec<V3>)], stride: usize) -> Vec<&[V3]> {
    let mut f: Vec<&[V3]> = states
        .iter()
        .step_by(stride.max(1))
        .map(|s| &s.0[..])
        .collect();
    if !(states.len() - 1).is_multiple_of(stride.max(1)) {
        f.push(&states.last().expect("a state").0);
    }
    f
}

fn smoke(args: &ExperimentArgs) -> Result<()> {
    let cfg = settings(args, SmokeTargetConfig::quick, SmokeTargetConfig::default)?;
    cfg.validate()?;
    let dir = out_dir(args)?;
    let bar = Progress::new("smoke-target", cfg.iterations as u64, args.json);
    let result = smoke_target::run(&cfg, |k, _| bar.set(k as u64))?;
    bar.finish();
    write_outputs(&result, &dir)?;
    if args.json {
        json(&result)
    } else {
        out(&format!(
            "smoke-target {}: loss {:.3e} -> {:.3e} ({:.0}x lower) in {} Adam iterations, {:.1} s ({:.1} ms per iteration); pictures in {}",
            cfg.resolution,
            result.initial_loss,
            result.final_loss,
            result.reduction,
            result.iterations,
            result.wall_s,
            result.ms_per_iteration,
            dir.display()
        ))
    }
}

fn write_outputs(r: &SmokeTargetResult, dir: &Path) -> Result<()> {
    line_plot(
        &dir.join("loss.png"),
        "smoke-target: loss (log10) per Adam iteration",
        "iteration",
        "log10 loss",
        &[("loss".into(), log_loss_curve(&r.losses, 0))],
    )?;
    let res = r.config.resolution;
    let titles = [
        "marker, zero control",
        "marker, optimised control",
        "target",
    ];
    for (name, (values, title)) in ["before", "after", "target"]
        .iter()
        .zip(r.pictures.iter().zip(titles))
    {
        FieldPicture {
            values,
            nx: res.nx,
            ny: res.ny,
            solid: &[],
            range: 1.0,
            title: format!("{title} after {} steps", r.config.steps),
        }
        .save_png(&dir.join(format!("{name}.png")))?;
    }
    write_json(r, &dir.join("result.json"))
}

/// Writes `value` as JSON under a temporary name, renamed when complete.
pub(super) fn write_json<T: serde::Serialize>(value: &T, path: &Path) -> Result<()> {
    write_text(
        path,
        &serde_json::to_string_pretty(value).expect("result serialises"),
    )
}

/// Writes `text` to `path` through a temporary name, renamed when complete.
pub(super) fn write_text(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| DiffsimError::file(path, e))
}
