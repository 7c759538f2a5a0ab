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

/// The instruction sets a kernel is compiled for (the same source each time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Build {
    /// The baseline target.
    #[default]
    Portable,
    /// AVX2 + FMA.
    Avx2,
    /// AVX-512 (F, VL) besides AVX2 + FMA: 512-bit registers, and 32 vector registers
    /// instead of 16 for 256-bit code (the convolutions' 16-lane blocks become single
    /// registers: forward 155 → 170 GFLOP/s at 16 → 16 channels on a Zen 4 core pair).
    Avx512,
}

impl Build {
    /// The fastest build this CPU runs.
    pub fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && avx2_fma()
        {
            return Self::Avx512;
        }
        Self::from(avx2_fma())
    }

    /// Every build this CPU runs (for tests).
    pub fn available() -> Vec<Self> {
        match Self::best() {
            Self::Portable => vec![Self::Portable],
            Self::Avx2 => vec![Self::Portable, Self::Avx2],
            Self::Avx512 => vec![Self::Portable, Self::Avx2, Self::Avx512],
        }
    }
}

impl From<bool> for Build {
    /// AVX2 + FMA when `simd`, else the baseline.
    fn from(simd: bool) -> Self {
        if simd { Self::Avx2 } else { Self::Portable }
    }
}
