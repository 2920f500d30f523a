//! The cluster's settings, checked once: a `ClusterConfig` that exists is within its limits.

use std::time::Duration;

use crate::names::NodeId;

/// A setting out of its documented range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the NATS URL is empty")]
    EmptyUrl,
    #[error("the NATS URL `{0}` must be nats://HOST:PORT (or tls://, or HOST:PORT)")]
    UnsupportedUrl(String),
    #[error("node id `{0}` must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    NodeId(String),
    #[error("replicas must be {min} to {max}, not {0}", min = ClusterConfig::MIN_REPLICAS, max = ClusterConfig::MAX_REPLICAS)]
    Replicas(usize),
    #[error("the lease TTL must be {min:?} to {max:?}, not {0:?}", min = ClusterConfig::MIN_LEASE_TTL, max = ClusterConfig::MAX_LEASE_TTL)]
    LeaseTtl(Duration),
}

/// How a node joins the cluster. Every node of one cluster must use the same `replicas` and
/// `lease_ttl`: they are properties of the shared stream and buckets, and the node that
/// connects last sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    url: String,
    node_id: NodeId,
    replicas: usize,
    lease_ttl: Duration,
    advertise: Option<String>,
}

impl ClusterConfig {
    /// One copy: what a single NATS server can hold.
    pub const DEFAULT_REPLICAS: usize = 1;
    pub const MIN_REPLICAS: usize = 1;
    /// JetStream's own limit on the replicas of a stream.
    pub const MAX_REPLICAS: usize = 5;
    /// A failed node's streams move after at most this long.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
    /// Below 3 s, renewals every TTL/3 (1 s) would leave too little room for a slow
    /// JetStream round trip or a garbage-collection pause of the server.
    pub const MIN_LEASE_TTL: Duration = Duration::from_secs(3);
    /// Above two minutes a failover would be slower than any gateway's patience.
    pub const MAX_LEASE_TTL: Duration = Duration::from_secs(120);

    /// A configuration with the default replicas (1) and lease TTL (10 s).
    pub fn new(url: impl Into<String>, node_id: impl Into<String>) -> Result<Self, ConfigError> {
        let url = url.into();
        check_url(&url)?;
        let node_id = node_id.into();
        Ok(ClusterConfig {
            url,
            node_id: NodeId::new(node_id.clone()).map_err(|_| ConfigError::NodeId(node_id))?,
            replicas: Self::DEFAULT_REPLICAS,
            lease_ttl: Self::DEFAULT_LEASE_TTL,
            advertise: None,
        })
    }

    /// Sets the replicas of the ingest stream and every bucket (1 to 5; at most the number
    /// of NATS servers).
    pub fn with_replicas(mut self, replicas: usize) -> Result<Self, ConfigError> {
        if !(Self::MIN_REPLICAS..=Self::MAX_REPLICAS).contains(&replicas) {
            return Err(ConfigError::Replicas(replicas));
        }
        self.replicas = replicas;
        Ok(self)
    }

    /// Sets the lease TTL (3 s to 120 s), which is also how long a silent node stays listed
    /// as live.
    pub fn with_lease_ttl(mut self, lease_ttl: Duration) -> Result<Self, ConfigError> {
        if !(Self::MIN_LEASE_TTL..=Self::MAX_LEASE_TTL).contains(&lease_ttl) {
            return Err(ConfigError::LeaseTtl(lease_ttl));
        }
        self.lease_ttl = lease_ttl;
        Ok(self)
    }

    /// Sets the address other nodes reach this node's HTTP API at (`http://HOST:PORT`),
    /// which its heartbeats carry so that reads can be forwarded to a stream's owner.
    pub fn with_advertise(mut self, address: impl Into<String>) -> Self {
        self.advertise = Some(address.into());
        self
    }

    pub fn advertise(&self) -> Option<&str> {
        self.advertise.as_deref()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// How often a lease or a heartbeat is rewritten: TTL/3, so that two writes in a row
    /// may fail (a NATS restart, a leader election) before the key expires.
    pub fn renew_interval(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// The bound on every JetStream request and publish acknowledgement: TTL/3, within 2 s
    /// and 5 s. A renewal that has not answered by then is failed, so a node learns that it
    /// cannot renew while its lease still runs, and a gateway gets an error instead of
    /// waiting on a NATS server that is down.
    pub fn request_timeout(&self) -> Duration {
        (self.lease_ttl / 3).clamp(Duration::from_secs(2), Duration::from_secs(5))
    }
}

fn check_url(url: &str) -> Result<(), ConfigError> {
    if url.trim().is_empty() {
        return Err(ConfigError::EmptyUrl);
    }
    match url.split_once("://") {
        None => Ok(()),
        Some(("nats" | "tls", rest)) if !rest.is_empty() => Ok(()),
        Some(_) => Err(ConfigError::UnsupportedUrl(url.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_one_replica_and_ten_seconds() {
        let config = ClusterConfig::new("nats://127.0.0.1:4222", "node-1").unwrap();
        assert_eq!(config.replicas(), 1);
        assert_eq!(config.lease_ttl(), Duration::from_secs(10));
        assert_eq!(config.renew_interval(), Duration::from_millis(3333) + Duration::from_nanos(333_333));
        assert_eq!(config.request_timeout(), config.renew_interval());
        assert_eq!(config.node_id().as_str(), "node-1");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let config = ClusterConfig::new("nats://127.0.0.1:4222", "n").unwrap();
        assert_eq!(config.clone().with_replicas(0), Err(ConfigError::Replicas(0)));
        assert_eq!(config.clone().with_replicas(6), Err(ConfigError::Replicas(6)));
        assert_eq!(config.clone().with_replicas(5).unwrap().replicas(), 5);
        let short = Duration::from_millis(2999);
        assert_eq!(config.clone().with_lease_ttl(short), Err(ConfigError::LeaseTtl(short)));
        let long = Duration::from_secs(121);
        assert_eq!(config.clone().with_lease_ttl(long), Err(ConfigError::LeaseTtl(long)));
        let ttl = config.with_lease_ttl(Duration::from_secs(3)).unwrap();
        assert_eq!(ttl.request_timeout(), Duration::from_secs(2));
    }

    #[test]
    fn urls_and_node_ids_are_checked() {
        assert_eq!(ClusterConfig::new("", "n"), Err(ConfigError::EmptyUrl));
        assert!(matches!(ClusterConfig::new("http://h:1", "n"), Err(ConfigError::UnsupportedUrl(_))));
        assert!(ClusterConfig::new("tls://h:1", "n").is_ok());
        assert!(ClusterConfig::new("h:4222", "n").is_ok());
        assert_eq!(ClusterConfig::new("nats://h:1", "bad id"), Err(ConfigError::NodeId("bad id".to_owned())));
    }
}
