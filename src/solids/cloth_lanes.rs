//! The cloth elements of [`super::cloth`] packed four to a chunk for the explicit step: Warp's
//! triangle and bending forces and their vector-Jacobian products computed for 4 elements at
//! once (one lane each, the same formulas as [`Triangle::add_forces`],
//! [`Triangle::add_vjp`], [`Bend::add_forces`] and [`Bend::add_vjp`], which the tests hold
//! them to), in one fused pass per chunk with no allocation, compiled for AVX2 + FMA where
//! the CPU has it. `atan2` and `asin` are Cephes' rational approximations (about 1 ulp), so
//! that they vectorise too.

use super::cloth::{Bend, Triangle};
use super::math::V3;
use crate::cpu::Build;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// Lanes per chunk (one AVX2 register of f64).
const W: usize = 4;

/// Chunks from which a force or adjoint pass is split over two cores.
const PARALLEL_CHUNKS: usize = 64;

/// One value per lane.
#[derive(Clone, Copy, Debug, Default)]
struct L([f64; W]);

/// `[f(0), f(1), …]` as a plain loop (which inlines into the AVX2 build, where `array::map`
/// and `from_fn` stay calls).
#[inline(always)]
fn arr<T: Copy + Default, const N: usize>(f: impl Fn(usize) -> T) -> [T; N] {
    let mut r = [T::default(); N];
    for (i, v) in r.iter_mut().enumerate() {
        *v = f(i);
    }
    r
}

/// `L` from `f(lane)`, as a plain loop (which inlines into the AVX2 build and vectorises,
/// where `array::map` and `from_fn` stay calls).
#[inline(always)]
fn per_lane(f: impl Fn(usize) -> f64) -> L {
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
    fn splat(a: f64) -> L {
        L([a; W])
    }
    #[inline(always)]
    fn sqrt(self) -> L {
        per_lane(|l| self.0[l].sqrt())
    }
    #[inline(always)]
    fn abs(self) -> L {
        per_lane(|l| self.0[l].abs())
    }
    #[inline(always)]
    fn max(self, o: L) -> L {
        per_lane(|l| self.0[l].max(o.0[l]))
    }
    #[inline(always)]
    fn min(self, o: L) -> L {
        per_lane(|l| self.0[l].min(o.0[l]))
    }
    /// `if m { a } else { b }` per lane, with bit operations (a per-lane branch would let
    /// the compiler sink the arithmetic into scalar code).
    #[inline(always)]
    fn select(m: M, a: L, b: L) -> L {
        per_lane(|l| f64::from_bits((a.0[l].to_bits() & m.0[l]) | (b.0[l].to_bits() & !m.0[l])))
    }
    #[inline(always)]
    fn lt(self, o: L) -> M {
        mask(|l| self.0[l] < o.0[l])
    }
    #[inline(always)]
    fn eq(self, o: L) -> M {
        mask(|l| self.0[l] == o.0[l])
    }
}

/// One all-ones or all-zeros word per lane.
#[derive(Clone, Copy, Debug, Default)]
struct M([u64; W]);

