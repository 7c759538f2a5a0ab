//! The cloth elements of [`super::cloth`] packed four to a chunk for the explicit step: Warp's
//! triangle and bending forces and their vector-Jacobian products computed for 4 elements at
//! once (one lane each, the same formulas as [`Triangle::add_forces`],
//! [`Triangle::add_vjp`], [`Bend::add_forces`] and [`Bend::add_vjp`], which the tests hold
//! them to), in one fused pass per chunk with no allocation, compiled for AVX2 + FMA where
//! the CPU has it. `atan2` and `asin` are Cephes' rational approximations (about 1 ulp), so
//! that they vectorise too.

use super::cloth::{Bend, Triangle};
use super::math::V3;
use crate::cpu::Build;

mod bend;
mod lanes;
mod tri;

use bend::BendChunk;
use lanes::{W, arr, lanes, node_lanes};
use tri::TriChunk;

/// Chunks from which a force or adjoint pass is split over two cores (measured on the
/// explicit cloth throw, one thread against two: 11 chunks 1.2× slower on two, 18 even,
/// 42 1.1–1.3× faster, 76 1.3–1.8×, 5300 1.6–1.8×).
const PARALLEL_CHUNKS: usize = 32;

/// Some of a model's cloth elements, packed into chunks of four.
#[derive(Clone, Debug, Default)]
struct Part {
    tris: Vec<TriChunk>,
    bends: Vec<BendChunk>,
    build: Build,
}

/// A model's cloth elements packed into chunks of four, in one part, or in two that run on
/// two cores at once when the model is large enough to pay for it.
#[derive(Clone, Debug, Default)]
pub struct ClothLanes {
    parts: Vec<Part>,
}

impl ClothLanes {
    /// Packs `tris` and `bends`.
    pub fn new(tris: &[Triangle], bends: &[Bend]) -> Self {
        let build = Build::best();
        let chunks = tris.len().div_ceil(W) + bends.len().div_ceil(W);
        let two = chunks >= PARALLEL_CHUNKS && rayon::current_num_threads() >= 2;
        let (t, b) = if two {
            (tris.len() / 2, bends.len() / 2)
        } else {
            (tris.len(), bends.len())
        };
        let mut parts = vec![Part::new(&tris[..t], &bends[..b], build)];
        if two {
            parts.push(Part::new(&tris[t..], &bends[b..], build));
        }
        Self { parts }
    }

    /// Adds Warp's triangle and bending forces at `(x, v)` into `f`.
    pub fn add_forces(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        self.split(&mut [f], &|part, out| {
            let [f] = out else { unreachable!() };
            part.add_forces(x, v, f)
        });
    }

    /// Adds the vector-Jacobian products `(∂f/∂x)ᵀu`, `(∂f/∂v)ᵀu` of [`Self::add_forces`]
    /// into `xbar`, `vbar`.
    pub fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        self.split(&mut [xbar, vbar], &|part, out| {
            let [xb, vb] = out else { unreachable!() };
            part.add_vjp(x, v, u, xb, vb)
        });
    }

    /// Runs `work` on the one part, or on the two at once: the first adds into `out`, the
    /// second into zeroed buffers that are then added into `out`.
    fn split(&self, out: &mut [&mut [V3]], work: &(dyn Fn(&Part, &mut [&mut [V3]]) + Sync)) {
        let [first, rest @ ..] = self.parts.as_slice() else {
            return;
        };
        let Some(second) = rest.first() else {
            return work(first, out);
        };
        let n = out.first().map_or(0, |o| o.len());
        let mut bufs: Vec<Vec<V3>> = out.iter().map(|_| vec![[0.0; 3]; n]).collect();
        rayon::join(
            || work(first, out),
            || {
                let mut refs: Vec<&mut [V3]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
                work(second, &mut refs)
            },
        );
        for (o, b) in out.iter_mut().zip(&bufs) {
            for (p, q) in o.iter_mut().zip(b) {
                (0..3).for_each(|k| p[k] += q[k]);
            }
        }
    }

    /// The same with every part in `build` and on one core (for tests).
    #[cfg(test)]
    fn on_one_core(&self, build: Build) -> Self {
        let mut one = Part {
            build,
            ..Part::default()
        };
        for p in &self.parts {
            one.tris.extend(p.tris.iter().cloned());
            one.bends.extend(p.bends.iter().cloned());
        }
        Self { parts: vec![one] }
    }
}

impl Part {
    fn new(tris: &[Triangle], bends: &[Bend], build: Build) -> Self {
        let tris = tris
            .chunks(W)
            .map(|c| TriChunk {
                nodes: node_lanes(c, |t| t.nodes),
                count: c.len(),
                dm: arr(|r| arr(|s| lanes(c, |t| t.dm[r][s]))),
                a0: lanes(c, |t| t.rest_area),
                half: lanes(c, |t| 0.5 / t.rest_area),
                ke: lanes(c, |t| t.ke),
                ka: lanes(c, |t| t.ka),
                kd: lanes(c, |t| t.kd),
                drag: lanes(c, |t| t.drag),
                lift: lanes(c, |t| t.lift),
                shift: lanes(c, |t| t.activation - (1.0 + t.ke / t.ka)),
                air: c.iter().any(|t| t.drag != 0.0 || t.lift != 0.0),
            })
            .collect();
        let bends = bends
            .chunks(W)
            .map(|c| BendChunk {
                nodes: node_lanes(c, |b| b.nodes),
                count: c.len(),
                ke: lanes(c, |b| b.ke),
                kd: lanes(c, |b| b.kd),
                rest_angle: lanes(c, |b| b.rest_angle),
                damped: c.iter().any(|b| b.kd != 0.0),
            })
            .collect();
        Self { tris, bends, build }
    }

