//! `diffsim bench fluid --grad`: the wall time of one (loss, gradient) evaluation through an
//! unrolled `wake-phiflow` from the shipped PhiFlow state, next to the forward-only time.

use super::bench::{BenchArgs, PHIFLOW_STORED, percentile, read_json_lines, resolutions};
use crate::error::{DiffsimError, Result};
use crate::fluid::{Checkpointing, Reads, SceneConfig, Simulation, unrolled_gradient};
use crate::gradcheck::kinetic_loss;
use serde::Serialize;
use std::time::Instant;

/// PhiFlow 3.4 + JAX jit: one 16-step (loss, gradient) evaluation of the same scene, state and
/// loss, in ms, after a 16–34 s jit, measured on 2026-11-24 on a 2-core x86 CPU machine
/// (`benches/phiflow/wake_grad.py`).
pub const PHIFLOW_GRAD_MS: [((usize, usize), f64); 2] = [((32, 64), 67.0), ((128, 256), 5500.0)];

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct GradBenchResult {
    /// Scene.
    pub scene: String,
    /// Resolution.
    pub resolution: String,
    /// Unrolled steps.
    pub unroll: usize,
    /// Timed evaluations.
    pub repeats: usize,
    /// Median wall time of the forward unroll alone, no autodiff (ms).
    pub forward_ms: f64,
    /// Median wall time of one (loss, gradient) evaluation: tracked forward + backward (ms).
    pub grad_ms: f64,
    /// The first (loss, gradient) evaluation after the scene was built (ms): no warm-up
    /// beyond the factorisation, which happens when the scene is built.
    pub first_grad_ms: f64,
    /// Median over the repeats of (loss, gradient) time / forward time, each pair measured
    /// back to back.
    pub grad_over_forward: f64,
    /// PhiFlow 3.4 + JAX (ms), where known.
    pub phiflow_ms: Option<f64>,
    /// Where `phiflow_ms` comes from: `measured` (`--phiflow`, the same day) or the stored figures' origin.
    pub phiflow_source: Option<&'static str>,
    /// `phiflow_ms / grad_ms`.
    pub speedup_vs_phiflow: Option<f64>,
    /// How the backward pass got its states: `tape`, `burn` or `segments K`.
    pub checkpointing: String,
    /// Whether the passive marker was advected too (`--with-marker`).
    pub with_marker: bool,
    /// Peak resident memory of this process (MB, `VmHWM`): run one configuration per process
    /// to compare them.
    pub peak_rss_mb: Option<f64>,
}

/// Peak resident set size of this process in MB (Linux `VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

impl GradBenchResult {
    /// One readable line.
    pub fn human(&self) -> String {
        let mut s = format!(
            "{} {} unroll {} ({}{}): (loss, gradient) {:.2} ms (first {:.2} ms), forward {:.2} ms, ratio {:.2}",
            self.scene,
            self.resolution,
            self.unroll,
            self.checkpointing,
            if self.with_marker {
                ", with marker"
            } else {
                ""
            },
            self.grad_ms,
            self.first_grad_ms,
            self.forward_ms,
            self.grad_over_forward
        );
        if let (Some(p), Some(x), Some(from)) = (
            self.phiflow_ms,
            self.speedup_vs_phiflow,
            self.phiflow_source,
        ) {
            s += &format!(", {x:.0}x faster than PhiFlow ({p:.0} ms, {from})");
        }
        if let Some(m) = self.peak_rss_mb {
            s += &format!(", peak RSS {m:.0} MB");
        }
        s
    }
}

/// One line of `benches/phiflow/wake_grad.py --json`.
#[derive(Debug, serde::Deserialize)]
struct PhiflowRun {
    resolution: String,
    steps: usize,
    grad_ms: f64,
}

