//! Rigid–soft coupling (`diffsim::rigid::coupled`): closed forms of attachments and
//! body–particle contact, a rigid bar holding and lifting a cloth, and bad models refused.

use diffsim::rigid::{
    Attachment, BodyShape, BodyState, Coupled, CoupledBar, CoupledModel, CoupledSemiImplicit,
    CoupledState, RigidBody, RigidModel, Wrench,
};
use diffsim::solids::cloth::ClothMaterial;
use diffsim::solids::contact::{Contact, Shape};
use diffsim::solids::{Model, V3, scenes};

const G: f64 = 9.81;

/// A sphere body (r 0.1 m, 1000 kg/m³) and one particle of `m` kg.
fn sphere_and_particle(m: f64) -> CoupledModel {
    let sphere = RigidBody::from_shape(&BodyShape::Sphere { r: 0.1 }, 1000.0).unwrap();
    CoupledModel {
        soft: Model {
            mass: vec![m],
            ..Model::default()
        },
        rigid: RigidModel {
            bodies: vec![sphere],
            ..RigidModel::default()
        },
        ..CoupledModel::default()
    }
}

/// A 1 kg particle pinned (k 400 N/m) to the point 0.2 m along a sphere body's x-axis, 5 cm
/// beyond it, at rest; and the pair's `ω = √(k(1/m + 1/M))`.
fn pinned_pair() -> (CoupledModel, CoupledState, f64) {
    let (m, k) = (1.0, 400.0);
    let mut model = sphere_and_particle(m);
    model.attachments = vec![Attachment::pin(0, [0.2, 0.0, 0.0], 0, k)];
    let big_m = model.rigid.bodies[0].mass;
    let init = CoupledState {
        x: vec![[0.25, 0.0, 0.0]],
        v: vec![[0.0; 3]],
        bodies: vec![BodyState::at([0.0; 3])],
    };
    (model, init, (k * (1.0 / m + 1.0 / big_m)).sqrt())
}

/// A body and a particle pinned to a point on its x-axis, released with the pin stretched
/// along that axis: the relative offset `u` obeys `ü = −k(1/m + 1/M)u`, which backward Euler
/// turns into `u₁ = u₀ + h·w₁`, `w₁ = w₀ − hω²u₁`. The coupled step must reproduce that
/// recursion exactly (the system is linear and nothing turns), keep the total momentum at
/// zero, and its period must be the closed form's to `(ωh)²/3`.
#[test]
fn a_pinned_particle_and_body_oscillate_as_the_two_mass_closed_form() {
    let (model, init, omega) = pinned_pair();
    let (m, big_m) = (1.0, model.rigid.bodies[0].mass);
    let h = 0.01 / omega;
    let period = 2.0 * std::f64::consts::PI / omega;
    let steps = (3.0 * period / h).ceil() as usize;
    let run = Coupled::new(&model, h)
        .unwrap()
        .rollout(&init, steps)
        .unwrap();
    let (mut u, mut w) = (0.05, 0.0);
    let (mut worst, mut worst_p) = (0.0f64, 0.0f64);
    let mut crossings = Vec::new();
    let mut last_u = u;
    for (n, s) in run.states.iter().enumerate().skip(1) {
        w = (w - h * omega * omega * u) / (1.0 + h * h * omega * omega);
        u += h * w;
        let got = s.x[0][0] - s.bodies[0].c[0] - 0.2;
        worst = worst.max((got - u).abs());
        // Newton stops at a residual of 1e-13 of the inertia scale, so the momentum is kept
        // to about h·1e-13·M/h² per step (1e-9 of the momentum amplitude m·u₀·ω).
        let p: f64 = (0..3)
            .map(|a| (m * s.v[0][a] + big_m * s.bodies[0].v[a]).abs())
            .sum();
        worst_p = worst_p.max(p);
        assert!(p < 1e-9 * m * 0.05 * omega, "momentum {p:e} at step {n}");
        assert!(s.bodies[0].w.iter().all(|x| x.abs() < 1e-12));
        if last_u > 0.0 && got <= 0.0 {
            crossings.push((n as f64 - 1.0 + last_u / (last_u - got)) * h);
        }
        last_u = got;
    }
    assert!(worst < 1e-12 * 0.05, "off the recursion by {worst:e}");
    let measured = (crossings[2] - crossings[0]) / 2.0;
    let rel = (measured / period - 1.0).abs();
    println!(
        "period {measured} vs {period} (rel {rel:e}), recursion error {worst:e}, momentum {worst_p:e}"
    );
    assert!(rel < 0.01f64.powi(2) / 3.0 * 1.5, "period off by {rel:e}");
}

