//! Decoding request bodies so that every refusal says where it is: JSON through serde with
//! the path of the value being read (RFC 6901 pointers such as `/x/3/1`), protobuf with the
//! fields prost names. One rule decides the kind (and so the status): an error that can be
//! located at a field or value is [`ErrorKind::InvalidField`] (422), whatever went wrong
//! there (a wrong type, a `NaN` literal, a number out of range, a body cut off inside a
//! value); only a body that is not a document of its format before any field is read (not
//! JSON at all, trailing bytes after the document, bytes prost cannot attribute to a field)
//! is [`ErrorKind::Malformed`] (400).

use serde::de::DeserializeOwned;
use serde_json::error::Category;

use domain::error::{DomainError, ErrorKind, push_token};

/// Deserialises a JSON document, locating any error at the value serde was reading.
/// `what` names the document in the detail ("the JSON batch").
pub fn from_json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, DomainError> {
    from_json_at(body, what, "")
}

/// [`from_json`] for a document that is itself part of the body (an NDJSON line): its
/// pointers start with `prefix` (`/4`).
pub fn from_json_at<T: DeserializeOwned>(body: &[u8], what: &str, prefix: &str) -> Result<T, DomainError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(&e, what, prefix))?;
    // Whatever follows the document is outside any field: the body is not one document.
    de.end().map_err(|e| DomainError::malformed(format!("{what} is malformed: {e}")))?;
    Ok(value)
}

/// The refusal of a JSON error at `path`, by the rule in the module's documentation.
fn json_error(error: &serde_path_to_error::Error<serde_json::Error>, what: &str, prefix: &str) -> DomainError {
    let inner = error.inner();
    let mut pointer = prefix.to_owned();
    for segment in error.path().iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => push_token(&mut pointer, &index.to_string()),
            serde_path_to_error::Segment::Map { key } => push_token(&mut pointer, key),
            serde_path_to_error::Segment::Enum { variant } => push_token(&mut pointer, variant),
            // Past a value serde cannot name, the pointer stops at what it could.
            serde_path_to_error::Segment::Unknown => break,
        }
    }
    let inside = pointer.len() > prefix.len();
    match inner.classify() {
        Category::Data => {
            // serde reports a missing member at its object; the pointer names the member.
            if let Some(name) = missing_member(&inner.to_string()) {
                push_token(&mut pointer, name);
            }
            DomainError::invalid(format!("{what} does not fit: {inner}")).at(pointer)
        }
        Category::Syntax | Category::Eof if inside => {
            DomainError::invalid(format!("{what} has no valid value here: {inner}")).at(pointer)
        }
        Category::Syntax | Category::Eof | Category::Io => {
            let e = DomainError::malformed(format!("{what} is malformed: {inner}"));
            if prefix.is_empty() { e } else { e.at(prefix) }
        }
    }
}

