//! Customer and contact phone numbers, normalised once at the edge.
//!
//! DOMAIN §1 makes the contact phone a required field of the record, and answers go back by phone
//! or SMS (§3, §6). Numbers arrive however people type them — `138 0013 8000`, `010-12345678`,
//! `+86 (0)755 …`, `0086…` — so they are normalised to E.164 (`+8613800138000`) whenever the
//! number can be placed. Numbers that cannot be placed (short service numbers such as `10086` or
//! `95588`, or numbers of unknown shape) are kept as bare digits and say so via
//! [`Phone::is_e164`], rather than being rejected: a complaint must never be lost because its
//! callback number looked unusual.

use std::fmt;

/// Fewest digits kept for a number that cannot be placed (`10086` has five).
const MIN_LOCAL_DIGITS: usize = 5;
/// E.164 allows at most 15 digits; nothing longer is a phone number.
const MAX_DIGITS: usize = 15;
/// Fewest digits (country code included) accepted after a `+`.
const MIN_E164_DIGITS: usize = 8;

/// A normalised phone number: `+<digits>` (E.164) or bare digits that could not be placed.
/// `Debug` prints it masked (see [`crate::personal`]); `Display` prints it whole.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone {
    value: String,
}

/// Why a text is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but separators or whitespace.
    #[error("phone number is empty")]
    Empty,
    /// A letter or symbol that is not a digit or an accepted separator (space - . ( )).
    #[error(
        "phone number contains {ch:?}; only digits, a leading +, spaces, dashes, dots and parentheses are allowed"
    )]
    InvalidCharacter {
        /// The offending character.
        ch: char,
    },
    /// A `+` anywhere but at the start.
    #[error("'+' may only start a phone number")]
    MisplacedPlus,
    /// Too few digits to be any reachable number.
    #[error("phone number has {digits} digits; at least {min} are needed")]
    TooShort {
        /// Digits found.
        digits: usize,
        /// Fewest accepted.
        min: usize,
    },
    /// More digits than E.164 allows.
    #[error("phone number has {digits} digits; at most {max} are allowed")]
    TooLong {
        /// Digits found.
        digits: usize,
        /// Most accepted.
        max: usize,
    },
    /// An international number (`+…` or `00…`) starting with 0: country codes never do.
    #[error("an international number cannot start with a 0 after the + or 00")]
    BadCountryCode,
}

impl Phone {
    /// Parses and normalises a phone number; see the module doc for the rules.
    pub fn parse(raw: &str) -> Result<Phone, PhoneError> {
        let (plus, digits) = clean(raw)?;
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }
        if plus {
            return international(&digits);
        }
        if let Some(rest) = digits.strip_prefix("00") {
            return international(rest);
        }
        if is_cn_mobile(&digits) {
            return Ok(e164(&format!("86{digits}")));
        }
        if let Some(mobile) = digits.strip_prefix("86").filter(|m| is_cn_mobile(m)) {
            return Ok(e164(&format!("86{mobile}")));
        }
        if let Some(landline) = digits.strip_prefix('0').filter(|_| is_cn_landline(&digits)) {
            return Ok(e164(&format!("86{landline}")));
        }
        check_length(&digits, MIN_LOCAL_DIGITS)?;
        Ok(Phone { value: digits })
    }

    /// The normalised text: `+8613800138000` or `10086`.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// True when the number is in E.164 form (`+` and country code). False for numbers kept as
    /// bare digits because they could not be placed, e.g. `10086`; SMS gateways usually need
    /// E.164.
    pub fn is_e164(&self) -> bool {
        self.value.starts_with('+')
    }

    /// True for a mainland-China mobile number (`+86 1[3-9]…`): the numbers that can take SMS.
    pub fn is_cn_mobile(&self) -> bool {
        self.value.strip_prefix("+86").is_some_and(is_cn_mobile)
    }

    /// The number with its middle four digits hidden, for logs and screens that need not show it
    /// whole: `+86138****8000`. Numbers of eight digits or fewer keep only their last two.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.value.chars().collect();
        let digit_count = chars.iter().filter(|c| c.is_ascii_digit()).count();
        let keep_tail = if digit_count > 8 { 4 } else { 2 };
        let hide = if digit_count > 8 {
            4
        } else {
            chars.len().saturating_sub(keep_tail)
        };
        let hide_from = chars.len().saturating_sub(keep_tail + hide);
        chars
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if i >= hide_from && i < hide_from + hide {
                    '*'
                } else {
                    c
                }
            })
            .collect()
    }
}

