//! The agent's and the manager's commands: claim a revisit, record its outcome, sign the sheet,
//! record on-site service. Each change and its events commit in one transaction.
//!
//! DOMAIN §6: "A revisit records the customer's change of feeling, remaining dissatisfaction,
//! opinions and suggestions; a question that can't be answered on the spot gets an appointed
//! answer time; where the revisit raised new issues, the department manager gives the result and
//! signs the revisit sheet." "The customer's satisfaction is reported to the business department
//! the same day." "Dissatisfied, and the customer complains again → a repeat complaint ...
//! 'Dissatisfied' and 'repeat complaint' are recorded separately." — see
//! `docs/adr/0011-repeat-complaint-reopens-the-original.md` for why the original is reopened.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use redress_domain::revisit::{self, RevisitKind};
use redress_domain::{Clock, Policy, RevisitId};
use redress_platform::outbox::Outbox;
use redress_proto::v1::{self, event::Payload};
use sqlx::{PgConnection, Row};

use crate::envelope::{PRODUCER, ts};
use crate::error::Error;
use crate::{consumer, planner, view};
use redress_proto::Wire as _;
use redress_proto::convert::class_letter_to_wire;

/// The revisit rules bound to the policy, clock and outbox.
#[derive(Clone)]
pub struct Work {
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    pub outbox: Outbox,
}

/// Longest free text accepted in an outcome, in characters.
const MAX_TEXT: usize = 4000;

pub fn revisit_id(raw: &str) -> Result<String, Error> {
    RevisitId::parse(raw)
        .map(|id| id.to_string())
        .map_err(|e| Error::invalid("revisit_id", &e.to_string()))
}

/// The locked row of a revisit: its state, agent, complaint and what the commands check.
struct Locked {
    state: String,
    agent_id: Option<String>,
    complaint_id: String,
    kind: RevisitKind,
    attempts: u32,
    new_issues: bool,
}

async fn lock(conn: &mut PgConnection, id: &str) -> Result<Locked, Error> {
    let row = sqlx::query(
        "SELECT state, agent_id, complaint_id, kind, attempts, new_issues
         FROM revisits WHERE revisit_id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::NotFound(format!("revisit {id}")))?;
    let kind: String = row.try_get("kind")?;
    Ok(Locked {
        state: row.try_get("state")?,
        agent_id: row.try_get("agent_id")?,
        complaint_id: row.try_get("complaint_id")?,
        kind: RevisitKind::parse(&kind)
            .ok_or_else(|| Error::Internal(format!("stored kind {kind}")))?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
        new_issues: row.try_get("new_issues")?,
    })
}

/// What a reached revisit recorded, checked.
pub struct Outcome {
    pub satisfied: bool,
    pub feelings: String,
    pub remaining_dissatisfaction: String,
    pub opinions: String,
    pub appointed_answer_at: Option<DateTime<Utc>>,
    pub method: v1::RevisitMethod,
    pub new_issues: bool,
    pub complains_again: bool,
    pub repeat_reason: String,
}

impl Outcome {
    /// Checks a reached outcome; every refusal names its field.
    pub fn parse(req: &v1::RecordOutcomeRequest) -> Result<Outcome, Error> {
        let method = v1::RevisitMethod::try_from(req.method)
            .ok()
            .filter(|m| *m != v1::RevisitMethod::Unspecified)
            .ok_or_else(|| Error::invalid("method", "is required: phone or visit"))?;
        for (field, text) in [
            ("feelings", &req.feelings),
            ("remaining_dissatisfaction", &req.remaining_dissatisfaction),
            ("opinions", &req.opinions),
            ("repeat_reason", &req.repeat_reason),
        ] {
            if text.chars().count() > MAX_TEXT {
                return Err(Error::invalid(field, "is too long"));
            }
        }
        if req.complains_again && req.satisfied {
            return Err(Error::invalid(
                "complains_again",
                "only a dissatisfied customer complains again",
            ));
        }
        if req.complains_again && req.repeat_reason.trim().is_empty() {
            return Err(Error::invalid(
                "repeat_reason",
                "is required when the customer complains again",
            ));
        }
        Ok(Outcome {
            satisfied: req.satisfied,
            feelings: req.feelings.trim().to_owned(),
            remaining_dissatisfaction: req.remaining_dissatisfaction.trim().to_owned(),
            opinions: req.opinions.trim().to_owned(),
            appointed_answer_at: crate::envelope::request_instant(
                req.appointed_answer_at.as_ref(),
                "appointed_answer_at",
            )?,
            method,
            new_issues: req.new_issues,
            complains_again: req.complains_again,
            repeat_reason: req.repeat_reason.trim().to_owned(),
        })
    }
}

