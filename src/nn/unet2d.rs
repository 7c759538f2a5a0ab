//! The 2D U-Net of the incompressible-flow control studies (Holl et al. 2020; PhiFlow 1.x's
//! `u_net`): the control-force estimator of the shape transitions (2 levels, inputs ρ_t and the
//! OP prediction, output a scalar potential) and every level of the observation-prediction
//! hierarchy (3 levels, inputs ρ_a and ρ_b, output the predicted midpoint density).
//!
//! Layout (`x: [B, C, H, W]`, H and W multiples of `2^levels`): the input is zero-padded at the
//! high end of both axes by `2^levels − 1` cells; each down level is a stride-2 convolution of
//! kernel 2 (`filters` channels, ReLU) followed by `blocks` residual blocks; each up level
//! doubles both axes by linear interpolation (PhiFlow's `upsample2x`: weights ¼, ¾ with the edge
//! repeated), concatenates the skip of the level above (cut to size), pads one zero cell at the
//! high end of both axes and applies a convolution of kernel 2 (`filters` channels, ReLU, then
//! `blocks` residual blocks), except the last, a linear convolution to `outputs` channels.
//! Residual blocks: `act(x + conv₂(act(conv₁(x))))`, 3x3, edge padding (TensorFlow's SYMMETRIC
//! for one cell), LeakyReLU with slope 0.2. Glorot-uniform weights and zero biases
//! (TensorFlow's defaults). There are no centre blocks: the coarsest level's blocks are the
//! last down level's.

use super::conv::{conv_same, conv_same_act};
use super::conv_flex::Padding;
use super::up_join::up_join;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};

/// Architecture of a [`UNet2d`].
#[derive(Config, Debug, PartialEq)]
pub struct UNet2dConfig {
    /// Input channels (2 for the shape-transition CFE and OP_n).
    #[config(default = 2)]
    pub inputs: usize,
    /// Output channels (1: a potential or a density).
    #[config(default = 1)]
    pub outputs: usize,
    /// Resolution levels below the input (down-samplings).
    #[config(default = 2)]
    pub levels: usize,
    /// Channels of every convolution but the last.
    #[config(default = 16)]
    pub filters: usize,
    /// Residual blocks after every down convolution and every up convolution but the last.
    #[config(default = 2)]
    pub blocks: usize,
    /// Negative slope of the residual blocks' LeakyReLU.
    #[config(default = 0.2)]
    pub slope: f64,
}

/// Two 3x3 convolutions with a skip connection.
#[derive(Module, Debug)]
pub struct ResBlock2d {
    /// First convolution.
    pub first: Conv2d,
    /// Second convolution.
    pub second: Conv2d,
}

/// The 2D U-Net.
#[derive(Module, Debug)]
pub struct UNet2d {
    /// Stride-2 convolutions, one per level.
    pub down: Vec<Conv2d>,
    /// Residual blocks of every down level.
    pub down_res: Vec<Vec<ResBlock2d>>,
    /// Up convolutions, one per level (the last one linear, to the output channels).
    pub up: Vec<Conv2d>,
    /// Residual blocks of every up level but the last.
    pub up_res: Vec<Vec<ResBlock2d>>,
    /// LeakyReLU slope of the residual blocks.
    pub slope: f64,
}

fn conv(channels: [usize; 2], kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let mut c = Conv2dConfig::new(channels, [kernel; 2])
        .with_stride([stride; 2])
        .with_padding(PaddingConfig2d::Valid)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device);
    c.bias = Some(Param::from_tensor(Tensor::zeros([channels[1]], device)));
    c
}

fn res_blocks(n: usize, c: usize, device: &Device) -> Vec<ResBlock2d> {
    (0..n)
        .map(|_| ResBlock2d {
            first: conv([c, c], 3, 1, device),
            second: conv([c, c], 3, 1, device),
        })
        .collect()
}

impl UNet2dConfig {
    /// The shape-transition CFE: 2 levels on `[ρ_t, target]`, output the velocity potential.
    pub fn shape_cfe() -> Self {
        Self::new()
    }

    /// The shape-transition OP_n: 3 levels on `[ρ_a, ρ_b]`, output the midpoint density.
    pub fn shape_op() -> Self {
        Self::new().with_levels(3)
    }

    /// Cells appended (zeros) at the high end of both axes before the first level.
    pub fn end_padding(&self) -> usize {
        (1 << self.levels) - 1
    }

    /// A freshly initialised network (seed the device's RNG first for reproducibility).
    pub fn init(&self, device: &Device) -> UNet2d {
        assert!(self.levels >= 1, "a U-Net needs at least one level");
        let f = self.filters;
        let down = (0..self.levels)
            .map(|l| conv([if l == 0 { self.inputs } else { f }, f], 2, 2, device))
            .collect();
        let down_res = (0..self.levels)
            .map(|_| res_blocks(self.blocks, f, device))
            .collect();
        // Up level l joins the level above's skip: the input's channels for the last one.
        let up = (0..self.levels)
            .map(|l| {
                if l + 1 == self.levels {
                    conv([f + self.inputs, self.outputs], 2, 1, device)
                } else {
                    conv([2 * f, f], 2, 1, device)
                }
            })
            .collect();
        let up_res = (0..self.levels - 1)
            .map(|_| res_blocks(self.blocks, f, device))
            .collect();
        UNet2d {
            down,
            down_res,
            up,
            up_res,
            slope: self.slope,
        }
    }
}

