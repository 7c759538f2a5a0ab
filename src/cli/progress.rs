//! Progress on the command line: a bar on a terminal, a log line every 10% elsewhere, nothing
//! with `--json`.

use crate::experiments::Progress;
use std::cell::RefCell;
use std::io::IsTerminal;

/// Reports progress: a bar on a terminal, a log line every 10% elsewhere, nothing when quiet.
pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    quiet: bool,
    label: String,
}

impl Bar {
    /// A progress reporter over `total` units.
    pub fn new(label: &str, total: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_message(label.to_string());
            b
        });
        Self {
            bar,
            total,
            quiet,
            label: label.into(),
        }
    }

    /// Marks unit `done` (1-based) as finished.
    pub fn set(&self, done: u64) {
        match &self.bar {
            Some(b) => b.set_position(done),
            None if !self.quiet && self.total >= 10 && done.is_multiple_of(self.total / 10) => {
                eprintln!(
                    "{}: {done}/{} ({}%)",
                    self.label,
                    self.total,
                    100 * done / self.total
                )
            }
            None => {}
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// A study's stages, one [`Bar`] each.
pub struct Bars {
    quiet: bool,
    current: RefCell<Option<Bar>>,
}

impl Bars {
    /// Stages reported unless `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            current: RefCell::new(None),
        }
    }
}

impl Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
        if let Some(bar) = self
            .current
            .borrow_mut()
            .replace(Bar::new(stage, total, self.quiet))
        {
            bar.finish();
        }
    }

    fn set(&self, done: u64) {
        if let Some(bar) = self.current.borrow().as_ref() {
            bar.set(done);
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(bar) = self.current.get_mut().take() {
            bar.finish();
        }
    }
}
