//! Gradients: every op and 16-step unrolls against f64 finite differences, the checker's own
//! failure detection, the adjoint solve reusing the forward factorisation, checkpointed vs
//! plain backward, and the fused Flex adjoints against the default bodies' adjoints.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Device, Tensor};
use diffsim::fluid::{
    Checkpointing, FluidState, Precision, Reads, SceneConfig, Simulation, UnrollGradient,
    unrolled_gradient,
};
use diffsim::gradcheck::{GradCheckConfig, check, tensor_f64, values};
use diffsim::gradcheck::{kinetic_loss, run_gradchecks};
use diffsim::grid::{
    ArraySpec, Boundaries, Extrap, Geometry, Grid, Location, Resolution, SideBc, SolidMask,
};
use diffsim::linalg::{SolveConfig, factorization_count};
use diffsim::ops::{
    AdvectScheme, AdvectSpec, AdvectionOps, DiffusionOps, ImplicitDiffusion, PressureProjection,
    ProjectionOps, reference,
};
use std::sync::{Arc, Mutex};

mod common;
use common::{flex, max_diff, to_vec};

/// Tests that build solvers hold this, so the process-wide factorisation count is only
/// changed by the test that reads it.
static FACTOR_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    FACTOR_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn every_op_and_unroll_passes_the_gradient_check() {
    let _g = lock();
    let reports = run_gradchecks(&[], &GradCheckConfig::default()).unwrap();
    assert_eq!(reports.len(), diffsim::gradcheck::CHECKS.len());
    for r in &reports {
        println!(
            "{:24} {:9.2e} ({} redrawn)",
            r.name, r.max_rel_error, r.redraws
        );
        assert!(r.passed, "{} failed: {:?}", r.name, r.probes);
        assert!(r.max_rel_error <= 1e-5);
    }
}

#[test]
fn the_checker_fails_a_wrong_gradient() {
    // f(x) = Σ x² with one factor detached: reverse mode gives x, finite differences 2x.
    let dev = Device::flex().autodiff();
    let x = tensor_f64(
        (0..24).map(|k| 0.1 * k as f64 - 1.0).collect(),
        [1, 4, 6],
        &dev,
    );
    let loss = |x: &[Tensor<3>]| (x[0].clone().detach() * x[0].clone()).sum();
    let r = check("detached", &[x], &loss, &GradCheckConfig::default()).unwrap();
    assert!(!r.passed && r.max_rel_error > 0.3, "{r:?}");
    // And a NaN is never a pass.
    let y = tensor_f64(vec![1.0; 6], [1, 2, 3], &dev);
    let nan = |x: &[Tensor<3>]| (x[0].clone().log() * f64::NAN).sum();
    assert!(
        !check("nan", &[y], &nan, &GradCheckConfig::default())
            .unwrap()
            .passed
    );
}

fn small_wake(dev: &Device) -> Simulation {
    let mut scene = SceneConfig::wake();
    scene.resolution = Resolution::new(16, 32);
    scene.precision = Precision::F64;
    Simulation::new(&scene, dev).unwrap()
}

/// The gradient of the kinetic loss after `steps` steps from `init`
/// ([`diffsim::fluid::unrolled_gradient`]).
fn kinetic_gradient(
    sim: &Simulation,
    init: &FluidState,
    steps: usize,
    mode: Checkpointing,
    reads: Reads,
) -> UnrollGradient {
    unrolled_gradient(sim, init, steps, mode, reads, &kinetic_loss).unwrap()
}

/// [`kinetic_gradient`] over the whole tape from `sim`'s initial state: (loss, ∂u₀, ∂v₀).
fn taped_gradient(sim: &Simulation, steps: usize) -> (f64, Vec<f64>, Vec<f64>) {
    let init = sim.initial_state(1).unwrap();
    let g = kinetic_gradient(sim, &init, steps, Checkpointing::Tape, Reads::All);
    (g.loss, values(&g.u), values(&g.v))
}

#[test]
fn the_adjoint_solves_reuse_the_forward_factorisation() {
    let _g = lock();
    let sim = small_wake(&Device::flex().autodiff());
    let (factors, solves) = (factorization_count(), sim.projection.solver.solve_calls());
    let steps = 16;
    let (_, gu, _) = taped_gradient(&sim, steps);
    assert!(gu.iter().any(|g| *g != 0.0));
    // The first forward solve factorises (factors are made on first use); nothing after it.
    assert_eq!(sim.projection.solver.factorizations(), 1);
    assert_eq!(
        factorization_count(),
        factors + 1,
        "factorised more than once"
    );
    // One projection solve per step forward, one adjoint solve per step backward (plus the
    // initial state's projection).
    let calls = sim.projection.solver.solve_calls() - solves;
    assert!(
        calls == 2 * steps || calls == 2 * steps + 1,
        "{calls} solves"
    );
}

