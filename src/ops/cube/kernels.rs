//! CubeCL kernels of the grid ops: one thread per output element, contiguous row-major
//! tensors, element `[b, j, i]` of an `[B, ny, nx]` array at `(b·ny + j)·nx + i`.
//!
//! Extrapolation beyond an array's edges follows [`crate::grid::Extrap`] and is passed as a
//! comptime code per side (`ext`, 2 bits per side in the order x-lo, x-hi, y-lo, y-hi, see
//! [`super::ext_code`]) plus the four constants as runtime scalars; reads go through [`fetch`],
//! the device twin of the CPU kernels' `fetch`, so both see the same values everywhere.

use cubecl::prelude::*;

/// Side codes of the `ext` comptime parameter.
pub const ZERO_GRADIENT: u32 = 0;
/// A constant outside.
pub const VALUE: u32 = 1;
/// Wrap around.
pub const PERIODIC: u32 = 2;

/// Index along one axis of `n` elements after extrapolation; −1 where a constant is read.
/// Periodic axes always wrap into `[0, period)` (the duplicate last column of a periodic face
/// array is never read, as on the CPU).
#[cube]
pub fn resolve(idx: i32, n: i32, period: i32, #[comptime] lo: u32, #[comptime] hi: u32) -> i32 {
    let mut out = idx;
    if comptime!(lo == PERIODIC) {
        out = ((idx % period) + period) % period;
    } else if idx < 0 {
        if comptime!(lo == ZERO_GRADIENT) {
            out = 0;
        } else {
            out = -1;
        }
    } else if idx >= n {
        if comptime!(hi == ZERO_GRADIENT) {
            out = n - 1;
        } else {
            out = -1;
        }
    }
    out
}

/// Sizes of one array: `nx, ny` and the periods along x and y.
#[derive(CubeType, CubeLaunch, Clone, Copy)]
pub struct Dims {
    /// Columns.
    pub nx: i32,
    /// Rows.
    pub ny: i32,
    /// Period along x (used on periodic axes).
    pub px: i32,
    /// Period along y.
    pub py: i32,
}

/// The constants read beyond `[x-lo, x-hi, y-lo, y-hi]` (used on `VALUE` sides).
#[derive(CubeType, CubeLaunch, Clone, Copy)]
pub struct Outside {
    /// Beyond x-lo.
    pub xlo: InputScalar,
    /// Beyond x-hi.
    pub xhi: InputScalar,
    /// Beyond y-lo.
    pub ylo: InputScalar,
    /// Beyond y-hi.
    pub yhi: InputScalar,
}

/// Element `[j, i]` of the item starting at `base` of `a`, extrapolated as `ext` says; where
/// both axes leave the array with a constant, the y rule wins (as on the CPU).
#[cube]
pub fn fetch<F: Float>(
    a: &Tensor<F>,
    base: usize,
    d: &Dims,
    c: &Outside,
    j: i32,
    i: i32,
    #[comptime] ext: u32,
) -> F {
    let jj = resolve(
        j,
        d.ny,
        d.py,
        comptime!((ext >> 4) & 3),
        comptime!((ext >> 6) & 3),
    );
    let ii = resolve(i, d.nx, d.px, comptime!(ext & 3), comptime!((ext >> 2) & 3));
    if jj < 0 {
        select(j < 0, c.ylo.get::<F>(), c.yhi.get::<F>())
    } else if ii < 0 {
        select(i < 0, c.xlo.get::<F>(), c.xhi.get::<F>())
    } else {
        a[base + (jj * d.nx + ii) as usize]
    }
}

/// `(b, j, i)` of flat position `pos` in `[B, ny, nx]`.
#[cube]
pub fn split(pos: usize, nx: usize, ny: usize) -> (usize, i32, i32) {
    let i = pos % nx;
    let j = (pos / nx) % ny;
    let b = pos / (nx * ny);
    (b, j as i32, i as i32)
}

/// Divergence `(u[i+1] − u[i] + v[j+1] − v[j])·inv_dx` of `u: [B, ny, nx+1]`,
/// `v: [B, ny+1, nx]` into `out: [B, ny, nx]`.
#[cube(launch)]
pub fn divergence<F: Float>(
    u: &Tensor<F>,
    v: &Tensor<F>,
    out: &mut Tensor<F>,
    nx: usize,
    ny: usize,
    inv_dx: InputScalar,
    #[define(F)] _dtype: ElemType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= out.len() {
        terminate!();
    }
    let i = pos % nx;
    let j = (pos / nx) % ny;
    let b = pos / (nx * ny);
    let ku = (b * ny + j) * (nx + 1) + i;
    let kv = (b * (ny + 1) + j) * nx + i;
    out[pos] = (u[ku + 1] - u[ku] + v[kv + nx] - v[kv]) * inv_dx.get::<F>();
}

