//! Articulations in reduced coordinates: dynamics against Pinocchio and closed forms, and the
//! joint-space integrators with their adjoints, drives and limits.

mod actuation;
mod contact;
mod dynamics;
mod integrators;
mod maximal;
mod mjcf;
mod models;
mod muscle;
mod urdf;
