//! Flex (CPU) kernels of [`ConvOps`](super::ConvOps): direct 'same' convolutions over
//! padded copies of the planes (zeros, or the edge values repeated: [`Padding`]), without
//! im2col.
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
//!
//! Padded planes are written in one pass, borders and data together, never zero-filled first.
//! A layer's backward ([`layer_backward`]) writes the gradient before the activation once into
//! such planes, and the bias sums, the weight gradient and the input gradient all read them
//! (before: a masked copy, two padded copies and Burn's bias sum per layer; SOL-4 training
//! +14%, alternating runs).

use num_traits::Float;
use rayon::prelude::*;

/// Output channels per register block.
pub(super) const CB: usize = 4;

/// What a 'same' convolution reads beyond the edges of its input planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Zeros.
    Zero,
    /// The nearest edge value, repeated (for one cell: TensorFlow's `SYMMETRIC`, PhiFlow 1.x's
    /// residual blocks).
    Edge,
}

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
    /// The convolution that gives the input gradient: the output gradient's `co` channels to
    /// `ci` with the rotated kernel, over the input's planes (zero padding), or over the
    /// edge-padded input's, `2p` larger, to be folded onto the edges (edge padding).
    fn input_gradient(&self, padding: Padding) -> ConvShape {
        let grow = match padding {
            Padding::Zero => 0,
            Padding::Edge => 2 * self.pad(),
        };
        ConvShape {
            ci: self.co,
            co: self.ci,
            h: self.h + grow,
            w: self.w + grow,
            ..*self
        }
    }
}

/// The values of one row of padded planes.
enum Row<'a, T> {
    /// These values.
    Copy(&'a [T]),
    /// The gradient before a LeakyReLU of negative slope `slope`, from the gradient `g` after it
    /// and its output `y`: `g` where `y > 0`, else `slope · g`.
    Masked { g: &'a [T], y: &'a [T], slope: T },
}

/// `n` padded planes `[h + 2·top, wp]` written in one pass (no zero fill first): plane `i`'s
/// row `y < h` holds the `w` values of `row(i, y)` from column `left`; the other cells hold
/// zeros, or with [`Padding::Edge`] the nearest value of the data (columns right of the data
/// included).
fn padded_with<'a, T: ConvScalar>(
    n: usize,
    (h, w): (usize, usize),
    (top, left, wp): (usize, usize, usize),
    padding: Padding,
    row: impl Fn(usize, usize) -> Row<'a, T> + Sync,
) -> Vec<T> {
    assert!(
        left + w <= wp && w > 0 && h > 0,
        "padded planes: {w} values from column {left} in rows of {wp}"
    );
    let hp = h + 2 * top;
    let len = n * hp * wp;
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(hp * wp)
        .enumerate()
        .for_each(|(i, plane)| {
            for (r, dst) in plane.chunks_mut(wp).enumerate() {
                let y = match padding {
                    Padding::Zero => r.checked_sub(top).filter(|&y| y < h),
                    Padding::Edge => Some(r.saturating_sub(top).min(h - 1)),
                };
                let Some(y) = y else {
                    dst.iter_mut().for_each(|d| {
                        d.write(T::zero());
                    });
                    continue;
                };
                let (lead, rest) = dst.split_at_mut(left);
                let (data, tail) = rest.split_at_mut(w);
                let ends = match row(i, y) {
                    Row::Copy(v) => {
                        data.write_copy_of_slice(v);
                        (v[0], v[w - 1])
                    }
                    Row::Masked { g, y, slope } => {
                        let (g, y) = (&g[..w], &y[..w]);
                        let masked = |g: T, y: T| if y > T::zero() { g } else { g * slope };
                        for ((d, &g), &y) in data.iter_mut().zip(g).zip(y) {
                            d.write(masked(g, y));
                        }
                        (masked(g[0], y[0]), masked(g[w - 1], y[w - 1]))
                    }
                };
                let (lo, hi) = match padding {
                    Padding::Zero => (T::zero(), T::zero()),
                    Padding::Edge => ends,
                };
                lead.iter_mut().for_each(|d| {
                    d.write(lo);
                });
                tail.iter_mut().for_each(|d| {
                    d.write(hi);
                });
            }
        });
    // SAFETY: every one of the first `len` elements was written above: every cell of a row
    // outside the data, or the row's data (`w` values: `write_copy_of_slice` checks the
    // length, the masked rows are cut to `w` values, which panics first if they are shorter)
    // and its borders.
    unsafe { out.set_len(len) };
    out
}

