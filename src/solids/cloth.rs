//! Cloth (3D, f64): Warp's triangle membrane with area preservation, damping and aerodynamic
//! lift/drag (`eval_triangles`), and dihedral-angle bending (`eval_bending`).
//!
//! **Triangle** on nodes `(i, j, k)`, edges `e₁ = x_j − x_i`, `e₂ = x_k − x_i`, `D_m⁻¹` the
//! inverse 2×2 rest matrix in the triangle's own frame, `A₀` the rest area:
//! `F = [e₁ e₂]·D_m⁻¹` (3×2), `J = area/A₀`, `c = J − α + a` (`α = 1 + ke/ka`: rest-stable,
//! `a` the activation). Elastic energy `A₀·(ke/2·|F|² + ka/2·c²)`; damping forces are those of
//! the dissipation `A₀·kd/2·(|Ḟ|² + ċ²)`. Aerodynamics (per triangle, with the *current* area
//! and unit normal `n̂`, `v̄ = 0.3333·(vᵢ + v_j + v_k)` as in Warp): `drag = kdrag·area·|n̂·v̄|·v̄`,
//! `lift = klift·area·(π/2 − acos(n̂·v̄/|v̄|))·|v̄|²·n̂`; each node gets `−(drag + lift)`.
//!
//! **Bend** on nodes `(i, j, k, l)`: the faces `(i, k, l)` and `(j, l, k)` share the edge
//! `k → l`; `θ` is the signed dihedral angle and `dₐ = ∂θ/∂xₐ` Bridson's bending modes. Warp's
//! force `fₐ = −|e|·(ke·(θ − θ₀) + kd·θ̇)·dₐ` uses the *current* edge length `|e|`, so it is
//! not the gradient of an energy; the explicit integrator uses it as is. The implicit one
//! needs a potential and uses `½·ke·|ē|·(θ − θ₀)²` with the rest length `|ē|` (equal to
//! first order in the edge strain, which the membrane keeps small).
//!
//! The adjoints and Hessians need directional derivatives of the gradients `∇J` and `d`:
//! since those are gradients, `D(∇φ)[w] = ∇²φ·w = ∇(w·∇φ)`, written here in closed form
//! (one reverse pass over the gradient's formula), and linear in `w`, so that one pass with
//! the combined weights serves every term of a vector-Jacobian product.

use super::math::{M3, V3, dot, scale, sub};
use crate::error::{DiffsimError, Result};

fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn axpy(s: f64, a: V3, y: &mut V3) {
    (0..3).for_each(|k| y[k] += s * a[k]);
}

/// Cloth material, per element (Warp's `add_cloth_grid` arguments).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClothMaterial {
    /// Membrane stiffness `ke` (`tri_ke`, N/m).
    pub tri_ke: f64,
    /// Area stiffness `ka` (`tri_ka`, N/m).
    pub tri_ka: f64,
    /// Membrane and area damping `kd` (`tri_kd`, N·s/m).
    pub tri_kd: f64,
    /// Drag coefficient (`tri_drag`, kg/m³).
    pub drag: f64,
    /// Lift coefficient (`tri_lift`, kg/m³).
    pub lift: f64,
    /// Bending stiffness (`edge_ke`, N·m/rad per m of edge).
    pub edge_ke: f64,
    /// Bending damping (`edge_kd`).
    pub edge_kd: f64,
}

impl Default for ClothMaterial {
    /// Warp's defaults: tri_ke = tri_ka = 100, tri_kd = 10, no air, edge_ke = 100.
    fn default() -> Self {
        Self {
            tri_ke: 100.0,
            tri_ka: 100.0,
            tri_kd: 10.0,
            drag: 0.0,
            lift: 0.0,
            edge_ke: 100.0,
            edge_kd: 0.0,
        }
    }
}

/// One membrane triangle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Triangle {
    /// Its 3 particles.
    pub nodes: [usize; 3],
    /// Membrane stiffness (N/m).
    pub ke: f64,
    /// Area stiffness (N/m, > 0).
    pub ka: f64,
    /// Damping (N·s/m).
    pub kd: f64,
    /// Drag coefficient.
    pub drag: f64,
    /// Lift coefficient.
    pub lift: f64,
    /// Activation `a` (shifts the rest area).
    pub activation: f64,
    /// `D_m⁻¹`, row-major.
    pub dm: [[f64; 2]; 2],
    /// Rest area `A₀` (m²).
    pub rest_area: f64,
}

/// `J = area/A₀` of the triangle with edges `e₁`, `e₂` (`N = e₁ × e₂`, `J = |N|/(2A₀)`), its
/// gradient `∇J = (e₂ × n̂, n̂ × e₁)/(2A₀)` and the directional derivatives of that gradient.
/// A degenerate triangle (`N = 0`) has `J = 0` and zero derivatives, as Warp's `normalize`.
struct AreaRatio {
    j: f64,
    grad: [V3; 2],
    e: [V3; 2],
    n: V3,
    /// `1/|N|` (0 when degenerate).
    inv_len: f64,
    /// `1/(2A₀)`.
    half: f64,
}

