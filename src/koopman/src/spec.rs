//! The dictionary specification: the parsed form of strings like `state,const,poly:3`.
//!
//! Grammar (terms separated by commas, in this order, each at most once):
//! `state` (required, first), `const`, `poly:D` (monomials of degree 2..=D),
//! `rbf:COUNT[:WIDTH]`, `fourier:COUNT[:SCALE]`, `delay:D`. The canonical text form
//! ([`std::fmt::Display`]) round-trips through [`std::str::FromStr`].

use std::fmt;
use std::str::FromStr;

use crate::error::SpecError;

/// Gaussian radial basis functions on the (standardised) state.
#[derive(Debug, Clone, PartialEq)]
pub struct RbfSpec {
    /// Number of centres.
    pub count: usize,
    /// Kernel width s in exp(-|z - c|^2 / (2 s^2)); `None` picks the mean nearest-neighbour
    /// distance between the centres.
    pub width: Option<f64>,
}

/// Random Fourier features cos(w . z + b) with w ~ N(0, I / scale^2), b ~ U[0, 2 pi).
#[derive(Debug, Clone, PartialEq)]
pub struct FourierSpec {
    /// Number of features.
    pub count: usize,
    /// Length scale of the kernel the features approximate.
    pub scale: f64,
}

/// A parsed dictionary: which observable families follow the state coordinates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DictionarySpec {
    /// Include the constant observable 1.
    pub constant: bool,
    /// Highest monomial degree (>= 2), if monomials are included.
    pub poly_degree: Option<u32>,
    /// Radial basis functions, if included.
    pub rbf: Option<RbfSpec>,
    /// Random Fourier features, if included.
    pub fourier: Option<FourierSpec>,
    /// Number of delayed copies of the state (time-delay coordinates), if included.
    pub delay: Option<usize>,
}

/// Upper bounds that keep a mistyped spec from allocating gigabytes.
const MAX_FEATURES: usize = 100_000;
const MAX_POLY_DEGREE: u32 = 12;
const MAX_DELAY: usize = 10_000;

impl DictionarySpec {
    /// The dictionary that holds the state coordinates only (online DMD on raw states).
    pub fn state_only() -> Self {
        Self::default()
    }

    /// Whether the lifting depends on data seen during warm-up (RBF centres).
    pub fn needs_data(&self) -> bool {
        self.rbf.is_some()
    }

    /// Number of monomials of degree 2..=d in n variables.
    /// Saturates at `usize::MAX` instead of overflowing.
    pub fn monomial_count(n: usize, degree: u32) -> usize {
        (2..=degree as usize).fold(0usize, |sum, k| sum.saturating_add(binomial(n + k - 1, k)))
    }

    /// Number of observables this dictionary produces for an n-dimensional state;
    /// saturates at `usize::MAX`, so a dictionary too large to hold is never mistaken for a
    /// small one.
    pub fn dimension(&self, n: usize) -> usize {
        [
            usize::from(self.constant),
            self.poly_degree.map_or(0, |d| Self::monomial_count(n, d)),
            self.rbf.as_ref().map_or(0, |r| r.count),
            self.fourier.as_ref().map_or(0, |f| f.count),
            self.delay.map_or(0, |d| d.saturating_mul(n)),
        ]
        .into_iter()
        .fold(n, usize::saturating_add)
    }
}

fn binomial(n: usize, k: usize) -> usize {
    // Multiplicative form: every intermediate is itself a binomial, so it stays integral.
    (0..k).fold(1usize, |acc, i| acc.saturating_mul(n - i) / (i + 1))
}

const ORDER: [&str; 6] = ["state", "const", "poly", "rbf", "fourier", "delay"];

fn parse_count(term: &str, text: &str, max: usize) -> Result<usize, SpecError> {
    let value: usize = text.parse().map_err(|_| SpecError::BadParameter {
        term: term.to_owned(),
        value: text.to_owned(),
        reason: "expected a positive whole number",
    })?;
    if value == 0 || value > max {
        return Err(SpecError::BadParameter { term: term.to_owned(), value: text.to_owned(), reason: "out of range" });
    }
    Ok(value)
}

fn parse_positive(term: &str, text: &str) -> Result<f64, SpecError> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(SpecError::BadParameter {
            term: term.to_owned(),
            value: text.to_owned(),
            reason: "expected a positive finite number",
        }),
    }
}

