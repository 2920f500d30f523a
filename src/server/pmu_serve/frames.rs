//! A simulated record turned into C37.118.2 frames: the configuration (CFG-1 and CFG-2),
//! the header text, and the data frame of any sample, encoded on demand from the record.
//!
//! Two shapes of stream:
//! - PMU quantities of the 68-bus system (columns `b<N>_vm`, `b<N>_va`, `b<N>_f`,
//!   `b<N>_rocof`): a PDC stream with one PMU per bus (station `BUS<N>`, IDCODE
//!   [`PMU_IDCODE_BASE`] + N), each with one voltage phasor `V`, FREQ and DFREQ. The
//!   magnitude is the simulated per-unit value times [`VOLTS_PER_PU`] (345 kV
//!   line-to-line, as line-to-neutral volts), the angle the simulated one in radians,
//!   wrapped to (-pi, pi]; the reference bus, whose angle column the record omits, has
//!   angle 0.
//! - Any other record (machine states, Van der Pol): one PMU whose analog channels are
//!   the record's columns, FREQ fixed at the nominal 60 Hz and DFREQ at 0. Integer
//!   analogs carry the value in units of `ANUNIT * 1e-5` (the PHUNIT convention; the
//!   standard leaves ANUNIT's unit to the user), ANUNIT chosen per channel from the
//!   record's largest magnitude so that every value fits 16 bits.
//!
//! Integer FREQ and DFREQ saturate at their 16-bit ranges (+-32.767 Hz from nominal,
//! +-327.67 Hz/s), which the spikes of a topology switch can exceed.
//!
//! A value the simulator dropped (NaN) marks its PMU's block with STAT data error 3
//! ("PMU error: do not use the values"); float formats send NaN in its place, integer
//! formats a zero (the nominal frequency for FREQ).

use c37118::{
    AnalogChannel, AnalogKind, AnalogScale, Cfg3Pmu, Config, ConfigKind, DataFrame, EncodeError, Format, HeaderFrame,
    Nominal, Phasor, PhasorChannel, PhasorKind, PhasorScale, PmuConfig, Stat, Time, TimeQuality,
};
use systems::Trajectory;

/// Per-unit bus voltage to volts: 345 kV line-to-line (the transmission level of the
/// New England and New York system) as a line-to-neutral phasor magnitude.
pub const VOLTS_PER_PU: f64 = 345_000.0 / 1.732_050_807_568_877_2;

/// PHUNIT of integer phasors: 1_000_000 * 1e-5 = 10 V per bit, so 16 bits span 1.6 pu
/// (rectangular) or 3.3 pu (polar magnitude) of [`VOLTS_PER_PU`].
pub const PHUNIT: u32 = 1_000_000;

/// A bus's PMU has IDCODE this plus its bus number.
pub const PMU_IDCODE_BASE: u16 = 1000;

/// TIME_BASE: FRACSEC counts microseconds.
pub const TIME_BASE: u32 = 1_000_000;

/// The unit of one ANUNIT step of integer analogs (see the module documentation).
pub const ANALOG_UNIT: f64 = 1e-5;

/// STAT of a sample with a lost value: data error 3, otherwise good and in sync.
pub const STAT_MISSING: u16 = 0b11 << 14;

/// Integer FREQ: the largest deviation from nominal (Hz) 16 bits of mHz hold.
const FREQ_RANGE: f64 = 32.767;

/// Integer DFREQ: the largest ROCOF (Hz/s) 16 bits of 0.01 Hz/s hold.
const ROCOF_RANGE: f64 = 327.67;

/// The largest integer a 16-bit analog carries.
const I16_MAX: f64 = 32767.0;

/// How the stream is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// Float (true) or 16-bit integer values.
    pub float: bool,
    /// Polar (true) or rectangular phasors.
    pub polar: bool,
}