/// `ke·s·softplus(δ/s) = F`: the penetration `δ` at which the smooth normal force holds `F`.
fn penetration(ke: f64, s: f64, f: f64) -> f64 {
    s * ((f / (ke * s)).exp() - 1.0).ln()
}

/// A 0.1 kg particle (radius 2 cm) dropped 2 mm onto a sphere body dropped 1 mm onto the
/// ground (ke 1e4, kd 200, μ 0.5, s 1e-3), and the closed-form heights `(y_c, y_p)` of their
/// centres at rest.
fn particle_on_sphere_on_ground() -> (CoupledModel, CoupledState, (f64, f64)) {
    let m = 0.1;
    let (ke, s, rp) = (1e4, 1e-3, 0.02);
    let mut model = sphere_and_particle(m);
    model.soft.gravity = [0.0, -G, 0.0];
    model.rigid.gravity = [0.0, -G, 0.0];
    model.rigid.obstacles = vec![Shape::Plane {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
    }];
    model.rigid.contact = Contact {
        ke,
        kd: 200.0,
        mu: 0.5,
        smoothing: s,
    };
    model.particle_contact = true;
    model.particle_radius = rp;
    let big_m = model.rigid.bodies[0].mass;
    let yc = 0.1 - penetration(ke, s, (big_m + m) * G);
    let yp = yc + 0.1 + rp - penetration(ke, s, m * G);
    let init = CoupledState {
        x: vec![[0.0, yp + 2e-3, 0.0]],
        v: vec![[0.0; 3]],
        bodies: vec![BodyState::at([0.0, yc + 1e-3, 0.0])],
    };
    (model, init, (yc, yp))
}

/// A particle resting on a sphere body resting on the ground: the sphere sinks until its
/// contact holds both weights, the particle until its contact with the sphere holds its own.
#[test]
fn a_particle_rests_on_a_body_resting_on_the_ground() {
    let (model, init, (yc, yp)) = particle_on_sphere_on_ground();
    let run = Coupled::new(&model, 2e-3)
        .unwrap()
        .rollout(&init, 1500)
        .unwrap();
    let last = run.states.last().unwrap();
    let (ec, ep) = (last.bodies[0].c[1] - yc, last.x[0][1] - yp);
    println!("body {ec:e}, particle {ep:e} off the closed form");
    assert!(ec.abs() < 1e-9 && ep.abs() < 1e-9);
}

/// Warp's semi-implicit coupled step on the same two closed forms: the pinned pair follows
/// symplectic Euler's recursion `w₁ = w₀ − hω²u₀`, `u₁ = u₀ + h·w₁` exactly, with the total
/// momentum at round-off and the period `2π/ω_d`, `ω_d = (2/h)·asin(ωh/2)`; the particle on
/// the sphere on the ground settles at the smooth law's penetrations.
#[test]
fn the_semi_implicit_coupled_step_oscillates_and_rests_as_the_closed_forms() {
    let (model, init, omega) = pinned_pair();
    let (m, big_m) = (1.0, model.rigid.bodies[0].mass);
    let h = 0.05 / omega;
    let steps = (3.0 * 2.0 * std::f64::consts::PI / omega / h).ceil() as usize;
    let run = CoupledSemiImplicit::new(&model, h)
        .unwrap()
        .rollout(&init, steps)
        .unwrap();
    let (mut u, mut w) = (0.05f64, 0.0f64);
    let (mut worst, mut worst_p) = (0.0f64, 0.0f64);
    let (mut crossings, mut last_u) = (Vec::new(), u);
    for (n, st) in run.states.iter().enumerate().skip(1) {
        w -= h * omega * omega * u;
        u += h * w;
        let got = st.x[0][0] - st.bodies[0].c[0] - 0.2;
        worst = worst.max((got - u).abs());
        let p: f64 = (0..3)
            .map(|a| (m * st.v[0][a] + big_m * st.bodies[0].v[a]).abs())
            .sum();
        worst_p = worst_p.max(p);
        if last_u > 0.0 && got <= 0.0 {
            crossings.push((n as f64 - 1.0 + last_u / (last_u - got)) * h);
        }
        last_u = got;
    }
    let discrete = 2.0 * std::f64::consts::PI / (2.0 / h * (0.5 * omega * h).asin());
    let measured = (crossings[2] - crossings[0]) / 2.0;
    println!("recursion error {worst:e}, momentum {worst_p:e}, period {measured} vs {discrete}");
    assert!(worst < 1e-13, "off the recursion by {worst:e}");
    assert!(worst_p < 1e-13 * m * 0.05 * omega, "momentum {worst_p:e}");
    assert!(
        (measured / discrete - 1.0).abs() < 1e-4,
        "period {measured} vs {discrete}"
    );

    let (model, init, (yc, yp)) = particle_on_sphere_on_ground();
    let last = CoupledSemiImplicit::new(&model, 2e-4)
        .unwrap()
        .rollout(&init, 15_000)
        .unwrap()
        .states
        .pop()
        .unwrap();
    let (ec, ep) = (last.bodies[0].c[1] - yc, last.x[0][1] - yp);
    println!("semi-implicit rest: body {ec:e}, particle {ep:e} off the closed form");
    assert!(ec.abs() < 1e-9 && ep.abs() < 1e-9);
}

