//! Ops of incompressible-flow control (Holl et al. 2020, shape transitions and indirect
//! control): a divergence-free velocity from a scalar potential, and the two density losses
//! the studies train with.
//!
//! - [`ControlOps::staggered_curl`]: `u = ∂ψ/∂y`, `v = −∂ψ/∂x` on the MAC faces of a potential
//!   `ψ: [B, ny+1, nx+1]` given at the cell corners (node `[j, i]` at `(i, j)` in cells). Every
//!   cell's discrete divergence is zero by construction, so no pressure solve is needed. The
//!   shape-transition network outputs a centred `[B, ny, nx]` field; PhiFlow 1.x's
//!   `staggered_curl_2d` reads it as the corner values and takes the missing top row and right
//!   column as zero (its open domain's zero extrapolation): pad with zeros, then call this.
//! - [`ControlOps::spectral_loss`]: `Σ_k w(k)·|DFT₂(d)(k)|²` per item of `d = ρ* − ρ`, with
//!   `w = g(k_y) + g(k_x)` and `g(k) = exp(−k²/(2σ²))`, `k` in cycles per cell, the
//!   unnormalised DFT (the PhiFlow notebook's target loss; σ = 0.01 there). Each half of the
//!   weight leaves one axis's frequencies unweighted, so by Parseval the loss is a circulant
//!   quadratic form along each axis: no transform, and an exact adjoint.
//! - [`ControlOps::blurred_l2`]: `½·Σ (K ∗ d)²` per item, with the legacy code's blur
//!   `K ∝ 1/(1 + |offset|/r)` over `|offset_x|, |offset_y| ≤ round(3r)`, zero padding.
//!
//! Each op has a fused CPU kernel ([`kernels::control`]) with a hand-written adjoint, a default
//! body of Burn primitives for the other backends (whose adjoint is Burn's autodiff of it), and
//! one backward node under `Autodiff`. The losses return one value per item, `[B]`.

use super::autodiff::{Slots, register, with_extra_outputs};
use super::flex::{contiguous, data, with_float};
use super::kernels::control as kernels;
use super::reference::{Ft, vjp};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Shape, Tensor, TensorData};
use std::sync::Arc;

/// Which density loss a [`ControlOps::density_loss`] call computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DensityLoss {
    /// [`ControlOps::spectral_loss`] with the Gaussian width `sigma` (cycles per cell).
    Spectral {
        /// Width of the frequency weight.
        sigma: f64,
    },
    /// [`ControlOps::blurred_l2`] with the blur radius `radius` (cells).
    BlurredL2 {
        /// Blur radius.
        radius: f64,
    },
}

