//! The policy: every number and list the rules use, with DOMAIN.md's values as defaults.
//!
//! DOMAIN.md: "the system makes each rule **configurable** and ships the values below as its
//! default policy: every number here is a default, not a constant in code." So no rule in this
//! crate hard-codes a limit, an amount or a threshold; it reads them from a [`Policy`].
//!
//! The defaults live twice, deliberately: in the `Default` impls below (so any serde source —
//! a TOML file, a service's layered configuration — can name only what it changes, thanks to
//! `#[serde(default)]` on every table) and in the commented file `policy/default.toml`
//! ([`DEFAULT_POLICY_TOML`]), which is what operators read and copy. Tests keep the two equal
//! and check the file names every setting. Unknown keys are refused, so a typo in an override
//! is an error, not a silently ignored setting.
//!
//! Arrays (categories, rate bands, ladder roles, revisit classes) are replaced whole by an
//! override: there is no sensible way to merge two lists of bands.
//!
//! One file per table, named for the rules it configures: [`calendar`], [`limits`],
//! [`classification`], [`escalation`], [`penalties`], [`complaint_rate`], [`revisit`],
//! [`fields`], [`categories`]; this module holds the whole [`Policy`] and its validation.

use std::collections::HashSet;

use chrono::{Duration, FixedOffset, NaiveDate, NaiveTime, Offset, Weekday};
use serde::{Deserialize, Serialize};

use crate::classification::Class;
use crate::duration::human;
use crate::money::Money;

/// The commented default policy file, embedded so the shipped defaults are always at hand
/// (e.g. `redress policy print-default`).
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../policy/default.toml");

/// Why a policy was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML, an unknown key, or a value of the wrong shape.
    #[error("policy is not valid TOML for this schema: {0}")]
    Parse(#[from] toml::de::Error),
    /// Well-formed but inconsistent; every problem is listed.
    #[error("policy is inconsistent: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Could not be written back as TOML.
    #[error("policy could not be written as TOML: {0}")]
    Serialize(#[from] toml::ser::Error),
}

/// All configurable rules. Build it with [`Policy::default`] or [`Policy::from_toml_str`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Time zone and business-day end, for "same day" limits.
    pub calendar: Calendar,
    /// Acceptance, feedback, completion and intermediate limits; the warning point.
    pub limits: Limits,
    /// Thresholds of the classification criteria.
    pub classification: ClassificationPolicy,
    /// When overdue work and unacknowledged notifications go up the ladder.
    pub escalation: EscalationPolicy,
    /// Fines against the responsible person or acceptance owner.
    pub penalties: PenaltyPolicy,
    /// The department head's penalty by monthly complaint rate.
    pub complaint_rate: ComplaintRatePolicy,
    /// When customers are called back.
    pub revisit: RevisitPolicy,
    /// Limits on what a submission may contain.
    pub fields: FieldLimits,
    /// Complaint categories, by stable code.
    pub categories: Vec<Category>,
}

/// DOMAIN.md's defaults, section by section.
impl Default for Policy {
    fn default() -> Self {
        Policy {
            calendar: Calendar::default(),
            limits: Limits::default(),
            classification: ClassificationPolicy::default(),
            escalation: EscalationPolicy::default(),
            penalties: PenaltyPolicy::default(),
            complaint_rate: ComplaintRatePolicy::default(),
            revisit: RevisitPolicy::default(),
            fields: FieldLimits::default(),
            categories: default_categories(),
        }
    }
}

impl Policy {
    /// Reads a policy file. Whatever it does not name keeps its default; the result is
    /// validated ([`Policy::validate`]).
    pub fn from_toml_str(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text)?;
        policy.validate()?;
        Ok(policy)
    }

    /// The policy as TOML (without comments), e.g. to show the effective configuration.
    pub fn to_toml_string(&self) -> Result<String, PolicyError> {
        Ok(toml::to_string(self)?)
    }

    /// Checks the settings against each other; lists every problem at once.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut problems = Vec::new();
        self.calendar.check(&mut problems);
        self.limits.check(&mut problems);
        self.classification.check(&mut problems);
        self.escalation.check(&mut problems);
        self.penalties.check(&mut problems);
        self.complaint_rate.check(&mut problems);
        self.revisit.check(&mut problems);
        self.fields.check(&mut problems);
        check_categories(&self.categories, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::Invalid(problems))
        }
    }

    /// The completion limit of `class` (DOMAIN §2: 8/24/48/48 h).
    pub fn completion_limit(&self, class: Class) -> Duration {
        *self.limits.completion.get(class)
    }

    /// The first-feedback limit of `class` before the completion cap (DOMAIN §3).
    pub fn feedback_limit(&self, class: Class) -> FeedbackLimit {
        *self.limits.first_feedback.get(class)
    }

    /// The category with this code, if the policy knows it.
    pub fn category(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }
}

/// Declares a table with one value per class (`A = …`, `B = …`), each defaulting on its own so
/// an override may name a single class.
macro_rules! per_class {
    (
        $(#[$meta:meta])*
        $name:ident: $ty:ty $(, with = $with:literal)?;
        defaults $a:expr, $b:expr, $c:expr, $d:expr $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Class A (major).
            #[serde(rename = "A" $(, with = $with)?)]
            pub a: $ty,
            /// Class B (serious).
            #[serde(rename = "B" $(, with = $with)?)]
            pub b: $ty,
            /// Class C (general).
            #[serde(rename = "C" $(, with = $with)?)]
            pub c: $ty,
            /// Class D (admonition).
            #[serde(rename = "D" $(, with = $with)?)]
            pub d: $ty,
        }

        impl Default for $name {
            fn default() -> Self {
                Self { a: $a, b: $b, c: $c, d: $d }
            }
        }

        impl $name {
            /// The value for `class`.
            pub fn get(&self, class: Class) -> &$ty {
                match class {
                    Class::A => &self.a,
                    Class::B => &self.b,
                    Class::C => &self.c,
                    Class::D => &self.d,
                }
            }

            fn values(&self) -> [(Class, &$ty); 4] {
                [(Class::A, &self.a), (Class::B, &self.b), (Class::C, &self.c), (Class::D, &self.d)]
            }
        }
    };
}

pub mod calendar;
pub mod categories;
pub mod classification;
pub mod complaint_rate;
pub mod escalation;
pub mod fields;
pub mod limits;
pub mod penalties;
pub mod revisit;
#[cfg(test)]
mod tests;

pub use calendar::*;
pub use categories::*;
pub use classification::*;
pub use complaint_rate::*;
pub use escalation::*;
pub use fields::*;
pub use limits::*;
pub use penalties::*;
pub use revisit::*;

// Helpers the sections share.

fn positive(name: &str, d: Duration, problems: &mut Vec<String>) {
    if d <= Duration::zero() {
        problems.push(format!("{name} must be longer than zero"));
    }
}

fn share(name: &str, value: f64, problems: &mut Vec<String>) {
    if !(value > 0.0 && value < 1.0) {
        problems.push(format!(
            "{name} must be strictly between 0 and 1, got {value}"
        ));
    }
}

/// Lowercase ASCII letters, digits and `_`, starting with a letter.
fn is_code(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn has_duplicates<'a>(items: impl Iterator<Item = &'a String>) -> bool {
    let mut seen = HashSet::new();
    items.into_iter().any(|item| !seen.insert(item))
}
