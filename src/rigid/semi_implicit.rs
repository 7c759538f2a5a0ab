//! Warp's semi-implicit rigid-body step (`integrate_rigid_body`, Warp 1.9.1) with a
//! hand-written reverse-mode adjoint, for parity with the anchors:
//!
//! ```text
//! v₁ = v₀ + h(f/m + g)             c₁ = c₀ + h v₁
//! ω_b = Rᵀω₀                       τ_b = Rᵀτ − ω_b × (J ω_b)       (explicit gyroscopic term)
//! ω₁' = R(ω_b + h J⁻¹τ_b)          q₁ = normalize(q₀ + ½h (0, ω₁') ⊗ q₀)
//! ω₁ = (1 − α h) ω₁'
//! ```
//!
//! `f` and `τ` are the external wrench plus the contact forces at the bodies' points
//! `p = c₀ + R a` with velocities `v₀ + ω₀ × (R a)`, evaluated at the step's start. The
//! normalisation is differentiated (its Jacobian `(I − q̂q̂ᵀ)/|q|`), as it must be.

use super::balls;
use super::body::{BodyState, RigidBody, StateBar};
use super::model::{RigidModel, Wrench};
use super::pairs;
use super::sliding::{SlidingPoint, Target, WORLD};
use super::so3::{self, Quat};
use super::step_contacts::{ContactCandidates, StepContacts};
use crate::error::Result;
use crate::solids::contact::{self, Contact, Shape};
use crate::solids::math::{M3, V3, dot, sub};

/// Contact force and torque (about `c`) on a body at `s` from `obstacles`.
fn contact_wrench(body: &RigidBody, c: &Contact, obstacles: &[Shape], s: &BodyState) -> Wrench {
    let r_mat = so3::to_matrix(s.q);
    let mut w = Wrench::default();
    for a in &body.points {
        let r = so3::mat_vec(&r_mat, *a);
        let p = so3::add(s.c, r);
        let u = so3::add(s.v, so3::cross(s.w, r));
        for shape in obstacles {
            let (f, _, _) = contact::force(c, shape, p, u);
            w.f = so3::add(w.f, f);
            w.t = so3::add(w.t, so3::cross(r, f));
        }
    }
    w
}

/// One body's step from `s` under the external wrench `ext`.
pub fn step_body(
    model: &RigidModel,
    b: usize,
    obstacles: &[Shape],
    s: &BodyState,
    ext: Wrench,
    h: f64,
) -> BodyState {
    let body = &model.bodies[b];
    let cw = contact_wrench(body, &model.contact, obstacles, s);
    let f = so3::add(ext.f, cw.f);
    let t = so3::add(ext.t, cw.t);
    let v: V3 = std::array::from_fn(|i| s.v[i] + h * (f[i] / body.mass + model.gravity[i]));
    let c: V3 = std::array::from_fn(|i| s.c[i] + h * v[i]);
    let r = so3::to_matrix(s.q);
    let jinv = body.inertia_inv();
    let wb = so3::mat_t_vec(&r, s.w);
    let jw = so3::mat_vec(&body.inertia, wb);
    let tb = sub(so3::mat_t_vec(&r, t), so3::cross(wb, jw));
    let jt = so3::mat_vec(&jinv, tb);
    let wb1: V3 = std::array::from_fn(|i| wb[i] + h * jt[i]);
    let w1p = so3::mat_vec(&r, wb1);
    let dq = so3::g_mul(s.q, w1p);
    let qt: Quat = std::array::from_fn(|i| s.q[i] + 0.5 * h * dq[i]);
    let damp = 1.0 - model.angular_damping * h;
    BodyState {
        c,
        q: so3::normalize(qt),
        v,
        w: w1p.map(|x| damp * x),
    }
}

/// Raw-quaternion gradient of one body's state (`q̄` tangential).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RawBar {
    pub c: V3,
    pub q: Quat,
    pub v: V3,
    pub w: V3,
}

impl RawBar {
    pub(super) fn from_tangent(q: Quat, b: &StateBar) -> Self {
        Self {
            c: b.c,
            q: so3::quat_bar(q, b.theta),
            v: b.v,
            w: b.w,
        }
    }

    pub(super) fn to_tangent(self, q: Quat) -> StateBar {
        StateBar {
            c: self.c,
            theta: so3::tangent_bar(q, self.q),
            v: self.v,
            w: self.w,
        }
    }

