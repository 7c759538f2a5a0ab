//! `diffsim bench fluid`: forward-step timings of `wake-phiflow` from the PhiFlow state that ships in data/phiflow.

use crate::error::{DiffsimError, Result};
use crate::fluid::traffic::step_bytes;
use crate::fluid::{SceneConfig, Simulation};
use crate::grid::{Grid, Resolution};
use crate::io::{Frame, phiflow_state, read_frame};
use burn::tensor::{Device, Tensor, TensorData};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// PhiFlow 3.4 + JAX jit, ms per step of the same scene from the same initial state, measured
/// on 2026-11-24 on a 2-core x86 CPU machine (`benches/phiflow/`): (resolution, ms). The
/// host's speed drifts between days: `--phiflow FILE` takes timings measured the same day.
pub const PHIFLOW_STORED: &str = "stored: PhiFlow 3.4 + JAX, 2-core CPU, 2026-11-24";

/// The stored PhiFlow forward timings (see [`PHIFLOW_STORED`]).
pub const PHIFLOW_MS_PER_STEP: [((usize, usize), f64); 2] = [((32, 64), 1.7), ((128, 256), 150.0)];

/// Arguments of `diffsim bench fluid`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Resolutions NXxNY to time (repeatable). Default: 32x64 and 128x256.
    #[arg(long)]
    pub res: Vec<String>,
    /// Timed steps per measurement (forward); with `--grad`, the unroll length (default 16).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Time one (loss, gradient) evaluation through an unroll instead of single steps.
    #[arg(long)]
    pub grad: bool,
    /// With `--grad`: evaluations per measurement.
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
    /// With `--grad`: `tape` (record every step), `burn` (tape on a device with Burn's
    /// gradient checkpointing) or `segments` (keep every K-th state, recompute segments).
    #[arg(long, default_value = "tape")]
    pub checkpoint: String,
    /// With `--checkpoint segments`: steps per segment (default ⌈√N⌉).
    #[arg(long)]
    pub segment: Option<usize>,
    /// With `--grad`: also advect the passive marker, which the loss never reads (by default
    /// it is skipped in both the forward and the (loss, gradient) timing, as JAX's jit drops
    /// it from PhiFlow's).
    #[arg(long)]
    pub with_marker: bool,
    /// Untimed steps first.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Also time this many flows stepped together (0: skip).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Folder with wake_phiflow_NXxNY.h5. Default: $DIFFSIM_DATA, else data/phiflow (shipped with diffsim).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Start every resolution from the PhiFlow state of this one (NXxNY), resampled
    /// bilinearly: for resolutions no state ships for (e.g. --res 1024x2048 --state-from
    /// 128x256).
    #[arg(long, value_name = "NXxNY")]
    pub state_from: Option<String>,
    /// With `--grad`: PhiFlow timings measured on this machine, the JSON lines of
    /// `benches/phiflow/wake_grad.py --json` (one per resolution); the speed-up is taken
    /// against them instead of the figures from another day's host.
    #[arg(long, value_name = "FILE")]
    pub phiflow: Option<PathBuf>,
    /// Compute device: flex (CPU), wgpu or cuda (GPU builds).
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Scene.
    pub scene: String,
    /// Resolution.
    pub resolution: String,
    /// Flows stepped together.
    pub batch: usize,
    /// Timed steps.
    pub steps: usize,
    /// Median wall time of one step of the whole batch (ms).
    pub median_ms_per_step: f64,
    /// 10th / 90th percentiles (ms).
    pub p10_ms: f64,
    /// See `p10_ms`.
    pub p90_ms: f64,
    /// Median per flow: `median_ms_per_step / batch` (ms).
    pub ms_per_flow_step: f64,
    /// Share of the step spent in the pressure projection (median over steps); `None` on a
    /// GPU, where the host's clock around one op measures its launch, not its run.
    pub projection_share: Option<f64>,
    /// PhiFlow 3.4 + JAX on this machine kind (ms per step), where known.
    pub phiflow_ms: Option<f64>,
    /// `phiflow_ms / ms_per_flow_step`.
    pub speedup_vs_phiflow: Option<f64>,
    /// GPU: bytes one step of the batch must read and write, every pass touching its arrays
    /// once, solver iterations included (see `fluid::traffic`).
    pub bytes_per_step: Option<f64>,
    /// GPU: the device's copy bandwidth measured in the same run (GB/s, read + write).
    pub copy_gbps: Option<f64>,
    /// GPU: `bytes_per_step / copy_gbps` (ms): the step's time if it ran at copy speed.
    pub bound_ms: Option<f64>,
    /// GPU: `median_ms_per_step / bound_ms`.
    pub over_bound: Option<f64>,
}

