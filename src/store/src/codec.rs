//! Binary encoding of what the store keeps: log entries (sample batches, resets) and stream
//! snapshots (the estimator's exact state). Little-endian, length-prefixed, versioned; every
//! read is bounds-checked, so a damaged record is an error, never a panic.

use koopman::{
    Counters, EstimatorState, LiftingState, OnlineState, PendingState, PhaseState, RecursionState, WindowState,
};

use domain::batch::{SampleBatch, Timing};
pub use domain::journal::{LogEntry, StreamState};
use domain::snapshot::RejectCounts;

mod meter;

/// Version of the snapshot encoding; a newer one is refused. 3 adds the mode meter, 4 the
/// producer epoch, the digests of the latest batches and the flat-line runs.
pub const SNAPSHOT_VERSION: u32 = 4;
/// At most this many (seq, digest) pairs are read back from a snapshot.
const MAX_RECENT: usize = domain::watermark::RECENT_BATCHES;
const SNAPSHOT_MAGIC: &[u8; 4] = b"KSS\0";

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

fn put_recursion(w: &mut Writer, r: &RecursionState) {
    w.f64s(&r.gram);
    w.f64s(&r.cross);
    w.f64s(&r.p);
    w.f64s(&r.k);
    w.bool(r.solved);
    w.bool(r.window.is_some());
    if let Some(win) = &r.window {
        w.f64s(&win.regressors);
        w.f64s(&win.targets);
        w.u64(win.next as u64);
        w.u64(win.len as u64);
    }
    w.bool(r.pending.is_some());
    if let Some(pending) = &r.pending {
        for columns in
            [&pending.regressors, &pending.targets, &pending.gains, &pending.errors, &pending.beta, &pending.gamma]
        {
            w.f64s(columns);
        }
        w.f64(pending.sigma);
    }
    w.u64(r.since_refactor as u64);
    w.u64(r.retry_in as u64);
    w.u64(r.pairs);
    w.u64(r.refactorisations);
    w.u64(r.health_failures);
}

/// `version` is the snapshot's format version: 1 predates deferred pairs.
fn get_recursion(r: &mut Reader<'_>, version: u32) -> Result<RecursionState, CodecError> {
    let (gram, cross, p, k) = (r.f64s()?, r.f64s()?, r.f64s()?, r.f64s()?);
    let solved = r.bool()?;
    let window = if r.bool()? {
        Some(WindowState { regressors: r.f64s()?, targets: r.f64s()?, next: r.usize()?, len: r.usize()? })
    } else {
        None
    };
    let pending = if version >= 2 && r.bool()? {
        Some(PendingState {
            regressors: r.f64s()?,
            targets: r.f64s()?,
            gains: r.f64s()?,
            errors: r.f64s()?,
            beta: r.f64s()?,
            gamma: r.f64s()?,
            sigma: r.f64()?,
        })
    } else {
        None
    };
    Ok(RecursionState {
        gram,
        cross,
        p,
        k,
        solved,
        window,
        pending,
        since_refactor: r.usize()?,
        retry_in: r.usize()?,
        pairs: r.u64()?,
        refactorisations: r.u64()?,
        health_failures: r.u64()?,
    })
}

/// Encodes a stream snapshot.
pub fn encode_snapshot(s: &StreamState) -> Vec<u8> {
    let mut w = Writer::default();
    w.0.extend_from_slice(SNAPSHOT_MAGIC);
    w.0.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    w.u64(s.version);
    w.opt_u64(s.last_seq);
    w.opt_f64(s.last_t);
    w.u64(s.samples);
    w.u64(s.batches);
    let j = &s.rejects;
    for v in [j.invalid, j.queue_full, j.duplicate, j.out_of_order, j.missing_value] {
        w.u64(v);
    }
    let c = &s.estimator.counters;
    for v in [c.samples, c.pairs, c.gaps, c.pairs_skipped, c.refactorisations, c.health_failures] {
        w.u64(v);
    }
    w.bool(s.estimator.after_gap);
    match &s.estimator.phase {
        PhaseState::WarmingUp { states, inputs, chain_starts } => {
            w.u8(0);
            w.f64s(states);
            w.f64s(inputs);
            w.bools(chain_starts);
        }
        PhaseState::Online(o) => {
            w.u8(1);
            w.bool(o.lifting.standardisation.is_some());
            if let Some((mean, scale)) = &o.lifting.standardisation {
                w.f64s(mean);
                w.f64s(scale);
            }
            w.f64s(&o.lifting.rbf_centres);
            w.f64(o.lifting.rbf_width);
            w.f64s(&o.lifting.fourier_w);
            w.f64s(&o.lifting.fourier_b);
            w.f64(o.mu);
            w.f64s(&o.history);
            put_recursion(&mut w, &o.recursion);
            w.f64s(&o.regressor);
            w.bool(o.have_previous);
            w.u64(o.residual_count);
            w.f64s(&o.residual_mean_square);
        }
    }
    w.bool(s.meter.is_some());
    if let Some(m) = &s.meter {
        meter::put_meter(&mut w, m);
    }
    w.u64(s.epoch);
    w.u64(s.recent.len() as u64);
    for (seq, digest) in &s.recent {
        w.u64(*seq);
        w.u64(*digest);
    }
    w.u64(s.rejects.flat_line);
    w.f64s(&s.flat_last);
    w.u64(s.flat_run.len() as u64);
    s.flat_run.iter().for_each(|r| w.u64(*r));
    w.0
}

