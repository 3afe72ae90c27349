//! `reports ...`: the monthly complaint-rate and penalty report, the revisit-rate report, and
//! the board's reports (the daily complaint log, the monthly analysis, the yearly department
//! report).

use anyhow::Context;
use clap::{Args, Subcommand};
use redress_proto::v1;

use super::{Ctx, Outcome, parse_time};
use crate::output::{Table, fields, percent, yes_no, yuan};

#[derive(Debug, Subcommand)]
pub enum Reports {
    /// Complaint rates, penalty bands and penalties of one month, by department and person.
    Monthly(Monthly),
    /// Enter a department's business volume for a month, the divisor of its complaint rate
    /// (operator or general manager).
    Volume(Volume),
    /// How many revisits were made on time.
    RevisitRate(RevisitRate),
    /// The supervisor's daily complaint log (from the board).
    Daily(BoardReport),
    /// The monthly complaint analysis: by class, department, category, cause, channel and
    /// customer type, with the trend and each department's complaint rate (from the board).
    Analysis(BoardReport),
    /// Each department's complaints month by month, for a year (from the board).
    Yearly(BoardReport),
}

#[derive(Debug, Args)]
pub struct BoardReport {
    /// The day (YYYY-MM-DD), month (YYYY-MM) or year (YYYY); the current one by default.
    #[arg(long, default_value = "")]
    period: String,
    /// CSV instead of JSON.
    #[arg(long)]
    csv: bool,
}

#[derive(Debug, Args)]
pub struct Monthly {
    /// YYYY-MM.
    #[arg(long)]
    month: String,
    /// Only this department's (its id, e.g. dept-network).
    #[arg(long, default_value = "")]
    department: String,
    /// Print the service's CSV instead of a table.
    #[arg(long)]
    csv: bool,
}

#[derive(Debug, Args)]
pub struct Volume {
    /// The department's id, e.g. dept-network.
    department: String,
    /// YYYY-MM.
    month: String,
    /// Transactions, services or customers served, as the company counts them.
    volume: u64,
}

#[derive(Debug, Args)]
pub struct RevisitRate {
    /// From (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    from: String,
    /// To (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    to: String,
    /// Only this department's (its id, e.g. dept-network).
    #[arg(long, default_value = "")]
    department: String,
}

/// Prints one of the board's reports as the board gives it (JSON or CSV).
async fn board_report(ctx: &Ctx, kind: v1::BoardReportKind, a: BoardReport) -> Outcome {
    let format = if a.csv {
        v1::ReportFormat::Csv
    } else {
        v1::ReportFormat::Json
    };
    let r = ctx
        .board()
        .await?
        .get_board_report(ctx.req(v1::GetBoardReportRequest {
            kind: kind as i32,
            period: a.period,
            format: format as i32,
        }))
        .await?
        .into_inner();
    let mut text = String::from_utf8(r.body).context("the report is not UTF-8")?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    crate::output::stdout(&text)?;
    Ok(())
}

pub async fn run(ctx: &Ctx, command: Reports) -> Outcome {
    match command {
        Reports::Daily(a) => board_report(ctx, v1::BoardReportKind::Daily, a).await,
        Reports::Analysis(a) => board_report(ctx, v1::BoardReportKind::Monthly, a).await,
        Reports::Yearly(a) => board_report(ctx, v1::BoardReportKind::Yearly, a).await,
        Reports::Monthly(a) => {
            let format = if a.csv {
                v1::ReportFormat::Csv
            } else {
                v1::ReportFormat::Json
            };
            let r = ctx
                .escalation()
                .await?
                .monthly_report(ctx.req(v1::MonthlyReportRequest {
                    month: a.month,
                    format: format as i32,
                    department_id: a.department,
                }))
                .await?
                .into_inner();
            if a.csv {
                let text = String::from_utf8(r.csv).context("the CSV is not UTF-8")?;
                crate::output::stdout(&text)?;
                return Ok(());
            }
            ctx.emit("MonthlyReportResponse", &r, |r| {
                let mut d = Table::new(&[
                    "DEPARTMENT",
                    "COMPLAINTS",
                    "VOLUME",
                    "RATE",
                    "BAND",
                    "HEAD PENALTY",
                    "NEEDS APPROVAL",
                    "OVERDUE",
                    "ESCALATIONS",
                    "REPEATS",
                ]);
                for x in &r.departments {
                    d.row(vec![
                        x.department_id.clone(),
                        x.complaints.to_string(),
                        x.business_volume.to_string(),
                        x.rate_bp.map(percent).unwrap_or_else(|| "-".into()),
                        x.penalty_band
                            .as_ref()
                            .map(|b| b.label.clone())
                            .unwrap_or_default(),
                        yuan(x.head_penalty_fen),
                        yes_no(x.head_penalty_needs_approval),
                        x.overdue_count.to_string(),
                        x.escalation_count.to_string(),
                        x.repeat_complaint_count.to_string(),
                    ]);
                }
                let mut p = Table::new(&[
                    "PERSON",
                    "NAME",
                    "DEPARTMENT",
                    "COMPLAINTS",
                    "PENALTIES",
                    "SUSPENDED",
                ]);
                for x in &r.people {
                    p.row(vec![
                        x.person_id.clone(),
                        x.name.clone(),
                        x.department_id.clone(),
                        x.complaints.to_string(),
                        yuan(x.penalties_fen),
                        yes_no(x.suspended),
                    ]);
                }
                format!(
                    "month {}\n\ndepartments:\n{}\npeople:\n{}",
                    r.month,
                    d.render(),
                    p.render()
                )
            })
        }
        Reports::Volume(a) => {
            let r = ctx
                .escalation()
                .await?
                .set_business_volume(ctx.req(v1::SetBusinessVolumeRequest {
                    department_id: a.department.clone(),
                    month: a.month.clone(),
                    volume: a.volume,
                }))
                .await?
                .into_inner();
            ctx.emit("SetBusinessVolumeResponse", &r, |r| {
                let before = match r.previous_volume {
                    0 => "none before".to_owned(),
                    v => format!("was {v}"),
                };
                format!(
                    "business volume of {} for {}: {} ({before})\n",
                    a.department, a.month, a.volume
                )
            })
        }
        Reports::RevisitRate(a) => {
            let from = parse_time("--from", &a.from)?;
            let to = parse_time("--to", &a.to)?;
            let r = ctx
                .revisit()
                .await?
                .revisit_rate_report(ctx.req(v1::RevisitRateReportRequest {
                    department_id: a.department,
                    from: Some(from),
                    to: Some(to),
                    kind: 0,
                }))
                .await?
                .into_inner();
            ctx.emit("RevisitRateReportResponse", &r, |r| {
                let mut out = fields(&[
                    ("due", r.due.to_string()),
                    ("on time", r.on_time.to_string()),
                    ("late", r.late.to_string()),
                    ("missing", r.missing.to_string()),
                    ("rate", percent(r.rate_bp)),
                    ("never reached", r.never_reached.len().to_string()),
                ]);
                let mut t =
                    Table::new(&["DEPARTMENT", "DUE", "ON TIME", "LATE", "MISSING", "RATE"]);
                for d in &r.by_department {
                    t.row(vec![
                        d.department_id.clone(),
                        d.due.to_string(),
                        d.on_time.to_string(),
                        d.late.to_string(),
                        d.missing.to_string(),
                        percent(d.rate_bp),
                    ]);
                }
                out.push_str("\nby department:\n");
                out.push_str(&t.render());
                out
            })
        }
    }
}
