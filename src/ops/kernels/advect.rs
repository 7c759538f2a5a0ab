//! Advection kernels: semi-Lagrangian and MacCormack, on arrays padded with ghost layers so
//! that every sample is branch-free.

use super::{Real, for_rows, item, resolve};
use crate::grid::{ArraySpec, Extrap, Location};

/// Ghost layers on each side of a [`Padded`] array.
const GHOST: usize = 2;

/// One batch item of an array with [`GHOST`] layers on every side filled by the array's
/// extrapolation, `[ny+4, nx+4]`, element `[j, i]` of the array at `[j+2, i+2]`.
///
/// Bilinear sampling at a position clamped to `[−2, n]` (after wrapping into `[0, period)` on
/// a periodic axis) reads only this buffer and equals sampling the array with its extrapolation
/// anywhere, interpolation stencil included (for limiters): beyond the first ghost layer the
/// extrapolated values are constant along the axis, so a clamped position's two nodes have
/// the values of the true ones.
pub struct Padded<T> {
    data: Vec<T>,
    width: usize,
    x: Axis<T>,
    y: Axis<T>,
}

/// How a sample coordinate along one axis is brought into the padded range `[−2, n]`.
#[derive(Clone, Copy)]
struct Axis<T> {
    /// Elements along the axis, as `T` (the upper end of the padded range).
    n: T,
    /// The period of a periodic axis.
    period: Option<T>,
}

impl<T: Real> Axis<T> {
    fn new(n: usize, periodic: bool, period: usize) -> Self {
        Self {
            n: T::of_index(n),
            period: periodic.then(|| T::of_index(period)),
        }
    }

    /// The padded index of the left node of array coordinate `f`, and the weight of the right
    /// one. NaN stays NaN (in the weight), so a blown-up velocity propagates.
    #[inline(always)]
    fn locate(self, f: T) -> (usize, T) {
        let f = match self.period {
            Some(p) => {
                let k = f / p;
                f - (k - k.floor_frac().1) * p
            }
            None => f,
        };
        // Written as selects that keep a NaN `f` (they compile to branch-free max/min).
        let ghost = T::of_index(GHOST);
        let f = if -ghost > f { -ghost } else { f };
        let f = if self.n < f { self.n } else { f };
        let g = f + ghost;
        let i = g.floor_index();
        (i, g - T::of_index(i))
    }
}

impl<T: Real> Padded<T> {
    /// Pads one item `a` of the array described by `s`.
    pub fn new(a: &[T], s: &ArraySpec) -> Self {
        let (w, h) = (s.nx + 2 * GHOST, s.ny + 2 * GHOST);
        let periodic = (s.ext[0] == Extrap::Periodic, s.ext[2] == Extrap::Periodic);
        // Periodic axes wrap at the period: a face array's duplicate last column is rebuilt from
        // the first, as `fetch` reads it.
        let lim = if periodic.0 { s.period_x } else { s.nx };
        let g = GHOST as isize;
        // Where the ghost columns come from, the same for every row.
        let source =
            |i: isize| resolve(i, s.nx, s.period_x, s.ext[0], s.ext[1]).map_err(|c| T::of(c));
        let left: Vec<_> = (-g..0).map(source).collect();
        let right: Vec<_> = (lim as isize..s.nx as isize + g).map(source).collect();
        let mut data = Vec::with_capacity(w * h);
        for j in -g..s.ny as isize + g {
            match resolve(j, s.ny, s.period_y, s.ext[2], s.ext[3]) {
                Err(c) => data.resize(data.len() + w, T::of(c)),
                Ok(jj) => {
                    let row = &a[jj * s.nx..(jj + 1) * s.nx];
                    let ghost = |src: &Result<usize, T>| match *src {
                        Ok(i) => row[i],
                        Err(c) => c,
                    };
                    left.iter().for_each(|src| data.push(ghost(src)));
                    data.extend_from_slice(&row[..lim]);
                    right.iter().for_each(|src| data.push(ghost(src)));
                }
            }
        }
        debug_assert_eq!(data.len(), w * h);
        Self {
            data,
            width: w,
            x: Axis::new(s.nx, periodic.0, s.period_x),
            y: Axis::new(s.ny, periodic.1, s.period_y),
        }
    }