/// `planes [n, h, w]` copied into planes `[n, h + 2·top, wp]` at row `top`, column `left`,
/// padded as `padding` says.
fn padded<T: ConvScalar>(
    planes: &[T],
    (n, h, w): (usize, usize, usize),
    (top, left, wp): (usize, usize, usize),
    padding: Padding,
) -> Vec<T> {
    padded_with(n, (h, w), (top, left, wp), padding, |i, y| {
        Row::Copy(&planes[(i * h + y) * w..(i * h + y + 1) * w])
    })
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
    let (p, wp) = (s.pad(), s.wp(T::LANES));
    let xp = padded(x, (s.b * s.ci, s.h, s.w), (p, p, wp), Padding::Zero);
    forward_padded(&xp, s.ci, w, bias, None, s, build)
}

/// `LeakyReLU(conv(x, w) + bias + r)` with negative slope `slope`, `r [b, co, h, w]` an
/// optional residual, the convolution 'same' with `padding` ([`forward`] for zeros): the
/// residual and the activation are applied by each task to the block it has just computed,
/// while it is in cache.
pub fn forward_act<T: ConvScalar>(
    x: &[T],
    w: &[T],
    bias: &[T],
    r: Option<&[T]>,
    slope: f64,
    s: ConvShape,
    padding: Padding,
) -> Vec<T> {
    let (p, wp) = (s.pad(), s.wp(T::LANES));
    let xp = padded(x, (s.b * s.ci, s.h, s.w), (p, p, wp), padding);
    let act = Activation {
        residual: r,
        slope: T::from(slope).expect("slope is finite"),
    };
    forward_padded(&xp, s.ci, w, Some(bias), Some(act), s, Build::best())
}

/// What [`forward_act`] applies after the convolution.
#[derive(Clone, Copy)]
struct Activation<'a, T> {
    /// `[b, co, h, w]`, added before the activation.
    residual: Option<&'a [T]>,
    /// Negative slope of the LeakyReLU.
    slope: T,
}

impl<T: ConvScalar> Activation<'_, T> {
    /// Applies the residual and the activation to the `[CB, h, wc]` outputs of `item`'s
    /// channel block `block`.
    fn apply(&self, dst: &mut [T], item: usize, block: usize, s: ConvShape, wc: usize) {
        let slope = self.slope;
        let act = move |z: T| if z > T::zero() { z } else { z * slope };
        for c in 0..CB.min(s.co - block * CB) {
            let o = block * CB + c;
            for y in 0..s.h {
                let row = &mut dst[(c * s.h + y) * wc..][..s.w];
                match self.residual {
                    Some(r) => {
                        let r = &r[((item * s.co + o) * s.h + y) * s.w..][..s.w];
                        for (v, &q) in row.iter_mut().zip(r) {
                            *v = act(*v + q);
                        }
                    }
                    None => row.iter_mut().for_each(|v| *v = act(*v)),
                }
            }
        }
    }
}

/// [`forward`] from the input already in padded planes (`[b, item_planes, hp, wp]` of
/// [`ConvShape`] for `T::LANES`, of which the first `ci` of each item are read), followed by
/// `act` where given.
fn forward_padded<T: ConvScalar>(
    xp: &[T],
    item_planes: usize,
    w: &[T],
    bias: Option<&[T]>,
    act: Option<Activation<'_, T>>,
    s: ConvShape,
    build: Build,
) -> Vec<T> {
    let lanes = T::LANES;
    let (wc, wp, hp) = (s.wc(lanes), s.wp(lanes), s.hp());
    let item_len = item_planes * hp * wp;
    assert!(item_planes >= s.ci && xp.len() >= s.b * item_len);
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
                xp: &xp[item * item_len..(item + 1) * item_len],
                wb: &wb[block * s.ci * s.k * s.k * CB..(block + 1) * s.ci * s.k * s.k * CB],
                bias,
                s,
                wp,
                wc,
            };
            dispatch(&args, dst, build);
            if let Some(act) = act {
                act.apply(dst, item, block, s, wc);
            }
        });
    trim(out, (s.b, blocks * CB, s.h, wc), (s.co, s.w))
}

