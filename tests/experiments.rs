//! Every experiment at toy size, through the same code path as the full run.

use diffsim::experiments::smoke_target::{self, SmokeTargetConfig};
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
        "results.json",
        "results.md",
        "config.toml",
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

#[test]
fn spring_cage_reproduces_warp_and_converges_in_four_lbfgs_iterations() {
    use diffsim::experiments::spring_cage::{SpringCageConfig, run};
    let r = run(&SpringCageConfig::default()).unwrap();
    let e = &r.explicit.trace.losses;
    // The Warp step and schedule: 0.21875 → 0.0997 / 1.13e-2 / 3.5e-4 after 1 / 4 / 9 steps.
    assert!((e[0] - 0.21875).abs() < 1e-12);
    for (k, want) in [(1, 0.0997), (4, 1.13e-2), (9, 3.5e-4)] {
        assert!((e[k] / want - 1.0).abs() < 0.01, "GD step {k}: {}", e[k]);
    }
    assert!(r.warp_criteria_met);
    assert!(r.explicit.gradient_fd_error <= 1e-6 && r.implicit.gradient_fd_error <= 1e-6);
    let it = r.lbfgs_iterations_to_1e6.expect("L-BFGS reaches 1e-6");
    assert!(it <= 4, "L-BFGS needed {it} iterations");
    // Box-constrained L-BFGS (rest lengths within ±40%): the target is still reached, with a
    // bound active, and every iterate feasible.
    let b = &r.bounded.trace;
    assert!(
        b.losses.iter().position(|l| *l < 1e-6).unwrap() <= 6,
        "{:?}",
        b.losses
    );
    let (_, x0, _) = diffsim::solids::scenes::spring_cage();
    let rest0: Vec<f64> = x0[1..]
        .iter()
        .map(|p| p.iter().map(|c| c * c).sum::<f64>().sqrt())
        .collect();
    let feasible_with_an_active_bound = |params: &[f64]| {
        let ratio: Vec<f64> = params.iter().zip(&rest0).map(|(p, r)| p / r).collect();
        assert!(
            ratio
                .iter()
                .all(|q| (0.6 - 1e-12..=1.4 + 1e-12).contains(q)),
            "{ratio:?}"
        );
        assert!(
            ratio
                .iter()
                .any(|q| (q - 0.6).abs() < 1e-9 || (q - 1.4).abs() < 1e-9),
            "{ratio:?}"
        );
    };
    feasible_with_an_active_bound(&b.params);
    let (mean, max) = r.implicit.newton_iterations.unwrap();
    assert!(mean >= 1.0 && max <= 8, "Newton iterations {mean} / {max}");
    // Gauss-Newton, dense (Jacobian by adjoint sweeps) and sparse (its KKT system eliminated in
    // time order): the same
    // steps up to the conditioning of the damped normal equations (8 parameters, 3
    // residuals, μ = 1e-12), below 1e-6 within 3 iterations.
    let (gn, sgn) = (
        &r.gauss_newton.trace.losses,
        &r.sparse_gauss_newton.trace.losses,
    );
    assert!(r.gn_iterations_to_1e6.unwrap() <= 3 && r.sgn_iterations_to_1e6.unwrap() <= 3);
    assert!(
        (gn[1] - sgn[1]).abs() <= 1e-3 * gn[1],
        "dense {gn:?} vs sparse {sgn:?}"
    );
    // Projected sparse Gauss-Newton in the same box: the unbounded minimum-norm solution
    // leaves it (one rest length at −44%), the bounded one ends on that bound, within 3
    // iterations.
    let bgn = &r.bounded_gauss_newton.trace;
    assert!(
        bgn.losses.iter().position(|l| *l < 1e-6).unwrap() <= 3,
        "{:?}",
        bgn.losses
    );
    feasible_with_an_active_bound(&bgn.params);
    assert!(r.bounded_gn_at_bounds >= 1);
    assert!(
        r.sparse_gauss_newton
            .trace
            .params
            .iter()
            .zip(&rest0)
            .any(|(p, r)| p / r < 0.6),
        "the unbounded solution stays inside the box: the bounds test nothing"
    );
}

