//! Header frames: free-form text (ASCII in practice, kept as bytes) describing the data
//! source.

use crate::bytes::{begin, finish};
use crate::error::{EncodeError, ParseError};
use crate::prefix::{FrameKind, HEADER_LEN, expect};
use crate::time::Time;

/// A header frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFrame {
    pub idcode: u16,
    pub time: Time,
    /// The bytes between the common header and the CRC.
    pub text: Vec<u8>,
}

impl HeaderFrame {
    /// Appends the frame to `out`; writes nothing if the text makes it exceed 65535 bytes
    /// (`try_encode` says so).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = self.try_encode(out);
    }

    /// Appends the frame to `out`, or refuses a frame over 65535 bytes.
    pub fn try_encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = begin(out, FrameKind::Header, 1, self.idcode, &self.time);
        out.extend_from_slice(&self.text);
        finish(out, start)
    }

    pub fn parse(frame: &[u8]) -> Result<Self, ParseError> {
        let p = expect(frame, FrameKind::Header)?;
        let text = frame[HEADER_LEN..frame.len() - 2].to_vec();
        Ok(HeaderFrame { idcode: p.idcode, time: p.time, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_text_round_trip() {
        for text in [Vec::new(), b"PMU at bus 7".to_vec()] {
            let f = HeaderFrame { idcode: 1, time: Time { soc: 5, fracsec: 6, ..Time::default() }, text };
            let mut out = Vec::new();
            f.encode(&mut out);
            assert_eq!(HeaderFrame::parse(&out), Ok(f));
        }
    }
}
