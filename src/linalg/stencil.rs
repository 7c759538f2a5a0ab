//! A symmetric positive definite 5-point operator on a (possibly periodic) grid of nodes.

/// Neighbour directions, in the order of [`Stencil::w`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// `i - 1`.
    West = 0,
    /// `i + 1`.
    East = 1,
    /// `j - 1`.
    South = 2,
    /// `j + 1`.
    North = 3,
}

impl Dir {
    /// All four directions.
    pub const ALL: [Dir; 4] = [Dir::West, Dir::East, Dir::South, Dir::North];

    /// The opposite direction.
    pub fn opposite(self) -> Dir {
        match self {
            Dir::West => Dir::East,
            Dir::East => Dir::West,
            Dir::South => Dir::North,
            Dir::North => Dir::South,
        }
    }
}

/// `(A x)_c = diag_c x_c − Σ_d w[d]_c x_{nbr(c, d)}` on an `ny × nx` node grid, row-major.
///
/// `w[d]_c` is zero where `c` has no neighbour in direction `d` (a closed face, an obstacle, or
/// the domain edge of a non-periodic axis); Dirichlet ghosts only add to `diag`. Assembly keeps
/// the weights symmetric (`w[East]_c == w[West]_{east(c)}`), so `A` is SPD when every connected
/// component has a positive diagonal surplus somewhere.
#[derive(Clone, Debug, PartialEq)]
pub struct Stencil {
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Wrap-around along `[x, y]`.
    pub periodic: [bool; 2],
    /// Diagonal, `[ny * nx]`.
    pub diag: Vec<f64>,
    /// Off-diagonal weights per direction (see [`Dir`]), each `[ny * nx]`.
    pub w: [Vec<f64>; 4],
}

impl Stencil {
    /// All-zero operator.
    pub fn zeros(nx: usize, ny: usize, periodic: [bool; 2]) -> Self {
        let n = nx * ny;
        Self {
            nx,
            ny,
            periodic,
            diag: vec![0.0; n],
            w: std::array::from_fn(|_| vec![0.0; n]),
        }
    }

    /// Unknowns.
    pub fn len(&self) -> usize {
        self.nx * self.ny
    }

    /// True for an empty grid.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of the neighbour of node `c` in direction `d`, wrapping on periodic axes.
    #[inline]
    pub fn neighbour(&self, c: usize, d: Dir) -> Option<usize> {
        let (j, i) = (c / self.nx, c % self.nx);
        let (nx, ny) = (self.nx, self.ny);
        match d {
            Dir::West if i > 0 => Some(c - 1),
            Dir::West if self.periodic[0] => Some(c + nx - 1),
            Dir::East if i + 1 < nx => Some(c + 1),
            Dir::East if self.periodic[0] => Some(c + 1 - nx),
            Dir::South if j > 0 => Some(c - nx),
            Dir::South if self.periodic[1] => Some(c + nx * (ny - 1)),
            Dir::North if j + 1 < ny => Some(c + nx),
            Dir::North if self.periodic[1] => Some(i),
            _ => None,
        }
    }

    /// Couples nodes `a` and its neighbour in direction `d` with weight `k` (symmetric):
    /// adds `k` to both diagonals and to both off-diagonal weights.
    pub fn couple(&mut self, a: usize, d: Dir, k: f64) {
        let b = self
            .neighbour(a, d)
            .expect("couple: no neighbour in that direction");
        self.w[d as usize][a] += k;
        self.w[d.opposite() as usize][b] += k;
        self.diag[a] += k;
        self.diag[b] += k;
    }

    /// `y = A x` for one right-hand side.
    pub fn apply(&self, x: &[f64], y: &mut [f64]) {
        debug_assert_eq!(x.len(), self.len());
        let (nx, ny) = (self.nx, self.ny);
        let [ww, we, ws, wn] = [&self.w[0], &self.w[1], &self.w[2], &self.w[3]];
        for j in 0..ny {
            for i in 0..nx {
                let c = j * nx + i;
                y[c] = if i > 0 && i + 1 < nx && j > 0 && j + 1 < ny {
                    self.diag[c] * x[c]
                        - ww[c] * x[c - 1]
                        - we[c] * x[c + 1]
                        - ws[c] * x[c - nx]
                        - wn[c] * x[c + nx]
                } else {
                    let mut acc = self.diag[c] * x[c];
                    for d in Dir::ALL {
                        let wd = self.w[d as usize][c];
                        if wd != 0.0
                            && let Some(n) = self.neighbour(c, d)
                        {
                            acc -= wd * x[n];
                        }
                    }
                    acc
                };
            }
        }
    }

    /// Lower-triangle triplets `(row, col, value)` of `A` (for the sparse factorisation).
    pub fn lower_triplets(&self) -> Vec<(usize, usize, f64)> {
        let mut t = Vec::with_capacity(self.len() * 3);
        for c in 0..self.len() {
            t.push((c, c, self.diag[c]));
            for d in Dir::ALL {
                let wd = self.w[d as usize][c];
                if wd != 0.0
                    && let Some(n) = self.neighbour(c, d)
                    && n > c
                {
                    // A 2-wide periodic axis couples the same pair through two faces: the
                    // triplets add up, which is what the operator means.
                    t.push((n, c, -wd));
                }
            }
        }
        t
    }
}
