//! The organisation's tables: departments, staff, the routing rules and the one settings row.
//! Upserts write only when something differs, so that the caller publishes an event for a real
//! change alone and a repeated seed stays silent.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redress_platform::pagination::Page;
use redress_proto::v1;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

/// The settings row: the default department, and the version of the rule set it goes with.
pub struct Settings {
    pub default_department_id: String,
    pub version: i64,
}

fn department_from_row(r: &PgRow) -> Result<v1::Department, sqlx::Error> {
    Ok(v1::Department {
        id: r.try_get("department_id")?,
        name: r.try_get("name")?,
        manager_id: r.try_get("manager_id")?,
        service_centre: r.try_get("service_centre")?,
        acceptance_owner_id: r.try_get("acceptance_owner_id")?,
    })
}

fn staff_from_row(r: &PgRow) -> Result<v1::Staff, sqlx::Error> {
    Ok(v1::Staff {
        id: r.try_get("staff_id")?,
        name: r.try_get("name")?,
        department_id: r.try_get("department_id")?,
        role: r.try_get("role")?,
        on_leave: r.try_get("on_leave")?,
        phone: r.try_get("phone")?,
        email: r.try_get("email")?,
        seniority: u32::try_from(r.try_get::<i32, _>("seniority")?).unwrap_or(0),
        suspended: r.try_get("suspended")?,
    })
}

pub async fn department(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<v1::Department>, sqlx::Error> {
    sqlx::query("SELECT * FROM departments WHERE department_id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(|r| department_from_row(&r))
        .transpose()
}

/// The departments among `ids`, by id, so that a batch looks each one up once.
pub async fn departments(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<HashMap<String, v1::Department>, sqlx::Error> {
    sqlx::query("SELECT * FROM departments WHERE department_id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| department_from_row(r).map(|d| (d.id.clone(), d)))
        .collect()
}

/// The departments after the page's cursor, by id.
pub async fn page_of_departments(
    conn: &mut PgConnection,
    page: &Page,
) -> Result<Vec<v1::Department>, sqlx::Error> {
    sqlx::query(
        "SELECT * FROM departments WHERE ($2::text IS NULL OR department_id > $2)
         ORDER BY department_id LIMIT $1",
    )
    .bind(page.fetch())
    .bind(page.text(0))
    .fetch_all(conn)
    .await?
    .iter()
    .map(department_from_row)
    .collect()
}

/// Whether any department exists: an empty organisation is what a sample seed may fill.
pub async fn any_department(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM departments)")
        .fetch_one(conn)
        .await
}

/// Creates or replaces a department, writing only when something differs: `Some(created)`
/// when it wrote, `None` when the stored department was already the same.
pub async fn upsert_department(
    conn: &mut PgConnection,
    d: &v1::Department,
    now: DateTime<Utc>,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO departments (department_id, name, manager_id, service_centre, acceptance_owner_id, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (department_id) DO UPDATE SET name = EXCLUDED.name, manager_id = EXCLUDED.manager_id,
             service_centre = EXCLUDED.service_centre, acceptance_owner_id = EXCLUDED.acceptance_owner_id,
             updated_at = EXCLUDED.updated_at
         WHERE (departments.name, departments.manager_id, departments.service_centre, departments.acceptance_owner_id)
             IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.manager_id, EXCLUDED.service_centre, EXCLUDED.acceptance_owner_id)
         RETURNING (xmax = 0) AS created",
    )
    .bind(&d.id)
    .bind(d.name.trim())
    .bind(&d.manager_id)
    .bind(d.service_centre)
    .bind(&d.acceptance_owner_id)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// Whether `who` manages `department` (named its manager, or a department manager on its
/// staff): a department may name its manager before the person is on its staff list.
pub async fn manages(
    conn: &mut PgConnection,
    who: &str,
    department: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM departments WHERE department_id = $1 AND manager_id = $2)
             OR EXISTS (SELECT 1 FROM staff WHERE staff_id = $2 AND department_id = $1 AND role = $3)",
    )
    .bind(department)
    .bind(who)
    .bind(v1::Role::DepartmentManager as i32)
    .fetch_one(conn)
    .await
}

/// Whether `who` manages a department marked as the complaint centre, in either way
/// [`manages`] accepts.
pub async fn manages_service_centre(
    conn: &mut PgConnection,
    who: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM departments d WHERE d.service_centre
             AND (d.manager_id = $1 OR EXISTS (SELECT 1 FROM staff s
                  WHERE s.staff_id = $1 AND s.department_id = d.department_id
                    AND s.role = $2)))",
    )
    .bind(who)
    .bind(v1::Role::DepartmentManager as i32)
    .fetch_one(conn)
    .await
}

pub async fn staff(conn: &mut PgConnection, id: &str) -> Result<Option<v1::Staff>, sqlx::Error> {
    sqlx::query("SELECT * FROM staff WHERE staff_id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(|r| staff_from_row(&r))
        .transpose()
}

/// Which staff a list shows; an empty or zero field does not filter.
pub struct StaffFilter<'a> {
    pub department_id: &'a str,
    pub role: i32,
    pub include_on_leave: bool,
}

/// The staff after the page's cursor, by id.
pub async fn page_of_staff(
    conn: &mut PgConnection,
    filter: &StaffFilter<'_>,
    page: &Page,
) -> Result<Vec<v1::Staff>, sqlx::Error> {
    sqlx::query(
        "SELECT * FROM staff WHERE ($1 = '' OR department_id = $1) AND ($2 = 0 OR role = $2)
           AND ($3 OR NOT on_leave) AND ($5::text IS NULL OR staff_id > $5)
         ORDER BY staff_id LIMIT $4",
    )
    .bind(filter.department_id)
    .bind(filter.role)
    .bind(filter.include_on_leave)
    .bind(page.fetch())
    .bind(page.text(0))
    .fetch_all(conn)
    .await?
    .iter()
    .map(staff_from_row)
    .collect()
}

