//! Rigid bodies: shapes, mass and inertia (about the centre of mass, in the body frame), the
//! body points that touch obstacles, and the state `(c, q, v, ω)`.

use super::so3::{self, Quat};
use crate::error::{DiffsimError, Result};
use crate::solids::contact::Shape;
use crate::solids::math::{M3, V3, dot, sub};
use crate::solids::mesh_sdf::{MeshSdf, TriangleMesh};
use std::sync::Arc;

/// A body's geometry, centred on its centre of mass in the body frame.
#[derive(Clone, Debug, PartialEq)]
pub enum BodyShape {
    /// A solid sphere of radius `r` (m).
    Sphere {
        /// Radius (m).
        r: f64,
    },
    /// A solid box with half extents `half` (m).
    Box {
        /// Half extents (m).
        half: V3,
    },
    /// A solid capsule along the body's z axis: a cylinder of radius `r` and half height
    /// `half_height` with hemispherical caps (m).
    Capsule {
        /// Radius (m).
        r: f64,
        /// Half the cylinder's height (m).
        half_height: f64,
    },
    /// The solid a closed triangle mesh bounds (vertices in m, any origin: the body frame is
    /// its centre of mass, the axes the mesh's).
    Mesh(TriangleMesh),
}

impl BodyShape {
    /// Volume (m³).
    pub fn volume(&self) -> f64 {
        use std::f64::consts::PI;
        match *self {
            Self::Sphere { r } => 4.0 / 3.0 * PI * r.powi(3),
            Self::Box { half } => 8.0 * half[0] * half[1] * half[2],
            Self::Capsule { r, half_height } => {
                PI * r * r * 2.0 * half_height + 4.0 / 3.0 * PI * r.powi(3)
            }
            Self::Mesh(ref mesh) => mesh.mass_properties(1.0).0,
        }
    }

    /// Mass (kg) and inertia tensor about the centre of mass (kg·m²) at `density` (kg/m³).
    pub fn mass_properties(&self, density: f64) -> (f64, M3) {
        use std::f64::consts::PI;
        if let Self::Mesh(mesh) = self {
            let (m, _, j) = mesh.mass_properties(density);
            return (m, j);
        }
        let m = density * self.volume();
        let d = match *self {
            Self::Sphere { r } => [0.4 * m * r * r; 3],
            Self::Box { half: [a, b, c] } => [
                m * (b * b + c * c) / 3.0,
                m * (a * a + c * c) / 3.0,
                m * (a * a + b * b) / 3.0,
            ],
            Self::Capsule { r, half_height: hh } => {
                // Cylinder plus two hemispheres (each's COM 3r/8 from the flat face).
                let (h, rho) = (2.0 * hh, density);
                let mc = rho * PI * r * r * h;
                let mh = rho * 2.0 / 3.0 * PI * r.powi(3);
                let axial = mc * r * r / 2.0 + 2.0 * 0.4 * mh * r * r;
                let d = hh + 3.0 * r / 8.0;
                let hemi_own = 0.4 * mh * r * r - mh * (3.0 * r / 8.0).powi(2);
                let trans = mc * (3.0 * r * r + h * h) / 12.0 + 2.0 * (hemi_own + mh * d * d);
                [trans, trans, axial]
            }
            Self::Mesh(_) => unreachable!("handled above"),
        };
        (m, [[d[0], 0.0, 0.0], [0.0, d[1], 0.0], [0.0, 0.0, d[2]]])
    }

    /// The body-frame points tested against obstacles (Warp's choice): a sphere's lowest point
    /// is not fixed, so its centre (contact then uses the obstacle's distance minus `r`);
    /// a box's 8 corners; a capsule's two cap centres; a mesh's vertices (about its centre of
    /// mass).
    pub fn contact_points(&self) -> (Vec<V3>, f64) {
        if let Self::Mesh(mesh) = self {
            return (centred(mesh).vertices, 0.0);
        }
        match *self {
            Self::Sphere { r } => (vec![[0.0; 3]], r),
            Self::Box { half: [a, b, c] } => (
                (0..8)
                    .map(|k| {
                        let s = |bit: usize| if k >> bit & 1 == 1 { 1.0 } else { -1.0 };
                        [s(0) * a, s(1) * b, s(2) * c]
                    })
                    .collect(),
                0.0,
            ),
            Self::Capsule { r, half_height } => {
                (vec![[0.0, 0.0, -half_height], [0.0, 0.0, half_height]], r)
            }
            Self::Mesh(_) => unreachable!("handled above"),
        }
    }
}

