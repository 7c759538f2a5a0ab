//! The MJCF reader against MuJoCo 4.0.1 compiling the same files (`scripts/mujoco-golden.py`
//! → `tests/data/mjcf-golden.json`): dm_control's cartpole, acrobot and pendulum as shipped
//! and a test arm with every element the reader handles; options and refused files.

use crate::models::{numbers, rows, sink};
use diffsim::articulation::{LimitLaw, MjcfOptions, crba, read_mjcf, rnea};
use serde_json::Value;
use std::path::Path;

/// Per model: the joint-space inertia (armature included) and the bias forces
/// `RNEA(q, v, 0)` at two states against MuJoCo's `mj_fullM` and `qfrc_bias` to 1e-12
/// relative to `1 + |value|`; masses, timestep, gravity, damping and armature exactly.
#[test]
fn mjcf_models_match_mujoco() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/tests/data/mjcf-golden.json")).unwrap(),
    )
    .unwrap();
    let files = [
        ("mjcf_arm", "tests/data/mjcf-arm.xml"),
        ("cartpole", "data/robots/dm_control/cartpole.xml"),
        ("acrobot", "data/robots/dm_control/acrobot.xml"),
        ("pendulum", "data/robots/dm_control/pendulum.xml"),
    ];
    for (name, file) in files {
        let g = &golden[name];
        let model = read_mjcf(Path::new(&format!("{dir}/{file}")), &MjcfOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let m = &model.articulation;
        assert_eq!(model.timestep, g["timestep"].as_f64().unwrap());
        assert_eq!(m.gravity.to_vec(), numbers(&g["gravity"]));
        // Body masses (intermediate links of multi-joint bodies are massless).
        let total: f64 = m.links.iter().map(|l| l.inertia.m).sum();
        let expected: f64 = numbers(&g["body_mass"]).iter().sum();
        assert!(
            (total - expected).abs() < 1e-12,
            "{name}: mass {total} vs {expected}"
        );
        for (j, (jname, dof)) in g["joints"].as_array().unwrap().iter().zip(&model.joints) {
            assert_eq!(j["name"].as_str().unwrap(), jname);
            let link = m
                .links
                .iter()
                .zip(m.offsets())
                .find(|(l, o)| o.1 == *dof && l.joint.kind.nv() > 0)
                .unwrap()
                .0;
            assert_eq!(
                link.joint.damping,
                j["damping"].as_f64().unwrap(),
                "{jname}"
            );
            assert_eq!(
                link.joint.armature,
                j["armature"].as_f64().unwrap(),
                "{jname}"
            );
        }
        let mut worst = 0.0f64;
        for s in g["states"].as_array().unwrap() {
            let (q, v) = (numbers(&s["qpos"]), numbers(&s["qvel"]));
            let mass = crba(m, &q);
            let bias = rnea(m, &q, &v, &vec![0.0; m.nv()]);
            let theirs_m: Vec<f64> = rows(&s["mass"]).concat();
            let ours = mass.concat().into_iter().chain(bias);
            let theirs = theirs_m.into_iter().chain(numbers(&s["bias"]));
            for (a, b) in ours.zip(theirs) {
                worst = worst.max((a - b).abs() / (1.0 + b.abs()));
            }
        }
        println!(
            "{name}: nv {}, largest relative difference from MuJoCo {worst:.1e}",
            m.nv()
        );
        assert!(worst < 1e-12, "{name}: {worst}");
    }
}

