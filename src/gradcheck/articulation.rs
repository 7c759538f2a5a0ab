//! Gradient checks of the joint-space steppers, 20 steps of 10 ms under gravity; the loss
//! weighs every step's velocities and the final configuration's tangent offset from the
//! neutral one. Differentiated with respect to the initial configuration (perturbed as
//! `q0 ⊕ δ`), the initial velocities and every step's controls, against central finite
//! differences of the same rollout.
//!
//! - `articulation-{semi-implicit,implicit-euler}`: a free-floating base carrying a ball
//!   joint, an unaligned revolute joint and a prismatic joint (armature 0.05, damping 0.3),
//!   controlled by joint forces.
//! - `articulation-drives-{semi-implicit,implicit-euler}`: a fixed-base chain whose joints
//!   run into their smooth limits within the first steps, driven by a position servo, a
//!   velocity servo and geared motors.
//! - `articulation-contact-{semi-implicit,implicit-euler}`: a free box, tilted and moving,
//!   whose eight corners meet the ground with damping and friction, pushed by forces.
//! - `articulation-carried-{semi-implicit,implicit-euler}`: the same box with a free ball
//!   (5 cm, 0.5 kg) pressed into its top and sliding across it: the ball's contact with the
//!   box the box carries (forces on both), the box's corners on the ground.
//! - `articulation-params-{semi-implicit,implicit-euler}`: the tree of the first checks,
//!   with respect to inertial parameters (the ball link's mass and centre of mass, the
//!   slider's mass and centre-of-mass z) through the same rollout and loss.
//! - `articulation-muscle`: a pendulum driven by a Hill-type muscle, its excitations turned
//!   into activations by the activation dynamics (whose adjoint is checked with the
//!   stepper's), implicit Euler; with respect to the initial activation and the excitations.

use super::checker::{GradCheckConfig, GradCheckReport, check_flat};
use crate::articulation::{
    Activation, JointContact, JointRollout, Muscle, activations, activations_vjp,
};
use crate::articulation::{
    Articulation, Drive, Inertia, Joint, JointKind, JointLimit, JointStepper, Link, Scheme,
    Transform, difference, difference_jacobian, integrate,
};
use crate::error::{DiffsimError, Result};
use crate::solids::contact::{Contact, Shape};

/// Steps and step length of both checks.
const STEPS: usize = 20;
const H: f64 = 0.01;

/// The four-link tree of the plain checks.
fn tree() -> Articulation {
    let link = |name: &str, parent, kind, r: [f64; 3], m: f64, com: [f64; 3]| Link {
        name: String::from(name),
        parent,
        joint: Joint {
            armature: 0.05,
            damping: 0.3,
            ..Joint::new(
                kind,
                Transform {
                    r,
                    ..Transform::identity()
                },
            )
        },
        inertia: Inertia {
            m,
            com,
            ic: [
                [0.04, 0.005, 0.0],
                [0.005, 0.03, -0.004],
                [0.0, -0.004, 0.02],
            ],
        },
    };
    Articulation {
        links: vec![
            link(
                "base",
                None,
                JointKind::Free,
                [0.0; 3],
                2.0,
                [0.05, 0.0, 0.02],
            ),
            link(
                "ball",
                Some(0),
                JointKind::Ball,
                [0.0, 0.0, -0.3],
                0.8,
                [0.0, 0.1, -0.2],
            ),
            link(
                "hinge",
                Some(1),
                JointKind::Revolute {
                    axis: [0.6, 0.0, 0.8],
                },
                [0.0, 0.2, -0.4],
                0.5,
                [0.1, 0.0, -0.15],
            ),
            link(
                "slide",
                Some(2),
                JointKind::Prismatic {
                    axis: [0.0, 0.8, 0.6],
                },
                [0.2, 0.0, -0.3],
                0.3,
                [0.0, 0.05, 0.0],
            ),
        ],
        gravity: [0.0, 0.0, -9.81],
    }
}

/// A limit of stiffness `ke`, damping 5 and smoothing `s` on `[lower, upper]`.
fn limit(lower: f64, upper: f64, ke: f64, s: f64) -> Option<JointLimit> {
    Some(JointLimit {
        lower,
        upper,
        ke,
        kd: 5.0,
        smoothing: s,
    })
}

