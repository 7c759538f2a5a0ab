//! Flex (CPU) kernels of one 1D U-Net layer, `act(conv(pad(x), w) + b [+ r])`, on the
//! batch-innermost planes of [`super::unet1d_flex`]: `[channels, length, lanes]`, where the
//! lanes are the batch rounded up to [`GRAIN`] (the extra lanes carry finite values and zero
//! gradients) and the channels are rounded up to whole register blocks of `CB`.
//!
//! Why: the U-Net's planes are short (1–63 points) and thin (1–32 channels), so neither the
//! length nor the channels fill a vector register; the batch does. Every kernel keeps a block
//! of `CB` channels × 16 (f32) or 8 (f64) batch lanes in registers over all (channel, tap)
//! pairs, one load of an input vector serving `CB` fused multiply-adds, like the 2D kernels of
//! [`super::conv_flex`] (whose scalar types and AVX2 dispatch it shares). Padding is never
//! copied: the kernels read the unpadded plane through the padding's index map.

use super::conv_flex::{CB, ConvScalar, Task, dispatch, fma_block, madd};
use std::ops::Range;

/// A layer's activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// None.
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x > 0`, else `slope·x` (slope > 0).
    LeakyRelu(f64),
}

/// Padding, stride and activation of a line convolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LineConvSpec {
    /// Stride.
    pub stride: usize,
    /// Points added before and after.
    pub pad: [usize; 2],
    /// Edge (replicate) padding; zeros when false.
    pub edge: bool,
    /// Activation.
    pub act: Activation,
}

impl LineConvSpec {
    /// Output length for an input of `l` points and `k` taps.
    pub fn lout(&self, l: usize, k: usize) -> usize {
        (l + self.pad[0] + self.pad[1] - k) / self.stride + 1
    }
}

/// Batch lanes are rounded up to a multiple of this.
pub const GRAIN: usize = 8;

/// Channels rounded up to whole register blocks.
pub fn capacity(c: usize) -> usize {
    c.div_ceil(CB) * CB
}

/// Sizes of one layer.
#[derive(Clone, Copy, Debug)]
pub struct LineShape {
    /// Input channels.
    pub ci: usize,
    /// Output channels.
    pub co: usize,
    /// Input length.
    pub l: usize,
    /// Kernel taps (1–4).
    pub k: usize,
    /// Batch lanes (a multiple of [`GRAIN`]).
    pub bp: usize,
}

/// Taps of at most this many points.
pub const MAX_TAPS: usize = 4;

/// Input index read at padded position `p` (`None`: a zero).
fn source(p: usize, l: usize, s: &LineConvSpec) -> Option<usize> {
    let i = p as isize - s.pad[0] as isize;
    if (0..l as isize).contains(&i) {
        Some(i as usize)
    } else if s.edge {
        Some(i.clamp(0, l as isize - 1) as usize)
    } else {
        None
    }
}

/// Weights `w [co, ci, k]` in register-block order `[co / CB][ci][k][CB]` (zero-filled).
pub fn blocked<T: ConvScalar>(w: &[T], co: usize, ci: usize, k: usize) -> Vec<T> {
    let mut wb = vec![T::zero(); co.div_ceil(CB) * ci * k * CB];
    for o in 0..co {
        for t in 0..ci * k {
            wb[((o / CB) * ci * k + t) * CB + o % CB] = w[o * ci * k + t];
        }
    }
    wb
}

/// Weights `w [co, ci, k]` transposed for the input gradient: `[ci / CB][co][k][CB]`.
pub fn blocked_transposed<T: ConvScalar>(w: &[T], co: usize, ci: usize, k: usize) -> Vec<T> {
    let mut wt = vec![T::zero(); ci.div_ceil(CB) * co * k * CB];
    for o in 0..co {
        for i in 0..ci {
            for t in 0..k {
                wt[(((i / CB) * co + o) * k + t) * CB + i % CB] = w[(o * ci + i) * k + t];
            }
        }
    }
    wt
}

/// Marks a tap that reads nothing (a zero of the padding, or no output position).
const SKIP: usize = usize::MAX;

/// Row offsets of channel 0 read by every (position, tap), `[positions][k]` (`SKIP`: none):
/// for the forward pass and the weight gradient, input rows `source(o·stride + t)`.
fn input_rows(l: usize, lout: usize, k: usize, bp: usize, spec: &LineConvSpec) -> Vec<usize> {
    (0..lout * k)
        .map(|at| source(at / k * spec.stride + at % k, l, spec).map_or(SKIP, |i| i * bp))
        .collect()
}

/// For the input gradient over the padded positions `p`: output rows `(p − t)/stride` where
/// that is an output position.
fn output_rows(lp: usize, lout: usize, k: usize, bp: usize, st: usize) -> Vec<usize> {
    (0..lp * k)
        .map(|at| {
            let (p, t) = (at / k, at % k);
            match p.checked_sub(t) {
                Some(q) if q % st == 0 && q / st < lout => q / st * bp,
                _ => SKIP,
            }
        })
        .collect()
}

/// One task of both passes over the data: for every position `p < positions` and block of
/// batch lanes, `dst[c, p] = Σ_{ch, t} w[ch, t, c] · src[ch·stride + rows[p, t] ..]` for the
/// `CB` channels `c` of the task's block, the sums kept in registers. The forward pass gathers
/// the input at `(c_in, source(o·stride + t))`; the input gradient gathers the output gradient
/// at `(c_out, (p − t)/stride)` (the transposed convolution).
struct Gather<'a, T> {
    /// The gathered plane (rows of `bp` lanes).
    src: &'a [T],
    /// The block's weights `[channels][k][CB]`.
    w: &'a [T],
    channels: usize,
    k: usize,
    positions: usize,
    bp: usize,
    /// Row offsets for channel 0, `[positions][k]`.
    rows: &'a [usize],
    /// Elements between the channels of `src`.
    stride: usize,
}

impl<T: ConvScalar> Task<T> for Gather<'_, T> {
    #[inline(always)]
    fn run<const FMA: bool>(&self, dst: &mut [T]) {
        match T::LANES {
            16 => {
                let main = self.bp / 16 * 16;
                gather_lanes::<T, FMA, 16>(self, dst, 0..main);
                gather_lanes::<T, FMA, 8>(self, dst, main..self.bp);
            }
            8 => gather_lanes::<T, FMA, 8>(self, dst, 0..self.bp),
            l => unreachable!("register blocks of {l} lanes"),
        }
    }
}

#[inline(always)]
fn gather_lanes<T: ConvScalar, const FMA: bool, const L: usize>(
    a: &Gather<'_, T>,
    dst: &mut [T],
    lanes: Range<usize>,
) {
    for p in 0..a.positions {
        let rows = &a.rows[p * a.k..(p + 1) * a.k];
        for b0 in lanes.clone().step_by(L) {
            let mut acc = [[T::zero(); L]; CB];
            for (t, &off) in rows.iter().enumerate() {
                if off == SKIP {
                    continue;
                }
                for ch in 0..a.channels {
                    let row = ch * a.stride + off + b0;
                    let src: &[T; L] = a.src[row..row + L].try_into().expect("L lanes");
                    let at = (ch * a.k + t) * CB;
                    let wk: &[T; CB] = a.w[at..at + CB].try_into().expect("CB");
                    fma_block::<T, FMA, L>(&mut acc, wk, src);
                }
            }
            for (c, lanes) in acc.iter().enumerate() {
                let at = (c * a.positions + p) * a.bp + b0;
                dst[at..at + L].copy_from_slice(lanes);
            }
        }
    }
}

/// The slope of the activation for negative inputs (1: linear).
fn negative_slope<T: ConvScalar>(act: Activation) -> T {
    match act {
        Activation::Linear => T::one(),
        Activation::Relu => T::zero(),
        Activation::LeakyRelu(s) => T::from(s).expect("finite slope"),
    }
}

/// `y = act(conv(pad(x), w) + bias [+ r])`: `x [cap(ci), l, bp]`, `wb` from [`blocked`],
/// `bias [co]`, `r` and `y` `[cap(co), lout, bp]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn forward<T: ConvScalar>(
    x: &[T],
    wb: &[T],
    bias: &[T],
    r: Option<&[T]>,
    y: &mut [T],
    sh: LineShape,
    spec: &LineConvSpec,
    simd: bool,
) {
    let LineShape { ci, co, l, k, bp } = sh;
    let lout = spec.lout(l, k);
    let rows = input_rows(l, lout, k, bp, spec);
    for (block, dst) in y.chunks_mut(CB * lout * bp).enumerate() {
        let task = Gather {
            src: x,
            w: &wb[block * ci * k * CB..(block + 1) * ci * k * CB],
            channels: ci,
            k,
            positions: lout,
            bp,
            rows: &rows,
            stride: l * bp,
        };
        dispatch(&task, dst, simd);
    }
    let neg = negative_slope::<T>(spec.act);
    for (c, plane) in y.chunks_mut(lout * bp).take(co).enumerate() {
        if let Some(r) = r {
            let r = &r[c * lout * bp..(c + 1) * lout * bp];
            plane.iter_mut().zip(r).for_each(|(v, r)| *v = *v + *r);
        }
        for v in plane.iter_mut() {
            let pre = *v + bias[c];
            *v = if pre > T::zero() { pre } else { pre * neg };
        }
    }
}

