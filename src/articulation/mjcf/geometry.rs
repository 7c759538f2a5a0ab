//! MJCF attribute parsing, frame orientations and the mass properties of geoms.

use super::super::spatial::{Inertia, Vec3};
use crate::error::{DiffsimError, Result};
use std::collections::HashMap;

pub(super) fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(DiffsimError::config(msg.into()))
}

/// Numbers of an attribute.
pub(super) fn numbers(attrs: &HashMap<String, String>, key: &str) -> Result<Option<Vec<f64>>> {
    attrs
        .get(key)
        .map(|s| {
            s.split_whitespace()
                .map(|t| {
                    t.parse::<f64>().map_err(|_| {
                        DiffsimError::config(format!(
                            "attribute {key}=\"{s}\" is not a list of numbers"
                        ))
                    })
                })
                .collect()
        })
        .transpose()
}

pub(super) fn vec3(
    attrs: &HashMap<String, String>,
    key: &str,
    default: Vec3<f64>,
) -> Result<Vec3<f64>> {
    match numbers(attrs, key)? {
        None => Ok(default),
        Some(v) if v.len() >= 3 => Ok([v[0], v[1], v[2]]),
        Some(v) => fail(format!("attribute {key} needs 3 numbers, got {}", v.len())),
    }
}

pub(super) fn scalar(attrs: &HashMap<String, String>, key: &str, default: f64) -> Result<f64> {
    Ok(numbers(attrs, key)?
        .and_then(|v| v.first().copied())
        .unwrap_or(default))
}

pub(super) type M3 = [[f64; 3]; 3];

pub(super) fn mat_mul(a: &M3, b: &M3) -> M3 {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

pub(super) fn mat_vec(a: &M3, x: Vec3<f64>) -> Vec3<f64> {
    std::array::from_fn(|i| (0..3).map(|k| a[i][k] * x[k]).sum())
}

pub(super) fn normalise(v: Vec3<f64>) -> Result<Vec3<f64>> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if !(n > 0.0 && n.is_finite()) {
        return fail(format!("the direction {v:?} has no length"));
    }
    Ok(v.map(|x| x / n))
}

pub(super) fn identity() -> M3 {
    std::array::from_fn(|i| std::array::from_fn(|j| f64::from(u8::from(i == j))))
}

/// The rotation by `angle` about the unit `axis`.
pub(super) fn axis_angle(axis: Vec3<f64>, angle: f64) -> M3 {
    super::super::spatial::axis_angle(axis, angle)
}

/// The rotation of a unit quaternion `(w, x, y, z)`.
pub(super) fn quat(q: &[f64]) -> Result<M3> {
    let n = q.iter().map(|x| x * x).sum::<f64>().sqrt();
    if q.len() != 4 || n.is_nan() || n <= 0.0 {
        return fail(format!("quat {q:?} is not a non-zero quaternion"));
    }
    Ok(super::super::spatial::quat_matrix([
        q[0] / n,
        q[1] / n,
        q[2] / n,
        q[3] / n,
    ]))
}

/// The unit quaternion `(w, x, y, z)` of a rotation matrix (Shepperd's method: the largest
/// of the four squared components is taken from the trace, the others from it).
pub(super) fn matrix_quat(r: &M3) -> [f64; 4] {
    let t = r[0][0] + r[1][1] + r[2][2];
    let q = if t >= r[0][0].max(r[1][1]).max(r[2][2]) {
        let w = 0.5 * (1.0 + t).sqrt();
        let k = 0.25 / w;
        [
            w,
            (r[2][1] - r[1][2]) * k,
            (r[0][2] - r[2][0]) * k,
            (r[1][0] - r[0][1]) * k,
        ]
    } else if r[0][0] >= r[1][1] && r[0][0] >= r[2][2] {
        let x = 0.5 * (1.0 + 2.0 * r[0][0] - t).sqrt();
        let k = 0.25 / x;
        [
            (r[2][1] - r[1][2]) * k,
            x,
            (r[0][1] + r[1][0]) * k,
            (r[0][2] + r[2][0]) * k,
        ]
    } else if r[1][1] >= r[2][2] {
        let y = 0.5 * (1.0 + 2.0 * r[1][1] - t).sqrt();
        let k = 0.25 / y;
        [
            (r[0][2] - r[2][0]) * k,
            (r[0][1] + r[1][0]) * k,
            y,
            (r[1][2] + r[2][1]) * k,
        ]
    } else {
        let z = 0.5 * (1.0 + 2.0 * r[2][2] - t).sqrt();
        let k = 0.25 / z;
        [
            (r[1][0] - r[0][1]) * k,
            (r[0][2] + r[2][0]) * k,
            (r[1][2] + r[2][1]) * k,
            z,
        ]
    };
    if q[0] < 0.0 { q.map(|x| -x) } else { q }
}