/// The actuated chain: a cart on x with a position servo, hitting its lower limit; an arm
/// about y with a velocity servo, hitting its upper limit; a ball wrist with a motor of gear
/// 2; an unaligned hinge with a motor of gear 3 inside a limit.
fn actuated() -> Articulation {
    let mut m = tree();
    let axis_x = JointKind::Prismatic {
        axis: [1.0, 0.0, 0.0],
    };
    let axis_y = JointKind::Revolute {
        axis: [0.0, 1.0, 0.0],
    };
    let joints = [
        (
            axis_x,
            Drive::Position { ke: 40.0, kd: 2.0 },
            limit(-0.05, 0.3, 2000.0, 0.01),
        ),
        (
            axis_y,
            Drive::Velocity { ke: 3.0 },
            limit(-0.4, 0.4, 500.0, 0.02),
        ),
        (JointKind::Ball, Drive::Motor { gear: 2.0 }, None),
        (
            JointKind::Revolute {
                axis: [0.6, 0.0, 0.8],
            },
            Drive::Motor { gear: 3.0 },
            limit(-1.0, 1.0, 300.0, 0.05),
        ),
    ];
    for (l, (kind, drive, lim)) in m.links.iter_mut().zip(joints) {
        l.joint.kind = kind;
        l.joint.drive = drive;
        l.joint.limit = lim;
    }
    m
}

/// A free 2 kg box (half extents 0.2, 0.15, 0.1 m) and its eight corners against the ground
/// (ke 2000 N/m, kd 30 N·s/m, μ 0.6, smoothing 1 mm).
fn box_on_ground() -> (Articulation, JointContact) {
    let (m, half) = (2.0, [0.2, 0.15, 0.1]);
    let [a, b, c] = half.map(|x: f64| 4.0 * x * x);
    let model = Articulation {
        links: vec![Link {
            name: String::from("box"),
            parent: None,
            joint: Joint::new(JointKind::Free, Transform::identity()),
            inertia: Inertia {
                m,
                com: [0.0; 3],
                ic: [
                    [m * (b + c) / 12.0, 0.0, 0.0],
                    [0.0, m * (a + c) / 12.0, 0.0],
                    [0.0, 0.0, m * (a + b) / 12.0],
                ],
            },
        }],
        gravity: [0.0, 0.0, -9.81],
    };
    let sign = |k: usize, bit: usize| if k >> bit & 1 == 1 { 1.0 } else { -1.0 };
    let contact = JointContact {
        points: (0..8)
            .map(|k| (0, [0, 1, 2].map(|d| sign(k, d) * half[d]), 0.0))
            .collect(),
        shapes: vec![Shape::Plane {
            normal: [0.0, 0.0, 1.0],
            offset: 0.0,
        }],
        link_shapes: Vec::new(),
        law: Contact {
            ke: 2000.0,
            kd: 30.0,
            mu: 0.6,
            smoothing: 1e-3,
        },
    };
    (model, contact)
}

/// [`box_on_ground`] with a free 0.5 kg ball of radius 5 cm (a second root) that touches the
/// box, which carries its shape.
fn ball_on_box() -> (Articulation, JointContact) {
    let (mut model, mut contact) = box_on_ground();
    let (m, r) = (0.5, 0.05);
    let i = 0.4 * m * r * r;
    model.links.push(Link {
        name: String::from("ball"),
        parent: None,
        joint: Joint::new(JointKind::Free, Transform::identity()),
        inertia: Inertia {
            m,
            com: [0.0; 3],
            ic: [[i, 0.0, 0.0], [0.0, i, 0.0], [0.0, 0.0, i]],
        },
    });
    contact.points.push((1, [0.0; 3], r));
    contact.link_shapes.push((
        0,
        Shape::Box {
            center: [0.0; 3],
            half: [0.2, 0.15, 0.1],
        },
    ));
    (model, contact)
}

/// A smooth deterministic sequence of `n` values times `scale`.
fn wave(n: usize, scale: f64, phase: f64) -> Vec<f64> {
    (0..n)
        .map(|k| scale * (1.3 * k as f64 + phase).sin())
        .collect()
}

/// The loss `Σₙ aₙ·vₙ + b·(q_N ⊖ q_neutral)` and, with `grads`, its gradient flattened as
/// `[q0 (tangent), v0, controls…]`.
fn loss(
    stepper: &JointStepper,
    m: &Articulation,
    q0: &[f64],
    v0: &[f64],
    controls: &[Vec<f64>],
    grads: bool,
) -> Result<(f64, Vec<f64>)> {
    let nv = m.nv();
    let run = stepper.rollout(q0, v0, controls, STEPS)?;
    let a: Vec<Vec<f64>> = (0..=STEPS).map(|n| wave(nv, 0.2, n as f64)).collect();
    let b = wave(nv, 0.5, 0.4);
    let offset = difference(m, &m.neutral(), &run.q[STEPS]);
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
    let value = (0..=STEPS).map(|n| dot(&a[n], &run.v[n])).sum::<f64>() + dot(&b, &offset);
    if !grads {
        return Ok((value, Vec::new()));
    }
    let jac = difference_jacobian(m, &m.neutral(), &run.q[STEPS]);
    let qbar_n: Vec<f64> = (0..nv)
        .map(|k| (0..nv).map(|r| jac[r][k] * b[r]).sum())
        .collect();
    let mut bars: Vec<(Vec<f64>, Vec<f64>)> = a.iter().map(|an| (Vec::new(), an.clone())).collect();
    bars[STEPS].0 = qbar_n;
    let g = stepper.adjoint(&run, controls, &bars)?;
    let flat =
        g.q0.iter()
            .chain(&g.v0)
            .chain(g.controls.iter().flatten())
            .copied()
            .collect();
    Ok((value, flat))
}

