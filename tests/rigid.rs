//! Rigid bodies against closed forms: the torque-free symmetric top (energy and world angular
//! momentum per scheme), the intermediate-axis flip, constant force from rest, a resting
//! sphere's penetration, Coulomb sliding, creeping and slipping; repeatable gradients; bad
//! input.

use diffsim::rigid::{
    BodyShape, BodyState, Implicit, RigidBody, RigidModel, RigidScheme, SemiImplicit, StateBar,
    Wrench, so3,
};
use diffsim::solids::contact::{Contact, Shape};
use diffsim::solids::math::V3;

fn diag(a: f64, b: f64, c: f64) -> [[f64; 3]; 3] {
    [[a, 0.0, 0.0], [0.0, b, 0.0], [0.0, 0.0, c]]
}

fn free(inertia: [[f64; 3]; 3]) -> RigidModel {
    RigidModel {
        bodies: vec![RigidBody::given(1.0, inertia).unwrap()],
        ..Default::default()
    }
}

/// A body spinning with body-frame angular velocity `wb` at the identity orientation.
fn spinning(wb: V3) -> BodyState {
    BodyState {
        w: wb,
        ..BodyState::at([0.0; 3])
    }
}

fn states(
    model: &RigidModel,
    scheme: Option<RigidScheme>,
    h: f64,
    init: BodyState,
    steps: usize,
) -> Vec<BodyState> {
    let run = match scheme {
        None => {
            SemiImplicit::new(model, h)
                .unwrap()
                .rollout(&[init], steps)
                .unwrap()
                .states
        }
        Some(s) => {
            Implicit::new(model, h, s)
                .unwrap()
                .rollout(&[init], steps)
                .unwrap()
                .states
        }
    };
    run.into_iter().map(|v| v[0]).collect()
}

fn body_omega(s: &BodyState) -> V3 {
    so3::mat_t_vec(&so3::to_matrix(s.q), s.w)
}

#[test]
fn symmetric_top_midpoint_keeps_energy_and_momentum_and_follows_the_closed_form() {
    // J = diag(1, 1, 2), body ω₀ = (1, 0, 1): ω(t) = (cos t, sin t, 1), E = 1.5, |L| = √5.
    let model = free(diag(1.0, 1.0, 2.0));
    let body = &model.bodies[0];
    let steps = 628;
    let h = std::f64::consts::TAU / steps as f64;
    let traj = states(
        &model,
        Some(RigidScheme::Midpoint),
        h,
        spinning([1.0, 0.0, 1.0]),
        steps,
    );
    let l0 = body.angular_momentum(&traj[0]);
    let mut worst = (0.0f64, 0.0f64, 0.0f64);
    for (n, s) in traj.iter().enumerate() {
        let e = body.kinetic_energy(s);
        let l = body.angular_momentum(s);
        let dl = (0..3).map(|i| (l[i] - l0[i]).abs()).fold(0.0, f64::max);
        let t = n as f64 * h;
        let wb = body_omega(s);
        let dw = [wb[0] - t.cos(), wb[1] - t.sin(), wb[2] - 1.0]
            .iter()
            .fold(0.0f64, |a, x| a.max(x.abs()));
        worst = (
            worst.0.max((e - 1.5).abs()),
            worst.1.max(dl),
            worst.2.max(dw),
        );
    }
    println!(
        "midpoint top: |ΔE| {:.1e}, |ΔL| {:.1e}, body ω error {:.1e}",
        worst.0, worst.1, worst.2
    );
    // Round-off only (measured 8.4e-14 and 3.7e-14 of E = 1.5 and |L| = √5 over the 628
    // steps); backward Euler loses 9% over 1000 steps, Warp's step gains 3%.
    assert!(worst.0 < 1e-12 && worst.1 < 1e-12, "{worst:?}");
    // Second order: a phase error ~ h²·t.
    assert!(worst.2 < 2e-3, "{worst:?}");
    let half = states(
        &model,
        Some(RigidScheme::Midpoint),
        h / 2.0,
        spinning([1.0, 0.0, 1.0]),
        2 * steps,
    );
    let e1 = body_omega(traj.last().unwrap());
    let e2 = body_omega(half.last().unwrap());
    let err = |w: V3| ((w[0] - 1.0).powi(2) + w[1].powi(2) + (w[2] - 1.0).powi(2)).sqrt();
    let order = (err(e1) / err(e2)).log2();
    println!("midpoint order {order:.2}");
    assert!((order - 2.0).abs() < 0.1, "order {order}");
}

