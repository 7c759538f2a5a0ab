//! Multigrid-preconditioned conjugate gradients on device tensors: the GPU backends' solver
//! for pressure and implicit-diffusion systems too large for a dense inverse.
//!
//! The preconditioner is one symmetric V-cycle over the aggregation hierarchy of
//! [`crate::linalg::multigrid`]: [`SWEEPS`] weighted-Jacobi sweeps, restriction of the residual
//! by 2×2 sums over the coupled nodes, the coarse correction, piecewise-constant
//! prolongation, the same sweeps again; the coarsest level is one product with its dense
//! inverse. Every operation is a tensor op of the backend (Burn's fusion merges the
//! elementwise chains on GPUs).
//!
//! **No host round trip per solve.** A configuration with a relative tolerance is calibrated
//! once per operator: three normalised right-hand sides (pseudo-random, smooth, point
//! sources) are solved with a host check after every iteration, and later solves run the
//! iterations that took plus a margin ([`calibrated_iterations`]) without reading anything back.
//! Each such solve still checks `max|r| <= abs_tol + rel_tol·max|b|` on the device and turns
//! its result into NaN where that fails, so a miss surfaces as a non-finite state at the next
//! host read, never as a silently wrong field. A purely absolute tolerance cannot be
//! calibrated (its relative target depends on the right-hand side): those solves check on the
//! host after every iteration.

use super::DeviceCache;
use super::reference::{Ft, dense_product};
use super::solve::{CgRun, StencilTensors, outcome, pcg};
use crate::linalg::multigrid::Hierarchy;
use crate::linalg::{SolveConfig, SolveError, SolveInfo, SolveMethod, Stencil};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};
use burn::tensor::Shape;
use std::sync::Mutex;

/// Weighted-Jacobi damping of the smoother (optimal high-frequency damping for the 5-point
/// Laplacian).
pub const JACOBI_WEIGHT: f64 = 0.8;

/// Jacobi sweeps before and after each coarse-grid correction.
pub const SWEEPS: usize = 2;

/// Iterations run without host checks after a calibration that needed `needed`: 50% more,
/// plus 2.
pub fn calibrated_iterations(needed: usize) -> usize {
    needed + needed.div_ceil(2) + 2
}

/// A prepared multigrid-preconditioned CG for one operator: its hierarchy, the iteration
/// counts calibrated per relative tolerance, and the device copies of its levels.
#[derive(Debug)]
pub struct Multigrid {
    /// The levels (host).
    pub hierarchy: Hierarchy,
    /// `(rel_tol bits, iterations to run, relative residual the calibration reached)`.
    calibrated: Mutex<Vec<(u64, usize, f64)>>,
    device_data: DeviceCache,
}

/// One level on the device: the operator, the smoother's per-node factor (`ω/diag`; `1/diag`
/// on decoupled nodes, which one sweep solves exactly) and the mask of coupled nodes.
#[derive(Clone, Debug)]
struct Level<B: Backend> {
    op: StencilTensors<B>,
    smooth: Ft<B>,
    coupled: Ft<B>,
    /// `[nx, ny]`.
    sides: [usize; 2],
}

impl Multigrid {
    /// Builds the hierarchy of `stencil` (host, once).
    pub fn new(stencil: &Stencil) -> Result<Self, SolveError> {
        Ok(Self {
            hierarchy: Hierarchy::new(stencil)?,
            calibrated: Mutex::new(Vec::new()),
            device_data: DeviceCache::default(),
        })
    }

    /// Solves `A x = b` for every item of `b: [B, ny, nx]` with `cfg`'s tolerances (see the
    /// module docs for when it reads back to the host).
    pub fn solve<B: Backend>(
        &self,
        b: Ft<B>,
        cfg: &SolveConfig,
    ) -> (Ft<B>, Result<SolveInfo, SolveError>) {
        let levels = self.levels::<B>(&b.0);
        let batch = b.dims()[0];
        let method = SolveMethod::MultigridCg;
        if cfg.rel_tol == 0.0 {
            let tol = cfg.abs_tol;
            let run = self.pcg(&levels, b, cfg.max_iters, Some(tol));
            let info = outcome(&run, method, tol, batch);
            return (run.x, info);
        }
        let (iterations, reached) = match self.calibration::<B>(&levels, cfg) {
            Ok(c) => c,
            Err(e) => return (b * f64::NAN, Err(e)),
        };
        let x = self.fixed(&levels, b, cfg, iterations);
        let info = SolveInfo {
            method,
            iterations,
            residual: reached,
            batch,
        };
        (x, Ok(info))
    }

