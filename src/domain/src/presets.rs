//! Named presets: starting points of a model for one kind of data, each value with the
//! reason it was chosen. A request names one with `preset`; any field it gives itself wins.
//! The values live here and only here (the list served by `GET /v1/presets`, `fit
//! --preset` and stream creation all read this table), so tuning one is a one-line change.

use crate::error::DomainError;
use crate::method::EstimatorKind;
use crate::options::ModelRequest;

/// A value a preset sets, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Why this value suits the preset's kind of data.
    pub why: &'static str,
}

/// How long the estimator remembers: forgetting and a window are two ways of saying it,
/// and exclusive, so a preset sets one and a request that gives either replaces both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Memory {
    /// Exponential forgetting factor rho in (0, 1].
    Forgetting(f64),
    /// Exact sliding window in pairs (ridge only: the other estimators forget with a factor).
    Window(usize),
}

/// One preset. `None` leaves a field to the request or its default.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// The name a request gives.
    pub name: &'static str,
    /// What kind of data it is for.
    pub description: &'static str,
    /// The estimator.
    pub estimator: Setting<EstimatorKind>,
    /// Correlation lags (correlation estimator only).
    pub lags: Option<Setting<usize>>,
    /// Rank of the correlation estimator's SVD (correlation estimator only).
    pub rank: Option<Setting<usize>>,
    /// Instrument delay in pairs (iv only; by default the dictionary's delay span + 1).
    pub instrument_delay: Option<Setting<usize>>,
    /// Dictionary spec.
    pub dictionary: Option<Setting<&'static str>>,
    /// Ridge parameter (replaced as a whole by a request's `mu` or `sigma`).
    pub mu: Option<Setting<f64>>,
    /// Forgetting or window (replaced as a whole by a request's `forgetting` or `window`).
    pub memory: Option<Setting<Memory>>,
    /// Warm-up samples.
    pub warmup: Option<Setting<usize>>,
    /// The mode meter's band in Hz. Its upper end is clamped to 0.4 / ts (the default
    /// band's top) for slowly sampled streams; a band wholly above that is refused.
    pub band_hz: Option<Setting<[f64; 2]>>,
}

/// Why the PMU presets use the inter-area band (shared, so the two cannot drift apart).
const PMU_BAND: &str = "inter-area and local electromechanical modes of power systems lie between 0.1 and 2 Hz; \
                        slower eigenvalues are governor and load drift, faster ones noise";

/// Why the PMU presets truncate the correlation estimator's SVD (shared, as above).
const RANK_WHY: &str = "32 directions: twice the 16 machines of the 68-bus system where it was measured; the \
                        smaller singular directions carry the noise of a finite record. A ceiling: a stream with \
                        fewer observables keeps them all";

