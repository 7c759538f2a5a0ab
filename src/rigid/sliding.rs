//! Contact along a capsule's side: a point that slides along the capsule's axis to where the
//! axis comes closest to a convex target (another capsule, a box, a static sphere or
//! capsule), so that a capsule lying across another capsule, across a box's edge or over a
//! ball is held — the cap centres alone see only contacts at the capsule's ends.
//!
//! In a step, the point is chosen at the step's start and then frozen, like the pairs: with
//! `ψ(t)` the target's signed distance (grown by the capsule's radius) at the axis point
//! `p(t) = p₀ + t(p₁ − p₀)`, `t ∈ [0, 1]`, the point sits at the minimiser `t*` of the convex
//! `ψ` and acts for the step as a material point of the capsule (gap and normal rebuilt at
//! every Newton iterate, as for the other points). It counts with a weight `w` that fades it
//! in as its dip below the other contacts that already act grows:
//!
//! ```text
//! δ = softmin_σ(ψ(0), ψ(1), [the target capsule's cap centres against this capsule]) − ψ(t*)
//! w = smoothstep(δ/δ₀),   δ₀ = 4s,   σ = δ₀/4
//! ```
//!
//! (`s` the contact law's smoothing length). So the point is off while the closest place is
//! a cap centre (`t*` at an end: `δ = 0`, with zero slope), off for parallel axes (`ψ` flat:
//! the cap centres carry the line contact), and fully on once it dips `4s` below them: the
//! step's map stays continuous and differentiable. A pair of capsules gets one sliding point
//! (on the lower index's axis; the closest points of two segments are one contact).
//!
//! The adjoint adds, to the bars of the step's start states, `t̄·∂t*/∂x + w̄·∂w/∂x` with
//! `t̄ = p̄·(p₁ − p₀)` (`p̄` the bar of the point in the capsule's frame) and `w̄` the bar of
//! the weight; `∂t*/∂x = −(∂ψ'/∂x)/ψ''` (implicit function theorem on `ψ'(t*) = 0`) and
//! `∂δ/∂x` needs only the gradients of the gaps at fixed points (envelope theorem).

use super::body::{BodyState, RigidBody};
use super::model::RigidModel;
use super::pairs;
use super::so3;
use crate::solids::contact::{self, Shape};
use crate::solids::math::{M3, V3, dot, sub};

/// The fade-in depth `δ₀` in smoothing lengths.
const BLEND: f64 = 4.0;

/// What a sliding point pushes against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Another body (its signed distance in its frame).
    Body(usize),
    /// The capsule's `k`-th static obstacle.
    Obstacle(usize),
}

/// A capsule and a target its side may touch.
pub type Candidate = (usize, Target);

/// A point on capsule `body`'s axis, frozen for one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlidingPoint {
    /// The capsule (body A).
    pub body: usize,
    /// What it touches.
    pub target: Target,
    /// The point in the capsule's frame (m).
    pub point: V3,
    /// The weight `w ∈ (0, 1]` of its contact.
    pub weight: f64,
    /// The axis `p₁ − p₀` in the capsule's frame (m).
    axis: V3,
    /// `∂t*/∂(c_A, δθ_A, c_B, δθ_B)` at the step's start (B's part zero for obstacles).
    dt: [f64; 12],
    /// `∂w/∂(c_A, δθ_A, c_B, δθ_B)` at the step's start.
    dw: [f64; 12],
}

impl SlidingPoint {
    /// The bars `(A, B)` of the step's start states (6 each: `c̄`, `θ̄` in the tangent space)
    /// from the bar `p̄` of the point (capsule frame) and `w̄` of the weight.
    pub fn start_bars(&self, point_bar: V3, weight_bar: f64) -> [f64; 12] {
        let tb = dot(point_bar, self.axis);
        std::array::from_fn(|i| tb * self.dt[i] + weight_bar * self.dw[i])
    }

    /// The shape the point pushes against (grown by the capsule's radius) and the state of
    /// its frame (the world's for an obstacle).
    pub fn frame<'s>(
        &self,
        model: &RigidModel,
        obstacles: &[Vec<Shape>],
        states: &'s [BodyState],
    ) -> (Shape, &'s BodyState) {
        frame(model, (self.body, self.target), obstacles, states)
    }
}

fn frame<'s>(
    model: &RigidModel,
    (ia, target): (usize, Target),
    obstacles: &[Vec<Shape>],
    states: &'s [BodyState],
) -> (Shape, &'s BodyState) {
    match target {
        Target::Body(ib) => (pairs::pair_shape(model, (ia, ib)), &states[ib]),
        Target::Obstacle(k) => (obstacles[ia][k].clone(), &WORLD),
    }
}

