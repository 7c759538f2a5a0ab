//! Spatial algebra (Featherstone, *Rigid Body Dynamics Algorithms*, 2008), generic over the
//! scalar: motions `[ω; v]` and forces `[n; f]` (angular first), Plücker transforms, rigid-body
//! spatial inertias, and the 6×6 matrices of articulated inertias.

use super::Real;

/// A 3-vector.
pub type Vec3<T> = [T; 3];
/// A 3×3 matrix, row-major.
pub type Mat3<T> = [[T; 3]; 3];
/// A 6×6 matrix acting on `[ω; v]` motions, row-major.
pub type Mat6<T> = [[T; 6]; 6];
/// A dense matrix (for example `nv × nv`), row-major.
pub type Matrix = Vec<Vec<f64>>;

/// `T` from an `f64` constant.
pub fn c<T: Real>(x: f64) -> T {
    T::from(x)
}

pub(crate) fn cross<T: Real>(a: Vec3<T>, b: Vec3<T>) -> Vec3<T> {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// The matrix `v×` of the cross product with `v`.
fn skew<T: Real>(v: Vec3<T>) -> Mat3<T> {
    let z = c::<T>(0.0);
    [[z, -v[2], v[1]], [v[2], z, -v[0]], [-v[1], v[0], z]]
}

pub(crate) fn add<T: Real>(a: Vec3<T>, b: Vec3<T>) -> Vec3<T> {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub(crate) fn sub<T: Real>(a: Vec3<T>, b: Vec3<T>) -> Vec3<T> {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn dot<T: Real>(a: Vec3<T>, b: Vec3<T>) -> T {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn mat_vec<T: Real>(m: &Mat3<T>, v: Vec3<T>) -> Vec3<T> {
    std::array::from_fn(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
}

pub(crate) fn mat_t_vec<T: Real>(m: &Mat3<T>, v: Vec3<T>) -> Vec3<T> {
    std::array::from_fn(|i| m[0][i] * v[0] + m[1][i] * v[1] + m[2][i] * v[2])
}

pub(crate) fn mat_mul<T: Real>(a: &Mat3<T>, b: &Mat3<T>) -> Mat3<T> {
    std::array::from_fn(|i| {
        std::array::from_fn(|j| a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j])
    })
}

pub(crate) fn identity<T: Real>() -> Mat3<T> {
    std::array::from_fn(|i| std::array::from_fn(|j| c(f64::from(u8::from(i == j)))))
}

/// The rotation matrix of a unit quaternion `(w, x, y, z)` (body → parent).
pub fn quat_matrix<T: Real>(q: [T; 4]) -> Mat3<T> {
    let [w, x, y, z] = q;
    let two = c::<T>(2.0);
    let one = c::<T>(1.0);
    [
        [
            one - two * (y * y + z * z),
            two * (x * y - w * z),
            two * (x * z + w * y),
        ],
        [
            two * (x * y + w * z),
            one - two * (x * x + z * z),
            two * (y * z - w * x),
        ],
        [
            two * (x * z - w * y),
            two * (y * z + w * x),
            one - two * (x * x + y * y),
        ],
    ]
}

/// The rotation by `angle` about the unit `axis` (Rodrigues).
pub fn axis_angle<T: Real>(axis: Vec3<T>, angle: T) -> Mat3<T> {
    let (s, co) = angle.sin_cos();
    let one = c::<T>(1.0);
    let k = axis;
    std::array::from_fn(|i| {
        std::array::from_fn(|j| {
            let id = c::<T>(f64::from(u8::from(i == j)));
            let skew = match (i, j) {
                (0, 1) => -k[2],
                (0, 2) => k[1],
                (1, 0) => k[2],
                (1, 2) => -k[0],
                (2, 0) => -k[1],
                (2, 1) => k[0],
                _ => c(0.0),
            };
            co * id + s * skew + (one - co) * k[i] * k[j]
        })
    })
}

/// A spatial motion `[ω; v]` (rad/s, m/s; `v` the velocity of the frame's origin).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Motion<T> {
    pub w: Vec3<T>,
    pub v: Vec3<T>,
}

/// A spatial force `[n; f]` (N·m about the frame's origin, N).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Force<T> {
    pub n: Vec3<T>,
    pub f: Vec3<T>,
}

impl<T: Real> Motion<T> {
    pub fn zero() -> Self {
        Self {
            w: [c(0.0); 3],
            v: [c(0.0); 3],
        }
    }

    /// The motion as 6 numbers `[ω; v]`.
    pub fn array(&self) -> [T; 6] {
        [
            self.w[0], self.w[1], self.w[2], self.v[0], self.v[1], self.v[2],
        ]
    }

    pub fn from_array(a: [T; 6]) -> Self {
        Self {
            w: [a[0], a[1], a[2]],
            v: [a[3], a[4], a[5]],
        }
    }

    pub fn add(&self, o: &Self) -> Self {
        Self {
            w: add(self.w, o.w),
            v: add(self.v, o.v),
        }
    }

    pub fn sub(&self, o: &Self) -> Self {
        Self {
            w: sub(self.w, o.w),
            v: sub(self.v, o.v),
        }
    }

    pub fn scale(&self, s: T) -> Self {
        Self {
            w: self.w.map(|x| x * s),
            v: self.v.map(|x| x * s),
        }
    }

    /// `self × m` (motion cross product).
    pub fn cross_motion(&self, m: &Motion<T>) -> Motion<T> {
        Motion {
            w: cross(self.w, m.w),
            v: add(cross(self.w, m.v), cross(self.v, m.w)),
        }
    }

    /// `self ×* f` (force cross product).
    pub fn cross_force(&self, f: &Force<T>) -> Force<T> {
        Force {
            n: add(cross(self.w, f.n), cross(self.v, f.f)),
            f: cross(self.w, f.f),
        }
    }

    /// The power `mᵀf` of a force along this motion.
    pub fn dot(&self, f: &Force<T>) -> T {
        dot(self.w, f.n) + dot(self.v, f.f)
    }
}

impl<T: Real> Force<T> {
    pub fn zero() -> Self {
        Self {
            n: [c(0.0); 3],
            f: [c(0.0); 3],
        }
    }

    pub fn array(&self) -> [T; 6] {
        [
            self.n[0], self.n[1], self.n[2], self.f[0], self.f[1], self.f[2],
        ]
    }

    pub fn from_array(a: [T; 6]) -> Self {
        Self {
            n: [a[0], a[1], a[2]],
            f: [a[3], a[4], a[5]],
        }
    }

    pub fn add(&self, o: &Self) -> Self {
        Self {
            n: add(self.n, o.n),
            f: add(self.f, o.f),
        }
    }

    pub fn sub(&self, o: &Self) -> Self {
        Self {
            n: sub(self.n, o.n),
            f: sub(self.f, o.f),
        }
    }
}

/// The Plücker transform `ᴮX_A` from frame A to frame B: `e` turns A's coordinates into B's,
/// `r` is B's origin in A's coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform<T> {
    pub e: Mat3<T>,
    pub r: Vec3<T>,
}

impl<T: Real> Transform<T> {
    pub fn identity() -> Self {
        Self {
            e: identity(),
            r: [c(0.0); 3],
        }
    }

    /// `ᴮX_A m`: `[Eω; E(v − r × ω)]`.
    pub fn motion(&self, m: &Motion<T>) -> Motion<T> {
        Motion {
            w: mat_vec(&self.e, m.w),
            v: mat_vec(&self.e, sub(m.v, cross(self.r, m.w))),
        }
    }

    /// `ᴬX_B m` (the inverse): `ω_A = Eᵀω`, `v_A = Eᵀv + r × ω_A`.
    pub fn inv_motion(&self, m: &Motion<T>) -> Motion<T> {
        let w = mat_t_vec(&self.e, m.w);
        Motion {
            w,
            v: add(mat_t_vec(&self.e, m.v), cross(self.r, w)),
        }
    }

    /// `ᴮX_A* f`: `[E(n − r × f); Ef]`.
    pub fn force(&self, f: &Force<T>) -> Force<T> {
        Force {
            n: mat_vec(&self.e, sub(f.n, cross(self.r, f.f))),
            f: mat_vec(&self.e, f.f),
        }
    }

    /// `(ᴮX_A)ᵀ f = ᴬX_B* f`: `f_A = Eᵀf`, `n_A = Eᵀn + r × f_A`.
    pub fn inv_force(&self, f: &Force<T>) -> Force<T> {
        let ff = mat_t_vec(&self.e, f.f);
        Force {
            n: add(mat_t_vec(&self.e, f.n), cross(self.r, ff)),
            f: ff,
        }
    }

    /// `self ∘ first` (first A → B, then `self` B → C): `E = E₂E₁`, `r = r₁ + E₁ᵀr₂`.
    pub fn after(&self, first: &Transform<T>) -> Transform<T> {
        Transform {
            e: mat_mul(&self.e, &first.e),
            r: add(first.r, mat_t_vec(&first.e, self.r)),
        }
    }

    /// The 6×6 motion matrix `[[E, 0], [−E r×, E]]`.
    pub fn matrix(&self) -> Mat6<T> {
        let e = &self.e;
        let rx = skew(self.r);
        let mut x = [[c(0.0); 6]; 6];
        for i in 0..3 {
            for j in 0..3 {
                x[i][j] = e[i][j];
                x[i + 3][j + 3] = e[i][j];
                x[i + 3][j] = -(e[i][0] * rx[0][j] + e[i][1] * rx[1][j] + e[i][2] * rx[2][j]);
            }
        }
        x
    }
}

impl Transform<f64> {
    /// `ᴮX_A` for a frame B placed in A at `xyz` (m) and turned by roll, pitch and yaw (rad)
    /// about A's fixed x, y and z axes in that order: B's axes in A are the columns of
    /// `R = R_z(yaw) R_y(pitch) R_x(roll)` (the URDF and SDF convention), so `E = Rᵀ`.
    pub fn from_xyz_rpy(xyz: Vec3<f64>, rpy: Vec3<f64>) -> Self {
        let rot = |axis: usize, angle: f64| {
            let mut k = [0.0; 3];
            k[axis] = 1.0;
            axis_angle(k, angle)
        };
        let r = mat_mul(&rot(2, rpy[2]), &mat_mul(&rot(1, rpy[1]), &rot(0, rpy[0])));
        Transform {
            e: std::array::from_fn(|i| std::array::from_fn(|j| r[j][i])),
            r: xyz,
        }
    }

    /// The transform in the scalar `U`.
    pub fn lift<U: Real>(&self) -> Transform<U> {
        Transform {
            e: self.e.map(|r| r.map(c)),
            r: self.r.map(c),
        }
    }
}

/// A rigid body's spatial inertia: mass `m` (kg), centre of mass `com` (m) and rotational
/// inertia `ic` about the centre of mass (kg·m²), in the body frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inertia<T> {
    pub m: T,
    pub com: Vec3<T>,
    pub ic: Mat3<T>,
}

