//! Frame time stamps: SOC (seconds since 1970 UTC), FRACSEC (24-bit count of
//! 1/TIME_BASE s) and the time-quality byte that shares FRACSEC's 32 bits.
//!
//! TIME_BASE lives in the configuration, so a time stamp is kept as raw counts and turned
//! into seconds only when the caller gives the base.

/// The message time quality flags (FRACSEC bits 31-24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeQuality {
    /// Bit 6: the pending or last leap second was deleted (true) or added (false).
    pub leap_direction_negative: bool,
    /// Bit 5: a leap second occurred within the last 24 hours.
    pub leap_occurred: bool,
    /// Bit 4: a leap second is pending.
    pub leap_pending: bool,
    /// Bits 3-0: the message time quality code (0 = locked to UTC, 0xF = clock fault).
    pub code: u8,
}

impl TimeQuality {
    /// Reads the quality byte; the reserved bit 7 is ignored.
    pub fn from_byte(b: u8) -> Self {
        TimeQuality {
            leap_direction_negative: b & 0x40 != 0,
            leap_occurred: b & 0x20 != 0,
            leap_pending: b & 0x10 != 0,
            code: b & 0x0F,
        }
    }

    /// The quality byte (only the low 4 bits of `code` are kept).
    pub fn to_byte(self) -> u8 {
        (u8::from(self.leap_direction_negative) << 6)
            | (u8::from(self.leap_occurred) << 5)
            | (u8::from(self.leap_pending) << 4)
            | (self.code & 0x0F)
    }
}

/// A frame time stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Time {
    /// Seconds since 1970-01-01 00:00 UTC.
    pub soc: u32,
    /// 24-bit count of 1/TIME_BASE s within the second.
    pub fracsec: u32,
    /// The quality byte.
    pub quality: TimeQuality,
}

impl Time {
    /// The time stamp in seconds: soc + fracsec / time_base (soc alone for a zero base).
    pub fn seconds(&self, time_base: u32) -> f64 {
        if time_base == 0 {
            return f64::from(self.soc);
        }
        f64::from(self.soc) + f64::from(self.fracsec) / f64::from(time_base)
    }

    /// The time stamp nearest to `t` seconds: the fraction rounds to the nearest count and
    /// a fraction that rounds up to a whole second carries into `soc`. Values outside
    /// SOC's range saturate (NaN gives 0); a zero base keeps whole seconds only.
    pub fn from_seconds(t: f64, time_base: u32, quality: TimeQuality) -> Time {
        let whole = t.floor();
        let mut soc = whole as u32; // saturating cast
        let mut fracsec = 0;
        if time_base > 0 && whole >= 0.0 && whole <= f64::from(u32::MAX) {
            let count = ((t - whole) * f64::from(time_base)).round() as u32;
            if count >= time_base {
                soc = soc.saturating_add(1);
            } else {
                fracsec = count;
            }
        }
        Time { soc, fracsec, quality }
    }

    /// The FRACSEC word: quality byte, then the 24-bit count.
    pub(crate) fn fracsec_word(&self) -> u32 {
        (u32::from(self.quality.to_byte()) << 24) | (self.fracsec & 0x00FF_FFFF)
    }

    pub(crate) fn from_words(soc: u32, fracsec_word: u32) -> Time {
        Time { soc, fracsec: fracsec_word & 0x00FF_FFFF, quality: TimeQuality::from_byte((fracsec_word >> 24) as u8) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_byte_round_trips() {
        for b in 0..=0x7Fu8 {
            assert_eq!(TimeQuality::from_byte(b).to_byte(), b);
        }
        let q = TimeQuality::from_byte(0x56);
        assert!(q.leap_direction_negative && !q.leap_occurred && q.leap_pending);
        assert_eq!(q.code, 6);
    }

    #[test]
    fn seconds_and_back() {
        let q = TimeQuality::default();
        let t = Time::from_seconds(1_149_577_200.463, 1_000_000, q);
        assert_eq!((t.soc, t.fracsec), (1_149_577_200, 463_000));
        assert!((t.seconds(1_000_000) - 1_149_577_200.463).abs() < 1e-6);
        // A fraction that rounds to a whole second carries.
        let t = Time::from_seconds(10.9999999, 1000, q);
        assert_eq!((t.soc, t.fracsec), (11, 0));
        assert_eq!(Time::from_seconds(-5.0, 1000, q).soc, 0);
        assert_eq!(Time::from_seconds(f64::NAN, 1000, q), Time::default());
        assert_eq!(Time::from_seconds(3.5, 0, q).seconds(0), 3.0);
    }
}
