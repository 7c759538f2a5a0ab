//! [`Simulation`]: a scene prepared on a device (grid, masks, factorised pressure solver), and
//! its time step.

use super::Reads;
use super::scene::{DiffusionScheme, FaceRegion, Initial, Precision, SceneConfig, Side};
use crate::error::{DiffsimError, Result};
use crate::grid::{ArraySpec, Grid, Location, SideBc, SolidMask};
use crate::linalg::{SolveError, SolveInfo};
use crate::ops::{self, AdvectSpec, ImplicitDiffusion, PressureProjection};
use burn::tensor::ops::PadMode;
use burn::tensor::{Bool, DType, Device, Tensor, TensorData};
use std::sync::Arc;
use std::time::Instant;

/// The state of a batch of flows.
#[derive(Clone, Debug)]
pub struct FluidState {
    /// x-velocity on x-faces, `[B, ny, nx+1]`.
    pub u: Tensor<3>,
    /// y-velocity on y-faces, `[B, ny+1, nx]`.
    pub v: Tensor<3>,
    /// Marker at cell centres, `[B, ny, nx]`.
    pub marker: Tensor<3>,
    /// Pressure of the last projection (`u ← u − ∇p`, units velocity·length), `[B, ny, nx]`.
    pub pressure: Tensor<3>,
    /// Steps taken.
    pub step: usize,
}

impl FluidState {
    /// The same state cut from any autodiff graph. Run evaluation rollouts from a detached
    /// state: ops on untracked tensors record nothing, so no orphaned graph slows the next
    /// backward pass.
    pub fn detach(self) -> Self {
        Self {
            u: self.u.detach(),
            v: self.v.detach(),
            marker: self.marker.detach(),
            pressure: self.pressure.detach(),
            step: self.step,
        }
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.u.dims()[0]
    }
}

/// Batch item `b` of a `[B, …]` tensor as a host f32 vector (row-major).
pub fn host_item(t: &Tensor<3>, b: usize) -> Vec<f32> {
    t.clone()
        .narrow(0, b, 1)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

/// A cell-centred `q: [B, ny, nx]` averaged onto the faces normal to `axis` (2: x faces,
/// `[B, ny, nx+1]`; 1: y faces, `[B, ny+1, nx]`), zero beyond the edges.
pub fn on_faces(q: Tensor<3>, axis: usize) -> Tensor<3> {
    let n = q.dims()[axis];
    let padded = if axis == 1 {
        q.pad([(1, 1), (0, 0)], PadMode::Constant(0.0))
    } else {
        q.pad([(0, 0), (1, 1)], PadMode::Constant(0.0))
    };
    (padded.clone().narrow(axis, 0, n + 1) + padded.narrow(axis, 1, n + 1)) * 0.5
}

/// The speed `|v|` at the cell centres of batch item `b` of a staggered velocity
/// `(u [B, ny, nx+1], v [B, ny+1, nx])`, row-major `[ny, nx]`.
pub fn centre_speed(u: &Tensor<3>, v: &Tensor<3>, b: usize) -> Vec<f32> {
    let [_, ny1, nx] = v.dims();
    let ny = ny1 - 1;
    let (u, v) = (host_item(u, b), host_item(v, b));
    (0..nx * ny)
        .map(|k| {
            let (j, x) = (k / nx, k % nx);
            let uc = 0.5 * (u[j * (nx + 1) + x] + u[j * (nx + 1) + x + 1]);
            let vc = 0.5 * (v[j * nx + x] + v[(j + 1) * nx + x]);
            (uc * uc + vc * vc).sqrt()
        })
        .collect()
}

/// Statistics of one step.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepInfo {
    /// The pressure solve.
    pub solve: SolveInfo,
    /// Wall time of the projection (seconds).
    pub projection_secs: f64,
    /// Wall time of the whole step (seconds).
    pub step_secs: f64,
}

/// A velocity forcing prepared as a face mask: `(mask, value)` for u and for v.
type FaceMask = (Tensor<3, Bool>, f64);

