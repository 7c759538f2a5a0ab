//! `diffsim gradcheck`: every differentiable op, and 16-step unrolls, against f64 central
//! finite differences (see [`crate::gradcheck`]).

use super::checker::{GradCheckConfig, GradCheckReport, check, field, weighted};
use crate::error::{DiffsimError, Result};
use crate::fluid::{FluidState, SceneConfig, Simulation};
use crate::grid::{
    ArraySpec, Boundaries, Extrap, Geometry, Grid, Location, Resolution, SideBc, SolidMask,
};
use crate::io::{phiflow_state, read_frame};
use crate::linalg::SolveConfig;
use crate::ops::{self, AdvectScheme, AdvectSpec, ImplicitDiffusion, PressureProjection};
use burn::tensor::{Device, Tensor};
use std::sync::Arc;

/// The checks, by name: single ops on small grids with obstacles, open, wall, periodic and
/// zero-gradient sides, 16-step unrolls of the fluid step, the Burgers line ops, a 32-step
/// DP-CFE unroll with its network, the flow-control ops (curl of a potential, frequency-weighted
/// and blurred density losses, the 2D U-Net, a 4-step staggered shape-transition
/// execution), and rollouts of the three rigid-body steps (also with
/// respect to the contact parameters, and with triangle meshes for the box and the ground),
/// of the rigid–soft coupled step (attachments; body–particle contact), and of both
/// joint-space steppers of articulations (joint forces; servos, motors and smooth limits; ground contact with friction; a Hill-type
/// muscle with its activation dynamics; with respect to links' masses and centres of mass).
pub const CHECKS: [&str; 58] = [
    "advect-sl-center",
    "advect-sl-face-x",
    "advect-sl-face-y",
    "advect-sl-periodic",
    "advect-maccormack",
    "diffuse-explicit",
    "diffuse-implicit",
    "divergence",
    "gradient",
    "project-obstacle-open",
    "project-periodic-walls",
    "unroll16-wake-phiflow",
    "unroll16-wake",
    "unroll16-control-force",
    "unroll16-checkpointed",
    "conv-same",
    "conv-same-act",
    "conv-same-add-act",
    "conv-edge-add-act",
    "advect-line",
    "burgers-step-paper",
    "burgers-step-notebook",
    "unet1d-cfe",
    "unet1d-op-two-chunks",
    "unroll32-burgers-dp-cfe",
    "staggered-curl",
    "spectral-target-loss",
    "blurred-l2",
    "unet2d-op",
    "unroll4-shape-staggered",
    "unroll8-indirect",
    "rigid-semi-implicit-contact",
    "rigid-semi-implicit-bodies",
    "rigid-euler-free",
    "rigid-euler-contact",
    "rigid-euler-bodies",
    "rigid-semi-implicit-parameters",
    "rigid-euler-parameters",
    "rigid-semi-implicit-mesh",
    "rigid-euler-mesh",
    "rigid-midpoint",
    "rigid-semi-implicit-capsules",
    "rigid-euler-capsules",
    "rigid-coupled-attachments",
    "rigid-coupled-contact",
    "rigid-coupled-semi-implicit-attachments",
    "rigid-coupled-semi-implicit-contact",
    "articulation-semi-implicit",
    "articulation-implicit-euler",
    "articulation-drives-semi-implicit",
    "articulation-drives-implicit-euler",
    "articulation-contact-semi-implicit",
    "articulation-contact-implicit-euler",
    "articulation-carried-semi-implicit",
    "articulation-carried-implicit-euler",
    "articulation-muscle",
    "articulation-params-semi-implicit",
    "articulation-params-implicit-euler",
];

