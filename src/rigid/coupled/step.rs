//! The coupled backward-Euler step: the frozen contacts of a step, the joint residual and its
//! sparse Jacobian, and Newton's method over particles and bodies.

use super::terms::{self, Local};
use super::{CoupledModel, CoupledState};
use crate::error::{DiffsimError, Result};
use crate::rigid::body::BodyState;
use crate::rigid::pairs::extent;
use crate::rigid::so3::{self, Quat};
use crate::rigid::step_contacts::StepContacts;
use crate::rigid::{Implicit as RigidImplicit, RigidScheme};
use crate::solids::contact::{self, Shape};
use crate::solids::implicit::{Implicit as SoftImplicit, Lagged, NewtonConfig};
use crate::solids::math::{M3, V3, dot, sub};
use faer::Mat;
use faer::linalg::solvers::Solve;
use faer::sparse::linalg::solvers::{Lu, SymbolicLu};
use faer::sparse::{SparseColMat, Triplet};

/// The coupled stepper (backward Euler, step `h`).
pub struct Coupled<'a> {
    pub(super) model: &'a CoupledModel,
    pub(super) h: f64,
    pub(super) soft: SoftImplicit<'a>,
    pub(super) rigid: RigidImplicit<'a>,
    /// Per body: its signed distance grown by the particles' radius (None: no contact).
    pub(super) shapes: Vec<Option<Shape>>,
    tol: f64,
    max_iters: usize,
}

/// What a step froze at its start and keeps for its adjoint.
pub(super) struct Tape {
    /// The active body pairs and sliding points.
    pub bodies: StepContacts,
    /// The active body–particle contacts `(particle, body)`.
    pub contacts: Vec<(usize, usize)>,
    /// The converged Newton matrix's LU.
    pub lu: Lu<usize, f64>,
}

/// A coupled trajectory with what the adjoint needs.
pub struct CoupledRollout {
    /// The states, the initial one first.
    pub states: Vec<CoupledState>,
    pub(super) tapes: Vec<Tape>,
    /// Newton iterations per step.
    pub newton_iters: Vec<usize>,
}

/// The iterate of a Newton solve: particle positions and body `(c, q)`.
type Iterate = (Vec<V3>, Vec<(V3, Quat)>);

/// The joint system at an iterate: residual, Jacobian entries (when asked for) and `Φ`.
struct System {
    g: Vec<f64>,
    entries: Vec<Triplet<usize, usize, f64>>,
    phi: f64,
}

impl CoupledRollout {
    /// Body–particle contacts active per step.
    pub fn contacts_per_step(&self) -> Vec<usize> {
        self.tapes.iter().map(|t| t.contacts.len()).collect()
    }
}

impl<'a> Coupled<'a> {
    /// A stepper for `model` with step `h` (s).
    pub fn new(model: &'a CoupledModel, h: f64) -> Result<Self> {
        model.validate()?;
        let soft = SoftImplicit::new(&model.soft, h, NewtonConfig::default())?;
        let rigid = RigidImplicit::new(&model.rigid, h, RigidScheme::BackwardEuler)?;
        Ok(Self {
            model,
            h,
            soft,
            rigid,
            shapes: contact_shapes(model),
            tol: 1e-13,
            max_iters: 50,
        })
    }

    /// Unknowns: 3 per free particle, then 6 per body.
    fn unknowns(&self) -> usize {
        self.soft.unknowns() + 6 * self.model.rigid.bodies.len()
    }

    /// The body–particle contacts that act in a step from `s` (frozen for the step).
    fn active_contacts(&self, s: &CoupledState) -> Vec<(usize, usize)> {
        active_contacts(self.model, &self.shapes, self.h, s)
    }

