//! The monitor's tables: what it knows of each complaint (learnt from events) and one row per
//! clock, with `next_fire_at` kept equal to the domain's [`LimitClock::next_fire_at`] on every
//! write so the scheduler only ever reads the earliest row of one partial index.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use redress_domain::sla::{ClockKind, ClockState, LimitClock, late_day};
use redress_domain::{Class, ComplaintId};
use redress_platform::access::Reach;
use redress_platform::pagination::Page;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use tokio::sync::Notify;

/// One stored clock: the domain clock and what the monitor keeps beside it.
#[derive(Debug, Clone)]
pub struct StoredClock {
    pub complaint_id: String,
    /// The revisit id for revisit clocks; empty otherwise.
    pub key: String,
    /// 1, then +1 per reopening that restarted the clock.
    pub run: i32,
    pub clock: LimitClock,
    pub agent_id: String,
    pub special_reason: String,
    pub special_reason_by: String,
}

/// The columns [`StoredClock::from_row`] reads, for `SELECT`s on `clocks c`.
pub const CLOCK_COLUMNS: &str = "c.complaint_id, c.kind, c.key, c.run, c.started_at, c.due_at, \
    c.warn_at, c.state, c.warned_at, c.overdue_days, c.met_at, c.agent_id, c.special_reason, \
    c.special_reason_by";

/// The columns [`Complaint::from_row`] reads beside a clock, for `SELECT`s joining
/// `complaints p` to `clocks c` (the complaint id is the clock's).
const JOINED_COMPLAINT_COLUMNS: &str = "p.number, p.class, p.department_id, \
    p.acceptance_owner_id, p.handler_id, p.responsible_person_id";

/// A complaint's clocks in the order people read them (DOMAIN §4's order of the limits), so
/// the status and the special-reason form list them alike.
const DISPLAY_ORDER: &str = "array_position(ARRAY['acceptance','first_feedback','completion',
    'intermediate_result','revisit'], c.kind), c.due_at, c.key";

impl StoredClock {
    pub fn new(complaint_id: &str, key: &str, clock: LimitClock) -> Self {
        Self {
            complaint_id: complaint_id.to_owned(),
            key: key.to_owned(),
            run: 1,
            clock,
            agent_id: String::new(),
            special_reason: String::new(),
            special_reason_by: String::new(),
        }
    }

    pub fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        let kind: String = r.try_get("kind")?;
        let state: String = r.try_get("state")?;
        let bad = |what: &str, v: &str| sqlx::Error::Decode(format!("unknown {what} {v:?}").into());
        Ok(Self {
            complaint_id: r.try_get("complaint_id")?,
            key: r.try_get("key")?,
            run: r.try_get("run")?,
            clock: LimitClock {
                kind: ClockKind::parse(&kind).ok_or_else(|| bad("clock kind", &kind))?,
                started_at: r.try_get("started_at")?,
                due_at: r.try_get("due_at")?,
                warn_at: r.try_get("warn_at")?,
                state: ClockState::parse(&state).ok_or_else(|| bad("clock state", &state))?,
                warned_at: r.try_get("warned_at")?,
                overdue_days: u32::try_from(r.try_get::<i32, _>("overdue_days")?).unwrap_or(0),
                met_at: r.try_get("met_at")?,
            },
            agent_id: r.try_get("agent_id")?,
            special_reason: r.try_get("special_reason")?,
            special_reason_by: r.try_get("special_reason_by")?,
        })
    }

    pub fn next_fire_at(&self) -> Option<DateTime<Utc>> {
        self.clock.next_fire_at(late_day())
    }
}

/// Tells the scheduler of this process that a deadline was written, so that one earlier than
/// its planned wake-up is not slept through. Another replica's deadlines are seen at the
/// scheduler's capped sleep.
#[derive(Default)]
pub struct Wakeup {
    notify: Notify,
    /// The earliest deadline written since the scheduler last looked.
    hint: Mutex<Option<DateTime<Utc>>>,
    /// When the scheduler plans to wake.
    planned: Mutex<Option<DateTime<Utc>>>,
}

