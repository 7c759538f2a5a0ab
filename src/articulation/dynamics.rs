//! RNEA, CRBA and ABA (RBDA Tables 5.1, 6.2, 7.1), written once for any scalar: `f64` for
//! simulation, dual numbers for exact derivatives. Gravity enters as the base acceleration
//! `a₀ = −a_g`; armature is added to the joint-space inertia in all three.

use super::Real;
use super::model::Articulation;
use super::spatial::{
    Composite, Force, Inertia, Mat6, Motion, Transform, c, congruence, mat6_vec, solve_small,
};

/// Per link: `ⁱX_λ`, the motion subspace `S_i` and the joint velocity `v_J = S_i q̇_i`.
pub(super) struct Kinematics<T> {
    pub(super) x: Vec<Transform<T>>,
    pub(super) s: Vec<Vec<Motion<T>>>,
}

pub(super) fn kinematics<T: Real>(m: &Articulation, q: &[T]) -> Kinematics<T> {
    let offsets = m.offsets();
    let (mut x, mut s) = (Vec::new(), Vec::new());
    for (l, &(iq, _)) in m.links.iter().zip(&offsets) {
        let (xj, sj) = l.joint.kind.calc(&q[iq..iq + l.joint.kind.nq()]);
        x.push(xj.after(&l.joint.placement.lift()));
        s.push(sj);
    }
    Kinematics { x, s }
}

/// `Σ_k S_k·u_k` over a joint's columns.
fn combine<T: Real>(s: &[Motion<T>], u: &[T]) -> Motion<T> {
    s.iter()
        .zip(u)
        .fold(Motion::zero(), |acc, (sk, &uk)| acc.add(&sk.scale(uk)))
}

fn base_acceleration<T: Real>(m: &Articulation) -> Motion<T> {
    Motion {
        w: [c(0.0); 3],
        v: m.gravity.map(|g| c(-g)),
    }
}

/// Inverse dynamics `τ = M(q)q̈ + C(q, q̇)` (gravity included), `nv` entries.
pub fn rnea<T: Real>(m: &Articulation, q: &[T], v: &[T], a: &[T]) -> Vec<T> {
    let inertias: Vec<Inertia<T>> = m.links.iter().map(|l| l.inertia.lift()).collect();
    rnea_with(m, &inertias, q, v, a)
}

/// [`rnea`] with the links' inertias given (in any scalar: dual parts give `∂τ/∂` a link's
/// mass or centre of mass).
pub fn rnea_with<T: Real>(
    m: &Articulation,
    inertias: &[Inertia<T>],
    q: &[T],
    v: &[T],
    a: &[T],
) -> Vec<T> {
    let k = kinematics(m, q);
    let offsets = m.offsets();
    let n = m.links.len();
    let (mut vel, mut acc, mut f) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (i, l) in m.links.iter().enumerate() {
        let (iv, nv) = (offsets[i].1, l.joint.kind.nv());
        let vj = combine(&k.s[i], &v[iv..iv + nv]);
        let (vp, ap) = match l.parent {
            Some(p) => (vel[p], acc[p]),
            None => (Motion::zero(), base_acceleration(m)),
        };
        let vi = k.x[i].motion(&vp).add(&vj);
        let ai = k.x[i]
            .motion(&ap)
            .add(&combine(&k.s[i], &a[iv..iv + nv]))
            .add(&vi.cross_motion(&vj));
        let ine = inertias[i];
        f.push(ine.apply(&ai).add(&vi.cross_force(&ine.apply(&vi))));
        vel.push(vi);
        acc.push(ai);
    }
    let mut tau = vec![c::<T>(0.0); m.nv()];
    for i in (0..n).rev() {
        let l = &m.links[i];
        let iv = offsets[i].1;
        for (j, sj) in k.s[i].iter().enumerate() {
            tau[iv + j] = sj.dot(&f[i]) + a[iv + j] * c::<T>(l.joint.armature);
        }
        if let Some(p) = l.parent {
            let back = k.x[i].inv_force(&f[i]);
            f[p] = f[p].add(&back);
        }
    }
    tau
}

/// The joint-space inertia `M(q)` (`nv × nv`, armature on the diagonal).
pub fn crba<T: Real>(m: &Articulation, q: &[T]) -> Vec<Vec<T>> {
    let k = kinematics(m, q);
    let offsets = m.offsets();
    let nv = m.nv();
    let mut ic: Vec<Composite<T>> = m
        .links
        .iter()
        .map(|l| Composite::of(&l.inertia.lift::<T>()))
        .collect();
    let mut h = vec![vec![c::<T>(0.0); nv]; nv];
    for i in (0..m.links.len()).rev() {
        let l = &m.links[i];
        if let Some(p) = l.parent {
            ic[p] = ic[p].add(&ic[i].expressed_in(&k.x[i]));
        }
        let iv = offsets[i].1;
        for (a, sa) in k.s[i].iter().enumerate() {
            let mut fv = ic[i].apply(sa);
            for (b, sb) in k.s[i].iter().enumerate() {
                h[iv + a][iv + b] = sb.dot(&fv);
            }
            h[iv + a][iv + a] += c::<T>(l.joint.armature);
            let mut j = i;
            while let Some(p) = m.links[j].parent {
                fv = k.x[j].inv_force(&fv);
                j = p;
                let jv = offsets[j].1;
                for (b, sb) in k.s[j].iter().enumerate() {
                    let val = sb.dot(&fv);
                    h[iv + a][jv + b] = val;
                    h[jv + b][iv + a] = val;
                }
            }
        }
    }
    h
}

