//! Gradient checks of the rigid-body steps: multi-step rollouts of tumbling bodies (with
//! contact, friction and damping where the scheme supports it) differentiated with respect
//! to the initial states (rotations perturbed as `exp([δθ]×)·R`) and every step's external
//! wrench, against central finite differences of the same rollout.

use super::checker::{GradCheckConfig, GradCheckReport, check_flat};
use crate::error::{DiffsimError, Result};
use crate::rigid::{
    BodyShape, BodyState, Implicit, RigidBody, RigidGrads, RigidModel, RigidScheme, SemiImplicit,
    StateBar, Wrench, so3,
};
use crate::solids::contact::{Contact, Shape};
use crate::solids::math::V3;
use crate::solids::mesh_sdf::{MeshSdf, TriangleMesh};
use std::sync::Arc;

/// A box and a capsule, tumbling, over a tilted ground plane (or in free flight), with
/// non-trivial wrenches on every step; with `bodies`, a sphere joins them and all three are
/// pressed into each other and touch (box–capsule, box–sphere, capsule–sphere). With `mesh`,
/// the box is a triangle mesh (given off its centre of mass) and the ground a tilted
/// triangle-mesh slab whose top face is the plane.
fn scene(contact: bool, bodies: bool, mesh: bool, steps: usize) -> (RigidModel, Vec<BodyState>) {
    let half = [0.3, 0.2, 0.1];
    let shape = if mesh {
        BodyShape::Mesh(TriangleMesh::cuboid(half, [0.7, -0.4, 0.2]))
    } else {
        BodyShape::Box { half }
    };
    let bx = RigidBody::from_shape(&shape, 500.0).expect("box");
    let normal = [0.0, 0.995_037_190_209_989_1, 0.099_503_719_020_998_92];
    let cap = RigidBody::from_shape(
        &BodyShape::Capsule {
            r: 0.1,
            half_height: 0.2,
        },
        800.0,
    )
    .expect("capsule");
    let wrenches = (0..steps)
        .map(|n| {
            let t = n as f64;
            vec![
                Wrench {
                    f: [3.0 * (0.3 * t).sin(), 1.0, -2.0],
                    t: [0.4, -0.3 * (0.2 * t).cos(), 0.2],
                },
                Wrench {
                    f: [-1.0, 2.0 * (0.1 * t).cos(), 0.5],
                    t: [-0.1, 0.2, 0.3 * (0.4 * t).sin()],
                },
            ]
        })
        .collect();
    let mut model = RigidModel {
        bodies: vec![bx, cap],
        gravity: [0.0, -9.81, 0.0],
        obstacles: match (contact, mesh) {
            (false, _) => Vec::new(),
            (true, false) => vec![Shape::Plane {
                normal,
                offset: 0.0,
            }],
            (true, true) => vec![tilted_slab(normal)],
        },
        contact: Contact {
            ke: 2e4,
            kd: 20.0,
            mu: 0.4,
            smoothing: 0.01,
        },
        angular_damping: 0.05,
        wrenches,
        body_contact: bodies,
    };
    let mut init = vec![
        BodyState {
            c: [0.0, 0.12, 0.0],
            q: so3::normalize([0.95, 0.1, -0.2, 0.15]),
            v: [0.5, -1.0, 0.2],
            w: [1.5, -0.7, 2.0],
        },
        BodyState {
            c: [1.0, 0.16, 0.3],
            q: so3::normalize([0.7, 0.5, 0.3, -0.1]),
            v: [-0.3, -0.8, 0.1],
            w: [-2.0, 1.0, 0.5],
        },
    ];
    if bodies {
        let sphere = RigidBody::from_shape(&BodyShape::Sphere { r: 0.12 }, 600.0).expect("sphere");
        model.bodies.push(sphere);
        for (n, row) in model.wrenches.iter_mut().enumerate() {
            row.push(Wrench {
                f: [-4.0, 0.5 * (0.3 * n as f64).cos(), 0.0],
                t: [0.1, 0.0, -0.1],
            });
        }
        // The capsule lies against the box's +x side, the sphere on the box's top near it.
        init[1] = BodyState {
            c: [0.43, 0.2, 0.02],
            q: so3::normalize([0.75, 0.1, 0.65, 0.05]),
            v: [-0.6, -0.2, 0.1],
            w: [0.5, 1.0, -0.3],
        };
        init.push(BodyState {
            c: [0.25, 0.42, -0.05],
            q: so3::normalize([0.9, -0.1, 0.3, 0.2]),
            v: [-0.2, -0.9, 0.3],
            w: [0.3, -2.0, 1.0],
        });
    }
    (model, init)
}

