//! Contact of link points against the ground: a free box resting on its eight corners against
//! the law's closed-form equilibrium, and a box sliding to rest against Coulomb's stopping
//! distance, under both steppers; the closed-form contact partials against dual numbers;
//! refused settings.

use crate::models::{diag, sink, state, tree};
use diffsim::articulation::assets::mjx_humanoid_options;
use diffsim::articulation::contact::contact_partials;
use diffsim::articulation::{
    Articulation, Inertia, Joint, JointContact, JointKind, JointStepper, Link, Scheme, Transform,
    contact_forces, integrate, read_mjcf,
};
use diffsim::solids::contact::{Contact, Shape};
use num_dual::Dual64;

const G: f64 = 9.81;
const HALF: [f64; 3] = [0.2, 0.15, 0.1];

/// A free 2 kg box (half extents 0.2, 0.15, 0.1 m) and its eight corners against the ground
/// z = 0 with stiffness `ke`, damping 100, friction `mu` and smoothing `s`.
fn box_on_ground(ke: f64, mu: f64, s: f64) -> (Articulation, JointContact) {
    let m = 2.0;
    let [a, b, c] = HALF.map(|x| 2.0 * x);
    let model = Articulation {
        links: vec![Link {
            name: "box".into(),
            parent: None,
            joint: Joint::new(JointKind::Free, Transform::identity()),
            inertia: Inertia {
                m,
                com: [0.0; 3],
                ic: diag(
                    m * (b * b + c * c) / 12.0,
                    m * (a * a + c * c) / 12.0,
                    m * (a * a + b * b) / 12.0,
                ),
            },
        }],
        gravity: [0.0, 0.0, -G],
    };
    let corners = (0..8)
        .map(|k| {
            let sign = |bit: usize| if k >> bit & 1 == 1 { 1.0 } else { -1.0 };
            (
                0,
                [sign(0) * HALF[0], sign(1) * HALF[1], sign(2) * HALF[2]],
                0.0,
            )
        })
        .collect();
    let contact = JointContact {
        points: corners,
        shapes: vec![Shape::Plane {
            normal: [0.0, 0.0, 1.0],
            offset: 0.0,
        }],
        link_shapes: Vec::new(),
        law: Contact {
            ke,
            kd: 100.0,
            mu,
            smoothing: s,
        },
    };
    (model, contact)
}

/// Dropped flat from 5 cm, the box comes to rest where each bottom corner carries `mg/4`:
/// `z = 0.1 − s·ln(e^{mg/(4 ke s)} − 1)`; with balls of 2 cm about the corners, 2 cm higher.
#[test]
fn a_box_rests_on_its_corners_where_the_law_carries_its_weight() {
    let (ke, s) = (1e4, 1e-4);
    let (model, contact) = box_on_ground(ke, 0.5, s);
    let flat = HALF[2] - sink(2.0 * G / 4.0, ke, s);
    // Balls of 2 cm about the corners lift the rest height by their radius.
    let mut balls = contact.clone();
    balls.points.iter_mut().for_each(|p| p.2 = 0.02);
    for (scheme, h, steps, contact, expected) in [
        (Scheme::ImplicitEuler, 0.01, 300, &contact, flat),
        (Scheme::SemiImplicit, 1e-3, 3000, &contact, flat),
        (Scheme::ImplicitEuler, 0.01, 300, &balls, flat + 0.02),
    ] {
        let stepper = JointStepper::new(&model, h, scheme)
            .unwrap()
            .with_contact(contact.clone())
            .unwrap();
        let q0 = [0.0, 0.0, 0.15, 1.0, 0.0, 0.0, 0.0];
        let run = stepper.rollout(&q0, &[0.0; 6], &[], steps).unwrap();
        let (q, v) = (&run.q[steps], &run.v[steps]);
        let speed = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        println!(
            "{scheme:?}: rests at {:.9} m (closed form {expected:.9}), |v| {speed:.1e}",
            q[2]
        );
        assert!(
            (q[2] - expected).abs() < 1e-8 && speed < 1e-6,
            "{scheme:?}: {q:?} {v:?}"
        );
    }
}

