//! The complaint registry: each complaint's current summary and its full timeline, for staff
//! and dashboards (`GetComplaint`, `ListComplaints`).
//!
//! It is built from the events of every other service as they arrive on `<prefix>.events.<kind>`,
//! and from intake's own events ([`OWN_KINDS`]) in the transaction that writes them
//! ([`record_own`]): intake does not read its own events back from the bus, which halves the
//! messages it handles per complaint. Both go through the same [`Entry`] code. Applying an
//! event is idempotent twice over: the consumer skips event ids it has processed, and the
//! timeline has a unique event id.
//!
//! DOMAIN §9 "The registry is the single view of a complaint": the summary follows the other
//! services' events — the class (D after an invalid finding, the new one after a
//! reclassification) with its reasons, the due times the SLA monitor keeps (the same
//! [`LimitsInForce`] arithmetic from the same policy), routing's handling stage and handler, and
//! the customer's satisfaction — so `GetComplaint` and `ListComplaints` answer with the figures
//! every other service answers with.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_domain::limits::{self, LimitChange, LimitsInForce};
use redress_domain::sla::ClockKind;
use redress_domain::{Class, Policy, Promises};
use redress_platform::consumer::{HandleError, Handler, Incoming};
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::error::Error;
use crate::recording::promises_proto;
use crate::store::{self, SummaryChange};
use redress_proto::Wire as _;

/// Applies events to the registry, with the policy the limits follow from.
pub struct Registry {
    pub policy: Arc<Policy>,
}

/// One event as the registry reads it.
struct Entry<'a> {
    event: &'a v1::Event,
    payload: &'a Payload,
    occurred_at: DateTime<Utc>,
}

impl<'a> Entry<'a> {
    /// `None` for events that belong to no complaint (rejections, organisation changes).
    fn of(event: &'a v1::Event) -> Result<Option<Entry<'a>>, String> {
        if event.complaint_id.is_empty() {
            return Ok(None);
        }
        let Some(payload) = event.payload.as_ref() else {
            return Err("event without payload".into());
        };
        let occurred_at = event
            .occurred_at
            .as_ref()
            .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
            .unwrap_or_else(Utc::now);
        Ok(Some(Entry {
            event,
            payload,
            occurred_at,
        }))
    }

    /// The summary columns, the class, reasons and limits, and the satisfaction field, after
    /// the timeline row is in.
    async fn apply(&self, conn: &mut PgConnection, policy: &Policy) -> Result<(), sqlx::Error> {
        let payload = self.payload;
        if let Some(change) = self.summary_change() {
            store::apply_summaries(conn, &[change]).await?;
        }
        if let Some((change, reasons)) = view_change(payload, self.occurred_at) {
            apply_to_limits(
                conn,
                policy,
                &self.event.complaint_id,
                change,
                reasons,
                self.occurred_at,
            )
            .await?;
        }
        if let Some(satisfied) = satisfaction(payload) {
            store::set_satisfaction(conn, &self.event.complaint_id, satisfied).await?;
        }
        Ok(())
    }
}

impl Entry<'_> {
    /// Whether the entry changes nothing but the summary columns (most events routing and the
    /// SLA monitor publish), so it may be applied together with others.
    fn summary_only(&self) -> bool {
        view_change(self.payload, self.occurred_at).is_none()
            && satisfaction(self.payload).is_none()
    }

    fn summary_change(&self) -> Option<SummaryChange<'_>> {
        summary_change(&self.event.complaint_id, self.payload, self.occurred_at)
    }
}

/// The customer's satisfaction an event records, if any: a revisit's report, or a feedback in
/// which the customer was asked. Routing keeps the latest of both (`GetHandling.satisfied`,
/// ADR 0018), so the registry does too (DOMAIN §9 "The registry is the single view").
fn satisfaction(payload: &Payload) -> Option<bool> {
    match payload {
        Payload::SatisfactionReported(s) => Some(s.satisfied),
        Payload::FeedbackGiven(f) => f.satisfied,
        _ => None,
    }
}

/// The kinds intake itself writes. Their timeline entries are written with them
/// ([`record_own`]); the registry's consumer does not subscribe to them.
pub const OWN_KINDS: &[&str] = &[
    "complaint.received",
    "complaint.rejected",
    "complaint.confirmed",
    "complaint.classified",
    "complaint.reclassified",
];

/// What the registry's consumer subscribes to: every other service's events.
pub fn subjects(topology: &redress_platform::nats::Topology) -> Vec<String> {
    topology.event_subjects(redress_proto::every_kind_except(OWN_KINDS))
}

