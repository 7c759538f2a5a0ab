//! Planned marker sequences in HDF5, for running a trained flow controller on one's own data:
//! `density [S, T, n, n]` (f32 or f64; frame 0 the start, frame `T − 1` the target, each frame
//! row-major with row 0 at the bottom) and `target [S]` (integer: the target bucket of each
//! sequence, for indirect control). h5py writes it with
//! `f.create_dataset("density", data=d.astype("f4")); f.create_dataset("target", data=t)`.

use super::h5::{h5err, open_read};
use crate::error::{DiffsimError, Result};
use std::path::Path;

/// Sequences read from a plan file.
#[derive(Clone, Debug, PartialEq)]
pub struct Plans {
    /// `[S, T, n, n]`.
    pub density: Vec<f32>,
    /// `[S]`.
    pub target: Vec<usize>,
    /// `S`.
    pub sequences: usize,
}

/// Reads `path`, requiring `frames` frames of `n x n` cells per sequence and targets below
/// `targets`; every mismatch is an error naming the file and what it holds.
pub fn read_plans(path: &Path, frames: usize, n: usize, targets: usize) -> Result<Plans> {
    if !path.is_file() {
        return Err(DiffsimError::file(path, "no such plan file"));
    }
    let file = open_read(path).map_err(|_| DiffsimError::file(path, "not a readable HDF5 file"))?;
    let err = h5err(path);
    let ds = file
        .dataset("density")
        .map_err(|_| DiffsimError::file(path, "no dataset 'density' [S, T, n, n]"))?;
    let dims = ds.shape();
    if dims.len() != 4 || dims[0] == 0 || dims[1..] != [frames, n, n] {
        return Err(DiffsimError::file(
            path,
            format!(
                "density has shape {dims:?}, expected [S, {frames}, {n}, {n}] (S ≥ 1 sequences of {frames} frames at {n}x{n})"
            ),
        ));
    }
    let density: Vec<f32> = ds.read_raw().map_err(&err)?;
    if density.iter().any(|x| !x.is_finite()) {
        return Err(DiffsimError::file(path, "density holds non-finite values"));
    }
    let sequences = dims[0];
    let raw: Vec<i64> = file
        .dataset("target")
        .and_then(|d| d.read_raw())
        .map_err(|_| DiffsimError::file(path, "no integer dataset 'target' [S]"))?;
    if raw.len() != sequences || raw.iter().any(|&t| t < 0 || t as usize >= targets) {
        return Err(DiffsimError::file(
            path,
            format!(
                "target must hold {sequences} bucket indices in 0..{targets}, got {} values",
                raw.len()
            ),
        ));
    }
    Ok(Plans {
        density,
        target: raw.into_iter().map(|t| t as usize).collect(),
        sequences,
    })
}
