//! Model options shared by `fit` and the service's stream definitions, so that the same
//! option means the same thing everywhere, with one set of defaults: the request as given
//! (every field optional, perhaps a preset) and the options it resolves to.

use koopman::{DictionarySpec, EstimatorConfig, MAX_INSTRUMENT_DELAY, MAX_LAGS, Method, Regularisation};

use crate::error::DomainError;
use crate::method::EstimatorKind;

/// The dictionary used when none is given.
pub const DEFAULT_DICTIONARY: &str = "state,const,poly:2";

/// Correlation lags when a correlation estimator is asked for without `lags`: 4 s at 30
/// frames/s, several periods of a slow inter-area mode.
pub const DEFAULT_LAGS: usize = 120;

/// Everything about a model except its channels.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// The dictionary.
    pub dictionary: DictionarySpec,
    /// Ridge parameter, or noise level(s) to derive it from.
    pub regularisation: Regularisation,
    /// Forgetting factor in (0, 1].
    pub forgetting: f64,
    /// Sliding window in pairs.
    pub window: Option<usize>,
    /// Warm-up samples.
    pub warmup: usize,
    /// Standardise channels at the end of warm-up.
    pub standardise: bool,
    /// Seed of the lifting's random choices.
    pub seed: u64,
    /// Exact refactorisation interval in pairs.
    pub refactor_every: usize,
    /// The estimation method.
    pub method: Method,
    /// Pairs between solves of the correlation estimator (a stream sets its eigen cadence,
    /// so a solve is ready when the modes are refreshed).
    pub solve_every: usize,
    /// The correlation rank came from a preset, so it is a ceiling: a model with fewer
    /// observables keeps them all (see [`ModelOptions::fit_rank`]). A rank the request gave
    /// itself is taken as given, and refused if it exceeds the observables.
    pub rank_ceiling: bool,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            dictionary: DEFAULT_DICTIONARY.parse().expect("the default dictionary parses"),
            regularisation: Regularisation::Mu(EstimatorConfig::DEFAULT_MU),
            forgetting: 1.0,
            window: None,
            warmup: EstimatorConfig::DEFAULT_WARMUP,
            standardise: true,
            seed: 0,
            refactor_every: EstimatorConfig::DEFAULT_REFACTOR_EVERY,
            method: Method::Ridge,
            solve_every: EstimatorConfig::DEFAULT_SOLVE_EVERY,
            rank_ceiling: false,
        }
    }
}

impl ModelOptions {
    /// These options for a model of `n_lifted` observables: a preset's rank above that
    /// becomes "every direction", which is what a ceiling means there.
    pub fn fit_rank(mut self, n_lifted: usize) -> Self {
        if let Method::Correlation { lags, rank: Some(rank) } = self.method
            && self.rank_ceiling
            && rank > n_lifted
        {
            self.method = Method::Correlation { lags, rank: None };
        }
        self.rank_ceiling = false;
        self
    }

    /// The estimator configuration for the given channel names.
    pub fn estimator_config(&self, state_names: Vec<String>, input_names: Vec<String>) -> EstimatorConfig {
        EstimatorConfig {
            input_names,
            regularisation: self.regularisation.clone(),
            forgetting: self.forgetting,
            window: self.window,
            warmup: self.warmup,
            standardise: self.standardise,
            seed: self.seed,
            refactor_every: self.refactor_every,
            method: self.method,
            solve_every: self.solve_every,
            ..EstimatorConfig::new(state_names, self.dictionary.clone())
        }
    }
}

