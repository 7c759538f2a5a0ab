//! Pictures of solids: a trajectory seen from the side as a GIF.

use super::{GifWriter, ScenePicture};
use crate::error::Result;
use crate::solids::contact::Shape;
use crate::solids::{Model, V3};
use std::path::Path;

/// A GIF of positions `frames` of `model` seen from the side (x right, y up): springs and
/// element edges, obstacles, the centre of mass's path and `target`.
pub fn trajectory_gif(
    path: &Path,
    model: &Model,
    frames: &[&[V3]],
    target: Option<V3>,
    title: &str,
) -> Result<()> {
    let flat = |p: &V3| [p[0], p[1]];
    let com = |x: &[V3]| -> [f64; 2] {
        let n = x.len().max(1) as f64;
        [0, 1].map(|a| x.iter().map(|p| p[a]).sum::<f64>() / n)
    };
    let mut view = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    let mut grow = |p: [f64; 2]| {
        view = [
            view[0].min(p[0]),
            view[1].min(p[1]),
            view[2].max(p[0]),
            view[3].max(p[1]),
        ]
    };
    frames
        .iter()
        .flat_map(|x| x.iter())
        .for_each(|p| grow(flat(p)));
    target.iter().for_each(|t| grow(flat(t)));
    let pad = 0.08 * (view[2] - view[0]).max(view[3] - view[1]).max(1e-3);
    let view = [view[0] - pad, view[1] - pad, view[2] + pad, view[3] + pad];
    let boxes: Vec<[f64; 4]> = model
        .shapes
        .iter()
        .filter_map(|s| match *s {
            Shape::Box { center, half } | Shape::RoundedBox { center, half, .. } => Some([
                center[0] - half[0],
                center[1] - half[1],
                center[0] + half[0],
                center[1] + half[1],
            ]),
            // The ground (a plane facing +y), drawn to the bottom of the window.
            Shape::Plane { normal, offset } if normal[1] > 0.99 => {
                Some([view[0], view[1].min(offset) - pad, view[2], offset])
            }
            Shape::Sphere { center, radius } | Shape::Capsule { center, radius, .. } => Some([
                center[0] - radius,
                center[1] - radius,
                center[0] + radius,
                center[1] + radius,
            ]),
            // Not drawn: planes that do not face +y, and meshes.
            Shape::Plane { .. } | Shape::Mesh { .. } => None,
        })
        .collect();
    let mut edges: Vec<(usize, usize)> = model.springs.iter().map(|s| (s.i, s.j)).collect();
    let elements = model.tets.iter().map(|t| &t.nodes[..]);
    for nodes in elements.chain(model.tris.iter().map(|t| &t.nodes[..])) {
        for (a, &i) in nodes.iter().enumerate() {
            for &j in &nodes[a + 1..] {
                edges.push((i.min(j), i.max(j)));
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    let marks: Vec<[f64; 2]> = target.iter().map(flat).collect();
    let mut trail = Vec::new();
    let mut gif = GifWriter::create(path, ScenePicture::size(view), 50)?;
    for (k, x) in frames.iter().enumerate() {
        trail.push(com(x));
        let points: Vec<[f64; 2]> = x.iter().map(flat).collect();
        gif.add(&ScenePicture {
            points: &points,
            edges: &edges,
            boxes: &boxes,
            marks: &marks,
            trail: &trail,
            view,
            title: format!("{title} (frame {}/{})", k + 1, frames.len()),
        })?;
    }
    gif.finish().map(|_| ())
}

/// Every `stride`-th state's positions of a trajectory, and the last.
pub fn every(states: &[(Vec<V3>, Vec<V3>)], stride: usize) -> Vec<&[V3]> {
    let mut f: Vec<&[V3]> = states
        .iter()
        .step_by(stride.max(1))
        .map(|s| &s.0[..])
        .collect();
    if !(states.len() - 1).is_multiple_of(stride.max(1)) {
        f.push(&states.last().expect("a state").0);
    }
    f
}
