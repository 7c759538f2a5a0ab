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
//! Geometric helpers are generic over [`num_dual::DualNum`], so one forward-mode pass with
//! [`Dual64`] gives the directional derivative of a gradient (`∇J`, `d`): since those are
//! gradients, `D(∇φ)[w] = ∇²φ·w = ∇(w·∇φ)`, which is what the adjoints and Hessians need.

use super::math::{M3, V3};
use crate::error::{DiffsimError, Result};
use num_dual::{Dual64, DualNum};

/// Scalars the geometry is written for: `f64` and forward-mode duals.
pub trait Real: DualNum<Primitive = f64> + Copy {}
impl<T: DualNum<Primitive = f64> + Copy> Real for T {}

fn sub<T: Real>(a: [T; 3], b: [T; 3]) -> [T; 3] {
    std::array::from_fn(|k| a[k] - b[k])
}
fn add<T: Real>(a: [T; 3], b: [T; 3]) -> [T; 3] {
    std::array::from_fn(|k| a[k] + b[k])
}
fn dot<T: Real>(a: [T; 3], b: [T; 3]) -> T {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross<T: Real>(a: [T; 3], b: [T; 3]) -> [T; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn scale<T: Real>(a: [T; 3], s: T) -> [T; 3] {
    a.map(|c| c * s)
}
fn axpy(s: f64, a: V3, y: &mut V3) {
    (0..3).for_each(|k| y[k] += s * a[k]);
}
/// Dual vectors with value `x` and tangent `t`.
fn seed(x: V3, t: V3) -> [Dual64; 3] {
    std::array::from_fn(|k| Dual64::new(x[k], t[k]))
}
fn re(a: [Dual64; 3]) -> V3 {
    a.map(|c| c.re)
}
fn eps(a: [Dual64; 3]) -> V3 {
    a.map(|c| c.eps)
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

/// `J = area/A₀` of the triangle with edges `e₁`, `e₂` and its gradients `∂J/∂e₁`, `∂J/∂e₂`
/// (zero for a degenerate triangle, as Warp's `normalize`).
fn area_ratio<T: Real>(e1: [T; 3], e2: [T; 3], inv_area: f64) -> (T, [T; 3], [T; 3]) {
    let n = cross(e1, e2);
    let len = dot(n, n).sqrt();
    if len.re() == 0.0 {
        let z = [T::from(0.0); 3];
        return (T::from(0.0), z, z);
    }
    let nh = scale(n, len.recip());
    let half = T::from(0.5 * inv_area);
    (
        len * half,
        scale(cross(e2, nh), half),
        scale(cross(nh, e1), half),
    )
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
        let (j, _, _) = area_ratio(e1, e2, 1.0 / self.rest_area);
        let c = j - self.alpha() + self.activation;
        self.rest_area
            * (0.5 * self.ke * (dot(f[0], f[0]) + dot(f[1], f[1])) + 0.5 * self.ka * c * c)
    }

    /// Warp's triangle force at `(x, v)` (elastic, damping and, with `v`, aerodynamics),
    /// added into `f`; without `v`, the elastic forces `−∇energy` alone.
    pub fn add_forces(&self, x: &[V3], v: Option<&[V3]>, f: &mut [V3]) {
        let (e1, e2) = self.edges(x);
        let a0 = self.rest_area;
        let fd = self.deformation(e1, e2);
        let (j, dq, dr) = area_ratio(e1, e2, 1.0 / a0);
        let c = j - self.alpha() + self.activation;
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

    /// `(J, ∇J, D(∇J)[t])` at the edges `(e₁, e₂)`, `t` a change of the edges (one dual pass).
    fn area_along(&self, (e1, e2): (V3, V3), t: [V3; 2]) -> (f64, [V3; 2], [V3; 2]) {
        let (j, dq, dr) = area_ratio(seed(e1, t[0]), seed(e2, t[1]), 1.0 / self.rest_area);
        (j.re, [re(dq), re(dr)], [eps(dq), eps(dr)])
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

    /// Adds `(∂f/∂x)ᵀu` and `(∂f/∂v)ᵀu` of the air force (every node gets `−(drag + lift)`)
    /// at `(x, v)` into `xbar`, `vbar`.
    fn add_air_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        let (e1, e2) = self.edges(x);
        let [i, j, k] = self.nodes;
        let big_u = add(add(u[i], u[j]), u[k]);
        let (b1, b2, mbar) = self.aero_vjp(e1, e2, self.mean_velocity(v), big_u);
        self.scatter([scale(b1, -1.0), scale(b2, -1.0)], xbar);
        for &n in &self.nodes {
            axpy(-0.3333, mbar, &mut vbar[n]);
        }
    }

    /// Adds `(∂f/∂x)ᵀu` and `(∂f/∂v)ᵀu` of [`Triangle::add_forces`] (with velocities) into
    /// `xbar`, `vbar`.
    pub fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        let e = self.edges(x);
        let a0 = self.rest_area;
        let w = self.gather(u);
        let vd = self.gather(v);
        // Membrane: Σ uₐ·fₐ = −A₀·F(w) : (ke·F + kd·Ḟ), linear in the edges.
        let back = self.pull_back(self.deformation(w[0], w[1]));
        self.scatter(back.map(|c| scale(c, -self.ke * a0)), xbar);
        self.scatter(back.map(|c| scale(c, -self.kd * a0)), vbar);
        // Area: Σ uₐ·fₐ = −σ·Du, σ = A₀(ka·c + kd·ċ), Du = ∇J·u, ċ = ∇J·v.
        let (j, grad, hu) = self.area_along(e, w);
        let (_, _, hv) = self.area_along(e, vd);
        let du = dot(grad[0], w[0]) + dot(grad[1], w[1]);
        let cdot = dot(grad[0], vd[0]) + dot(grad[1], vd[1]);
        let sigma = a0 * (self.ka * (j - self.alpha() + self.activation) + self.kd * cdot);
        let ex: [V3; 2] = std::array::from_fn(|c| {
            std::array::from_fn(|a| {
                -(du * a0 * (self.ka * grad[c][a] + self.kd * hv[c][a]) + sigma * hu[c][a])
            })
        });
        self.scatter(ex, xbar);
        self.scatter(grad.map(|g| scale(g, -du * a0 * self.kd)), vbar);
        self.add_air_vjp(x, v, u, xbar, vbar);
    }

    /// The 3×3 blocks `H[a][b]` of the elastic energy's Hessian at `x`; with `project`, the
    /// area term's curvature `ka·c·∇²J` is dropped (what remains is positive semi-definite).
    pub fn hessian_blocks(&self, x: &[V3], project: bool) -> [[M3; 3]; 3] {
        let e = self.edges(x);
        let a0 = self.rest_area;
        // In edge coordinates: A₀·ke·(D_m⁻¹D_m⁻ᵀ ⊗ I) + A₀·ka·(∇J∇Jᵀ + c·∇²J).
        let (j, grad, _) = self.area_along(e, [[0.0; 3]; 2]);
        let mut he = self.membrane_area_blocks(self.ke, self.ka, &grad);
        let c = j - self.alpha() + self.activation;
        if !project {
            for s in 0..2 {
                for b in 0..3 {
                    let mut t = [[0.0; 3]; 2];
                    t[s][b] = 1.0;
                    let (_, _, col) = self.area_along(e, t);
                    for (r, col) in col.iter().enumerate() {
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
        let (_, grad, _) = self.area_along(self.edges(xn), [[0.0; 3]; 2]);
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
        let (_, grad, hl) = self.area_along(e, l);
        let (_, _, hd) = self.area_along(e, dx);
        let ex = lagged_rank_one(a0 * self.kd / h, (&grad, &hl, &hd), &l, &dx);
        self.scatter([ex[0], ex[1]], xbar);
        self.add_air_vjp(xn, vn, lam, xbar, vbar);
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

/// Warp's dihedral angle `θ`, Bridson's `dₐ = ∂θ/∂xₐ` and the edge length at `x` (of the 4
/// nodes); None when a face is degenerate (`|n| < 1e-6`, where Warp skips the element).
fn dihedral<T: Real>(x: [[T; 3]; 4]) -> Option<(T, [[T; 3]; 4], T)> {
    let [x1, x2, x3, x4] = x;
    let n1 = cross(sub(x3, x1), sub(x4, x1));
    let n2 = cross(sub(x4, x2), sub(x3, x2));
    let (l1, l2) = (dot(n1, n1).sqrt(), dot(n2, n2).sqrt());
    if l1.re() < 1e-6 || l2.re() < 1e-6 {
        return None;
    }
    let e = sub(x4, x3);
    let elen = dot(e, e).sqrt();
    let eh = scale(e, elen.recip());
    let (m1, m2) = (scale(n1, (l1 * l1).recip()), scale(n2, (l2 * l2).recip()));
    // Warp's sign(((n₂ × n₁)·ê))·acos(n̂₁·n̂₂), as an atan2: acos loses half the digits near
    // a flat hinge (θ ≈ 1e-8 from round-off), which would leave Newton a noisy gradient.
    let angle = T::from(dot(cross(n2, n1), eh).re().atan2(dot(n1, n2).re()));
    let d1 = scale(m1, elen);
    let d2 = scale(m2, elen);
    let d3 = add(
        scale(m1, dot(sub(x1, x4), eh)),
        scale(m2, dot(sub(x2, x4), eh)),
    );
    let d4 = add(
        scale(m1, dot(sub(x3, x1), eh)),
        scale(m2, dot(sub(x3, x2), eh)),
    );
    Some((angle, [d1, d2, d3, d4], elen))
}

impl Bend {
    fn at(&self, x: &[V3]) -> [V3; 4] {
        self.nodes.map(|n| x[n])
    }

    /// `θ` at `x` (None for a degenerate face).
    pub fn angle(&self, x: &[V3]) -> Option<f64> {
        dihedral(self.at(x)).map(|(t, _, _)| t)
    }

    /// `(θ, d, D(d)[w])`: `d = ∇θ` and its derivative along the displacements `w` of the
    /// element's nodes.
    fn along(&self, x: &[V3], w: [V3; 4]) -> Option<(f64, [V3; 4], [V3; 4])> {
        let xd: [[Dual64; 3]; 4] = std::array::from_fn(|a| seed(x[self.nodes[a]], w[a]));
        dihedral(xd).map(|(t, d, _)| (t.re, d.map(re), d.map(eps)))
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
        let Some((theta, d, elen)) = dihedral(self.at(x)) else {
            return;
        };
        let total = match v {
            Some(v) => {
                let rate: f64 = (0..4).map(|a| dot(d[a], v[self.nodes[a]])).sum();
                -elen * (self.ke * (theta - self.rest_angle) + self.kd * rate)
            }
            None => -self.rest_length * self.ke * (theta - self.rest_angle),
        };
        for (a, &n) in self.nodes.iter().enumerate() {
            axpy(total, d[a], &mut f[n]);
        }
    }

    /// Adds `(∂f/∂x)ᵀu` and `(∂f/∂v)ᵀu` of Warp's force into `xbar`, `vbar`.
    pub fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        let (ul, vl) = (self.nodes.map(|n| u[n]), self.nodes.map(|n| v[n]));
        let (Some((theta, d, hu)), Some((_, _, hv))) = (self.along(x, ul), self.along(x, vl))
        else {
            return;
        };
        let nd = self.nodes;
        let e = sub(x[nd[3]], x[nd[2]]);
        let elen = dot(e, e).sqrt();
        let du: f64 = (0..4).map(|a| dot(d[a], u[nd[a]])).sum();
        let rate: f64 = (0..4).map(|a| dot(d[a], v[nd[a]])).sum();
        let g = self.ke * (theta - self.rest_angle) + self.kd * rate;
        // Σ uₐ·fₐ = −|e|·g·Du: ∇ₓ = −[g·Du·∇|e| + |e|·Du·(ke·d + kd·∇²θv) + |e|·g·∇²θu].
        for a in 0..4 {
            let ex: V3 = std::array::from_fn(|c| {
                -(elen * du * (self.ke * d[a][c] + self.kd * hv[a][c]) + elen * g * hu[a][c])
            });
            axpy(1.0, ex, &mut xbar[nd[a]]);
            axpy(-elen * du * self.kd, d[a], &mut vbar[nd[a]]);
        }
        let eh = scale(e, 1.0 / elen);
        axpy(-g * du, eh, &mut xbar[nd[3]]);
        axpy(g * du, eh, &mut xbar[nd[2]]);
    }

    /// `K = kd·|ē|·d dᵀ` at `xₙ`: the bending damping for backward Euler, `Φ ∋ ½ΔᵀKΔ/h`
    /// with `d` lagged at `xₙ` (Warp's `kd·θ̇` with `|e|` at rest). Zero for a degenerate face.
    pub fn damping_blocks(&self, xn: &[V3]) -> [[M3; 4]; 4] {
        let k = self.kd * self.rest_length;
        match dihedral(self.at(xn)) {
            Some((_, d, _)) if k != 0.0 => std::array::from_fn(|a| {
                std::array::from_fn(|b| {
                    std::array::from_fn(|r| std::array::from_fn(|c| k * d[a][r] * d[b][c]))
                })
            }),
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
        let (Some((_, d, hl)), Some((_, _, hd))) = (self.along(xn, l), self.along(xn, dx)) else {
            return;
        };
        let ex = lagged_rank_one(self.kd * self.rest_length / h, (&d, &hl, &hd), &l, &dx);
        for (a, &n) in nd.iter().enumerate() {
            axpy(1.0, ex[a], &mut xbar[n]);
        }
    }

    /// The 4×4 blocks of the energy's Hessian `ke·|ē|·(d dᵀ + (θ − θ₀)·∇²θ)`; with `project`,
    /// the curvature term is dropped. Zero for a degenerate face.
    pub fn hessian_blocks(&self, x: &[V3], project: bool) -> [[M3; 4]; 4] {
        let mut hb = [[[[0.0; 3]; 3]; 4]; 4];
        let Some((theta, d, _)) = dihedral(self.at(x)) else {
            return hb;
        };
        let k = self.ke * self.rest_length;
        for (a, hba) in hb.iter_mut().enumerate() {
            for (b, hab) in hba.iter_mut().enumerate() {
                for (r, row) in hab.iter_mut().enumerate() {
                    for (c, val) in row.iter_mut().enumerate() {
                        *val = k * d[a][r] * d[b][c];
                    }
                }
            }
        }
        if !project {
            for b in 0..4 {
                for c in 0..3 {
                    let mut w = [[0.0; 3]; 4];
                    w[b][c] = 1.0;
                    if let Some((_, _, col)) = self.along(x, w) {
                        for a in 0..4 {
                            for r in 0..3 {
                                hb[a][b][r][c] += k * (theta - self.rest_angle) * col[a][r];
                            }
                        }
                    }
                }
            }
        }
        hb
    }
}
