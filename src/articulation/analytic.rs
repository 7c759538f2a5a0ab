//! The analytic first derivatives of inverse dynamics (Carpentier & Mansard, "Analytical
//! Derivatives of Rigid Body Dynamics Algorithms", RSS 2018), in O(nv·depth).
//!
//! Everything is expressed in the world frame. Perturbing joint `k` by `δ` in its tangent space
//! moves the whole subtree of `k` rigidly by the world twist `s = J_k δ` and, on top of that,
//! changes the subtree's velocities and accelerations uniformly by `dV_k δ` and `dA_k δ`:
//!
//! - `dV_k = v_λ × J_k`, `dA_k = a_λ × J_k + v_λ × dV_k` (`λ` the parent of `k`, `a` the
//!   spatial acceleration with gravity, `a₀ = −g`);
//! - a body `i` of the subtree also sees `−v_i × dV_k` in its acceleration, which the
//!   composite `B_i = (v_i×*) Y_i − Y_i (v_i×) + (h_i ×̄)` carries (`Y_i` the world inertia,
//!   `h_i = Y_i v_i`, `(h×̄) m = m ×* h`).
//!
//! With composites `Yᶜ_j`, `Bᶜ_j` and subtree forces `F_j` (`τ_j = J_jᵀ F_j`), for `i ⪯ j`:
//! `∂τ_i/∂δ_j = J_iᵀ (Bᶜ_j dV_j + Yᶜ_j dA_j + [i ≠ j] J_j ×* F_j)` (the rigid motion of the
//! subtree leaves `J_jᵀ F_j` unchanged) and, for `j ≻ i`,
//! `∂τ_j/∂δ_i = (Yᶜ_j J_j)ᵀ dA_i + (Bᶜ_jᵀ J_j)ᵀ dV_i`; the velocity derivatives are the same
//! with `dV → J`, `dA → dAdv = v_k × J_k + dV_k`.

use super::dynamics::kinematics;
use super::model::Articulation;
use super::spatial::Matrix;
use super::spatial::{Composite, Transform};

type V6 = [f64; 6];
type M6 = [[f64; 6]; 6];

/// `v × m` (motion cross motion), angular first.
fn crm(v: &V6, m: &V6) -> V6 {
    let (w, u) = ([v[0], v[1], v[2]], [v[3], v[4], v[5]]);
    let (mw, mu) = ([m[0], m[1], m[2]], [m[3], m[4], m[5]]);
    let a = cross(w, mw);
    let b = cross(w, mu);
    let c = cross(u, mw);
    [a[0], a[1], a[2], b[0] + c[0], b[1] + c[1], b[2] + c[2]]
}

