//! The `complaints` table: what the service knows of each complaint, learnt from events, and
//! the on-site services recorded against it.

use chrono::{DateTime, Utc};
use redress_domain::revisit::ComplaintFacts;
use redress_domain::{Class, ComplaintId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{column, decode_id};

/// Ensures each complaint has a row, one statement for all (in id order), so facts may arrive
/// in any order.
pub async fn ensure_complaints(conn: &mut PgConnection, ids: &[String]) -> Result<(), sqlx::Error> {
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

/// Ensures one complaint has a row.
pub async fn ensure_complaint(
    conn: &mut PgConnection,
    id: &ComplaintId,
) -> Result<(), sqlx::Error> {
    ensure_complaints(conn, &[id.to_string()]).await
}

/// The columns [`facts_from_row`] reads.
const FACT_COLUMNS: &str = "complaint_id, class, accepted_at, resolutions, resolved_at, \
    on_site_services, on_site_at, completion_due, closed";

/// The facts stored for a complaint, read under a row lock (planning serialises per complaint).
pub async fn facts(
    conn: &mut PgConnection,
    id: &ComplaintId,
) -> Result<ComplaintFacts, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FACT_COLUMNS} FROM complaints WHERE complaint_id = $1 FOR UPDATE"
    )))
    .bind(id.as_str())
    .fetch_one(conn)
    .await?;
    facts_from_row(&row)
}

/// The facts of several complaints, locked in id order (as by every locker of several rows).
pub async fn facts_many(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<(ComplaintId, ComplaintFacts)>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FACT_COLUMNS} FROM complaints WHERE complaint_id = ANY($1)
         ORDER BY complaint_id FOR UPDATE"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((decode_id(r, "complaint_id")?, facts_from_row(r)?)))
        .collect()
}

fn facts_from_row(row: &PgRow) -> Result<ComplaintFacts, sqlx::Error> {
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

/// Sets when the planner next looks at each complaint, one statement for all.
pub async fn set_next_checks(
    conn: &mut PgConnection,
    checks: &[(String, Option<DateTime<Utc>>)],
) -> Result<(), sqlx::Error> {
    if checks.is_empty() {
        return Ok(());
    }
    let (ids, at): (Vec<String>, Vec<Option<DateTime<Utc>>>) = checks.iter().cloned().unzip();
    sqlx::query(
        "UPDATE complaints c SET waiting_check_at = n.at
         FROM UNNEST($1::text[], $2::timestamptz[]) AS n(complaint_id, at)
         WHERE c.complaint_id = n.complaint_id
           AND c.waiting_check_at IS DISTINCT FROM n.at",
    )
    .bind(ids)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Up to `limit` open complaints whose waiting check is due at `now`, locked with `SKIP LOCKED`
/// so replicas never plan one twice.
pub async fn waiting_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ComplaintId>, sqlx::Error> {
    sqlx::query(
        "SELECT complaint_id FROM complaints
         WHERE resolved_at IS NULL AND NOT closed AND waiting_check_at <= $1
         ORDER BY waiting_check_at LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| decode_id(r, "complaint_id"))
    .collect()
}

/// The complaint's responsible department.
pub async fn department_of(
    conn: &mut PgConnection,
    id: &ComplaintId,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT department_id FROM complaints WHERE complaint_id = $1")
        .bind(id.as_str())
        .fetch_one(conn)
        .await
}

/// The manager of the complaint's department, empty when not known.
pub async fn department_manager_of(
    conn: &mut PgConnection,
    id: &ComplaintId,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT department_manager_id FROM complaints WHERE complaint_id = $1")
        .bind(id.as_str())
        .fetch_one(conn)
        .await
}

/// The complaint's class, if known.
pub async fn class_of(
    conn: &mut PgConnection,
    id: &ComplaintId,
) -> Result<Option<Class>, sqlx::Error> {
    let class: Option<String> =
        sqlx::query_scalar("SELECT class FROM complaints WHERE complaint_id = $1")
            .bind(id.as_str())
            .fetch_one(conn)
            .await?;
    Ok(class.and_then(|c| Class::parse(&c).ok()))
}

/// What a receipt tells: the number, customer and summary stand; the class and completion due
/// time fill only what is not known yet.
pub struct Receipt {
    pub complaint_id: String,
    pub number: String,
    pub class: Option<Class>,
    pub customer_name: String,
    pub customer_phone: String,
    pub summary: String,
    pub completion_due: Option<DateTime<Utc>>,
}

/// Stores the complaints not known yet with what a run of arrivals says of them, one statement
/// for all (in id order); returns the ids it stored. Those it did not store exist already and
/// take the run's facts by [`note_receipts`] and [`note_placements`] — so a complaint's row is
/// written once per run, not inserted empty and then updated twice.
pub async fn insert_new(
    conn: &mut PgConnection,
    all: &[(Option<&Receipt>, &Placement)],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    if all.is_empty() {
        return Ok(Default::default());
    }
    let mut all = all.to_vec();
    all.sort_by(|a, b| a.1.complaint_id.cmp(&b.1.complaint_id));
    let receipt =
        |f: fn(&Receipt) -> String| column(&all, move |(r, _)| r.map(f).unwrap_or_default());
    sqlx::query_scalar(
        "INSERT INTO complaints (complaint_id, number, class, customer_name, customer_phone,
            summary, completion_due, department_id, department_manager_id, assignee_id)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
            $6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::text[])
         ON CONFLICT DO NOTHING
         RETURNING complaint_id",
    )
    .bind(column(&all, |(_, p)| p.complaint_id.clone()))
    .bind(receipt(|r| r.number.clone()))
    .bind(column(&all, |(r, _)| {
        r.and_then(|r| r.class).map(Class::as_str)
    }))
    .bind(receipt(|r| r.customer_name.clone()))
    .bind(receipt(|r| r.customer_phone.clone()))
    .bind(receipt(|r| r.summary.clone()))
    .bind(column(&all, |(r, _)| r.and_then(|r| r.completion_due)))
    .bind(column(&all, |(_, p)| p.department_id.clone()))
    .bind(column(&all, |(_, p)| p.department_manager_id.clone()))
    .bind(column(&all, |(_, p)| p.assignee_id.clone()))
    .fetch_all(conn)
    .await
    .map(|ids| ids.into_iter().collect())
}

