//! Evaluation (docs/wake-flow.md §4, docs/wake-flow.md §7): rollouts of the source solver alone (SRC) or of the
//! hybrid solver with a trained corrector, from the first frame of every test simulation,
//! compared with the down-sampled reference frames.
//!
//! **Metric** (labelled "pooled MAE" everywhere): the mean of |v − v_ref| over every staggered
//! velocity sample of both components (`ny·(nx+1)` u faces and `(ny+1)·nx` v faces), in the
//! solver's units (cells per unit time). BK-tf instead sums the per-component means, about
//! twice this value. Rollouts run on a plain (not autodiff) device, so no graph is built.

use super::dataset::{LoadedSim, WakeData};
use super::hybrid::{correct, features, source_step};
use super::train::frame_state;
use crate::error::{DiffsimError, Result};
use crate::fluid::{FluidState, Simulation, host_item};
use crate::nn::Corrector;
use serde::{Deserialize, Serialize};

/// Velocity frames of one rollout on the host: `frames[t] = (u [ny, nx+1], v [ny+1, nx])`,
/// `t = 0..=steps` (frame 0 is the initial state).
pub type HostFrames = Vec<(Vec<f32>, Vec<f32>)>;

/// The errors of one model on one test simulation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimErrors {
    /// Reynolds number of the test simulation.
    pub reynolds: f64,
    /// Pooled MAE after steps `1..=steps`.
    pub mae_per_step: Vec<f64>,
    /// Mean of `mae_per_step`.
    pub mae: f64,
    /// Every sample of every step stayed finite.
    pub finite: bool,
}

/// The errors of one model on the test set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelErrors {
    /// `SRC`, `NON`, `SOL-m`.
    pub name: String,
    /// One entry per test simulation, in manifest order.
    pub per_sim: Vec<SimErrors>,
    /// Mean pooled MAE over the test simulations and steps.
    pub mae: f64,
    /// Wall time of the rollouts (s).
    pub wall_s: f64,
}

impl ModelErrors {
    /// Mean over the test simulations of the pooled MAE after each step.
    pub fn mae_per_step(&self) -> Vec<f64> {
        let n = self.per_sim.len() as f64;
        (0..self.per_sim.first().map_or(0, |s| s.mae_per_step.len()))
            .map(|t| self.per_sim.iter().map(|s| s.mae_per_step[t]).sum::<f64>() / n)
            .collect()
    }
}

/// The display name of a model trained with `unroll` hybrid steps per loss.
pub fn model_name(unroll: usize) -> String {
    if unroll == 1 {
        "NON".into()
    } else {
        format!("SOL-{unroll}")
    }
}

/// Pooled MAE of a state against reference frame `t`.
fn pooled_mae(u: &[f32], v: &[f32], reference: &LoadedSim, t: usize) -> f64 {
    let (nu, nv) = (u.len(), v.len());
    let (ru, rv) = (
        &reference.frames.u[t * nu..(t + 1) * nu],
        &reference.frames.v[t * nv..(t + 1) * nv],
    );
    let sum: f64 = u
        .iter()
        .zip(ru)
        .chain(v.iter().zip(rv))
        .map(|(a, b)| f64::from(a - b).abs())
        .sum();
    sum / (nu + nv) as f64
}

/// Checks that `steps`-step rollouts fit `sims` test simulations of (at least) `frames`
/// frames each.
pub fn check_steps(steps: usize, sims: usize, frames: usize) -> Result<()> {
    if sims == 0 || steps == 0 || steps >= frames {
        return Err(DiffsimError::config(format!(
            "{steps} evaluation steps need test simulations with more than {steps} frames (the dataset has {sims} with {frames})"
        )));
    }
    Ok(())
}

