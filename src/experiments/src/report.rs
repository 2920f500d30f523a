//! The report: tables of typed cells rendered as Markdown (rounded) and CSV (full
//! precision), sections with findings, and writing everything into the output directory.

use std::fmt::Write as _;
use std::path::Path;

use super::plots::{self, Plot};
use super::{ExperimentArgs, ExperimentError};

/// Command that regenerates the committed report (EXPERIMENTS.md is a copy of report.md).
pub const REGENERATE: &str = "cargo run --release -- experiment --out target/experiments";

/// The online-equals-batch agreement the design asks for (DESIGN.md 1.4).
pub const ONLINE_BATCH_TOLERANCE: f64 = 1e-9;

/// How a number is shown in Markdown (CSV always has every digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumFormat {
    /// Fixed decimals.
    Fixed(usize),
    /// Scientific notation with this many decimals.
    Sci(usize),
}

/// A number in scientific notation without a zero exponent: `{:.2}` of `Sci(1.5432)` is
/// `1.54`, of `Sci(0.0233)` is `2.33e-2` (Rust's `{:.2e}` would write `1.54e0`). The
/// precision is the number of decimals; without one every digit is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sci(pub f64);

impl std::fmt::Display for Sci {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match f.precision() {
            Some(d) => format!("{:.d$e}", self.0),
            None => format!("{:e}", self.0),
        };
        let text = text.strip_suffix("e0").unwrap_or(&text);
        // Not `pad`, which would cut the text to the precision: a width right-aligns.
        let width = f.width().unwrap_or(0);
        write!(f, "{text:>width$}")
    }
}

/// One table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text (left-aligned).
    Text(String),
    /// A number (right-aligned); NaN shows as a dash.
    Num(f64, NumFormat),
    /// A count.
    Int(i64),
}

impl Cell {
    /// A text cell.
    pub fn text(value: impl Into<String>) -> Self {
        Self::Text(value.into())
    }

    /// A number with fixed decimals.
    pub fn fixed(value: f64, decimals: usize) -> Self {
        Self::Num(value, NumFormat::Fixed(decimals))
    }

    /// A number in scientific notation.
    pub fn sci(value: f64, decimals: usize) -> Self {
        Self::Num(value, NumFormat::Sci(decimals))
    }

    /// A count.
    pub fn int(value: usize) -> Self {
        Self::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }

    fn markdown(&self) -> String {
        match self {
            Self::Text(t) => t.replace('|', "\\|"),
            Self::Num(v, _) if !v.is_finite() => "—".into(),
            Self::Num(v, NumFormat::Fixed(d)) => format!("{v:.d$}"),
            Self::Num(v, NumFormat::Sci(d)) => format!("{:.d$}", Sci(*v)),
            Self::Int(i) => i.to_string(),
        }
    }

    fn csv(&self) -> String {
        match self {
            Self::Text(t) if t.contains([',', '"', '\n']) => format!("\"{}\"", t.replace('"', "\"\"")),
            Self::Text(t) => t.clone(),
            // Shortest round-trip formatting: reading the CSV gives back the same f64.
            Self::Num(v, _) => v.to_string(),
            Self::Int(i) => i.to_string(),
        }
    }

    fn right_aligned(&self) -> bool {
        !matches!(self, Self::Text(_))
    }
}

/// A table: written as `<file>.csv` and as Markdown in its section.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// CSV file stem (no extension).
    pub file: String,
    /// Caption shown above the Markdown table.
    pub title: String,
    /// Column names (also the CSV header).
    pub header: Vec<String>,
    /// Rows of cells, one per header column.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table.
    pub fn new(file: &str, title: &str, header: &[&str]) -> Self {
        Self {
            file: file.to_owned(),
            title: title.to_owned(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (its length must match the header; checked in debug builds).
    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.header.len(), "row of table {}", self.file);
        self.rows.push(row);
    }

    /// The table as CSV text.
    pub fn to_csv(&self) -> String {
        let mut out = self.header.join(",");
        out.push('\n');
        for row in &self.rows {
            out.push_str(&row.iter().map(Cell::csv).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        out
    }

    /// The table as Markdown (caption, header, alignment row, rows).
    pub fn to_markdown(&self) -> String {
        let mut out = format!("**{}** (`{}.csv`)\n\n", self.title, self.file);
        let _ = writeln!(out, "| {} |", self.header.join(" | "));
        let align: Vec<&str> = (0..self.header.len())
            .map(|j| match self.rows.first().and_then(|r| r.get(j)) {
                Some(cell) if cell.right_aligned() => "---:",
                _ => "---",
            })
            .collect();
        let _ = writeln!(out, "|{}|", align.join("|"));
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.iter().map(Cell::markdown).collect::<Vec<_>>().join(" | "));
        }
        out
    }
}