impl FromStr for DictionarySpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let mut spec = DictionarySpec::default();
        let mut last_rank: Option<usize> = None;
        let terms: Vec<&str> = text.split(',').map(str::trim).collect();
        if terms.iter().all(|t| t.is_empty()) {
            return Err(SpecError::Empty);
        }
        for (position, term) in terms.iter().enumerate() {
            let mut parts = term.split(':');
            let name = parts.next().unwrap_or_default();
            let args: Vec<&str> = parts.collect();
            let rank = ORDER
                .iter()
                .position(|known| *known == name)
                .ok_or_else(|| SpecError::UnknownTerm(term.to_string()))?;
            if position == 0 && rank != 0 {
                return Err(SpecError::MissingState);
            }
            if let Some(last) = last_rank {
                if rank == last {
                    return Err(SpecError::Duplicate(name.to_owned()));
                }
                if rank < last {
                    return Err(SpecError::OutOfOrder { term: name.to_owned(), after: ORDER[last].to_owned() });
                }
            }
            last_rank = Some(rank);
            let arity = |min: usize, max: usize| {
                if args.len() < min || args.len() > max {
                    Err(SpecError::BadArity {
                        term: term.to_string(),
                        expected: match (name, max) {
                            ("poly", _) => "poly:DEGREE",
                            ("rbf", _) => "rbf:COUNT[:WIDTH]",
                            ("fourier", _) => "fourier:COUNT[:SCALE]",
                            ("delay", _) => "delay:D",
                            _ => "no parameters",
                        },
                    })
                } else {
                    Ok(())
                }
            };
            match name {
                "state" => arity(0, 0)?,
                "const" => {
                    arity(0, 0)?;
                    spec.constant = true;
                }
                "poly" => {
                    arity(1, 1)?;
                    let degree = parse_count(term, args[0], MAX_POLY_DEGREE as usize)? as u32;
                    if degree < 2 {
                        return Err(SpecError::BadParameter {
                            term: term.to_string(),
                            value: args[0].to_owned(),
                            reason: "the degree must be at least 2 (degree 1 is the state)",
                        });
                    }
                    spec.poly_degree = Some(degree);
                }
                "rbf" => {
                    arity(1, 2)?;
                    let count = parse_count(term, args[0], MAX_FEATURES)?;
                    let width = args.get(1).map(|w| parse_positive(term, w)).transpose()?;
                    spec.rbf = Some(RbfSpec { count, width });
                }
                "fourier" => {
                    arity(1, 2)?;
                    let count = parse_count(term, args[0], MAX_FEATURES)?;
                    let scale = args.get(1).map(|s| parse_positive(term, s)).transpose()?.unwrap_or(1.0);
                    spec.fourier = Some(FourierSpec { count, scale });
                }
                _ => {
                    arity(1, 1)?;
                    spec.delay = Some(parse_count(term, args[0], MAX_DELAY)?);
                }
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for DictionarySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("state")?;
        if self.constant {
            f.write_str(",const")?;
        }
        if let Some(d) = self.poly_degree {
            write!(f, ",poly:{d}")?;
        }
        if let Some(r) = &self.rbf {
            write!(f, ",rbf:{}", r.count)?;
            if let Some(w) = r.width {
                write!(f, ":{w}")?;
            }
        }
        if let Some(four) = &self.fourier {
            write!(f, ",fourier:{}:{}", four.count, four.scale)?;
        }
        if let Some(d) = self.delay {
            write!(f, ",delay:{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_term_and_round_trips() {
        let spec: DictionarySpec = "state,const,poly:3,rbf:10:0.5,fourier:20:2,delay:4".parse().unwrap();
        assert!(spec.constant);
        assert_eq!(spec.poly_degree, Some(3));
        assert_eq!(spec.rbf, Some(RbfSpec { count: 10, width: Some(0.5) }));
        assert_eq!(spec.fourier, Some(FourierSpec { count: 20, scale: 2.0 }));
        assert_eq!(spec.delay, Some(4));
        let again: DictionarySpec = spec.to_string().parse().unwrap();
        assert_eq!(again, spec);
        // n = 2: 2 state + 1 const + (3 quadratic + 4 cubic) + 10 + 20 + 8 delayed.
        assert_eq!(spec.dimension(2), 2 + 1 + 7 + 10 + 20 + 8);
    }

    #[test]
    fn monomial_counts_match_combinations_with_replacement() {
        assert_eq!(DictionarySpec::monomial_count(2, 2), 3);
        assert_eq!(DictionarySpec::monomial_count(3, 3), 6 + 10);
        assert_eq!(DictionarySpec::monomial_count(1, 4), 3);
    }

    #[test]
    fn rejects_bad_specs_with_the_reason() {
        let cases = [
            ("", SpecError::Empty),
            ("const,state", SpecError::MissingState),
            ("state,cubic", SpecError::UnknownTerm("cubic".into())),
            ("state,const,const", SpecError::Duplicate("const".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<DictionarySpec>().unwrap_err(), expected, "{text}");
        }
        assert!(matches!("state,delay:2,poly:2".parse::<DictionarySpec>(), Err(SpecError::OutOfOrder { .. })));
        assert!(matches!("state,poly:1".parse::<DictionarySpec>(), Err(SpecError::BadParameter { .. })));
        assert!(matches!("state,rbf:0".parse::<DictionarySpec>(), Err(SpecError::BadParameter { .. })));
        assert!(matches!("state,rbf:3:-1".parse::<DictionarySpec>(), Err(SpecError::BadParameter { .. })));
        assert!(matches!("state,poly".parse::<DictionarySpec>(), Err(SpecError::BadArity { .. })));
        assert!(matches!("state:1".parse::<DictionarySpec>(), Err(SpecError::BadArity { .. })));
    }
}