/// One task of [`forward`]: one batch item, one block of `CB` output channels.
struct ForwardBlock<'a, T> {
    /// The item's padded input planes `[≥ ci, hp, wp]`.
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
fn weight_gradient_on<T: ConvScalar>(x: &[T], g: &[T], s: ConvShape, build: Build) -> Vec<T> {
    let (p, wp) = (s.pad(), s.wp(T::LANES));
    let xp = padded(x, (s.b * s.ci, s.h, s.w), (p, p, wp), Padding::Zero);
    let geometry = GradientPlanes::of::<T>(s, Padding::Zero);
    let (gp, planes) = gradient_planes(g, None, s, geometry);
    weight_gradient_padded(&xp, &gp, planes, geometry, s, build)
}

/// Geometry of the zero-padded planes of an output gradient `[b, co, h, w]`: `rows` rows of
/// `row` values, the data from row and column `at`.
#[derive(Clone, Copy, Debug)]
struct GradientPlanes {
    rows: usize,
    row: usize,
    at: usize,
}

impl GradientPlanes {
    /// The planes for the backward of a convolution of shape `s` (`T::LANES` of `T`):
    /// with zero padding those of the input gradient's 'same' convolution (`at` = p); with
    /// edge padding those of the full convolution onto the padded input, `2p` wider on every
    /// side (`at` = 2p).
    fn of<T: ConvScalar>(s: ConvShape, padding: Padding) -> Self {
        let back = s.input_gradient(padding);
        GradientPlanes {
            rows: back.hp(),
            row: back.wp(T::LANES),
            at: (back.hp() - s.h) / 2,
        }
    }

    fn len(&self) -> usize {
        self.rows * self.row
    }
}

/// The gradient before the activation (`act`: the LeakyReLU's output and slope, or none for
/// the identity) from the output gradient `g [b, co, h, w]`, as zero-padded planes
/// `[b, planes, rows, row]` of `geometry`, `planes` the channels rounded up to whole [`WB`]
/// blocks (the extra planes zero). Returns the planes and `planes`.
fn gradient_planes<T: ConvScalar>(
    g: &[T],
    act: Option<(&[T], f64)>,
    s: ConvShape,
    geometry: GradientPlanes,
) -> (Vec<T>, usize) {
    let GradientPlanes { rows, row: wp, at } = geometry;
    assert_eq!(rows, s.h + 2 * at, "gradient planes {geometry:?} for {s:?}");
    let planes = s.co.div_ceil(WB) * WB;
    let zero = vec![T::zero(); s.w];
    let gz = padded_with(
        s.b * planes,
        (s.h, s.w),
        (at, at, wp),
        Padding::Zero,
        |i, row| {
            let (item, c) = (i / planes, i % planes);
            let at = ((item * s.co + c) * s.h + row) * s.w;
            match (c < s.co, act) {
                (false, _) => Row::Copy(&zero),
                (true, None) => Row::Copy(&g[at..at + s.w]),
                (true, Some((y, slope))) => Row::Masked {
                    g: &g[at..at + s.w],
                    y: &y[at..at + s.w],
                    slope: T::from(slope).expect("slope is finite"),
                },
            }
        },
    );
    (gz, planes)
}

