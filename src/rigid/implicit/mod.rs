//! Implicit rigid-body steps with implicit-function-theorem adjoints.
//!
//! **Backward Euler** minimises the incremental potential of the body's material points
//! `x = c + R r` over one step `h`:
//!
//! ```text
//! Φ(c, R) = m/(2h²)|c − c̃|² − tr(R J_m Q̃ᵀ)/h² − (m g + f)·c + V(c, R)
//! c̃ = cₙ + h vₙ,   Q̃ = (I + h[ωₙ]×) Rₙ,   J_m = ½tr(J)·1 − J
//! ```
//!
//! (`V`: the contact potentials of the body points; friction and damping lagged at the
//! points' previous positions as for particles), plus the external torque `τ` as the work
//! `τ·δθ` of a world-frame increment. Newton runs on `(c, δθ)` with `R = exp([δθ]×)·R̄`
//! re-centred at every iterate `R̄`, so there is no constraint and no singularity. With
//! `B = R̄ J_m Q̃ᵀ`, the rotational gradient is `vee(B − Bᵀ)/h² − τ` and the exact Jacobian of
//! that re-centred gradient field is `(tr(B)·1 − ½(B + Bᵀ))/h² − ½[g_Φ]×` (`g_Φ` the
//! potential part of the gradient; the skew term is the connection of the re-centring, and
//! the contact points add `Jᵀ∇²V J` with `J = [1, −[R̄a]×]` and a second-order term).
//! Afterwards `vₙ₊₁ = (c − cₙ)/h`, `ωₙ₊₁ = log(R Rₙᵀ)/h`. The adjoint solves the transposed
//! Newton matrix of the converged step once (its LU factors are kept).
//!
//! **Implicit midpoint** on Euler's equations in the body frame with the Cayley update:
//! `J(Ω₁ − Ω₀) = h (J Ω_m) × Ω_m + h Rₙᵀτ`, `Ω_m = (Ω₀ + Ω₁)/2`, `q₁ = q₀ ⊗ cay(hΩ_m)`
//! (the quaternion `(1, hΩ_m/2)` normalised), and `v₁ = v₀ + h(f/m + g)`,
//! `c₁ = c₀ + h(v₀ + v₁)/2`. For a torque-free body the midpoint rule keeps the quadratic
//! invariants of Euler's equations (energy, `|JΩ|`) and the Cayley update makes the world
//! angular momentum `R J Ω` exactly constant. External forces and torques only: it refuses a
//! model with contact.

pub(in crate::rigid) mod euler;
mod midpoint;
mod points;

use super::body::{BodyState, StateBar};
use super::model::RigidModel;
use super::step_contacts::{ContactCandidates, StepContacts};
use super::{RigidGrads, body_obstacles, check_dt, check_finite};
use crate::error::{DiffsimError, Result};
use crate::solids::contact::Shape;
use euler::EulerTape;
use midpoint::MidpointTape;

/// The implicit scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RigidScheme {
    /// Backward Euler on the incremental potential: first order, damps rotation and
    /// translation; contact supported.
    #[default]
    BackwardEuler,
    /// Implicit midpoint with the Cayley update: second order, conserves a free body's
    /// energy and angular momentum; no contact.
    Midpoint,
}

/// The implicit stepper.
pub struct Implicit<'a> {
    model: &'a RigidModel,
    h: f64,
    scheme: RigidScheme,
    obstacles: Vec<Vec<Shape>>,
    candidates: ContactCandidates,
    /// Newton tolerance on the residual, relative to the inertia scale.
    tol: f64,
    max_iters: usize,
}

/// What one step keeps for its adjoint.
enum StepTape {
    /// One tape per group of touching bodies.
    Euler(Vec<EulerTape>),
    /// One tape per body.
    Midpoint(Vec<MidpointTape>),
}

/// A trajectory with what the adjoint needs.
pub struct ImplicitRigidRollout {
    /// `states[n][b]`, the initial states first.
    pub states: Vec<Vec<BodyState>>,
    tapes: Vec<StepTape>,
    /// Newton iterations per step and group of touching bodies (midpoint: per body).
    pub newton_iters: Vec<Vec<usize>>,
}

