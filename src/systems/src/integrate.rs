//! Fixed-step RK4 integration, sampling on a uniform time grid, and the hook through
//! which a system can inject process noise.
//!
//! Sampling: between two consecutive sample times the integrator takes whole internal
//! steps of length `h` and one last, shorter step that lands exactly on the next sample
//! time (so the sampling period need not be a multiple of `h`, and sample times never
//! drift). Breakpoints (e.g. fault inception and clearing) split an interval in the
//! same way, so no RK4 step straddles a switching instant.

use crate::error::{SystemsError, require};

/// An ordinary differential equation x' = f(t, x), optionally with an input that the
/// system itself holds constant over each internal step.
pub trait OdeSystem {
    /// Dimension of the state.
    fn dim(&self) -> usize;

    /// Writes f(t, x) into `dx` (both of length [`OdeSystem::dim`]).
    fn rhs(&self, t: f64, x: &[f64], dx: &mut [f64]);

    /// Called once before every internal step `[t, t + h]`, including the last partial
    /// step of a sampling interval.
    ///
    /// This is the process-noise hook: a system may redraw a random input here and hold
    /// it over the step (piecewise-constant forcing), or switch between network
    /// configurations. All RK4 stages of the step see the same input. Default: nothing.
    fn begin_step(&mut self, _t: f64, _h: f64) {}
}

/// Classical fourth-order Runge–Kutta integrator with a fixed internal step.
#[derive(Debug, Clone)]
pub struct Rk4 {
    step: f64,
    // Stage buffers, resized to the state dimension on first use.
    k1: Vec<f64>,
    k2: Vec<f64>,
    k3: Vec<f64>,
    k4: Vec<f64>,
    stage: Vec<f64>,
}

impl Rk4 {
    /// Creates an integrator with internal step `step` (> 0, finite).
    pub fn new(step: f64) -> Result<Self, SystemsError> {
        require(step.is_finite() && step > 0.0, "integration_step", "must be positive and finite")?;
        Ok(Self { step, k1: Vec::new(), k2: Vec::new(), k3: Vec::new(), k4: Vec::new(), stage: Vec::new() })
    }

    /// The internal step length.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// Takes one RK4 step of length `h` from time `t`, updating `x` in place.
    pub fn single_step<S: OdeSystem + ?Sized>(&mut self, system: &mut S, t: f64, h: f64, x: &mut [f64]) {
        let n = x.len();
        for buffer in [&mut self.k1, &mut self.k2, &mut self.k3, &mut self.k4, &mut self.stage] {
            buffer.resize(n, 0.0);
        }
        system.begin_step(t, h);
        system.rhs(t, x, &mut self.k1);
        euler_stage(&mut self.stage, x, 0.5 * h, &self.k1);
        system.rhs(t + 0.5 * h, &self.stage, &mut self.k2);
        euler_stage(&mut self.stage, x, 0.5 * h, &self.k2);
        system.rhs(t + 0.5 * h, &self.stage, &mut self.k3);
        euler_stage(&mut self.stage, x, h, &self.k3);
        system.rhs(t + h, &self.stage, &mut self.k4);
        let slopes = self.k1.iter().zip(&self.k2).zip(&self.k3).zip(&self.k4);
        for (xi, (((k1, k2), k3), k4)) in x.iter_mut().zip(slopes) {
            *xi += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
        }
    }

    /// Integrates from `t0` to `t1 >= t0`: whole steps of the internal length, then one
    /// partial step that ends exactly at `t1`.
    pub fn advance<S: OdeSystem + ?Sized>(&mut self, system: &mut S, t0: f64, t1: f64, x: &mut [f64]) {
        // A remainder this much shorter than a step is merged into the last step rather
        // than taken as a separate, numerically meaningless sliver.
        let merge = 1e-9 * self.step;
        let mut taken = 0u64;
        loop {
            // Times come from the step count, not from repeated addition, so they do not drift.
            let t = t0 + taken as f64 * self.step;
            let remaining = t1 - t;
            if remaining <= merge {
                return;
            }
            if remaining <= self.step + merge {
                self.single_step(system, t, remaining, x);
                return;
            }
            self.single_step(system, t, self.step, x);
            taken += 1;
        }
    }
}

/// Writes the intermediate RK4 state `x + h k` into `stage`.
fn euler_stage(stage: &mut [f64], x: &[f64], h: f64, k: &[f64]) {
    for ((s, xi), ki) in stage.iter_mut().zip(x).zip(k) {
        *s = xi + h * ki;
    }
}

/// A uniform sampling grid t_k = start + k · period, k = 0 .. count − 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleGrid {
    /// Time of the first sample.
    pub start: f64,
    /// Sampling period (1 / rate).
    pub period: f64,
    /// Number of samples.
    pub count: usize,
}

