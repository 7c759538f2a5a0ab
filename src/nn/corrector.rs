//! The Solver-in-the-Loop ResNet corrector (docs/wake-flow.md §3, `model_mars_moon`): a 5×5
//! convolution to `width` channels, `blocks` residual blocks of two 5×5 convolutions with a
//! skip connection, and a linear 5×5 convolution to 2 channels; LeakyReLU(0.3), 'same' zero
//! padding, Glorot-uniform weights and zero biases (Keras defaults).
//!
//! [`CorrectorConfig::mars_moon`] is the paper's network (32 channels, 5 blocks, 260,354
//! parameters); [`CorrectorConfig::small`] the CPU-scale one of docs/wake-flow.md §7 (16 channels, 2 blocks,
//! 27,682 parameters, output weights ×0.1 at initialisation so that the first corrections are
//! small and the unrolled training starts near the source solver).

use super::conv::{conv_same, conv_same_act};
use super::conv_flex::Padding;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LeakyRelu, LeakyReluConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

/// Architecture of a [`Corrector`].
#[derive(Config, Debug, PartialEq)]
pub struct CorrectorConfig {
    /// Input channels (docs/wake-flow.md §3: v_y, v_x, Re).
    #[config(default = 3)]
    pub inputs: usize,
    /// Output channels (Δv_y, Δv_x).
    #[config(default = 2)]
    pub outputs: usize,
    /// Channels of the hidden layers.
    #[config(default = 32)]
    pub width: usize,
    /// Residual blocks.
    #[config(default = 5)]
    pub blocks: usize,
    /// Square kernel size (odd).
    #[config(default = 5)]
    pub kernel: usize,
    /// Negative slope of the LeakyReLUs.
    #[config(default = 0.3)]
    pub slope: f64,
    /// Factor on the output layer's initial weights (1: Glorot as is).
    #[config(default = 1.0)]
    pub output_init_scale: f64,
}

impl CorrectorConfig {
    /// The paper's network (docs/wake-flow.md §3).
    pub fn mars_moon() -> Self {
        Self::new()
    }

    /// The CPU-scale network of docs/wake-flow.md §7.
    pub fn small() -> Self {
        Self::new()
            .with_width(16)
            .with_blocks(2)
            .with_output_init_scale(0.1)
    }

    fn conv(&self, channels: [usize; 2], device: &Device) -> Conv2d {
        let mut conv = Conv2dConfig::new(channels, [self.kernel; 2])
            .with_padding(PaddingConfig2d::Same)
            .with_initializer(Initializer::XavierUniform { gain: 1.0 })
            .init(device);
        conv.bias = Some(Param::from_tensor(Tensor::zeros([channels[1]], device)));
        conv
    }

    /// A freshly initialised network (seed the device's RNG first for reproducibility).
    pub fn init(&self, device: &Device) -> Corrector {
        let w = self.width;
        let mut output = self.conv([w, self.outputs], device);
        if self.output_init_scale != 1.0 {
            // Rebuilt from data: a parameter must be a leaf of the autodiff graph.
            let scaled = output.weight.val().mul_scalar(self.output_init_scale);
            output.weight = Param::from_tensor(Tensor::from_data(scaled.into_data(), device));
        }
        Corrector {
            input: self.conv([self.inputs, w], device),
            blocks: (0..self.blocks)
                .map(|_| ResBlock {
                    first: self.conv([w, w], device),
                    second: self.conv([w, w], device),
                })
                .collect(),
            output,
            activation: LeakyReluConfig::new()
                .with_negative_slope(self.slope)
                .init(),
        }
    }
}

/// Two convolutions with a skip connection: `act(x + conv₂(act(conv₁(x))))`.
#[derive(Module, Debug)]
pub struct ResBlock {
    /// First convolution.
    pub first: Conv2d,
    /// Second convolution.
    pub second: Conv2d,
}

