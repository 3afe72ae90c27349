//! `sla ...`: the SLA monitor's view of time limits — every clock of one complaint, the clocks at
//! risk or overdue across complaints — and a manager's special reason for a missed limit, after
//! which no penalty record follows for that clock.

use clap::{Args, Subcommand};
use redress_proto::prost_types::Duration;
use redress_proto::v1;

use super::{Ctx, Failure, Outcome, class_filter, parse_enum, parse_time, required};
use crate::output::{Table, duration, fields, label, time, with_next_page};

#[derive(Debug, Subcommand)]
pub enum Sla {
    /// Every clock of one complaint: kind, state, due time, time left or overdue by.
    Show(Show),
    /// Running clocks past their warning point, least time left first.
    AtRisk(Filter),
    /// Overdue clocks, most overdue first.
    Overdue(Filter),
    /// Record a manager's special reason for missing a limit (no penalty follows for it).
    SpecialReason(SpecialReason),
}

#[derive(Debug, Args)]
pub struct Show {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
}

/// The filters `ListAtRisk` and `ListOverdue` share.
#[derive(Debug, Args)]
pub struct Filter {
    /// Department id.
    #[arg(long, default_value = "")]
    department: String,
    /// Class: a, b, c or d.
    #[arg(long)]
    class: Option<String>,
    /// Only this handler's complaints (or clocks they are responsible for).
    #[arg(long, default_value = "")]
    handler: String,
    /// Page size (server default 50, at most 500).
    #[arg(long, default_value_t = 0)]
    page_size: u32,
    /// `next page` token of the previous page.
    #[arg(long, default_value = "")]
    page_token: String,
}

impl Filter {
    /// The request `build` makes of the department, class, handler and page, once the class
    /// is known to be one.
    fn request<R>(
        self,
        build: impl FnOnce(String, i32, String, Option<v1::PageRequest>) -> R,
    ) -> Result<R, Failure> {
        let class = class_filter(self.class.as_deref())?;
        let page = v1::PageRequest {
            page_size: self.page_size,
            page_token: self.page_token,
        };
        Ok(build(self.department, class, self.handler, Some(page)))
    }
}

#[derive(Debug, Args)]
pub struct SpecialReason {
    /// The complaint: its number (RD20261201-000001) or id (cmp_...).
    complaint: String,
    /// The clock: confirmation, acceptance, first_feedback, completion, intermediate_result or
    /// revisit.
    #[arg(long)]
    clock: String,
    /// The reason, in words.
    #[arg(long)]
    reason: String,
    /// Staff id of the approving department manager or general manager.
    #[arg(long, value_name = "STAFF")]
    approved_by: String,
    /// A new limit the approver grants (RFC 3339 or YYYY-MM-DD); the clock then runs to it.
    #[arg(long, value_name = "TIME")]
    extend_to: Option<String>,
}

pub async fn run(ctx: &Ctx, command: Sla) -> Outcome {
    match command {
        Sla::Show(a) => {
            let r = ctx
                .sla()
                .await?
                .get_sla_status(ctx.req(v1::GetSlaStatusRequest {
                    complaint_id: ctx.complaint(&a.complaint).await?,
                }))
                .await?
                .into_inner();
            ctx.emit("GetSlaStatusResponse", &r, |r| {
                let mut out = fields(&[
                    (
                        "complaint",
                        format!("{} ({})", r.complaint_number, r.complaint_id),
                    ),
                    ("class", label(r.class().as_str_name(), "CLASS_")),
                    ("department", r.department_id.clone()),
                ]);
                let mut t = Table::new(&[
                    "CLOCK",
                    "STATE",
                    "DUE",
                    "TIME LEFT",
                    "RESPONSIBLE",
                    "SPECIAL REASON",
                ]);
                for c in &r.clocks {
                    t.row(vec![
                        label(c.clock().as_str_name(), "SLA_CLOCK_"),
                        label(c.state().as_str_name(), "CLOCK_STATE_"),
                        time(c.due_at.as_ref()),
                        time_left(c),
                        c.responsible_person_id.clone(),
                        special_reason(c),
                    ]);
                }
                out.push_str("\nclocks:\n");
                out.push_str(&t.render());
                out
            })
        }
        Sla::AtRisk(f) => {
            let request =
                f.request(
                    |department_id, class, handler_id, page| v1::ListAtRiskRequest {
                        department_id,
                        class,
                        handler_id,
                        page,
                    },
                )?;
            let r = ctx.sla().await?.list_at_risk(ctx.req(request)).await?;
            let r = r.into_inner();
            ctx.emit("ListAtRiskResponse", &r, |r| {
                items(&r.items, &r.next_page_token)
            })
        }
        Sla::Overdue(f) => {
            let request =
                f.request(
                    |department_id, class, handler_id, page| v1::ListOverdueRequest {
                        department_id,
                        class,
                        handler_id,
                        page,
                    },
                )?;
            let r = ctx.sla().await?.list_overdue(ctx.req(request)).await?;
            let r = r.into_inner();
            ctx.emit("ListOverdueResponse", &r, |r| {
                items(&r.items, &r.next_page_token)
            })
        }
        Sla::SpecialReason(a) => {
            let clock = parse_enum(
                "--clock",
                &a.clock,
                "SLA_CLOCK_",
                v1::SlaClock::from_str_name,
            )?;
            let reason = required("--reason", a.reason)?;
            let approved_by = required("--approved-by", a.approved_by)?;
            let extended_due_at = a
                .extend_to
                .map(|t| parse_time("--extend-to", &t))
                .transpose()?;
            let r = ctx
                .sla()
                .await?
                .record_special_reason(ctx.req(v1::RecordSpecialReasonRequest {
                    complaint_id: ctx.complaint(&a.complaint).await?,
                    clock: clock as i32,
                    reason,
                    approved_by,
                    extended_due_at,
                }))
                .await?
                .into_inner();
            ctx.emit("RecordSpecialReasonResponse", &r, |r| {
                let Some(c) = &r.clock else {
                    return String::new();
                };
                fields(&[
                    ("clock", label(c.clock().as_str_name(), "SLA_CLOCK_")),
                    ("state", label(c.state().as_str_name(), "CLOCK_STATE_")),
                    ("due", time(c.due_at.as_ref())),
                    ("time left", time_left(c)),
                    ("special reason", special_reason(c)),
                ])
            })
        }
    }
}

