//! The organisation routing works with: departments, staff (with their availability) and the
//! routing rules from category / business / channel / region to a department, with a default.
//!
//! Changes come from the operator's gRPC calls or from a seed file at start
//! (`REDRESS_ROUTING_SEED`). Every change that actually changes something publishes
//! `department.upserted` / `staff.upserted`, so that escalation and revisit learn the managers
//! and the recipients without calling routing; applying the same seed twice (or from two
//! replicas) publishes nothing the second time.

use std::path::Path;

use chrono::{DateTime, Utc};
use redress_proto::org::OrgFile;
use redress_proto::v1::{self, event::Payload};
use sqlx::{PgConnection, Row};

use crate::commands::Ctx;
use crate::envelope::PRODUCER;
use crate::error::Error;
use redress_platform::pagination::{Key, Kind, Page};

const MAX_TEXT: usize = 200;

fn check_id(field: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if value.len() > MAX_TEXT || value.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            field,
            "must be at most 200 characters without spaces",
        ));
    }
    Ok(())
}

fn check_text(field: &str, value: &str) -> Result<(), Error> {
    if value.chars().count() > MAX_TEXT {
        return Err(Error::invalid(field, "is too long"));
    }
    Ok(())
}

/// Creates or replaces a department; returns it, whether it was new, and its event when
/// something changed.
pub async fn upsert_department(
    conn: &mut PgConnection,
    d: &v1::Department,
    actor: &v1::Actor,
    now: DateTime<Utc>,
) -> Result<(bool, Option<v1::Event>), Error> {
    check_id("department.id", &d.id)?;
    check_text("department.name", &d.name)?;
    if d.name.trim().is_empty() {
        return Err(Error::invalid("department.name", "is required"));
    }
    check_text("department.manager_id", &d.manager_id)?;
    check_text("department.acceptance_owner_id", &d.acceptance_owner_id)?;
    let row = sqlx::query(
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
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok((false, None));
    };
    let created: bool = row.try_get("created")?;
    let e = PRODUCER.event(
        "",
        now,
        actor,
        "",
        Payload::DepartmentUpserted(v1::DepartmentUpserted {
            department_id: d.id.clone(),
            name: d.name.trim().to_owned(),
            manager_id: d.manager_id.clone(),
            service_centre: d.service_centre,
        }),
    );
    Ok((created, Some(e)))
}

/// Creates or replaces a member of staff (their suspension is kept unless `lift_suspension`).
pub async fn upsert_staff(
    conn: &mut PgConnection,
    s: &v1::Staff,
    lift_suspension: bool,
    actor: &v1::Actor,
    now: DateTime<Utc>,
) -> Result<(bool, Option<v1::Event>), Error> {
    check_id("staff.id", &s.id)?;
    check_id("staff.department_id", &s.department_id)?;
    if s.name.trim().is_empty() {
        return Err(Error::invalid("staff.name", "is required"));
    }
    check_text("staff.name", &s.name)?;
    check_text("staff.phone", &s.phone)?;
    check_text("staff.email", &s.email)?;
    let role = v1::Role::try_from(s.role)
        .ok()
        .filter(|r| *r != v1::Role::Unspecified)
        .ok_or_else(|| Error::invalid("staff.role", "is required"))?;
    if department(conn, &s.department_id).await?.is_none() {
        return Err(Error::invalid(
            "staff.department_id",
            "names no known department",
        ));
    }
    let seniority = i32::try_from(s.seniority)
        .map_err(|_| Error::invalid("staff.seniority", "is too large"))?;
    let row = sqlx::query(
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
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok((false, None));
    };
    let created: bool = row.try_get("created")?;
    let e = PRODUCER.event(
        "",
        now,
        actor,
        "",
        Payload::StaffUpserted(v1::StaffUpserted {
            staff_id: s.id.clone(),
            name: s.name.trim().to_owned(),
            department_id: s.department_id.clone(),
            role: role as i32,
            on_leave: s.on_leave,
            phone: s.phone.clone(),
            email: s.email.clone(),
        }),
    );
    Ok((created, Some(e)))
}

