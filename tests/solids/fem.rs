//! `solids::fem`: stable Neo-Hookean tetrahedra: forces, Hessians, the PSD projection, and
//! random meshes.

use crate::common::*;

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