/// Strips separators, maps full-width digits and punctuation (common in Chinese input methods)
/// to ASCII, and returns whether a leading `+` was present plus the digits.
fn clean(raw: &str) -> Result<(bool, String), PhoneError> {
    let mut plus = false;
    let mut digits = String::with_capacity(raw.len());
    for ch in raw.chars() {
        let ch = fold_full_width(ch);
        match ch {
            '0'..='9' => digits.push(ch),
            '+' if digits.is_empty() && !plus => plus = true,
            '+' => return Err(PhoneError::MisplacedPlus),
            '-' | '.' | '(' | ')' => {}
            c if c.is_whitespace() => {}
            c => return Err(PhoneError::InvalidCharacter { ch: c }),
        }
    }
    Ok((plus, digits))
}

/// Full-width forms (U+FF01–U+FF5E) of ASCII, and the ideographic space, to their ASCII forms.
fn fold_full_width(ch: char) -> char {
    match ch {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
        '\u{3000}' => ' ',
        other => other,
    }
}

/// `+<digits>` or `00<digits>`. `+86 (0)10 …` keeps its trunk 0 in writing only, so a 0 right
/// after the Chinese country code is dropped.
fn international(digits: &str) -> Result<Phone, PhoneError> {
    if digits.starts_with('0') {
        return Err(PhoneError::BadCountryCode);
    }
    let digits = match digits.strip_prefix("860") {
        Some(rest) => format!("86{rest}"),
        None => digits.to_owned(),
    };
    check_length(&digits, MIN_E164_DIGITS)?;
    Ok(e164(&digits))
}

fn check_length(digits: &str, min: usize) -> Result<(), PhoneError> {
    let n = digits.len();
    if n < min {
        Err(PhoneError::TooShort { digits: n, min })
    } else if n > MAX_DIGITS {
        Err(PhoneError::TooLong {
            digits: n,
            max: MAX_DIGITS,
        })
    } else {
        Ok(())
    }
}

fn e164(digits: &str) -> Phone {
    Phone {
        value: format!("+{digits}"),
    }
}

/// Eleven digits, `1` then `3`–`9`: the mainland mobile ranges (13x–19x).
fn is_cn_mobile(digits: &str) -> bool {
    let b = digits.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
}

/// A trunk `0`, a 2–3 digit area code and a 7–8 digit local number: 10 to 12 digits in all
/// (`010 1234 5678`, `0755 1234 5678`, `0571 888 8888`), never `00`.
fn is_cn_landline(digits: &str) -> bool {
    digits.starts_with('0') && !digits.starts_with("00") && (10..=12).contains(&digits.len())
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Phone")
            .field(&crate::personal::mask(&self.value))
            .finish()
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl std::str::FromStr for Phone {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phone::parse(s)
    }
}

impl AsRef<str> for Phone {
    fn as_ref(&self) -> &str {
        &self.value
    }
}

impl serde::Serialize for Phone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.value)
    }
}

