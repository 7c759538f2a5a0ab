//! The Hill-type muscle: its curves at their defining points, a pendulum held where the muscle's
//! torque balances gravity, and the activation dynamics' step response and adjoint.

use crate::models::pendulum;
use diffsim::articulation::{
    Activation, Drive, JointStepper, Muscle, Scheme, activations, activations_vjp,
};

const MUSCLE: Muscle = Muscle {
    f_max: 500.0,
    l_opt: 0.1,
    l_slack: 0.2,
    v_max: 10.0,
    moment_arm: 0.05,
    l_ref: 0.3,
};

/// The curves as documented, written out independently: `−τ/(r F_max)` at `(q, q̇, a)`.
fn tension(q: f64, qd: f64, a: f64) -> f64 {
    let l = (MUSCLE.l_ref + MUSCLE.moment_arm * q - MUSCLE.l_slack) / MUSCLE.l_opt;
    let v = MUSCLE.moment_arm * qd / (MUSCLE.v_max * MUSCLE.l_opt);
    let fl = (-(l - 1.0).powi(2) / 0.45).exp();
    let fv = if v <= 0.0 {
        (1.0 + v) / (1.0 - v / 0.25)
    } else {
        1.8 - 0.8 * (-5.0 * v / 0.8).exp()
    };
    a * fl * fv + (l - 1.0).max(0.0).powi(2) / 0.36
}

/// Isometric and moving tensions match the documented curves; no active force at the
/// maximum shortening speed; the force–velocity slope is continuous at rest (5 per unit ṽ).
#[test]
fn the_muscle_curves_hold_at_their_defining_points() {
    for (q, qd, a) in [
        (0.0, 0.0, 1.0),
        (1.2, 0.0, 0.3),
        (-2.0, 0.0, 0.7),
        (0.5, -3.0, 0.8),
        (0.5, 4.0, 0.6),
    ] {
        let tau: f64 = MUSCLE.torque(q, qd, a);
        let expected = -tension(q, qd, a) * MUSCLE.f_max * MUSCLE.moment_arm;
        assert!(
            (tau - expected).abs() < 1e-12 * (1.0 + expected.abs()),
            "{tau} vs {expected}"
        );
    }
    // At q = 0 the fibre is at its optimal length: τ = −r F_max a.
    assert!((MUSCLE.torque(0.0f64, 0.0, 1.0) + 25.0).abs() < 1e-12);
    // ṽ = −1 (shortening at v_max): no active force, and no passive force at l̃ = 1.
    let vmax_qd = -MUSCLE.v_max * MUSCLE.l_opt / MUSCLE.moment_arm;
    assert!(MUSCLE.torque(0.0f64, vmax_qd, 1.0).abs() < 1e-12);
    let e = 1e-7;
    let slope = |qd: f64| {
        (MUSCLE.torque(0.0f64, qd + e, 1.0) - MUSCLE.torque(0.0f64, qd - e, 1.0)) / (2.0 * e)
    };
    let (left, right) = (slope(-1e-4), slope(1e-4));
    assert!(
        (left - right).abs() < 1e-3 * left.abs(),
        "{left} vs {right}"
    );
}

/// A 1 kg bob on a 0.5 m rod, pulled by the muscle at activation 0.5, settles where
/// `m g L sin(−q) = r F(q)` (found here by bisection on the documented curves), under both
/// steppers.
#[test]
fn a_muscle_holds_a_pendulum_where_its_torque_balances_gravity() {
    let (m, l, g) = (1.0, 0.5, 9.81);
    let mut model = pendulum(m, l);
    model.links[0].joint.drive = Drive::Muscle(MUSCLE);
    model.links[0].joint.damping = 0.5;
    // Rotation about +y by q moves the bob from −z toward −x: gravity torque −m g L sin q.
    let balance =
        |q: f64| -m * g * l * q.sin() - MUSCLE.moment_arm * MUSCLE.f_max * tension(q, 0.0, 0.5);
    let (mut lo, mut hi) = (-1.5, 0.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if balance(mid) > 0.0 {
            lo = mid
        } else {
            hi = mid
        }
    }
    let expected = 0.5 * (lo + hi);
    for (scheme, h, steps) in [
        (Scheme::ImplicitEuler, 0.01, 2000),
        (Scheme::SemiImplicit, 1e-3, 20000),
    ] {
        let run = JointStepper::new(&model, h, scheme)
            .unwrap()
            .rollout(&[0.0], &[0.0], &vec![vec![0.5]; steps], steps)
            .unwrap();
        let q = run.q[steps][0];
        println!("{scheme:?}: rests at {q:.12} rad (balance {expected:.12})");
        assert!(
            (q - expected).abs() < 1e-9 && run.v[steps][0].abs() < 1e-9,
            "{scheme:?}: {q}"
        );
    }
}

/// Activation rises with τ_act and falls with τ_deact: after 30 steps of 1 ms from 0 under
/// full excitation it is within 2e-3 of `1 − 1.1^−30`, after 120 steps from 1 without
/// excitation within 2e-3 of `1.025^−120`; its adjoint matches central differences.
#[test]
fn activation_follows_its_time_constants_and_its_adjoint_is_exact() {
    let act = Activation::default();
    let h = 1e-3;
    let up = activations(&act, h, 0.0, &[1.0; 30]);
    assert!(
        (up[29] - (1.0 - 1.1f64.powi(-30))).abs() < 2e-3,
        "{}",
        up[29]
    );
    let down = activations(&act, h, 1.0, &[0.0; 120]);
    assert!(
        (down[119] - 1.025f64.powi(-120)).abs() < 2e-3,
        "{}",
        down[119]
    );
    let u: Vec<f64> = (0..40)
        .map(|n| 0.5 + 0.45 * (0.4 * n as f64).sin())
        .collect();
    let bars: Vec<f64> = (0..40).map(|n| (0.7 * n as f64).cos()).collect();
    let loss = |a0: f64, u: &[f64]| -> f64 {
        activations(&act, h, a0, u)
            .iter()
            .zip(&bars)
            .map(|(a, b)| a * b)
            .sum()
    };
    let (ga0, gu) = activations_vjp(&act, h, 0.2, &u, &bars);
    let e = 1e-6;
    let fd_a0 = (loss(0.2 + e, &u) - loss(0.2 - e, &u)) / (2.0 * e);
    assert!((ga0 - fd_a0).abs() < 1e-8, "{ga0} vs {fd_a0}");
    for k in [0, 7, 23, 39] {
        let mut p = u.clone();
        p[k] += e;
        let up = loss(0.2, &p);
        p[k] -= 2.0 * e;
        let fd = (up - loss(0.2, &p)) / (2.0 * e);
        assert!(
            (gu[k] - fd).abs() < 1e-8 * (1.0 + fd.abs()),
            "{k}: {} vs {fd}",
            gu[k]
        );
    }
}