impl<T: Real> Inertia<T> {
    /// `I v`: the momentum `p = m(v − c × ω)`, `n = I_c ω + c × p`.
    pub fn apply(&self, v: &Motion<T>) -> Force<T> {
        let p = sub(v.v, cross(self.com, v.w)).map(|x| x * self.m);
        Force {
            n: add(mat_vec(&self.ic, v.w), cross(self.com, p)),
            f: p,
        }
    }

    /// The 6×6 matrix `[[I_c + m c×c×ᵀ, m c×], [m c×ᵀ, m 1]]` ([`Composite::matrix`] of it).
    pub fn matrix(&self) -> Mat6<T> {
        Composite::of(self).matrix()
    }
}

/// A spatial inertia by its parameters about a frame's origin: mass `m`, first moment
/// `h = m·c` and rotational inertia `Ī = I_c − m [c]×²` (what CRBA sums over subtrees without
/// 6×6 products).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Composite<T> {
    pub m: T,
    pub h: Vec3<T>,
    pub i: Mat3<T>,
}

impl<T: Real> Composite<T> {
    /// A body's inertia about its frame's origin.
    pub fn of(b: &Inertia<T>) -> Self {
        let h = b.com.map(|x| x * b.m);
        let s = skew(b.com);
        let s2 = mat_mul(&s, &s);
        Self {
            m: b.m,
            h,
            i: std::array::from_fn(|r| std::array::from_fn(|k| b.ic[r][k] - s2[r][k] * b.m)),
        }
    }