    pub(super) fn add(&mut self, o: &RawBar) {
        (0..3).for_each(|i| {
            self.c[i] += o.c[i];
            self.v[i] += o.v[i];
            self.w[i] += o.w[i];
        });
        (0..4).for_each(|i| self.q[i] += o.q[i]);
    }
}

/// The bars of the contact parameters that the VJPs accumulate into.
struct ParamBars<'a> {
    /// Per contact point of the body (or of body A of a pair), its body-frame position.
    points: &'a mut [V3],
    /// The friction coefficient.
    friction: &'a mut f64,
}

/// The VJP of [`step_body`]: bars of the step's start state and of its external wrench;
/// the contact parameters' bars are added into `params`.
#[allow(clippy::too_many_arguments)]
fn step_body_vjp(
    model: &RigidModel,
    b: usize,
    obstacles: &[Shape],
    s: &BodyState,
    ext: Wrench,
    h: f64,
    out: &RawBar,
    params: ParamBars<'_>,
) -> (RawBar, Wrench) {
    let body = &model.bodies[b];
    let cw = contact_wrench(body, &model.contact, obstacles, s);
    let t = so3::add(ext.t, cw.t);
    let r = so3::to_matrix(s.q);
    let jinv = body.inertia_inv();
    let j = &body.inertia;
    let wb = so3::mat_t_vec(&r, s.w);
    let jw = so3::mat_vec(j, wb);
    let tb = sub(so3::mat_t_vec(&r, t), so3::cross(wb, jw));
    let jt = so3::mat_vec(&jinv, tb);
    let wb1: V3 = std::array::from_fn(|i| wb[i] + h * jt[i]);
    let w1p = so3::mat_vec(&r, wb1);
    let dq = so3::g_mul(s.q, w1p);
    let qt: Quat = std::array::from_fn(|i| s.q[i] + 0.5 * h * dq[i]);

    let mut bar = RawBar::default();
    let mut rb: M3 = [[0.0; 3]; 3];
    let damp = 1.0 - model.angular_damping * h;
    let mut w1pb = out.w.map(|x| damp * x);
    let qtb = so3::normalize_vjp(qt, out.q);
    // qt = q₀ + ½h (0, ω₁') ⊗ q₀.
    let lq = so3::left_pure_t_mul(w1p, qtb);
    let gw = so3::g_t_mul(s.q, qtb);
    (0..4).for_each(|i| bar.q[i] += qtb[i] + 0.5 * h * lq[i]);
    (0..3).for_each(|i| w1pb[i] += 0.5 * h * gw[i]);
    // ω₁' = R ω_b1.
    let wb1b = so3::mat_t_vec(&r, w1pb);
    add_outer(&mut rb, w1pb, wb1);
    // ω_b1 = ω_b + h J⁻¹ τ_b.
    let mut wbb = wb1b;
    let tbb = so3::mat_vec(&jinv, wb1b).map(|x| h * x);
    // τ_b = Rᵀτ − ω_b × (J ω_b).
    let tbar = so3::mat_vec(&r, tbb);
    add_outer(&mut rb, t, tbb);
    let yb = tbb.map(|x| -x);
    let a1 = so3::cross(jw, yb);
    let a2 = so3::mat_t_vec(j, so3::cross(yb, wb));
    (0..3).for_each(|i| wbb[i] += a1[i] + a2[i]);
    // ω_b = Rᵀω₀.
    let w0b = so3::mat_vec(&r, wbb);
    add_outer(&mut rb, s.w, wbb);
    // c₁ = c₀ + h v₁, v₁ = v₀ + h(f/m + g).
    let v1b: V3 = std::array::from_fn(|i| out.v[i] + h * out.c[i]);
    let fbar: V3 = v1b.map(|x| h * x / body.mass);
    (0..3).for_each(|i| {
        bar.c[i] += out.c[i];
        bar.v[i] += v1b[i];
        bar.w[i] += w0b[i];
    });
    // Contact at the points: f(p, u), p = c₀ + R a, u = v₀ + ω₀ × R a; τ += (R a) × f.
    for (a, ab) in body.points.iter().zip(params.points.iter_mut()) {
        let rr = so3::mat_vec(&r, *a);
        let p = so3::add(s.c, rr);
        let u = so3::add(s.v, so3::cross(s.w, rr));
        for shape in obstacles {
            let (f, jx, jv) = contact::force(&model.contact, shape, p, u);
            let fb = so3::add(fbar, so3::cross(tbar, rr));
            if model.contact.mu > 0.0 {
                let fm = contact::friction_force_per_mu(&model.contact, shape, p, u);
                *params.friction += dot(fb, fm);
            }
            let mut rrb = so3::cross(f, tbar);
            let pb = so3::mat_t_vec(&jx, fb);
            let ub = so3::mat_t_vec(&jv, fb);
            let wr = so3::cross(rr, ub);
            let uw = so3::cross(ub, s.w);
            (0..3).for_each(|i| {
                bar.c[i] += pb[i];
                bar.v[i] += ub[i];
                bar.w[i] += wr[i];
                rrb[i] += pb[i] + uw[i];
            });
            add_outer(&mut rb, rrb, *a);
            *ab = so3::add(*ab, so3::mat_t_vec(&r, rrb));
        }
    }
    let qr = so3::to_matrix_vjp(s.q, &rb);
    (0..4).for_each(|i| bar.q[i] += qr[i]);
    (bar, Wrench { f: fbar, t: tbar })
}

