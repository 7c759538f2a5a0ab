//! Warp's semi-implicit step for particles and rigid bodies together, with a hand-written
//! reverse-mode adjoint: the particles take [`crate::solids::explicit`]'s step and the bodies
//! [`crate::rigid::SemiImplicit`]'s, both under the coupling forces evaluated at the step's
//! start:
//!
//! - an attachment's spring and dashpot on the particle, `f_p = −g_d(d) − kd·ḋ` with
//!   `d = x_p − c − R a_b`, `ḋ = v_p − v − ω × R a_b` (`g_d = k·d` for a pin, else
//!   `k(|d| − L)d/|d|`), and `−f_p` on the body at `R a_b`;
//! - body–particle contact: the bodies' smooth law between the particle (a point of zero
//!   lever arm, with the particles' radius) and the body's signed distance in its frame, as
//!   between two bodies ([`crate::rigid::pairs::pair_force`]).
//!
//! The adjoint runs each side's step VJP (which gives the bars of the particles' total forces
//! and of the bodies' total wrenches) and continues those bars through the coupling forces.

use super::step::{active_contacts, contact_shapes};
use super::terms::attachment_force;
use super::{Attachment, AttachmentBar, CoupledBar, CoupledGrads, CoupledModel, CoupledState};
use crate::error::Result;
use crate::rigid::body::BodyState;
use crate::rigid::model::Wrench;
use crate::rigid::pairs::{self, PairForce};
use crate::rigid::semi_implicit::{RawBar, SemiImplicit, add_pair_bar};
use crate::rigid::{RigidGrads, so3};
use crate::solids::cloth_lanes::ClothLanes;
use crate::solids::contact::Shape;
use crate::solids::math::{M3, V3, dot, sub};
use crate::solids::{Params, explicit};

/// The semi-implicit coupled stepper with step `h` (s).
pub struct CoupledSemiImplicit<'a> {
    model: &'a CoupledModel,
    h: f64,
    rigid: SemiImplicit<'a>,
    cloth: ClothLanes,
    shapes: Vec<Option<Shape>>,
}

/// A semi-implicit coupled trajectory: the states, the initial one first.
pub struct CoupledSemiImplicitRollout {
    /// `steps + 1` states.
    pub states: Vec<CoupledState>,
}

/// An attachment's spring at a state: the world lever `a = R a_b`, the offset `d`, the spring
/// gradient `g_d` and Hessian `H_d`, and the force on the particle.
struct Spring {
    a: V3,
    g: V3,
    hess: M3,
    f: V3,
}

/// The coupling forces of a state: per particle (N) and per body (wrench about its centre).
struct Forces {
    particles: Vec<V3>,
    bodies: Vec<Wrench>,
}

/// The particle `p` of `s` as a body without rotation (for the pair contact law).
fn particle_state(s: &CoupledState, p: usize) -> BodyState {
    BodyState {
        v: s.v[p],
        ..BodyState::at(s.x[p])
    }
}

impl<'a> CoupledSemiImplicit<'a> {
    /// A stepper for `model` with step `h` (s).
    pub fn new(model: &'a CoupledModel, h: f64) -> Result<Self> {
        model.validate()?;
        Ok(Self {
            model,
            h,
            rigid: SemiImplicit::new(&model.rigid, h)?,
            cloth: ClothLanes::new(&model.soft.tris, &model.soft.bends),
            shapes: contact_shapes(model),
        })
    }

    fn spring(&self, at: &Attachment, s: &CoupledState) -> Spring {
        let sb = &s.bodies[at.body];
        let a = so3::mat_vec(&so3::to_matrix(sb.q), at.point);
        let d = sub(sub(s.x[at.particle], sb.c), a);
        let rate = sub(sub(s.v[at.particle], sb.v), so3::cross(sb.w, a));
        let elastic = Attachment {
            damping: 0.0,
            ..*at
        };
        let (_, g, hess) = attachment_force(&elastic, d, d, self.h, false);
        let f = std::array::from_fn(|i| -g[i] - at.damping * rate[i]);
        Spring { a, g, hess, f }
    }