impl SampleGrid {
    /// Grid of samples at `rate_hz` covering `[0, duration]` (both ends included when the
    /// duration is a multiple of the period).
    pub fn from_rate(duration: f64, rate_hz: f64) -> Result<Self, SystemsError> {
        require(duration.is_finite() && duration >= 0.0, "duration", "must be non-negative and finite")?;
        require(rate_hz.is_finite() && rate_hz > 0.0, "rate", "must be positive and finite")?;
        let period = 1.0 / rate_hz;
        // The small slack keeps e.g. 20 s at 60 Hz at 1201 samples despite rounding.
        let intervals = (duration / period + 1e-9).floor();
        require(intervals < 1e8, "duration", "too many samples (more than 1e8)")?;
        Ok(Self { start: 0.0, period, count: intervals as usize + 1 })
    }

    /// Time of sample `k`.
    pub fn time(&self, k: usize) -> f64 {
        self.start + k as f64 * self.period
    }

    /// All sample times.
    pub fn times(&self) -> Vec<f64> {
        (0..self.count).map(|k| self.time(k)).collect()
    }
}

/// Integrates `system` from `x0` at `grid.time(0)` and returns the states at all grid
/// times as a row-major buffer (`grid.count` rows of `x0.len()` values; row 0 is `x0`).
///
/// Any `breakpoints` strictly inside a sampling interval split it, so that switching
/// systems (see [`OdeSystem::begin_step`]) change exactly at those instants.
pub fn sample_trajectory<S: OdeSystem + ?Sized>(
    system: &mut S,
    integrator: &mut Rk4,
    x0: &[f64],
    grid: &SampleGrid,
    breakpoints: &[f64],
) -> Vec<f64> {
    let mut x = x0.to_vec();
    let mut out = Vec::with_capacity(grid.count * x0.len());
    if grid.count == 0 {
        return out;
    }
    out.extend_from_slice(&x);
    // Breakpoints closer than this to a sample time coincide with it.
    let tolerance = 1e-9 * integrator.step().min(grid.period);
    for k in 1..grid.count {
        let (t_from, t_to) = (grid.time(k - 1), grid.time(k));
        let mut t = t_from;
        for &b in breakpoints {
            if b > t + tolerance && b < t_to - tolerance {
                integrator.advance(system, t, b, &mut x);
                t = b;
            }
        }
        integrator.advance(system, t, t_to, &mut x);
        out.extend_from_slice(&x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x' = -x, exact solution e^{-t}.
    struct Decay;
    impl OdeSystem for Decay {
        fn dim(&self) -> usize {
            1
        }
        fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
            dx[0] = -x[0];
        }
    }

    /// x' = u with u switched at t = 0.5 from 0 to 1, chosen by the step midpoint.
    struct Switch {
        input: f64,
    }
    impl OdeSystem for Switch {
        fn dim(&self) -> usize {
            1
        }
        fn rhs(&self, _t: f64, _x: &[f64], dx: &mut [f64]) {
            dx[0] = self.input;
        }
        fn begin_step(&mut self, t: f64, h: f64) {
            self.input = if t + 0.5 * h < 0.5 { 0.0 } else { 1.0 };
        }
    }

    #[test]
    fn rk4_is_fourth_order_accurate() {
        let mut rk = Rk4::new(0.1).unwrap();
        let mut x = [1.0];
        rk.advance(&mut Decay, 0.0, 1.0, &mut x);
        assert!((x[0] - (-1.0f64).exp()).abs() < 5e-7);
    }

    #[test]
    fn partial_steps_land_on_sample_times() {
        // Period 0.3 with step 0.125: each interval is two full steps and one partial step.
        let grid = SampleGrid { start: 0.0, period: 0.3, count: 11 };
        let mut rk = Rk4::new(0.125).unwrap();
        let states = sample_trajectory(&mut Decay, &mut rk, &[1.0], &grid, &[]);
        assert_eq!(states.len(), 11);
        for (k, &x) in states.iter().enumerate() {
            assert!((x - (-grid.time(k)).exp()).abs() < 1e-6, "sample {k}");
        }
    }

    #[test]
    fn breakpoints_split_steps_exactly() {
        // Switching at 0.5 inside the interval [0.4, 0.6]: exact answer x(1) = 0.5.
        let grid = SampleGrid { start: 0.0, period: 0.2, count: 6 };
        let mut rk = Rk4::new(0.15).unwrap();
        let mut system = Switch { input: 0.0 };
        let states = sample_trajectory(&mut system, &mut rk, &[0.0], &grid, &[0.5]);
        assert!((states[5] - 0.5).abs() < 1e-12, "x(1) = {}", states[5]);
        assert!((states[2] - 0.0).abs() < 1e-12);
    }

    #[test]
    fn grid_from_rate_counts_both_ends() {
        let grid = SampleGrid::from_rate(20.0, 60.0).unwrap();
        assert_eq!(grid.count, 1201);
        assert!((grid.time(1200) - 20.0).abs() < 1e-12);
        assert!(SampleGrid::from_rate(1.0, 0.0).is_err());
        assert!(Rk4::new(-1.0).is_err());
    }
}