impl AreaRatio {
    fn new(e1: V3, e2: V3, inv_area: f64) -> Self {
        let nv = cross(e1, e2);
        let len = dot(nv, nv).sqrt();
        let half = 0.5 * inv_area;
        if len == 0.0 {
            let z = [0.0; 3];
            return Self {
                j: 0.0,
                grad: [z; 2],
                e: [e1, e2],
                n: z,
                inv_len: 0.0,
                half,
            };
        }
        let n = scale(nv, 1.0 / len);
        Self {
            j: len * half,
            grad: [scale(cross(e2, n), half), scale(cross(n, e1), half)],
            e: [e1, e2],
            n,
            inv_len: 1.0 / len,
            half,
        }
    }

    /// `D(∇J)[t] = ∇²J·t` for a change `t` of the edges: with `Ṅ = t₁ × e₂ + e₁ × t₂` and
    /// `ṅ = (Ṅ − (n̂·Ṅ)n̂)/|N|`, `(t₂ × n̂ + e₂ × ṅ, ṅ × e₁ + n̂ × t₁)/(2A₀)`.
    fn along(&self, t: [V3; 2]) -> [V3; 2] {
        if self.inv_len == 0.0 {
            return [[0.0; 3]; 2];
        }
        let [e1, e2] = self.e;
        let nd = add(cross(t[0], e2), cross(e1, t[1]));
        let ndot = scale(sub(nd, scale(self.n, dot(self.n, nd))), self.inv_len);
        [
            scale(add(cross(t[1], self.n), cross(e2, ndot)), self.half),
            scale(add(cross(ndot, e1), cross(self.n, t[0])), self.half),
        ]
    }
}

impl Triangle {
    /// A triangle on `nodes` at rest positions `x` (Warp's `add_triangle`).
    pub fn new(nodes: [usize; 3], x: &[V3], m: &ClothMaterial) -> Result<Self> {
        let [i, j, k] = nodes;
        let (qp, rp) = (sub(x[j], x[i]), sub(x[k], x[i]));
        let n = cross(qp, rp);
        let nlen = dot(n, n).sqrt();
        let (qlen, rlen) = (dot(qp, qp).sqrt(), dot(rp, rp).sqrt());
        if nlen <= 1e-12 * (qlen * rlen).max(1e-300) || m.tri_ka.is_nan() || m.tri_ka <= 0.0 {
            return Err(DiffsimError::config(format!(
                "triangle {nodes:?}: degenerate, or tri_ka not positive"
            )));
        }
        let e1 = scale(qp, 1.0 / qlen);
        let e2 = cross(scale(n, 1.0 / nlen), e1);
        // M = [e₁ e₂]ᵀ·[qp rp] (2×2); D_m⁻¹ = M⁻¹.
        let mm = [[dot(e1, qp), dot(e1, rp)], [dot(e2, qp), dot(e2, rp)]];
        let det = mm[0][0] * mm[1][1] - mm[0][1] * mm[1][0];
        Ok(Self {
            nodes,
            ke: m.tri_ke,
            ka: m.tri_ka,
            kd: m.tri_kd,
            drag: m.drag,
            lift: m.lift,
            activation: 0.0,
            dm: [
                [mm[1][1] / det, -mm[0][1] / det],
                [-mm[1][0] / det, mm[0][0] / det],
            ],
            rest_area: 0.5 * det,
        })
    }

    fn edges(&self, x: &[V3]) -> (V3, V3) {
        let [i, j, k] = self.nodes;
        (sub(x[j], x[i]), sub(x[k], x[i]))
    }

    /// `F = [e₁ e₂]·D_m⁻¹` as its two columns.
    fn deformation(&self, e1: V3, e2: V3) -> [V3; 2] {
        let d = self.dm;
        std::array::from_fn(|c| add(scale(e1, d[0][c]), scale(e2, d[1][c])))
    }

    /// `P·D_m⁻ᵀ` as its two columns (the gradients on `e₁`, `e₂` of `P : F`).
    fn pull_back(&self, p: [V3; 2]) -> [V3; 2] {
        let d = self.dm;
        std::array::from_fn(|r| add(scale(p[0], d[r][0]), scale(p[1], d[r][1])))
    }

    fn alpha(&self) -> f64 {
        1.0 + self.ke / self.ka
    }

    /// Adds `(ē₁, ē₂)` (gradients on the edges) to the node gradients `out`.
    fn scatter(&self, e: [V3; 2], out: &mut [V3]) {
        let [i, j, k] = self.nodes;
        for a in 0..3 {
            out[j][a] += e[0][a];
            out[k][a] += e[1][a];
            out[i][a] -= e[0][a] + e[1][a];
        }
    }

