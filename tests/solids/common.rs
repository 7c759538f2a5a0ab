//! Scenes, losses and finite-difference checks shared by the solids tests.

pub use diffsim::solids::implicit::{Implicit, NewtonConfig, Scheme};
pub use diffsim::solids::{Model, Params, V3, explicit, scenes};

pub const SCHEMES: [Scheme; 2] = [Scheme::BackwardEuler, Scheme::Midpoint];

/// The implicit stepper of `m` with `scheme`.
pub fn stepper(m: &Model, dt: f64, scheme: Scheme) -> Implicit<'_> {
    Implicit::new(m, dt, NewtonConfig::default())
        .unwrap()
        .with_scheme(scheme)
        .unwrap()
}

/// The cage with rest lengths 10–30% off equilibrium, so the particle moves.
pub fn cage() -> (Model, Vec<V3>, V3) {
    let (mut m, x, t) = scenes::spring_cage();
    for (k, s) in m.springs.iter_mut().enumerate() {
        s.rest *= 1.1 + 0.025 * k as f64;
    }
    (m, x, t)
}

pub fn loss(x: &[V3], target: V3) -> (f64, Vec<V3>) {
    diffsim::solids::point_loss(x, 0, target)
}

/// A loss of a rollout from `(model, x0, v0)`.
pub type RolloutLoss<'a> = dyn Fn(&Model, &[V3], &[V3]) -> f64 + 'a;

/// Central differences of `f` in every rest length, stiffness, damping and the free
/// particle's initial position and velocity, against `grad`.
pub fn check(name: &str, m: &Model, x0: &[V3], grad: &Params, f: &RolloutLoss<'_>) {
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

/// The cage with a smooth control force on its particle in each of `steps` steps.
pub fn controlled_cage(steps: usize) -> (Model, Vec<V3>, V3) {
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
pub fn check_controls(name: &str, m: &Model, x0: &[V3], grad: &Params, f: &RolloutLoss<'_>) {
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

/// A random mass-spring network: `n` particles (the first two fixed), springs between random
/// pairs with random stiffness, damping and rest lengths (off equilibrium), gravity.
pub fn random_network(seed: &[f64], n: usize) -> (Model, Vec<V3>) {
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

/// Two stable Neo-Hookean tetrahedra sharing a face, three nodes fixed, stretched and sagging
/// under gravity.
pub fn tet_block() -> (Model, Vec<V3>) {
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

/// The 12×12 element Hessian as a dense row-major matrix.
pub fn dense_tet_hessian(hb: &[[[[f64; 3]; 3]; 4]; 4]) -> faer::Mat<f64> {
    faer::Mat::from_fn(12, 12, |r, c| hb[r / 3][c / 3][r % 3][c % 3])
}

pub fn eigenvalues(h: &faer::Mat<f64>) -> Vec<f64> {
    h.self_adjoint_eigenvalues(faer::Side::Lower).unwrap()
}

/// Central differences of `f` (a loss of the model) in μ, λ and the activation of the first
/// two tetrahedra against the gradients `g`: |AD − FD| ≤ 1e-5·|FD| + `floor`.
pub fn check_tet_materials(m: &Model, g: &Params, f: &dyn Fn(&Model) -> f64, floor: f64) {
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

/// The tetrahedron block with its own activation in each of the first `steps - 5` steps
/// (smooth in time; the last 5 steps fall back to the tetrahedra's own).
pub fn activated_block(steps: usize) -> (Model, Vec<V3>) {
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
pub fn check_activations(
    name: &str,
    m: &Model,
    grad: &Params,
    f: &dyn Fn(&Model) -> f64,
    floor: f64,
) {
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

/// A particle thrown along the ground with friction (μ = 0.5), at its resting depth.
pub fn sliding_particle() -> (Model, Vec<V3>, Vec<V3>) {
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

/// Central differences (step 1e-6) of `f(x₀, v₀)` in particle 0's first `axes` coordinates
/// of x₀ and v₀ against the gradients `g`: |AD − FD| ≤ 1e-5·|FD| + 1e-8.
pub fn check_particle_start(
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

/// The B4 cube (27 particles, 40 tetrahedra, thrown at 5 m/s down and sideways) over rough
/// ground 5 cm below it (contact damping and friction are lagged terms of the step).
pub fn cube_on_rough_ground() -> (Model, Vec<V3>, Vec<V3>) {
    let (mut m, x0, v0, _) = scenes::softbody_material(1e-3).unwrap();
    m.shapes.truncate(1);
    m.shapes[0] = diffsim::solids::contact::Shape::Plane {
        normal: [0.0, 1.0, 0.0],
        offset: 0.95,
    };
    m.contact.mu = 0.5;
    (m, x0, v0)
}

/// Whether some particle of `r` went below the cube's ground (so contact was exercised).
pub fn landed(r: &diffsim::solids::implicit::ImplicitRollout) -> bool {
    let low = r.run.states.iter().flat_map(|s| s.0.iter().map(|p| p[1]));
    low.fold(f64::MAX, f64::min) < 0.95
}

/// A 3×2-cell cloth with two pinned corners, bent, moving through air (lift and drag depend
/// on the lagged velocity, so `Bₙ` gets more than the inertia).
pub fn pinned_cloth() -> (Model, Vec<V3>, Vec<V3>) {
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
pub fn unit_seeds(n: usize, p: usize) -> Vec<Vec<V3>> {
    (0..3)
        .map(|a| {
            let mut s = vec![[0.0; 3]; n];
            s[p][a] = 1.0;
            s
        })
        .collect()
}

/// A random tetrahedral mesh: a cube of 0.1 m split into 5 tetrahedra with every corner
/// jittered by up to 15% of the edge, random μ ∈ [2e3, 2e4] Pa, λ ∈ [5e3, 5e4] Pa and
/// activations ±0.05 per element, corners 0 and 1 fixed, the rest of random mass; started
/// from a further random deformation (±10%). `r(k)` ∈ [−1, 1] draws the numbers.
pub fn random_tet_mesh(r: &dyn Fn(usize) -> f64) -> (Model, Vec<V3>) {
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