/// `M += u vᵀ`.
fn add_outer(m: &mut M3, u: V3, v: V3) {
    for i in 0..3 {
        for k in 0..3 {
            m[i][k] += u[i] * v[k];
        }
    }
}

/// A semi-implicit trajectory: `states[n][b]`, the initial states first.
pub struct SemiImplicitRollout {
    /// The states, `steps + 1` of them.
    pub states: Vec<Vec<BodyState>>,
}

/// Warp's semi-implicit stepper with time step `h` (s).
pub struct SemiImplicit<'a> {
    model: &'a RigidModel,
    h: f64,
    obstacles: Vec<Vec<Shape>>,
    candidates: ContactCandidates,
}

impl<'a> SemiImplicit<'a> {
    /// Checks the model and prepares the per-body obstacle lists and the contact pairs.
    pub fn new(model: &'a RigidModel, h: f64) -> Result<Self> {
        model.validate()?;
        super::check_dt(h)?;
        let obstacles = super::body_obstacles(model);
        Ok(Self {
            model,
            h,
            candidates: ContactCandidates::of(model, &obstacles),
            obstacles,
        })
    }

    /// The external wrench of every body in step `n` plus the contact forces between bodies
    /// and of the sliding points at `states`, and the contacts that acted.
    fn wrenches(&self, n: usize, states: &[BodyState]) -> (Vec<Wrench>, StepContacts) {
        let mut w: Vec<Wrench> = (0..states.len()).map(|b| self.model.wrench(n, b)).collect();
        let active = StepContacts::at(
            self.model,
            &self.candidates,
            &self.obstacles,
            states,
            self.h,
        );
        for sp in &active.sliding {
            let (shape, sb) = sp.frame(self.model, &self.obstacles, states);
            let p = pairs::pair_force(&self.model.contact, &shape, sp.point, &states[sp.body], sb);
            let ib = match sp.target {
                Target::Body(ib) => Some(ib),
                Target::Obstacle(_) => None,
            };
            exchange(&mut w, (Some(sp.body), ib), &p, sp.weight);
        }
        for &(k, b) in &active.balls {
            let (centre, shape) = balls::geometry(self.model, (k, b));
            let p = pairs::pair_force(&self.model.contact, &shape, centre, &WORLD, &states[b]);
            exchange(&mut w, (None, Some(b)), &p, 1.0);
        }
        for &(ia, ib) in &active.pairs {
            let shape = pairs::pair_shape(self.model, (ia, ib));
            for ab in &self.model.bodies[ia].points {
                let p =
                    pairs::pair_force(&self.model.contact, &shape, *ab, &states[ia], &states[ib]);
                exchange(&mut w, (Some(ia), Some(ib)), &p, 1.0);
            }
        }
        (w, active)
    }

