//! `handle ...`: the handler's steps on a complaint, one routing RPC each — accept, decide
//! validity, feedback, intermediate result, propose, record the customer's answer, resolve, or
//! declare it cannot be settled (which escalates it). `close` (top level) is the complaint
//! centre's explicit close of a resolved complaint.

use clap::{Args, Subcommand};
use redress_proto::v1;

use super::{Ctx, Outcome, parse_enum, parse_time};
use crate::output::{fields, time, yes_no};

#[derive(Debug, Subcommand)]
pub enum Handle {
    /// Accept the complaint (starts handling; stops the acceptance clock).
    Accept(Complaint),
    /// Decide whether the complaint is valid.
    Validity(Validity),
    /// Give the customer feedback.
    Feedback(Feedback),
    /// Report an intermediate result (for complaints that take longer).
    Intermediate(Intermediate),
    /// Propose a solution to the customer.
    Propose(Propose),
    /// Record the customer's answer to the proposed solution.
    Respond(Respond),
    /// Resolve the complaint (hand in the result).
    Resolve(Resolve),
    /// Declare that it cannot be settled at this level (escalates it).
    CannotSettle(CannotSettle),
}

#[derive(Debug, Args)]
pub struct Complaint {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
}

#[derive(Debug, Args)]
pub struct Validity {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// The complaint is not valid (default: valid).
    #[arg(long)]
    invalid: bool,
    /// Why.
    #[arg(long, default_value = "")]
    explanation: String,
}

#[derive(Debug, Args)]
pub struct Feedback {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// What the customer is told.
    #[arg(long)]
    content: String,
    /// How: phone, sms or email.
    #[arg(long, default_value = "phone")]
    channel: String,
    /// The cause found, in words.
    #[arg(long, default_value = "")]
    cause: String,
    /// The measures taken.
    #[arg(long, default_value = "")]
    measures: String,
    /// The result so far.
    #[arg(long, default_value = "")]
    result: String,
    /// Compensation in fen (1 yuan = 100 fen).
    #[arg(long, default_value_t = 0)]
    compensation_fen: i64,
    /// The customer said they are satisfied (a complaint is resolved only after a feedback
    /// that records the customer's satisfaction, either way).
    #[arg(long, conflicts_with = "dissatisfied")]
    satisfied: bool,
    /// The customer said they are not satisfied.
    #[arg(long)]
    dissatisfied: bool,
}

#[derive(Debug, Args)]
pub struct Intermediate {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// What the customer is told, in words.
    #[arg(long)]
    content: String,
    /// When it is expected to be complete (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    expected: Option<String>,
}

#[derive(Debug, Args)]
pub struct Propose {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// The solution proposed to the customer.
    #[arg(long)]
    solution: String,
}

#[derive(Debug, Args)]
pub struct Respond {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// The customer rejected the solution (default: accepted).
    #[arg(long)]
    rejected: bool,
    /// Why, in words (kept in the complaint's history).
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Debug, Args)]
pub struct Resolve {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// The result handed in.
    #[arg(long)]
    result: String,
    /// Staff id of the responsible person, when the recorded cause named none (a valid
    /// complaint needs one unless the customer is responsible).
    #[arg(long, default_value = "")]
    responsible: String,
}

/// `close`: the complaint centre closes (archives) a resolved complaint.
#[derive(Debug, Args)]
pub struct Close {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// Why or how it is closed. Required.
    #[arg(long)]
    note: String,
}

#[derive(Debug, Args)]
pub struct CannotSettle {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// Why, in words (kept in the complaint's history).
    #[arg(long)]
    reason: String,
}

