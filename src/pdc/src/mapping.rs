//! From a C37.118.2 data frame to one sample of a stream: each stream channel resolved once
//! against the configuration in force (which PMU, which value), the STAT word and absent
//! values turned into a missing sample with its reason, and angles unwrapped across frames.

use c37118::{Config, DataError, DataFrame, PhasorKind, PmuData};
use domain::source::{C37118Source, PmuRef, Quantity};

/// Why a sample is missing (the first reason found, in this order of precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingReason {
    /// STAT flagged a data error.
    DataError,
    /// STAT said the PMU's clock is not synchronised.
    SyncLost,
    /// STAT said the clock has been unlocked for 10 s or more.
    Unlocked,
    /// A mapped value was absent (NaN).
    MissingValue,
}

impl MissingReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            MissingReason::DataError => "data_error",
            MissingReason::SyncLost => "sync_lost",
            MissingReason::Unlocked => "unlocked",
            MissingReason::MissingValue => "missing_value",
        }
    }
}

/// Why the configuration cannot feed the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// No PMU of the configuration matches.
    #[error("channel `{channel}`: the configuration has no PMU with {pmu}")]
    NoPmu { channel: String, pmu: String },
    /// The PMU has no such phasor, analog or voltage phasor.
    #[error("channel `{channel}`: PMU `{station}` has no {what}")]
    NoValue { channel: String, station: String, what: String },
}

/// Where one stream channel's value is read from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    /// The frequency, with the PMU's nominal frequency.
    Freq(f64),
    Rocof,
    Angle(usize),
    Magnitude(usize),
    Analog(usize),
}

#[derive(Debug, Clone)]
struct Slot {
    pmu: usize,
    value: Value,
    scale: f64,
    /// The last angle delivered, in degrees (for unwrapping).
    last_angle: Option<f64>,
}

/// The stream's channels resolved against one configuration.
#[derive(Debug, Clone)]
pub struct FrameMap {
    slots: Vec<Slot>,
    /// The PMUs the stream reads, each once (their STAT words decide missing samples).
    used_pmus: Vec<usize>,
}

impl FrameMap {
    /// Resolves every mapping of `source` (in the stream's order: states, then inputs).
    pub fn new(source: &C37118Source, config: &Config) -> Result<Self, MapError> {
        let mut slots = Vec::with_capacity(source.channels.len());
        for mapping in &source.channels {
            let pmu = match &mapping.pmu {
                PmuRef::Idcode(id) => config.pmu_by_idcode(*id),
                PmuRef::Station(s) => config.pmu_by_station(s.trim()),
            }
            .ok_or_else(|| MapError::NoPmu { channel: mapping.name.clone(), pmu: mapping.pmu.to_string() })?;
            let pmu_config = &config.pmus[pmu];
            let missing = |what: String| MapError::NoValue {
                channel: mapping.name.clone(),
                station: pmu_config.station.clone(),
                what,
            };
            let phasor = |name: &str| pmu_config.phasors.iter().position(|p| p.name.trim() == name);
            let first_voltage = || pmu_config.phasors.iter().position(|p| p.kind == PhasorKind::Voltage);
            let value = match &mapping.quantity {
                Quantity::Freq => Value::Freq(pmu_config.nominal.hz()),
                Quantity::Rocof => Value::Rocof,
                Quantity::Va => Value::Angle(first_voltage().ok_or_else(|| missing("voltage phasor".into()))?),
                Quantity::Vm => Value::Magnitude(first_voltage().ok_or_else(|| missing("voltage phasor".into()))?),
                Quantity::PhasorAngle(n) => Value::Angle(phasor(n).ok_or_else(|| missing(format!("phasor `{n}`")))?),
                Quantity::PhasorMagnitude(n) => {
                    Value::Magnitude(phasor(n).ok_or_else(|| missing(format!("phasor `{n}`")))?)
                }
                Quantity::Analog(n) => Value::Analog(
                    pmu_config
                        .analogs
                        .iter()
                        .position(|a| a.name.trim() == n)
                        .ok_or_else(|| missing(format!("analog `{n}`")))?,
                ),
            };
            slots.push(Slot { pmu, value, scale: mapping.scale, last_angle: None });
        }
        let mut used_pmus: Vec<usize> = slots.iter().map(|s| s.pmu).collect();
        used_pmus.sort_unstable();
        used_pmus.dedup();
        Ok(Self { slots, used_pmus })
    }

