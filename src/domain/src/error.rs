//! The service's one error type: a kind that says what went wrong in the service's own terms
//! (never an HTTP status) and a detail naming the field, value or limit. Only the transports
//! map kinds to their codes: the HTTP layer to statuses and problem+json, WebSockets to
//! error frames, metrics to refusal reasons. An error found in a request body also carries
//! the place it was found as an RFC 6901 JSON pointer (`/x/3/1`), so a client can tell which
//! value to fix without parsing the detail.

/// What kind of thing went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is not a document of its format at all (not UTF-8, not JSON, a protobuf
    /// that does not decode), and the error cannot be located at any field.
    Malformed,
    /// A field's value is not acceptable: wrong type, not a value where one is expected
    /// (a `NaN` literal), non-finite, wrong count, an option out of range; located by the
    /// error's pointer when it is known.
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
    /// Where in the request body the error is, as an RFC 6901 JSON pointer.
    pointer: Option<String>,
}

impl DomainError {
    /// An error of this kind with this detail.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), pointer: None }
    }

    /// The same error located at `pointer` (an RFC 6901 JSON pointer into the request body,
    /// see [`pointer`]); the detail names it too, for clients that only show the text.
    pub fn at(mut self, pointer: impl Into<String>) -> Self {
        let pointer = pointer.into();
        // A later, outer location never replaces the innermost one.
        if self.pointer.is_none() {
            self.detail = format!("{} (at `{pointer}`)", self.detail);
            self.pointer = Some(pointer);
        }
        self
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

    /// Where in the request body the error is (an RFC 6901 JSON pointer), when known.
    pub fn pointer(&self) -> Option<&str> {
        self.pointer.as_deref()
    }
}

/// Building RFC 6901 JSON pointers: `pointer(["x", "3", "1"])` is `/x/3/1`. Reference
/// tokens are escaped (`~` as `~0`, `/` as `~1`), so any key or column name is safe.
pub fn pointer<I, T>(tokens: I) -> String
where
    I: IntoIterator<Item = T>,
    T: std::fmt::Display,
{
    let mut out = String::new();
    for token in tokens {
        push_token(&mut out, &token.to_string());
    }
    out
}

/// Appends one reference token to a JSON pointer, escaped.
pub fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_their_tokens_and_name_the_place_in_the_detail() {
        assert_eq!(pointer(["x", "3", "1"]), "/x/3/1");
        assert_eq!(pointer(["a/b", "c~d"]), "/a~1b/c~0d");
        assert_eq!(pointer(Vec::<String>::new()), "");
        let e = DomainError::invalid("value is not finite").at("/x/3/1").at("/x");
        assert_eq!((e.pointer(), e.detail()), (Some("/x/3/1"), "value is not finite (at `/x/3/1`)"));
        assert_eq!(DomainError::malformed("not JSON").pointer(), None);
    }
}