/// One line per clock of an at-risk or overdue page.
fn items(items: &[v1::SlaItem], next_page_token: &str) -> String {
    let mut t = Table::new(&[
        "NUMBER",
        "ID",
        "CLASS",
        "CLOCK",
        "STATE",
        "DUE",
        "TIME LEFT",
        "DEPARTMENT",
        "HANDLER",
    ]);
    for i in items {
        let c = i.clock.clone().unwrap_or_default();
        t.row(vec![
            i.complaint_number.clone(),
            i.complaint_id.clone(),
            label(i.class().as_str_name(), "CLASS_"),
            label(c.clock().as_str_name(), "SLA_CLOCK_"),
            label(c.state().as_str_name(), "CLOCK_STATE_"),
            time(c.due_at.as_ref()),
            time_left(&c),
            i.department_id.clone(),
            i.handler_id.clone(),
        ]);
    }
    with_next_page(t.render(), next_page_token)
}

/// `1h02m left`, `overdue by 5m`, or `-` for a clock that no longer runs (the service reports
/// zero for those, which would read as "due now").
fn time_left(c: &v1::ClockStatus) -> String {
    if matches!(c.state(), v1::ClockState::Met | v1::ClockState::Stopped) {
        return "-".to_string();
    }
    let Some(d) = &c.time_left else {
        return "-".to_string();
    };
    if d.seconds >= 0 && d.nanos >= 0 {
        return format!("{} left", duration(Some(d)));
    }
    let late = Duration {
        seconds: d.seconds.saturating_abs(),
        nanos: d.nanos.saturating_abs(),
    };
    let days = match c.overdue_days {
        0 => String::new(),
        1 => " (1 started day)".to_string(),
        n => format!(" ({n} started days)"),
    };
    format!("overdue by {}{days}", duration(Some(&late)))
}

/// The special reason with its approver, or nothing.
fn special_reason(c: &v1::ClockStatus) -> String {
    match (
        c.special_reason.as_str(),
        c.special_reason_approved_by.as_str(),
    ) {
        ("", _) => String::new(),
        (reason, "") => reason.to_string(),
        (reason, by) => format!("{reason} (approved by {by})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(state: v1::ClockState, seconds: i64, overdue_days: u32) -> v1::ClockStatus {
        v1::ClockStatus {
            state: state as i32,
            time_left: Some(Duration { seconds, nanos: 0 }),
            overdue_days,
            ..Default::default()
        }
    }

    #[test]
    fn time_left_reads_as_left_or_overdue_by() {
        assert_eq!(
            time_left(&clock(v1::ClockState::Running, 3720, 0)),
            "1h02m left"
        );
        assert_eq!(
            time_left(&clock(v1::ClockState::Overdue, -300, 0)),
            "overdue by 5m"
        );
        assert_eq!(
            time_left(&clock(v1::ClockState::Overdue, -90_000, 2)),
            "overdue by 25h00m (2 started days)"
        );
        assert_eq!(time_left(&clock(v1::ClockState::Met, 0, 0)), "-");
    }

    #[test]
    fn special_reasons_name_their_approver() {
        let mut c = v1::ClockStatus::default();
        assert_eq!(special_reason(&c), "");
        c.special_reason = "spare part on order".into();
        c.special_reason_approved_by = "manager-1".into();
        assert_eq!(
            special_reason(&c),
            "spare part on order (approved by manager-1)"
        );
    }
}
