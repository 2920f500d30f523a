//! SVG plots (plotters, SVG backend): scatter and line series on linear or log-log axes,
//! described as data by the experiments and drawn only when the report is written.
//!
//! Text is drawn with the SVG backend's own `<text>` elements: without plotters' `ttf`
//! feature the layout uses a crude width estimate, which is good enough for axis labels,
//! captions and a legend (the viewer renders the actual font).

use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::ExperimentError;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Small filled dots (identified values).
    Dot,
    /// Crosses (ground truth).
    Cross,
    /// Large hollow circles (highlighted truth).
    Ring,
    /// Small hollow circles (a second identified set, drawn over the first).
    SmallRing,
    /// A polyline through the points.
    Line,
    /// A dashed-looking polyline (drawn thin), for references such as the unit circle.
    ThinLine,
}

/// One series of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub marker: Marker,
    /// Index into the palette.
    pub color: usize,
}

impl Series {
    /// A series.
    pub fn new(label: &str, points: Vec<(f64, f64)>, marker: Marker, color: usize) -> Self {
        Self { label: label.to_owned(), points, marker, color }
    }
}

/// Where the legend goes (a corner the data leave free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    /// Upper right (default).
    UpperRight,
    /// Upper left.
    UpperLeft,
}

/// Axis kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axes {
    /// Linear x and y.
    Linear,
    /// Logarithmic x and y (non-positive values are left out).
    LogLog,
}

/// A plot, as data.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// SVG file name in the output directory.
    pub file: String,
    /// Caption (also listed in the report).
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Axis kinds.
    pub axes: Axes,
    /// x range; `None` fits the data.
    pub x_range: Option<(f64, f64)>,
    /// y range; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// The series, drawn in order.
    pub series: Vec<Series>,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// Legend corner.
    pub legend: Legend,
}

impl Plot {
    /// A plot with ranges fitted to its data.
    pub fn new(file: &str, title: &str, x_label: &str, y_label: &str, axes: Axes, series: Vec<Series>) -> Self {
        Self {
            file: file.to_owned(),
            title: title.to_owned(),
            x_label: x_label.to_owned(),
            y_label: y_label.to_owned(),
            axes,
            x_range: None,
            y_range: None,
            series,
            size: (800, 560),
            legend: Legend::UpperRight,
        }
    }

    /// Moves the legend.
    pub fn with_legend(mut self, legend: Legend) -> Self {
        self.legend = legend;
        self
    }

    /// Sets the picture size (e.g. nearly square for the complex plane).
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Fixes the ranges (points outside are clipped away).
    pub fn with_ranges(mut self, x: (f64, f64), y: (f64, f64)) -> Self {
        self.x_range = Some(x);
        self.y_range = Some(y);
        self
    }

    fn usable(&self, (x, y): (f64, f64)) -> bool {
        x.is_finite() && y.is_finite() && (self.axes == Axes::Linear || (x > 0.0 && y > 0.0))
    }

    fn inside(&self, (x, y): (f64, f64), xr: (f64, f64), yr: (f64, f64)) -> bool {
        self.usable((x, y)) && x >= xr.0 && x <= xr.1 && y >= yr.0 && y <= yr.1
    }

    /// The data range of one coordinate, padded (multiplicatively on log axes).
    fn fitted(&self, pick: impl Fn((f64, f64)) -> f64) -> (f64, f64) {
        let values = self.series.iter().flat_map(|s| &s.points).copied().filter(|p| self.usable(*p)).map(pick);
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        match self.axes {
            _ if !lo.is_finite() => (1.0, 10.0),
            Axes::LogLog => (lo / 1.5, hi * 1.5),
            Axes::Linear if hi - lo < 1e-12 * lo.abs().max(1.0) => (lo - 1.0, hi + 1.0),
            Axes::Linear => (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)),
        }
    }
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 0, 0),
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];

/// Draws `plot` into the SVG file `path`.
pub fn write_svg(plot: &Plot, path: &Path) -> Result<(), ExperimentError> {
    let x = plot.x_range.unwrap_or_else(|| plot.fitted(|p| p.0));
    let y = plot.y_range.unwrap_or_else(|| plot.fitted(|p| p.1));
    let drawn = match plot.axes {
        Axes::Linear => draw(plot, path, x.0..x.1, y.0..y.1, (x, y)),
        Axes::LogLog => draw(plot, path, (x.0..x.1).log_scale(), (y.0..y.1).log_scale(), (x, y)),
    };
    drawn.map_err(|message| ExperimentError::Plot { path: path.to_path_buf(), message })
}

