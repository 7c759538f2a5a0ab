//! Adjoint (vector-Jacobian) kernels of the grid ops: given the gradient `ḡ` of a loss with
//! respect to an op's output, the gradients with respect to its inputs. Each mirrors its
//! forward kernel line by line: a read `fetch(q, j, i)` becomes [`fetch_add`] into `q̄`
//! (nothing for constant extrapolation, the edge for zero-gradient, the wrapped element on a
//! periodic axis).

use super::{Real, item, resolve};
use crate::grid::{ArraySpec, Location};
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

/// The faces (and weights) whose combination is the velocity `(u, v)` at element `[j, i]` of
/// an array at `location`: the face itself, or the mean of 2 or 4 faces.
struct Taps<T> {
    taps: [(T, isize, isize); 4],
    len: usize,
}

impl<T: Copy> Taps<T> {
    fn new(list: &[(T, isize, isize)]) -> Self {
        let mut taps = [list[0]; 4];
        taps[..list.len()].copy_from_slice(list);
        Self {
            taps,
            len: list.len(),
        }
    }
    fn iter(&self) -> std::slice::Iter<'_, (T, isize, isize)> {
        self.taps[..self.len].iter()
    }
}

/// `(u taps, v taps)` at element `[j, i]`; `w = [½, ¼, 1]`.
fn velocity_taps<T: Copy>(location: Location, j: isize, i: isize, w: [T; 3]) -> (Taps<T>, Taps<T>) {
    let [half, quarter, one] = w;
    match location {
        Location::Center => (
            Taps::new(&[(half, j, i), (half, j, i + 1)]),
            Taps::new(&[(half, j, i), (half, j + 1, i)]),
        ),
        Location::FaceX => (
            Taps::new(&[(one, j, i)]),
            Taps::new(&[
                (quarter, j, i - 1),
                (quarter, j, i),
                (quarter, j + 1, i - 1),
                (quarter, j + 1, i),
            ]),
        ),
        Location::FaceY => (
            Taps::new(&[
                (quarter, j - 1, i),
                (quarter, j - 1, i + 1),
                (quarter, j, i),
                (quarter, j, i + 1),
            ]),
            Taps::new(&[(one, j, i)]),
        ),
    }
}

/// Adjoint of semi-Lagrangian advection: adds to `gq`, `gu`, `gv` (zeroed by the caller, shapes
/// of `q`, `u`, `v`) the gradients of `Σ g·out`. The position of each sample depends on the
/// velocity interpolated at the element (exact, or the mean of 2 or 4 faces), so `gu`/`gv`
/// receive `−(dt/dx)·∂q/∂x` spread back over those faces.
pub fn semi_lagrangian<T: Real>(
    a: &super::Advect<'_, T>,
    g: &[T],
    gq: &mut [T],
    gu: &mut [T],
    gv: &mut [T],
) {
    let (sq, su, sv) = (a.sq, a.su, a.sv);
    let s = T::of(a.dt_dx);
    let (half, quarter, one) = (T::of(0.5), T::of(0.25), T::one());
    let location = match (sq.ox == 0.0, sq.oy == 0.0) {
        (true, _) => Location::FaceX,
        (_, true) => Location::FaceY,
        _ => Location::Center,
    };
    for b in 0..a.q.len() / sq.len() {
        let (q, u, v) = (item(a.q, sq, b), item(a.u, su, b), item(a.v, sv, b));
        let (gq, gu, gv) = (
            item_mut(gq, sq, b),
            item_mut(gu, su, b),
            item_mut(gv, sv, b),
        );
        let g = item(g, sq, b);
        for j in 0..sq.ny {
            for i in 0..sq.nx {
                let gk = g[j * sq.nx + i];
                let (ji, ii) = (j as isize, i as isize);
                let (uf, vf) = velocity_taps(location, ji, ii, [half, quarter, one]);
                let read = |taps: &Taps<T>, a: &[T], sa: &ArraySpec| {
                    taps.iter().fold(T::zero(), |acc, &(w, fj, fi)| {
                        acc + w * super::fetch(a, sa, fj, fi)
                    })
                };
                let (vx, vy) = (read(&uf, u, su), read(&vf, v, sv));
                let (fx, fy) = (T::of_index(i) - s * vx, T::of_index(j) - s * vy);
                let (i0, tx) = fx.floor_frac();
                let (j0, ty) = fy.floor_frac();
                let at = |dj: isize, di: isize| super::fetch(q, sq, j0 + dj, i0 + di);
                let (q00, q01, q10, q11) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                // ∂out/∂q: the bilinear weights.
                for (dj, di, w) in [
                    (0, 0, (one - tx) * (one - ty)),
                    (0, 1, tx * (one - ty)),
                    (1, 0, (one - tx) * ty),
                    (1, 1, tx * ty),
                ] {
                    fetch_add(gq, sq, j0 + dj, i0 + di, gk * w);
                }
                // ∂out/∂(fx, fy), then ∂(fx, fy)/∂(vx, vy) = −s.
                let dfx = (one - ty) * (q01 - q00) + ty * (q11 - q10);
                let dfy = (one - tx) * (q10 - q00) + tx * (q11 - q01);
                let (gvx, gvy) = (-s * gk * dfx, -s * gk * dfy);
                for &(w, fj, fi) in uf.iter() {
                    fetch_add(gu, su, fj, fi, w * gvx);
                }
                for &(w, fj, fi) in vf.iter() {
                    fetch_add(gv, sv, fj, fi, w * gvy);
                }
            }
        }
    }
}

