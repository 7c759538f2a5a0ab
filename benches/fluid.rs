//! Criterion benchmarks of the grid ops and the full forward step of `wake-phiflow`.
//! `cargo bench --bench fluid` (add `-- --quick` for a short run). `diffsim bench fluid` times
//! the same step from the shipped PhiFlow initial state (data/phiflow) and compares with PhiFlow.

use burn::tensor::{Device, Tensor};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use diffsim::fluid::{SceneConfig, Simulation};
use diffsim::grid::Resolution;
use diffsim::ops::{self, AdvectSpec};

fn ops(c: &mut Criterion) {
    let dev = Device::flex();
    let mut g = c.benchmark_group("wake-phiflow");
    for res in [Resolution::new(32, 64), Resolution::new(128, 256)] {
        let mut scene = SceneConfig::wake_phiflow();
        scene.resolution = res;
        let sim = Simulation::new(&scene, &dev).unwrap();
        let s = sim.initial_state(1).unwrap();
        let s = (0..20).fold(s, |s, _| sim.step(s).unwrap().0);
        let spec = |q| AdvectSpec {
            q,
            u: sim.u_spec,
            v: sim.v_spec,
            dt_dx: scene.dt / sim.grid.dx,
            scheme: scene.advection,
        };
        let id = |name: &str| BenchmarkId::new(name, res);
        g.bench_function(id("step"), |b| {
            b.iter_batched(
                || s.clone(),
                |s| sim.step(s).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
        g.bench_function(id("advect_marker"), |b| {
            b.iter(|| {
                ops::advect(
                    s.marker.clone(),
                    s.u.clone(),
                    s.v.clone(),
                    spec(sim.marker_spec),
                )
            })
        });
        g.bench_function(id("advect_u"), |b| {
            b.iter(|| ops::advect(s.u.clone(), s.u.clone(), s.v.clone(), spec(sim.u_spec)))
        });
        g.bench_function(id("diffuse_u"), |b| {
            b.iter(|| ops::diffuse_explicit(s.u.clone(), sim.u_spec, sim.alpha))
        });
        g.bench_function(id("project"), |b| {
            b.iter(|| ops::project(s.u.clone(), s.v.clone(), &sim.projection))
        });
        let solver = &sim.projection.solver;
        let rhs: Vec<f32> = (0..solver.stencil().len())
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        g.bench_function(id("pressure_solve"), |b| {
            b.iter_batched_ref(
                || rhs.clone(),
                |x| solver.solve(x, 1).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
        let mask = Tensor::<3>::ones(s.v.dims(), &dev).greater_elem(0.5);
        g.bench_function(id("mask_fill"), |b| {
            b.iter(|| s.v.clone().mask_fill(mask.clone(), 1.0))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = ops
}
criterion_main!(benches);
