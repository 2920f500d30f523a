//! CFG-3 configuration frames (C37.118.2-2011, 6.4, Table 10): the fields CFG-2 lacks and
//! the CFG-3 body layout, read and written beside `config`'s CFG-1/CFG-2 code.
//!
//! Layout after the common header: CONT_IDX (2), TIME_BASE (4), NUM_PMU (2), then per PMU:
//! STN (1-byte length + UTF-8), IDCODE (2), G_PMU_ID (16), FORMAT (2), PHNMR, ANNMR, DGNMR
//! (2 each), channel names (length-prefixed; 16 per digital word), PHSCALE per phasor (a
//! flags/type word, the scale factor and the angle offset, 4 bytes each), ANSCALE per
//! analog (scale factor and offset, floats), DIGUNIT per digital word (4), PMU_LAT,
//! PMU_LON, PMU_ELEV (floats), SVC_CLASS (1), WINDOW (4), GRP_DLY (4), FNOM (2), CFGCNT
//! (2); after the PMUs DATA_RATE (2).
//!
//! This layout was written from a description of the standard's table, not checked against
//! the standard's text or against frames of another implementation (pyc37 has no CFG-3):
//! it is tested by round trips and the property tests only.
//!
//! Only single frames are decoded: a CONT_IDX other than 0 (a fragment of a configuration
//! split over several frames) is `ParseError::Unsupported { what: "fragmented CFG-3" }`,
//! and frames are always encoded with CONT_IDX 0.
//!
//! CFG-3 has no PHUNIT or ANUNIT words: a parsed CFG-3 `PhasorChannel` has scale 0 and its
//! kind from PHSCALE's type bit, a parsed `AnalogChannel` has kind `SinglePoint` and scale
//! 0; the scales that apply are `Cfg3Pmu`'s (the data frame rules are in `data`).

use crate::bytes::Reader;
use crate::channel::{AnalogChannel, AnalogKind, DigitalWord, Format, Nominal, PhasorChannel, PhasorKind};
use crate::config::{PmuConfig, read_channel_names, write_channel_names};
use crate::error::{EncodeError, ParseError};

/// PHSCALE's first word: bit 3 of its low byte says current (1) or voltage (0).
const CURRENT_BIT: u32 = 1 << 3;

/// One phasor's PHSCALE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhasorScale {
    /// The first word (bits 31-16 modification flags, bits 7-0 phasor type and component)
    /// without the voltage/current bit, which is `PhasorChannel::kind`.
    pub flags: u32,
    /// Volts or amperes per bit of integer data (informational for float formats).
    pub scale: f32,
    /// Angle adjustment in radians (informational: decoding does not apply it).
    pub angle_offset: f32,
}

impl Default for PhasorScale {
    fn default() -> Self {
        PhasorScale { flags: 0, scale: 1.0, angle_offset: 0.0 }
    }
}

/// One analog's ANSCALE: value = scale * integer + offset for integer formats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalogScale {
    pub scale: f32,
    pub offset: f32,
}

impl Default for AnalogScale {
    fn default() -> Self {
        AnalogScale { scale: 1.0, offset: 0.0 }
    }
}

/// What CFG-3 says about one PMU beyond CFG-2 (`Config::extras`, one per PMU, in order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cfg3Pmu {
    /// G_PMU_ID: the PMU's global 16-byte identifier.
    pub global_id: [u8; 16],
    /// PHSCALE, one per phasor.
    pub phasor_scales: Vec<PhasorScale>,
    /// ANSCALE, one per analog.
    pub analog_scales: Vec<AnalogScale>,
    /// PMU_LAT, PMU_LON (degrees), PMU_ELEV (metres).
    pub latitude: f32,
    pub longitude: f32,
    pub elevation: f32,
    /// SVC_CLASS: b'M' or b'P' (kept as sent).
    pub service_class: u8,
    /// WINDOW and GRP_DLY, as sent (signed 32-bit).
    pub window: i32,
    pub group_delay: i32,
}

