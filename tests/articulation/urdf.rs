//! URDF import: Warp's cartpole asset stepped as Warp steps it, against Warp's own rollout and
//! its finite-difference gradient (where Warp's tape is wrong or NaN); the options; refused
//! files. (The branched arm against Pinocchio's URDF parser is in `dynamics`.)

use crate::models::numbers;
use crate::models::urdf_arm;
use diffsim::articulation::assets::warp_cartpole;
use diffsim::articulation::{
    JointKind, JointStepper, LimitLaw, Scheme, UrdfOptions, read_urdf, urdf_from_str,
};
use serde_json::Value;
use std::path::Path;

/// Warp 1.9.1's Featherstone step on its own cartpole (`scripts/warp-cartpole.py` →
/// `tests/data/warp-cartpole.json`, float32): Warp's masses, inertias and gravity are those
/// `warp_cartpole` derives, and diffsim's semi-implicit step from the same state
/// reproduces Warp's states after 20, 100 and 1000 steps of 1/600 s (to float32's
/// accumulated rounding), and its adjoint of `Σq_N² + Σq̇_N²` with respect to the initial
/// velocities matches its own f64 central differences to 1e-6 and Warp's float32 central
/// differences to 1%, at N = 100 and 1000 too, where Warp's tape gives wrong numbers and NaN.
#[test]
fn warps_cartpole_matches_warps_rollout_and_finite_differences() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/warp-cartpole.json"
    ))
    .unwrap();
    let warp: Value = serde_json::from_str(&text).unwrap();
    let m = warp_cartpole().unwrap();
    // Warp's masses and inertias (float32) against the rule `warp_cartpole` applies.
    for (k, link) in m.links.iter().enumerate() {
        let i = &link.inertia;
        let close = |a: f64, b: &Value| (a - b.as_f64().unwrap()).abs() < 1e-6 * (1.0 + a.abs());
        assert!(close(i.m, &warp["body_mass"][k]), "link {k} mass {}", i.m);
        for r in 0..3 {
            assert!(close(i.com[r], &warp["body_com"][k][r]));
            for c in 0..3 {
                assert!(close(i.ic[r][c], &warp["body_inertia"][k][r][c]));
            }
        }
    }
    assert_eq!(numbers(&warp["gravity"]), m.gravity);
    let h = warp["dt"].as_f64().unwrap();
    let q0 = numbers(&warp["q0"]);
    let v0 = numbers(&warp["qd0"]);
    let stepper = JointStepper::new(&m, h, Scheme::SemiImplicit).unwrap();
    let loss = |v: &[f64], steps: usize| {
        let run = stepper.rollout(&q0, v, &[], steps).unwrap();
        let sq = |x: &[f64]| x.iter().map(|y| y * y).sum::<f64>();
        (sq(&run.q[steps]) + sq(&run.v[steps]), run)
    };
    for r in warp["runs"].as_array().unwrap() {
        let steps = r["steps"].as_u64().unwrap() as usize;
        let (value, run) = loss(&v0, steps);
        let (q, v) = (&run.q[steps], &run.v[steps]);
        let state_err = q
            .iter()
            .chain(v)
            .zip(numbers(&r["q"]).iter().chain(&numbers(&r["qd"])))
            .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
            .fold(0.0, f64::max);
        // Adjoint: bars 2q_N and 2v_N (the cart and hinges are all one-coordinate joints).
        let mut bars = vec![(Vec::new(), Vec::new()); steps + 1];
        bars[steps] = (
            q.iter().map(|x| 2.0 * x).collect(),
            v.iter().map(|x| 2.0 * x).collect(),
        );
        let grad = stepper.adjoint(&run, &[], &bars).unwrap().v0;
        let eps = 1e-6;
        let fd: Vec<f64> = (0..3)
            .map(|k| {
                let mut p = v0.clone();
                p[k] += eps;
                let up = loss(&p, steps).0;
                p[k] -= 2.0 * eps;
                (up - loss(&p, steps).0) / (2.0 * eps)
            })
            .collect();
        let warp_fd = numbers(&r["fd_grad"]["0.001"]);
        let rel = |a: &[f64], b: &[f64]| {
            let d = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
            (d / b.iter().map(|y| y * y).sum::<f64>()).sqrt()
        };
        println!(
            "N = {steps}: loss {value:.6} (Warp {:.6}), state {state_err:.1e}, gradient {grad:.4?}, \
             vs own FD {:.1e}, vs Warp's FD {:.1e} ({warp_fd:.4?}); Warp's tape {}",
            r["loss"].as_f64().unwrap(),
            rel(&grad, &fd),
            rel(&grad, &warp_fd),
            r["tape_grad"]
        );
        assert!(
            state_err < 1e-3,
            "N = {steps}: state differs by {state_err}"
        );
        assert!(rel(&grad, &fd) < 1e-6);
        assert!(rel(&grad, &warp_fd) < 1e-2);
    }
}