/// Rolls every test simulation out for `steps` steps from its first frame, with the source
/// solver alone (`net = None`, SRC) or the hybrid solver `P(s) + C(P(s), Re)`; `sims` are
/// the test simulations' source solvers ([`sims_for`](super::train::sims_for) with `test`,
/// on a plain device), which form one batch for the network. Returns the errors and, per
/// test simulation, the host frames of the rollout. `progress(step)` after every step.
pub fn rollout(
    data: &WakeData,
    sims: &[Simulation],
    name: &str,
    net: Option<&Corrector>,
    steps: usize,
    mut progress: impl FnMut(usize),
) -> Result<(ModelErrors, Vec<HostFrames>)> {
    let frames = data.test.iter().map(|s| s.entry.frames).min().unwrap_or(0);
    check_steps(steps, data.test.len(), frames)?;
    if sims.len() != data.test.len() {
        return Err(DiffsimError::config(
            "rollout needs one source simulation per test simulation",
        ));
    }
    let t0 = std::time::Instant::now();
    let refs: Vec<&Simulation> = sims.iter().collect();
    let reynolds: Vec<f64> = data.test.iter().map(|s| s.entry.reynolds).collect();
    let stats = data.manifest.stats;
    let mut states: Vec<FluidState> = sims
        .iter()
        .zip(&data.test)
        .map(|(sim, d)| frame_state(sim, d, 0))
        .collect();
    let host = |states: &[FluidState]| -> Vec<(Vec<f32>, Vec<f32>)> {
        states
            .iter()
            .map(|s| (host_item(&s.u, 0), host_item(&s.v, 0)))
            .collect()
    };
    let mut out: Vec<HostFrames> = host(&states).into_iter().map(|f| vec![f]).collect();
    for t in 1..=steps {
        states = source_step(&refs, states)?;
        if let Some(net) = net {
            let c = net.forward(features(&states, &reynolds, &stats));
            states = correct(states, c, &stats);
        }
        for (frames, f) in out.iter_mut().zip(host(&states)) {
            frames.push(f);
        }
        progress(t);
    }
    let per_sim: Vec<SimErrors> = out
        .iter()
        .zip(&data.test)
        .map(|(frames, reference)| {
            let mae_per_step: Vec<f64> = (1..=steps)
                .map(|t| pooled_mae(&frames[t].0, &frames[t].1, reference, t))
                .collect();
            SimErrors {
                reynolds: reference.entry.reynolds,
                mae: mae_per_step.iter().sum::<f64>() / steps as f64,
                finite: mae_per_step.iter().all(|e| e.is_finite()),
                mae_per_step,
            }
        })
        .collect();
    let mae = per_sim.iter().map(|s| s.mae).sum::<f64>() / per_sim.len() as f64;
    Ok((
        ModelErrors {
            name: name.into(),
            per_sim,
            mae,
            wall_s: t0.elapsed().as_secs_f64(),
        },
        out,
    ))
}

/// One acceptance criterion of docs/wake-flow.md §7 and whether it holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Criterion {
    /// What is required, with the measured numbers.
    pub what: String,
    /// Whether it holds.
    pub passed: bool,
}

