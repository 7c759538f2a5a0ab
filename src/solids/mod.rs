//! Differentiable solids (f64): mass-spring models, the Warp semi-implicit Euler step with a
//! reverse-mode adjoint, and implicit Euler solved by Newton with an implicit-function-theorem
//! adjoint that reuses the forward factorisation.

pub mod explicit;
pub mod implicit;
pub mod mass_spring;
pub mod scenes;

pub use mass_spring::{MassSpring, Spring, V3};

/// A trajectory: `(x, v)` per step, the initial state first.
#[derive(Clone, Debug)]
pub struct Rollout {
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
    /// Initial positions (fixed particles: 0).
    pub x0: Vec<V3>,
    /// Initial velocities.
    pub v0: Vec<V3>,
}

impl Params {
    /// Zeros shaped like `model`.
    pub fn zeros(model: &MassSpring) -> Self {
        let (ns, np) = (model.springs.len(), model.len());
        Self {
            rest: vec![0.0; ns],
            ke: vec![0.0; ns],
            kd: vec![0.0; ns],
            x0: vec![[0.0; 3]; np],
            v0: vec![[0.0; 3]; np],
        }
    }
}
