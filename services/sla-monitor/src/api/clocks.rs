//! The gRPC door: `SlaMonitorService` — a complaint's clocks, the at-risk and overdue lists,
//! and special reasons.

use redress_platform::request::complaint_id;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_domain::sla::{ClockKind, ClockState};
use redress_domain::{Class, Clock, Policy};
use redress_platform::access::{self, Place, Reach};
use redress_platform::auth::{self, Identity, Role};
use redress_platform::outbox::Outbox;
use redress_proto::v1::{self, event::Payload, sla_monitor_service_server::SlaMonitorService};
use sqlx::PgPool;
use sqlx::postgres::PgRow;
use tonic::{Request, Response, Status};

use crate::envelope::{PRODUCER, time, ts};
use crate::error::Error;
use crate::store::{self, CLOCK_COLUMNS, Complaint, StoredClock, Wakeup};
use redress_platform::pagination::{Key, Kind, Page};
use redress_proto::Wire as _;
use redress_proto::convert::class_letter_to_wire;

/// The gRPC service.
pub struct Api {
    pub pool: PgPool,
    pub outbox: Outbox,
    pub clock: Arc<dyn Clock>,
    pub policy: Arc<Policy>,
    pub wakeup: Arc<Wakeup>,
}

/// Largest page the lists return.
pub const MAX_PAGE: u32 = 500;

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

/// Filters shared by the two lists.
struct Filter<'a> {
    /// What the caller may see (docs/access.md).
    reach: Reach,
    department_id: &'a str,
    class: i32,
    handler_id: &'a str,
    page: Option<&'a v1::PageRequest>,
}

impl<'a> Filter<'a> {
    fn new(
        who: &Identity,
        department_id: &'a str,
        class: i32,
        handler_id: &'a str,
        page: Option<&'a v1::PageRequest>,
    ) -> Self {
        Self {
            reach: Reach::of(who),
            department_id,
            class,
            handler_id,
            page,
        }
    }
}

impl Api {
    /// Clocks in `state`, earliest due first (least time left, or most overdue), keyset-paged
    /// on `(due_at, complaint_id, kind, key)` so a deep page costs what the first does.
    async fn list(
        &self,
        state: ClockState,
        f: Filter<'_>,
    ) -> Result<(Vec<v1::SlaItem>, String), Error> {
        let page = Page::read(
            f.page,
            MAX_PAGE,
            &[Kind::Time, Kind::Text, Kind::Text, Kind::Text],
        )?;
        let class = match v1::Class::try_from(f.class) {
            Ok(v1::Class::Unspecified) => None,
            Ok(c) => Class::from_wire(c as i32).map(|c| c.as_str()),
            Err(_) => return Err(Error::invalid("class", "unknown class")),
        };
        let reach = f.reach.sql();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLOCK_COLUMNS}, p.number, p.class, p.department_id, p.acceptance_owner_id,
                    p.handler_id, p.responsible_person_id
             FROM clocks c LEFT JOIN complaints p ON p.complaint_id = c.complaint_id
             WHERE c.state = $1
               AND ($2::text IS NULL OR p.department_id = $2)
               AND ($3::text IS NULL OR p.class = $3)
               AND ($4::text IS NULL OR p.handler_id = $4 OR p.responsible_person_id = $4
                    OR c.agent_id = $4 OR (c.kind = 'acceptance' AND p.acceptance_owner_id = $4))
               AND ($5::timestamptz IS NULL
                    OR (c.due_at, c.complaint_id, c.kind, c.key) > ($5, $6, $7, $8))
               AND ($10 OR p.department_id = ANY($11) OR p.handler_id = $12)
             ORDER BY c.due_at, c.complaint_id, c.kind, c.key
             LIMIT $9"
        )))
        .bind(state.as_str())
        .bind((!f.department_id.is_empty()).then_some(f.department_id))
        .bind(class)
        .bind((!f.handler_id.is_empty()).then_some(f.handler_id))
        .bind(page.time(0))
        .bind(page.text(1))
        .bind(page.text(2))
        .bind(page.text(3))
        .bind(page.fetch())
        .bind(reach.0)
        .bind(reach.1)
        .bind(reach.2)
        .fetch_all(&self.pool)
        .await?;
        let now = self.clock.now();
        let (rows, token) = page.finish(rows, |r| {
            let c = StoredClock::from_row(r)?;
            Ok::<_, sqlx::Error>(vec![
                Key::Time(c.clock.due_at),
                Key::Text(c.complaint_id),
                Key::Text(c.clock.kind.as_str().to_owned()),
                Key::Text(c.key),
            ])
        })?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let (c, complaint) = row(r)?;
            items.push(v1::SlaItem {
                complaint_id: c.complaint_id.clone(),
                complaint_number: complaint.number.clone(),
                class: class_letter_to_wire(&complaint.class),
                department_id: complaint.department_id.clone(),
                handler_id: complaint.handler_id.clone(),
                clock: Some(status(&c, &complaint, now)),
            });
        }
        Ok((items, token))
    }
}