/// `articulation-muscle`: see the module's documentation.
fn run_muscle(cfg: &GradCheckConfig) -> Result<GradCheckReport> {
    let muscle = Muscle {
        f_max: 500.0,
        l_opt: 0.1,
        l_slack: 0.2,
        v_max: 10.0,
        moment_arm: 0.05,
        l_ref: 0.3,
    };
    let m = Articulation {
        links: vec![Link {
            name: String::from("bob"),
            parent: None,
            joint: Joint {
                drive: Drive::Muscle(muscle),
                damping: 0.2,
                ..Joint::new(
                    JointKind::Revolute {
                        axis: [0.0, 1.0, 0.0],
                    },
                    Transform::identity(),
                )
            },
            inertia: Inertia {
                m: 1.0,
                com: [0.0, 0.0, -0.5],
                ic: [[0.01, 0.0, 0.0], [0.0, 0.01, 0.0], [0.0, 0.0, 0.01]],
            },
        }],
        gravity: [0.0, 0.0, -9.81],
    };
    let act = Activation::default();
    let stepper = JointStepper::new(&m, H, Scheme::ImplicitEuler)?;
    let u0: Vec<f64> = (0..STEPS)
        .map(|n| 0.5 + 0.4 * (0.9 * n as f64).sin())
        .collect();
    let weights = wave(STEPS + 1, 0.3, 0.5);
    let eval = |p: &[f64], grads: bool| -> Result<(f64, Vec<f64>)> {
        let a0 = 0.3 + p[0];
        let u: Vec<f64> = u0.iter().zip(&p[1..]).map(|(x, d)| x + d).collect();
        let a = activations(&act, H, a0, &u);
        let controls: Vec<Vec<f64>> = a.iter().map(|&x| vec![x]).collect();
        let run = stepper.rollout(&[0.2], &[0.0], &controls, STEPS)?;
        let value = (0..=STEPS).map(|n| weights[n] * run.v[n][0]).sum::<f64>() + run.q[STEPS][0];
        if !grads {
            return Ok((value, Vec::new()));
        }
        let mut bars: Vec<(Vec<f64>, Vec<f64>)> =
            weights.iter().map(|w| (Vec::new(), vec![*w])).collect();
        bars[STEPS].0 = vec![1.0];
        let g = stepper.adjoint(&run, &controls, &bars)?;
        let abar: Vec<f64> = g.controls.iter().map(|c| c[0]).collect();
        let (ga0, gu) = activations_vjp(&act, H, a0, &u, &abar);
        Ok((value, std::iter::once(ga0).chain(gu).collect()))
    };
    let (_, grads) = eval(&[0.0; STEPS + 1], true)?;
    let f = |p: &[f64]| eval(p, false).map_or(f64::NAN, |(l, _)| l);
    Ok(check_flat("articulation-muscle", &grads, &f, 2, cfg))
}

/// `articulation-params-*`: see the module's documentation.
fn run_params(name: &str, scheme: Scheme, cfg: &GradCheckConfig) -> Result<GradCheckReport> {
    let params = [(1, 0), (1, 1), (1, 2), (1, 3), (3, 0), (3, 3)];
    let base = tree();
    let nv = base.nv();
    let q0 = integrate(&base, &base.neutral(), &wave(nv, 0.4, 0.2));
    let v0 = wave(nv, 0.8, 1.0);
    let controls: Vec<Vec<f64>> = (0..STEPS).map(|n| wave(nv, 0.5, 0.7 * n as f64)).collect();
    let a: Vec<Vec<f64>> = (0..=STEPS).map(|n| wave(nv, 0.2, n as f64)).collect();
    let with = |p: &[f64]| {
        let mut m = base.clone();
        for (&(link, k), d) in params.iter().zip(p) {
            let i = &mut m.links[link].inertia;
            if k == 0 {
                i.m += d;
            } else {
                i.com[k - 1] += d;
            }
        }
        m
    };
    let value = |m: &Articulation| -> Result<(f64, JointRollout)> {
        let run = JointStepper::new(m, H, scheme)?.rollout(&q0, &v0, &controls, STEPS)?;
        let l = (0..=STEPS)
            .map(|n| a[n].iter().zip(&run.v[n]).map(|(x, y)| x * y).sum::<f64>())
            .sum();
        Ok((l, run))
    };
    let (_, run) = value(&base)?;
    let bars: Vec<(Vec<f64>, Vec<f64>)> = a.iter().map(|an| (Vec::new(), an.clone())).collect();
    let stepper = JointStepper::new(&base, H, scheme)?;
    let (_, grads) = stepper.adjoint_with_params(&run, &controls, &bars, &params)?;
    let f = |p: &[f64]| value(&with(p)).map_or(f64::NAN, |(l, _)| l);
    Ok(check_flat(name, &grads, &f, 1, cfg))
}

