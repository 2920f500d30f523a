//! The ridge parameter from a measurement-noise level: jitter the warm-up window with
//! N(0, sigma^2) noise, lift it, and measure how far the observables move.
//!
//! With noisy regressors Psi_X + E, the expected Gram matrix is Psi_X^T Psi_X + E[E^T E]:
//! noise adds, on average, its energy to the diagonal. The helper returns that energy per
//! observable, mu = E ||Psi(X + V) - Psi(X)||_F^2 / N, summed over the lifted warm-up
//! samples, so the ridge matches the noise the window would carry.

use crate::lifting::Lifting;
use crate::rng::SplitMix64;

/// Jitter draws are repeated until about this many lifted samples have been measured.
const TARGET_LIFTS: usize = 4000;
const MAX_DRAWS: usize = 64;
const NOISE_STREAM: u64 = 0x0051_613A;

/// mu from per-channel noise standard deviations `sigma` (raw units; one value applies to
/// every channel). `states` is the warm-up window in raw units, row-major, one chain.
pub fn mu_from_sigma(lifting: &Lifting, states: &[f64], sigma: &[f64], seed: u64) -> f64 {
    let n = lifting.n_states();
    let rows = states.len() / n;
    let history_len = lifting.history_len();
    if rows < history_len || sigma.iter().all(|s| *s == 0.0) {
        return 0.0;
    }
    let lifted_per_draw = rows - history_len + 1;
    let draws = TARGET_LIFTS.div_ceil(lifted_per_draw).clamp(1, MAX_DRAWS);
    let sigma_of = |j: usize| if sigma.len() == 1 { sigma[0] } else { sigma[j] };
    let mut rng = SplitMix64::new(seed ^ NOISE_STREAM);
    let (mut clean_h, mut noisy_h) = (lifting.new_history(), lifting.new_history());
    let (mut z, mut noisy_x) = (vec![0.0; n], vec![0.0; n]);
    let (mut psi, mut psi_noisy) = (vec![0.0; lifting.dim()], vec![0.0; lifting.dim()]);
    let mut energy = 0.0;
    for _ in 0..draws {
        clean_h.clear();
        noisy_h.clear();
        for x in states.chunks_exact(n) {
            for (j, (nx, xi)) in noisy_x.iter_mut().zip(x).enumerate() {
                *nx = xi + sigma_of(j) * rng.normal();
            }
            lifting.standardise_into(x, &mut z);
            clean_h.push(&z);
            lifting.standardise_into(&noisy_x, &mut z);
            noisy_h.push(&z);
            if clean_h.is_full() {
                lifting.lift_into(&clean_h, &mut psi);
                lifting.lift_into(&noisy_h, &mut psi_noisy);
                energy += psi.iter().zip(&psi_noisy).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
            }
        }
    }
    energy / (draws as f64 * lifting.dim() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::DictionarySpec;

    #[test]
    fn state_dictionary_gives_rows_times_variance() {
        // psi = x, so each lifted sample moves by |v|^2 with E = n sigma^2; per observable
        // sigma^2, summed over the rows.
        let spec = DictionarySpec::state_only();
        let names = vec!["a".to_owned(), "b".to_owned()];
        let lifting = Lifting::build(&spec, &names, false, &[], None, 0);
        let states: Vec<f64> = (0..400).map(|i| (i as f64 * 0.1).sin()).collect();
        let mu = mu_from_sigma(&lifting, &states, &[0.1], 5);
        let expected = 200.0 * 0.01;
        assert!((mu / expected - 1.0).abs() < 0.03, "mu {mu}, expected {expected}");
        assert_eq!(mu, mu_from_sigma(&lifting, &states, &[0.1], 5), "seeded");
        assert_eq!(mu_from_sigma(&lifting, &states, &[0.0], 5), 0.0);
    }

    #[test]
    fn nonlinear_observables_amplify_noise() {
        let spec: DictionarySpec = "state,poly:3".parse().unwrap();
        let names = vec!["a".to_owned()];
        let lifting = Lifting::build(&spec, &names, false, &[], None, 0);
        let states: Vec<f64> = (0..300).map(|i| 2.0 * (i as f64 * 0.05).sin()).collect();
        let linear = Lifting::build(&DictionarySpec::state_only(), &names, false, &[], None, 0);
        let per_obs_poly = mu_from_sigma(&lifting, &states, &[0.05], 1);
        let per_obs_lin = mu_from_sigma(&linear, &states, &[0.05], 1);
        assert!(per_obs_poly > per_obs_lin, "{per_obs_poly} vs {per_obs_lin}");
    }
}
