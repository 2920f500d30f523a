//! PMU measurement errors after IEEE C37.118.1: a total vector error (TVE) budget on the
//! phasor, a frequency error (FE) and a ROCOF error (RFE), drawn from seeded streams.
//!
//! Limits (IEEE C37.118.1-2011, steady-state compliance; quoted from memory of the
//! standard, the table numbers included): TVE 1 % for P and M class (Table 3, steady-state
//! synchrophasor requirements); FE 0.005 Hz and RFE 0.01 Hz/s for P and M class (the
//! steady-state frequency and ROCOF requirements, signal-frequency-range test). The 2014
//! amendment (C37.118.1a-2014) relaxed the steady-state RFE (to 0.4 Hz/s for P class and
//! 0.1 Hz/s for M class, as we recall it); the default keeps the stricter 2011 value,
//! which is an assumption to check against the standard.
//!
//! How a limit becomes a random error (our rule; the standard sets limits, not
//! distributions):
//!
//! - Phasor: the measured phasor is X (1 + e) with e = e_r + j e_i a circular complex
//!   Gaussian, e_r, e_i ~ N(0, s²) independent, so the budget is split equally between
//!   magnitude (relative error ≈ e_r) and angle (error ≈ e_i rad). TVE = |e| is then
//!   Rayleigh with scale s, and the budget is its 99th percentile:
//!   s = TVE / √(−2 ln 0.01) = TVE / 3.035 (1 % TVE: magnitude std 0.33 %, angle std
//!   0.19°).
//! - Frequency and ROCOF: N(0, σ²) with the limit as the two-sided 99 % bound,
//!   σ = limit / 2.576 (FE std 1.94 mHz, RFE std 3.9 mHz/s).
//!
//! Errors are independent between buses and samples. Frequency and ROCOF are computed by
//! the PMU's own filter, which is why their errors are drawn separately and not derived
//! from the differenced phasor noise (differencing a 0.19° angle error at 60 frames/s would
//! give a frequency error of 0.045 Hz, ten times the limit). The reference bus is measured
//! by its own PMU, so a relative angle carries both buses' angle errors.

use nalgebra::Complex;

use crate::error::{SystemsError, require};
use crate::ieee68::{PmuLayout, PmuQuantity};
use crate::rng::Rng;
use crate::trajectory::Trajectory;

/// √(−2 ln 0.01): the 99th percentile of a Rayleigh distribution with unit scale.
pub const RAYLEIGH_99: f64 = 3.034_854_258_770_293;
/// The two-sided 99 % point of the standard normal distribution.
pub const NORMAL_99: f64 = 2.575_829_303_548_901;

/// Random-stream numbers of the three error kinds (see [`Rng::stream`]).
const PHASOR_STREAM: u64 = 1;
const FREQUENCY_STREAM: u64 = 2;
const ROCOF_STREAM: u64 = 3;

/// The C37.118.1 error budget of every PMU (limits met with 99 % coverage).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PmuErrors {
    /// Total vector error budget, a fraction (0.01 = 1 %).
    pub tve: f64,
    /// Frequency error limit (Hz).
    pub fe: f64,
    /// ROCOF error limit (Hz/s).
    pub rfe: f64,
}

impl Default for PmuErrors {
    /// The steady-state limits: 1 % TVE, 0.005 Hz FE, 0.01 Hz/s RFE.
    fn default() -> Self {
        Self { tve: 0.01, fe: 0.005, rfe: 0.01 }
    }
}

/// PMU measurements: where and what ([`PmuLayout`]) and with which errors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PmuMeasurement {
    /// Buses, quantities, angle reference.
    pub layout: PmuLayout,
    /// Error budget (use [`PmuErrors::none`] for clean PMUs).
    pub errors: PmuErrors,
}

impl PmuErrors {
    /// Error-free PMUs.
    pub fn none() -> Self {
        Self { tve: 0.0, fe: 0.0, rfe: 0.0 }
    }

    /// True when every budget is zero.
    pub fn is_none(&self) -> bool {
        *self == Self::none()
    }