    /// The VJP of a sliding point's weighted force `w·f` (in the wrenches whose bars are
    /// `wrench_bars`): into the bars of the states (`prev`, with the rotation matrices' in
    /// `rbars`) through the force, its point `p(t*)` and its weight `w`, and the friction's.
    fn sliding_vjp(
        &self,
        sp: &SlidingPoint,
        states: &[BodyState],
        wrench_bars: &[Wrench],
        (prev, rbars, friction): (&mut [RawBar], &mut [M3], &mut f64),
    ) {
        let (shape, sb) = sp.frame(self.model, &self.obstacles, states);
        let ia = sp.body;
        let sa = &states[ia];
        let p = pairs::pair_force(&self.model.contact, &shape, sp.point, sa, sb);
        let wa = wrench_bars[ia];
        let wb = match sp.target {
            Target::Body(ib) => wrench_bars[ib],
            Target::Obstacle(_) => Wrench::default(),
        };
        let scale = |v: V3| v.map(|x| sp.weight * x);
        let (ba, bb) = pairs::pair_force_vjp(
            &p,
            sp.point,
            (sa, sb),
            (scale(wa.f), scale(wa.t)),
            (scale(wb.f), scale(wb.t)),
        );
        let weight_bar = dot(wa.f, p.f) + dot(wa.t, so3::cross(p.a, p.f))
            - dot(wb.f, p.f)
            - dot(wb.t, so3::cross(p.d, p.f));
        *friction += ba.friction;
        let start = sp.start_bars(ba.point, weight_bar);
        let mut sides = vec![(ia, ba, &start[..6])];
        if let Target::Body(ib) = sp.target {
            sides.push((ib, bb, &start[6..]));
        }
        for (k, bar, moved) in sides {
            add_pair_bar(&mut prev[k], &mut rbars[k], &bar);
            let q = so3::quat_bar(states[k].q, [moved[3], moved[4], moved[5]]);
            (0..3).for_each(|i| prev[k].c[i] += moved[i]);
            (0..4).for_each(|i| prev[k].q[i] += q[i]);
        }
    }

    /// Step `n` from `states` with `extra` added to each body's wrench (forces a coupled
    /// step adds; empty: none).
    pub(super) fn step(&self, n: usize, states: &[BodyState], extra: &[Wrench]) -> Vec<BodyState> {
        let (w, _) = self.wrenches(n, states);
        states
            .iter()
            .enumerate()
            .map(|(b, s)| {
                let w = plus(w[b], extra.get(b));
                step_body(self.model, b, &self.obstacles[b], s, w, self.h)
            })
            .collect()
    }

    /// `steps` steps from `init`.
    pub fn rollout(&self, init: &[BodyState], steps: usize) -> Result<SemiImplicitRollout> {
        self.model.check_states(init)?;
        let mut states = Vec::with_capacity(steps + 1);
        states.push(init.to_vec());
        for n in 0..steps {
            let next = self.step(n, &states[n], &[]);
            super::check_finite(n, &next)?;
            states.push(next);
        }
        Ok(SemiImplicitRollout { states })
    }

    /// The VJP of [`Self::step`]: from the bars of the new states, the bars of `states`
    /// (without any seed of the loss at step `n`); sets `grads.wrenches[n]` to the bars of the
    /// bodies' total wrenches (the external one's, and that of `extra`) and adds the contact
    /// parameters' bars.
    pub(super) fn step_vjp(
        &self,
        n: usize,
        states: &[BodyState],
        extra: &[Wrench],
        bars: &[RawBar],
        grads: &mut super::RigidGrads,
    ) -> Vec<RawBar> {
        let nb = self.model.bodies.len();
        let (w, active) = self.wrenches(n, states);
        let mut prev = Vec::with_capacity(nb);
        for b in 0..nb {
            let params = ParamBars {
                points: &mut grads.points[b],
                friction: &mut grads.friction,
            };
            let (p, wb) = step_body_vjp(
                self.model,
                b,
                &self.obstacles[b],
                &states[b],
                plus(w[b], extra.get(b)),
                self.h,
                &bars[b],
                params,
            );
            grads.wrenches[n][b] = wb;
            prev.push(p);
        }
        // The pair forces were part of each body's wrench: their bars are the wrench bars.
        let mut rbars = vec![[[0.0; 3]; 3]; nb];
        for sp in &active.sliding {
            let bars = (&mut prev[..], &mut rbars[..], &mut grads.friction);
            self.sliding_vjp(sp, states, &grads.wrenches[n], bars);
        }
        for &(ia, ib) in &active.pairs {
            let shape = pairs::pair_shape(self.model, (ia, ib));
            let (wa, wb) = (grads.wrenches[n][ia], grads.wrenches[n][ib]);
            for (k, ab) in self.model.bodies[ia].points.iter().enumerate() {
                let (sa, sb) = (&states[ia], &states[ib]);
                let p = pairs::pair_force(&self.model.contact, &shape, *ab, sa, sb);
                let (ba, bb) = pairs::pair_force_vjp(&p, *ab, (sa, sb), (wa.f, wa.t), (wb.f, wb.t));
                grads.points[ia][k] = so3::add(grads.points[ia][k], ba.point);
                grads.friction += ba.friction;
                for (k, bar) in [(ia, ba), (ib, bb)] {
                    add_pair_bar(&mut prev[k], &mut rbars[k], &bar);
                }
            }
        }
        for &(k, b) in &active.balls {
            let (centre, shape) = balls::geometry(self.model, (k, b));
            let sb = &states[b];
            let p = pairs::pair_force(&self.model.contact, &shape, centre, &WORLD, sb);
            let wb = grads.wrenches[n][b];
            let none = ([0.0; 3], [0.0; 3]);
            let (ba, bb) = pairs::pair_force_vjp(&p, centre, (&WORLD, sb), none, (wb.f, wb.t));
            grads.friction += ba.friction;
            add_pair_bar(&mut prev[b], &mut rbars[b], &bb);
        }
        if !(active.pairs.is_empty() && active.sliding.is_empty() && active.balls.is_empty()) {
            for (b, p) in prev.iter_mut().enumerate() {
                let qr = so3::to_matrix_vjp(states[b].q, &rbars[b]);
                (0..4).for_each(|i| p.q[i] += qr[i]);
            }
        }
        prev
    }

