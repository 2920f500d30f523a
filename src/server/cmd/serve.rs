//! `koopstream serve` (the default command): loads the configuration layers, starts
//! logging and runs the service until SIGINT or SIGTERM.

use std::path::PathBuf;

use clap::Args;

use super::{CommandError, runtime};
use crate::config::{
    AuthFlags, ClusterFlags, Durability, FlagOverrides, LogFormat, ServiceConfig, StorageFlags, TlsFlags,
};

/// Options of `koopstream serve`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (default: none, the embedded defaults alone).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080, or the configuration's `listen`; also
    /// KOOPSTREAM_LISTEN).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Log format: auto, human or json (default auto: human on a terminal, JSON otherwise;
    /// also KOOPSTREAM_LOG_FORMAT).
    #[arg(long, value_parser = ["auto", "human", "json"])]
    pub log_format: Option<String>,
    /// Log filter, e.g. info or koopstream=debug (default info; also KOOPSTREAM_LOG_LEVEL).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Directory of the store (default ./koopstream-data; also KOOPSTREAM_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// When a batch is durable: per-ack, periodic or memory (default per-ack; also
    /// KOOPSTREAM_STORAGE__DURABILITY).
    #[arg(long, value_parser = ["per-ack", "periodic", "memory"])]
    pub durability: Option<String>,
    /// Serve without bearer tokens on a non-loopback address (refused otherwise; also
    /// KOOPSTREAM_AUTH__INSECURE_NO_AUTH=true). Anyone who reaches the port can then delete
    /// every stream.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// PEM certificate chain: serve HTTPS and WSS only (also KOOPSTREAM_TLS__CERT). SIGHUP
    /// reloads it, the key and the client CA without dropping connections.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate (also KOOPSTREAM_TLS__KEY).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: require client certificates issued by it (also KOOPSTREAM_TLS__CLIENT_CA).
    #[arg(long)]
    pub tls_client_ca: Option<PathBuf>,
    /// Join a cluster on this NATS JetStream server, nats://HOST:PORT (default: none, the
    /// node runs alone on its embedded store; also KOOPSTREAM_CLUSTER__URL).
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
    /// This node's id in the cluster, 1 to 64 of A-Z a-z 0-9 . _ - (default: generated and
    /// logged at start; also KOOPSTREAM_CLUSTER__NODE_ID).
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
}

impl ServeArgs {
    /// The values given as flags, which override every other layer.
    pub fn overrides(&self) -> FlagOverrides {
        FlagOverrides {
            listen: self.listen,
            log_format: self.log_format.as_deref().map(|f| match f {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                _ => LogFormat::Auto,
            }),
            log_level: self.log_level.clone(),
            data_dir: self.data_dir.clone(),
            storage: self.durability.as_deref().map(|d| StorageFlags {
                durability: match d {
                    "periodic" => Durability::Periodic,
                    "memory" => Durability::Memory,
                    _ => Durability::PerAck,
                },
            }),
            auth: self.insecure_no_auth.then_some(AuthFlags { insecure_no_auth: true }),
            tls: (self.tls_cert.is_some() || self.tls_key.is_some() || self.tls_client_ca.is_some()).then(|| {
                TlsFlags {
                    cert: self.tls_cert.clone(),
                    key: self.tls_key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                }
            }),
            cluster: (self.cluster.is_some() || self.node_id.is_some())
                .then(|| ClusterFlags { url: self.cluster.clone(), node_id: self.node_id.clone() }),
        }
    }
}

/// Runs the service until a signal asks it to stop.
pub fn run(args: &ServeArgs) -> Result<(), CommandError> {
    let config = ServiceConfig::load(args.config.as_deref(), &args.overrides())?;
    crate::telemetry::init(&config);
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| CommandError::Listen { address: config.listen, source })?;
        crate::server::run(listener, config, shutdown_signal()).await?;
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
pub(super) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
