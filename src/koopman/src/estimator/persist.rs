//! An estimator's exact state out and back: everything needed to continue where it was,
//! with the shapes checked on the way in.

use super::{Estimator, Online, Phase, ResidualTracker, WarmupBuffer};
use crate::config::EstimatorConfig;
use crate::debias::Debiased;
use crate::error::StateError;
use crate::lifting::Lifting;
use crate::recursion::Recursion;
use crate::state::{EstimatorState, OnlineState, PhaseState};
use crate::uncertainty::ResidualRing;

impl Estimator {
    /// Everything needed to continue exactly where this estimator is.
    pub fn export_state(&self) -> EstimatorState {
        let phase = match &self.phase {
            Phase::WarmingUp(b) => PhaseState::WarmingUp {
                states: b.states.clone(),
                inputs: b.inputs.clone(),
                chain_starts: b.chain_starts.clone(),
            },
            Phase::Online(o) => {
                let n = self.config.n_states();
                let mut history = Vec::with_capacity(o.history.len() * n);
                for lag in (0..o.history.len()).rev() {
                    history.extend_from_slice(o.history.lag(lag));
                }
                PhaseState::Online(Box::new(OnlineState {
                    lifting: o.lifting.export(),
                    mu: o.mu,
                    history,
                    recursion: o.recursion.export(),
                    regressor: o.regressor.clone(),
                    have_previous: o.have_previous,
                    residual_count: o.residuals.count,
                    residual_mean_square: o.residuals.mean_square.clone(),
                    debiased: o.debiased.as_ref().map(Debiased::export),
                }))
            }
        };
        EstimatorState { counters: self.counters, after_gap: self.after_gap, phase }
    }

    /// An estimator that continues exactly from `state`, which must come from an
    /// estimator with the same configuration.
    pub fn restore(config: EstimatorConfig, state: EstimatorState) -> Result<Self, StateError> {
        config.validate().map_err(|_| StateError::Invalid("the configuration is not valid"))?;
        let (n, m) = (config.n_states(), config.n_inputs());
        let phase = match state.phase {
            PhaseState::WarmingUp { states, inputs, chain_starts } => {
                let rows = chain_starts.len();
                if states.len() != rows * n || inputs.len() != rows * m || rows >= config.warmup.max(1) {
                    return Err(StateError::Shape("warm-up buffer"));
                }
                let mut buffer = WarmupBuffer { states, inputs, chain_starts };
                if rows > 0 {
                    // The rest of the warm-up, so feeding it never reallocates.
                    buffer.states.reserve_exact((config.warmup - rows) * n);
                    buffer.inputs.reserve_exact((config.warmup - rows) * m);
                    buffer.chain_starts.reserve_exact(config.warmup - rows);
                }
                Phase::WarmingUp(buffer)
            }
            PhaseState::Online(online) => {
                let online = *online;
                let lifting = Lifting::from_state(&config.dictionary, &config.state_names, online.lifting)?;
                let n_lifted = lifting.dim();
                let n_regressor = n_lifted + m;
                let mut history = lifting.new_history();
                if !online.history.len().is_multiple_of(n) || online.history.len() / n > lifting.history_len() {
                    return Err(StateError::Shape("history"));
                }
                for z in online.history.chunks_exact(n) {
                    history.push(z);
                }
                if online.regressor.len() != n_regressor || online.residual_mean_square.len() != n {
                    return Err(StateError::Shape("regressor or residuals"));
                }
                if !(online.mu.is_finite() && online.mu >= 0.0) {
                    return Err(StateError::Invalid("mu"));
                }
                let debiased =
                    match (Debiased::new(&config, n_lifted, lifting.constant_index(), online.mu), online.debiased) {
                        (None, None) => None,
                        (Some(empty), Some(state)) => Some(empty.restore(state)?),
                        _ => return Err(StateError::Invalid("the exported state is of another estimation method")),
                    };
                let recursion = Recursion::restore(
                    online.recursion,
                    n_lifted,
                    n_regressor,
                    config.forgetting,
                    config.window,
                    config.refactor_every,
                )?;
                Phase::Online(Box::new(Online {
                    lifting,
                    mu: online.mu,
                    history,
                    recursion,
                    z: vec![0.0; n],
                    regressor: online.regressor,
                    target: vec![0.0; n_lifted],
                    have_previous: online.have_previous,
                    residuals: ResidualTracker {
                        horizon: config.residual_horizon as u64,
                        count: online.residual_count,
                        mean_square: online.residual_mean_square,
                    },
                    residual_ring: ResidualRing::new(n_lifted),
                    one_step: vec![0.0; n],
                    debiased,
                    served_residual: vec![0.0; n_lifted],
                    served_prediction: vec![0.0; n_lifted],
                }))
            }
        };
        Ok(Self { config, phase, counters: state.counters, after_gap: state.after_gap })
    }
}
