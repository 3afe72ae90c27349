//! The registry's tables as other services' events change them: the timeline, the names of
//! the organisation's people, a complaint's summary columns, its class and limits, and the
//! customer's satisfaction.

use std::collections::HashMap;

use super::column;
use chrono::{DateTime, Utc};
use redress_domain::limits::LimitsInForce;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

/// Keeps the names of people (one statement; each id once in `names`).
pub async fn remember_names(
    conn: &mut PgConnection,
    names: &HashMap<&str, &str>,
) -> Result<(), sqlx::Error> {
    if names.is_empty() {
        return Ok(());
    }
    let (ids, names): (Vec<&str>, Vec<&str>) = names.iter().map(|(i, n)| (*i, *n)).unzip();
    sqlx::query(
        "INSERT INTO staff_names (staff_id, name) SELECT * FROM UNNEST($1::text[], $2::text[])
         ON CONFLICT (staff_id) DO UPDATE SET name = EXCLUDED.name",
    )
    .bind(ids)
    .bind(names)
    .execute(conn)
    .await?;
    Ok(())
}

/// The known names of these people, by staff id.
pub async fn names_of(
    conn: &mut PgConnection,
    staff_ids: &[String],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT staff_id, name FROM staff_names WHERE staff_id = ANY($1)")
            .bind(staff_ids)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// One timeline entry as written.
pub struct TimelineRow {
    pub complaint_id: String,
    pub event_id: String,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_name: String,
    pub actor_role: i32,
    pub summary: String,
    pub source_service: String,
}

/// Adds timeline entries in one statement (an entry already there is left as it is).
pub async fn insert_timeline(
    conn: &mut PgConnection,
    rows: &[TimelineRow],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO timeline (complaint_id, event_id, kind, occurred_at, actor_id, actor_name,
            actor_role, summary, source_service)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
            $6::text[], $7::int4[], $8::text[], $9::text[])
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(column(rows, |r| r.complaint_id.clone()))
    .bind(column(rows, |r| r.event_id.clone()))
    .bind(column(rows, |r| r.kind.clone()))
    .bind(column(rows, |r| r.occurred_at))
    .bind(column(rows, |r| r.actor_id.clone()))
    .bind(column(rows, |r| r.actor_name.clone()))
    .bind(column(rows, |r| r.actor_role))
    .bind(column(rows, |r| r.summary.clone()))
    .bind(column(rows, |r| r.source_service.clone()))
    .execute(conn)
    .await?;
    Ok(())
}

/// A change to a complaint's summary columns.
pub struct SummaryChange<'a> {
    pub complaint_id: &'a str,
    pub status: Option<&'static str>,
    pub department: Option<&'a str>,
    pub assignee: Option<&'a str>,
    pub overdue: Option<bool>,
    pub at: DateTime<Utc>,
    /// The stages the status may move from, comma-separated; empty for any.
    pub only_from: &'static str,
    pub clear_assignee: bool,
}

/// Applies summary changes, each complaint at most once in `changes`, in one statement.
/// Status only moves forward in time: an older event delivered late does not overwrite it.
pub async fn apply_summaries(
    conn: &mut PgConnection,
    changes: &[SummaryChange<'_>],
) -> Result<(), sqlx::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE complaints c SET
            status = CASE WHEN r.status IS NOT NULL AND c.updated_at <= r.at
                AND (r.only_from = '' OR c.status = ANY(string_to_array(r.only_from, ',')))
                THEN r.status ELSE c.status END,
            department_id = COALESCE(r.department_id, c.department_id),
            assignee_id = CASE WHEN r.clear_assignee AND c.updated_at <= r.at THEN NULL
                ELSE COALESCE(r.assignee_id, c.assignee_id) END,
            overdue = COALESCE(r.overdue, c.overdue),
            updated_at = GREATEST(c.updated_at, r.at)
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[],
                     $6::timestamptz[], $7::text[], $8::bool[])
            AS r(complaint_id, status, department_id, assignee_id, overdue, at, only_from,
                 clear_assignee)
         WHERE c.complaint_id = r.complaint_id",
    )
    .bind(column(changes, |c| c.complaint_id))
    .bind(column(changes, |c| c.status))
    .bind(column(changes, |c| c.department))
    .bind(column(changes, |c| c.assignee))
    .bind(column(changes, |c| c.overdue))
    .bind(column(changes, |c| c.at))
    .bind(column(changes, |c| c.only_from))
    .bind(column(changes, |c| c.clear_assignee))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the customer's latest satisfaction.
pub async fn set_satisfaction(
    conn: &mut PgConnection,
    complaint_id: &str,
    satisfied: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE complaints SET satisfaction = $2 WHERE complaint_id = $1")
        .bind(complaint_id)
        .bind(if satisfied {
            "satisfied"
        } else {
            "dissatisfied"
        })
        .execute(conn)
        .await?;
    Ok(())
}

/// What the limits in force are computed from.
pub struct LimitsRow {
    /// The acknowledgement, protobuf-encoded: its class and promises stand until changed.
    pub acknowledgement: Vec<u8>,
    pub received_at: DateTime<Utc>,
    pub limits: Option<Json<LimitsInForce>>,
    /// When the class was last set, so a late-arriving older change does not undo a newer one.
    pub class_set_at: Option<DateTime<Utc>>,
}

/// A complaint's limits, the row locked for update (so intake's own reclassification and the
/// consumer take turns); `None` before intake's row exists.
pub async fn lock_limits(
    conn: &mut PgConnection,
    complaint_id: &str,
) -> Result<Option<LimitsRow>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT acknowledgement, received_at, limits, class_set_at FROM complaints
         WHERE complaint_id = $1 FOR UPDATE",
    )
    .bind(complaint_id)
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(LimitsRow {
        acknowledgement: row.try_get("acknowledgement")?,
        received_at: row.try_get("received_at")?,
        limits: row.try_get("limits")?,
        class_set_at: row.try_get("class_set_at")?,
    }))
}

/// Stores the limits in force and their class; new reasons when given; the time the class
/// was set when `sets_class`.
pub async fn save_limits(
    conn: &mut PgConnection,
    complaint_id: &str,
    limits: &LimitsInForce,
    reasons: Option<Vec<String>>,
    sets_class: bool,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE complaints SET class = $2, limits = $3,
            classification_reasons = COALESCE($4, classification_reasons),
            class_set_at = CASE WHEN $5 THEN $6 ELSE class_set_at END
         WHERE complaint_id = $1",
    )
    .bind(complaint_id)
    .bind(limits.class.as_str())
    .bind(Json(limits))
    .bind(reasons)
    .bind(sets_class)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