#[test]
fn checkpointed_and_plain_backward_agree() {
    let _g = lock();
    let plain = taped_gradient(&small_wake(&Device::flex().autodiff()), 16);
    let ck = taped_gradient(
        &small_wake(&Device::flex().autodiff().gradient_checkpointing()),
        16,
    );
    assert_eq!(plain.0, ck.0);
    let scale = plain
        .1
        .iter()
        .chain(&plain.2)
        .fold(0.0f64, |m, g| m.max(g.abs()));
    for (a, b) in plain.1.iter().chain(&plain.2).zip(ck.1.iter().chain(&ck.2)) {
        assert!((a - b).abs() <= 1e-13 * scale, "{a} vs {b}");
    }
}

fn smooth(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|k| (k as f64 * 0.731 + seed).sin() + 0.5 * (k as f64 * 0.113 + seed).cos())
        .collect()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    let scale = b.iter().fold(1e-300f64, |m, x| m.max(x.abs()));
    let err = max_diff(a, b);
    assert!(
        err <= tol * scale,
        "{what}: max difference {err:e} (scale {scale:e})"
    );
}

/// A 9x11 grid with walls, an open and a zero-gradient side.
fn walled_open_grid() -> (Grid, Boundaries) {
    let grid = Grid::new(Resolution::new(9, 11), [9.0, 11.0]).unwrap();
    let bcs = Boundaries {
        x_lo: SideBc::Dirichlet(0.0),
        x_hi: SideBc::Dirichlet(0.0),
        y_lo: SideBc::Open,
        y_hi: SideBc::ZeroGradient,
    };
    (grid, bcs)
}

/// The projection of `grid` around a disc, solved to 1e-13 (the config is returned too).
fn disc_projection(grid: &Grid, bcs: &Boundaries) -> (SolveConfig, Arc<PressureProjection>) {
    let solid = SolidMask::new(
        *grid,
        &[Geometry::Disc {
            center: [4.5, 5.0],
            radius: 2.0,
        }],
    )
    .unwrap();
    let cfg = SolveConfig {
        rel_tol: 1e-13,
        ..SolveConfig::default()
    };
    (
        cfg,
        Arc::new(PressureProjection::new(bcs, &solid, cfg).unwrap()),
    )
}

