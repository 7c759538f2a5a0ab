//! Learned control of a 2D flow (Holl et al. 2020, shape transitions): a control-force
//! estimator (CFE) that picks each step's velocity potential from the state and the next
//! planned state, and an observation-prediction (OP) hierarchy that plans the intermediate
//! states, executed through a [`ShapeFlow`]. Unlike Burgers' exact actuation, a step reaches
//! its planned state only approximately, so planning and execution interleave as in the
//! authors' partitioned sequences: staggered execution predicts an interval's midpoint from
//! the real state at its start and the plan at its end, executes the first half, then plans
//! the second half from the state actually reached; prediction refinement also re-plans the
//! later intervals after every executed half.

use crate::fluid::ShapeFlow;
use crate::nn::{UNet2d, UNet2dConfig};
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// The networks: the CFE and `OP_2, OP_4, …, OP_n` (index `l` is `OP_{2^(l+1)}`).
#[derive(Module, Debug)]
pub struct FlowPlanner {
    /// Control-force estimator: `[ρ_t, planned ρ_{t+1}]` → potential.
    pub cfe: UNet2d,
    /// The OP networks, finest first: `[ρ_a, ρ_b]` → midpoint density.
    pub ops: Vec<UNet2d>,
}

impl FlowPlanner {
    /// Fresh networks for sequences of `steps` steps (a power of two).
    pub fn init(cfe: &UNet2dConfig, op: &UNet2dConfig, steps: usize, device: &Device) -> Self {
        Self {
            cfe: cfe.init(device),
            ops: (0..steps.trailing_zeros())
                .map(|_| op.init(device))
                .collect(),
        }
    }

    /// `OP_n`.
    pub fn op(&self, n: usize) -> &UNet2d {
        &self.ops[n.trailing_zeros() as usize - 1]
    }
}

/// `net([a, b])` for `[B, ny, nx]` fields: the single output channel as `[B, ny, nx]`.
pub fn apply(net: &UNet2d, a: Tensor<3>, b: Tensor<3>) -> Tensor<3> {
    let [bs, ny, nx] = a.dims();
    net.forward(Tensor::stack::<4>(vec![a, b], 1))
        .reshape([bs, ny, nx])
}

/// How a sequence is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Execution {
    /// Staggered execution.
    Staggered,
    /// Prediction refinement.
    Refined,
}

/// An executed sequence: the densities `ρ_0 … ρ_n` (planned frames replaced by the reached
/// ones) and the velocities `(u, v)` of steps `1 … n`.
pub struct Rollout {
    /// Densities `[B, ny, nx]`, `n + 1` of them.
    pub densities: Vec<Tensor<3>>,
    /// Velocity of each step.
    pub velocities: Vec<(Tensor<3>, Tensor<3>)>,
    /// OP applications made.
    pub plans: usize,
}

struct Executor<'a> {
    flow: &'a ShapeFlow,
    planner: &'a FlowPlanner,
    frames: Vec<Option<Tensor<3>>>,
    velocities: Vec<(Tensor<3>, Tensor<3>)>,
    refine: bool,
    plans: usize,
}

impl Executor<'_> {
    fn frame(&self, k: usize) -> Tensor<3> {
        self.frames[k]
            .clone()
            .expect("a frame is planned before it is used")
    }

    /// Plans frame `s + n/2` from frames `s` and `s + n`.
    fn partition(&mut self, n: usize, s: usize) {
        let mid = apply(self.planner.op(n), self.frame(s), self.frame(s + n));
        self.frames[s + n / 2] = Some(mid);
        self.plans += 1;
    }

    /// Executes `n` steps from frame `s`.
    fn execute(&mut self, n: usize, s: usize, update: bool) {
        if n == 1 {
            let psi = apply(&self.planner.cfe, self.frame(s), self.frame(s + 1));
            let (rho, u, v) = self.flow.step(self.frame(s), psi);
            self.frames[s + 1] = Some(rho);
            self.velocities.push((u, v));
            return;
        }
        self.partition(n, s);
        if self.refine {
            self.execute(n / 2, s, true);
            if update {
                self.partition(n, s + n);
                self.partition(n, s + n / 2);
            }
            self.execute(n / 2, s + n / 2, update);
        } else {
            self.execute(n / 2, s, false);
            self.execute(n / 2, s + n / 2, false);
        }
    }
}

/// Executes `steps` steps (a power of two) from `rho0` towards `target` (`[B, ny, nx]` each).
pub fn execute(
    flow: &ShapeFlow,
    planner: &FlowPlanner,
    rho0: Tensor<3>,
    target: Tensor<3>,
    steps: usize,
    how: Execution,
) -> Rollout {
    assert!(
        steps.is_power_of_two() && steps.trailing_zeros() as usize <= planner.ops.len(),
        "{steps} steps need OP networks up to OP_{steps}"
    );
    let mut frames = vec![None; steps + 1];
    frames[0] = Some(rho0);
    frames[steps] = Some(target);
    let mut ex = Executor {
        flow,
        planner,
        frames,
        velocities: Vec::with_capacity(steps),
        refine: how == Execution::Refined,
        plans: 0,
    };
    ex.execute(steps, 0, false);
    Rollout {
        densities: ex
            .frames
            .into_iter()
            .map(|f| f.expect("every frame executed"))
            .collect(),
        velocities: ex.velocities,
        plans: ex.plans,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn execution_reaches_every_frame_and_refinement_replans() {
        // 8 steps: staggered plans each of the 7 midpoints once; refinement re-plans the
        // later midpoints after every executed half (15 plans, traced by hand from the
        // authors' partitioned sequence).
        let dev = Device::flex();
        let flow = ShapeFlow::new(crate::grid::Resolution::new(16, 16), 1.0).unwrap();
        let cfg = UNet2dConfig::new().with_filters(4).with_blocks(1);
        let planner = FlowPlanner::init(&cfg, &cfg, 8, &dev);
        let rho0 = Tensor::<3>::random([2, 16, 16], Distribution::Uniform(0.0, 1.0), &dev);
        let target = Tensor::<3>::random([2, 16, 16], Distribution::Uniform(0.0, 1.0), &dev);
        for (how, plans) in [(Execution::Staggered, 7), (Execution::Refined, 15)] {
            let r = execute(&flow, &planner, rho0.clone(), target.clone(), 8, how);
            assert_eq!(
                (r.densities.len(), r.velocities.len(), r.plans),
                (9, 8, plans)
            );
            // The last frame is the executed one, not the target.
            let d: f32 = (r.densities[8].clone() - target.clone())
                .abs()
                .sum()
                .into_scalar();
            assert!(d > 0.0);
        }
    }
}
