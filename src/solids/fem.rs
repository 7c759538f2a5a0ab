//! Linear tetrahedra with the stable Neo-Hookean energy of Smith et al. 2018, as in Warp's
//! `eval_tetrahedra`: per element `Ψ(F) = μ/2·(I_C − 3) − μ/2·ln(I_C + 1) + λ/2·(J − α + a)²`,
//! `F = D_s·D_m⁻¹`, `I_C = |F|²`, `J = det F`, `α = 1 + 3μ/(4λ)` (so that `P(I) = 0`: the rest
//! shape is in equilibrium, Warp's `1 + μ/λ − μ/(4λ)`), `a` the activation (a muscle term
//! that shifts the rest volume). Energy `V·Ψ` (V the rest volume); forces `−V·P·D_m⁻ᵀ` with
//! `P = ∂Ψ/∂F`; the adjoint needs `dP[dF]` (the Hessian applied to a direction).

use super::math::{M3, V3};
use crate::error::{DiffsimError, Result};

/// One tetrahedron.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tet {
    /// Its 4 particles.
    pub nodes: [usize; 4],
    /// Shear modulus μ (Pa).
    pub mu: f64,
    /// Lamé λ (Pa).
    pub lambda: f64,
    /// Activation `a`.
    pub activation: f64,
    /// `D_m⁻¹` of the rest shape.
    pub dm_inv: M3,
    /// Rest volume.
    pub volume: f64,
}

fn mat(cols: [V3; 3]) -> M3 {
    std::array::from_fn(|r| std::array::from_fn(|c| cols[c][r]))
}
fn mul(a: &M3, b: &M3) -> M3 {
    std::array::from_fn(|r| std::array::from_fn(|c| (0..3).map(|k| a[r][k] * b[k][c]).sum()))
}
fn det(m: &M3) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}
fn col(m: &M3, c: usize) -> V3 {
    [m[0][c], m[1][c], m[2][c]]
}
fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn ddot(a: &M3, b: &M3) -> f64 {
    (0..3)
        .flat_map(|r| (0..3).map(move |c| (r, c)))
        .map(|(r, c)| a[r][c] * b[r][c])
        .sum()
}
/// The cofactor matrix `∂J/∂F` (columns `f₁×f₂, f₂×f₀, f₀×f₁`).
fn cofactor(f: &M3) -> M3 {
    let (f0, f1, f2) = (col(f, 0), col(f, 1), col(f, 2));
    mat([cross(f1, f2), cross(f2, f0), cross(f0, f1)])
}

impl Tet {
    /// A tetrahedron on `nodes` with rest positions `x`.
    pub fn new(nodes: [usize; 4], x: &[V3], mu: f64, lambda: f64) -> Result<Self> {
        let dm = Self::edges(nodes, x);
        let d = det(&dm);
        if d.abs() < 1e-300 || !(mu > 0.0 && lambda > 0.0) {
            return Err(DiffsimError::config(format!(
                "tetrahedron {nodes:?}: degenerate, or μ, λ not positive"
            )));
        }
        let inv = |r: usize, c: usize| {
            let (r1, r2, c1, c2) = ((c + 1) % 3, (c + 2) % 3, (r + 1) % 3, (r + 2) % 3);
            (dm[r1][c1] * dm[r2][c2] - dm[r1][c2] * dm[r2][c1]) / d
        };
        Ok(Self {
            nodes,
            mu,
            lambda,
            activation: 0.0,
            dm_inv: std::array::from_fn(|r| std::array::from_fn(|c| inv(r, c))),
            volume: d.abs() / 6.0,
        })
    }

    /// `[x₁ − x₀, x₂ − x₀, x₃ − x₀]` as columns.
    fn edges(n: [usize; 4], x: &[V3]) -> M3 {
        mat(std::array::from_fn(|k| {
            std::array::from_fn(|a| x[n[k + 1]][a] - x[n[0]][a])
        }))
    }

    /// The deformation gradient at `x`.
    pub fn deformation(&self, x: &[V3]) -> M3 {
        mul(&Self::edges(self.nodes, x), &self.dm_inv)
    }

