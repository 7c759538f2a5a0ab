//! RNEA, CRBA and ABA against Pinocchio 4.1's golden values and a closed-form double
//! pendulum, the identities between them on a tree with every joint kind, dual-number
//! derivatives against central differences, and bad trees refused.

use crate::models::{at, chain, diag, numbers, rows, state, tree, urdf_arm};
use diffsim::articulation::spatial::quat_matrix;
use diffsim::articulation::{
    Articulation, Inertia, Joint, JointKind, Link, aba, aba_derivatives, crba, integrate, rnea,
    rnea_derivatives, rnea_derivatives_dual, rnea_partials,
};

/// Point masses on massless rods hanging along −z, revolute joints about y: ABA's
/// accelerations equal the textbook equations of the double pendulum (absolute angles
/// θ₁ = q₁, θ₂ = q₁ + q₂) on 100 states.
#[test]
fn a_double_pendulum_follows_its_closed_form() {
    let (m1, m2, l1, l2, g) = (1.3, 0.7, 0.9, 0.6, 9.81);
    let link = |i: usize, m: f64, l: f64, offset: f64| Link {
        name: format!("rod{i}"),
        parent: if i == 0 { None } else { Some(i - 1) },
        joint: Joint::new(
            JointKind::Revolute {
                axis: [0.0, 1.0, 0.0],
            },
            at([0.0, 0.0, -offset]),
        ),
        inertia: Inertia {
            m,
            com: [0.0, 0.0, -l],
            ic: diag(0.0, 0.0, 0.0),
        },
    };
    let model = Articulation {
        links: vec![link(0, m1, l1, 0.0), link(1, m2, l2, l1)],
        gravity: [0.0, 0.0, -g],
    };
    let mut worst = 0.0f64;
    for k in 0..100 {
        let x = k as f64;
        let q = [(1.3 * x).sin() * 2.5, (0.7 * x + 1.0).cos() * 3.0];
        let v = [(0.3 * x).cos() * 2.0, (1.1 * x).sin() * 3.0];
        let (t1, t2, w1, w2) = (q[0], q[0] + q[1], v[0], v[0] + v[1]);
        let den = 2.0 * m1 + m2 - m2 * (2.0 * t1 - 2.0 * t2).cos();
        let a1 = (-g * (2.0 * m1 + m2) * t1.sin()
            - m2 * g * (t1 - 2.0 * t2).sin()
            - 2.0 * (t1 - t2).sin() * m2 * (w2 * w2 * l2 + w1 * w1 * l1 * (t1 - t2).cos()))
            / (l1 * den);
        let a2 = 2.0
            * (t1 - t2).sin()
            * (w1 * w1 * l1 * (m1 + m2)
                + g * (m1 + m2) * t1.cos()
                + w2 * w2 * l2 * m2 * (t1 - t2).cos())
            / (l2 * den);
        let qdd = aba(&model, &q, &v, &[0.0, 0.0]).unwrap();
        worst = worst
            .max((qdd[0] - a1).abs())
            .max((qdd[1] - (a2 - a1)).abs());
    }
    println!("largest difference {worst:e} rad/s²");
    assert!(worst < 1e-11);
}

#[test]
fn rnea_crba_and_aba_agree_on_a_tree_with_every_joint_kind() {
    let m = tree();
    m.validate().unwrap();
    assert_eq!((m.nq(), m.nv()), (14, 12));
    let (q, v, tau) = state(&m);
    let qdd = aba(&m, &q, &v, &tau).unwrap();
    let back = rnea(&m, &q, &v, &qdd);
    let worst = back
        .iter()
        .zip(&tau)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("RNEA(q, v, ABA(q, v, τ)) − τ: {worst:e}");
    assert!(worst < 1e-12);
    // M from CRBA equals RNEA's columns, and is symmetric positive definite.
    let mass = crba(&m, &q);
    let bias = rnea(&m, &q, &v, &[0.0; 12]);
    for k in 0..12 {
        let mut e = vec![0.0; 12];
        e[k] = 1.0;
        let col = rnea(&m, &q, &v, &e);
        for r in 0..12 {
            assert!((col[r] - bias[r] - mass[r][k]).abs() < 1e-12, "M[{r}][{k}]");
            assert!((mass[r][k] - mass[k][r]).abs() < 1e-12);
        }
    }
    // M q̈ + C = τ.
    for r in 0..12 {
        let mq: f64 = (0..12).map(|k| mass[r][k] * qdd[k]).sum();
        assert!((mq + bias[r] - tau[r]).abs() < 1e-11);
    }
    // A lone free body (no armature), at rest and turned, falls at g without turning.
    let mut base = m.links[0].clone();
    base.joint.armature = 0.0;
    let lone = Articulation {
        links: vec![base],
        gravity: m.gravity,
    };
    let q0 = integrate(&lone, &lone.neutral(), &[0.3, -0.2, 0.5, 0.1, 0.2, 0.3]);
    let a = aba(&lone, &q0, &[0.0; 6], &[0.0; 6]).unwrap();
    let r = quat_matrix([q0[3], q0[4], q0[5], q0[6]]);
    for i in 0..3 {
        let g_body: f64 = (0..3).map(|k| r[k][i] * lone.gravity[k]).sum();
        assert!(
            a[i].abs() < 1e-12 && (a[3 + i] - g_body).abs() < 1e-12,
            "{a:?}"
        );
    }
}

