//! The `revisits` table: planned, claimed and made revisits, and the reads built on it (the
//! agents' work list, the rate report's rows).

use chrono::{DateTime, Utc};
use redress_domain::ComplaintId;
use redress_domain::revisit::{Planned, RevisitKind};
use redress_platform::access::Reach;
use redress_platform::pagination::Page;
use redress_proto::Wire as _;
use redress_proto::convert::class_letter_to_wire;
use redress_proto::v1;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};

use super::decode_id;
use crate::envelope::{state_to_proto, ts};
use crate::work::Outcome;

/// The columns [`revisit_from_row`] reads, for `FROM revisits r JOIN complaints c USING
/// (complaint_id)` (a macro so queries stay static strings).
macro_rules! revisit_columns {
    () => {
        "r.revisit_id, r.complaint_id, c.number, r.kind, r.state, r.due_at, r.call_at,
         r.agent_id, c.department_id, c.customer_name, c.customer_phone, c.class, c.summary,
         c.result, r.attempts, r.satisfied"
    };
}

/// One revisit with what the agent needs to make the call, as every answer shows it.
fn revisit_from_row(row: &PgRow) -> Result<v1::Revisit, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let class: Option<String> = row.try_get("class")?;
    let due: DateTime<Utc> = row.try_get("due_at")?;
    Ok(v1::Revisit {
        revisit_id: row.try_get("revisit_id")?,
        complaint_id: row.try_get("complaint_id")?,
        complaint_number: row.try_get("number")?,
        kind: RevisitKind::parse(&kind)
            .map_or(v1::RevisitKind::Unspecified as i32, |k| k.to_wire()),
        state: state_to_proto(&state) as i32,
        due_at: Some(ts(due)),
        agent_id: row
            .try_get::<Option<String>, _>("agent_id")?
            .unwrap_or_default(),
        department_id: row.try_get("department_id")?,
        customer_name: row.try_get("customer_name")?,
        customer_phone: row.try_get("customer_phone")?,
        class: class_letter_to_wire(class.as_deref().unwrap_or_default()),
        complaint_summary: row.try_get("summary")?,
        result: row.try_get("result")?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
        satisfied: row.try_get("satisfied")?,
    })
}

/// One revisit by id.
pub async fn revisit(
    conn: &mut PgConnection,
    revisit_id: &str,
) -> Result<Option<v1::Revisit>, sqlx::Error> {
    sqlx::query(concat!(
        "SELECT ",
        revisit_columns!(),
        " FROM revisits r JOIN complaints c USING (complaint_id) WHERE r.revisit_id = $1"
    ))
    .bind(revisit_id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(revisit_from_row)
    .transpose()
}

/// Which revisits still to be made the work list shows (`None` narrows nothing).
pub struct DueFilter<'a> {
    pub agent_id: Option<&'a str>,
    pub department_id: Option<&'a str>,
    pub call_before: Option<DateTime<Utc>>,
    pub reach: &'a Reach,
}

/// One page of revisits still to be made, the next call first, keyset-paged on
/// `(call_at, revisit_id)`; each with its call time (the page's key). Fetches
/// [`Page::fetch`] rows.
pub async fn due(
    conn: impl PgExecutor<'_>,
    f: &DueFilter<'_>,
    page: &Page,
) -> Result<Vec<(DateTime<Utc>, v1::Revisit)>, sqlx::Error> {
    let (all, department, actor) = f.reach.sql();
    sqlx::query(concat!(
        "SELECT ",
        revisit_columns!(),
        " FROM revisits r JOIN complaints c USING (complaint_id)
         WHERE r.state IN ('scheduled', 'claimed', 'unreached') AND r.call_at IS NOT NULL
           AND ($1::text IS NULL OR r.agent_id = $1)
           AND ($2::text IS NULL OR c.department_id = $2)
           AND ($3::timestamptz IS NULL OR r.call_at < $3)
           AND ($4::timestamptz IS NULL OR (r.call_at, r.revisit_id) > ($4, $5))
           AND ($7 OR c.department_id = ANY($8) OR r.agent_id = $9)
         ORDER BY r.call_at, r.revisit_id
         LIMIT $6"
    ))
    .bind(f.agent_id)
    .bind(f.department_id)
    .bind(f.call_before)
    .bind(page.time(0))
    .bind(page.text(1))
    .bind(page.fetch())
    .bind(all)
    .bind(department)
    .bind(actor)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("call_at")?, revisit_from_row(r)?)))
    .collect()
}