/// A scene prepared for stepping on one device.
#[derive(Debug)]
pub struct Simulation {
    /// The resolved scene.
    pub scene: SceneConfig,
    /// The grid.
    pub grid: Grid,
    /// Solid cells.
    pub solid: SolidMask,
    /// Spec of `u`.
    pub u_spec: ArraySpec,
    /// Spec of `v`.
    pub v_spec: ArraySpec,
    /// Spec of the marker.
    pub marker_spec: ArraySpec,
    /// Kinematic viscosity (domain units²/time).
    pub nu: f64,
    /// Diffusion number `α = ν·dt/dx²`.
    pub alpha: f64,
    /// The pressure projection (factorised once here for Cholesky).
    pub projection: Arc<PressureProjection>,
    implicit: Option<[Arc<ImplicitDiffusion>; 2]>,
    u_forcing: Vec<FaceMask>,
    v_forcing: Vec<FaceMask>,
    /// The normal faces of Dirichlet (wall or inflow) sides and their value: `u` faces of the
    /// x sides, `v` faces of the y sides.
    walls: [Vec<FaceMask>; 2],
    inflow: Option<Tensor<3>>,
    /// The device.
    pub device: Device,
}

impl Simulation {
    /// Validates `scene`, builds the grid, masks and solvers on `device`.
    pub fn new(scene: &SceneConfig, device: &Device) -> Result<Self> {
        scene.validate()?;
        let grid = Grid::new(scene.resolution, scene.domain)?;
        let solid = SolidMask::new(grid, &scene.obstacles)?;
        let bcs = &scene.boundaries;
        let (u_spec, v_spec) = bcs.velocity_specs(&grid);
        let marker_spec = ArraySpec::new(
            &grid,
            Location::Center,
            bcs.scalar_extrap(scene.marker.outside),
        );
        let nu = scene.viscosity.nu(scene.domain[0], scene.dt);
        let alpha = nu * scene.dt / (grid.dx * grid.dx);
        if scene.diffusion == DiffusionScheme::Explicit && alpha > 0.25 {
            return Err(DiffsimError::config(format!(
                "explicit diffusion is unstable: α = ν·dt/dx² = {alpha:.3} > 0.25 at {}; use diffusion = \"implicit\", a smaller dt or a coarser grid",
                grid.resolution()
            )));
        }
        let projection = Arc::new(
            PressureProjection::new(bcs, &solid, scene.solve)?.with_adjoint(scene.adjoint_solve)?,
        );
        let implicit = match scene.diffusion {
            DiffusionScheme::Implicit if alpha > 0.0 => Some([
                Arc::new(ImplicitDiffusion::new(u_spec, alpha, scene.solve)?),
                Arc::new(ImplicitDiffusion::new(v_spec, alpha, scene.solve)?),
            ]),
            _ => None,
        };
        let mut u_forcing = Vec::new();
        let mut v_forcing = Vec::new();
        for f in &scene.forcing {
            if let Some(val) = f.u {
                u_forcing.push((face_mask(&grid, Location::FaceX, &f.region, device), val));
            }
            if let Some(val) = f.v {
                v_forcing.push((face_mask(&grid, Location::FaceY, &f.region, device), val));
            }
        }
        let mut walls = [Vec::new(), Vec::new()];
        for (side, bc) in [Side::XLo, Side::XHi, Side::YLo, Side::YHi]
            .into_iter()
            .zip(bcs.sides())
        {
            if let SideBc::Dirichlet(val) = bc {
                let (k, loc) = match side {
                    Side::XLo | Side::XHi => (0, Location::FaceX),
                    Side::YLo | Side::YHi => (1, Location::FaceY),
                };
                let edge = FaceRegion::Edge { side, layers: 1 };
                walls[k].push((face_mask(&grid, loc, &edge, device), val));
            }
        }
        let inflow = (!scene.marker.inflow.is_empty() && scene.marker.rate != 0.0).then(|| {
            let mut m = vec![0.0; grid.cells()];
            for g in &scene.marker.inflow {
                for (m, inside) in m.iter_mut().zip(g.cell_mask(&grid)) {
                    if inside {
                        *m = scene.marker.rate * scene.dt;
                    }
                }
            }
            tensor_of(m, [1, grid.ny, grid.nx], scene.precision, device)
        });
        Ok(Self {
            scene: scene.clone(),
            grid,
            solid,
            u_spec,
            v_spec,
            marker_spec,
            nu,
            alpha,
            projection,
            implicit,
            u_forcing,
            v_forcing,
            walls,
            inflow,
            device: device.clone(),
        })
    }

    /// True when the scene steps a marker (inflow, buoyancy or `marker.carried`).
    pub fn has_marker(&self) -> bool {
        self.inflow.is_some() || self.scene.marker.buoyancy != 0.0 || self.scene.marker.carried
    }

