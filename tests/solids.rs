//! Solids: spring forces and Jacobians against finite differences; the explicit (Warp) and
//! implicit (Newton + IFT; backward Euler and implicit midpoint) adjoints against f64 central
//! differences.

const SCHEMES: [Scheme; 2] = [Scheme::BackwardEuler, Scheme::Midpoint];

/// The implicit stepper of `m` with `scheme`.
fn stepper(m: &Model, dt: f64, scheme: Scheme) -> Implicit<'_> {
    Implicit::new(m, dt, NewtonConfig::default())
        .unwrap()
        .with_scheme(scheme)
        .unwrap()
}

use diffsim::solids::implicit::{Implicit, NewtonConfig, Scheme};
use diffsim::solids::{Model, Params, V3, explicit, scenes};

/// The cage with rest lengths 10–30% off equilibrium, so the particle moves.
fn cage() -> (Model, Vec<V3>, V3) {
    let (mut m, x, t) = scenes::spring_cage();
    for (k, s) in m.springs.iter_mut().enumerate() {
        s.rest *= 1.1 + 0.025 * k as f64;
    }
    (m, x, t)
}

fn loss(x: &[V3], target: V3) -> (f64, Vec<V3>) {
    diffsim::solids::point_loss(x, 0, target)
}

/// A loss of a rollout from `(model, x0, v0)`.
type RolloutLoss<'a> = dyn Fn(&Model, &[V3], &[V3]) -> f64 + 'a;

/// Central differences of `f` in every rest length, stiffness, damping and the free
/// particle's initial position and velocity, against `grad`.
fn check(name: &str, m: &Model, x0: &[V3], grad: &Params, f: &RolloutLoss<'_>) {
    // Steps relative to each parameter's size; pass iff |AD − FD| ≤ 1e-6·|FD| + 1e-9 (the
    // floor: the loss's round-off, ~1e-15 after Newton's tolerance, over the step 1e-6).
    let v0 = vec![[0.0; 3]; m.len()];
    let mut worst: f64 = 0.0;
    let mut probe = |what: String, ad: f64, plus: f64, minus: f64, eps: f64| {
        let fd = (plus - minus) / (2.0 * eps);
        let err = (ad - fd).abs() / (fd.abs() + 1e-4);
        worst = worst.max(err);
        assert!(
            (ad - fd).abs() <= 1e-6 * fd.abs() + 1e-9,
            "{name} {what}: adjoint {ad:e} vs FD {fd:e}"
        );
    };
    for k in 0..m.springs.len() {
        for (field, ad) in [
            ("rest", grad.rest[k]),
            ("ke", grad.ke[k]),
            ("kd", grad.kd[k]),
        ] {
            let s = m.springs[k];
            let eps = 1e-6
                * match field {
                    "rest" => s.rest,
                    "ke" => s.ke,
                    _ => s.kd,
                }
                .max(1.0);
            let with = |d: f64| {
                let mut m2 = m.clone();
                let s = &mut m2.springs[k];
                match field {
                    "rest" => s.rest += d,
                    "ke" => s.ke += d,
                    _ => s.kd += d,
                }
                f(&m2, x0, &v0)
            };
            probe(format!("{field}[{k}]"), ad, with(eps), with(-eps), eps);
        }
    }
    let eps = 1e-6;
    for a in 0..3 {
        let shift = |d: f64, vel: bool| {
            let (mut x, mut v) = (x0.to_vec(), v0.clone());
            if vel {
                v[0][a] += d
            } else {
                x[0][a] += d
            }
            f(m, &x, &v)
        };
        probe(
            format!("x0[{a}]"),
            grad.x0[0][a],
            shift(eps, false),
            shift(-eps, false),
            eps,
        );
        probe(
            format!("v0[{a}]"),
            grad.v0[0][a],
            shift(eps, true),
            shift(-eps, true),
            eps,
        );
    }
    println!("{name}: worst error {worst:.1e} (relative, floored at |FD| = 1e-4)");
}

#[test]
fn spring_force_jacobians_match_finite_differences() {
    let (m, x, _) = cage();
    let v: Vec<V3> = (0..m.len()).map(|p| [0.3 * p as f64, -0.2, 0.1]).collect();
    let s = &m.springs[3];
    let (jd, jw) = m.spring_jacobians(s, &x, Some(&v));
    let eps = 1e-7;
    for b in 0..3 {
        let (mut xp, mut xm, mut vp, mut vm) = (x.clone(), x.clone(), v.clone(), v.clone());
        xp[s.i][b] += eps;
        xm[s.i][b] -= eps;
        vp[s.i][b] += eps;
        vm[s.i][b] -= eps;
        let (fxp, fxm) = (
            m.spring_force(s, &xp, Some(&v)),
            m.spring_force(s, &xm, Some(&v)),
        );
        let (fvp, fvm) = (
            m.spring_force(s, &x, Some(&vp)),
            m.spring_force(s, &x, Some(&vm)),
        );
        for a in 0..3 {
            assert!((jd[a][b] - (fxp[a] - fxm[a]) / (2.0 * eps)).abs() < 1e-6);
            assert!((jw[a][b] - (fvp[a] - fvm[a]) / (2.0 * eps)).abs() < 1e-6);
        }
    }
    // Energy gradient = −force on particle i.
    let mut f = vec![[0.0; 3]; m.len()];
    m.add_elastic_forces(0, &x, &mut f);
    let mut xp = x.clone();
    xp[0][1] += 1e-7;
    let mut xm = x.clone();
    xm[0][1] -= 1e-7;
    let de = (m.energy(0, &xp) - m.energy(0, &xm)) / 2e-7;
    assert!((de + f[0][1]).abs() < 1e-6, "{de} vs {}", -f[0][1]);
}

#[test]
fn explicit_adjoint_matches_finite_differences() {
    let (m, x0, target) = cage();
    let (dt, steps) = (1.0 / 30.0, 30);
    let v0 = vec![[0.0; 3]; m.len()];
    let run = explicit::rollout(&m, &x0, &v0, dt, steps);
    let (_, gx) = loss(&run.last().0, target);
    let grad = explicit::adjoint(&m, &run, dt, &gx, &vec![[0.0; 3]; m.len()]);
    check("explicit", &m, &x0, &grad, &|m, x, v| {
        loss(&explicit::rollout(m, x, v, dt, steps).last().0, target).0
    });
}

#[test]
fn implicit_adjoint_matches_finite_differences() {
    for scheme in SCHEMES {
        let (m, x0, target) = cage();
        let (dt, steps) = (1.0 / 30.0, 60);
        let v0 = vec![[0.0; 3]; m.len()];
        let sim = stepper(&m, dt, scheme);
        let r = sim.rollout(&x0, &v0, steps).unwrap();
        assert!(
            r.newton_iters.iter().all(|&k| (1..=8).contains(&k)),
            "{:?}",
            r.newton_iters
        );
        let (_, gx) = loss(&r.run.last().0, target);
        let grad = sim.adjoint(&r, &gx, &vec![[0.0; 3]; m.len()]);
        check("implicit", &m, &x0, &grad, &|m, x, v| {
            let sim = stepper(m, dt, scheme);
            loss(&sim.rollout(x, v, steps).unwrap().run.last().0, target).0
        });
    }
}

/// The cage with a smooth control force on its particle in each of `steps` steps.
fn controlled_cage(steps: usize) -> (Model, Vec<V3>, V3) {
    let (mut m, x0, target) = cage();
    m.controls = (0..steps)
        .map(|n| {
            let t = n as f64 / steps as f64;
            let mut u = vec![[0.0; 3]; m.len()];
            u[0] = [0.5 * (6.0 * t).sin(), -0.3 + 0.2 * t, 0.4 * (4.0 * t).cos()];
            u
        })
        .collect();
    (m, x0, target)
}

