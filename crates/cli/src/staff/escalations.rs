//! `escalations ...`: what has been escalated to whom; managers acknowledge and decide.

use clap::{Args, Subcommand};
use redress_proto::v1;

use super::{Ctx, Outcome, parse_enum};
use crate::output::{Table, fields, label, time};

#[derive(Debug, Subcommand)]
pub enum Escalations {
    /// Escalations, filtered.
    List(List),
    /// Acknowledge an escalation, with instructions for the handler.
    Ack(Ack),
    /// Record the decision on an escalation.
    Decide(Decide),
}

#[derive(Debug, Args)]
pub struct List {
    /// Recipient (a manager's id).
    #[arg(long, default_value = "")]
    recipient: String,
    /// Only this department's (its id, e.g. dept-network).
    #[arg(long, default_value = "")]
    department: String,
    /// raised, acknowledged, decided, superseded or closed.
    #[arg(long)]
    state: Option<String>,
    /// Only this complaint's escalations: its number (RD20261201-000001) or id (cmp_...).
    #[arg(long, default_value = "")]
    complaint: String,
    /// Largest number of items on one page (0: the server's default, 50).
    #[arg(long, default_value_t = 0)]
    page_size: u32,
    /// The `next_page_token` a previous page printed, for the page after it.
    #[arg(long, default_value = "")]
    page_token: String,
}

#[derive(Debug, Args)]
pub struct Ack {
    /// Escalation id.
    #[arg(value_name = "ESCALATION")]
    escalation_id: String,
    /// What the recipient tells the handler to do (kept with the escalation).
    #[arg(long, default_value = "")]
    instructions: String,
}

#[derive(Debug, Args)]
pub struct Decide {
    /// Escalation id.
    #[arg(value_name = "ESCALATION")]
    escalation_id: String,
    /// The decision, in words (a decision at the top of the ladder is final).
    #[arg(long)]
    decision: String,
}

pub async fn run(ctx: &Ctx, command: Escalations) -> Outcome {
    let mut client = ctx.escalation().await?;
    match command {
        Escalations::List(a) => {
            let state = a
                .state
                .map(|s| {
                    parse_enum(
                        "--state",
                        &s,
                        "ESCALATION_STATE_",
                        v1::EscalationState::from_str_name,
                    )
                })
                .transpose()?
                .map_or(0, |s| s as i32);
            let page = client
                .list_escalations(ctx.req(v1::ListEscalationsRequest {
                    recipient_id: a.recipient,
                    department_id: a.department,
                    state,
                    complaint_id: ctx.complaint(&a.complaint).await?,
                    page: Some(v1::PageRequest {
                        page_size: a.page_size,
                        page_token: a.page_token,
                    }),
                }))
                .await?
                .into_inner();
            ctx.emit("ListEscalationsResponse", &page, |p| {
                let mut t = Table::new(&[
                    "ESCALATION",
                    "NUMBER",
                    "LEVEL",
                    "TRIGGER",
                    "TO",
                    "STATE",
                    "RAISED",
                    "ACK BY",
                    "CAUSES",
                ]);
                for e in &p.escalations {
                    t.row(vec![
                        e.escalation_id.clone(),
                        e.complaint_number.clone(),
                        e.level.to_string(),
                        label(e.trigger().as_str_name(), "ESCALATION_TRIGGER_"),
                        e.recipient_id.clone(),
                        label(e.state().as_str_name(), "ESCALATION_STATE_"),
                        time(e.raised_at.as_ref()),
                        time(e.acknowledge_by.as_ref()),
                        causes(e),
                    ]);
                }
                t.render()
            })
        }
        Escalations::Ack(a) => {
            let r = client
                .acknowledge(ctx.req(v1::AcknowledgeRequest {
                    escalation_id: a.escalation_id,
                    instructions: a.instructions,
                }))
                .await?
                .into_inner();
            ctx.emit("AcknowledgeResponse", &r, |r| {
                describe(r.escalation.as_ref())
            })
        }
        Escalations::Decide(a) => {
            let r = client
                .decide(ctx.req(v1::DecideRequest {
                    escalation_id: a.escalation_id,
                    decision: a.decision,
                }))
                .await?
                .into_inner();
            ctx.emit("DecideResponse", &r, |r| describe(r.escalation.as_ref()))
        }
    }
}

fn describe(e: Option<&v1::Escalation>) -> String {
    let Some(e) = e else {
        return String::new();
    };
    fields(&[
        ("escalation", e.escalation_id.clone()),
        (
            "complaint",
            format!("{} ({})", e.complaint_number, e.complaint_id),
        ),
        ("level", e.level.to_string()),
        ("state", label(e.state().as_str_name(), "ESCALATION_STATE_")),
        ("recipient", e.recipient_id.clone()),
        ("causes", history(e)),
        ("acknowledged", time(e.acknowledged_at.as_ref())),
        ("instructions", e.instructions.clone()),
        ("decided", time(e.decided_at.as_ref())),
        ("decision", e.decision.clone()),
    ])
}

/// What the escalation gathered, oldest first, one word each: the missed limit's clock, or the
/// trigger (DOMAIN §9: later missed limits join the complaint's escalation instead of a new one).
fn causes(e: &v1::Escalation) -> String {
    let words: Vec<String> = e.causes.iter().map(cause).collect();
    if words.is_empty() {
        "-".to_string()
    } else {
        words.join(", ")
    }
}

fn cause(c: &v1::EscalationCause) -> String {
    if c.clock() == v1::SlaClock::Unspecified {
        label(c.trigger().as_str_name(), "ESCALATION_TRIGGER_")
    } else {
        format!("{} missed", label(c.clock().as_str_name(), "SLA_CLOCK_"))
    }
}

/// Each cause with when it was added and its summary, for one escalation shown whole.
fn history(e: &v1::Escalation) -> String {
    e.causes
        .iter()
        .map(|c| format!("{}  {}: {}", time(c.added_at.as_ref()), cause(c), c.summary))
        .collect::<Vec<_>>()
        .join("\n              ")
}