#[test]
fn backward_euler_decays_and_warps_step_gains_energy_on_the_top() {
    // Warp's explicit gyroscopic step on J = diag(1, 2, 3), body ω₀ = (1, 0.1, 1), h = 0.01,
    // 10 s gains 3.3% energy and 1.1% |L| (a numpy port of the same step); backward Euler
    // loses both.
    let model = free(diag(1.0, 2.0, 3.0));
    let body = &model.bodies[0];
    let w0 = spinning([1.0, 0.1, 1.0]);
    let (e0, l0) = (
        body.kinetic_energy(&w0),
        so3::norm(body.angular_momentum(&w0)),
    );
    let warp = states(&model, None, 0.01, w0, 1000);
    let last = warp.last().unwrap();
    let de = body.kinetic_energy(last) / e0 - 1.0;
    let dl = so3::norm(body.angular_momentum(last)) / l0 - 1.0;
    println!(
        "semi-implicit top: energy {:+.2}%, |L| {:+.2}%",
        100.0 * de,
        100.0 * dl
    );
    assert!(
        (de - 0.033).abs() < 0.002 && (dl - 0.011).abs() < 0.002,
        "{de} {dl}"
    );
    let be = states(&model, Some(RigidScheme::BackwardEuler), 0.01, w0, 1000);
    let energies: Vec<f64> = be.iter().map(|s| body.kinetic_energy(s)).collect();
    assert!(energies.windows(2).all(|w| w[1] <= w[0] * (1.0 + 1e-12)));
    let last = be.last().unwrap();
    println!(
        "backward Euler top: energy {:+.2}%, |L| {:+.2}%",
        100.0 * (body.kinetic_energy(last) / e0 - 1.0),
        100.0 * (so3::norm(body.angular_momentum(last)) / l0 - 1.0)
    );
    assert!(body.kinetic_energy(last) < 0.99 * e0);
}

#[test]
fn the_intermediate_axis_flips_and_the_others_do_not() {
    let model = free(diag(1.0, 2.0, 3.0));
    for axis in 0..3 {
        let mut w = [1e-3; 3];
        w[axis] = 1.0;
        let traj = states(&model, Some(RigidScheme::Midpoint), 0.01, spinning(w), 3000);
        let min = traj
            .iter()
            .map(|s| body_omega(s)[axis])
            .fold(f64::INFINITY, f64::min);
        println!("axis {axis}: min body ω_axis {min:.4}");
        if axis == 1 {
            assert!(min < -0.99, "the intermediate axis did not flip: {min}");
        } else {
            assert!(min > 0.99, "axis {axis} moved: {min}");
        }
    }
}

#[test]
fn constant_force_from_rest_matches_the_closed_forms() {
    // c(T) = c₀ + v₀T + ½gT²: midpoint exactly; semi-implicit and backward Euler fall ½ghT more.
    let mut model = free(diag(1.0, 1.0, 1.0));
    model.gravity = [0.0, -9.81, 0.0];
    let (h, steps) = (0.01, 100);
    let t = h * steps as f64;
    let init = BodyState {
        v: [1.0, 2.0, 0.0],
        ..BodyState::at([0.0; 3])
    };
    let exact = [t, 2.0 * t - 0.5 * 9.81 * t * t, 0.0];
    for (scheme, extra) in [
        (Some(RigidScheme::Midpoint), 0.0),
        (Some(RigidScheme::BackwardEuler), -0.5 * 9.81 * h * t),
        (None, -0.5 * 9.81 * h * t),
    ] {
        let c = states(&model, scheme, h, init, steps).last().unwrap().c;
        let err = (c[1] - exact[1] - extra).abs().max((c[0] - exact[0]).abs());
        println!(
            "{scheme:?}: y {:.12} (closed form {:.12} + {extra:.5})",
            c[1], exact[1]
        );
        assert!(err < 1e-11, "{scheme:?}: {c:?}");
    }
}

