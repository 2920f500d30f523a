//! Stream definitions: the create request as sent, and the canonical definition it is
//! parsed into once (every default filled in, every option validated).

use koopman::{ConfigError, EstimatorConfig, Method, Regularisation};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::method::StoredMethod;
use crate::modes::{ModeMeterConfig, ModeMeterRequest};
use crate::options::{ModelOptions, ModelRequest};
use crate::source::{SourceRequest, SourceSpec};

/// A measured channel or an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Name, unique within the stream.
    pub name: String,
    /// Unit, for display (e.g. `pu`, `rad`).
    #[serde(default)]
    pub unit: String,
}

/// A request for a new stream, as a transport received it: everything but `channels` and
/// `ts` may be left to its default.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStream {
    /// Stream id (`[A-Za-z0-9._-]`, at most 64 characters); generated if absent.
    pub id: Option<String>,
    /// The measured state channels.
    pub channels: Vec<Channel>,
    /// Input channels (default none).
    pub inputs: Vec<Channel>,
    /// Sample period in seconds.
    pub ts: f64,
    /// The model: preset, estimator, dictionary, regularisation, memory, warm-up and the
    /// rest, as for `koopstream fit`.
    pub model: ModelRequest,
    /// Eigen-decomposition and summary cadence in samples (default from the configuration).
    pub eigen_every: Option<u64>,
    /// The mode meter (default: see [`ModeMeterConfig::defaults`]).
    pub modes: Option<ModeMeterRequest>,
    /// Accept batches without time stamps (default false).
    pub implicit_timing: Option<bool>,
    /// Identical values in a row that make a state channel a flat line (default
    /// [`DEFAULT_FLAT_LINE`]; 0 turns detection off).
    pub flat_line: Option<u64>,
    /// Standard deviations of the one-step residual beyond which a sample is gated as an
    /// outlier (default 0: off; otherwise within [`crate::outlier::K_RANGE`]).
    pub outlier_gate: Option<f64>,
    /// An external source that feeds the stream (default none: HTTP and WebSocket only).
    pub source: Option<SourceRequest>,
}

/// Default run of identical values that marks a stuck sensor: a thousand samples (33 s at
/// 30 frames/s). Noisy measurements essentially never repeat to the last bit that long.
pub const DEFAULT_FLAT_LINE: u64 = 1000;

/// The canonical definition of a stream, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamDefinition {
    /// Stream id.
    pub id: String,
    /// State channels.
    pub channels: Vec<Channel>,
    /// Input channels.
    pub inputs: Vec<Channel>,
    /// Sample period in seconds.
    pub ts: f64,
    /// Canonical dictionary spec.
    pub dictionary: String,
    /// Ridge parameter, when given directly.
    pub mu: Option<f64>,
    /// Noise levels, when mu is derived from them.
    pub sigma: Option<Vec<f64>>,
    /// Forgetting factor.
    pub forgetting: f64,
    /// Sliding window in pairs.
    pub window: Option<usize>,
    /// Warm-up samples.
    pub warmup: usize,
    /// Standardisation on or off.
    pub standardise: bool,
    /// Eigen cadence in samples.
    pub eigen_every: u64,
    /// Seed.
    pub seed: u64,
    /// Refactorisation interval in pairs.
    pub refactor_every: usize,
    /// The mode meter (absent in definitions stored before it existed: the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<ModeMeterConfig>,
    /// Drawn when the stream is created (0 until then, and in definitions stored before it
    /// existed: one is drawn when they are loaded). Not part of what a client defines: two
    /// creations of one id differ in it, so validators (ETags) of a re-created stream never
    /// match those of the stream it replaced.
    #[serde(default)]
    pub incarnation: u64,
    /// Whether a batch with neither `t` nor `t0` is accepted (taken to follow the last
    /// sample at Ts). Refused by default, since it hides gaps; definitions stored before
    /// the option existed keep accepting them.
    #[serde(default = "accepted_before_the_option")]
    pub implicit_timing: bool,
    /// Identical values in a row that make a state channel a flat line (0: off, also for
    /// definitions stored before the option existed).
    #[serde(default)]
    pub flat_line: u64,
    /// Standard deviations of the one-step residual beyond which a sample is gated as an
    /// outlier (0: off, the default, also for definitions stored before the option existed:
    /// gating changes what a model learns, so it is asked for).
    #[serde(default)]
    pub outlier_gate: f64,
    /// The estimation method with its parameters (ridge in definitions stored before
    /// methods existed, which is what they were served with).
    #[serde(default)]
    pub estimator: StoredMethod,
    /// The preset the definition was made from, if any: a record of the request, not a
    /// setting (every value it gave is in the fields above, so retuning a preset later
    /// changes no existing stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The external source feeding the stream, if any (absent in definitions stored before
    /// sources existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSpec>,
}

