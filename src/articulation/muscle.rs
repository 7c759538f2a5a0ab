//! A Hill-type muscle–tendon unit on a one-coordinate joint, and its activation dynamics.
//!
//! Geometry: the unit's length is `l(q) = l_ref + r·q` (moment arm `r`, m or dimensionless for
//! a slide joint); the tendon is rigid with slack length `l_s`, so the fibre has length
//! `l_M = l(q) − l_s` and speed `r·q̇`. With `l̃ = l_M/l_opt` and `ṽ = r·q̇/(v_max·l_opt)`
//! the tension is `F = F_max·(a·f_L(l̃)·f_V(ṽ) + f_P(l̃))` and the joint torque `τ = −r·F`
//! (tension shortens the unit). The curves (Thelen 2003's shapes, made C¹ where Newton and the
//! adjoints need derivatives):
//!
//! - active force–length `f_L = exp(−(l̃ − 1)²/0.45)`;
//! - force–velocity: Hill's hyperbola `(1 + ṽ)/(1 − ṽ/0.25)` while shortening (`ṽ ≤ 0`,
//!   zero at `ṽ = −1`), `1.8 − 0.8·exp(−5ṽ/0.8)` while lengthening (same value and slope at 0,
//!   1.8 eccentric asymptote);
//! - passive `f_P = (l̃ − 1)₊²/0.36` (1 at 60% strain, C¹ at the optimal length).
//!
//! Activation follows the excitation `u ∈ [0, 1]` with first-order dynamics
//! `ȧ = (u − a)/τ`, `τ = τ_act` while activating and `τ_deact` while deactivating, blended
//! smoothly by `σ((u − a)/0.01)`; stepped by backward Euler in `a` with `τ` taken at the
//! step's start, `a₁ = (a + (h/τ) u)/(1 + h/τ)`. [`activations`] maps a sequence of
//! excitations to the activations the steppers take as the muscle's control, and
//! [`activations_vjp`] carries gradients back.

use super::Real;
use super::spatial::c;

/// A muscle–tendon unit's parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Muscle {
    /// Peak isometric force (N).
    pub f_max: f64,
    /// Optimal fibre length (m).
    pub l_opt: f64,
    /// Tendon slack length (m).
    pub l_slack: f64,
    /// Maximum shortening speed (optimal lengths per second).
    pub v_max: f64,
    /// Moment arm `r` (m per rad, or 1 for a slide joint).
    pub moment_arm: f64,
    /// Unit length at `q = 0` (m).
    pub l_ref: f64,
}

impl Muscle {
    /// The joint torque at `(q, q̇)` and activation `a`.
    pub fn torque<T: Real>(&self, q: T, qd: T, a: T) -> T {
        let lm = (q * self.moment_arm + self.l_ref - self.l_slack) / self.l_opt;
        let v = qd * (self.moment_arm / (self.v_max * self.l_opt));
        let one = c::<T>(1.0);
        let d = lm - one;
        let fl = (-(d * d) / 0.45).exp();
        let fv = if v.re() <= 0.0 {
            (one + v) / (one - v / 0.25)
        } else {
            c::<T>(1.8) - (-(v * 5.0) / 0.8).exp() * 0.8
        };
        let fp = if d.re() > 0.0 { d * d / 0.36 } else { c(0.0) };
        -(a * fl * fv + fp) * (self.f_max * self.moment_arm)
    }

    /// Why the parameters are not valid, if they are not.
    pub(super) fn check(&self) -> Option<String> {
        let pos = |x: f64| x.is_finite() && x > 0.0;
        let fine = pos(self.f_max)
            && pos(self.l_opt)
            && pos(self.v_max)
            && self.l_slack.is_finite()
            && self.l_slack >= 0.0
            && self.moment_arm.is_finite()
            && self.l_ref.is_finite();
        (!fine).then(|| {
            format!("a muscle needs positive f_max, l_opt and v_max, a non-negative slack length and a finite moment arm and reference length (got {self:?})")
        })
    }
}

/// Activation time constants (s).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Activation {
    /// While activating (default 0.01 s).
    pub tau_act: f64,
    /// While deactivating (default 0.04 s).
    pub tau_deact: f64,
}

impl Default for Activation {
    fn default() -> Self {
        Self {
            tau_act: 0.01,
            tau_deact: 0.04,
        }
    }
}

impl Activation {
    /// One step from activation `a` under excitation `u`, in any scalar.
    fn step<T: Real>(&self, h: f64, a: T, u: T) -> T {
        let z = (u - a) / 0.01;
        let s = if z.re() > 0.0 {
            c::<T>(1.0) / ((-z).exp() + c::<T>(1.0))
        } else {
            z.exp() / (z.exp() + c::<T>(1.0))
        };
        let tau = c::<T>(self.tau_deact) + s * (self.tau_act - self.tau_deact);
        let k = c::<T>(h) / tau;
        (a + k * u) / (k + c::<T>(1.0))
    }
}

/// The activations `a₁ … a_N` after each of the excitations `u₀ … u_{N−1}` from `a₀`.
pub fn activations(act: &Activation, h: f64, a0: f64, excitations: &[f64]) -> Vec<f64> {
    let mut a = a0;
    excitations
        .iter()
        .map(|&u| {
            a = act.step(h, a, u);
            a
        })
        .collect()
}

/// Gradients with respect to `(a₀, u₀ … u_{N−1})` given `bars[n]` on `a_{n+1}`.
pub fn activations_vjp(
    act: &Activation,
    h: f64,
    a0: f64,
    excitations: &[f64],
    bars: &[f64],
) -> (f64, Vec<f64>) {
    use num_dual::Dual64;
    let states: Vec<f64> = std::iter::once(a0)
        .chain(activations(act, h, a0, excitations))
        .collect();
    let mut abar = 0.0;
    let mut ubar = vec![0.0; excitations.len()];
    for n in (0..excitations.len()).rev() {
        abar += bars.get(n).copied().unwrap_or(0.0);
        let (a, u) = (states[n], excitations[n]);
        let da = act.step(h, Dual64::new(a, 1.0), Dual64::from(u)).eps;
        let du = act.step(h, Dual64::from(a), Dual64::new(u, 1.0)).eps;
        ubar[n] = abar * du;
        abar *= da;
    }
    (abar, ubar)
}
