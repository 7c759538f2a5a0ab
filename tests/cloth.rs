//! Cloth: triangle membranes (with air) and dihedral bending against f64 central differences
//! (forces vs energies, Hessians, vector-Jacobian products), and the explicit and implicit
//! adjoints through cloth rollouts.

use diffsim::solids::cloth::{Bend, ClothMaterial, Triangle};
use diffsim::solids::implicit::{Implicit, NewtonConfig, Scheme};
use diffsim::solids::{Model, V3, com_loss, explicit, scenes};

/// A deterministic pseudo-random number in [−1, 1).
fn noise(k: usize) -> f64 {
    let s = ((k as f64 + 1.0) * 12.9898).sin() * 43_758.545_3;
    2.0 * (s - s.floor()) - 1.0
}

fn material() -> ClothMaterial {
    ClothMaterial {
        tri_ke: 300.0,
        tri_ka: 500.0,
        tri_kd: 0.5,
        drag: 3.0,
        lift: 7.0,
        edge_ke: 4.0,
        edge_kd: 0.05,
    }
}

/// A 3×2-cell cloth, bent and stretched away from its rest shape, moving in all directions.
fn bent_cloth() -> (Model, Vec<V3>, Vec<V3>) {
    let (m, mut x, mut v) =
        scenes::cloth_grid((3, 2), 0.1, -0.6, [0.5, -0.2, 0.3], 0.02, &material()).unwrap();
    for (p, (xp, vp)) in x.iter_mut().zip(v.iter_mut()).enumerate() {
        for a in 0..3 {
            xp[a] += 0.02 * noise(3 * p + a);
            vp[a] += 0.8 * noise(100 + 3 * p + a);
        }
    }
    (m, x, v)
}

fn shifted(x: &[V3], p: usize, a: usize, d: f64) -> Vec<V3> {
    let mut y = x.to_vec();
    y[p][a] += d;
    y
}

fn assert_close(what: &str, ad: f64, fd: f64, rtol: f64, atol: f64) {
    assert!(
        (ad - fd).abs() <= atol + rtol * fd.abs(),
        "{what}: analytic {ad:e} vs FD {fd:e}"
    );
}

/// The elastic forces of `m` at `x` against central differences of its energy; returns
/// their largest entry.
fn check_forces_are_minus_the_energy_gradient(m: &Model, x: &[V3]) -> f64 {
    let mut f = vec![[0.0; 3]; m.len()];
    m.add_elastic_forces(0, x, &mut f);
    let scale = f.iter().flatten().fold(0.0f64, |a, b| a.max(b.abs()));
    let eps = 1e-6;
    for (p, fp) in f.iter().enumerate() {
        for (a, fa) in fp.iter().enumerate() {
            let de = (m.energy(0, &shifted(x, p, a, eps)) - m.energy(0, &shifted(x, p, a, -eps)))
                / (2.0 * eps);
            assert_close(&format!("f[{p}][{a}]"), *fa, -de, 1e-6, 1e-7 * scale);
        }
    }
    scale
}

#[test]
fn cloth_elastic_forces_are_minus_the_energy_gradient() {
    let (m, x, _) = bent_cloth();
    let scale = check_forces_are_minus_the_energy_gradient(&m, &x);
    assert!(scale > 1.0, "the bent cloth is loaded ({scale})");
}

#[test]
fn flat_cloth_at_rest_feels_no_force() {
    let (m, x, _) = scenes::cloth_grid((4, 4), 0.25, 0.3, [0.0; 3], 1.0, &material()).unwrap();
    let mut f = vec![[0.0; 3]; m.len()];
    m.add_forces(0, &x, &vec![[0.0; 3]; m.len()], &mut f);
    let worst = f.iter().flatten().fold(0.0f64, |a, b| a.max(b.abs()));
    assert!(worst < 1e-10, "rest force {worst:e}");
    assert_eq!(m.tris.len(), 32);
    // Interior edges of a 4×4 grid with diagonals: 2·4·5 + 16 − 16 boundary = 40.
    assert_eq!(m.bends.len(), 40);
}

