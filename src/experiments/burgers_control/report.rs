//! Evaluation of the Burgers control study on the test set (docs/burgers-control.md §5):
//! total force of every method (mean ± std over the test sequences, with the final state
//! pinned to the target), inference wall times, space-time pictures of `u` and `F`, the
//! acceptance checks and the results page.

use super::baseline::{BaselineResult, optimise};
use super::{BurgersControlConfig, BurgersData, PUBLISHED};
use crate::control::{Hierarchy, cfe_chain, forces, refined, staggered, total_force};
use crate::error::{DiffsimError, Result};
use crate::experiments::stage::{StageReport, StageRow, load, stages_table};
use crate::experiments::study::{Check, Progress, checks_list, log_loss_curve, mean_std};
use crate::nn::{UNet1d, UNet1dConfig};
use crate::viz::{FieldPicture, Panels, line_plot};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// One method's total force on the test set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodResult {
    /// Name.
    pub name: String,
    /// Mean of `Σ_t Σ_x |F_t|` over the test sequences.
    pub mean: f64,
    /// Standard deviation over the test sequences.
    pub std: f64,
    /// Sequences evaluated.
    pub sequences: usize,
    /// Wall time to compute the controls of all of them (s; 0 for the data references).
    pub wall_s: f64,
    /// The published value and its ±, when there is one.
    pub published: Option<(f64, f64)>,
}

/// The study's result (`results.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BurgersControlResult {
    /// The settings.
    pub config: BurgersControlConfig,
    /// Every method on the test split, data references first.
    pub methods: Vec<MethodResult>,
    /// The same on the validation split (held out too: nothing is selected on it), a second
    /// sample of the data distribution.
    pub validation: Vec<MethodResult>,
    /// The iterative baseline.
    pub baseline: BaselineResult,
    /// The networks' parameter counts `(CFE, each OP_n)`.
    pub parameters: (usize, usize),
    /// Training stages: `(name, iterations, final loss, iterations/s, wall s)`.
    pub stages: Vec<StageRow>,
    /// Acceptance checks.
    pub checks: Vec<Check>,
    /// Wall time of the data generation (s).
    pub data_s: f64,
    /// Wall time of the whole study (s).
    pub wall_s: f64,
}

fn method(name: &str, totals: &[f64], wall_s: f64) -> MethodResult {
    let (mean, std) = mean_std(totals);
    MethodResult {
        name: name.into(),
        mean,
        std,
        sequences: totals.len(),
        wall_s,
        published: PUBLISHED.iter().find(|p| p.0 == name).map(|p| (p.1, p.2)),
    }
}

/// A trajectory's host arrays: states `[n+1, N]` and forces `[n, N]` of batch item `i`.
fn item_arrays(
    scene: &crate::burgers::BurgersScene,
    states: &[Tensor<2>],
    i: usize,
) -> (Vec<f32>, Vec<f32>) {
    let pick = |t: &Tensor<2>| -> Vec<f32> {
        t.clone()
            .narrow(0, i, 1)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32")
    };
    let u: Vec<f32> = states.iter().flat_map(pick).collect();
    let f = forces(
        scene,
        &states
            .iter()
            .map(|s| s.clone().narrow(0, i, 1))
            .collect::<Vec<_>>(),
    );
    (
        u,
        f.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32"),
    )
}