/// The stream version a snapshot covers, read from its header without decoding the rest.
pub fn snapshot_version(bytes: &[u8]) -> Option<u64> {
    (bytes.len() >= 16 && &bytes[..4] == SNAPSHOT_MAGIC)
        .then(|| u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")))
}

/// Decodes a stream snapshot.
pub fn decode_snapshot(bytes: &[u8]) -> Result<StreamState, CodecError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4)? != SNAPSHOT_MAGIC {
        return Err(CodecError::Malformed("not a koopstream snapshot"));
    }
    let version = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
    if version > SNAPSHOT_VERSION {
        return Err(CodecError::NewerVersion(version));
    }
    let stream_version = r.u64()?;
    let (last_seq, last_t) = (r.opt_u64()?, r.opt_f64()?);
    let (samples, batches) = (r.u64()?, r.u64()?);
    let mut rejects = RejectCounts {
        invalid: r.u64()?,
        queue_full: r.u64()?,
        duplicate: r.u64()?,
        out_of_order: r.u64()?,
        missing_value: r.u64()?,
        flat_line: 0,
    };
    let counters = Counters {
        samples: r.u64()?,
        pairs: r.u64()?,
        gaps: r.u64()?,
        pairs_skipped: r.u64()?,
        refactorisations: r.u64()?,
        health_failures: r.u64()?,
    };
    let after_gap = r.bool()?;
    let phase = match r.u8()? {
        0 => PhaseState::WarmingUp { states: r.f64s()?, inputs: r.f64s()?, chain_starts: r.bools()? },
        1 => {
            let standardisation = if r.bool()? { Some((r.f64s()?, r.f64s()?)) } else { None };
            let lifting = LiftingState {
                standardisation,
                rbf_centres: r.f64s()?,
                rbf_width: r.f64()?,
                fourier_w: r.f64s()?,
                fourier_b: r.f64s()?,
            };
            PhaseState::Online(Box::new(OnlineState {
                lifting,
                mu: r.f64()?,
                history: r.f64s()?,
                recursion: get_recursion(&mut r, version)?,
                regressor: r.f64s()?,
                have_previous: r.bool()?,
                residual_count: r.u64()?,
                residual_mean_square: r.f64s()?,
            }))
        }
        _ => return Err(CodecError::Malformed("phase")),
    };
    // Snapshots before format 3 have no mode meter: the stream's tracks start afresh.
    let meter = if version >= 3 && r.bool()? { Some(meter::get_meter(&mut r)?) } else { None };
    // Before format 4 there are no digests: until new batches arrive, a reused seq is
    // refused as one that cannot be told from a retry.
    let (epoch, recent, flat_last, flat_run) = if version >= 4 {
        let epoch = r.u64()?;
        let count = r.usize()?;
        if count > MAX_RECENT {
            return Err(CodecError::Malformed("recent batches"));
        }
        let recent = (0..count).map(|_| Ok((r.u64()?, r.u64()?))).collect::<Result<Vec<_>, CodecError>>()?;
        rejects.flat_line = r.u64()?;
        // Bounds-checked against the bytes left before anything is allocated.
        let flat_last = r.f64s()?;
        if r.usize()? != flat_last.len() {
            return Err(CodecError::Malformed("flat-line runs"));
        }
        let flat_run = (0..flat_last.len()).map(|_| r.u64()).collect::<Result<Vec<_>, CodecError>>()?;
        (epoch, recent, flat_last, flat_run)
    } else {
        (0, Vec::new(), Vec::new(), Vec::new())
    };
    r.finish()?;
    Ok(StreamState {
        version: stream_version,
        last_seq,
        epoch,
        recent,
        flat_last,
        flat_run,
        last_t,
        samples,
        batches,
        rejects,
        estimator: EstimatorState { counters, after_gap, phase },
        meter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use koopman::{Estimator, EstimatorConfig};

    #[test]
    fn entries_and_snapshots_round_trip_and_damage_is_an_error() {
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

        let mut config =
            EstimatorConfig::new(vec!["a".into(), "b".into()], "state,const,rbf:3,fourier:2,delay:1".parse().unwrap());
        config.warmup = 10;
        config.window = Some(40);
        let mut e = Estimator::new(config).unwrap();
        for k in 0..100 {
            e.push(&[(k as f64 * 0.1).sin(), (k as f64 * 0.13).cos()], &[]).unwrap();
        }
        let state = StreamState {
            version: 3,
            last_seq: Some(9),
            epoch: 2,
            recent: vec![(8, 0x1111), (9, 0x2222)],
            flat_last: vec![0.5, 2.0],
            flat_run: vec![12, 1],
            last_t: Some(9.9),
            samples: 100,
            batches: 3,
            rejects: RejectCounts { duplicate: 4, flat_line: 7, ..Default::default() },
            estimator: e.export_state(),
            meter: None,
        };
        let bytes = encode_snapshot(&state);
        assert_eq!(decode_snapshot(&bytes).unwrap(), state);
        assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
        let mut newer = bytes.clone();
        newer[4] = 99;
        assert_eq!(decode_snapshot(&newer).unwrap_err(), CodecError::NewerVersion(99));
        // A snapshot of format 3 (no epoch, no digests) reads back with epoch 0 and none
        // kept; one of format 2 (no meter section either) the same, without a meter.
        let before_epochs = StreamState {
            epoch: 0,
            recent: Vec::new(),
            flat_last: Vec::new(),
            flat_run: Vec::new(),
            rejects: RejectCounts { flat_line: 0, ..state.rejects },
            ..state.clone()
        };
        let trailer = 8 + 8 + 2 * 16 + 8 + (8 + 2 * 8) + (8 + 2 * 8);
        let mut old = bytes[..bytes.len() - trailer].to_vec();
        old[4] = 3;
        assert_eq!(decode_snapshot(&old).unwrap(), before_epochs);
        old.pop();
        old[4] = 2;
        assert_eq!(decode_snapshot(&old).unwrap(), before_epochs);
        // A count of kept digests beyond the bound is damage, not an allocation.
        let mut huge = bytes.clone();
        let count_at = bytes.len() - 2 * 16 - 8 - (8 + (8 + 2 * 8) + (8 + 2 * 8));
        huge[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_snapshot(&huge).is_err());
    }

    #[test]
    fn the_mode_meter_round_trips_with_its_tracks_detectors_and_history() {
        use ::meter::{AlarmRecord, Candidate, Detector, Meter, MeterSettings, Reading, Severity, Track};
        use koopman::c64;
        let reading = |z: f64| Reading {
            frequency_hz: 0.38,
            damping_ratio: z,
            frequency_ci95: (0.37, 0.39),
            damping_ci95: (z - 0.01, z + 0.01),
        };
        let mut meter = Meter::new(MeterSettings::default());
        meter.next_id = 5;
        meter.last_t = Some(600.0);
        meter.tracks.push(Track {
            id: 3,
            born: true,
            seen: 12,
            missed: 1,
            first_seen_t: 20.0,
            last: Candidate {
                index: 4,
                s: c64::new(-0.1, 2.4),
                frequency_hz: 0.38,
                damping_ratio: 0.02,
                frequency_ci95: Some((0.37, 0.39)),
                damping_ci95: None,
                energy: 0.4,
                shape: vec![c64::new(1.0, 0.0), c64::new(-0.3, 0.2)],
            },
            detector: Detector {
                active: Some(Severity::Critical),
                pending: Some((None, 590.0)),
                reference: Some(reading(0.02)),
                outside_since: None,
            },
        });
        meter.history.push_back(AlarmRecord {
            mode: 3,
            severity: Severity::Warning,
            since_t: 100.0,
            onset: reading(0.04),
            until_t: Some(130.0),
            clearing: Some(reading(0.025)),
        });
        meter.history.push_back(AlarmRecord {
            mode: 3,
            severity: Severity::Critical,
            since_t: 130.0,
            onset: reading(0.025),
            until_t: None,
            clearing: None,
        });
        let state = StreamState {
            version: 1,
            last_seq: None,
            epoch: 0,
            recent: Vec::new(),
            flat_last: Vec::new(),
            flat_run: Vec::new(),
            last_t: None,
            samples: 0,
            batches: 0,
            rejects: RejectCounts::default(),
            estimator: Estimator::new(EstimatorConfig::new(vec!["a".into()], "state".parse().unwrap()))
                .unwrap()
                .export_state(),
            meter: Some(meter),
        };
        let bytes = encode_snapshot(&state);
        assert_eq!(decode_snapshot(&bytes).unwrap(), state);
        for cut in 0..bytes.len() {
            assert!(decode_snapshot(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
