//! Files: simulation output and initial states in HDF5 (readable by h5py).

mod h5;

pub use h5::{
    FORMAT_VERSION, Frame, SimWriter, Trajectory, read_attr_f64s, read_attr_str, read_frame,
    read_trajectory, stored_resolution,
};

use crate::error::{DiffsimError, Result};
use crate::grid::Resolution;
use std::path::{Path, PathBuf};

/// The shared PhiFlow 3.4 wake state `wake_phiflow_NXxNY.h5`: in `data` when given, else in
/// `$DIFFSIM_DATA`, `../shared/data` or `shared/data`.
pub fn phiflow_state(data: Option<&Path>, res: Resolution) -> Result<PathBuf> {
    let name = format!("wake_phiflow_{res}.h5");
    let mut dirs: Vec<PathBuf> = data.iter().map(|d| d.to_path_buf()).collect();
    if data.is_none() {
        dirs.extend(std::env::var_os("DIFFSIM_DATA").map(PathBuf::from));
        dirs.extend(["../shared/data", "shared/data"].map(PathBuf::from));
    }
    dirs.iter().map(|d| d.join(&name)).find(|p| p.is_file()).ok_or_else(|| {
        DiffsimError::file(&name, format!("initial state not found in {dirs:?}; pass --data DIR (the folder of the shared PhiFlow states)"))
    })
}
