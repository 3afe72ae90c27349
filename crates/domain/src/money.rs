//! Amounts of money as integer fen (1 yuan = 100 fen), never floating point.
//!
//! DOMAIN §9: "3000.00 is B, 3000.01 is A. Money is integer fen, never floating point." A float
//! cannot hold 0.01 exactly, and a class boundary that depends on rounding is a dispute waiting
//! to happen. Parsing goes straight from decimal text to fen without passing through `f64`.

use std::fmt;
use std::iter::Sum;
use std::ops::Add;

use serde::{Deserialize, Serialize};

/// An amount in fen. Serialised as the integer number of fen.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

/// Why a text is not an amount of yuan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Nothing but whitespace.
    #[error("amount is empty")]
    Empty,
    /// A leading minus: amounts entered by people (losses, remedies) are never negative.
    #[error("amount {0:?} is negative")]
    Negative(String),
    /// Not `digits[.d[d]]`.
    #[error("amount {0:?} is not a decimal number of yuan like 3000 or 3000.01")]
    Malformed(String),
    /// More than two digits after the point: fen is the smallest unit.
    #[error("amount {0:?} has more than two decimal places")]
    TooPrecise(String),
    /// Does not fit in 64-bit fen.
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

impl Money {
    /// Nothing.
    pub const ZERO: Money = Money(0);

    /// An amount of `fen` (1/100 yuan).
    pub const fn from_fen(fen: i64) -> Self {
        Money(fen)
    }

    /// The amount in fen.
    pub const fn fen(self) -> i64 {
        self.0
    }

    /// True for a strictly positive amount.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Parses exact decimal yuan: `3000`, `3000.0`, `3000.01`; surrounding whitespace is ignored.
    /// At most two fraction digits; no sign, exponent, thousands separator or currency symbol.
    pub fn parse_yuan(raw: &str) -> Result<Self, MoneyError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(MoneyError::Empty);
        }
        if text.starts_with('-') {
            return Err(MoneyError::Negative(raw.to_owned()));
        }
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
            return Err(MoneyError::Malformed(raw.to_owned()));
        }
        let fraction = fraction.unwrap_or("");
        if fraction.len() > 2 {
            return Err(MoneyError::TooPrecise(raw.to_owned()));
        }
        let overflow = || MoneyError::Overflow(raw.to_owned());
        let yuan: i64 = whole.parse().map_err(|_| overflow())?;
        // "5" after the point is 50 fen, "05" is 5 fen.
        let fen: i64 = format!("{fraction:0<2}").parse().map_err(|_| overflow())?;
        yuan.checked_mul(100)
            .and_then(|f| f.checked_add(fen))
            .map(Money)
            .ok_or_else(overflow)
    }

    /// `self × factor`, saturating: penalty multipliers come from configuration and a typo there
    /// must not crash a service.
    pub const fn saturating_mul(self, factor: i64) -> Self {
        Money(self.0.saturating_mul(factor))
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: Money) -> Option<Self> {
        match self.0.checked_add(other.0) {
            Some(fen) => Some(Money(fen)),
            None => None,
        }
    }
}

/// Saturating, for the same reason as [`Money::saturating_mul`]: sums of fines are far below
/// `i64::MAX` fen (92 trillion yuan); reaching it means bad input, not a reason to panic.
impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

/// Yuan with exactly two decimals: `3000.01`, `0.50`, `-12.00`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl std::str::FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse_yuan(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(Money::parse_yuan("3000.01").unwrap().fen(), 300_001);
        assert_eq!(Money::parse_yuan("3000").unwrap().fen(), 300_000);
        assert_eq!(Money::parse_yuan("3000.0").unwrap().fen(), 300_000);
        assert_eq!(Money::parse_yuan("0.5").unwrap().fen(), 50);
        assert_eq!(Money::parse_yuan("0.05").unwrap().fen(), 5);
        assert_eq!(Money::parse_yuan(" 12.34 ").unwrap().fen(), 1234);
        assert_eq!(Money::parse_yuan("0").unwrap(), Money::ZERO);
    }

    #[test]
    fn rejects_what_is_not_an_amount() {
        assert_eq!(Money::parse_yuan("  "), Err(MoneyError::Empty));
        assert!(matches!(
            Money::parse_yuan("-1"),
            Err(MoneyError::Negative(_))
        ));
        for bad in [
            "abc", "1.", ".5", "1,000", "1e3", "+1", "¥5", "1.2.3", "1 000", "0x10",
        ] {
            assert!(
                matches!(Money::parse_yuan(bad), Err(MoneyError::Malformed(_))),
                "{bad} should be malformed"
            );
        }
        assert!(matches!(
            Money::parse_yuan("0.001"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Money::parse_yuan("92233720368547758.08"),
            Err(MoneyError::Overflow(_))
        ));
        assert!(matches!(
            Money::parse_yuan("99999999999999999999999"),
            Err(MoneyError::Overflow(_))
        ));
        assert_eq!(
            Money::parse_yuan("92233720368547758.07").unwrap().fen(),
            i64::MAX
        );
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Money::from_fen(300_001).to_string(), "3000.01");
        assert_eq!(Money::from_fen(50).to_string(), "0.50");
        assert_eq!(Money::from_fen(0).to_string(), "0.00");
        assert_eq!(Money::from_fen(-1200).to_string(), "-12.00");
        assert_eq!(
            Money::from_fen(i64::MIN).to_string(),
            "-92233720368547758.08"
        );
    }

    #[test]
    fn display_round_trips_through_parse() {
        for fen in [0, 1, 9, 10, 99, 100, 300_000, 300_001, i64::MAX] {
            let m = Money::from_fen(fen);
            assert_eq!(Money::parse_yuan(&m.to_string()).unwrap(), m);
        }
    }

    #[test]
    fn orders_adds_and_serialises_as_fen() {
        assert!(Money::from_fen(300_001) > Money::from_fen(300_000));
        assert_eq!(Money::from_fen(1) + Money::from_fen(2), Money::from_fen(3));
        assert_eq!(
            Money::from_fen(i64::MAX) + Money::from_fen(1),
            Money::from_fen(i64::MAX)
        );
        let total: Money = [5000, 10_000].into_iter().map(Money::from_fen).sum();
        assert_eq!(total, Money::from_fen(15_000));
        assert_eq!(
            serde_json::to_string(&Money::from_fen(300_001)).unwrap(),
            "300001"
        );
        assert_eq!(
            serde_json::from_str::<Money>("5000").unwrap(),
            Money::from_fen(5000)
        );
    }
}
