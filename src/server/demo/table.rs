//! The demo's one table: a legend of its columns and units printed once, a header, then
//! rows of the same columns and widths from the first eigen refresh to the final match
//! against the truth, so the live view and the result read the same way.

use std::io::{IsTerminal, Write};

use experiments::identify::TrueMode;
use serde_json::Value;

/// What each column means, printed once before the table.
pub(crate) const LEGEND: &str = "\
Columns (one row per mode at every eigen refresh of the model; the last block matches the
final modes to the truth):
  t (s)       stream time of the refresh, in seconds from the start of the record
  mode        id of the tracked mode; `new` for a mode seen at this refresh that is not
              tracked yet (a mode is tracked once it is seen at 3 refreshes in a row)
  f (Hz)      identified frequency, in hertz
  zeta        identified damping ratio, a fraction (0.05 is 5 % of critical damping)
  zeta 95 %   95 % confidence interval of zeta; n/a when the estimator gives none
              (the correlation estimator of the PMU presets)
  energy      the mode's share of the identified model's energy, 0 to 1
  alarm       damping alarm of a tracked mode: none, warning or critical
  true f      frequency of the nearest true mode (within 15 %), in hertz
  true zeta   damping ratio of that true mode, a fraction
  df (%)      frequency error: 100 (f - true f) / true f, in per cent
  dzeta (pt)  damping error: 100 (zeta - true zeta), in percentage points
  status      warming up (no model yet), tracked, new, no mode yet (no oscillatory mode
              at this refresh), final (the match of the last model), not found (no
              identified mode matches that true one)";

/// How near in frequency (relative) a live mode must be to a true mode to be shown beside it.
const NEAR: f64 = 0.15;

/// One row of the table; `None` cells show as a dash.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Row {
    /// Stream time of the refresh (s).
    pub t: Option<f64>,
    /// Track id, `new`, or empty.
    pub mode: String,
    /// Frequency (Hz).
    pub frequency_hz: Option<f64>,
    /// Damping ratio.
    pub damping_ratio: Option<f64>,
    /// The damping interval; `Err(())` when the estimator gives none.
    pub interval: Option<Result<[f64; 2], ()>>,
    /// Energy share.
    pub energy: Option<f64>,
    /// Alarm level.
    pub alarm: String,
    /// The true mode beside it.
    pub truth: Option<TrueMode>,
    /// What the row is.
    pub status: &'static str,
}

fn cell(value: Option<f64>, decimals: usize, width: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:>width$.decimals$}"),
        _ => format!("{:>width$}", "-"),
    }
}

fn text(value: &str, width: usize) -> String {
    format!("{:>width$}", if value.is_empty() { "-" } else { value })
}

/// The header, in the widths of [`format_row`].
pub(crate) fn header() -> String {
    format!(
        "{:>8} {:>5} {:>8} {:>8} {:>17} {:>7} {:>8} | {:>8} {:>9} {:>7} {:>10} | status",
        "t (s)",
        "mode",
        "f (Hz)",
        "zeta",
        "zeta 95 %",
        "energy",
        "alarm",
        "true f",
        "true zeta",
        "df (%)",
        "dzeta (pt)"
    )
}

/// One row in the widths of [`header`]; no cell has a space inside, so a reader may split
/// a row on whitespace.
pub(crate) fn format_row(row: &Row) -> String {
    let interval = match row.interval {
        Some(Ok([lo, hi])) if lo.is_finite() && hi.is_finite() => format!("[{lo:.4},{hi:.4}]"),
        Some(Err(())) => "n/a".into(),
        _ => "-".into(),
    };
    let (true_f, true_zeta, df, dzeta) = match (&row.truth, row.frequency_hz, row.damping_ratio) {
        (Some(t), Some(f), Some(zeta)) => (
            Some(t.frequency_hz),
            Some(t.damping_ratio),
            Some(100.0 * (f - t.frequency_hz) / t.frequency_hz),
            Some(100.0 * (zeta - t.damping_ratio)),
        ),
        (Some(t), _, _) => (Some(t.frequency_hz), Some(t.damping_ratio), None, None),
        (None, _, _) => (None, None, None, None),
    };
    format!(
        "{} {} {} {} {:>17} {} {} | {} {} {} {} | {}",
        cell(row.t, 1, 8),
        text(&row.mode, 5),
        cell(row.frequency_hz, 4, 8),
        cell(row.damping_ratio, 4, 8),
        interval,
        cell(row.energy, 3, 7),
        text(&row.alarm, 8),
        cell(true_f, 4, 8),
        cell(true_zeta, 4, 9),
        cell(df, 2, 7),
        cell(dzeta, 2, 10),
        row.status,
    )
}

