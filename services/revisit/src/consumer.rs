//! What the revisit service learns from the other services' events, and the plans that follow.
//!
//! DOMAIN §6 plans revisits from the complaint's life: accepted (the next-day call of general
//! complaints), resolved (every complainant within three days), waiting past the promised time.
//! The customer's name and phone, the department, its manager and the responsible person come
//! from the same events, so no other service is ever called.
//!
//! Idempotent twice over: the platform skips a `Nats-Msg-Id` it has processed, and this handler
//! records each payload `event_id` in `applied_events` in the same transaction — the same event
//! republished under another message id has no second effect.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_domain::{Clock, ComplaintId, Policy};
use redress_platform::consumer::{HandleError, Handler, Incoming, Runs, handle_in_runs};
use redress_platform::outbox::Outbox;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;
use tracing::Instrument;

use crate::envelope::instant;
use crate::error::Error;
use crate::{planner, store};
use redress_domain::Class;
use redress_proto::Wire as _;

/// The event kinds this service follows.
pub const KINDS: &[&str] = &[
    "complaint.received",
    "complaint.reclassified",
    "complaint.validity_decided",
    "complaint.routed",
    "complaint.assigned",
    "complaint.accepted",
    "complaint.cause_recorded",
    "complaint.resolved",
    "complaint.reopened",
    "complaint.closed",
    "sla.special_reason_recorded",
];

/// Applies complaint events and plans revisits.
pub struct Facts {
    pub outbox: Outbox,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
}

#[async_trait::async_trait]
impl Handler for Facts {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError> {
        let event = msg.event()?;
        if event.complaint_id.is_empty() || event.producer == crate::SERVICE.name {
            // Organisation events; and this service's own events, applied when they were made.
            return Ok(());
        }
        let Some(payload) = event.payload.as_ref() else {
            return Err(HandleError::Permanent("event without payload".into()));
        };
        if event.event_id.is_empty() {
            return Err(HandleError::Permanent("event without event_id".into()));
        }
        let id = ComplaintId::parse(&event.complaint_id)
            .map_err(|e| HandleError::Permanent(e.to_string()))?;
        if !store::mark_applied(conn, &event.event_id).await? {
            return Ok(()); // The same event, delivered again under another message id.
        }
        let at = instant(event.occurred_at.as_ref()).unwrap_or_else(|| self.clock.now());
        store::ensure_complaint(conn, &id).await?;
        if apply(conn, &self.policy, &id, payload, at).await? {
            planner::plan_complaint(
                conn,
                &self.outbox,
                &self.policy,
                &id,
                self.clock.now(),
                &event.event_id,
            )
            .await?;
        }
        Ok(())
    }

    /// Runs of arrivals (received, routed, assigned: most of the traffic) are applied a run at
    /// a time by [`Facts::apply_run`]; any other message on its own, in its place.
    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        msgs: &[&Incoming<'_>],
    ) -> Result<(), HandleError> {
        handle_in_runs(self, conn, msgs).await
    }
}

#[async_trait::async_trait]
impl Runs for Facts {
    /// Arrivals with a malformed complaint id are left to [`Handler::handle`], which refuses
    /// them.
    fn in_run(&self, event: &v1::Event) -> bool {
        arrival(event) && ComplaintId::parse(&event.complaint_id).is_ok()
    }

