//! Grid ops: fused CPU kernels vs the portable default bodies (run on Flex), projection
//! divergence at round-off, Cholesky vs CG, implicit diffusion, factor-once.

use burn::backend::{Flex, TensorMetadata};
use diffsim::fluid::{SceneConfig, Simulation};
use diffsim::grid::{ArraySpec, Geometry, Grid, Location, Resolution, SolidMask};
use diffsim::linalg::{SolveConfig, SolveMethod, factorization_count};
use diffsim::ops::{
    AdvectionOps, DiffusionOps, ImplicitDiffusion, PressureProjection, ProjectionOps, reference,
};
use std::sync::Arc;

mod common;
use common::{
    AdvectionCase, advection_cases, boundary_sets, field, flex, make_periodic_consistent, max_diff,
    projection_vs_kernel, to_vec,
};

#[test]
fn advection_kernel_matches_default_body() {
    let b = 2;
    for AdvectionCase { bcs, spec, q, u, v } in advection_cases(b) {
        let dims = |s: &ArraySpec| [b, s.ny, s.nx];
        let (sq, su, sv) = (spec.q, spec.u, spec.v);
        let k = <Flex as AdvectionOps>::advect(
            flex(q.clone(), dims(&sq)),
            flex(u.clone(), dims(&su)),
            flex(v.clone(), dims(&sv)),
            spec,
        );
        let r = reference::advect::<Flex>(
            flex(q, dims(&sq)),
            flex(u, dims(&su)),
            flex(v, dims(&sv)),
            &spec,
        );
        assert_eq!(k.shape().to_vec(), vec![b, sq.ny, sq.nx]);
        let err = max_diff(&to_vec(k), &to_vec(r));
        assert!(
            err < 1e-12,
            "{bcs:?} {:?} {sq:?}: kernel vs default body differ by {err:e}",
            spec.scheme
        );
    }
}

#[test]
fn explicit_diffusion_kernel_matches_default_body() {
    let grid = Grid::new(Resolution::new(10, 7), [10.0, 7.0]).unwrap();
    for bcs in boundary_sets() {
        let (su, sv) = bcs.velocity_specs(&grid);
        for s in [su, sv] {
            let mut q = field(3 * s.len(), 0.4, 2.0);
            make_periodic_consistent(&mut q, &s);
            let k =
                <Flex as DiffusionOps>::diffuse_explicit(flex(q.clone(), [3, s.ny, s.nx]), s, 0.2);
            let r = reference::diffuse_explicit::<Flex>(flex(q, [3, s.ny, s.nx]), &s, 0.2);
            let err = max_diff(&to_vec(k), &to_vec(r));
            assert!(err < 1e-13, "{bcs:?}: {err:e}");
        }
    }
}

fn disc_solid(grid: Grid) -> SolidMask {
    SolidMask::new(
        grid,
        &[Geometry::Disc {
            center: [12.5, 15.0],
            radius: 5.5,
        }],
    )
    .unwrap()
}

#[test]
fn projection_is_divergence_free_and_matches_default_body() {
    let grid = Grid::new(Resolution::new(12, 16), [30.0, 40.0]).unwrap();
    let b = 3;
    for bcs in boundary_sets() {
        for solid in [SolidMask::new(grid, &[]).unwrap(), disc_solid(grid)] {
            let direct =
                Arc::new(PressureProjection::new(&bcs, &solid, SolveConfig::default()).unwrap());
            let cg_cfg = SolveConfig {
                method: SolveMethod::Cg,
                rel_tol: 0.0,
                abs_tol: 1e-11,
                ..SolveConfig::default()
            };
            let iterative = Arc::new(PressureProjection::new(&bcs, &solid, cg_cfg).unwrap());
            let u = field(b * grid.ny * (grid.nx + 1), 0.3, 1.0);
            let v = field(b * (grid.ny + 1) * grid.nx, 1.3, 1.0);
            let (du, dv) = ([b, grid.ny, grid.nx + 1], [b, grid.ny + 1, grid.nx]);
            let (ku, kv, kp) = <Flex as ProjectionOps>::project(
                flex(u.clone(), du),
                flex(v.clone(), dv),
                direct.clone(),
            );
            direct.take_outcome().unwrap().unwrap();
            // Divergence at round-off in every fluid cell.
            let div = to_vec(<Flex as ProjectionOps>::divergence(
                ku.clone(),
                kv.clone(),
                grid.dx,
            ));
            let max_div = div
                .iter()
                .enumerate()
                .filter(|(k, _)| !solid.solid[k % grid.cells()])
                .map(|(_, d)| d.abs())
                .fold(0.0, f64::max);
            assert!(
                max_div < 1e-12,
                "{bcs:?} obstacles {}: max |div| = {max_div:e}",
                solid.count()
            );
            // The kernel with CG and the default body (tensor-op CG) agree with Cholesky.
            let (cu, cv, _) = <Flex as ProjectionOps>::project(
                flex(u.clone(), du),
                flex(v.clone(), dv),
                iterative.clone(),
            );
            let info = iterative.take_outcome().unwrap().unwrap();
            assert!(info.iterations > 0);
            let (ru, rv, rp) =
                reference::project::<Flex>(flex(u.clone(), du), flex(v.clone(), dv), &iterative);
            iterative.take_outcome().unwrap().unwrap();
            let (ku, kv, kp) = (to_vec(ku), to_vec(kv), to_vec(kp));
            for (name, a, c) in [
                ("u cg", &ku, to_vec(cu)),
                ("v cg", &kv, to_vec(cv)),
                ("u ref", &ku, to_vec(ru)),
                ("v ref", &kv, to_vec(rv)),
            ] {
                let err = max_diff(a, &c);
                assert!(
                    err < 1e-9,
                    "{bcs:?}: {name} differs from Cholesky by {err:e}"
                );
            }
            let errp = max_diff(&kp, &to_vec(rp));
            assert!(errp < 1e-8, "{bcs:?}: pressure differs by {errp:e}");
        }
    }
}

