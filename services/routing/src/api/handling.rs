//! The department's handling of a complaint, from acceptance to closing (DOMAIN §3, §5, §9):
//! each RPC checks its input, asks [`crate::access`] whether the caller may act, runs the
//! domain's state machine through [`crate::commands`] and commits the row with its events.
//! A refused command changes nothing.

use chrono::Duration;
use redress_domain::handling::{Command, Effect};
use redress_domain::{ComplaintId, TaskId};
use redress_platform::access::{self, Place, Reach};
use redress_platform::auth::Identity;
use redress_proto::v1::{self, event::Payload};

use super::{Api, complaint, text};
use crate::access::{Allow, CENTRE, HANDLING, MANAGER, may_close, may_complete_share};
use crate::commands::{self, Record};
use crate::envelope::{PRODUCER, from_ts, ts};
use crate::error::Error;
use crate::store::{self, organisation, subtasks};

/// A command with one event: checks the caller, applies `command`, lets `change` update the
/// row and name the event's payload, and commits both. Most handling steps are this shape.
async fn simple<T>(
    api: &Api,
    who: &Identity,
    id: &ComplaintId,
    allow: Allow,
    command: Command,
    change: impl FnOnce(&mut Record, &[Effect]) -> (Payload, T),
) -> Result<T, Error> {
    let (tx, mut rec) = api.start(who, id, allow).await?;
    let effects = commands::apply(&api.ctx, &mut rec, command)?;
    let (payload, out) = change(&mut rec, &effects);
    let now = api.now();
    let e = PRODUCER.event(rec.complaint_id.as_str(), now, &who.to_actor(), "", payload);
    commands::finish(&api.ctx, tx, &rec, &[e], now).await?;
    Ok(out)
}

pub(super) async fn accept(
    api: &Api,
    who: &Identity,
    r: v1::AcceptComplaintRequest,
) -> Result<v1::AcceptComplaintResponse, Error> {
    let (tx, mut rec) = api
        .start(who, &complaint(&r.complaint_id)?, HANDLING)
        .await?;
    if let Some(at) = rec.accepted_at {
        // Accepting twice is harmless: the first time stands.
        return Ok(v1::AcceptComplaintResponse {
            accepted_at: Some(ts(at)),
            department_id: rec.department_id,
            already_accepted: true,
        });
    }
    commands::apply(&api.ctx, &mut rec, Command::Accept)?;
    let now = api.now();
    rec.accepted_at = Some(now);
    let e = PRODUCER.event(
        rec.complaint_id.as_str(),
        now,
        &who.to_actor(),
        "",
        Payload::AcceptedByDepartment(v1::AcceptedByDepartment {
            department_id: rec.department_id.clone(),
            accepted_by: who.actor_id.clone(),
            accepted_at: Some(ts(now)),
        }),
    );
    commands::finish(&api.ctx, tx, &rec, &[e], now).await?;
    Ok(v1::AcceptComplaintResponse {
        accepted_at: Some(ts(now)),
        department_id: rec.department_id,
        already_accepted: false,
    })
}

