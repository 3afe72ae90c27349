//! Escalation as the producer of events (the envelope itself is `redress_platform::events`).

use chrono::{DateTime, Utc};
use redress_platform::events::Producer;

pub use redress_platform::events::ts;

/// The escalation service's events, and its own actor.
pub const PRODUCER: Producer = Producer::new("escalation", "Escalation service");

/// A protobuf timestamp as an instant; `None` when unset or out of range.
pub fn from_ts(t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    redress_platform::events::from_ts(t?)
}
