//! Van der Pol oscillator x1' = x2, x2' = mu (1 − x1²) x2 − x1, and the ground truth of
//! its limit cycle (period and Floquet exponent) measured by integration.

use crate::error::{SystemsError, require};
use crate::integrate::{OdeSystem, Rk4};

/// The Van der Pol oscillator with damping parameter `mu`; state (x1, x2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VanDerPol {
    /// Nonlinear damping parameter (default 1).
    pub mu: f64,
}

impl Default for VanDerPol {
    fn default() -> Self {
        Self { mu: 1.0 }
    }
}

impl OdeSystem for VanDerPol {
    fn dim(&self) -> usize {
        2
    }

    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        dx[0] = x[1];
        dx[1] = self.mu * (1.0 - x[0] * x[0]) * x[1] - x[0];
    }
}

/// The oscillator together with its variational equation Φ' = J(x) Φ and the running
/// integral of tr J = mu (1 − x1²); state (x1, x2, Φ11, Φ12, Φ21, Φ22, ∫ tr J dt).
struct Variational {
    mu: f64,
}

impl OdeSystem for Variational {
    fn dim(&self) -> usize {
        7
    }

    fn rhs(&self, _t: f64, s: &[f64], ds: &mut [f64]) {
        let (x1, x2) = (s[0], s[1]);
        ds[0] = x2;
        ds[1] = self.mu * (1.0 - x1 * x1) * x2 - x1;
        // J = [[0, 1], [-2 mu x1 x2 - 1, mu (1 - x1^2)]]
        let (j21, j22) = (-2.0 * self.mu * x1 * x2 - 1.0, self.mu * (1.0 - x1 * x1));
        ds[2] = s[4];
        ds[3] = s[5];
        ds[4] = j21 * s[2] + j22 * s[4];
        ds[5] = j21 * s[3] + j22 * s[5];
        ds[6] = j22;
    }
}

/// Ground truth of the Van der Pol limit cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitCycle {
    /// Period T (s), from upward zero crossings of x1.
    pub period: f64,
    /// Floquet exponent of the transverse direction, (1/T) ∫ tr J dt over one period (1/s).
    pub floquet_exponent: f64,
    /// The nontrivial Floquet multiplier det Φ(T) of the monodromy matrix.
    pub floquet_multiplier: f64,
    /// The other multiplier, trace Φ(T) − det Φ(T); 1 up to integration error (a check).
    pub trivial_multiplier: f64,
    /// Maximum of x1 on the cycle.
    pub amplitude: f64,
}

/// Measures the limit cycle of the oscillator with parameter `mu` in (0, 20].
///
/// Integrates from (2, 0) onto the cycle, times four upward zero crossings of x1 (each
/// located by Newton iteration on the length of a final RK4 step), then integrates the
/// variational equation over exactly one period from a crossing. The exponent uses
/// Liouville's formula det Φ(T) = exp(∫ tr J dt); one multiplier is 1, so the other is
/// det Φ(T).
pub fn limit_cycle(mu: f64) -> Result<LimitCycle, SystemsError> {
    require(mu.is_finite() && mu > 0.0 && mu <= 20.0, "mu", "must be in (0, 20] for a limit cycle")?;
    // Stiffness grows with mu; this step keeps RK4 error far below 1e-9 on the cycle.
    let step = 1e-3 / mu.max(1.0);
    let mut rk = Rk4::new(step)?;
    let mut system = VanDerPol { mu };
    let mut x = [2.0, 0.0];
    // Transverse perturbations decay like exp(lambda_F t), lambda_F ≈ −mu for small mu.
    let settle = 40.0 / mu.min(1.0) + 10.0 * mu;
    rk.advance(&mut system, 0.0, settle, &mut x);

    let crossings = upward_crossings(&mut system, &mut rk, &mut x, 4, 100.0 + 10.0 * mu)?;
    let first = crossings[0];
    let period = (crossings[3].0 - first.0) / 3.0;

    // One period of the variational equation from the first crossing, in equal steps.
    let n_steps = (period / step).ceil() as usize;
    let h = period / n_steps as f64;
    let mut state = [first.1[0], first.1[1], 1.0, 0.0, 0.0, 1.0, 0.0];
    let mut variational = Variational { mu };
    let mut amplitude = state[0];
    for k in 0..n_steps {
        rk.single_step(&mut variational, k as f64 * h, h, &mut state);
        amplitude = amplitude.max(state[0]);
    }
    let det = state[2] * state[5] - state[3] * state[4];
    let trace = state[2] + state[5];
    Ok(LimitCycle {
        period,
        floquet_exponent: state[6] / period,
        floquet_multiplier: det,
        trivial_multiplier: trace - det,
        amplitude,
    })
}

/// Integrates on from `x` and returns `count` upward zero crossings of x1 as
/// (time since start, state at the crossing); fails if they do not occur within `horizon`.
fn upward_crossings(
    system: &mut VanDerPol,
    rk: &mut Rk4,
    x: &mut [f64; 2],
    count: usize,
    horizon: f64,
) -> Result<Vec<(f64, [f64; 2])>, SystemsError> {
    let h = rk.step();
    let mut found = Vec::with_capacity(count);
    let mut k = 0u64;
    while found.len() < count {
        let t = k as f64 * h;
        if t > horizon {
            return Err(SystemsError::Numerical("no limit-cycle crossings found".into()));
        }
        let before = *x;
        rk.single_step(system, t, h, x);
        k += 1;
        if before[0] < 0.0 && x[0] >= 0.0 {
            // Newton on the partial step length tau: x1(tau) = 0 with d x1/d tau = x2.
            let mut tau = h * before[0] / (before[0] - x[0]);
            let mut at = before;
            for _ in 0..20 {
                at = before;
                rk.single_step(system, t, tau, &mut at);
                let correction = at[0] / at[1];
                tau -= correction;
                if correction.abs() < 1e-15 {
                    break;
                }
            }
            found.push((t + tau, at));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_and_floquet_exponent_match_reference_at_mu_1() {
        let cycle = limit_cycle(1.0).unwrap();
        println!("{cycle:?}");
        assert!((cycle.period / 6.663287 - 1.0).abs() < 1e-6, "period {}", cycle.period);
        // The reference is given to 6 decimals.
        assert!((cycle.floquet_exponent + 1.059377).abs() < 2e-6, "exponent {}", cycle.floquet_exponent);
        assert!((cycle.amplitude - 2.0086).abs() < 1e-4);
        // Monodromy check: one multiplier is 1, the other is exp(lambda_F T).
        assert!((cycle.trivial_multiplier - 1.0).abs() < 1e-6);
        let expected = (cycle.floquet_exponent * cycle.period).exp();
        assert!((cycle.floquet_multiplier / expected - 1.0).abs() < 1e-6);
    }

    #[test]
    fn other_reference_values() {
        for (mu, period, exponent) in [(0.5, 6.380676, -0.507731), (2.0, 7.629874, -2.382560)] {
            let cycle = limit_cycle(mu).unwrap();
            assert!((cycle.period / period - 1.0).abs() < 1e-6, "mu {mu}: {}", cycle.period);
            assert!((cycle.floquet_exponent - exponent).abs() < 2e-6, "mu {mu}: {}", cycle.floquet_exponent);
        }
    }

    #[test]
    fn rejects_parameters_without_a_limit_cycle() {
        assert!(limit_cycle(0.0).is_err());
        assert!(limit_cycle(-1.0).is_err());
        assert!(limit_cycle(f64::NAN).is_err());
    }
}
