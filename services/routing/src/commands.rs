//! The department's handling commands (DOMAIN §3, §5). Each one locks the complaint's row
//! (`FOR UPDATE`, so two concurrent commands on one complaint take turns and the second sees
//! the first's result), asks the domain's state machine whether it is allowed, and commits the
//! new state with its events in one transaction. A refused command changes nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_domain::handling::{Command, Effect, Handling, Stage};
use redress_domain::{Class, Clock, ComplaintId};
use redress_platform::outbox::{Outbox, Writes};
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use sqlx::{PgConnection, PgPool};

use crate::assignment::{self, Weights};
use crate::envelope::PRODUCER;
use crate::error::Error;
use crate::store::handling as store;
use crate::store::organisation;

/// What every command needs.
#[derive(Clone)]
pub struct Ctx {
    pub pool: PgPool,
    pub clock: Arc<dyn Clock>,
    pub outbox: Outbox,
    pub weights: Weights,
    pub rejections_before_escalation: u32,
}

/// One complaint's handling row.
#[derive(Clone, Debug)]
pub struct Record {
    pub complaint_id: ComplaintId,
    pub stage: Stage,
    pub class: Class,
    pub number: String,
    pub details: Option<v1::ComplaintDetails>,
    pub guidance_actions: Vec<String>,
    pub customer_type: i32,
    pub department_id: String,
    pub assignee_id: String,
    pub acceptance_owner_id: String,
    pub accepted_at: Option<DateTime<Utc>>,
    pub valid: Option<bool>,
    pub cause: String,
    pub responsibility: i32,
    pub responsible_person_id: String,
    pub feedback_count: u32,
    pub latest_solution: String,
    pub attempt: u32,
    pub rejection_count: u32,
    pub handed_in_at: Option<DateTime<Utc>>,
    pub result: String,
    pub open_subtasks: u32,
    /// The customer's latest recorded satisfaction (feedback or revisit).
    pub satisfied: Option<bool>,
    /// Whether a feedback recorded it since the complaint was last (re)opened.
    pub satisfaction_recorded: bool,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Record {
    /// The state machine's view of this row.
    pub fn handling(&self, rejections_before_escalation: u32) -> Handling {
        Handling {
            stage: self.stage,
            valid: self.valid,
            cause_recorded: !self.cause.is_empty(),
            accountable: self.accountable(),
            feedback_count: self.feedback_count,
            satisfaction_recorded: self.satisfaction_recorded,
            attempt: self.attempt,
            rejection_count: self.rejection_count,
            open_subtasks: self.open_subtasks,
            rejections_before_escalation: rejections_before_escalation.max(1),
        }
    }

    /// Takes the state machine's result back into the row.
    fn absorb(&mut self, h: &Handling) {
        self.stage = h.stage;
        self.valid = h.valid;
        self.feedback_count = h.feedback_count;
        self.satisfaction_recorded = h.satisfaction_recorded;
        self.attempt = h.attempt;
        self.rejection_count = h.rejection_count;
        self.open_subtasks = h.open_subtasks;
    }

    pub fn class_proto(&self) -> i32 {
        self.class.to_wire()
    }

    /// Whether someone answers for the complaint (DOMAIN §9): a responsible person is named,
    /// or the cause lies with the customer (misuse or misunderstanding).
    pub fn accountable(&self) -> bool {
        !self.responsible_person_id.is_empty() || customer_side(self.responsibility)
    }

    /// "Restrained anger → assign someone more senior" (DOMAIN §2).
    pub fn prefers_senior(&self) -> bool {
        self.customer_type == v1::CustomerType::RestrainedAnger as i32
            || self
                .guidance_actions
                .iter()
                .any(|a| a.contains("assign_senior"))
    }
}

/// Whether `responsibility` puts the cause with the customer (DOMAIN §2 "Responsibility"):
/// then nobody in the company is fined and a valid complaint may be resolved without a name.
pub fn customer_side(responsibility: i32) -> bool {
    matches!(
        v1::Responsibility::try_from(responsibility),
        Ok(v1::Responsibility::CustomerMisuse | v1::Responsibility::CustomerMisunderstanding)
    )
}

/// The complaints among `ids` that are complete — received and confirmed — and still wait to
/// be routed, locked until the transaction ends. Anything else was routed already (redelivery,
/// or the other replica got there first) and is left alone.
pub async fn load_ready(
    conn: &mut PgConnection,
    ids: &[ComplaintId],
) -> Result<Vec<Record>, Error> {
    Ok(store::lock_many(conn, ids)
        .await?
        .into_iter()
        .filter(|(rec, halves)| {
            halves.complete() && rec.stage == Stage::AwaitingConfirmation && rec.details.is_some()
        })
        .map(|(rec, _)| rec)
        .collect())
}

/// Applies a command to the record through the state machine.
pub fn apply(ctx: &Ctx, rec: &mut Record, command: Command) -> Result<Vec<Effect>, Error> {
    let (next, effects) = rec
        .handling(ctx.rejections_before_escalation)
        .apply(command)?;
    rec.absorb(&next);
    Ok(effects)
}

/// Passes the complaint to `department_id` and assigns a handler there at once (DOMAIN §3:
/// "passes the complaint at once to the responsible business department"). `command` is
/// `Route` on first routing and `Reroute` afterwards. Returns the events.
#[allow(clippy::too_many_arguments)]
pub async fn route_and_assign(
    ctx: &Ctx,
    conn: &mut PgConnection,
    rec: &mut Record,
    command: Command,
    department_id: &str,
    rule_id: &str,
    reason: &str,
    actor: &v1::Actor,
    causation: &str,
    now: DateTime<Utc>,
) -> Result<Vec<v1::Event>, Error> {
    let dept = organisation::department(conn, department_id)
        .await?
        .ok_or_else(|| Error::invalid("department_id", "names no known department"))?;
    let step = Step {
        dept: &dept,
        actor,
        now,
    };
    let routed = step.route(ctx, rec, command, rule_id, reason, causation)?;
    let routed_id = routed.event_id.clone();
    let mut events = vec![routed];
    // Saved first so that the load computed under the department lock is exact.
    store::save(conn, rec, now).await?;
    let senior = rec.prefers_senior();
    match assignment::pick(conn, &dept.id, ctx.weights, senior).await? {
        Some(chosen) => {
            events.push(step.assign(ctx, rec, chosen, senior, &routed_id)?);
            store::save(conn, rec, now).await?;
        }
        None => step.nobody_available(rec),
    }
    Ok(events)
}

/// Routing one complaint to a department and assigning it there, as state changes and events
/// without I/O: shared by a command's [`route_and_assign`] and the consumer's batches.
pub struct Step<'a> {
    pub dept: &'a v1::Department,
    pub actor: &'a v1::Actor,
    pub now: DateTime<Utc>,
}