/// The smallest rotation taking `z` to the unit `d`.
pub(super) fn z_to(d: Vec3<f64>) -> M3 {
    let c = d[2];
    let axis = [-d[1], d[0], 0.0];
    let s = (axis[0] * axis[0] + axis[1] * axis[1]).sqrt();
    if s < 1e-12 {
        return if c > 0.0 {
            identity()
        } else {
            axis_angle([1.0, 0.0, 0.0], std::f64::consts::PI)
        };
    }
    axis_angle(axis.map(|x| x / s), s.atan2(c))
}

/// An element's frame orientation (`quat`, `axisangle`, `euler`, `zaxis` or `xyaxes`).
pub(super) fn orientation(attrs: &HashMap<String, String>, degrees: bool) -> Result<M3> {
    let unit = if degrees {
        std::f64::consts::PI / 180.0
    } else {
        1.0
    };
    if let Some(q) = numbers(attrs, "quat")? {
        return quat(&q);
    }
    if let Some(a) = numbers(attrs, "axisangle")? {
        if a.len() != 4 {
            return fail("axisangle needs 4 numbers");
        }
        return Ok(axis_angle(normalise([a[0], a[1], a[2]])?, a[3] * unit));
    }
    if let Some(e) = numbers(attrs, "euler")? {
        if e.len() != 3 {
            return fail("euler needs 3 numbers");
        }
        // MuJoCo's default sequence "xyz": intrinsic x, then y, then z.
        let r = |k: usize, a: f64| {
            let mut ax = [0.0; 3];
            ax[k] = 1.0;
            axis_angle(ax, a * unit)
        };
        return Ok(mat_mul(&mat_mul(&r(0, e[0]), &r(1, e[1])), &r(2, e[2])));
    }
    if attrs.contains_key("zaxis") {
        return Ok(z_to(normalise(vec3(attrs, "zaxis", [0.0, 0.0, 1.0])?)?));
    }
    if let Some(a) = numbers(attrs, "xyaxes")? {
        if a.len() != 6 {
            return fail("xyaxes needs 6 numbers");
        }
        let x = normalise([a[0], a[1], a[2]])?;
        let y0 = [a[3], a[4], a[5]];
        let d: f64 = (0..3).map(|k| x[k] * y0[k]).sum();
        let y = normalise(std::array::from_fn(|k| y0[k] - d * x[k]))?;
        let z = [
            x[1] * y[2] - x[2] * y[1],
            x[2] * y[0] - x[0] * y[2],
            x[0] * y[1] - x[1] * y[0],
        ];
        return Ok(std::array::from_fn(|i| [x[i], y[i], z[i]]));
    }
    Ok(identity())
}

