//! The JSON documents of streams as they travel, with their OpenAPI schemas: the create
//! request, the definition and status a stream is served with, acknowledgements and model
//! summaries. They convert from and to the service's own types here, so the service knows
//! neither JSON nor OpenAPI; each keeps the schema name of the type it stands for.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod messages;
mod presets;
mod source;
mod status;

use domain::definition::{Channel, NewStream, StreamDefinition};
use domain::method::{EstimatorKind, StoredMethod};
use domain::modes::{AlarmRequest, ModeMeterConfig, ModeMeterRequest};
use domain::options::ModelRequest;
pub use messages::{AlarmMessageDoc, IngestAckDoc, ModeBriefDoc, ModeChangedDoc, ModelSummaryDoc};
pub use presets::{PresetDoc, PresetModesDoc, PresetSettingsDoc};
pub use source::{
    C37118SourceDoc, PmuRefDoc, SourceChannelDoc, SourceConfigurationDoc, SourceDoc, SourceErrorDoc, SourceMissingDoc,
    SourceStatusDoc, SourceTransportDoc,
};
pub use status::{ModelStateDoc, RejectCountsDoc, StreamStatusDoc, WarmupProgressDoc};

/// The estimation method of a stream's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = Estimator)]
#[serde(rename_all = "lowercase")]
pub enum EstimatorDoc {
    /// Ridge-regularised EDMD, updated per pair (the default).
    #[default]
    Ridge,
    /// DMD on the correlation sequence of the observables, for ambient data without
    /// inputs; noise in the measurements does not bias it (parameters `lags`, `rank`).
    Correlation,
    /// Instrumental variables: the regressor `instrument_delay` pairs earlier instruments
    /// each pair, which removes the noise bias of least squares.
    Iv,
}

impl From<EstimatorKind> for EstimatorDoc {
    fn from(kind: EstimatorKind) -> Self {
        match kind {
            EstimatorKind::Ridge => EstimatorDoc::Ridge,
            EstimatorKind::Correlation => EstimatorDoc::Correlation,
            EstimatorKind::Iv => EstimatorDoc::Iv,
        }
    }
}

impl From<EstimatorDoc> for EstimatorKind {
    fn from(doc: EstimatorDoc) -> Self {
        match doc {
            EstimatorDoc::Ridge => EstimatorKind::Ridge,
            EstimatorDoc::Correlation => EstimatorKind::Correlation,
            EstimatorDoc::Iv => EstimatorKind::Iv,
        }
    }
}

/// A measured channel or an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Channel)]
#[serde(deny_unknown_fields)]
pub struct ChannelDoc {
    /// Name, unique within the stream.
    pub name: String,
    /// Unit, for display (e.g. `pu`, `rad`).
    #[serde(default)]
    pub unit: String,
}

/// A noise level: one standard deviation for every channel, or one per channel.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[schema(as = Sigma)]
#[serde(untagged)]
pub enum SigmaDoc {
    /// The same for every state channel.
    One(f64),
    /// One per state channel.
    PerChannel(Vec<f64>),
}