impl Wakeup {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A clock now fires at `at` (its transaction may still be open: a wake-up for a deadline
    /// that rolled back finds nothing to do, which is harmless).
    pub fn deadline_written(&self, at: DateTime<Utc>) {
        if let Ok(mut hint) = self.hint.lock()
            && hint.is_none_or(|h| at < h)
        {
            *hint = Some(at);
        }
        let earlier = self
            .planned
            .lock()
            .map(|p| p.is_none_or(|p| at < p))
            .unwrap_or(true);
        if earlier {
            self.notify.notify_one();
        }
    }

    /// The earliest hinted deadline, forgetting it if it is already due at `now` (the round
    /// about to run takes it).
    pub fn take_hint(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut hint = self.hint.lock().ok()?;
        let h = *hint;
        if h.is_some_and(|h| h <= now) {
            *hint = None;
        }
        h
    }

    pub fn plan(&self, at: DateTime<Utc>) {
        if let Ok(mut p) = self.planned.lock() {
            *p = Some(at);
        }
    }

    pub async fn notified(&self) {
        self.notify.notified().await
    }
}

/// Inserts or overwrites clocks (one statement for the set) and tells the scheduler.
pub async fn save(
    conn: &mut PgConnection,
    clocks: &[StoredClock],
    wakeup: &Wakeup,
) -> Result<(), sqlx::Error> {
    write(
        conn,
        clocks,
        wakeup,
        "DO UPDATE SET
            run = EXCLUDED.run, started_at = EXCLUDED.started_at, due_at = EXCLUDED.due_at,
            warn_at = EXCLUDED.warn_at, state = EXCLUDED.state, warned_at = EXCLUDED.warned_at,
            overdue_days = EXCLUDED.overdue_days, met_at = EXCLUDED.met_at,
            next_fire_at = EXCLUDED.next_fire_at, agent_id = EXCLUDED.agent_id,
            special_reason = EXCLUDED.special_reason,
            special_reason_by = EXCLUDED.special_reason_by, updated_at = now()",
    )
    .await?;
    Ok(())
}

/// Writes clocks with `on_conflict` deciding what happens to one already stored.
async fn write(
    conn: &mut PgConnection,
    clocks: &[StoredClock],
    wakeup: &Wakeup,
    on_conflict: &'static str,
) -> Result<Vec<PgRow>, sqlx::Error> {
    if clocks.is_empty() {
        return Ok(Vec::new());
    }
    let mut cols = ClockColumns::default();
    for c in clocks {
        cols.push(c);
        if let Some(at) = c.next_fire_at() {
            wakeup.deadline_written(at);
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO clocks (complaint_id, kind, key, run, started_at, due_at, warn_at, state,
            warned_at, overdue_days, met_at, next_fire_at, agent_id, special_reason,
            special_reason_by, updated_at)
         SELECT *, now() FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[],
            $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::text[],
            $9::timestamptz[], $10::int[], $11::timestamptz[], $12::timestamptz[], $13::text[],
            $14::text[], $15::text[])
         ON CONFLICT (complaint_id, kind, key) {on_conflict}"
    )))
    .bind(cols.complaint_id)
    .bind(cols.kind)
    .bind(cols.key)
    .bind(cols.run)
    .bind(cols.started_at)
    .bind(cols.due_at)
    .bind(cols.warn_at)
    .bind(cols.state)
    .bind(cols.warned_at)
    .bind(cols.overdue_days)
    .bind(cols.met_at)
    .bind(cols.next_fire_at)
    .bind(cols.agent_id)
    .bind(cols.special_reason)
    .bind(cols.special_reason_by)
    .fetch_all(conn)
    .await
}