fn row(r: &PgRow) -> Result<(StoredClock, Complaint), Error> {
    Ok((StoredClock::from_row(r)?, Complaint::from_row(r)?))
}

#[tonic::async_trait]
impl SlaMonitorService for Api {
    async fn get_sla_status(
        &self,
        req: Request<v1::GetSlaStatusRequest>,
    ) -> Result<Response<v1::GetSlaStatusResponse>, Status> {
        let who = auth::identity(&req)?;
        let id = complaint_id(&req.get_ref().complaint_id).map_err(Error::from)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLOCK_COLUMNS}, p.number, p.class, p.department_id, p.acceptance_owner_id,
                    p.handler_id, p.responsible_person_id
             FROM clocks c LEFT JOIN complaints p ON p.complaint_id = c.complaint_id
             WHERE c.complaint_id = $1
             ORDER BY array_position(ARRAY['acceptance','first_feedback','completion',
                'intermediate_result','revisit'], c.kind), c.due_at, c.key"
        )))
        .bind(&id)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::from)?;
        if rows.is_empty() {
            return Err(Error::NotFound(format!("complaint {id}")).into());
        }
        let now = self.clock.now();
        let mut clocks = Vec::with_capacity(rows.len());
        let mut complaint = Complaint::default();
        for r in &rows {
            let (c, p) = row(r)?;
            clocks.push(status(&c, &p, now));
            complaint = p;
        }
        access::require_reach(
            &who,
            Place::new(&complaint.department_id, &complaint.handler_id),
            &id,
        )?;
        Ok(Response::new(v1::GetSlaStatusResponse {
            complaint_id: id,
            complaint_number: complaint.number,
            class: class_letter_to_wire(&complaint.class),
            department_id: complaint.department_id,
            clocks,
        }))
    }

    async fn list_at_risk(
        &self,
        req: Request<v1::ListAtRiskRequest>,
    ) -> Result<Response<v1::ListAtRiskResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.get_ref();
        let f = Filter::new(
            &who,
            &r.department_id,
            r.class,
            &r.handler_id,
            r.page.as_ref(),
        );
        let (items, next_page_token) = self.list(ClockState::Warned, f).await?;
        Ok(Response::new(v1::ListAtRiskResponse {
            items,
            next_page_token,
        }))
    }

    async fn list_overdue(
        &self,
        req: Request<v1::ListOverdueRequest>,
    ) -> Result<Response<v1::ListOverdueResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.get_ref();
        let f = Filter::new(
            &who,
            &r.department_id,
            r.class,
            &r.handler_id,
            r.page.as_ref(),
        );
        let (items, next_page_token) = self.list(ClockState::Overdue, f).await?;
        Ok(Response::new(v1::ListOverdueResponse {
            items,
            next_page_token,
        }))
    }

    /// DOMAIN §4: "A special reason is recorded with who approved it; an approved reason means
    /// no such record." Repeating the same request changes nothing and emits nothing.
    async fn record_special_reason(
        &self,
        req: Request<v1::RecordSpecialReasonRequest>,
    ) -> Result<Response<v1::RecordSpecialReasonResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::DepartmentManager, Role::GeneralManager])?;
        let r = req.into_inner();
        let id = complaint_id(&r.complaint_id).map_err(Error::from)?;
        let kind = ClockKind::from_wire(r.clock)
            .ok_or_else(|| Error::invalid("clock", "must name a clock"))?;
        let reason = r.reason.trim();
        if reason.is_empty() {
            return Err(Error::invalid("reason", "is required").into());
        }
        if reason.chars().count() > self.policy.fields.reason {
            return Err(Error::invalid(
                "reason",
                &format!("is longer than {} characters", self.policy.fields.reason),
            )
            .into());
        }
        // The approver is the authenticated caller, never a name typed in (issue 17: a
        // department manager could record "approved by gm-1"): an approved reason cancels a
        // fine. Left empty, it is the caller; naming anybody else is refused.
        let approved_by = match r.approved_by.trim() {
            "" => who.actor_id.as_str(),
            named if named == who.actor_id => named,
            _ => {
                return Err(Error::invalid(
                    "approved_by",
                    "must be the caller: a special reason is approved by whoever records it",
                )
                .into());
            }
        };
        let extended = match &r.extended_due_at {
            None => None,
            Some(t) => Some(
                time(Some(t))
                    .ok_or_else(|| Error::invalid("extended_due_at", "is not a valid timestamp"))?,
            ),
        };
        let mut tx = self.outbox.begin(&self.pool).await.map_err(Error::from)?;
        // A manager approves special reasons for their own department only.
        let place = store::complaint(&mut tx, &id)
            .await
            .map_err(Error::from)?
            .unwrap_or_default();
        if !access::acts_for_department(&who, Place::new(&place.department_id, &place.handler_id)) {
            return Err(access::outside(&who, &id));
        }
        let mut clocks: Vec<StoredClock> = store::load_all(&mut tx, &id)
            .await
            .map_err(Error::from)?
            .into_iter()
            .filter(|c| c.clock.kind == kind)
            .collect();
        // A complaint may have several revisits: the reason covers its open ones.
        if kind == ClockKind::Revisit {
            clocks.retain(|c| c.clock.state.is_open());
        }
        let Some(first) = clocks.first() else {
            return Err(
                Error::NotFound(format!("{} clock of complaint {id}", kind.as_str())).into(),
            );
        };
        if !first.clock.state.is_open() {
            return Err(Error::FailedPrecondition(format!(
                "the {} clock is {}; a special reason applies to a running or overdue clock",
                kind.as_str(),
                first.clock.state.as_str()
            ))
            .into());
        }
        if extended.is_some_and(|due| due <= first.clock.due_at) {
            return Err(Error::invalid(
                "extended_due_at",
                "must be later than the clock's current due time",
            )
            .into());
        }
        let unchanged = clocks.iter().all(|c| {
            c.special_reason == reason
                && c.special_reason_by == approved_by
                && extended.is_none_or(|d| d == c.clock.due_at)
        });
        if !unchanged {
            for c in clocks.iter_mut() {
                c.special_reason = reason.to_owned();
                c.special_reason_by = approved_by.to_owned();
                if let Some(due) = extended {
                    c.clock.reschedule(&self.policy, due);
                }
            }
            store::save(&mut tx, &clocks, &self.wakeup)
                .await
                .map_err(Error::from)?;
            let recorded = PRODUCER.event(
                &id,
                self.clock.now(),
                &who.to_actor(),
                "",
                Payload::SpecialReasonRecorded(v1::SpecialReasonRecorded {
                    clock: kind.to_wire(),
                    reason: reason.to_owned(),
                    approved_by: approved_by.to_owned(),
                    extended_due_at: extended.map(ts),
                }),
            );
            self.outbox
                .append(&mut tx, &[recorded])
                .await
                .map_err(Error::from)?;
        }
        let complaint = store::complaint(&mut tx, &id)
            .await
            .map_err(Error::from)?
            .unwrap_or_default();
        tx.commit().await.map_err(Error::from)?;
        let shown = clocks
            .first()
            .map(|c| status(c, &complaint, self.clock.now()));
        Ok(Response::new(v1::RecordSpecialReasonResponse {
            clock: shown,
        }))
    }
}