/// The corrector network.
#[derive(Module, Debug)]
pub struct Corrector {
    /// `inputs → width`.
    pub input: Conv2d,
    /// Residual blocks.
    pub blocks: Vec<ResBlock>,
    /// `width → outputs`, linear.
    pub output: Conv2d,
    /// LeakyReLU.
    pub activation: LeakyRelu,
}

impl Corrector {
    /// `x: [B, inputs, ny, nx]` → `[B, outputs, ny, nx]`. Each hidden layer (convolution,
    /// residual, activation) is one op with one backward node ([`conv_same_act`]).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let slope = self.activation.negative_slope;
        let mut h = apply_act(&self.input, x, None, slope);
        for b in &self.blocks {
            let inner = apply_act(&b.first, h.clone(), None, slope);
            h = apply_act(&b.second, inner, Some(h), slope);
        }
        apply(&self.output, h)
    }
}

/// The parameters `(w, b)` of a layer (the corrector's convolutions all have biases).
fn params(conv: &Conv2d) -> (Tensor<4>, Tensor<1>) {
    let bias = conv
        .bias
        .as_ref()
        .expect("corrector convolutions have biases");
    (conv.weight.val(), bias.val())
}

/// A linear layer through [`conv_same`] (Burn's `Conv2d` holds the parameters and the record
/// layout; its forward would give the slow weight gradient, see [`super::conv`]).
fn apply(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let (w, b) = params(conv);
    conv_same(x, w, b)
}