/// The mesh moved so that its centre of mass is the origin.
fn centred(mesh: &TriangleMesh) -> TriangleMesh {
    let (_, com, _) = mesh.mass_properties(1.0);
    TriangleMesh {
        vertices: mesh.vertices.iter().map(|v| sub(*v, com)).collect(),
        triangles: mesh.triangles.clone(),
    }
}

/// A rigid body's constant properties.
#[derive(Clone, Debug, PartialEq)]
pub struct RigidBody {
    /// Mass (kg).
    pub mass: f64,
    /// Inertia tensor about the centre of mass in the body frame (kg·m²).
    pub inertia: M3,
    /// Contact points in the body frame (m).
    pub points: Vec<V3>,
    /// Radius around each contact point (m): the point touches when the obstacle's distance
    /// falls below it.
    pub radius: f64,
    /// The body's signed distance in its own frame, centred on its centre of mass, which
    /// other bodies' points touch (none for given bodies).
    pub sdf: Option<Shape>,
}

impl RigidBody {
    /// A body of `shape` at `density` (kg/m³), with its contact points.
    pub fn from_shape(shape: &BodyShape, density: f64) -> Result<Self> {
        if !(density > 0.0 && density.is_finite()) {
            return Err(DiffsimError::config(format!(
                "a rigid body needs a positive density, got {density}"
            )));
        }
        let dims_ok = match *shape {
            BodyShape::Sphere { r } => r > 0.0,
            BodyShape::Box { half } => half.iter().all(|&h| h > 0.0),
            BodyShape::Capsule { r, half_height } => r > 0.0 && half_height >= 0.0,
            BodyShape::Mesh(ref mesh) => {
                mesh.check_closed()?;
                true
            }
        };
        if !dims_ok {
            return Err(DiffsimError::config(format!(
                "a rigid body's shape needs positive dimensions, got {shape:?}"
            )));
        }
        let (mass, inertia) = shape.mass_properties(density);
        let (points, radius) = shape.contact_points();
        let sdf = match *shape {
            // The contact points are the vertices about the centre of mass.
            BodyShape::Mesh(ref mesh) => Some(Shape::Mesh {
                sdf: Arc::new(MeshSdf::new(&TriangleMesh {
                    vertices: points.clone(),
                    triangles: mesh.triangles.clone(),
                })?),
                center: [0.0; 3],
                radius: 0.0,
            }),
            BodyShape::Sphere { r } => Some(Shape::Sphere {
                center: [0.0; 3],
                radius: r,
            }),
            BodyShape::Box { half } => Some(Shape::Box {
                center: [0.0; 3],
                half,
            }),
            BodyShape::Capsule { r, half_height } => Some(Shape::Capsule {
                center: [0.0; 3],
                half_height,
                radius: r,
            }),
        };
        let body = Self {
            mass,
            inertia,
            points,
            radius,
            sdf,
        };
        body.validate()?;
        Ok(body)
    }

    /// Whether static balls touch this body through their centres against its signed
    /// distance (a box or a mesh body; see [`super::balls`]) rather than its points.
    pub fn touches_balls_by_centre(&self) -> bool {
        matches!(self.sdf, Some(Shape::Box { .. } | Shape::Mesh { .. }))
    }

    /// A point-free body with the given mass and inertia.
    pub fn given(mass: f64, inertia: M3) -> Result<Self> {
        let body = Self {
            mass,
            inertia,
            points: Vec::new(),
            radius: 0.0,
            sdf: None,
        };
        body.validate()?;
        Ok(body)
    }

