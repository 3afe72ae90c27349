//! The gRPC door: `SlaMonitorService`. Each RPC reads the caller and hands the request to the
//! file of its concern, so the service impl shows the whole surface at a glance.
//!
//! - [`clocks`]: a complaint's clocks, and the at-risk and overdue lists.
//! - [`special_reason`]: recording a special reason for a missed limit.

mod clocks;
mod special_reason;

use std::sync::Arc;

use redress_domain::sla::ClockState;
use redress_domain::{Clock, ComplaintId, Policy};
use redress_platform::auth;
use redress_platform::outbox::Outbox;
use redress_platform::request::complaint_id;
use redress_proto::v1::{self, sla_monitor_service_server::SlaMonitorService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::store::Wakeup;

pub use clocks::status;

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

/// The request's complaint id, typed: the platform's reader names it on the call's span and
/// words the refusal alike in every service; the typed id is what the store takes.
fn typed_complaint_id(raw: &str) -> Result<ComplaintId, Error> {
    let id = complaint_id(raw)?;
    ComplaintId::parse(&id).map_err(|e| Error::invalid("complaint_id", &e.to_string()))
}

#[tonic::async_trait]
impl SlaMonitorService for Api {
    async fn get_sla_status(
        &self,
        req: Request<v1::GetSlaStatusRequest>,
    ) -> Result<Response<v1::GetSlaStatusResponse>, Status> {
        let who = auth::identity(&req)?;
        let id = typed_complaint_id(&req.get_ref().complaint_id)?;
        Ok(Response::new(self.sla_status(&who, &id).await?))
    }

    async fn list_at_risk(
        &self,
        req: Request<v1::ListAtRiskRequest>,
    ) -> Result<Response<v1::ListAtRiskResponse>, Status> {
        let who = auth::identity(&req)?;
        let (items, next_page_token) = self.list(ClockState::Warned, &who, req.get_ref()).await?;
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
        let (items, next_page_token) = self.list(ClockState::Overdue, &who, req.get_ref()).await?;
        Ok(Response::new(v1::ListOverdueResponse {
            items,
            next_page_token,
        }))
    }

    async fn record_special_reason(
        &self,
        req: Request<v1::RecordSpecialReasonRequest>,
    ) -> Result<Response<v1::RecordSpecialReasonResponse>, Status> {
        let who = auth::identity(&req)?;
        let clock = self.record(&who, req.into_inner()).await?;
        Ok(Response::new(v1::RecordSpecialReasonResponse { clock }))
    }
}
