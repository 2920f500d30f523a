//! The typed errors of parsing and encoding.
//!
//! The variants the API promises are unit variants (or carry only a static field name) so
//! that callers can match them without caring about details, and so that an error never
//! allocates: a flood of malformed frames costs no memory.

use crate::FrameKind;

/// Why a frame (or a prefix of a byte stream) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Fewer bytes than the frame or one of its fields needs.
    #[error("frame too short")]
    Short,
    /// The first byte is not 0xAA (or the reserved bit 7 of the second byte is set).
    #[error("bad SYNC byte")]
    BadSync,
    /// SYNC bits 6-4 name no frame type (6 and 7 are reserved).
    #[error("bad frame type in SYNC")]
    BadKind,
    /// SYNC bits 3-0 name a version other than 1 (2005) or 2 (2011).
    #[error("unsupported protocol version in SYNC")]
    BadVersion,
    /// FRAMESIZE disagrees with the bytes given, or is below the smallest frame.
    #[error("FRAMESIZE does not match the frame")]
    SizeMismatch,
    /// The CRC-CCITT of the frame does not match its last two bytes.
    #[error("bad CRC")]
    BadCrc,
    /// A data frame was given without the configuration that describes it.
    #[error("a data frame needs its configuration")]
    NoConfig,
    /// A data frame whose IDCODE or size does not match its configuration (e.g. the
    /// configuration changed mid-stream and a new one must be requested).
    #[error("data frame does not match its configuration")]
    ShapeMismatch,
    /// The frame is of another kind than the one asked for.
    #[error("expected a {expected:?} frame, found {found:?}")]
    WrongKind { expected: FrameKind, found: FrameKind },
    /// A field holds a value the standard does not allow (or a count the frame's bytes cannot hold).
    #[error("invalid {field}")]
    Invalid { field: &'static str },
    /// A frame this crate recognises but does not decode (a fragment of a CFG-3).
    #[error("unsupported: {what}")]
    Unsupported { what: &'static str },
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The data does not have the shape (PMUs, channel counts, IDCODE) of its configuration.
    #[error("data does not match its configuration")]
    ShapeMismatch,
    /// A value does not fit its field (integer formats: after scaling and rounding).
    #[error("{field} out of range")]
    OutOfRange { field: &'static str },
    /// The frame would exceed FRAMESIZE's 65535 bytes.
    #[error("frame larger than 65535 bytes")]
    TooLarge,
    /// A frame kind this crate does not encode (none today; kept for callers that match it).
    #[error("unsupported: {what}")]
    Unsupported { what: &'static str },
}
