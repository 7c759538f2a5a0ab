//! Contact of points on the links against static shapes, with the smooth frictional law of
//! [`crate::solids::contact`] (normal `ke·s·softplus(−φ/s)`, damping `kd·σ(−φ/s)·v_n`,
//! regularised Coulomb friction), mapped to joint forces `τ = Σ J_pᵀ f_p`.
//!
//! The law is evaluated once in `f64` with its exact Jacobians; in dual numbers the force
//! carries `∂f/∂x·ẋ + ∂f/∂v·v̇` as its derivative part, so the steppers' dual passes
//! differentiate the contact forces exactly without a second copy of the law.

use super::Real;
use super::dynamics::{Kinematics, kinematics, placements_from};
use super::model::Articulation;
use super::spatial::{Force, Motion, Transform, Vec3, c, cross};
use crate::solids::contact::{Contact, Shape, force};
use num_dual::Dual64;

/// Points on links touching static shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct JointContact {
    /// `(link, point in the link frame (m), radius (m))`: a ball of that radius about the
    /// point touches the shapes (0: the point itself).
    pub points: Vec<(usize, Vec3<f64>, f64)>,
    /// The obstacles (world frame).
    pub shapes: Vec<Shape>,
    /// The contact law.
    pub law: Contact,
}

/// The scalars the contact force can be evaluated in.
pub trait ContactScalar: Real {
    /// The force of `law` and `shape` on a point at `x` moving at `v` (world frame).
    fn force(law: &Contact, shape: &Shape, x: [Self; 3], v: [Self; 3]) -> [Self; 3];
}

impl ContactScalar for f64 {
    fn force(law: &Contact, shape: &Shape, x: [f64; 3], v: [f64; 3]) -> [f64; 3] {
        force(law, shape, x, v).0
    }
}

impl ContactScalar for Dual64 {
    fn force(law: &Contact, shape: &Shape, x: [Dual64; 3], v: [Dual64; 3]) -> [Dual64; 3] {
        let (f, jx, jv) = force(law, shape, x.map(|y| y.re), v.map(|y| y.re));
        std::array::from_fn(|a| {
            let d: f64 = (0..3)
                .map(|b| jx[a][b] * x[b].eps + jv[a][b] * v[b].eps)
                .sum();
            Dual64::new(f[a], d)
        })
    }
}

/// Several directions at once: the steppers' contact partials take `W` columns per pass.
impl<const W: usize> ContactScalar for num_dual::DualSVec64<W> {
    fn force(law: &Contact, shape: &Shape, x: [Self; 3], v: [Self; 3]) -> [Self; 3] {
        let (f, jx, jv) = force(law, shape, x.map(|y| y.re), v.map(|y| y.re));
        std::array::from_fn(|a| {
            let eps = (0..3).fold(num_dual::Derivative::none(), |acc, b| {
                acc + x[b].eps * jx[a][b] + v[b].eps * jv[a][b]
            });
            Self::new(f[a], eps)
        })
    }
}

/// Per link: `ⁱX_0` and the spatial velocity in the link frame.
fn link_motion<T: Real>(
    m: &Articulation,
    k: &Kinematics<T>,
    v: &[T],
) -> Vec<(Transform<T>, Motion<T>)> {
    let offsets = m.offsets();
    let mut vel: Vec<Motion<T>> = Vec::with_capacity(m.links.len());
    for (i, l) in m.links.iter().enumerate() {
        let iv = offsets[i].1;
        let vj = k.s[i]
            .iter()
            .zip(&v[iv..])
            .fold(Motion::zero(), |acc, (s, &qd)| acc.add(&s.scale(qd)));
        vel.push(match l.parent {
            Some(p) => k.x[i].motion(&vel[p]).add(&vj),
            None => vj,
        });
    }
    placements_from(m, k).into_iter().zip(vel).collect()
}

/// The joint forces of the contacts at `(q, v)` (`nv` entries).
pub fn contact_forces<T: ContactScalar>(
    m: &Articulation,
    contact: &JointContact,
    q: &[T],
    v: &[T],
) -> Vec<T> {
    let k = kinematics(m, q);
    let motion = link_motion(m, &k, v);
    let mut f: Vec<Force<T>> = vec![Force::zero(); m.links.len()];
    for &(link, p, radius) in &contact.points {
        let (x0, vi) = &motion[link];
        let p: [T; 3] = p.map(c);
        // World position r + Eᵀp and velocity Eᵀ(v + ω × p).
        let et = |y: [T; 3]| -> [T; 3] {
            std::array::from_fn(|a| (0..3).fold(c(0.0), |s, b| s + x0.e[b][a] * y[b]))
        };
        let local_v = {
            let w = cross(vi.w, p);
            std::array::from_fn(|a| vi.v[a] + w[a])
        };
        let ep = et(p);
        let xw: [T; 3] = std::array::from_fn(|a| x0.r[a] + ep[a]);
        let vw = et(local_v);
        for shape in &contact.shapes {
            let fw = if radius > 0.0 {
                T::force(&contact.law, &shape.inflated(radius), xw, vw)
            } else {
                T::force(&contact.law, shape, xw, vw)
            };
            // The force in the link frame, applied at p: [p × f; f].
            let fl: [T; 3] =
                std::array::from_fn(|a| (0..3).fold(c(0.0), |s, b| s + x0.e[a][b] * fw[b]));
            f[link] = f[link].add(&Force {
                n: cross(p, fl),
                f: fl,
            });
        }
    }
    let offsets = m.offsets();
    let mut tau = vec![c::<T>(0.0); m.nv()];
    for i in (0..m.links.len()).rev() {
        let iv = offsets[i].1;
        for (j, s) in k.s[i].iter().enumerate() {
            tau[iv + j] = s.dot(&f[i]);
        }
        if let Some(p) = m.links[i].parent {
            let back = k.x[i].inv_force(&f[i]);
            f[p] = f[p].add(&back);
        }
    }
    tau
}
