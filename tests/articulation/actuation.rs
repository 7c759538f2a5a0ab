//! Drives and smooth limits: a mass resting on its limit against the law's closed-form
//! equilibrium, a position servo against its discrete recursions and its gravity offset, a
//! velocity servo's terminal speed and its stop at a limit, and refused settings.

use crate::models::{diag, sink};
use diffsim::articulation::{
    Articulation, Drive, Inertia, Joint, JointKind, JointLimit, JointStepper, Link, Scheme,
    Transform,
};

const G: f64 = 9.81;

/// One body of mass `m` on a joint of `kind` (its inertia a 0.1 m solid sphere's), with
/// `drive`, `limit`, armature `armature` and damping `damping`, under gravity −z.
fn single(kind: JointKind, m: f64, drive: Drive, limit: Option<JointLimit>) -> Articulation {
    Articulation {
        links: vec![Link {
            name: "body".into(),
            parent: None,
            joint: Joint {
                drive,
                limit,
                ..Joint::new(kind, Transform::identity())
            },
            inertia: Inertia {
                m,
                com: [0.0; 3],
                ic: diag(0.004 * m, 0.004 * m, 0.004 * m),
            },
        }],
        gravity: [0.0, 0.0, -G],
    }
}

const SLIDE_Z: JointKind = JointKind::Prismatic {
    axis: [0.0, 0.0, 1.0],
};

/// A 2 kg slider dropped onto its lower limit (ke 1e4 N/m, kd 50 N·s/m) comes to rest where
/// the smooth law balances its weight, `q* = lower − s·ln(e^{mg/(ke·s)} − 1)`, under both
/// schemes, for smoothing lengths from 1 mm down to 1 µm, where `q*` tends to Warp's
/// `lower − mg/ke`.
#[test]
fn a_slider_rests_on_its_smooth_limit_where_the_law_balances_its_weight() {
    let (m, ke) = (2.0, 1e4);
    for s in [1e-3, 1e-4, 1e-6] {
        let lim = JointLimit {
            lower: 0.0,
            upper: 1.0,
            ke,
            kd: 50.0,
            smoothing: s,
        };
        let model = single(SLIDE_Z, m, Drive::default(), Some(lim));
        let expected = -sink(m * G, ke, s);
        for (scheme, h, steps) in [
            (Scheme::ImplicitEuler, 0.01, 300),
            (Scheme::SemiImplicit, 1e-3, 3000),
        ] {
            let run = JointStepper::new(&model, h, scheme)
                .unwrap()
                .rollout(&[0.1], &[0.0], &[], steps)
                .unwrap();
            let (q, v) = (run.q[steps][0], run.v[steps][0]);
            assert!(
                (q - expected).abs() < 1e-9 && v.abs() < 1e-7,
                "{scheme:?} s = {s}: rests at {q} (v {v}), expected {expected}"
            );
        }
        if s < 1e-5 {
            assert!((expected + m * G / ke).abs() < 1e-6, "{expected}");
        }
    }
}

/// A position servo (ke 50, kd 4) with damping 1 and armature 0.5 on a 1.5 kg slider under
/// gravity follows the linear recursions of both schemes (to 1e-12 m and 1e-11 m/s) and settles at the target
/// minus the gravity offset `mg/ke`.
#[test]
fn a_position_servo_follows_its_recursions_and_settles_at_the_gravity_offset() {
    let (m, ke, kd, d, arm, u, h) = (1.5, 50.0, 4.0, 1.0, 0.5, 0.3, 0.01);
    let mut model = single(SLIDE_Z, m, Drive::Position { ke, kd }, None);
    model.links[0].joint.damping = d;
    model.links[0].joint.armature = arm;
    let inertia = m + arm;
    let steps = 2000;
    let controls = vec![vec![u]; steps];
    for scheme in [Scheme::SemiImplicit, Scheme::ImplicitEuler] {
        let run = JointStepper::new(&model, h, scheme)
            .unwrap()
            .rollout(&[-0.2], &[0.7], &controls, steps)
            .unwrap();
        let (mut q, mut v) = (-0.2, 0.7);
        for n in 0..steps {
            v = match scheme {
                Scheme::SemiImplicit => v + h * (ke * (u - q) - (kd + d) * v - m * G) / inertia,
                Scheme::ImplicitEuler => {
                    (inertia * v / h + ke * (u - q) - m * G) / (inertia / h + ke * h + kd + d)
                }
            };
            q += h * v;
            let (qs, vs) = (run.q[n + 1][0], run.v[n + 1][0]);
            // Newton stops at a residual of ~1e-13·M/h: velocities agree to ~1e-12.
            assert!(
                (qs - q).abs() < 1e-12 && (vs - v).abs() < 1e-11,
                "{scheme:?} step {n}: ({qs}, {vs}) vs ({q}, {v})"
            );
        }
        let rest = u - m * G / ke;
        assert!((q - rest).abs() < 1e-6, "{scheme:?}: {q} vs {rest}");
    }
}