    fn contact_force(&self, (p, b): (usize, usize), s: &CoupledState) -> PairForce {
        let shape = self.shapes[b].as_ref().expect("a contact has a shape");
        let sp = particle_state(s, p);
        pairs::pair_force(
            &self.model.rigid.contact,
            shape,
            [0.0; 3],
            &sp,
            &s.bodies[b],
        )
    }

    /// The coupling forces at `s` and the body–particle contacts that act.
    fn forces(&self, s: &CoupledState) -> (Forces, Vec<(usize, usize)>) {
        let m = self.model;
        let mut out = Forces {
            particles: vec![[0.0; 3]; m.soft.len()],
            bodies: vec![Wrench::default(); m.rigid.bodies.len()],
        };
        let mut add = |p: usize, b: usize, f: V3, lever: V3| {
            let w = &mut out.bodies[b];
            w.f = sub(w.f, f);
            w.t = sub(w.t, so3::cross(lever, f));
            out.particles[p] = so3::add(out.particles[p], f);
        };
        for at in &m.attachments {
            let sp = self.spring(at, s);
            add(at.particle, at.body, sp.f, sp.a);
        }
        let contacts = active_contacts(m, &self.shapes, self.h, s);
        for &(p, b) in &contacts {
            let pf = self.contact_force((p, b), s);
            add(p, b, pf.f, pf.d);
        }
        (out, contacts)
    }

    /// Step `n` from `s`.
    fn step(&self, n: usize, s: &CoupledState) -> CoupledState {
        let soft = &self.model.soft;
        let (coupling, _) = self.forces(s);
        let mut f = explicit::forces(soft, &self.cloth, n, (&s.x, &s.v));
        for (fp, c) in f.iter_mut().zip(&coupling.particles) {
            *fp = so3::add(*fp, *c);
        }
        let (x, v) = explicit::advance(soft, n, (&s.x, &s.v), &f, self.h);
        CoupledState {
            x,
            v,
            bodies: self.rigid.step(n, &s.bodies, &coupling.bodies),
        }
    }

    /// `steps` steps from `init`.
    pub fn rollout(&self, init: &CoupledState, steps: usize) -> Result<CoupledSemiImplicitRollout> {
        init.check(self.model, 0)?;
        let mut states = Vec::with_capacity(steps + 1);
        states.push(init.clone());
        for n in 0..steps {
            let next = self.step(n, &states[n]);
            next.check(self.model, n)?;
            states.push(next);
        }
        Ok(CoupledSemiImplicitRollout { states })
    }

    /// The VJP of the coupling forces at `s` (with its active body–particle `contacts`), given
    /// the bars `u` of the particles' total forces and `wrench_bars` of the bodies' total
    /// wrenches: adds into the particles' `(x̄, v̄)`, the bodies' raw bars (`prev`, rotation
    /// matrices' bars in `rbars`), the attachments' and the friction coefficient's bars.
    fn forces_vjp(
        &self,
        (s, contacts): (&CoupledState, &[(usize, usize)]),
        (u, wrench_bars): (&[V3], &[Wrench]),
        (xb, vb): (&mut [V3], &mut [V3]),
        (prev, rbars): (&mut [RawBar], &mut [M3]),
        (attachments, friction): (&mut [AttachmentBar], &mut f64),
    ) {
        for (at, abar) in self.model.attachments.iter().zip(attachments.iter_mut()) {
            let (p, b) = (at.particle, at.body);
            let (sp, sb, w) = (self.spring(at, s), &s.bodies[b], wrench_bars[b]);
            // The particle gets f, the body −f at a: f̄ = u_p − F̄ − T̄ × a, ā = T̄ × f.
            let fbar = sub(sub(u[p], w.f), so3::cross(w.t, sp.a));
            let mut abar_w = so3::cross(w.t, sp.f);
            // f = −g_d(d) − kd·ḋ.
            let dbar = so3::mat_vec(&sp.hess, fbar).map(|x| -x);
            let rate_bar = fbar.map(|x| -at.damping * x);
            abar.stiffness -= dot(sp.g, fbar) / at.stiffness;
            // d = x_p − c − a; ḋ = v_p − v − ω × a.
            let (wa, aw) = (so3::cross(sp.a, rate_bar), so3::cross(rate_bar, sb.w));
            for i in 0..3 {
                xb[p][i] += dbar[i];
                vb[p][i] += rate_bar[i];
                prev[b].c[i] -= dbar[i];
                prev[b].v[i] -= rate_bar[i];
                prev[b].w[i] -= wa[i];
                abar_w[i] -= dbar[i] + aw[i];
            }
            // a = R a_b.
            pairs::add_outer(&mut rbars[b], abar_w, at.point);
            let r = so3::to_matrix(sb.q);
            abar.point = so3::add(abar.point, so3::mat_t_vec(&r, abar_w));
        }
        for &(p, b) in contacts {
            let pf = self.contact_force((p, b), s);
            let w = wrench_bars[b];
            let sp = particle_state(s, p);
            let (bp, bbody) = pairs::pair_force_vjp(
                &pf,
                [0.0; 3],
                (&sp, &s.bodies[b]),
                (u[p], [0.0; 3]),
                (w.f, w.t),
            );
            for i in 0..3 {
                xb[p][i] += bp.c[i];
                vb[p][i] += bp.v[i];
            }
            *friction += bp.friction;
            add_pair_bar(&mut prev[b], &mut rbars[b], &bbody);
        }
    }

