//! Output shapes of the grid ops for Burn's fusion, which must know them before it runs the
//! kernels (`#[fusion(...)]` annotations of the extension traits).

use burn::backend::fusion::custom::TensorSpec;
use burn::tensor::Shape;

/// The cells `[B, ny, nx]` of an x-face array `[B, ny, nx+1]`.
pub fn cells_of_u(u: &Shape) -> Shape {
    Shape::new([u[0], u[1], u[2] - 1])
}

/// The two face arrays `[B, ny, nx+1]`, `[B, ny+1, nx]` of a cell array `[B, ny, nx]`.
pub fn faces_of(c: &TensorSpec) -> (TensorSpec, TensorSpec) {
    let s = &c.shape;
    (
        TensorSpec::new(Shape::new([s[0], s[1], s[2] + 1]), c.dtype),
        TensorSpec::new(Shape::new([s[0], s[1] + 1, s[2]]), c.dtype),
    )
}

/// A projection's outputs: the velocity's shapes and the pressure on the cells.
pub fn projected(u: &TensorSpec, v: &TensorSpec) -> (TensorSpec, TensorSpec, TensorSpec) {
    (
        u.clone(),
        v.clone(),
        TensorSpec::new(cells_of_u(&u.shape), u.dtype),
    )
}
