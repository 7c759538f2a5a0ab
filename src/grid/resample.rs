//! Down-sampling of MAC fields by 2 per axis, the Solver-in-the-Loop way (docs/wake-flow.md §2,
//! PhiFlow 1 `StaggeredGrid.downsample2x`): each velocity component keeps every second face
//! along its own axis and averages pairs of faces along the other axis; centred scalars average
//! 2×2 blocks. The coarse flux through a coarse face is the sum of the fine fluxes through it,
//! so the coarse divergence of a cell is the mean of its four fine divergences: a
//! divergence-free fine field stays divergence-free.
//!
//! Arrays are single items in the layout of [`crate::grid`]: `u [ny, nx+1]`, `v [ny+1, nx]`,
//! scalars `[ny, nx]`, for a fine grid `nx × ny` with both counts even.

/// `u [ny, nx+1]` on the fine grid → `[ny/2, nx/2+1]`: faces `0, 2, …, nx` along x, rows
/// averaged in pairs.
pub fn downsample_u(u: &[f32], nx: usize, ny: usize) -> Vec<f32> {
    assert_eq!(u.len(), ny * (nx + 1), "u shape");
    let (cx, cy) = (nx / 2, ny / 2);
    let mut out = Vec::with_capacity(cy * (cx + 1));
    for j in 0..cy {
        let (r0, r1) = (&u[2 * j * (nx + 1)..], &u[(2 * j + 1) * (nx + 1)..]);
        out.extend((0..=cx).map(|i| 0.5 * (r0[2 * i] + r1[2 * i])));
    }
    out
}

/// `v [ny+1, nx]` on the fine grid → `[ny/2+1, nx/2]`: faces `0, 2, …, ny` along y, columns
/// averaged in pairs.
pub fn downsample_v(v: &[f32], nx: usize, ny: usize) -> Vec<f32> {
    assert_eq!(v.len(), (ny + 1) * nx, "v shape");
    let (cx, cy) = (nx / 2, ny / 2);
    let mut out = Vec::with_capacity((cy + 1) * cx);
    for j in 0..=cy {
        let row = &v[2 * j * nx..(2 * j + 1) * nx];
        out.extend((0..cx).map(|i| 0.5 * (row[2 * i] + row[2 * i + 1])));
    }
    out
}

/// A centred scalar `[ny, nx]` → `[ny/2, nx/2]`, the mean of each 2×2 block.
pub fn downsample_centered(q: &[f32], nx: usize, ny: usize) -> Vec<f32> {
    assert_eq!(q.len(), ny * nx, "scalar shape");
    let (cx, cy) = (nx / 2, ny / 2);
    let mut out = Vec::with_capacity(cy * cx);
    for j in 0..cy {
        let (r0, r1) = (&q[2 * j * nx..], &q[(2 * j + 1) * nx..]);
        out.extend((0..cx).map(|i| 0.25 * (r0[2 * i] + r0[2 * i + 1] + r1[2 * i] + r1[2 * i + 1])));
    }
    out
}

/// Applies the 2× down-sampling `levels` times to `(u, v)` of a `nx × ny` grid (both counts
/// divisible by `2^levels`); returns the coarse `(u, v)`.
pub fn downsample_velocity(
    mut u: Vec<f32>,
    mut v: Vec<f32>,
    [mut nx, mut ny]: [usize; 2],
    levels: u32,
) -> (Vec<f32>, Vec<f32>) {
    for _ in 0..levels {
        u = downsample_u(&u, nx, ny);
        v = downsample_v(&v, nx, ny);
        (nx, ny) = (nx / 2, ny / 2);
    }
    (u, v)
}

/// Applies [`downsample_centered`] `levels` times.
pub fn downsample_scalar(mut q: Vec<f32>, [mut nx, mut ny]: [usize; 2], levels: u32) -> Vec<f32> {
    for _ in 0..levels {
        q = downsample_centered(&q, nx, ny);
        (nx, ny) = (nx / 2, ny / 2);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Σ` over faces of a cell of outward face values, per cell (`dx = 1`).
    fn divergence(u: &[f32], v: &[f32], nx: usize, ny: usize) -> Vec<f64> {
        let mut d = Vec::with_capacity(nx * ny);
        for j in 0..ny {
            for i in 0..nx {
                let du = u[j * (nx + 1) + i + 1] - u[j * (nx + 1) + i];
                let dv = v[(j + 1) * nx + i] - v[j * nx + i];
                d.push(f64::from(du + dv));
            }
        }
        d
    }

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    /// The coarse divergence (coarse dx = 2) is the mean of the four fine ones, for any field.
    #[test]
    fn coarse_divergence_is_the_mean_of_the_fine_divergences() {
        let (nx, ny) = (8, 12);
        let u = noise(ny * (nx + 1), 1);
        let v = noise((ny + 1) * nx, 2);
        let fine = divergence(&u, &v, nx, ny);
        let (cu, cv) = downsample_velocity(u, v, [nx, ny], 1);
        let coarse = divergence(&cu, &cv, nx / 2, ny / 2);
        for j in 0..ny / 2 {
            for i in 0..nx / 2 {
                let mean = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|(a, b)| fine[(2 * j + a) * nx + 2 * i + b])
                    .sum::<f64>()
                    / 4.0;
                // Coarse face spacing is 2 fine cells: div_c = Σ flux / 2.
                assert!((coarse[j * nx / 2 + i] / 2.0 - mean).abs() < 1e-6);
            }
        }
    }

    /// Linear fields are reproduced exactly at the coarse positions (face centres move to the
    /// midpoints of the averaged pairs), twice over.
    #[test]
    fn linear_fields_are_sampled_at_the_coarse_positions() {
        let (nx, ny) = (8, 16);
        let f = |x: f32, y: f32| 0.5 + 0.25 * x - 0.125 * y;
        let u: Vec<f32> = (0..ny)
            .flat_map(|j| (0..=nx).map(move |i| f(i as f32, j as f32 + 0.5)))
            .collect();
        let v: Vec<f32> = (0..=ny)
            .flat_map(|j| (0..nx).map(move |i| f(i as f32 + 0.5, j as f32)))
            .collect();
        let q: Vec<f32> = (0..ny)
            .flat_map(|j| (0..nx).map(move |i| f(i as f32 + 0.5, j as f32 + 0.5)))
            .collect();
        let (cu, cv) = downsample_velocity(u, v, [nx, ny], 2);
        let cq = downsample_scalar(q, [nx, ny], 2);
        let (cx, cy, h) = (nx / 4, ny / 4, 4.0);
        for j in 0..cy {
            for i in 0..=cx {
                let want = f(h * i as f32, h * (j as f32 + 0.5));
                assert!((cu[j * (cx + 1) + i] - want).abs() < 1e-5);
            }
        }
        for j in 0..=cy {
            for i in 0..cx {
                let want = f(h * (i as f32 + 0.5), h * j as f32);
                assert!((cv[j * cx + i] - want).abs() < 1e-5);
            }
        }
        for j in 0..cy {
            for i in 0..cx {
                let want = f(h * (i as f32 + 0.5), h * (j as f32 + 0.5));
                assert!((cq[j * cx + i] - want).abs() < 1e-5);
            }
        }
    }
}
