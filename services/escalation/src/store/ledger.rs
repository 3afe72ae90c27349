//! The ledger's tables: entries (unique per complaint + person + reason + day, so a redelivered
//! or copied event never books twice), each person's count per month, the overdues and repeat
//! complaints the monthly report counts, and the business volumes it divides by.

use chrono::{DateTime, Utc};
use redress_domain::accountability::Reason;
use redress_domain::{ComplaintId, Money};
use sqlx::{PgConnection, Row};

use super::int;

/// One entry to book.
pub struct Entry {
    pub complaint_id: ComplaintId,
    pub person_id: String,
    pub reason: Reason,
    /// Which day late (late acceptance), else 0.
    pub day: u32,
    pub department_id: String,
    /// Proto value; 0 when the entry is not a class fine.
    pub class: i32,
    pub amount: Money,
    /// `YYYY-MM`, the policy's month of the booking.
    pub month: String,
    pub note: String,
    pub source_event_id: String,
}

/// Books the entry unless its key is taken; whether it was new. Whether it counts toward a
/// suspension is the domain's word ([`Reason::counts_toward_suspension`]), stored with it so the
/// month's count and the report read one column.
pub async fn book(conn: &mut PgConnection, e: &Entry, now: DateTime<Utc>) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO ledger_entries (complaint_id, person_id, reason, day, department_id,
            class, amount_fen, month, counts, note, source_event_id, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT DO NOTHING",
    )
    .bind(e.complaint_id.as_str())
    .bind(&e.person_id)
    .bind(e.reason.code())
    .bind(int(e.day))
    .bind(&e.department_id)
    .bind(e.class)
    .bind(e.amount.fen())
    .bind(&e.month)
    .bind(e.reason.counts_toward_suspension())
    .bind(&e.note)
    .bind(&e.source_event_id)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// A person's month after one more counted complaint.
pub struct PersonMonth {
    pub counted: u32,
    pub suspended: bool,
}

/// Counts one more complaint against the person in the month. The row lock it takes serialises
/// concurrent bookings (two replicas) until the transaction ends, so a threshold is crossed once.
pub async fn count(
    conn: &mut PgConnection,
    person_id: &str,
    month: &str,
) -> sqlx::Result<PersonMonth> {
    let row = sqlx::query(
        "INSERT INTO person_months (person_id, month, counted) VALUES ($1, $2, 1)
         ON CONFLICT (person_id, month) DO UPDATE SET counted = person_months.counted + 1
         RETURNING counted, suspended_at IS NOT NULL AS suspended",
    )
    .bind(person_id)
    .bind(month)
    .fetch_one(conn)
    .await?;
    Ok(PersonMonth {
        counted: u32::try_from(row.try_get::<i32, _>("counted")?).unwrap_or(0),
        suspended: row.try_get("suspended")?,
    })
}

/// Marks the person suspended for the month.
pub async fn suspend(
    conn: &mut PgConnection,
    person_id: &str,
    month: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE person_months SET suspended_at = $3 WHERE person_id = $1 AND month = $2")
        .bind(person_id)
        .bind(month)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// The complaints counted against the person in the month, in id order.
pub async fn counted_complaints(
    conn: &mut PgConnection,
    person_id: &str,
    month: &str,
) -> sqlx::Result<Vec<ComplaintId>> {
    sqlx::query(
        "SELECT DISTINCT complaint_id FROM ledger_entries
         WHERE person_id = $1 AND month = $2 AND counts ORDER BY complaint_id",
    )
    .bind(person_id)
    .bind(month)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| super::complaint_id(r, "complaint_id"))
    .collect()
}

/// Records one day of a missed limit for the monthly report, once.
pub async fn record_overdue(
    conn: &mut PgConnection,
    id: &ComplaintId,
    clock: i32,
    day: u32,
    department_id: &str,
    month: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO overdues (complaint_id, clock, day, department_id, month)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id.as_str())
    .bind(clock)
    .bind(int(day))
    .bind(department_id)
    .bind(month)
    .execute(conn)
    .await?;
    Ok(())
}

/// A repeat complaint about an original, as remembered for its doubling.
#[derive(sqlx::FromRow)]
pub struct Repeat {
    pub person_id: String,
    pub class: i32,
    pub department_id: String,
}

/// The first repeat complaint recorded about `original`, if any.
pub async fn first_repeat(
    conn: &mut PgConnection,
    original: &ComplaintId,
) -> sqlx::Result<Option<Repeat>> {
    sqlx::query_as::<_, Repeat>(
        "SELECT person_id, class, department_id FROM repeats WHERE original_complaint_id = $1
         ORDER BY month LIMIT 1",
    )
    .bind(original.as_str())
    .fetch_optional(conn)
    .await
}

/// Remembers a repeat complaint about `original`, once per pair.
pub async fn record_repeat(
    conn: &mut PgConnection,
    original: &ComplaintId,
    repeat: &ComplaintId,
    r: &Repeat,
    month: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO repeats (original_complaint_id, repeat_complaint_id, department_id,
            person_id, class, month) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(original.as_str())
    .bind(repeat.as_str())
    .bind(&r.department_id)
    .bind(&r.person_id)
    .bind(r.class)
    .bind(month)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets a department's business volume for the month; the volume it replaces, if any. The row
/// stays locked until the transaction ends, so two operators' answers do not cross.
pub async fn set_business_volume(
    conn: &mut PgConnection,
    department_id: &str,
    month: &str,
    volume: i64,
    by: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<i64>> {
    let previous: Option<i64> = sqlx::query_scalar(
        "SELECT volume FROM business_volumes WHERE department_id = $1 AND month = $2
         FOR UPDATE",
    )
    .bind(department_id)
    .bind(month)
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO business_volumes (department_id, month, volume, set_by, set_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (department_id, month) DO UPDATE SET
            volume = EXCLUDED.volume, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at",
    )
    .bind(department_id)
    .bind(month)
    .bind(volume)
    .bind(by)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(previous)
}