    /// Runs exactly `iterations` PCG iterations on `b: [B, ny, nx]` with no host read, then
    /// checks `max|r| <= abs_tol + rel_tol·max|b|` over the batch on the device: the result
    /// where it holds, NaN everywhere where it does not.
    pub fn solve_fixed<B: Backend>(&self, b: Ft<B>, cfg: &SolveConfig, iterations: usize) -> Ft<B> {
        self.fixed(&self.levels::<B>(&b.0), b, cfg, iterations)
    }

    /// [`Multigrid::solve_fixed`] on levels already on the device.
    fn fixed<B: Backend>(
        &self,
        levels: &[Level<B>],
        b: Ft<B>,
        cfg: &SolveConfig,
        iterations: usize,
    ) -> Ft<B> {
        let tol = Ft::<B>(B::float_max_abs(b.0.clone())) * cfg.rel_tol + cfg.abs_tol;
        let run = self.pcg(levels, b, iterations, None);
        let ratio = Ft::<B>(B::float_div(B::float_max_abs(run.r.0), tol.0));
        // 1 + sqrt(−max(ratio − 1, 0)): 1 where the tolerance is met, NaN where it is not.
        let miss = Ft::<B>(B::float_clamp_min((ratio + -1.0).0, 0.0.into()));
        let poison = Ft::<B>(B::float_sqrt((-miss).0)) + 1.0;
        run.x * poison.reshape(&[1, 1, 1])
    }

    /// The iterations to run for `cfg`'s relative tolerance and the relative residual the
    /// calibration reached, calibrating on the first call.
    fn calibration<B: Backend>(
        &self,
        levels: &[Level<B>],
        cfg: &SolveConfig,
    ) -> Result<(usize, f64), SolveError> {
        let key = cfg.rel_tol.to_bits();
        let mut known = self.calibrated.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(_, it, res)) = known.iter().find(|c| c.0 == key) {
            return Ok((it, res));
        }
        let fine = &self.hierarchy.levels[0];
        let like = &levels[0].smooth.0;
        let b = Ft::<B>::from_host(calibration_rhs(fine), &[3, fine.ny, fine.nx], like);
        let run = self.pcg(levels, b, cfg.max_iters, Some(cfg.rel_tol));
        outcome(&run, SolveMethod::MultigridCg, cfg.rel_tol, 3)?;
        let it = calibrated_iterations(run.iterations).min(cfg.max_iters);
        known.push((key, it, run.residual));
        Ok((it, run.residual))
    }

    /// [`pcg`] with one V-cycle as preconditioner; `check`: a tolerance read back after
    /// every iteration.
    fn pcg<B: Backend>(
        &self,
        levels: &[Level<B>],
        b: Ft<B>,
        max: usize,
        check: Option<f64>,
    ) -> CgRun<B> {
        pcg(
            |p| levels[0].op.apply(p),
            |r| self.vcycle(levels, 0, r.clone()),
            b,
            max,
            check.map(|tol| (tol, 1)),
        )
    }

    /// One V-cycle from level `k` applied to `b` (zero initial guess).
    fn vcycle<B: Backend>(&self, levels: &[Level<B>], k: usize, b: Ft<B>) -> Ft<B> {
        if k + 1 == levels.len() {
            return dense_product(b, &self.hierarchy.coarse, &self.device_data, false);
        }
        let l = &levels[k];
        let sweep = |x: Ft<B>| x.clone() + l.smooth.clone() * (b.clone() - l.op.apply(&x));
        let mut x = l.smooth.clone() * b.clone();
        for _ in 1..SWEEPS {
            x = sweep(x);
        }
        let r = (b.clone() - l.op.apply(&x)) * l.coupled.clone();
        let e = self.vcycle(levels, k + 1, restrict(r, levels[k + 1].sides));
        x = x + prolong(e, l.sides) * l.coupled.clone();
        for _ in 0..SWEEPS {
            x = sweep(x);
        }
        x
    }

    /// The levels on `like`'s backend, device and dtype (uploaded once).
    fn levels<B: Backend>(&self, like: &FloatTensor<B>) -> Vec<Level<B>> {
        let key = format!(
            "{:?} {:?} {:?} levels",
            std::any::TypeId::of::<B>(),
            like.device(),
            like.dtype()
        );
        self.device_data.get_or_insert(key, || {
            let h = &self.hierarchy;
            h.levels
                .iter()
                .zip(&h.coupled)
                .map(|(st, coupled)| {
                    let dims = [1, st.ny, st.nx];
                    let smooth = st
                        .diag
                        .iter()
                        .zip(coupled)
                        .map(|(d, &c)| if c { JACOBI_WEIGHT / d } else { 1.0 / d })
                        .collect();
                    let mask = coupled.iter().map(|&c| f64::from(u8::from(c))).collect();
                    Level {
                        op: StencilTensors::new(st, like),
                        smooth: Ft::from_host(smooth, &dims, like),
                        coupled: Ft::from_host(mask, &dims, like),
                        sides: [st.nx, st.ny],
                    }
                })
                .collect()
        })
    }
}

