//! Data frames, decoded against their configuration into engineering units.
//!
//! Readings of the standard (C37.118.2-2011, Table 5 and 8), applied both ways:
//! - integer rectangular phasors: real and imaginary = integer * PHUNIT * 1e-5 (V or A);
//! - integer polar phasors: magnitude = unsigned integer * PHUNIT * 1e-5, angle = signed
//!   integer * 1e-4 rad; float phasors are as sent (polar: magnitude and angle in rad);
//! - FREQ: integer = deviation from nominal in mHz; float = the actual frequency in Hz
//!   (the 2011 text says so for the float form); `freq_hz` is always the absolute frequency;
//! - DFREQ: integer = ROCOF * 100 (Hz/s); float = Hz/s;
//! - integer analogs: value = integer * ANUNIT's signed 24-bit scale (the standard leaves
//!   the unit to the user; see `AnalogChannel::scale`); float analogs as sent;
//! - digitals: the 16-bit words as sent;
//! - against a CFG-3 (same data frame layout): integer phasors use PHSCALE's scale factor
//!   (V or A per bit) instead of PHUNIT * 1e-5, integer analogs are ANSCALE's
//!   scale * integer + offset; PHSCALE's angle offset is not applied (it corrects the
//!   measurement, it does not decode it), and float formats are as sent (PHSCALE and ANSCALE
//!   are then informational).
//!
//! `decode_into` is the hot path: it reuses the vectors of the `DataFrame` it is given
//! and only reshapes them when the configuration's shape differs, so decoding a stream
//! allocates nothing once the first frame has been decoded.

use crate::bytes::{Reader, begin, finish};
use crate::cfg3::Cfg3Pmu;
use crate::config::{Config, ConfigKind, PmuConfig};
use crate::error::{EncodeError, ParseError};
use crate::prefix::{FrameKind, HEADER_LEN, expect};
use crate::time::Time;

/// The STAT word of one PMU's block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat(pub u16);

/// STAT bits 15-14.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataError {
    /// 0: good measurement data, no errors.
    Good,
    /// 1: PMU error, no information about the data.
    PmuError,
    /// 2: PMU in test mode (or absent data tags inserted): do not use the values.
    TestMode,
    /// 3: PMU error: do not use the values.
    PmuErrorNoData,
}

impl Stat {
    /// Bits 15-14.
    pub fn data_error(self) -> DataError {
        match self.0 >> 14 {
            0 => DataError::Good,
            1 => DataError::PmuError,
            2 => DataError::TestMode,
            _ => DataError::PmuErrorNoData,
        }
    }
    /// Bit 13: the PMU is not in sync with UTC.
    pub fn pmu_sync_lost(self) -> bool {
        self.0 & (1 << 13) != 0
    }
    /// Bit 12: data sorted by arrival (else by time stamp).
    pub fn sorted_by_arrival(self) -> bool {
        self.0 & (1 << 12) != 0
    }
    /// Bit 11: a PMU trigger was detected.
    pub fn trigger(self) -> bool {
        self.0 & (1 << 11) != 0
    }
    /// Bit 10: the configuration changes within a minute (a new one should be requested).
    pub fn config_changed(self) -> bool {
        self.0 & (1 << 10) != 0
    }
    /// Bit 9: data modified by a post-processing device.
    pub fn data_modified(self) -> bool {
        self.0 & (1 << 9) != 0
    }
    /// Bits 8-6: the PMU time quality code.
    pub fn time_quality(self) -> u8 {
        ((self.0 >> 6) & 0x7) as u8
    }
    /// Bits 5-4: time since the PMU lost its time lock.
    pub fn unlocked_time(self) -> u8 {
        ((self.0 >> 4) & 0x3) as u8
    }
    /// Bits 3-0: the trigger reason.
    pub fn trigger_reason(self) -> u8 {
        (self.0 & 0xF) as u8
    }
}

/// A phasor in engineering units (V or A).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Phasor {
    pub re: f64,
    pub im: f64,
}

impl Phasor {
    pub fn from_polar(mag: f64, angle_rad: f64) -> Self {
        let (s, c) = angle_rad.sin_cos();
        Phasor { re: mag * c, im: mag * s }
    }
    pub fn magnitude(self) -> f64 {
        self.re.hypot(self.im)
    }
    /// The angle in rad, in [-pi, pi].
    pub fn angle(self) -> f64 {
        self.im.atan2(self.re)
    }
}

