//! The gRPC door: `IntakeService` for staff tools, the CLI and calling integrations.

use redress_platform::access::{self, Place, Reach, Sight};
use redress_platform::auth::{self, Identity, Role};
use redress_platform::request::complaint_id;
use redress_proto::v1::{self, intake_service_server::IntakeService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::recording::Recorder;
use crate::{registry, submission};
use redress_domain::Class;
use redress_proto::Wire as _;

/// The gRPC service.
pub struct Api {
    pub pool: PgPool,
    pub recorder: Recorder,
}

#[tonic::async_trait]
impl IntakeService for Api {
    async fn submit(
        &self,
        req: Request<v1::SubmitRequest>,
    ) -> Result<Response<v1::Acknowledgement>, Status> {
        let who = auth::identity(&req)?;
        let details = req
            .into_inner()
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
        Ok(Response::new(ack))
    }

    async fn confirm(
        &self,
        req: Request<v1::ConfirmRequest>,
    ) -> Result<Response<v1::ConfirmResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(
            &who,
            &[
                Role::CustomerServiceAgent,
                Role::Operator,
                Role::Integration,
                Role::Handler,
                Role::DepartmentManager,
            ],
        )?;
        let req = req.into_inner();
        let id = complaint_id(&req.complaint_id).map_err(Error::from)?;
        // The complaint centre and the call centre confirm any complaint; staff of a department
        // only their department's.
        self.require_department(&who, &id, &[Role::Handler, Role::DepartmentManager])
            .await?;
        let confirmation = req
            .confirmation
            .ok_or_else(|| Error::invalid("confirmation", "is required"))?;
        let mut tx = self.begin().await?;
        let resp = self
            .recorder
            .confirm(&mut tx, &id, &confirmation, &who.to_actor())
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(resp))
    }

    async fn reclassify(
        &self,
        req: Request<v1::ReclassifyRequest>,
    ) -> Result<Response<v1::ReclassifyResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(
            &who,
            &[
                Role::CustomerServiceAgent,
                Role::DepartmentManager,
                Role::GeneralManager,
                Role::Operator,
            ],
        )?;
        let req = req.into_inner();
        let id = complaint_id(&req.complaint_id).map_err(Error::from)?;
        self.require_department(&who, &id, &[Role::DepartmentManager])
            .await?;
        let to = Class::from_wire(req.class)
            .ok_or_else(|| Error::invalid("class", "must be A, B, C or D"))?;
        let mut tx = self.begin().await?;
        let resp = self
            .recorder
            .reclassify(&mut tx, &id, to, &req.reason, &who.to_actor())
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(resp))
    }

    async fn get_complaint(
        &self,
        req: Request<v1::GetComplaintRequest>,
    ) -> Result<Response<v1::ComplaintView>, Status> {
        let who = auth::identity(&req)?;
        let raw = req.get_ref().complaint_id.trim();
        // People name complaints by the number they were told (`RD20261201-000001`); systems
        // by id. Either finds it.
        let id = match complaint_id(raw) {
            Ok(id) => id,
            Err(not_an_id) => registry::id_of_number(&self.pool, raw)
                .await?
                .ok_or_else(|| Error::from(not_an_id))?,
        };
        let mut view = registry::get(&self.pool, &self.recorder.policy, &id).await?;
        let place = Place::new(&view.department_id, &view.assignee_id);
        access::require_reach(&who, place, &id)?;
        let sight = Sight::of(&who, place);
        if let Some(customer) = view.details.as_mut().and_then(|d| d.customer.as_mut()) {
            sight.apply(customer);
        }
        Ok(Response::new(view))
    }

    async fn list_complaints(
        &self,
        req: Request<v1::ListComplaintsRequest>,
    ) -> Result<Response<v1::ListComplaintsResponse>, Status> {
        let who = auth::identity(&req)?;
        let mut page = registry::list(
            &self.pool,
            &self.recorder.policy,
            req.get_ref(),
            &Reach::of(&who),
        )
        .await?;
        for c in &mut page.complaints {
            let sight = Sight::of(&who, Place::new(&c.department_id, &c.assignee_id));
            c.customer_name = sight.show(&c.customer_name);
        }
        Ok(Response::new(page))
    }
}

impl Api {
    /// A transaction whose commit also publishes the events it appended.
    async fn begin(&self) -> Result<redress_platform::outbox::Writes, Error> {
        Ok(self.recorder.outbox.begin(&self.pool).await?)
    }

    /// Refuses `who`, when their role is one of `scoped`, unless the complaint is their
    /// department's (docs/access.md).
    async fn require_department(
        &self,
        who: &Identity,
        id: &str,
        scoped: &[Role],
    ) -> Result<(), Status> {
        if !scoped.contains(&who.role) {
            return Ok(());
        }
        let (department, assignee) = registry::place(&self.pool, id).await?;
        if access::acts_for_department(who, Place::new(&department, &assignee)) {
            Ok(())
        } else {
            Err(access::outside(who, id))
        }
    }
}