#[test]
fn fused_adjoints_match_the_default_bodies() {
    let _g = lock();
    let (grid, bcs) = walled_open_grid();
    let (su, sv) = bcs.velocity_specs(&grid);
    let sc = ArraySpec::new(
        &grid,
        Location::Center,
        [
            Extrap::Value(0.3),
            Extrap::ZeroGradient,
            Extrap::Value(-0.2),
            Extrap::ZeroGradient,
        ],
    );
    let b = 2;
    let dims = |s: &ArraySpec| [b, s.ny, s.nx];
    let (u, v) = (smooth(b * su.len(), 0.4), smooth(b * sv.len(), 1.1));
    for (sq, q) in [
        (sc, smooth(b * sc.len(), 2.0)),
        (su, u.clone()),
        (sv, v.clone()),
    ] {
        let spec = AdvectSpec {
            q: sq,
            u: su,
            v: sv,
            dt_dx: 1.3,
            scheme: AdvectScheme::SemiLagrangian,
        };
        let g = smooth(b * sq.len(), 3.0);
        let (kq, ku, kv) = Flex::advect_backward(
            flex(q.clone(), dims(&sq)),
            flex(u.clone(), dims(&su)),
            flex(v.clone(), dims(&sv)),
            flex(g.clone(), dims(&sq)),
            spec,
        );
        let [rq, ru, rv] = reference::vjp::<Flex, 3, 1>(
            [
                flex(q, dims(&sq)),
                flex(u.clone(), dims(&su)),
                flex(v.clone(), dims(&sv)),
            ],
            [flex(g, dims(&sq))],
            |[q, u, v]| {
                [reference::advect::<burn::backend::Autodiff<Flex>>(
                    q, u, v, &spec,
                )]
            },
        );
        assert_close(&to_vec(kq), &to_vec(rq), 1e-12, "advect q̄");
        assert_close(&to_vec(ku), &to_vec(ru), 1e-12, "advect ū");
        assert_close(&to_vec(kv), &to_vec(rv), 1e-12, "advect v̄");
    }
    // Explicit diffusion, divergence and gradient: fused vs Burn autodiff of the default body.
    let g = smooth(b * su.len(), 5.0);
    let k = Flex::diffuse_explicit_backward(flex(g.clone(), dims(&su)), su, 0.2);
    let [r] = reference::vjp::<Flex, 1, 1>(
        [flex(vec![0.0; g.len()], dims(&su))],
        [flex(g, dims(&su))],
        |[q]| [reference::diffuse_explicit::<burn::backend::Autodiff<Flex>>(q, &su, 0.2)],
    );
    assert_close(&to_vec(k), &to_vec(r), 1e-12, "diffuse_explicit");
    let ps = ArraySpec::new(&grid, Location::Center, bcs.pressure_extrap());
    let gd = smooth(b * ps.len(), 6.0);
    let (ku, kv) = Flex::divergence_backward(flex(gd.clone(), dims(&ps)), 0.7);
    let [ru, rv] = reference::vjp::<Flex, 2, 1>(
        [
            flex(vec![0.0; b * su.len()], dims(&su)),
            flex(vec![0.0; b * sv.len()], dims(&sv)),
        ],
        [flex(gd, dims(&ps))],
        |[u, v]| {
            [reference::divergence::<burn::backend::Autodiff<Flex>>(
                u, v, 0.7,
            )]
        },
    );
    assert_close(&to_vec(ku), &to_vec(ru), 1e-12, "divergence ū");
    assert_close(&to_vec(kv), &to_vec(rv), 1e-12, "divergence v̄");
    let kp = Flex::gradient_backward(
        flex(u.clone(), dims(&su)),
        flex(v.clone(), dims(&sv)),
        ps,
        0.7,
    );
    let [rp] = reference::vjp::<Flex, 1, 2>(
        [flex(vec![0.0; b * ps.len()], dims(&ps))],
        [flex(u.clone(), dims(&su)), flex(v.clone(), dims(&sv))],
        |[p]| {
            let (a, c) = reference::gradient::<burn::backend::Autodiff<Flex>>(p, &ps, 0.7);
            [a, c]
        },
    );
    assert_close(&to_vec(kp), &to_vec(rp), 1e-12, "gradient p̄");
    // Projection (with a disc) and implicit diffusion: the default bodies solve with CG.
    let (cfg, proj) = disc_projection(&grid, &bcs);
    let gp = smooth(b * ps.len(), 7.0);
    let run = |f: &dyn Fn(FlexTensor, FlexTensor, FlexTensor) -> (FlexTensor, FlexTensor)| {
        let (a, c) = f(
            flex(u.clone(), dims(&su)),
            flex(v.clone(), dims(&sv)),
            flex(gp.clone(), dims(&ps)),
        );
        (to_vec(a), to_vec(c))
    };
    let (ku, kv) = run(&|a, c, p| Flex::project_backward(a, c, p, proj.clone()));
    let (ru, rv) = run(&|a, c, p| reference::project_adjoint::<Flex>(a, c, p, &proj));
    assert_close(&ku, &ru, 1e-9, "project ū");
    assert_close(&kv, &rv, 1e-9, "project v̄");
    let imp = Arc::new(ImplicitDiffusion::new(su, 0.6, cfg).unwrap());
    let k = Flex::diffuse_implicit_backward(flex(u.clone(), dims(&su)), imp.clone());
    let r = reference::diffuse_implicit_adjoint::<Flex>(flex(u.clone(), dims(&su)), &imp);
    assert_close(&to_vec(k), &to_vec(r), 1e-9, "diffuse_implicit");
}

