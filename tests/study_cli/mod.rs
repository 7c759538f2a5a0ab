//! The command line of a study refusing bad settings: shared by the study tests.

use std::path::Path;

/// Runs `diffsim experiment <study> --quick --config <toml>` in `dir` and asserts one line on
/// stderr containing `words`, exit code 1 and no output folder.
pub fn assert_refused(study: &str, toml: &str, words: &str, dir: &Path) {
    let config = dir.join("bad.toml");
    std::fs::write(&config, toml).unwrap();
    let run = dir.join("run");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_diffsim"))
        .args(["experiment", study, "--quick", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{toml}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(words), "{toml}: {err}");
    assert!(!run.exists());
}