/// The online-minus-batch check of one fit.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineBatch {
    /// System name.
    pub system: String,
    /// Noise level and method.
    pub setting: String,
    /// Regressor length N'.
    pub n_regressor: usize,
    /// Pairs in the model.
    pub pairs: usize,
    /// Ridge mu in use.
    pub mu: f64,
    /// ||K_online - K_batch||_F / ||K_batch||_F.
    pub difference: f64,
}

/// What one experiment contributes to the report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// Setup paragraphs (Markdown), shown before the tables.
    pub intro: Vec<String>,
    /// Tables.
    pub tables: Vec<Table>,
    /// Plots (drawn as SVG into the output directory).
    pub plots: Vec<Plot>,
    /// Findings, stated plainly: where the robust estimator wins and where it does not.
    pub findings: Vec<String>,
    /// One-line headlines for the summary at the top of the report.
    pub summary: Vec<String>,
    /// Online-minus-batch checks.
    pub online_batch: Vec<OnlineBatch>,
}

/// How the report was produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RunContext {
    /// The command line that reproduces this run.
    pub command: String,
    /// CPU model and thread count.
    pub machine: String,
    /// Build profile.
    pub profile: &'static str,
    /// Whether this is the quick set.
    pub quick: bool,
    /// Total run time in seconds.
    pub elapsed_s: f64,
}

impl RunContext {
    /// Describes this run (reads the CPU model from /proc/cpuinfo where there is one).
    pub fn describe(args: &ExperimentArgs, elapsed_s: f64) -> Self {
        let system = format!("{:?}", args.system).to_lowercase().replace("vdpring", "vdp-ring");
        let mut command = format!("koopstream experiment --system {system}");
        if args.quick {
            command.push_str(" --quick");
        }
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(str::trim)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            command,
            machine: format!("{cpu}, {threads} hardware threads ({})", std::env::consts::ARCH),
            profile: if cfg!(debug_assertions) { "debug" } else { "release" },
            quick: args.quick,
            elapsed_s,
        }
    }
}

/// The table of every online-minus-batch check.
pub fn online_batch_table(sections: &[Section]) -> Table {
    let mut table = Table::new(
        "online_vs_batch",
        "Online minus batch: relative Frobenius difference between the online K and the batch solve with the same mu over the same pairs",
        &["system", "setting", "N'", "pairs", "mu", "rel. difference"],
    );
    for check in sections.iter().flat_map(|s| &s.online_batch) {
        table.push(vec![
            Cell::text(&check.system),
            Cell::text(&check.setting),
            Cell::int(check.n_regressor),
            Cell::int(check.pairs),
            Cell::sci(check.mu, 2),
            Cell::sci(check.difference, 1),
        ]);
    }
    table
}

/// The whole report as Markdown.
pub fn render(context: &RunContext, sections: &[Section]) -> String {
    let mut out = String::from("# koopstream experiments\n\n");
    let _ = writeln!(
        out,
        "Regenerate with `{REGENERATE}` (add `--system vdp|vdp-ring|henon|ieee68|meter|debiased|pmu|pmu-sensitivity|mode-floor|pmu-ringdown` for one system). It writes \
         `report.md` (this text), one CSV file per table and the SVG plots into the output directory; \
         EXPERIMENTS.md in the repository is a copy of `report.md`, the CSV and SVG files are not committed.\n"
    );
    let _ = writeln!(
        out,
        "This run: `{}`, {} build, {:.0} s on {}. Everything is seeded: the numbers are reproducible except \
         the wall-clock timings.{}\n",
        context.command,
        context.profile,
        context.elapsed_s,
        context.machine,
        if context.quick { " **Quick run: data sets are tiny and the numbers are not meaningful.**" } else { "" }
    );
    out.push_str("## Summary\n\n");
    for line in sections.iter().flat_map(|s| &s.summary) {
        let _ = writeln!(out, "- {line}");
    }
    out.push('\n');
    for section in sections {
        let _ = writeln!(out, "## {}\n", section.title);
        for paragraph in &section.intro {
            let _ = writeln!(out, "{paragraph}\n");
        }
        for table in &section.tables {
            let _ = writeln!(out, "{}", table.to_markdown());
        }
        if !section.findings.is_empty() {
            out.push_str("Findings:\n\n");
            for finding in &section.findings {
                let _ = writeln!(out, "- {finding}");
            }
            out.push('\n');
        }
        if !section.plots.is_empty() {
            out.push_str("Plots (SVG, in the output directory):\n\n");
            for plot in &section.plots {
                let _ = writeln!(out, "- `{}`: {}", plot.file, plot.title);
            }
            out.push('\n');
        }
    }
    let checks = online_batch_table(sections);
    if !checks.rows.is_empty() {
        out.push_str("## Online equals batch\n\n");
        out.push_str(
            "Every online fit above, compared with the independent batch solve (QR of the stacked pairs) \
             with the same mu over exactly the same pairs.\n\n",
        );
        let _ = writeln!(out, "{}", checks.to_markdown());
        let loose: Vec<String> = sections
            .iter()
            .flat_map(|s| &s.online_batch)
            .filter(|c| c.difference.is_nan() || c.difference > ONLINE_BATCH_TOLERANCE)
            .map(|c| format!("{} ({}): {:.1}", c.system, c.setting, Sci(c.difference)))
            .collect();
        if loose.is_empty() {
            let _ = writeln!(out, "Every fit agrees with its batch solve to {ONLINE_BATCH_TOLERANCE:e} or better.\n");
        } else {
            let _ = writeln!(
                out,
                "Above the design's {ONLINE_BATCH_TOLERANCE:e}: {}. These are fits with a tiny ridge on a nearly \
                 singular Gram matrix (a delay embedding of a lower-dimensional system), where both solves lose \
                 digits in proportion to its condition number; the difference shrinks as mu grows.\n",
                loose.join("; ")
            );
        }
    }
    out
}

