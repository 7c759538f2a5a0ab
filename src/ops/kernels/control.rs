//! CPU kernels of the flow-control ops ([`crate::ops::ControlOps`]): the staggered curl of a
//! node potential, the frequency-weighted target loss and the blurred L2 loss, each with its
//! adjoint. Arrays are batches of row-major `[y, x]` items; the losses return one value per
//! item. The losses accumulate in f64 whatever the element type.

use super::Real;
use rayon::prelude::*;
use std::f64::consts::PI;

/// Velocity of the node potential `psi: [ny+1, nx+1]` per item: `u = ∂ψ/∂y` on the x-faces
/// `[ny, nx+1]`, `v = −∂ψ/∂x` on the y-faces `[ny+1, nx]`, both by one-cell differences over
/// `dx`. The discrete divergence of `(u, v)` is zero in every cell.
pub fn staggered_curl<T: Real>(psi: &[T], nx: usize, ny: usize, dx: f64, u: &mut [T], v: &mut [T]) {
    let (pn, un, vn) = ((ny + 1) * (nx + 1), ny * (nx + 1), (ny + 1) * nx);
    let s = T::of(1.0 / dx);
    for ((p, u), v) in psi.chunks(pn).zip(u.chunks_mut(un)).zip(v.chunks_mut(vn)) {
        for j in 0..ny {
            for i in 0..=nx {
                u[j * (nx + 1) + i] = (p[(j + 1) * (nx + 1) + i] - p[j * (nx + 1) + i]) * s;
            }
        }
        for j in 0..=ny {
            for i in 0..nx {
                v[j * nx + i] = (p[j * (nx + 1) + i] - p[j * (nx + 1) + i + 1]) * s;
            }
        }
    }
}

/// Adjoint of [`staggered_curl`]: `ψ̄ [ny+1, nx+1]` per item from `(ū, v̄)`.
pub fn staggered_curl_adjoint<T: Real>(
    gu: &[T],
    gv: &[T],
    nx: usize,
    ny: usize,
    dx: f64,
    gpsi: &mut [T],
) {
    let (pn, un, vn) = ((ny + 1) * (nx + 1), ny * (nx + 1), (ny + 1) * nx);
    let s = T::of(1.0 / dx);
    for ((g, gu), gv) in gpsi.chunks_mut(pn).zip(gu.chunks(un)).zip(gv.chunks(vn)) {
        g.fill(T::zero());
        for j in 0..ny {
            for i in 0..=nx {
                let a = gu[j * (nx + 1) + i] * s;
                g[(j + 1) * (nx + 1) + i] += a;
                g[j * (nx + 1) + i] -= a;
            }
        }
        for j in 0..=ny {
            for i in 0..nx {
                let a = gv[j * nx + i] * s;
                g[j * (nx + 1) + i] += a;
                g[j * (nx + 1) + i + 1] -= a;
            }
        }
    }
}

/// The frequencies of an unnormalised DFT of length `n`, in cycles per cell (numpy's
/// `fftfreq(n)`: `0, 1/n, …, (⌈n/2⌉−1)/n, −⌊n/2⌋/n, …, −1/n`).
pub fn fft_frequencies(n: usize) -> Vec<f64> {
    (0..n)
        .map(|m| {
            let m = if m < n.div_ceil(2) {
                m as f64
            } else {
                m as f64 - n as f64
            };
            m / n as f64
        })
        .collect()
}

/// The circulant kernel `c(m) = Σ_k exp(−k²/(2σ²))·cos(2πkm)`, `m = 0..n`, over the DFT
/// frequencies `k` of length `n`: `Σ_k g(k)·|DFT(d)(k)|² = Σ_{a,b} d_a·d_b·c(a − b mod n)`
/// for a real line `d`.
pub fn spectral_kernel(n: usize, sigma: f64) -> Vec<f64> {
    let ks = fft_frequencies(n);
    (0..n)
        .map(|m| {
            ks.iter()
                .map(|k| (-k * k / (2.0 * sigma * sigma)).exp() * (2.0 * PI * k * m as f64).cos())
                .sum()
        })
        .collect()
}

/// `q = nx·(C_y d) + ny·(d C_x)` for one item `d: [ny, nx]` with the circulant kernels `cy`,
/// `cx` of [`spectral_kernel`].
fn spectral_apply<T: Real>(d: &[T], nx: usize, ny: usize, cy: &[f64], cx: &[f64]) -> Vec<f64> {
    let mut q = vec![0.0; nx * ny];
    for j in 0..ny {
        for i in 0..nx {
            let mut along_y = 0.0;
            for jj in 0..ny {
                along_y += cy[(j + ny - jj) % ny] * d[jj * nx + i].wide();
            }
            let mut along_x = 0.0;
            for ii in 0..nx {
                along_x += cx[(i + nx - ii) % nx] * d[j * nx + ii].wide();
            }
            q[j * nx + i] = nx as f64 * along_y + ny as f64 * along_x;
        }
    }
    q
}

