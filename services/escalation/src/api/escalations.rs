//! Listing, acknowledging and deciding escalations. DOMAIN §5: the general manager
//! "coordinates and gives the final decision"; every escalation is "recorded when sent, seen and
//! acted on". Acknowledging stops the re-sends and the climb for want of acknowledgement; a
//! decision at the top of the ladder is final and closes the complaint's other open escalations.

use chrono::{DateTime, Utc};
use redress_domain::EscalationId;
use redress_domain::escalation::{self as rules, State, TransitionError};
use redress_platform::auth::Identity;
use redress_platform::outbox::Writes;
use redress_platform::pagination::{Key, Kind, Page};
use redress_proto::v1::{self, event::Payload};
use tonic::Status;

use super::Api;
use crate::access;
use crate::envelope::{PRODUCER, ts};
use crate::error::Error;
use crate::store::escalations::{self, Escalation, Filter};

fn state_proto(state: Option<State>) -> v1::EscalationState {
    match state {
        Some(State::Raised) => v1::EscalationState::Raised,
        Some(State::Acknowledged) => v1::EscalationState::Acknowledged,
        Some(State::Decided) => v1::EscalationState::Decided,
        Some(State::Superseded) => v1::EscalationState::Superseded,
        Some(State::Closed) => v1::EscalationState::Closed,
        None => v1::EscalationState::Unspecified,
    }
}

fn state_of(s: v1::EscalationState) -> Option<State> {
    Some(match s {
        v1::EscalationState::Unspecified => return None,
        v1::EscalationState::Raised => State::Raised,
        v1::EscalationState::Acknowledged => State::Acknowledged,
        v1::EscalationState::Decided => State::Decided,
        v1::EscalationState::Superseded => State::Superseded,
        v1::EscalationState::Closed => State::Closed,
    })
}

fn to_proto(e: Escalation) -> v1::Escalation {
    v1::Escalation {
        escalation_id: e.escalation_id,
        complaint_id: e.complaint_id.to_string(),
        complaint_number: e.complaint_number,
        level: e.level,
        trigger: e.trigger,
        recipient_id: e.recipient_id,
        department_id: e.department_id,
        class: e.class,
        state: state_proto(e.state) as i32,
        summary: e.summary,
        raised_at: Some(ts(e.raised_at)),
        acknowledge_by: Some(ts(e.acknowledge_by)),
        acknowledged_at: e.acknowledged_at.map(ts),
        instructions: e.instructions,
        decided_at: e.decided_at.map(ts),
        decided_by: e.decided_by,
        decision: e.decision,
        notification_delivered: e.delivered,
        causes: e
            .causes
            .into_iter()
            .map(|c| v1::EscalationCause {
                trigger: c.trigger,
                clock: c.clock,
                summary: c.summary,
                added_at: c.added_at.map(ts),
            })
            .collect(),
    }
}

fn escalation_id(raw: &str) -> Result<String, Error> {
    EscalationId::parse(raw)
        .map(|id| id.to_string())
        .map_err(|e| Error::invalid("escalation_id", &e.to_string()))
}

impl Api {
    /// Opens a command on escalation `id`: the row locked until the command commits, the caller
    /// allowed to act on it, and `transition` allowing it from the state it is in.
    async fn open(
        &self,
        who: &Identity,
        id: &str,
        transition: fn(State) -> Result<State, TransitionError>,
    ) -> Result<(Writes, Escalation), Error> {
        let mut tx = self.begin().await?;
        let e = escalations::get(&mut tx, id, true)
            .await?
            .ok_or_else(|| Error::NotFound(format!("escalation {id}")))?;
        access::may_act(who, &e)?;
        transition(e.state.unwrap_or(State::Closed))
            .map_err(|t| Error::FailedPrecondition(t.to_string()))?;
        Ok((tx, e))
    }

