//! An MJCF (MuJoCo XML) reader for the subset small robot models use, into an
//! [`Articulation`].
//!
//! Read: `<include file>` (relative to the including file), `<compiler angle>` (degrees by
//! default, as MuJoCo), `<option timestep gravity>`, `<default>` classes (nested, `class` and
//! `childclass`), `<worldbody>` with nested `<body pos quat|axisangle|euler|zaxis|xyaxes>`,
//! `<joint type=hinge|slide|ball|free pos axis range limited damping armature>` (several
//! joints in one body become a chain of massless links), `<inertial pos quat mass
//! diaginertia|fullinertia>` or else the body's `<geom>`s (sphere, capsule, cylinder, box,
//! ellipsoid; `fromto`; `mass` or `density`, default 1000 kg/m³), and `<actuator>`'s `motor`
//! (gear) and `position` (kp, kv) on joints. Geometry in the world body, sites, cameras,
//! lights, tendons, equality constraints and contact settings are not read; a stiff joint
//! (`stiffness`), another actuator type or an Euler sequence other than `xyz` is refused.
//! Hinge and slide ranges become smooth limits with [`MjcfOptions::limits`]'s law.

use super::joint::JointKind;
use super::model::{Articulation, Drive, Joint, JointLimit, Link};
use super::spatial::{Inertia, Transform, Vec3};
use super::urdf::LimitLaw;
use crate::error::{DiffsimError, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How an MJCF file becomes an articulation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MjcfOptions {
    /// The law of hinge and slide limits; `None` (default) ignores `range`.
    pub limits: Option<LimitLaw>,
}

/// A joint actuator: control `ctrl` acts as the control of velocity coordinate `dof`.
#[derive(Clone, Debug, PartialEq)]
pub struct Actuator {
    pub name: String,
    pub dof: usize,
    /// `ctrlrange` when limited (diffsim does not clamp; an optimiser should bound it).
    pub ctrlrange: Option<[f64; 2]>,
}

/// The model read from an MJCF file.
#[derive(Clone, Debug, PartialEq)]
pub struct MjcfModel {
    pub articulation: Articulation,
    /// `<option timestep>` (s; MuJoCo's default 0.002).
    pub timestep: f64,
    /// Joint names and the offset of their first velocity coordinate.
    pub joints: Vec<(String, usize)>,
    pub actuators: Vec<Actuator>,
}

/// An XML element with its includes inlined.
#[derive(Clone, Debug)]
struct El {
    tag: String,
    attrs: HashMap<String, String>,
    children: Vec<El>,
}

fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(DiffsimError::config(msg.into()))
}

/// Parses `path`, inlining `<include>`s.
fn load(path: &Path, depth: usize) -> Result<El> {
    if depth > 8 {
        return fail(format!("includes nest too deep at '{}'", path.display()));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| DiffsimError::config(format!("cannot read '{}': {e}", path.display())))?;
    let doc = roxmltree::Document::parse(&text)
        .map_err(|e| DiffsimError::config(format!("'{}' is not XML: {e}", path.display())))?;
    let dir = path.parent().map_or_else(PathBuf::new, Path::to_path_buf);
    convert(doc.root_element(), &dir, depth)
}

fn convert(node: roxmltree::Node, dir: &Path, depth: usize) -> Result<El> {
    let mut children = Vec::new();
    for c in node.children().filter(roxmltree::Node::is_element) {
        if c.tag_name().name() == "include" {
            let file = c.attribute("file").unwrap_or_default();
            children.extend(load(&dir.join(file), depth + 1)?.children);
        } else {
            children.push(convert(c, dir, depth)?);
        }
    }
    Ok(El {
        tag: node.tag_name().name().to_string(),
        attrs: node
            .attributes()
            .map(|a| (a.name().to_string(), a.value().to_string()))
            .collect(),
        children,
    })
}

