//! Sample batches as the service takes them: a validated [`SampleBatch`] of the stream's
//! shape (the wire formats parse JSON, NDJSON, CSV and protobuf into it once, at the edge,
//! with the checks here), so the stream's owner only applies rules.

use crate::definition::StreamDefinition;
use crate::error::DomainError;

/// How a batch's samples are timed.
#[derive(Debug, Clone, PartialEq)]
pub enum Timing {
    /// One strictly increasing time stamp per sample.
    Explicit(Vec<f64>),
    /// Sample k at t0 + k Ts.
    Start(f64),
    /// Continuing from the stream's last time stamp, one Ts apart.
    Continue,
}

/// A batch of the stream's shape: finite values, or NaN for a missing value (a dropout).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleBatch {
    /// The client's sequence number (a retried seq is applied once).
    pub seq: u64,
    /// The producer's epoch: a producer that restarts its seq numbering sends a higher one
    /// (see [`crate::watermark`]); `None` is the stream's current epoch.
    pub epoch: Option<u64>,
    /// Time stamps.
    pub timing: Timing,
    /// Number of samples.
    pub rows: usize,
    /// States, row-major (rows x n).
    pub x: Vec<f64>,
    /// Inputs, row-major (rows x m).
    pub u: Vec<f64>,
}

impl SampleBatch {
    /// Whether sample k has a missing value.
    pub fn has_dropout(&self, k: usize, n: usize, m: usize) -> bool {
        self.x[k * n..(k + 1) * n].iter().chain(&self.u[k * m..(k + 1) * m]).any(|v| v.is_nan())
    }
}

/// The shape a batch must have.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// State channels.
    pub n: usize,
    /// Inputs.
    pub m: usize,
    /// Largest batch.
    pub max_samples: usize,
}

impl Shape {
    /// The shape of a stream's batches.
    pub fn of(definition: &StreamDefinition, max_samples: usize) -> Self {
        Self { n: definition.n_states(), m: definition.n_inputs(), max_samples }
    }
}

/// Refuses a batch without time stamps unless the stream allows implicit timing.
pub fn check_timing(batch: &SampleBatch, definition: &StreamDefinition) -> Result<(), DomainError> {
    if batch.timing == Timing::Continue && !definition.implicit_timing {
        return Err(DomainError::invalid(format!(
            "the batch has neither `t` nor `t0`: stream `{}` needs time stamps (create it with \
             \"implicit_timing\": true to take samples as following the last one at Ts)",
            definition.id
        )));
    }
    Ok(())
}

/// Refuses a batch without samples or with more than the largest batch.
pub fn check_rows(rows: usize, shape: Shape) -> Result<(), DomainError> {
    if rows == 0 {
        return Err(DomainError::invalid("the batch has no samples"));
    }
    if rows > shape.max_samples {
        return Err(DomainError::too_large(format!(
            "the batch has {rows} samples; at most {} are accepted",
            shape.max_samples
        )));
    }
    Ok(())
}

/// Appends one row of the stream's width (`None` is a missing value, NaN); refuses a
/// row of another width or a non-finite value, naming the row and value in the detail and
/// locating them by `at`, the row's JSON pointer (its values are `at/j`).
pub fn push_row(
    out: &mut Vec<f64>,
    row: &[Option<f64>],
    expected: usize,
    what: &str,
    index: usize,
    at: &str,
) -> Result<(), DomainError> {
    if row.len() != expected {
        return Err(DomainError::invalid(format!(
            "{what} row {index} has {} values, the stream has {expected}",
            row.len()
        ))
        .at(at));
    }
    for (j, v) in row.iter().enumerate() {
        match v {
            Some(v) if !v.is_finite() => {
                return Err(
                    DomainError::invalid(format!("{what} row {index} value {j} is not finite")).at(format!("{at}/{j}"))
                );
            }
            Some(v) => out.push(*v),
            None => out.push(f64::NAN),
        }
    }
    Ok(())
}

/// Checks that time stamps are finite and strictly increasing; a refusal is located at
/// `at(k)`, the JSON pointer of time stamp k in the body's own layout.
pub fn check_times(times: &[f64], at: impl Fn(usize) -> String) -> Result<(), DomainError> {
    for (k, t) in times.iter().enumerate() {
        if !t.is_finite() {
            return Err(DomainError::invalid(format!("time stamp {k} is not finite")).at(at(k)));
        }
        if k > 0 && *t <= times[k - 1] {
            return Err(DomainError::invalid(format!(
                "time stamps must increase: t[{k}] = {t} follows {}",
                times[k - 1]
            ))
            .at(at(k)));
        }
    }
    Ok(())
}
