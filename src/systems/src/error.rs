//! Typed errors of the simulators crate.

use thiserror::Error;

/// Everything that can go wrong when building or running a simulator.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SystemsError {
    /// A caller-supplied parameter is out of its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Name of the offending parameter.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A name (system, scenario, network) that this crate does not know.
    #[error("unknown {what} `{name}`")]
    UnknownName {
        /// What kind of name was looked up.
        what: &'static str,
        /// The name as given.
        name: String,
    },
    /// The embedded data could not be parsed (a build defect, not a user error).
    #[error("embedded data file `{file}`, line {line}: {reason}")]
    Data {
        /// File name inside the embedded data folder.
        file: &'static str,
        /// One-based line number (1 = header).
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A numerical procedure (linear solve, Newton iteration) did not succeed.
    #[error("numerical failure: {0}")]
    Numerical(String),
}

/// Rejects a parameter unless `ok` holds; keeps the validation sites one line each.
pub(crate) fn require(ok: bool, name: &'static str, reason: &str) -> Result<(), SystemsError> {
    if ok { Ok(()) } else { Err(SystemsError::InvalidParameter { name, reason: reason.to_owned() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_passes_and_fails() {
        assert!(require(true, "x", "never").is_ok());
        let err = require(false, "rate", "must be positive").unwrap_err();
        assert_eq!(err.to_string(), "invalid parameter `rate`: must be positive");
    }
}
