//! Rigid–soft coupling: rigid bodies and the particles of a [`solids::Model`] (springs,
//! tetrahedra, cloth) in one backward-Euler step, so that a rigid gripper can hold a cloth or
//! a soft body and a gradient flows through both.
//!
//! The step minimises the sum of the two incremental potentials (the particles' of
//! [`crate::solids::implicit`], the bodies' of [`crate::rigid::Implicit`]) plus the coupling
//! potentials, by one Newton solve over every free particle's position and every body's
//! `(c, δθ)` (sparse LU: the rotations' connection term makes the matrix unsymmetric when
//! torques act). The coupling potentials:
//!
//! - **Attachments** ([`Attachment`]): a spring between a body point `c + R a_b` and a
//!   particle, `½k(|d| − L)² + kd/(2h)·|d − dₙ|²` with `d = x_p − c − R a_b` (rest length
//!   `L = 0`: a pin that holds the particle on the body point; the dashpot acts on the whole
//!   relative displacement over the step, lagged at `dₙ`, so it is a potential).
//! - **Body–particle contact** (`particle_contact`): every particle (with
//!   [`CoupledModel::particle_radius`]) against every body's signed distance in the body's
//!   frame, with the bodies' contact law ([`RigidModel::contact`]): the normal potential, the
//!   damping and the regularised Coulomb friction lagged in the body's frame at the step's
//!   start, exactly as between two bodies ([`crate::rigid::pairs`] with the particle as a
//!   body point at zero lever arm). The contacts that act in a step are frozen at its start
//!   (gap below `40·s` plus twice the distance the two can close in the step).
//!
//! The adjoint of a step is one solve with the transposed LU of the converged Newton matrix
//! (implicit function theorem); it gives the gradients of the particles' and the bodies'
//! parameters, initial states, controls and wrenches, the attachments' points and
//! stiffnesses and the friction coefficient.

mod adjoint;
mod explicit;
mod step;
mod terms;

pub use explicit::{CoupledSemiImplicit, CoupledSemiImplicitRollout};
pub use step::{Coupled, CoupledRollout};

use super::body::{BodyState, StateBar};
use super::model::RigidModel;
use super::{RigidGrads, check_finite};
use crate::error::{DiffsimError, Result};
use crate::solids::{Model, Params, V3};

/// A spring between a point of a rigid body and a particle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attachment {
    /// The body.
    pub body: usize,
    /// The point in the body's frame, about its centre of mass (m).
    pub point: V3,
    /// The particle.
    pub particle: usize,
    /// Stiffness (N/m).
    pub stiffness: f64,
    /// Dashpot on the relative motion (N·s/m).
    pub damping: f64,
    /// Rest length (m); 0 pins the particle to the point.
    pub rest: f64,
}

impl Attachment {
    /// A pin (rest length 0) of `particle` to `point` of `body` with `stiffness`, undamped.
    pub fn pin(body: usize, point: V3, particle: usize, stiffness: f64) -> Self {
        Self {
            body,
            point,
            particle,
            stiffness,
            damping: 0.0,
            rest: 0.0,
        }
    }
}

/// Particles and rigid bodies coupled by attachments and contact.
#[derive(Clone, Debug, Default)]
pub struct CoupledModel {
    /// The particles, their elements, controls and obstacles.
    pub soft: Model,
    /// The bodies, their obstacles, contact law and wrenches (its gravity must be the
    /// particles').
    pub rigid: RigidModel,
    /// Springs between body points and particles.
    pub attachments: Vec<Attachment>,
    /// Whether particles touch the bodies (with the bodies' contact law).
    pub particle_contact: bool,
    /// The particles' contact radius against the bodies (m).
    pub particle_radius: f64,
}

impl CoupledModel {
    /// Checks both parts, the attachments and that the parts share gravity.
    pub fn validate(&self) -> Result<()> {
        self.soft.validate()?;
        self.rigid.validate()?;
        if self.soft.gravity != self.rigid.gravity {
            return Err(DiffsimError::config(
                "the particles and the bodies must have the same gravity",
            ));
        }
        let (np, nb) = (self.soft.len(), self.rigid.bodies.len());
        for (k, a) in self.attachments.iter().enumerate() {
            let problem = if a.body >= nb {
                format!("body {} does not exist ({nb} bodies)", a.body)
            } else if a.particle >= np {
                format!("particle {} does not exist ({np} particles)", a.particle)
            } else if !a.point.iter().all(|x| x.is_finite()) {
                "its point is not finite".into()
            } else if !(a.stiffness > 0.0 && a.stiffness.is_finite()) {
                format!("stiffness {} is not positive and finite", a.stiffness)
            } else if !(a.damping >= 0.0 && a.damping.is_finite()) {
                format!("damping {} is negative or not finite", a.damping)
            } else if !(a.rest >= 0.0 && a.rest.is_finite()) {
                format!("rest length {} is negative or not finite", a.rest)
            } else {
                continue;
            };
            return Err(DiffsimError::config(format!("attachment {k}: {problem}")));
        }
        if !(self.particle_radius >= 0.0 && self.particle_radius.is_finite()) {
            return Err(DiffsimError::config(
                "the particles' contact radius must be finite and non-negative",
            ));
        }
        if self.particle_contact
            && self.rigid.contact.ke > 0.0
            && self.rigid.contact.smoothing <= 0.0
        {
            return Err(DiffsimError::config(
                "the contact smoothing length must be positive",
            ));
        }
        Ok(())
    }
}

/// The state of a coupled model.
#[derive(Clone, Debug, PartialEq)]
pub struct CoupledState {
    /// Particle positions (m).
    pub x: Vec<V3>,
    /// Particle velocities (m/s).
    pub v: Vec<V3>,
    /// Body states.
    pub bodies: Vec<BodyState>,
}

impl CoupledState {
    /// Checks the state fits `model` and is finite (step `n` names it in the error).
    fn check(&self, model: &CoupledModel, n: usize) -> Result<()> {
        let np = model.soft.len();
        if self.x.len() != np || self.v.len() != np {
            return Err(DiffsimError::config(format!(
                "{} positions and {} velocities for {np} particles",
                self.x.len(),
                self.v.len()
            )));
        }
        if let Some(p) =
            (0..np).find(|&p| !(self.x[p].iter().chain(&self.v[p])).all(|c| c.is_finite()))
        {
            return Err(DiffsimError::config(format!(
                "particle {p} left the finite range in step {n}"
            )));
        }
        model.rigid.check_states(&self.bodies)?;
        check_finite(n, &self.bodies)
    }
}

/// The loss's gradient with respect to one state (an empty vector is zero).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CoupledBar {
    /// With respect to the particle positions.
    pub x: Vec<V3>,
    /// With respect to the particle velocities.
    pub v: Vec<V3>,
    /// With respect to the body states (rotations in the tangent space).
    pub bodies: Vec<StateBar>,
}

/// The gradient with respect to an attachment's parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttachmentBar {
    /// Its point in the body frame (per m).
    pub point: V3,
    /// Its stiffness (per N/m).
    pub stiffness: f64,
}

/// Gradients with respect to everything a coupled rollout depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct CoupledGrads {
    /// The particles' parameters, initial state and controls.
    pub soft: Params,
    /// The bodies' initial states, wrenches, contact points and the friction coefficient of
    /// the bodies' contact law (through the body–particle contacts too).
    pub rigid: RigidGrads,
    /// Per attachment.
    pub attachments: Vec<AttachmentBar>,
}
