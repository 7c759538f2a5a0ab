//! Fused CPU kernels over raw row-major slices, generic over `f32`/`f64`.
//!
//! Every kernel makes one pass over its output, parallel over batch items and rows with rayon
//! above [`PAR_THRESHOLD`] elements. Positions are in cells; element `[j, i]` of an array sits
//! at `(i + ox, j + oy)` (see [`ArraySpec`]).

use crate::grid::{ArraySpec, Extrap};
use crate::linalg::PoissonSystem;
use rayon::prelude::*;

pub mod adjoint;
mod advect;
pub mod control;
pub use advect::{
    Advect, maccormack, semi_lagrangian, semi_lagrangian_adjoint, semi_lagrangian_line,
    semi_lagrangian_line_adjoint,
};

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
    /// An index below 2³¹ as `Self`.
    fn of_index(i: usize) -> Self;
    /// `⌊self⌋` of `self` clamped to `[0, 2³⁰]` (0 for NaN); branch-free, so loops over it
    /// vectorise.
    fn floor_index(self) -> usize;
}
/// `Real` for a float type whose `floor_frac` truncates through the integer type `$int`.
macro_rules! impl_real {
    ($float:ty, $int:ty) => {
        impl Real for $float {
            #[inline(always)]
            fn floor_frac(self) -> (isize, $float) {
                let t = self as $int;
                let i = if (t as $float) > self { t - 1 } else { t };
                (i as isize, self - i as $float)
            }
            #[inline(always)]
            fn of_index(i: usize) -> $float {
                i as i32 as $float
            }
            #[inline(always)]
            #[allow(clippy::manual_clamp)] // `clamp` keeps NaN; this must map it to 0
            fn floor_index(self) -> usize {
                let x = self.max(0.0).min(1073741824.0);
                // SAFETY: `x` is finite and in `[0, 2³⁰]` (`max` returns 0 for NaN), so it fits.
                unsafe { x.to_int_unchecked::<i32>() as usize }
            }
        }
    };
}
impl_real!(f32, i32);
impl_real!(f64, i64);

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
        for i in (0..fast.start).chain(fast.end..nx) {
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
        // through the pressure's extrapolation. Written as selects, so the loops vectorise.
        for j in 0..ny {
            let row = &mut u[j * (nx + 1)..(j + 1) * (nx + 1)];
            let (prow, open) = (&p[j * nx..(j + 1) * nx], &sys.u_open[j * (nx + 1)..]);
            for i in 1..nx {
                let d = (prow[i] - prow[i - 1]) * inv;
                row[i] = if open[i] { row[i] - d } else { row[i] };
            }
            for i in [0, nx] {
                if open[i] {
                    row[i] -= diff_x(p, ps, j, i) * inv;
                }
            }
        }
        for j in 0..=ny {
            let row = &mut v[j * nx..(j + 1) * nx];
            let open = &sys.v_open[j * nx..(j + 1) * nx];
            if j > 0 && j < ny {
                let (p0, p1) = (&p[(j - 1) * nx..j * nx], &p[j * nx..(j + 1) * nx]);
                for i in 0..nx {
                    let d = (p1[i] - p0[i]) * inv;
                    row[i] = if open[i] { row[i] - d } else { row[i] };
                }
            } else {
                for i in (0..nx).filter(|&i| open[i]) {
                    row[i] -= diff_y(p, ps, j, i) * inv;
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