#[test]
fn a_resting_sphere_sinks_to_the_smooth_laws_equilibrium() {
    // ke·s·softplus(δ/s) = m g  ⇒  δ = s·ln(e^{mg/(ke s)} − 1).
    let sphere = RigidBody::from_shape(&BodyShape::Sphere { r: 0.1 }, 100.0).unwrap();
    let m = sphere.mass;
    let contact = Contact {
        ke: 1e4,
        kd: 50.0,
        mu: 0.5,
        smoothing: 1e-3,
    };
    let model = RigidModel {
        bodies: vec![sphere],
        gravity: [0.0, -9.81, 0.0],
        obstacles: vec![Shape::Plane {
            normal: [0.0, 1.0, 0.0],
            offset: 0.0,
        }],
        contact,
        ..Default::default()
    };
    let s = contact.smoothing;
    let delta = s * ((m * 9.81 / (contact.ke * s)).exp() - 1.0).ln();
    let last = *states(
        &model,
        Some(RigidScheme::BackwardEuler),
        0.01,
        BodyState::at([0.0, 0.1, 0.0]),
        400,
    )
    .last()
    .unwrap();
    println!(
        "sphere rests at {:.9} (closed form {:.9})",
        last.c[1],
        0.1 - delta
    );
    assert!(
        (last.c[1] - (0.1 - delta)).abs() < 1e-9 * 0.1 + 1e-12,
        "{last:?}"
    );
}

#[test]
fn the_same_rollout_twice_gives_bit_identical_gradients() {
    let bx = RigidBody::from_shape(
        &BodyShape::Box {
            half: [0.2, 0.1, 0.1],
        },
        300.0,
    )
    .unwrap();
    let model = RigidModel {
        bodies: vec![bx],
        gravity: [0.0, -9.81, 0.0],
        obstacles: vec![Shape::Plane {
            normal: [0.0, 1.0, 0.0],
            offset: 0.0,
        }],
        contact: Contact {
            ke: 1e4,
            kd: 10.0,
            mu: 0.5,
            smoothing: 1e-2,
        },
        wrenches: vec![
            vec![Wrench {
                f: [1.0, 0.0, 0.0],
                t: [0.0, 0.1, 0.0]
            }];
            30
        ],
        ..Default::default()
    };
    let init = [BodyState {
        q: so3::normalize([0.9, 0.2, 0.1, 0.3]),
        w: [1.0, 2.0, -1.0],
        ..BodyState::at([0.0, 0.3, 0.0])
    }];
    let bars = |n: usize| {
        let mut b = vec![Vec::new(); n + 1];
        b[n] = vec![StateBar {
            c: [1.0, 2.0, 3.0],
            theta: [0.5, -0.5, 0.2],
            v: [0.1; 3],
            w: [0.2; 3],
        }];
        b
    };
    let st = Implicit::new(&model, 0.01, RigidScheme::BackwardEuler).unwrap();
    let g1 = st.adjoint(&st.rollout(&init, 30).unwrap(), &bars(30));
    let g2 = st.adjoint(&st.rollout(&init, 30).unwrap(), &bars(30));
    assert_eq!(g1, g2);
    let se = SemiImplicit::new(&model, 1e-3).unwrap();
    let g1 = se.adjoint(&se.rollout(&init, 300).unwrap(), &bars(300));
    let g2 = se.adjoint(&se.rollout(&init, 300).unwrap(), &bars(300));
    assert_eq!(g1, g2);
}