fn accepted_before_the_option() -> bool {
    true
}

impl StreamDefinition {
    /// Whether `other` defines the same stream (the incarnation aside).
    pub fn same_as(&self, other: &StreamDefinition) -> bool {
        *self == StreamDefinition { incarnation: self.incarnation, ..other.clone() }
    }
}

/// A fresh incarnation: nonzero, and different for every call within a process and, with
/// overwhelming probability, across processes (a randomly keyed hash of the clock and a
/// counter).
pub fn fresh_incarnation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish().max(1)
}

/// What a cluster node's idle copy of a stream holds, counted against its memory budget
/// instead of the stream's full estimate: an idle copy is never fed, so its estimator,
/// warm-up buffer and recent-samples ring stay unallocated. Measured: 1400 unfed streams
/// of 32 channels (`state,delay:4`) added 20.4 KiB of resident memory each (release build;
/// BENCHMARKS.md); this is that, rounded up.
pub const IDLE_COPY_BYTES: u64 = 32 << 10;

/// Most channels and inputs of one stream, together.
pub const MAX_CHANNELS: usize = 4096;
/// Shortest sample period in seconds (1 GHz); anything shorter makes the Nyquist
/// frequency and the default mode band overflow.
pub const MIN_TS: f64 = 1e-9;
/// Longest sample period in seconds (about 11.6 days).
pub const MAX_TS: f64 = 1e6;
/// Longest channel name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest unit, in bytes.
pub const MAX_UNIT_BYTES: usize = 32;
/// Bytes a published model and its modes hold per N^2 (A, the complex right and left
/// eigenvectors, the eigen solver's work space), on top of the estimator's own estimate;
/// and the mode meter's (the copies of P and G handed to a refresh, every analysed mode's
/// complex eigenfunction).
pub const PUBLISHED_BYTES_PER_SQUARE: u64 = 8 * 6 + 8 * 2 + 16;

/// Checks a stream id: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn check_id(id: &str) -> Result<(), DomainError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(format!("field `id`: `{id}` must be 1 to 64 characters of A-Z a-z 0-9 . _ -"))
            .at("/id"))
    }
}

fn field_of(error: &ConfigError) -> &'static str {
    match error {
        ConfigError::NoStates => "channels",
        ConfigError::Forgetting(_) => "forgetting",
        ConfigError::Mu(_) => "mu",
        ConfigError::Sigma(_) => "sigma",
        ConfigError::WindowWithForgetting | ConfigError::Window { .. } => "window",
        ConfigError::Warmup { .. } => "warmup",
        ConfigError::RefactorEvery => "refactor_every",
        ConfigError::Method(_) => "estimator",
        ConfigError::CentresShape { .. } | ConfigError::TooManyObservables(_) | ConfigError::Spec(_) => "dictionary",
    }
}