/// `LeakyReLU(conv(x) + r)`, one op.
fn apply_act(conv: &Conv2d, x: Tensor<4>, r: Option<Tensor<4>>, slope: f64) -> Tensor<4> {
    let (w, b) = params(conv);
    conv_same_act(x, w, b, r, slope, Padding::Zero)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_the_paper_and_the_cpu_variant() {
        let dev = Device::flex();
        assert_eq!(
            CorrectorConfig::mars_moon().init(&dev).num_params(),
            260_354
        );
        assert_eq!(CorrectorConfig::small().init(&dev).num_params(), 27_682);
    }

    /// The network's convolutions give Burn's `Conv2d` outputs and parameter gradients (the
    /// weight gradient is computed differently, see `nn::conv`), in f64.
    #[test]
    fn conv_same_matches_burns_conv2d_values_and_gradients() {
        use burn::tensor::{DType, Distribution};
        let dev = Device::flex().autodiff();
        dev.seed(3);
        let conv = CorrectorConfig::small().conv([5, 6], &dev);
        let conv = Conv2d {
            weight: Param::from_tensor(
                Tensor::from_data(conv.weight.val().into_data(), (&dev, DType::F64)).require_grad(),
            ),
            bias: Some(Param::from_tensor(
                Tensor::random([6], Distribution::Normal(0.0, 1.0), (&dev, DType::F64))
                    .require_grad(),
            )),
            ..conv
        };
        let x = Tensor::<4>::random(
            [3, 5, 9, 7],
            Distribution::Normal(0.0, 1.0),
            (&dev, DType::F64),
        )
        .require_grad();
        let r = Tensor::<4>::random(
            [3, 6, 9, 7],
            Distribution::Normal(0.0, 1.0),
            (&dev, DType::F64),
        );
        let ours = apply(&conv, x.clone());
        let burns = conv.forward(x.clone());
        let diff = |a: Tensor<4>, b: Tensor<4>| (a - b).abs().max().into_scalar::<f64>();
        assert!(diff(ours.clone(), burns.clone()) < 1e-12);
        let grads_of = |y: Tensor<4>| {
            let g = (y * r.clone()).sum().backward();
            (
                conv.weight.val().grad(&g).unwrap(),
                conv.bias.as_ref().unwrap().val().grad(&g).unwrap(),
                x.grad(&g).unwrap(),
            )
        };
        let (w1, b1, x1) = grads_of(ours);
        let (w2, b2, x2) = grads_of(burns);
        let scale = w2.clone().abs().max().into_scalar::<f64>();
        assert!(diff(w1, w2) < 1e-12 * scale);
        assert!((b1 - b2).abs().max().into_scalar::<f64>() < 1e-10);
        assert!(diff(x1, x2) < 1e-10);
    }

    /// The whole network (fused layer ops) gives the values and parameter gradients of the
    /// same network in Burn's own layers (`Conv2d`, `LeakyRelu`, additions), in f64.
    #[test]
    fn fused_layers_match_burns_layers() {
        use burn::tensor::{DType, Distribution};
        let dev = Device::flex().autodiff();
        dev.seed(5);
        let cfg = CorrectorConfig::small().with_width(6).with_blocks(2);
        let net = cfg.init(&dev);
        // Every parameter in f64 as a fresh leaf, biases non-zero.
        let to64 = |c: &Conv2d| Conv2d {
            weight: Param::from_tensor(
                Tensor::from_data(c.weight.val().into_data(), (&dev, DType::F64)).require_grad(),
            ),
            bias: Some(Param::from_tensor(
                Tensor::random(
                    c.bias.as_ref().unwrap().val().dims(),
                    Distribution::Normal(0.0, 0.3),
                    (&dev, DType::F64),
                )
                .require_grad(),
            )),
            ..c.clone()
        };
        let net = Corrector {
            input: to64(&net.input),
            blocks: net
                .blocks
                .iter()
                .map(|b| ResBlock {
                    first: to64(&b.first),
                    second: to64(&b.second),
                })
                .collect(),
            output: to64(&net.output),
            activation: net.activation.clone(),
        };
        let x = Tensor::<4>::random(
            [2, 3, 9, 7],
            Distribution::Normal(0.0, 1.0),
            (&dev, DType::F64),
        )
        .require_grad();
        let burns = {
            let act = |t| net.activation.forward(t);
            let mut h = act(net.input.forward(x.clone()));
            for b in &net.blocks {
                let inner = act(b.first.forward(h.clone()));
                h = act(h + b.second.forward(inner));
            }
            net.output.forward(h)
        };
        let ours = net.forward(x.clone());
        let r = Tensor::<4>::random(
            [2, 2, 9, 7],
            Distribution::Normal(0.0, 1.0),
            (&dev, DType::F64),
        );
        let diff = |a: Tensor<4>, b: Tensor<4>| (a - b).abs().max().into_scalar::<f64>();
        assert!(diff(ours.clone(), burns.clone()) < 1e-12);
        let g1 = (ours * r.clone()).sum().backward();
        let g2 = (burns * r).sum().backward();
        let dx = diff(x.grad(&g1).unwrap(), x.grad(&g2).unwrap());
        assert!(dx < 1e-10, "input gradient differs by {dx}");
        for c in [
            &net.input,
            &net.blocks[1].first,
            &net.blocks[1].second,
            &net.output,
        ] {
            let (w1, w2) = (
                c.weight.val().grad(&g1).unwrap(),
                c.weight.val().grad(&g2).unwrap(),
            );
            let scale = w2.clone().abs().max().into_scalar::<f64>();
            assert!(diff(w1, w2) < 1e-11 * scale.max(1.0));
            let b = c.bias.as_ref().unwrap().val();
            let (b1, b2) = (b.grad(&g1).unwrap(), b.grad(&g2).unwrap());
            assert!((b1 - b2).abs().max().into_scalar::<f64>() < 1e-10);
        }
    }

    #[test]
    fn same_padding_keeps_the_grid_and_biases_start_at_zero() {
        let dev = Device::flex();
        let net = CorrectorConfig::small().init(&dev);
        let y = net.forward(Tensor::ones([2, 3, 8, 4], &dev));
        assert_eq!(y.dims(), [2, 2, 8, 4]);
        let b = net.input.bias.as_ref().unwrap().val();
        assert_eq!(b.abs().sum().into_scalar::<f32>(), 0.0);
        // A zero input gives exactly zero output (zero biases throughout).
        let z = net.forward(Tensor::zeros([1, 3, 8, 4], &dev));
        assert_eq!(z.abs().max().into_scalar::<f32>(), 0.0);
    }
}
