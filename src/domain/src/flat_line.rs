//! Stuck-sensor detection: a state channel that repeats exactly the same value for a run of
//! samples is not measuring anything, and a model fed with it learns a false invariant. From
//! the `limit`-th identical value on, a sample is treated as missing (it breaks the chain of
//! pairs) and counted as `flat_line`; the first different value ends the run.

/// The runs of identical values per state channel, and the limit that makes one a flat line.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatLine {
    /// Identical values in a row that mark a flat line (0: detection off).
    pub limit: u64,
    /// The last value of each state channel (NaN before any, or after a missing one).
    pub last: Vec<f64>,
    /// How many times in a row each channel has shown its last value.
    pub run: Vec<u64>,
}

impl FlatLine {
    /// No runs yet for `n` state channels.
    pub fn new(n: usize, limit: u64) -> Self {
        Self { limit, last: vec![f64::NAN; n], run: vec![0; n] }
    }

    /// Takes one sample's states; whether any channel is now flat. No allocation.
    pub fn observe(&mut self, x: &[f64]) -> bool {
        let mut flat = false;
        for ((value, last), run) in x.iter().zip(&mut self.last).zip(&mut self.run) {
            if value.is_nan() {
                (*last, *run) = (f64::NAN, 0);
                continue;
            }
            if value.to_bits() == last.to_bits() {
                *run = run.saturating_add(1);
            } else {
                (*last, *run) = (*value, 1);
            }
            flat |= self.limit > 0 && *run >= self.limit;
        }
        flat
    }

    /// Forgets the runs (a reset that clears the watermarks starts afresh).
    pub fn clear(&mut self) {
        self.last.fill(f64::NAN);
        self.run.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_channel_is_flat_from_the_limit_on_and_recovers_at_the_first_change() {
        let mut f = FlatLine::new(2, 4);
        let verdicts: Vec<bool> = [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
            .iter()
            .enumerate()
            .map(|(k, &stuck)| f.observe(&[stuck, k as f64]))
            .collect();
        assert_eq!(verdicts, [false, false, false, true, true, false, false]);
        // A missing value interrupts a run; -0.0 and 0.0 are different readings.
        let mut f = FlatLine::new(1, 2);
        assert!(!f.observe(&[0.0]));
        assert!(!f.observe(&[f64::NAN]));
        assert!(!f.observe(&[0.0]));
        assert!(!f.observe(&[-0.0]));
        assert!(f.observe(&[-0.0]));
        // Limit 0 is off.
        let mut off = FlatLine::new(1, 0);
        assert!((0..100).all(|_| !off.observe(&[3.0])));
    }
}
