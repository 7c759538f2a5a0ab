//! 1D Burgers and the Burgers control study: the discretisation against independent loops of
//! the published generators, convergence to the exact steady viscous shock, the line op's
//! kernel against its default body, x-flip symmetry, the control schemes, the dataset file
//! (resume, refusals) and the study at toy size.

mod common;
mod study_cli;

use burn::backend::Flex;
use burn::tensor::{DType, Device, Tensor, TensorData};
use common::{flex, max_diff, to_vec};
use diffsim::burgers::BurgersScene;
use diffsim::control::{Hierarchy, forces, predict_mid, refined, staggered, total_force};
use diffsim::experiments::burgers_control::{
    BurgersControl, BurgersControlConfig, BurgersData, BurgersDataConfig, dataset,
};
use diffsim::experiments::{Progress, Study, record};
use diffsim::io::{SetBlock, SetShape, SetWriter};
use diffsim::ops::{LineAdvectionOps, line_spec, reference};

struct Quiet;
impl Progress for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn set(&self, _: u64) {}
}

fn f64_lines(v: Vec<f64>, b: usize, n: usize, dev: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, [b, n]), (dev, DType::F64))
}

fn host(t: Tensor<2>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

/// Linear interpolation of `q` at index coordinate `x`, edge values beyond the ends (the
/// paper's `math.resample(..., boundary="REPLICATE")`).
fn sample(q: &[f64], x: f64) -> f64 {
    let n = q.len();
    let x = x.clamp(0.0, (n - 1) as f64);
    let i = (x.floor() as usize).min(n - 2);
    let w = x - i as f64;
    q[i] * (1.0 - w) + q[i + 1] * w
}

/// One step of Burgers as the published generators write it, with plain loops.
fn loop_step(s: &BurgersScene, u: &[f64], f: &[f64]) -> Vec<f64> {
    let n = u.len();
    let dt_dx = s.dt / s.dx();
    let before: Vec<f64> = match s.force_order {
        diffsim::burgers::ForceOrder::BeforeStep => u.iter().zip(f).map(|(a, b)| a + b).collect(),
        diffsim::burgers::ForceOrder::AfterStep => u.to_vec(),
    };
    let mut v: Vec<f64> = (0..n)
        .map(|i| sample(&before, i as f64 - dt_dx * before[i]))
        .collect();
    for _ in 0..s.diffusion_substeps {
        let a = s.alpha();
        v = (0..n)
            .map(|i| {
                let l = v[i.saturating_sub(1)] + v[(i + 1).min(n - 1)] - 2.0 * v[i];
                v[i] + a * l
            })
            .collect();
    }
    if s.force_order == diffsim::burgers::ForceOrder::AfterStep {
        v.iter_mut().zip(f).for_each(|(a, b)| *a += b);
    }
    v
}

#[test]
fn both_scenes_step_exactly_as_the_published_generators() {
    let dev = Device::flex();
    for scene in [BurgersScene::paper(), BurgersScene::notebook()] {
        let data = BurgersDataConfig {
            scene: scene.clone(),
            force_amplitude: if scene == BurgersScene::paper() {
                0.05
            } else {
                0.048
            },
            ..BurgersDataConfig::default()
        };
        let n = scene.cells;
        let (mut a, mut b, mut fs) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..3 {
            let (u0, f) = data.fields(&data.draw(k));
            a.extend(u0.iter().map(|&x| x as f64));
            b.push(u0.iter().map(|&x| x as f64).collect::<Vec<_>>());
            fs.push(f.iter().map(|&x| x as f64).collect::<Vec<_>>());
        }
        let force = f64_lines(fs.concat(), 3, n, &dev);
        let mut u = f64_lines(a, 3, n, &dev);
        for _ in 0..scene.steps {
            u = scene.forced(u, force.clone());
            for (item, f) in b.iter_mut().zip(&fs) {
                *item = loop_step(&scene, item, f);
            }
        }
        let got = host(u);
        let want = b.concat();
        let err = got
            .iter()
            .zip(&want)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-12, "{scene:?}: max deviation {err:e}");
        assert!(want.iter().any(|x| x.abs() > 0.5));
    }
}