/// The model fields of a request (a stream's create request or `fit`'s command line), as
/// given: each optional, and a preset that fills what the others leave open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelRequest {
    /// A preset's name (see [`crate::presets`]).
    pub preset: Option<String>,
    /// The estimator (default ridge).
    pub estimator: Option<EstimatorKind>,
    /// Correlation lags (correlation only; default [`DEFAULT_LAGS`]).
    pub lags: Option<usize>,
    /// Rank of the correlation estimator's SVD (correlation only; default all).
    pub rank: Option<usize>,
    /// Instrument delay in pairs (iv only; default the dictionary's delay span + 1).
    pub instrument_delay: Option<usize>,
    /// Dictionary spec (default [`DEFAULT_DICTIONARY`]).
    pub dictionary: Option<String>,
    /// Ridge parameter (default 1e-6); exclusive with `sigma`.
    pub mu: Option<f64>,
    /// Noise level(s) to derive mu from: one value, or one per state channel.
    pub sigma: Option<Vec<f64>>,
    /// Forgetting factor (default 1).
    pub forgetting: Option<f64>,
    /// Sliding window in pairs (default none).
    pub window: Option<usize>,
    /// Warm-up samples (default 200).
    pub warmup: Option<usize>,
    /// Standardisation (default on).
    pub standardise: Option<bool>,
    /// Seed (default 0).
    pub seed: Option<u64>,
    /// Refactorisation interval in pairs (default 2000).
    pub refactor_every: Option<usize>,
}

fn invalid(field: &str, why: String) -> DomainError {
    DomainError::invalid(format!("field `{field}`: {why}")).at(format!("/{field}"))
}

impl ModelRequest {
    /// The options this request stands for: the preset's values where the request gives
    /// none, then the defaults. Checks what needs no channels: the preset's name, the
    /// dictionary, `mu` against `sigma`, and the method's parameters (given only for the
    /// method that uses them, within their limits). The rank's upper bound (N) and the
    /// rest are checked by the configuration's validation, once the channels are known.
    pub fn resolve(mut self) -> Result<ModelOptions, DomainError> {
        // Remembered for messages: a parameter refused by the preset's estimator says so.
        let by_preset = self.estimator.is_none() && self.preset.is_some();
        let rank_given = self.rank.is_some();
        if let Some(name) = &self.preset {
            crate::presets::find(name)?.fill(&mut self);
        }
        let dictionary: DictionarySpec = self
            .dictionary
            .as_deref()
            .unwrap_or(DEFAULT_DICTIONARY)
            .parse()
            .map_err(|e: koopman::SpecError| invalid("dictionary", e.to_string()))?;
        if self.mu.is_some() && self.sigma.is_some() {
            return Err(DomainError::invalid("fields `mu` and `sigma`: give one or the other").at("/sigma"));
        }
        let first_free_lag = dictionary.delay.unwrap_or(0) + 1;
        let method = self.method(first_free_lag, by_preset)?;
        if method != Method::Ridge && self.window.is_some() {
            // The configuration refuses it too, at `estimator`; the window is what to drop.
            return Err(invalid(
                "window",
                format!("the `{}` estimator forgets with `forgetting`, not with a sliding window", method.name()),
            ));
        }
        let defaults = ModelOptions::default();
        Ok(ModelOptions {
            dictionary,
            regularisation: match self.sigma {
                Some(sigma) => Regularisation::NoiseSigma(sigma),
                None => Regularisation::Mu(self.mu.unwrap_or(EstimatorConfig::DEFAULT_MU)),
            },
            forgetting: self.forgetting.unwrap_or(defaults.forgetting),
            window: self.window,
            warmup: self.warmup.unwrap_or(defaults.warmup),
            standardise: self.standardise.unwrap_or(defaults.standardise),
            seed: self.seed.unwrap_or(defaults.seed),
            refactor_every: self.refactor_every.unwrap_or(defaults.refactor_every),
            method,
            solve_every: defaults.solve_every,
            rank_ceiling: !rank_given && self.rank.is_some(),
        })
    }

