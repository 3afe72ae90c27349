//! The complaint process of DOMAIN.md as pure Rust: no I/O, no async, no clocks read behind your
//! back. Every service links this crate and none re-implements a rule.
//!
//! # Where to start reading
//!
//! - [`policy`] — every number and list the rules use, with DOMAIN.md's values as the defaults
//!   (`policy/default.toml`, commented section by section). Nothing here hard-codes a limit.
//! - [`record`] — the complaint record of DOMAIN §1 and [`validate`], the one gate a submission
//!   passes through: raw strings in, a [`ComplaintRecord`] of domain types (or every problem) out.
//! - [`classification`] — DOMAIN §2: [`classify`] turns the facts into a class A–D with reasons.
//! - [`deadlines`] — DOMAIN §4: the [`Promises`] (acceptance, first feedback, intermediate,
//!   completion) and the words the customer is told ([`explain`]).
//! - [`penalty`] — DOMAIN §7: fines, late acceptance, suspension, the complaint-rate table.
//! - [`customer_type`] — DOMAIN §2's customer types, the advice for each and the actions three
//!   of them trigger.
//!
//! The building blocks: [`ids`] (typed, prefixed, time-sortable ids such as `cmp_…`),
//! [`money`] (integer fen), [`phone`] (normalised to E.164), [`email`], [`duration`] (`"8h"`),
//! and [`clock`] (the only source of "now": system, manual for tests, scaled for the demo).
//!
//! # Conventions
//!
//! - Parse, don't validate: edges build these types once; past the edge invalid data cannot exist.
//! - Each module has its own error type; errors say what was wrong in words an operator can use.
//! - Doc comments quote the DOMAIN.md rule they implement, so any rule is one search away.
//! - Time is always passed in (`now`, `received_at`) or read from a [`Clock`]; functions here
//!   never call `Utc::now()` themselves, except [`SystemClock`] and id minting.

pub mod accountability;
pub mod calendar;
pub mod classification;
pub mod clock;
pub mod customer_type;
pub mod deadlines;
pub mod duration;
pub mod email;
pub mod escalation;
pub mod handling;
pub mod ids;
pub mod limits;
pub mod money;
pub mod penalty;
pub mod personal;
pub mod phone;
pub mod policy;
pub mod record;
pub mod revisit;
pub mod sla;
mod text;

pub use classification::{
    Class, Classification, ClassificationFacts, Criterion, EmotionLevel, ProcedureBreach,
    PublicImpact, Reason, Reclassification, ReclassificationError, classify,
};
pub use clock::{Clock, ClockSpecError, ManualClock, ScaledClock, SystemClock, clock_from_spec};
pub use customer_type::{Action, CustomerType, Guidance};
pub use deadlines::{Promises, explain, promises, warning_at};
pub use duration::DurationError;
pub use email::{Email, EmailError};
pub use ids::{ComplaintId, EscalationId, EventId, IdError, NotificationId, RevisitId, TaskId};
pub use money::{Money, MoneyError};
pub use penalty::{
    RateBand, complaint_penalty, late_acceptance_penalty, rate_band, suspension_due,
};
pub use phone::{Phone, PhoneError};
pub use policy::{DEFAULT_POLICY_TOML, FeedbackLimit, Policy, PolicyError};
pub use record::{
    Channel, ComplaintRecord, Confirmation, ConfirmationMethod, FieldError, FirstContact,
    FirstContactDisposition, ReplyChannel, SubmissionDraft, validate,
};
pub use text::UnknownValue;