/// The steady viscous shock `u = −a·tanh(a(x − ½)/(2ν))` solves `u·u_x = ν·u_xx` exactly.
/// The semi-Lagrangian step adds numerical viscosity O(|u|·dx), so after `T = 2` time units the
/// profile's error falls at first order under refinement (dt ∝ dx).
#[test]
fn the_steady_viscous_shock_is_kept_with_first_order_convergence() {
    let dev = Device::flex();
    let (a, nu) = (0.5, 0.01);
    let exact = |x: f64| -a * (a * (x - 0.5) / (2.0 * nu)).tanh();
    let errors: Vec<f64> = [128usize, 256, 512]
        .iter()
        .map(|&n| {
            let dx = 1.0 / n as f64;
            let scene = BurgersScene {
                cells: n,
                length: 1.0,
                dt: 0.5 * dx / a,
                viscosity: nu,
                // ν·dt/(k·dx²) = 0.32 at every resolution (dt ∝ dx).
                diffusion_substeps: n / 32,
                ..BurgersScene::notebook()
            };
            scene.validate().unwrap();
            let xs = scene.unit_points();
            let mut u = f64_lines(xs.iter().map(|&x| exact(x)).collect(), 1, n, &dev);
            let steps = (2.0 / scene.dt).round() as usize;
            for _ in 0..steps {
                u = scene.natural(u);
            }
            host(u)
                .iter()
                .zip(&xs)
                .map(|(v, &x)| (v - exact(x)).abs())
                .fold(0.0, f64::max)
        })
        .collect();
    // Measured 2026-12-04: 0.033, 0.018, 0.0092 (ratios 1.86, 1.93).
    assert!(errors[2] < 0.025 * a, "errors {errors:?}");
    assert!(
        errors[0] / errors[1] > 1.6 && errors[1] / errors[2] > 1.6,
        "errors {errors:?}"
    );
}

#[test]
fn the_line_kernel_and_its_adjoint_match_the_default_body() {
    let n = 17;
    let q: Vec<f64> = (0..2 * n).map(|k| (k as f64 * 0.7).sin() * 2.0).collect();
    let u: Vec<f64> = (0..2 * n).map(|k| (k as f64 * 0.3).cos() * 3.0).collect();
    let g: Vec<f64> = (0..2 * n).map(|k| (k as f64 * 1.1).sin()).collect();
    let t = |v: &Vec<f64>| flex(v.clone(), [2, 1, n]);
    let as_vec = to_vec;
    let close = |a: Vec<f64>, b: Vec<f64>| {
        let e = max_diff(&a, &b);
        assert!(e < 1e-12, "{e:e}");
    };
    let fused = <Flex as LineAdvectionOps>::advect_line(t(&q), t(&u), 1.3);
    let body = reference::advect_line::<Flex>(t(&q), t(&u), &line_spec(n), 1.3);
    close(as_vec(fused), as_vec(body));
    let (gq, gu) = <Flex as LineAdvectionOps>::advect_line_backward(t(&q), t(&u), t(&g), 1.3);
    let [rq, ru] = reference::vjp::<Flex, 2, 1>([t(&q), t(&u)], [t(&g)], |[q, u]| {
        [reference::advect_line::<burn::backend::Autodiff<Flex>>(
            q,
            u,
            &line_spec(n),
            1.3,
        )]
    });
    close(as_vec(gq), as_vec(rq));
    close(as_vec(gu), as_vec(ru));
}