impl StreamDefinition {
    /// Parses a create request; `generated_id` is used when the request names none.
    pub fn from_request(
        request: NewStream,
        default_eigen_every: u64,
        generated_id: impl FnOnce() -> String,
    ) -> Result<Self, DomainError> {
        let id = match request.id {
            Some(id) => {
                check_id(&id)?;
                id
            }
            None => generated_id(),
        };
        if request.channels.is_empty() {
            return Err(DomainError::invalid("field `channels`: a stream needs at least one channel").at("/channels"));
        }
        if request.channels.len() + request.inputs.len() > MAX_CHANNELS {
            return Err(DomainError::invalid(format!("fields `channels` and `inputs`: at most {MAX_CHANNELS} in all"))
                .at("/inputs"));
        }
        let mut names: Vec<&str> = Vec::new();
        for (field, list) in [("channels", &request.channels), ("inputs", &request.inputs)] {
            for (i, c) in list.iter().enumerate() {
                let at = |member: &str| format!("/{field}/{i}/{member}");
                if c.name.is_empty() || c.name.contains([',', '\n', '\r', '"']) {
                    return Err(DomainError::invalid(format!(
                        "field `{field}`: name `{}` must be non-empty without commas, quotes or line breaks",
                        c.name
                    ))
                    .at(at("name")));
                }
                if c.name.len() > MAX_NAME_BYTES || c.unit.len() > MAX_UNIT_BYTES {
                    return Err(DomainError::invalid(format!(
                        "field `{field}`: names are at most {MAX_NAME_BYTES} bytes and units at most \
                         {MAX_UNIT_BYTES} (name of {} bytes, unit of {})",
                        c.name.len(),
                        c.unit.len()
                    ))
                    .at(at(if c.name.len() > MAX_NAME_BYTES { "name" } else { "unit" })));
                }
                if names.contains(&c.name.as_str()) {
                    return Err(DomainError::invalid(format!("field `{field}`: name `{}` is used twice", c.name))
                        .at(at("name")));
                }
                names.push(&c.name);
            }
        }
        if !(MIN_TS..=MAX_TS).contains(&request.ts) {
            return Err(DomainError::invalid(format!(
                "field `ts`: {} s is outside [{MIN_TS}, {MAX_TS}] seconds",
                request.ts
            ))
            .at("/ts"));
        }
        let preset = request.model.preset.as_deref().map(crate::presets::find).transpose()?;
        let names = |channels: &[Channel]| channels.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let options = request.model.resolve()?;
        let n_lifted = options.estimator_config(names(&request.channels), names(&request.inputs)).n_lifted();
        let options = options.fit_rank(n_lifted);
        let eigen_every = request.eigen_every.unwrap_or(default_eigen_every);
        if eigen_every == 0 {
            return Err(DomainError::invalid("field `eigen_every`: must be at least 1").at("/eigen_every"));
        }
        let mut modes = request.modes;
        if let Some(band) = preset.map(|p| p.band_for(request.ts)).transpose()?.flatten() {
            // The preset's band fills in like any other value: only when the request has none.
            let modes = modes.get_or_insert_with(Default::default);
            modes.band_hz = modes.band_hz.take().or_else(|| Some(band.to_vec()));
        }
        let modes = ModeMeterConfig::from_request(modes, request.ts)?;
        let outlier_gate = request.outlier_gate.unwrap_or(0.0);
        let (low, high) = crate::outlier::K_RANGE;
        if !(outlier_gate == 0.0 || (low..=high).contains(&outlier_gate)) {
            return Err(DomainError::invalid(format!(
                "field `outlier_gate`: {outlier_gate} must be 0 (off) or a number of standard deviations from {low} \
                 to {high}"
            ))
            .at("/outlier_gate"));
        }
        let source = request.source.map(|s| s.validate(&request.channels, &request.inputs)).transpose()?;
        let (mu, sigma) = match options.regularisation {
            Regularisation::Mu(mu) => (Some(mu), None),
            Regularisation::NoiseSigma(sigma) => (None, Some(sigma)),
        };
        let definition = Self {
            id,
            channels: request.channels,
            inputs: request.inputs,
            ts: request.ts,
            dictionary: options.dictionary.to_string(),
            mu,
            sigma,
            forgetting: options.forgetting,
            window: options.window,
            warmup: options.warmup,
            standardise: options.standardise,
            eigen_every,
            seed: options.seed,
            refactor_every: options.refactor_every,
            modes: Some(modes),
            incarnation: 0,
            implicit_timing: request.implicit_timing.unwrap_or(false),
            flat_line: request.flat_line.unwrap_or(DEFAULT_FLAT_LINE),
            outlier_gate,
            estimator: options.method.into(),
            preset: preset.map(|p| p.name.to_owned()),
            source,
        };
        let config = definition.estimator_config();
        if let Method::Correlation { rank: Some(rank), .. } = config.method
            && rank > config.n_lifted()
        {
            // The configuration says so too, but at `estimator`; the rank is the value to fix.
            return Err(DomainError::invalid(format!(
                "field `rank`: {rank} exceeds the {} observables of dictionary `{}`",
                config.n_lifted(),
                definition.dictionary
            ))
            .at("/rank"));
        }
        config.validate().map_err(|e| {
            DomainError::invalid(format!("field `{}`: {e}", field_of(&e))).at(format!("/{}", field_of(&e)))
        })?;
        Ok(definition)
    }