    /// Checks that every budget is finite and >= 0 (TVE below 1).
    pub fn validate(&self) -> Result<(), SystemsError> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        require(ok(self.tve) && self.tve < 1.0, "tve", "must be in [0, 1) (a fraction: 0.01 = 1 %)")?;
        require(ok(self.fe), "fe", "must be >= 0 and finite (Hz)")?;
        require(ok(self.rfe), "rfe", "must be >= 0 and finite (Hz/s)")?;
        Ok(())
    }

    /// Standard deviation s of each phasor error component (relative magnitude, angle in rad).
    pub fn component_std(&self) -> f64 {
        self.tve / RAYLEIGH_99
    }

    /// Standard deviation of the frequency error (Hz).
    pub fn frequency_std(&self) -> f64 {
        self.fe / NORMAL_99
    }

    /// Standard deviation of the ROCOF error (Hz/s).
    pub fn rocof_std(&self) -> f64 {
        self.rfe / NORMAL_99
    }

    /// One draw of the phasor error factor 1 + e (its TVE is |e|).
    pub fn phasor_factor(&self, rng: &mut Rng) -> Complex<f64> {
        let s = self.component_std();
        Complex::new(1.0 + s * rng.normal(), s * rng.normal())
    }

    /// A copy of the clean PMU record `clean` (columns of `layout`) with the errors added,
    /// all drawn from `seed`: magnitudes scaled by |1 + e|, angles shifted by
    /// arg(1 + e_bus) − arg(1 + e_reference), frequencies and ROCOFs offset.
    pub fn apply(&self, clean: &Trajectory, layout: &PmuLayout, seed: u64) -> Result<Trajectory, SystemsError> {
        self.validate()?;
        layout.validate()?;
        let channels = layout.channels();
        require(clean.n_columns() == channels.len(), "pmu", "record does not have the layout's columns")?;
        // The position of each column's bus in the layout (always found: the columns come
        // from the layout).
        let bus_of: Vec<usize> =
            channels.iter().map(|c| layout.buses.iter().position(|&b| b == c.bus).unwrap_or(0)).collect();
        let mut phasor_rng = Rng::stream(seed, PHASOR_STREAM);
        let mut frequency_rng = Rng::stream(seed, FREQUENCY_STREAM);
        let mut rocof_rng = Rng::stream(seed, ROCOF_STREAM);
        let mut measured = clean.clone();
        let (_, values) = measured.parts_mut();
        let mut factors = vec![Complex::new(1.0, 0.0); layout.buses.len()];
        let mut frequency_errors = vec![0.0; layout.buses.len()];
        let mut rocof_errors = vec![0.0; layout.buses.len()];
        for row in values.chunks_exact_mut(channels.len()) {
            // Every bus draws all its errors whatever is recorded, so the realisation of
            // one quantity does not depend on which others are asked for.
            for i in 0..layout.buses.len() {
                factors[i] = self.phasor_factor(&mut phasor_rng);
                frequency_errors[i] = self.frequency_std() * frequency_rng.normal();
                rocof_errors[i] = self.rocof_std() * rocof_rng.normal();
            }
            let reference = match layout.buses.iter().position(|&b| b == layout.reference_bus) {
                Some(i) => factors[i],
                None => self.phasor_factor(&mut phasor_rng),
            };
            for ((value, channel), &i) in row.iter_mut().zip(&channels).zip(&bus_of) {
                match channel.quantity {
                    PmuQuantity::Vm => *value *= factors[i].norm(),
                    PmuQuantity::Va => *value += (factors[i].arg() - reference.arg()).to_degrees(),
                    PmuQuantity::F => *value += frequency_errors[i],
                    PmuQuantity::Rocof => *value += rocof_errors[i],
                }
            }
        }
        Ok(measured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measurement::channel_std;

    #[test]
    fn phasor_errors_meet_the_tve_budget_at_99_percent() {
        let errors = PmuErrors::default();
        let mut rng = Rng::new(21);
        let mut tve: Vec<f64> = (0..100_000).map(|_| (errors.phasor_factor(&mut rng) - 1.0).norm()).collect();
        tve.sort_by(f64::total_cmp);
        let p99 = tve[99_000];
        let mean = tve.iter().sum::<f64>() / tve.len() as f64;
        let expected_mean = errors.component_std() * (std::f64::consts::PI / 2.0).sqrt();
        println!("TVE: 99th percentile {p99:.5}, mean {mean:.5} (expected {expected_mean:.5})");
        // 100 000 draws: the 99th percentile is known to about 1 %, the mean to 0.2 %.
        assert!((p99 / errors.tve - 1.0).abs() < 0.03, "99th percentile {p99}");
        assert!((mean / expected_mean - 1.0).abs() < 0.01);
    }

    /// A constant clean record of three buses (bus 65 the reference), all quantities.
    fn constant_record(rows: usize) -> (Trajectory, PmuLayout) {
        let layout = PmuLayout {
            buses: vec![1, 29, 65],
            quantities: vec![PmuQuantity::Vm, PmuQuantity::Va, PmuQuantity::F, PmuQuantity::Rocof],
            reference_bus: 65,
        };
        let names = layout.channel_names();
        let row: Vec<f64> = layout
            .channels()
            .iter()
            .map(|c| match c.quantity {
                PmuQuantity::Vm => 1.05,
                PmuQuantity::Va => 10.0,
                PmuQuantity::F => 60.0,
                PmuQuantity::Rocof => 0.0,
            })
            .collect();
        let values = row.iter().copied().cycle().take(rows * row.len()).collect();
        let times = (0..rows).map(|k| k as f64 / 60.0).collect();
        (Trajectory::new(names, times, values).unwrap(), layout)
    }

    #[test]
    fn record_errors_have_the_configured_statistics() {
        let (clean, layout) = constant_record(50_000);
        let errors = PmuErrors::default();
        let measured = errors.apply(&clean, &layout, 3).unwrap();
        let s = errors.component_std();
        for (j, channel) in layout.channels().iter().enumerate() {
            let error: Vec<f64> = clean.column(j).iter().zip(measured.column(j)).map(|(c, m)| m - c).collect();
            let (std, expected) = match channel.quantity {
                // Relative magnitude error ≈ e_r; a relative angle carries two angle errors.
                PmuQuantity::Vm => (channel_std(&error) / 1.05, s),
                PmuQuantity::Va => (channel_std(&error), std::f64::consts::SQRT_2 * s.to_degrees()),
                PmuQuantity::F => (channel_std(&error), errors.frequency_std()),
                PmuQuantity::Rocof => (channel_std(&error), errors.rocof_std()),
            };
            // 50 000 draws: relative standard error of a std about 0.3 %.
            assert!((std / expected - 1.0).abs() < 0.02, "{}: {std} vs {expected}", channel.name());
            if channel.quantity == PmuQuantity::F {
                let within = error.iter().filter(|e| e.abs() <= errors.fe).count() as f64 / error.len() as f64;
                assert!((within - 0.99).abs() < 0.002, "FE within the limit: {within}");
            }
        }
        // The reference bus's magnitude column is measured too; its angle column is absent.
        assert_eq!(layout.channel_names().iter().filter(|n| n.starts_with("b65_")).count(), 3);
        assert_eq!(errors.apply(&clean, &layout, 3).unwrap(), measured, "seeded");
        assert_eq!(PmuErrors::none().apply(&clean, &layout, 3).unwrap(), clean, "no budget, no change");
    }

    #[test]
    fn bad_budgets_are_refused() {
        let (clean, layout) = constant_record(3);
        for bad in [PmuErrors { tve: -0.1, ..PmuErrors::default() }, PmuErrors { fe: f64::NAN, ..PmuErrors::default() }]
        {
            assert!(bad.apply(&clean, &layout, 0).is_err());
        }
        assert!(PmuErrors { tve: 1.5, ..PmuErrors::none() }.validate().is_err());
    }
}