pub(super) async fn decide_validity(
    api: &Api,
    who: &Identity,
    r: v1::DecideValidityRequest,
) -> Result<v1::DecideValidityResponse, Error> {
    let explanation = text("explanation", &r.explanation, !r.valid)?;
    simple(
        api,
        who,
        &complaint(&r.complaint_id)?,
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

pub(super) async fn record_cause(
    api: &Api,
    who: &Identity,
    r: v1::RecordCauseRequest,
) -> Result<v1::RecordCauseResponse, Error> {
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
        let mut conn = api.ctx.pool.acquire().await?;
        Some(
            organisation::staff(&mut conn, r.responsible_person_id.trim())
                .await?
                .ok_or_else(|| {
                    Error::invalid("responsible_person_id", "names no known member of staff")
                })?,
        )
    };
    // DOMAIN §9: a named person or a customer-side cause is what lets a valid
    // complaint be resolved (its class fine needs someone to go to).
    let accountable = person.is_some() || commands::customer_side(responsibility as i32);
    simple(
        api,
        who,
        &complaint(&r.complaint_id)?,
        HANDLING,
        Command::RecordCause { accountable },
        |rec, _| {
            rec.cause = cause.clone();
            rec.responsibility = responsibility as i32;
            rec.responsible_person_id = person.as_ref().map(|p| p.id.clone()).unwrap_or_default();
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

pub(super) async fn give_feedback(
    api: &Api,
    who: &Identity,
    r: v1::GiveFeedbackRequest,
) -> Result<v1::GiveFeedbackResponse, Error> {
    let content = text("content", &r.content, true)?;
    if r.compensation_fen < 0 {
        return Err(Error::invalid("compensation_fen", "must not be negative"));
    }
    let mut channel = r.channel;
    let satisfied = r.satisfied;
    simple(
        api,
        who,
        &complaint(&r.complaint_id)?,
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

pub(super) async fn report_intermediate_result(
    api: &Api,
    who: &Identity,
    r: v1::ReportIntermediateResultRequest,
) -> Result<v1::ReportIntermediateResultResponse, Error> {
    let content = text("content", &r.content, true)?;
    if let Some(t) = &r.expected_completion_at {
        from_ts(t)
            .ok_or_else(|| Error::invalid("expected_completion_at", "is not a valid timestamp"))?;
    }
    simple(
        api,
        who,
        &complaint(&r.complaint_id)?,
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

pub(super) async fn propose_resolution(
    api: &Api,
    who: &Identity,
    r: v1::ProposeResolutionRequest,
) -> Result<v1::ProposeResolutionResponse, Error> {
    let solution = text("solution", &r.solution, true)?;
    for (i, remedy) in r.remedies.iter().enumerate() {
        if remedy.amount_fen < 0 {
            return Err(Error::invalid(
                &format!("remedies[{i}].amount_fen"),
                "must not be negative",
            ));
        }
    }
    simple(
        api,
        who,
        &complaint(&r.complaint_id)?,
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

pub(super) async fn record_customer_response(
    api: &Api,
    who: &Identity,
    r: v1::RecordCustomerResponseRequest,
) -> Result<v1::RecordCustomerResponseResponse, Error> {
    let reason = text("reason", &r.reason, !r.accepted)?;
    let (tx, mut rec) = api.start(who, &complaint(&r.complaint_id)?, CENTRE).await?;
    let effects = commands::apply(
        &api.ctx,
        &mut rec,
        Command::CustomerResponse {
            accepted: r.accepted,
        },
    )?;
    let now = api.now();
    let events = commands::customer_response_events(&rec, &effects, &reason, &who.to_actor(), now);
    commands::finish(&api.ctx, tx, &rec, &events, now).await?;
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

pub(super) async fn resolve(
    api: &Api,
    who: &Identity,
    r: v1::ResolveRequest,
) -> Result<v1::ResolveResponse, Error> {
    let result = text("result", &r.result, true)?;
    let now = api.now();
    let handed_in_at = match &r.handed_in_at {
        None => now,
        Some(t) => from_ts(t)
            .filter(|at| *at <= now + Duration::minutes(5))
            .ok_or_else(|| Error::invalid("handed_in_at", "is not a valid past time"))?,
    };
    let named = r.responsible_person_id.trim();
    let person = if named.is_empty() {
        None
    } else {
        let mut conn = api.ctx.pool.acquire().await?;
        Some(
            organisation::staff(&mut conn, named)
                .await?
                .ok_or_else(|| {
                    Error::invalid("responsible_person_id", "names no known member of staff")
                })?,
        )
    };
    simple(
        api,
        who,
        &complaint(&r.complaint_id)?,
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

pub(super) async fn close(
    api: &Api,
    who: &Identity,
    r: v1::CloseRequest,
) -> Result<v1::CloseResponse, Error> {
    let note = text("note", &r.note, true)?;
    let id = complaint(&r.complaint_id)?;
    let (mut tx, mut rec) = commands::begin(&api.ctx, &id).await?;
    may_close(&mut tx, who, &rec).await?;
    let now = api.now();
    let e = commands::close(&api.ctx, &mut rec, &note, "", &who.to_actor(), "", now)?;
    commands::finish(&api.ctx, tx, &rec, &[e], now).await?;
    Ok(v1::CloseResponse {
        closed_at: Some(ts(now)),
        satisfied: rec.satisfied,
    })
}

pub(super) async fn declare_cannot_settle(
    api: &Api,
    who: &Identity,
    r: v1::DeclareCannotSettleRequest,
) -> Result<v1::DeclareCannotSettleResponse, Error> {
    let reason = text("reason", &r.reason, true)?;
    simple(
        api,
        who,
        &complaint(&r.complaint_id)?,
        MANAGER,
        Command::DeclareCannotSettle,
        |rec, _| {
            (
                commands::escalation_request(rec, v1::EscalationReason::CannotSettle, &reason),
                v1::DeclareCannotSettleResponse { target_level: 0 },
            )
        },
    )
    .await
}

pub(super) async fn create_sub_task(
    api: &Api,
    who: &Identity,
    r: v1::CreateSubTaskRequest,
) -> Result<v1::CreateSubTaskResponse, Error> {
    let description = text("description", &r.description, true)?;
    let due_at = r
        .due_at
        .as_ref()
        .and_then(from_ts)
        .ok_or_else(|| Error::invalid("due_at", "is required"))?;
    let (mut tx, mut rec) = api.start(who, &complaint(&r.complaint_id)?, CENTRE).await?;
    let dept = organisation::department(&mut tx, r.department_id.trim())
        .await?
        .ok_or_else(|| Error::invalid("department_id", "names no known department"))?;
    let owner = if r.owner_id.trim().is_empty() {
        dept.manager_id.clone()
    } else {
        organisation::staff(&mut tx, r.owner_id.trim())
            .await?
            .ok_or_else(|| Error::invalid("owner_id", "names no known member of staff"))?
            .id
    };
    commands::apply(&api.ctx, &mut rec, Command::CreateSubTask)?;
    let now = api.now();
    let task_id = TaskId::new_at(now).to_string();
    subtasks::insert(
        &mut tx,
        &subtasks::NewSubTask {
            task_id: &task_id,
            complaint_id: &rec.complaint_id,
            department_id: &dept.id,
            owner_id: &owner,
            description: &description,
            due_at,
            created_at: now,
        },
    )
    .await?;
    let e = PRODUCER.event(
        rec.complaint_id.as_str(),
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
    commands::finish(&api.ctx, tx, &rec, &[e], now).await?;
    Ok(v1::CreateSubTaskResponse { task_id })
}

pub(super) async fn complete_sub_task(
    api: &Api,
    who: &Identity,
    r: v1::CompleteSubTaskRequest,
) -> Result<v1::CompleteSubTaskResponse, Error> {
    let result = text("result", &r.result, true)?;
    let id = complaint(&r.complaint_id)?;
    let (mut tx, mut rec) = commands::begin(&api.ctx, &id).await?;
    let share = subtasks::share(&mut tx, &r.task_id, &id)
        .await?
        .ok_or_else(|| Error::invalid("task_id", "names no sub-task of this complaint"))?;
    if share.completed_at.is_some() {
        return Err(Error::FailedPrecondition(format!(
            "sub-task {} is already complete",
            r.task_id
        )));
    }
    may_complete_share(&mut tx, who, &rec, &share.department_id, &share.owner_id).await?;
    commands::apply(&api.ctx, &mut rec, Command::CompleteSubTask)?;
    let now = api.now();
    subtasks::complete(&mut tx, &r.task_id, now, &result).await?;
    let e = PRODUCER.event(
        rec.complaint_id.as_str(),
        now,
        &who.to_actor(),
        "",
        Payload::SubTaskCompleted(v1::SubTaskCompleted {
            task_id: r.task_id.clone(),
            department_id: share.department_id,
            owner_id: share.owner_id,
            due_at: Some(ts(share.due_at)),
            result,
        }),
    );
    commands::finish(&api.ctx, tx, &rec, &[e], now).await?;
    Ok(v1::CompleteSubTaskResponse {
        late: now > share.due_at,
    })
}

pub(super) async fn get_handling(
    api: &Api,
    who: &Identity,
    r: v1::GetHandlingRequest,
) -> Result<v1::GetHandlingResponse, Error> {
    let id = complaint(&r.complaint_id)?;
    // One snapshot for the row and its sub-tasks, without locking out commands.
    let mut tx = api.ctx.pool.begin().await?;
    store::snapshot(&mut tx).await?;
    let rec = store::handling::read(&mut tx, &id, false)
        .await?
        .filter(|r| r.details.is_some())
        .ok_or_else(|| Error::NotFound(format!("complaint {id}")))?;
    if !Reach::of(who).covers(Place::new(&rec.department_id, &rec.assignee_id)) {
        return Err(Error::PermissionDenied(
            access::outside(who, id.as_str()).message().to_owned(),
        ));
    }
    let sub_tasks = subtasks::of_complaint(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(v1::GetHandlingResponse {
        complaint_id: rec.complaint_id.to_string(),
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