impl<'a> Implicit<'a> {
    /// A stepper for `model` with step `h` (s).
    pub fn new(model: &'a RigidModel, h: f64, scheme: RigidScheme) -> Result<Self> {
        model.validate()?;
        check_dt(h)?;
        if scheme == RigidScheme::Midpoint && model.has_contact() {
            return Err(DiffsimError::config(
                "the rigid midpoint scheme takes external forces only; use backward Euler with contact",
            ));
        }
        let obstacles = body_obstacles(model);
        Ok(Self {
            model,
            h,
            scheme,
            candidates: ContactCandidates::of(model, &obstacles),
            obstacles,
            tol: 1e-14,
            max_iters: 50,
        })
    }

    /// The directed body pairs and sliding points that act in a step from `start` (frozen
    /// for the step).
    pub(crate) fn active_contacts(&self, start: &[BodyState]) -> StepContacts {
        StepContacts::at(self.model, &self.candidates, &self.obstacles, start, self.h)
    }

    /// `steps` steps from `init`.
    pub fn rollout(&self, init: &[BodyState], steps: usize) -> Result<ImplicitRigidRollout> {
        self.model.check_states(init)?;
        let nb = init.len();
        let mut run = ImplicitRigidRollout {
            states: vec![init.to_vec()],
            tapes: Vec::with_capacity(steps),
            newton_iters: Vec::with_capacity(steps),
        };
        for n in 0..steps {
            let start = &run.states[n];
            let mut next = start.clone();
            let mut iters = Vec::new();
            let tape = match self.scheme {
                RigidScheme::BackwardEuler => {
                    let active = self.active_contacts(start);
                    let mut tapes = Vec::new();
                    for group in euler::groups(nb, &active) {
                        let (states, tape, it) = self.euler_step(n, group, start)?;
                        for (&b, s) in tape.bodies.iter().zip(states) {
                            next[b] = s;
                        }
                        tapes.push(tape);
                        iters.push(it);
                    }
                    StepTape::Euler(tapes)
                }
                RigidScheme::Midpoint => {
                    let mut tapes = Vec::new();
                    for (b, s) in start.iter().enumerate() {
                        let (state, tape, it) =
                            self.midpoint_step(b, s, self.model.wrench(n, b))?;
                        next[b] = state;
                        tapes.push(tape);
                        iters.push(it);
                    }
                    StepTape::Midpoint(tapes)
                }
            };
            check_finite(n, &next)?;
            run.states.push(next);
            run.tapes.push(tape);
            run.newton_iters.push(iters);
        }
        Ok(run)
    }

    /// Gradients given `state_bars[n][b]`, the loss's gradients with respect to every state
    /// (an empty entry is zero).
    pub fn adjoint(&self, run: &ImplicitRigidRollout, state_bars: &[Vec<StateBar>]) -> RigidGrads {
        let steps = run.states.len() - 1;
        let nb = self.model.bodies.len();
        let mut grads = RigidGrads::zeros(self.model, steps);
        let seed = |n: usize, b: usize| -> StateBar {
            state_bars
                .get(n)
                .and_then(|v| v.get(b))
                .copied()
                .unwrap_or_default()
        };
        let mut bars: Vec<StateBar> = (0..nb).map(|b| seed(steps, b)).collect();
        for n in (0..steps).rev() {
            let (start, end) = (&run.states[n], &run.states[n + 1]);
            let mut prev = vec![StateBar::default(); nb];
            match &run.tapes[n] {
                StepTape::Euler(tapes) => {
                    for tape in tapes {
                        let params = (&mut grads.points[..], &mut grads.friction);
                        let wrenches = &mut grads.wrenches[n];
                        self.euler_vjp(tape, start, end, &bars, &mut prev, wrenches, params);
                    }
                }
                StepTape::Midpoint(tapes) => {
                    for (b, tape) in tapes.iter().enumerate() {
                        let w = self.model.wrench(n, b);
                        let (p, wb) = self.midpoint_vjp(b, &start[b], &end[b], w, tape, &bars[b]);
                        prev[b] = p;
                        grads.wrenches[n][b] = wb;
                    }
                }
            }
            for (b, p) in prev.iter_mut().enumerate() {
                let add = seed(n, b);
                for i in 0..3 {
                    p.c[i] += add.c[i];
                    p.theta[i] += add.theta[i];
                    p.v[i] += add.v[i];
                    p.w[i] += add.w[i];
                }
            }
            bars = prev;
        }
        grads.init = bars;
        grads
    }
}
