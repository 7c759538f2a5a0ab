//! Flex (CPU) kernels of [`ConvOps`](super::ConvOps): direct 'same' convolutions over
//! zero-padded copies of the planes, without im2col.
//!
//! Why: Flex runs a convolution as NHWC conversion, im2col tiles and a GEMM; at the
//! corrector's sizes (≤ 32 channels, 5×5, 32x64 planes) the copies cost more than the GEMM
//! (perf of a SOL-4 training: GEMM kernels 27%, im2col, transposes, `memmove` and their page
//! faults ~50%). Here every output is accumulated in registers: a block of 4 output channels ×
//! 16 (f32) or 8 (f64) neighbouring pixels of one row, over every (input channel, kernel tap),
//! so one load of the input row serves 4 fused multiply-adds. The weight gradient keeps the k
//! taps of one kernel row (k sums of 16 lanes) in registers over every batch item and row, so
//! one load of `g` serves k of them. Compiled twice: for AVX2 + FMA (chosen at run time when
//! the CPU has them) and for the baseline target. On a SOL-4 training step the two kernels
//! share the time about equally (perf); the weight gradient's first version, one tap at a
//! time, was about 4× slower per flop than the forward (one dependent chain of sums).

use crate::ops::{contiguous, data, with_float};
use burn::backend::flex::FlexTensor;
use burn::backend::{DType, TensorMetadata};
use burn::tensor::TensorData;
use num_traits::Float;
use rayon::prelude::*;

/// Output channels per register block.
pub(super) const CB: usize = 4;

/// An element type of the kernels: f32 or f64, with its register-block width.
pub trait ConvScalar: Float + Send + Sync + std::fmt::Debug + 'static {
    /// Neighbouring pixels per register block (two 256-bit registers).
    const LANES: usize;
    /// Lanes of one weight-gradient sum (one 256-bit register).
    const WEIGHT_LANES: usize;
}

impl ConvScalar for f32 {
    const LANES: usize = 16;
    const WEIGHT_LANES: usize = 8;
}

impl ConvScalar for f64 {
    const LANES: usize = 8;
    const WEIGHT_LANES: usize = 4;
}

/// `a·b + c`, fused (one rounding) when `FMA`: only the AVX2 + FMA build, where `mul_add` is
/// one instruction, asks for it (elsewhere it would be a library call).
#[inline(always)]
pub(super) fn madd<T: Float, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `acc[c] += w[c] · src` for the `CB` channels of a register block (`L` lanes each).
#[inline(always)]
pub(super) fn fma_block<T: Float, const FMA: bool, const L: usize>(
    acc: &mut [[T; L]; CB],
    w: &[T; CB],
    src: &[T; L],
) {
    for c in 0..CB {
        for j in 0..L {
            acc[c][j] = madd::<T, FMA>(w[c], src[j], acc[c][j]);
        }
    }
}

/// One parallel task of a kernel, writing its part of the output.
pub(super) trait Task<T> {
    /// The task's loops; `FMA`: the build for AVX2 + FMA (see [`madd`]).
    fn run<const FMA: bool>(&self, dst: &mut [T]);
}

pub(super) use crate::cpu::Build;