#[test]
fn bounce_descends_and_its_gradient_stays_finite_as_contact_stiffens() {
    use diffsim::experiments::bounce::{BounceConfig, run};
    let r = run(&BounceConfig::default()).unwrap();
    assert!(r.gradient_fd_error <= 1e-5);
    let l = &r.trace.losses;
    assert!(
        *l.last().unwrap() < 0.05 * l[0],
        "{} -> {}",
        l[0],
        l.last().unwrap()
    );
    assert!(r.decreasing_by_1e3 as f64 >= 0.9 * (l.len() - 2) as f64);
    // Adam on the same gradients: 10.45 -> 0.376 (its best 0.18) at lr 0.05.
    let a = &r.adam_trace.losses;
    assert!(a.len() == l.len() && a[0] == l[0]);
    assert!(
        *a.last().unwrap() < 0.1 * a[0],
        "Adam: {} -> {}",
        a[0],
        a.last().unwrap()
    );
    // From ke ≈ 300 on: finite, one sign, converging.
    let stiff: Vec<_> = r
        .gradient_vs_stiffness
        .iter()
        .filter(|s| s.0 >= 300.0)
        .collect();
    assert!(
        stiff
            .iter()
            .all(|s| s.1.is_finite() && s.2.is_finite() && s.1 < 0.0)
    );
    let (a, b) = (stiff[stiff.len() - 2].1, stiff[stiff.len() - 1].1);
    assert!((a - b).abs() < 0.05 * b.abs(), "{a} vs {b}");
    // Implicit Euler goes on to ke = 1e7 (the explicit step's limit is ~1e5 here): still
    // finite, one sign, and converging as the contact stiffens.
    let im = &r.implicit_gradient_vs_stiffness;
    assert!(im.last().unwrap().0 >= 1e7);
    let stiff: Vec<_> = im.iter().filter(|s| s.0 >= 562.0).collect();
    assert!(
        stiff
            .iter()
            .all(|s| s.1.is_finite() && s.2.is_finite() && s.1 < 0.0)
    );
    let (a, b) = (stiff[stiff.len() - 2].1, stiff[stiff.len() - 1].1);
    assert!((a - b).abs() < 0.01 * b.abs(), "{a} vs {b}");
}

#[test]
fn softbody_material_gradients_are_exact_and_bounded_lbfgs_beats_warp_sgd() {
    use diffsim::experiments::softbody_material::{SoftbodyConfig, run};
    // A quarter of the benchmark's horizon (0.25 s, the cube hits the wall) and short runs.
    let cfg = SoftbodyConfig {
        steps: 240,
        sgd_iterations: 5,
        lbfgs_iterations: 5,
        gn_iterations: 3,
        implicit_steps: 60,
        ..SoftbodyConfig::default()
    };
    let r = run(&cfg).unwrap();
    assert!(r.gradient_fd_error <= 1e-6, "{}", r.gradient_fd_error);
    assert!(
        r.implicit_gradient_fd_error <= 1e-5,
        "{}",
        r.implicit_gradient_fd_error
    );
    assert!(
        r.midpoint_gradient_fd_error <= 1e-5,
        "{}",
        r.midpoint_gradient_fd_error
    );
    for i in [&r.implicit_lbfgs, &r.midpoint_lbfgs] {
        let losses = &i.trace.losses;
        assert!(losses.windows(2).all(|w| w[1] <= w[0]) && losses[5] < losses[0]);
        let (mean, max) = i.newton_iterations.unwrap();
        assert!(mean >= 1.0 && max <= 20, "Newton {mean} / {max}");
    }
    // The midpoint rule keeps the bounce that backward Euler's damping absorbs: its start is
    // closer to the explicit run's.
    let start = |run: &diffsim::experiments::softbody_material::SoftbodyRun| run.trace.losses[0];
    assert!(
        (start(&r.midpoint_lbfgs) - start(&r.lbfgs)).abs()
            < (start(&r.implicit_lbfgs) - start(&r.lbfgs)).abs()
    );
    let (s, l) = (&r.sgd.trace, &r.lbfgs.trace);
    assert!(s.losses.iter().chain(&l.losses).all(|v| v.is_finite()));
    assert_eq!(l.losses.len(), 6);
    assert!(l.losses.windows(2).all(|w| w[1] <= w[0]), "{:?}", l.losses);
    assert!(
        l.losses[5] < s.losses[5],
        "L-BFGS {:?} vs SGD {:?}",
        l.losses,
        s.losses
    );
    // Gauss-Newton through the midpoint rule lowers the same loss at every iteration, faster
    // per iteration than L-BFGS.
    let gn = &r.midpoint_gauss_newton.trace.losses;
    assert_eq!(gn[0], start(&r.midpoint_lbfgs));
    assert!(
        gn.len() == 4 && gn.windows(2).all(|w| w[1] < w[0]),
        "{gn:?}"
    );
    assert!(
        gn[3] < r.midpoint_lbfgs.trace.losses[3],
        "GN {gn:?} vs L-BFGS {:?}",
        r.midpoint_lbfgs.trace.losses
    );
    // Sparse GN's Jacobian through the midpoint rule (materials, contact) is the adjoint's.
    assert!(
        r.midpoint_jacobian_difference < 1e-9,
        "{}",
        r.midpoint_jacobian_difference
    );
    // Every material stays inside Warp's clamp [500, 4e6].
    assert!(
        s.params
            .iter()
            .chain(&l.params)
            .chain(&r.midpoint_gauss_newton.trace.params)
            .all(|p| (500.0 * (1.0 - 1e-12)..=4e6 * (1.0 + 1e-12)).contains(p))
    );
}

