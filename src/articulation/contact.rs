//! Contact of points on the links against static shapes and against shapes carried by other
//! links (a free-floating link is a rigid body: a robot pushing a box, a ball on a tray), with
//! the smooth frictional law of [`crate::solids::contact`] (normal `ke·s·softplus(−φ/s)`,
//! damping `kd·σ(−φ/s)·v_n`, regularised Coulomb friction), mapped to joint forces
//! `τ = Σ J_pᵀ f_p`. Against a carried shape the law sees the point and its velocity relative to
//! the carrying link, in that link's frame; the carrier takes the opposite force at the same
//! point, so momentum is exchanged, never made.
//!
//! The law is evaluated once in `f64` with its exact Jacobians. [`contact_partials`] gives
//! `∂τ/∂q` and `∂τ/∂v` of the static contacts in closed form from one kinematics pass (what the
//! steppers use) and those of carried shapes by one dual-number pass per direction; in dual
//! numbers the force carries `∂f/∂x·ẋ + ∂f/∂v·v̇` as its derivative part, so a dual pass of
//! [`contact_forces`] differentiates it exactly (what the tests check the closed form against).

use super::Real;
use super::dynamics::{Kinematics, integrate, kinematics, placements_from};
use super::model::Articulation;
use super::spatial::{Force, Matrix, Motion, Transform, Vec3, c, cross};
use crate::solids::contact::{Contact, Shape, force};
use num_dual::Dual64;

/// Points on links touching static shapes and shapes carried by links.
#[derive(Clone, Debug, PartialEq)]
pub struct JointContact {
    /// `(link, point in the link frame (m), radius (m))`: a ball of that radius about the
    /// point touches the shapes (0: the point itself).
    pub points: Vec<(usize, Vec3<f64>, f64)>,
    /// The static obstacles (world frame).
    pub shapes: Vec<Shape>,
    /// Obstacles carried by links: `(link, shape in the link's frame)`. Every point on another
    /// link touches them.
    pub link_shapes: Vec<(usize, Shape)>,
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
    pair_forces(m, contact, q, v, true)
}

