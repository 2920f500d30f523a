//! The `[auth]` section of the configuration: bearer tokens (by their SHA-256 digests, inline
//! or in a tokens file), the no-auth override, open metrics, default rate limits; read once
//! into the HTTP layer's `AccessPolicy`, with every error naming its key.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::api::auth::{AccessPolicy, RateLimit, Scope, StreamPattern, TokenDigest, TokenGrant};

/// Authentication settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Tokens given inline (`[[auth.tokens]]`).
    pub tokens: Vec<TokenConfig>,
    /// A TOML file of `[[tokens]]` entries (e.g. a mounted secret); read at start.
    pub tokens_file: Option<PathBuf>,
    /// Serve without tokens on a non-loopback address (refused otherwise).
    pub insecure_no_auth: bool,
    /// Leave `/metrics` open when tokens are configured (otherwise it needs `metrics`).
    pub open_metrics: bool,
    /// Requests per second of a token that does not set its own; 0 = unlimited.
    pub rate_per_s: f64,
    /// Burst of a token that does not set its own (default: one second's worth, at least 1).
    pub burst: Option<f64>,
}

/// One token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Name shown in audit lines (never the token).
    pub name: String,
    /// SHA-256 of the token, 64 hexadecimal digits (`koopstream token` prints it).
    pub sha256: String,
    /// Scopes: any of `read`, `ingest`, `admin`, `metrics`.
    pub scopes: Vec<String>,
    /// Stream-id patterns (`*` wildcards) this token may touch; empty: all.
    #[serde(default)]
    pub streams: Vec<String>,
    /// Its own requests per second (0 = unlimited), overriding `auth.rate_per_s`.
    #[serde(default)]
    pub rate_per_s: Option<f64>,
    /// Its own burst.
    #[serde(default)]
    pub burst: Option<f64>,
}

impl TokenConfig {
    /// An entry for a known secret (tests and programs that build their configuration);
    /// only the digest is kept.
    pub fn for_secret(name: &str, secret: &str, scopes: &[&str]) -> Self {
        TokenConfig {
            name: name.to_owned(),
            sha256: TokenDigest::of(secret).to_hex(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..TokenConfig::default()
        }
    }
}

/// The file named by `auth.tokens_file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<TokenConfig>,
}

/// An `[auth]` section that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: key `{key}`: {reason}")]
pub struct AuthError {
    /// Dotted key path (with the token's name).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> AuthError {
    AuthError { key: key.into(), reason: reason.into() }
}

impl AuthConfig {
    /// Every configured token, inline ones first, then the file's.
    fn all_tokens(&self) -> Result<Vec<(String, TokenConfig)>, AuthError> {
        let mut all: Vec<(String, TokenConfig)> =
            self.tokens.iter().enumerate().map(|(i, t)| (format!("auth.tokens[{i}]"), t.clone())).collect();
        if let Some(path) = &self.tokens_file {
            all.extend(read_tokens_file(path)?.into_iter().enumerate().map(|(i, t)| (format!("tokens[{i}]"), t)));
        }
        Ok(all)
    }

    fn rate(&self, key: &str, token: &TokenConfig) -> Result<Option<RateLimit>, AuthError> {
        let per_second = token.rate_per_s.unwrap_or(self.rate_per_s);
        if !per_second.is_finite() || per_second < 0.0 {
            return Err(invalid(format!("{key}.rate_per_s"), "must be a finite number >= 0"));
        }
        if per_second == 0.0 {
            return Ok(None);
        }
        let burst = token.burst.or(self.burst).unwrap_or(per_second.max(1.0));
        if !burst.is_finite() || burst < 1.0 {
            return Err(invalid(format!("{key}.burst"), "must be a finite number >= 1"));
        }
        Ok(Some(RateLimit { per_second, burst }))
    }

    /// Checks the inline tokens and settings; the tokens file is read when the server starts
    /// (it may be a secret mounted only where the server runs).
    pub fn check_inline(&self) -> Result<(), AuthError> {
        AuthConfig { tokens_file: None, ..self.clone() }.policy().map(drop)
    }