    /// `(u_j − u_i, u_k − u_i)`.
    fn gather(&self, u: &[V3]) -> [V3; 2] {
        let [i, j, k] = self.nodes;
        [sub(u[j], u[i]), sub(u[k], u[i])]
    }

    /// The elastic energy `A₀·(ke/2·|F|² + ka/2·c²)` at `x`.
    pub fn energy(&self, x: &[V3]) -> f64 {
        let (e1, e2) = self.edges(x);
        let f = self.deformation(e1, e2);
        let c = self.area((e1, e2)).j - self.alpha() + self.activation;
        self.rest_area
            * (0.5 * self.ke * (dot(f[0], f[0]) + dot(f[1], f[1])) + 0.5 * self.ka * c * c)
    }

    /// Warp's triangle force at `(x, v)` (elastic, damping and, with `v`, aerodynamics),
    /// added into `f`; without `v`, the elastic forces `−∇energy` alone.
    pub fn add_forces(&self, x: &[V3], v: Option<&[V3]>, f: &mut [V3]) {
        let (e1, e2) = self.edges(x);
        let a0 = self.rest_area;
        let fd = self.deformation(e1, e2);
        let ar = self.area((e1, e2));
        let [dq, dr] = ar.grad;
        let c = ar.j - self.alpha() + self.activation;
        let (mut p, mut sigma) = (fd.map(|col| scale(col, self.ke * a0)), self.ka * a0 * c);
        if let Some(v) = v {
            let [w1, w2] = self.gather(v);
            let fdot = self.deformation(w1, w2);
            (0..2).for_each(|col| axpy(self.kd * a0, fdot[col], &mut p[col]));
            sigma += self.kd * a0 * (dot(dq, w1) + dot(dr, w2));
        }
        let mut g = self.pull_back(p);
        axpy(sigma, dq, &mut g[0]);
        axpy(sigma, dr, &mut g[1]);
        self.scatter(g.map(|col| scale(col, -1.0)), f);
        if let Some(v) = v {
            let air = self.aero(e1, e2, self.mean_velocity(v));
            for &n in &self.nodes {
                axpy(-1.0, air, &mut f[n]);
            }
        }
    }

    /// Warp's `0.3333·(vᵢ + v_j + v_k)`.
    fn mean_velocity(&self, v: &[V3]) -> V3 {
        let [i, j, k] = self.nodes;
        std::array::from_fn(|a| (v[i][a] + v[j][a] + v[k][a]) * 0.3333)
    }

    /// `drag + lift` (each node gets minus this).
    fn aero(&self, e1: V3, e2: V3, m: V3) -> V3 {
        let Some(g) = Aero::new(self, e1, e2, m) else {
            return [0.0; 3];
        };
        let drag = scale(m, self.drag * g.area * g.q.abs());
        add(drag, scale(g.n, self.lift * g.area * g.phi * g.mm * g.mm))
    }

    /// The gradients of `U·(drag + lift)` with respect to `e₁`, `e₂` and `v̄`.
    fn aero_vjp(&self, e1: V3, e2: V3, m: V3, u: V3) -> (V3, V3, V3) {
        let Some(g) = Aero::new(self, e1, e2, m) else {
            return ([0.0; 3], [0.0; 3], [0.0; 3]);
        };
        let (kd, kl, mm) = (self.drag, self.lift, g.mm);
        let (um, un) = (dot(u, m), dot(u, g.n));
        // S = kd·area·|q|·(U·m) + kl·area·φ(q/|m|)·|m|²·(U·n̂), q = n̂·m.
        let s_area = kd * g.q.abs() * um + kl * g.phi * mm * mm * un;
        let s_q = kd * g.area * g.q.signum() * um + kl * g.area * mm * un * g.dphi;
        let mut mbar = scale(u, kd * g.area * g.q.abs());
        axpy(kl * g.area * un * (2.0 * g.phi), m, &mut mbar);
        axpy(-kl * g.area * un * g.dphi * g.q / mm, m, &mut mbar);
        axpy(s_q, g.n, &mut mbar);
        let mut nbar = scale(u, kl * g.area * g.phi * mm * mm);
        axpy(s_q, m, &mut nbar);
        // n̂ = N/|N|, area = |N|/2, N = e₁ × e₂.
        let nn = dot(g.n, nbar);
        let nvec: V3 = std::array::from_fn(|a| {
            (nbar[a] - g.n[a] * nn) / (2.0 * g.area) + 0.5 * s_area * g.n[a]
        });
        (cross(e2, nvec), cross(nvec, e1), mbar)
    }

    /// `J` and its derivatives at the edges `(e₁, e₂)`.
    fn area(&self, (e1, e2): (V3, V3)) -> AreaRatio {
        AreaRatio::new(e1, e2, 1.0 / self.rest_area)
    }

