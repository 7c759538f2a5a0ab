//! Evaluation of the shape-transition study: the relative final-density error of every method
//! on the test and validation sets (mean ± std over the examples, and pooled), inference wall
//! times, GIFs of test transitions (density, its difference to the target, and the control
//! speed), loss curves, a picture of the shape library, the acceptance checks and the results
//! page.

use super::baseline::optimise;
use super::data::{Shape, transition};
use super::{Examples, PUBLISHED_RELATIVE_MAE, ShapeTransitionConfig, Trained};
use crate::control::flow::{Execution, FlowPlanner, Rollout, execute};
use crate::error::Result;
use crate::experiments::control_baseline::BaselineResult;
use crate::experiments::stage::{StageRow, load, stages_table};
use crate::experiments::study::{Check, Progress, checks_list, log_loss_curve, mean_std};
use crate::fluid::{ShapeFlow, centre_speed, host_item, mae_sums};
use crate::viz::{FieldPicture, GifWriter, Panels, line_plot};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// One method on one split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodResult {
    /// Name.
    pub name: String,
    /// Mean over the examples of `Σ|ρ_n − ρ*| / Σ|ρ₀ − ρ*|`.
    pub mean: f64,
    /// Standard deviation over the examples.
    pub std: f64,
    /// `Σ_examples Σ|ρ_n − ρ*| / Σ_examples Σ|ρ₀ − ρ*|`.
    pub pooled: f64,
    /// Examples evaluated.
    pub examples: usize,
    /// Wall time of all of them (s; networks and physics, batches of 25).
    pub wall_s: f64,
    /// Each example's error, in index order.
    #[serde(default)]
    pub errors: Vec<f64>,
}

/// The study's result (`results.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShapeTransitionResult {
    /// The settings.
    pub config: ShapeTransitionConfig,
    /// The shape library: `(name, cells)`.
    pub library: Vec<(String, usize)>,
    /// DP staggered on the test set by target shape: `(name, examples, mean error)`.
    #[serde(default)]
    pub by_target: Vec<(String, usize, f64)>,
    /// Every method on the test set.
    pub methods: Vec<MethodResult>,
    /// The same on the validation set (nothing is selected on it).
    pub validation: Vec<MethodResult>,
    /// The networks' parameter counts `(CFE, each OP_n)`.
    pub parameters: (usize, usize),
    /// Training stages: `(name, iterations, final loss, iterations/s, wall s)`.
    pub stages: Vec<StageRow>,
    /// The classical baseline on the first test examples.
    pub baseline: BaselineResult,
    /// Acceptance checks.
    pub checks: Vec<Check>,
    /// Wall time of the whole study (s).
    pub wall_s: f64,
}

fn method(name: &str, errors: &[f64], pooled: f64, wall_s: f64) -> MethodResult {
    let (mean, std) = mean_std(errors);
    MethodResult {
        name: name.into(),
        mean,
        std,
        pooled,
        examples: errors.len(),
        wall_s,
        errors: errors.to_vec(),
    }
}

/// The planners saved by [`super::train_all`] in `dir`, on `dev`: `(supervised, joint)`.
fn load_planners(
    cfg: &ShapeTransitionConfig,
    dir: &Path,
    dev: &Device,
) -> Result<(FlowPlanner, FlowPlanner)> {
    let fresh = || FlowPlanner::init(&cfg.cfe_net, &cfg.op_net, cfg.data.steps, dev);
    let mut sup = fresh();
    sup.cfe = load(sup.cfe, &dir.join("sup-cfe"))?;
    for (l, op) in sup.ops.iter_mut().enumerate() {
        *op = load(op.clone(), &dir.join(format!("sup-op{}", 2 << l)))?;
    }
    let joint = load(fresh(), &dir.join("dp-staggered"))?;
    Ok((sup, joint))
}

