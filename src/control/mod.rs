//! PDE control with learned planners (Holl et al. 2020, docs/burgers-control.md §3–§4). Here,
//! on batched 1D states `[B, N]` stepped by a [`BurgersScene`]: the CFE chain, and the observation-prediction (OP)
//! hierarchy executed staggered or with prediction refinement. Every scheme returns the
//! executed trajectory `u_0 … u_n` with `u_n` pinned to the target; the control force of step
//! `t` is `F_t = u_{t+1} − P(u_t)` (exact actuation: the force reaches the planned state). [`flow`]: the
//! same schemes on a 2D flow, where actuation is not exact. [`indirect`]: a CFE chain that
//! reaches a 2D marker only through the pressure.

pub mod flow;
pub mod indirect;

use crate::burgers::BurgersScene;
use crate::nn::{PackedUNet1d, UNet1d, UNet1dConfig};
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// The OP networks `OP_2, OP_4, …, OP_n` (index `l` is `OP_{2^(l+1)}`), separate weights.
#[derive(Module, Debug)]
pub struct Hierarchy {
    /// The networks, finest first.
    pub ops: Vec<UNet1d>,
}

impl Hierarchy {
    /// Freshly initialised networks for sequences of `steps` (a power of two) steps.
    pub fn init(steps: usize, device: &Device) -> Self {
        Self {
            ops: (0..steps.trailing_zeros())
                .map(|_| UNet1dConfig::op().init(device))
                .collect(),
        }
    }

    /// `OP_n`.
    pub fn op(&self, n: usize) -> &UNet1d {
        &self.ops[n.trailing_zeros() as usize - 1]
    }

    /// Every network packed for application ([`UNet1d::packed`]), finest first.
    pub fn packed(&self) -> Vec<PackedUNet1d> {
        self.ops.iter().map(UNet1d::packed).collect()
    }
}

/// The packed `OP_n` among [`Hierarchy::packed`].
fn packed_op(ops: &[PackedUNet1d], n: usize) -> &PackedUNet1d {
    &ops[n.trailing_zeros() as usize - 1]
}

/// `OP_n(a, b)`: the state halfway between `a` and `b` (`[B, N]` each).
pub fn predict_mid(net: &PackedUNet1d, a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let [bs, n] = a.dims();
    net.forward(Tensor::stack::<3>(vec![a, b], 1))
        .reshape([bs, n])
}

/// The CFE network's next state from `u`, the target and the time fraction `t/n`.
pub fn predict_next(net: &PackedUNet1d, u: Tensor<2>, target: Tensor<2>, time: f64) -> Tensor<2> {
    let [bs, n] = u.dims();
    let t = Tensor::full([bs, n], time, (&u.device(), u.dtype()));
    net.forward(Tensor::stack::<3>(vec![u, target, t], 1))
        .reshape([bs, n])
}

/// The CFE chain: `u_{t+1} = CFE(u_t, u*, t/n)` for `t < n − 1`, then `u_n = u*`.
pub fn cfe_chain(net: &UNet1d, u0: Tensor<2>, target: Tensor<2>, steps: usize) -> Vec<Tensor<2>> {
    let net = net.packed();
    let mut states = vec![u0];
    for t in 0..steps - 1 {
        let last = states.last().expect("u_0").clone();
        states.push(predict_next(
            &net,
            last,
            target.clone(),
            t as f64 / steps as f64,
        ));
    }
    states.push(target);
    states
}