/// `Σ_blocks` as a dense Hessian applied to unit vectors, against differences of `force`.
fn check_hessian<const N: usize>(
    name: &str,
    nodes: [usize; N],
    x: &[V3],
    blocks: &[[[[f64; 3]; 3]; N]; N],
    force: &dyn Fn(&[V3]) -> Vec<V3>,
) {
    let eps = 1e-6;
    let scale = blocks
        .iter()
        .flatten()
        .flatten()
        .flatten()
        .fold(0.0f64, |a, b| a.max(b.abs()));
    for (b, &nb) in nodes.iter().enumerate() {
        #[allow(clippy::needless_range_loop)] // c indexes a coordinate and a block column
        for c in 0..3 {
            let (fp, fm) = (
                force(&shifted(x, nb, c, eps)),
                force(&shifted(x, nb, c, -eps)),
            );
            for (a, &na) in nodes.iter().enumerate() {
                for r in 0..3 {
                    let fd = -(fp[na][r] - fm[na][r]) / (2.0 * eps);
                    assert_close(
                        &format!("{name} H[{a}][{b}][{r}][{c}]"),
                        blocks[a][b][r][c],
                        fd,
                        1e-5,
                        1e-7 * scale,
                    );
                }
            }
        }
    }
}

/// [`check_hessian`] of the first `n` triangles and bending elements of `m` at `x`.
fn check_element_hessians(m: &Model, x: &[V3], n: usize) {
    for t in m.tris.iter().take(n) {
        let f = |y: &[V3]| {
            let mut f = vec![[0.0; 3]; y.len()];
            t.add_forces(y, None, &mut f);
            f
        };
        check_hessian("triangle", t.nodes, x, &t.hessian_blocks(x, false), &f);
    }
    for b in m.bends.iter().take(n) {
        let f = |y: &[V3]| {
            let mut f = vec![[0.0; 3]; y.len()];
            b.add_forces(y, None, &mut f);
            f
        };
        check_hessian("bend", b.nodes, x, &b.hessian_blocks(x, false), &f);
    }
}

#[test]
fn cloth_hessians_match_finite_differences() {
    let (m, x, _) = bent_cloth();
    check_element_hessians(&m, &x, 4);
}

/// An element force `f(x, v)`.
type ForceFn<'a> = dyn Fn(&[V3], &[V3]) -> Vec<V3> + 'a;
/// `(x, v, u, x̄, v̄)`: adds `(∂f/∂x)ᵀu`, `(∂f/∂v)ᵀu` into `x̄`, `v̄`.
type VjpFn<'a> = dyn Fn(&[V3], &[V3], &[V3], &mut [V3], &mut [V3]) + 'a;

/// `(∂f/∂x)ᵀu`, `(∂f/∂v)ᵀu` of Warp's element force against central differences of `u·f`.
fn check_vjp(name: &str, x: &[V3], v: &[V3], force: &ForceFn<'_>, vjp: &VjpFn<'_>) {
    let u: Vec<V3> = (0..x.len())
        .map(|p| std::array::from_fn(|a| noise(500 + 3 * p + a)))
        .collect();
    let s = |x: &[V3], v: &[V3]| -> f64 {
        let f = force(x, v);
        f.iter()
            .zip(&u)
            .map(|(f, u)| (0..3).map(|a| f[a] * u[a]).sum::<f64>())
            .sum()
    };
    let (mut xb, mut vb) = (vec![[0.0; 3]; x.len()], vec![[0.0; 3]; x.len()]);
    vjp(x, v, &u, &mut xb, &mut vb);
    let scale = xb
        .iter()
        .chain(&vb)
        .flatten()
        .fold(0.0f64, |a, b| a.max(b.abs()));
    assert!(scale > 0.0, "{name}: a non-zero product");
    let eps = 1e-6;
    for p in 0..x.len() {
        for a in 0..3 {
            let fx = (s(&shifted(x, p, a, eps), v) - s(&shifted(x, p, a, -eps), v)) / (2.0 * eps);
            let fv = (s(x, &shifted(v, p, a, eps)) - s(x, &shifted(v, p, a, -eps))) / (2.0 * eps);
            assert_close(
                &format!("{name} x̄[{p}][{a}]"),
                xb[p][a],
                fx,
                1e-5,
                1e-8 * scale,
            );
            assert_close(
                &format!("{name} v̄[{p}][{a}]"),
                vb[p][a],
                fv,
                1e-5,
                1e-8 * scale,
            );
        }
    }
}

