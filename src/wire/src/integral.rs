//! Integers as JSON writes them: JSON has one number type, and JSON Schema's `integer`
//! admits `406.0`, so an integer field takes any number with no fractional part that fits
//! the field (`406`, `406.0`, `4.06e2`), and refuses `406.5`, negatives and overflow with
//! serde's usual messages.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// The largest integer a double holds exactly; larger integral doubles are refused, since
/// the number the client meant cannot be known.
const EXACT: f64 = 9_007_199_254_740_992.0;

struct Integral<T>(PhantomData<T>);

impl<'de, T: TryFrom<u64>> Visitor<'de> for Integral<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &"an integer in range"))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        let v = u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))?;
        self.visit_u64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v.fract() != 0.0 || !(0.0..=EXACT).contains(&v) {
            return Err(E::invalid_value(de::Unexpected::Float(v), &self));
        }
        self.visit_u64(v as u64)
    }
}

struct OptionalIntegral<T>(PhantomData<T>);

impl<'de, T: TryFrom<u64>> Visitor<'de> for OptionalIntegral<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        required(d).map(Some)
    }
}

/// An integer field (`#[serde(deserialize_with = "integral::required")]`).
pub fn required<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(Integral(PhantomData))
}

/// An optional integer field (`#[serde(default, deserialize_with = "integral::optional")]`).
pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_option(OptionalIntegral(PhantomData))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Doc {
        #[serde(deserialize_with = "super::required")]
        n: usize,
        #[serde(default, deserialize_with = "super::optional")]
        m: Option<u32>,
    }

    fn parse(text: &str) -> Result<Doc, String> {
        serde_json::from_str::<Doc>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn integral_numbers_are_integers() {
        let doc = parse(r#"{"n": 406.0, "m": 4.06e2}"#).unwrap();
        assert_eq!((doc.n, doc.m), (406, Some(406)));
        assert_eq!(parse(r#"{"n": 7}"#).unwrap().m, None);
        assert_eq!(parse(r#"{"n": 7, "m": null}"#).unwrap().m, None);
        assert_eq!(parse(r#"{"n": 9007199254740992.0}"#).unwrap().n, 9_007_199_254_740_992);
    }

    #[test]
    fn fractions_negatives_overflow_and_other_types_are_refused() {
        for (text, expected) in [
            (r#"{"n": 406.5}"#, "406.5"),
            (r#"{"n": -1}"#, "-1"),
            (r#"{"n": -1.0}"#, "-1"),
            (r#"{"n": 1e300}"#, "1e+300"),
            (r#"{"n": 7, "m": 4294967296}"#, "4294967296"),
            (r#"{"n": "7"}"#, "string"),
            (r#"{"n": true}"#, "boolean"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
