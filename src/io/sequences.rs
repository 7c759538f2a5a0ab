//! HDF5 sets of 1D sequences (the Burgers control data, docs/burgers-control.md §2): one
//! file, datasets `u [S, T, N]` (f32, chunks of 64 sequences, deflate), `force [S, N]` (f32),
//! `split [S]` (u8: 0 train, 1 validation, 2 test) and `params [S, P]` (f64, the drawn
//! parameters of every sequence); root attributes `format_version`, `recipe` (JSON of the
//! settings that made it), `written` (sequences finished so far), `complete`, `created_by`.
//!
//! The file is written as `NAME.partial` in blocks; after each block `written` is updated and
//! flushed, so an interrupted run resumes from the last finished block (when its recipe is
//! the same) and the file appears under its name only when complete.

use super::h5::{complete_and_rename, h5err, open_read, without_locking, write_str_attr};
use crate::error::{DiffsimError, Result};
use hdf5::types::VarLenUnicode;
use ndarray::{ArrayView1, ArrayView2, ArrayView3, s};
use std::path::{Path, PathBuf};

/// Version of the sequence-set layout.
pub const SEQUENCES_FORMAT: u32 = 1;

/// Shapes of a sequence set: `sequences` × `frames` × `points`, `params` numbers each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetShape {
    /// Sequences `S`.
    pub sequences: usize,
    /// Frames per sequence `T` (steps + 1).
    pub frames: usize,
    /// Points per frame `N`.
    pub points: usize,
    /// Parameters per sequence `P`.
    pub params: usize,
}

/// One block of sequences `[start, start + len)`, host arrays in the layout's order.
pub struct SetBlock<'a> {
    /// First sequence.
    pub start: usize,
    /// `u`, `[len, T, N]`.
    pub u: &'a [f32],
    /// `force`, `[len, N]`.
    pub force: &'a [f32],
    /// `split`, `[len]`.
    pub split: &'a [u8],
    /// `params`, `[len, P]`.
    pub params: &'a [f64],
}

/// A sequence set being written (see the module docs).
pub struct SetWriter {
    file: Option<hdf5::File>,
    partial: PathBuf,
    target: PathBuf,
    shape: SetShape,
    written: usize,
}

fn partial_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

impl SetWriter {
    /// Opens `path.partial` to continue it when it was made by the same `recipe` with the same
    /// shape, else creates it anew.
    pub fn open(path: &Path, shape: SetShape, recipe: &str) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DiffsimError::file(dir, e))?;
        }
        let partial = partial_of(path);
        if let Some(written) = resumable(&partial, shape, recipe) {
            let file = without_locking()
                .append(&partial)
                .map_err(h5err(&partial))?;
            return Ok(Self {
                file: Some(file),
                partial,
                target: path.to_path_buf(),
                shape,
                written,
            });
        }
        let file = without_locking()
            .create(&partial)
            .map_err(h5err(&partial))?;
        let err = h5err(&partial);
        let SetShape {
            sequences: n,
            frames: t,
            points: p,
            params: q,
        } = shape;
        let chunk = n.clamp(1, 64);
        file.new_dataset::<f32>()
            .chunk((chunk, t, p))
            .deflate(4)
            .shape((n, t, p))
            .create("u")
            .map_err(&err)?;
        file.new_dataset::<f32>()
            .chunk((chunk, p))
            .shape((n, p))
            .create("force")
            .map_err(&err)?;
        file.new_dataset::<u8>()
            .shape(n)
            .create("split")
            .map_err(&err)?;
        file.new_dataset::<f64>()
            .shape((n, q))
            .create("params")
            .map_err(&err)?;
        for (name, v) in [("format_version", SEQUENCES_FORMAT as u64), ("written", 0)] {
            file.new_attr::<u64>()
                .create(name)
                .and_then(|a| a.write_scalar(&v))
                .map_err(&err)?;
        }
        file.new_attr::<u8>()
            .create("complete")
            .and_then(|a| a.write_scalar(&0u8))
            .map_err(&err)?;
        write_str_attr(&file, "recipe", recipe).map_err(&err)?;
        write_str_attr(
            &file,
            "created_by",
            concat!("diffsim ", env!("CARGO_PKG_VERSION")),
        )
        .map_err(&err)?;
        drop(err);
        Ok(Self {
            file: Some(file),
            partial,
            target: path.to_path_buf(),
            shape,
            written: 0,
        })
    }

    /// Sequences finished so far (the next block starts here).
    pub fn written(&self) -> usize {
        self.written
    }

    /// Writes one block starting at [`SetWriter::written`] and records it as finished.
    pub fn write(&mut self, b: &SetBlock<'_>) -> Result<()> {
        let file = self.file.as_ref().expect("writer is open");
        let err = h5err(&self.partial);
        let SetShape {
            frames: t,
            points: p,
            params: q,
            ..
        } = self.shape;
        let len = b.split.len();
        assert_eq!(b.start, self.written, "blocks are written in order");
        let r = b.start..b.start + len;
        let u = ArrayView3::from_shape((len, t, p), b.u).expect("u block shape");
        file.dataset("u")
            .and_then(|d| d.write_slice(&u, s![r.clone(), .., ..]))
            .map_err(&err)?;
        let f = ArrayView2::from_shape((len, p), b.force).expect("force block shape");
        file.dataset("force")
            .and_then(|d| d.write_slice(&f, s![r.clone(), ..]))
            .map_err(&err)?;
        file.dataset("split")
            .and_then(|d| d.write_slice(&ArrayView1::from(b.split), s![r.clone()]))
            .map_err(&err)?;
        let pr = ArrayView2::from_shape((len, q), b.params).expect("params block shape");
        file.dataset("params")
            .and_then(|d| d.write_slice(&pr, s![r, ..]))
            .map_err(&err)?;
        self.written += len;
        file.attr("written")
            .and_then(|a| a.write_scalar(&(self.written as u64)))
            .map_err(&err)?;
        file.flush().map_err(&err)
    }

    /// Marks the file complete, closes it and renames it to its final name.
    pub fn finish(mut self) -> Result<PathBuf> {
        let file = self.file.take().expect("writer is open");
        complete_and_rename(file, &self.partial, &self.target)?;
        Ok(self.target.clone())
    }
}