/// Adds intake's own events to the registry inside the transaction that writes them.
pub async fn record_own(
    conn: &mut PgConnection,
    policy: &Policy,
    events: &[v1::Event],
) -> Result<(), Error> {
    apply_events(conn, policy, events)
        .await?
        .map_err(Error::Internal)
}

/// Applies events to the registry: every timeline row in one insert, then the summaries in
/// the events' order (most events change no summary column and cost nothing more). The inner
/// error is an event that can never be applied.
async fn apply_events(
    conn: &mut PgConnection,
    policy: &Policy,
    events: &[v1::Event],
) -> Result<Result<(), String>, sqlx::Error> {
    remember_names(conn, events).await?;
    let mut entries = Vec::with_capacity(events.len());
    for e in events {
        match Entry::of(e) {
            Ok(entry) => entries.extend(entry),
            Err(reason) => return Ok(Err(reason)),
        }
    }
    insert_timeline(conn, &entries).await?;
    // Summary-only changes wait in waves — a complaint's first pending change in the first
    // wave, its second in the second… — each wave one statement; any other entry first applies
    // what waits, so every complaint's changes keep their order.
    let mut waves: Vec<Vec<SummaryChange<'_>>> = Vec::new();
    let mut pending: HashMap<&str, usize> = HashMap::new();
    for entry in &entries {
        if entry.summary_only() {
            if let Some(change) = entry.summary_change() {
                let n = pending.entry(change.complaint_id).or_insert(0);
                if waves.len() <= *n {
                    waves.push(Vec::new());
                }
                waves[*n].push(change);
                *n += 1;
            }
            continue;
        }
        for wave in waves.drain(..) {
            store::apply_summaries(conn, &wave).await?;
        }
        pending.clear();
        entry.apply(conn, policy).await?;
    }
    for wave in waves {
        store::apply_summaries(conn, &wave).await?;
    }
    Ok(Ok(()))
}

/// Keeps the names of the organisation's people from routing's `staff.upserted`, the last
/// upsert of a person in the batch winning.
async fn remember_names(conn: &mut PgConnection, events: &[v1::Event]) -> Result<(), sqlx::Error> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    for e in events {
        if let Some(Payload::StaffUpserted(s)) = &e.payload
            && !s.staff_id.is_empty()
            && !s.name.is_empty()
        {
            names.insert(&s.staff_id, &s.name);
        }
    }
    store::remember_names(conn, &names).await
}

