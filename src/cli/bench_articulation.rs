//! `diffsim bench articulation`: microseconds per call of RNEA, CRBA, ABA and the RNEA and
//! ABA derivatives on URDF robots (`--pinocchio FILE` sets them beside Pinocchio measured the
//! same day, `benches/pinocchio/dynamics.py`), and one (loss, gradient) through Warp's
//! cartpole (`--warp FILE`: beside Warp 1.9.1's Featherstone tape,
//! `benches/warp/cartpole_gradient.py`) and through dm_control's cartpole and MJX's humanoid
//! with its foot contacts (`--mjx FILE`: beside MJX, `benches/mjx/cartpole_gradient.py`) for
//! 100 and 1000 steps with both joint-space steppers (the humanoid with implicit Euler only).

use super::bench::read_json_lines;
use super::progress::Bar;
use crate::articulation::assets::{mjx_humanoid_options, warp_cartpole};
use crate::articulation::{
    Articulation, JointStepper, LimitLaw, MjcfOptions, Scheme, UrdfOptions, aba, aba_derivatives,
    configuration_bar, crba, integrate, read_mjcf, read_urdf, rnea, rnea_derivatives,
};
use crate::error::{DiffsimError, Result};
use crate::optim::median_ms;
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;

/// Arguments of `diffsim bench articulation`.
#[derive(Debug, Clone, Args)]
pub struct ArticulationBenchArgs {
    /// A URDF robot with its root welded to the world (repeatable). Default: Warp's cartpole,
    /// which ships with diffsim.
    #[arg(long, value_name = "PATH")]
    pub urdf: Vec<PathBuf>,
    /// A URDF robot with a free-floating root (repeatable).
    #[arg(long, value_name = "PATH")]
    pub floating: Vec<PathBuf>,
    /// Steps of the cartpole gradient (repeatable). Default: 100 and 1000.
    #[arg(long)]
    pub steps: Vec<usize>,
    /// Rounds over every case (the median of the rounds is reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Pinocchio timings measured the same day on this machine: the JSON lines of
    /// `benches/pinocchio/dynamics.py`.
    #[arg(long, value_name = "FILE")]
    pub pinocchio: Option<PathBuf>,
    /// Warp 1.9.1 timings measured the same day on this machine: the JSON lines of
    /// `benches/warp/cartpole_gradient.py`.
    #[arg(long, value_name = "FILE")]
    pub warp: Option<PathBuf>,
    /// MJX timings measured the same day on this machine: the JSON lines of
    /// `benches/mjx/cartpole_gradient.py` (cartpole) and of the same with `--model humanoid`.
    #[arg(long, value_name = "FILE")]
    pub mjx: Option<PathBuf>,
    /// dm_control's cartpole (MJCF) for the comparison with MJX.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "data/robots/dm_control/cartpole.xml"
    )]
    pub dm_cartpole: PathBuf,
    /// MJX's humanoid (MJCF; its foot–floor pairs become contact points) for the comparison
    /// with MJX.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "data/robots/mjx/humanoid.xml"
    )]
    pub humanoid: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One line of `benches/pinocchio/dynamics.py`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PinocchioTiming {
    /// The URDF's file stem, `-floating` appended for a free root.
    pub robot: String,
    /// Microseconds per call, by algorithm (and `python_call_overhead`).
    pub us_per_call: BTreeMap<String, f64>,
}

/// One line of `benches/warp/cartpole_gradient.py`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarpCartpoleTiming {
    /// Steps.
    pub steps: usize,
    /// Median wall time of one forward + tape backward (ms).
    pub ms: f64,
}

/// One line of `benches/mjx/cartpole_gradient.py`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MjxTiming {
    /// `cartpole-ctrl` or `humanoid-ctrl`.
    pub case: String,
    /// Steps.
    pub steps: usize,
    /// Median wall time of one jitted value and gradient (ms).
    pub ms: f64,
    /// The first call's extra time (s): tracing and compiling.
    pub compile_s: f64,
    /// MJX's loss.
    pub loss: f64,
}

/// One algorithm on one robot.
#[derive(Debug, Clone, Serialize)]
pub struct DynamicsRow {
    pub robot: String,
    pub nv: usize,
    /// `rnea`, `crba`, `aba`, `rnea_derivatives` or `aba_derivatives`.
    pub algorithm: &'static str,
    /// Microseconds per call (median of rounds).
    pub us: f64,
    /// Pinocchio's, through its Python binding, when given.
    pub pinocchio_us: Option<f64>,
    /// Pinocchio's Python call overhead, when given (part of `pinocchio_us`).
    pub pinocchio_overhead_us: Option<f64>,
}

