//! Planning: turns what is known about a complaint into revisit rows and `revisit.scheduled`
//! events (DOMAIN §6), and the background tick that plans revisits for customers still waiting
//! past the promised time.
//!
//! The rules are `redress_domain::revisit::plan`; this module stores their result. A revisit is
//! unique per complaint, occasion and sequence, so planning the same facts again (a redelivered
//! event, two replicas ticking at once) inserts nothing and publishes nothing.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use redress_domain::revisit::{self, ComplaintFacts, Planned, RevisitKind};
use redress_domain::{Class, Clock, Policy, RevisitId};
use redress_platform::outbox::Outbox;
use redress_proto::v1::{self, event::Payload};
use sqlx::{PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::envelope::PRODUCER;
use crate::error::Error;
use redress_proto::Wire as _;

/// Ensures the complaint has a row, so facts may arrive in any order.
pub async fn ensure_complaint(conn: &mut PgConnection, complaint_id: &str) -> Result<(), Error> {
    ensure_complaints(conn, &[complaint_id.to_owned()]).await
}

/// Ensures each complaint has a row, one statement for all (in id order).
pub async fn ensure_complaints(conn: &mut PgConnection, ids: &[String]) -> Result<(), Error> {
    let mut ids = ids.to_vec();
    ids.sort();
    sqlx::query(
        "INSERT INTO complaints (complaint_id) SELECT * FROM UNNEST($1::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// The columns [`facts_from_row`] reads.
const FACT_COLUMNS: &str = "complaint_id, class, accepted_at, resolutions, resolved_at, \
    on_site_services, on_site_at, completion_due, closed";

/// The facts stored for a complaint, read under a row lock (planning serialises per complaint).
async fn facts(conn: &mut PgConnection, complaint_id: &str) -> Result<ComplaintFacts, Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FACT_COLUMNS} FROM complaints WHERE complaint_id = $1 FOR UPDATE"
    )))
    .bind(complaint_id)
    .fetch_one(conn)
    .await?;
    facts_from_row(&row)
}

/// The facts of several complaints, locked in id order (as by every locker of several rows).
pub async fn facts_many(
    conn: &mut PgConnection,
    complaint_ids: &[String],
) -> Result<Vec<(String, ComplaintFacts)>, Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FACT_COLUMNS} FROM complaints WHERE complaint_id = ANY($1)
         ORDER BY complaint_id FOR UPDATE"
    )))
    .bind(complaint_ids)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("complaint_id")?, facts_from_row(r)?)))
        .collect()
}

fn facts_from_row(row: &sqlx::postgres::PgRow) -> Result<ComplaintFacts, Error> {
    Ok(ComplaintFacts {
        class: row
            .try_get::<Option<String>, _>("class")?
            .and_then(|c| Class::parse(&c).ok()),
        accepted_at: row.try_get("accepted_at")?,
        resolutions: u32::try_from(row.try_get::<i32, _>("resolutions")?).unwrap_or(0),
        resolved_at: row.try_get("resolved_at")?,
        on_site_services: u32::try_from(row.try_get::<i32, _>("on_site_services")?).unwrap_or(0),
        on_site_at: row.try_get("on_site_at")?,
        completion_due: row.try_get("completion_due")?,
        closed: row.try_get("closed")?,
    })
}

/// When the planner next looks at a complaint: when its current waiting period ends, or, while
/// it is open, at the promised completion.
pub fn next_check(
    policy: &Policy,
    facts: &ComplaintFacts,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match revisit::waiting(policy, facts, now) {
        Some(w) => Some(w.due_at),
        None if facts.resolved_at.is_none() && !facts.closed => facts.completion_due,
        None => None,
    }
}