#[test]
fn warp_cloth_force_vector_jacobian_products_match_finite_differences() {
    let (m, x, v) = bent_cloth();
    for t in m.tris.iter().take(6) {
        let force = |x: &[V3], v: &[V3]| {
            let mut f = vec![[0.0; 3]; x.len()];
            t.add_forces(x, Some(v), &mut f);
            f
        };
        let vjp =
            |x: &[V3], v: &[V3], u: &[V3], xb: &mut [V3], vb: &mut [V3]| t.add_vjp(x, v, u, xb, vb);
        check_vjp("triangle", &x, &v, &force, &vjp);
    }
    for b in m.bends.iter().take(6) {
        let force = |x: &[V3], v: &[V3]| {
            let mut f = vec![[0.0; 3]; x.len()];
            b.add_forces(x, Some(v), &mut f);
            f
        };
        let vjp =
            |x: &[V3], v: &[V3], u: &[V3], xb: &mut [V3], vb: &mut [V3]| b.add_vjp(x, v, u, xb, vb);
        check_vjp("bend", &x, &v, &force, &vjp);
    }
}

#[test]
fn warp_bending_force_uses_the_current_edge_length() {
    // Stretching the hinge edge by 10% scales Warp's force by 1.1 while the potential's
    // gradient (rest length) stays.
    let x: Vec<V3> = vec![
        [0.0, 1.0, 0.2],
        [0.1, -1.0, 0.3],
        [0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0],
    ];
    let bend = Bend {
        nodes: [0, 1, 2, 3],
        ke: 2.0,
        kd: 0.0,
        rest_angle: 0.0,
        rest_length: 1.0,
    };
    let force = |x: &[V3], v: Option<&[V3]>| {
        let mut f = vec![[0.0; 3]; 4];
        bend.add_forces(x, v, &mut f);
        f[0][2]
    };
    let zero = vec![[0.0; 3]; 4];
    let mut long = x.clone();
    long[3][0] = 1.1;
    assert!((force(&x, Some(&zero)) - force(&x, None)).abs() < 1e-14);
    let ratio = force(&long, Some(&zero)) / force(&long, None);
    assert!((ratio - 1.1).abs() < 1e-12, "ratio {ratio}");
}

#[test]
fn degenerate_triangle_is_a_clear_error() {
    let x: Vec<V3> = vec![[0.0; 3], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]];
    let err = Triangle::new([0, 1, 2], &x, &material()).unwrap_err();
    assert!(err.to_string().contains("degenerate"), "{err}");
}