/// Resting on the ground and pushed along x at 1 m/s, the box slides `v²/(2μg)` before it
/// stops (friction μ = 0.5 regularised below 1e-4 m/s).
#[test]
fn a_sliding_box_stops_after_coulombs_distance() {
    let (ke, s, mu) = (1e4, 1e-4, 0.5);
    let (model, contact) = box_on_ground(ke, mu, s);
    let rest = HALF[2] - sink(2.0 * G / 4.0, ke, s);
    let v0 = 1.0;
    let distance = v0 * v0 / (2.0 * mu * G);
    for (scheme, h, steps) in [
        (Scheme::ImplicitEuler, 1e-3, 400),
        (Scheme::SemiImplicit, 1e-3, 400),
    ] {
        let stepper = JointStepper::new(&model, h, scheme)
            .unwrap()
            .with_contact(contact.clone())
            .unwrap();
        let q0 = [0.0, 0.0, rest, 1.0, 0.0, 0.0, 0.0];
        let run = stepper
            .rollout(&q0, &[0.0, 0.0, 0.0, v0, 0.0, 0.0], &[], steps)
            .unwrap();
        let x = run.q[steps][0];
        println!("{scheme:?}: slides {x:.5} m (Coulomb {distance:.5} m)");
        assert!(
            (x / distance - 1.0).abs() < 0.01,
            "{scheme:?}: {x} vs {distance}"
        );
        assert!(run.v[steps][3].abs() < 1e-3);
    }
}

/// A free body (a root with a free joint) of mass `m` with a diagonal inertia.
fn free_body(name: &str, m: f64, ic: [f64; 3]) -> Link {
    Link {
        name: name.into(),
        parent: None,
        joint: Joint::new(JointKind::Free, Transform::identity()),
        inertia: Inertia {
            m,
            com: [0.0; 3],
            ic: diag(ic[0], ic[1], ic[2]),
        },
    }
}

/// In zero gravity, a free 3 kg box (half extents 0.2 m, carrying its shape) at the origin and
/// a free 1 kg ball (radius 5 cm) 0.4 m along −x, both at rest and unturned (ke 1e4, kd 20,
/// μ 0.5, smoothing 1 mm).
fn ball_and_box() -> (Articulation, JointContact, Vec<f64>) {
    let half = 0.2;
    let box_i = 3.0 * (2.0 * half * 2.0 * half) * 2.0 / 12.0;
    let model = Articulation {
        links: vec![
            free_body("box", 3.0, [box_i; 3]),
            free_body("ball", 1.0, [0.4 * 0.05 * 0.05; 3]),
        ],
        gravity: [0.0; 3],
    };
    let contact = JointContact {
        points: vec![(1, [0.0; 3], 0.05)],
        shapes: Vec::new(),
        link_shapes: vec![(
            0,
            Shape::Box {
                center: [0.0; 3],
                half: [half; 3],
            },
        )],
        law: Contact {
            ke: 1e4,
            kd: 20.0,
            mu: 0.5,
            smoothing: 1e-3,
        },
    };
    let q0 = vec![
        0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -0.4, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0,
    ];
    (model, contact, q0)
}

