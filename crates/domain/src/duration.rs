//! Human-written durations for the policy file: `8h`, `30m`, `45s`, `3d`, `1d12h`, `500ms`.
//!
//! Every time limit of DOMAIN §4 is a policy setting (DOMAIN: "every number here is a default,
//! not a constant in code"), and people editing the policy think in hours and days, not seconds.
//! [`human`] is the serde adapter the policy uses (`completion = "8h"`); [`describe`] renders a
//! duration in words for what the customer is told (DOMAIN §1: the expected time limit and the
//! reason for it).

use chrono::Duration;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing but whitespace.
    #[error("duration is empty")]
    Empty,
    /// Not a sequence of `<number><unit>` parts.
    #[error("duration {input:?} is malformed: {reason}; write e.g. 8h, 30m, 1d12h, 500ms")]
    Malformed {
        /// The text as received.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A unit other than d, h, m, s, ms.
    #[error("duration {input:?} has unknown unit {unit:?}; use d, h, m, s or ms")]
    UnknownUnit {
        /// The text as received.
        input: String,
        /// The unit found.
        unit: String,
    },
    /// Too large to represent.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses `<number><unit>` parts, summed: `1d12h` is 36 hours. Units: `d`, `h`, `m`, `s`, `ms`.
/// Whitespace between parts is allowed; each unit may appear once; a bare number (no unit) and a
/// sign are refused, because `"8"` could mean hours or seconds and a negative limit is meaningless.
pub fn parse(raw: &str) -> Result<Duration, DurationError> {
    let input = raw.trim();
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    let malformed = |reason| DurationError::Malformed {
        input: raw.to_owned(),
        reason,
    };
    let overflow = || DurationError::Overflow(raw.to_owned());

    let mut total = Duration::zero();
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(malformed("expected a number"));
        }
        let (number, after) = rest.split_at(digits_end);
        let unit_end = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        if unit.is_empty() {
            return Err(malformed("a number needs a unit"));
        }
        let unit = unit.to_ascii_lowercase();
        let Some(&(unit_name, millis_per_unit)) = UNITS.iter().find(|(name, _)| *name == unit)
        else {
            return Err(DurationError::UnknownUnit {
                input: raw.to_owned(),
                unit,
            });
        };
        if seen.contains(&unit_name) {
            return Err(malformed("a unit appears twice"));
        }
        seen.push(unit_name);
        let n: i64 = number.parse().map_err(|_| overflow())?;
        let millis_per_unit = i64::try_from(millis_per_unit).map_err(|_| overflow())?;
        let part = n
            .checked_mul(millis_per_unit)
            .and_then(Duration::try_milliseconds)
            .ok_or_else(overflow)?;
        total = total.checked_add(&part).ok_or_else(overflow)?;
        rest = after.trim_start();
    }
    Ok(total)
}

/// The compact form [`parse`] reads back: `1d12h`, `8h`, `500ms`, `0s`.
pub fn format(duration: Duration) -> String {
    let mut out = String::new();
    if duration < Duration::zero() {
        out.push('-');
    }
    let mut ms = duration.num_milliseconds().unsigned_abs();
    for (unit, size) in UNITS {
        let n = ms / size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            ms %= size;
        }
    }
    if out.is_empty() || out == "-" {
        out = "0s".to_owned();
    }
    out
}

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// In words, for people: `1 day 12 hours`, `8 hours`, `30 minutes`, `1 second`.
pub fn describe(duration: Duration) -> String {
    const NAMES: [(&str, &str); 5] = [
        ("day", "days"),
        ("hour", "hours"),
        ("minute", "minutes"),
        ("second", "seconds"),
        ("millisecond", "milliseconds"),
    ];
    let mut ms = duration.num_milliseconds().unsigned_abs();
    let mut parts = Vec::new();
    for ((_, size), (one, many)) in UNITS.iter().zip(NAMES) {
        let n = ms / size;
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
            ms %= size;
        }
    }
    if parts.is_empty() {
        "no time".to_owned()
    } else {
        parts.join(" ")
    }
}

/// Serde adapter: `#[serde(with = "crate::duration::human")]` reads and writes `"8h"`.
pub mod human {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the compact form, e.g. `"1d12h"`.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format(*duration))
    }

    /// Reads the compact form, e.g. `"1d12h"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        super::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_combined_units() {
        assert_eq!(parse("8h").unwrap(), Duration::hours(8));
        assert_eq!(parse("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse("45s").unwrap(), Duration::seconds(45));
        assert_eq!(parse("3d").unwrap(), Duration::days(3));
        assert_eq!(parse("1d12h").unwrap(), Duration::hours(36));
        assert_eq!(parse("1d 12h").unwrap(), Duration::hours(36));
        assert_eq!(parse("500ms").unwrap(), Duration::milliseconds(500));
        assert_eq!(parse("1m30s").unwrap(), Duration::seconds(90));
        assert_eq!(parse(" 2H ").unwrap(), Duration::hours(2));
        assert_eq!(parse("0s").unwrap(), Duration::zero());
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(parse(" "), Err(DurationError::Empty));
        for bad in ["8", "h", "-8h", "8h-", "1.5h", "8h8h", "1h 1h"] {
            assert!(
                matches!(parse(bad), Err(DurationError::Malformed { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse("3w"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse("8hours"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse("99999999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse("9999999999999d"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn format_round_trips() {
        for text in ["8h", "1d12h", "500ms", "3d", "1h30m", "0s", "2m5s10ms"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }

    #[test]
    fn describes_in_words() {
        assert_eq!(describe(Duration::hours(36)), "1 day 12 hours");
        assert_eq!(describe(Duration::hours(8)), "8 hours");
        assert_eq!(describe(Duration::minutes(1)), "1 minute");
        assert_eq!(describe(Duration::zero()), "no time");
    }

    #[test]
    fn serde_adapter_reads_and_writes_text() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Limit {
            #[serde(with = "human")]
            completion: Duration,
        }
        let limit: Limit = toml::from_str(r#"completion = "1d12h""#).unwrap();
        assert_eq!(limit.completion, Duration::hours(36));
        assert_eq!(
            toml::to_string(&limit).unwrap().trim(),
            r#"completion = "1d12h""#
        );
        assert!(toml::from_str::<Limit>(r#"completion = "soon""#).is_err());
    }
}