/// Sets when the planner next looks at each complaint, one statement for all.
pub async fn set_next_checks(
    conn: &mut PgConnection,
    checks: &[(String, Option<DateTime<Utc>>)],
) -> Result<(), Error> {
    if checks.is_empty() {
        return Ok(());
    }
    let (ids, at): (Vec<String>, Vec<Option<DateTime<Utc>>>) = checks.iter().cloned().unzip();
    sqlx::query(
        "UPDATE complaints c SET waiting_check_at = n.at
         FROM UNNEST($1::text[], $2::timestamptz[]) AS n(complaint_id, at)
         WHERE c.complaint_id = n.complaint_id",
    )
    .bind(ids)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Plans every revisit the complaint's facts call for at `now` that is not planned yet, and
/// appends a `revisit.scheduled` for each new one. Returns the new revisits' ids.
pub async fn plan_complaint(
    conn: &mut PgConnection,
    outbox: &Outbox,
    policy: &Policy,
    complaint_id: &str,
    now: DateTime<Utc>,
    causation: &str,
) -> Result<Vec<String>, Error> {
    let facts = facts(conn, complaint_id).await?;
    let planned = revisit::plan(policy, &facts, now);
    let mut events = Vec::new();
    let mut ids = Vec::new();
    for p in &planned {
        if let Some(id) = insert(conn, complaint_id, p, now).await? {
            events.push(
                scheduled_event(conn, complaint_id, &id, p.kind, p.due_at, now, causation).await?,
            );
            ids.push(id);
        }
    }
    // The planner next looks at a waiting complaint when its current period ends.
    let next = next_check(policy, &facts, now);
    set_next_checks(conn, &[(complaint_id.to_owned(), next)]).await?;
    if planned.iter().any(|p| p.kind == RevisitKind::WhileWaiting) {
        // A newer waiting revisit supersedes older ones never made.
        if let Some(w) = planned.iter().find(|p| p.kind == RevisitKind::WhileWaiting) {
            cancel_waiting(conn, complaint_id, Some(w.sequence)).await?;
        }
    }
    outbox.append(conn, &events).await?;
    Ok(ids)
}

async fn insert(
    conn: &mut PgConnection,
    complaint_id: &str,
    p: &Planned,
    now: DateTime<Utc>,
) -> Result<Option<String>, Error> {
    let id = RevisitId::new().to_string();
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO revisits (revisit_id, complaint_id, kind, sequence, state, due_at, call_at,
             created_at)
         VALUES ($1, $2, $3, $4, 'scheduled', $5, $5, $6)
         ON CONFLICT (complaint_id, kind, sequence) DO NOTHING
         RETURNING revisit_id",
    )
    .bind(&id)
    .bind(complaint_id)
    .bind(p.kind.as_str())
    .bind(i32::try_from(p.sequence).unwrap_or(i32::MAX))
    .bind(p.due_at)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(inserted)
}

/// A `revisit.scheduled` for a revisit (new, or a retry after an unreached attempt, then
/// `call_at` is the retry's time).
pub async fn scheduled_event(
    conn: &mut PgConnection,
    complaint_id: &str,
    revisit_id: &str,
    kind: RevisitKind,
    call_at: DateTime<Utc>,
    now: DateTime<Utc>,
    causation: &str,
) -> Result<v1::Event, Error> {
    let department: String =
        sqlx::query_scalar("SELECT department_id FROM complaints WHERE complaint_id = $1")
            .bind(complaint_id)
            .fetch_one(conn)
            .await?;
    Ok(PRODUCER.event(
        complaint_id,
        now,
        &PRODUCER.system_actor(),
        causation,
        Payload::RevisitScheduled(v1::RevisitScheduled {
            revisit_id: revisit_id.to_owned(),
            kind: kind.to_wire(),
            due_at: Some(crate::envelope::ts(call_at)),
            agent_id: String::new(),
            department_id: department,
        }),
    ))
}

/// Cancels waiting revisits not yet made: all of them (`below` = None, the customer no longer
/// waits), or those older than sequence `below` (superseded by a newer period's revisit).
pub async fn cancel_waiting(
    conn: &mut PgConnection,
    complaint_id: &str,
    below: Option<u32>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE revisits SET state = 'cancelled', call_at = NULL
         WHERE complaint_id = $1 AND kind = $2 AND state IN ('scheduled', 'claimed', 'unreached')
           AND ($3::int IS NULL OR sequence < $3)",
    )
    .bind(complaint_id)
    .bind(RevisitKind::WhileWaiting.as_str())
    .bind(below.map(|b| i32::try_from(b).unwrap_or(i32::MAX)))
    .execute(conn)
    .await?;
    Ok(())
}

/// The background planner: waiting revisits need time to pass, not an event. Each tick takes the
/// complaints whose waiting check is due, under `FOR UPDATE SKIP LOCKED`, so replicas share the
/// work and never plan one twice.
pub struct Ticker {
    pub pool: PgPool,
    pub outbox: Outbox,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    pub interval: StdDuration,
}

impl Ticker {
    pub async fn run(self, stop: CancellationToken) {
        loop {
            match self.tick().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(planned = n, "waiting revisits planned");
                    self.outbox.wake();
                }
                Err(e) => tracing::warn!(error = %e, "revisit planner tick failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// One pass; returns how many revisits were planned.
    pub async fn tick(&self) -> Result<usize, Error> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT complaint_id FROM complaints
             WHERE resolved_at IS NULL AND NOT closed AND waiting_check_at <= $1
             ORDER BY waiting_check_at LIMIT 100 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut planned = 0;
        for id in due {
            planned += plan_complaint(&mut tx, &self.outbox, &self.policy, &id, now, "")
                .await?
                .len();
        }
        tx.commit().await?;
        Ok(planned)
    }
}