/// Inserts the clocks that do not exist yet (intake's clocks arrive with two events), one
/// statement for the set; a clock already there, or twice in `clocks`, is left as it is.
/// Returns the (complaint, kind, key) of those inserted.
pub async fn insert_new(
    conn: &mut PgConnection,
    clocks: &[StoredClock],
    wakeup: &Wakeup,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    write(
        conn,
        clocks,
        wakeup,
        "DO NOTHING RETURNING complaint_id, kind, key",
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
    .collect()
}

#[derive(Default)]
struct ClockColumns {
    complaint_id: Vec<String>,
    kind: Vec<&'static str>,
    key: Vec<String>,
    run: Vec<i32>,
    started_at: Vec<DateTime<Utc>>,
    due_at: Vec<DateTime<Utc>>,
    warn_at: Vec<DateTime<Utc>>,
    state: Vec<&'static str>,
    warned_at: Vec<Option<DateTime<Utc>>>,
    overdue_days: Vec<i32>,
    met_at: Vec<Option<DateTime<Utc>>>,
    next_fire_at: Vec<Option<DateTime<Utc>>>,
    agent_id: Vec<String>,
    special_reason: Vec<String>,
    special_reason_by: Vec<String>,
}

impl ClockColumns {
    fn push(&mut self, c: &StoredClock) {
        self.complaint_id.push(c.complaint_id.clone());
        self.kind.push(c.clock.kind.as_str());
        self.key.push(c.key.clone());
        self.run.push(c.run);
        self.started_at.push(c.clock.started_at);
        self.due_at.push(c.clock.due_at);
        self.warn_at.push(c.clock.warn_at);
        self.state.push(c.clock.state.as_str());
        self.warned_at.push(c.clock.warned_at);
        self.overdue_days
            .push(i32::try_from(c.clock.overdue_days).unwrap_or(i32::MAX));
        self.met_at.push(c.clock.met_at);
        self.next_fire_at.push(c.next_fire_at());
        self.agent_id.push(c.agent_id.clone());
        self.special_reason.push(c.special_reason.clone());
        self.special_reason_by.push(c.special_reason_by.clone());
    }
}

/// One clock, locked for update.
pub async fn load(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
    kind: ClockKind,
    key: &str,
) -> Result<Option<StoredClock>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS} FROM clocks c
         WHERE c.complaint_id = $1 AND c.kind = $2 AND c.key = $3 FOR UPDATE"
    )))
    .bind(complaint_id.as_str())
    .bind(kind.as_str())
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(StoredClock::from_row).transpose()
}

/// The clocks of `kind` (key "") of several complaints, locked for update in id order.
pub async fn load_kind(
    conn: &mut PgConnection,
    complaint_ids: &[String],
    kind: ClockKind,
) -> Result<Vec<StoredClock>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS} FROM clocks c
         WHERE c.complaint_id = ANY($1) AND c.kind = $2 AND c.key = ''
         ORDER BY c.complaint_id FOR UPDATE"
    )))
    .bind(complaint_ids)
    .bind(kind.as_str())
    .fetch_all(conn)
    .await?
    .iter()
    .map(StoredClock::from_row)
    .collect()
}

/// Every clock of a complaint, locked for update, in display order.
pub async fn load_all(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
) -> Result<Vec<StoredClock>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS} FROM clocks c WHERE c.complaint_id = $1
         ORDER BY {DISPLAY_ORDER} FOR UPDATE"
    )))
    .bind(complaint_id.as_str())
    .fetch_all(conn)
    .await?
    .iter()
    .map(StoredClock::from_row)
    .collect()
}

/// What the monitor knows of a complaint.
#[derive(Debug, Clone, Default)]
pub struct Complaint {
    pub complaint_id: String,
    pub number: String,
    /// `A`…`D`, empty until classified.
    pub class: String,
    pub department_id: String,
    pub acceptance_owner_id: String,
    pub handler_id: String,
    pub responsible_person_id: String,
    /// When the first handler was assigned.
    pub first_named_at: Option<DateTime<Utc>>,
}