#[test]
fn cloth_throw_gradients_are_exact_and_implicit_tracks_explicit_with_16x_fewer_steps() {
    use diffsim::experiments::cloth_throw::{ClothThrowConfig, run};
    let cfg = ClothThrowConfig::quick();
    let r = run(&cfg).unwrap();
    let implicit = r
        .implicit
        .as_ref()
        .expect("the implicit descent runs by default");
    for (name, run) in [("explicit", &r.explicit), ("implicit", implicit)] {
        assert!(
            run.gradient_fd_error <= 1e-6,
            "{name}: {}",
            run.gradient_fd_error
        );
        let l = &run.trace.losses;
        assert_eq!(l.len(), cfg.iterations + 1);
        assert!(l.windows(2).all(|w| w[1] < w[0]), "{name}: {l:?}");
    }
    assert_eq!(cfg.steps, 16 * cfg.implicit_steps);
    // Same physics at 16× the step: the losses agree to 1% over the descent.
    for (e, i) in r.explicit.trace.losses.iter().zip(&implicit.trace.losses) {
        assert!((e - i).abs() <= 0.01 * e, "explicit {e} vs implicit {i}");
    }
    let (mean, max) = implicit.newton_iterations.unwrap();
    assert!(mean >= 1.0 && max <= 10, "Newton {mean} / {max}");
    // The implicit descent, continued from its last iterate, reaches the explicit final loss.
    let c = &r.implicit_continued_losses;
    assert_eq!(c.len(), cfg.extra_implicit_iterations + 1);
    assert_eq!(c[0], *implicit.trace.losses.last().unwrap());
    assert!(c.windows(2).all(|w| w[1] < w[0]), "{c:?}");
    let k = r
        .implicit_iterations_to_explicit_loss
        .expect("reaches the explicit loss");
    let all: Vec<f64> = implicit
        .trace
        .losses
        .iter()
        .chain(&c[1..])
        .copied()
        .collect();
    let goal = *r.explicit.trace.losses.last().unwrap();
    assert!(
        all[k] <= goal && (k == 0 || all[k - 1] > goal),
        "{k}: {all:?} vs {goal}"
    );
    // Segment checkpointing: the taped gradient to round-off, in a fraction of the memory
    // (explicit: 241 states against 16 starts + 17; implicit: 16 states and 15 factors against
    // 4 starts + 5 states and 4 factors).
    assert_eq!(r.checkpointing.len(), 2);
    for c in &r.checkpointing {
        assert!(c.gradient_difference <= 1e-12, "{c:?}");
        assert!(3 * c.segment_bytes < c.tape_bytes, "{c:?}");
    }
    // A larger cloth without the implicit descent (what `cells = 64, implicit = false` runs).
    let big = ClothThrowConfig {
        cells: 24,
        iterations: 1,
        implicit: false,
        ..ClothThrowConfig::quick()
    };
    let r = run(&big).unwrap();
    assert!(r.implicit.is_none() && r.implicit_velocities_explicit_loss.is_none());
    assert_eq!(r.checkpointing.len(), 1);
    assert!(
        r.explicit.gradient_fd_error <= 1e-6,
        "{}",
        r.explicit.gradient_fd_error
    );
    assert_eq!(r.explicit.tape_bytes, (big.steps + 1) * 25 * 25 * 48);
}

