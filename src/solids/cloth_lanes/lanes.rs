//! Four f64 lanes (`L`), their masks and 3-vectors, written as plain per-lane loops that the
//! AVX2 and AVX-512VL builds vectorise; `atan2` and `asin` as Cephes' rational approximations
//! (about 1 ulp) so that they vectorise too; gathers of node values into lanes and scatters
//! back.

use super::super::math::V3;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// Lanes per chunk (one AVX2 register of f64).
pub(super) const W: usize = 4;

/// One value per lane.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct L(pub(super) [f64; W]);

/// `[f(0), f(1), …]` as a plain loop (which inlines into the AVX2 build, where `array::map`
/// and `from_fn` stay calls).
#[inline(always)]
pub(super) fn arr<T: Copy + Default, const N: usize>(f: impl Fn(usize) -> T) -> [T; N] {
    let mut r = [T::default(); N];
    for (i, v) in r.iter_mut().enumerate() {
        *v = f(i);
    }
    r
}

/// `L` from `f(lane)`, as a plain loop (which inlines into the AVX2 build and vectorises,
/// where `array::map` and `from_fn` stay calls).
#[inline(always)]
pub(super) fn per_lane(f: impl Fn(usize) -> f64) -> L {
    let mut r = [0.0; W];
    for (l, v) in r.iter_mut().enumerate() {
        *v = f(l);
    }
    L(r)
}

macro_rules! lanewise {
    ($tr:ident, $f:ident, $op:tt) => {
        impl $tr for L {
            type Output = L;
            #[inline(always)]
            fn $f(self, o: L) -> L {
                per_lane(|l| self.0[l] $op o.0[l])
            }
        }
    };
}
lanewise!(Add, add, +);
lanewise!(Sub, sub, -);
lanewise!(Mul, mul, *);
lanewise!(Div, div, /);

impl Neg for L {
    type Output = L;
    #[inline(always)]
    fn neg(self) -> L {
        per_lane(|l| -self.0[l])
    }
}

impl L {
    #[inline(always)]
    pub(super) fn splat(a: f64) -> L {
        L([a; W])
    }
    #[inline(always)]
    pub(super) fn sqrt(self) -> L {
        per_lane(|l| self.0[l].sqrt())
    }
    #[inline(always)]
    pub(super) fn abs(self) -> L {
        per_lane(|l| self.0[l].abs())
    }
    #[inline(always)]
    pub(super) fn max(self, o: L) -> L {
        per_lane(|l| self.0[l].max(o.0[l]))
    }
    #[inline(always)]
    pub(super) fn min(self, o: L) -> L {
        per_lane(|l| self.0[l].min(o.0[l]))
    }
    /// `if m { a } else { b }` per lane, with bit operations (a per-lane branch would let
    /// the compiler sink the arithmetic into scalar code).
    #[inline(always)]
    pub(super) fn select(m: M, a: L, b: L) -> L {
        per_lane(|l| f64::from_bits((a.0[l].to_bits() & m.0[l]) | (b.0[l].to_bits() & !m.0[l])))
    }
    #[inline(always)]
    pub(super) fn lt(self, o: L) -> M {
        mask(|l| self.0[l] < o.0[l])
    }
    #[inline(always)]
    pub(super) fn eq(self, o: L) -> M {
        mask(|l| self.0[l] == o.0[l])
    }
}

/// One all-ones or all-zeros word per lane.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct M(pub(super) [u64; W]);

#[inline(always)]
pub(super) fn mask(f: impl Fn(usize) -> bool) -> M {
    let mut r = [0u64; W];
    for (l, v) in r.iter_mut().enumerate() {
        *v = if f(l) { u64::MAX } else { 0 };
    }
    M(r)
}

impl std::ops::BitAnd for M {
    type Output = M;
    #[inline(always)]
    fn bitand(self, o: M) -> M {
        M(arr(|l| self.0[l] & o.0[l]))
    }
}

impl std::ops::BitOr for M {
    type Output = M;
    #[inline(always)]
    fn bitor(self, o: M) -> M {
        M(arr(|l| self.0[l] | o.0[l]))
    }
}

impl std::ops::Not for M {
    type Output = M;
    #[inline(always)]
    fn not(self) -> M {
        M(arr(|l| !self.0[l]))
    }
}

pub(super) type LV = [L; 3];

