//! Command frames (a client asking a PMU or PDC to start or stop data, or to send its
//! header or configuration).

use crate::bytes::{Reader, begin, finish};
use crate::error::{EncodeError, ParseError};
use crate::prefix::{FrameKind, HEADER_LEN, expect};
use crate::time::Time;

/// The CMD word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// 1: turn off transmission of data frames.
    DataOff,
    /// 2: turn on transmission of data frames.
    DataOn,
    /// 3: send the header frame.
    SendHeader,
    /// 4: send CFG-1.
    SendCfg1,
    /// 5: send CFG-2.
    SendCfg2,
    /// 6: send CFG-3.
    SendCfg3,
    /// 8: extended frame (its data in `CommandFrame::extended`).
    Extended,
    /// Any other code (reserved or user-designated). Parsing never produces a named code
    /// here; encoding writes the value as given.
    User(u16),
}

impl Command {
    pub fn from_code(code: u16) -> Self {
        match code {
            1 => Command::DataOff,
            2 => Command::DataOn,
            3 => Command::SendHeader,
            4 => Command::SendCfg1,
            5 => Command::SendCfg2,
            6 => Command::SendCfg3,
            8 => Command::Extended,
            other => Command::User(other),
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Command::DataOff => 1,
            Command::DataOn => 2,
            Command::SendHeader => 3,
            Command::SendCfg1 => 4,
            Command::SendCfg2 => 5,
            Command::SendCfg3 => 6,
            Command::Extended => 8,
            Command::User(code) => code,
        }
    }
}

/// A command frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFrame {
    pub idcode: u16,
    pub time: Time,
    pub command: Command,
    /// The bytes between CMD and the CRC (the extended frame's data; usually empty).
    pub extended: Vec<u8>,
}

impl CommandFrame {
    /// Appends the frame to `out`; writes nothing if `extended` makes it exceed 65535 bytes
    /// (`try_encode` says so).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = self.try_encode(out);
    }

    /// Appends the frame to `out`, or refuses a frame over 65535 bytes.
    pub fn try_encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = begin(out, FrameKind::Command, 1, self.idcode, &self.time);
        out.extend_from_slice(&self.command.code().to_be_bytes());
        out.extend_from_slice(&self.extended);
        finish(out, start)
    }

    pub fn parse(frame: &[u8]) -> Result<Self, ParseError> {
        let p = expect(frame, FrameKind::Command)?;
        let mut r = Reader::new(&frame[..frame.len() - 2], HEADER_LEN);
        let command = Command::from_code(r.u16()?);
        let extended = r.take(r.remaining())?.to_vec();
        Ok(CommandFrame { idcode: p.idcode, time: p.time, command, extended })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..=20 {
            assert_eq!(Command::from_code(code).code(), code);
        }
    }

    #[test]
    fn frame_round_trips_and_short_is_refused() {
        let f = CommandFrame { idcode: 7, time: Time::default(), command: Command::Extended, extended: vec![1, 2, 3] };
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(out.len(), 21);
        assert_eq!(CommandFrame::parse(&out), Ok(f));
        // A 16-byte frame of kind command has no room for CMD.
        let mut out = Vec::new();
        let start = begin(&mut out, FrameKind::Command, 1, 7, &Time::default());
        finish(&mut out, start).unwrap();
        assert_eq!(CommandFrame::parse(&out), Err(ParseError::Short));
    }

    #[test]
    fn oversized_frame_writes_nothing() {
        let f =
            CommandFrame { idcode: 7, time: Time::default(), command: Command::Extended, extended: vec![0; 70_000] };
        let mut out = vec![9];
        assert_eq!(f.try_encode(&mut out), Err(EncodeError::TooLarge));
        f.encode(&mut out);
        assert_eq!(out, vec![9]);
    }
}