/// Gradients of [`forward`] from its output `y` and the output gradient in `g`, which is
/// turned into the gradient before the activation (`∂pre`, also `r`'s gradient): adds `∂x` to
/// `gx [cap(ci), l, bp]`, writes `gw [co, ci, k]` and `gb [co]`; `wt` from
/// [`blocked_transposed`], `scratch` a reusable buffer.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn backward<T: ConvScalar>(
    x: &[T],
    wt: &[T],
    y: &[T],
    g: &mut [T],
    gx: &mut [T],
    gw: &mut [T],
    gb: &mut [T],
    scratch: &mut Vec<T>,
    sh: LineShape,
    spec: &LineConvSpec,
    simd: bool,
) {
    let LineShape { ci, co, l, k, bp } = sh;
    let lout = spec.lout(l, k);
    let lp = l + spec.pad[0] + spec.pad[1];
    // The slope is ≥ 0, so the output has the sign of the pre-activation.
    let neg = negative_slope::<T>(spec.act);
    let n = co * lout * bp;
    g[..n].iter_mut().zip(&y[..n]).for_each(|(g, &y)| {
        *g = *g * if y > T::zero() { T::one() } else { neg };
    });
    let g = &g[..n];
    let rows = input_rows(l, lout, k, bp, spec);
    for (o, plane) in g.chunks(lout * bp).enumerate() {
        gb[o] = sum(plane);
    }
    // Two output channels per task share every load of `x`.
    for (pair, dst) in gw.chunks_mut(2 * ci * k).enumerate() {
        let outs = dst.len() / (ci * k);
        let task = WeightGrad {
            x,
            g: &g[2 * pair * lout * bp..(2 * pair + outs) * lout * bp],
            outs,
            ci,
            k,
            lout,
            bp,
            rows: &rows,
            stride: l * bp,
        };
        dispatch(&task, dst, simd);
    }
    // Input: the transposed convolution over padded positions, folded back onto the plane.
    // Every element of the scratch is written by the gather: no zeroing.
    let need = capacity(ci) * lp * bp;
    if scratch.len() < need {
        scratch.resize(need, T::zero());
    }
    let rows = output_rows(lp, lout, k, bp, spec.stride);
    for (block, dst) in scratch[..need].chunks_mut(CB * lp * bp).enumerate() {
        let task = Gather {
            src: g,
            w: &wt[block * co * k * CB..(block + 1) * co * k * CB],
            channels: co,
            k,
            positions: lp,
            bp,
            rows: &rows,
            stride: lout * bp,
        };
        dispatch(&task, dst, simd);
    }
    for c in 0..ci {
        for p in 0..lp {
            if let Some(i) = source(p, l, spec) {
                let src = &scratch[(c * lp + p) * bp..(c * lp + p + 1) * bp];
                let dst = &mut gx[(c * l + i) * bp..(c * l + i + 1) * bp];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d = *d + *s);
            }
        }
    }
}