/// Adjoint of [`divergence`]: `gu: [B, ny, nx+1]` and `gv: [B, ny+1, nx]` from
/// `g: [B, ny, nx]`; one thread per element of `[B, ny+1, nx+1]`.
#[cube(launch)]
pub fn divergence_adjoint<F: Float>(
    g: &Tensor<F>,
    gu: &mut Tensor<F>,
    gv: &mut Tensor<F>,
    nx: usize,
    ny: usize,
    inv_dx: InputScalar,
    #[define(F)] _dtype: ElemType,
) {
    let pos = ABSOLUTE_POS;
    let (b, j, i) = split(pos, nx + 1, ny + 1);
    if b >= g.len() / (nx * ny) {
        terminate!();
    }
    let (j, i) = (j as usize, i as usize);
    let s = inv_dx.get::<F>();
    let base = b * nx * ny;
    if j < ny {
        let mut d = F::new(0.0);
        if i > 0 {
            d += g[base + j * nx + i - 1];
        }
        if i < nx {
            d -= g[base + j * nx + i];
        }
        gu[(b * ny + j) * (nx + 1) + i] = d * s;
    }
    if i < nx {
        let mut d = F::new(0.0);
        if j > 0 {
            d += g[base + (j - 1) * nx + i];
        }
        if j < ny {
            d -= g[base + j * nx + i];
        }
        gv[(b * (ny + 1) + j) * nx + i] = d * s;
    }
}

/// Gradient of the cell-centred `p` (dims `d`, extrapolation `ext`/`c`) on the MAC faces:
/// `gu: [B, ny, nx+1]`, `gv: [B, ny+1, nx]`; one thread per element of `[B, ny+1, nx+1]`.
#[cube(launch)]
pub fn gradient<F: Float>(
    p: &Tensor<F>,
    gu: &mut Tensor<F>,
    gv: &mut Tensor<F>,
    d: &Dims,
    c: &Outside,
    inv_dx: InputScalar,
    #[comptime] ext: u32,
    #[define(F)] _dtype: ElemType,
) {
    let (nx, ny) = (d.nx as usize, d.ny as usize);
    let (b, j, i) = split(ABSOLUTE_POS, nx + 1, ny + 1);
    if b >= p.len() / (nx * ny) {
        terminate!();
    }
    let base = b * nx * ny;
    let s = inv_dx.get::<F>();
    let here = fetch(p, base, d, c, j, i, ext);
    if (j as usize) < ny {
        let west = fetch(p, base, d, c, j, i - 1, ext);
        gu[(b * ny + j as usize) * (nx + 1) + i as usize] = (here - west) * s;
    }
    if (i as usize) < nx {
        let south = fetch(p, base, d, c, j - 1, i, ext);
        gv[(b * (ny + 1) + j as usize) * nx + i as usize] = (here - south) * s;
    }
}

/// `t[k]`, times `mask[k_item]` when `masked`.
#[cube]
fn masked<F: Float>(
    t: &Tensor<F>,
    mask: &Tensor<F>,
    k: usize,
    item: usize,
    #[comptime] on: bool,
) -> F {
    let mut x = t[k];
    if comptime!(on) {
        x *= mask[k % item];
    }
    x
}

/// Adjoint of [`gradient`] (`p`'s periods equal its sizes): `gp: [B, ny, nx]` from the face
/// gradients, gathered per cell. With `projection`, the projection's pressure adjoint
/// `gp = base − Gᵀ(u_open ∘ gu, v_open ∘ gv)` instead (masks `[ny, nx+1]`, `[ny+1, nx]`).
#[cube(launch)]
pub fn gradient_adjoint<F: Float>(
    gu: &Tensor<F>,
    gv: &Tensor<F>,
    u_open: &Tensor<F>,
    v_open: &Tensor<F>,
    base: &Tensor<F>,
    gp: &mut Tensor<F>,
    d: &Dims,
    inv_dx: InputScalar,
    #[comptime] ext: u32,
    #[comptime] projection: bool,
    #[define(F)] _dtype: ElemType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= gp.len() {
        terminate!();
    }
    let (nx, ny) = (d.nx as usize, d.ny as usize);
    let (b, j, i) = split(pos, nx, ny);
    let (ju, iu) = (j as usize, i as usize);
    let (iu_len, iv_len) = (ny * (nx + 1), (ny + 1) * nx);
    let ku = (b * ny + ju) * (nx + 1) + iu;
    let kv = (b * (ny + 1) + ju) * nx + iu;
    // Face [j, f] reads p at f (+) and f − 1 (−); extrapolated reads land on edge cells.
    let mut sum = masked(gu, u_open, ku, iu_len, projection)
        - masked(gu, u_open, ku + 1, iu_len, projection)
        + masked(gv, v_open, kv, iv_len, projection)
        - masked(gv, v_open, kv + nx, iv_len, projection);
    let row = (b * ny + ju) * (nx + 1);
    let col = b * (ny + 1) * nx + iu;
    if comptime!((ext & 3) == PERIODIC) {
        if iu == 0 {
            sum += masked(gu, u_open, row + nx, iu_len, projection);
        }
        if iu == nx - 1 {
            sum -= masked(gu, u_open, row, iu_len, projection);
        }
    } else {
        if comptime!((ext & 3) == ZERO_GRADIENT) && iu == 0 {
            sum -= masked(gu, u_open, row, iu_len, projection);
        }
        if comptime!(((ext >> 2) & 3) == ZERO_GRADIENT) && iu == nx - 1 {
            sum += masked(gu, u_open, row + nx, iu_len, projection);
        }
    }
    if comptime!(((ext >> 4) & 3) == PERIODIC) {
        if ju == 0 {
            sum += masked(gv, v_open, col + ny * nx, iv_len, projection);
        }
        if ju == ny - 1 {
            sum -= masked(gv, v_open, col, iv_len, projection);
        }
    } else {
        if comptime!(((ext >> 4) & 3) == ZERO_GRADIENT) && ju == 0 {
            sum -= masked(gv, v_open, col, iv_len, projection);
        }
        if comptime!(((ext >> 6) & 3) == ZERO_GRADIENT) && ju == ny - 1 {
            sum += masked(gv, v_open, col + ny * nx, iv_len, projection);
        }
    }
    let g = sum * inv_dx.get::<F>();
    if comptime!(projection) {
        gp[pos] = base[pos] - g;
    } else {
        gp[pos] = g;
    }
}