    /// Array row `j`, ghosts included (`nx + 4` elements, element `i` at `i + 2`); `j` may be
    /// −1 or `ny` (ghost rows).
    #[inline(always)]
    fn row(&self, j: isize) -> &[T] {
        let r = (j + GHOST as isize) as usize;
        &self.data[r * self.width..(r + 1) * self.width]
    }

    /// A copyable view for sampling loops (keeps the buffer and sizes in registers).
    #[inline(always)]
    pub fn view(&self) -> PaddedView<'_, T> {
        PaddedView {
            data: &self.data,
            width: self.width,
            x: self.x,
            y: self.y,
        }
    }
}

/// A borrowed [`Padded`] array.
#[derive(Clone, Copy)]
pub struct PaddedView<'a, T> {
    data: &'a [T],
    width: usize,
    x: Axis<T>,
    y: Axis<T>,
}

impl<T: Real> PaddedView<'_, T> {
    /// Bilinear samples at positions `pos(k)` (array coordinates), `k < n`, handed to
    /// `put(k, sample, stencil)`. Positions are located in a first loop without memory
    /// dependencies (it vectorises) and sampled in a second, in chunks of [`CHUNK`]: this
    /// keeps the long chain velocity → position → load → interpolation out of one iteration.
    #[inline(always)]
    pub fn sample_row(
        self,
        n: usize,
        pos: impl Fn(usize) -> (T, T),
        mut put: impl FnMut(usize, T, [T; 4]),
    ) {
        let w = self.width;
        let mut start = 0;
        while start < n {
            let m = CHUNK.min(n - start);
            let (mut idx, mut wx, mut wy) = ([0u32; CHUNK], [T::zero(); CHUNK], [T::zero(); CHUNK]);
            for k in 0..m {
                let (fx, fy) = pos(start + k);
                let (i, tx) = self.x.locate(fx);
                let (j, ty) = self.y.locate(fy);
                idx[k] = (j * w + i) as u32;
                (wx[k], wy[k]) = (tx, ty);
            }
            for k in 0..m {
                let b = idx[k] as usize;
                let d = &self.data[b..b + w + 2];
                let q = [d[0], d[1], d[w], d[w + 1]];
                let lo = q[0] + wx[k] * (q[1] - q[0]);
                let hi = q[2] + wx[k] * (q[3] - q[2]);
                put(start + k, lo + wy[k] * (hi - lo), q);
            }
            start += m;
        }
    }
}

/// Samples located per pass of [`PaddedView::sample_row`].
const CHUNK: usize = 32;

/// The padded velocity of one batch item, read along a row of `n` elements of the advected
/// array: each component is exact on its own faces and the average of 2 or 4 faces elsewhere
/// (the values of bilinear sampling there).
struct Flow<T> {
    u: Padded<T>,
    v: Padded<T>,
}

impl<T: Real> Flow<T> {
    /// `i ↦ (u, v)` at cell centres `[j, i]`.
    #[inline(always)]
    fn center(&self, j: usize, n: usize) -> impl Fn(usize) -> (T, T) + '_ {
        let (j, g) = (j as isize, GHOST);
        let u = &self.u.row(j)[g..g + n + 1];
        let (v0, v1) = (&self.v.row(j)[g..g + n], &self.v.row(j + 1)[g..g + n]);
        let half = T::of(0.5);
        move |i| (half * (u[i] + u[i + 1]), half * (v0[i] + v1[i]))
    }

    /// `i ↦ (u, v)` at x-faces `[j, i]`.
    #[inline(always)]
    fn face_x(&self, j: usize, n: usize) -> impl Fn(usize) -> (T, T) + '_ {
        let (j, g) = (j as isize, GHOST);
        let u = &self.u.row(j)[g..g + n];
        let (v0, v1) = (
            &self.v.row(j)[g - 1..g + n],
            &self.v.row(j + 1)[g - 1..g + n],
        );
        let quarter = T::of(0.25);
        move |i| (u[i], quarter * (v0[i] + v0[i + 1] + v1[i] + v1[i + 1]))
    }

    /// `i ↦ (u, v)` at y-faces `[j, i]`.
    #[inline(always)]
    fn face_y(&self, j: usize, n: usize) -> impl Fn(usize) -> (T, T) + '_ {
        let (j, g) = (j as isize, GHOST);
        let (u0, u1) = (
            &self.u.row(j - 1)[g..g + n + 1],
            &self.u.row(j)[g..g + n + 1],
        );
        let v = &self.v.row(j)[g..g + n];
        let quarter = T::of(0.25);
        move |i| (quarter * (u0[i] + u0[i + 1] + u1[i] + u1[i + 1]), v[i])
    }
}

