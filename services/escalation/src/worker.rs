//! The background worker: delivers pending notifications through their channels, re-sends
//! unacknowledged ones, and climbs the ladder when nobody acknowledged or the complaint is still
//! unresolved.
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
use crate::ladder::{Ladder, Send, Step, count_notification, event, system_actor};

/// The worker's parts.
pub struct Worker {
    pub pool: PgPool,
    pub ladder: Ladder,
    pub channels: HashMap<String, Arc<dyn Channel>>,
    pub tick: Duration,
    pub batch: i64,
}

impl Worker {
    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            for (name, result) in [
                ("deliver", self.deliver().await),
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
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.tick) => {}
            }
        }
    }

    /// One attempt for each due pending delivery.
    pub async fn deliver(&self) -> anyhow::Result<usize> {
        let now = self.ladder.now();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT d.delivery_id, d.notification_id, d.channel, d.round, d.attempts, n.body,
                    n.recipient_id, n.escalation_id, e.complaint_id
             FROM deliveries d
             JOIN notifications n ON n.notification_id = d.notification_id
             JOIN escalations e ON e.escalation_id = n.escalation_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1
             ORDER BY d.next_attempt_at LIMIT $2
             FOR UPDATE OF d SKIP LOCKED",
        )
        .bind(now)
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::new();
        let after_commit = AfterCommit::default();
        for row in &rows {
            let delivery_id: i64 = row.try_get("delivery_id")?;
            let notification_id: String = row.try_get("notification_id")?;
            let channel_name: String = row.try_get("channel")?;
            let round: i32 = row.try_get("round")?;
            let attempt = u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0) + 1;
            let mut body: serde_json::Value = row.try_get("body")?;
            let recipient_id: String = row.try_get("recipient_id")?;
            let escalation_id: String = row.try_get("escalation_id")?;
            let complaint_id: String = row.try_get("complaint_id")?;
            if let Some(obj) = body.as_object_mut() {
                obj.insert("notification_id".into(), notification_id.clone().into());
                obj.insert("send".into(), round.into());
            }
            let bytes = serde_json::to_vec(&body)?;
            let (outcome, max_attempts, delay) = match self.channels.get(&channel_name) {
                Some(channel) => {
                    let outcome = channel
                        .deliver(&Delivery {
                            notification_id: &notification_id,
                            recipient_id: &recipient_id,
                            body: &bytes,
                            attempt,
                        })
                        .await;
                    (
                        outcome,
                        channel.max_attempts(),
                        channel.retry_delay(attempt),
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
            };
            let at = self.ladder.now();
            sqlx::query(
                "INSERT INTO delivery_attempts (delivery_id, attempt, at, ok, http_status, error)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(delivery_id)
            .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
            .bind(at)
            .bind(outcome.ok)
            .bind(outcome.http_status)
            .bind(&outcome.error)
            .execute(&mut *tx)
            .await?;
            let will_retry = !outcome.ok && attempt < max_attempts;
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
            .bind(delivery_id)
            .bind(status)
            .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
            .bind(next)
            .bind(&outcome.error)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            if status != "pending" {
                let channel = channel_name.clone();
                after_commit.defer(move || count_notification(channel, status));
            }
            let payload = if outcome.ok {
                Payload::NotificationDelivered(v1::NotificationDelivered {
                    notification_id,
                    recipient_id,
                    channel: channel_name,
                    attempt,
                    escalation_id,
                })
            } else {
                tracing::warn!(%notification_id, channel = %channel_name, attempt,
                    error = %outcome.error, will_retry, "notification attempt failed");
                Payload::NotificationFailed(v1::NotificationFailed {
                    notification_id,
                    recipient_id,
                    channel: channel_name,
                    attempt,
                    error: outcome.error,
                    will_retry,
                    escalation_id,
                })
            };
            events.push(event(&complaint_id, at, &system_actor(), "", payload));
        }
        self.ladder.outbox.append(&mut tx, &events).await?;
        tx.commit().await?;
        after_commit.committed();
        Ok(rows.len())
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
