//! The 1D U-Net of Holl et al. 2020 (docs/burgers-control.md §3), used for the control-force
//! estimator (CFE: inputs u_t, u*, t/n) and for every level of the observation-prediction
//! hierarchy (OP_n: inputs u_a, u_b).
//!
//! Layout (`x: [B, C, N]`, Burn's `[batch, channels, length]`): the input is zero-padded at
//! the end by `2^levels − 1` points; each down level is a stride-2 convolution of kernel 2 with
//! `down_filters[l]` channels and ReLU followed by `down_blocks` residual blocks (kernel 3);
//! `centre_blocks` residual blocks; each up level doubles the length by linear interpolation,
//! concatenates the skip of the level above (cut to length), pads one point at the end
//! (symmetric) and applies a convolution of kernel 2 (`up_filters` channels, ReLU, then
//! `up_blocks` residual blocks of kernel 2), except the last, a linear convolution to one
//! channel. Residual blocks: `act(x + conv₂(act(conv₁(x))))`, symmetric padding, LeakyReLU
//! (slope 0.2). Glorot-uniform weights and zero biases (TensorFlow's defaults).
//!
//! The parameters are Burn `Conv1d` modules (records, optimisers); an application is one op
//! ([`unet1d`]) on the parameters packed into one vector ([`UNet1d::packed`]).

use super::line_conv_flex::{Activation, LineConvSpec};
use super::unet1d_op::unet1d;
use super::unet1d_plan::UNetArch;
use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Initializer, PaddingConfig1d};
use burn::tensor::{Device, FloatDType, Tensor};
use std::sync::Arc;

/// Architecture of a [`UNet1d`].
#[derive(Config, Debug, PartialEq)]
pub struct UNet1dConfig {
    /// Input channels (2 for OP_n: start and end state; 3 for the CFE: state, target, t/n).
    #[config(default = 2)]
    pub inputs: usize,
    /// Channels of the stride-2 convolution of every down level (its length is the number of
    /// levels).
    #[config(default = "vec![4, 8, 16, 16, 16]")]
    pub down_filters: Vec<usize>,
    /// Residual blocks after every down convolution.
    #[config(default = 2)]
    pub down_blocks: usize,
    /// Residual blocks at the coarsest level.
    #[config(default = 3)]
    pub centre_blocks: usize,
    /// Channels of the up convolutions.
    #[config(default = 16)]
    pub up_filters: usize,
    /// Residual blocks after every up convolution but the last.
    #[config(default = 2)]
    pub up_blocks: usize,
    /// Negative slope of the residual blocks' LeakyReLU.
    #[config(default = 0.2)]
    pub slope: f64,
}

/// Two convolutions of one kernel size with a skip connection.
#[derive(Module, Debug)]
pub struct ResBlock1d {
    /// First convolution.
    pub first: Conv1d,
    /// Second convolution.
    pub second: Conv1d,
}

/// The 1D U-Net.
#[derive(Module, Debug)]
pub struct UNet1d {
    /// Stride-2 convolutions, one per level.
    pub down: Vec<Conv1d>,
    /// Residual blocks of every down level.
    pub down_res: Vec<Vec<ResBlock1d>>,
    /// Residual blocks at the coarsest level.
    pub centre: Vec<ResBlock1d>,
    /// Up convolutions, one per level (the last one linear, to one channel).
    pub up: Vec<Conv1d>,
    /// Residual blocks of every up level but the last.
    pub up_res: Vec<Vec<ResBlock1d>>,
    /// LeakyReLU slope of the residual blocks.
    pub slope: f64,
}

fn conv(channels: [usize; 2], kernel: usize, stride: usize, device: &Device) -> Conv1d {
    let mut c = Conv1dConfig::new(channels[0], channels[1], kernel)
        .with_stride(stride)
        .with_padding(PaddingConfig1d::Valid)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device);
    c.bias = Some(Param::from_tensor(Tensor::zeros([channels[1]], device)));
    c
}

fn res_block(c: usize, kernel: usize, device: &Device) -> ResBlock1d {
    ResBlock1d {
        first: conv([c, c], kernel, 1, device),
        second: conv([c, c], kernel, 1, device),
    }
}

