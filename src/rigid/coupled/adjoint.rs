//! The implicit-function-theorem adjoint of a coupled rollout: per step one solve with the
//! transposed LU of the converged Newton matrix, then the particles', the bodies' and the
//! coupling terms' transposed products.

use super::step::{Coupled, CoupledRollout, lam_at};
use super::terms;
use super::{AttachmentBar, CoupledBar, CoupledGrads};
use crate::rigid::RigidGrads;
use crate::rigid::body::StateBar;
use crate::rigid::so3;
use crate::solids::{Params, V3};
use faer::Mat;
use faer::linalg::solvers::Solve;

impl Coupled<'_> {
    /// Gradients given `bars[n]`, the loss's gradients with respect to state `n` (a missing
    /// or empty entry is zero).
    pub fn adjoint(&self, run: &CoupledRollout, bars: &[CoupledBar]) -> CoupledGrads {
        let m = self.model;
        let (np, nb) = (m.soft.len(), m.rigid.bodies.len());
        let steps = run.tapes.len();
        let mut grads = CoupledGrads {
            soft: Params::zeros(&m.soft),
            rigid: RigidGrads::zeros(&m.rigid, steps),
            attachments: vec![AttachmentBar::default(); m.attachments.len()],
        };
        let seed = |n: usize| -> (Vec<V3>, Vec<V3>, Vec<StateBar>) {
            let bar = bars.get(n);
            let or_zero = |v: Option<&Vec<V3>>| match v {
                Some(v) if !v.is_empty() => v.clone(),
                _ => vec![[0.0; 3]; np],
            };
            let bodies = match bar.map(|b| &b.bodies) {
                Some(v) if !v.is_empty() => v.clone(),
                _ => vec![StateBar::default(); nb],
            };
            (
                or_zero(bar.map(|b| &b.x)),
                or_zero(bar.map(|b| &b.v)),
                bodies,
            )
        };
        let (mut xb, mut vb, mut bb) = seed(steps);
        let all: Vec<usize> = (0..nb).collect();
        let ns = self.soft.unknowns();
        for n in (0..steps).rev() {
            let (start, end, tape) = (&run.states[n], &run.states[n + 1], &run.tapes[n]);
            // ȳ: a particle's x̄₁ + v̄₁/h, a body's (c, δθ) bars through v₁ and ω₁.
            let mut ybar = vec![0.0; ns + 6 * nb];
            for (p, idx) in self.soft.index.iter().enumerate() {
                if let Some(k) = idx {
                    (0..3).for_each(|a| ybar[3 * k + a] = xb[p][a] + vb[p][a] / self.h);
                }
            }
            let yb = self.rigid.euler_seed(&all, &start.bodies, &end.bodies, &bb);
            ybar[ns..].copy_from_slice(&yb);
            let sol = tape
                .lu
                .solve_transpose(Mat::from_fn(ybar.len(), 1, |i, _| ybar[i]));
            let lam: Vec<f64> = (0..ybar.len()).map(|i| sol[(i, 0)]).collect();
            let lam_p: Vec<V3> = (0..np)
                .map(|p| {
                    self.soft.index[p].map_or([0.0; 3], |k| std::array::from_fn(|a| lam[3 * k + a]))
                })
                .collect();
            let (mut xbn, vbn) = self.soft.adjoint_from_lambda(
                n,
                (&start.x, &start.v),
                &end.x,
                &lam_p,
                (&xb, &vb),
                &mut grads.soft,
            );
            let mut prev = vec![StateBar::default(); nb];
            self.rigid.euler_vjp_lambda(
                (&all, &tape.bodies),
                (&start.bodies, &end.bodies),
                &bb,
                &lam[ns..],
                &mut prev,
                &mut grads.rigid.wrenches[n],
                (&mut grads.rigid.points, &mut grads.rigid.friction),
            );
            self.coupling_vjp(n, run, &lam, (&mut xbn, &mut prev), &mut grads);
            let (sx, sv, sb) = seed(n);
            for p in 0..np {
                for a in 0..3 {
                    xbn[p][a] += sx[p][a];
                }
            }
            let mut vbn = vbn;
            for p in 0..np {
                for a in 0..3 {
                    vbn[p][a] += sv[p][a];
                }
            }
            for (p, add) in prev.iter_mut().zip(&sb) {
                for i in 0..3 {
                    p.c[i] += add.c[i];
                    p.theta[i] += add.theta[i];
                    p.v[i] += add.v[i];
                    p.w[i] += add.w[i];
                }
            }
            (xb, vb, bb) = (xbn, vbn, prev);
        }
        grads.soft.x0 = xb;
        grads.soft.v0 = vb;
        grads.rigid.init = bb;
        grads
    }

    /// The coupling terms' share of step `n`'s adjoint: their lagged parts, their parameters
    /// and, for a fixed particle, its column `−(∂G/∂x_p)ᵀλ`.
    fn coupling_vjp(
        &self,
        n: usize,
        run: &CoupledRollout,
        lam: &[f64],
        (xbn, prev): (&mut [V3], &mut [StateBar]),
        grads: &mut CoupledGrads,
    ) {
        let (m, h) = (self.model, self.h);
        let (start, end, tape) = (&run.states[n], &run.states[n + 1], &run.tapes[n]);
        for (k, at) in m.attachments.iter().enumerate() {
            let (p, b) = (at.particle, at.body);
            let l = lam_at(self, lam, p, b);
            let bar = terms::attachment_vjp(
                at,
                (end.x[p], start.x[p]),
                (&end.bodies[b], &start.bodies[b]),
                &l,
                h,
                (&mut xbn[p], &mut prev[b]),
            );
            let g = &mut grads.attachments[k];
            g.stiffness += bar.stiffness;
            g.point = so3::add(g.point, bar.point);
        }
        for &(p, b) in &tape.contacts {
            let shape = self.shapes[b].as_ref().expect("a contact has a shape");
            let l = lam_at(self, lam, p, b);
            grads.rigid.friction += terms::particle_contact_vjp(
                &m.rigid.contact,
                shape,
                (end.x[p], start.x[p]),
                (&end.bodies[b], &start.bodies[b]),
                &l,
                h,
                (&mut xbn[p], &mut prev[b]),
            );
        }
        if (0..m.soft.len()).all(|p| m.soft.free(p)) {
            return;
        }
        let it: Vec<_> = end.bodies.iter().map(|s| (s.c, s.q)).collect();
        let rot: Vec<_> = end.bodies.iter().map(|s| so3::to_matrix(s.q)).collect();
        let terms = self.coupling_terms((&tape.contacts, start), (&end.x, &it), &rot, false);
        for (p, b, local) in terms.iter().filter(|(p, _, _)| !m.soft.free(*p)) {
            let l = lam_at(self, lam, *p, *b);
            for (j, xb) in xbn[*p].iter_mut().enumerate() {
                *xb -= (3..9).map(|r| local.k[(r, j)] * l[r]).sum::<f64>();
            }
        }
    }
}