    /// `self + o` (both about the same origin, in the same axes).
    pub fn add(&self, o: &Self) -> Self {
        Self {
            m: self.m + o.m,
            h: add(self.h, o.h),
            i: std::array::from_fn(|r| std::array::from_fn(|k| self.i[r][k] + o.i[r][k])),
        }
    }

    /// The same inertia in frame A, given `x = ᴮX_A` (this one in B), about A's origin:
    /// `h_A = m r + Eᵀh`, `Ī_A = EᵀĪE − m[r]×² − [r]×[h']× − [h']×[r]×` with `h' = Eᵀh`.
    pub fn expressed_in(&self, x: &Transform<T>) -> Self {
        let e = &x.e;
        let hp = mat_t_vec(e, self.h);
        let ie: Mat3<T> = std::array::from_fn(|r| {
            std::array::from_fn(|k| (0..3).fold(c(0.0), |a, j| a + self.i[r][j] * e[j][k]))
        });
        let (sr, sh) = (skew(x.r), skew(hp));
        let (rr, rh, hr) = (mat_mul(&sr, &sr), mat_mul(&sr, &sh), mat_mul(&sh, &sr));
        Self {
            m: self.m,
            h: add(x.r.map(|v| v * self.m), hp),
            i: std::array::from_fn(|r| {
                std::array::from_fn(|k| {
                    (0..3).fold(c::<T>(0.0), |a, j| a + e[j][r] * ie[j][k])
                        - rr[r][k] * self.m
                        - rh[r][k]
                        - hr[r][k]
                })
            }),
        }
    }