/// The fewest bytes of a CFG-3 PMU block: empty STN, IDCODE, G_PMU_ID, FORMAT, the three
/// counts, LAT/LON/ELEV, SVC_CLASS, WINDOW, GRP_DLY, FNOM, CFGCNT.
pub(crate) const PMU_FIXED: usize = 1 + 2 + 16 + 2 + 6 + 12 + 1 + 4 + 4 + 2 + 2;

fn put_name(out: &mut Vec<u8>, name: &str) -> Result<(), EncodeError> {
    let len = u8::try_from(name.len()).map_err(|_| EncodeError::OutOfRange { field: "name" })?;
    out.push(len);
    out.extend_from_slice(name.as_bytes());
    Ok(())
}

fn get_name(r: &mut Reader<'_>) -> Result<String, ParseError> {
    let len = usize::from(r.take(1)?[0]);
    let raw = r.take(len)?;
    let s = std::str::from_utf8(raw).map_err(|_| ParseError::Invalid { field: "name" })?;
    Ok(s.to_owned())
}

fn count(n: usize, field: &'static str) -> Result<u16, EncodeError> {
    u16::try_from(n).map_err(|_| EncodeError::OutOfRange { field })
}

pub(crate) fn write_pmu(pmu: &PmuConfig, extra: &Cfg3Pmu, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if extra.phasor_scales.len() != pmu.phasors.len() || extra.analog_scales.len() != pmu.analogs.len() {
        return Err(EncodeError::ShapeMismatch);
    }
    put_name(out, &pmu.station)?;
    out.extend_from_slice(&pmu.idcode.to_be_bytes());
    out.extend_from_slice(&extra.global_id);
    out.extend_from_slice(&pmu.format.to_word().to_be_bytes());
    out.extend_from_slice(&count(pmu.phasors.len(), "PHNMR")?.to_be_bytes());
    out.extend_from_slice(&count(pmu.analogs.len(), "ANNMR")?.to_be_bytes());
    out.extend_from_slice(&count(pmu.digitals.len(), "DGNMR")?.to_be_bytes());
    write_channel_names(pmu, out, put_name)?;
    for (ph, s) in pmu.phasors.iter().zip(&extra.phasor_scales) {
        let kind = match ph.kind {
            PhasorKind::Voltage => 0,
            PhasorKind::Current => CURRENT_BIT,
        };
        out.extend_from_slice(&((s.flags & !CURRENT_BIT) | kind).to_be_bytes());
        out.extend_from_slice(&s.scale.to_be_bytes());
        out.extend_from_slice(&s.angle_offset.to_be_bytes());
    }
    for s in &extra.analog_scales {
        out.extend_from_slice(&s.scale.to_be_bytes());
        out.extend_from_slice(&s.offset.to_be_bytes());
    }
    for dg in &pmu.digitals {
        out.extend_from_slice(&dg.normal.to_be_bytes());
        out.extend_from_slice(&dg.valid.to_be_bytes());
    }
    for v in [extra.latitude, extra.longitude, extra.elevation] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.push(extra.service_class);
    out.extend_from_slice(&extra.window.to_be_bytes());
    out.extend_from_slice(&extra.group_delay.to_be_bytes());
    let fnom: u16 = match pmu.nominal {
        Nominal::Hz60 => 0,
        Nominal::Hz50 => 1,
    };
    out.extend_from_slice(&fnom.to_be_bytes());
    out.extend_from_slice(&pmu.cfgcnt.to_be_bytes());
    Ok(())
}

