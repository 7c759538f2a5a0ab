//! Closed triangle meshes: their check, their mass properties, and their signed distance
//! (parry's BVH point projection, signed by its angle-weighted pseudo-normals) with the
//! normal's derivative for the smooth contact law.

use super::math::{M3, V3};
use crate::error::{DiffsimError, Result};
use parry3d_f64::mass_properties::MassProperties;
use parry3d_f64::mass_properties::details::trimesh_signed_volume_and_center_of_mass;
use parry3d_f64::math::Point;
use parry3d_f64::query::PointQueryWithLocation;
use parry3d_f64::shape::{TriMesh, TriMeshFlags, TrianglePointLocation};
use std::collections::HashMap;

/// A triangle mesh: vertices (m) and counter-clockwise triangles seen from outside.
#[derive(Clone, Debug, PartialEq)]
pub struct TriangleMesh {
    /// Vertex positions (m).
    pub vertices: Vec<V3>,
    /// Vertex indices of each triangle, counter-clockwise seen from outside.
    pub triangles: Vec<[u32; 3]>,
}

impl TriangleMesh {
    /// The box of half extents `half` centred at `center`: 8 vertices (vertex `k` has bit `i`
    /// set where coordinate `i` is `+half`), 12 outward triangles.
    pub fn cuboid(half: V3, center: V3) -> Self {
        let vertices = (0..8)
            .map(|k| {
                let s = |b: usize| if k >> b & 1 == 1 { 1.0 } else { -1.0 };
                [0, 1, 2].map(|i| center[i] + s(i) * half[i])
            })
            .collect();
        // Each face's corners counter-clockwise seen from outside.
        let faces: [[u32; 4]; 6] = [
            [0, 4, 6, 2],
            [1, 3, 7, 5],
            [0, 1, 5, 4],
            [2, 6, 7, 3],
            [0, 2, 3, 1],
            [4, 5, 7, 6],
        ];
        let triangles = faces
            .iter()
            .flat_map(|f| [[f[0], f[1], f[2]], [f[0], f[2], f[3]]])
            .collect();
        Self {
            vertices,
            triangles,
        }
    }

    /// Checks the mesh bounds a solid: finite vertices, indices in range, no degenerate
    /// triangle, and every edge shared by exactly two triangles that traverse it in opposite
    /// directions (closed and consistently oriented), with a positive enclosed volume
    /// (outward orientation).
    pub fn check_closed(&self) -> Result<()> {
        let bad = |msg: String| Err(DiffsimError::config(format!("triangle mesh: {msg}")));
        if self.vertices.iter().flatten().any(|x| !x.is_finite()) {
            return bad("a vertex is not finite".into());
        }
        if self.triangles.len() < 4 {
            return bad(format!(
                "{} triangles cannot close a solid",
                self.triangles.len()
            ));
        }
        let n = self.vertices.len() as u32;
        let mut edges: HashMap<(u32, u32), usize> = HashMap::new();
        for (t, tri) in self.triangles.iter().enumerate() {
            if tri.iter().any(|&i| i >= n) {
                return bad(format!("triangle {t} indexes a vertex past the {n} given"));
            }
            if tri[0] == tri[1] || tri[1] == tri[2] || tri[0] == tri[2] {
                return bad(format!("triangle {t} repeats a vertex"));
            }
            for k in 0..3 {
                *edges.entry((tri[k], tri[(k + 1) % 3])).or_default() += 1;
            }
        }
        for (&(a, b), &count) in &edges {
            if count != 1 || edges.get(&(b, a)) != Some(&1) {
                return bad(format!(
                    "edge {a}-{b} is not shared by exactly two oppositely oriented triangles: the mesh is not closed (or not consistently oriented)"
                ));
            }
        }
        if self.signed_volume() <= 0.0 {
            return bad("its triangles face inwards (negative volume)".into());
        }
        Ok(())
    }

    fn points(&self) -> Vec<Point<f64>> {
        self.vertices
            .iter()
            .map(|v| Point::new(v[0], v[1], v[2]))
            .collect()
    }

    /// The enclosed volume (m³; negative for a mesh facing inwards).
    fn signed_volume(&self) -> f64 {
        trimesh_signed_volume_and_center_of_mass(&self.points(), &self.triangles).0
    }