/// `POST /v1/streams` body. Everything but `channels` and `ts` has a default.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStream {
    /// Stream id (`[A-Za-z0-9._-]`, at most 64 characters); generated if absent.
    pub id: Option<String>,
    /// The measured state channels (at least one).
    #[schema(min_items = 1)]
    pub channels: Vec<ChannelDoc>,
    /// Input channels (default none).
    #[serde(default)]
    pub inputs: Vec<ChannelDoc>,
    /// Sample period in seconds.
    pub ts: f64,
    /// A preset (see `GET /v1/presets`): the estimator, dictionary, mu, memory, warm-up and
    /// mode band that suit one kind of data. Every field given here overrides the preset's.
    #[schema(example = "pmu-ambient")]
    pub preset: Option<String>,
    /// The estimation method (default `ridge`, or the preset's).
    pub estimator: Option<EstimatorDoc>,
    /// Correlation lags kept by the `correlation` estimator (default 120); refused with
    /// any other estimator.
    #[serde(default, deserialize_with = "crate::integral::optional")]
    #[schema(minimum = 2, maximum = 2000)]
    pub lags: Option<usize>,
    /// Rank of the `correlation` estimator's truncated SVD, at most the number of
    /// observables (default: every direction); refused with any other estimator.
    #[serde(default, deserialize_with = "crate::integral::optional")]
    #[schema(minimum = 1, maximum = 4096)]
    pub rank: Option<usize>,
    /// Pairs between a regressor and its instrument for the `iv` estimator, past the
    /// dictionary's delay span (default: that span + 1); refused with any other estimator.
    #[serde(default, deserialize_with = "crate::integral::optional")]
    #[schema(minimum = 1, maximum = 1000)]
    pub instrument_delay: Option<usize>,
    /// Dictionary spec, as for `koopstream fit` (default `state,const,poly:2`).
    pub dictionary: Option<String>,
    /// Ridge parameter (default 1e-6); exclusive with `sigma`.
    pub mu: Option<f64>,
    /// Measurement-noise standard deviation(s) to derive mu from at the end of warm-up.
    pub sigma: Option<SigmaDoc>,
    /// Forgetting factor in (0, 1] (default 1).
    pub forgetting: Option<f64>,
    /// Exact sliding window in pairs (default none).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub window: Option<usize>,
    /// Warm-up samples (default 200).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub warmup: Option<usize>,
    /// Standardise channels at the end of warm-up (default true).
    pub standardise: Option<bool>,
    /// Eigen-decomposition and summary cadence in samples (default from the configuration).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub eigen_every: Option<u64>,
    /// Seed of RBF centres and Fourier features (default 0).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub seed: Option<u64>,
    /// Exact refactorisation interval in pairs (default 2000).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub refactor_every: Option<usize>,
    /// The mode meter: which modes are reported as physical, and their damping alarms.
    pub modes: Option<ModeMeterRequestDoc>,
    /// Accept batches with neither `t` nor `t0`, taken to follow the last sample at Ts
    /// (default false: such a batch is refused with 422, since it would hide a gap).
    pub implicit_timing: Option<bool>,
    /// Identical values in a row that make a state channel a flat line, whose samples are
    /// then treated as missing and counted (default 1000; 0 turns detection off).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub flat_line: Option<u64>,
    /// Outlier gate: once the model is solved, a sample whose one-step residual exceeds this
    /// many standard deviations of its channel's running residual scale on any state
    /// channel is treated as missing and counted as `outlier`; after 10 gated samples in a
    /// row the gate reopens and learns its scale again (a real change is not refused
    /// forever). Default 0: off; otherwise from 2 to 100.
    pub outlier_gate: Option<f64>,
    /// An external source that feeds the stream (default none: HTTP and WebSocket only).
    /// Every channel and input is mapped to one quantity of one PMU.
    pub source: Option<SourceDoc>,
}

/// Damping alarm thresholds (fractions: 0.05 is 5 %).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[schema(as = AlarmRequest)]
#[serde(deny_unknown_fields)]
pub struct AlarmRequestDoc {
    /// Warning when the damping interval's upper end stays below this (default 0.05).
    pub warning: Option<f64>,
    /// Critical when it stays below this (default 0.03; at most `warning`).
    pub critical: Option<f64>,
    /// How long a condition must hold, in seconds of stream time (default 30, at most 86400).
    pub hold_s: Option<f64>,
    /// An alarm clears when the interval's lower end stays above threshold + this (default 0.01).
    pub clear_margin: Option<f64>,
}

