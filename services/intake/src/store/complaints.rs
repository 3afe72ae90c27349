//! The `complaints` table as intake writes it (recording, confirmation, reclassification) and
//! as staff read it (one complaint with its timeline, the paged list).

use super::column;
use chrono::{DateTime, Utc};
use redress_domain::ComplaintId;
use redress_domain::limits::LimitsInForce;
use redress_platform::access::Reach;
use redress_platform::pagination::Page;
use redress_proto::v1;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};

/// A complaint's row as it is first written. The number is not here: a sequence inside the
/// insert gives it, so numbers follow arrival.
pub struct NewComplaint {
    pub complaint_id: String,
    pub source_system: String,
    pub external_id: String,
    /// The normalised details, protobuf-encoded.
    pub details: Vec<u8>,
    /// The acknowledgement but for its number, protobuf-encoded.
    pub acknowledgement: Vec<u8>,
    pub class: String,
    pub status: &'static str,
    pub channel: String,
    pub category: String,
    pub confirmed: bool,
    pub received_at: DateTime<Utc>,
    /// What the number starts with: `RD` and the day of receipt.
    pub number_prefix: String,
}

/// Inserts the rows in one statement. For each row, in order: its complaint number, or `None`
/// when its submission key was already recorded (earlier, or by an earlier row of the same
/// call) — a duplicate inserts nothing.
pub async fn insert_new(
    conn: &mut PgConnection,
    rows: &[NewComplaint],
) -> Result<Vec<Option<String>>, sqlx::Error> {
    let ids = column(rows, |r| r.complaint_id.clone());
    // WITH ORDINALITY keeps the rows' order, so numbers follow arrival and a repeated key
    // within the call keeps its first row.
    let inserted: Vec<(String, String)> = sqlx::query_as(
        "INSERT INTO complaints (complaint_id, number, source_system, external_id, details,
            acknowledgement, class, status, channel, category, confirmed, received_at, updated_at)
         SELECT id, complaint_number(prefix, nextval('complaint_number_seq')), sys, ext, det,
            ack, cls, st, ch, cat, conf, rec, rec
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::bool[], $11::timestamptz[], $12::text[])
            WITH ORDINALITY AS t(id, sys, ext, det, ack, cls, st, ch, cat, conf, rec, prefix, i)
         ORDER BY i
         ON CONFLICT (source_system, external_id) DO NOTHING
         RETURNING complaint_id, number",
    )
    .bind(&ids)
    .bind(column(rows, |r| r.source_system.clone()))
    .bind(column(rows, |r| r.external_id.clone()))
    .bind(column(rows, |r| r.details.clone()))
    .bind(column(rows, |r| r.acknowledgement.clone()))
    .bind(column(rows, |r| r.class.clone()))
    .bind(column(rows, |r| r.status))
    .bind(column(rows, |r| r.channel.clone()))
    .bind(column(rows, |r| r.category.clone()))
    .bind(column(rows, |r| r.confirmed))
    .bind(column(rows, |r| r.received_at))
    .bind(column(rows, |r| r.number_prefix.clone()))
    .fetch_all(conn)
    .await?;
    let mut numbers: std::collections::HashMap<String, String> = inserted.into_iter().collect();
    Ok(ids.iter().map(|id| numbers.remove(id)).collect())
}

/// The acknowledgement bytes and the number stored under a submission key.
pub async fn ack_by_key(
    conn: &mut PgConnection,
    system: &str,
    external_id: &str,
) -> Result<Option<(Vec<u8>, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT acknowledgement, number FROM complaints WHERE source_system = $1 AND external_id = $2",
    )
    .bind(system)
    .bind(external_id)
    .fetch_optional(conn)
    .await
}

/// Whether the complaint is confirmed, with its acknowledgement bytes; the row locked for
/// update.
pub async fn lock_confirmation(
    conn: &mut PgConnection,
    id: &ComplaintId,
) -> Result<Option<(bool, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT confirmed, acknowledgement FROM complaints WHERE complaint_id = $1 FOR UPDATE",
    )
    .bind(id.as_str())
    .fetch_optional(conn)
    .await
}

/// The complaint is confirmed; a complaint still only received moves on to `confirmed`.
pub async fn mark_confirmed(
    conn: &mut PgConnection,
    id: &ComplaintId,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE complaints SET confirmed = true, status = CASE WHEN status = 'received' THEN 'confirmed' ELSE status END, updated_at = $2 WHERE complaint_id = $1")
        .bind(id.as_str())
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The class (as stored), time of receipt and status of a complaint; the row locked for update.
pub async fn lock_class(
    conn: &mut PgConnection,
    id: &ComplaintId,
) -> Result<Option<(String, DateTime<Utc>, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT class, received_at, status FROM complaints WHERE complaint_id = $1 FOR UPDATE",
    )
    .bind(id.as_str())
    .fetch_optional(conn)
    .await
}

/// Stores a new class (its letter).
pub async fn set_class(
    conn: &mut PgConnection,
    id: &ComplaintId,
    class: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE complaints SET class = $2, updated_at = $3 WHERE complaint_id = $1")
        .bind(id.as_str())
        .bind(class)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The id of the complaint with this number, if any.
pub async fn id_of_number(pool: &PgPool, number: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT complaint_id FROM complaints WHERE number = $1")
        .bind(number)
        .fetch_optional(pool)
        .await
}

/// A complaint's department and assignee (empty when none), if the complaint exists.
pub async fn place(
    pool: &PgPool,
    id: &ComplaintId,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT department_id, assignee_id FROM complaints WHERE complaint_id = $1")
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(d, a)| (d.unwrap_or_default(), a.unwrap_or_default())))
}

