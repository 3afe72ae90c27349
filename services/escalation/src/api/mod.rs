//! The gRPC door, `EscalationService`: every RPC reads the caller, then hands the request to
//! the concern it belongs to, so this file shows the whole surface at a glance.
//!
//! - [`escalations`]: list, acknowledge and decide escalations (DOMAIN §5).
//! - [`ledger`]: business volumes and neglect findings, the ledger's two manual inputs (§7, §9).
//! - [`reports`]: the monthly complaint analysis, as fields and CSV (§7, §8).

mod escalations;
mod ledger;
pub mod reports;

use chrono::{DateTime, Utc};
use redress_platform::auth;
use redress_platform::outbox::Writes;
use redress_proto::v1::{self, escalation_service_server::EscalationService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::ladder::Ladder;

/// The gRPC service.
pub struct Api {
    pub pool: PgPool,
    pub ladder: Ladder,
    pub ledger: crate::ledger::Ledger,
}

impl Api {
    /// A transaction whose commit also publishes the events it appended.
    async fn begin(&self) -> Result<Writes, Error> {
        Ok(self.ladder.outbox.begin(&self.pool).await?)
    }

    fn now(&self) -> DateTime<Utc> {
        self.ladder.now()
    }
}

#[tonic::async_trait]
impl EscalationService for Api {
    async fn list_escalations(
        &self,
        req: Request<v1::ListEscalationsRequest>,
    ) -> Result<Response<v1::ListEscalationsResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(self.list(&who, req.into_inner()).await?))
    }

    async fn acknowledge(
        &self,
        req: Request<v1::AcknowledgeRequest>,
    ) -> Result<Response<v1::AcknowledgeResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(
            self.acknowledge_as(&who, req.into_inner()).await?,
        ))
    }

    async fn decide(
        &self,
        req: Request<v1::DecideRequest>,
    ) -> Result<Response<v1::DecideResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(self.decide_as(&who, req.into_inner()).await?))
    }

    async fn set_business_volume(
        &self,
        req: Request<v1::SetBusinessVolumeRequest>,
    ) -> Result<Response<v1::SetBusinessVolumeResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(
            self.set_volume(&who, req.into_inner()).await?,
        ))
    }

    async fn monthly_report(
        &self,
        req: Request<v1::MonthlyReportRequest>,
    ) -> Result<Response<v1::MonthlyReportResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(self.report(&who, req.into_inner()).await?))
    }

    async fn record_neglect_finding(
        &self,
        req: Request<v1::RecordNeglectFindingRequest>,
    ) -> Result<Response<v1::RecordNeglectFindingResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(
            self.find_neglect(&who, req.into_inner()).await?,
        ))
    }
}