impl Work {
    /// The calling agent takes a revisit: exactly one of several agents racing wins; the same
    /// agent claiming again gets the revisit back unchanged.
    pub async fn claim(
        &self,
        conn: &mut PgConnection,
        id: &str,
        actor: &v1::Actor,
    ) -> Result<v1::Revisit, Error> {
        let r = lock(conn, id).await?;
        match r.state.as_str() {
            "claimed" if r.agent_id.as_deref() == Some(actor.id.as_str()) => {
                return view::get(conn, id).await;
            }
            "claimed" => {
                return Err(Error::AlreadyExists(format!(
                    "revisit {id} is claimed by {}",
                    r.agent_id.unwrap_or_default()
                )));
            }
            "scheduled" | "unreached" => {}
            other => {
                return Err(Error::FailedPrecondition(format!(
                    "revisit {id} is {other}; only a scheduled or unreached revisit can be claimed"
                )));
            }
        }
        sqlx::query("SELECT 1 FROM revisits WHERE revisit_id = $1 AND call_at IS NULL")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .map_or(Ok(()), |_| {
                Err(Error::FailedPrecondition(format!(
                    "revisit {id} is unreached and its attempts are used up"
                )))
            })?;
        let now = self.clock.now();
        sqlx::query("UPDATE revisits SET state = 'claimed', agent_id = $2 WHERE revisit_id = $1")
            .bind(id)
            .bind(&actor.id)
            .execute(&mut *conn)
            .await?;
        let e = PRODUCER.event(
            &r.complaint_id,
            now,
            actor,
            "",
            Payload::RevisitClaimed(v1::RevisitClaimed {
                revisit_id: id.to_owned(),
                agent_id: actor.id.clone(),
            }),
        );
        self.outbox.append(conn, &[e]).await?;
        view::get(conn, id).await
    }