fn draw<X, Y>(plot: &Plot, path: &Path, x: X, y: Y, ranges: ((f64, f64), (f64, f64))) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let fail = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::new(path, plot.size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&plot.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(|e| fail(&e))?;
    // Log axes read best as powers of ten; the default would print 9.99999999e-5.
    let log_label = |v: &f64| format!("{:.0}", super::report::Sci(*v));
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(plot.x_label.as_str()).y_desc(plot.y_label.as_str()).label_style(("sans-serif", 13));
    if plot.axes == Axes::LogLog {
        mesh.x_label_formatter(&log_label).y_label_formatter(&log_label);
    }
    mesh.draw().map_err(|e| fail(&e))?;
    let (xr, yr) = ranges;
    for series in &plot.series {
        let color = PALETTE[series.color % PALETTE.len()];
        let points: Vec<(f64, f64)> = series.points.iter().copied().filter(|p| plot.inside(*p, xr, yr)).collect();
        if points.is_empty() {
            continue;
        }
        let label = series.label.as_str();
        match series.marker {
            Marker::Line | Marker::ThinLine => {
                let width = if series.marker == Marker::Line { 2 } else { 1 };
                // Lines are split where points were clipped away, so they never jump.
                let runs = line_runs(&series.points, |p| plot.inside(p, xr, yr));
                for (k, run) in runs.into_iter().enumerate() {
                    let drawn =
                        chart.draw_series(LineSeries::new(run, color.stroke_width(width))).map_err(|e| fail(&e))?;
                    if k == 0 {
                        drawn.label(label).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(width))
                        });
                    }
                }
            }
            Marker::Dot => {
                chart
                    .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                    .map_err(|e| fail(&e))?
                    .label(label)
                    .legend(move |(x, y)| Circle::new((x + 8, y), 3, color.filled()));
            }
            Marker::Ring | Marker::SmallRing => {
                let radius = if series.marker == Marker::Ring { 7 } else { 4 };
                chart
                    .draw_series(points.iter().map(|p| Circle::new(*p, radius, color.stroke_width(2))))
                    .map_err(|e| fail(&e))?
                    .label(label)
                    .legend(move |(x, y)| Circle::new((x + 8, y), radius, color.stroke_width(2)));
            }
            Marker::Cross => {
                chart
                    .draw_series(points.iter().map(|p| Cross::new(*p, 5, color.stroke_width(2))))
                    .map_err(|e| fail(&e))?
                    .label(label)
                    .legend(move |(x, y)| Cross::new((x + 8, y), 5, color.stroke_width(2)));
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(match plot.legend {
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
        })
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

/// Consecutive runs of points that pass `keep`.
fn line_runs(points: &[(f64, f64)], keep: impl Fn((f64, f64)) -> bool) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for &p in points {
        if keep(p) {
            current.push(p);
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// Points on the unit circle (for discrete-time eigenvalue plots).
pub fn unit_circle() -> Vec<(f64, f64)> {
    (0..=200).map(|k| std::f64::consts::TAU * k as f64 / 200.0).map(|t| (t.cos(), t.sin())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_linear_and_log_plots_with_labels() {
        let dir = std::env::temp_dir().join(format!("koopstream-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let linear = Plot::new(
            "linear.svg",
            "Eigenvalues",
            "Re",
            "Im",
            Axes::Linear,
            vec![
                Series::new("unit circle", unit_circle(), Marker::ThinLine, 0),
                Series::new("identified", vec![(0.9, 0.1), (0.5, -0.2)], Marker::Dot, 1),
                Series::new("truth", vec![(0.9, 0.1)], Marker::Cross, 2),
            ],
        )
        .with_ranges((-1.1, 1.1), (-1.1, 1.1));
        write_svg(&linear, &dir.join("linear.svg")).unwrap();
        let svg = std::fs::read_to_string(dir.join("linear.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Eigenvalues") && svg.contains("identified"));
        let log = Plot::new(
            "log.svg",
            "Cost",
            "pairs",
            "seconds",
            Axes::LogLog,
            vec![Series::new("refit", vec![(1e3, 1e-3), (1e4, 1e-2), (0.0, 1.0)], Marker::Line, 1)],
        );
        write_svg(&log, &dir.join("log.svg")).unwrap();
        assert!(std::fs::read_to_string(dir.join("log.svg")).unwrap().contains("refit"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lines_split_where_points_are_clipped() {
        let runs = line_runs(&[(0.0, 0.0), (1.0, 9.0), (2.0, 0.0), (3.0, 0.0)], |p| p.1 < 5.0);
        assert_eq!(runs, vec![vec![(0.0, 0.0)], vec![(2.0, 0.0), (3.0, 0.0)]]);
    }
}
