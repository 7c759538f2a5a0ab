//! `solids::implicit::step`: Newton's solve of a step (convergence on hard contact, the PSD
//! fallback) and the schemes' dynamics.

use crate::common::*;

/// One particle (m = 1) on an undamped spring (ke = 900, ω = 30 rad/s) to a fixed point,
/// stretched by 0.1 along the spring, stepped at ω·dt = 1.5 for 100 steps (~24 periods):
/// implicit midpoint keeps the oscillation's energy, backward Euler loses nearly all of it
/// (its factor per step is 1/(1 + ω²dt²) = 0.31), and the midpoint's amplitude matches the
/// exact discrete solution (a rotation by 2·atan(ω·dt/2) per step).
#[test]
fn midpoint_keeps_a_stiff_oscillation_that_backward_euler_damps() {
    let (ke, rest, dt, steps) = (900.0, 1.0, 0.05, 100);
    let m = Model {
        mass: vec![1.0, 0.0],
        springs: vec![diffsim::solids::Spring {
            i: 0,
            j: 1,
            ke,
            kd: 0.0,
            rest,
        }],
        gravity: [0.0; 3],
        ..Model::default()
    };
    let (x0, v0) = (vec![[1.1, 0.0, 0.0], [0.0; 3]], vec![[0.0; 3]; 2]);
    let energy = |s: &(Vec<V3>, Vec<V3>)| {
        0.5 * s.1[0][0].powi(2) + 0.5 * ke * (s.0[0][0] - rest).powi(2) + 0.5 * s.1[0][1].powi(2)
    };
    let e0 = energy(&(x0.clone(), v0.clone()));
    let run = |scheme| stepper(&m, dt, scheme).rollout(&x0, &v0, steps).unwrap();
    let (mid, be) = (run(Scheme::Midpoint), run(Scheme::BackwardEuler));
    let e_mid = energy(mid.run.last());
    let e_be = energy(be.run.last());
    assert!((e_mid - e0).abs() <= 1e-9 * e0, "midpoint: {e_mid} vs {e0}");
    assert!(e_be < 1e-6 * e0, "backward Euler kept {e_be} of {e0}");
    // x − rest = 0.1·cos(n·θ) with tan(θ/2) = ω·dt/2.
    let theta = 2.0 * (30.0 * dt / 2.0f64).atan();
    let exact = rest + 0.1 * (steps as f64 * theta).cos();
    let got = mid.run.last().0[0][0];
    assert!((got - exact).abs() < 1e-9, "{got} vs {exact}");
}

/// A free tetrahedron released nearly flat (one node 5% of its height above the opposite
/// face) with a step long enough that the exact Newton matrix `M/h² + H` is indefinite at the
/// start: Newton falls back to the projected element Hessian and restores the rest shape.
#[test]
fn newton_recovers_a_squashed_tetrahedron_through_the_projected_hessian() {
    use diffsim::solids::fem::Tet;
    let rest: Vec<V3> = vec![
        [0.0, 0.0, 0.0],
        [0.1, 0.0, 0.0],
        [0.0, 0.1, 0.0],
        [0.0, 0.0, 0.1],
    ];
    let tet = Tet::new([0, 1, 2, 3], &rest, 1e4, 4e4).unwrap();
    let (mass, h) = (0.01, 0.05);
    let model = Model {
        mass: vec![mass; 4],
        gravity: [0.0; 3],
        tets: vec![tet],
        ..Model::default()
    };
    let mut x0 = rest.clone();
    x0[3] = [0.01, 0.01, 0.005];
    let smallest = eigenvalues(&dense_tet_hessian(&tet.hessian_blocks(&x0, false)))[0];
    assert!(
        smallest + mass / (h * h) < 0.0,
        "M/h² + H is not indefinite: {smallest}"
    );
    let stepper = Implicit::new(&model, h, NewtonConfig::default()).unwrap();
    let run = stepper.rollout(&x0, &[[0.0; 3]; 4], 40).unwrap();
    let (mean, max) = run.newton_stats();
    let volume = |x: &[V3]| {
        let e: Vec<V3> = (1..4)
            .map(|k| std::array::from_fn(|a| x[k][a] - x[0][a]))
            .collect();
        (e[0][0] * (e[1][1] * e[2][2] - e[1][2] * e[2][1])
            - e[0][1] * (e[1][0] * e[2][2] - e[1][2] * e[2][0])
            + e[0][2] * (e[1][0] * e[2][1] - e[1][1] * e[2][0]))
            / 6.0
    };
    let end = volume(&run.run.states.last().unwrap().0);
    assert!(
        (end / tet.volume - 1.0).abs() < 0.05,
        "volume {end:e} vs rest {:e} (Newton mean {mean}, max {max})",
        tet.volume
    );
}

#[test]
fn implicit_friction_stops_a_sliding_particle_where_coulomb_says() {
    // Coulomb: deceleration a = μg while sliding. Backward Euler takes v_k = v₀ − k·h·a, so it
    // stops after h·Σ v_k (→ |v₀|²/(2a) = 0.2551 m as h → 0, 0.2421 m at h = 1/60).
    let (m, x0, v0) = sliding_particle();
    let speed = v0[0][0].hypot(v0[0][2]);
    let decel = m.contact.mu * -m.gravity[1];
    for dt in [1.0 / 60.0, 1.0 / 240.0] {
        let want: f64 = (1..)
            .map(|k| speed - k as f64 * dt * decel)
            .take_while(|v| *v > 0.0)
            .sum::<f64>()
            * dt;
        let sim = Implicit::new(&m, dt, NewtonConfig::default()).unwrap();
        let r = sim.rollout(&x0, &v0, (0.6 / dt) as usize).unwrap();
        let (x, v) = r.run.last();
        let (dist, end) = (x[0][0].hypot(x[0][2]), v[0][0].hypot(v[0][2]));
        let newton = r.newton_stats();
        println!(
            "dt {dt:.4}: slid {dist:.4} m (Coulomb {want:.4}), end speed {end:.1e}, Newton {newton:?}"
        );
        assert!(end < 1e-6, "still sliding at {end}");
        assert!((dist - want).abs() <= 2e-3 * want, "slid {dist} vs {want}");
        // Straight along the throw, on the ground.
        assert!((x[0][2] / x[0][0] - v0[0][2] / v0[0][0]).abs() < 1e-9);
        assert!((x[0][1] - x0[0][1]).abs() < 1e-6);
    }
}

/// Newton converges on every step of the cube sliding onto rough ground at 5 m/s (with the
/// old line search, which accepted any step that lowered |∇Φ| even where Φ rose, step 5
/// cycled between two points for 50 iterations).
#[test]
fn newton_converges_when_a_fast_cube_lands_on_rough_ground() {
    let (m, x0, v0) = cube_on_rough_ground();
    for dt in [1.0 / 120.0, 1.0 / 240.0] {
        let sim = Implicit::new(&m, dt, NewtonConfig::default()).unwrap();
        let r = sim.rollout(&x0, &v0, (0.2 / dt) as usize).unwrap();
        assert!(landed(&r));
        let (mean, max) = r.newton_stats();
        assert!(mean < 6.0 && max <= 20, "Newton iterations {mean} / {max}");
    }
}
