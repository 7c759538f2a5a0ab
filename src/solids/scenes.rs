//! Benchmark set-ups from docs/solids-benchmarks.md.

use super::cloth::{Bend, ClothMaterial, Triangle};
use super::contact::{Contact, Shape};
use super::fem::Tet;
use super::{Model, Spring, V3};

/// B1, the Warp spring cage: a free particle (m = 1) at the origin held by 8 springs
/// (ke = 100, kd = 10, rest = initial lengths, so it starts at equilibrium) to 8 fixed cage
/// points; no gravity. Returns the model, the initial positions and the target of particle 0.
pub fn spring_cage() -> (Model, Vec<V3>, V3) {
    let cage: [V3; 8] = [
        [-0.7, 0.8, 0.2],
        [0.0, 0.2, 1.1],
        [0.1, 0.1, -1.2],
        [0.6, 0.4, 0.4],
        [0.7, -0.9, -0.2],
        [-0.8, -0.8, 0.1],
        [-0.9, 0.2, -0.8],
        [1.0, 0.4, -0.1],
    ];
    let mut x = vec![[0.0; 3]];
    x.extend(cage);
    let springs = (1..=8)
        .map(|k| Spring {
            i: 0,
            j: k,
            ke: 100.0,
            kd: 10.0,
            rest: cage[k - 1].iter().map(|c| c * c).sum::<f64>().sqrt(),
        })
        .collect();
    let mut mass = vec![0.0; 9];
    mass[0] = 1.0;
    (
        Model {
            mass,
            springs,
            gravity: [0.0; 3],
            ..Model::default()
        },
        x,
        [0.125, 0.25, 0.375],
    )
}

/// B2, the Warp bounce: one particle (m = 1) at (−0.5, 1, 0) with v₀ = (5, −5, 0), a static
/// wall box at (2, 1, 0) with half extents (0.25, 1, 1), the ground plane y = 0, gravity
/// (0, −9.8, 0); contact ke = 1e4, kd = 10 and no friction (Warp's friction force is
/// `min(kf·|v_t|, μ·|f_n|)` with kf = 0 there). Returns the model, x₀, v₀ and the target.
pub fn bounce(smoothing: f64) -> (Model, Vec<V3>, Vec<V3>, V3) {
    (
        Model {
            mass: vec![1.0],
            springs: Vec::new(),
            gravity: [0.0, -9.8, 0.0],
            shapes: vec![
                Shape::Box {
                    center: [2.0, 1.0, 0.0],
                    half: [0.25, 1.0, 1.0],
                },
                Shape::Plane {
                    normal: [0.0, 1.0, 0.0],
                    offset: 0.0,
                },
            ],
            contact: Contact {
                ke: 1e4,
                kd: 10.0,
                mu: 0.0,
                smoothing,
            },
            ..Model::default()
        },
        vec![[-0.5, 1.0, 0.0]],
        vec![[5.0, -5.0, 0.0]],
        [-2.0, 1.5, 0.0],
    )
}

/// B4, the Warp soft-body material identification (`example_softbody_properties.py`): a
/// 2×2×2 grid of cubes (cell 0.1 m, lowest corner at (−0.5, 1, −0.1)) split into 5 stable
/// Neo-Hookean tetrahedra each (Warp's alternating split, 40 tetrahedra), 27 particles of
/// 0.2/27 kg, v₀ = (5, −5, 0), E = 1.5e4 Pa and ν = 0.3 in every tetrahedron, gravity
/// −9.80665; the wall box and the ground of B2 with contact ke = 1e3, kd = 1 and no friction
/// (Warp's kf = 0). Warp's surface triangles (tri_ke = 1e-4) carry no force worth modelling
/// and are left out. Returns the model, x₀, v₀ and the target of the centre of mass.
pub fn softbody_material(smoothing: f64) -> crate::error::Result<(Model, Vec<V3>, Vec<V3>, V3)> {
    const DIM: usize = 2;
    const CELL: f64 = 0.1;
    let (young, poisson) = (1.5e4, 0.3);
    let mu = 0.5 * young / (1.0 + poisson);
    let lambda = young * poisson / ((1.0 + poisson) * (1.0 - 2.0 * poisson));
    let id = |x: usize, y: usize, z: usize| (DIM + 1) * (DIM + 1) * z + (DIM + 1) * y + x;
    let mut x0 = vec![[0.0; 3]; (DIM + 1).pow(3)];
    for z in 0..=DIM {
        for y in 0..=DIM {
            for x in 0..=DIM {
                x0[id(x, y, z)] = [
                    -0.5 + x as f64 * CELL,
                    1.0 + y as f64 * CELL,
                    -0.1 + z as f64 * CELL,
                ];
            }
        }
    }
    let mut tets = Vec::new();
    for z in 0..DIM {
        for y in 0..DIM {
            for x in 0..DIM {
                let v = [
                    id(x, y, z),
                    id(x + 1, y, z),
                    id(x + 1, y, z + 1),
                    id(x, y, z + 1),
                    id(x, y + 1, z),
                    id(x + 1, y + 1, z),
                    id(x + 1, y + 1, z + 1),
                    id(x, y + 1, z + 1),
                ];
                let split: [[usize; 4]; 5] = if (x ^ y ^ z) & 1 == 1 {
                    [
                        [0, 1, 4, 3],
                        [2, 3, 6, 1],
                        [5, 4, 1, 6],
                        [7, 6, 3, 4],
                        [4, 1, 6, 3],
                    ]
                } else {
                    [
                        [1, 2, 5, 0],
                        [3, 0, 7, 2],
                        [4, 7, 0, 5],
                        [6, 5, 2, 7],
                        [5, 2, 7, 0],
                    ]
                };
                for t in split {
                    tets.push(Tet::new(t.map(|k| v[k]), &x0, mu, lambda)?);
                }
            }
        }
    }
    let n = x0.len();
    let (model, _, v0, _) = bounce(smoothing);
    let model = Model {
        mass: vec![0.2 / n as f64; n],
        gravity: [0.0, -9.80665, 0.0],
        tets,
        contact: Contact {
            ke: 1e3,
            kd: 1.0,
            ..model.contact
        },
        ..model
    };
    Ok((model, x0, vec![v0[0]; n], [-1.0, 1.5, 0.0]))
}