    /// `A₀·(k_m·D_m⁻¹D_m⁻ᵀ ⊗ I + k_a·∇J∇Jᵀ)` on the edges (2×2 blocks of 3×3).
    fn membrane_area_blocks(&self, k_m: f64, k_a: f64, grad: &[V3; 2]) -> [[M3; 2]; 2] {
        let (a0, d) = (self.rest_area, self.dm);
        std::array::from_fn(|r| {
            std::array::from_fn(|s| {
                std::array::from_fn(|a| {
                    std::array::from_fn(|b| {
                        let id = f64::from(u8::from(a == b));
                        a0 * (k_m * id * (d[r][0] * d[s][0] + d[r][1] * d[s][1])
                            + k_a * grad[r][a] * grad[s][b])
                    })
                })
            })
        })
    }

    /// `(x̄, v̄)` gains of the air force (every node gets `−(drag + lift)`) at `(x, v)` for the
    /// weights `u`: on the edges `e₁`, `e₂` (to be scattered) and on each node's velocity.
    fn air_vjp(&self, (e1, e2): (V3, V3), v: &[V3], u: &[V3]) -> ([V3; 2], V3) {
        let [i, j, k] = self.nodes;
        let big_u = add(add(u[i], u[j]), u[k]);
        let (b1, b2, mbar) = self.aero_vjp(e1, e2, self.mean_velocity(v), big_u);
        ([scale(b1, -1.0), scale(b2, -1.0)], scale(mbar, -0.3333))
    }

    /// Adds `(∂f/∂x)ᵀu` and `(∂f/∂v)ᵀu` of [`Triangle::add_forces`] (with velocities) into
    /// `xbar`, `vbar`: one pass, one gather and one scatter per array.
    pub fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        let e = self.edges(x);
        let (a0, ke, ka, kd) = (self.rest_area, self.ke, self.ka, self.kd);
        let w = self.gather(u);
        let vd = self.gather(v);
        // Membrane: Σ uₐ·fₐ = −A₀·F(w) : (ke·F + kd·Ḟ), linear in the edges.
        let back = self.pull_back(self.deformation(w[0], w[1]));
        // Area: Σ uₐ·fₐ = −σ·Du, σ = A₀(ka·c + kd·ċ), Du = ∇J·w, ċ = ∇J·v̇; its x-gradient
        // −Du·A₀·ka·∇J − ∇²J·(σ·w + Du·A₀·kd·v̇) takes one pass along the combined direction.
        let ar = self.area(e);
        let g = ar.grad;
        let du = dot(g[0], w[0]) + dot(g[1], w[1]);
        let cdot = dot(g[0], vd[0]) + dot(g[1], vd[1]);
        let sigma = a0 * (ka * (ar.j - self.alpha() + self.activation) + kd * cdot);
        let h = ar.along([0, 1].map(|c| add(scale(w[c], sigma), scale(vd[c], du * a0 * kd))));
        let (air_x, air_v) = self.air_vjp(e, v, u);
        let ex: [V3; 2] = std::array::from_fn(|c| {
            std::array::from_fn(|a| {
                -a0 * (ke * back[c][a] + du * ka * g[c][a]) - h[c][a] + air_x[c][a]
            })
        });
        let ev: [V3; 2] = std::array::from_fn(|c| {
            std::array::from_fn(|a| -a0 * kd * (back[c][a] + du * g[c][a]))
        });
        self.scatter(ex, xbar);
        self.scatter(ev, vbar);
        for &n in &self.nodes {
            axpy(1.0, air_v, &mut vbar[n]);
        }
    }

    /// The 3×3 blocks `H[a][b]` of the elastic energy's Hessian at `x`; with `project`, the
    /// area term's curvature `ka·c·∇²J` is dropped (what remains is positive semi-definite).
    pub fn hessian_blocks(&self, x: &[V3], project: bool) -> [[M3; 3]; 3] {
        let e = self.edges(x);
        let a0 = self.rest_area;
        // In edge coordinates: A₀·ke·(D_m⁻¹D_m⁻ᵀ ⊗ I) + A₀·ka·(∇J∇Jᵀ + c·∇²J).
        let ar = self.area(e);
        let mut he = self.membrane_area_blocks(self.ke, self.ka, &ar.grad);
        let c = ar.j - self.alpha() + self.activation;
        if !project {
            for s in 0..2 {
                for b in 0..3 {
                    let mut t = [[0.0; 3]; 2];
                    t[s][b] = 1.0;
                    for (r, col) in ar.along(t).iter().enumerate() {
                        for a in 0..3 {
                            he[r][s][a][b] += a0 * self.ka * c * col[a];
                        }
                    }
                }
            }
        }
        edge_to_node_blocks(&he)
    }

    /// `K` in `Φ ∋ ½·(x − xₙ)ᵀK(x − xₙ)/h`, the damping of [`Triangle::add_forces`] for
    /// backward Euler: membrane damping exact (`A₀·kd·D_m⁻¹D_m⁻ᵀ ⊗ I` on the edges), area
    /// damping with `∇J` lagged at `xₙ` (`A₀·kd·∇J∇Jᵀ`). 3×3 node blocks.
    pub fn damping_blocks(&self, xn: &[V3]) -> [[M3; 3]; 3] {
        let grad = self.area(self.edges(xn)).grad;
        edge_to_node_blocks(&self.membrane_area_blocks(self.kd, self.kd, &grad))
    }

    /// `x̄ₙ += −(∂T/∂xₙ)ᵀλ` for the lagged area damping `T = A₀·kd·∇Jₙ(∇Jₙ·(x − xₙ))/h`
    /// (in `Φ`'s gradient) and the explicit membrane damping (`−A₀·kd·F(·)` on `x − xₙ`), and
    /// `(x̄ₙ, v̄ₙ) += (∂f/∂(xₙ, vₙ))ᵀλ` for the air force taken at `(xₙ, vₙ)`.
    pub fn add_lagged_vjp(
        &self,
        (x1, xn, vn): (&[V3], &[V3], &[V3]),
        lam: &[V3],
        h: f64,
        xbar: &mut [V3],
        vbar: &mut [V3],
    ) {
        let e = self.edges(xn);
        let a0 = self.rest_area;
        let l = self.gather(lam);
        let dx = {
            let (a, b) = (self.gather(x1), self.gather(xn));
            [sub(a[0], b[0]), sub(a[1], b[1])]
        };
        // Membrane damping: G ∋ A₀·kd/h·K(Δ), ∂G/∂xₙ = −A₀·kd/h·K.
        let back = self.pull_back(self.deformation(l[0], l[1]));
        self.scatter(back.map(|c| scale(c, a0 * self.kd / h)), xbar);
        // Area damping: λᵀ∂T/∂xₙ = A₀kd/h·[(∇J·Δ)∇²Jλ + (∇J·λ)(∇²JΔ − ∇J)].
        let ar = self.area(e);
        let (hl, hd) = (ar.along(l), ar.along(dx));
        let ex = lagged_rank_one(a0 * self.kd / h, (&ar.grad, &hl, &hd), &l, &dx);
        let (air_x, air_v) = self.air_vjp(e, vn, lam);
        self.scatter([add(ex[0], air_x[0]), add(ex[1], air_x[1])], xbar);
        for &n in &self.nodes {
            axpy(1.0, air_v, &mut vbar[n]);
        }
    }

    /// The air force on each node, `−(drag + lift)`, at `(x, v)`.
    pub fn air_force(&self, x: &[V3], v: &[V3]) -> V3 {
        let (e1, e2) = self.edges(x);
        scale(self.aero(e1, e2, self.mean_velocity(v)), -1.0)
    }
}