/// The known names of the people the entries mention, by staff id (one query, and none when
/// no entry mentions anybody).
async fn names_of(
    conn: &mut PgConnection,
    entries: &[Entry<'_>],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let mentioned = std::cell::RefCell::new(Vec::<String>::new());
    for e in entries {
        e.payload.describe_naming(&|id: &str| {
            if !id.is_empty() {
                mentioned.borrow_mut().push(id.to_owned());
            }
            String::new()
        });
    }
    let mut ids = mentioned.into_inner();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    ids.sort_unstable();
    ids.dedup();
    store::names_of(conn, &ids).await
}

/// Adds the entries' timeline rows in one statement (a row already there is left as it is).
async fn insert_timeline(
    conn: &mut PgConnection,
    entries: &[Entry<'_>],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let names = names_of(&mut *conn, entries).await?;
    let rows: Vec<store::TimelineRow> = entries
        .iter()
        .map(|e| {
            let actor = e.event.actor.clone().unwrap_or_default();
            store::TimelineRow {
                complaint_id: e.event.complaint_id.clone(),
                event_id: e.event.event_id.clone(),
                kind: e.payload.kind().to_owned(),
                occurred_at: e.occurred_at,
                actor_id: actor.id,
                actor_name: actor.display_name,
                actor_role: actor.role,
                summary: summary(e.payload, &names),
                source_service: e.event.producer.clone(),
            }
        })
        .collect();
    store::insert_timeline(conn, &rows).await
}

/// A message's event.
fn decode(msg: &Incoming<'_>) -> Result<v1::Event, HandleError> {
    msg.event().cloned()
}

#[async_trait::async_trait]
impl Handler for Registry {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError> {
        let event = decode(msg)?;
        apply_events(conn, &self.policy, std::slice::from_ref(&event))
            .await?
            .map_err(HandleError::Permanent)
    }

    /// The whole batch through [`apply_events`]: one insert for every timeline row.
    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        msgs: &[&Incoming<'_>],
    ) -> Result<(), HandleError> {
        let events = msgs
            .iter()
            .map(|m| decode(m))
            .collect::<Result<Vec<_>, _>>()?;
        apply_events(conn, &self.policy, &events)
            .await?
            .map_err(HandleError::Permanent)
    }
}

/// Keeps the summary columns current. Events may arrive before intake's own row exists (they
/// are published by other services); such updates touch no row and the timeline still has them.
///
/// The status is routing's handling stage (`GetHandlingResponse.stage`), so it moves only on
/// the events that move that stage: feedback, a cause, a validity decision or an SLA escalation
/// leave it where it is; a reassignment keeps a working complaint's stage; a reopening applies to
/// a resolved or closed complaint only (as routing does).
fn summary_change<'a>(
    complaint_id: &'a str,
    payload: &'a Payload,
    at: DateTime<Utc>,
) -> Option<SummaryChange<'a>> {
    /// Stages a first assignment moves on from; a reassignment leaves any other stage.
    const BEFORE_ASSIGNMENT: &str = "received,confirmed,routed";
    let mut only_from = "";
    let mut clear_assignee = false;
    let (status, department, assignee, overdue): (
        Option<&str>,
        Option<&str>,
        Option<&str>,
        Option<bool>,
    ) = match payload {
        Payload::ComplaintRouted(r) => {
            // Routing and rerouting leave the complaint without a handler.
            clear_assignee = true;
            (Some("routed"), Some(&r.department_id), None, None)
        }
        Payload::ComplaintAssigned(a) => {
            only_from = BEFORE_ASSIGNMENT;
            (
                Some("assigned"),
                Some(&a.department_id),
                Some(&a.assignee_id),
                None,
            )
        }
        Payload::AcceptedByDepartment(_) => (Some("accepted"), None, None, None),
        Payload::ResolutionProposed(_) => (Some("resolution_proposed"), None, None, None),
        Payload::CustomerAccepted(_) => (Some("customer_accepted"), None, None, None),
        Payload::ReStudyRequested(_) => (Some("re_study"), None, None, None),
        // Routing's stage changes only when the handling itself goes up the ladder (repeated
        // rejection, cannot settle); other requests escalate without changing the stage.
        Payload::EscalationRequested(e)
            if matches!(
                v1::EscalationReason::try_from(e.reason),
                Ok(v1::EscalationReason::RejectedAgain | v1::EscalationReason::CannotSettle)
            ) =>
        {
            (Some("escalated"), None, None, None)
        }
        Payload::Resolved(_) => (Some("resolved"), None, None, Some(false)),
        Payload::Reopened(_) => {
            // A repeat complaint is the only way out of `closed` (DOMAIN §9 "Closing"); routing
            // reopens a resolved or a closed complaint, and so does the registry.
            only_from = "resolved,closed";
            (Some("reopened"), None, None, None)
        }
        Payload::Closed(_) => (Some("closed"), None, None, None),
        Payload::SlaOverdue(_) => (None, None, None, Some(true)),
        _ => (None, None, None, None),
    };
    if status.is_none() && department.is_none() && assignee.is_none() && overdue.is_none() {
        return None;
    }
    Some(SummaryChange {
        complaint_id,
        status,
        department: department.filter(|d| !d.is_empty()),
        assignee: assignee.filter(|a| !a.is_empty()),
        overdue,
        at,
        only_from,
        clear_assignee,
    })
}

/// What an event changes in the limits in force, and the reasons it gives for a new class.
fn view_change(payload: &Payload, at: DateTime<Utc>) -> Option<(LimitChange, Option<Vec<String>>)> {
    let class = Class::from_wire;
    Some(match payload {
        Payload::ComplaintReclassified(r) => {
            let to = class(r.to_class)?;
            let reasons = class(r.from_class)
                .map(|from| limits::reasons_after_reclassification(from, to, &r.reason));
            let promised = r.promises.as_ref().and_then(promises_from);
            (LimitChange::Reclassified { to, promised }, reasons)
        }
        // DOMAIN §2: an invalid complaint becomes class D; the finding is the reason.
        Payload::ValidityDecided(v) => {
            let reasons = (!v.valid).then(|| limits::reasons_after_invalid_finding(&v.explanation));
            (
                LimitChange::ValidityDecided {
                    class: class(v.class)?,
                },
                reasons,
            )
        }
        Payload::AcceptedByDepartment(_) => (LimitChange::Met(ClockKind::Acceptance), None),
        Payload::FeedbackGiven(_) => (LimitChange::Met(ClockKind::FirstFeedback), None),
        Payload::IntermediateResultReported(_) => {
            (LimitChange::Met(ClockKind::IntermediateResult), None)
        }
        Payload::Resolved(_) => (LimitChange::Resolved, None),
        Payload::Closed(_) => (LimitChange::Closed, None),
        Payload::Reopened(_) => (LimitChange::Reopened(at), None),
        Payload::SpecialReasonRecorded(s) => {
            let kind = match v1::SlaClock::try_from(s.clock).ok()? {
                v1::SlaClock::Acceptance => ClockKind::Acceptance,
                v1::SlaClock::FirstFeedback => ClockKind::FirstFeedback,
                v1::SlaClock::Completion => ClockKind::Completion,
                v1::SlaClock::IntermediateResult => ClockKind::IntermediateResult,
                _ => return None,
            };
            let due = time(s.extended_due_at.as_ref()?)?;
            (LimitChange::Extended { kind, due }, None)
        }
        _ => return None,
    })
}

