//! `solids::contact`: the smooth normal law and friction, their Jacobians, and gradients
//! through contact under both integrators.

use crate::common::*;

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
        (&plane, [0.3, -0.004, 0.1], [0.001, -0.5, 0.002]),
        (&plane, [0.3, 0.002, 0.1], [2.0, -0.5, 1.0]),
        (&boxed, [1.745, 1.2, 0.3], [3.0, 0.4, 0.1]),
        (&boxed, [1.745, 2.003, 0.3], [3.0, -0.4, 0.1]),
        (&boxed, [1.745, 2.004, 1.003], [1.0, -0.4, -0.7]),
        (&boxed, [1.76, 1.5, 0.2], [1.0, 0.3, 0.0]),
    ];
    for (shape, x, v) in cases {
        let (_, jx, jv) = force(&c, shape, x, v);
        let eps = 1e-7;
        for b in 0..3 {
            let shift = |p: [f64; 3], d: f64| {
                let mut q = p;
                q[b] += d;
                q
            };
            let (fxp, _, _) = force(&c, shape, shift(x, eps), v);
            let (fxm, _, _) = force(&c, shape, shift(x, -eps), v);
            let (fvp, _, _) = force(&c, shape, x, shift(v, eps));
            let (fvm, _, _) = force(&c, shape, x, shift(v, -eps));
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