/// The `modes` object of a create request.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[schema(as = ModeMeterRequest)]
#[serde(deny_unknown_fields)]
pub struct ModeMeterRequestDoc {
    /// Band of physical modes in Hz, [low, high] (default: above 0, at most 0.4 / ts).
    #[schema(min_items = 2, max_items = 2)]
    pub band_hz: Option<Vec<f64>>,
    /// Most physical modes reported (default 8, at most 64).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    pub max: Option<usize>,
    /// Least energy share of a mode's conjugate pair (default 0.005).
    pub min_energy: Option<f64>,
    /// Damping alarm thresholds.
    pub alarm: Option<AlarmRequestDoc>,
}

/// Damping alarm thresholds of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
#[schema(as = AlarmSettings)]
pub struct AlarmSettingsDoc {
    /// Warning threshold on the damping ratio.
    pub warning: f64,
    /// Critical threshold.
    pub critical: f64,
    /// Hold time in seconds.
    pub hold_s: f64,
    /// Clearing margin.
    pub clear_margin: f64,
}

/// The mode meter of a stream, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
#[schema(as = ModeMeterSettings)]
pub struct ModeMeterDoc {
    /// Band of physical modes in Hz (low exclusive, high inclusive).
    pub band_hz: [f64; 2],
    /// Most physical modes reported.
    pub max: usize,
    /// Least energy share of a mode's conjugate pair.
    pub min_energy: f64,
    /// Damping alarm thresholds.
    pub alarm: AlarmSettingsDoc,
}

impl From<ModeMeterConfig> for ModeMeterDoc {
    fn from(c: ModeMeterConfig) -> Self {
        Self {
            band_hz: c.band_hz,
            max: c.max,
            min_energy: c.min_energy,
            alarm: AlarmSettingsDoc {
                warning: c.alarm.warning,
                critical: c.alarm.critical,
                hold_s: c.alarm.hold_s,
                clear_margin: c.alarm.clear_margin,
            },
        }
    }
}

impl From<ModeMeterRequestDoc> for ModeMeterRequest {
    fn from(doc: ModeMeterRequestDoc) -> Self {
        Self {
            band_hz: doc.band_hz,
            max: doc.max,
            min_energy: doc.min_energy,
            alarm: doc.alarm.map(|a| AlarmRequest {
                warning: a.warning,
                critical: a.critical,
                hold_s: a.hold_s,
                clear_margin: a.clear_margin,
            }),
        }
    }
}

fn channel(doc: ChannelDoc) -> Channel {
    Channel { name: doc.name, unit: doc.unit }
}

impl From<CreateStream> for NewStream {
    fn from(request: CreateStream) -> Self {
        Self {
            id: request.id,
            channels: request.channels.into_iter().map(channel).collect(),
            inputs: request.inputs.into_iter().map(channel).collect(),
            ts: request.ts,
            model: ModelRequest {
                preset: request.preset,
                estimator: request.estimator.map(Into::into),
                lags: request.lags,
                rank: request.rank,
                instrument_delay: request.instrument_delay,
                dictionary: request.dictionary,
                mu: request.mu,
                sigma: request.sigma.map(|s| match s {
                    SigmaDoc::One(v) => vec![v],
                    SigmaDoc::PerChannel(v) => v,
                }),
                forgetting: request.forgetting,
                window: request.window,
                warmup: request.warmup,
                standardise: request.standardise,
                seed: request.seed,
                refactor_every: request.refactor_every,
            },
            eigen_every: request.eigen_every,
            modes: request.modes.map(ModeMeterRequest::from),
            implicit_timing: request.implicit_timing,
            flat_line: request.flat_line,
            outlier_gate: request.outlier_gate,
            source: request.source.map(Into::into),
        }
    }
}

