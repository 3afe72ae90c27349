//! All of the board's SQL: folding events into the projection, and reading the wallboard.
//!
//! Every write is an upsert that sets only what its event knows, so events of one complaint
//! written by different services may arrive in any order without one erasing another; the
//! stage only moves forward (a reopening is the one way back).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};

use crate::fold::{Change, Stage};

/// Applies one folded change of one complaint (or of the organisation).
pub async fn apply(conn: &mut PgConnection, change: &Change) -> Result<(), sqlx::Error> {
    match change {
        Change::Nothing => {}
        Change::Received {
            complaint_id,
            number,
            class,
            at,
            completion_due,
            facts,
        } => {
            sqlx::query(
                "INSERT INTO complaints (complaint_id, complaint_number, class, received_at,
                    completion_due, channel, category, customer_type, business)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (complaint_id) DO UPDATE SET complaint_number = EXCLUDED.complaint_number,
                    class = CASE WHEN complaints.class = '' THEN EXCLUDED.class ELSE complaints.class END,
                    received_at = EXCLUDED.received_at,
                    completion_due = COALESCE(complaints.completion_due, EXCLUDED.completion_due),
                    channel = EXCLUDED.channel, category = EXCLUDED.category,
                    customer_type = EXCLUDED.customer_type, business = EXCLUDED.business,
                    updated_at = now()",
            )
            .bind(complaint_id)
            .bind(number)
            .bind(class)
            .bind(at)
            .bind(completion_due)
            .bind(&facts.channel)
            .bind(&facts.category)
            .bind(&facts.customer_type)
            .bind(&facts.business)
            .execute(&mut *conn)
            .await?;
        }
        Change::Finished {
            complaint_id,
            stage,
            department_id,
            at,
            satisfied,
        } => {
            sqlx::query(
                "INSERT INTO complaints (complaint_id, stage, stage_rank, department_id,
                    resolved_at, closed_at, satisfied)
                 VALUES ($1, $2, $3, COALESCE($4, ''),
                    CASE WHEN $2 = 'resolved' THEN $5 END, CASE WHEN $2 = 'closed' THEN $5 END, $6)
                 ON CONFLICT (complaint_id) DO UPDATE SET
                    stage = CASE WHEN $3 >= complaints.stage_rank THEN $2 ELSE complaints.stage END,
                    stage_rank = GREATEST($3, complaints.stage_rank),
                    department_id = COALESCE($4, complaints.department_id),
                    resolved_at = CASE WHEN $2 = 'resolved' THEN $5 ELSE complaints.resolved_at END,
                    closed_at = CASE WHEN $2 = 'closed' THEN $5 ELSE complaints.closed_at END,
                    satisfied = COALESCE($6, complaints.satisfied),
                    updated_at = now()",
            )
            .bind(complaint_id)
            .bind(stage.name())
            .bind(stage.rank())
            .bind(department_id)
            .bind(at)
            .bind(satisfied)
            .execute(&mut *conn)
            .await?;
        }
        Change::Class {
            complaint_id,
            class,
            completion_due,
        } => {
            sqlx::query(
                "INSERT INTO complaints (complaint_id, class, completion_due) VALUES ($1, $2, $3)
                 ON CONFLICT (complaint_id) DO UPDATE SET class = EXCLUDED.class,
                    completion_due = COALESCE(EXCLUDED.completion_due, complaints.completion_due),
                    updated_at = now()",
            )
            .bind(complaint_id)
            .bind(class)
            .bind(completion_due)
            .execute(&mut *conn)
            .await?;
        }
        Change::Stage {
            complaint_id,
            stage,
            department_id,
            handler,
        } => {
            let (handler_id, handler_name) = handler.clone().unwrap_or_default();
            sqlx::query(
                "INSERT INTO complaints (complaint_id, stage, stage_rank, department_id, handler_id,
                    handler_name)
                 VALUES ($1, $2, $3, COALESCE($4, ''), $5, $6)
                 ON CONFLICT (complaint_id) DO UPDATE SET
                    stage = CASE WHEN $7 OR $3 >= complaints.stage_rank THEN $2 ELSE complaints.stage END,
                    stage_rank = CASE WHEN $7 OR $3 >= complaints.stage_rank THEN $3
                                 ELSE complaints.stage_rank END,
                    department_id = COALESCE($4, complaints.department_id),
                    handler_id = CASE WHEN $8 THEN $5 ELSE complaints.handler_id END,
                    handler_name = CASE WHEN $8 THEN $6 ELSE complaints.handler_name END,
                    -- A reopened complaint starts its clocks again: its old lateness is history.
                    risk_clock = CASE WHEN $7 THEN NULL ELSE complaints.risk_clock END,
                    risk_due = CASE WHEN $7 THEN NULL ELSE complaints.risk_due END,
                    overdue_clock = CASE WHEN $7 THEN NULL ELSE complaints.overdue_clock END,
                    overdue_since = CASE WHEN $7 THEN NULL ELSE complaints.overdue_since END,
                    updated_at = now()",
            )
            .bind(complaint_id)
            .bind(stage.name())
            .bind(stage.rank())
            .bind(department_id)
            .bind(handler_id)
            .bind(handler_name)
            .bind(*stage == Stage::Reopened)
            .bind(handler.is_some())
            .execute(&mut *conn)
            .await?;
        }
        Change::Warning {
            complaint_id,
            clock,
            due_at,
        } => {
            sqlx::query(
                "INSERT INTO complaints (complaint_id, risk_clock, risk_due) VALUES ($1, $2, $3)
                 ON CONFLICT (complaint_id) DO UPDATE SET risk_clock = EXCLUDED.risk_clock,
                    risk_due = EXCLUDED.risk_due, updated_at = now()
                 WHERE complaints.stage_rank < 5",
            )
            .bind(complaint_id)
            .bind(clock)
            .bind(due_at)
            .execute(&mut *conn)
            .await?;
        }
        Change::Overdue {
            complaint_id,
            clock,
            due_at,
        } => {
            sqlx::query(
                "INSERT INTO complaints (complaint_id, overdue_clock, overdue_since, ever_overdue)
                 VALUES ($1, $2, $3, true)
                 ON CONFLICT (complaint_id) DO UPDATE SET
                    overdue_clock = CASE WHEN complaints.overdue_since IS NULL
                        OR EXCLUDED.overdue_since < complaints.overdue_since
                        THEN EXCLUDED.overdue_clock ELSE complaints.overdue_clock END,
                    overdue_since = LEAST(complaints.overdue_since, EXCLUDED.overdue_since),
                    ever_overdue = true,
                    risk_clock = CASE WHEN complaints.risk_clock = EXCLUDED.overdue_clock
                        THEN NULL ELSE complaints.risk_clock END,
                    risk_due = CASE WHEN complaints.risk_clock = EXCLUDED.overdue_clock
                        THEN NULL ELSE complaints.risk_due END,
                    updated_at = now()
                 WHERE complaints.stage_rank < 5",
            )
            .bind(complaint_id)
            .bind(clock)
            .bind(due_at)
            .execute(&mut *conn)
            .await?;
        }
        Change::EscalationRaised(e) => {
            sqlx::query(
                "INSERT INTO escalations (escalation_id, complaint_id, level, recipient_id,
                    recipient_name, department_id, summary, raised_at, acknowledge_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (escalation_id) DO NOTHING",
            )
            .bind(&e.escalation_id)
            .bind(&e.complaint_id)
            .bind(e.level)
            .bind(&e.recipient_id)
            .bind(&e.recipient_name)
            .bind(&e.department_id)
            .bind(&e.summary)
            .bind(e.raised_at)
            .bind(e.acknowledge_by)
            .execute(&mut *conn)
            .await?;
        }
        Change::EscalationAnswered { escalation_id, at } => {
            sqlx::query(
                "UPDATE escalations SET acknowledged_at = COALESCE(acknowledged_at, $2)
                 WHERE escalation_id = $1",
            )
            .bind(escalation_id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        Change::RevisitScheduled {
            revisit_id,
            complaint_id,
            department_id,
            due_at,
        } => {
            sqlx::query(
                "INSERT INTO revisits (revisit_id, complaint_id, department_id, due_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (revisit_id) DO UPDATE SET due_at = EXCLUDED.due_at",
            )
            .bind(revisit_id)
            .bind(complaint_id)
            .bind(department_id)
            .bind(due_at)
            .execute(&mut *conn)
            .await?;
        }
        Change::RevisitCompleted {
            revisit_id,
            at,
            reached,
            satisfied,
        } => {
            sqlx::query(
                "UPDATE revisits SET completed_at = $2, reached = $3, satisfied = $4
                 WHERE revisit_id = $1 AND completed_at IS NULL",
            )
            .bind(revisit_id)
            .bind(at)
            .bind(reached)
            .bind(satisfied)
            .execute(&mut *conn)
            .await?;
        }
        Change::Cause {
            complaint_id,
            cause,
        } => {
            sqlx::query(
                "INSERT INTO complaints (complaint_id, cause) VALUES ($1, $2)
                 ON CONFLICT (complaint_id) DO UPDATE SET cause = EXCLUDED.cause,
                    updated_at = now()",
            )
            .bind(complaint_id)
            .bind(cause)
            .execute(&mut *conn)
            .await?;
        }
        Change::Volume {
            department_id,
            month,
            volume,
        } => {
            sqlx::query(
                "INSERT INTO business_volumes (department_id, month, volume) VALUES ($1, $2, $3)
                 ON CONFLICT (department_id, month) DO UPDATE SET volume = EXCLUDED.volume",
            )
            .bind(department_id)
            .bind(month)
            .bind(volume)
            .execute(&mut *conn)
            .await?;
        }
        Change::Department { id, name } => {
            sqlx::query(
                "INSERT INTO departments (department_id, name) VALUES ($1, $2)
                 ON CONFLICT (department_id) DO UPDATE SET name = EXCLUDED.name",
            )
            .bind(id)
            .bind(name)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Which complaints a reader sees: every one, or those of some departments and those assigned
/// to one person (`redress_platform::access::Reach`, as SQL).
#[derive(Clone, Debug)]
pub struct Scope {
    pub all: bool,
    pub departments: Vec<String>,
    pub actor: Option<String>,
}

/// Open complaints of one department, class and stage.
#[derive(Debug, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct Count {
    pub department_id: String,
    pub department_name: String,
    pub class: String,
    pub stage: String,
    pub open: i64,
}

/// One complaint on a list of the board.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Line {
    pub complaint_id: String,
    pub complaint_number: String,
    pub class: String,
    pub department_id: String,
    pub department_name: String,
    pub handler_name: String,
    pub stage: String,
    pub clock: String,
    /// When the limit falls (at risk) or fell (overdue).
    pub due_at: Option<DateTime<Utc>>,
}

/// An escalation nobody has acknowledged yet.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Waiting {
    pub escalation_id: String,
    pub complaint_id: String,
    pub complaint_number: String,
    pub level: i32,
    pub recipient_name: String,
    pub department_name: String,
    pub summary: String,
    pub raised_at: DateTime<Utc>,
    pub acknowledge_by: Option<DateTime<Utc>>,
}