/// The loss `|COM(T) − target|²` of a rollout and its gradient with respect to `(x₀, v₀)`,
/// against central differences along 3 random directions. Returns whether the differences are
/// a valid reference: air drag `∝ |n̂·v̄|` has a kink where a triangle's mean velocity crosses
/// its plane, and where one falls within the step of the probe the difference with step
/// `eps` disagrees with the one with `eps/10` (by > `rtol`); such a probe is not compared
/// (the gradient checker redraws kink-straddling probes the same way), and `false` is
/// returned so that random cases can be rejected and fixed ones fail.
fn check_rollout(
    name: &str,
    x0: &[V3],
    v0: &[V3],
    grad: (&[V3], &[V3]),
    loss: &dyn Fn(&[V3], &[V3]) -> f64,
    rtol: f64,
) -> bool {
    let eps = 1e-6;
    let n = x0.len();
    let dirs: Vec<(Vec<V3>, Vec<V3>)> = (0..3)
        .map(|d| {
            let r = |o: usize| -> Vec<V3> {
                (0..n)
                    .map(|p| std::array::from_fn(|a| noise(1000 * (d + 1) + o + 3 * p + a)))
                    .collect()
            };
            (r(0), r(400))
        })
        .collect();
    for (k, (dx, dv)) in dirs.iter().enumerate() {
        let at = |s: f64| -> (Vec<V3>, Vec<V3>) {
            let m = |a: &[V3], d: &[V3]| -> Vec<V3> {
                a.iter()
                    .zip(d)
                    .map(|(p, q)| std::array::from_fn(|c| p[c] + s * q[c]))
                    .collect()
            };
            (m(x0, dx), m(v0, dv))
        };
        let central = |h: f64| {
            let ((xp, vp), (xm, vm)) = (at(h), at(-h));
            (loss(&xp, &vp) - loss(&xm, &vm)) / (2.0 * h)
        };
        let fd = central(eps);
        if (fd - central(eps / 10.0)).abs() > 1e-12 + rtol * fd.abs() {
            return false;
        }
        let dot = |g: &[V3], d: &[V3]| -> f64 {
            g.iter()
                .zip(d)
                .map(|(a, b)| (0..3).map(|c| a[c] * b[c]).sum::<f64>())
                .sum()
        };
        let ad = dot(grad.0, dx) + dot(grad.1, dv);
        assert_close(&format!("{name} direction {k}"), ad, fd, rtol, 1e-12);
    }
    true
}

#[test]
fn explicit_adjoint_through_cloth_matches_finite_differences() {
    let (m, x0, v0) = bent_cloth();
    let (dt, steps, target) = (1e-3, 120, [1.0, -0.5, 0.3]);
    let loss = |x0: &[V3], v0: &[V3]| {
        let run = explicit::rollout(&m, x0, v0, dt, steps);
        com_loss(&run.last().0, target).0
    };
    let run = explicit::rollout(&m, &x0, &v0, dt, steps);
    let (_, gx) = com_loss(&run.last().0, target);
    let g = explicit::adjoint(&m, &run, dt, &gx, &vec![[0.0; 3]; m.len()]);
    assert!(check_rollout(
        "explicit cloth",
        &x0,
        &v0,
        (&g.x0, &g.v0),
        &loss,
        1e-6
    ));
}

#[test]
fn implicit_adjoint_through_cloth_with_pinned_corners_matches_finite_differences() {
    let (mut m, x0, v0) = bent_cloth();
    // Two pinned corners: the adjoint's fixed-node terms are exercised too.
    m.mass[0] = 0.0;
    m.mass[3] = 0.0;
    let v0: Vec<V3> = v0
        .iter()
        .enumerate()
        .map(|(p, v)| if m.free(p) { *v } else { [0.0; 3] })
        .collect();
    let (h, steps, target) = (1.0 / 60.0, 12, [1.0, -0.5, 0.3]);
    for scheme in [Scheme::BackwardEuler, Scheme::Midpoint] {
        let stepper = Implicit::new(&m, h, NewtonConfig::default())
            .unwrap()
            .with_scheme(scheme)
            .unwrap();
        let loss = |x0: &[V3], v0: &[V3]| {
            let run = stepper.rollout(x0, v0, steps).unwrap();
            com_loss(&run.run.last().0, target).0
        };
        let run = stepper.rollout(&x0, &v0, steps).unwrap();
        let (_, gx) = com_loss(&run.run.last().0, target);
        let g = stepper.adjoint(&run, &gx, &vec![[0.0; 3]; m.len()]);
        let name = format!("implicit cloth, {scheme:?}");
        assert!(check_rollout(&name, &x0, &v0, (&g.x0, &g.v0), &loss, 1e-6));
    }
}

