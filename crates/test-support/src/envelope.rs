//! The envelope a test puts round a payload when it plays another service's part (issue 16: one
//! copy instead of one per service's tests).

use redress_proto::prost_types::Timestamp;
use redress_proto::v1;

/// An event as `producer` would publish it: `producer` is also its actor (a system), the
/// complaint its correlation, no cause, the current schema version. `event_id` is the caller's
/// (`redress_domain::EventId::new()`, which this crate does not depend on).
pub fn envelope(
    event_id: String,
    complaint_id: &str,
    producer: &str,
    occurred_at: Timestamp,
    payload: v1::event::Payload,
) -> v1::Event {
    v1::Event {
        event_id,
        complaint_id: complaint_id.to_owned(),
        occurred_at: Some(occurred_at),
        actor: Some(v1::Actor {
            id: producer.to_owned(),
            display_name: producer.to_owned(),
            role: v1::Role::System as i32,
        }),
        schema_version: redress_proto::SCHEMA_VERSION,
        correlation_id: complaint_id.to_owned(),
        causation_id: String::new(),
        producer: producer.to_owned(),
        payload: Some(payload),
    }
}