/// Runs the named checks (all when `names` is empty).
pub fn run_gradchecks(names: &[String], cfg: &GradCheckConfig) -> Result<Vec<GradCheckReport>> {
    let names: Vec<&str> = if names.is_empty() {
        CHECKS.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    names.into_iter().map(|n| run_one(n, cfg)).collect()
}

/// A small grid with a disc, wall x sides and open y ends (the wake-phiflow layout), or a
/// periodic-x / zero-gradient-y box.
fn layout(kind: &str) -> (Grid, Boundaries, Vec<Geometry>) {
    let grid = Grid::new(Resolution::new(10, 12), [10.0, 12.0]).expect("valid grid");
    match kind {
        "obstacle-open" => (
            grid,
            Boundaries {
                x_lo: SideBc::Dirichlet(0.0),
                x_hi: SideBc::Dirichlet(0.0),
                y_lo: SideBc::Open,
                y_hi: SideBc::Open,
            },
            vec![Geometry::Disc {
                center: [5.0, 5.5],
                radius: 2.1,
            }],
        ),
        _ => (
            grid,
            Boundaries {
                x_lo: SideBc::Periodic,
                x_hi: SideBc::Periodic,
                y_lo: SideBc::Dirichlet(0.0),
                y_hi: SideBc::ZeroGradient,
            },
            vec![],
        ),
    }
}

fn run_one(name: &str, cfg: &GradCheckConfig) -> Result<GradCheckReport> {
    let dev = Device::flex().autodiff();
    let (b, solve) = (2, SolveConfig::default());
    let f = |dims: [usize; 3], seed| field(dims, 1.0, 0.0, seed, &dev);
    match name {
        n if n.starts_with("advect") => {
            let (kind, loc, scheme) = match n {
                "advect-sl-center" => (
                    "obstacle-open",
                    Location::Center,
                    AdvectScheme::SemiLagrangian,
                ),
                "advect-sl-face-x" => (
                    "obstacle-open",
                    Location::FaceX,
                    AdvectScheme::SemiLagrangian,
                ),
                "advect-sl-face-y" => (
                    "obstacle-open",
                    Location::FaceY,
                    AdvectScheme::SemiLagrangian,
                ),
                "advect-sl-periodic" => {
                    ("periodic", Location::Center, AdvectScheme::SemiLagrangian)
                }
                _ => ("obstacle-open", Location::Center, AdvectScheme::MacCormack),
            };
            let (grid, bcs, _) = layout(kind);
            let (su, sv) = bcs.velocity_specs(&grid);
            let sq = match loc {
                Location::FaceX => su,
                Location::FaceY => sv,
                Location::Center => {
                    let ext = [
                        Extrap::Value(0.3),
                        Extrap::ZeroGradient,
                        Extrap::Value(-0.2),
                        Extrap::ZeroGradient,
                    ];
                    let s = ArraySpec::new(&grid, Location::Center, ext);
                    if bcs.periodic(0) {
                        ArraySpec {
                            ext: [Extrap::Periodic, Extrap::Periodic, s.ext[2], s.ext[3]],
                            ..s
                        }
                    } else {
                        s
                    }
                }
            };
            // dt/dx = 1.3 with velocities ~1: back-traces leave the domain at the edges.
            let spec = AdvectSpec {
                q: sq,
                u: su,
                v: sv,
                dt_dx: 1.3,
                scheme,
            };
            let inputs = [
                f([b, sq.ny, sq.nx], 1),
                field([b, su.ny, su.nx], 0.8, 0.3, 2, &dev),
                field([b, sv.ny, sv.nx], 0.8, -0.2, 3, &dev),
            ];
            let loss = move |x: &[Tensor<3>]| {
                weighted(
                    ops::advect(x[0].clone(), x[1].clone(), x[2].clone(), spec),
                    9,
                )
            };
            check(name, &inputs, &loss, cfg)
        }
        "diffuse-explicit" | "diffuse-implicit" => {
            let (grid, bcs, _) = layout("periodic");
            let (su, _) = bcs.velocity_specs(&grid);
            let x = [f([b, su.ny, su.nx], 4)];
            if name == "diffuse-explicit" {
                let loss = move |x: &[Tensor<3>]| {
                    weighted(ops::diffuse_explicit(x[0].clone(), su, 0.2), 9)
                };
                check(name, &x, &loss, cfg)
            } else {
                let op =
                    Arc::new(ImplicitDiffusion::new(su, 0.7, solve).map_err(DiffsimError::from)?);
                let loss =
                    move |x: &[Tensor<3>]| weighted(ops::diffuse_implicit(x[0].clone(), &op), 9);
                check(name, &x, &loss, cfg)
            }
        }
        "conv-same" => {
            // x [2, 3, 6, 5], w [4, 3, 3, 3], b [4], passed as 3-D tensors and reshaped.
            let x = [f([b * 3, 6, 5], 11), f([4 * 3, 3, 3], 12), f([1, 1, 4], 13)];
            let loss = move |x: &[Tensor<3>]| {
                let y = crate::nn::conv_same(
                    x[0].clone().reshape([b, 3, 6, 5]),
                    x[1].clone().reshape([4, 3, 3, 3]),
                    x[2].clone().reshape([4]),
                );
                weighted(y.reshape([b * 4, 6, 5]), 9)
            };
            check(name, &x, &loss, cfg)
        }
        "conv-same-act" | "conv-same-add-act" | "conv-edge-add-act" => {
            // x [2, 3, 6, 5], w [4, 3, 3, 3], b [4], residual [2, 4, 6, 5]; the inputs are
            // shifted by 0.3 so that both sides of the activation's kink are sampled. The
            // edge-padded layer is the 2D U-Net's residual-block convolution.
            let residual = name != "conv-same-act";
            let padding = match name {
                "conv-edge-add-act" => crate::nn::Padding::Edge,
                _ => crate::nn::Padding::Zero,
            };
            let mut x = vec![f([b * 3, 6, 5], 14), f([4 * 3, 3, 3], 15), f([1, 1, 4], 16)];
            if residual {
                x.push(f([b * 4, 6, 5], 17));
            }
            let loss = move |x: &[Tensor<3>]| {
                let y = crate::nn::conv_same_act(
                    x[0].clone().add_scalar(0.3).reshape([b, 3, 6, 5]),
                    x[1].clone().reshape([4, 3, 3, 3]),
                    x[2].clone().reshape([4]),
                    x.get(3).map(|r| r.clone().reshape([b, 4, 6, 5])),
                    0.3,
                    padding,
                );
                weighted(y.reshape([b * 4, 6, 5]), 9)
            };
            check(name, &x, &loss, cfg)
        }
        "divergence" => {
            let (grid, _, _) = layout("periodic");
            let (nx, ny) = (grid.nx, grid.ny);
            let x = [f([b, ny, nx + 1], 5), f([b, ny + 1, nx], 6)];
            let loss = move |x: &[Tensor<3>]| {
                weighted(ops::divergence(x[0].clone(), x[1].clone(), 0.7), 9)
            };
            check(name, &x, &loss, cfg)
        }
        "gradient" => {
            let (grid, bcs, _) = layout("obstacle-open");
            let spec = ArraySpec::new(&grid, Location::Center, bcs.pressure_extrap());
            let x = [f([b, grid.ny, grid.nx], 7)];
            let loss = move |x: &[Tensor<3>]| {
                let (gu, gv) = ops::gradient(x[0].clone(), spec, 0.7);
                weighted(gu, 9) + weighted(gv, 10)
            };
            check(name, &x, &loss, cfg)
        }
        "project-obstacle-open" | "project-periodic-walls" => {
            let kind = if name == "project-obstacle-open" {
                "obstacle-open"
            } else {
                "periodic"
            };
            let (grid, bcs, obstacles) = layout(kind);
            let solid = SolidMask::new(grid, &obstacles)?;
            let proj =
                Arc::new(PressureProjection::new(&bcs, &solid, solve).map_err(DiffsimError::from)?);
            let x = [
                f([b, grid.ny, grid.nx + 1], 11),
                f([b, grid.ny + 1, grid.nx], 12),
            ];
            let loss = move |x: &[Tensor<3>]| {
                let (u, v, p) = ops::project(x[0].clone(), x[1].clone(), &proj);
                weighted(u, 9) + weighted(v, 10) + weighted(p, 13)
            };
            check(name, &x, &loss, cfg)
        }
        n if n.starts_with("unroll16") => unroll_check(n, cfg),
        "advect-line"
        | "burgers-step-paper"
        | "burgers-step-notebook"
        | "unet1d-cfe"
        | "unet1d-op-two-chunks"
        | "unroll32-burgers-dp-cfe" => super::burgers::run(name, cfg),
        "staggered-curl"
        | "spectral-target-loss"
        | "blurred-l2"
        | "unet2d-op"
        | "unroll4-shape-staggered"
        | "unroll8-indirect" => super::flow_control::run(name, cfg),
        n if n.starts_with("rigid-coupled-") => super::coupled::run(name, cfg),
        n if n.starts_with("articulation-") => super::articulation::run(name, cfg),
        n if n.starts_with("rigid-") => super::rigid::run(name, cfg),
        other => Err(DiffsimError::config(format!(
            "unknown gradcheck '{other}'; one of: {}",
            CHECKS.join(", ")
        ))),
    }
}

/// `mean(u²)` over all staggered faces (u and v together) of a state.
pub fn kinetic_loss(s: &FluidState) -> Tensor<1> {
    let n = (s.u.dims().iter().product::<usize>() + s.v.dims().iter().product::<usize>()) as f64;
    (s.u.clone().powf_scalar(2.0).sum() + s.v.clone().powf_scalar(2.0).sum()) / n
}

/// 16 steps of a small f64 scene: gradient of [`kinetic_loss`] with respect to the initial
/// velocity (or, for `control-force`, a force added to `v` before every step).
fn unroll_check(name: &str, cfg: &GradCheckConfig) -> Result<GradCheckReport> {
    let steps = 16;
    let mut scene = match name {
        "unroll16-wake" => SceneConfig::wake(),
        _ => SceneConfig::wake_phiflow(),
    };
    // wake-phiflow starts from the shipped PhiFlow state at 32x64; wake from its poke at 16x32.
    scene.resolution = if name == "unroll16-wake" {
        Resolution::new(16, 32)
    } else {
        Resolution::new(32, 64)
    };
    scene.precision = crate::fluid::Precision::F64;
    let checkpointed = name == "unroll16-checkpointed";
    let dev = if checkpointed {
        Device::flex().autodiff().gradient_checkpointing()
    } else {
        Device::flex().autodiff()
    };
    let sim = Simulation::new(&scene, &dev)?;
    let init = if name == "unroll16-wake" {
        sim.initial_state(1)?
    } else {
        let frame = read_frame(&phiflow_state(None, scene.resolution)?, &sim.grid)?;
        sim.state_from_arrays(frame.u, frame.v, None, 1)
    };
    let (u0, v0) = (init.u.clone(), init.v.clone());
    let dv = v0.dims();
    let base = init;
    let run = |mut s: FluidState, forces: &[Tensor<3>]| -> Tensor<1> {
        for k in 0..steps {
            if let Some(f) = forces.get(k) {
                s.v = s.v + f.clone();
            }
            s = sim
                .step(s)
                .expect("a small smooth flow steps without failure")
                .0;
        }
        kinetic_loss(&s)
    };
    if name == "unroll16-control-force" {
        let forces: Vec<Tensor<3>> = (0..steps)
            .map(|k| field(dv, 0.01, 0.0, 40 + k as u64, &dev))
            .collect();
        let loss = move |x: &[Tensor<3>]| run(base.clone(), x);
        let cfg = GradCheckConfig {
            directions: 2,
            entries: 1,
            ..cfg.clone()
        };
        check(name, &forces, &loss, &cfg)
    } else {
        let loss = move |x: &[Tensor<3>]| {
            let s = FluidState {
                u: x[0].clone(),
                v: x[1].clone(),
                ..base.clone()
            };
            run(s, &[])
        };
        check(name, &[u0, v0], &loss, cfg)
    }
}