/// One task of the weight gradient: the `[ci, k]` taps of `outs` (1 or 2) output channels,
/// `Σ_{o, lanes} g[q, o] · x[c·stride + rows[o, t] ..]`.
struct WeightGrad<'a, T> {
    x: &'a [T],
    /// The channels' gradients `[outs, lout, bp]`.
    g: &'a [T],
    outs: usize,
    ci: usize,
    k: usize,
    lout: usize,
    bp: usize,
    rows: &'a [usize],
    stride: usize,
}

impl<T: ConvScalar> Task<T> for WeightGrad<'_, T> {
    #[inline(always)]
    fn run<const FMA: bool>(&self, dst: &mut [T]) {
        dst.fill(T::zero());
        match T::LANES {
            16 => {
                let main = self.bp / 16 * 16;
                self.taps::<FMA, 16>(dst, 0..main);
                self.taps::<FMA, 8>(dst, main..self.bp);
            }
            8 => self.taps::<FMA, 8>(dst, 0..self.bp),
            l => unreachable!("register blocks of {l} lanes"),
        }
    }
}

impl<T: ConvScalar> WeightGrad<'_, T> {
    /// The kernel specialised on the taps and output channels.
    #[inline(always)]
    fn taps<const FMA: bool, const L: usize>(&self, dst: &mut [T], lanes: Range<usize>) {
        match (self.k, self.outs) {
            (1, 1) => weight_lanes::<T, FMA, L, 1, 1>(self, dst, lanes),
            (1, _) => weight_lanes::<T, FMA, L, 1, 2>(self, dst, lanes),
            (2, 1) => weight_lanes::<T, FMA, L, 2, 1>(self, dst, lanes),
            (2, _) => weight_lanes::<T, FMA, L, 2, 2>(self, dst, lanes),
            (3, 1) => weight_lanes::<T, FMA, L, 3, 1>(self, dst, lanes),
            (3, _) => weight_lanes::<T, FMA, L, 3, 2>(self, dst, lanes),
            (_, 1) => weight_lanes::<T, FMA, L, 4, 1>(self, dst, lanes),
            (_, _) => weight_lanes::<T, FMA, L, 4, 2>(self, dst, lanes),
        }
    }
}

