//! The reads: the agents' work list (`ListDueRevisits`) and the revisit rate
//! (`RevisitRateReport`, DOMAIN §6: "Every complainant is revisited within three days, 100 %";
//! §8: "the revisit rate").

use std::collections::BTreeMap;

use redress_domain::revisit::{RevisitKind, rate_bp};
use redress_platform::auth::Identity;
use redress_platform::pagination::{Key, Kind, Page};
use redress_proto::v1;

use super::Api;
use crate::access;
use crate::envelope::{request_instant, ts};
use crate::error::Error;
use crate::store::{self, DueFilter, RateFilter};

/// Largest page `ListDueRevisits` returns.
pub const MAX_PAGE: u32 = 500;

/// A filter field that is empty filters nothing.
fn given(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[derive(Default)]
struct Counts {
    due: u32,
    on_time: u32,
    late: u32,
    missing: u32,
}

impl Api {
    /// Revisits still to be made within the caller's reach, the next call first, one page;
    /// the customer masked where the caller may not see them.
    pub(super) async fn due_page(
        &self,
        who: &Identity,
        req: &v1::ListDueRevisitsRequest,
    ) -> Result<v1::ListDueRevisitsResponse, Error> {
        let page = Page::read(req.page.as_ref(), MAX_PAGE, &[Kind::Time, Kind::Text])?;
        let reach = access::list_reach(who);
        let filter = DueFilter {
            agent_id: given(&req.agent_id),
            department_id: given(&req.department_id),
            call_before: request_instant(req.due_before.as_ref(), "due_before")?,
            reach: &reach,
        };
        let rows = store::due(&self.pool, &filter, &page).await?;
        let (rows, next_page_token) = page.finish(rows, |(call_at, r)| {
            Ok::<_, Error>(vec![Key::Time(*call_at), Key::Text(r.revisit_id.clone())])
        })?;
        let mut revisits: Vec<v1::Revisit> = rows.into_iter().map(|(_, r)| r).collect();
        access::mask_customers(who, &mut revisits);
        Ok(v1::ListDueRevisitsResponse {
            revisits,
            next_page_token,
        })
    }

    /// Revisits due in `[from, to)` (cancelled ones are not due): made on time, made late, not
    /// made; and the customers never reached.
    pub(super) async fn rate_report(
        &self,
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
        let filter = RateFilter {
            from,
            to,
            department_id: given(&req.department_id),
            kind,
        };
        let rows = store::rate_rows(&self.pool, &filter).await?;
        let mut total = Counts::default();
        let mut by_department: BTreeMap<String, Counts> = BTreeMap::new();
        let mut never_reached = Vec::new();
        for r in rows {
            let dept = by_department.entry(r.department_id.clone()).or_default();
            for c in [&mut total, dept] {
                c.due += 1;
                match r.completed_at {
                    Some(at) if redress_domain::revisit::on_time(r.due_at, at) => c.on_time += 1,
                    Some(_) => c.late += 1,
                    None => c.missing += 1,
                }
            }
            if r.completed_at.is_none() && r.attempts > 0 {
                never_reached.push(v1::NeverReached {
                    revisit_id: r.revisit_id,
                    complaint_id: r.complaint_id,
                    complaint_number: r.complaint_number,
                    due_at: Some(ts(r.due_at)),
                    attempts: r.attempts,
                    customer_name: r.customer_name,
                    department_id: r.department_id,
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
}
