//! The level hierarchy of a multigrid preconditioner for a 5-point SPD [`Stencil`], built once
//! on the host; the device-side V-cycle and CG that use it live in the ops' default bodies.
//!
//! Coarsening aggregates 2×2 blocks of nodes (an odd last row or column forms 1-wide
//! aggregates; periodic axes stay periodic). Nodes without any coupling (solid cells, isolated
//! pinned cells) are left out of every aggregate: the smoother solves their identity-like rows
//! exactly. With the piecewise-constant prolongation `P` over the coupled nodes, the coarse
//! operator is `A_c = PᵀAP / COARSE_SCALE`: Galerkin, scaled so that the coarse correction
//! `P A_c⁻¹ Pᵀ r` is over-corrected by that factor, which restores the approximation property
//! that plain aggregation loses on smooth modes (it is a 5-point stencil again, symmetric and
//! positive definite). The coarsest level is solved with a dense inverse.

use super::{DenseInverse, Dir, SolveError, Stencil};

/// The coarsest level has at most this many nodes (its dense inverse is then at most 4 MiB f32).
pub const COARSE_MAX_NODES: usize = 1024;

/// Over-correction of the aggregation coarse levels (`A_c = PᵀAP / COARSE_SCALE`).
pub const COARSE_SCALE: f64 = 1.8;

/// A level below which no further coarsening happens: both sides at least this long.
const MIN_SIDE: usize = 4;

/// The operators of every level (finest first) and the coarsest level's dense inverse.
#[derive(Debug)]
pub struct Hierarchy {
    /// `levels[0]` is the operator itself; `levels[k + 1]` aggregates `levels[k]`.
    pub levels: Vec<Stencil>,
    /// Per level: whether each node takes part in aggregation (has a nonzero coupling).
    pub coupled: Vec<Vec<bool>>,
    /// `A⁻¹` of the last level.
    pub coarse: DenseInverse,
}

impl Hierarchy {
    /// Coarsens `fine` until a level has at most [`COARSE_MAX_NODES`] nodes (or a side would
    /// drop below 4), then inverts the last level.
    pub fn new(fine: &Stencil) -> Result<Self, SolveError> {
        let mut levels = vec![fine.clone()];
        loop {
            let last = levels.last().expect("at least the fine level");
            if last.len() <= COARSE_MAX_NODES
                || last.nx.div_ceil(2) < MIN_SIDE
                || last.ny.div_ceil(2) < MIN_SIDE
            {
                break;
            }
            let next = coarsen(last);
            levels.push(next);
        }
        let coupled = levels.iter().map(coupled_nodes).collect();
        let coarse = DenseInverse::of(levels.last().expect("a level"), &[])?;
        Ok(Self {
            levels,
            coupled,
            coarse,
        })
    }
}

/// Whether each node has a nonzero coupling to a neighbour.
pub fn coupled_nodes(st: &Stencil) -> Vec<bool> {
    (0..st.len())
        .map(|c| Dir::ALL.iter().any(|&d| st.w[d as usize][c] != 0.0))
        .collect()
}