    fn alpha(&self) -> f64 {
        1.0 + 0.75 * self.mu / self.lambda
    }

    /// `V·Ψ(F)` at `x`.
    pub fn energy(&self, x: &[V3]) -> f64 {
        let f = self.deformation(x);
        let ic = ddot(&f, &f);
        let j = det(&f) - self.alpha() + self.activation;
        self.volume
            * (0.5 * self.mu * (ic - 3.0) - 0.5 * self.mu * (ic + 1.0).ln()
                + 0.5 * self.lambda * j * j)
    }

    /// `P = ∂Ψ/∂F` at `F`.
    pub fn stress(&self, f: &M3) -> M3 {
        let ic = ddot(f, f);
        let cof = cofactor(f);
        let s = self.lambda * (det(f) - self.alpha() + self.activation);
        let m = self.mu * (1.0 - 1.0 / (ic + 1.0));
        std::array::from_fn(|r| std::array::from_fn(|c| m * f[r][c] + s * cof[r][c]))
    }

    /// `dP[dF]`, the derivative of the stress along `dF`.
    pub fn stress_differential(&self, f: &M3, df: &M3) -> M3 {
        let ic = ddot(f, f);
        let cof = cofactor(f);
        let s = self.lambda * (det(f) - self.alpha() + self.activation);
        let m = self.mu * (1.0 - 1.0 / (ic + 1.0));
        let dic = 2.0 * ddot(f, df);
        let dj = ddot(&cof, df);
        let (f0, f1, f2) = (col(f, 0), col(f, 1), col(f, 2));
        let (d0, d1, d2) = (col(df, 0), col(df, 1), col(df, 2));
        let add = |a: V3, b: V3| -> V3 { std::array::from_fn(|k| a[k] + b[k]) };
        let dcof = mat([
            add(cross(d1, f2), cross(f1, d2)),
            add(cross(d2, f0), cross(f2, d0)),
            add(cross(d0, f1), cross(f0, d1)),
        ]);
        let dm = self.mu * dic / ((ic + 1.0) * (ic + 1.0));
        std::array::from_fn(|r| {
            std::array::from_fn(|c| {
                m * df[r][c] + dm * f[r][c] + self.lambda * dj * cof[r][c] + s * dcof[r][c]
            })
        })
    }

    /// The gradient of `G : (D_s·D_m⁻¹)` with respect to the four nodes (`G` a 3×3 "stress
    /// times volume"): node `k+1` gets column `k` of `G·D_m⁻ᵀ`, node 0 minus their sum.
    fn node_gradients(&self, g: &M3) -> [V3; 4] {
        let h = mul(g, &transpose(&self.dm_inv));
        let col = |k: usize| [h[0][k], h[1][k], h[2][k]];
        let first = std::array::from_fn(|a| -(h[a][0] + h[a][1] + h[a][2]));
        [first, col(0), col(1), col(2)]
    }

    /// Subtracts the node gradients of `G` from `f` (forces are minus energy gradients).
    fn scatter(&self, g: &M3, f: &mut [V3]) {
        for (k, n) in self.node_gradients(g).iter().enumerate() {
            for a in 0..3 {
                f[self.nodes[k]][a] -= n[a];
            }
        }
    }

    /// The 12×12 Hessian of `V·Ψ` at `x` as 3×3 blocks `H[a][b]` between local nodes `a`,
    /// `b`; with `project`, its projection onto the positive semi-definite matrices (negative
    /// eigenvalues set to 0; Teran et al. 2005), which Newton falls back to where the exact
    /// Hessian of the whole system is not positive definite.
    pub fn hessian_blocks(&self, x: &[V3], project: bool) -> [[M3; 4]; 4] {
        let exact = self.exact_hessian_blocks(x);
        if project { project_psd(&exact) } else { exact }
    }

