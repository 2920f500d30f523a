//! The owner's measure of a stream's ingest rate: samples per second over a window of at
//! least a second, published with the time of the last batch (so readers can tell a stream
//! that stopped).

use std::time::Instant;

use crate::snapshot::IngestRate;

/// Samples per second over the last window that lasted at least a second: a window ends
/// at the first batch a second or more after its start, and counts the samples that came
/// after its start, up to and including that batch. A slow stream's window spans its gap.
pub(super) struct RateMeter {
    window_start: Instant,
    samples: u64,
    rate: f64,
    last_batch_at: Option<Instant>,
}

impl RateMeter {
    pub(super) fn new() -> Self {
        Self { window_start: Instant::now(), samples: 0, rate: 0.0, last_batch_at: None }
    }

    pub(super) fn add(&mut self, samples: u64) {
        self.add_at(samples, Instant::now());
    }

    fn add_at(&mut self, samples: u64, now: Instant) {
        // The first window starts at the first batch, not when the owner started (a stream
        // created long before its first sample would otherwise start with a tiny rate).
        let first = self.last_batch_at.is_none();
        self.last_batch_at = Some(now);
        if first {
            self.window_start = now;
            return;
        }
        self.samples += samples;
        let elapsed = now.saturating_duration_since(self.window_start).as_secs_f64();
        if elapsed >= 1.0 {
            self.rate = self.samples as f64 / elapsed;
            self.samples = 0;
            self.window_start = now;
        }
    }

    pub(super) fn published(&self) -> IngestRate {
        IngestRate { per_second: self.rate, last_batch_at: self.last_batch_at }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_rate_is_measured_over_a_second_and_a_silent_stream_reads_as_zero() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut meter = RateMeter::new();
        assert_eq!(meter.published().at(at(0)), 0.0);
        // 30 samples every 100 ms after the first batch: 300 per second.
        for k in 0..=10 {
            meter.add_at(30, at(5_000 + 100 * k));
        }
        let rate = meter.published();
        assert!((rate.per_second - 300.0).abs() < 1e-9, "{rate:?}");
        assert_eq!(rate.last_batch_at, Some(at(6_000)));
        assert_eq!(rate.at(at(7_500)), 300.0);
        // Silent: readers see 0 once SILENT_AFTER has passed.
        assert_eq!(rate.at(at(8_001)), 0.0);

        // One sample every 5 s: 0.2 per second, and not silent between its samples.
        let mut slow = RateMeter::new();
        for k in 0..4 {
            slow.add_at(1, at(5_000 * k));
        }
        let rate = slow.published();
        assert!((rate.per_second - 0.2).abs() < 1e-12, "{rate:?}");
        assert_eq!(rate.at(at(15_000 + 14_000)), 0.2);
        assert_eq!(rate.at(at(15_000 + 15_001)), 0.0);
    }
}