    /// Writes the frame's values into `row` (one per stream channel, NaN when missing) and
    /// says why the sample is missing, if it is. Angles are unwrapped against the last
    /// angle delivered on the same channel, so a wrap at +-180 degrees is not a jump.
    pub fn sample(&mut self, frame: &DataFrame, row: &mut [f64]) -> Option<MissingReason> {
        debug_assert_eq!(row.len(), self.slots.len());
        let mut reason = self.used_pmus.iter().filter_map(|&i| frame.pmus.get(i).and_then(stat_reason)).min_by_key(
            |r| *r as u8, // the enum's order is the precedence
        );
        for (slot, out) in self.slots.iter_mut().zip(row.iter_mut()) {
            let Some(data) = frame.pmus.get(slot.pmu) else {
                *out = f64::NAN;
                continue;
            };
            if stat_reason(data).is_some() {
                *out = f64::NAN;
                continue;
            }
            let raw = read(data, slot.value);
            if !raw.is_finite() {
                *out = f64::NAN;
                reason = reason.or(Some(MissingReason::MissingValue));
                continue;
            }
            *out = slot.scale
                * match slot.value {
                    Value::Angle(_) => {
                        let degrees = raw.to_degrees();
                        let unwrapped = match slot.last_angle {
                            Some(last) => {
                                let step = degrees - last;
                                last + step - 360.0 * (step / 360.0).round()
                            }
                            None => degrees,
                        };
                        slot.last_angle = Some(unwrapped);
                        unwrapped
                    }
                    _ => raw,
                };
        }
        reason
    }
}

/// Why a PMU's block cannot be used, from its STAT word.
fn stat_reason(data: &PmuData) -> Option<MissingReason> {
    let stat = data.stat;
    if stat.data_error() != DataError::Good {
        Some(MissingReason::DataError)
    } else if stat.pmu_sync_lost() {
        Some(MissingReason::SyncLost)
    } else if stat.unlocked_time() != 0 {
        Some(MissingReason::Unlocked)
    } else {
        None
    }
}