/// One explicit diffusion step `out = q + α·Lap₅(q)` with the array's extrapolation.
#[cube(launch)]
pub fn diffuse_explicit<F: Float>(
    q: &Tensor<F>,
    out: &mut Tensor<F>,
    d: &Dims,
    c: &Outside,
    alpha: InputScalar,
    #[comptime] ext: u32,
    #[define(F)] _dtype: ElemType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= out.len() {
        terminate!();
    }
    let (nx, ny) = (d.nx as usize, d.ny as usize);
    let (b, j, i) = split(pos, nx, ny);
    let base = b * nx * ny;
    let mid = q[pos];
    let lap = fetch(q, base, d, c, j, i - 1, ext)
        + fetch(q, base, d, c, j, i + 1, ext)
        + fetch(q, base, d, c, j - 1, i, ext)
        + fetch(q, base, d, c, j + 1, i, ext)
        - F::new(4.0) * mid;
    out[pos] = mid + alpha.get::<F>() * lap;
}

/// Adjoint of [`diffuse_explicit`], gathered per element: its own term plus every output
/// whose neighbour read resolves to it.
#[cube(launch)]
pub fn diffuse_explicit_adjoint<F: Float>(
    g: &Tensor<F>,
    out: &mut Tensor<F>,
    d: &Dims,
    alpha: InputScalar,
    #[comptime] ext: u32,
    #[define(F)] _dtype: ElemType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= out.len() {
        terminate!();
    }
    let (nx, ny) = (d.nx as usize, d.ny as usize);
    let (b, j, i) = split(pos, nx, ny);
    let base = b * nx * ny;
    let a = alpha.get::<F>();
    let reads = gather_across(g, base, d, d, j, i, 0, -1, ext)
        + gather_across(g, base, d, d, j, i, 0, 1, ext)
        + gather_across(g, base, d, d, j, i, -1, 0, ext)
        + gather_across(g, base, d, d, j, i, 1, 0, ext);
    out[pos] = g[pos] * (F::new(1.0) - F::new(4.0) * a) + a * reads;
}

/// Where a sample coordinate `f` lands along an axis of `n` elements: the left node and the
/// weight of the right one. Periodic axes wrap into `[0, period)`, others clamp to `[−2, n]`
/// (beyond the first ghost layer extrapolated values are constant along the axis).
#[cube]
pub fn locate<F: Float>(f: F, n: i32, period: i32, #[comptime] periodic: bool) -> (i32, F) {
    let mut x = f;
    if comptime!(periodic) {
        let p = F::cast_from(period);
        x = f - (f / p).floor() * p;
    }
    x = F::max(x, F::new(-2.0));
    x = F::min(x, F::cast_from(n));
    let fl = x.floor();
    (i32::cast_from(fl), x - fl)
}

/// The velocity `(u, v)` at element `[j, i]` of an array at `loc` (0 centre, 1 x-face,
/// 2 y-face): exact on its own faces, the average of 2 or 4 faces elsewhere.
#[cube]
pub fn velocity_at<F: Float>(
    u: &Tensor<F>,
    v: &Tensor<F>,
    b: usize,
    du: &Dims,
    dv: &Dims,
    cu: &Outside,
    cv: &Outside,
    j: i32,
    i: i32,
    #[comptime] loc: u32,
    #[comptime] ext_u: u32,
    #[comptime] ext_v: u32,
) -> (F, F) {
    let bu = b * (du.nx * du.ny) as usize;
    let bv = b * (dv.nx * dv.ny) as usize;
    if comptime!(loc == 0) {
        (
            F::new(0.5)
                * (fetch(u, bu, du, cu, j, i, ext_u) + fetch(u, bu, du, cu, j, i + 1, ext_u)),
            F::new(0.5)
                * (fetch(v, bv, dv, cv, j, i, ext_v) + fetch(v, bv, dv, cv, j + 1, i, ext_v)),
        )
    } else if comptime!(loc == 1) {
        (
            fetch(u, bu, du, cu, j, i, ext_u),
            F::new(0.25)
                * (fetch(v, bv, dv, cv, j, i - 1, ext_v)
                    + fetch(v, bv, dv, cv, j, i, ext_v)
                    + fetch(v, bv, dv, cv, j + 1, i - 1, ext_v)
                    + fetch(v, bv, dv, cv, j + 1, i, ext_v)),
        )
    } else {
        (
            F::new(0.25)
                * (fetch(u, bu, du, cu, j - 1, i, ext_u)
                    + fetch(u, bu, du, cu, j - 1, i + 1, ext_u)
                    + fetch(u, bu, du, cu, j, i, ext_u)
                    + fetch(u, bu, du, cu, j, i + 1, ext_u)),
            fetch(v, bv, dv, cv, j, i, ext_v),
        )
    }
}