/// Adjoint of [`super::diffuse_explicit`]: `gq = Σ g·∂out/∂q` (`gq` zeroed by the caller).
pub fn diffuse_explicit<T: Real>(g: &[T], s: &ArraySpec, alpha: f64, gq: &mut [T]) {
    let a = T::of(alpha);
    let centre = T::one() - T::of(4.0) * a;
    for b in 0..g.len() / s.len() {
        let (g, gq) = (item(g, s, b), item_mut(gq, s, b));
        for j in 0..s.ny {
            for i in 0..s.nx {
                let gk = g[j * s.nx + i];
                gq[j * s.nx + i] += centre * gk;
                let (jj, ii) = (j as isize, i as isize);
                for (dj, di) in [(0, -1), (0, 1), (-1, 0), (1, 0)] {
                    fetch_add(gq, s, jj + dj, ii + di, a * gk);
                }
            }
        }
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

/// Adds `Σ_faces w_f·(p[f+] − p[f−])` transposed to `gp`: for each x-face `[j, i]` with
/// `keep_u(k)`, `w = gu[k]·scale` goes to `+fetch(j, i)` and `−fetch(j, i−1)`; y-faces alike.
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
    for j in 0..ny {
        for i in 0..=nx {
            let k = j * (nx + 1) + i;
            if keep_u(k) {
                let w = gu[k] * scale;
                let (jj, ii) = (j as isize, i as isize);
                fetch_add(gp, s, jj, ii, w);
                fetch_add(gp, s, jj, ii - 1, -w);
            }
        }
    }
    for j in 0..=ny {
        for i in 0..nx {
            let k = j * nx + i;
            if keep_v(k) {
                let w = gv[k] * scale;
                let (jj, ii) = (j as isize, i as isize);
                fetch_add(gp, s, jj, ii, w);
                fetch_add(gp, s, jj - 1, ii, -w);
            }
        }
    }
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
        for j in 0..ny {
            for i in 0..nx {
                let c = j * nx + i;
                if sys.solid[c] {
                    continue;
                }
                let w = minus_dx * r[c];
                gu[j * (nx + 1) + i + 1] += w;
                gu[j * (nx + 1) + i] -= w;
                gv[(j + 1) * nx + i] += w;
                gv[j * nx + i] -= w;
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