impl BenchResult {
    /// One readable line.
    pub fn human(&self) -> String {
        let mut s = format!(
            "{} {} batch {:>2}: median {:.4} ms/step (p10 {:.4}, p90 {:.4}), {:.4} ms per flow-step",
            self.scene,
            self.resolution,
            self.batch,
            self.median_ms_per_step,
            self.p10_ms,
            self.p90_ms,
            self.ms_per_flow_step,
        );
        if let Some(share) = self.projection_share {
            s += &format!(", projection {:.0}%", 100.0 * share);
        }
        if let (Some(p), Some(x)) = (self.phiflow_ms, self.speedup_vs_phiflow) {
            s += &format!(", {x:.0}x faster than PhiFlow ({p} ms, {PHIFLOW_STORED})");
        }
        if let (Some(b), Some(g), Some(x)) = (self.bytes_per_step, self.copy_gbps, self.over_bound)
        {
            s += &format!(
                ", {:.3} GB per step at {g:.0} GB/s copy: {x:.1}x the bandwidth bound",
                b / 1e9
            );
        }
        s
    }
}

/// The resolutions of `--res`, or 32x64 and 128x256.
pub(super) fn resolutions(args: &BenchArgs) -> Result<Vec<Resolution>> {
    if args.res.is_empty() {
        return Ok(vec![Resolution::new(32, 64), Resolution::new(128, 256)]);
    }
    args.res.iter().map(|r| Ok(r.parse()?)).collect()
}

/// The PhiFlow initial state of `grid`'s resolution, or the one of `--state-from` resampled
/// onto `grid`.
pub(super) fn initial_state(args: &BenchArgs, grid: &Grid) -> Result<Frame> {
    let Some(from) = &args.state_from else {
        let res = Resolution::new(grid.nx, grid.ny);
        return read_frame(&phiflow_state(args.data.as_deref(), res)?, grid);
    };
    let res: Resolution = from.parse()?;
    let source = Grid::new(res, SceneConfig::wake_phiflow().domain)?;
    let frame = read_frame(&phiflow_state(args.data.as_deref(), res)?, &source)?;
    Ok(frame.resampled(&source, grid))
}

/// The device's copy bandwidth (GB/s, bytes read plus written): passes `x ← 1.0001·x` over
/// 16 Mi f32 values (64 MiB, within every backend's largest buffer binding), each ended by a
/// device barrier (consecutive elementwise passes would otherwise fuse into one), timed best
/// of 10 less the best time of the same barrier after a one-value pass; the last value is read
/// back, so no pass can be skipped.
fn copy_gbps(device: &Device) -> Result<f64> {
    let (n, rounds) = (1usize << 24, 10);
    let mut x = Tensor::<1>::from_data(TensorData::new(vec![1.0f32; n], [n]), device);
    let mut tiny = Tensor::<1>::from_data(TensorData::new(vec![1.0f32], [1]), device);
    let failed = |e| DiffsimError::config(format!("the device failed: {e:?}"));
    device.sync().map_err(failed)?;
    let (mut pass, mut barrier) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        let t = Instant::now();
        x = x * 1.0001;
        device.sync().map_err(failed)?;
        pass = pass.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        tiny = tiny * 1.0001;
        device.sync().map_err(failed)?;
        barrier = barrier.min(t.elapsed().as_secs_f64());
    }
    let last = x.slice(n - 1..n).into_scalar::<f64>() + 0.0 * tiny.into_scalar::<f64>();
    if (last - 1.0001f64.powi(rounds)).abs() > 1e-4 {
        return Err(DiffsimError::config(format!(
            "the bandwidth measurement computed {last}, not 1.0001^{rounds}"
        )));
    }
    Ok(8.0 * n as f64 / (pass - barrier).max(1e-9) / 1e9)
}

