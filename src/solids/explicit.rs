//! Semi-implicit (symplectic) Euler, the Warp `SemiImplicitIntegrator` particle step, with a
//! hand-written reverse-mode adjoint over the stored states (springs, tetrahedra, cloth and
//! smooth contact):
//! `v' = v + dt·((f(x, v) + uₙ)/m + g)`, `x' = x + dt·v'` (`uₙ` the step's control force;
//! fixed particles keep their velocity).

use super::cloth_lanes::ClothLanes;
use super::mass_spring::Model;
use super::math::V3;
use super::{Params, Rollout};

/// Step `n` (which picks the controls and activations) from `(x, v)`.
pub fn step(model: &Model, n: usize, x: &[V3], v: &[V3], dt: f64) -> (Vec<V3>, Vec<V3>) {
    step_packed(
        model,
        &ClothLanes::new(&model.tris, &model.bends),
        n,
        (x, v),
        dt,
    )
}

/// [`step`] with the model's cloth packed once (`cloth`, of `model.tris` and `model.bends`).
fn step_packed(
    model: &Model,
    cloth: &ClothLanes,
    n: usize,
    (x, v): (&[V3], &[V3]),
    dt: f64,
) -> (Vec<V3>, Vec<V3>) {
    let f = forces(model, cloth, n, (x, v));
    advance(model, n, (x, v), &f, dt)
}

/// The particles' own forces at `(x, v)` in step `n`: cloth, tetrahedra, springs and contact
/// with the static shapes (N).
pub fn forces(model: &Model, cloth: &ClothLanes, n: usize, (x, v): (&[V3], &[V3])) -> Vec<V3> {
    let mut f = vec![[0.0; 3]; model.len()];
    cloth.add_forces(x, v, &mut f);
    model.add_tet_and_spring_forces(n, x, Some(v), &mut f);
    model.add_contact_forces(x, v, &mut f, None);
    f
}

/// The update of step `n` under the total force `f` (N) on each particle.
pub fn advance(
    model: &Model,
    n: usize,
    (x, v): (&[V3], &[V3]),
    f: &[V3],
    dt: f64,
) -> (Vec<V3>, Vec<V3>) {
    let mut v1 = v.to_vec();
    let mut x1 = x.to_vec();
    for p in 0..model.len() {
        if model.free(p) {
            let u = model.control(n, p);
            for a in 0..3 {
                v1[p][a] += dt * ((f[p][a] + u[a]) / model.mass[p] + model.gravity[a]);
            }
        }
        for a in 0..3 {
            x1[p][a] += dt * v1[p][a];
        }
    }
    (x1, v1)
}

/// `steps` steps from `(x0, v0)` at step 0, keeping every state.
pub fn rollout(model: &Model, x0: &[V3], v0: &[V3], dt: f64, steps: usize) -> Rollout {
    rollout_from(model, 0, x0, v0, dt, steps)
}

/// `steps` steps from `(x0, v0)`, the state of step `first`, keeping every state.
pub fn rollout_from(
    model: &Model,
    first: usize,
    x0: &[V3],
    v0: &[V3],
    dt: f64,
    steps: usize,
) -> Rollout {
    let cloth = ClothLanes::new(&model.tris, &model.bends);
    let mut states = Vec::with_capacity(steps + 1);
    states.push((x0.to_vec(), v0.to_vec()));
    for n in first..first + steps {
        let (x, v) = states.last().expect("one state");
        let next = step_packed(model, &cloth, n, (x, v), dt);
        states.push(next);
    }
    Rollout { first, states }
}

/// Gradients of a loss with respect to the initial state, the model parameters and the
/// controls of `run`'s steps, given its gradients `(x̄_N, v̄_N)` at the last state of `run`.
pub fn adjoint(model: &Model, run: &Rollout, dt: f64, xbar: &[V3], vbar: &[V3]) -> Params {
    let cloth = ClothLanes::new(&model.tris, &model.bends);
    let mut g = Params::zeros(model);
    let (mut xb, mut vb) = (xbar.to_vec(), vbar.to_vec());
    for n in (0..run.states.len() - 1).rev() {
        let (x, v) = &run.states[n];
        step_vjp(
            model,
            &cloth,
            run.first + n,
            (x, v),
            dt,
            (&mut xb, &mut vb),
            &mut g,
        );
    }
    g.x0 = xb;
    g.v0 = vb;
    g
}

