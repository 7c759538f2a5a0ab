//! Fluid physics built from the grid ops: scenes and the time stepper.

mod indirect_flow;
mod scene;
mod shape_flow;
mod sim;
pub mod traffic;
mod unroll;

pub use indirect_flow::{CellBox, IndirectFlow, IndirectLayout, PAPER_CELLS};
pub use scene::{
    BUILTIN_SCENES, DiffusionScheme, FaceRegion, Forcing, Initial, MarkerConfig, Precision,
    SOL_RE_FACTOR, SceneConfig, Side, Viscosity,
};
pub use shape_flow::{ShapeFlow, TARGET_SIGMA, mae_sums, relative_mae};
pub use sim::{FluidState, Simulation, StepInfo, centre_speed, host_item, on_faces, taylor_green};
pub use unroll::{Checkpointing, Reads, UnrollGradient, unrolled_gradient};
