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

/// One task of both passes over the data: for every position `p < positions` and block of
/// batch lanes, `dst[c, p] = Σ_{ch, t} w[ch, t, c] · src[at(ch, t, p) ..]` for the `CB`
/// channels `c` of the task's block, the sums kept in registers. The forward pass gathers the
/// input at `(c_in, source(o·stride + t))`; the input gradient gathers the output gradient at
/// `(c_out, (p − t)/stride)` where that is an output position (the transposed convolution).
struct Gather<'a, T, F> {
    /// The gathered plane (rows of `bp` lanes).
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
            16 => {
                let main = self.bp / 16 * 16;
                gather_lanes::<T, F, FMA, 16>(self, dst, 0..main);
                gather_lanes::<T, F, FMA, 8>(self, dst, main..self.bp);
            }
            8 => gather_lanes::<T, F, FMA, 8>(self, dst, 0..self.bp),
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
    lanes: std::ops::Range<usize>,
) {
    for p in 0..a.positions {
        for b0 in lanes.clone().step_by(L) {
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
    let (lout, st) = (spec.lout(l, k), spec.stride);
    for (block, dst) in y.chunks_mut(CB * lout * bp).enumerate() {
        let task = Gather {
            src: x,
            w: &wb[block * ci * k * CB..(block + 1) * ci * k * CB],
            channels: ci,
            k,
            positions: lout,
            bp,
            at: |c: usize, t: usize, o: usize| {
                source(o * st + t, l, spec).map(|i| (c * l + i) * bp)
            },
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
    let (lout, st) = (spec.lout(l, k), spec.stride);
    let lp = l + spec.pad[0] + spec.pad[1];
    // The slope is ≥ 0, so the output has the sign of the pre-activation.
    let neg = negative_slope::<T>(spec.act);
    let n = co * lout * bp;
    g[..n].iter_mut().zip(&y[..n]).for_each(|(g, &y)| {
        if y <= T::zero() {
            *g = *g * neg
        }
    });
    let g = &g[..n];
    for (o, plane) in g.chunks(lout * bp).enumerate() {
        gb[o] = plane.iter().fold(T::zero(), |s, &v| s + v);
        let task = WeightGrad {
            x,
            g: plane,
            ci,
            k,
            lout,
            bp,
            at: |c: usize, t: usize, o: usize| {
                source(o * st + t, l, spec).map(|i| (c * l + i) * bp)
            },
        };
        dispatch(&task, &mut gw[o * ci * k..(o + 1) * ci * k], simd);
    }
    // Input: the transposed convolution over padded positions, folded back onto the plane.
    scratch.clear();
    scratch.resize(capacity(ci) * lp * bp, T::zero());
    for (block, dst) in scratch.chunks_mut(CB * lp * bp).enumerate() {
        let task = Gather {
            src: g,
            w: &wt[block * co * k * CB..(block + 1) * co * k * CB],
            channels: co,
            k,
            positions: lp,
            bp,
            at: |c: usize, t: usize, p: usize| {
                let q = p.checked_sub(t)?;
                (q % st == 0 && q / st < lout).then_some((c * lout + q / st) * bp)
            },
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

/// One task of the weight gradient: the `[ci, k]` taps of one output channel,
/// `Σ_{o, lanes} g[o] · x[at(c, t, o)]`.
struct WeightGrad<'a, T, F> {
    x: &'a [T],
    /// This channel's gradient `[lout, bp]`.
    g: &'a [T],
    ci: usize,
    k: usize,
    lout: usize,
    bp: usize,
    at: F,
}

impl<T: ConvScalar, F: Fn(usize, usize, usize) -> Option<usize> + Sync> Task<T>
    for WeightGrad<'_, T, F>
{
    #[inline(always)]
    fn run<const FMA: bool>(&self, dst: &mut [T]) {
        if T::LANES == 16 && self.bp.is_multiple_of(16) {
            weight_lanes::<T, F, FMA, 16>(self, dst)
        } else {
            weight_lanes::<T, F, FMA, 8>(self, dst)
        }
    }
}

#[inline(always)]
fn weight_lanes<
    T: ConvScalar,
    F: Fn(usize, usize, usize) -> Option<usize>,
    const FMA: bool,
    const L: usize,
>(
    a: &WeightGrad<'_, T, F>,
    dst: &mut [T],
) {
    for c in 0..a.ci {
        let mut acc = [[T::zero(); L]; MAX_TAPS];
        for o in 0..a.lout {
            for b0 in (0..a.bp).step_by(L) {
                let gv: &[T; L] = a.g[o * a.bp + b0..o * a.bp + b0 + L]
                    .try_into()
                    .expect("L lanes");
                for (t, sum) in acc.iter_mut().enumerate().take(a.k) {
                    let Some(row) = (a.at)(c, t, o) else {
                        continue;
                    };
                    let src: &[T; L] = a.x[row + b0..row + b0 + L].try_into().expect("L lanes");
                    *sum = std::array::from_fn(|j| madd::<T, FMA>(gv[j], src[j], sum[j]));
                }
            }
        }
        for (t, sum) in acc.iter().enumerate().take(a.k) {
            dst[c * a.k + t] = sum.iter().fold(T::zero(), |s, &v| s + v);
        }
    }
}

/// Whether the kernels take a convolution of `k` taps.
pub fn supports(k: usize) -> bool {
    (1..=MAX_TAPS).contains(&k)
}