/// The joint forces of the contacts with carried shapes and, if `with_static`, with the
/// static ones.
fn pair_forces<T: ContactScalar>(
    m: &Articulation,
    contact: &JointContact,
    q: &[T],
    v: &[T],
    with_static: bool,
) -> Vec<T> {
    let k = kinematics(m, q);
    let motion = link_motion(m, &k, v);
    let mut f: Vec<Force<T>> = vec![Force::zero(); m.links.len()];
    let ball = |shape: &Shape, radius: f64| {
        if radius > 0.0 {
            shape.inflated(radius)
        } else {
            shape.clone()
        }
    };
    // `Eᵀy` and `Ey` for a link's rotation.
    let et = |e: &[[T; 3]; 3], y: [T; 3]| -> [T; 3] {
        std::array::from_fn(|a| (0..3).fold(c(0.0), |s, b| s + e[b][a] * y[b]))
    };
    let ee = |e: &[[T; 3]; 3], y: [T; 3]| -> [T; 3] {
        std::array::from_fn(|a| (0..3).fold(c(0.0), |s, b| s + e[a][b] * y[b]))
    };
    for &(link, p, radius) in &contact.points {
        let (x0, vi) = &motion[link];
        let p: [T; 3] = p.map(c);
        // World position r + Eᵀp and velocity Eᵀ(v + ω × p).
        let local_v = {
            let w = cross(vi.w, p);
            std::array::from_fn(|a| vi.v[a] + w[a])
        };
        let ep = et(&x0.e, p);
        let xw: [T; 3] = std::array::from_fn(|a| x0.r[a] + ep[a]);
        let vw = et(&x0.e, local_v);
        // World forces on the point.
        let mut on_point: Vec<[T; 3]> = Vec::new();
        if with_static {
            for shape in &contact.shapes {
                on_point.push(T::force(&contact.law, &ball(shape, radius), xw, vw));
            }
        }
        for (carrier, shape) in &contact.link_shapes {
            if *carrier == link {
                continue;
            }
            // The point and its velocity relative to the carrier, in the carrier's frame.
            let (xb, vb) = &motion[*carrier];
            let xl: [T; 3] = ee(&xb.e, std::array::from_fn(|a| xw[a] - xb.r[a]));
            let spin = cross(vb.w, xl);
            let vp = ee(&xb.e, vw);
            let vl: [T; 3] = std::array::from_fn(|a| vp[a] - vb.v[a] - spin[a]);
            let fl = T::force(&contact.law, &ball(shape, radius), xl, vl);
            f[*carrier] = f[*carrier].sub(&Force {
                n: cross(xl, fl),
                f: fl,
            });
            on_point.push(et(&xb.e, fl));
        }
        for fw in on_point {
            // The force in the link frame, applied at p: [p × f; f].
            let fl = ee(&x0.e, fw);
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

/// Adds the contact forces' partials at `(q, v)` to `dq` (`∂τ/∂q`, tangent space) and `dv`
/// (`∂τ/∂v`), both `nv × nv`: the static shapes' in closed form, the carried shapes' by one
/// dual-number pass per direction.
///
/// For a point at world `x` on link `L`, with world motion columns `J_k` of the dofs on its
/// path from the root and point columns `u_k = J_k.v + J_k.ω × x` (so `ẋ = Σ u_k v_k`,
/// `τ_k = u_k·f`): perturbing dof `j` moves `x` by `u_j`, turns every column `k` that it
/// carries (`j`'s link an ancestor of `k`'s or the same: a joint's own columns are fixed in
/// its child frame) by `J_j × J_k`, and all of them rotate with `ω_k × u_j` at the moved
/// point. Hence, with `F = [x × f; f]` the force as a wrench about the origin,
/// `∂τ_k/∂δ_j = u_k·(K_x u_j + K_v ∂ẋ/∂δ_j) + J_k.ω·(u_j × f) − [j carries k] J_k·(J_j ×* F)`,
/// `∂ẋ/∂δ_j = (J_j × (V_L − V_{λ(j)}))|_x + ω_L × u_j` (`V` world spatial velocities, `λ(j)`
/// the parent of `j`'s link), and `∂τ_k/∂v_j = u_k·K_v u_j`, `K_x`, `K_v` the law's Jacobians.
pub fn contact_partials(
    m: &Articulation,
    contact: &JointContact,
    q: &[f64],
    v: &[f64],
    dq: &mut Matrix,
    dv: &mut Matrix,
) {
    if !contact.link_shapes.is_empty() {
        carried_partials(m, contact, q, v, dq, dv);
    }
    let k = kinematics(m, q);
    let motion = link_motion(m, &k, v);
    let offsets = m.offsets();
    // World velocities of the links and world columns of every dof.
    let world_v: Vec<Motion<f64>> = motion.iter().map(|(x, vi)| x.inv_motion(vi)).collect();
    let mut columns: Vec<Vec<Motion<f64>>> = Vec::with_capacity(m.links.len());
    for (i, (x, _)) in motion.iter().enumerate() {
        columns.push(k.s[i].iter().map(|s| x.inv_motion(s)).collect());
    }
    let at = |mo: &Motion<f64>, x: [f64; 3]| -> [f64; 3] {
        let w = cross(mo.w, x);
        std::array::from_fn(|a| mo.v[a] + w[a])
    };
    let dot3 = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let mat3 =
        |m: &[[f64; 3]; 3], x: [f64; 3]| -> [f64; 3] { std::array::from_fn(|a| dot3(m[a], x)) };
    // The points grouped by link: they share the path from the root.
    let mut by_link: Vec<Vec<(Vec3<f64>, f64)>> = vec![Vec::new(); m.links.len()];
    for &(link, p, radius) in &contact.points {
        by_link[link].push((p, radius));
    }
    let add = |a: &mut Force<f64>, n: [f64; 3], f: [f64; 3]| {
        for r in 0..3 {
            a.n[r] += n[r];
            a.f[r] += f[r];
        }
    };
    for (link, points) in by_link.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        // Per dof on the path root → link: (dof, its column, the parent's world velocity,
        // its link's depth).
        let mut path = Vec::new();
        let mut node = Some(link);
        while let Some(i) = node {
            path.push(i);
            node = m.links[i].parent;
        }
        let mut chain: Vec<(usize, Motion<f64>, Motion<f64>, usize)> = Vec::new();
        for (depth, &i) in path.iter().rev().enumerate() {
            let parent_v = m.links[i].parent.map_or(Motion::zero(), |pa| world_v[pa]);
            for (col, s) in columns[i].iter().enumerate() {
                chain.push((offsets[i].1 + col, *s, parent_v, depth));
            }
        }
        // Per j, summed over the link's points, as wrenches that the columns J_k take:
        // `[x × w; w]` for `u_k·w`, `[u_j × f; 0]` for `J_k.ω·(u_j × f)`, and `J_j ×* F`.
        let zero = Force::<f64>::zero();
        let (mut by_q, mut by_v, mut carried) = (
            vec![zero; chain.len()],
            vec![zero; chain.len()],
            vec![zero; chain.len()],
        );
        let (x0, _) = &motion[link];
        let vl = world_v[link];
        let mut touched = false;
        for &(p, radius) in points {
            let x: [f64; 3] =
                std::array::from_fn(|a| x0.r[a] + (0..3).map(|b| x0.e[b][a] * p[b]).sum::<f64>());
            let xd = at(&vl, x);
            let (mut f, mut kx, mut kv) = ([0.0; 3], [[0.0; 3]; 3], [[0.0; 3]; 3]);
            for shape in &contact.shapes {
                let (fs, jx, jv) = if radius > 0.0 {
                    force(&contact.law, &shape.inflated(radius), x, xd)
                } else {
                    force(&contact.law, shape, x, xd)
                };
                for a in 0..3 {
                    f[a] += fs[a];
                    for b in 0..3 {
                        kx[a][b] += jx[a][b];
                        kv[a][b] += jv[a][b];
                    }
                }
            }
            if f.iter()
                .chain(kx.iter().flatten())
                .chain(kv.iter().flatten())
                .all(|&y| y == 0.0)
            {
                continue;
            }
            touched = true;
            let wrench = Force { n: cross(x, f), f };
            for (j, (_, jc, pv, _)) in chain.iter().enumerate() {
                let uj = at(jc, x);
                let rel = Motion {
                    w: std::array::from_fn(|a| vl.w[a] - pv.w[a]),
                    v: std::array::from_fn(|a| vl.v[a] - pv.v[a]),
                };
                let turn = at(&jc.cross_motion(&rel), x);
                let spin = cross(vl.w, uj);
                let dxd: [f64; 3] = std::array::from_fn(|a| turn[a] + spin[a]);
                let (kxu, kvd) = (mat3(&kx, uj), mat3(&kv, dxd));
                let wq: [f64; 3] = std::array::from_fn(|r| kxu[r] + kvd[r]);
                let n_q = cross(x, wq);
                let uf = cross(uj, f);
                add(&mut by_q[j], std::array::from_fn(|r| n_q[r] + uf[r]), wq);
                let wv = mat3(&kv, uj);
                add(&mut by_v[j], cross(x, wv), wv);
                let c = jc.cross_force(&wrench);
                add(&mut carried[j], c.n, c.f);
            }
        }
        if !touched {
            continue;
        }
        for (dk, jk, _, depth_k) in &chain {
            for (j, (dj, _, _, depth_j)) in chain.iter().enumerate() {
                let mut g = jk.dot(&by_q[j]);
                if depth_j <= depth_k {
                    g -= jk.dot(&carried[j]);
                }
                dq[*dk][*dj] += g;
                dv[*dk][*dj] += jk.dot(&by_v[j]);
            }
        }
    }
}

/// The carried shapes' part of [`contact_partials`]: one dual pass per direction.
fn carried_partials(
    m: &Articulation,
    contact: &JointContact,
    q: &[f64],
    v: &[f64],
    dq: &mut Matrix,
    dv: &mut Matrix,
) {
    let nv = v.len();
    let lift = |x: &[f64]| -> Vec<Dual64> { x.iter().map(|&r| Dual64::from(r)).collect() };
    let (ql, vl) = (lift(q), lift(v));
    for k in 0..nv {
        let e: Vec<Dual64> = (0..nv)
            .map(|j| Dual64::new(0.0, f64::from(u8::from(j == k))))
            .collect();
        let moved: Vec<Dual64> = vl.iter().zip(&e).map(|(a, b)| *a + *b).collect();
        let by_q = pair_forces(m, contact, &integrate(m, &ql, &e), &vl, false);
        let by_v = pair_forces(m, contact, &ql, &moved, false);
        for r in 0..nv {
            dq[r][k] += by_q[r].eps;
            dv[r][k] += by_v[r].eps;
        }
    }
}
