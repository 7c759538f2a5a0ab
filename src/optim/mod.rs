//! Optimisers on `Vec<f64>` parameters: gradient descent, Adam, L-BFGS (argmin) and
//! box-constrained L-BFGS, Gauss-Newton with dense or sparse steps and projected Gauss-Newton
//! within bounds, each recording the loss per iteration; and the finite-difference and timing
//! helpers that check and time an objective. They know no physics: an objective is a function
//! from parameters to a loss and its gradient.

use crate::error::{DiffsimError, Result};
use argmin::core::observers::{Observe, ObserverMode};
use argmin::core::{CostFunction, Error as ArgminError, Executor, Gradient, KV, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
pub use levenberg::{ResidualsOnly, levenberg_marquardt_box};
use serde::Serialize;
use std::sync::{Arc, Mutex};

mod levenberg;

/// A loss and its gradient at a parameter vector.
pub type Objective<'a> = dyn Fn(&[f64]) -> Result<(f64, Vec<f64>)> + 'a;

/// An owned [`Objective`] (a study's (loss, gradient) handed to a benchmark or a descent).
pub type Evaluation<'a> = Box<Objective<'a>>;

/// What an optimisation did.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    /// Loss at the start, then after each iteration.
    pub losses: Vec<f64>,
    /// The final parameters.
    pub params: Vec<f64>,
    /// Iterations taken.
    pub iterations: usize,
    /// Loss and gradient evaluations (line searches included).
    pub evaluations: usize,
}

/// Gradient descent `p ← P(p − lr·∇L)` for `iterations` steps, `P` the clamp to the box
/// `bounds = (lo, hi)` when given (Warp's SGD followed by its clamp kernel).
pub fn gradient_descent(
    f: &Objective<'_>,
    p0: &[f64],
    lr: f64,
    iterations: usize,
    bounds: Option<(&[f64], &[f64])>,
) -> Result<Trace> {
    first_order(f, p0, iterations, bounds, |_, p, g| {
        p.iter_mut().zip(g).for_each(|(x, g)| *x -= lr * g);
    })
}

/// `iterations` times: evaluate `f` at `p`, move `p` by `update(k, p, ∇L)` (k = 1, 2, …) and
/// clamp it to `bounds`; then evaluate the last `p`.
fn first_order(
    f: &Objective<'_>,
    p0: &[f64],
    iterations: usize,
    bounds: Option<(&[f64], &[f64])>,
    mut update: impl FnMut(usize, &mut [f64], &[f64]),
) -> Result<Trace> {
    let mut p = p0.to_vec();
    clamp_to(&mut p, bounds);
    let mut losses = Vec::new();
    for k in 1..=iterations {
        let (l, g) = f(&p)?;
        losses.push(l);
        update(k, &mut p, &g);
        clamp_to(&mut p, bounds);
    }
    losses.push(f(&p)?.0);
    Ok(Trace {
        losses,
        params: p,
        iterations,
        evaluations: iterations + 1,
    })
}

/// `p` clamped entrywise to the box `bounds = (lo, hi)`, when given.
fn clamp_to(p: &mut [f64], bounds: Option<(&[f64], &[f64])>) {
    if let Some((lo, hi)) = bounds {
        p.iter_mut()
            .zip(lo.iter().zip(hi))
            .for_each(|(x, (l, h))| *x = x.clamp(*l, *h));
    }
}

/// Adam's settings (Kingma & Ba 2015; their defaults but the rate).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AdamSettings {
    /// Step size (parameter units).
    pub learning_rate: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to √v̂.
    pub eps: f64,
}

