//! The Solver-in-the-Loop wake-flow pipeline at toy size: reference data (generation, layout,
//! statistics, resume).

use diffsim::experiments::wake_flow::dataset::{self, MANIFEST};
use diffsim::experiments::wake_flow::{Split, WakeData, WakeDataConfig};
use diffsim::grid::{Grid, Resolution};
use diffsim::io::read_trajectory;
use std::path::Path;
use std::process::Command;

fn quick_dataset(dir: &Path) -> diffsim::experiments::wake_flow::Manifest {
    dataset::generate(&WakeDataConfig::quick(), dir, |_, _| {}).unwrap()
}

/// Runs the `diffsim` binary.
fn diffsim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_diffsim"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `diffsim` with `args`, which must succeed, and parses its standard output as JSON.
fn diffsim_json(args: &[&str]) -> serde_json::Value {
    let out = diffsim(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
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
    let out_dir = dir.path().join("d");
    let j = diffsim_json(&[
        "dataset",
        "wake-flow",
        "--quick",
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(j["resolution"], "16x32");
    assert_eq!(j["sims"].as_array().unwrap().len(), 4);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "reference = \"30x64\"\n").unwrap();
    let out = diffsim(&[
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

/// SOL-2 training on the toy data lowers the loss; a run interrupted after a checkpoint and
/// resumed continues exactly where it stopped (weights, Adam's moments, batch stream and
/// learning-rate schedule), so its losses are the uninterrupted run's.
#[test]
fn sol_training_lowers_the_loss_and_resumes_exactly_from_its_checkpoint() {
    use diffsim::experiments::wake_flow::TrainConfig;
    use diffsim::experiments::wake_flow::train::OPTIMIZER;
    use diffsim::experiments::wake_flow::train::train;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    quick_dataset(&data_dir);
    let data = WakeData::open(&data_dir).unwrap();
    let cfg = TrainConfig {
        unroll: 2,
        iterations: 25,
        warmup_iterations: 5,
        checkpoint_every: 10,
        ..TrainConfig::default()
    };
    // The uninterrupted run; when iteration 11 is reported, the checkpoint of iteration 10 is
    // on disk: copy it, as if the run had been killed there.
    let (full_dir, cut) = (dir.path().join("full"), dir.path().join("cut"));
    std::fs::create_dir_all(&cut).unwrap();
    let (_, full) = train(&data, &cfg, &full_dir, false, |k, _| {
        if k == 11 {
            for f in ["model.bpk", OPTIMIZER, "train.json", "train.toml"] {
                std::fs::copy(full_dir.join(f), cut.join(f)).unwrap();
            }
        }
    })
    .unwrap();
    let l = &full.losses;
    let head = l[..5].iter().sum::<f64>();
    let tail = l[20..].iter().sum::<f64>();
    assert!(tail < 0.7 * head, "losses {l:?}");
    assert!(l.iter().all(|x| x.is_finite()));

    // Resuming needs the same settings.
    let other = TrainConfig {
        seed: 1,
        ..cfg.clone()
    };
    assert!(train(&data, &other, &cut, true, |_, _| {}).is_err());
    let (_, resumed) = train(&data, &cfg, &cut, true, |_, _| {}).unwrap();
    assert_eq!(resumed.losses.len(), 25);
    for (k, (a, b)) in resumed.losses.iter().zip(&full.losses).enumerate() {
        assert!((a - b).abs() <= 1e-5 * b, "iteration {k}: {a} vs {b}");
    }
    // A checkpoint without Adam's moments is refused, naming the file.
    std::fs::remove_file(cut.join(OPTIMIZER)).unwrap();
    let err = train(&data, &cfg, &cut, true, |_, _| {}).err().unwrap();
    assert!(err.to_string().contains(OPTIMIZER), "{err}");
}

/// `diffsim experiment wake-flow --quick`: data, NON and SOL-4 training, evaluation against
/// SRC, pictures and results; a second invocation keeps the finished stages; `diffsim eval`
/// evaluates a trained folder and rejects bad input with one line.
#[test]
fn quick_experiment_runs_end_to_end_and_keeps_finished_stages() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("wf");
    let experiment = || {
        diffsim_json(&[
            "experiment",
            "wake-flow",
            "--quick",
            "--json",
            "--out",
            out_dir.to_str().unwrap(),
        ])
    };
    let first = experiment();
    let models = first["eval"]["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["SRC", "NON", "SOL-4"]);
    for m in models {
        let per_sim = m["per_sim"].as_array().unwrap();
        assert_eq!(per_sim.len(), 1);
        let curve = per_sim[0]["mae_per_step"].as_array().unwrap();
        assert_eq!(curve.len(), 12);
        let mae = m["mae"].as_f64().unwrap();
        assert!(mae > 1e-4 && mae < 1.0, "{}: {mae}", m["name"]);
        assert!(per_sim[0]["finite"].as_bool().unwrap());
    }
    // The source solver's error grows along the rollout.
    let src: Vec<f64> = models[0]["per_sim"][0]["mae_per_step"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(src[11] > 1.3 * src[0], "{src:?}");
    let training = first["training"].as_array().unwrap();
    assert_eq!(training.len(), 2);
    assert_eq!(training[1]["losses"].as_array().unwrap().len(), 12);
    assert!(!first["eval"]["acceptance"].as_array().unwrap().is_empty());
    for f in [
        "results.json",
        "results.md",
        "eval.json",
        "loss.png",
        "mae_per_step.png",
        "mae_re585.94.png",
        "vorticity_re585.94_step012.png",
        "vorticity_re585.94_step006.png",
        "rollout_re585.94.gif",
        "non/model.bpk",
        "sol-4/train.json",
        "data/dataset.toml",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    // The second invocation trains nothing: the same losses, no new model file.
    let model = out_dir.join("sol-4/model.bpk");
    let stamp = modified(&model);
    let second = experiment();
    assert_eq!(second["training"], first["training"]);
    assert_eq!(modified(&model), stamp);
    assert_eq!(
        second["eval"]["models"][2]["mae"],
        first["eval"]["models"][2]["mae"]
    );

    // Other data (a longer warm-up) retrains the models, though their settings are the same.
    let mut other = diffsim::experiments::wake_flow::WakeFlowConfig::quick();
    other.data.warmup += 2;
    let cfg = dir.path().join("other.toml");
    std::fs::write(&cfg, toml::to_string(&other).unwrap()).unwrap();
    let third = diffsim_json(&[
        "experiment",
        "wake-flow",
        "--config",
        cfg.to_str().unwrap(),
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_ne!(modified(&model), stamp, "a model of other data was kept");
    assert_ne!(
        third["training"][1]["losses"],
        first["training"][1]["losses"]
    );
    // Resuming a run on other data is refused.
    let tc = diffsim::experiments::wake_flow::TrainConfig {
        unroll: 4,
        ..other.train.clone()
    };
    let quick_data_dir = dir.path().join("quick-data");
    quick_dataset(&quick_data_dir);
    let quick_data = WakeData::open(&quick_data_dir).unwrap();
    let err = diffsim::experiments::wake_flow::train::train(
        &quick_data,
        &tc,
        &out_dir.join("sol-4"),
        true,
        |_, _| {},
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("another dataset"), "{err}");

    // `diffsim eval` on the trained folder gives the experiment's numbers.
    let data = out_dir.join("data");
    let ev = diffsim_json(&[
        "eval",
        "wake-flow",
        "--data",
        data.to_str().unwrap(),
        "--model",
        out_dir.join("sol-4").to_str().unwrap(),
        "--steps",
        "12",
        "--json",
        "--out",
        dir.path().join("ev").to_str().unwrap(),
    ]);
    assert_eq!(ev["models"][1]["name"], "SOL-4");
    assert_eq!(ev["models"][1]["mae"], third["eval"]["models"][2]["mae"]);
    // A model named twice is refused before any work.
    let dup = dir.path().join("dup.toml");
    std::fs::write(&dup, "unrolls = [4, 4]\n").unwrap();
    let out = diffsim(&["experiment", "wake-flow", "--config", dup.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("each once"), "{err}");
    // So are rollouts longer than the test data, before any data or training.
    let long = dir.path().join("long.toml");
    std::fs::write(&long, "eval_steps = 13\n").unwrap();
    let never = dir.path().join("never");
    let out = diffsim(&[
        "experiment",
        "wake-flow",
        "--quick",
        "--config",
        long.to_str().unwrap(),
        "--out",
        never.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("13 evaluation steps"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!never.exists());
    for bad in [
        vec!["--steps", "13"],
        vec!["--model", dir.path().join("nothing").to_str().unwrap()],
    ] {
        let mut args = vec!["eval", "wake-flow", "--data", data.to_str().unwrap()];
        args.extend(bad.iter().copied());
        let out = diffsim(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// experiments/wake-flow/config.toml documents the defaults: it must parse to them.
#[test]
fn experiment_config_file_holds_the_defaults() {
    use diffsim::experiments::wake_flow::WakeFlowConfig;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/wake-flow/config.toml");
    let cfg: WakeFlowConfig = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(cfg, WakeFlowConfig::default());
}

/// The study's `device` setting is checked before anything runs: an unknown name, or a GPU
/// backend this build lacks, is a one-line error.
#[test]
fn experiment_refuses_an_unknown_or_missing_device() {
    use diffsim::experiments::wake_flow::WakeFlowConfig;
    let mut cfg = WakeFlowConfig::quick();
    cfg.validate().unwrap();
    cfg.device = "tpu".into();
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("unknown device 'tpu'"), "{e}");
    if !cfg!(feature = "wgpu") {
        cfg.device = "wgpu".into();
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("built without the 'wgpu' feature"), "{e}");
    }
}