/// Staggered execution: midpoints predicted level by level from the coarsest (`OP_n` from
/// `u_0` and `u*`) to the finest, then every step executed. With exact actuation the executed
/// states are the planned ones, so the predictions of one level do not depend on each other
/// and run as one batch.
pub fn staggered(
    ops: &Hierarchy,
    u0: Tensor<2>,
    target: Tensor<2>,
    steps: usize,
) -> Vec<Tensor<2>> {
    let [bs, _] = u0.dims();
    let mut frames: Vec<Option<Tensor<2>>> = vec![None; steps + 1];
    frames[0] = Some(u0);
    frames[steps] = Some(target);
    let mut n = steps;
    while n >= 2 {
        let starts: Vec<usize> = (0..steps).step_by(n).collect();
        let get = |k: usize| frames[k].clone().expect("planned frame");
        let a = Tensor::cat(starts.iter().map(|&s| get(s)).collect(), 0);
        let b = Tensor::cat(starts.iter().map(|&s| get(s + n)).collect(), 0);
        let mids = predict_mid(&ops.op(n).packed(), a, b);
        for (k, &s) in starts.iter().enumerate() {
            frames[s + n / 2] = Some(mids.clone().narrow(0, k * bs, bs));
        }
        n /= 2;
    }
    frames
        .into_iter()
        .map(|f| f.expect("every frame planned"))
        .collect()
}

/// Prediction refinement (the paper's "interleaved tree"): after the first half of an
/// interval that is itself a first half has been executed, the later targets are predicted
/// again from the state reached, `OP_n(u_{s+n}, u_{s+2n})` for the next midpoint and
/// `OP_n(u_{s+n/2}, that)` for the interval's end.
pub fn refined(ops: &Hierarchy, u0: Tensor<2>, target: Tensor<2>, steps: usize) -> Vec<Tensor<2>> {
    fn branch(ops: &[PackedUNet1d], f: &mut [Option<Tensor<2>>], n: usize, s: usize, update: bool) {
        if n == 1 {
            return;
        }
        let get = |f: &[Option<Tensor<2>>], k: usize| f[k].clone().expect("planned frame");
        f[s + n / 2] = Some(predict_mid(packed_op(ops, n), get(f, s), get(f, s + n)));
        branch(ops, f, n / 2, s, true);
        if update {
            f[s + n + n / 2] = Some(predict_mid(
                packed_op(ops, n),
                get(f, s + n),
                get(f, s + 2 * n),
            ));
            f[s + n] = Some(predict_mid(
                packed_op(ops, n),
                get(f, s + n / 2),
                get(f, s + n + n / 2),
            ));
        }
        branch(ops, f, n / 2, s + n / 2, update);
    }
    let mut frames: Vec<Option<Tensor<2>>> = vec![None; steps + 1];
    frames[0] = Some(u0);
    frames[steps] = Some(target);
    branch(&ops.packed(), &mut frames, steps, 0, false);
    frames
        .into_iter()
        .map(|f| f.expect("every frame planned"))
        .collect()
}

/// The control forces `F_t = u_{t+1} − P(u_t)` of a trajectory, as one `[n·B, N]` tensor
/// (step-major: rows `t·B .. (t+1)·B` are step `t`), all steps' `P` in one batched call.
pub fn forces(scene: &BurgersScene, states: &[Tensor<2>]) -> Tensor<2> {
    let n = states.len() - 1;
    let before = Tensor::cat(states[..n].to_vec(), 0);
    let after = Tensor::cat(states[1..].to_vec(), 0);
    scene.control_force(before, after)
}

/// The differentiable-physics loss of Holl et al.: `scale · Σ_t ½Σ_x F_t² / B`.
pub fn force_loss(forces: Tensor<2>, batch: usize, scale: f64) -> Tensor<1> {
    (forces.clone() * forces)
        .sum()
        .mul_scalar(0.5 * scale / batch as f64)
}

/// Total force `Σ_t Σ_x |F_t|` of every item (host values, `[B]`).
pub fn total_force(forces: Tensor<2>, batch: usize) -> Vec<f64> {
    let [rows, n] = forces.dims();
    let per = forces
        .abs()
        .reshape([rows / batch, batch, n])
        .sum_dim(2)
        .sum_dim(0)
        .reshape([batch]);
    per.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("f64 totals")
}
