//! Planning: turns what is known about a complaint into revisit rows and `revisit.scheduled`
//! events (DOMAIN §6), and the background tick that plans revisits for customers still waiting
//! past the promised time.
//!
//! The rules are `redress_domain::revisit::plan`; this module stores their result. A revisit is
//! unique per complaint, occasion and sequence, so planning the same facts again (a redelivered
//! event, two replicas ticking at once) inserts nothing and publishes nothing.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use redress_domain::revisit::{self, ComplaintFacts, RevisitKind};
use redress_domain::{Clock, ComplaintId, Policy, RevisitId};
use redress_platform::outbox::Outbox;
use redress_proto::v1::{self, event::Payload};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::envelope::PRODUCER;
use crate::error::Error;
use crate::store;
use redress_proto::Wire as _;

/// When the planner next looks at a complaint: when its current waiting period ends, or, while
/// it is open, at the promised completion.
pub fn next_check(
    policy: &Policy,
    facts: &ComplaintFacts,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match revisit::waiting(policy, facts, now) {
        Some(w) => Some(w.due_at),
        None if facts.resolved_at.is_none() && !facts.closed => facts.completion_due,
        None => None,
    }
}

/// Plans every revisit the complaint's facts call for at `now` that is not planned yet, and
/// appends a `revisit.scheduled` for each new one. Returns the new revisits' ids.
pub async fn plan_complaint(
    conn: &mut PgConnection,
    outbox: &Outbox,
    policy: &Policy,
    complaint_id: &ComplaintId,
    now: DateTime<Utc>,
    causation: &str,
) -> Result<Vec<String>, Error> {
    let facts = store::facts(conn, complaint_id).await?;
    let planned = revisit::plan(policy, &facts, now);
    let mut events = Vec::new();
    let mut ids = Vec::new();
    for p in &planned {
        let id = RevisitId::new().to_string();
        if let Some(id) = store::insert_planned(conn, &id, complaint_id, p, now).await? {
            events.push(
                scheduled_event(conn, complaint_id, &id, p.kind, p.due_at, now, causation).await?,
            );
            ids.push(id);
        }
    }
    // The planner next looks at a waiting complaint when its current period ends.
    let next = next_check(policy, &facts, now);
    store::set_next_checks(conn, &[(complaint_id.to_string(), next)]).await?;
    if planned.iter().any(|p| p.kind == RevisitKind::WhileWaiting) {
        // A newer waiting revisit supersedes older ones never made.
        if let Some(w) = planned.iter().find(|p| p.kind == RevisitKind::WhileWaiting) {
            store::cancel_waiting(conn, complaint_id, Some(w.sequence)).await?;
        }
    }
    outbox.append(conn, &events).await?;
    Ok(ids)
}

/// A `revisit.scheduled` for a revisit (new, or a retry after an unreached attempt, then
/// `call_at` is the retry's time).
pub async fn scheduled_event(
    conn: &mut PgConnection,
    complaint_id: &ComplaintId,
    revisit_id: &str,
    kind: RevisitKind,
    call_at: DateTime<Utc>,
    now: DateTime<Utc>,
    causation: &str,
) -> Result<v1::Event, Error> {
    let department = store::department_of(conn, complaint_id).await?;
    Ok(PRODUCER.event(
        complaint_id.as_str(),
        now,
        &PRODUCER.system_actor(),
        causation,
        Payload::RevisitScheduled(v1::RevisitScheduled {
            revisit_id: revisit_id.to_owned(),
            kind: kind.to_wire(),
            due_at: Some(crate::envelope::ts(call_at)),
            agent_id: String::new(),
            department_id: department,
        }),
    ))
}

/// The background planner: waiting revisits need time to pass, not an event. Each tick takes the
/// complaints whose waiting check is due, under `FOR UPDATE SKIP LOCKED`, so replicas share the
/// work and never plan one twice.
pub struct Ticker {
    pub pool: PgPool,
    pub outbox: Outbox,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    pub interval: StdDuration,
}

impl Ticker {
    pub async fn run(self, stop: CancellationToken) {
        loop {
            match self.tick().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(planned = n, "waiting revisits planned");
                    self.outbox.wake();
                }
                Err(e) => tracing::warn!(error = %e, "revisit planner tick failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// One pass; returns how many revisits were planned.
    pub async fn tick(&self) -> Result<usize, Error> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let due = store::waiting_due(&mut tx, now, 100).await?;
        let mut planned = 0;
        for id in due {
            planned += plan_complaint(&mut tx, &self.outbox, &self.policy, &id, now, "")
                .await?
                .len();
        }
        tx.commit().await?;
        Ok(planned)
    }
}