#[inline(always)]
pub(super) fn vadd(a: LV, b: LV) -> LV {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
#[inline(always)]
pub(super) fn vsub(a: LV, b: LV) -> LV {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
#[inline(always)]
pub(super) fn vscale(a: LV, s: L) -> LV {
    [a[0] * s, a[1] * s, a[2] * s]
}
#[inline(always)]
pub(super) fn vdot(a: LV, b: LV) -> L {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
#[inline(always)]
pub(super) fn vcross(a: LV, b: LV) -> LV {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
#[inline(always)]
pub(super) fn vselect(m: M, a: LV, b: LV) -> LV {
    [
        L::select(m, a[0], b[0]),
        L::select(m, a[1], b[1]),
        L::select(m, a[2], b[2]),
    ]
}

/// `atan(a)` for `0 ≤ a ≤ 1` (Cephes `atan`: reduction at 0.66, rational degree 4/5).
#[inline(always)]
pub(super) fn atan_unit(a: L) -> L {
    let big = L::splat(0.66).lt(a);
    let one = L::splat(1.0);
    let x = L::select(big, (a - one) / (a + one), a);
    let y0 = L::select(
        big,
        L::splat(std::f64::consts::FRAC_PI_4 + 0.5 * 6.123_233_995_736_766e-17),
        L::splat(0.0),
    );
    let z = x * x;
    let num = (((L::splat(-8.750_608_600_031_904e-1) * z + L::splat(-1.615_753_718_733_365e1))
        * z
        + L::splat(-7.500_855_792_314_705e1))
        * z
        + L::splat(-1.228_866_684_490_136_2e2))
        * z
        + L::splat(-6.485_021_904_942_025e1);
    let den = ((((z + L::splat(2.485_846_490_142_306_4e1)) * z
        + L::splat(1.650_270_098_316_988_6e2))
        * z
        + L::splat(4.328_810_604_912_903e2))
        * z
        + L::splat(4.853_903_996_359_137e2))
        * z
        + L::splat(1.945_506_571_482_614e2);
    y0 + x + x * z * num / den
}

/// `atan2(y, x)` per lane (0 where both are 0).
#[inline(always)]
pub(super) fn atan2(y: L, x: L) -> L {
    let (ay, ax) = (y.abs(), x.abs());
    let hi = ay.max(ax);
    let lo = ay.min(ax);
    let zero = L::splat(0.0);
    let r = atan_unit(L::select(zero.lt(hi), lo / hi, zero));
    let r = L::select(ax.lt(ay), L::splat(std::f64::consts::FRAC_PI_2) - r, r);
    let r = L::select(x.lt(zero), L::splat(std::f64::consts::PI) - r, r);
    L::select(y.lt(zero), -r, r)
}

/// `asin(c)` for `|c| ≤ 1`.
#[inline(always)]
pub(super) fn asin(c: L) -> L {
    let one = L::splat(1.0);
    atan2(c, ((one - c) * (one + c)).max(L::splat(0.0)).sqrt())
}

pub(super) fn lanes<E>(items: &[E], f: impl Fn(&E) -> f64) -> L {
    L(arr(|l| f(&items[l.min(items.len() - 1)])))
}

pub(super) fn node_lanes<E, const N: usize>(
    items: &[E],
    nodes: impl Fn(&E) -> [usize; N],
) -> [[usize; W]; N] {
    arr(|a| arr(|l| nodes(&items[l.min(items.len() - 1)])[a]))
}

#[inline(always)]
pub(super) fn gather<const N: usize>(nodes: &[[usize; W]; N], a: usize, x: &[V3]) -> LV {
    let p: [V3; W] = arr(|l| x[nodes[a][l]]);
    arr(|k| L([p[0][k], p[1][k], p[2][k], p[3][k]]))
}

#[inline(always)]
pub(super) fn scatter<const N: usize>(
    nodes: &[[usize; W]; N],
    count: usize,
    a: usize,
    g: LV,
    out: &mut [V3],
) {
    for l in 0..count {
        let p = &mut out[nodes[a][l]];
        for k in 0..3 {
            p[k] += g[k].0[l];
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A deterministic pseudo-random number in [0, 1) (the tests' data).
    pub(in super::super) fn wobble(k: usize) -> f64 {
        ((k as f64 * 12.9898).sin() * 43_758.545_3).fract()
    }

    #[test]
    fn lane_atan2_and_asin_match_the_library() {
        let mut worst = 0.0f64;
        for k in 0..4000 {
            let y = L(arr(|l| 4.0 * wobble(8 * k + l) - 2.0));
            let x = L(arr(|l| 4.0 * wobble(8 * k + 4 + l) - 2.0));
            let r = atan2(y, x);
            let c = L(arr(|l| 2.0 * wobble(9 * k + l) - 1.0));
            let s = asin(c);
            for l in 0..W {
                worst = worst.max((r.0[l] - y.0[l].atan2(x.0[l])).abs());
                worst = worst.max((s.0[l] - c.0[l].asin()).abs());
            }
        }
        let edges = atan2(L([0.0, 1.0, -1.0, 0.0]), L([0.0, 0.0, 0.0, -1.0]));
        assert_eq!(edges.0[0], 0.0);
        assert!((edges.0[1] - std::f64::consts::FRAC_PI_2).abs() < 1e-15);
        assert!((edges.0[2] + std::f64::consts::FRAC_PI_2).abs() < 1e-15);
        assert!((edges.0[3] - std::f64::consts::PI).abs() < 1e-15);
        assert!(worst < 1e-15, "worst {worst:e}");
    }
}
