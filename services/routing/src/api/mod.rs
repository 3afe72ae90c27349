//! The gRPC door, `RoutingService`: every RPC reads the caller, then hands the request to the
//! concern it belongs to, so this file shows the whole surface at a glance. Every command on a
//! complaint asks [`crate::access`] whether the caller may act on it before anything changes.
//!
//! - `organisation`: departments, staff and routing rules; operators change them (the one
//!   role check made here, at the door), anyone signed in reads them.
//! - `queue`: who has a complaint — assign, reassign, reroute — and the queues to work from.
//! - `handling`: the department's handling, from acceptance to closing (DOMAIN §3, §5, §9).

mod handling;
mod organisation;
mod queue;

use chrono::{DateTime, Utc};
use redress_domain::ComplaintId;
use redress_platform::auth::{self, Identity, Role};
use redress_platform::outbox::Writes;
use redress_platform::request;
use redress_proto::v1::{self, routing_service_server::RoutingService};
use tonic::{Request, Response, Status};

use crate::access::{Allow, authorize};
use crate::commands::{self, Ctx, Record};
use crate::error::Error;

/// The gRPC service.
pub struct Api {
    pub ctx: Ctx,
}

/// The longest free text a request may carry, in characters: enough for any note a person
/// writes, short enough that a stray upload cannot bloat every event that repeats it.
const MAX_TEXT: usize = 4000;

/// A request's free text, trimmed; refused naming `field` when required and blank, or too long.
fn text(field: &str, value: &str, required: bool) -> Result<String, Error> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(Error::invalid(field, "is too long"));
    }
    Ok(v.to_owned())
}

/// The complaint a request names, typed from here on; a malformed id is refused naming the
/// field. Each RPC parses it after checking its own fields and before taking the row lock, so
/// a faulty request is refused without waiting on a busy complaint.
fn complaint(raw: &str) -> Result<ComplaintId, Error> {
    let id = request::complaint_id(raw)?;
    ComplaintId::parse(&id).map_err(|e| Error::invalid("complaint_id", &e.to_string()))
}

