//! The estimation method as a request names it (`estimator` with its separate parameters)
//! and as a definition stores it (one tagged value), beside `koopman::Method`, which knows
//! no serialisation.

use koopman::Method;
use serde::{Deserialize, Serialize};

/// The estimator a request names, without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EstimatorKind {
    /// Ridge-regularised EDMD (the default).
    #[default]
    Ridge,
    /// DMD on the correlation sequence of the observables (ambient data, no inputs).
    Correlation,
    /// Instrumental variables.
    Iv,
}

/// Every estimator, in the order messages list them.
pub const ESTIMATORS: [EstimatorKind; 3] = [EstimatorKind::Ridge, EstimatorKind::Correlation, EstimatorKind::Iv];

impl EstimatorKind {
    /// The name on the wire and the command line (as [`Method::name`]).
    pub fn name(self) -> &'static str {
        match self {
            EstimatorKind::Ridge => "ridge",
            EstimatorKind::Correlation => "correlation",
            EstimatorKind::Iv => "iv",
        }
    }
}

impl std::fmt::Display for EstimatorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EstimatorKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        ESTIMATORS.into_iter().find(|k| k.name() == text).ok_or_else(|| {
            let names: Vec<&str> = ESTIMATORS.iter().map(|k| k.name()).collect();
            format!("`{text}` is not an estimator; the estimators are {}", names.join(", "))
        })
    }
}

/// The method as a definition stores it. Definitions stored before methods existed have
/// none and read back as ridge (`#[serde(default)]` on the field that holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoredMethod {
    /// Ridge.
    #[default]
    Ridge,
    /// Correlation DMD.
    Correlation {
        /// Consecutive lags kept.
        lags: usize,
        /// Rank of the truncated SVD (all when absent).
        rank: Option<usize>,
    },
    /// Instrumental variables.
    #[serde(rename = "iv")]
    Iv {
        /// Pairs between a regressor and its instrument.
        instrument_delay: usize,
    },
}

impl From<StoredMethod> for Method {
    fn from(m: StoredMethod) -> Self {
        match m {
            StoredMethod::Ridge => Method::Ridge,
            StoredMethod::Correlation { lags, rank } => Method::Correlation { lags, rank },
            StoredMethod::Iv { instrument_delay } => Method::InstrumentalVariable { delay: instrument_delay },
        }
    }
}

impl From<Method> for StoredMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::Ridge => StoredMethod::Ridge,
            Method::Correlation { lags, rank } => StoredMethod::Correlation { lags, rank },
            Method::InstrumentalVariable { delay } => StoredMethod::Iv { instrument_delay: delay },
        }
    }
}

impl StoredMethod {
    /// The estimator's name.
    pub fn kind(&self) -> EstimatorKind {
        match self {
            StoredMethod::Ridge => EstimatorKind::Ridge,
            StoredMethod::Correlation { .. } => EstimatorKind::Correlation,
            StoredMethod::Iv { .. } => EstimatorKind::Iv,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_match_the_estimators() {
        for kind in ESTIMATORS {
            assert_eq!(kind.name().parse::<EstimatorKind>(), Ok(kind));
        }
        let methods =
            [Method::Ridge, Method::Correlation { lags: 2, rank: None }, Method::InstrumentalVariable { delay: 1 }];
        for method in methods {
            let stored = StoredMethod::from(method);
            assert_eq!((stored.kind().name(), Method::from(stored)), (method.name(), method));
        }
        assert!("ols".parse::<EstimatorKind>().unwrap_err().contains("ridge, correlation, iv"));
    }
}