/// Runs `task` compiled for `build` (the CPU must run it: see [`Build::best`]).
pub(super) fn dispatch<T, K: Task<T>>(task: &K, dst: &mut [T], build: impl Into<Build>) {
    #[cfg(target_arch = "x86_64")]
    match build.into() {
        // SAFETY: a build is only asked for where the CPU has its features.
        Build::Avx2 => return unsafe { run_avx2(task, dst) },
        // SAFETY: as above.
        Build::Avx512 => return unsafe { run_avx512(task, dst) },
        Build::Portable => {}
    }
    task.run::<false>(dst);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2<T, K: Task<T>>(task: &K, dst: &mut [T]) {
    task.run::<true>(dst);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
fn run_avx512<T, K: Task<T>>(task: &K, dst: &mut [T]) {
    task.run::<true>(dst);
}

/// Shape of a 'same' convolution: `x [b, ci, h, w]`, `w [co, ci, k, k]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConvShape {
    /// Batch items.
    pub b: usize,
    /// Input channels.
    pub ci: usize,
    /// Output channels.
    pub co: usize,
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// Kernel size (odd).
    pub k: usize,
}

impl ConvShape {
    fn pad(&self) -> usize {
        self.k / 2
    }
    /// Columns rounded up to whole register blocks.
    fn wc(&self, lanes: usize) -> usize {
        self.w.div_ceil(lanes) * lanes
    }
    /// Row length of a padded plane (room for a block read at the last tap of the last block).
    fn wp(&self, lanes: usize) -> usize {
        self.wc(lanes) + 2 * self.pad()
    }
    /// Rows of a padded plane.
    fn hp(&self) -> usize {
        self.h + 2 * self.pad()
    }
}

/// `planes [n, h, w]` copied into zero planes `[n, h + 2·top, wp]` at row `top`, column `left`.
fn padded<T: ConvScalar>(
    planes: &[T],
    (n, h, w): (usize, usize, usize),
    (top, left, wp): (usize, usize, usize),
) -> Vec<T> {
    let hp = h + 2 * top;
    let mut out = vec![T::zero(); n * hp * wp];
    out.par_chunks_mut(hp * wp)
        .zip(planes.par_chunks(h * w))
        .for_each(|(dst, src)| {
            for (y, row) in src.chunks(w).enumerate() {
                let start = (y + top) * wp + left;
                dst[start..start + w].copy_from_slice(row);
            }
        });
    out
}

/// `y = conv(x, w) + bias` with zero 'same' padding: `x [b, ci, h, w]`, `w [co, ci, k, k]`,
/// `bias [co]` (or none) → `[b, co, h, w]`.
pub fn forward<T: ConvScalar>(x: &[T], w: &[T], bias: Option<&[T]>, s: ConvShape) -> Vec<T> {
    forward_on(x, w, bias, s, Build::best())
}

/// Whether this CPU runs the AVX2 + FMA build of the kernels.
pub(super) use crate::cpu::avx2_fma as simd;

/// [`forward`] in the kernels' `build`.
fn forward_on<T: ConvScalar>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    s: ConvShape,
    build: Build,
) -> Vec<T> {
    let lanes = T::LANES;
    let (p, wc, wp, hp) = (s.pad(), s.wc(lanes), s.wp(lanes), s.hp());
    let xp = padded(x, (s.b * s.ci, s.h, s.w), (p, p, wp));
    // Weights in register-block order [co / CB][ci][ky][kx][CB], zero-filled to whole blocks.
    let blocks = s.co.div_ceil(CB);
    let mut wb = vec![T::zero(); blocks * s.ci * s.k * s.k * CB];
    for (o, wo) in w.chunks(s.ci * s.k * s.k).enumerate() {
        for (t, &v) in wo.iter().enumerate() {
            wb[((o / CB) * s.ci * s.k * s.k + t) * CB + o % CB] = v;
        }
    }
    let mut out = vec![T::zero(); s.b * blocks * CB * s.h * wc];
    out.par_chunks_mut(CB * s.h * wc)
        .enumerate()
        .for_each(|(task, dst)| {
            let (item, block) = (task / blocks, task % blocks);
            let bias: [T; CB] = std::array::from_fn(|c| {
                bias.and_then(|b| b.get(block * CB + c).copied())
                    .unwrap_or_else(T::zero)
            });
            let args = ForwardBlock {
                xp: &xp[item * s.ci * hp * wp..(item + 1) * s.ci * hp * wp],
                wb: &wb[block * s.ci * s.k * s.k * CB..(block + 1) * s.ci * s.k * s.k * CB],
                bias,
                s,
                wp,
                wc,
            };
            dispatch(&args, dst, build);
        });
    trim(out, (s.b, blocks * CB, s.h, wc), (s.co, s.w))
}

/// One task of [`forward`]: one batch item, one block of `CB` output channels.
struct ForwardBlock<'a, T> {
    /// The item's padded input planes `[ci, hp, wp]`.
    xp: &'a [T],
    /// The block's weights `[ci][ky][kx][CB]`.
    wb: &'a [T],
    bias: [T; CB],
    s: ConvShape,
    wp: usize,
    wc: usize,
}

