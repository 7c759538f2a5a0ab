//! Evaluation of the indirect-control study: after each training stage, the CFE chain over the
//! full sequences of the test and validation sets (the final blurred density error, its ratio
//! to the start's, the relative final-density MAE and the share of the marker's mass inside
//! the target bucket, per bucket too), the inference and training split between network and
//! physics, GIFs of test sequences, the loss curves, a picture of the layout, the acceptance
//! checks and the results page.

use super::baseline::optimise;
use super::data::{Motion, frames, rising};
use super::{IndirectControlConfig, Trained};
use crate::control::indirect::{Chain, execute_chain, raw_control};
use crate::error::Result;
use crate::experiments::control_baseline::BaselineResult;
use crate::experiments::stage::{StageRow, load, stages_table};
use crate::experiments::study::{Check, Progress, checks_list, log_loss_curve, mean_std};
use crate::fluid::{IndirectFlow, centre_speed, host_item, relative_mae};
use crate::io::{Plans, read_plans};
use crate::nn::UNet2d;
use crate::viz::{FieldPicture, GifWriter, Panels, line_plot};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// The required mean share of the marker's mass inside the target bucket.
pub const REQUIRED_SHARE: f64 = 0.7;

/// One trained CFE on one split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodResult {
    /// Stage name.
    pub name: String,
    /// Mean over the sequences of the final blurred error `½Σ(K∗(ρ_n − ρ*))²`.
    pub blurred: f64,
    /// Its standard deviation.
    pub blurred_std: f64,
    /// Mean of the final blurred error over the start's, `e(ρ_n)/e(ρ_0)`.
    pub relative_blurred: f64,
    /// Mean of `Σ|ρ_n − ρ*| / Σ|ρ_0 − ρ*|`.
    pub relative_mae: f64,
    /// Mean share of the start's mass inside the target bucket at the end.
    pub share: f64,
    /// The lowest share of any sequence.
    pub share_min: f64,
    /// Mean share per target bucket.
    pub share_by_bucket: Vec<f64>,
    /// Sequences evaluated.
    pub examples: usize,
    /// Wall time (s; networks and physics, batches of 25).
    pub wall_s: f64,
}

/// Where the time goes (s, one batch of 25 test sequences, all steps).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Speed {
    /// Inference: the networks alone.
    pub network_s: f64,
    /// Inference: the physics alone (restriction, projection, advection).
    pub physics_s: f64,
    /// Training: forward and backward of the physics of one last-window iteration (its raw
    /// controls fixed), against the measured time of such an iteration.
    pub physics_train_s: f64,
    /// Training: one iteration of the last window (stage wall time over iterations).
    pub iteration_s: f64,
}

/// The study's result (`results.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndirectControlResult {
    /// The settings.
    pub config: IndirectControlConfig,
    /// Each stage's CFE on the test set.
    pub methods: Vec<MethodResult>,
    /// The same on the validation set (nothing is selected on it).
    pub validation: Vec<MethodResult>,
    /// The final CFE on the sequences of `plan_file`, when given.
    pub plan_file: Option<MethodResult>,
    /// The CFE's parameter count.
    pub parameters: usize,
    /// Training stages: `(name, iterations, final loss, iterations/s, wall s)`.
    pub stages: Vec<StageRow>,
    /// Network vs physics time.
    pub speed: Speed,
    /// The classical baseline on the first test sequences.
    pub baseline: BaselineResult,
    /// Acceptance checks.
    pub checks: Vec<Check>,
    /// Wall time of the whole study (s).
    pub wall_s: f64,
}

fn host_vec(t: Tensor<1>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("f64")
}

/// Planned sequences to evaluate: the keyframes `ρ_0 … ρ_n` (`[B, n, n]` each) and each
/// sequence's target bucket.
struct Batch {
    /// Keyframes, `steps + 1` of them.
    keys: Vec<Tensor<3>>,
    /// Target bucket per sequence.
    targets: Vec<usize>,
}

/// The rising squares `ids` on `dev`.
fn rising_batch(
    cfg: &IndirectControlConfig,
    flow: &IndirectFlow,
    ids: &[usize],
    dev: &Device,
) -> Batch {
    let steps = cfg.data.steps;
    let motions: Vec<Motion> = ids
        .iter()
        .map(|&i| rising(&cfg.data, &cfg.layout, i))
        .collect();
    Batch {
        keys: (0..=steps)
            .map(|f| frames(flow, &motions, f, steps, dev))
            .collect(),
        targets: motions
            .iter()
            .map(|m| m.target.expect("rising squares have a target"))
            .collect(),
    }
}

