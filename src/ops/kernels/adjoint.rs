//! Adjoint (vector-Jacobian) kernels of the grid ops: given the gradient `ḡ` of a loss with
//! respect to an op's output, the gradients with respect to its inputs (advection's is
//! [`super::semi_lagrangian_adjoint`], beside its padded forward). Each mirrors its
//! forward kernel line by line: a read `fetch(q, j, i)` becomes [`fetch_add`] into `q̄`
//! (nothing for constant extrapolation, the edge for zero-gradient, the wrapped element on a
//! periodic axis).

use super::advect::{GHOST, Padded};
use super::{Real, item, resolve};
use crate::grid::ArraySpec;
use crate::linalg::PoissonSystem;

/// The transpose of [`super::fetch`]: adds `val` to the element that `fetch(a, s, j, i)` reads
/// (nothing where it reads a constant).
#[inline(always)]
pub fn fetch_add<T: Real>(a: &mut [T], s: &ArraySpec, j: isize, i: isize, val: T) {
    if let Ok(jj) = resolve(j, s.ny, s.period_y, s.ext[2], s.ext[3])
        && let Ok(ii) = resolve(i, s.nx, s.period_x, s.ext[0], s.ext[1])
    {
        a[jj * s.nx + ii] += val;
    }
}

/// Mutable batch item `b`.
fn item_mut<'a, T>(a: &'a mut [T], s: &ArraySpec, b: usize) -> &'a mut [T] {
    let n = s.len();
    &mut a[b * n..(b + 1) * n]
}

/// Adjoint of [`super::diffuse_explicit`]: `gq += (1 − 4α)·g + α·foldᵀ(N)`, where `N` sums the
/// four neighbours of every position of `g` zero-padded with [`Padded`]'s ghost layers (each
/// element scatters `α·g` to the positions it read) and [`Padded::fold`] returns the ghost
/// positions to the elements the extrapolation read there. The centre term stays on its own
/// element (a periodic array's duplicate column included).
pub fn diffuse_explicit<T: Real>(g: &[T], s: &ArraySpec, alpha: f64, gq: &mut [T]) {
    let a = T::of(alpha);
    let centre = T::one() - T::of(4.0) * a;
    let (w, h) = (s.nx + 2 * GHOST, s.ny + 2 * GHOST);
    let mut zg = vec![T::zero(); w * h];
    let mut n = vec![T::zero(); w * h];
    for b in 0..g.len() / s.len() {
        let (g, gq) = (item(g, s, b), item_mut(gq, s, b));
        for (j, row) in g.chunks_exact(s.nx).enumerate() {
            let k = (j + GHOST) * w + GHOST;
            zg[k..k + s.nx].copy_from_slice(row);
        }
        for r in 1..h - 1 {
            let (up, mid, down) = (
                &zg[(r - 1) * w..r * w],
                &zg[r * w..(r + 1) * w],
                &zg[(r + 1) * w..(r + 2) * w],
            );
            let out = &mut n[r * w + 1..(r + 1) * w - 1];
            for (c, o) in out.iter_mut().enumerate() {
                *o = a * (mid[c] + mid[c + 2] + up[c + 1] + down[c + 1]);
            }
        }
        for (o, x) in gq.iter_mut().zip(g) {
            *o += centre * *x;
        }
        Padded::fold(&n, s, gq);
    }
}

/// Adjoint of [`super::divergence`]: `(gu, gv)` (zeroed by the caller) from `g: [B, ny, nx]`.
pub fn divergence<T: Real>(g: &[T], nx: usize, ny: usize, dx: f64, gu: &mut [T], gv: &mut [T]) {
    let inv = T::of(1.0 / dx);
    for b in 0..g.len() / (nx * ny) {
        let g = &g[b * nx * ny..(b + 1) * nx * ny];
        let gu = &mut gu[b * ny * (nx + 1)..(b + 1) * ny * (nx + 1)];
        let gv = &mut gv[b * (ny + 1) * nx..(b + 1) * (ny + 1) * nx];
        for j in 0..ny {
            for i in 0..nx {
                let d = g[j * nx + i] * inv;
                gu[j * (nx + 1) + i + 1] += d;
                gu[j * (nx + 1) + i] -= d;
                gv[(j + 1) * nx + i] += d;
                gv[j * nx + i] -= d;
            }
        }
    }
}

/// Adjoint of [`super::gradient`]: `gp` (zeroed by the caller) from the face gradients.
pub fn gradient<T: Real>(gu: &[T], gv: &[T], s: &ArraySpec, dx: f64, gp: &mut [T]) {
    let inv = T::of(1.0 / dx);
    let (nx, ny) = (s.nx, s.ny);
    for b in 0..gp.len() / s.len() {
        let gu = &gu[b * ny * (nx + 1)..(b + 1) * ny * (nx + 1)];
        let gv = &gv[b * (ny + 1) * nx..(b + 1) * (ny + 1) * nx];
        let gp = item_mut(gp, s, b);
        face_differences_adjoint(gu, gv, s, |_| true, |_| true, inv, gp);
    }
}

/// `dst[m] += src[m−1] − src[m]` for `m` in `0..=n` (`src` is 0 beyond its `n` elements):
/// the transpose of differencing neighbours.
fn add_adjacent_differences<T: Real>(dst: &mut [T], src: &[T]) {
    let n = src.len();
    dst[0] -= src[0];
    for (d, pair) in dst[1..n].iter_mut().zip(src.windows(2)) {
        *d += pair[0] - pair[1];
    }
    dst[n] += src[n - 1];
}

