//! Seeded measurement models applied to a clean sampled trajectory: additive Gaussian
//! noise (sigma or SNR), outliers, dropouts and timestamp jitter.

use crate::error::{SystemsError, require};
use crate::rng::Rng;
use crate::trajectory::Trajectory;

/// Level of additive, zero-mean, i.i.d. Gaussian measurement noise.
#[derive(Debug, Clone, PartialEq)]
pub enum NoiseLevel {
    /// The same standard deviation on every channel.
    Sigma(f64),
    /// One standard deviation per channel, in column order.
    SigmaPerChannel(Vec<f64>),
    /// Signal-to-noise ratio in dB: noise std = (std of the clean channel) · 10^(−SNR/20).
    SnrDb(f64),
}

/// Size of an outlier spike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpikeSize {
    /// Spike of this absolute size (channel units).
    Absolute(f64),
    /// Spike of this many standard deviations of the clean channel, which suits channels
    /// of very different scales (e.g. angles and speeds) with one setting.
    ChannelStds(f64),
}

/// Outliers: with `probability` per value, a spike of ±`size` (random sign) is added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outliers {
    /// Probability that a given value is an outlier.
    pub probability: f64,
    /// Size of the spike.
    pub size: SpikeSize,
}

/// What happens between the simulated state and the recorded data. The default is clean.
///
/// Effects are applied per value in this order: Gaussian noise, outlier spike, dropout
/// (the value becomes NaN). Jitter perturbs each time stamp by a Gaussian draw; values
/// stay those of the nominal time and rows are not re-sorted. Each effect draws from its
/// own random stream, so enabling one does not change the realisation of another.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeasurementModel {
    /// Additive Gaussian noise, if any.
    pub noise: Option<NoiseLevel>,
    /// Outlier spikes, if any.
    pub outliers: Option<Outliers>,
    /// Probability that a value is lost (recorded as NaN).
    pub dropout_probability: f64,
    /// Standard deviation of the Gaussian time-stamp jitter (seconds).
    pub timestamp_jitter: f64,
}

/// Random-stream numbers of the individual effects (see [`Rng::stream`]).
const NOISE_STREAM: u64 = 1;
const OUTLIER_STREAM: u64 = 2;
const DROPOUT_STREAM: u64 = 3;
const JITTER_STREAM: u64 = 4;

impl MeasurementModel {
    /// The noise-free, loss-free model.
    pub fn clean() -> Self {
        Self::default()
    }

    /// Checks all parameters against a trajectory with `n_columns` channels.
    pub fn validate(&self, n_columns: usize) -> Result<(), SystemsError> {
        let probability = |p: f64| (0.0..=1.0).contains(&p);
        let non_negative = |s: f64| s.is_finite() && s >= 0.0;
        match &self.noise {
            Some(NoiseLevel::Sigma(s)) => require(non_negative(*s), "sigma", "must be >= 0 and finite")?,
            Some(NoiseLevel::SigmaPerChannel(s)) => {
                require(s.len() == n_columns, "sigma", "needs one value per channel")?;
                require(s.iter().all(|&v| non_negative(v)), "sigma", "must be >= 0 and finite")?;
            }
            Some(NoiseLevel::SnrDb(db)) => require(db.is_finite(), "snr", "must be finite")?,
            None => {}
        }
        if let Some(outliers) = &self.outliers {
            require(probability(outliers.probability), "outlier_probability", "must be in [0, 1]")?;
            let (SpikeSize::Absolute(size) | SpikeSize::ChannelStds(size)) = outliers.size;
            require(non_negative(size), "outlier_size", "must be >= 0 and finite")?;
        }
        require(probability(self.dropout_probability), "dropout_probability", "must be in [0, 1]")?;
        require(non_negative(self.timestamp_jitter), "timestamp_jitter", "must be >= 0 and finite")?;
        Ok(())
    }

    /// Returns a measured copy of `clean`, drawing all randomness from `seed`.
    pub fn apply(&self, clean: &Trajectory, seed: u64) -> Result<Trajectory, SystemsError> {
        let n_columns = clean.n_columns();
        self.validate(n_columns)?;
        let stds: Vec<f64> = (0..n_columns).map(|j| channel_std(&clean.column(j))).collect();
        let noise_std: Vec<f64> = match &self.noise {
            None => vec![0.0; n_columns],
            Some(NoiseLevel::Sigma(s)) => vec![*s; n_columns],
            Some(NoiseLevel::SigmaPerChannel(s)) => s.clone(),
            Some(NoiseLevel::SnrDb(db)) => stds.iter().map(|s| s * 10f64.powf(-db / 20.0)).collect(),
        };
        let mut measured = clean.clone();
        let mut noise_rng = Rng::stream(seed, NOISE_STREAM);
        let mut outlier_rng = Rng::stream(seed, OUTLIER_STREAM);
        let mut dropout_rng = Rng::stream(seed, DROPOUT_STREAM);
        let mut jitter_rng = Rng::stream(seed, JITTER_STREAM);
        let (times, values) = measured.parts_mut();
        for row in values.chunks_exact_mut(n_columns) {
            for (j, value) in row.iter_mut().enumerate() {
                if self.noise.is_some() {
                    *value += noise_std[j] * noise_rng.normal();
                }
                if let Some(outliers) = &self.outliers
                    && outlier_rng.chance(outliers.probability)
                {
                    let size = match outliers.size {
                        SpikeSize::Absolute(size) => size,
                        SpikeSize::ChannelStds(count) => count * stds[j],
                    };
                    let sign = if outlier_rng.chance(0.5) { 1.0 } else { -1.0 };
                    *value += sign * size;
                }
                if self.dropout_probability > 0.0 && dropout_rng.chance(self.dropout_probability) {
                    *value = f64::NAN;
                }
            }
        }
        if self.timestamp_jitter > 0.0 {
            for t in times.iter_mut() {
                *t += self.timestamp_jitter * jitter_rng.normal();
            }
        }
        Ok(measured)
    }
}

