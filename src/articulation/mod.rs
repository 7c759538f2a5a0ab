//! Articulated rigid bodies in reduced coordinates (Featherstone): kinematic trees of fixed,
//! revolute, prismatic, ball and free joints; inverse dynamics (RNEA), the joint-space inertia
//! (CRBA) and forward dynamics (ABA), written once over any [`Real`] scalar so that dual
//! numbers give their exact derivatives ([`derivatives`]).
//!
//! Conventions: spatial vectors angular first (`[ω; v]`, `[n; f]`); a joint's velocity is the
//! child's motion relative to its parent in the child's frame (a free joint's `[ω; v]` is
//! body-frame, angular first, unlike Pinocchio's linear-first order); configuration derivatives
//! live in the tangent space, `q ⊕ δ` ([`dynamics::integrate`]).

pub mod actuation;
pub mod analytic;
pub mod assets;
pub mod contact;
pub mod derivatives;
pub mod dynamics;
pub mod integrators;
pub mod joint;
pub mod mjcf;
pub mod model;
pub mod muscle;
pub mod spatial;
pub mod urdf;

pub use actuation::joint_forces;
pub use analytic::{RneaPartials, rnea_partials};
pub use contact::{JointContact, contact_forces};
pub use derivatives::{AbaDerivatives, aba_derivatives, rnea_derivatives, rnea_derivatives_dual};
pub use dynamics::{
    aba, crba, difference, integrate, placements, rnea, rnea_with, world_point,
    world_point_jacobian,
};
pub use integrators::{
    JointGrads, JointRollout, JointStepper, Scheme, configuration_bar, difference_jacobian,
};
pub use joint::JointKind;
pub use mjcf::{Actuator, MjcfModel, MjcfOptions, read_mjcf};
pub use model::{Articulation, Drive, Joint, JointLimit, Link};
pub use muscle::{Activation, Muscle, activations, activations_vjp};
pub use spatial::{Inertia, Motion, Transform};
pub use urdf::{LimitLaw, UrdfOptions, read_urdf, urdf_from_str};

/// The scalars the algorithms run on: `f64` and forward-mode dual numbers over it.
pub trait Real: num_dual::DualNum<Primitive = f64> + Copy {}

impl<T: num_dual::DualNum<Primitive = f64> + Copy> Real for T {}
