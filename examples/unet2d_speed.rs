//! Forward + backward time of the shape-transition networks at their training size (batch 16,
//! 2 input channels, 64x64): the CFE (2-level U-Net) and one OP_n (3 levels), f32 on Flex,
//! each the minimum and median of `REPS` runs (default 20):
//!
//! ```text
//! cargo run --release --example unet2d_speed
//! ```
//!
//! A joint shape-transition iteration applies the CFE 16 times and the OP networks 15 times,
//! so these two figures bound its network time.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::tensor::{Device, Distribution, Tensor};
use diffsim::nn::UNet2dConfig;
use std::time::Instant;

fn main() {
    let dev = Device::flex().autodiff();
    dev.seed(1);
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
        .max(1);
    for (name, cfg) in [
        ("CFE", UNet2dConfig::shape_cfe()),
        ("OP_n", UNet2dConfig::shape_op()),
    ] {
        let net = cfg.init(&dev);
        let x = Tensor::<4>::random([16, 2, 64, 64], Distribution::Normal(0.0, 1.0), &dev)
            .require_grad();
        let mut ms: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                let y = net.forward(x.clone());
                let grads = (y.clone() * y).sum().backward();
                let _ = x.grad(&grads).expect("x is tracked").into_data();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "{name}: forward + backward, batch 16, 64x64: min {:.1} ms, median {:.1} ms",
            ms[0],
            ms[ms.len() / 2]
        );
    }
}