/// Through the whole oblique collision of the ball with the free box (thrown at (1, 0.3, 0.1)
/// m/s, spinning; it strikes 0.15 s later, slides with friction, turns the box and leaves),
/// the adjoint gradient of a loss on the final state (box position, velocity and spin, ball
/// velocity) in every initial velocity matches central differences (f64, step 1e-6): 300
/// implicit steps of 1 ms (measured 6e-9) and 15000 semi-implicit steps of 20 µs (4e-7). At
/// 0.1 ms the semi-implicit step's explicit friction (`μ f_n/s · h/m ≈ 5`) makes the map
/// itself rough: central differences at steps 1e-5 and 1e-6 differ by 5%.
#[test]
fn gradients_through_a_ball_box_collision_match_central_differences() {
    use diffsim::articulation::configuration_bar;
    let (model, contact, q0) = ball_and_box();
    let v0 = vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, -1.0, 3.0, 1.0, 0.3, 0.1];
    let weights = [
        0.3, -0.7, 0.5, 0.9, 0.4, -0.6, 1.1, 0.2, -0.3, 0.8, 0.5, 0.7,
    ];
    for (scheme, h, steps) in [
        (Scheme::ImplicitEuler, 1e-3, 300),
        (Scheme::SemiImplicit, 2e-5, 15000),
    ] {
        let stepper = JointStepper::new(&model, h, scheme)
            .unwrap()
            .with_contact(contact.clone())
            .unwrap();
        // L = w·(box x, y, z, ball x, y, z positions; every velocity).
        let loss = |v0: &[f64]| {
            let run = stepper.rollout(&q0, v0, &[], steps).unwrap();
            let (q, v) = (&run.q[steps], &run.v[steps]);
            let pos = [q[0], q[1], q[2], q[7], q[8], q[9]];
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
            let l = dot(&pos, &weights[..6]) + dot(v, &weights);
            (l, run)
        };
        let (_, run) = loss(&v0);
        let mut raw = vec![0.0; 14];
        for (k, at) in [0, 1, 2, 7, 8, 9].into_iter().enumerate() {
            raw[at] = weights[k];
        }
        let mut bars = vec![(Vec::new(), Vec::new()); steps + 1];
        bars[steps] = (
            configuration_bar(&model, &run.q[steps], &raw),
            weights.to_vec(),
        );
        let g = stepper.adjoint(&run, &[], &bars).unwrap();
        let box_moved = run.q[steps][0];
        assert!(
            box_moved > 0.01,
            "{scheme:?}: the ball must hit the box ({box_moved})"
        );
        let mut worst = 0.0f64;
        for k in 0..12 {
            let at = |e: f64| {
                let mut v = v0.clone();
                v[k] += e;
                loss(&v).0
            };
            let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
            let err = (g.v0[k] - fd).abs() / (1.0 + fd.abs());
            worst = worst.max(err);
            assert!(
                err < 1e-6,
                "{scheme:?} v0[{k}]: adjoint {} vs FD {fd}",
                g.v0[k]
            );
        }
        println!("{scheme:?}: box moved {box_moved:.4} m; worst adjoint vs FD {worst:.1e}");
    }
}

/// In zero gravity a 1 kg ball (radius 5 cm) thrown at 1 m/s along x at a free 3 kg box
/// (half extents 0.2 m) that carries its shape: the ball's contact pushes the box and the box
/// pushes back at the same point, so the total momentum stays 1 kg·m/s while the ball
/// bounces back and the box moves off, between a plastic and an elastic bounce (damping takes
/// part of the energy); head-on, nothing turns.
#[test]
fn a_ball_thrown_at_a_free_box_exchanges_momentum() {
    let (model, contact, q0) = ball_and_box();
    let mut v0 = vec![0.0; 12];
    v0[9] = 1.0;
    for (scheme, h, steps) in [
        (Scheme::ImplicitEuler, 1e-3, 500),
        (Scheme::SemiImplicit, 1e-4, 5000),
    ] {
        let stepper = JointStepper::new(&model, h, scheme)
            .unwrap()
            .with_contact(contact.clone())
            .unwrap();
        let run = stepper.rollout(&q0, &v0, &[], steps).unwrap();
        let v = &run.v[steps];
        let (box_v, ball_v) = (v[3], v[9]);
        let momentum = 3.0 * box_v + ball_v;
        let energy = 0.5 * 3.0 * box_v * box_v + 0.5 * ball_v * ball_v;
        let turn = v[..3]
            .iter()
            .chain(&v[6..9])
            .fold(0.0f64, |a, x| a.max(x.abs()));
        println!(
            "{scheme:?}: box {box_v:.6} m/s, ball {ball_v:.6} m/s, momentum {momentum:.15}, energy {energy:.6} J, |ω| {turn:.1e}"
        );
        assert!((momentum - 1.0).abs() < 1e-10, "{scheme:?}: {momentum}");
        // Between a plastic (both at 0.25 m/s, 0.125 J) and an elastic bounce (box 0.5 m/s,
        // ball −0.5 m/s, 0.5 J).
        assert!(
            box_v > 0.25 && box_v < 0.5 && ball_v < 0.0,
            "{scheme:?}: {box_v} {ball_v}"
        );
        assert!(energy < 0.5 && energy > 0.125, "{scheme:?}: {energy}");
        assert!(turn < 1e-12 && v[4..6].iter().chain(&v[10..]).all(|x| x.abs() < 1e-12));
    }
}

