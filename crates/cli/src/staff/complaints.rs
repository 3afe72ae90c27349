//! `submit`, `confirm`, `reclassify`, `show`, `list`, `queue`, `assign`: complaints as intake
//! records, confirms and classifies them, and routing queues and assigns them.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use redress_proto::v1;

use super::{Ctx, Failure, Outcome, class_filter, parse_enum, parse_time, required};
use crate::output::{Table, duration, fields, label, time, with_next_page, yes_no};

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// A proto3 JSON `SubmitRequest` (like docs/examples/submission.json); `-` reads stdin.
    #[arg(long, conflicts_with_all = ["name", "phone", "description", "demand", "business", "first_contact"])]
    file: Option<PathBuf>,
    /// Customer's name.
    #[arg(long, required_unless_present = "file")]
    name: Option<String>,
    /// Customer's contact phone (DOMAIN §1: part of the record).
    #[arg(long, required_unless_present = "file")]
    phone: Option<String>,
    /// What went wrong, in the customer's words.
    #[arg(long, required_unless_present = "file")]
    description: Option<String>,
    /// What the customer asks for (诉求; part of the record).
    #[arg(long, required_unless_present = "file")]
    demand: Option<String>,
    /// Category (policy `categories`), e.g. network_quality.
    #[arg(long, default_value = "")]
    category: String,
    /// Business concerned, e.g. "broadband 100M".
    #[arg(long, required_unless_present = "file")]
    business: Option<String>,
    /// Channel: counter, hotline, letter, online, ...
    #[arg(long, default_value = "hotline")]
    channel: String,
    /// Submission key: the source system's own id; resubmitting with the same one records
    /// nothing new. Omitted, each run is a new complaint (a key is made from the time).
    #[arg(long)]
    external_id: Option<String>,
    /// How the customer confirmed the record: phone, verbal or signature (omit: unconfirmed).
    #[arg(long)]
    confirmed_by: Option<String>,
    /// Staff id of the first employee the customer asked (首问责任人; DOMAIN §1 requires it).
    #[arg(long, required_unless_present = "file")]
    first_contact: Option<String>,
}

fn read_submission(path: &PathBuf) -> Result<v1::SubmitRequest, Failure> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let desc = crate::output::descriptor("SubmitRequest")?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let dynamic = prost_reflect::DynamicMessage::deserialize(desc, &mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| {
            Failure::Usage(format!("{}: not a JSON SubmitRequest: {e}", path.display()))
        })?;
    dynamic
        .transcode_to::<v1::SubmitRequest>()
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
}

fn from_flags(a: SubmitArgs) -> Result<v1::SubmitRequest, Failure> {
    let channel = parse_enum(
        "--channel",
        &a.channel,
        "CHANNEL_",
        v1::Channel::from_str_name,
    )?;
    let confirmation = a
        .confirmed_by
        .map(|m| {
            parse_enum(
                "--confirmed-by",
                &m,
                "CONFIRMATION_METHOD_",
                v1::ConfirmationMethod::from_str_name,
            )
            .map(|method| v1::Confirmation {
                method: method as i32,
                ..Default::default()
            })
        })
        .transpose()?;
    Ok(v1::SubmitRequest {
        details: Some(v1::ComplaintDetails {
            key: Some(v1::SubmissionKey {
                source_system: "cli".into(),
                external_id: a.external_id.unwrap_or_else(fresh_key),
            }),
            customer: Some(v1::Customer {
                name: a.name.unwrap_or_default(),
                phone: a.phone.unwrap_or_default(),
                ..Default::default()
            }),
            channel: channel as i32,
            business: a.business.unwrap_or_default(),
            description: a.description.unwrap_or_default(),
            demand: a.demand.unwrap_or_default(),
            category: a.category,
            confirmation,
            first_contact: a.first_contact.map(|employee_id| v1::FirstContact {
                employee_id,
                ..Default::default()
            }),
            ..Default::default()
        }),
    })
}

/// A submission key for a run without `--external-id`: the time in nanoseconds and the process
/// id, unique for one person at one terminal.
fn fresh_key() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos}-{}", std::process::id())
}

pub async fn submit(ctx: &Ctx, a: SubmitArgs) -> Outcome {
    let request = match &a.file {
        Some(path) => read_submission(path)?,
        None => from_flags(a)?,
    };
    let ack = ctx
        .intake()
        .await?
        .submit(ctx.req(request))
        .await?
        .into_inner();
    ctx.emit("Acknowledgement", &ack, |k| {
        let mut pairs = vec![
            (
                "complaint",
                format!("{} ({})", k.complaint_number, k.complaint_id),
            ),
            ("class", label(k.class().as_str_name(), "CLASS_")),
            ("reasons", k.classification_reasons.join("; ")),
            ("received", time(k.received_at.as_ref())),
        ];
        pairs.extend(promised(k.promises.as_ref()));
        pairs.extend([
            ("confirmed", yes_no(k.confirmed)),
            (
                "duplicate",
                if k.duplicate {
                    "yes (already recorded)".into()
                } else {
                    String::new()
                },
            ),
        ]);
        let mut out = fields(&pairs);
        if let Some(g) = &k.guidance {
            out.push_str(&fields(&[("guidance", g.recommended_response.clone())]));
        }
        out
    })
}