    /// Gradients of a loss given its gradients `state_bars[n][b]` with respect to every state
    /// (an empty entry is zero), through the whole rollout.
    pub fn adjoint(
        &self,
        run: &SemiImplicitRollout,
        state_bars: &[Vec<StateBar>],
    ) -> super::RigidGrads {
        let steps = run.states.len() - 1;
        let nb = self.model.bodies.len();
        let mut grads = super::RigidGrads::zeros(self.model, steps);
        let seed = |n: usize, b: usize| -> RawBar {
            state_bars
                .get(n)
                .and_then(|v| v.get(b))
                .map_or(RawBar::default(), |sb| {
                    RawBar::from_tangent(run.states[n][b].q, sb)
                })
        };
        let mut bars: Vec<RawBar> = (0..nb).map(|b| seed(steps, b)).collect();
        for n in (0..steps).rev() {
            let mut prev = self.step_vjp(n, &run.states[n], &[], &bars, &mut grads);
            for (b, p) in prev.iter_mut().enumerate() {
                p.add(&seed(n, b));
            }
            bars = prev;
        }
        grads.init = bars
            .iter()
            .enumerate()
            .map(|(b, bar)| bar.to_tangent(run.states[0][b].q))
            .collect();
        grads
    }
}

/// Adds a pair force `weight·f` to the wrenches: `f` at `a` on body A and `−f` at `d` on body
/// B (a side that is the world takes nothing).
fn exchange(
    w: &mut [Wrench],
    (ia, ib): (Option<usize>, Option<usize>),
    p: &pairs::PairForce,
    weight: f64,
) {
    let f = p.f.map(|x| weight * x);
    if let Some(ia) = ia {
        w[ia].f = so3::add(w[ia].f, f);
        w[ia].t = so3::add(w[ia].t, so3::cross(p.a, f));
    }
    if let Some(ib) = ib {
        w[ib].f = sub(w[ib].f, f);
        w[ib].t = sub(w[ib].t, so3::cross(p.d, f));
    }
}

/// A wrench plus an optional extra one.
fn plus(w: Wrench, extra: Option<&Wrench>) -> Wrench {
    extra.map_or(w, |e| Wrench {
        f: so3::add(w.f, e.f),
        t: so3::add(w.t, e.t),
    })
}

/// Adds one side's bars of a pair force's VJP into a body's raw bar (`c`, `v`, `ω`) and its
/// rotation matrix's bar.
pub(super) fn add_pair_bar(prev: &mut RawBar, rbar: &mut M3, bar: &pairs::PairBar) {
    for i in 0..3 {
        prev.c[i] += bar.c[i];
        prev.v[i] += bar.v[i];
        prev.w[i] += bar.w[i];
    }
    for (row, add) in rbar.iter_mut().zip(&bar.r) {
        for (r, a) in row.iter_mut().zip(add) {
            *r += a;
        }
    }
}
