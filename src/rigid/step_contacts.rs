//! The contacts that act in a step, chosen at its start and frozen for it: the active body
//! pairs ([`super::pairs`]), the points sliding along capsule axes ([`super::sliding`]) and
//! the static balls touching box and mesh bodies ([`super::balls`]).

use super::balls;
use super::body::BodyState;
use super::model::RigidModel;
use super::pairs;
use super::sliding::{Candidate, SlidingPoint, Target, sliding_point};
use crate::solids::contact::Shape;

/// Everything that may touch in a model, found once per stepper: the directed body pairs
/// ([`pairs::contact_pairs`]), the capsules' sliding candidates ([`super::sliding::candidates`])
/// and the static balls against box and mesh bodies ([`balls::candidates`]).
#[derive(Clone, Debug, Default)]
pub struct ContactCandidates {
    pairs: Vec<(usize, usize)>,
    sliding: Vec<Candidate>,
    balls: Vec<(usize, usize)>,
}

impl ContactCandidates {
    /// The candidates of `model`, whose bodies see `obstacles` (grown by their radii).
    pub fn of(model: &RigidModel, obstacles: &[Vec<Shape>]) -> Self {
        let pairs = pairs::contact_pairs(model);
        Self {
            sliding: super::sliding::candidates(model, &pairs, obstacles),
            balls: balls::candidates(model),
            pairs,
        }
    }
}

/// The contacts between bodies frozen for one step.
#[derive(Clone, Debug, Default)]
pub struct StepContacts {
    /// The directed pairs whose points act, and the pairs of sliding points.
    pub pairs: Vec<(usize, usize)>,
    /// The sliding points that act.
    pub sliding: Vec<SlidingPoint>,
    /// The static balls `(obstacle, body)` whose centres act against box and mesh bodies
    /// ([`super::balls`]).
    pub balls: Vec<(usize, usize)>,
}

impl StepContacts {
    /// The contacts of a step from `states` of length `h`: of the `candidates`, the active
    /// pairs ([`pairs::active_pairs`]), the sliding points whose gap is below the same cut
    /// (their body pairs added to the active ones) and the static balls within it.
    pub fn at(
        model: &RigidModel,
        candidates: &ContactCandidates,
        obstacles: &[Vec<Shape>],
        states: &[BodyState],
        h: f64,
    ) -> Self {
        let mut active = pairs::active_pairs(model, &candidates.pairs, states, h);
        let balls = balls::active(model, &candidates.balls, states, h);
        let candidates = &candidates.sliding;
        if candidates.is_empty() {
            return Self {
                pairs: active,
                sliding: Vec::new(),
                balls,
            };
        }
        let reach = pairs::reaches(model, states);
        let sliding: Vec<SlidingPoint> = candidates
            .iter()
            .filter_map(|&(ia, target)| {
                let speed = match target {
                    Target::Body(ib) => reach[ia] + reach[ib],
                    Target::Obstacle(_) => reach[ia],
                };
                let cut = pairs::activity_cut(model, h, speed);
                sliding_point(model, (ia, target), obstacles, states, cut)
            })
            .collect();
        for sp in &sliding {
            if let Target::Body(ib) = sp.target
                && !active.contains(&(sp.body, ib))
            {
                active.push((sp.body, ib));
            }
        }
        Self {
            pairs: active,
            sliding,
            balls,
        }
    }
}
