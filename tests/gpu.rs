//! The portable op bodies on a real GPU backend (wgpu; lavapipe without a GPU): the
//! wake-phiflow step from the shipped PhiFlow state matches the Flex kernels.
//! Run with `cargo test --release --features wgpu --test gpu` (needs a Vulkan driver).
#![cfg(feature = "wgpu")]

use burn::tensor::{Device, DeviceKind, Tensor};
use diffsim::fluid::{SceneConfig, Simulation};
use diffsim::grid::Resolution;

fn host(t: &Tensor<3>) -> Vec<f32> {
    t.clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// The wake-phiflow 32x64 scene on `device` (CG tolerance 1e-6) and the shipped PhiFlow state,
/// `batch` times.
fn shared_state(device: Device, batch: usize) -> (Simulation, diffsim::fluid::FluidState) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(diffsim::io::PHIFLOW_DIR)
        .join("wake_phiflow_32x64.h5");
    let mut scene = SceneConfig::wake_phiflow();
    scene.resolution = Resolution::new(32, 64);
    scene.solve = diffsim::linalg::SolveConfig {
        rel_tol: 1e-6,
        abs_tol: 1e-7,
        ..Default::default()
    };
    let sim = Simulation::new(&scene, &device).unwrap();
    let f = diffsim::io::read_frame(&path, &sim.grid).unwrap();
    let s = sim.state_from_arrays(f.u, f.v, None, batch);
    (sim, s)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn wgpu_step_matches_flex() {
    let run = |device: Device| {
        let (sim, mut s) = shared_state(device, 2);
        for _ in 0..3 {
            s = sim.step(s).unwrap().0;
        }
        (host(&s.u), host(&s.v), sim.max_divergence(&s))
    };
    let (fu, fv, _) = run(Device::flex());
    let (gu, gv, gdiv) = run(Device::wgpu(DeviceKind::DefaultDevice));
    let err = max_diff(&fu, &gu).max(max_diff(&fv, &gv));
    eprintln!("wgpu vs flex after 3 steps: max |Δu| {err:.2e}, wgpu max |div| {gdiv:.2e}");
    assert!(err < 1e-3, "wgpu and flex differ by {err}");
    assert!(gdiv < 1e-4);
}

/// Gradients on wgpu: the default adjoints (Burn's autodiff of the default bodies, and the
/// projection's adjoint CG solve) against the fused Flex adjoints, 4 steps of wake-phiflow.
#[test]
fn wgpu_gradient_matches_flex() {
    use diffsim::fluid::{Checkpointing, Reads, unrolled_gradient};
    let run = |device: Device| {
        let (sim, s) = shared_state(device.autodiff(), 1);
        let g = unrolled_gradient(
            &sim,
            &s,
            4,
            Checkpointing::Tape,
            Reads::Velocity,
            &diffsim::gradcheck::kinetic_loss,
        )
        .unwrap();
        (host(&g.u), host(&g.v))
    };
    let (fu, fv) = run(Device::flex());
    let (gu, gv) = run(Device::wgpu(DeviceKind::DefaultDevice));
    let scale = fu.iter().chain(&fv).fold(0.0f32, |m, x| m.max(x.abs()));
    let err = max_diff(&fu, &gu).max(max_diff(&fv, &gv));
    eprintln!("wgpu vs flex gradient after 4 steps: max |Δ| {err:.2e} (scale {scale:.2e})");
    assert!(
        err < 1e-3 * scale,
        "wgpu and flex gradients differ by {err} (scale {scale})"
    );
}
