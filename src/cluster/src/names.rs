//! Ids as NATS names: stream and node ids become KV keys, object names and one subject token.
//!
//! koopstream accepts stream ids of 1 to 64 characters of `[A-Za-z0-9._-]`. Two of those
//! bytes cannot stand as they are in NATS: `.` separates subject tokens (and a KV key
//! starting or ending with `.`, or holding `..`, is refused), and `_` is the escape below.
//! The encoding is percent-encoding with `_` as the escape character, applied to those two
//! bytes only: `.` becomes `_2E`, `_` becomes `_5F`, every other byte stays. The result is
//! `[A-Za-z0-9_-]`, at most 192 characters: one subject token, a valid KV key and object
//! name. It is injective (every `_` in the output starts an escape), so distinct ids never
//! share a key, and decoding inverts it; `pmu-7` stays `pmu-7`, `pmu.north` becomes
//! `pmu_2Enorth`. The same encoding serves node ids.

use crate::error::{ClusterError, Result};

/// The longest stream or node id, as koopstream's domain checks it.
pub const MAX_ID_LEN: usize = 64;

fn is_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(is_id_byte)
}

/// Checks a stream id and returns its NATS name.
pub fn encode_stream_id(stream_id: &str) -> Result<String> {
    if !is_valid_id(stream_id) {
        return Err(ClusterError::InvalidStreamId(stream_id.to_owned()));
    }
    Ok(encode(stream_id))
}

/// A node's id, checked once: 1 to 64 characters of `[A-Za-z0-9._-]` (a host name fits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

impl NodeId {
    /// Checks the id.
    pub fn new(node_id: impl Into<String>) -> Result<Self> {
        let node_id = node_id.into();
        if is_valid_id(&node_id) { Ok(NodeId(node_id)) } else { Err(ClusterError::InvalidNodeId(node_id)) }
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its NATS name (see the module's documentation).
    pub fn encoded(&self) -> String {
        encode(&self.0)
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for ch in id.chars() {
        match ch {
            '.' => out.push_str("_2E"),
            '_' => out.push_str("_5F"),
            other => out.push(other),
        }
    }
    out
}

/// Inverts the encoding; `None` for a name this crate did not write (found in a bucket
/// that someone else wrote to), which callers skip rather than misread.
pub fn decode_id(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(position) = rest.find('_') {
        out.push_str(&rest[..position]);
        let escape = rest.get(position..position + 3)?;
        match escape {
            "_2E" => out.push('.'),
            "_5F" => out.push('_'),
            _ => return None,
        }
        rest = &rest[position + 3..];
    }
    out.push_str(rest);
    is_valid_id(&out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_stay_as_they_are() {
        assert_eq!(encode_stream_id("pmu-7").unwrap(), "pmu-7");
        assert_eq!(encode_stream_id("Area3").unwrap(), "Area3");
    }

    #[test]
    fn dots_and_underscores_are_escaped_and_decoded() {
        for id in ["pmu.north", "a_b", ".x.", "..", "_", "_2E", "a._-b"] {
            let encoded = encode_stream_id(id).unwrap();
            assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{encoded}");
            assert_eq!(decode_id(&encoded).as_deref(), Some(id));
        }
        assert_eq!(encode_stream_id("pmu.north").unwrap(), "pmu_2Enorth");
        assert_ne!(encode_stream_id("a.b").unwrap(), encode_stream_id("a_b").unwrap());
    }

    #[test]
    fn ids_outside_the_alphabet_or_too_long_are_refused() {
        for id in ["", "a b", "a*b", "a>b", "é", &"x".repeat(65)] {
            assert!(matches!(encode_stream_id(id), Err(ClusterError::InvalidStreamId(_))));
        }
        assert!(encode_stream_id(&"x".repeat(64)).is_ok());
        assert!(matches!(NodeId::new("no de"), Err(ClusterError::InvalidNodeId(_))));
        assert_eq!(NodeId::new("node.1").unwrap().encoded(), "node_2E1");
    }

    #[test]
    fn foreign_names_do_not_decode() {
        assert_eq!(decode_id("a_"), None);
        assert_eq!(decode_id("a_2"), None);
        assert_eq!(decode_id("a_41"), None);
        assert_eq!(decode_id(""), None);
    }
}
