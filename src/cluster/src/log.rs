//! The durable ingest log: every accepted batch of every koopstream stream, in the
//! JetStream stream `KOOPSTREAM_INGEST`, one subject per koopstream stream.
//!
//! Subjects are `koopstream.ingest.<encoded stream id>` (names.rs: `.` and `_` escaped as
//! `_2E` and `_5F`, so the id is one subject token). File storage, replicas from the
//! configuration, limits retention (nothing is removed by consumption), and JetStream's
//! duplicate window (two minutes) for `Nats-Msg-Id`. The owner of a stream reads only its
//! subject, in order, from the sequence after its last snapshot.

use async_nats::jetstream::{
    self,
    message::PublishMessage,
    stream::{Config, LastRawMessageErrorKind, RawMessageErrorKind, StorageType},
};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::error::{ClusterError, Result, require_connected};
use crate::names::encode_stream_id;

/// The JetStream stream's name.
pub const INGEST_STREAM: &str = "KOOPSTREAM_INGEST";
/// The prefix of its subjects; the last token is the encoded stream id.
pub const INGEST_SUBJECT_PREFIX: &str = "koopstream.ingest";

/// The subject of one koopstream stream's batches.
pub fn ingest_subject(stream_id: &str) -> Result<String> {
    Ok(format!("{INGEST_SUBJECT_PREFIX}.{}", encode_stream_id(stream_id)?))
}

/// The ingest log, as a producer and a reader.
#[derive(Clone)]
pub struct IngestLog {
    jetstream: jetstream::Context,
    stream: jetstream::stream::Stream,
}

impl IngestLog {
    /// Creates the JetStream stream, or updates it to these replicas; idempotent.
    pub(crate) async fn open(jetstream: &jetstream::Context, replicas: usize) -> Result<Self> {
        jetstream
            .create_or_update_stream(Config {
                name: INGEST_STREAM.to_owned(),
                description: Some("koopstream: accepted batches, one subject per stream".to_owned()),
                subjects: vec![format!("{INGEST_SUBJECT_PREFIX}.>")],
                storage: StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|err| ClusterError::jetstream("creating the ingest stream", err))?;
        let stream = jetstream
            .get_stream(INGEST_STREAM)
            .await
            .map_err(|err| ClusterError::jetstream("binding the ingest stream", err))?;
        Ok(IngestLog { jetstream: jetstream.clone(), stream })
    }

    /// Appends a batch and waits for JetStream's acknowledgement, so the caller
    /// acknowledges its gateway only for batches JetStream holds; returns the batch's
    /// sequence in the JetStream stream.
    ///
    /// What the acknowledgement means: a quorum of the replicas wrote the batch to their
    /// file store. Written means handed to the operating system; nats-server syncs to disk
    /// on its own interval (two minutes by default), so a killed nats-server loses nothing
    /// acknowledged, but a power cut of a machine holding the only replica may lose the
    /// last acknowledged batches: replicas (3 on three machines) are the protection.
    ///
    /// `msg_id` goes in the `Nats-Msg-Id` header: a batch published again with the same id
    /// within the duplicate window (a gateway's retry after an error or timeout) is stored
    /// once, and the sequence returned is the first copy's. An error (NATS down, timeout)
    /// means "unknown": the batch may still have been stored, which is why a retry must
    /// reuse the id.
    pub async fn publish(&self, stream_id: &str, payload: Bytes, msg_id: &str) -> Result<u64> {
        self.send(stream_id, payload, msg_id).await?.await
    }

    /// Sends a batch as `publish` does, but returns as soon as it is on its way, with the
    /// acknowledgement still to come: batches sent one after another (each `send` awaited
    /// before the next) are stored in that order, while their acknowledgements overlap. The
    /// acknowledgement means what `publish`'s does, and its error the same "unknown".
    pub async fn send(
        &self,
        stream_id: &str,
        payload: Bytes,
        msg_id: &str,
    ) -> Result<impl Future<Output = Result<u64>> + Send + 'static> {
        let subject = ingest_subject(stream_id)?;
        // Refused at once while disconnected, so the gateway retries (the same message id)
        // as soon as the connection is back instead of waiting out the request timeout.
        require_connected(&self.jetstream.client())?;
        let message = PublishMessage::build()
            .payload(payload)
            .message_id(msg_id)
            // Refused if another JetStream stream captured the subject: never stored elsewhere.
            .expected_stream(INGEST_STREAM);
        let ack = self
            .jetstream
            .send_publish(subject, message)
            .await
            .map_err(|err| ClusterError::jetstream("publishing a batch", err))?;
        Ok(async move {
            let ack = ack.await.map_err(|err| ClusterError::jetstream("awaiting a batch's acknowledgement", err))?;
            Ok(ack.sequence)
        })
    }