    /// Records an attempt or an outcome. Returns the revisit and whether a repeat complaint was
    /// recorded.
    pub async fn record_outcome(
        &self,
        conn: &mut PgConnection,
        req: &v1::RecordOutcomeRequest,
        id: &str,
        actor: &v1::Actor,
    ) -> Result<(v1::Revisit, bool), Error> {
        // Checked before anything is read or changed.
        let outcome = if req.reached {
            Some(Outcome::parse(req)?)
        } else {
            None
        };
        let r = lock(conn, id).await?;
        if r.state != "claimed" {
            return Err(Error::FailedPrecondition(format!(
                "revisit {id} is {}; claim it before recording its outcome",
                r.state
            )));
        }
        if r.agent_id.as_deref() != Some(actor.id.as_str()) {
            return Err(Error::PermissionDenied(format!(
                "revisit {id} is claimed by another agent"
            )));
        }
        let now = self.clock.now();
        let c = sqlx::query(
            "SELECT department_id, class, responsible_person_id, resolved_at
             FROM complaints WHERE complaint_id = $1 FOR UPDATE",
        )
        .bind(&r.complaint_id)
        .fetch_one(&mut *conn)
        .await?;
        let department: String = c.try_get("department_id")?;
        let mut completed = v1::RevisitCompleted {
            revisit_id: id.to_owned(),
            reached: req.reached,
            kind: r.kind.to_wire(),
            agent_id: actor.id.clone(),
            department_id: department.clone(),
            ..Default::default()
        };
        let Some(o) = outcome else {
            return self.unreached(conn, id, &r, completed, actor, now).await;
        };
        sqlx::query(
            "UPDATE revisits SET state = 'completed', call_at = NULL, reached = true,
                satisfied = $2, feelings = $3, remaining_dissatisfaction = $4, opinions = $5,
                appointed_answer_at = $6, method = $7, new_issues = $8, complains_again = $9,
                repeat_reason = $10, completed_at = $11
             WHERE revisit_id = $1",
        )
        .bind(id)
        .bind(o.satisfied)
        .bind(&o.feelings)
        .bind(&o.remaining_dissatisfaction)
        .bind(&o.opinions)
        .bind(o.appointed_answer_at)
        .bind(o.method.as_str_name())
        .bind(o.new_issues)
        .bind(o.complains_again)
        .bind(&o.repeat_reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        completed.satisfied = o.satisfied;
        completed.feelings = o.feelings.clone();
        completed.remaining_dissatisfaction = o.remaining_dissatisfaction.clone();
        completed.opinions = o.opinions.clone();
        completed.appointed_answer_at = o.appointed_answer_at.map(ts);
        completed.method = o.method as i32;
        completed.new_issues = o.new_issues;
        let done = PRODUCER.event(
            &r.complaint_id,
            now,
            actor,
            "",
            Payload::RevisitCompleted(completed),
        );
        // DOMAIN §6: satisfaction reaches the business department the same day — at once.
        let summary = if o.satisfied {
            if o.opinions.is_empty() {
                "satisfied".to_owned()
            } else {
                format!("satisfied; {}", o.opinions)
            }
        } else {
            format!("dissatisfied: {}", o.remaining_dissatisfaction)
        };
        let reported = PRODUCER.event(
            &r.complaint_id,
            now,
            actor,
            &done.event_id,
            Payload::SatisfactionReported(v1::SatisfactionReported {
                satisfied: o.satisfied,
                department_id: department.clone(),
                revisit_id: id.to_owned(),
                summary: summary.chars().take(500).collect(),
            }),
        );
        let mut events = vec![done, reported];
        if o.complains_again {
            let class: Option<String> = c.try_get("class")?;
            let resolved_at: Option<DateTime<Utc>> = c.try_get("resolved_at")?;
            let cause = events[0].event_id.clone();
            let repeat = PRODUCER.event(
                &r.complaint_id,
                now,
                actor,
                &cause,
                Payload::RepeatComplaint(v1::RepeatComplaint {
                    original_complaint_id: r.complaint_id.clone(),
                    revisit_id: id.to_owned(),
                    reason: o.repeat_reason.clone(),
                    department_id: department,
                    responsible_person_id: c.try_get("responsible_person_id")?,
                    original_class: class_letter_to_wire(class.as_deref().unwrap_or_default()),
                }),
            );
            sqlx::query(
                "UPDATE complaints SET repeat_count = repeat_count + 1 WHERE complaint_id = $1",
            )
            .bind(&r.complaint_id)
            .execute(&mut *conn)
            .await?;
            if resolved_at.is_some() {
                // Resolved, so it is reopened as the repeat complaint; an open complaint is
                // still being handled and only records the repeat.
                events.push(PRODUCER.event(
                    &r.complaint_id,
                    now,
                    actor,
                    &repeat.event_id,
                    Payload::Reopened(v1::Reopened {
                        reason: format!("repeat complaint (再度投诉): {}", o.repeat_reason),
                        repeat_complaint: true,
                        revisit_id: id.to_owned(),
                    }),
                ));
                consumer::reopen(conn, &self.policy, &r.complaint_id, now).await?;
            }
            events.insert(2, repeat);
            planner::plan_complaint(
                conn,
                &self.outbox,
                &self.policy,
                &r.complaint_id,
                now,
                &cause,
            )
            .await?;
        }
        self.outbox.append(conn, &events).await?;
        Ok((view::get(conn, id).await?, o.complains_again))
    }

    /// DOMAIN §6 practice: an unreached customer is tried again at another time of day, up to
    /// the policy's attempts; then the revisit stays unreached and the report lists the customer.
    async fn unreached(
        &self,
        conn: &mut PgConnection,
        id: &str,
        r: &Locked,
        completed: v1::RevisitCompleted,
        actor: &v1::Actor,
        now: DateTime<Utc>,
    ) -> Result<(v1::Revisit, bool), Error> {
        let attempts = r.attempts + 1;
        let next = revisit::next_attempt(&self.policy, attempts, now);
        // The retry is open to whichever agent is on duty then.
        sqlx::query(
            "UPDATE revisits SET state = 'unreached', agent_id = NULL, attempts = $2,
                call_at = $3, reached = false
             WHERE revisit_id = $1",
        )
        .bind(id)
        .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
        .bind(next)
        .execute(&mut *conn)
        .await?;
        let done = PRODUCER.event(
            &r.complaint_id,
            now,
            actor,
            "",
            Payload::RevisitCompleted(completed),
        );
        let mut events = Vec::with_capacity(2);
        if let Some(at) = next {
            events.push(
                planner::scheduled_event(
                    conn,
                    &r.complaint_id,
                    id,
                    r.kind,
                    at,
                    now,
                    &done.event_id,
                )
                .await?,
            );
        }
        events.insert(0, done);
        self.outbox.append(conn, &events).await?;
        Ok((view::get(conn, id).await?, false))
    }

    /// The department manager gives the result of the issues the revisit raised and signs the
    /// sheet. Only a completed revisit can be signed; signing twice is refused.
    pub async fn sign_off(
        &self,
        conn: &mut PgConnection,
        id: &str,
        result: &str,
        actor: &v1::Actor,
        may_sign_any: bool,
    ) -> Result<v1::Revisit, Error> {
        let r = lock(conn, id).await?;
        if r.state != "completed" {
            return Err(Error::FailedPrecondition(format!(
                "revisit {id} is {}; only a completed revisit can be signed off",
                r.state
            )));
        }
        if r.new_issues && result.trim().is_empty() {
            return Err(Error::invalid(
                "result",
                "is required: the revisit raised new issues",
            ));
        }
        if result.chars().count() > MAX_TEXT {
            return Err(Error::invalid("result", "is too long"));
        }
        let manager: String = sqlx::query_scalar(
            "SELECT department_manager_id FROM complaints WHERE complaint_id = $1",
        )
        .bind(&r.complaint_id)
        .fetch_one(&mut *conn)
        .await?;
        if !may_sign_any && !manager.is_empty() && manager != actor.id {
            return Err(Error::PermissionDenied(format!(
                "only the department's manager ({manager}) signs this revisit sheet"
            )));
        }
        let now = self.clock.now();
        sqlx::query(
            "UPDATE revisits SET state = 'signed_off', signed_by = $2, sign_off_result = $3,
                signed_at = $4
             WHERE revisit_id = $1",
        )
        .bind(id)
        .bind(&actor.id)
        .bind(result.trim())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        let e = PRODUCER.event(
            &r.complaint_id,
            now,
            actor,
            "",
            Payload::RevisitSignedOff(v1::RevisitSignedOff {
                revisit_id: id.to_owned(),
                manager_id: actor.id.clone(),
                result: result.trim().to_owned(),
            }),
        );
        self.outbox.append(conn, &[e]).await?;
        view::get(conn, id).await
    }

    /// Records on-site service and plans the follow-up within a week. The same service (same
    /// complaint and time) recorded twice plans one follow-up.
    pub async fn record_on_site(
        &self,
        conn: &mut PgConnection,
        complaint_id: &str,
        served_at: Option<DateTime<Utc>>,
        actor: &v1::Actor,
    ) -> Result<v1::Revisit, Error> {
        let now = self.clock.now();
        let served_at = served_at.unwrap_or(now);
        if served_at > now + Duration::minutes(5) {
            return Err(Error::invalid("served_at", "is in the future"));
        }
        planner::ensure_complaint(conn, complaint_id).await?;
        let fresh = sqlx::query(
            "INSERT INTO on_site_services (complaint_id, served_at, recorded_by)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(complaint_id)
        .bind(served_at)
        .bind(&actor.id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if fresh {
            sqlx::query(
                "UPDATE complaints SET on_site_services = on_site_services + 1,
                    on_site_at = GREATEST(on_site_at, $2)
                 WHERE complaint_id = $1",
            )
            .bind(complaint_id)
            .bind(served_at)
            .execute(&mut *conn)
            .await?;
            planner::plan_complaint(conn, &self.outbox, &self.policy, complaint_id, now, "")
                .await?;
        }
        let sequence: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM on_site_services WHERE complaint_id = $1 AND served_at <= $2",
        )
        .bind(complaint_id)
        .bind(served_at)
        .fetch_one(&mut *conn)
        .await?;
        let id: String = sqlx::query_scalar(
            "SELECT revisit_id FROM revisits WHERE complaint_id = $1 AND kind = $2
             ORDER BY (sequence = $3) DESC, sequence DESC LIMIT 1",
        )
        .bind(complaint_id)
        .bind(RevisitKind::AfterOnSiteService.as_str())
        .bind(i32::try_from(sequence).unwrap_or(i32::MAX))
        .fetch_one(&mut *conn)
        .await?;
        view::get(conn, &id).await
    }
}
