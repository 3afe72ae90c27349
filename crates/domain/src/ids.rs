//! Typed, prefixed, time-sortable identifiers (`cmp_…`, `evt_…`, `esc_…`).
//!
//! Why typed: a `ComplaintId` cannot be passed where an `EscalationId` is expected, and a log line
//! or support ticket shows at a glance what an id names. Why time-sortable: ids are UUID v7
//! (48-bit millisecond timestamp first), rendered as the prefix plus 26 lowercase Crockford
//! base32 characters — the ULID text form — so sorting the strings sorts by creation time and
//! database indexes stay append-mostly.
//!
//! Only the canonical form parses (lowercase, exactly 26 characters): then string equality is
//! id equality, and a stored id is byte-identical to the one that was issued.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Why a text is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is another kind of id (or no id at all).
    #[error("expected an id starting with {expected:?}, got {found:?}")]
    WrongPrefix {
        /// The prefix of the kind being parsed.
        expected: &'static str,
        /// The text as received.
        found: String,
    },
    /// The prefix is right but the rest is not 26 lowercase Crockford base32 characters.
    #[error("malformed {prefix} id {found:?}: {reason}")]
    Malformed {
        /// The prefix of the kind being parsed.
        prefix: &'static str,
        /// The text as received.
        found: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Crockford's base32 alphabet in lowercase. Its ASCII order is its numeric order, which is what
/// makes the text form sort like the number.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// 128 bits in 5-bit digits: 26 digits, the first carrying only 3 bits.
const ENCODED_LEN: usize = 26;

fn encode(value: u128) -> String {
    (0..ENCODED_LEN)
        .map(|i| {
            let shift = 5 * (ENCODED_LEN - 1 - i);
            // The mask keeps the index below 32, so the cast and the index are in range.
            char::from(ALPHABET[((value >> shift) & 0x1f) as usize])
        })
        .collect()
}

fn decode(body: &str) -> Result<u128, &'static str> {
    if body.len() != ENCODED_LEN {
        return Err("expected 26 base32 characters after the prefix");
    }
    let mut value: u128 = 0;
    for (i, byte) in body.bytes().enumerate() {
        let digit = ALPHABET
            .iter()
            .position(|&a| a == byte)
            .ok_or("not a lowercase Crockford base32 character")?;
        if i == 0 && digit > 7 {
            return Err("value exceeds 128 bits");
        }
        // `digit` < 32 by construction of `position` over a 32-byte alphabet.
        value = (value << 5) | digit as u128;
    }
    Ok(value)
}

/// Checks `raw` for `prefix` and a canonical body; returns the UUID it encodes.
fn parse_prefixed(prefix: &'static str, raw: &str) -> Result<Uuid, IdError> {
    let body = raw
        .strip_prefix(prefix)
        .ok_or_else(|| IdError::WrongPrefix {
            expected: prefix,
            found: raw.to_owned(),
        })?;
    decode(body)
        .map(Uuid::from_u128)
        .map_err(|reason| IdError::Malformed {
            prefix,
            found: raw.to_owned(),
            reason,
        })
}

/// A UUID v7 whose timestamp is `at` (clamped to the Unix epoch), for ids that should sort by
/// simulated time under a manual or scaled clock.
fn uuid_v7_at(at: DateTime<Utc>) -> Uuid {
    let secs = u64::try_from(at.timestamp()).unwrap_or(0);
    let nanos = at.timestamp_subsec_nanos();
    Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos))
}

fn created_at(uuid: &Uuid) -> Option<DateTime<Utc>> {
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
}

