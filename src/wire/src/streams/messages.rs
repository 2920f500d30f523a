//! The messages a stream sends while it is fed: the acknowledgement of a batch, and the
//! WebSocket's model summaries, alarm changes and mode changes.

use serde::Serialize;
use utoipa::ToSchema;

use domain::command::{AlarmNotice, IngestAck, ModeBrief, ModeChange, ModelSummary};
use meter::Severity;

use crate::documents::{ReadingView, reading_view};

/// The acknowledgement of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = IngestAck)]
pub struct IngestAckDoc {
    /// The batch's seq.
    pub seq: u64,
    /// Samples applied.
    pub accepted: usize,
    /// Whether the seq was a retry (acknowledged, not applied again).
    pub duplicate: bool,
    /// Samples skipped because their time stamp was not after the stream's last.
    pub out_of_order: usize,
    /// Samples with a missing value (each breaks the chain of pairs).
    pub missing_value: usize,
    /// Samples on a flat line: a state channel stuck at one value for the stream's
    /// `flat_line` samples or more (treated as missing, counted apart).
    pub flat_line: usize,
    /// Samples gated as outliers: the one-step residual beyond the stream's
    /// `outlier_gate` standard deviations (treated as missing, counted apart).
    pub outlier: usize,
    /// Model version after the batch.
    pub version: u64,
}

impl From<&IngestAck> for IngestAckDoc {
    fn from(a: &IngestAck) -> Self {
        Self {
            seq: a.seq,
            accepted: a.accepted,
            duplicate: a.duplicate,
            out_of_order: a.out_of_order,
            missing_value: a.missing_value,
            flat_line: a.flat_line,
            outlier: a.outlier,
            version: a.version,
        }
    }
}

/// A mode in a summary.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ModeBrief)]
pub struct ModeBriefDoc {
    /// The tracked mode's id (stable across refreshes, never reused within a stream).
    pub id: u64,
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio.
    pub damping_ratio: f64,
}

/// Pushed to WebSocket clients at the eigen cadence.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ModelSummary)]
pub struct ModelSummaryDoc {
    /// Always `summary`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Model version the modes belong to.
    pub version: u64,
    /// Samples applied so far.
    pub samples_accepted: u64,
    /// Residual RMS per channel.
    pub residual_rms: Option<Vec<f64>>,
    /// Leading tracked physical modes, least damped first.
    pub modes: Vec<ModeBriefDoc>,
}

impl From<&ModelSummary> for ModelSummaryDoc {
    fn from(s: &ModelSummary) -> Self {
        Self {
            kind: "summary",
            version: s.version,
            samples_accepted: s.samples_accepted,
            residual_rms: s.residual_rms.clone(),
            modes: s
                .modes
                .iter()
                .map(|m: &ModeBrief| ModeBriefDoc {
                    id: m.id,
                    frequency_hz: m.frequency_hz,
                    damping_ratio: m.damping_ratio,
                })
                .collect(),
        }
    }
}

/// Pushed to WebSocket clients when a tracked mode's damping alarm changes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = AlarmMessage)]
pub struct AlarmMessageDoc {
    /// Always `alarm`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The tracked mode's id.
    pub mode: u64,
    /// The alarm before: null, `warning` or `critical`.
    pub from: Option<&'static str>,
    /// The alarm now.
    pub to: Option<&'static str>,
    /// Stream time.
    pub t: f64,
    /// The reading that decided it.
    pub reading: ReadingView,
}

impl From<&AlarmNotice> for AlarmMessageDoc {
    fn from(n: &AlarmNotice) -> Self {
        Self {
            kind: "alarm",
            mode: n.mode,
            from: n.from.map(Severity::as_str),
            to: n.to.map(Severity::as_str),
            t: n.t,
            reading: reading_view(&n.reading),
        }
    }
}

/// Pushed to WebSocket clients when a tracked mode's frequency or damping left its
/// previous interval and stayed out for the hold time.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ModeChangedMessage)]
pub struct ModeChangedDoc {
    /// Always `mode_changed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The tracked mode's id.
    pub mode: u64,
    /// Stream time.
    pub t: f64,
    /// The reference reading before.
    pub before: ReadingView,
    /// The reading now.
    pub after: ReadingView,
}

impl From<&ModeChange> for ModeChangedDoc {
    fn from(c: &ModeChange) -> Self {
        Self {
            kind: "mode_changed",
            mode: c.mode,
            t: c.t,
            before: reading_view(&c.before),
            after: reading_view(&c.after),
        }
    }
}
