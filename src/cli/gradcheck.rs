//! `diffsim gradcheck`: every differentiable op and unroll against f64 central differences
//! (the checks live in `diffsim::gradcheck`).

use crate::error::{DiffsimError, Result};
use crate::gradcheck::{GradCheckConfig, GradCheckReport, run_gradchecks};
use clap::Args;

/// Arguments of `diffsim gradcheck`.
#[derive(Debug, Clone, Args)]
pub struct GradcheckArgs {
    /// Check one op or chain (repeatable); see `--list`. Default: all.
    #[arg(long)]
    pub op: Vec<String>,
    /// Check everything (the default when no `--op` is given).
    #[arg(long)]
    pub all: bool,
    /// List the names and exit.
    #[arg(long)]
    pub list: bool,
    /// Relative tolerance: a probe passes iff |AD − FD| ≤ atol + rtol·|FD|.
    #[arg(long, default_value_t = 1e-5)]
    pub rtol: f64,
    /// Absolute tolerance.
    #[arg(long, default_value_t = 1e-9)]
    pub atol: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `diffsim gradcheck`: prints one row per check; fails when any check fails.
pub fn gradcheck(args: &GradcheckArgs) -> Result<Vec<GradCheckReport>> {
    if !(args.rtol > 0.0 && args.atol >= 0.0) {
        return Err(DiffsimError::config("--rtol must be > 0 and --atol >= 0"));
    }
    let cfg = GradCheckConfig {
        rtol: args.rtol,
        atol: args.atol,
        ..Default::default()
    };
    run_gradchecks(&args.op, &cfg)
}