    /// The model options this definition stands for.
    pub fn model_options(&self) -> ModelOptions {
        ModelOptions {
            dictionary: self.dictionary.parse().expect("validated when the definition was made"),
            regularisation: match &self.sigma {
                Some(s) => Regularisation::NoiseSigma(s.clone()),
                None => Regularisation::Mu(self.mu.unwrap_or(EstimatorConfig::DEFAULT_MU)),
            },
            forgetting: self.forgetting,
            window: self.window,
            warmup: self.warmup,
            standardise: self.standardise,
            seed: self.seed,
            refactor_every: self.refactor_every,
            method: self.estimator.into(),
            // A correlation estimator solves when the modes are next refreshed.
            solve_every: usize::try_from(self.eigen_every).unwrap_or(usize::MAX),
            // Stored ranks were fitted to the observables when the stream was made.
            rank_ceiling: false,
        }
    }

    /// The mode meter's configuration.
    pub fn mode_meter(&self) -> ModeMeterConfig {
        self.modes.unwrap_or_else(|| ModeMeterConfig::defaults(self.ts))
    }

    /// The estimator configuration.
    pub fn estimator_config(&self) -> EstimatorConfig {
        self.model_options().estimator_config(
            self.channels.iter().map(|c| c.name.clone()).collect(),
            self.inputs.iter().map(|c| c.name.clone()).collect(),
        )
    }

    /// An upper estimate of the memory this stream holds, in bytes: the estimator's own
    /// (warm-up buffer, matrices, window), the published model with its modes and the ring
    /// of recent measurements. What the memory budgets are checked against, before anything
    /// is allocated.
    pub fn memory_bytes(&self) -> u64 {
        let config = self.estimator_config();
        let lifted = config.n_lifted() as u64;
        // A refresh's copy of the residual ring.
        let ring = (koopman::uncertainty::residual_ring_rows(config.n_lifted()) as u64).saturating_mul(lifted) * 8;
        config
            .memory_bytes()
            .saturating_add(lifted.saturating_mul(lifted).saturating_mul(PUBLISHED_BYTES_PER_SQUARE))
            .saturating_add(ring)
            .saturating_add(crate::recent::RecentSamples::bytes(self.n_states()))
            .saturating_add(crate::trend::ModeTrend::bytes(self.mode_meter().max))
    }

    /// Number of state channels.
    pub fn n_states(&self) -> usize {
        self.channels.len()
    }

    /// Number of inputs.
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }
}
