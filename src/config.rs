//! TOML settings files laid over defaults: a file names only what it changes.

use crate::error::{DiffsimError, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads the TOML settings file `path` laid over `base` (the file names only what it changes,
/// tables merged key by key): the one way every configuration file is read.
pub fn read_over<T: Serialize + DeserializeOwned>(path: &Path, base: &T) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| DiffsimError::file(path, e))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| DiffsimError::file(path, e.message()))?;
    overlay(base, table, Merge::Deep).map_err(|e| DiffsimError::file(path, e.message()))
}

/// How a file's tables combine with the base's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Every top-level key of the file replaces the base's whole value (for settings whose
    /// tables are enum variants, such as scenes: `viscosity = { sol-reynolds = 146.48 }`).
    TopLevel,
    /// Tables merge key by key at every depth (for nested plain settings, such as an
    /// experiment's `[train]`); arrays and other values are replaced whole.
    Deep,
}

/// `base` with the keys of `file` laid on top.
pub fn overlay<T: Serialize + DeserializeOwned>(
    base: &T,
    file: toml::Table,
    how: Merge,
) -> std::result::Result<T, toml::de::Error> {
    let mut merged = toml::Table::try_from(base).expect("settings serialise to a TOML table");
    match how {
        Merge::TopLevel => merged.extend(file),
        Merge::Deep => merge(&mut merged, file),
    }
    merged.try_into()
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        a: u32,
        b: Vec<u32>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Outer {
        x: f64,
        inner: Inner,
    }

    #[test]
    fn nested_tables_keep_the_fields_the_file_leaves_out() {
        let base = Outer {
            x: 1.5,
            inner: Inner {
                a: 3,
                b: vec![1, 2],
            },
        };
        let file: toml::Table = "[inner]\nb = [7]\n".parse().unwrap();
        let got = overlay(&base, file.clone(), Merge::Deep).unwrap();
        assert_eq!(
            got,
            Outer {
                x: 1.5,
                inner: Inner { a: 3, b: vec![7] }
            }
        );
        // Top-level: the file's [inner] is all of inner, so `a` is missing.
        assert!(overlay(&base, file, Merge::TopLevel).is_err());
        let wrong: toml::Table = "x = \"fast\"\n".parse().unwrap();
        assert!(overlay(&base, wrong, Merge::Deep).is_err());
    }
}
