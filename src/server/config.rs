//! Service configuration: embedded defaults, then an optional TOML file, then
//! `KOOPSTREAM_*` environment variables (nested keys with `__`), then command-line flags;
//! validated once at start with a message naming the offending key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use crate::access::AuthConfig;
pub use crate::store::Durability;
pub use crate::tls::TlsConfig;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Request limits and queue sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body in bytes (ingest batches included).
    pub max_body_bytes: usize,
    /// Largest number of samples in one batch.
    pub max_batch_samples: usize,
    /// Time limit of one HTTP request in milliseconds (WebSockets are exempt).
    pub request_timeout_ms: u64,
    /// Requests served at once; more wait.
    pub concurrency: usize,
    /// Commands queued per stream before ingest meets backpressure (429 over HTTP).
    pub queue_capacity: usize,
    /// Largest number of streams.
    pub max_streams: usize,
    /// Largest prediction horizon.
    pub max_horizon: usize,
    /// Server-sent event streams (`GET .../events`, the dashboard's live updates) open at
    /// once; one more is refused with 503.
    pub max_event_streams: usize,
    /// Memory budget of one stream in bytes (its estimate: matrices, residual ring, warm-up buffer,
    /// window, published model); a create beyond it is refused with 422.
    pub stream_memory_bytes: u64,
    /// Memory budget of all streams together in bytes. In a cluster a node counts the
    /// streams it owns in full and its idle copies of the others at
    /// `service::definition::IDLE_COPY_BYTES`; a create is checked on the node it reaches,
    /// and a node takes its rendezvous share without a check (its count shows in
    /// `koopstream_memory_estimate_bytes`).
    pub total_memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_batch_samples: 100_000,
            request_timeout_ms: 30_000,
            concurrency: 1024,
            queue_capacity: 64,
            max_streams: 10_000,
            max_horizon: 100_000,
            max_event_streams: 256,
            stream_memory_bytes: 256 << 20,
            total_memory_bytes: 8 << 30,
        }
    }
}

/// Metrics options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Streams that get per-stream series (labelled by stream id); 0 keeps label sets
    /// bounded, which suits any deployment with many streams.
    pub per_stream_labels: usize,
}

/// Sources the service subscribes to as a client (C37.118.2 PMUs and PDCs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// Hosts a stream's source may name (host names or addresses; `*` for any). Default:
    /// loopback only, so that creating a stream cannot make the server connect elsewhere
    /// unless its operator says so.
    pub allowed_hosts: Vec<String>,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self { allowed_hosts: vec!["127.0.0.1".into(), "::1".into(), "localhost".into()] }
    }
}

/// Defaults for streams that do not say otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamDefaults {
    /// Eigen-decomposition cadence in samples (also the WebSocket summary cadence).
    pub eigen_every: u64,
    /// Under load, publish the model to readers at most this often (milliseconds); an idle
    /// stream publishes after every batch.
    pub publish_interval_ms: u64,
    /// Threads that run the mode-meter refreshes (eigen-decompositions) of all streams,
    /// first come first served; more refresh more streams on time, and take more cores
    /// from ingest while they run.
    pub spectra_workers: usize,
}

impl Default for StreamDefaults {
    fn default() -> Self {
        Self { eigen_every: 300, publish_interval_ms: 100, spectra_workers: 1 }
    }
}

/// Durable storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `per-ack` (an acknowledgement means the batch is on disk), `periodic` (on disk within
    /// `flush_interval_ms`), or `memory` (no store).
    pub durability: Durability,
    /// Group-commit window in microseconds: how long a commit waits for other streams' writes.
    pub group_commit_us: u64,
    /// Disk flush interval of `periodic` durability, in milliseconds.
    pub flush_interval_ms: u64,
    /// Snapshot a stream after this many samples since its last snapshot.
    pub snapshot_every_samples: u64,
    /// ... or after this many seconds, whichever comes first.
    pub snapshot_interval_s: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            durability: Durability::PerAck,
            group_commit_us: 200,
            flush_interval_ms: 1000,
            snapshot_every_samples: 20_000,
            snapshot_interval_s: 60,
        }
    }
}

