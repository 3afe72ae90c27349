//! `revisits ...`: the agents' callbacks — list what is due, claim one, record its outcome, and
//! the manager's sign-off.

use clap::{Args, Subcommand};
use redress_proto::prost_types::Timestamp;
use redress_proto::v1;

use super::{Ctx, Outcome, parse_enum, parse_time};
use crate::output::{Table, fields, label, time};

#[derive(Debug, Subcommand)]
pub enum Revisits {
    /// Revisits due (by default: due now; --upcoming: all open ones).
    List(List),
    /// Claim a revisit so no other agent calls the same customer.
    Claim(Claim),
    /// Record the outcome of the call.
    Outcome(Outcome_),
    /// A manager signs a revisit off.
    SignOff(SignOff),
}

#[derive(Debug, Args)]
pub struct List {
    /// Only this agent's (a staff id).
    #[arg(long, default_value = "")]
    agent: String,
    /// Only this department's (its id, e.g. dept-network).
    #[arg(long, default_value = "")]
    department: String,
    /// Due before this time (RFC 3339 or YYYY-MM-DD); default: now.
    #[arg(long, conflicts_with = "upcoming")]
    due_before: Option<String>,
    /// Every open revisit, whenever it is due.
    #[arg(long)]
    upcoming: bool,
    /// Largest number of items on one page (0: the server's default, 50).
    #[arg(long, default_value_t = 0)]
    page_size: u32,
    /// The `next_page_token` a previous page printed, for the page after it.
    #[arg(long, default_value = "")]
    page_token: String,
}

#[derive(Debug, Args)]
pub struct Claim {
    /// Revisit id.
    #[arg(value_name = "REVISIT")]
    revisit_id: String,
}

#[derive(Debug, Args)]
pub struct Outcome_ {
    /// Revisit id.
    #[arg(value_name = "REVISIT")]
    revisit_id: String,
    /// The customer could not be reached (default: reached).
    #[arg(long)]
    unreached: bool,
    /// The customer is dissatisfied (default: satisfied).
    #[arg(long)]
    dissatisfied: bool,
    /// How the customer feels.
    #[arg(long, default_value = "")]
    feelings: String,
    /// What still dissatisfies the customer.
    #[arg(long, default_value = "")]
    remaining: String,
    /// The customer's opinions.
    #[arg(long, default_value = "")]
    opinions: String,
    /// phone or visit.
    #[arg(long, default_value = "phone")]
    method: String,
    /// The customer raised new issues.
    #[arg(long)]
    new_issues: bool,
    /// The customer complains again (a repeat complaint).
    #[arg(long)]
    complains_again: bool,
    /// With --complains-again: why the customer complains again (neglect, perfunctory
    /// handling, the time limit missed…), in words.
    #[arg(long, default_value = "")]
    repeat_reason: String,
}

#[derive(Debug, Args)]
pub struct SignOff {
    /// Revisit id.
    #[arg(value_name = "REVISIT")]
    revisit_id: String,
    /// The signing manager's id.
    #[arg(long)]
    manager: String,
    /// The department manager's result on the issues the revisit raised.
    #[arg(long, default_value = "")]
    result: String,
}

/// Far enough ahead that every open revisit is due before it (2100-01-01).
const FAR_FUTURE: i64 = 4_102_444_800;

pub async fn run(ctx: &Ctx, command: Revisits) -> Outcome {
    let mut revisit = ctx.revisit().await?;
    match command {
        Revisits::List(a) => {
            let due_before = match (a.upcoming, a.due_before) {
                (true, _) => Some(Timestamp {
                    seconds: FAR_FUTURE,
                    nanos: 0,
                }),
                (false, Some(t)) => Some(parse_time("--due-before", &t)?),
                (false, None) => None,
            };
            let page = revisit
                .list_due_revisits(ctx.req(v1::ListDueRevisitsRequest {
                    agent_id: a.agent,
                    department_id: a.department,
                    due_before,
                    page: Some(v1::PageRequest {
                        page_size: a.page_size,
                        page_token: a.page_token,
                    }),
                }))
                .await?
                .into_inner();
            ctx.emit("ListDueRevisitsResponse", &page, |p| {
                let mut t = Table::new(&[
                    "REVISIT",
                    "COMPLAINT",
                    "NUMBER",
                    "KIND",
                    "STATE",
                    "DUE",
                    "AGENT",
                    "CUSTOMER",
                    "PHONE",
                ]);
                for r in &p.revisits {
                    t.row(vec![
                        r.revisit_id.clone(),
                        r.complaint_id.clone(),
                        r.complaint_number.clone(),
                        label(r.kind().as_str_name(), "REVISIT_KIND_"),
                        label(r.state().as_str_name(), "REVISIT_STATE_"),
                        time(r.due_at.as_ref()),
                        r.agent_id.clone(),
                        r.customer_name.clone(),
                        r.customer_phone.clone(),
                    ]);
                }
                t.render()
            })
        }
        Revisits::Claim(a) => {
            let r = revisit
                .claim_revisit(ctx.req(v1::ClaimRevisitRequest {
                    revisit_id: a.revisit_id,
                }))
                .await?
                .into_inner();
            ctx.emit("ClaimRevisitResponse", &r, |r| describe(r.revisit.as_ref()))
        }
        Revisits::Outcome(a) => {
            let method = parse_enum(
                "--method",
                &a.method,
                "REVISIT_METHOD_",
                v1::RevisitMethod::from_str_name,
            )?;
            let r = revisit
                .record_outcome(ctx.req(v1::RecordOutcomeRequest {
                    revisit_id: a.revisit_id,
                    reached: !a.unreached,
                    satisfied: !a.dissatisfied,
                    feelings: a.feelings,
                    remaining_dissatisfaction: a.remaining,
                    opinions: a.opinions,
                    appointed_answer_at: None,
                    method: method as i32,
                    new_issues: a.new_issues,
                    complains_again: a.complains_again,
                    repeat_reason: a.repeat_reason,
                }))
                .await?
                .into_inner();
            ctx.emit("RecordOutcomeResponse", &r, |r| {
                let mut out = describe(r.revisit.as_ref());
                if r.repeat_complaint {
                    out.push_str("a repeat complaint was raised\n");
                }
                out
            })
        }
        Revisits::SignOff(a) => {
            let r = revisit
                .sign_off(ctx.req(v1::SignOffRequest {
                    revisit_id: a.revisit_id,
                    manager_id: a.manager,
                    result: a.result,
                }))
                .await?
                .into_inner();
            ctx.emit("SignOffResponse", &r, |r| describe(r.revisit.as_ref()))
        }
    }
}

fn describe(r: Option<&v1::Revisit>) -> String {
    let Some(r) = r else {
        return String::new();
    };
    fields(&[
        ("revisit", r.revisit_id.clone()),
        (
            "complaint",
            format!("{} ({})", r.complaint_number, r.complaint_id),
        ),
        ("kind", label(r.kind().as_str_name(), "REVISIT_KIND_")),
        ("state", label(r.state().as_str_name(), "REVISIT_STATE_")),
        ("due", time(r.due_at.as_ref())),
        ("agent", r.agent_id.clone()),
        (
            "customer",
            format!("{} {}", r.customer_name, r.customer_phone),
        ),
        ("attempts", r.attempts.to_string()),
        (
            "satisfied",
            r.satisfied
                .map(|s| if s { "yes" } else { "no" }.to_string())
                .unwrap_or_default(),
        ),
        ("result", r.result.clone()),
    ])
}