#[test]
fn bad_input_is_an_error_naming_the_problem() {
    let model = free(diag(1.0, 1.0, 1.0));
    let mut s = BodyState::at([0.0; 3]);
    s.c[0] = f64::NAN;
    let e = Implicit::new(&model, 0.01, RigidScheme::BackwardEuler)
        .unwrap()
        .rollout(&[s], 1)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("finite"), "{e}");
    let e = SemiImplicit::new(&model, -1.0).err().unwrap().to_string();
    assert!(e.contains("time step"), "{e}");
    let mut bad = model.clone();
    bad.bodies[0].mass = 0.0;
    let e = SemiImplicit::new(&bad, 0.01).err().unwrap().to_string();
    assert!(e.contains("body 0") && e.contains("mass"), "{e}");
    let mut contact = model.clone();
    contact.obstacles = vec![Shape::Plane {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
    }];
    contact.contact.ke = 1e3;
    contact.contact.smoothing = 1e-2;
    assert!(Implicit::new(&contact, 0.01, RigidScheme::Midpoint).is_err());
    let mut wrong = model.clone();
    wrong.wrenches = vec![vec![]];
    assert!(SemiImplicit::new(&wrong, 0.01).is_err());
}

/// R8's "bounce once" in 3D: a sphere (r 0.1 m, density 100) from (−1, 1, 0) at (2, −2, 0)
/// m/s, no gravity, onto the ground y = 0, frictionless and undamped, T = 1 s; loss = final
/// height. The rigid reflection gives `y(T) = 2r − y₀ + |v_y|T` = 1.2, `∂y/∂y₀ = −1`,
/// `∂y/∂v_y = −T`. A linear penalty of frequency `ω` holds the sphere `π/ω` in contact, so
/// there `∂y/∂v_y = −(T − π/ω)`: the gradient converges to the rigid one as `ke^{−1/2}`.
/// Returns (loss, ∂L/∂y₀, ∂L/∂v_y).
fn bounce_once(ke: f64, s: f64, h: f64, scheme: Option<RigidScheme>) -> (f64, f64, f64) {
    bounce_from(ke, s, h, scheme, [-1.0, 1.0, 0.0], [2.0, -2.0, 0.0])
}

fn bounce_from(
    ke: f64,
    s: f64,
    h: f64,
    scheme: Option<RigidScheme>,
    c0: V3,
    v0: V3,
) -> (f64, f64, f64) {
    let sphere = RigidBody::from_shape(&BodyShape::Sphere { r: 0.1 }, 100.0).unwrap();
    let model = RigidModel {
        bodies: vec![sphere],
        obstacles: vec![Shape::Plane {
            normal: [0.0, 1.0, 0.0],
            offset: 0.0,
        }],
        contact: Contact {
            ke,
            kd: 0.0,
            mu: 0.0,
            smoothing: s,
        },
        ..Default::default()
    };
    let steps = (1.0 / h).round() as usize;
    let init = [BodyState {
        v: v0,
        ..BodyState::at(c0)
    }];
    let mut bars = vec![Vec::new(); steps + 1];
    bars[steps] = vec![StateBar {
        c: [0.0, 1.0, 0.0],
        ..Default::default()
    }];
    let (y, g) = match scheme {
        None => {
            let st = SemiImplicit::new(&model, h).unwrap();
            let run = st.rollout(&init, steps).unwrap();
            (run.states[steps][0].c[1], st.adjoint(&run, &bars))
        }
        Some(sc) => {
            let st = Implicit::new(&model, h, sc).unwrap();
            let run = st.rollout(&init, steps).unwrap();
            (run.states[steps][0].c[1], st.adjoint(&run, &bars))
        }
    };
    (y, g.init[0].c[1], g.init[0].v[1])
}