/// Joining a cluster of nodes on NATS JetStream (`serve --cluster`); absent `url`, the
/// service runs alone on its embedded store, as it always did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// The NATS server, `nats://HOST:PORT`.
    pub url: Option<String>,
    /// This node's id (default: one generated at start, and logged).
    pub node_id: Option<String>,
    /// Replicas of the cluster's log and buckets (1 to 5; at most the NATS servers).
    pub replicas: usize,
    /// Lease TTL in seconds (3 to 120): a failed node's streams move after about this long.
    pub lease_ttl_s: u64,
    /// The URL other nodes reach this node's API at (default: `http://` and the address
    /// it listens on, which suits loopback and a listener bound to a routable address).
    pub advertise: Option<String>,
    /// The owner node snapshots a stream after this many batches of its log (and when it
    /// hands it off); a new owner replays at most about this many.
    pub snapshot_every_batches: u64,
    /// Seconds after which a stream that applied anything since its last snapshot is
    /// snapshotted anyway (1 to 86400), and an idle one's snapshot settled, so that a
    /// stream with few batches does not hold the log's compaction back.
    pub snapshot_every_s: u64,
    /// Seconds between two compactions of the log (1 to 3600): the batches every stream's
    /// snapshots cover are purged.
    pub compact_every_s: u64,
    /// PEM file of the CA certificates that issued the other nodes' server certificates,
    /// trusted when a read is forwarded to an `https://` node (required when this node
    /// serves HTTPS).
    pub peer_ca: Option<PathBuf>,
    /// PEM file of the certificate chain this node presents to nodes that require a client
    /// certificate (`tls.client_ca`), with `peer_key`.
    pub peer_cert: Option<PathBuf>,
    /// PEM file of `peer_cert`'s private key.
    pub peer_key: Option<PathBuf>,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            url: None,
            node_id: None,
            replicas: cluster::ClusterConfig::DEFAULT_REPLICAS,
            lease_ttl_s: cluster::ClusterConfig::DEFAULT_LEASE_TTL.as_secs(),
            advertise: None,
            snapshot_every_batches: 256,
            snapshot_every_s: 120,
            compact_every_s: 30,
            peer_ca: None,
            peer_cert: None,
            peer_key: None,
        }
    }
}

impl ClusterSection {
    /// The checked cluster configuration, `None` without a URL. A missing node id becomes
    /// `generated` (the caller makes one and says which).
    pub fn resolve(&self, generated: impl FnOnce() -> String) -> Result<Option<cluster::ClusterConfig>, ConfigError> {
        let Some(url) = &self.url else { return Ok(None) };
        let node_id = self.node_id.clone().unwrap_or_else(generated);
        let checked = cluster::ClusterConfig::new(url.clone(), node_id)
            .and_then(|c| c.with_replicas(self.replicas))
            .and_then(|c| c.with_lease_ttl(std::time::Duration::from_secs(self.lease_ttl_s)))
            .map_err(ConfigError::Cluster)?;
        Ok(Some(checked))
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the store.
    pub data_dir: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `koopstream=debug`.
    pub log_level: String,
    /// Request limits.
    pub limits: Limits,
    /// Metrics options.
    pub metrics: MetricsConfig,
    /// Stream defaults.
    pub streams: StreamDefaults,
    /// Durable storage.
    pub storage: StorageConfig,
    /// Bearer tokens and the no-auth override.
    pub auth: AuthConfig,
    /// HTTPS: certificate, key, optional client CA.
    pub tls: TlsConfig,
    /// Sources the service subscribes to.
    pub sources: SourcesConfig,
    /// Joining a cluster (none by default).
    pub cluster: ClusterSection,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("koopstream-data"),
            log_format: LogFormat::Auto,
            log_level: "info".to_owned(),
            limits: Limits::default(),
            metrics: MetricsConfig::default(),
            streams: StreamDefaults::default(),
            storage: StorageConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            sources: SourcesConfig::default(),
            cluster: ClusterSection::default(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be read (figment names the key and the source).
    #[error("invalid configuration: {0}")]
    Load(Box<figment::Error>),
    /// A value was read but is out of range.
    #[error("invalid configuration: key `{key}`: {reason}")]
    Invalid {
        /// Dotted key path.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The `[auth]` section cannot be used.
    #[error(transparent)]
    Auth(#[from] crate::access::AuthError),
    /// The `[tls]` section cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The `[cluster]` section (or `--cluster`, `--node-id`) is out of range.
    #[error("invalid configuration: key `cluster`: {0}")]
    Cluster(cluster::ConfigError),
}

impl From<Box<figment::Error>> for ConfigError {
    fn from(error: Box<figment::Error>) -> Self {
        // Not a `source`: the message already carries figment's text, once.
        ConfigError::Load(error)
    }
}

/// Values given on the command line (only those given override).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlagOverrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--log-format`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// `--log-level`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--durability`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageFlags>,
    /// `--insecure-no-auth`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthFlags>,
    /// `--tls-cert`, `--tls-key`, `--tls-client-ca`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFlags>,
    /// `--cluster`, `--node-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterFlags>,
}

/// Cluster values given on the command line (only those given override).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterFlags {
    /// `--cluster`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `--node-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

/// TLS files given on the command line (only those given override).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsFlags {
    /// `--tls-cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// `--tls-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// `--tls-client-ca`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

/// Authentication values given on the command line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuthFlags {
    /// `--insecure-no-auth`.
    pub insecure_no_auth: bool,
}

/// Storage values given on the command line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StorageFlags {
    /// `--durability`.
    pub durability: Durability,
}

impl ServiceConfig {
    /// Defaults, then the TOML file, then the environment, then the flags; validated.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Self, ConfigError> {
        Self::load_from(file, flags, Env::prefixed("KOOPSTREAM_").split("__"))
    }

