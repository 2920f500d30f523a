//! A one-line progress bar on standard error, drawn only when it is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraw at most this often, so drawing never costs more than the work.
const REDRAW: Duration = Duration::from_millis(100);

/// Progress over a known amount of work (bytes of a file, samples of a run).
pub struct ProgressBar {
    total: u64,
    label: &'static str,
    enabled: bool,
    last_draw: Option<Instant>,
}

impl ProgressBar {
    /// A bar for `total` units; silent unless standard error is a terminal.
    pub fn new(total: u64, label: &'static str) -> Self {
        Self { total: total.max(1), label, enabled: std::io::stderr().is_terminal(), last_draw: None }
    }

    /// Records `done` units and the `count` of items so far; redraws if due.
    pub fn update(&mut self, done: u64, count: u64) {
        if !self.enabled || self.last_draw.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        self.last_draw = Some(Instant::now());
        self.draw(done, count);
    }

    fn draw(&self, done: u64, count: u64) {
        const WIDTH: u64 = 30;
        let fraction = done.min(self.total) as f64 / self.total as f64;
        let filled = (fraction * WIDTH as f64) as u64;
        let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { '-' }).collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r[{bar}] {:5.1}% {count} {}", 100.0 * fraction, self.label);
        let _ = err.flush();
    }

    /// Draws the final state and ends the line.
    pub fn finish(&mut self, count: u64) {
        if self.enabled {
            self.draw(self.total, count);
            let _ = writeln!(std::io::stderr());
        }
    }
}
