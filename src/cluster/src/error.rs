//! The crate's one error type: what went wrong, in terms a caller can act on (a lease that
//! is lost, an id that cannot be a key) rather than the client library's many error kinds.

use std::time::Duration;

/// Errors from the cluster's building blocks.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The configuration is out of its documented range.
    #[error("cluster configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// A stream id that koopstream would not have accepted.
    #[error("stream id `{0}` must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    InvalidStreamId(String),
    /// A node id outside the same alphabet and length.
    #[error("node id `{0}` must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    InvalidNodeId(String),
    /// The NATS server could not be reached when connecting.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: BoxError,
    },
    /// A JetStream request failed (server down, timed out, refused).
    #[error("JetStream {operation} failed: {source}")]
    JetStream {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    /// The connection to NATS is down and the client is reconnecting: nothing is sent (and
    /// nothing buffered to go out later) until it is back.
    #[error("not connected to NATS (reconnecting)")]
    Disconnected,
    /// An operation did not finish within its bound.
    #[error("JetStream {operation} did not answer within {limit:?}")]
    TimedOut { operation: &'static str, limit: Duration },
    /// Another node holds the lease of this stream.
    #[error("stream `{stream}` is leased by node `{holder}`")]
    LeaseHeld { stream: String, holder: String },
    /// The lease moved on since this node last wrote it: it expired, and possibly another
    /// node took it. The caller must stop acting as the stream's owner at once.
    #[error("lease of stream `{stream}` was lost (revision {held} is no longer current)")]
    LeaseLost { stream: String, held: u64 },
    /// A snapshot's head moved since its writer read it (another holder wrote one, or the
    /// stream was deleted): the snapshot was not made current.
    #[error("snapshot of stream `{stream}` superseded (head revision {held} is no longer current)")]
    SnapshotSuperseded { stream: String, held: u64 },
    /// A stored value is not what this crate writes.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

/// The client library's errors, boxed: they are many types, and callers only report them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for this crate's results.
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

/// `Disconnected` unless the client is connected. Every write that must not go out late
/// checks this first: while the connection is down the client would buffer the write and
/// send it after reconnecting, long after its caller gave up on it (a batch the gateway
/// was refused, a lease renewal its holder already counted as failed, which would keep a
/// lost lease alive for another TTL).
pub(crate) fn require_connected(client: &async_nats::Client) -> Result<()> {
    match client.connection_state() {
        async_nats::connection::State::Connected => Ok(()),
        _ => Err(ClusterError::Disconnected),
    }
}

impl ClusterError {
    /// Wraps a client error with the operation that failed.
    pub(crate) fn jetstream(operation: &'static str, source: impl Into<BoxError>) -> Self {
        ClusterError::JetStream { operation, source: source.into() }
    }
}
