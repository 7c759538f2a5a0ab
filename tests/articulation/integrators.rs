//! The joint-space integrators: a pendulum's period at large amplitude against the elliptic
//! integral, backward Euler's energy decay against its linear recursion, and both schemes'
//! adjoints against central differences on the tree with every joint kind.

use crate::models::{pendulum, state, tree};
use diffsim::articulation::{Articulation, JointRollout, JointStepper, Scheme, integrate};

const G: f64 = 9.81;

/// The complete elliptic integral of the first kind `K(k)` by the arithmetic-geometric mean.
fn elliptic_k(k: f64) -> f64 {
    let (mut a, mut b) = (1.0, (1.0 - k * k).sqrt());
    // The mean converges quadratically; stop at a few ulps (1e-16 can oscillate forever).
    while (a - b).abs() > 4.0 * f64::EPSILON * a {
        (a, b) = (0.5 * (a + b), (a * b).sqrt());
    }
    std::f64::consts::PI / (2.0 * a)
}

/// The times at which `q` crosses zero downwards, linearly interpolated between steps.
fn downward_zeros(run: &JointRollout, h: f64) -> Vec<f64> {
    run.q
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0][0] > 0.0 && w[1][0] <= 0.0)
        .map(|(n, w)| (n as f64 + w[0][0] / (w[0][0] - w[1][0])) * h)
        .collect()
}

/// The semi-implicit step is symplectic: released from rest at θ₀, the pendulum's period
/// matches `4√(L/g)·K(sin(θ₀/2))` at 10°, 45°, 90° and 170° to O(h²).
#[test]
fn the_semi_implicit_pendulum_keeps_the_large_amplitude_period() {
    let (l, h) = (1.0, 1e-3);
    let model = pendulum(1.0, l);
    let stepper = JointStepper::new(&model, h, Scheme::SemiImplicit).unwrap();
    for degrees in [10.0f64, 45.0, 90.0, 170.0] {
        let theta = degrees.to_radians();
        let exact = 4.0 * (l / G).sqrt() * elliptic_k((0.5 * theta).sin());
        let steps = (1.4 * exact / h) as usize;
        let run = stepper.rollout(&[theta], &[0.0], &[], steps).unwrap();
        let zeros = downward_zeros(&run, h);
        let period = zeros[1] - zeros[0];
        let err = (period - exact).abs() / exact;
        println!("{degrees}°: period {period:.7} s, exact {exact:.7} s, relative {err:.1e}");
        assert!(err < 2e-5, "{degrees}°: {period} vs {exact}");
    }
}

/// Backward Euler on a small swing is the linear recursion `(I − hJ)⁻¹`, a rotation scaled by
/// `1/√(1 + ω²h²)`: the energy after `n` steps is `E₀(1 + ω²h²)⁻ⁿ`. Newton converges in at
/// most three iterations per step.
#[test]
fn backward_euler_damps_a_small_swing_at_its_closed_form_rate() {
    let (m, l, h, steps) = (0.7, 0.8, 0.01, 300);
    let model = pendulum(m, l);
    let stepper = JointStepper::new(&model, h, Scheme::ImplicitEuler).unwrap();
    let theta = 0.2f64.to_radians();
    let run = stepper.rollout(&[theta], &[0.0], &[], steps).unwrap();
    let energy = |q: f64, v: f64| 0.5 * m * l * l * v * v + m * G * l * (1.0 - q.cos());
    let w2 = G / l;
    let predicted = (1.0 + w2 * h * h).powi(-(steps as i32));
    let measured = energy(run.q[steps][0], run.v[steps][0]) / energy(theta, 0.0);
    let err = (measured - predicted).abs() / predicted;
    let iters = run.newton_iters.iter().max().unwrap();
    println!(
        "energy ratio {measured:.8}, closed form {predicted:.8}, relative {err:.1e}; Newton ≤ {iters}"
    );
    assert!(err < 1e-4);
    assert!(*iters <= 3);
}

/// The loss of the adjoint test: `Σₙ aₙ·vₙ` plus linear functions of the raw configuration
/// at two steps (quaternion entries included).
struct Loss {
    a: Vec<Vec<f64>>,
    /// (step, weights on `q`)
    w: Vec<(usize, Vec<f64>)>,
}

impl Loss {
    fn new(m: &Articulation, steps: usize) -> Self {
        let nv = m.nv();
        let a = (0..=steps)
            .map(|n| {
                (0..nv)
                    .map(|k| (0.37 * (n * nv + k) as f64).sin() / (1 + steps) as f64)
                    .collect()
            })
            .collect();
        let w = [steps / 2, steps]
            .into_iter()
            .map(|n| {
                let w = (0..m.nq())
                    .map(|k| (0.81 * (n + k) as f64 + 0.2).cos())
                    .collect();
                (n, w)
            })
            .collect();
        Self { a, w }
    }