    /// Mass (kg), centre of mass (m) and inertia tensor about it (kg·m²) of the solid the
    /// mesh bounds at `density` (kg/m³); a mesh facing inwards gives a negative volume and a
    /// non-positive mass.
    pub fn mass_properties(&self, density: f64) -> (f64, V3, M3) {
        let points = self.points();
        let (volume, c) = trimesh_signed_volume_and_center_of_mass(&points, &self.triangles);
        let j = MassProperties::from_trimesh(density, &points, &self.triangles)
            .reconstruct_inertia_matrix();
        (
            density * volume,
            [c.x, c.y, c.z],
            std::array::from_fn(|a| std::array::from_fn(|b| j[(a, b)])),
        )
    }
}

/// The signed distance of a closed triangle mesh (negative inside).
#[derive(Clone)]
pub struct MeshSdf {
    mesh: TriMesh,
}

impl std::fmt::Debug for MeshSdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MeshSdf({} vertices, {} triangles)",
            self.mesh.vertices().len(),
            self.mesh.indices().len()
        )
    }
}

impl PartialEq for MeshSdf {
    fn eq(&self, other: &Self) -> bool {
        self.mesh.vertices() == other.mesh.vertices() && self.mesh.indices() == other.mesh.indices()
    }
}

impl MeshSdf {
    /// The signed distance of `mesh`, which must be closed ([`TriangleMesh::check_closed`]).
    pub fn new(mesh: &TriangleMesh) -> Result<Self> {
        mesh.check_closed()?;
        let flags = TriMeshFlags::ORIENTED | TriMeshFlags::MERGE_DUPLICATE_VERTICES;
        let tri = TriMesh::with_flags(mesh.points(), mesh.triangles.clone(), flags)
            .map_err(|e| DiffsimError::config(format!("triangle mesh: {e}")))?;
        Ok(Self { mesh: tri })
    }

    /// The largest distance of a vertex from the mesh's origin.
    pub fn bound(&self) -> f64 {
        self.mesh
            .vertices()
            .iter()
            .map(|v| v.coords.norm())
            .fold(0.0, f64::max)
    }

    /// `(φ, n = ∇φ, ∂n/∂x)` at `x` (mesh frame): the distance to the closest point `p`
    /// signed by the pseudo-normal there, `n = ±(x − p)/|x − p|`, and `∂n/∂x = ±(I − n nᵀ −
    /// e eᵀ)/|x − p|` with `e` the edge's direction when `p` lies on an edge, without it on a
    /// vertex, and zero on a face (where `n` is the face's normal).
    pub fn distance(&self, x: V3) -> (f64, V3, M3) {
        let q = Point::new(x[0], x[1], x[2]);
        let (proj, (tri, location)) = self.mesh.project_local_point_and_get_location(&q, false);
        let sign = if proj.is_inside { -1.0 } else { 1.0 };
        let u = q.coords - proj.point.coords;
        let d = u.norm();
        let triangle = self.mesh.triangle(tri);
        let face = || {
            let n = triangle
                .normal()
                .map_or([0.0, 0.0, 1.0], |n| [n.x, n.y, n.z]);
            (sign * d, n, [[0.0; 3]; 3])
        };
        if d < 1e-12 {
            return face();
        }
        let n: V3 = [u.x / d, u.y / d, u.z / d].map(|c| sign * c);
        let edge = match location {
            TrianglePointLocation::OnFace(..) | TrianglePointLocation::OnSolid => {
                return face();
            }
            TrianglePointLocation::OnVertex(_) => None,
            TrianglePointLocation::OnEdge(i, _) => {
                let (a, b) = match i {
                    0 => (triangle.a, triangle.b),
                    1 => (triangle.b, triangle.c),
                    _ => (triangle.a, triangle.c),
                };
                let e = (b - a).normalize();
                Some([e.x, e.y, e.z])
            }
        };
        let e = edge.unwrap_or([0.0; 3]);
        let dn = std::array::from_fn(|a| {
            std::array::from_fn(|b| {
                let id = f64::from(u8::from(a == b));
                sign * (id - n[a] * n[b] - e[a] * e[b]) / d
            })
        });
        (sign * d, n, dn)
    }
}
