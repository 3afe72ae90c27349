//! Routing as the producer of events (the envelope itself is `redress_platform::events`).

use redress_platform::events::Producer;

pub use redress_platform::events::{from_ts, ts};

/// Routing's events, and its own actor (routing and automatic assignment).
pub const PRODUCER: Producer = Producer::new("routing", "Routing service");
