//! Delivery channels behind one trait: the HTTP webhook (JSON, HMAC-signed) and the log. SMS or
//! e-mail are one more implementation each.
//!
//! A channel makes one attempt; retrying with backoff, recording every attempt and the final
//! status are the worker's job ([`crate::worker`]), the same for every channel.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::settings::WebhookSettings;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub http_status: Option<i32>,
    pub error: String,
}

/// One notification to deliver, as the channel sends it.
pub struct Delivery<'a> {
    pub notification_id: &'a str,
    pub recipient_id: &'a str,
    /// The JSON body, exactly as sent (and signed).
    pub body: &'a [u8],
    pub attempt: u32,
}

/// A way of reaching a person.
#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    /// Name in records and events (`log`, `webhook`, …).
    fn name(&self) -> &str;
    /// Attempts before the delivery is recorded as failed.
    fn max_attempts(&self) -> u32;
    /// Wait before the attempt after failed attempt `attempt`.
    fn retry_delay(&self, attempt: u32) -> Duration;
    /// Makes one attempt.
    async fn deliver(&self, delivery: &Delivery<'_>) -> Outcome;
    /// Failed attempts in a row after which the channel rests, and for how long
    /// ([`crate::worker::Breaker`]). Never, by default.
    fn breaker(&self) -> (u32, Duration) {
        (u32::MAX, Duration::ZERO)
    }
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`, the `X-Redress-Signature` header value.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs the JSON body to a URL with `X-Redress-Signature`, `X-Redress-Notification-Id` (for
/// receivers to drop a re-sent copy) and `X-Redress-Attempt`. Any 2xx is delivered.
pub struct Webhook {
    settings: WebhookSettings,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(settings: WebhookSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
            .build()?;
        Ok(Webhook { settings, client })
    }
}

#[async_trait::async_trait]
impl Channel for Webhook {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn max_attempts(&self) -> u32 {
        self.settings.max_attempts
    }

    fn retry_delay(&self, attempt: u32) -> Duration {
        redress_domain::escalation::retry_delay(
            Duration::from_millis(self.settings.initial_backoff_ms),
            Duration::from_millis(self.settings.max_backoff_ms),
            attempt,
        )
    }

    fn breaker(&self) -> (u32, Duration) {
        (
            self.settings.breaker_failures,
            Duration::from_millis(self.settings.breaker_cooldown_ms),
        )
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Outcome {
        let result = self
            .client
            .post(&self.settings.url)
            .header("Content-Type", "application/json")
            .header(
                "X-Redress-Signature",
                signature(self.settings.secret.as_bytes(), d.body),
            )
            .header("X-Redress-Notification-Id", d.notification_id)
            .header("X-Redress-Attempt", d.attempt.to_string())
            .body(d.body.to_vec())
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => Outcome {
                ok: true,
                http_status: Some(i32::from(resp.status().as_u16())),
                error: String::new(),
            },
            Ok(resp) => Outcome {
                ok: false,
                http_status: Some(i32::from(resp.status().as_u16())),
                error: format!("HTTP {}", resp.status()),
            },
            Err(e) => Outcome {
                ok: false,
                http_status: None,
                error: e.to_string(),
            },
        }
    }
}

/// Writes the notification to the service log; always delivered.
pub struct Log;

#[async_trait::async_trait]
impl Channel for Log {
    fn name(&self) -> &str {
        "log"
    }

    fn max_attempts(&self) -> u32 {
        1
    }

    fn retry_delay(&self, _attempt: u32) -> Duration {
        Duration::ZERO
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Outcome {
        tracing::info!(notification_id = d.notification_id, recipient = d.recipient_id,
            body = %String::from_utf8_lossy(d.body), "notification");
        Outcome {
            ok: true,
            http_status: None,
            error: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_the_rfc_4231_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