/// Bilinear sample of `q` (item at `base`) at array coordinates `(fx, fy)`: the value and the
/// smallest and largest of its four nodes.
#[cube]
pub fn sample<F: Float>(
    q: &Tensor<F>,
    base: usize,
    d: &Dims,
    c: &Outside,
    fx: F,
    fy: F,
    #[comptime] ext: u32,
) -> (F, F, F) {
    let (i0, tx) = locate::<F>(fx, d.nx, d.px, comptime!((ext & 3) == PERIODIC));
    let (j0, ty) = locate::<F>(fy, d.ny, d.py, comptime!(((ext >> 4) & 3) == PERIODIC));
    let q00 = fetch(q, base, d, c, j0, i0, ext);
    let q01 = fetch(q, base, d, c, j0, i0 + 1, ext);
    let q10 = fetch(q, base, d, c, j0 + 1, i0, ext);
    let q11 = fetch(q, base, d, c, j0 + 1, i0 + 1, ext);
    let lo = q00 + tx * (q01 - q00);
    let hi = q10 + tx * (q11 - q10);
    let min = F::min(F::min(q00, q01), F::min(q10, q11));
    let max = F::max(F::max(q00, q01), F::max(q10, q11));
    (lo + ty * (hi - lo), min, max)
}

/// Passes of [`advect`]: plain semi-Lagrangian.
pub const SEMI_LAGRANGIAN: u32 = 0;
/// MacCormack's forward step, which also keeps its stencil bounds.
pub const MACCORMACK_FORWARD: u32 = 1;
/// MacCormack's correction.
pub const MACCORMACK_CORRECT: u32 = 2;

/// One advection pass over the elements of `q` (dims `dq`, velocity `(u, v)`, `s = dt/dx`):
/// - `SEMI_LAGRANGIAN`: `out(x) = q(x − s·u(x))`, bilinear (`sampled` is `q`);
/// - `MACCORMACK_FORWARD`: the same, and the smallest and largest node of each sample's
///   stencil into `lo`/`hi`;
/// - `MACCORMACK_CORRECT`: with `sampled` the forward result, the backward estimate
///   `sampled(x + s·u(x))`, half the error added back to the forward result, clamped to
///   `[lo, hi]`.
#[cube(launch)]
pub fn advect<F: Float>(
    q: &Tensor<F>,
    sampled: &Tensor<F>,
    u: &Tensor<F>,
    v: &Tensor<F>,
    lo: &mut Tensor<F>,
    hi: &mut Tensor<F>,
    out: &mut Tensor<F>,
    dq: &Dims,
    du: &Dims,
    dv: &Dims,
    cq: &Outside,
    cu: &Outside,
    cv: &Outside,
    s: InputScalar,
    #[comptime] pass: u32,
    #[comptime] loc: u32,
    #[comptime] ext_q: u32,
    #[comptime] ext_u: u32,
    #[comptime] ext_v: u32,
    #[define(F)] _dtype: ElemType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= out.len() {
        terminate!();
    }
    let (nx, ny) = (dq.nx as usize, dq.ny as usize);
    let (b, j, i) = split(pos, nx, ny);
    let (vx, vy) = velocity_at(u, v, b, du, dv, cu, cv, j, i, loc, ext_u, ext_v);
    let mut step = s.get::<F>();
    if comptime!(pass == MACCORMACK_CORRECT) {
        step = -step;
    }
    let fx = F::cast_from(i) - step * vx;
    let fy = F::cast_from(j) - step * vy;
    let (val, min, max) = sample(sampled, b * nx * ny, dq, cq, fx, fy, ext_q);
    if comptime!(pass == MACCORMACK_CORRECT) {
        let corrected = sampled[pos] + F::new(0.5) * (q[pos] - val);
        out[pos] = F::min(F::max(corrected, lo[pos]), hi[pos]);
    } else {
        out[pos] = val;
        if comptime!(pass == MACCORMACK_FORWARD) {
            lo[pos] = min;
            hi[pos] = max;
        }
    }
}

/// The constrained x-face `[j, f]` of item `b`: fixed faces take their value, and on a
/// periodic x axis the seam column `nx` copies column 0.
#[cube]
fn constrained_u<F: Float>(
    u: &Tensor<F>,
    keep: &Tensor<F>,
    fixed: &Tensor<F>,
    b: usize,
    j: usize,
    f: usize,
    nx: usize,
    ny: usize,
    #[comptime] periodic: bool,
) -> F {
    let mut ff = f;
    if comptime!(periodic) && f == nx {
        ff = 0;
    }
    let k = j * (nx + 1) + ff;
    u[b * ny * (nx + 1) + k] * keep[k] + fixed[k]
}

/// The constrained y-face `[g, i]` of item `b` (the seam row `ny` copies row 0 when periodic).
#[cube]
fn constrained_v<F: Float>(
    v: &Tensor<F>,
    keep: &Tensor<F>,
    fixed: &Tensor<F>,
    b: usize,
    g: usize,
    i: usize,
    nx: usize,
    ny: usize,
    #[comptime] periodic: bool,
) -> F {
    let mut gg = g;
    if comptime!(periodic) && g == ny {
        gg = 0;
    }
    let k = gg * nx + i;
    v[b * (ny + 1) * nx + k] * keep[k] + fixed[k]
}

