//! Big-endian field reading and frame writing shared by every frame kind.
//!
//! `Reader` never indexes out of bounds: each read is a checked slice that becomes
//! `ParseError::Short`, so a lying count can only produce an error. `begin`/`finish`
//! write the common header and patch FRAMESIZE and the CRC once the body is known.

use crate::crc::crc_ccitt;
use crate::error::{EncodeError, ParseError};
use crate::prefix::{FrameKind, MIN_FRAME};
use crate::time::Time;

/// A cursor over a frame's bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], pos: usize) -> Self {
        Reader { bytes, pos }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).ok_or(ParseError::Short)?;
        let s = self.bytes.get(self.pos..end).ok_or(ParseError::Short)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, ParseError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, ParseError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn f32(&mut self) -> Result<f32, ParseError> {
        Ok(f32::from_be_bytes(self.array()?))
    }
}

/// Appends the common header with a FRAMESIZE placeholder; returns where the frame starts.
pub(crate) fn begin(out: &mut Vec<u8>, kind: FrameKind, version: u8, idcode: u16, time: &Time) -> usize {
    let start = out.len();
    out.push(0xAA);
    out.push((kind.bits() << 4) | (version & 0x0F));
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&idcode.to_be_bytes());
    out.extend_from_slice(&time.soc.to_be_bytes());
    out.extend_from_slice(&time.fracsec_word().to_be_bytes());
    start
}

/// Patches FRAMESIZE and appends the CRC of the frame started at `start`. A frame over
/// 65535 bytes is removed from `out` again and refused.
pub(crate) fn finish(out: &mut Vec<u8>, start: usize) -> Result<(), EncodeError> {
    let size = out.len() - start + 2;
    if size > usize::from(u16::MAX) || size < MIN_FRAME {
        out.truncate(start);
        return Err(EncodeError::TooLarge);
    }
    out[start + 2..start + 4].copy_from_slice(&(size as u16).to_be_bytes());
    let crc = crc_ccitt(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Writes `name` padded with spaces to 16 bytes.
pub(crate) fn put_name(out: &mut Vec<u8>, name: &str) -> Result<(), EncodeError> {
    let b = name.as_bytes();
    if b.len() > 16 {
        return Err(EncodeError::OutOfRange { field: "name" });
    }
    out.extend_from_slice(b);
    out.extend(std::iter::repeat_n(b' ', 16 - b.len()));
    Ok(())
}

/// Reads a 16-byte name: UTF-8, trailing spaces and NULs (padding) removed.
pub(crate) fn get_name(r: &mut Reader<'_>) -> Result<String, ParseError> {
    let raw = r.take(16)?;
    let s = std::str::from_utf8(raw).map_err(|_| ParseError::Invalid { field: "name" })?;
    Ok(s.trim_end_matches([' ', '\0']).to_owned())
}