/// Why a record cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum FramesError {
    /// A PMU record lacks a column a PMU needs.
    #[error("the PMU record has no column `{0}` (pmu-serve needs vm, va, f and rocof at every bus)")]
    MissingColumn(String),
    /// A channel's values do not fit 16-bit integers with any ANUNIT.
    #[error("channel `{0}` is too large for integer analogs (use --format float)")]
    AnalogRange(String),
    /// More PMUs or channels than a configuration frame holds.
    #[error("the configuration does not fit a frame: {0}")]
    Config(EncodeError),
    /// The record is empty or its rate is not a whole number of frames per second.
    #[error("{0}")]
    Record(String),
}

/// Where one bus's quantities are in a record row.
#[derive(Debug, Clone)]
struct BusColumns {
    vm: usize,
    /// `None` for the reference bus (angle 0).
    va: Option<usize>,
    f: usize,
    rocof: usize,
}

#[derive(Debug, Clone)]
enum Shape {
    /// One PMU per bus, a phasor each.
    Buses(Vec<BusColumns>),
    /// One PMU, every column an analog (their ANUNITs are in the configuration).
    Analogs,
}

/// The frames of one simulated record.
#[derive(Debug, Clone)]
pub struct FrameSource {
    record: Trajectory,
    shape: Shape,
    config: Config,
    header: Vec<u8>,
    encoding: Encoding,
    rate: u16,
    start_soc: u32,
}

impl FrameSource {
    /// Builds the stream of `record` (sampled at `rate` frames/s from t = 0) for the PDC
    /// `idcode`, with time stamps from `start_soc` (a whole UTC second) on. `station` names
    /// the single PMU of an analog stream; `description` starts the header text.
    pub fn new(
        record: Trajectory,
        rate: u16,
        idcode: u16,
        station: &str,
        encoding: Encoding,
        start_soc: u32,
        description: &str,
    ) -> Result<Self, FramesError> {
        if record.n_rows() == 0 || rate == 0 {
            return Err(FramesError::Record("the record is empty".into()));
        }
        let format = Format {
            freq_float: encoding.float,
            analog_float: encoding.float,
            phasor_float: encoding.float,
            phasor_polar: encoding.polar,
        };
        let buses = pmu_buses(record.names());
        let (shape, pmus) = if buses.is_empty() {
            analog_stream(&record, idcode, station, format, encoding.float)?
        } else {
            bus_stream(&record, &buses, format)?
        };
        let config = Config {
            kind: ConfigKind::Cfg2,
            idcode,
            time: Time::default(),
            time_base: TIME_BASE,
            pmus,
            data_rate: i16::try_from(rate).map_err(|_| FramesError::Record(format!("rate {rate} is over 32767")))?,
            extras: vec![],
        };
        // Encode once to refuse a configuration the crate cannot write (too many PMUs).
        config.try_encode(&mut Vec::new()).map_err(FramesError::Config)?;
        let header = header_text(description, &config, &shape, encoding).into_bytes();
        Ok(Self { record, shape, config, header, encoding, rate, start_soc })
    }

    /// Moves the time stamps to start at `start_soc` (a whole UTC second).
    pub fn set_start(&mut self, start_soc: u32) {
        self.start_soc = start_soc;
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.record.n_rows()
    }

    /// Whether there are no samples (never: `new` refuses an empty record).
    pub fn is_empty(&self) -> bool {
        self.record.n_rows() == 0
    }

    /// Frames per second.
    pub fn rate(&self) -> u16 {
        self.rate
    }

    /// The encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The stream's IDCODE.
    pub fn idcode(&self) -> u16 {
        self.config.idcode
    }

    /// The configuration (CFG-2), stamped with time zero.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The time stamp of sample `k`: the start second plus k / rate, FRACSEC to the
    /// nearest microsecond by integer arithmetic (no drift over any record), time locked.
    pub fn time(&self, k: usize) -> Time {
        let rate = u64::from(self.rate);
        let k = k as u64;
        let soc = u64::from(self.start_soc) + k / rate;
        let fracsec = ((k % rate) * u64::from(TIME_BASE) + rate / 2) / rate;
        Time { soc: u32::try_from(soc).unwrap_or(u32::MAX), fracsec: fracsec as u32, quality: TimeQuality::default() }
    }

