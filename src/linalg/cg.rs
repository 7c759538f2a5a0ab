//! Matrix-free (Jacobi-preconditioned) conjugate gradients on a [`Stencil`].

use super::{SolveConfig, SolveError, SolveMethod, stencil::Stencil};

/// Solves `A x = b` for one right-hand side; `x` holds the initial guess on entry.
/// Returns `(iterations, max|r|)`.
pub fn solve(
    stencil: &Stencil,
    b: &[f64],
    x: &mut [f64],
    cfg: &SolveConfig,
) -> Result<(usize, f64), SolveError> {
    let n = stencil.len();
    let inv_diag: Option<Vec<f64>> = (cfg.method == SolveMethod::JacobiCg)
        .then(|| stencil.diag.iter().map(|d| 1.0 / d).collect());
    let precond = |r: &[f64], z: &mut [f64]| match &inv_diag {
        Some(m) => z
            .iter_mut()
            .zip(r)
            .zip(m)
            .for_each(|((z, r), m)| *z = r * m),
        None => z.copy_from_slice(r),
    };
    let max_abs = |v: &[f64]| v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
    let tol = cfg.abs_tol + cfg.rel_tol * max_abs(b);
    let mut r = vec![0.0; n];
    stencil.apply(x, &mut r);
    r.iter_mut().zip(b).for_each(|(r, b)| *r = b - *r);
    let mut res = max_abs(&r);
    if !res.is_finite() {
        return Err(SolveError::NonFinite("right-hand side"));
    }
    if res <= tol {
        return Ok((0, res));
    }
    let mut z = vec![0.0; n];
    precond(&r, &mut z);
    let mut p = z.clone();
    let mut ap = vec![0.0; n];
    let mut rz = dot(&r, &z);
    for it in 1..=cfg.max_iters {
        stencil.apply(&p, &mut ap);
        let alpha = rz / dot(&p, &ap);
        x.iter_mut().zip(&p).for_each(|(x, p)| *x += alpha * p);
        r.iter_mut().zip(&ap).for_each(|(r, ap)| *r -= alpha * ap);
        res = max_abs(&r);
        if !res.is_finite() {
            return Err(SolveError::NonFinite("iterate"));
        }
        if res <= tol {
            return Ok((it, res));
        }
        precond(&r, &mut z);
        let rz_new = dot(&r, &z);
        let beta = rz_new / rz;
        rz = rz_new;
        p.iter_mut().zip(&z).for_each(|(p, z)| *p = z + beta * *p);
    }
    Err(SolveError::NotConverged {
        method: cfg.method,
        iterations: cfg.max_iters,
        residual: res,
        tolerance: tol,
    })
}