/// Which revisits the rate report counts (`None` narrows nothing): due in `[from, to)`.
pub struct RateFilter<'a> {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub department_id: Option<&'a str>,
    pub kind: Option<RevisitKind>,
}

/// One revisit as the rate report counts it.
pub struct RateRow {
    pub revisit_id: String,
    pub complaint_id: String,
    pub complaint_number: String,
    pub due_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub customer_name: String,
    pub department_id: String,
}

/// The revisits `f` selects that were due (cancelled ones were not), by department and due
/// time.
pub async fn rate_rows(
    conn: impl PgExecutor<'_>,
    f: &RateFilter<'_>,
) -> Result<Vec<RateRow>, sqlx::Error> {
    sqlx::query(
        "SELECT r.revisit_id, r.complaint_id, c.number, r.due_at, r.completed_at, r.attempts,
                r.reached, c.customer_name, c.department_id
         FROM revisits r JOIN complaints c USING (complaint_id)
         WHERE r.state <> 'cancelled'
           AND ($1::timestamptz IS NULL OR r.due_at >= $1)
           AND ($2::timestamptz IS NULL OR r.due_at < $2)
           AND ($3::text IS NULL OR c.department_id = $3)
           AND ($4::text IS NULL OR r.kind = $4)
         ORDER BY c.department_id, r.due_at, r.revisit_id",
    )
    .bind(f.from)
    .bind(f.to)
    .bind(f.department_id)
    .bind(f.kind.map(|k| k.as_str()))
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(RateRow {
            revisit_id: r.try_get("revisit_id")?,
            complaint_id: r.try_get("complaint_id")?,
            complaint_number: r.try_get("number")?,
            due_at: r.try_get("due_at")?,
            completed_at: r.try_get("completed_at")?,
            attempts: u32::try_from(r.try_get::<i32, _>("attempts")?).unwrap_or(0),
            customer_name: r.try_get("customer_name")?,
            department_id: r.try_get("department_id")?,
        })
    })
    .collect()
}

/// Inserts a planned revisit as `revisit_id` unless the complaint already has it (same
/// occasion and sequence); returns the id when inserted.
pub async fn insert_planned(
    conn: &mut PgConnection,
    revisit_id: &str,
    complaint_id: &ComplaintId,
    p: &Planned,
    now: DateTime<Utc>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO revisits (revisit_id, complaint_id, kind, sequence, state, due_at, call_at,
             created_at)
         VALUES ($1, $2, $3, $4, 'scheduled', $5, $5, $6)
         ON CONFLICT (complaint_id, kind, sequence) DO NOTHING
         RETURNING revisit_id",
    )
    .bind(revisit_id)
    .bind(complaint_id.as_str())
    .bind(p.kind.as_str())
    .bind(i32::try_from(p.sequence).unwrap_or(i32::MAX))
    .bind(p.due_at)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// Cancels waiting revisits not yet made: all of them (`below` = None), or those older than
/// sequence `below`.
pub async fn cancel_waiting(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
    below: Option<u32>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE revisits SET state = 'cancelled', call_at = NULL
         WHERE complaint_id = $1 AND kind = $2 AND state IN ('scheduled', 'claimed', 'unreached')
           AND ($3::int IS NULL OR sequence < $3)",
    )
    .bind(complaint_id.as_str())
    .bind(RevisitKind::WhileWaiting.as_str())
    .bind(below.map(|b| i32::try_from(b).unwrap_or(i32::MAX)))
    .execute(conn)
    .await?;
    Ok(())
}

