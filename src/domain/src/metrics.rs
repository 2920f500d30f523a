//! Prometheus metrics with the official client: bounded label sets only (transport,
//! reason, route template, status class); per-stream series only for the first few streams
//! when the configuration allows them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The media type of the exposition (OpenMetrics text, which Prometheus scrapes).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How samples arrived.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Transport {
    /// HTTP batches.
    Http,
    /// WebSocket frames.
    Ws,
    /// Data frames of a C37.118.2 source.
    C37118,
}

/// Why samples were not applied.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Reason {
    /// The batch failed validation (shape, non-finite value, bad time stamps). Like every
    /// reason, counted in samples: the rows of the refused body, or one when its rows
    /// cannot be counted at all (a body that is not a document of its media type).
    Invalid,
    /// The batch was too large (its rows counted as for `Invalid`).
    TooLarge,
    /// The stream's queue was full.
    QueueFull,
    /// A retried seq (acknowledged, not applied again).
    Duplicate,
    /// A seq or epoch that contradicts what was applied (refused, 409).
    SeqConflict,
    /// A time stamp not after the stream's last one.
    OutOfOrder,
    /// A sample with a missing value (a gap).
    MissingValue,
    /// A sample on a flat line (a stuck state channel; treated as missing).
    FlatLine,
    /// A sample gated as an outlier (one-step residual beyond k sigma; treated as missing).
    Outlier,
}

impl Transport {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Ws => "ws",
            Transport::C37118 => "c37118",
        }
    }
}

impl Reason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Invalid => "invalid",
            Reason::TooLarge => "too_large",
            Reason::QueueFull => "queue_full",
            Reason::Duplicate => "duplicate",
            Reason::SeqConflict => "seq_conflict",
            Reason::OutOfOrder => "out_of_order",
            Reason::MissingValue => "missing_value",
            Reason::FlatLine => "flat_line",
            Reason::Outlier => "outlier",
        }
    }
}