/// Location of the elements of an array with spec `s`.
fn location(s: &ArraySpec) -> Location {
    match (s.ox == 0.0, s.oy == 0.0) {
        (true, _) => Location::FaceX,
        (_, true) => Location::FaceY,
        _ => Location::Center,
    }
}

/// Runs `body` for every row `j` of every batch item `b` of `out` (the advected array's shape),
/// with `row` the output row and `vel` reading the velocity `(u, v)` at its element `i`. One
/// loop per location, so the inner loops do not branch on it.
macro_rules! each_row {
    ($advect:expr, $flows:expr, $out:expr, |$b:ident, $j:ident, $vel:ident, $row:ident| $body:block) => {{
        let (a, flows) = ($advect, $flows);
        let sq = a.sq;
        macro_rules! rows {
            ($read:path) => {
                for_rows($out, sq.nx, sq.ny, |$b, $j, $row| {
                    let $vel = $read(&(flows)[$b], $j, $row.len());
                    $body
                })
            };
        }
        match location(sq) {
            Location::Center => rows!(Flow::center),
            Location::FaceX => rows!(Flow::face_x),
            Location::FaceY => rows!(Flow::face_y),
        }
    }};
}

/// Inputs of one advection: the advected array, the velocity and the scheme.
pub struct Advect<'a, T> {
    /// Advected array (one or more batch items).
    pub q: &'a [T],
    /// Its spec.
    pub sq: &'a ArraySpec,
    /// x-velocity, `[B, ny, nx+1]`.
    pub u: &'a [T],
    /// y-velocity, `[B, ny+1, nx]`.
    pub v: &'a [T],
    /// Spec of `u`.
    pub su: &'a ArraySpec,
    /// Spec of `v`.
    pub sv: &'a ArraySpec,
    /// `dt / dx`: converts a velocity into cells per step.
    pub dt_dx: f64,
}

impl<T: Real> Advect<'_, T> {
    fn batch(&self) -> usize {
        self.q.len() / self.sq.len()
    }

    /// Every batch item of `a` (an array of the advected array's shape), padded.
    fn padded(&self, a: &[T]) -> Vec<Padded<T>> {
        (0..self.batch())
            .map(|b| Padded::new(item(a, self.sq, b), self.sq))
            .collect()
    }

    /// The padded advected array: the velocity component's own padding when `q` is one of them
    /// (self-advection), else `own`, filled here.
    fn padded_q<'f>(
        &self,
        flows: &'f [Flow<T>],
        own: &'f mut Vec<Padded<T>>,
    ) -> Vec<&'f Padded<T>> {
        if std::ptr::eq(self.q, self.u) && self.sq == self.su {
            flows.iter().map(|f| &f.u).collect()
        } else if std::ptr::eq(self.q, self.v) && self.sq == self.sv {
            flows.iter().map(|f| &f.v).collect()
        } else {
            *own = self.padded(self.q);
            own.iter().collect()
        }
    }

    /// The padded velocity of every batch item.
    fn flows(&self) -> Vec<Flow<T>> {
        (0..self.batch())
            .map(|b| Flow {
                u: Padded::new(item(self.u, self.su, b), self.su),
                v: Padded::new(item(self.v, self.sv, b), self.sv),
            })
            .collect()
    }
}

/// First-order semi-Lagrangian advection: `out(x) = q(x − u(x)·dt)`, bilinear.
pub fn semi_lagrangian<T: Real>(a: &Advect<'_, T>, out: &mut [T]) {
    let (s, flows, mut own) = (T::of(a.dt_dx), a.flows(), Vec::new());
    let q = a.padded_q(&flows, &mut own);
    each_row!(a, &flows, out, |b, j, vel, row| {
        let fy = T::of_index(j);
        let back = |i| {
            let (vx, vy) = vel(i);
            (T::of_index(i) - s * vx, fy - s * vy)
        };
        q[b].view()
            .sample_row(row.len(), back, |i, val, _| row[i] = val);
    });
}