    /// The coupling terms at an iterate, each with its particle and body.
    pub(super) fn coupling_terms(
        &self,
        tape: (&[(usize, usize)], &CoupledState),
        (x, it): (&[V3], &[(V3, Quat)]),
        rot: &[M3],
        project: bool,
    ) -> Vec<(usize, usize, Local)> {
        let (contacts, start) = tape;
        let (m, h) = (self.model, self.h);
        let mut out = Vec::new();
        for at in &m.attachments {
            let (p, b) = (at.particle, at.body);
            let body = (it[b].0, &rot[b]);
            let local =
                terms::attachment(at, (x[p], start.x[p]), body, &start.bodies[b], h, project);
            out.push((p, b, local));
        }
        for &(p, b) in contacts {
            let shape = self.shapes[b].as_ref().expect("a contact has a shape");
            let body = (it[b].0, &rot[b]);
            let local = terms::particle_contact(
                &m.rigid.contact,
                shape,
                (x[p], start.x[p]),
                body,
                &start.bodies[b],
                h,
            );
            out.push((p, b, local));
        }
        out
    }

    /// The joint residual, Jacobian entries (when `hessian`) and `Φ` (without the torques'
    /// work) at the iterate `(x, it)` of step `n`.
    fn system(
        &self,
        n: usize,
        (tape, start, lag): (&Frozen, &CoupledState, &Lagged),
        (x, it): (&[V3], &[(V3, Quat)]),
        (hessian, project): (bool, bool),
    ) -> System {
        let ns = self.soft.unknowns();
        let nb = self.model.rigid.bodies.len();
        let (gs, phis) = self.soft.gradient(x, (&start.x, &start.v), lag);
        let mut g = gs;
        g.resize(self.unknowns(), 0.0);
        let mut entries = Vec::new();
        if hessian {
            for t in self
                .soft
                .hessian_entries((x, &start.x), lag, (project, 0.0))
            {
                entries.push(t);
                if t.row != t.col {
                    entries.push(Triplet::new(t.col, t.row, t.val));
                }
            }
        }
        let bodies: Vec<usize> = (0..nb).collect();
        let (mut gb, mut kb, phib) =
            self.rigid
                .potential_system(n, &bodies, &tape.bodies, &start.bodies, it);
        let mut phi = phis + phib;
        let rot: Vec<M3> = it.iter().map(|(_, q)| so3::to_matrix(*q)).collect();
        for (p, b, local) in self.coupling_terms((&tape.contacts, start), (x, it), &rot, project) {
            phi += local.phi;
            let row = |i: usize| -> Option<Place> {
                if i < 3 {
                    self.soft.index[p].map(|k| Place::Soft(3 * k + i))
                } else {
                    Some(Place::Body(6 * b + i - 3))
                }
            };
            for i in 0..9 {
                match row(i) {
                    Some(Place::Soft(r)) => g[r] += local.g[i],
                    Some(Place::Body(r)) => gb[r] += local.g[i],
                    None => {}
                }
            }
            if !hessian {
                continue;
            }
            for i in 0..9 {
                for j in 0..9 {
                    let v = local.k[(i, j)];
                    match (row(i), row(j)) {
                        (Some(Place::Body(r)), Some(Place::Body(c))) => kb[(r, c)] += v,
                        (Some(ri), Some(ci)) => {
                            entries.push(Triplet::new(ri.global(ns), ci.global(ns), v))
                        }
                        _ => {}
                    }
                }
            }
        }
        self.rigid.add_connection(n, &bodies, &mut gb, &mut kb);
        g[ns..].copy_from_slice(&gb);
        if hessian {
            for r in 0..6 * nb {
                for c in 0..6 * nb {
                    entries.push(Triplet::new(ns + r, ns + c, kb[(r, c)]));
                }
            }
        }
        System { g, entries, phi }
    }

