//! Fluid physics built from the grid ops: scenes and the time stepper.

mod scene;
mod shape_flow;
mod sim;
mod unroll;

pub use scene::{
    BUILTIN_SCENES, DiffusionScheme, FaceRegion, Forcing, Initial, MarkerConfig, Precision,
    SOL_RE_FACTOR, SceneConfig, Side, Viscosity,
};
pub use shape_flow::{ShapeFlow, TARGET_SIGMA, relative_mae};
pub use sim::{FluidState, Simulation, StepInfo, host_item, taylor_green};
pub use unroll::{Checkpointing, Reads, UnrollGradient, unrolled_gradient};