/// `name` as a file name: lower case, runs of other characters as one `-`.
fn file_stem(name: &str) -> String {
    let lower: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    lower
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Space-time pictures of `u` and `F` (t upwards, x rightwards) of the first `count` items.
fn pictures(
    dir: &Path,
    name: &str,
    scene: &crate::burgers::BurgersScene,
    states: &[Tensor<2>],
    count: usize,
) -> Result<()> {
    let (n, steps) = (scene.cells, scene.steps);
    for i in 0..count.min(states[0].dims()[0]) {
        let (u, f) = item_arrays(scene, states, i);
        let range = |v: &[f32]| v.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
        let (ru, rf) = (range(&u), range(&f));
        let panel = |values, ny, range, title| FieldPicture {
            values,
            nx: n,
            ny,
            solid: &[],
            range,
            title,
        };
        Panels(vec![
            panel(&u, steps + 1, ru, format!("{name} #{i}: u (±{ru:.2})")),
            panel(&f, steps, rf, format!("F (±{rf:.3})")),
        ])
        .save_png(&dir.join(format!("{}-{i}.png", file_stem(name))))?;
    }
    Ok(())
}

/// A control scheme: the executed trajectory from `(u_0, u*)`, both `[B, N]`.
type Scheme<'a> = Box<dyn Fn(Tensor<2>, Tensor<2>) -> Vec<Tensor<2>> + 'a>;

/// Every method's total force on the sequences `ids`: the data references (generating force
/// Σ|f|·n, the ground truth's own F, single shot), then every scheme of `runs`; `on_states`
/// sees each trajectory (ground truth first).
fn split_results(
    data: &BurgersData,
    ids: &[usize],
    runs: &[(&str, Scheme)],
    on_states: &mut dyn FnMut(&str, &[Tensor<2>]) -> Result<()>,
) -> Result<Vec<MethodResult>> {
    let scene = &data.config.scene;
    let steps = scene.steps;
    let dev = Device::flex();
    let none = vec![false; ids.len()];
    let b = ids.len();
    let data_force: Vec<f64> = ids
        .iter()
        .map(|&s| {
            data.data_force(s)
                .iter()
                .map(|x| x.abs() as f64)
                .sum::<f64>()
                * steps as f64
        })
        .collect();
    let mut methods = vec![method("GT (data force Σ|f|·n)", &data_force, 0.0)];
    let gt: Vec<Tensor<2>> = (0..=steps)
        .map(|t| data.states(ids, t, &none, &dev))
        .collect();
    methods.push(method(
        "GT trajectory",
        &total_force(forces(scene, &gt), b),
        0.0,
    ));
    on_states("GT", &gt)?;
    let (u0, target) = (gt[0].clone(), gt[steps].clone());
    let naive: Vec<f64> = {
        let d: Vec<f32> = (target.clone() - u0.clone())
            .abs()
            .sum_dim(1)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32");
        d.into_iter().map(f64::from).collect()
    };
    methods.push(method("Naive single shot", &naive, 0.0));
    for (name, run) in runs {
        let t = Instant::now();
        let states = run(u0.clone(), target.clone());
        let totals = total_force(forces(scene, &states), b);
        let wall = t.elapsed().as_secs_f64();
        if totals.iter().any(|x| !x.is_finite()) {
            return Err(DiffsimError::config(format!(
                "{name}: a held-out rollout became non-finite"
            )));
        }
        methods.push(method(name, &totals, wall));
        on_states(name, &states)?;
    }
    Ok(methods)
}

/// Evaluates every method on the test set and writes the pictures and the loss curves.
pub fn evaluate(
    cfg: &BurgersControlConfig,
    data: &BurgersData,
    stages: &[(String, StageReport)],
    dir: &Path,
    data_s: f64,
    t0: Instant,
    progress: &dyn Progress,
) -> Result<BurgersControlResult> {
    let scene = &data.config.scene;
    let steps = scene.steps;
    let dev = Device::flex();
    let pics = dir.join("spacetime");
    std::fs::create_dir_all(&pics).map_err(|e| DiffsimError::file(&pics, e))?;
    progress.start("evaluation (methods)", 7);
    // The networks, reloaded onto the plain (untracked) device.
    let cfe = |dir_name: &str| load(UNet1dConfig::cfe().init(&dev), &dir.join(dir_name));
    let mut sup_op = Hierarchy::init(steps, &dev);
    for (l, o) in sup_op.ops.iter_mut().enumerate() {
        *o = load(o.clone(), &dir.join(format!("sup-op{}", 2 << l)))?;
    }
    let dp_staggered = load(Hierarchy::init(steps, &dev), &dir.join("dp-staggered"))?;
    let dp_refined = load(Hierarchy::init(steps, &dev), &dir.join("dp-refined"))?;
    let chain = |net: UNet1d| move |a: Tensor<2>, z: Tensor<2>| cfe_chain(&net, a, z, steps);
    let runs: Vec<(&str, Scheme)> = vec![
        ("Sup-CFE chain", Box::new(chain(cfe("sup-cfe")?))),
        ("DP-CFE chain", Box::new(chain(cfe("dp-cfe")?))),
        (
            "Sup-staggered",
            Box::new(|a, z| staggered(&sup_op, a, z, steps)),
        ),
        (
            "DP-staggered",
            Box::new(|a, z| staggered(&dp_staggered, a, z, steps)),
        ),
        (
            "DP-staggered nets, refined",
            Box::new(|a, z| refined(&dp_staggered, a, z, steps)),
        ),
        (
            "DP-refined",
            Box::new(|a, z| refined(&dp_refined, a, z, steps)),
        ),
    ];
    let mut done = 0;
    let mut methods = split_results(data, &data.test, &runs, &mut |name, states| {
        done += 1;
        progress.set(done);
        pictures(&pics, name, scene, states, cfg.pictures)
    })?;
    let validation = split_results(data, &data.validation, &runs, &mut |_, _| Ok(()))?;
    let test = &data.test;
    let none = vec![false; test.len()];
    let u0 = data.states(test, 0, &none, &dev);
    let target = data.states(test, steps, &none, &dev);
    // The iterative baseline on the first test sequences, levels: the networks' means.
    let nb = cfg.baseline.sequences;
    let levels: Vec<f64> = ["DP-CFE chain", "DP-refined"]
        .iter()
        .filter_map(|n| methods.iter().find(|m| m.name == *n).map(|m| m.mean))
        .collect();
    progress.start(
        "iterative baseline (Adam iterations)",
        cfg.baseline.iterations as u64,
    );
    let (baseline, states) = optimise(
        scene,
        &cfg.baseline,
        u0.clone().narrow(0, 0, nb),
        target.clone().narrow(0, 0, nb),
        &levels,
        &Device::flex().autodiff(),
    )?;
    progress.set(cfg.baseline.iterations as u64);
    let mut m = method(
        "Iterative (Adam on the states)",
        &baseline.totals,
        baseline.wall_s,
    );
    m.published = None;
    methods.push(m);
    pictures(&pics, "Iterative", scene, &states, cfg.pictures)?;
    line_plot(
        &dir.join("baseline.png"),
        "iterative baseline: mean total force per Adam iteration",
        "iteration",
        "total force",
        &[(
            "Adam on the states".into(),
            baseline.curve.iter().map(|&(k, f)| (k as f64, f)).collect(),
        )],
    )?;
    line_plot(
        &dir.join("loss.png"),
        "Burgers control: training loss (log10) per iteration",
        "iteration",
        "log10 loss",
        &stages
            .iter()
            .map(|(name, r)| (name.clone(), log_loss_curve(&r.losses, 1)))
            .collect::<Vec<_>>(),
    )?;
    let checks = acceptance(&methods);
    let parameters = (
        UNet1dConfig::cfe().init(&dev).num_params(),
        UNet1dConfig::op().init(&dev).num_params(),
    );
    Ok(BurgersControlResult {
        config: cfg.clone(),
        methods,
        validation,
        baseline,
        parameters,
        stages: stages.iter().map(|(n, r)| r.row(n)).collect(),
        checks,
        data_s,
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

/// The acceptance checks on the measured means.
pub fn acceptance(methods: &[MethodResult]) -> Vec<Check> {
    let get = |n: &str| {
        methods
            .iter()
            .find(|m| m.name == n)
            .map(|m| m.mean)
            .unwrap_or(f64::NAN)
    };
    let (sup, dp, stag, refd) = (
        get("Sup-CFE chain"),
        get("DP-CFE chain"),
        get("DP-staggered"),
        get("DP-refined"),
    );
    let within = |name: &str, v: f64, p: f64, dp_row: bool| Check {
        what: format!(
            "{name} {v:.1} within ±15% of the published {p}{}",
            if dp_row { " (or below it)" } else { "" }
        ),
        passed: (v - p).abs() <= 0.15 * p || (dp_row && v < p),
    };
    vec![
        Check {
            what: format!(
                "ordering Sup-CFE {sup:.1} > DP-CFE {dp:.1} > DP-staggered {stag:.1} ≥ DP-refined {refd:.1}"
            ),
            passed: sup > dp && dp > stag && stag >= refd,
        },
        Check {
            what: format!("DP-CFE ≤ 0.5 × Sup-CFE ({:.2})", dp / sup),
            passed: dp <= 0.5 * sup,
        },
        Check {
            what: format!("DP-refined ≤ 0.6 × DP-CFE ({:.2})", refd / dp),
            passed: refd <= 0.6 * dp,
        },
        within("Sup-CFE chain", sup, PUBLISHED[0].1, false),
        within("DP-CFE chain", dp, PUBLISHED[1].1, true),
        within("DP-refined", refd, PUBLISHED[2].1, true),
    ]
}

/// A markdown table of `methods` with each mean divided by the data force's (`÷ GT`).
fn method_table(methods: &[MethodResult], with_wall: bool) -> String {
    let gt = methods.first().map(|m| m.mean).unwrap_or(f64::NAN);
    let mut p =
        String::from("| method | total force Σ_t Σ_x |F| (mean ± std) | ÷ GT | published |");
    p += if with_wall {
        " wall time (s) |\n|---|---|---|---|---|\n"
    } else {
        "\n|---|---|---|---|\n"
    };
    for m in methods {
        let published = m
            .published
            .map(|(v, e)| format!("{v} ± {e}"))
            .unwrap_or_else(|| "–".into());
        p += &format!(
            "| {} | {:.2} ± {:.2} (n = {}) | {:.2} | {} |",
            m.name,
            m.mean,
            m.std,
            m.sequences,
            m.mean / gt,
            published
        );
        p += &if with_wall {
            format!(" {:.3} |\n", m.wall_s)
        } else {
            "\n".into()
        };
    }
    p
}

/// The results page.
pub fn results_page(r: &BurgersControlResult) -> String {
    let s = &r.config.data.scene;
    let mut p = format!(
        "# burgers-control: measured results\n\n{} test sequences, {} points, {} steps, ν·dt/dx² = {:.3} per step; CFE {} parameters, each OP_n {}.\n\n",
        r.config.data.test,
        s.cells,
        s.steps,
        s.alpha() * s.diffusion_substeps as f64,
        r.parameters.0,
        r.parameters.1
    );
    p += &method_table(&r.methods, true);
    p += &format!(
        "\nThe same networks on the {} validation sequences (held out as well: nothing is trained or selected on them), a second sample of the data distribution; `÷ GT` divides by the split's mean data force, which differs between samples of 200:\n\n",
        r.config.data.validation
    );
    p += &method_table(&r.validation, false);
    let b = &r.baseline;
    p += &format!(
        "\nIterative baseline: {} Adam iterations on {} sequences at once in {:.1} s ({:.2} s per sequence if run alone at this size); relative decrease of the loss over the last 10% of the iterations: {:+.2e} (converged when near zero).",
        b.iterations,
        b.totals.len(),
        b.wall_s,
        b.wall_s / b.totals.len().max(1) as f64,
        b.last_decrease
    );
    for (level, at) in &b.reached {
        p += &format!(
            " Mean force ≤ {level:.2} first at iteration {}.",
            at.map(|k| k.to_string()).unwrap_or_else(|| "never".into())
        );
    }
    p += "\n\n";
    p += &stages_table(&r.stages);
    p += "\n## Acceptance\n\n";
    p += &checks_list(&r.checks);
    p += &format!(
        "\nData {:.1} s; whole study {:.1} s. Pictures: spacetime/*.png (u and F over x and t), loss.png, baseline.png.\n",
        r.data_s, r.wall_s
    );
    p
}
