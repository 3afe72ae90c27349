//! Building routing's event envelopes.

use chrono::{DateTime, Utc};
use redress_domain::EventId;
use redress_proto::v1::{self, event::Payload};

/// A protobuf timestamp.
pub fn ts(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf timestamp as a time; `None` when out of range.
pub fn from_ts(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

/// The actor of events routing causes on its own (routing and automatic assignment).
pub fn system_actor() -> v1::Actor {
    v1::Actor {
        id: "routing".to_owned(),
        display_name: "Routing service".to_owned(),
        role: v1::Role::System as i32,
    }
}

/// An event envelope from routing. `complaint_id` is empty for organisation events.
pub fn event(
    complaint_id: &str,
    at: DateTime<Utc>,
    actor: &v1::Actor,
    causation: &str,
    payload: Payload,
) -> v1::Event {
    v1::Event {
        event_id: EventId::new().to_string(),
        complaint_id: complaint_id.to_owned(),
        occurred_at: Some(ts(at)),
        actor: Some(actor.clone()),
        schema_version: redress_proto::SCHEMA_VERSION,
        correlation_id: complaint_id.to_owned(),
        causation_id: causation.to_owned(),
        producer: "routing".to_owned(),
        payload: Some(payload),
    }
}
