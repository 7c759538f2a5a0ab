//! The implicit-function-theorem adjoint of a rollout: per step one solve with the factor the
//! forward Newton solve kept, plus the lagged terms' transposed products.

use super::lagged::{fixed_node_terms, lagged_damping_jacobian};
use super::step::{Implicit, ImplicitRollout, Scheme};
use crate::error::Result;
use crate::solids::contact;
use crate::solids::math::V3;
use crate::solids::{Integrator, Params};
use faer::Mat;
use faer::linalg::solvers::Solve;
use faer::sparse::linalg::solvers::Llt;

impl Implicit<'_> {
    /// Gradients of a loss given its gradients `(x̄_N, v̄_N)` at the last state: one solve
    /// per step with that step's factor.
    pub fn adjoint(&self, r: &ImplicitRollout, xbar: &[V3], vbar: &[V3]) -> Params {
        let m = self.model;
        let mut g = Params::zeros(m);
        let (mut xb, mut vb) = (xbar.to_vec(), vbar.to_vec());
        for n in (0..r.factors.len()).rev() {
            let (xn, vn) = &r.run.states[n];
            let x1 = &r.run.states[n + 1].0;
            let factor = &r.factors[n];
            (xb, vb) = match self.scheme {
                Scheme::BackwardEuler => self.backward_euler_adjoint(
                    r.run.first + n,
                    (xn, vn),
                    x1,
                    factor,
                    (&xb, &vb),
                    &mut g,
                ),
                Scheme::Midpoint => {
                    // x₁ = 2y − xₙ, v₁ = 2v_y − vₙ (free particles; a fixed one stays at
                    // y = xₙ with v = 0), so y = (xₙ + x₁)/2, ȳ = 2x̄₁, v̄_y = 2v̄₁.
                    let y = self.solve_point(&r.run, n);
                    let twice =
                        |w: &[V3]| -> Vec<V3> { w.iter().map(|q| q.map(|c| 2.0 * c)).collect() };
                    let (mut xbn, mut vbn) = self.backward_euler_adjoint(
                        r.run.first + n,
                        (xn, vn),
                        &y,
                        factor,
                        (&twice(&xb), &twice(&vb)),
                        &mut g,
                    );
                    for p in 0..m.len() {
                        for a in 0..3 {
                            xbn[p][a] -= xb[p][a];
                            if m.free(p) {
                                vbn[p][a] -= vb[p][a];
                            }
                        }
                    }
                    (xbn, vbn)
                }
            };
        }
        g.x0 = xb;
        g.v0 = vb;
        g
    }

    /// The adjoint of the backward-Euler solve of step `step`, `(xₙ, vₙ) → (x₁, v₁)`, with
    /// `factor` of the Hessian at `x₁`: adds the parameter and control gradients to `g` and
    /// returns `(x̄ₙ, v̄ₙ)` from `(x̄₁, v̄₁)`.
    pub(super) fn backward_euler_adjoint(
        &self,
        step: usize,
        (xn, vn): (&[V3], &[V3]),
        x1: &[V3],
        factor: &Llt<usize, f64>,
        (xb, vb): (&[V3], &[V3]),
        g: &mut Params,
    ) -> (Vec<V3>, Vec<V3>) {
        let (m, h) = (self.model, self.h);
        let np = m.len();
        // v₁ = (x₁ − xₙ)/h; x₁ solves G = ∇Φ = 0: λ = H⁻¹ (x̄₁ + v̄₁/h).
        let mut rhs = Mat::zeros(self.unknowns(), 1);
        for (p, idx) in self.index.iter().enumerate() {
            if let Some(k) = idx {
                for a in 0..3 {
                    rhs[(3 * k + a, 0)] = xb[p][a] + vb[p][a] / h;
                }
            }
        }
        let lam_u = factor.solve(&rhs);
        let lam: Vec<V3> = (0..np)
            .map(|p| match self.index[p] {
                Some(k) => std::array::from_fn(|a| lam_u[(3 * k + a, 0)]),
                None => [0.0; 3],
            })
            .collect();
        self.adjoint_from_lambda(step, (xn, vn), x1, &lam, (xb, vb), g)
    }

    /// The part of [`Self::backward_euler_adjoint`] after the solve: given the adjoint
    /// `λ = H⁻¹(x̄₁ + v̄₁/h)` per particle (zero on fixed ones), adds the parameter and control
    /// gradients to `g` and returns `(x̄ₙ, v̄ₙ)`. A coupled solve that shares the particles'
    /// unknowns with other bodies calls it with its own `λ`.
    pub(crate) fn adjoint_from_lambda(
        &self,
        step: usize,
        (xn, vn): (&[V3], &[V3]),
        x1: &[V3],
        lam: &[V3],
        (xb, vb): (&[V3], &[V3]),
        g: &mut Params,
    ) -> (Vec<V3>, Vec<V3>) {
        let (m, h) = (self.model, self.h);
        let np = m.len();
        // G ∋ −uₙ: ūₙ = λ (zero on fixed particles).
        if let Some(gu) = g.controls.get_mut(step) {
            gu.copy_from_slice(lam);
        }
        let (mut xbn, mut vbn) = (vec![[0.0; 3]; np], vec![[0.0; 3]; np]);
        for p in 0..np {
            for a in 0..3 {
                if m.free(p) {
                    // G ∋ m(x₁ − xₙ − h vₙ)/h²; v₁ ∋ −xₙ/h.
                    xbn[p][a] += m.mass[p] * lam[p][a] / (h * h) - vb[p][a] / h;
                    vbn[p][a] += m.mass[p] * lam[p][a] / h;
                } else {
                    // A fixed particle stays where it is (v = 0): x̄ passes through.
                    xbn[p][a] += xb[p][a];
                }
            }
        }
        for (k, s) in m.springs.iter().enumerate() {
            let mu: V3 = std::array::from_fn(|a| lam[s.i][a] - lam[s.j][a]);
            let fr = m.frame(s, x1);
            let nh = m.frame(s, xn).n;
            let mn: f64 = (0..3).map(|a| mu[a] * fr.n[a]).sum();
            // ∇ₓᵢE = ke(l − L)n: ∂/∂L = −ke n, ∂/∂ke = (l − L) n; q̄ −= μ·∂G/∂q.
            g.rest[k] += s.ke * mn;
            g.ke[k] -= (fr.len - s.rest) * mn;
            // Damping term T = kd/h·n̂(n̂·ρ), ρ = Δ(x₁) − Δ(xₙ).
            let rho: V3 =
                std::array::from_fn(|a| x1[s.i][a] - x1[s.j][a] - xn[s.i][a] + xn[s.j][a]);
            let (nr, mnh) = (
                (0..3).map(|a| nh[a] * rho[a]).sum::<f64>(),
                (0..3).map(|a| mu[a] * nh[a]).sum::<f64>(),
            );
            g.kd[k] -= mnh * nr / h;
            // E also depends on fixed particles' x₁ (= xₙ): ∂G/∂x₁ of a fixed endpoint.
            if !(m.free(s.i) && m.free(s.j)) {
                let (hess, _) = m.spring_jacobians(s, x1, None);
                for b in 0..3 {
                    // Gᵢ ∋ fs(Δ), Gⱼ ∋ −fs(Δ), J = ∂fs/∂Δ, μ = λᵢ − λⱼ (0 at the fixed end):
                    // a fixed j gets −(∂Gᵢ/∂xⱼ)ᵀλᵢ = Jᵀμ, a fixed i gets −(∂Gⱼ/∂xᵢ)ᵀλⱼ = −Jᵀμ.
                    let jt_mu: f64 = (0..3).map(|a| mu[a] * hess[a][b]).sum();
                    if !m.free(s.i) {
                        xbn[s.i][b] -= jt_mu;
                    }
                    if !m.free(s.j) {
                        xbn[s.j][b] += jt_mu;
                    }
                }
            }
        }
        self.add_lagged_vjp((xn, vn), x1, lam, (&mut xbn, &mut vbn));
        // Tetrahedra: q̄ += λᵀ·∂f/∂q for (μ, λ, a); a fixed node gets (∂f/∂x)ᵀλ.
        let mut fixed = vec![[0.0; 3]; np];
        for k in 0..m.tets.len() {
            let t = m.tet(step, k);
            g.add_tet(step, k, t.parameter_gradients(x1, lam));
            if t.nodes.iter().any(|&p| !m.free(p)) {
                t.add_force_jacobian_transpose(x1, lam, &mut fixed);
            }
        }
        // Cloth: lagged damping and air; a fixed node gets −(H + K/h)λ.
        for t in &m.tris {
            if t.nodes.iter().any(|&p| !m.free(p)) {
                let (hb, kb) = (t.hessian_blocks(x1, false), t.damping_blocks(xn));
                fixed_node_terms(&t.nodes, (&hb, &kb), h, m, lam, &mut fixed);
            }
        }
        for b in &m.bends {
            if b.nodes.iter().any(|&p| !m.free(p)) {
                let (hb, kb) = (b.hessian_blocks(x1, false), b.damping_blocks(xn));
                fixed_node_terms(&b.nodes, (&hb, &kb), h, m, lam, &mut fixed);
            }
        }
        for p in (0..np).filter(|&p| !m.free(p)) {
            for a in 0..3 {
                xbn[p][a] += fixed[p][a];
            }
        }
        (xbn, vbn)
    }

    /// `x̄ₙ −= (∂D/∂xₙ)ᵀλ`, `v̄ₙ −= (∂D/∂vₙ)ᵀλ` for the terms `D` of a step's `G` that are
    /// lagged at `(xₙ, vₙ)`: the damping directions of springs, contacts and cloth, the
    /// friction frames and the air forces (not the inertia).
    pub(super) fn add_lagged_vjp(
        &self,
        (xn, vn): (&[V3], &[V3]),
        x1: &[V3],
        lam: &[V3],
        (xbn, vbn): (&mut [V3], &mut [V3]),
    ) {
        let (m, h) = (self.model, self.h);
        for s in &m.springs {
            // Δₙ̄ = −(∂T/∂Δₙ)ᵀμ, μ = λᵢ − λⱼ.
            let mu: V3 = std::array::from_fn(|a| lam[s.i][a] - lam[s.j][a]);
            let kb = lagged_damping_jacobian(m, s, x1, xn, h);
            for b in 0..3 {
                let d = -(0..3).map(|a| mu[a] * kb[a][b]).sum::<f64>();
                xbn[s.i][b] += d;
                xbn[s.j][b] -= d;
            }
        }
        self.add_probed_lagged_vjp((xn, vn), x1, lam, (xbn, vbn));
    }

    /// The part of [`Self::add_lagged_vjp`] whose Jacobian rows [`Self::lagged_jacobians`]
    /// probes: contact damping and friction, cloth damping and air (the springs' lagged
    /// damping has its 3×3 block in closed form).
    pub(super) fn add_probed_lagged_vjp(
        &self,
        (xn, vn): (&[V3], &[V3]),
        x1: &[V3],
        lam: &[V3],
        (xbn, vbn): (&mut [V3], &mut [V3]),
    ) {
        let (m, h) = (self.model, self.h);
        // Contact damping T = (w/h)·n·(n·(x₁ − xₙ)) with w, n taken at xₙ:
        // ∂T/∂xₙ = (1/h)[r·n·∇wᵀ + w·r·∂n + w·n·((x₁ − xₙ)ᵀ∂n − nᵀ)], x̄ₙ −= (∂T/∂xₙ)ᵀλ;
        // friction likewise through its lagged λ, n and x₁ − xₙ.
        for p in (0..m.len()).filter(|&p| m.free(p)) {
            for shape in &m.shapes {
                let (w, n, dw, dn) = contact::damping_frame(&m.contact, shape, xn[p]);
                let d: V3 = std::array::from_fn(|a| x1[p][a] - xn[p][a]);
                let r: f64 = (0..3).map(|a| n[a] * d[a]).sum();
                let ln: f64 = (0..3).map(|a| lam[p][a] * n[a]).sum();
                for b in 0..3 {
                    let dnd: f64 = (0..3).map(|a| d[a] * dn[a][b]).sum();
                    let ldn: f64 = (0..3).map(|a| lam[p][a] * dn[a][b]).sum();
                    let col = r * ln * dw[b] + w * r * ldn + w * ln * (dnd - n[b]);
                    xbn[p][b] -= col / h;
                }
                if m.contact.mu != 0.0 {
                    let c = &m.contact;
                    let fr = contact::friction_lagged_vjp(c, shape, x1[p], xn[p], h, lam[p]);
                    for b in 0..3 {
                        xbn[p][b] -= fr[b];
                    }
                }
            }
        }
        for t in &m.tris {
            t.add_lagged_vjp((x1, xn, vn), lam, h, xbn, vbn);
        }
        for b in &m.bends {
            b.add_lagged_vjp((x1, xn), lam, h, xbn);
        }
    }
}

impl Integrator for Implicit<'_> {
    type Run = ImplicitRollout;
    fn rollout_from(
        &self,
        first: usize,
        x0: &[V3],
        v0: &[V3],
        steps: usize,
    ) -> Result<ImplicitRollout> {
        Implicit::rollout_from(self, first, x0, v0, steps)
    }
    fn last<'r>(&self, run: &'r ImplicitRollout) -> &'r (Vec<V3>, Vec<V3>) {
        run.run.last()
    }
    fn adjoint(&self, run: &ImplicitRollout, xbar: &[V3], vbar: &[V3]) -> Params {
        Implicit::adjoint(self, run, xbar, vbar)
    }
}