/// One (loss, gradient) through a rollout.
#[derive(Debug, Clone, Serialize)]
pub struct GradientRow {
    /// `warp-cartpole` (gradient in q̇₀, h = 1/600 s), `dm-cartpole` (gradient in the
    /// N × 1 controls, h = 0.01 s) or `mjx-humanoid` (in the N × 21 controls, h = 0.005 s,
    /// foot contact).
    pub case: &'static str,
    pub scheme: Scheme,
    pub steps: usize,
    /// Milliseconds (median of rounds).
    pub ms: f64,
    /// diffsim's loss.
    pub loss: f64,
    /// The anchor's time (ms): Warp 1.9.1's forward + tape backward, or MJX's jitted value
    /// and gradient, when given.
    pub anchor_ms: Option<f64>,
    /// MJX's compile time (s) and loss, when given.
    pub mjx_compile_s: Option<f64>,
    pub mjx_loss: Option<f64>,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct ArticulationBenchResult {
    pub dynamics: Vec<DynamicsRow>,
    pub gradients: Vec<GradientRow>,
}

impl ArticulationBenchResult {
    /// The report for people.
    pub fn human(&self) -> String {
        let opt =
            |x: Option<f64>, digits: usize| x.map_or("–".into(), |v| format!("{v:.digits$}"));
        let mut s = String::from(
            "articulation dynamics, µs per call (median of rounds)\n\
             robot                         nv  algorithm          diffsim | Pinocchio (−Python)   ×Pinocchio\n",
        );
        for r in &self.dynamics {
            let net = r
                .pinocchio_us
                .zip(r.pinocchio_overhead_us)
                .map(|(p, o)| (p - o).max(0.0));
            s += &format!(
                "{:<28} {:>3}  {:<16} {:>9.2} | {:>9} ({:>7})   {:>6}\n",
                r.robot,
                r.nv,
                r.algorithm,
                r.us,
                opt(r.pinocchio_us, 2),
                opt(net, 2),
                opt(net.map(|p| p / r.us), 2),
            );
        }
        s += "\none (loss, gradient) through N steps: Warp's cartpole in q̇₀ (h 1/600 s) against Warp 1.9.1's tape;\n\
              dm_control's cartpole in the N×1 controls (h 0.01 s) and MJX's humanoid in the N×21 controls\n\
              (h 0.005 s, foot contact) against MJX (jit; compile time apart)\n\
              case           scheme          steps        ms       loss | anchor ms  ×anchor  compile s  anchor loss\n";
        for r in &self.gradients {
            s += &format!(
                "{:<14} {:<15} {:>5} {:>9.3} {:>10.4} | {:>9}  {:>7}  {:>9}  {:>11}\n",
                r.case,
                format!("{:?}", r.scheme),
                r.steps,
                r.ms,
                r.loss,
                opt(r.anchor_ms, 1),
                opt(r.anchor_ms.map(|w| w / r.ms), 0),
                opt(r.mjx_compile_s, 1),
                opt(r.mjx_loss, 4),
            );
        }
        s
    }
}

/// A random state inside ±0.5 of neutral (tangent space), velocities, torques and
/// accelerations, seed 0.
fn random_state(m: &Articulation) -> [Vec<f64>; 4] {
    let mut rng = StdRng::seed_from_u64(0);
    let nv = m.nv();
    let mut draw = |s: f64| -> Vec<f64> { (0..nv).map(|_| rng.random_range(-s..s)).collect() };
    let d = draw(0.5);
    [
        integrate(m, &m.neutral(), &d),
        draw(1.0),
        draw(1.0),
        draw(1.0),
    ]
}

/// Microseconds per call of `f`, timed over about 50 ms.
fn us_per_call(f: &dyn Fn()) -> f64 {
    f();
    let t0 = std::time::Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < 0.05 {
        f();
        n += 1;
    }
    1e6 * t0.elapsed().as_secs_f64() / n as f64
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

const ALGORITHMS: [&str; 5] = ["rnea", "crba", "aba", "rnea_derivatives", "aba_derivatives"];

/// Times one algorithm on `m` at the state `[q, v, tau, a]`.
fn time_algorithm(m: &Articulation, state: &[Vec<f64>; 4], algorithm: &str) -> f64 {
    let [q, v, tau, a] = state;
    match algorithm {
        "rnea" => us_per_call(&|| {
            black_box(rnea(m, q, v, a));
        }),
        "crba" => us_per_call(&|| {
            black_box(crba(m, q));
        }),
        "aba" => us_per_call(&|| {
            black_box(aba(m, q, v, tau));
        }),
        "rnea_derivatives" => us_per_call(&|| {
            black_box(rnea_derivatives(m, q, v, a));
        }),
        _ => us_per_call(&|| {
            black_box(aba_derivatives(m, q, v, tau).ok());
        }),
    }
}

/// A gradient case: `Σq_N² + Σq̇_N²` after `steps` steps from `(q0, v0)`; with `control`
/// `(dofs, value)` every step applies `value` on each of `dofs` and the gradient is in those
/// controls (step-major), otherwise it is in `q̇₀`.
struct GradCase<'a> {
    case: &'static str,
    stepper: JointStepper<'a>,
    scheme: Scheme,
    steps: usize,
    q0: Vec<f64>,
    v0: Vec<f64>,
    control: Option<(Vec<usize>, f64)>,
}

impl GradCase<'_> {
    fn evaluate(&self) -> Result<(f64, Vec<f64>)> {
        let n = self.steps;
        let controls: Vec<Vec<f64>> = match &self.control {
            Some((dofs, u)) => (0..n)
                .map(|_| {
                    let mut c = vec![0.0; self.v0.len()];
                    dofs.iter().for_each(|&d| c[d] = *u);
                    c
                })
                .collect(),
            None => Vec::new(),
        };
        let run = self.stepper.rollout(&self.q0, &self.v0, &controls, n)?;
        let sq = |x: &[f64]| x.iter().map(|y| y * y).sum::<f64>();
        let loss = sq(&run.q[n]) + sq(&run.v[n]);
        let mut bars = vec![(Vec::new(), Vec::new()); n + 1];
        let model = self.stepper.model();
        let raw: Vec<f64> = run.q[n].iter().map(|x| 2.0 * x).collect();
        bars[n] = (
            configuration_bar(model, &run.q[n], &raw),
            run.v[n].iter().map(|x| 2.0 * x).collect(),
        );
        let g = self.stepper.adjoint(&run, &controls, &bars)?;
        Ok(match &self.control {
            Some((dofs, _)) => (
                loss,
                g.controls
                    .iter()
                    .flat_map(|c| dofs.iter().map(|&d| c[d]))
                    .collect(),
            ),
            None => (loss, g.v0),
        })
    }
}