impl UNet2d {
    /// `act(x + conv₂(act(conv₁(x))))` with edge padding: each 3x3 convolution one fused
    /// layer op with [`Padding::Edge`] (the kernels read the edge-padded planes they build).
    fn res_block(&self, blk: &ResBlock2d, x: Tensor<4>) -> Tensor<4> {
        let (w1, b1) = params(&blk.first);
        let (w2, b2) = params(&blk.second);
        let hidden = conv_same_act(x.clone(), w1, b1, None, self.slope, Padding::Edge);
        conv_same_act(hidden, w2, b2, Some(x), self.slope, Padding::Edge)
    }

    /// `x: [B, inputs, H, W]` → `[B, outputs, H, W]`; H and W multiples of `2^levels`.
    ///
    /// Every convolution runs on the fused 'same' kernels: a stride-2 kernel-2 convolution as
    /// a 1x1 convolution of the 2x2 blocks stacked as channels, a kernel-2 convolution over
    /// one zero cell at the high end as a 3x3 'same' convolution whose low row and column of
    /// weights are zero.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let levels = self.down.len();
        assert!(
            h % (1 << levels) == 0 && w % (1 << levels) == 0,
            "U-Net input {h}x{w} is not a multiple of 2^{levels}"
        );
        let pad = (1 << levels) - 1;
        let mut y = x.pad([(0, pad), (0, pad)], PadMode::Constant(0.0));
        let mut skips = vec![y.clone()];
        for (d, blocks) in self.down.iter().zip(&self.down_res) {
            y = stride2_conv_relu(d, y);
            for blk in blocks {
                y = self.res_block(blk, y);
            }
            skips.push(y.clone());
        }
        skips.pop();
        for (l, u) in self.up.iter().enumerate() {
            let joined = up_join(y, skips.pop().expect("one skip per level"));
            let (wk, bk) = params(u);
            let w3 = wk.pad([(1, 0), (1, 0)], PadMode::Constant(0.0));
            if l + 1 < levels {
                y = conv_same_act(joined, w3, bk, None, 0.0, Padding::Zero);
                for blk in &self.up_res[l] {
                    y = self.res_block(blk, y);
                }
            } else {
                y = conv_same(joined, w3, bk);
            }
        }
        y
    }
}

/// `(weight [C_out, C_in, k, k], bias [C_out])` of a convolution.
fn params(c: &Conv2d) -> (Tensor<4>, Tensor<1>) {
    let bias = c.bias.as_ref().expect("U-Net convolutions have biases");
    (c.weight.val(), bias.val())
}

