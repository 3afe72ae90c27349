//! Escalations and the causes each gathered. The ladder raises and joins them, the worker
//! climbs them.

use chrono::{DateTime, Utc};
use redress_domain::ComplaintId;
use sqlx::{PgConnection, Row};

use super::int;

/// Serialises the raising of one complaint's causes across replicas until the transaction
/// ends: two clocks missed together must not both find "no escalation yet" and notify twice.
pub async fn lock_complaint(conn: &mut PgConnection, id: &ComplaintId) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('escalation/' || $1))")
        .bind(id.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether a step with this key was raised or joined before.
pub async fn step_taken(conn: &mut PgConnection, step_key: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM escalation_causes WHERE step_key = $1)
            OR EXISTS (SELECT 1 FROM escalations WHERE step_key = $1)",
    )
    .bind(step_key)
    .fetch_one(conn)
    .await
}

/// A new escalation, raised and not yet acknowledged.
pub struct NewEscalation<'a> {
    pub escalation_id: &'a str,
    pub step_key: &'a str,
    pub complaint_id: &'a ComplaintId,
    pub complaint_number: &'a str,
    pub level: u32,
    pub trigger: i32,
    pub recipient_id: &'a str,
    pub recipient_name: &'a str,
    pub department_id: &'a str,
    pub class: i32,
    pub clock: i32,
    pub summary: &'a str,
    pub raised_at: DateTime<Utc>,
    pub acknowledge_by: DateTime<Utc>,
    pub resend_at: DateTime<Utc>,
    pub raise_at: Option<DateTime<Utc>>,
    pub may_climb: bool,
}

/// Inserts the escalation unless its step key is taken; whether it was new.
pub async fn insert(conn: &mut PgConnection, e: &NewEscalation<'_>) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO escalations (escalation_id, step_key, complaint_id, complaint_number,
            level, trigger, recipient_id, recipient_name, department_id, class, clock, state,
            summary, raised_at, acknowledge_by, resend_at, raise_at, may_climb)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,'raised',$12,$13,$14,$15,$16,$17)
         ON CONFLICT (step_key) DO NOTHING",
    )
    .bind(e.escalation_id)
    .bind(e.step_key)
    .bind(e.complaint_id.as_str())
    .bind(e.complaint_number)
    .bind(int(e.level))
    .bind(e.trigger)
    .bind(e.recipient_id)
    .bind(e.recipient_name)
    .bind(e.department_id)
    .bind(e.class)
    .bind(e.clock)
    .bind(e.summary)
    .bind(e.raised_at)
    .bind(e.acknowledge_by)
    .bind(e.resend_at)
    .bind(e.raise_at)
    .bind(e.may_climb)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// One cause of an escalation; its record shows them all, oldest first.
pub struct NewCause<'a> {
    pub step_key: &'a str,
    pub escalation_id: &'a str,
    pub trigger: i32,
    pub clock: i32,
    pub summary: &'a str,
    pub added_at: DateTime<Utc>,
}

