//! The commands: each checks the caller and the request, then runs the work in one
//! transaction whose commit publishes the events it appended.

use redress_domain::ComplaintId;
use redress_platform::auth::{Identity, Role};
use redress_platform::outbox::Writes;
use redress_proto::v1;
use tonic::Status;

use super::Api;
use crate::access;
use crate::envelope::request_instant;
use crate::error::Error;
use crate::work::revisit_id;

impl Api {
    /// A transaction whose commit also publishes the events it appended.
    async fn begin(&self) -> Result<Writes, Error> {
        Ok(self.work.outbox.begin(&self.pool).await?)
    }

    pub(super) async fn claim(
        &self,
        who: &Identity,
        r: &v1::ClaimRevisitRequest,
    ) -> Result<v1::ClaimRevisitResponse, Status> {
        access::may_make_revisits(who)?;
        let id = revisit_id(&r.revisit_id)?;
        let mut tx = self.begin().await?;
        let revisit = self.work.claim(&mut tx, &id, &who.to_actor()).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(v1::ClaimRevisitResponse {
            revisit: Some(revisit),
        })
    }

    pub(super) async fn outcome(
        &self,
        who: &Identity,
        r: &v1::RecordOutcomeRequest,
    ) -> Result<v1::RecordOutcomeResponse, Status> {
        access::may_make_revisits(who)?;
        let id = revisit_id(&r.revisit_id)?;
        let mut tx = self.begin().await?;
        let (revisit, repeat_complaint) = self
            .work
            .record_outcome(&mut tx, r, &id, &who.to_actor())
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(v1::RecordOutcomeResponse {
            revisit: Some(revisit),
            repeat_complaint,
        })
    }

    pub(super) async fn sign(
        &self,
        who: &Identity,
        r: &v1::SignOffRequest,
    ) -> Result<v1::SignOffResponse, Status> {
        access::may_sign_off(who)?;
        let id = revisit_id(&r.revisit_id)?;
        access::signer(who, &r.manager_id)?;
        let mut tx = self.begin().await?;
        let revisit = self
            .work
            .sign_off(
                &mut tx,
                &id,
                &r.result,
                &who.to_actor(),
                who.role == Role::GeneralManager,
            )
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(v1::SignOffResponse {
            revisit: Some(revisit),
        })
    }

    pub(super) async fn on_site(
        &self,
        who: &Identity,
        r: &v1::RecordOnSiteServiceRequest,
    ) -> Result<v1::RecordOnSiteServiceResponse, Status> {
        access::may_record_on_site(who)?;
        let complaint_id = ComplaintId::parse(&r.complaint_id)
            .map_err(|e| Error::invalid("complaint_id", &e.to_string()))?;
        let served_at = request_instant(r.served_at.as_ref(), "served_at")?;
        let mut tx = self.begin().await?;
        let revisit = self
            .work
            .record_on_site(&mut tx, &complaint_id, served_at, &who.to_actor())
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(v1::RecordOnSiteServiceResponse {
            revisit: Some(revisit),
        })
    }
}