    /// Appends the configuration frame of `kind` (CFG-1 or CFG-2; both describe the same
    /// stream) stamped `time` to `out`.
    pub fn encode_config(&self, kind: ConfigKind, time: Time, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut config = self.config.clone();
        config.kind = kind;
        config.time = time;
        if kind == ConfigKind::Cfg3 {
            config.extras = config.pmus.iter().map(cfg3_of).collect();
        }
        config.try_encode(out)
    }

    /// Appends the header frame stamped `time` to `out`.
    pub fn encode_header(&self, time: Time, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        HeaderFrame { idcode: self.config.idcode, time, text: self.header.clone() }.try_encode(out)
    }

    /// The header text.
    pub fn header_text(&self) -> &[u8] {
        &self.header
    }

    /// Fills `frame` (shaped by [`DataFrame::shaped_for`] this configuration) with sample `k`.
    pub fn fill(&self, k: usize, frame: &mut DataFrame) {
        let row = self.record.row(k);
        frame.idcode = self.config.idcode;
        frame.time = self.time(k);
        let float = self.encoding.float;
        // Integer formats cannot carry NaN: a lost value becomes `fallback` (STAT says why).
        let value = |x: f64, fallback: f64| if x.is_nan() && !float { fallback } else { x };
        match &self.shape {
            Shape::Buses(buses) => {
                for (data, bus) in frame.pmus.iter_mut().zip(buses) {
                    let vm = row[bus.vm];
                    let va = bus.va.map_or(0.0, |j| row[j]);
                    let (f, rocof) = (row[bus.f], row[bus.rocof]);
                    let lost = [vm, va, f, rocof].iter().any(|x| x.is_nan());
                    data.stat = Stat(if lost { STAT_MISSING } else { 0 });
                    data.phasors[0] = if (vm.is_nan() || va.is_nan()) && !float {
                        Phasor::default()
                    } else {
                        Phasor::from_polar(vm * VOLTS_PER_PU, va.to_radians())
                    };
                    data.freq_hz = value(f, Nominal::Hz60.hz());
                    data.rocof = value(rocof, 0.0);
                    if !float {
                        // The spikes a topology switch causes can exceed 16 bits (e.g. ROCOF at
                        // 240 frames/s): saturate rather than lose the frame.
                        let nominal = Nominal::Hz60.hz();
                        data.freq_hz = data.freq_hz.clamp(nominal - FREQ_RANGE, nominal + FREQ_RANGE);
                        data.rocof = data.rocof.clamp(-ROCOF_RANGE, ROCOF_RANGE);
                    }
                }
            }
            Shape::Analogs => {
                let data = &mut frame.pmus[0];
                data.stat = Stat(if row.iter().any(|x| x.is_nan()) { STAT_MISSING } else { 0 });
                data.freq_hz = Nominal::Hz60.hz();
                data.rocof = 0.0;
                for (slot, &x) in data.analogs.iter_mut().zip(row) {
                    // The crate decodes integer * ANUNIT: hand it the value in ANALOG_UNITs.
                    *slot = if float { x } else { value(x, 0.0) / ANALOG_UNIT };
                }
            }
        }
    }

    /// Appends the data frame of sample `k` to `out`, using `scratch` (shaped for this
    /// configuration) for the values.
    pub fn encode_data(&self, k: usize, scratch: &mut DataFrame, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.fill(k, scratch);
        scratch.encode(&self.config, out)
    }
}

/// The buses of a PMU record, in column order (empty for any other record).
fn pmu_buses(names: &[String]) -> Vec<usize> {
    let mut buses = Vec::new();
    for name in names {
        let Some(bus) = name.strip_prefix('b').and_then(|rest| rest.strip_suffix("_vm")) else { continue };
        if let Ok(bus) = bus.parse::<usize>() {
            buses.push(bus);
        }
    }
    buses
}