pub async fn run(ctx: &Ctx, command: Handle) -> Outcome {
    let mut routing = ctx.routing().await?;
    match command {
        Handle::Accept(a) => {
            let r = routing
                .accept_complaint(ctx.req(v1::AcceptComplaintRequest {
                    complaint_id: ctx.complaint(&a.complaint).await?,
                }))
                .await?
                .into_inner();
            ctx.emit("AcceptComplaintResponse", &r, |r| {
                fields(&[
                    ("accepted", time(r.accepted_at.as_ref())),
                    ("department", r.department_id.clone()),
                    ("already accepted", yes_no(r.already_accepted)),
                ])
            })
        }
        Handle::Validity(a) => {
            let r = routing
                .decide_validity(ctx.req(v1::DecideValidityRequest {
                    complaint_id: ctx.complaint(&a.complaint).await?,
                    valid: !a.invalid,
                    explanation: a.explanation,
                }))
                .await?
                .into_inner();
            ctx.emit("DecideValidityResponse", &r, |_| {
                format!(
                    "recorded: {}\n",
                    if a.invalid { "invalid" } else { "valid" }
                )
            })
        }
        Handle::Feedback(a) => {
            let channel = parse_enum(
                "--channel",
                &a.channel,
                "REPLY_CHANNEL_",
                v1::ReplyChannel::from_str_name,
            )?;
            let r = routing
                .give_feedback(ctx.req(v1::GiveFeedbackRequest {
                    complaint_id: ctx.complaint(&a.complaint).await?,
                    channel: channel as i32,
                    content: a.content,
                    cause: a.cause,
                    measures: a.measures,
                    result: a.result,
                    compensation_fen: a.compensation_fen,
                    satisfied: match (a.satisfied, a.dissatisfied) {
                        (true, _) => Some(true),
                        (_, true) => Some(false),
                        _ => None,
                    },
                }))
                .await?
                .into_inner();
            ctx.emit("GiveFeedbackResponse", &r, |r| {
                let satisfaction = match (a.satisfied, a.dissatisfied) {
                    (true, _) => "; customer satisfied",
                    (_, true) => "; customer not satisfied",
                    _ => "",
                };
                format!("feedback #{} recorded{satisfaction}\n", r.sequence)
            })
        }
        Handle::Intermediate(a) => {
            let expected = a
                .expected
                .map(|t| parse_time("--expected", &t))
                .transpose()?;
            let r = routing
                .report_intermediate_result(ctx.req(v1::ReportIntermediateResultRequest {
                    complaint_id: ctx.complaint(&a.complaint).await?,
                    content: a.content,
                    expected_completion_at: expected,
                }))
                .await?
                .into_inner();
            ctx.emit("ReportIntermediateResultResponse", &r, |_| {
                "intermediate result recorded\n".into()
            })
        }
        Handle::Propose(a) => {
            let r = routing
                .propose_resolution(ctx.req(v1::ProposeResolutionRequest {
                    complaint_id: ctx.complaint(&a.complaint).await?,
                    solution: a.solution,
                    remedies: vec![],
                }))
                .await?
                .into_inner();
            ctx.emit("ProposeResolutionResponse", &r, |r| {
                format!("solution proposed (attempt {})\n", r.attempt)
            })
        }
        Handle::Respond(a) => {
            let r = routing
                .record_customer_response(ctx.req(v1::RecordCustomerResponseRequest {
                    complaint_id: ctx.complaint(&a.complaint).await?,
                    accepted: !a.rejected,
                    reason: a.reason,
                }))
                .await?
                .into_inner();
            ctx.emit("RecordCustomerResponseResponse", &r, |r| {
                fields(&[
                    (
                        "customer",
                        if a.rejected { "rejected" } else { "accepted" }.to_string(),
                    ),
                    ("rejections", r.rejection_count.to_string()),
                    ("re-study requested", yes_no(r.re_study_requested)),
                    ("escalation requested", yes_no(r.escalation_requested)),
                ])
            })
        }
        Handle::Resolve(a) => {
            let r = routing
                .resolve(ctx.req(v1::ResolveRequest {
                    complaint_id: ctx.complaint(&a.complaint).await?,
                    result: a.result,
                    handed_in_at: None,
                    responsible_person_id: a.responsible,
                }))
                .await?
                .into_inner();
            ctx.emit("ResolveResponse", &r, |r| {
                format!("resolved; handed in {}\n", time(r.handed_in_at.as_ref()))
            })
        }
        Handle::CannotSettle(a) => {
            let r = routing
                .declare_cannot_settle(ctx.req(v1::DeclareCannotSettleRequest {
                    complaint_id: ctx.complaint(&a.complaint).await?,
                    reason: a.reason,
                }))
                .await?
                .into_inner();
            ctx.emit("DeclareCannotSettleResponse", &r, |r| {
                format!("escalating to level {}\n", r.target_level)
            })
        }
    }
}

/// `close`: one `RoutingService.Close`.
pub async fn close(ctx: &Ctx, a: Close) -> Outcome {
    let r = ctx
        .routing()
        .await?
        .close(ctx.req(v1::CloseRequest {
            complaint_id: ctx.complaint(&a.complaint).await?,
            note: a.note,
        }))
        .await?
        .into_inner();
    ctx.emit("CloseResponse", &r, |r| {
        fields(&[
            ("closed", time(r.closed_at.as_ref())),
            (
                "customer satisfied",
                r.satisfied
                    .map(yes_no)
                    .unwrap_or_else(|| "not asked".into()),
            ),
        ])
    })
}
