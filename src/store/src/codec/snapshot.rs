//! Stream snapshots: the exact state of a stream (the estimator's sums, P, K and buffers,
//! its counters and watermarks, the mode meter) in a versioned binary form, and the
//! readers of every older format that is still accepted.

use koopman::{
    Counters, EstimatorState, LiftingState, OnlineState, PendingState, PhaseState, RecursionState, WindowState,
};

use domain::outlier::GateState;
use domain::snapshot::RejectCounts;

use super::debiased::{get_debiased, put_debiased};
use super::{CodecError, Reader, StreamState, Writer, meter};

/// Version of the snapshot encoding; a newer one is refused. 3 adds the mode meter, 4 the
/// producer epoch, the digests of the latest batches and the flat-line runs, 5 the outlier
/// gate (its count, scale, run and reopenings), 6 the statistics of the correlation and
/// instrumental-variable estimators.
pub const SNAPSHOT_VERSION: u32 = 6;
/// At most this many (seq, digest) pairs are read back from a snapshot.
const MAX_RECENT: usize = domain::watermark::RECENT_BATCHES;
const SNAPSHOT_MAGIC: &[u8; 4] = b"KSS\0";

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
    w.u64(s.rejects.outlier);
    let gate = &s.outlier_gate;
    w.f64s(&gate.mean_square);
    for v in [gate.learned, gate.consecutive, gate.reopened] {
        w.u64(v);
    }
    let debiased = match &s.estimator.phase {
        PhaseState::Online(online) => online.debiased.as_ref(),
        PhaseState::WarmingUp { .. } => None,
    };
    put_debiased(&mut w, debiased);
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
        outlier: 0,
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
                debiased: None,
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
    // Before format 5 there is no outlier gate: its scale seeds again.
    let outlier_gate = if version >= 5 {
        rejects.outlier = r.u64()?;
        GateState { mean_square: r.f64s()?, learned: r.u64()?, consecutive: r.u64()?, reopened: r.u64()? }
    } else {
        GateState::default()
    };
    // Before format 6 every stream is ridge.
    let mut phase = phase;
    if version >= 6
        && let Some(state) = get_debiased(&mut r)?
    {
        match &mut phase {
            PhaseState::Online(online) => online.debiased = Some(state),
            PhaseState::WarmingUp { .. } => return Err(CodecError::Malformed("method statistics while warming up")),
        }
    }
    r.finish()?;
    Ok(StreamState {
        version: stream_version,
        last_seq,
        epoch,
        recent,
        flat_last,
        flat_run,
        outlier_gate,
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
    fn snapshots_round_trip_older_formats_read_back_and_damage_is_an_error() {
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
            outlier_gate: GateState { mean_square: vec![0.25, 1e-3], learned: 420, consecutive: 3, reopened: 1 },
            last_t: Some(9.9),
            samples: 100,
            batches: 3,
            rejects: RejectCounts { duplicate: 4, flat_line: 7, outlier: 5, ..Default::default() },
            estimator: e.export_state(),
            meter: None,
        };
        let bytes = encode_snapshot(&state);
        assert_eq!(decode_snapshot(&bytes).unwrap(), state);
        assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
        let mut newer = bytes.clone();
        newer[4] = 99;
        assert_eq!(decode_snapshot(&newer).unwrap_err(), CodecError::NewerVersion(99));
        // A snapshot of format 5 (no method section: a ridge stream) reads back the same.
        let mut bytes = bytes[..bytes.len() - 1].to_vec();
        bytes[4] = 5;
        assert_eq!(decode_snapshot(&bytes).unwrap(), state);
        // A snapshot of format 4 (no outlier gate) reads back with none: its count 0, its
        // scale empty (the stream seeds it again).
        let gate_trailer = 8 + (8 + 2 * 8) + 3 * 8;
        let before_gate = StreamState {
            outlier_gate: GateState::default(),
            rejects: RejectCounts { outlier: 0, ..state.rejects },
            ..state.clone()
        };
        let mut format_4 = bytes[..bytes.len() - gate_trailer].to_vec();
        format_4[4] = 4;
        assert_eq!(decode_snapshot(&format_4).unwrap(), before_gate);
        let bytes = &bytes[..bytes.len() - gate_trailer];
        // A snapshot of format 3 (no epoch, no digests) reads back with epoch 0 and none
        // kept; one of format 2 (no meter section either) the same, without a meter.
        let before_epochs = StreamState {
            epoch: 0,
            recent: Vec::new(),
            flat_last: Vec::new(),
            flat_run: Vec::new(),
            rejects: RejectCounts { flat_line: 0, ..before_gate.rejects },
            ..before_gate.clone()
        };
        let trailer = 8 + 8 + 2 * 16 + 8 + (8 + 2 * 8) + (8 + 2 * 8);
        let mut old = bytes[..bytes.len() - trailer].to_vec();
        old[4] = 3;
        assert_eq!(decode_snapshot(&old).unwrap(), before_epochs);
        old.pop();
        old[4] = 2;
        assert_eq!(decode_snapshot(&old).unwrap(), before_epochs);
        // A count of kept digests beyond the bound is damage, not an allocation.
        let mut huge = format_4.clone();
        let count_at = bytes.len() - 2 * 16 - 8 - (8 + (8 + 2 * 8) + (8 + 2 * 8));
        huge[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_snapshot(&huge).is_err());
    }

    #[test]
    fn the_statistics_of_every_method_round_trip() {
        use koopman::Method;
        for method in [Method::Correlation { lags: 12, rank: Some(3) }, Method::InstrumentalVariable { delay: 2 }] {
            let mut config = EstimatorConfig::new(vec!["a".into(), "b".into()], "state,const,delay:1".parse().unwrap());
            config.warmup = 10;
            config.method = method;
            let mut e = Estimator::new(config).unwrap();
            for k in 0..200 {
                e.push(&[(k as f64 * 0.1).sin(), (k as f64 * 0.13).cos() + (k as f64 * 0.7).sin()], &[]).unwrap();
            }
            let state = StreamState {
                version: 1,
                last_seq: None,
                epoch: 0,
                recent: Vec::new(),
                flat_last: Vec::new(),
                flat_run: Vec::new(),
                outlier_gate: GateState::default(),
                last_t: None,
                samples: 200,
                batches: 1,
                rejects: RejectCounts::default(),
                estimator: e.export_state(),
                meter: None,
            };
            let PhaseState::Online(online) = &state.estimator.phase else { panic!("online") };
            assert!(online.debiased.is_some());
            let bytes = encode_snapshot(&state);
            assert_eq!(decode_snapshot(&bytes).unwrap(), state, "{method:?}");
            assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
            let mut unknown = bytes.clone();
            // The method section is the snapshot's tail; its first byte is the tag.
            let mut section = Writer::default();
            put_debiased(&mut section, online.debiased.as_ref());
            let tag_at = bytes.len() - section.0.len();
            assert_eq!(bytes[tag_at], if matches!(method, Method::Correlation { .. }) { 1 } else { 2 });
            unknown[tag_at] = 7;
            assert!(decode_snapshot(&unknown).is_err());
        }
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
            outlier_gate: GateState::default(),
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