/// The locked row of a revisit: its state, agent, complaint and what the commands check.
pub struct Locked {
    pub state: String,
    pub agent_id: Option<String>,
    pub complaint_id: ComplaintId,
    pub kind: RevisitKind,
    pub attempts: u32,
    pub new_issues: bool,
    /// No further call is planned (an unreached revisit whose attempts are used up, or one
    /// made or cancelled).
    pub no_call: bool,
}

/// A revisit locked for update, if it exists.
pub async fn lock(conn: &mut PgConnection, id: &str) -> Result<Option<Locked>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT state, agent_id, complaint_id, kind, attempts, new_issues,
                call_at IS NULL AS no_call
         FROM revisits WHERE revisit_id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    let kind: String = row.try_get("kind")?;
    Ok(Some(Locked {
        state: row.try_get("state")?,
        agent_id: row.try_get("agent_id")?,
        complaint_id: decode_id(&row, "complaint_id")?,
        kind: RevisitKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("stored kind {kind}").into()))?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
        new_issues: row.try_get("new_issues")?,
        no_call: row.try_get("no_call")?,
    }))
}

/// The revisit is `agent_id`'s.
pub async fn claim(conn: &mut PgConnection, id: &str, agent_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE revisits SET state = 'claimed', agent_id = $2 WHERE revisit_id = $1")
        .bind(id)
        .bind(agent_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The revisit reached the customer, with what they said.
pub async fn complete(
    conn: &mut PgConnection,
    id: &str,
    o: &Outcome,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE revisits SET state = 'completed', call_at = NULL, reached = true,
            satisfied = $2, feelings = $3, remaining_dissatisfaction = $4, opinions = $5,
            appointed_answer_at = $6, method = $7, new_issues = $8, complains_again = $9,
            repeat_reason = $10, completed_at = $11
         WHERE revisit_id = $1",
    )
    .bind(id)
    .bind(o.satisfied)
    .bind(&o.feelings)
    .bind(&o.remaining_dissatisfaction)
    .bind(&o.opinions)
    .bind(o.appointed_answer_at)
    .bind(o.method.as_str_name())
    .bind(o.new_issues)
    .bind(o.complains_again)
    .bind(&o.repeat_reason)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The customer was not reached: `attempts` made, the next call at `next` (None: no more), open
/// to whichever agent is on duty then.
pub async fn unreached(
    conn: &mut PgConnection,
    id: &str,
    attempts: u32,
    next: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE revisits SET state = 'unreached', agent_id = NULL, attempts = $2,
            call_at = $3, reached = false
         WHERE revisit_id = $1",
    )
    .bind(id)
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .bind(next)
    .execute(conn)
    .await?;
    Ok(())
}

/// The manager signed the sheet with `result`.
pub async fn sign_off(
    conn: &mut PgConnection,
    id: &str,
    manager_id: &str,
    result: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE revisits SET state = 'signed_off', signed_by = $2, sign_off_result = $3,
            signed_at = $4
         WHERE revisit_id = $1",
    )
    .bind(id)
    .bind(manager_id)
    .bind(result)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The follow-up of the complaint's on-site service number `sequence` (or its latest, when
/// that one was not planned).
pub async fn on_site_follow_up(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
    sequence: i64,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT revisit_id FROM revisits WHERE complaint_id = $1 AND kind = $2
         ORDER BY (sequence = $3) DESC, sequence DESC LIMIT 1",
    )
    .bind(complaint_id.as_str())
    .bind(RevisitKind::AfterOnSiteService.as_str())
    .bind(i32::try_from(sequence).unwrap_or(i32::MAX))
    .fetch_one(conn)
    .await
}