/// Population standard deviation of the finite values of a channel (0 if fewer than two).
pub fn channel_std(values: &[f64]) -> f64 {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.len() < 2 {
        return 0.0;
    }
    let n = finite.len() as f64;
    let mean = finite.iter().sum::<f64>() / n;
    (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two channels: a sine of amplitude 1 (std 1/√2) and a ramp scaled by 1e-3.
    fn clean(n: usize) -> Trajectory {
        let times: Vec<f64> = (0..n).map(|k| k as f64 * 0.01).collect();
        let values = times.iter().flat_map(|t| [(2.0 * std::f64::consts::PI * t).sin(), 1e-3 * t]).collect();
        Trajectory::new(vec!["s".into(), "r".into()], times, values).unwrap()
    }

    #[test]
    fn snr_gives_the_right_noise_std() {
        let clean = clean(20_000);
        let model = MeasurementModel { noise: Some(NoiseLevel::SnrDb(20.0)), ..MeasurementModel::clean() };
        let measured = model.apply(&clean, 5).unwrap();
        for j in 0..2 {
            let residual: Vec<f64> = clean.column(j).iter().zip(measured.column(j)).map(|(c, m)| m - c).collect();
            let expected = channel_std(&clean.column(j)) * 0.1;
            let got = channel_std(&residual);
            // With 20 000 draws the sample std has a relative standard error of 0.5 %.
            assert!((got / expected - 1.0).abs() < 0.03, "channel {j}: {got} vs {expected}");
        }
    }

    #[test]
    fn dropouts_outliers_and_jitter_happen_at_their_rates() {
        let clean = clean(10_000);
        let model = MeasurementModel {
            noise: None,
            outliers: Some(Outliers { probability: 0.02, size: SpikeSize::Absolute(50.0) }),
            dropout_probability: 0.1,
            timestamp_jitter: 1e-3,
        };
        let measured = model.apply(&clean, 9).unwrap();
        let total = (measured.n_rows() * measured.n_columns()) as f64;
        let nan = measured.values().iter().filter(|v| v.is_nan()).count() as f64;
        let spikes = measured.values().iter().filter(|v| v.abs() > 40.0).count() as f64;
        assert!((nan / total - 0.1).abs() < 0.01, "dropout rate {}", nan / total);
        // Spikes that were later dropped are invisible: expected rate 0.02 · 0.9.
        assert!((spikes / total - 0.018).abs() < 0.004, "outlier rate {}", spikes / total);
        let shifts: Vec<f64> = clean.times().iter().zip(measured.times()).map(|(a, b)| b - a).collect();
        assert!((channel_std(&shifts) / 1e-3 - 1.0).abs() < 0.05);
    }

    #[test]
    fn seeded_and_independent_streams() {
        let clean = clean(500);
        let noisy = MeasurementModel { noise: Some(NoiseLevel::Sigma(0.1)), ..Default::default() };
        let with_dropouts = MeasurementModel { dropout_probability: 0.2, ..noisy.clone() };
        let a = noisy.apply(&clean, 1).unwrap();
        assert_eq!(a, noisy.apply(&clean, 1).unwrap());
        assert_ne!(a.values(), noisy.apply(&clean, 2).unwrap().values());
        // Dropouts only blank values; the surviving noise realisation is unchanged.
        let b = with_dropouts.apply(&clean, 1).unwrap();
        for (x, y) in a.values().iter().zip(b.values()) {
            assert!(y.is_nan() || x == y);
        }
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        let clean = clean(10);
        let bad = MeasurementModel { dropout_probability: 1.5, ..Default::default() };
        assert!(bad.apply(&clean, 0).is_err());
        let wrong_len = MeasurementModel { noise: Some(NoiseLevel::SigmaPerChannel(vec![0.1])), ..Default::default() };
        assert!(wrong_len.apply(&clean, 0).is_err());
    }
}
