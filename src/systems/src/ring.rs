//! Ring of n diffusively coupled Van der Pol oscillators with optional detuning.
//!
//! dx_i/dt = y_i, dy_i/dt = mu (1 − x_i²) y_i − w_i² x_i + c (x_{i−1} − 2 x_i + x_{i+1}),
//! indices modulo n. State order: all positions x_1..x_n, then all velocities y_1..y_n.

use crate::error::{SystemsError, require};
use crate::integrate::OdeSystem;
use crate::rng::Rng;

/// A ring of coupled Van der Pol oscillators (state: x_1..x_n, y_1..y_n).
#[derive(Debug, Clone, PartialEq)]
pub struct VdpRing {
    mu: f64,
    coupling: f64,
    // Squared natural frequencies w_i^2, one per oscillator.
    omega_squared: Vec<f64>,
}

impl VdpRing {
    /// Builds a ring with natural frequencies `omegas` (one per oscillator, n >= 3 so
    /// that the two neighbours of every node are distinct).
    pub fn new(mu: f64, coupling: f64, omegas: &[f64]) -> Result<Self, SystemsError> {
        require(omegas.len() >= 3, "n", "a ring needs at least 3 oscillators")?;
        require(mu.is_finite(), "mu", "must be finite")?;
        require(coupling.is_finite(), "coupling", "must be finite")?;
        require(omegas.iter().all(|w| w.is_finite()), "detuning", "frequencies must be finite")?;
        Ok(Self { mu, coupling, omega_squared: omegas.iter().map(|w| w * w).collect() })
    }

    /// Seeded detuned frequencies w_i = 1 + detuning · U[−1, 1].
    pub fn detuned_frequencies(n: usize, detuning: f64, rng: &mut Rng) -> Vec<f64> {
        (0..n).map(|_| 1.0 + detuning * rng.uniform_in(-1.0, 1.0)).collect()
    }

    /// Number of oscillators.
    pub fn len(&self) -> usize {
        self.omega_squared.len()
    }

    /// Always false: a ring has at least three oscillators.
    pub fn is_empty(&self) -> bool {
        self.omega_squared.is_empty()
    }
}

impl OdeSystem for VdpRing {
    fn dim(&self) -> usize {
        2 * self.len()
    }

    fn rhs(&self, _t: f64, state: &[f64], d_state: &mut [f64]) {
        let n = self.len();
        let (x, y) = state.split_at(n);
        let (dx, dy) = d_state.split_at_mut(n);
        for i in 0..n {
            let left = x[(i + n - 1) % n];
            let right = x[(i + 1) % n];
            dx[i] = y[i];
            dy[i] = self.mu * (1.0 - x[i] * x[i]) * y[i] - self.omega_squared[i] * x[i]
                + self.coupling * (left - 2.0 * x[i] + right);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrate::{Rk4, SampleGrid, sample_trajectory};
    use crate::vdp::VanDerPol;

    #[test]
    fn synchronous_state_follows_the_single_oscillator() {
        // In-phase identical oscillators feel no coupling force: each is a lone oscillator.
        let n = 5;
        let mut ring = VdpRing::new(1.0, 0.3, &vec![1.0; n]).unwrap();
        let mut x0 = vec![0.5; n];
        x0.extend(vec![-1.0; n]);
        let grid = SampleGrid::from_rate(10.0, 10.0).unwrap();
        let ring_states = sample_trajectory(&mut ring, &mut Rk4::new(0.01).unwrap(), &x0, &grid, &[]);
        let single =
            sample_trajectory(&mut VanDerPol { mu: 1.0 }, &mut Rk4::new(0.01).unwrap(), &[0.5, -1.0], &grid, &[]);
        for (k, pair) in single.chunks(2).enumerate() {
            let row = &ring_states[k * 2 * n..(k + 1) * 2 * n];
            for i in 0..n {
                assert!((row[i] - pair[0]).abs() < 1e-12 && (row[n + i] - pair[1]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn coupling_pulls_towards_neighbours() {
        let ring = VdpRing::new(0.0, 1.0, &[1.0, 1.0, 1.0]).unwrap();
        let mut d = [0.0; 6];
        ring.rhs(0.0, &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0], &mut d);
        // Node 0: -w^2 x - 2c x = -3; nodes 1 and 2: +c x_0 = 1.
        assert_eq!(d, [0.0, 0.0, 0.0, -3.0, 1.0, 1.0]);
    }

    #[test]
    fn detuning_is_seeded_and_bounded() {
        let a = VdpRing::detuned_frequencies(10, 0.05, &mut Rng::new(3));
        assert_eq!(a, VdpRing::detuned_frequencies(10, 0.05, &mut Rng::new(3)));
        assert!(a.iter().all(|w| (w - 1.0).abs() <= 0.05));
        assert!(VdpRing::new(1.0, 0.2, &[1.0, 1.0]).is_err());
    }
}