/// Actuators become drives (motor gear, position servo gains) and keep their control ranges;
/// ranges become smooth limits (hinge ranges converted from degrees) with a limit law.
#[test]
fn mjcf_actuators_and_limits() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let law = LimitLaw {
        ke: 500.0,
        kd: 2.0,
        smoothing: 0.01,
    };
    let path = format!("{dir}/tests/data/mjcf-arm.xml");
    let model = read_mjcf(
        Path::new(&path),
        &MjcfOptions {
            limits: Some(law),
            ..MjcfOptions::default()
        },
    )
    .unwrap();
    let names: Vec<&str> = model.actuators.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["push", "shoulder_servo", "elbow_motor"]);
    assert_eq!(model.actuators[0].ctrlrange, Some([-1.0, 1.0]));
    assert_eq!(model.actuators[2].ctrlrange, None);
    let m = &model.articulation;
    let link_of = |dof: usize| {
        m.links
            .iter()
            .zip(m.offsets())
            .find(|(l, o)| o.1 == dof && l.joint.kind.nv() > 0)
            .unwrap()
            .0
    };
    use diffsim::articulation::Drive;
    assert_eq!(link_of(0).joint.drive, Drive::Motor { gear: 20.0 });
    assert_eq!(
        link_of(model.actuators[1].dof).joint.drive,
        Drive::Position { ke: 30.0, kd: 2.0 }
    );
    let shoulder = link_of(model.actuators[1].dof).joint.limit.unwrap();
    assert!((shoulder.upper - std::f64::consts::FRAC_PI_2).abs() < 1e-15);
    assert_eq!(link_of(0).joint.limit.unwrap().lower, -0.5);
    let cart = read_mjcf(
        Path::new(&format!("{dir}/data/robots/dm_control/cartpole.xml")),
        &MjcfOptions::default(),
    )
    .unwrap();
    assert!(
        cart.articulation
            .links
            .iter()
            .all(|l| l.joint.limit.is_none())
    );
    assert_eq!(cart.actuators[0].dof, 0);
}