/// [`weight_gradient`] from padded planes: the input `xp [b, ci, hp, wp]` (geometry of
/// [`ConvShape`] for `T::LANES`) and the output gradient `gp [b, planes, rows, row]` of
/// `geometry`, `planes` the output channels rounded up to whole [`WB`] blocks (the extra
/// planes zero).
///
/// A GEMM `[co] × [b·h·w] · [b·h·w] × [ci·k²]` blocked for registers: a task holds the `k`
/// taps of one kernel row for [`WB`] output channels and one input channel, `WB·k` sums of
/// one vector each (10 of the 16 AVX2 registers at k = 5), so that one load of `g` serves `k`
/// multiply-adds and one load of the input row serves `WB` (7 loads per 10 FMAs at k = 5).
fn weight_gradient_padded<T: ConvScalar>(
    xp: &[T],
    gp: &[T],
    planes: usize,
    geometry: GradientPlanes,
    s: ConvShape,
    build: Build,
) -> Vec<T> {
    let (wc, wp) = (s.wc(T::WEIGHT_LANES), s.wp(T::LANES));
    let blocks = planes / WB;
    assert!(planes.is_multiple_of(WB) && planes >= s.co);
    let kk = s.k * s.k;
    // Tasks write [blocks, ci, WB, k²]; the result is [co, ci, k²].
    let mut tiles = vec![T::zero(); blocks * s.ci * WB * kk];
    tiles
        .par_chunks_mut(WB * kk)
        .enumerate()
        .for_each(|(task, dst)| {
            let args = WeightTask {
                xp,
                gp,
                planes,
                geometry,
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
    /// Padded output gradient `[b, planes, rows, row]` of `geometry`.
    gp: &'a [T],
    planes: usize,
    geometry: GradientPlanes,
    block: usize,
    i: usize,
    s: ConvShape,
    /// Row length of the padded planes.
    wp: usize,
    /// Columns swept (whole vectors of `T::WEIGHT_LANES`, at most `wp − 2·pad`).
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
    let (wp, wc, hp, gplanes) = (a.wp, a.wc, a.s.hp(), a.planes);
    let GradientPlanes { row: grow, at, .. } = a.geometry;
    let (plane, gplane) = (hp * wp, a.geometry.len());
    // Every read below lies inside these bounds: input rows `(item·ci + i)·hp + y + ky`,
    // columns `x0 + kx + L ≤ wc + K − 1 ≤ wp`; gradient planes `item·gplanes + block·WB + o`,
    // rows `at + y < rows`, columns `at + x0 + L ≤ at + wc ≤ row`.
    assert!(
        a.xp.len() >= b * ci * plane
            && a.gp.len() >= b * gplanes * gplane
            && a.i < ci
            && (a.block + 1) * WB <= gplanes
            && wc % L == 0
            && wc + K - 1 <= wp
            && hp == h + K - 1
            && at + h <= a.geometry.rows
            && at + wc <= grow
            && dst.len() >= WB * K * K
    );
    let (xp, gp) = (a.xp.as_ptr(), a.gp.as_ptr());
    for ky in 0..K {
        let mut acc = [[[T::zero(); L]; K]; WB];
        for item in 0..b {
            let g0 = (item * gplanes + a.block * WB) * gplane + at * grow + at;
            for y in 0..h {
                // SAFETY: inside the bounds asserted above.
                let xrow = unsafe { xp.add(((item * ci + a.i) * hp + y + ky) * wp) };
                for x0 in (0..wc).step_by(L) {
                    // SAFETY: as above; `[T; L]` has the alignment of `T`.
                    let gv: [[T; L]; WB] = std::array::from_fn(|o| unsafe {
                        *(gp.add(g0 + o * gplane + y * grow + x0) as *const [T; L])
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

/// The gradients of one layer `y = act(conv(x, w) + bias [+ r])` (see [`layer_backward`]).
pub struct LayerGradients<T> {
    /// `∂L/∂z [b, co, h, w]`, the gradient before the activation (also the residual's), when
    /// asked for.
    pub z: Option<Vec<T>>,
    /// `∂L/∂x [b, ci, h, w]`, when asked for.
    pub x: Option<Vec<T>>,
    /// `∂L/∂w [co, ci, k, k]`.
    pub w: Vec<T>,
    /// `∂L/∂bias [co]`.
    pub bias: Vec<T>,
}

/// The gradients of the layer `y = act(conv(x, w) + bias [+ r])` from `g = ∂L/∂y`
/// (`[b, co, h, w]`), the convolution 'same' with `padding`; `act` is the LeakyReLU of the
/// given negative slope when its output `y` is given, else the identity. `∂L/∂z` is returned
/// when `want_z`, `∂L/∂x` when `want_x`.
///
/// One pass writes `∂L/∂z` once into zero-padded planes; the bias sums, the weight gradient
/// and the input gradient (the forward kernel with the rotated weights) all read those planes,
/// so the output gradient is neither copied again nor zero-filled. With edge padding the
/// input gradient is the full convolution onto the padded input, whose border cells are then
/// added to the edge cells they repeat ([`fold_edges`]).
pub fn layer_backward<T: ConvScalar>(
    x: &[T],
    w: &[T],
    act: Option<(&[T], f64)>,
    g: &[T],
    s: ConvShape,
    padding: Padding,
    [want_z, want_x]: [bool; 2],
) -> LayerGradients<T> {
    layer_backward_on(x, w, act, g, s, padding, [want_z, want_x], Build::best())
}

/// [`layer_backward`] in the kernels' `build`.
#[allow(clippy::too_many_arguments)]
fn layer_backward_on<T: ConvScalar>(
    x: &[T],
    w: &[T],
    act: Option<(&[T], f64)>,
    g: &[T],
    s: ConvShape,
    padding: Padding,
    [want_z, want_x]: [bool; 2],
    build: Build,
) -> LayerGradients<T> {
    let (p, wp) = (s.pad(), s.wp(T::LANES));
    let geometry = GradientPlanes::of::<T>(s, padding);
    let (gz, planes) = gradient_planes(g, act, s, geometry);
    let plane = geometry.len();
    let bias = (0..s.co)
        .into_par_iter()
        .map(|c| {
            (0..s.b)
                .map(|item| sum(&gz[(item * planes + c) * plane..][..plane]))
                .fold(T::zero(), |a, v| a + v)
        })
        .collect();
    let xp = padded(x, (s.b * s.ci, s.h, s.w), (p, p, wp), padding);
    let w_grad = weight_gradient_padded(&xp, &gz, planes, geometry, s, build);
    let x_grad = want_x.then(|| {
        let back = s.input_gradient(padding);
        let full = forward_padded(&gz, planes, &rotated(w, s), None, None, back, build);
        match padding {
            Padding::Zero => full,
            Padding::Edge => fold_edges(&full, (s.b * s.ci, s.h, s.w), p),
        }
    });
    let z = want_z.then(|| {
        let at = geometry.at;
        let mut out = Vec::with_capacity(s.b * s.co * s.h * s.w);
        for item in gz.chunks(planes * plane) {
            for c in item.chunks(plane).take(s.co) {
                for row in c.chunks(geometry.row).skip(at).take(s.h) {
                    out.extend_from_slice(&row[at..at + s.w]);
                }
            }
        }
        out
    });
    LayerGradients {
        z,
        x: x_grad,
        w: w_grad,
        bias,
    }
}

/// The gradient of edge-padded planes `[n, h + 2p, w + 2p]` folded onto the planes
/// `[n, h, w]` they were padded from: each border cell added to the edge cell it repeats.
fn fold_edges<T: ConvScalar>(full: &[T], (n, h, w): (usize, usize, usize), p: usize) -> Vec<T> {
    let (hf, wf) = (h + 2 * p, w + 2 * p);
    assert_eq!(full.len(), n * hf * wf, "fold_edges: {n} planes {hf}x{wf}");
    let mut out = vec![T::zero(); n * h * w];
    out.par_chunks_mut(h * w)
        .zip(full.par_chunks(hf * wf))
        .for_each(|(dst, src)| {
            for (r, row) in src.chunks(wf).enumerate() {
                let y = r.saturating_sub(p).min(h - 1);
                let d = &mut dst[y * w..(y + 1) * w];
                for (a, &v) in d.iter_mut().zip(&row[p..p + w]) {
                    *a = *a + v;
                }
                d[0] = row[..p].iter().fold(d[0], |a, &v| a + v);
                d[w - 1] = row[p + w..].iter().fold(d[w - 1], |a, &v| a + v);
            }
        });
    out
}

/// `Σ v`, in 16 interleaved partial sums (so that the loop vectorises).
fn sum<T: ConvScalar>(v: &[T]) -> T {
    let mut acc = [T::zero(); 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = *a + x;
        }
    }
    let rest = chunks.remainder().iter().fold(T::zero(), |a, &x| a + x);
    acc.iter().fold(rest, |a, &x| a + x)
}

/// The kernel of the input gradient of a 'same' convolution: `w [co, ci, k, k]` rotated by
/// 180° with its channel axes swapped, `[ci, co, k, k]`.
fn rotated<T: Copy>(w: &[T], s: ConvShape) -> Vec<T> {
    let kk = s.k * s.k;
    let mut out = Vec::with_capacity(w.len());
    for i in 0..s.ci {
        for o in 0..s.co {
            out.extend(w[(o * s.ci + i) * kk..(o * s.ci + i + 1) * kk].iter().rev());
        }
    }
    out
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
mod tests;
