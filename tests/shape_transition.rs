//! The shape-transition study: its pipeline at toy size (files, resume), differentiable-physics
//! training lowering its loss, and refusals of bad settings.

mod study_cli;

use diffsim::experiments::shape_transition::{
    ShapeLibrary, ShapeTransition, ShapeTransitionConfig, train_all,
};
use diffsim::experiments::stage::StageConfig;
use diffsim::experiments::{Progress, Study, record};

struct Quiet;
impl Progress for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn set(&self, _: u64) {}
}

#[test]
fn quick_study_writes_its_pictures_and_a_rerun_resumes_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ShapeTransition::quick();
    let first = record::<ShapeTransition>(&cfg, dir.path(), &Quiet).unwrap();
    for f in [
        "results.json",
        "results.md",
        "config.toml",
        "losses.png",
        "shapes.png",
        "transition-0.gif",
        "baseline.png",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    assert_eq!(first.library.len(), 10);
    assert_eq!(first.by_target.iter().map(|t| t.1).sum::<usize>(), 8);
    assert_eq!(first.methods.len(), 3);
    for m in first.methods.iter().chain(&first.validation) {
        assert!(
            m.mean.is_finite() && m.mean > 0.0 && m.pooled.is_finite(),
            "{m:?}"
        );
    }
    // Adam on the potentials of 2 examples: 60 iterations bring both well below the start.
    let b = &first.baseline;
    assert_eq!(b.final_errors.len(), 2);
    assert!(
        b.final_errors.iter().all(|&e| e < 0.7),
        "{:?}",
        b.final_errors
    );
    // Every stage finished: a rerun trains nothing and evaluates the same networks.
    let again = record::<ShapeTransition>(&cfg, dir.path(), &Quiet).unwrap();
    for (a, b) in first.methods.iter().zip(&again.methods) {
        assert_eq!((a.mean, a.pooled), (b.mean, b.pooled), "{}", a.name);
    }
    // Networks trained on the notebook's shapes are not continued on other data.
    let mut other = cfg.clone();
    other.data.library = ShapeLibrary::Extended;
    let e = record::<ShapeTransition>(&other, dir.path(), &Quiet).unwrap_err();
    assert!(e.to_string().contains("other data"), "{e}");
    // The extended library in its own folder.
    let dir = tempfile::tempdir().unwrap();
    let ext = record::<ShapeTransition>(&other, dir.path(), &Quiet).unwrap();
    assert_eq!(ext.library.len(), 13);
}

#[test]
fn joint_training_through_the_solver_lowers_its_loss() {
    // 32x32, 2 steps, small networks: 60 joint iterations after one of each pre-training.
    let mut cfg = ShapeTransitionConfig::quick();
    cfg.data.steps = 2;
    let one = StageConfig {
        iterations: 1,
        ..cfg.sup_op.clone()
    };
    cfg.sup_op = one.clone();
    cfg.sup_cfe = one;
    cfg.dp_staggered.iterations = 60;
    cfg.dp_staggered.batch = 8;
    cfg.dp_staggered.learning_rate = 3e-3;
    let dir = tempfile::tempdir().unwrap();
    let trained = train_all(&cfg, dir.path(), &Quiet).unwrap();
    let (_, dp) = trained.stages.last().unwrap();
    let mean = |l: &[f64]| l.iter().sum::<f64>() / l.len() as f64;
    let (head, tail) = (mean(&dp.losses[..10]), mean(&dp.losses[50..]));
    println!("joint loss {head:.4e} -> {tail:.4e}");
    assert!(tail < 0.8 * head, "loss {head:.4e} -> {tail:.4e}");
}

#[test]
fn the_command_refuses_bad_settings_with_one_line() {
    for (toml, words) in [
        ("[data]\nresolution = 30\n", "multiple of 8"),
        ("[data]\nsteps = 12\n", "power of two"),
        ("[op_net]\nlevels = 6\n", "op_net"),
        ("pictures = 500\n", "pictures"),
        ("[data]\nlibrary = \"letters\"\n", "letters"),
        ("[dp_staggered]\nrollback = 0.5\n", "rollback"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        study_cli::assert_refused("shape-transition", toml, words, dir.path());
    }
}