struct Quiet;

impl diffsim::experiments::Progress for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn set(&self, _: u64) {}
}

#[test]
fn rigid_trajectory_reproduces_warps_adam_and_one_gauss_newton_step_solves_it() {
    use diffsim::experiments::rigid_trajectory::{RigidTrajectoryConfig, run};
    let cfg = RigidTrajectoryConfig {
        adam_iterations: 100,
        repeats: 1,
        ..RigidTrajectoryConfig::default()
    };
    let r = run(&cfg, &Quiet).unwrap();
    // Warp 1.9.1's example as shipped, f32 (loss before iterations 0, 1, 2, 9, 49, 99):
    // 198.0, 4.59e6, 3.0e5, 1.24e6, 2.44e4, 120.8.
    let l = &r.adam.losses;
    for (k, warp) in [
        (0, 198.0),
        (1, 4.59e6),
        (2, 3.0e5),
        (9, 1.24e6),
        (49, 2.44e4),
        (99, 120.8),
    ] {
        assert!(
            (l[k] / warp - 1.0).abs() < 0.01,
            "Adam loss before iteration {k}: {} vs Warp's {warp}",
            l[k]
        );
    }
    for s in &r.steps {
        // Linear least squares: one step to round-off (|r| ~ 1e-9 of the 200 residuals).
        assert!((s.gn_losses[0] - 198.0).abs() < 1e-9, "{s:?}");
        assert!(s.gn_losses[1] < 1e-14, "{s:?}");
        assert!(s.fd_error < 1e-8, "{s:?}");
    }
}

#[test]
fn sphere_pushing_gradients_match_differences_to_1e6_and_gauss_newton_hits_the_target() {
    use diffsim::experiments::sphere_pushing::{SpherePushingConfig, run};
    let cfg = SpherePushingConfig {
        semi_implicit_substeps: 10,
        repeats: 1,
        ..SpherePushingConfig::default()
    };
    let r = run(&cfg, &Quiet).unwrap();
    assert_eq!(r.checks.len(), 4);
    for c in &r.checks {
        // Warp asserts |AD − FD(0.2)| ≤ 0.2; here 1e-6 relative, and the right sign.
        assert!(c.rel_error < 1e-6, "{c:?}");
        assert!((c.adjoint > 0.0) == (c.action == 80.0), "{c:?}");
    }
    for n in &r.newton {
        let (a, loss) = *n.iterates.last().unwrap();
        assert!(loss < 1e-18 && n.iterates.len() <= 6, "{n:?}");
        assert!((40.0..50.0).contains(&a), "{n:?}");
    }
}