impl UNet1dConfig {
    /// The paper's OP_n network (2 inputs).
    pub fn op() -> Self {
        Self::new()
    }

    /// The paper's CFE network (3 inputs: state, target, t/n).
    pub fn cfe() -> Self {
        Self::new().with_inputs(3)
    }

    /// Points appended (zeros) before the first level: `2^levels − 1`.
    pub fn end_padding(&self) -> usize {
        (1 << self.down_filters.len()) - 1
    }

    /// A freshly initialised network (seed the device's RNG first for reproducibility).
    pub fn init(&self, device: &Device) -> UNet1d {
        let levels = self.down_filters.len();
        let mut prev = self.inputs;
        let mut down = Vec::new();
        let mut down_res = Vec::new();
        for &f in &self.down_filters {
            down.push(conv([prev, f], 2, 2, device));
            down_res.push(
                (0..self.down_blocks)
                    .map(|_| res_block(f, 3, device))
                    .collect(),
            );
            prev = f;
        }
        let centre = (0..self.centre_blocks)
            .map(|_| res_block(prev, 3, device))
            .collect();
        // Skips from the finest level's input up: level l's skip has down_filters[l−1]
        // channels (the input's for l = 0).
        let mut up = Vec::new();
        let mut up_res = Vec::new();
        for l in (0..levels).rev() {
            let skip = if l == 0 {
                self.inputs
            } else {
                self.down_filters[l - 1]
            };
            if l == 0 {
                up.push(conv([prev + skip, 1], 2, 1, device));
            } else {
                up.push(conv([prev + skip, self.up_filters], 2, 1, device));
                up_res.push(
                    (0..self.up_blocks)
                        .map(|_| res_block(self.up_filters, 2, device))
                        .collect(),
                );
                prev = self.up_filters;
            }
        }
        UNet1d {
            down,
            down_res,
            centre,
            up,
            up_res,
            slope: self.slope,
        }
    }
}

/// Stride 1, `k` taps, edge padding `[(k−1)/2, k/2]` (TensorFlow's SYMMETRIC for pads ≤ 1).
fn same_edge(k: usize, act: Activation) -> LineConvSpec {
    LineConvSpec {
        stride: 1,
        pad: [(k - 1) / 2, k / 2],
        edge: true,
        act,
    }
}

/// The program of a [`UNet1d`] being written, with its convolutions in program order.
struct Program<'a> {
    arch: UNetArch,
    convs: Vec<&'a Conv1d>,
}

impl<'a> Program<'a> {
    /// Appends `conv` on slot `x` (plus `residual`); returns its output slot.
    fn conv(
        &mut self,
        conv: &'a Conv1d,
        x: usize,
        residual: Option<usize>,
        spec: LineConvSpec,
    ) -> usize {
        self.convs.push(conv);
        let [co, ci, k] = conv.weight.dims();
        self.arch.conv([ci, co, k], x, residual, spec)
    }

    /// `act(x + conv₂(act(conv₁(x))))`.
    fn res_block(&mut self, blk: &'a ResBlock1d, x: usize, slope: f64) -> usize {
        let spec = same_edge(blk.first.weight.dims()[2], Activation::LeakyRelu(slope));
        let h = self.conv(&blk.first, x, None, spec);
        self.conv(&blk.second, h, Some(x), spec)
    }
}

/// A network's parameters packed into one vector, with its program: what one application
/// op reads ([`unet1d`]). Pack once and apply many times (a chain of applications shares one
/// packing and its backward node).
#[derive(Clone, Debug)]
pub struct PackedUNet1d {
    /// Every weight and bias, in program order.
    pub params: Tensor<1>,
    /// The program.
    pub arch: Arc<UNetArch>,
}

impl PackedUNet1d {
    /// `x: [B, inputs, N]` → `[B, 1, N]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        unet1d(x, self.params.clone(), self.arch.clone())
    }
}