/// Writes report.md, every table as CSV and every plot as SVG into `dir`.
pub fn write_all(dir: &Path, markdown: &str, sections: &[Section]) -> Result<(), ExperimentError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExperimentError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let report = dir.join("report.md");
    std::fs::write(&report, markdown).map_err(io(&report))?;
    let checks = online_batch_table(sections);
    for table in sections.iter().flat_map(|s| &s.tables).chain(std::iter::once(&checks)) {
        let path = dir.join(format!("{}.csv", table.file));
        std::fs::write(&path, table.to_csv()).map_err(io(&path))?;
    }
    for plot in sections.iter().flat_map(|s| &s.plots) {
        plots::write_svg(plot, &dir.join(&plot.file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scientific_numbers_drop_a_zero_exponent() {
        assert_eq!(format!("{:.2}", Sci(1.5432)), "1.54");
        assert_eq!(format!("{:.2}", Sci(0.0233)), "2.33e-2");
        assert_eq!(format!("{:.0}", Sci(1e5)), "1e5");
        assert_eq!(format!("{}", Sci(1.2431105727750418)), "1.2431105727750418");
        assert_eq!(format!("{:>6.1}", Sci(2.0)), "   2.0");
        assert_eq!(Cell::sci(6.18, 2).markdown(), "6.18");
    }

    fn sample() -> Table {
        let mut table = Table::new("demo", "A demo", &["name", "value", "count"]);
        table.push(vec![Cell::text("a, b"), Cell::fixed(0.123456, 2), Cell::int(3)]);
        table.push(vec![Cell::text("c"), Cell::sci(f64::NAN, 1), Cell::int(0)]);
        table
    }

    #[test]
    fn csv_keeps_every_digit_and_quotes_commas() {
        let csv = sample().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines, ["name,value,count", "\"a, b\",0.123456,3", "c,NaN,0"]);
    }

    #[test]
    fn markdown_rounds_aligns_and_dashes_missing_numbers() {
        let md = sample().to_markdown();
        assert!(md.starts_with("**A demo** (`demo.csv`)"));
        assert!(md.contains("|---|---:|---:|"));
        assert!(md.contains("| a, b | 0.12 | 3 |"));
        assert!(md.contains("| c | — | 0 |"));
    }

    #[test]
    fn render_collects_summaries_findings_and_checks() {
        let section = Section {
            title: "Demo".into(),
            summary: vec!["headline".into()],
            findings: vec!["robust loses here".into()],
            tables: vec![sample()],
            online_batch: vec![OnlineBatch {
                system: "demo".into(),
                setting: "s".into(),
                n_regressor: 3,
                pairs: 10,
                mu: 0.5,
                difference: 1e-14,
            }],
            ..Section::default()
        };
        let context = RunContext {
            command: "koopstream experiment".into(),
            machine: "m".into(),
            profile: "debug",
            quick: true,
            elapsed_s: 1.0,
        };
        let md = render(&context, &[section]);
        assert!(md.contains("## Summary\n\n- headline"));
        assert!(md.contains("- robust loses here"));
        assert!(md.contains("Quick run"));
        assert!(md.contains("| demo | s | 3 | 10 | 5.00e-1 | 1.0e-14 |"), "{md}");
    }
}