/// A 0.5 kg ball (radius 5 cm) on a free 2 kg box that carries its shape, the box on its
/// corners on the ground, the ball dropped over the box's centre (off it, the box would tilt
/// by its load): the box rests where each corner carries a quarter of both weights
/// and the ball where its one contact carries its own, `z = s·ln(e^{W/(ke s)} − 1)` below
/// the touching height for a load `W`.
#[test]
fn a_ball_rests_on_a_box_that_rests_on_the_ground() {
    let (ke, s) = (1e4, 1e-4);
    let (mut model, mut contact) = box_on_ground(ke, 0.5, s);
    let (ball_m, r) = (0.5, 0.05);
    model
        .links
        .push(free_body("ball", ball_m, [0.4 * ball_m * r * r; 3]));
    contact.points.push((1, [0.0; 3], r));
    contact.link_shapes.push((
        0,
        Shape::Box {
            center: [0.0; 3],
            half: HALF,
        },
    ));
    let box_z = HALF[2] - sink((2.0 + ball_m) * G / 4.0, ke, s);
    let ball_z = box_z + HALF[2] + r - sink(ball_m * G, ke, s);
    for (scheme, h, steps) in [
        (Scheme::ImplicitEuler, 0.01, 400),
        (Scheme::SemiImplicit, 5e-4, 6000),
    ] {
        let stepper = JointStepper::new(&model, h, scheme)
            .unwrap()
            .with_contact(contact.clone())
            .unwrap();
        let q0 = [
            0.0, 0.0, 0.12, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0,
        ];
        let run = stepper.rollout(&q0, &[0.0; 12], &[], steps).unwrap();
        let (q, v) = (&run.q[steps], &run.v[steps]);
        let speed = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        println!(
            "{scheme:?}: box at {:.9} m (closed form {box_z:.9}), ball at {:.9} m ({ball_z:.9}), |v| {speed:.1e}",
            q[2], q[9]
        );
        assert!((q[2] - box_z).abs() < 1e-8, "{scheme:?}: box {}", q[2]);
        assert!((q[9] - ball_z).abs() < 1e-8, "{scheme:?}: ball {}", q[9]);
        assert!(speed < 1e-6, "{scheme:?}: {v:?}");
    }
}

/// A point or a carried shape on a missing link, or a law without smoothing, is refused.
#[test]
fn bad_contacts_are_refused() {
    let (model, contact) = box_on_ground(1e4, 0.5, 1e-4);
    let stepper = || JointStepper::new(&model, 0.01, Scheme::SemiImplicit).unwrap();
    let mut far = contact.clone();
    far.points.push((3, [0.0; 3], 0.0));
    assert!(stepper().with_contact(far).is_err());
    let mut carried = contact.clone();
    carried.link_shapes.push((
        2,
        Shape::Sphere {
            center: [0.0; 3],
            radius: 0.1,
        },
    ));
    let err = stepper().with_contact(carried).err().unwrap().to_string();
    assert!(err.contains("carried by link 2"), "{err}");
    let mut flat = contact;
    flat.law.smoothing = 0.0;
    assert!(stepper().with_contact(flat).is_err());
}

/// `(∂τ/∂q, ∂τ/∂v)` of the contact forces by one dual-number pass of [`contact_forces`] per
/// direction (`q` through `q ⊕ δ`).
fn dual_partials(
    m: &Articulation,
    contact: &JointContact,
    q: &[f64],
    v: &[f64],
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let nv = m.nv();
    let lift = |x: &[f64]| -> Vec<Dual64> { x.iter().map(|&r| Dual64::from(r)).collect() };
    let seed = |k: usize| -> Vec<Dual64> {
        (0..nv)
            .map(|j| Dual64::new(0.0, f64::from(u8::from(j == k))))
            .collect()
    };
    let (ql, vl) = (lift(q), lift(v));
    let mut dq = vec![vec![0.0; nv]; nv];
    let mut dv = vec![vec![0.0; nv]; nv];
    for k in 0..nv {
        let by_q = contact_forces(m, contact, &integrate(m, &ql, &seed(k)), &vl);
        let moved: Vec<Dual64> = vl.iter().zip(seed(k)).map(|(a, b)| *a + b).collect();
        let by_v = contact_forces(m, contact, &ql, &moved);
        for r in 0..nv {
            dq[r][k] = by_q[r].eps;
            dv[r][k] = by_v[r].eps;
        }
    }
    (dq, dv)
}

