//! URDF import (parsed by `urdf-rs`) into an [`Articulation`].
//!
//! Each `<link>` becomes a link whose joint is the `<joint>` naming it as child; the root
//! (the one link no joint names as child) is welded to the world, or attached by a free joint,
//! at [`UrdfOptions::root`]. Links are ordered parents first, children in the file's order.
//!
//! - `<joint type>`: `revolute` and `continuous` → revolute, `prismatic` → prismatic, `fixed`
//!   → fixed, `floating` → free, `spherical` → ball; `planar` is refused.
//! - `<origin xyz rpy>` is the joint frame in the parent link's frame (`R = R_z R_y R_x`),
//!   `<axis>` a direction in the joint frame (normalised; zero is refused).
//! - `<inertial>`: mass, and the inertia tensor about the centre of mass in the `<origin>`
//!   frame, turned into the link frame. A link without one is massless.
//! - `<dynamics damping>` is the joint's viscous damping; `<limit lower upper>` of revolute
//!   and prismatic joints becomes a smooth [`JointLimit`] when [`UrdfOptions::limits`] gives
//!   its stiffness (bounds that are equal or infinite mean no limit). Efforts, velocity
//!   limits, friction, mimic joints, visuals and collisions are not read.

use super::joint::JointKind;
use super::model::{Articulation, Joint, JointLimit, Link};
use super::spatial::{Inertia, Transform, Vec3};
use crate::error::{DiffsimError, Result};
use std::collections::HashMap;
use std::path::Path;

/// The stiffness, damping and smoothing that turn URDF limits into smooth limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitLaw {
    /// N·m/rad or N/m.
    pub ke: f64,
    /// N·m·s/rad or N·s/m.
    pub kd: f64,
    /// rad or m.
    pub smoothing: f64,
}

/// How a URDF becomes an articulation.
#[derive(Clone, Debug, PartialEq)]
pub struct UrdfOptions {
    /// The root link's frame in the world (default: identity).
    pub root: Transform<f64>,
    /// Attach the root by a free joint instead of welding it (default: welded).
    pub floating: bool,
    /// Rotor inertia added on every velocity coordinate of the moving joints (default 0).
    pub armature: f64,
    /// The law of the joint limits; `None` (default) ignores `<limit lower upper>`.
    pub limits: Option<LimitLaw>,
    /// Gravity (m/s², world frame; default `(0, 0, −9.81)`).
    pub gravity: Vec3<f64>,
}

impl Default for UrdfOptions {
    fn default() -> Self {
        Self {
            root: Transform::identity(),
            floating: false,
            armature: 0.0,
            limits: None,
            gravity: [0.0, 0.0, -9.81],
        }
    }
}

/// Reads the URDF file at `path`.
pub fn read_urdf(path: &Path, options: &UrdfOptions) -> Result<Articulation> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DiffsimError::config(format!("cannot read URDF '{}': {e}", path.display())))?;
    urdf_from_str(&text, options).map_err(|e| e.within(format_args!("URDF '{}'", path.display())))
}

/// Builds the articulation described by URDF `text`.
pub fn urdf_from_str(text: &str, options: &UrdfOptions) -> Result<Articulation> {
    let robot = urdf_rs::read_from_string(text)
        .map_err(|e| DiffsimError::config(format!("not a readable URDF: {e}")))?;
    let fail = |msg: String| Err(DiffsimError::config(msg));
    let index: HashMap<&str, usize> = robot
        .links
        .iter()
        .enumerate()
        .map(|(i, l)| (l.name.as_str(), i))
        .collect();
    let mut parent_joint: Vec<Option<usize>> = vec![None; robot.links.len()];
    for (j, joint) in robot.joints.iter().enumerate() {
        for name in [&joint.parent.link, &joint.child.link] {
            if !index.contains_key(name.as_str()) {
                return fail(format!("joint '{}' names no link '{name}'", joint.name));
            }
        }
        let child = index[joint.child.link.as_str()];
        if parent_joint[child].replace(j).is_some() {
            return fail(format!("link '{}' has two parent joints", joint.child.link));
        }
    }
    let roots: Vec<usize> = (0..robot.links.len())
        .filter(|&i| parent_joint[i].is_none())
        .collect();
    let [root] = roots[..] else {
        return fail(format!(
            "a URDF tree has exactly one root link; this one has {}",
            roots.len()
        ));
    };
    // Parents first: breadth-first from the root, children in the joints' order.
    let mut order = vec![root];
    let mut at = 0;
    while at < order.len() {
        let name = robot.links[order[at]].name.as_str();
        order.extend(
            robot
                .joints
                .iter()
                .filter(|j| j.parent.link == name)
                .map(|j| index[j.child.link.as_str()]),
        );
        at += 1;
    }
    if order.len() != robot.links.len() {
        return fail("the joints form a loop".into());
    }
    let position: HashMap<usize, usize> = order.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let mut links = Vec::with_capacity(order.len());
    for &i in &order {
        let link = &robot.links[i];
        let joint = match parent_joint[i] {
            None => root_joint(options),
            Some(j) => {
                let joint = &robot.joints[j];
                let parent = position[&index[joint.parent.link.as_str()]];
                (Some(parent), convert_joint(joint, options)?)
            }
        };
        links.push(Link {
            name: link.name.clone(),
            parent: joint.0,
            joint: joint.1,
            inertia: inertia(&link.inertial),
        });
    }
    let model = Articulation {
        links,
        gravity: options.gravity,
    };
    model.validate()?;
    Ok(model)
}

