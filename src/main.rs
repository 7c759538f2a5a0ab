//! The `diffsim` binary; everything lives in [`diffsim::cli`].

/// mimalloc instead of the system allocator: tensors of 0.1–2 MB are allocated and freed
/// thousands of times per second, which glibc serves from fresh zeroed pages (page faults
/// were ~5% of a DP-CFE gradient evaluation).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    diffsim::cli::main()
}