#[test]
fn billiards_adjoint_matches_differences_and_gauss_newton_sinks_the_last_ball() {
    use diffsim::experiments::Study;
    use diffsim::experiments::billiards::{Billiards, run};
    let cfg = Billiards::quick();
    let r = run(&cfg, &Quiet).unwrap();
    // The contact damping is set for restitution 0.8 of a linear spring-dashpot; the smooth
    // law's is within a few per cent of it.
    assert!((r.restitution - 0.8).abs() < 0.06, "{}", r.restitution);
    // DiffTaichi's loss at the start is 0.0454 (impulses, f32); the soft contact's is close.
    for c in &r.checks {
        assert!((c.loss - 0.0454).abs() < 0.005, "{c:?}");
        // Central differences with step 1e-5: 5.0e-8 (semi-implicit), 8.4e-6 (backward Euler).
        assert!(c.rel_error < 3e-5, "{c:?}");
    }
    let d = &r.descent.losses;
    assert!(d.windows(2).all(|w| w[1] < w[0]), "{d:?}");
    assert!(d[d.len() - 1] < 0.6 * d[0], "{d:?}");
    // Gauss-Newton reaches the floor (1.02e-5: the last ball's reachable line passes 3.2 mm
    // from the goal) in 5 iterations.
    let g = &r.gauss_newton.losses;
    assert!(g[g.len() - 1] < 1.1e-5, "{g:?}");
    // The gradient at the start moves by less than 5% of its size when the contact stiffens.
    let last = r.stiffening.last().unwrap();
    assert!(
        last.change.unwrap() < 0.05 * last.gradient[1].abs(),
        "{last:?}"
    );
}

#[test]
fn box_toss_recovers_the_corners_from_the_real_tosses() {
    use diffsim::experiments::Study;
    use diffsim::experiments::box_toss::{BoxToss, run};
    // Dojo's protocol (100 tosses, frame 50, 3 steps, 20 Gauss-Newton iterations from its
    // guess), without the slower every-frame refit.
    let cfg = diffsim::experiments::box_toss::BoxTossConfig {
        dense_stride: 0,
        ..BoxToss::full()
    };
    let r = run(&cfg, &Quiet).unwrap();
    assert_eq!((r.tosses, r.frames), (570, 59953));
    // The residual Jacobian from the contact-parameter adjoint (2.5e-9 measured).
    assert!(r.check.rel_error < 1e-6, "{:?}", r.check);
    let f = &r.fits[0];
    let l = &f.losses;
    assert!(l.windows(2).all(|w| w[1] <= w[0]), "{l:?}");
    assert!(l[l.len() - 1] < 1e-3 * l[0], "{l:?}");
    // Every corner within 5% of the nominal half edge (4.2% measured), μ within 20% (13%).
    assert!(f.corner_errors.iter().all(|e| *e < 0.05), "{f:?}");
    assert!(f.friction_error < 0.2, "{f:?}");
    // The fit predicts the 470 unseen tosses better than the nominal cube (0.86 vs 1.40 mm).
    let held = |p: &str| {
        r.scores
            .iter()
            .find(|s| s.parameters == p && s.windows.starts_with("held out"))
            .unwrap()
            .rms_position_mm
    };
    assert!(held("fit on Dojo's windows") < 0.8 * held("nominal"));
    assert!(held("nominal") < 2.0);
    // Continued through ke 3e4 and 1e5: μ 0.167 and 0.159 (nominal 0.16), corners within
    // 5.5% and 6.6% (the stiffer penalty floats the cube higher at the same smoothing).
    let stiff = &r.fits[2];
    assert_eq!(stiff.ke, 1e5);
    assert!(stiff.friction_error < 0.1, "{stiff:?}");
    assert!(stiff.corner_errors.iter().all(|e| *e < 0.1), "{stiff:?}");
}

