//! `org ...`: the organisation as data an operator manages — departments, staff and routing
//! rules, in the file format routing seeds from (`redress_proto::org`).
//!
//! `export` writes what routing holds as that file; `apply -f` makes routing hold what a file
//! says (every bad entry named before anything changes; safe to repeat); `show` prints it for
//! people. Leave and suspension changes are `apply` of the person with `on_leave` set, or
//! `--lift-suspension`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use redress_proto::org::OrgFile;
use redress_proto::v1;

use super::{Ctx, Failure, Outcome};
use crate::output::{self, Table, yes_no};

#[derive(Debug, Subcommand)]
pub enum Org {
    /// Departments, staff and routing rules, as tables.
    Show,
    /// The organisation as a file `org apply -f` reads back unchanged (TOML on stdout).
    Export,
    /// Make routing hold what the file says: departments and staff created or updated, and —
    /// when the file gives `default_department` — its routing rules in place of the current
    /// ones. Every bad entry is named first and nothing changes.
    Apply(Apply),
}

#[derive(Debug, Args)]
pub struct Apply {
    /// The organisation file (TOML; see `redress org export` for the format, and
    /// deploy/demo/seed.toml).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Check the file and say what it holds, without changing anything.
    #[arg(long)]
    dry_run: bool,
    /// Lift the suspension of the staff in the file (DOMAIN §7: a suspended person gets no new
    /// work until this is done).
    #[arg(long)]
    lift_suspension: bool,
}

pub async fn run(ctx: &Ctx, command: Org) -> Outcome {
    match command {
        Org::Show => show(ctx).await,
        Org::Export => {
            let file = current(ctx).await?;
            output::stdout(&file.to_toml())?;
            Ok(())
        }
        Org::Apply(a) => apply(ctx, a).await,
    }
}

/// What routing holds now, every page of it.
async fn current(ctx: &Ctx) -> Result<OrgFile, Failure> {
    let mut routing = ctx.routing().await?;
    let mut departments = Vec::new();
    let mut token = String::new();
    loop {
        let page = routing
            .list_departments(ctx.req(v1::ListDepartmentsRequest {
                page: Some(v1::PageRequest {
                    page_size: 500,
                    page_token: token,
                }),
            }))
            .await?
            .into_inner();
        departments.extend(page.departments);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut staff = Vec::new();
    let mut token = String::new();
    loop {
        let page = routing
            .list_staff(ctx.req(v1::ListStaffRequest {
                include_on_leave: true,
                page: Some(v1::PageRequest {
                    page_size: 500,
                    page_token: token,
                }),
                ..Default::default()
            }))
            .await?
            .into_inner();
        staff.extend(page.staff);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let rules = routing
        .get_routing_rules(ctx.req(v1::GetRoutingRulesRequest {}))
        .await?
        .into_inner();
    Ok(OrgFile::from_parts(&departments, &staff, &rules))
}

async fn show(ctx: &Ctx) -> Outcome {
    let file = current(ctx).await?;
    if ctx.global.json {
        let json = serde_json::to_string_pretty(&file).context("organisation as JSON")?;
        output::stdout(&format!("{json}\n"))?;
        return Ok(());
    }
    let mut d = Table::new(&[
        "DEPARTMENT",
        "NAME",
        "MANAGER",
        "ACCEPTANCE OWNER",
        "CENTRE",
    ]);
    for x in &file.departments {
        d.row(vec![
            x.id.clone(),
            x.name.clone(),
            x.manager_id.clone(),
            x.acceptance_owner_id.clone(),
            yes_no(x.service_centre),
        ]);
    }
    let mut s = Table::new(&[
        "STAFF",
        "NAME",
        "DEPARTMENT",
        "ROLE",
        "ON LEAVE",
        "SENIORITY",
    ]);
    for x in &file.staff {
        s.row(vec![
            x.id.clone(),
            x.name.clone(),
            x.department_id.clone(),
            x.role.clone(),
            yes_no(x.on_leave),
            x.seniority.to_string(),
        ]);
    }
    let mut r = Table::new(&[
        "RULE",
        "CATEGORY",
        "BUSINESS",
        "CHANNEL",
        "REGION",
        "DEPARTMENT",
    ]);
    for x in &file.rules {
        r.row(vec![
            x.id.clone(),
            x.category.clone(),
            x.business.clone(),
            x.channel.clone(),
            x.region.clone(),
            x.department_id.clone(),
        ]);
    }
    output::stdout(&format!(
        "{}\n{}\n{}\nWhat no rule matches goes to: {}\n",
        d.render(),
        s.render(),
        r.render(),
        file.default_department.as_deref().unwrap_or("(not set)")
    ))?;
    Ok(())
}

async fn apply(ctx: &Ctx, a: Apply) -> Outcome {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?;
    let file = OrgFile::parse(&text).map_err(|problems| {
        Failure::Status(tonic::Status::invalid_argument(format!(
            "{} is not applied; fix these first:\n  {}",
            a.file.display(),
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        )))
    })?;
    let summary = format!(
        "{} departments, {} staff, {}",
        file.departments.len(),
        file.staff.len(),
        match &file.default_department {
            Some(d) => format!("{} routing rules (default {d})", file.rules.len()),
            None => "routing rules unchanged (no default_department)".to_owned(),
        }
    );
    if a.dry_run {
        output::stdout(&format!(
            "{}: valid; would apply {summary}\n",
            a.file.display()
        ))?;
        return Ok(());
    }
    let mut routing = ctx.routing().await?;
    let (mut created, mut updated) = (0, 0);
    for department in file.departments() {
        let r = routing
            .upsert_department(ctx.req(v1::UpsertDepartmentRequest {
                department: Some(department),
            }))
            .await?
            .into_inner();
        if r.created {
            created += 1
        } else {
            updated += 1
        }
    }
    for person in file.staff() {
        let r = routing
            .upsert_staff(ctx.req(v1::UpsertStaffRequest {
                staff: Some(person),
                lift_suspension: a.lift_suspension,
            }))
            .await?
            .into_inner();
        if r.created {
            created += 1
        } else {
            updated += 1
        }
    }
    let mut rules_line = String::new();
    if let Some(default) = &file.default_department {
        let r = routing
            .set_routing_rules(ctx.req(v1::SetRoutingRulesRequest {
                rules: file.rules(),
                default_department_id: default.clone(),
            }))
            .await?
            .into_inner();
        rules_line = format!("; routing rules version {}", r.version);
    }
    output::stdout(&format!(
        "applied {}: {summary} ({created} created, {updated} updated){rules_line}\n",
        a.file.display()
    ))?;
    Ok(())
}
