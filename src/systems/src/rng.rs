//! Small seeded pseudo-random generator (xoshiro256** seeded by SplitMix64) with
//! uniform and normal draws, so the crate needs no `rand` dependency.

/// Seeded pseudo-random number generator: xoshiro256** whose state is filled by SplitMix64.
///
/// Not cryptographic. The sequence is fixed for a given seed on every platform, which is
/// what makes simulations reproducible bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct Rng {
    state: [u64; 4],
    // The polar method yields normals in pairs; the second one is kept for the next call.
    spare_normal: Option<f64>,
}

/// One SplitMix64 step: advances `counter` and returns a well-mixed 64-bit value.
fn splitmix64(counter: &mut u64) -> u64 {
    *counter = counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *counter;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// Creates a generator from a seed; equal seeds give equal sequences.
    pub fn new(seed: u64) -> Self {
        let mut counter = seed;
        let mut state = [0u64; 4];
        for word in &mut state {
            *word = splitmix64(&mut counter);
        }
        // SplitMix64 is a bijection of its counter, so four consecutive outputs are never all zero.
        Self { state, spare_normal: None }
    }

    /// Creates the generator of an independent sub-stream `stream` of `seed`.
    ///
    /// Different purposes (initial state, process noise, each measurement effect) use
    /// different streams, so switching one effect on does not change the draws of another.
    pub fn stream(seed: u64, stream: u64) -> Self {
        let mut counter = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Self::new(splitmix64(&mut counter))
    }

    /// Next raw 64-bit output (xoshiro256**).
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let shifted = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= shifted;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform draw in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }

    /// Uniform draw in [low, high).
    pub fn uniform_in(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// True with probability `p` (p <= 0 never, p >= 1 always).
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal draw (Marsaglia's polar method).
    pub fn normal(&mut self) -> f64 {
        if let Some(spare) = self.spare_normal.take() {
            return spare;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let factor = (-2.0 * s.ln() / s).sqrt();
                self.spare_normal = Some(v * factor);
                return u * factor;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_different_seed_differs() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let mut c = Rng::new(43);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn streams_are_distinct() {
        let mut a = Rng::stream(7, 1);
        let mut b = Rng::stream(7, 2);
        assert_ne!(a.next_u64(), b.next_u64());
        assert_eq!(Rng::stream(7, 1), Rng::stream(7, 1));
    }

    #[test]
    fn uniform_moments() {
        let mut rng = Rng::new(1);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
        assert!(draws.iter().all(|&u| (0.0..1.0).contains(&u)));
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: 0.00065 for the mean, about 0.0002 for the variance.
        assert!((mean - 0.5).abs() < 0.004, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.002, "var {var}");
    }

    #[test]
    fn normal_moments() {
        let mut rng = Rng::new(2);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / n as f64;
        let kurt = draws.iter().map(|z| (z - mean).powi(4)).sum::<f64>() / n as f64 / var.powi(2);
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "var {var}");
        assert!((kurt - 3.0).abs() < 0.1, "kurtosis {kurt}");
    }
}
