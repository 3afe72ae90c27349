//! The service's own settings file (`REDRESS_ESCALATION_SETTINGS`, TOML): who the general
//! manager is when routing has not said, and where notifications are delivered.
//!
//! ```toml
//! # Staff id of the general manager (top of the ladder). When absent, the most recently
//! # upserted staff member with role GENERAL_MANAGER (from routing's `staff.upserted`) is used.
//! general_manager_id = "gm-1"
//! # Also write every notification to the log (channel `log`). Default true.
//! log_channel = true
//! # How often the delivery and timer worker looks for work, in milliseconds. Default 500.
//! tick_ms = 500
//! # How many due deliveries (per channel) and ladder timers the worker takes per step.
//! # Default 20.
//! batch = 20
//!
//! [[webhooks]]
//! name = "ops"                       # channel name in records and events (default "webhook")
//! url = "https://ops.example/hooks/redress"
//! secret = "shared-secret"           # HMAC-SHA256 key for X-Redress-Signature
//! max_attempts = 8                   # then the delivery is recorded as failed
//! initial_backoff_ms = 500           # doubled per failed attempt…
//! max_backoff_ms = 60000             # …up to this
//! timeout_ms = 5000                  # per request
//! breaker_failures = 5               # failed attempts in a row, then the endpoint rests…
//! breaker_cooldown_ms = 30000        # …this long before one delivery is tried again
//! ```
//!
//! Each webhook is delivered by a loop of its own, its attempts made concurrently, so a slow or
//! hung endpoint delays no other channel, nor the ladder's timers, nor shutdown.

use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

/// The settings file, all optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub general_manager_id: Option<String>,
    pub log_channel: bool,
    pub tick_ms: u64,
    pub batch: i64,
    pub webhooks: Vec<WebhookSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            general_manager_id: None,
            log_channel: true,
            tick_ms: 500,
            batch: 20,
            webhooks: Vec::new(),
        }
    }
}

/// One HTTP webhook endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    #[serde(default = "default_webhook_name")]
    pub name: String,
    pub url: String,
    pub secret: String,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Failed attempts in a row after which the endpoint rests (circuit open).
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long it rests before one delivery is tried again.
    #[serde(default = "default_breaker_cooldown_ms")]
    pub breaker_cooldown_ms: u64,
}

fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_cooldown_ms() -> u64 {
    30_000
}

fn default_webhook_name() -> String {
    "webhook".to_owned()
}
fn default_max_attempts() -> u32 {
    8
}
fn default_initial_backoff_ms() -> u64 {
    500
}
fn default_max_backoff_ms() -> u64 {
    60_000
}
fn default_timeout_ms() -> u64 {
    5_000
}

impl Settings {
    /// Reads the file at `path`, or the defaults when no path is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Settings> {
        let Some(path) = path else {
            return Ok(Settings::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("REDRESS_ESCALATION_SETTINGS {}", path.display()))?;
        let settings: Settings = toml::from_str(&text)
            .with_context(|| format!("REDRESS_ESCALATION_SETTINGS {}", path.display()))?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.batch > 0, "batch must be > 0");
        let mut names = std::collections::BTreeSet::new();
        for w in &self.webhooks {
            anyhow::ensure!(!w.url.is_empty(), "webhooks.url is empty");
            anyhow::ensure!(w.max_attempts > 0, "webhooks.max_attempts must be > 0");
            anyhow::ensure!(
                w.name != "log" && w.name != "nats" && names.insert(w.name.clone()),
                "webhooks.name {:?} is reserved or used twice",
                w.name
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_defaults() {
        let s: Settings = toml::from_str(
            r#"
            general_manager_id = "gm-9"
            [[webhooks]]
            url = "http://127.0.0.1:1/x"
            secret = "k"
            "#,
        )
        .unwrap();
        assert_eq!(s.general_manager_id.as_deref(), Some("gm-9"));
        assert!(s.log_channel);
        assert_eq!(s.webhooks[0].name, "webhook");
        assert_eq!(s.webhooks[0].max_attempts, 8);
        s.check().unwrap();
        let dup: Settings = toml::from_str(
            "[[webhooks]]\nurl='u'\nsecret='k'\n[[webhooks]]\nurl='v'\nsecret='k'\n",
        )
        .unwrap();
        assert!(dup.check().is_err());
    }
}
