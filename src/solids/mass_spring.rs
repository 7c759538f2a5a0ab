//! The solids model (3D, f64): particles joined by damped springs, stable Neo-Hookean
//! tetrahedra and cloth elements, touching static obstacles; energies, forces and the derivatives the
//! integrators' adjoints need.
//!
//! Spring `s` between particles `i` and `j`, with `d = xᵢ − xⱼ`, `l = |d|`, `n = d/l`:
//! elastic energy `½·ke·(l − L)²`, so the force on `i` is `−ke·(l − L)·n` (and the opposite
//! on `j`); the Warp damping force on `i` is `−kd·(n·(vᵢ − vⱼ))·n`.

use super::math::{M3, V3, dot, scale, sub};
use crate::error::{DiffsimError, Result};

/// One spring.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spring {
    /// First particle.
    pub i: usize,
    /// Second particle.
    pub j: usize,
    /// Stiffness (N/m).
    pub ke: f64,
    /// Damping along the spring (N·s/m).
    pub kd: f64,
    /// Rest length (m).
    pub rest: f64,
}

/// Particles and springs. Particles with `mass = 0` are fixed (infinite mass, as in Warp).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// Mass per particle (kg); 0 fixes the particle.
    pub mass: Vec<f64>,
    /// The springs.
    pub springs: Vec<Spring>,
    /// Gravity (m/s²).
    pub gravity: V3,
    /// Stable Neo-Hookean tetrahedra.
    pub tets: Vec<super::fem::Tet>,
    /// Cloth membrane triangles.
    pub tris: Vec<super::cloth::Triangle>,
    /// Cloth bending elements.
    pub bends: Vec<super::cloth::Bend>,
    /// Static obstacles the free particles touch.
    pub shapes: Vec<super::contact::Shape>,
    /// Their contact parameters.
    pub contact: super::contact::Contact,
    /// Per-step controls: external forces (N) on the particles, `controls[n][p]` acting on
    /// free particle `p` during step `n` (`[steps][n_particles][3]`). Steps past the end of
    /// the list (all steps when it is empty) have none. Differentiable
    /// ([`Params::controls`](super::Params::controls)).
    pub controls: Vec<Vec<V3>>,
    /// Per-step activations of the tetrahedra (the muscle-like rest-volume change of stable
    /// Neo-Hookean, dimensionless): `activations[n][k]` replaces tetrahedron `k`'s own
    /// `activation` during step `n` (`[steps][n_tets]`); steps past the end of the list use
    /// the tetrahedra's own. Differentiable
    /// ([`Params::activations`](super::Params::activations)).
    pub activations: Vec<Vec<f64>>,
}

/// Per-spring geometry at a configuration.
#[derive(Clone, Copy, Debug)]
pub struct SpringFrame {
    /// Unit direction `n` from `j` to `i`.
    pub n: V3,
    /// Length `l`.
    pub len: f64,
}