/// Every preset, in the order `GET /v1/presets` lists them.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "pmu-ambient",
        description: "Phasor measurements of a power system in normal operation, driven only by random load \
                      changes (ambient data, no known inputs), at 10 to 60 frames/s",
        estimator: Setting {
            value: EstimatorKind::Correlation,
            why: "measurement noise sits in the regressors and biases least squares towards more damping; \
                  the correlation sequence at lags past the dictionary's delays contains no noise of the same \
                  sample. Measured on 68-bus ambient PMU records at the C37.118.1 limits (EXPERIMENTS.md, 20 \
                  realisations of 10 min): mean damping error 0.6 to 1.0 point per inter-area mode against 10 to \
                  23 points for ridge, which also lost the 0.78 Hz mode",
        },
        lags: Some(Setting {
            value: 120,
            why: "4 s at 30 frames/s: several periods of the slowest inter-area mode, while its correlation \
                  has not yet decayed into noise",
        }),
        rank: Some(Setting { value: 32, why: RANK_WHY }),
        instrument_delay: None,
        dictionary: Some(Setting {
            value: "state,delay:2",
            why: "ambient responses are linear; two delays let a few channels carry modes they see only in phase",
        }),
        mu: Some(Setting { value: 1e-6, why: "only to keep the cold start defined; the data are rich" }),
        memory: Some(Setting {
            value: Memory::Forgetting(0.9999),
            why: "an effective memory of 10 000 pairs (5.6 min at 30 frames/s): long enough for tight damping \
                  intervals, short enough to follow the operating point",
        }),
        warmup: Some(Setting { value: 300, why: "10 s at 30 frames/s: a stable standardisation" }),
        band_hz: Some(Setting { value: [0.1, 2.0], why: PMU_BAND }),
    },
    Preset {
        name: "pmu-ringdown",
        description: "Phasor measurements after a disturbance (a fault, a line trip): a ring-down with \
                      measurement noise",
        estimator: Setting {
            value: EstimatorKind::Correlation,
            why: "the correlation sequence of a free response is itself a free response of the same modes, and \
                  lags past the dictionary's delays carry no noise of the same sample. Measured on the 68-bus \
                  fault ring-down from PMUs (EXPERIMENTS.md, 20 noise realisations): both inter-area modes with at \
                  least 1 % of the energy found within 2 % and 2 damping points in every realisation at 40 dB and at \
                  the C37.118.1 limits, where ridge overstates damping by 3 to 6 points; instrumental variables \
                  scattered on so short a record",
        },
        lags: Some(Setting {
            value: 60,
            why: "2 s at 30 frames/s: most of a period of the slowest inter-area mode, short beside a record of \
                  half a minute (30 and 120 lags were measured too, see EXPERIMENTS.md)",
        }),
        rank: Some(Setting { value: 32, why: RANK_WHY }),
        instrument_delay: None,
        dictionary: Some(Setting {
            value: "state,delay:2",
            why: "the system's response is linear after the first swings; two delays let a few channels carry \
                  modes they see only in phase",
        }),
        mu: Some(Setting { value: 1e-6, why: "only to keep the cold start defined" }),
        memory: Some(Setting {
            value: Memory::Forgetting(1.0),
            why: "a ring-down is short: every pair of it counts equally",
        }),
        warmup: Some(Setting { value: 300, why: "10 s at 30 frames/s: a stable standardisation" }),
        band_hz: Some(Setting { value: [0.1, 2.0], why: PMU_BAND }),
    },
    Preset {
        name: "lab-nonlinear",
        description: "A laboratory system with a nonlinear response (an oscillator, a rig) and low noise",
        estimator: Setting {
            value: EstimatorKind::Ridge,
            why: "with little noise the ridge solution is unbiased enough and exactly the batch EDMD fit",
        },
        lags: None,
        rank: None,
        instrument_delay: None,
        dictionary: Some(Setting {
            value: "state,const,poly:3",
            why: "cubic monomials capture the usual nonlinearities (Duffing, Van der Pol) in a small dictionary",
        }),
        mu: Some(Setting { value: 1e-6, why: "keeps the cold start and the higher monomials defined" }),
        memory: None,
        warmup: Some(Setting { value: 500, why: "enough samples to standardise the cubic terms" }),
        band_hz: None,
    },
];

/// The names of every preset, for messages.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.name).collect()
}

/// The preset of this name, or a 422 at `/preset` listing the known ones.
pub fn find(name: &str) -> Result<&'static Preset, DomainError> {
    PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
        DomainError::invalid(format!(
            "field `preset`: `{name}` is not a preset; the presets are {}",
            names().join(", ")
        ))
        .at("/preset")
    })
}