    /// The sparse LU of a Jacobian given by its entries (duplicates summed).
    fn factor(&self, n: usize, entries: &[Triplet<usize, usize, f64>]) -> Result<Lu<usize, f64>> {
        let k = self.unknowns();
        let fail = |e: String| DiffsimError::newton(n, format!("the coupled Newton matrix: {e}"));
        let mat = SparseColMat::<usize, f64>::try_new_from_triplets(k, k, entries)
            .map_err(|e| fail(format!("{e:?}")))?;
        let symbolic = SymbolicLu::try_new(mat.symbolic()).map_err(|e| fail(format!("{e:?}")))?;
        Lu::try_new_with_symbolic(symbolic, mat.as_ref()).map_err(|e| fail(format!("{e:?}")))
    }

    /// Per unknown: its residual's scale (the inertia `m/h²` of a particle or a body's
    /// translation, `tr J/h²` of its rotation) and the size of the unknown (≥ 1).
    fn scales(&self, (x, it): (&[V3], &[(V3, Quat)])) -> Vec<(f64, f64)> {
        let (m, h2) = (self.model, self.h * self.h);
        let mut out = vec![(0.0, 1.0); self.unknowns()];
        for (p, idx) in self.soft.index.iter().enumerate() {
            if let Some(k) = idx {
                let size = x[p].iter().fold(1.0f64, |a, c| a.max(c.abs()));
                out[3 * k..3 * k + 3].fill((m.soft.mass[p] / h2, size));
            }
        }
        let ns = self.soft.unknowns();
        for (b, body) in m.rigid.bodies.iter().enumerate() {
            let j = &body.inertia;
            let size = it[b].0.iter().fold(1.0f64, |a, c| a.max(c.abs()));
            let o = ns + 6 * b;
            out[o..o + 3].fill((body.mass / h2, size));
            out[o + 3..o + 6].fill(((j[0][0] + j[1][1] + j[2][2]) / h2, 1.0));
        }
        out
    }

    /// The iterate moved by `t·d`.
    fn moved(&self, (x, it): (&[V3], &[(V3, Quat)]), d: &[f64], t: f64) -> Iterate {
        let ns = self.soft.unknowns();
        let mut y = x.to_vec();
        for (p, idx) in self.soft.index.iter().enumerate() {
            if let Some(k) = idx {
                (0..3).for_each(|a| y[p][a] += t * d[3 * k + a]);
            }
        }
        let bodies = it
            .iter()
            .enumerate()
            .map(|(b, (c, q))| {
                let o = ns + 6 * b;
                (
                    std::array::from_fn(|i| c[i] + t * d[o + i]),
                    so3::normalize(so3::quat_mul(
                        so3::exp_quat(std::array::from_fn(|i| t * d[o + 3 + i])),
                        *q,
                    )),
                )
            })
            .collect();
        (y, bodies)
    }