/// Sequences `first..first + count` of `plans` on `dev`.
fn plan_batch(plans: &Plans, first: usize, count: usize, n: usize, dev: &Device) -> Batch {
    let frames = plans.density.len() / (plans.sequences * n * n);
    let keys = (0..frames)
        .map(|f| {
            let values: Vec<f32> = (first..first + count)
                .flat_map(|s| {
                    let at = (s * frames + f) * n * n;
                    plans.density[at..at + n * n].iter().copied()
                })
                .collect();
            Tensor::from_data(TensorData::new(values, [count, n, n]), dev)
        })
        .collect();
    Batch {
        keys,
        targets: plans.target[first..first + count].to_vec(),
    }
}

/// The chain of `net` over every batch; `on_first` sees the first batch and its chain.
fn split_result(
    cfg: &IndirectControlConfig,
    flow: &IndirectFlow,
    name: &str,
    net: &UNet2d,
    batches: impl Iterator<Item = Batch>,
    on_first: &mut dyn FnMut(&[Tensor<3>], &Chain) -> Result<()>,
) -> Result<MethodResult> {
    let t0 = Instant::now();
    let (mut blurred, mut relative, mut mae, mut share) = (vec![], vec![], vec![], vec![]);
    let mut by_bucket = vec![Vec::new(); flow.targets.len()];
    for (c, batch) in batches.enumerate() {
        let keys = &batch.keys;
        let chain = execute_chain(flow, net, keys[0].clone(), &keys[1..]);
        let (start, goal) = (keys[0].clone(), keys[keys.len() - 1].clone());
        let last = chain.densities.last().expect("frames").clone();
        let e = host_vec(cfg.blurred_error(last.clone(), goal.clone()));
        let e0 = host_vec(cfg.blurred_error(start.clone(), goal.clone()));
        mae.extend(relative_mae(last.clone(), goal, start.clone()));
        for (b, &target) in batch.targets.iter().enumerate() {
            let rho = host_item(&last, b);
            let mass: f64 = host_item(&start, b).iter().map(|&x| x as f64).sum();
            let s = flow.share_in(&rho, &flow.buckets[target], mass);
            share.push(s);
            by_bucket[target].push(s);
            blurred.push(e[b]);
            relative.push(e[b] / e0[b].max(1e-30));
        }
        if c == 0 {
            on_first(keys, &chain)?;
        }
    }
    let (b_mean, b_std) = mean_std(&blurred);
    Ok(MethodResult {
        name: name.into(),
        blurred: b_mean,
        blurred_std: b_std,
        relative_blurred: mean_std(&relative).0,
        relative_mae: mean_std(&mae).0,
        share: mean_std(&share).0,
        share_min: share.iter().copied().fold(f64::INFINITY, f64::min),
        share_by_bucket: by_bucket.iter().map(|s| mean_std(s).0).collect(),
        examples: blurred.len(),
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

/// A GIF of test sequence `i`: the density, the planned keyframe, the flow speed.
fn sequence_gif(
    path: &Path,
    flow: &IndirectFlow,
    keys: &[Tensor<3>],
    chain: &Chain,
    i: usize,
) -> Result<()> {
    let n = flow.n();
    let speeds: Vec<Vec<f32>> = chain
        .velocities
        .iter()
        .map(|(u, v)| centre_speed(u, v, i))
        .collect();
    let vmax = speeds.iter().flatten().fold(1e-6f32, |m, &s| m.max(s));
    let solid = &flow.solid.solid;
    let mut gif = None;
    for (t, rho) in chain.densities.iter().enumerate() {
        let (rho, key) = (host_item(rho, i), host_item(&keys[t], i));
        let zero = vec![0.0; n * n];
        let sp = if t == 0 { &zero } else { &speeds[t - 1] };
        let panel = |values, range, title| FieldPicture {
            values,
            nx: n,
            ny: n,
            solid,
            range,
            title,
        };
        let frame = Panels(vec![
            panel(&rho, 1.0, format!("#{i} marker, step {t}")),
            panel(&key, 1.0, "planned frame".into()),
            panel(sp, vmax, format!("flow speed (max {vmax:.2})")),
        ]);
        if gif.is_none() {
            gif = Some(GifWriter::create(path, frame.size(), 250)?);
        }
        gif.as_mut().expect("created").add(&frame)?;
    }
    gif.expect("at least one frame").finish()?;
    Ok(())
}

/// Network vs physics time on the first test batch, and the physics' share of a training
/// iteration of the last window.
fn measure_speed(cfg: &IndirectControlConfig, net: &UNet2d, iteration_s: f64) -> Result<Speed> {
    let dev = Device::flex();
    let flow = cfg.flow(&dev)?;
    let ids: Vec<usize> = (0..cfg.data.test.min(25)).collect();
    let keys = rising_batch(cfg, &flow, &ids, &dev).keys;
    let mut speed = Speed {
        iteration_s,
        ..Speed::default()
    };
    let mut rho = keys[0].clone();
    for key in &keys[1..] {
        let t = Instant::now();
        let (ru, rv) = raw_control(net, rho.clone(), key.clone());
        let (ru, rv) = (ru.detach(), rv.detach());
        let _ = ru.clone().sum().into_scalar::<f64>();
        speed.network_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (next, _, _) = flow.step(rho, ru, rv);
        let _ = next.clone().sum().into_scalar::<f64>();
        speed.physics_s += t.elapsed().as_secs_f64();
        rho = next;
    }
    // Training: the last window's physics with fixed raw controls as leaves, forward and
    // backward, at the training batch.
    let ad = Device::flex().autodiff();
    let flow = cfg.flow(&ad)?;
    let w = *cfg.windows.last().expect("validated");
    let motions: Vec<Motion> = (0..cfg.dp.batch)
        .map(|i| rising(&cfg.data, &cfg.layout, i))
        .collect();
    let key = |f| frames(&flow, &motions, f, cfg.data.steps, &ad);
    let n = cfg.data.resolution;
    let b = motions.len();
    let t = Instant::now();
    let plan: Vec<Tensor<3>> = (1..=w).map(key).collect();
    let mut reached: Vec<Tensor<3>> = vec![key(0)];
    for _ in 0..w {
        let ru = Tensor::<3>::ones([b, n, n + 1], &ad).require_grad();
        let rv = Tensor::<3>::ones([b, n + 1, n], &ad).require_grad();
        let rho = reached.last().expect("a start").clone();
        reached.push(flow.step(rho, ru, rv).0);
    }
    let _ = cfg
        .window_loss(&reached[1..], &plan, |e| e.mean())
        .backward();
    speed.physics_train_s = t.elapsed().as_secs_f64();
    Ok(speed)
}

/// Evaluates the trained networks (reloaded from `dir`) and writes the pictures.
pub fn evaluate(
    cfg: &IndirectControlConfig,
    trained: &Trained,
    dir: &Path,
    t0: Instant,
    progress: &dyn Progress,
) -> Result<IndirectControlResult> {
    let dev = Device::flex();
    let flow = cfg.flow(&dev)?;
    let nets: Vec<(String, UNet2d)> = trained
        .stages
        .iter()
        .map(|(name, _)| Ok((name.clone(), load(cfg.cfe_net.init(&dev), &dir.join(name))?)))
        .collect::<Result<_>>()?;
    progress.start("evaluation (stages x splits)", 2 * nets.len() as u64);
    let test: Vec<usize> = (0..cfg.data.test).collect();
    let val: Vec<usize> = (cfg.data.test..cfg.data.test + cfg.data.validation).collect();
    let (mut methods, mut validation) = (Vec::new(), Vec::new());
    let last = nets.len() - 1;
    for (k, (name, net)) in nets.iter().enumerate() {
        methods.push(split_result(
            cfg,
            &flow,
            name,
            net,
            test.chunks(25).map(|c| rising_batch(cfg, &flow, c, &dev)),
            &mut |keys, chain| {
                if k == last {
                    for i in 0..cfg.pictures.min(keys[0].dims()[0]) {
                        sequence_gif(
                            &dir.join(format!("sequence-{i}.gif")),
                            &flow,
                            keys,
                            chain,
                            i,
                        )?;
                    }
                }
                Ok(())
            },
        )?);
        progress.set(2 * k as u64 + 1);
        if !val.is_empty() {
            validation.push(split_result(
                cfg,
                &flow,
                name,
                net,
                val.chunks(25).map(|c| rising_batch(cfg, &flow, c, &dev)),
                &mut |_, _| Ok(()),
            )?);
        }
        progress.set(2 * k as u64 + 2);
    }
    // The user's own planned sequences, with the final network.
    let plan_file = match &cfg.plan_file {
        Some(path) => {
            let n = cfg.data.resolution;
            let plans = read_plans(path, cfg.data.steps + 1, n, flow.targets.len())?;
            let starts: Vec<usize> = (0..plans.sequences).step_by(25).collect();
            Some(split_result(
                cfg,
                &flow,
                &format!("{} on {}", nets[last].0, path.display()),
                &nets[last].1,
                starts
                    .iter()
                    .map(|&f| plan_batch(&plans, f, 25.min(plans.sequences - f), n, &dev)),
                &mut |_, _| Ok(()),
            )?)
        }
        None => None,
    };

    let series: Vec<(String, Vec<(f64, f64)>)> = trained
        .stages
        .iter()
        .map(|(name, r)| (name.clone(), log_loss_curve(&r.losses, 1)))
        .collect();
    line_plot(
        &dir.join("losses.png"),
        "training losses",
        "iteration",
        "log10 loss",
        &series,
    )?;
    Panels(vec![FieldPicture {
        values: &flow.layout_picture(),
        nx: flow.n(),
        ny: flow.n(),
        solid: &flow.solid.solid,
        range: 1.0,
        title: "walls (grey), control strips (1), target buckets (0.5)".into(),
    }])
    .save_png(&dir.join("layout.png"))?;

    let (_, final_report) = trained.stages.last().expect("stages");
    let iteration_s = final_report.wall_s / final_report.losses.len().max(1) as f64;
    let speed = measure_speed(cfg, &nets[last].1, iteration_s)?;
    let baseline = optimise(cfg, &cfg.baseline, &nets[last].1, progress)?;
    baseline.plot(
        &dir.join("baseline.png"),
        "classical baseline: Adam on the raw controls",
        "mean final blurred density error",
    )?;
    let (sup, dp) = (&methods[0], &methods[last]);
    let checks = vec![
        Check {
            what: format!(
                "differentiable physics ({}) below supervised on the final blurred density error (test)",
                dp.name
            ),
            passed: dp.blurred < sup.blurred,
        },
        Check {
            what: format!(
                "mean share of the marker inside the target bucket ≥ {REQUIRED_SHARE} ({}, test)",
                dp.name
            ),
            passed: dp.share >= REQUIRED_SHARE,
        },
    ];
    Ok(IndirectControlResult {
        config: cfg.clone(),
        methods,
        validation,
        plan_file,
        parameters: nets[last].1.num_params(),
        stages: trained.stages.iter().map(|(n, r)| r.row(n)).collect(),
        speed,
        baseline,
        checks,
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

/// The results page.
pub fn results_page(r: &IndirectControlResult) -> String {
    let d = &r.config.data;
    let mut s = format!(
        "# Indirect control (Holl et al. 2020)\n\n{}x{} grid, {} steps, {} test / {} validation / {} training sequences; control only in the side strips, the marker moved through the pressure; CFE {} parameters.\n\n",
        d.resolution,
        d.resolution,
        d.steps,
        d.test,
        d.validation,
        d.examples - d.test - d.validation,
        r.parameters
    );
    s += "## After each stage (test set; validation in brackets)\n\n| stage | final blurred error | ÷ start's | relative MAE | mass in target bucket | lowest | per bucket | wall (s) |\n|---|---|---|---|---|---|---|---|\n";
    for (k, m) in r.methods.iter().enumerate() {
        let v = r.validation.get(k);
        let bracket =
            |f: fn(&MethodResult) -> f64| v.map(|v| format!(" ({:.3})", f(v))).unwrap_or_default();
        s += &format!(
            "| {} | {:.3} ± {:.3}{} | {:.3} | {:.3} | {:.3}{} | {:.3} | {} | {:.2} |\n",
            m.name,
            m.blurred,
            m.blurred_std,
            bracket(|m| m.blurred),
            m.relative_blurred,
            m.relative_mae,
            m.share,
            bracket(|m| m.share),
            m.share_min,
            m.share_by_bucket
                .iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" / "),
            m.wall_s
        );
    }
    if let Some(m) = &r.plan_file {
        s += &format!(
            "\n{}: {} sequences, final blurred error {:.3} ± {:.3} (÷ start's {:.3}), mass in target bucket {:.3} (lowest {:.3}).\n",
            m.name, m.examples, m.blurred, m.blurred_std, m.relative_blurred, m.share, m.share_min
        );
    }
    s += "\n## Training\n\n";
    s += &stages_table(&r.stages);
    let sp = &r.speed;
    s += &format!(
        "\n## Speed\n\nInference, 25 test sequences of {} steps: networks {:.3} s, physics {:.3} s ({:.0}% physics). Training, one iteration of the last window: {:.3} s, of which the physics forward and backward (projection, adjoint solve, advection, loss) {:.3} s ({:.0}%).\n",
        d.steps,
        sp.network_s,
        sp.physics_s,
        100.0 * sp.physics_s / (sp.network_s + sp.physics_s).max(1e-12),
        sp.iteration_s,
        sp.physics_train_s,
        100.0 * sp.physics_train_s / sp.iteration_s.max(1e-12)
    );
    let b = &r.baseline;
    s += &format!(
        "\n## Classical baseline\n\nAdam (lr {}) on the raw controls of all {} steps of the first {} test sequences, from zero, on the differentiable-physics objective; {} iterations in {:.1} s ({:.1} s per sequence). The final network: {:.3} s for all {} together. Errors: final blurred density error.\n\n",
        b.config.learning_rate,
        d.steps,
        b.config.examples,
        b.config.iterations,
        b.wall_s,
        b.wall_s / b.config.examples.max(1) as f64,
        b.network_wall_s,
        b.config.examples
    );
    s += &b.table();
    s += "\n## Checks\n\n";
    s += &checks_list(&r.checks);
    s += &format!("\nWhole study: {:.1} s.\n", r.wall_s);
    s
}
