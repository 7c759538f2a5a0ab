//! The pressure Poisson system of the MAC grid with boundaries and obstacles.

use super::stencil::{Dir, Stencil};
use crate::grid::{ArraySpec, Boundaries, Grid, Location, SideBc, SolidMask};

/// What the projection does with one velocity face.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaceRule {
    /// Between two pressure unknowns (or an unknown and an open-boundary ghost `p = 0`):
    /// corrected by `−∇p`.
    Open,
    /// Prescribed normal velocity (closed wall, inflow, or a face touching an obstacle).
    Fixed(f64),
    /// Left as it is (zero-gradient boundary faces).
    Free,
}

/// `A p = −dx · (Σ outward face velocities)` on the cells, where `A` is the negated
/// cell-unit Laplacian over open faces: `(A p)_c = Σ_{open faces f of c} (p_c − p_{nbr(f)})`,
/// with `p = 0` beyond open boundaries. Then `u ← u − ∇p` (∇ in domain units) makes the
/// discrete divergence vanish in every fluid cell.
///
/// Solid cells are decoupled identity rows (`p = 0`). A connected fluid region with no open
/// boundary (closed box, periodic domain, an enclosed pocket) leaves `A` singular with the
/// constant as null vector: its first cell gets `+1` on the diagonal ("pinned"), and its
/// right-hand side is projected onto the range (mean removed), which gives the exact solution
/// with `p = 0` at the pinned cell.
#[derive(Clone, Debug)]
pub struct PoissonSystem {
    /// The grid.
    pub grid: Grid,
    /// The SPD operator `A` (cell unknowns, row-major `[ny, nx]`).
    pub stencil: Stencil,
    /// Rule per x-face, `[ny, nx+1]`.
    pub u_faces: Vec<FaceRule>,
    /// Rule per y-face, `[ny+1, nx]`.
    pub v_faces: Vec<FaceRule>,
    /// Cells of each floating region (no open boundary), for the range projection.
    pub floating: Vec<Vec<u32>>,
    /// Solid cells, `[ny, nx]`.
    pub solid: Vec<bool>,
    /// How the pressure continues beyond the edges (0 outside open sides).
    pub pressure: ArraySpec,
    /// The [`FaceRule::Fixed`] x-faces as `(index, value)`.
    pub u_fixed: Vec<(u32, f64)>,
    /// The [`FaceRule::Fixed`] y-faces as `(index, value)`.
    pub v_fixed: Vec<(u32, f64)>,
    /// Whether each x-face is [`FaceRule::Open`] (corrected by the pressure gradient).
    pub u_open: Vec<bool>,
    /// Whether each y-face is [`FaceRule::Open`].
    pub v_open: Vec<bool>,
}

/// `(index, value)` of the fixed faces among `rules`.
fn fixed_faces(rules: &[FaceRule]) -> Vec<(u32, f64)> {
    rules
        .iter()
        .enumerate()
        .filter_map(|(k, r)| {
            if let FaceRule::Fixed(v) = r {
                Some((k as u32, *v))
            } else {
                None
            }
        })
        .collect()
}

impl PoissonSystem {
    /// Assembles the system; `bcs` must be validated.
    pub fn new(bcs: &Boundaries, solid: &SolidMask) -> Self {
        let grid = solid.grid;
        let (nx, ny) = (grid.nx, grid.ny);
        let periodic = [bcs.periodic(0), bcs.periodic(1)];
        let mut stencil = Stencil::zeros(nx, ny, periodic);
        let fluid = |c: usize| !solid.solid[c];
        let mut u_faces = vec![FaceRule::Free; ny * (nx + 1)];
        let mut v_faces = vec![FaceRule::Free; (ny + 1) * nx];
        let mut open_ghost = vec![false; nx * ny];

        // Interior faces (and the periodic seam, which is face 0 / face n).
        for j in 0..ny {
            for i in 0..=nx {
                let rule = if (i == 0 || i == nx) && !periodic[0] {
                    let side = if i == 0 { bcs.x_lo } else { bcs.x_hi };
                    let cell = j * nx + if i == 0 { 0 } else { nx - 1 };
                    boundary_rule(
                        side,
                        fluid(cell),
                        &mut open_ghost[cell],
                        &mut stencil.diag[cell],
                    )
                } else {
                    let (l, r) = (j * nx + (i + nx - 1) % nx, j * nx + i % nx);
                    if fluid(l) && fluid(r) {
                        if i < nx {
                            stencil.couple(l, Dir::East, 1.0);
                        }
                        FaceRule::Open
                    } else {
                        FaceRule::Fixed(0.0)
                    }
                };
                u_faces[j * (nx + 1) + i] = rule;
            }
        }
        for j in 0..=ny {
            for i in 0..nx {
                let rule = if (j == 0 || j == ny) && !periodic[1] {
                    let side = if j == 0 { bcs.y_lo } else { bcs.y_hi };
                    let cell = if j == 0 { i } else { (ny - 1) * nx + i };
                    boundary_rule(
                        side,
                        fluid(cell),
                        &mut open_ghost[cell],
                        &mut stencil.diag[cell],
                    )
                } else {
                    let (b, t) = (((j + ny - 1) % ny) * nx + i, (j % ny) * nx + i);
                    if fluid(b) && fluid(t) {
                        if j < ny {
                            stencil.couple(b, Dir::North, 1.0);
                        }
                        FaceRule::Open
                    } else {
                        FaceRule::Fixed(0.0)
                    }
                };
                v_faces[j * nx + i] = rule;
            }
        }
        for (c, s) in solid.solid.iter().enumerate() {
            if *s {
                stencil.diag[c] = 1.0;
            }
        }
        let floating = floating_regions(&stencil, &solid.solid, &open_ghost);
        for region in &floating {
            stencil.diag[region[0] as usize] += 1.0;
        }
        Self {
            grid,
            stencil,
            u_fixed: fixed_faces(&u_faces),
            v_fixed: fixed_faces(&v_faces),
            u_open: u_faces.iter().map(|r| *r == FaceRule::Open).collect(),
            v_open: v_faces.iter().map(|r| *r == FaceRule::Open).collect(),
            u_faces,
            v_faces,
            floating,
            solid: solid.solid.clone(),
            pressure: ArraySpec::new(&grid, Location::Center, bcs.pressure_extrap()),
        }
    }

