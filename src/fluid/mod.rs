//! Fluid physics built from the grid ops: scenes and the time stepper.

mod scene;
mod sim;

pub use scene::{
    BUILTIN_SCENES, DiffusionScheme, Precision, FaceRegion, Forcing, Initial, MarkerConfig, SOL_RE_FACTOR, SceneConfig, Side, Viscosity,
};
pub use sim::{FluidState, Scene, Simulation, StepInfo, taylor_green};