/// Node blocks of a quadratic form given on the edges `e₁ = x_j − x_i`, `e₂ = x_k − x_i`.
fn edge_to_node_blocks(he: &[[M3; 2]; 2]) -> [[M3; 3]; 3] {
    // Node j is edge 0, node k edge 1, node i minus both.
    let mut out = [[[[0.0; 3]; 3]; 3]; 3];
    for a in 0..3 {
        for b in 0..3 {
            let e = |r: usize, s: usize| he[r][s][a][b];
            out[1][1][a][b] = e(0, 0);
            out[1][2][a][b] = e(0, 1);
            out[2][1][a][b] = e(1, 0);
            out[2][2][a][b] = e(1, 1);
            out[0][1][a][b] = -(e(0, 0) + e(1, 0));
            out[0][2][a][b] = -(e(0, 1) + e(1, 1));
            out[1][0][a][b] = -(e(0, 0) + e(0, 1));
            out[2][0][a][b] = -(e(1, 0) + e(1, 1));
            out[0][0][a][b] = e(0, 0) + e(0, 1) + e(1, 0) + e(1, 1);
        }
    }
    out
}

/// `−λᵀ∂T/∂xₙ` for a lagged rank-one damping `T = k·g(xₙ)(g(xₙ)·Δ)`, `Δ = x − xₙ`, `g` a
/// gradient: `−k·[(g·Δ)·∇g·λ + (g·λ)·(∇g·Δ − g)]`, given `(g, ∇g·λ, ∇g·Δ)` and `λ`, `Δ` in the
/// same coordinates.
fn lagged_rank_one(k: f64, (g, hl, hd): (&[V3], &[V3], &[V3]), l: &[V3], dx: &[V3]) -> Vec<V3> {
    let gd: f64 = g.iter().zip(dx).map(|(a, b)| dot(*a, *b)).sum();
    let gl: f64 = g.iter().zip(l).map(|(a, b)| dot(*a, *b)).sum();
    (0..g.len())
        .map(|c| std::array::from_fn(|a| -k * (gd * hl[c][a] + gl * (hd[c][a] - g[c][a]))))
        .collect()
}