/// The projection's first half: constrained faces `uc`, `vc` and the Poisson right-hand side
/// `rhs = −dx·fluid·(flux out of the cell)` (not yet mean-free: the dense inverse removes the
/// floating regions' means itself); one thread per element of `[B, ny+1, nx+1]`.
#[cube(launch)]
pub fn constrain_rhs<F: Float>(
    u: &Tensor<F>,
    v: &Tensor<F>,
    u_keep: &Tensor<F>,
    u_fixed: &Tensor<F>,
    v_keep: &Tensor<F>,
    v_fixed: &Tensor<F>,
    fluid: &Tensor<F>,
    uc: &mut Tensor<F>,
    vc: &mut Tensor<F>,
    rhs: &mut Tensor<F>,
    nx: usize,
    ny: usize,
    minus_dx: InputScalar,
    #[comptime] periodic_x: bool,
    #[comptime] periodic_y: bool,
    #[define(F)] _dtype: ElemType,
) {
    let (b, j, i) = split(ABSOLUTE_POS, nx + 1, ny + 1);
    if b >= rhs.len() / (nx * ny) {
        terminate!();
    }
    let (j, i) = (j as usize, i as usize);
    if j < ny {
        uc[(b * ny + j) * (nx + 1) + i] =
            constrained_u(u, u_keep, u_fixed, b, j, i, nx, ny, periodic_x);
    }
    if i < nx {
        vc[(b * (ny + 1) + j) * nx + i] =
            constrained_v(v, v_keep, v_fixed, b, j, i, nx, ny, periodic_y);
    }
    if j < ny && i < nx {
        let flux = constrained_u(u, u_keep, u_fixed, b, j, i + 1, nx, ny, periodic_x)
            - constrained_u(u, u_keep, u_fixed, b, j, i, nx, ny, periodic_x)
            + constrained_v(v, v_keep, v_fixed, b, j + 1, i, nx, ny, periodic_y)
            - constrained_v(v, v_keep, v_fixed, b, j, i, nx, ny, periodic_y);
        rhs[(b * ny + j) * nx + i] = minus_dx.get::<F>() * fluid[j * nx + i] * flux;
    }
}

/// The projection's second half: `uo = uc − ∇p` on open faces (`p` extrapolated by the
/// pressure's rule `d`/`c`/`ext`), unchanged elsewhere; one thread per element of
/// `[B, ny+1, nx+1]`.
#[cube(launch)]
pub fn subtract_gradient<F: Float>(
    uc: &Tensor<F>,
    vc: &Tensor<F>,
    p: &Tensor<F>,
    u_open: &Tensor<F>,
    v_open: &Tensor<F>,
    uo: &mut Tensor<F>,
    vo: &mut Tensor<F>,
    d: &Dims,
    c: &Outside,
    inv_dx: InputScalar,
    #[comptime] ext: u32,
    #[define(F)] _dtype: ElemType,
) {
    let (nx, ny) = (d.nx as usize, d.ny as usize);
    let (b, j, i) = split(ABSOLUTE_POS, nx + 1, ny + 1);
    if b >= p.len() / (nx * ny) {
        terminate!();
    }
    let base = b * nx * ny;
    let s = inv_dx.get::<F>();
    let (ju, iu) = (j as usize, i as usize);
    let here = fetch(p, base, d, c, j, i, ext);
    if ju < ny {
        let k = ju * (nx + 1) + iu;
        let x = uc[b * ny * (nx + 1) + k];
        let corrected = x - (here - fetch(p, base, d, c, j, i - 1, ext)) * s;
        uo[b * ny * (nx + 1) + k] = select(u_open[k] > F::new(0.5), corrected, x);
    }
    if iu < nx {
        let k = ju * nx + iu;
        let x = vc[b * (ny + 1) * nx + k];
        let corrected = x - (here - fetch(p, base, d, c, j - 1, i, ext)) * s;
        vo[b * (ny + 1) * nx + k] = select(v_open[k] > F::new(0.5), corrected, x);
    }
}

/// `−dx·fluid·r̄` at cell `[j, i]` of item `b` (the right-hand side's adjoint seed), 0 outside
/// the grid.
#[cube]
fn seed<F: Float>(
    r: &Tensor<F>,
    fluid: &Tensor<F>,
    b: usize,
    j: i32,
    i: i32,
    nx: usize,
    ny: usize,
    minus_dx: F,
) -> F {
    let mut x = F::new(0.0);
    if j >= 0 && i >= 0 && (j as usize) < ny && (i as usize) < nx {
        let k = j as usize * nx + i as usize;
        x = minus_dx * fluid[k] * r[b * nx * ny + k];
    }
    x
}

