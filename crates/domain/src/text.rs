//! Text forms of the small closed vocabularies: channels, emotions, classes, customer types…
//!
//! Edges (gRPC, NATS payloads, the CLI) receive these as strings. One macro gives every such
//! enum the same behaviour, so no edge invents its own spelling: a stable snake_case name,
//! case-insensitive parsing (`-` accepted for `_`) whose error lists the allowed values,
//! `Display` / `FromStr`, and serde as that same string.

/// A word that is not one of the allowed values of a vocabulary.
///
/// Carries the allowed values so an edge can show the caller what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}; allowed: {}", allowed.join(", "))]
pub struct UnknownValue {
    /// What was being parsed, e.g. "channel".
    pub kind: &'static str,
    /// The text as received.
    pub value: String,
    /// Every accepted spelling.
    pub allowed: &'static [&'static str],
}

/// Whether `raw` names `canonical`: trimmed, ASCII case-insensitive, `-` or space for `_`.
pub(crate) fn token_matches(raw: &str, canonical: &str) -> bool {
    let raw = raw.trim();
    raw.len() == canonical.len()
        && raw.bytes().zip(canonical.bytes()).all(|(r, c)| {
            let r = match r {
                b'-' | b' ' => b'_',
                other => other.to_ascii_lowercase(),
            };
            r == c.to_ascii_lowercase()
        })
}

/// Declares a closed vocabulary: the enum, its canonical spellings, and the shared behaviour
/// described in the module doc.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The canonical spelling of every value, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The canonical (stable, stored) spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the canonical spelling, case-insensitively; `-` is accepted for `_`.
            pub fn parse(raw: &str) -> Result<Self, $crate::text::UnknownValue> {
                $(
                    if $crate::text::token_matches(raw, $text) {
                        return Ok($name::$variant);
                    }
                )+
                Err($crate::text::UnknownValue {
                    kind: $kind,
                    value: raw.to_owned(),
                    allowed: Self::NAMES,
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::text::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
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
pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    text_enum! {
        enum Colour ("colour") {
            Red => "red",
            DarkBlue => "dark_blue",
        }
    }

    #[test]
    fn parses_case_insensitively_with_dash_or_space() {
        assert_eq!(Colour::parse("RED"), Ok(Colour::Red));
        assert_eq!(Colour::parse(" Dark-Blue "), Ok(Colour::DarkBlue));
        assert_eq!(Colour::ALL, &[Colour::Red, Colour::DarkBlue]);
        assert_eq!(Colour::parse("dark blue"), Ok(Colour::DarkBlue));
    }

    #[test]
    fn unknown_value_lists_allowed_values() {
        let err = Colour::parse("green").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown colour "green"; allowed: red, dark_blue"#
        );
    }

    #[test]
    fn serde_uses_canonical_spelling() {
        let json = serde_json::to_string(&Colour::DarkBlue).unwrap();
        assert_eq!(json, r#""dark_blue""#);
        let back: Colour = serde_json::from_str(r#""DARK_BLUE""#).unwrap();
        assert_eq!(back, Colour::DarkBlue);
        assert!(serde_json::from_str::<Colour>(r#""green""#).is_err());
    }
}
