//! The `handling` table: one row per complaint, written first by its arrival (received and
//! confirmed, in either order, and reclassified) and then by every handling command. Rows are
//! read with their open sub-tasks counted, because the state machine refuses to resolve a
//! complaint while a department's share is still open.

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_domain::handling::Stage;
use redress_domain::{Class, ComplaintId};
use redress_platform::access::Reach;
use redress_platform::pagination::{Key, Kind, Page};
use redress_proto::v1;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::commands::Record;
use crate::error::Error;

/// A `SELECT` of handling rows together with their open sub-tasks, then `$tail` (a literal,
/// so the statement stays a static string).
macro_rules! record_query {
    ($tail:literal) => {
        concat!(
            "SELECT h.*, (SELECT count(*) FROM subtasks t WHERE t.complaint_id = h.complaint_id
                      AND t.completed_at IS NULL) AS open_subtasks
             FROM handling h ",
            $tail
        )
    };
}

fn u32_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// A row read through `record_query!`. Stored values the service could not have written (an
/// unknown stage or class, undecodable details) are internal errors, not guesses.
fn record_from_row(r: &PgRow) -> Result<Record, Error> {
    let id: String = r.try_get("complaint_id")?;
    let stage: String = r.try_get("stage")?;
    let class: String = r.try_get("class")?;
    let details = r
        .try_get::<Option<Vec<u8>>, _>("details")?
        .map(|b| v1::ComplaintDetails::decode(b.as_slice()))
        .transpose()
        .map_err(|e| Error::Internal(format!("stored details: {e}")))?;
    Ok(Record {
        complaint_id: ComplaintId::parse(&id)
            .map_err(|e| Error::Internal(format!("stored complaint id: {e}")))?,
        stage: Stage::parse(&stage).ok_or_else(|| Error::Internal(format!("stage {stage}")))?,
        class: Class::parse(&class).map_err(|e| Error::Internal(format!("stored {e}")))?,
        number: r.try_get("number")?,
        details,
        guidance_actions: r.try_get("guidance_actions")?,
        customer_type: r.try_get("customer_type")?,
        department_id: r.try_get("department_id")?,
        assignee_id: r.try_get("assignee_id")?,
        acceptance_owner_id: r.try_get("acceptance_owner_id")?,
        accepted_at: r.try_get("accepted_at")?,
        valid: r.try_get("valid")?,
        cause: r.try_get("cause")?,
        responsibility: r.try_get("responsibility")?,
        responsible_person_id: r.try_get("responsible_person_id")?,
        feedback_count: u32_of(r.try_get("feedback_count")?),
        latest_solution: r.try_get("latest_solution")?,
        attempt: u32_of(r.try_get("attempt")?),
        rejection_count: u32_of(r.try_get("rejection_count")?),
        handed_in_at: r.try_get("handed_in_at")?,
        result: r.try_get("result")?,
        open_subtasks: u32::try_from(r.try_get::<i64, _>("open_subtasks")?).unwrap_or(0),
        satisfied: r.try_get("satisfied")?,
        satisfaction_recorded: r.try_get("satisfaction_recorded")?,
        closed_at: r.try_get("closed_at")?,
    })
}

/// A complaint's row, locked (`FOR UPDATE`) until the transaction ends or not (a plain read for
/// queries, which must not hold commands up).
pub async fn read(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
    lock: bool,
) -> Result<Option<Record>, Error> {
    let sql = if lock {
        record_query!("WHERE h.complaint_id = $1 FOR UPDATE")
    } else {
        record_query!("WHERE h.complaint_id = $1")
    };
    let Some(r) = sqlx::query(sql)
        .bind(complaint_id.as_str())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    record_from_row(&r).map(Some)
}

/// Which halves of a complaint's arrival are in: routing waits for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Halves {
    pub received: bool,
    pub confirmed: bool,
}

impl Halves {
    pub fn complete(self) -> bool {
        self.received && self.confirmed
    }
}

/// The arrival halves of a complaint that has a row.
pub async fn halves(conn: &mut PgConnection, complaint_id: &ComplaintId) -> Result<Halves, Error> {
    let (received, confirmed): (bool, bool) =
        sqlx::query_as("SELECT received, confirmed FROM handling WHERE complaint_id = $1")
            .bind(complaint_id.as_str())
            .fetch_one(conn)
            .await?;
    Ok(Halves {
        received,
        confirmed,
    })
}