#[test]
fn gradients_through_a_bounce_converge_to_the_rigid_reflection() {
    // Refinement level k: stiffness ke = 1e3·10^k, smoothing s = 1e-2·10^(−k/2) m (both scale
    // the contact time π/ω ∝ ke^(−1/2)), step h = c/ω so that every contact and its smoothed
    // onset span many steps (|v|h = s/24 at c = 0.01). A step that jumps over the smoothing
    // (s ≪ |v|h) gives gradients that depend on where in a step the contact begins: at ke = 1e4,
    // s = 1e-5, ω·h = 0.1 / 0.03 / 0.01 / 0.003 the semi-implicit ∂y/∂y₀ is off by 4.7 / 0.36 /
    // 0.25 / 0.005 — not a convergent sequence.
    let m = 100.0 * 4.0 / 3.0 * std::f64::consts::PI * 1e-3;
    let level = |k: i32, c: f64| {
        let ke = 1e3 * 10f64.powi(k);
        let omega = (ke / m).sqrt();
        (
            ke,
            1e-2 * 10f64.powf(-0.5 * k as f64),
            1.0 / (omega / c).ceil(),
            std::f64::consts::PI / omega,
        )
    };
    for (name, scheme, c) in [
        ("semi-implicit, ω·h = 0.01", None, 0.01),
        (
            "backward Euler, ω·h = 0.04·2^−k",
            Some(RigidScheme::BackwardEuler),
            0.04,
        ),
    ] {
        println!("{name}");
        println!("     ke        s    π/ω      y(T)−1.2   ∂y/∂y₀+1   ∂y/∂v_y+1");
        let mut errs = Vec::new();
        for k in 0..4 {
            let c = if scheme.is_some() {
                c / 2f64.powi(k)
            } else {
                c
            };
            let (ke, s, h, pi_w) = level(k, c);
            let (y, dy0, dv) = bounce_once(ke, s, h, scheme);
            println!(
                "{ke:7.0e}  {s:7.1e}  {pi_w:.1e}  {:+.3e}  {:+.3e}  {:+.3e}",
                y - 1.2,
                dy0 + 1.0,
                dv + 1.0
            );
            errs.push((dy0 + 1.0).abs().max((dv + 1.0).abs()));
        }
        assert!(
            errs.windows(2).all(|e| e[1] < 0.7 * e[0]),
            "{name}: {errs:?}"
        );
        assert!(errs[3] < 0.02, "{name}: {errs:?}");
    }
}

/// `bodies` touching each other through an undamped, frictionless contact (`ke` 1e5 N/m,
/// smoothing 1e-4 m), no gravity.
fn elastic_contact(bodies: Vec<RigidBody>) -> RigidModel {
    RigidModel {
        bodies,
        contact: Contact {
            ke: 1e5,
            kd: 0.0,
            mu: 0.0,
            smoothing: 1e-4,
        },
        body_contact: true,
        ..Default::default()
    }
}

#[test]
fn equal_spheres_colliding_head_on_swap_velocities_and_keep_momentum() {
    // Two equal spheres, frictionless and undamped: the elastic collision swaps their
    // velocities; the contact forces are equal and opposite, so the total momentum is exact.
    let ball = RigidBody::from_shape(&BodyShape::Sphere { r: 0.1 }, 1000.0).unwrap();
    let model = elastic_contact(vec![ball.clone(), ball]);
    let init = [
        BodyState {
            v: [1.0, 0.0, 0.0],
            ..BodyState::at([0.0, 0.0, 0.0])
        },
        BodyState::at([0.5, 0.0, 0.0]),
    ];
    // (Backward Euler's momentum is exact to its Newton tolerance, |Δc| ~ 1e-12 m per step,
    // i.e. 5e-8 m/s at h = 2e-5 s: 2.5e-10 after the 30 000 steps.)
    for (scheme, h, tol, ptol) in [
        (None, 2e-5, 2e-3, 1e-12),
        (Some(RigidScheme::BackwardEuler), 2e-5, 2e-2, 1e-9),
    ] {
        let states = match scheme {
            None => {
                SemiImplicit::new(&model, h)
                    .unwrap()
                    .rollout(&init, 30_000)
                    .unwrap()
                    .states
            }
            Some(s) => {
                Implicit::new(&model, h, s)
                    .unwrap()
                    .rollout(&init, 30_000)
                    .unwrap()
                    .states
            }
        };
        let last = states.last().unwrap();
        let p = last[0].v[0] + last[1].v[0];
        println!(
            "{scheme:?}: v = ({:.5}, {:.5}), momentum error {:.1e}",
            last[0].v[0],
            last[1].v[0],
            p - 1.0
        );
        assert!((p - 1.0).abs() < ptol, "{scheme:?}: momentum {p}");
        assert!(
            last[0].v[0].abs() < tol && (last[1].v[0] - 1.0).abs() < tol,
            "{scheme:?}: {last:?}"
        );
        assert!(last[1].c[0] > 0.6 && last[0].c[0] < 0.4);
    }
}