/// `ReLU(conv(x, w) + b)` with kernel 2, stride 2, no padding (the last row and column of an
/// odd-sized input unused): the 2x2 blocks of `x` stacked as channels `(c, dy, dx)`, then a
/// 1x1 convolution.
fn stride2_conv_relu(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let (oh, ow) = (h / 2, w / 2);
    let blocks = x
        .narrow(2, 0, 2 * oh)
        .narrow(3, 0, 2 * ow)
        .reshape([b, c, oh, 2, ow, 2])
        .permute([0, 1, 3, 5, 2, 4])
        .reshape([b, c * 4, oh, ow]);
    let (wk, bk) = params(conv);
    let co = wk.dims()[0];
    let w1 = wk.reshape([co, c * 4, 1, 1]);
    conv_same_act(blocks, w1, bk, None, 0.0, Padding::Zero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// PhiFlow's linear 2x up-sampling of the last two axes: `[B, C, H, W] → [B, C, 2H, 2W]`, new
    /// cells ¼ of the outer and ¾ of the nearer old neighbour, the edge value repeated beyond.
    fn upsample2x(x: Tensor<4>) -> Tensor<4> {
        let along = |x: Tensor<4>, axis: usize| {
            let n = x.dims()[axis];
            let padded = if axis == 2 {
                x.clone().pad([(1, 1), (0, 0)], PadMode::Edge)
            } else {
                x.clone().pad([(1, 1)], PadMode::Edge)
            };
            let lower = padded.clone().narrow(axis, 0, n);
            let upper = padded.narrow(axis, 2, n);
            let even = lower * 0.25 + x.clone() * 0.75;
            let odd = x * 0.75 + upper * 0.25;
            let mut dims = even.dims();
            let joined = Tensor::stack::<5>(vec![even, odd], axis + 1);
            dims[axis] *= 2;
            joined.reshape(dims)
        };
        along(along(x, 2), 3)
    }

    #[test]
    fn parameter_counts() {
        // Per level: a kernel-2 convolution and two residual blocks of two 3x3 convolutions;
        // the last up convolution maps 16 + 2 channels to 1.
        let dev = Device::flex();
        let res = 2 * (16 * 16 * 9 + 16);
        let cfe = 144 + 2 * res + 1040 + 2 * res + 2064 + 2 * res + (18 * 4 + 1);
        let op = cfe + 1040 + 2 * res + 2064 + 2 * res;
        assert_eq!(UNet2dConfig::shape_cfe().init(&dev).num_params(), cfe);
        assert_eq!(UNet2dConfig::shape_op().init(&dev).num_params(), op);
        assert_eq!((cfe, op), (31_161, 52_825));
    }

    #[test]
    fn shapes() {
        let dev = Device::flex();
        for (cfg, n) in [
            (UNet2dConfig::shape_cfe(), 8),
            (UNet2dConfig::shape_op(), 16),
        ] {
            let net = cfg.init(&dev);
            assert_eq!(
                net.forward(Tensor::ones([2, 2, n, 2 * n], &dev)).dims(),
                [2, 1, n, 2 * n]
            );
        }
    }

    /// The network written with Burn's layers as the authors wrote it (explicit paddings,
    /// valid convolutions).
    fn reference_forward(net: &UNet2d, x: Tensor<4>) -> Tensor<4> {
        use burn::tensor::activation::{leaky_relu, relu};
        let edge = |t: Tensor<4>| t.pad([(1, 1), (1, 1)], PadMode::Edge);
        let res = |blk: &ResBlock2d, x: Tensor<4>| {
            let h = leaky_relu(blk.first.forward(edge(x.clone())), net.slope);
            leaky_relu(blk.second.forward(edge(h)) + x, net.slope)
        };
        let levels = net.down.len();
        let pad = (1 << levels) - 1;
        let mut y = x.pad([(0, pad), (0, pad)], PadMode::Constant(0.0));
        let mut skips = vec![y.clone()];
        for (d, blocks) in net.down.iter().zip(&net.down_res) {
            y = relu(d.forward(y));
            for blk in blocks {
                y = res(blk, y);
            }
            skips.push(y.clone());
        }
        skips.pop();
        for (l, u) in net.up.iter().enumerate() {
            y = upsample2x(y);
            let [_, _, yh, yw] = y.dims();
            let skip = skips.pop().unwrap().narrow(2, 0, yh).narrow(3, 0, yw);
            let joined =
                Tensor::cat(vec![y, skip], 1).pad([(0, 1), (0, 1)], PadMode::Constant(0.0));
            y = u.forward(joined);
            if l + 1 < levels {
                y = relu(y);
                for blk in &net.up_res[l] {
                    y = res(blk, y);
                }
            }
        }
        y
    }

    #[test]
    fn fused_forward_matches_burns_layers_in_values_and_gradients() {
        use crate::nn::CastParams;
        use burn::module::Module;
        use burn::tensor::{Distribution, FloatDType};
        let dev = Device::flex().autodiff();
        dev.seed(11);
        for cfg in [
            UNet2dConfig::shape_cfe().with_filters(6),
            UNet2dConfig::shape_op().with_filters(5),
        ] {
            let net = cfg.init(&dev).map(&mut CastParams(FloatDType::F64));
            let x = Tensor::<4>::random([2, 2, 16, 24], Distribution::Normal(0.0, 1.0), &dev)
                .cast(FloatDType::F64)
                .require_grad();
            let (a, b) = (net.forward(x.clone()), reference_forward(&net, x.clone()));
            let diff: f64 = (a.clone() - b.clone()).abs().max().into_scalar();
            assert!(diff < 1e-12, "outputs differ by {diff:e}");
            let w = Tensor::<4>::random(a.dims(), Distribution::Normal(0.0, 1.0), &dev)
                .cast(FloatDType::F64);
            let (ga, gb) = ((a * w.clone()).sum().backward(), (b * w).sum().backward());
            let gx: f64 = (x.grad(&ga).unwrap() - x.grad(&gb).unwrap())
                .abs()
                .max()
                .into_scalar();
            assert!(gx < 1e-12, "input gradients differ by {gx:e}");
            let (wa, wb) = (
                net.up[0].weight.grad(&ga).unwrap(),
                net.up[0].weight.grad(&gb).unwrap(),
            );
            let gw: f64 = (wa - wb).abs().max().into_scalar();
            assert!(gw < 1e-11, "weight gradients differ by {gw:e}");
        }
    }

    #[test]
    fn upsampling_is_phiflows() {
        // One row [1, 2, 4]: x2 along W gives [1, 1.25, 1.75, 2.5, 3.5, 4]; H of one row
        // repeats; the skip channel follows, cut to 2x6.
        let dev = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 2.0, 4.0], [1, 1, 1, 3]), &dev);
        let skip = Tensor::<4>::from_data(
            TensorData::new((0..21).map(|v| v as f32).collect(), [1, 1, 3, 7]),
            &dev,
        );
        let row = [1.0, 1.25, 1.75, 2.5, 3.5, 4.0];
        let cut = [
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0,
        ];
        for y in [
            up_join(x.clone(), skip.clone()),
            Tensor::cat(vec![upsample2x(x), skip.narrow(2, 0, 2).narrow(3, 0, 6)], 1),
        ] {
            let y: Vec<f32> = y.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(y, [&row[..], &row, &cut].concat());
        }
    }
}
