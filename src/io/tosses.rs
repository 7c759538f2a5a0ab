//! Recorded rigid-body tosses (HDF5): `poses [frames, 7]` f64 rows `(x, y, z, qw, qx, qy, qz)`
//! with every toss's frames one after the other, and `offsets [tosses + 1]` (toss `k` is rows
//! `offsets[k]..offsets[k+1]`); the root attribute `rate_hz` is the frame rate. The ContactNets
//! cube tosses ship in this layout in `data/contact-nets/tosses.h5`.

use super::h5::{h5err, open_read};
use crate::error::{DiffsimError, Result};
use std::path::Path;

/// One frame: position and orientation (unit quaternion, scalar first, body → world).
pub type Pose = ([f64; 3], [f64; 4]);

/// Recorded tosses and their frame rate.
pub struct Tosses {
    /// Per toss, its frames.
    pub tosses: Vec<Vec<Pose>>,
    /// Frames per second.
    pub rate_hz: f64,
}

/// Reads a tosses file, refusing a wrong layout, non-finite poses and quaternions that are
/// not unit within 1e-3 (the rest of the round-off is normalised away).
pub fn read_tosses(path: &Path) -> Result<Tosses> {
    if !path.is_file() {
        return Err(DiffsimError::file(path, "no such tosses file"));
    }
    let file = open_read(path).map_err(|_| DiffsimError::file(path, "not a readable HDF5 file"))?;
    let err = h5err(path);
    let poses = file.dataset("poses").map_err(&err)?;
    if poses.shape().len() != 2 || poses.shape()[1] != 7 {
        return Err(DiffsimError::file(
            path,
            format!("poses must be [frames, 7], got {:?}", poses.shape()),
        ));
    }
    let flat = poses.read_raw::<f64>().map_err(&err)?;
    let offsets = file
        .dataset("offsets")
        .map_err(&err)?
        .read_raw::<i64>()
        .map_err(&err)?;
    let frames = flat.len() / 7;
    let ordered = offsets.first() == Some(&0)
        && offsets.last().is_some_and(|&l| l as usize == frames)
        && offsets.windows(2).all(|w| w[0] < w[1]);
    if !ordered {
        return Err(DiffsimError::file(
            path,
            format!("offsets must rise from 0 to the {frames} frames"),
        ));
    }
    let rate_hz = file
        .attr("rate_hz")
        .and_then(|a| a.read_scalar::<f64>())
        .map_err(&err)?;
    if !(rate_hz > 0.0 && rate_hz.is_finite()) {
        return Err(DiffsimError::file(path, "rate_hz must be positive"));
    }
    let mut tosses = Vec::with_capacity(offsets.len() - 1);
    for w in offsets.windows(2) {
        let mut toss = Vec::new();
        for row in flat[7 * w[0] as usize..7 * w[1] as usize].chunks(7) {
            let q = [row[3], row[4], row[5], row[6]];
            let n = q.iter().map(|c| c * c).sum::<f64>().sqrt();
            if !row.iter().all(|x| x.is_finite()) || (n - 1.0).abs() > 1e-3 {
                return Err(DiffsimError::file(
                    path,
                    format!(
                        "toss {} has a non-finite pose or a quaternion of norm {n}",
                        tosses.len()
                    ),
                ));
            }
            toss.push(([row[0], row[1], row[2]], q.map(|c| c / n)));
        }
        tosses.push(toss);
    }
    Ok(Tosses { tosses, rate_hz })
}