/// A static frame for obstacles: the world.
pub const WORLD: BodyState = BodyState {
    c: [0.0; 3],
    q: [1.0, 0.0, 0.0, 0.0],
    v: [0.0; 3],
    w: [0.0; 3],
};

/// The axis end points of a capsule body in its frame.
fn axis_ends(body: &RigidBody) -> Option<(V3, V3)> {
    match body.sdf {
        Some(Shape::Capsule {
            center,
            half_height,
            ..
        }) if half_height > 0.0 => {
            let mut p0 = center;
            let mut p1 = center;
            p0[2] -= half_height;
            p1[2] += half_height;
            Some((p0, p1))
        }
        _ => None,
    }
}

/// Whether a target shape is convex (its distance along a line is convex) and curved or
/// edged (a plane's is linear: its minimum is at an end).
fn slides_on(shape: &Shape) -> bool {
    matches!(
        shape,
        Shape::Sphere { .. } | Shape::Box { .. } | Shape::RoundedBox { .. } | Shape::Capsule { .. }
    )
}

/// The candidate `(capsule, target)` couples of a model: a capsule against every body with a
/// box or capsule distance it meets in `pairs` (capsule pairs once, from the lower index),
/// and against its sphere, box and capsule obstacles (`obstacles[b]`, grown by its radius).
pub fn candidates(
    model: &RigidModel,
    pairs: &[(usize, usize)],
    obstacles: &[Vec<Shape>],
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for &(ia, ib) in pairs {
        let a_capsule = axis_ends(&model.bodies[ia]).is_some();
        let b_capsule = axis_ends(&model.bodies[ib]).is_some();
        let b_box = matches!(model.bodies[ib].sdf, Some(Shape::Box { .. }));
        if a_capsule && (b_box || (b_capsule && ia < ib)) {
            out.push((ia, Target::Body(ib)));
        }
    }
    for (b, shapes) in obstacles.iter().enumerate() {
        if axis_ends(&model.bodies[b]).is_some() {
            for (k, shape) in shapes.iter().enumerate() {
                if slides_on(shape) {
                    out.push((b, Target::Obstacle(k)));
                }
            }
        }
    }
    out
}

/// A body point `p` (frame of `sa`) against `shape` in the frame of `sb`: the gap, its
/// gradient in `(c_A, δθ_A, c_B, δθ_B)`, the world normal, the world Hessian of the
/// distance, the lever arm `a = R_A p` and `y = c_A + a − c_B`.
struct Probe {
    gap: f64,
    grad: [f64; 12],
    n: V3,
    hess: M3,
    a: V3,
    y: V3,
}

fn probe(shape: &Shape, p: V3, sa: &BodyState, sb: &BodyState) -> Probe {
    let (ra, rb) = (so3::to_matrix(sa.q), so3::to_matrix(sb.q));
    let a = so3::mat_vec(&ra, p);
    let y = sub(so3::add(sa.c, a), sb.c);
    let (gap, nl, hl) = contact::distance(shape, so3::mat_t_vec(&rb, y));
    let n = so3::mat_vec(&rb, nl);
    let hess = so3::mat_mul(&so3::mat_mul(&rb, &hl), &so3::transpose(&rb));
    let (ta, tb) = (so3::cross(a, n), so3::cross(n, y));
    let mut grad = [0.0; 12];
    for i in 0..3 {
        grad[i] = n[i];
        grad[3 + i] = ta[i];
        grad[6 + i] = -n[i];
        grad[9 + i] = tb[i];
    }
    Probe {
        gap,
        grad,
        n,
        hess,
        a,
        y,
    }
}

fn lerp(p0: V3, e: V3, t: f64) -> V3 {
    std::array::from_fn(|i| p0[i] + t * e[i])
}

/// The sliding point of capsule `ia` against `target` at the states, if it counts
/// (`w > 0`) and its gap is below `cut`: `t*` by bisection on the monotone slope of the
/// convex `ψ`, then `w` and the sensitivities.
pub fn sliding_point(
    model: &RigidModel,
    (ia, target): Candidate,
    obstacles: &[Vec<Shape>],
    states: &[BodyState],
    cut: f64,
) -> Option<SlidingPoint> {
    let ends = axis_ends(&model.bodies[ia])?;
    let sa = &states[ia];
    let (shape, sb) = frame(model, (ia, target), obstacles, states);
    // A target capsule's cap centres against this capsule (grown by the target's radius).
    let mut rivals = Vec::new();
    if let Target::Body(ib) = target
        && let Some((q0, q1)) = axis_ends(&model.bodies[ib])
    {
        let back = pairs::pair_shape(model, (ib, ia));
        for q in [q0, q1] {
            let pr = probe(&back, q, sb, sa);
            // Reorder its gradient from (B, A) to (A, B).
            let mut grad = [0.0; 12];
            grad[..6].copy_from_slice(&pr.grad[6..]);
            grad[6..].copy_from_slice(&pr.grad[..6]);
            rivals.push(Probe { grad, ..pr });
        }
    }
    let s = slide(
        &shape,
        ends,
        (sa, sb),
        rivals,
        (model.contact.smoothing, cut),
    )?;
    Some(SlidingPoint {
        body: ia,
        target,
        point: s.point,
        weight: s.weight,
        axis: sub(ends.1, ends.0),
        dt: s.dt,
        dw: s.dw,
    })
}