/// Creates or replaces a member of staff, writing only when something differs (as
/// [`upsert_department`]). A suspension outlives the upsert unless `lift_suspension`: the
/// operator's routine edits must not undo a rectification by accident.
pub async fn upsert_staff(
    conn: &mut PgConnection,
    s: &v1::Staff,
    role: v1::Role,
    seniority: i32,
    lift_suspension: bool,
    now: DateTime<Utc>,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO staff (staff_id, name, department_id, role, on_leave, phone, email, seniority, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (staff_id) DO UPDATE SET name = EXCLUDED.name, department_id = EXCLUDED.department_id,
             role = EXCLUDED.role, on_leave = EXCLUDED.on_leave, phone = EXCLUDED.phone,
             email = EXCLUDED.email, seniority = EXCLUDED.seniority,
             suspended = staff.suspended AND NOT $10, updated_at = EXCLUDED.updated_at
         WHERE (staff.name, staff.department_id, staff.role, staff.on_leave, staff.phone, staff.email,
                staff.seniority, staff.suspended AND NOT $10)
             IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.department_id, EXCLUDED.role, EXCLUDED.on_leave,
                EXCLUDED.phone, EXCLUDED.email, EXCLUDED.seniority, staff.suspended)
         RETURNING (xmax = 0) AS created",
    )
    .bind(&s.id)
    .bind(s.name.trim())
    .bind(&s.department_id)
    .bind(role as i32)
    .bind(s.on_leave)
    .bind(&s.phone)
    .bind(&s.email)
    .bind(seniority)
    .bind(now)
    .bind(lift_suspension)
    .fetch_optional(conn)
    .await
}

/// Marks a person suspended. Only escalation's event sets it; lifting it is an operator's
/// deliberate upsert ([`upsert_staff`]).
pub async fn suspend(conn: &mut PgConnection, person_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE staff SET suspended = true WHERE staff_id = $1")
        .bind(person_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn settings(conn: &mut PgConnection) -> Result<Settings, sqlx::Error> {
    let row = sqlx::query("SELECT default_department_id, version FROM routing_settings")
        .fetch_one(conn)
        .await?;
    Ok(Settings {
        default_department_id: row.try_get("default_department_id")?,
        version: row.try_get("version")?,
    })
}

/// The rules in the order they are tried.
pub async fn rules(conn: &mut PgConnection) -> Result<Vec<v1::RoutingRule>, sqlx::Error> {
    sqlx::query(
        "SELECT rule_id, category, business, channel, region, department_id
         FROM routing_rules ORDER BY position",
    )
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(v1::RoutingRule {
            id: r.try_get("rule_id")?,
            ..rule_of(r)?
        })
    })
    .collect()
}

/// A rule's fields from its row (the id is left to the caller: a left join may have none).
fn rule_of(r: &sqlx::postgres::PgRow) -> Result<v1::RoutingRule, sqlx::Error> {
    Ok(v1::RoutingRule {
        id: String::new(),
        category: r.try_get("category")?,
        business: r.try_get("business")?,
        channel: r.try_get("channel")?,
        region: r.try_get("region")?,
        department_id: r.try_get("department_id")?,
    })
}

/// What routing needs to place complaints, read in one statement for a consumer's batch: the
/// rules in the order they are tried, the default department, and the department marked as
/// the complaint centre (the lowest id, should several be marked).
pub async fn routes(
    conn: &mut PgConnection,
) -> Result<(Vec<v1::RoutingRule>, String, Option<String>), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT s.default_department_id,
            (SELECT department_id FROM departments WHERE service_centre
             ORDER BY department_id LIMIT 1) AS centre,
            r.rule_id, r.category, r.business, r.channel, r.region, r.department_id
         FROM routing_settings s LEFT JOIN routing_rules r ON true
         ORDER BY r.position",
    )
    .fetch_all(conn)
    .await?;
    let Some(first) = rows.first() else {
        return Err(sqlx::Error::RowNotFound);
    };
    let default_department: String = first.try_get("default_department_id")?;
    let centre: Option<String> = first.try_get("centre")?;
    let mut rules = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(id) = r.try_get::<Option<String>, _>("rule_id")? else {
            continue;
        };
        rules.push(v1::RoutingRule { id, ..rule_of(r)? });
    }
    Ok((rules, default_department, centre))
}

/// Replaces the whole rule set and the default department; returns the new version. The
/// settings row is updated first because it is the lock: two writers take turns rather than
/// interleave their rules.
pub async fn replace_rules(
    conn: &mut PgConnection,
    rules: &[v1::RoutingRule],
    default_department_id: &str,
) -> Result<i64, sqlx::Error> {
    let version: i64 = sqlx::query_scalar(
        "UPDATE routing_settings SET default_department_id = $1, version = version + 1 RETURNING version",
    )
    .bind(default_department_id)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM routing_rules")
        .execute(&mut *conn)
        .await?;
    for (i, r) in rules.iter().enumerate() {
        sqlx::query(
            "INSERT INTO routing_rules (position, rule_id, category, business, channel, region, department_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(i32::try_from(i).unwrap_or(i32::MAX))
        .bind(&r.id)
        .bind(r.category.trim())
        .bind(r.business.trim())
        .bind(r.channel)
        .bind(r.region.trim())
        .bind(&r.department_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(version)
}

/// Takes the seed's lock until the transaction ends, so two replicas starting together apply
/// the seed one after the other and the second finds nothing to change.
pub async fn lock_seed(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('routing-seed'))")
        .execute(conn)
        .await?;
    Ok(())
}