/// Today's revisits.
#[derive(Debug, Serialize, Default)]
pub struct Revisits {
    pub due_today: i64,
    pub done_today: i64,
    pub reached_today: i64,
    pub satisfied_today: i64,
}

/// The scope as SQL over `complaints c`; its values are `$1`–`$3`, bound by [`Scope::bind`].
const SCOPE: &str = "($1 OR c.department_id = ANY($2) OR c.handler_id = $3)";

impl Scope {
    /// Binds `$1`–`$3` of [`SCOPE`].
    fn bind<'q, O>(
        &'q self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(self.all)
            .bind(&self.departments)
            .bind(&self.actor)
    }
}

pub async fn counts(pool: &PgPool, scope: &Scope) -> Result<Vec<Count>, sqlx::Error> {
    // Only constant fragments of this file are formatted in; every value is bound.
    scope
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT c.department_id, COALESCE(d.name, c.department_id) AS department_name, c.class,
                c.stage, count(*) AS open
         FROM complaints c LEFT JOIN departments d USING (department_id)
         WHERE c.stage_rank < 5 AND {SCOPE}
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 3, 4"
        ))))
        .fetch_all(pool)
        .await
}

/// Open complaints with a clock warned about and not yet late, the nearest limit first.
pub async fn at_risk(pool: &PgPool, scope: &Scope, limit: i64) -> Result<Vec<Line>, sqlx::Error> {
    lines(
        pool,
        scope,
        // A clock at risk shows even when another clock of the complaint is already late
        // (a missed intermediate result does not make the completion limit less near).
        "c.risk_due IS NOT NULL",
        "c.risk_clock",
        "c.risk_due",
        limit,
    )
    .await
}