impl<T: ConvScalar> Task<T> for ForwardBlock<'_, T> {
    /// Writes the block's `[CB, h, wc]` outputs into `dst`.
    #[inline(always)]
    fn run<const FMA: bool>(&self, dst: &mut [T]) {
        match (T::LANES, self.s.k) {
            (16, 1) => forward_lanes::<T, FMA, 16, 1>(self, dst),
            (16, 3) => forward_lanes::<T, FMA, 16, 3>(self, dst),
            (16, 5) => forward_lanes::<T, FMA, 16, 5>(self, dst),
            (16, 7) => forward_lanes::<T, FMA, 16, 7>(self, dst),
            (8, 1) => forward_lanes::<T, FMA, 8, 1>(self, dst),
            (8, 3) => forward_lanes::<T, FMA, 8, 3>(self, dst),
            (8, 5) => forward_lanes::<T, FMA, 8, 5>(self, dst),
            (8, 7) => forward_lanes::<T, FMA, 8, 7>(self, dst),
            (l, k) => unreachable!("register blocks of {l} lanes, kernel {k}"),
        }
    }
}

/// The block's outputs, `L` neighbouring pixels of one row at a time: `CB × L` sums in
/// registers over every (input channel, tap), each tap one load of the input row and `CB`
/// multiply-adds with broadcast weights. The taps are unrolled (`K` known) and the reads
/// unchecked inside bounds asserted once.
#[inline(always)]
fn forward_lanes<T: ConvScalar, const FMA: bool, const L: usize, const K: usize>(
    a: &ForwardBlock<'_, T>,
    dst: &mut [T],
) {
    let ConvShape { ci, h, .. } = a.s;
    let (wp, wc, hp) = (a.wp, a.wc, a.s.hp());
    // Every read below lies inside these bounds: rows `c_in·hp + y + ky < ci·hp`, columns
    // `x0 + kx + L ≤ wc + K − 1 = wp`, taps `< ci·K²·CB`.
    assert!(
        a.xp.len() >= ci * hp * wp
            && a.wb.len() >= ci * K * K * CB
            && wc % L == 0
            && wc + K - 1 <= wp
            && hp == h + K - 1
            && dst.len() >= CB * h * wc
    );
    let (xp, wb) = (a.xp.as_ptr(), a.wb.as_ptr());
    for y in 0..h {
        for x0 in (0..wc).step_by(L) {
            let mut acc: [[T; L]; CB] = std::array::from_fn(|c| [a.bias[c]; L]);
            for c_in in 0..ci {
                for ky in 0..K {
                    // SAFETY: inside the bounds asserted above.
                    let (row, taps) = unsafe {
                        (
                            xp.add((c_in * hp + y + ky) * wp + x0),
                            wb.add((c_in * K + ky) * K * CB),
                        )
                    };
                    for kx in 0..K {
                        // SAFETY: as above; `[T; N]` has the alignment of `T`.
                        let (src, wk) = unsafe {
                            (
                                &*(row.add(kx) as *const [T; L]),
                                &*(taps.add(kx * CB) as *const [T; CB]),
                            )
                        };
                        fma_block::<T, FMA, L>(&mut acc, wk, src);
                    }
                }
            }
            for (c, lanes) in acc.iter().enumerate() {
                let at = (c * h + y) * wc + x0;
                dst[at..at + L].copy_from_slice(lanes);
            }
        }
    }
}

/// `planes [n, c, h, wc]` cut to `[n, c_keep, h, w_keep]` (no copy when nothing is cut).
fn trim<T: ConvScalar>(
    planes: Vec<T>,
    (n, c, h, wc): (usize, usize, usize, usize),
    (c_keep, w_keep): (usize, usize),
) -> Vec<T> {
    if c == c_keep && wc == w_keep {
        return planes;
    }
    let mut out = Vec::with_capacity(n * c_keep * h * w_keep);
    for item in planes.chunks(c * h * wc) {
        for plane in item.chunks(h * wc).take(c_keep) {
            for row in plane.chunks(wc) {
                out.extend_from_slice(&row[..w_keep]);
            }
        }
    }
    out
}

/// `∂L/∂w [co, ci, k, k]` of [`forward`] from the input `x [b, ci, h, w]` and the output
/// gradient `g [b, co, h, w]`: `Σ_{b,y,x} g[b, o, y, x] · x[b, i, y + ky − p, x + kx − p]`.
pub fn weight_gradient<T: ConvScalar>(x: &[T], g: &[T], s: ConvShape) -> Vec<T> {
    weight_gradient_on(x, g, s, Build::best())
}