    /// The initial state of the scene, repeated `batch` times; projected once so that it is
    /// divergence-free.
    pub fn initial_state(&self, batch: usize) -> Result<FluidState> {
        let g = &self.grid;
        let [ny, nx] = [g.ny, g.nx];
        let mut u = vec![0.0; ny * (nx + 1)];
        let mut v = vec![0.0; (ny + 1) * nx];
        match self.scene.initial {
            Initial::Rest => {}
            Initial::Uniform([a, b]) => {
                u.fill(a);
                v.fill(b);
            }
            Initial::SolPoke => {
                v.fill(1.0);
                for j in ny / 2 + 10..=ny / 2 + 19 {
                    for i in (nx / 2).saturating_sub(2)..=nx / 2 + 1 {
                        if j < ny && i <= nx {
                            u[j * (nx + 1) + i] = 1.0;
                        }
                    }
                }
            }
            Initial::TaylorGreen(a) => {
                (u, v) = taylor_green(g, a, 0.0, 0.0);
            }
        }
        let u = self.repeat(u, [ny, nx + 1], batch);
        let v = self.repeat(v, [ny + 1, nx], batch);
        let marker = self.zeros([batch, ny, nx]);
        let (u, v, pressure, _) = self.project(u, v, 0)?;
        Ok(FluidState {
            u,
            v,
            marker,
            pressure,
            step: 0,
        })
    }

    /// A state from host arrays (`u: [ny, nx+1]`, `v: [ny+1, nx]`, optional marker `[ny, nx]`),
    /// repeated `batch` times, not re-projected (it continues a stored trajectory).
    pub fn state_from_arrays(
        &self,
        u: Vec<f32>,
        v: Vec<f32>,
        marker: Option<Vec<f32>>,
        batch: usize,
    ) -> FluidState {
        let g = &self.grid;
        let wide = |x: Vec<f32>| x.into_iter().map(f64::from).collect::<Vec<f64>>();
        let marker = match marker {
            Some(m) => self.repeat(wide(m), [g.ny, g.nx], batch),
            None => self.zeros([batch, g.ny, g.nx]),
        };
        FluidState {
            u: self.repeat(wide(u), [g.ny, g.nx + 1], batch),
            v: self.repeat(wide(v), [g.ny + 1, g.nx], batch),
            marker,
            pressure: self.zeros([batch, g.ny, g.nx]),
            step: 0,
        }
    }

    /// `data` (one item, `dims`) repeated `batch` times, in the scene's precision.
    fn repeat(&self, data: Vec<f64>, dims: [usize; 2], batch: usize) -> Tensor<3> {
        tensor_of(
            data,
            [1, dims[0], dims[1]],
            self.scene.precision,
            &self.device,
        )
        .repeat_dim(0, batch)
    }

    /// Zeros in the scene's precision.
    fn zeros(&self, dims: [usize; 3]) -> Tensor<3> {
        tensor_of(
            vec![0.0; dims.iter().product()],
            dims,
            self.scene.precision,
            &self.device,
        )
    }

    /// Projects and checks the solver outcome.
    /// Projects `(u, v)` and checks the solve; `step` names the step in a blow-up error.
    fn project(
        &self,
        u: Tensor<3>,
        v: Tensor<3>,
        step: usize,
    ) -> Result<(Tensor<3>, Tensor<3>, Tensor<3>, SolveInfo)> {
        let (u, v, p) = ops::project(u, v, &self.projection);
        let info = solve_outcome(self.projection.take_outcome(), step)?;
        Ok((u, v, p, info))
    }

    /// Advances one time step (docs/wake-flow.md §1 order): viscosity, velocity forcing,
    /// semi-Lagrangian (or MacCormack) advection of marker and velocity, marker inflow,
    /// buoyancy, pressure projection with obstacles.
    pub fn step(&self, s: FluidState) -> Result<(FluidState, StepInfo)> {
        self.advance(s, true)
    }

    /// True when the marker does not act on the velocity (no buoyancy): the velocity of
    /// [`Simulation::step`] and [`Simulation::step_velocity`] are then the same.
    pub fn marker_is_passive(&self) -> bool {
        self.scene.marker.buoyancy == 0.0
    }

    /// Advances the velocity (and pressure) one step and carries the marker unchanged, for
    /// callers that never read a passive marker (a velocity loss): the same velocity as
    /// [`Simulation::step`] without the marker's advection and inflow. Fails when the marker
    /// is not passive.
    pub fn step_velocity(&self, s: FluidState) -> Result<(FluidState, StepInfo)> {
        if !self.marker_is_passive() {
            return Err(DiffsimError::config(
                "the marker drives the velocity (buoyancy): step the whole state",
            ));
        }
        self.advance(s, false)
    }