/// Central differences in the control force of steps 0, 1, N/2 and N−1 (every axis) against
/// `grad.controls` (same pass rule as [`check`]); a fixed particle's control has no effect
/// and no gradient.
fn check_controls(name: &str, m: &Model, x0: &[V3], grad: &Params, f: &RolloutLoss<'_>) {
    let (steps, v0) = (m.controls.len(), vec![[0.0; 3]; m.len()]);
    assert_eq!(grad.controls.len(), steps);
    let (eps, mut largest) = (1e-6, 0.0f64);
    for n in [0, 1, steps / 2, steps - 1] {
        for a in 0..3 {
            let with = |d: f64| {
                let mut m2 = m.clone();
                m2.controls[n][0][a] += d;
                f(&m2, x0, &v0)
            };
            let fd = (with(eps) - with(-eps)) / (2.0 * eps);
            let ad = grad.controls[n][0][a];
            assert!(
                (ad - fd).abs() <= 1e-6 * fd.abs() + 1e-9,
                "{name} control[{n}][{a}]: adjoint {ad:e} vs FD {fd:e}"
            );
            assert!(
                fd.abs() > 1e-8,
                "{name} control[{n}][{a}]: FD {fd:e} should matter"
            );
            largest = largest.max(fd.abs());
        }
        assert_eq!(grad.controls[n][1], [0.0; 3], "{name}: fixed particle");
    }
    assert!(
        largest > 1e-4,
        "{name}: largest control derivative {largest:e}"
    );
}

#[test]
fn control_gradients_match_finite_differences() {
    let zero = |m: &Model| vec![[0.0; 3]; m.len()];
    let dt = 1.0 / 30.0;
    let (m, x0, target) = controlled_cage(30);
    let run = explicit::rollout(&m, &x0, &zero(&m), dt, 30);
    let grad = explicit::adjoint(&m, &run, dt, &loss(&run.last().0, target).1, &zero(&m));
    check_controls("explicit", &m, &x0, &grad, &|m, x, v| {
        loss(&explicit::rollout(m, x, v, dt, 30).last().0, target).0
    });
    for scheme in SCHEMES {
        let (m, x0, target) = controlled_cage(40);
        let sim = stepper(&m, dt, scheme);
        let r = sim.rollout(&x0, &zero(&m), 40).unwrap();
        let grad = sim.adjoint(&r, &loss(&r.run.last().0, target).1, &zero(&m));
        check_controls(&format!("{scheme:?}"), &m, &x0, &grad, &|m, x, v| {
            loss(
                &stepper(m, dt, scheme)
                    .rollout(x, v, 40)
                    .unwrap()
                    .run
                    .last()
                    .0,
                target,
            )
            .0
        });
    }
}

/// One particle (m = 1) on an undamped spring (ke = 900, ω = 30 rad/s) to a fixed point,
/// stretched by 0.1 along the spring, stepped at ω·dt = 1.5 for 100 steps (~24 periods):
/// implicit midpoint keeps the oscillation's energy, backward Euler loses nearly all of it
/// (its factor per step is 1/(1 + ω²dt²) = 0.31), and the midpoint's amplitude matches the
/// exact discrete solution (a rotation by 2·atan(ω·dt/2) per step).
#[test]
fn midpoint_keeps_a_stiff_oscillation_that_backward_euler_damps() {
    let (ke, rest, dt, steps) = (900.0, 1.0, 0.05, 100);
    let m = Model {
        mass: vec![1.0, 0.0],
        springs: vec![diffsim::solids::Spring {
            i: 0,
            j: 1,
            ke,
            kd: 0.0,
            rest,
        }],
        gravity: [0.0; 3],
        ..Model::default()
    };
    let (x0, v0) = (vec![[1.1, 0.0, 0.0], [0.0; 3]], vec![[0.0; 3]; 2]);
    let energy = |s: &(Vec<V3>, Vec<V3>)| {
        0.5 * s.1[0][0].powi(2) + 0.5 * ke * (s.0[0][0] - rest).powi(2) + 0.5 * s.1[0][1].powi(2)
    };
    let e0 = energy(&(x0.clone(), v0.clone()));
    let run = |scheme| stepper(&m, dt, scheme).rollout(&x0, &v0, steps).unwrap();
    let (mid, be) = (run(Scheme::Midpoint), run(Scheme::BackwardEuler));
    let e_mid = energy(mid.run.last());
    let e_be = energy(be.run.last());
    assert!((e_mid - e0).abs() <= 1e-9 * e0, "midpoint: {e_mid} vs {e0}");
    assert!(e_be < 1e-6 * e0, "backward Euler kept {e_be} of {e0}");
    // x − rest = 0.1·cos(n·θ) with tan(θ/2) = ω·dt/2.
    let theta = 2.0 * (30.0 * dt / 2.0f64).atan();
    let exact = rest + 0.1 * (steps as f64 * theta).cos();
    let got = mid.run.last().0[0][0];
    assert!((got - exact).abs() < 1e-9, "{got} vs {exact}");
}

#[test]
fn segment_checkpointing_gives_the_taped_gradients() {
    use diffsim::solids::segmented_gradient;
    // Controls for the first 50 steps: segments must pick their own steps' controls.
    let (m, x0, target) = controlled_cage(50);
    let v0 = vec![[0.0; 3]; m.len()];
    let zero = vec![[0.0; 3]; m.len()];
    let seed = |x: &[V3], _: &[V3]| (loss(x, target).1, zero.clone());
    // Explicit, 30 steps.
    let dt = 1.0 / 30.0;
    let run = explicit::rollout(&m, &x0, &v0, dt, 30);
    let tape = explicit::adjoint(&m, &run, dt, &loss(&run.last().0, target).1, &zero);
    let explicit_integrator = explicit::Explicit { model: &m, dt };
    for k in [1, 4, 7, 30, 50] {
        let (g, held) = segmented_gradient(&explicit_integrator, (&x0, &v0), 30, k, seed).unwrap();
        assert!(held <= 30usize.div_ceil(k) + k + 1);
        for (a, b) in g.rest.iter().zip(&tape.rest) {
            assert!(
                (a - b).abs() <= 1e-13 * b.abs().max(1e-3),
                "k={k}: {a} vs {b}"
            );
        }
        assert!((g.x0[0][1] - tape.x0[0][1]).abs() <= 1e-12);
        assert_eq!(g.controls, tape.controls, "k={k}");
    }
    // Implicit, 60 steps (each segment refactorises its own steps).
    let sim = Implicit::new(&m, dt, NewtonConfig::default()).unwrap();
    let r = sim.rollout(&x0, &v0, 60).unwrap();
    let tape = sim.adjoint(&r, &loss(&r.run.last().0, target).1, &zero);
    let (g, held) = segmented_gradient(&sim, (&x0, &v0), 60, 8, seed).unwrap();
    assert!(held <= 8 + 8 + 1);
    for (a, b) in g.rest.iter().zip(&tape.rest) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-3), "{a} vs {b}");
    }
    let flat =
        |p: &Params| -> Vec<f64> { p.controls.iter().flatten().flatten().copied().collect() };
    for (a, b) in flat(&g).iter().zip(&flat(&tape)) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-3), "{a} vs {b}");
    }
    assert!(tape.controls.iter().all(|u| u[0] != [0.0; 3]));
}

#[test]
fn contact_force_jacobians_match_finite_differences() {
    use diffsim::solids::contact::{Contact, Shape, force};
    let c = Contact {
        ke: 1e4,
        kd: 10.0,
        mu: 0.2,
        smoothing: 1e-2,
    };
    let plane = Shape::Plane {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
    };
    let boxed = Shape::Box {
        center: [2.0, 1.0, 0.0],
        half: [0.25, 1.0, 1.0],
    };
    // Plane: touching, stick (slow tangential) and slip (fast); box: face, edge, corner, inside.
    let cases = [
        (plane, [0.3, -0.004, 0.1], [0.001, -0.5, 0.002]),
        (plane, [0.3, 0.002, 0.1], [2.0, -0.5, 1.0]),
        (boxed, [1.745, 1.2, 0.3], [3.0, 0.4, 0.1]),
        (boxed, [1.745, 2.003, 0.3], [3.0, -0.4, 0.1]),
        (boxed, [1.745, 2.004, 1.003], [1.0, -0.4, -0.7]),
        (boxed, [1.76, 1.5, 0.2], [1.0, 0.3, 0.0]),
    ];
    for (shape, x, v) in cases {
        let (_, jx, jv) = force(&c, &shape, x, v);
        let eps = 1e-7;
        for b in 0..3 {
            let shift = |p: [f64; 3], d: f64| {
                let mut q = p;
                q[b] += d;
                q
            };
            let (fxp, _, _) = force(&c, &shape, shift(x, eps), v);
            let (fxm, _, _) = force(&c, &shape, shift(x, -eps), v);
            let (fvp, _, _) = force(&c, &shape, x, shift(v, eps));
            let (fvm, _, _) = force(&c, &shape, x, shift(v, -eps));
            for a in 0..3 {
                let (dx, dv) = (
                    (fxp[a] - fxm[a]) / (2.0 * eps),
                    (fvp[a] - fvm[a]) / (2.0 * eps),
                );
                assert!(
                    (jx[a][b] - dx).abs() <= 1e-5 * dx.abs().max(1.0),
                    "{shape:?} x {x:?}: ∂f{a}/∂x{b} {} vs {dx}",
                    jx[a][b]
                );
                assert!(
                    (jv[a][b] - dv).abs() <= 1e-5 * dv.abs().max(1.0),
                    "{shape:?} x {x:?}: ∂f{a}/∂v{b} {} vs {dv}",
                    jv[a][b]
                );
            }
        }
    }
}

