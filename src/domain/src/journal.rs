//! What the service keeps durably, and the port through which it keeps it: the records
//! (log entries, stream states, definitions) are the service's own types; a [`Journal`]
//! encodes them and commits writes. The store implements the port, so the store depends
//! on the service and never the other way round.

use meter::Meter;
use std::future::Future;
use std::pin::Pin;

use koopman::EstimatorState;

use crate::batch::SampleBatch;
use crate::definition::StreamDefinition;
use crate::error::DomainError;
use crate::outlier::GateState;
use crate::snapshot::RejectCounts;

/// One record of a stream's log.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEntry {
    /// A batch that was applied.
    Batch(SampleBatch),
    /// The model was restarted; with `watermarks`, the seq and time-stamp watermarks were
    /// cleared as well (entries logged before that rule keep them on replay).
    Reset {
        /// Whether the watermarks were cleared.
        watermarks: bool,
    },
}

/// The stream state that a snapshot holds besides the estimator.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamState {
    /// Version (= index of the last log entry the snapshot covers).
    pub version: u64,
    /// Highest applied seq.
    pub last_seq: Option<u64>,
    /// The producer epoch in force.
    pub epoch: u64,
    /// (seq, digest) of the latest applied batches, oldest first (empty in snapshots
    /// written before digests were kept).
    pub recent: Vec<(u64, u64)>,
    /// Flat-line detection: each state channel's last value and its run (empty before
    /// format 4).
    pub flat_last: Vec<f64>,
    /// See `flat_last`.
    pub flat_run: Vec<u64>,
    /// The outlier gate's scale, run and counts (empty in snapshots before format 5).
    pub outlier_gate: GateState,
    /// Last time stamp.
    pub last_t: Option<f64>,
    /// Samples applied.
    pub samples: u64,
    /// Batches applied.
    pub batches: u64,
    /// Rejections counted by the owner.
    pub rejects: RejectCounts,
    /// The estimator.
    pub estimator: EstimatorState,
    /// The mode meter (tracks, detectors, alarm history); None in snapshots written
    /// before it existed.
    pub meter: Option<Meter>,
}

/// One change to the store.
#[derive(Debug)]
pub enum Write {
    /// Create or replace a stream definition (JSON).
    PutStream {
        /// Stream id.
        id: String,
        /// The canonical definition as JSON.
        definition: Vec<u8>,
    },
    /// Remove a stream with its log and snapshot.
    DeleteStream {
        /// Stream id.
        id: String,
    },
    /// Append one log entry at `index` (the stream version it produces).
    Append {
        /// Stream id.
        id: String,
        /// Index.
        index: u64,
        /// Encoded entry.
        entry: Vec<u8>,
    },
    /// Store a snapshot covering the log up to `version`, and truncate the log before it.
    Snapshot {
        /// Stream id.
        id: String,
        /// Version the snapshot covers.
        version: u64,
        /// Encoded snapshot.
        bytes: Vec<u8>,
    },
}

/// A commit under way.
pub type Commit<'a> = Pin<Box<dyn Future<Output = Result<(), DomainError>> + Send + 'a>>;

/// Durable storage as the service sees it. Encoding runs on the caller's thread (an owner
/// encodes its own batches, so the single writer only writes); a commit is all or nothing,
/// and its error is a storage error of the domain (full disk or not).
pub trait Journal: Send + Sync {
    /// The log record of a batch (without copying it into a [`LogEntry`] first).
    fn encode_batch(&self, batch: &SampleBatch) -> Vec<u8>;
    /// The log record of an entry.
    fn encode_entry(&self, entry: &LogEntry) -> Vec<u8>;
    /// The record of a snapshot (may take a while for a large model: call it off the
    /// reactor).
    fn encode_snapshot(&self, state: &StreamState) -> Vec<u8>;
    /// The stored form of a definition.
    fn encode_definition(&self, definition: &StreamDefinition) -> Vec<u8>;
    /// Commits the writes together.
    fn commit(&self, writes: Vec<Write>) -> Commit<'_>;
}
