//! What a stream's owner task is asked (the closed set of commands on its queue) and what it
//! answers: acknowledgements, and the summaries pushed to WebSocket clients.

use meter::{Reading, Severity};
use tokio::sync::oneshot;

use crate::batch::SampleBatch;
use crate::error::DomainError;
use crate::metrics::Transport;

/// What a stream's owner is asked to do.
pub enum Command {
    /// Store the stream's definition (the first command of a new stream).
    Persist {
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<(), DomainError>>,
    },
    /// Log, apply and acknowledge a validated batch.
    Ingest {
        /// The batch.
        batch: SampleBatch,
        /// How it arrived (for metrics).
        transport: Transport,
        /// Where the acknowledgement goes (after the batch is stored and applied).
        reply: oneshot::Sender<Result<IngestAck, DomainError>>,
    },
    /// Apply a batch the cluster's shared log already holds (its owner node replays the
    /// log in order); nothing is logged again. Only a clustered service sends it.
    Apply {
        /// The batch.
        batch: SampleBatch,
        /// How it arrived (for metrics; the log does not record it, so the follower says
        /// HTTP).
        transport: Transport,
        /// Where the outcome goes, after the batch is applied.
        reply: oneshot::Sender<Result<IngestAck, DomainError>>,
    },
    /// Apply a reset the cluster's shared log already holds (as `Apply` does a batch).
    ApplyReset {
        /// Clear the seq and time-stamp watermarks too.
        watermarks: bool,
        /// Where the new version goes.
        reply: oneshot::Sender<u64>,
    },
    /// Reply with the state a snapshot keeps (estimator, watermarks, counters, mode meter),
    /// taken after every command queued before this one.
    Export {
        /// Where the state goes.
        reply: oneshot::Sender<crate::journal::StreamState>,
    },
    /// Publish the model of the current version (readers ask when the published model is
    /// older than the status: models are built on demand, not after every batch); replies
    /// once it is published.
    PublishModel {
        /// Told when the model is published.
        reply: oneshot::Sender<()>,
    },
    /// Restart the model (same definition); replies with the new version.
    Reset {
        /// Clear the seq and time-stamp watermarks too.
        watermarks: bool,
        /// Where the new version goes.
        reply: oneshot::Sender<Result<u64, DomainError>>,
    },
    /// Finish the commands queued before this one, then stop: with `delete`, remove the
    /// stream's data; otherwise leave a final snapshot so the log is short.
    Stop {
        /// Remove the stream's data.
        delete: bool,
    },
}

/// The acknowledgement of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestAck {
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
    /// Samples on a flat line (a stuck state channel): treated as missing, counted apart.
    pub flat_line: usize,
    /// Samples gated as outliers (one-step residual beyond the stream's `outlier_gate`
    /// standard deviations): treated as missing, counted apart.
    pub outlier: usize,
    /// Model version after the batch.
    pub version: u64,
}

/// A mode in a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeBrief {
    /// The tracked mode's id.
    pub id: u64,
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio.
    pub damping_ratio: f64,
}

/// Pushed to WebSocket clients at the eigen cadence.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// Model version the modes belong to.
    pub version: u64,
    /// Samples applied so far.
    pub samples_accepted: u64,
    /// Residual RMS per channel.
    pub residual_rms: Option<Vec<f64>>,
    /// Leading oscillatory modes, least damped first.
    pub modes: Vec<ModeBrief>,
}

/// A tracked mode's damping alarm changed.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmNotice {
    /// The tracked mode.
    pub mode: u64,
    /// The alarm before (None: none).
    pub from: Option<Severity>,
    /// The alarm after.
    pub to: Option<Severity>,
    /// Stream time.
    pub t: f64,
    /// The reading that decided it.
    pub reading: Reading,
}

/// A tracked mode's frequency or damping left its previous interval and stayed out.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeChange {
    /// The tracked mode.
    pub mode: u64,
    /// Stream time.
    pub t: f64,
    /// The reference reading before.
    pub before: Reading,
    /// The reading now.
    pub after: Reading,
}

/// What a stream pushes to its WebSocket clients. Summaries are snapshots: a slow client
/// may miss some. Alarm and change notices are events; `GET /alarms` keeps their history.
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    /// At each refresh.
    Summary(ModelSummary),
    /// When an alarm changes.
    Alarm(AlarmNotice),
    /// When a mode changes.
    ModeChanged(ModeChange),
}