/// Output channels of one weight-gradient task.
const WB: usize = 2;

/// [`weight_gradient`] in the kernels' `build`.
///
/// A GEMM `[co] × [b·h·w] · [b·h·w] × [ci·k²]` blocked for registers: a task holds the `k`
/// taps of one kernel row for [`WB`] output channels and one input channel, `WB·k` sums of
/// one vector each (10 of the 16 AVX2 registers at k = 5), so that one load of `g` serves `k`
/// multiply-adds and one load of the input row serves `WB` (7 loads per 10 FMAs at k = 5).
fn weight_gradient_on<T: ConvScalar>(x: &[T], g: &[T], s: ConvShape, build: Build) -> Vec<T> {
    let lanes = T::WEIGHT_LANES;
    let (p, wc, wp) = (s.pad(), s.wc(lanes), s.wp(lanes));
    let xp = padded(x, (s.b * s.ci, s.h, s.w), (p, p, wp));
    // g as [b, blocks·WB, h, wc]: rows padded to whole vectors and channels to whole
    // blocks, with zeros.
    let blocks = s.co.div_ceil(WB);
    let mut gp = vec![T::zero(); s.b * blocks * WB * s.h * wc];
    gp.par_chunks_mut(blocks * WB * s.h * wc)
        .zip(g.par_chunks(s.co * s.h * s.w))
        .for_each(|(dst, src)| {
            for (row, src) in dst.chunks_mut(wc).zip(src.chunks(s.w)) {
                row[..s.w].copy_from_slice(src);
            }
        });
    let kk = s.k * s.k;
    // Tasks write [blocks, ci, WB, k²]; the result is [co, ci, k²].
    let mut tiles = vec![T::zero(); blocks * s.ci * WB * kk];
    tiles
        .par_chunks_mut(WB * kk)
        .enumerate()
        .for_each(|(task, dst)| {
            let args = WeightTask {
                xp: &xp,
                gp: &gp,
                block: task / s.ci,
                i: task % s.ci,
                s,
                wp,
                wc,
            };
            dispatch(&args, dst, build);
        });
    let mut out = vec![T::zero(); s.co * s.ci * kk];
    for (o, dst) in out.chunks_mut(s.ci * kk).enumerate() {
        for (i, taps) in dst.chunks_mut(kk).enumerate() {
            let at = ((o / WB * s.ci + i) * WB + o % WB) * kk;
            taps.copy_from_slice(&tiles[at..at + kk]);
        }
    }
    out
}

/// One task of [`weight_gradient`]: the `k²` taps of output channels `block·WB ..` and input
/// channel `i`.
struct WeightTask<'a, T> {
    /// Padded input `[b, ci, hp, wp]`.
    xp: &'a [T],
    /// Padded output gradient `[b, blocks·WB, h, wc]`.
    gp: &'a [T],
    block: usize,
    i: usize,
    s: ConvShape,
    wp: usize,
    wc: usize,
}

impl<T: ConvScalar> Task<T> for WeightTask<'_, T> {
    /// Writes the `[WB, k²]` taps into `dst`.
    #[inline(always)]
    fn run<const FMA: bool>(&self, dst: &mut [T]) {
        match (T::WEIGHT_LANES, self.s.k) {
            (8, 1) => weight_lanes::<T, FMA, 8, 1>(self, dst),
            (8, 3) => weight_lanes::<T, FMA, 8, 3>(self, dst),
            (8, 5) => weight_lanes::<T, FMA, 8, 5>(self, dst),
            (8, 7) => weight_lanes::<T, FMA, 8, 7>(self, dst),
            (4, 1) => weight_lanes::<T, FMA, 4, 1>(self, dst),
            (4, 3) => weight_lanes::<T, FMA, 4, 3>(self, dst),
            (4, 5) => weight_lanes::<T, FMA, 4, 5>(self, dst),
            (4, 7) => weight_lanes::<T, FMA, 4, 7>(self, dst),
            (l, k) => unreachable!("vectors of {l} lanes, kernel {k}"),
        }
    }
}

