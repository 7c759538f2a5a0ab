//! Gradients through long unrolls in bounded memory.
//!
//! [`Checkpointing::Tape`] records every step for one backward pass (Burn's own
//! checkpointing strategy still applies when the device was made with
//! `gradient_checkpointing()`). [`Checkpointing::Segments`] runs the unroll once without a
//! graph, keeping only the states at segment starts, then walks the segments backwards:
//! each is recomputed under autodiff from its start and differentiated with the gradient
//! arriving at its end as the seed. Memory is `N/K` states plus the graph of `K` steps, so
//! `K = √N` gives `O(√N)`; the cost is one extra forward pass.

use super::{FluidState, Simulation};
use crate::error::{DiffsimError, Result};
use burn::tensor::Tensor;

/// What an unroll keeps for its backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checkpointing {
    /// Record every step.
    Tape,
    /// Keep the states every `K` steps and recompute each segment during the backward pass.
    Segments(usize),
}

impl Checkpointing {
    /// Segments of `⌈√steps⌉` steps.
    pub fn sqrt(steps: usize) -> Self {
        Self::Segments((steps as f64).sqrt().ceil().max(1.0) as usize)
    }
}

/// The fields of the final state that a loss reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Velocity, marker and pressure.
    All,
    /// Velocity and pressure only. A passive marker (no buoyancy) then cannot reach the loss,
    /// so the unroll does not advect it ([`Simulation::step_velocity`]): the dead code that a
    /// tracing compiler such as JAX's jit removes. The loss sees a NaN marker, so a loss that
    /// reads it anyway gives NaN, not a silently stale value; the marker's gradient is zero.
    Velocity,
}

/// The loss after an unroll and its gradient with respect to the initial state.
#[derive(Clone, Debug)]
pub struct UnrollGradient {
    /// The loss.
    pub loss: f64,
    /// `∂loss/∂u₀`, `[B, ny, nx+1]`.
    pub u: Tensor<3>,
    /// `∂loss/∂v₀`, `[B, ny+1, nx]`.
    pub v: Tensor<3>,
    /// `∂loss/∂marker₀`, `[B, ny, nx]`.
    pub marker: Tensor<3>,
}

/// The initial state with gradients required on its velocity and marker.
fn tracked(s: &FluidState) -> FluidState {
    FluidState {
        u: s.u.clone().detach().require_grad(),
        v: s.v.clone().detach().require_grad(),
        marker: s.marker.clone().detach().require_grad(),
        pressure: s.pressure.clone().detach(),
        step: s.step,
    }
}

/// Gradients of `objective` with respect to the tracked fields of `start` (zeros where it
/// does not depend on them).
fn grads_of(objective: Tensor<1>, start: &FluidState) -> [Tensor<3>; 3] {
    let grads = objective.backward();
    [&start.u, &start.v, &start.marker]
        .map(|t| t.grad(&grads).unwrap_or_else(|| t.zeros_like().detach()))
}

/// Runs `steps` steps from `init` on `sim` (an autodiff device) and differentiates
/// `loss(final state)` with respect to the initial velocity and marker; `reads` says which
/// fields `loss` reads.
pub fn unrolled_gradient(
    sim: &Simulation,
    init: &FluidState,
    steps: usize,
    mode: Checkpointing,
    reads: Reads,
    loss: &dyn Fn(&FluidState) -> Tensor<1>,
) -> Result<UnrollGradient> {
    let k = match mode {
        Checkpointing::Tape => steps.max(1),
        Checkpointing::Segments(0) => {
            return Err(DiffsimError::config(
                "segments must be at least 1 step long",
            ));
        }
        Checkpointing::Segments(k) => k,
    };
    let velocity_only = sim.skips_marker(reads);
    let step = |s| sim.step_for(s, reads);
    let mut init = init.clone().detach();
    if velocity_only {
        init.marker = init.marker.full_like(f64::NAN);
    }
    // Forward without a graph, keeping the segment starts.
    let mut starts = vec![init.clone()];
    if k < steps {
        let mut s = init;
        for n in 1..steps {
            s = step(s)?.0;
            if n % k == 0 {
                starts.push(s.clone());
            }
        }
    }
    // Backward over the segments, last first.
    let mut seed: Option<[Tensor<3>; 3]> = None;
    let mut value = f64::NAN;
    while let Some(start) = starts.pop() {
        let first = starts.len() * k;
        let start = tracked(&start);
        let mut s = start.clone();
        for _ in first..steps.min(first + k) {
            s = step(s)?.0;
        }
        let objective = match &seed {
            None => {
                let l = loss(&s);
                value = l.clone().into_scalar::<f64>();
                l
            }
            Some([gu, gv, gm]) => {
                let flow = (s.u * gu.clone()).sum() + (s.v * gv.clone()).sum();
                if velocity_only {
                    flow
                } else {
                    flow + (s.marker * gm.clone()).sum()
                }
            }
        };
        seed = Some(grads_of(objective, &start));
    }
    let [u, v, marker] = seed.expect("at least one segment");
    Ok(UnrollGradient {
        loss: value,
        u,
        v,
        marker,
    })
}
