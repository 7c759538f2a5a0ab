//! Rigid bodies in maximal coordinates (f64): centre of mass, unit-quaternion orientation,
//! linear and world angular velocity; mass and inertia from shapes; contact of body points
//! against static obstacles with the smooth law of [`crate::solids::contact`]. Three steps,
//! each with a hand-written adjoint whose rotation derivatives live in the tangent space
//! (left perturbations `exp([δθ]×)·R`, never raw quaternion entries):
//!
//! - [`SemiImplicit`]: Warp's semi-implicit step (explicit gyroscopic term), reverse mode;
//! - [`Implicit`] with [`RigidScheme::BackwardEuler`]: the incremental potential of the body's
//!   material points minimised by Newton over `(c, δθ)` re-centred each iteration, with the
//!   implicit-function-theorem adjoint reusing the converged Newton matrix;
//! - [`Implicit`] with [`RigidScheme::Midpoint`]: the implicit midpoint rule on Euler's
//!   equations with the Cayley update, which keeps a torque-free body's energy and world
//!   angular momentum to round-off.

pub mod balls;
pub mod body;
pub mod coupled;
pub mod differentiated;
mod implicit;
pub mod model;
pub mod pairs;
pub mod semi_implicit;
pub mod sliding;
pub mod so3;
pub mod step_contacts;

pub use body::{BodyShape, BodyState, RigidBody, StateBar};
pub use coupled::{
    Attachment, AttachmentBar, Coupled, CoupledBar, CoupledGrads, CoupledModel, CoupledRollout,
    CoupledSemiImplicit, CoupledSemiImplicitRollout, CoupledState,
};
pub use differentiated::{Differentiated, DifferentiatedStep};
pub use implicit::{Implicit, ImplicitRigidRollout, RigidScheme};
pub use model::{RigidModel, Wrench};
pub use semi_implicit::{SemiImplicit, SemiImplicitRollout};

use crate::error::{DiffsimError, Result};
use crate::solids::contact::Shape;
use crate::solids::math::V3;

/// Gradients with respect to the initial states, the external wrenches and the contact
/// parameters (the identification parameters of a body: where its contact points sit and how
/// much its contacts rub).
#[derive(Clone, Debug, PartialEq)]
pub struct RigidGrads {
    /// Per body: the gradient at its initial state (rotation in the tangent space).
    pub init: Vec<StateBar>,
    /// Per step and body: the gradient with respect to the external wrench.
    pub wrenches: Vec<Vec<Wrench>>,
    /// Per body and contact point: the gradient with respect to the point's position in
    /// the body frame (m), through its contacts with the obstacles and the other bodies.
    pub points: Vec<Vec<V3>>,
    /// The gradient with respect to the contact law's friction coefficient `μ`.
    pub friction: f64,
}

impl RigidGrads {
    fn zeros(model: &RigidModel, steps: usize) -> Self {
        let nb = model.bodies.len();
        Self {
            init: vec![StateBar::default(); nb],
            wrenches: vec![vec![Wrench::default(); nb]; steps],
            points: model
                .bodies
                .iter()
                .map(|b| vec![[0.0; 3]; b.points.len()])
                .collect(),
            friction: 0.0,
        }
    }
}

fn check_dt(h: f64) -> Result<()> {
    if h > 0.0 && h.is_finite() {
        Ok(())
    } else {
        Err(DiffsimError::config(format!(
            "the time step must be positive and finite, got {h}"
        )))
    }
}

fn check_finite(n: usize, states: &[BodyState]) -> Result<()> {
    match states.iter().position(|s| s.check().is_err()) {
        None => Ok(()),
        Some(b) => Err(DiffsimError::config(format!(
            "body {b} left the finite range in step {n} (time step too large for the contact \
             stiffness?)"
        ))),
    }
}

/// Per body, the obstacles grown by its contact radius (none when contact is off).
fn body_obstacles(model: &RigidModel) -> Vec<Vec<Shape>> {
    (0..model.bodies.len())
        .map(|b| {
            if !model.obstacles.is_empty() && model.contact.ke > 0.0 {
                model.obstacles_for(b)
            } else {
                Vec::new()
            }
        })
        .collect()
}
