//! The common header of every frame (SYNC, FRAMESIZE, IDCODE, SOC, FRACSEC), framing of a
//! byte stream (`frame_len`) and the checks every frame passes before its body is read.

use crate::bytes::Reader;
use crate::crc::crc_ccitt;
use crate::error::ParseError;
use crate::time::Time;

/// The smallest frame: the 14-byte common header and the 2-byte CRC (an empty header frame).
pub const MIN_FRAME: usize = 16;

/// The length of the common header before a frame's body.
pub(crate) const HEADER_LEN: usize = 14;

/// The frame type of SYNC bits 6-4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Data,
    Header,
    Cfg1,
    Cfg2,
    Command,
    Cfg3,
}

impl FrameKind {
    /// SYNC bits 6-4 (already shifted down); 6 and 7 are reserved.
    pub fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0 => FrameKind::Data,
            1 => FrameKind::Header,
            2 => FrameKind::Cfg1,
            3 => FrameKind::Cfg2,
            4 => FrameKind::Command,
            5 => FrameKind::Cfg3,
            _ => return None,
        })
    }

    /// The value of SYNC bits 6-4.
    pub fn bits(self) -> u8 {
        match self {
            FrameKind::Data => 0,
            FrameKind::Header => 1,
            FrameKind::Cfg1 => 2,
            FrameKind::Cfg2 => 3,
            FrameKind::Command => 4,
            FrameKind::Cfg3 => 5,
        }
    }
}

/// The common header of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub kind: FrameKind,
    /// SYNC bits 3-0: 1 (C37.118-2005) or 2 (C37.118.2-2011).
    pub version: u8,
    /// FRAMESIZE, CRC included.
    pub size: u16,
    pub idcode: u16,
    pub time: Time,
}

/// SYNC's two bytes: frame kind and version, or why they are refused.
fn sync(b0: u8, b1: u8) -> Result<(FrameKind, u8), ParseError> {
    if b0 != 0xAA || b1 & 0x80 != 0 {
        return Err(ParseError::BadSync);
    }
    let kind = FrameKind::from_bits((b1 >> 4) & 0x07).ok_or(ParseError::BadKind)?;
    let version = b1 & 0x0F;
    if !(1..=2).contains(&version) {
        return Err(ParseError::BadVersion);
    }
    Ok((kind, version))
}

/// For byte streams (TCP): `Ok(None)` while fewer than 4 bytes are buffered, else the
/// declared FRAMESIZE after checking SYNC (0xAA, frame kind, version) and that the size is
/// at least the smallest frame (`MIN_FRAME`, 16 bytes with the CRC).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let [b0, b1, s0, s1, ..] = *buf else { return Ok(None) };
    sync(b0, b1)?;
    let size = usize::from(u16::from_be_bytes([s0, s1]));
    if size < MIN_FRAME {
        return Err(ParseError::SizeMismatch);
    }
    Ok(Some(size))
}

/// Checks SYNC, kind, version, FRAMESIZE == frame.len() and the CRC; returns the common header.
pub fn parse_prefix(frame: &[u8]) -> Result<Prefix, ParseError> {
    if frame.len() < MIN_FRAME {
        return Err(ParseError::Short);
    }
    let Some(size) = frame_len(frame)? else { return Err(ParseError::Short) };
    if size != frame.len() {
        return Err(ParseError::SizeMismatch);
    }
    let (body, crc) = frame.split_at(size - 2);
    if crc_ccitt(body) != u16::from_be_bytes([crc[0], crc[1]]) {
        return Err(ParseError::BadCrc);
    }
    let (kind, version) = sync(frame[0], frame[1])?;
    let mut r = Reader::new(frame, 4);
    let idcode = r.u16()?;
    let soc = r.u32()?;
    let fracsec = r.u32()?;
    Ok(Prefix { kind, version, size: size as u16, idcode, time: Time::from_words(soc, fracsec) })
}

/// `parse_prefix` and a check of the frame kind.
pub(crate) fn expect(frame: &[u8], expected: FrameKind) -> Result<Prefix, ParseError> {
    let p = parse_prefix(frame)?;
    if p.kind != expected {
        return Err(ParseError::WrongKind { expected, found: p.kind });
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_waits_then_checks() {
        assert_eq!(frame_len(&[]), Ok(None));
        assert_eq!(frame_len(&[0xAA, 0x41, 0x00]), Ok(None));
        assert_eq!(frame_len(&[0xAA, 0x41, 0x00, 0x12]), Ok(Some(18)));
        assert_eq!(frame_len(&[0xAB, 0x41, 0x00, 0x12]), Err(ParseError::BadSync));
        assert_eq!(frame_len(&[0xAA, 0xC1, 0x00, 0x12]), Err(ParseError::BadSync));
        assert_eq!(frame_len(&[0xAA, 0x61, 0x00, 0x12]), Err(ParseError::BadKind));
        assert_eq!(frame_len(&[0xAA, 0x43, 0x00, 0x12]), Err(ParseError::BadVersion));
        assert_eq!(frame_len(&[0xAA, 0x41, 0x00, 0x0F]), Err(ParseError::SizeMismatch));
    }

    #[test]
    fn kinds_round_trip() {
        for bits in 0..8 {
            if let Some(k) = FrameKind::from_bits(bits) {
                assert_eq!(k.bits(), bits);
            } else {
                assert!(bits >= 6);
            }
        }
    }
}