fn read(data: &PmuData, value: Value) -> f64 {
    let phasor = |i: usize| data.phasors.get(i).copied();
    match value {
        // C37.118.2-2011 sends a float FREQ as the actual frequency, but some PMUs (pyc37
        // among them) send the deviation from nominal: no power system runs below half its
        // nominal frequency, so a value there is read as a deviation.
        Value::Freq(nominal) if data.freq_hz.abs() < nominal / 2.0 => nominal + data.freq_hz,
        Value::Freq(_) => data.freq_hz,
        Value::Rocof => data.rocof,
        // A phasor with an absent part is absent: NaN stays NaN through atan2 and hypot.
        Value::Angle(i) => phasor(i).map_or(f64::NAN, |p| p.angle()),
        Value::Magnitude(i) => phasor(i).map_or(f64::NAN, |p| p.magnitude()),
        Value::Analog(i) => data.analogs.get(i).copied().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use c37118::{
        AnalogChannel, AnalogKind, ConfigKind, Format, Nominal, Phasor, PhasorChannel, PmuConfig, Stat, Time,
    };
    use domain::source::{SourceChannel, SourceTransport};

    fn pmu(station: &str, idcode: u16) -> PmuConfig {
        PmuConfig {
            station: station.into(),
            idcode,
            format: Format { freq_float: true, analog_float: true, phasor_float: true, phasor_polar: true },
            phasors: vec![
                PhasorChannel { name: "I1".into(), kind: PhasorKind::Current, scale: 0 },
                PhasorChannel { name: "V1".into(), kind: PhasorKind::Voltage, scale: 0 },
            ],
            analogs: vec![AnalogChannel { name: "P".into(), kind: AnalogKind::SinglePoint, scale: 1 }],
            digitals: vec![],
            nominal: Nominal::Hz60,
            cfgcnt: 1,
        }
    }

    fn config() -> Config {
        Config {
            kind: ConfigKind::Cfg2,
            idcode: 7,
            time: Time::default(),
            time_base: 1_000_000,
            pmus: vec![pmu("A", 11), pmu("B", 12)],
            data_rate: 30,
            extras: vec![],
        }
    }

    fn source(maps: &[(PmuRef, &str)]) -> C37118Source {
        C37118Source {
            address: "127.0.0.1:4712".into(),
            idcode: 7,
            transport: SourceTransport::Tcp,
            udp_port: None,
            channels: maps
                .iter()
                .enumerate()
                .map(|(i, (pmu, q))| SourceChannel {
                    pmu: pmu.clone(),
                    quantity: Quantity::parse(q).unwrap(),
                    name: format!("c{i}"),
                    scale: if q.starts_with("analog") { 1e-5 } else { 1.0 },
                })
                .collect(),
        }
    }

    fn frame(angle_deg: f64, stat_b: u16) -> DataFrame {
        let mut f = DataFrame::shaped_for(&config());
        for (k, p) in f.pmus.iter_mut().enumerate() {
            p.freq_hz = 60.0 + k as f64 * 0.01;
            p.rocof = 0.1;
            p.phasors[0] = Phasor::from_polar(5.0, 0.0);
            p.phasors[1] = Phasor::from_polar(1000.0, angle_deg.to_radians());
            p.analogs[0] = 42.0;
        }
        f.pmus[1].stat = Stat(stat_b);
        f
    }

    #[test]
    fn channels_resolve_by_station_or_idcode_and_read_their_values() {
        let src = source(&[
            (PmuRef::Station("A".into()), "freq"),
            (PmuRef::Idcode(12), "vm"),
            (PmuRef::Idcode(11), "phasor:I1:mag"),
            (PmuRef::Station("B".into()), "analog:P"),
            (PmuRef::Idcode(11), "rocof"),
        ]);
        let mut map = FrameMap::new(&src, &config()).unwrap();
        let mut row = [0.0; 5];
        assert_eq!(map.sample(&frame(10.0, 0), &mut row), None);
        assert_eq!(row[0], 60.0);
        assert!((row[1] - 1000.0).abs() < 1e-9);
        assert!((row[2] - 5.0).abs() < 1e-12);
        assert!((row[3] - 42e-5).abs() < 1e-18, "analogs scaled");
        assert_eq!(row[4], 0.1);
        // A float FREQ sent as a deviation from nominal reads as the frequency.
        let mut deviation = frame(10.0, 0);
        deviation.pmus[0].freq_hz = 0.02;
        map.sample(&deviation, &mut row);
        assert!((row[0] - 60.02).abs() < 1e-12);
    }

    #[test]
    fn unresolvable_channels_are_named() {
        for (pmu, q) in [
            (PmuRef::Station("C".into()), "freq"),
            (PmuRef::Idcode(99), "freq"),
            (PmuRef::Idcode(11), "phasor:V9:angle"),
            (PmuRef::Idcode(11), "analog:Q"),
        ] {
            let error = FrameMap::new(&source(&[(pmu, q)]), &config()).unwrap_err();
            assert!(error.to_string().contains("c0"), "{error}");
        }
    }

    #[test]
    fn angles_unwrap_across_the_wrap() {
        let src = source(&[(PmuRef::Idcode(11), "va")]);
        let mut map = FrameMap::new(&src, &config()).unwrap();
        let mut row = [0.0];
        let mut seen = Vec::new();
        for degrees in [170.0, 179.0, -178.0, -170.0, 175.0] {
            map.sample(&frame(degrees, 0), &mut row);
            seen.push(row[0]);
        }
        let expected = [170.0, 179.0, 182.0, 190.0, 175.0];
        for (s, e) in seen.iter().zip(expected) {
            assert!((s - e).abs() < 1e-9, "{seen:?}");
        }
    }

    #[test]
    fn stat_and_absent_values_make_the_sample_missing_with_its_reason() {
        let src = source(&[(PmuRef::Idcode(11), "freq"), (PmuRef::Idcode(12), "freq")]);
        let mut map = FrameMap::new(&src, &config()).unwrap();
        let mut row = [0.0; 2];
        for (stat, reason) in
            [(0x4000, MissingReason::DataError), (0x2000, MissingReason::SyncLost), (0x0010, MissingReason::Unlocked)]
        {
            assert_eq!(map.sample(&frame(0.0, stat), &mut row), Some(reason));
            assert!(row[0].is_finite() && row[1].is_nan());
        }
        let mut absent = frame(0.0, 0);
        absent.pmus[0].freq_hz = f64::NAN;
        assert_eq!(map.sample(&absent, &mut row), Some(MissingReason::MissingValue));
        // A PMU the stream does not read may be in error without harm.
        let src = source(&[(PmuRef::Idcode(11), "freq")]);
        let mut map = FrameMap::new(&src, &config()).unwrap();
        let mut row = [0.0];
        assert_eq!(map.sample(&frame(0.0, 0x4000), &mut row), None);
    }
}
