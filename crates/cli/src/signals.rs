//! The signals that mean "stop everything": SIGINT (Ctrl-C), SIGTERM and SIGHUP.
//!
//! They are registered once, before anything is started, so that a Ctrl-C at any moment —
//! while NATS is starting, while the services are getting ready, or while they run — leads to
//! the same orderly shutdown instead of the default "die at once and orphan the children".
//! SIGHUP is included because the services run in their own process group (so that Ctrl-C
//! reaches only the launcher, which then stops them in order): when the terminal closes, only
//! the launcher hears about it, and it must pass the news on.

use anyhow::{Context, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The registered stop signals.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    /// Registers the handlers; from now on these signals no longer kill the process.
    pub fn register() -> Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("registering SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("registering SIGTERM")?,
            hangup: signal(SignalKind::hangup()).context("registering SIGHUP")?,
        })
    }

    /// Waits for the next stop signal and returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}
