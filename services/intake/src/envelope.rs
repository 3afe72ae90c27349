//! Intake as the producer of events (the envelope itself is `redress_platform::events`).

use redress_platform::events::Producer;

/// Intake's events.
pub const PRODUCER: Producer = Producer::new("intake", "Intake service");
