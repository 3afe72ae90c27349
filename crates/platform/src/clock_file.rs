//! A clock another process sets (issue 16): `REDRESS_CLOCK=file:<path>` makes "now" whatever
//! instant (RFC 3339) the file holds, read on every call. A test of a running service writes
//! the file to move time forward — 48 hours in a line — instead of sleeping or shrinking the
//! policy, so the real limits are what is tested. Not for production: every `now()` reads a file.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use redress_domain::clock::Clock;

/// "Now" as the file says; the last good reading while the file is being rewritten.
#[derive(Debug)]
pub struct FileClock {
    path: PathBuf,
    last: Mutex<DateTime<Utc>>,
}

impl FileClock {
    /// A clock read from `path`, which must hold an RFC 3339 instant now.
    pub fn open(path: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let path = path.into();
        let first = read(&path).ok_or_else(|| {
            anyhow::anyhow!(
                "clock file {} does not hold an RFC 3339 instant",
                path.display()
            )
        })?;
        Ok(FileClock {
            path,
            last: Mutex::new(first),
        })
    }
}

fn read(path: &std::path::Path) -> Option<DateTime<Utc>> {
    let text = std::fs::read_to_string(path).ok()?;
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.to_utc())
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = read(&self.path) {
            *last = t;
        }
        *last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_sets_the_time_and_a_bad_write_keeps_the_last() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("clock");
        std::fs::write(&path, "2026-12-01T08:00:00Z").expect("write");
        let clock = FileClock::open(&path).expect("clock");
        assert_eq!(clock.now().to_rfc3339(), "2026-12-01T08:00:00+00:00");
        std::fs::write(&path, "2026-12-03T09:00:00Z").expect("write");
        assert_eq!(clock.now().to_rfc3339(), "2026-12-03T09:00:00+00:00");
        std::fs::write(&path, "half a wri").expect("write");
        assert_eq!(clock.now().to_rfc3339(), "2026-12-03T09:00:00+00:00");
        assert!(FileClock::open(dir.path().join("missing")).is_err());
    }
}
