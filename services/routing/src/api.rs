//! The gRPC door: `RoutingService`. Every command asks [`crate::access`] whether the caller may
//! act on the complaint first; operators administer the organisation.

use chrono::{DateTime, Utc};
use redress_domain::TaskId;
use redress_domain::handling::{Command, Effect};
use redress_platform::access::{self, Place, Reach, Sight};
use redress_platform::auth::{self, Identity, Role};
use redress_platform::request::complaint_id;
use redress_proto::v1::{self, event::Payload, routing_service_server::RoutingService};
use sqlx::{PgConnection, Row};
use tonic::{Request, Response, Status};

use crate::access::{Allow, CENTRE, HANDLING, MANAGER, authorize, manages, may_close};
use crate::commands::{self, Ctx, Record};
use crate::envelope::{PRODUCER, from_ts, ts};
use crate::error::Error;
use crate::org;
use redress_platform::pagination::{Key, Kind, Page};

/// The gRPC service.
pub struct Api {
    pub ctx: Ctx,
}

const MAX_TEXT: usize = 4000;

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

/// A handler of a department, available or not (a manual choice may pick anyone there).
async fn handler_in(conn: &mut PgConnection, staff_id: &str) -> Result<v1::Staff, Error> {
    let s = org::staff(conn, staff_id)
        .await?
        .ok_or_else(|| Error::invalid("staff_id", "names no known member of staff"))?;
    if s.suspended {
        return Err(Error::FailedPrecondition(format!(
            "{staff_id} is suspended for rectification and gets no new complaints"
        )));
    }
    Ok(s)
}

impl Api {
    fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    /// Begins a command on a complaint and checks the caller may act on it.
    async fn start(
        &self,
        who: &Identity,
        raw_id: &str,
        allow: Allow,
    ) -> Result<(redress_platform::outbox::Writes, Record), Error> {
        let id = complaint_id(raw_id)?;
        let (mut tx, rec) = commands::begin(&self.ctx, &id).await?;
        authorize(&mut tx, who, &rec, allow).await?;
        Ok((tx, rec))
    }

    /// A single-event command: apply `command`, change the row with `change`, publish `payload`.
    async fn simple<T>(
        &self,
        who: &Identity,
        raw_id: &str,
        allow: Allow,
        command: Command,
        change: impl FnOnce(&mut Record, &[Effect]) -> (Payload, T),
    ) -> Result<T, Error> {
        let (tx, mut rec) = self.start(who, raw_id, allow).await?;
        let effects = commands::apply(&self.ctx, &mut rec, command)?;
        let (payload, out) = change(&mut rec, &effects);
        let now = self.now();
        let e = PRODUCER.event(&rec.complaint_id, now, &who.to_actor(), "", payload);
        commands::finish(&self.ctx, tx, &rec, &[e], now).await?;
        Ok(out)
    }

    /// Gives the complaint to `staff_id` (assign or reassign).
    async fn give_to(
        &self,
        who: &Identity,
        raw_id: &str,
        staff_id: &str,
        reason: &str,
        command: Command,
    ) -> Result<(String, String, String), Error> {
        let (mut tx, mut rec) = self.start(who, raw_id, MANAGER).await?;
        let person = handler_in(&mut tx, staff_id).await?;
        if person.department_id != rec.department_id {
            return Err(Error::invalid(
                "staff_id",
                "is not in the responsible department; reroute first",
            ));
        }
        if person.id == rec.assignee_id {
            return Err(Error::FailedPrecondition(format!(
                "complaint is {} and already assigned to {staff_id}",
                rec.stage
            )));
        }
        commands::apply(&self.ctx, &mut rec, command)?;
        let previous = std::mem::replace(&mut rec.assignee_id, person.id.clone());
        let manager = org::department(&mut tx, &rec.department_id)
            .await?
            .map(|d| d.manager_id)
            .unwrap_or_default();
        let now = self.now();
        let e = PRODUCER.event(
            &rec.complaint_id,
            now,
            &who.to_actor(),
            "",
            Payload::ComplaintAssigned(v1::ComplaintAssigned {
                department_id: rec.department_id.clone(),
                assignee_id: person.id.clone(),
                assignee_name: person.name.clone(),
                previous_assignee_id: previous.clone(),
                reason: reason.to_owned(),
                department_manager_id: manager,
            }),
        );
        commands::finish(&self.ctx, tx, &rec, &[e], now).await?;
        Ok((rec.department_id.clone(), person.id, previous))
    }
}