impl AdamSettings {
    /// β = (0.9, 0.999), ε = 1e-8.
    pub fn with_rate(learning_rate: f64) -> Self {
        Self {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Adam for `iterations` steps: `p ← P(p − lr·m̂/(√v̂ + ε))` with bias-corrected moments of the
/// gradient, `P` the clamp to the box `bounds = (lo, hi)` when given (projected Adam). Argmin
/// has no Adam; Burn's works on modules, not on a simulation's parameter vector.
pub fn adam(
    f: &Objective<'_>,
    p0: &[f64],
    s: AdamSettings,
    iterations: usize,
    bounds: Option<(&[f64], &[f64])>,
) -> Result<Trace> {
    let (mut m, mut v) = (vec![0.0; p0.len()], vec![0.0; p0.len()]);
    first_order(f, p0, iterations, bounds, |k, p, g| {
        let (c1, c2) = (1.0 - s.beta1.powi(k as i32), 1.0 - s.beta2.powi(k as i32));
        for (((x, g), m), v) in p.iter_mut().zip(g).zip(&mut m).zip(&mut v) {
            *m = s.beta1 * *m + (1.0 - s.beta1) * g;
            *v = s.beta2 * *v + (1.0 - s.beta2) * g * g;
            *x -= s.learning_rate * (*m / c1) / ((*v / c2).sqrt() + s.eps);
        }
    })
}

/// `|∇L − FD|∞ / |FD|∞`: the adjoint gradient of `f` at `p` against central differences with
/// step `h` (normwise, so that entries far below the largest are not measured against their
/// own round-off).
pub(crate) fn fd_error(f: &Objective<'_>, p: &[f64], h: f64) -> Result<f64> {
    fd_error_on(f, p, &(0..p.len()).collect::<Vec<_>>(), h)
}

/// [`fd_error`] over the entries `probes` of `p` only (two evaluations each).
pub(crate) fn fd_error_on(f: &Objective<'_>, p: &[f64], probes: &[usize], h: f64) -> Result<f64> {
    let (_, g) = f(p)?;
    let (mut err, mut size) = (0.0f64, 0.0f64);
    for &k in probes {
        let at = |d: f64| {
            let mut q = p.to_vec();
            q[k] += d;
            f(&q).map(|r| r.0)
        };
        let fd = (at(h)? - at(-h)?) / (2.0 * h);
        err = err.max((g[k] - fd).abs());
        size = size.max(fd.abs());
    }
    Ok(err / size.max(1e-300))
}

/// Wall time spent in an objective over an optimisation.
#[derive(Default)]
pub(crate) struct Clock(std::cell::Cell<(f64, usize)>);

impl Clock {
    /// `f`, timed on this clock.
    pub(crate) fn wrap<'a, R>(
        &'a self,
        f: &'a (dyn Fn(&[f64]) -> Result<R> + 'a),
    ) -> impl Fn(&[f64]) -> Result<R> + 'a {
        move |p| {
            let t = std::time::Instant::now();
            let r = f(p);
            let (s, n) = self.0.get();
            self.0.set((s + t.elapsed().as_secs_f64(), n + 1));
            r
        }
    }

    /// Mean wall time per call (ms).
    pub(crate) fn mean_ms(&self) -> f64 {
        let (s, n) = self.0.get();
        1e3 * s / n.max(1) as f64
    }
}

/// The median wall time (ms) of `repeats` calls of `f`.
pub fn median_ms<T>(repeats: usize, f: &dyn Fn() -> Result<T>) -> Result<f64> {
    let mut t = Vec::new();
    for _ in 0..repeats {
        let t0 = std::time::Instant::now();
        f()?;
        t.push(1e3 * t0.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok(t[repeats / 2])
}

struct Problem<'a> {
    f: &'a Objective<'a>,
    evaluations: Arc<Mutex<usize>>,
}

impl Problem<'_> {
    fn eval(&self, p: &[f64]) -> std::result::Result<(f64, Vec<f64>), ArgminError> {
        *self.evaluations.lock().expect("counter") += 1;
        (self.f)(p).map_err(|e| ArgminError::msg(e.to_string()))
    }
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> std::result::Result<f64, ArgminError> {
        Ok(self.eval(p)?.0)
    }
}

impl Gradient for Problem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> std::result::Result<Vec<f64>, ArgminError> {
        Ok(self.eval(p)?.1)
    }
}

/// Records the best cost after every iteration.
struct Losses(Arc<Mutex<Vec<f64>>>);

impl<I: State<Float = f64>> Observe<I> for Losses {
    fn observe_iter(&mut self, state: &I, _kv: &KV) -> std::result::Result<(), ArgminError> {
        self.0.lock().expect("losses").push(state.get_best_cost());
        Ok(())
    }
}