/// Records the cause unless its step key is taken.
pub async fn add_cause(conn: &mut PgConnection, c: &NewCause<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO escalation_causes (step_key, escalation_id, trigger, clock, summary,
            added_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (step_key) DO NOTHING",
    )
    .bind(c.step_key)
    .bind(c.escalation_id)
    .bind(c.trigger)
    .bind(c.clock)
    .bind(c.summary)
    .bind(c.added_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// An escalation a new cause may join.
#[derive(sqlx::FromRow)]
pub struct Joinable {
    pub escalation_id: String,
    /// Raised or acknowledged, not yet decided or closed.
    pub open: bool,
}

/// The complaint's escalation at `level` a cause may join, locked: an open one first, else —
/// when `closed_too` — the latest with one of `triggers`.
pub async fn joinable(
    conn: &mut PgConnection,
    id: &ComplaintId,
    level: u32,
    closed_too: bool,
    triggers: &[i32],
) -> sqlx::Result<Option<Joinable>> {
    sqlx::query_as::<_, Joinable>(
        "SELECT escalation_id, state IN ('raised', 'acknowledged') AS open
         FROM escalations
         WHERE complaint_id = $1 AND level = $2
           AND (state IN ('raised', 'acknowledged') OR ($3 AND trigger = ANY($4)))
         ORDER BY (state IN ('raised', 'acknowledged')) DESC, raised_at DESC
         LIMIT 1 FOR UPDATE",
    )
    .bind(id.as_str())
    .bind(int(level))
    .bind(closed_too)
    .bind(triggers)
    .fetch_optional(conn)
    .await
}

/// Lets the escalation climb from now on, its "still unresolved" timer started at `raise_at`
/// unless one runs already.
pub async fn let_climb(
    conn: &mut PgConnection,
    escalation_id: &str,
    raise_at: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE escalations SET may_climb = true, raise_at = COALESCE(raise_at, $2)
         WHERE escalation_id = $1",
    )
    .bind(escalation_id)
    .bind(raise_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Closes the complaint's open escalations, but `except`, and stops their timers.
pub async fn close_open(
    conn: &mut PgConnection,
    id: &ComplaintId,
    except: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE escalations SET state = 'closed', resend_at = NULL, raise_at = NULL
         WHERE complaint_id = $1 AND ($2::text IS NULL OR escalation_id <> $2)
           AND state IN ('raised', 'acknowledged')",
    )
    .bind(id.as_str())
    .bind(except)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which timer makes an escalation climb.
#[derive(Clone, Copy)]
pub enum Timer {
    /// Nobody acknowledged it by `acknowledge_by` (only those that may climb on their own).
    Unacknowledged,
    /// Its complaint is still unresolved at `raise_at`.
    Unresolved,
}

/// An escalation whose timer has run out.
pub struct Due {
    pub escalation_id: String,
    pub complaint_id: ComplaintId,
    pub level: u32,
    pub department_id: String,
    pub class: i32,
    pub clock: i32,
    pub summary: String,
}

/// Up to `limit` escalations below `top` whose `timer` ran out by `now`, oldest first, locked
/// and skipped by other replicas until the transaction ends.
pub async fn due(
    conn: &mut PgConnection,
    timer: Timer,
    now: DateTime<Utc>,
    limit: i64,
    top: u32,
) -> sqlx::Result<Vec<Due>> {
    let condition = match timer {
        Timer::Unacknowledged => {
            "state = 'raised' AND acknowledge_by <= $1 AND level < $3 AND may_climb"
        }
        Timer::Unresolved => {
            "state IN ('raised', 'acknowledged') AND raise_at <= $1 AND level < $3"
        }
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT escalation_id, complaint_id, level, department_id, class, clock, summary
         FROM escalations WHERE {condition}
         ORDER BY raised_at LIMIT $2 FOR UPDATE SKIP LOCKED"
    )))
    .bind(now)
    .bind(limit)
    .bind(int(top))
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Due {
            escalation_id: r.try_get("escalation_id")?,
            complaint_id: super::complaint_id(r, "complaint_id")?,
            level: u32::try_from(r.try_get::<i32, _>("level")?).unwrap_or(1),
            department_id: r.try_get("department_id")?,
            class: r.try_get("class")?,
            clock: r.try_get("clock")?,
            summary: r.try_get("summary")?,
        })
    })
    .collect()
}

/// Marks the escalation superseded by one further up, which ends its timers.
pub async fn supersede(conn: &mut PgConnection, escalation_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE escalations SET state = 'superseded', resend_at = NULL, raise_at = NULL
         WHERE escalation_id = $1",
    )
    .bind(escalation_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether someone at `level` or above already has the complaint open.
pub async fn covered(conn: &mut PgConnection, id: &ComplaintId, level: u32) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM escalations WHERE complaint_id = $1
            AND level >= $2 AND state IN ('raised', 'acknowledged'))",
    )
    .bind(id.as_str())
    .bind(int(level))
    .fetch_one(conn)
    .await
}

/// When the escalation's notification is sent again while unacknowledged.
pub async fn set_resend_at(
    conn: &mut PgConnection,
    escalation_id: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE escalations SET resend_at = $2 WHERE escalation_id = $1")
        .bind(escalation_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}
