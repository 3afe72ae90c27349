//! Recording a special reason for a missed or missing limit (DOMAIN §4: "A special reason is
//! recorded with who approved it; an approved reason means no such record"). Repeating the
//! same request changes nothing and emits nothing.

use redress_domain::sla::ClockKind;
use redress_platform::access::Place;
use redress_platform::auth::Identity;
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use tonic::Status;

use super::{Api, typed_complaint_id};
use crate::access;
use crate::envelope::{PRODUCER, time, ts};
use crate::error::Error;
use crate::store::{self, StoredClock};

impl Api {
    /// Records the reason on the clock of the kind asked (every open one, for revisits) and
    /// returns the first as it now stands.
    pub(super) async fn record(
        &self,
        who: &Identity,
        r: v1::RecordSpecialReasonRequest,
    ) -> Result<Option<v1::ClockStatus>, Status> {
        access::may_record_special_reason(who)?;
        let id = typed_complaint_id(&r.complaint_id)?;
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
        let approved_by = access::approver(who, &r.approved_by)?;
        let extended = match &r.extended_due_at {
            None => None,
            Some(t) => Some(
                time(Some(t))
                    .ok_or_else(|| Error::invalid("extended_due_at", "is not a valid timestamp"))?,
            ),
        };
        let mut tx = self.outbox.begin(&self.pool).await.map_err(Error::from)?;
        let place = store::complaint(&mut tx, &id)
            .await
            .map_err(Error::from)?
            .unwrap_or_default();
        access::may_approve_for(
            who,
            Place::new(&place.department_id, &place.handler_id),
            &id,
        )?;
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
                id.as_str(),
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
        Ok(clocks
            .first()
            .map(|c| super::status(c, &complaint, self.clock.now())))
    }
}
