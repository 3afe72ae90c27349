//! Where "now" comes from.
//!
//! Every rule of DOMAIN §4 (limits, warnings at 75 %, overdue) and §6 (revisits) is about time.
//! Code never calls `Utc::now()` directly: it asks a [`Clock`], one `Arc<dyn Clock>` built at
//! start-up and passed down (as influxdb3's `TimeProvider` and restate's `Clock`). Tests use a
//! [`ManualClock`] and move it forward instead of sleeping; the demo uses a [`ScaledClock`] so
//! a 48-hour limit passes in minutes. [`clock_from_spec`] turns a configuration string into one.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same time, so a test can keep one
/// handle and give another to the code under test.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock frozen at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock to `t` (backwards too: tests of clock skew need that).
    pub fn set(&self, t: DateTime<Utc>) {
        *self.lock() = t;
    }

    /// Moves the clock forward by `by` (saturating at the largest representable instant).
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now = now
            .checked_add_signed(by)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
    }

    /// A poisoned lock only means another test thread panicked mid-`set`; the time it holds is
    /// still a valid time, so keep using it.
    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// A clock that starts at `origin` and runs `factor` times faster than real time: with factor
/// 720, a 48-hour completion limit passes in four real minutes. Used by the demo.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    origin: DateTime<Utc>,
    started: Instant,
    factor: f64,
}

impl ScaledClock {
    /// Starts now (real time) at `origin` (simulated time). `factor` should be finite and > 0;
    /// anything else runs at real speed (1.0) rather than freezing or running backwards —
    /// [`clock_from_spec`] refuses such factors outright.
    pub fn new(origin: DateTime<Utc>, factor: f64) -> Self {
        let factor = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            1.0
        };
        ScaledClock {
            origin,
            started: Instant::now(),
            factor,
        }
    }

    /// How many times faster than real time this clock runs.
    pub fn factor(&self) -> f64 {
        self.factor
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.started.elapsed().as_secs_f64();
        // Microsecond resolution is plenty for a demo; the `as` cast saturates on overflow.
        let simulated_us = (real * self.factor * 1e6) as i64;
        self.origin
            .checked_add_signed(Duration::microseconds(simulated_us))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Why a clock specification was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClockSpecError {
    /// Not one of the accepted forms.
    #[error(
        "unknown clock {0:?}; use \"system\", \"manual:<rfc3339>\", \"scaled:<factor>\" or \"scaled:<factor>@<rfc3339>\""
    )]
    Unknown(String),
    /// The instant is not RFC 3339, e.g. `2024-05-01T09:00:00+08:00`.
    #[error("clock time {0:?} is not an RFC 3339 instant such as 2024-05-01T09:00:00+08:00")]
    BadTime(String),
    /// The factor is not a finite number greater than zero.
    #[error("clock factor {0:?} must be a finite number greater than 0")]
    BadFactor(String),
}

/// Builds a clock from configuration:
///
/// - `system` — the wall clock;
/// - `manual:<rfc3339>` — frozen at that instant;
/// - `scaled:<factor>` — starts at the current time and runs `factor` times faster;
/// - `scaled:<factor>@<rfc3339>` — starts at the given instant and runs `factor` times faster.
pub fn clock_from_spec(spec: &str) -> Result<Arc<dyn Clock>, ClockSpecError> {
    let spec = spec.trim();
    let (kind, arg) = match spec.split_once(':') {
        Some((kind, arg)) => (kind.trim(), Some(arg.trim())),
        None => (spec, None),
    };
    match (kind.to_ascii_lowercase().as_str(), arg) {
        ("system", None) => Ok(Arc::new(SystemClock)),
        ("manual", Some(at)) => Ok(Arc::new(ManualClock::new(parse_instant(at)?))),
        ("scaled", Some(arg)) => {
            let (factor, origin) = match arg.split_once('@') {
                Some((factor, at)) => (factor.trim(), parse_instant(at)?),
                None => (arg, Utc::now()),
            };
            let factor = factor
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f > 0.0)
                .ok_or_else(|| ClockSpecError::BadFactor(factor.to_owned()))?;
            Ok(Arc::new(ScaledClock::new(origin, factor)))
        }
        _ => Err(ClockSpecError::Unknown(spec.to_owned())),
    }
}

fn parse_instant(raw: &str) -> Result<DateTime<Utc>, ClockSpecError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.to_utc())
        .map_err(|_| ClockSpecError::BadTime(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(t("2024-05-01T09:00:00+08:00"));
        let handle = clock.clone();
        assert_eq!(clock.now(), t("2024-05-01T01:00:00Z"));
        handle.advance(Duration::hours(8));
        assert_eq!(clock.now(), t("2024-05-01T09:00:00Z"));
        handle.set(t("2020-01-01T00:00:00Z"));
        assert_eq!(clock.now(), t("2020-01-01T00:00:00Z"));
    }

    #[test]
    fn scaled_clock_runs_faster_than_real_time() {
        let origin = t("2024-05-01T00:00:00Z");
        let clock = ScaledClock::new(origin, 3600.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let elapsed = clock.now() - origin;
        // 20 ms real × 3600 = 72 s simulated (at least).
        assert!(elapsed >= Duration::seconds(72), "{elapsed}");
        assert!(elapsed < Duration::hours(2), "{elapsed}");
    }

    #[test]
    fn scaled_clock_ignores_nonsense_factors() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(ScaledClock::new(Utc::now(), bad).factor(), 1.0);
        }
    }

    #[test]
    fn specs_build_the_right_clock() {
        let before = Utc::now();
        let system = clock_from_spec("system").unwrap();
        assert!(system.now() >= before);

        let manual = clock_from_spec("manual:2024-05-01T09:00:00+08:00").unwrap();
        assert_eq!(manual.now(), t("2024-05-01T01:00:00Z"));
        assert_eq!(manual.now(), manual.now());

        let scaled = clock_from_spec("scaled:60@2024-05-01T00:00:00Z").unwrap();
        assert!(scaled.now() >= t("2024-05-01T00:00:00Z"));
        assert!(scaled.now() < t("2024-05-01T01:00:00Z"));

        let scaled_now = clock_from_spec(" SCALED : 2.5 ").unwrap();
        assert!(scaled_now.now() >= before);
    }

    #[test]
    fn bad_specs_say_why() {
        assert!(matches!(
            clock_from_spec("sundial"),
            Err(ClockSpecError::Unknown(_))
        ));
        assert!(matches!(
            clock_from_spec("system:now"),
            Err(ClockSpecError::Unknown(_))
        ));
        assert!(matches!(
            clock_from_spec("manual"),
            Err(ClockSpecError::Unknown(_))
        ));
        assert!(matches!(
            clock_from_spec("manual:yesterday"),
            Err(ClockSpecError::BadTime(_))
        ));
        assert!(matches!(
            clock_from_spec("scaled:fast"),
            Err(ClockSpecError::BadFactor(_))
        ));
        assert!(matches!(
            clock_from_spec("scaled:0"),
            Err(ClockSpecError::BadFactor(_))
        ));
        assert!(matches!(
            clock_from_spec("scaled:-2"),
            Err(ClockSpecError::BadFactor(_))
        ));
        assert!(matches!(
            clock_from_spec("scaled:inf"),
            Err(ClockSpecError::BadFactor(_))
        ));
        assert!(matches!(
            clock_from_spec("scaled:2@tomorrow"),
            Err(ClockSpecError::BadTime(_))
        ));
    }
}
