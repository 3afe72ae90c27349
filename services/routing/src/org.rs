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
use sqlx::PgConnection;

use crate::commands::Ctx;
use crate::envelope::PRODUCER;
use crate::error::Error;
use crate::store::organisation as store;

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

/// What an upsert answers: whether it created the row, and the event to publish — only when
/// it wrote, so that a repeated seed or an unchanged save tells the other services nothing.
fn upserted(
    written: Option<bool>,
    actor: &v1::Actor,
    now: DateTime<Utc>,
    payload: impl FnOnce() -> Payload,
) -> (bool, Option<v1::Event>) {
    match written {
        Some(created) => (created, Some(PRODUCER.event("", now, actor, "", payload()))),
        None => (false, None),
    }
}

/// Creates or replaces a department; returns whether it was new, and its event when something
/// changed.
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
    let written = store::upsert_department(conn, d, now).await?;
    Ok(upserted(written, actor, now, || {
        Payload::DepartmentUpserted(v1::DepartmentUpserted {
            department_id: d.id.clone(),
            name: d.name.trim().to_owned(),
            manager_id: d.manager_id.clone(),
            service_centre: d.service_centre,
        })
    }))
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
    if store::department(conn, &s.department_id).await?.is_none() {
        return Err(Error::invalid(
            "staff.department_id",
            "names no known department",
        ));
    }
    let seniority = i32::try_from(s.seniority)
        .map_err(|_| Error::invalid("staff.seniority", "is too large"))?;
    let written = store::upsert_staff(conn, s, role, seniority, lift_suspension, now).await?;
    Ok(upserted(written, actor, now, || {
        Payload::StaffUpserted(v1::StaffUpserted {
            staff_id: s.id.clone(),
            name: s.name.trim().to_owned(),
            department_id: s.department_id.clone(),
            role: role as i32,
            on_leave: s.on_leave,
            phone: s.phone.clone(),
            email: s.email.clone(),
        })
    }))
}

/// Replaces the rule set and the default department; returns the new version.
pub async fn set_rules(
    conn: &mut PgConnection,
    rules: &[v1::RoutingRule],
    default_department_id: &str,
) -> Result<u64, Error> {
    check_id("default_department_id", default_department_id)?;
    if store::department(conn, default_department_id)
        .await?
        .is_none()
    {
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
        if store::department(conn, &r.department_id).await?.is_none() {
            return Err(Error::invalid(
                &field("department_id"),
                "names no known department",
            ));
        }
    }
    let version = store::replace_rules(conn, rules, default_department_id).await?;
    Ok(u64::try_from(version).unwrap_or(0))
}

/// The rule set in force, as the gRPC door and the seed compare it.
pub async fn get_rules(conn: &mut PgConnection) -> Result<v1::GetRoutingRulesResponse, Error> {
    let settings = store::settings(conn).await?;
    Ok(v1::GetRoutingRulesResponse {
        rules: store::rules(conn).await?,
        default_department_id: settings.default_department_id,
        version: u64::try_from(settings.version).unwrap_or(0),
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
    rules: Vec<v1::RoutingRule>,
    default_department: String,
    centre: Option<String>,
}

impl Routes {
    pub async fn load(conn: &mut PgConnection) -> Result<Self, sqlx::Error> {
        let (rules, default_department, centre) = store::routes(conn).await?;
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
            let reason = format!("routing rule {} matched", r.id);
            return Some((r.department_id.clone(), r.id.clone(), reason));
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
    store::lock_seed(&mut tx).await?;
    if only_if_empty {
        if store::any_department(&mut tx).await? {
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