/// Frequency-weighted target loss per item of `d: [B, ny, nx]`:
/// `Σ_k w(k)·|DFT₂(d)(k)|²` with `w(k_y, k_x) = g(k_y) + g(k_x)`, `g(k) = exp(−k²/(2σ²))`, `k`
/// in cycles per cell; the unnormalised 2D DFT. Computed without a transform: the weight of
/// one axis leaves the other axis's frequencies unweighted, so by Parseval each half is a
/// circulant quadratic form along one axis (see [`spectral_kernel`]).
pub fn spectral_loss<T: Real>(d: &[T], nx: usize, ny: usize, sigma: f64, out: &mut [T]) {
    let (cy, cx) = (spectral_kernel(ny, sigma), spectral_kernel(nx, sigma));
    d.par_chunks(nx * ny)
        .zip(out.par_iter_mut())
        .for_each(|(d, o)| {
            let q = spectral_apply(d, nx, ny, &cy, &cx);
            *o = T::of(d.iter().zip(&q).map(|(a, b)| a.wide() * b).sum());
        });
}

/// Adjoint of [`spectral_loss`]: `d̄ = 2·ḡ·(nx·C_y d + ny·d C_x)` per item.
pub fn spectral_loss_adjoint<T: Real>(
    d: &[T],
    g: &[T],
    nx: usize,
    ny: usize,
    sigma: f64,
    gd: &mut [T],
) {
    let (cy, cx) = (spectral_kernel(ny, sigma), spectral_kernel(nx, sigma));
    d.par_chunks(nx * ny)
        .zip(gd.par_chunks_mut(nx * ny))
        .zip(g.par_iter())
        .for_each(|((d, gd), g)| {
            let q = spectral_apply(d, nx, ny, &cy, &cx);
            let s = 2.0 * g.wide();
            for (o, q) in gd.iter_mut().zip(q) {
                *o = T::of(s * q);
            }
        });
}

/// The blur kernel of radius `r` on an `[ny, nx]` grid: half-width `c = min(round(3r), ny, nx)`
/// (ties to even) and the normalised weights `1/(1 + |offset|/r)` of the `(2c+1)²` offsets,
/// row-major from `(−c, −c)`.
pub fn blur_kernel(radius: f64, nx: usize, ny: usize) -> (usize, Vec<f64>) {
    let c = ((3.0 * radius).round_ties_even() as usize).min(nx).min(ny);
    let w = 2 * c + 1;
    let mut k: Vec<f64> = (0..w * w)
        .map(|n| {
            let (dy, dx) = ((n / w) as f64 - c as f64, (n % w) as f64 - c as f64);
            1.0 / (1.0 + (dx * dx + dy * dy).sqrt() / radius)
        })
        .collect();
    let total: f64 = k.iter().sum();
    k.iter_mut().for_each(|x| *x /= total);
    (c, k)
}

/// `K ∗ a` for one item `a: [ny, nx]` (zero beyond the edges, output the size of the input).
/// The kernel is symmetric, so this is also its own adjoint.
fn blur_item(a: &[f64], nx: usize, ny: usize, c: usize, k: &[f64]) -> Vec<f64> {
    let w = 2 * c + 1;
    let mut out = vec![0.0; nx * ny];
    for j in 0..ny {
        let (y0, y1) = (j.saturating_sub(c), (j + c + 1).min(ny));
        for i in 0..nx {
            let (x0, x1) = (i.saturating_sub(c), (i + c + 1).min(nx));
            let mut s = 0.0;
            for y in y0..y1 {
                let krow = &k[(y + c - j) * w..];
                let arow = &a[y * nx..];
                for x in x0..x1 {
                    s += krow[x + c - i] * arow[x];
                }
            }
            out[j * nx + i] = s;
        }
    }
    out
}

/// Blurred L2 loss per item of `d: [B, ny, nx]`: `½·Σ (K ∗ d)²` with the kernel of
/// [`blur_kernel`].
pub fn blurred_l2<T: Real>(d: &[T], nx: usize, ny: usize, radius: f64, out: &mut [T]) {
    let (c, k) = blur_kernel(radius, nx, ny);
    d.par_chunks(nx * ny)
        .zip(out.par_iter_mut())
        .for_each(|(d, o)| {
            let a: Vec<f64> = d.iter().map(|x| x.wide()).collect();
            *o = T::of(
                0.5 * blur_item(&a, nx, ny, c, &k)
                    .iter()
                    .map(|x| x * x)
                    .sum::<f64>(),
            );
        });
}

