//! A rollout with either of the two steps the studies differentiate, and the adjoint of
//! per-state seeds on demand (the stepper is rebuilt from the owned model, so the rollout can
//! outlive the borrow a stepper holds).

use super::{
    BodyState, Implicit, ImplicitRigidRollout, RigidGrads, RigidModel, RigidScheme, SemiImplicit,
    SemiImplicitRollout, StateBar,
};
use crate::error::Result;
use serde::Serialize;

/// The step differentiated.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DifferentiatedStep {
    /// Warp's semi-implicit step (reverse-mode adjoint).
    SemiImplicit,
    /// Backward Euler (IFT adjoint).
    BackwardEuler,
}

enum Run {
    SemiImplicit(SemiImplicitRollout),
    BackwardEuler(ImplicitRigidRollout),
}

/// One rollout of `model` with step `h` (s), kept for its adjoint.
pub struct Differentiated {
    model: RigidModel,
    h: f64,
    run: Run,
}

impl Differentiated {
    /// Rolls `init` forward `steps` steps with `step`.
    pub fn run(
        model: RigidModel,
        h: f64,
        step: DifferentiatedStep,
        init: &[BodyState],
        steps: usize,
    ) -> Result<Self> {
        let run = match step {
            DifferentiatedStep::SemiImplicit => {
                Run::SemiImplicit(SemiImplicit::new(&model, h)?.rollout(init, steps)?)
            }
            DifferentiatedStep::BackwardEuler => Run::BackwardEuler(
                Implicit::new(&model, h, RigidScheme::BackwardEuler)?.rollout(init, steps)?,
            ),
        };
        Ok(Self { model, h, run })
    }

    /// `states[n][b]`, the initial states first (`steps + 1` entries).
    pub fn states(&self) -> &[Vec<BodyState>] {
        match &self.run {
            Run::SemiImplicit(r) => &r.states,
            Run::BackwardEuler(r) => &r.states,
        }
    }

    /// The adjoint of the seeds `bars[n][b]` on the states (missing entries are zero).
    pub fn adjoint(&self, bars: &[Vec<StateBar>]) -> RigidGrads {
        let checked = "the rollout built this stepper";
        match &self.run {
            Run::SemiImplicit(r) => SemiImplicit::new(&self.model, self.h)
                .expect(checked)
                .adjoint(r, bars),
            Run::BackwardEuler(r) => Implicit::new(&self.model, self.h, RigidScheme::BackwardEuler)
                .expect(checked)
                .adjoint(r, bars),
        }
    }
}