/// Newton converges on every step of the B3 cloth throw (289 particles, 120 backward-Euler
/// steps of 1/60 s) near the solution, where Φ's changes fall below its round-off and a step
/// is accepted for lowering |∇Φ|: with that round-off taken as 64ε·|Φ| (Φ sums terms far
/// larger than itself) the first steps stalled at |∇Φ| ≈ 8e-6.
#[test]
fn newton_converges_through_the_implicit_cloth_throw() {
    let (m, x0, v0, _) = scenes::cloth_throw(16).unwrap();
    let sim = Implicit::new(&m, 1.0 / 60.0, NewtonConfig::default()).unwrap();
    let (mean, max) = sim.rollout(&x0, &v0, 120).unwrap().newton_stats();
    assert!(mean <= 3.0 && max <= 6, "Newton iterations {mean} / {max}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(6))]
    /// On random cloths (2–4 × 2–3 cells, random tilt, stiffnesses, air and damping, every
    /// node jittered by up to 20% of a cell, random velocities, one or two pinned corners):
    /// forces are −∇energy, element Hessians equal differences of the element forces, and
    /// the explicit and implicit (both schemes) adjoints equal central differences.
    #[test]
    fn cloth_terms_and_adjoints_match_finite_differences_on_random_meshes(
        nx in 2usize..5,
        ny in 2usize..4,
        pins in 1usize..3,
        offset in 0usize..10_000,
    ) {
        let r = |k: usize| noise(offset + k);
        let material = ClothMaterial {
            tri_ke: 300.0 * (1.5 + r(0)),
            tri_ka: 500.0 * (1.5 + r(1)),
            tri_kd: 0.5 * (1.0 + r(2)),
            drag: 3.0 * (1.0 + r(3)),
            lift: 7.0 * (1.0 + r(4)),
            edge_ke: 4.0 * (1.5 + r(5)),
            edge_kd: 0.05 * (1.0 + r(6)),
        };
        let cell = 0.1;
        let (mut m, mut x, mut v) =
            scenes::cloth_grid((nx, ny), cell, r(7), [r(8), r(9), r(10)], 0.02, &material).unwrap();
        for (p, (xp, vp)) in x.iter_mut().zip(v.iter_mut()).enumerate() {
            for a in 0..3 {
                xp[a] += 0.2 * cell * r(20 + 3 * p + a);
                vp[a] += 0.8 * r(200 + 3 * p + a);
            }
        }
        m.mass[0] = 0.0;
        if pins == 2 {
            m.mass[nx] = 0.0;
        }
        for (p, vp) in v.iter_mut().enumerate() {
            if !m.free(p) {
                *vp = [0.0; 3];
            }
        }
        check_forces_are_minus_the_energy_gradient(&m, &x);
        check_element_hessians(&m, &x, 2);
        let target = [1.0, -0.5, 0.3];
        let zero = vec![[0.0; 3]; m.len()];
        let (dt, steps) = (1e-3, 60);
        let loss = |x0: &[V3], v0: &[V3]| com_loss(&explicit::rollout(&m, x0, v0, dt, steps).last().0, target).0;
        let run = explicit::rollout(&m, &x, &v, dt, steps);
        let g = explicit::adjoint(&m, &run, dt, &com_loss(&run.last().0, target).1, &zero);
        proptest::prop_assume!(check_rollout("random explicit cloth", &x, &v, (&g.x0, &g.v0), &loss, 1e-6));
        for scheme in [Scheme::BackwardEuler, Scheme::Midpoint] {
            let stepper = Implicit::new(&m, 1.0 / 60.0, NewtonConfig::default())
                .unwrap()
                .with_scheme(scheme)
                .unwrap();
            let loss = |x0: &[V3], v0: &[V3]| {
                com_loss(&stepper.rollout(x0, v0, 6).unwrap().run.last().0, target).0
            };
            let run = stepper.rollout(&x, &v, 6).unwrap();
            let g = stepper.adjoint(&run, &com_loss(&run.run.last().0, target).1, &zero);
            proptest::prop_assume!(check_rollout(&format!("random implicit cloth, {scheme:?}"), &x, &v, (&g.x0, &g.v0), &loss, 1e-6));
        }
    }
}