/// `PᵀAP / COARSE_SCALE` for 2×2 aggregates of the coupled nodes of `st`; aggregates without
/// a coupled node become decoupled unit rows.
pub fn coarsen(st: &Stencil) -> Stencil {
    let (nxc, nyc) = (st.nx.div_ceil(2), st.ny.div_ceil(2));
    let mut c = Stencil::zeros(nxc, nyc, st.periodic);
    let coupled = coupled_nodes(st);
    let agg = |n: usize| (n / st.nx / 2) * nxc + (n % st.nx) / 2;
    let mut members = vec![false; c.len()];
    for (n, _) in coupled.iter().enumerate().filter(|(_, c)| **c) {
        let a = agg(n);
        members[a] = true;
        c.diag[a] += st.diag[n];
        for d in [Dir::East, Dir::North] {
            let w = st.w[d as usize][n];
            if w == 0.0 {
                continue;
            }
            let m = st.neighbour(n, d).expect("a weight implies a neighbour");
            let b = agg(m);
            if a == b {
                c.diag[a] -= 2.0 * w;
            } else {
                c.w[d as usize][a] += w;
                c.w[d.opposite() as usize][b] += w;
            }
        }
    }
    let s = 1.0 / COARSE_SCALE;
    for v in c.diag.iter_mut().chain(c.w.iter_mut().flatten()) {
        *v *= s;
    }
    for (d, has) in c.diag.iter_mut().zip(members) {
        if !has {
            *d = 1.0;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 5-point Laplacian with unit weights on an `nx × ny` grid, `p = 0` beyond the west
    /// edge (one Dirichlet face per west-edge node).
    fn laplacian(nx: usize, ny: usize, periodic: [bool; 2]) -> Stencil {
        let mut st = Stencil::zeros(nx, ny, periodic);
        for c in 0..nx * ny {
            for d in [Dir::East, Dir::North] {
                if st.neighbour(c, d).is_some() {
                    st.couple(c, d, 1.0);
                }
            }
            if c % nx == 0 {
                st.diag[c] += 1.0;
            }
        }
        st
    }

    /// Dense `PᵀAP` by brute force for the coupled nodes.
    fn galerkin(st: &Stencil) -> Vec<f64> {
        let (nxc, nyc) = (st.nx.div_ceil(2), st.ny.div_ceil(2));
        let nc = nxc * nyc;
        let coupled = coupled_nodes(st);
        let agg = |n: usize| (n / st.nx / 2) * nxc + (n % st.nx) / 2;
        let mut g = vec![0.0; nc * nc];
        for a in 0..nc {
            let mut x = vec![0.0; st.len()];
            (0..st.len())
                .filter(|&n| coupled[n] && agg(n) == a)
                .for_each(|n| x[n] = 1.0);
            let mut y = vec![0.0; st.len()];
            st.apply(&x, &mut y);
            for n in (0..st.len()).filter(|&n| coupled[n]) {
                g[agg(n) * nc + a] += y[n];
            }
        }
        g
    }

    #[test]
    fn coarse_operator_is_the_scaled_galerkin_product() {
        for (nx, ny, periodic) in [
            (8, 6, [false, false]),
            (9, 7, [false, false]),
            (8, 10, [true, false]),
            (10, 8, [true, true]),
        ] {
            let mut st = laplacian(nx, ny, periodic);
            // A solid cell: decoupled unit row.
            let solid = nx + 2;
            for d in Dir::ALL {
                if let Some(m) = st.neighbour(solid, d) {
                    let w = st.w[d as usize][solid];
                    st.w[d as usize][solid] = 0.0;
                    st.w[d.opposite() as usize][m] = 0.0;
                    st.diag[m] -= w;
                }
            }
            st.diag[solid] = 1.0;
            let c = coarsen(&st);
            let g = galerkin(&st);
            let nc = c.len();
            for a in 0..nc {
                let mut e = vec![0.0; nc];
                e[a] = 1.0;
                let mut y = vec![0.0; nc];
                c.apply(&e, &mut y);
                for b in 0..nc {
                    let want = g[b * nc + a] / COARSE_SCALE;
                    assert!(
                        (y[b] - want).abs() < 1e-12,
                        "{nx}x{ny} {periodic:?}: A_c[{b},{a}] = {} vs {want}",
                        y[b]
                    );
                }
            }
        }
    }

    #[test]
    fn hierarchy_stops_at_the_coarse_size_and_inverts_it() {
        let st = laplacian(256, 128, [false, false]);
        let h = Hierarchy::new(&st).unwrap();
        let sides: Vec<_> = h.levels.iter().map(|l| (l.nx, l.ny)).collect();
        assert_eq!(sides, [(256, 128), (128, 64), (64, 32), (32, 16)]);
        assert!(h.coarse.residual < 1e-10, "{}", h.coarse.residual);
        assert!(h.levels.last().unwrap().len() <= COARSE_MAX_NODES);
    }
}
