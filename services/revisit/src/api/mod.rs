//! The gRPC door: `RevisitService` for customer-service agents, department managers and
//! reports. Each RPC reads the caller and hands the request to the file of its concern.
//!
//! - [`calls`]: the commands (claim, outcome, sign-off, on-site service).
//! - [`reports`]: the agents' work list and the revisit-rate report.

mod calls;
mod reports;

use redress_platform::auth;
use redress_proto::v1::{self, revisit_service_server::RevisitService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::work::Work;

pub use reports::MAX_PAGE;

/// The gRPC service.
pub struct Api {
    pub pool: PgPool,
    pub work: Work,
}

#[tonic::async_trait]
impl RevisitService for Api {
    async fn list_due_revisits(
        &self,
        req: Request<v1::ListDueRevisitsRequest>,
    ) -> Result<Response<v1::ListDueRevisitsResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(self.due_page(&who, req.get_ref()).await?))
    }

    async fn claim_revisit(
        &self,
        req: Request<v1::ClaimRevisitRequest>,
    ) -> Result<Response<v1::ClaimRevisitResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(self.claim(&who, req.get_ref()).await?))
    }

    async fn record_outcome(
        &self,
        req: Request<v1::RecordOutcomeRequest>,
    ) -> Result<Response<v1::RecordOutcomeResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(self.outcome(&who, req.get_ref()).await?))
    }

    async fn sign_off(
        &self,
        req: Request<v1::SignOffRequest>,
    ) -> Result<Response<v1::SignOffResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(self.sign(&who, req.get_ref()).await?))
    }

    async fn revisit_rate_report(
        &self,
        req: Request<v1::RevisitRateReportRequest>,
    ) -> Result<Response<v1::RevisitRateReportResponse>, Status> {
        auth::identity(&req)?;
        Ok(Response::new(self.rate_report(req.get_ref()).await?))
    }

    async fn record_on_site_service(
        &self,
        req: Request<v1::RecordOnSiteServiceRequest>,
    ) -> Result<Response<v1::RecordOnSiteServiceResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(self.on_site(&who, req.get_ref()).await?))
    }
}
