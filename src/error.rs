//! Error type shared by the library and the command line.
//!
//! Every variant renders as one line that names the problem and, where there is one, the fix.
//! The floors below the physics have their own errors ([`GridError`], [`SolveError`]) that
//! convert into this one; this file sits above them and they never import it.

use crate::grid::GridError;
use crate::linalg::SolveError;

/// Everything that can go wrong in diffsim for reasons outside the program (input, files,
/// numerics); programmer errors (shape mismatches between internal arrays) panic instead.
#[derive(Debug, thiserror::Error)]
pub enum DiffsimError {
    /// A configuration value is out of range or inconsistent with another one.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A scene name that is not built in and is not a readable TOML file.
    #[error("unknown scene '{name}': use one of {known} or a path to a .toml scene file")]
    UnknownScene { name: String, known: String },
    /// A grid, boundary or obstacle description is invalid.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// A linear solve failed (non-convergence, factorisation of a singular system).
    #[error(transparent)]
    Solve(#[from] SolveError),
    /// Newton's method failed on an implicit solids step (no convergence within the
    /// iteration cap, a non-finite state, no positive definite Newton matrix).
    #[error(
        "implicit step {step}: {message}; reduce the time step or raise NewtonConfig::max_iters"
    )]
    Newton {
        /// The step that failed.
        step: usize,
        /// What went wrong.
        message: String,
    },
    /// The simulation state stopped being finite.
    #[error(
        "the simulation blew up: non-finite {field} after step {step}{}; reduce dt or raise the viscosity",
        cfl.map(|c| format!(" (CFL {c:.2})")).unwrap_or_default()
    )]
    NonFinite {
        /// The field that stopped being finite.
        field: &'static str,
        /// The step after which it was detected.
        step: usize,
        /// The CFL number of the state, where it could still be measured.
        cfl: Option<f64>,
    },
    /// An HDF5 file could not be read or written, or has the wrong layout.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// Plotting failed.
    #[error("plot {path}: {message}")]
    Plot { path: String, message: String },
}

impl DiffsimError {
    /// Shorthand for [`DiffsimError::Config`].
    pub fn config(msg: impl Into<String>) -> Self {
        Self::Config(msg.into())
    }

    /// The same error with a configuration message prefixed by `what` (for example the file
    /// it concerns); other kinds unchanged.
    pub fn within(self, what: impl std::fmt::Display) -> Self {
        match self {
            Self::Config(msg) => Self::Config(format!("{what}: {msg}")),
            other => other,
        }
    }

    /// Shorthand for [`DiffsimError::Newton`].
    pub fn newton(step: usize, message: impl Into<String>) -> Self {
        Self::Newton {
            step,
            message: message.into(),
        }
    }

    /// Shorthand for [`DiffsimError::File`].
    pub fn file(path: impl AsRef<std::path::Path>, message: impl std::fmt::Display) -> Self {
        Self::File {
            path: path.as_ref().display().to_string(),
            message: message.to_string(),
        }
    }
}

/// Result alias used across the crate.
pub type Result<T, E = DiffsimError> = std::result::Result<T, E>;