    /// True when a loss that reads `reads` lets the unroll skip the marker: a velocity loss
    /// and a passive marker.
    pub fn skips_marker(&self, reads: Reads) -> bool {
        reads == Reads::Velocity && self.marker_is_passive()
    }

    /// One step of what a loss reading `reads` needs: [`Simulation::step_velocity`] where
    /// [`Simulation::skips_marker`], else [`Simulation::step`].
    pub fn step_for(&self, s: FluidState, reads: Reads) -> Result<(FluidState, StepInfo)> {
        self.advance(s, !self.skips_marker(reads))
    }

    /// The viscosity stage of a step: explicit or implicit diffusion of both velocity
    /// components, after which the normal faces of Dirichlet sides hold their wall value
    /// again (explicit diffusion would leave `α·u₁` on a closed wall's faces, and advection
    /// reads them before the projection resets them). Without diffusion nothing here moves
    /// them, and the stage does nothing.
    pub fn viscosity(
        &self,
        mut u: Tensor<3>,
        mut v: Tensor<3>,
        step: usize,
    ) -> Result<(Tensor<3>, Tensor<3>)> {
        match (&self.implicit, self.scene.diffusion) {
            (Some([du, dv]), _) => {
                u = ops::diffuse_implicit(u, du);
                v = ops::diffuse_implicit(v, dv);
                for d in [du, dv] {
                    solve_outcome(d.solver.take_last(), step + 1)?;
                }
            }
            (None, DiffusionScheme::Explicit) if self.alpha > 0.0 => {
                u = ops::diffuse_explicit(u, self.u_spec, self.alpha);
                v = ops::diffuse_explicit(v, self.v_spec, self.alpha);
            }
            _ => return Ok((u, v)),
        }
        for (mask, val) in &self.walls[0] {
            u = u.mask_fill(mask.clone(), *val as f32);
        }
        for (mask, val) in &self.walls[1] {
            v = v.mask_fill(mask.clone(), *val as f32);
        }
        Ok((u, v))
    }

    /// One step; the marker is advected and fed only when `with_marker`.
    fn advance(&self, s: FluidState, with_marker: bool) -> Result<(FluidState, StepInfo)> {
        let t0 = Instant::now();
        let FluidState {
            u,
            v,
            mut marker,
            step,
            ..
        } = s;
        let (mut u, mut v) = self.viscosity(u, v, step)?;
        for (mask, val) in &self.u_forcing {
            u = u.mask_fill(mask.clone(), *val as f32);
        }
        for (mask, val) in &self.v_forcing {
            v = v.mask_fill(mask.clone(), *val as f32);
        }
        let dt_dx = self.scene.dt / self.grid.dx;
        let spec = |q: ArraySpec| AdvectSpec {
            q,
            u: self.u_spec,
            v: self.v_spec,
            dt_dx,
            scheme: self.scene.advection,
        };
        let has_marker = with_marker && self.has_marker();
        let marker_adv = has_marker
            .then(|| ops::advect(marker.clone(), u.clone(), v.clone(), spec(self.marker_spec)));
        let u_adv = ops::advect(u.clone(), u.clone(), v.clone(), spec(self.u_spec));
        let mut v_adv = ops::advect(v.clone(), u.clone(), v.clone(), spec(self.v_spec));
        if let Some(m) = marker_adv {
            marker = match &self.inflow {
                Some(inflow) => m + inflow.clone(),
                None => m,
            };
        }
        if !self.marker_is_passive() {
            v_adv = v_adv
                + on_faces(marker.clone(), 1) * (self.scene.dt * self.scene.marker.buoyancy) as f32;
        }
        let tp = Instant::now();
        let (u, v, pressure, solve) = self.project(u_adv, v_adv, step + 1)?;
        let projection_secs = tp.elapsed().as_secs_f64();
        let info = StepInfo {
            solve,
            projection_secs,
            step_secs: t0.elapsed().as_secs_f64(),
        };
        Ok((
            FluidState {
                u,
                v,
                marker,
                pressure,
                step: step + 1,
            },
            info,
        ))
    }

    /// Max |u·dt/dx| over all faces (the CFL number).
    pub fn cfl(&self, s: &FluidState) -> f64 {
        let m =
            s.u.clone()
                .abs()
                .max()
                .into_scalar::<f64>()
                .max(s.v.clone().abs().max().into_scalar::<f64>());
        m * self.scene.dt / self.grid.dx
    }

