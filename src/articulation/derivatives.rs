//! First derivatives of RNEA and ABA, configuration derivatives in the tangent space
//! (`q ⊕ ε·e_k`): RNEA's analytically ([`super::analytic`]), ABA's by the forward-dynamics
//! identities `∂q̈/∂(q, v) = −M⁻¹·∂RNEA/∂(q, v)|_{a = q̈}`, `∂q̈/∂τ = M⁻¹` (one Cholesky
//! factorisation of `M`); and RNEA's by forward-mode dual numbers (one dual pass per tangent
//! direction), the independent reference the analytic ones are tested against.

use super::analytic::rnea_partials;
use super::dynamics::{aba, integrate, rnea};
use super::model::Articulation;
use crate::error::{DiffsimError, Result};
use faer::Mat;
use faer::linalg::solvers::Solve;
use num_dual::Dual64;

pub use super::spatial::Matrix;

/// `(τ, ∂τ/∂q, ∂τ/∂v)` of RNEA at `(q, v, a)`, analytically (O(nv·depth)).
pub fn rnea_derivatives(
    m: &Articulation,
    q: &[f64],
    v: &[f64],
    a: &[f64],
) -> (Vec<f64>, Matrix, Matrix) {
    let p = rnea_partials(m, q, v, a);
    (p.tau, p.dq, p.dv)
}

/// `(τ, ∂τ/∂q, ∂τ/∂v)` of RNEA at `(q, v, a)` by dual numbers (O(nv²)).
pub fn rnea_derivatives_dual(
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
    let p = rnea_partials(m, q, v, &qdd);
    let nv = m.nv();
    let llt = Mat::from_fn(nv, nv, |r, c| p.mass[r][c])
        .llt(faer::Side::Lower)
        .map_err(|_| singular())?;
    let minv = llt.solve(Mat::<f64>::identity(nv, nv));
    let rhs = Mat::from_fn(nv, 2 * nv, |r, c| {
        if c < nv {
            -p.dq[r][c]
        } else {
            -p.dv[r][c - nv]
        }
    });
    let x = llt.solve(rhs);
    let rows = |f: &dyn Fn(usize, usize) -> f64| -> Matrix {
        (0..nv)
            .map(|r| (0..nv).map(|c| f(r, c)).collect())
            .collect()
    };
    Ok(AbaDerivatives {
        dq: rows(&|r, c| x[(r, c)]),
        dv: rows(&|r, c| x[(r, nv + c)]),
        minv: rows(&|r, c| minv[(r, c)]),
        qdd,
    })
}
