//! Gradient checks of the rigid–soft coupled step: a rigid bar holding a small cloth by
//! pins (and a rope to a fixed point), and a soft tetrahedral block sliding on a tumbling
//! box that lies on the ground; each differentiated with respect to the initial states
//! (rotations perturbed as `exp([δθ]×)·R`), every step's wrenches and particle controls, and
//! the coupling parameters (attachment points and stiffnesses, or the friction coefficient),
//! against central finite differences of the same rollout.

use super::checker::{GradCheckConfig, GradCheckReport, check_flat};
use crate::error::{DiffsimError, Result};
use crate::rigid::{
    Attachment, BodyShape, BodyState, Coupled, CoupledBar, CoupledGrads, CoupledModel,
    CoupledSemiImplicit, CoupledState, RigidBody, RigidModel, StateBar, Wrench, so3,
};
use crate::solids::cloth::ClothMaterial;
use crate::solids::contact::{Contact, Shape};
use crate::solids::fem::Tet;
use crate::solids::math::V3;
use crate::solids::{Model, scenes};

/// Steps and step length of both checks.
const STEPS: usize = 10;
const H: f64 = 0.01;
/// Steps of the semi-implicit checks over the same 0.1 s.
const EXPLICIT_STEPS: usize = 100;

/// The bar scene: a 0.4 m × 0.05 m × 0.05 m box body, tumbling slowly, holding a 2×2-cell
/// cloth (0.1 m cells, hanging below it) by pins at its two upper corners (one damped), a
/// spring of rest length 3 cm to the cloth's middle, and a rope (rest 0.25 m) to a fixed
/// particle above; a wrench and controls on every step.
fn bar_scene(steps: usize) -> Result<(CoupledModel, CoupledState)> {
    let material = ClothMaterial {
        tri_ke: 200.0,
        tri_ka: 200.0,
        tri_kd: 2.0,
        edge_ke: 0.5,
        ..ClothMaterial::default()
    };
    let (mut soft, mut x, mut v) =
        scenes::cloth_grid((2, 2), 0.1, 0.0, [0.1, 0.0, -0.2], 0.02, &material)?;
    // The cloth hangs from y = 0.2 down to 0; a fixed anchor above the bar.
    soft.mass.push(0.0);
    x.push([0.1, 0.6, 0.0]);
    v.push([0.0; 3]);
    let np = x.len();
    soft.controls = (0..steps)
        .map(|n| {
            (0..np)
                .map(|p| [0.01 * (0.7 * (n + p) as f64).sin(), 0.005, -0.01])
                .collect()
        })
        .collect();
    let bar = RigidBody::from_shape(
        &BodyShape::Box {
            half: [0.2, 0.025, 0.025],
        },
        400.0,
    )?;
    let rigid = RigidModel {
        bodies: vec![bar],
        gravity: soft.gravity,
        wrenches: (0..steps)
            .map(|n| {
                vec![Wrench {
                    f: [0.2 * (0.3 * n as f64).sin(), 2.0, 0.1],
                    t: [0.01, -0.02, 0.015 * (0.5 * n as f64).cos()],
                }]
            })
            .collect(),
        ..RigidModel::default()
    };
    let attachments = vec![
        Attachment {
            damping: 0.5,
            ..Attachment::pin(0, [-0.1, -0.02, 0.0], 6, 400.0)
        },
        Attachment::pin(0, [0.12, -0.03, 0.01], 8, 300.0),
        Attachment {
            rest: 0.03,
            ..Attachment::pin(0, [0.0, -0.01, 0.02], 4, 150.0)
        },
        Attachment {
            rest: 0.25,
            damping: 0.2,
            ..Attachment::pin(0, [0.05, 0.02, 0.0], np - 1, 200.0)
        },
    ];
    let model = CoupledModel {
        soft,
        rigid,
        attachments,
        ..CoupledModel::default()
    };
    let init = CoupledState {
        x,
        v,
        bodies: vec![BodyState {
            c: [0.1, 0.24, 0.0],
            q: so3::normalize([0.98, 0.05, -0.1, 0.12]),
            v: [0.0, 0.1, 0.05],
            w: [0.3, -0.5, 0.8],
        }],
    };
    Ok((model, init))
}