/// A particle sliding on a heavy box body that lies on the ground decelerates at `μg` and
/// stops after `v₀²/(2μg)`.
#[test]
fn a_particle_slides_to_rest_on_a_body_under_coulomb_friction() {
    let (m, mu, v0) = (0.1, 0.5, 1.0);
    let slab = RigidBody::from_shape(
        &BodyShape::Box {
            half: [1.0, 0.05, 1.0],
        },
        250.0,
    )
    .unwrap();
    let model = CoupledModel {
        soft: Model {
            mass: vec![m],
            gravity: [0.0, -G, 0.0],
            ..Model::default()
        },
        rigid: RigidModel {
            bodies: vec![slab],
            gravity: [0.0, -G, 0.0],
            obstacles: vec![Shape::Plane {
                normal: [0.0, 1.0, 0.0],
                offset: 0.0,
            }],
            contact: Contact {
                ke: 1e5,
                kd: 1e3,
                mu,
                smoothing: 1e-4,
            },
            ..RigidModel::default()
        },
        particle_contact: true,
        particle_radius: 0.01,
        ..CoupledModel::default()
    };
    let h = 1e-3;
    let stepper = Coupled::new(&model, h).unwrap();
    let rest = CoupledState {
        x: vec![[-0.5, 0.11, 0.0]],
        v: vec![[0.0; 3]],
        bodies: vec![BodyState::at([0.0, 0.05, 0.0])],
    };
    let settled = stepper.rollout(&rest, 300).unwrap();
    let mut start = settled.states.last().unwrap().clone();
    start.v[0] = [v0, 0.0, 0.0];
    let run = stepper.rollout(&start, 250).unwrap();
    let v = |n: usize| run.states[n].v[0][0];
    let decel = (v(20) - v(80)) / (60.0 * h);
    let travel = run.states.last().unwrap().x[0][0] - start.x[0][0];
    let stop = v0 * v0 / (2.0 * mu * G);
    println!(
        "deceleration {decel} (μg = {}), travel {travel} (closed form {stop})",
        mu * G
    );
    assert!((decel / (mu * G) - 1.0).abs() < 1e-3);
    assert!((travel / stop - 1.0).abs() < 0.01);
    assert!(v(250).abs() < 1e-4);
}

