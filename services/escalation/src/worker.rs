//! The background worker: delivers pending notifications through their channels, re-sends
//! unacknowledged ones, and climbs the ladder when nobody acknowledged or the complaint is still
//! unresolved.
//!
//! The ladder's timers run in one loop and each channel's deliveries in a loop of its own, with
//! the attempts of a pass made concurrently and a circuit breaker per channel ([`Breaker`]): a
//! hung webhook endpoint delays neither the climbs, nor other channels, nor shutdown.
//!
//! Safe with several replicas: every pass takes its rows with `FOR UPDATE SKIP LOCKED` inside
//! one transaction, so a row is worked by one replica at a time, and every state change and its
//! events commit together. A webhook call is made while its delivery row is locked; a crash
//! after the receiver's 2xx and before the commit means the attempt is made again (at least
//! once) — receivers drop copies by `X-Redress-Notification-Id` + `send`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redress_domain::escalation::{self as rules, Trigger};
use redress_platform::metrics::AfterCommit;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, Delivery};
use crate::envelope::PRODUCER;
use crate::ladder::{Ladder, Send, Step, count_notification};
use crate::store::escalations::{self, Timer};
use crate::store::notifications::{self, Attempt};

/// The worker's parts.
pub struct Worker {
    pub pool: PgPool,
    pub ladder: Ladder,
    pub channels: HashMap<String, Arc<dyn Channel>>,
    pub tick: Duration,
    pub batch: i64,
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub attempted: usize,
    pub succeeded: usize,
    pub failed: usize,
}

/// A channel's circuit breaker: after `threshold` failed attempts in a row the channel rests
/// for `cooldown` (its deliveries stay pending, nothing is attempted or recorded), then one
/// delivery is tried: a success closes the circuit, a failure opens it again. A dead endpoint
/// then costs one timeout per cool-down instead of one per pending delivery.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures_in_a_row: u32,
    open_until: Option<std::time::Instant>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            failures_in_a_row: 0,
            open_until: None,
        }
    }

    /// How many deliveries may be attempted now: `batch` while closed, one when the cool-down
    /// has passed (half-open), none while open.
    pub fn allowed(&self, now: std::time::Instant, batch: i64) -> Option<i64> {
        match self.open_until {
            None => Some(batch),
            Some(until) if now >= until => Some(1),
            Some(_) => None,
        }
    }

    /// Counts a pass. Returns true when this pass opened the circuit.
    pub fn record(&mut self, succeeded: usize, failed: usize, now: std::time::Instant) -> bool {
        if succeeded > 0 {
            self.failures_in_a_row = 0;
            self.open_until = None;
            return false;
        }
        if failed == 0 {
            return false;
        }
        let was_closed = self.open_until.is_none();
        self.failures_in_a_row = self
            .failures_in_a_row
            .saturating_add(u32::try_from(failed).unwrap_or(u32::MAX));
        if self.open_until.is_some() || self.failures_in_a_row >= self.threshold {
            self.open_until = Some(now + self.cooldown);
            return was_closed;
        }
        false
    }
}

impl Worker {
    /// Runs until `shutdown`: the ladder's timers in one loop and every channel's deliveries in
    /// a loop of its own, so a slow or hung endpoint delays neither the ladder (re-sends, climbs)
    /// nor any other channel, nor shutdown — a pass in progress is abandoned (its transaction
    /// rolls back; the deliveries stay pending and are tried again).
    pub async fn run(self, shutdown: CancellationToken) {
        let me = Arc::new(self);
        let mut loops = tokio::task::JoinSet::new();
        loops.spawn(me.clone().ladder_loop(shutdown.clone()));
        let mut names: Vec<String> = me.channels.keys().cloned().collect();
        names.sort();
        for name in names {
            loops.spawn(me.clone().delivery_loop(name, shutdown.clone()));
        }
        while loops.join_next().await.is_some() {}
    }

