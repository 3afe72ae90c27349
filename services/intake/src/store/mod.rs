//! All the service's SQL, by table group: [`complaints`] (recording, confirming, reclassifying
//! and reading complaints) and [`registry`] (the timeline, the names of people, and what other
//! services' events change in a complaint's summary and limits). Functions take a connection
//! and typed values and return typed rows; validation and the rules stay with their callers.

mod complaints;
mod registry;

pub use complaints::*;
pub use registry::*;

/// One field of every row, as the array an `UNNEST` statement binds.
fn column<T, U>(all: &[T], f: impl FnMut(&T) -> U) -> Vec<U> {
    all.iter().map(f).collect()
}
