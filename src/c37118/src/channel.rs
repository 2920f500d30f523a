//! What a configuration frame says about one PMU's channels: the data format (FORMAT),
//! phasor, analog and digital channels with their units (PHUNIT, ANUNIT, DIGUNIT) and the
//! nominal frequency (FNOM).

/// FORMAT bits 3-0: how a PMU's data frame values are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Format {
    /// Bit 3: FREQ/DFREQ as 32-bit floats (else 16-bit integers).
    pub freq_float: bool,
    /// Bit 2: analogs as 32-bit floats (else 16-bit integers).
    pub analog_float: bool,
    /// Bit 1: phasors as 32-bit floats (else 16-bit integers).
    pub phasor_float: bool,
    /// Bit 0: phasors in polar form (else rectangular).
    pub phasor_polar: bool,
}

impl Format {
    /// Reads the FORMAT word; the reserved bits 15-4 are ignored.
    pub fn from_word(w: u16) -> Self {
        Format { freq_float: w & 8 != 0, analog_float: w & 4 != 0, phasor_float: w & 2 != 0, phasor_polar: w & 1 != 0 }
    }

    pub fn to_word(self) -> u16 {
        (u16::from(self.freq_float) << 3)
            | (u16::from(self.analog_float) << 2)
            | (u16::from(self.phasor_float) << 1)
            | u16::from(self.phasor_polar)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhasorKind {
    Voltage,
    Current,
}

/// A phasor channel: its name and PHUNIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhasorChannel {
    pub name: String,
    pub kind: PhasorKind,
    /// PHUNIT's 24 bits: 1e-5 V or A per bit of integer data (ignored for float formats).
    pub scale: u32,
}

/// ANUNIT's most significant byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalogKind {
    /// 0: single point-on-wave.
    SinglePoint,
    /// 1: RMS of the analog input.
    Rms,
    /// 2: peak of the analog input.
    Peak,
    /// Any other code (reserved or user-defined), kept as sent.
    Other(u8),
}

impl AnalogKind {
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => AnalogKind::SinglePoint,
            1 => AnalogKind::Rms,
            2 => AnalogKind::Peak,
            other => AnalogKind::Other(other),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            AnalogKind::SinglePoint => 0,
            AnalogKind::Rms => 1,
            AnalogKind::Peak => 2,
            AnalogKind::Other(c) => c,
        }
    }
}

/// An analog channel: its name and ANUNIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalogChannel {
    pub name: String,
    pub kind: AnalogKind,
    /// ANUNIT's signed 24 bits. The standard calls it "user-defined scaling" and gives no
    /// unit; this crate reads it as a plain multiplier: value = integer sent * scale
    /// (float formats ignore it).
    pub scale: i32,
}

/// A 16-bit digital status word: 16 channel names and DIGUNIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitalWord {
    /// The 16 channel names, bit 0 first as they are sent.
    pub names: Vec<String>,
    /// DIGUNIT's first word: the normal status of the inputs.
    pub normal: u16,
    /// DIGUNIT's second word: which inputs are valid.
    pub valid: u16,
}

/// FNOM: the nominal line frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nominal {
    Hz60,
    Hz50,
}

impl Nominal {
    pub fn hz(self) -> f64 {
        match self {
            Nominal::Hz60 => 60.0,
            Nominal::Hz50 => 50.0,
        }
    }
}
