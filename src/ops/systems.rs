//! Prepared linear operators that ops carry: the pressure projection and implicit diffusion.

use super::multigrid::Multigrid;
use crate::grid::{ArraySpec, Boundaries, Extrap, SolidMask};
use crate::linalg::{
    DENSE_MAX_CELLS, DenseInverse, Dir, LinearSolver, PoissonSystem, SolveConfig, SolveError,
    SolveInfo, SolveMethod, Stencil,
};
use std::any::Any;
use std::sync::{Mutex, OnceLock};

/// A pressure projection prepared for one grid, boundary set and obstacle layout: the Poisson
/// system and its solver (for Cholesky: factorised once, here); on GPU backends and small
/// grids, the solve as a dense matrix ([`PressureProjection::dense`]).
#[derive(Debug)]
pub struct PressureProjection {
    /// The Poisson system (operator, face rules, floating regions).
    pub system: PoissonSystem,
    /// The solver of `A p = rhs`.
    pub solver: LinearSolver,
    /// A separate solver for the adjoint solves of the backward pass (`A` is symmetric), when
    /// one was configured with [`PressureProjection::with_adjoint`]; otherwise they use `solver`
    /// (a Cholesky factor is then reused, never recomputed).
    adjoint: Option<LinearSolver>,
    /// The dense inverse, built on first use by a GPU backend (`None` above
    /// [`DENSE_MAX_CELLS`] cells).
    dense: OnceLock<Option<DenseInverse>>,
    /// The multigrid-preconditioned CG of GPU backends above that size, built on first use.
    multigrid: OnceLock<Result<Multigrid, SolveError>>,
    /// Device copies of constant data (the dense inverse, face masks), per backend, device
    /// and dtype.
    pub device_data: DeviceCache,
}

impl PressureProjection {
    /// Assembles and (for Cholesky) factorises. `bcs` must be validated.
    pub fn new(
        bcs: &Boundaries,
        solid: &SolidMask,
        config: SolveConfig,
    ) -> Result<Self, SolveError> {
        let system = PoissonSystem::new(bcs, solid);
        let solver = LinearSolver::new(system.stencil.clone(), config)?;
        Ok(Self {
            system,
            solver,
            adjoint: None,
            dense: OnceLock::new(),
            multigrid: OnceLock::new(),
            device_data: DeviceCache::default(),
        })
    }

    /// Gives the backward pass's adjoint solves their own configuration (e.g. a CG tolerance).
    /// `None`, or Cholesky on top of a Cholesky forward solver, keeps sharing the forward
    /// solver and its factor.
    pub fn with_adjoint(mut self, config: Option<SolveConfig>) -> Result<Self, SolveError> {
        let shared = |c: &SolveConfig| {
            c.method == SolveMethod::Cholesky
                && self.solver.config().method == SolveMethod::Cholesky
        };
        self.adjoint = match config {
            Some(c) if !shared(&c) => Some(LinearSolver::new(self.system.stencil.clone(), c)?),
            _ => None,
        };
        Ok(self)
    }

    /// The solver of the adjoint solves.
    pub fn adjoint_solver(&self) -> &LinearSolver {
        self.adjoint.as_ref().unwrap_or(&self.solver)
    }

    /// The solve as one dense matrix, built (on the host, `n` Cholesky solves) on the first
    /// call; `None` for grids above [`DENSE_MAX_CELLS`] cells, which keep the configured solver.
    pub fn dense(&self) -> Option<&DenseInverse> {
        self.dense
            .get_or_init(|| {
                (self.system.grid.cells() <= DENSE_MAX_CELLS)
                    .then(|| DenseInverse::new(&self.system).ok())
                    .flatten()
            })
            .as_ref()
    }

    /// The multigrid solver of GPU backends (hierarchy built on the first call).
    pub fn multigrid(&self) -> Result<&Multigrid, SolveError> {
        build_once(&self.multigrid, &self.system.stencil)
    }

    /// The outcome of the last projection's solve (taken: the next call returns None until
    /// another projection ran).
    pub fn take_outcome(&self) -> Option<Result<SolveInfo, SolveError>> {
        self.solver.take_last()
    }
}

