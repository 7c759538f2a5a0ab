//! `solids::explicit`: the Warp step's adjoint against f64 central differences, through
//! springs and tetrahedra, and segment checkpointing.

use crate::common::*;

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