    /// The method, its parameters defaulted and checked, each error at its own field.
    fn method(&self, first_free_lag: usize, by_preset: bool) -> Result<Method, DomainError> {
        let kind = self.estimator.unwrap_or_default();
        let unused = |field: &str| {
            let by = match &self.preset {
                Some(preset) if by_preset => format!(" (chosen by preset `{preset}`)"),
                _ => String::new(),
            };
            Err(invalid(field, format!("only {} takes it, and the estimator is `{kind}`{by}", user_of(field))))
        };
        let given = [("lags", self.lags.is_some()), ("rank", self.rank.is_some())];
        match kind {
            EstimatorKind::Ridge | EstimatorKind::Iv => {
                if let Some((field, _)) = given.iter().find(|(_, g)| *g) {
                    return unused(field);
                }
            }
            EstimatorKind::Correlation => {}
        }
        if kind != EstimatorKind::Iv && self.instrument_delay.is_some() {
            return unused("instrument_delay");
        }
        Ok(match kind {
            EstimatorKind::Ridge => Method::Ridge,
            EstimatorKind::Correlation => {
                let lags = self.lags.unwrap_or(DEFAULT_LAGS);
                if !(2..=MAX_LAGS).contains(&lags) {
                    return Err(invalid("lags", format!("{lags} must be 2 to {MAX_LAGS}")));
                }
                if self.rank == Some(0) {
                    return Err(invalid("rank", "must be at least 1 (leave it out to keep every direction)".into()));
                }
                Method::Correlation { lags, rank: self.rank }
            }
            EstimatorKind::Iv => {
                let delay = self.instrument_delay.unwrap_or(first_free_lag);
                if !(first_free_lag..=MAX_INSTRUMENT_DELAY).contains(&delay) {
                    return Err(invalid(
                        "instrument_delay",
                        format!(
                            "{delay} must be {first_free_lag} to {MAX_INSTRUMENT_DELAY} pairs: an instrument must lie \
                             past the dictionary's delay span, so it shares no sample with the pair"
                        ),
                    ));
                }
                Method::InstrumentalVariable { delay }
            }
        })
    }
}