/// Multi-output ops (projection, gradient) are one node plus one node per extra output: a
/// loss that reads any subset of the outputs gets the op's adjoint with zeros for the
/// outputs it does not read, whichever output it reads.
#[test]
fn a_loss_reading_some_outputs_of_a_multi_output_op_gets_their_adjoint() {
    let _g = lock();
    let (grid, bcs) = walled_open_grid();
    let (_, proj) = disc_projection(&grid, &bcs);
    let (su, sv) = bcs.velocity_specs(&grid);
    let ps = ArraySpec::new(&grid, Location::Center, bcs.pressure_extrap());
    let dev = Device::flex().autodiff();
    let b = 2;
    let dims = |s: &ArraySpec| [b, s.ny, s.nx];
    let (u, v) = (smooth(b * su.len(), 0.4), smooth(b * sv.len(), 1.1));
    let w = [
        (smooth(b * su.len(), 2.0), dims(&su)),
        (smooth(b * sv.len(), 3.0), dims(&sv)),
        (smooth(b * ps.len(), 4.0), dims(&ps)),
    ];
    // Which outputs the loss reads: each alone, and pairs.
    for reads in [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1], [1, 0, 1]] {
        let (u0, v0) = (
            tensor_f64(u.clone(), dims(&su), &dev).require_grad(),
            tensor_f64(v.clone(), dims(&sv), &dev).require_grad(),
        );
        let (a, c, p) = diffsim::ops::project(u0.clone(), v0.clone(), &proj);
        let weight = |k: usize| tensor_f64(w[k].0.clone(), w[k].1, &dev);
        let loss = [a, c, p]
            .into_iter()
            .enumerate()
            .filter(|&(k, _)| reads[k] == 1)
            .map(|(k, y)| (y * weight(k)).sum())
            .reduce(|x, y| x + y)
            .unwrap();
        let grads = loss.backward();
        let seed = |k: usize| flex(w[k].0.iter().map(|x| x * reads[k] as f64).collect(), w[k].1);
        let (eu, ev) = Flex::project_backward(seed(0), seed(1), seed(2), proj.clone());
        let what = format!("project reading {reads:?}");
        assert_close(
            &values(&u0.grad(&grads).unwrap()),
            &to_vec(eu),
            1e-12,
            &what,
        );
        assert_close(
            &values(&v0.grad(&grads).unwrap()),
            &to_vec(ev),
            1e-12,
            &what,
        );
    }
    for reads in [[1, 0], [0, 1]] {
        let p0 = tensor_f64(smooth(b * ps.len(), 5.0), dims(&ps), &dev).require_grad();
        let (gu, gv) = diffsim::ops::gradient(p0.clone(), ps, 0.7);
        let loss = if reads[0] == 1 {
            (gu * tensor_f64(w[0].0.clone(), w[0].1, &dev)).sum()
        } else {
            (gv * tensor_f64(w[1].0.clone(), w[1].1, &dev)).sum()
        };
        let grads = loss.backward();
        let seed = |k: usize| flex(w[k].0.iter().map(|x| x * reads[k] as f64).collect(), w[k].1);
        let expected = Flex::gradient_backward(seed(0), seed(1), ps, 0.7);
        let what = format!("gradient reading {reads:?}");
        assert_close(
            &values(&p0.grad(&grads).unwrap()),
            &to_vec(expected),
            1e-12,
            &what,
        );
    }
}

#[test]
fn detached_evaluation_rollouts_build_no_graph() {
    let _g = lock();
    let dev = Device::flex().autodiff();
    let sim = small_wake(&dev);
    let init = sim.initial_state(1).unwrap();
    let u0 = init.u.clone().require_grad();
    let s = diffsim::fluid::FluidState {
        u: u0.clone(),
        ..init
    };
    let s = sim.step(s).unwrap().0;
    // An evaluation rollout from a detached state stays untracked...
    let mut e = s.clone().detach();
    for _ in 0..20 {
        e = sim.step(e).unwrap().0;
    }
    assert!(!e.u.is_require_grad() && !e.v.is_require_grad());
    // ...and the tracked branch still differentiates.
    let grads = kinetic_loss(&s).backward();
    assert!(u0.grad(&grads).is_some());
}

#[test]
fn segment_checkpointing_gives_the_taped_gradient() {
    let _g = lock();
    let sim = small_wake(&Device::flex().autodiff());
    let init = sim.initial_state(1).unwrap();
    let tape = kinetic_gradient(&sim, &init, 16, Checkpointing::Tape, Reads::All);
    let (tu, tv) = (values(&tape.u), values(&tape.v));
    let scale = tu.iter().chain(&tv).fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(scale > 0.0);
    for k in [1, 4, 5, 16, 40] {
        let seg = kinetic_gradient(&sim, &init, 16, Checkpointing::Segments(k), Reads::All);
        assert_eq!(seg.loss, tape.loss, "segments of {k}");
        for (a, b) in values(&seg.u)
            .iter()
            .chain(&values(&seg.v))
            .zip(tu.iter().chain(&tv))
        {
            assert!(
                (a - b).abs() <= 1e-13 * scale,
                "segments of {k}: {a} vs {b}"
            );
        }
    }
    assert!(
        unrolled_gradient(
            &sim,
            &init,
            16,
            Checkpointing::Segments(0),
            Reads::All,
            &kinetic_loss
        )
        .is_err()
    );
}