    fn add_forces(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a part's build is one the CPU runs (`Build::best`, or below it in tests).
        match self.build {
            Build::Avx2 => return unsafe { self.add_forces_avx2(x, v, f) },
            Build::Avx512 => return unsafe { self.add_forces_avx512(x, v, f) },
            Build::Portable => {}
        }
        self.add_forces_portable(x, v, f);
    }

    fn add_vjp(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `add_forces`.
        match self.build {
            Build::Avx2 => return unsafe { self.add_vjp_avx2(x, v, u, xbar, vbar) },
            Build::Avx512 => return unsafe { self.add_vjp_avx512(x, v, u, xbar, vbar) },
            Build::Portable => {}
        }
        self.add_vjp_portable(x, v, u, xbar, vbar);
    }

    #[inline(always)]
    fn add_forces_portable(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        for c in &self.tris {
            c.add_forces(x, v, f);
        }
        for c in &self.bends {
            c.add_forces(x, v, f);
        }
    }

    #[inline(always)]
    fn add_vjp_portable(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        for c in &self.tris {
            c.add_vjp(x, v, u, xbar, vbar);
        }
        for c in &self.bends {
            c.add_vjp(x, v, u, xbar, vbar);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn add_forces_avx2(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        self.add_forces_portable(x, v, f);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn add_vjp_avx2(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        self.add_vjp_portable(x, v, u, xbar, vbar);
    }

    /// The AVX2 code with 32 vector registers instead of 16 (fewer spills).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    fn add_forces_avx512(&self, x: &[V3], v: &[V3], f: &mut [V3]) {
        self.add_forces_portable(x, v, f);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    fn add_vjp_avx512(&self, x: &[V3], v: &[V3], u: &[V3], xbar: &mut [V3], vbar: &mut [V3]) {
        self.add_vjp_portable(x, v, u, xbar, vbar);
    }
}

#[cfg(test)]
mod tests {
    use super::lanes::tests::wobble;
    use super::*;
    use crate::solids::cloth::ClothMaterial;
    use crate::solids::scenes::cloth_grid;

    /// An `nx`×`ny` cloth with air and bending damping `edge_kd`, bent and moving in every direction,
    /// with one particle moved onto another (the triangles and hinges around them degenerate).
    type Scene = (Vec<Triangle>, Vec<Bend>, Vec<V3>, Vec<V3>, Vec<V3>);
    fn scene(nx: usize, ny: usize, edge_kd: f64) -> Scene {
        let m = ClothMaterial {
            tri_ke: 300.0,
            tri_ka: 500.0,
            tri_kd: 0.5,
            drag: 3.0,
            lift: 7.0,
            edge_ke: 4.0,
            edge_kd,
        };
        let (model, x0, _) = cloth_grid((nx, ny), 0.2, 0.3, [0.0; 3], 1.0, &m).unwrap();
        let n = x0.len();
        let mut x: Vec<V3> = (0..n)
            .map(|p| arr(|a| x0[p][a] + 0.05 * wobble(3 * p + a)))
            .collect();
        // Particle (1, 1) onto particle (1, 0).
        x[nx + 2] = x[1];
        let v = (0..n)
            .map(|p| arr(|a| wobble(100 + 3 * p + a) - 0.5))
            .collect();
        let u = (0..n)
            .map(|p| arr(|a| wobble(500 + 3 * p + a) - 0.5))
            .collect();
        (model.tris, model.bends, x, v, u)
    }

    fn max_rel(a: &[V3], b: &[V3]) -> f64 {
        let scale = b.iter().flatten().fold(1e-300f64, |m, c| m.max(c.abs()));
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()))
            / scale
    }

    #[test]
    fn lanes_match_the_element_code_in_every_build_on_one_and_two_cores() {
        // 5×4 with bending damping: one part; 14×12 without: two parts on two cores where
        // the machine has them.
        for (nx, ny, edge_kd) in [(5, 4, 0.05), (14, 12, 0.0)] {
            let (tris, bends, x, v, u) = scene(nx, ny, edge_kd);
            let n = x.len();
            let mut f = vec![[0.0; 3]; n];
            let (mut xb, mut vb) = (vec![[0.0; 3]; n], vec![[0.0; 3]; n]);
            for t in &tris {
                t.add_forces(&x, Some(&v), &mut f);
                t.add_vjp(&x, &v, &u, &mut xb, &mut vb);
            }
            for b in &bends {
                b.add_forces(&x, Some(&v), &mut f);
                b.add_vjp(&x, &v, &u, &mut xb, &mut vb);
            }
            let packed = ClothLanes::new(&tris, &bends);
            if nx > 10 && rayon::current_num_threads() >= 2 {
                assert_eq!(packed.parts.len(), 2);
            }
            let builds = Build::available()
                .into_iter()
                .map(|b| packed.on_one_core(b));
            for lanes in builds.chain([packed.clone()]) {
                let mut g = vec![[0.0; 3]; n];
                lanes.add_forces(&x, &v, &mut g);
                let (mut xl, mut vl) = (vec![[0.0; 3]; n], vec![[0.0; 3]; n]);
                lanes.add_vjp(&x, &v, &u, &mut xl, &mut vl);
                assert!(max_rel(&g, &f) < 1e-13, "forces {:e}", max_rel(&g, &f));
                assert!(max_rel(&xl, &xb) < 1e-12, "x̄ {:e}", max_rel(&xl, &xb));
                assert!(max_rel(&vl, &vb) < 1e-12, "v̄ {:e}", max_rel(&vl, &vb));
            }
        }
    }
}