/// Sequences finished in a partial file of the same shape and recipe, if any.
fn resumable(partial: &Path, shape: SetShape, recipe: &str) -> Option<usize> {
    let file = open_read(partial).ok()?;
    let same_recipe = file
        .attr("recipe")
        .ok()?
        .read_scalar::<VarLenUnicode>()
        .ok()?
        .as_str()
        == recipe;
    let dims = file.dataset("u").ok()?.shape();
    let written = file.attr("written").ok()?.read_scalar::<u64>().ok()? as usize;
    (same_recipe && dims == [shape.sequences, shape.frames, shape.points] && written > 0)
        .then_some(written)
}

/// A whole sequence set in memory.
#[derive(Clone, Debug)]
pub struct SequenceSet {
    /// Shapes.
    pub shape: SetShape,
    /// `[S, T, N]`.
    pub u: Vec<f32>,
    /// `[S, N]`.
    pub force: Vec<f32>,
    /// `[S]`.
    pub split: Vec<u8>,
    /// `[S, P]`.
    pub params: Vec<f64>,
    /// The recipe attribute.
    pub recipe: String,
}

/// Reads a complete sequence set; a missing, partial, foreign or non-finite file is an error
/// naming the problem.
pub fn read_sequences(path: &Path) -> Result<SequenceSet> {
    let err = h5err(path);
    if !path.is_file() {
        return Err(DiffsimError::file(
            path,
            "no such dataset file; generate it with `diffsim dataset burgers-control`",
        ));
    }
    let file = open_read(path).map_err(&err)?;
    let version = file
        .attr("format_version")
        .and_then(|a| a.read_scalar::<u64>())
        .map_err(|_| DiffsimError::file(path, "not a diffsim sequence set (no format_version)"))?;
    if version != SEQUENCES_FORMAT as u64 {
        return Err(DiffsimError::file(
            path,
            format!(
                "sequence-set format {version}, this diffsim reads {SEQUENCES_FORMAT}; regenerate it"
            ),
        ));
    }
    let complete = file
        .attr("complete")
        .and_then(|a| a.read_scalar::<u8>())
        .unwrap_or(0);
    if complete != 1 {
        return Err(DiffsimError::file(
            path,
            "incomplete dataset; rerun the generator to finish it",
        ));
    }
    let ds = file.dataset("u").map_err(&err)?;
    let dims = ds.shape();
    if dims.len() != 3 {
        return Err(DiffsimError::file(
            path,
            format!("u has shape {dims:?}, expected [S, T, N]"),
        ));
    }
    let u: Vec<f32> = ds.read_raw().map_err(&err)?;
    if u.iter().any(|x| !x.is_finite()) {
        return Err(DiffsimError::file(path, "u holds non-finite values"));
    }
    let read_f32 = |name: &str| file.dataset(name).and_then(|d| d.read_raw::<f32>());
    let force = read_f32("force").map_err(&err)?;
    let split: Vec<u8> = file
        .dataset("split")
        .and_then(|d| d.read_raw())
        .map_err(&err)?;
    let pd = file.dataset("params").map_err(&err)?;
    let params: Vec<f64> = pd.read_raw().map_err(&err)?;
    let shape = SetShape {
        sequences: dims[0],
        frames: dims[1],
        points: dims[2],
        params: pd.shape().get(1).copied().unwrap_or(0),
    };
    if force.len() != shape.sequences * shape.points || split.len() != shape.sequences {
        return Err(DiffsimError::file(
            path,
            "force or split do not match u's shape",
        ));
    }
    let recipe = file
        .attr("recipe")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map_err(&err)?
        .as_str()
        .to_string();
    Ok(SequenceSet {
        shape,
        u,
        force,
        split,
        params,
        recipe,
    })
}

impl Drop for SetWriter {
    /// An abandoned writer keeps its partial file: its finished blocks are resumed by the
    /// next run of the same recipe.
    fn drop(&mut self) {
        self.file.take();
    }
}
