//! Notifications, one per escalation and recipient; their deliveries, one per channel and send;
//! and every attempt. Rows the worker takes are locked and skipped by other replicas, so a
//! delivery is attempted by one replica at a time.

use chrono::{DateTime, Utc};
use redress_domain::ComplaintId;
use sqlx::{PgConnection, Row};

use super::int;

/// Stores the escalation's notification, its body as first sent.
pub async fn insert(
    conn: &mut PgConnection,
    notification_id: &str,
    escalation_id: &str,
    recipient_id: &str,
    body: &serde_json::Value,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notifications (notification_id, escalation_id, recipient_id, body,
            created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(notification_id)
    .bind(escalation_id)
    .bind(recipient_id)
    .bind(body)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues send `round` of the notification on `channel`, due at `at`, unless it is queued
/// already; whether it was new.
pub async fn queue(
    conn: &mut PgConnection,
    notification_id: &str,
    channel: &str,
    round: u32,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO deliveries (notification_id, channel, round, next_attempt_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(notification_id)
    .bind(channel)
    .bind(int(round))
    .bind(at)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// A pending delivery whose next attempt is due.
pub struct DueDelivery {
    pub delivery_id: i64,
    pub notification_id: String,
    /// Which send of the notification (1 the first).
    pub round: i32,
    /// Attempts made so far.
    pub attempts: i32,
    pub body: serde_json::Value,
    pub recipient_id: String,
    pub escalation_id: String,
    pub complaint_id: ComplaintId,
}

/// Up to `limit` pending deliveries on `channel` due by `now`, earliest first, locked and skipped
/// by other replicas until the transaction ends.
pub async fn due_deliveries(
    conn: &mut PgConnection,
    channel: &str,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<DueDelivery>> {
    sqlx::query(
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
    .bind(channel)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(DueDelivery {
            delivery_id: r.try_get("delivery_id")?,
            notification_id: r.try_get("notification_id")?,
            round: r.try_get("round")?,
            attempts: r.try_get("attempts")?,
            body: r.try_get("body")?,
            recipient_id: r.try_get("recipient_id")?,
            escalation_id: r.try_get("escalation_id")?,
            complaint_id: super::complaint_id(r, "complaint_id")?,
        })
    })
    .collect()
}

/// What one attempt came to, and what the delivery is now.
pub struct Attempt<'a> {
    pub delivery_id: i64,
    /// 1 the first.
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub http_status: Option<i32>,
    pub error: &'a str,
    /// `pending`, `delivered` or `failed`.
    pub status: &'a str,
    pub next_attempt_at: DateTime<Utc>,
}

/// Records the attempt (once) and the delivery's new status; a finished delivery gets its time.
pub async fn record_attempt(conn: &mut PgConnection, a: &Attempt<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempt, at, ok, http_status, error)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(a.delivery_id)
    .bind(int(a.attempt))
    .bind(a.at)
    .bind(a.ok)
    .bind(a.http_status)
    .bind(a.error)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE deliveries SET status = $2, attempts = $3, next_attempt_at = $4,
            last_error = $5, finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE $6 END
         WHERE delivery_id = $1",
    )
    .bind(a.delivery_id)
    .bind(a.status)
    .bind(int(a.attempt))
    .bind(a.next_attempt_at)
    .bind(a.error)
    .bind(a.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// An unacknowledged notification due to be sent again.
pub struct DueResend {
    pub escalation_id: String,
    pub complaint_id: ComplaintId,
    pub notification_id: String,
    pub recipient_id: String,
    pub body: serde_json::Value,
    /// Sends so far.
    pub sends: i32,
}

/// Up to `limit` notifications of raised escalations whose re-send is due by `now`, earliest
/// first, their escalations locked and skipped by other replicas until the transaction ends.
pub async fn due_resends(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<DueResend>> {
    sqlx::query(
        "SELECT e.escalation_id, e.complaint_id, n.notification_id, n.recipient_id, n.body,
                n.sends
         FROM escalations e JOIN notifications n ON n.escalation_id = e.escalation_id
         WHERE e.state = 'raised' AND e.resend_at <= $1
         ORDER BY e.resend_at LIMIT $2
         FOR UPDATE OF e SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(DueResend {
            escalation_id: r.try_get("escalation_id")?,
            complaint_id: super::complaint_id(r, "complaint_id")?,
            notification_id: r.try_get("notification_id")?,
            recipient_id: r.try_get("recipient_id")?,
            body: r.try_get("body")?,
            sends: r.try_get("sends")?,
        })
    })
    .collect()
}

/// Counts one more send of the notification.
pub async fn set_sends(
    conn: &mut PgConnection,
    notification_id: &str,
    sends: u32,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE notifications SET sends = $2 WHERE notification_id = $1")
        .bind(notification_id)
        .bind(int(sends))
        .execute(conn)
        .await?;
    Ok(())
}
