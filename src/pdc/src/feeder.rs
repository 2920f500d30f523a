//! Samples from data frames into the stream's queue: frames that arrive while a batch is
//! being logged and applied wait together and go as the next batch (one batch in flight,
//! at most `max_batch` samples waiting, then the client stops reading: backpressure, never
//! a silent drop). A batch's seq is its last frame's time in microseconds since the Unix
//! epoch, so a restarted client never reuses a seq, and frames not after the last one
//! submitted are dropped and counted (the owner would skip them as out of order anyway).

use std::sync::Arc;

use c37118::Time;
use domain::batch::{SampleBatch, Timing};
use domain::command::{Command, IngestAck};
use domain::error::DomainError;
use domain::metrics::{Metrics, Transport};
use domain::registry::StreamHandle;
use domain::source::{SourceMissing, SourceMonitor};
use tokio::sync::oneshot;

use crate::mapping::MissingReason;

/// Why the stream cannot take more samples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The stream was deleted or the service is stopping.
    #[error("the stream's queue is closed")]
    Closed,
}

type Reply = oneshot::Receiver<Result<IngestAck, DomainError>>;

/// The samples waiting, and the batch in flight.
pub struct Feeder {
    handle: Arc<StreamHandle>,
    monitor: Arc<SourceMonitor>,
    metrics: Arc<Metrics>,
    n: usize,
    max_batch: usize,
    times: Vec<f64>,
    x: Vec<f64>,
    u: Vec<f64>,
    /// Missing samples among those waiting, by reason.
    missing: SourceMissing,
    /// Time (µs since the epoch) of the last frame taken.
    last_micros: Option<u64>,
    in_flight: Option<Reply>,
}

/// A frame's time in microseconds since the Unix epoch (exact for any TIME_BASE that
/// divides a million; otherwise rounded down to the microsecond).
pub fn micros(time: &Time, time_base: u32) -> u64 {
    let fraction = u64::from(time.fracsec) * 1_000_000 / u64::from(time_base.max(1));
    u64::from(time.soc) * 1_000_000 + fraction
}

impl Feeder {
    /// A feeder for `handle`'s stream, taking frames after `last_timestamp` (the stream's
    /// last applied time stamp, in seconds: after a restart, frames already applied are
    /// not sent again).
    pub fn new(
        handle: Arc<StreamHandle>,
        monitor: Arc<SourceMonitor>,
        metrics: Arc<Metrics>,
        max_batch: usize,
    ) -> Self {
        let n = handle.definition.n_states();
        let last_micros = handle.status().last_timestamp.map(|t| (t * 1e6).round().max(0.0) as u64);
        Self {
            handle,
            monitor,
            metrics,
            n,
            max_batch: max_batch.max(1),
            times: Vec::with_capacity(max_batch),
            x: Vec::new(),
            u: Vec::new(),
            missing: SourceMissing::default(),
            last_micros,
            in_flight: None,
        }
    }

    /// Whether a batch is being applied.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether the waiting samples fill a batch (read no more frames until it is sent).
    pub fn full(&self) -> bool {
        self.times.len() >= self.max_batch
    }

    /// Takes one sample (`row`: states then inputs) at `micros`; `false` when the frame is
    /// not after the last one taken (dropped and counted as stale).
    pub fn push(&mut self, micros: u64, row: &[f64], missing: Option<MissingReason>) -> bool {
        if self.last_micros.is_some_and(|last| micros <= last) {
            self.monitor.update(|s| s.stale_frames += 1);
            return false;
        }
        self.last_micros = Some(micros);
        self.times.push(micros as f64 / 1e6);
        self.x.extend_from_slice(&row[..self.n]);
        self.u.extend_from_slice(&row[self.n..]);
        match missing {
            Some(MissingReason::DataError) => self.missing.data_error += 1,
            Some(MissingReason::SyncLost) => self.missing.sync_lost += 1,
            Some(MissingReason::Unlocked) => self.missing.unlocked += 1,
            Some(MissingReason::MissingValue) => self.missing.missing_value += 1,
            None => {}
        }
        true
    }

    /// Sends the waiting samples as one batch, if there are any and none is in flight.
    pub async fn send(&mut self) -> Result<(), FeedError> {
        if self.in_flight.is_some() || self.times.is_empty() {
            return Ok(());
        }
        let rows = self.times.len();
        let seq = self.last_micros.unwrap_or(0);
        let batch = SampleBatch {
            seq,
            epoch: None,
            timing: Timing::Explicit(std::mem::replace(&mut self.times, Vec::with_capacity(self.max_batch))),
            rows,
            x: std::mem::take(&mut self.x),
            u: std::mem::take(&mut self.u),
        };
        let (reply, receiver) = oneshot::channel();
        self.handle
            .submit(Command::Ingest { batch, transport: Transport::C37118, reply })
            .await
            .map_err(|_| FeedError::Closed)?;
        let m = std::mem::take(&mut self.missing);
        self.metrics.source_samples(
            &self.handle.definition.id,
            rows as u64,
            &[
                ("data_error", m.data_error),
                ("sync_lost", m.sync_lost),
                ("unlocked", m.unlocked),
                ("missing_value", m.missing_value),
            ],
        );
        self.monitor.update(|s| {
            s.samples_submitted += rows as u64;
            s.missing.data_error += m.data_error;
            s.missing.sync_lost += m.sync_lost;
            s.missing.unlocked += m.unlocked;
            s.missing.missing_value += m.missing_value;
        });
        self.in_flight = Some(receiver);
        Ok(())
    }

    /// Waits for the batch in flight to be acknowledged (pending forever when none is, so
    /// it can sit in a `select!` guarded by [`Feeder::busy`]). A refusal is reported in
    /// the source's status; the stream's counters say what was applied.
    pub async fn acknowledged(&mut self) -> Result<(), FeedError> {
        let Some(reply) = self.in_flight.as_mut() else {
            return std::future::pending().await;
        };
        let outcome = reply.await;
        self.in_flight = None;
        match outcome {
            Ok(Ok(_ack)) => Ok(()),
            Ok(Err(error)) => {
                let message = format!("the stream refused a batch: {}", error.detail());
                tracing::warn!(stream = %self.handle.definition.id, %message, "source batch refused");
                self.monitor.update(|s| s.last_error = Some((message, crate::unix_millis())));
                Ok(())
            }
            Err(_) => Err(FeedError::Closed),
        }
    }

    /// Sends what waits and waits for it (when the client stops).
    pub async fn drain(&mut self) -> Result<(), FeedError> {
        self.acknowledged_if_busy().await?;
        self.send().await?;
        self.acknowledged_if_busy().await
    }

    async fn acknowledged_if_busy(&mut self) -> Result<(), FeedError> {
        if self.busy() { self.acknowledged().await } else { Ok(()) }
    }
}
