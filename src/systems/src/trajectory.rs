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
    /// Numbers use Rust's shortest round-trip formatting of `f64` (reading them back gives
    /// the same bits); missing values (dropouts) are written as `NaN`.
    pub fn write_csv<W: Write>(&self, mut out: W) -> io::Result<()> {
        write!(out, "t")?;
        for name in &self.names {
            write!(out, ",{name}")?;
        }
        writeln!(out)?;
        for (t, row) in self.times.iter().zip(self.rows()) {
            write!(out, "{t}")?;
            for value in row {
                write!(out, ",{value}")?;
            }
            writeln!(out)?;
        }
        out.flush()
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
