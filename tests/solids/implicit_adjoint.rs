//! `solids::implicit::adjoint`: the implicit-function-theorem adjoint (backward Euler and
//! implicit midpoint) in parameters, controls and per-step activations against f64 central
//! differences.

use crate::common::*;

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
