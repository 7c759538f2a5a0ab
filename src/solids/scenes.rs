//! Benchmark set-ups from `../shared/reference/solids.md` §2.

use super::contact::{Contact, Shape};
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
            tets: Vec::new(),
            shapes: Vec::new(),
            contact: Contact::default(),
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
            tets: Vec::new(),
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
        },
        vec![[-0.5, 1.0, 0.0]],
        vec![[5.0, -5.0, 0.0]],
        [-2.0, 1.5, 0.0],
    )
}