    fn exact_hessian_blocks(&self, x: &[V3]) -> [[M3; 4]; 4] {
        let f = self.deformation(x);
        // cols[b][c][a] = the node-a gradient for a unit displacement of node b along c.
        let cols: [[[V3; 4]; 3]; 4] = std::array::from_fn(|b| {
            std::array::from_fn(|c| {
                // The edge matrix D_s of that displacement.
                let du: M3 = std::array::from_fn(|r| {
                    std::array::from_fn(|k| match (r == c, b) {
                        (false, _) => 0.0,
                        (true, 0) => -1.0,
                        (true, b) => f64::from(u8::from(k + 1 == b)),
                    })
                });
                let dp = self.stress_differential(&f, &mul(&du, &self.dm_inv));
                self.node_gradients(&dp.map(|r| r.map(|v| v * self.volume)))
            })
        });
        std::array::from_fn(|a| {
            std::array::from_fn(|b| {
                std::array::from_fn(|i| std::array::from_fn(|c| cols[b][c][a][i]))
            })
        })
    }

    /// Elastic forces `−∂(V·Ψ)/∂x` at `x`, added into `f`.
    pub fn add_forces(&self, x: &[V3], f: &mut [V3]) {
        let p = self.stress(&self.deformation(x));
        self.scatter(&p.map(|r| r.map(|c| c * self.volume)), f);
    }

    /// `(∂f/∂x)ᵀ·u = −H·u` (H the energy Hessian, symmetric), added into `out`.
    pub fn add_force_jacobian_transpose(&self, x: &[V3], u: &[V3], out: &mut [V3]) {
        let f = self.deformation(x);
        let df = mul(&Self::edges(self.nodes, u), &self.dm_inv);
        let dp = self.stress_differential(&f, &df);
        self.scatter(&dp.map(|r| r.map(|c| c * self.volume)), out);
    }

    /// `uᵀ·∂f/∂(μ, λ, a)`: the weight `u` of the forces on the element's parameters.
    pub fn parameter_gradients(&self, x: &[V3], u: &[V3]) -> [f64; 3] {
        let f = self.deformation(x);
        let du = mul(&Self::edges(self.nodes, u), &self.dm_inv);
        let ic = ddot(&f, &f);
        let cof = cofactor(&f);
        let j = det(&f) - self.alpha() + self.activation;
        // Σ uᵢ·fᵢ = −V·P:dF(u); ∂P/∂μ = F(1 − 1/(I_C+1)) − ¾cof,
        // ∂P/∂λ = (J − α + a + ¾μ/λ)·cof, ∂P/∂a = λ·cof.
        let (pf, pc) = (ddot(&f, &du), ddot(&cof, &du));
        let v = self.volume;
        [
            -v * ((1.0 - 1.0 / (ic + 1.0)) * pf - 0.75 * pc),
            -v * (j + 0.75 * self.mu / self.lambda) * pc,
            -v * self.lambda * pc,
        ]
    }
}

/// `U·max(Λ, 0)·Uᵀ` of a symmetric 12×12 matrix given as 3×3 blocks (symmetrised first).
fn project_psd(h: &[[M3; 4]; 4]) -> [[M3; 4]; 4] {
    let entry = |r: usize, c: usize| h[r / 3][c / 3][r % 3][c % 3];
    let sym = faer::Mat::from_fn(12, 12, |r, c| 0.5 * (entry(r, c) + entry(c, r)));
    let Ok(eig) = sym.self_adjoint_eigen(faer::Side::Lower) else {
        // The eigen-solver does not fail on a finite symmetric matrix; keep `h` if it does.
        return *h;
    };
    let (u, s) = (eig.U(), eig.S().column_vector());
    let clamped: Vec<f64> = (0..12).map(|k| s[k].max(0.0)).collect();
    let value = |r: usize, c: usize| (0..12).map(|k| u[(r, k)] * clamped[k] * u[(c, k)]).sum();
    std::array::from_fn(|a| {
        std::array::from_fn(|b| {
            std::array::from_fn(|i| std::array::from_fn(|j| value(3 * a + i, 3 * b + j)))
        })
    })
}

fn transpose(m: &M3) -> M3 {
    std::array::from_fn(|r| std::array::from_fn(|c| m[c][r]))
}
