//! The RFC 9457 problem document as it travels (JSON, and inside WebSocket error frames
//! of either encoding). Which problem answers which error is the HTTP layer's choice.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// URI identifying the kind of problem (`urn:koopstream:problem:<kind>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What exactly was wrong, naming the field, line or value (and the pointer, when set).
    pub detail: String,
    /// Extension member: where in the request body the error is, as an RFC 6901 JSON
    /// pointer (`/x/3/1`). JSON bodies: the path of the value; NDJSON: the 1-based line
    /// number, then the path in that line (`/4/x/1`); CSV: the 1-based line number, then the
    /// column name (`/3/b`; the header is line 1); protobuf: the message's field names and
    /// packed indices (`/x/7`). Absent when the error cannot be located (a body that is not
    /// a document of its media type, or an error not about the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "/x/3/1")]
    pub pointer: Option<String>,
}
