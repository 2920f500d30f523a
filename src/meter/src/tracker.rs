//! Tracks: stable ids for the candidates of successive refreshes, births and deaths, and
//! the meter that runs classification, tracking and alarms for one stream.
//!
//! Assignment is greedy on a cost of relative continuous-eigenvalue distance plus
//! (1 - shape MAC), within gates on both: with the few candidates a band holds, the greedy
//! match equals the optimal one except in contrived ties, and it cannot swap two modes
//! whose frequencies cross while their shapes differ.

use std::collections::VecDeque;

use koopman::c64;
use koopman::spectrum::ModeEstimate;

use crate::alarm::{AlarmEvent, AlarmRecord, Detector, Reading, Severity};
use crate::classify::{Candidate, Verdict, classify, mac};
use crate::settings::MeterSettings;

/// Alarm records kept per stream.
pub const ALARM_HISTORY: usize = 256;

/// One track.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Id, never reused within a meter's life.
    pub id: u64,
    /// Seen in `persist` consecutive refreshes at some point: a physical mode.
    pub born: bool,
    /// Consecutive refreshes with a match.
    pub seen: u32,
    /// Consecutive refreshes without one.
    pub missed: u32,
    /// Stream time of the first match.
    pub first_seen_t: f64,
    /// The latest matched candidate.
    pub last: Candidate,
    /// Alarm and change detectors.
    pub detector: Detector,
}

/// A physical mode as readers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedMode {
    /// Track id.
    pub id: u64,
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio.
    pub damping_ratio: f64,
    /// 95 % interval of the frequency.
    pub frequency_ci95: Option<(f64, f64)>,
    /// 95 % interval of the damping ratio.
    pub damping_ci95: Option<(f64, f64)>,
    /// Energy share of the pair.
    pub energy: f64,
    /// Shape on the measured channels.
    pub shape: Vec<c64>,
    /// Stream time of the first match.
    pub first_seen_t: f64,
    /// Active alarm.
    pub alarm: Option<Severity>,
    /// Whether it was matched in the latest refresh (false while it is missing).
    pub current: bool,
}

/// What a refresh changed.
#[derive(Debug, Clone, PartialEq)]
pub enum MeterEvent {
    /// A track became a physical mode.
    Born {
        /// Id.
        mode: u64,
    },
    /// A physical mode's track died.
    Died {
        /// Id.
        mode: u64,
    },
    /// An alarm or change event.
    Alarm(AlarmEvent),
}

/// The outcome of one refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct Refresh {
    /// One verdict per analysed eigenvalue, with the track it matched.
    pub verdicts: Vec<(Verdict, Option<u64>)>,
    /// What changed.
    pub events: Vec<MeterEvent>,
}

/// The mode meter of one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Meter {
    /// Settings.
    pub settings: MeterSettings,
    /// The next id.
    pub next_id: u64,
    /// Live tracks.
    pub tracks: Vec<Track>,
    /// Alarm history, oldest first, at most [`ALARM_HISTORY`].
    pub history: VecDeque<AlarmRecord>,
    /// Stream time of the latest refresh.
    pub last_t: Option<f64>,
}

impl Meter {
    /// A meter with no tracks.
    pub fn new(settings: MeterSettings) -> Self {
        Self { settings, next_id: 1, tracks: Vec::new(), history: VecDeque::new(), last_t: None }
    }