/// The promised times as `key: value` pairs, the same in every command that returns them.
fn promised(p: Option<&v1::Promises>) -> [(&'static str, String); 3] {
    let p = p.cloned().unwrap_or_default();
    [
        ("accept by", time(p.acceptance_due.as_ref())),
        ("feedback by", time(p.first_feedback_due.as_ref())),
        ("complete by", time(p.completion_due.as_ref())),
    ]
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// How the customer confirmed the record read back to them: signature, verbal or phone.
    #[arg(long)]
    method: String,
    /// When the customer confirmed (RFC 3339 or YYYY-MM-DD); default: now.
    #[arg(long)]
    at: Option<String>,
    /// A note, e.g. where the signed form is kept or what the customer corrected.
    #[arg(long, default_value = "")]
    note: String,
}

pub async fn confirm(ctx: &Ctx, a: ConfirmArgs) -> Outcome {
    let method = parse_enum(
        "--method",
        &a.method,
        "CONFIRMATION_METHOD_",
        v1::ConfirmationMethod::from_str_name,
    )?;
    let confirmed_at = a.at.map(|t| parse_time("--at", &t)).transpose()?;
    let r = ctx
        .intake()
        .await?
        .confirm(ctx.req(v1::ConfirmRequest {
            complaint_id: ctx.complaint(&a.complaint).await?,
            confirmation: Some(v1::Confirmation {
                method: method as i32,
                confirmed_at,
                note: a.note,
            }),
        }))
        .await?
        .into_inner();
    ctx.emit("ConfirmResponse", &r, |r| {
        let mut pairs = vec![(
            "confirmed",
            if r.already_confirmed {
                "already (nothing changed)".to_string()
            } else {
                "yes; routing starts".to_string()
            },
        )];
        pairs.extend(promised(r.promises.as_ref()));
        fields(&pairs)
    })
}

#[derive(Debug, Args)]
pub struct ReclassifyArgs {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// The new class: A, B, C or D.
    #[arg(long)]
    class: String,
    /// Why (kept in the complaint's history).
    #[arg(long)]
    reason: String,
}

pub async fn reclassify(ctx: &Ctx, a: ReclassifyArgs) -> Outcome {
    let class = parse_enum("--class", &a.class, "CLASS_", v1::Class::from_str_name)?;
    let reason = required("--reason", a.reason)?;
    let r = ctx
        .intake()
        .await?
        .reclassify(ctx.req(v1::ReclassifyRequest {
            complaint_id: ctx.complaint(&a.complaint).await?,
            class: class as i32,
            reason,
        }))
        .await?
        .into_inner();
    ctx.emit("ReclassifyResponse", &r, |r| {
        let mut pairs = vec![(
            "class",
            format!(
                "{} (was {})",
                label(class.as_str_name(), "CLASS_"),
                label(r.previous_class().as_str_name(), "CLASS_")
            ),
        )];
        pairs.extend(promised(r.promises.as_ref()));
        fields(&pairs)
    })
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
}

pub async fn show(ctx: &Ctx, a: ShowArgs) -> Outcome {
    let view = ctx
        .intake()
        .await?
        .get_complaint(ctx.req(v1::GetComplaintRequest {
            complaint_id: ctx.complaint(&a.complaint).await?,
        }))
        .await?
        .into_inner();
    ctx.emit("ComplaintView", &view, |v| {
        let details = v.details.clone().unwrap_or_default();
        let customer = details.customer.clone().unwrap_or_default();
        let promises = v.promises.clone().unwrap_or_default();
        let mut out = fields(&[
            ("complaint", format!("{} ({})", v.number, v.complaint_id)),
            ("class", label(v.class().as_str_name(), "CLASS_")),
            ("status", v.status.clone()),
            ("overdue", yes_no(v.overdue)),
            ("department", v.department_id.clone()),
            ("assignee", v.assignee_id.clone()),
            (
                "customer",
                format!("{} {}", customer.name, customer.phone)
                    .trim()
                    .to_string(),
            ),
            ("category", details.category.clone()),
            ("description", details.description.clone()),
            ("demand", details.demand.clone()),
            ("received", time(v.received_at.as_ref())),
            ("complete by", time(promises.completion_due.as_ref())),
            ("satisfaction", v.satisfaction.clone()),
        ]);
        let mut t = Table::new(&["WHEN", "SERVICE", "WHAT", "BY", "SUMMARY"]);
        for e in &v.timeline {
            t.row(vec![
                time(e.occurred_at.as_ref()),
                e.source_service.clone(),
                e.kind.clone(),
                e.actor.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
                e.summary.clone(),
            ]);
        }
        out.push_str("\ntimeline:\n");
        out.push_str(&t.render());
        out
    })
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Status, e.g. received, assigned, resolved.
    #[arg(long, default_value = "")]
    status: String,
    /// Class: a, b, c or d.
    #[arg(long)]
    class: Option<String>,
    /// Department id.
    #[arg(long, default_value = "")]
    department: String,
    /// Only overdue complaints.
    #[arg(long)]
    overdue: bool,
    /// Page size (server default 50, at most 500).
    #[arg(long, default_value_t = 0)]
    page_size: u32,
    /// `next page` token of the previous page.
    #[arg(long, default_value = "")]
    page_token: String,
}

pub async fn list(ctx: &Ctx, a: ListArgs) -> Outcome {
    let class = class_filter(a.class.as_deref())?;
    let page = ctx
        .intake()
        .await?
        .list_complaints(ctx.req(v1::ListComplaintsRequest {
            status: a.status,
            class,
            department_id: a.department,
            overdue: a.overdue.then_some(true),
            page: Some(v1::PageRequest {
                page_size: a.page_size,
                page_token: a.page_token,
            }),
            ..Default::default()
        }))
        .await?
        .into_inner();
    ctx.emit("ListComplaintsResponse", &page, |p| {
        let mut t = Table::new(&[
            "NUMBER",
            "ID",
            "CLASS",
            "STATUS",
            "DEPARTMENT",
            "ASSIGNEE",
            "OVERDUE",
            "RECEIVED",
            "CATEGORY",
        ]);
        for c in &p.complaints {
            t.row(vec![
                c.number.clone(),
                c.complaint_id.clone(),
                label(c.class().as_str_name(), "CLASS_"),
                c.status.clone(),
                c.department_id.clone(),
                c.assignee_id.clone(),
                yes_no(c.overdue),
                time(c.received_at.as_ref()),
                c.category.clone(),
            ]);
        }
        with_next_page(t.render(), &p.next_page_token)
    })
}

#[derive(Debug, Args)]
pub struct QueueArgs {
    /// A department's queue.
    #[arg(long, default_value = "")]
    department: String,
    /// A handler's queue.
    #[arg(long, default_value = "")]
    handler: String,
    /// Page size.
    #[arg(long, default_value_t = 0)]
    page_size: u32,
    /// `next page` token of the previous page.
    #[arg(long, default_value = "")]
    page_token: String,
    /// Also list resolved and closed complaints, after the open ones.
    #[arg(long)]
    all: bool,
}

pub async fn queue(ctx: &Ctx, a: QueueArgs) -> Outcome {
    if a.department.trim().is_empty() && a.handler.trim().is_empty() {
        return Err(Failure::Usage(
            "queue: say whose queue with --department <id> or --handler <id>".into(),
        ));
    }
    let page = ctx
        .routing()
        .await?
        .list_queue(ctx.req(v1::ListQueueRequest {
            department_id: a.department,
            handler_id: a.handler,
            page: Some(v1::PageRequest {
                page_size: a.page_size,
                page_token: a.page_token,
            }),
            include_finished: a.all,
        }))
        .await?
        .into_inner();
    ctx.emit("ListQueueResponse", &page, |p| {
        let mut t = Table::new(&[
            "NUMBER",
            "ID",
            "CLASS",
            "STAGE",
            "TIME LEFT",
            "DUE",
            "DEPARTMENT",
            "ASSIGNEE",
            "CUSTOMER",
        ]);
        for i in &p.items {
            t.row(vec![
                i.number.clone(),
                i.complaint_id.clone(),
                label(i.class().as_str_name(), "CLASS_"),
                i.stage.clone(),
                duration(i.time_left.as_ref()),
                time(i.completion_due.as_ref()),
                i.department_id.clone(),
                i.assignee_id.clone(),
                i.customer_name.clone(),
            ]);
        }
        with_next_page(t.render(), &p.next_page_token)
    })
}

#[derive(Debug, Args)]
pub struct AssignArgs {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// Staff id of the new handler.
    staff: String,
    /// Why (kept in the history).
    #[arg(long, default_value = "")]
    reason: String,
    /// Take it from its current handler (a reassignment).
    #[arg(long)]
    reassign: bool,
}

pub async fn assign(ctx: &Ctx, a: AssignArgs) -> Outcome {
    let mut routing = ctx.routing().await?;
    if a.reassign {
        let r = routing
            .reassign(ctx.req(v1::ReassignRequest {
                complaint_id: ctx.complaint(&a.complaint).await?,
                staff_id: a.staff,
                reason: a.reason,
            }))
            .await?
            .into_inner();
        ctx.emit("ReassignResponse", &r, |r| {
            format!(
                "reassigned from {} to {} ({})\n",
                r.previous_assignee_id, r.assignee_id, r.department_id
            )
        })
    } else {
        let r = routing
            .assign(ctx.req(v1::AssignRequest {
                complaint_id: ctx.complaint(&a.complaint).await?,
                staff_id: a.staff,
                reason: a.reason,
            }))
            .await?
            .into_inner();
        ctx.emit("AssignResponse", &r, |r| {
            format!("assigned to {} ({})\n", r.assignee_id, r.department_id)
        })
    }
}
