//! Exact first derivatives of RNEA and ABA by forward-mode dual numbers (one dual pass per
//! tangent direction), configuration derivatives in the tangent space (`q ⊕ ε·e_k`), and the
//! forward-dynamics identities `∂q̈/∂(q, v) = −M⁻¹·∂RNEA/∂(q, v)|_{a = q̈}`, `∂q̈/∂τ = M⁻¹`.

use super::dynamics::{aba, crba, integrate, rnea};
use super::model::Articulation;
use super::spatial::solve_small;
use crate::error::{DiffsimError, Result};
use num_dual::Dual64;

/// A dense `nv × nv` matrix, row-major.
pub type Matrix = Vec<Vec<f64>>;

/// `(τ, ∂τ/∂q, ∂τ/∂v)` of RNEA at `(q, v, a)`.
pub fn rnea_derivatives(
    m: &Articulation,
    q: &[f64],
    v: &[f64],
    a: &[f64],
) -> (Vec<f64>, Matrix, Matrix) {
    let nv = m.nv();
    let lift = |x: &[f64]| -> Vec<Dual64> { x.iter().map(|&r| Dual64::from(r)).collect() };
    let (qd, vd, ad) = (lift(q), lift(v), lift(a));
    let mut dq = vec![vec![0.0; nv]; nv];
    let mut dv = vec![vec![0.0; nv]; nv];
    for k in 0..nv {
        let e: Vec<Dual64> = (0..nv)
            .map(|j| Dual64::new(0.0, f64::from(u8::from(j == k))))
            .collect();
        let tq = rnea(m, &integrate(m, &qd, &e), &vd, &ad);
        let vk: Vec<Dual64> = vd.iter().zip(&e).map(|(x, y)| *x + *y).collect();
        let tv = rnea(m, &qd, &vk, &ad);
        for r in 0..nv {
            dq[r][k] = tq[r].eps;
            dv[r][k] = tv[r].eps;
        }
    }
    (rnea(m, q, v, a), dq, dv)
}

/// The derivatives of forward dynamics at `(q, v, τ)`.
pub struct AbaDerivatives {
    /// `q̈`.
    pub qdd: Vec<f64>,
    /// `∂q̈/∂q` (tangent space).
    pub dq: Matrix,
    /// `∂q̈/∂v`.
    pub dv: Matrix,
    /// `∂q̈/∂τ = M⁻¹`.
    pub minv: Matrix,
}

/// `q̈ = ABA(q, v, τ)` and its derivatives, from RNEA's at `a = q̈`.
pub fn aba_derivatives(
    m: &Articulation,
    q: &[f64],
    v: &[f64],
    tau: &[f64],
) -> Result<AbaDerivatives> {
    let singular = || {
        DiffsimError::config(
            "the joint-space inertia is singular (a massless subtree without armature?)",
        )
    };
    let qdd = aba(m, q, v, tau).ok_or_else(singular)?;
    let (_, rq, rv) = rnea_derivatives(m, q, v, &qdd);
    let mass = crba(m, q);
    let nv = m.nv();
    let solve_cols = |b: &Matrix| -> Result<Matrix> {
        let cols: Vec<Vec<f64>> = (0..nv)
            .map(|k| {
                solve_small(&mass, &(0..nv).map(|r| b[r][k]).collect::<Vec<_>>())
                    .ok_or_else(singular)
            })
            .collect::<Result<_>>()?;
        Ok((0..nv)
            .map(|r| (0..nv).map(|k| cols[k][r]).collect())
            .collect())
    };
    let neg = |x: Matrix| -> Matrix {
        x.into_iter()
            .map(|r| r.into_iter().map(|v| -v).collect())
            .collect()
    };
    let identity: Matrix = (0..nv)
        .map(|r| (0..nv).map(|k| f64::from(u8::from(r == k))).collect())
        .collect();
    Ok(AbaDerivatives {
        qdd,
        dq: neg(solve_cols(&rq)?),
        dv: neg(solve_cols(&rv)?),
        minv: solve_cols(&identity)?,
    })
}