impl EncodeLabelValue for Transport {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for Reason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: Transport,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    transport: Transport,
    reason: Reason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status_class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    stream: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceMissingLabels {
    stream: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    stream: String,
    /// The tracked mode's id, stable across refreshes and never reused within a stream.
    mode: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlarmLabels {
    stream: String,
    severity: String,
}

/// Per-stream mode gauges cover this many least-damped tracked physical modes.
pub const MODE_GAUGES: usize = 4;

fn latency_histogram() -> Histogram {
    // 1 us to about 8 s, doubling.
    Histogram::new(exponential_buckets(1e-6, 2.0, 24))
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    samples_accepted: Family<TransportLabels, Counter>,
    /// In a cluster: samples and batches this node appended to the shared log.
    samples_logged: Family<TransportLabels, Counter>,
    batches_logged: Family<TransportLabels, Counter>,
    samples_rejected: Family<RejectLabels, Counter>,
    batches_applied: Family<TransportLabels, Counter>,
    /// Commands waiting in stream queues.
    pub queue_depth: Gauge,
    /// Per-sample update time (a batch's apply time over its samples).
    pub update_seconds: Histogram,
    /// Time to apply one batch.
    pub batch_seconds: Histogram,
    /// Time of one eigen-decomposition.
    pub eigen_seconds: Histogram,
    /// Time a due mode-meter refresh waited for a spectra worker.
    pub refresh_wait_seconds: Histogram,
    http_seconds: Family<HttpLabels, Histogram, fn() -> Histogram>,
    auth_refusals: Family<RefusalLabels, Counter>,
    /// Open WebSocket connections.
    pub websocket_connections: Gauge,
    /// Streams that exist.
    pub streams: Gauge,
    /// What the streams are counted for against `limits.total_memory_bytes`.
    pub memory_estimate_bytes: Gauge,
    /// Mean one-step residual RMS of a stream after each applied batch (data units).
    pub residual_rms: Histogram,
    /// Group-commit latency.
    pub commit_seconds: Histogram,
    /// Bytes held in the sample logs.
    pub log_bytes: Gauge,
    /// In a cluster: the sequence this node last compacted the shared log through (0 while
    /// another node is the compactor).
    pub log_compacted_through: Gauge,
    /// How long the oldest change not yet in a stored snapshot has waited.
    pub snapshot_age_seconds: Gauge<f64, AtomicU64>,
    /// Time to encode and store one snapshot.
    pub snapshot_seconds: Histogram,
    /// Duration of the last start-up recovery.
    pub recovery_seconds: Gauge<f64, AtomicU64>,
    stream_samples: Family<StreamLabels, Counter>,
    stream_residual: Family<StreamLabels, Gauge<f64, AtomicU64>>,
    stream_mode_damping: Family<ModeLabels, Gauge<f64, AtomicU64>>,
    stream_mode_frequency: Family<ModeLabels, Gauge<f64, AtomicU64>>,
    alarms_active: Family<AlarmLabels, Gauge>,
    source_samples: Family<StreamLabels, Counter>,
    source_missing: Family<SourceMissingLabels, Counter>,
    source_connected: Family<StreamLabels, Gauge>,
    labelled_streams: Mutex<Vec<String>>,
    /// The mode ids each labelled stream has gauges for.
    gauged_modes: Mutex<HashMap<String, Vec<u64>>>,
    per_stream_cap: usize,
}

impl Metrics {
    /// Registers every metric; `per_stream_cap` streams may get per-stream series.
    pub fn new(per_stream_cap: usize) -> Self {
        let mut registry = Registry::with_prefix("koopstream");
        let m = Self {
            samples_accepted: Family::default(),
            samples_logged: Family::default(),
            batches_logged: Family::default(),
            samples_rejected: Family::default(),
            batches_applied: Family::default(),
            queue_depth: Gauge::default(),
            update_seconds: latency_histogram(),
            batch_seconds: latency_histogram(),
            eigen_seconds: latency_histogram(),
            refresh_wait_seconds: latency_histogram(),
            http_seconds: Family::new_with_constructor(latency_histogram),
            auth_refusals: Family::default(),
            websocket_connections: Gauge::default(),
            streams: Gauge::default(),
            memory_estimate_bytes: Gauge::default(),
            residual_rms: Histogram::new(exponential_buckets(1e-6, 10.0, 10)),
            commit_seconds: latency_histogram(),
            log_bytes: Gauge::default(),
            log_compacted_through: Gauge::default(),
            snapshot_age_seconds: Gauge::default(),
            snapshot_seconds: latency_histogram(),
            recovery_seconds: Gauge::default(),
            stream_samples: Family::default(),
            stream_residual: Family::default(),
            stream_mode_damping: Family::default(),
            stream_mode_frequency: Family::default(),
            alarms_active: Family::default(),
            source_samples: Family::default(),
            source_missing: Family::default(),
            source_connected: Family::default(),
            labelled_streams: Mutex::new(Vec::new()),
            gauged_modes: Mutex::new(HashMap::new()),
            per_stream_cap,
            registry: Registry::default(),
        };
        registry.register("samples_accepted", "Samples applied to a model", m.samples_accepted.clone());
        registry.register(
            "samples_logged",
            "In a cluster: samples this node appended to the shared log (JetStream acknowledged them), by the transport they arrived on",
            m.samples_logged.clone(),
        );
        registry.register(
            "batches_logged",
            "In a cluster: batches this node appended to the shared log (JetStream acknowledged them), by the transport they arrived on",
            m.batches_logged.clone(),
        );
        registry.register("samples_rejected", "Samples not applied, by reason", m.samples_rejected.clone());
        registry.register("batches_applied", "Sample batches applied", m.batches_applied.clone());
        registry.register("ingest_queue_depth", "Commands waiting in stream queues", m.queue_depth.clone());
        registry.register("update_seconds", "Per-sample model update time", m.update_seconds.clone());
        registry.register("batch_apply_seconds", "Time to apply one sample batch", m.batch_seconds.clone());
        registry.register("eigen_seconds", "Time of one eigen-decomposition", m.eigen_seconds.clone());
        registry.register(
            "refresh_wait_seconds",
            "Time a due mode-meter refresh waited for a spectra worker",
            m.refresh_wait_seconds.clone(),
        );
        registry.register("http_request_duration_seconds", "HTTP request duration", m.http_seconds.clone());
        registry.register("websocket_connections", "Open WebSocket connections", m.websocket_connections.clone());
        registry.register(
            "auth_refusals",
            "Requests refused by authentication or authorisation, by reason (missing, unknown_token, scope, stream, rate_limited)",
            m.auth_refusals.clone(),
        );
        registry.register("streams", "Streams", m.streams.clone());
        registry.register(
            "memory_estimate_bytes",
            "Memory the streams are counted for against limits.total_memory_bytes (in a cluster: owned streams in full, idle copies at 32 KiB)",
            m.memory_estimate_bytes.clone(),
        );
        registry.register("commit_seconds", "Group-commit latency of the store", m.commit_seconds.clone());
        registry.register("log_bytes", "Bytes held in the sample logs", m.log_bytes.clone());
        registry.register(
            "log_compacted_through",
            "In a cluster: the shared log's sequence this node last compacted it through (0 while another node is the compactor)",
            m.log_compacted_through.clone(),
        );
        registry.register(
            "snapshot_age_seconds",
            "How long the oldest change not yet in a stored snapshot has waited",
            m.snapshot_age_seconds.clone(),
        );
        registry.register("snapshot_seconds", "Time to encode and store one snapshot", m.snapshot_seconds.clone());
        registry.register("recovery_seconds", "Duration of the last start-up recovery", m.recovery_seconds.clone());
        registry.register("residual_rms", "Mean one-step residual RMS after each batch", m.residual_rms.clone());
        registry.register(
            "mode_damping_ratio",
            "Damping ratio of the least damped tracked physical modes, by stream (capped) and track id",
            m.stream_mode_damping.clone(),
        );
        registry.register(
            "mode_frequency_hz",
            "Frequency of the least damped tracked physical modes, by stream (capped) and track id",
            m.stream_mode_frequency.clone(),
        );
        registry.register(
            "alarms_active",
            "Tracked modes in damping alarm, per stream (capped) and severity",
            m.alarms_active.clone(),
        );
        registry.register("stream_samples_accepted", "Samples applied, per stream (capped)", m.stream_samples.clone());
        registry.register(
            "stream_residual_rms",
            "Mean one-step residual RMS, per stream (capped)",
            m.stream_residual.clone(),
        );
        registry.register(
            "source_samples_submitted",
            "Samples (one per data frame) a stream's C37.118.2 source submitted to the stream, per stream (capped)",
            m.source_samples.clone(),
        );
        registry.register(
            "source_samples_missing",
            "Samples a C37.118.2 source delivered as missing, per stream (capped) and reason (data_error, sync_lost, unlocked, missing_value)",
            m.source_missing.clone(),
        );
        registry.register(
            "source_connected",
            "Whether a stream's C37.118.2 source is connected and streaming (1) or not (0), per stream (capped)",
            m.source_connected.clone(),
        );
        registry.register("build", "Build information", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
        Self { registry, ..m }
    }

    /// Counts applied samples.
    pub fn accepted(&self, transport: Transport, samples: u64) {
        self.samples_accepted.get_or_create(&TransportLabels { transport }).inc_by(samples);
        self.batches_applied.get_or_create(&TransportLabels { transport }).inc();
    }

    /// Counts a batch appended to the cluster's shared log.
    pub fn logged(&self, transport: Transport, samples: u64) {
        self.samples_logged.get_or_create(&TransportLabels { transport }).inc_by(samples);
        self.batches_logged.get_or_create(&TransportLabels { transport }).inc();
    }

    /// Counts samples not applied.
    pub fn rejected(&self, transport: Transport, reason: Reason, samples: u64) {
        self.samples_rejected.get_or_create(&RejectLabels { transport, reason }).inc_by(samples);
    }

    /// Counts a request refused by authentication or authorisation.
    pub fn auth_refused(&self, reason: &'static str) {
        self.auth_refusals.get_or_create(&RefusalLabels { reason }).inc();
    }

    /// Records one HTTP request.
    pub fn http(&self, route: &str, status: u16, seconds: f64) {
        let status_class = format!("{}xx", status / 100);
        self.http_seconds.get_or_create(&HttpLabels { route: route.to_owned(), status_class }).observe(seconds);
    }

    /// Whether `stream` may have per-stream series (within the cap, first come first served).
    fn labelled(&self, stream: &str) -> bool {
        if self.per_stream_cap == 0 {
            return false;
        }
        let mut labelled = self.labelled_streams.lock().unwrap_or_else(|e| e.into_inner());
        if !labelled.iter().any(|s| s == stream) {
            if labelled.len() >= self.per_stream_cap {
                return false;
            }
            labelled.push(stream.to_owned());
        }
        true
    }

    /// Whether `stream` has per-stream series (it is within the cap); taking a place under
    /// the cap if one is free, as updating its series would.
    pub fn has_stream_series(&self, stream: &str) -> bool {
        self.labelled(stream)
    }

    /// Per-mode gauges of a stream within the cap: (id, frequency, damping) of its tracked
    /// physical modes, least damped first; the series of ids no longer among them go.
    pub fn stream_modes(&self, stream: &str, modes: &[(u64, f64, f64)]) {
        if !self.labelled(stream) {
            return;
        }
        let shown: Vec<u64> = modes.iter().take(MODE_GAUGES).map(|m| m.0).collect();
        let mut gauged = self.gauged_modes.lock().unwrap_or_else(|e| e.into_inner());
        let previous = gauged.insert(stream.to_owned(), shown.clone()).unwrap_or_default();
        for id in previous.iter().filter(|id| !shown.contains(id)) {
            let labels = ModeLabels { stream: stream.to_owned(), mode: id.to_string() };
            self.stream_mode_frequency.remove(&labels);
            self.stream_mode_damping.remove(&labels);
        }
        for (id, frequency, damping) in modes.iter().take(MODE_GAUGES) {
            let labels = ModeLabels { stream: stream.to_owned(), mode: id.to_string() };
            self.stream_mode_frequency.get_or_create(&labels).set(*frequency);
            self.stream_mode_damping.get_or_create(&labels).set(*damping);
        }
    }

    /// Active alarms of a stream within the cap, by severity.
    pub fn stream_alarms(&self, stream: &str, warning: i64, critical: i64) {
        if !self.labelled(stream) {
            return;
        }
        for (severity, count) in [("warning", warning), ("critical", critical)] {
            let labels = AlarmLabels { stream: stream.to_owned(), severity: severity.to_owned() };
            self.alarms_active.get_or_create(&labels).set(count);
        }
    }

    /// Per-stream series, for streams within the cap.
    pub fn stream_update(&self, stream: &str, samples: u64, residual_rms: Option<f64>) {
        if let Some(r) = residual_rms {
            self.residual_rms.observe(r);
        }
        if !self.labelled(stream) {
            return;
        }
        let labels = StreamLabels { stream: stream.to_owned() };
        self.stream_samples.get_or_create(&labels).inc_by(samples);
        if let Some(r) = residual_rms {
            self.stream_residual.get_or_create(&labels).set(r);
        }
    }

    /// Samples a source submitted, and those among them delivered as missing by reason.
    pub fn source_samples(&self, stream: &str, samples: u64, missing: &[(&'static str, u64)]) {
        if !self.labelled(stream) {
            return;
        }
        self.source_samples.get_or_create(&StreamLabels { stream: stream.to_owned() }).inc_by(samples);
        for (reason, count) in missing.iter().filter(|(_, c)| *c > 0) {
            let labels = SourceMissingLabels { stream: stream.to_owned(), reason };
            self.source_missing.get_or_create(&labels).inc_by(*count);
        }
    }

    /// Whether a stream's source is connected and streaming.
    pub fn source_connected(&self, stream: &str, connected: bool) {
        if self.labelled(stream) {
            self.source_connected.get_or_create(&StreamLabels { stream: stream.to_owned() }).set(i64::from(connected));
        }
    }

    /// Forgets a deleted stream's series and frees its place under the cap.
    pub fn stream_removed(&self, stream: &str) {
        let mut labelled = self.labelled_streams.lock().unwrap_or_else(|e| e.into_inner());
        labelled.retain(|s| s != stream);
        let labels = StreamLabels { stream: stream.to_owned() };
        self.stream_samples.remove(&labels);
        self.stream_residual.remove(&labels);
        self.source_samples.remove(&labels);
        self.source_connected.remove(&labels);
        for reason in ["data_error", "sync_lost", "unlocked", "missing_value"] {
            self.source_missing.remove(&SourceMissingLabels { stream: stream.to_owned(), reason });
        }
        let gauged = self.gauged_modes.lock().unwrap_or_else(|e| e.into_inner()).remove(stream).unwrap_or_default();
        for id in gauged {
            let labels = ModeLabels { stream: stream.to_owned(), mode: id.to_string() };
            self.stream_mode_frequency.remove(&labels);
            self.stream_mode_damping.remove(&labels);
        }
        for severity in ["warning", "critical"] {
            self.alarms_active.remove(&AlarmLabels { stream: stream.to_owned(), severity: severity.to_owned() });
        }
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