/// The taps of one kernel row at a time: `WB·K` sums of `L` lanes stay in registers while
/// one load of `g` serves `K` of them and one load of the input row serves `WB`.
#[inline(always)]
fn weight_lanes<T: ConvScalar, const FMA: bool, const L: usize, const K: usize>(
    a: &WeightTask<'_, T>,
    dst: &mut [T],
) {
    let ConvShape { b, ci, h, .. } = a.s;
    let (wp, wc, hp) = (a.wp, a.wc, a.s.hp());
    let gplanes = a.gp.len() / (b * h * wc);
    // Every read below lies inside these bounds: input rows `(item·ci + i)·hp + y + ky`,
    // columns `x0 + kx + L ≤ wc + K − 1 = wp`; gradient planes `item·gplanes + block·WB + o`.
    assert!(
        a.xp.len() >= b * ci * hp * wp
            && a.i < ci
            && (a.block + 1) * WB <= gplanes
            && wc % L == 0
            && wc + K - 1 <= wp
            && hp == h + K - 1
            && dst.len() >= WB * K * K
    );
    let (xp, gp) = (a.xp.as_ptr(), a.gp.as_ptr());
    for ky in 0..K {
        let mut acc = [[[T::zero(); L]; K]; WB];
        for item in 0..b {
            let g0 = (item * gplanes + a.block * WB) * h * wc;
            for y in 0..h {
                // SAFETY: inside the bounds asserted above.
                let xrow = unsafe { xp.add(((item * ci + a.i) * hp + y + ky) * wp) };
                for x0 in (0..wc).step_by(L) {
                    // SAFETY: as above; `[T; L]` has the alignment of `T`.
                    let gv: [[T; L]; WB] = std::array::from_fn(|o| unsafe {
                        *(gp.add(g0 + (o * h + y) * wc + x0) as *const [T; L])
                    });
                    for kx in 0..K {
                        // SAFETY: as above.
                        let src = unsafe { &*(xrow.add(x0 + kx) as *const [T; L]) };
                        for (sums, g) in acc.iter_mut().zip(&gv) {
                            sums[kx] =
                                std::array::from_fn(|j| madd::<T, FMA>(g[j], src[j], sums[kx][j]));
                        }
                    }
                }
            }
        }
        for (o, sums) in acc.iter().enumerate() {
            for (kx, sum) in sums.iter().enumerate() {
                dst[o * K * K + ky * K + kx] = sum.iter().fold(T::zero(), |s, &v| s + v);
            }
        }
    }
}

/// The shape of a 'same' convolution of `x [b, ci, h, w]` with `w [co, ci, k, k]`.
fn shape_of(x: &FlexTensor, w: &FlexTensor) -> ConvShape {
    let [b, ci, h, width] = x.shape().dims();
    let [co, wci, k, k2] = w.shape().dims();
    assert!(
        wci == ci && k == k2 && k % 2 == 1,
        "conv_same: weight {:?} for input {:?}",
        w.shape(),
        x.shape()
    );
    ConvShape {
        b,
        ci,
        co,
        h,
        w: width,
        k,
    }
}

/// Whether the kernels run a convolution of `x` with a `kernel`×`kernel` kernel: f32 or f64,
/// kernel 1, 3, 5 or 7; others take Burn's convolution.
pub fn supports(x: &FlexTensor, kernel: usize) -> bool {
    matches!(x.dtype(), DType::F32 | DType::F64) && matches!(kernel, 1 | 3 | 5 | 7)
}

/// [`forward`] on f32 or f64 Flex tensors ([`supports`]).
pub fn forward_tensor(x: FlexTensor, w: FlexTensor, bias: Option<FlexTensor>) -> FlexTensor {
    let s = shape_of(&x, &w);
    let (x, w) = (contiguous(x), contiguous(w));
    let bias = bias.map(contiguous);
    let out = with_float!(x, T => TensorData::new(
        forward(data::<T>(&x), data(&w), bias.as_ref().map(data), s),
        [s.b, s.co, s.h, s.w],
    ));
    FlexTensor::from_data(out)
}

/// [`weight_gradient`] on f32 or f64 Flex tensors ([`supports`]).
pub fn weight_gradient_tensor(x: FlexTensor, g: FlexTensor, k: usize) -> FlexTensor {
    let [b, ci, h, w] = x.shape().dims();
    let co = g.shape()[1];
    let s = ConvShape { b, ci, co, h, w, k };
    let (x, g) = (contiguous(x), contiguous(g));
    let out = with_float!(x, T => TensorData::new(
        weight_gradient(data::<T>(&x), data(&g), s),
        [co, ci, k, k],
    ));
    FlexTensor::from_data(out)
}

