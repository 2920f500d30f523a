//! The mode meter's part of a snapshot (format 3): its tracks with their detectors, the
//! alarm history and the next id, so tracks, ids and alarms continue across a restart. The
//! settings are not stored: they come from the stream's definition.

use koopman::c64;
use meter::{AlarmRecord, Candidate, Detector, Meter, MeterSettings, Reading, Severity, Track};

use super::{CodecError, Reader, Writer};

/// Most tracks and alarm records a snapshot may hold (far above what a meter keeps: a
/// damaged count must not allocate).
const MAX_ITEMS: usize = 1 << 16;

fn put_severity(w: &mut Writer, s: Option<Severity>) {
    w.u8(match s {
        None => 0,
        Some(Severity::Warning) => 1,
        Some(Severity::Critical) => 2,
    });
}

fn get_severity(r: &mut Reader<'_>) -> Result<Option<Severity>, CodecError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(Severity::Warning)),
        2 => Ok(Some(Severity::Critical)),
        _ => Err(CodecError::Malformed("alarm severity")),
    }
}

fn put_reading(w: &mut Writer, r: &Reading) {
    for v in
        [r.frequency_hz, r.damping_ratio, r.frequency_ci95.0, r.frequency_ci95.1, r.damping_ci95.0, r.damping_ci95.1]
    {
        w.f64(v);
    }
}

fn get_reading(r: &mut Reader<'_>) -> Result<Reading, CodecError> {
    Ok(Reading {
        frequency_hz: r.f64()?,
        damping_ratio: r.f64()?,
        frequency_ci95: (r.f64()?, r.f64()?),
        damping_ci95: (r.f64()?, r.f64()?),
    })
}

fn put_interval(w: &mut Writer, i: Option<(f64, f64)>) {
    w.bool(i.is_some());
    let (a, b) = i.unwrap_or_default();
    w.f64(a);
    w.f64(b);
}

fn get_interval(r: &mut Reader<'_>) -> Result<Option<(f64, f64)>, CodecError> {
    let some = r.bool()?;
    let (a, b) = (r.f64()?, r.f64()?);
    Ok(some.then_some((a, b)))
}

fn count(r: &mut Reader<'_>) -> Result<usize, CodecError> {
    let n = r.usize()?;
    if n > MAX_ITEMS { Err(CodecError::Malformed("meter item count")) } else { Ok(n) }
}

fn put_candidate(w: &mut Writer, c: &Candidate) {
    w.u64(c.index as u64);
    w.f64(c.s.re);
    w.f64(c.s.im);
    w.f64(c.frequency_hz);
    w.f64(c.damping_ratio);
    put_interval(w, c.frequency_ci95);
    put_interval(w, c.damping_ci95);
    w.f64(c.energy);
    let flat: Vec<f64> = c.shape.iter().flat_map(|v| [v.re, v.im]).collect();
    w.f64s(&flat);
}

fn get_candidate(r: &mut Reader<'_>) -> Result<Candidate, CodecError> {
    let index = r.usize()?;
    let s = c64::new(r.f64()?, r.f64()?);
    let (frequency_hz, damping_ratio) = (r.f64()?, r.f64()?);
    let (frequency_ci95, damping_ci95) = (get_interval(r)?, get_interval(r)?);
    let energy = r.f64()?;
    let flat = r.f64s()?;
    if flat.len() % 2 != 0 {
        return Err(CodecError::Malformed("mode shape"));
    }
    let shape = flat.chunks_exact(2).map(|p| c64::new(p[0], p[1])).collect();
    Ok(Candidate { index, s, frequency_hz, damping_ratio, frequency_ci95, damping_ci95, energy, shape })
}

fn put_detector(w: &mut Writer, d: &Detector) {
    put_severity(w, d.active);
    w.bool(d.pending.is_some());
    let (level, since) = d.pending.unwrap_or((None, 0.0));
    put_severity(w, level);
    w.f64(since);
    w.bool(d.reference.is_some());
    if let Some(reference) = &d.reference {
        put_reading(w, reference);
    }
    w.opt_f64(d.outside_since);
}

fn get_detector(r: &mut Reader<'_>) -> Result<Detector, CodecError> {
    let active = get_severity(r)?;
    let has_pending = r.bool()?;
    let (level, since) = (get_severity(r)?, r.f64()?);
    let reference = if r.bool()? { Some(get_reading(r)?) } else { None };
    Ok(Detector { active, pending: has_pending.then_some((level, since)), reference, outside_since: r.opt_f64()? })
}

/// Appends a meter's state.
pub(super) fn put_meter(w: &mut Writer, m: &Meter) {
    w.u64(m.next_id);
    w.opt_f64(m.last_t);
    w.u64(m.tracks.len() as u64);
    for t in &m.tracks {
        w.u64(t.id);
        w.bool(t.born);
        w.u64(u64::from(t.seen));
        w.u64(u64::from(t.missed));
        w.f64(t.first_seen_t);
        put_candidate(w, &t.last);
        put_detector(w, &t.detector);
    }
    w.u64(m.history.len() as u64);
    for a in &m.history {
        w.u64(a.mode);
        put_severity(w, Some(a.severity));
        w.f64(a.since_t);
        put_reading(w, &a.onset);
        w.opt_f64(a.until_t);
        w.bool(a.clearing.is_some());
        if let Some(clearing) = &a.clearing {
            put_reading(w, clearing);
        }
    }
}

/// Reads a meter's state back (with default settings: the owner applies the definition's).
pub(super) fn get_meter(r: &mut Reader<'_>) -> Result<Meter, CodecError> {
    let mut meter = Meter::new(MeterSettings::default());
    meter.next_id = r.u64()?;
    meter.last_t = r.opt_f64()?;
    for _ in 0..count(r)? {
        let id = r.u64()?;
        let born = r.bool()?;
        let seen = u32::try_from(r.u64()?).map_err(|_| CodecError::Malformed("track count"))?;
        let missed = u32::try_from(r.u64()?).map_err(|_| CodecError::Malformed("track count"))?;
        let first_seen_t = r.f64()?;
        let last = get_candidate(r)?;
        let detector = get_detector(r)?;
        meter.tracks.push(Track { id, born, seen, missed, first_seen_t, last, detector });
    }
    for _ in 0..count(r)? {
        let mode = r.u64()?;
        let severity = get_severity(r)?.ok_or(CodecError::Malformed("alarm severity"))?;
        let since_t = r.f64()?;
        let onset = get_reading(r)?;
        let until_t = r.opt_f64()?;
        let clearing = if r.bool()? { Some(get_reading(r)?) } else { None };
        meter.history.push_back(AlarmRecord { mode, severity, since_t, onset, until_t, clearing });
    }
    Ok(meter)
}