/// Open complaints past a limit, the longest late first.
pub async fn overdue(pool: &PgPool, scope: &Scope, limit: i64) -> Result<Vec<Line>, sqlx::Error> {
    lines(
        pool,
        scope,
        "c.overdue_since IS NOT NULL",
        "c.overdue_clock",
        "c.overdue_since",
        limit,
    )
    .await
}

async fn lines(
    pool: &PgPool,
    scope: &Scope,
    filter: &str,
    clock: &str,
    due: &str,
    limit: i64,
) -> Result<Vec<Line>, sqlx::Error> {
    // `filter`, `clock` and `due` are constants of this file; every value is bound.
    scope
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT c.complaint_id, c.complaint_number, c.class, c.department_id,
                COALESCE(d.name, c.department_id) AS department_name, c.handler_name, c.stage,
                COALESCE({clock}, '') AS clock, {due} AS due_at
         FROM complaints c LEFT JOIN departments d USING (department_id)
         WHERE c.stage_rank < 5 AND {filter} AND {SCOPE}
         ORDER BY {due} LIMIT $4"
        ))))
        .bind(limit)
        .fetch_all(pool)
        .await
}

pub async fn waiting_escalations(
    pool: &PgPool,
    scope: &Scope,
    limit: i64,
) -> Result<Vec<Waiting>, sqlx::Error> {
    scope
    .bind(sqlx::query_as(
        "SELECT e.escalation_id, e.complaint_id, COALESCE(c.complaint_number, '') AS complaint_number,
                e.level, e.recipient_name, COALESCE(d.name, e.department_id) AS department_name,
                e.summary, e.raised_at, e.acknowledge_by
         FROM escalations e
         LEFT JOIN complaints c USING (complaint_id)
         LEFT JOIN departments d ON d.department_id = e.department_id
         WHERE e.acknowledged_at IS NULL
           AND ($1 OR e.department_id = ANY($2) OR e.recipient_id = $3)
         ORDER BY e.raised_at LIMIT $4",
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Revisits due on the day `[from, to)`, and how many of them were made.
pub async fn revisits(
    pool: &PgPool,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Revisits, sqlx::Error> {
    let r = sqlx::query(
        "SELECT count(*) AS due,
                count(*) FILTER (WHERE completed_at IS NOT NULL) AS done,
                count(*) FILTER (WHERE reached) AS reached,
                count(*) FILTER (WHERE satisfied) AS satisfied
         FROM revisits WHERE due_at >= $3 AND due_at < $4
           AND ($1 OR department_id = ANY($2))",
    )
    .bind(scope.all)
    .bind(&scope.departments)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    Ok(Revisits {
        due_today: r.try_get("due")?,
        done_today: r.try_get("done")?,
        reached_today: r.try_get("reached")?,
        satisfied_today: r.try_get("satisfied")?,
    })
}

/// The department and handler of a complaint, for filtering and scoping events that do not
/// name them.
pub async fn place_of(
    pool: &PgPool,
    complaint_id: &str,
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT department_id, handler_id, class FROM complaints WHERE complaint_id = $1",
    )
    .bind(complaint_id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .transpose()
}

// --- reports (DOMAIN §8) --------------------------------------------------------------------

/// One line of the supervisor's daily complaint log.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct LogLine {
    pub complaint_number: String,
    pub received_at: Option<DateTime<Utc>>,
    pub class: String,
    pub channel: String,
    pub category: String,
    pub customer_type: String,
    pub business: String,
    pub department_name: String,
    pub handler_name: String,
    pub stage: String,
    pub resolved_at: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub satisfied: Option<bool>,
}

/// The complaints received in `[from, to)`, in order.
pub async fn received_between(
    pool: &PgPool,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<LogLine>, sqlx::Error> {
    scope
        .bind(sqlx::query_as(
            "SELECT c.complaint_number, c.received_at, c.class, c.channel, c.category,
                c.customer_type, c.business, COALESCE(d.name, c.department_id) AS department_name,
                c.handler_name, c.stage, c.resolved_at, c.ever_overdue AS overdue, c.satisfied
         FROM complaints c LEFT JOIN departments d USING (department_id)
         WHERE c.received_at >= $4 AND c.received_at < $5
           AND ($1 OR c.department_id = ANY($2) OR c.handler_id = $3)
         ORDER BY c.received_at, c.complaint_id",
        ))
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
}

/// What a report breaks complaints down by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Class,
    Department,
    Category,
    Cause,
    Channel,
    CustomerType,
}

impl Dimension {
    pub const ALL: [Dimension; 6] = [
        Dimension::Class,
        Dimension::Department,
        Dimension::Category,
        Dimension::Cause,
        Dimension::Channel,
        Dimension::CustomerType,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dimension::Class => "class",
            Dimension::Department => "department",
            Dimension::Category => "category",
            Dimension::Cause => "cause",
            Dimension::Channel => "channel",
            Dimension::CustomerType => "customer_type",
        }
    }

    /// The SQL expression of the dimension: a constant of this file, never input.
    fn column(self) -> &'static str {
        match self {
            Dimension::Class => "c.class",
            Dimension::Department => {
                "COALESCE(d.name, NULLIF(c.department_id, ''), 'complaint centre')"
            }
            Dimension::Category => "c.category",
            Dimension::Cause => "COALESCE(NULLIF(c.cause, ''), 'not recorded')",
            Dimension::Channel => "c.channel",
            Dimension::CustomerType => "c.customer_type",
        }
    }
}

/// Complaints of one value of a dimension, in a period.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Tally {
    pub key: String,
    pub received: i64,
    pub resolved: i64,
    pub overdue: i64,
    pub satisfied: i64,
    pub dissatisfied: i64,
}