/// The live view: the legend and header once, then the rows of every refresh (redrawn in
/// place on a terminal, appended otherwise), and the alarms as they are raised.
pub(crate) struct Table {
    truth: Vec<TrueMode>,
    drawn_lines: usize,
    live: bool,
    started: bool,
    /// The model version of the refresh shown last: two summaries can arrive before the
    /// modes are read, and the same refresh is shown once.
    shown_version: Option<u64>,
    /// The stream time of the record's start (a C37.118.2 stream's time is UTC).
    pub origin: f64,
    /// The alarm messages so far, one line each.
    pub alarms: Vec<String>,
}

impl Table {
    /// A table against `truth`, redrawn in place when standard output is a terminal.
    pub fn new(truth: &[TrueMode]) -> Self {
        Self {
            truth: truth.to_vec(),
            drawn_lines: 0,
            live: std::io::stdout().is_terminal(),
            started: false,
            shown_version: None,
            origin: 0.0,
            alarms: Vec::new(),
        }
    }

    /// Records an alarm message of the WebSocket.
    pub fn alarm(&mut self, message: &Value) {
        let level = |v: &Value| v.as_str().unwrap_or("none").to_owned();
        let reading = &message["reading"];
        self.alarms.push(format!(
            "t = {:>7.1} s: mode {} {} -> {} ({:.4} Hz, damping {:.4} in [{:.4}, {:.4}])",
            message["t"].as_f64().unwrap_or(f64::NAN),
            message["mode"],
            level(&message["from"]),
            level(&message["to"]),
            reading["frequency_hz"].as_f64().unwrap_or(f64::NAN),
            reading["damping_ratio"].as_f64().unwrap_or(f64::NAN),
            reading["damping_ci95"][0].as_f64().unwrap_or(f64::NAN),
            reading["damping_ci95"][1].as_f64().unwrap_or(f64::NAN),
        ));
    }

    /// The nearest true mode within [`NEAR`] of `f`.
    fn nearest(&self, f: f64) -> Option<TrueMode> {
        self.truth
            .iter()
            .filter(|t| (f / t.frequency_hz - 1.0).abs() < NEAR)
            .min_by(|a, b| (a.frequency_hz - f).abs().total_cmp(&(b.frequency_hz - f).abs()))
            .cloned()
    }

    /// The rows of one refresh: the tracked modes (`/modes`), then the modes of the same
    /// refresh that are physical but not tracked yet (`/modes?all=true`, reason
    /// `not_persistent`), so modes show from the first refresh on.
    pub fn refresh_rows(&self, tracked: &Value, all: &Value) -> Vec<Row> {
        let number = |v: &Value| v.as_f64();
        let no_intervals = tracked["intervals_unavailable"].is_string();
        let interval = |m: &Value| match m["damping_ci95"].as_array() {
            Some(ci) if ci.len() == 2 => {
                Some(Ok([ci[0].as_f64().unwrap_or(f64::NAN), ci[1].as_f64().unwrap_or(f64::NAN)]))
            }
            _ if no_intervals => Some(Err(())),
            _ => None,
        };
        let t = number(&tracked["t"]).map(|t| t - self.origin);
        let mut rows = Vec::new();
        for m in tracked["modes"].as_array().into_iter().flatten() {
            let f = number(&m["frequency_hz"]);
            rows.push(Row {
                t,
                mode: m["id"].as_u64().map(|id| id.to_string()).unwrap_or_default(),
                frequency_hz: f,
                damping_ratio: number(&m["damping_ratio"]),
                interval: interval(m),
                energy: number(&m["energy"]),
                alarm: m["alarm"].as_str().unwrap_or("none").to_owned(),
                truth: f.and_then(|f| self.nearest(f)),
                status: "tracked",
            });
        }
        for m in all["modes"].as_array().into_iter().flatten() {
            if m["reason"].as_str() != Some("not_persistent") {
                continue;
            }
            let f = number(&m["frequency_hz"]);
            rows.push(Row {
                t,
                mode: "new".into(),
                frequency_hz: f,
                damping_ratio: number(&m["damping_ratio"]),
                interval: interval(m),
                energy: number(&m["energy"]),
                alarm: String::new(),
                truth: f.and_then(|f| self.nearest(f)),
                status: "new",
            });
        }
        if rows.is_empty() {
            rows.push(Row { t, status: "no mode yet", ..Row::default() });
        }
        rows
    }