fn root_joint(options: &UrdfOptions) -> (Option<usize>, Joint) {
    let kind = if options.floating {
        JointKind::Free
    } else {
        JointKind::Fixed
    };
    (None, Joint::new(kind, options.root))
}

/// One URDF joint.
fn convert_joint(j: &urdf_rs::Joint, options: &UrdfOptions) -> Result<Joint> {
    use urdf_rs::JointType as T;
    let a = j.axis.xyz.0;
    let norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let axis = a.map(|x| x / norm);
    let needs_axis = matches!(j.joint_type, T::Revolute | T::Continuous | T::Prismatic);
    if needs_axis && !(norm > 0.0 && norm.is_finite()) {
        return Err(DiffsimError::config(format!(
            "joint '{}' has no usable axis ({a:?})",
            j.name
        )));
    }
    let kind = match j.joint_type {
        T::Revolute | T::Continuous => JointKind::Revolute { axis },
        T::Prismatic => JointKind::Prismatic { axis },
        T::Fixed => JointKind::Fixed,
        T::Floating => JointKind::Free,
        T::Spherical => JointKind::Ball,
        T::Planar => {
            return Err(DiffsimError::config(format!(
                "joint '{}' is planar, which is not supported",
                j.name
            )));
        }
    };
    let bounded = matches!(j.joint_type, T::Revolute | T::Prismatic)
        && j.limit.lower < j.limit.upper
        && j.limit.lower.is_finite()
        && j.limit.upper.is_finite();
    let moving = kind.nv() > 0;
    Ok(Joint {
        armature: if moving { options.armature } else { 0.0 },
        damping: j.dynamics.as_ref().map_or(0.0, |d| d.damping),
        limit: options.limits.filter(|_| bounded).map(|law| JointLimit {
            lower: j.limit.lower,
            upper: j.limit.upper,
            ke: law.ke,
            kd: law.kd,
            smoothing: law.smoothing,
        }),
        ..Joint::new(
            kind,
            Transform::from_xyz_rpy(j.origin.xyz.0, j.origin.rpy.0),
        )
    })
}

/// An `<inertial>` in the link frame: `I_link = R I Rᵀ` with `R` the origin's rotation.
fn inertia(i: &urdf_rs::Inertial) -> Inertia<f64> {
    let t = Transform::from_xyz_rpy(i.origin.xyz.0, i.origin.rpy.0);
    let n = &i.inertia;
    let local = [
        [n.ixx, n.ixy, n.ixz],
        [n.ixy, n.iyy, n.iyz],
        [n.ixz, n.iyz, n.izz],
    ];
    // R = Eᵀ: (R I Rᵀ)_ab = Σ E_ka I_kl E_lb.
    let ic = std::array::from_fn(|a| {
        std::array::from_fn(|b| {
            (0..3)
                .map(|k| {
                    (0..3)
                        .map(|l| t.e[k][a] * local[k][l] * t.e[l][b])
                        .sum::<f64>()
                })
                .sum()
        })
    });
    Inertia {
        m: i.mass.value,
        com: t.r,
        ic,
    }
}