/// `act(forward(x, w, bias) + r)` on f32 or f64 Flex tensors ([`supports`]) with the
/// LeakyReLU of negative slope `slope`; `r [b, co, h, w]` is an optional residual. The
/// residual and the activation are applied in one pass over the convolution's output.
pub fn forward_act_tensor(
    x: FlexTensor,
    w: FlexTensor,
    bias: FlexTensor,
    r: Option<FlexTensor>,
    slope: f64,
) -> FlexTensor {
    let s = shape_of(&x, &w);
    let (x, w, bias) = (contiguous(x), contiguous(w), contiguous(bias));
    let r = r.map(contiguous);
    let out = with_float!(x, T => {
        let mut y = forward(data::<T>(&x), data(&w), Some(data(&bias)), s);
        add_act(&mut y, r.as_ref().map(data::<T>), slope);
        TensorData::new(y, [s.b, s.co, s.h, s.w])
    });
    FlexTensor::from_data(out)
}

/// `y ← LeakyReLU(y + r)` (negative slope `slope`; `r` as long as `y`, or none).
fn add_act<T: ConvScalar>(y: &mut [T], r: Option<&[T]>, slope: f64) {
    let slope = T::from(slope).expect("slope is finite");
    let act = move |z: T| if z > T::zero() { z } else { z * slope };
    const CHUNK: usize = 1 << 14;
    match r {
        Some(r) => y
            .par_chunks_mut(CHUNK)
            .zip(r.par_chunks(CHUNK))
            .for_each(|(y, r)| y.iter_mut().zip(r).for_each(|(v, &r)| *v = act(*v + r))),
        None => y
            .par_chunks_mut(CHUNK)
            .for_each(|y| y.iter_mut().for_each(|v| *v = act(*v))),
    }
}

/// `g` where `y > 0`, else `slope · g`.
fn leaky_backward<T: ConvScalar>(y: &[T], g: &[T], slope: f64) -> Vec<T> {
    let slope = T::from(slope).expect("slope is finite");
    const CHUNK: usize = 1 << 14;
    let mut gz = vec![T::zero(); y.len()];
    gz.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|(dst, (y, g))| {
            for ((d, &y), &g) in dst.iter_mut().zip(y).zip(g) {
                *d = if y > T::zero() { g } else { g * slope };
            }
        });
    gz
}

/// The gradient before a LeakyReLU of slope `slope` from its output `y` and the gradient `g`
/// after it (same shapes): `g` where `y > 0`, else `slope · g`.
pub fn leaky_relu_backward_tensor(y: FlexTensor, g: FlexTensor, slope: f64) -> FlexTensor {
    let shape = y.shape();
    let (y, g) = (contiguous(y), contiguous(g));
    let out = with_float!(y, T => TensorData::new(
        leaky_backward(data::<T>(&y), data(&g), slope),
        shape
    ));
    FlexTensor::from_data(out)
}

/// Achieved rates of the three convolutions at one shape, f32 (GFLOP/s, a multiply-add
/// counted as 2 flops: `2·b·h·w·ci·co·k²` per convolution).
#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelRates {
    /// The shape timed.
    pub shape: ConvShape,
    /// Forward `ci → co` (with bias).
    pub forward_gflops: f64,
    /// Input gradient: the forward kernel `co → ci` with the rotated weights.
    pub input_gradient_gflops: f64,
    /// Weight gradient.
    pub weight_gradient_gflops: f64,
}