impl UNet1d {
    /// `x: [B, inputs, N]` → `[B, 1, N]` (packs the parameters first; see [`Self::packed`]).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.packed().forward(x)
    }

    /// The network as a program with its convolutions in program order.
    fn program(&self) -> Program<'_> {
        let inputs = self.down[0].weight.dims()[1];
        let mut p = Program {
            arch: UNetArch::new(inputs, (1 << self.down.len()) - 1),
            convs: vec![],
        };
        let down = LineConvSpec {
            stride: 2,
            pad: [0, 0],
            edge: false,
            act: Activation::Relu,
        };
        let mut skips = vec![0];
        let mut y = 0;
        for (d, blocks) in self.down.iter().zip(&self.down_res) {
            y = p.conv(d, y, None, down);
            for blk in blocks {
                y = p.res_block(blk, y, self.slope);
            }
            skips.push(y);
        }
        for blk in &self.centre {
            y = p.res_block(blk, y, self.slope);
        }
        skips.pop();
        let last = self.up.len() - 1;
        for (l, u) in self.up.iter().enumerate() {
            let skip = skips.pop().expect("one skip per level");
            let joined = p.arch.upsample_join(y, skip);
            let act = if l == last {
                Activation::Linear
            } else {
                Activation::Relu
            };
            y = p.conv(u, joined, None, same_edge(2, act));
            if l != last {
                for blk in &self.up_res[l] {
                    y = p.res_block(blk, y, self.slope);
                }
            }
        }
        p
    }

    /// The parameters packed in program order (differentiable: gradients of the packed vector
    /// flow back to every `Conv1d`).
    pub fn packed(&self) -> PackedUNet1d {
        let Program { arch, convs } = self.program();
        let parts = convs
            .iter()
            .flat_map(|c| {
                let bias = c.bias.as_ref().expect("U-Net convolutions have biases");
                [c.weight.val().reshape([-1]), bias.val()]
            })
            .collect();
        PackedUNet1d {
            params: Tensor::cat(parts, 0),
            arch: Arc::new(arch),
        }
    }
}

/// Casts every float parameter to `dtype` (f64 networks for gradient checks).
pub struct CastParams(pub FloatDType);

impl ModuleMapper for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|t| t.cast(dtype).detach().require_grad())
    }
}

/// The same values under new parameter identities. A module cloned from another shares its
/// parameter ids; an optimizer keys gradients and moments by id, so modules trained together
/// (the OP hierarchy) must not share any.
pub struct FreshParams;