/// One PMU's block of a data frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PmuData {
    pub stat: Stat,
    pub phasors: Vec<Phasor>,
    /// The absolute frequency in Hz.
    pub freq_hz: f64,
    /// ROCOF in Hz/s.
    pub rocof: f64,
    pub analogs: Vec<f64>,
    pub digitals: Vec<u16>,
}

/// A data frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataFrame {
    pub idcode: u16,
    pub time: Time,
    pub pmus: Vec<PmuData>,
}

impl DataFrame {
    /// A frame of the configuration's shape (PMUs, phasors, analogs, digitals), all zeros.
    pub fn shaped_for(config: &Config) -> Self {
        let mut frame = DataFrame { idcode: config.idcode, ..DataFrame::default() };
        frame.reshape(config);
        frame
    }

    /// Gives `self` the configuration's shape; no allocation when it already has it.
    fn reshape(&mut self, config: &Config) {
        self.pmus.resize_with(config.pmus.len(), PmuData::default);
        for (data, pmu) in self.pmus.iter_mut().zip(&config.pmus) {
            data.phasors.resize(pmu.phasors.len(), Phasor::default());
            data.analogs.resize(pmu.analogs.len(), 0.0);
            data.digitals.resize(pmu.digitals.len(), 0);
        }
    }

    /// Decodes `frame` into `self` (reshaping only if its shape differs: no allocation in
    /// the steady state). The frame must pass the common checks (SYNC, size, CRC), be a
    /// data frame, and match the configuration's IDCODE and data frame size
    /// (`ParseError::ShapeMismatch` otherwise: the configuration has changed). On error
    /// `self` holds partial values.
    pub fn decode_into(&mut self, frame: &[u8], config: &Config) -> Result<(), ParseError> {
        let p = expect(frame, FrameKind::Data)?;
        if p.idcode != config.idcode || frame.len() != config.data_frame_len() {
            return Err(ParseError::ShapeMismatch);
        }
        self.reshape(config);
        self.idcode = p.idcode;
        self.time = p.time;
        let mut r = Reader::new(&frame[..frame.len() - 2], HEADER_LEN);
        for (i, (data, pmu)) in self.pmus.iter_mut().zip(&config.pmus).enumerate() {
            read_pmu(&mut r, pmu, extra(config, i), data)?;
        }
        Ok(())
    }

    /// Decodes a data frame into a new value (see `decode_into`).
    pub fn parse(frame: &[u8], config: &Config) -> Result<Self, ParseError> {
        let mut data = DataFrame::default();
        data.decode_into(frame, config)?;
        Ok(data)
    }