/// Adjoint of [`blurred_l2`]: `d̄ = ḡ·K ∗ (K ∗ d)` per item.
pub fn blurred_l2_adjoint<T: Real>(
    d: &[T],
    g: &[T],
    nx: usize,
    ny: usize,
    radius: f64,
    gd: &mut [T],
) {
    let (c, k) = blur_kernel(radius, nx, ny);
    d.par_chunks(nx * ny)
        .zip(gd.par_chunks_mut(nx * ny))
        .zip(g.par_iter())
        .for_each(|((d, gd), g)| {
            let a: Vec<f64> = d.iter().map(|x| x.wide()).collect();
            let twice = blur_item(&blur_item(&a, nx, ny, c, &k), nx, ny, c, &k);
            for (o, x) in gd.iter_mut().zip(twice) {
                *o = T::of(g.wide() * x);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Σ_k w(k)·|DFT₂(d)|²` by the definition (a direct 2D DFT).
    fn spectral_by_dft(d: &[f64], nx: usize, ny: usize, sigma: f64) -> f64 {
        let (ky, kx) = (fft_frequencies(ny), fft_frequencies(nx));
        let g = |k: f64| (-k * k / (2.0 * sigma * sigma)).exp();
        let mut total = 0.0;
        for (a, &fy) in ky.iter().enumerate() {
            for (b, &fx) in kx.iter().enumerate() {
                let (mut re, mut im) = (0.0, 0.0);
                for j in 0..ny {
                    for i in 0..nx {
                        let th =
                            -2.0 * PI * ((a * j) as f64 / ny as f64 + (b * i) as f64 / nx as f64);
                        re += d[j * nx + i] * th.cos();
                        im += d[j * nx + i] * th.sin();
                    }
                }
                total += (g(fy) + g(fx)) * (re * re + im * im);
            }
        }
        total
    }

    fn field(nx: usize, ny: usize, seed: f64) -> Vec<f64> {
        (0..nx * ny)
            .map(|n| ((n as f64 * 0.37 + seed).sin() + (n as f64 * 0.011 * seed).cos()) * 0.5)
            .collect()
    }

    #[test]
    fn frequencies_are_numpys() {
        assert_eq!(fft_frequencies(4), vec![0.0, 0.25, -0.5, -0.25]);
        assert_eq!(fft_frequencies(5), vec![0.0, 0.2, 0.4, -0.4, -0.2]);
    }

    #[test]
    fn spectral_loss_equals_the_dft_definition() {
        // Odd and even sizes, a wide and the paper's narrow weight.
        for (nx, ny, sigma) in [(8, 6, 0.2), (7, 10, 0.01), (16, 16, 0.05)] {
            let d = field(nx, ny, 1.3);
            let mut out = [0.0];
            spectral_loss(&d, nx, ny, sigma, &mut out);
            let want = spectral_by_dft(&d, nx, ny, sigma);
            assert!(
                (out[0] - want).abs() <= 1e-11 * want.abs(),
                "{nx}x{ny}: {} vs {want}",
                out[0]
            );
        }
    }

    #[test]
    fn curl_is_divergence_free_and_its_adjoint_is_its_transpose() {
        let (nx, ny) = (5, 4);
        let psi = field(nx + 1, ny + 1, 0.7);
        let (mut u, mut v) = (vec![0.0; ny * (nx + 1)], vec![0.0; (ny + 1) * nx]);
        staggered_curl(&psi, nx, ny, 0.5, &mut u, &mut v);
        for j in 0..ny {
            for i in 0..nx {
                let div = u[j * (nx + 1) + i + 1] - u[j * (nx + 1) + i] + v[(j + 1) * nx + i]
                    - v[j * nx + i];
                assert!(div.abs() < 1e-14, "divergence {div} in cell ({i}, {j})");
            }
        }
        // ⟨curl ψ, (a, b)⟩ = ⟨ψ, curlᵀ (a, b)⟩.
        let (a, b) = (field(nx + 1, ny, 2.1), field(nx, ny + 1, 3.4));
        let mut gp = vec![0.0; psi.len()];
        staggered_curl_adjoint(&a, &b, nx, ny, 0.5, &mut gp);
        let lhs: f64 = u
            .iter()
            .zip(&a)
            .chain(v.iter().zip(&b))
            .map(|(x, y)| x * y)
            .sum();
        let rhs: f64 = psi.iter().zip(&gp).map(|(x, y)| x * y).sum();
        assert!(
            (lhs - rhs).abs() < 1e-13 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }

    #[test]
    fn blur_kernel_has_the_legacy_support_and_sums_to_one() {
        // round(3·2) = 6, round(3·2.5) = round(7.5) = 8 (ties to even), capped by the grid.
        assert_eq!(blur_kernel(2.0, 64, 64).0, 6);
        assert_eq!(blur_kernel(2.5, 64, 64).0, 8);
        assert_eq!(blur_kernel(2.5, 64, 5).0, 5);
        let (c, k) = blur_kernel(2.0, 64, 64);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        // Centre weight 1, at distance 2 one half, before normalisation.
        let w = 2 * c + 1;
        let ratio = k[c * w + c + 2] / k[c * w + c];
        assert!((ratio - 0.5).abs() < 1e-15);
    }

    #[test]
    fn blurred_l2_of_a_point_is_half_the_squared_kernel_inside() {
        // A unit point far from the edges: K ∗ δ = K, so the loss is ½ Σ K².
        let (nx, ny) = (20, 20);
        let mut d = vec![0.0; nx * ny];
        d[10 * nx + 10] = 1.0;
        let mut out = [0.0];
        blurred_l2(&d, nx, ny, 1.5, &mut out);
        let (_, k) = blur_kernel(1.5, nx, ny);
        let want = 0.5 * k.iter().map(|x| x * x).sum::<f64>();
        assert!((out[0] - want).abs() < 1e-16, "{} vs {want}", out[0]);
    }
}
