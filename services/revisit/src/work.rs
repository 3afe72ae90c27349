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
use redress_domain::revisit;
use redress_domain::{Clock, ComplaintId, Policy, RevisitId};
use redress_platform::outbox::Outbox;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;

use crate::envelope::{PRODUCER, ts};
use crate::error::Error;
use crate::store::{self, Locked};
use crate::{access, consumer, planner};
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

/// A revisit locked for update; refused as not found when there is none.
async fn lock(conn: &mut PgConnection, id: &str) -> Result<Locked, Error> {
    store::lock(conn, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("revisit {id}")))
}

/// A revisit as every command answers with it.
async fn shown(conn: &mut PgConnection, id: &str) -> Result<v1::Revisit, Error> {
    store::revisit(conn, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("revisit {id}")))
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
                return shown(conn, id).await;
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
        if r.no_call {
            return Err(Error::FailedPrecondition(format!(
                "revisit {id} is unreached and its attempts are used up"
            )));
        }
        let now = self.clock.now();
        store::claim(conn, id, &actor.id).await?;
        let e = PRODUCER.event(
            r.complaint_id.as_str(),
            now,
            actor,
            "",
            Payload::RevisitClaimed(v1::RevisitClaimed {
                revisit_id: id.to_owned(),
                agent_id: actor.id.clone(),
            }),
        );
        self.outbox.append(conn, &[e]).await?;
        shown(conn, id).await
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
        access::may_record_outcome(&r, id, actor)?;
        let now = self.clock.now();
        let c = store::outcome_context(conn, &r.complaint_id).await?;
        let department = c.department_id.clone();
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
        store::complete(conn, id, &o, now).await?;
        completed.satisfied = o.satisfied;
        completed.feelings = o.feelings.clone();
        completed.remaining_dissatisfaction = o.remaining_dissatisfaction.clone();
        completed.opinions = o.opinions.clone();
        completed.appointed_answer_at = o.appointed_answer_at.map(ts);
        completed.method = o.method as i32;
        completed.new_issues = o.new_issues;
        let done = PRODUCER.event(
            r.complaint_id.as_str(),
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
            r.complaint_id.as_str(),
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
            let cause = events[0].event_id.clone();
            let repeat = PRODUCER.event(
                r.complaint_id.as_str(),
                now,
                actor,
                &cause,
                Payload::RepeatComplaint(v1::RepeatComplaint {
                    original_complaint_id: r.complaint_id.to_string(),
                    revisit_id: id.to_owned(),
                    reason: o.repeat_reason.clone(),
                    department_id: department,
                    responsible_person_id: c.responsible_person_id,
                    original_class: class_letter_to_wire(c.class.as_deref().unwrap_or_default()),
                }),
            );
            store::count_repeat(conn, &r.complaint_id).await?;
            if c.resolved_at.is_some() {
                // Resolved, so it is reopened as the repeat complaint; an open complaint is
                // still being handled and only records the repeat.
                events.push(PRODUCER.event(
                    r.complaint_id.as_str(),
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
        Ok((shown(conn, id).await?, o.complains_again))
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
        store::unreached(conn, id, attempts, next).await?;
        let done = PRODUCER.event(
            r.complaint_id.as_str(),
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
        Ok((shown(conn, id).await?, false))
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
        let manager = store::department_manager_of(conn, &r.complaint_id).await?;
        access::may_sign(&manager, actor, may_sign_any)?;
        let now = self.clock.now();
        store::sign_off(conn, id, &actor.id, result.trim(), now).await?;
        let e = PRODUCER.event(
            r.complaint_id.as_str(),
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
        shown(conn, id).await
    }

    /// Records on-site service and plans the follow-up within a week. The same service (same
    /// complaint and time) recorded twice plans one follow-up.
    pub async fn record_on_site(
        &self,
        conn: &mut PgConnection,
        complaint_id: &ComplaintId,
        served_at: Option<DateTime<Utc>>,
        actor: &v1::Actor,
    ) -> Result<v1::Revisit, Error> {
        let now = self.clock.now();
        let served_at = served_at.unwrap_or(now);
        if served_at > now + Duration::minutes(5) {
            return Err(Error::invalid("served_at", "is in the future"));
        }
        store::ensure_complaint(conn, complaint_id).await?;
        if store::record_on_site_service(conn, complaint_id, served_at, &actor.id).await? {
            planner::plan_complaint(conn, &self.outbox, &self.policy, complaint_id, now, "")
                .await?;
        }
        let sequence = store::on_site_sequence(conn, complaint_id, served_at).await?;
        let id = store::on_site_follow_up(conn, complaint_id, sequence).await?;
        shown(conn, &id).await
    }
}
