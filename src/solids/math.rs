//! Small fixed-size vector and matrix math of the solids (f64, 3D).

/// A 3-vector.
pub type V3 = [f64; 3];

/// A 3×3 matrix, row-major.
pub type M3 = [[f64; 3]; 3];

/// `a − b`.
pub fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
/// `a·b`.
pub fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
/// `s·a`.
pub fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
