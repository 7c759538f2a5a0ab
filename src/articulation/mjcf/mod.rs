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
//! (gear) and `position` (kp, kv) on joints, joint `stiffness` (springs toward 0;
//! `springref` ≠ 0 is refused), `<keyframe><key qpos>`, and `<contact><pair>`s of a body's
//! sphere or capsule with a world plane or with another body's geom (see `contact`). Sites, cameras, lights, tendons,
//! equality constraints and MuJoCo's solver settings are not read; another actuator type or
//! an Euler sequence other than `xyz` is refused. Hinge and slide ranges become smooth limits
//! with [`MjcfOptions::limits`]'s law, contact pairs points with [`MjcfOptions::contact`]'s.

use super::contact::JointContact;
use super::joint::JointKind;
use super::model::{Articulation, Drive, Joint, JointLimit, Link};
use super::spatial::{Inertia, Transform, Vec3};
use super::urdf::LimitLaw;
use crate::error::{DiffsimError, Result};
use crate::solids::contact::Contact;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod contact;
mod geometry;
use contact::{BodyGeom, read_pairs};
use geometry::{
    M3, fail, geom_inertia, identity, mat_mul, mat_vec, matrix_quat, normalise, numbers,
    orientation, scalar, vec3,
};

/// How an MJCF file becomes an articulation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MjcfOptions {
    /// The law of hinge and slide limits; `None` (default) ignores `range`.
    pub limits: Option<LimitLaw>,
    /// The law of the `<contact><pair>`s (MuJoCo's soft-constraint solver is not
    /// reproduced); `None` (default) ignores them.
    pub contact: Option<Contact>,
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
    /// The contact pairs as points on the links (with [`MjcfOptions::contact`]'s law).
    pub contact: Option<JointContact>,
    /// `<keyframe>`s: name and configuration (`nq` entries, diffsim's layout = MuJoCo's
    /// `qpos`; quaternions scaled to unit length, as MuJoCo's kinematics does).
    pub keyframes: Vec<(String, Vec<f64>)>,
    /// The configuration the file describes (MuJoCo's `qpos0`): hinges and slides at 0,
    /// balls at the identity, a free body at its `pos` and orientation. A free joint's
    /// coordinates are the body's pose in the world, as MuJoCo's; `neutral()` puts such a
    /// body at the origin.
    pub qpos0: Vec<f64>,
}

/// An XML element with its includes inlined.
#[derive(Clone, Debug)]
struct El {
    tag: String,
    attrs: HashMap<String, String>,
    children: Vec<El>,
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
    Ok(Inertia::combine(&parts))
}

/// Walks the bodies, appending links.
struct Builder<'a> {
    defaults: &'a Defaults,
    degrees: bool,
    options: &'a MjcfOptions,
    links: Vec<Link>,
    joints: Vec<(String, usize)>,
    joint_link: HashMap<String, usize>,
    /// Named geoms of the bodies.
    geoms: HashMap<String, BodyGeom>,
    qpos0: Vec<f64>,
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
            let free = a.get("type").is_some_and(|t| t == "free");
            let p = if free {
                [0.0; 3]
            } else {
                vec3(a, "pos", [0.0; 3])?
            };
            let step: Vec3<f64> = std::array::from_fn(|i| p[i] - here[i]);
            // The first joint's frame: the body's frame moved to the anchor (in the parent
            // link's coordinates); later ones: the previous anchor to this one. A free joint's
            // frame is the world's: its coordinates are the body's pose, which the file gives
            // as its qpos0.
            frame.r = if k == 0 {
                std::array::from_fn(|i| base[i] + mat_vec(&rot, p)[i])
            } else {
                step
            };
            if free && count > 1 {
                return fail(format!(
                    "joint '{jname}': a free joint must be its body's only joint"
                ));
            }
            if free {
                self.qpos0.extend(base);
                self.qpos0.extend(matrix_quat(&rot));
                frame = Transform {
                    e: identity(),
                    r: [0.0; 3],
                };
            }
            let joint = self.joint(a, &jname, frame, parent.is_none())?;
            if !free {
                self.qpos0.extend(joint.kind.neutral());
            }
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
        for g in body.children.iter().filter(|c| c.tag == "geom") {
            if let Some(gname) = g.attrs.get("name") {
                let geom = BodyGeom {
                    link: me,
                    anchor: here,
                    attrs: self.defaults.resolve(g, &class)?,
                };
                self.geoms.insert(gname.clone(), geom);
            }
        }
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
        if scalar(a, "springref", 0.0)? != 0.0 {
            return fail(format!("joint '{name}': springref is not supported"));
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
            stiffness: scalar(a, "stiffness", 0.0)?,
            limit,
            ..Joint::new(kind, frame)
        })
    }
}

/// Reads the MJCF file at `path`.
pub fn read_mjcf(path: &Path, options: &MjcfOptions) -> Result<MjcfModel> {
    let wrap = |e: DiffsimError| e.within(format_args!("MJCF '{}'", path.display()));
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
        geoms: HashMap::new(),
        qpos0: Vec::new(),
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
    let mut world = HashMap::new();
    for w in find("worldbody") {
        for g in w.children.iter().filter(|c| c.tag == "geom") {
            if let Some(gname) = g.attrs.get("name") {
                world.insert(gname.clone(), defaults.resolve(g, "main")?);
            }
        }
    }
    let contact = match options.contact {
        Some(law) => read_pairs(root, &world, &b.geoms, degrees, law)?,
        None => None,
    };
    let articulation = Articulation {
        links: b.links,
        gravity,
    };
    articulation.validate()?;
    let mut keyframes = Vec::new();
    for key in find("keyframe").flat_map(|k| k.children.iter().filter(|c| c.tag == "key")) {
        let name = key
            .attrs
            .get("name")
            .cloned()
            .unwrap_or_else(|| format!("key{}", keyframes.len()));
        if let Some(q) = numbers(&key.attrs, "qpos")? {
            if q.len() != articulation.nq() {
                return fail(format!(
                    "keyframe '{name}' has {} qpos values for {} coordinates",
                    q.len(),
                    articulation.nq()
                ));
            }
            let Some(q) = articulation.normalized(&q) else {
                return fail(format!("keyframe '{name}' has a zero quaternion"));
            };
            keyframes.push((name, q));
        }
    }
    Ok(MjcfModel {
        articulation,
        timestep,
        joints: b.joints,
        actuators,
        contact,
        keyframes,
        qpos0: b.qpos0,
    })
}