fn done<T>(r: Result<T, Error>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

impl Api {
    /// The service's clock, which tests move instead of sleeping.
    fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    /// Begins a command on a complaint — its row locked — and checks the caller may act on it.
    async fn start(
        &self,
        who: &Identity,
        id: &ComplaintId,
        allow: Allow,
    ) -> Result<(Writes, Record), Error> {
        let (mut tx, rec) = commands::begin(&self.ctx, id).await?;
        authorize(&mut tx, who, &rec, allow).await?;
        Ok((tx, rec))
    }
}

#[tonic::async_trait]
impl RoutingService for Api {
    async fn upsert_department(
        &self,
        req: Request<v1::UpsertDepartmentRequest>,
    ) -> Result<Response<v1::UpsertDepartmentResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::Operator])?;
        done(organisation::upsert_department(self, &who, req.into_inner()).await)
    }

    async fn list_departments(
        &self,
        req: Request<v1::ListDepartmentsRequest>,
    ) -> Result<Response<v1::ListDepartmentsResponse>, Status> {
        auth::identity(&req)?;
        done(organisation::list_departments(self, req.get_ref()).await)
    }

    async fn upsert_staff(
        &self,
        req: Request<v1::UpsertStaffRequest>,
    ) -> Result<Response<v1::UpsertStaffResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::Operator])?;
        done(organisation::upsert_staff(self, &who, req.into_inner()).await)
    }

    async fn set_routing_rules(
        &self,
        req: Request<v1::SetRoutingRulesRequest>,
    ) -> Result<Response<v1::SetRoutingRulesResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::Operator])?;
        done(organisation::set_routing_rules(self, req.into_inner()).await)
    }

    async fn get_routing_rules(
        &self,
        req: Request<v1::GetRoutingRulesRequest>,
    ) -> Result<Response<v1::GetRoutingRulesResponse>, Status> {
        auth::identity(&req)?;
        done(organisation::get_routing_rules(self).await)
    }

    async fn list_staff(
        &self,
        req: Request<v1::ListStaffRequest>,
    ) -> Result<Response<v1::ListStaffResponse>, Status> {
        auth::identity(&req)?;
        done(organisation::list_staff(self, req.get_ref()).await)
    }

    async fn assign(
        &self,
        req: Request<v1::AssignRequest>,
    ) -> Result<Response<v1::AssignResponse>, Status> {
        let who = auth::identity(&req)?;
        done(queue::assign(self, &who, req.into_inner()).await)
    }

    async fn reassign(
        &self,
        req: Request<v1::ReassignRequest>,
    ) -> Result<Response<v1::ReassignResponse>, Status> {
        let who = auth::identity(&req)?;
        done(queue::reassign(self, &who, req.into_inner()).await)
    }

    async fn reroute(
        &self,
        req: Request<v1::RerouteRequest>,
    ) -> Result<Response<v1::RerouteResponse>, Status> {
        let who = auth::identity(&req)?;
        done(queue::reroute(self, &who, req.into_inner()).await)
    }

    async fn list_queue(
        &self,
        req: Request<v1::ListQueueRequest>,
    ) -> Result<Response<v1::ListQueueResponse>, Status> {
        let who = auth::identity(&req)?;
        done(queue::list_queue(self, &who, req.into_inner()).await)
    }

    async fn accept_complaint(
        &self,
        req: Request<v1::AcceptComplaintRequest>,
    ) -> Result<Response<v1::AcceptComplaintResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::accept(self, &who, req.into_inner()).await)
    }

    async fn decide_validity(
        &self,
        req: Request<v1::DecideValidityRequest>,
    ) -> Result<Response<v1::DecideValidityResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::decide_validity(self, &who, req.into_inner()).await)
    }

    async fn record_cause(
        &self,
        req: Request<v1::RecordCauseRequest>,
    ) -> Result<Response<v1::RecordCauseResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::record_cause(self, &who, req.into_inner()).await)
    }

    async fn give_feedback(
        &self,
        req: Request<v1::GiveFeedbackRequest>,
    ) -> Result<Response<v1::GiveFeedbackResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::give_feedback(self, &who, req.into_inner()).await)
    }

    async fn report_intermediate_result(
        &self,
        req: Request<v1::ReportIntermediateResultRequest>,
    ) -> Result<Response<v1::ReportIntermediateResultResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::report_intermediate_result(self, &who, req.into_inner()).await)
    }

    async fn propose_resolution(
        &self,
        req: Request<v1::ProposeResolutionRequest>,
    ) -> Result<Response<v1::ProposeResolutionResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::propose_resolution(self, &who, req.into_inner()).await)
    }

    async fn record_customer_response(
        &self,
        req: Request<v1::RecordCustomerResponseRequest>,
    ) -> Result<Response<v1::RecordCustomerResponseResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::record_customer_response(self, &who, req.into_inner()).await)
    }

    async fn resolve(
        &self,
        req: Request<v1::ResolveRequest>,
    ) -> Result<Response<v1::ResolveResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::resolve(self, &who, req.into_inner()).await)
    }

    async fn close(
        &self,
        req: Request<v1::CloseRequest>,
    ) -> Result<Response<v1::CloseResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::close(self, &who, req.into_inner()).await)
    }

    async fn declare_cannot_settle(
        &self,
        req: Request<v1::DeclareCannotSettleRequest>,
    ) -> Result<Response<v1::DeclareCannotSettleResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::declare_cannot_settle(self, &who, req.into_inner()).await)
    }

    async fn create_sub_task(
        &self,
        req: Request<v1::CreateSubTaskRequest>,
    ) -> Result<Response<v1::CreateSubTaskResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::create_sub_task(self, &who, req.into_inner()).await)
    }

    async fn complete_sub_task(
        &self,
        req: Request<v1::CompleteSubTaskRequest>,
    ) -> Result<Response<v1::CompleteSubTaskResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::complete_sub_task(self, &who, req.into_inner()).await)
    }

    async fn get_handling(
        &self,
        req: Request<v1::GetHandlingRequest>,
    ) -> Result<Response<v1::GetHandlingResponse>, Status> {
        let who = auth::identity(&req)?;
        done(handling::get_handling(self, &who, req.into_inner()).await)
    }
}
