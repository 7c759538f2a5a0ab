//! Differentiable solids (f64): particles with springs, stable Neo-Hookean tetrahedra, cloth
//! (membranes, bending, lift/drag) and smooth contact; the Warp semi-implicit Euler step with
//! a reverse-mode adjoint, and implicit Euler solved by Newton with an implicit-function-theorem
//! adjoint that reuses the forward factorisation.

pub mod cloth;
pub mod cloth_lanes;
pub mod contact;
pub mod explicit;
pub mod fem;
pub mod implicit;
pub mod mass_spring;
pub mod math;
pub mod mesh_sdf;
pub mod scenes;

pub use mass_spring::{Model, Spring};
pub use math::{M3, V3};

/// `|x_p − target|²` for particle `p`, and its gradient with respect to every position.
pub fn point_loss(x: &[V3], p: usize, target: V3) -> (f64, Vec<V3>) {
    let d: V3 = std::array::from_fn(|a| x[p][a] - target[a]);
    let mut g = vec![[0.0; 3]; x.len()];
    g[p] = d.map(|c| 2.0 * c);
    (d.iter().map(|c| c * c).sum(), g)
}

/// The centre of mass of `x` (unweighted), its squared distance to `target` and that
/// distance's gradient with respect to every position.
pub fn com_loss(x: &[V3], target: V3) -> (f64, Vec<V3>) {
    let d = com_offset(x, target);
    let g: V3 = std::array::from_fn(|a| 2.0 * d[a] / x.len() as f64);
    (d.iter().map(|c| c * c).sum(), vec![g; x.len()])
}

/// The centre of mass of `x` (unweighted) minus `target`.
fn com_offset(x: &[V3], target: V3) -> V3 {
    let n = x.len() as f64;
    std::array::from_fn(|a| x.iter().map(|p| p[a]).sum::<f64>() / n - target[a])
}

/// The residuals `r = centre of mass − target` of [`com_loss`] (which is `|r|²`) and their
/// gradients `∂r_a/∂x` (`1/n` along axis `a` at every particle), for Gauss-Newton.
pub fn com_residuals(x: &[V3], target: V3) -> (Vec<f64>, Vec<Vec<V3>>) {
    let n = x.len() as f64;
    let r = com_offset(x, target).to_vec();
    let seeds = (0..3)
        .map(|a| {
            let mut e = [0.0; 3];
            e[a] = 1.0 / n;
            vec![e; x.len()]
        })
        .collect();
    (r, seeds)
}

/// A trajectory: `(x, v)` per step, the initial state first.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// The step number of the first state (0 unless the rollout is a later segment of a
    /// longer one): its step `n` uses the controls of step `first + n`.
    pub first: usize,
    /// States `(x_n, v_n)`, `n = 0..=N`.
    pub states: Vec<(Vec<V3>, Vec<V3>)>,
}

impl Rollout {
    /// The last state.
    pub fn last(&self) -> &(Vec<V3>, Vec<V3>) {
        self.states.last().expect("a rollout has its initial state")
    }
}

/// Gradients with respect to everything an optimisation may change.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Per spring rest length.
    pub rest: Vec<f64>,
    /// Per spring stiffness.
    pub ke: Vec<f64>,
    /// Per spring damping.
    pub kd: Vec<f64>,
    /// Per tetrahedron μ, λ and activation.
    pub mu: Vec<f64>,
    /// See `mu`.
    pub lambda: Vec<f64>,
    /// See `mu`.
    pub activation: Vec<f64>,
    /// Initial positions.
    pub x0: Vec<V3>,
    /// Initial velocities.
    pub v0: Vec<V3>,
    /// Per-step control forces, shaped like [`Model::controls`].
    pub controls: Vec<Vec<V3>>,
    /// Per-step tetrahedron activations, shaped like [`Model::activations`] (a step with its
    /// own activations adds nothing to `activation`).
    pub activations: Vec<Vec<f64>>,
}

impl Params {
    /// Zeros shaped like `model`.
    pub fn zeros(model: &Model) -> Self {
        let (ns, np, nt) = (model.springs.len(), model.len(), model.tets.len());
        Self {
            rest: vec![0.0; ns],
            ke: vec![0.0; ns],
            kd: vec![0.0; ns],
            mu: vec![0.0; nt],
            lambda: vec![0.0; nt],
            activation: vec![0.0; nt],
            x0: vec![[0.0; 3]; np],
            v0: vec![[0.0; 3]; np],
            controls: vec![vec![[0.0; 3]; np]; model.controls.len()],
            activations: vec![vec![0.0; nt]; model.activations.len()],
        }
    }
}

