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
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, Delivery};
use crate::envelope::PRODUCER;
use crate::ladder::{Ladder, Send, Step, count_notification};

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
        let rows = sqlx::query(
            "SELECT d.delivery_id, d.notification_id, d.channel, d.round, d.attempts, n.body,
                    n.recipient_id, n.escalation_id, e.complaint_id
             FROM deliveries d
             JOIN notifications n ON n.notification_id = d.notification_id
             JOIN escalations e ON e.escalation_id = n.escalation_id
             WHERE d.status = 'pending' AND d.channel = $3 AND d.next_attempt_at <= $1
             ORDER BY d.next_attempt_at LIMIT $2
             FOR UPDATE OF d SKIP LOCKED",
        )
        .bind(now)
        .bind(limit)
        .bind(channel_name)
        .fetch_all(&mut *tx)
        .await?;
        struct Due {
            delivery_id: i64,
            notification_id: String,
            attempt: u32,
            bytes: Vec<u8>,
            recipient_id: String,
            escalation_id: String,
            complaint_id: String,
        }
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let notification_id: String = row.try_get("notification_id")?;
            let round: i32 = row.try_get("round")?;
            let mut body: serde_json::Value = row.try_get("body")?;
            if let Some(obj) = body.as_object_mut() {
                obj.insert("notification_id".into(), notification_id.clone().into());
                obj.insert("send".into(), round.into());
            }
            due.push(Due {
                delivery_id: row.try_get("delivery_id")?,
                attempt: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0) + 1,
                bytes: serde_json::to_vec(&body)?,
                recipient_id: row.try_get("recipient_id")?,
                escalation_id: row.try_get("escalation_id")?,
                complaint_id: row.try_get("complaint_id")?,
                notification_id,
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
            sqlx::query(
                "INSERT INTO delivery_attempts (delivery_id, attempt, at, ok, http_status, error)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(d.delivery_id)
            .bind(i32::try_from(d.attempt).unwrap_or(i32::MAX))
            .bind(at)
            .bind(outcome.ok)
            .bind(outcome.http_status)
            .bind(&outcome.error)
            .execute(&mut *tx)
            .await?;
            let will_retry = !outcome.ok && d.attempt < max_attempts;
            let status = if outcome.ok {
                "delivered"
            } else if will_retry {
                "pending"
            } else {
                "failed"
            };
            let next = at + chrono::Duration::from_std(delay).unwrap_or_default();
            sqlx::query(
                "UPDATE deliveries SET status = $2, attempts = $3, next_attempt_at = $4,
                    last_error = $5, finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE $6 END
                 WHERE delivery_id = $1",
            )
            .bind(d.delivery_id)
            .bind(status)
            .bind(i32::try_from(d.attempt).unwrap_or(i32::MAX))
            .bind(next)
            .bind(&outcome.error)
            .bind(at)
            .execute(&mut *tx)
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
            events.push(PRODUCER.event(&d.complaint_id, at, &PRODUCER.system_actor(), "", payload));
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
        let rows = sqlx::query(
            "SELECT e.escalation_id, e.complaint_id, n.notification_id, n.recipient_id, n.body,
                    n.sends
             FROM escalations e JOIN notifications n ON n.escalation_id = e.escalation_id
             WHERE e.state = 'raised' AND e.resend_at <= $1
             ORDER BY e.resend_at LIMIT $2
             FOR UPDATE OF e SKIP LOCKED",
        )
        .bind(now)
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::new();
        let after_commit = AfterCommit::default();
        for row in &rows {
            let escalation_id: String = row.try_get("escalation_id")?;
            let complaint_id: String = row.try_get("complaint_id")?;
            let notification_id: String = row.try_get("notification_id")?;
            let recipient_id: String = row.try_get("recipient_id")?;
            let body: serde_json::Value = row.try_get("body")?;
            let round = u32::try_from(row.try_get::<i32, _>("sends")?).unwrap_or(1) + 1;
            sqlx::query("UPDATE notifications SET sends = $2 WHERE notification_id = $1")
                .bind(&notification_id)
                .bind(i32::try_from(round).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE escalations SET resend_at = $2 WHERE escalation_id = $1")
                .bind(&escalation_id)
                .bind(rules::resend_at(&self.ladder.policy, now))
                .execute(&mut *tx)
                .await?;
            events.extend(
                self.ladder
                    .send(
                        &mut tx,
                        &after_commit,
                        &Send {
                            notification_id: &notification_id,
                            escalation_id: &escalation_id,
                            complaint_id: &complaint_id,
                            recipient_id: &recipient_id,
                            body: &body,
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
        let top = i32::try_from(rules::top_level(&self.ladder.policy)).unwrap_or(i32::MAX);
        self.climb(
            "state = 'raised' AND acknowledge_by <= $1 AND level < $3 AND may_climb",
            top,
            Trigger::Unacknowledged,
        )
        .await
    }

    /// DOMAIN §9: "still unresolved a set time later → general manager" (`l2_after`).
    pub async fn raise_unresolved(&self) -> anyhow::Result<usize> {
        let top = i32::try_from(rules::top_level(&self.ladder.policy)).unwrap_or(i32::MAX);
        self.climb(
            "state IN ('raised', 'acknowledged') AND raise_at <= $1 AND level < $3",
            top,
            Trigger::UnresolvedAfterL1,
        )
        .await
    }

    async fn climb(&self, condition: &str, top: i32, trigger: Trigger) -> anyhow::Result<usize> {
        let now = self.ladder.now();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT escalation_id, complaint_id, level, department_id, class, clock, summary
             FROM escalations WHERE {condition}
             ORDER BY raised_at LIMIT $2 FOR UPDATE SKIP LOCKED"
        )))
        .bind(now)
        .bind(self.batch)
        .bind(top)
        .fetch_all(&mut *tx)
        .await?;
        let after_commit = AfterCommit::default();
        for row in &rows {
            let escalation_id: String = row.try_get("escalation_id")?;
            let complaint_id: String = row.try_get("complaint_id")?;
            let level = u32::try_from(row.try_get::<i32, _>("level")?).unwrap_or(1);
            sqlx::query(
                "UPDATE escalations SET state = 'superseded', resend_at = NULL, raise_at = NULL
                 WHERE escalation_id = $1",
            )
            .bind(&escalation_id)
            .execute(&mut *tx)
            .await?;
            let Some(next) = rules::next_level(&self.ladder.policy, level) else {
                continue;
            };
            // Someone at that level or above already has it open: nothing more to raise.
            let covered: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM escalations WHERE complaint_id = $1
                    AND level >= $2 AND state IN ('raised', 'acknowledged'))",
            )
            .bind(&complaint_id)
            .bind(i32::try_from(next).unwrap_or(i32::MAX))
            .fetch_one(&mut *tx)
            .await?;
            if covered {
                continue;
            }
            let summary: String = row.try_get("summary")?;
            let why = match trigger {
                Trigger::Unacknowledged => "not acknowledged in time",
                _ => "still unresolved",
            };
            self.ladder
                .raise(
                    &mut tx,
                    &after_commit,
                    Step {
                        complaint_id,
                        level: next,
                        trigger,
                        step_key: format!("{escalation_id}/{}/L{next}", trigger.code()),
                        clock: row.try_get("clock")?,
                        class: row.try_get("class")?,
                        department_id: row.try_get("department_id")?,
                        summary: format!("{summary} (Level {level} {why}.)"),
                        unresolved_timer: true,
                        may_climb: true,
                        causation_id: String::new(),
                    },
                )
                .await?;
        }
        tx.commit().await?;
        after_commit.committed();
        Ok(rows.len())
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
