//! Adjoint (vector-Jacobian) kernels of the grid ops: given the gradient `ḡ` of a loss with
//! respect to an op's output, the gradients with respect to its inputs (advection's is
//! [`super::semi_lagrangian_adjoint`], beside its padded forward). Each mirrors its
//! forward kernel line by line: a read `fetch(q, j, i)` becomes [`fetch_add`] into `q̄`
//! (nothing for constant extrapolation, the edge for zero-gradient, the wrapped element on a
//! periodic axis).

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