#[test]
fn gradient_through_contact_matches_finite_differences() {
    // The Warp bounce (wall and ground, friction), 288 steps of 1/480 s: ∂loss/∂v₀.
    let (m, x0, v0, target) = scenes::bounce(1e-2);
    let dt = 1.0 / 480.0;
    let run = explicit::rollout(&m, &x0, &v0, dt, 288);
    let (l, gx) = loss(&run.last().0, target);
    assert!(l.is_finite(), "loss {l}");
    println!("bounce loss at v0: {l}");
    let g = explicit::adjoint(&m, &run, dt, &gx, &[[0.0; 3]]);
    let eps = 1e-6;
    for a in 0..2 {
        let at = |d: f64| {
            let mut v = v0.clone();
            v[0][a] += d;
            loss(&explicit::rollout(&m, &x0, &v, dt, 288).last().0, target).0
        };
        let fd = (at(eps) - at(-eps)) / (2.0 * eps);
        assert!(
            (g.v0[0][a] - fd).abs() <= 1e-5 * fd.abs() + 1e-8,
            "v0[{a}]: {} vs {fd}",
            g.v0[0][a]
        );
    }
}

#[test]
fn gradient_through_sliding_then_sticking_friction_matches_finite_differences() {
    // A particle thrown along the ground with friction, started on the plane itself (not at
    // its resting depth): it slides, then sticks (|v_t| falls below the smoothing speed)
    // within the 0.5 s horizon.
    let (m, _, v0) = sliding_particle();
    let x0 = vec![[0.0, 0.0, 0.0]];
    let (dt, steps) = (1.0 / 480.0, 240);
    let run = explicit::rollout(&m, &x0, &v0, dt, steps);
    let end_speed = run.last().1[0][0].hypot(run.last().1[0][2]);
    assert!(end_speed < 1e-2, "still sliding at {end_speed}");
    let target = [0.4, 0.0, 0.2];
    let g = explicit::adjoint(&m, &run, dt, &loss(&run.last().0, target).1, &[[0.0; 3]]);
    let eps = 1e-6;
    for a in [0, 2] {
        let at = |d: f64| {
            let mut v = v0.clone();
            v[0][a] += d;
            loss(&explicit::rollout(&m, &x0, &v, dt, steps).last().0, target).0
        };
        let fd = (at(eps) - at(-eps)) / (2.0 * eps);
        assert!(
            (g.v0[0][a] - fd).abs() <= 1e-5 * fd.abs() + 1e-8,
            "v0[{a}]: {} vs {fd}",
            g.v0[0][a]
        );
    }
}