/// L-BFGS (memory 7, Moré-Thuente line search) for at most `max_iters` iterations; stops when
/// the loss falls below `target` or the gradient below `tol_grad`.
pub fn lbfgs(
    f: &Objective<'_>,
    p0: &[f64],
    max_iters: u64,
    target: f64,
    tol_grad: f64,
) -> Result<Trace> {
    let fail = |e: ArgminError| DiffsimError::config(format!("L-BFGS: {e}"));
    let evaluations = Arc::new(Mutex::new(0));
    let losses = Arc::new(Mutex::new(vec![f(p0)?.0]));
    let line = MoreThuenteLineSearch::new()
        .with_c(1e-4, 0.9)
        .map_err(fail)?;
    let solver = LBFGS::new(line, 7)
        .with_tolerance_grad(tol_grad)
        .map_err(fail)?
        .with_tolerance_cost(0.0)
        .map_err(fail)?;
    let problem = Problem {
        f,
        evaluations: evaluations.clone(),
    };
    let res = Executor::new(problem, solver)
        .configure(|s| {
            s.param(p0.to_vec())
                .max_iters(max_iters)
                .target_cost(target)
        })
        .add_observer(Losses(losses.clone()), ObserverMode::Always)
        .run()
        .map_err(fail)?;
    let state = res.state();
    let params = state
        .get_best_param()
        .cloned()
        .unwrap_or_else(|| p0.to_vec());
    let losses = losses.lock().expect("losses").clone();
    let evaluations = *evaluations.lock().expect("counter");
    Ok(Trace {
        iterations: state.get_iter() as usize,
        losses,
        params,
        evaluations,
    })
}

/// Residuals `r(p)` and what a Gauss-Newton step needs at `p` (`T`).
pub type GaussNewtonEval<'a, T> = dyn Fn(&[f64]) -> Result<(Vec<f64>, T)> + 'a;

/// Residuals `r(p)` and a Gauss-Newton step `Δp` computed at `p`.
pub type GaussNewtonStep<'a> = GaussNewtonEval<'a, Vec<f64>>;

/// Residuals `r(p)` and their Jacobian rows `∂rᵢ/∂p` at `p`.
pub type Residuals<'a> = GaussNewtonEval<'a, Vec<Vec<f64>>>;

/// A Gauss-Newton step from `(p, r(p), T)`; None where `p` is stationary.
type GaussNewtonDirection<'a, T> = dyn Fn(&[f64], &[f64], &T) -> Result<Option<Vec<f64>>> + 'a;

/// The dense Gauss-Newton step `Δp = −(JᵀJ + μI)⁻¹Jᵀr` (faer Cholesky); `jac` holds the rows
/// `∂rᵢ/∂p`. A small `μ` gives the minimum-norm step of an under-determined problem.
pub fn dense_gn_step(r: &[f64], jac: &[Vec<f64>], mu: f64) -> Result<Vec<f64>> {
    use faer::Mat;
    use faer::linalg::solvers::Solve;
    let n = jac.first().map_or(0, Vec::len);
    let j = Mat::from_fn(jac.len(), n, |i, k| jac[i][k]);
    let mut lhs = j.transpose() * &j;
    for a in 0..n {
        lhs[(a, a)] += mu;
    }
    let rv = Mat::from_fn(r.len(), 1, |i, _| -r[i]);
    let rhs = j.transpose() * &rv;
    let step = lhs
        .llt(faer::Side::Lower)
        .map_err(|e| DiffsimError::config(format!("Gauss-Newton: {e:?}")))?
        .solve(&rhs);
    Ok((0..n).map(|k| step[(k, 0)]).collect())
}

/// Gauss-Newton on `L = |r(p)|²` with steps from `f` (dense or sparse), halving a step until
/// the loss decreases. Stops below `target`, where no step lowers the loss, or after
/// `max_iters` iterations.
pub fn gauss_newton(
    f: &GaussNewtonStep<'_>,
    p0: &[f64],
    max_iters: usize,
    target: f64,
) -> Result<Trace> {
    gn_iterate(
        f,
        &|_, _, step: &Vec<f64>| Ok(Some(step.clone())),
        &|p| p,
        p0,
        max_iters,
        target,
    )
}

