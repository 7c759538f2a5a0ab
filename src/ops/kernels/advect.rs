//! Advection kernels: semi-Lagrangian and MacCormack, on arrays padded with ghost layers so
//! that every sample is branch-free.

use super::{Real, for_rows, item, resolve};
use crate::grid::{ArraySpec, Extrap, Location};

/// Ghost layers on each side of a [`Padded`] array.
pub(super) const GHOST: usize = 2;

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

/// Where each row and ghost column of a padded array comes from: an element of the array
/// (`Ok(index)`) or a constant (`Err(value)`), from the array's extrapolation.
struct PadLayout {
    /// Padded width `nx + 4`.
    width: usize,
    /// Columns copied directly: `nx`, or the period on a periodic x axis (a face array's
    /// duplicate last column is rebuilt from the first, as `fetch` reads it).
    lim: usize,
    /// Sources of the padded rows, `ny + 4`.
    rows: Vec<Result<usize, f64>>,
    /// Sources of the columns before the copied ones.
    left: Vec<Result<usize, f64>>,
    /// Sources of the columns after the copied ones.
    right: Vec<Result<usize, f64>>,
}

impl PadLayout {
    fn new(s: &ArraySpec) -> Self {
        let lim = if s.ext[0] == Extrap::Periodic {
            s.period_x
        } else {
            s.nx
        };
        let g = GHOST as isize;
        let col = |i: isize| resolve(i, s.nx, s.period_x, s.ext[0], s.ext[1]);
        Self {
            width: s.nx + 2 * GHOST,
            lim,
            rows: (-g..s.ny as isize + g)
                .map(|j| resolve(j, s.ny, s.period_y, s.ext[2], s.ext[3]))
                .collect(),
            left: (-g..0).map(col).collect(),
            right: (lim as isize..s.nx as isize + g).map(col).collect(),
        }
    }
}

impl<T: Real> Padded<T> {
    /// Pads one item `a` of the array described by `s`.
    pub fn new(a: &[T], s: &ArraySpec) -> Self {
        let l = PadLayout::new(s);
        let w = l.width;
        let constant = |src: &Result<usize, f64>| src.map_err(|c| T::of(c));
        let (left, right): (Vec<_>, Vec<_>) = (
            l.left.iter().map(constant).collect(),
            l.right.iter().map(constant).collect(),
        );
        let mut data = Vec::with_capacity(w * l.rows.len());
        for src in &l.rows {
            match *src {
                Err(c) => data.resize(data.len() + w, T::of(c)),
                Ok(jj) => {
                    let row = &a[jj * s.nx..(jj + 1) * s.nx];
                    let ghost = |src: &Result<usize, T>| match *src {
                        Ok(i) => row[i],
                        Err(c) => c,
                    };
                    left.iter().for_each(|src| data.push(ghost(src)));
                    data.extend_from_slice(&row[..l.lim]);
                    right.iter().for_each(|src| data.push(ghost(src)));
                }
            }
        }
        let periodic = (s.ext[0] == Extrap::Periodic, s.ext[2] == Extrap::Periodic);
        Self {
            data,
            width: w,
            x: Axis::new(s.nx, periodic.0, s.period_x),
            y: Axis::new(s.ny, periodic.1, s.period_y),
        }
    }