/// Runs the benchmark.
pub fn bench_articulation(args: &ArticulationBenchArgs) -> Result<ArticulationBenchResult> {
    if args.rounds == 0 || args.steps.contains(&0) {
        return Err(DiffsimError::config(
            "--rounds and --steps must be at least 1",
        ));
    }
    let pinocchio: Vec<PinocchioTiming> = match &args.pinocchio {
        Some(f) => read_json_lines(f, "benches/pinocchio/dynamics.py")?,
        None => Vec::new(),
    };
    let warp: Vec<WarpCartpoleTiming> = match &args.warp {
        Some(f) => read_json_lines(f, "benches/warp/cartpole_gradient.py")?,
        None => Vec::new(),
    };
    let mut robots: Vec<(String, Articulation)> = Vec::new();
    if args.urdf.is_empty() && args.floating.is_empty() {
        robots.push(("cartpole".into(), warp_cartpole()?));
    }
    for (paths, floating) in [(&args.urdf, false), (&args.floating, true)] {
        for p in paths {
            let options = UrdfOptions {
                floating,
                ..UrdfOptions::default()
            };
            let stem = p
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            let name = if floating {
                format!("{stem}-floating")
            } else {
                stem
            };
            robots.push((name, read_urdf(p, &options)?));
        }
    }
    let mjx: Vec<MjxTiming> = match &args.mjx {
        Some(f) => read_json_lines(f, "benches/mjx/cartpole_gradient.py")?,
        None => Vec::new(),
    };
    let cart = warp_cartpole()?;
    let dm = read_mjcf(
        &args.dm_cartpole,
        &MjcfOptions {
            limits: Some(LimitLaw {
                ke: 1000.0,
                kd: 60.0,
                smoothing: 0.01,
            }),
            ..MjcfOptions::default()
        },
    )?;
    let lengths = if args.steps.is_empty() {
        vec![100, 1000]
    } else {
        args.steps.clone()
    };
    let mut cases = Vec::new();
    for scheme in [Scheme::SemiImplicit, Scheme::ImplicitEuler] {
        for &steps in &lengths {
            cases.push(GradCase {
                case: "warp-cartpole",
                stepper: JointStepper::new(&cart, 1.0 / 600.0, scheme)?,
                scheme,
                steps,
                q0: vec![0.0, 0.3, 0.0],
                v0: vec![0.1, -0.2, 0.3],
                control: None,
            });
        }
    }
    for scheme in [Scheme::SemiImplicit, Scheme::ImplicitEuler] {
        for &steps in &lengths {
            cases.push(GradCase {
                case: "dm-cartpole",
                stepper: JointStepper::new(&dm.articulation, dm.timestep, scheme)?,
                scheme,
                steps,
                q0: vec![0.0, 0.0],
                v0: vec![0.1, -0.2],
                control: dm.actuators.first().map(|a| (vec![a.dof], 0.05)),
            });
        }
    }
    let humanoid = read_mjcf(&args.humanoid, &mjx_humanoid_options())?;
    let (walker, contact) = (&humanoid.articulation, humanoid.contact.clone());
    let squat = humanoid.keyframes.first().map(|k| k.1.clone());
    let (Some(contact), Some(squat)) = (contact, squat) else {
        return Err(DiffsimError::config(format!(
            "'{}' has no foot contact pairs or no keyframe: not MJX's humanoid",
            args.humanoid.display()
        )));
    };
    let driven: Vec<usize> = humanoid.actuators.iter().map(|a| a.dof).collect();
    // Implicit Euler only: at MJX's 5 ms step the explicit friction of the semi-implicit
    // step (damping μ·f_n/s ≈ 7e4 N·s/m per foot point) diverges (step 369 from the squat).
    let scheme = Scheme::ImplicitEuler;
    for &steps in &lengths {
        cases.push(GradCase {
            case: "mjx-humanoid",
            stepper: JointStepper::new(walker, humanoid.timestep, scheme)?
                .with_contact(contact.clone())?,
            scheme,
            steps,
            q0: squat.clone(),
            v0: vec![0.0; walker.nv()],
            control: Some((driven.clone(), 0.05)),
        });
    }
    let total = args.rounds * (robots.len() * ALGORITHMS.len() + cases.len());
    let progress = Bar::new("bench articulation", total as u64, args.json);
    let states: Vec<[Vec<f64>; 4]> = robots.iter().map(|(_, m)| random_state(m)).collect();
    let mut dyn_times = vec![vec![Vec::new(); ALGORITHMS.len()]; robots.len()];
    let mut grad_times = vec![Vec::new(); cases.len()];
    let mut done = 0;
    for _ in 0..args.rounds {
        for (r, ((_, m), state)) in robots.iter().zip(&states).enumerate() {
            for (k, alg) in ALGORITHMS.iter().enumerate() {
                dyn_times[r][k].push(time_algorithm(m, state, alg));
                done += 1;
                progress.set(done);
            }
        }
        for (c, t) in cases.iter().zip(&mut grad_times) {
            c.evaluate()?;
            let repeats = (20_000 / c.steps).clamp(3, 50);
            t.push(median_ms(repeats, &|| c.evaluate())?);
            done += 1;
            progress.set(done);
        }
    }
    progress.finish();
    let mut dynamics = Vec::new();
    for ((name, m), times) in robots.iter().zip(dyn_times) {
        let theirs = pinocchio.iter().find(|p| &p.robot == name);
        for (alg, t) in ALGORITHMS.iter().zip(times) {
            dynamics.push(DynamicsRow {
                robot: name.clone(),
                nv: m.nv(),
                algorithm: alg,
                us: median(t),
                pinocchio_us: theirs.and_then(|p| p.us_per_call.get(*alg).copied()),
                pinocchio_overhead_us: theirs
                    .and_then(|p| p.us_per_call.get("python_call_overhead").copied()),
            });
        }
    }
    let mut gradients = Vec::new();
    for (c, t) in cases.iter().zip(grad_times) {
        let mjx_case = match c.case {
            "dm-cartpole" => Some("cartpole-ctrl"),
            "mjx-humanoid" => Some("humanoid-ctrl"),
            _ => None,
        };
        let theirs = mjx
            .iter()
            .find(|x| x.steps == c.steps && Some(x.case.as_str()) == mjx_case);
        let anchor_ms = if mjx_case.is_some() {
            theirs.map(|x| x.ms)
        } else {
            warp.iter().find(|w| w.steps == c.steps).map(|w| w.ms)
        };
        gradients.push(GradientRow {
            case: c.case,
            scheme: c.scheme,
            steps: c.steps,
            ms: median(t),
            loss: c.evaluate()?.0,
            anchor_ms,
            mjx_compile_s: theirs.map(|x| x.compile_s),
            mjx_loss: theirs.map(|x| x.loss),
        });
    }
    Ok(ArticulationBenchResult {
        dynamics,
        gradients,
    })
}