impl Model {
    /// Checks indices, masses, stiffnesses and rest lengths.
    pub fn validate(&self) -> Result<()> {
        let np = self.mass.len();
        if self.mass.iter().any(|m| !(m.is_finite() && *m >= 0.0)) {
            return Err(DiffsimError::config(
                "particle masses must be finite and >= 0",
            ));
        }
        for (k, s) in self.springs.iter().enumerate() {
            if s.i >= np || s.j >= np || s.i == s.j {
                return Err(DiffsimError::config(format!(
                    "spring {k} joins particles {} and {} of {np}",
                    s.i, s.j
                )));
            }
            if !(s.ke.is_finite() && s.kd.is_finite() && s.rest.is_finite())
                || s.ke < 0.0
                || s.kd < 0.0
                || s.rest < 0.0
            {
                return Err(DiffsimError::config(format!(
                    "spring {k}: ke, kd and rest must be finite and >= 0"
                )));
            }
        }
        let elements = self.tets.iter().map(|t| t.nodes.to_vec());
        let elements = elements
            .chain(self.tris.iter().map(|t| t.nodes.to_vec()))
            .chain(self.bends.iter().map(|b| b.nodes.to_vec()));
        for nodes in elements {
            if nodes.iter().any(|&n| n >= np) {
                return Err(DiffsimError::config(format!(
                    "element {nodes:?} refers to a particle beyond the {np} particles"
                )));
            }
        }
        for (n, u) in self.controls.iter().enumerate() {
            if u.len() != np || u.iter().flatten().any(|c| !c.is_finite()) {
                return Err(DiffsimError::config(format!(
                    "controls of step {n}: {} finite forces needed, one per particle",
                    np
                )));
            }
        }
        for (n, a) in self.activations.iter().enumerate() {
            if a.len() != self.tets.len() || a.iter().any(|c| !c.is_finite()) {
                return Err(DiffsimError::config(format!(
                    "activations of step {n}: {} finite values needed, one per tetrahedron",
                    self.tets.len()
                )));
            }
        }
        let c = &self.contact;
        let valid =
            c.ke >= 0.0 && c.kd >= 0.0 && c.mu >= 0.0 && c.smoothing > 0.0 && c.ke.is_finite();
        if !self.shapes.is_empty() && !valid {
            return Err(DiffsimError::config(
                "contact: ke, kd, mu must be >= 0 and the smoothing length > 0",
            ));
        }
        Ok(())
    }

    /// Particles.
    pub fn len(&self) -> usize {
        self.mass.len()
    }

    /// True without particles.
    pub fn is_empty(&self) -> bool {
        self.mass.is_empty()
    }

    /// The control force on particle `p` during step `n` (zero past the controls' end and on
    /// fixed particles).
    pub fn control(&self, n: usize, p: usize) -> V3 {
        match self.controls.get(n) {
            Some(u) if self.free(p) => u[p],
            _ => [0.0; 3],
        }
    }

    /// Tetrahedron `k` as it acts during step `n`: with that step's activation when
    /// [`Model::activations`] has one.
    pub fn tet(&self, n: usize, k: usize) -> super::fem::Tet {
        let mut t = self.tets[k];
        if let Some(a) = self.activations.get(n) {
            t.activation = a[k];
        }
        t
    }

    /// Whether particle `p` moves.
    pub fn free(&self, p: usize) -> bool {
        self.mass[p] > 0.0
    }

    /// The frame of spring `s` at positions `x` (`[n_particles][3]`).
    pub fn frame(&self, s: &Spring, x: &[V3]) -> SpringFrame {
        let d = sub(x[s.i], x[s.j]);
        let len = dot(d, d).sqrt();
        SpringFrame {
            n: scale(d, 1.0 / len.max(1e-300)),
            len,
        }
    }

    /// Elastic energy at `x` during step `n` (which picks the tetrahedra's activations):
    /// springs, tetrahedra, cloth triangles and bending with its rest edge length.
    pub fn energy(&self, n: usize, x: &[V3]) -> f64 {
        let springs: f64 = self
            .springs
            .iter()
            .map(|s| 0.5 * s.ke * (self.frame(s, x).len - s.rest).powi(2))
            .sum();
        springs
            + (0..self.tets.len())
                .map(|k| self.tet(n, k).energy(x))
                .sum::<f64>()
            + self.tris.iter().map(|t| t.energy(x)).sum::<f64>()
            + self.bends.iter().map(|b| b.energy(x)).sum::<f64>()
    }

    /// Contact forces on the free particles at `(x, v)`, added into `f`; with `jac`, their
    /// per-particle Jacobians `(∂f/∂x, ∂f/∂v)` are added too.
    pub fn add_contact_forces(
        &self,
        x: &[V3],
        v: &[V3],
        f: &mut [V3],
        mut jac: Option<&mut [(M3, M3)]>,
    ) {
        for p in (0..self.len()).filter(|&p| self.free(p)) {
            for shape in &self.shapes {
                let (fc, jx, jv) = super::contact::force(&self.contact, shape, x[p], v[p]);
                for a in 0..3 {
                    f[p][a] += fc[a];
                }
                if let Some(j) = jac.as_deref_mut() {
                    for a in 0..3 {
                        for b in 0..3 {
                            j[p].0[a][b] += jx[a][b];
                            j[p].1[a][b] += jv[a][b];
                        }
                    }
                }
            }
        }
    }