/// Adjoint of [`constrain_rhs`] with the output gradients `gu`, `gv` of the constrained
/// faces and `r` of the right-hand side: `(ū, v̄)`, zero on fixed faces and on the seam copy;
/// one thread per element of `[B, ny+1, nx+1]`.
#[cube(launch)]
pub fn constrain_rhs_adjoint<F: Float>(
    gu: &Tensor<F>,
    gv: &Tensor<F>,
    r: &Tensor<F>,
    u_keep: &Tensor<F>,
    v_keep: &Tensor<F>,
    fluid: &Tensor<F>,
    bu: &mut Tensor<F>,
    bv: &mut Tensor<F>,
    nx: usize,
    ny: usize,
    minus_dx: InputScalar,
    #[comptime] periodic_x: bool,
    #[comptime] periodic_y: bool,
    #[define(F)] _dtype: ElemType,
) {
    let (b, j, i) = split(ABSOLUTE_POS, nx + 1, ny + 1);
    if b >= r.len() / (nx * ny) {
        terminate!();
    }
    let m = minus_dx.get::<F>();
    let (ju, iu) = (j as usize, i as usize);
    if ju < ny {
        let k = ju * (nx + 1) + iu;
        let row = b * ny * (nx + 1) + ju * (nx + 1);
        // Face [j, f] enters cell f − 1 with + and cell f with −.
        let mut g = gu[row + iu] + seed(r, fluid, b, j, i - 1, nx, ny, m)
            - seed(r, fluid, b, j, i, nx, ny, m);
        if comptime!(periodic_x) {
            if iu == 0 {
                g += gu[row + nx] + seed(r, fluid, b, j, nx as i32 - 1, nx, ny, m);
            }
            if iu == nx {
                g = F::new(0.0);
            }
        }
        bu[row + iu] = g * u_keep[k];
    }
    if iu < nx {
        let k = ju * nx + iu;
        let item = b * (ny + 1) * nx;
        let mut g = gv[item + k] + seed(r, fluid, b, j - 1, i, nx, ny, m)
            - seed(r, fluid, b, j, i, nx, ny, m);
        if comptime!(periodic_y) {
            if ju == 0 {
                g += gv[item + ny * nx + iu] + seed(r, fluid, b, ny as i32 - 1, i, nx, ny, m);
            }
            if ju == ny {
                g = F::new(0.0);
            }
        }
        bv[item + k] = g * v_keep[k];
    }
}

/// The outputs `o ∈ [0, n_out)` along one axis whose read at `o + d` of an axis of `n`
/// elements resolves to element `i` (up to three, −1 for none): the preimage used by the
/// gather-form adjoints, for outputs of the same length (`n_out = n`, diffusion) or another
/// (the advected array reading the velocity).
#[cube]
pub fn preimage_across(
    i: i32,
    d: i32,
    n_out: i32,
    n: i32,
    period: i32,
    #[comptime] lo: u32,
    #[comptime] hi: u32,
) -> (i32, i32, i32) {
    let direct = i - d;
    let first = select(
        hits_across(direct, d, i, n_out, n, period, lo, hi),
        direct,
        -1i32,
    );
    if comptime!(lo == PERIODIC) {
        let (up, down) = (direct + period, direct - period);
        (
            first,
            select(hits_across(up, d, i, n_out, n, period, lo, hi), up, -1i32),
            select(
                hits_across(down, d, i, n_out, n, period, lo, hi),
                down,
                -1i32,
            ),
        )
    } else {
        // Reads beyond a zero-gradient edge land on its element: the output reading just below
        // the low edge, and the (up to two) outputs reading at or past the high edge.
        let low = select(
            comptime!(lo == ZERO_GRADIENT) && i == 0 && d == -1 && n_out > 0,
            0i32,
            -1i32,
        );
        let (h0, h1) = (n - d, n - d + 1);
        let high = comptime!(hi == ZERO_GRADIENT) && i == n - 1;
        (
            select(low >= 0, low, first),
            select(
                high && hits_across(h0, d, i, n_out, n, period, lo, hi),
                h0,
                -1i32,
            ),
            select(
                high && hits_across(h1, d, i, n_out, n, period, lo, hi),
                h1,
                select(low >= 0, first, -1i32),
            ),
        )
    }
}

/// Whether output `o` (of `n_out`) reads element `i` of an axis of `n` at offset `d`.
#[cube]
fn hits_across(
    o: i32,
    d: i32,
    i: i32,
    n_out: i32,
    n: i32,
    period: i32,
    #[comptime] lo: u32,
    #[comptime] hi: u32,
) -> bool {
    let mut hit = false;
    if o >= 0 && o < n_out {
        hit = resolve(o + d, n, period, lo, hi) == i;
    }
    hit
}

/// `Σ g[o]` over the outputs `o` (an array of dims `dout`) whose read at offset `(dy, dx)`
/// of the array with dims `d` and extrapolation `ext` resolves to its element `[j, i]`.
#[cube]
pub fn gather_across<F: Float>(
    g: &Tensor<F>,
    base: usize,
    dout: &Dims,
    d: &Dims,
    j: i32,
    i: i32,
    dy: i32,
    dx: i32,
    #[comptime] ext: u32,
) -> F {
    let ys = preimage_across(
        j,
        dy,
        dout.ny,
        d.ny,
        d.py,
        comptime!((ext >> 4) & 3),
        comptime!((ext >> 6) & 3),
    );
    let xs = preimage_across(
        i,
        dx,
        dout.nx,
        d.nx,
        d.px,
        comptime!(ext & 3),
        comptime!((ext >> 2) & 3),
    );
    row_of_three(g, base, dout.nx, ys.0, xs.0, xs.1, xs.2)
        + row_of_three(g, base, dout.nx, ys.1, xs.0, xs.1, xs.2)
        + row_of_three(g, base, dout.nx, ys.2, xs.0, xs.1, xs.2)
}

/// `Σ g[oy, ox]` over the valid (non-negative) `ox` of three, 0 for a negative `oy`.
#[cube]
fn row_of_three<F: Float>(
    g: &Tensor<F>,
    base: usize,
    nx: i32,
    oy: i32,
    x0: i32,
    x1: i32,
    x2: i32,
) -> F {
    at_or_zero(g, base, nx, oy, x0)
        + at_or_zero(g, base, nx, oy, x1)
        + at_or_zero(g, base, nx, oy, x2)
}

