//! The indirect-control study: its pipeline at toy size (files, resume), training through the
//! projection lowering its loss, and refusals of bad settings.

mod study_cli;

use diffsim::experiments::indirect_control::{IndirectControl, IndirectControlConfig, train_all};
use diffsim::experiments::{Progress, Study, record};

struct Quiet;
impl Progress for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn set(&self, _: u64) {}
}

#[test]
fn quick_study_writes_its_pictures_and_a_rerun_resumes_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = IndirectControl::quick();
    let first = record::<IndirectControl>(&cfg, dir.path(), &Quiet).unwrap();
    for f in [
        "results.json",
        "results.md",
        "config.toml",
        "losses.png",
        "layout.png",
        "baseline.png",
        "sequence-0.gif",
        "sup/model.bpk",
        "dp4/stage.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    assert_eq!(first.methods.len(), 3);
    for m in first.methods.iter().chain(&first.validation) {
        assert!(m.blurred.is_finite() && m.blurred > 0.0, "{m:?}");
        assert!((0.0..=1.0).contains(&m.share), "{m:?}");
        assert_eq!(m.share_by_bucket.len(), 3);
    }
    let again = record::<IndirectControl>(&cfg, dir.path(), &Quiet).unwrap();
    for (a, b) in first.methods.iter().zip(&again.methods) {
        assert_eq!((a.blurred, a.share), (b.blurred, b.share), "{}", a.name);
    }
}

#[test]
fn training_through_the_projection_lowers_the_density_error() {
    // 32x32, windows of 4 steps, a small CFE: 60 iterations after 20 supervised ones.
    let mut cfg = IndirectControlConfig::quick();
    cfg.sup.iterations = 20;
    cfg.windows = vec![4];
    cfg.dp.iterations = 60;
    cfg.dp.batch = 6;
    cfg.dp.learning_rate = 3e-3;
    let dir = tempfile::tempdir().unwrap();
    let trained = train_all(&cfg, dir.path(), &Quiet).unwrap();
    let (_, dp) = trained.stages.last().unwrap();
    let mean = |l: &[f64]| l.iter().sum::<f64>() / l.len() as f64;
    let (head, tail) = (mean(&dp.losses[..10]), mean(&dp.losses[50..]));
    println!("chain loss {head:.4e} -> {tail:.4e}");
    assert!(tail < 0.8 * head, "loss {head:.4e} -> {tail:.4e}");
}

#[test]
fn the_command_refuses_bad_settings_with_one_line() {
    for (toml, words) in [
        ("[layout]\ncontrol_strip = 0.0\n", "covers no fluid cell"),
        ("[layout]\ntargets = [[120.0, 105.0]]\n", "outside"),
        (
            "[layout]\ntargets = [[60.0, 40.0]]\n",
            "not inside a bucket",
        ),
        ("windows = [3]\n", "windows"),
        ("[data]\nresolution = 30\n", "cfe_net"),
        ("pictures = 500\n", "pictures"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        study_cli::assert_refused("indirect-control", toml, words, dir.path());
    }
}

/// A plan file of `frames` frames at 32x32: a 3x3 block rising in column 12, targets 0 and 2.
fn write_plans(path: &std::path::Path, frames: usize) {
    let n = 32;
    let mut d = vec![0.0f32; 2 * frames * n * n];
    for s in 0..2 {
        for f in 0..frames {
            let y = 8 + 4 * f;
            for j in y..y + 3 {
                for i in 12..15 {
                    d[((s * frames + f) * n + j) * n + i] = 1.0;
                }
            }
        }
    }
    let file = hdf5::File::create(path).unwrap();
    file.new_dataset_builder()
        .with_data(&ndarray::Array4::from_shape_vec((2, frames, n, n), d).unwrap())
        .create("density")
        .unwrap();
    file.new_dataset_builder()
        .with_data(&[0i64, 2])
        .create("target")
        .unwrap();
}

#[test]
fn a_plan_file_is_evaluated_and_one_of_the_wrong_shape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("plans.h5");
    write_plans(&good, 5);
    let mut cfg = IndirectControl::quick();
    cfg.plan_file = Some(good);
    let r = record::<IndirectControl>(&cfg, &dir.path().join("run"), &Quiet).unwrap();
    let m = r.plan_file.expect("the plan file is evaluated");
    assert_eq!(m.examples, 2);
    assert!(
        m.blurred.is_finite() && (0.0..=1.0).contains(&m.share),
        "{m:?}"
    );

    let bad = dir.path().join("bad.h5");
    write_plans(&bad, 4);
    let toml = format!("plan_file = {:?}\n", bad.to_str().unwrap());
    let refused = dir.path().join("refused");
    std::fs::create_dir(&refused).unwrap();
    study_cli::assert_refused(
        "indirect-control",
        &toml,
        "expected [S, 5, 32, 32]",
        &refused,
    );
}

#[test]
fn a_longer_rerun_extends_a_stage_exactly_and_a_changed_start_is_refused() {
    let mut cfg = IndirectControlConfig::quick();
    cfg.windows = vec![4];
    let dir = tempfile::tempdir().unwrap();
    train_all(&cfg, dir.path(), &Quiet).unwrap();
    // The last stage from 2 to 5 iterations equals 5 iterations from the start.
    cfg.dp.iterations = 5;
    let extended = train_all(&cfg, dir.path(), &Quiet).unwrap();
    // The same first stage (fresh weights come from the shared generator, which tests running
    // alongside also draw from), the second trained for 5 iterations at once.
    let fresh_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(fresh_dir.path().join("sup")).unwrap();
    for f in ["model.bpk", "optimizer.bpk", "stage.json"] {
        std::fs::copy(
            dir.path().join("sup").join(f),
            fresh_dir.path().join("sup").join(f),
        )
        .unwrap();
    }
    let fresh = train_all(&cfg, fresh_dir.path(), &Quiet).unwrap();
    let losses = |t: &diffsim::experiments::indirect_control::Trained| {
        t.stages.last().unwrap().1.losses.clone()
    };
    assert_eq!(losses(&extended).len(), 5);
    assert_eq!(losses(&extended), losses(&fresh));
    // A longer first stage changes the start of the second: refused, not silently kept.
    cfg.sup.iterations += 1;
    let err = train_all(&cfg, dir.path(), &Quiet)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("another starting network"), "{err}");
    // Fewer iterations than done: refused.
    cfg.sup.iterations = 2;
    let err = train_all(&cfg, fresh_dir.path(), &Quiet)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("more than the 2 asked for"), "{err}");
}
