//! R1, Warp's inverse kinematics of a 4-link chain (`warp.examples.optim.example_inverse_kinematics`,
//! Warp 1.9.1): four links of 1 m on revolute joints about z (joint 0 at the origin, each next
//! one 1 m along its parent's x); the loss `|p − target|²` of the last link's origin `p`,
//! target (2, 1, 0). Warp runs gradient descent (rate 0.01) on its tape gradient for 512
//! iterations. The study reproduces that on diffsim's forward kinematics, then solves the same
//! problem by Levenberg–Marquardt on the 3 residuals (Jacobian by dual numbers), and within
//! the chain's joint limits (±60°) by projected Gauss–Newton, also for a folded target that
//! the limits keep out of reach.

use crate::articulation::{
    Articulation, Inertia, Joint, JointKind, Link, Transform, world_point, world_point_jacobian,
};
use crate::error::{DiffsimError, Result};
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::optim::{Trace, dense_gn_step, gauss_newton, gauss_newton_box, gradient_descent};
use crate::viz::line_plot;
use crate::viz::rigid::{Disc, discs_gif};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Settings (Warp's example as shipped, plus a folded target).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IkChainConfig {
    /// Links (each 1 m).
    pub links: usize,
    /// Warp's target for the last link's origin (m).
    pub target: [f64; 3],
    /// A target that needs more than the limits allow (m).
    pub folded_target: [f64; 3],
    /// The joint limits (deg, symmetric).
    pub limit_deg: f64,
    /// Gradient descent: rate and iterations (Warp's).
    pub learning_rate: f64,
    pub iterations: usize,
    /// Gauss–Newton: iterations at most and the damping μ of `(JᵀJ + μI)`.
    pub gn_iterations: usize,
    pub gn_damping: f64,
}

impl Default for IkChainConfig {
    fn default() -> Self {
        Self {
            links: 4,
            target: [2.0, 1.0, 0.0],
            folded_target: [0.0, 1.5, 0.0],
            limit_deg: 60.0,
            learning_rate: 0.01,
            iterations: 512,
            gn_iterations: 20,
            gn_damping: 1e-12,
        }
    }
}

/// The chain: link i a 1 × 0.2 × 0.2 m box of density 10 kg/m³ (the last a sphere of radius
/// 0.1 m; masses do not enter kinematics).
fn chain(n: usize) -> Articulation {
    let links = (0..n)
        .map(|i| {
            let placement = Transform {
                r: [if i == 0 { 0.0 } else { 1.0 }, 0.0, 0.0],
                ..Transform::identity()
            };
            let (m, com, d) = if i + 1 == n {
                let m = 10.0 * 4.0 / 3.0 * std::f64::consts::PI * 1e-3;
                (m, [0.0; 3], [0.4 * m * 0.01; 3])
            } else {
                let m = 10.0 * 1.0 * 0.2 * 0.2;
                (
                    m,
                    [0.5, 0.0, 0.0],
                    [m * 0.08 / 12.0, m * 1.04 / 12.0, m * 1.04 / 12.0],
                )
            };
            Link {
                name: format!("link{i}"),
                parent: i.checked_sub(1),
                joint: Joint {
                    armature: 0.1,
                    ..Joint::new(
                        JointKind::Revolute {
                            axis: [0.0, 0.0, 1.0],
                        },
                        placement,
                    )
                },
                inertia: Inertia {
                    m,
                    com,
                    ic: std::array::from_fn(|r| {
                        std::array::from_fn(|c| if r == c { d[r] } else { 0.0 })
                    }),
                },
            }
        })
        .collect();
    Articulation {
        links,
        gravity: [0.0; 3],
    }
}

/// The residual `p(q) − target` and its Jacobian (3 × n).
fn residual(m: &Articulation, q: &[f64], target: [f64; 3]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let (p, jac) = world_point_jacobian(m, q, m.links.len() - 1, [0.0; 3]);
    ((0..3).map(|a| p[a] - target[a]).collect(), jac)
}

/// One solve's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Solve {
    pub method: String,
    pub target: [f64; 3],
    pub trace: Trace,
    /// Final joint angles (deg).
    pub angles_deg: Vec<f64>,
    /// Iterations until the loss fell below 1e-12 (None: never).
    pub iterations_to_1e12: Option<usize>,
    /// Wall time (ms).
    pub ms: f64,
}

