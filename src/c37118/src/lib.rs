//! IEEE C37.118.2-2011 synchrophasor frames: parsing and encoding, without any I/O.
//!
//! Every frame kind of the standard's common format is covered: data frames (decoded
//! against their configuration into volts, amperes, hertz), header frames, configuration
//! frames CFG-1, CFG-2 and CFG-3 with any number of PMUs (a PDC's stream), and command
//! frames. CFG-3 is decoded and encoded as single frames only: a fragment (CONT_IDX other
//! than 0) is `ParseError::Unsupported { what: "fragmented CFG-3" }`.
//!
//! Invariants: no I/O and no clock; every malformed input is a typed `ParseError`, never
//! a panic; nothing is allocated from a count read off the wire before the frame's bytes
//! are known to hold that many items; `DataFrame::decode_into` allocates nothing in the
//! steady state. SYNC versions 1 and 2 are accepted; frames are encoded as version 1 (CFG-3,
//! new in 2011, as version 2).
//!
//! Modules: `crc` (CRC-CCITT), `time` (SOC, FRACSEC, time quality), `prefix` (the common
//! header, `frame_len` for byte streams), `bytes` (checked reading, frame writing),
//! `command`, `header`, `channel` (a PMU's channels and format), `config`, `cfg3` (CFG-3's
//! extra fields and layout), `data` (the scaling rules), `error`.
//!
//! Tested by byte-exact fixtures (the example frames of the standard's annex and a
//! device's frames, `tests/fixtures.rs`), round-trip and no-panic property tests
//! (`tests/properties.rs`), and the libFuzzer target `c37118_frame` of `fuzz/` (20 million
//! inputs without a crash on 2026-12-04: EXPERIMENTS.md, "Fuzzing the network parsers").

mod bytes;
mod cfg3;
mod channel;
mod command;
mod config;
mod crc;
mod data;
mod error;
mod header;
mod prefix;
mod time;

pub use cfg3::{AnalogScale, Cfg3Pmu, PhasorScale};
pub use channel::{AnalogChannel, AnalogKind, DigitalWord, Format, Nominal, PhasorChannel, PhasorKind};
pub use command::{Command, CommandFrame};
pub use config::{Config, ConfigKind, PmuConfig};
pub use crc::crc_ccitt;
pub use data::{DataError, DataFrame, Phasor, PmuData, Stat};
pub use error::{EncodeError, ParseError};
pub use header::HeaderFrame;
pub use prefix::{FrameKind, MIN_FRAME, Prefix, frame_len, parse_prefix};
pub use time::{Time, TimeQuality};

/// Any frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Command(CommandFrame),
    Header(HeaderFrame),
    Config(Config),
    Data(DataFrame),
}

/// Any frame; a data frame needs its configuration (`ParseError::NoConfig` without one).
pub fn parse(frame: &[u8], config: Option<&Config>) -> Result<Frame, ParseError> {
    let p = parse_prefix(frame)?;
    Ok(match p.kind {
        FrameKind::Data => Frame::Data(DataFrame::parse(frame, config.ok_or(ParseError::NoConfig)?)?),
        FrameKind::Header => Frame::Header(HeaderFrame::parse(frame)?),
        FrameKind::Cfg1 | FrameKind::Cfg2 | FrameKind::Cfg3 => Frame::Config(Config::parse(frame)?),
        FrameKind::Command => Frame::Command(CommandFrame::parse(frame)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of `kind` with `body`, valid SYNC, FRAMESIZE and CRC.
    fn frame(kind: FrameKind, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let start = bytes::begin(&mut out, kind, 2, 7, &Time::default());
        out.extend_from_slice(body);
        bytes::finish(&mut out, start).unwrap();
        out
    }

    #[test]
    fn dispatch_and_refusals() {
        assert_eq!(parse(&frame(FrameKind::Data, &[0; 10]), None), Err(ParseError::NoConfig));
        let mut fragment = vec![0; 40];
        fragment[1] = 1;
        assert_eq!(
            parse(&frame(FrameKind::Cfg3, &fragment), None),
            Err(ParseError::Unsupported { what: "fragmented CFG-3" })
        );
        // CONT_IDX 0 but TIME_BASE 0.
        assert_eq!(parse(&frame(FrameKind::Cfg3, &[0; 40]), None), Err(ParseError::Invalid { field: "TIME_BASE" }));
        // Version 2 is accepted.
        let header = frame(FrameKind::Header, b"hi");
        assert_eq!(parse_prefix(&header).unwrap().version, 2);
        assert!(matches!(parse(&header, None), Ok(Frame::Header(h)) if h.text == b"hi"));
        let mut bad = header.clone();
        bad[15] ^= 1;
        assert_eq!(parse(&bad, None), Err(ParseError::BadCrc));
        assert_eq!(parse(&header[..header.len() - 1], None), Err(ParseError::SizeMismatch));
        assert_eq!(parse(&header[..10], None), Err(ParseError::Short));
        assert_eq!(
            CommandFrame::parse(&header),
            Err(ParseError::WrongKind { expected: FrameKind::Command, found: FrameKind::Header })
        );
    }
}