/// Dual-number derivatives of RNEA and ABA (tangent space for the free and ball joints)
/// against central differences through `q ⊕ δ`.
#[test]
fn dual_number_derivatives_match_central_differences() {
    let m = tree();
    let (q, v, tau) = state(&m);
    let nv = m.nv();
    let a: Vec<f64> = (0..nv).map(|k| (0.4 * k as f64).cos()).collect();
    let (_, dq, dv) = rnea_derivatives(&m, &q, &v, &a);
    let d = aba_derivatives(&m, &q, &v, &tau).unwrap();
    let eps = 1e-6;
    let mut worst = 0.0f64;
    for k in 0..nv {
        let mut e = vec![0.0; nv];
        e[k] = eps;
        let qp = integrate(&m, &q, &e);
        e[k] = -eps;
        let qm = integrate(&m, &q, &e);
        let mut vp = v.clone();
        vp[k] += eps;
        let mut vm = v.clone();
        vm[k] -= eps;
        let fd_rq: Vec<f64> = rnea(&m, &qp, &v, &a)
            .iter()
            .zip(rnea(&m, &qm, &v, &a))
            .map(|(x, y)| (x - y) / (2.0 * eps))
            .collect();
        let fd_rv: Vec<f64> = rnea(&m, &q, &vp, &a)
            .iter()
            .zip(rnea(&m, &q, &vm, &a))
            .map(|(x, y)| (x - y) / (2.0 * eps))
            .collect();
        let fd_aq: Vec<f64> = aba(&m, &qp, &v, &tau)
            .unwrap()
            .iter()
            .zip(aba(&m, &qm, &v, &tau).unwrap())
            .map(|(x, y)| (x - y) / (2.0 * eps))
            .collect();
        let fd_av: Vec<f64> = aba(&m, &q, &vp, &tau)
            .unwrap()
            .iter()
            .zip(aba(&m, &q, &vm, &tau).unwrap())
            .map(|(x, y)| (x - y) / (2.0 * eps))
            .collect();
        for r in 0..nv {
            for (ad, fd) in [
                (dq[r][k], fd_rq[r]),
                (dv[r][k], fd_rv[r]),
                (d.dq[r][k], fd_aq[r]),
                (d.dv[r][k], fd_av[r]),
            ] {
                worst = worst.max((ad - fd).abs() / (1.0 + fd.abs()));
            }
        }
        let mut tp = tau.clone();
        tp[k] += eps;
        let mut tm = tau.clone();
        tm[k] -= eps;
        let fd_t: Vec<f64> = aba(&m, &q, &v, &tp)
            .unwrap()
            .iter()
            .zip(aba(&m, &q, &v, &tm).unwrap())
            .map(|(x, y)| (x - y) / (2.0 * eps))
            .collect();
        for (row, fd) in d.minv.iter().zip(&fd_t) {
            worst = worst.max((row[k] - fd).abs() / (1.0 + fd.abs()));
        }
    }
    println!("largest relative difference {worst:e}");
    assert!(worst < 1e-6);
}

