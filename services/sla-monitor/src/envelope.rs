//! Event envelopes written by the SLA monitor, and the conversions between protobuf and domain
//! values its doors share.

use chrono::{DateTime, Utc};
use redress_domain::{Class, sla::ClockKind};
use redress_proto::v1::{self, event::Payload};

/// The service's name as producer of events.
pub const PRODUCER: &str = "sla-monitor";

/// The actor of events the monitor raises on its own (warnings, overdue, accountability).
pub fn system_actor() -> v1::Actor {
    redress_platform::events::system_actor(PRODUCER, "SLA monitor")
}

/// Builds an event envelope.
pub fn event(
    complaint_id: &str,
    at: DateTime<Utc>,
    actor: v1::Actor,
    causation: &str,
    payload: Payload,
) -> v1::Event {
    redress_platform::events::envelope(PRODUCER, complaint_id, at, &actor, causation, payload)
}

pub use redress_platform::events::ts;

/// A protobuf timestamp as an instant; `None` when unset or out of range.
pub fn time(t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    redress_platform::events::from_ts(t?)
}

pub fn clock_proto(k: ClockKind) -> v1::SlaClock {
    match k {
        ClockKind::Acceptance => v1::SlaClock::Acceptance,
        ClockKind::FirstFeedback => v1::SlaClock::FirstFeedback,
        ClockKind::Completion => v1::SlaClock::Completion,
        ClockKind::IntermediateResult => v1::SlaClock::IntermediateResult,
        ClockKind::Revisit => v1::SlaClock::Revisit,
        ClockKind::Confirmation => v1::SlaClock::Confirmation,
    }
}

pub fn clock_from_proto(k: i32) -> Option<ClockKind> {
    match v1::SlaClock::try_from(k).ok()? {
        v1::SlaClock::Acceptance => Some(ClockKind::Acceptance),
        v1::SlaClock::FirstFeedback => Some(ClockKind::FirstFeedback),
        v1::SlaClock::Completion => Some(ClockKind::Completion),
        v1::SlaClock::IntermediateResult => Some(ClockKind::IntermediateResult),
        v1::SlaClock::Revisit => Some(ClockKind::Revisit),
        v1::SlaClock::Confirmation => Some(ClockKind::Confirmation),
        v1::SlaClock::Unspecified => None,
    }
}

pub fn class_from_proto(c: i32) -> Option<Class> {
    match v1::Class::try_from(c).ok()? {
        v1::Class::A => Some(Class::A),
        v1::Class::B => Some(Class::B),
        v1::Class::C => Some(Class::C),
        v1::Class::D => Some(Class::D),
        v1::Class::Unspecified => None,
    }
}

/// The stored class letter (`A`…`D`, or empty) as protobuf.
pub fn class_letter_proto(letter: &str) -> i32 {
    v1::Class::from_str_name(&format!("CLASS_{letter}")).unwrap_or(v1::Class::Unspecified) as i32
}