    /// The access policy: open when no token is configured.
    pub fn policy(&self) -> Result<AccessPolicy, AuthError> {
        let mut grants = Vec::new();
        for (key, token) in self.all_tokens()? {
            if token.name.is_empty() || token.name.len() > 64 {
                return Err(invalid(format!("{key}.name"), "must have 1 to 64 characters"));
            }
            let digest = TokenDigest::from_hex(&token.sha256).ok_or_else(|| {
                invalid(format!("{key}.sha256"), "must be 64 hexadecimal digits (SHA-256 of the token)")
            })?;
            let mut scopes = Vec::new();
            for name in &token.scopes {
                let scope = Scope::parse(name).ok_or_else(|| {
                    invalid(format!("{key}.scopes"), format!("`{name}` is not one of read, ingest, admin, metrics"))
                })?;
                scopes.push(scope);
            }
            let streams = token
                .streams
                .iter()
                .map(|p| StreamPattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| invalid(format!("{key}.streams"), reason))?;
            let rate = self.rate(&key, &token)?;
            grants.push(TokenGrant { name: token.name, digest, scopes: scopes.into_iter().collect(), streams, rate });
        }
        AccessPolicy::new(grants, self.open_metrics, Instant::now()).map_err(|e| invalid("auth.tokens", e.to_string()))
    }
}

fn read_tokens_file(path: &Path) -> Result<Vec<TokenConfig>, AuthError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid("auth.tokens_file", format!("cannot read {}: {e}", path.display())))?;
    let file: TokensFile =
        toml_from_str(&text).map_err(|e| invalid("auth.tokens_file", format!("{}: {e}", path.display())))?;
    Ok(file.tokens)
}

/// TOML through figment, which the configuration already parses with.
fn toml_from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    use figment::providers::{Format, Toml};
    figment::Figment::from(Toml::string(text)).extract().map_err(|e| e.to_string())
}

/// A fresh random token (32 bytes, hexadecimal) and its digest, for `koopstream token`.
pub fn new_token() -> Result<(String, String), AuthError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| invalid("token", "the system's random number generator failed"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let digest = TokenDigest::of(&token).to_hex();
    Ok((token, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, secret: &str, scopes: &[&str]) -> TokenConfig {
        TokenConfig::for_secret(name, secret, scopes)
    }

    #[test]
    fn no_tokens_is_an_open_policy() {
        assert!(!AuthConfig::default().policy().unwrap().enabled());
    }

    #[test]
    fn errors_name_the_token_and_key() {
        let mut config = AuthConfig { tokens: vec![token("a", "s", &["read", "write"])], ..AuthConfig::default() };
        let e = config.policy().unwrap_err().to_string();
        assert!(e.contains("auth.tokens[0].scopes") && e.contains("write"), "{e}");
        config.tokens[0] = TokenConfig { sha256: "12".into(), ..token("a", "s", &["read"]) };
        assert!(config.policy().unwrap_err().to_string().contains("auth.tokens[0].sha256"));
        config.tokens[0] = TokenConfig { rate_per_s: Some(-1.0), ..token("a", "s", &["read"]) };
        assert!(config.policy().unwrap_err().to_string().contains("rate_per_s"));
        config.tokens = vec![token("a", "s", &["read"]), token("a", "t", &["read"])];
        assert!(config.policy().unwrap_err().to_string().contains("two tokens are named"));
    }

    #[test]
    fn a_tokens_file_adds_tokens() {
        let dir = std::env::temp_dir().join(format!("koopstream-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.toml");
        let digest = TokenDigest::of("secret").to_hex();
        std::fs::write(&path, format!("[[tokens]]\nname = \"gw\"\nsha256 = \"{digest}\"\nscopes = [\"ingest\"]\n"))
            .unwrap();
        let config = AuthConfig { tokens_file: Some(path.clone()), ..AuthConfig::default() };
        assert!(config.policy().unwrap().enabled());
        std::fs::write(&path, "[[tokens]]\nname = \"gw\"\n").unwrap();
        assert!(config.policy().unwrap_err().to_string().contains("auth.tokens_file"));
        let missing = AuthConfig { tokens_file: Some(dir.join("none.toml")), ..AuthConfig::default() };
        assert!(missing.policy().unwrap_err().to_string().contains("cannot read"));
    }

    #[test]
    fn new_tokens_are_random_and_match_their_digest() {
        let (a, digest) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(TokenDigest::of(&a).to_hex(), digest);
    }
}
