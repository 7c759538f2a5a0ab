//! Pictures: vorticity heatmaps (PNG), GIF animations and line plots, with plotters and an
//! embedded DejaVu font (no system font needed).

pub mod rigid;
pub mod solids;

use crate::error::{DiffsimError, Result};
use crate::grid::Grid;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// Registers the embedded font once; plotters' text needs it.
fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("embedded DejaVu font is valid"));
    });
}

fn plot_err(path: &Path) -> impl Fn(String) -> DiffsimError + '_ {
    move |e| DiffsimError::Plot {
        path: path.display().to_string(),
        message: e,
    }
}

/// Vorticity `ω = ∂v/∂x − ∂u/∂y` at cell centres, `[ny, nx]`, from `u: [ny, nx+1]`,
/// `v: [ny+1, nx]` (central differences of centre-averaged velocities, one-sided at edges).
pub fn vorticity(u: &[f32], v: &[f32], grid: &Grid) -> Vec<f32> {
    let (nx, ny, dx) = (grid.nx, grid.ny, grid.dx as f32);
    let uc = |j: usize, i: usize| 0.5 * (u[j * (nx + 1) + i] + u[j * (nx + 1) + i + 1]);
    let vc = |j: usize, i: usize| 0.5 * (v[j * nx + i] + v[(j + 1) * nx + i]);
    let mut w = vec![0.0; nx * ny];
    for j in 0..ny {
        for i in 0..nx {
            let (il, ir) = (i.saturating_sub(1), (i + 1).min(nx - 1));
            let (jb, jt) = (j.saturating_sub(1), (j + 1).min(ny - 1));
            let dvdx = (vc(j, ir) - vc(j, il)) / ((ir - il) as f32 * dx);
            let dudy = (uc(jt, i) - uc(jb, i)) / ((jt - jb) as f32 * dx);
            w[j * nx + i] = dvdx - dudy;
        }
    }
    w
}

/// A colour range for a set of `[ny, nx]` fields: the 99th percentile of |value| over their
/// fluid cells (`solid` marks the others), 1 when that is zero or there are none.
pub fn robust_range<'a>(fields: impl Iterator<Item = &'a [f32]>, solid: &[bool]) -> f32 {
    let mut mags: Vec<f32> = fields
        .flat_map(|w| {
            w.iter()
                .zip(solid.iter().chain(std::iter::repeat(&false)))
                .filter(|(_, s)| !**s)
                .map(|(x, _)| x.abs())
        })
        .collect();
    if mags.is_empty() {
        return 1.0;
    }
    let k = ((mags.len() as f64 * 0.99) as usize).min(mags.len() - 1);
    let range = *mags.select_nth_unstable_by(k, f32::total_cmp).1;
    if range > 0.0 { range } else { 1.0 }
}

/// Blue (−1) – white (0) – red (+1).
fn diverging(t: f32) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let c = |x: f32| (255.0 * x).round() as u8;
    if t < 0.0 {
        RGBColor(c(1.0 + t), c(1.0 + t), 255)
    } else {
        RGBColor(255, c(1.0 - t), c(1.0 - t))
    }
}

/// A scalar field picture: `values [ny, nx]`, solid cells grey, colour range `±range`.
pub struct FieldPicture<'a> {
    /// Values, row-major `[ny, nx]`, row 0 at the bottom.
    pub values: &'a [f32],
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Solid cells (drawn grey).
    pub solid: &'a [bool],
    /// Symmetric colour range.
    pub range: f32,
    /// Caption.
    pub title: String,
}

impl<'a> FieldPicture<'a> {
    /// A picture of `values [grid.ny, grid.nx]`.
    pub fn on_grid(
        values: &'a [f32],
        solid: &'a [bool],
        grid: &Grid,
        range: f32,
        title: String,
    ) -> Self {
        Self {
            values,
            nx: grid.nx,
            ny: grid.ny,
            solid,
            range,
            title,
        }
    }

    /// Pixels per cell so that the longer side is about 512 px.
    fn scale(&self) -> u32 {
        (512 / self.nx.max(self.ny)).max(1) as u32
    }

