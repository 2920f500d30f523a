//! Following one koopstream stream's subject of the ingest log, in order, across NATS
//! restarts.
//!
//! The client's ordered consumer recreates itself after a gap or a deleted consumer, but
//! not after every failure: when the server restarts, its ephemeral consumers are gone and
//! pulls on them fail with errors that end its recovery. So this wrapper keeps the last
//! sequence it yielded and, after any error, opens a new ordered consumer from the next
//! sequence (waiting 250 ms more per failure in a row, at most 2 s). Errors are yielded,
//! not swallowed, so the caller sees that NATS is unhealthy, but they do not end the
//! stream: the caller keeps polling. Sequences only increase: a message at or below the
//! last one yielded is dropped, so nothing is repeated, and each new consumer starts right
//! after it, so nothing is skipped.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::Ordered, pull::OrderedConfig},
};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::error::{ClusterError, Result};

const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

struct Follower {
    stream: jetstream::stream::Stream,
    subject: String,
    last_sequence: u64,
    messages: Option<Ordered>,
    failures_in_a_row: u32,
}

/// Starts following `subject` after `from_sequence_exclusive`; fails if the first consumer
/// cannot be created (NATS unreachable), so a caller knows before it waits.
pub(crate) async fn follow(
    stream: jetstream::stream::Stream,
    subject: String,
    from_sequence_exclusive: u64,
) -> Result<impl Stream<Item = Result<(u64, Bytes)>> + Send + 'static> {
    let messages = open(&stream, &subject, from_sequence_exclusive).await?;
    let follower = Follower {
        stream,
        subject,
        last_sequence: from_sequence_exclusive,
        messages: Some(messages),
        failures_in_a_row: 0,
    };
    Ok(futures::stream::unfold(follower, |mut follower| async move {
        let item = follower.next().await;
        Some((item, follower))
    }))
}

async fn open(stream: &jetstream::stream::Stream, subject: &str, after: u64) -> Result<Ordered> {
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: after.saturating_add(1) },
            ..Default::default()
        })
        .await
        .map_err(|err| ClusterError::jetstream("creating a replay consumer", err))?;
    consumer.messages().await.map_err(|err| ClusterError::jetstream("starting a replay", err))
}

impl Follower {
    /// The next batch, or the next error (after which the following call starts over).
    async fn next(&mut self) -> Result<(u64, Bytes)> {
        loop {
            let messages = match self.messages.as_mut() {
                Some(messages) => messages,
                None => {
                    let delay = Duration::from_millis(250).saturating_mul(self.failures_in_a_row);
                    tokio::time::sleep(delay.min(MAX_RETRY_DELAY)).await;
                    match open(&self.stream, &self.subject, self.last_sequence).await {
                        Ok(messages) => self.messages.insert(messages),
                        Err(err) => return Err(self.failed(err)),
                    }
                }
            };
            let message = match messages.next().await {
                Some(Ok(message)) => message,
                Some(Err(err)) => return Err(self.failed(ClusterError::jetstream("replaying", err))),
                // An ordered consumer does not end by itself; if it does, start over.
                None => {
                    self.failed(ClusterError::jetstream("replaying", "the consumer ended"));
                    continue;
                }
            };
            let sequence = match message.info() {
                Ok(info) => info.stream_sequence,
                Err(err) => {
                    return Err(self.failed(ClusterError::jetstream("reading a replayed message's sequence", err)));
                }
            };
            if sequence <= self.last_sequence {
                continue;
            }
            self.last_sequence = sequence;
            self.failures_in_a_row = 0;
            return Ok((sequence, message.message.payload));
        }
    }

    /// Drops the consumer so the next call opens a new one after the last sequence.
    fn failed(&mut self, err: ClusterError) -> ClusterError {
        tracing::warn!(subject = %self.subject, after = self.last_sequence, error = %err, "replay interrupted; resuming");
        self.messages = None;
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        err
    }
}
