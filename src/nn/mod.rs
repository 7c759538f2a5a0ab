//! Burn modules (`XConfig` + `X` pairs): the Solver-in-the-Loop ResNet corrector, the 1D
//! U-Net of the Burgers control study, the 2D U-Net of the flow-control studies, and the
//! 'same' convolution op it runs on (its own backward node, see [`conv`]).

pub mod conv;
pub mod conv_flex;
mod conv_layer_flex;
mod corrector;
mod line_conv_flex;
#[cfg(test)]
mod test_tensors;
mod unet1d;
mod unet1d_flex;
pub mod unet1d_op;
mod unet1d_plan;
mod unet2d;
mod up_join;

pub use conv::{ConvOps, conv_same, conv_same_act};
pub use conv_flex::Padding;
pub use corrector::{Corrector, CorrectorConfig, ResBlock};
pub use line_conv_flex::{Activation, LineConvSpec};
pub use unet1d::{CastParams, FreshParams, PackedUNet1d, ResBlock1d, UNet1d, UNet1dConfig};
pub use unet1d_op::{UNetOps, unet1d};
pub use unet1d_plan::{ConvLayer, Step, UNetArch};
pub use unet2d::{ResBlock2d, UNet2d, UNet2dConfig};
pub use up_join::{UpJoinOps, up_join};