fn done<T>(r: Result<T, Error>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl RoutingService for Api {
    async fn upsert_department(
        &self,
        req: Request<v1::UpsertDepartmentRequest>,
    ) -> Result<Response<v1::UpsertDepartmentResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::Operator])?;
        let d = req
            .into_inner()
            .department
            .ok_or_else(|| Error::invalid("department", "is required"))?;
        done(
            async {
                let mut tx = self.ctx.outbox.begin(&self.ctx.pool).await?;
                let (created, e) =
                    org::upsert_department(&mut tx, &d, &who.to_actor(), self.now()).await?;
                self.ctx
                    .outbox
                    .append(&mut tx, &e.into_iter().collect::<Vec<_>>())
                    .await?;
                let stored = org::department(&mut tx, &d.id).await?;
                tx.commit().await?;
                Ok(v1::UpsertDepartmentResponse {
                    department: stored,
                    created,
                })
            }
            .await,
        )
    }

    async fn list_departments(
        &self,
        req: Request<v1::ListDepartmentsRequest>,
    ) -> Result<Response<v1::ListDepartmentsResponse>, Status> {
        auth::identity(&req)?;
        done(
            async {
                let mut conn = self.ctx.pool.acquire().await?;
                org::list_departments(&mut conn, req.get_ref()).await
            }
            .await,
        )
    }

    async fn upsert_staff(
        &self,
        req: Request<v1::UpsertStaffRequest>,
    ) -> Result<Response<v1::UpsertStaffResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::Operator])?;
        let req = req.into_inner();
        let s = req
            .staff
            .ok_or_else(|| Error::invalid("staff", "is required"))?;
        done(
            async {
                let mut tx = self.ctx.outbox.begin(&self.ctx.pool).await?;
                let (created, e) = org::upsert_staff(
                    &mut tx,
                    &s,
                    req.lift_suspension,
                    &who.to_actor(),
                    self.now(),
                )
                .await?;
                self.ctx
                    .outbox
                    .append(&mut tx, &e.into_iter().collect::<Vec<_>>())
                    .await?;
                let stored = org::staff(&mut tx, &s.id).await?;
                tx.commit().await?;
                Ok(v1::UpsertStaffResponse {
                    staff: stored,
                    created,
                })
            }
            .await,
        )
    }

    async fn set_routing_rules(
        &self,
        req: Request<v1::SetRoutingRulesRequest>,
    ) -> Result<Response<v1::SetRoutingRulesResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::Operator])?;
        let req = req.into_inner();
        done(
            async {
                let mut tx = self.ctx.pool.begin().await?;
                let version =
                    org::set_rules(&mut tx, &req.rules, &req.default_department_id).await?;
                tx.commit().await?;
                Ok(v1::SetRoutingRulesResponse { version })
            }
            .await,
        )
    }

    async fn get_routing_rules(
        &self,
        req: Request<v1::GetRoutingRulesRequest>,
    ) -> Result<Response<v1::GetRoutingRulesResponse>, Status> {
        auth::identity(&req)?;
        done(
            async {
                let mut conn = self.ctx.pool.acquire().await?;
                org::get_rules(&mut conn).await
            }
            .await,
        )
    }

    async fn list_staff(
        &self,
        req: Request<v1::ListStaffRequest>,
    ) -> Result<Response<v1::ListStaffResponse>, Status> {
        auth::identity(&req)?;
        done(
            async {
                let mut conn = self.ctx.pool.acquire().await?;
                org::list_staff(&mut conn, req.get_ref()).await
            }
            .await,
        )
    }

    async fn assign(
        &self,
        req: Request<v1::AssignRequest>,
    ) -> Result<Response<v1::AssignResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let reason = text("reason", &r.reason, false)?;
                let reason = if reason.is_empty() {
                    "assigned by hand".to_owned()
                } else {
                    reason
                };
                let (department_id, assignee_id, _) = self
                    .give_to(&who, &r.complaint_id, &r.staff_id, &reason, Command::Assign)
                    .await?;
                Ok(v1::AssignResponse {
                    department_id,
                    assignee_id,
                })
            }
            .await,
        )
    }

    async fn reassign(
        &self,
        req: Request<v1::ReassignRequest>,
    ) -> Result<Response<v1::ReassignResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let reason = text("reason", &r.reason, true)?;
                let (department_id, assignee_id, previous_assignee_id) = self
                    .give_to(
                        &who,
                        &r.complaint_id,
                        &r.staff_id,
                        &reason,
                        Command::Reassign,
                    )
                    .await?;
                Ok(v1::ReassignResponse {
                    department_id,
                    assignee_id,
                    previous_assignee_id,
                })
            }
            .await,
        )
    }

    async fn reroute(
        &self,
        req: Request<v1::RerouteRequest>,
    ) -> Result<Response<v1::RerouteResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let reason = text("reason", &r.reason, true)?;
                if r.department_id.trim().is_empty() {
                    return Err(Error::invalid("department_id", "is required"));
                }
                let allow = Allow {
                    assignee: false,
                    manager: true,
                    agent: true,
                };
                let (mut tx, mut rec) = self.start(&who, &r.complaint_id, allow).await?;
                if r.department_id == rec.department_id {
                    return Err(Error::invalid("department_id", "is already responsible"));
                }
                let previous = rec.department_id.clone();
                let now = self.now();
                let events = commands::route_and_assign(
                    &self.ctx,
                    &mut tx,
                    &mut rec,
                    Command::Reroute,
                    &r.department_id,
                    "",
                    &reason,
                    &who.to_actor(),
                    "",
                    now,
                )
                .await?;
                commands::finish(&self.ctx, tx, &rec, &events, now).await?;
                Ok(v1::RerouteResponse {
                    department_id: rec.department_id,
                    previous_department_id: previous,
                })
            }
            .await,
        )
    }

    async fn list_queue(
        &self,
        req: Request<v1::ListQueueRequest>,
    ) -> Result<Response<v1::ListQueueResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                if r.department_id.is_empty() && r.handler_id.is_empty() {
                    return Err(Error::invalid(
                        "department_id",
                        "give a department, a handler, or both",
                    ));
                }
                let page = Page::read(
                    r.page.as_ref(),
                    500,
                    &[
                        Kind::Bool,
                        Kind::Text,
                        Kind::Bool,
                        Kind::Time,
                        Kind::Time,
                        Kind::Text,
                    ],
                )?;
                let reach = Reach::of(&who);
                let reach = reach.sql();
                let mut conn = self.ctx.pool.acquire().await?;
                // Priority (DOMAIN §3, "by severity, number of customers affected and urgency"):
                // open first, class A first, group complaints first, then least time left (none
                // last), then the earliest received. Every part ascends, so the page's last row
                // is a cursor the next page continues after (a row comparison).
                let rows = sqlx::query(
                    "SELECT *, NOT open AS k_closed, NOT group_complaint AS k_single,
                        COALESCE(completion_due, '9999-12-31T00:00:00Z') AS k_due,
                        COALESCE(received_at, 'epoch') AS k_received
                     FROM handling WHERE (open OR $5) AND received
                   AND stage <> 'awaiting_confirmation'
                   AND ($1 = '' OR department_id = $1) AND ($2 = '' OR assignee_id = $2)
                   AND ($6 OR department_id = ANY($7) OR assignee_id = $8)
                   AND ($4::bool IS NULL OR (NOT open, class, NOT group_complaint,
                        COALESCE(completion_due, '9999-12-31T00:00:00Z'), COALESCE(received_at, 'epoch'),
                        complaint_id) > ($4, $9, $10, $11, $12, $13))
                 ORDER BY NOT open, class, NOT group_complaint,
                   COALESCE(completion_due, '9999-12-31T00:00:00Z'), COALESCE(received_at, 'epoch'),
                   complaint_id
                 LIMIT $3",
                )
                .bind(&r.department_id)
                .bind(&r.handler_id)
                .bind(page.fetch())
                .bind(page.flag(0))
                .bind(r.include_finished)
                .bind(reach.0)
                .bind(reach.1)
                .bind(reach.2)
                .bind(page.text(1))
                .bind(page.flag(2))
                .bind(page.time(3))
                .bind(page.time(4))
                .bind(page.text(5))
                .fetch_all(&mut *conn)
                .await?;
                let (rows, next_page_token) = page.finish(rows, |row| {
                    Ok::<_, sqlx::Error>(vec![
                        Key::Bool(row.try_get("k_closed")?),
                        Key::Text(row.try_get("class")?),
                        Key::Bool(row.try_get("k_single")?),
                        Key::Time(row.try_get("k_due")?),
                        Key::Time(row.try_get("k_received")?),
                        Key::Text(row.try_get("complaint_id")?),
                    ])
                })?;
                let now = self.now();
                let mut items = Vec::with_capacity(rows.len());
                for row in &rows {
                    let due: Option<DateTime<Utc>> = row.try_get("completion_due")?;
                    let class: String = row.try_get("class")?;
                    let department: String = row.try_get("department_id")?;
                    let assignee: String = row.try_get("assignee_id")?;
                    let sight = Sight::of(&who, Place::new(&department, &assignee));
                    items.push(v1::QueueItem {
                        complaint_id: row.try_get("complaint_id")?,
                        number: row.try_get("number")?,
                        class: redress_proto::convert::class_letter_to_wire(&class),
                        group_complaint: row.try_get("group_complaint")?,
                        customers_affected: u32::try_from(
                            row.try_get::<i32, _>("customers_affected")?,
                        )
                        .unwrap_or(1),
                        media_risk: row.try_get("media_risk")?,
                        time_left: due.map(|d| {
                            let left = d - now;
                            prost_types::Duration {
                                seconds: left.num_seconds(),
                                nanos: 0,
                            }
                        }),
                        completion_due: due.map(ts),
                        department_id: department,
                        assignee_id: assignee,
                        stage: row.try_get("stage")?,
                        category: row.try_get("category")?,
                        customer_name: sight.show(&row.try_get::<String, _>("customer_name")?),
                        customer_type: row.try_get("customer_type")?,
                        received_at: row
                            .try_get::<Option<DateTime<Utc>>, _>("received_at")?
                            .map(ts),
                    });
                }
                Ok(v1::ListQueueResponse {
                    next_page_token,
                    items,
                })
            }
            .await,
        )
    }

    async fn accept_complaint(
        &self,
        req: Request<v1::AcceptComplaintRequest>,
    ) -> Result<Response<v1::AcceptComplaintResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let (tx, mut rec) = self.start(&who, &r.complaint_id, HANDLING).await?;
                if let Some(at) = rec.accepted_at {
                    // Accepting twice is harmless: the first time stands.
                    return Ok(v1::AcceptComplaintResponse {
                        accepted_at: Some(ts(at)),
                        department_id: rec.department_id,
                        already_accepted: true,
                    });
                }
                commands::apply(&self.ctx, &mut rec, Command::Accept)?;
                let now = self.now();
                rec.accepted_at = Some(now);
                let e = PRODUCER.event(
                    &rec.complaint_id,
                    now,
                    &who.to_actor(),
                    "",
                    Payload::AcceptedByDepartment(v1::AcceptedByDepartment {
                        department_id: rec.department_id.clone(),
                        accepted_by: who.actor_id.clone(),
                        accepted_at: Some(ts(now)),
                    }),
                );
                commands::finish(&self.ctx, tx, &rec, &[e], now).await?;
                Ok(v1::AcceptComplaintResponse {
                    accepted_at: Some(ts(now)),
                    department_id: rec.department_id,
                    already_accepted: false,
                })
            }
            .await,
        )
    }

    async fn decide_validity(
        &self,
        req: Request<v1::DecideValidityRequest>,
    ) -> Result<Response<v1::DecideValidityResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let explanation = text("explanation", &r.explanation, !r.valid)?;
                self.simple(
                    &who,
                    &r.complaint_id,
                    HANDLING,
                    Command::DecideValidity { valid: r.valid },
                    |rec, _| {
                        // DOMAIN §2: "the complaint is found invalid → D admonition".
                        if !r.valid {
                            rec.class = redress_domain::Class::D;
                        }
                        let class = rec.class_proto();
                        (
                            Payload::ValidityDecided(v1::ValidityDecided {
                                valid: r.valid,
                                explanation,
                                class,
                            }),
                            v1::DecideValidityResponse { class },
                        )
                    },
                )
                .await
            }
            .await,
        )
    }

    async fn record_cause(
        &self,
        req: Request<v1::RecordCauseRequest>,
    ) -> Result<Response<v1::RecordCauseResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let cause = text("cause", &r.cause, true)?;
                let measure = text("corrective_measure", &r.corrective_measure, false)?;
                let responsibility = v1::Responsibility::try_from(r.responsibility)
                    .ok()
                    .filter(|x| *x != v1::Responsibility::Unspecified)
                    .ok_or_else(|| Error::invalid("responsibility", "is required"))?;
                let staff_responsible = responsibility == v1::Responsibility::CompanyStaff;
                if staff_responsible && r.responsible_person_id.trim().is_empty() {
                    return Err(Error::invalid(
                        "responsible_person_id",
                        "is required when staff are responsible",
                    ));
                }
                let person = if r.responsible_person_id.trim().is_empty() {
                    None
                } else {
                    let mut conn = self.ctx.pool.acquire().await?;
                    Some(
                        org::staff(&mut conn, r.responsible_person_id.trim())
                            .await?
                            .ok_or_else(|| {
                                Error::invalid(
                                    "responsible_person_id",
                                    "names no known member of staff",
                                )
                            })?,
                    )
                };
                // DOMAIN §9: a named person or a customer-side cause is what lets a valid
                // complaint be resolved (its class fine needs someone to go to).
                let accountable =
                    person.is_some() || commands::customer_side(responsibility as i32);
                self.simple(
                    &who,
                    &r.complaint_id,
                    HANDLING,
                    Command::RecordCause { accountable },
                    |rec, _| {
                        rec.cause = cause.clone();
                        rec.responsibility = responsibility as i32;
                        rec.responsible_person_id =
                            person.as_ref().map(|p| p.id.clone()).unwrap_or_default();
                        (
                            Payload::CauseRecorded(v1::CauseRecorded {
                                cause,
                                responsibility: responsibility as i32,
                                responsible_person_id: rec.responsible_person_id.clone(),
                                responsible_person_name: person
                                    .as_ref()
                                    .map(|p| p.name.clone())
                                    .unwrap_or_default(),
                                responsible_department_id: person
                                    .as_ref()
                                    .map(|p| p.department_id.clone())
                                    .unwrap_or_default(),
                                corrective_measure: measure,
                                solvability: r.solvability,
                                impacts: r.impacts.clone(),
                            }),
                            v1::RecordCauseResponse {},
                        )
                    },
                )
                .await
            }
            .await,
        )
    }

    async fn give_feedback(
        &self,
        req: Request<v1::GiveFeedbackRequest>,
    ) -> Result<Response<v1::GiveFeedbackResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let content = text("content", &r.content, true)?;
                if r.compensation_fen < 0 {
                    return Err(Error::invalid("compensation_fen", "must not be negative"));
                }
                let mut channel = r.channel;
                let satisfied = r.satisfied;
                self.simple(
                    &who,
                    &r.complaint_id,
                    CENTRE,
                    Command::GiveFeedback {
                        satisfaction: satisfied.is_some(),
                    },
                    |rec, effects| {
                        if satisfied.is_some() {
                            rec.satisfied = satisfied;
                        }
                        let sequence = effects
                            .iter()
                            .find_map(|e| match e {
                                Effect::FeedbackGiven { sequence } => Some(*sequence),
                                _ => None,
                            })
                            .unwrap_or(rec.feedback_count);
                        if channel == 0 {
                            // "Feedback goes by the customer's preferred channel" (DOMAIN §3).
                            channel = rec
                                .details
                                .as_ref()
                                .and_then(|d| d.customer.as_ref())
                                .map(|c| c.preferred_reply)
                                .unwrap_or(0);
                        }
                        (
                            Payload::FeedbackGiven(v1::FeedbackGiven {
                                channel,
                                content,
                                cause: r.cause.clone(),
                                measures: r.measures.clone(),
                                result: r.result.clone(),
                                compensation_fen: r.compensation_fen,
                                sequence,
                                satisfied,
                            }),
                            v1::GiveFeedbackResponse { sequence, channel },
                        )
                    },
                )
                .await
            }
            .await,
        )
    }

    async fn report_intermediate_result(
        &self,
        req: Request<v1::ReportIntermediateResultRequest>,
    ) -> Result<Response<v1::ReportIntermediateResultResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let content = text("content", &r.content, true)?;
                if let Some(t) = &r.expected_completion_at {
                    from_ts(t).ok_or_else(|| {
                        Error::invalid("expected_completion_at", "is not a valid timestamp")
                    })?;
                }
                self.simple(
                    &who,
                    &r.complaint_id,
                    HANDLING,
                    Command::ReportIntermediate,
                    |_, _| {
                        (
                            Payload::IntermediateResultReported(v1::IntermediateResultReported {
                                content,
                                expected_completion_at: r.expected_completion_at,
                            }),
                            v1::ReportIntermediateResultResponse {},
                        )
                    },
                )
                .await
            }
            .await,
        )
    }

    async fn propose_resolution(
        &self,
        req: Request<v1::ProposeResolutionRequest>,
    ) -> Result<Response<v1::ProposeResolutionResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let solution = text("solution", &r.solution, true)?;
                for (i, remedy) in r.remedies.iter().enumerate() {
                    if remedy.amount_fen < 0 {
                        return Err(Error::invalid(
                            &format!("remedies[{i}].amount_fen"),
                            "must not be negative",
                        ));
                    }
                }
                self.simple(
                    &who,
                    &r.complaint_id,
                    HANDLING,
                    Command::ProposeResolution,
                    |rec, _| {
                        rec.latest_solution = solution.clone();
                        let attempt = rec.attempt;
                        (
                            Payload::ResolutionProposed(v1::ResolutionProposed {
                                solution,
                                remedies: r.remedies.clone(),
                                attempt,
                            }),
                            v1::ProposeResolutionResponse { attempt },
                        )
                    },
                )
                .await
            }
            .await,
        )
    }

    async fn record_customer_response(
        &self,
        req: Request<v1::RecordCustomerResponseRequest>,
    ) -> Result<Response<v1::RecordCustomerResponseResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let reason = text("reason", &r.reason, !r.accepted)?;
                let (tx, mut rec) = self.start(&who, &r.complaint_id, CENTRE).await?;
                let effects = commands::apply(
                    &self.ctx,
                    &mut rec,
                    Command::CustomerResponse {
                        accepted: r.accepted,
                    },
                )?;
                let now = self.now();
                let events = commands::customer_response_events(
                    &rec,
                    &effects,
                    &reason,
                    &who.to_actor(),
                    now,
                );
                commands::finish(&self.ctx, tx, &rec, &events, now).await?;
                Ok(v1::RecordCustomerResponseResponse {
                    rejection_count: rec.rejection_count,
                    re_study_requested: effects
                        .iter()
                        .any(|e| matches!(e, Effect::ReStudyRequested { .. })),
                    escalation_requested: effects
                        .iter()
                        .any(|e| matches!(e, Effect::EscalationRequested { .. })),
                })
            }
            .await,
        )
    }

    async fn resolve(
        &self,
        req: Request<v1::ResolveRequest>,
    ) -> Result<Response<v1::ResolveResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let result = text("result", &r.result, true)?;
                let now = self.now();
                let handed_in_at = match &r.handed_in_at {
                    None => now,
                    Some(t) => from_ts(t)
                        .filter(|at| *at <= now + chrono::Duration::minutes(5))
                        .ok_or_else(|| {
                            Error::invalid("handed_in_at", "is not a valid past time")
                        })?,
                };
                let named = r.responsible_person_id.trim();
                let person = if named.is_empty() {
                    None
                } else {
                    let mut conn = self.ctx.pool.acquire().await?;
                    Some(org::staff(&mut conn, named).await?.ok_or_else(|| {
                        Error::invalid("responsible_person_id", "names no known member of staff")
                    })?)
                };
                self.simple(
                    &who,
                    &r.complaint_id,
                    HANDLING,
                    Command::Resolve {
                        names_person: person.is_some(),
                    },
                    |rec, _| {
                        if let Some(p) = &person {
                            rec.responsible_person_id = p.id.clone();
                        }
                        rec.result = result.clone();
                        rec.handed_in_at = Some(handed_in_at);
                        (
                            Payload::Resolved(v1::Resolved {
                                result,
                                handed_in_at: Some(ts(handed_in_at)),
                                department_id: rec.department_id.clone(),
                                handler_id: rec.assignee_id.clone(),
                                responsible_person_id: rec.responsible_person_id.clone(),
                            }),
                            v1::ResolveResponse {
                                handed_in_at: Some(ts(handed_in_at)),
                            },
                        )
                    },
                )
                .await
            }
            .await,
        )
    }

    async fn close(
        &self,
        req: Request<v1::CloseRequest>,
    ) -> Result<Response<v1::CloseResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let note = text("note", &r.note, true)?;
                let id = complaint_id(&r.complaint_id)?;
                let (mut tx, mut rec) = commands::begin(&self.ctx, &id).await?;
                may_close(&mut tx, &who, &rec).await?;
                let now = self.now();
                let e = commands::close(&self.ctx, &mut rec, &note, "", &who.to_actor(), "", now)?;
                commands::finish(&self.ctx, tx, &rec, &[e], now).await?;
                Ok(v1::CloseResponse {
                    closed_at: Some(ts(now)),
                    satisfied: rec.satisfied,
                })
            }
            .await,
        )
    }

    async fn declare_cannot_settle(
        &self,
        req: Request<v1::DeclareCannotSettleRequest>,
    ) -> Result<Response<v1::DeclareCannotSettleResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let reason = text("reason", &r.reason, true)?;
                self.simple(
                    &who,
                    &r.complaint_id,
                    MANAGER,
                    Command::DeclareCannotSettle,
                    |rec, _| {
                        (
                            commands::escalation_request(
                                rec,
                                v1::EscalationReason::CannotSettle,
                                &reason,
                            ),
                            v1::DeclareCannotSettleResponse { target_level: 0 },
                        )
                    },
                )
                .await
            }
            .await,
        )
    }

    async fn create_sub_task(
        &self,
        req: Request<v1::CreateSubTaskRequest>,
    ) -> Result<Response<v1::CreateSubTaskResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(async {
            let description = text("description", &r.description, true)?;
            let due_at = r
                .due_at
                .as_ref()
                .and_then(from_ts)
                .ok_or_else(|| Error::invalid("due_at", "is required"))?;
            let (mut tx, mut rec) = self.start(&who, &r.complaint_id, CENTRE).await?;
            let dept = org::department(&mut tx, r.department_id.trim())
                .await?
                .ok_or_else(|| Error::invalid("department_id", "names no known department"))?;
            let owner = if r.owner_id.trim().is_empty() {
                dept.manager_id.clone()
            } else {
                org::staff(&mut tx, r.owner_id.trim())
                    .await?
                    .ok_or_else(|| Error::invalid("owner_id", "names no known member of staff"))?
                    .id
            };
            commands::apply(&self.ctx, &mut rec, Command::CreateSubTask)?;
            let now = self.now();
            let task_id = TaskId::new_at(now).to_string();
            sqlx::query(
                "INSERT INTO subtasks (task_id, complaint_id, department_id, owner_id, description, due_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&task_id)
            .bind(&rec.complaint_id)
            .bind(&dept.id)
            .bind(&owner)
            .bind(&description)
            .bind(due_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let e = PRODUCER.event(
                &rec.complaint_id,
                now,
                &who.to_actor(),
                "",
                Payload::SubTaskCreated(v1::SubTaskCreated {
                    task_id: task_id.clone(),
                    department_id: dept.id,
                    owner_id: owner,
                    due_at: Some(ts(due_at)),
                    description,
                }),
            );
            commands::finish(&self.ctx, tx, &rec, &[e], now).await?;
            Ok(v1::CreateSubTaskResponse { task_id })
        }
        .await)
    }

    async fn complete_sub_task(
        &self,
        req: Request<v1::CompleteSubTaskRequest>,
    ) -> Result<Response<v1::CompleteSubTaskResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        done(
            async {
                let result = text("result", &r.result, true)?;
                let id = complaint_id(&r.complaint_id)?;
                let (mut tx, mut rec) = commands::begin(&self.ctx, &id).await?;
                let task = sqlx::query(
                    "SELECT department_id, owner_id, due_at, completed_at FROM subtasks
                 WHERE task_id = $1 AND complaint_id = $2",
                )
                .bind(&r.task_id)
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::invalid("task_id", "names no sub-task of this complaint"))?;
                let department_id: String = task.try_get("department_id")?;
                let owner_id: String = task.try_get("owner_id")?;
                let due_at: DateTime<Utc> = task.try_get("due_at")?;
                if task
                    .try_get::<Option<DateTime<Utc>>, _>("completed_at")?
                    .is_some()
                {
                    return Err(Error::FailedPrecondition(format!(
                        "sub-task {} is already complete",
                        r.task_id
                    )));
                }
                // The share's owner or its department's manager, or whoever may handle the complaint.
                let own = owner_id == who.actor_id
                    || (who.role == Role::DepartmentManager
                        && manages(&mut tx, &who.actor_id, &department_id).await?);
                if !own {
                    authorize(&mut tx, &who, &rec, CENTRE).await?;
                }
                commands::apply(&self.ctx, &mut rec, Command::CompleteSubTask)?;
                let now = self.now();
                sqlx::query(
                    "UPDATE subtasks SET completed_at = $2, result = $3 WHERE task_id = $1",
                )
                .bind(&r.task_id)
                .bind(now)
                .bind(&result)
                .execute(&mut *tx)
                .await?;
                let e = PRODUCER.event(
                    &rec.complaint_id,
                    now,
                    &who.to_actor(),
                    "",
                    Payload::SubTaskCompleted(v1::SubTaskCompleted {
                        task_id: r.task_id.clone(),
                        department_id,
                        owner_id,
                        due_at: Some(ts(due_at)),
                        result,
                    }),
                );
                commands::finish(&self.ctx, tx, &rec, &[e], now).await?;
                Ok(v1::CompleteSubTaskResponse { late: now > due_at })
            }
            .await,
        )
    }

    async fn get_handling(
        &self,
        req: Request<v1::GetHandlingRequest>,
    ) -> Result<Response<v1::GetHandlingResponse>, Status> {
        let who = auth::identity(&req)?;
        done(
            async {
                let id = complaint_id(&req.get_ref().complaint_id)?;
                // One snapshot for the row and its sub-tasks, without locking out commands.
                let mut tx = self.ctx.pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                let rec = commands::read(&mut tx, &id, false)
                    .await?
                    .filter(|r| r.details.is_some())
                    .ok_or_else(|| Error::NotFound(format!("complaint {id}")))?;
                if !Reach::of(&who).covers(Place::new(&rec.department_id, &rec.assignee_id)) {
                    return Err(Error::PermissionDenied(
                        access::outside(&who, &id).message().to_owned(),
                    ));
                }
                let sub_tasks = commands::subtasks(&mut tx, &id).await?;
                tx.commit().await?;
                Ok(v1::GetHandlingResponse {
                    complaint_id: rec.complaint_id.clone(),
                    stage: rec.stage.as_str().to_owned(),
                    class: rec.class_proto(),
                    department_id: rec.department_id,
                    assignee_id: rec.assignee_id,
                    acceptance_owner_id: rec.acceptance_owner_id,
                    accepted_at: rec.accepted_at.map(ts),
                    valid: rec.valid,
                    cause: rec.cause,
                    responsibility: rec.responsibility,
                    responsible_person_id: rec.responsible_person_id,
                    feedback_count: rec.feedback_count,
                    latest_solution: rec.latest_solution,
                    attempt: rec.attempt,
                    rejection_count: rec.rejection_count,
                    sub_tasks,
                    handed_in_at: rec.handed_in_at.map(ts),
                    result: rec.result,
                    satisfied: rec.satisfied,
                    closed_at: rec.closed_at.map(ts),
                })
            }
            .await,
        )
    }
}