/// Unsupported or broken files are refused with one line naming the file.
#[test]
fn bad_mjcf_files_are_refused() {
    let dir = std::env::temp_dir().join(format!("diffsim-mjcf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "<mujoco><worldbody><body><joint type='planar'/></body></worldbody></mujoco>",
            "planar",
        ),
        ("<robot/>", "<mujoco>"),
        (
            "<mujoco><worldbody><body><joint springref='3'/></body></worldbody></mujoco>",
            "springref",
        ),
        (
            "<mujoco><worldbody><body><geom type='box' size='1'/></body></worldbody></mujoco>",
            "size",
        ),
        (
            "<mujoco><worldbody><body><joint name='j'/><geom size='0.1'/></body></worldbody><actuator><velocity joint='j'/></actuator></mujoco>",
            "velocity",
        ),
        (
            "<mujoco><worldbody><body><joint name='j'/><geom size='0.1'/></body></worldbody><actuator><motor joint='k'/></actuator></mujoco>",
            "no joint 'k'",
        ),
        (
            "<mujoco><include file='missing.xml'/></mujoco>",
            "cannot read",
        ),
        (
            "<mujoco><worldbody><body><body><freejoint/></body></body></worldbody></mujoco>",
            "free joint",
        ),
        ("<mujoco", "not XML"),
        (
            "<mujoco><worldbody><body><joint/><geom size='0.1'/></body></worldbody><keyframe><key qpos='0 1'/></keyframe></mujoco>",
            "2 qpos values for 1",
        ),
        // Contact pairs (read with a contact law, below): a missing geom, a world geom that
        // is not a plane, a body geom that is neither sphere nor capsule.
        (
            "<mujoco><worldbody><geom name='floor' type='plane' size='1 1 1'/><body><joint/><geom name='ball' size='0.1'/></body></worldbody><contact><pair geom1='ball' geom2='ground'/></contact></mujoco>",
            "'ball'–'ground': no named geom 'ground'",
        ),
        (
            "<mujoco><worldbody><geom name='wall' type='box' size='1 1 1'/><body><joint/><geom name='ball' size='0.1'/></body></worldbody><contact><pair geom1='ball' geom2='wall'/></contact></mujoco>",
            "must be a plane",
        ),
        (
            "<mujoco><worldbody><geom name='floor' type='plane' size='1 1 1'/><body><joint/><geom name='brick' type='box' size='0.1 0.1 0.1'/></body></worldbody><contact><pair geom1='brick' geom2='floor'/></contact></mujoco>",
            "a box geom is not read",
        ),
    ];
    let options = MjcfOptions {
        contact: Some(diffsim::solids::contact::Contact {
            ke: 1e4,
            kd: 10.0,
            mu: 0.5,
            smoothing: 1e-3,
        }),
        ..MjcfOptions::default()
    };
    for (k, (text, words)) in cases.iter().enumerate() {
        let path = dir.join(format!("case{k}.xml"));
        std::fs::write(&path, text).unwrap();
        let err = read_mjcf(&path, &options)
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"))
            .to_string();
        assert!(
            err.contains(words) && err.contains("case") && !err.contains('\n'),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// MJX's humanoid (`data/robots/mjx/humanoid.xml`, as MuJoCo MJX 3.17 ships it): the sizes
/// and total mass MuJoCo 4.0.1 compiles (nq 28, nv 27, nu 21, 40.84402122162134 kg), joint
/// springs, the four foot capsules' `<pair>`s with the floor as eight points of radius
/// 2.7 cm, and its keyframes. From the `squat` key under gravity with zero controls, implicit
/// Euler at its 5 ms step keeps it on the floor: after 1 s (it topples forward onto its toes)
/// no foot point has sunk more than its share of the weight asks, and the feet still touch.
#[test]
fn mjx_humanoid_reads_with_springs_contact_pairs_and_keyframes() {
    use diffsim::articulation::assets::mjx_humanoid_options;
    use diffsim::articulation::{JointStepper, Scheme, world_point};
    let dir = env!("CARGO_MANIFEST_DIR");
    let mut options = mjx_humanoid_options();
    if let Some(c) = options.contact.as_mut() {
        c.kd = 500.0;
    }
    let path = format!("{dir}/data/robots/mjx/humanoid.xml");
    let model = read_mjcf(Path::new(&path), &options).unwrap();
    let m = &model.articulation;
    assert_eq!((m.nq(), m.nv(), model.actuators.len()), (28, 27, 21));
    let mass: f64 = m.links.iter().map(|l| l.inertia.m).sum();
    assert!((mass - 40.84402122162134).abs() < 1e-12, "{mass}");
    assert_eq!(model.timestep, 0.005);
    let stiff = |name: &str| {
        let dof = model.joints.iter().find(|j| j.0 == name).unwrap().1;
        let offsets = m.offsets();
        let link = m
            .links
            .iter()
            .zip(&offsets)
            .find(|(l, o)| o.1 == dof && l.joint.kind.nv() > 0)
            .unwrap();
        link.0.joint.stiffness
    };
    assert_eq!(
        (stiff("abdomen_z"), stiff("knee_left"), stiff("elbow_right")),
        (20.0, 1.0, 0.0)
    );
    let contact = model.contact.clone().unwrap();
    assert_eq!(contact.points.len(), 8);
    assert!(contact.points.iter().all(|p| p.2 == 0.027));
    let names: Vec<&str> = model.keyframes.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(names, ["squat", "stand_on_left_leg", "no_efc"]);
    // The file's squat quaternion (0.988015, 0, 0.154359, 0) is 1.7e-7 off unit length; the
    // reader scales it as MuJoCo does.
    let q0 = &model.keyframes[0].1;
    let norm = q0[3..7].iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-15, "{norm}");
    assert!((q0[3] - 0.988015 / 1.0000001705529853).abs() < 1e-15);
    let stepper = JointStepper::new(m, model.timestep, Scheme::ImplicitEuler)
        .unwrap()
        .with_contact(contact.clone())
        .unwrap();
    let run = stepper.rollout(q0, &vec![0.0; 27], &[], 200).unwrap();
    let heights: Vec<f64> = contact
        .points
        .iter()
        .map(|&(link, p, r)| world_point(m, &run.q[200], link, p)[2] - r)
        .collect();
    println!("foot points above the floor after 1 s (m): {heights:?}");
    // No foot point sinks deeper than its share of the weight asks (400 N over two points at
    // ke 2e4: ~1 cm), and the feet still touch.
    let lowest = heights.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(lowest > -0.015 && lowest < 0.005, "{heights:?}");
}

/// Through 20 steps of MJX's humanoid on the floor (the `squat` key, every motor at 0.05),
/// the adjoint gradient of `Σq_N² + Σq̇_N²` (raw coordinates, quaternion included, mapped to
/// the tangent space by `configuration_bar`) in the controls matches central differences,
/// both steppers, at controls early, mid-way and last (measured 5e-8 – 4e-6 relative, within
/// the differences' own spread between steps 1e-5 and 1e-6).
#[test]
fn mjx_humanoid_gradients_through_foot_contact_match_central_differences() {
    use diffsim::articulation::assets::mjx_humanoid_options;
    use diffsim::articulation::{JointStepper, Scheme, configuration_bar};
    let dir = env!("CARGO_MANIFEST_DIR");
    let options = mjx_humanoid_options();
    let path = format!("{dir}/data/robots/mjx/humanoid.xml");
    let model = read_mjcf(Path::new(&path), &options).unwrap();
    let m = &model.articulation;
    let (steps, nv) = (20, m.nv());
    let q0 = model.keyframes[0].1.clone();
    let base: Vec<Vec<f64>> = (0..steps)
        .map(|_| {
            let mut u = vec![0.0; nv];
            model.actuators.iter().for_each(|a| u[a.dof] = 0.05);
            u
        })
        .collect();
    let probes = [
        (0, model.actuators[0].dof),
        (10, model.actuators[5].dof),
        (19, model.actuators[12].dof),
    ];
    for scheme in [Scheme::SemiImplicit, Scheme::ImplicitEuler] {
        let stepper = JointStepper::new(m, model.timestep, scheme)
            .unwrap()
            .with_contact(model.contact.clone().unwrap())
            .unwrap();
        let loss = |u: &[Vec<f64>]| {
            let run = stepper.rollout(&q0, &vec![0.0; nv], u, steps).unwrap();
            let sq = |x: &[f64]| x.iter().map(|y| y * y).sum::<f64>();
            (sq(&run.q[steps]) + sq(&run.v[steps]), run)
        };
        let (_, run) = loss(&base);
        let mut bars = vec![(Vec::new(), Vec::new()); steps + 1];
        let raw: Vec<f64> = run.q[steps].iter().map(|x| 2.0 * x).collect();
        bars[steps] = (
            configuration_bar(m, &run.q[steps], &raw),
            run.v[steps].iter().map(|x| 2.0 * x).collect(),
        );
        let g = stepper.adjoint(&run, &base, &bars).unwrap();
        for (n, d) in probes {
            let at = |e: f64| {
                let mut u = base.clone();
                u[n][d] += e;
                loss(&u).0
            };
            // Stiff contact makes the differences noisy: their own spread between steps 1e-5
            // and 1e-6 joins the tolerance.
            let fd = |e: f64| (at(e) - at(-e)) / (2.0 * e);
            let (coarse, fine) = (fd(1e-5), fd(1e-6));
            let ad = g.controls[n][d];
            let err = (ad - fine).abs() / fine.abs();
            println!(
                "{scheme:?} step {n} dof {d}: adjoint {ad} vs FD {fine} ({err:.1e}; FD spread {:.1e})",
                (coarse - fine).abs() / fine.abs()
            );
            assert!(
                (ad - fine).abs() <= 1e-5 * fine.abs() + (coarse - fine).abs(),
                "{scheme:?} step {n} dof {d}: {ad} vs {fine} / {coarse}"
            );
        }
    }
}

/// A `<pair>` of a free ball (a 0.1 m sphere geom of 1000 kg/m³) and a raised plane (pos z =
/// 0.5) becomes one point of radius 0.1 at the ball's centre against the plane z ≥ 0.5: the
/// ball comes to rest where the law carries its weight, `0.6 − s·ln(e^{mg/(ke s)} − 1)`.
#[test]
fn a_sphere_plane_pair_rests_where_the_law_carries_the_weight() {
    use diffsim::articulation::{JointStepper, Scheme};
    let dir = std::env::temp_dir().join(format!("diffsim-mjcf-ball-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ball.xml");
    std::fs::write(
        &path,
        "<mujoco><worldbody><geom name='floor' type='plane' pos='0 0 0.5' size='1 1 1'/>\
         <body pos='0 0 0.65'><freejoint/><geom name='ball' size='0.1'/></body></worldbody>\
         <contact><pair geom1='floor' geom2='ball'/></contact></mujoco>",
    )
    .unwrap();
    let (ke, s) = (1e4, 1e-3);
    let options = contact_options(ke, s);
    let model = read_mjcf(&path, &options).unwrap();
    let contact = model.contact.clone().unwrap();
    assert_eq!(contact.points, vec![(0, [0.0; 3], 0.1)]);
    // A free joint's coordinates are the body's world pose, as MuJoCo's qpos.
    assert_eq!(model.qpos0, vec![0.0, 0.0, 0.65, 1.0, 0.0, 0.0, 0.0]);
    let m = &model.articulation;
    let weight = m.links[0].inertia.m * 9.81;
    let expected = 0.6 - sink(weight, ke, s);
    let stepper = JointStepper::new(m, 0.01, Scheme::ImplicitEuler)
        .unwrap()
        .with_contact(contact)
        .unwrap();
    let q0 = [0.0, 0.0, 0.65, 1.0, 0.0, 0.0, 0.0];
    let run = stepper.rollout(&q0, &[0.0; 6], &[], 300).unwrap();
    let z = run.q[300][2];
    println!("ball rests at {z:.9} m, closed form {expected:.9} m");
    assert!((z - expected).abs() < 1e-8, "{z} vs {expected}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A pair of a free ball and a box geom of another body (a tray on a vertical spring slide,
/// `stiffness` 2000 N/m, `damping` 50): the tray carries the box as an obstacle (the ball's
/// geom gives the point although it is `geom2`), and both come to rest at their closed forms:
/// the spring carries tray and ball, `q = −(M + m)g/k`, the ball's contact its weight. A box
/// turned against its body's axes and a pair within one link are refused with one line.
#[test]
fn a_ball_paired_with_a_sprung_tray_rests_on_it() {
    use diffsim::articulation::{JointStepper, Scheme};
    use diffsim::solids::contact::Shape;
    let dir = std::env::temp_dir().join(format!("diffsim-mjcf-tray-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, tray_geom: &str, pair: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "<mujoco><worldbody>\
                 <body name='tray' pos='0 0 0.5'><joint name='lift' type='slide' axis='0 0 1' \
                 stiffness='2000' damping='50'/>{tray_geom}\
                 <geom name='rim' type='sphere' pos='0.3 0 0' size='0.01' mass='0'/></body>\
                 <body name='ball' pos='0 0 0.575'><freejoint/>\
                 <geom name='ball' size='0.05' mass='0.5'/></body></worldbody>\
                 <contact>{pair}</contact></mujoco>"
            ),
        )
        .unwrap();
        path
    };
    let flat = "<geom name='top' type='box' size='0.3 0.3 0.02' mass='2'/>";
    let path = write("tray.xml", flat, "<pair geom1='top' geom2='ball'/>");
    let (ke, s) = (1e4, 1e-4);
    let options = contact_options(ke, s);
    let model = read_mjcf(&path, &options).unwrap();
    let contact = model.contact.clone().unwrap();
    assert_eq!(contact.points, vec![(1, [0.0; 3], 0.05)]);
    assert!(contact.shapes.is_empty());
    assert_eq!(
        contact.link_shapes,
        vec![(
            0,
            Shape::Box {
                center: [0.0; 3],
                half: [0.3, 0.3, 0.02]
            }
        )]
    );
    let m = &model.articulation;
    let (tray_m, ball_m) = (m.links[0].inertia.m, m.links[1].inertia.m);
    assert!((tray_m - 2.0).abs() < 1e-12 && (ball_m - 0.5).abs() < 1e-12);
    let g = 9.81;
    let lift = -(tray_m + ball_m) * g / 2000.0;
    let ball_z = 0.5 + lift + 0.02 + 0.05 - sink(ball_m * g, ke, s);
    let stepper = JointStepper::new(m, 0.01, Scheme::ImplicitEuler)
        .unwrap()
        .with_contact(contact)
        .unwrap();
    let run = stepper.rollout(&model.qpos0, &[0.0; 7], &[], 600).unwrap();
    let q = &run.q[600];
    println!(
        "tray at {:.9} (closed form {lift:.9}), ball at {:.9} m ({ball_z:.9})",
        q[0], q[3]
    );
    assert!((q[0] - lift).abs() < 1e-8, "{q:?}");
    assert!((q[3] - ball_z).abs() < 1e-8, "{q:?}");
    for (name, geom, pair, says) in [
        (
            "turned.xml",
            "<geom name='top' type='box' size='0.3 0.3 0.02' euler='0 0 30' mass='2'/>",
            "<pair geom1='top' geom2='ball'/>",
            "turned against its body's axes",
        ),
        (
            "same.xml",
            flat,
            "<pair geom1='rim' geom2='top'/>",
            "both geoms move with one link",
        ),
    ] {
        let err = read_mjcf(&write(name, geom, pair), &options)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(says) && !err.contains('\n'), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Reading options with the contact law `ke`, damping 200, μ 0.5, smoothing `s`.
fn contact_options(ke: f64, s: f64) -> MjcfOptions {
    MjcfOptions {
        contact: Some(diffsim::solids::contact::Contact {
            ke,
            kd: 200.0,
            mu: 0.5,
            smoothing: s,
        }),
        ..MjcfOptions::default()
    }
}