/// Every quantity Pinocchio 4.1 computes for both trees and for the branched arm read from
/// `tests/data/urdf-arm.urdf` (by Pinocchio's URDF parser there, by ours here;
/// `scripts/pinocchio-golden.py` wrote `tests/data/pinocchio-golden.json` in diffsim's
/// conventions): `M`, `RNEA(q, v, 0)`, ABA, `∂τ/∂q`, `∂τ/∂v` at a given `a`, `∂q̈/∂q`,
/// `∂q̈/∂v` and `M⁻¹`, to 1e-10.
#[test]
fn every_tree_matches_every_pinocchio_golden_value() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pinocchio-golden.json"
    ))
    .unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vector = |g: &serde_json::Value, k: &str| numbers(&g[k]);
    let matrix = |g: &serde_json::Value, k: &str| rows(&g[k]);
    for (name, m) in [
        ("chain", chain()),
        ("tree", tree()),
        ("urdf_arm", urdf_arm()),
    ] {
        let g = &golden[name];
        let (q, v, tau, a) = (
            vector(g, "q"),
            vector(g, "v"),
            vector(g, "tau"),
            vector(g, "a"),
        );
        let nv = m.nv();
        let (_, dtq, dtv) = rnea_derivatives(&m, &q, &v, &a);
        let d = aba_derivatives(&m, &q, &v, &tau).unwrap();
        let mut worst = (0.0f64, "");
        let mut compare = |what: &'static str, ours: &[f64], theirs: &[f64]| {
            assert_eq!(ours.len(), theirs.len());
            for (x, y) in ours.iter().zip(theirs) {
                let e = (x - y).abs() / (1.0 + y.abs());
                if e > worst.0 {
                    worst = (e, what);
                }
            }
        };
        let flat = |x: &[Vec<f64>]| -> Vec<f64> { x.concat() };
        compare("M", &flat(&crba(&m, &q)), &flat(&matrix(g, "mass")));
        compare(
            "RNEA",
            &rnea(&m, &q, &v, &vec![0.0; nv]),
            &vector(g, "bias"),
        );
        compare("ABA", &aba(&m, &q, &v, &tau).unwrap(), &vector(g, "qdd"));
        compare("dtau/dq", &flat(&dtq), &flat(&matrix(g, "dtau_dq")));
        compare("dtau/dv", &flat(&dtv), &flat(&matrix(g, "dtau_dv")));
        compare("dqdd/dq", &flat(&d.dq), &flat(&matrix(g, "ddq_dq")));
        compare("dqdd/dv", &flat(&d.dv), &flat(&matrix(g, "ddq_dv")));
        compare("Minv", &flat(&d.minv), &flat(&matrix(g, "minv")));
        println!(
            "{name}: largest relative difference from Pinocchio {:e} ({})",
            worst.0, worst.1
        );
        assert!(worst.0 < 1e-10);
    }
}

#[test]
fn bad_trees_are_refused_with_one_line() {
    let mut bad_axis = chain();
    bad_axis.links[1].joint.kind = JointKind::Revolute { axis: [0.0; 3] };
    let mut cycle = chain();
    cycle.links[0].parent = Some(2);
    let mut mass = chain();
    mass.links[2].inertia.m = -1.0;
    let mut inertia = chain();
    inertia.links[0].inertia.ic = diag(1.0, 0.1, 0.1);
    for (m, expect) in [
        (bad_axis, "link 1 ('link1'): its joint axis"),
        (
            cycle,
            "link 0 ('link0'): its parent 2 does not come before it",
        ),
        (mass, "link 2 ('link2'): mass -1"),
        (inertia, "link 0 ('link0'): its rotational inertia"),
    ] {
        let err = m.validate().unwrap_err().to_string();
        assert!(err.contains(expect) && !err.contains('\n'), "{err}");
    }
}

/// The analytic derivatives of RNEA (Carpentier–Mansard) against the dual-number ones on the
/// chain, the tree with every joint kind and the URDF arm, at three states each: `τ`, `∂τ/∂q`,
/// `∂τ/∂v` and `M`, to 1e-12 relative to `1 + |value|`.
#[test]
fn analytic_derivatives_match_the_dual_number_ones() {
    let mut worst = 0.0f64;
    for (name, m) in [
        ("chain", chain()),
        ("tree", tree()),
        ("urdf_arm", urdf_arm()),
    ] {
        for seed in 0..3 {
            let (q0, v, a) = state(&m);
            let nv = m.nv();
            let d: Vec<f64> = (0..nv)
                .map(|k| 0.3 * (1.7 * (k + seed) as f64).sin())
                .collect();
            let q = integrate(&m, &q0, &d);
            let v: Vec<f64> = v.iter().map(|x| x * (1.0 + seed as f64)).collect();
            let p = rnea_partials(&m, &q, &v, &a);
            let (tau, dq, dv) = rnea_derivatives_dual(&m, &q, &v, &a);
            let mass = crba(&m, &q);
            let mut err = |what: &str, x: &[f64], y: &[f64]| {
                for (k, (s, t)) in x.iter().zip(y).enumerate() {
                    let e = (s - t).abs() / (1.0 + t.abs());
                    assert!(e < 1e-12, "{name} seed {seed} {what}[{k}]: {s} vs {t}");
                    worst = worst.max(e);
                }
            };
            err("tau", &p.tau, &tau);
            err("dtau/dq", &p.dq.concat(), &dq.concat());
            err("dtau/dv", &p.dv.concat(), &dv.concat());
            err("M", &p.mass.concat(), &mass.concat());
        }
    }
    println!("analytic vs dual-number RNEA derivatives: {worst:e}");
}