/// The pieces of Warp's air force.
struct Aero {
    n: V3,
    area: f64,
    q: f64,
    mm: f64,
    phi: f64,
    dphi: f64,
}

impl Aero {
    fn new(t: &Triangle, e1: V3, e2: V3, m: V3) -> Option<Self> {
        let nv = cross(e1, e2);
        let len = dot(nv, nv).sqrt();
        let mm = dot(m, m).sqrt();
        if len == 0.0 || mm == 0.0 || (t.drag == 0.0 && t.lift == 0.0) {
            return None;
        }
        let n = scale(nv, 1.0 / len);
        let q = dot(n, m);
        let c = (q / mm).clamp(-1.0, 1.0);
        Some(Self {
            n,
            area: 0.5 * len,
            q,
            mm,
            phi: std::f64::consts::FRAC_PI_2 - c.acos(),
            dphi: 1.0 / (1.0 - c * c).max(1e-12).sqrt(),
        })
    }
}

/// One bending element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bend {
    /// `(i, j, k, l)`: `i`, `j` the opposite vertices, `k → l` the shared edge.
    pub nodes: [usize; 4],
    /// Stiffness (`edge_ke`).
    pub ke: f64,
    /// Damping (`edge_kd`).
    pub kd: f64,
    /// Rest angle θ₀ (rad).
    pub rest_angle: f64,
    /// Rest edge length |ē| (m).
    pub rest_length: f64,
}

/// Warp's dihedral angle `θ` of a bending element at its 4 node positions, Bridson's
/// `dₐ = ∂θ/∂xₐ`, the edge length, and what the closed-form `∇(Σ wₐ·dₐ)` needs.
///
/// With `n₁ = (x₃ − x₁) × (x₄ − x₁)`, `n₂ = (x₄ − x₂) × (x₃ − x₂)`, `mᵢ = nᵢ/|nᵢ|²`,
/// `e = x₄ − x₃`, `ê = e/|e|`: `d₁ = |e|·m₁`, `d₂ = |e|·m₂`,
/// `d₃ = s₁₃·m₁ + s₂₃·m₂`, `d₄ = s₁₄·m₁ + s₂₄·m₂`, `s₁₃ = (x₁ − x₄)·ê`, `s₂₃ = (x₂ − x₄)·ê`,
/// `s₁₄ = (x₃ − x₁)·ê`, `s₂₄ = (x₃ − x₂)·ê`.
struct Hinge {
    theta: f64,
    d: [V3; 4],
    elen: f64,
    eh: V3,
    /// `x₃ − x₁`, `x₄ − x₁`, `x₄ − x₂`, `x₃ − x₂`.
    arms: [V3; 4],
    /// `x₁ − x₄`, `x₂ − x₄`.
    to4: [V3; 2],
    n: [V3; 2],
    m: [V3; 2],
    /// `1/|nᵢ|²`.
    inv: [f64; 2],
    /// `[s₁₃, s₁₄, s₂₃, s₂₄]`.
    s: [f64; 4],
}

impl Hinge {
    /// None when a face is degenerate (`|nᵢ| < 1e-6`, where Warp skips the element).
    fn new(x: [V3; 4]) -> Option<Self> {
        let [x1, x2, x3, x4] = x;
        let arms = [sub(x3, x1), sub(x4, x1), sub(x4, x2), sub(x3, x2)];
        let n = [cross(arms[0], arms[1]), cross(arms[2], arms[3])];
        let (q1, q2) = (dot(n[0], n[0]), dot(n[1], n[1]));
        if q1 < 1e-12 || q2 < 1e-12 {
            return None;
        }
        let e = sub(x4, x3);
        let elen = dot(e, e).sqrt();
        let eh = scale(e, 1.0 / elen);
        let inv = [1.0 / q1, 1.0 / q2];
        let m = [scale(n[0], inv[0]), scale(n[1], inv[1])];
        // Warp's sign(((n₂ × n₁)·ê))·acos(n̂₁·n̂₂), as an atan2: acos loses half the digits
        // near a flat hinge (θ ≈ 1e-8 from round-off), which would leave Newton a noisy
        // gradient.
        let theta = dot(cross(n[1], n[0]), eh).atan2(dot(n[0], n[1]));
        let to4 = [sub(x1, x4), sub(x2, x4)];
        let s = [
            dot(to4[0], eh),
            dot(arms[0], eh),
            dot(to4[1], eh),
            dot(arms[3], eh),
        ];
        let d = [
            scale(m[0], elen),
            scale(m[1], elen),
            add(scale(m[0], s[0]), scale(m[1], s[2])),
            add(scale(m[0], s[1]), scale(m[1], s[3])),
        ];
        Some(Self {
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
        })
    }