/// A random mass-spring network: `n` particles (the first two fixed), springs between random
/// pairs with random stiffness, damping and rest lengths (off equilibrium), gravity.
fn random_network(seed: &[f64], n: usize) -> (Model, Vec<V3>) {
    let at = |k: usize| seed[k % seed.len()];
    let x: Vec<V3> = (0..n)
        .map(|p| [at(3 * p), at(3 * p + 1) + p as f64 * 0.3, at(3 * p + 2)])
        .collect();
    let mut springs = Vec::new();
    for i in 0..n {
        for j in (i + 1)..n {
            if (i + j) % 2 == 1 || j == i + 1 {
                let d: f64 = (0..3)
                    .map(|a| (x[i][a] - x[j][a]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                springs.push(diffsim::solids::Spring {
                    i,
                    j,
                    ke: 20.0 + 40.0 * at(i + 2 * j).abs(),
                    kd: 0.5 + at(2 * i + j).abs(),
                    rest: d * (0.8 + 0.4 * at(i * j + 1).abs()),
                });
            }
        }
    }
    let mass = (0..n)
        .map(|p| if p < 2 { 0.0 } else { 0.5 + at(p + 7).abs() })
        .collect();
    let (m, _, _) = scenes::spring_cage();
    (
        Model {
            mass,
            springs,
            gravity: [0.0, -9.8, 0.0],
            ..m
        },
        x,
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
    /// Explicit and implicit adjoints equal central differences on random networks.
    #[test]
    fn adjoints_match_finite_differences_on_random_networks(
        seed in proptest::collection::vec(-1.0f64..1.0, 12),
        n in 3usize..7,
    ) {
        let (m, x0) = random_network(&seed, n);
        let target = [0.1, 0.2, -0.1];
        let zero = vec![[0.0; 3]; m.len()];
        let dt = 1.0 / 60.0;
        let run = explicit::rollout(&m, &x0, &zero, dt, 20);
        let g = explicit::adjoint(&m, &run, dt, &loss(&run.last().0, target).1, &zero);
        check("random explicit", &m, &x0, &g, &|m, x, v| {
            loss(&explicit::rollout(m, x, v, dt, 20).last().0, target).0
        });
        let sim = Implicit::new(&m, dt, NewtonConfig::default()).unwrap();
        let r = sim.rollout(&x0, &zero, 20).unwrap();
        let g = sim.adjoint(&r, &loss(&r.run.last().0, target).1, &zero);
        check("random implicit", &m, &x0, &g, &|m, x, v| {
            let sim = Implicit::new(m, dt, NewtonConfig::default()).unwrap();
            loss(&sim.rollout(x, v, 20).unwrap().run.last().0, target).0
        });
    }
}

/// Two stable Neo-Hookean tetrahedra sharing a face, three nodes fixed, stretched and sagging
/// under gravity.
fn tet_block() -> (Model, Vec<V3>) {
    use diffsim::solids::fem::Tet;
    let x: Vec<V3> = vec![
        [0.0, 0.0, 0.0],
        [0.1, 0.0, 0.0],
        [0.0, 0.1, 0.0],
        [0.03, 0.03, 0.1],
        [0.08, 0.09, -0.07],
    ];
    let mut t0 = Tet::new([0, 1, 2, 3], &x, 5e3, 2e4).unwrap();
    let mut t1 = Tet::new([0, 2, 1, 4], &x, 7e3, 1e4).unwrap();
    t0.activation = 0.05;
    t1.activation = -0.02;
    let (m, _, _) = scenes::spring_cage();
    let model = Model {
        mass: vec![0.0, 0.0, 0.0, 0.2, 0.3],
        springs: Vec::new(),
        gravity: [0.0, -9.8, 0.0],
        tets: vec![t0, t1],
        ..m
    };
    // A deformed start.
    let mut x0 = x;
    x0[3] = [0.04, 0.02, 0.12];
    x0[4] = [0.07, 0.1, -0.09];
    (model, x0)
}

/// Stable Neo-Hookean with `α = 1 + 3μ/(4λ)` is rest-stable: the undeformed soft grid of B4
/// carries no elastic force (with `α = 1 + μ/λ`, `P(I) = −μ/4·I` and the corner nodes feel newtons).
#[test]
fn soft_grid_at_rest_feels_no_elastic_force() {
    let (m, x0, _, _) = scenes::softbody_material(1e-3).unwrap();
    assert_eq!((m.len(), m.tets.len()), (27, 40));
    let volume: f64 = m.tets.iter().map(|t| t.volume).sum();
    assert!((volume - 0.008).abs() < 1e-15, "{volume}");
    let mut f = vec![[0.0; 3]; m.len()];
    m.add_elastic_forces(0, &x0, &mut f);
    let worst = f.iter().flatten().fold(0.0f64, |a, b| a.max(b.abs()));
    assert!(worst < 1e-9, "{worst}");
}

#[test]
fn tet_forces_jacobians_and_parameter_gradients_match_finite_differences() {
    let (m, x) = tet_block();
    let t = &m.tets[0];
    let eps = 1e-7;
    let mut f = vec![[0.0; 3]; m.len()];
    t.add_forces(&x, &mut f);
    let u: Vec<V3> = (0..m.len())
        .map(|p| [0.3 - 0.1 * p as f64, 0.2, -0.5 + 0.2 * p as f64])
        .collect();
    let mut jtu = vec![[0.0; 3]; m.len()];
    t.add_force_jacobian_transpose(&x, &u, &mut jtu);
    let udotf = |x: &[V3], t: &diffsim::solids::fem::Tet| {
        let mut f = vec![[0.0; 3]; x.len()];
        t.add_forces(x, &mut f);
        (0..x.len())
            .map(|p| (0..3).map(|a| u[p][a] * f[p][a]).sum::<f64>())
            .sum::<f64>()
    };
    for p in 0..4 {
        for a in 0..3 {
            let shifted = |d: f64| {
                let mut y = x.clone();
                y[t.nodes[p]][a] += d;
                y
            };
            let de = (t.energy(&shifted(eps)) - t.energy(&shifted(-eps))) / (2.0 * eps);
            let n = t.nodes[p];
            assert!(
                (f[n][a] + de).abs() <= 1e-5 * de.abs().max(1.0),
                "force {n},{a}: {} vs {}",
                f[n][a],
                -de
            );
            let dj = (udotf(&shifted(eps), t) - udotf(&shifted(-eps), t)) / (2.0 * eps);
            assert!(
                (jtu[n][a] - dj).abs() <= 1e-5 * dj.abs().max(1.0),
                "Jᵀu {n},{a}: {} vs {dj}",
                jtu[n][a]
            );
        }
    }
    // The element Hessian blocks apply as −(∂f/∂x)ᵀ.
    let hb = t.hessian_blocks(&x, false);
    for (a, &na) in t.nodes.iter().enumerate() {
        for i in 0..3 {
            let hu: f64 = (0..4)
                .map(|b| {
                    (0..3)
                        .map(|c| hb[a][b][i][c] * u[t.nodes[b]][c])
                        .sum::<f64>()
                })
                .sum();
            assert!(
                (hu + jtu[na][i]).abs() <= 1e-9 * hu.abs().max(1.0),
                "H·u {na},{i}: {hu} vs {}",
                -jtu[na][i]
            );
        }
    }
    let g = t.parameter_gradients(&x, &u);
    for (k, name) in ["mu", "lambda", "activation"].iter().enumerate() {
        let h = [1e-3, 1e-3, 1e-7][k];
        let at = |d: f64| {
            let mut t2 = *t;
            match k {
                0 => t2.mu += d,
                1 => t2.lambda += d,
                _ => t2.activation += d,
            }
            udotf(&x, &t2)
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        assert!(
            (g[k] - fd).abs() <= 1e-5 * fd.abs().max(1e-6),
            "{name}: {} vs {fd}",
            g[k]
        );
    }
}

/// The 12×12 element Hessian as a dense row-major matrix.
fn dense_tet_hessian(hb: &[[[[f64; 3]; 3]; 4]; 4]) -> faer::Mat<f64> {
    faer::Mat::from_fn(12, 12, |r, c| hb[r / 3][c / 3][r % 3][c % 3])
}

fn eigenvalues(h: &faer::Mat<f64>) -> Vec<f64> {
    h.self_adjoint_eigenvalues(faer::Side::Lower).unwrap()
}

/// Newton's fallback: the projected element Hessian is the exact one where that is positive
/// semi-definite, and otherwise the exact one plus a positive semi-definite correction that
/// lifts exactly its negative eigenvalues to 0.
#[test]
fn projected_tet_hessian_is_the_psd_part_of_the_exact_one() {
    let (m, x) = tet_block();
    let t = &m.tets[0];
    let exact = dense_tet_hessian(&t.hessian_blocks(&x, false));
    let projected = dense_tet_hessian(&t.hessian_blocks(&x, true));
    let scale = eigenvalues(&exact)
        .iter()
        .fold(0.0f64, |a, b| a.max(b.abs()));
    assert!(
        eigenvalues(&exact)[0] >= -1e-10 * scale,
        "the test shape must be stable"
    );
    assert!((&projected - &exact).norm_max() <= 1e-10 * scale);
    // Squash the tetrahedron towards inversion: node 3 pushed through the opposite face.
    let mut squashed = x.clone();
    let centroid: Vec<f64> = (0..3)
        .map(|a| (0..3).map(|k| x[t.nodes[k]][a]).sum::<f64>() / 3.0)
        .collect();
    for a in 0..3 {
        let top = &mut squashed[t.nodes[3]][a];
        *top = centroid[a] + 0.05 * (*top - centroid[a]);
    }
    let exact = dense_tet_hessian(&t.hessian_blocks(&squashed, false));
    let projected = dense_tet_hessian(&t.hessian_blocks(&squashed, true));
    let (le, lp) = (eigenvalues(&exact), eigenvalues(&projected));
    let scale = le.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    assert!(
        le[0] < -1e-3 * scale,
        "squashed: the exact Hessian is indefinite ({})",
        le[0]
    );
    assert!(
        lp[0] >= -1e-10 * scale,
        "projected: smallest eigenvalue {}",
        lp[0]
    );
    let lifted = eigenvalues(&(&projected - &exact));
    assert!(
        lifted[0] >= -1e-10 * scale,
        "the correction is PSD ({})",
        lifted[0]
    );
    let negative: f64 = le.iter().filter(|&&l| l < 0.0).map(|l| -l).sum();
    let trace: f64 = lifted.iter().sum();
    assert!(
        (trace - negative).abs() <= 1e-9 * scale,
        "{trace} vs {negative}"
    );
}

/// A free tetrahedron released nearly flat (one node 5% of its height above the opposite
/// face) with a step long enough that the exact Newton matrix `M/h² + H` is indefinite at the
/// start: Newton falls back to the projected element Hessian and restores the rest shape.
#[test]
fn newton_recovers_a_squashed_tetrahedron_through_the_projected_hessian() {
    use diffsim::solids::fem::Tet;
    let rest: Vec<V3> = vec![
        [0.0, 0.0, 0.0],
        [0.1, 0.0, 0.0],
        [0.0, 0.1, 0.0],
        [0.0, 0.0, 0.1],
    ];
    let tet = Tet::new([0, 1, 2, 3], &rest, 1e4, 4e4).unwrap();
    let (mass, h) = (0.01, 0.05);
    let model = Model {
        mass: vec![mass; 4],
        gravity: [0.0; 3],
        tets: vec![tet],
        ..Model::default()
    };
    let mut x0 = rest.clone();
    x0[3] = [0.01, 0.01, 0.005];
    let smallest = eigenvalues(&dense_tet_hessian(&tet.hessian_blocks(&x0, false)))[0];
    assert!(
        smallest + mass / (h * h) < 0.0,
        "M/h² + H is not indefinite: {smallest}"
    );
    let stepper = Implicit::new(&model, h, NewtonConfig::default()).unwrap();
    let run = stepper.rollout(&x0, &[[0.0; 3]; 4], 40).unwrap();
    let (mean, max) = run.newton_stats();
    let volume = |x: &[V3]| {
        let e: Vec<V3> = (1..4)
            .map(|k| std::array::from_fn(|a| x[k][a] - x[0][a]))
            .collect();
        (e[0][0] * (e[1][1] * e[2][2] - e[1][2] * e[2][1])
            - e[0][1] * (e[1][0] * e[2][2] - e[1][2] * e[2][0])
            + e[0][2] * (e[1][0] * e[2][1] - e[1][1] * e[2][0]))
            / 6.0
    };
    let end = volume(&run.run.states.last().unwrap().0);
    assert!(
        (end / tet.volume - 1.0).abs() < 0.05,
        "volume {end:e} vs rest {:e} (Newton mean {mean}, max {max})",
        tet.volume
    );
}

/// Central differences of `f` (a loss of the model) in μ, λ and the activation of the first
/// two tetrahedra against the gradients `g`: |AD − FD| ≤ 1e-5·|FD| + `floor`.
fn check_tet_materials(m: &Model, g: &Params, f: &dyn Fn(&Model) -> f64, floor: f64) {
    for k in 0..2 {
        for (field, ad, h) in [
            ("mu", g.mu[k], 1e-2),
            ("lambda", g.lambda[k], 1e-2),
            ("activation", g.activation[k], 1e-6),
        ] {
            let at = |d: f64| {
                let mut m2 = m.clone();
                match field {
                    "mu" => m2.tets[k].mu += d,
                    "lambda" => m2.tets[k].lambda += d,
                    _ => m2.tets[k].activation += d,
                }
                f(&m2)
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (ad - fd).abs() <= 1e-5 * fd.abs() + floor,
                "tet {k} {field}: {ad:e} vs {fd:e}"
            );
        }
    }
}

#[test]
fn explicit_adjoint_through_tetrahedra_matches_finite_differences() {
    let (m, x0) = tet_block();
    let (dt, steps) = (1e-4, 100);
    let zero = vec![[0.0; 3]; m.len()];
    let target = [0.05, 0.0, 0.1];
    let l = |x: &[V3]| diffsim::solids::point_loss(x, 3, target);
    let run = explicit::rollout(&m, &x0, &zero, dt, steps);
    let g = explicit::adjoint(&m, &run, dt, &l(&run.last().0).1, &zero);
    let f = |m: &Model, x: &[V3]| l(&explicit::rollout(m, x, &zero, dt, steps).last().0).0;
    check_tet_materials(&m, &g, &|m| f(m, &x0), 1e-12);
    for a in 0..3 {
        let at = |d: f64| {
            let mut x = x0.clone();
            x[4][a] += d;
            f(&m, &x)
        };
        let fd = (at(1e-7) - at(-1e-7)) / 2e-7;
        assert!(
            (g.x0[4][a] - fd).abs() <= 1e-5 * fd.abs() + 1e-10,
            "x0[4][{a}]: {} vs {fd}",
            g.x0[4][a]
        );
    }
}

/// The tetrahedron block with its own activation in each of the first `steps - 5` steps
/// (smooth in time; the last 5 steps fall back to the tetrahedra's own).
fn activated_block(steps: usize) -> (Model, Vec<V3>) {
    let (mut m, x0) = tet_block();
    m.activations = (0..steps - 5)
        .map(|n| {
            let t = n as f64 / steps as f64;
            vec![0.05 + 0.1 * (5.0 * t).sin(), -0.02 + 0.08 * t]
        })
        .collect();
    (m, x0)
}

/// Central differences in the activations of steps 0, 1, N/2 and the last activated step
/// (both tetrahedra, step 1e-6) against `grad.activations`: |AD − FD| ≤ 1e-5·|FD| + `floor`;
/// the tetrahedra's own activations get only the steps without their own.
fn check_activations(name: &str, m: &Model, grad: &Params, f: &dyn Fn(&Model) -> f64, floor: f64) {
    let steps = m.activations.len();
    assert_eq!(grad.activations.len(), steps);
    let mut largest = 0.0f64;
    for n in [0, 1, steps / 2, steps - 1] {
        for k in 0..2 {
            let at = |d: f64| {
                let mut m2 = m.clone();
                m2.activations[n][k] += d;
                f(&m2)
            };
            let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
            let ad = grad.activations[n][k];
            assert!(
                (ad - fd).abs() <= 1e-5 * fd.abs() + floor,
                "{name} activation[{n}][{k}]: adjoint {ad:e} vs FD {fd:e}"
            );
            largest = largest.max(fd.abs());
        }
    }
    assert!(
        largest > 1e3 * floor,
        "{name}: largest derivative {largest:e}"
    );
    // The own activation acts in the last 5 steps only.
    let at = |d: f64| {
        let mut m2 = m.clone();
        m2.tets[0].activation += d;
        f(&m2)
    };
    let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
    assert!(
        (grad.activation[0] - fd).abs() <= 1e-5 * fd.abs() + floor,
        "{name} own activation: {} vs {fd:e}",
        grad.activation[0]
    );
}

#[test]
fn per_step_activation_gradients_match_finite_differences() {
    let target = [0.05, 0.0, 0.1];
    let l = |x: &[V3]| diffsim::solids::point_loss(x, 3, target);
    let (dt, steps) = (1e-4, 100);
    let (m, x0) = activated_block(steps);
    let zero = vec![[0.0; 3]; m.len()];
    let run = explicit::rollout(&m, &x0, &zero, dt, steps);
    let g = explicit::adjoint(&m, &run, dt, &l(&run.last().0).1, &zero);
    let f = |m: &Model| l(&explicit::rollout(m, &x0, &zero, dt, steps).last().0).0;
    check_activations("explicit", &m, &g, &f, 1e-12);
    let (dt, steps) = (5e-3, 40);
    let (m, x0) = activated_block(steps);
    for scheme in SCHEMES {
        let sim = stepper(&m, dt, scheme);
        let r = sim.rollout(&x0, &zero, steps).unwrap();
        let g = sim.adjoint(&r, &l(&r.run.last().0).1, &zero);
        let f = |m: &Model| {
            let r = stepper(m, dt, scheme).rollout(&x0, &zero, steps).unwrap();
            l(&r.run.last().0).0
        };
        check_activations(&format!("{scheme:?}"), &m, &g, &f, 1e-11);
    }
    // Segments pick their own steps' activations.
    let sim = Implicit::new(&m, dt, NewtonConfig::default()).unwrap();
    let r = sim.rollout(&x0, &zero, steps).unwrap();
    let tape = sim.adjoint(&r, &l(&r.run.last().0).1, &zero);
    let seed = |x: &[V3], _: &[V3]| (l(x).1, zero.clone());
    let (seg, _) = diffsim::solids::segmented_gradient(&sim, (&x0, &zero), steps, 6, seed).unwrap();
    for (a, b) in seg
        .activations
        .iter()
        .flatten()
        .zip(tape.activations.iter().flatten())
    {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-6), "{a} vs {b}");
    }
    // A step's list must hold one value per tetrahedron.
    let mut bad = m.clone();
    bad.activations[3].pop();
    assert!(Implicit::new(&bad, dt, NewtonConfig::default()).is_err());
}

#[test]
fn implicit_adjoint_through_tetrahedra_matches_finite_differences() {
    for scheme in SCHEMES {
        let (m, x0) = tet_block();
        let (dt, steps) = (5e-3, 40);
        let zero = vec![[0.0; 3]; m.len()];
        let target = [0.05, 0.0, 0.1];
        let l = |x: &[V3]| diffsim::solids::point_loss(x, 3, target);
        let sim = stepper(&m, dt, scheme);
        let r = sim.rollout(&x0, &zero, steps).unwrap();
        assert!(
            r.newton_iters.iter().all(|&k| k <= 12),
            "{:?}",
            r.newton_iters
        );
        let g = sim.adjoint(&r, &l(&r.run.last().0).1, &zero);
        let f = |m: &Model, x: &[V3], v: &[V3]| {
            let sim = stepper(m, dt, scheme);
            l(&sim.rollout(x, v, steps).unwrap().run.last().0).0
        };
        check_tet_materials(&m, &g, &|m| f(m, &x0, &zero), 1e-11);
        for (p, a) in [(4, 0), (4, 2), (1, 1)] {
            let at = |d: f64| {
                let mut x = x0.clone();
                x[p][a] += d;
                f(&m, &x, &zero)
            };
            let fd = (at(1e-7) - at(-1e-7)) / 2e-7;
            assert!(
                (g.x0[p][a] - fd).abs() <= 1e-5 * fd.abs() + 1e-10,
                "x0[{p}][{a}]: {} vs {fd}",
                g.x0[p][a]
            );
        }
        let at = |d: f64| {
            let mut v = zero.clone();
            v[3][1] += d;
            f(&m, &x0, &v)
        };
        let fd = (at(1e-7) - at(-1e-7)) / 2e-7;
        assert!(
            (g.v0[3][1] - fd).abs() <= 1e-5 * fd.abs() + 1e-10,
            "v0: {} vs {fd}",
            g.v0[3][1]
        );
    }
}

#[test]
fn contact_normal_potential_gives_the_force_and_its_jacobian() {
    use diffsim::solids::contact::{self, Contact, Shape};
    let c = Contact {
        ke: 1e3,
        kd: 0.0,
        mu: 0.0,
        smoothing: 1e-2,
    };
    let shapes = [
        Shape::Plane {
            normal: [0.0, 1.0, 0.0],
            offset: 0.0,
        },
        Shape::Box {
            center: [2.0, 1.0, 0.0],
            half: [0.25, 1.0, 1.0],
        },
    ];
    // Above the plane, inside it, off a box face, near a box edge.
    for (shape, x) in [
        (&shapes[0], [0.3, 0.004, -0.2]),
        (&shapes[0], [0.3, -0.01, 0.1]),
        (&shapes[1], [1.74, 0.5, 0.2]),
        (&shapes[1], [1.745, 2.006, 0.3]),
    ] {
        let (_, f, jx) = contact::normal(&c, shape, x, false);
        let h = 1e-7;
        for b in 0..3 {
            let at = |d: f64| {
                let mut y = x;
                y[b] += d;
                contact::normal(&c, shape, y, false)
            };
            let (up, fp, _) = at(h);
            let (um, fm, _) = at(-h);
            let du = (up - um) / (2.0 * h);
            assert!((f[b] + du).abs() <= 1e-6 * du.abs() + 1e-8, "{x:?} f[{b}]");
            for a in 0..3 {
                let fd = (fp[a] - fm[a]) / (2.0 * h);
                assert!(
                    (jx[a][b] - fd).abs() <= 1e-6 * fd.abs() + 1e-6,
                    "{x:?} jx[{a}][{b}] {} vs {fd}",
                    jx[a][b]
                );
            }
        }
    }
}

#[test]
fn implicit_gradient_through_contact_matches_finite_differences() {
    for scheme in SCHEMES {
        // The bounce with implicit steps of 1/240 s (144 steps, 0.6 s): off the ground and the
        // wall. (At 1/60 s implicit Euler's damping kills the bounce off the ground, and the
        // particle slides under the wall's lower edge.)
        let (m, x0, v0, target) = scenes::bounce(1e-2);
        let (dt, steps) = (1.0 / 240.0, 144);
        let zero = [[0.0; 3]];
        let sim = stepper(&m, dt, scheme);
        let r = sim.rollout(&x0, &v0, steps).unwrap();
        assert!(
            r.newton_iters.iter().all(|&k| k <= 20),
            "{:?}",
            r.newton_iters
        );
        let xs: Vec<f64> = r.run.states.iter().map(|s| s.0[0][0]).collect();
        let ys: Vec<f64> = r.run.states.iter().map(|s| s.0[0][1]).collect();
        // No tunnelling: the penalty contact (ω = √ke = 100/s) lets a particle arriving at
        // ~5 m/s sink about 5 cm (6.2 cm without backward Euler's damping, 4.4 cm with it).
        assert!(ys.iter().all(|y| *y > -0.08) && xs.iter().all(|x| *x < 1.8));
        assert!(
            ys.iter().cloned().fold(f64::MAX, f64::min) < 0.1,
            "never near the ground"
        );
        let g = sim.adjoint(&r, &loss(&r.run.last().0, target).1, &zero);
        let f =
            |x: &[V3], v: &[V3]| loss(&sim.rollout(x, v, steps).unwrap().run.last().0, target).0;
        check_particle_start(&g, (&x0, &v0), 2, &f);
    }
}

/// A particle thrown along the ground with friction (μ = 0.5), at its resting depth.
fn sliding_particle() -> (Model, Vec<V3>, Vec<V3>) {
    use diffsim::solids::contact::{Contact, Shape};
    let (mut m, _, _, _) = scenes::bounce(1e-3);
    m.shapes = vec![Shape::Plane {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
    }];
    m.contact = Contact {
        ke: 1e4,
        kd: 50.0,
        mu: 0.5,
        smoothing: 1e-3,
    };
    // Resting depth: the normal force ke·s·softplus(−y/s) equals m·g.
    let s = m.contact.smoothing;
    let weight = m.mass[0] * -m.gravity[1];
    let y0 = -s * (weight / (m.contact.ke * s)).exp_m1().ln();
    (m, vec![[0.0, y0, 0.0]], vec![[1.5, 0.0, 0.5]])
}

#[test]
fn implicit_friction_stops_a_sliding_particle_where_coulomb_says() {
    // Coulomb: deceleration a = μg while sliding. Backward Euler takes v_k = v₀ − k·h·a, so it
    // stops after h·Σ v_k (→ |v₀|²/(2a) = 0.2551 m as h → 0, 0.2421 m at h = 1/60).
    let (m, x0, v0) = sliding_particle();
    let speed = v0[0][0].hypot(v0[0][2]);
    let decel = m.contact.mu * -m.gravity[1];
    for dt in [1.0 / 60.0, 1.0 / 240.0] {
        let want: f64 = (1..)
            .map(|k| speed - k as f64 * dt * decel)
            .take_while(|v| *v > 0.0)
            .sum::<f64>()
            * dt;
        let sim = Implicit::new(&m, dt, NewtonConfig::default()).unwrap();
        let r = sim.rollout(&x0, &v0, (0.6 / dt) as usize).unwrap();
        let (x, v) = r.run.last();
        let (dist, end) = (x[0][0].hypot(x[0][2]), v[0][0].hypot(v[0][2]));
        let newton = r.newton_stats();
        println!(
            "dt {dt:.4}: slid {dist:.4} m (Coulomb {want:.4}), end speed {end:.1e}, Newton {newton:?}"
        );
        assert!(end < 1e-6, "still sliding at {end}");
        assert!((dist - want).abs() <= 2e-3 * want, "slid {dist} vs {want}");
        // Straight along the throw, on the ground.
        assert!((x[0][2] / x[0][0] - v0[0][2] / v0[0][0]).abs() < 1e-9);
        assert!((x[0][1] - x0[0][1]).abs() < 1e-6);
    }
}

#[test]
fn implicit_gradient_through_sliding_then_sticking_friction_matches_finite_differences() {
    let (m, x0, v0) = sliding_particle();
    let (dt, steps) = (1.0 / 120.0, 60);
    let sim = Implicit::new(&m, dt, NewtonConfig::default()).unwrap();
    let refused = Implicit::new(&m, dt, NewtonConfig::default())
        .unwrap()
        .with_scheme(Scheme::Midpoint);
    assert!(refused.is_err(), "the midpoint rule must refuse friction");
    let r = sim.rollout(&x0, &v0, steps).unwrap();
    let end = r.run.last().1[0][0].hypot(r.run.last().1[0][2]);
    assert!(end < 1e-2, "still sliding at {end}");
    // It slid for a while: the first steps move faster than the smoothing speed.
    assert!(r.run.states[5].1[0][0] > 0.5);
    let target = [0.4, 0.0, 0.2];
    let g = sim.adjoint(&r, &loss(&r.run.last().0, target).1, &[[0.0; 3]]);
    let f = |x: &[V3], v: &[V3]| loss(&sim.rollout(x, v, steps).unwrap().run.last().0, target).0;
    check_particle_start(&g, (&x0, &v0), 3, &f);
    // Mid-slide too, where |v_t| ≫ s (the slip branch).
    let short = 10;
    let r = sim.rollout(&x0, &v0, short).unwrap();
    assert!(r.run.last().1[0][0] > 0.5);
    let g = sim.adjoint(&r, &loss(&r.run.last().0, target).1, &[[0.0; 3]]);
    let f = |x: &[V3], v: &[V3]| loss(&sim.rollout(x, v, short).unwrap().run.last().0, target).0;
    check_particle_start(&g, (&x0, &v0), 3, &f);
}

/// Central differences (step 1e-6) of `f(x₀, v₀)` in particle 0's first `axes` coordinates
/// of x₀ and v₀ against the gradients `g`: |AD − FD| ≤ 1e-5·|FD| + 1e-8.
fn check_particle_start(
    g: &Params,
    (x0, v0): (&[V3], &[V3]),
    axes: usize,
    f: &dyn Fn(&[V3], &[V3]) -> f64,
) {
    let eps = 1e-6;
    for a in 0..axes {
        for (vel, ad) in [(true, g.v0[0][a]), (false, g.x0[0][a])] {
            let at = |d: f64| {
                let (mut x, mut v) = (x0.to_vec(), v0.to_vec());
                if vel {
                    v[0][a] += d
                } else {
                    x[0][a] += d
                }
                f(&x, &v)
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps);
            assert!(
                (ad - fd).abs() <= 1e-5 * fd.abs() + 1e-8,
                "{} [{a}]: {ad} vs {fd}",
                if vel { "v0" } else { "x0" }
            );
        }
    }
}

#[test]
fn implicit_soft_grid_on_the_ground_gradient_matches_finite_differences() {
    // The B4 cube, 20 implicit steps of 1/120 s: it lands on the ground.
    let (mut m, x0, v0, target) = scenes::softbody_material(1e-3).unwrap();
    m.shapes.truncate(1);
    m.shapes[0] = diffsim::solids::contact::Shape::Plane {
        normal: [0.0, 1.0, 0.0],
        offset: 0.95,
    };
    let (dt, steps) = (1.0 / 120.0, 20);
    let l = |x: &[V3]| diffsim::solids::com_loss(x, target);
    let f = |m: &Model| {
        let sim = Implicit::new(m, dt, NewtonConfig::default()).unwrap();
        l(&sim.rollout(&x0, &v0, steps).unwrap().run.last().0).0
    };
    let sim = Implicit::new(&m, dt, NewtonConfig::default()).unwrap();
    let r = sim.rollout(&x0, &v0, steps).unwrap();
    let low = r.run.states.iter().flat_map(|s| s.0.iter().map(|p| p[1]));
    let low = low.fold(f64::MAX, f64::min);
    assert!(low < 0.955, "the cube never reached the ground: {low}");
    let g = sim.adjoint(&r, &l(&r.run.last().0).1, &vec![[0.0; 3]; m.len()]);
    for k in [0, 17, 39] {
        for (field, ad) in [("mu", g.mu[k]), ("lambda", g.lambda[k])] {
            let at = |d: f64| {
                let mut m2 = m.clone();
                match field {
                    "mu" => m2.tets[k].mu *= 1.0 + d,
                    _ => m2.tets[k].lambda *= 1.0 + d,
                }
                f(&m2)
            };
            let scale = if field == "mu" {
                m.tets[k].mu
            } else {
                m.tets[k].lambda
            };
            let fd = (at(1e-6) - at(-1e-6)) / (2e-6 * scale);
            assert!(
                (ad - fd).abs() <= 1e-5 * fd.abs() + 1e-12,
                "tet {k} {field}: {ad:e} vs {fd:e}"
            );
        }
    }
}

/// The B4 cube (27 particles, 40 tetrahedra, thrown at 5 m/s down and sideways) over rough
/// ground 5 cm below it (contact damping and friction are lagged terms of the step).
fn cube_on_rough_ground() -> (Model, Vec<V3>, Vec<V3>) {
    let (mut m, x0, v0, _) = scenes::softbody_material(1e-3).unwrap();
    m.shapes.truncate(1);
    m.shapes[0] = diffsim::solids::contact::Shape::Plane {
        normal: [0.0, 1.0, 0.0],
        offset: 0.95,
    };
    m.contact.mu = 0.5;
    (m, x0, v0)
}

/// Newton converges on every step of the cube sliding onto rough ground at 5 m/s (with the
/// old line search, which accepted any step that lowered |∇Φ| even where Φ rose, step 5
/// cycled between two points for 50 iterations).
#[test]
fn newton_converges_when_a_fast_cube_lands_on_rough_ground() {
    let (m, x0, v0) = cube_on_rough_ground();
    for dt in [1.0 / 120.0, 1.0 / 240.0] {
        let sim = Implicit::new(&m, dt, NewtonConfig::default()).unwrap();
        let r = sim.rollout(&x0, &v0, (0.2 / dt) as usize).unwrap();
        assert!(landed(&r));
        let (mean, max) = r.newton_stats();
        assert!(mean < 6.0 && max <= 20, "Newton iterations {mean} / {max}");
    }
}

/// Whether some particle of `r` went below the cube's ground (so contact was exercised).
fn landed(r: &diffsim::solids::implicit::ImplicitRollout) -> bool {
    let low = r.run.states.iter().flat_map(|s| s.0.iter().map(|p| p[1]));
    low.fold(f64::MAX, f64::min) < 0.95
}

/// A 3×2-cell cloth with two pinned corners, bent, moving through air (lift and drag depend
/// on the lagged velocity, so `Bₙ` gets more than the inertia).
fn pinned_cloth() -> (Model, Vec<V3>, Vec<V3>) {
    let material = diffsim::solids::cloth::ClothMaterial {
        drag: 3.0,
        lift: 7.0,
        edge_kd: 0.05,
        ..Default::default()
    };
    let (mut m, mut x, mut v) =
        scenes::cloth_grid((3, 2), 0.1, -0.6, [0.5, -0.2, 0.3], 0.02, &material).unwrap();
    for (p, (xp, vp)) in x.iter_mut().zip(v.iter_mut()).enumerate() {
        for a in 0..3 {
            let noise = ((3 * p + a) as f64 * 12.9898).sin();
            xp[a] += 0.02 * noise;
            vp[a] += 0.8 * noise.cos();
        }
    }
    m.mass[0] = 0.0;
    m.mass[3] = 0.0;
    v[0] = [0.0; 3];
    v[3] = [0.0; 3];
    (m, x, v)
}

/// Unit residual gradients `∂r_a/∂x` at particle `p`.
fn unit_seeds(n: usize, p: usize) -> Vec<Vec<V3>> {
    (0..3)
        .map(|a| {
            let mut s = vec![[0.0; 3]; n];
            s[p][a] = 1.0;
            s
        })
        .collect()
}

/// Sparse Gauss-Newton's KKT system eliminated in time order gives the Jacobian that the
/// adjoint sweeps give (one per residual): the rest lengths of the cage (60 damped steps,
/// fixed cage points) and the materials of the cube landing on rough ground (backward Euler)
/// or on smooth ground (the midpoint rule refuses friction), under both schemes.
#[test]
fn sparse_gn_jacobian_equals_the_adjoint_jacobian() {
    use diffsim::solids::implicit::GnParameters;
    let (cage_m, xc, _) = cage();
    let (cube, xb, vb) = cube_on_rough_ground();
    let smooth = Model {
        contact: diffsim::solids::contact::Contact {
            mu: 0.0,
            ..cube.contact
        },
        ..cube.clone()
    };
    let still = vec![[0.0; 3]; cage_m.len()];
    let cases = [
        (&cage_m, &xc, &still, 1.0 / 30.0, 60, Scheme::BackwardEuler),
        (&cage_m, &xc, &still, 1.0 / 30.0, 60, Scheme::Midpoint),
        (&cube, &xb, &vb, 1.0 / 120.0, 20, Scheme::BackwardEuler),
        (&smooth, &xb, &vb, 1.0 / 120.0, 20, Scheme::Midpoint),
    ];
    for (m, x0, v0, dt, steps, scheme) in cases {
        let sim = stepper(m, dt, scheme);
        let r = sim.rollout(x0, v0, steps).unwrap();
        let seeds = unit_seeds(m.len(), 0);
        let zero = vec![[0.0; 3]; m.len()];
        let params = if m.tets.is_empty() {
            GnParameters::RestLengths
        } else {
            assert!(landed(&r), "the cube never landed");
            GnParameters::Materials
        };
        let kkt = sim.sparse_gn_jacobian(&r, &seeds, params).unwrap();
        let scale = kkt.iter().flatten().fold(0.0f64, |a, b| a.max(b.abs()));
        assert!(scale > 0.0);
        for (seed, row) in seeds.iter().zip(&kkt) {
            let adjoint = params.of(&sim.adjoint(&r, seed, &zero));
            assert_eq!(adjoint.len(), row.len());
            for (a, b) in adjoint.iter().zip(row) {
                assert!(
                    (a - b).abs() <= 1e-9 * scale,
                    "{params:?}, {scheme:?}: {a} vs {b} (scale {scale})"
                );
            }
        }
    }
}

/// The sparse control step (positions as unknowns, block-pentadiagonal normal matrix) equals
/// dense GN's `−(JᵀJ + μI)⁻¹Jᵀr` on the per-step control forces, J's rows from adjoint
/// sweeps: a random spring network (several free particles) and the cage over 40 steps, the
/// cube landing on rough ground and the pinned cloth in air over 8.
#[test]
fn sparse_gn_control_step_equals_the_dense_step() {
    let steps = 40;
    let (mut net, xn0) = random_network(&[0.3, 0.7, 0.1, 0.9, 0.5, 0.2], 5);
    net.controls = vec![vec![[0.1, -0.2, 0.05]; net.len()]; steps];
    let (cage_m, xc0, _) = controlled_cage(steps);
    let (mut cube, xb0, vb0) = cube_on_rough_ground();
    let (mut cloth, xt0, vt0) = pinned_cloth();
    cube.controls = vec![vec![[0.2, 0.0, -0.1]; cube.len()]; 8];
    cloth.controls = vec![vec![[0.0, 0.01, 0.0]; cloth.len()]; 8];
    let cases = [
        (&net, &xn0, vec![[0.0; 3]; net.len()], 1.0 / 30.0, steps),
        (
            &cage_m,
            &xc0,
            vec![[0.0; 3]; cage_m.len()],
            1.0 / 30.0,
            steps,
        ),
        (&cube, &xb0, vb0, 1.0 / 60.0, 8),
        (&cloth, &xt0, vt0, 1.0 / 60.0, 8),
    ];
    for (m, x0, v0, dt, steps) in cases {
        let sim = Implicit::new(m, dt, NewtonConfig::default()).unwrap();
        let r = sim.rollout(x0, &v0, steps).unwrap();
        if !m.tets.is_empty() {
            assert!(landed(&r), "the cube never landed");
        }
        let free = (0..m.len()).find(|&p| m.free(p)).unwrap();
        let seeds = unit_seeds(m.len(), free);
        let zero = vec![[0.0; 3]; m.len()];
        let res = [0.3, -0.1, 0.2];
        let flat = |u: &[Vec<V3>]| -> Vec<f64> { u.iter().flatten().flatten().copied().collect() };
        for mu in [1e-6, 1e-2] {
            let rows: Vec<Vec<f64>> = seeds
                .iter()
                .map(|s| flat(&sim.adjoint(&r, s, &zero).controls))
                .collect();
            let dense = diffsim::optim::dense_gn_step(&res, &rows, mu).unwrap();
            let sparse = flat(&sim.sparse_gn_control_step(&r, &res, &seeds, mu).unwrap());
            let scale = dense.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            assert!(scale > 0.0);
            for (a, b) in dense.iter().zip(&sparse) {
                assert!(
                    (a - b).abs() <= 1e-8 * scale,
                    "{} particles, μ {mu}: {a} vs {b} (scale {scale})",
                    m.len()
                );
            }
        }
    }
    let short = Model {
        controls: vec![],
        ..cage_m.clone()
    };
    let sim = Implicit::new(&short, 1.0 / 30.0, NewtonConfig::default()).unwrap();
    let r = sim.rollout(&xc0, &vec![[0.0; 3]; short.len()], 3).unwrap();
    assert!(
        sim.sparse_gn_control_step(&r, &[0.0; 3], &[], 1e-3)
            .is_err()
    );
    let midpoint = stepper(&cage_m, 1.0 / 30.0, Scheme::Midpoint);
    let r = midpoint
        .rollout(&xc0, &vec![[0.0; 3]; cage_m.len()], 3)
        .unwrap();
    let seeds = unit_seeds(cage_m.len(), 0);
    assert!(
        midpoint
            .sparse_gn_control_step(&r, &[0.0; 3], &seeds, 1e-3)
            .is_err()
    );
}

/// A random tetrahedral mesh: a cube of 0.1 m split into 5 tetrahedra with every corner
/// jittered by up to 15% of the edge, random μ ∈ [2e3, 2e4] Pa, λ ∈ [5e3, 5e4] Pa and
/// activations ±0.05 per element, corners 0 and 1 fixed, the rest of random mass; started
/// from a further random deformation (±10%). `r(k)` ∈ [−1, 1] draws the numbers.
fn random_tet_mesh(r: &dyn Fn(usize) -> f64) -> (Model, Vec<V3>) {
    use diffsim::solids::fem::Tet;
    let rest: Vec<V3> = (0..8)
        .map(|c| {
            let corner = [c & 1, (c >> 1) & 1, (c >> 2) & 1];
            std::array::from_fn(|a| 0.1 * (corner[a] as f64 + 0.15 * r(3 * c + a)))
        })
        .collect();
    // The 5-tetrahedron split of a cube (corner index = x + 2y + 4z).
    let split = [
        [0, 1, 2, 4],
        [1, 3, 2, 7],
        [1, 4, 5, 7],
        [2, 7, 6, 4],
        [1, 2, 4, 7],
    ];
    let tets: Vec<Tet> = split
        .iter()
        .enumerate()
        .map(|(k, &nodes)| {
            let mu = 1.1e4 + 9e3 * r(40 + k);
            let lambda = 2.75e4 + 2.25e4 * r(50 + k);
            // Tet::new takes the nodes in either orientation.
            let mut t = Tet::new(nodes, &rest, mu, lambda).unwrap();
            t.activation = 0.05 * r(60 + k);
            t
        })
        .collect();
    let mass = (0..8)
        .map(|p| if p < 2 { 0.0 } else { 0.02 + 0.01 * r(70 + p) })
        .collect();
    let x0 = rest
        .iter()
        .enumerate()
        .map(|(p, x)| std::array::from_fn(|a| x[a] + 0.01 * r(80 + 3 * p + a)))
        .collect();
    let model = Model {
        mass,
        gravity: [0.0, -9.8, 0.0],
        tets,
        ..Model::default()
    };
    (model, x0)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]
    /// On random tetrahedral meshes: every element's forces are −∇(V·Ψ), its Hessian blocks
    /// equal central differences of its forces, and the explicit and implicit (both schemes)
    /// adjoints of a node's final position equal central differences in the first two
    /// elements' μ, λ, activation and in a free node's initial position.
    #[test]
    fn tet_terms_and_adjoints_match_finite_differences_on_random_meshes(
        seed in proptest::collection::vec(-1.0f64..1.0, 97),
    ) {
        let r = |k: usize| seed[k % seed.len()];
        let (m, x0) = random_tet_mesh(&r);
        let eps = 1e-7;
        for t in &m.tets {
            let mut f = vec![[0.0; 3]; m.len()];
            t.add_forces(&x0, &mut f);
            let hb = t.hessian_blocks(&x0, false);
            let scale = hb.iter().flatten().flatten().flatten().fold(0.0f64, |a, b| a.max(b.abs()));
            for (b, &nb) in t.nodes.iter().enumerate() {
                for c in 0..3 {
                    let at = |d: f64| {
                        let mut y = x0.clone();
                        y[nb][c] += d;
                        let mut f = vec![[0.0; 3]; m.len()];
                        t.add_forces(&y, &mut f);
                        (t.energy(&y), f)
                    };
                    let ((ep, fp), (em, fm)) = (at(eps), at(-eps));
                    let de = (ep - em) / (2.0 * eps);
                    proptest::prop_assert!((f[nb][c] + de).abs() <= 1e-5 * de.abs() + 1e-8 * scale);
                    for (a, &na) in t.nodes.iter().enumerate() {
                        for i in 0..3 {
                            let fd = -(fp[na][i] - fm[na][i]) / (2.0 * eps);
                            proptest::prop_assert!(
                                (hb[a][b][i][c] - fd).abs() <= 1e-5 * fd.abs() + 1e-7 * scale,
                                "H[{a}][{b}][{i}][{c}] {} vs {fd}", hb[a][b][i][c]
                            );
                        }
                    }
                }
            }
        }
        let zero = vec![[0.0; 3]; m.len()];
        let target = [0.05, 0.05, 0.2];
        let l = |x: &[V3]| diffsim::solids::point_loss(x, 7, target);
        let check_x0 = |name: &str, g: &Params, f: &dyn Fn(&[V3]) -> f64| {
            for (p, a) in [(7, 0), (5, 2), (3, 1)] {
                let at = |d: f64| {
                    let mut x = x0.clone();
                    x[p][a] += d;
                    f(&x)
                };
                let fd = (at(1e-7) - at(-1e-7)) / 2e-7;
                assert!(
                    (g.x0[p][a] - fd).abs() <= 1e-5 * fd.abs() + 1e-9,
                    "{name} x0[{p}][{a}]: {} vs {fd}",
                    g.x0[p][a]
                );
            }
        };
        let (dt, steps) = (1e-4, 60);
        let run = explicit::rollout(&m, &x0, &zero, dt, steps);
        let g = explicit::adjoint(&m, &run, dt, &l(&run.last().0).1, &zero);
        let f = |m: &Model, x: &[V3]| l(&explicit::rollout(m, x, &zero, dt, steps).last().0).0;
        check_tet_materials(&m, &g, &|m| f(m, &x0), 1e-11);
        check_x0("explicit", &g, &|x| f(&m, x));
        for scheme in SCHEMES {
            let (dt, steps) = (5e-3, 15);
            let sim = stepper(&m, dt, scheme);
            let r = sim.rollout(&x0, &zero, steps).unwrap();
            let g = sim.adjoint(&r, &l(&r.run.last().0).1, &zero);
            let f = |m: &Model, x: &[V3]| {
                l(&stepper(m, dt, scheme).rollout(x, &zero, steps).unwrap().run.last().0).0
            };
            check_tet_materials(&m, &g, &|m| f(m, &x0), 1e-10);
            check_x0(&format!("{scheme:?}"), &g, &|x| f(&m, x));
        }
    }
}
