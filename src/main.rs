//! The `diffsim` binary; everything lives in [`diffsim::cli`].

fn main() -> std::process::ExitCode {
    diffsim::cli::main()
}
