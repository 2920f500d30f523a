//! Who may do what: bearer tokens with scopes (`read`, `ingest`, `admin`, `metrics`),
//! optional stream-id patterns and per-token rate limits, checked by one middleware in front
//! of every route, and an audit line for every admin action and every refusal.
//!
//! Tokens are known only by their SHA-256 digests; a presented token is hashed and looked up,
//! and neither the token nor its digest is ever logged. With no token configured the policy
//! is open (the binary then insists on a loopback address; see `server::run`).

mod middleware;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::Method;

use crate::problem::{ApiError, Challenge};

pub use middleware::authorize;

/// The prefix of the WebSocket subprotocol that carries a token for clients that cannot set
/// an `Authorization` header (browsers): `Sec-WebSocket-Protocol: koopstream.v1.json,
/// koopstream.bearer.<token>`. The server never selects it, so it is not echoed back.
pub const BEARER_SUBPROTOCOL_PREFIX: &str = "koopstream.bearer.";

/// The target of audit log lines (`koopstream::audit`), so they can be routed on their own.
pub const AUDIT_TARGET: &str = "koopstream::audit";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read streams, models, modes, alarms; predict.
    Read,
    /// Post samples; open ingest WebSockets.
    Ingest,
    /// Create, delete and reset streams.
    Admin,
    /// Scrape `/metrics` (unless metrics are configured open).
    Metrics,
}

impl Scope {
    /// Every scope, in the order of their bits.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Ingest, Scope::Admin, Scope::Metrics];

    /// Parses a scope name as written in the configuration.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The name used in the configuration and in problem details.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Ingest => "ingest",
            Scope::Admin => "admin",
            Scope::Metrics => "metrics",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// Adds a scope.
    pub fn with(self, scope: Scope) -> Self {
        Scopes(self.0 | scope.bit())
    }

    /// Whether the set holds `scope`.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Scopes::default(), Scopes::with)
    }
}

/// A stream-id pattern: literal characters and `*`, which matches any run (empty included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPattern(String);

impl StreamPattern {
    /// Parses a pattern; it must be non-empty, at most 256 bytes, printable ASCII without
    /// `/`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > 256 {
            return Err("a stream pattern must have 1 to 256 characters".to_owned());
        }
        if !text.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
            return Err(format!("stream pattern `{text}` may hold printable ASCII other than `/` only"));
        }
        Ok(StreamPattern(text.to_owned()))
    }

    /// Whether `id` matches (glob with `*` only; linear-time greedy matching with
    /// backtracking to the last star, so no pattern can make a check slow).
    pub fn matches(&self, id: &str) -> bool {
        let (pattern, text) = (self.0.as_bytes(), id.as_bytes());
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if p < pattern.len() && pattern[p] == b'*' {
                star = Some((p, t));
                p += 1;
            } else if p < pattern.len() && pattern[p] == text[t] {
                p += 1;
                t += 1;
            } else if let Some((star_p, star_t)) = star {
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            } else {
                return false;
            }
        }
        pattern[p..].iter().all(|&b| b == b'*')
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The SHA-256 digest of a token. Its `Debug` form hides the value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of a presented token.
    pub fn of(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        TokenDigest(bytes)
    }

    /// Reads 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(TokenDigest(bytes))
    }

    /// 64 lower-case hexadecimal digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// A token's request budget: a bucket of `burst` requests refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second (> 0).
    pub per_second: f64,
    /// Requests that may arrive at once (>= 1).
    pub burst: f64,
}

/// One configured token.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The name that audit lines and metrics show (never the token).
    pub name: String,
    /// The digest of the token.
    pub digest: TokenDigest,
    /// What it may do.
    pub scopes: Scopes,
    /// Stream ids it may touch on routes that name a stream; empty: every stream.
    pub streams: Vec<StreamPattern>,
    /// Its request budget; `None`: unlimited.
    pub rate: Option<RateLimit>,
}