/// A rigid bar holding a 4×4-cell cloth by pins at its two top corners: held by a force equal
/// to the total weight, the system's momentum stays zero and, once the cloth has settled, the
/// pins carry its weight; lifted by 1.5 times the weight, the momentum grows by exactly
/// `h·(F − Mg)` per step and the whole cloth rises with the bar.
#[test]
fn a_rigid_bar_holds_and_lifts_a_cloth() {
    let material = ClothMaterial {
        tri_ke: 500.0,
        tri_ka: 500.0,
        tri_kd: 5.0,
        edge_ke: 0.1,
        ..ClothMaterial::default()
    };
    let (soft, x, v) = scenes::cloth_grid((4, 4), 0.05, 0.0, [0.0; 3], 0.01, &material).unwrap();
    let m_cloth: f64 = soft.mass.iter().sum();
    let g = -soft.gravity[1];
    let bar = RigidBody::from_shape(
        &BodyShape::Box {
            half: [0.12, 0.01, 0.01],
        },
        500.0,
    )
    .unwrap();
    let big_m = bar.mass;
    let k = 200.0;
    let pins = [(20, [-0.1, -0.01, 0.0]), (24, [0.1, -0.01, 0.0])];
    let mut model = CoupledModel {
        rigid: RigidModel {
            bodies: vec![bar],
            gravity: soft.gravity,
            ..RigidModel::default()
        },
        soft,
        attachments: pins
            .iter()
            .map(|&(p, a)| Attachment {
                damping: 2.0,
                ..Attachment::pin(0, a, p, k)
            })
            .collect(),
        ..CoupledModel::default()
    };
    let weight = (big_m + m_cloth) * g;
    let h = 5e-3;
    let hold_steps = 400;
    model.rigid.wrenches = vec![
        vec![Wrench {
            f: [0.0, weight, 0.0],
            t: [0.0; 3]
        }];
        hold_steps
    ];
    let init = CoupledState {
        x,
        v,
        bodies: vec![BodyState::at([0.1, 0.21, 0.0])],
    };
    let momentum = |s: &CoupledState| -> V3 {
        std::array::from_fn(|a| {
            big_m * s.bodies[0].v[a]
                + s.v
                    .iter()
                    .zip(&model.soft.mass)
                    .map(|(v, m)| m * v[a])
                    .sum::<f64>()
        })
    };
    let held = Coupled::new(&model, h)
        .unwrap()
        .rollout(&init, hold_steps)
        .unwrap();
    let drift = held
        .states
        .iter()
        .map(|s| momentum(s).iter().fold(0.0f64, |a, p| a.max(p.abs())))
        .fold(0.0, f64::max);
    println!("held: momentum at most {drift:e} kg·m/s");
    assert!(drift < 1e-9 * weight * h * hold_steps as f64);
    let last = held.states.last().unwrap();
    let carried: f64 = pins
        .iter()
        .map(|&(p, a)| k * (last.bodies[0].c[1] + a[1] - last.x[p][1]))
        .sum();
    println!("pins carry {carried} N of the cloth's {} N", m_cloth * g);
    assert!((carried / (m_cloth * g) - 1.0).abs() < 1e-6);
    // Lift.
    let lift = 1.5 * weight;
    let lift_steps = 100;
    model.rigid.wrenches = vec![
        vec![Wrench {
            f: [0.0, lift, 0.0],
            t: [0.0; 3]
        }];
        lift_steps
    ];
    let lifted = Coupled::new(&model, h)
        .unwrap()
        .rollout(last, lift_steps)
        .unwrap();
    for (n, s) in lifted.states.iter().enumerate() {
        let expect = n as f64 * h * (lift - weight);
        assert!((momentum(s)[1] - expect).abs() < 1e-9 * (lift * h * lift_steps as f64));
    }
    let end = lifted.states.last().unwrap();
    let rise = end.bodies[0].c[1] - last.bodies[0].c[1];
    let cloth_rise: Vec<f64> = (0..end.x.len())
        .map(|p| end.x[p][1] - last.x[p][1])
        .collect();
    let lowest = cloth_rise.iter().copied().fold(f64::INFINITY, f64::min);
    println!("bar rose {rise} m, cloth particles at least {lowest} m");
    assert!(rise > 0.1 && lowest > 0.8 * rise);
}

/// The same rollout differentiated twice gives bit-identical gradients.
#[test]
fn coupled_gradients_are_reproducible() {
    let mut model = sphere_and_particle(0.5);
    model.attachments = vec![Attachment {
        damping: 1.0,
        rest: 0.05,
        ..Attachment::pin(0, [0.1, 0.05, 0.0], 0, 100.0)
    }];
    let init = CoupledState {
        x: vec![[0.3, 0.1, 0.05]],
        v: vec![[0.0, 0.5, 0.0]],
        bodies: vec![BodyState {
            w: [0.5, 1.0, -0.5],
            ..BodyState::at([0.0; 3])
        }],
    };
    let grads = || {
        let st = Coupled::new(&model, 0.01).unwrap();
        let run = st.rollout(&init, 20).unwrap();
        let mut bars = vec![CoupledBar::default(); 21];
        bars[20].x = vec![[1.0, -2.0, 0.5]];
        st.adjoint(&run, &bars)
    };
    let (a, b) = (grads(), grads());
    assert_eq!(a, b);
    assert!(a.soft.x0[0].iter().any(|g| g.abs() > 1e-3));
}