/// Times one (loss, gradient) evaluation and the forward unroll per resolution.
pub fn bench_grad(args: &BenchArgs) -> Result<Vec<GradBenchResult>> {
    let unroll = args.steps.unwrap_or(16);
    if unroll == 0 || args.repeats == 0 {
        return Err(DiffsimError::config(
            "--steps and --repeats must be at least 1",
        ));
    }
    let measured = args
        .phiflow
        .as_deref()
        .map(|f| read_json_lines::<PhiflowRun>(f, "benches/phiflow/wake_grad.py"))
        .transpose()?;
    let device = super::device(&args.device)?;
    // Checked before any timing runs.
    let (ad_device, mode) = match args.checkpoint.as_str() {
        "tape" => (device.clone().autodiff(), Checkpointing::Tape),
        "burn" => (
            device.clone().autodiff().gradient_checkpointing(),
            Checkpointing::Tape,
        ),
        "segments" => (
            device.clone().autodiff(),
            args.segment
                .map_or(Checkpointing::sqrt(unroll), Checkpointing::Segments),
        ),
        other => {
            return Err(DiffsimError::config(format!(
                "unknown --checkpoint '{other}': use tape, burn or segments"
            )));
        }
    };
    let reads = if args.with_marker {
        Reads::All
    } else {
        Reads::Velocity
    };
    let mut out = Vec::new();
    for res in resolutions(args)? {
        let mut scene = SceneConfig::wake_phiflow();
        scene.resolution = res;
        // Forward only, on the plain device.
        let sim = Simulation::new(&scene, &device)?;
        let init = super::bench::initial_state(args, &sim.grid)?;
        let frame =
            |sim: &Simulation| sim.state_from_arrays(init.u.clone(), init.v.clone(), None, 1);
        let start = frame(&sim);
        let forward_run = || -> Result<f64> {
            let t = Instant::now();
            let mut s = start.clone();
            for _ in 0..unroll {
                s = sim.step_for(s, reads)?.0;
            }
            kinetic_loss(&s).into_scalar::<f64>();
            Ok(1e3 * t.elapsed().as_secs_f64())
        };
        // (loss, gradient) on the autodiff device.
        let ad_sim = Simulation::new(&scene, &ad_device)?;
        let ad_start = frame(&ad_sim);
        let grad_run = || -> Result<f64> {
            let t = Instant::now();
            let g = unrolled_gradient(&ad_sim, &ad_start, unroll, mode, reads, &kinetic_loss)?;
            let finite =
                g.loss.is_finite() && g.u.clone().abs().max().into_scalar::<f64>().is_finite();
            if !finite {
                return Err(DiffsimError::config("the benchmark gradient is not finite"));
            }
            Ok(1e3 * t.elapsed().as_secs_f64())
        };
        // The first gradient is reported on its own; the first forward run is a warm-up.
        let first_grad_ms = grad_run()?;
        forward_run()?;
        // Forward and gradient alternate, so slow drifts of the machine's speed reach both.
        let (mut forward, mut grad, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.repeats {
            let (f, g) = (forward_run()?, grad_run()?);
            forward.push(f);
            grad.push(g);
            ratio.push(g / f);
        }
        for times in [&mut forward, &mut grad, &mut ratio] {
            times.sort_by(f64::total_cmp);
        }
        let (forward_ms, grad_ms) = (percentile(&forward, 0.5), percentile(&grad, 0.5));
        let (phiflow, phiflow_source) = match &measured {
            Some(runs) => (
                runs.iter()
                    .find(|r| r.resolution == res.to_string() && r.steps == unroll)
                    .map(|r| r.grad_ms),
                "measured",
            ),
            None => (
                PHIFLOW_GRAD_MS
                    .iter()
                    .find(|(r, _)| *r == (res.nx, res.ny) && unroll == 16)
                    .map(|(_, ms)| *ms),
                PHIFLOW_STORED,
            ),
        };
        out.push(GradBenchResult {
            scene: scene.name.clone(),
            resolution: res.to_string(),
            unroll,
            repeats: args.repeats,
            forward_ms,
            grad_ms,
            first_grad_ms,
            grad_over_forward: percentile(&ratio, 0.5),
            phiflow_ms: phiflow,
            phiflow_source: phiflow.map(|_| phiflow_source),
            speedup_vs_phiflow: phiflow.map(|p| p / grad_ms),
            checkpointing: match (args.checkpoint.as_str(), mode) {
                (_, Checkpointing::Segments(k)) => format!("segments {k}"),
                (name, _) => name.to_string(),
            },
            with_marker: args.with_marker,
            peak_rss_mb: peak_rss_mb(),
        });
    }
    Ok(out)
}