/// Numbers of an attribute.
fn numbers(attrs: &HashMap<String, String>, key: &str) -> Result<Option<Vec<f64>>> {
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

fn vec3(attrs: &HashMap<String, String>, key: &str, default: Vec3<f64>) -> Result<Vec3<f64>> {
    match numbers(attrs, key)? {
        None => Ok(default),
        Some(v) if v.len() >= 3 => Ok([v[0], v[1], v[2]]),
        Some(v) => fail(format!("attribute {key} needs 3 numbers, got {}", v.len())),
    }
}

fn scalar(attrs: &HashMap<String, String>, key: &str, default: f64) -> Result<f64> {
    Ok(numbers(attrs, key)?
        .and_then(|v| v.first().copied())
        .unwrap_or(default))
}

type M3 = [[f64; 3]; 3];

fn mat_mul(a: &M3, b: &M3) -> M3 {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

fn mat_vec(a: &M3, x: Vec3<f64>) -> Vec3<f64> {
    std::array::from_fn(|i| (0..3).map(|k| a[i][k] * x[k]).sum())
}

fn normalise(v: Vec3<f64>) -> Result<Vec3<f64>> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if !(n > 0.0 && n.is_finite()) {
        return fail(format!("the direction {v:?} has no length"));
    }
    Ok(v.map(|x| x / n))
}

fn identity() -> M3 {
    std::array::from_fn(|i| std::array::from_fn(|j| f64::from(u8::from(i == j))))
}

/// The rotation by `angle` about the unit `axis`.
fn axis_angle(axis: Vec3<f64>, angle: f64) -> M3 {
    super::spatial::axis_angle(axis, angle)
}

/// The rotation of a unit quaternion `(w, x, y, z)`.
fn quat(q: &[f64]) -> Result<M3> {
    let n = q.iter().map(|x| x * x).sum::<f64>().sqrt();
    if q.len() != 4 || n.is_nan() || n <= 0.0 {
        return fail(format!("quat {q:?} is not a non-zero quaternion"));
    }
    Ok(super::spatial::quat_matrix([
        q[0] / n,
        q[1] / n,
        q[2] / n,
        q[3] / n,
    ]))
}

/// The smallest rotation taking `z` to the unit `d`.
fn z_to(d: Vec3<f64>) -> M3 {
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
fn orientation(attrs: &HashMap<String, String>, degrees: bool) -> Result<M3> {
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

/// Default classes: per class its parent and its attributes per element tag.
struct Defaults {
    parent: HashMap<String, Option<String>>,
    attrs: HashMap<(String, String), HashMap<String, String>>,
}

impl Defaults {
    fn collect(&mut self, el: &El, parent: Option<&str>) {
        let name = el
            .attrs
            .get("class")
            .cloned()
            .unwrap_or_else(|| String::from("main"));
        self.parent.insert(name.clone(), parent.map(str::to_string));
        for c in &el.children {
            if c.tag == "default" {
                self.collect(c, Some(&name));
            } else {
                self.attrs
                    .entry((name.clone(), c.tag.clone()))
                    .or_default()
                    .extend(c.attrs.clone());
            }
        }
    }

    /// `el`'s attributes over its class chain's defaults for its tag.
    fn resolve(&self, el: &El, class: &str) -> Result<HashMap<String, String>> {
        let class = el.attrs.get("class").map_or(class, String::as_str);
        let mut chain = Vec::new();
        let mut at = Some(class.to_string());
        while let Some(c) = at {
            if !self.parent.contains_key(&c) && c != "main" {
                return fail(format!("unknown default class '{c}'"));
            }
            at = self.parent.get(&c).cloned().flatten();
            chain.push(c);
        }
        let mut out = HashMap::new();
        for c in chain.iter().rev() {
            if let Some(a) = self.attrs.get(&(c.clone(), el.tag.clone())) {
                out.extend(a.clone());
            }
        }
        out.extend(el.attrs.clone());
        Ok(out)
    }
}

/// Mass, centre of mass and inertia about it (body frame) of one geom.
fn geom_inertia(
    a: &HashMap<String, String>,
    degrees: bool,
) -> Result<Option<(f64, Vec3<f64>, M3)>> {
    let kind = a.get("type").map_or("sphere", String::as_str);
    let size = numbers(a, "size")?.unwrap_or_default();
    let need = |k: usize| -> Result<()> {
        if size.len() < k {
            fail(format!("a {kind} geom needs {k} size numbers"))
        } else {
            Ok(())
        }
    };
    let (mut pos, mut rot) = (vec3(a, "pos", [0.0; 3])?, orientation(a, degrees)?);
    let mut half = size.get(1).copied().unwrap_or(0.0);
    if let Some(ft) = numbers(a, "fromto")? {
        if ft.len() != 6 || !matches!(kind, "capsule" | "cylinder") {
            return fail(format!(
                "fromto is read for capsules and cylinders only (geom type {kind})"
            ));
        }
        let d = [ft[3] - ft[0], ft[4] - ft[1], ft[5] - ft[2]];
        pos = [
            0.5 * (ft[0] + ft[3]),
            0.5 * (ft[1] + ft[4]),
            0.5 * (ft[2] + ft[5]),
        ];
        rot = z_to(normalise(d)?);
        half = 0.5 * d.iter().map(|x| x * x).sum::<f64>().sqrt();
    }
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
    Ok(Some((mass, pos, mat_mul(&mat_mul(&rot, &local), &rt))))
}

/// The sum of point-like bodies `(m, c, I_c)` about their common centre of mass.
fn combine(parts: &[(f64, Vec3<f64>, M3)]) -> Inertia<f64> {
    let m: f64 = parts.iter().map(|p| p.0).sum();
    if m <= 0.0 {
        return Inertia {
            m: 0.0,
            com: [0.0; 3],
            ic: [[0.0; 3]; 3],
        };
    }
    let com: Vec3<f64> =
        std::array::from_fn(|k| parts.iter().map(|p| p.0 * p.1[k]).sum::<f64>() / m);
    let mut ic = [[0.0; 3]; 3];
    for (pm, pc, pi) in parts {
        let d: Vec3<f64> = std::array::from_fn(|k| pc[k] - com[k]);
        let dd: f64 = d.iter().map(|x| x * x).sum();
        for i in 0..3 {
            for j in 0..3 {
                ic[i][j] += pi[i][j] + pm * (if i == j { dd } else { 0.0 } - d[i] * d[j]);
            }
        }
    }
    Inertia { m, com, ic }
}

/// The body's inertia in its frame: `<inertial>` if present, else its geoms'.
fn body_inertia(
    body: &El,
    defaults: &Defaults,
    class: &str,
    degrees: bool,
) -> Result<Inertia<f64>> {
    if let Some(i) = body.children.iter().find(|c| c.tag == "inertial") {
        let a = &i.attrs;
        let rot = orientation(a, degrees)?;
        let local: M3 = if let Some(d) = numbers(a, "diaginertia")? {
            std::array::from_fn(|r| std::array::from_fn(|c| if r == c { d[r] } else { 0.0 }))
        } else if let Some(f) = numbers(a, "fullinertia")? {
            [[f[0], f[3], f[4]], [f[3], f[1], f[5]], [f[4], f[5], f[2]]]
        } else {
            return fail("an <inertial> needs diaginertia or fullinertia");
        };
        let rt: M3 = std::array::from_fn(|r| std::array::from_fn(|c| rot[c][r]));
        return Ok(Inertia {
            m: scalar(a, "mass", 0.0)?,
            com: vec3(a, "pos", [0.0; 3])?,
            ic: mat_mul(&mat_mul(&rot, &local), &rt),
        });
    }
    let mut parts = Vec::new();
    for g in body.children.iter().filter(|c| c.tag == "geom") {
        if let Some(p) = geom_inertia(&defaults.resolve(g, class)?, degrees)? {
            parts.push(p);
        }
    }
    Ok(combine(&parts))
}

/// Walks the bodies, appending links.
struct Builder<'a> {
    defaults: &'a Defaults,
    degrees: bool,
    options: &'a MjcfOptions,
    links: Vec<Link>,
    joints: Vec<(String, usize)>,
    joint_link: HashMap<String, usize>,
    nv: usize,
}

impl Builder<'_> {
    /// Adds `body` under link `parent` whose frame sits at `offset` in the parent body's frame.
    fn body(
        &mut self,
        body: &El,
        parent: Option<usize>,
        offset: Vec3<f64>,
        class: &str,
    ) -> Result<()> {
        let name = body
            .attrs
            .get("name")
            .cloned()
            .unwrap_or_else(|| format!("body{}", self.links.len()));
        let class = body
            .attrs
            .get("childclass")
            .map_or(class, String::as_str)
            .to_string();
        let pos = vec3(&body.attrs, "pos", [0.0; 3])?;
        let rot = orientation(&body.attrs, self.degrees)?;
        let rt: M3 = std::array::from_fn(|i| std::array::from_fn(|j| rot[j][i]));
        let mut joints = Vec::new();
        for j in body
            .children
            .iter()
            .filter(|c| c.tag == "joint" || c.tag == "freejoint")
        {
            let mut a = self.defaults.resolve(j, &class)?;
            if j.tag == "freejoint" {
                a.insert("type".into(), "free".into());
            }
            joints.push(a);
        }
        let inertia = body_inertia(body, self.defaults, &class, self.degrees)?;
        let base: Vec3<f64> = std::array::from_fn(|k| pos[k] - offset[k]);
        let mut frame = Transform { e: rt, r: base };
        let mut here = [0.0; 3];
        let mut parent = parent;
        if joints.is_empty() {
            self.push(&name, parent, Joint::new(JointKind::Fixed, frame), inertia);
        }
        let count = joints.len();
        for (k, a) in joints.iter().enumerate() {
            let jname = a
                .get("name")
                .cloned()
                .unwrap_or_else(|| format!("{name}_joint{k}"));
            let p = vec3(a, "pos", [0.0; 3])?;
            let step: Vec3<f64> = std::array::from_fn(|i| p[i] - here[i]);
            // The first joint's frame: the body's frame moved to the anchor (in the parent
            // link's coordinates); later ones: the previous anchor to this one.
            frame.r = if k == 0 {
                std::array::from_fn(|i| base[i] + mat_vec(&rot, p)[i])
            } else {
                step
            };
            let joint = self.joint(a, &jname, frame, parent.is_none())?;
            let last = k + 1 == count;
            let link_inertia = if last {
                Inertia {
                    com: std::array::from_fn(|i| inertia.com[i] - p[i]),
                    ..inertia
                }
            } else {
                Inertia {
                    m: 0.0,
                    com: [0.0; 3],
                    ic: [[0.0; 3]; 3],
                }
            };
            let link_name = if last {
                name.clone()
            } else {
                format!("{name}/{jname}")
            };
            self.joints.push((jname.clone(), self.nv));
            self.joint_link.insert(jname, self.links.len());
            self.nv += joint.kind.nv();
            self.push(&link_name, parent, joint, link_inertia);
            parent = Some(self.links.len() - 1);
            frame = Transform {
                e: identity(),
                r: [0.0; 3],
            };
            here = p;
        }
        let me = self.links.len() - 1;
        for c in body.children.iter().filter(|c| c.tag == "body") {
            self.body(c, Some(me), here, &class)?;
        }
        Ok(())
    }

    fn push(&mut self, name: &str, parent: Option<usize>, joint: Joint, inertia: Inertia<f64>) {
        self.links.push(Link {
            name: name.to_string(),
            parent,
            joint,
            inertia,
        });
    }

    fn joint(
        &self,
        a: &HashMap<String, String>,
        name: &str,
        frame: Transform<f64>,
        at_world: bool,
    ) -> Result<Joint> {
        let kind_name = a.get("type").map_or("hinge", String::as_str);
        let axis = || -> Result<Vec3<f64>> { normalise(vec3(a, "axis", [0.0, 0.0, 1.0])?) };
        let kind = match kind_name {
            "hinge" => JointKind::Revolute { axis: axis()? },
            "slide" => JointKind::Prismatic { axis: axis()? },
            "ball" => JointKind::Ball,
            "free" if at_world => JointKind::Free,
            "free" => {
                return fail(format!(
                    "joint '{name}': a free joint must belong to a child of the world body"
                ));
            }
            other => return fail(format!("joint '{name}': type '{other}' is not supported")),
        };
        if scalar(a, "stiffness", 0.0)? != 0.0 {
            return fail(format!("joint '{name}': stiffness is not supported"));
        }
        let range = numbers(a, "range")?;
        let limited = match a.get("limited").map(String::as_str) {
            Some("true") => true,
            Some("false") => false,
            _ => range.is_some(),
        };
        let limit = match (self.options.limits, limited, range) {
            (Some(law), true, Some(r)) if r.len() == 2 => {
                let unit = if self.degrees && kind_name == "hinge" {
                    std::f64::consts::PI / 180.0
                } else {
                    1.0
                };
                if kind.nv() != 1 {
                    return fail(format!(
                        "joint '{name}': limits on {kind_name} joints are not supported"
                    ));
                }
                Some(JointLimit {
                    lower: r[0] * unit,
                    upper: r[1] * unit,
                    ke: law.ke,
                    kd: law.kd,
                    smoothing: law.smoothing,
                })
            }
            _ => None,
        };
        Ok(Joint {
            armature: scalar(a, "armature", 0.0)?,
            damping: scalar(a, "damping", 0.0)?,
            limit,
            ..Joint::new(kind, frame)
        })
    }
}

/// Reads the MJCF file at `path`.
pub fn read_mjcf(path: &Path, options: &MjcfOptions) -> Result<MjcfModel> {
    let wrap = |e: DiffsimError| {
        DiffsimError::config(format!(
            "MJCF '{}': {}",
            path.display(),
            e.to_string().trim_start_matches("invalid configuration: ")
        ))
    };
    build(&load(path, 0).map_err(wrap)?, options).map_err(wrap)
}

fn build(root: &El, options: &MjcfOptions) -> Result<MjcfModel> {
    if root.tag != "mujoco" {
        return fail(format!("the root element is <{}>, not <mujoco>", root.tag));
    }
    let find = |tag: &'static str| root.children.iter().filter(move |c| c.tag == tag);
    let mut degrees = true;
    for c in find("compiler") {
        if let Some(a) = c.attrs.get("angle") {
            degrees = a != "radian";
        }
        if c.attrs.get("eulerseq").is_some_and(|s| s != "xyz") {
            return fail("only the default Euler sequence xyz is read");
        }
    }
    let (mut timestep, mut gravity) = (0.002, [0.0, 0.0, -9.81]);
    for o in find("option") {
        timestep = scalar(&o.attrs, "timestep", timestep)?;
        gravity = vec3(&o.attrs, "gravity", gravity)?;
    }
    let mut defaults = Defaults {
        parent: HashMap::new(),
        attrs: HashMap::new(),
    };
    for d in find("default") {
        defaults.collect(d, None);
    }
    let mut b = Builder {
        defaults: &defaults,
        degrees,
        options,
        links: Vec::new(),
        joints: Vec::new(),
        joint_link: HashMap::new(),
        nv: 0,
    };
    for w in find("worldbody") {
        for body in w.children.iter().filter(|c| c.tag == "body") {
            b.body(body, None, [0.0; 3], "main")?;
        }
    }
    let mut actuators = Vec::new();
    let mut driven = std::collections::HashSet::new();
    for group in find("actuator") {
        for act in &group.children {
            let a = defaults.resolve(act, "main")?;
            let name = a
                .get("name")
                .cloned()
                .unwrap_or_else(|| format!("actuator{}", actuators.len()));
            let Some(jname) = a.get("joint") else {
                return fail(format!("actuator '{name}': only joint actuators are read"));
            };
            let Some(&li) = b.joint_link.get(jname) else {
                return fail(format!("actuator '{name}' names no joint '{jname}'"));
            };
            let drive = match act.tag.as_str() {
                "motor" => Drive::Motor {
                    gear: scalar(&a, "gear", 1.0)?,
                },
                "position" => Drive::Position {
                    ke: scalar(&a, "kp", 1.0)?,
                    kd: scalar(&a, "kv", 0.0)?,
                },
                other => {
                    return fail(format!(
                        "actuator '{name}': <{other}> is not read (motor and position are)"
                    ));
                }
            };
            if !driven.insert(jname.clone()) {
                return fail(format!("joint '{jname}' has two actuators"));
            }
            b.links[li].joint.drive = drive;
            let limited = a
                .get("ctrllimited")
                .map_or(a.contains_key("ctrlrange"), |s| s == "true");
            let range = numbers(&a, "ctrlrange")?.filter(|r| r.len() == 2 && limited);
            let dof = b.joints.iter().find(|(n, _)| n == jname).map_or(0, |j| j.1);
            actuators.push(Actuator {
                name,
                dof,
                ctrlrange: range.map(|r| [r[0], r[1]]),
            });
        }
    }
    let articulation = Articulation {
        links: b.links,
        gravity,
    };
    articulation.validate()?;
    Ok(MjcfModel {
        articulation,
        timestep,
        joints: b.joints,
        actuators,
    })
}