/// Records receipts, one statement for all.
pub async fn note_receipts(conn: &mut PgConnection, all: &[Receipt]) -> Result<(), sqlx::Error> {
    if all.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE complaints c SET number = r.number, class = COALESCE(c.class, r.class),
            customer_name = r.customer_name, customer_phone = r.customer_phone,
            summary = r.summary, completion_due = COALESCE(c.completion_due, r.due),
            updated_at = now()
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::timestamptz[])
            AS r(complaint_id, number, class, customer_name, customer_phone, summary, due)
         WHERE c.complaint_id = r.complaint_id",
    )
    .bind(column(all, |r| r.complaint_id.clone()))
    .bind(column(all, |r| r.number.clone()))
    .bind(column(all, |r| r.class.map(Class::as_str)))
    .bind(column(all, |r| r.customer_name.clone()))
    .bind(column(all, |r| r.customer_phone.clone()))
    .bind(column(all, |r| r.summary.clone()))
    .bind(column(all, |r| r.completion_due))
    .execute(conn)
    .await?;
    Ok(())
}

/// Where a complaint is handled, from routings and assignments: empty values keep what is
/// stored.
#[derive(Debug, Default)]
pub struct Placement {
    pub complaint_id: String,
    pub department_id: String,
    pub department_manager_id: String,
    pub assignee_id: String,
}

/// Records placements, one statement for all; one that names nothing changes nothing.
pub async fn note_placements(
    conn: &mut PgConnection,
    all: &[Placement],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE complaints c SET
            department_id = CASE WHEN d.department_id = '' THEN c.department_id
                                 ELSE d.department_id END,
            department_manager_id = CASE WHEN d.manager_id = '' THEN c.department_manager_id
                                         ELSE d.manager_id END,
            assignee_id = CASE WHEN d.assignee_id = '' THEN c.assignee_id
                               ELSE d.assignee_id END
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
            AS d(complaint_id, department_id, manager_id, assignee_id)
         WHERE c.complaint_id = d.complaint_id
           AND (d.department_id <> '' OR d.manager_id <> '' OR d.assignee_id <> '')",
    )
    .bind(column(all, |p| p.complaint_id.clone()))
    .bind(column(all, |p| p.department_id.clone()))
    .bind(column(all, |p| p.department_manager_id.clone()))
    .bind(column(all, |p| p.assignee_id.clone()))
    .execute(conn)
    .await?;
    Ok(())
}

/// A new class and, when the event promises one, a new completion due time.
pub async fn set_class(
    conn: &mut PgConnection,
    id: &ComplaintId,
    class: Option<Class>,
    completion_due: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE complaints SET class = COALESCE($2, class),
            completion_due = COALESCE($3, completion_due)
         WHERE complaint_id = $1",
    )
    .bind(id.as_str())
    .bind(class.map(Class::as_str))
    .bind(completion_due)
    .execute(conn)
    .await?;
    Ok(())
}