impl Complaint {
    pub fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            complaint_id: r.try_get("complaint_id")?,
            number: r
                .try_get::<Option<String>, _>("number")?
                .unwrap_or_default(),
            class: r.try_get::<Option<String>, _>("class")?.unwrap_or_default(),
            department_id: r
                .try_get::<Option<String>, _>("department_id")?
                .unwrap_or_default(),
            acceptance_owner_id: r
                .try_get::<Option<String>, _>("acceptance_owner_id")?
                .unwrap_or_default(),
            handler_id: r
                .try_get::<Option<String>, _>("handler_id")?
                .unwrap_or_default(),
            responsible_person_id: r
                .try_get::<Option<String>, _>("responsible_person_id")?
                .unwrap_or_default(),
            // Not every query reads it; absent means "not known", treated as in time.
            first_named_at: r
                .try_get::<Option<DateTime<Utc>>, _>("first_named_at")
                .ok()
                .flatten(),
        })
    }

    /// Who a missed limit of `clock` fines (DOMAIN §9): the responsible person named, else the
    /// handler if they had the complaint by the due time; nobody otherwise (a handler given an
    /// already-late complaint is not fined for it).
    pub fn fined_for(&self, clock: &StoredClock) -> String {
        if !self.responsible_person_id.is_empty() {
            return self.responsible_person_id.clone();
        }
        let in_time = self
            .first_named_at
            .is_none_or(|named| named <= clock.clock.due_at);
        if in_time {
            self.handler_id.clone()
        } else {
            String::new()
        }
    }

    /// Who must act on `clock` and is held to it (DOMAIN §7: late acceptance against the
    /// acceptance owner; otherwise the responsible person named, else the handler; a revisit
    /// against the agent who claimed it).
    pub fn responsible_for(&self, clock: &StoredClock) -> String {
        let pick = |ids: &[&str]| {
            ids.iter()
                .find(|s| !s.is_empty())
                .map(|s| (*s).to_owned())
                .unwrap_or_default()
        };
        match clock.clock.kind {
            ClockKind::Acceptance => pick(&[&self.acceptance_owner_id]),
            // DOMAIN §9: a missed revisit is the revisit owner's, never the handler's; nobody
            // claimed it → empty here, the complaint centre's manager in the ledger.
            ClockKind::Revisit => pick(&[&clock.agent_id]),
            _ => pick(&[&self.responsible_person_id, &self.handler_id]),
        }
    }
}

/// Notes that `c` went overdue (event `overdue_event_id`) owing a lateness fine to a person
/// not known yet. Once per clock.
pub async fn owe_fine(
    conn: &mut PgConnection,
    c: &StoredClock,
    overdue_event_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO owed_fines (complaint_id, kind, key, overdue_event_id, due_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(&c.complaint_id)
    .bind(c.clock.kind.as_str())
    .bind(&c.key)
    .bind(overdue_event_id)
    .bind(c.clock.due_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which of `complaint_ids` owe a lateness fine to a person not known yet.
pub async fn owing(
    conn: &mut PgConnection,
    complaint_ids: &[String],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    if complaint_ids.is_empty() {
        return Ok(Default::default());
    }
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT complaint_id FROM owed_fines WHERE complaint_id = ANY($1)",
    )
    .bind(complaint_ids)
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().collect())
}

/// The fines the complaint owes to the first person named for it, who was named at `named_at`:
/// taken off the list, and returned (clock kind, overdue event id) where that person was
/// responsible by the due time. Fines whose due time came before anybody was named are dropped
/// (DOMAIN §7: only where a person is named).
pub async fn take_owed_fines(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
    named_at: DateTime<Utc>,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "DELETE FROM owed_fines WHERE complaint_id = $1
         RETURNING kind, overdue_event_id, due_at",
    )
    .bind(complaint_id.as_str())
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, due)| named_at <= *due)
        .map(|(kind, event, _)| (kind, event))
        .collect())
}

/// The complaint's row read under a share lock (by the scheduler, whose ids come from rows and
/// need not be canonical: the benchmark fills the table with its own): waits for a writer of it to commit, and holds
/// off the next until this transaction ends.
pub async fn complaint_for_share(
    conn: &mut PgConnection,
    complaint_id: &str,
) -> Result<Option<Complaint>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT complaint_id, number, class, department_id, acceptance_owner_id, handler_id,
                responsible_person_id, first_named_at
         FROM complaints WHERE complaint_id = $1 FOR SHARE",
    )
    .bind(complaint_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(Complaint::from_row).transpose()
}

/// The complaint's row, if known.
pub async fn complaint(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
) -> Result<Option<Complaint>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT complaint_id, number, class, department_id, acceptance_owner_id, handler_id,
                responsible_person_id
         FROM complaints WHERE complaint_id = $1",
    )
    .bind(complaint_id.as_str())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(Complaint::from_row).transpose()
}

/// Facts an event adds about a complaint; unset fields keep their value.
#[derive(Debug, Default)]
pub struct ComplaintFacts<'a> {
    pub number: Option<&'a str>,
    pub class: Option<&'a str>,
    pub received_at: Option<DateTime<Utc>>,
    pub department_id: Option<&'a str>,
    pub acceptance_owner_id: Option<&'a str>,
    pub handler_id: Option<&'a str>,
    pub responsible_person_id: Option<&'a str>,
    pub closed: Option<bool>,
    /// When `handler_id` was assigned (the earliest assignment is kept).
    pub handler_named_at: Option<DateTime<Utc>>,
}

