//! The gRPC door: `IntakeService` for staff tools, the CLI and calling integrations. Each RPC
//! reads the caller and hands the request to the file of its concern.
//!
//! - [`commands`]: submit, confirm, reclassify.
//! - [`queries`]: one complaint with its timeline, and the paged list.

mod commands;
mod queries;

use redress_domain::ComplaintId;
use redress_platform::auth;
use redress_platform::request::complaint_id;
use redress_proto::v1::{self, intake_service_server::IntakeService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::recording::Recorder;

pub use queries::MAX_PAGE;

/// The gRPC service.
pub struct Api {
    pub pool: PgPool,
    pub recorder: Recorder,
}

/// The request's complaint id, typed: the platform's reader names it on the call's span and
/// words the refusal alike in every service; the typed id is what the store takes.
fn typed_complaint_id(raw: &str) -> Result<ComplaintId, Error> {
    let id = complaint_id(raw)?;
    ComplaintId::parse(&id).map_err(|e| Error::invalid("complaint_id", &e.to_string()))
}

#[tonic::async_trait]
impl IntakeService for Api {
    async fn submit(
        &self,
        req: Request<v1::SubmitRequest>,
    ) -> Result<Response<v1::Acknowledgement>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(self.submit_as(&who, req.into_inner()).await?))
    }

    async fn confirm(
        &self,
        req: Request<v1::ConfirmRequest>,
    ) -> Result<Response<v1::ConfirmResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(
            self.confirm_as(&who, req.into_inner()).await?,
        ))
    }

    async fn reclassify(
        &self,
        req: Request<v1::ReclassifyRequest>,
    ) -> Result<Response<v1::ReclassifyResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(
            self.reclassify_as(&who, req.into_inner()).await?,
        ))
    }

    async fn get_complaint(
        &self,
        req: Request<v1::GetComplaintRequest>,
    ) -> Result<Response<v1::ComplaintView>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(
            self.complaint(&who, &req.get_ref().complaint_id).await?,
        ))
    }

    async fn list_complaints(
        &self,
        req: Request<v1::ListComplaintsRequest>,
    ) -> Result<Response<v1::ListComplaintsResponse>, Status> {
        let who = auth::identity(&req)?;
        Ok(Response::new(self.list(&who, req.get_ref()).await?))
    }
}