/// The rows of `ids` with their arrival halves, locked until the transaction ends — in id
/// order, as every locker of several rows must, so two replicas never deadlock.
pub async fn lock_many(
    conn: &mut PgConnection,
    ids: &[ComplaintId],
) -> Result<Vec<(Record, Halves)>, Error> {
    let ids: Vec<&str> = ids.iter().map(ComplaintId::as_str).collect();
    let rows = sqlx::query(record_query!(
        "WHERE h.complaint_id = ANY($1) ORDER BY h.complaint_id FOR UPDATE"
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let halves = Halves {
                received: r.try_get("received")?,
                confirmed: r.try_get("confirmed")?,
            };
            Ok((record_from_row(r)?, halves))
        })
        .collect()
}

/// Writes a row back. `open` follows the stage, so the queue and the load counters need no
/// stage list of their own.
pub async fn save(conn: &mut PgConnection, r: &Record, now: DateTime<Utc>) -> Result<(), Error> {
    sqlx::query(
        "UPDATE handling SET stage = $2, class = $3, department_id = $4, assignee_id = $5,
            acceptance_owner_id = $6, accepted_at = $7, valid = $8, cause = $9, responsibility = $10,
            responsible_person_id = $11, feedback_count = $12, latest_solution = $13, attempt = $14,
            rejection_count = $15, handed_in_at = $16, result = $17, open = $18, updated_at = $19,
            satisfied = $20, satisfaction_recorded = $21, closed_at = $22
         WHERE complaint_id = $1",
    )
    .bind(r.complaint_id.as_str())
    .bind(r.stage.as_str())
    .bind(r.class.as_str())
    .bind(&r.department_id)
    .bind(&r.assignee_id)
    .bind(&r.acceptance_owner_id)
    .bind(r.accepted_at)
    .bind(r.valid)
    .bind(&r.cause)
    .bind(r.responsibility)
    .bind(&r.responsible_person_id)
    .bind(i32_of(r.feedback_count))
    .bind(&r.latest_solution)
    .bind(i32_of(r.attempt))
    .bind(i32_of(r.rejection_count))
    .bind(r.handed_in_at)
    .bind(&r.result)
    .bind(r.stage.is_open())
    .bind(now)
    .bind(r.satisfied)
    .bind(r.satisfaction_recorded)
    .bind(r.closed_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes several rows back in one statement, as [`save`] writes one: a consumer batch routes
/// hundreds of complaints, and a statement each would dominate its time.
pub async fn save_many(
    conn: &mut PgConnection,
    recs: &[&Record],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if recs.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($f:expr) => {
            recs.iter().map($f).collect::<Vec<_>>()
        };
    }
    sqlx::query(
        "UPDATE handling h SET stage = r.stage, class = r.class, department_id = r.department_id,
            assignee_id = r.assignee_id, acceptance_owner_id = r.acceptance_owner_id,
            accepted_at = r.accepted_at, valid = r.valid, cause = r.cause,
            responsibility = r.responsibility, responsible_person_id = r.responsible_person_id,
            feedback_count = r.feedback_count, latest_solution = r.latest_solution,
            attempt = r.attempt, rejection_count = r.rejection_count,
            handed_in_at = r.handed_in_at, result = r.result, open = r.open, updated_at = $22,
            satisfied = r.satisfied, satisfaction_recorded = r.satisfaction_recorded,
            closed_at = r.closed_at
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::bool[], $9::text[], $10::int[], $11::text[],
                     $12::int[], $13::text[], $14::int[], $15::int[], $16::timestamptz[],
                     $17::text[], $18::bool[], $19::bool[], $20::bool[], $21::timestamptz[])
            AS r(complaint_id, stage, class, department_id, assignee_id, acceptance_owner_id,
                 accepted_at, valid, cause, responsibility, responsible_person_id,
                 feedback_count, latest_solution, attempt, rejection_count, handed_in_at,
                 result, open, satisfied, satisfaction_recorded, closed_at)
         WHERE h.complaint_id = r.complaint_id",
    )
    .bind(column!(|r| r.complaint_id.to_string()))
    .bind(column!(|r| r.stage.as_str()))
    .bind(column!(|r| r.class.as_str().to_owned()))
    .bind(column!(|r| r.department_id.clone()))
    .bind(column!(|r| r.assignee_id.clone()))
    .bind(column!(|r| r.acceptance_owner_id.clone()))
    .bind(column!(|r| r.accepted_at))
    .bind(column!(|r| r.valid))
    .bind(column!(|r| r.cause.clone()))
    .bind(column!(|r| r.responsibility))
    .bind(column!(|r| r.responsible_person_id.clone()))
    .bind(column!(|r| i32_of(r.feedback_count)))
    .bind(column!(|r| r.latest_solution.clone()))
    .bind(column!(|r| i32_of(r.attempt)))
    .bind(column!(|r| i32_of(r.rejection_count)))
    .bind(column!(|r| r.handed_in_at))
    .bind(column!(|r| r.result.clone()))
    .bind(column!(|r| r.stage.is_open()))
    .bind(column!(|r| r.satisfied))
    .bind(column!(|r| r.satisfaction_recorded))
    .bind(column!(|r| r.closed_at))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// What `complaint.received` tells routing, as one row of `handling`.
pub struct Arrival {
    pub complaint_id: ComplaintId,
    pub confirmed: bool,
    pub number: String,
    pub class: Class,
    pub details: Vec<u8>,
    pub actions: serde_json::Value,
    pub category: String,
    pub group_complaint: bool,
    pub customers_affected: i32,
    pub media_risk: bool,
    pub customer_name: String,
    pub customer_type: i32,
    pub received_at: DateTime<Utc>,
    pub completion_due: Option<DateTime<Utc>>,
}

/// Records what intake received, one statement for all (each complaint once in `rows`); a
/// complaint already received keeps its row, so a redelivered receipt changes nothing. A
/// reclassification applied before the receipt (out of order) keeps its class and due time.
pub async fn insert_received(conn: &mut PgConnection, rows: &[Arrival]) -> Result<(), sqlx::Error> {
    insert_arrivals(conn, rows, &[]).await
}

/// Marks complaints confirmed (each once in `rows`, with when), one statement for all. A
/// confirmation may come before the receipt, so it creates the row when there is none.
pub async fn insert_confirmed(
    conn: &mut PgConnection,
    rows: &[(ComplaintId, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    insert_arrivals(conn, &[], rows).await
}

/// Records receipts and confirmations (each complaint at most once in each list) in one
/// statement, one row per complaint, in complaint-id order. One statement in id order is what
/// lets two replicas share the consumer without deadlocking: when a complaint's receipt goes
/// to one replica and its confirmation to the other, each locks the rows of its batch in the
/// same order, so one waits for the other instead of each holding a row the other needs (two
/// statements, receipts then confirmations, deadlocked in the two-replica pipeline bench).
///
/// A receipt fills the complaint's details unless a receipt was recorded before (redelivery);
/// a reclassification applied before the receipt keeps its class and due time. A confirmation
/// alone creates the row when the receipt has not come yet.
pub async fn insert_arrivals(
    conn: &mut PgConnection,
    receipts: &[Arrival],
    confirmations: &[(ComplaintId, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    let mut rows: std::collections::BTreeMap<&str, (Option<&Arrival>, Option<DateTime<Utc>>)> =
        std::collections::BTreeMap::new();
    for r in receipts {
        rows.entry(r.complaint_id.as_str()).or_default().0 = Some(r);
    }
    for (id, at) in confirmations {
        rows.entry(id.as_str()).or_default().1 = Some(*at);
    }
    if rows.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($f:expr) => {
            rows.values().map($f).collect::<Vec<_>>()
        };
    }
    // A receipt's column: NULL for a complaint only confirmed here.
    macro_rules! receipt {
        ($f:expr) => {
            column!(|(r, _)| r.map($f))
        };
    }
    sqlx::query(
        "INSERT INTO handling (complaint_id, stage, received, confirmed, number, class, details,
            guidance_actions, category, group_complaint, customers_affected, media_risk,
            customer_name, customer_type, received_at, completion_due, updated_at)
         SELECT r.complaint_id, 'awaiting_confirmation', r.received, r.confirmed,
            COALESCE(r.number, ''), COALESCE(r.class, 'C'), r.details,
            ARRAY(SELECT jsonb_array_elements_text(r.actions)), COALESCE(r.category, ''),
            COALESCE(r.group_complaint, false), COALESCE(r.customers_affected, 1),
            COALESCE(r.media_risk, false), COALESCE(r.customer_name, ''),
            COALESCE(r.customer_type, 0), r.received_at, r.completion_due, r.at
         FROM UNNEST($1::text[], $2::bool[], $3::bool[], $4::text[], $5::text[], $6::bytea[],
                     $7::jsonb[], $8::text[], $9::bool[], $10::int[], $11::bool[], $12::text[],
                     $13::int[], $14::timestamptz[], $15::timestamptz[], $16::timestamptz[])
            AS r(complaint_id, received, confirmed, number, class, details, actions, category,
                 group_complaint, customers_affected, media_risk, customer_name, customer_type,
                 received_at, completion_due, at)
         ORDER BY r.complaint_id
         ON CONFLICT (complaint_id) DO UPDATE SET
            received = handling.received OR EXCLUDED.received,
            confirmed = handling.confirmed OR EXCLUDED.confirmed,
            number = CASE WHEN EXCLUDED.received AND NOT handling.received
                          THEN EXCLUDED.number ELSE handling.number END,
            class = CASE WHEN EXCLUDED.received AND NOT handling.received
                              AND handling.reclassified_at IS NULL
                         THEN EXCLUDED.class ELSE handling.class END,
            details = CASE WHEN EXCLUDED.received AND NOT handling.received
                           THEN EXCLUDED.details ELSE handling.details END,
            guidance_actions = CASE WHEN EXCLUDED.received AND NOT handling.received
                                    THEN EXCLUDED.guidance_actions
                                    ELSE handling.guidance_actions END,
            category = CASE WHEN EXCLUDED.received AND NOT handling.received
                            THEN EXCLUDED.category ELSE handling.category END,
            group_complaint = CASE WHEN EXCLUDED.received AND NOT handling.received
                                   THEN EXCLUDED.group_complaint
                                   ELSE handling.group_complaint END,
            customers_affected = CASE WHEN EXCLUDED.received AND NOT handling.received
                                      THEN EXCLUDED.customers_affected
                                      ELSE handling.customers_affected END,
            media_risk = CASE WHEN EXCLUDED.received AND NOT handling.received
                              THEN EXCLUDED.media_risk ELSE handling.media_risk END,
            customer_name = CASE WHEN EXCLUDED.received AND NOT handling.received
                                 THEN EXCLUDED.customer_name ELSE handling.customer_name END,
            customer_type = CASE WHEN EXCLUDED.received AND NOT handling.received
                                 THEN EXCLUDED.customer_type ELSE handling.customer_type END,
            received_at = CASE WHEN EXCLUDED.received AND NOT handling.received
                               THEN EXCLUDED.received_at ELSE handling.received_at END,
            completion_due = CASE
                WHEN NOT (EXCLUDED.received AND NOT handling.received) THEN handling.completion_due
                WHEN handling.reclassified_at IS NULL THEN EXCLUDED.completion_due
                ELSE COALESCE(handling.completion_due, EXCLUDED.completion_due) END
         WHERE (EXCLUDED.received AND NOT handling.received)
            OR (EXCLUDED.confirmed AND NOT handling.confirmed)",
    )
    .bind(rows.keys().map(|id| (*id).to_owned()).collect::<Vec<_>>())
    .bind(column!(|(r, _)| r.is_some()))
    .bind(column!(
        |(r, c)| c.is_some() || r.is_some_and(|r| r.confirmed)
    ))
    .bind(receipt!(|r| r.number.clone()))
    .bind(receipt!(|r| r.class.as_str().to_owned()))
    .bind(receipt!(|r| r.details.clone()))
    .bind(receipt!(|r| r.actions.clone()))
    .bind(receipt!(|r| r.category.clone()))
    .bind(receipt!(|r| r.group_complaint))
    .bind(receipt!(|r| r.customers_affected))
    .bind(receipt!(|r| r.media_risk))
    .bind(receipt!(|r| r.customer_name.clone()))
    .bind(receipt!(|r| r.customer_type))
    .bind(receipt!(|r| r.received_at))
    .bind(column!(|(r, _)| r.and_then(|r| r.completion_due)))
    .bind(column!(|(r, c)| r.map_or(*c, |r| Some(r.received_at))))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a reclassification unless a later one is already stored (redelivery and replicas
/// may apply them out of order). Applied before `complaint.received`, it leaves a row that the
/// receipt completes without overwriting the class.
pub async fn reclassify(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
    class: Class,
    completion_due: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO handling (complaint_id, stage, class, completion_due,
            reclassified_at, updated_at)
         VALUES ($1, 'awaiting_confirmation', $2, $3, $4, $4)
         ON CONFLICT (complaint_id) DO UPDATE SET class = EXCLUDED.class,
            completion_due = COALESCE(EXCLUDED.completion_due, handling.completion_due),
            reclassified_at = EXCLUDED.reclassified_at
         WHERE handling.reclassified_at IS NULL
            OR handling.reclassified_at <= EXCLUDED.reclassified_at",
    )
    .bind(complaint_id.as_str())
    .bind(class.as_str())
    .bind(completion_due)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which complaints a queue shows: a department's, a handler's or both (an empty field does not
/// filter), within what the caller may reach.
pub struct QueueFilter<'a> {
    pub department_id: &'a str,
    pub handler_id: &'a str,
    pub include_finished: bool,
    pub reach: &'a Reach,
}

/// The shape of the queue's sort key, in `ORDER BY` order: see [`QueueRow::key`].
pub const QUEUE_KEY: [Kind; 6] = [
    Kind::Bool,
    Kind::Text,
    Kind::Bool,
    Kind::Time,
    Kind::Time,
    Kind::Text,
];

/// One complaint in a queue. The id stays text: the listing passes it through to the wire and
/// the page token as stored.
pub struct QueueRow {
    pub complaint_id: String,
    pub number: String,
    pub class: String,
    pub group_complaint: bool,
    pub customers_affected: i32,
    pub media_risk: bool,
    pub completion_due: Option<DateTime<Utc>>,
    pub department_id: String,
    pub assignee_id: String,
    pub stage: String,
    pub category: String,
    pub customer_name: String,
    pub customer_type: i32,
    pub received_at: Option<DateTime<Utc>>,
    closed: bool,
    single: bool,
    due_key: DateTime<Utc>,
    received_key: DateTime<Utc>,
}

impl QueueRow {
    /// The row's place in the queue's order, which the next page continues after.
    pub fn key(&self) -> Vec<Key> {
        vec![
            Key::Bool(self.closed),
            Key::Text(self.class.clone()),
            Key::Bool(self.single),
            Key::Time(self.due_key),
            Key::Time(self.received_key),
            Key::Text(self.complaint_id.clone()),
        ]
    }
}

/// A page of a queue in priority order (DOMAIN §3, "by severity, number of customers affected
/// and urgency"): open first, class A first, group complaints first, then least time left (none
/// last), then the earliest received. Every part ascends, so the page's last row is a cursor
/// the next page continues after (a row comparison); [`QUEUE_KEY`] is its shape.
pub async fn queue(
    conn: &mut PgConnection,
    filter: &QueueFilter<'_>,
    page: &Page,
) -> Result<Vec<QueueRow>, sqlx::Error> {
    let reach = filter.reach.sql();
    let rows = sqlx::query(
        "SELECT *, NOT open AS k_closed, NOT group_complaint AS k_single,
            COALESCE(completion_due, '9999-12-31T00:00:00Z') AS k_due,
            COALESCE(received_at, 'epoch') AS k_received
         FROM handling WHERE (open OR $5) AND received
       AND stage <> 'awaiting_confirmation'
       AND ($1 = '' OR department_id = $1) AND ($2 = '' OR assignee_id = $2)
       AND ($6 OR department_id = ANY($7) OR assignee_id = $8)
       AND ($4::bool IS NULL OR (NOT open, class, NOT group_complaint,
            COALESCE(completion_due, '9999-12-31T00:00:00Z'), COALESCE(received_at, 'epoch'),
            complaint_id) > ($4, $9, $10, $11, $12, $13))
     ORDER BY NOT open, class, NOT group_complaint,
       COALESCE(completion_due, '9999-12-31T00:00:00Z'), COALESCE(received_at, 'epoch'),
       complaint_id
     LIMIT $3",
    )
    .bind(filter.department_id)
    .bind(filter.handler_id)
    .bind(page.fetch())
    .bind(page.flag(0))
    .bind(filter.include_finished)
    .bind(reach.0)
    .bind(reach.1)
    .bind(reach.2)
    .bind(page.text(1))
    .bind(page.flag(2))
    .bind(page.time(3))
    .bind(page.time(4))
    .bind(page.text(5))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(QueueRow {
                complaint_id: r.try_get("complaint_id")?,
                number: r.try_get("number")?,
                class: r.try_get("class")?,
                group_complaint: r.try_get("group_complaint")?,
                customers_affected: r.try_get("customers_affected")?,
                media_risk: r.try_get("media_risk")?,
                completion_due: r.try_get("completion_due")?,
                department_id: r.try_get("department_id")?,
                assignee_id: r.try_get("assignee_id")?,
                stage: r.try_get("stage")?,
                category: r.try_get("category")?,
                customer_name: r.try_get("customer_name")?,
                customer_type: r.try_get("customer_type")?,
                received_at: r.try_get("received_at")?,
                closed: r.try_get("k_closed")?,
                single: r.try_get("k_single")?,
                due_key: r.try_get("k_due")?,
                received_key: r.try_get("k_received")?,
            })
        })
        .collect()
}