fn time(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

/// Domain promises from their protobuf form, when every due time is there.
fn promises_from(p: &v1::Promises) -> Option<Promises> {
    Some(Promises {
        acceptance_due: time(p.acceptance_due.as_ref()?)?,
        first_feedback_due: time(p.first_feedback_due.as_ref()?)?,
        completion_due: time(p.completion_due.as_ref()?)?,
        intermediate_due: time(p.intermediate_due.as_ref()?)?,
    })
}

/// The limits in force as stored, or as acknowledged when nothing has changed them yet.
fn stored_limits(
    policy: &Policy,
    limits: Option<Json<LimitsInForce>>,
    ack: &v1::Acknowledgement,
    received_at: DateTime<Utc>,
) -> Result<LimitsInForce, String> {
    if let Some(Json(l)) = limits {
        return Ok(l);
    }
    let class =
        Class::from_wire(ack.class).ok_or_else(|| "acknowledgement without a class".to_owned())?;
    let promises = ack
        .promises
        .as_ref()
        .and_then(promises_from)
        .unwrap_or_else(|| redress_domain::promises(policy, class, received_at));
    Ok(LimitsInForce::at_intake(class, received_at, promises))
}

/// Applies a change to the complaint's class, reasons and limits (the row locked, so intake's
/// own reclassification and the consumer take turns). Repeating a change leaves them as once.
async fn apply_to_limits(
    conn: &mut PgConnection,
    policy: &Policy,
    complaint_id: &str,
    change: LimitChange,
    reasons: Option<Vec<String>>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let Some(row) = store::lock_limits(conn, complaint_id).await? else {
        return Ok(());
    };
    // Of two class changes the later one wins, whatever order they arrive in: intake writes
    // its own reclassification at once, while a validity decision made earlier in routing may
    // still be on its way (seen under load by the consistency test).
    if change.sets_class() && row.class_set_at.is_some_and(|set| at < set) {
        return Ok(());
    }
    let ack = v1::Acknowledgement::decode(row.acknowledgement.as_slice())
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let mut limits = stored_limits(policy, row.limits, &ack, row.received_at)
        .map_err(|e| sqlx::Error::Decode(e.into()))?;
    let sets_class = change.sets_class();
    limits.apply_at(policy, change, at);
    store::save_limits(conn, complaint_id, &limits, reasons, sets_class, at).await
}

/// The current class, reasons and promises of a row (as acknowledged until changed).
pub(crate) fn current(
    policy: &Policy,
    row: &store::ComplaintRow,
    ack: &v1::Acknowledgement,
) -> Result<(Class, Vec<String>, Option<v1::Promises>), Error> {
    let class = Class::parse(row.class.as_str()).map_err(|e| Error::Internal(e.to_string()))?;
    let reasons = row
        .classification_reasons
        .clone()
        .unwrap_or_else(|| ack.classification_reasons.clone());
    let promises = match &row.limits {
        Some(Json(l)) => Some(promises_proto(policy, l.class, &l.promises)),
        None => ack.promises.clone(),
    };
    Ok((class, reasons, promises.map(to_micros)))
}

/// Due times to the microsecond, the precision every service stores them at (PostgreSQL), so
/// the registry shows the very figures the SLA monitor answers with, not the acknowledgement's
/// nanoseconds.
fn to_micros(mut p: v1::Promises) -> v1::Promises {
    for t in [
        &mut p.acceptance_due,
        &mut p.first_feedback_due,
        &mut p.completion_due,
        &mut p.intermediate_due,
    ]
    .into_iter()
    .flatten()
    {
        t.nanos -= t.nanos.rem_euclid(1_000);
    }
    p
}

/// One line for a timeline entry, in words a supervisor reads: people by name where the
/// registry knows it, else by id.
pub fn summary(payload: &Payload, names: &HashMap<String, String>) -> String {
    payload.describe_naming(&|id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned()))
}