/// Projected Gauss-Newton on `L = |r(p)|²` within the box `lo ≤ p ≤ hi`: a parameter on a
/// bound whose gradient `(Jᵀr)ᵢ` pushes it outwards is held; the damped step
/// `(J_FᵀJ_F + μI)Δ_F = −J_Fᵀr` is taken on the free ones (`J_F` their columns, from a dense
/// or a sparse Jacobian), and `P(p + αΔ)` (`P` the clamp to the box) halves `α` until the loss
/// decreases. Stops below `target`, at a point where every parameter is held or no step lowers
/// the loss, or after `max_iters` iterations.
pub fn gauss_newton_box(
    f: &Residuals<'_>,
    p0: &[f64],
    (lo, hi): (&[f64], &[f64]),
    mu: f64,
    max_iters: usize,
    target: f64,
) -> Result<Trace> {
    let n = p0.len();
    check_box("gauss_newton_box", n, (lo, hi))?;
    let direction = |p: &[f64], r: &[f64], jac: &Vec<Vec<f64>>| -> Result<Option<Vec<f64>>> {
        let (_, free) = free_parameters(p, r, jac, (lo, hi));
        if free.is_empty() {
            return Ok(None);
        }
        let columns: Vec<Vec<f64>> = jac
            .iter()
            .map(|row| free.iter().map(|&i| row[i]).collect())
            .collect();
        let mut step = vec![0.0; n];
        for (&i, s) in free.iter().zip(dense_gn_step(r, &columns, mu)?) {
            step[i] = s;
        }
        Ok(Some(step))
    };
    let project = |p: Vec<f64>| -> Vec<f64> {
        p.iter()
            .enumerate()
            .map(|(i, x)| x.clamp(lo[i], hi[i]))
            .collect()
    };
    gn_iterate(
        f,
        &direction,
        &project,
        &project(p0.to_vec()),
        max_iters,
        target,
    )
}

/// Refuses bounds that do not match `n` parameters or have `lo > hi`.
fn check_box(optimiser: &str, n: usize, (lo, hi): (&[f64], &[f64])) -> Result<()> {
    if lo.len() != n || hi.len() != n || lo.iter().zip(hi).any(|(a, b)| a > b) {
        return Err(DiffsimError::config(format!(
            "{optimiser}: bounds must match the parameters and lo <= hi"
        )));
    }
    Ok(())
}

/// The least-squares gradient `g = Jᵀr` (`jac` its rows `∂rᵢ/∂p`) and the parameters it does
/// not hold on a bound of the box (see [`held`]).
fn free_parameters(
    p: &[f64],
    r: &[f64],
    jac: &[Vec<f64>],
    (lo, hi): (&[f64], &[f64]),
) -> (Vec<f64>, Vec<usize>) {
    let g: Vec<f64> = (0..p.len())
        .map(|i| jac.iter().zip(r).map(|(row, ri)| row[i] * ri).sum())
        .collect();
    let free = (0..p.len())
        .filter(|&i| !held(p[i], g[i], (lo[i], hi[i])))
        .collect();
    (g, free)
}

/// Whether a parameter `p` with loss gradient `g` is held on a bound of `[lo, hi]`: it sits
/// on one and descent (`−g`) points out of the box.
fn held(p: f64, g: f64, (lo, hi): (f64, f64)) -> bool {
    (p <= lo && g > 0.0) || (p >= hi && g < 0.0)
}

/// The loop of [`gauss_newton`] and [`gauss_newton_box`]: `eval(p)` gives the residuals and
/// what `direction` needs for a step from `p` (None: `p` is stationary); the step `Δ` is
/// tried as `project(p + αΔ)`, halving `α` until the loss decreases (a trial point whose
/// evaluation fails counts as not decreasing). Where it does not for any `α ≥ 1e-6`, `p` is
/// a (numerically) stationary point, or the edge of where the objective can be evaluated,
/// and the loop ends; if that happens at the start point after a failed trial, its error is
/// returned.
fn gn_iterate<T>(
    eval: &GaussNewtonEval<'_, T>,
    direction: &GaussNewtonDirection<'_, T>,
    project: &dyn Fn(Vec<f64>) -> Vec<f64>,
    p0: &[f64],
    max_iters: usize,
    target: f64,
) -> Result<Trace> {
    let loss = |r: &[f64]| r.iter().map(|x| x * x).sum::<f64>();
    let mut p = p0.to_vec();
    let (mut r, mut at) = eval(&p)?;
    let mut losses = vec![loss(&r)];
    let (mut iterations, mut evaluations) = (0, 1);
    'iterations: while iterations < max_iters && *losses.last().expect("a loss") > target {
        let Some(step) = direction(&p, &r, &at)? else {
            break;
        };
        let current = *losses.last().expect("a loss");
        let mut alpha = 1.0;
        loop {
            let q = project(p.iter().zip(&step).map(|(x, s)| x + alpha * s).collect());
            evaluations += 1;
            match eval(&q) {
                Ok((rq, aq)) if loss(&rq) < current => {
                    (p, r, at) = (q, rq, aq);
                    break;
                }
                // A trial point the simulation cannot take (Newton fails at extreme
                // parameters) is a rejected step; failing on every step from the start
                // point is the objective's error.
                Err(e) if alpha < 1e-6 && iterations == 0 => return Err(e),
                _ if alpha < 1e-6 => break 'iterations,
                _ => alpha *= 0.5,
            }
        }
        losses.push(loss(&r));
        iterations += 1;
    }
    Ok(Trace {
        losses,
        params: p,
        iterations,
        evaluations,
    })
}