    /// `Σ wₐ·dₐ`.
    fn d_dot(&self, w: &[V3; 4]) -> f64 {
        (0..4).map(|a| dot(self.d[a], w[a])).sum()
    }

    /// `∇ₓ(Σ wₐ·dₐ) = ∇²θ·w` at fixed `w`: the reverse pass of the formulas of [`Hinge`].
    fn grad_d_dot(&self, w: &[V3; 4]) -> [V3; 4] {
        let [w1, w2, w3, w4] = *w;
        let [m1, m2] = self.m;
        // Σ wₐ·dₐ = m₁·W₁ + m₂·W₂.
        let big = [
            add(
                add(scale(w1, self.elen), scale(w3, self.s[0])),
                scale(w4, self.s[1]),
            ),
            add(
                add(scale(w2, self.elen), scale(w3, self.s[2])),
                scale(w4, self.s[3]),
            ),
        ];
        let len_bar = dot(m1, w1) + dot(m2, w2);
        let s_bar = [dot(m1, w3), dot(m1, w4), dot(m2, w3), dot(m2, w4)];
        let mut g = [[0.0; 3]; 4];
        // mᵢ = nᵢ/|nᵢ|²: n̄ᵢ = (m̄ᵢ − 2(m̄ᵢ·mᵢ)nᵢ)/|nᵢ|²; n = a × b: ā = b × n̄, b̄ = n̄ × a.
        // Face 1: a = x₃ − x₁, b = x₄ − x₁; face 2: a = x₄ − x₂, b = x₃ − x₂ (node of a's
        // head, of b's head, the shared tail).
        for (f, [ha, hb, tail]) in [(0, [2, 3, 0]), (1, [3, 2, 1])] {
            let nb = scale(
                add(big[f], scale(self.n[f], -2.0 * dot(big[f], self.m[f]))),
                self.inv[f],
            );
            let (a, b) = (self.arms[2 * f], self.arms[2 * f + 1]);
            let (abar, bbar) = (cross(b, nb), cross(nb, a));
            axpy(1.0, abar, &mut g[ha]);
            axpy(1.0, bbar, &mut g[hb]);
            axpy(-1.0, add(abar, bbar), &mut g[tail]);
        }
        // s₁₃ = (x₁ − x₄)·ê, s₁₄ = (x₃ − x₁)·ê, s₂₃ = (x₂ − x₄)·ê, s₂₄ = (x₃ − x₂)·ê.
        let eh = self.eh;
        axpy(s_bar[0] - s_bar[1], eh, &mut g[0]);
        axpy(s_bar[2] - s_bar[3], eh, &mut g[1]);
        axpy(s_bar[1] + s_bar[3], eh, &mut g[2]);
        axpy(-(s_bar[0] + s_bar[2]), eh, &mut g[3]);
        let mut eh_bar = scale(self.to4[0], s_bar[0]);
        axpy(s_bar[1], self.arms[0], &mut eh_bar);
        axpy(s_bar[2], self.to4[1], &mut eh_bar);
        axpy(s_bar[3], self.arms[3], &mut eh_bar);
        // ê = e/|e|, e = x₄ − x₃.
        let e_bar = add(
            scale(sub(eh_bar, scale(eh, dot(eh_bar, eh))), 1.0 / self.elen),
            scale(eh, len_bar),
        );
        axpy(1.0, e_bar, &mut g[3]);
        axpy(-1.0, e_bar, &mut g[2]);
        g
    }
}

impl Bend {
    fn at(&self, x: &[V3]) -> [V3; 4] {
        self.nodes.map(|n| x[n])
    }

    fn hinge(&self, x: &[V3]) -> Option<Hinge> {
        Hinge::new(self.at(x))
    }

    /// `θ` at `x` (None for a degenerate face).
    pub fn angle(&self, x: &[V3]) -> Option<f64> {
        self.hinge(x).map(|h| h.theta)
    }

    /// The bending energy `½·ke·|ē|·(θ − θ₀)²` (the implicit integrator's potential).
    pub fn energy(&self, x: &[V3]) -> f64 {
        self.angle(x).map_or(0.0, |t| {
            0.5 * self.ke * self.rest_length * (t - self.rest_angle).powi(2)
        })
    }

    /// With `v`: Warp's force `−|e|·(ke(θ − θ₀) + kd·θ̇)·d`; without: `−∇energy`. Added
    /// into `f`.
    pub fn add_forces(&self, x: &[V3], v: Option<&[V3]>, f: &mut [V3]) {
        let Some(h) = self.hinge(x) else {
            return;
        };
        let total = match v {
            Some(v) => {
                let rate = h.d_dot(&self.at(v));
                -h.elen * (self.ke * (h.theta - self.rest_angle) + self.kd * rate)
            }
            None => -self.rest_length * self.ke * (h.theta - self.rest_angle),
        };
        for (a, &n) in self.nodes.iter().enumerate() {
            axpy(total, h.d[a], &mut f[n]);
        }
    }

