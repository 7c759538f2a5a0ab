//! `diffsim experiment NAME`: the registry of studies (the studies live in
//! `diffsim::experiments`).

use super::progress::Bars;
use super::{json, out};
use crate::config::read_over;
use crate::error::{DiffsimError, Result};
use crate::experiments::{
    STUDIES, Study, billiards::Billiards, bounce::Bounce, box_toss::BoxToss,
    burgers_control::BurgersControl, cartpole_swingup::CartpoleSwingup, cloth_throw::ClothThrow,
    ik_chain::IkChain, indirect_control::IndirectControl, panda_reach::PandaReach,
    pendulum_id::PendulumId, record, rigid_trajectory::RigidTrajectory,
    shape_transition::ShapeTransition, smoke_target::SmokeTarget,
    softbody_material::SoftbodyMaterial, sphere_pushing::SpherePushing, spring_cage::SpringCage,
    wake_flow::WakeFlow,
};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `diffsim experiment`.
#[derive(Debug, Clone, Args)]
pub struct ExperimentArgs {
    /// The study: wake-flow, burgers-control, shape-transition, indirect-control, smoke-target, spring-cage, bounce, softbody-material,
    /// cloth-throw, rigid-trajectory, sphere-pushing, billiards, box-toss, cartpole-swingup, ik-chain, pendulum-id or panda-reach (`diffsim experiment list` says what each reproduces; the setups are in
    /// experiments/NAME/README.md).
    pub name: String,
    /// The toy-size settings (seconds to a minute; the test suite runs them).
    #[arg(long)]
    pub quick: bool,
    /// A TOML file of settings laid over the defaults (or over --quick's): it names only what it
    /// changes, tables merged key by key; `diffsim experiment NAME --print-config` prints
    /// every setting.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the settings that would run (TOML) and stop.
    #[arg(long)]
    pub print_config: bool,
    /// Output folder (default out/NAME, out/NAME-quick with --quick): pictures, config.toml,
    /// results.json, results.md.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the named study and prints its page (or its JSON).
pub fn experiment(args: &ExperimentArgs) -> Result<()> {
    match args.name.as_str() {
        WakeFlow::NAME => run::<WakeFlow>(args),
        BurgersControl::NAME => run::<BurgersControl>(args),
        ShapeTransition::NAME => run::<ShapeTransition>(args),
        IndirectControl::NAME => run::<IndirectControl>(args),
        SmokeTarget::NAME => run::<SmokeTarget>(args),
        SpringCage::NAME => run::<SpringCage>(args),
        Bounce::NAME => run::<Bounce>(args),
        SoftbodyMaterial::NAME => run::<SoftbodyMaterial>(args),
        ClothThrow::NAME => run::<ClothThrow>(args),
        RigidTrajectory::NAME => run::<RigidTrajectory>(args),
        SpherePushing::NAME => run::<SpherePushing>(args),
        Billiards::NAME => run::<Billiards>(args),
        BoxToss::NAME => run::<BoxToss>(args),
        CartpoleSwingup::NAME => run::<CartpoleSwingup>(args),
        IkChain::NAME => run::<IkChain>(args),
        PendulumId::NAME => run::<PendulumId>(args),
        PandaReach::NAME => run::<PandaReach>(args),
        "list" => STUDIES
            .iter()
            .try_for_each(|(name, about)| out(&format!("{name:18} {about}"))),
        other => Err(DiffsimError::config(format!(
            "unknown experiment '{other}'; available: {}",
            STUDIES.map(|s| s.0).join(", ")
        ))),
    }
}

fn run<S: Study>(args: &ExperimentArgs) -> Result<()> {
    let base = if args.quick { S::quick() } else { S::full() };
    let cfg = match &args.config {
        Some(path) => read_over(path, &base)?,
        None => base,
    };
    if args.print_config {
        return out(toml::to_string(&cfg)
            .expect("settings serialise")
            .trim_end());
    }
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(S::default_out(args.quick)));
    let result = record::<S>(&cfg, &dir, &Bars::new(args.json))?;
    if args.json {
        json(&result)
    } else {
        out(S::report(&result, &dir).trim_end())?;
        out(&format!("pictures and results in {}", dir.display()))
    }
}