    /// Appends the frame to `out` (version 1 in SYNC). Integer formats: values are scaled
    /// and rounded; a value out of its integer's range (or NaN) is an `EncodeError`, not a
    /// wrap. `out` is unchanged on error.
    pub fn encode(&self, config: &Config, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.idcode != config.idcode || self.pmus.len() != config.pmus.len() {
            return Err(EncodeError::ShapeMismatch);
        }
        for (data, pmu) in self.pmus.iter().zip(&config.pmus) {
            if data.phasors.len() != pmu.phasors.len()
                || data.analogs.len() != pmu.analogs.len()
                || data.digitals.len() != pmu.digitals.len()
            {
                return Err(EncodeError::ShapeMismatch);
            }
        }
        let start = begin(out, FrameKind::Data, 1, self.idcode, &self.time);
        let mut result = Ok(());
        for (i, (data, pmu)) in self.pmus.iter().zip(&config.pmus).enumerate() {
            result = write_pmu(data, pmu, extra(config, i), out);
            if result.is_err() {
                break;
            }
        }
        match result {
            Ok(()) => finish(out, start),
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}

/// The CFG-3 fields of PMU `i`, if the configuration is a CFG-3.
fn extra(config: &Config, i: usize) -> Option<&Cfg3Pmu> {
    if config.kind == ConfigKind::Cfg3 { config.extras.get(i) } else { None }
}

/// Units per bit of phasor `j`'s integers: PHSCALE's factor for CFG-3, else PHUNIT * 1e-5.
fn phasor_unit(pmu: &PmuConfig, extra: Option<&Cfg3Pmu>, j: usize) -> f64 {
    match extra {
        Some(e) => e.phasor_scales.get(j).map_or(1.0, |s| f64::from(s.scale)),
        None => f64::from(pmu.phasors[j].scale) * 1e-5,
    }
}

/// Scale and offset of analog `j`'s integers: ANSCALE for CFG-3, else ANUNIT and no offset.
fn analog_unit(pmu: &PmuConfig, extra: Option<&Cfg3Pmu>, j: usize) -> (f64, f64) {
    match extra {
        Some(e) => e.analog_scales.get(j).map_or((1.0, 0.0), |s| (f64::from(s.scale), f64::from(s.offset))),
        None => (f64::from(pmu.analogs[j].scale), 0.0),
    }
}

fn read_pmu(
    r: &mut Reader<'_>,
    pmu: &PmuConfig,
    extra: Option<&Cfg3Pmu>,
    data: &mut PmuData,
) -> Result<(), ParseError> {
    let f = pmu.format;
    data.stat = Stat(r.u16()?);
    for (j, ph) in data.phasors.iter_mut().enumerate() {
        *ph = if f.phasor_float {
            let (a, b) = (f64::from(r.f32()?), f64::from(r.f32()?));
            if f.phasor_polar { Phasor::from_polar(a, b) } else { Phasor { re: a, im: b } }
        } else {
            let unit = phasor_unit(pmu, extra, j);
            if f.phasor_polar {
                let mag = f64::from(r.u16()?) * unit;
                Phasor::from_polar(mag, f64::from(r.i16()?) * 1e-4)
            } else {
                Phasor { re: f64::from(r.i16()?) * unit, im: f64::from(r.i16()?) * unit }
            }
        };
    }
    if f.freq_float {
        data.freq_hz = f64::from(r.f32()?);
        data.rocof = f64::from(r.f32()?);
    } else {
        data.freq_hz = pmu.nominal.hz() + f64::from(r.i16()?) * 1e-3;
        data.rocof = f64::from(r.i16()?) * 1e-2;
    }
    for (j, v) in data.analogs.iter_mut().enumerate() {
        *v = if f.analog_float {
            f64::from(r.f32()?)
        } else {
            let (scale, offset) = analog_unit(pmu, extra, j);
            f64::from(r.i16()?) * scale + offset
        };
    }
    for d in data.digitals.iter_mut() {
        *d = r.u16()?;
    }
    Ok(())
}

/// `value / unit` rounded into an integer type, or `OutOfRange` (NaN, infinite, a zero
/// unit with a non-zero value, or beyond the type's range).
fn quantise(value: f64, unit: f64, min: f64, max: f64, field: &'static str) -> Result<i32, EncodeError> {
    let q = if unit == 0.0 && value == 0.0 { 0.0 } else { (value / unit).round() };
    if q.is_finite() && (min..=max).contains(&q) { Ok(q as i32) } else { Err(EncodeError::OutOfRange { field }) }
}

fn i16_of(value: f64, unit: f64, field: &'static str) -> Result<[u8; 2], EncodeError> {
    Ok((quantise(value, unit, -32768.0, 32767.0, field)? as i16).to_be_bytes())
}

fn write_pmu(data: &PmuData, pmu: &PmuConfig, extra: Option<&Cfg3Pmu>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let f = pmu.format;
    out.extend_from_slice(&data.stat.0.to_be_bytes());
    for (j, ph) in data.phasors.iter().enumerate() {
        let (a, b) = if f.phasor_polar { (ph.magnitude(), ph.angle()) } else { (ph.re, ph.im) };
        if f.phasor_float {
            out.extend_from_slice(&(a as f32).to_be_bytes());
            out.extend_from_slice(&(b as f32).to_be_bytes());
        } else {
            let unit = phasor_unit(pmu, extra, j);
            if f.phasor_polar {
                let mag = quantise(a, unit, 0.0, 65535.0, "phasor magnitude")? as u16;
                out.extend_from_slice(&mag.to_be_bytes());
                out.extend_from_slice(&i16_of(b, 1e-4, "phasor angle")?);
            } else {
                out.extend_from_slice(&i16_of(a, unit, "phasor real part")?);
                out.extend_from_slice(&i16_of(b, unit, "phasor imaginary part")?);
            }
        }
    }
    if f.freq_float {
        out.extend_from_slice(&(data.freq_hz as f32).to_be_bytes());
        out.extend_from_slice(&(data.rocof as f32).to_be_bytes());
    } else {
        out.extend_from_slice(&i16_of(data.freq_hz - pmu.nominal.hz(), 1e-3, "FREQ")?);
        out.extend_from_slice(&i16_of(data.rocof, 1e-2, "DFREQ")?);
    }
    for (j, v) in data.analogs.iter().enumerate() {
        if f.analog_float {
            out.extend_from_slice(&(*v as f32).to_be_bytes());
        } else {
            let (scale, offset) = analog_unit(pmu, extra, j);
            out.extend_from_slice(&i16_of(*v - offset, scale, "analog")?);
        }
    }
    for d in &data.digitals {
        out.extend_from_slice(&d.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{AnalogChannel, AnalogKind, Format, Nominal, PhasorChannel, PhasorKind};
    use crate::config::ConfigKind;

    fn config(format: Format) -> Config {
        Config {
            kind: ConfigKind::Cfg2,
            idcode: 1,
            time: Time::default(),
            time_base: 1000,
            pmus: vec![PmuConfig {
                station: "S".into(),
                idcode: 1,
                format,
                phasors: vec![PhasorChannel { name: "V".into(), kind: PhasorKind::Voltage, scale: 100_000 }],
                analogs: vec![AnalogChannel { name: "A".into(), kind: AnalogKind::Rms, scale: 2 }],
                digitals: vec![],
                nominal: Nominal::Hz50,
                cfgcnt: 0,
            }],
            data_rate: 50,
            extras: vec![],
        }
    }

    #[test]
    fn stat_bits() {
        let s = Stat(0b1010_1011_0110_0110);
        assert_eq!(s.data_error(), DataError::TestMode);
        assert!(s.pmu_sync_lost() && !s.sorted_by_arrival() && s.trigger() && !s.config_changed());
        assert!(s.data_modified());
        assert_eq!((s.time_quality(), s.unlocked_time(), s.trigger_reason()), (5, 2, 6));
    }

    #[test]
    fn integer_scaling_and_range() {
        let c = config(Format::default());
        let mut d = DataFrame::shaped_for(&c);
        d.pmus[0].phasors[0] = Phasor { re: 3.0, im: -4.0 };
        d.pmus[0].freq_hz = 50.012;
        d.pmus[0].rocof = -0.25;
        d.pmus[0].analogs[0] = 10.0;
        let mut out = Vec::new();
        d.encode(&c, &mut out).unwrap();
        assert_eq!(&out[16..26], &[0, 3, 0xFF, 0xFC, 0, 12, 0xFF, 0xE7, 0, 5]);
        let back = DataFrame::parse(&out, &c).unwrap();
        assert!((back.pmus[0].freq_hz - 50.012).abs() < 1e-9);
        d.pmus[0].freq_hz = 90.0;
        assert_eq!(d.encode(&c, &mut out), Err(EncodeError::OutOfRange { field: "FREQ" }));
        d.pmus[0].freq_hz = f64::NAN;
        let len = out.len();
        assert_eq!(d.encode(&c, &mut out), Err(EncodeError::OutOfRange { field: "FREQ" }));
        assert_eq!(out.len(), len);
    }

    #[test]
    fn polar_integer_angle() {
        let c = config(Format { phasor_polar: true, ..Format::default() });
        let mut d = DataFrame::shaped_for(&c);
        d.pmus[0].phasors[0] = Phasor::from_polar(7.0, -1.5);
        d.pmus[0].freq_hz = 50.0;
        let mut out = Vec::new();
        d.encode(&c, &mut out).unwrap();
        assert_eq!(&out[16..20], &[0, 7, 0xC5, 0x68]);
        let back = DataFrame::parse(&out, &c).unwrap();
        assert!((back.pmus[0].phasors[0].angle() + 1.5).abs() < 1e-9);
    }

    #[test]
    fn shape_and_config_mismatch() {
        let c = config(Format::default());
        let d = DataFrame::shaped_for(&c);
        let mut out = Vec::new();
        let mut wrong = d.clone();
        wrong.pmus[0].analogs.clear();
        assert_eq!(wrong.encode(&c, &mut out), Err(EncodeError::ShapeMismatch));
        let mut d = d;
        d.pmus[0].freq_hz = 50.0;
        d.encode(&c, &mut out).unwrap();
        let mut other = c.clone();
        other.idcode = 2;
        assert_eq!(DataFrame::parse(&out, &other), Err(ParseError::ShapeMismatch));
        let other = config(Format { freq_float: true, ..Format::default() });
        assert_eq!(DataFrame::parse(&out, &other), Err(ParseError::ShapeMismatch));
    }
}