/// A geom's centre, orientation and half length along its z axis (body frame): from `pos`,
/// the orientation attributes and `size[1]`, or from `fromto` for capsules and cylinders.
pub(super) fn geom_frame(
    a: &HashMap<String, String>,
    degrees: bool,
) -> Result<(Vec3<f64>, M3, f64)> {
    let kind = a.get("type").map_or("sphere", String::as_str);
    let size = numbers(a, "size")?.unwrap_or_default();
    let Some(ft) = numbers(a, "fromto")? else {
        let half = size.get(1).copied().unwrap_or(0.0);
        return Ok((vec3(a, "pos", [0.0; 3])?, orientation(a, degrees)?, half));
    };
    if ft.len() != 6 || !matches!(kind, "capsule" | "cylinder") {
        return fail(format!(
            "fromto is read for capsules and cylinders only (geom type {kind})"
        ));
    }
    let d = [ft[3] - ft[0], ft[4] - ft[1], ft[5] - ft[2]];
    let pos = std::array::from_fn(|k| 0.5 * (ft[k] + ft[k + 3]));
    let half = 0.5 * d.iter().map(|x| x * x).sum::<f64>().sqrt();
    Ok((pos, z_to(normalise(d)?), half))
}

/// Mass, centre of mass and inertia about it (body frame) of one geom.
pub(super) fn geom_inertia(
    a: &HashMap<String, String>,
    degrees: bool,
) -> Result<Option<Inertia<f64>>> {
    let kind = a.get("type").map_or("sphere", String::as_str);
    let size = numbers(a, "size")?.unwrap_or_default();
    let need = |k: usize| -> Result<()> {
        if size.len() < k {
            fail(format!("a {kind} geom needs {k} size numbers"))
        } else {
            Ok(())
        }
    };
    let (pos, rot, half) = geom_frame(a, degrees)?;
    let pi = std::f64::consts::PI;
    // Volume and principal inertia per unit mass.
    let (volume, unit): (f64, Vec3<f64>) = match kind {
        "plane" | "hfield" | "mesh" | "sdf" => return Ok(None),
        "sphere" => {
            need(1)?;
            let r = size[0];
            (4.0 / 3.0 * pi * r.powi(3), [0.4 * r * r; 3])
        }
        "ellipsoid" => {
            need(3)?;
            let [x, y, z] = [size[0], size[1], size[2]];
            (
                4.0 / 3.0 * pi * x * y * z,
                [
                    (y * y + z * z) / 5.0,
                    (x * x + z * z) / 5.0,
                    (x * x + y * y) / 5.0,
                ],
            )
        }
        "box" => {
            need(3)?;
            let [x, y, z] = [size[0], size[1], size[2]];
            (
                8.0 * x * y * z,
                [
                    (y * y + z * z) / 3.0,
                    (x * x + z * z) / 3.0,
                    (x * x + y * y) / 3.0,
                ],
            )
        }
        "cylinder" => {
            let r = size.first().copied().unwrap_or(0.0);
            let l = 2.0 * half;
            (
                (pi * r * r * l),
                [
                    (3.0 * r * r + l * l) / 12.0,
                    (3.0 * r * r + l * l) / 12.0,
                    r * r / 2.0,
                ],
            )
        }
        "capsule" => {
            let r = size.first().copied().unwrap_or(0.0);
            let l = 2.0 * half;
            let (vc, vs) = (pi * r * r * l, 4.0 / 3.0 * pi * r.powi(3));
            let v = vc + vs;
            // Cylinder plus two hemispheres, each hemisphere's inertia moved to the centre.
            let side = (vc * (3.0 * r * r + l * l) / 12.0
                + vs * (0.4 * r * r + 0.375 * r * l + 0.25 * l * l))
                / v;
            (v, [side, side, (vc * r * r / 2.0 + vs * 0.4 * r * r) / v])
        }
        other => return fail(format!("geom type '{other}' is not read")),
    };
    let mass = match numbers(a, "mass")? {
        Some(m) => m[0],
        None => scalar(a, "density", 1000.0)? * volume,
    };
    let local: M3 =
        std::array::from_fn(|i| std::array::from_fn(|j| if i == j { mass * unit[i] } else { 0.0 }));
    let rt: M3 = std::array::from_fn(|i| std::array::from_fn(|j| rot[j][i]));
    Ok(Some(Inertia {
        m: mass,
        com: pos,
        ic: mat_mul(&mat_mul(&rot, &local), &rt),
    }))
}