    /// The transpose of [`Padded::new`]: adds each element of a padded-shape gradient `pad` to
    /// the array element it was copied from (constants receive nothing), into `out`.
    pub fn fold(pad: &[T], s: &ArraySpec, out: &mut [T]) {
        let l = PadLayout::new(s);
        let (w, g) = (l.width, GHOST);
        for (r, src) in l.rows.iter().enumerate() {
            let Ok(jj) = *src else { continue };
            let (prow, row) = (
                &pad[r * w..(r + 1) * w],
                &mut out[jj * s.nx..(jj + 1) * s.nx],
            );
            for (o, p) in row[..l.lim].iter_mut().zip(&prow[g..g + l.lim]) {
                *o += *p;
            }
            let ghosts = l
                .left
                .iter()
                .zip(&prow[..g])
                .chain(l.right.iter().zip(&prow[g + l.lim..]));
            for (src, p) in ghosts {
                if let Ok(i) = *src {
                    row[i] += *p;
                }
            }
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

/// The bilinear samples of one output row, transposed: scatters `g·weights` into the padded
/// gradient `pq` and writes `gx[i], gy[i] = −s·g·∂q/∂(x, y)` (the gradient of each sample's
/// velocity).
#[inline(always)]
fn sample_adjoint<T: Real>(
    vel: impl Fn(usize) -> (T, T),
    view: PaddedView<'_, T>,
    s: T,
    (g, fy): (&[T], T),
    pq: &mut [T],
    gx: &mut [T],
    gy: &mut [T],
) {
    let (w, one) = (view.width, T::one());
    for (i, &gk) in g.iter().enumerate() {
        let (vx, vy) = vel(i);
        let (ci, tx) = view.x.locate(T::of_index(i) - s * vx);
        let (cj, ty) = view.y.locate(fy - s * vy);
        let k = cj * w + ci;
        let d = &view.data[k..k + w + 2];
        let (q00, q01, q10, q11) = (d[0], d[1], d[w], d[w + 1]);
        let p = &mut pq[k..k + w + 2];
        let (gy0, gy1) = (gk * (one - ty), gk * ty);
        p[0] += gy0 * (one - tx);
        p[1] += gy0 * tx;
        p[w] += gy1 * (one - tx);
        p[w + 1] += gy1 * tx;
        gx[i] = -s * (gy0 * (q01 - q00) + gy1 * (q11 - q10));
        gy[i] = -s * gk * ((one - tx) * (q10 - q00) + tx * (q11 - q01));
    }
}

/// `dst[c] += w·(src[c−1] + src[c])` for `c` in `0..=n` (`src` is 0 beyond its `n` elements;
/// `dst` has `n + 1`): the transpose of averaging neighbouring pairs.
fn add_pair_sums<T: Real>(dst: &mut [T], src: &[T], w: T) {
    let n = src.len();
    dst[0] += w * src[0];
    for (d, pair) in dst[1..n].iter_mut().zip(src.windows(2)) {
        *d += w * (pair[0] + pair[1]);
    }
    dst[n] += w * src[n - 1];
}

/// `dst += w·src`.
fn add_scaled<T: Real>(dst: &mut [T], src: &[T], w: T) {
    for (d, x) in dst.iter_mut().zip(src) {
        *d += w * *x;
    }
}

/// Adjoint of [`semi_lagrangian`]: adds to `gq`, `gu`, `gv` (shapes of `q`, `u`, `v`) the
/// gradients of `Σ g·out`. Each sample scatters its bilinear weights into a padded gradient
/// of `q`, and `−(dt/dx)·g·∂q/∂x` into padded gradients of `u` and `v` over the faces its
/// velocity was averaged from; [`Padded::fold`] then returns the ghost entries to the
/// elements they were copied from. A clamped (far outside) sample has two equal nodes, so
/// its position derivative is 0, as for the extrapolated field.
pub fn semi_lagrangian_adjoint<T: Real>(
    a: &Advect<'_, T>,
    g: &[T],
    gq: &mut [T],
    gu: &mut [T],
    gv: &mut [T],
) {
    let (sq, su, sv) = (a.sq, a.su, a.sv);
    let (s, one) = (T::of(a.dt_dx), T::one());
    let (half, quarter) = (T::of(0.5), T::of(0.25));
    let (flows, mut own) = (a.flows(), Vec::new());
    let q = a.padded_q(&flows, &mut own);
    let location = location(sq);
    let (wq, wu, wv) = (sq.nx + 2 * GHOST, su.nx + 2 * GHOST, sv.nx + 2 * GHOST);
    // Padded index of element [j, i] (ghosts at −1, −2) of an array of padded width w.
    let ghost = GHOST as isize;
    let off = |w: usize, j: isize, i: isize| ((j + ghost) * w as isize + i + ghost) as usize;
    for b in 0..a.batch() {
        let mut pq = vec![T::zero(); wq * (sq.ny + 2 * GHOST)];
        let mut pu = vec![T::zero(); wu * (su.ny + 2 * GHOST)];
        let mut pv = vec![T::zero(); wv * (sv.ny + 2 * GHOST)];
        let view = q[b].view();
        let g = item(g, sq, b);
        let n = sq.nx;
        let (mut gx, mut gy) = (vec![T::zero(); n], vec![T::zero(); n]);
        for j in 0..sq.ny {
            let row = (&g[j * n..(j + 1) * n], T::of_index(j));
            let (flow, pqr, gxr, gyr) = (&flows[b], &mut pq[..], &mut gx[..], &mut gy[..]);
            // One monomorphised loop per location; then the velocity gradients spread over
            // the faces the velocity was averaged from, as vectorisable row sums.
            match location {
                Location::Center => sample_adjoint(flow.center(j, n), view, s, row, pqr, gxr, gyr),
                Location::FaceX => sample_adjoint(flow.face_x(j, n), view, s, row, pqr, gxr, gyr),
                Location::FaceY => sample_adjoint(flow.face_y(j, n), view, s, row, pqr, gxr, gyr),
            }
            let j = j as isize;
            let urow = |r: isize, c: isize, len: usize| off(wu, r, c)..off(wu, r, c) + len;
            let vrow = |r: isize, c: isize, len: usize| off(wv, r, c)..off(wv, r, c) + len;
            match location {
                Location::Center => {
                    add_pair_sums(&mut pu[urow(j, 0, n + 1)], &gx, half);
                    add_scaled(&mut pv[vrow(j, 0, n)], &gy, half);
                    add_scaled(&mut pv[vrow(j + 1, 0, n)], &gy, half);
                }
                Location::FaceX => {
                    add_scaled(&mut pu[urow(j, 0, n)], &gx, one);
                    add_pair_sums(&mut pv[vrow(j, -1, n + 1)], &gy, quarter);
                    add_pair_sums(&mut pv[vrow(j + 1, -1, n + 1)], &gy, quarter);
                }
                Location::FaceY => {
                    add_pair_sums(&mut pu[urow(j - 1, 0, n + 1)], &gx, quarter);
                    add_pair_sums(&mut pu[urow(j, 0, n + 1)], &gx, quarter);
                    add_scaled(&mut pv[vrow(j, 0, n)], &gy, one);
                }
            }
        }
        Padded::fold(&pq, sq, &mut gq[b * sq.len()..(b + 1) * sq.len()]);
        Padded::fold(&pu, su, &mut gu[b * su.len()..(b + 1) * su.len()]);
        Padded::fold(&pv, sv, &mut gv[b * sv.len()..(b + 1) * sv.len()]);
    }
}

/// Semi-Lagrangian self-advection along a line: `out[i] = q(i − s·u[i])` with `s = dt/dx`,
/// linear interpolation, `q` extrapolated as `sq` says (one row: `sq.ny == 1`), the velocity
/// `u` given at the points of `q` (collocated, as in 1D Burgers). `q`, `u`, `out`: `[B, 1, N]`.
/// The same padded sampling as [`semi_lagrangian`] with a zero y-displacement.
pub fn semi_lagrangian_line<T: Real>(q: &[T], u: &[T], sq: &ArraySpec, dt_dx: f64, out: &mut [T]) {
    let (n, s) = (sq.len(), T::of(dt_dx));
    for ((q, u), out) in q
        .chunks_exact(n)
        .zip(u.chunks_exact(n))
        .zip(out.chunks_exact_mut(n))
    {
        let pad = Padded::new(q, sq);
        let back = |i| (T::of_index(i) - s * u[i], T::zero());
        pad.view().sample_row(n, back, |i, val, _| out[i] = val);
    }
}

/// Adjoint of [`semi_lagrangian_line`]: adds to `gq` and `gu` the gradients of `Σ g·out`
/// (through [`sample_adjoint`] and [`Padded::fold`], as the 2D adjoint).
pub fn semi_lagrangian_line_adjoint<T: Real>(
    (q, u): (&[T], &[T]),
    sq: &ArraySpec,
    dt_dx: f64,
    g: &[T],
    gq: &mut [T],
    gu: &mut [T],
) {
    let (n, s) = (sq.len(), T::of(dt_dx));
    let (mut gx, mut gy) = (vec![T::zero(); n], vec![T::zero(); n]);
    let items = q
        .chunks_exact(n)
        .zip(u.chunks_exact(n))
        .zip(g.chunks_exact(n));
    for (((q, u), g), (gq, gu)) in items.zip(gq.chunks_exact_mut(n).zip(gu.chunks_exact_mut(n))) {
        let pad = Padded::new(q, sq);
        let mut pq = vec![T::zero(); pad.data.len()];
        let vel = |i: usize| (u[i], T::zero());
        sample_adjoint(
            vel,
            pad.view(),
            s,
            (g, T::zero()),
            &mut pq,
            &mut gx,
            &mut gy,
        );
        add_scaled(gu, &gx, T::one());
        Padded::fold(&pq, sq, gq);
    }
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
