//! The monthly complaint analysis (DOMAIN §7, §8): per department the complaints, business
//! volume, complaint rate T and the department head's penalty band; per person the complaints
//! counted, penalties and suspension — as structured fields and as CSV.

use std::collections::BTreeMap;

use redress_domain::{Policy, RateBand, penalty};
use redress_proto::v1;
use sqlx::{PgPool, Row};

use crate::error::Error;

/// `12345` basis points as `123.45%`.
fn percent(bp: u64) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

/// The band of DOMAIN §7's table T falls in, with its bounds; `None` without a rate.
fn band(policy: &Policy, b: &RateBand) -> Option<v1::PenaltyBand> {
    let table = &policy.complaint_rate;
    let threshold = u64::from(table.threshold_bp);
    let to32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    Some(match *b {
        RateBand::NoVolume => return None,
        RateBand::Below { .. } => v1::PenaltyBand {
            label: format!("T < {}", percent(threshold)),
            lower_bp: 0,
            lower_inclusive: true,
            upper_bp: Some(to32(threshold.saturating_sub(1))),
        },
        RateBand::AtThreshold { .. } => v1::PenaltyBand {
            label: format!("T = {}", percent(threshold)),
            lower_bp: to32(threshold),
            lower_inclusive: true,
            upper_bp: Some(to32(threshold)),
        },
        RateBand::Band {
            above_bp, up_to_bp, ..
        } => v1::PenaltyBand {
            label: format!("{} < T <= {}", percent(above_bp), percent(up_to_bp)),
            lower_bp: to32(above_bp),
            lower_inclusive: false,
            upper_bp: Some(to32(up_to_bp)),
        },
        RateBand::Above { .. } => {
            let last = table
                .bands
                .last()
                .map_or(threshold, |b| u64::from(b.up_to_bp));
            v1::PenaltyBand {
                label: format!("T > {}", percent(last)),
                lower_bp: to32(last),
                lower_inclusive: false,
                upper_bp: None,
            }
        }
    })
}

#[derive(Default)]
struct Dept {
    name: String,
    complaints: i64,
    volume: i64,
    overdue: i64,
    escalations: i64,
    repeats: i64,
}

/// What a tally's query binds: the month's text (`$1`), or its instants (`$1`, `$2`).
enum By<'a> {
    Month(&'a str),
    Instants(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
}

/// Adds `(department, count)` rows to one column of the department lines.
async fn tally(
    pool: &PgPool,
    sql: &'static str,
    by: By<'_>,
    depts: &mut BTreeMap<String, Dept>,
    set: fn(&mut Dept, i64),
) -> Result<(), Error> {
    let q = sqlx::query(sql);
    let q = match by {
        By::Month(m) => q.bind(m.to_owned()),
        By::Instants(a, b) => q.bind(a).bind(b),
    };
    let rows = q.fetch_all(pool).await?;
    for r in rows {
        let d: String = r.try_get(0)?;
        let n: i64 = r.try_get(1)?;
        set(depts.entry(d).or_default(), n);
    }
    Ok(())
}

/// Builds the report for `month` (`YYYY-MM`), optionally for one department.
pub async fn monthly(
    pool: &PgPool,
    policy: &Policy,
    month: &str,
    department: &str,
    csv: bool,
) -> Result<v1::MonthlyReportResponse, Error> {
    let bounds = penalty::month_bounds(policy, month)
        .ok_or_else(|| Error::invalid("month", "must be a month written YYYY-MM"))?;
    let mut depts: BTreeMap<String, Dept> = BTreeMap::new();
    tally(
        pool,
        "SELECT department_id, count(*) FROM complaints
         WHERE received_at >= $1 AND received_at < $2
           AND department_id <> '' GROUP BY 1",
        By::Instants(bounds.0, bounds.1),
        &mut depts,
        |d, n| d.complaints = n,
    )
    .await?;
    tally(
        pool,
        "SELECT department_id, volume FROM business_volumes
         WHERE month = $1",
        By::Month(month),
        &mut depts,
        |d, n| d.volume = n,
    )
    .await?;
    tally(
        pool,
        "SELECT department_id, count(*) FROM overdues
         WHERE month = $1
           AND department_id <> '' GROUP BY 1",
        By::Month(month),
        &mut depts,
        |d, n| d.overdue = n,
    )
    .await?;
    tally(
        pool,
        "SELECT department_id, count(*) FROM escalations
         WHERE raised_at >= $1 AND raised_at < $2
           AND department_id <> '' GROUP BY 1",
        By::Instants(bounds.0, bounds.1),
        &mut depts,
        |d, n| d.escalations = n,
    )
    .await?;
    tally(
        pool,
        "SELECT department_id, count(*) FROM repeats
         WHERE month = $1
           AND department_id <> '' GROUP BY 1",
        By::Month(month),
        &mut depts,
        |d, n| d.repeats = n,
    )
    .await?;
    for r in sqlx::query("SELECT department_id, name FROM departments")
        .fetch_all(pool)
        .await?
    {
        let id: String = r.try_get(0)?;
        if let Some(d) = depts.get_mut(&id) {
            d.name = r.try_get(1)?;
        }
    }
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
    let people = sqlx::query(
        "SELECT l.person_id, COALESCE(max(s.name), '') AS name,
                COALESCE(max(s.department_id), max(l.department_id)) AS department_id,
                count(*) FILTER (WHERE l.counts) AS complaints,
                sum(l.amount_fen)::BIGINT AS penalties,
                bool_or(pm.suspended_at IS NOT NULL) AS suspended
         FROM ledger_entries l
         LEFT JOIN staff s ON s.staff_id = l.person_id
         LEFT JOIN person_months pm ON pm.person_id = l.person_id AND pm.month = l.month
         WHERE l.month = $1
         GROUP BY l.person_id ORDER BY l.person_id",
    )
    .bind(month)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(v1::PersonMonthly {
            person_id: r.try_get("person_id")?,
            name: r.try_get("name")?,
            department_id: r.try_get("department_id")?,
            complaints: u32_of(r.try_get("complaints")?),
            penalties_fen: r.try_get("penalties")?,
            suspended: r.try_get::<Option<bool>, _>("suspended")?.unwrap_or(false),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?
    .into_iter()
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
