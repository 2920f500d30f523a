//! The uniform output type of every simulator: named channels sampled at given times,
//! stored row-major, with a CSV writer.

use std::io::{self, Write};

use crate::error::SystemsError;

/// A sampled multichannel signal: one row per sample time, one column per named channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    names: Vec<String>,
    times: Vec<f64>,
    // Row-major: the value of channel j at sample k is values[k * names.len() + j].
    values: Vec<f64>,
}

impl Trajectory {
    /// Builds a trajectory; `values` is row-major with `times.len()` rows of `names.len()` values.
    pub fn new(names: Vec<String>, times: Vec<f64>, values: Vec<f64>) -> Result<Self, SystemsError> {
        if names.is_empty() || values.len() != times.len() * names.len() {
            return Err(SystemsError::InvalidParameter {
                name: "values",
                reason: format!("{} values do not fill {} rows of {} channels", values.len(), times.len(), names.len()),
            });
        }
        Ok(Self { names, times, values })
    }

    /// Channel names, in column order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Sample times (seconds; iterate index for maps).
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Number of samples.
    pub fn n_rows(&self) -> usize {
        self.times.len()
    }

    /// Number of channels.
    pub fn n_columns(&self) -> usize {
        self.names.len()
    }

    /// The values of sample `k`.
    pub fn row(&self, k: usize) -> &[f64] {
        let n = self.n_columns();
        &self.values[k * n..(k + 1) * n]
    }

    /// Iterator over rows.
    pub fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.values.chunks_exact(self.n_columns())
    }

    /// A copy of channel `j`.
    pub fn column(&self, j: usize) -> Vec<f64> {
        self.rows().map(|row| row[j]).collect()
    }

    /// Index of the channel called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Mutable access for the measurement models, which keep the shape unchanged.
    pub(crate) fn parts_mut(&mut self) -> (&mut [f64], &mut [f64]) {
        (&mut self.times, &mut self.values)
    }

    /// Writes CSV: a header `t,<names>` and one line per sample.
    ///
    /// Values use Rust's shortest round-trip formatting of `f64` (reading them back gives
    /// the same bits, and never an exponent); missing values (dropouts) are written as
    /// `NaN`. Times are k / rate in binary, e.g. 0.30000000000000004 for k = 3 at 10 Hz:
    /// they are written to [`TIME_DIGITS`] digits below the mean sample period, trailing
    /// zeros dropped (0.3), which a reader takes back to within 1e-9 of a period.
    pub fn write_csv<W: Write>(&self, mut out: W) -> io::Result<()> {
        write!(out, "t")?;
        for name in &self.names {
            write!(out, ",{name}")?;
        }
        writeln!(out)?;
        let decimals = time_decimals(&self.times);
        let mut time = String::new();
        for (t, row) in self.times.iter().zip(self.rows()) {
            format_time(*t, decimals, &mut time);
            write!(out, "{time}")?;
            for value in row {
                write!(out, ",{value}")?;
            }
            writeln!(out)?;
        }
        out.flush()
    }
}

/// The digits a time stamp keeps below its record's mean sample period.
pub const TIME_DIGITS: i32 = 9;

/// The decimals that resolve the mean period of `times` to [`TIME_DIGITS`] digits (at most
/// 17, what an `f64` can carry; `None` for fewer than two increasing times, which are then
/// written in full).
fn time_decimals(times: &[f64]) -> Option<usize> {
    let (first, last) = (times.first()?, times.last()?);
    let period = (last - first) / (times.len().saturating_sub(1)) as f64;
    if !(period.is_finite() && period > 0.0) {
        return None;
    }
    let decimals = TIME_DIGITS - period.log10().floor() as i32;
    Some(decimals.clamp(0, 17) as usize)
}

/// Writes `t` into `out` with `decimals` decimals, trailing zeros (and a bare point)
/// dropped; in full (shortest round trip) without them.
fn format_time(t: f64, decimals: Option<usize>, out: &mut String) {
    use std::fmt::Write as _;
    out.clear();
    let Some(decimals) = decimals else {
        let _ = write!(out, "{t}");
        return;
    };
    let _ = write!(out, "{t:.decimals$}");
    if out.contains('.') {
        let kept = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(kept);
    }
    if out == "-0" {
        out.replace_range(.., "0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Trajectory {
        Trajectory::new(vec!["a".into(), "b".into()], vec![0.0, 0.1], vec![1.0, f64::NAN, 0.1 + 0.2, -2.5e-300])
            .unwrap()
    }

    #[test]
    fn shape_and_access() {
        let traj = sample();
        assert_eq!((traj.n_rows(), traj.n_columns()), (2, 2));
        assert_eq!(traj.row(1), &[0.1 + 0.2, -2.5e-300]);
        assert_eq!(traj.column(0), vec![1.0, 0.1 + 0.2]);
        assert_eq!(traj.column_index("b"), Some(1));
        assert!(Trajectory::new(vec!["a".into()], vec![0.0], vec![]).is_err());
    }

    #[test]
    fn times_are_written_at_the_rate_s_precision() {
        let times: Vec<f64> = (0..31).map(|k| k as f64 * (1.0 / 10.0)).collect();
        let values = vec![0.0; times.len()];
        let mut buffer = Vec::new();
        Trajectory::new(vec!["a".into()], times, values).unwrap().write_csv(&mut buffer).unwrap();
        let text = String::from_utf8(buffer).unwrap();
        let stamps: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(&stamps[..4], ["0", "0.1", "0.2", "0.3"]);
        assert_eq!(stamps[30], "3");
        // At 30 Hz a period has no short decimal: 11 decimals resolve it to 1e-9 of itself.
        let mut out = String::new();
        format_time(1.0 / 30.0, time_decimals(&[0.0, 1.0 / 30.0]), &mut out);
        assert_eq!(out, "0.03333333333");
        // Map iterates are whole numbers; a single row is written in full.
        format_time(999.0, time_decimals(&[0.0, 1.0, 2.0]), &mut out);
        assert_eq!(out, "999");
        format_time(0.1 + 0.2, None, &mut out);
        assert_eq!(out, "0.30000000000000004");
        format_time(-1e-12, Some(3), &mut out);
        assert_eq!(out, "0");
    }

    #[test]
    fn csv_round_trips_full_precision() {
        let mut buffer = Vec::new();
        sample().write_csv(&mut buffer).unwrap();
        let text = String::from_utf8(buffer).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "t,a,b");
        assert_eq!(lines[1], "0,1,NaN");
        let parsed: Vec<f64> = lines[2].split(',').map(|s| s.parse().unwrap()).collect();
        assert_eq!(parsed, vec![0.1, 0.1 + 0.2, -2.5e-300]);
    }
}
