//! The department's handling commands (DOMAIN §3, §5). Each one locks the complaint's row
//! (`FOR UPDATE`, so two concurrent commands on one complaint take turns and the second sees
//! the first's result), asks the domain's state machine whether it is allowed, and commits the
//! new state with its events in one transaction. A refused command changes nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_domain::handling::{Command, Effect, Handling, Stage};
use redress_domain::{Class, Clock};
use redress_platform::outbox::{Outbox, Writes};
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use sqlx::{PgConnection, PgPool, Row};

use crate::assignment::{self, Weights};
use crate::envelope::{PRODUCER, ts};
use crate::error::Error;
use crate::org;

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
    pub complaint_id: String,
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

fn u32_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
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

/// Loads a complaint's row, locked until the transaction ends.
pub async fn load(conn: &mut PgConnection, complaint_id: &str) -> Result<Option<Record>, Error> {
    read(conn, complaint_id, true).await
}

/// Loads a complaint's row, locked (`FOR UPDATE`) or not (a plain read for queries).
pub async fn read(
    conn: &mut PgConnection,
    complaint_id: &str,
    lock: bool,
) -> Result<Option<Record>, Error> {
    let sql = if lock {
        concat!(
            "SELECT h.*, (SELECT count(*) FROM subtasks t WHERE t.complaint_id = h.complaint_id
                      AND t.completed_at IS NULL) AS open_subtasks
             FROM handling h WHERE h.complaint_id = $1",
            " FOR UPDATE"
        )
    } else {
        "SELECT h.*, (SELECT count(*) FROM subtasks t WHERE t.complaint_id = h.complaint_id
                      AND t.completed_at IS NULL) AS open_subtasks
         FROM handling h WHERE h.complaint_id = $1"
    };
    let Some(r) = sqlx::query(sql)
        .bind(complaint_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    record_from_row(&r).map(Some)
}

/// A complaint's row read with its open sub-tasks counted (`open_subtasks`).
fn record_from_row(r: &sqlx::postgres::PgRow) -> Result<Record, Error> {
    let stage: String = r.try_get("stage")?;
    let class: String = r.try_get("class")?;
    let details = r
        .try_get::<Option<Vec<u8>>, _>("details")?
        .map(|b| v1::ComplaintDetails::decode(b.as_slice()))
        .transpose()
        .map_err(|e| Error::Internal(format!("stored details: {e}")))?;
    Ok(Record {
        complaint_id: r.try_get("complaint_id")?,
        stage: Stage::parse(&stage).ok_or_else(|| Error::Internal(format!("stage {stage}")))?,
        class: Class::parse(&class).map_err(|e| Error::Internal(format!("stored {e}")))?,
        number: r.try_get("number")?,
        details,
        guidance_actions: r.try_get("guidance_actions")?,
        customer_type: r.try_get("customer_type")?,
        department_id: r.try_get("department_id")?,
        assignee_id: r.try_get("assignee_id")?,
        acceptance_owner_id: r.try_get("acceptance_owner_id")?,
        accepted_at: r.try_get("accepted_at")?,
        valid: r.try_get("valid")?,
        cause: r.try_get("cause")?,
        responsibility: r.try_get("responsibility")?,
        responsible_person_id: r.try_get("responsible_person_id")?,
        feedback_count: u32_of(r.try_get("feedback_count")?),
        latest_solution: r.try_get("latest_solution")?,
        attempt: u32_of(r.try_get("attempt")?),
        rejection_count: u32_of(r.try_get("rejection_count")?),
        handed_in_at: r.try_get("handed_in_at")?,
        result: r.try_get("result")?,
        open_subtasks: u32::try_from(r.try_get::<i64, _>("open_subtasks")?).unwrap_or(0),
        satisfied: r.try_get("satisfied")?,
        satisfaction_recorded: r.try_get("satisfaction_recorded")?,
        closed_at: r.try_get("closed_at")?,
    })
}

/// The complaints among `ids` that are complete — received and confirmed — and still wait to
/// be routed, locked until the transaction ends (in id order, as every locker of several rows
/// must, so two replicas never deadlock).
pub async fn load_ready(conn: &mut PgConnection, ids: &[String]) -> Result<Vec<Record>, Error> {
    let rows = sqlx::query(
        "SELECT h.*, (SELECT count(*) FROM subtasks t WHERE t.complaint_id = h.complaint_id
                  AND t.completed_at IS NULL) AS open_subtasks
         FROM handling h WHERE h.complaint_id = ANY($1)
         ORDER BY h.complaint_id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let complete = r.try_get::<bool, _>("received")? && r.try_get::<bool, _>("confirmed")?;
        let rec = record_from_row(r)?;
        if complete && rec.stage == Stage::AwaitingConfirmation && rec.details.is_some() {
            out.push(rec);
        }
    }
    Ok(out)
}