/// The member a "missing field `a`" message names.
fn missing_member(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Decodes a protobuf message, locating a refusal at the fields prost names (`/start/x`).
pub fn from_protobuf<M: prost::Message + Default>(body: &[u8], what: &str) -> Result<M, DomainError> {
    M::decode(body).map_err(|e| protobuf_error(&e, what))
}

/// prost names the fields of an error only in its text: "failed to decode Protobuf
/// message: Inner.field: Outer.field: description", innermost first.
fn protobuf_error(error: &prost::DecodeError, what: &str) -> DomainError {
    let text = error.to_string();
    let mut rest = text.strip_prefix("failed to decode Protobuf message: ").unwrap_or(&text);
    let mut fields = Vec::new();
    while let Some((head, tail)) = rest.split_once(": ") {
        let identifier = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match head.split_once('.') {
            Some((message, field)) if identifier(message) && identifier(field) => {
                fields.push(field);
                rest = tail;
            }
            _ => break,
        }
    }
    if fields.is_empty() {
        return DomainError::malformed(format!("{what} is malformed: {text}"));
    }
    let mut pointer = String::new();
    for field in fields.iter().rev() {
        push_token(&mut pointer, field);
    }
    DomainError::new(ErrorKind::InvalidField, format!("{what} does not decode: {text}")).at(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::SampleBatchBody;

    fn refusal(body: &str) -> (ErrorKind, Option<String>) {
        let e = from_json::<SampleBatchBody>(body.as_bytes(), "the JSON batch").unwrap_err();
        (e.kind(), e.pointer().map(str::to_owned))
    }

    #[test]
    fn json_errors_are_located_at_the_value_being_read() {
        let invalid = |p: &str| (ErrorKind::InvalidField, Some(p.to_owned()));
        assert_eq!(refusal(r#"{"seq":1,"x":[[1,2],[3,NaN]]}"#), invalid("/x/1/1"));
        assert_eq!(refusal(r#"{"seq":1,"x":[[1,"2.0"]]}"#), invalid("/x/0/1"));
        assert_eq!(refusal(r#"{"seq":1,"x":[[1,1e999]]}"#), invalid("/x/0/1"));
        assert_eq!(refusal(r#"{"seq":-1,"x":[[1]]}"#), invalid("/seq"));
        assert_eq!(refusal(r#"{"x":[[1]]}"#), invalid("/seq"));
        assert_eq!(refusal(r#"{"seq":1,"x":[[1]],"extra":1}"#), invalid("/extra"));
        // Cut off inside row 0, before its next value begins.
        assert_eq!(refusal(r#"{"seq":1,"x":[[1,"#), invalid("/x/0"));
        assert_eq!(refusal(r#"{"seq":1,"t":{"a":1},"x":[[1]]}"#), invalid("/t"));
        assert_eq!(refusal("[1]"), invalid(""));
        assert_eq!(refusal("not json"), (ErrorKind::Malformed, None));
        assert_eq!(refusal(""), (ErrorKind::Malformed, None));
        assert_eq!(refusal(r#"{"seq":1,"x":[[1]]} trailing"#), (ErrorKind::Malformed, None));
        let e = from_json_at::<SampleBatchBody>(b"{\"seq\":1,\"x\":[[1,NaN]]}", "NDJSON line 4", "/4").unwrap_err();
        assert_eq!(e.pointer(), Some("/4/x/0/1"));
        assert!(e.detail().contains("NDJSON line 4") && e.detail().contains("(at `/4/x/0/1`)"), "{e}");
        let e = from_json_at::<SampleBatchBody>(b"hello", "NDJSON line 4", "/4").unwrap_err();
        assert_eq!((e.kind(), e.pointer()), (ErrorKind::Malformed, Some("/4")));
    }

    #[test]
    fn protobuf_errors_name_the_fields_prost_names() {
        use prost::Message as _;
        // Field 6 (`x`, packed doubles) sent as a varint.
        let e = from_protobuf::<crate::pb::SampleBatch>(&[0x30, 0x01], "the protobuf batch").unwrap_err();
        assert_eq!((e.kind(), e.pointer()), (ErrorKind::InvalidField, Some("/x")), "{e}");
        let e = from_protobuf::<crate::pb::SampleBatch>(&[0xff, 0xff, 0xff], "the protobuf batch").unwrap_err();
        assert_eq!((e.kind(), e.pointer()), (ErrorKind::Malformed, None), "{e}");
        // Nested: a predict request whose start matrix has its data (field 3) as a varint.
        let mut bytes = crate::pb::PredictRequest { horizon: 1, ..Default::default() }.encode_to_vec();
        let inner = [0x0a, 0x02, 0x18, 0x01];
        bytes.extend([0x1a, inner.len() as u8]);
        bytes.extend(inner);
        let e = from_protobuf::<crate::pb::PredictRequest>(&bytes, "the protobuf request").unwrap_err();
        assert_eq!(e.pointer(), Some("/start/x/data"), "{e}");
    }
}