impl ModuleMapper for FreshParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        Param::from_tensor(param.val().detach())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts of the paper's layout: weights k·C_in·C_out + biases, summed over the layers.
    #[test]
    fn parameter_counts() {
        let dev = Device::flex();
        let count = |inputs: usize| {
            let conv = |ci: usize, co: usize, k: usize| k * ci * co + co;
            let res = |c: usize, k: usize| 2 * conv(c, c, k);
            let down = [4, 8, 16, 16, 16];
            let mut total = 0;
            let mut prev = inputs;
            for &f in &down {
                total += conv(prev, f, 2) + 2 * res(f, 3);
                prev = f;
            }
            total += 3 * res(16, 3);
            for skip in [16, 16, 8, 4] {
                total += conv(prev + skip, 16, 2) + 2 * res(16, 2);
                prev = 16;
            }
            total + conv(16 + inputs, 1, 2)
        };
        let op = UNet1dConfig::op().init(&dev).num_params();
        let cfe = UNet1dConfig::cfe().init(&dev).num_params();
        assert_eq!(op, count(2));
        assert_eq!(cfe, count(3));
        assert_eq!((op, cfe), (28_545, 28_555));
    }

    #[test]
    fn fresh_params_keep_values_and_change_ids() {
        use burn::module::{ModuleVisitor, ParamId};
        struct Ids(Vec<ParamId>);
        impl ModuleVisitor for Ids {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                self.0.push(p.id);
            }
        }
        let dev = Device::flex();
        let a = UNet1dConfig::op().init(&dev);
        let b = a.clone().map(&mut FreshParams);
        let (mut ia, mut ib) = (Ids(vec![]), Ids(vec![]));
        a.visit(&mut ia);
        b.visit(&mut ib);
        assert!(ia.0.iter().all(|id| !ib.0.contains(id)));
        let x = Tensor::ones([1, 2, 32], &dev);
        let d = (a.forward(x.clone()) - b.forward(x))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert_eq!(d, 0.0);
    }

    /// The U-Net written with Burn's `Conv1d` and tensor ops in `[B, C, N]` (the layout of the
    /// paper's code), as a reference for the fused layers.
    fn reference_forward(net: &UNet1d, x: Tensor<3>) -> Tensor<3> {
        use burn::tensor::activation::{leaky_relu, relu};
        let pad = |x: Tensor<3>, before: usize, after: usize| {
            let n = x.dims()[2];
            let mut parts = vec![];
            if before > 0 {
                parts.push(x.clone().narrow(2, 0, 1).repeat_dim(2, before));
            }
            parts.push(x.clone());
            if after > 0 {
                parts.push(x.narrow(2, n - 1, 1).repeat_dim(2, after));
            }
            Tensor::cat(parts, 2)
        };
        let res = |blk: &ResBlock1d, x: Tensor<3>| {
            let k = blk.first.weight.dims()[2];
            let (lo, hi) = ((k - 1) / 2, k / 2);
            let h = leaky_relu(blk.first.forward(pad(x.clone(), lo, hi)), net.slope);
            leaky_relu(x + blk.second.forward(pad(h, lo, hi)), net.slope)
        };
        let [b, c, n] = x.dims();
        let x = Tensor::cat(
            vec![
                x.clone(),
                Tensor::zeros([b, c, 31], (&x.device(), x.dtype())),
            ],
            2,
        );
        let (mut skips, mut y) = (vec![x.clone()], x);
        for (d, blocks) in net.down.iter().zip(&net.down_res) {
            y = relu(d.forward(y));
            for blk in blocks {
                y = res(blk, y);
            }
            skips.push(y.clone());
        }
        for blk in &net.centre {
            y = res(blk, y);
        }
        skips.pop();
        for (l, u) in net.up.iter().enumerate() {
            let [bb, cc, len] = y.dims();
            let p = pad(y, 1, 1);
            let mid = p.clone().narrow(2, 1, len);
            let left = p.clone().narrow(2, 0, len) * 0.25 + mid.clone() * 0.75;
            let right = mid * 0.75 + p.narrow(2, 2, len) * 0.25;
            y = Tensor::stack::<4>(vec![left, right], 3).reshape([bb, cc, 2 * len]);
            let skip = skips.pop().unwrap().narrow(2, 0, 2 * len);
            y = pad(Tensor::cat(vec![y, skip], 1), 0, 1);
            if l == net.up.len() - 1 {
                y = u.forward(y);
            } else {
                y = relu(u.forward(y));
                for blk in &net.up_res[l] {
                    y = res(blk, y);
                }
            }
        }
        y.narrow(2, 0, n)
    }

    /// The fused network equals the Burn-op reference, values and parameter gradients (f64).
    #[test]
    fn fused_layers_match_the_reference_network() {
        use burn::tensor::{DType, Distribution};
        let dev = Device::flex().autodiff();
        dev.seed(11);
        let net = UNet1dConfig::cfe()
            .init(&dev)
            .map(&mut CastParams(FloatDType::F64));
        for n in [32, 37] {
            let x = Tensor::<3>::random(
                [5, 3, n],
                Distribution::Normal(0.0, 1.0),
                (&dev, DType::F64),
            );
            let r = Tensor::<3>::random(
                [5, 1, n],
                Distribution::Normal(0.0, 1.0),
                (&dev, DType::F64),
            );
            let (a, b) = (net.forward(x.clone()), reference_forward(&net, x));
            let d = (a.clone() - b.clone()).abs().max().into_scalar::<f64>();
            assert!(d < 1e-12, "values differ by {d:e}");
            let ga = (a * r.clone()).sum().backward();
            let gb = (b * r).sum().backward();
            for conv in [&net.down[0], &net.up[2], &net.centre[1].second] {
                let w = conv.weight.val();
                let (x, y) = (w.grad(&ga).unwrap(), w.grad(&gb).unwrap());
                let d = (x - y.clone()).abs().max().into_scalar::<f64>();
                assert!(
                    d < 1e-11 * (1.0 + y.abs().max().into_scalar::<f64>()),
                    "{d:e}"
                );
            }
        }
    }

    #[test]
    fn shapes() {
        let dev = Device::flex();
        for n in [8, 32, 37, 128] {
            let net = UNet1dConfig::cfe().init(&dev);
            assert_eq!(net.forward(Tensor::ones([2, 3, n], &dev)).dims(), [2, 1, n]);
        }
    }
}
