//! The port through which a clustered service shares its streams with other nodes: every
//! node appends accepted batches to one durable log and keeps definitions in one place.
//! The binary implements it on NATS JetStream; the domain only calls it, so it stays free
//! of any messaging library. A service without a cluster has no `SharedLog` and behaves as
//! it always did.

use std::future::Future;
use std::pin::Pin;

use crate::batch::SampleBatch;
use crate::definition::StreamDefinition;
use crate::error::DomainError;

/// An operation on the shared log under way.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, DomainError>> + Send + 'a>>;

/// The acknowledgement of a batch on its way to the log: its log sequence once the log
/// holds it.
pub type Acknowledgement = Pending<'static, u64>;

/// The cluster as a stream's owner task sees it.
pub trait SharedLog: Send + Sync {
    /// Sends a validated batch to the stream's log; resolves once it is on its way (batches
    /// sent one after another are logged in that order) with its acknowledgement, which
    /// resolves with the batch's log sequence once the log holds it durably, and fails
    /// (unavailable) when that cannot be known, so no gateway is acknowledged for a batch
    /// the log may not hold. The batch is encoded before this returns: the future borrows
    /// only the log.
    fn append(&self, stream_id: &str, batch: &SampleBatch) -> Pending<'_, Acknowledgement>;
    /// Appends a reset of the stream's model (and, with `watermarks`, of its seq and time
    /// watermarks) to its log, in order with its batches; resolves with its log sequence.
    fn append_reset(&self, stream_id: &str, watermarks: bool) -> Pending<'_, u64>;
    /// Stores a new stream's definition unless the stream exists: an existing definition
    /// equal to this one is success, a different one is a conflict.
    fn define(&self, definition: &StreamDefinition) -> Pending<'_, ()>;
    /// Removes a stream's definition (nothing if it has none).
    fn undefine(&self, stream_id: &str) -> Pending<'_, ()>;
}
