//! A rigid-body model: bodies, gravity, static obstacles with the smooth contact law of
//! [`crate::solids::contact`] applied at the bodies' contact points, angular damping and
//! per-step external wrenches.

use super::body::{BodyState, RigidBody};
use crate::error::{DiffsimError, Result};
use crate::solids::contact::{Contact, Shape};
use crate::solids::math::V3;

/// A force (N) through the centre of mass and a torque (N·m), both in the world frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Wrench {
    /// Force (N).
    pub f: V3,
    /// Torque (N·m).
    pub t: V3,
}

/// Free rigid bodies against static obstacles.
#[derive(Clone, Debug, Default)]
pub struct RigidModel {
    /// The bodies.
    pub bodies: Vec<RigidBody>,
    /// Gravity (m/s²).
    pub gravity: V3,
    /// Static obstacles.
    pub obstacles: Vec<Shape>,
    /// The contact law between body points and obstacles.
    pub contact: Contact,
    /// Warp's angular damping (1/s): the semi-implicit step scales `ω` by `1 − α·h`.
    pub angular_damping: f64,
    /// External wrenches per step and body (`wrenches[n][b]`); steps past the end get none.
    pub wrenches: Vec<Vec<Wrench>>,
    /// Whether bodies touch each other (with [`RigidModel::contact`]'s law): the points of
    /// one against the signed distance of the other (spheres and boxes).
    pub body_contact: bool,
}

impl RigidModel {
    /// Checks the bodies, the contact parameters and the wrench table's shape.
    pub fn validate(&self) -> Result<()> {
        for (k, b) in self.bodies.iter().enumerate() {
            b.validate()
                .map_err(|e| DiffsimError::config(format!("body {k}: {e}")))?;
        }
        let c = &self.contact;
        let finite = [c.ke, c.kd, c.mu, c.smoothing, self.angular_damping]
            .iter()
            .chain(&self.gravity)
            .all(|x| x.is_finite());
        if !finite || c.ke < 0.0 || c.kd < 0.0 || c.mu < 0.0 {
            return Err(DiffsimError::config(
                "contact stiffness, damping and friction must be finite and non-negative",
            ));
        }
        if self.has_contact() && c.smoothing <= 0.0 {
            return Err(DiffsimError::config(
                "the contact smoothing length must be positive",
            ));
        }
        if let Some(n) = self
            .wrenches
            .iter()
            .position(|w| w.len() != self.bodies.len())
        {
            return Err(DiffsimError::config(format!(
                "step {n} has wrenches for {} bodies, the model has {}",
                self.wrenches[n].len(),
                self.bodies.len()
            )));
        }
        Ok(())
    }

    /// The external wrench on body `b` during step `n`.
    pub fn wrench(&self, n: usize, b: usize) -> Wrench {
        self.wrenches.get(n).map_or(Wrench::default(), |w| w[b])
    }

    /// Checks `states` fits the model (one finite state with a unit quaternion per body).
    pub fn check_states(&self, states: &[BodyState]) -> Result<()> {
        if states.len() != self.bodies.len() {
            return Err(DiffsimError::config(format!(
                "{} body states for {} bodies",
                states.len(),
                self.bodies.len()
            )));
        }
        states.iter().try_for_each(BodyState::check)
    }

    /// Whether any obstacle or other body can push a body.
    pub fn has_contact(&self) -> bool {
        (!self.obstacles.is_empty() || self.body_contact) && self.contact.ke > 0.0
    }

    /// The obstacles as body `b`'s contact points see them (grown by its radius); a box or
    /// mesh body's points skip static balls, whose centres touch the body instead
    /// ([`super::balls`]).
    pub fn obstacles_for(&self, b: usize) -> Vec<Shape> {
        let r = self.bodies[b].radius;
        let skip_balls = self.bodies[b].touches_balls_by_centre();
        self.obstacles
            .iter()
            .filter(|s| !(skip_balls && matches!(s, Shape::Sphere { .. })))
            .map(|s| s.inflated(r))
            .collect()
    }
}
