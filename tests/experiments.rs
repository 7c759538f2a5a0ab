//! Every experiment at toy size, through the same code path as the full run.

use diffsim::train::smoke_target::{self, SmokeTargetConfig};
use std::process::Command;

#[test]
fn smoke_target_quick_lowers_the_loss_tenfold_within_100_iterations() {
    let r = smoke_target::run(&SmokeTargetConfig::quick(), |_, _| {}).unwrap();
    assert!(r.iterations <= 100);
    assert!(
        r.reduction >= 10.0,
        "loss {} -> {}",
        r.initial_loss,
        r.final_loss
    );
    assert!(r.losses.iter().all(|l| l.is_finite()));
}

#[test]
fn smoke_target_cli_writes_pictures_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_diffsim"))
        .args(["experiment", "smoke-target", "--quick", "--json", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["reduction"].as_f64().unwrap() >= 10.0);
    for f in [
        "loss.png",
        "before.png",
        "after.png",
        "target.png",
        "result.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_diffsim"))
        .args(["experiment", "no-such-study"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
}
