//! Reading clocks: one complaint's, and the at-risk and overdue lists across complaints.

use chrono::{DateTime, Utc};
use redress_domain::sla::ClockState;
use redress_domain::{Class, ComplaintId};
use redress_platform::access::Place;
use redress_platform::auth::Identity;
use redress_platform::pagination::{Key, Kind, Page};
use redress_proto::Wire as _;
use redress_proto::convert::class_letter_to_wire;
use redress_proto::v1;
use tonic::Status;

use super::{Api, MAX_PAGE};
use crate::access;
use crate::envelope::ts;
use crate::error::Error;
use crate::store::{self, ClockFilter, Complaint, StoredClock};

/// One clock as the API shows it at `now`.
pub fn status(c: &StoredClock, complaint: &Complaint, now: DateTime<Utc>) -> v1::ClockStatus {
    let left = if c.clock.state.is_open() {
        c.clock.due_at - now
    } else {
        chrono::Duration::zero()
    };
    v1::ClockStatus {
        clock: c.clock.kind.to_wire(),
        due_at: Some(ts(c.clock.due_at)),
        time_left: Some(prost_types::Duration {
            seconds: left.num_seconds(),
            nanos: (left - chrono::Duration::seconds(left.num_seconds()))
                .num_nanoseconds()
                .unwrap_or(0) as i32,
        }),
        state: c.clock.state.to_wire(),
        responsible_person_id: complaint.responsible_for(c),
        started_at: Some(ts(c.clock.started_at)),
        warned_at: c.clock.warned_at.map(ts),
        met_at: c.clock.met_at.map(ts),
        overdue_days: if c.clock.kind.per_day() {
            c.clock.overdue_days
        } else {
            0
        },
        special_reason: c.special_reason.clone(),
        special_reason_approved_by: c.special_reason_by.clone(),
    }
}

/// The filters the at-risk and overdue requests share (empty or unspecified: no filter).
pub(super) trait ListRequest {
    /// Department, class, person and page, as the request gives them.
    fn filters(&self) -> (&str, i32, &str, Option<&v1::PageRequest>);
}

macro_rules! list_request {
    ($($request:ty),*) => {$(
        impl ListRequest for $request {
            fn filters(&self) -> (&str, i32, &str, Option<&v1::PageRequest>) {
                (&self.department_id, self.class, &self.handler_id, self.page.as_ref())
            }
        }
    )*};
}

list_request!(v1::ListAtRiskRequest, v1::ListOverdueRequest);

/// A filter field that is empty filters nothing.
fn given(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl Api {
    /// A complaint's clocks; refused when the complaint is outside the caller's reach.
    pub(super) async fn sla_status(
        &self,
        who: &Identity,
        id: &ComplaintId,
    ) -> Result<v1::GetSlaStatusResponse, Status> {
        let rows = store::clocks_of(&self.pool, id)
            .await
            .map_err(Error::from)?;
        if rows.is_empty() {
            return Err(Error::NotFound(format!("complaint {id}")).into());
        }
        let now = self.clock.now();
        let mut clocks = Vec::with_capacity(rows.len());
        let mut complaint = Complaint::default();
        for (c, p) in &rows {
            clocks.push(status(c, p, now));
            complaint = p.clone();
        }
        access::may_see(
            who,
            Place::new(&complaint.department_id, &complaint.handler_id),
            id,
        )?;
        Ok(v1::GetSlaStatusResponse {
            complaint_id: id.to_string(),
            complaint_number: complaint.number,
            class: class_letter_to_wire(&complaint.class),
            department_id: complaint.department_id,
            clocks,
        })
    }

    /// Clocks in `state`, earliest due first (least time left, or most overdue), one page.
    pub(super) async fn list(
        &self,
        state: ClockState,
        who: &Identity,
        r: &impl ListRequest,
    ) -> Result<(Vec<v1::SlaItem>, String), Error> {
        let (department_id, class, person_id, page) = r.filters();
        let page = Page::read(
            page,
            MAX_PAGE,
            &[Kind::Time, Kind::Text, Kind::Text, Kind::Text],
        )?;
        let class = match v1::Class::try_from(class) {
            Ok(v1::Class::Unspecified) => None,
            Ok(c) => Class::from_wire(c as i32),
            Err(_) => return Err(Error::invalid("class", "unknown class")),
        };
        let reach = access::list_reach(who);
        let filter = ClockFilter {
            state,
            department_id: given(department_id),
            class,
            person_id: given(person_id),
            reach: &reach,
        };
        let rows = store::list(&self.pool, &filter, &page).await?;
        let now = self.clock.now();
        let (rows, token) = page.finish(rows, |(c, _)| {
            Ok::<_, Error>(vec![
                Key::Time(c.clock.due_at),
                Key::Text(c.complaint_id.clone()),
                Key::Text(c.clock.kind.as_str().to_owned()),
                Key::Text(c.key.clone()),
            ])
        })?;
        let items = rows
            .iter()
            .map(|(c, complaint)| v1::SlaItem {
                complaint_id: c.complaint_id.clone(),
                complaint_number: complaint.number.clone(),
                class: class_letter_to_wire(&complaint.class),
                department_id: complaint.department_id.clone(),
                handler_id: complaint.handler_id.clone(),
                clock: Some(status(c, complaint, now)),
            })
            .collect();
        Ok((items, token))
    }
}
