//! Building routing's event envelopes.

use chrono::{DateTime, Utc};
use redress_proto::v1::{self, event::Payload};

pub use redress_platform::events::{from_ts, ts};

/// The actor of events routing causes on its own (routing and automatic assignment).
pub fn system_actor() -> v1::Actor {
    redress_platform::events::system_actor("routing", "Routing service")
}

/// An event envelope from routing. `complaint_id` is empty for organisation events.
pub fn event(
    complaint_id: &str,
    at: DateTime<Utc>,
    actor: &v1::Actor,
    causation: &str,
    payload: Payload,
) -> v1::Event {
    redress_platform::events::envelope("routing", complaint_id, at, actor, causation, payload)
}
