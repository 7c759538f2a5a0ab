//! Models shipped with diffsim (`data/robots/`, licences beside them), built into the binary.

use super::mjcf::MjcfOptions;
use super::model::Articulation;
use super::spatial::Transform;
use super::urdf::{LimitLaw, UrdfOptions, urdf_from_str};
use crate::error::Result;
use crate::solids::contact::Contact;

/// NVIDIA Warp's `cartpole.urdf` (Apache-2.0): a cart on a prismatic slider carrying two
/// poles on continuous hinges.
const WARP_CARTPOLE: &str = include_str!("../../data/robots/warp/cartpole.urdf");

/// Warp's cartpole as Warp's `example_cartpole.py` builds it: turned −90° about x (y up,
/// gravity −9.80665 m/s² along y), welded, armature 0.1, limits ke 1e4 N/m, kd 10 N·s/m
/// (smoothing 0.1 mm), and Warp's masses: with density 100 kg/m³ Warp ignores the URDF
/// inertials and gives each link its collision box's mass and inertia, plus the armature on the
/// rotational inertia's diagonal (cart 1 kg, poles 0.24 kg instead of the URDF's 0.25).
/// Coordinates: cart position (m), then the two hinge angles (rad).
pub fn warp_cartpole() -> Result<Articulation> {
    let options = UrdfOptions {
        root: Transform::from_xyz_rpy([0.0; 3], [-std::f64::consts::FRAC_PI_2, 0.0, 0.0]),
        armature: 0.1,
        limits: Some(LimitLaw {
            ke: 1e4,
            kd: 10.0,
            smoothing: 1e-4,
        }),
        gravity: [0.0, -9.80665, 0.0],
        ..UrdfOptions::default()
    };
    let mut m = urdf_from_str(WARP_CARTPOLE, &options)?;
    // Collision boxes (full sizes, m) of slider, cart, pole1, pole2, centred on the inertial.
    let boxes = [
        [0.03, 8.0, 0.03],
        [0.2, 0.25, 0.2],
        [0.04, 0.06, 1.0],
        [0.04, 0.06, 1.0],
    ];
    for (link, [a, b, c]) in m.links.iter_mut().zip(boxes) {
        let mass = 100.0 * a * b * c;
        let tensor = [b * b + c * c, a * a + c * c, a * a + b * b].map(|s| mass * s / 12.0);
        link.inertia.m = mass;
        link.inertia.ic = std::array::from_fn(|r| {
            std::array::from_fn(|k| if r == k { tensor[k] + 0.1 } else { 0.0 })
        });
    }
    Ok(m)
}

/// How diffsim reads MJX's humanoid (`data/robots/mjx/humanoid.xml`): smooth laws standing in
/// for MuJoCo's soft constraints, joint ranges as limits (ke 1000 N·m/rad, kd 10, smoothing
/// 0.01 rad) and the foot–floor pairs with ke 2e4 N/m per point, kd 100 N·s/m, μ 0.7 (its
/// geoms' friction), smoothing 1 mm.
pub fn mjx_humanoid_options() -> MjcfOptions {
    MjcfOptions {
        limits: Some(LimitLaw {
            ke: 1000.0,
            kd: 10.0,
            smoothing: 0.01,
        }),
        contact: Some(Contact {
            ke: 2e4,
            kd: 100.0,
            mu: 0.7,
            smoothing: 1e-3,
        }),
    }
}
