//! HDF5 layout (DESIGN.md): `velocity_x [T, ny, nx+1]`, `velocity_y [T, ny+1, nx]`,
//! `pressure`, `marker [T, ny, nx]` (f32, chunked one frame per chunk, deflate), `obstacle
//! [ny, nx]` (u8), `step [T]` (u64), `time [T]` (f64); root attributes `format_version`, `nx`,
//! `ny`, `dx`, `domain`, `dt`, `nu`, `reynolds` (when the scene has one), `scene` (the full scene
//! config as JSON), `frames` and `complete`.
//!
//! A file is written as `NAME.partial` and renamed to `NAME` only after its last frame and
//! attributes are flushed, so a crash or an error never leaves a file that claims to be
//! complete; an abandoned writer removes its partial file.

use crate::error::{DiffsimError, Result};
use crate::fluid::{FluidState, Simulation, host_item};
use crate::grid::Grid;
use hdf5::types::VarLenUnicode;
use ndarray::{ArrayView1, ArrayView3, s};
use std::path::{Path, PathBuf};

/// Version of the file layout written by [`SimWriter`].
pub const FORMAT_VERSION: u32 = 1;

/// One frame of one batch item, host arrays in the shapes of the layout (without `T`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    /// `[ny, nx+1]`.
    pub u: Vec<f32>,
    /// `[ny+1, nx]`.
    pub v: Vec<f32>,
    /// `[ny, nx]`, if stored.
    pub pressure: Option<Vec<f32>>,
    /// `[ny, nx]`, if stored.
    pub marker: Option<Vec<f32>>,
    /// Step index.
    pub step: u64,
    /// Simulated time.
    pub time: f64,
}

impl Frame {
    /// Batch item `b` of a state on the host (pressure always, the marker when the scene has
    /// one).
    pub fn of_state(sim: &Simulation, s: &FluidState, b: usize) -> Self {
        Self {
            u: host_item(&s.u, b),
            v: host_item(&s.v, b),
            pressure: Some(host_item(&s.pressure, b)),
            marker: sim.has_marker().then(|| host_item(&s.marker, b)),
            step: s.step as u64,
            time: s.step as f64 * sim.scene.dt,
        }
    }
}

impl Frame {
    /// The velocity of this frame (on `from`) sampled bilinearly onto `to`, a grid of the same
    /// domain: x-faces at `(i·dx, (j+½)·dx)`, y-faces at `((i+½)·dx, j·dx)`, clamped to the
    /// source's faces at the edges. Pressure and marker are dropped. For starting a scene at
    /// a resolution no stored state exists for.
    pub fn resampled(&self, from: &Grid, to: &Grid) -> Frame {
        let scale = to.dx / from.dx;
        let u = resample(
            &self.u,
            [from.nx + 1, from.ny],
            [to.nx + 1, to.ny],
            [0.0, 0.5],
            scale,
        );
        let v = resample(
            &self.v,
            [from.nx, from.ny + 1],
            [to.nx, to.ny + 1],
            [0.5, 0.0],
            scale,
        );
        Frame {
            u,
            v,
            ..Frame::default()
        }
    }
}

/// Bilinear resampling of a row-major `[sides[1], sides[0]]` array whose node `(i, j)` sits at
/// `(i + offset[0], j + offset[1])` cells, onto `target` nodes of a grid whose cells are
/// `scale` source cells wide.
fn resample(
    src: &[f32],
    sides: [usize; 2],
    target: [usize; 2],
    offset: [f64; 2],
    scale: f64,
) -> Vec<f32> {
    let [snx, sny] = sides;
    let coord = |t: usize, axis: usize, n: usize| {
        let x = ((t as f64 + offset[axis]) * scale - offset[axis]).clamp(0.0, (n - 1) as f64);
        let i = (x.floor() as usize).min(n.saturating_sub(2));
        (i, (x - i as f64) as f32)
    };
    let mut out = Vec::with_capacity(target[0] * target[1]);
    for tj in 0..target[1] {
        let (j, fy) = coord(tj, 1, sny);
        for ti in 0..target[0] {
            let (i, fx) = coord(ti, 0, snx);
            let at =
                |di: usize, dj: usize| src[(j + dj).min(sny - 1) * snx + (i + di).min(snx - 1)];
            let lo = at(0, 0) + fx * (at(1, 0) - at(0, 0));
            let hi = at(0, 1) + fx * (at(1, 1) - at(0, 1));
            out.push(lo + fy * (hi - lo));
        }
    }
    out
}

