//! Contact away from a body's points, against closed forms: capsules touching along their
//! sides (the point that slides along a capsule's axis) — two capsules crossing in mid-air
//! swap velocities as an elastic collision, a capsule lying across another rests at the smooth
//! law's equilibrium heights, and the gradient of the collision converges to the rigid swap's
//! (without the sliding point these capsules pass through each other: their cap centres are
//! 0.25–0.3 m from the other axis) — and a box resting face-down on a static ball (its corners
//! never reach the ball).

use diffsim::rigid::{
    BodyShape, BodyState, Implicit, RigidBody, RigidModel, RigidScheme, SemiImplicit, StateBar, so3,
};
use diffsim::solids::contact::{Contact, Shape};

fn capsule(r: f64, half_height: f64) -> RigidBody {
    RigidBody::from_shape(&BodyShape::Capsule { r, half_height }, 1000.0).unwrap()
}

/// A capsule at `c` whose axis (body z) lies along world x (`along_x`) or world y.
fn lying(c: [f64; 3], along_x: bool) -> BodyState {
    let q = if along_x {
        so3::exp_quat([0.0, std::f64::consts::FRAC_PI_2, 0.0])
    } else {
        so3::exp_quat([std::f64::consts::FRAC_PI_2, 0.0, 0.0])
    };
    BodyState {
        q,
        ..BodyState::at(c)
    }
}

fn rollout(
    model: &RigidModel,
    scheme: Option<RigidScheme>,
    h: f64,
    init: &[BodyState],
    steps: usize,
) -> Vec<Vec<BodyState>> {
    match scheme {
        None => {
            SemiImplicit::new(model, h)
                .unwrap()
                .rollout(init, steps)
                .unwrap()
                .states
        }
        Some(s) => {
            Implicit::new(model, h, s)
                .unwrap()
                .rollout(init, steps)
                .unwrap()
                .states
        }
    }
}

/// Two equal capsules (r 0.05, half height 0.3), crossed at right angles, A along x below B
/// along y, A moving up at `v` (no gravity, frictionless, undamped, smoothing 1e-4).
fn crossing(ke: f64, v: f64) -> (RigidModel, [BodyState; 2]) {
    let model = RigidModel {
        bodies: vec![capsule(0.05, 0.3), capsule(0.05, 0.3)],
        contact: Contact {
            ke,
            kd: 0.0,
            mu: 0.0,
            smoothing: 1e-4,
        },
        body_contact: true,
        ..Default::default()
    };
    let a = BodyState {
        v: [0.0, 0.0, v],
        ..lying([0.0; 3], true)
    };
    (model, [a, lying([0.0, 0.0, 0.15], false)])
}

#[test]
fn crossed_capsules_colliding_side_on_swap_velocities_without_spin() {
    // The contact acts at the middle of both axes, along the line of the centres: no torque,
    // and the frictionless, undamped contact is the elastic collision of equal masses.
    let (model, init) = crossing(1e5, 1.0);
    // (Backward Euler dissipates O(h·ω) of the energy over the ~16 ms contact.)
    for (scheme, h, tol) in [
        (None, 2e-5, 2e-3),
        (Some(RigidScheme::BackwardEuler), 2e-5, 2e-2),
    ] {
        let states = rollout(&model, scheme, h, &init, 5_000);
        let last = states.last().unwrap();
        let p = last[0].v[2] + last[1].v[2];
        println!(
            "{scheme:?}: v = ({:.5}, {:.5}), momentum error {:.1e}, spins {:?} {:?}",
            last[0].v[2],
            last[1].v[2],
            p - 1.0,
            last[0].w,
            last[1].w
        );
        assert!((p - 1.0).abs() < 1e-9, "{scheme:?}: momentum {p}");
        assert!(
            last[0].v[2].abs() < tol && (last[1].v[2] - 1.0).abs() < tol,
            "{scheme:?}: {last:?}"
        );
        for s in last {
            assert!(s.w.iter().all(|w| w.abs() < 1e-9), "{scheme:?}: spin {s:?}");
            assert!(
                s.v[0].abs() < 1e-9 && s.v[1].abs() < 1e-9,
                "{scheme:?}: {s:?}"
            );
        }
    }
}

