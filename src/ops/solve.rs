//! The default bodies' iterative solves on device tensors: the stencil as tensors, the
//! matrix-free (Jacobi-preconditioned) CG with a host convergence check every
//! [`CG_CHECK_EVERY`] iterations, and the choice between it and the multigrid-preconditioned
//! CG of [`super::multigrid`].

use super::multigrid::Multigrid;
use super::reference::Ft;
use crate::linalg::{LinearSolver, SolveConfig, SolveError, SolveInfo, SolveMethod, Stencil};
use burn::backend::Backend;
use burn::backend::tensor::FloatTensor;

/// Iterations between two convergence checks of the tensor-op CG (each check reads one scalar
/// back from the device).
pub const CG_CHECK_EVERY: usize = 8;

/// The stencil as device tensors `[1, ny, nx]`: diagonal and the four weights.
#[derive(Clone, Debug)]
pub(super) struct StencilTensors<B: Backend> {
    diag: Ft<B>,
    w: [Ft<B>; 4],
    periodic: [bool; 2],
}

impl<B: Backend> StencilTensors<B> {
    pub(super) fn new(st: &Stencil, like: &FloatTensor<B>) -> Self {
        let d = [1, st.ny, st.nx];
        Self {
            diag: Ft::from_host(st.diag.clone(), &d, like),
            w: std::array::from_fn(|k| Ft::from_host(st.w[k].clone(), &d, like)),
            periodic: st.periodic,
        }
    }

    /// Neighbour values in direction `dir` (0 W, 1 E, 2 S, 3 N): wrapped or zero beyond the edge.
    fn shifted(&self, p: &Ft<B>, dir: usize) -> Ft<B> {
        let dims = p.dims();
        let dim = if dir < 2 { 2 } else { 1 };
        let n = dims[dim];
        let periodic = self.periodic[dir / 2];
        let mut edge_dims = dims.clone();
        edge_dims[dim] = 1;
        let low = dir.is_multiple_of(2); // W or S: value from index − 1
        let body = if low {
            p.clone().narrow(dim, 0, n - 1)
        } else {
            p.clone().narrow(dim, 1, n)
        };
        let edge = if periodic {
            if low {
                p.clone().narrow(dim, n - 1, n)
            } else {
                p.clone().narrow(dim, 0, 1)
            }
        } else {
            Ft::zeros(&edge_dims, &p.0)
        };
        if low {
            Ft::cat(vec![edge, body], dim)
        } else {
            Ft::cat(vec![body, edge], dim)
        }
    }

    /// `A p` for every item of `p: [B, ny, nx]`.
    pub(super) fn apply(&self, p: &Ft<B>) -> Ft<B> {
        let mut out = self.diag.clone() * p.clone();
        for k in 0..4 {
            out = out - self.w[k].clone() * self.shifted(p, k);
        }
        out
    }
}

/// Matrix-free CG on `[B, ny, nx]` right-hand sides (per-item step sizes), as in
/// [`crate::linalg`]'s CPU CG; a Jacobi preconditioner when the method asks for it. Direct
/// methods fall back to CG with the configured tolerances.
pub fn cg<B: Backend>(
    st: &Stencil,
    b: Ft<B>,
    cfg: &SolveConfig,
) -> (Ft<B>, Result<SolveInfo, SolveError>) {
    let ops = StencilTensors::<B>::new(st, &b.0);
    let batch = b.dims()[0];
    let method = if cfg.method == SolveMethod::Cholesky {
        SolveMethod::Cg
    } else {
        cfg.method
    };
    let inv_diag = (method == SolveMethod::JacobiCg).then(|| {
        Ft::<B>::from_host(
            st.diag.iter().map(|d| 1.0 / d).collect(),
            &[1, st.ny, st.nx],
            &b.0,
        )
    });
    let precond = |r: &Ft<B>| match &inv_diag {
        Some(m) => m.clone() * r.clone(),
        None => r.clone(),
    };
    let tol = cfg.abs_tol + cfg.rel_tol * b.clone().max_abs_host();
    let run = pcg(
        |p| ops.apply(p),
        precond,
        b,
        cfg.max_iters,
        Some((tol, CG_CHECK_EVERY)),
    );
    let info = outcome(&run, method, tol, batch);
    (run.x, info)
}