    /// Checks the mass is positive and the inertia symmetric positive definite with
    /// principal moments that satisfy the triangle inequality (a physical mass distribution).
    pub fn validate(&self) -> Result<()> {
        if !(self.mass > 0.0 && self.mass.is_finite()) {
            return Err(DiffsimError::config(format!(
                "a rigid body needs a positive finite mass, got {}",
                self.mass
            )));
        }
        let j = &self.inertia;
        let finite = j.iter().flatten().all(|x| x.is_finite());
        let sym = (0..3).all(|a| {
            (0..3).all(|b| (j[a][b] - j[b][a]).abs() <= 1e-12 * (j[a][a].abs() + j[b][b].abs()))
        });
        // Leading minors (Sylvester) for positive definiteness.
        let m1 = j[0][0];
        let m2 = j[0][0] * j[1][1] - j[0][1] * j[1][0];
        let m3 = det(j);
        let tr = j[0][0] + j[1][1] + j[2][2];
        // J_m = ½tr(J)·1 − J must be positive semi-definite: every principal moment at most
        // the sum of the other two. Its diagonal in any frame is a necessary check; the
        // exact test is on the eigenvalues, bounded here by Gershgorin on J_m.
        let jm = mass_moment(j);
        let physical = (0..3).all(|a| jm[a][a] >= -1e-12 * tr);
        if !(finite && sym && m1 > 0.0 && m2 > 0.0 && m3 > 0.0 && physical) {
            return Err(DiffsimError::config(format!(
                "a rigid body's inertia must be a finite symmetric positive definite matrix \
                 whose principal moments satisfy the triangle inequality, got {j:?}"
            )));
        }
        if self.radius < 0.0 || self.points.iter().flatten().any(|x| !x.is_finite()) {
            return Err(DiffsimError::config(
                "a rigid body's contact points must be finite and its radius non-negative",
            ));
        }
        Ok(())
    }

    /// `J⁻¹`.
    pub fn inertia_inv(&self) -> M3 {
        inverse(&self.inertia)
    }
}

/// `J_m = ∫ρ r rᵀ = ½tr(J)·1 − J`, the second moment of mass of an inertia tensor `J`.
pub fn mass_moment(j: &M3) -> M3 {
    let half_tr = 0.5 * (j[0][0] + j[1][1] + j[2][2]);
    std::array::from_fn(|a| {
        std::array::from_fn(|b| f64::from(u8::from(a == b)) * half_tr - j[a][b])
    })
}

fn det(m: &M3) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// The inverse of a 3×3 matrix (cofactors).
pub fn inverse(m: &M3) -> M3 {
    let d = det(m);
    let c = |i: usize, j: usize| {
        let (r0, r1) = ((i + 1) % 3, (i + 2) % 3);
        let (c0, c1) = ((j + 1) % 3, (j + 2) % 3);
        m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
    };
    std::array::from_fn(|i| std::array::from_fn(|j| c(j, i) / d))
}

/// A body's state: centre of mass `c` (m), orientation `q` (unit quaternion, body → world),
/// velocity `v` (m/s) and angular velocity `ω` (rad/s, world frame).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BodyState {
    /// Centre of mass (m).
    pub c: V3,
    /// Orientation.
    pub q: Quat,
    /// Linear velocity (m/s).
    pub v: V3,
    /// Angular velocity, world frame (rad/s).
    pub w: V3,
}

impl BodyState {
    /// At rest at `c` with the identity orientation.
    pub fn at(c: V3) -> Self {
        Self {
            c,
            q: so3::IDENTITY,
            v: [0.0; 3],
            w: [0.0; 3],
        }
    }

    /// Whether every entry is finite and `q` is a unit quaternion (to 1e-9).
    pub fn check(&self) -> Result<()> {
        let all = self.c.iter().chain(&self.q).chain(&self.v).chain(&self.w);
        let unit = (self.q.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-9;
        if all.clone().all(|x| x.is_finite()) && unit {
            Ok(())
        } else {
            Err(DiffsimError::config(format!(
                "a rigid body's state must be finite with a unit quaternion, got {self:?}"
            )))
        }
    }
}

/// The gradient of a loss with respect to one body's state: `θ̄` with respect to the world
/// rotation vector of a left perturbation `q ← exp_q(δθ) ⊗ q`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StateBar {
    /// `∂L/∂c`.
    pub c: V3,
    /// `∂L/∂δθ` (world frame).
    pub theta: V3,
    /// `∂L/∂v`.
    pub v: V3,
    /// `∂L/∂ω`.
    pub w: V3,
}

impl RigidBody {
    /// Kinetic energy `½m|v|² + ½ω·(R J Rᵀ)ω` at `s` (J).
    pub fn kinetic_energy(&self, s: &BodyState) -> f64 {
        let r = so3::to_matrix(s.q);
        let wb = so3::mat_t_vec(&r, s.w);
        0.5 * self.mass * dot(s.v, s.v) + 0.5 * dot(wb, so3::mat_vec(&self.inertia, wb))
    }