    /// Spring, tetrahedron and cloth forces at `(x, v)` during step `n` (elastic, damping,
    /// air; no gravity, no contact; Warp's bending force with the current edge length), added
    /// into `f`.
    pub fn add_forces(&self, n: usize, x: &[V3], v: &[V3], f: &mut [V3]) {
        self.add_internal_forces(n, x, Some(v), f);
    }

    /// The elastic forces `−∇E(x)` alone (of [`Model::energy`]) during step `n`, added into
    /// `f`.
    pub fn add_elastic_forces(&self, n: usize, x: &[V3], f: &mut [V3]) {
        self.add_internal_forces(n, x, None, f);
    }

    fn add_internal_forces(&self, n: usize, x: &[V3], v: Option<&[V3]>, f: &mut [V3]) {
        for t in &self.tris {
            t.add_forces(x, v, f);
        }
        for b in &self.bends {
            b.add_forces(x, v, f);
        }
        self.add_tet_and_spring_forces(n, x, v, f);
    }

    /// The forces of the tetrahedra and springs alone (of [`Model::add_forces`] with `v`, of
    /// [`Model::add_elastic_forces`] without), added into `f`.
    pub(super) fn add_tet_and_spring_forces(
        &self,
        n: usize,
        x: &[V3],
        v: Option<&[V3]>,
        f: &mut [V3],
    ) {
        for k in 0..self.tets.len() {
            self.tet(n, k).add_forces(x, f);
        }
        for s in &self.springs {
            let fs = self.spring_force(s, x, v);
            for a in 0..3 {
                f[s.i][a] -= fs[a];
                f[s.j][a] += fs[a];
            }
        }
    }

    /// `fs = (ke·(l − L) + kd·n·(vᵢ − vⱼ))·n`: the force on `j` (minus the force on `i`);
    /// without velocities, the elastic part alone.
    pub fn spring_force(&self, s: &Spring, x: &[V3], v: Option<&[V3]>) -> V3 {
        let fr = self.frame(s, x);
        let damping = v.map_or(0.0, |v| s.kd * dot(fr.n, sub(v[s.i], v[s.j])));
        scale(fr.n, s.ke * (fr.len - s.rest) + damping)
    }

    /// `∂fs/∂d` (3×3, `d = xᵢ − xⱼ`) of [`Model::spring_force`] at fixed velocities, and
    /// `∂fs/∂(vᵢ − vⱼ)` (3×3); without velocities, those of the elastic part alone.
    pub fn spring_jacobians(&self, s: &Spring, x: &[V3], v: Option<&[V3]>) -> (M3, M3) {
        let fr = self.frame(s, x);
        let (n, l) = (fr.n, fr.len.max(1e-300));
        let (w, kd) = v.map_or(([0.0; 3], 0.0), |v| (sub(v[s.i], v[s.j]), s.kd));
        let rate = dot(n, w);
        let c = s.ke * (fr.len - s.rest) + kd * rate;
        // fs = c·n;  ∂n/∂d = (I − n nᵀ)/l;  ∂c/∂d = ke·nᵀ + kd·wᵀ(I − n nᵀ)/l.
        let mut jd = [[0.0; 3]; 3];
        let mut jw = [[0.0; 3]; 3];
        let proj = |a: usize, b: usize| f64::from(u8::from(a == b)) - n[a] * n[b];
        for a in 0..3 {
            for b in 0..3 {
                let dn_ab = proj(a, b) / l;
                let dc_b = s.ke * n[b] + kd * (0..3).map(|k| w[k] * proj(k, b)).sum::<f64>() / l;
                jd[a][b] = c * dn_ab + n[a] * dc_b;
                jw[a][b] = kd * n[a] * n[b];
            }
        }
        (jd, jw)
    }
}
