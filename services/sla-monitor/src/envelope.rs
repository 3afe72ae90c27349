//! The SLA monitor as the producer of events (the envelope itself is
//! `redress_platform::events`; wire enums convert through `redress_proto::convert`).

use chrono::{DateTime, Utc};
use redress_platform::events::Producer;

pub use redress_platform::events::ts;

/// The monitor's events, and its own actor (warnings, overdue, accountability).
pub const PRODUCER: Producer = Producer::new("sla-monitor", "SLA monitor");

/// A protobuf timestamp as an instant; `None` when unset or out of range.
pub fn time(t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    redress_platform::events::from_ts(t?)
}
