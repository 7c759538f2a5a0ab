//! The Solver-in-the-Loop wake-flow pipeline at toy size: reference data (generation, layout,
//! statistics, resume).

use diffsim::grid::{Grid, Resolution};
use diffsim::io::read_trajectory;
use diffsim::train::wake_flow::dataset::{self, MANIFEST};
use diffsim::train::wake_flow::{Split, WakeData, WakeDataConfig};
use std::path::Path;
use std::process::Command;

fn quick_dataset(dir: &Path) -> diffsim::train::wake_flow::Manifest {
    dataset::generate(&WakeDataConfig::quick(), dir, |_, _| {}).unwrap()
}

fn modified(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

/// Files, frames, statistics, and divergence-free down-sampled frames (the coarse divergence
/// of a cell is the mean of its fine divergences, so projected reference frames stay
/// divergence-free to the solver's round-off).
#[test]
fn quick_dataset_has_the_layout_the_statistics_and_divergence_free_frames() {
    let dir = tempfile::tempdir().unwrap();
    let m = quick_dataset(dir.path());
    let cfg = WakeDataConfig::quick();
    assert_eq!(m.resolution, Resolution::new(16, 32));
    assert_eq!(m.sims.len(), 4);
    let data = WakeData::open(dir.path()).unwrap();
    assert_eq!(data.train.len(), 3);
    assert_eq!(data.test.len(), 1);
    assert_eq!(data.test[0].entry.split, Split::Test);
    assert_eq!(data.test[0].frames.frames, cfg.test_frames);
    // Population std of the training Reynolds numbers.
    let re = &cfg.train_reynolds;
    let mean = re.iter().sum::<f64>() / 3.0;
    let sd = (re.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    assert!((m.stats.re_std - sd).abs() < 1e-9);
    // std|u| recomputed from the stored training frames.
    let all: Vec<f64> = data
        .train
        .iter()
        .flat_map(|s| s.frames.u.iter().map(|&x| f64::from(x).abs()))
        .collect();
    let n = all.len() as f64;
    let mu = all.iter().sum::<f64>() / n;
    let sd_u = (all.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / n).sqrt();
    assert!(
        (m.stats.std_abs_u - sd_u).abs() < 1e-6 * sd_u,
        "{} vs {sd_u}",
        m.stats.std_abs_u
    );
    assert!(m.stats.std_abs_v > 0.05 && m.stats.std_abs_u > 0.01);
    // Divergence of the last test frame, per coarse cell (dx = 6.25).
    let grid = Grid::new(m.resolution, [100.0, 200.0]).unwrap();
    let t = read_trajectory(&dir.path().join(&m.sims[3].file), &grid).unwrap();
    let (nx, ny) = (16, 32);
    let (u, v) = (
        &t.u[(t.frames - 1) * ny * (nx + 1)..],
        &t.v[(t.frames - 1) * (ny + 1) * nx..],
    );
    let mut max_div = 0.0f32;
    for j in 0..ny {
        for i in 0..nx {
            let d =
                u[j * (nx + 1) + i + 1] - u[j * (nx + 1) + i] + v[(j + 1) * nx + i] - v[j * nx + i];
            max_div = max_div.max(d.abs());
        }
    }
    let vmax = v.iter().fold(0.0f32, |a, x| a.max(x.abs()));
    assert!(
        max_div < 1e-4 * vmax,
        "max |flux div| {max_div} (|v| ≤ {vmax})"
    );
}

/// A rerun keeps finished files; a lost file and an abandoned partial one are redone; a
/// different recipe redoes everything.
#[test]
fn generation_resumes_and_never_trusts_partial_or_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = quick_dataset(dir.path());
    let file = |i: usize| dir.path().join(&m.sims[i].file);
    let kept = modified(&file(0));
    std::fs::remove_file(file(1)).unwrap();
    std::fs::remove_file(dir.path().join(MANIFEST)).unwrap();
    std::fs::write(dir.path().join("test_00_re585.94.h5.partial"), b"junk").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = quick_dataset(dir.path());
    assert_eq!(again.stats, m.stats);
    assert_eq!(modified(&file(0)), kept, "a finished file was redone");
    assert!(file(1).is_file());
    assert!(WakeData::open(dir.path()).is_ok());

    let mut other = WakeDataConfig::quick();
    other.warmup += 2;
    let third = dataset::generate(&other, dir.path(), |_, _| {}).unwrap();
    assert_ne!(
        modified(&file(0)),
        kept,
        "a file of another recipe was kept"
    );
    assert_ne!(third.stats, m.stats);
}

#[test]
fn dataset_cli_reports_json_and_rejects_bad_recipes() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_diffsim"))
            .args(args)
            .output()
            .unwrap()
    };
    let out_dir = dir.path().join("d");
    let out = run(&[
        "dataset",
        "wake-flow",
        "--quick",
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["resolution"], "16x32");
    assert_eq!(j["sims"].as_array().unwrap().len(), 4);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "reference = \"30x64\"\n").unwrap();
    let out = run(&[
        "dataset",
        "wake-flow",
        "--config",
        bad.to_str().unwrap(),
        "--out",
        dir.path().join("e").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("divisible"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// SOL-2 training on the toy data lowers the loss; a run stopped and resumed continues from
/// its checkpoint (its losses up to the stop are the uninterrupted run's) and keeps learning.
#[test]
fn sol_training_lowers_the_loss_and_resumes_from_its_checkpoint() {
    use diffsim::train::wake_flow::{TrainConfig, train};
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    quick_dataset(&data_dir);
    let data = WakeData::open(&data_dir).unwrap();
    let cfg = TrainConfig {
        unroll: 2,
        iterations: 25,
        checkpoint_every: 5,
        ..TrainConfig::default()
    };
    let (_, full) = train(&data, &cfg, &dir.path().join("full"), false, |_, _| {}).unwrap();
    let l = &full.losses;
    let head = l[..5].iter().sum::<f64>();
    let tail = l[20..].iter().sum::<f64>();
    assert!(tail < 0.7 * head, "losses {l:?}");

    let short = TrainConfig {
        iterations: 10,
        ..cfg.clone()
    };
    let part = dir.path().join("part");
    train(&data, &short, &part, false, |_, _| {}).unwrap();
    // Resuming needs the same settings.
    assert!(train(&data, &cfg, &part, true, |_, _| {}).is_err());
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(part.join("train.json")).unwrap()).unwrap();
    report["config"]["iterations"] = 25.into();
    std::fs::write(part.join("train.json"), report.to_string()).unwrap();
    let (_, resumed) = train(&data, &cfg, &part, true, |_, _| {}).unwrap();
    assert_eq!(resumed.losses.len(), 25);
    // Same weights, batches and learning rate until the short run's schedule decays (7).
    for (a, b) in resumed.losses[..7].iter().zip(&full.losses[..7]) {
        assert!((a - b).abs() <= 1e-6 * b, "{a} vs {b}");
    }
    assert!(resumed.losses[20..].iter().sum::<f64>() < 0.7 * head);
    assert!(resumed.losses.iter().all(|x| x.is_finite()));
}