impl Params {
    /// Adds tetrahedron `k`'s gradients `[μ̄, λ̄, ā]` of step `n`: the activation's to that
    /// step's own when the model has per-step activations there (`activations` is shaped like
    /// the model's, [`Params::zeros`]).
    pub fn add_tet(&mut self, n: usize, k: usize, [mu, lambda, a]: [f64; 3]) {
        self.mu[k] += mu;
        self.lambda[k] += lambda;
        match self.activations.get_mut(n) {
            Some(row) => row[k] += a,
            None => self.activation[k] += a,
        }
    }

    /// Adds the parameter, control and activation gradients of `other`; the state gradients
    /// are left.
    pub fn add_parameters(&mut self, other: &Params) {
        for (a, b) in self.controls.iter_mut().zip(&other.controls) {
            for (p, q) in a.iter_mut().zip(b) {
                (0..3).for_each(|k| p[k] += q[k]);
            }
        }
        for (a, b) in self.activations.iter_mut().zip(&other.activations) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        for (a, b) in [
            (&mut self.rest, &other.rest),
            (&mut self.ke, &other.ke),
            (&mut self.kd, &other.kd),
            (&mut self.mu, &other.mu),
            (&mut self.lambda, &other.lambda),
            (&mut self.activation, &other.activation),
        ] {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
    }
}

/// What segment checkpointing needs from an integrator.
pub trait Integrator {
    /// A rollout with what its adjoint needs (states, factors).
    type Run;
    /// `steps` steps from `(x0, v0)`, the state of step `first`.
    fn rollout_from(
        &self,
        first: usize,
        x0: &[V3],
        v0: &[V3],
        steps: usize,
    ) -> crate::error::Result<Self::Run>;
    /// The last state of a rollout.
    fn last<'r>(&self, run: &'r Self::Run) -> &'r (Vec<V3>, Vec<V3>);
    /// Gradients given `(x̄, v̄)` at the last state; `x0`/`v0` of the result are the
    /// gradients at the rollout's first state.
    fn adjoint(&self, run: &Self::Run, xbar: &[V3], vbar: &[V3]) -> Params;
}

/// Segment checkpointing for the solids integrators: the trajectory is run once keeping only
/// every `k`-th state; the backward pass recomputes one segment at a time from its start and
/// runs the integrator's adjoint on it, seeded with the gradient arriving at the segment's end
/// (`seed(last state)` gives the loss gradient `(x̄_N, v̄_N)`). Memory: `N/k + k` states
/// instead of `N + 1`; the cost: one extra forward pass. Returns the gradients and the largest
/// number of states held at once.
pub fn segmented_gradient<I: Integrator>(
    integrator: &I,
    (x0, v0): (&[V3], &[V3]),
    steps: usize,
    k: usize,
    seed: impl Fn(&[V3], &[V3]) -> (Vec<V3>, Vec<V3>),
) -> crate::error::Result<(Params, usize)> {
    if k == 0 {
        return Err(crate::error::DiffsimError::config(
            "segments must be at least 1 step long",
        ));
    }
    let mut starts = vec![(x0.to_vec(), v0.to_vec())];
    let mut n = 0;
    while n + k < steps {
        let (x, v) = starts.last().expect("one start");
        let seg = integrator.rollout_from(n, x, v, k)?;
        starts.push(integrator.last(&seg).clone());
        n += k;
    }
    let held = starts.len() + k + 1;
    let mut total: Option<Params> = None;
    let mut bar: Option<(Vec<V3>, Vec<V3>)> = None;
    while let Some((x, v)) = starts.pop() {
        let first = starts.len() * k;
        let seg = integrator.rollout_from(first, &x, &v, steps.min(first + k) - first)?;
        let (xb, vb) = match bar.take() {
            Some(b) => b,
            None => {
                let (xe, ve) = integrator.last(&seg);
                seed(xe, ve)
            }
        };
        let g = integrator.adjoint(&seg, &xb, &vb);
        bar = Some((g.x0.clone(), g.v0.clone()));
        match &mut total {
            Some(t) => t.add_parameters(&g),
            None => total = Some(g),
        }
    }
    let mut total = total.expect("at least one segment");
    let (x0b, v0b) = bar.expect("at least one segment");
    (total.x0, total.v0) = (x0b, v0b);
    Ok((total, held))
}