/// Writes a simulation frame by frame.
pub struct SimWriter {
    file: Option<hdf5::File>,
    partial: PathBuf,
    target: PathBuf,
    grid: Grid,
    frames: usize,
}

const FIELDS: [&str; 4] = ["velocity_x", "velocity_y", "pressure", "marker"];

pub(super) fn h5err(path: &Path) -> impl Fn(hdf5::Error) -> DiffsimError + '_ {
    move |e| DiffsimError::file(path, e)
}

/// Files are opened without HDF5's `flock`. A file appears under its name only once complete
/// (written as `.partial`, then renamed), so the lock guards nothing; and HDF5 opens files
/// without close-on-exec, so a lock taken by a writer lives on in any child process started
/// while it was open and then refuses every reader of the finished file.
pub(super) fn without_locking() -> hdf5::FileBuilder {
    let mut options = hdf5::File::with_options();
    options.with_fapl(|fapl| fapl.file_locking(false));
    options
}

/// Opens `path` read-only (see [`without_locking`]).
pub(super) fn open_read(path: &Path) -> hdf5::Result<hdf5::File> {
    without_locking().open(path)
}

impl SimWriter {
    /// Creates `path.partial` with the datasets and the scene attributes of `sim`.
    pub fn create(path: &Path, sim: &Simulation) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DiffsimError::file(dir, e))?;
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = without_locking()
            .create(&partial)
            .map_err(h5err(&partial))?;
        // From here on, an error drops the writer, which removes the partial file.
        let writer = Self {
            file: Some(file),
            partial,
            target: path.to_path_buf(),
            grid: sim.grid,
            frames: 0,
        };
        writer.write_header(sim)?;
        Ok(writer)
    }

    fn write_header(&self, sim: &Simulation) -> Result<()> {
        let file = self.file.as_ref().expect("writer is open");
        let err = h5err(&self.partial);
        let g = sim.grid;
        let shapes = [
            [g.ny, g.nx + 1],
            [g.ny + 1, g.nx],
            [g.ny, g.nx],
            [g.ny, g.nx],
        ];
        for (name, [a, b]) in FIELDS.iter().zip(shapes) {
            file.new_dataset::<f32>()
                .chunk((1, a, b))
                .deflate(4)
                .shape((0.., a, b))
                .create(*name)
                .map_err(&err)?;
        }
        file.new_dataset::<u64>()
            .chunk(256)
            .shape(0..)
            .create("step")
            .map_err(&err)?;
        file.new_dataset::<f64>()
            .chunk(256)
            .shape(0..)
            .create("time")
            .map_err(&err)?;
        let obstacle: Vec<u8> = sim.solid.solid.iter().map(|&s| u8::from(s)).collect();
        file.new_dataset::<u8>()
            .shape((g.ny, g.nx))
            .create("obstacle")
            .map_err(&err)?
            .write_raw(&obstacle)
            .map_err(&err)?;
        let scene = &sim.scene;
        self.attr_f64s("dx", &[g.dx])?;
        self.attr_f64s("dt", &[scene.dt])?;
        self.attr_f64s("nu", &[sim.nu])?;
        if let Some(re) = scene.viscosity.reynolds() {
            self.attr_f64s("reynolds", &[re])?;
        }
        file.new_attr::<u32>()
            .create("format_version")
            .and_then(|a| a.write_scalar(&FORMAT_VERSION))
            .map_err(&err)?;
        for (name, v) in [("nx", g.nx as u64), ("ny", g.ny as u64)] {
            file.new_attr::<u64>()
                .create(name)
                .and_then(|a| a.write_scalar(&v))
                .map_err(&err)?;
        }
        self.attr_f64s("domain", &g.size())?;
        self.attr_str(
            "scene",
            &serde_json::to_string(scene).expect("scene serialises"),
        )?;
        self.attr_str("created_by", concat!("diffsim ", env!("CARGO_PKG_VERSION")))?;
        file.new_attr::<u8>()
            .create("complete")
            .and_then(|a| a.write_scalar(&0u8))
            .map_err(&err)?;
        Ok(())
    }

    /// Adds a root attribute holding `values` (a scalar when there is one value).
    pub fn attr_f64s(&self, name: &str, values: &[f64]) -> Result<()> {
        let file = self.file.as_ref().expect("writer is open");
        let builder = file.new_attr::<f64>();
        let attr = if values.len() == 1 {
            builder.create(name)
        } else {
            builder.shape(values.len()).create(name)
        };
        attr.and_then(|a| a.write_raw(values))
            .map_err(h5err(&self.partial))
    }

    /// Adds a root string attribute (e.g. JSON).
    pub fn attr_str(&self, name: &str, value: &str) -> Result<()> {
        let file = self.file.as_ref().expect("writer is open");
        write_str_attr(file, name, value).map_err(h5err(&self.partial))
    }

    /// Frames written so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Appends one frame.
    pub fn append(&mut self, f: &Frame) -> Result<()> {
        let file = self.file.as_ref().expect("writer is open");
        let err = h5err(&self.partial);
        let g = self.grid;
        let t = self.frames;
        let zeros = vec![0.0f32; g.cells()];
        let data: [(&str, &[f32], [usize; 2]); 4] = [
            ("velocity_x", &f.u, [g.ny, g.nx + 1]),
            ("velocity_y", &f.v, [g.ny + 1, g.nx]),
            (
                "pressure",
                f.pressure.as_deref().unwrap_or(&zeros),
                [g.ny, g.nx],
            ),
            (
                "marker",
                f.marker.as_deref().unwrap_or(&zeros),
                [g.ny, g.nx],
            ),
        ];
        for (name, values, [a, b]) in data {
            let ds = file.dataset(name).map_err(&err)?;
            ds.resize((t + 1, a, b)).map_err(&err)?;
            let view = ArrayView3::from_shape((1, a, b), values)
                .expect("frame array has the grid's shape");
            ds.write_slice(&view, s![t..t + 1, .., ..]).map_err(&err)?;
        }
        let step = file.dataset("step").map_err(&err)?;
        step.resize(t + 1).map_err(&err)?;
        step.write_slice(&ArrayView1::from(&[f.step]), s![t..t + 1])
            .map_err(&err)?;
        let time = file.dataset("time").map_err(&err)?;
        time.resize(t + 1).map_err(&err)?;
        time.write_slice(&ArrayView1::from(&[f.time]), s![t..t + 1])
            .map_err(&err)?;
        self.frames += 1;
        Ok(())
    }

    /// Marks the file complete, closes it and renames it to its final name.
    pub fn finish(mut self) -> Result<PathBuf> {
        let file = self.file.take().expect("writer is open");
        file.new_attr::<u64>()
            .create("frames")
            .and_then(|a| a.write_scalar(&(self.frames as u64)))
            .map_err(h5err(&self.partial))?;
        complete_and_rename(file, &self.partial, &self.target)?;
        Ok(self.target.clone())
    }
}

