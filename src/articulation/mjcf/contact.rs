//! `<contact><pair geom1 geom2>` between a body's sphere or capsule and a plane of the world
//! body or a geom of another body, read as contact points on the links: a sphere's centre, a
//! capsule's two segment ends, each with the geom's radius (what a capsule lying on a plane
//! touches it with). The other body's geom (sphere, plane, or a box or capsule aligned with its
//! body's axes) becomes an obstacle its link carries; when both geoms are spheres or capsules,
//! `geom1` gives the points. Collisions MuJoCo derives from `contype`/`conaffinity` and
//! `<exclude>` are not read.

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
    let mut link_shapes: Vec<(usize, Shape)> = Vec::new();
    let pairs = root
        .children
        .iter()
        .filter(|c| c.tag == "contact")
        .flat_map(|c| c.children.iter().filter(|p| p.tag == "pair"));
    for pair in pairs {
        let name = |k: &str| pair.attrs.get(k).cloned().unwrap_or_default();
        let (g1, g2) = (name("geom1"), name("geom2"));
        let label = format!("'{g1}'–'{g2}'");
        if let Some(g) = [&g1, &g2]
            .into_iter()
            .find(|g| !bodies.contains_key(*g) && !world.contains_key(*g))
        {
            return fail(format!("contact pair {label}: no named geom '{g}'"));
        }
        let rolling = |a: &HashMap<String, String>| {
            matches!(
                a.get("type").map_or("sphere", String::as_str),
                "sphere" | "capsule"
            )
        };
        let (body, obstacle) = match (bodies.get(&g1), bodies.get(&g2)) {
            (Some(b), None) | (None, Some(b)) => {
                // Both geoms exist (checked above) and one is not a body's: it is the world's.
                let plane = world
                    .get(&g2)
                    .or_else(|| world.get(&g1))
                    .expect("the other geom of the pair is the world body's");
                let Some(shape) = plane_shape(plane, degrees)? else {
                    return fail(format!(
                        "contact pair {label}: the world geom must be a plane"
                    ));
                };
                if !shapes.contains(&shape) {
                    shapes.push(shape);
                }
                (b, None)
            }
            (Some(b1), Some(b2)) => {
                let (b, other) = if rolling(&b1.attrs) || !rolling(&b2.attrs) {
                    (b1, b2)
                } else {
                    (b2, b1)
                };
                if b.link == other.link {
                    return fail(format!(
                        "contact pair {label}: both geoms move with one link"
                    ));
                }
                (b, Some(other))
            }
            (None, None) => {
                return fail(format!(
                    "contact pair {label}: only a body's geom against a world plane or another body's geom is read"
                ));
            }
        };
        if let Some(other) = obstacle {
            let shape = carried_shape(&other.attrs, other.anchor, degrees, &label)?;
            if !link_shapes.contains(&(other.link, shape.clone())) {
                link_shapes.push((other.link, shape));
            }
        }
        let (centres, radius) = geom_points(&body.attrs, degrees, &label)?;
        for c in centres {
            let point = (
                body.link,
                std::array::from_fn(|k| c[k] - body.anchor[k]),
                radius,
            );
            if !points.contains(&point) {
                points.push(point);
            }
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
        link_shapes,
        law,
    }))
}

/// A body's geom as an obstacle its link carries (link frame = the body frame moved to the
/// anchor): a sphere, a plane, or a box or capsule whose axes are the body's.
fn carried_shape(
    a: &HashMap<String, String>,
    anchor: Vec3<f64>,
    degrees: bool,
    pair: &str,
) -> Result<Shape> {
    let kind = a.get("type").map_or("sphere", String::as_str);
    let size = numbers(a, "size")?.unwrap_or_default();
    let (pos, rot, half) = geom_frame(a, degrees)?;
    let center: Vec3<f64> = std::array::from_fn(|k| pos[k] - anchor[k]);
    let aligned =
        (0..3).all(|i| (0..3).all(|j| (rot[i][j] - f64::from(u8::from(i == j))).abs() < 1e-12));
    let positive =
        |n: usize| size.len() >= n && size[..n].iter().all(|x| x.is_finite() && *x > 0.0);
    match kind {
        "sphere" if positive(1) => Ok(Shape::Sphere {
            center,
            radius: size[0],
        }),
        "plane" => {
            let normal = mat_vec(&rot, [0.0, 0.0, 1.0]);
            let offset = (0..3).map(|k| normal[k] * center[k]).sum();
            Ok(Shape::Plane { normal, offset })
        }
        "box" if aligned && positive(3) => Ok(Shape::Box {
            center,
            half: [size[0], size[1], size[2]],
        }),
        "capsule" if aligned && positive(1) && half > 0.0 => Ok(Shape::Capsule {
            center,
            half_height: half,
            radius: size[0],
        }),
        "box" | "capsule" if !aligned => fail(format!(
            "contact pair {pair}: a {kind} turned against its body's axes is not read as an obstacle"
        )),
        "sphere" | "box" | "capsule" => fail(format!(
            "contact pair {pair}: the {kind} geom needs positive sizes"
        )),
        other => fail(format!(
            "contact pair {pair}: a {other} geom is not read as an obstacle (spheres, planes, boxes and capsules are)"
        )),
    }
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
