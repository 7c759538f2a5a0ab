//! Reproduced studies, one module each, named like its folder `experiments/<name>/` (README
//! with the command and setup, RESULTS.md with measured tables). Each keeps the small
//! contract of [`Study`]: settings with a full and a quick default, a run function writing its
//! pictures into an output folder, and a result that serialises to JSON and renders as
//! Markdown. The physics they use lives below (`fluid`, `solids`, `rigid`, `nn`, `optim`).

pub mod billiards;
pub mod bounce;
pub mod box_toss;
pub mod burgers_control;
pub mod cartpole_swingup;
pub mod cloth_throw;
pub mod control_baseline;
pub mod ik_chain;
pub mod indirect_control;
pub mod panda_reach;
pub mod pendulum_id;
pub mod rigid_trajectory;
pub mod sampling;
pub mod shape_transition;
pub mod smoke_target;
pub mod softbody_material;
pub mod sphere_pushing;
pub mod spring_cage;
pub mod stage;
pub mod study;
pub mod wake_flow;

pub use study::{Progress, Study, record};

/// Every study: `(name, what it reproduces)`, in the order the help lists them.
pub const STUDIES: [(&str, &str); 17] = [
    (wake_flow::WakeFlow::NAME, wake_flow::WakeFlow::ABOUT),
    (
        burgers_control::BurgersControl::NAME,
        burgers_control::BurgersControl::ABOUT,
    ),
    (
        shape_transition::ShapeTransition::NAME,
        shape_transition::ShapeTransition::ABOUT,
    ),
    (
        indirect_control::IndirectControl::NAME,
        indirect_control::IndirectControl::ABOUT,
    ),
    (
        smoke_target::SmokeTarget::NAME,
        smoke_target::SmokeTarget::ABOUT,
    ),
    (
        spring_cage::SpringCage::NAME,
        spring_cage::SpringCage::ABOUT,
    ),
    (bounce::Bounce::NAME, bounce::Bounce::ABOUT),
    (
        softbody_material::SoftbodyMaterial::NAME,
        softbody_material::SoftbodyMaterial::ABOUT,
    ),
    (
        cloth_throw::ClothThrow::NAME,
        cloth_throw::ClothThrow::ABOUT,
    ),
    (
        rigid_trajectory::RigidTrajectory::NAME,
        rigid_trajectory::RigidTrajectory::ABOUT,
    ),
    (
        sphere_pushing::SpherePushing::NAME,
        sphere_pushing::SpherePushing::ABOUT,
    ),
    (billiards::Billiards::NAME, billiards::Billiards::ABOUT),
    (box_toss::BoxToss::NAME, box_toss::BoxToss::ABOUT),
    (
        cartpole_swingup::CartpoleSwingup::NAME,
        cartpole_swingup::CartpoleSwingup::ABOUT,
    ),
    (ik_chain::IkChain::NAME, ik_chain::IkChain::ABOUT),
    (
        pendulum_id::PendulumId::NAME,
        pendulum_id::PendulumId::ABOUT,
    ),
    (
        panda_reach::PandaReach::NAME,
        panda_reach::PandaReach::ABOUT,
    ),
];
