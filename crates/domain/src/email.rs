//! Customer e-mail addresses, checked just enough to be worth sending to.
//!
//! DOMAIN §1: the customer's preferred channel for answers may be e-mail [004 §4.1]; then an
//! address is needed and must at least look like one. Full RFC 5322 validation is not the goal
//! (the only real test is delivery); catching typos at intake is: one `@`, something before it,
//! a dotted domain after it, no spaces. Internationalised addresses (`张三@例子.中国`) pass.

use std::fmt;

/// RFC 5321's limit on a whole address.
const MAX_LEN: usize = 254;
/// RFC 5321's limit on the part before the `@`.
const MAX_LOCAL_LEN: usize = 64;

/// An e-mail address that passed the basic checks, trimmed, otherwise as given.
/// `Debug` prints it masked (see [`crate::personal`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email")
            .field(&crate::personal::mask(&self.0))
            .finish()
    }
}

/// Why a text is not an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing but whitespace.
    #[error("e-mail address is empty")]
    Empty,
    /// Longer than RFC 5321 allows.
    #[error("e-mail address is longer than {MAX_LEN} characters")]
    TooLong,
    /// Whitespace or a control character inside.
    #[error("e-mail address contains a space or control character")]
    Whitespace,
    /// Not exactly one `@`.
    #[error("e-mail address needs exactly one '@'")]
    At,
    /// Nothing (or too much) before the `@`.
    #[error("e-mail address needs 1 to {MAX_LOCAL_LEN} characters before the '@'")]
    Local,
    /// The part after the `@` is not a dotted domain name.
    #[error("e-mail address needs a domain like example.com after the '@'")]
    Domain,
}

impl Email {
    /// Checks and keeps `raw`, trimmed.
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(EmailError::Empty);
        }
        if text.chars().count() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Whitespace);
        }
        let mut parts = text.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::At);
        };
        if local.is_empty() || local.chars().count() > MAX_LOCAL_LEN {
            return Err(EmailError::Local);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(EmailError::Domain);
        }
        Ok(Email(text.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Email {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        Email::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_international_addresses() {
        for ok in [
            "li.lei@example.com",
            " wang+complaints@mail.example.cn ",
            "张三@例子.中国",
            "a@b.co",
        ] {
            let email = Email::parse(ok).unwrap();
            assert_eq!(email.as_str(), ok.trim());
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(Email::parse(" "), Err(EmailError::Empty));
        assert_eq!(
            Email::parse("li lei@example.com"),
            Err(EmailError::Whitespace)
        );
        assert_eq!(Email::parse("li.example.com"), Err(EmailError::At));
        assert_eq!(Email::parse("a@b@example.com"), Err(EmailError::At));
        assert_eq!(Email::parse("@example.com"), Err(EmailError::Local));
        assert_eq!(Email::parse("li@localhost"), Err(EmailError::Domain));
        assert_eq!(Email::parse("li@example..com"), Err(EmailError::Domain));
        assert_eq!(Email::parse("li@-example.com"), Err(EmailError::Domain));
        assert_eq!(Email::parse("li@example.com."), Err(EmailError::Domain));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(EmailError::Local));
    }
}