/// Warp's `add_cloth_grid`: `(nx + 1)·(ny + 1)` particles of mass `mass` on a grid of cells
/// `cell` (m) in the local xy-plane, rotated by `angle` (rad) about the x-axis, all moving at
/// `velocity`; two triangles per cell (`(v₀₀, v₁₀, v₀₁)`, `(v₁₀, v₁₁, v₀₁)`) and one bending
/// element per interior edge (its opposite vertices first, the edge as the first triangle
/// that has it orders it; rest angle from the rest shape). Returns the model, x₀ and v₀.
pub fn cloth_grid(
    (nx, ny): (usize, usize),
    cell: f64,
    angle: f64,
    velocity: V3,
    mass: f64,
    material: &ClothMaterial,
) -> crate::error::Result<(Model, Vec<V3>, Vec<V3>)> {
    let (s, c) = angle.sin_cos();
    let index = |x: usize, y: usize| y * (nx + 1) + x;
    let x0: Vec<V3> = (0..=ny)
        .flat_map(|y| (0..=nx).map(move |x| (x as f64 * cell, y as f64 * cell)))
        .map(|(px, py)| [px, py * c, py * s])
        .collect();
    let mut faces = Vec::new();
    for y in 1..=ny {
        for x in 1..=nx {
            faces.push([index(x - 1, y - 1), index(x, y - 1), index(x - 1, y)]);
            faces.push([index(x, y - 1), index(x, y), index(x - 1, y)]);
        }
    }
    let tris = faces
        .iter()
        .map(|&f| Triangle::new(f, &x0, material))
        .collect::<crate::error::Result<Vec<_>>>()?;
    // Edge (sorted) → (first vertex, second vertex, opposite in the first face, opposite in
    // the second face).
    type Edge = (usize, usize, usize, Option<usize>);
    let mut edges: std::collections::BTreeMap<(usize, usize), Edge> = Default::default();
    for &[a, b, c] in &faces {
        for (i, j, o) in [(a, b, c), (b, c, a), (c, a, b)] {
            edges
                .entry((i.min(j), i.max(j)))
                .and_modify(|e| e.3 = Some(o))
                .or_insert((i, j, o, None));
        }
    }
    let bends = edges
        .values()
        .filter_map(|&(v0, v1, o0, o1)| {
            let nodes = [o0, o1?, v0, v1];
            let mut bend = Bend {
                nodes,
                ke: material.edge_ke,
                kd: material.edge_kd,
                rest_angle: 0.0,
                rest_length: (0..3)
                    .map(|a| (x0[v1][a] - x0[v0][a]).powi(2))
                    .sum::<f64>()
                    .sqrt(),
            };
            bend.rest_angle = bend.angle(&x0).unwrap_or(0.0);
            Some(bend)
        })
        .collect();
    let n = x0.len();
    let model = Model {
        mass: vec![mass; n],
        gravity: [0.0, -9.80665, 0.0],
        tris,
        bends,
        ..Model::default()
    };
    Ok((model, x0, vec![velocity; n]))
}

/// B3, the Warp cloth throw (`example_cloth_throw.py`): a `cells`×`cells` cloth of 1 m × 1 m
/// (Warp's: 16 cells of 1/16 m, 289 particles), mass 1 per particle, rotated −45° about x,
/// thrown with v₀ = (0.1, 0.1, 0); tri_ke = tri_ka = 1e4, tri_kd = 100, lift 10, drag 5,
/// bending 100; gravity, no ground. Returns the model, x₀, v₀ and the centre-of-mass target
/// (8, 0, 0).
pub fn cloth_throw(cells: usize) -> crate::error::Result<(Model, Vec<V3>, Vec<V3>, V3)> {
    if cells == 0 {
        return Err(crate::error::DiffsimError::config(
            "the cloth needs at least 1 cell per side",
        ));
    }
    let material = ClothMaterial {
        tri_ke: 1e4,
        tri_ka: 1e4,
        tri_kd: 100.0,
        drag: 5.0,
        lift: 10.0,
        ..ClothMaterial::default()
    };
    let (model, x0, v0) = cloth_grid(
        (cells, cells),
        1.0 / cells as f64,
        -std::f64::consts::FRAC_PI_4,
        [0.1, 0.1, 0.0],
        1.0,
        &material,
    )?;
    Ok((model, x0, v0, [8.0, 0.0, 0.0]))
}