#[inline(always)]
fn mask(f: impl Fn(usize) -> bool) -> M {
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

type LV = [L; 3];

#[inline(always)]
fn vadd(a: LV, b: LV) -> LV {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
#[inline(always)]
fn vsub(a: LV, b: LV) -> LV {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
#[inline(always)]
fn vscale(a: LV, s: L) -> LV {
    [a[0] * s, a[1] * s, a[2] * s]
}
#[inline(always)]
fn vdot(a: LV, b: LV) -> L {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
#[inline(always)]
fn vcross(a: LV, b: LV) -> LV {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
#[inline(always)]
fn vselect(m: M, a: LV, b: LV) -> LV {
    [
        L::select(m, a[0], b[0]),
        L::select(m, a[1], b[1]),
        L::select(m, a[2], b[2]),
    ]
}

/// `atan(a)` for `0 ≤ a ≤ 1` (Cephes `atan`: reduction at 0.66, rational degree 4/5).
#[inline(always)]
fn atan_unit(a: L) -> L {
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
fn atan2(y: L, x: L) -> L {
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
fn asin(c: L) -> L {
    let one = L::splat(1.0);
    atan2(c, ((one - c) * (one + c)).max(L::splat(0.0)).sqrt())
}

/// Four triangles.
#[derive(Clone, Debug)]
struct TriChunk {
    nodes: [[usize; W]; 3],
    /// Elements in this chunk (the rest of the lanes repeat the last one and are not written).
    count: usize,
    dm: [[L; 2]; 2],
    a0: L,
    /// `1/(2A₀)`.
    half: L,
    ke: L,
    ka: L,
    kd: L,
    drag: L,
    lift: L,
    /// `activation − α`.
    shift: L,
    /// Whether any lane has air (drag or lift).
    air: bool,
}

/// Four bending elements.
#[derive(Clone, Debug)]
struct BendChunk {
    nodes: [[usize; W]; 4],
    count: usize,
    ke: L,
    kd: L,
    rest_angle: L,
    /// Whether any lane has bending damping (else the velocities are not read).
    damped: bool,
}

fn lanes<E>(items: &[E], f: impl Fn(&E) -> f64) -> L {
    L(arr(|l| f(&items[l.min(items.len() - 1)])))
}

fn node_lanes<E, const N: usize>(items: &[E], nodes: impl Fn(&E) -> [usize; N]) -> [[usize; W]; N] {
    arr(|a| arr(|l| nodes(&items[l.min(items.len() - 1)])[a]))
}

#[inline(always)]
fn gather<const N: usize>(nodes: &[[usize; W]; N], a: usize, x: &[V3]) -> LV {
    let p: [V3; W] = arr(|l| x[nodes[a][l]]);
    arr(|k| L([p[0][k], p[1][k], p[2][k], p[3][k]]))
}

#[inline(always)]
fn scatter<const N: usize>(nodes: &[[usize; W]; N], count: usize, a: usize, g: LV, out: &mut [V3]) {
    for l in 0..count {
        let p = &mut out[nodes[a][l]];
        for k in 0..3 {
            p[k] += g[k].0[l];
        }
    }
}

/// The geometry of four triangles at `x`: edges, `J`, `∇J`, unit normal, `1/|N|`.
struct Area {
    e: [LV; 2],
    j: L,
    grad: [LV; 2],
    n: LV,
    inv_len: L,
    len: L,
}

impl TriChunk {
    #[inline(always)]
    fn area(&self, x: &[V3]) -> (Area, [LV; 3]) {
        let xs = arr(|a| gather(&self.nodes, a, x));
        let e = [vsub(xs[1], xs[0]), vsub(xs[2], xs[0])];
        let nv = vcross(e[0], e[1]);
        let len = vdot(nv, nv).sqrt();
        let zero = L::splat(0.0);
        let inv_len = L::select(len.eq(zero), zero, L::splat(1.0) / len);
        let n = vscale(nv, inv_len);
        let grad = [
            vscale(vcross(e[1], n), self.half),
            vscale(vcross(n, e[0]), self.half),
        ];
        let j = len * self.half;
        (
            Area {
                e,
                j,
                grad,
                n,
                inv_len,
                len,
            },
            xs,
        )
    }

    #[inline(always)]
    fn deformation(&self, w: [LV; 2]) -> [LV; 2] {
        let d = self.dm;
        arr(|c| vadd(vscale(w[0], d[0][c]), vscale(w[1], d[1][c])))
    }

    #[inline(always)]
    fn pull_back(&self, p: [LV; 2]) -> [LV; 2] {
        let d = self.dm;
        arr(|r| vadd(vscale(p[0], d[r][0]), vscale(p[1], d[r][1])))
    }

    /// Scatters gradients on the edges `(e₁, e₂)`, plus `common` on every node, to the
    /// nodes (one pass per node).
    #[inline(always)]
    fn scatter_edges(&self, g: [LV; 2], common: Option<LV>, out: &mut [V3]) {
        let mut nodes = [vscale(vadd(g[0], g[1]), L::splat(-1.0)), g[0], g[1]];
        if let Some(c) = common {
            nodes = arr(|k| vadd(nodes[k], c));
        }
        for (k, g) in nodes.into_iter().enumerate() {
            scatter(&self.nodes, self.count, k, g, out);
        }
    }

    /// The pieces of [`Triangle`]'s air force at the node velocities `vs`; the lanes without
    /// air (degenerate, at rest, or no coefficients) give 0.
    #[inline(always)]
    fn air(&self, a: &Area, vs: [LV; 3]) -> Air {
        let m = vscale(vadd(vadd(vs[0], vs[1]), vs[2]), L::splat(0.3333));
        let mm = vdot(m, m).sqrt();
        let zero = L::splat(0.0);
        let on = !(a.len.eq(zero) | mm.eq(zero) | (self.drag.eq(zero) & self.lift.eq(zero)));
        let safe_mm = L::select(on, mm, L::splat(1.0));
        let q = vdot(a.n, m);
        let c = (q / safe_mm).max(L::splat(-1.0)).min(L::splat(1.0));
        let area = L::splat(0.5) * a.len;
        let phi = asin(c);
        let force = vadd(
            vscale(m, self.drag * area * q.abs()),
            vscale(a.n, self.lift * area * phi * mm * mm),
        );
        Air {
            on,
            m,
            mm: safe_mm,
            q,
            area,
            phi,
            c,
            force: vselect(on, force, [zero; 3]),
        }
    }

    /// Adds the forces at `(x, v)` (Warp's `eval_triangles`) into `f`.
    #[inline(always)]
    fn add_forces(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        let (a, _) = self.area(x);
        let fd = self.deformation(a.e);
        let c = a.j + self.shift;
        let a0 = self.a0;
        let vs = arr(|k| gather(&self.nodes, k, v));
        let w = [vsub(vs[1], vs[0]), vsub(vs[2], vs[0])];
        let fdot = self.deformation(w);
        let p: [LV; 2] = arr(|k| vadd(vscale(fd[k], self.ke * a0), vscale(fdot[k], self.kd * a0)));
        let sigma =
            self.ka * a0 * c + self.kd * a0 * (vdot(a.grad[0], w[0]) + vdot(a.grad[1], w[1]));
        let g = self.pull_back(p);
        let minus = L::splat(-1.0);
        let g = arr(|k| vscale(vadd(g[k], vscale(a.grad[k], sigma)), minus));
        let air = self.air.then(|| vscale(self.air(&a, vs).force, minus));
        self.scatter_edges(g, air, f);
    }

    /// Adds `(∂f/∂x)ᵀu`, `(∂f/∂v)ᵀu` into `xbar`, `vbar` (as [`Triangle::add_vjp`]).
    #[inline(always)]
    fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        let (a, _) = self.area(x);
        let (a0, ke, ka, kd) = (self.a0, self.ke, self.ka, self.kd);
        let us: [LV; 3] = arr(|k| gather(&self.nodes, k, u));
        let w = [vsub(us[1], us[0]), vsub(us[2], us[0])];
        let vs = arr(|k| gather(&self.nodes, k, v));
        let air = if self.air {
            Some(self.air(&a, vs))
        } else {
            None
        };
        let vd = [vsub(vs[1], vs[0]), vsub(vs[2], vs[0])];
        let back = self.pull_back(self.deformation(w));
        let g = a.grad;
        let du = vdot(g[0], w[0]) + vdot(g[1], w[1]);
        let cdot = vdot(g[0], vd[0]) + vdot(g[1], vd[1]);
        let sigma = a0 * (ka * (a.j + self.shift) + kd * cdot);
        let t: [LV; 2] = arr(|k| vadd(vscale(w[k], sigma), vscale(vd[k], du * a0 * kd)));
        // ∇²J·t (zero on degenerate lanes, where n̂ and 1/|N| are 0).
        let nd = vadd(vcross(t[0], a.e[1]), vcross(a.e[0], t[1]));
        let ndot = vscale(vsub(nd, vscale(a.n, vdot(a.n, nd))), a.inv_len);
        let h = [
            vscale(vadd(vcross(t[1], a.n), vcross(a.e[1], ndot)), self.half),
            vscale(vadd(vcross(ndot, a.e[0]), vcross(a.n, t[0])), self.half),
        ];
        let mut ex: [LV; 2] =
            arr(|k| arr(|i| -a0 * (ke * back[k][i] + du * ka * g[k][i]) - h[k][i]));
        let ev: [LV; 2] = arr(|k| arr(|i| -a0 * kd * (back[k][i] + du * g[k][i])));
        let mut air_v = None;
        if let Some(air) = air {
            let big_u = vadd(vadd(us[0], us[1]), us[2]);
            let (b, mbar) = air.vjp(self, &a, big_u);
            ex = arr(|k| vsub(ex[k], b[k]));
            air_v = Some(vscale(mbar, L::splat(-0.3333)));
        }
        self.scatter_edges(ex, None, xbar);
        self.scatter_edges(ev, air_v, vbar);
    }
}

/// The air force's pieces on four triangles.
struct Air {
    on: M,
    m: LV,
    mm: L,
    q: L,
    area: L,
    phi: L,
    c: L,
    force: LV,
}

impl Air {
    /// The gradients of `U·(drag + lift)` on the edges `e₁`, `e₂` and on `v̄` (as
    /// `Triangle::aero_vjp`); 0 on the lanes without air.
    #[inline(always)]
    fn vjp(&self, t: &TriChunk, a: &Area, u: LV) -> ([LV; 2], LV) {
        let (kd, kl, mm, m, n) = (t.drag, t.lift, self.mm, self.m, a.n);
        let zero = L::splat(0.0);
        let one = L::splat(1.0);
        let dphi = one / (one - self.c * self.c).max(L::splat(1e-12)).sqrt();
        let (um, un) = (vdot(u, m), vdot(u, n));
        let sign = L::select(self.q.lt(zero), -one, one);
        let area = self.area;
        let s_area = kd * self.q.abs() * um + kl * self.phi * mm * mm * un;
        let s_q = kd * area * sign * um + kl * area * mm * un * dphi;
        let mut mbar = vscale(u, kd * area * self.q.abs());
        mbar = vadd(mbar, vscale(m, kl * area * un * L::splat(2.0) * self.phi));
        mbar = vsub(mbar, vscale(m, kl * area * un * dphi * self.q / mm));
        mbar = vadd(mbar, vscale(n, s_q));
        let nbar = vadd(vscale(u, kl * area * self.phi * mm * mm), vscale(m, s_q));
        let nn = vdot(n, nbar);
        let safe_area = L::select(self.on, area, one);
        let nvec: LV = arr(|i| {
            (nbar[i] - n[i] * nn) / (L::splat(2.0) * safe_area) + L::splat(0.5) * s_area * n[i]
        });
        let z = [zero; 3];
        (
            [
                vselect(self.on, vcross(a.e[1], nvec), z),
                vselect(self.on, vcross(nvec, a.e[0]), z),
            ],
            vselect(self.on, mbar, z),
        )
    }
}

/// The geometry of four hinges (see `cloth::Hinge`, of which this is the lane version).
struct Hinges {
    valid: M,
    theta: L,
    d: [LV; 4],
    elen: L,
    eh: LV,
    arms: [LV; 4],
    to4: [LV; 2],
    n: [LV; 2],
    m: [LV; 2],
    inv: [L; 2],
    s: [L; 4],
}

impl BendChunk {
    #[inline(always)]
    fn hinges(&self, x: &[V3]) -> Hinges {
        let [x1, x2, x3, x4] = arr(|a| gather(&self.nodes, a, x));
        let arms = [vsub(x3, x1), vsub(x4, x1), vsub(x4, x2), vsub(x3, x2)];
        let n = [vcross(arms[0], arms[1]), vcross(arms[2], arms[3])];
        let (q1, q2) = (vdot(n[0], n[0]), vdot(n[1], n[1]));
        let tiny = L::splat(1e-12);
        let valid = !(q1.lt(tiny) | q2.lt(tiny));
        let one = L::splat(1.0);
        let inv = [one / q1.max(tiny), one / q2.max(tiny)];
        let e = vsub(x4, x3);
        let elen = vdot(e, e).sqrt();
        let eh = vscale(e, one / L::select(valid, elen, one));
        let m = [vscale(n[0], inv[0]), vscale(n[1], inv[1])];
        let theta = atan2(vdot(vcross(n[1], n[0]), eh), vdot(n[0], n[1]));
        let to4 = [vsub(x1, x4), vsub(x2, x4)];
        let s = [
            vdot(to4[0], eh),
            vdot(arms[0], eh),
            vdot(to4[1], eh),
            vdot(arms[3], eh),
        ];
        let d = [
            vscale(m[0], elen),
            vscale(m[1], elen),
            vadd(vscale(m[0], s[0]), vscale(m[1], s[2])),
            vadd(vscale(m[0], s[1]), vscale(m[1], s[3])),
        ];
        Hinges {
            valid,
            theta,
            d,
            elen,
            eh,
            arms,
            to4,
            n,
            m,
            inv,
            s,
        }
    }

    /// The valid lanes of this chunk.
    #[inline(always)]
    fn valid_count(&self, h: &Hinges) -> [bool; W] {
        arr(|l| l < self.count && h.valid.0[l] != 0)
    }

    #[inline(always)]
    fn scatter_valid(&self, on: [bool; W], a: usize, g: LV, out: &mut [V3]) {
        for (l, &ok) in on.iter().enumerate() {
            if ok {
                let p = &mut out[self.nodes[a][l]];
                for k in 0..3 {
                    p[k] += g[k].0[l];
                }
            }
        }
    }

    /// Adds Warp's bending forces `−|e|·(ke(θ − θ₀) + kd·θ̇)·d` into `f`.
    #[inline(always)]
    fn add_forces(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        let h = self.hinges(x);
        let mut g = self.ke * (h.theta - self.rest_angle);
        if self.damped {
            let vs = arr(|a| gather(&self.nodes, a, v));
            g = g + self.kd * d_dot(&h.d, &vs);
        }
        let total = -h.elen * g;
        let on = self.valid_count(&h);
        for a in 0..4 {
            self.scatter_valid(on, a, vscale(h.d[a], total), f);
        }
    }

    /// Adds `(∂f/∂x)ᵀu`, `(∂f/∂v)ᵀu` into `xbar`, `vbar` (as [`Bend::add_vjp`]).
    #[inline(always)]
    fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        let h = self.hinges(x);
        let us: [LV; 4] = arr(|a| gather(&self.nodes, a, u));
        let du = d_dot(&h.d, &us);
        let mut g = self.ke * (h.theta - self.rest_angle);
        let mut dir: [LV; 4] = arr(|a| vscale(us[a], h.elen * g));
        if self.damped {
            let vs: [LV; 4] = arr(|a| gather(&self.nodes, a, v));
            let kg = self.kd * d_dot(&h.d, &vs);
            g = g + kg;
            let (wu, wv) = (h.elen * kg, h.elen * du * self.kd);
            dir = arr(|a| vadd(vadd(dir[a], vscale(us[a], wu)), vscale(vs[a], wv)));
        }
        let hw = h.grad_d_dot(&dir);
        let on = self.valid_count(&h);
        let ked = h.elen * du * self.ke;
        let kdd = -h.elen * du * self.kd;
        let gdu = g * du;
        for (a, (d, hw)) in h.d.iter().zip(&hw).enumerate() {
            let mut ex: LV = arr(|c| -(ked * d[c] + hw[c]));
            if a == 3 {
                ex = vsub(ex, vscale(h.eh, gdu));
            } else if a == 2 {
                ex = vadd(ex, vscale(h.eh, gdu));
            }
            self.scatter_valid(on, a, ex, xbar);
            if self.damped {
                self.scatter_valid(on, a, vscale(*d, kdd), vbar);
            }
        }
    }
}

#[inline(always)]
fn d_dot(d: &[LV; 4], w: &[LV; 4]) -> L {
    vdot(d[0], w[0]) + vdot(d[1], w[1]) + vdot(d[2], w[2]) + vdot(d[3], w[3])
}

impl Hinges {
    /// `∇ₓ(Σ wₐ·dₐ)` per lane (the lane version of `Hinge::grad_d_dot`).
    #[inline(always)]
    fn grad_d_dot(&self, w: &[LV; 4]) -> [LV; 4] {
        let [w1, w2, w3, w4] = *w;
        let [m1, m2] = self.m;
        let big = [
            vadd(
                vadd(vscale(w1, self.elen), vscale(w3, self.s[0])),
                vscale(w4, self.s[1]),
            ),
            vadd(
                vadd(vscale(w2, self.elen), vscale(w3, self.s[2])),
                vscale(w4, self.s[3]),
            ),
        ];
        let len_bar = vdot(m1, w1) + vdot(m2, w2);
        let s_bar = [vdot(m1, w3), vdot(m1, w4), vdot(m2, w3), vdot(m2, w4)];
        let z = L::splat(0.0);
        let mut g = [[z; 3]; 4];
        for (f, [ha, hb, tail]) in [(0, [2, 3, 0]), (1, [3, 2, 1])] {
            let nb = vscale(
                vadd(
                    big[f],
                    vscale(self.n[f], L::splat(-2.0) * vdot(big[f], self.m[f])),
                ),
                self.inv[f],
            );
            let (a, b) = (self.arms[2 * f], self.arms[2 * f + 1]);
            let (abar, bbar) = (vcross(b, nb), vcross(nb, a));
            g[ha] = vadd(g[ha], abar);
            g[hb] = vadd(g[hb], bbar);
            g[tail] = vsub(g[tail], vadd(abar, bbar));
        }
        let eh = self.eh;
        g[0] = vadd(g[0], vscale(eh, s_bar[0] - s_bar[1]));
        g[1] = vadd(g[1], vscale(eh, s_bar[2] - s_bar[3]));
        g[2] = vadd(g[2], vscale(eh, s_bar[1] + s_bar[3]));
        g[3] = vsub(g[3], vscale(eh, s_bar[0] + s_bar[2]));
        let mut eh_bar = vscale(self.to4[0], s_bar[0]);
        eh_bar = vadd(eh_bar, vscale(self.arms[0], s_bar[1]));
        eh_bar = vadd(eh_bar, vscale(self.to4[1], s_bar[2]));
        eh_bar = vadd(eh_bar, vscale(self.arms[3], s_bar[3]));
        let inv_len = L::splat(1.0) / L::select(self.valid, self.elen, L::splat(1.0));
        let e_bar = vadd(
            vscale(vsub(eh_bar, vscale(eh, vdot(eh_bar, eh))), inv_len),
            vscale(eh, len_bar),
        );
        g[3] = vadd(g[3], e_bar);
        g[2] = vsub(g[2], e_bar);
        g
    }
}

/// Some of a model's cloth elements, packed into chunks of four.
#[derive(Clone, Debug, Default)]
struct Part {
    tris: Vec<TriChunk>,
    bends: Vec<BendChunk>,
    build: Build,
}

/// A model's cloth elements packed into chunks of four, in one part, or in two that run on
/// two cores at once when the model is large enough to pay for it.
#[derive(Clone, Debug, Default)]
pub struct ClothLanes {
    parts: Vec<Part>,
}

impl ClothLanes {
    /// Packs `tris` and `bends`.
    pub fn new(tris: &[Triangle], bends: &[Bend]) -> Self {
        let build = Build::best();
        let chunks = tris.len().div_ceil(W) + bends.len().div_ceil(W);
        let two = chunks >= PARALLEL_CHUNKS && rayon::current_num_threads() >= 2;
        let (t, b) = if two {
            (tris.len() / 2, bends.len() / 2)
        } else {
            (tris.len(), bends.len())
        };
        let mut parts = vec![Part::new(&tris[..t], &bends[..b], build)];
        if two {
            parts.push(Part::new(&tris[t..], &bends[b..], build));
        }
        Self { parts }
    }

    /// Adds Warp's triangle and bending forces at `(x, v)` into `f`.
    pub fn add_forces(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        self.split(&mut [f], &|part, out| {
            let [f] = out else { unreachable!() };
            part.add_forces(x, v, f)
        });
    }

    /// Adds the vector-Jacobian products `(∂f/∂x)ᵀu`, `(∂f/∂v)ᵀu` of [`Self::add_forces`]
    /// into `xbar`, `vbar`.
    pub fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        self.split(&mut [xbar, vbar], &|part, out| {
            let [xb, vb] = out else { unreachable!() };
            part.add_vjp(x, v, u, xb, vb)
        });
    }

    /// Runs `work` on the one part, or on the two at once: the first adds into `out`, the
    /// second into zeroed buffers that are then added into `out`.
    fn split(&self, out: &mut [&mut [V3]], work: &(dyn Fn(&Part, &mut [&mut [V3]]) + Sync)) {
        let [first, rest @ ..] = self.parts.as_slice() else {
            return;
        };
        let Some(second) = rest.first() else {
            return work(first, out);
        };
        let n = out.first().map_or(0, |o| o.len());
        let mut bufs: Vec<Vec<V3>> = out.iter().map(|_| vec![[0.0; 3]; n]).collect();
        rayon::join(
            || work(first, out),
            || {
                let mut refs: Vec<&mut [V3]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
                work(second, &mut refs)
            },
        );
        for (o, b) in out.iter_mut().zip(&bufs) {
            for (p, q) in o.iter_mut().zip(b) {
                (0..3).for_each(|k| p[k] += q[k]);
            }
        }
    }

    /// The same with every part in `build` and on one core (for tests).
    #[cfg(test)]
    fn on_one_core(&self, build: Build) -> Self {
        let mut one = Part {
            build,
            ..Part::default()
        };
        for p in &self.parts {
            one.tris.extend(p.tris.iter().cloned());
            one.bends.extend(p.bends.iter().cloned());
        }
        Self { parts: vec![one] }
    }
}

impl Part {
    fn new(tris: &[Triangle], bends: &[Bend], build: Build) -> Self {
        let tris = tris
            .chunks(W)
            .map(|c| TriChunk {
                nodes: node_lanes(c, |t| t.nodes),
                count: c.len(),
                dm: arr(|r| arr(|s| lanes(c, |t| t.dm[r][s]))),
                a0: lanes(c, |t| t.rest_area),
                half: lanes(c, |t| 0.5 / t.rest_area),
                ke: lanes(c, |t| t.ke),
                ka: lanes(c, |t| t.ka),
                kd: lanes(c, |t| t.kd),
                drag: lanes(c, |t| t.drag),
                lift: lanes(c, |t| t.lift),
                shift: lanes(c, |t| t.activation - (1.0 + t.ke / t.ka)),
                air: c.iter().any(|t| t.drag != 0.0 || t.lift != 0.0),
            })
            .collect();
        let bends = bends
            .chunks(W)
            .map(|c| BendChunk {
                nodes: node_lanes(c, |b| b.nodes),
                count: c.len(),
                ke: lanes(c, |b| b.ke),
                kd: lanes(c, |b| b.kd),
                rest_angle: lanes(c, |b| b.rest_angle),
                damped: c.iter().any(|b| b.kd != 0.0),
            })
            .collect();
        Self { tris, bends, build }
    }

    fn add_forces(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a part's build is one the CPU runs (`Build::best`, or below it in tests).
        match self.build {
            Build::Avx2 => return unsafe { self.add_forces_avx2(x, v, f) },
            Build::Avx512 => return unsafe { self.add_forces_avx512(x, v, f) },
            Build::Portable => {}
        }
        self.add_forces_portable(x, v, f);
    }

    fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `add_forces`.
        match self.build {
            Build::Avx2 => return unsafe { self.add_vjp_avx2(x, v, u, xbar, vbar) },
            Build::Avx512 => return unsafe { self.add_vjp_avx512(x, v, u, xbar, vbar) },
            Build::Portable => {}
        }
        self.add_vjp_portable(x, v, u, xbar, vbar);
    }

    #[inline(always)]
    fn add_forces_portable(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        for c in &self.tris {
            c.add_forces(x, v, f);
        }
        for c in &self.bends {
            c.add_forces(x, v, f);
        }
    }

    #[inline(always)]
    fn add_vjp_portable(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        for c in &self.tris {
            c.add_vjp(x, v, u, xbar, vbar);
        }
        for c in &self.bends {
            c.add_vjp(x, v, u, xbar, vbar);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn add_forces_avx2(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        self.add_forces_portable(x, v, f);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn add_vjp_avx2(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        self.add_vjp_portable(x, v, u, xbar, vbar);
    }

    /// The AVX2 code with 32 vector registers instead of 16 (fewer spills).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    fn add_forces_avx512(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        self.add_forces_portable(x, v, f);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    fn add_vjp_avx512(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        self.add_vjp_portable(x, v, u, xbar, vbar);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solids::cloth::ClothMaterial;
    use crate::solids::scenes::cloth_grid;

    fn wobble(k: usize) -> f64 {
        ((k as f64 * 12.9898).sin() * 43_758.545_3).fract()
    }

    /// An `nx`×`ny` cloth with air and bending damping `edge_kd`, bent and moving in every direction,
    /// with one particle moved onto another (the triangles and hinges around them degenerate).
    type Scene = (Vec<Triangle>, Vec<Bend>, Vec<V3>, Vec<V3>, Vec<V3>);
    fn scene(nx: usize, ny: usize, edge_kd: f64) -> Scene {
        let m = ClothMaterial {
            tri_ke: 300.0,
            tri_ka: 500.0,
            tri_kd: 0.5,
            drag: 3.0,
            lift: 7.0,
            edge_ke: 4.0,
            edge_kd,
        };
        let (model, x0, _) = cloth_grid((nx, ny), 0.2, 0.3, [0.0; 3], 1.0, &m).unwrap();
        let n = x0.len();
        let mut x: Vec<V3> = (0..n)
            .map(|p| arr(|a| x0[p][a] + 0.05 * wobble(3 * p + a)))
            .collect();
        // Particle (1, 1) onto particle (1, 0).
        x[nx + 2] = x[1];
        let v = (0..n)
            .map(|p| arr(|a| wobble(100 + 3 * p + a) - 0.5))
            .collect();
        let u = (0..n)
            .map(|p| arr(|a| wobble(500 + 3 * p + a) - 0.5))
            .collect();
        (model.tris, model.bends, x, v, u)
    }

    fn max_rel(a: &[V3], b: &[V3]) -> f64 {
        let scale = b.iter().flatten().fold(1e-300f64, |m, c| m.max(c.abs()));
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()))
            / scale
    }

    #[test]
    fn lanes_match_the_element_code_in_every_build_on_one_and_two_cores() {
        // 5×4 with bending damping: one part; 14×12 without: two parts on two cores where
        // the machine has them.
        for (nx, ny, edge_kd) in [(5, 4, 0.05), (14, 12, 0.0)] {
            let (tris, bends, x, v, u) = scene(nx, ny, edge_kd);
            let n = x.len();
            let mut f = vec![[0.0; 3]; n];
            let (mut xb, mut vb) = (vec![[0.0; 3]; n], vec![[0.0; 3]; n]);
            for t in &tris {
                t.add_forces(&x, Some(&v), &mut f);
                t.add_vjp(&x, &v, &u, &mut xb, &mut vb);
            }
            for b in &bends {
                b.add_forces(&x, Some(&v), &mut f);
                b.add_vjp(&x, &v, &u, &mut xb, &mut vb);
            }
            let packed = ClothLanes::new(&tris, &bends);
            if nx > 10 && rayon::current_num_threads() >= 2 {
                assert_eq!(packed.parts.len(), 2);
            }
            let builds = Build::available()
                .into_iter()
                .map(|b| packed.on_one_core(b));
            for lanes in builds.chain([packed.clone()]) {
                let mut g = vec![[0.0; 3]; n];
                lanes.add_forces(&x, &v, &mut g);
                let (mut xl, mut vl) = (vec![[0.0; 3]; n], vec![[0.0; 3]; n]);
                lanes.add_vjp(&x, &v, &u, &mut xl, &mut vl);
                assert!(max_rel(&g, &f) < 1e-13, "forces {:e}", max_rel(&g, &f));
                assert!(max_rel(&xl, &xb) < 1e-12, "x̄ {:e}", max_rel(&xl, &xb));
                assert!(max_rel(&vl, &vb) < 1e-12, "v̄ {:e}", max_rel(&vl, &vb));
            }
        }
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