/// A GIF of test transition `i`: the density, its difference to the target, the control speed.
fn transition_gif(
    path: &Path,
    flow: &ShapeFlow,
    run: &Rollout,
    target: &Tensor<3>,
    i: usize,
) -> Result<()> {
    let n = flow.grid.nx;
    let goal = host_item(target, i);
    let speeds: Vec<Vec<f32>> = run
        .velocities
        .iter()
        .map(|(u, v)| centre_speed(u, v, i))
        .collect();
    let vmax = speeds.iter().flatten().fold(1e-6f32, |m, &s| m.max(s));
    let mut gif = None;
    for (t, rho) in run.densities.iter().enumerate() {
        let rho = host_item(rho, i);
        let diff: Vec<f32> = rho.iter().zip(&goal).map(|(a, b)| a - b).collect();
        let zero = vec![0.0; n * n];
        let sp = if t == 0 { &zero } else { &speeds[t - 1] };
        let panel = |values, range, title| FieldPicture {
            values,
            nx: n,
            ny: n,
            solid: &[],
            range,
            title,
        };
        let frame = Panels(vec![
            panel(&rho, 1.0, format!("#{i} density, step {t}")),
            panel(&diff, 1.0, "density − target".into()),
            panel(sp, vmax, format!("control speed (max {vmax:.2})")),
        ]);
        if gif.is_none() {
            gif = Some(GifWriter::create(path, frame.size(), 250)?);
        }
        gif.as_mut().expect("created").add(&frame)?;
    }
    gif.expect("at least one frame").finish()?;
    Ok(())
}

/// Runs every method on the examples `ids`; `on_run` sees each method's first batch.
fn split_results(
    cfg: &ShapeTransitionConfig,
    ex: &Examples,
    methods: &[(&str, &FlowPlanner, Execution)],
    ids: &[usize],
    on_run: &mut dyn FnMut(&str, &Rollout, &Tensor<3>) -> Result<()>,
) -> Result<Vec<MethodResult>> {
    let flow = cfg.flow();
    let mut out = Vec::new();
    for &(name, planner, how) in methods {
        let t0 = Instant::now();
        let (mut errors, mut err_sum, mut base_sum) = (Vec::new(), 0.0, 0.0);
        for (b, chunk) in ids.chunks(25).enumerate() {
            let (start, target) = ex.transitions(chunk);
            let run = execute(
                &flow,
                planner,
                start.clone(),
                target.clone(),
                cfg.data.steps,
                how,
            );
            let last = run.densities.last().expect("frames").clone();
            for (e, b0) in mae_sums(last, target.clone(), start) {
                err_sum += e;
                base_sum += b0;
                errors.push(e / b0.max(1e-30));
            }
            if b == 0 {
                on_run(name, &run, &target)?;
            }
        }
        out.push(method(
            name,
            &errors,
            err_sum / base_sum.max(1e-30),
            t0.elapsed().as_secs_f64(),
        ));
    }
    Ok(out)
}

