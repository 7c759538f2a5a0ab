//! `diffsim bench machine`: this CPU's measured limits, the yardstick for every kernel's
//! achieved rate: f32 fused multiply-add throughput (one core and all cores) and copy
//! bandwidth (a cache-resident and a memory-sized buffer).
//!
//! The FMA kernel keeps 12 independent 8-lane accumulators (AVX2 + FMA) so that neither the
//! FMA latency nor the loads bound it: its rate is the arithmetic peak a convolution kernel
//! can approach. Copies count the bytes read plus the bytes written.

use crate::error::{DiffsimError, Result};
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// Arguments of `diffsim bench machine`.
#[derive(Debug, Clone, Args)]
pub struct MachineBenchArgs {
    /// Seconds per measurement (each is the best of 5 runs of this length / 5).
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The measured limits.
#[derive(Debug, Clone, Serialize)]
pub struct MachineBenchResult {
    /// Worker threads (rayon's pool: one per core unless RAYON_NUM_THREADS says otherwise).
    pub threads: usize,
    /// Whether the AVX2 + FMA kernel ran (else the portable one, far below the peak).
    pub avx2_fma: bool,
    /// f32 FMA throughput of one core (GFLOP/s, an FMA counted as 2 flops).
    pub fma_gflops_one_core: f64,
    /// f32 FMA throughput of all worker threads together (GFLOP/s).
    pub fma_gflops_all_cores: f64,
    /// Copy bandwidth of one core on a 256 KiB buffer (cache-resident; GB/s read + written).
    pub copy_cache_gbs: f64,
    /// Copy bandwidth of all cores on 64 MiB buffers each (memory; GB/s read + written).
    pub copy_memory_gbs: f64,
}

impl MachineBenchResult {
    /// The report for people.
    pub fn human(&self) -> String {
        format!(
            "f32 FMA peak: {:.1} GFLOP/s on one core, {:.1} GFLOP/s on {} threads{}\n\
             copy: {:.1} GB/s cache-resident (one core), {:.1} GB/s to memory (all cores)",
            self.fma_gflops_one_core,
            self.fma_gflops_all_cores,
            self.threads,
            if self.avx2_fma {
                " (AVX2 + FMA)"
            } else {
                " (portable build: no AVX2 + FMA on this CPU)"
            },
            self.copy_cache_gbs,
            self.copy_memory_gbs,
        )
    }
}

/// FMA rounds per call of [`fma_rounds`]; each round is 12 × 8 lanes × 2 flops.
const ROUNDS: usize = 1 << 16;
const FLOPS_PER_CALL: f64 = (ROUNDS * 12 * 8 * 2) as f64;

/// Runs the measurements.
pub fn bench_machine(args: &MachineBenchArgs) -> Result<MachineBenchResult> {
    if !(args.seconds > 0.0 && args.seconds <= 600.0) {
        return Err(DiffsimError::config("--seconds must be in (0, 600]"));
    }
    let slice = args.seconds / 5.0;
    let threads = rayon::current_num_threads();
    let simd = avx2_fma();
    let fma_rate = |per_thread: usize| {
        best_rate(slice, || {
            let sums: f32 = (0..per_thread)
                .into_par_iter()
                .map(|t| fma_calls(simd, t as f32, 4))
                .sum();
            std::hint::black_box(sums);
            per_thread as f64 * 4.0 * FLOPS_PER_CALL
        })
    };
    let one = fma_rate(1);
    let all = fma_rate(threads);
    let cache = {
        let (src, mut dst) = (vec![1.0f32; 32 << 10], vec![0.0f32; 32 << 10]);
        best_rate(slice, || {
            for _ in 0..256 {
                dst.copy_from_slice(std::hint::black_box(&src));
                std::hint::black_box(&mut dst);
            }
            256.0 * 2.0 * 4.0 * src.len() as f64
        })
    };
    let memory = {
        let mut bufs: Vec<(Vec<f32>, Vec<f32>)> = (0..threads)
            .map(|_| (vec![1.0f32; 16 << 20], vec![0.0f32; 16 << 20]))
            .collect();
        best_rate(slice, || {
            bufs.par_iter_mut()
                .for_each(|(src, dst)| dst.copy_from_slice(std::hint::black_box(src)));
            threads as f64 * 2.0 * 4.0 * (16 << 20) as f64
        })
    };
    Ok(MachineBenchResult {
        threads,
        avx2_fma: simd,
        fma_gflops_one_core: one / 1e9,
        fma_gflops_all_cores: all / 1e9,
        copy_cache_gbs: cache / 1e9,
        copy_memory_gbs: memory / 1e9,
    })
}

/// The best rate (units per second) of `work` (which returns its units) over 5 runs of at
/// least `seconds` each.
fn best_rate(seconds: f64, mut work: impl FnMut() -> f64) -> f64 {
    work();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            let mut units = 0.0;
            while t.elapsed().as_secs_f64() < seconds {
                units += work();
            }
            units / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `calls` × [`ROUNDS`] rounds of 12 independent 8-lane FMAs seeded by `seed`; returns a sum
/// of the accumulators so that nothing is optimised away.
fn fma_calls(simd: bool, seed: f32, calls: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` only where the CPU has AVX2 and FMA.
        return (0..calls)
            .map(|_| unsafe { fma_rounds_avx2(std::hint::black_box(seed)) })
            .sum();
    }
    let _ = simd;
    (0..calls)
        .map(|_| fma_rounds_portable(std::hint::black_box(seed)))
        .sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_rounds_avx2(seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(seed); 12];
    for (i, v) in acc.iter_mut().enumerate() {
        *v = _mm256_add_ps(*v, _mm256_set1_ps(i as f32));
    }
    for _ in 0..ROUNDS {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut out = [0.0f32; 8];
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
    // SAFETY: `out` holds 8 f32.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
}

fn fma_rounds_portable(seed: f32) -> f32 {
    let mut acc: [[f32; 8]; 12] = std::array::from_fn(|i| [seed + i as f32; 8]);
    for _ in 0..ROUNDS {
        for v in acc.iter_mut() {
            for x in v.iter_mut() {
                *x = *x * 0.999_999 + 1e-7;
            }
        }
    }
    acc.iter().flatten().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_agree_and_rates_are_positive() {
        let a = fma_calls(avx2_fma(), 0.5, 1);
        let b = fma_calls(false, 0.5, 1);
        assert!((a - b).abs() <= 1e-2 * b.abs(), "{a} vs {b}");
        let r = bench_machine(&MachineBenchArgs {
            seconds: 0.05,
            json: false,
        })
        .unwrap();
        assert!(r.fma_gflops_one_core > 0.0 && r.copy_memory_gbs > 0.0);
        assert!(
            bench_machine(&MachineBenchArgs {
                seconds: 0.0,
                json: false
            })
            .is_err()
        );
    }
}