    /// Takes the analysed modes of a model whose newest sample is at stream time `t`.
    /// `channel_scale` holds each measured channel's scale in its own unit (the row norms
    /// of the output map, [`koopman::spectrum::channel_scale`]; empty: all alike): shapes
    /// are compared with each channel divided by it, so channels in large units (angles in
    /// radians beside speeds in per unit) do not decide a match alone.
    pub fn refresh(&mut self, t: f64, ts: f64, modes: &[ModeEstimate], channel_scale: &[f64]) -> Refresh {
        let classified = classify(modes, ts, &self.settings);
        let mut verdicts: Vec<(Verdict, Option<u64>)> = classified.verdicts.iter().map(|v| (*v, None)).collect();
        let mut events = Vec::new();
        // Strong candidates first, then the weak ones (which only continue tracks).
        let pool: Vec<&Candidate> = classified.candidates.iter().chain(&classified.weak).collect();
        let assignment = assign(&self.tracks, &pool, classified.candidates.len(), channel_scale, &self.settings);
        let mut matched_candidate = vec![false; pool.len()];
        let mut survivors = Vec::with_capacity(self.tracks.len());
        for (track_index, mut track) in std::mem::take(&mut self.tracks).into_iter().enumerate() {
            match assignment[track_index] {
                Some(c) => {
                    matched_candidate[c] = true;
                    track.last = pool[c].clone();
                    track.seen += 1;
                    track.missed = 0;
                    verdicts[track.last.index] = (Verdict::Candidate, Some(track.id));
                }
                None => {
                    track.seen = 0;
                    track.missed += 1;
                    if track.missed >= self.settings.miss {
                        if track.born {
                            events.push(MeterEvent::Died { mode: track.id });
                            if track.detector.active.is_some() {
                                self.close_alarm(track.id, t, reading_of(&track.last));
                            }
                        }
                        continue;
                    }
                }
            }
            survivors.push(track);
        }
        for (c, candidate) in classified.candidates.iter().enumerate() {
            if matched_candidate[c] {
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            verdicts[candidate.index].1 = Some(id);
            survivors.push(Track {
                id,
                born: false,
                seen: 1,
                missed: 0,
                first_seen_t: t,
                last: candidate.clone(),
                detector: Detector::new(),
            });
        }
        for track in &mut survivors {
            if !track.born && track.seen >= self.settings.persist {
                track.born = true;
                events.push(MeterEvent::Born { mode: track.id });
            }
        }
        let alarm_settings = self.settings.alarm;
        let mut alarm_events = Vec::new();
        for track in survivors.iter_mut().filter(|t| t.born && t.missed == 0) {
            alarm_events.extend(track.detector.observe(track.id, t, reading_of(&track.last), &alarm_settings));
        }
        self.tracks = survivors;
        for event in alarm_events {
            if let AlarmEvent::Alarm { mode, from, to, t, reading } = &event {
                if from.is_some() {
                    self.close_alarm(*mode, *t, *reading);
                }
                if let Some(severity) = to {
                    self.push_record(AlarmRecord {
                        mode: *mode,
                        severity: *severity,
                        since_t: *t,
                        onset: *reading,
                        until_t: None,
                        clearing: None,
                    });
                }
            }
            events.push(MeterEvent::Alarm(event));
        }
        self.last_t = Some(t);
        Refresh { verdicts, events }
    }

    fn push_record(&mut self, record: AlarmRecord) {
        if self.history.len() == ALARM_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(record);
    }

    fn close_alarm(&mut self, mode: u64, t: f64, reading: Reading) {
        if let Some(record) = self.history.iter_mut().rev().find(|r| r.mode == mode && r.until_t.is_none()) {
            record.until_t = Some(t);
            record.clearing = Some(reading);
        }
    }

    /// The physical modes, least damped first, at most `max`.
    pub fn physical(&self) -> Vec<TrackedMode> {
        let mut modes: Vec<TrackedMode> = self
            .tracks
            .iter()
            .filter(|t| t.born)
            .map(|t| TrackedMode {
                id: t.id,
                frequency_hz: t.last.frequency_hz,
                damping_ratio: t.last.damping_ratio,
                frequency_ci95: t.last.frequency_ci95,
                damping_ci95: t.last.damping_ci95,
                energy: t.last.energy,
                shape: t.last.shape.clone(),
                first_seen_t: t.first_seen_t,
                alarm: t.detector.active,
                current: t.missed == 0,
            })
            .collect();
        modes.sort_by(|a, b| {
            a.damping_ratio.total_cmp(&b.damping_ratio).then(a.frequency_hz.total_cmp(&b.frequency_hz))
        });
        modes.truncate(self.settings.max);
        modes
    }

    /// Active alarms (the open records of the history).
    pub fn active_alarms(&self) -> Vec<AlarmRecord> {
        self.history.iter().filter(|r| r.until_t.is_none()).cloned().collect()
    }
}

fn reading_of(c: &Candidate) -> Reading {
    Reading {
        frequency_hz: c.frequency_hz,
        damping_ratio: c.damping_ratio,
        frequency_ci95: c.frequency_ci95.unwrap_or((c.frequency_hz, c.frequency_hz)),
        damping_ci95: c.damping_ci95.unwrap_or((c.damping_ratio, c.damping_ratio)),
    }
}

/// `shape` with each channel divided by its scale (unchanged without usable scales).
fn balanced(shape: &[c64], channel_scale: &[f64]) -> Vec<c64> {
    if channel_scale.len() != shape.len() || channel_scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return shape.to_vec();
    }
    shape.iter().zip(channel_scale).map(|(v, s)| *v / *s).collect()
}