impl Step<'_> {
    /// Routes `rec` to the department (the state machine's `command`); its `complaint.routed`.
    pub fn route(
        &self,
        ctx: &Ctx,
        rec: &mut Record,
        command: Command,
        rule_id: &str,
        reason: &str,
        causation: &str,
    ) -> Result<v1::Event, Error> {
        let dept = self.dept;
        let previous = rec.department_id.clone();
        apply(ctx, rec, command)?;
        rec.department_id = dept.id.clone();
        rec.assignee_id.clear();
        rec.acceptance_owner_id = if dept.acceptance_owner_id.is_empty() {
            dept.manager_id.clone()
        } else {
            dept.acceptance_owner_id.clone()
        };
        Ok(PRODUCER.event(
            rec.complaint_id.as_str(),
            self.now,
            self.actor,
            causation,
            Payload::ComplaintRouted(v1::ComplaintRouted {
                department_id: dept.id.clone(),
                department_name: dept.name.clone(),
                rule_id: rule_id.to_owned(),
                reason: reason.to_owned(),
                previous_department_id: if command == Command::Route {
                    String::new()
                } else {
                    previous
                },
                acceptance_owner_id: rec.acceptance_owner_id.clone(),
                department_manager_id: dept.manager_id.clone(),
                class: rec.class_proto(),
            }),
        ))
    }

    /// Assigns the routed `rec` to `chosen`; its `complaint.assigned`, caused by `routed_id`.
    pub fn assign(
        &self,
        ctx: &Ctx,
        rec: &mut Record,
        chosen: assignment::Candidate,
        senior: bool,
        routed_id: &str,
    ) -> Result<v1::Event, Error> {
        apply(ctx, rec, Command::Assign)?;
        rec.assignee_id = chosen.staff_id.clone();
        let why = if senior {
            "customer type: restrained anger → most senior available handler"
        } else {
            "least open load"
        };
        Ok(PRODUCER.event(
            rec.complaint_id.as_str(),
            self.now,
            self.actor,
            routed_id,
            Payload::ComplaintAssigned(v1::ComplaintAssigned {
                department_id: self.dept.id.clone(),
                assignee_id: chosen.staff_id,
                assignee_name: chosen.name,
                previous_assignee_id: String::new(),
                reason: why.to_owned(),
                department_manager_id: self.dept.manager_id.clone(),
            }),
        ))
    }

    /// Nobody in the department can take it: it waits for a manager's assignment.
    pub fn nobody_available(&self, rec: &Record) {
        tracing::warn!(complaint_id = %rec.complaint_id, department = %self.dept.id,
            "no available handler; the complaint waits for a manual assignment");
    }
}