#[test]
fn implicit_diffusion_solves_its_system_and_matches_default_body() {
    let grid = Grid::new(Resolution::new(9, 8), [9.0, 8.0]).unwrap();
    for bcs in boundary_sets() {
        let (su, sv) = bcs.velocity_specs(&grid);
        for s in [su, sv] {
            let alpha = 0.8;
            let op = Arc::new(ImplicitDiffusion::new(s, alpha, SolveConfig::default()).unwrap());
            let mut q = field(2 * s.len(), 0.9, 1.0);
            make_periodic_consistent(&mut q, &s);
            let out = to_vec(<Flex as DiffusionOps>::diffuse_implicit(
                flex(q.clone(), [2, s.ny, s.nx]),
                op.clone(),
            ));
            // Residual of (I − α Lap) out = q, with the array's own extrapolation.
            let lap = to_vec(<Flex as DiffusionOps>::diffuse_explicit(
                flex(out.clone(), [2, s.ny, s.nx]),
                s,
                1.0,
            ));
            let res = out
                .iter()
                .zip(&lap)
                .zip(&q)
                .map(|((o, l), q)| (o - alpha * (l - o) - q).abs())
                .fold(0.0, f64::max);
            assert!(res < 1e-11, "{bcs:?} {s:?}: residual {res:e}");
            let cg = Arc::new(ImplicitDiffusion::new(s, alpha, SolveConfig::cg(1e-12)).unwrap());
            let r = to_vec(reference::diffuse_implicit::<Flex>(
                flex(q.clone(), [2, s.ny, s.nx]),
                &cg,
            ));
            cg.solver.take_last().unwrap().unwrap();
            assert!(max_diff(&out, &r) < 1e-10);
            // The GPU backends' dense-inverse bodies, forward and adjoint, equal the kernels.
            let dense = op.dense().expect("a small system has a dense inverse");
            let d = to_vec(reference::diffuse_implicit_dense::<Flex>(
                flex(q, [2, s.ny, s.nx]),
                &op,
                dense,
            ));
            assert!(max_diff(&out, &d) < 1e-11, "{bcs:?} {s:?}: dense forward");
            let g = field(2 * s.len(), 0.2, 1.0);
            let kg = to_vec(<Flex as DiffusionOps>::diffuse_implicit_backward(
                flex(g.clone(), [2, s.ny, s.nx]),
                op.clone(),
            ));
            let dg = to_vec(reference::diffuse_implicit_dense_adjoint::<Flex>(
                flex(g, [2, s.ny, s.nx]),
                &op,
                dense,
            ));
            assert!(max_diff(&kg, &dg) < 1e-11, "{bcs:?} {s:?}: dense adjoint");
        }
    }
}