/// Declares one id type. Every id kind gets exactly the same behaviour (svix style).
macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            // Field order matters: the derived `Ord` compares the text first, which sorts by time.
            text: String,
            uuid: Uuid,
        }

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id stamped with the current wall-clock time.
            // A `Default` would silently mint random ids; callers should say `new()`.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self::from_uuid(Uuid::now_v7())
            }

            /// A fresh id stamped with `at` — for ids minted under a manual or scaled clock, so
            /// they sort by the simulated time.
            pub fn new_at(at: DateTime<Utc>) -> Self {
                Self::from_uuid(uuid_v7_at(at))
            }

            /// Wraps an existing UUID (e.g. one read from a database column).
            pub fn from_uuid(uuid: Uuid) -> Self {
                let mut text = String::with_capacity($prefix.len() + ENCODED_LEN);
                text.push_str($prefix);
                text.push_str(&encode(uuid.as_u128()));
                Self { text, uuid }
            }

            /// Parses the canonical text form; a wrong prefix or a malformed body is an error.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                let uuid = parse_prefixed($prefix, raw)?;
                Ok(Self { text: raw.to_owned(), uuid })
            }

            /// The canonical text form, e.g. `cmp_01j9…`.
            pub fn as_str(&self) -> &str {
                &self.text
            }

            /// The underlying UUID.
            pub fn uuid(&self) -> Uuid {
                self.uuid
            }

            /// When the id was minted, read from its UUID v7 timestamp (`None` for other
            /// UUID versions).
            pub fn created_at(&self) -> Option<DateTime<Utc>> {
                created_at(&self.uuid)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.text)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.text
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.text)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// A complaint: the aggregate every event, escalation and revisit belongs to.
    ComplaintId,
    "cmp_"
);
define_id!(
    /// One event in a complaint's history (DOMAIN §8: every change is an event).
    EventId,
    "evt_"
);
define_id!(
    /// One escalation step (DOMAIN §5).
    EscalationId,
    "esc_"
);
define_id!(
    /// One notification to a named person (DOMAIN §5: recorded when sent, seen and acted on).
    NotificationId,
    "ntf_"
);
define_id!(
    /// One planned or performed revisit (DOMAIN §6).
    RevisitId,
    "rvt_"
);
define_id!(
    /// One task given to a department or person (DOMAIN §3: each department's share and deadline).
    TaskId,
    "tsk_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_id_round_trips_through_text() {
        let id = ComplaintId::new();
        assert!(id.as_str().starts_with("cmp_"));
        assert_eq!(id.as_str().len(), 4 + 26);
        assert_eq!(ComplaintId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.to_string().parse::<ComplaintId>().unwrap(), id);
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let ids: Vec<EventId> = (0..200).map(|_| EventId::new()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn new_at_sorts_by_the_given_time_and_reports_it() {
        let early = DateTime::parse_from_rfc3339("2024-05-01T08:00:00Z")
            .unwrap()
            .to_utc();
        let late = DateTime::parse_from_rfc3339("2024-05-01T08:00:01Z")
            .unwrap()
            .to_utc();
        let a = TaskId::new_at(early);
        let b = TaskId::new_at(late);
        assert!(a < b);
        assert_eq!(a.created_at(), Some(early));
    }

    #[test]
    fn text_order_is_numeric_order() {
        let small = ComplaintId::from_uuid(Uuid::from_u128(1));
        let large = ComplaintId::from_uuid(Uuid::from_u128(u128::MAX));
        assert_eq!(small.as_str(), "cmp_00000000000000000000000001");
        assert_eq!(large.as_str(), "cmp_7zzzzzzzzzzzzzzzzzzzzzzzzz");
        assert!(small < large);
        assert_eq!(
            ComplaintId::parse(large.as_str()).unwrap().uuid(),
            Uuid::from_u128(u128::MAX)
        );
    }

    #[test]
    fn wrong_prefix_is_an_error() {
        let esc = EscalationId::new();
        let err = ComplaintId::parse(esc.as_str()).unwrap_err();
        assert!(matches!(
            err,
            IdError::WrongPrefix {
                expected: "cmp_",
                ..
            }
        ));
        assert!(ComplaintId::parse("").is_err());
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [
            "cmp_",
            "cmp_0000000000000000000000000",   // 25 characters
            "cmp_000000000000000000000000000", // 27 characters
            "cmp_0000000000000000000000000u",  // 'u' is not in the alphabet
            "cmp_0000000000000000000000000A",  // uppercase is not canonical
            "cmp_80000000000000000000000000",  // overflows 128 bits
        ] {
            assert!(
                matches!(ComplaintId::parse(bad), Err(IdError::Malformed { .. })),
                "{bad} should be malformed"
            );
        }
    }

    #[test]
    fn serde_is_the_text_form() {
        let id = NotificationId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: NotificationId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<RevisitId>(&json).is_err());
    }
}