    /// Adds `(∂f/∂x)ᵀu` and `(∂f/∂v)ᵀu` of Warp's force into `xbar`, `vbar`.
    pub fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        let Some(h) = self.hinge(x) else {
            return;
        };
        let (ul, vl) = (self.at(u), self.at(v));
        let du = h.d_dot(&ul);
        let g = self.ke * (h.theta - self.rest_angle) + self.kd * h.d_dot(&vl);
        // Σ uₐ·fₐ = −|e|·g·Du: ∇ₓ = −[g·Du·∇|e| + |e|·Du·ke·d + ∇²θ·(|e|·g·u + |e|·Du·kd·v)]
        // (∇²θ is linear in the direction: one pass).
        let dir: [V3; 4] = std::array::from_fn(|a| {
            add(
                scale(ul[a], h.elen * g),
                scale(vl[a], h.elen * du * self.kd),
            )
        });
        let hw = h.grad_d_dot(&dir);
        let nd = self.nodes;
        for a in 0..4 {
            let ex: V3 = std::array::from_fn(|c| -(h.elen * du * self.ke * h.d[a][c] + hw[a][c]));
            axpy(1.0, ex, &mut xbar[nd[a]]);
            axpy(-h.elen * du * self.kd, h.d[a], &mut vbar[nd[a]]);
        }
        axpy(-g * du, h.eh, &mut xbar[nd[3]]);
        axpy(g * du, h.eh, &mut xbar[nd[2]]);
    }

    /// `K = kd·|ē|·d dᵀ` at `xₙ`: the bending damping for backward Euler, `Φ ∋ ½ΔᵀKΔ/h`
    /// with `d` lagged at `xₙ` (Warp's `kd·θ̇` with `|e|` at rest). Zero for a degenerate face.
    pub fn damping_blocks(&self, xn: &[V3]) -> [[M3; 4]; 4] {
        let k = self.kd * self.rest_length;
        match self.hinge(xn) {
            Some(h) if k != 0.0 => outer_blocks(k, &h.d),
            _ => [[[[0.0; 3]; 3]; 4]; 4],
        }
    }

    /// `x̄ₙ += −(∂T/∂xₙ)ᵀλ` for the lagged damping `T = K(xₙ)·(x − xₙ)/h` of
    /// [`Bend::damping_blocks`] (its `xₙ`-dependence through `d`; the `−K/h` on `xₙ` too).
    pub fn add_lagged_vjp(&self, (x1, xn): (&[V3], &[V3]), lam: &[V3], h: f64, xbar: &mut [V3]) {
        if self.kd == 0.0 {
            return;
        }
        let nd = self.nodes;
        let l = nd.map(|n| lam[n]);
        let dx = nd.map(|n| sub(x1[n], xn[n]));
        let Some(hinge) = self.hinge(xn) else {
            return;
        };
        let (hl, hd) = (hinge.grad_d_dot(&l), hinge.grad_d_dot(&dx));
        let ex = lagged_rank_one(
            self.kd * self.rest_length / h,
            (&hinge.d, &hl, &hd),
            &l,
            &dx,
        );
        for (a, &n) in nd.iter().enumerate() {
            axpy(1.0, ex[a], &mut xbar[n]);
        }
    }

    /// The 4×4 blocks of the energy's Hessian `ke·|ē|·(d dᵀ + (θ − θ₀)·∇²θ)`; with `project`,
    /// the curvature term is dropped. Zero for a degenerate face.
    pub fn hessian_blocks(&self, x: &[V3], project: bool) -> [[M3; 4]; 4] {
        let Some(h) = self.hinge(x) else {
            return [[[[0.0; 3]; 3]; 4]; 4];
        };
        let k = self.ke * self.rest_length;
        let mut hb = outer_blocks(k, &h.d);
        if !project {
            for b in 0..4 {
                for c in 0..3 {
                    let mut w = [[0.0; 3]; 4];
                    w[b][c] = 1.0;
                    let col = h.grad_d_dot(&w);
                    for a in 0..4 {
                        for r in 0..3 {
                            hb[a][b][r][c] += k * (h.theta - self.rest_angle) * col[a][r];
                        }
                    }
                }
            }
        }
        hb
    }
}

/// The blocks `k·dₐ d_bᵀ` of a rank-one form over 4 nodes.
fn outer_blocks(k: f64, d: &[V3; 4]) -> [[M3; 4]; 4] {
    std::array::from_fn(|a| {
        std::array::from_fn(|b| {
            std::array::from_fn(|r| std::array::from_fn(|c| k * d[a][r] * d[b][c]))
        })
    })
}
