//! Configuration frames CFG-1 and CFG-2 (one layout: CFG-1 says what a PMU can send, CFG-2
//! what it sends) and CFG-3 (the same PMUs with variable-length names and the fields in
//! `Config::extras`; its body layout is in `cfg3`), with any number of PMUs per frame (a
//! PDC's stream).
//!
//! Every count read from a frame is checked against the bytes left before anything is
//! allocated for it, so a frame can never make the parser reserve more than its own size.

use crate::bytes::{Reader, begin, finish, get_name, put_name};
use crate::cfg3::{self, Cfg3Pmu};
use crate::error::{EncodeError, ParseError};
use crate::prefix::{FrameKind, HEADER_LEN, MIN_FRAME, parse_prefix};
use crate::time::Time;

use crate::channel::{AnalogChannel, AnalogKind, DigitalWord, Format, Nominal, PhasorChannel, PhasorKind};

/// One PMU's part of a configuration frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmuConfig {
    /// STN, padding removed.
    pub station: String,
    pub idcode: u16,
    pub format: Format,
    pub phasors: Vec<PhasorChannel>,
    pub analogs: Vec<AnalogChannel>,
    pub digitals: Vec<DigitalWord>,
    pub nominal: Nominal,
    pub cfgcnt: u16,
}

impl PmuConfig {
    /// The bytes of this PMU's block in a data frame.
    pub fn data_len(&self) -> usize {
        let f = &self.format;
        let phasor = if f.phasor_float { 8 } else { 4 };
        let freq = if f.freq_float { 4 } else { 2 };
        let analog = if f.analog_float { 4 } else { 2 };
        2 + self.phasors.len() * phasor + 2 * freq + self.analogs.len() * analog + self.digitals.len() * 2
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    Cfg1,
    Cfg2,
    Cfg3,
}

/// A configuration frame. Not `Eq`: CFG-3's extras hold floats.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub kind: ConfigKind,
    /// The IDCODE of the stream (of the PDC for several PMUs).
    pub idcode: u16,
    pub time: Time,
    /// TIME_BASE's 24 bits: FRACSEC counts per second (bits 31-24, reserved, are not kept).
    pub time_base: u32,
    pub pmus: Vec<PmuConfig>,
    /// DATA_RATE: frames per second if positive, seconds per frame if negative.
    pub data_rate: i16,
    /// CFG-3 only: one entry per PMU, in the order of `pmus` (G_PMU_ID, PHSCALE, ANSCALE,
    /// position, ...). Empty for CFG-1 and CFG-2, whose encoding ignores it.
    pub extras: Vec<Cfg3Pmu>,
}

/// The bytes of a PMU block with no channels: STN, IDCODE, FORMAT, the three counts, FNOM, CFGCNT.
const PMU_FIXED: usize = 16 + 2 + 2 + 6 + 2 + 2;

