//! The grid floor's error: an invalid resolution, domain, boundary or obstacle description. It
//! converts into the crate's error with `?`.

/// A grid, boundary or obstacle description that cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct GridError(pub String);

impl GridError {
    /// An error with this message.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Result alias of the grid floor.
pub type Result<T, E = GridError> = std::result::Result<T, E>;
