//! Triangle meshes as rigid bodies and as signed distances: a cube mesh against the analytic
//! box (mass properties, signed distance, whole rollouts and their gradients), the normal's
//! derivative against central differences on a non-convex mesh, and meshes that are not
//! closed.

use diffsim::rigid::{BodyShape, BodyState, Implicit, RigidBody, RigidModel, RigidScheme, so3};
use diffsim::rigid::{SemiImplicit, StateBar};
use diffsim::solids::contact::{Contact, Shape, distance};
use diffsim::solids::math::V3;
use diffsim::solids::mesh_sdf::{MeshSdf, TriangleMesh};
use std::sync::Arc;

fn box_mesh(half: V3, at: V3) -> TriangleMesh {
    TriangleMesh::cuboid(half, at)
}

/// An L-shaped prism (non-convex): the extrusion along z of the L with corners (0,0), (2,0),
/// (2,1), (1,1), (1,2), (0,2), from z = 0 to 1.
fn l_prism() -> TriangleMesh {
    let outline = [
        [0.0, 0.0],
        [2.0, 0.0],
        [2.0, 1.0],
        [1.0, 1.0],
        [1.0, 2.0],
        [0.0, 2.0],
    ];
    let mut vertices = Vec::new();
    for z in [0.0, 1.0] {
        vertices.extend(outline.iter().map(|p| [p[0], p[1], z]));
    }
    let mut triangles = Vec::new();
    // Caps: the L split into triangles from vertex 0 (0-1-2-3 and 0-3-4-5 are convex).
    for t in [[0u32, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 5]] {
        triangles.push([t[0], t[2], t[1]]); // bottom faces −z
        triangles.push([t[0] + 6, t[1] + 6, t[2] + 6]); // top faces +z
    }
    for i in 0..6u32 {
        let j = (i + 1) % 6;
        triangles.push([i, j, j + 6]);
        triangles.push([i, j + 6, i + 6]);
    }
    TriangleMesh {
        vertices,
        triangles,
    }
}

#[test]
fn a_cube_mesh_has_the_boxs_mass_properties_and_signed_distance() {
    let half = [0.3, 0.2, 0.1];
    let mesh = box_mesh(half, [1.0, -2.0, 0.5]);
    let (m, com, j) = mesh.mass_properties(700.0);
    let (mb, jb) = BodyShape::Box { half }.mass_properties(700.0);
    assert!((m - mb).abs() < 1e-12 * mb, "{m} vs {mb}");
    assert!(so3::norm([com[0] - 1.0, com[1] + 2.0, com[2] - 0.5]) < 1e-12);
    for a in 0..3 {
        for b in 0..3 {
            assert!(
                (j[a][b] - jb[a][b]).abs() < 1e-12 * jb[0][0],
                "{j:?} vs {jb:?}"
            );
        }
    }
    // The signed distance of the mesh at the origin is the box's, inside and out; its normal
    // too wherever the closest feature is unique.
    let centred = box_mesh(half, [0.0; 3]);
    let sdf = Shape::Mesh {
        sdf: Arc::new(MeshSdf::new(&centred).unwrap()),
        center: [0.0; 3],
        radius: 0.0,
    };
    let exact = Shape::Box {
        center: [0.0; 3],
        half,
    };
    let mut worst: f64 = 0.0;
    for k in 0..2000 {
        let t = k as f64;
        let x = [
            0.5 * (1.3 * t).sin(),
            0.4 * (2.1 * t + 1.0).sin(),
            0.3 * (0.7 * t + 2.0).sin(),
        ];
        let (pm, nm, _) = distance(&sdf, x);
        let (pb, nb, _) = distance(&exact, x);
        assert!((pm - pb).abs() < 1e-12, "{x:?}: {pm} vs {pb}");
        worst = worst.max(so3::norm([nm[0] - nb[0], nm[1] - nb[1], nm[2] - nb[2]]));
    }
    // Inside, points equidistant from two faces may pick either face's normal.
    assert!(worst <= 2f64.sqrt() + 1e-9, "{worst}");
}