#[test]
fn a_capsule_lying_across_another_rests_at_the_laws_equilibrium_heights() {
    // A (r 0.05) lies along x on the ground on its two cap centres; B (r 0.03, lighter) lies
    // across A's middle along y. B's weight acts on the point sliding along A's axis, so
    // B's gap g_B = −s·ln(e^{m_B g/(ke s)} − 1) and each cap centre of A carries half of
    // both weights: g_A = −s·ln(e^{(m_A + m_B)g/(2 ke s)} − 1). Heights: z_A = r_A + g_A,
    // z_B = z_A + r_A + r_B + g_B. (B with the smaller radius is stable against tipping
    // about A's axis.)
    let (a, b) = (capsule(0.05, 0.3), capsule(0.03, 0.25));
    let g = 9.81;
    let (ke, s) = (1e5, 1e-4);
    let gap = |load: f64| -s * ((load / (ke * s)).exp() - 1.0).ln();
    let ga = gap(0.5 * (a.mass + b.mass) * g);
    let gb = gap(b.mass * g);
    let za = 0.05 + ga;
    let zb = za + 0.05 + 0.03 + gb;
    let model = RigidModel {
        bodies: vec![a, b],
        gravity: [0.0, 0.0, -g],
        obstacles: vec![Shape::Plane {
            normal: [0.0, 0.0, 1.0],
            offset: 0.0,
        }],
        contact: Contact {
            ke,
            kd: 200.0,
            mu: 0.0,
            smoothing: s,
        },
        body_contact: true,
        ..Default::default()
    };
    // Dropped from 0.5 mm above the equilibrium, settled over 1 s.
    let init = [
        lying([0.0, 0.0, za + 5e-4], true),
        lying([0.0, 0.0, zb + 1e-3], false),
    ];
    for (scheme, h) in [(None, 2e-4), (Some(RigidScheme::BackwardEuler), 1e-3)] {
        let steps = (1.0 / h) as usize;
        let last = rollout(&model, scheme, h, &init, steps).pop().unwrap();
        println!(
            "{scheme:?}: z_A {:.9} (closed form {za:.9}), z_B {:.9} ({zb:.9}), gaps {ga:.3e} {gb:.3e}",
            last[0].c[2], last[1].c[2]
        );
        assert!(
            (last[0].c[2] - za).abs() < 1e-7,
            "{scheme:?}: {:?}",
            last[0]
        );
        assert!(
            (last[1].c[2] - zb).abs() < 1e-7,
            "{scheme:?}: {:?}",
            last[1]
        );
        // Still crossed and level.
        for (st, want) in last
            .iter()
            .zip([lying([0.0; 3], true), lying([0.0; 3], false)])
        {
            let (r, r0) = (so3::to_matrix(st.q), so3::to_matrix(want.q));
            let axis = [r[0][2], r[1][2], r[2][2]];
            let want_axis = [r0[0][2], r0[1][2], r0[2][2]];
            let cos: f64 = (0..3).map(|i| axis[i] * want_axis[i]).sum();
            assert!(cos.abs() > 1.0 - 1e-9, "{scheme:?}: axis {axis:?}");
        }
    }
}

/// `∂v_B/∂v_A` after the crossing collision, by the adjoint and by central differences.
fn swap_gradient(scheme: Option<RigidScheme>, ke: f64, h: f64, steps: usize) -> (f64, f64) {
    let v_b = |v: f64| -> (f64, f64) {
        let (model, init) = crossing(ke, v);
        let bar = StateBar {
            v: [0.0, 0.0, 1.0],
            ..StateBar::default()
        };
        let mut bars = vec![Vec::new(); steps + 1];
        bars[steps] = vec![StateBar::default(), bar];
        match scheme {
            None => {
                let st = SemiImplicit::new(&model, h).unwrap();
                let run = st.rollout(&init, steps).unwrap();
                let g = st.adjoint(&run, &bars);
                (run.states[steps][1].v[2], g.init[0].v[2])
            }
            Some(s) => {
                let st = Implicit::new(&model, h, s).unwrap();
                let run = st.rollout(&init, steps).unwrap();
                let g = st.adjoint(&run, &bars);
                (run.states[steps][1].v[2], g.init[0].v[2])
            }
        }
    };
    let (_, ad) = v_b(1.0);
    // (Backward Euler's Newton tolerance leaves ~1e-12 m/s in v_B: a wide step.)
    let d = 1e-4;
    let fd = (v_b(1.0 + d).0 - v_b(1.0 - d).0) / (2.0 * d);
    (ad, fd)
}

