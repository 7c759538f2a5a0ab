//! Memory traffic of one step: the bytes a step's passes must read and write if each pass
//! touched its arrays exactly once (every pass fused, nothing re-read), for the lower bound
//! of a step's time on a bandwidth-bound device (bytes ÷ the device's measured copy
//! bandwidth).
//!
//! The count follows the step as it runs, solver included: viscosity and forcing (one pass
//! over both components), the advection of each array (its field and both velocity
//! components read, the result written), the projection's two halves, and the solve: a dense
//! inverse reads its `n²` matrix; the multigrid CG's iterations each touch the CG vectors and
//! the stencil on the fine level and run one V-cycle ([`MG_PER_LEVEL`] arrays per level).
//! Element size: 4 bytes (f32).

use super::sim::Simulation;
use crate::linalg::{SolveInfo, SolveMethod};
use crate::ops::multigrid::SWEEPS;

/// Arrays of a level's size one fine-level CG iteration touches: `A·p` (p, diagonal, four
/// weights in, one out: 7), two dot products (4), the x and r updates (6), the p update (3).
pub const CG_PER_ITERATION: f64 = 20.0;

/// Arrays of a level's size one V-cycle touches there: the first sweep `s·b` (3), every
/// further sweep `x + s·(b − A x)` (x, b, s, diagonal, four weights in, x out: 9), the masked
/// residual (9), the 2×2 restriction (1 in, ¼ out), the prolongation added to x (x, e/4,
/// mask in, x out: 3¼).
pub const MG_PER_LEVEL: f64 = 3.0 + 9.0 * (2 * SWEEPS - 1) as f64 + 9.0 + 1.25 + 3.25;

/// Bytes per element (f32).
const ELEMENT: f64 = 4.0;

/// Bytes one step of `sim` touches for `batch` flows (see the module docs), with the marker
/// when `with_marker`, its solve as `solve` reports it (a dense inverse is read once for the
/// whole batch). None for a Cholesky solve (a CPU path).
pub fn step_bytes(
    sim: &Simulation,
    batch: usize,
    with_marker: bool,
    solve: &SolveInfo,
) -> Option<f64> {
    let g = sim.grid;
    let cells = (g.nx * g.ny) as f64;
    let (nu, nv) = ((g.ny * (g.nx + 1)) as f64, ((g.ny + 1) * g.nx) as f64);
    let velocity = nu + nv;
    let mut elements = 2.0 * velocity; // viscosity and forcing: u, v in and out
    elements += (velocity + nu) + (velocity + nv); // advection of u and of v
    if with_marker && sim.has_marker() {
        elements += velocity + 2.0 * cells;
    }
    elements += 2.0 * velocity + cells; // constrain + right-hand side
    elements += 2.0 * velocity + cells; // subtract the gradient
    let mut shared = 0.0;
    elements += match solve.method {
        SolveMethod::Cholesky => return None,
        SolveMethod::DenseInverse => {
            shared = cells * cells;
            2.0 * cells
        }
        SolveMethod::MultigridCg => {
            let levels = sim
                .projection
                .multigrid()
                .map(|m| m.hierarchy.levels.as_slice());
            let (sizes, coarse): (Vec<f64>, f64) = match levels {
                Ok(levels) => (
                    levels[..levels.len() - 1]
                        .iter()
                        .map(|l| l.len() as f64)
                        .collect(),
                    levels.last().map_or(0.0, |l| l.len() as f64),
                ),
                Err(_) => (vec![cells], 0.0),
            };
            let vcycle = MG_PER_LEVEL * sizes.iter().sum::<f64>() + coarse * coarse + 2.0 * coarse;
            solve.iterations as f64 * (CG_PER_ITERATION * cells + vcycle)
        }
        SolveMethod::Cg | SolveMethod::JacobiCg => {
            solve.iterations as f64 * CG_PER_ITERATION * cells
        }
    };
    Some((elements * batch as f64 + shared) * ELEMENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fluid::SceneConfig;
    use crate::grid::Resolution;

    #[test]
    fn counts_every_pass_once_and_the_solver_as_run() {
        let mut scene = SceneConfig::wake_phiflow();
        scene.resolution = Resolution::new(8, 16);
        let sim = Simulation::new(&scene, &burn::tensor::Device::flex()).unwrap();
        let (c, nu, nv) = (128.0, 16.0 * 9.0, 17.0 * 8.0);
        let v = nu + nv;
        let marker = if sim.has_marker() { v + 2.0 * c } else { 0.0 };
        let passes = 2.0 * v + (v + nu) + (v + nv) + marker + 2.0 * (2.0 * v + c);
        let info = |method, iterations| SolveInfo {
            method,
            iterations,
            residual: 0.0,
            batch: 2,
        };
        let dense = step_bytes(&sim, 2, true, &info(SolveMethod::DenseInverse, 0)).unwrap();
        assert_eq!(dense, 4.0 * (2.0 * (passes + 2.0 * c) + c * c));
        // 128 cells: one level, the coarsest, solved by its dense inverse.
        let mg = step_bytes(&sim, 1, true, &info(SolveMethod::MultigridCg, 3)).unwrap();
        assert_eq!(mg, 4.0 * (passes + 3.0 * (20.0 * c + c * c + 2.0 * c)));
        assert_eq!(MG_PER_LEVEL, 43.5);
        assert!(step_bytes(&sim, 1, true, &info(SolveMethod::Cholesky, 0)).is_none());
    }
}
