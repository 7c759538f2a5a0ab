//! Flex (CPU) kernels of [`LineConvOps`](super::LineConvOps): 1D convolutions in the
//! batch-innermost layout `[C, L, B]`.
//!
//! Why: the 1D U-Net's planes are short (1–63 points) and thin (1–32 channels), so neither
//! the length nor the channels fill a vector register; the batch (32–3200 sequences) does.
//! Every kernel here keeps a block of `CB` channels × `LANES` batch items in registers over
//! all (channel, tap) pairs, one load of an input vector serving `CB` fused multiply-adds,
//! like the 2D kernels of [`super::conv_flex`] (whose scalar types and AVX2 dispatch it
//! shares). The batch is zero-padded to whole register blocks in the padded copies.

use super::conv_flex::{CB, ConvScalar, Task, dispatch, fma_block, madd, simd};
use rayon::prelude::*;

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

/// Sizes of one line convolution.
#[derive(Clone, Copy, Debug)]
pub struct LineShape {
    /// Input channels.
    pub ci: usize,
    /// Output channels.
    pub co: usize,
    /// Input length.
    pub l: usize,
    /// Batch.
    pub b: usize,
    /// Kernel taps.
    pub k: usize,
}

impl LineShape {
    fn lp(&self, s: &LineConvSpec) -> usize {
        self.l + s.pad[0] + s.pad[1]
    }
    /// Output length.
    pub fn lout(&self, s: &LineConvSpec) -> usize {
        (self.lp(s) - self.k) / s.stride + 1
    }
}

/// Multiply-adds below which a kernel runs on the calling thread: waking the pool costs more
/// than such a layer (measured on the U-Net's deepest levels).
const PAR_WORK: usize = 1 << 17;

/// Runs `f(index, chunk)` over the `chunk`-sized pieces of `out`, in parallel when the layer's
/// `work` (multiply-adds) is worth it.
fn for_chunks<T: Send>(
    out: &mut [T],
    chunk: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if work >= PAR_WORK {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(k, c)| f(k, c));
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(k, c)| f(k, c));
    }
}

/// The batch rounded up to whole register blocks.
fn bp<T: ConvScalar>(b: usize) -> usize {
    b.div_ceil(T::LANES) * T::LANES
}

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

/// `x [c, l, b]` → `[c, lp, bp]`, padded in length as `spec` says and with zero batch lanes.
fn pad_input<T: ConvScalar>(x: &[T], sh: LineShape, s: &LineConvSpec) -> Vec<T> {
    let (lp, bp) = (sh.lp(s), bp::<T>(sh.b));
    let mut out = vec![T::zero(); sh.ci * lp * bp];
    for (c, dst) in out.chunks_mut(lp * bp).enumerate() {
        for p in 0..lp {
            if let Some(i) = source(p, sh.l, s) {
                let src = &x[(c * sh.l + i) * sh.b..(c * sh.l + i + 1) * sh.b];
                dst[p * bp..p * bp + sh.b].copy_from_slice(src);
            }
        }
    }
    out
}

/// `a [rows, b]` with rows padded to `bp` lanes.
fn pad_lanes<T: ConvScalar>(a: &[T], b: usize) -> Vec<T> {
    let bp = bp::<T>(b);
    let mut out = vec![T::zero(); a.len() / b * bp];
    for (dst, src) in out.chunks_mut(bp).zip(a.chunks(b)) {
        dst[..b].copy_from_slice(src);
    }
    out
}

/// `a [rows, bp]` cut to `[rows, b]`.
fn trim_lanes<T: ConvScalar>(a: &[T], b: usize) -> Vec<T> {
    let bp = bp::<T>(b);
    let mut out = Vec::with_capacity(a.len() / bp * b);
    for row in a.chunks(bp) {
        out.extend_from_slice(&row[..b]);
    }
    out
}

/// Weights `w [co, ci, k]` in register-block order `[co / CB][ci][k][CB]` (zero-filled).
fn blocked<T: ConvScalar>(w: &[T], co: usize, ci: usize, k: usize) -> Vec<T> {
    let blocks = co.div_ceil(CB);
    let mut wb = vec![T::zero(); blocks * ci * k * CB];
    for o in 0..co {
        for t in 0..ci * k {
            wb[((o / CB) * ci * k + t) * CB + o % CB] = w[o * ci * k + t];
        }
    }
    wb
}

/// One task of both passes over the data: for every position `p < positions` and block of `L`
/// batch lanes, `dst[c, p] = Σ_{ch, t} w[ch, t, c] · src[at(ch, t, p) ..]` for the `CB` channels
/// `c` of the task's block, the sums kept in registers. The forward pass gathers the padded
/// input at `(c_in, o·stride + t)`; the input gradient gathers the output gradient at
/// `(c_out, (p − t)/stride)` where that is an output position (the transposed convolution).
struct Gather<'a, T, F> {
    /// The gathered array (rows of `bp` lanes).
    src: &'a [T],
    /// The block's weights `[channels][k][CB]`.
    w: &'a [T],
    channels: usize,
    k: usize,
    positions: usize,
    bp: usize,
    /// Offset of the row for `(channel, tap, position)`, or `None` where nothing is read.
    at: F,
}