/// `v ×* f` (motion cross force).
fn crf(v: &V6, f: &V6) -> V6 {
    let (w, u) = ([v[0], v[1], v[2]], [v[3], v[4], v[5]]);
    let (n, l) = ([f[0], f[1], f[2]], [f[3], f[4], f[5]]);
    let a = cross(w, n);
    let b = cross(u, l);
    let c = cross(w, l);
    [a[0] + b[0], a[1] + b[1], a[2] + b[2], c[0], c[1], c[2]]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn mv(m: &M6, x: &V6) -> V6 {
    std::array::from_fn(|i| (0..6).map(|j| m[i][j] * x[j]).sum())
}

fn mtv(m: &M6, x: &V6) -> V6 {
    std::array::from_fn(|i| (0..6).map(|j| m[j][i] * x[j]).sum())
}

fn dot(a: &V6, b: &V6) -> f64 {
    (0..6).map(|k| a[k] * b[k]).sum()
}

fn plus(a: &V6, b: &V6) -> V6 {
    std::array::from_fn(|k| a[k] + b[k])
}

fn add_to(a: &mut M6, b: &M6) {
    for (ra, rb) in a.iter_mut().zip(b) {
        for (x, y) in ra.iter_mut().zip(rb) {
            *x += y;
        }
    }
}

/// RNEA and its derivatives at `(q, v, a)`.
pub struct RneaPartials {
    /// `τ = RNEA(q, v, a)` (armature included).
    pub tau: Vec<f64>,
    /// `∂τ/∂q` (tangent space).
    pub dq: Matrix,
    /// `∂τ/∂v`.
    pub dv: Matrix,
    /// `∂τ/∂a`: the joint-space inertia `M` (armature included).
    pub mass: Matrix,
}

/// Per velocity column: the world motion subspace `J` and the forward pass's `dV`, `dA`,
/// `dAdv`.
struct Column {
    j: V6,
    dv: V6,
    da: V6,
    dadv: V6,
}

/// `τ`, `∂τ/∂q`, `∂τ/∂v` and `M` of inverse dynamics at `(q, v, a)`, analytically.
pub fn rnea_partials(m: &Articulation, q: &[f64], v: &[f64], a: &[f64]) -> RneaPartials {
    let nv = m.nv();
    let n = m.links.len();
    let kin = kinematics(m, q);
    let offsets = m.offsets();
    let gravity: V6 = [0.0, 0.0, 0.0, -m.gravity[0], -m.gravity[1], -m.gravity[2]];
    // Forward: world placements, velocities, accelerations, inertias, forces.
    let mut x0: Vec<Transform<f64>> = Vec::with_capacity(n);
    let (mut ov, mut oa) = (vec![[0.0; 6]; n], vec![[0.0; 6]; n]);
    let mut yc: Vec<M6> = Vec::with_capacity(n);
    let mut bc: Vec<M6> = Vec::with_capacity(n);
    let mut f: Vec<V6> = Vec::with_capacity(n);
    let mut cols: Vec<Column> = Vec::with_capacity(nv);
    for (i, l) in m.links.iter().enumerate() {
        let xi = match l.parent {
            Some(p) => kin.x[i].after(&x0[p]),
            None => kin.x[i],
        };
        let (vp, ap) = l.parent.map_or(([0.0; 6], gravity), |p| (ov[p], oa[p]));
        let iv = offsets[i].1;
        let mut vj = [0.0; 6];
        let mut aj = [0.0; 6];
        let mut js = Vec::with_capacity(kin.s[i].len());
        for (k, s) in kin.s[i].iter().enumerate() {
            let j = xi.inv_motion(s).array();
            for r in 0..6 {
                vj[r] += j[r] * v[iv + k];
                aj[r] += j[r] * a[iv + k];
            }
            js.push(j);
        }
        ov[i] = plus(&vp, &vj);
        oa[i] = plus(&plus(&ap, &aj), &crm(&ov[i], &vj));
        let y = Composite::of(&l.inertia).expressed_in(&xi).matrix();
        let h = mv(&y, &ov[i]);
        f.push(plus(&mv(&y, &oa[i]), &crf(&ov[i], &h)));
        // B = (v×*) Y − Y (v×) + (h×̄).
        let mut b = [[0.0; 6]; 6];
        for k in 0..6 {
            let mut e = [0.0; 6];
            e[k] = 1.0;
            let yk: V6 = std::array::from_fn(|r| y[r][k]);
            let col = plus(
                &crf(&ov[i], &yk),
                &plus(&crf(&e, &h), &mv(&y, &crm(&ov[i], &e)).map(|x| -x)),
            );
            for r in 0..6 {
                b[r][k] = col[r];
            }
        }
        yc.push(y);
        bc.push(b);
        for j in js {
            let dv = if l.parent.is_some() {
                crm(&vp, &j)
            } else {
                [0.0; 6]
            };
            cols.push(Column {
                j,
                dv,
                da: plus(&crm(&ap, &j), &crm(&vp, &dv)),
                dadv: plus(&crm(&ov[i], &j), &dv),
            });
        }
        x0.push(xi);
    }
    // Backward: composites, τ and the derivative blocks.
    let mut tau = vec![0.0; nv];
    let mut dq = vec![vec![0.0; nv]; nv];
    let mut dvm = vec![vec![0.0; nv]; nv];
    let mut mass = vec![vec![0.0; nv]; nv];
    let (mut dfda, mut dfdq, mut dfdv, mut dytj) = (
        vec![[0.0; 6]; nv],
        vec![[0.0; 6]; nv],
        vec![[0.0; 6]; nv],
        vec![[0.0; 6]; nv],
    );
    for jl in (0..n).rev() {
        let iv = offsets[jl].1;
        let range = iv..iv + m.links[jl].joint.kind.nv();
        for c in range.clone() {
            let col = &cols[c];
            tau[c] = dot(&col.j, &f[jl]);
            dfda[c] = mv(&yc[jl], &col.j);
            dfdq[c] = plus(&mv(&bc[jl], &col.dv), &mv(&yc[jl], &col.da));
            dfdv[c] = plus(&mv(&bc[jl], &col.j), &mv(&yc[jl], &col.dadv));
            dytj[c] = mtv(&bc[jl], &col.j);
        }
        for a in range.clone() {
            for b in range.clone() {
                dq[a][b] = dot(&cols[a].j, &dfdq[b]);
                dvm[a][b] = dot(&cols[a].j, &dfdv[b]);
                mass[a][b] = dot(&cols[a].j, &dfda[b]);
            }
        }
        // An ancestor's `∂τ/∂δ_b` also sees the subtree's force turned rigidly: `J_b ×* F`.
        let moved: Vec<V6> = range
            .clone()
            .map(|b| plus(&dfdq[b], &crf(&cols[b].j, &f[jl])))
            .collect();
        let mut anc = m.links[jl].parent;
        while let Some(il) = anc {
            let ia = offsets[il].1;
            for a in ia..ia + m.links[il].joint.kind.nv() {
                for (b, mb) in range.clone().zip(&moved) {
                    dq[a][b] = dot(&cols[a].j, mb);
                    dvm[a][b] = dot(&cols[a].j, &dfdv[b]);
                    mass[a][b] = dot(&cols[a].j, &dfda[b]);
                    mass[b][a] = mass[a][b];
                    dq[b][a] = dot(&dfda[b], &cols[a].da) + dot(&dytj[b], &cols[a].dv);
                    dvm[b][a] = dot(&dfda[b], &cols[a].dadv) + dot(&dytj[b], &cols[a].j);
                }
            }
            anc = m.links[il].parent;
        }
        if let Some(p) = m.links[jl].parent {
            let (y, b, fj) = (yc[jl], bc[jl], f[jl]);
            add_to(&mut yc[p], &y);
            add_to(&mut bc[p], &b);
            f[p] = plus(&f[p], &fj);
        }
    }
    for (l, (_, iv)) in m.links.iter().zip(&offsets) {
        for c in *iv..iv + l.joint.kind.nv() {
            mass[c][c] += l.joint.armature;
            tau[c] += l.joint.armature * a[c];
        }
    }
    RneaPartials {
        tau,
        dq,
        dv: dvm,
        mass,
    }
}