    /// Picture size (pixels).
    pub fn size(&self) -> (u32, u32) {
        let s = self.scale();
        (self.nx as u32 * s, self.ny as u32 * s + 28)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> std::result::Result<(), String> {
        area.fill(&WHITE).map_err(|e| e.to_string())?;
        let (top, body) = area.split_vertically(28);
        top.draw_text(
            &self.title,
            &("sans-serif", 16).into_font().color(&BLACK),
            (6, 6),
        )
        .map_err(|e| e.to_string())?;
        let s = self.scale() as i32;
        let grey = RGBColor(110, 110, 110);
        for j in 0..self.ny {
            for i in 0..self.nx {
                let k = j * self.nx + i;
                let color = if self.solid.get(k).copied().unwrap_or(false) {
                    grey
                } else {
                    diverging(self.values[k] / self.range)
                };
                let (x0, y0) = (i as i32 * s, (self.ny - 1 - j) as i32 * s);
                if s == 1 {
                    body.draw_pixel((x0, y0), &color)
                        .map_err(|e| e.to_string())?;
                } else {
                    body.draw(&Rectangle::new(
                        [(x0, y0), (x0 + s, y0 + s)],
                        color.filled(),
                    ))
                    .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Writes the picture as a PNG (via a temporary file, renamed when complete).
    pub fn save_png(&self, path: &Path) -> Result<()> {
        save_png(path, self.size(), |area| self.draw(area))
    }
}

/// Draws `size` pixels with `draw` into a PNG (via a temporary file, renamed when complete).
fn save_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(
        &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<()> {
    fonts();
    let tmp = path.with_extension("partial.png");
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        draw(&root).map_err(plot_err(path))?;
        root.present().map_err(|e| plot_err(path)(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| DiffsimError::file(path, e))
}

/// Field pictures side by side, each with its own caption and colour range.
pub struct Panels<'a>(pub Vec<FieldPicture<'a>>);

impl Panels<'_> {
    /// Picture size (pixels): the widths add up, the tallest panel sets the height.
    pub fn size(&self) -> (u32, u32) {
        self.0
            .iter()
            .map(FieldPicture::size)
            .fold((0, 0), |(w, h), (pw, ph)| (w + pw, h.max(ph)))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> std::result::Result<(), String> {
        area.fill(&WHITE).map_err(|e| e.to_string())?;
        let breaks: Vec<u32> = self
            .0
            .iter()
            .scan(0, |x, p| {
                *x += p.size().0;
                Some(*x)
            })
            .collect();
        let areas = area.split_by_breakpoints(&breaks[..breaks.len().saturating_sub(1)], [0u32; 0]);
        self.0.iter().zip(&areas).try_for_each(|(p, a)| p.draw(a))
    }

    /// Writes the panels as one PNG (via a temporary file, renamed when complete).
    pub fn save_png(&self, path: &Path) -> Result<()> {
        save_png(path, self.size(), |area| self.draw(area))
    }
}

impl Frame for Panels<'_> {
    fn draw_frame(
        &self,
        area: &DrawingArea<BitMapBackend<'static>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String> {
        self.draw(area)
    }
}

/// A picture that can be a GIF frame.
pub trait Frame {
    /// Draws the whole frame on `area`.
    fn draw_frame(
        &self,
        area: &DrawingArea<BitMapBackend<'static>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>;
}

impl Frame for FieldPicture<'_> {
    fn draw_frame(
        &self,
        area: &DrawingArea<BitMapBackend<'static>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String> {
        self.draw(area)
    }
}

/// A side view of particles (metres, projected on two axes): edges between them, static
/// boxes (grey), targets (red crosses) and a trail (the path of a marked point).
pub struct ScenePicture<'a> {
    /// Particle positions `[n][2]`.
    pub points: &'a [[f64; 2]],
    /// Lines between particles (springs, element edges).
    pub edges: &'a [(usize, usize)],
    /// Obstacles `[x0, y0, x1, y1]`.
    pub boxes: &'a [[f64; 4]],
    /// Targets.
    pub marks: &'a [[f64; 2]],
    /// A path drawn as a thin line.
    pub trail: &'a [[f64; 2]],
    /// The window `[x0, y0, x1, y1]` shown.
    pub view: [f64; 4],
    /// Caption.
    pub title: String,
}

impl ScenePicture<'_> {
    /// Picture size: 640 px wide, the height of the window's aspect, plus the caption.
    pub fn size(view: [f64; 4]) -> (u32, u32) {
        let aspect = (view[3] - view[1]) / (view[2] - view[0]).max(1e-12);
        (
            640,
            (640.0 * aspect).round().clamp(64.0, 1280.0) as u32 + 28,
        )
    }
}

/// A captioned frame: the drawing area below a 28-px caption and the map from the window
/// `view = [x0, y0, x1, y1]` (metres, y up) to its pixels.
pub(crate) struct Window {
    body: DrawingArea<BitMapBackend<'static>, plotters::coord::Shift>,
    view: [f64; 4],
    size: (f64, f64),
}

/// A plotters error as text.
fn drawing_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

impl Window {
    /// Clears `area`, writes `title` on top and returns the window below it.
    pub(crate) fn open(
        area: &DrawingArea<BitMapBackend<'static>, plotters::coord::Shift>,
        title: &str,
        view: [f64; 4],
    ) -> std::result::Result<Self, String> {
        area.fill(&WHITE).map_err(drawing_error)?;
        let (top, body) = area.split_vertically(28);
        top.draw_text(title, &("sans-serif", 16).into_font().color(&BLACK), (6, 6))
            .map_err(drawing_error)?;
        let (w, h) = body.dim_in_pixel();
        Ok(Self {
            body,
            view,
            size: (f64::from(w), f64::from(h)),
        })
    }

    /// The pixel of a point.
    pub(crate) fn px(&self, p: [f64; 2]) -> (i32, i32) {
        let [x0, y0, x1, y1] = self.view;
        (
            ((p[0] - x0) / (x1 - x0) * self.size.0).round() as i32,
            ((y1 - p[1]) / (y1 - y0) * self.size.1).round() as i32,
        )
    }

    /// Pixels per metre along x.
    pub(crate) fn scale(&self) -> f64 {
        self.size.0 / (self.view[2] - self.view[0])
    }

    /// Draws one element.
    pub(crate) fn draw<E>(&self, element: &E) -> std::result::Result<(), String>
    where
        for<'b> &'b E: plotters::element::PointCollection<'b, (i32, i32)>,
        E: plotters::element::Drawable<BitMapBackend<'static>>,
    {
        self.body.draw(element).map_err(drawing_error)
    }

    /// A path as a thin green line (nothing for fewer than two points).
    pub(crate) fn trail(&self, trail: &[[f64; 2]]) -> std::result::Result<(), String> {
        if trail.len() > 1 {
            let path: Vec<_> = trail.iter().map(|p| self.px(*p)).collect();
            self.draw(&PathElement::new(path, RGBColor(90, 160, 90)))?;
        }
        Ok(())
    }

    /// Targets as red crosses.
    pub(crate) fn marks(&self, marks: &[[f64; 2]]) -> std::result::Result<(), String> {
        for m in marks {
            self.draw(&Cross::new(self.px(*m), 6, RED.stroke_width(2)))?;
        }
        Ok(())
    }
}

impl Frame for ScenePicture<'_> {
    fn draw_frame(
        &self,
        area: &DrawingArea<BitMapBackend<'static>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String> {
        let win = Window::open(area, &self.title, self.view)?;
        let grey = RGBColor(150, 150, 150);
        for b in self.boxes {
            win.draw(&Rectangle::new(
                [win.px([b[0], b[3]]), win.px([b[2], b[1]])],
                grey.filled(),
            ))?;
        }
        win.trail(self.trail)?;
        for &(i, j) in self.edges {
            win.draw(&PathElement::new(
                vec![win.px(self.points[i]), win.px(self.points[j])],
                RGBColor(70, 110, 200),
            ))?;
        }
        for p in self.points {
            win.draw(&Circle::new(win.px(*p), 3, BLACK.filled()))?;
        }
        win.marks(self.marks)
    }
}

/// An animated GIF written frame by frame (via a temporary file, renamed by `finish`).
pub struct GifWriter {
    root: Option<DrawingArea<BitMapBackend<'static>, plotters::coord::Shift>>,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    frames: usize,
}

impl GifWriter {
    /// Starts a GIF of `size` pixels with `delay_ms` per frame.
    pub fn create(path: &Path, size: (u32, u32), delay_ms: u32) -> Result<Self> {
        fonts();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DiffsimError::file(dir, e))?;
        }
        let tmp = path.with_extension("partial.gif");
        let root = BitMapBackend::gif(tmp.clone(), size, delay_ms)
            .map_err(|e| plot_err(path)(e.to_string()))?
            .into_drawing_area();
        Ok(Self {
            root: Some(root),
            tmp,
            path: path.to_path_buf(),
            frames: 0,
        })
    }