#[test]
fn a_velocity_loss_skips_the_passive_marker_and_keeps_the_gradient() {
    let _g = lock();
    let sim = small_wake(&Device::flex().autodiff());
    let init = sim.initial_state(1).unwrap();
    let all = kinetic_gradient(&sim, &init, 8, Checkpointing::Tape, Reads::All);
    let (au, av) = (values(&all.u), values(&all.v));
    for mode in [Checkpointing::Tape, Checkpointing::Segments(3)] {
        let vel = kinetic_gradient(&sim, &init, 8, mode, Reads::Velocity);
        assert_eq!(vel.loss, all.loss, "{mode:?}");
        assert_eq!(values(&vel.u), au, "{mode:?}");
        assert_eq!(values(&vel.v), av, "{mode:?}");
        assert!(values(&vel.marker).iter().all(|g| *g == 0.0));
    }
    // A loss that reads the skipped marker gets NaN, not a stale marker.
    let marker_loss = |s: &diffsim::fluid::FluidState| s.marker.clone().sum();
    let g = unrolled_gradient(
        &sim,
        &init,
        2,
        Checkpointing::Tape,
        Reads::Velocity,
        &marker_loss,
    )
    .unwrap();
    assert!(g.loss.is_nan());
    // A buoyant marker drives the velocity: it cannot be skipped.
    let mut scene = SceneConfig::smoke();
    scene.resolution = Resolution::new(16, 16);
    let smoke = Simulation::new(&scene, &Device::flex()).unwrap();
    let s = smoke.initial_state(1).unwrap();
    assert!(!smoke.marker_is_passive());
    assert!(smoke.step_velocity(s.clone()).is_err());
    let smoke = Simulation::new(&scene, &Device::flex().autodiff()).unwrap();
    let g = kinetic_gradient(
        &smoke,
        &smoke.initial_state(1).unwrap(),
        2,
        Checkpointing::Tape,
        Reads::Velocity,
    );
    assert!(g.loss.is_finite() && values(&g.marker).iter().any(|x| *x != 0.0));
}

#[test]
fn cg_adjoint_solves_use_their_own_config_and_fail_loudly() {
    use diffsim::linalg::SolveMethod;
    let _g = lock();
    let dev = Device::flex().autodiff();
    let cholesky = small_wake(&dev);
    let init = cholesky.initial_state(1).unwrap();
    let exact = kinetic_gradient(&cholesky, &init, 4, Checkpointing::Tape, Reads::All);
    let cg = |adjoint: SolveConfig| {
        let mut scene = cholesky.scene.clone();
        scene.solve = SolveConfig {
            method: SolveMethod::JacobiCg,
            rel_tol: 1e-12,
            abs_tol: 1e-14,
            ..SolveConfig::default()
        };
        scene.adjoint_solve = Some(adjoint);
        Simulation::new(&scene, &dev).unwrap()
    };
    // Its own tolerance: the adjoint CG solver does the backward solves, 4 of them.
    let sim = cg(SolveConfig {
        method: SolveMethod::Cg,
        rel_tol: 1e-12,
        abs_tol: 1e-14,
        ..SolveConfig::default()
    });
    let (fwd, adj) = (
        sim.projection.solver.solve_calls(),
        sim.projection.adjoint_solver().solve_calls(),
    );
    let g = kinetic_gradient(&sim, &init, 4, Checkpointing::Tape, Reads::All);
    assert_eq!(sim.projection.adjoint_solver().solve_calls() - adj, 4);
    assert_eq!(sim.projection.solver.solve_calls() - fwd, 4);
    let (a, b) = (values(&g.u), values(&exact.u));
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1e-8 * scale));
    // An adjoint solve that cannot converge: NaN gradients and the failure on record.
    let sim = cg(SolveConfig {
        method: SolveMethod::Cg,
        max_iters: 1,
        rel_tol: 1e-14,
        abs_tol: 0.0,
        ..SolveConfig::default()
    });
    let g = kinetic_gradient(&sim, &init, 2, Checkpointing::Tape, Reads::All);
    assert!(values(&g.u).iter().all(|x| x.is_nan()));
    assert!(matches!(
        sim.projection.adjoint_solver().take_last(),
        Some(Err(_))
    ));
}