fn bus_stream(record: &Trajectory, buses: &[usize], format: Format) -> Result<(Shape, Vec<PmuConfig>), FramesError> {
    let column = |bus: usize, q: &str| {
        let name = format!("b{bus}_{q}");
        record.column_index(&name).ok_or(FramesError::MissingColumn(name))
    };
    let mut columns = Vec::with_capacity(buses.len());
    let mut pmus = Vec::with_capacity(buses.len());
    for &bus in buses {
        columns.push(BusColumns {
            vm: column(bus, "vm")?,
            va: column(bus, "va").ok(),
            f: column(bus, "f")?,
            rocof: column(bus, "rocof")?,
        });
        let idcode = u16::try_from(bus).ok().and_then(|b| PMU_IDCODE_BASE.checked_add(b));
        pmus.push(PmuConfig {
            station: format!("BUS{bus}"),
            idcode: idcode.ok_or_else(|| FramesError::Record(format!("bus {bus} has no IDCODE")))?,
            format,
            phasors: vec![PhasorChannel { name: "V".into(), kind: PhasorKind::Voltage, scale: PHUNIT }],
            analogs: Vec::new(),
            digitals: Vec::new(),
            nominal: Nominal::Hz60,
            cfgcnt: 0,
        });
    }
    // A record without angles at all has no reference to measure from.
    if columns.iter().all(|c| c.va.is_none()) {
        return Err(FramesError::MissingColumn(format!("b{}_va", buses[0])));
    }
    Ok((Shape::Buses(columns), pmus))
}

fn analog_stream(
    record: &Trajectory,
    idcode: u16,
    station: &str,
    format: Format,
    float: bool,
) -> Result<(Shape, Vec<PmuConfig>), FramesError> {
    let mut scales = Vec::with_capacity(record.n_columns());
    for (j, name) in record.names().iter().enumerate() {
        let peak = record.rows().map(|row| row[j]).filter(|x| x.is_finite()).fold(0.0_f64, |m, x| m.max(x.abs()));
        // The smallest step that keeps the peak within 16 bits (at least one unit).
        let scale = (peak / ANALOG_UNIT / I16_MAX).ceil().max(1.0);
        if float {
            scales.push(1);
        } else if scale <= f64::from(0x7F_FFFF) {
            scales.push(scale as i32);
        } else {
            return Err(FramesError::AnalogRange(name.clone()));
        }
    }
    let analogs = record
        .names()
        .iter()
        .zip(&scales)
        .map(|(name, &scale)| AnalogChannel { name: name.clone(), kind: AnalogKind::SinglePoint, scale })
        .collect();
    let pmu = PmuConfig {
        station: station.to_owned(),
        idcode,
        format,
        phasors: Vec::new(),
        analogs,
        digitals: Vec::new(),
        nominal: Nominal::Hz60,
        cfgcnt: 0,
    };
    Ok((Shape::Analogs, vec![pmu]))
}

fn header_text(description: &str, config: &Config, shape: &Shape, encoding: Encoding) -> String {
    let format = if encoding.float { "float" } else { "16-bit integer" };
    let coordinates = if encoding.polar { "polar" } else { "rectangular" };
    let mut text = format!(
        "koopstream pmu-serve: {description}. {} PMU(s) at {} frames/s, {format} values, {coordinates} phasors. ",
        config.pmus.len(),
        config.data_rate
    );
    match shape {
        Shape::Buses(_) => text.push_str(&format!(
            "Each bus's PMU (IDCODE {PMU_IDCODE_BASE} + bus) reports phasor V: positive-sequence bus voltage, \
             line-to-neutral volts at 345 kV line-to-line base ({VOLTS_PER_PU:.3} V per pu), angle in rad \
             relative to the reference bus; FREQ absolute Hz; DFREQ Hz/s. "
        )),
        Shape::Analogs => text.push_str(
            "One PMU: each analog is a simulated channel (the columns of `koopstream simulate`); \
             integer analogs carry value = integer * ANUNIT * 1e-5; FREQ is nominal, DFREQ 0. ",
        ),
    }
    text.push_str("STAT data error 3 marks a sample with a lost value (NaN in float formats).");
    text
}

