//! The wake-flow study's evaluation report: test rollouts of SRC and every corrector with
//! their error curves, side-by-side vorticity pictures and GIFs, the acceptance criteria, and
//! the results page with the published numbers beside the measured ones.

use super::dataset::WakeData;
use super::eval::{Criterion, HostFrames, ModelErrors, acceptance, rollout};
use super::train::sims_for;
use crate::error::{DiffsimError, Result};
use crate::experiments::study::Progress;
use crate::fluid::Simulation;
use crate::io::write_json;
use crate::nn::Corrector;
use crate::viz::{FieldPicture, GifWriter, Panels, line_plot, robust_range, vorticity};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What `diffsim eval` reports (also written as `eval.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalReport {
    /// The error measure.
    pub metric: String,
    /// Rollout length.
    pub steps: usize,
    /// SRC first, then the models in the order given.
    pub models: Vec<ModelErrors>,
    /// The docs/wake-flow.md §7 criteria that apply to the models present.
    pub acceptance: Vec<Criterion>,
}

impl EvalReport {
    /// A Markdown table: mean pooled MAE per test Reynolds number and model, the mean, and the
    /// ratio to SRC.
    pub fn table(&self) -> String {
        let Some(src) = self.models.first() else {
            return String::new();
        };
        let mut t = String::from("| model |");
        for s in &src.per_sim {
            t += &format!(" Re {} |", s.reynolds);
        }
        t += " mean | / SRC |\n|---|";
        t += &"---:|".repeat(src.per_sim.len() + 2);
        for m in &self.models {
            t += &format!("\n| {} |", m.name);
            for s in &m.per_sim {
                t += &format!(" {:.4} |", s.mae);
            }
            t += &format!(" {:.4} | {:.3} |", m.mae, m.mae / src.mae);
        }
        t + "\n"
    }
}

/// Rolls out SRC and every `(name, corrector)` on the test simulations of `data` for `steps`
/// steps, and writes `eval.json`, `mae_per_step.png` (mean over the test simulations),
/// `mae_re{Re}.png`, `vorticity_re{Re}_step{t}.png` (reference and every model side by side
/// at half and full length) and `rollout_re{Re}.gif` into `dir`.
pub fn evaluate(
    data: &WakeData,
    models: &[(String, Corrector)],
    steps: usize,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<EvalReport> {
    std::fs::create_dir_all(dir).map_err(|e| DiffsimError::file(dir, e))?;
    let sims = sims_for(data, &Device::flex(), true)?;
    let contenders: Vec<(&str, Option<&Corrector>)> = std::iter::once(("SRC", None))
        .chain(models.iter().map(|(n, c)| (n.as_str(), Some(c))))
        .collect();
    progress.start(
        "eval wake-flow (rollout steps)",
        (steps * contenders.len()) as u64,
    );
    let (mut errors, mut frames) = (Vec::new(), Vec::new());
    for (k, (name, net)) in contenders.iter().enumerate() {
        let (e, f) = rollout(data, &sims, name, *net, steps, |t| {
            progress.set((k * steps + t) as u64)
        })?;
        errors.push(e);
        frames.push(f);
    }
    let report = EvalReport {
        metric: format!(
            "pooled MAE: mean |v - v_ref| over every staggered velocity sample (u and v faces) of the {} source grid, averaged over steps 1..=steps and over the test Reynolds numbers",
            data.manifest.resolution
        ),
        steps,
        acceptance: acceptance(&errors),
        models: errors,
    };
    let curve = |e: &[f64]| -> Vec<(f64, f64)> {
        e.iter()
            .enumerate()
            .map(|(t, &x)| ((t + 1) as f64, x))
            .collect()
    };
    line_plot(
        &dir.join("mae_per_step.png"),
        "wake flow: pooled MAE per step (mean over test Re)",
        "step",
        "MAE",
        &report
            .models
            .iter()
            .map(|m| (m.name.clone(), curve(&m.mae_per_step())))
            .collect::<Vec<_>>(),
    )?;
    for (i, reference) in data.test.iter().enumerate() {
        let re = reference.entry.reynolds;
        line_plot(
            &dir.join(format!("mae_re{re}.png")),
            &format!("wake flow: pooled MAE per step, Re {re}"),
            "step",
            "MAE",
            &report
                .models
                .iter()
                .map(|m| (m.name.clone(), curve(&m.per_sim[i].mae_per_step)))
                .collect::<Vec<_>>(),
        )?;
        let rollouts: Vec<&HostFrames> = frames.iter().map(|f| &f[i]).collect();
        pictures(data, &sims[i], i, &report.models, &rollouts, steps, dir)?;
    }
    write_json(&report, &dir.join("eval.json"))?;
    Ok(report)
}

/// Vorticity of the reference and of every model's rollout of test simulation `i`, side by
/// side: PNGs at half and full length and a GIF of the whole rollout (one colour range, from
/// the reference frames).
fn pictures(
    data: &WakeData,
    sim: &Simulation,
    i: usize,
    models: &[ModelErrors],
    rollouts: &[&HostFrames],
    steps: usize,
    dir: &Path,
) -> Result<()> {
    let reference = &data.test[i];
    let re = reference.entry.reynolds;
    let (g, solid) = (sim.grid, &sim.solid.solid);
    let (nu, nv) = (g.ny * (g.nx + 1), (g.ny + 1) * g.nx);
    let f = &reference.frames;
    let truth: Vec<Vec<f32>> = (0..=steps)
        .map(|t| vorticity(&f.u[t * nu..(t + 1) * nu], &f.v[t * nv..(t + 1) * nv], &g))
        .collect();
    let range = robust_range(truth.iter().map(Vec::as_slice), solid);
    let predicted: Vec<Vec<Vec<f32>>> = rollouts
        .iter()
        .map(|r| r.iter().map(|(u, v)| vorticity(u, v, &g)).collect())
        .collect();
    let panels = |t: usize| {
        let picture = |values, title| FieldPicture::on_grid(values, solid, &g, range, title);
        let mut p = vec![picture(&truth[t], format!("reference Re {re} t={t}"))];
        for (m, w) in models.iter().zip(&predicted) {
            let err = t
                .checked_sub(1)
                .map_or(0.0, |s| m.per_sim[i].mae_per_step[s]);
            p.push(picture(&w[t], format!("{} MAE {err:.4}", m.name)));
        }
        Panels(p)
    };
    for t in [steps / 2, steps] {
        panels(t).save_png(&dir.join(format!("vorticity_re{re}_step{t:03}.png")))?;
    }
    let mut gif = GifWriter::create(
        &dir.join(format!("rollout_re{re}.gif")),
        panels(0).size(),
        100,
    )?;
    for t in (0..=steps).step_by(steps.div_ceil(100).max(1)) {
        gif.add(&panels(t))?;
    }
    gif.finish()?;
    Ok(())
}