/// Begins a command: a transaction with the complaint's row locked.
pub async fn begin(ctx: &Ctx, complaint_id: &ComplaintId) -> Result<(Writes, Record), Error> {
    let mut tx = ctx.outbox.begin(&ctx.pool).await?;
    let rec = store::read(&mut tx, complaint_id, true)
        .await?
        .filter(|r| r.details.is_some())
        .ok_or_else(|| Error::NotFound(format!("complaint {complaint_id}")))?;
    Ok((tx, rec))
}

/// Ends a command: saves the row, appends its events and commits them together.
pub async fn finish(
    ctx: &Ctx,
    mut tx: Writes,
    rec: &Record,
    events: &[v1::Event],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    store::save(&mut tx, rec, now).await?;
    ctx.outbox.append(&mut tx, events).await?;
    tx.commit().await?;
    Ok(())
}

/// The events of a customer's answer (accepted; or rejected → re-study or escalation).
pub fn customer_response_events(
    rec: &Record,
    effects: &[Effect],
    reason: &str,
    actor: &v1::Actor,
    now: DateTime<Utc>,
) -> Vec<v1::Event> {
    let mut out: Vec<v1::Event> = Vec::new();
    for e in effects {
        let payload = match *e {
            Effect::CustomerAccepted { attempt } => {
                Payload::CustomerAccepted(v1::CustomerAccepted {
                    attempt,
                    note: reason.to_owned(),
                })
            }
            Effect::CustomerRejected {
                attempt,
                rejection_count,
            } => Payload::CustomerRejected(v1::CustomerRejected {
                reason: reason.to_owned(),
                rejection_count,
                attempt,
            }),
            Effect::ReStudyRequested { rejection_count } => {
                Payload::ReStudyRequested(v1::ReStudyRequested {
                    reason: format!("customer rejected the solution: {reason}"),
                    department_id: rec.department_id.clone(),
                    rejection_count,
                })
            }
            Effect::EscalationRequested { .. } => {
                escalation_request(rec, v1::EscalationReason::RejectedAgain, reason)
            }
            _ => continue,
        };
        let causation = out.first().map(|e| e.event_id.clone()).unwrap_or_default();
        out.push(PRODUCER.event(rec.complaint_id.as_str(), now, actor, &causation, payload));
    }
    out
}

/// `complaint.escalation_requested` to the top of the ladder (the general manager, DOMAIN §5);
/// level 0 lets the escalation service pick the next level of its configured ladder.
pub fn escalation_request(rec: &Record, reason: v1::EscalationReason, note: &str) -> Payload {
    Payload::EscalationRequested(v1::EscalationRequested {
        reason: reason as i32,
        target_level: 0,
        note: note.to_owned(),
        department_id: rec.department_id.clone(),
        class: rec.class_proto(),
    })
}

/// Closes a resolved complaint (DOMAIN §9 "Closing"): the stage, the close time and the
/// `complaint.closed` event, which the caller commits with the row. Refused (nothing changed)
/// unless the complaint is resolved.
pub fn close(
    ctx: &Ctx,
    rec: &mut Record,
    note: &str,
    revisit_id: &str,
    actor: &v1::Actor,
    causation: &str,
    now: DateTime<Utc>,
) -> Result<v1::Event, Error> {
    apply(ctx, rec, Command::Close)?;
    rec.closed_at = Some(now);
    Ok(PRODUCER.event(
        rec.complaint_id.as_str(),
        now,
        actor,
        causation,
        Payload::Closed(v1::Closed {
            note: note.to_owned(),
            satisfied: rec.satisfied.unwrap_or(false),
            revisit_id: revisit_id.to_owned(),
        }),
    ))
}