/// The block scene: a soft cube (8 nodes, 5 stable Neo-Hookean tetrahedra, 0.1 m) sliding
/// across the top of a box body (0.3 × 0.05 × 0.3 m, rocking) that lies on the ground, with
/// friction and damping between all of them; a wrench on the box and controls on the cube.
fn block_scene(steps: usize) -> Result<(CoupledModel, CoupledState)> {
    let cell = 0.1;
    let corners: Vec<V3> = (0..8)
        .map(|k| {
            let (i, j, l) = (k & 1, (k >> 1) & 1, (k >> 2) & 1);
            [
                i as f64 * cell - 0.05,
                0.1 + 0.001 + j as f64 * cell,
                l as f64 * cell - 0.05,
            ]
        })
        .collect();
    let tets = [
        [1, 5, 3, 0],
        [4, 0, 6, 5],
        [2, 6, 0, 3],
        [7, 3, 5, 6],
        [3, 5, 6, 0],
    ]
    .iter()
    .map(|t| Tet::new(*t, &corners, 2e3, 5e3))
    .collect::<Result<Vec<_>>>()?;
    let np = corners.len();
    let contact = Contact {
        ke: 3e3,
        kd: 5.0,
        mu: 0.4,
        smoothing: 0.003,
    };
    let soft = Model {
        mass: vec![0.05; np],
        gravity: [0.0, -9.81, 0.0],
        tets,
        controls: (0..steps)
            .map(|n| {
                (0..np)
                    .map(|p| [0.05 * ((n * p) as f64).cos(), 0.0, 0.02])
                    .collect()
            })
            .collect(),
        ..Model::default()
    };
    let slab = RigidBody::from_shape(
        &BodyShape::Box {
            half: [0.15, 0.025, 0.15],
        },
        300.0,
    )?;
    let rigid = RigidModel {
        bodies: vec![slab],
        gravity: soft.gravity,
        obstacles: vec![Shape::Plane {
            normal: [0.0, 1.0, 0.0],
            offset: 0.0,
        }],
        contact,
        wrenches: (0..steps)
            .map(|n| {
                vec![Wrench {
                    f: [1.0, 0.5 * (0.4 * n as f64).cos(), 0.0],
                    t: [0.0, 0.05, -0.02],
                }]
            })
            .collect(),
        ..RigidModel::default()
    };
    let model = CoupledModel {
        soft,
        rigid,
        particle_contact: true,
        particle_radius: 0.025,
        ..CoupledModel::default()
    };
    let init = CoupledState {
        x: corners,
        v: vec![[0.6, -0.1, 0.1]; np],
        bodies: vec![BodyState {
            c: [0.0, 0.024, 0.0],
            q: so3::normalize([1.0, 0.01, 0.0, -0.015]),
            v: [0.0, 0.0, 0.0],
            w: [0.1, 0.0, 0.2],
        }],
    };
    Ok((model, init))
}

/// `L = Σ (w·x + z·v)` over the particles and `Σ (w·c + u·(R a) + z·v + y·ω)` over the bodies,
/// at the last state and one in the middle, with its gradients.
fn loss(states: &[CoupledState]) -> (f64, Vec<CoupledBar>) {
    let last = states.len() - 1;
    let mut bars = vec![CoupledBar::default(); states.len()];
    let mut total = 0.0;
    let weight = |k: usize| -> V3 { std::array::from_fn(|a| (1.3 * (k + a) as f64 + 0.7).sin()) };
    let dot = |p: V3, q: V3| p[0] * q[0] + p[1] * q[1] + p[2] * q[2];
    for n in [last / 2, last] {
        let s = &states[n];
        let scale = if n == last { 1.0 } else { 0.5 };
        let bar = &mut bars[n];
        for (p, (x, v)) in s.x.iter().zip(&s.v).enumerate() {
            let (w, z) = (
                weight(2 * p).map(|c| c * scale),
                weight(2 * p + 1).map(|c| 0.1 * c),
            );
            total += dot(w, *x) + dot(z, *v);
            bar.x.push(w);
            bar.v.push(z);
        }
        for (b, s) in s.bodies.iter().enumerate() {
            let (w, u, z, y) = (
                weight(b + 40),
                weight(b + 41),
                weight(b + 42),
                weight(b + 43),
            );
            let w = w.map(|c| c * scale);
            let ra = so3::mat_vec(&so3::to_matrix(s.q), [0.2, -0.1, 0.15]);
            total += dot(w, s.c) + dot(u, ra) + dot(z, s.v) + 0.1 * dot(y, s.w);
            bar.bodies.push(StateBar {
                c: w,
                theta: so3::cross(ra, u),
                v: z,
                w: y.map(|c| 0.1 * c),
            });
        }
    }
    (total, bars)
}

