//! `solids::implicit::gauss_newton`: sparse Gauss-Newton Jacobians and control steps against
//! the adjoint and the dense step.

use crate::common::*;

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