/// Sums of 2×2 blocks: `[B, ny, nx] → [B, ⌈ny/2⌉, ⌈nx/2⌉]` (`coarse = [nx_c, ny_c]`), an odd
/// last row or column padded with zeros.
fn restrict<B: Backend>(r: Ft<B>, coarse: [usize; 2]) -> Ft<B> {
    let [b, ny, nx] = <[usize; 3]>::try_from(r.dims()).expect("[B, ny, nx]");
    let [nxc, nyc] = coarse;
    let mut r = r;
    if 2 * nxc > nx {
        r = Ft::cat(vec![r.clone(), Ft::zeros(&[b, ny, 1], &r.0)], 2);
    }
    if 2 * nyc > ny {
        r = Ft::cat(vec![r.clone(), Ft::zeros(&[b, 1, 2 * nxc], &r.0)], 1);
    }
    let blocks = r.reshape(&[b, nyc, 2, nxc, 2]);
    Ft(B::float_sum_dims(blocks.0, &[2, 4])).reshape(&[b, nyc, nxc])
}

/// Piecewise-constant prolongation: `[B, ny_c, nx_c] → [B, ny, nx]` (`fine = [nx, ny]`).
fn prolong<B: Backend>(e: Ft<B>, fine: [usize; 2]) -> Ft<B> {
    let [b, nyc, nxc] = <[usize; 3]>::try_from(e.dims()).expect("[B, ny, nx]");
    let [nx, ny] = fine;
    let cells = e.reshape(&[b, nyc, 1, nxc, 1]);
    let wide = Ft::<B>(B::float_expand(cells.0, Shape::new([b, nyc, 2, nxc, 2])));
    let x = wide.reshape(&[b, 2 * nyc, 2 * nxc]);
    let x = if 2 * nxc > nx { x.narrow(2, 0, nx) } else { x };
    if 2 * nyc > ny { x.narrow(1, 0, ny) } else { x }
}

/// Three normalised right-hand sides `[3, ny, nx]` that exercise every scale: pseudo-random
/// values, the smoothest modes of the domain, two opposite point sources.
fn calibration_rhs(st: &Stencil) -> Vec<f64> {
    let (nx, ny) = (st.nx, st.ny);
    let n = nx * ny;
    let random = (0..n).map(|k| ((k as f64 * 0.618_034).fract() - 0.5) * 2.0);
    let smooth = (0..n).map(|k| {
        let (x, y) = ((k % nx) as f64 / nx as f64, (k / nx) as f64 / ny as f64);
        let pi = std::f64::consts::PI;
        0.5 * ((pi * x).sin() * (pi * y).sin() + (2.0 * pi * x).cos() * (pi * y).cos())
    });
    let mut points = vec![0.0; n];
    points[(ny / 3) * nx + nx / 3] = 1.0;
    points[(2 * ny / 3) * nx + 2 * nx / 3] = -1.0;
    random.chain(smooth).chain(points).collect()
}