    /// One step `n` from `start`: the new state, its tape and the Newton iterations.
    pub(super) fn step(
        &self,
        n: usize,
        start: &CoupledState,
    ) -> Result<(CoupledState, Tape, usize)> {
        let (m, h) = (self.model, self.h);
        let frozen = Frozen {
            bodies: self.rigid.active_contacts(&start.bodies),
            contacts: self.active_contacts(start),
        };
        let lag = Lagged::new(&m.soft, n, &start.x, &start.v);
        let mut x: Vec<V3> = (0..m.soft.len())
            .map(|p| {
                if m.soft.free(p) {
                    std::array::from_fn(|a| start.x[p][a] + h * start.v[p][a])
                } else {
                    start.x[p]
                }
            })
            .collect();
        let mut it: Vec<(V3, Quat)> = start
            .bodies
            .iter()
            .map(|s| {
                (
                    std::array::from_fn(|i| s.c[i] + h * s.v[i]),
                    so3::quat_mul(so3::exp_quat(s.w.map(|w| h * w)), s.q),
                )
            })
            .collect();
        let ctx = (&frozen, start, &lag);
        let ns = self.soft.unknowns();
        let mut tiny_step = false;
        for iter in 0..=self.max_iters {
            let sys = self.system(n, ctx, (&x, &it), (true, false));
            if !sys.g.iter().all(|v| v.is_finite()) {
                break;
            }
            let scales = self.scales((&x, &it));
            let converged =
                (0..sys.g.len()).all(|r| sys.g[r].abs() <= self.tol * scales[r].0 * scales[r].1);
            let lu = self.factor(n, &sys.entries)?;
            if tiny_step || converged {
                let state = self.finish(start, (x, it));
                let tape = Tape {
                    bodies: frozen.bodies,
                    contacts: frozen.contacts,
                    lu,
                };
                return Ok((state, tape, iter));
            }
            if iter == self.max_iters {
                break;
            }
            let d = self.direction(n, ctx, (&x, &it), (&sys, &lu), &scales)?;
            tiny_step = (0..d.len()).all(|r| d[r].abs() <= 1e-13 * scales[r].1);
            let slope = dot_n(&sys.g, &d);
            let torque_work: f64 = (0..m.rigid.bodies.len())
                .map(|b| {
                    let o = ns + 6 * b + 3;
                    dot(m.rigid.wrench(n, b).t, [d[o], d[o + 1], d[o + 2]])
                })
                .sum();
            let norm = |g: &[f64]| {
                (0..g.len())
                    .map(|r| (g[r] / scales[r].0.max(1e-300)).powi(2))
                    .sum::<f64>()
            };
            let g0 = norm(&sys.g);
            // Armijo on Φ, or a lower scaled residual with Φ flat to its round-off.
            let mut t = 1.0;
            loop {
                let trial = self.moved((&x, &it), &d, t);
                let s1 = self.system(n, ctx, (&trial.0, &trial.1), (false, false));
                let rise = s1.phi - t * torque_work - sys.phi;
                let armijo = rise <= 1e-4 * t * slope;
                let flat = rise <= 1e-12 * sys.phi.abs().max(1.0);
                if armijo || (flat && norm(&s1.g) < g0) || t < 1e-8 {
                    (x, it) = trial;
                    break;
                }
                t *= 0.5;
            }
        }
        Err(DiffsimError::newton(
            n,
            format!(
                "the coupled Newton solve did not converge in {} iterations",
                self.max_iters
            ),
        ))
    }

    /// A descent direction: Newton's; else with the particles' Hessian projected; else
    /// Levenberg-Marquardt's `K + λ·diag(scale)` with `λ` growing; else scaled steepest
    /// descent.
    fn direction(
        &self,
        n: usize,
        ctx: (&Frozen, &CoupledState, &Lagged),
        at: (&[V3], &[(V3, Quat)]),
        (sys, lu): (&System, &Lu<usize, f64>),
        scales: &[(f64, f64)],
    ) -> Result<Vec<f64>> {
        let k = sys.g.len();
        let rhs = Mat::from_fn(k, 1, |i, _| -sys.g[i]);
        let solve = |lu: &Lu<usize, f64>| -> Vec<f64> {
            let d = lu.solve(&rhs);
            (0..k).map(|r| d[(r, 0)]).collect()
        };
        let descends = |d: &[f64]| d.iter().all(|v| v.is_finite()) && dot_n(&sys.g, d) < 0.0;
        let d = solve(lu);
        if descends(&d) {
            return Ok(d);
        }
        let projected = self.system(n, ctx, at, (true, true)).entries;
        let mut lambda = 0.0;
        while lambda < 1e8 {
            let mut entries = projected.clone();
            entries.extend((0..k).map(|r| Triplet::new(r, r, lambda * scales[r].0)));
            let d = solve(&self.factor(n, &entries)?);
            if descends(&d) {
                return Ok(d);
            }
            lambda = if lambda == 0.0 { 1e-6 } else { 10.0 * lambda };
        }
        Ok((0..k)
            .map(|r| -sys.g[r] / scales[r].0.max(1e-300))
            .collect())
    }

