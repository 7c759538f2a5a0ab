//! Files: simulation output and initial states in HDF5 (readable by h5py).

mod h5;

pub use h5::{FORMAT_VERSION, Frame, SimWriter, read_frame, stored_resolution};
