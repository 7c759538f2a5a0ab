//! Fused CPU kernels over raw row-major slices, generic over `f32`/`f64`.
//!
//! Every kernel makes one pass over its output, parallel over batch items and rows with rayon
//! above [`PAR_THRESHOLD`] elements. Positions are in cells; element `[j, i]` of an array sits
//! at `(i + ox, j + oy)` (see [`ArraySpec`]).

use crate::grid::{ArraySpec, Extrap, Location};
use crate::linalg::PoissonSystem;
use crate::linalg::poisson::FaceRule;
use rayon::prelude::*;

/// Floating-point element types of the kernels.
pub trait Real: crate::linalg::SolveScalar + std::fmt::Debug {
    /// Converts from `f64` (rounding for `f32`).
    #[inline]
    fn of(x: f64) -> Self {
        Self::from_f64(x).expect("finite conversion")
    }
    /// As `f64`.
    #[inline(always)]
    fn wide(self) -> f64 {
        self.into()
    }
    /// `(⌊self⌋, self − ⌊self⌋)` by an integer cast in the type's own precision (the x86-64
    /// baseline has no floor instruction, and libm's is slow in this loop); saturates far
    /// outside, NaN gives 0.
    fn floor_frac(self) -> (isize, Self);
}
impl Real for f32 {
    #[inline(always)]
    fn floor_frac(self) -> (isize, f32) {
        let t = self as i32;
        let i = if (t as f32) > self { t - 1 } else { t };
        (i as isize, self - i as f32)
    }
}
impl Real for f64 {
    #[inline(always)]
    fn floor_frac(self) -> (isize, f64) {
        let t = self as i64;
        let i = if (t as f64) > self { t - 1 } else { t };
        (i as isize, self - i as f64)
    }
}

/// Below this many output elements a kernel runs on the calling thread.
pub const PAR_THRESHOLD: usize = 16 * 1024;

/// Runs `row(j, out_row)` for every row of every batch item of `out` (rows of `nx` elements,
/// `ny` rows per item), in parallel when the output is large.
pub fn for_rows<E: Send>(
    out: &mut [E],
    nx: usize,
    ny: usize,
    row: impl Fn(usize, usize, &mut [E]) + Sync,
) {
    let item = nx * ny;
    if out.len() >= PAR_THRESHOLD {
        out.par_chunks_mut(nx)
            .enumerate()
            .for_each(|(r, o)| row(r / ny, r % ny, o));
    } else {
        out.chunks_mut(nx)
            .enumerate()
            .for_each(|(r, o)| row(r / ny, r % ny, o));
    }
    debug_assert_eq!(out.len() % item, 0);
}

/// Where index `idx` along an axis of `n` elements lands: `Ok(index)` or `Err(constant)`.
/// Periodic axes always wrap into `[0, period)`, so the duplicate last column of a periodic
/// face array is never read (it is a copy of the first).
#[inline(always)]
fn resolve(idx: isize, n: usize, period: usize, lo: Extrap, hi: Extrap) -> Result<usize, f64> {
    if lo == Extrap::Periodic {
        return Ok(idx.rem_euclid(period as isize) as usize);
    }
    if idx >= 0 && (idx as usize) < n {
        return Ok(idx as usize);
    }
    match if idx < 0 { lo } else { hi } {
        Extrap::ZeroGradient => Ok(if idx < 0 { 0 } else { n - 1 }),
        Extrap::Value(c) => Err(c),
        Extrap::Periodic => Ok(idx.rem_euclid(period as isize) as usize),
    }
}

/// Element `[j, i]` of one batch item `a`, extrapolated beyond the edges as `s` says. Where both
/// axes leave the array with a constant, the y rule wins (like padding x first, then y).
#[inline(always)]
pub fn fetch<T: Real>(a: &[T], s: &ArraySpec, j: isize, i: isize) -> T {
    let jj = match resolve(j, s.ny, s.period_y, s.ext[2], s.ext[3]) {
        Ok(j) => j,
        Err(c) => return T::of(c),
    };
    match resolve(i, s.nx, s.period_x, s.ext[0], s.ext[1]) {
        Ok(i) => a[jj * s.nx + i],
        Err(c) => T::of(c),
    }
}

/// Bilinear sampling of one array (one batch item) at fractional *array indices* `(fx, fy)`
/// (element `[j, i]` sits at `(i, j)`), extrapolated beyond the edges as its spec says.
pub struct Sampler<'a, T> {
    a: &'a [T],
    s: &'a ArraySpec,
    /// Largest `i0 + 1` (resp. `j0 + 1`) of the interior fast path: the array size, or the
    /// period on a periodic axis (the duplicate column is never read directly).
    lim: (usize, usize),
}