/// `g[oy, ox]` of the item at `base`, 0 where either index is negative.
#[cube]
fn at_or_zero<F: Float>(g: &Tensor<F>, base: usize, nx: i32, oy: i32, ox: i32) -> F {
    let mut x = F::new(0.0);
    if oy >= 0 && ox >= 0 {
        x = g[base + (oy * nx + ox) as usize];
    }
    x
}

/// The semi-Lagrangian sample of output `[j, i]` of item `b`: its bilinear nodes (resolved
/// indices, −1 for constants) and weights, and the velocity gradients `(gx, gy)` of the sample
/// for an output gradient `g`.
#[cube]
fn departure<F: Float>(
    q: &Tensor<F>,
    u: &Tensor<F>,
    v: &Tensor<F>,
    b: usize,
    j: i32,
    i: i32,
    dq: &Dims,
    du: &Dims,
    dv: &Dims,
    cq: &Outside,
    cu: &Outside,
    cv: &Outside,
    s: F,
    #[comptime] loc: u32,
    #[comptime] ext_q: u32,
    #[comptime] ext_u: u32,
    #[comptime] ext_v: u32,
) -> (i32, i32, F, F, F, F) {
    let (vx, vy) = velocity_at(u, v, b, du, dv, cu, cv, j, i, loc, ext_u, ext_v);
    let (i0, tx) = locate::<F>(
        F::cast_from(i) - s * vx,
        dq.nx,
        dq.px,
        comptime!((ext_q & 3) == PERIODIC),
    );
    let (j0, ty) = locate::<F>(
        F::cast_from(j) - s * vy,
        dq.ny,
        dq.py,
        comptime!(((ext_q >> 4) & 3) == PERIODIC),
    );
    let base = b * (dq.nx * dq.ny) as usize;
    let q00 = fetch(q, base, dq, cq, j0, i0, ext_q);
    let q01 = fetch(q, base, dq, cq, j0, i0 + 1, ext_q);
    let q10 = fetch(q, base, dq, cq, j0 + 1, i0, ext_q);
    let q11 = fetch(q, base, dq, cq, j0 + 1, i0 + 1, ext_q);
    let one = F::new(1.0);
    let dfx = (one - ty) * (q01 - q00) + ty * (q11 - q10);
    let dfy = (one - tx) * (q10 - q00) + tx * (q11 - q01);
    (j0, i0, tx, ty, dfx, dfy)
}

/// First pass of the semi-Lagrangian adjoint: per output, `gx = −s·g·∂q/∂x` and
/// `gy = −s·g·∂q/∂y` at its departure point (the gradients of its velocity).
#[cube(launch)]
pub fn advect_velocity_seed<F: Float>(
    q: &Tensor<F>,
    u: &Tensor<F>,
    v: &Tensor<F>,
    g: &Tensor<F>,
    gx: &mut Tensor<F>,
    gy: &mut Tensor<F>,
    dq: &Dims,
    du: &Dims,
    dv: &Dims,
    cq: &Outside,
    cu: &Outside,
    cv: &Outside,
    s: InputScalar,
    #[comptime] loc: u32,
    #[comptime] ext_q: u32,
    #[comptime] ext_u: u32,
    #[comptime] ext_v: u32,
    #[define(F)] _dtype: ElemType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= g.len() {
        terminate!();
    }
    let (b, j, i) = split(pos, dq.nx as usize, dq.ny as usize);
    let s = s.get::<F>();
    let d = departure(
        q, u, v, b, j, i, dq, du, dv, cq, cu, cv, s, loc, ext_q, ext_u, ext_v,
    );
    gx[pos] = -s * g[pos] * d.4;
    gy[pos] = -s * g[pos] * d.5;
}

/// Second pass: the velocity component `component` (0 u, 1 v; dims `dc`, extrapolation
/// `ext_c`) gathers the seeds `seed` of the outputs (dims `dq`, location `loc`) that averaged it
/// into their velocity.
#[cube(launch)]
pub fn advect_velocity_adjoint<F: Float>(
    seed: &Tensor<F>,
    out: &mut Tensor<F>,
    dq: &Dims,
    dc: &Dims,
    #[comptime] loc: u32,
    #[comptime] component: u32,
    #[comptime] ext_c: u32,
    #[define(F)] _dtype: ElemType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= out.len() {
        terminate!();
    }
    let (b, j, i) = split(pos, dc.nx as usize, dc.ny as usize);
    let base = b * (dq.nx * dq.ny) as usize;
    // (dy, dx) of the reads of `velocity_at` from this component, and their weight.
    let sum = if comptime!(loc == 0) {
        if comptime!(component == 0) {
            (gather_across(seed, base, dq, dc, j, i, 0, 0, ext_c)
                + gather_across(seed, base, dq, dc, j, i, 0, 1, ext_c))
                * F::new(0.5)
        } else {
            (gather_across(seed, base, dq, dc, j, i, 0, 0, ext_c)
                + gather_across(seed, base, dq, dc, j, i, 1, 0, ext_c))
                * F::new(0.5)
        }
    } else if comptime!(loc == 1) {
        if comptime!(component == 0) {
            gather_across(seed, base, dq, dc, j, i, 0, 0, ext_c)
        } else {
            (gather_across(seed, base, dq, dc, j, i, 0, -1, ext_c)
                + gather_across(seed, base, dq, dc, j, i, 0, 0, ext_c)
                + gather_across(seed, base, dq, dc, j, i, 1, -1, ext_c)
                + gather_across(seed, base, dq, dc, j, i, 1, 0, ext_c))
                * F::new(0.25)
        }
    } else if comptime!(component == 0) {
        (gather_across(seed, base, dq, dc, j, i, -1, 0, ext_c)
            + gather_across(seed, base, dq, dc, j, i, -1, 1, ext_c)
            + gather_across(seed, base, dq, dc, j, i, 0, 0, ext_c)
            + gather_across(seed, base, dq, dc, j, i, 0, 1, ext_c))
            * F::new(0.25)
    } else {
        gather_across(seed, base, dq, dc, j, i, 0, 0, ext_c)
    };
    out[pos] = sum;
}

