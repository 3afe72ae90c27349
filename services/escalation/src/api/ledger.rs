//! The ledger's two inputs that come from people rather than events: a department's business
//! volume for a month (the complaint rate's divisor, DOMAIN §7) and a manager's finding of
//! neglect, which doubles a repeat complaint's fine when no limit was missed (DOMAIN §9).

use redress_domain::ComplaintId;
use redress_platform::auth::Identity;
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use tonic::Status;

use super::Api;
use crate::access;
use crate::envelope::PRODUCER;
use crate::error::Error;
use crate::store::ledger as store;

impl Api {
    pub(super) async fn set_volume(
        &self,
        who: &Identity,
        r: v1::SetBusinessVolumeRequest,
    ) -> Result<v1::SetBusinessVolumeResponse, Status> {
        access::may_set_business_volume(who)?;
        let department = r.department_id.trim();
        if department.is_empty() {
            return Err(Error::invalid("department_id", "is required").into());
        }
        if redress_domain::penalty::month_bounds(&self.ladder.policy, &r.month).is_none() {
            return Err(Error::invalid("month", "must be a month written YYYY-MM").into());
        }
        let volume = i64::try_from(r.volume)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| Error::invalid("volume", "must be between 1 and 2^63-1"))?;
        let now = self.now();
        let mut tx = self.begin().await?;
        let previous =
            store::set_business_volume(&mut tx, department, &r.month, volume, &who.actor_id, now)
                .await
                .map_err(Error::from)?;
        let previous_volume = previous.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
        // The board shows the rate bands from this event; it commits with the volume.
        let entered = Payload::BusinessVolumeEntered(v1::BusinessVolumeEntered {
            department_id: department.to_owned(),
            month: r.month.clone(),
            volume: r.volume,
            previous_volume,
        });
        let event = PRODUCER.event("", now, &who.to_actor(), "", entered);
        self.ladder
            .outbox
            .append(&mut tx, &[event])
            .await
            .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        Ok(v1::SetBusinessVolumeResponse { previous_volume })
    }

    pub(super) async fn find_neglect(
        &self,
        who: &Identity,
        r: v1::RecordNeglectFindingRequest,
    ) -> Result<v1::RecordNeglectFindingResponse, Status> {
        access::may_find_neglect(who)?;
        let original = ComplaintId::parse(r.original_complaint_id.trim())
            .map_err(|e| Error::invalid("original_complaint_id", &e.to_string()))?;
        let finding = r.finding.trim();
        if finding.is_empty() {
            return Err(Error::invalid("finding", "is required").into());
        }
        let mut tx = self.begin().await?;
        let repeat = store::first_repeat(&mut tx, &original)
            .await
            .map_err(Error::from)?;
        if let Some(repeat) = &repeat {
            access::may_find_neglect_in(who, &repeat.department_id, &original)?;
        }
        let Some(repeat) = repeat else {
            return Err(Error::FailedPrecondition(format!(
                "no repeat complaint is recorded about {original}"
            ))
            .into());
        };
        if repeat.person_id.is_empty() || redress_domain::Class::from_wire(repeat.class).is_none() {
            return Err(Error::FailedPrecondition(format!(
                "the repeat complaint about {original} names no responsible person or class"
            ))
            .into());
        }
        let (extra, newly_booked) = self
            .ledger
            .double(
                &mut tx,
                &original,
                &repeat.person_id,
                repeat.class,
                "",
                &format!("neglect finding by {}: {finding}", who.actor_id),
                self.now(),
                &who.to_actor(),
            )
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(v1::RecordNeglectFindingResponse {
            person_id: repeat.person_id,
            extra_fen: extra.fen(),
            newly_booked,
        })
    }
}