#[inline(always)]
fn weight_lanes<T: ConvScalar, const FMA: bool, const L: usize, const K: usize, const OB: usize>(
    a: &WeightGrad<'_, T>,
    dst: &mut [T],
    lanes: Range<usize>,
) {
    if lanes.is_empty() {
        return;
    }
    let plane = a.lout * a.bp;
    for c in 0..a.ci {
        let mut acc = [[[T::zero(); L]; K]; OB];
        for o in 0..a.lout {
            let rows: &[usize; K] = a.rows[o * K..(o + 1) * K].try_into().expect("K taps");
            for b0 in lanes.clone().step_by(L) {
                let gv: [&[T; L]; OB] = std::array::from_fn(|q| {
                    let at = q * plane + o * a.bp + b0;
                    a.g[at..at + L].try_into().expect("L lanes")
                });
                for (t, &off) in rows.iter().enumerate() {
                    if off == SKIP {
                        continue;
                    }
                    let row = c * a.stride + off + b0;
                    let src: &[T; L] = a.x[row..row + L].try_into().expect("L lanes");
                    for q in 0..OB {
                        let sum = &mut acc[q][t];
                        *sum = std::array::from_fn(|j| madd::<T, FMA>(gv[q][j], src[j], sum[j]));
                    }
                }
            }
        }
        for (q, taps) in acc.iter().enumerate() {
            for (t, s) in taps.iter().enumerate() {
                let d = &mut dst[(q * a.ci + c) * K + t];
                *d = s.iter().fold(*d, |s, &v| s + v);
            }
        }
    }
}

/// `Σ v` in 8 interleaved partial sums (vectorised; a single chain waits on every add).
#[inline(always)]
fn sum<T: ConvScalar>(v: &[T]) -> T {
    let mut part = [T::zero(); 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        part = std::array::from_fn(|j| part[j] + c[j]);
    }
    let tail = chunks.remainder().iter().fold(T::zero(), |s, &x| s + x);
    part.iter().fold(tail, |s, &x| s + x)
}

/// Whether the kernels take a convolution of `k` taps.
pub fn supports(k: usize) -> bool {
    (1..=MAX_TAPS).contains(&k)
}