/// The advected array's adjoint, gathered: every element `[j, i]` of `q` adds `g[o]·w` of each
/// output `o` within `radius[0]` cells (wrapped on periodic axes) one of whose bilinear nodes
/// resolves to it. `radius` bounds the departure distance (on the device: no host read).
#[cube(launch)]
pub fn advect_q_adjoint<F: Float>(
    q: &Tensor<F>,
    u: &Tensor<F>,
    v: &Tensor<F>,
    g: &Tensor<F>,
    radius: &Tensor<F>,
    gq: &mut Tensor<F>,
    dq: &Dims,
    du: &Dims,
    dv: &Dims,
    cq: &Outside,
    cu: &Outside,
    cv: &Outside,
    s: InputScalar,
    #[comptime] loc: u32,
    #[comptime] ext_q: u32,
    #[comptime] ext_u: u32,
    #[comptime] ext_v: u32,
    #[define(F)] _dtype: ElemType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= gq.len() {
        terminate!();
    }
    let (nx, ny) = (dq.nx, dq.ny);
    let (b, j, i) = split(pos, nx as usize, ny as usize);
    let s = s.get::<F>();
    let big = F::cast_from(nx + ny);
    let r = i32::cast_from(F::min(F::max(radius[0], F::new(0.0)), big));
    // Rows and columns of the window: on a periodic axis each residue once (and the
    // duplicate last element of a face array), elsewhere the window clipped to the array.
    let span = 2 * r + 1;
    let (ylo, yhi, copies_y) = if comptime!(((ext_q >> 4) & 3) == PERIODIC) {
        (0i32, select(span < dq.py, span, dq.py), 2i32)
    } else {
        (
            select(j - r > 0, j - r, 0i32),
            select(j + r + 1 < ny, j + r + 1, ny),
            1i32,
        )
    };
    let (xlo, xhi, copies_x) = if comptime!((ext_q & 3) == PERIODIC) {
        (0i32, select(span < dq.px, span, dq.px), 2i32)
    } else {
        (
            select(i - r > 0, i - r, 0i32),
            select(i + r + 1 < nx, i + r + 1, nx),
            1i32,
        )
    };
    let mut sum = F::new(0.0);
    let one = F::new(1.0);
    let (ey_lo, ey_hi) = (comptime!((ext_q >> 4) & 3), comptime!((ext_q >> 6) & 3));
    let (ex_lo, ex_hi) = (comptime!(ext_q & 3), comptime!((ext_q >> 2) & 3));
    for ya in ylo..yhi {
        // On a periodic axis with a window shorter than the period, residues around j.
        let mut oy = ya;
        if comptime!(((ext_q >> 4) & 3) == PERIODIC) {
            oy = select(span < dq.py, (((j - r + ya) % dq.py) + dq.py) % dq.py, ya);
        }
        for copy_y in 0..copies_y {
            let yy = oy + copy_y * dq.py;
            if yy < ny {
                for xa in xlo..xhi {
                    let mut ox = xa;
                    if comptime!((ext_q & 3) == PERIODIC) {
                        ox = select(span < dq.px, (((i - r + xa) % dq.px) + dq.px) % dq.px, xa);
                    }
                    for copy_x in 0..copies_x {
                        let xx = ox + copy_x * dq.px;
                        if xx < nx {
                            let d = departure(
                                q, u, v, b, yy, xx, dq, du, dv, cq, cu, cv, s, loc, ext_q, ext_u,
                                ext_v,
                            );
                            let (j0, i0, tx, ty) = (d.0, d.1, d.2, d.3);
                            let r0 = resolve(j0, ny, dq.py, ey_lo, ey_hi);
                            let r1 = resolve(j0 + 1, ny, dq.py, ey_lo, ey_hi);
                            let c0 = resolve(i0, nx, dq.px, ex_lo, ex_hi);
                            let c1 = resolve(i0 + 1, nx, dq.px, ex_lo, ex_hi);
                            let mut w = F::new(0.0);
                            if r0 == j && c0 == i {
                                w += (one - ty) * (one - tx);
                            }
                            if r0 == j && c1 == i {
                                w += (one - ty) * tx;
                            }
                            if r1 == j && c0 == i {
                                w += ty * (one - tx);
                            }
                            if r1 == j && c1 == i {
                                w += ty * tx;
                            }
                            sum += g[b * (nx * ny) as usize + (yy * nx + xx) as usize] * w;
                        }
                    }
                }
            }
        }
    }
    gq[pos] = sum;
}
