//! Static balls against box and mesh bodies. A body's points see an obstacle only where one of
//! them comes near it, so a box lying face-down on a static ball would sink through its face;
//! instead, the ball's centre (with the ball's radius) is a point of the world against the
//! body's signed distance in the body's frame — the pair law of [`super::pairs`] with a
//! static side A — and the box's corners and the mesh's vertices do not see the ball (as a
//! box's corners do not see a sphere body).

use super::body::BodyState;
use super::model::RigidModel;
use super::pairs;
use super::so3;
use crate::solids::contact::{self, Shape};
use crate::solids::math::{M3, V3, sub};

/// The world frame's rotation.
pub const IDENTITY: M3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// The `(obstacle, body)` couples of a model with contact: every static ball against every
/// box and mesh body.
pub fn candidates(model: &RigidModel) -> Vec<(usize, usize)> {
    if model.contact.ke <= 0.0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (b, body) in model.bodies.iter().enumerate() {
        if !body.touches_balls_by_centre() {
            continue;
        }
        for (k, shape) in model.obstacles.iter().enumerate() {
            if matches!(shape, Shape::Sphere { .. }) {
                out.push((k, b));
            }
        }
    }
    out
}

/// The ball's centre (world) and the body's signed distance grown by the ball's radius.
pub fn geometry(model: &RigidModel, (k, b): (usize, usize)) -> (V3, Shape) {
    let Shape::Sphere { center, radius } = model.obstacles[k] else {
        unreachable!("candidates keeps static balls only")
    };
    let sdf = model.bodies[b]
        .sdf
        .as_ref()
        .expect("candidates keeps bodies with a signed distance");
    (center, sdf.inflated(radius))
}

/// The couples of `candidates` that act in a step of length `h` from `states`: the ball's
/// centre within the activity cut of the grown body ([`pairs::activity_cut`]).
pub fn active(
    model: &RigidModel,
    candidates: &[(usize, usize)],
    states: &[BodyState],
    h: f64,
) -> Vec<(usize, usize)> {
    if candidates.is_empty() {
        return Vec::new();
    }
    let reach = pairs::reaches(model, states);
    candidates
        .iter()
        .copied()
        .filter(|&(k, b)| {
            let (centre, shape) = geometry(model, (k, b));
            let s = &states[b];
            let x = so3::mat_t_vec(&so3::to_matrix(s.q), sub(centre, s.c));
            contact::distance(&shape, x).0 < pairs::activity_cut(model, h, reach[b])
        })
        .collect()
}
