//! What the CPU running this process offers, for kernels compiled per instruction set and
//! chosen at run time.

/// Whether this CPU has AVX2 and FMA (the SIMD builds of the kernels).
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}