    /// Applies a run of arrivals as one, with the outcome of one at a time: each event
    /// recorded as applied (one statement), each complaint's row ensured (one), its receipts
    /// and its department folded and written (one each), and its revisits planned once from
    /// the facts that result — those with nothing to plan only get their next check (one
    /// statement for all).
    async fn apply_run(
        &self,
        conn: &mut PgConnection,
        run: Vec<(&Incoming<'_>, &v1::Event)>,
    ) -> Result<(), HandleError> {
        if run.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = run.iter().map(|(_, e)| e.event_id.clone()).collect();
        let mut fresh = store::mark_applied_many(conn, &ids).await?;
        let mut folded: Vec<Folded> = Vec::new();
        let mut slot: HashMap<String, usize> = HashMap::new();
        for (i, (_, event)) in run.iter().enumerate() {
            // `remove`: the same event twice in the run is applied once.
            if !fresh.remove(&event.event_id) {
                continue;
            }
            let id = &event.complaint_id;
            let k = *slot.entry(id.clone()).or_insert_with(|| {
                folded.push(Folded {
                    complaint_id: id.clone(),
                    placement: store::Placement {
                        complaint_id: id.clone(),
                        ..Default::default()
                    },
                    ..Default::default()
                });
                folded.len() - 1
            });
            let f = &mut folded[k];
            f.last = i;
            let later = |v: &mut String, new: &str| {
                if !new.is_empty() {
                    *v = new.to_owned();
                }
            };
            match &event.payload {
                Some(Payload::ComplaintReceived(r)) => {
                    let details = r.details.clone().unwrap_or_default();
                    let customer = details.customer.clone().unwrap_or_default();
                    if !f.received {
                        f.first_class = Class::from_wire(r.class);
                        f.first_due = r
                            .promises
                            .as_ref()
                            .and_then(|p| instant(p.completion_due.as_ref()));
                    }
                    f.received = true;
                    f.number = r.complaint_number.clone();
                    f.customer_name = customer.name;
                    f.customer_phone = customer.phone;
                    f.summary = summary(&details);
                }
                Some(Payload::ComplaintRouted(r)) => {
                    let p = &mut f.placement;
                    later(&mut p.department_id, &r.department_id);
                    later(&mut p.department_manager_id, &r.department_manager_id);
                }
                Some(Payload::ComplaintAssigned(a)) => {
                    let p = &mut f.placement;
                    later(&mut p.department_id, &a.department_id);
                    later(&mut p.department_manager_id, &a.department_manager_id);
                    later(&mut p.assignee_id, &a.assignee_id);
                }
                _ => {}
            }
        }
        if folded.is_empty() {
            return Ok(());
        }
        let last: HashMap<String, usize> = folded
            .iter()
            .map(|f| (f.complaint_id.clone(), f.last))
            .collect();
        folded.sort_by(|x, y| x.complaint_id.cmp(&y.complaint_id));
        let all: Vec<String> = folded.iter().map(|f| f.complaint_id.clone()).collect();
        let receipts: Vec<Option<store::Receipt>> = folded
            .iter()
            .map(|f| {
                f.received.then(|| store::Receipt {
                    complaint_id: f.complaint_id.clone(),
                    number: f.number.clone(),
                    class: f.first_class,
                    customer_name: f.customer_name.clone(),
                    customer_phone: f.customer_phone.clone(),
                    summary: f.summary.clone(),
                    completion_due: f.first_due,
                })
            })
            .collect();
        let placements: Vec<store::Placement> = folded.into_iter().map(|f| f.placement).collect();
        // New complaints are stored with the run's facts in one write; the rest are updated.
        let rows: Vec<_> = receipts
            .iter()
            .map(Option::as_ref)
            .zip(&placements)
            .collect();
        let stored = store::insert_new(conn, &rows).await?;
        let (receipts, placements): (Vec<_>, Vec<_>) = receipts
            .into_iter()
            .zip(placements)
            .filter(|(_, p)| !stored.contains(&p.complaint_id))
            .unzip();
        let receipts: Vec<store::Receipt> = receipts.into_iter().flatten().collect();
        store::note_receipts(conn, &receipts).await?;
        store::note_placements(conn, &placements).await?;
        // Plans from the facts that result: most arrivals plan nothing yet, and only get the
        // time of their next check; a complaint with something to plan goes through the
        // planner, in the span of its last event.
        let now = self.clock.now();
        let facts = store::facts_many(conn, &all).await?;
        let mut checks = Vec::with_capacity(facts.len());
        for (id, f) in &facts {
            if redress_domain::revisit::plan(&self.policy, f, now).is_empty() {
                checks.push((id.to_string(), planner::next_check(&self.policy, f, now)));
                continue;
            }
            let Some(&i) = last.get(id.as_str()) else {
                continue;
            };
            let (msg, event) = &run[i];
            planner::plan_complaint(conn, &self.outbox, &self.policy, id, now, &event.event_id)
                .instrument(msg.span())
                .await?;
        }
        store::set_next_checks(conn, &checks).await?;
        Ok(())
    }
}

/// A complaint's receipt, routing or assignment from another service.
fn arrival(event: &v1::Event) -> bool {
    !event.complaint_id.is_empty()
        && !event.event_id.is_empty()
        && event.producer != crate::SERVICE.name
        && matches!(
            event.payload,
            Some(
                Payload::ComplaintReceived(_)
                    | Payload::ComplaintRouted(_)
                    | Payload::ComplaintAssigned(_)
            )
        )
}

/// One complaint's arrivals in a run, folded as [`apply`] stores them one after the other.
#[derive(Default)]
struct Folded {
    complaint_id: String,
    /// From the receipts: the first one's class and due time fill what is not known yet;
    /// the last one's number, customer and summary stand.
    received: bool,
    number: String,
    first_class: Option<Class>,
    first_due: Option<DateTime<Utc>>,
    customer_name: String,
    customer_phone: String,
    summary: String,
    /// From routings and assignments: a later non-empty value replaces an earlier one.
    placement: store::Placement,
    /// The last event's index in the run (its message's span and id cause the plans).
    last: usize,
}

/// What the revisit agent reads of the complaint: its business and description, 200
/// characters at most.
fn summary(details: &v1::ComplaintDetails) -> String {
    if details.business.is_empty() {
        details.description.chars().take(200).collect()
    } else {
        format!("{}: {}", details.business, details.description)
            .chars()
            .take(200)
            .collect()
    }
}

/// Stores what `payload` tells about the complaint; returns whether anything changed.
async fn apply(
    conn: &mut PgConnection,
    policy: &Policy,
    id: &ComplaintId,
    payload: &Payload,
    at: DateTime<Utc>,
) -> Result<bool, Error> {
    let placed = |department: &str, manager: &str, assignee: &str| store::Placement {
        complaint_id: id.to_string(),
        department_id: department.to_owned(),
        department_manager_id: manager.to_owned(),
        assignee_id: assignee.to_owned(),
    };
    match payload {
        Payload::ComplaintReceived(r) => {
            let details = r.details.clone().unwrap_or_default();
            let customer = details.customer.clone().unwrap_or_default();
            let receipt = store::Receipt {
                complaint_id: id.to_string(),
                number: r.complaint_number.clone(),
                class: Class::from_wire(r.class),
                customer_name: customer.name,
                customer_phone: customer.phone,
                summary: summary(&details),
                completion_due: r
                    .promises
                    .as_ref()
                    .and_then(|p| instant(p.completion_due.as_ref())),
            };
            store::note_receipts(conn, &[receipt]).await?;
        }
        Payload::ComplaintReclassified(r) => {
            let due = r
                .promises
                .as_ref()
                .and_then(|p| instant(p.completion_due.as_ref()));
            store::set_class(conn, id, Class::from_wire(r.to_class), due).await?;
        }
        Payload::ValidityDecided(v) => {
            store::set_class(conn, id, Class::from_wire(v.class), None).await?
        }
        Payload::ComplaintRouted(r) => {
            let p = placed(&r.department_id, &r.department_manager_id, "");
            store::note_placements(conn, &[p]).await?
        }
        Payload::ComplaintAssigned(a) => {
            let p = placed(&a.department_id, &a.department_manager_id, &a.assignee_id);
            store::note_placements(conn, &[p]).await?
        }
        Payload::AcceptedByDepartment(a) => {
            let accepted_at = instant(a.accepted_at.as_ref()).unwrap_or(at);
            store::note_accepted(conn, id, accepted_at, &a.department_id).await?;
        }
        Payload::CauseRecorded(c) => {
            store::set_responsible(conn, id, &c.responsible_person_id).await?;
            return Ok(false);
        }
        Payload::Resolved(r) => {
            let resolved_at = instant(r.handed_in_at.as_ref()).unwrap_or(at);
            store::note_resolved(
                conn,
                id,
                resolved_at,
                &r.result,
                &r.department_id,
                &r.responsible_person_id,
            )
            .await?;
            // The customer no longer waits: the after-resolution revisit takes over.
            store::cancel_waiting(conn, id, None).await?;
        }
        Payload::Reopened(_) => reopen(conn, policy, id, at).await?,
        Payload::Closed(_) => {
            store::close(conn, id).await?;
            store::cancel_waiting(conn, id, None).await?;
        }
        Payload::SpecialReasonRecorded(s) => {
            let extended = instant(s.extended_due_at.as_ref());
            let Some(extended) = extended.filter(|_| s.clock() == v1::SlaClock::Completion) else {
                return Ok(false);
            };
            // An approved extension moves the promised time the customer waits for.
            store::set_completion_due(conn, id, extended).await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A reopened complaint is open again and its completion clock runs again from now, for the
/// class's completion limit (DOMAIN §2) — the same rule the SLA monitor restarts its clock by.
pub async fn reopen(
    conn: &mut PgConnection,
    policy: &Policy,
    id: &ComplaintId,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let due = store::class_of(conn, id)
        .await?
        .map(|c| at + policy.completion_limit(c));
    store::reopen(conn, id, due).await?;
    Ok(())
}