    /// Re-sends, and climbs the ladder when nobody acknowledged or the complaint is still
    /// unresolved.
    async fn ladder_loop(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let pass = async {
                for (name, result) in [
                    ("resend", self.resend().await),
                    ("unacknowledged", self.raise_unacknowledged().await),
                    ("unresolved", self.raise_unresolved().await),
                ] {
                    match result {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::debug!(pass = name, n, "worker pass");
                            self.ladder.outbox.wake();
                        }
                        Err(e) => tracing::warn!(pass = name, error = %e, "worker pass failed"),
                    }
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = pass => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.tick) => {}
            }
        }
    }

    /// Delivers one channel's pending notifications, behind the channel's circuit breaker.
    async fn delivery_loop(self: Arc<Self>, channel: String, shutdown: CancellationToken) {
        let Some(ch) = self.channels.get(&channel).cloned() else {
            return;
        };
        let (failures, cooldown) = ch.breaker();
        let mut breaker = Breaker::new(failures, cooldown);
        loop {
            let now = std::time::Instant::now();
            if let Some(limit) = breaker.allowed(now, self.batch) {
                let pass = self.deliver(&channel, limit);
                let result = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = pass => r,
                };
                match result {
                    Ok(tally) => {
                        if tally.attempted > 0 {
                            self.ladder.outbox.wake();
                        }
                        if breaker.record(tally.succeeded, tally.failed, std::time::Instant::now())
                        {
                            tracing::warn!(%channel, cooldown_ms = cooldown.as_millis() as u64,
                                "channel failing; attempts paused (circuit open)");
                        }
                    }
                    Err(e) => tracing::warn!(%channel, error = %e, "delivery pass failed"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.tick) => {}
            }
        }
    }

    /// One attempt for each of up to `limit` due pending deliveries of `channel`, the attempts
    /// made concurrently (a hung endpoint costs one timeout per pass, not one per delivery).
    pub async fn deliver(&self, channel_name: &str, limit: i64) -> anyhow::Result<Tally> {
        let now = self.ladder.now();
        let mut tx = self.pool.begin().await?;
        let rows = notifications::due_deliveries(&mut tx, channel_name, now, limit).await?;
        struct Due {
            delivery_id: i64,
            notification_id: String,
            attempt: u32,
            bytes: Vec<u8>,
            recipient_id: String,
            escalation_id: String,
            complaint_id: redress_domain::ComplaintId,
        }
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let mut body = row.body;
            if let Some(obj) = body.as_object_mut() {
                obj.insert("notification_id".into(), row.notification_id.clone().into());
                obj.insert("send".into(), row.round.into());
            }
            due.push(Due {
                delivery_id: row.delivery_id,
                attempt: u32::try_from(row.attempts).unwrap_or(0) + 1,
                bytes: serde_json::to_vec(&body)?,
                recipient_id: row.recipient_id,
                escalation_id: row.escalation_id,
                complaint_id: row.complaint_id,
                notification_id: row.notification_id,
            });
        }
        let channel = self.channels.get(channel_name);
        let outcomes = futures::future::join_all(due.iter().map(|d| async move {
            match channel {
                Some(channel) => {
                    let outcome = channel
                        .deliver(&Delivery {
                            notification_id: &d.notification_id,
                            recipient_id: &d.recipient_id,
                            body: &d.bytes,
                            attempt: d.attempt,
                        })
                        .await;
                    (
                        outcome,
                        channel.max_attempts(),
                        channel.retry_delay(d.attempt),
                    )
                }
                None => (
                    crate::channel::Outcome {
                        ok: false,
                        http_status: None,
                        error: format!("channel {channel_name} is no longer configured"),
                    },
                    0,
                    Duration::ZERO,
                ),
            }
        }))
        .await;
        let mut events = Vec::new();
        let after_commit = AfterCommit::default();
        let mut tally = Tally::default();
        for (d, (outcome, max_attempts, delay)) in due.into_iter().zip(outcomes) {
            tally.attempted += 1;
            if outcome.ok {
                tally.succeeded += 1;
            } else {
                tally.failed += 1;
            }
            let at = self.ladder.now();
            let will_retry = !outcome.ok && d.attempt < max_attempts;
            let status = if outcome.ok {
                "delivered"
            } else if will_retry {
                "pending"
            } else {
                "failed"
            };
            let next = at + chrono::Duration::from_std(delay).unwrap_or_default();
            notifications::record_attempt(
                &mut tx,
                &Attempt {
                    delivery_id: d.delivery_id,
                    attempt: d.attempt,
                    at,
                    ok: outcome.ok,
                    http_status: outcome.http_status,
                    error: &outcome.error,
                    status,
                    next_attempt_at: next,
                },
            )
            .await?;
            if status != "pending" {
                let channel = channel_name.to_owned();
                after_commit.defer(move || count_notification(channel, status));
            }
            let payload = if outcome.ok {
                Payload::NotificationDelivered(v1::NotificationDelivered {
                    notification_id: d.notification_id,
                    recipient_id: d.recipient_id,
                    channel: channel_name.to_owned(),
                    attempt: d.attempt,
                    escalation_id: d.escalation_id,
                })
            } else {
                tracing::warn!(notification_id = %d.notification_id, channel = %channel_name,
                    attempt = d.attempt, error = %outcome.error, will_retry,
                    "notification attempt failed");
                Payload::NotificationFailed(v1::NotificationFailed {
                    notification_id: d.notification_id,
                    recipient_id: d.recipient_id,
                    channel: channel_name.to_owned(),
                    attempt: d.attempt,
                    error: outcome.error,
                    will_retry,
                    escalation_id: d.escalation_id,
                })
            };
            events.push(PRODUCER.event(
                d.complaint_id.as_str(),
                at,
                &PRODUCER.system_actor(),
                "",
                payload,
            ));
        }
        self.ladder.outbox.append(&mut tx, &events).await?;
        tx.commit().await?;
        after_commit.committed();
        Ok(tally)
    }

    /// Re-sends unacknowledged notifications whose `resend_at` has passed.
    pub async fn resend(&self) -> anyhow::Result<usize> {
        let now = self.ladder.now();
        let mut tx = self.pool.begin().await?;
        let rows = notifications::due_resends(&mut tx, now, self.batch).await?;
        let mut events = Vec::new();
        let after_commit = AfterCommit::default();
        for row in &rows {
            let round = u32::try_from(row.sends).unwrap_or(1) + 1;
            notifications::set_sends(&mut tx, &row.notification_id, round).await?;
            escalations::set_resend_at(
                &mut tx,
                &row.escalation_id,
                rules::resend_at(&self.ladder.policy, now),
            )
            .await?;
            events.extend(
                self.ladder
                    .send(
                        &mut tx,
                        &after_commit,
                        &Send {
                            notification_id: &row.notification_id,
                            escalation_id: &row.escalation_id,
                            complaint_id: &row.complaint_id,
                            recipient_id: &row.recipient_id,
                            body: &row.body,
                            round,
                            causation_id: "",
                        },
                    )
                    .await?,
            );
        }
        self.ladder.outbox.append(&mut tx, &events).await?;
        tx.commit().await?;
        after_commit.committed();
        Ok(rows.len())
    }

    /// DOMAIN §5 (policy `unacknowledged_raise_after`): an escalation nobody acknowledged by
    /// `acknowledge_by` is superseded by one at the next level.
    pub async fn raise_unacknowledged(&self) -> anyhow::Result<usize> {
        self.climb(Timer::Unacknowledged, Trigger::Unacknowledged)
            .await
    }

    /// DOMAIN §9: "still unresolved a set time later → general manager" (`l2_after`).
    pub async fn raise_unresolved(&self) -> anyhow::Result<usize> {
        self.climb(Timer::Unresolved, Trigger::UnresolvedAfterL1)
            .await
    }

    async fn climb(&self, timer: Timer, trigger: Trigger) -> anyhow::Result<usize> {
        let now = self.ladder.now();
        let top = rules::top_level(&self.ladder.policy);
        let mut tx = self.pool.begin().await?;
        let rows = escalations::due(&mut tx, timer, now, self.batch, top).await?;
        let count = rows.len();
        let after_commit = AfterCommit::default();
        for row in rows {
            escalations::supersede(&mut tx, &row.escalation_id).await?;
            let level = row.level;
            let Some(next) = rules::next_level(&self.ladder.policy, level) else {
                continue;
            };
            // Someone at that level or above already has it open: nothing more to raise.
            if escalations::covered(&mut tx, &row.complaint_id, next).await? {
                continue;
            }
            let why = match trigger {
                Trigger::Unacknowledged => "not acknowledged in time",
                _ => "still unresolved",
            };
            self.ladder
                .raise(
                    &mut tx,
                    &after_commit,
                    Step {
                        complaint_id: row.complaint_id,
                        level: next,
                        trigger,
                        step_key: format!("{}/{}/L{next}", row.escalation_id, trigger.code()),
                        clock: row.clock,
                        class: row.class,
                        department_id: row.department_id,
                        summary: format!("{} (Level {level} {why}.)", row.summary),
                        unresolved_timer: true,
                        may_climb: true,
                        causation_id: String::new(),
                    },
                )
                .await?;
        }
        tx.commit().await?;
        after_commit.committed();
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_breaker_opens_after_failures_in_a_row_and_closes_on_a_success() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(30);
        let mut b = Breaker::new(3, cool);
        assert_eq!(b.allowed(t0, 20), Some(20));
        assert!(!b.record(0, 2, t0));
        assert_eq!(b.allowed(t0, 20), Some(20), "two failures: still closed");
        assert!(b.record(0, 1, t0), "the third opens it");
        assert_eq!(b.allowed(t0, 20), None, "open: nothing is attempted");
        let later = t0 + cool;
        assert_eq!(b.allowed(later, 20), Some(1), "half-open: one try");
        assert!(
            !b.record(0, 1, later),
            "still failing: open again, not newly"
        );
        assert_eq!(b.allowed(later, 20), None);
        let again = later + cool;
        assert_eq!(b.allowed(again, 20), Some(1));
        b.record(1, 0, again);
        assert_eq!(b.allowed(again, 20), Some(20), "a success closes it");
    }

    #[test]
    fn a_success_in_a_mixed_pass_keeps_it_closed() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, Duration::from_secs(1));
        assert!(!b.record(1, 5, t0));
        assert_eq!(b.allowed(t0, 4), Some(4));
    }
}
