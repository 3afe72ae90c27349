//! Between the wire and the service: the event envelope this service publishes, timestamps and
//! revisit states (domain vocabularies convert through `redress_proto::convert`).

use chrono::{DateTime, Utc};
use redress_platform::events::Producer;
use redress_proto::v1;

use crate::error::Error;

/// The revisit service's events, and its own actor (planning from events and the clock).
pub const PRODUCER: Producer = Producer::new("revisit", "revisit planner");

pub use redress_platform::events::ts;

/// A wire timestamp as an instant; `None` when unset or out of range.
pub fn instant(t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    redress_platform::events::from_ts(t?)
}

/// A request's optional timestamp; an out-of-range one is refused naming `field`.
pub fn request_instant(
    t: Option<&prost_types::Timestamp>,
    field: &str,
) -> Result<Option<DateTime<Utc>>, Error> {
    match t {
        None => Ok(None),
        Some(raw) => instant(Some(raw))
            .map(Some)
            .ok_or_else(|| Error::invalid(field, "is not a valid timestamp")),
    }
}

/// The stored state name as the wire enum.
pub fn state_to_proto(s: &str) -> v1::RevisitState {
    match s {
        "scheduled" => v1::RevisitState::Scheduled,
        "claimed" => v1::RevisitState::Claimed,
        "unreached" => v1::RevisitState::Unreached,
        "completed" => v1::RevisitState::Completed,
        "signed_off" => v1::RevisitState::SignedOff,
        "cancelled" => v1::RevisitState::Cancelled,
        _ => v1::RevisitState::Unspecified,
    }
}