impl Preset {
    /// Fills the fields the request leaves open. Groups of fields go together: a request
    /// that names an estimator takes none of the preset's estimator parameters (they
    /// belong to the preset's estimator), `mu` or `sigma` replaces the preset's mu, and
    /// `forgetting` or `window` replaces its memory.
    pub fn fill(&self, request: &mut ModelRequest) {
        if request.estimator.is_none() {
            request.estimator = Some(self.estimator.value);
            request.lags = request.lags.or(self.lags.map(|s| s.value));
            request.rank = request.rank.or(self.rank.map(|s| s.value));
            request.instrument_delay = request.instrument_delay.or(self.instrument_delay.map(|s| s.value));
        }
        if request.dictionary.is_none() {
            request.dictionary = self.dictionary.map(|s| s.value.to_owned());
        }
        if request.mu.is_none() && request.sigma.is_none() {
            request.mu = self.mu.map(|s| s.value);
        }
        if request.forgetting.is_none() && request.window.is_none() {
            match self.memory.map(|s| s.value) {
                Some(Memory::Forgetting(rho)) => request.forgetting = Some(rho),
                Some(Memory::Window(w)) => request.window = Some(w),
                None => {}
            }
        }
        request.warmup = request.warmup.or(self.warmup.map(|s| s.value));
    }

    /// The preset's mode band for sample time `ts`: its upper end clamped to 0.4 / ts,
    /// the top of the default band (a preset is written for one kind of data, but its
    /// streams may be sampled more slowly), or a 422 at `/preset` when nothing of it
    /// remains below that.
    pub fn band_for(&self, ts: f64) -> Result<Option<[f64; 2]>, DomainError> {
        let Some(band) = self.band_hz else { return Ok(None) };
        let [low, high] = band.value;
        let ceiling = 0.4 / ts;
        if low >= ceiling {
            return Err(DomainError::invalid(format!(
                "field `preset`: the band [{low}, {high}] Hz of `{}` lies above 0.4 / ts = {ceiling} Hz at ts = {ts} \
                 s; sample faster, or give `modes.band_hz`",
                self.name
            ))
            .at("/preset"));
        }
        Ok(Some([low, high.min(ceiling)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_unique_and_make_valid_models() {
        let mut names = names();
        names.dedup();
        assert_eq!(names.len(), PRESETS.len());
        for preset in PRESETS {
            let request = ModelRequest { preset: Some(preset.name.into()), ..ModelRequest::default() };
            let options = request.resolve().unwrap_or_else(|e| panic!("{}: {e}", preset.name));
            let names = || vec!["a".to_owned(), "b".to_owned()];
            let n_lifted = options.estimator_config(names(), vec![]).n_lifted();
            let config = options.fit_rank(n_lifted).estimator_config(names(), vec![]);
            config.validate().unwrap_or_else(|e| panic!("{}: {e}", preset.name));
            assert_eq!(config.method.name(), preset.estimator.value.name());
        }
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = find("pmu").unwrap_err();
        assert_eq!(e.pointer(), Some("/preset"));
        for name in names() {
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn the_band_is_clamped_below_the_ceiling_or_refused() {
        let ambient = find("pmu-ambient").unwrap();
        assert_eq!(ambient.band_for(1.0 / 30.0).unwrap(), Some([0.1, 2.0]));
        // 1 frame/s: the ceiling is 0.4 Hz.
        assert_eq!(ambient.band_for(1.0).unwrap(), Some([0.1, 0.4]));
        // One frame every 5 s: 0.08 Hz, below the band's low end.
        let e = ambient.band_for(5.0).unwrap_err();
        assert_eq!(e.pointer(), Some("/preset"));
        assert!(e.to_string().contains("modes.band_hz"), "{e}");
        assert_eq!(find("lab-nonlinear").unwrap().band_for(5.0).unwrap(), None);
    }

    #[test]
    fn a_request_that_names_its_memory_or_regularisation_replaces_the_presets() {
        let ambient = find("pmu-ambient").unwrap();
        let mut request = ModelRequest { window: Some(18_000), sigma: Some(vec![0.01]), ..ModelRequest::default() };
        ambient.fill(&mut request);
        assert_eq!((request.forgetting, request.window, request.mu), (None, Some(18_000), None));
        let mut request = ModelRequest { estimator: Some(EstimatorKind::Ridge), ..ModelRequest::default() };
        ambient.fill(&mut request);
        assert_eq!((request.estimator, request.lags), (Some(EstimatorKind::Ridge), None));
        assert_eq!(request.dictionary.as_deref(), Some("state,delay:2"));
    }
}