#[test]
fn mirrored_flows_are_flows_the_x_flip_augmentation_is_exact() {
    let dev = Device::flex();
    let scene = BurgersScene::paper();
    let data = BurgersDataConfig::default();
    let n = scene.cells;
    let (u0, f) = data.fields(&data.draw(7));
    let mirror = |v: &[f32]| -> Vec<f64> { v.iter().rev().map(|&x| -(x as f64)).collect() };
    let lines = |v: Vec<f64>| f64_lines(v, 1, n, &dev);
    let (mut a, mut b) = (
        lines(u0.iter().map(|&x| x as f64).collect()),
        lines(mirror(&u0)),
    );
    let (fa, fb) = (
        lines(f.iter().map(|&x| x as f64).collect()),
        lines(mirror(&f)),
    );
    for _ in 0..scene.steps {
        a = scene.forced(a, fa.clone());
        b = scene.forced(b, fb.clone());
    }
    let a: Vec<f32> = host(a).iter().map(|&x| x as f32).collect();
    let err = mirror(&a)
        .iter()
        .zip(host(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-5, "{err:e}");
}

/// Staggered execution batches each level; the paper's depth-first tree (predict the middle,
/// recurse left, then right) gives the same states. Refinement re-plans but keeps the ends.
#[test]
fn staggered_levels_equal_the_depth_first_tree_and_refinement_keeps_the_ends() {
    let dev = Device::flex();
    dev.seed(3);
    let steps = 8;
    let ops = Hierarchy::init(steps, &dev);
    let u0 = Tensor::<2>::random([2, 32], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    let z = Tensor::<2>::random([2, 32], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    fn tree(ops: &Hierarchy, f: &mut [Option<Tensor<2>>], n: usize, s: usize) {
        if n == 1 {
            return;
        }
        let (a, b) = (f[s].clone().unwrap(), f[s + n].clone().unwrap());
        f[s + n / 2] = Some(predict_mid(&ops.op(n).packed(), a, b));
        tree(ops, f, n / 2, s);
        tree(ops, f, n / 2, s + n / 2);
    }
    let mut f = vec![None; steps + 1];
    f[0] = Some(u0.clone());
    f[steps] = Some(z.clone());
    tree(&ops, &mut f, steps, 0);
    let batched = staggered(&ops, u0.clone(), z.clone(), steps);
    for (x, y) in batched.iter().zip(&f) {
        let d = (x.clone() - y.clone().unwrap())
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(d < 1e-5, "{d}");
    }
    let r = refined(&ops, u0.clone(), z.clone(), steps);
    assert_eq!(r.len(), steps + 1);
    let diff =
        |a: &Tensor<2>, b: &Tensor<2>| (a.clone() - b.clone()).abs().max().into_scalar::<f32>();
    assert_eq!(diff(&r[0], &u0), 0.0);
    assert_eq!(diff(&r[steps], &z), 0.0);
    // The second half's plan changes once the first half has been executed.
    assert!(diff(&r[6], &batched[6]) > 1e-4);
    // Pinned target: the last force takes up the remaining mismatch.
    let scene = BurgersScene {
        steps,
        ..BurgersScene::paper()
    };
    let totals = total_force(forces(&scene, &batched), 2);
    assert!(totals.iter().all(|t| t.is_finite() && *t > 0.0));
}

#[test]
fn dataset_blocks_resume_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BurgersDataConfig::quick();
    let shape = cfg.shape();
    let recipe = serde_json::to_string(&cfg).unwrap();
    let path = dir.path().join(dataset::FILE);
    // An interrupted generation: 10 sequences written, then the writer dropped.
    {
        let mut w = SetWriter::open(&path, shape, &recipe).unwrap();
        let (u, f) = (
            vec![0f32; 10 * shape.frames * shape.points],
            vec![0f32; 10 * shape.points],
        );
        w.write(&SetBlock {
            start: 0,
            u: &u,
            force: &f,
            split: &[0; 10],
            params: &vec![0.0; 10 * shape.params],
        })
        .unwrap();
    }
    assert!(!path.exists());
    assert_eq!(
        SetWriter::open(&path, shape, &recipe).unwrap().written(),
        10
    );
    // Another recipe starts over.
    assert_eq!(SetWriter::open(&path, shape, "other").unwrap().written(), 0);
    let out = dataset::generate(&cfg, dir.path(), |_, _| {}).unwrap();
    let data = BurgersData::load(&out).unwrap();
    assert_eq!(
        (data.train.len(), data.validation.len(), data.test.len()),
        (64, 16, 16)
    );
    assert_eq!(
        data.set.shape,
        SetShape {
            sequences: 96,
            frames: 33,
            points: 32,
            params: 9
        }
    );
    // The stored trajectories are the scene's.
    let dev = Device::flex();
    let u0 = data.states(&[5], 0, &[false], &dev);
    let f = Tensor::<2>::from_data(TensorData::new(data.data_force(5).to_vec(), [1, 32]), &dev);
    let u1 = cfg.scene.forced(u0, f);
    let d = (u1 - data.states(&[5], 1, &[false], &dev))
        .abs()
        .max()
        .into_scalar::<f32>();
    assert!(d < 1e-6);
    // A finished file of another recipe is refused, with one line.
    let other = BurgersDataConfig {
        seed: 9,
        ..cfg.clone()
    };
    let e = dataset::generate(&other, dir.path(), |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("another recipe"), "{e}");
    // A file whose arrays do not have the shape its recipe says.
    let odd = dir.path().join("odd");
    let short = SetShape { frames: 5, ..shape };
    let mut w = SetWriter::open(&odd.join(dataset::FILE), short, &recipe).unwrap();
    let n = short.sequences;
    w.write(&SetBlock {
        start: 0,
        u: &vec![0f32; n * short.frames * short.points],
        force: &vec![0f32; n * short.points],
        split: &vec![0; n],
        params: &vec![0.0; n * short.params],
    })
    .unwrap();
    w.finish().unwrap();
    let e = BurgersData::load(&odd).err().unwrap().to_string();
    assert!(e.contains("do not match the recipe"), "{e}");
    // Not a dataset.
    std::fs::write(dir.path().join("junk.h5"), b"junk").unwrap();
    assert!(BurgersData::load(&dir.path().join("junk.h5")).is_err());
    assert!(BurgersData::load(&dir.path().join("missing.h5")).is_err());
}

#[test]
fn the_quick_study_runs_resumes_and_refuses_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BurgersControl::quick();
    let r = record::<BurgersControl>(&cfg, dir.path(), &Quiet).unwrap();
    assert_eq!(r.methods.len(), 10);
    assert!(r.methods.iter().all(|m| m.mean.is_finite() && m.mean > 0.0));
    // The validation split: the same rows but the iterative baseline.
    assert_eq!(r.validation.len(), 9);
    assert!(
        r.validation
            .iter()
            .all(|m| m.mean.is_finite() && m.mean > 0.0)
    );
    for f in [
        "results.json",
        "results.md",
        "config.toml",
        "loss.png",
        "baseline.png",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    assert!(dir.path().join("spacetime/dp-refined-0.png").is_file());
    // A rerun keeps every finished stage (no iteration trained again; JSON keeps the values
    // to the last digit or so).
    let again = record::<BurgersControl>(&cfg, dir.path(), &Quiet).unwrap();
    assert_eq!(again.stages.len(), r.stages.len());
    for (a, b) in again.stages.iter().zip(&r.stages) {
        assert_eq!((&a.0, a.1), (&b.0, b.1));
        assert!((a.2 - b.2).abs() <= 1e-12 * b.2.abs() && (a.4 - b.4).abs() <= 1e-9 * b.4);
    }
    // Other settings in the same folder are refused.
    let mut other = cfg.clone();
    other.dp_cfe.learning_rate = 5e-4;
    let e = record::<BurgersControl>(&other, dir.path(), &Quiet)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("other settings"), "{e}");
    // An OP level that is not a power of two, before anything is written.
    let mut bad = cfg.clone();
    bad.data.scene.steps = 12;
    let fresh = tempfile::tempdir().unwrap();
    let e = record::<BurgersControl>(&bad, &fresh.path().join("x"), &Quiet)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("power of two"), "{e}");
    assert!(!fresh.path().join("x").exists());
    // A missing model.
    let e = diffsim::experiments::stage::load(
        diffsim::nn::UNet1dConfig::cfe().init(&Device::flex()),
        &fresh.path().join("nothing"),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("missing model"), "{e}");
    // A diverging training ends with one line naming the stage, before any result is written.
    let mut wild = cfg.clone();
    wild.dp_cfe.learning_rate = 1e12;
    let dir = tempfile::tempdir().unwrap();
    let e = record::<BurgersControl>(&wild, dir.path(), &Quiet)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("dp-cfe") && e.contains("learning_rate"), "{e}");
    assert!(!dir.path().join("results.json").exists());
    let _: BurgersControlConfig = cfg;
}

/// The command line: bad settings end with one line on stderr, exit code 1 and no folder.
#[test]
fn the_command_refuses_bad_settings_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    study_cli::assert_refused(
        "burgers-control",
        "[data.scene]\nsteps = 12\n",
        "power of two",
        dir.path(),
    );
}
