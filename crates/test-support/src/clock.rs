//! Time a test moves (issue 16): the services it starts read "now" from a file
//! (`REDRESS_CLOCK=file:<path>`, see `redress_platform::clock_file`) that [`ClockControl`]
//! writes. A test of the real 8/24/48-hour limits advances the clock past them in a line
//! instead of sleeping or running with a policy of seconds.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

/// The clock of the services a test starts with `("REDRESS_CLOCK", control.spec())`.
pub struct ClockControl {
    _dir: tempfile::TempDir,
    path: PathBuf,
    now: Mutex<DateTime<Utc>>,
}

impl ClockControl {
    /// A clock standing at `start` until the test moves it.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        let dir = tempfile::tempdir().expect("clock dir");
        let control = ClockControl {
            path: dir.path().join("now"),
            _dir: dir,
            now: Mutex::new(start),
        };
        control.set(start);
        control
    }

    /// The `REDRESS_CLOCK` value that makes a service read this clock.
    pub fn spec(&self) -> String {
        format!("file:{}", self.path.display())
    }

    /// The time the services see.
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the services' time to `t` (written then renamed: a service never reads half).
    pub fn set(&self, t: DateTime<Utc>) {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, t.to_rfc3339()).expect("write clock");
        std::fs::rename(&tmp, &self.path).expect("move clock");
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = t;
    }

    /// Moves the services' time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by);
    }
}