/// The closed-form `∂τ/∂q`, `∂τ/∂v` of the contact forces equal the dual-number ones: the
/// tree with every joint kind (free base, ball, revolute, prismatic, fixed) with points on
/// five links against a plane and a sphere and against a box and a ball carried by two of the
/// links (a wide smoothing so every point feels force, friction and damping), a box on its corners, and MJX's humanoid on its feet (the `squat`
/// key, moving), whose stiff law (1 mm smoothing) makes entries of 1e5.
#[test]
fn closed_form_contact_partials_equal_dual_numbers() {
    let m = tree();
    let (q, v, _) = state(&m);
    let contact = JointContact {
        points: vec![
            (0, [0.1, -0.2, 0.05], 0.0),
            (1, [0.0, 0.1, -0.5], 0.03),
            (2, [0.2, 0.0, -0.3], 0.0),
            (3, [0.0, 0.1, 0.1], 0.02),
            (5, [0.1, 0.2, 0.0], 0.0),
        ],
        shapes: vec![
            Shape::Plane {
                normal: [0.0, 0.6, 0.8],
                offset: -0.4,
            },
            Shape::Sphere {
                center: [0.3, -0.2, -0.5],
                radius: 0.4,
            },
        ],
        link_shapes: vec![
            (
                4,
                Shape::Box {
                    center: [0.0, 0.2, -0.1],
                    half: [0.3, 0.2, 0.25],
                },
            ),
            (
                3,
                Shape::Sphere {
                    center: [0.1, 0.0, 0.2],
                    radius: 0.35,
                },
            ),
        ],
        law: Contact {
            ke: 300.0,
            kd: 20.0,
            mu: 0.6,
            smoothing: 0.3,
        },
    };
    let (box_model, box_contact) = box_on_ground(1e4, 0.7, 0.05);
    let box_q = integrate(
        &box_model,
        &box_model.neutral(),
        &[0.3, -0.2, 0.5, 0.1, 0.2, 0.12],
    );
    let box_v = vec![0.4, -0.3, 0.2, 0.5, -0.6, -0.1];
    let dir = env!("CARGO_MANIFEST_DIR");
    let humanoid = read_mjcf(
        std::path::Path::new(&format!("{dir}/data/robots/mjx/humanoid.xml")),
        &mjx_humanoid_options(),
    )
    .unwrap();
    let walker = &humanoid.articulation;
    let walker_contact = humanoid.contact.clone().unwrap();
    let squat = humanoid.keyframes[0].1.clone();
    let walker_v: Vec<f64> = (0..walker.nv())
        .map(|k| 0.02 * (1.3 * k as f64).sin())
        .collect();
    for (m, contact, q, v) in [
        (&m, &contact, &q, &v),
        (&box_model, &box_contact, &box_q, &box_v),
        (walker, &walker_contact, &squat, &walker_v),
    ] {
        let nv = m.nv();
        let (want_q, want_v) = dual_partials(m, contact, q, v);
        let (mut dq, mut dv) = (vec![vec![0.0; nv]; nv], vec![vec![0.0; nv]; nv]);
        contact_partials(m, contact, q, v, &mut dq, &mut dv);
        let scale = want_q
            .iter()
            .chain(&want_v)
            .flatten()
            .fold(0.0f64, |a, x| a.max(x.abs()));
        assert!(scale > 1.0, "the points must feel the contact: {scale}");
        for (got, want) in [(&dq, &want_q), (&dv, &want_v)] {
            for r in 0..nv {
                for c in 0..nv {
                    let err = (got[r][c] - want[r][c]).abs();
                    assert!(
                        err <= 1e-12 * scale,
                        "entry ({r}, {c}): {} vs {} (scale {scale})",
                        got[r][c],
                        want[r][c]
                    );
                }
            }
        }
    }
}
