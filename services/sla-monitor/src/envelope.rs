//! Event envelopes written by the SLA monitor (wire enums convert through
//! `redress_proto::convert`).

use chrono::{DateTime, Utc};
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