    /// Builds the right-hand side `−dx·(flux out)` of one batch item from the (already
    /// face-constrained) velocity, with floating regions projected onto the range.
    /// `u: [ny, nx+1]`, `v: [ny+1, nx]`, `rhs: [ny, nx]`.
    pub fn rhs<T: num_traits::Float + num_traits::FromPrimitive>(
        &self,
        u: &[T],
        v: &[T],
        rhs: &mut [T],
    ) {
        let (nx, ny) = (self.grid.nx, self.grid.ny);
        let minus_dx = T::from_f64(-self.grid.dx).expect("finite dx");
        for (j, row) in rhs[..nx * ny].chunks_exact_mut(nx).enumerate() {
            let uj = &u[j * (nx + 1)..(j + 1) * (nx + 1)];
            let (v0, v1) = (&v[j * nx..(j + 1) * nx], &v[(j + 1) * nx..(j + 2) * nx]);
            let solid = &self.solid[j * nx..(j + 1) * nx];
            for i in 0..nx {
                let flux = uj[i + 1] - uj[i] + v1[i] - v0[i];
                row[i] = if solid[i] { T::zero() } else { minus_dx * flux };
            }
        }
        for region in &self.floating {
            let sum = region.iter().fold(0.0f64, |s, &c| {
                s + rhs[c as usize].to_f64().unwrap_or(f64::NAN)
            });
            let mean = T::from_f64(sum / region.len() as f64).unwrap_or_else(T::nan);
            for &c in region {
                rhs[c as usize] = rhs[c as usize] - mean;
            }
        }
    }
}

/// Rule of a non-periodic boundary face next to `cell`; an open side adds its Dirichlet ghost.
fn boundary_rule(
    side: SideBc,
    cell_is_fluid: bool,
    open_ghost: &mut bool,
    diag: &mut f64,
) -> FaceRule {
    match side {
        _ if !cell_is_fluid => FaceRule::Fixed(0.0),
        SideBc::Open => {
            *diag += 1.0;
            *open_ghost = true;
            FaceRule::Open
        }
        SideBc::Dirichlet(v) => FaceRule::Fixed(v),
        SideBc::ZeroGradient => FaceRule::Free,
        SideBc::Periodic => unreachable!("periodic sides have no boundary faces"),
    }
}

/// Connected fluid regions (through coupled faces) that touch no open boundary.
fn floating_regions(stencil: &Stencil, solid: &[bool], open_ghost: &[bool]) -> Vec<Vec<u32>> {
    let mut seen = solid.to_vec();
    let mut out = Vec::new();
    for start in 0..stencil.len() {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let (mut region, mut stack, mut anchored) = (vec![start as u32], vec![start], false);
        while let Some(c) = stack.pop() {
            anchored |= open_ghost[c];
            for d in Dir::ALL {
                if stencil.w[d as usize][c] != 0.0
                    && let Some(n) = stencil.neighbour(c, d)
                    && !seen[n]
                {
                    seen[n] = true;
                    region.push(n as u32);
                    stack.push(n);
                }
            }
        }
        if !anchored {
            region.sort_unstable();
            out.push(region);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{Geometry, Resolution};

    fn system(bcs: Boundaries, obstacles: &[Geometry]) -> PoissonSystem {
        let grid = Grid::new(Resolution::new(8, 6), [8.0, 6.0]).unwrap();
        PoissonSystem::new(&bcs, &SolidMask::new(grid, obstacles).unwrap())
    }

    #[test]
    fn operator_is_symmetric() {
        let s = system(
            Boundaries::all(SideBc::Open),
            &[Geometry::Disc {
                center: [4.0, 3.0],
                radius: 1.2,
            }],
        )
        .stencil;
        for c in 0..s.len() {
            for d in Dir::ALL {
                if let Some(n) = s.neighbour(c, d) {
                    assert_eq!(
                        s.w[d as usize][c],
                        s.w[d.opposite() as usize][n],
                        "cell {c} {d:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn closed_and_periodic_domains_are_pinned_once_open_ones_are_not() {
        assert_eq!(
            system(Boundaries::all(SideBc::Dirichlet(0.0)), &[])
                .floating
                .len(),
            1
        );
        assert_eq!(
            system(Boundaries::all(SideBc::Periodic), &[])
                .floating
                .len(),
            1
        );
        assert!(
            system(Boundaries::all(SideBc::Open), &[])
                .floating
                .is_empty()
        );
        // A box wall cutting the closed domain in two leaves two floating regions.
        let wall = Geometry::Box {
            min: [3.2, -1.0],
            max: [3.8, 7.0],
        };
        assert_eq!(
            system(Boundaries::all(SideBc::Dirichlet(0.0)), &[wall])
                .floating
                .len(),
            2
        );
    }
}