    fn value(&self, run: &JointRollout) -> f64 {
        let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
        let speed: f64 = self.a.iter().zip(&run.v).map(|(a, v)| dot(a, v)).sum();
        speed + self.w.iter().map(|(n, w)| dot(w, &run.q[*n])).sum::<f64>()
    }

    /// `(q̄ₙ, v̄ₙ)`: the configuration weights pulled into the tangent space at `qₙ` by
    /// central differences through `qₙ ⊕ δ`.
    fn bars(&self, m: &Articulation, run: &JointRollout) -> Vec<(Vec<f64>, Vec<f64>)> {
        let mut bars: Vec<(Vec<f64>, Vec<f64>)> =
            self.a.iter().map(|a| (Vec::new(), a.clone())).collect();
        for (n, w) in &self.w {
            let q = &run.q[*n];
            let eps = 1e-6;
            let grad = (0..m.nv())
                .map(|k| {
                    let mut e = vec![0.0; m.nv()];
                    e[k] = eps;
                    let p = integrate(m, q, &e);
                    e[k] = -eps;
                    let mm = integrate(m, q, &e);
                    let f = |x: &[f64]| x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
                    (f(&p) - f(&mm)) / (2.0 * eps)
                })
                .collect();
            bars[*n].0 = grad;
        }
        bars
    }
}

/// Both schemes' adjoints against central differences over 40 steps of the tree with every
/// joint kind (free base falling and spinning, damping 0.3 and armature 0.05 on every joint):
/// the initial configuration (tangent space), the initial velocity and the controls of three
/// steps. The same adjoint run twice is bit-identical.
#[test]
fn both_adjoints_match_central_differences_on_the_tree() {
    let mut m = tree();
    for l in &mut m.links {
        l.joint.damping = 0.3;
    }
    let nv = m.nv();
    let (q0, v0, _) = state(&m);
    let (steps, h) = (40, 0.01);
    let controls: Vec<Vec<f64>> = (0..steps)
        .map(|n| {
            (0..nv)
                .map(|k| 1.5 * (0.23 * (n * nv + k) as f64).sin())
                .collect()
        })
        .collect();
    let loss = Loss::new(&m, steps);
    for scheme in [Scheme::SemiImplicit, Scheme::ImplicitEuler] {
        let stepper = JointStepper::new(&m, h, scheme).unwrap();
        let run = stepper.rollout(&q0, &v0, &controls, steps).unwrap();
        let bars = loss.bars(&m, &run);
        let grads = stepper.adjoint(&run, &controls, &bars).unwrap();
        assert_eq!(grads, stepper.adjoint(&run, &controls, &bars).unwrap());
        let eval = |q: &[f64], v: &[f64], u: &[Vec<f64>]| {
            loss.value(&stepper.rollout(q, v, u, steps).unwrap())
        };
        let eps = 1e-6;
        let mut worst = 0.0f64;
        let mut check = |ad: f64, fd: f64| worst = worst.max((ad - fd).abs() / (1.0 + fd.abs()));
        for k in 0..nv {
            let mut e = vec![0.0; nv];
            e[k] = eps;
            let qp = integrate(&m, &q0, &e);
            e[k] = -eps;
            let qm = integrate(&m, &q0, &e);
            check(
                grads.q0[k],
                (eval(&qp, &v0, &controls) - eval(&qm, &v0, &controls)) / (2.0 * eps),
            );
            let (mut vp, mut vm) = (v0.clone(), v0.clone());
            vp[k] += eps;
            vm[k] -= eps;
            check(
                grads.v0[k],
                (eval(&q0, &vp, &controls) - eval(&q0, &vm, &controls)) / (2.0 * eps),
            );
            for n in [0, 13, steps - 1] {
                let (mut up, mut um) = (controls.clone(), controls.clone());
                up[n][k] += eps;
                um[n][k] -= eps;
                check(
                    grads.controls[n][k],
                    (eval(&q0, &v0, &up) - eval(&q0, &v0, &um)) / (2.0 * eps),
                );
            }
        }
        println!(
            "{scheme:?}: largest relative difference {worst:.1e} over {} entries; Newton ≤ {}",
            5 * nv,
            run.newton_iters.iter().max().unwrap()
        );
        assert!(worst < 1e-6, "{scheme:?}: {worst}");
    }
}

/// Wrong lengths and a non-positive step are refused with one line.
#[test]
fn bad_states_and_steps_are_refused() {
    let m = pendulum(1.0, 1.0);
    let err = JointStepper::new(&m, 0.0, Scheme::SemiImplicit)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("time step must be positive"), "{err}");
    let stepper = JointStepper::new(&m, 0.01, Scheme::ImplicitEuler).unwrap();
    let err = stepper
        .rollout(&[0.1, 0.0], &[0.0], &[], 3)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("must have 1 and 1 entries") && !err.contains('\n'),
        "{err}"
    );
}