/// Deserialising re-parses, so a stored value that was hand-edited into garbage is refused.
/// Normalised values parse to themselves.
impl<'de> serde::Deserialize<'de> for Phone {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        Phone::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &str) -> String {
        Phone::parse(raw).unwrap().as_str().to_owned()
    }

    #[test]
    fn chinese_mobiles_become_e164() {
        assert_eq!(p("13800138000"), "+8613800138000");
        assert_eq!(p("138 0013 8000"), "+8613800138000");
        assert_eq!(p("138-0013-8000"), "+8613800138000");
        assert_eq!(p("8613800138000"), "+8613800138000");
        assert_eq!(p("+86 138 0013 8000"), "+8613800138000");
        assert_eq!(p("0086 13800138000"), "+8613800138000");
        assert_eq!(p("１３８００１３８０００"), "+8613800138000");
        assert!(Phone::parse("13800138000").unwrap().is_cn_mobile());
    }

    #[test]
    fn chinese_landlines_drop_the_trunk_zero() {
        assert_eq!(p("010-12345678"), "+861012345678");
        assert_eq!(p("0755 1234 5678"), "+8675512345678");
        assert_eq!(p("(0571) 888.8888"), "+865718888888");
        assert_eq!(p("+86 (0)10 1234 5678"), "+861012345678");
        assert!(!Phone::parse("010-12345678").unwrap().is_cn_mobile());
    }

    #[test]
    fn international_numbers_are_kept() {
        assert_eq!(p("+1 (415) 555-2671"), "+14155552671");
        assert_eq!(p("0044 20 7946 0958"), "+442079460958");
        assert_eq!(p("+85221234567"), "+85221234567");
        assert!(Phone::parse("+14155552671").unwrap().is_e164());
    }

    #[test]
    fn unplaceable_numbers_are_kept_as_digits() {
        for raw in ["10086", "95588", "12345678", "400-050-0827"] {
            let phone = Phone::parse(raw).unwrap();
            assert!(!phone.is_e164(), "{raw}");
            assert!(phone.as_str().bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(p("400-050-0827"), "4000500827");
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(Phone::parse(""), Err(PhoneError::Empty));
        assert_eq!(Phone::parse(" - ( ) "), Err(PhoneError::Empty));
        assert_eq!(
            Phone::parse("138abc"),
            Err(PhoneError::InvalidCharacter { ch: 'a' })
        );
        assert_eq!(
            Phone::parse("13800138000 ext 12"),
            Err(PhoneError::InvalidCharacter { ch: 'e' })
        );
        assert_eq!(Phone::parse("138+00"), Err(PhoneError::MisplacedPlus));
        assert_eq!(Phone::parse("++86138"), Err(PhoneError::MisplacedPlus));
        assert_eq!(
            Phone::parse("1234"),
            Err(PhoneError::TooShort { digits: 4, min: 5 })
        );
        assert_eq!(
            Phone::parse("+8612"),
            Err(PhoneError::TooShort { digits: 4, min: 8 })
        );
        assert_eq!(
            Phone::parse("1234567890123456"),
            Err(PhoneError::TooLong {
                digits: 16,
                max: 15
            })
        );
        assert_eq!(Phone::parse("+0123456789"), Err(PhoneError::BadCountryCode));
        assert_eq!(
            Phone::parse("000123456789"),
            Err(PhoneError::BadCountryCode)
        );
        let message = Phone::parse("138abc").unwrap_err().to_string();
        assert!(message.contains("'a'"), "{message}");
    }

    #[test]
    fn normalised_values_parse_to_themselves() {
        for raw in [
            "13800138000",
            "010-12345678",
            "10086",
            "+14155552671",
            "0755 1234 5678",
        ] {
            let once = Phone::parse(raw).unwrap();
            assert_eq!(Phone::parse(once.as_str()).unwrap(), once, "{raw}");
        }
    }

    #[test]
    fn masks_the_middle() {
        assert_eq!(
            Phone::parse("13800138000").unwrap().masked(),
            "+86138****8000"
        );
        assert_eq!(
            Phone::parse("010-12345678").unwrap().masked(),
            "+8610****5678"
        );
        assert_eq!(Phone::parse("10086").unwrap().masked(), "***86");
    }

    #[test]
    fn serde_is_the_normalised_text() {
        let phone = Phone::parse("138 0013 8000").unwrap();
        assert_eq!(
            serde_json::to_string(&phone).unwrap(),
            r#""+8613800138000""#
        );
        let back: Phone = serde_json::from_str(r#""+8613800138000""#).unwrap();
        assert_eq!(back, phone);
        assert!(serde_json::from_str::<Phone>(r#""call me""#).is_err());
    }
}
