//! The reads: the agents' work list (`ListDueRevisits`) and the revisit rate
//! (`RevisitRateReport`, DOMAIN §6: "Every complainant is revisited within three days, 100 %";
//! §8: "the revisit rate").

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use redress_domain::revisit::rate_bp;
use redress_platform::pagination::{Key, Kind, Page};
use redress_proto::v1;
use sqlx::{PgPool, Row};

use crate::envelope::{request_instant, ts};
use crate::error::Error;
use crate::view;
use redress_domain::revisit::RevisitKind;

/// Largest page `ListDueRevisits` returns.
pub const MAX_PAGE: u32 = 500;

/// Revisits still to be made, the next call first, keyset-paginated on `(call_at, revisit_id)`.
pub async fn list_due(
    pool: &PgPool,
    req: &v1::ListDueRevisitsRequest,
    reach: &redress_platform::access::Reach,
) -> Result<v1::ListDueRevisitsResponse, Error> {
    let (all, department, actor) = reach.sql();
    let page = Page::read(req.page.as_ref(), MAX_PAGE, &[Kind::Time, Kind::Text])?;
    let before = request_instant(req.due_before.as_ref(), "due_before")?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        crate::revisit_columns!(),
        " FROM revisits r JOIN complaints c USING (complaint_id)
         WHERE r.state IN ('scheduled', 'claimed', 'unreached') AND r.call_at IS NOT NULL
           AND ($1::text IS NULL OR r.agent_id = $1)
           AND ($2::text IS NULL OR c.department_id = $2)
           AND ($3::timestamptz IS NULL OR r.call_at < $3)
           AND ($4::timestamptz IS NULL OR (r.call_at, r.revisit_id) > ($4, $5))
           AND ($7 OR c.department_id = ANY($8) OR r.agent_id = $9)
         ORDER BY r.call_at, r.revisit_id
         LIMIT $6"
    ))
    .bind((!req.agent_id.is_empty()).then_some(&req.agent_id))
    .bind((!req.department_id.is_empty()).then_some(&req.department_id))
    .bind(before)
    .bind(page.time(0))
    .bind(page.text(1))
    .bind(page.fetch())
    .bind(all)
    .bind(department)
    .bind(actor)
    .fetch_all(pool)
    .await?;
    let (rows, next_page_token) = page.finish(rows, |r| {
        Ok::<_, sqlx::Error>(vec![
            Key::Time(r.try_get("call_at")?),
            Key::Text(r.try_get("revisit_id")?),
        ])
    })?;
    let revisits = rows
        .iter()
        .map(view::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(v1::ListDueRevisitsResponse {
        revisits,
        next_page_token,
    })
}

#[derive(Default)]
struct Counts {
    due: u32,
    on_time: u32,
    late: u32,
    missing: u32,
}

/// Revisits due in `[from, to)` (cancelled ones are not due): made on time, made late, not made;
/// and the customers never reached.
pub async fn rate_report(
    pool: &PgPool,
    req: &v1::RevisitRateReportRequest,
) -> Result<v1::RevisitRateReportResponse, Error> {
    let from = request_instant(req.from.as_ref(), "from")?;
    let to = request_instant(req.to.as_ref(), "to")?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(Error::invalid("to", "must be after from"));
    }
    let kind = match v1::RevisitKind::try_from(req.kind) {
        Ok(k) => RevisitKind::try_from(k).ok(),
        Err(_) => return Err(Error::invalid("kind", "unknown revisit kind")),
    };
    let rows = sqlx::query(
        "SELECT r.revisit_id, r.complaint_id, c.number, r.due_at, r.completed_at, r.attempts,
                r.reached, c.customer_name, c.department_id
         FROM revisits r JOIN complaints c USING (complaint_id)
         WHERE r.state <> 'cancelled'
           AND ($1::timestamptz IS NULL OR r.due_at >= $1)
           AND ($2::timestamptz IS NULL OR r.due_at < $2)
           AND ($3::text IS NULL OR c.department_id = $3)
           AND ($4::text IS NULL OR r.kind = $4)
         ORDER BY c.department_id, r.due_at, r.revisit_id",
    )
    .bind(from)
    .bind(to)
    .bind((!req.department_id.is_empty()).then_some(&req.department_id))
    .bind(kind.map(|k| k.as_str()))
    .fetch_all(pool)
    .await?;
    let mut total = Counts::default();
    let mut by_department: BTreeMap<String, Counts> = BTreeMap::new();
    let mut never_reached = Vec::new();
    for r in &rows {
        let department: String = r.try_get("department_id")?;
        let due_at: DateTime<Utc> = r.try_get("due_at")?;
        let completed_at: Option<DateTime<Utc>> = r.try_get("completed_at")?;
        let attempts = u32::try_from(r.try_get::<i32, _>("attempts")?).unwrap_or(0);
        let dept = by_department.entry(department.clone()).or_default();
        for c in [&mut total, dept] {
            c.due += 1;
            match completed_at {
                Some(at) if redress_domain::revisit::on_time(due_at, at) => c.on_time += 1,
                Some(_) => c.late += 1,
                None => c.missing += 1,
            }
        }
        if completed_at.is_none() && attempts > 0 {
            never_reached.push(v1::NeverReached {
                revisit_id: r.try_get("revisit_id")?,
                complaint_id: r.try_get("complaint_id")?,
                complaint_number: r.try_get("number")?,
                due_at: Some(ts(due_at)),
                attempts,
                customer_name: r.try_get("customer_name")?,
                department_id: department,
            });
        }
    }
    Ok(v1::RevisitRateReportResponse {
        due: total.due,
        on_time: total.on_time,
        rate_bp: rate_bp(total.on_time, total.due),
        late: total.late,
        never_reached,
        missing: total.missing,
        by_department: by_department
            .into_iter()
            .map(|(department_id, c)| v1::DepartmentRevisitRate {
                department_id,
                due: c.due,
                on_time: c.on_time,
                late: c.late,
                missing: c.missing,
                rate_bp: rate_bp(c.on_time, c.due),
            })
            .collect(),
    })
}
