//! Files: simulation output and initial states in HDF5 (readable by h5py), and results
//! written as JSON or text that appear under their name only when complete.

mod h5;
mod plans;
mod sequences;
mod tosses;

pub use h5::{
    FORMAT_VERSION, Frame, SimWriter, Trajectory, read_attr_f64s, read_attr_str, read_frame,
    read_trajectory, stored_resolution,
};
pub use plans::{Plans, read_plans};
pub use sequences::{SEQUENCES_FORMAT, SequenceSet, SetBlock, SetShape, SetWriter, read_sequences};
pub use tosses::{Pose, Tosses, read_tosses};

use crate::error::{DiffsimError, Result};
use crate::grid::Resolution;
use std::path::{Path, PathBuf};

/// The folder of the PhiFlow 3.4 wake states that ship with diffsim (`data/phiflow` of the
/// repository).
pub const PHIFLOW_DIR: &str = "data/phiflow";

/// The PhiFlow 3.4 wake state `wake_phiflow_NXxNY.h5` (32x64 and 128x256 ship with diffsim):
/// in `data` when given, else in `$DIFFSIM_DATA`, else in `data/phiflow` of the working
/// directory or of the repository diffsim was built from.
pub fn phiflow_state(data: Option<&Path>, res: Resolution) -> Result<PathBuf> {
    let hint = format!(
        "pass --data DIR (a folder with wake_phiflow_NXxNY.h5; 32x64 and 128x256 ship in the repository's {PHIFLOW_DIR})"
    );
    find_data(data, PHIFLOW_DIR, &format!("wake_phiflow_{res}.h5"), &hint)
}

/// The folder of the ContactNets cube tosses that ship with diffsim.
pub const CONTACT_NETS_DIR: &str = "data/contact-nets";

/// The ContactNets cube tosses `tosses.h5`: in `data` when given, else in `$DIFFSIM_DATA`,
/// else in `data/contact-nets` of the working directory or of the repository diffsim was
/// built from.
pub fn contact_nets_tosses(data: Option<&Path>) -> Result<PathBuf> {
    let hint = format!(
        "set data = \"DIR\" in the settings (a folder with tosses.h5; it ships in the repository's {CONTACT_NETS_DIR})"
    );
    find_data(data, CONTACT_NETS_DIR, "tosses.h5", &hint)
}

/// `name` in `data` when given, else in `$DIFFSIM_DATA`, else in `shipped` of the working
/// directory or of the repository; `hint` ends the error.
fn find_data(data: Option<&Path>, shipped: &str, name: &str, hint: &str) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = data.iter().map(|d| d.to_path_buf()).collect();
    if data.is_none() {
        dirs.extend(std::env::var_os("DIFFSIM_DATA").map(PathBuf::from));
        dirs.push(PathBuf::from(shipped));
        dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(shipped));
    }
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let tried: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            DiffsimError::file(name, format!("not found in {}; {hint}", tried.join(", ")))
        })
}

/// Writes `value` as pretty JSON to `path` through a temporary name, renamed when complete.
pub fn write_json<T: serde::Serialize>(value: &T, path: &Path) -> Result<()> {
    write_text(
        path,
        &serde_json::to_string_pretty(value).expect("results serialise to JSON"),
    )
}

/// Writes `text` to `path` through a temporary name, renamed when complete.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| DiffsimError::file(path, e))
}