    /// World angular momentum about the centre of mass, `R J Rᵀ ω` (kg·m²/s).
    pub fn angular_momentum(&self, s: &BodyState) -> V3 {
        let r = so3::to_matrix(s.q);
        let wb = so3::mat_t_vec(&r, s.w);
        so3::mat_vec(&r, so3::mat_vec(&self.inertia, wb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mass and inertia of a shape from a fine point cloud of its volume.
    fn sampled(shape: &BodyShape, density: f64, inside: impl Fn(V3) -> bool, ext: V3) -> (f64, V3) {
        let n = 80;
        let cell: V3 = ext.map(|e| 2.0 * e / n as f64);
        let dv = cell[0] * cell[1] * cell[2] * density;
        let (mut m, mut j) = (0.0, [0.0; 3]);
        for k in 0..n * n * n {
            let p: V3 = [k % n, (k / n) % n, k / (n * n)]
                .map(|i| i as f64 + 0.5)
                .iter()
                .enumerate()
                .map(|(a, &i)| -ext[a] + i * cell[a])
                .collect::<Vec<_>>()
                .try_into()
                .expect("3");
            if inside(p) {
                m += dv;
                j[0] += dv * (p[1] * p[1] + p[2] * p[2]);
                j[1] += dv * (p[0] * p[0] + p[2] * p[2]);
                j[2] += dv * (p[0] * p[0] + p[1] * p[1]);
            }
        }
        let _ = shape;
        (m, j)
    }

    #[test]
    fn mass_properties_match_sampled_volumes() {
        let cap = BodyShape::Capsule {
            r: 0.3,
            half_height: 0.5,
        };
        let inside = |p: V3| {
            let z = p[2].clamp(-0.5, 0.5);
            p[0] * p[0] + p[1] * p[1] + (p[2] - z).powi(2) <= 0.09
        };
        let (m, j) = cap.mass_properties(2.0);
        let (ms, js) = sampled(&cap, 2.0, inside, [0.3, 0.3, 0.8]);
        assert!((m - ms).abs() < 5e-3 * m, "{m} vs {ms}");
        for a in 0..3 {
            assert!(
                (j[a][a] - js[a]).abs() < 1e-2 * j[a][a],
                "{a}: {} vs {}",
                j[a][a],
                js[a]
            );
        }
        let bx = BodyShape::Box {
            half: [0.5, 0.2, 0.1],
        };
        let (m, j) = bx.mass_properties(3.0);
        let (ms, js) = sampled(&bx, 3.0, |_| true, [0.5, 0.2, 0.1]);
        assert!((m - ms).abs() < 1e-9 * m);
        assert!((0..3).all(|a| (j[a][a] - js[a]).abs() < 1e-3 * j[a][a]));
        let (m, j) = BodyShape::Sphere { r: 0.1 }.mass_properties(100.0);
        assert!((m - 0.418_879).abs() < 1e-6 && (j[0][0] - 0.4 * m * 0.01).abs() < 1e-15);
    }

    #[test]
    fn bad_bodies_are_rejected_with_a_reason() {
        assert!(
            RigidBody::given(0.0, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).is_err()
        );
        assert!(
            RigidBody::given(-1.0, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).is_err()
        );
        let not_pd = [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]];
        assert!(RigidBody::given(1.0, not_pd).is_err());
        let unphysical = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]];
        let e = RigidBody::given(1.0, unphysical).unwrap_err().to_string();
        assert!(e.contains("triangle inequality"), "{e}");
        assert!(RigidBody::from_shape(&BodyShape::Sphere { r: -0.1 }, 1.0).is_err());
        assert!(RigidBody::from_shape(&BodyShape::Sphere { r: 0.1 }, 0.0).is_err());
        let mut s = BodyState::at([0.0; 3]);
        s.v[1] = f64::NAN;
        assert!(s.check().is_err());
        let j = [[2.0, 0.3, 0.0], [0.3, 1.5, 0.1], [0.0, 0.1, 1.0]];
        let p = mass_moment(&j);
        let ji = inverse(&j);
        let id = so3::mat_mul(&j, &ji);
        assert!((0..9).all(|k| (id[k / 3][k % 3] - f64::from(u8::from(k % 4 == 0))).abs() < 1e-14));
        assert!((p[0][0] - (0.5 * 4.5 - 2.0)).abs() < 1e-15);
    }
}
