//! The command line as a user runs it: outputs, HDF5 round trip, and bad input (one-line
//! error, non-zero exit, no output file left behind).

use std::path::Path;
use std::process::{Command, Output};

fn diffsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diffsim"))
        .args(args)
        .output()
        .expect("run diffsim")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failed run with exactly one line on stderr that starts with `error:` and
/// contains `needle`.
fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

fn no_files_in(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn simulate_writes_hdf5_pictures_and_json_and_the_file_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wake.h5");
    let png = dir.path().join("png");
    let gif = dir.path().join("wake.gif");
    let o = diffsim(&[
        "simulate",
        "wake",
        "--res",
        "32x64",
        "--steps",
        "20",
        "--save-every",
        "5",
        "--re",
        "146.48",
        "--out",
        out.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
        "--gif",
        gif.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["steps"], 20);
    assert_eq!(summary["frames"], 5);
    assert!(summary["max_divergence"].as_f64().unwrap() < 1e-5);
    assert!(summary["ms_per_step"].as_f64().unwrap() > 0.0);
    assert_eq!(std::fs::read_dir(&png).unwrap().count(), 5);
    assert!(std::fs::metadata(&gif).unwrap().len() > 1000);
    // Nothing temporary left.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");

    // HDF5 layout and attributes.
    let f = hdf5::File::open(&out).unwrap();
    assert_eq!(f.dataset("velocity_x").unwrap().shape(), vec![5, 64, 33]);
    assert_eq!(f.dataset("velocity_y").unwrap().shape(), vec![5, 65, 32]);
    assert_eq!(f.dataset("pressure").unwrap().shape(), vec![5, 64, 32]);
    assert_eq!(f.dataset("marker").unwrap().shape(), vec![5, 64, 32]);
    assert_eq!(f.dataset("obstacle").unwrap().shape(), vec![64, 32]);
    assert_eq!(
        f.dataset("step").unwrap().read_raw::<u64>().unwrap(),
        vec![0, 5, 10, 15, 20]
    );
    assert_eq!(f.attr("complete").unwrap().read_scalar::<u8>().unwrap(), 1);
    assert_eq!(
        f.attr("format_version")
            .unwrap()
            .read_scalar::<u32>()
            .unwrap(),
        diffsim::io::FORMAT_VERSION
    );
    assert!((f.attr("reynolds").unwrap().read_scalar::<f64>().unwrap() - 146.48).abs() < 1e-12);
    let scene: hdf5::types::VarLenUnicode = f.attr("scene").unwrap().read_scalar().unwrap();
    let scene: diffsim::fluid::SceneConfig = serde_json::from_str(scene.as_str()).unwrap();
    assert_eq!(scene.name, "wake");
    drop(f);

    // Round trip: continuing from the file for 0 steps reproduces the stored last frame.
    let grid =
        diffsim::grid::Grid::new(diffsim::grid::Resolution::new(32, 64), [100.0, 200.0]).unwrap();
    let frame = diffsim::io::read_frame(&out, &grid).unwrap();
    let again = dir.path().join("again.h5");
    let o = diffsim(&[
        "simulate",
        "wake",
        "--init",
        out.to_str().unwrap(),
        "--steps",
        "0",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let back = diffsim::io::read_frame(&again, &grid).unwrap();
    assert_eq!(frame.u, back.u);
    assert_eq!(frame.v, back.v);
    assert_eq!(frame.marker, back.marker);
}

#[test]
fn bench_reports_speed_against_phiflow_from_the_shipped_state() {
    let data = phiflow_data();
    let o = diffsim(&[
        "bench",
        "fluid",
        "--res",
        "32x64",
        "--steps",
        "5",
        "--warmup",
        "1",
        "--batch",
        "4",
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r.as_array().unwrap().len(), 2);
    assert_eq!(r[1]["batch"], 4);
    assert!(r[0]["speedup_vs_phiflow"].as_f64().unwrap() > 0.0);
}

/// `--phiflow FILE` takes the speed-up against PhiFlow timings measured on this machine
/// (`benches/phiflow/wake_grad.py --json` lines) and refuses a file of another shape.
#[test]
fn bench_grad_takes_phiflow_timings_measured_here() {
    let data = phiflow_data();
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("phiflow.jsonl");
    std::fs::write(
        &runs,
        "{\"resolution\": \"32x64\", \"steps\": 2, \"grad_ms\": 1000.0, \"forward_ms\": 500.0}\n\
         {\"resolution\": \"128x256\", \"steps\": 2, \"grad_ms\": 9000.0}\n",
    )
    .unwrap();
    let bench = |file: &Path| {
        diffsim(&[
            "bench",
            "fluid",
            "--grad",
            "--res",
            "32x64",
            "--steps",
            "2",
            "--repeats",
            "2",
            "--data",
            data.to_str().unwrap(),
            "--phiflow",
            file.to_str().unwrap(),
            "--json",
        ])
    };
    let o = bench(&runs);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r[0]["phiflow_ms"], 1000.0);
    assert_eq!(r[0]["phiflow_source"], "measured");
    let speedup = r[0]["speedup_vs_phiflow"].as_f64().unwrap();
    let want = 1000.0 / r[0]["grad_ms"].as_f64().unwrap();
    assert!((speedup - want).abs() <= 1e-9 * want, "{speedup} vs {want}");
    let junk = dir.path().join("junk.jsonl");
    std::fs::write(&junk, "not json\n").unwrap();
    assert_one_line_error(
        &bench(&junk),
        "is not the JSON lines of benches/phiflow/wake_grad.py",
    );
}

/// `bench train` times the training's own iteration with and without the solver, matches the
/// PhiFlow lines it is given by backend, model and unroll, and refuses bad settings and files.
#[test]
fn bench_solids_times_the_cases_against_warp_lines() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("warp.jsonl");
    std::fs::write(
        &runs,
        "{\"case\": \"cloth-throw\", \"cells\": 2, \"ms\": 900.0}\n\
         {\"case\": \"spring-cage\", \"cells\": null, \"ms\": 7.0}\n",
    )
    .unwrap();
    let bench = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "solids",
            "--rounds",
            "1",
            "--repeats",
            "1",
            "--json",
        ];
        args.extend_from_slice(extra);
        diffsim(&args)
    };
    let o = bench(&[
        "--case",
        "cloth-explicit",
        "--case",
        "spring-cage",
        "--cells",
        "2",
        "--warp",
        runs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["case"], "cloth-explicit");
    assert_eq!(rows[0]["particles"], 9);
    assert_eq!(rows[0]["steps"], 1920);
    assert_eq!(rows[0]["warp_ms"], 900.0);
    assert_eq!(rows[1]["case"], "spring-cage");
    assert_eq!(rows[1]["warp_ms"], 7.0);
    for row in rows {
        assert!(row["ms"].as_f64().unwrap() > 0.0);
        assert!(row["us_per_particle_step"].as_f64().unwrap() > 0.0);
    }
    let junk = dir.path().join("junk.jsonl");
    std::fs::write(&junk, "{\"case\": 3}\n").unwrap();
    assert_one_line_error(
        &bench(&["--case", "spring-cage", "--warp", junk.to_str().unwrap()]),
        "is not the JSON lines of benches/warp/solids_iterations.py",
    );
    assert_one_line_error(&bench(&["--cells", "0"]), "--cells must be at least 1");
}

#[test]
fn bench_train_reports_iterations_against_phiflow_lines() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("phi.jsonl");
    std::fs::write(
        &runs,
        "{\"backend\": \"jax\", \"model\": \"small\", \"unroll\": 2, \"it_per_s\": 2.0, \"network_only_it_per_s\": 4.0}\n\
         {\"backend\": \"torch\", \"model\": \"small\", \"unroll\": 2, \"it_per_s\": 1.0, \"network_only_it_per_s\": 3.0}\n",
    )
    .unwrap();
    let bench = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "train",
            "--model",
            "small",
            "--unroll",
            "2",
            "--iters",
            "1",
            "--rounds",
            "1",
            "--no-kernels",
            "--json",
        ];
        args.extend_from_slice(extra);
        diffsim(&args)
    };
    let o = bench(&["--phiflow", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = &r["rows"][0];
    assert_eq!(row["unroll"], 2);
    assert!(row["it_per_s"].as_f64().unwrap() > 0.0);
    assert!(row["network_only_it_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(row["phiflow_jax"], 2.0);
    assert_eq!(row["phiflow_torch"], 1.0);
    assert_eq!(row["phiflow_torch_network_only"], 3.0);
    assert!(r["kernels"].as_array().unwrap().is_empty());
    assert!(r["peak_gflops"].as_f64().unwrap() > 0.0);
    let junk = dir.path().join("junk.jsonl");
    std::fs::write(&junk, "{\"backend\": 3}\n").unwrap();
    assert_one_line_error(
        &bench(&["--phiflow", junk.to_str().unwrap()]),
        "is not the JSON lines of benches/phiflow/sol_train.py",
    );
    assert_one_line_error(
        &diffsim(&["bench", "train", "--iters", "0", "--no-kernels"]),
        "--iters and --rounds",
    );
    assert_one_line_error(
        &diffsim(&["bench", "machine", "--seconds", "0"]),
        "--seconds must be in (0, 600]",
    );
}

#[test]
fn bad_input_gives_one_line_errors_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.h5");
    let out_s = out.to_str().unwrap();
    assert_one_line_error(
        &diffsim(&["simulate", "vortex-street", "--out", out_s]),
        "unknown scene 'vortex-street'",
    );
    assert_one_line_error(
        &diffsim(&["simulate", "wake", "--res", "0x5", "--out", out_s]),
        "resolution '0x5'",
    );
    assert_one_line_error(
        &diffsim(&["bench", "fluid", "--res", "64", "--steps", "1"]),
        "resolution '64'",
    );
    assert_one_line_error(
        &diffsim(&[
            "simulate",
            "wake-phiflow",
            "--init",
            "/nonexistent/x.h5",
            "--out",
            out_s,
        ]),
        "no such file",
    );
    let junk = dir.path().join("junk.h5");
    std::fs::write(&junk, "not hdf5").unwrap();
    assert_one_line_error(
        &diffsim(&[
            "simulate",
            "wake-phiflow",
            "--init",
            junk.to_str().unwrap(),
            "--out",
            out_s,
        ]),
        "not a readable HDF5 file",
    );
    assert_one_line_error(
        &diffsim(&["simulate", "taylor-green", "--re", "100", "--out", out_s]),
        "--re applies",
    );
    assert_one_line_error(
        &diffsim(&["simulate", "smoke", "--dt=-1", "--out", out_s]),
        "dt = -1",
    );
    // Unstable explicit diffusion is refused up front.
    let hot = dir.path().join("hot.toml");
    std::fs::write(
        &hot,
        "base = \"smoke\"\nviscosity = { kinematic = 1000.0 }\n",
    )
    .unwrap();
    assert_one_line_error(
        &diffsim(&["simulate", hot.to_str().unwrap(), "--out", out_s]),
        "explicit diffusion is unstable",
    );
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "base = \"smoke\"\nresolution = 12\n").unwrap();
    assert_one_line_error(
        &diffsim(&["simulate", bad_toml.to_str().unwrap(), "--out", out_s]),
        "bad.toml",
    );
    // A run that blows up (buoyancy overflows to infinity) stops with an error and leaves nothing.
    let boom = dir.path().join("boom.toml");
    std::fs::write(&boom, "base = \"smoke\"\nresolution = \"16x16\"\nsteps = 30\n[marker]\ninflow = [{ disc = { center = [50.0, 12.0], radius = 20.0 } }]\nrate = 1.0\nbuoyancy = 1e38\n").unwrap();
    let o = diffsim(&[
        "simulate",
        boom.to_str().unwrap(),
        "--out",
        out_s,
        "--gif",
        dir.path().join("b.gif").to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "blew up");
    std::fs::remove_file(&junk).unwrap();
    for f in [&hot, &bad_toml, &boom] {
        std::fs::remove_file(f).unwrap();
    }
    no_files_in(dir.path());
}

#[test]
fn gradcheck_prints_rows_and_fails_on_unknown_ops() {
    let ok = Command::new(env!("CARGO_BIN_EXE_diffsim"))
        .args([
            "gradcheck",
            "--op",
            "divergence",
            "--op",
            "project-obstacle-open",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let reports: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 2);
    assert!(reports[1]["passed"].as_bool().unwrap());
    // A tolerance no finite difference can meet fails, with a non-zero exit and one line.
    let strict = Command::new(env!("CARGO_BIN_EXE_diffsim"))
        .args([
            "gradcheck",
            "--op",
            "divergence",
            "--rtol",
            "1e-30",
            "--atol",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stdout).contains("FAILED"));
    let bad = Command::new(env!("CARGO_BIN_EXE_diffsim"))
        .args(["gradcheck", "--op", "nope"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
}

/// A child process started while a file is being written (a test harness, a user's script
/// driving the library) inherits HDF5's open descriptor; the file must still read back once
/// the writer finishes, while the child lives on. HDF5 1.10 `flock`s every file it opens and
/// does not set close-on-exec, so a locking reader fails here ("unable to lock file").
#[test]
fn a_finished_file_reads_back_while_a_child_started_during_the_write_still_runs() {
    use diffsim::fluid::{SceneConfig, Simulation};
    use diffsim::io::{Frame, SimWriter, read_trajectory};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let mut scene = SceneConfig::wake();
    scene.resolution = diffsim::grid::Resolution::new(8, 16);
    let sim = Simulation::new(&scene, &burn::tensor::Device::flex()).unwrap();
    let state = sim.initial_state(1).unwrap();
    let mut writer = SimWriter::create(&path, &sim).unwrap();
    writer.append(&Frame::of_state(&sim, &state, 0)).unwrap();
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let written = writer.finish();
    let read = written.and_then(|p| read_trajectory(&p, &sim.grid));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(read.unwrap().frames, 1);
}

/// The PhiFlow states that ship in the repository; a missing file fails the test.
fn phiflow_data() -> std::path::PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join(diffsim::io::PHIFLOW_DIR);
    let state = data.join("wake_phiflow_32x64.h5");
    assert!(
        state.is_file(),
        "{} is missing from the repository",
        state.display()
    );
    data
}

/// The registry of `diffsim experiment` and the study list agree: every listed study prints its
/// full and quick settings as TOML, and `experiment list` names each once.
#[test]
fn every_listed_study_is_runnable_by_name() {
    for (name, _) in diffsim::experiments::STUDIES {
        for quick in [false, true] {
            let mut args = vec!["experiment", name, "--print-config"];
            if quick {
                args.push("--quick");
            }
            let o = diffsim(&args);
            assert!(o.status.success(), "{name}: {}", stderr(&o));
            let text = String::from_utf8(o.stdout).unwrap();
            assert!(text.parse::<toml::Table>().is_ok(), "{name}: {text}");
        }
    }
    let o = diffsim(&["experiment", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = String::from_utf8(o.stdout).unwrap();
    assert_eq!(listed.lines().count(), diffsim::experiments::STUDIES.len());
}

/// Runs `diffsim experiment STUDY [--quick] --config FILE` for each `(settings, message)`
/// and checks it ends with one line containing `message` and writes no output folder.
fn refuses_settings(study: &str, quick: bool, cases: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("settings.toml");
    for (toml, want) in cases {
        std::fs::write(&cfg, toml).unwrap();
        let mut args = vec!["experiment", study];
        if quick {
            args.push("--quick");
        }
        args.extend([
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let o = diffsim(&args);
        assert_one_line_error(&o, want);
        assert!(!out.exists());
    }
}

/// A billiards shot whose cue starts inside the rack, or a negative rack gap, is refused in
/// one line before anything is written.
#[test]
fn billiards_refuses_a_cue_inside_the_rack() {
    refuses_settings(
        "billiards",
        false,
        &[
            ("start = [0.6, 0.5, 0.3, 0.0]\n", "must lie within"),
            ("rack_gap = -0.001\n", "gap ≥ 0"),
        ],
    );
}

/// A box-toss fit that asks for more tosses than the file holds, a missing tosses folder, or
/// a corner bound of zero, is refused in one line before anything is written.
#[test]
fn box_toss_refuses_missing_data_and_bad_bounds() {
    refuses_settings(
        "box-toss",
        true,
        &[
            ("fit_tosses = 600\n", "the file has 570"),
            (
                "data = \"/nonexistent-diffsim-tosses\"\n",
                "tosses.h5: not found",
            ),
            ("corner_bounds = [0.0, 2.0]\n", "corner bounds 0 < lo"),
        ],
    );
}

/// A pendulum-id run with a negative length, a zero time step, an unknown setting or fewer
/// than two noisy trials is refused in one line before anything is written.
#[test]
fn pendulum_id_refuses_bad_settings() {
    refuses_settings(
        "pendulum-id",
        true,
        &[
            ("guess = -1.0\n", "needs positive lengths"),
            ("timestep = 0.0\n", "needs positive lengths"),
            ("lenght = 1.0\n", "lenght"),
            ("trials = 1\n", "at least 2 noisy trials"),
        ],
    );
}

/// A panda-reach run naming a link the URDF lacks, a start pose of the wrong length, a
/// missing URDF or a zero torque limit is refused in one line before anything is written.
#[test]
fn panda_reach_refuses_bad_settings() {
    refuses_settings(
        "panda-reach",
        true,
        &[
            ("hand = \"panda_wrist\"\n", "has no link 'panda_wrist'"),
            ("start = [0.0, 0.1]\n", "start has 2 angles"),
            (
                "model = \"/nonexistent/panda.urdf\"\n",
                "/nonexistent/panda.urdf",
            ),
            (
                "torque_limits = [87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 0.0]\n",
                "positive step count",
            ),
        ],
    );
}