    /// The state at the converged iterate: backward Euler's velocities.
    fn finish(&self, start: &CoupledState, (x, it): Iterate) -> CoupledState {
        let h = self.h;
        let v = (0..x.len())
            .map(|p| std::array::from_fn(|a| (x[p][a] - start.x[p][a]) / h))
            .collect();
        let bodies = it
            .iter()
            .zip(&start.bodies)
            .map(|(&(c, q), s)| BodyState {
                c,
                q,
                v: std::array::from_fn(|i| (c[i] - s.c[i]) / h),
                w: so3::log_quat(so3::quat_mul(q, so3::conj(s.q))).map(|w| w / h),
            })
            .collect();
        CoupledState { x, v, bodies }
    }

    /// `steps` steps from `init`.
    pub fn rollout(&self, init: &CoupledState, steps: usize) -> Result<CoupledRollout> {
        init.check(self.model, 0)?;
        let mut run = CoupledRollout {
            states: vec![init.clone()],
            tapes: Vec::with_capacity(steps),
            newton_iters: Vec::with_capacity(steps),
        };
        for n in 0..steps {
            let (next, tape, iters) = self.step(n, &run.states[n])?;
            next.check(self.model, n)?;
            run.states.push(next);
            run.tapes.push(tape);
            run.newton_iters.push(iters);
        }
        Ok(run)
    }
}

/// Per body: its signed distance grown by the particles' radius, where particles touch
/// bodies (None: no contact).
pub(super) fn contact_shapes(model: &CoupledModel) -> Vec<Option<Shape>> {
    let contact = model.particle_contact && model.rigid.contact.ke > 0.0;
    model
        .rigid
        .bodies
        .iter()
        .map(|b| {
            b.sdf
                .as_ref()
                .filter(|_| contact)
                .map(|s| s.inflated(model.particle_radius))
        })
        .collect()
}

/// The body–particle contacts `(particle, body)` that act in a step of length `h` from `s`:
/// gap below `40·s` plus twice the distance the particle and the body can close in it.
pub(super) fn active_contacts(
    model: &CoupledModel,
    shapes: &[Option<Shape>],
    h: f64,
    s: &CoupledState,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (b, shape) in shapes.iter().enumerate() {
        let Some(shape) = shape else { continue };
        let (body, sb) = (&model.rigid.bodies[b], &s.bodies[b]);
        let ext = extent(body) + model.particle_radius;
        let rb = so3::to_matrix(sb.q);
        for p in 0..model.soft.len() {
            let reach = so3::norm(s.v[p]) + so3::norm(sb.v) + so3::norm(sb.w) * ext;
            let cut = 40.0 * model.rigid.contact.smoothing + 2.0 * h * reach;
            let d = sub(s.x[p], sb.c);
            if so3::norm(d) - ext < cut && contact::distance(shape, so3::mat_t_vec(&rb, d)).0 < cut
            {
                out.push((p, b));
            }
        }
    }
    out
}

/// What a step freezes at its start: the active body pairs and sliding points, and the
/// body–particle contacts.
pub(super) struct Frozen {
    pub bodies: StepContacts,
    pub contacts: Vec<(usize, usize)>,
}

/// Where a local row lands: a particle's unknown or a body's row (within the bodies' block).
#[derive(Clone, Copy)]
enum Place {
    Soft(usize),
    Body(usize),
}

impl Place {
    fn global(self, ns: usize) -> usize {
        match self {
            Place::Soft(r) => r,
            Place::Body(r) => ns + r,
        }
    }
}

fn dot_n(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The local adjoint `[λ_p, λ_c, λ_θ]` of a term between particle `p` and body `b` from the
/// joint one (zero on a fixed particle).
pub(super) fn lam_at(step: &Coupled, lam: &[f64], p: usize, b: usize) -> [f64; 9] {
    let ns = step.soft.unknowns();
    std::array::from_fn(|i| {
        if i < 3 {
            step.soft.index[p].map_or(0.0, |k| lam[3 * k + i])
        } else {
            lam[ns + 6 * b + i - 3]
        }
    })
}