/// Records facts about a complaint, creating its row on the first event about it (events of
/// several services may arrive in any order). Empty strings never overwrite a value. The first
/// event's trace is kept for the scheduler to continue.
pub async fn note(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
    f: ComplaintFacts<'_>,
) -> Result<(), sqlx::Error> {
    let mut noted = Noted::new(complaint_id.as_str());
    noted.add(&f, redress_platform::telemetry::current_traceparent());
    note_many(conn, &[noted]).await
}

/// The facts of several events about one complaint folded together, as [`note`] would record
/// them one after the other: a later value replaces an earlier one, the earliest naming and
/// the first trace are kept.
#[derive(Debug, Clone, Default)]
pub struct Noted {
    pub complaint_id: String,
    number: Option<String>,
    class: Option<String>,
    received_at: Option<DateTime<Utc>>,
    department_id: Option<String>,
    acceptance_owner_id: Option<String>,
    handler_id: Option<String>,
    responsible_person_id: Option<String>,
    closed: Option<bool>,
    handler_named_at: Option<DateTime<Utc>>,
    trace_parent: String,
}

impl Noted {
    pub fn new(complaint_id: &str) -> Self {
        Noted {
            complaint_id: complaint_id.to_owned(),
            ..Default::default()
        }
    }

    /// Adds one event's facts, with the trace it carries.
    pub fn add(&mut self, f: &ComplaintFacts<'_>, trace_parent: String) {
        fn later(v: &mut Option<String>, new: Option<&str>) {
            if let Some(new) = new.filter(|s| !s.is_empty()) {
                *v = Some(new.to_owned());
            }
        }
        later(&mut self.number, f.number);
        later(&mut self.class, f.class);
        later(&mut self.department_id, f.department_id);
        later(&mut self.acceptance_owner_id, f.acceptance_owner_id);
        later(&mut self.handler_id, f.handler_id);
        later(&mut self.responsible_person_id, f.responsible_person_id);
        self.received_at = f.received_at.or(self.received_at);
        self.closed = f.closed.or(self.closed);
        self.handler_named_at = match (self.handler_named_at, f.handler_named_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.trace_parent.is_empty() {
            self.trace_parent = trace_parent;
        }
    }
}

/// Records the facts of several complaints (each once in `all`) in one statement, as [`note`].
pub async fn note_many(conn: &mut PgConnection, all: &[Noted]) -> Result<(), sqlx::Error> {
    if all.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($f:expr) => {
            all.iter().map($f).collect::<Vec<_>>()
        };
    }
    sqlx::query(
        "WITH f AS (
            SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                    $6::text[], $7::text[], $8::text[], $9::bool[], $10::text[], $11::timestamptz[])
                AS f(complaint_id, number, class, received_at, department_id, acceptance_owner_id,
                     handler_id, responsible_person_id, closed, trace_parent, first_named_at))
         INSERT INTO complaints AS c (complaint_id, number, class, received_at, department_id,
            acceptance_owner_id, handler_id, responsible_person_id, closed, trace_parent,
            first_named_at)
         SELECT f.complaint_id, COALESCE(f.number, ''), COALESCE(f.class, ''), f.received_at,
            COALESCE(f.department_id, ''), COALESCE(f.acceptance_owner_id, ''),
            COALESCE(f.handler_id, ''), COALESCE(f.responsible_person_id, ''),
            COALESCE(f.closed, false), f.trace_parent, f.first_named_at
         FROM f
         ON CONFLICT (complaint_id) DO UPDATE SET
            trace_parent = CASE WHEN c.trace_parent = '' THEN EXCLUDED.trace_parent
                                ELSE c.trace_parent END,
            number = CASE WHEN EXCLUDED.number = '' THEN c.number ELSE EXCLUDED.number END,
            class = CASE WHEN EXCLUDED.class = '' THEN c.class ELSE EXCLUDED.class END,
            received_at = COALESCE(EXCLUDED.received_at, c.received_at),
            department_id = CASE WHEN EXCLUDED.department_id = '' THEN c.department_id
                                 ELSE EXCLUDED.department_id END,
            acceptance_owner_id = CASE WHEN EXCLUDED.acceptance_owner_id = ''
                                       THEN c.acceptance_owner_id
                                       ELSE EXCLUDED.acceptance_owner_id END,
            handler_id = CASE WHEN EXCLUDED.handler_id = '' THEN c.handler_id
                              ELSE EXCLUDED.handler_id END,
            responsible_person_id = CASE WHEN EXCLUDED.responsible_person_id = ''
                                         THEN c.responsible_person_id
                                         ELSE EXCLUDED.responsible_person_id END,
            -- Unset (NULL) keeps the value: read from the input, as EXCLUDED holds false.
            closed = COALESCE((SELECT f.closed FROM f WHERE f.complaint_id = EXCLUDED.complaint_id),
                              c.closed),
            first_named_at = LEAST(c.first_named_at, EXCLUDED.first_named_at)",
    )
    .bind(column!(|n| n.complaint_id.clone()))
    .bind(column!(|n| n.number.clone()))
    .bind(column!(|n| n.class.clone()))
    .bind(column!(|n| n.received_at))
    .bind(column!(|n| n.department_id.clone()))
    .bind(column!(|n| n.acceptance_owner_id.clone()))
    .bind(column!(|n| n.handler_id.clone()))
    .bind(column!(|n| n.responsible_person_id.clone()))
    .bind(column!(|n| n.closed))
    .bind(column!(|n| n.trace_parent.clone()))
    .bind(column!(|n| n.handler_named_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The keys of a complaint's clocks of `kind` ("" for all but revisits).
pub async fn keys(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
    kind: ClockKind,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT key FROM clocks WHERE complaint_id = $1 AND kind = $2")
        .bind(complaint_id.as_str())
        .bind(kind.as_str())
        .fetch_all(conn)
        .await
}

/// Every clock of a complaint with what the monitor knows of the complaint, in display order;
/// read without locks, for the status a caller asks for.
pub async fn clocks_of(
    conn: impl PgExecutor<'_>,
    complaint_id: &ComplaintId,
) -> Result<Vec<(StoredClock, Complaint)>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS}, {JOINED_COMPLAINT_COLUMNS}
         FROM clocks c LEFT JOIN complaints p ON p.complaint_id = c.complaint_id
         WHERE c.complaint_id = $1
         ORDER BY {DISPLAY_ORDER}"
    )))
    .bind(complaint_id.as_str())
    .fetch_all(conn)
    .await?
    .iter()
    .map(clock_and_complaint)
    .collect()
}