impl<T: ConvScalar, F: Fn(usize, usize, usize) -> Option<usize> + Sync> Task<T>
    for Gather<'_, T, F>
{
    #[inline(always)]
    fn run<const FMA: bool>(&self, dst: &mut [T]) {
        match T::LANES {
            16 => gather_lanes::<T, F, FMA, 16>(self, dst),
            8 => gather_lanes::<T, F, FMA, 8>(self, dst),
            l => unreachable!("register blocks of {l} lanes"),
        }
    }
}

#[inline(always)]
fn gather_lanes<
    T: ConvScalar,
    F: Fn(usize, usize, usize) -> Option<usize>,
    const FMA: bool,
    const L: usize,
>(
    a: &Gather<'_, T, F>,
    dst: &mut [T],
) {
    for p in 0..a.positions {
        for b0 in (0..a.bp).step_by(L) {
            let mut acc = [[T::zero(); L]; CB];
            for ch in 0..a.channels {
                let taps = &a.w[ch * a.k * CB..];
                for t in 0..a.k {
                    let Some(row) = (a.at)(ch, t, p) else {
                        continue;
                    };
                    let src: &[T; L] = a.src[row + b0..row + b0 + L].try_into().expect("L lanes");
                    let wk: &[T; CB] = taps[t * CB..t * CB + CB].try_into().expect("CB");
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

/// `act(conv(pad(x), w) + bias + residual)`: `x [ci, l, b]`, `w [co, ci, k]`, `bias [co]`,
/// `residual [co, lout, b]` → `[co, lout, b]`.
pub fn forward<T: ConvScalar>(
    x: &[T],
    w: &[T],
    bias: &[T],
    residual: Option<&[T]>,
    sh: LineShape,
    spec: &LineConvSpec,
) -> Vec<T> {
    let (lout, bp, blocks) = (sh.lout(spec), bp::<T>(sh.b), sh.co.div_ceil(CB));
    let xp = pad_input(x, sh, spec);
    let wb = blocked(w, sh.co, sh.ci, sh.k);
    let simd = simd();
    let mut out = vec![T::zero(); blocks * CB * lout * bp];
    let work = sh.co * sh.ci * sh.k * lout * bp;
    let (lp, st) = (sh.lp(spec), spec.stride);
    for_chunks(&mut out, CB * lout * bp, work, |block, dst| {
        let task = Gather {
            src: &xp,
            w: &wb[block * sh.ci * sh.k * CB..(block + 1) * sh.ci * sh.k * CB],
            channels: sh.ci,
            k: sh.k,
            positions: lout,
            bp,
            at: |c_in: usize, t: usize, o: usize| Some((c_in * lp + o * st + t) * bp),
        };
        dispatch(&task, dst, simd);
    });
    let mut y = trim_lanes(&out[..sh.co * lout * bp], sh.b);
    let neg = negative_slope::<T>(spec.act);
    for (c, plane) in y.chunks_mut(lout * sh.b).enumerate() {
        if let Some(r) = residual {
            let r = &r[c * lout * sh.b..(c + 1) * lout * sh.b];
            plane.iter_mut().zip(r).for_each(|(v, r)| *v = *v + *r);
        }
        for v in plane.iter_mut() {
            let pre = *v + bias[c];
            *v = if pre > T::zero() { pre } else { pre * neg };
        }
    }
    y
}

/// The slope of the activation for negative inputs (1: linear).
fn negative_slope<T: ConvScalar>(act: Activation) -> T {
    match act {
        Activation::Linear => T::one(),
        Activation::Relu => T::zero(),
        Activation::LeakyRelu(s) => T::from(s).expect("finite slope"),
    }
}

/// Gradients of [`forward`] from its output `y` and output gradient `g` (`[co, lout, b]`):
/// `(∂x [ci, l, b], ∂w [co, ci, k], ∂bias [co], ∂residual = ∂pre [co, lout, b])`.
pub fn backward<T: ConvScalar>(
    x: &[T],
    w: &[T],
    y: &[T],
    g: &[T],
    sh: LineShape,
    spec: &LineConvSpec,
) -> (Vec<T>, Vec<T>, Vec<T>, Vec<T>) {
    let (lout, lp, bp) = (sh.lout(spec), sh.lp(spec), bp::<T>(sh.b));
    let simd = simd();
    // The slope is ≥ 0, so the output has the sign of the pre-activation.
    let neg = negative_slope::<T>(spec.act);
    let pre: Vec<T> = g
        .iter()
        .zip(y)
        .map(|(&g, &y)| if y > T::zero() { g } else { g * neg })
        .collect();
    let gp = pad_lanes(&pre, sh.b);
    // Bias: Σ over positions and batch.
    let gb: Vec<T> = gp
        .chunks(lout * bp)
        .map(|c| c.iter().fold(T::zero(), |s, &v| s + v))
        .collect();
    // Weights: one task per output channel; K tap sums of L lanes per input channel.
    let xp = pad_input(x, sh, spec);
    let mut gw = vec![T::zero(); sh.co * sh.ci * sh.k];
    let work = sh.co * sh.ci * sh.k * lout * bp;
    for_chunks(&mut gw, sh.ci * sh.k, work, |o, dst| {
        let task = WeightGrad {
            xp: &xp,
            g: &gp[o * lout * bp..(o + 1) * lout * bp],
            sh,
            spec: *spec,
        };
        dispatch(&task, dst, simd);
    });
    // Input: transposed weights [ci / CB][co][k][CB], padded gradient, folded back.
    let blocks = sh.ci.div_ceil(CB);
    let mut wt = vec![T::zero(); blocks * sh.co * sh.k * CB];
    for o in 0..sh.co {
        for i in 0..sh.ci {
            for t in 0..sh.k {
                wt[(((i / CB) * sh.co + o) * sh.k + t) * CB + i % CB] =
                    w[(o * sh.ci + i) * sh.k + t];
            }
        }
    }
    let mut gxp = vec![T::zero(); blocks * CB * lp * bp];
    let st = spec.stride;
    for_chunks(&mut gxp, CB * lp * bp, work, |block, dst| {
        let task = Gather {
            src: &gp,
            w: &wt[block * sh.co * sh.k * CB..(block + 1) * sh.co * sh.k * CB],
            channels: sh.co,
            k: sh.k,
            positions: lp,
            bp,
            at: |c_out: usize, t: usize, p: usize| {
                let q = p.checked_sub(t)?;
                (q % st == 0 && q / st < lout).then_some((c_out * lout + q / st) * bp)
            },
        };
        dispatch(&task, dst, simd);
    });
    let mut gx = vec![T::zero(); sh.ci * sh.l * sh.b];
    for c in 0..sh.ci {
        for p in 0..lp {
            if let Some(i) = source(p, sh.l, spec) {
                let src = &gxp[(c * lp + p) * bp..(c * lp + p) * bp + sh.b];
                let dst = &mut gx[(c * sh.l + i) * sh.b..(c * sh.l + i + 1) * sh.b];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d = *d + *s);
            }
        }
    }
    (gx, gw, gb, pre)
}

/// One task of the weight gradient: the `[ci, k]` taps of one output channel.
struct WeightGrad<'a, T> {
    xp: &'a [T],
    /// This channel's padded gradient `[lout, bp]`.
    g: &'a [T],
    sh: LineShape,
    spec: LineConvSpec,
}

impl<T: ConvScalar> Task<T> for WeightGrad<'_, T> {
    #[inline(always)]
    fn run<const FMA: bool>(&self, dst: &mut [T]) {
        match T::LANES {
            16 => weight_lanes::<T, FMA, 16>(self, dst),
            8 => weight_lanes::<T, FMA, 8>(self, dst),
            l => unreachable!("register blocks of {l} lanes"),
        }
    }
}

/// Taps of at most this many points.
const MAX_TAPS: usize = 4;

#[inline(always)]
fn weight_lanes<T: ConvScalar, const FMA: bool, const L: usize>(
    a: &WeightGrad<'_, T>,
    dst: &mut [T],
) {
    let LineShape { ci, k, b, .. } = a.sh;
    let (lp, bp, lout, st) = (
        a.sh.lp(&a.spec),
        bp::<T>(b),
        a.sh.lout(&a.spec),
        a.spec.stride,
    );
    for c_in in 0..ci {
        let mut acc = [[T::zero(); L]; MAX_TAPS];
        for o in 0..lout {
            for b0 in (0..bp).step_by(L) {
                let gv: &[T; L] = a.g[o * bp + b0..o * bp + b0 + L]
                    .try_into()
                    .expect("L lanes");
                for (t, sum) in acc.iter_mut().enumerate().take(k) {
                    let at = (c_in * lp + o * st + t) * bp + b0;
                    let src: &[T; L] = a.xp[at..at + L].try_into().expect("L lanes");
                    *sum = std::array::from_fn(|j| madd::<T, FMA>(gv[j], src[j], sum[j]));
                }
            }
        }
        for (t, sum) in acc.iter().enumerate().take(k) {
            dst[c_in * k + t] = sum.iter().fold(T::zero(), |s, &v| s + v);
        }
    }
}

/// Whether the kernels take a convolution of `k` taps.
pub fn supports(k: usize) -> bool {
    (1..=MAX_TAPS).contains(&k)
}
