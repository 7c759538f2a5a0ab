//! Levenberg–Marquardt within a box, with the damping adapted by the gain ratio (Nielsen's
//! rule, as in Madsen, Nielsen & Tingleff, "Methods for non-linear least squares problems",
//! 2004, §3.2): for least-squares problems whose Gauss–Newton step is far too long (many
//! parameters, few informative residuals) and a fixed damping either halves every step or
//! crawls.

use super::{Residuals, Trace, check_box, clamp_to, dense_gn_step, free_parameters};
use crate::error::Result;

/// Residuals only (the line-search and trial evaluations need no Jacobian).
pub type ResidualsOnly<'a> = dyn Fn(&[f64]) -> Result<Vec<f64>> + 'a;

/// Levenberg–Marquardt on `L = |r(p)|²` within `lo ≤ p ≤ hi`. Each iteration takes the
/// residuals' Jacobian at `p` (`jacobian`), frees the parameters not held on a bound by the
/// gradient `Jᵀr`, solves `(J_FᵀJ_F + μI)Δ_F = −J_Fᵀr`, and tries `s = P(p + Δ) − p` (`P` the
/// clamp to the box) with `residuals` alone. The gain ratio `ρ` of the actual to the model's
/// reduction `−2sᵀJᵀr − |Js|²` sets the damping: accepted (`ρ > 0`) →
/// `μ ← μ·max(1/3, 1 − (2ρ − 1)³)`, rejected → `μ ← μν`, `ν ← 2ν`. Stops below `target`,
/// where every parameter is held, after 30 rejections in a row, or after `max_iters`
/// iterations (accepted steps). `evaluations` counts trials and Jacobians.
pub fn levenberg_marquardt_box(
    residuals: &ResidualsOnly<'_>,
    jacobian: &Residuals<'_>,
    p0: &[f64],
    (lo, hi): (&[f64], &[f64]),
    mu0: f64,
    max_iters: usize,
    target: f64,
) -> Result<Trace> {
    let n = p0.len();
    check_box("levenberg_marquardt_box", n, (lo, hi))?;
    let loss = |r: &[f64]| r.iter().map(|x| x * x).sum::<f64>();
    let mut p = p0.to_vec();
    clamp_to(&mut p, Some((lo, hi)));
    let (mut r, mut jac) = jacobian(&p)?;
    let mut losses = vec![loss(&r)];
    let (mut iterations, mut evaluations) = (0, 1);
    let (mut mu, mut nu) = (mu0, 2.0);
    'iterations: while iterations < max_iters && *losses.last().expect("a loss") > target {
        let (g, free) = free_parameters(&p, &r, &jac, (lo, hi));
        if free.is_empty() {
            break;
        }
        // Marquardt's scaling: the damping acts on `diag(JᵀJ)`, i.e. on parameters
        // rescaled to unit column norms.
        let scale: Vec<f64> = free
            .iter()
            .map(|&i| {
                let d = jac.iter().map(|row| row[i] * row[i]).sum::<f64>();
                if d > 0.0 { 1.0 / d.sqrt() } else { 1.0 }
            })
            .collect();
        let columns: Vec<Vec<f64>> = jac
            .iter()
            .map(|row| free.iter().zip(&scale).map(|(&i, s)| row[i] * s).collect())
            .collect();
        let current = *losses.last().expect("a loss");
        for _ in 0..30 {
            let delta = dense_gn_step(&r, &columns, mu)?;
            let mut q = p.clone();
            for ((&i, d), sc) in free.iter().zip(&delta).zip(&scale) {
                q[i] = (p[i] + d * sc).clamp(lo[i], hi[i]);
            }
            let s: Vec<f64> = q.iter().zip(&p).map(|(a, b)| a - b).collect();
            let js: Vec<f64> = jac
                .iter()
                .map(|row| row.iter().zip(&s).map(|(a, b)| a * b).sum())
                .collect();
            let predicted = -2.0 * s.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
                - js.iter().map(|x| x * x).sum::<f64>();
            evaluations += 1;
            let trial = residuals(&q).ok().map(|rq| loss(&rq));
            match trial {
                Some(lq) if lq < current && predicted > 0.0 => {
                    let rho = (current - lq) / predicted;
                    mu *= (1.0 - (2.0 * rho - 1.0).powi(3)).max(1.0 / 3.0);
                    nu = 2.0;
                    p = q;
                    (r, jac) = jacobian(&p)?;
                    evaluations += 1;
                    losses.push(loss(&r));
                    iterations += 1;
                    continue 'iterations;
                }
                _ => {
                    mu *= nu;
                    nu *= 2.0;
                }
            }
        }
        break;
    }
    Ok(Trace {
        losses,
        params: p,
        iterations,
        evaluations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock as residuals `(10(y − x²), 1 − x)`: from (−1.2, 1) to (1, 1); with x ≤ 0.5
    /// to the bounded minimiser (0.5, 0.25); and a badly scaled one (a parameter of unit
    /// 1e-4) solved as fast, which is what Marquardt's scaling buys.
    #[test]
    fn levenberg_marquardt_solves_rosenbrock_in_and_out_of_a_box() {
        let solve = |scale: f64, hi: f64| {
            let res = move |p: &[f64]| -> Result<Vec<f64>> {
                let x = p[0] * scale;
                Ok(vec![10.0 * (p[1] - x * x), 1.0 - x])
            };
            let jac = move |p: &[f64]| -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
                let x = p[0] * scale;
                Ok((
                    res(p)?,
                    vec![vec![-20.0 * x * scale, 10.0], vec![-scale, 0.0]],
                ))
            };
            let t = levenberg_marquardt_box(
                &res,
                &jac,
                &[-1.2 / scale, 1.0],
                (&[-5.0 / scale, -5.0], &[hi / scale, 5.0]),
                1e-3,
                200,
                1e-30,
            )
            .unwrap();
            (t.params[0] * scale, t.params[1], t.iterations)
        };
        for scale in [1.0, 1e-4] {
            let (x, y, it) = solve(scale, 5.0);
            assert!(
                (x - 1.0).abs() < 1e-10 && (y - 1.0).abs() < 1e-10,
                "{x} {y}"
            );
            assert!(it <= 30, "{it} iterations at scale {scale}");
            let (x, y, _) = solve(scale, 0.5);
            assert!(
                (x - 0.5).abs() < 1e-12 && (y - 0.25).abs() < 1e-9,
                "{x} {y}"
            );
        }
    }
}