#[test]
fn the_mesh_normals_derivative_matches_central_differences() {
    let sdf = MeshSdf::new(&l_prism()).unwrap();
    let mut checked = 0;
    for k in 0..400 {
        let t = k as f64;
        // Around the prism, in its reentrant corner too.
        let x = [
            1.0 + 1.6 * (1.1 * t).sin(),
            1.0 + 1.6 * (1.7 * t + 0.3).sin(),
            0.5 + 0.9 * (0.9 * t + 1.1).sin(),
        ];
        let (phi, _, dn) = sdf.distance(x);
        let e = 1e-6;
        for b in 0..3 {
            let mut xp = x;
            let mut xm = x;
            xp[b] += e;
            xm[b] -= e;
            let (pp, np, _) = sdf.distance(xp);
            let (pm, nm, _) = sdf.distance(xm);
            // Only where the closest feature is the same on both sides (no kink between).
            let slope = (pp - pm) / (2.0 * e);
            let (_, n, _) = sdf.distance(x);
            if (slope - n[b]).abs() > 1e-6 || phi.abs() < 1e-3 {
                continue;
            }
            for a in 0..3 {
                let fd = (np[a] - nm[a]) / (2.0 * e);
                if (fd - dn[a][b]).abs() > 1e-5 * (1.0 + dn[a][b].abs()) {
                    // A feature switch inside the stencil: skip it, it is not a derivative.
                    let (pc, _, _) = sdf.distance(x);
                    assert!(
                        ((pp - pc) - (pc - pm)).abs() > 1e-12,
                        "{x:?}: dn[{a}][{b}] {} vs FD {fd}",
                        dn[a][b]
                    );
                    continue;
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 2000, "{checked}");
}

/// A tumbling box and a sphere falling onto `ground`-level obstacle `obstacle`, stepped with
/// `scheme` (Warp's step when none), with contact between them too.
fn rollout(bodies: Vec<RigidBody>, obstacle: Shape, scheme: Option<RigidScheme>) -> Vec<f64> {
    let model = RigidModel {
        bodies,
        gravity: [0.0, 0.0, -9.81],
        obstacles: vec![
            obstacle,
            Shape::Plane {
                normal: [0.0, 0.0, 1.0],
                offset: -0.5,
            },
        ],
        contact: Contact {
            ke: 2e4,
            kd: 10.0,
            mu: 0.4,
            smoothing: 1e-2,
        },
        body_contact: true,
        ..Default::default()
    };
    let init = vec![
        BodyState {
            c: [0.05, 0.02, 0.45],
            q: so3::normalize([0.9, 0.2, -0.1, 0.3]),
            v: [0.3, -0.2, -1.0],
            w: [1.0, -2.0, 0.5],
        },
        BodyState {
            c: [-0.15, 0.1, 0.62],
            q: so3::normalize([0.8, -0.3, 0.1, 0.2]),
            v: [0.5, 0.0, -0.5],
            w: [0.0, 1.0, 0.0],
        },
    ];
    let (steps, h) = (30, 5e-3);
    let bar = |states: &[Vec<BodyState>]| {
        let mut bars = vec![Vec::new(); states.len()];
        bars[states.len() - 1] = vec![
            StateBar {
                c: [1.0, -0.5, 2.0],
                theta: [0.3, 0.2, -0.1],
                v: [0.1, 0.2, 0.3],
                w: [0.0, 0.1, -0.2],
            };
            2
        ];
        bars
    };
    let (states, grads) = match scheme {
        None => {
            let st = SemiImplicit::new(&model, h).unwrap();
            let run = st.rollout(&init, steps).unwrap();
            let g = st.adjoint(&run, &bar(&run.states));
            (run.states, g)
        }
        Some(s) => {
            let st = Implicit::new(&model, h, s).unwrap();
            let run = st.rollout(&init, steps).unwrap();
            let g = st.adjoint(&run, &bar(&run.states));
            (run.states, g)
        }
    };
    let mut out: Vec<f64> = states
        .last()
        .unwrap()
        .iter()
        .flat_map(|s| s.c.into_iter().chain(s.q).chain(s.v).chain(s.w))
        .collect();
    for g in &grads.init {
        out.extend(g.c.iter().chain(&g.theta).chain(&g.v).chain(&g.w));
    }
    out.push(grads.friction);
    out
}

#[test]
fn a_mesh_body_on_a_mesh_obstacle_moves_as_the_box_on_the_box() {
    let half = [0.15, 0.1, 0.05];
    let sphere = RigidBody::from_shape(&BodyShape::Sphere { r: 0.08 }, 500.0).unwrap();
    let slab = [0.6, 0.6, 0.1];
    let analytic = Shape::Box {
        center: [0.0, 0.0, 0.2],
        half: slab,
    };
    let meshed = Shape::Mesh {
        sdf: Arc::new(MeshSdf::new(&box_mesh(slab, [0.0; 3])).unwrap()),
        center: [0.0, 0.0, 0.2],
        radius: 0.0,
    };
    for scheme in [None, Some(RigidScheme::BackwardEuler)] {
        let boxed = RigidBody::from_shape(&BodyShape::Box { half }, 800.0).unwrap();
        // The mesh given off-centre: the body frame is its centre of mass.
        let mesh_body =
            RigidBody::from_shape(&BodyShape::Mesh(box_mesh(half, [3.0, 1.0, -2.0])), 800.0)
                .unwrap();
        let a = rollout(vec![boxed, sphere.clone()], analytic.clone(), scheme);
        // The bodies touch the slab and each other: friction acted.
        assert!(
            a.last().unwrap().abs() > 1e-3,
            "{scheme:?}: dL/dμ {:?}",
            a.last()
        );
        let b = rollout(vec![mesh_body, sphere.clone()], meshed.clone(), scheme);
        let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let diff = a
            .iter()
            .zip(&b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff < 1e-8 * scale, "{scheme:?}: {diff:e} of {scale}");
    }
}

#[test]
fn meshes_that_do_not_bound_a_solid_are_refused_with_the_reason() {
    let cube = box_mesh([0.1; 3], [0.0; 3]);
    let mut open = cube.clone();
    open.triangles.pop();
    let mut flipped = cube.clone();
    flipped.triangles.iter_mut().for_each(|t| t.swap(1, 2));
    let mut bad_index = cube.clone();
    bad_index.triangles[3][1] = 99;
    let mut nan = cube.clone();
    nan.vertices[2][0] = f64::NAN;
    for (mesh, want) in [
        (open, "not closed"),
        (flipped, "face inwards"),
        (bad_index, "past the 8 given"),
        (nan, "not finite"),
    ] {
        let e = RigidBody::from_shape(&BodyShape::Mesh(mesh.clone()), 100.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
        assert!(MeshSdf::new(&mesh).is_err());
    }
}