/// A [`Tally`] of one month (`YYYY-MM`, local time).
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct MonthTally {
    pub month: String,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub tally: Tally,
}

/// The counts of a [`Tally`], as SQL over `complaints c`.
const TALLY: &str = "count(*) AS received,
    count(*) FILTER (WHERE c.resolved_at IS NOT NULL) AS resolved,
    count(*) FILTER (WHERE c.ever_overdue) AS overdue,
    count(*) FILTER (WHERE c.satisfied) AS satisfied,
    count(*) FILTER (WHERE c.satisfied = false) AS dissatisfied";

/// The complaints received in `[from, to)` by `dimension`.
pub async fn breakdown(
    pool: &PgPool,
    scope: &Scope,
    dimension: Dimension,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Tally>, sqlx::Error> {
    // `dimension.column()` and TALLY are constants of this file; every value is bound.
    let sql = format!(
        "SELECT {} AS key, {TALLY}
         FROM complaints c LEFT JOIN departments d USING (department_id)
         WHERE c.received_at >= $4 AND c.received_at < $5 AND {SCOPE}
         GROUP BY 1 ORDER BY 2 DESC, 1",
        dimension.column()
    );
    scope
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(sql)))
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
}

/// The complaints received in `[from, to)` by every dimension at once, as `(dimension, tally)`
/// in [`Dimension::ALL`] order: one pass over the period's rows (`GROUPING SETS`) instead of one
/// per dimension, which at a million complaints was most of the monthly analysis's time.
pub async fn breakdowns(
    pool: &PgPool,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Dimension, Tally)>, sqlx::Error> {
    let sets: Vec<String> = Dimension::ALL
        .iter()
        .map(|d| format!("({})", d.column()))
        .collect();
    let which: Vec<String> = Dimension::ALL
        .iter()
        .enumerate()
        .map(|(i, d)| format!("WHEN GROUPING({}) = 0 THEN {i}", d.column()))
        .collect();
    let key: Vec<String> = Dimension::ALL
        .iter()
        .map(|d| format!("WHEN GROUPING({0}) = 0 THEN ({0})::text", d.column()))
        .collect();
    // Only the constant expressions of [`Dimension::column`] are formatted in; values are bound.
    let sql = format!(
        "SELECT CASE {} END AS dimension, CASE {} END AS key, {TALLY}
         FROM complaints c LEFT JOIN departments d USING (department_id)
         WHERE c.received_at >= $4 AND c.received_at < $5 AND {SCOPE}
         GROUP BY GROUPING SETS ({})
         ORDER BY 1, 3 DESC, 2",
        which.join(" "),
        key.join(" "),
        sets.join(", ")
    );
    let rows: Vec<DimensionTally> = scope
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(sql)))
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let d = usize::try_from(r.dimension).ok()?;
            Some((*Dimension::ALL.get(d)?, r.tally))
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct DimensionTally {
    dimension: i32,
    #[sqlx(flatten)]
    tally: Tally,
}