#[test]
fn the_collisions_gradient_matches_differences_and_tends_to_the_rigid_swaps() {
    // For the elastic swap of equal masses v_B' = v_A, so ∂v_B'/∂v_A = 1 in the rigid limit.
    // Warp's step keeps the energy to O(h²): its gradient is 1 to that order at every
    // stiffness; backward Euler's dissipation O(h·ω) shrinks as h falls at fixed ke.
    let (ad, fd) = swap_gradient(None, 1e5, 2e-5, 5_000);
    println!("semi-implicit ke 1e5: AD {ad:.9}, FD {fd:.9}");
    assert!((ad - fd).abs() < 1e-6 * fd.abs(), "AD {ad} vs FD {fd}");
    assert!((ad - 1.0).abs() < 2e-3, "AD {ad}");
    let mut last = f64::INFINITY;
    for (h, steps) in [(1e-4, 1_000), (5e-5, 2_000), (2.5e-5, 4_000)] {
        let (ad, fd) = swap_gradient(Some(RigidScheme::BackwardEuler), 1e5, h, steps);
        println!("backward Euler ke 1e5, h {h:.1e}: AD {ad:.9}, FD {fd:.9}");
        assert!(
            (ad - fd).abs() < 1e-6 * fd.abs(),
            "h {h}: AD {ad} vs FD {fd}"
        );
        let err = (ad - 1.0).abs();
        assert!(err < 0.75 * last, "h {h}: |AD − 1| {err} after {last}");
        last = err;
    }
    assert!(last < 2e-2, "|AD − 1| {last}");
}

#[test]
fn the_coupled_steps_carry_the_sliding_point_as_the_rigid_ones_do() {
    // A coupled model without particles is the rigid model: both coupled steps must follow
    // the rigid steps through the side-on collision of the crossed capsules.
    use diffsim::rigid::{Coupled, CoupledModel, CoupledSemiImplicit, CoupledState};
    let (rigid, init) = crossing(1e5, 1.0);
    let coupled = CoupledModel {
        rigid: rigid.clone(),
        ..Default::default()
    };
    let start = CoupledState {
        x: Vec::new(),
        v: Vec::new(),
        bodies: init.to_vec(),
    };
    let h = 1e-4;
    let steps = 1_000;
    let rigid_euler = rollout(&rigid, Some(RigidScheme::BackwardEuler), h, &init, steps);
    let rigid_warp = rollout(&rigid, None, h, &init, steps);
    let coupled_euler = Coupled::new(&coupled, h)
        .unwrap()
        .rollout(&start, steps)
        .unwrap()
        .states;
    let coupled_warp = CoupledSemiImplicit::new(&coupled, h)
        .unwrap()
        .rollout(&start, steps)
        .unwrap()
        .states;
    for (name, a, b) in [
        ("backward Euler", &rigid_euler, &coupled_euler),
        ("semi-implicit", &rigid_warp, &coupled_warp),
    ] {
        let (ra, cb) = (a.last().unwrap(), &b.last().unwrap().bodies);
        let gap = (0..2)
            .flat_map(|k| (0..3).map(move |i| (k, i)))
            .map(|(k, i)| (ra[k].v[i] - cb[k].v[i]).abs() + (ra[k].c[i] - cb[k].c[i]).abs())
            .fold(0.0f64, f64::max);
        println!("{name}: coupled vs rigid {gap:e}; v_B {}", cb[1].v[2]);
        assert!(gap < 1e-9, "{name}: {gap:e}");
        assert!(
            cb[1].v[2] > 0.9,
            "{name}: the capsules passed through each other"
        );
    }
}

#[test]
fn a_box_rests_face_down_on_a_static_ball_at_the_laws_equilibrium() {
    // A 0.4 × 0.4 × 0.1 m box centred on top of a static ball of radius 0.3 (its corners
    // are 0.41 m from the ball's centre: they never touch it). The ball's centre against the
    // box holds the weight: z = z_top + 0.05 + g, g = −s·ln(e^{mg/(ke s)} − 1). Stable, as
    // the box's centre of mass (0.05 m above the contact) lies below the ball's radius.
    let bx = RigidBody::from_shape(
        &BodyShape::Box {
            half: [0.2, 0.2, 0.05],
        },
        500.0,
    )
    .unwrap();
    let g = 9.81;
    let (ke, s) = (1e5, 1e-4);
    let gap = -s * ((bx.mass * g / (ke * s)).exp() - 1.0).ln();
    let want = 0.3 + 0.05 + gap;
    let model = RigidModel {
        bodies: vec![bx],
        gravity: [0.0, 0.0, -g],
        obstacles: vec![Shape::Sphere {
            center: [0.0; 3],
            radius: 0.3,
        }],
        contact: Contact {
            ke,
            kd: 500.0,
            mu: 0.5,
            smoothing: s,
        },
        ..Default::default()
    };
    let init = [BodyState::at([0.0, 0.0, want + 1e-3])];
    for (scheme, h) in [(None, 1e-4), (Some(RigidScheme::BackwardEuler), 1e-3)] {
        let steps = (1.0 / h) as usize;
        let last = rollout(&model, scheme, h, &init, steps).pop().unwrap();
        println!(
            "{scheme:?}: z {:.9} (closed form {want:.9}, gap {gap:.3e})",
            last[0].c[2]
        );
        assert!(
            (last[0].c[2] - want).abs() < 1e-8,
            "{scheme:?}: {:?}",
            last[0]
        );
    }
}