    /// Reads one stream's batches with sequences above `from_sequence_exclusive`, as
    /// `(sequence, payload)`, in JetStream sequence order (the order JetStream acknowledged
    /// them), then goes on with new batches as they are published: the stream never ends
    /// by itself. Compare with `last_sequence` to know when the backlog is read.
    ///
    /// It reads with an ordered consumer (ephemeral, filtered to the stream's subject,
    /// without acknowledgements). An error item does not end it: it resumes after the last
    /// batch it yielded, so across a NATS restart nothing is skipped or repeated
    /// (replay.rs).
    pub async fn replay(
        &self,
        stream_id: &str,
        from_sequence_exclusive: u64,
    ) -> Result<impl Stream<Item = Result<(u64, Bytes)>> + Send + 'static> {
        let subject = ingest_subject(stream_id)?;
        crate::replay::follow(self.stream.clone(), subject, from_sequence_exclusive).await
    }

    /// Removes every batch of one stream (its subject only), for a deleted stream: a stream
    /// created later under the same id starts from an empty log.
    pub async fn purge(&self, stream_id: &str) -> Result<()> {
        let subject = ingest_subject(stream_id)?;
        self.stream
            .purge()
            .filter(subject)
            .await
            .map_err(|err| ClusterError::jetstream("purging a stream's batches", err))?;
        Ok(())
    }

    /// Removes every batch with a sequence up to and including `through_sequence`, of all
    /// streams at once (the server's `compaction.rs` says which sequence is safe). One
    /// purge without a subject filter drops whole blocks of the server's store; a purge per
    /// subject scans the blocks for that subject's batches, which measurably delayed every
    /// acknowledgement when done after each snapshot (BENCHMARKS.md).
    pub async fn compact_through(&self, through_sequence: u64) -> Result<()> {
        require_connected(&self.jetstream.client())?;
        self.stream
            .purge()
            .sequence(through_sequence.saturating_add(1))
            .await
            .map_err(|err| ClusterError::jetstream("compacting the log", err))?;
        Ok(())
    }

    /// The sequence of a stream's first batch the log holds, `None` when it holds none.
    pub async fn first_sequence(&self, stream_id: &str) -> Result<Option<u64>> {
        let subject = ingest_subject(stream_id)?;
        match self.stream.get_first_raw_message_by_subject(&subject, 1).await {
            Ok(message) => Ok(Some(message.sequence)),
            Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(ClusterError::jetstream("reading a stream's first sequence", err)),
        }
    }

    /// The sequence of the log's last batch, of any stream (0 when it is empty).
    pub async fn last_sequence_overall(&self) -> Result<u64> {
        let info =
            self.stream.get_info().await.map_err(|err| ClusterError::jetstream("reading the log's state", err))?;
        Ok(info.state.last_sequence)
    }

    /// How many batches the log holds for one stream.
    pub async fn held(&self, stream_id: &str) -> Result<u64> {
        let subject = ingest_subject(stream_id)?;
        let mut subjects = self
            .stream
            .info_with_subjects(&subject)
            .await
            .map_err(|err| ClusterError::jetstream("counting a stream's batches", err))?;
        let mut held = 0;
        while let Some(item) = subjects.next().await {
            let (name, count) = item.map_err(|err| ClusterError::jetstream("counting a stream's batches", err))?;
            if name == subject {
                held += count as u64;
            }
        }
        Ok(held)
    }

    /// The sequence of a stream's last batch, `None` when it has none.
    pub async fn last_sequence(&self, stream_id: &str) -> Result<Option<u64>> {
        let subject = ingest_subject(stream_id)?;
        match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => Ok(Some(message.sequence)),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(ClusterError::jetstream("reading a stream's last sequence", err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_has_one_subject_token() {
        assert_eq!(ingest_subject("pmu-1").unwrap(), "koopstream.ingest.pmu-1");
        assert_eq!(ingest_subject("area.3_x").unwrap(), "koopstream.ingest.area_2E3_5Fx");
        assert!(ingest_subject("a b").is_err());
    }
}