/// Runs `articulation-[drives-|contact-|carried-|params-]{semi-implicit,implicit-euler}` and
/// `articulation-muscle`.
pub fn run(name: &str, cfg: &GradCheckConfig) -> Result<GradCheckReport> {
    if name == "articulation-muscle" {
        return run_muscle(cfg);
    }
    if name.starts_with("articulation-params-") {
        let scheme = if name.ends_with("semi-implicit") {
            Scheme::SemiImplicit
        } else {
            Scheme::ImplicitEuler
        };
        return run_params(name, scheme, cfg);
    }
    let scheme = if name.ends_with("semi-implicit") {
        Scheme::SemiImplicit
    } else {
        Scheme::ImplicitEuler
    };
    let (m, contact) = match name {
        "articulation-semi-implicit" | "articulation-implicit-euler" => (tree(), None),
        "articulation-drives-semi-implicit" | "articulation-drives-implicit-euler" => {
            (actuated(), None)
        }
        "articulation-contact-semi-implicit" | "articulation-contact-implicit-euler" => {
            let (m, c) = box_on_ground();
            (m, Some(c))
        }
        "articulation-carried-semi-implicit" | "articulation-carried-implicit-euler" => {
            let (m, c) = ball_on_box();
            (m, Some(c))
        }
        other => {
            return Err(DiffsimError::config(format!(
                "unknown articulation gradcheck '{other}'"
            )));
        }
    };
    let nv = m.nv();
    let mut stepper = JointStepper::new(&m, H, scheme)?;
    if let Some(c) = contact {
        stepper = stepper.with_contact(c)?;
    }
    let (q0, v0) = if name.contains("contact") || name.contains("carried") {
        // Tilted, 2 mm into the ground at the centre, sliding and turning; the ball 1 mm into
        // the box's top, sliding across it.
        let mut d = vec![0.05, -0.03, 0.1, 0.0, 0.0, 0.0];
        let mut v = vec![0.5, -0.3, 0.2, 0.4, 0.1, -0.2];
        if nv == 12 {
            d.extend([0.0, 0.0, 0.0, 0.02, -0.01, 0.0]);
            v.extend([0.3, 0.2, -0.1, -0.4, 0.3, 0.1]);
        }
        let mut q = integrate(&m, &m.neutral(), &d);
        q[2] = 0.098;
        if nv == 12 {
            q[9] = 0.098 + 0.1 + 0.05 - 0.001;
        }
        (q, v)
    } else if name.contains("drives") {
        // The cart at 0 moving at −1 m/s, the arm at 0.35 rad turning at 1 rad/s: both
        // limits are met within the first steps.
        let d = [0.0, 0.35, 0.2, -0.1, 0.3, 0.5];
        (
            integrate(&m, &m.neutral(), &d),
            vec![-1.0, 1.0, 0.3, -0.2, 0.5, 0.4],
        )
    } else {
        (
            integrate(&m, &m.neutral(), &wave(nv, 0.4, 0.2)),
            wave(nv, 0.8, 1.0),
        )
    };
    let controls: Vec<Vec<f64>> = (0..STEPS).map(|n| wave(nv, 0.5, 0.7 * n as f64)).collect();
    let (_, grads) = loss(&stepper, &m, &q0, &v0, &controls, true)?;
    let f = |p: &[f64]| {
        let q = integrate(&m, &q0, &p[..nv]);
        let v: Vec<f64> = v0.iter().zip(&p[nv..2 * nv]).map(|(x, d)| x + d).collect();
        let u: Vec<Vec<f64>> = controls
            .iter()
            .zip(p[2 * nv..].chunks(nv))
            .map(|(c, d)| c.iter().zip(d).map(|(x, y)| x + y).collect())
            .collect();
        loss(&stepper, &m, &q, &v, &u, false).map_or(f64::NAN, |(l, _)| l)
    };
    Ok(check_flat(name, &grads, &f, 3, cfg))
}