#[test]
fn a_sphere_striking_a_capsules_side_rebounds_as_an_elastic_1d_collision() {
    // A sphere moving along x strikes a capsule (axis z) in the middle of its side, through
    // the capsule's centre of mass: no torque, so the undamped, frictionless contact is the
    // elastic 1D collision v₁' = (m₁ − m₂)/(m₁ + m₂)·v, v₂' = 2m₁/(m₁ + m₂)·v.
    let ball = RigidBody::from_shape(&BodyShape::Sphere { r: 0.1 }, 1000.0).unwrap();
    let capsule = BodyShape::Capsule {
        r: 0.1,
        half_height: 0.3,
    };
    let cap = RigidBody::from_shape(&capsule, 1000.0).unwrap();
    let (m1, m2) = (ball.mass, cap.mass);
    let model = elastic_contact(vec![ball, cap]);
    let init = [
        BodyState {
            v: [1.0, 0.0, 0.0],
            ..BodyState::at([-0.3, 0.0, 0.0])
        },
        BodyState::at([0.0; 3]),
    ];
    let last = SemiImplicit::new(&model, 2e-5)
        .unwrap()
        .rollout(&init, 30_000)
        .unwrap()
        .states
        .pop()
        .unwrap();
    let (v1, v2) = ((m1 - m2) / (m1 + m2), 2.0 * m1 / (m1 + m2));
    let p = m1 * last[0].v[0] + m2 * last[1].v[0];
    println!(
        "v = ({:.5}, {:.5}), closed form ({v1:.5}, {v2:.5}); momentum error {:.1e}; capsule ω {:?}",
        last[0].v[0],
        last[1].v[0],
        p - m1,
        last[1].w
    );
    assert!((p - m1).abs() < 1e-12 * m1, "momentum {p}");
    assert!(
        (last[0].v[0] - v1).abs() < 2e-3 && (last[1].v[0] - v2).abs() < 2e-3,
        "{last:?}"
    );
    assert!(last[1].w.iter().all(|w| w.abs() < 1e-9), "{last:?}");
}

/// A 1 kg cube (half edge 0.1 m) resting on the ground y = 0 under `gravity`, its bottom
/// corners at the smooth law's equilibrium for the load `m·|g_y|/4` each, moving with `v0`;
/// contact `ke` 1e5 N/m, `kd` 1000 N·s/m, friction `mu`, smoothing 1e-4 (m and m/s).
fn sliding_cube(mu: f64, gravity: V3, v0: V3) -> (RigidModel, BodyState) {
    let cube = RigidBody::from_shape(&BodyShape::Box { half: [0.1; 3] }, 125.0).unwrap();
    let contact = Contact {
        ke: 1e5,
        kd: 1000.0,
        mu,
        smoothing: 1e-4,
    };
    let s = contact.smoothing;
    // ke·s·softplus(−φ/s) = m·|g_y|/4  ⇒  φ = −s·ln(e^{m|g_y|/(4 ke s)} − 1).
    let load = cube.mass * gravity[1].abs() / 4.0;
    let phi = -s * ((load / (contact.ke * s)).exp() - 1.0).ln();
    let model = RigidModel {
        bodies: vec![cube],
        gravity,
        obstacles: vec![Shape::Plane {
            normal: [0.0, 1.0, 0.0],
            offset: 0.0,
        }],
        contact,
        ..Default::default()
    };
    let init = BodyState {
        v: v0,
        ..BodyState::at([0.0, 0.1 + phi, 0.0])
    };
    (model, init)
}