/// Capsules touching along their sides, on a ground plane (gravity −z, wrenches on every
/// step): capsule 1 lies across the top edge of box 0, capsule 2 across capsule 1 near its
/// lower end (a partly faded sliding point), capsule 3 over a static ball and against a
/// static upright capsule; a second static ball presses on the box's −y face. The stiffness is a quarter of [`scene`]'s: the friction's
/// regularisation acts like a viscosity `μ|f_n|/s` that Warp's explicit step must resolve.
fn capsule_scene(steps: usize) -> (RigidModel, Vec<BodyState>) {
    let capsule = |hh: f64| {
        RigidBody::from_shape(
            &BodyShape::Capsule {
                r: 0.05,
                half_height: hh,
            },
            800.0,
        )
        .expect("capsule")
    };
    let bx = RigidBody::from_shape(
        &BodyShape::Box {
            half: [0.2, 0.2, 0.1],
        },
        500.0,
    )
    .expect("box");
    let nb = 4;
    let wrenches = (0..steps)
        .map(|n| {
            let t = n as f64;
            (0..nb)
                .map(|b| {
                    let k = b as f64 + 1.0;
                    Wrench {
                        f: [0.5 * (0.3 * t + k).sin(), -0.4 * k, 0.3],
                        t: [0.05 * k, -0.03 * (0.2 * t).cos(), 0.02],
                    }
                })
                .collect()
        })
        .collect();
    let model = RigidModel {
        bodies: vec![bx, capsule(0.3), capsule(0.25), capsule(0.3)],
        gravity: [0.0, 0.0, -9.81],
        obstacles: vec![
            Shape::Plane {
                normal: [0.0, 0.0, 1.0],
                offset: 0.0,
            },
            Shape::Sphere {
                center: [-1.0, 0.0, 0.1],
                radius: 0.1,
            },
            Shape::Capsule {
                center: [-1.05, 0.1, 0.3],
                half_height: 0.2,
                radius: 0.05,
            },
            // Against the box's −y face: its centre touches the box (a static ball).
            Shape::Sphere {
                center: [0.0, -0.36, 0.1],
                radius: 0.15,
            },
        ],
        contact: Contact {
            ke: 5e3,
            kd: 20.0,
            mu: 0.4,
            smoothing: 0.01,
        },
        angular_damping: 0.05,
        wrenches,
        body_contact: true,
    };
    // Capsule 1's axis runs down along `dir`, 0.048 m above the box's edge (x 0.2, z 0.2).
    let alpha: f64 = 0.3;
    let dir = [alpha.cos(), 0.0, -alpha.sin()];
    let up = [alpha.sin(), 0.0, alpha.cos()];
    let along = |p: V3, u: V3, k: f64| -> V3 { std::array::from_fn(|i| p[i] + k * u[i]) };
    let c1 = along(along([0.2, 0.02, 0.2], up, 0.048), dir, 0.05);
    let c2 = along(along(c1, dir, 0.24), up, 0.097);
    let state = |c: V3, q: so3::Quat, v: V3, w: V3| BodyState { c, q, v, w };
    let init = vec![
        state(
            [0.0, 0.0, 0.099],
            so3::exp_quat([0.01, -0.02, 0.3]),
            [0.05, 0.0, 0.0],
            [0.0, 0.1, 0.2],
        ),
        state(
            c1,
            so3::exp_quat([0.0, std::f64::consts::FRAC_PI_2 + alpha, 0.0]),
            [0.1, -0.05, -0.1],
            [0.2, -0.3, 0.1],
        ),
        state(
            c2,
            so3::quat_mul(
                so3::exp_quat([0.05, 0.1, 0.2]),
                so3::exp_quat([std::f64::consts::FRAC_PI_2, 0.0, 0.0]),
            ),
            [-0.1, 0.1, -0.2],
            [0.5, 0.2, -0.4],
        ),
        state(
            [-1.0, 0.0, 0.248],
            so3::exp_quat([0.0, 1.5, 0.05]),
            [0.05, -0.1, -0.05],
            [0.1, 0.3, -0.2],
        ),
    ];
    (model, init)
}

