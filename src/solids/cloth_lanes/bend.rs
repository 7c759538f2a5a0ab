//! Four bending elements at once: Warp's dihedral bending force and its vector-Jacobian
//! products, the lane version of `Bend::add_forces` and `Bend::add_vjp`.

use super::super::math::V3;
use super::lanes::*;

/// Four bending elements.
#[derive(Clone, Debug)]
pub(super) struct BendChunk {
    pub(super) nodes: [[usize; W]; 4],
    pub(super) count: usize,
    pub(super) ke: L,
    pub(super) kd: L,
    pub(super) rest_angle: L,
    /// Whether any lane has bending damping (else the velocities are not read).
    pub(super) damped: bool,
}

/// The geometry of four hinges (see `cloth::Hinge`, of which this is the lane version).
pub(super) struct Hinges {
    pub(super) valid: M,
    pub(super) theta: L,
    pub(super) d: [LV; 4],
    pub(super) elen: L,
    pub(super) eh: LV,
    pub(super) arms: [LV; 4],
    pub(super) to4: [LV; 2],
    pub(super) n: [LV; 2],
    pub(super) m: [LV; 2],
    pub(super) inv: [L; 2],
    pub(super) s: [L; 4],
}

impl BendChunk {
    #[inline(always)]
    pub(super) fn hinges(&self, x: &[V3]) -> Hinges {
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
    pub(super) fn valid_count(&self, h: &Hinges) -> [bool; W] {
        arr(|l| l < self.count && h.valid.0[l] != 0)
    }

    #[inline(always)]
    pub(super) fn scatter_valid(&self, on: [bool; W], a: usize, g: LV, out: &mut [V3]) {
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
    pub(super) fn add_forces(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
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
    pub(super) fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
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
pub(super) fn d_dot(d: &[LV; 4], w: &[LV; 4]) -> L {
    vdot(d[0], w[0]) + vdot(d[1], w[1]) + vdot(d[2], w[2]) + vdot(d[3], w[3])
}

impl Hinges {
    /// `∇ₓ(Σ wₐ·dₐ)` per lane (the lane version of `Hinge::grad_d_dot`).
    #[inline(always)]
    pub(super) fn grad_d_dot(&self, w: &[LV; 4]) -> [LV; 4] {
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