/// Marks a person suspended for rectification (DOMAIN §7: three complaints in a month); they
/// get no new assignments until an operator lifts it.
pub async fn suspend(conn: &mut PgConnection, person_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE staff SET suspended = true WHERE staff_id = $1")
        .bind(person_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces the rule set and the default department; returns the new version.
pub async fn set_rules(
    conn: &mut PgConnection,
    rules: &[v1::RoutingRule],
    default_department_id: &str,
) -> Result<u64, Error> {
    check_id("default_department_id", default_department_id)?;
    if department(conn, default_department_id).await?.is_none() {
        return Err(Error::invalid(
            "default_department_id",
            "names no known department",
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let field = |f: &str| format!("rules[{i}].{f}");
        check_id(&field("id"), &r.id)?;
        if !ids.insert(r.id.as_str()) {
            return Err(Error::invalid(&field("id"), "is used twice"));
        }
        check_text(&field("category"), &r.category)?;
        check_text(&field("business"), &r.business)?;
        check_text(&field("region"), &r.region)?;
        if v1::Channel::try_from(r.channel).is_err() {
            return Err(Error::invalid(&field("channel"), "is not a known channel"));
        }
        if department(conn, &r.department_id).await?.is_none() {
            return Err(Error::invalid(
                &field("department_id"),
                "names no known department",
            ));
        }
    }
    // One writer at a time: the settings row is the lock.
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
    Ok(u64::try_from(version).unwrap_or(0))
}

/// The rule set in force.
pub async fn get_rules(conn: &mut PgConnection) -> Result<v1::GetRoutingRulesResponse, Error> {
    let settings = sqlx::query("SELECT default_department_id, version FROM routing_settings")
        .fetch_one(&mut *conn)
        .await?;
    let rows = sqlx::query(
        "SELECT rule_id, category, business, channel, region, department_id FROM routing_rules ORDER BY position",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut rules = Vec::with_capacity(rows.len());
    for r in rows {
        rules.push(v1::RoutingRule {
            id: r.try_get("rule_id")?,
            category: r.try_get("category")?,
            business: r.try_get("business")?,
            channel: r.try_get("channel")?,
            region: r.try_get("region")?,
            department_id: r.try_get("department_id")?,
        });
    }
    Ok(v1::GetRoutingRulesResponse {
        rules,
        default_department_id: settings.try_get("default_department_id")?,
        version: u64::try_from(settings.try_get::<i64, _>("version")?).unwrap_or(0),
    })
}

/// Where a complaint goes: the first rule (by position) whose every set field matches, else
/// the default department, else the complaint centre with [`UNROUTABLE`]; `None` when there is
/// none of these. Returns (department, rule id, reason).
pub async fn route(
    conn: &mut PgConnection,
    details: &v1::ComplaintDetails,
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    Ok(Routes::load(conn).await?.route(details))
}

/// The rule set, the default department and the complaint centre, read once — for one
/// complaint, or for a consumer's whole batch.
pub struct Routes {
    rules: Vec<RuleRow>,
    default_department: String,
    centre: Option<String>,
}

struct RuleRow {
    rule_id: String,
    category: String,
    business: String,
    channel: i32,
    region: String,
    department_id: String,
}

impl Routes {
    pub async fn load(conn: &mut PgConnection) -> Result<Self, sqlx::Error> {
        let rules = sqlx::query(
            "SELECT rule_id, category, business, channel, region, department_id
             FROM routing_rules ORDER BY position",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(RuleRow {
                rule_id: r.try_get("rule_id")?,
                category: r.try_get("category")?,
                business: r.try_get("business")?,
                channel: r.try_get("channel")?,
                region: r.try_get("region")?,
                department_id: r.try_get("department_id")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let default_department: String =
            sqlx::query_scalar("SELECT default_department_id FROM routing_settings")
                .fetch_one(&mut *conn)
                .await?;
        let centre: Option<String> = sqlx::query_scalar(
            "SELECT department_id FROM departments WHERE service_centre ORDER BY department_id LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?;
        Ok(Routes {
            rules,
            default_department,
            centre,
        })
    }

    /// See [`route`]. An empty field of a rule matches anything; the complaint's text fields
    /// are compared trimmed.
    pub fn route(&self, d: &v1::ComplaintDetails) -> Option<(String, String, String)> {
        let field = |rule: &str, value: &str| rule.is_empty() || rule == value.trim();
        let matched = self.rules.iter().find(|r| {
            field(&r.category, &d.category)
                && field(&r.business, &d.business)
                && (r.channel == 0 || r.channel == d.channel)
                && field(&r.region, &d.region)
        });
        if let Some(r) = matched {
            let reason = format!("routing rule {} matched", r.rule_id);
            return Some((r.department_id.clone(), r.rule_id.clone(), reason));
        }
        if !self.default_department.is_empty() {
            return Some((
                self.default_department.clone(),
                String::new(),
                "default department".to_owned(),
            ));
        }
        // Nothing else applies: the complaint centre keeps it (DOMAIN §9, "unconfirmed
        // complaints belong to the complaint centre" — and so does one nobody else can take),
        // never a dead letter. The caller tells the centre's manager.
        self.centre
            .as_ref()
            .map(|c| (c.clone(), String::new(), UNROUTABLE.to_owned()))
    }
}

/// The routing reason of a complaint no rule or default department took, parked in the
/// complaint centre's queue.
pub const UNROUTABLE: &str =
    "no routing rule matched and no default department is set: the complaint centre's queue";

fn department_from_row(r: &sqlx::postgres::PgRow) -> Result<v1::Department, sqlx::Error> {
    Ok(v1::Department {
        id: r.try_get("department_id")?,
        name: r.try_get("name")?,
        manager_id: r.try_get("manager_id")?,
        service_centre: r.try_get("service_centre")?,
        acceptance_owner_id: r.try_get("acceptance_owner_id")?,
    })
}

fn staff_from_row(r: &sqlx::postgres::PgRow) -> Result<v1::Staff, sqlx::Error> {
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

/// One department.
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

/// The departments among `ids`, by id.
pub async fn departments(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, v1::Department>, sqlx::Error> {
    sqlx::query("SELECT * FROM departments WHERE department_id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| department_from_row(r).map(|d| (d.id.clone(), d)))
        .collect()
}

/// One member of staff.
pub async fn staff(conn: &mut PgConnection, id: &str) -> Result<Option<v1::Staff>, sqlx::Error> {
    sqlx::query("SELECT * FROM staff WHERE staff_id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(|r| staff_from_row(&r))
        .transpose()
}

/// Rows a page of departments or staff holds at most.
const MAX_PAGE: u32 = 500;

/// A page of departments by id.
pub async fn list_departments(
    conn: &mut PgConnection,
    req: &v1::ListDepartmentsRequest,
) -> Result<v1::ListDepartmentsResponse, Error> {
    let page = Page::read(req.page.as_ref(), MAX_PAGE, &[Kind::Text])?;
    let rows = sqlx::query(
        "SELECT * FROM departments WHERE ($2::text IS NULL OR department_id > $2)
         ORDER BY department_id LIMIT $1",
    )
    .bind(page.fetch())
    .bind(page.text(0))
    .fetch_all(conn)
    .await?;
    let (rows, next_page_token) = page.finish(rows, |r| {
        Ok::<_, sqlx::Error>(vec![Key::Text(r.try_get("department_id")?)])
    })?;
    let departments = rows
        .iter()
        .map(department_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(v1::ListDepartmentsResponse {
        next_page_token,
        departments,
    })
}

/// A page of staff by id.
pub async fn list_staff(
    conn: &mut PgConnection,
    req: &v1::ListStaffRequest,
) -> Result<v1::ListStaffResponse, Error> {
    let page = Page::read(req.page.as_ref(), MAX_PAGE, &[Kind::Text])?;
    let rows = sqlx::query(
        "SELECT * FROM staff WHERE ($1 = '' OR department_id = $1) AND ($2 = 0 OR role = $2)
           AND ($3 OR NOT on_leave) AND ($5::text IS NULL OR staff_id > $5)
         ORDER BY staff_id LIMIT $4",
    )
    .bind(&req.department_id)
    .bind(req.role)
    .bind(req.include_on_leave)
    .bind(page.fetch())
    .bind(page.text(0))
    .fetch_all(conn)
    .await?;
    let (rows, next_page_token) = page.finish(rows, |r| {
        Ok::<_, sqlx::Error>(vec![Key::Text(r.try_get("staff_id")?)])
    })?;
    let staff = rows
        .iter()
        .map(staff_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(v1::ListStaffResponse {
        next_page_token,
        staff,
    })
}

/// Applies the seed file in one transaction (safe to repeat and to run from two replicas).
pub async fn seed_from_file(ctx: &Ctx, path: &Path, only_if_empty: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("REDRESS_ROUTING_SEED {}: {e}", path.display()))?;
    let seed = OrgFile::parse(&text).map_err(|problems| {
        anyhow::anyhow!(
            "REDRESS_ROUTING_SEED {}: {}",
            path.display(),
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let actor = PRODUCER.system_actor();
    let now = ctx.clock.now();
    let mut tx = ctx.outbox.begin(&ctx.pool).await?;
    // Two replicas seeding at once take turns.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('routing-seed'))")
        .execute(&mut *tx)
        .await?;
    if only_if_empty {
        let present: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM departments)")
            .fetch_one(&mut *tx)
            .await?;
        if present {
            tracing::info!(seed = %path.display(),
                "an organisation is present; the sample organisation is not applied");
            return Ok(());
        }
        tracing::info!(seed = %path.display(), "no organisation yet: applying the sample one");
    }
    let mut events = Vec::new();
    for dept in seed.departments() {
        let (_, e) = upsert_department(&mut tx, &dept, &actor, now)
            .await
            .map_err(|e| anyhow::anyhow!("seed department {}: {e}", dept.id))?;
        events.extend(e);
    }
    for person in seed.staff() {
        let (_, e) = upsert_staff(&mut tx, &person, false, &actor, now)
            .await
            .map_err(|e| anyhow::anyhow!("seed staff {}: {e}", person.id))?;
        events.extend(e);
    }
    if let Some(default) = &seed.default_department {
        let rules = seed.rules();
        let current = get_rules(&mut tx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if current.rules != rules || &current.default_department_id != default {
            set_rules(&mut tx, &rules, default)
                .await
                .map_err(|e| anyhow::anyhow!("seed rules: {e}"))?;
        }
    }
    ctx.outbox.append(&mut tx, &events).await?;
    tx.commit().await?;
    tracing::info!(path = %path.display(), changes = events.len(), "organisation seeded");
    Ok(())
}
