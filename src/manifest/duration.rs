//! Durations written the way Docker and Go write them: `90s`, `5m`, `1h30m`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The pattern every duration matches (also published in the JSON Schemas).
pub const PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";

/// A span of time written as a string of number–unit pairs: `500ms`, `60s`,
/// `5m`, `1h30m`, `1d`. Units: `ms`, `s`, `m`, `h`, `d` (24 hours). Keeps the
/// text as written for display.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Duration {
    text: String,
    value: std::time::Duration,
}

impl Duration {
    /// The duration as a [`std::time::Duration`].
    #[must_use]
    pub fn get(&self) -> std::time::Duration {
        self.value
    }

    /// The text as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A duration of whole seconds, displayed as `<n>s`.
    #[must_use]
    pub fn from_secs(secs: u64) -> Self {
        Duration {
            text: format!("{secs}s"),
            value: std::time::Duration::from_secs(secs),
        }
    }

    /// A duration of whole minutes, displayed as `<n>m`.
    #[must_use]
    pub fn from_mins(mins: u64) -> Self {
        Duration {
            text: format!("{mins}m"),
            value: std::time::Duration::from_secs(mins * 60),
        }
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{text}`: {reason} (write it like `90s`, `5m` or `1h30m`)")]
pub struct ParseError {
    text: String,
    reason: &'static str,
}

impl FromStr for Duration {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ParseError {
            text: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("empty"));
        }
        let mut total: u128 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(fail("expected a number"));
            }
            let number: u128 = rest[..digits]
                .parse()
                .map_err(|_| fail("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let millis_per_unit: u128 = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "" => return Err(fail("missing unit")),
                _ => return Err(fail("unknown unit; use ms, s, m, h or d")),
            };
            rest = &rest[unit_len..];
            total = number
                .checked_mul(millis_per_unit)
                .and_then(|n| total.checked_add(n))
                .ok_or_else(|| fail("too large"))?;
        }
        let millis = u64::try_from(total).map_err(|_| fail("too large"))?;
        Ok(Duration {
            text: text.to_string(),
            value: std::time::Duration::from_millis(millis),
        })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like `90s`, `5m` or `1h30m`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write `{v}s` (or `{v}m`, `{v}h`)"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration `{v}`: must not be negative"
                )))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: number–unit pairs such as `90s`, `5m`, `1h30m` (units ms, s, m, h, d).",
            "type": "string",
            "pattern": PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_add_up_their_parts() {
        let d: Duration = "1h30m".parse().unwrap();
        assert_eq!(d.get().as_secs(), 5400);
        assert_eq!(d.to_string(), "1h30m");
        assert_eq!("500ms".parse::<Duration>().unwrap().get().as_millis(), 500);
        assert_eq!("1d".parse::<Duration>().unwrap().get().as_secs(), 86_400);
        assert_eq!("60s".parse::<Duration>().unwrap(), Duration::from_secs(60));
    }

    #[test]
    fn durations_without_units_or_with_garbage_are_rejected() {
        for bad in [
            "",
            "5",
            "m5",
            "5x",
            "1h 30m",
            "-5s",
            "99999999999999999999999h",
            "5.5s",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn a_bare_number_in_yaml_asks_for_a_unit() {
        let err = serde_json::from_value::<Duration>(serde_json::json!(300)).unwrap_err();
        assert!(err.to_string().contains("write `300s`"), "{err}");
    }
}