/// Which clocks a list shows: one state, narrowed by the caller's filters (`None` narrows
/// nothing) and by what the caller may see.
pub struct ClockFilter<'a> {
    pub state: ClockState,
    pub department_id: Option<&'a str>,
    pub class: Option<Class>,
    /// Anybody the clock is held against: handler, responsible person, revisit agent, or the
    /// acceptance owner of an acceptance clock.
    pub person_id: Option<&'a str>,
    pub reach: &'a Reach,
}

/// One page of the clocks `f` selects, earliest due first, keyset-paged on
/// `(due_at, complaint_id, kind, key)` so a deep page costs what the first does. Fetches
/// [`Page::fetch`] rows; the caller keeps the page with [`Page::finish`].
pub async fn list(
    conn: impl PgExecutor<'_>,
    f: &ClockFilter<'_>,
    page: &Page,
) -> Result<Vec<(StoredClock, Complaint)>, sqlx::Error> {
    let reach = f.reach.sql();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS}, {JOINED_COMPLAINT_COLUMNS}
         FROM clocks c LEFT JOIN complaints p ON p.complaint_id = c.complaint_id
         WHERE c.state = $1
           AND ($2::text IS NULL OR p.department_id = $2)
           AND ($3::text IS NULL OR p.class = $3)
           AND ($4::text IS NULL OR p.handler_id = $4 OR p.responsible_person_id = $4
                OR c.agent_id = $4 OR (c.kind = 'acceptance' AND p.acceptance_owner_id = $4))
           AND ($5::timestamptz IS NULL
                OR (c.due_at, c.complaint_id, c.kind, c.key) > ($5, $6, $7, $8))
           AND ($10 OR p.department_id = ANY($11) OR p.handler_id = $12)
         ORDER BY c.due_at, c.complaint_id, c.kind, c.key
         LIMIT $9"
    )))
    .bind(f.state.as_str())
    .bind(f.department_id)
    .bind(f.class.map(Class::as_str))
    .bind(f.person_id)
    .bind(page.time(0))
    .bind(page.text(1))
    .bind(page.text(2))
    .bind(page.text(3))
    .bind(page.fetch())
    .bind(reach.0)
    .bind(reach.1)
    .bind(reach.2)
    .fetch_all(conn)
    .await?
    .iter()
    .map(clock_and_complaint)
    .collect()
}

