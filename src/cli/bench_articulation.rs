//! `diffsim bench articulation`: microseconds per call of RNEA, CRBA, ABA and the RNEA and
//! ABA derivatives on URDF robots (`--pinocchio FILE` sets them beside Pinocchio measured the
//! same day, `benches/pinocchio/dynamics.py`), and one (loss, gradient) through Warp's
//! cartpole for 100 and 1000 steps with both joint-space steppers (`--warp FILE`: beside Warp
//! 1.9.1's Featherstone tape, `benches/warp/cartpole_gradient.py`).

use super::bench::read_json_lines;
use super::progress::Bar;
use crate::articulation::assets::warp_cartpole;
use crate::articulation::{
    Articulation, JointStepper, Scheme, UrdfOptions, aba, aba_derivatives, crba, integrate,
    read_urdf, rnea, rnea_derivatives,
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

/// One (loss, gradient) through the cartpole.
#[derive(Debug, Clone, Serialize)]
pub struct CartpoleRow {
    pub scheme: Scheme,
    pub steps: usize,
    /// Milliseconds (median of rounds).
    pub ms: f64,
    /// Warp 1.9.1's forward + tape backward (ms), when given.
    pub warp_ms: Option<f64>,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct ArticulationBenchResult {
    pub dynamics: Vec<DynamicsRow>,
    pub cartpole: Vec<CartpoleRow>,
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
        s += "\nWarp's cartpole, one (loss, gradient) through N steps of 1/600 s\n\
              scheme          steps        ms | Warp 1.9.1 tape ms   ×Warp\n";
        for r in &self.cartpole {
            s += &format!(
                "{:<15} {:>5} {:>9.3} | {:>18}  {:>6}\n",
                format!("{:?}", r.scheme),
                r.steps,
                r.ms,
                opt(r.warp_ms, 1),
                opt(r.warp_ms.map(|w| w / r.ms), 0),
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

/// One (loss, gradient) of `Σq_N² + Σq̇_N²` in `q̇₀` through the cartpole.
fn cartpole_gradient(stepper: &JointStepper, steps: usize) -> Result<Vec<f64>> {
    let run = stepper.rollout(&[0.0, 0.3, 0.0], &[0.1, -0.2, 0.3], &[], steps)?;
    let mut bars = vec![(Vec::new(), Vec::new()); steps + 1];
    bars[steps] = (
        run.q[steps].iter().map(|x| 2.0 * x).collect(),
        run.v[steps].iter().map(|x| 2.0 * x).collect(),
    );
    Ok(stepper.adjoint(&run, &[], &bars)?.v0)
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
    let cart = warp_cartpole()?;
    let lengths = if args.steps.is_empty() {
        vec![100, 1000]
    } else {
        args.steps.clone()
    };
    let steppers = [
        JointStepper::new(&cart, 1.0 / 600.0, Scheme::SemiImplicit)?,
        JointStepper::new(&cart, 1.0 / 600.0, Scheme::ImplicitEuler)?,
    ];
    let total = args.rounds * (robots.len() * ALGORITHMS.len() + 2 * lengths.len());
    let progress = Bar::new("bench articulation", total as u64, args.json);
    let states: Vec<[Vec<f64>; 4]> = robots.iter().map(|(_, m)| random_state(m)).collect();
    let mut dyn_times = vec![vec![Vec::new(); ALGORITHMS.len()]; robots.len()];
    let mut grad_times = vec![Vec::new(); 2 * lengths.len()];
    let mut done = 0;
    for _ in 0..args.rounds {
        for (r, ((_, m), state)) in robots.iter().zip(&states).enumerate() {
            for (k, alg) in ALGORITHMS.iter().enumerate() {
                dyn_times[r][k].push(time_algorithm(m, state, alg));
                done += 1;
                progress.set(done);
            }
        }
        for (i, stepper) in steppers.iter().enumerate() {
            for (j, &n) in lengths.iter().enumerate() {
                cartpole_gradient(stepper, n)?;
                let repeats = (20_000 / n).clamp(3, 50);
                grad_times[i * lengths.len() + j]
                    .push(median_ms(repeats, &|| cartpole_gradient(stepper, n))?);
                done += 1;
                progress.set(done);
            }
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
    let mut cartpole = Vec::new();
    for (i, scheme) in [Scheme::SemiImplicit, Scheme::ImplicitEuler]
        .into_iter()
        .enumerate()
    {
        for (j, &steps) in lengths.iter().enumerate() {
            cartpole.push(CartpoleRow {
                scheme,
                steps,
                ms: median(grad_times[i * lengths.len() + j].clone()),
                warp_ms: warp.iter().find(|w| w.steps == steps).map(|w| w.ms),
            });
        }
    }
    Ok(ArticulationBenchResult { dynamics, cartpole })
}
