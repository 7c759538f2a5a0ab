//! The 1D U-Net as a program over planes ("slots"), the form in which
//! [`super::unet1d_op`] applies a whole network as one op: every convolution with its
//! sizes and where its parameters sit in the packed parameter vector, the upsampling and
//! the skip connections. The program does not depend on the batch or the length.

use super::line_conv_flex::LineConvSpec;

/// One convolution of the network.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvLayer {
    /// Input channels.
    pub ci: usize,
    /// Output channels.
    pub co: usize,
    /// Taps.
    pub k: usize,
    /// Offset of the weights `[co, ci, k]` in the packed parameters.
    pub weight: usize,
    /// Offset of the biases `[co]` in the packed parameters.
    pub bias: usize,
    /// Padding, stride and activation.
    pub spec: LineConvSpec,
}

/// One step of the program. Slots are numbered in creation order and a step's output slot
/// always comes after its inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// `y = act(conv(pad(x)) + b [+ residual])` with layer `layer`.
    Conv {
        /// Index into [`UNetArch::layers`].
        layer: usize,
        /// Input slot.
        x: usize,
        /// Output slot.
        y: usize,
        /// Slot added before the activation.
        residual: Option<usize>,
    },
    /// Channels `0..channels(x)` of `y` are `x` upsampled 2× (linear, edge values repeated).
    Upsample {
        /// Input slot.
        x: usize,
        /// Output slot (twice the length).
        y: usize,
    },
    /// Channels `at..at + channels(x)` of `y` are the first `length(y)` points of `x`.
    Skip {
        /// Input slot.
        x: usize,
        /// Output slot.
        y: usize,
        /// First channel written.
        at: usize,
    },
}

/// A network as a program.
#[derive(Clone, Debug, PartialEq)]
pub struct UNetArch {
    /// Input channels.
    pub inputs: usize,
    /// Zero points appended to the input before the first layer.
    pub end_padding: usize,
    /// The convolutions, in program order (the order of the packed parameters).
    pub layers: Vec<ConvLayer>,
    /// The program.
    pub steps: Vec<Step>,
    /// Channels of every slot; slot 0 is the padded input, the last slot the output.
    pub channels: Vec<usize>,
    /// Length of the packed parameter vector.
    pub params: usize,
}

impl UNetArch {
    /// A program with only its input slot (`inputs` channels, `end_padding` zeros appended).
    pub fn new(inputs: usize, end_padding: usize) -> Self {
        Self {
            inputs,
            end_padding,
            layers: vec![],
            steps: vec![],
            channels: vec![inputs],
            params: 0,
        }
    }

    /// A new slot of `channels` channels.
    pub fn slot(&mut self, channels: usize) -> usize {
        self.channels.push(channels);
        self.channels.len() - 1
    }

    /// Appends a convolution `[ci, co, k]` of slot `x` (plus `residual`); returns its output
    /// slot.
    pub fn conv(
        &mut self,
        [ci, co, k]: [usize; 3],
        x: usize,
        residual: Option<usize>,
        spec: LineConvSpec,
    ) -> usize {
        assert_eq!(
            self.channels[x], ci,
            "convolution of {ci} channels on slot {x}"
        );
        let y = self.slot(co);
        self.steps.push(Step::Conv {
            layer: self.layers.len(),
            x,
            y,
            residual,
        });
        self.layers.push(ConvLayer {
            ci,
            co,
            k,
            weight: self.params,
            bias: self.params + co * ci * k,
            spec,
        });
        self.params += co * ci * k + co;
        y
    }

    /// Appends `x` upsampled 2× and joined with the first points of `skip` along the
    /// channels; returns the joined slot.
    pub fn upsample_join(&mut self, x: usize, skip: usize) -> usize {
        let (cx, cs) = (self.channels[x], self.channels[skip]);
        let y = self.slot(cx + cs);
        self.steps.push(Step::Upsample { x, y });
        self.steps.push(Step::Skip { x: skip, y, at: cx });
        y
    }

    /// The output slot.
    pub fn output(&self) -> usize {
        self.channels.len() - 1
    }

    /// Lengths of every slot for inputs of `n` points.
    pub fn lengths(&self, n: usize) -> Vec<usize> {
        let mut len = vec![0; self.channels.len()];
        len[0] = n + self.end_padding;
        for step in &self.steps {
            match *step {
                Step::Conv { layer, x, y, .. } => {
                    let l = &self.layers[layer];
                    len[y] = l.spec.lout(len[x], l.k);
                }
                Step::Upsample { x, y } => len[y] = 2 * len[x],
                Step::Skip { .. } => {}
            }
        }
        len
    }
}
