//! Binary encoding of what the store keeps: log entries (sample batches, resets) and stream
//! snapshots (the estimator's exact state). Little-endian, length-prefixed, versioned; every
//! read is bounds-checked, so a damaged record is an error, never a panic.

use domain::batch::{SampleBatch, Timing};
pub use domain::journal::{LogEntry, StreamState};

mod debiased;
mod meter;
mod snapshot;
pub use snapshot::{SNAPSHOT_VERSION, decode_snapshot, encode_snapshot, snapshot_version};

/// A record that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The record ends early.
    #[error("the record is truncated")]
    Truncated,
    /// A tag or length that cannot be right.
    #[error("the record is malformed: {0}")]
    Malformed(&'static str),
    /// Written by a newer version of koopstream.
    #[error("the record has format version {0}, newer than this build supports ({SNAPSHOT_VERSION})")]
    NewerVersion(u32),
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    fn f64s(&mut self, v: &[f64]) {
        self.u64(v.len() as u64);
        self.0.reserve(v.len() * 8);
        v.iter().for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
    }
    fn bools(&mut self, v: &[bool]) {
        self.u64(v.len() as u64);
        v.iter().for_each(|b| self.0.push(u8::from(*b)));
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        self.u64(v.unwrap_or(0));
    }
    fn opt_f64(&mut self, v: Option<f64>) {
        self.bool(v.is_some());
        self.f64(v.unwrap_or(0.0));
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.at.checked_add(n).ok_or(CodecError::Truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or(CodecError::Truncated)?;
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn f64(&mut self) -> Result<f64, CodecError> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn usize(&mut self) -> Result<usize, CodecError> {
        usize::try_from(self.u64()?).map_err(|_| CodecError::Malformed("length"))
    }
    fn bool(&mut self) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CodecError::Malformed("boolean")),
        }
    }
    fn f64s(&mut self) -> Result<Vec<f64>, CodecError> {
        let len = self.usize()?;
        let bytes = self.take(len.checked_mul(8).ok_or(CodecError::Malformed("length"))?)?;
        Ok(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }
    fn bools(&mut self) -> Result<Vec<bool>, CodecError> {
        let len = self.usize()?;
        self.take(len)?
            .iter()
            .map(|b| match b {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(CodecError::Malformed("boolean")),
            })
            .collect()
    }
    fn opt_u64(&mut self) -> Result<Option<u64>, CodecError> {
        let some = self.bool()?;
        let v = self.u64()?;
        Ok(some.then_some(v))
    }
    fn opt_f64(&mut self) -> Result<Option<f64>, CodecError> {
        let some = self.bool()?;
        let v = self.f64()?;
        Ok(some.then_some(v))
    }
    fn finish(&self) -> Result<(), CodecError> {
        if self.at == self.bytes.len() { Ok(()) } else { Err(CodecError::Malformed("trailing bytes")) }
    }
}

/// Encodes a batch as a log entry (without copying it into a [`LogEntry`] first).
pub fn encode_batch(batch: &SampleBatch) -> Vec<u8> {
    let mut w = Writer::default();
    put_batch(&mut w, batch);
    w.0
}

/// Encodes a log entry.
pub fn encode_entry(entry: &LogEntry) -> Vec<u8> {
    let mut w = Writer::default();
    match entry {
        // A reset written before resets cleared the watermarks keeps its old tag.
        LogEntry::Reset { watermarks: false } => w.u8(b'R'),
        LogEntry::Reset { watermarks: true } => w.u8(b'W'),
        LogEntry::Batch(batch) => put_batch(&mut w, batch),
    }
    w.0
}

fn put_batch(w: &mut Writer, batch: &SampleBatch) {
    // A batch with a producer epoch is tagged `E` and carries it after the seq; one
    // without stays byte for byte what it was before epochs existed.
    match batch.epoch {
        None => {
            w.u8(b'B');
            w.u64(batch.seq);
        }
        Some(epoch) => {
            w.u8(b'E');
            w.u64(batch.seq);
            w.u64(epoch);
        }
    }
    match &batch.timing {
        Timing::Explicit(t) => {
            w.u8(0);
            w.f64s(t);
        }
        Timing::Start(t0) => {
            w.u8(1);
            w.f64(*t0);
        }
        Timing::Continue => w.u8(2),
    }
    w.u64(batch.rows as u64);
    w.f64s(&batch.x);
    w.f64s(&batch.u);
}

/// Decodes a log entry.
pub fn decode_entry(bytes: &[u8]) -> Result<LogEntry, CodecError> {
    let mut r = Reader { bytes, at: 0 };
    let entry = match r.u8()? {
        b'R' => LogEntry::Reset { watermarks: false },
        b'W' => LogEntry::Reset { watermarks: true },
        tag @ (b'B' | b'E') => {
            let seq = r.u64()?;
            let epoch = if tag == b'E' { Some(r.u64()?) } else { None };
            let timing = match r.u8()? {
                0 => Timing::Explicit(r.f64s()?),
                1 => Timing::Start(r.f64()?),
                2 => Timing::Continue,
                _ => return Err(CodecError::Malformed("timing")),
            };
            let rows = r.usize()?;
            let x = r.f64s()?;
            let u = r.f64s()?;
            if rows == 0 || !x.len().is_multiple_of(rows) || !u.len().is_multiple_of(rows) {
                return Err(CodecError::Malformed("batch shape"));
            }
            if let Timing::Explicit(t) = &timing
                && t.len() != rows
            {
                return Err(CodecError::Malformed("time stamps"));
            }
            LogEntry::Batch(SampleBatch { seq, epoch, timing, rows, x, u })
        }
        _ => return Err(CodecError::Malformed("entry tag")),
    };
    r.finish()?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_an_error() {
        let batch = SampleBatch {
            seq: 7,
            epoch: None,
            timing: Timing::Explicit(vec![0.0, 0.1]),
            rows: 2,
            x: vec![1.0, f64::NAN, 3.0, 4.0],
            u: vec![],
        };
        let bytes = encode_entry(&LogEntry::Batch(batch.clone()));
        match decode_entry(&bytes).unwrap() {
            LogEntry::Batch(b) => assert_eq!((b.seq, b.rows, b.timing, b.x[2]), (7, 2, batch.timing.clone(), 3.0)),
            LogEntry::Reset { .. } => panic!("a batch"),
        }
        // A batch with an epoch, and both kinds of reset.
        let with_epoch = LogEntry::Batch(SampleBatch { epoch: Some(3), x: vec![1.0, 2.0, 3.0, 4.0], ..batch.clone() });
        assert_eq!(decode_entry(&encode_entry(&with_epoch)).unwrap(), with_epoch);
        assert_eq!(encode_entry(&with_epoch)[0], b'E');
        for watermarks in [false, true] {
            let reset = LogEntry::Reset { watermarks };
            assert_eq!(decode_entry(&encode_entry(&reset)).unwrap(), reset);
        }
        assert_eq!(encode_entry(&LogEntry::Reset { watermarks: false }), b"R", "the old tag is kept");
        for cut in 0..bytes.len() {
            assert!(decode_entry(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