/// The department accepted the complaint (the first acceptance time is kept).
pub async fn note_accepted(
    conn: &mut PgConnection,
    id: &ComplaintId,
    accepted_at: DateTime<Utc>,
    department_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE complaints SET accepted_at = COALESCE(accepted_at, $2),
            department_id = CASE WHEN $3 = '' THEN department_id ELSE $3 END
         WHERE complaint_id = $1",
    )
    .bind(id.as_str())
    .bind(accepted_at)
    .bind(department_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The person found responsible for the cause.
pub async fn set_responsible(
    conn: &mut PgConnection,
    id: &ComplaintId,
    person_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE complaints SET responsible_person_id = $2 WHERE complaint_id = $1")
        .bind(id.as_str())
        .bind(person_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A resolution: counted, with its result; empty department or person keep what is stored.
pub async fn note_resolved(
    conn: &mut PgConnection,
    id: &ComplaintId,
    resolved_at: DateTime<Utc>,
    result: &str,
    department_id: &str,
    responsible_person_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE complaints SET resolutions = resolutions + 1, resolved_at = $2, result = $3,
            department_id = CASE WHEN $4 = '' THEN department_id ELSE $4 END,
            responsible_person_id =
                CASE WHEN $5 = '' THEN responsible_person_id ELSE $5 END
         WHERE complaint_id = $1",
    )
    .bind(id.as_str())
    .bind(resolved_at)
    .bind(result)
    .bind(department_id)
    .bind(responsible_person_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The complaint is closed.
pub async fn close(conn: &mut PgConnection, id: &ComplaintId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE complaints SET closed = true WHERE complaint_id = $1")
        .bind(id.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// A new promised completion time (an approved extension).
pub async fn set_completion_due(
    conn: &mut PgConnection,
    id: &ComplaintId,
    due: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE complaints SET completion_due = $2 WHERE complaint_id = $1")
        .bind(id.as_str())
        .bind(due)
        .execute(conn)
        .await?;
    Ok(())
}

/// The complaint is open again; `completion_due`, when known, is its new promised time.
pub async fn reopen(
    conn: &mut PgConnection,
    id: &ComplaintId,
    completion_due: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE complaints SET resolved_at = NULL, closed = false,
            completion_due = COALESCE($2, completion_due)
         WHERE complaint_id = $1",
    )
    .bind(id.as_str())
    .bind(completion_due)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a revisit's outcome reads of its complaint, locked: a repeat complaint reports it.
pub struct OutcomeContext {
    pub department_id: String,
    pub class: Option<String>,
    pub responsible_person_id: String,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The complaint as a revisit's outcome needs it, locked for update.
pub async fn outcome_context(
    conn: &mut PgConnection,
    id: &ComplaintId,
) -> Result<OutcomeContext, sqlx::Error> {
    let c = sqlx::query(
        "SELECT department_id, class, responsible_person_id, resolved_at
         FROM complaints WHERE complaint_id = $1 FOR UPDATE",
    )
    .bind(id.as_str())
    .fetch_one(conn)
    .await?;
    Ok(OutcomeContext {
        department_id: c.try_get("department_id")?,
        class: c.try_get("class")?,
        responsible_person_id: c.try_get("responsible_person_id")?,
        resolved_at: c.try_get("resolved_at")?,
    })
}

/// Counts a repeat complaint.
pub async fn count_repeat(conn: &mut PgConnection, id: &ComplaintId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE complaints SET repeat_count = repeat_count + 1 WHERE complaint_id = $1")
        .bind(id.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Records an on-site service; false when the same service (complaint and time) was recorded
/// already. A new one is counted on the complaint.
pub async fn record_on_site_service(
    conn: &mut PgConnection,
    id: &ComplaintId,
    served_at: DateTime<Utc>,
    recorded_by: &str,
) -> Result<bool, sqlx::Error> {
    let fresh = sqlx::query(
        "INSERT INTO on_site_services (complaint_id, served_at, recorded_by)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(id.as_str())
    .bind(served_at)
    .bind(recorded_by)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if fresh {
        sqlx::query(
            "UPDATE complaints SET on_site_services = on_site_services + 1,
                on_site_at = GREATEST(on_site_at, $2)
             WHERE complaint_id = $1",
        )
        .bind(id.as_str())
        .bind(served_at)
        .execute(conn)
        .await?;
    }
    Ok(fresh)
}

/// How many on-site services of the complaint came by `served_at` (the service's sequence).
pub async fn on_site_sequence(
    conn: &mut PgConnection,
    id: &ComplaintId,
    served_at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM on_site_services WHERE complaint_id = $1 AND served_at <= $2",
    )
    .bind(id.as_str())
    .bind(served_at)
    .fetch_one(conn)
    .await
}