/// The loss of a backward-Euler rollout and its gradients.
fn rollout_loss(m: &CoupledModel, s: &CoupledState) -> Result<(f64, CoupledGrads)> {
    let st = Coupled::new(m, H)?;
    let run = st.rollout(s, STEPS)?;
    let (l, bars) = loss(&run.states);
    Ok((l, st.adjoint(&run, &bars)))
}

/// The loss of a semi-implicit rollout over the same time ([`EXPLICIT_STEPS`] of
/// `H·STEPS/EXPLICIT_STEPS`) and its gradients.
fn explicit_rollout_loss(m: &CoupledModel, s: &CoupledState) -> Result<(f64, CoupledGrads)> {
    let st = CoupledSemiImplicit::new(m, H * STEPS as f64 / EXPLICIT_STEPS as f64)?;
    let run = st.rollout(s, EXPLICIT_STEPS)?;
    let (l, bars) = loss(&run.states);
    Ok((l, st.adjoint(&run, &bars)))
}

/// The perturbation `p` applied to the scene, in [`flat`]'s layout: every particle's δx₀ and
/// δv₀, every body's δc, δθ, δv, δω, every step's controls and wrenches, then the attachments'
/// points and stiffnesses and (with body–particle contact) the friction coefficient.
fn perturbed(model: &CoupledModel, init: &CoupledState, p: &[f64]) -> (CoupledModel, CoupledState) {
    let mut k = 0;
    let mut next = || -> V3 {
        k += 3;
        [p[k - 3], p[k - 2], p[k - 1]]
    };
    let (mut m, mut s) = (model.clone(), init.clone());
    for x in s.x.iter_mut().chain(s.v.iter_mut()) {
        *x = so3::add(*x, next());
    }
    for b in &mut s.bodies {
        b.c = so3::add(b.c, next());
        b.q = so3::quat_mul(so3::exp_quat(next()), b.q);
        b.v = so3::add(b.v, next());
        b.w = so3::add(b.w, next());
    }
    for u in m.soft.controls.iter_mut().flatten() {
        *u = so3::add(*u, next());
    }
    for w in m.rigid.wrenches.iter_mut().flatten() {
        w.f = so3::add(w.f, next());
        w.t = so3::add(w.t, next());
    }
    for a in &mut m.attachments {
        a.point = so3::add(a.point, next());
    }
    let rest = &p[k..];
    for (a, dk) in m.attachments.iter_mut().zip(rest) {
        a.stiffness += dk;
    }
    if m.particle_contact {
        m.rigid.contact.mu += rest[m.attachments.len()];
    }
    (m, s)
}

/// The gradient in [`perturbed`]'s layout (the friction coefficient only with body–particle
/// contact).
fn flat(g: &CoupledGrads, contact: bool) -> Vec<f64> {
    let mut out: Vec<f64> = g
        .soft
        .x0
        .iter()
        .chain(&g.soft.v0)
        .flatten()
        .copied()
        .collect();
    for s in &g.rigid.init {
        out.extend(s.c.iter().chain(&s.theta).chain(&s.v).chain(&s.w));
    }
    out.extend(g.soft.controls.iter().flatten().flatten());
    for w in g.rigid.wrenches.iter().flatten() {
        out.extend(w.f.iter().chain(&w.t));
    }
    out.extend(g.attachments.iter().flat_map(|a| a.point));
    out.extend(g.attachments.iter().map(|a| a.stiffness));
    if contact {
        out.push(g.rigid.friction);
    }
    out
}