    /// Max |div u| over fluid cells (domain units).
    pub fn max_divergence(&self, s: &FluidState) -> f64 {
        let div = ops::divergence(s.u.clone(), s.v.clone(), self.grid.dx);
        let fluid = self
            .solid
            .solid
            .iter()
            .map(|&x| if x { 0.0 } else { 1.0 })
            .collect();
        let fluid = tensor_of(
            fluid,
            [1, self.grid.ny, self.grid.nx],
            self.scene.precision,
            &self.device,
        );
        (div * fluid).abs().max().into_scalar::<f64>()
    }

    /// Errors when the state contains NaN or infinity.
    pub fn check_finite(&self, s: &FluidState) -> Result<()> {
        for (name, t) in [
            ("velocity", &s.u),
            ("velocity", &s.v),
            ("marker", &s.marker),
        ] {
            let m = t.clone().abs().max().into_scalar::<f64>();
            if !m.is_finite() {
                return Err(DiffsimError::NonFinite {
                    field: name,
                    step: s.step,
                    cfl: Some(self.cfl(s)),
                });
            }
        }
        Ok(())
    }
}

/// Turns the recorded outcome of an op's solve into a result: a non-finite right-hand side
/// means the state blew up during `step`; no outcome (nothing solved) is an empty `SolveInfo`.
fn solve_outcome(outcome: Option<Result<SolveInfo, SolveError>>, step: usize) -> Result<SolveInfo> {
    match outcome {
        Some(Ok(info)) => Ok(info),
        Some(Err(SolveError::NonFinite(_))) => Err(DiffsimError::NonFinite {
            field: "velocity",
            step,
            cfl: None,
        }),
        Some(Err(e)) => Err(e.into()),
        None => Ok(SolveInfo::default()),
    }
}

/// A tensor of `dims` from f64 host values, in `precision`.
fn tensor_of(data: Vec<f64>, dims: [usize; 3], precision: Precision, device: &Device) -> Tensor<3> {
    match precision {
        Precision::F64 => Tensor::<3>::from_data(TensorData::new(data, dims), (device, DType::F64)),
        Precision::F32 => Tensor::<3>::from_data(
            TensorData::new(
                data.into_iter().map(|x| x as f32).collect::<Vec<f32>>(),
                dims,
            ),
            device,
        ),
    }
}

/// The mask of the faces of `loc` in `region`, `[1, rows, cols]`.
fn face_mask(grid: &Grid, loc: Location, region: &FaceRegion, device: &Device) -> Tensor<3, Bool> {
    let [ny, nx] = grid.shape(loc);
    let mut m = vec![false; ny * nx];
    for j in 0..ny {
        for i in 0..nx {
            m[j * nx + i] = match *region {
                FaceRegion::Inside(g) => g.contains(grid.position(loc, j, i)),
                FaceRegion::Edge { side, layers } => match side {
                    Side::XLo => i < layers,
                    Side::XHi => i + layers >= nx,
                    Side::YLo => j < layers,
                    Side::YHi => j + layers >= ny,
                },
            };
        }
    }
    Tensor::<3, Bool>::from_data(TensorData::new(m, [1, ny, nx]), device)
}

/// The Taylor-Green velocity `u = A sin x cos y F`, `v = −A cos x sin y F`, `F = e^{−2νt}`, on
/// the faces of `grid` (a `2π` domain): `(u [ny·(nx+1)], v [(ny+1)·nx])`.
pub fn taylor_green(grid: &Grid, amplitude: f64, nu: f64, t: f64) -> (Vec<f64>, Vec<f64>) {
    let f = amplitude * (-2.0 * nu * t).exp();
    let at = |loc, j, i| grid.position(loc, j, i);
    let [uy, ux] = grid.shape(Location::FaceX);
    let [vy, vx] = grid.shape(Location::FaceY);
    let u = (0..uy)
        .flat_map(|j| (0..ux).map(move |i| (j, i)))
        .map(|(j, i)| {
            let [x, y] = at(Location::FaceX, j, i);
            f * x.sin() * y.cos()
        })
        .collect();
    let v = (0..vy)
        .flat_map(|j| (0..vx).map(move |i| (j, i)))
        .map(|(j, i)| {
            let [x, y] = at(Location::FaceY, j, i);
            -f * x.cos() * y.sin()
        })
        .collect();
    (u, v)
}
