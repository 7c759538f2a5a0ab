//! Contact of points on the links against static shapes and against shapes carried by other
//! links (a free-floating link is a rigid body: a robot pushing a box, a ball on a tray), with
//! the smooth frictional law of [`crate::solids::contact`] (normal `ke·s·softplus(−φ/s)`,
//! damping `kd·σ(−φ/s)·v_n`, regularised Coulomb friction), mapped to joint forces
//! `τ = Σ J_pᵀ f_p`. Against a carried shape the law sees the point and its velocity relative to
//! the carrying link, in that link's frame; the carrier takes the opposite force at the same
//! point, so momentum is exchanged, never made.
//!
//! The law is evaluated once in `f64` with its exact Jacobians. [`contact_partials`] gives
//! `∂τ/∂q` and `∂τ/∂v` in closed form from one kinematics pass (what the steppers use); in
//! dual numbers the force carries `∂f/∂x·ẋ + ∂f/∂v·v̇` as its derivative part, so a dual pass
//! of [`contact_forces`] differentiates it exactly (what the tests check the closed form
//! against).

use super::Real;
use super::dynamics::{Kinematics, kinematics, placements_from};
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
    let k = kinematics(m, q);
    let motion = link_motion(m, &k, v);
    let mut f: Vec<Force<T>> = vec![Force::zero(); m.links.len()];
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
        let mut on_point: Vec<[T; 3]> = contact
            .shapes
            .iter()
            .map(|shape| T::force(&contact.law, &ball(shape, radius), xw, vw))
            .collect();
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
/// (`∂τ/∂v`), both `nv × nv`, in closed form (the carried shapes' in `carried_partials`).
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
    let fr = Frames::new(m, q, v);
    if !contact.link_shapes.is_empty() {
        carried_partials(m, contact, &fr, dq, dv);
    }
    let (motion, world_v) = (&fr.motion, &fr.world_v);
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
        let chain = fr.path(m, link);
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
            let x = world_of(x0, p);
            let xd = at(&vl, x);
            let (mut f, mut kx, mut kv) = ([0.0; 3], [[0.0; 3]; 3], [[0.0; 3]; 3]);
            for shape in &contact.shapes {
                let (fs, jx, jv) = force(&contact.law, &ball(shape, radius), x, xd);
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
                let turn = at(&jc.cross_motion(&vl.sub(pv)), x);
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

/// What the partials need of the tree at `(q, v)`, world frame: per link `ⁱX_0` and its own
/// velocity, its world velocity, and the world columns of its joint.
struct Frames {
    motion: Vec<(Transform<f64>, Motion<f64>)>,
    world_v: Vec<Motion<f64>>,
    columns: Vec<Vec<Motion<f64>>>,
    offsets: Vec<(usize, usize)>,
}

impl Frames {
    fn new(m: &Articulation, q: &[f64], v: &[f64]) -> Self {
        let k = kinematics(m, q);
        let motion = link_motion(m, &k, v);
        let world_v = motion.iter().map(|(x, vi)| x.inv_motion(vi)).collect();
        let columns = motion
            .iter()
            .zip(&k.s)
            .map(|((x, _), s)| s.iter().map(|c| x.inv_motion(c)).collect())
            .collect();
        Self {
            motion,
            world_v,
            columns,
            offsets: m.offsets(),
        }
    }

    /// Per dof on the path root → `link`: (dof, its world column, the world velocity of its
    /// link's parent, its link's depth on the path).
    fn path(&self, m: &Articulation, link: usize) -> Vec<(usize, Motion<f64>, Motion<f64>, usize)> {
        let mut path = Vec::new();
        let mut node = Some(link);
        while let Some(i) = node {
            path.push(i);
            node = m.links[i].parent;
        }
        let mut chain = Vec::new();
        for (depth, &i) in path.iter().rev().enumerate() {
            let parent_v = m.links[i]
                .parent
                .map_or(Motion::zero(), |pa| self.world_v[pa]);
            for (col, s) in self.columns[i].iter().enumerate() {
                chain.push((self.offsets[i].1 + col, *s, parent_v, depth));
            }
        }
        chain
    }
}

/// What a ball of `radius` about a point touches of `shape` (the shape itself for 0).
fn ball(shape: &Shape, radius: f64) -> Shape {
    if radius > 0.0 {
        shape.inflated(radius)
    } else {
        shape.clone()
    }
}

/// The world position `r + Eᵀp` of the point `p` of a link placed at `x0 = ⁱX_0`.
fn world_of(x0: &Transform<f64>, p: Vec3<f64>) -> [f64; 3] {
    std::array::from_fn(|a| x0.r[a] + (0..3).map(|b| x0.e[b][a] * p[b]).sum::<f64>())
}

/// `m(x) = m.v + m.ω × x`: a world twist's velocity at the point `x`.
fn at(mo: &Motion<f64>, x: [f64; 3]) -> [f64; 3] {
    let w = cross(mo.w, x);
    std::array::from_fn(|a| mo.v[a] + w[a])
}

fn dot3(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn mat3(k: &[[f64; 3]; 3], x: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|a| dot3(k[a], x))
}

/// `Eᵀ K E` (a carrier's local Jacobian in world axes).
fn to_world(e: &[[f64; 3]; 3], k: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    std::array::from_fn(|r| {
        std::array::from_fn(|c| {
            (0..3)
                .map(|a| e[a][r] * (0..3).map(|b| k[a][b] * e[b][c]).sum::<f64>())
                .sum()
        })
    })
}

/// A dof on the path of a point's link or of a carrier's: its world column, the world velocity
/// of its link's parent, and its link's depth on either path.
struct PairDof {
    dof: usize,
    column: Motion<f64>,
    parent_v: Motion<f64>,
    on_a: Option<usize>,
    on_b: Option<usize>,
}

impl PairDof {
    /// `(a, b)`: 1 where the dof is on the point's (`a`) or the carrier's (`b`) path.
    fn signs(&self) -> (f64, f64) {
        let one = |d: Option<usize>| f64::from(u8::from(d.is_some()));
        (one(self.on_a), one(self.on_b))
    }
}

/// The carried shapes' part of [`contact_partials`], in closed form. A point at `x` on link
/// `A` against a shape of link `B`: with `a_j`, `b_j` whether dof `j` is on `A`'s or `B`'s
/// path, `c_j = a_j − b_j` (shared ancestors cancel) and `D_j = c_j J_j`, the joint forces are
/// `τ_k = D_k(x)·f` and the law sees `y = E_B(x − r_B)`, `w = E_B(V_A − V_B)(x)`. Perturbing
/// dof `j` moves `y` by `E_B D_j(x)`, turns the carrier by `b_j ω_j`, changes the relative
/// twist by `a_j J_j × (V_A − V_λ(j)) − b_j J_j × (V_B − V_λ(j))` and the point by
/// `a_j J_j(x)`, so (world-axis Jacobians `K_x = E_BᵀK_yE_B`, `K_v = E_BᵀK_wE_B`)
/// `∂f/∂δ_j = b_j ω_j × f + K_x D_j(x) + K_v(−b_j ω_j × ẋ_rel + ∂V_rel(x) + a_j ω_rel × J_j(x))`
/// and `∂τ_k/∂δ_j = c_k(D̂_k(x)·∂f/∂δ_j + J_k.ω·(a_j J_j(x) × f) − [j carries k] J_k·(J_j ×* F))`
/// (`D̂_k = J_k`, the sign in `c_k`), `∂τ_k/∂v_j = c_k c_j J_k(x)·K_v J_j(x)`.
fn carried_partials(
    m: &Articulation,
    contact: &JointContact,
    fr: &Frames,
    dq: &mut Matrix,
    dv: &mut Matrix,
) {
    for &(link, p, radius) in &contact.points {
        let (xa, _) = &fr.motion[link];
        let x = world_of(xa, p);
        let va = fr.world_v[link];
        let path_a = fr.path(m, link);
        for (carrier, shape) in &contact.link_shapes {
            if *carrier == link {
                continue;
            }
            let (xb, _) = &fr.motion[*carrier];
            let vb = fr.world_v[*carrier];
            let rel = va.sub(&vb);
            let xd_rel = at(&rel, x);
            let e = &xb.e;
            let y: [f64; 3] = mat3(e, std::array::from_fn(|a| x[a] - xb.r[a]));
            let w = mat3(e, xd_rel);
            let (fl, ky, kw) = force(&contact.law, &ball(shape, radius), y, w);
            let f: [f64; 3] = std::array::from_fn(|a| (0..3).map(|b| e[b][a] * fl[b]).sum());
            let (kx, kv) = (to_world(e, &ky), to_world(e, &kw));
            if f.iter()
                .chain(kx.iter().flatten())
                .chain(kv.iter().flatten())
                .all(|&z| z == 0.0)
            {
                continue;
            }
            let wrench = Force { n: cross(x, f), f };
            // The union of both paths.
            let path_b = fr.path(m, *carrier);
            let mut dofs: Vec<PairDof> = path_a
                .iter()
                .map(|&(dof, column, parent_v, depth)| PairDof {
                    dof,
                    column,
                    parent_v,
                    on_a: Some(depth),
                    on_b: path_b.iter().find(|t| t.0 == dof).map(|t| t.3),
                })
                .collect();
            for &(dof, column, parent_v, depth) in &path_b {
                if !dofs.iter().any(|t| t.dof == dof) {
                    dofs.push(PairDof {
                        dof,
                        column,
                        parent_v,
                        on_a: None,
                        on_b: Some(depth),
                    });
                }
            }
            // Per j: ∂f/∂δ_j, J_j(x), J_j ×* F.
            let per_j: Vec<([f64; 3], [f64; 3], Force<f64>)> = dofs
                .iter()
                .map(|d| {
                    let (jc, pv, (a, b)) = (&d.column, &d.parent_v, d.signs());
                    let jx = at(jc, x);
                    let dvrel = jc
                        .cross_motion(&va.sub(pv))
                        .scale(a)
                        .sub(&jc.cross_motion(&vb.sub(pv)).scale(b));
                    let turn_f = cross(jc.w, f);
                    let turn_v = cross(jc.w, xd_rel);
                    let spin = cross(rel.w, jx);
                    let dvx = at(&dvrel, x);
                    let kxd = mat3(&kx, jx.map(|z| z * (a - b)));
                    let kvd = mat3(
                        &kv,
                        std::array::from_fn(|r| -b * turn_v[r] + dvx[r] + a * spin[r]),
                    );
                    let df = std::array::from_fn(|r| b * turn_f[r] + kxd[r] + kvd[r]);
                    (df, jx, jc.cross_force(&wrench))
                })
                .collect();
            for k in &dofs {
                let (ka, kb) = k.signs();
                let ck = ka - kb;
                if ck == 0.0 {
                    continue;
                }
                let (jk, jkx) = (&k.column, at(&k.column, x));
                for (j, (df, jx, carried)) in dofs.iter().zip(&per_j) {
                    let (a, b) = j.signs();
                    let carries = match (k.on_a, j.on_a, k.on_b, j.on_b) {
                        (Some(dk), Some(dj), _, _) if dj <= dk => true,
                        (_, _, Some(dk), Some(dj)) => dj <= dk,
                        _ => false,
                    };
                    let mut g = dot3(jkx, *df) + dot3(jk.w, cross(jx.map(|z| z * a), f));
                    if carries {
                        g -= jk.dot(carried);
                    }
                    dq[k.dof][j.dof] += ck * g;
                    dv[k.dof][j.dof] += ck * (a - b) * dot3(jkx, mat3(&kv, *jx));
                }
            }
        }
    }
}