/// The canonical definition of a stream, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = StreamDefinition)]
pub struct StreamDefinitionDoc {
    /// Stream id.
    pub id: String,
    /// State channels.
    pub channels: Vec<ChannelDoc>,
    /// Input channels.
    pub inputs: Vec<ChannelDoc>,
    /// Sample period in seconds.
    pub ts: f64,
    /// The preset the stream was created from (its values are in the fields here).
    pub preset: Option<String>,
    /// The estimation method.
    pub estimator: EstimatorDoc,
    /// Correlation lags (`correlation` only, else null).
    pub lags: Option<usize>,
    /// Rank of the correlation estimator's SVD (null: every direction, or not `correlation`).
    pub rank: Option<usize>,
    /// Instrument delay in pairs (`iv` only, else null).
    pub instrument_delay: Option<usize>,
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
    /// The mode meter.
    pub modes: ModeMeterDoc,
    /// Whether batches without time stamps are accepted.
    pub implicit_timing: bool,
    /// Identical values in a row that make a flat line (0: off).
    pub flat_line: u64,
    /// Standard deviations of the one-step residual beyond which a sample is gated as an
    /// outlier (0: off).
    pub outlier_gate: f64,
    /// The external source feeding the stream (null: HTTP and WebSocket only).
    pub source: Option<SourceDoc>,
}

fn channel_doc(c: &Channel) -> ChannelDoc {
    ChannelDoc { name: c.name.clone(), unit: c.unit.clone() }
}

