//! An owner in a cluster: ingested batches and resets go to the cluster's log, and are
//! answered once the log holds them; the stream's owner node applies them when it replays
//! the log (`Command::Apply`, `Command::ApplyReset`).

use tokio::sync::oneshot;

use crate::batch::SampleBatch;
use crate::command::IngestAck;
use crate::error::{DomainError, ErrorKind};
use crate::metrics::Transport;

use super::Owner;

impl Owner {
    /// Sends the batch to the log here, in queue order, and answers it from a task of its
    /// own, so the next batch is sent while this one's acknowledgement is on its way.
    pub(super) async fn send_to_shared_log(
        &self,
        batch: SampleBatch,
        transport: Transport,
        reply: oneshot::Sender<Result<IngestAck, DomainError>>,
    ) {
        let sent = match self.context.shared.clone() {
            Some(shared) => shared.append(&self.definition.id, &batch).await,
            None => Err(gone()),
        };
        match sent {
            Ok(acknowledgement) => {
                let (seq, rows) = (batch.seq, batch.rows);
                let metrics = self.metrics.clone();
                tokio::spawn(async move {
                    let answer = acknowledgement.await.map(|sequence| logged(seq, rows, sequence));
                    if answer.is_ok() {
                        metrics.logged(transport, rows as u64);
                    }
                    let _ = reply.send(answer);
                });
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Appends a reset to the log, in order with the batches; the owner node applies it
    /// (`ApplyReset`). The answer is the reset's log sequence.
    pub(super) async fn reset_through_shared_log(&self, watermarks: bool) -> Result<u64, DomainError> {
        match self.context.shared.clone() {
            Some(shared) => shared.append_reset(&self.definition.id, watermarks).await,
            None => Err(gone()),
        }
    }
}

fn gone() -> DomainError {
    DomainError::new(ErrorKind::Unavailable, "the cluster's log is gone")
}

/// The acknowledgement of a batch the cluster's log holds (`accepted`: the samples logged;
/// `version`: the batch's log sequence). How each sample fares is decided when the owner
/// node applies it, in log order, and shows in the stream's status.
fn logged(seq: u64, rows: usize, sequence: u64) -> IngestAck {
    IngestAck {
        seq,
        accepted: rows,
        duplicate: false,
        out_of_order: 0,
        missing_value: 0,
        flat_line: 0,
        outlier: 0,
        version: sequence,
    }
}