/// A model the coupling cannot run is refused with one line naming the problem.
#[test]
fn bad_coupled_models_are_refused() {
    let base = {
        let mut m = sphere_and_particle(1.0);
        m.attachments = vec![Attachment::pin(0, [0.0; 3], 0, 10.0)];
        m
    };
    let cases: Vec<(CoupledModel, &str)> = vec![
        (
            CoupledModel {
                attachments: vec![Attachment::pin(1, [0.0; 3], 0, 10.0)],
                ..base.clone()
            },
            "attachment 0: body 1 does not exist",
        ),
        (
            CoupledModel {
                attachments: vec![Attachment::pin(0, [0.0; 3], 3, 10.0)],
                ..base.clone()
            },
            "attachment 0: particle 3 does not exist",
        ),
        (
            CoupledModel {
                attachments: vec![Attachment::pin(0, [0.0; 3], 0, 0.0)],
                ..base.clone()
            },
            "attachment 0: stiffness 0 is not positive",
        ),
        (
            CoupledModel {
                attachments: vec![Attachment {
                    rest: -1.0,
                    ..Attachment::pin(0, [0.0; 3], 0, 1.0)
                }],
                ..base.clone()
            },
            "rest length -1 is negative",
        ),
        (
            {
                let mut m = base.clone();
                m.soft.gravity = [0.0, -G, 0.0];
                m
            },
            "the same gravity",
        ),
    ];
    for (model, expect) in cases {
        let err = Coupled::new(&model, 0.01)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(expect), "{err}");
        assert!(!err.contains('\n'));
    }
    let nan = CoupledState {
        x: vec![[f64::NAN, 0.0, 0.0]],
        v: vec![[0.0; 3]],
        bodies: vec![BodyState::at([0.0; 3])],
    };
    let err = Coupled::new(&base, 0.01)
        .unwrap()
        .rollout(&nan, 1)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("particle 0"), "{err}");
}