impl Config {
    /// Appends the frame to `out`; writes nothing for a configuration that `try_encode`
    /// refuses (CFG-3 without one `extras` entry per PMU, names over 16 bytes (255 for CFG-3), scales over 24 bits, over 65535 bytes, ...).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = self.try_encode(out);
    }

    /// Appends the frame to `out` (version 1 in SYNC; 2 for CFG-3, which the 2005 standard
    /// does not have), or says which field does not fit;
    /// `out` is unchanged on error.
    pub fn try_encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.write(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let kind = match self.kind {
            ConfigKind::Cfg1 => FrameKind::Cfg1,
            ConfigKind::Cfg2 => FrameKind::Cfg2,
            ConfigKind::Cfg3 => FrameKind::Cfg3,
        };
        let cfg3 = self.kind == ConfigKind::Cfg3;
        if cfg3 && self.extras.len() != self.pmus.len() {
            return Err(EncodeError::ShapeMismatch);
        }
        if self.time_base == 0 || self.time_base > 0x00FF_FFFF {
            return Err(EncodeError::OutOfRange { field: "TIME_BASE" });
        }
        let num_pmu = u16::try_from(self.pmus.len()).map_err(|_| EncodeError::TooLarge)?;
        if num_pmu == 0 {
            return Err(EncodeError::OutOfRange { field: "NUM_PMU" });
        }
        let start = begin(out, kind, if cfg3 { 2 } else { 1 }, self.idcode, &self.time);
        if cfg3 {
            // CONT_IDX 0: the whole configuration in this one frame.
            out.extend_from_slice(&0u16.to_be_bytes());
        }
        out.extend_from_slice(&self.time_base.to_be_bytes());
        out.extend_from_slice(&num_pmu.to_be_bytes());
        for (i, pmu) in self.pmus.iter().enumerate() {
            if cfg3 {
                cfg3::write_pmu(pmu, &self.extras[i], out)?;
            } else {
                write_pmu(pmu, out)?;
            }
            // Stop early rather than write megabytes that `finish` would refuse anyway.
            if out.len() - start > usize::from(u16::MAX) {
                return Err(EncodeError::TooLarge);
            }
        }
        out.extend_from_slice(&self.data_rate.to_be_bytes());
        finish(out, start)
    }

    /// Parses a CFG-1, CFG-2 or single-frame CFG-3 (CONT_IDX 0; a fragment is
    /// `ParseError::Unsupported { what: "fragmented CFG-3" }`).
    pub fn parse(frame: &[u8]) -> Result<Self, ParseError> {
        let p = parse_prefix(frame)?;
        let kind = match p.kind {
            FrameKind::Cfg1 => ConfigKind::Cfg1,
            FrameKind::Cfg2 => ConfigKind::Cfg2,
            FrameKind::Cfg3 => ConfigKind::Cfg3,
            found => return Err(ParseError::WrongKind { expected: FrameKind::Cfg2, found }),
        };
        let cfg3 = kind == ConfigKind::Cfg3;
        let mut r = Reader::new(&frame[..frame.len() - 2], HEADER_LEN);
        if cfg3 && r.u16()? != 0 {
            return Err(ParseError::Unsupported { what: "fragmented CFG-3" });
        }
        let time_base = r.u32()? & 0x00FF_FFFF;
        if time_base == 0 {
            return Err(ParseError::Invalid { field: "TIME_BASE" });
        }
        let num_pmu = usize::from(r.u16()?);
        // Each PMU needs at least PMU_FIXED bytes, and DATA_RATE follows them.
        let fixed = if cfg3 { cfg3::PMU_FIXED } else { PMU_FIXED };
        if num_pmu == 0 || num_pmu * fixed + 2 > r.remaining() {
            return Err(ParseError::Invalid { field: "NUM_PMU" });
        }
        let mut pmus = Vec::with_capacity(num_pmu);
        let mut extras = Vec::with_capacity(if cfg3 { num_pmu } else { 0 });
        for _ in 0..num_pmu {
            if cfg3 {
                let (pmu, extra) = cfg3::read_pmu(&mut r)?;
                pmus.push(pmu);
                extras.push(extra);
            } else {
                pmus.push(read_pmu(&mut r)?);
            }
        }
        let data_rate = r.i16()?;
        if r.remaining() != 0 {
            return Err(ParseError::SizeMismatch);
        }
        Ok(Config { kind, idcode: p.idcode, time: p.time, time_base, pmus, data_rate, extras })
    }

    /// Data frames per second: DATA_RATE if positive, 1 / |DATA_RATE| if negative, 0 if zero.
    pub fn rate_hz(&self) -> f64 {
        match self.data_rate {
            0 => 0.0,
            r if r > 0 => f64::from(r),
            r => 1.0 / -f64::from(r),
        }
    }

    /// FRAMESIZE of this configuration's data frames (CRC included).
    pub fn data_frame_len(&self) -> usize {
        MIN_FRAME + self.pmus.iter().map(PmuConfig::data_len).sum::<usize>()
    }

    /// The index in `pmus` of the PMU whose station name is `station` (padding ignored).
    pub fn pmu_by_station(&self, station: &str) -> Option<usize> {
        let wanted = station.trim_end_matches([' ', '\0']);
        self.pmus.iter().position(|p| p.station.trim_end_matches([' ', '\0']) == wanted)
    }

    /// The index in `pmus` of the PMU with this IDCODE.
    pub fn pmu_by_idcode(&self, idcode: u16) -> Option<usize> {
        self.pmus.iter().position(|p| p.idcode == idcode)
    }
}

fn count(n: usize, field: &'static str) -> Result<u16, EncodeError> {
    u16::try_from(n).map_err(|_| EncodeError::OutOfRange { field })
}

