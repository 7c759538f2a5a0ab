//! Pictures of rigid bodies: spheres seen along one axis as a GIF (discs with a spoke that
//! shows their rotation, the path of one of them, targets).

use super::{Frame, GifWriter, ScenePicture, Window};
use crate::error::Result;
use plotters::prelude::*;
use std::path::Path;

/// A sphere seen along an axis: centre, radius and the direction of a body-fixed spoke.
#[derive(Clone, Copy, Debug)]
pub struct Disc {
    /// Centre in the picture's plane (m).
    pub center: [f64; 2],
    /// Radius (m).
    pub radius: f64,
    /// A body-fixed unit direction projected on the plane.
    pub spoke: [f64; 2],
}

struct DiscPicture<'a> {
    discs: &'a [Disc],
    trail: &'a [[f64; 2]],
    marks: &'a [[f64; 2]],
    view: [f64; 4],
    title: String,
}

impl Frame for DiscPicture<'_> {
    fn draw_frame(
        &self,
        area: &DrawingArea<BitMapBackend<'static>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String> {
        let win = Window::open(area, &self.title, self.view)?;
        win.trail(self.trail)?;
        for d in self.discs {
            let r = (d.radius * win.scale()).round().max(2.0) as i32;
            win.draw(&Circle::new(
                win.px(d.center),
                r,
                RGBColor(70, 110, 200).filled(),
            ))?;
            let tip = [
                d.center[0] + d.radius * d.spoke[0],
                d.center[1] + d.radius * d.spoke[1],
            ];
            win.draw(&PathElement::new(
                vec![win.px(d.center), win.px(tip)],
                WHITE.stroke_width(2),
            ))?;
        }
        win.marks(self.marks)
    }
}

/// A GIF of `frames` (discs per frame), the path of disc `follow` drawn as a trail, and
/// `marks` (targets); the window holds every disc of every frame.
pub fn discs_gif(
    path: &Path,
    frames: &[Vec<Disc>],
    follow: usize,
    marks: &[[f64; 2]],
    title: &str,
) -> Result<()> {
    let mut view = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for d in frames.iter().flatten() {
        view = [
            view[0].min(d.center[0] - d.radius),
            view[1].min(d.center[1] - d.radius),
            view[2].max(d.center[0] + d.radius),
            view[3].max(d.center[1] + d.radius),
        ];
    }
    for m in marks {
        view = [
            view[0].min(m[0]),
            view[1].min(m[1]),
            view[2].max(m[0]),
            view[3].max(m[1]),
        ];
    }
    let pad = 0.05 * (view[2] - view[0]).max(view[3] - view[1]).max(1e-3);
    let view = [view[0] - pad, view[1] - pad, view[2] + pad, view[3] + pad];
    let mut gif = GifWriter::create(path, ScenePicture::size(view), 50)?;
    let mut trail = Vec::new();
    for (k, discs) in frames.iter().enumerate() {
        if let Some(d) = discs.get(follow) {
            trail.push(d.center);
        }
        gif.add(&DiscPicture {
            discs,
            trail: &trail,
            marks,
            view,
            title: format!("{title} (frame {}/{})", k + 1, frames.len()),
        })?;
    }
    gif.finish().map(|_| ())
}