/// The columns [`ComplaintRow::from_row`] reads.
const COMPLAINT_COLUMNS: &str = "complaint_id, number, details, acknowledgement, class, status, \
    channel, department_id, assignee_id, overdue, confirmed, received_at, category, \
    satisfaction, classification_reasons, limits";

/// A complaint as staff read it. The details and acknowledgement stay encoded: their decoding
/// errors are the reader's to word.
pub struct ComplaintRow {
    pub complaint_id: String,
    pub number: String,
    pub details: Vec<u8>,
    pub acknowledgement: Vec<u8>,
    /// The class letter as stored.
    pub class: String,
    pub status: String,
    pub channel: String,
    pub department_id: String,
    pub assignee_id: String,
    pub overdue: bool,
    pub confirmed: bool,
    pub received_at: DateTime<Utc>,
    pub category: String,
    pub satisfaction: String,
    /// Set once something changed the class; until then the acknowledgement's stand.
    pub classification_reasons: Option<Vec<String>>,
    /// Set once something changed the limits; until then the acknowledgement's stand.
    pub limits: Option<Json<LimitsInForce>>,
}

impl ComplaintRow {
    fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            complaint_id: r.try_get("complaint_id")?,
            number: r.try_get("number")?,
            details: r.try_get("details")?,
            acknowledgement: r.try_get("acknowledgement")?,
            class: r.try_get("class")?,
            status: r.try_get("status")?,
            channel: r.try_get("channel")?,
            department_id: r
                .try_get::<Option<String>, _>("department_id")?
                .unwrap_or_default(),
            assignee_id: r
                .try_get::<Option<String>, _>("assignee_id")?
                .unwrap_or_default(),
            overdue: r.try_get("overdue")?,
            confirmed: r.try_get("confirmed")?,
            received_at: r.try_get("received_at")?,
            category: r.try_get("category")?,
            satisfaction: r.try_get("satisfaction")?,
            classification_reasons: r.try_get("classification_reasons")?,
            limits: r.try_get("limits")?,
        })
    }
}

/// A complaint and its whole timeline, read in one snapshot so the status matches the
/// entries shown.
pub async fn complaint_with_timeline(
    pool: &PgPool,
    id: &ComplaintId,
) -> Result<Option<(ComplaintRow, Vec<v1::TimelineEntry>)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE complaint_id = $1"
    )))
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let row = ComplaintRow::from_row(&row)?;
    let timeline = sqlx::query(
        "SELECT event_id, kind, occurred_at, actor_id, actor_name, actor_role, summary, source_service
         FROM timeline WHERE complaint_id = $1 ORDER BY occurred_at, seq",
    )
    .bind(id.as_str())
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| -> Result<v1::TimelineEntry, sqlx::Error> {
        Ok(v1::TimelineEntry {
            event_id: r.try_get("event_id")?,
            kind: r.try_get("kind")?,
            occurred_at: Some(redress_platform::events::ts(r.try_get("occurred_at")?)),
            actor: Some(v1::Actor {
                id: r.try_get("actor_id")?,
                display_name: r.try_get("actor_name")?,
                role: r.try_get("actor_role")?,
            }),
            summary: r.try_get("summary")?,
            source_service: r.try_get("source_service")?,
        })
    })
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((row, timeline)))
}

/// Which complaints the list shows (`None` narrows nothing).
pub struct ComplaintFilter<'a> {
    pub reach: &'a Reach,
    pub status: Option<&'a str>,
    /// The class letter.
    pub class: Option<String>,
    pub department_id: Option<&'a str>,
    /// The channel as stored (lowercase).
    pub channel: Option<String>,
    pub overdue: Option<bool>,
    pub received_from: Option<DateTime<Utc>>,
    pub received_to: Option<DateTime<Utc>>,
}

/// One page of complaints, newest first, keyset-paged on `(received_at, complaint_id)`. Only
/// the filters given become predicates, so each one can use its index and the cursor is an
/// index condition: page 1,000 reads what page 1 reads. Fetches [`Page::fetch`] rows.
pub async fn list(
    pool: &PgPool,
    f: &ComplaintFilter<'_>,
    page: &Page,
) -> Result<Vec<ComplaintRow>, sqlx::Error> {
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
        "SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE true"
    ));
    if let (false, departments, actor) = f.reach.sql() {
        q.push(" AND (department_id = ANY(")
            .push_bind(departments.to_vec())
            .push(")")
            .push(" OR assignee_id = ")
            .push_bind(actor.map(str::to_owned))
            .push(")");
    }
    if let Some(status) = f.status {
        q.push(" AND status = ").push_bind(status.to_owned());
    }
    if let Some(class) = &f.class {
        q.push(" AND class = ").push_bind(class.clone());
    }
    if let Some(department) = f.department_id {
        q.push(" AND department_id = ")
            .push_bind(department.to_owned());
    }
    if let Some(channel) = &f.channel {
        q.push(" AND channel = ").push_bind(channel.clone());
    }
    match f.overdue {
        Some(true) => {
            q.push(" AND overdue");
        }
        Some(false) => {
            q.push(" AND NOT overdue");
        }
        None => {}
    }
    if let Some(from) = f.received_from {
        q.push(" AND received_at >= ").push_bind(from);
    }
    if let Some(to) = f.received_to {
        q.push(" AND received_at < ").push_bind(to);
    }
    if page.is_continued() {
        q.push(" AND (received_at, complaint_id) < (")
            .push_bind(page.time(0))
            .push(", ")
            .push_bind(page.text(1))
            .push(")");
    }
    q.push(" ORDER BY received_at DESC, complaint_id DESC LIMIT ")
        .push_bind(page.fetch());
    q.build()
        .fetch_all(pool)
        .await?
        .iter()
        .map(ComplaintRow::from_row)
        .collect()
}