/// Options: limits become smooth limits on revolute and prismatic joints only, damping is
/// read, armature goes on moving joints only, `floating` attaches the root by a free joint;
/// the arm's fixed joint stays a link without coordinates.
#[test]
fn urdf_options_are_applied() {
    let m = urdf_arm();
    assert_eq!((m.links.len(), m.nq(), m.nv()), (6, 4, 4));
    assert!(m.links.iter().all(|l| l.joint.limit.is_none()));
    assert_eq!(m.links[1].joint.damping, 0.2);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/urdf-arm.urdf");
    let law = LimitLaw {
        ke: 100.0,
        kd: 1.0,
        smoothing: 0.01,
    };
    let options = UrdfOptions {
        floating: true,
        armature: 0.05,
        limits: Some(law),
        ..UrdfOptions::default()
    };
    let f = read_urdf(Path::new(path), &options).unwrap();
    assert_eq!((f.nq(), f.nv()), (11, 10));
    assert_eq!(f.links[0].joint.kind, JointKind::Free);
    let names: Vec<&str> = f.links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["base", "link_a", "link_b", "link_c", "link_d", "link_e"]
    );
    let limit = f.links[2].joint.limit.unwrap();
    assert_eq!((limit.lower, limit.upper, limit.ke), (-0.1, 0.2, 100.0));
    assert_eq!(f.links[4].joint.kind, JointKind::Fixed);
    assert_eq!(f.links[4].joint.armature, 0.0);
    assert_eq!(f.links[5].joint.armature, 0.05);
}

/// Files that are not trees of supported joints are refused with one line.
#[test]
fn bad_urdfs_are_refused_with_one_line() {
    let link = |n: &str| format!(r#"<link name="{n}"/>"#);
    let joint = |n: &str, kind: &str, p: &str, c: &str| {
        format!(
            r#"<joint name="{n}" type="{kind}"><parent link="{p}"/><child link="{c}"/><axis xyz="0 0 1"/></joint>"#
        )
    };
    let robot = |body: String| format!(r#"<robot name="r">{body}</robot>"#);
    let cases = [
        (String::from("not xml <"), "readable"),
        (
            robot(link("a") + &link("b") + &joint("j", "planar", "a", "b")),
            "planar",
        ),
        (robot(link("a") + &link("b")), "one root"),
        (
            robot(link("a") + &joint("j", "revolute", "a", "ghost")),
            "ghost",
        ),
        (
            robot(
                link("a")
                    + &link("b")
                    + &link("c")
                    + &joint("j1", "fixed", "a", "b")
                    + &joint("j2", "fixed", "c", "b"),
            ),
            "two parent",
        ),
        (
            robot(
                link("a")
                    + &link("b")
                    + &joint("j", "revolute", "a", "b").replace("0 0 1", "0 0 0"),
            ),
            "axis",
        ),
    ];
    for (text, words) in cases {
        let err = urdf_from_str(&text, &UrdfOptions::default())
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"))
            .to_string();
        assert!(err.contains(words) && !err.contains('\n'), "{err}");
    }
}