/// The two steps with the step sizes the Coulomb tests use: Warp's at 10 µs, backward Euler
/// at 1 ms. Warp's step treats creeping friction explicitly, a damper of μN/s per corner
/// (1.2e4 N·s/m here): at 0.1 ms the creeping cube does not settle (after 0.5 s it creeps at
/// 4.1e-4 m/s, not 7.5e-5, and yaws at 1.7e-3 rad/s).
const COULOMB_STEPS: [(Option<RigidScheme>, f64); 2] =
    [(None, 1e-5), (Some(RigidScheme::BackwardEuler), 1e-3)];

/// `(v_x(t₂) − v_x(t₁))/(t₂ − t₁)` along a path of step `h`.
fn mean_acceleration(path: &[BodyState], h: f64, t1: f64, t2: f64) -> f64 {
    let v = |t: f64| path[(t / h).round() as usize].v[0];
    (v(t2) - v(t1)) / (t2 - t1)
}

#[test]
fn coulomb_sliding_decelerates_at_mu_g_and_stops_after_v0_squared_over_2_mu_g() {
    let (mu, g, v0) = (0.5, 9.81, 1.0);
    let (model, init) = sliding_cube(mu, [0.0, -g, 0.0], [v0, 0.0, 0.0]);
    let distance = v0 * v0 / (2.0 * mu * g);
    for (scheme, h) in COULOMB_STEPS {
        let path = states(&model, scheme, h, init, (0.3 / h).round() as usize);
        // While sliding (it stops at v0/μg = 0.204 s), dv/dt = −μg; the regularisation's share
        // s²/2v² is below 1e-7. The first milliseconds, while the cube pitches forward onto
        // its leading edge, shift v(t) by a constant, so the slope is measured after them.
        let decel = -mean_acceleration(&path, h, 0.05, 0.18);
        let end = path.last().unwrap();
        println!(
            "{scheme:?}: deceleration {decel:.7} m/s² (μg {:.7}); stopped after {:.6} m (v0²/2μg {distance:.6}), final speed {:.2e} m/s",
            mu * g,
            end.c[0],
            end.v[0]
        );
        assert!((decel / (mu * g) - 1.0).abs() < 1e-4, "{scheme:?}: {decel}");
        assert!(
            (end.c[0] - distance).abs() < 1e-2 * distance,
            "{scheme:?}: {end:?}"
        );
        assert!(end.v[0].abs() < 1e-4, "{scheme:?}: {end:?}");
    }
}

#[test]
fn coulomb_sticking_creeps_at_the_regularised_rate_and_slides_past_the_friction_angle() {
    // On a slope θ (gravity tilted), regularised Coulomb friction μ·N·v/√(v² + s²) balances
    // m·g·sin θ at the creep speed v = s·r/√(1 − r²), r = tan θ/μ < 1; past the friction
    // angle (r > 1) the cube slides with a = g(sin θ − μ cos θ).
    let (mu, g, s) = (0.5, 9.81, 1e-4);
    for tan in [0.3, 0.7] {
        let theta: f64 = f64::atan(tan);
        let gravity = [g * theta.sin(), -g * theta.cos(), 0.0];
        let (model, init) = sliding_cube(mu, gravity, [0.0; 3]);
        for (scheme, h) in COULOMB_STEPS {
            let path = states(&model, scheme, h, init, (0.5 / h).round() as usize);
            let r = tan / mu;
            if r < 1.0 {
                let creep = s * r / (1.0 - r * r).sqrt();
                let v = path.last().unwrap().v[0];
                println!(
                    "{scheme:?}, tan θ {tan}: creeps at {v:.9e} m/s (closed form {creep:.9e})"
                );
                assert!((v / creep - 1.0).abs() < 1e-6, "{scheme:?}: {v}");
            } else {
                let want = g * (theta.sin() - mu * theta.cos());
                let a = mean_acceleration(&path, h, 0.25, 0.5);
                println!("{scheme:?}, tan θ {tan}: slides at {a:.7} m/s² (closed form {want:.7})");
                assert!((a / want - 1.0).abs() < 1e-5, "{scheme:?}: {a}");
            }
        }
    }
}
