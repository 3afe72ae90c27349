//! Escalations and the causes each gathered. The ladder raises and joins them, the worker
//! climbs them, the gRPC door lists, acknowledges and decides them.

use chrono::{DateTime, Utc};
use redress_domain::ComplaintId;
use redress_domain::escalation::State;
use redress_platform::pagination::Page;
use sqlx::postgres::PgRow;
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

/// One cause as an escalation's record shows it.
pub struct Cause {
    pub trigger: i32,
    pub clock: i32,
    pub summary: String,
    pub added_at: Option<DateTime<Utc>>,
}

/// An escalation as it stands, with whether its notification reached anyone.
pub struct Escalation {
    pub escalation_id: String,
    pub complaint_id: ComplaintId,
    pub complaint_number: String,
    pub level: u32,
    pub trigger: i32,
    pub recipient_id: String,
    pub department_id: String,
    pub class: i32,
    /// `None` for a state this version does not know.
    pub state: Option<State>,
    pub summary: String,
    pub raised_at: DateTime<Utc>,
    pub acknowledge_by: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub instructions: String,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: String,
    pub decision: String,
    pub delivered: bool,
    /// Oldest first.
    pub causes: Vec<Cause>,
}

const COLUMNS: &str = "e.escalation_id, e.complaint_id, e.complaint_number, e.level, e.trigger,
    e.recipient_id, e.department_id, e.class, e.state, e.summary, e.raised_at, e.acknowledge_by,
    e.acknowledged_at, e.instructions, e.decided_at, e.decided_by, e.decision,
    EXISTS (SELECT 1 FROM notifications n JOIN deliveries d ON d.notification_id = n.notification_id
            WHERE n.escalation_id = e.escalation_id AND d.status = 'delivered') AS delivered,
    (SELECT COALESCE(jsonb_agg(jsonb_build_object('trigger', c.trigger, 'clock', c.clock,
                'summary', c.summary, 'added_at', c.added_at) ORDER BY c.added_at, c.step_key),
            '[]'::jsonb)
     FROM escalation_causes c WHERE c.escalation_id = e.escalation_id) AS causes";

/// The causes from the `causes` column (a JSON array, oldest first).
fn causes(r: &PgRow) -> Result<Vec<Cause>, sqlx::Error> {
    let json: serde_json::Value = r.try_get("causes")?;
    let field = |c: &serde_json::Value, k: &str| c.get(k).cloned().unwrap_or_default();
    Ok(json
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| Cause {
            trigger: field(c, "trigger").as_i64().unwrap_or(0) as i32,
            clock: field(c, "clock").as_i64().unwrap_or(0) as i32,
            summary: field(c, "summary").as_str().unwrap_or_default().to_owned(),
            added_at: field(c, "added_at")
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.to_utc()),
        })
        .collect())
}

fn escalation(r: &PgRow) -> Result<Escalation, sqlx::Error> {
    Ok(Escalation {
        escalation_id: r.try_get("escalation_id")?,
        complaint_id: super::complaint_id(r, "complaint_id")?,
        complaint_number: r.try_get("complaint_number")?,
        level: u32::try_from(r.try_get::<i32, _>("level")?).unwrap_or(0),
        trigger: r.try_get("trigger")?,
        recipient_id: r.try_get("recipient_id")?,
        department_id: r.try_get("department_id")?,
        class: r.try_get("class")?,
        state: State::parse(&r.try_get::<String, _>("state")?),
        summary: r.try_get("summary")?,
        raised_at: r.try_get("raised_at")?,
        acknowledge_by: r.try_get("acknowledge_by")?,
        acknowledged_at: r.try_get("acknowledged_at")?,
        instructions: r.try_get("instructions")?,
        decided_at: r.try_get("decided_at")?,
        decided_by: r.try_get("decided_by")?,
        decision: r.try_get("decision")?,
        delivered: r.try_get("delivered")?,
        causes: causes(r)?,
    })
}

/// The escalation, locked until the transaction ends when `lock`; `None` when unknown.
pub async fn get(
    conn: &mut PgConnection,
    escalation_id: &str,
    lock: bool,
) -> sqlx::Result<Option<Escalation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM escalations e WHERE e.escalation_id = $1{}",
        if lock { " FOR UPDATE OF e" } else { "" }
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(escalation_id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(escalation)
        .transpose()
}

/// Which escalations a list shows; an empty text filters nothing.
pub struct Filter<'a> {
    pub recipient_id: &'a str,
    pub department_id: &'a str,
    pub state: Option<State>,
    pub complaint_id: &'a str,
    /// The caller's reach ([`redress_platform::access::Reach::sql`]): all, or these
    /// departments and what is addressed to this actor.
    pub all: bool,
    pub departments: &'a [String],
    pub actor: Option<&'a str>,
}

/// One page of escalations, newest first (keys: raised at, escalation id), one row more than
/// the page holds so the pager knows whether another follows.
pub async fn list(
    conn: &mut PgConnection,
    f: &Filter<'_>,
    page: &Page,
) -> sqlx::Result<Vec<Escalation>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM escalations e
         WHERE ($1 = '' OR e.recipient_id = $1) AND ($2 = '' OR e.department_id = $2)
           AND ($3::text IS NULL OR e.state = $3) AND ($4 = '' OR e.complaint_id = $4)
           AND ($7 OR e.department_id = ANY($8) OR e.recipient_id = $9)
           AND ($6::timestamptz IS NULL OR (e.raised_at, e.escalation_id) < ($6, $10))
         ORDER BY e.raised_at DESC, e.escalation_id DESC LIMIT $5"
    )))
    .bind(f.recipient_id)
    .bind(f.department_id)
    .bind(f.state.map(|s| s.code()))
    .bind(f.complaint_id)
    .bind(page.fetch())
    .bind(page.time(0))
    .bind(f.all)
    .bind(f.departments)
    .bind(f.actor)
    .bind(page.text(1))
    .fetch_all(conn)
    .await?
    .iter()
    .map(escalation)
    .collect()
}

/// Marks the escalation acknowledged, which ends its re-sends.
pub async fn acknowledge(
    conn: &mut PgConnection,
    escalation_id: &str,
    at: DateTime<Utc>,
    instructions: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE escalations SET state = 'acknowledged', acknowledged_at = $2,
            instructions = $3, resend_at = NULL WHERE escalation_id = $1",
    )
    .bind(escalation_id)
    .bind(at)
    .bind(instructions)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the escalation decided (and acknowledged, if it was not), which ends its timers.
pub async fn decide(
    conn: &mut PgConnection,
    escalation_id: &str,
    at: DateTime<Utc>,
    by: &str,
    decision: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE escalations SET state = 'decided', decided_at = $2, decided_by = $3,
            decision = $4, resend_at = NULL, raise_at = NULL,
            acknowledged_at = COALESCE(acknowledged_at, $2) WHERE escalation_id = $1",
    )
    .bind(escalation_id)
    .bind(at)
    .bind(by)
    .bind(decision)
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