/// The complaints received in `[from, to)` by month (local time, `offset_secs` east of UTC)
/// and department: trends and the yearly department report.
pub async fn by_month(
    pool: &PgPool,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    offset_secs: i32,
) -> Result<Vec<MonthTally>, sqlx::Error> {
    let sql = format!(
        "SELECT to_char(date_trunc('month', c.received_at + make_interval(secs => $6)),
                    'YYYY-MM') AS month,
                COALESCE(d.name, NULLIF(c.department_id, ''), 'complaint centre') AS key, {TALLY}
         FROM complaints c LEFT JOIN departments d USING (department_id)
         WHERE c.received_at >= $4 AND c.received_at < $5 AND {SCOPE}
         GROUP BY 1, 2 ORDER BY 1, 2"
    );
    scope
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(sql)))
        .bind(from)
        .bind(to)
        .bind(f64::from(offset_secs))
        .fetch_all(pool)
        .await
}

/// A department's complaints in a month beside the business volume entered for it: the two
/// terms of its complaint rate (DOMAIN §7).
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct RateTerms {
    pub department_id: String,
    pub department_name: String,
    pub complaints: i64,
    /// 0 when none was entered.
    pub volume: i64,
}

/// Every department with complaints received in `[from, to)` or a volume entered for `month`,
/// among those the reader sees whole (a rate is a department's, so a reader who sees only
/// their own complaints gets none). Counted as escalation's report counts them: complaints
/// received in the month and passed to the department.
pub async fn rate_terms(
    pool: &PgPool,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    month: &str,
) -> Result<Vec<RateTerms>, sqlx::Error> {
    sqlx::query_as(
        "WITH counted AS (
            SELECT department_id, count(*) AS complaints FROM complaints
            WHERE received_at >= $3 AND received_at < $4 AND department_id <> ''
              AND ($1 OR department_id = ANY($2))
            GROUP BY 1),
         entered AS (
            SELECT department_id, volume FROM business_volumes
            WHERE month = $5 AND ($1 OR department_id = ANY($2)))
         SELECT department_id, COALESCE(d.name, department_id) AS department_name,
                COALESCE(counted.complaints, 0) AS complaints,
                COALESCE(entered.volume, 0) AS volume
         FROM counted FULL JOIN entered USING (department_id)
              LEFT JOIN departments d USING (department_id)
         ORDER BY department_id",
    )
    .bind(scope.all)
    .bind(&scope.departments)
    .bind(from)
    .bind(to)
    .bind(month)
    .fetch_all(pool)
    .await
}