/// MacCormack advection with the min/max limiter of Selle et al. 2008: a forward and a
/// backward semi-Lagrangian step estimate the error, half of it is added back, and the result
/// is clamped to the values of the forward step's interpolation stencil.
pub fn maccormack<T: Real>(a: &Advect<'_, T>, out: &mut [T]) {
    let (s, nx, flows, mut own) = (T::of(a.dt_dx), a.sq.nx, a.flows(), Vec::new());
    let q = a.padded_q(&flows, &mut own);
    // Pass 1: forward step and the bounds of its interpolation stencil.
    let mut pass1 = vec![[T::zero(); 3]; out.len()];
    each_row!(a, &flows, &mut pass1, |b, j, vel, row| {
        let fy = T::of_index(j);
        let back = |i| {
            let (vx, vy) = vel(i);
            (T::of_index(i) - s * vx, fy - s * vy)
        };
        q[b].view().sample_row(row.len(), back, |i, val, st| {
            let lo = st.iter().copied().fold(T::infinity(), T::min);
            let hi = st.iter().copied().fold(T::neg_infinity(), T::max);
            row[i] = [val, lo, hi];
        });
    });
    let fwd: Vec<T> = pass1.iter().map(|f| f[0]).collect();
    let fwd = a.padded(&fwd);
    // Pass 2: backward step from the forward result, correction, limiter.
    let (half, n) = (T::of(0.5), a.sq.len());
    each_row!(a, &flows, out, |b, j, vel, row| {
        let fy = T::of_index(j);
        let start = b * n + j * nx;
        let (q0, p1) = (&a.q[start..start + nx], &pass1[start..start + nx]);
        let ahead = |i| {
            let (vx, vy) = vel(i);
            (T::of_index(i) + s * vx, fy + s * vy)
        };
        fwd[b].view().sample_row(row.len(), ahead, |i, back, _| {
            let [f0, lo, hi] = p1[i];
            row[i] = (f0 + half * (q0[i] - back)).max(lo).min(hi);
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{Grid, Location, Resolution};

    fn spec(ext: [Extrap; 4]) -> ArraySpec {
        let grid = Grid::new(Resolution::new(5, 4), [5.0, 4.0]).unwrap();
        ArraySpec::new(&grid, Location::Center, ext)
    }

    /// Far outside, a clamped sample equals the extrapolated constant and its stencil holds
    /// only extrapolated values (what the MacCormack limiter needs); NaN positions give NaN.
    #[test]
    fn clamped_samples_are_the_extrapolation_and_nan_propagates() {
        let s = spec([
            Extrap::Value(7.0),
            Extrap::ZeroGradient,
            Extrap::Value(-3.0),
            Extrap::ZeroGradient,
        ]);
        let a: Vec<f64> = (0..s.len()).map(|k| k as f64).collect();
        let p = Padded::new(&a, &s);
        let v = p.view();
        let mut got = Vec::new();
        let pos = [(-40.0, 1.5), (1e30, 2.0), (2.0, -1e9), (f64::NAN, 1.0)];
        v.sample_row(pos.len(), |k| pos[k], |_, val, st| got.push((val, st)));
        assert_eq!(got[0], (7.0, [7.0; 4]));
        // Beyond the zero-gradient right edge: the last column, rows 2 (and 3 at weight 0).
        assert_eq!(got[1].0, a[2 * 5 + 4]);
        assert_eq!(got[2], (-3.0, [-3.0; 4]));
        assert!(got[3].0.is_nan());
    }

    /// A periodic axis wraps positions many periods away.
    #[test]
    fn periodic_positions_wrap() {
        let s = spec([Extrap::Periodic; 4]);
        let a: Vec<f32> = (0..s.len()).map(|k| (k % 5) as f32).collect();
        let v = Padded::new(&a, &s);
        let mut got = Vec::new();
        let pos = [
            (1.25 + 5.0 * 40.0, 0.0),
            (1.25 - 5.0 * 40.0, 1.0),
            (4.5, 2.0),
        ];
        v.view()
            .sample_row(pos.len(), |k| pos[k], |_, val, _| got.push(val));
        assert!((got[0] - 1.25).abs() < 1e-4 && (got[1] - 1.25).abs() < 1e-4);
        // Between the last column (4) and the first (0).
        assert!((got[2] - 2.0).abs() < 1e-6);
    }
}
