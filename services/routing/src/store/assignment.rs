//! What choosing a handler reads and writes: the per-department advisory lock, the available
//! handlers with their weighted open load, and the round-robin order (`assignment_seq`).

use sqlx::{PgConnection, Row};

use crate::assignment::{Candidate, Weights};

/// Takes the department's assignment lock until the transaction ends. Advisory rather than a
/// row lock: it must also serialise assignments in a department that has no row to lock yet.
pub async fn lock_department(
    conn: &mut PgConnection,
    department_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('routing-dept:' || $1))")
        .bind(department_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The available handlers of a department with their open weighted load, read from the
/// per-class counters the database keeps with every handling row (migration `handler_load`):
/// a few rows per handler, however many complaints are open. Exact only under
/// [`lock_department`].
pub async fn candidates(
    conn: &mut PgConnection,
    department_id: &str,
    w: Weights,
) -> Result<Vec<Candidate>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT s.staff_id, s.name, s.seniority, s.last_assigned,
            COALESCE((SELECT SUM(l.open_count
                        * CASE l.class WHEN 'A' THEN $2 WHEN 'B' THEN $3 WHEN 'C' THEN $4 ELSE $5 END)
                      FROM handler_load l WHERE l.staff_id = s.staff_id), 0)::BIGINT AS load
         FROM staff s
         WHERE s.department_id = $1 AND s.role = $6 AND NOT s.on_leave AND NOT s.suspended",
    )
    .bind(department_id)
    .bind(w.a)
    .bind(w.b)
    .bind(w.c)
    .bind(w.d)
    .bind(redress_proto::v1::Role::Handler as i32)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Candidate {
                staff_id: r.try_get("staff_id")?,
                name: r.try_get("name")?,
                load: r.try_get("load")?,
                seniority: r.try_get("seniority")?,
                last_assigned: r.try_get("last_assigned")?,
            })
        })
        .collect()
}

/// Puts `staff_id` last in the round-robin order.
pub async fn book(conn: &mut PgConnection, staff_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE staff SET last_assigned = nextval('assignment_seq') WHERE staff_id = $1")
        .bind(staff_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Reserves `count` values of the round-robin order at once, ascending, so a batch can hand
/// them out in memory and still interleave correctly with other replicas.
pub async fn reserve_order(conn: &mut PgConnection, count: usize) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT nextval('assignment_seq') FROM generate_series(1, $1::int) ORDER BY 1",
    )
    .bind(i32::try_from(count).unwrap_or(i32::MAX))
    .fetch_all(conn)
    .await
}

/// Writes the round-robin order of several handlers in one statement, as a batch books many
/// at once ([`reserve_order`]).
pub async fn write_order(
    conn: &mut PgConnection,
    staff_ids: Vec<String>,
    order: Vec<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE staff s SET last_assigned = b.n
         FROM UNNEST($1::text[], $2::bigint[]) AS b(staff_id, n)
         WHERE s.staff_id = b.staff_id",
    )
    .bind(staff_ids)
    .bind(order)
    .execute(conn)
    .await?;
    Ok(())
}