    /// Commits a command: its event with the state change, then the escalation as it now is.
    async fn finish(
        &self,
        mut tx: Writes,
        who: &Identity,
        e: &Escalation,
        now: DateTime<Utc>,
        payload: Payload,
    ) -> Result<v1::Escalation, Error> {
        let ev = PRODUCER.event(e.complaint_id.as_str(), now, &who.to_actor(), "", payload);
        self.ladder.outbox.append(&mut tx, &[ev]).await?;
        let after = escalations::get(&mut tx, &e.escalation_id, false)
            .await?
            .ok_or_else(|| Error::NotFound(format!("escalation {}", e.escalation_id)))?;
        tx.commit().await?;
        Ok(to_proto(after))
    }

    pub(super) async fn list(
        &self,
        who: &Identity,
        r: v1::ListEscalationsRequest,
    ) -> Result<v1::ListEscalationsResponse, Status> {
        let reach = access::listing(who);
        let (all, departments, actor) = reach.sql();
        let page = Page::read(r.page.as_ref(), 500, &[Kind::Time, Kind::Text])?;
        let state = state_of(
            v1::EscalationState::try_from(r.state)
                .map_err(|_| Error::invalid("state", "unknown state"))?,
        );
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let filter = Filter {
            recipient_id: &r.recipient_id,
            department_id: &r.department_id,
            state,
            complaint_id: &r.complaint_id,
            all,
            departments,
            actor,
        };
        let rows = escalations::list(&mut conn, &filter, &page)
            .await
            .map_err(Error::from)?;
        let (rows, next_page_token) = page.finish(rows, |e| {
            Ok::<_, Error>(vec![
                Key::Time(e.raised_at),
                Key::Text(e.escalation_id.clone()),
            ])
        })?;
        Ok(v1::ListEscalationsResponse {
            escalations: rows.into_iter().map(to_proto).collect(),
            next_page_token,
        })
    }

    pub(super) async fn acknowledge_as(
        &self,
        who: &Identity,
        r: v1::AcknowledgeRequest,
    ) -> Result<v1::AcknowledgeResponse, Status> {
        let id = escalation_id(&r.escalation_id)?;
        let (mut tx, e) = self.open(who, &id, rules::acknowledge).await?;
        let now = self.now();
        let instructions = r.instructions.trim();
        escalations::acknowledge(&mut tx, &id, now, instructions)
            .await
            .map_err(Error::from)?;
        let payload = Payload::EscalationAcknowledged(v1::EscalationAcknowledged {
            escalation_id: id,
            acknowledged_by: who.actor_id.clone(),
            instructions: instructions.to_owned(),
            level: e.level,
        });
        Ok(v1::AcknowledgeResponse {
            escalation: Some(self.finish(tx, who, &e, now, payload).await?),
        })
    }

    pub(super) async fn decide_as(
        &self,
        who: &Identity,
        r: v1::DecideRequest,
    ) -> Result<v1::DecideResponse, Status> {
        let id = escalation_id(&r.escalation_id)?;
        let decision = r.decision.trim();
        if decision.is_empty() {
            return Err(Error::invalid("decision", "is required").into());
        }
        let (mut tx, e) = self.open(who, &id, rules::decide).await?;
        let now = self.now();
        let final_decision = rules::is_final(&self.ladder.policy, e.level);
        escalations::decide(&mut tx, &id, now, &who.actor_id, decision)
            .await
            .map_err(Error::from)?;
        if final_decision {
            // DOMAIN §5: the general manager's decision is final for the complaint.
            escalations::close_open(&mut tx, &e.complaint_id, Some(&id))
                .await
                .map_err(Error::from)?;
        }
        let payload = Payload::EscalationDecided(v1::EscalationDecided {
            escalation_id: id,
            decided_by: who.actor_id.clone(),
            decision: decision.to_owned(),
            level: e.level,
            final_decision,
        });
        Ok(v1::DecideResponse {
            escalation: Some(self.finish(tx, who, &e, now, payload).await?),
        })
    }
}