    /// Prints the legend and the header once, then `rows` (in place of the previous
    /// refresh's on a terminal).
    pub fn show(&mut self, rows: &[Row]) {
        let mut out = std::io::stdout().lock();
        if !self.started {
            let _ = writeln!(out, "{LEGEND}\n\n{}", header());
            self.started = true;
        }
        if self.live && self.drawn_lines > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn_lines);
        }
        for row in rows {
            let _ = writeln!(out, "{}", format_row(row));
        }
        let _ = out.flush();
        self.drawn_lines = if self.live { rows.len() } else { 0 };
    }

    /// Shows one row saying the model is warming up, until the first refresh replaces it
    /// (on a terminal) or follows it.
    pub fn warming_up(&mut self) {
        self.show(&[Row { status: "warming up", ..Row::default() }]);
    }

    /// Shows the rows of a refresh read from the server.
    pub fn update(&mut self, tracked: &Value, all: &Value) {
        let version = tracked["version"].as_u64();
        if version.is_some() && version == self.shown_version {
            return;
        }
        self.shown_version = version;
        let rows = self.refresh_rows(tracked, all);
        self.show(&rows);
    }

    /// Whether the header has been printed.
    pub fn started(&self) -> bool {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn truth() -> Vec<TrueMode> {
        vec![TrueMode { frequency_hz: 0.15, damping_ratio: 0.0, shape: None }]
    }

    #[test]
    fn every_row_has_the_header_s_columns_and_widths() {
        let table = Table::new(&truth());
        let tracked = json!({"t": 12.3, "modes": [{"id": 4, "frequency_hz": 0.1512, "damping_ratio": -0.0012,
            "damping_ci95": [-0.0101, 0.0093], "energy": 0.8, "alarm": "none"}]});
        let all = json!({"modes": [{"frequency_hz": 0.31, "damping_ratio": 0.02, "reason": "not_persistent"},
            {"frequency_hz": 4.0, "damping_ratio": 0.5, "reason": "out_of_band"}]});
        let mut rows = table.refresh_rows(&tracked, &all);
        assert_eq!(rows.len(), 2, "the out-of-band mode is not shown");
        rows.extend(table.refresh_rows(&json!({"t": 5.0, "modes": []}), &json!({"modes": []})));
        assert_eq!(rows[2].status, "no mode yet");
        rows.push(Row { status: "warming up", ..Row::default() });
        let header = header();
        // Every column ends where the header's does: the separators line up.
        let bars: Vec<usize> = header.match_indices('|').map(|(i, _)| i).collect();
        for row in &rows {
            let line = format_row(row);
            let at: Vec<usize> = line.match_indices('|').map(|(i, _)| i).collect();
            assert_eq!(at, bars, "{line}\n{header}");
            let cells = line.rsplit_once('|').map(|(cells, _)| cells.split_whitespace().count());
            assert_eq!(cells, Some(12), "eleven cells and a separator: {line}");
        }
        let first = format_row(&rows[0]);
        assert!(first.contains("[-0.0101,0.0093]") && first.contains("0.80") && first.contains("tracked"), "{first}");
        // df = 100 (0.1512 - 0.15) / 0.15 = 0.80 %, dzeta = -0.12 points.
        assert!(first.contains("   0.80      -0.12 |"), "{first}");
    }

    #[test]
    fn the_legend_explains_every_column() {
        for column in ["t (s)", "mode", "f (Hz)", "zeta 95 %", "energy", "alarm", "true f", "df (%)", "dzeta (pt)"] {
            assert!(LEGEND.contains(&format!("  {column} ")), "{column}");
        }
        assert!(LEGEND.contains("percentage points"));
    }
}
