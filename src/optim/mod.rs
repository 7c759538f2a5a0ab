//! Outer loops for parameter optimisation over simulations: gradient descent and L-BFGS
//! (argmin, on `Vec<f64>`), each recording the loss per iteration.

pub mod bounce;
pub mod spring_cage;

use crate::error::{DiffsimError, Result};
use argmin::core::observers::{Observe, ObserverMode};
use argmin::core::{CostFunction, Error as ArgminError, Executor, Gradient, KV, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// A loss and its gradient at a parameter vector.
pub type Objective<'a> = dyn Fn(&[f64]) -> Result<(f64, Vec<f64>)> + 'a;

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

/// Plain gradient descent `p ← p − lr·∇L` for `iterations` steps.
pub fn gradient_descent(
    f: &Objective<'_>,
    p0: &[f64],
    lr: f64,
    iterations: usize,
) -> Result<Trace> {
    let mut p = p0.to_vec();
    let mut losses = Vec::new();
    for _ in 0..iterations {
        let (l, g) = f(&p)?;
        losses.push(l);
        p.iter_mut().zip(&g).for_each(|(x, g)| *x -= lr * g);
    }
    losses.push(f(&p)?.0);
    Ok(Trace {
        losses,
        params: p,
        iterations,
        evaluations: iterations + 1,
    })
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

/// Residuals `r(p)` and a Gauss-Newton step `Δp` computed at `p`.
pub type GaussNewtonStep<'a> = dyn Fn(&[f64]) -> Result<(Vec<f64>, Vec<f64>)> + 'a;

/// The dense Gauss-Newton step `Δp = −(JᵀJ + μI)⁻¹Jᵀr` (faer Cholesky); `jac` holds the rows
/// `∂rᵢ/∂p`. A small `μ` gives the minimum-norm step of an under-determined problem.
pub fn dense_gn_step(r: &[f64], jac: &[Vec<f64>], mu: f64) -> Result<Vec<f64>> {
    use faer::Mat;
    use faer::linalg::solvers::Solve;
    let n = jac.first().map_or(0, Vec::len);
    let jtj = Mat::from_fn(n, n, |a, b| {
        jac.iter().map(|row| row[a] * row[b]).sum::<f64>()
    });
    let lhs = Mat::from_fn(n, n, |a, b| jtj[(a, b)] + if a == b { mu } else { 0.0 });
    let rhs = Mat::from_fn(n, 1, |a, _| {
        -jac.iter().zip(r).map(|(row, ri)| row[a] * ri).sum::<f64>()
    });
    let step = lhs
        .llt(faer::Side::Lower)
        .map_err(|e| DiffsimError::config(format!("Gauss-Newton: {e:?}")))?
        .solve(&rhs);
    Ok((0..n).map(|k| step[(k, 0)]).collect())
}

/// Gauss-Newton on `L = |r(p)|²` with steps from `f` (dense or sparse), halving a step until
/// the loss decreases. Stops below `target` or after `max_iters` iterations.
pub fn gauss_newton(
    f: &GaussNewtonStep<'_>,
    p0: &[f64],
    max_iters: usize,
    target: f64,
) -> Result<Trace> {
    let loss = |r: &[f64]| r.iter().map(|x| x * x).sum::<f64>();
    let mut p = p0.to_vec();
    let (mut r, mut step) = f(&p)?;
    let mut losses = vec![loss(&r)];
    let (mut iterations, mut evaluations) = (0, 1);
    while iterations < max_iters && *losses.last().expect("a loss") > target {
        let current = *losses.last().expect("a loss");
        let mut alpha = 1.0;
        loop {
            let q: Vec<f64> = p.iter().zip(&step).map(|(x, s)| x + alpha * s).collect();
            let (rq, sq) = f(&q)?;
            evaluations += 1;
            if loss(&rq) < current || alpha < 1e-6 {
                (p, r, step) = (q, rq, sq);
                break;
            }
            alpha *= 0.5;
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