impl From<&StreamDefinition> for StreamDefinitionDoc {
    fn from(d: &StreamDefinition) -> Self {
        Self {
            id: d.id.clone(),
            channels: d.channels.iter().map(channel_doc).collect(),
            inputs: d.inputs.iter().map(channel_doc).collect(),
            ts: d.ts,
            preset: d.preset.clone(),
            estimator: d.estimator.kind().into(),
            lags: match d.estimator {
                StoredMethod::Correlation { lags, .. } => Some(lags),
                _ => None,
            },
            rank: match d.estimator {
                StoredMethod::Correlation { rank, .. } => rank,
                _ => None,
            },
            instrument_delay: match d.estimator {
                StoredMethod::Iv { instrument_delay } => Some(instrument_delay),
                _ => None,
            },
            dictionary: d.dictionary.clone(),
            mu: d.mu,
            sigma: d.sigma.clone(),
            forgetting: d.forgetting,
            window: d.window,
            warmup: d.warmup,
            standardise: d.standardise,
            eigen_every: d.eigen_every,
            seed: d.seed,
            refactor_every: d.refactor_every,
            modes: d.mode_meter().into(),
            implicit_timing: d.implicit_timing,
            flat_line: d.flat_line,
            outlier_gate: d.outlier_gate,
            source: d.source.as_ref().map(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::definition::{MAX_NAME_BYTES, PUBLISHED_BYTES_PER_SQUARE};
    use domain::options::DEFAULT_DICTIONARY;

    fn request(json: &str) -> NewStream {
        serde_json::from_str::<CreateStream>(json).unwrap().into()
    }

    #[test]
    fn defaults_are_filled_and_errors_name_the_field() {
        let d =
            StreamDefinition::from_request(request(r#"{"channels":[{"name":"a"}],"ts":0.1}"#), 300, || "gen".into())
                .unwrap();
        assert_eq!(
            (d.id.as_str(), d.dictionary.as_str(), d.mu, d.warmup, d.eigen_every),
            ("gen", DEFAULT_DICTIONARY, Some(1e-6), 200, 300)
        );
        let cases = [
            (r#"{"channels":[],"ts":0.1}"#, "`channels`"),
            (r#"{"channels":[{"name":"a"},{"name":"a"}],"ts":0.1}"#, "used twice"),
            (r#"{"channels":[{"name":"a"}],"ts":0}"#, "`ts`"),
            (r#"{"channels":[{"name":"a"}],"ts":1,"dictionary":"poly:2"}"#, "`dictionary`"),
            (r#"{"channels":[{"name":"a"}],"ts":1,"mu":1,"sigma":0.1}"#, "`mu` and `sigma`"),
            (r#"{"channels":[{"name":"a"}],"ts":1,"forgetting":1.5}"#, "`forgetting`"),
            (r#"{"channels":[{"name":"a"}],"ts":1,"window":10,"forgetting":0.9}"#, "`window`"),
            (r#"{"channels":[{"name":"a"}],"ts":1,"id":"bad id"}"#, "`id`"),
            (r#"{"channels":[{"name":"a"}],"ts":1,"sigma":[0.1,0.2]}"#, "`sigma`"),
            (r#"{"channels":[{"name":"a"}],"ts":1,"warmup":4000000000}"#, "`warmup`"),
            (r#"{"channels":[{"name":"a"}],"ts":1,"window":100000000000}"#, "`window`"),
        ];
        for (json, expected) in cases {
            let e = StreamDefinition::from_request(request(json), 300, || "g".into()).unwrap_err();
            assert!(e.to_string().contains(expected), "{json}: {e}");
        }
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        let json = format!(r#"{{"channels":[{{"name":"{long}"}}],"ts":1}}"#);
        let e = StreamDefinition::from_request(request(&json), 300, || "g".into()).unwrap_err();
        assert!(e.to_string().contains("at most 128 bytes"), "{e}");
    }

    fn define(json: &str) -> Result<StreamDefinition, domain::error::DomainError> {
        StreamDefinition::from_request(request(json), 300, || "g".into())
    }

    #[test]
    fn the_estimator_and_its_parameters_reach_the_definition_and_its_document() {
        let d = define(r#"{"channels":[{"name":"a"}],"ts":1}"#).unwrap();
        assert_eq!((d.estimator, d.preset.as_deref()), (StoredMethod::Ridge, None));
        let doc = serde_json::to_value(StreamDefinitionDoc::from(&d)).unwrap();
        assert_eq!((&doc["estimator"], &doc["lags"], &doc["preset"]), (&"ridge".into(), &().into(), &().into()));
        let d = define(
            r#"{"channels":[{"name":"a"}],"ts":1,"estimator":"correlation","lags":40,"rank":2,"eigen_every":50}"#,
        )
        .unwrap();
        assert_eq!(d.estimator, StoredMethod::Correlation { lags: 40, rank: Some(2) });
        // A correlation estimator solves at the eigen cadence.
        assert_eq!(d.estimator_config().solve_every, 50);
        let doc = serde_json::to_value(StreamDefinitionDoc::from(&d)).unwrap();
        assert_eq!((&doc["estimator"], &doc["lags"], &doc["rank"]), (&"correlation".into(), &40.into(), &2.into()));
        let d = define(r#"{"channels":[{"name":"a"}],"ts":1,"estimator":"iv","dictionary":"state,delay:3"}"#).unwrap();
        assert_eq!(d.estimator, StoredMethod::Iv { instrument_delay: 4 });
        assert_eq!(serde_json::to_value(StreamDefinitionDoc::from(&d)).unwrap()["instrument_delay"], 4);
    }

    #[test]
    fn presets_fill_what_the_request_leaves_open_and_refuse_what_does_not_fit() {
        let d = define(r#"{"channels":[{"name":"a"}],"ts":0.0333,"preset":"pmu-ambient"}"#).unwrap();
        assert_eq!(d.estimator, StoredMethod::Correlation { lags: 120, rank: None });
        assert_eq!((d.dictionary.as_str(), d.forgetting, d.warmup, d.mu), ("state,delay:2", 0.9999, 300, Some(1e-6)));
        assert_eq!((d.mode_meter().band_hz, d.preset.as_deref()), ([0.1, 2.0], Some("pmu-ambient")));
        // The request's own values win, the band and the estimator included.
        let d = define(
            r#"{"channels":[{"name":"a"}],"ts":0.0333,"preset":"pmu-ambient","estimator":"ridge","warmup":500,
                "modes":{"band_hz":[0.2,1.0]}}"#,
        )
        .unwrap();
        assert_eq!((d.estimator, d.warmup, d.mode_meter().band_hz), (StoredMethod::Ridge, 500, [0.2, 1.0]));
        // Sampled at 1 frame/s, the band's top comes down to 0.4 Hz.
        // One channel with `state,delay:2` has 3 observables: the preset's rank 32 is a
        // ceiling, so the stream keeps all three.
        let d = define(r#"{"channels":[{"name":"a"}],"ts":1,"preset":"pmu-ringdown"}"#).unwrap();
        assert_eq!(
            (d.mode_meter().band_hz, d.estimator),
            ([0.1, 0.4], StoredMethod::Correlation { lags: 60, rank: None })
        );
        let cases = [
            (r#""preset":"pmu""#, "/preset"),
            (r#""preset":"pmu-ambient","ts":10"#, "/preset"),
            (r#""lags":10"#, "/lags"),
            (r#""estimator":"iv","rank":3"#, "/rank"),
            (r#""estimator":"correlation","instrument_delay":3"#, "/instrument_delay"),
            (r#""estimator":"correlation","lags":1"#, "/lags"),
            (r#""estimator":"correlation","lags":2001"#, "/lags"),
            (r#""estimator":"correlation","rank":0"#, "/rank"),
            // `state` on one channel has one observable.
            (r#""estimator":"correlation","dictionary":"state","rank":2"#, "/rank"),
            (r#""estimator":"correlation","inputs":[{"name":"u"}]"#, "/estimator"),
            (r#""estimator":"iv","dictionary":"state,delay:4","instrument_delay":4"#, "/instrument_delay"),
            (r#""estimator":"iv","instrument_delay":1001"#, "/instrument_delay"),
            (r#""preset":"pmu-ringdown","instrument_delay":5"#, "/instrument_delay"),
            (r#""preset":"pmu-ringdown","rank":4"#, "/rank"),
            (r#""outlier_gate":1"#, "/outlier_gate"),
        ];
        for (fields, pointer) in cases {
            let ts = if fields.contains(r#""ts""#) { "" } else { r#""ts":1,"# };
            let json = format!(r#"{{"channels":[{{"name":"a"}}],{ts}{fields}}}"#);
            let e = StreamDefinition::from_request(request(&json), 300, || "g".into()).unwrap_err();
            assert_eq!(e.pointer(), Some(pointer), "{json}: {e}");
            assert_eq!(e.kind(), domain::error::ErrorKind::InvalidField, "{json}: {e}");
        }
    }

    #[test]
    fn the_memory_estimate_grows_with_the_lags() {
        let at = |lags: usize| {
            let json = format!(
                r#"{{"channels":[{{"name":"a"}},{{"name":"b"}}],"ts":1,"estimator":"correlation","lags":{lags}}}"#
            );
            define(&json).unwrap().memory_bytes()
        };
        let ridge = define(r#"{"channels":[{"name":"a"}],"ts":1}"#).unwrap().memory_bytes();
        assert!(ridge < at(2) && at(2) < at(120) && at(120) < at(2000), "{ridge} {} {}", at(2), at(2000));
    }

    #[test]
    fn memory_estimate_includes_the_published_model() {
        let d = StreamDefinition::from_request(
            request(r#"{"channels":[{"name":"a"},{"name":"b"}],"ts":1,"dictionary":"state,delay:2000"}"#),
            300,
            || "g".into(),
        )
        .unwrap();
        let estimator = d.estimator_config().memory_bytes();
        let ring = koopman::uncertainty::residual_ring_rows(4002) as u64 * 4002 * 8;
        // And the readers' rings: recent measurements and the course of the modes.
        let readers = domain::recent::RecentSamples::bytes(2) + domain::trend::ModeTrend::bytes(d.mode_meter().max);
        assert_eq!(d.memory_bytes() - estimator, 4002 * 4002 * PUBLISHED_BYTES_PER_SQUARE + ring + readers);
        // The request of the security report: over a gigabyte, far beyond the default budget.
        assert!(d.memory_bytes() > 1 << 30);
    }
}