impl<'a, T: Real> Sampler<'a, T> {
    /// A sampler of `a` (one item of the array described by `s`).
    pub fn new(a: &'a [T], s: &'a ArraySpec) -> Self {
        let lim_x = if s.ext[0] == Extrap::Periodic {
            s.period_x
        } else {
            s.nx
        };
        let lim_y = if s.ext[2] == Extrap::Periodic {
            s.period_y
        } else {
            s.ny
        };
        Self {
            a,
            s,
            lim: (lim_x, lim_y),
        }
    }

    /// The sample and its four stencil values (for limiters).
    #[inline(always)]
    pub fn at4(&self, fx: T, fy: T) -> (T, [T; 4]) {
        let (i0, tx) = fx.floor_frac();
        let (j0, ty) = fy.floor_frac();
        let (a, s) = (self.a, self.s);
        let q = if i0 >= 0
            && j0 >= 0
            && ((i0 + 1) as usize) < self.lim.0
            && ((j0 + 1) as usize) < self.lim.1
        {
            let b = j0 as usize * s.nx + i0 as usize;
            [a[b], a[b + 1], a[b + s.nx], a[b + s.nx + 1]]
        } else {
            [
                fetch(a, s, j0, i0),
                fetch(a, s, j0, i0 + 1),
                fetch(a, s, j0 + 1, i0),
                fetch(a, s, j0 + 1, i0 + 1),
            ]
        };
        let lo = q[0] + tx * (q[1] - q[0]);
        let hi = q[2] + tx * (q[3] - q[2]);
        (lo + ty * (hi - lo), q)
    }

    /// The sample.
    #[inline(always)]
    pub fn at(&self, fx: T, fy: T) -> T {
        self.at4(fx, fy).0
    }
}

/// Reads the velocity `(u, v)` (domain units per time) at the elements of an array at a given
/// location: the same values as bilinear sampling there (each component is exact on its own
/// faces and an average of 2 or 4 faces elsewhere), read directly where all of them are inside
/// the arrays and through the extrapolation at the edges.
struct Velocity<'a, T> {
    u: &'a [T],
    v: &'a [T],
    su: &'a ArraySpec,
    sv: &'a ArraySpec,
    at: Location,
    periodic: (bool, bool),
    half: T,
    quarter: T,
}

impl<'a, T: Real> Velocity<'a, T> {
    fn new(u: &'a [T], su: &'a ArraySpec, v: &'a [T], sv: &'a ArraySpec, sq: &ArraySpec) -> Self {
        let at = match (sq.ox == 0.0, sq.oy == 0.0) {
            (true, _) => Location::FaceX,
            (_, true) => Location::FaceY,
            _ => Location::Center,
        };
        Self {
            u,
            v,
            su,
            sv,
            at,
            periodic: (su.ext[0] == Extrap::Periodic, sv.ext[2] == Extrap::Periodic),
            half: T::of(0.5),
            quarter: T::of(0.25),
        }
    }

    #[inline(always)]
    fn at(&self, j: usize, i: usize) -> (T, T) {
        let (u, v, su, sv) = (self.u, self.v, self.su, self.sv);
        let (nx, ny) = (su.nx - 1, sv.ny - 1);
        let (uw, vw) = (su.nx, sv.nx);
        // Periodic axes read the first column/row instead of its duplicate (as `fetch` does).
        let col = |i: usize| if self.periodic.0 && i == nx { 0 } else { i };
        let row = |j: usize| if self.periodic.1 && j == ny { 0 } else { j };
        let (half, quarter) = (self.half, self.quarter);
        match self.at {
            // Cell centre: both averages use faces of the cell itself.
            Location::Center => (
                half * (u[j * uw + i] + u[j * uw + col(i + 1)]),
                half * (v[j * vw + i] + v[row(j + 1) * vw + i]),
            ),
            // x-face (i in 0..=nx, j in 0..ny): u exact, v from the four surrounding y-faces.
            Location::FaceX => {
                let vx = u[j * uw + col(i)];
                let vy = if i > 0 && i < nx && row(j + 1) == j + 1 {
                    let b = j * vw + i;
                    quarter * (v[b - 1] + v[b] + v[b + vw - 1] + v[b + vw])
                } else {
                    let (jj, ii) = (j as isize, i as isize);
                    quarter
                        * (fetch(v, sv, jj, ii - 1)
                            + fetch(v, sv, jj, ii)
                            + fetch(v, sv, jj + 1, ii - 1)
                            + fetch(v, sv, jj + 1, ii))
                };
                (vx, vy)
            }
            // y-face (i in 0..nx, j in 0..=ny): v exact, u from the four surrounding x-faces.
            Location::FaceY => {
                let vy = v[row(j) * vw + i];
                let vx = if j > 0 && j < ny && col(i + 1) == i + 1 {
                    let a = j * uw + i;
                    quarter * (u[a - uw] + u[a - uw + 1] + u[a] + u[a + 1])
                } else {
                    let (jj, ii) = (j as isize, i as isize);
                    quarter
                        * (fetch(u, su, jj - 1, ii)
                            + fetch(u, su, jj - 1, ii + 1)
                            + fetch(u, su, jj, ii)
                            + fetch(u, su, jj, ii + 1))
                };
                (vx, vy)
            }
        }
    }
}

