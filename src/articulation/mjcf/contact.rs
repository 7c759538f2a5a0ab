//! `<contact><pair geom1 geom2>` between a body's sphere or capsule and a plane of the world
//! body, read as contact points on the links: a sphere's centre, a capsule's two segment ends,
//! each with the geom's radius (what a capsule lying on a plane touches it with). Collisions
//! MuJoCo derives from `contype`/`conaffinity`, `<exclude>` and body–body pairs are not read.

use super::El;
use super::geometry::{M3, fail, geom_frame, mat_vec, numbers, orientation, vec3};
use crate::articulation::contact::JointContact;
use crate::articulation::spatial::Vec3;
use crate::error::Result;
use crate::solids::contact::{Contact, Shape};
use std::collections::HashMap;

/// A geom of a body: the link the body ends in, the link frame's origin in the body frame
/// (the last joint's anchor), and the geom's attributes with its defaults resolved.
pub(super) struct BodyGeom {
    pub link: usize,
    pub anchor: Vec3<f64>,
    pub attrs: HashMap<String, String>,
}

/// The pairs of `root`'s `<contact>` sections as contact points with `law`; `None` when
/// there are none.
pub(super) fn read_pairs(
    root: &El,
    world: &HashMap<String, HashMap<String, String>>,
    bodies: &HashMap<String, BodyGeom>,
    degrees: bool,
    law: Contact,
) -> Result<Option<JointContact>> {
    let mut points = Vec::new();
    let mut shapes: Vec<Shape> = Vec::new();
    let pairs = root
        .children
        .iter()
        .filter(|c| c.tag == "contact")
        .flat_map(|c| c.children.iter().filter(|p| p.tag == "pair"));
    for pair in pairs {
        let name = |k: &str| pair.attrs.get(k).cloned().unwrap_or_default();
        let (g1, g2) = (name("geom1"), name("geom2"));
        let (body, plane) = match (
            bodies.get(&g1),
            world.get(&g2),
            bodies.get(&g2),
            world.get(&g1),
        ) {
            (Some(b), Some(w), _, _) | (_, _, Some(b), Some(w)) => (b, w),
            _ => {
                return fail(format!(
                    "contact pair '{g1}'–'{g2}': only a body's geom against a geom of the world body is read"
                ));
            }
        };
        let Some(shape) = plane_shape(plane, degrees)? else {
            return fail(format!(
                "contact pair '{g1}'–'{g2}': the world geom must be a plane"
            ));
        };
        if !shapes.contains(&shape) {
            shapes.push(shape);
        }
        let (centres, radius) = geom_points(&body.attrs, degrees, &format!("'{g1}'–'{g2}'"))?;
        for c in centres {
            points.push((
                body.link,
                std::array::from_fn(|k| c[k] - body.anchor[k]),
                radius,
            ));
        }
    }
    if points.is_empty() {
        return Ok(None);
    }
    if shapes.len() > 1 {
        return fail("contact pairs against more than one world plane are not read");
    }
    Ok(Some(JointContact {
        points,
        shapes,
        link_shapes: Vec::new(),
        law,
    }))
}

/// A world `plane` geom as the half-space above it (its z axis up); `None` when the geom is
/// not a plane. A malformed `pos` or orientation is an error, not "not a plane".
fn plane_shape(a: &HashMap<String, String>, degrees: bool) -> Result<Option<Shape>> {
    if a.get("type").map(String::as_str) != Some("plane") {
        return Ok(None);
    }
    let pos = vec3(a, "pos", [0.0; 3])?;
    let rot: M3 = orientation(a, degrees)?;
    let normal = mat_vec(&rot, [0.0, 0.0, 1.0]);
    let offset = (0..3).map(|k| normal[k] * pos[k]).sum();
    Ok(Some(Shape::Plane { normal, offset }))
}

/// A sphere's centre or a capsule's two segment ends (body frame), and the radius.
fn geom_points(
    a: &HashMap<String, String>,
    degrees: bool,
    pair: &str,
) -> Result<(Vec<Vec3<f64>>, f64)> {
    let kind = a.get("type").map_or("sphere", String::as_str);
    let radius = numbers(a, "size")?
        .and_then(|s| s.first().copied())
        .unwrap_or(0.0);
    let (pos, rot, half) = geom_frame(a, degrees)?;
    match kind {
        "sphere" => Ok((vec![pos], radius)),
        "capsule" => {
            let axis = mat_vec(&rot, [0.0, 0.0, half]);
            Ok((
                vec![
                    std::array::from_fn(|k| pos[k] - axis[k]),
                    std::array::from_fn(|k| pos[k] + axis[k]),
                ],
                radius,
            ))
        }
        other => fail(format!(
            "contact pair {pair}: a {other} geom is not read (spheres and capsules are)"
        )),
    }
}