/// A 6 m × 1 m × 6 m slab as a triangle mesh, rotated about x so that its top face is the
/// plane through the origin with `normal`.
fn tilted_slab(normal: V3) -> Shape {
    let mut slab = TriangleMesh::cuboid([3.0, 0.5, 3.0], [0.0, -0.5, 0.0]);
    let r = so3::exp_matrix([normal[2].atan2(normal[1]), 0.0, 0.0]);
    slab.vertices
        .iter_mut()
        .for_each(|v| *v = so3::mat_vec(&r, *v));
    Shape::Mesh {
        sdf: Arc::new(MeshSdf::new(&slab).expect("a closed slab")),
        center: [0.0; 3],
        radius: 0.0,
    }
}

/// `L = Σ_n Σ_b (w·c + u·(R a) + z·v + y·ω)` over the last state and one in the middle, and its
/// gradients with respect to those states.
fn loss(states: &[Vec<BodyState>]) -> (f64, Vec<Vec<StateBar>>) {
    let last = states.len() - 1;
    let mut bars = vec![Vec::new(); states.len()];
    let mut total = 0.0;
    for n in [last / 2, last] {
        let mut row = Vec::new();
        for (b, s) in states[n].iter().enumerate() {
            let k = (b + 1) as f64 * if n == last { 1.0 } else { 0.5 };
            let (w, u, z, y): (V3, V3, V3, V3) = (
                [0.3 * k, -0.5, 0.7],
                [1.1, 0.4 * k, -0.6],
                [0.2, 0.3, -0.4 * k],
                [-0.25, 0.15 * k, 0.35],
            );
            let a: V3 = [0.2, -0.1, 0.15];
            let ra = so3::mat_vec(&so3::to_matrix(s.q), a);
            let dot = |p: V3, q: V3| p[0] * q[0] + p[1] * q[1] + p[2] * q[2];
            total += dot(w, s.c) + dot(u, ra) + dot(z, s.v) + dot(y, s.w);
            row.push(StateBar {
                c: w,
                theta: so3::cross(ra, u),
                v: z,
                w: y,
            });
        }
        bars[n] = row;
    }
    (total, bars)
}

/// The parameters `p` (12 per body: δc, δθ, δv, δω; then 6 per step and body: δf, δτ)
/// applied to the scene.
fn perturbed(model: &RigidModel, init: &[BodyState], p: &[f64]) -> (RigidModel, Vec<BodyState>) {
    let nb = init.len();
    let v3 = |k: usize| -> V3 { [p[k], p[k + 1], p[k + 2]] };
    let states = init
        .iter()
        .enumerate()
        .map(|(b, s)| BodyState {
            c: so3::add(s.c, v3(12 * b)),
            q: so3::quat_mul(so3::exp_quat(v3(12 * b + 3)), s.q),
            v: so3::add(s.v, v3(12 * b + 6)),
            w: so3::add(s.w, v3(12 * b + 9)),
        })
        .collect();
    let mut m = model.clone();
    for (n, row) in m.wrenches.iter_mut().enumerate() {
        for (b, w) in row.iter_mut().enumerate() {
            let k = 12 * nb + 6 * (n * nb + b);
            w.f = so3::add(w.f, v3(k));
            w.t = so3::add(w.t, v3(k + 3));
        }
    }
    (m, states)
}

/// The contact parameters `p` (the friction coefficient, then 3 per contact point of each
/// body: its body-frame offset) applied to the scene.
fn perturbed_parameters(model: &RigidModel, p: &[f64]) -> RigidModel {
    let mut m = model.clone();
    m.contact.mu += p[0];
    let mut k = 1;
    for body in &mut m.bodies {
        for a in &mut body.points {
            *a = so3::add(*a, [p[k], p[k + 1], p[k + 2]]);
            k += 3;
        }
    }
    m
}

/// The contact parameters' gradient in [`perturbed_parameters`]' layout.
fn flat_parameters(g: &RigidGrads) -> Vec<f64> {
    std::iter::once(g.friction)
        .chain(g.points.iter().flatten().flatten().copied())
        .collect()
}

/// The gradient as a flat vector in [`perturbed`]'s layout.
fn flat(g: &RigidGrads) -> Vec<f64> {
    let mut out = Vec::new();
    for s in &g.init {
        out.extend(s.c.iter().chain(&s.theta).chain(&s.v).chain(&s.w));
    }
    for row in &g.wrenches {
        for w in row {
            out.extend(w.f.iter().chain(&w.t));
        }
    }
    out
}