/// Inputs of one advection: the advected array, the velocity and the scheme.
pub struct Advect<'a, T> {
    /// Advected array (one or more batch items).
    pub q: &'a [T],
    /// Its spec.
    pub sq: &'a ArraySpec,
    /// x-velocity, `[B, ny, nx+1]`.
    pub u: &'a [T],
    /// y-velocity, `[B, ny+1, nx]`.
    pub v: &'a [T],
    /// Spec of `u`.
    pub su: &'a ArraySpec,
    /// Spec of `v`.
    pub sv: &'a ArraySpec,
    /// `dt / dx`: converts a velocity into cells per step.
    pub dt_dx: f64,
}

impl<'a, T: Real> Advect<'a, T> {
    /// The velocity reader and the sampler of `q` for batch item `b`.
    fn item(&self, b: usize) -> (Velocity<'a, T>, Sampler<'a, T>) {
        let vel = Velocity::new(
            item(self.u, self.su, b),
            self.su,
            item(self.v, self.sv, b),
            self.sv,
            self.sq,
        );
        (vel, Sampler::new(item(self.q, self.sq, b), self.sq))
    }
}

/// First-order semi-Lagrangian advection: `out(x) = q(x − u(x)·dt)`, bilinear.
pub fn semi_lagrangian<T: Real>(a: &Advect<'_, T>, out: &mut [T]) {
    let s = T::of(a.dt_dx);
    for_rows(out, a.sq.nx, a.sq.ny, |b, j, o| {
        let (vel, q) = a.item(b);
        let fy = T::of(j as f64);
        let mut fx = T::zero();
        for (i, o) in o.iter_mut().enumerate() {
            let (vx, vy) = vel.at(j, i);
            *o = q.at(fx - s * vx, fy - s * vy);
            fx += T::one();
        }
    });
}

/// MacCormack advection with the min/max limiter of Selle et al. 2008: a forward and a
/// backward semi-Lagrangian step estimate the error, half of it is added back, and the result
/// is clamped to the values of the forward step's interpolation stencil.
pub fn maccormack<T: Real>(a: &Advect<'_, T>, out: &mut [T]) {
    let sq = a.sq;
    let s = T::of(a.dt_dx);
    // Pass 1: forward step and the bounds of its interpolation stencil.
    let mut pass1 = vec![[T::zero(); 3]; out.len()];
    for_rows(&mut pass1, sq.nx, sq.ny, |b, j, o| {
        let (vel, q) = a.item(b);
        let fy = T::of(j as f64);
        for (i, o) in o.iter_mut().enumerate() {
            let (vx, vy) = vel.at(j, i);
            let (val, st) = q.at4(T::of(i as f64) - s * vx, fy - s * vy);
            *o = [
                val,
                st.iter().copied().fold(T::infinity(), T::min),
                st.iter().copied().fold(T::neg_infinity(), T::max),
            ];
        }
    });
    let fwd: Vec<T> = pass1.iter().map(|f| f[0]).collect();
    // Pass 2: backward step from the forward result, correction, limiter.
    let half = T::of(0.5);
    for_rows(out, sq.nx, sq.ny, |b, j, o| {
        let (vel, q) = a.item(b);
        let f = Sampler::new(item(&fwd, sq, b), sq);
        let fy = T::of(j as f64);
        let base = b * sq.len() + j * sq.nx;
        for (i, o) in o.iter_mut().enumerate() {
            let (vx, vy) = vel.at(j, i);
            let back = f.at(T::of(i as f64) + s * vx, fy + s * vy);
            let [f0, lo, hi] = pass1[base + i];
            let corrected = f0 + half * (q.a[j * sq.nx + i] - back);
            *o = corrected.max(lo).min(hi);
        }
    });
}

