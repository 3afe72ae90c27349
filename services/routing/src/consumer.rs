//! Routing's consumer: intake's `complaint.received` / `complaint.confirmed` /
//! `complaint.reclassified`, escalation's `staff.suspended`, and revisit's `complaint.reopened`
//! (a dissatisfied customer's repeat complaint puts the resolved or closed complaint back in
//! handling), `revisit.completed` and `revisit.signed_off` (a resolved complaint is closed once
//! a revisit finds the customer satisfied or the department manager signs one off: DOMAIN §9
//! "Closing", ADR 0018).
//!
//! DOMAIN §1: "routing waits until the required fields are complete and the record is
//! confirmed"; a submission that arrives already confirmed is routed on receipt. Received and
//! confirmed may be applied in either order (two replicas share the consumer), so each marks
//! its half on the complaint's row and whichever completes the pair routes it — under the row
//! lock, and only from `awaiting_confirmation`, so redelivery or a race routes it once.

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_domain::handling::{Command, Stage};
use std::collections::{BTreeSet, HashMap, HashSet};

use redress_domain::{Class, ComplaintId};
use redress_platform::consumer::{HandleError, Handler, Incoming, Runs, handle_in_runs};
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;

use crate::commands::{self, Ctx};
use crate::envelope::{PRODUCER, from_ts};
use crate::error::Error;
use crate::store::handling::{self as store, Arrival};
use crate::store::organisation;
use crate::{assignment, org};

/// The consumer.
pub struct IntakeEvents {
    pub ctx: Ctx,
}

/// An event's class; an event without one is refused (a guess would set the wrong limits and
/// fines).
fn class_of(c: i32, kind: &str) -> Result<Class, HandleError> {
    Class::from_wire(c).ok_or_else(|| HandleError::Permanent(format!("{kind} without a class")))
}

/// The complaint an event is about, parsed once at the door so that everything after it holds
/// a [`ComplaintId`]; an event about no complaint (or a malformed one) can never be applied.
fn complaint_of(event: &v1::Event) -> Result<ComplaintId, HandleError> {
    let kind = event.kind().unwrap_or("event");
    if event.complaint_id.is_empty() {
        return Err(HandleError::Permanent(format!(
            "{kind} without complaint id"
        )));
    }
    ComplaintId::parse(&event.complaint_id)
        .map_err(|e| HandleError::Permanent(format!("{kind}: {e}")))
}

