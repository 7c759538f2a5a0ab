//! The implicit midpoint rule for one free body: Euler's equations in the body frame with the
//! Cayley update, Newton on `Ω₁`, and its IFT adjoint (see the module above).

use super::Implicit;
use crate::error::{DiffsimError, Result};
use crate::rigid::body::{BodyState, StateBar};
use crate::rigid::model::Wrench;
use crate::rigid::semi_implicit::RawBar;
use crate::rigid::so3::{self, Quat};
use crate::solids::math::{M3, V3, sub};
use faer::Mat;
use faer::linalg::solvers::{PartialPivLu, Solve};

/// What a body's midpoint step keeps: the LU of `∂r/∂Ω₁`, `Ω₀` and `Ω₁`.
pub(super) struct MidpointTape {
    pub lu: PartialPivLu<f64>,
    pub om0: V3,
    pub om1: V3,
}

impl Implicit<'_> {
    fn midpoint_residual(&self, b: usize, om0: V3, om1: V3, tb: V3) -> (V3, M3) {
        let (j, h) = (&self.model.bodies[b].inertia, self.h);
        let omm: V3 = std::array::from_fn(|i| 0.5 * (om0[i] + om1[i]));
        let jm = so3::mat_vec(j, omm);
        let gyro = so3::cross(jm, omm);
        let d = so3::mat_vec(j, sub(om1, om0));
        let r = std::array::from_fn(|i| d[i] - h * gyro[i] - h * tb[i]);
        let mm = midpoint_gyro_jacobian(j, omm);
        let jac = std::array::from_fn(|i| std::array::from_fn(|k| j[i][k] - 0.5 * h * mm[i][k]));
        (r, jac)
    }

    pub(super) fn midpoint_step(
        &self,
        b: usize,
        s: &BodyState,
        ext: Wrench,
    ) -> Result<(BodyState, MidpointTape, usize)> {
        let body = &self.model.bodies[b];
        let (h, m, g) = (self.h, body.mass, self.model.gravity);
        let r0 = so3::to_matrix(s.q);
        let om0 = so3::mat_t_vec(&r0, s.w);
        let tb = so3::mat_t_vec(&r0, ext.t);
        let mut om1 = om0;
        // Newton to round-off (the last update below 2ε|Ω₁|, or no longer shrinking): the
        // conservation properties
        // hold to the accuracy of this solve.
        let (mut done, mut last_step) = (false, f64::INFINITY);
        for it in 0..=self.max_iters {
            let (r, jac) = self.midpoint_residual(b, om0, om1, tb);
            let lu = Mat::from_fn(3, 3, |i, k| jac[i][k]).partial_piv_lu();
            if done {
                let omm: V3 = std::array::from_fn(|i| 0.5 * (om0[i] + om1[i]));
                let q = so3::normalize(so3::quat_mul(s.q, so3::normalize(cayley_quat(omm, h))));
                let v: V3 = std::array::from_fn(|i| s.v[i] + h * (ext.f[i] / m + g[i]));
                let c = std::array::from_fn(|i| s.c[i] + 0.5 * h * (s.v[i] + v[i]));
                let w = so3::mat_vec(&so3::to_matrix(q), om1);
                return Ok((BodyState { c, q, v, w }, MidpointTape { lu, om0, om1 }, it));
            }
            if it == self.max_iters || !r.iter().all(|x| x.is_finite()) {
                break;
            }
            let d = lu.solve(Mat::from_fn(3, 1, |i, _| -r[i]));
            (0..3).for_each(|i| om1[i] += d[(i, 0)]);
            let size = om1.iter().fold(1e-300f64, |a, x| a.max(x.abs()));
            let step = (0..3).fold(0.0f64, |a, i| a.max(d[(i, 0)].abs()));
            // Done at round-off, or when the steps stop shrinking once they are tiny.
            done = step <= 2.0 * f64::EPSILON * size
                || (last_step <= 1e-10 * size && step >= last_step);
            last_step = step;
        }
        Err(DiffsimError::config(format!(
            "the midpoint Newton solve of body {b} did not converge in {} iterations",
            self.max_iters
        )))
    }

    pub(super) fn midpoint_vjp(
        &self,
        b: usize,
        s: &BodyState,
        s1: &BodyState,
        ext: Wrench,
        tape: &MidpointTape,
        out: &StateBar,
    ) -> (StateBar, Wrench) {
        let body = &self.model.bodies[b];
        let (h, m) = (self.h, body.mass);
        let (lu, om0, om1) = (&tape.lu, tape.om0, tape.om1);
        let out = RawBar::from_tangent(s1.q, out);
        let r0 = so3::to_matrix(s.q);
        let r1 = so3::to_matrix(s1.q);
        let mut bar = RawBar::default();
        // ω₁ = R(q₁) Ω₁.
        let mut om1b = so3::mat_t_vec(&r1, out.w);
        let mut q1b = out.q;
        let qr = so3::to_matrix_vjp(s1.q, &so3::outer(out.w, om1));
        (0..4).for_each(|i| q1b[i] += qr[i]);
        // q₁ = q₀ ⊗ u, u = normalize(k), k = (1, hΩ_m/2).
        let omm: V3 = std::array::from_fn(|i| 0.5 * (om0[i] + om1[i]));
        let k = cayley_quat(omm, h);
        let u = so3::normalize(k);
        // q₁ = normalize(q₀ ⊗ u) (a round-off correction; its Jacobian kept).
        q1b = so3::normalize_vjp(so3::quat_mul(s.q, u), q1b);
        let q0b = so3::quat_mul(q1b, so3::conj(u));
        let ub = so3::quat_mul(so3::conj(s.q), q1b);
        let kb = so3::normalize_vjp(k, ub);
        let mut om0b = [0.0; 3];
        for i in 0..3 {
            let ommb = 0.5 * h * kb[i + 1];
            om0b[i] += 0.5 * ommb;
            om1b[i] += 0.5 * ommb;
        }
        (0..4).for_each(|i| bar.q[i] += q0b[i]);
        // r(Ω₁; Ω₀, τ_b) = 0.
        let lam = lu.solve_transpose(Mat::from_fn(3, 1, |i, _| om1b[i]));
        let lam: V3 = std::array::from_fn(|i| lam[(i, 0)]);
        let mm = midpoint_gyro_jacobian(&body.inertia, omm);
        let d0: M3 = std::array::from_fn(|i| {
            std::array::from_fn(|k| body.inertia[i][k] + 0.5 * h * mm[i][k])
        });
        let o0 = so3::mat_t_vec(&d0, lam);
        (0..3).for_each(|i| om0b[i] += o0[i]);
        let tbb = lam.map(|x| h * x);
        // Ω₀ = R₀ᵀω₀, τ_b = R₀ᵀτ.
        bar.w = so3::mat_vec(&r0, om0b);
        let tbar = so3::mat_vec(&r0, tbb);
        let mut rb = so3::outer(s.w, om0b);
        let rt = so3::outer(ext.t, tbb);
        (0..9).for_each(|i| rb[i / 3][i % 3] += rt[i / 3][i % 3]);
        let qr = so3::to_matrix_vjp(s.q, &rb);
        (0..4).for_each(|i| bar.q[i] += qr[i]);
        // c₁ = c₀ + h(v₀ + v₁)/2, v₁ = v₀ + h(f/m + g).
        let v1b: V3 = std::array::from_fn(|i| out.v[i] + 0.5 * h * out.c[i]);
        bar.c = out.c;
        bar.v = std::array::from_fn(|i| v1b[i] + 0.5 * h * out.c[i]);
        let fbar = v1b.map(|x| h * x / m);
        (bar.to_tangent(s.q), Wrench { f: fbar, t: tbar })
    }
}

/// `(1, hΩ/2)`: the unnormalised quaternion of the Cayley map of `hΩ`.
fn cayley_quat(om: V3, h: f64) -> Quat {
    [1.0, 0.5 * h * om[0], 0.5 * h * om[1], 0.5 * h * om[2]]
}

/// `∂[(JΩ) × Ω]/∂Ω = [JΩ]× − [Ω]× J`.
fn midpoint_gyro_jacobian(j: &M3, om: V3) -> M3 {
    let a = so3::hat(so3::mat_vec(j, om));
    let bj = so3::mat_mul(&so3::hat(om), j);
    std::array::from_fn(|i| std::array::from_fn(|k| a[i][k] - bj[i][k]))
}
