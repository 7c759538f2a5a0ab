//! Compute devices by name, as the command line and the settings files spell them.

/// The compute device of a name: `flex` (CPU, default), `wgpu` or `cuda` (the
/// latter two when built with the cargo feature of the same name; they run the grid ops as
/// CubeCL kernels).
pub fn by_name(name: &str) -> crate::error::Result<burn::tensor::Device> {
    match name {
        "flex" | "cpu" => Ok(burn::tensor::Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(burn::tensor::Device::wgpu(
            burn::tensor::DeviceKind::DefaultDevice,
        )),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(burn::tensor::Device::cuda(0)),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" => Err(not_built(name)),
        #[cfg(not(feature = "cuda"))]
        "cuda" => Err(not_built(name)),
        _ => Err(crate::error::DiffsimError::config(format!(
            "unknown device '{name}': use flex, wgpu or cuda"
        ))),
    }
}

/// The error for a GPU backend whose cargo feature is off.
#[cfg(not(all(feature = "wgpu", feature = "cuda")))]
fn not_built(name: &str) -> crate::error::DiffsimError {
    crate::error::DiffsimError::config(format!(
        "diffsim was built without the '{name}' feature; rebuild with `cargo build --release --features {name}`"
    ))
}