/// What the study measured.
#[derive(Clone, Debug, Serialize)]
pub struct IkChainResult {
    pub config: IkChainConfig,
    pub solves: Vec<Solve>,
}

fn solve(method: &str, target: [f64; 3], run: impl FnOnce() -> Result<Trace>) -> Result<Solve> {
    let t0 = std::time::Instant::now();
    let trace = run()?;
    Ok(Solve {
        method: method.into(),
        target,
        angles_deg: trace.params.iter().map(|x| x.to_degrees()).collect(),
        iterations_to_1e12: trace.losses.iter().position(|&l| l < 1e-12),
        ms: 1e3 * t0.elapsed().as_secs_f64(),
        trace,
    })
}

/// Runs the study (no pictures).
pub fn run(cfg: &IkChainConfig, progress: &dyn Progress) -> Result<IkChainResult> {
    let m = chain(cfg.links);
    let n = cfg.links;
    let q0 = vec![0.0; n];
    let lim = cfg.limit_deg.to_radians();
    let (lo, hi) = (vec![-lim; n], vec![lim; n]);
    progress.start("ik-chain", 4);
    let loss = |t: [f64; 3]| {
        let m = &m;
        move |q: &[f64]| -> Result<(f64, Vec<f64>)> {
            let (r, j) = residual(m, q, t);
            let g = (0..q.len())
                .map(|k| 2.0 * (0..3).map(|a| j[a][k] * r[a]).sum::<f64>())
                .collect();
            Ok((r.iter().map(|x| x * x).sum(), g))
        }
    };
    let gn_step = |t: [f64; 3]| {
        let m = &m;
        move |q: &[f64]| -> Result<(Vec<f64>, Vec<f64>)> {
            let (r, j) = residual(m, q, t);
            let step = dense_gn_step(&r, &j, cfg.gn_damping)?;
            Ok((r, step))
        }
    };
    let jac = |t: [f64; 3]| {
        let m = &m;
        move |q: &[f64]| -> Result<(Vec<f64>, Vec<Vec<f64>>)> { Ok(residual(m, q, t)) }
    };
    let mut solves = vec![solve(
        "gradient descent (Warp's recipe)",
        cfg.target,
        || {
            gradient_descent(
                &loss(cfg.target),
                &q0,
                cfg.learning_rate,
                cfg.iterations,
                None,
            )
        },
    )?];
    progress.set(1);
    solves.push(solve("Levenberg-Marquardt", cfg.target, || {
        gauss_newton(&gn_step(cfg.target), &q0, cfg.gn_iterations, 1e-28)
    })?);
    progress.set(2);
    for (k, t) in [cfg.target, cfg.folded_target].into_iter().enumerate() {
        solves.push(solve(
            "projected Gauss-Newton within the limits",
            t,
            || {
                gauss_newton_box(
                    &jac(t),
                    &q0,
                    (&lo, &hi),
                    cfg.gn_damping,
                    cfg.gn_iterations,
                    1e-28,
                )
            },
        )?);
        progress.set(3 + k as u64);
    }
    Ok(IkChainResult {
        config: cfg.clone(),
        solves,
    })
}

/// The study: `diffsim experiment ik-chain`.
pub struct IkChain;

impl Study for IkChain {
    const NAME: &'static str = "ik-chain";
    const ABOUT: &'static str = "R1, Warp's 4-link inverse kinematics: its 512 gradient-descent iterations reproduced, then Levenberg-Marquardt to round-off in a few, and within the joint limits";
    type Config = IkChainConfig;
    type Result = IkChainResult;

    fn full() -> IkChainConfig {
        IkChainConfig::default()
    }

    fn quick() -> IkChainConfig {
        IkChainConfig::default()
    }

    fn validate(cfg: &IkChainConfig) -> Result<()> {
        let fine = cfg.links >= 1
            && cfg.learning_rate.is_finite()
            && cfg.learning_rate > 0.0
            && cfg.limit_deg > 0.0
            && cfg.limit_deg <= 180.0
            && cfg.gn_damping >= 0.0
            && cfg
                .target
                .iter()
                .chain(&cfg.folded_target)
                .all(|x| x.is_finite());
        if !fine {
            return Err(DiffsimError::config(
                "ik-chain needs at least one link, a positive rate, limits in (0, 180] degrees, a non-negative damping and finite targets",
            ));
        }
        Ok(())
    }