    /// The 6×6 matrix `[[Ī, [h]×], [[h]×ᵀ, m 1]]`.
    pub fn matrix(&self) -> Mat6<T> {
        let hx = skew(self.h);
        let mut out = [[c(0.0); 6]; 6];
        for r in 0..3 {
            for k in 0..3 {
                out[r][k] = self.i[r][k];
                out[r][k + 3] = hx[r][k];
                out[r + 3][k] = hx[k][r];
            }
            out[r + 3][r + 3] = self.m;
        }
        out
    }

    /// `I v`: `n = Īω + h × v`, `f = m v − h × ω`.
    pub fn apply(&self, v: &Motion<T>) -> Force<T> {
        Force {
            n: add(mat_vec(&self.i, v.w), cross(self.h, v.v)),
            f: sub(v.v.map(|x| x * self.m), cross(self.h, v.w)),
        }
    }
}

impl Inertia<f64> {
    /// The sum of rigidly joined parts (each with its mass, centre of mass and rotational
    /// inertia about it, in one frame) about their common centre of mass (parallel axes).
    /// Massless parts add nothing; no mass at all gives the zero inertia.
    pub fn combine(parts: &[Inertia<f64>]) -> Inertia<f64> {
        let m: f64 = parts.iter().map(|p| p.m).sum();
        if m <= 0.0 {
            return Inertia {
                m: 0.0,
                com: [0.0; 3],
                ic: [[0.0; 3]; 3],
            };
        }
        let com: Vec3<f64> =
            std::array::from_fn(|k| parts.iter().map(|p| p.m * p.com[k]).sum::<f64>() / m);
        let mut ic = [[0.0; 3]; 3];
        for p in parts {
            let d: Vec3<f64> = std::array::from_fn(|k| p.com[k] - com[k]);
            let dd: f64 = d.iter().map(|x| x * x).sum();
            for (i, row) in ic.iter_mut().enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    *x += p.ic[i][j] + p.m * (if i == j { dd } else { 0.0 } - d[i] * d[j]);
                }
            }
        }
        Inertia { m, com, ic }
    }

    /// The inertia in the scalar `U`.
    pub fn lift<U: Real>(&self) -> Inertia<U> {
        Inertia {
            m: c(self.m),
            com: self.com.map(c),
            ic: self.ic.map(|r| r.map(c)),
        }
    }
}