    /// Gradients given `bars[n]`, the loss's gradient with respect to every state (an empty
    /// entry, or empty vectors in it, are zero).
    pub fn adjoint(&self, run: &CoupledSemiImplicitRollout, bars: &[CoupledBar]) -> CoupledGrads {
        let (m, h) = (self.model, self.h);
        let (np, nb) = (m.soft.len(), m.rigid.bodies.len());
        let steps = run.states.len() - 1;
        let mut grads = CoupledGrads {
            soft: Params::zeros(&m.soft),
            rigid: RigidGrads::zeros(&m.rigid, steps),
            attachments: vec![AttachmentBar::default(); m.attachments.len()],
        };
        let seed = |n: usize| -> (Vec<V3>, Vec<V3>, Vec<RawBar>) {
            let bar = bars.get(n);
            let pick = |v: Option<&Vec<V3>>| v.filter(|v| !v.is_empty()).cloned();
            let x = pick(bar.map(|b| &b.x)).unwrap_or_else(|| vec![[0.0; 3]; np]);
            let v = pick(bar.map(|b| &b.v)).unwrap_or_else(|| vec![[0.0; 3]; np]);
            let bodies = (0..nb)
                .map(|b| {
                    bar.and_then(|c| c.bodies.get(b))
                        .map_or(RawBar::default(), |sb| {
                            RawBar::from_tangent(run.states[n].bodies[b].q, sb)
                        })
                })
                .collect();
            (x, v, bodies)
        };
        let (mut xb, mut vb, mut bodies) = seed(steps);
        for n in (0..steps).rev() {
            let s = &run.states[n];
            let (coupling, contacts) = self.forces(s);
            let u = explicit::step_vjp(
                &m.soft,
                &self.cloth,
                n,
                (&s.x, &s.v),
                h,
                (&mut xb, &mut vb),
                &mut grads.soft,
            );
            let mut prev =
                self.rigid
                    .step_vjp(n, &s.bodies, &coupling.bodies, &bodies, &mut grads.rigid);
            let mut rbars = vec![[[0.0; 3]; 3]; nb];
            self.forces_vjp(
                (s, &contacts),
                (&u, &grads.rigid.wrenches[n]),
                (&mut xb, &mut vb),
                (&mut prev, &mut rbars),
                (&mut grads.attachments, &mut grads.rigid.friction),
            );
            let (sx, sv, sb) = seed(n);
            for (b, p) in prev.iter_mut().enumerate() {
                let qr = so3::to_matrix_vjp(s.bodies[b].q, &rbars[b]);
                (0..4).for_each(|i| p.q[i] += qr[i]);
                p.add(&sb[b]);
            }
            for p in 0..np {
                for i in 0..3 {
                    xb[p][i] += sx[p][i];
                    vb[p][i] += sv[p][i];
                }
            }
            bodies = prev;
        }
        grads.soft.x0 = xb;
        grads.soft.v0 = vb;
        grads.rigid.init = bodies
            .iter()
            .enumerate()
            .map(|(b, bar)| bar.to_tangent(run.states[0].bodies[b].q))
            .collect();
        grads
    }
}