    fn load_from(file: Option<&Path>, flags: &FlagOverrides, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(ServiceConfig::default()));
        if let Some(path) = file {
            // A named file must exist: silently ignoring a typo would run the wrong config.
            if !path.is_file() {
                return Err(ConfigError::Invalid { key: "--config", reason: "the configuration file does not exist" });
            }
            figment = figment.merge(Toml::file(path));
        }
        let config: ServiceConfig =
            figment.merge(env).merge(Serialized::defaults(flags)).extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Range checks that the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checks: [(bool, &'static str, &'static str); 17] = [
            (self.storage.snapshot_every_samples >= 1, "storage.snapshot_every_samples", "must be at least 1"),
            (self.storage.flush_interval_ms >= 1, "storage.flush_interval_ms", "must be at least 1"),
            (self.limits.max_body_bytes >= 1024, "limits.max_body_bytes", "must be at least 1024"),
            (self.limits.max_batch_samples >= 1, "limits.max_batch_samples", "must be at least 1"),
            (self.limits.request_timeout_ms >= 1, "limits.request_timeout_ms", "must be at least 1"),
            (self.limits.concurrency >= 1, "limits.concurrency", "must be at least 1"),
            (self.limits.queue_capacity >= 1, "limits.queue_capacity", "must be at least 1"),
            (self.limits.max_streams >= 1, "limits.max_streams", "must be at least 1"),
            (self.limits.max_horizon >= 1, "limits.max_horizon", "must be at least 1"),
            (self.limits.max_event_streams >= 1, "limits.max_event_streams", "must be at least 1"),
            (self.limits.stream_memory_bytes >= 1 << 20, "limits.stream_memory_bytes", "must be at least 1 MiB"),
            (
                self.limits.total_memory_bytes >= self.limits.stream_memory_bytes,
                "limits.total_memory_bytes",
                "must be at least limits.stream_memory_bytes",
            ),
            (self.streams.eigen_every >= 1, "streams.eigen_every", "must be at least 1"),
            (self.cluster.snapshot_every_batches >= 1, "cluster.snapshot_every_batches", "must be at least 1"),
            ((1..=3600).contains(&self.cluster.compact_every_s), "cluster.compact_every_s", "must be 1 to 3600"),
            ((1..=86_400).contains(&self.cluster.snapshot_every_s), "cluster.snapshot_every_s", "must be 1 to 86400"),
            (
                (1..=crate::service::spectra::MAX_SPECTRA_WORKERS).contains(&self.streams.spectra_workers),
                "streams.spectra_workers",
                "must be 1 to 64",
            ),
        ];
        for (ok, key, reason) in checks {
            if !ok {
                return Err(ConfigError::Invalid { key, reason });
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(ConfigError::Invalid { key: "log_level", reason: "not a valid log filter" });
        }
        self.auth.check_inline()?;
        self.tls.enabled()?;
        // A placeholder id: only the values given are checked here.
        self.cluster.resolve(|| "unset".to_owned())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("koopstream-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// An environment layer that reads nothing (the real environment is tested end to end).
    fn env(_: &[(&str, &str)]) -> Env {
        Env::prefixed("KOOPSTREAM_TEST_UNSET_").split("__")
    }

    #[test]
    fn layers_override_in_order() {
        let file = scratch("a.toml", "listen = \"127.0.0.1:9000\"\n[limits]\nqueue_capacity = 8\n");
        let c = ServiceConfig::load_from(Some(&file), &FlagOverrides::default(), env(&[])).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.limits.queue_capacity, 8);
        let flags = FlagOverrides { listen: Some("127.0.0.1:9100".parse().unwrap()), ..Default::default() };
        let c = ServiceConfig::load_from(Some(&file), &flags, env(&[])).unwrap();
        assert_eq!(c.listen.port(), 9100, "flags win over the file");
    }

    #[test]
    fn tls_flags_merge_and_half_a_pair_is_refused() {
        let flags = FlagOverrides {
            tls: Some(TlsFlags { cert: Some("c.pem".into()), ..TlsFlags::default() }),
            ..FlagOverrides::default()
        };
        let e = ServiceConfig::load_from(None, &flags, env(&[])).unwrap_err().to_string();
        assert!(e.contains("tls.key"), "{e}");
        let file = scratch("tls.toml", "[tls]\nkey = \"k.pem\"\n");
        let c = ServiceConfig::load_from(Some(&file), &flags, env(&[])).unwrap();
        assert_eq!(c.tls.cert.as_deref(), Some(Path::new("c.pem")), "the flag adds the certificate to the file's key");
        assert_eq!(c.tls.key.as_deref(), Some(Path::new("k.pem")));
    }

    #[test]
    fn errors_name_the_key() {
        let file = scratch("bad.toml", "[limits]\nqueue_capacity = \"many\"\n");
        let e = ServiceConfig::load_from(Some(&file), &FlagOverrides::default(), env(&[])).unwrap_err().to_string();
        assert!(e.contains("queue_capacity"), "{e}");
        let file = scratch("zero.toml", "[limits]\nqueue_capacity = 0\n");
        let e = ServiceConfig::load_from(Some(&file), &FlagOverrides::default(), env(&[])).unwrap_err().to_string();
        assert!(e.contains("limits.queue_capacity"), "{e}");
        let file = scratch("unknown.toml", "listne = \"x\"\n");
        let e = ServiceConfig::load_from(Some(&file), &FlagOverrides::default(), env(&[])).unwrap_err().to_string();
        assert!(e.contains("listne"), "{e}");
        for (toml, key) in [
            ("[streams]\nspectra_workers = 0\n", "streams.spectra_workers"),
            ("[streams]\nspectra_workers = 65\n", "streams.spectra_workers"),
            ("[limits]\nmax_event_streams = 0\n", "limits.max_event_streams"),
            ("[cluster]\ncompact_every_s = 0\n", "cluster.compact_every_s"),
            ("[cluster]\ncompact_every_s = 3601\n", "cluster.compact_every_s"),
            ("[cluster]\nsnapshot_every_s = 0\n", "cluster.snapshot_every_s"),
        ] {
            let file = scratch("range.toml", toml);
            let e = ServiceConfig::load_from(Some(&file), &FlagOverrides::default(), env(&[])).unwrap_err().to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
        for (toml, text) in [
            ("[cluster]\nurl = \"http://h:1\"\n", "nats://"),
            ("[cluster]\nurl = \"nats://h:1\"\nnode_id = \"a b\"\n", "node id"),
            ("[cluster]\nurl = \"nats://h:1\"\nreplicas = 0\n", "replicas"),
            ("[cluster]\nurl = \"nats://h:1\"\nlease_ttl_s = 1\n", "lease TTL"),
        ] {
            let file = scratch("cluster.toml", toml);
            let e = ServiceConfig::load_from(Some(&file), &FlagOverrides::default(), env(&[])).unwrap_err().to_string();
            assert!(e.contains("cluster") && e.contains(text), "{toml}: {e}");
        }
        let missing = std::path::Path::new("no/such/koopstream.toml");
        assert!(ServiceConfig::load_from(Some(missing), &FlagOverrides::default(), env(&[])).is_err());
    }
}