/// The `q`-quantile of sorted values.
/// The JSON lines of `file` (blank lines skipped), each a `T`; a line of another shape is an
/// error naming `script`, the bench script that writes such lines.
pub(super) fn read_json_lines<T: serde::de::DeserializeOwned>(
    file: &std::path::Path,
    script: &str,
) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(file).map_err(|e| DiffsimError::file(file, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| {
                DiffsimError::file(
                    file,
                    format!("is not the JSON lines of {script} --json ({e})"),
                )
            })
        })
        .collect()
}

pub(super) fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Times the forward step; one result per resolution and batch size.
pub fn bench_fluid(args: &BenchArgs) -> Result<Vec<BenchResult>> {
    let steps = args.steps.unwrap_or(100);
    if steps == 0 {
        return Err(DiffsimError::config("--steps must be at least 1"));
    }
    let resolutions = resolutions(args)?;
    let device = super::device(&args.device)?;
    let on_gpu = !matches!(args.device.as_str(), "flex" | "cpu");
    let copy_gbps = on_gpu.then(|| copy_gbps(&device)).transpose()?;
    let mut out = Vec::new();
    for res in resolutions {
        let mut scene = SceneConfig::wake_phiflow();
        scene.resolution = res;
        let sim = Simulation::new(&scene, &device)?;
        let init = initial_state(args, &sim.grid)?;
        let batches: Vec<usize> = std::iter::once(1)
            .chain((args.batch > 1).then_some(args.batch))
            .collect();
        for batch in batches {
            let mut state = sim.state_from_arrays(init.u.clone(), init.v.clone(), None, batch);
            for _ in 0..args.warmup {
                state = sim.step(state)?.0;
            }
            if on_gpu {
                let _ = device.sync();
            }
            let mut times = Vec::with_capacity(steps);
            let mut shares = Vec::with_capacity(steps);
            let mut solve = None;
            // On a GPU the ops only queue work: every step ends with a device barrier and is
            // timed around it.
            for _ in 0..steps {
                let t = Instant::now();
                let (next, info) = sim.step(state)?;
                state = next;
                solve = Some(info.solve);
                if on_gpu {
                    device.sync().map_err(|e| {
                        DiffsimError::config(format!("the {} device failed: {e:?}", args.device))
                    })?;
                    times.push(1e3 * t.elapsed().as_secs_f64());
                } else {
                    times.push(1e3 * info.step_secs);
                    shares.push(info.projection_secs / info.step_secs);
                }
            }
            sim.check_finite(&state)?;
            times.sort_by(f64::total_cmp);
            shares.sort_by(f64::total_cmp);
            let median = percentile(&times, 0.5);
            let per_flow = median / batch as f64;
            let bytes = solve
                .and_then(|s| step_bytes(&sim, batch, true, &s))
                .filter(|_| on_gpu);
            let bound_ms = bytes.zip(copy_gbps).map(|(b, g)| b / g / 1e6);
            // The stored anchor is PhiFlow on this CPU: no comparison for a GPU.
            let phiflow = PHIFLOW_MS_PER_STEP
                .iter()
                .find(|(r, _)| *r == (res.nx, res.ny) && !on_gpu)
                .map(|(_, ms)| *ms);
            out.push(BenchResult {
                scene: scene.name.clone(),
                resolution: res.to_string(),
                batch,
                steps,
                median_ms_per_step: median,
                p10_ms: percentile(&times, 0.1),
                p90_ms: percentile(&times, 0.9),
                ms_per_flow_step: per_flow,
                projection_share: (!on_gpu).then(|| percentile(&shares, 0.5)),
                phiflow_ms: phiflow,
                speedup_vs_phiflow: phiflow.map(|p| p / per_flow),
                bytes_per_step: bytes,
                copy_gbps,
                bound_ms,
                over_bound: bound_ms.map(|b| median / b),
            });
        }
    }
    Ok(out)
}