    /// Adds one frame.
    pub fn add(&mut self, pic: &dyn Frame) -> Result<()> {
        let root = self.root.as_ref().expect("gif is open");
        pic.draw_frame(root).map_err(plot_err(&self.path))?;
        root.present()
            .map_err(|e| plot_err(&self.path)(e.to_string()))?;
        self.frames += 1;
        Ok(())
    }

    /// Closes the GIF and moves it to its final name.
    pub fn finish(mut self) -> Result<usize> {
        drop(self.root.take());
        std::fs::rename(&self.tmp, &self.path).map_err(|e| DiffsimError::file(&self.path, e))?;
        Ok(self.frames)
    }
}

impl Drop for GifWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A line plot of named series `(x, y)` (PNG).
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    fonts();
    let err = plot_err(path);
    let pts = series.iter().flat_map(|(_, s)| s.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return Err(err("no data to plot".into()));
    }
    let pad = ((y1 - y0) * 0.05).max(1e-12);
    let tmp = path.with_extension("partial.png");
    {
        let root = BitMapBackend::new(&tmp, (800, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1.max(x0 + 1e-12), (y0 - pad)..(y1 + pad))
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (k, (name, s)) in series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            chart
                .draw_series(LineSeries::new(s.iter().copied(), color.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| DiffsimError::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Resolution;

    #[test]
    fn vorticity_of_solid_body_rotation_is_twice_the_rate() {
        // u = −ω (y − yc), v = ω (x − xc): ω_z = 2ω everywhere (exact for the centred differences).
        let g = Grid::new(Resolution::new(8, 6), [8.0, 6.0]).unwrap();
        let w = 0.3f32;
        let u: Vec<f32> = (0..6)
            .flat_map(|j| (0..9).map(move |_| -w * (j as f32 + 0.5 - 3.0)))
            .collect();
        let v: Vec<f32> = (0..7)
            .flat_map(|_| (0..8).map(move |i| w * (i as f32 + 0.5 - 4.0)))
            .collect();
        for z in vorticity(&u, &v, &g) {
            assert!((z - 2.0 * w).abs() < 1e-6, "{z}");
        }
    }

    #[test]
    fn scene_frames_make_a_gif() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scene.gif");
        let view = [-1.0, 0.0, 1.0, 1.0];
        assert_eq!(ScenePicture::size(view), (640, 320 + 28));
        let mut gif = GifWriter::create(&path, ScenePicture::size(view), 50).unwrap();
        for k in 0..2 {
            let points = [[-0.5 + 0.1 * k as f64, 0.5], [0.5, 0.5]];
            gif.add(&ScenePicture {
                points: &points,
                edges: &[(0, 1)],
                boxes: &[[0.8, 0.0, 1.0, 1.0]],
                marks: &[[0.0, 0.9]],
                trail: &points,
                view,
                title: format!("frame {k}"),
            })
            .unwrap();
        }
        assert_eq!(gif.finish().unwrap(), 2);
        assert_eq!(&std::fs::read(&path).unwrap()[..3], b"GIF");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn line_plot_and_field_picture_write_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curve.png");
        let series = vec![(
            "sin".to_string(),
            (0..50)
                .map(|k| (k as f64, (k as f64 * 0.2).sin()))
                .collect(),
        )];
        line_plot(&path, "probe", "step", "u", &series).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(line_plot(&dir.path().join("empty.png"), "t", "x", "y", &[]).is_err());
        let values = vec![0.5f32; 12];
        let pic = FieldPicture {
            values: &values,
            nx: 4,
            ny: 3,
            solid: &[false; 12],
            range: 1.0,
            title: "f".into(),
        };
        let png = dir.path().join("field.png");
        pic.save_png(&png).unwrap();
        assert_eq!(pic.size(), (512, 3 * 128 + 28));
        assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
    }
}