/// The CFG-3 fields of a PMU the record describes only as CFG-2: G_PMU_ID all zeros (no
/// global identifier), PHSCALE and ANSCALE carrying PHUNIT and ANUNIT for integer formats
/// (the data frames stay decodable) and unity for float ones, no angle offset or analog
/// offset, PMU_LAT, PMU_LON and PMU_ELEV 0 (a simulated record has no position; 0 rather
/// than NaN so the frame compares equal to itself after a round trip), SVC_CLASS 'M',
/// WINDOW and GRP_DLY 0 (no filter: the samples are the record's).
fn cfg3_of(pmu: &PmuConfig) -> Cfg3Pmu {
    let f = pmu.format;
    let phasor_scales = pmu
        .phasors
        .iter()
        .map(|ch| PhasorScale {
            scale: if f.phasor_float { 1.0 } else { ch.scale as f32 * 1e-5 },
            ..PhasorScale::default()
        })
        .collect();
    let analog_scales = pmu
        .analogs
        .iter()
        .map(|ch| AnalogScale { scale: if f.analog_float { 1.0 } else { ch.scale as f32 }, offset: 0.0 })
        .collect();
    Cfg3Pmu { phasor_scales, analog_scales, service_class: b'M', ..Cfg3Pmu::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus_record() -> Trajectory {
        let names = ["b29_vm", "b29_va", "b29_f", "b29_rocof", "b65_vm", "b65_f", "b65_rocof"];
        let names = names.iter().map(|s| s.to_string()).collect();
        let values = vec![
            1.01,
            30.0,
            60.01,
            0.02,
            0.99,
            59.99,
            -0.01, //
            1.02,
            200.0,
            f64::NAN,
            0.03,
            0.98,
            60.0,
            0.0,
        ];
        Trajectory::new(names, vec![0.0, 1.0 / 30.0], values).unwrap()
    }

    fn vdp_record() -> Trajectory {
        Trajectory::new(vec!["x1".into(), "x2".into()], vec![0.0, 0.1], vec![1.5, -2.25, f64::NAN, 0.125]).unwrap()
    }

    const FLOAT_POLAR: Encoding = Encoding { float: true, polar: true };
    const INT_RECT: Encoding = Encoding { float: false, polar: false };

    fn decode(source: &FrameSource, k: usize) -> DataFrame {
        let mut scratch = DataFrame::shaped_for(source.config());
        let mut out = Vec::new();
        source.encode_data(k, &mut scratch, &mut out).unwrap();
        assert_eq!(out.len(), source.config().data_frame_len());
        DataFrame::parse(&out, source.config()).unwrap()
    }

    #[test]
    fn time_stamps_step_by_whole_microseconds_without_drift() {
        let source = FrameSource::new(vdp_record(), 30, 7, "VDP", FLOAT_POLAR, 1_000, "test").unwrap();
        assert_eq!(source.time(0).soc, 1_000);
        assert_eq!((source.time(1).soc, source.time(1).fracsec), (1_000, 33_333));
        assert_eq!((source.time(2).soc, source.time(2).fracsec), (1_000, 66_667));
        assert_eq!((source.time(30).soc, source.time(30).fracsec), (1_001, 0));
        assert_eq!((source.time(30 * 86_400 + 1).soc, source.time(1).fracsec), (1_000 + 86_400, 33_333));
    }

    #[test]
    fn buses_become_one_pmu_each_with_volts_and_radians() {
        let source = FrameSource::new(bus_record(), 30, 7, "unused", FLOAT_POLAR, 0, "test").unwrap();
        let config = source.config();
        let stations: Vec<_> = config.pmus.iter().map(|p| (p.station.as_str(), p.idcode)).collect();
        assert_eq!(stations, [("BUS29", 1029), ("BUS65", 1065)]);
        let frame = decode(&source, 0);
        let v = frame.pmus[0].phasors[0];
        assert!((v.magnitude() - f64::from((1.01 * VOLTS_PER_PU) as f32)).abs() < 1e-9);
        assert!((v.angle() - f64::from(30f64.to_radians() as f32)).abs() < 1e-9);
        assert_eq!(frame.pmus[0].freq_hz, f64::from(60.01f32));
        // The reference bus has angle 0.
        assert_eq!(frame.pmus[1].phasors[0].angle(), 0.0);
        assert_eq!(frame.pmus[0].stat.data_error(), c37118::DataError::Good);
        // Sample 1: bus 29 lost its frequency; the angle wraps into (-pi, pi].
        let frame = decode(&source, 1);
        assert_eq!(frame.pmus[0].stat.data_error(), c37118::DataError::PmuErrorNoData);
        assert!(frame.pmus[0].freq_hz.is_nan());
        assert!((frame.pmus[0].phasors[0].angle() - (200f64 - 360.0).to_radians()).abs() < 1e-6);
        assert_eq!(frame.pmus[1].stat, Stat(0));
    }

    #[test]
    fn integer_buses_quantise_and_replace_lost_values() {
        let source = FrameSource::new(bus_record(), 30, 7, "unused", INT_RECT, 0, "test").unwrap();
        let frame = decode(&source, 1);
        let v = frame.pmus[0].phasors[0];
        let step = f64::from(PHUNIT) * 1e-5;
        let want = Phasor::from_polar(1.02 * VOLTS_PER_PU, 200f64.to_radians());
        assert!((v.re - want.re).abs() <= step / 2.0 && (v.im - want.im).abs() <= step / 2.0);
        assert_eq!(frame.pmus[0].freq_hz, 60.0);
        assert!((frame.pmus[0].rocof - 0.03).abs() < 1e-9);
        assert_eq!(frame.pmus[0].stat.0, STAT_MISSING);
    }

    #[test]
    fn integer_frequency_spikes_saturate() {
        let mut record = bus_record();
        let names = record.names().to_vec();
        let mut values = record.values().to_vec();
        values[2] = 100.0;
        values[3] = -5000.0;
        record = Trajectory::new(names, record.times().to_vec(), values).unwrap();
        let source = FrameSource::new(record, 30, 7, "unused", INT_RECT, 0, "test").unwrap();
        let frame = decode(&source, 0);
        assert!((frame.pmus[0].freq_hz - (60.0 + FREQ_RANGE)).abs() < 1e-9);
        assert!((frame.pmus[0].rocof + ROCOF_RANGE).abs() < 1e-9);
    }

    #[test]
    fn analogs_carry_the_columns_and_integer_units_are_documented() {
        let source = FrameSource::new(vdp_record(), 10, 7, "VDP", INT_RECT, 0, "test").unwrap();
        let pmu = &source.config().pmus[0];
        assert_eq!((pmu.station.as_str(), pmu.idcode), ("VDP", 7));
        let names: Vec<_> = pmu.analogs.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["x1", "x2"]);
        // 2.25 / 1e-5 / 32767 = 6.87: ANUNIT 7.
        assert_eq!(pmu.analogs.iter().map(|a| a.scale).collect::<Vec<_>>(), [5, 7]);
        let frame = decode(&source, 0);
        for (got, (want, scale)) in frame.pmus[0].analogs.iter().zip([(1.5, 5.0), (-2.25, 7.0)]) {
            assert!((got * ANALOG_UNIT - want).abs() <= scale * ANALOG_UNIT / 2.0, "{got} {want}");
        }
        let frame = decode(&source, 1);
        assert_eq!(frame.pmus[0].stat.0, STAT_MISSING);
        assert_eq!(frame.pmus[0].analogs[0], 0.0);
        let text = String::from_utf8(source.header_text().to_vec()).unwrap();
        assert!(text.contains("ANUNIT * 1e-5"), "{text}");
    }

    #[test]
    fn float_analogs_keep_nan() {
        let source = FrameSource::new(vdp_record(), 10, 7, "VDP", FLOAT_POLAR, 0, "test").unwrap();
        let frame = decode(&source, 1);
        assert!(frame.pmus[0].analogs[0].is_nan());
        assert_eq!(frame.pmus[0].analogs[1], 0.125);
        assert_eq!(frame.pmus[0].freq_hz, 60.0);
    }
}