/// One explicit Euler diffusion step `out = q + α·Lap₅(q)` (cell units, `α = ν·dt/dx²`), with
/// the neighbours beyond the edges given by the array's extrapolation.
pub fn diffuse_explicit<T: Real>(q: &[T], s: &ArraySpec, alpha: f64, out: &mut [T]) {
    let a = T::of(alpha);
    let four = T::of(4.0);
    let (nx, ny) = (s.nx, s.ny);
    // Rows whose vertical neighbours are inside (and off a periodic seam) have a fast interior
    // `1..seam_x-1`; everything else reads through the extrapolation.
    let seam_x = if s.ext[0] == Extrap::Periodic {
        s.period_x
    } else {
        nx
    };
    let seam_y = if s.ext[2] == Extrap::Periodic {
        s.period_y
    } else {
        ny
    };
    for_rows(out, nx, ny, |b, j, o| {
        let q = item(q, s, b);
        let mid = &q[j * nx..(j + 1) * nx];
        let mut fast = 1..1;
        if j > 0 && j + 1 < seam_y && seam_x >= 3 {
            fast = 1..seam_x - 1;
            let (down, up) = (&q[(j - 1) * nx..j * nx], &q[(j + 1) * nx..(j + 2) * nx]);
            let m = seam_x - 2;
            let neighbours = mid[..m]
                .iter()
                .zip(&mid[2..m + 2])
                .zip(down[1..m + 1].iter().zip(&up[1..m + 1]));
            for ((o, c), ((l, r), (d, u))) in
                o[1..m + 1].iter_mut().zip(&mid[1..m + 1]).zip(neighbours)
            {
                *o = *c + a * (*l + *r + *d + *u - four * *c);
            }
        }
        let jj = j as isize;
        for i in (0..nx).filter(|i| !fast.contains(i)) {
            let ii = i as isize;
            let lap = fetch(q, s, jj, ii - 1)
                + fetch(q, s, jj, ii + 1)
                + fetch(q, s, jj - 1, ii)
                + fetch(q, s, jj + 1, ii)
                - four * mid[i];
            o[i] = mid[i] + a * lap;
        }
    });
}

/// Discrete divergence `(u[i+1] − u[i] + v[j+1] − v[j]) / dx` at cell centres, `[B, ny, nx]`.
pub fn divergence<T: Real>(u: &[T], v: &[T], nx: usize, ny: usize, dx: f64, out: &mut [T]) {
    let inv = T::of(1.0 / dx);
    for_rows(out, nx, ny, |b, j, o| {
        let u = &u[b * ny * (nx + 1)..];
        let v = &v[b * (ny + 1) * nx..];
        for (i, o) in o.iter_mut().enumerate() {
            *o = (u[j * (nx + 1) + i + 1] - u[j * (nx + 1) + i] + v[(j + 1) * nx + i]
                - v[j * nx + i])
                * inv;
        }
    });
}

/// Gradient of the cell-centred `p` (spec `s`) on the MAC faces: `gu: [B, ny, nx+1]`,
/// `gv: [B, ny+1, nx]`, differences over `dx` with the extrapolation of `s` beyond the edges.
pub fn gradient<T: Real>(p: &[T], s: &ArraySpec, dx: f64, gu: &mut [T], gv: &mut [T]) {
    let inv = T::of(1.0 / dx);
    let (nx, ny) = (s.nx, s.ny);
    for_rows(gu, nx + 1, ny, |b, j, o| {
        let p = item(p, s, b);
        o.iter_mut()
            .enumerate()
            .for_each(|(i, o)| *o = diff_x(p, s, j, i) * inv);
    });
    for_rows(gv, nx, ny + 1, |b, j, o| {
        let p = item(p, s, b);
        o.iter_mut()
            .enumerate()
            .for_each(|(i, o)| *o = diff_y(p, s, j, i) * inv);
    });
}

/// `p[j, i] − p[j, i−1]`: the difference across x-face `[j, i]` of a centred array.
#[inline(always)]
fn diff_x<T: Real>(p: &[T], s: &ArraySpec, j: usize, i: usize) -> T {
    let (j, i) = (j as isize, i as isize);
    fetch(p, s, j, i) - fetch(p, s, j, i - 1)
}

