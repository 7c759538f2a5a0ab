//! Solids tests, one file per module of `diffsim::solids`: forces and Jacobians against
//! finite differences, the explicit (Warp) and implicit (Newton + IFT; backward Euler and
//! implicit midpoint) adjoints against f64 central differences, contact, tetrahedra, sparse
//! Gauss-Newton.

mod common;
mod contact;
mod explicit;
mod fem;
mod gauss_newton;
mod implicit_adjoint;
mod implicit_step;
mod mass_spring;
