//! Event envelopes and protobuf timestamps, built one way by every service.
//!
//! Every event carries the same envelope (`redress.complaints.v1.Event`): a fresh time-sortable
//! id (which becomes `Nats-Msg-Id`), the complaint, when it happened by the service's clock, who
//! caused it, the schema version, the event that caused it, and the producing service.

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

/// A protobuf timestamp as a time; `None` when out of range or malformed.
pub fn from_ts(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

/// An event produced by `producer` about `complaint_id` (empty for organisation events).
/// `causation` is the id of the event that led to this one, if any; the complaint id doubles
/// as the correlation id, so one complaint's events can be followed across services.
pub fn envelope(
    producer: &str,
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
        producer: producer.to_owned(),
        payload: Some(payload),
    }
}

/// A service as the producer of events: the one way every service builds its envelopes and
/// names itself as the actor of what it does on its own. Each service declares one
/// (`envelope::PRODUCER`).
#[derive(Clone, Copy, Debug)]
pub struct Producer {
    /// The service's name, written into every envelope (`routing`, `sla-monitor` …).
    pub name: &'static str,
    /// How the service appears as an actor in timelines ("Routing service").
    pub display_name: &'static str,
}

impl Producer {
    pub const fn new(name: &'static str, display_name: &'static str) -> Self {
        Producer { name, display_name }
    }

    /// An event of this service about `complaint_id` (empty for organisation events); see
    /// [`envelope`].
    pub fn event(
        &self,
        complaint_id: &str,
        at: DateTime<Utc>,
        actor: &v1::Actor,
        causation: &str,
        payload: Payload,
    ) -> v1::Event {
        envelope(self.name, complaint_id, at, actor, causation, payload)
    }

    /// The actor of what the service does on its own (rules, timers).
    pub fn system_actor(&self) -> v1::Actor {
        system_actor(self.name, self.display_name)
    }
}

/// The actor of what a service does on its own (rules, timers), as opposed to a person.
pub fn system_actor(service: &str, display_name: &str) -> v1::Actor {
    v1::Actor {
        id: service.to_owned(),
        display_name: display_name.to_owned(),
        role: v1::Role::System as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_bad_ones_are_none() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T08:30:00.123456789Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(from_ts(&ts(at)), Some(at));
        assert_eq!(
            from_ts(&prost_types::Timestamp {
                seconds: 0,
                nanos: -1
            }),
            None
        );
    }

    #[test]
    fn envelope_carries_producer_and_correlation() {
        let e = envelope(
            "routing",
            "cmp_x",
            Utc::now(),
            &system_actor("routing", "Routing service"),
            "evt_cause",
            Payload::Closed(Default::default()),
        );
        assert!(e.event_id.starts_with("evt_"));
        assert_eq!(e.producer, "routing");
        assert_eq!(e.correlation_id, "cmp_x");
        assert_eq!(e.causation_id, "evt_cause");
        assert_eq!(e.schema_version, redress_proto::SCHEMA_VERSION);
    }
}