/// Runs the coupled check `name` (`rigid-coupled-attachments` or `rigid-coupled-contact`).
pub fn run(name: &str, cfg: &GradCheckConfig) -> Result<GradCheckReport> {
    let explicit = name.contains("-semi-implicit");
    // Controls and wrenches for every step of the rollout.
    let steps = if explicit { EXPLICIT_STEPS } else { STEPS };
    let (model, init) = match name.replace("-semi-implicit", "").as_str() {
        "rigid-coupled-attachments" => bar_scene(steps)?,
        "rigid-coupled-contact" => block_scene(steps)?,
        other => {
            return Err(DiffsimError::config(format!(
                "unknown coupled gradcheck '{other}'"
            )));
        }
    };
    let rollout_loss = if explicit {
        explicit_rollout_loss
    } else {
        rollout_loss
    };
    let (_, grads) = rollout_loss(&model, &init)?;
    let f = |p: &[f64]| {
        let (m, s) = perturbed(&model, &init, p);
        rollout_loss(&m, &s).map_or(f64::NAN, |(l, _)| l)
    };
    Ok(check_flat(
        name,
        &flat(&grads, model.particle_contact),
        &f,
        6,
        cfg,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry of the gradient of `rollout_loss` at the scene against central
    /// differences of step `eps`: the worst error relative to the largest entry, the entry
    /// and the number of entries.
    fn worst_entry(
        model: &CoupledModel,
        init: &CoupledState,
        rollout_loss: fn(&CoupledModel, &CoupledState) -> Result<(f64, CoupledGrads)>,
        eps: f64,
    ) -> (f64, usize, usize) {
        let (_, grads) = rollout_loss(model, init).unwrap();
        let g = flat(&grads, model.particle_contact);
        let scale = g.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        let mut worst = (0.0f64, 0);
        for k in 0..g.len() {
            let mut p = vec![0.0; g.len()];
            p[k] = eps;
            let (mp, sp) = perturbed(model, init, &p);
            p[k] = -eps;
            let (mm, sm) = perturbed(model, init, &p);
            let fd = (rollout_loss(&mp, &sp).unwrap().0 - rollout_loss(&mm, &sm).unwrap().0)
                / (2.0 * eps);
            let err = (fd - g[k]).abs() / scale;
            if err > worst.0 {
                worst = (err, k);
            }
        }
        (worst.0, worst.1, g.len())
    }

    /// Every entry of both scenes' gradients against central differences, to 1e-6 of the
    /// largest entry; the block scene keeps its contacts active and rubbing throughout.
    #[test]
    fn every_coupled_gradient_entry_matches_central_differences() {
        for (model, init) in [bar_scene(STEPS).unwrap(), block_scene(STEPS).unwrap()] {
            if model.particle_contact {
                let st = Coupled::new(&model, H).unwrap();
                let per_step = st.rollout(&init, STEPS).unwrap().contacts_per_step();
                assert!(per_step.iter().all(|&c| c >= 4), "{per_step:?}");
            }
            let (worst, k, n) = worst_entry(&model, &init, rollout_loss, 1e-6);
            println!("backward Euler: {n} entries, worst {worst:e} at {k}");
            assert!(worst < 1e-6);
        }
    }

    /// The same for Warp's semi-implicit coupled step over the same 0.1 s in 100 steps, with
    /// differences of step 1e-7: the slab's height on the ground is strongly curved there (its
    /// derivative 5.4512930 reads 5.4314897, 5.4510948, 5.4512910, 5.4512930 at steps 1e-5,
    /// 1e-6, 1e-7, 1e-8: an error falling as the step squared).
    #[test]
    fn every_semi_implicit_coupled_gradient_entry_matches_central_differences() {
        for (model, init) in [
            bar_scene(EXPLICIT_STEPS).unwrap(),
            block_scene(EXPLICIT_STEPS).unwrap(),
        ] {
            let (worst, k, n) = worst_entry(&model, &init, explicit_rollout_loss, 1e-7);
            println!("semi-implicit: {n} entries, worst {worst:e} at {k}");
            assert!(worst < 1e-6);
        }
    }
}
