//! The monthly complaint analysis (DOMAIN §7, §8): per department the complaints, business
//! volume, complaint rate T and the department head's penalty band; per person the complaints
//! counted, penalties and suspension — as structured fields and as CSV, so the same figures
//! reach a screen and a spreadsheet.

use redress_domain::penalty::{self, percent};
use redress_domain::{Policy, RateBand};
use redress_platform::auth::Identity;
use redress_proto::v1;
use sqlx::PgConnection;
use tonic::Status;

use super::Api;
use crate::access;
use crate::error::Error;
use crate::store::report as store;

impl Api {
    pub(super) async fn report(
        &self,
        who: &Identity,
        r: v1::MonthlyReportRequest,
    ) -> Result<v1::MonthlyReportResponse, Status> {
        let department = r.department_id.trim();
        access::may_report(who, department)?;
        let format = v1::ReportFormat::try_from(r.format)
            .map_err(|_| Error::invalid("format", "unknown format"))?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        Ok(monthly(
            &mut conn,
            &self.ladder.policy,
            &r.month,
            department,
            format == v1::ReportFormat::Csv,
        )
        .await?)
    }
}

/// The band of DOMAIN §7's table T falls in, with its bounds; `None` without a rate.
fn band(policy: &Policy, b: &RateBand) -> Option<v1::PenaltyBand> {
    let to32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    b.bounds(policy).map(|bounds| v1::PenaltyBand {
        label: bounds.label,
        lower_bp: to32(bounds.lower_bp),
        lower_inclusive: bounds.lower_inclusive,
        upper_bp: bounds.upper_bp.map(to32),
    })
}

/// Builds the report for `month` (`YYYY-MM`), optionally for one department.
pub async fn monthly(
    conn: &mut PgConnection,
    policy: &Policy,
    month: &str,
    department: &str,
    csv: bool,
) -> Result<v1::MonthlyReportResponse, Error> {
    let bounds = penalty::month_bounds(policy, month)
        .ok_or_else(|| Error::invalid("month", "must be a month written YYYY-MM"))?;
    let depts = store::departments(conn, month, bounds).await?;
    let u32_of = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    let u64_of = |n: i64| u64::try_from(n).unwrap_or(0);
    let departments: Vec<v1::DepartmentMonthly> = depts
        .into_iter()
        .filter(|(id, _)| department.is_empty() || id == department)
        .map(|(id, d)| {
            let b = penalty::rate_band(policy, u64_of(d.complaints), u64_of(d.volume));
            v1::DepartmentMonthly {
                department_id: id,
                complaints: u32_of(d.complaints),
                business_volume: u64_of(d.volume),
                rate_bp: b.rate_bp().map(|bp| u32::try_from(bp).unwrap_or(u32::MAX)),
                penalty_band: band(policy, &b),
                head_penalty_fen: b.penalty().fen(),
                head_penalty_needs_approval: matches!(b, RateBand::Above { .. }),
                overdue_count: u32_of(d.overdue),
                escalation_count: u32_of(d.escalations),
                repeat_complaint_count: u32_of(d.repeats),
                department_name: d.name,
            }
        })
        .collect();
    let people = store::people(conn, month)
        .await?
        .into_iter()
        .map(|p| v1::PersonMonthly {
            person_id: p.person_id,
            name: p.name,
            department_id: p.department_id,
            complaints: u32_of(p.complaints),
            penalties_fen: p.penalties_fen,
            suspended: p.suspended,
        })
        .filter(|p| department.is_empty() || p.department_id == department)
        .collect();
    let mut report = v1::MonthlyReportResponse {
        month: month.to_owned(),
        departments,
        people,
        csv: Vec::new(),
    };
    if csv {
        report.csv = to_csv(&report).into_bytes();
    }
    Ok(report)
}

/// The CSV header: one table, `row` saying whether a line is a department or a person.
pub const CSV_HEADER: &str = "row,month,department_id,department_name,person_id,name,complaints,\
business_volume,rate_bp,rate_percent,band,head_penalty_fen,head_penalty_needs_approval,\
overdue_count,escalation_count,repeat_complaint_count,penalties_fen,suspended";

/// Quotes a field when it holds a comma, quote or line break (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The report as CSV, header row first, then departments, then people.
pub fn to_csv(r: &v1::MonthlyReportResponse) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    let mut line = |cells: Vec<String>| {
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    };
    for d in &r.departments {
        line(vec![
            "department".into(),
            field(&r.month),
            field(&d.department_id),
            field(&d.department_name),
            String::new(),
            String::new(),
            d.complaints.to_string(),
            d.business_volume.to_string(),
            d.rate_bp.map(|b| b.to_string()).unwrap_or_default(),
            d.rate_bp.map(|b| percent(u64::from(b))).unwrap_or_default(),
            field(
                d.penalty_band
                    .as_ref()
                    .map(|b| b.label.as_str())
                    .unwrap_or(""),
            ),
            d.head_penalty_fen.to_string(),
            d.head_penalty_needs_approval.to_string(),
            d.overdue_count.to_string(),
            d.escalation_count.to_string(),
            d.repeat_complaint_count.to_string(),
            String::new(),
            String::new(),
        ]);
    }
    for p in &r.people {
        line(vec![
            "person".into(),
            field(&r.month),
            field(&p.department_id),
            String::new(),
            field(&p.person_id),
            field(&p.name),
            p.complaints.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            p.penalties_fen.to_string(),
            p.suspended.to_string(),
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_quoting() {
        assert_eq!(percent(80), "0.80%");
        assert_eq!(percent(101), "1.01%");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("plain"), "plain");
    }

    #[test]
    fn bands_have_exact_bounds() {
        let p = Policy::default();
        let b = |n| band(&p, &penalty::rate_band(&p, n, 10_000)).unwrap();
        assert_eq!(b(79).label, "T < 0.80%");
        assert_eq!(b(79).upper_bp, Some(79));
        assert_eq!(b(80).label, "T = 0.80%");
        assert_eq!(b(85).label, "0.80% < T <= 0.85%");
        assert!(!b(85).lower_inclusive);
        assert_eq!(b(100).label, "0.95% < T <= 1.00%");
        assert_eq!(b(101).label, "T > 1.00%");
        assert_eq!(b(101).upper_bp, None);
        assert!(band(&p, &RateBand::NoVolume).is_none());
    }
}