/// Sets the `complete` attribute of `file` (written as `partial`), flushes and closes it, and
/// renames it to `target`.
pub(super) fn complete_and_rename(file: hdf5::File, partial: &Path, target: &Path) -> Result<()> {
    let err = h5err(partial);
    file.attr("complete")
        .and_then(|a| a.write_scalar(&1u8))
        .map_err(&err)?;
    file.flush().map_err(&err)?;
    drop(file);
    std::fs::rename(partial, target).map_err(|e| DiffsimError::file(target, e))
}

impl Drop for SimWriter {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            drop(file);
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

pub(super) fn write_str_attr(file: &hdf5::File, name: &str, value: &str) -> hdf5::Result<()> {
    let v: VarLenUnicode = value
        .parse()
        .map_err(|e| hdf5::Error::from(format!("{e:?}")))?;
    file.new_attr::<VarLenUnicode>()
        .create(name)?
        .write_scalar(&v)
}

/// Reads the last frame of an HDF5 file in the layout above (also the PhiFlow initial states
/// in `data/phiflow/`), checking that its arrays fit `grid`. `pressure` and `marker` are
/// optional in the file.
pub fn read_frame(path: &Path, grid: &Grid) -> Result<Frame> {
    let file = open_complete(path)?;
    let err = h5err(path);
    let read = |name: &str, shape: [usize; 2], required: bool| -> Result<Option<Vec<f32>>> {
        let Some((ds, frames)) = frames_dataset(&file, path, grid, name, shape, required)? else {
            return Ok(None);
        };
        let last = ds
            .read_slice::<f32, _, ndarray::Ix2>(s![frames - 1, .., ..])
            .map_err(&err)?;
        finite(path, name, last.iter().copied().collect()).map(Some)
    };
    let (nx, ny) = (grid.nx, grid.ny);
    let u = read("velocity_x", [ny, nx + 1], true)?.expect("required");
    let v = read("velocity_y", [ny + 1, nx], true)?.expect("required");
    let pressure = read("pressure", [ny, nx], false)?;
    let marker = read("marker", [ny, nx], false)?;
    Ok(Frame {
        u,
        v,
        pressure,
        marker,
        step: 0,
        time: 0.0,
    })
}

/// Dataset `name` of `[T ≥ 1, shape]` frames and its `T`; None when it is absent and not
/// `required`.
fn frames_dataset(
    file: &hdf5::File,
    path: &Path,
    grid: &Grid,
    name: &str,
    shape: [usize; 2],
    required: bool,
) -> Result<Option<(hdf5::Dataset, usize)>> {
    if !file.link_exists(name) {
        return if required {
            Err(DiffsimError::file(
                path,
                format!(
                    "no dataset '{name}'; expected velocity_x [T, ny, nx+1] and velocity_y [T, ny+1, nx]"
                ),
            ))
        } else {
            Ok(None)
        };
    }
    let ds = file.dataset(name).map_err(h5err(path))?;
    let sh = ds.shape();
    if sh.len() != 3 || sh[1..] != shape || sh[0] == 0 {
        return Err(DiffsimError::file(
            path,
            format!(
                "dataset '{name}' has shape {sh:?}, expected [T>=1, {}, {}] for resolution {}; pass the matching --res",
                shape[0],
                shape[1],
                grid.resolution()
            ),
        ));
    }
    Ok(Some((ds, sh[0])))
}

/// `values`, or an error naming `name` when one is NaN or infinite.
fn finite(path: &Path, name: &str, values: Vec<f32>) -> Result<Vec<f32>> {
    if values.iter().any(|x| !x.is_finite()) {
        return Err(DiffsimError::file(
            path,
            format!("dataset '{name}' contains NaN or infinity"),
        ));
    }
    Ok(values)
}

/// Opens an HDF5 file for reading; a file marked incomplete is an error.
fn open_complete(path: &Path) -> Result<hdf5::File> {
    if !path.is_file() {
        return Err(DiffsimError::file(
            path,
            "no such file; pass an HDF5 file written by `diffsim simulate` or one of data/phiflow/*.h5",
        ));
    }
    let file = open_read(path).map_err(|_| DiffsimError::file(path, "not a readable HDF5 file"))?;
    if let Ok(a) = file.attr("complete")
        && a.read_scalar::<u8>().map_err(h5err(path))? == 0
    {
        return Err(DiffsimError::file(
            path,
            "the file is marked incomplete (an interrupted run); rerun the simulation",
        ));
    }
    Ok(file)
}

/// Every frame of the velocity in a complete file of the layout above.
#[derive(Clone, Debug)]
pub struct Trajectory {
    /// Frames `T`.
    pub frames: usize,
    /// `[T, ny, nx+1]`, row-major.
    pub u: Vec<f32>,
    /// `[T, ny+1, nx]`, row-major.
    pub v: Vec<f32>,
}

/// Reads all velocity frames of `path`, checking that they fit `grid` and are finite.
pub fn read_trajectory(path: &Path, grid: &Grid) -> Result<Trajectory> {
    let file = open_complete(path)?;
    let err = h5err(path);
    let read = |name: &str, shape: [usize; 2]| -> Result<(usize, Vec<f32>)> {
        let (ds, frames) = frames_dataset(&file, path, grid, name, shape, true)?.expect("required");
        Ok((
            frames,
            finite(path, name, ds.read_raw::<f32>().map_err(&err)?)?,
        ))
    };
    let (nx, ny) = (grid.nx, grid.ny);
    let (frames, u) = read("velocity_x", [ny, nx + 1])?;
    let (fv, v) = read("velocity_y", [ny + 1, nx])?;
    if fv != frames {
        return Err(DiffsimError::file(
            path,
            format!("velocity_x has {frames} frames but velocity_y {fv}"),
        ));
    }
    Ok(Trajectory { frames, u, v })
}

/// A root attribute of `path` as f64 values (None when absent or unreadable).
pub fn read_attr_f64s(path: &Path, name: &str) -> Option<Vec<f64>> {
    let file = open_read(path).ok()?;
    file.attr(name).ok()?.read_raw::<f64>().ok()
}

/// A root string attribute of `path` (None when absent or unreadable).
pub fn read_attr_str(path: &Path, name: &str) -> Option<String> {
    let file = open_read(path).ok()?;
    let v = file.attr(name).ok()?.read_scalar::<VarLenUnicode>().ok()?;
    Some(v.as_str().to_string())
}

/// The resolution of the arrays stored in `path` (from the shape of `velocity_x`), if readable.
pub fn stored_resolution(path: &Path) -> Option<crate::grid::Resolution> {
    let file = open_read(path).ok()?;
    let sh = file.dataset("velocity_x").ok()?.shape();
    (sh.len() == 3 && sh[2] >= 3 && sh[1] >= 2)
        .then(|| crate::grid::Resolution::new(sh[2] - 1, sh[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Resolution;

    /// A linear field is reproduced exactly on a finer and on a coarser grid, away from the
    /// edges (where the samples clamp to the source's outermost faces).
    #[test]
    fn resampling_keeps_linear_fields() {
        let grid = |nx, ny| Grid::new(Resolution::new(nx, ny), [4.0, 2.0]).unwrap();
        let from = grid(16, 8);
        let f = |x: f64, y: f64| (0.3 * x - 0.7 * y + 0.1) as f32;
        let faces = |g: &Grid| {
            let u: Vec<f32> = (0..g.ny)
                .flat_map(|j| (0..=g.nx).map(move |i| (i as f64 * g.dx, (j as f64 + 0.5) * g.dx)))
                .map(|(x, y)| f(x, y))
                .collect();
            let v: Vec<f32> = (0..=g.ny)
                .flat_map(|j| (0..g.nx).map(move |i| ((i as f64 + 0.5) * g.dx, j as f64 * g.dx)))
                .map(|(x, y)| f(x, y))
                .collect();
            (u, v)
        };
        let (u, v) = faces(&from);
        let frame = Frame {
            u,
            v,
            ..Frame::default()
        };
        let inside = |x: f64, y: f64| (0.125..=3.875).contains(&x) && (0.125..=1.875).contains(&y);
        for to in [grid(64, 32), grid(32, 16), grid(8, 4)] {
            let r = frame.resampled(&from, &to);
            let (u, v) = faces(&to);
            assert_eq!((r.u.len(), r.v.len()), (u.len(), v.len()));
            let mut checked = 0;
            for (k, (a, b)) in r.u.iter().zip(&u).enumerate() {
                let (i, j) = (k % (to.nx + 1), k / (to.nx + 1));
                if inside(i as f64 * to.dx, (j as f64 + 0.5) * to.dx) {
                    assert!((a - b).abs() < 1e-5, "u[{j},{i}] {a} vs {b}");
                    checked += 1;
                }
            }
            for (k, (a, b)) in r.v.iter().zip(&v).enumerate() {
                let (i, j) = (k % to.nx, k / to.nx);
                if inside((i as f64 + 0.5) * to.dx, j as f64 * to.dx) {
                    assert!((a - b).abs() < 1e-5, "v[{j},{i}] {a} vs {b}");
                    checked += 1;
                }
            }
            assert!(checked > u.len() / 2, "{checked}");
        }
    }
}