/// A velocity servo (ke 2) against damping 0.5 on a free hinge turns at `ke·u/(ke + d)`;
/// with a limit at 1 rad ahead (ke 400, s 0.01) the servo fades out as the limit engages and
/// the hinge stops within a few smoothing lengths of the limit.
#[test]
fn a_velocity_servo_reaches_its_speed_and_stops_at_a_limit() {
    let hinge = JointKind::Revolute {
        axis: [0.0, 0.0, 1.0],
    };
    let (ke, d, u) = (2.0, 0.5, 1.5);
    let mut model = single(hinge, 1.0, Drive::Velocity { ke }, None);
    model.links[0].joint.damping = d;
    let controls = vec![vec![u]; 30_000];
    let run = JointStepper::new(&model, 0.01, Scheme::ImplicitEuler)
        .unwrap()
        .rollout(&[0.0], &[0.0], &controls, 300)
        .unwrap();
    let speed = ke * u / (ke + d);
    assert!((run.v[300][0] - speed).abs() < 1e-9, "{}", run.v[300][0]);
    let upper = 1.0;
    model.links[0].joint.limit = Some(JointLimit {
        lower: -upper,
        upper,
        ke: 400.0,
        kd: 2.0,
        smoothing: 0.01,
    });
    // The hinge's inertia is 0.004 kg·m²: the explicit step needs h < 2I/(ke + d) = 3.2 ms.
    for (scheme, h, steps) in [
        (Scheme::SemiImplicit, 1e-3, 30_000),
        (Scheme::ImplicitEuler, 0.01, 3000),
    ] {
        let run = JointStepper::new(&model, h, scheme)
            .unwrap()
            .rollout(&[0.0], &[0.0], &controls, steps)
            .unwrap();
        let (q, v) = (run.q[steps][0], run.v[steps][0]);
        assert!(
            (q - upper).abs() < 0.05 && v.abs() < 1e-9,
            "{scheme:?}: stops at {q} (v {v})"
        );
    }
}

/// Servos on a ball joint, limits on a free joint, crossed or unsmoothed limits and
/// non-finite gains are refused with one line naming the link.
#[test]
fn bad_drives_and_limits_are_refused() {
    let good = JointLimit {
        lower: -1.0,
        upper: 1.0,
        ke: 10.0,
        kd: 1.0,
        smoothing: 0.01,
    };
    let cases = [
        (
            JointKind::Ball,
            Drive::Position { ke: 1.0, kd: 0.0 },
            None,
            "servos",
        ),
        (JointKind::Free, Drive::default(), Some(good), "limits act"),
        (
            SLIDE_Z,
            Drive::default(),
            Some(JointLimit { lower: 1.0, ..good }),
            "lower < upper",
        ),
        (
            SLIDE_Z,
            Drive::default(),
            Some(JointLimit {
                smoothing: 0.0,
                ..good
            }),
            "smoothing",
        ),
        (SLIDE_Z, Drive::Velocity { ke: f64::NAN }, None, "gain"),
        (
            SLIDE_Z,
            Drive::Motor {
                gear: f64::INFINITY,
            },
            None,
            "gear",
        ),
    ];
    for (kind, drive, limit, words) in cases {
        let model = single(kind, 1.0, drive, limit);
        let err = JointStepper::new(&model, 0.01, Scheme::SemiImplicit)
            .err()
            .unwrap_or_else(|| panic!("{drive:?} {limit:?} on {kind:?} accepted"))
            .to_string();
        assert!(
            err.contains("'body'") && err.contains(words) && !err.contains('\n'),
            "{err}"
        );
    }
}