/// `p[j, i] − p[j−1, i]`: the difference across y-face `[j, i]` of a centred array.
#[inline(always)]
fn diff_y<T: Real>(p: &[T], s: &ArraySpec, j: usize, i: usize) -> T {
    let (j, i) = (j as isize, i as isize);
    fetch(p, s, j, i) - fetch(p, s, j - 1, i)
}

/// Pressure projection of one batch of staggered velocities, in place: constrain the faces,
/// solve `A p = rhs` for every item at once (`solve` gets `[B, n]` and must overwrite it with
/// the solution), then subtract the pressure gradient on open faces. Returns `p` as `[B, n]`.
pub fn project<T: Real, E>(
    sys: &PoissonSystem,
    u: &mut [T],
    v: &mut [T],
    batch: usize,
    solve: impl FnOnce(&mut [T]) -> Result<(), E>,
) -> Result<Vec<T>, E> {
    let g = sys.grid;
    let (nx, ny) = (g.nx, g.ny);
    let (nu, nv, n) = (ny * (nx + 1), (ny + 1) * nx, nx * ny);
    let mut rhs = vec![T::zero(); batch * n];
    let parallel = batch > 1 && batch * n >= PAR_THRESHOLD;
    for_items(parallel, (u, nu), (v, nv), (&mut rhs, n), |u, v, rhs| {
        constrain_faces(sys, u, v);
        sys.rhs(u, v, rhs);
    });
    solve(&mut rhs)?;
    let mut p = rhs;
    let inv = T::of(1.0 / g.dx);
    for_items(parallel, (u, nu), (v, nv), (&mut p, n), |u, v, p| {
        let p = &*p;
        let ps = &sys.pressure;
        // Interior faces difference their two cells directly; faces on the domain edge go
        // through the pressure's extrapolation.
        for j in 0..ny {
            let (row, prow) = (
                &mut u[j * (nx + 1)..(j + 1) * (nx + 1)],
                &p[j * nx..(j + 1) * nx],
            );
            let open = &sys.u_faces[j * (nx + 1)..(j + 1) * (nx + 1)];
            for i in 1..nx {
                if open[i] == FaceRule::Open {
                    row[i] -= (prow[i] - prow[i - 1]) * inv;
                }
            }
            for i in [0, nx] {
                if open[i] == FaceRule::Open {
                    row[i] -= diff_x(p, ps, j, i) * inv;
                }
            }
        }
        for j in 0..=ny {
            let interior = j > 0 && j < ny;
            for i in 0..nx {
                if sys.v_faces[j * nx + i] == FaceRule::Open {
                    let d = if interior {
                        p[j * nx + i] - p[(j - 1) * nx + i]
                    } else {
                        diff_y(p, ps, j, i)
                    };
                    v[j * nx + i] -= d * inv;
                }
            }
        }
    });
    Ok(p)
}

/// Runs `f(u, v, c)` on the items of three batched arrays (item sizes given), in parallel
/// over items when `parallel`.
fn for_items<T: Real>(
    parallel: bool,
    (u, nu): (&mut [T], usize),
    (v, nv): (&mut [T], usize),
    (c, nc): (&mut [T], usize),
    f: impl Fn(&mut [T], &mut [T], &mut [T]) + Sync,
) {
    if parallel {
        u.par_chunks_mut(nu)
            .zip(v.par_chunks_mut(nv))
            .zip(c.par_chunks_mut(nc))
            .for_each(|((u, v), c)| f(u, v, c));
    } else {
        u.chunks_mut(nu)
            .zip(v.chunks_mut(nv))
            .zip(c.chunks_mut(nc))
            .for_each(|((u, v), c)| f(u, v, c));
    }
}

/// Sets fixed faces to their value and makes the periodic seam's two copies agree.
pub fn constrain_faces<T: Real>(sys: &PoissonSystem, u: &mut [T], v: &mut [T]) {
    let (nx, ny) = (sys.grid.nx, sys.grid.ny);
    for &(k, val) in &sys.u_fixed {
        u[k as usize] = T::of(val);
    }
    for &(k, val) in &sys.v_fixed {
        v[k as usize] = T::of(val);
    }
    if sys.stencil.periodic[0] {
        (0..ny).for_each(|j| u[j * (nx + 1) + nx] = u[j * (nx + 1)]);
    }
    if sys.stencil.periodic[1] {
        (0..nx).for_each(|i| v[ny * nx + i] = v[i]);
    }
}

/// Batch item `b` of a batched array.
#[inline(always)]
fn item<'a, T>(a: &'a [T], s: &ArraySpec, b: usize) -> &'a [T] {
    let n = s.len();
    &a[b * n..(b + 1) * n]
}