/// Adds `Σ_faces w_f·(p[f+] − p[f−])` transposed to `gp` (one item of the centred array `s`):
/// `w = gu[k]·scale` on x-faces with `keep_u(k)` (`p[f+]` is `fetch(j, i)`, `p[f−]` is
/// `fetch(j, i−1)`), y-faces alike. The differences land in a [`Padded`]-shape buffer, folded
/// back through the extrapolation.
fn face_differences_adjoint<T: Real>(
    gu: &[T],
    gv: &[T],
    s: &ArraySpec,
    keep_u: impl Fn(usize) -> bool,
    keep_v: impl Fn(usize) -> bool,
    scale: T,
    gp: &mut [T],
) {
    let (nx, ny) = (s.nx, s.ny);
    let w = nx + 2 * GHOST;
    let mut pad = vec![T::zero(); w * (ny + 2 * GHOST)];
    let weights = |g: &[T], keep: &dyn Fn(usize) -> bool, start: usize, len: usize| -> Vec<T> {
        (start..start + len)
            .map(|k| if keep(k) { g[k] * scale } else { T::zero() })
            .collect()
    };
    // x-faces: padded row j, array columns −1..=nx.
    for j in 0..ny {
        let row = weights(gu, &keep_u, j * (nx + 1), nx + 1);
        let k = (j + GHOST) * w + GHOST - 1;
        add_adjacent_differences(&mut pad[k..k + nx + 2], &row);
    }
    // y-faces: face row r adds to cell row r and subtracts from row r − 1.
    for r in 0..=ny {
        let row = weights(gv, &keep_v, r * nx, nx);
        for (dr, sign) in [(0, T::one()), (1, -T::one())] {
            let k = (r + GHOST - dr) * w + GHOST;
            for (p, x) in pad[k..k + nx].iter_mut().zip(&row) {
                *p += sign * *x;
            }
        }
    }
    Padded::fold(&pad, s, gp);
}

/// Adjoint of [`super::project`], in place: `gu`, `gv` (gradients of the projected velocity)
/// become the gradients of the input velocity, given `gp` (gradient of the returned pressure,
/// consumed). One solve with the forward operator (`A` is symmetric, so `solve` is the forward
/// solver and reuses its factorisation):
///
/// `p̄ = ḡp − Gᵀḡu`, `r̄ = P·A⁻¹p̄` (`P`: mean removal on floating regions, 0 in solids),
/// `ū = Cᵀ(ḡu + Rᵀr̄)` with `R = −dx·div` and `C` the face constraints.
pub fn project<T: Real, E>(
    sys: &PoissonSystem,
    gu: &mut [T],
    gv: &mut [T],
    mut gp: Vec<T>,
    batch: usize,
    solve: impl FnOnce(&mut [T]) -> Result<(), E>,
) -> Result<(), E> {
    let g = sys.grid;
    let (nx, ny) = (g.nx, g.ny);
    let (nu, nv, n) = (ny * (nx + 1), (ny + 1) * nx, nx * ny);
    let inv = T::of(1.0 / g.dx);
    for b in 0..batch {
        let (gu, gv) = (&gu[b * nu..(b + 1) * nu], &gv[b * nv..(b + 1) * nv]);
        let gp = &mut gp[b * n..(b + 1) * n];
        // u_out = u_c − (p[f+] − p[f−])/dx on open faces.
        face_differences_adjoint(
            gu,
            gv,
            &sys.pressure,
            |k| sys.u_open[k],
            |k| sys.v_open[k],
            -inv,
            gp,
        );
    }
    solve(&mut gp)?;
    let minus_dx = T::of(-g.dx);
    for b in 0..batch {
        let r = &mut gp[b * n..(b + 1) * n];
        for region in &sys.floating {
            let mean =
                region.iter().fold(0.0, |s, &c| s + r[c as usize].wide()) / region.len() as f64;
            region.iter().for_each(|&c| r[c as usize] -= T::of(mean));
        }
        let (gu, gv) = (&mut gu[b * nu..(b + 1) * nu], &mut gv[b * nv..(b + 1) * nv]);
        // rhs_c = −dx·(u[i+1] − u[i] + v[j+1] − v[j]) in fluid cells.
        let w: Vec<T> = r
            .iter()
            .zip(&sys.solid)
            .map(|(x, &solid)| if solid { T::zero() } else { minus_dx * *x })
            .collect();
        for (j, wrow) in w.chunks_exact(nx).enumerate() {
            add_adjacent_differences(&mut gu[j * (nx + 1)..(j + 1) * (nx + 1)], wrow);
            for (f, sign) in [(j + 1, T::one()), (j, -T::one())] {
                for (o, x) in gv[f * nx..(f + 1) * nx].iter_mut().zip(wrow) {
                    *o += sign * *x;
                }
            }
        }
        // The constraints, in reverse: the periodic seam copy, then the fixed faces.
        if sys.stencil.periodic[0] {
            for j in 0..ny {
                let dup = gu[j * (nx + 1) + nx];
                gu[j * (nx + 1)] += dup;
                gu[j * (nx + 1) + nx] = T::zero();
            }
        }
        if sys.stencil.periodic[1] {
            for i in 0..nx {
                let dup = gv[ny * nx + i];
                gv[i] += dup;
                gv[ny * nx + i] = T::zero();
            }
        }
        for &(k, _) in &sys.u_fixed {
            gu[k as usize] = T::zero();
        }
        for &(k, _) in &sys.v_fixed {
            gv[k as usize] = T::zero();
        }
    }
    Ok(())
}
