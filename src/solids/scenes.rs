//! Benchmark set-ups from `../shared/reference/solids.md` §2.

use super::{MassSpring, Spring, V3};

/// B1, the Warp spring cage: a free particle (m = 1) at the origin held by 8 springs
/// (ke = 100, kd = 10, rest = initial lengths, so it starts at equilibrium) to 8 fixed cage
/// points; no gravity. Returns the model, the initial positions and the target of particle 0.
pub fn spring_cage() -> (MassSpring, Vec<V3>, V3) {
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
        MassSpring {
            mass,
            springs,
            gravity: [0.0; 3],
        },
        x,
        [0.125, 0.25, 0.375],
    )
}
