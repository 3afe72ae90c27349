//! Event envelopes written by the SLA monitor, and the conversions between protobuf and domain
//! values its doors share.

use chrono::{DateTime, Utc};
use redress_domain::{Class, EventId, sla::ClockKind};
use redress_proto::v1::{self, event::Payload};

/// The service's name as producer of events.
pub const PRODUCER: &str = "sla-monitor";

/// The actor of events the monitor raises on its own (warnings, overdue, accountability).
pub fn system_actor() -> v1::Actor {
    v1::Actor {
        id: PRODUCER.to_owned(),
        display_name: "SLA monitor".to_owned(),
        role: v1::Role::System as i32,
    }
}

/// Builds an event envelope.
pub fn event(
    complaint_id: &str,
    at: DateTime<Utc>,
    actor: v1::Actor,
    causation: &str,
    payload: Payload,
) -> v1::Event {
    v1::Event {
        event_id: EventId::new().to_string(),
        complaint_id: complaint_id.to_owned(),
        occurred_at: Some(ts(at)),
        actor: Some(actor),
        schema_version: redress_proto::SCHEMA_VERSION,
        correlation_id: complaint_id.to_owned(),
        causation_id: causation.to_owned(),
        producer: PRODUCER.to_owned(),
        payload: Some(payload),
    }
}

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A protobuf timestamp as an instant; `None` when unset or out of range.
pub fn time(t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

pub fn clock_proto(k: ClockKind) -> v1::SlaClock {
    match k {
        ClockKind::Acceptance => v1::SlaClock::Acceptance,
        ClockKind::FirstFeedback => v1::SlaClock::FirstFeedback,
        ClockKind::Completion => v1::SlaClock::Completion,
        ClockKind::IntermediateResult => v1::SlaClock::IntermediateResult,
        ClockKind::Revisit => v1::SlaClock::Revisit,
    }
}

pub fn clock_from_proto(k: i32) -> Option<ClockKind> {
    match v1::SlaClock::try_from(k).ok()? {
        v1::SlaClock::Acceptance => Some(ClockKind::Acceptance),
        v1::SlaClock::FirstFeedback => Some(ClockKind::FirstFeedback),
        v1::SlaClock::Completion => Some(ClockKind::Completion),
        v1::SlaClock::IntermediateResult => Some(ClockKind::IntermediateResult),
        v1::SlaClock::Revisit => Some(ClockKind::Revisit),
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
