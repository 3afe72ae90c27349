//! The `subtasks` table: each department's share of a complaint, with its owner and deadline.
//! Sub-tasks are kept by complaint and task id together, so a task id given with the wrong
//! complaint finds nothing.

use chrono::{DateTime, Utc};
use redress_domain::ComplaintId;
use redress_proto::v1;
use sqlx::{PgConnection, Row};

use crate::envelope::ts;

/// A sub-task as it is created.
pub struct NewSubTask<'a> {
    pub task_id: &'a str,
    pub complaint_id: &'a ComplaintId,
    pub department_id: &'a str,
    pub owner_id: &'a str,
    pub description: &'a str,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// What completing a sub-task needs to know of it.
pub struct Share {
    pub department_id: String,
    pub owner_id: String,
    pub due_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

pub async fn insert(conn: &mut PgConnection, t: &NewSubTask<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO subtasks (task_id, complaint_id, department_id, owner_id, description, due_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(t.task_id)
    .bind(t.complaint_id.as_str())
    .bind(t.department_id)
    .bind(t.owner_id)
    .bind(t.description)
    .bind(t.due_at)
    .bind(t.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The sub-task `task_id` of the complaint, if it has one by that id.
pub async fn share(
    conn: &mut PgConnection,
    task_id: &str,
    complaint_id: &ComplaintId,
) -> Result<Option<Share>, sqlx::Error> {
    sqlx::query(
        "SELECT department_id, owner_id, due_at, completed_at FROM subtasks
         WHERE task_id = $1 AND complaint_id = $2",
    )
    .bind(task_id)
    .bind(complaint_id.as_str())
    .fetch_optional(conn)
    .await?
    .map(|r| {
        Ok(Share {
            department_id: r.try_get("department_id")?,
            owner_id: r.try_get("owner_id")?,
            due_at: r.try_get("due_at")?,
            completed_at: r.try_get("completed_at")?,
        })
    })
    .transpose()
}

pub async fn complete(
    conn: &mut PgConnection,
    task_id: &str,
    at: DateTime<Utc>,
    result: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE subtasks SET completed_at = $2, result = $3 WHERE task_id = $1")
        .bind(task_id)
        .bind(at)
        .bind(result)
        .execute(conn)
        .await?;
    Ok(())
}

/// The sub-tasks of a complaint, in creation order (the task id breaks ties within one
/// instant, so the order is stable across reads).
pub async fn of_complaint(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
) -> Result<Vec<v1::SubTask>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT * FROM subtasks WHERE complaint_id = $1 ORDER BY created_at, task_id")
            .bind(complaint_id.as_str())
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|r| {
            Ok(v1::SubTask {
                task_id: r.try_get("task_id")?,
                department_id: r.try_get("department_id")?,
                owner_id: r.try_get("owner_id")?,
                description: r.try_get("description")?,
                due_at: Some(ts(r.try_get("due_at")?)),
                completed_at: r
                    .try_get::<Option<DateTime<Utc>>, _>("completed_at")?
                    .map(ts),
                result: r.try_get("result")?,
            })
        })
        .collect()
}