/// Writes the row back.
pub async fn save(conn: &mut PgConnection, r: &Record, now: DateTime<Utc>) -> Result<(), Error> {
    sqlx::query(
        "UPDATE handling SET stage = $2, class = $3, department_id = $4, assignee_id = $5,
            acceptance_owner_id = $6, accepted_at = $7, valid = $8, cause = $9, responsibility = $10,
            responsible_person_id = $11, feedback_count = $12, latest_solution = $13, attempt = $14,
            rejection_count = $15, handed_in_at = $16, result = $17, open = $18, updated_at = $19,
            satisfied = $20, satisfaction_recorded = $21, closed_at = $22
         WHERE complaint_id = $1",
    )
    .bind(&r.complaint_id)
    .bind(r.stage.as_str())
    .bind(r.class.as_str())
    .bind(&r.department_id)
    .bind(&r.assignee_id)
    .bind(&r.acceptance_owner_id)
    .bind(r.accepted_at)
    .bind(r.valid)
    .bind(&r.cause)
    .bind(r.responsibility)
    .bind(&r.responsible_person_id)
    .bind(i32_of(r.feedback_count))
    .bind(&r.latest_solution)
    .bind(i32_of(r.attempt))
    .bind(i32_of(r.rejection_count))
    .bind(r.handed_in_at)
    .bind(&r.result)
    .bind(r.stage.is_open())
    .bind(now)
    .bind(r.satisfied)
    .bind(r.satisfaction_recorded)
    .bind(r.closed_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes several rows back in one statement, as [`save`] writes one.
pub async fn save_many(
    conn: &mut PgConnection,
    recs: &[&Record],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if recs.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($f:expr) => {
            recs.iter().map($f).collect::<Vec<_>>()
        };
    }
    sqlx::query(
        "UPDATE handling h SET stage = r.stage, class = r.class, department_id = r.department_id,
            assignee_id = r.assignee_id, acceptance_owner_id = r.acceptance_owner_id,
            accepted_at = r.accepted_at, valid = r.valid, cause = r.cause,
            responsibility = r.responsibility, responsible_person_id = r.responsible_person_id,
            feedback_count = r.feedback_count, latest_solution = r.latest_solution,
            attempt = r.attempt, rejection_count = r.rejection_count,
            handed_in_at = r.handed_in_at, result = r.result, open = r.open, updated_at = $22,
            satisfied = r.satisfied, satisfaction_recorded = r.satisfaction_recorded,
            closed_at = r.closed_at
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::bool[], $9::text[], $10::int[], $11::text[],
                     $12::int[], $13::text[], $14::int[], $15::int[], $16::timestamptz[],
                     $17::text[], $18::bool[], $19::bool[], $20::bool[], $21::timestamptz[])
            AS r(complaint_id, stage, class, department_id, assignee_id, acceptance_owner_id,
                 accepted_at, valid, cause, responsibility, responsible_person_id,
                 feedback_count, latest_solution, attempt, rejection_count, handed_in_at,
                 result, open, satisfied, satisfaction_recorded, closed_at)
         WHERE h.complaint_id = r.complaint_id",
    )
    .bind(column!(|r| r.complaint_id.clone()))
    .bind(column!(|r| r.stage.as_str()))
    .bind(column!(|r| r.class.as_str().to_owned()))
    .bind(column!(|r| r.department_id.clone()))
    .bind(column!(|r| r.assignee_id.clone()))
    .bind(column!(|r| r.acceptance_owner_id.clone()))
    .bind(column!(|r| r.accepted_at))
    .bind(column!(|r| r.valid))
    .bind(column!(|r| r.cause.clone()))
    .bind(column!(|r| r.responsibility))
    .bind(column!(|r| r.responsible_person_id.clone()))
    .bind(column!(|r| i32_of(r.feedback_count)))
    .bind(column!(|r| r.latest_solution.clone()))
    .bind(column!(|r| i32_of(r.attempt)))
    .bind(column!(|r| i32_of(r.rejection_count)))
    .bind(column!(|r| r.handed_in_at))
    .bind(column!(|r| r.result.clone()))
    .bind(column!(|r| r.stage.is_open()))
    .bind(column!(|r| r.satisfied))
    .bind(column!(|r| r.satisfaction_recorded))
    .bind(column!(|r| r.closed_at))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
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
    let dept = org::department(conn, department_id)
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
    save(conn, rec, now).await?;
    let senior = rec.prefers_senior();
    match assignment::pick(conn, &dept.id, ctx.weights, senior).await? {
        Some(chosen) => {
            events.push(step.assign(ctx, rec, chosen, senior, &routed_id)?);
            save(conn, rec, now).await?;
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
            &rec.complaint_id,
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
            &rec.complaint_id,
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
pub async fn begin(ctx: &Ctx, complaint_id: &str) -> Result<(Writes, Record), Error> {
    let mut tx = ctx.outbox.begin(&ctx.pool).await?;
    let rec = load(&mut tx, complaint_id)
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
    save(&mut tx, rec, now).await?;
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
        out.push(PRODUCER.event(&rec.complaint_id, now, actor, &causation, payload));
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
        &rec.complaint_id,
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

/// The sub-tasks of a complaint, in creation order.
pub async fn subtasks(
    conn: &mut PgConnection,
    complaint_id: &str,
) -> Result<Vec<v1::SubTask>, Error> {
    let rows =
        sqlx::query("SELECT * FROM subtasks WHERE complaint_id = $1 ORDER BY created_at, task_id")
            .bind(complaint_id)
            .fetch_all(conn)
            .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(v1::SubTask {
            task_id: r.try_get("task_id")?,
            department_id: r.try_get("department_id")?,
            owner_id: r.try_get("owner_id")?,
            description: r.try_get("description")?,
            due_at: Some(ts(r.try_get("due_at")?)),
            completed_at: r
                .try_get::<Option<DateTime<Utc>>, _>("completed_at")?
                .map(ts),
            result: r.try_get("result")?,
        });
    }
    Ok(out)
}
