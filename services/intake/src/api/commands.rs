//! The commands: submit a complaint, confirm it with the customer, override its class. Each
//! runs in one transaction whose commit publishes the events it appended.

use redress_domain::{Class, ComplaintId};
use redress_platform::access::Place;
use redress_platform::auth::Identity;
use redress_platform::outbox::Writes;
use redress_proto::Wire as _;
use redress_proto::v1;
use tonic::Status;

use super::{Api, typed_complaint_id};
use crate::access::{self, Scope};
use crate::error::Error;
use crate::{store, submission};

impl Api {
    /// A transaction whose commit also publishes the events it appended.
    async fn begin(&self) -> Result<Writes, Error> {
        Ok(self.recorder.outbox.begin(&self.pool).await?)
    }

    /// Refuses `who`, when `scope` holds their role to their department, unless the complaint
    /// is their department's (`NotFound` when there is no such complaint).
    async fn require_department(
        &self,
        who: &Identity,
        id: &ComplaintId,
        scope: &Scope,
    ) -> Result<(), Status> {
        if !scope.department_only(who) {
            return Ok(());
        }
        let (department, assignee) = store::place(&self.pool, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("complaint {id}")))?;
        access::require_department(who, Place::new(&department, &assignee), id)
    }

    pub(super) async fn submit_as(
        &self,
        who: &Identity,
        req: v1::SubmitRequest,
    ) -> Result<v1::Acknowledgement, Status> {
        redress_platform::auth::require(who, access::SUBMIT)?;
        let details = req
            .details
            .ok_or_else(|| Error::invalid("details", "is required"))?;
        let record = submission::validate(&self.recorder.policy, &details, self.recorder.now())
            .map_err(|v| {
                metrics::counter!("redress_intake_rejected_total", "door" => "grpc").increment(1);
                Error::Invalid(v)
            })?;
        let mut tx = self.begin().await?;
        let ack = self
            .recorder
            .record(&mut tx, &details, record, &who.to_actor())
            .await?;
        tx.commit().await.map_err(Error::from)?;
        if !ack.duplicate {
            metrics::counter!("redress_intake_recorded_total", "door" => "grpc").increment(1);
        }
        tracing::info!(complaint_id = %ack.complaint_id, duplicate = ack.duplicate, "submitted");
        Ok(ack)
    }

    pub(super) async fn confirm_as(
        &self,
        who: &Identity,
        req: v1::ConfirmRequest,
    ) -> Result<v1::ConfirmResponse, Status> {
        access::CONFIRM.require_role(who)?;
        let id = typed_complaint_id(&req.complaint_id)?;
        self.require_department(who, &id, &access::CONFIRM).await?;
        let confirmation = req
            .confirmation
            .ok_or_else(|| Error::invalid("confirmation", "is required"))?;
        let mut tx = self.begin().await?;
        let resp = self
            .recorder
            .confirm(&mut tx, &id, &confirmation, &who.to_actor())
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(resp)
    }

    pub(super) async fn reclassify_as(
        &self,
        who: &Identity,
        req: v1::ReclassifyRequest,
    ) -> Result<v1::ReclassifyResponse, Status> {
        access::RECLASSIFY.require_role(who)?;
        let id = typed_complaint_id(&req.complaint_id)?;
        self.require_department(who, &id, &access::RECLASSIFY)
            .await?;
        let to = Class::from_wire(req.class)
            .ok_or_else(|| Error::invalid("class", "must be A, B, C or D"))?;
        let mut tx = self.begin().await?;
        let resp = self
            .recorder
            .reclassify(&mut tx, &id, to, &req.reason, &who.to_actor())
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(resp)
    }
}