/// dm_control's cartpole swung up from hanging by L-BFGS on the adjoint gradient through 300
/// steps, with both steppers: the gradient matches central differences, and the pole stays
/// within 5° of upright over the last 0.5 s (the acceptance), ending with the cart
/// within 1 cm of the centre and nearly at rest.
#[test]
fn cartpole_swingup_reaches_upright_with_both_steppers() {
    use diffsim::experiments::cartpole_swingup::{CartpoleSwingupConfig, run};
    let cfg = CartpoleSwingupConfig {
        repeats: 1,
        ..CartpoleSwingupConfig::default()
    };
    let r = run(&cfg, &Quiet).unwrap();
    assert_eq!(r.steps, 300);
    for s in &r.schemes {
        assert!(s.fd_error < 1e-6, "{:?}: FD {}", s.scheme, s.fd_error);
        assert!(
            s.hold_max_angle_deg < 5.0 && s.final_cart.abs() < 0.01,
            "{:?}: within {}° of upright over the hold, cart {} m",
            s.scheme,
            s.hold_max_angle_deg,
            s.final_cart
        );
        assert!(
            s.final_speeds.iter().all(|v| v.abs() < 0.05),
            "{:?}",
            s.final_speeds
        );
        assert!(s.max_ctrl <= 1.0);
    }
    for bad in [
        CartpoleSwingupConfig {
            duration: -1.0,
            ..cfg.clone()
        },
        CartpoleSwingupConfig {
            model: "data/robots/dm_control/acrobot.xml".into(),
            ..cfg.clone()
        },
    ] {
        use diffsim::experiments::{Study, cartpole_swingup::CartpoleSwingup};
        let err = CartpoleSwingup::validate(&bad).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
    }
}

/// Warp's IK example reproduced: gradient descent (rate 0.01) on diffsim's kinematics gives
/// Warp 1.9.1's losses (float32, `benches/warp/ik_chain.py`) and final angles; Levenberg–
/// Marquardt reaches 1e-12 within 10 iterations; within ±60° the folded target stays 0.5 m away.
#[test]
fn ik_chain_reproduces_warps_descent_and_solves_it_in_a_few_iterations() {
    use diffsim::experiments::ik_chain::{IkChainConfig, run};
    let r = run(&IkChainConfig::default(), &Quiet).unwrap();
    let gd = &r.solves[0];
    for (k, warp) in [
        (0, 2.0),
        (1, 1.4913296699523926),
        (10, 0.5604243874549866),
        (100, 0.3946950137615204),
        (200, 0.09503690898418427),
        (512, 6.506804311356973e-06),
    ] {
        // Warp runs in float32: at 6.5e-6 its loss carries ~1e-4 relative round-off.
        let l = gd.trace.losses[k];
        assert!(
            (l / warp - 1.0).abs() < 1e-3,
            "loss {k}: {l} vs Warp's {warp}"
        );
    }
    for (a, warp) in gd.angles_deg.iter().zip([
        -23.522016525268555,
        48.12466812133789,
        55.27050018310547,
        0.0,
    ]) {
        assert!((a - warp).abs() < 1e-3, "{a} vs {warp}");
    }
    let lm = &r.solves[1];
    assert!(lm.iterations_to_1e12.is_some_and(|k| k <= 10), "{lm:?}");
    let folded = &r.solves[3];
    assert!(folded.angles_deg.iter().all(|a| a.abs() <= 60.0 + 1e-9));
    let last = folded.trace.losses.last().unwrap();
    assert!((last - 0.25).abs() < 1e-9, "{last}");
}

