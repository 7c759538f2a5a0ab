//! Four membrane triangles at once: Warp's triangle forces (elastic, damping, lift and drag)
//! and their vector-Jacobian products, the lane version of `Triangle::add_forces` and
//! `Triangle::add_vjp`.

use super::super::math::V3;
use super::lanes::*;

/// Four triangles.
#[derive(Clone, Debug)]
pub(super) struct TriChunk {
    pub(super) nodes: [[usize; W]; 3],
    /// Elements in this chunk (the rest of the lanes repeat the last one and are not written).
    pub(super) count: usize,
    pub(super) dm: [[L; 2]; 2],
    pub(super) a0: L,
    /// `1/(2A₀)`.
    pub(super) half: L,
    pub(super) ke: L,
    pub(super) ka: L,
    pub(super) kd: L,
    pub(super) drag: L,
    pub(super) lift: L,
    /// `activation − α`.
    pub(super) shift: L,
    /// Whether any lane has air (drag or lift).
    pub(super) air: bool,
}

/// The geometry of four triangles at `x`: edges, `J`, `∇J`, unit normal, `1/|N|`.
pub(super) struct Area {
    pub(super) e: [LV; 2],
    pub(super) j: L,
    pub(super) grad: [LV; 2],
    pub(super) n: LV,
    pub(super) inv_len: L,
    pub(super) len: L,
}

impl TriChunk {
    #[inline(always)]
    pub(super) fn area(&self, x: &[V3]) -> (Area, [LV; 3]) {
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
    pub(super) fn deformation(&self, w: [LV; 2]) -> [LV; 2] {
        let d = self.dm;
        arr(|c| vadd(vscale(w[0], d[0][c]), vscale(w[1], d[1][c])))
    }

    #[inline(always)]
    pub(super) fn pull_back(&self, p: [LV; 2]) -> [LV; 2] {
        let d = self.dm;
        arr(|r| vadd(vscale(p[0], d[r][0]), vscale(p[1], d[r][1])))
    }

    /// Scatters gradients on the edges `(e₁, e₂)`, plus `common` on every node, to the
    /// nodes (one pass per node).
    #[inline(always)]
    pub(super) fn scatter_edges(&self, g: [LV; 2], common: Option<LV>, out: &mut [V3]) {
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
    pub(super) fn air(&self, a: &Area, vs: [LV; 3]) -> Air {
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
    pub(super) fn add_forces(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
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
    pub(super) fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
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
pub(super) struct Air {
    pub(super) on: M,
    pub(super) m: LV,
    pub(super) mm: L,
    pub(super) q: L,
    pub(super) area: L,
    pub(super) phi: L,
    pub(super) c: L,
    pub(super) force: LV,
}

impl Air {
    /// The gradients of `U·(drag + lift)` on the edges `e₁`, `e₂` and on `v̄` (as
    /// `Triangle::aero_vjp`); 0 on the lanes without air.
    #[inline(always)]
    pub(super) fn vjp(&self, t: &TriChunk, a: &Area, u: LV) -> ([LV; 2], LV) {
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