/// Flow-control ops.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait ControlOps: Backend {
    /// `(u [B, ny, nx+1], v [B, ny+1, nx])` of the node potential `psi: [B, ny+1, nx+1]`;
    /// `dx` is the cell size.
    fn staggered_curl(psi: FloatTensor<Self>, dx: f64) -> (FloatTensor<Self>, FloatTensor<Self>) {
        curl_body::<Self>(psi, dx)
    }
    /// Adjoint of [`ControlOps::staggered_curl`] (linear): `ψ̄` from `(ū, v̄)`.
    fn staggered_curl_backward(
        gu: FloatTensor<Self>,
        gv: FloatTensor<Self>,
        dx: f64,
    ) -> FloatTensor<Self> {
        let [b, ny, _] = gu.shape().dims();
        let nx = gv.shape()[2];
        let psi = Ft::<Self>::zeros(&[b, ny + 1, nx + 1], &gu).0;
        let [gp] = vjp::<Self, 1, 2>([psi], [gu, gv], |[p]| {
            let (u, v) = curl_body::<Autodiff<Self>>(p, dx);
            [u, v]
        });
        gp
    }
    /// The loss `kind` per item of `d: [B, ny, nx]`, `[B]`.
    fn density_loss(d: FloatTensor<Self>, kind: DensityLoss) -> FloatTensor<Self> {
        loss_body::<Self>(d, kind)
    }
    /// Adjoint of [`ControlOps::density_loss`]: `d̄ [B, ny, nx]` from the per-item gradient
    /// `grad: [B]`.
    fn density_loss_backward(
        d: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        kind: DensityLoss,
    ) -> FloatTensor<Self> {
        let [gd] = vjp::<Self, 1, 1>([d], [grad], |[d]| [loss_body::<Autodiff<Self>>(d, kind)]);
        gd
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl ControlOps for burn::backend::Cube {}

/// Default body of [`ControlOps::staggered_curl`].
fn curl_body<B: Backend>(psi: FloatTensor<B>, dx: f64) -> (FloatTensor<B>, FloatTensor<B>) {
    let [_, py, px] = psi.shape().dims();
    let p = Ft::<B>(psi);
    let u = (p.clone().narrow(1, 1, py) - p.clone().narrow(1, 0, py - 1)) * (1.0 / dx);
    let v = (p.clone().narrow(2, 0, px - 1) - p.narrow(2, 1, px)) * (1.0 / dx);
    (u.0, v.0)
}

/// Default body of [`ControlOps::density_loss`].
fn loss_body<B: Backend>(d: FloatTensor<B>, kind: DensityLoss) -> FloatTensor<B> {
    let [b, ny, nx] = d.shape().dims();
    let per_item = match kind {
        DensityLoss::Spectral { sigma } => {
            let circulant = |n: usize| {
                let c = kernels::spectral_kernel(n, sigma);
                let m: Vec<f64> = (0..n * n).map(|k| c[(k / n + n - k % n) % n]).collect();
                let m = Ft::<B>::from_host(m, &[1, n, n], &d).0;
                B::float_expand(m, Shape::from(vec![b, n, n]))
            };
            let along_y = Ft::<B>(B::float_matmul(circulant(ny), d.clone()));
            let along_x = Ft::<B>(B::float_matmul(d.clone(), circulant(nx)));
            (Ft::<B>(d) * (along_y * nx as f64 + along_x * ny as f64)).sum_items()
        }
        DensityLoss::BlurredL2 { radius } => {
            let (c, k) = kernels::blur_kernel(radius, nx, ny);
            let w = Ft::<B>::from_host(k, &[1, 1, 2 * c + 1, 2 * c + 1], &d).0;
            let x = Ft::<B>(d).reshape(&[b, 1, ny, nx]).0;
            let y = Ft::<B>(B::conv2d(
                x,
                w,
                None,
                ConvOptions::new([1, 1], [c, c], [1, 1], 1),
            ));
            (y.clone() * y).sum_items() * 0.5
        }
    };
    per_item.reshape(&[b]).0
}

/// `[B, ny, nx]` of a batch of fields, checked.
#[track_caller]
fn dims3(t: &FlexTensor, name: &str) -> [usize; 3] {
    let sh = t.shape();
    assert!(
        sh.num_dims() == 3,
        "{name}: expected shape [B, ny, nx], got {sh:?}"
    );
    [sh[0], sh[1], sh[2]]
}

impl ControlOps for Flex {
    fn staggered_curl(psi: FlexTensor, dx: f64) -> (FlexTensor, FlexTensor) {
        let [b, py, px] = dims3(&psi, "staggered_curl psi");
        let (ny, nx) = (py - 1, px - 1);
        let psi = contiguous(psi);
        with_float!(psi, T => {
            let zero = <T as num_traits::Zero>::zero();
            let (mut u, mut v) = (vec![zero; b * ny * px], vec![zero; b * py * nx]);
            kernels::staggered_curl(data::<T>(&psi), nx, ny, dx, &mut u, &mut v);
            (
                FlexTensor::from_data(TensorData::new(u, [b, ny, px])),
                FlexTensor::from_data(TensorData::new(v, [b, py, nx])),
            )
        })
    }

    fn staggered_curl_backward(gu: FlexTensor, gv: FlexTensor, dx: f64) -> FlexTensor {
        let [b, ny, px] = dims3(&gu, "staggered_curl_backward gu");
        let nx = px - 1;
        let (gu, gv) = (contiguous(gu), contiguous(gv));
        with_float!(gu, T => {
            let mut g = vec![<T as num_traits::Zero>::zero(); b * (ny + 1) * px];
            kernels::staggered_curl_adjoint(data::<T>(&gu), data::<T>(&gv), nx, ny, dx, &mut g);
            FlexTensor::from_data(TensorData::new(g, [b, ny + 1, px]))
        })
    }

    fn density_loss(d: FlexTensor, kind: DensityLoss) -> FlexTensor {
        let [b, ny, nx] = dims3(&d, "density_loss d");
        let d = contiguous(d);
        with_float!(d, T => {
            let mut out = vec![<T as num_traits::Zero>::zero(); b];
            match kind {
                DensityLoss::Spectral { sigma } => kernels::spectral_loss(data::<T>(&d), nx, ny, sigma, &mut out),
                DensityLoss::BlurredL2 { radius } => kernels::blurred_l2(data::<T>(&d), nx, ny, radius, &mut out),
            }
            FlexTensor::from_data(TensorData::new(out, [b]))
        })
    }

    fn density_loss_backward(d: FlexTensor, grad: FlexTensor, kind: DensityLoss) -> FlexTensor {
        let [b, ny, nx] = dims3(&d, "density_loss_backward d");
        let (d, g) = (contiguous(d), contiguous(grad));
        with_float!(d, T => {
            let mut gd = vec![<T as num_traits::Zero>::zero(); b * ny * nx];
            let (d, g) = (data::<T>(&d), data::<T>(&g));
            match kind {
                DensityLoss::Spectral { sigma } => kernels::spectral_loss_adjoint(d, g, nx, ny, sigma, &mut gd),
                DensityLoss::BlurredL2 { radius } => kernels::blurred_l2_adjoint(d, g, nx, ny, radius, &mut gd),
            }
            FlexTensor::from_data(TensorData::new(gd, [b, ny, nx]))
        })
    }
}

impl<B: ControlOps, C: CheckpointStrategy> ControlOps for Autodiff<B, C> {
    fn staggered_curl(psi: FloatTensor<Self>, dx: f64) -> (FloatTensor<Self>, FloatTensor<Self>) {
        #[derive(Debug)]
        struct CurlBackward;
        impl<B: ControlOps> Backward<B, 1> for CurlBackward {
            type State = (f64, Arc<Slots<B>>);
            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (dx, slots) = ops.state;
                let gu = grads.consume::<B>(&ops.node);
                let gv = slots.take(&gu).pop().expect("one extra output");
                let [parent] = &ops.parents;
                let gp = B::staggered_curl_backward(gu, gv, dx);
                register::<B>(grads, parent.as_ref().map(|n| n.id), gp);
            }
        }
        let prep = CurlBackward
            .prepare::<C>([psi.node()])
            .compute_bound()
            .stateful();
        let (u, v) = B::staggered_curl(psi.into_primitive(), dx);
        let slots = Slots::new(&[&v]);
        let u = match prep {
            OpsKind::Tracked(prep) => prep.finish((dx, slots.clone()), u),
            OpsKind::UnTracked(prep) => prep.finish(u),
        };
        let [u, v] = with_extra_outputs::<B, C>(u, vec![v], slots)
            .try_into()
            .expect("two outputs");
        (u, v)
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn staggered_curl_backward(
        gu: FloatTensor<Self>,
        gv: FloatTensor<Self>,
        dx: f64,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::staggered_curl_backward(
            Self::inner(gu),
            Self::inner(gv),
            dx,
        ))
    }

    fn density_loss(d: FloatTensor<Self>, kind: DensityLoss) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LossBackward;
        impl<B: ControlOps> Backward<B, 1> for LossBackward {
            type State = (NodeId, DensityLoss);
            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                ck: &mut Checkpointer,
            ) {
                let (did, kind) = ops.state;
                let d: FloatTensor<B> = ck.retrieve_node_output(did);
                let grad = grads.consume::<B>(&ops.node);
                let [parent] = &ops.parents;
                let gd = B::density_loss_backward(d, grad, kind);
                register::<B>(grads, parent.as_ref().map(|n| n.id), gd);
            }
        }
        match LossBackward
            .prepare::<C>([d.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let id = prep.checkpoint(&d);
                let out = B::density_loss(d.into_primitive(), kind);
                prep.finish((id, kind), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::density_loss(d.into_primitive(), kind)),
        }
    }

    /// Not differentiable again: computed on the inner values, returned untracked.
    fn density_loss_backward(
        d: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        kind: DensityLoss,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::density_loss_backward(
            Self::inner(d),
            Self::inner(grad),
            kind,
        ))
    }
}

