//! Flex (CPU) application of a whole 1D U-Net ([`UNetArch`]) and its adjoint, on plain
//! slices: `x [B, C, N]` and packed parameters in, `y [B, 1, N]` and the saved planes out.
//!
//! Why: applied layer by layer through Burn, a U-Net application at the paper's sizes is ~50
//! autodiff nodes, each with its own allocations, padded copies and thread hand-overs; the
//! arithmetic is a third of the time (perf of the DP-CFE chain). Here the batch is split once
//! into one chunk per core, and each core runs the whole program on its chunk in
//! batch-innermost planes (`[channels, length, lanes]`, see [`super::line_conv_flex`]) with no
//! synchronisation, no padding copies and one allocation per application. The planes of all
//! chunks are returned as one buffer for the backward pass, which runs the program in reverse
//! per chunk and sums the chunks' parameter gradients (in a fixed order: the gradients are
//! reproducible bit for bit).

use super::conv_flex::{ConvScalar, simd};
use super::line_conv_flex::{self as layer, GRAIN, LineShape, capacity};
use super::unet1d_plan::{Step, UNetArch};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Where every slot of one chunk sits in its part of the saved buffer.
struct Layout {
    /// Offset of every slot.
    at: Vec<usize>,
    /// Length of every slot.
    len: Vec<usize>,
    /// Elements of the chunk's part.
    size: usize,
}

impl Layout {
    fn new(arch: &UNetArch, n: usize, bp: usize) -> Self {
        let len = arch.lengths(n);
        let mut at = Vec::with_capacity(len.len());
        let mut size = 0;
        for (c, l) in arch.channels.iter().zip(&len) {
            at.push(size);
            size += capacity(*c) * l * bp;
        }
        Self { at, len, size }
    }

    fn range(&self, arch: &UNetArch, slot: usize, bp: usize) -> std::ops::Range<usize> {
        let start = self.at[slot];
        start..start + capacity(arch.channels[slot]) * self.len[slot] * bp
    }
}

/// One chunk of the batch: items `first .. first + items` in `bp` lanes.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    first: usize,
    items: usize,
    bp: usize,
}

/// The batch in one chunk per core, balanced in whole grains of lanes. Depends only on `b`
/// (the core count is read once), so forward and backward agree on the layout.
fn chunks(b: usize) -> Vec<Chunk> {
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(rayon::current_num_threads);
    let grains = b.div_ceil(GRAIN);
    let parts = cores.min(grains).max(1);
    let mut out = Vec::with_capacity(parts);
    let mut first = 0;
    for p in 0..parts {
        let g = grains / parts + usize::from(p < grains % parts);
        let items = (g * GRAIN).min(b - first);
        out.push(Chunk {
            first,
            items,
            bp: g * GRAIN,
        });
        first += items;
    }
    out
}

/// Splits `buf` into consecutive pieces of the given sizes.
fn split_sizes<'a, T>(mut buf: &'a mut [T], sizes: &[usize]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(sizes.len());
    for &s in sizes {
        let (head, tail) = buf.split_at_mut(s);
        out.push(head);
        buf = tail;
    }
    out
}

/// `(y [B, 1, N], saved)`: the network applied to `x [B, inputs, N]` with packed `params`.
pub fn forward<T: ConvScalar>(
    arch: &UNetArch,
    params: &[T],
    x: &[T],
    [b, n]: [usize; 2],
) -> (Vec<T>, Vec<T>) {
    let parts = chunks(b);
    let layouts: Vec<Layout> = parts.iter().map(|c| Layout::new(arch, n, c.bp)).collect();
    let weights: Vec<Vec<T>> = arch
        .layers
        .iter()
        .map(|l| layer::blocked(&params[l.weight..l.bias], l.co, l.ci, l.k))
        .collect();
    let mut saved = vec![T::zero(); layouts.iter().map(|l| l.size).sum()];
    let mut y = vec![T::zero(); b * n];
    let sizes: Vec<usize> = layouts.iter().map(|l| l.size).collect();
    let ys: Vec<usize> = parts.iter().map(|c| c.items * n).collect();
    let simd = simd();
    split_sizes(&mut saved, &sizes)
        .into_par_iter()
        .zip(split_sizes(&mut y, &ys))
        .zip(parts.par_iter().zip(&layouts))
        .for_each(|((planes, y), (chunk, lay))| {
            let run = Run {
                arch,
                params,
                lay,
                chunk: *chunk,
                n,
                simd,
            };
            run.forward_wide(&weights, x, planes, y);
        });
    (y, saved)
}