/// Writes a PMU block's channel names, the other way of [`read_channel_names`]: phasors,
/// analogs, then the 16 names of each digital word, each by `put_name`.
pub(crate) fn write_channel_names(
    pmu: &PmuConfig,
    out: &mut Vec<u8>,
    put_name: impl Fn(&mut Vec<u8>, &str) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    for name in pmu.phasors.iter().map(|p| &p.name).chain(pmu.analogs.iter().map(|a| &a.name)) {
        put_name(out, name)?;
    }
    for dg in &pmu.digitals {
        if dg.names.len() != 16 {
            return Err(EncodeError::OutOfRange { field: "digital names" });
        }
        for name in &dg.names {
            put_name(out, name)?;
        }
    }
    Ok(())
}

fn write_pmu(pmu: &PmuConfig, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    put_name(out, &pmu.station)?;
    out.extend_from_slice(&pmu.idcode.to_be_bytes());
    out.extend_from_slice(&pmu.format.to_word().to_be_bytes());
    out.extend_from_slice(&count(pmu.phasors.len(), "PHNMR")?.to_be_bytes());
    out.extend_from_slice(&count(pmu.analogs.len(), "ANNMR")?.to_be_bytes());
    out.extend_from_slice(&count(pmu.digitals.len(), "DGNMR")?.to_be_bytes());
    write_channel_names(pmu, out, put_name)?;
    for ph in &pmu.phasors {
        if ph.scale > 0x00FF_FFFF {
            return Err(EncodeError::OutOfRange { field: "PHUNIT" });
        }
        let kind: u32 = match ph.kind {
            PhasorKind::Voltage => 0,
            PhasorKind::Current => 1,
        };
        out.extend_from_slice(&((kind << 24) | ph.scale).to_be_bytes());
    }
    for an in &pmu.analogs {
        if !(-0x80_0000..=0x7F_FFFF).contains(&an.scale) {
            return Err(EncodeError::OutOfRange { field: "ANUNIT" });
        }
        let word = (u32::from(an.kind.code()) << 24) | (an.scale as u32 & 0x00FF_FFFF);
        out.extend_from_slice(&word.to_be_bytes());
    }
    for dg in &pmu.digitals {
        out.extend_from_slice(&dg.normal.to_be_bytes());
        out.extend_from_slice(&dg.valid.to_be_bytes());
    }
    let fnom: u16 = match pmu.nominal {
        Nominal::Hz60 => 0,
        Nominal::Hz50 => 1,
    };
    out.extend_from_slice(&fnom.to_be_bytes());
    out.extend_from_slice(&pmu.cfgcnt.to_be_bytes());
    Ok(())
}

/// The channel names of one PMU block: phasors, analogs, then 16 per digital word, each
/// read by `get_name` (16 padded bytes in CFG-1/2, length-prefixed in CFG-3). The caller
/// has checked that the counts fit in what is left of the frame.
pub(crate) type ChannelNames = (Vec<String>, Vec<String>, Vec<Vec<String>>);

pub(crate) fn read_channel_names(
    r: &mut Reader<'_>,
    phnmr: usize,
    annmr: usize,
    dgnmr: usize,
    get_name: impl Fn(&mut Reader<'_>) -> Result<String, ParseError>,
) -> Result<ChannelNames, ParseError> {
    let names = |r: &mut Reader<'_>, n: usize| -> Result<Vec<String>, ParseError> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(get_name(r)?);
        }
        Ok(out)
    };
    let phasors = names(r, phnmr)?;
    let analogs = names(r, annmr)?;
    let mut digitals = Vec::with_capacity(dgnmr);
    for _ in 0..dgnmr {
        digitals.push(names(r, 16)?);
    }
    Ok((phasors, analogs, digitals))
}