/// Evaluates the trained networks (reloaded from `dir`) and writes the pictures.
pub fn evaluate(
    cfg: &ShapeTransitionConfig,
    trained: &Trained,
    dir: &Path,
    t0: Instant,
    progress: &dyn Progress,
) -> Result<ShapeTransitionResult> {
    let dev = Device::flex();
    let (sup, joint) = load_planners(cfg, dir, &dev)?;
    let ex = Examples::new(&cfg.data, &dev);
    let flow = cfg.flow();
    let methods = [
        ("Sup staggered", &sup, Execution::Staggered),
        ("DP staggered", &joint, Execution::Staggered),
        ("DP refined", &joint, Execution::Refined),
    ];
    progress.start("evaluation (methods x splits)", 2 * methods.len() as u64);
    let test: Vec<usize> = (0..cfg.data.test).collect();
    let val: Vec<usize> = (cfg.data.test..cfg.data.test + cfg.data.validation).collect();
    let mut done = 0;
    let mut pictures = |name: &str, run: &Rollout, target: &Tensor<3>| -> Result<()> {
        done += 1;
        progress.set(done);
        if name == "DP staggered" {
            for i in 0..cfg.pictures.min(target.dims()[0]) {
                transition_gif(
                    &dir.join(format!("transition-{i}.gif")),
                    &flow,
                    run,
                    target,
                    i,
                )?;
            }
        }
        Ok(())
    };
    let methods_test = split_results(cfg, &ex, &methods, &test, &mut pictures)?;
    let validation = split_results(cfg, &ex, &methods, &val, &mut |_, _, _| {
        done += 1;
        progress.set(done);
        Ok(())
    })?;

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
    let lib = ex.shapes();
    let p = cfg.data.patch();
    Panels(
        lib.iter()
            .map(|s| FieldPicture {
                values: &s.cells,
                nx: p,
                ny: p,
                solid: &[],
                range: 1.0,
                title: s.name.into(),
            })
            .collect(),
    )
    .save_png(&dir.join("shapes.png"))?;

    let first: Vec<usize> = (0..cfg.baseline.examples).collect();
    let baseline = optimise(
        cfg,
        &cfg.baseline,
        &joint,
        ex.transitions(&first),
        &Device::flex().autodiff(),
        progress,
    )?;
    baseline.plot(
        &dir.join("baseline.png"),
        "classical baseline: Adam on the 16 potentials",
        "mean relative final-density error",
    )?;

    let by_target = by_target(cfg, lib, &methods_test, &test);
    let find = |name: &str| {
        methods_test
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.mean)
            .unwrap_or(f64::NAN)
    };
    let checks = vec![
        Check {
            what: format!(
                "DP staggered relative final-density MAE ≤ {PUBLISHED_RELATIVE_MAE} (test)"
            ),
            passed: find("DP staggered") <= PUBLISHED_RELATIVE_MAE,
        },
        Check {
            what: "DP-trained hierarchy ahead of the supervised-only one (test)".into(),
            passed: find("DP staggered") < find("Sup staggered"),
        },
    ];
    Ok(ShapeTransitionResult {
        config: cfg.clone(),
        library: lib.iter().map(|s| (s.name.to_string(), s.area())).collect(),
        by_target,
        methods: methods_test,
        validation,
        parameters: (joint.cfe.num_params(), joint.ops[0].num_params()),
        stages: trained.stages.iter().map(|(n, r)| r.row(n)).collect(),
        baseline,
        checks,
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

/// DP staggered's errors on examples `ids` grouped by target shape: `(name, examples, mean)`.
fn by_target(
    cfg: &ShapeTransitionConfig,
    lib: &[Shape],
    methods: &[MethodResult],
    ids: &[usize],
) -> Vec<(String, usize, f64)> {
    let Some(dp) = methods.iter().find(|m| m.name == "DP staggered") else {
        return Vec::new();
    };
    let mut groups = vec![Vec::new(); lib.len()];
    for (&i, &e) in ids.iter().zip(&dp.errors) {
        let [_, target] = transition(&cfg.data, lib.len(), i);
        groups[target.shape].push(e);
    }
    lib.iter()
        .zip(groups)
        .map(|(s, g)| (s.name.to_string(), g.len(), mean_std(&g).0))
        .collect()
}

/// The results page.
pub fn results_page(r: &ShapeTransitionResult) -> String {
    let d = &r.config.data;
    let mut s = format!(
        "# Shape transitions (Holl et al. 2020)\n\n{}x{} grid, {} steps, {} test / {} validation / {} training examples, {} shapes; CFE {} and OP_n {} parameters.\n\n",
        d.resolution,
        d.resolution,
        d.steps,
        d.test,
        d.validation,
        d.examples - d.test - d.validation,
        r.library.len(),
        r.parameters.0,
        r.parameters.1
    );
    s += "## Relative final-density error Σ|ρ_n − ρ*| / Σ|ρ_0 − ρ*|\n\n| method | test mean ± std | test pooled | validation mean ± std | test wall (s) |\n|---|---|---|---|---|\n";
    for (m, v) in r.methods.iter().zip(&r.validation) {
        s += &format!(
            "| {} | {:.4} ± {:.4} | {:.4} | {:.4} ± {:.4} | {:.2} |\n",
            m.name, m.mean, m.std, m.pooled, v.mean, v.std, m.wall_s
        );
    }
    s += &format!("\nThe pbdl-book run: {PUBLISHED_RELATIVE_MAE}.\n\n");
    if !r.by_target.is_empty() {
        s += "DP staggered on the test set by target shape:\n\n| target | examples | mean error |\n|---|---|---|\n";
        for (name, n, mean) in &r.by_target {
            let mean = if *n == 0 {
                "—".into()
            } else {
                format!("{mean:.4}")
            };
            s += &format!("| {name} | {n} | {mean} |\n");
        }
        s += "\n";
    }
    s += "## Training\n\n";
    s += &stages_table(&r.stages);
    let b = &r.baseline;
    s += &format!(
        "\n## Classical baseline\n\nAdam (lr {}) on the {} per-step potentials of the first {} test examples, from zero, on the training objective; {} iterations in {:.1} s ({:.1} s per example). Networks (DP staggered): {:.3} s for all {} together. Errors: relative final-density MAE.\n\n",
        b.config.learning_rate,
        r.config.data.steps,
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