fn clock_and_complaint(r: &PgRow) -> Result<(StoredClock, Complaint), sqlx::Error> {
    Ok((StoredClock::from_row(r)?, Complaint::from_row(r)?))
}

/// The earliest time any clock must be looked at: one read of the partial index on
/// `next_fire_at`, never a scan.
pub async fn earliest_fire_at(
    conn: impl PgExecutor<'_>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT next_fire_at FROM clocks WHERE next_fire_at IS NOT NULL
         ORDER BY next_fire_at LIMIT 1",
    )
    .fetch_optional(conn)
    .await
}

/// A clock due to fire, with its complaint and the trace of the event that set the clock (its
/// events continue that trace).
pub struct Due {
    pub clock: StoredClock,
    pub complaint: Complaint,
    pub trace_parent: String,
}

/// Up to `batch` clocks due at `now`, earliest first, locked with `SKIP LOCKED` so replicas
/// share the work without taking a clock twice.
pub async fn take_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    batch: i64,
) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS}, {JOINED_COMPLAINT_COLUMNS}, p.first_named_at,
                COALESCE(p.trace_parent, '') AS trace_parent
         FROM clocks c LEFT JOIN complaints p ON p.complaint_id = c.complaint_id
         WHERE c.next_fire_at <= $1
         ORDER BY c.next_fire_at LIMIT $2
         FOR UPDATE OF c SKIP LOCKED"
    )))
    .bind(now)
    .bind(batch)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Due {
            clock: StoredClock::from_row(r)?,
            complaint: Complaint::from_row(r)?,
            trace_parent: r.try_get("trace_parent")?,
        })
    })
    .collect()
}

/// Clocks warned and not yet met or overdue, and clocks overdue and not yet met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub warned: i64,
    pub overdue: i64,
}

/// Both counts in one round trip. The predicates repeat the partial indexes' `WHERE` exactly,
/// so the planner can answer from them alone (public for the test that checks the plan).
pub const COUNTS_SQL: &str = "SELECT (SELECT count(*) FROM clocks WHERE state = 'warned'),
        (SELECT count(*) FROM clocks WHERE state = 'overdue')";

/// Reads both counts.
pub async fn counts(conn: impl PgExecutor<'_>) -> Result<Counts, sqlx::Error> {
    let (warned, overdue): (i64, i64) = sqlx::query_as(COUNTS_SQL).fetch_one(conn).await?;
    Ok(Counts { warned, overdue })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DOMAIN §9 as ADR 0019 reads it: the named responsible person first; else the handler,
    /// only if they had the complaint by the due time.
    #[test]
    fn a_missed_limit_fines_whoever_had_the_complaint_by_the_due_time() {
        let due = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .expect("time")
            .to_utc();
        let clock = StoredClock::new(
            "cmp_1",
            "",
            LimitClock::start(
                &redress_domain::Policy::default(),
                ClockKind::Completion,
                due - chrono::Duration::hours(8),
                due,
            ),
        );
        let with = |handler: &str, named: Option<i64>, responsible: &str| Complaint {
            handler_id: handler.into(),
            responsible_person_id: responsible.into(),
            first_named_at: named.map(|m| due + chrono::Duration::minutes(m)),
            ..Default::default()
        };
        assert_eq!(with("h-1", Some(-60), "").fined_for(&clock), "h-1");
        assert_eq!(with("h-1", Some(0), "").fined_for(&clock), "h-1");
        assert_eq!(
            with("h-1", Some(5), "").fined_for(&clock),
            "",
            "given it late"
        );
        assert_eq!(
            with("h-1", None, "").fined_for(&clock),
            "h-1",
            "time unknown"
        );
        assert_eq!(with("h-1", Some(5), "p-9").fined_for(&clock), "p-9");
        assert_eq!(with("", None, "").fined_for(&clock), "");
    }
}