/// The docs/wake-flow.md §7 acceptance criteria on the evaluated models (those present among `SRC`, `NON`,
/// `SOL-4`, `SOL-8`): no NaN; SRC > NON > SOL-4 ≥ SOL-8 in mean MAE; SOL-4 ≤ 0.5 × SRC on every
/// test Reynolds number; SOL-8 ≤ 0.85 × NON.
pub fn acceptance(models: &[ModelErrors]) -> Vec<Criterion> {
    let find = |n: &str| models.iter().find(|m| m.name == n);
    let mut out = vec![Criterion {
        what: "no NaN or inf in any rollout".into(),
        passed: models.iter().all(|m| m.per_sim.iter().all(|s| s.finite)),
    }];
    let order = ["SRC", "NON", "SOL-4", "SOL-8"];
    for pair in order.windows(2) {
        if let (Some(a), Some(b)) = (find(pair[0]), find(pair[1])) {
            // SOL-4 ≥ SOL-8; every other pair strictly.
            let (op, passed) = if pair[1] == "SOL-8" {
                ("≥", a.mae >= b.mae)
            } else {
                (">", a.mae > b.mae)
            };
            out.push(Criterion {
                what: format!(
                    "{} {op} {} in mean MAE ({:.4} vs {:.4})",
                    a.name, b.name, a.mae, b.mae
                ),
                passed,
            });
        }
    }
    if let (Some(src), Some(sol)) = (find("SRC"), find("SOL-4")) {
        for (s, r) in src.per_sim.iter().zip(&sol.per_sim) {
            out.push(Criterion {
                what: format!(
                    "SOL-4 ≤ 0.5 × SRC at Re {} ({:.4} vs {:.4}, ratio {:.3})",
                    s.reynolds,
                    r.mae,
                    s.mae,
                    r.mae / s.mae
                ),
                passed: r.mae <= 0.5 * s.mae,
            });
        }
    }
    if let (Some(non), Some(sol)) = (find("NON"), find("SOL-8")) {
        out.push(Criterion {
            what: format!(
                "SOL-8 ≤ 0.85 × NON ({:.4} vs {:.4}, ratio {:.3})",
                sol.mae,
                non.mae,
                sol.mae / non.mae
            ),
            passed: sol.mae <= 0.85 * non.mae,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, maes: &[f64]) -> ModelErrors {
        ModelErrors {
            name: name.into(),
            per_sim: maes
                .iter()
                .enumerate()
                .map(|(i, &m)| SimErrors {
                    reynolds: 100.0 * (i + 1) as f64,
                    mae_per_step: vec![m; 3],
                    mae: m,
                    finite: m.is_finite(),
                })
                .collect(),
            mae: maes.iter().sum::<f64>() / maes.len() as f64,
            wall_s: 0.0,
        }
    }

    fn failed(models: &[ModelErrors]) -> Vec<String> {
        acceptance(models)
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.what)
            .collect()
    }

    #[test]
    fn acceptance_follows_the_c1_criteria() {
        let good = [
            model("SRC", &[0.10, 0.12]),
            model("NON", &[0.06, 0.07]),
            model("SOL-4", &[0.04, 0.05]),
            model("SOL-8", &[0.04, 0.05]),
        ];
        assert_eq!(acceptance(&good).len(), 1 + 3 + 2 + 1);
        assert!(failed(&good).is_empty(), "{:?}", failed(&good));
        // SOL-4 above half of SRC on the second Re only.
        let mut one_re = good.clone();
        one_re[2] = model("SOL-4", &[0.04, 0.065]);
        one_re[3] = model("SOL-8", &[0.04, 0.05]);
        let f = failed(&one_re);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("Re 200"));
        // SOL-8 not better than 0.85 × NON, and NON worse than SRC.
        let bad = [
            model("SRC", &[0.10, 0.12]),
            model("NON", &[0.12, 0.13]),
            model("SOL-4", &[0.04, 0.05]),
            model("SOL-8", &[0.12, 0.12]),
        ];
        let f = failed(&bad);
        assert!(f.iter().any(|w| w.starts_with("SRC > NON")), "{f:?}");
        assert!(f.iter().any(|w| w.starts_with("SOL-4 ≥ SOL-8")), "{f:?}");
        assert!(f.iter().any(|w| w.starts_with("SOL-8 ≤ 0.85")), "{f:?}");
        // A NaN fails the first criterion.
        let nan = [model("SRC", &[0.1]), model("NON", &[f64::NAN])];
        assert!(failed(&nan)[0].starts_with("no NaN"));
    }

    #[test]
    fn names_and_mean_curves() {
        assert_eq!(model_name(1), "NON");
        assert_eq!(model_name(16), "SOL-16");
        let mut m = model("SOL-4", &[0.1, 0.3]);
        m.per_sim[1].mae_per_step = vec![0.3, 0.5, 0.7];
        let curve = m.mae_per_step();
        assert_eq!(curve.len(), 3);
        assert!((curve[2] - 0.4).abs() < 1e-12);
    }
}
