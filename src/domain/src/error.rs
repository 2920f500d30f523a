//! The service's one error type: a kind that says what went wrong in the service's own terms
//! (never an HTTP status) and a detail naming the field, value or limit. Only the transports
//! map kinds to their codes: the HTTP layer to statuses and problem+json, WebSockets to
//! error frames, metrics to refusal reasons.

/// What kind of thing went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input could not be parsed at all (bad JSON, protobuf, UTF-8).
    Malformed,
    /// The input parsed but a field's value is not acceptable (wrong count, non-finite
    /// value, an option out of range).
    InvalidField,
    /// The input is larger than a documented limit (batch rows, body size).
    TooLarge,
    /// The request contradicts what exists (an id with another definition).
    Conflict,
    /// A stream would hold more memory than a budget allows.
    OverBudget,
    /// A service-wide limit is reached (the number of streams).
    LimitReached,
    /// The stream's command queue is full; retry later.
    QueueFull,
    /// No stream with that id.
    UnknownStream,
    /// The stream's stored state could not be rebuilt; it is kept aside until deleted.
    Quarantined,
    /// The store refused the write because the disk is full.
    StorageFull,
    /// The store could not take the write (closed, failed); nothing was applied.
    Storage,
    /// The service cannot take this now (stopping, recovering).
    Unavailable,
}

/// An error of the service domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct DomainError {
    kind: ErrorKind,
    detail: String,
}

impl DomainError {
    /// An error of this kind with this detail.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into() }
    }

    /// The input could not be parsed.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, detail)
    }

    /// A field's value is not acceptable.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidField, detail)
    }

    /// The input exceeds a limit.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, detail)
    }

    /// The request contradicts what exists.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, detail)
    }

    /// A memory budget would be exceeded.
    pub fn over_budget(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::OverBudget, detail)
    }

    /// A service-wide limit is reached.
    pub fn limit_reached(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::LimitReached, detail)
    }

    /// No stream with that id.
    pub fn unknown_stream(id: &str) -> Self {
        Self::new(ErrorKind::UnknownStream, format!("no stream with id `{id}`"))
    }

    /// The stream is quarantined.
    pub fn quarantined(id: &str, reason: &str) -> Self {
        Self::new(
            ErrorKind::Quarantined,
            format!("stream `{id}` is quarantined ({reason}); it serves nothing until it is deleted"),
        )
    }

    /// The store could not take a write (`full`: for lack of disk), so nothing was applied.
    pub fn storage(full: bool, detail: impl std::fmt::Display) -> Self {
        if full {
            Self::new(ErrorKind::StorageFull, detail.to_string())
        } else {
            Self::new(ErrorKind::Storage, format!("the request could not be stored and was not applied: {detail}"))
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What exactly was wrong.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}