/// `(∂x [B, inputs, N], ∂params)` from the output gradient `g [B, 1, N]` and the planes saved
/// by [`forward`].
pub fn backward<T: ConvScalar>(
    arch: &UNetArch,
    params: &[T],
    saved: &[T],
    g: &[T],
    [b, n]: [usize; 2],
) -> (Vec<T>, Vec<T>) {
    let parts = chunks(b);
    let layouts: Vec<Layout> = parts.iter().map(|c| Layout::new(arch, n, c.bp)).collect();
    let weights: Vec<Vec<T>> = arch
        .layers
        .iter()
        .map(|l| layer::blocked_transposed(&params[l.weight..l.bias], l.co, l.ci, l.k))
        .collect();
    let mut gx = vec![T::zero(); b * arch.inputs * n];
    let xs: Vec<usize> = parts.iter().map(|c| c.items * arch.inputs * n).collect();
    let mut offsets = Vec::with_capacity(parts.len());
    layouts.iter().fold(0, |at, l| {
        offsets.push(at);
        at + l.size
    });
    let simd = simd();
    let gps: Vec<Vec<T>> = split_sizes(&mut gx, &xs)
        .into_par_iter()
        .zip(parts.par_iter().zip(&layouts).zip(&offsets))
        .map(|(gx, ((chunk, lay), &at))| {
            let run = Run {
                arch,
                params,
                lay,
                chunk: *chunk,
                n,
                simd,
            };
            run.backward_wide(&weights, &saved[at..at + lay.size], g, gx)
        })
        .collect();
    let mut gp = vec![T::zero(); arch.params];
    for part in &gps {
        gp.iter_mut().zip(part).for_each(|(a, &b)| *a = *a + b);
    }
    (gx, gp)
}

/// The program on one chunk.
struct Run<'a, T> {
    arch: &'a UNetArch,
    params: &'a [T],
    lay: &'a Layout,
    chunk: Chunk,
    n: usize,
    simd: bool,
}