/// Why a set of grants cannot form a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Two tokens share a name.
    #[error("two tokens are named `{0}`")]
    DuplicateName(String),
    /// Two tokens share a digest.
    #[error("tokens `{0}` and `{1}` have the same digest")]
    DuplicateDigest(String, String),
    /// A token has no scope.
    #[error("token `{0}` has no scope")]
    NoScope(String),
}

/// The caller a request was authenticated as.
#[derive(Debug)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    scopes: Scopes,
    streams: Vec<StreamPattern>,
    rate: Option<(RateLimit, Mutex<Bucket>)>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Principal {
    /// Takes one request from the bucket, or says in how many whole seconds one is free.
    fn spend(&self, now: Instant) -> Result<(), u64> {
        let Some((limit, bucket)) = &self.rate else { return Ok(()) };
        // A poisoned lock only means another request panicked mid-update; the numbers are
        // still a valid bucket.
        let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(limit.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / limit.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// What a route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone (health, readiness, the API description, unknown routes).
    Open,
    /// A token with this scope; on routes that name a stream, one whose patterns match it.
    Scope(Scope, Option<String>),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credential was presented.
    Missing,
    /// The credential is not a known token.
    UnknownToken,
    /// The token lacks the scope.
    Scope(Scope),
    /// The token may not touch this stream.
    Stream(String),
    /// The token's budget is spent; retry after these seconds.
    RateLimited(u64),
}

/// The tokens the server accepts.
#[derive(Debug, Default)]
pub struct AccessPolicy {
    principals: HashMap<TokenDigest, Arc<Principal>>,
    open_metrics: bool,
}

impl AccessPolicy {
    /// No tokens: every request is allowed.
    pub fn open() -> Self {
        Self::default()
    }

    /// A policy from configured grants; `open_metrics` leaves `/metrics` without a token.
    pub fn new(grants: Vec<TokenGrant>, open_metrics: bool, now: Instant) -> Result<Self, PolicyError> {
        let mut principals: HashMap<TokenDigest, Arc<Principal>> = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for grant in grants {
            if !names.insert(grant.name.clone()) {
                return Err(PolicyError::DuplicateName(grant.name));
            }
            if grant.scopes.is_empty() {
                return Err(PolicyError::NoScope(grant.name));
            }
            if let Some(other) = principals.get(&grant.digest) {
                return Err(PolicyError::DuplicateDigest(other.name.clone(), grant.name));
            }
            let rate = grant.rate.map(|limit| (limit, Mutex::new(Bucket { tokens: limit.burst, last: now })));
            let principal = Principal { name: grant.name, scopes: grant.scopes, streams: grant.streams, rate };
            principals.insert(grant.digest, Arc::new(principal));
        }
        Ok(Self { principals, open_metrics })
    }

    /// Whether any token is configured (otherwise every request is allowed).
    pub fn enabled(&self) -> bool {
        !self.principals.is_empty()
    }

    /// What a request needs: `route` is the matched route template, `path` the request path.
    pub fn requirement(&self, method: &Method, route: Option<&str>, path: &str) -> Requirement {
        let stream = || path.strip_prefix("/v1/streams/").and_then(|rest| rest.split('/').next()).map(str::to_owned);
        let scope = match (route, method) {
            (None | Some("/healthz" | "/readyz" | "/openapi.json" | "/" | "/dashboard/{asset}"), _) => {
                return Requirement::Open;
            }
            (Some("/metrics"), _) if self.open_metrics => return Requirement::Open,
            (Some("/metrics"), _) => return Requirement::Scope(Scope::Metrics, None),
            (Some("/v1/streams"), &Method::POST) => return Requirement::Scope(Scope::Admin, None),
            (Some("/v1/streams"), _) => return Requirement::Scope(Scope::Read, None),
            (Some("/v1/presets"), _) => return Requirement::Scope(Scope::Read, None),
            (Some("/v1/streams/{id}"), &Method::DELETE) | (Some("/v1/streams/{id}/reset"), _) => Scope::Admin,
            (Some("/v1/streams/{id}/samples" | "/v1/streams/{id}/ws"), _) => Scope::Ingest,
            _ => Scope::Read,
        };
        Requirement::Scope(scope, stream())
    }

    /// The name of a presented token, if it is known (for audit lines of refusals).
    pub fn name_of(&self, token: &str) -> Option<&str> {
        self.principals.get(&TokenDigest::of(token)).map(|p| p.name.as_str())
    }

    /// Checks a presented token against a requirement.
    pub fn check(&self, token: Option<&str>, need: &Requirement, now: Instant) -> Result<Arc<Principal>, Denied> {
        let token = token.ok_or(Denied::Missing)?;
        let principal = self.principals.get(&TokenDigest::of(token)).ok_or(Denied::UnknownToken)?;
        if let Requirement::Scope(scope, stream) = need {
            if !principal.scopes.contains(*scope) {
                return Err(Denied::Scope(*scope));
            }
            if let Some(id) = stream
                && !principal.streams.is_empty()
                && !principal.streams.iter().any(|p| p.matches(id))
            {
                return Err(Denied::Stream(id.clone()));
            }
        }
        principal.spend(now).map_err(Denied::RateLimited)?;
        Ok(principal.clone())
    }
}

impl Denied {
    /// The label of the refusal counter.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Missing => "missing",
            Denied::UnknownToken => "unknown_token",
            Denied::Scope(_) => "scope",
            Denied::Stream(_) => "stream",
            Denied::RateLimited(_) => "rate_limited",
        }
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Missing => ApiError::unauthorized(
                "this route needs a bearer token (Authorization: Bearer <token>)",
                Challenge::Missing,
            ),
            Denied::UnknownToken => ApiError::unauthorized("the bearer token is not known", Challenge::InvalidToken),
            Denied::Scope(scope) => {
                ApiError::forbidden(format!("the token lacks the `{}` scope this route needs", scope.name()))
            }
            Denied::Stream(id) => ApiError::forbidden(format!("the token may not touch stream `{id}`")),
            Denied::RateLimited(seconds) => ApiError::rate_limited(seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn grant(name: &str, token: &str, scopes: &[Scope], streams: &[&str], rate: Option<RateLimit>) -> TokenGrant {
        TokenGrant {
            name: name.to_owned(),
            digest: TokenDigest::of(token),
            scopes: scopes.iter().copied().collect(),
            streams: streams.iter().map(|p| StreamPattern::parse(p).unwrap()).collect(),
            rate,
        }
    }

    #[test]
    fn the_digest_is_sha256_and_round_trips_through_hex() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let digest = TokenDigest::of("abc");
        assert_eq!(digest.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(TokenDigest::from_hex("zz"), None);
        assert_eq!(format!("{digest:?}"), "TokenDigest(..)");
    }

    #[test]
    fn patterns_match_globs() {
        let p = |s: &str| StreamPattern::parse(s).unwrap();
        assert!(p("pmu-*").matches("pmu-17"));
        assert!(p("pmu-*").matches("pmu-"));
        assert!(!p("pmu-*").matches("pm-17"));
        assert!(p("*-a-*").matches("x-a-y-a-z"));
        assert!(p("a*b*c").matches("abc"));
        assert!(!p("a*b*c").matches("acb"));
        assert!(p("exact").matches("exact"));
        assert!(!p("exact").matches("exactly"));
        assert!(p("*").matches(""));
        assert!(StreamPattern::parse("a/b").is_err());
        assert!(StreamPattern::parse("").is_err());
    }

    #[test]
    fn routes_need_their_scopes() {
        let policy = AccessPolicy::open();
        let r = |m: Method, route: &str, path: &str| policy.requirement(&m, Some(route), path);
        assert_eq!(r(Method::GET, "/healthz", "/healthz"), Requirement::Open);
        assert_eq!(r(Method::GET, "/metrics", "/metrics"), Requirement::Scope(Scope::Metrics, None));
        assert_eq!(r(Method::POST, "/v1/streams", "/v1/streams"), Requirement::Scope(Scope::Admin, None));
        assert_eq!(r(Method::GET, "/v1/streams", "/v1/streams"), Requirement::Scope(Scope::Read, None));
        let s = Some("a".to_owned());
        assert_eq!(r(Method::DELETE, "/v1/streams/{id}", "/v1/streams/a"), Requirement::Scope(Scope::Admin, s.clone()));
        assert_eq!(
            r(Method::POST, "/v1/streams/{id}/samples", "/v1/streams/a/samples"),
            Requirement::Scope(Scope::Ingest, s.clone())
        );
        assert_eq!(
            r(Method::POST, "/v1/streams/{id}/predict", "/v1/streams/a/predict"),
            Requirement::Scope(Scope::Read, s)
        );
        assert_eq!(policy.requirement(&Method::GET, None, "/nowhere"), Requirement::Open);
    }

    #[test]
    fn checks_refuse_with_the_right_reason() {
        let now = Instant::now();
        let grants = vec![
            grant("reader", "r-token", &[Scope::Read], &[], None),
            grant("gateway", "g-token", &[Scope::Ingest], &["pmu-*"], None),
        ];
        let policy = AccessPolicy::new(grants, false, now).unwrap();
        let ingest = |id: &str| Requirement::Scope(Scope::Ingest, Some(id.to_owned()));
        assert_eq!(policy.check(None, &ingest("pmu-1"), now).unwrap_err(), Denied::Missing);
        assert_eq!(policy.check(Some("nope"), &ingest("pmu-1"), now).unwrap_err(), Denied::UnknownToken);
        assert_eq!(policy.check(Some("r-token"), &ingest("pmu-1"), now).unwrap_err(), Denied::Scope(Scope::Ingest));
        assert_eq!(policy.check(Some("g-token"), &ingest("bus-1"), now).unwrap_err(), Denied::Stream("bus-1".into()));
        assert_eq!(policy.check(Some("g-token"), &ingest("pmu-1"), now).unwrap().name, "gateway");
    }

    #[test]
    fn the_bucket_refills_at_its_rate() {
        let t0 = Instant::now();
        let limit = RateLimit { per_second: 2.0, burst: 3.0 };
        let policy = AccessPolicy::new(vec![grant("g", "t", &[Scope::Read], &[], Some(limit))], false, t0).unwrap();
        let need = Requirement::Scope(Scope::Read, None);
        for _ in 0..3 {
            policy.check(Some("t"), &need, t0).unwrap();
        }
        assert_eq!(policy.check(Some("t"), &need, t0).unwrap_err(), Denied::RateLimited(1));
        // Half a second refills one request at 2 per second.
        policy.check(Some("t"), &need, t0 + Duration::from_millis(500)).unwrap();
        assert!(policy.check(Some("t"), &need, t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn grants_must_be_distinct_and_scoped() {
        let now = Instant::now();
        let twice = vec![grant("a", "t1", &[Scope::Read], &[], None), grant("a", "t2", &[Scope::Read], &[], None)];
        assert!(matches!(AccessPolicy::new(twice, false, now), Err(PolicyError::DuplicateName(_))));
        let same = vec![grant("a", "t", &[Scope::Read], &[], None), grant("b", "t", &[Scope::Read], &[], None)];
        assert!(matches!(AccessPolicy::new(same, false, now), Err(PolicyError::DuplicateDigest(..))));
        let none = vec![grant("a", "t", &[], &[], None)];
        assert!(matches!(AccessPolicy::new(none, false, now), Err(PolicyError::NoScope(_))));
    }
}