/// Times the three kernels at `s` on f32 values: each the best of `repeats` calls.
pub fn kernel_rates(s: ConvShape, repeats: usize) -> KernelRates {
    let values = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect()
    };
    let x = values(s.b * s.ci * s.h * s.w);
    let g = values(s.b * s.co * s.h * s.w);
    let w = values(s.co * s.ci * s.k * s.k);
    let bias = values(s.co);
    let back = ConvShape {
        ci: s.co,
        co: s.ci,
        ..s
    };
    let flops = 2.0 * (s.b * s.h * s.w * s.ci * s.co * s.k * s.k) as f64;
    let best = |f: &mut dyn FnMut()| {
        f();
        (0..repeats.max(1))
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let gflops = |seconds: f64| flops / seconds / 1e9;
    KernelRates {
        shape: s,
        forward_gflops: gflops(best(&mut || {
            std::hint::black_box(forward(&x, &w, Some(&bias), s));
        })),
        input_gradient_gflops: gflops(best(&mut || {
            std::hint::black_box(forward(&g, &w, None, back));
        })),
        weight_gradient_gflops: gflops(best(&mut || {
            std::hint::black_box(weight_gradient(&x, &g, s));
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 'same' convolution by its definition (f64, zero outside the planes).
    fn naive(x: &[f64], w: &[f64], bias: &[f64], s: ConvShape) -> Vec<f64> {
        let p = s.k as isize / 2;
        let mut out = vec![0.0; s.b * s.co * s.h * s.w];
        for b in 0..s.b {
            for o in 0..s.co {
                for y in 0..s.h {
                    for xx in 0..s.w {
                        let mut acc = bias[o];
                        for i in 0..s.ci {
                            for ky in 0..s.k {
                                for kx in 0..s.k {
                                    let (iy, ix) = (
                                        y as isize + ky as isize - p,
                                        xx as isize + kx as isize - p,
                                    );
                                    if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize
                                    {
                                        continue;
                                    }
                                    acc += w[((o * s.ci + i) * s.k + ky) * s.k + kx]
                                        * x[((b * s.ci + i) * s.h + iy as usize) * s.w
                                            + ix as usize];
                                }
                            }
                        }
                        out[((b * s.co + o) * s.h + y) * s.w + xx] = acc;
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: f64) -> Vec<f64> {
        (0..n)
            .map(|i| ((i as f64 * 0.7548 + seed).sin() * 1e4).fract())
            .collect()
    }

    /// Odd shapes: channels not a multiple of the block, rows not a multiple of the lanes,
    /// kernels 1, 3 and 5.
    fn shapes() -> Vec<ConvShape> {
        vec![
            ConvShape {
                b: 2,
                ci: 3,
                co: 5,
                h: 7,
                w: 9,
                k: 5,
            },
            ConvShape {
                b: 1,
                ci: 2,
                co: 2,
                h: 4,
                w: 20,
                k: 3,
            },
            ConvShape {
                b: 3,
                ci: 4,
                co: 4,
                h: 5,
                w: 16,
                k: 1,
            },
        ]
    }

    #[test]
    fn forward_equals_the_definition_in_f64_and_f32() {
        for s in shapes() {
            let x = values(s.b * s.ci * s.h * s.w, 0.1);
            let w = values(s.co * s.ci * s.k * s.k, 0.2);
            let bias = values(s.co, 0.3);
            let want = naive(&x, &w, &bias, s);
            for simd in Build::available() {
                let got = forward_on(&x, &w, Some(&bias), s, simd);
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-12, "{s:?} {simd:?}: {a} vs {b}");
                }
                let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
                let got32 = forward_on(&f(&x), &f(&w), Some(&f(&bias)), s, simd);
                for (a, b) in got32.iter().zip(&want) {
                    assert!(
                        (f64::from(*a) - b).abs() <= 1e-4,
                        "{s:?} f32 {simd:?}: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// `⟨g, conv(x, w)⟩` is linear in `w`, so its gradient is exact from the definition: the
    /// weight gradient equals the forward's response to each unit weight.
    #[test]
    fn weight_gradient_equals_the_definition() {
        for s in shapes() {
            let x = values(s.b * s.ci * s.h * s.w, 0.4);
            let g = values(s.b * s.co * s.h * s.w, 0.5);
            let zero = vec![0.0; s.co];
            let builds: Vec<Vec<f64>> = Build::available()
                .into_iter()
                .map(|b| weight_gradient_on(&x, &g, s, b))
                .collect();
            for t in 0..s.co * s.ci * s.k * s.k {
                let mut e = vec![0.0; s.co * s.ci * s.k * s.k];
                e[t] = 1.0;
                let want: f64 = naive(&x, &e, &zero, s)
                    .iter()
                    .zip(&g)
                    .map(|(a, b)| a * b)
                    .sum();
                for got in &builds {
                    assert!(
                        (got[t] - want).abs() <= 1e-12 * want.abs().max(1.0),
                        "{s:?} tap {t}"
                    );
                }
            }
        }
    }
}