pub(crate) fn read_pmu(r: &mut Reader<'_>) -> Result<(PmuConfig, Cfg3Pmu), ParseError> {
    let station = get_name(r)?;
    let idcode = r.u16()?;
    let mut global_id = [0u8; 16];
    global_id.copy_from_slice(r.take(16)?);
    let format = Format::from_word(r.u16()?);
    let phnmr = usize::from(r.u16()?);
    let annmr = usize::from(r.u16()?);
    let dgnmr = usize::from(r.u16()?);
    // The fewest bytes these counts need (empty names): checked before any vector is
    // reserved, so a lying count cannot make the parser allocate more than the frame holds.
    let needed = phnmr * (1 + 12) + annmr * (1 + 8) + dgnmr * (16 + 4) + (PMU_FIXED - 1 - 2 - 16 - 2 - 6);
    if needed > r.remaining() {
        return Err(ParseError::Invalid { field: "channel counts" });
    }
    let (phasor_names, analog_names, digital_names) = read_channel_names(r, phnmr, annmr, dgnmr, get_name)?;
    let mut phasors = Vec::with_capacity(phnmr);
    let mut phasor_scales = Vec::with_capacity(phnmr);
    for name in phasor_names {
        let word = r.u32()?;
        let kind = if word & CURRENT_BIT != 0 { PhasorKind::Current } else { PhasorKind::Voltage };
        phasors.push(PhasorChannel { name, kind, scale: 0 });
        phasor_scales.push(PhasorScale { flags: word & !CURRENT_BIT, scale: r.f32()?, angle_offset: r.f32()? });
    }
    let mut analogs = Vec::with_capacity(annmr);
    let mut analog_scales = Vec::with_capacity(annmr);
    for name in analog_names {
        analogs.push(AnalogChannel { name, kind: AnalogKind::SinglePoint, scale: 0 });
        analog_scales.push(AnalogScale { scale: r.f32()?, offset: r.f32()? });
    }
    let mut digitals = Vec::with_capacity(dgnmr);
    for names in digital_names {
        let normal = r.u16()?;
        let valid = r.u16()?;
        digitals.push(DigitalWord { names, normal, valid });
    }
    let latitude = r.f32()?;
    let longitude = r.f32()?;
    let elevation = r.f32()?;
    let service_class = r.take(1)?[0];
    let window = r.u32()? as i32;
    let group_delay = r.u32()? as i32;
    // FNOM bit 0; bits 15-1 are reserved and ignored.
    let nominal = if r.u16()? & 1 == 1 { Nominal::Hz50 } else { Nominal::Hz60 };
    let cfgcnt = r.u16()?;
    let pmu = PmuConfig { station, idcode, format, phasors, analogs, digitals, nominal, cfgcnt };
    let extra = Cfg3Pmu {
        global_id,
        phasor_scales,
        analog_scales,
        latitude,
        longitude,
        elevation,
        service_class,
        window,
        group_delay,
    };
    Ok((pmu, extra))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigKind};
    use crate::time::Time;

    /// Two PMUs, the second with a long UTF-8 station name and a digital word.
    fn sample() -> Config {
        let pmu = PmuConfig {
            station: "Śląsk Ü".into(),
            idcode: 10,
            format: Format { phasor_polar: true, ..Format::default() },
            phasors: vec![PhasorChannel { name: "VA".into(), kind: PhasorKind::Current, scale: 0 }],
            analogs: vec![AnalogChannel { name: "P".into(), kind: AnalogKind::SinglePoint, scale: 0 }],
            digitals: vec![],
            nominal: Nominal::Hz50,
            cfgcnt: 3,
        };
        let long = "a station name well over the sixteen bytes of CFG-2 — ünïcödé".to_string();
        let names = (0..16).map(|i| format!("bit {i}")).collect();
        let second = PmuConfig {
            station: long,
            idcode: 11,
            digitals: vec![DigitalWord { names, normal: 1, valid: 0xFFFF }],
            ..pmu.clone()
        };
        let extra = Cfg3Pmu {
            global_id: [7; 16],
            phasor_scales: vec![PhasorScale { flags: 0x0001_0004, scale: 0.01, angle_offset: -0.5 }],
            analog_scales: vec![AnalogScale { scale: 2.0, offset: 1.0 }],
            latitude: 52.2,
            longitude: 21.0,
            elevation: 100.0,
            service_class: b'P',
            window: -20,
            group_delay: 5000,
        };
        Config {
            kind: ConfigKind::Cfg3,
            idcode: 9,
            time: Time { soc: 100, fracsec: 5, ..Time::default() },
            time_base: 1_000_000,
            pmus: vec![pmu, second],
            data_rate: 50,
            extras: vec![extra.clone(), extra],
        }
    }

    fn encoded(c: &Config) -> Vec<u8> {
        let mut out = Vec::new();
        c.try_encode(&mut out).unwrap();
        out
    }

    /// Puts a valid CRC back after an edit.
    fn recrc(out: &mut [u8]) {
        let n = out.len();
        let crc = crate::crc_ccitt(&out[..n - 2]);
        out[n - 2..].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn round_trips_with_several_pmus() {
        let c = sample();
        let out = encoded(&c);
        assert_eq!(out[1], 0x52, "CFG-3, version 2");
        assert_eq!(Config::parse(&out), Ok(c));
    }

    #[test]
    fn typed_errors() {
        let mut out = encoded(&sample());
        // CONT_IDX at offset 14.
        out[15] = 1;
        recrc(&mut out);
        assert_eq!(Config::parse(&out), Err(ParseError::Unsupported { what: "fragmented CFG-3" }));

        // STN's length byte (offset 14 + 2 + 4 + 2) says more than the frame holds.
        let mut one = sample();
        one.pmus.truncate(1);
        one.extras.truncate(1);
        let mut out = encoded(&one);
        assert!(out.len() < 200);
        out[22] = 255;
        recrc(&mut out);
        assert_eq!(Config::parse(&out), Err(ParseError::Short));

        // A name that is not UTF-8.
        let mut out = encoded(&sample());
        out[23] = 0xFF;
        recrc(&mut out);
        assert_eq!(Config::parse(&out), Err(ParseError::Invalid { field: "name" }));

        // PHNMR := 65535 (after STN (1 + 9 bytes), IDCODE, G_PMU_ID, FORMAT).
        let mut out = encoded(&sample());
        let phnmr = 22 + 1 + "Śląsk Ü".len() + 2 + 16 + 2;
        out[phnmr..phnmr + 2].copy_from_slice(&[0xFF, 0xFF]);
        recrc(&mut out);
        assert_eq!(Config::parse(&out), Err(ParseError::Invalid { field: "channel counts" }));

        // NUM_PMU beyond the bytes.
        let mut out = encoded(&sample());
        out[20..22].copy_from_slice(&[0x10, 0x00]);
        recrc(&mut out);
        assert_eq!(Config::parse(&out), Err(ParseError::Invalid { field: "NUM_PMU" }));

        // A truncated frame (FRAMESIZE and CRC fixed up) stops at a field.
        let mut out = encoded(&sample());
        out.truncate(out.len() - 10);
        let n = out.len() as u16 + 2;
        out[2..4].copy_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        recrc(&mut out);
        assert!(matches!(Config::parse(&out), Err(ParseError::Short | ParseError::SizeMismatch)));
    }

    #[test]
    fn encoding_refusals() {
        let mut c = sample();
        c.pmus[0].station = "x".repeat(256);
        assert_eq!(c.try_encode(&mut Vec::new()), Err(EncodeError::OutOfRange { field: "name" }));
        let mut c = sample();
        c.pmus[1].station = "y".repeat(255);
        assert!(c.try_encode(&mut Vec::new()).is_ok(), "255 bytes fit");
        let mut c = sample();
        c.extras.pop();
        assert_eq!(c.try_encode(&mut Vec::new()), Err(EncodeError::ShapeMismatch));
        let mut c = sample();
        c.extras[0].phasor_scales.clear();
        assert_eq!(c.try_encode(&mut Vec::new()), Err(EncodeError::ShapeMismatch));
    }

    #[test]
    fn integer_data_uses_phscale_and_anscale() {
        let c = sample();
        let mut data = crate::DataFrame::shaped_for(&c);
        for d in &mut data.pmus {
            d.freq_hz = 50.0;
        }
        data.pmus[0].phasors[0] = crate::Phasor::from_polar(3.0, 0.0);
        data.pmus[0].analogs[0] = 7.0;
        let mut out = Vec::new();
        data.encode(&c, &mut out).unwrap();
        // Magnitude 3.0 / 0.01 = 300; analog (7 - 1) / 2 = 3.
        let block = crate::prefix::HEADER_LEN;
        assert_eq!(&out[block + 2..block + 4], &300u16.to_be_bytes());
        assert_eq!(&out[block + 10..block + 12], &3i16.to_be_bytes());
        let back = crate::DataFrame::parse(&out, &c).unwrap();
        assert!((back.pmus[0].phasors[0].magnitude() - 3.0).abs() < 1e-6);
        assert_eq!(back.pmus[0].analogs[0], 7.0);
    }
}