/// The staggered velocity `(u, v)` of the node potential `psi: [B, ny+1, nx+1]`; see
/// [`ControlOps::staggered_curl`].
pub fn staggered_curl(psi: Tensor<3>, dx: f64) -> (Tensor<3>, Tensor<3>) {
    let (u, v) = <Dispatch as ControlOps>::staggered_curl(psi.into_dispatch(), dx);
    (Tensor::from_dispatch(u), Tensor::from_dispatch(v))
}

/// The loss `kind` of every item of `d: [B, ny, nx]`, `[B]`; see [`ControlOps::density_loss`].
pub fn density_loss(d: Tensor<3>, kind: DensityLoss) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as ControlOps>::density_loss(
        d.into_dispatch(),
        kind,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn field(dims: [usize; 3], seed: f64) -> Vec<f64> {
        let n: usize = dims.iter().product();
        (0..n)
            .map(|k| (k as f64 * 0.29 + seed).sin() * 0.8 + (k as f64 * 0.013).cos() * 0.3)
            .collect()
    }

    #[test]
    fn default_bodies_equal_the_kernels() {
        let dev = Device::flex();
        let mk = |dims: [usize; 3], seed| {
            Tensor::<3>::from_data(TensorData::new(field(dims, seed), dims), &dev)
                .cast(burn::tensor::FloatDType::F64)
        };
        let psi = mk([2, 6, 8], 0.4);
        let (u, v) = staggered_curl(psi.clone(), 0.5);
        let (ur, vr) = curl_body::<Dispatch>(psi.into_dispatch(), 0.5);
        let close = |a: Tensor<3>, b: Tensor<3>, tol: f64| {
            let (a, b): (Vec<f64>, Vec<f64>) = (
                a.into_data().convert::<f64>().try_to_vec::<f64>().unwrap(),
                b.into_data().convert::<f64>().try_to_vec::<f64>().unwrap(),
            );
            assert_eq!(a.len(), b.len());
            let scale = a.iter().fold(1e-30f64, |m, x| m.max(x.abs()));
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= tol * scale, "{x} vs {y}");
            }
        };
        close(u, Tensor::from_dispatch(ur), 1e-15);
        close(v, Tensor::from_dispatch(vr), 1e-15);
        let d = mk([3, 10, 12], 1.1);
        for kind in [
            DensityLoss::Spectral { sigma: 0.05 },
            DensityLoss::BlurredL2 { radius: 1.5 },
        ] {
            let fast = density_loss(d.clone(), kind).reshape([3, 1, 1]);
            let body =
                Tensor::<1>::from_dispatch(loss_body::<Dispatch>(d.clone().into_dispatch(), kind));
            close(fast, body.reshape([3, 1, 1]), 1e-12);
        }
    }
}