#[test]
fn cholesky_is_factorised_once_and_reused_for_every_step_and_batch_item() {
    let dev = burn::tensor::Device::flex();
    let mut scene = SceneConfig::wake();
    scene.resolution = Resolution::new(32, 64);
    let before = factorization_count();
    let sim = Simulation::new(&scene, &dev).unwrap();
    let solver = &sim.projection.solver;
    assert_eq!(
        solver.factorizations(),
        0,
        "factorised before the first solve"
    );
    let mut s = sim.initial_state(4).unwrap();
    assert!(factorization_count() > before, "the first solve factorises");
    for _ in 0..5 {
        s = sim.step(s).unwrap().0;
    }
    assert_eq!(solver.factorizations(), 1);
    assert_eq!(
        solver.solve_calls(),
        6,
        "one multi-RHS solve per projection for all 4 items"
    );
    let div = sim.max_divergence(&s);
    assert!(div < 1e-5, "f32 wake: max |div| {div}");
}

/// The GPU backends' projection (the solve as one product with the dense inverse, written in
/// tensor ops here) equals the Flex kernel's, forward and adjoint, on every boundary set with
/// and without an obstacle (floating regions included).
#[test]
fn dense_inverse_projection_matches_the_kernel_forward_and_adjoint() {
    let grid = Grid::new(Resolution::new(12, 16), [30.0, 40.0]).unwrap();
    for bcs in boundary_sets() {
        for solid in [SolidMask::new(grid, &[]).unwrap(), disc_solid(grid)] {
            let proj =
                Arc::new(PressureProjection::new(&bcs, &solid, SolveConfig::default()).unwrap());
            let dense = proj.dense().expect("a small grid has a dense inverse");
            assert!(
                dense.residual < 1e-11,
                "{bcs:?}: residual {}",
                dense.residual
            );
            let errs = projection_vs_kernel(
                &proj,
                |u, v| reference::project_dense::<Flex>(u, v, &proj),
                |gu, gv, gp| reference::project_dense_adjoint::<Flex>(gu, gv, gp, &proj),
            );
            for (name, err) in errs {
                assert!(
                    err < 1e-9,
                    "{bcs:?} obstacles {}: {name} differs by {err:e}",
                    solid.count()
                );
            }
        }
    }
}

#[test]
fn gradient_matches_default_body_and_the_projection_update() {
    let grid = Grid::new(Resolution::new(11, 7), [22.0, 14.0]).unwrap();
    let b = 2;
    for bcs in boundary_sets() {
        let sp = ArraySpec::new(&grid, Location::Center, bcs.pressure_extrap());
        let p = field(b * grid.cells(), 0.2, 3.0);
        let (ku, kv) =
            <Flex as ProjectionOps>::gradient(flex(p.clone(), [b, grid.ny, grid.nx]), sp, grid.dx);
        let (ru, rv) = reference::gradient::<Flex>(flex(p, [b, grid.ny, grid.nx]), &sp, grid.dx);
        let (ku, kv) = (to_vec(ku), to_vec(kv));
        assert!(
            max_diff(&ku, &to_vec(ru)) < 1e-13 && max_diff(&kv, &to_vec(rv)) < 1e-13,
            "{bcs:?}"
        );
        // The projection subtracts exactly this gradient of its pressure on open faces.
        let solid = SolidMask::new(grid, &[]).unwrap();
        let proj = Arc::new(PressureProjection::new(&bcs, &solid, SolveConfig::default()).unwrap());
        let u = field(grid.ny * (grid.nx + 1), 0.5, 1.0);
        let v = field((grid.ny + 1) * grid.nx, 0.6, 1.0);
        let (pu, pv, pp) = <Flex as ProjectionOps>::project(
            flex(u.clone(), [1, grid.ny, grid.nx + 1]),
            flex(v.clone(), [1, grid.ny + 1, grid.nx]),
            proj.clone(),
        );
        let (gu, gv) = <Flex as ProjectionOps>::gradient(pp, sp, grid.dx);
        let (cu, cv) = {
            let mut cu = u.clone();
            let mut cv = v.clone();
            diffsim::ops::kernels::constrain_faces(&proj.system, &mut cu, &mut cv);
            (cu, cv)
        };
        let check = |name: &str,
                     rules: &[diffsim::linalg::poisson::FaceRule],
                     out: Vec<f64>,
                     inp: &[f64],
                     g: Vec<f64>| {
            for (k, rule) in rules.iter().enumerate() {
                if *rule == diffsim::linalg::poisson::FaceRule::Open {
                    assert!(
                        (out[k] - (inp[k] - g[k])).abs() < 1e-12,
                        "{bcs:?} {name} face {k}"
                    );
                }
            }
        };
        check("u", &proj.system.u_faces, to_vec(pu), &cu, to_vec(gu));
        check("v", &proj.system.v_faces, to_vec(pv), &cv, to_vec(gv));
    }
}