impl<T: ConvScalar> Run<'_, T> {
    fn range(&self, slot: usize) -> std::ops::Range<usize> {
        self.lay.range(self.arch, slot, self.chunk.bp)
    }

    /// [`Self::forward`] compiled for AVX2 + FMA when the CPU has them, so that the
    /// per-element loops between the kernels (activations, upsampling, copies) use 256-bit
    /// registers too.
    fn forward_wide(&self, weights: &[Vec<T>], x: &[T], planes: &mut [T], y: &mut [T]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            // SAFETY: `simd` only where the CPU has the features the function is compiled for.
            return unsafe { self.forward_avx2(weights, x, planes, y) };
        }
        self.forward(weights, x, planes, y)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn forward_avx2(&self, weights: &[Vec<T>], x: &[T], planes: &mut [T], y: &mut [T]) {
        self.forward(weights, x, planes, y)
    }

    /// [`Self::backward`] compiled for AVX2 + FMA when the CPU has them.
    fn backward_wide(&self, weights: &[Vec<T>], planes: &[T], g: &[T], gx: &mut [T]) -> Vec<T> {
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            // SAFETY: `simd` only where the CPU has the features the function is compiled for.
            return unsafe { self.backward_avx2(weights, planes, g, gx) };
        }
        self.backward(weights, planes, g, gx)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn backward_avx2(&self, weights: &[Vec<T>], planes: &[T], g: &[T], gx: &mut [T]) -> Vec<T> {
        self.backward(weights, planes, g, gx)
    }

    fn shape(&self, layer: usize, x: usize) -> LineShape {
        let l = &self.arch.layers[layer];
        LineShape {
            ci: l.ci,
            co: l.co,
            l: self.lay.len[x],
            k: l.k,
            bp: self.chunk.bp,
        }
    }

    /// Runs the program on the chunk's items of `x`, its planes into `planes`, its outputs
    /// into `y [items, N]`.
    #[inline(always)]
    fn forward(&self, weights: &[Vec<T>], x: &[T], planes: &mut [T], y: &mut [T]) {
        let (c, n, bp, l0) = (self.arch.inputs, self.n, self.chunk.bp, self.lay.len[0]);
        for j in 0..self.chunk.items {
            let item = &x[(self.chunk.first + j) * c * n..][..c * n];
            for (ch, line) in item.chunks(n).enumerate() {
                for (i, &v) in line.iter().enumerate() {
                    planes[(ch * l0 + i) * bp + j] = v;
                }
            }
        }
        for step in &self.arch.steps {
            match *step {
                Step::Conv {
                    layer,
                    x,
                    y,
                    residual,
                } => {
                    let l = &self.arch.layers[layer];
                    let (lo, hi) = planes.split_at_mut(self.lay.at[y]);
                    let out = &mut hi[..self.range(y).len()];
                    let r = residual.map(|r| &lo[self.range(r)]);
                    layer::forward(
                        &lo[self.range(x)],
                        &weights[layer],
                        &self.params[l.bias..l.bias + l.co],
                        r,
                        out,
                        self.shape(layer, x),
                        &l.spec,
                        self.simd,
                    );
                }
                Step::Upsample { x, y } => {
                    let (lo, hi) = planes.split_at_mut(self.lay.at[y]);
                    self.upsample(&lo[self.range(x)], hi, self.arch.channels[x]);
                }
                Step::Skip { x, y, at } => {
                    let (lo, hi) = planes.split_at_mut(self.lay.at[y]);
                    let (lx, ly) = (self.lay.len[x], self.lay.len[y]);
                    for ch in 0..self.arch.channels[x] {
                        let src = &lo[self.lay.at[x] + ch * lx * bp..][..ly * bp];
                        hi[(at + ch) * ly * bp..][..ly * bp].copy_from_slice(src);
                    }
                }
            }
        }
        let out = &planes[self.range(self.arch.output())];
        for j in 0..self.chunk.items {
            for i in 0..n {
                y[j * n + i] = out[i * bp + j];
            }
        }
    }

    /// `y[c, 2i] = ¼x[i−1] + ¾x[i]`, `y[c, 2i+1] = ¾x[i] + ¼x[i+1]` (edges repeated) for the
    /// first `channels` channels.
    #[inline(always)]
    fn upsample(&self, x: &[T], y: &mut [T], channels: usize) {
        let (bp, q, h) = (self.chunk.bp, quarter::<T>(), T::one() - quarter::<T>());
        let l = x.len() / capacity(channels) / bp;
        for c in 0..channels {
            for i in 0..l {
                let row = |k: usize| &x[(c * l + k) * bp..][..bp];
                let (before, mid, after) =
                    (row(i.saturating_sub(1)), row(i), row((i + 1).min(l - 1)));
                let at = (c * 2 * l + 2 * i) * bp;
                for j in 0..bp {
                    y[at + j] = q * before[j] + h * mid[j];
                    y[at + bp + j] = h * mid[j] + q * after[j];
                }
            }
        }
    }

    /// The chunk's parameter gradient; writes its rows of `∂x` into `gx [items, C, N]`.
    #[inline(always)]
    fn backward(&self, weights: &[Vec<T>], planes: &[T], g: &[T], gx: &mut [T]) -> Vec<T> {
        let (n, bp) = (self.n, self.chunk.bp);
        let mut grads = vec![T::zero(); self.lay.size];
        let mut gp = vec![T::zero(); self.arch.params];
        let mut scratch = Vec::new();
        let out = self.range(self.arch.output());
        for j in 0..self.chunk.items {
            for i in 0..n {
                grads[out.start + i * bp + j] = g[(self.chunk.first + j) * n + i];
            }
        }
        for step in self.arch.steps.iter().rev() {
            match *step {
                Step::Conv {
                    layer,
                    x,
                    y,
                    residual,
                } => {
                    let l = &self.arch.layers[layer];
                    let (lo, hi) = grads.split_at_mut(self.lay.at[y]);
                    let gy = &mut hi[..self.range(y).len()];
                    let (gw, gb) = gp[l.weight..l.bias + l.co].split_at_mut(l.bias - l.weight);
                    layer::backward(
                        &planes[self.range(x)],
                        &weights[layer],
                        &planes[self.range(y)],
                        gy,
                        &mut lo[self.range(x)],
                        gw,
                        gb,
                        &mut scratch,
                        self.shape(layer, x),
                        &l.spec,
                        self.simd,
                    );
                    if let Some(r) = residual {
                        let pre = &gy[..l.co * self.lay.len[y] * bp];
                        let dst = &mut lo[self.lay.at[r]..][..pre.len()];
                        dst.iter_mut().zip(pre).for_each(|(d, &s)| *d = *d + s);
                    }
                }
                Step::Upsample { x, y } => {
                    let (lo, hi) = grads.split_at_mut(self.lay.at[y]);
                    self.upsample_adjoint(&hi[..], &mut lo[self.range(x)], self.arch.channels[x]);
                }
                Step::Skip { x, y, at } => {
                    let (lo, hi) = grads.split_at_mut(self.lay.at[y]);
                    let (lx, ly) = (self.lay.len[x], self.lay.len[y]);
                    for ch in 0..self.arch.channels[x] {
                        let src = &hi[(at + ch) * ly * bp..][..ly * bp];
                        let dst = &mut lo[self.lay.at[x] + ch * lx * bp..][..ly * bp];
                        dst.iter_mut().zip(src).for_each(|(d, &s)| *d = *d + s);
                    }
                }
            }
        }
        let (c, l0) = (self.arch.inputs, self.lay.len[0]);
        for j in 0..self.chunk.items {
            for ch in 0..c {
                for i in 0..n {
                    gx[(j * c + ch) * n + i] = grads[(ch * l0 + i) * bp + j];
                }
            }
        }
        gp
    }

    /// Adds the adjoint of [`Self::upsample`] of `gy` to `gx`.
    #[inline(always)]
    fn upsample_adjoint(&self, gy: &[T], gx: &mut [T], channels: usize) {
        let (bp, q, h) = (self.chunk.bp, quarter::<T>(), T::one() - quarter::<T>());
        let l = gx.len() / capacity(channels) / bp;
        for c in 0..channels {
            for i in 0..l {
                let at = (c * 2 * l + 2 * i) * bp;
                let (even, odd) = (&gy[at..at + bp], &gy[at + bp..at + 2 * bp]);
                let row = |k: usize| (c * l + k) * bp;
                let (before, mid, after) =
                    (row(i.saturating_sub(1)), row(i), row((i + 1).min(l - 1)));
                for j in 0..bp {
                    gx[before + j] = gx[before + j] + q * even[j];
                    gx[mid + j] = gx[mid + j] + h * (even[j] + odd[j]);
                    gx[after + j] = gx[after + j] + q * odd[j];
                }
            }
        }
    }
}

fn quarter<T: ConvScalar>() -> T {
    T::from(0.25).expect("representable")
}
