//! All the service's SQL, by table group: [`complaints`] (what is known of each complaint) and
//! [`revisits`] (the revisits and the reads on them); here, the record of events applied.
//! Functions take a connection and typed values and return typed rows; the rules that decide
//! what to write stay with their callers.

mod complaints;
mod revisits;

use std::collections::HashSet;

use redress_domain::ComplaintId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

pub use complaints::*;
pub use revisits::*;

/// Records an event as applied; false when it was already (the same event republished under
/// another message id must have no second effect).
pub async fn mark_applied(conn: &mut PgConnection, event_id: &str) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("INSERT INTO applied_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(event_id)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Records several events as applied; returns those not applied before.
pub async fn mark_applied_many(
    conn: &mut PgConnection,
    event_ids: &[String],
) -> Result<HashSet<String>, sqlx::Error> {
    Ok(sqlx::query_scalar(
        "INSERT INTO applied_events (event_id) SELECT * FROM UNNEST($1::text[])
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(event_ids)
    .fetch_all(conn)
    .await?
    .into_iter()
    .collect())
}

/// One field of every row, as the array an `UNNEST` statement binds.
fn column<T, U>(all: &[T], f: impl FnMut(&T) -> U) -> Vec<U> {
    all.iter().map(f).collect()
}

/// A stored complaint id, typed: every id stored came from an event or a request that was
/// checked, so one that does not parse is a decoding error.
fn decode_id(row: &PgRow, column: &str) -> Result<ComplaintId, sqlx::Error> {
    let raw: String = row.try_get(column)?;
    ComplaintId::parse(&raw).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}