    /// Runs [`run`] and writes `loss.png` (every solve's loss per iteration), `chain.png`
    /// (the chain's final poses in the x-y plane) and `descent.gif` (Warp's gradient descent,
    /// every 8th iteration).
    fn run(cfg: &IkChainConfig, dir: &Path, progress: &dyn Progress) -> Result<IkChainResult> {
        let r = run(cfg, progress)?;
        let series: Vec<(String, Vec<(f64, f64)>)> = r
            .solves
            .iter()
            .map(|s| {
                (
                    format!("{} → {:?}", s.method, s.target),
                    log_loss_curve(&s.trace.losses, 0),
                )
            })
            .collect();
        line_plot(
            &dir.join("loss.png"),
            "ik-chain: loss (log10) per iteration",
            "iteration",
            "log10 loss",
            &series,
        )?;
        let m = chain(cfg.links);
        let poses: Vec<(String, Vec<(f64, f64)>)> = r
            .solves
            .iter()
            .map(|s| {
                let q = &s.trace.params;
                let mut pts = vec![(0.0, 0.0)];
                pts.extend((0..cfg.links).map(|i| {
                    let p = world_point(
                        &m,
                        q,
                        i,
                        [if i + 1 == cfg.links { 0.0 } else { 1.0 }, 0.0, 0.0],
                    );
                    (p[0], p[1])
                }));
                (format!("{} → {:?}", s.method, s.target), pts)
            })
            .collect();
        line_plot(
            &dir.join("chain.png"),
            "ik-chain: final poses (x-y, m)",
            "x (m)",
            "y (m)",
            &poses,
        )?;
        descent_gif(cfg, &m, &dir.join("descent.gif"))?;
        Ok(r)
    }

    fn report(r: &IkChainResult, dir: &Path) -> String {
        let mut lines = Vec::new();
        for s in &r.solves {
            let l = &s.trace.losses;
            let at = |k: usize| l.get(k).map_or("–".into(), |x| format!("{x:.4e}"));
            lines.push(format!(
                "{} → {:?}: loss {} (iteration 1: {}, 10: {}, 100: {}, 200: {}) → {:.3e} after {} iterations; below 1e-12 after {}; angles {:?}°; {:.2} ms",
                s.method,
                s.target,
                at(0),
                at(1),
                at(10),
                at(100),
                at(200),
                l[l.len() - 1],
                s.trace.iterations,
                s.iterations_to_1e12.map_or("never".into(), |k| k.to_string()),
                s.angles_deg.iter().map(|a| (a * 1e3).round() / 1e3).collect::<Vec<_>>(),
                s.ms
            ));
        }
        lines.push(format!("pictures: {}", dir.display()));
        study_page(IkChain::NAME, &lines)
    }
}

/// Warp's gradient descent replayed (`q ← q − rate·2Jᵀr`), the chain drawn as discs at its
/// joints and tip every 8th iteration, the target marked.
fn descent_gif(cfg: &IkChainConfig, m: &Articulation, path: &Path) -> Result<()> {
    let pose = |q: &[f64]| -> Vec<Disc> {
        let mut discs = vec![Disc {
            center: [0.0, 0.0],
            radius: 0.08,
            spoke: [1.0, 0.0],
        }];
        discs.extend((0..cfg.links).map(|i| {
            let end = [if i + 1 == cfg.links { 0.0 } else { 1.0 }, 0.0, 0.0];
            let p = world_point(m, q, i, end);
            Disc {
                center: [p[0], p[1]],
                radius: 0.08,
                spoke: [1.0, 0.0],
            }
        }));
        discs
    };
    let mut q = vec![0.0; cfg.links];
    let mut frames = Vec::new();
    for k in 0..=cfg.iterations {
        if k % 8 == 0 {
            frames.push(pose(&q));
        }
        if k == cfg.iterations {
            break;
        }
        let (r, jac) = residual(m, &q, cfg.target);
        for (j, x) in q.iter_mut().enumerate() {
            *x -= cfg.learning_rate * 2.0 * (0..3).map(|a| jac[a][j] * r[a]).sum::<f64>();
        }
    }
    discs_gif(
        path,
        &frames,
        cfg.links,
        &[[cfg.target[0], cfg.target[1]]],
        "ik-chain: Warp's gradient descent (rate 0.01), every 8th iteration",
    )
}