#[async_trait::async_trait]
impl Handler for IntakeEvents {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError> {
        let event = msg.event()?;
        let at = event
            .occurred_at
            .as_ref()
            .and_then(from_ts)
            .unwrap_or_else(|| self.ctx.clock.now());
        match event.payload.as_ref() {
            Some(Payload::ComplaintReceived(r)) => {
                self.received(conn, event, r, at).await?;
                self.maybe_route(conn, event).await
            }
            Some(Payload::ComplaintConfirmed(_)) => {
                store::insert_confirmed(conn, &[(complaint_of(event)?, at)]).await?;
                self.maybe_route(conn, event).await
            }
            Some(Payload::ComplaintReclassified(r)) => {
                let due = r
                    .promises
                    .as_ref()
                    .and_then(|p| p.completion_due.as_ref())
                    .and_then(from_ts);
                let class = class_of(r.to_class, "complaint.reclassified")?;
                store::reclassify(conn, &complaint_of(event)?, class, due, at).await?;
                Ok(())
            }
            Some(Payload::StaffSuspended(s)) => {
                // DOMAIN §7: three complaints in a month; no new assignments until an operator
                // lifts the suspension.
                organisation::suspend(conn, &s.person_id).await?;
                Ok(())
            }
            Some(Payload::Reopened(_)) => self.reopened(conn, event, at).await,
            Some(Payload::RevisitCompleted(c)) => {
                if !c.reached {
                    return Ok(());
                }
                // Satisfied with nothing new to answer: the revisits are done. New issues wait
                // for the department manager's sign-off (DOMAIN §6).
                let done = c.satisfied && !c.new_issues;
                let note = format!("revisit {}: the customer is satisfied", c.revisit_id);
                self.after_revisit(
                    conn,
                    event,
                    Some(c.satisfied),
                    done.then_some(note),
                    &c.revisit_id,
                    at,
                )
                .await
            }
            Some(Payload::RevisitSignedOff(s)) => {
                let note = if s.result.is_empty() {
                    format!("revisit {} signed off by {}", s.revisit_id, s.manager_id)
                } else {
                    format!(
                        "revisit {} signed off by {}: {}",
                        s.revisit_id, s.manager_id, s.result
                    )
                };
                self.after_revisit(conn, event, None, Some(note), &s.revisit_id, at)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// Runs of arrival steps (received, confirmed: most of routing's traffic) are
    /// applied a run at a time by [`IntakeEvents::apply_run`]; any other message is applied on
    /// its own, in its place, so each complaint's events keep their order.
    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        msgs: &[&Incoming<'_>],
    ) -> Result<(), HandleError> {
        handle_in_runs(self, conn, msgs).await
    }
}

#[async_trait::async_trait]
impl Runs for IntakeEvents {
    fn in_run(&self, event: &v1::Event) -> bool {
        is_arrival(event.payload.as_ref())
    }

    /// Applies a run of arrival steps as one: every receipt in one statement, every
    /// confirmation in another, then the complaints they completed routed and assigned
    /// together — the rules read once, each department locked once ([`assignment::Desk`]),
    /// the rows written back and the events appended in one statement each. The outcome is
    /// the one of applying the steps one by one; each event is built in the span of the
    /// message that completed its complaint, so it continues that message's trace.
    async fn apply_run(
        &self,
        conn: &mut PgConnection,
        run: Vec<(&Incoming<'_>, &v1::Event)>,
    ) -> Result<(), HandleError> {
        if run.is_empty() {
            return Ok(());
        }
        let mut receipts = Vec::new();
        let mut confirmations = Vec::new();
        // Per complaint, in the order first seen: the message that completes it here.
        let mut completing: Vec<(ComplaintId, usize)> = Vec::new();
        let mut seen: HashMap<ComplaintId, usize> = HashMap::new();
        let mut received_seen = HashSet::new();
        let mut confirmed_seen = HashSet::new();
        for (i, (_, event)) in run.iter().enumerate() {
            let at = event
                .occurred_at
                .as_ref()
                .and_then(from_ts)
                .unwrap_or_else(|| self.ctx.clock.now());
            let id = match event.payload.as_ref() {
                Some(Payload::ComplaintReceived(r)) => {
                    let arrival = arrival(event, r, at)?;
                    let id = arrival.complaint_id.clone();
                    if received_seen.insert(id.clone()) {
                        receipts.push(arrival);
                    }
                    id
                }
                Some(Payload::ComplaintConfirmed(_)) => {
                    let id = complaint_of(event)?;
                    if confirmed_seen.insert(id.clone()) {
                        confirmations.push((id.clone(), at));
                    }
                    id
                }
                _ => continue,
            };
            match seen.get(&id) {
                // A receipt already confirmed completes the complaint on its own; otherwise the
                // later of its halves does.
                Some(&k) => {
                    let first = &run[completing[k].1].1;
                    let done_early = matches!(first.payload.as_ref(),
                        Some(Payload::ComplaintReceived(r)) if r.confirmed);
                    if !done_early {
                        completing[k].1 = i;
                    }
                }
                None => {
                    seen.insert(id.clone(), completing.len());
                    completing.push((id.clone(), i));
                }
            }
        }
        store::insert_arrivals(conn, &receipts, &confirmations).await?;
        if completing.is_empty() {
            return Ok(());
        }
        let ids: Vec<ComplaintId> = completing.iter().map(|(id, _)| id.clone()).collect();
        let mut ready: HashMap<ComplaintId, commands::Record> = commands::load_ready(conn, &ids)
            .await?
            .into_iter()
            .map(|r| (r.complaint_id.clone(), r))
            .collect();
        if ready.is_empty() {
            return Ok(());
        }
        let routes = org::Routes::load(conn).await?;
        let mut plans = Vec::with_capacity(ready.len());
        for (id, i) in &completing {
            let Some(rec) = ready.remove(id) else {
                continue;
            };
            let details = rec
                .details
                .as_ref()
                .expect("load_ready keeps rows with details");
            let Some(route) = routes.route(details) else {
                return Err(HandleError::Transient(anyhow::anyhow!(
                    "no routing rule matches, no default department is configured and no \
                     department is marked as the complaint centre (service_centre)"
                )));
            };
            plans.push((rec, route, *i));
        }
        let wanted: BTreeSet<String> = plans.iter().map(|(_, r, _)| r.0.clone()).collect();
        let wanted: Vec<String> = wanted.into_iter().collect();
        let departments = organisation::departments(conn, &wanted).await?;
        let locked: BTreeSet<String> = departments.keys().cloned().collect();
        let ctx = &self.ctx;
        let mut desk = assignment::Desk::open(conn, &locked, ctx.weights, plans.len()).await?;
        let now = ctx.clock.now();
        let actor = PRODUCER.system_actor();
        let mut saved = Vec::with_capacity(plans.len());
        let mut outgoing = Vec::with_capacity(plans.len() * 2);
        for (mut rec, (dept_id, rule, reason), i) in plans {
            let (msg, event) = &run[i];
            let Some(dept) = departments.get(&dept_id) else {
                // As one at a time: a rule naming no known department is refused.
                // Retried, not dead-lettered: the organisation may be corrected meanwhile.
                return Err(HandleError::Transient(anyhow::Error::new(Error::invalid(
                    "department_id",
                    "names no known department",
                ))));
            };
            let step = commands::Step {
                dept,
                actor: &actor,
                now,
            };
            let senior = rec.prefers_senior();
            let events = msg.span().in_scope(|| -> Result<Vec<v1::Event>, Error> {
                let routed = step.route(
                    ctx,
                    &mut rec,
                    Command::Route,
                    &rule,
                    &reason,
                    &event.event_id,
                )?;
                let routed_id = routed.event_id.clone();
                let mut events = vec![routed];
                let class = Some(rec.class);
                match desk.pick(&dept.id, class, senior) {
                    Some(chosen) => {
                        events.push(step.assign(ctx, &mut rec, chosen, senior, &routed_id)?)
                    }
                    None => step.nobody_available(&rec),
                }
                if reason == org::UNROUTABLE {
                    events.push(unroutable(&rec, &events, now));
                }
                Ok(events)
            });
            let events = events?;
            msg.span().in_scope(|| {
                for e in &events {
                    outgoing.push(ctx.outbox.message_for(e)?);
                }
                Ok::<_, redress_platform::outbox::AppendError>(())
            })?;
            saved.push(rec);
        }
        desk.close(conn).await?;
        let refs: Vec<&commands::Record> = saved.iter().collect();
        store::save_many(conn, &refs, now).await?;
        ctx.outbox.append_messages(conn, &outgoing).await?;
        Ok(())
    }
}

/// Intake's steps of a complaint's arrival. Their effects commute (each marks its half of the
/// complaint's row; whichever completes the pair routes it), so a run of them can be applied
/// together.
fn is_arrival(p: Option<&Payload>) -> bool {
    matches!(
        p,
        Some(Payload::ComplaintReceived(_) | Payload::ComplaintConfirmed(_))
    )
}

/// What `complaint.received` tells routing, as one row of `handling`; a receipt without the
/// complaint's details or class can never be routed, so it is refused rather than stored.
fn arrival(
    event: &v1::Event,
    r: &v1::ComplaintReceived,
    at: DateTime<Utc>,
) -> Result<Arrival, HandleError> {
    let Some(details) = r.details.as_ref() else {
        return Err(HandleError::Permanent(
            "complaint.received without details".into(),
        ));
    };
    let complaint_id = complaint_of(event)?;
    let actions = r
        .guidance
        .as_ref()
        .map(|g| g.actions.clone())
        .unwrap_or_default();
    Ok(Arrival {
        complaint_id,
        confirmed: r.confirmed,
        number: r.complaint_number.clone(),
        class: class_of(r.class, "complaint.received")?,
        details: details.encode_to_vec(),
        actions: serde_json::Value::from(actions),
        category: details.category.clone(),
        group_complaint: details.group_complaint,
        customers_affected: i32::try_from(details.customers_affected.max(1)).unwrap_or(i32::MAX),
        media_risk: details.media_risk,
        customer_name: details
            .customer
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default(),
        customer_type: details.customer_type,
        received_at: at,
        completion_due: r
            .promises
            .as_ref()
            .and_then(|p| p.completion_due.as_ref())
            .and_then(from_ts),
    })
}

/// The request that tells the complaint centre's manager a complaint no rule could place waits
/// in the centre's queue (DOMAIN §9), caused by its routing.
fn unroutable(rec: &commands::Record, events: &[v1::Event], now: DateTime<Utc>) -> v1::Event {
    let causation = events
        .first()
        .map(|e| e.event_id.clone())
        .unwrap_or_default();
    let mut request = commands::escalation_request(
        rec,
        v1::EscalationReason::ImportantEvent,
        "No routing rule matched and no default department is set; the complaint waits \
         in the complaint centre's queue to be routed by hand.",
    );
    if let Payload::EscalationRequested(r) = &mut request {
        r.target_level = 1; // the centre's manager, not the general manager
    }
    PRODUCER.event(
        rec.complaint_id.as_str(),
        now,
        &PRODUCER.system_actor(),
        &causation,
        request,
    )
}

impl IntakeEvents {
    /// A repeat complaint reopened the complaint (ADR 0011): its handling resumes with the same
    /// department and handler, who must propose a solution again. The event is the revisit
    /// service's; routing only follows it, so it emits nothing. A complaint routing does not
    /// hold as resolved (still in handling, or closed) is left as it is.
    async fn reopened(
        &self,
        conn: &mut PgConnection,
        event: &v1::Event,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        let Some(mut rec) = store::read(conn, &complaint_of(event)?, true).await? else {
            return Ok(());
        };
        if !matches!(rec.stage, Stage::Resolved | Stage::Closed) {
            tracing::debug!(
                stage = rec.stage.as_str(),
                "reopened: not resolved or closed here; unchanged"
            );
            return Ok(());
        }
        commands::apply(&self.ctx, &mut rec, Command::Reopen)?;
        rec.closed_at = None;
        store::save(conn, &rec, at).await?;
        Ok(())
    }

    /// A revisit's outcome (`satisfied`, when it reached the customer) or its sign-off. Keeps
    /// the customer's latest satisfaction; with `close_note`, closes the complaint if routing
    /// holds it as resolved — in this transaction, with its `complaint.closed` in the outbox.
    /// A complaint still in handling (a revisit while the customer waits), already closed, or
    /// unknown is not closed, so redelivery or a second revisit closes nothing twice.
    async fn after_revisit(
        &self,
        conn: &mut PgConnection,
        event: &v1::Event,
        satisfied: Option<bool>,
        close_note: Option<String>,
        revisit_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        let Some(mut rec) = store::read(conn, &complaint_of(event)?, true).await? else {
            return Ok(());
        };
        if satisfied.is_some() {
            rec.satisfied = satisfied;
        }
        let mut events = Vec::new();
        if let Some(note) = close_note
            && rec.stage == Stage::Resolved
        {
            let now = self.ctx.clock.now();
            let closed = commands::close(
                &self.ctx,
                &mut rec,
                &note,
                revisit_id,
                &PRODUCER.system_actor(),
                &event.event_id,
                now,
            )?;
            events.push(closed);
        }
        if satisfied.is_none() && events.is_empty() {
            return Ok(());
        }
        store::save(conn, &rec, at).await?;
        self.ctx
            .outbox
            .append(conn, &events)
            .await
            .map_err(|e| HandleError::Transient(e.into()))?;
        Ok(())
    }

    /// Records what intake received (once; a later copy changes nothing).
    async fn received(
        &self,
        conn: &mut PgConnection,
        event: &v1::Event,
        r: &v1::ComplaintReceived,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        Ok(store::insert_received(conn, &[arrival(event, r, at)?]).await?)
    }

    /// Routes and assigns the complaint once both halves are in.
    async fn maybe_route(
        &self,
        conn: &mut PgConnection,
        event: &v1::Event,
    ) -> Result<(), HandleError> {
        let ctx = &self.ctx;
        let id = complaint_of(event)?;
        let Some(mut rec) = store::read(conn, &id, true).await? else {
            return Ok(());
        };
        if !store::halves(conn, &id).await?.complete() || rec.stage != Stage::AwaitingConfirmation {
            return Ok(());
        }
        let Some(details) = rec.details.clone() else {
            return Ok(());
        };
        let Some((department, rule, reason)) = org::route(conn, &details).await? else {
            return Err(HandleError::Transient(anyhow::anyhow!(
                "no routing rule matches, no default department is configured and no \
                 department is marked as the complaint centre (service_centre)"
            )));
        };
        let now = ctx.clock.now();
        let events = commands::route_and_assign(
            ctx,
            conn,
            &mut rec,
            Command::Route,
            &department,
            &rule,
            &reason,
            &PRODUCER.system_actor(),
            &event.event_id,
            now,
        )
        .await
        // A rule naming no known department is retried, not dead-lettered: the organisation
        // may be corrected meanwhile (the batch path does the same).
        .map_err(|e| HandleError::Transient(anyhow::Error::new(e)))?;
        let mut events = events;
        if reason == org::UNROUTABLE {
            events.push(unroutable(&rec, &events, now));
        }
        ctx.outbox
            .append(conn, &events)
            .await
            .map_err(|e| HandleError::Transient(e.into()))?;
        Ok(())
    }
}