/// L-BFGS with box constraints `lo ≤ p ≤ hi` (a projected quasi-Newton method in the spirit
/// of L-BFGS-B): the two-loop direction is computed on the free variables (those not held at
/// a bound by the gradient), a non-descent direction falls back to the projected negative
/// gradient, and a projected Armijo backtracking keeps the iterate feasible. Stops when the
/// projected gradient `|P(p − ∇L) − p|∞` is below `tol`, the loss below `target`, or after
/// `max_iters` iterations. Memory 7.
pub fn lbfgs_box(
    f: &Objective<'_>,
    p0: &[f64],
    (lo, hi): (&[f64], &[f64]),
    max_iters: usize,
    target: f64,
    tol: f64,
) -> Result<Trace> {
    let n = p0.len();
    check_box("lbfgs_box", n, (lo, hi))?;
    let project = |p: &[f64]| -> Vec<f64> { (0..n).map(|i| p[i].clamp(lo[i], hi[i])).collect() };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut p = project(p0);
    let (mut l, mut g) = f(&p)?;
    let (mut losses, mut evaluations) = (vec![l], 1);
    let mut memory: std::collections::VecDeque<(Vec<f64>, Vec<f64>)> = Default::default();
    let mut iterations = 0;
    while iterations < max_iters && l > target {
        let pg: f64 = project(&p.iter().zip(&g).map(|(x, d)| x - d).collect::<Vec<_>>())
            .iter()
            .zip(&p)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        if pg <= tol {
            break;
        }
        let free: Vec<bool> = (0..n).map(|i| !held(p[i], g[i], (lo[i], hi[i]))).collect();
        let mask =
            |v: &[f64]| -> Vec<f64> { (0..n).map(|i| if free[i] { v[i] } else { 0.0 }).collect() };
        // Two-loop recursion on the free subspace.
        let mut q = mask(&g);
        let mut alphas = Vec::with_capacity(memory.len());
        for (s, y) in memory.iter().rev() {
            let (s, y) = (mask(s), mask(y));
            // A pair whose curvature vanishes on the free variables carries no information
            // there (and 1/sᵀy would overflow the direction): skip it.
            let sy = dot(&y, &s);
            if sy <= 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() || sy <= 0.0 {
                continue;
            }
            let rho = 1.0 / sy;
            let a = rho * dot(&s, &q);
            q.iter_mut().zip(&y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push((a, rho, s, y));
        }
        if let Some((s, y)) = memory.back() {
            let (s, y) = (mask(s), mask(y));
            let (sy, yy) = (dot(&s, &y), dot(&y, &y));
            if sy > 0.0 && yy > 0.0 {
                q.iter_mut().for_each(|x| *x *= sy / yy);
            }
        }
        for (a, rho, s, y) in alphas.into_iter().rev() {
            let b = rho * dot(&y, &q);
            q.iter_mut()
                .zip(&s)
                .for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let mut d: Vec<f64> = mask(&q).iter().map(|x| -x).collect();
        let slope = dot(&d, &g);
        if slope.is_nan() || slope >= 0.0 {
            d = mask(&g).iter().map(|x| -x).collect();
        }
        // Projected Armijo backtracking.
        let mut alpha = 1.0;
        let (next, ln, gn) = loop {
            let cand = project(
                &p.iter()
                    .zip(&d)
                    .map(|(x, di)| x + alpha * di)
                    .collect::<Vec<_>>(),
            );
            let (lc, gc) = f(&cand)?;
            evaluations += 1;
            let step: Vec<f64> = cand.iter().zip(&p).map(|(a, b)| a - b).collect();
            if lc <= l + 1e-4 * dot(&g, &step) || alpha < 1e-12 {
                break (cand, lc, gc);
            }
            alpha *= 0.5;
        };
        let s: Vec<f64> = next.iter().zip(&p).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        // Without a Wolfe line search a pair can lack positive curvature: then the memory is
        // stale, so restart from the (scaled) gradient.
        if dot(&s, &y) > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            memory.push_back((s, y));
            if memory.len() > 7 {
                memory.pop_front();
            }
        } else {
            memory.clear();
        }
        (p, l, g) = (next, ln, gn);
        losses.push(l);
        iterations += 1;
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

    /// Adam's first step moves every coordinate by the rate against its gradient's sign
    /// (m̂/√v̂ = g/|g|), whatever the gradient's scale; on a quadratic scaled 1 : 1e4 it
    /// reaches the minimum in both coordinates, and within a box it ends on the bound.
    #[test]
    fn adam_steps_by_the_rate_and_converges_on_a_badly_scaled_quadratic() {
        let f = |p: &[f64]| -> Result<(f64, Vec<f64>)> {
            let (a, b) = (p[0] - 1.0, p[1] + 2.0);
            Ok((0.5 * (a * a + 1e4 * b * b), vec![a, 1e4 * b]))
        };
        let s = AdamSettings::with_rate(0.05);
        let t = adam(&f, &[0.0, 0.0], s, 1, None).unwrap();
        assert!((t.params[0] - 0.05).abs() < 1e-9 && (t.params[1] + 0.05).abs() < 1e-9);
        let t = adam(&f, &[0.0, 0.0], s, 2000, None).unwrap();
        assert!(
            (t.params[0] - 1.0).abs() < 1e-3 && (t.params[1] + 2.0).abs() < 1e-3,
            "{:?}",
            t.params
        );
        assert_eq!((t.losses.len(), t.evaluations), (2001, 2001));
        let t = adam(&f, &[0.0, 0.0], s, 2000, Some((&[-5.0, -1.5], &[0.5, 5.0]))).unwrap();
        assert!(
            (t.params[0] - 0.5).abs() < 1e-12 && (t.params[1] + 1.5).abs() < 1e-12,
            "{:?}",
            t.params
        );
    }

    /// Rosenbrock with the bound x ≤ 0.5: the minimiser is (0.5, 0.25), on the bound.
    #[test]
    fn box_lbfgs_finds_a_bounded_minimum() {
        let f = |p: &[f64]| -> Result<(f64, Vec<f64>)> {
            let (x, y) = (p[0], p[1]);
            let l = (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2);
            Ok((
                l,
                vec![
                    -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                    200.0 * (y - x * x),
                ],
            ))
        };
        let t = lbfgs_box(
            &f,
            &[-1.2, 1.0],
            (&[-2.0, -2.0], &[0.5, 2.0]),
            200,
            0.0,
            1e-10,
        )
        .unwrap();
        assert!(
            (t.params[0] - 0.5).abs() < 1e-8 && (t.params[1] - 0.25).abs() < 1e-7,
            "{:?} after {} iterations, last losses {:?}",
            t.params,
            t.iterations,
            &t.losses[t.losses.len().saturating_sub(4)..]
        );
        assert!(t.iterations < 100, "{} iterations", t.iterations);
        // Unconstrained within wide bounds: the usual minimiser (1, 1).
        let t = lbfgs_box(
            &f,
            &[-1.2, 1.0],
            (&[-5.0, -5.0], &[5.0, 5.0]),
            200,
            0.0,
            1e-10,
        )
        .unwrap();
        assert!(
            (t.params[0] - 1.0).abs() < 1e-6 && (t.params[1] - 1.0).abs() < 1e-6,
            "{:?}",
            t.params
        );
        // Every iterate stays feasible and bad bounds are refused.
        assert!(lbfgs_box(&f, &[0.0, 0.0], (&[1.0, 0.0], &[0.0, 1.0]), 10, 0.0, 1e-9).is_err());
    }

    /// A separable quadratic with half of the optimum outside the box: the active components
    /// end exactly on their bounds.
    #[test]
    fn box_lbfgs_holds_active_bounds() {
        let c = [3.0, -2.0, 0.5, 0.2, -0.7];
        let f = |p: &[f64]| -> Result<(f64, Vec<f64>)> {
            let l = p
                .iter()
                .zip(&c)
                .enumerate()
                .map(|(i, (x, c))| (i + 1) as f64 * (x - c).powi(2))
                .sum();
            Ok((
                l,
                p.iter()
                    .zip(&c)
                    .enumerate()
                    .map(|(i, (x, c))| 2.0 * (i + 1) as f64 * (x - c))
                    .collect(),
            ))
        };
        let (lo, hi) = ([-1.0; 5], [1.0; 5]);
        let t = lbfgs_box(&f, &[0.0; 5], (&lo, &hi), 50, 0.0, 1e-12).unwrap();
        let want = [1.0, -1.0, 0.5, 0.2, -0.7];
        for (p, w) in t.params.iter().zip(want) {
            assert!((p - w).abs() < 1e-9, "{:?}", t.params);
        }
    }

    /// Rosenbrock as residuals `[10(y − x²), 1 − x]` (Gauss-Newton's classic test), started on
    /// the lower bound of x with a gradient pointing inwards (so x is released): with x ≤ 0.5
    /// the minimiser (0.5, 0.25) lies on the bound; in a wide box it is (1, 1).
    #[test]
    fn box_gauss_newton_finds_a_bounded_minimum_and_stays_feasible() {
        let f = |p: &[f64]| -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
            let (x, y) = (p[0], p[1]);
            Ok((
                vec![10.0 * (y - x * x), 1.0 - x],
                vec![vec![-20.0 * x, 10.0], vec![-1.0, 0.0]],
            ))
        };
        let (lo, hi5) = ([-2.0, -2.0], [5.0, 5.0]);
        let t = gauss_newton_box(&f, &[-2.0, 1.0], (&lo, &[0.5, 2.0]), 1e-12, 50, 0.0).unwrap();
        assert!(
            (t.params[0] - 0.5).abs() < 1e-12 && (t.params[1] - 0.25).abs() < 1e-10,
            "{:?} after {} iterations",
            t.params,
            t.iterations
        );
        assert!((t.losses.last().unwrap() - 0.25).abs() < 1e-12);
        assert!(t.iterations < 10, "{} iterations", t.iterations);
        let t = gauss_newton_box(&f, &[-2.0, 1.0], (&lo, &hi5), 1e-12, 50, 1e-24).unwrap();
        assert!(*t.losses.last().unwrap() < 1e-24, "{:?}", t.losses);
        assert!((t.params[0] - 1.0).abs() < 1e-10 && (t.params[1] - 1.0).abs() < 1e-10);
        assert!(t.iterations < 10, "{} iterations", t.iterations);
        // A trial point the simulation cannot take is a rejected step (the first full step lands
        // on the bound y = −2); an objective that fails everywhere but the start is an error.
        let flaky = |p: &[f64]| -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
            if p[1] < -1.9 {
                return Err(DiffsimError::config("Newton did not converge"));
            }
            f(p)
        };
        let t = gauss_newton_box(&flaky, &[-2.0, 1.0], (&lo, &hi5), 1e-12, 50, 1e-24);
        assert!((t.unwrap().params[0] - 1.0).abs() < 1e-10);
        let start_only = |p: &[f64]| -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
            if p != [-2.0, 1.0] {
                return Err(DiffsimError::config("Newton did not converge"));
            }
            f(p)
        };
        assert!(gauss_newton_box(&start_only, &[-2.0, 1.0], (&lo, &hi5), 1e-12, 50, 0.0).is_err());
        // Every iterate is evaluated inside the box; bad bounds are refused.
        let inside = |p: &[f64]| -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
            assert!(
                p[0] <= 0.5 && p[0] >= -2.0 && p[1] >= -2.0 && p[1] <= 2.0,
                "{p:?}"
            );
            f(p)
        };
        gauss_newton_box(&inside, &[3.0, 1.0], (&lo, &[0.5, 2.0]), 1e-12, 50, 0.0).unwrap();
        assert!(
            gauss_newton_box(&f, &[0.0, 0.0], (&[1.0, 0.0], &[0.0, 1.0]), 1e-12, 5, 0.0).is_err()
        );
    }
}