/// The VJP of step `n` from `(x, v)`: turns the bars `(x̄, v̄)` of the new state into the
/// bars of `(x, v)` and adds the step's parameter and control gradients into `g`; returns
/// the bar of the total force on each particle (`dt·v̄'/m`, zero for fixed particles), which
/// a caller that added its own forces continues through them.
pub fn step_vjp(
    model: &Model,
    cloth: &ClothLanes,
    n: usize,
    (x, v): (&[V3], &[V3]),
    dt: f64,
    (xb, vb): (&mut [V3], &mut [V3]),
    g: &mut Params,
) -> Vec<V3> {
    let np = model.len();
    // x' = x + dt·v': v̄' gains dt·x̄'; x̄ keeps x̄'.
    for p in 0..np {
        for a in 0..3 {
            vb[p][a] += dt * xb[p][a];
        }
    }
    // v' = v + dt·(f + uₙ)/m (free particles): u = dt·v̄'/m is the weight of f, and
    // the control's gradient.
    let u: Vec<V3> = (0..np)
        .map(|p| {
            if model.free(p) {
                vb[p].map(|c| dt * c / model.mass[p])
            } else {
                [0.0; 3]
            }
        })
        .collect();
    if let Some(gu) = g.controls.get_mut(n) {
        gu.copy_from_slice(&u);
    }
    for k in 0..model.tets.len() {
        let t = model.tet(n, k);
        t.add_force_jacobian_transpose(x, &u, xb);
        g.add_tet(n, k, t.parameter_gradients(x, &u));
    }
    cloth.add_vjp(x, v, &u, xb, vb);
    if !model.shapes.is_empty() {
        let mut f = vec![[0.0; 3]; np];
        let mut jac = vec![([[0.0; 3]; 3], [[0.0; 3]; 3]); np];
        model.add_contact_forces(x, v, &mut f, Some(&mut jac));
        for p in 0..np {
            for b in 0..3 {
                xb[p][b] += (0..3).map(|a| u[p][a] * jac[p].0[a][b]).sum::<f64>();
                vb[p][b] += (0..3).map(|a| u[p][a] * jac[p].1[a][b]).sum::<f64>();
            }
        }
    }
    for (k, s) in model.springs.iter().enumerate() {
        // f_i = −fs, f_j = +fs: the weight of fs is u_j − u_i.
        let w: V3 = std::array::from_fn(|a| u[s.j][a] - u[s.i][a]);
        let (jd, jw) = model.spring_jacobians(s, x, Some(v));
        let fr = model.frame(s, x);
        let rate: f64 = (0..3).map(|a| fr.n[a] * (v[s.i][a] - v[s.j][a])).sum();
        let wn: f64 = (0..3).map(|a| w[a] * fr.n[a]).sum();
        g.rest[k] += -s.ke * wn;
        g.ke[k] += (fr.len - s.rest) * wn;
        g.kd[k] += rate * wn;
        for b in 0..3 {
            let dx: f64 = (0..3).map(|a| w[a] * jd[a][b]).sum();
            let dv: f64 = (0..3).map(|a| w[a] * jw[a][b]).sum();
            xb[s.i][b] += dx;
            xb[s.j][b] -= dx;
            vb[s.i][b] += dv;
            vb[s.j][b] -= dv;
        }
    }
    u
}

/// The explicit integrator as an [`super::Integrator`] (for segment checkpointing).
pub struct Explicit<'a> {
    /// The model.
    pub model: &'a Model,
    /// Time step.
    pub dt: f64,
}

impl super::Integrator for Explicit<'_> {
    type Run = Rollout;
    fn rollout_from(
        &self,
        first: usize,
        x0: &[V3],
        v0: &[V3],
        steps: usize,
    ) -> crate::error::Result<Rollout> {
        Ok(rollout_from(self.model, first, x0, v0, self.dt, steps))
    }
    fn last<'r>(&self, run: &'r Rollout) -> &'r (Vec<V3>, Vec<V3>) {
        run.last()
    }
    fn adjoint(&self, run: &Rollout, xbar: &[V3], vbar: &[V3]) -> Params {
        adjoint(self.model, run, self.dt, xbar, vbar)
    }
}