fn read_pmu(r: &mut Reader<'_>) -> Result<PmuConfig, ParseError> {
    let station = get_name(r)?;
    let idcode = r.u16()?;
    let format = Format::from_word(r.u16()?);
    let phnmr = usize::from(r.u16()?);
    let annmr = usize::from(r.u16()?);
    let dgnmr = usize::from(r.u16()?);
    // Names, units, FNOM and CFGCNT of these counts must fit in what is left; checked
    // before any vector is reserved (at most 65535 * 260 bytes: no overflow).
    let needed = phnmr * (16 + 4) + annmr * (16 + 4) + dgnmr * (16 * 16 + 4) + 4;
    if needed > r.remaining() {
        return Err(ParseError::Invalid { field: "channel counts" });
    }
    let (phasor_names, analog_names, digital_names) = read_channel_names(r, phnmr, annmr, dgnmr, get_name)?;
    let mut phasors = Vec::with_capacity(phnmr);
    for name in phasor_names {
        let word = r.u32()?;
        let kind = match word >> 24 {
            0 => PhasorKind::Voltage,
            1 => PhasorKind::Current,
            _ => return Err(ParseError::Invalid { field: "PHUNIT" }),
        };
        phasors.push(PhasorChannel { name, kind, scale: word & 0x00FF_FFFF });
    }
    let mut analogs = Vec::with_capacity(annmr);
    for name in analog_names {
        let word = r.u32()?;
        // Sign-extend the low 24 bits.
        let scale = ((word << 8) as i32) >> 8;
        analogs.push(AnalogChannel { name, kind: AnalogKind::from_code((word >> 24) as u8), scale });
    }
    let mut digitals = Vec::with_capacity(dgnmr);
    for names in digital_names {
        let normal = r.u16()?;
        let valid = r.u16()?;
        digitals.push(DigitalWord { names, normal, valid });
    }
    // FNOM bit 0; bits 15-1 are reserved and ignored.
    let nominal = if r.u16()? & 1 == 1 { Nominal::Hz50 } else { Nominal::Hz60 };
    let cfgcnt = r.u16()?;
    Ok(PmuConfig { station, idcode, format, phasors, analogs, digitals, nominal, cfgcnt })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Config {
        let names = |p: &str| (0..16).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        Config {
            kind: ConfigKind::Cfg2,
            idcode: 9,
            time: Time { soc: 100, fracsec: 5, ..Time::default() },
            time_base: 1_000_000,
            pmus: vec![PmuConfig {
                station: "ST".into(),
                idcode: 10,
                format: Format { phasor_polar: true, ..Format::default() },
                phasors: vec![PhasorChannel { name: "VA".into(), kind: PhasorKind::Voltage, scale: 915_527 }],
                analogs: vec![AnalogChannel { name: "P".into(), kind: AnalogKind::Other(70), scale: -3 }],
                digitals: vec![DigitalWord { names: names("B"), normal: 1, valid: 0xFFFF }],
                nominal: Nominal::Hz50,
                cfgcnt: 3,
            }],
            data_rate: -5,
            extras: vec![],
        }
    }

    #[test]
    fn round_trips_and_helpers() {
        let c = sample();
        let mut out = Vec::new();
        c.try_encode(&mut out).unwrap();
        assert_eq!(Config::parse(&out), Ok(c.clone()));
        assert_eq!(c.rate_hz(), 0.2);
        assert_eq!(c.pmu_by_station("ST  "), Some(0));
        assert_eq!(c.pmu_by_idcode(10), Some(0));
        assert_eq!(c.pmu_by_idcode(9), None);
        // stat 2 + polar int phasor 4 + freq/dfreq 4 + analog 2 + digital 2
        assert_eq!(c.data_frame_len(), 16 + 14);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let mut out = vec![];
        let mut c = sample();
        c.pmus[0].station = "a name longer than sixteen".into();
        assert_eq!(c.try_encode(&mut out), Err(EncodeError::OutOfRange { field: "name" }));
        c = sample();
        c.pmus[0].phasors[0].scale = 1 << 24;
        assert_eq!(c.try_encode(&mut out), Err(EncodeError::OutOfRange { field: "PHUNIT" }));
        c = sample();
        c.pmus[0].analogs[0].scale = 1 << 23;
        assert_eq!(c.try_encode(&mut out), Err(EncodeError::OutOfRange { field: "ANUNIT" }));
        c = sample();
        c.kind = ConfigKind::Cfg3;
        c.encode(&mut out);
        assert!(out.is_empty(), "CFG-3 without extras");
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let mut out = Vec::new();
        sample().encode(&mut out);
        // PHNMR := 65535 (offset: header 14, TIME_BASE 4, NUM_PMU 2, STN 16, IDCODE 2, FORMAT 2).
        out[40..42].copy_from_slice(&[0xFF, 0xFF]);
        let n = out.len();
        let crc = crate::crc_ccitt(&out[..n - 2]);
        out[n - 2..].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(Config::parse(&out), Err(ParseError::Invalid { field: "channel counts" }));
    }
}