/// What one [`pcg`] run ended with.
pub(super) struct CgRun<B: Backend> {
    /// The iterate.
    pub x: Ft<B>,
    /// Its (recursively updated) residual.
    pub r: Ft<B>,
    /// Iterations run.
    pub iterations: usize,
    /// `max|r|` at the last host check (NaN for a run without checks).
    pub residual: f64,
}

/// Preconditioned CG from `x = 0` for every item of `b: [B, ny, nx]` (per-item step sizes):
/// `apply` is the operator, `precond` the preconditioner. With `check = Some((tol, every))`
/// it reads `max|r|` back at the start and after every `every`-th iteration (and the last),
/// stopping once that is at most `tol` or not finite; with None it runs exactly `max`
/// iterations and reads nothing back.
pub(super) fn pcg<B: Backend>(
    apply: impl Fn(&Ft<B>) -> Ft<B>,
    precond: impl Fn(&Ft<B>) -> Ft<B>,
    b: Ft<B>,
    max: usize,
    check: Option<(f64, usize)>,
) -> CgRun<B> {
    let host = |r: &Ft<B>| r.clone().max_abs_host();
    let mut x = Ft::zeros(&b.dims(), &b.0);
    let mut r = b;
    let mut residual = check.map_or(f64::NAN, |_| host(&r));
    let done = |res: f64| check.is_some_and(|(tol, _)| res <= tol || !res.is_finite());
    let mut it = 0;
    if done(residual) {
        return CgRun {
            x,
            r,
            iterations: 0,
            residual,
        };
    }
    let mut z = precond(&r);
    let mut p = z.clone();
    let mut rz = (r.clone() * z.clone()).sum_items();
    while it < max {
        let ap = apply(&p);
        // Guard 0/0 once an item has converged exactly: alpha = rz / (pAp + tiny).
        let pap = (p.clone() * ap.clone()).sum_items() + 1e-300;
        let alpha = Ft(B::float_div(rz.0.clone(), pap.0));
        x = x + alpha.clone() * p.clone();
        r = r - alpha * ap;
        it += 1;
        if let Some((_, every)) = check
            && (it % every == 0 || it == max)
        {
            residual = host(&r);
            if done(residual) {
                break;
            }
        }
        if it == max {
            break;
        }
        z = precond(&r);
        let rz_new = (r.clone() * z.clone()).sum_items();
        let beta = Ft(B::float_div(rz_new.0.clone(), (rz + 1e-300).0));
        rz = rz_new;
        p = z + beta * p;
    }
    CgRun {
        x,
        r,
        iterations: it,
        residual,
    }
}

/// The outcome of a checked [`pcg`] run against `tol`: its statistics, or the error for a
/// non-finite residual or a missed tolerance.
pub(super) fn outcome<B: Backend>(
    run: &CgRun<B>,
    method: SolveMethod,
    tol: f64,
    batch: usize,
) -> Result<SolveInfo, SolveError> {
    if !run.residual.is_finite() {
        return Err(SolveError::NonFinite("iterate"));
    }
    if run.residual > tol {
        return Err(SolveError::NotConverged {
            method,
            iterations: run.iterations,
            residual: run.residual,
            tolerance: tol,
        });
    }
    Ok(SolveInfo {
        method,
        iterations: run.iterations,
        residual: run.residual,
        batch,
    })
}

/// The default bodies' solve of `solver`'s system for every item of `rhs: [B, ny, nx]`: a
/// configured CG runs as configured ([`cg`]); a direct method (the default) becomes the
/// multigrid-preconditioned CG of [`super::multigrid`] (direct factorisations are a CPU
/// thing; grids small enough for a dense inverse never get here). The outcome is recorded on
/// `solver`; returns the solution and whether the solve succeeded.
pub fn solve_iterative<'a, B: Backend>(
    rhs: Ft<B>,
    solver: &LinearSolver,
    multigrid: impl FnOnce() -> Result<&'a Multigrid, SolveError>,
) -> (Ft<B>, bool) {
    let cfg = solver.config();
    let (x, outcome) = if cfg.method != SolveMethod::Cholesky {
        cg::<B>(solver.stencil(), rhs, cfg)
    } else {
        match multigrid() {
            Ok(mg) => mg.solve(rhs, cfg),
            Err(e) => (rhs * f64::NAN, Err(e)),
        }
    };
    let ok = outcome.is_ok();
    solver.record(outcome);
    (x, ok)
}