/// A soft cube (0.1 m, 8 nodes, 5 stable Neo-Hookean tetrahedra with μ 0.4 MPa, λ 1 MPa,
/// 0.4 kg) squeezed between two rigid jaws with `squeeze` N each and lifted by them with
/// `lift` N in total beyond the jaws' weight, for `steps` steps of 1 ms. Returns the cube's mass, the upward acceleration
/// of the whole system and the cube's mean vertical velocity relative to the jaws at the end.
fn grip(mu: f64, squeeze: f64, lift: f64, steps: usize) -> (f64, f64, f64, f64) {
    use diffsim::solids::fem::Tet;
    let (half, s) = (0.05, 1e-3);
    let x: Vec<V3> = (0..8)
        .map(|k| {
            let (i, j, l) = (k & 1, (k >> 1) & 1, (k >> 2) & 1);
            [
                (2 * i) as f64 * half - half,
                (2 * j) as f64 * half - half,
                (2 * l) as f64 * half - half,
            ]
        })
        .collect();
    let tets = [
        [1, 5, 3, 0],
        [4, 0, 6, 5],
        [2, 6, 0, 3],
        [7, 3, 5, 6],
        [3, 5, 6, 0],
    ]
    .iter()
    .map(|t| Tet::new(*t, &x, 4e5, 1e6).unwrap())
    .collect();
    let g = [0.0, -G, 0.0];
    let soft = Model {
        mass: vec![0.05; 8],
        gravity: g,
        tets,
        ..Model::default()
    };
    let m: f64 = soft.mass.iter().sum();
    let mut jaw = RigidBody::from_shape(
        &BodyShape::Box {
            half: [0.02, 0.1, 0.1],
        },
        1000.0,
    )
    .unwrap();
    // A jaw on a guide that keeps it from turning (its moment of inertia ×1e6).
    jaw.inertia = jaw.inertia.map(|r| r.map(|v| 1e6 * v));
    let big_m = jaw.mass;
    let rp = 0.005;
    // The jaws start where their four contacts hold the squeeze: ke·s·softplus(−φ/s) = F/4.
    let ke = 1e5;
    let gap = half + 0.02 + rp - penetration(ke, s, 0.25 * squeeze);
    let up = big_m * G + 0.5 * lift;
    let model = CoupledModel {
        soft,
        rigid: RigidModel {
            bodies: vec![jaw.clone(), jaw],
            gravity: g,
            contact: Contact {
                ke,
                kd: 1e4,
                mu,
                smoothing: s,
            },
            wrenches: vec![
                vec![
                    Wrench {
                        f: [squeeze, up, 0.0],
                        t: [0.0; 3]
                    },
                    Wrench {
                        f: [-squeeze, up, 0.0],
                        t: [0.0; 3]
                    },
                ];
                steps
            ],
            ..RigidModel::default()
        },
        particle_contact: true,
        particle_radius: rp,
        ..CoupledModel::default()
    };
    let init = CoupledState {
        x: x.clone(),
        v: vec![[0.0; 3]; 8],
        bodies: vec![
            BodyState::at([-gap, 0.0, 0.0]),
            BodyState::at([gap, 0.0, 0.0]),
        ],
    };
    let run = Coupled::new(&model, 1e-3)
        .unwrap()
        .rollout(&init, steps)
        .unwrap();
    let last = run.states.last().unwrap();
    let accel = (lift - m * G) / (m + 2.0 * big_m);
    let cube_v = last.v.iter().map(|v| v[1]).sum::<f64>() / 8.0;
    let jaw_v = 0.5 * (last.bodies[0].v[1] + last.bodies[1].v[1]);
    let cube_y = last.x.iter().map(|x| x[1]).sum::<f64>() / 8.0;
    let jaw_y = 0.5 * (last.bodies[0].c[1] + last.bodies[1].c[1]);
    (m, accel, cube_v - jaw_v, cube_y - jaw_y)
}

/// Two rigid jaws lift a soft cube by friction alone. Held (`2μF` twice the cube's apparent
/// weight `m(g + a)`), the cube rises with the jaws, creeping down them at the regularised
/// law's closed-form speed `s·r/√(1 − r²)`, `r = m(g + a)/(2μF)`; with `2μF` half of the
/// apparent weight, the cube slides down the jaws: it accelerates at `2μF/m − g`, the jaws at
/// `(lift/2 − μF)/M`. (A softer cube, μ 2e4 Pa, creeps 7% faster: its face nodes slip at
/// different speeds, and the regularised law is concave in the speed.)
#[test]
fn rigid_jaws_lift_a_soft_cube_by_friction() {
    let (mu, s) = (0.5, 1e-3);
    let lift = 30.0;
    let (m, a, _, _) = grip(mu, 1.0, lift, 1);
    let apparent = m * (G + a);
    let held = apparent / mu;
    let (_, _, _, y0) = grip(mu, held, lift, 400);
    let (_, _, creep, y1) = grip(mu, held, lift, 800);
    let r = apparent / (2.0 * mu * held);
    let closed = -s * r / (1.0 - r * r).sqrt();
    let mean = (y1 - y0) / 0.4;
    println!("held: creep {creep:e} m/s, mean {mean:e} m/s over 0.4 s; closed form {closed:e}");
    assert!((mean / closed - 1.0).abs() < 0.01 && (creep / closed - 1.0).abs() < 0.01);
    // Slipping, the cube accelerates at 2μF/m − g and the jaws at (lift/2 − μF)/M.
    let weak = apparent / (4.0 * mu);
    let (_, _, v1, _) = grip(mu, weak, lift, 40);
    let (_, _, v2, _) = grip(mu, weak, lift, 80);
    let slide = (v2 - v1) / 0.04;
    let big_m = (lift - m * G) / a - m;
    let closed = (2.0 * mu * weak / m - G) - (0.5 * lift - mu * weak) / (0.5 * big_m);
    println!("slipping: relative acceleration {slide} m/s², closed form {closed}");
    assert!((slide / closed - 1.0).abs() < 0.005);
}
