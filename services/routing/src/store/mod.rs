//! All of routing's SQL. The gRPC door, the consumer, the commands and the role checks keep the
//! rules and call these named statements, so a schema change is made here alone and the rules
//! read without SQL in between. Every function runs on the caller's connection or transaction:
//! what commits together, and which rows stay locked until then, is the caller's choice.
//!
//! - [`handling`]: one row per complaint — its arrival, its handling state, the queue.
//! - [`subtasks`]: the departments' shares of a complaint.
//! - [`organisation`]: departments, staff, routing rules and the settings row.
//! - [`assignment`]: the department locks, handlers' loads and the round-robin order.

pub mod assignment;
pub mod handling;
pub mod organisation;
pub mod subtasks;

use sqlx::PgConnection;

/// Makes the transaction one read-only snapshot, so a query that reads several tables sees them
/// at one instant without taking locks that would hold commands up.
pub async fn snapshot(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(conn)
        .await?;
    Ok(())
}