/// For each track, the candidate it takes (greedy by cost within the gates).
/// Candidates from index `strong` on are weak: only a born track may take one, so a mode
/// is never born on energy below the minimum.
fn assign(
    tracks: &[Track],
    candidates: &[&Candidate],
    strong: usize,
    channel_scale: &[f64],
    settings: &MeterSettings,
) -> Vec<Option<usize>> {
    let candidate_shapes: Vec<Vec<c64>> = candidates.iter().map(|c| balanced(&c.shape, channel_scale)).collect();
    let mut pairs = Vec::new();
    for (i, track) in tracks.iter().enumerate() {
        let reference = track.last.s;
        let track_shape = balanced(&track.last.shape, channel_scale);
        for (j, c) in candidates.iter().enumerate() {
            if j >= strong && !track.born {
                continue;
            }
            let distance = (c.s - reference).norm() / reference.norm().max(f64::MIN_POSITIVE);
            let similarity = mac(&track_shape, &candidate_shapes[j]);
            if distance <= settings.max_distance && similarity >= settings.min_mac {
                pairs.push((distance + (1.0 - similarity), i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut by_track = vec![None; tracks.len()];
    let mut taken = vec![false; candidates.len()];
    for (_, i, j) in pairs {
        if by_track[i].is_none() && !taken[j] {
            by_track[i] = Some(j);
            taken[j] = true;
        }
    }
    by_track
}

#[cfg(test)]
mod tests {
    use super::*;
    use koopman::spectrum::{Continuous, Mode, ModeFlags};

    /// A pair of modes at `f` Hz with damping `zeta` and the given shape, as the analysis
    /// reports them (both conjugates), each pair carrying `energy`.
    fn pair(f: f64, zeta: f64, shape: [f64; 2], energy: f64, ts: f64) -> Vec<ModeEstimate> {
        let omega = std::f64::consts::TAU * f;
        let s = c64::new(-zeta * omega / (1.0 - zeta * zeta).sqrt(), omega);
        [s, s.conj()]
            .into_iter()
            .map(|s| {
                let lambda = (s * ts).exp();
                ModeEstimate {
                    mode: Mode {
                        eigenvalue: lambda,
                        continuous: Continuous::of(lambda, ts),
                        flags: ModeFlags::default(),
                        shape: shape.iter().map(|v| c64::new(*v, 0.0)).collect(),
                        participation: vec![0.5, 0.5],
                        eigenfunction: vec![],
                    },
                    energy: energy / 2.0,
                    eigenvalue_cov: None,
                    frequency_ci95: Some((f - 0.01, f + 0.01)),
                    damping_ci95: Some((zeta - 0.005, zeta + 0.005)),
                    bias_corrected: false,
                }
            })
            .collect()
    }

    #[test]
    fn ids_follow_shapes_when_frequencies_cross() {
        let ts = 0.1;
        let mut meter = Meter::new(MeterSettings::default());
        let mut ids_by_shape = std::collections::BTreeMap::new();
        // Mode A (shape [1, 0.1]) rises from 0.40 to 0.60 Hz while mode B (shape [0.1, 1])
        // falls from 0.60 to 0.40 Hz; they cross at step 10.
        for step in 0..=20 {
            let fa = 0.40 + 0.01 * step as f64;
            let fb = 0.60 - 0.01 * step as f64;
            let mut modes = pair(fa, 0.1, [1.0, 0.1], 0.3, ts);
            modes.extend(pair(fb, 0.1, [0.1, 1.0], 0.3, ts));
            let refresh = meter.refresh(step as f64, ts, &modes, &[]);
            for (k, (verdict, id)) in refresh.verdicts.iter().enumerate() {
                if *verdict == Verdict::Candidate {
                    let shape_key = if modes[k].mode.shape[0].re > 0.5 { "A" } else { "B" };
                    let id = id.expect("every candidate has a track");
                    assert_eq!(
                        *ids_by_shape.entry(shape_key).or_insert(id),
                        id,
                        "step {step}: {shape_key} kept its id"
                    );
                }
            }
        }
        assert_eq!(ids_by_shape.len(), 2);
        let physical = meter.physical();
        assert_eq!(physical.len(), 2);
        assert!(physical.iter().all(|m| m.current && m.first_seen_t == 0.0));
    }

    #[test]
    fn births_need_persistence_deaths_need_absence_and_ids_are_not_reused() {
        let ts = 0.1;
        let mut meter = Meter::new(MeterSettings::default());
        let modes = pair(0.5, 0.1, [1.0, 0.2], 0.5, ts);
        assert!(meter.refresh(0.0, ts, &modes, &[]).events.is_empty());
        assert!(meter.refresh(1.0, ts, &modes, &[]).events.is_empty());
        assert!(meter.physical().is_empty(), "not yet persistent");
        assert_eq!(meter.refresh(2.0, ts, &modes, &[]).events, vec![MeterEvent::Born { mode: 1 }]);
        for t in 3..5 {
            assert!(meter.refresh(t as f64, ts, &[], &[]).events.is_empty());
            assert_eq!(meter.physical().len(), 1, "missing, not yet dead");
            assert!(!meter.physical()[0].current);
        }
        assert_eq!(meter.refresh(5.0, ts, &[], &[]).events, vec![MeterEvent::Died { mode: 1 }]);
        meter.refresh(6.0, ts, &modes, &[]);
        assert_eq!(meter.tracks[0].id, 2, "a new track, a new id");
    }

    #[test]
    fn a_tracked_mode_keeps_its_id_through_an_energy_dip_a_new_weak_one_gets_none() {
        let ts = 0.1;
        let mut meter = Meter::new(MeterSettings::default());
        // Default minimum 0.5 %: the tracked mode dips to 0.3 % (above half the minimum)
        // for five refreshes, longer than `miss`; a second mode at 0.3 % appears meanwhile.
        let strong = |f: f64| pair(f, 0.08, [1.0, 0.2], 0.01, ts);
        for t in 0..3 {
            meter.refresh(t as f64, ts, &strong(0.78), &[]);
        }
        assert_eq!(meter.physical().len(), 1);
        for t in 3..8 {
            let mut modes = pair(0.781, 0.08, [1.0, 0.2], 0.003, ts);
            modes.extend(pair(0.4, 0.1, [0.1, 1.0], 0.003, ts));
            let refresh = meter.refresh(t as f64, ts, &modes, &[]);
            assert_eq!(refresh.verdicts[0], (Verdict::Candidate, Some(1)), "t = {t}: the dip keeps track 1");
            assert_eq!(refresh.verdicts[2], (Verdict::LowEnergy, None), "t = {t}: a weak newcomer starts nothing");
        }
        assert_eq!(meter.tracks.len(), 1);
        assert!(meter.physical()[0].current);
        // A track not yet born does not live on weak eigenvalues: it is missing instead.
        let mut young = Meter::new(MeterSettings::default());
        young.refresh(0.0, ts, &strong(0.5), &[]);
        let refresh = young.refresh(1.0, ts, &pair(0.5, 0.08, [1.0, 0.2], 0.003, ts), &[]);
        assert_eq!(refresh.verdicts[0], (Verdict::LowEnergy, None));
        assert_eq!(young.tracks[0].missed, 1);
        // Below half the minimum it is missing, and dies after `miss` refreshes.
        for t in 8..11 {
            meter.refresh(t as f64, ts, &pair(0.781, 0.08, [1.0, 0.2], 0.002, ts), &[]);
        }
        assert!(meter.tracks.is_empty());
    }

    #[test]
    fn shapes_are_compared_per_channel_scale() {
        // Two channels in a large unit (scale 100) whose noisy parts swing in opposite
        // directions between refreshes, and eight consistent channels in a small unit. Raw,
        // the large channels decide the MAC (about 0, no match); divided by the scales, all
        // ten count alike (MAC 0.64, a match).
        let ts = 0.1;
        let with_shape = |first: [f64; 2]| {
            let mut modes = pair(0.5, 0.1, [1.0, 0.0], 0.3, ts);
            for m in &mut modes {
                m.mode.shape = first.iter().chain(&[1.0; 8]).map(|v| c64::new(*v, 0.0)).collect();
            }
            modes
        };
        let scale: Vec<f64> = [100.0, 100.0].into_iter().chain([1.0; 8]).collect();
        for (channel_scale, same_track) in [(&scale[..], true), (&[][..], false)] {
            let mut meter = Meter::new(MeterSettings::default());
            meter.refresh(0.0, ts, &with_shape([100.0, 100.0]), channel_scale);
            let refresh = meter.refresh(1.0, ts, &with_shape([100.0, -100.0]), channel_scale);
            assert_eq!(refresh.verdicts[0].1 == Some(1), same_track, "scales given: {}", !channel_scale.is_empty());
        }
    }

    #[test]
    fn noise_modes_are_not_candidates() {
        let ts = 0.1;
        let settings = MeterSettings { band_hz: Some((0.1, 2.0)), ..MeterSettings::default() };
        // Out of band (3 Hz), low energy (0.1 %), and a negative real eigenvalue.
        let mut modes = pair(3.0, 0.1, [1.0, 0.0], 0.5, ts);
        modes.extend(pair(0.5, 0.1, [1.0, 0.0], 0.001, ts));
        let classified = classify(&modes, ts, &settings);
        assert!(classified.candidates.is_empty());
        assert_eq!(classified.verdicts[0], Verdict::OutOfBand);
        assert_eq!(classified.verdicts[1], Verdict::ConjugateTwin);
        assert_eq!(classified.verdicts[2], Verdict::LowEnergy);
    }

    #[test]
    fn an_alarm_is_recorded_and_closed_in_the_history() {
        let ts = 0.1;
        let mut meter = Meter::new(MeterSettings::default());
        let mut t = 0.0;
        let mut raised = None;
        while t < 100.0 {
            let events = meter.refresh(t, ts, &pair(0.38, 0.01, [1.0, 0.3], 0.4, ts), &[]).events;
            if events
                .iter()
                .any(|e| matches!(e, MeterEvent::Alarm(AlarmEvent::Alarm { to: Some(Severity::Critical), .. })))
            {
                raised = Some(t);
            }
            t += 5.0;
        }
        // Born at t = 10 (third refresh), first reading then, critical 30 s later.
        assert_eq!(raised, Some(40.0));
        assert_eq!(meter.active_alarms().len(), 1);
        assert_eq!(meter.physical()[0].alarm, Some(Severity::Critical));
        while t < 200.0 {
            meter.refresh(t, ts, &pair(0.38, 0.12, [1.0, 0.3], 0.4, ts), &[]);
            t += 5.0;
        }
        assert!(meter.active_alarms().is_empty());
        let record = &meter.history[0];
        assert_eq!(record.severity, Severity::Critical);
        assert!(record.until_t.is_some() && record.clearing.is_some());
    }
}