/// The estimator that takes a parameter.
fn user_of(field: &str) -> &'static str {
    if field == "instrument_delay" { "the `iv` estimator" } else { "the `correlation` estimator" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(request: ModelRequest) -> Result<ModelOptions, DomainError> {
        request.resolve()
    }

    fn pointer_of(request: ModelRequest) -> String {
        let e = resolve(request).unwrap_err();
        e.pointer().unwrap_or_default().to_owned()
    }

    #[test]
    fn defaults_are_ridge_and_each_method_its_parameters() {
        assert_eq!(resolve(ModelRequest::default()).unwrap(), ModelOptions::default());
        let correlation = ModelRequest { estimator: Some(EstimatorKind::Correlation), ..Default::default() };
        assert_eq!(resolve(correlation).unwrap().method, Method::Correlation { lags: DEFAULT_LAGS, rank: None });
        let iv = ModelRequest {
            estimator: Some(EstimatorKind::Iv),
            dictionary: Some("state,delay:4".into()),
            ..Default::default()
        };
        assert_eq!(resolve(iv).unwrap().method, Method::InstrumentalVariable { delay: 5 });
        let given = ModelRequest {
            estimator: Some(EstimatorKind::Correlation),
            lags: Some(30),
            rank: Some(3),
            ..Default::default()
        };
        assert_eq!(resolve(given).unwrap().method, Method::Correlation { lags: 30, rank: Some(3) });
    }

    #[test]
    fn every_error_names_its_field() {
        let correlation = || ModelRequest { estimator: Some(EstimatorKind::Correlation), ..Default::default() };
        let iv = || ModelRequest { estimator: Some(EstimatorKind::Iv), ..Default::default() };
        let cases = [
            (ModelRequest { lags: Some(10), ..Default::default() }, "/lags"),
            (ModelRequest { rank: Some(2), ..Default::default() }, "/rank"),
            (ModelRequest { instrument_delay: Some(3), ..Default::default() }, "/instrument_delay"),
            (ModelRequest { instrument_delay: Some(3), ..correlation() }, "/instrument_delay"),
            (ModelRequest { lags: Some(10), ..iv() }, "/lags"),
            (ModelRequest { rank: Some(1), ..iv() }, "/rank"),
            (ModelRequest { lags: Some(1), ..correlation() }, "/lags"),
            (ModelRequest { lags: Some(MAX_LAGS + 1), ..correlation() }, "/lags"),
            (ModelRequest { rank: Some(0), ..correlation() }, "/rank"),
            (ModelRequest { instrument_delay: Some(0), ..iv() }, "/instrument_delay"),
            (ModelRequest { instrument_delay: Some(MAX_INSTRUMENT_DELAY + 1), ..iv() }, "/instrument_delay"),
            // The instrument must lie past the dictionary's two delays.
            (
                ModelRequest { instrument_delay: Some(2), dictionary: Some("state,delay:2".into()), ..iv() },
                "/instrument_delay",
            ),
            (ModelRequest { preset: Some("nope".into()), ..Default::default() }, "/preset"),
            (ModelRequest { window: Some(100), ..correlation() }, "/window"),
            (ModelRequest { window: Some(100), ..iv() }, "/window"),
            // The preset chooses correlation, which takes no instrument.
            (
                ModelRequest { preset: Some("pmu-ambient".into()), instrument_delay: Some(5), ..Default::default() },
                "/instrument_delay",
            ),
            (ModelRequest { dictionary: Some("poly:2".into()), ..Default::default() }, "/dictionary"),
            (ModelRequest { mu: Some(1.0), sigma: Some(vec![0.1]), ..Default::default() }, "/sigma"),
        ];
        for (request, pointer) in cases {
            assert_eq!(pointer_of(request.clone()), pointer, "{request:?}");
        }
        let e = resolve(ModelRequest {
            preset: Some("pmu-ambient".into()),
            rank: None,
            instrument_delay: Some(5),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("chosen by preset `pmu-ambient`"), "{e}");
    }

    #[test]
    fn a_preset_fills_what_the_request_leaves_open() {
        let ambient = resolve(ModelRequest { preset: Some("pmu-ambient".into()), ..Default::default() }).unwrap();
        assert_eq!(ambient.method, Method::Correlation { lags: 120, rank: Some(32) });
        assert!(ambient.rank_ceiling, "a preset's rank is a ceiling");
        // Fitted to fewer observables it keeps them all; to more, it stays.
        assert_eq!(ambient.clone().fit_rank(12).method, Method::Correlation { lags: 120, rank: None });
        assert_eq!(ambient.clone().fit_rank(72).method, Method::Correlation { lags: 120, rank: Some(32) });
        // A rank the request gives is no ceiling: too large, it is refused later, at `/rank`.
        let given = ModelRequest { preset: Some("pmu-ambient".into()), rank: Some(40), ..Default::default() };
        let given = resolve(given).unwrap();
        assert!(!given.rank_ceiling);
        assert_eq!(given.fit_rank(12).method, Method::Correlation { lags: 120, rank: Some(40) });
        assert_eq!(ambient.dictionary.to_string(), "state,delay:2");
        assert_eq!((ambient.forgetting, ambient.window, ambient.warmup), (0.9999, None, 300));
        assert_eq!(ambient.regularisation, Regularisation::Mu(1e-6));
        // Explicit fields win, parameters of the preset's own estimator included.
        let tuned = resolve(ModelRequest {
            preset: Some("pmu-ambient".into()),
            lags: Some(60),
            warmup: Some(1000),
            forgetting: Some(0.999),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(tuned.method, Method::Correlation { lags: 60, rank: Some(32) });
        assert_eq!((tuned.forgetting, tuned.window, tuned.warmup), (0.999, None, 1000));
        let ringdown = resolve(ModelRequest { preset: Some("pmu-ringdown".into()), ..Default::default() }).unwrap();
        assert_eq!(ringdown.method, Method::Correlation { lags: 60, rank: Some(32) });
        assert_eq!((ringdown.forgetting, ringdown.regularisation), (1.0, Regularisation::Mu(1e-6)));
        // The instrument of iv follows the dictionary, by default one pair past its span.
        let iv = ModelRequest {
            estimator: Some(EstimatorKind::Iv),
            dictionary: Some("state,delay:3".into()),
            ..Default::default()
        };
        assert_eq!(resolve(iv).unwrap().method, Method::InstrumentalVariable { delay: 4 });
        // Another estimator drops the preset's estimator parameters with it.
        let ridge = ModelRequest {
            preset: Some("pmu-ambient".into()),
            estimator: Some(EstimatorKind::Ridge),
            ..Default::default()
        };
        assert_eq!(resolve(ridge).unwrap().method, Method::Ridge);
    }
}
