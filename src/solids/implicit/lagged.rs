//! The terms of a step taken at its start `(xₙ, vₙ)` (cloth damping, air, controls, the
//! springs' lagged damping direction), their element blocks, and the probes that recover
//! their derivatives from transposed products.

use crate::solids::mass_spring::{Model, Spring};
use crate::solids::math::{M3, V3};

/// The terms of step `n` that depend on `(xₙ, vₙ)` and `n` alone: cloth damping matrices
/// (node blocks, `Φ ∋ ½ΔᵀKΔ/h`), the air force per triangle and the control force per
/// particle.
pub(crate) struct Lagged {
    /// The step (it picks the controls and the tetrahedra's activations).
    pub(super) step: usize,
    pub(super) tri: Vec<[[M3; 3]; 3]>,
    pub(super) bend: Vec<[[M3; 4]; 4]>,
    pub(super) air: Vec<V3>,
    pub(super) control: Vec<V3>,
}

impl Lagged {
    pub(crate) fn new(m: &Model, n: usize, xn: &[V3], vn: &[V3]) -> Self {
        Self {
            step: n,
            tri: m.tris.iter().map(|t| t.damping_blocks(xn)).collect(),
            bend: m.bends.iter().map(|b| b.damping_blocks(xn)).collect(),
            air: m.tris.iter().map(|t| t.air_force(xn, vn)).collect(),
            control: (0..m.len()).map(|p| m.control(n, p)).collect(),
        }
    }
}

/// `Φ ∋ ½·ΔᵀKΔ/h` and `f −= KΔ/h` for a damping `K` (node blocks) on `Δ = x − xₙ`.
pub(super) fn damping_term<const N: usize>(
    nodes: &[usize; N],
    k: &[[M3; N]; N],
    (x, xn): (&[V3], &[V3]),
    h: f64,
    (phi, f): (&mut f64, &mut [V3]),
) {
    let d: [V3; N] = nodes.map(|p| std::array::from_fn(|a| x[p][a] - xn[p][a]));
    for (a, &na) in nodes.iter().enumerate() {
        let kd: V3 = std::array::from_fn(|r| {
            (0..N)
                .map(|b| (0..3).map(|c| k[a][b][r][c] * d[b][c]).sum::<f64>())
                .sum()
        });
        for r in 0..3 {
            *phi += 0.5 * d[a][r] * kd[r] / h;
            f[na][r] -= kd[r] / h;
        }
    }
}

/// The probes that recover the lagged terms' `∂D/∂xₙ` rows from their transposed products.
pub(super) struct LaggedProbes {
    /// Per particle: itself and every particle it shares a triangle or hinge with (the only
    /// columns its rows of the probed `∂D/∂xₙ` can have).
    pub(super) neighbours: Vec<Vec<usize>>,
    /// Free particles grouped so that the neighbourhoods within a group are disjoint (one
    /// probe per group and axis); none when the model has no probed terms (no contact, no
    /// cloth).
    pub(super) colours: Vec<Vec<usize>>,
}

impl LaggedProbes {
    pub(super) fn new(m: &Model) -> Self {
        let mut neighbours: Vec<Vec<usize>> = (0..m.len()).map(|p| vec![p]).collect();
        let groups = m.tris.iter().map(|t| t.nodes.to_vec());
        let groups = groups.chain(m.bends.iter().map(|b| b.nodes.to_vec()));
        for nodes in groups {
            for &p in &nodes {
                neighbours[p].extend(nodes.iter().copied().filter(|&q| q != p));
            }
        }
        neighbours.iter_mut().for_each(|v| {
            v.sort_unstable();
            v.dedup();
        });
        // Greedy distance-2 colouring of the free particles.
        let mut colour_of = vec![usize::MAX; m.len()];
        let mut colours: Vec<Vec<usize>> = Vec::new();
        let probed = !(m.shapes.is_empty() && m.tris.is_empty() && m.bends.is_empty());
        for p in (0..m.len()).filter(|&p| probed && m.free(p)) {
            let taken: std::collections::BTreeSet<usize> = neighbours[p]
                .iter()
                .flat_map(|&r| &neighbours[r])
                .map(|&q| colour_of[q])
                .collect();
            let c = (0..).find(|c| !taken.contains(c)).expect("a free colour");
            if c == colours.len() {
                colours.push(Vec::new());
            }
            colours[c].push(p);
            colour_of[p] = c;
        }
        Self {
            neighbours,
            colours,
        }
    }
}

/// `∂T/∂Δₙ = kd/h·[−n̂n̂ᵀ + ((n̂·ρ)I + n̂ρᵀ)(I − n̂n̂ᵀ)/lₙ]` of a spring's damping term
/// `T = kd/h·n̂(n̂·ρ)` (`ρ = Δ(x₁) − Δ(xₙ)`, `n̂` and `lₙ` its direction and length at `xₙ`)
/// with respect to `Δₙ = xᵢ − xⱼ` at `xₙ`.
pub(super) fn lagged_damping_jacobian(m: &Model, s: &Spring, x1: &[V3], xn: &[V3], h: f64) -> M3 {
    let frame = m.frame(s, xn);
    let (nh, ln) = (frame.n, frame.len.max(1e-300));
    let rho: V3 = std::array::from_fn(|a| x1[s.i][a] - x1[s.j][a] - xn[s.i][a] + xn[s.j][a]);
    let nr: f64 = (0..3).map(|a| nh[a] * rho[a]).sum();
    let id = |a: usize, b: usize| f64::from(u8::from(a == b));
    let proj = |a: usize, b: usize| id(a, b) - nh[a] * nh[b];
    std::array::from_fn(|a| {
        std::array::from_fn(|b| {
            let inner: f64 = (0..3)
                .map(|c| (nr * id(a, c) + nh[a] * rho[c]) * proj(c, b))
                .sum();
            s.kd / h * (-nh[a] * nh[b] + inner / ln)
        })
    })
}

/// Emits `H + K/h` of a cloth element (node blocks) through `block(pᵢ, pⱼ, B, sign)`.
pub(super) fn cloth_blocks<const N: usize>(
    block: &mut impl FnMut(usize, usize, &M3, f64),
    nodes: &[usize; N],
    (hb, kb): (&[[M3; N]; N], &[[M3; N]; N]),
    h: f64,
) {
    for (a, &na) in nodes.iter().enumerate() {
        for (b, &nb) in nodes.iter().enumerate() {
            block(na, nb, &combine(&hb[a][b], &kb[a][b], 1.0 / h), 1.0);
        }
    }
}

/// `H + s·K` for 3×3 blocks.
pub(super) fn combine(hb: &M3, kb: &M3, s: f64) -> M3 {
    std::array::from_fn(|r| std::array::from_fn(|c| hb[r][c] + s * kb[r][c]))
}

/// `out[p] −= Σ_b (H + K/h)[a][b]·λ_b` for the fixed nodes `p = nodes[a]` of an element.
pub(super) fn fixed_node_terms<const N: usize>(
    nodes: &[usize; N],
    (hb, kb): (&[[M3; N]; N], &[[M3; N]; N]),
    h: f64,
    m: &Model,
    lam: &[V3],
    out: &mut [V3],
) {
    for (a, &na) in nodes.iter().enumerate().filter(|(_, p)| !m.free(**p)) {
        for (b, &nb) in nodes.iter().enumerate() {
            let blk = combine(&hb[a][b], &kb[a][b], 1.0 / h);
            for r in 0..3 {
                out[na][r] -= (0..3).map(|c| blk[r][c] * lam[nb][c]).sum::<f64>();
            }
        }
    }
}