/// A point sliding along A's segment `(p₀, p₁)` (A's frame) against `shape` in B's frame:
/// its place, weight and sensitivities.
struct Slide {
    /// The point in A's frame.
    pub point: V3,
    /// Its weight `w`.
    pub weight: f64,
    /// `∂t*/∂(c_A, δθ_A, c_B, δθ_B)`.
    pub dt: [f64; 12],
    /// `∂w/∂(c_A, δθ_A, c_B, δθ_B)`.
    pub dw: [f64; 12],
}

/// The sliding point of the segment `(p₀, p₁)` of A at `sa` against `shape` in the frame
/// of `sb`, if it counts (`w > 0`) and its gap is below `cut`: `t*` by bisection on the
/// monotone slope of the convex `ψ`, then `w` against the segment's ends and `rivals` (the
/// other contacts' gaps, gradients in `(A, B)`), and the sensitivities.
fn slide(
    shape: &Shape,
    (p0, p1): (V3, V3),
    (sa, sb): (&BodyState, &BodyState),
    mut rivals: Vec<Probe>,
    (smoothing, cut): (f64, f64),
) -> Option<Slide> {
    let e = sub(p1, p0);
    // The axis in the target's frame: x(t) = x₀ + t·e_l, and ψ'(t) = n(x(t))·e_l.
    let (ra, rb) = (so3::to_matrix(sa.q), so3::to_matrix(sb.q));
    let to_b = |p: V3| so3::mat_t_vec(&rb, sub(so3::add(sa.c, so3::mat_vec(&ra, p)), sb.c));
    let (x0, el) = (to_b(p0), so3::mat_t_vec(&rb, so3::mat_vec(&ra, e)));
    // The distance is 1-Lipschitz: the whole axis lies at least this far from the target.
    let half = 0.5 * so3::norm(el);
    if contact::distance(shape, lerp(x0, el, 0.5)).0 - half >= cut {
        return None;
    }
    let slope = |t: f64| dot(contact::distance(shape, lerp(x0, el, t)).1, el);
    if slope(0.0) >= 0.0 || slope(1.0) <= 0.0 {
        return None;
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..64 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if slope(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = 0.5 * (lo + hi);
    let point = lerp(p0, e, t);
    let at = probe(shape, point, sa, sb);
    if at.gap >= cut {
        return None;
    }
    // The segment's own ends against the target.
    rivals.push(probe(shape, p0, sa, sb));
    rivals.push(probe(shape, p1, sa, sb));
    let delta0 = BLEND * smoothing;
    let sigma = delta0 / 4.0;
    let least = rivals.iter().map(|r| r.gap).fold(f64::INFINITY, f64::min);
    let expw: Vec<f64> = rivals
        .iter()
        .map(|r| (-(r.gap - least) / sigma).exp())
        .collect();
    let total: f64 = expw.iter().sum();
    let soft = least - sigma * total.ln();
    let u = (soft - at.gap) / delta0;
    if u <= 0.0 {
        return None;
    }
    let (weight, dw_du) = if u >= 1.0 {
        (1.0, 0.0)
    } else {
        (u * u * (3.0 - 2.0 * u), 6.0 * u * (1.0 - u))
    };
    // ∂δ: the softmin's weights on the rivals' gradients, minus the point's gradient.
    let mut dw = [0.0; 12];
    for (r, x) in rivals.iter().zip(&expw) {
        for (d, g) in dw.iter_mut().zip(&r.grad) {
            *d += x / total * g;
        }
    }
    for (d, g) in dw.iter_mut().zip(&at.grad) {
        *d = dw_du / delta0 * (*d - g);
    }
    // ∂t*: ψ' = n·e_w; ∂ψ' = h_w·∂y + n·(δθ_A × e_w + e_w × δθ_B), h_w = H e_w.
    let ew = so3::mat_vec(&ra, e);
    let hw = so3::mat_vec(&at.hess, ew);
    let curvature = dot(ew, hw);
    if curvature <= 1e-12 * dot(ew, ew) / so3::norm(at.y).max(so3::norm(ew)) {
        // A kink of ψ (the axis deep inside a box): no slope to follow.
        return None;
    }
    let ta = so3::add(so3::cross(at.a, hw), so3::cross(ew, at.n));
    let tb = so3::add(so3::cross(hw, at.y), so3::cross(at.n, ew));
    let mut dt = [0.0; 12];
    for i in 0..3 {
        dt[i] = -hw[i] / curvature;
        dt[3 + i] = -ta[i] / curvature;
        dt[6 + i] = hw[i] / curvature;
        dt[9 + i] = -tb[i] / curvature;
    }
    Some(Slide {
        point,
        weight,
        dt,
        dw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rigid::body::BodyShape;
    use crate::solids::contact::Contact;

    fn capsules() -> (RigidModel, Vec<BodyState>) {
        let cap = RigidBody::from_shape(
            &BodyShape::Capsule {
                r: 0.05,
                half_height: 0.3,
            },
            1000.0,
        )
        .unwrap();
        let model = RigidModel {
            bodies: vec![cap.clone(), cap],
            gravity: [0.0, 0.0, -9.81],
            contact: Contact {
                ke: 1e4,
                kd: 0.0,
                mu: 0.0,
                // Large, so that the crossing's weight is partial (δ₀ = 0.4 m).
                smoothing: 0.1,
            },
            body_contact: true,
            ..RigidModel::default()
        };
        let lying = |c: V3, about: V3| BodyState {
            c,
            q: so3::exp_quat(about),
            v: [0.0; 3],
            w: [0.0; 3],
        };
        let states = vec![
            lying([0.02, -0.01, 0.0], [0.0, 1.5, 0.1]),
            lying([0.0, 0.03, 0.0985], [1.4, 0.05, 0.2]),
        ];
        (model, states)
    }

    /// Moves body `b` by the tangent increment `d` (`c`, `δθ` on the left).
    fn moved(states: &[BodyState], b: usize, d: [f64; 6]) -> Vec<BodyState> {
        let mut out = states.to_vec();
        let s = &mut out[b];
        (0..3).for_each(|i| s.c[i] += d[i]);
        s.q = so3::quat_mul(so3::exp_quat([d[3], d[4], d[5]]), s.q);
        out
    }

    #[test]
    fn crossing_capsules_slide_to_the_segments_closest_points_with_exact_sensitivities() {
        let (model, states) = capsules();
        let pairs = pairs::contact_pairs(&model);
        let cands = candidates(&model, &pairs, &[vec![], vec![]]);
        assert_eq!(cands, vec![(0, Target::Body(1))]);
        let sp = sliding_point(&model, cands[0], &[], &states, 1.0).expect("a crossing");
        // The point is the closest point to the other axis (brute force over both axes).
        let (p0, p1) = axis_ends(&model.bodies[0]).unwrap();
        let world = |s: &BodyState, p: V3| so3::add(s.c, so3::mat_vec(&so3::to_matrix(s.q), p));
        let mut best = (f64::INFINITY, 0.0);
        for i in 0..=2000 {
            for j in 0..=2000 {
                let (t, u) = (i as f64 / 2000.0, j as f64 / 2000.0);
                let x = world(&states[0], lerp(p0, sub(p1, p0), t));
                let z = world(&states[1], lerp(p0, sub(p1, p0), u));
                let d = so3::norm(sub(x, z));
                if d < best.0 {
                    best = (d, t);
                }
            }
        }
        let t = (sp.point[2] - p0[2]) / (p1[2] - p0[2]);
        assert!(
            (t - best.1).abs() < 1e-3,
            "t* {t} vs brute force {}",
            best.1
        );
        assert!(sp.weight > 0.0 && sp.weight < 1.0, "weight {}", sp.weight);
        // Sensitivities against central differences in the tangent space.
        let tw = |st: &[BodyState]| {
            let sp = sliding_point(&model, cands[0], &[], st, 1.0).unwrap();
            ((sp.point[2] - p0[2]) / (p1[2] - p0[2]), sp.weight)
        };
        let eps = 1e-7;
        for b in 0..2 {
            for k in 0..6 {
                let mut d = [0.0; 6];
                d[k] = eps;
                let (tp, wp) = tw(&moved(&states, b, d));
                d[k] = -eps;
                let (tm, wm) = tw(&moved(&states, b, d));
                let (fd_t, fd_w) = ((tp - tm) / (2.0 * eps), (wp - wm) / (2.0 * eps));
                let (at, aw) = (sp.dt[6 * b + k], sp.dw[6 * b + k]);
                assert!(
                    (fd_t - at).abs() <= 1e-6 * (1.0 + at.abs()),
                    "dt {b} {k}: {fd_t} {at}"
                );
                assert!(
                    (fd_w - aw).abs() <= 1e-5 * (1.0 + aw.abs()),
                    "dw {b} {k}: {fd_w} {aw}"
                );
            }
        }
    }
}