/// Backward-Euler diffusion of one array prepared for its shape and boundaries:
/// `(I − α·Lap₅) q' = q + α·(constant ghosts)`, `α = ν·dt/dx²`.
#[derive(Debug)]
pub struct ImplicitDiffusion {
    /// The array.
    pub spec: ArraySpec,
    /// `α` (cell units).
    pub alpha: f64,
    /// Unknown nodes per row: `spec.nx`, or the period on a periodic x axis (the duplicate
    /// last column of a periodic face array is copied from the first).
    pub nodes: [usize; 2],
    /// Right-hand side added per node from constant (Dirichlet) ghosts, `[ny * nx]` of nodes.
    pub ghost_rhs: Vec<f64>,
    /// The solver of the SPD system.
    pub solver: LinearSolver,
    /// The dense inverse, built on first use by a GPU backend (`None` above
    /// [`DENSE_MAX_CELLS`] unknowns).
    dense: OnceLock<Option<DenseInverse>>,
    /// The multigrid-preconditioned CG of GPU backends above that size, built on first use.
    multigrid: OnceLock<Result<Multigrid, SolveError>>,
    /// Device copies of constant data (the dense inverse, the ghost terms).
    pub device_data: DeviceCache,
}

impl ImplicitDiffusion {
    /// Prepares (and for Cholesky factorises) the system of `spec` with diffusion number `alpha`.
    pub fn new(spec: ArraySpec, alpha: f64, config: SolveConfig) -> Result<Self, SolveError> {
        if !(alpha.is_finite() && alpha >= 0.0) {
            return Err(SolveError::Config(format!(
                "diffusion number {alpha} must be finite and >= 0"
            )));
        }
        let periodic = [
            spec.ext[0] == Extrap::Periodic,
            spec.ext[2] == Extrap::Periodic,
        ];
        let nx = if periodic[0] { spec.period_x } else { spec.nx };
        let ny = if periodic[1] { spec.period_y } else { spec.ny };
        let mut stencil = Stencil::zeros(nx, ny, periodic);
        stencil.diag.fill(1.0);
        let mut ghost_rhs = vec![0.0; nx * ny];
        for (c, ghost) in ghost_rhs.iter_mut().enumerate() {
            for d in Dir::ALL {
                match stencil.neighbour(c, d) {
                    // Each face once: from the cell on its west/south side.
                    Some(_) if matches!(d, Dir::East | Dir::North) => stencil.couple(c, d, alpha),
                    Some(_) => {}
                    None => {
                        let side = spec.ext[d as usize];
                        if let Extrap::Value(g) = side {
                            stencil.diag[c] += alpha;
                            *ghost += alpha * g;
                        }
                    }
                }
            }
        }
        let solver = LinearSolver::new(stencil, config)?;
        Ok(Self {
            spec,
            alpha,
            nodes: [nx, ny],
            ghost_rhs,
            solver,
            dense: OnceLock::new(),
            multigrid: OnceLock::new(),
            device_data: DeviceCache::default(),
        })
    }

    /// The multigrid solver of GPU backends (hierarchy built on the first call).
    pub fn multigrid(&self) -> Result<&Multigrid, SolveError> {
        build_once(&self.multigrid, self.solver.stencil())
    }

    /// The solve as one dense matrix (`A` is SPD, no floating regions), built on the first
    /// call; `None` above [`DENSE_MAX_CELLS`] unknowns.
    pub fn dense(&self) -> Option<&DenseInverse> {
        self.dense
            .get_or_init(|| {
                let st = self.solver.stencil();
                (st.len() <= DENSE_MAX_CELLS)
                    .then(|| DenseInverse::of(st, &[]).ok())
                    .flatten()
            })
            .as_ref()
    }
}

/// The multigrid of `stencil` kept in `cell`, built on the first call.
fn build_once<'a>(
    cell: &'a OnceLock<Result<Multigrid, SolveError>>,
    stencil: &Stencil,
) -> Result<&'a Multigrid, SolveError> {
    cell.get_or_init(|| Multigrid::new(stencil))
        .as_ref()
        .map_err(Clone::clone)
}

/// Constant tensors uploaded once and kept per key (backend, device, dtype, what): a
/// type-erased store, so that the prepared systems stay independent of the backends.
#[derive(Default)]
pub struct DeviceCache(Mutex<Vec<(String, Box<dyn Any + Send + Sync>)>>);

impl DeviceCache {
    /// The value stored under `key`, made by `make` on the first call.
    pub fn get_or_insert<T: Clone + Send + Sync + 'static>(
        &self,
        key: String,
        make: impl FnOnce() -> T,
    ) -> T {
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = entries
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.downcast_ref::<T>())
        {
            return v.clone();
        }
        let v = make();
        entries.push((key, Box::new(v.clone())));
        v
    }
}

impl std::fmt::Debug for DeviceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|e| e.len()).unwrap_or(0);
        write!(f, "DeviceCache({n} entries)")
    }
}
