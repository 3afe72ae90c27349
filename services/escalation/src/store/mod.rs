//! All of the service's SQL. The ladder, the ledger, the worker and the gRPC door keep the rules
//! and call these named statements, so a schema change is made here alone and the rules read
//! without SQL in between. Every function runs on the caller's connection or transaction: what
//! commits together, and which rows stay locked until then, is the caller's choice.
//!
//! - [`complaints`]: what the service learnt from events: complaints, departments, staff.
//! - [`escalations`]: escalations and their causes.
//! - [`notifications`]: notifications, their deliveries per channel and every attempt.
//! - [`ledger`]: ledger entries, person-months, overdues, repeats, business volumes.
//! - [`report`]: the monthly tallies.

pub mod complaints;
pub mod escalations;
pub mod ledger;
pub mod notifications;
pub mod report;

use redress_domain::ComplaintId;
use sqlx::Row;
use sqlx::postgres::PgRow;

/// A stored complaint id, parsed again: the service writes only ids it parsed on the way in, so
/// a malformed one is a corrupt row, reported as a decoding error rather than passed on.
fn complaint_id(row: &PgRow, column: &str) -> Result<ComplaintId, sqlx::Error> {
    let raw: String = row.try_get(column)?;
    ComplaintId::parse(&raw).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

/// A level or count as the `INT` columns hold it; beyond `i32` is beyond any policy.
fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