/// The test loss of a rollout of `steps` steps of `h` (the semi-implicit step when `scheme`
/// is none) and its gradients.
fn rollout_loss(
    scheme: Option<RigidScheme>,
    h: f64,
    steps: usize,
    m: &RigidModel,
    s: &[BodyState],
) -> Result<(f64, RigidGrads)> {
    match scheme {
        None => {
            let st = SemiImplicit::new(m, h)?;
            let run = st.rollout(s, steps)?;
            let (l, bars) = loss(&run.states);
            Ok((l, st.adjoint(&run, &bars)))
        }
        Some(sc) => {
            let st = Implicit::new(m, h, sc)?;
            let run = st.rollout(s, steps)?;
            let (l, bars) = loss(&run.states);
            Ok((l, st.adjoint(&run, &bars)))
        }
    }
}

/// Runs the rigid check `name`: the `-parameters` checks differentiate the three-body
/// scene with respect to the friction coefficient and every contact point instead of the
/// states and wrenches; the `-mesh` checks run it with the box and the ground as meshes.
pub fn run(name: &str, cfg: &GradCheckConfig) -> Result<GradCheckReport> {
    let parameters = name.ends_with("-parameters");
    let mesh = name.ends_with("-mesh");
    let base = name
        .replace("-parameters", "-bodies")
        .replace("-mesh", "-bodies");
    // (scheme, contact, bodies, steps, h)
    let (scheme, contact, bodies, steps, h) = match base.as_str() {
        "rigid-semi-implicit-contact" => (None, true, false, 40, 2e-3),
        "rigid-semi-implicit-bodies" => (None, true, true, 40, 2e-3),
        "rigid-euler-free" => (Some(RigidScheme::BackwardEuler), false, false, 12, 0.02),
        "rigid-euler-contact" => (Some(RigidScheme::BackwardEuler), true, false, 12, 0.01),
        "rigid-euler-bodies" => (Some(RigidScheme::BackwardEuler), true, true, 12, 0.01),
        "rigid-midpoint" => (Some(RigidScheme::Midpoint), false, false, 12, 0.02),
        "rigid-semi-implicit-capsules" => (None, true, true, 40, 2e-3),
        "rigid-euler-capsules" => (Some(RigidScheme::BackwardEuler), true, true, 12, 0.01),
        other => {
            return Err(DiffsimError::config(format!(
                "unknown rigid gradcheck '{other}'"
            )));
        }
    };
    let (model, init) = if name.ends_with("-capsules") {
        capsule_scene(steps)
    } else {
        scene(contact, bodies, mesh, steps)
    };
    let rollout_loss = |m: &RigidModel, s: &[BodyState]| rollout_loss(scheme, h, steps, m, s);
    let (_, grads) = rollout_loss(&model, &init)?;
    // The capsule stack's Newton solves leave ~5e-9 of round-off in a single entry's
    // difference quotient at ε = 1e-5 (a wrench entry of derivative 3.398515e-4 reads
    // 3.398527e-4 there and 3.398515e-4 at ε = 1e-3): single entries take ε = 1e-4.
    let wider;
    let cfg = if name == "rigid-euler-capsules" {
        wider = GradCheckConfig {
            entry_eps: cfg.entry_eps.max(1e-4),
            ..cfg.clone()
        };
        &wider
    } else {
        cfg
    };
    if parameters {
        let f = |p: &[f64]| {
            let m = perturbed_parameters(&model, p);
            rollout_loss(&m, &init).map_or(f64::NAN, |(l, _)| l)
        };
        return Ok(check_flat(name, &flat_parameters(&grads), &f, 6, cfg));
    }
    let f = |p: &[f64]| {
        let (m, s) = perturbed(&model, &init, p);
        rollout_loss(&m, &s).map_or(f64::NAN, |(l, _)| l)
    };
    Ok(check_flat(name, &flat(&grads), &f, 6, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rigid::pairs::{active_pairs, contact_pairs, pair_shape, points_in_b};
    use crate::solids::contact::distance;

    #[test]
    fn every_contact_parameter_gradient_matches_central_differences() {
        for (scheme, steps, h) in [
            (None, 40, 2e-3),
            (Some(RigidScheme::BackwardEuler), 12, 0.01),
        ] {
            let (model, init) = scene(true, true, false, steps);
            let (_, grads) = rollout_loss(scheme, h, steps, &model, &init).unwrap();
            let ad = flat_parameters(&grads);
            // μ and the 11 contact points (box 8, capsule 2, sphere 1).
            assert_eq!(ad.len(), 1 + 3 * 11);
            let f = |p: &[f64]| {
                let m = perturbed_parameters(&model, p);
                rollout_loss(scheme, h, steps, &m, &init).unwrap().0
            };
            let scale = ad.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for k in 0..ad.len() {
                let d = 1e-6;
                let mut e = vec![0.0; ad.len()];
                e[k] = d;
                let fp = f(&e);
                e[k] = -d;
                let fd = (fp - f(&e)) / (2.0 * d);
                assert!(
                    (ad[k] - fd).abs() <= 1e-6 * scale,
                    "{scheme:?} entry {k}: adjoint {} vs FD {fd} (scale {scale})",
                    ad[k]
                );
            }
            // Friction acts: its gradient is not lost in the points'.
            assert!(ad[0].abs() > 1e-3 * scale, "{scheme:?} dL/dμ {}", ad[0]);
        }
    }

    #[test]
    fn the_capsule_scene_slides_on_every_kind_of_target_with_one_partial_weight() {
        use crate::rigid::sliding::Target;
        use crate::rigid::step_contacts::{ContactCandidates, StepContacts};
        let (model, init) = capsule_scene(40);
        let obstacles: Vec<Vec<Shape>> = (0..4).map(|b| model.obstacles_for(b)).collect();
        let cands = ContactCandidates::of(&model, &obstacles);
        let run = SemiImplicit::new(&model, 2e-3)
            .unwrap()
            .rollout(&init, 40)
            .unwrap();
        let mut seen = Vec::new();
        let mut partial = false;
        for states in &run.states {
            let c = StepContacts::at(&model, &cands, &obstacles, states, 2e-3);
            for sp in &c.sliding {
                if !seen.contains(&(sp.body, sp.target)) {
                    seen.push((sp.body, sp.target));
                }
                partial |= sp.weight < 0.99;
            }
        }
        seen.sort_by_key(|&(b, t)| (b, format!("{t:?}")));
        let want = vec![
            (1, Target::Body(0)),
            (1, Target::Body(2)),
            // Within the activity cut (40·s): the second static ball, and the box below
            // capsule 2.
            (1, Target::Obstacle(3)),
            (2, Target::Body(0)),
            (3, Target::Obstacle(1)),
            (3, Target::Obstacle(2)),
        ];
        assert_eq!(seen, want);
        assert!(partial, "no partly faded sliding point");
        // The static ball (obstacle 3) touches the box through its centre on every step.
        for states in &run.states {
            let c = StepContacts::at(&model, &cands, &obstacles, states, 2e-3);
            assert_eq!(c.balls, vec![(3, 0)]);
            let (centre, shape) = crate::rigid::balls::geometry(&model, (3, 0));
            let s = &states[0];
            let x = so3::mat_t_vec(&so3::to_matrix(s.q), so3::add(centre, s.c.map(|v| -v)));
            let gap = crate::solids::contact::distance(&shape, x).0;
            assert!(gap < model.contact.smoothing, "ball gap {gap}");
        }
    }

    #[test]
    fn the_bodies_scene_has_every_body_pair_in_contact() {
        let (model, init) = scene(true, true, false, 40);
        let pairs = contact_pairs(&model);
        // Capsule → box, sphere → box, sphere → capsule (a box's corners skip the sphere and
        // the capsule, the capsule's caps skip the sphere).
        assert_eq!(pairs, vec![(1, 0), (2, 0), (2, 1)]);
        let run = SemiImplicit::new(&model, 2e-3)
            .unwrap()
            .rollout(&init, 40)
            .unwrap();
        for states in &run.states {
            assert_eq!(active_pairs(&model, &pairs, states, 2e-3).len(), 3);
        }
        // Each pair has a point within the smoothing length (the force is on, not a leak).
        for &(a, b) in &pairs {
            let shape = pair_shape(&model, (a, b));
            let near = run.states.iter().any(|s| {
                points_in_b(&model, a, &s[a], &s[b])
                    .iter()
                    .any(|x| distance(&shape, *x).0 < model.contact.smoothing)
            });
            assert!(near, "pair {a}->{b} never touches");
        }
    }
}