pub(crate) fn mat6_vec<T: Real>(m: &Mat6<T>, v: [T; 6]) -> [T; 6] {
    std::array::from_fn(|i| (0..6).fold(c(0.0), |a, j| a + m[i][j] * v[j]))
}

/// `Xᵀ I X` for a motion transform `X` (6×6): an inertia in B's frame seen from A's.
pub(crate) fn congruence<T: Real>(x: &Mat6<T>, i: &Mat6<T>) -> Mat6<T> {
    let ix: Mat6<T> = std::array::from_fn(|r| {
        std::array::from_fn(|col| (0..6).fold(c(0.0), |a, k| a + i[r][k] * x[k][col]))
    });
    std::array::from_fn(|r| {
        std::array::from_fn(|col| (0..6).fold(c(0.0), |a, k| a + x[k][r] * ix[k][col]))
    })
}

/// Solves the small dense system `a·x = b` (Gauss-Jordan with partial pivoting on the real
/// parts); `None` when singular.
pub(crate) fn solve_small<T: Real>(a: &[Vec<T>], b: &[T]) -> Option<Vec<T>> {
    let n = b.len();
    let mut m: Vec<Vec<T>> = a
        .iter()
        .zip(b)
        .map(|(r, &x)| r.iter().copied().chain([x]).collect())
        .collect();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| {
            m[i][col]
                .re()
                .abs()
                .partial_cmp(&m[j][col].re().abs())
                .unwrap_or(std::cmp::Ordering::Equal)
        })?;
        if m[piv][col].re() == 0.0 || !m[piv][col].re().is_finite() {
            return None;
        }
        m.swap(col, piv);
        let p = m[col][col];
        m[col][col..].iter_mut().for_each(|x| *x /= p);
        let pivot_row = m[col].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != col {
                let f = row[col];
                for (x, &t) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * t;
                }
            }
        }
    }
    Some(m.into_iter().map(|r| r[n]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A composite carried into another frame equals the 6×6 congruence `Xᵀ I X`, and its
    /// `apply` the matrix's product.
    #[test]
    fn composite_transform_equals_the_congruence() {
        let body: Inertia<f64> = Inertia {
            m: 1.7,
            com: [0.1, -0.3, 0.25],
            ic: [[0.3, 0.02, -0.01], [0.02, 0.25, 0.03], [-0.01, 0.03, 0.2]],
        };
        let x: Transform<f64> = Transform {
            e: axis_angle([0.48, 0.6, 0.64], 0.9),
            r: [0.4, -0.2, 0.7],
        };
        let want = congruence(&x.matrix(), &body.matrix());
        let got = Composite::of(&body).expressed_in(&x);
        let m = got.matrix();
        let v = Motion {
            w: [0.3, -1.1, 0.4],
            v: [0.9, 0.2, -0.5],
        };
        let f = got.apply(&v).array();
        let mv = mat6_vec(&m, v.array());
        for r in 0..6 {
            assert!((f[r] - mv[r]).abs() < 1e-14, "apply row {r}");
            for k in 0..6 {
                assert!((m[r][k] - want[r][k]).abs() < 1e-14, "({r}, {k})");
            }
        }
    }
}
