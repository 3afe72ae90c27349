//! The gRPC door: `RevisitService` for customer-service agents, department managers and
//! reports.

use redress_domain::ComplaintId;
use redress_platform::access::{Place, Reach, Sight};
use redress_platform::auth::{self, Role};
use redress_proto::v1::{self, revisit_service_server::RevisitService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::envelope::request_instant;
use crate::error::Error;
use crate::queries;
use crate::work::{Work, revisit_id};

/// The gRPC service.
pub struct Api {
    pub pool: PgPool,
    pub work: Work,
}

impl Api {
    /// A transaction whose commit also publishes the events it appended.
    async fn begin(&self) -> Result<redress_platform::outbox::Writes, Error> {
        Ok(self.work.outbox.begin(&self.pool).await?)
    }
}

/// Who makes revisits.
const AGENTS: &[Role] = &[Role::CustomerServiceAgent, Role::Operator];

#[tonic::async_trait]
impl RevisitService for Api {
    async fn list_due_revisits(
        &self,
        req: Request<v1::ListDueRevisitsRequest>,
    ) -> Result<Response<v1::ListDueRevisitsResponse>, Status> {
        let who = auth::identity(&req)?;
        let mut page = queries::list_due(&self.pool, req.get_ref(), &Reach::of(&who)).await?;
        for r in &mut page.revisits {
            let sight = Sight::of(&who, Place::new(&r.department_id, &r.agent_id));
            r.customer_name = sight.show(&r.customer_name);
            r.customer_phone = sight.show(&r.customer_phone);
        }
        Ok(Response::new(page))
    }

    async fn claim_revisit(
        &self,
        req: Request<v1::ClaimRevisitRequest>,
    ) -> Result<Response<v1::ClaimRevisitResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, AGENTS)?;
        let id = revisit_id(&req.get_ref().revisit_id)?;
        let mut tx = self.begin().await?;
        let revisit = self.work.claim(&mut tx, &id, &who.to_actor()).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(v1::ClaimRevisitResponse {
            revisit: Some(revisit),
        }))
    }

    async fn record_outcome(
        &self,
        req: Request<v1::RecordOutcomeRequest>,
    ) -> Result<Response<v1::RecordOutcomeResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, AGENTS)?;
        let id = revisit_id(&req.get_ref().revisit_id)?;
        let mut tx = self.begin().await?;
        let (revisit, repeat_complaint) = self
            .work
            .record_outcome(&mut tx, req.get_ref(), &id, &who.to_actor())
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(v1::RecordOutcomeResponse {
            revisit: Some(revisit),
            repeat_complaint,
        }))
    }

    async fn sign_off(
        &self,
        req: Request<v1::SignOffRequest>,
    ) -> Result<Response<v1::SignOffResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::DepartmentManager, Role::GeneralManager])?;
        let r = req.get_ref();
        let id = revisit_id(&r.revisit_id)?;
        if !r.manager_id.is_empty() && r.manager_id != who.actor_id {
            return Err(Error::invalid("manager_id", "managers sign for themselves only").into());
        }
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
        Ok(Response::new(v1::SignOffResponse {
            revisit: Some(revisit),
        }))
    }

    async fn revisit_rate_report(
        &self,
        req: Request<v1::RevisitRateReportRequest>,
    ) -> Result<Response<v1::RevisitRateReportResponse>, Status> {
        auth::identity(&req)?;
        Ok(Response::new(
            queries::rate_report(&self.pool, req.get_ref()).await?,
        ))
    }

    async fn record_on_site_service(
        &self,
        req: Request<v1::RecordOnSiteServiceRequest>,
    ) -> Result<Response<v1::RecordOnSiteServiceResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(
            &who,
            &[
                Role::CustomerServiceAgent,
                Role::Handler,
                Role::DepartmentManager,
                Role::Operator,
                Role::Integration,
            ],
        )?;
        let r = req.get_ref();
        let complaint_id = ComplaintId::parse(&r.complaint_id)
            .map(|id| id.to_string())
            .map_err(|e| Error::invalid("complaint_id", &e.to_string()))?;
        let served_at = request_instant(r.served_at.as_ref(), "served_at")?;
        let mut tx = self.begin().await?;
        let revisit = self
            .work
            .record_on_site(&mut tx, &complaint_id, served_at, &who.to_actor())
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(v1::RecordOnSiteServiceResponse {
            revisit: Some(revisit),
        }))
    }
}