/// R7: the pendulum's motion equals the scalar semi-implicit recursion of its closed-form
/// acceleration `q̈ = −g L cos q / (L² + 2r²/5)` and Tiny Differentiable Simulator's own
/// rollouts (`benches/tds/pendulum_sys_id.py`, pytinydiffsim 0.9.5); gradient descent with
/// Tiny's rate follows Tiny's losses and, like L-BFGS, recovers the length to round-off; noisy
/// fits scatter as the loss's curvature predicts.
#[test]
fn pendulum_id_recovers_the_length_and_its_noise_spread() {
    use diffsim::experiments::pendulum_id::{PendulumIdConfig, observe, run};
    let cfg = PendulumIdConfig {
        trials: 40,
        repeats: 1,
        ..PendulumIdConfig::default()
    };
    let tds: serde_json::Value =
        serde_json::from_str(include_str!("data/tds-pendulum.json")).unwrap();
    let numbers = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    for r in tds["rollouts"].as_array().unwrap() {
        let o = observe(&cfg, r["length"].as_f64().unwrap()).unwrap();
        for (ours, theirs) in [(&o.q, numbers(&r["q"])), (&o.v, numbers(&r["qd"]))] {
            let err = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-12, "length {}: {err}", r["length"]);
        }
    }
    let o = observe(&cfg, 1.2).unwrap();
    let (mut q, mut v) = (0.0f64, 0.0f64);
    let inertia = 1.2f64.powi(2) + 0.4 * cfg.radius * cfg.radius;
    for n in 0..cfg.steps {
        assert!(
            (o.q[n] - q).abs() < 1e-12 && (o.v[n] - v).abs() < 1e-12,
            "step {n}"
        );
        v -= cfg.timestep * cfg.gravity * 1.2 * q.cos() / inertia;
        q += cfg.timestep * v;
    }
    let r = run(&cfg, &Quiet).unwrap();
    assert!(r.fd_error < 1e-6, "adjoint vs FD {}", r.fd_error);
    for f in &r.fits {
        assert!(f.error.abs() < 1e-9, "{}: {}", f.method, f.error);
    }
    assert!(r.fits[1].trace.iterations <= 15);
    // Tiny's descent used central differences on its rollout: agreement to their error.
    let theirs = numbers(&tds["descent"]["losses"]);
    for (k, (a, b)) in r.fits[0]
        .trace
        .losses
        .iter()
        .zip(&theirs)
        .take(5)
        .enumerate()
    {
        assert!(
            (a - b).abs() <= 1e-8 * b.abs() + 1e-15,
            "iteration {k}: {a} vs {b}"
        );
    }
    let n = &r.noisy;
    let ratio = n.spread / n.predicted_error;
    // 40 trials: the sample deviation is within ±30% of the true one at ~3 standard errors.
    assert!(
        (0.7..1.3).contains(&ratio),
        "spread {} vs {}",
        n.spread,
        n.predicted_error
    );
    assert!(
        n.bias.abs() < 3.0 * n.predicted_error / 40f64.sqrt(),
        "bias {}",
        n.bias
    );
}

/// R10 at toy size (20 implicit steps of 50 ms, 140 torques): the adjoint matches central
/// differences; Levenberg–Marquardt brings the hand to within 1 mm of a target 0.235 m away
/// and the arm to rest, from the gravity-holding torques and from the inverse-dynamics warm
/// start, with every torque inside the Panda's effort limits.
#[test]
fn panda_reach_brings_the_hand_to_the_target_by_torques() {
    use diffsim::experiments::Study;
    use diffsim::experiments::panda_reach::{PandaReach, run};
    let r = run(&PandaReach::quick(), &Quiet).unwrap();
    assert!(r.fd_error < 1e-5, "adjoint vs FD {}", r.fd_error);
    for s in &r.solves[..2] {
        assert!(s.distance < 1e-3, "{}: {} m", s.method, s.distance);
        assert!(
            s.final_speed < 5e-3,
            "{}: {} rad/s",
            s.method,
            s.final_speed
        );
    }
    assert!(r.solves.iter().all(|s| s.peak_torque_ratio <= 1.0 + 1e-12));
}

/// Bad settings of the rigid studies end with one line naming the problem, exit 1 and no
/// output folder (the checks run before anything is written).
#[test]
fn rigid_studies_refuse_bad_settings_before_writing_anything() {
    for (study, setting, says) in [
        ("rigid-trajectory", "density = -1.0", "positive density"),
        ("rigid-trajectory", "radius = 0.0", "positive dimensions"),
        ("sphere-pushing", "ke = -1.0", "stiffness"),
        ("sphere-pushing", "smoothing = 0.0", "smoothing"),
        ("sphere-pushing", "actions = [nan, 40.0]", "finite action"),
        ("box-toss", "guess_friction = -0.5", "guess_friction"),
        ("billiards", "start = [0.1, 0.5, nan, 0.0]", "cue's start"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, setting).unwrap();
        let out_dir = dir.path().join("out");
        let out = Command::new(env!("CARGO_BIN_EXE_diffsim"))
            .args(["experiment", study, "--quick", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{study} {setting}: {err}");
        assert_eq!(err.lines().count(), 1, "{study} {setting}: {err}");
        assert!(err.contains(says), "{study} {setting}: {err}");
        assert!(!out_dir.exists(), "{study} {setting}: wrote {out_dir:?}");
    }
}