/// Forward dynamics `q̈ = M⁻¹(τ − C)` by the articulated-body algorithm; `None` where a joint's
/// articulated inertia `D_i` is singular (a massless subtree without armature).
pub fn aba<T: Real>(m: &Articulation, q: &[T], v: &[T], tau: &[T]) -> Option<Vec<T>> {
    let k = kinematics(m, q);
    let offsets = m.offsets();
    let n = m.links.len();
    let mut vel: Vec<Motion<T>> = Vec::with_capacity(n);
    let mut cb = Vec::with_capacity(n);
    let mut ia: Vec<Mat6<T>> = Vec::with_capacity(n);
    let mut pa: Vec<Force<T>> = Vec::with_capacity(n);
    for (i, l) in m.links.iter().enumerate() {
        let (iv, nv) = (offsets[i].1, l.joint.kind.nv());
        let vj = combine(&k.s[i], &v[iv..iv + nv]);
        let vp = l.parent.map_or(Motion::zero(), |p| vel[p]);
        let vi = k.x[i].motion(&vp).add(&vj);
        let ine = l.inertia.lift::<T>();
        cb.push(vi.cross_motion(&vj));
        ia.push(ine.matrix());
        pa.push(vi.cross_force(&ine.apply(&vi)));
        vel.push(vi);
    }
    // Per velocity column: U = I^A S and u = τ − Sᵀp^A; per link: D = SᵀU + armature.
    let nvt = m.nv();
    let mut us: Vec<[T; 6]> = vec![[c(0.0); 6]; nvt];
    let mut uu: Vec<T> = vec![c(0.0); nvt];
    let mut ds: Vec<Vec<Vec<T>>> = vec![Vec::new(); n];
    let mut d1: Vec<T> = vec![c(0.0); nvt];
    for i in (0..n).rev() {
        let l = &m.links[i];
        let iv = offsets[i].1;
        let s = &k.s[i];
        let arm = c::<T>(l.joint.armature);
        for (a, sa) in s.iter().enumerate() {
            us[iv + a] = mat6_vec(&ia[i], sa.array());
            uu[iv + a] = tau[iv + a] - sa.dot(&pa[i]);
        }
        let u_cols = &us[iv..iv + s.len()];
        let u = &uu[iv..iv + s.len()];
        // D⁻¹Uᵀ (rows per coordinate) and D⁻¹u: a division for one coordinate.
        let mut dinv_ut = [[c::<T>(0.0); 6]; 6];
        let mut dinv_u = [c::<T>(0.0); 6];
        if s.len() == 1 {
            let d = s[0].dot(&Force::from_array(u_cols[0])) + arm;
            if d.re() == 0.0 || !d.re().is_finite() {
                return None;
            }
            d1[iv] = d;
            dinv_ut[0] = u_cols[0].map(|x| x / d);
            dinv_u[0] = u[0] / d;
        } else if s.len() > 1 {
            let d: Vec<Vec<T>> = s
                .iter()
                .enumerate()
                .map(|(a, sa)| {
                    u_cols
                        .iter()
                        .enumerate()
                        .map(|(b, ub)| {
                            let extra: T = if a == b { arm } else { c(0.0) };
                            sa.dot(&Force::from_array(*ub)) + extra
                        })
                        .collect()
                })
                .collect();
            for col in 0..6 {
                let x = solve_small(&d, &u_cols.iter().map(|uc| uc[col]).collect::<Vec<_>>())?;
                for (b, xb) in x.into_iter().enumerate() {
                    dinv_ut[b][col] = xb;
                }
            }
            dinv_u[..s.len()].copy_from_slice(&solve_small(&d, u)?);
            ds[i] = d;
        }
        if let Some(p) = l.parent {
            // Iᵃ = I^A − U D⁻¹ Uᵀ, pᵃ = p^A + Iᵃc + U D⁻¹u.
            let mut iaa = ia[i];
            for r in 0..6 {
                for col in 0..6 {
                    let corr = u_cols
                        .iter()
                        .zip(&dinv_ut)
                        .fold(c::<T>(0.0), |acc, (ub, db)| acc + ub[r] * db[col]);
                    iaa[r][col] -= corr;
                }
            }
            let ic = mat6_vec(&iaa, cb[i].array());
            let mut pav = pa[i].array();
            for r in 0..6 {
                pav[r] += ic[r]
                    + u_cols
                        .iter()
                        .zip(&dinv_u)
                        .fold(c::<T>(0.0), |acc, (ub, &x)| acc + ub[r] * x);
            }
            let add = congruence(&k.x[i].matrix(), &iaa);
            for r in 0..6 {
                for col in 0..6 {
                    ia[p][r][col] += add[r][col];
                }
            }
            pa[p] = pa[p].add(&k.x[i].inv_force(&Force::from_array(pav)));
        }
    }
    let mut qdd = vec![c::<T>(0.0); nvt];
    let mut acc: Vec<Motion<T>> = Vec::with_capacity(n);
    for (i, l) in m.links.iter().enumerate() {
        let iv = offsets[i].1;
        let nvi = k.s[i].len();
        let ap = l.parent.map_or(base_acceleration(m), |p| acc[p]);
        let a1 = k.x[i].motion(&ap).add(&cb[i]);
        if nvi == 1 {
            qdd[iv] = (uu[iv] - a1.dot(&Force::from_array(us[iv]))) / d1[iv];
        } else if nvi > 1 {
            let rhs: Vec<T> = (iv..iv + nvi)
                .map(|c| uu[c] - a1.dot(&Force::from_array(us[c])))
                .collect();
            let x = solve_small(&ds[i], &rhs)?;
            qdd[iv..iv + nvi].copy_from_slice(&x);
        }
        acc.push(a1.add(&combine(&k.s[i], &qdd[iv..iv + nvi])));
    }
    Some(qdd)
}

/// `q ⊕ δ` over the whole tree (`δ` in the tangent space, `nv` entries).
pub fn integrate<T: Real>(m: &Articulation, q: &[T], d: &[T]) -> Vec<T> {
    m.links
        .iter()
        .zip(m.offsets())
        .flat_map(|(l, (iq, iv))| {
            let k = l.joint.kind;
            k.integrate(&q[iq..iq + k.nq()], &d[iv..iv + k.nv()])
        })
        .collect()
}

/// `q₁ ⊖ q₀` over the whole tree (`nv` entries).
pub fn difference<T: Real>(m: &Articulation, q0: &[T], q1: &[T]) -> Vec<T> {
    m.links
        .iter()
        .zip(m.offsets())
        .flat_map(|(l, (iq, _))| {
            let k = l.joint.kind;
            k.difference(&q0[iq..iq + k.nq()], &q1[iq..iq + k.nq()])
        })
        .collect()
}

/// Per link: `ⁱX_0`, the transform from world coordinates to the link's.
pub fn placements<T: Real>(m: &Articulation, q: &[T]) -> Vec<Transform<T>> {
    placements_from(m, &kinematics(m, q))
}

/// [`placements`] from the joints' transforms already computed.
pub(super) fn placements_from<T: Real>(m: &Articulation, k: &Kinematics<T>) -> Vec<Transform<T>> {
    let mut out: Vec<Transform<T>> = Vec::with_capacity(m.links.len());
    for (i, l) in m.links.iter().enumerate() {
        let x = match l.parent {
            Some(p) => k.x[i].after(&out[p]),
            None => k.x[i],
        };
        out.push(x);
    }
    out
}

/// The world position (m) of the point `p` of link `link` (link frame) at `q`.
pub fn world_point<T: Real>(m: &Articulation, q: &[T], link: usize, p: [f64; 3]) -> [T; 3] {
    let x = &placements(m, q)[link];
    std::array::from_fn(|a| (0..3).fold(x.r[a], |s, b| s + x.e[b][a] * c::<T>(p[b])))
}

/// [`world_point`] at `q` (f64) and its Jacobian in the tangent space of `q` (`3 × nv`, by
/// one dual-number pass per direction through `q ⊕ δ`).
pub fn world_point_jacobian(
    m: &Articulation,
    q: &[f64],
    link: usize,
    p: [f64; 3],
) -> ([f64; 3], Vec<Vec<f64>>) {
    use num_dual::Dual64;
    let ql: Vec<Dual64> = q.iter().map(|&x| Dual64::from(x)).collect();
    let nv = m.nv();
    let cols: Vec<[f64; 3]> = (0..nv)
        .map(|k| {
            let d: Vec<Dual64> = (0..nv)
                .map(|j| Dual64::new(0.0, f64::from(u8::from(j == k))))
                .collect();
            world_point(m, &integrate(m, &ql, &d), link, p).map(|y| y.eps)
        })
        .collect();
    (
        world_point(m, q, link, p),
        (0..3)
            .map(|a| cols.iter().map(|c| c[a]).collect())
            .collect(),
    )
}
