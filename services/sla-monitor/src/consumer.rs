//! Keeps the clocks from the events of the other services: intake's promises start them,
//! routing's steps stop them, reclassification moves them, reopening restarts them, revisits
//! add their own (DOMAIN §3–4, §6).
//!
//! Idempotent twice over: the platform skips event ids already processed, and every change is
//! a state-machine step that repeating leaves as it was (starting an existing clock, meeting a
//! met one).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_domain::sla::{self, ClockKind, LimitClock};
use redress_domain::{Class, ComplaintId, Policy, Promises};
use std::collections::{HashMap, HashSet};

use redress_platform::consumer::{HandleError, Handler, Incoming, Runs, handle_in_runs};
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;
use tracing::Instrument;

use crate::envelope::time;
use crate::store::{self, ComplaintFacts, StoredClock, Wakeup};
use redress_proto::Wire as _;

/// The event kinds that set, move or stop clocks (the consumer's filter). Not
/// `complaint.classified`: on receipt it restates the class and promises `complaint.received`
/// carries (events.proto), so taking it would start nothing new and cost a delivery, an ack
/// and a dedup row per complaint.
pub const KINDS: &[&str] = &[
    "complaint.received",
    "complaint.confirmed",
    "complaint.reclassified",
    "complaint.validity_decided",
    "complaint.routed",
    "complaint.assigned",
    "complaint.accepted",
    "complaint.cause_recorded",
    "complaint.feedback_given",
    "complaint.intermediate_result_reported",
    "complaint.resolved",
    "complaint.closed",
    "complaint.reopened",
    "sla.special_reason_recorded",
    "revisit.scheduled",
    "revisit.claimed",
    "revisit.completed",
];

/// Applies events to the clocks.
pub struct Tracker {
    pub policy: Arc<Policy>,
    pub wakeup: Arc<Wakeup>,
    /// For the lateness fines that waited for their person ([`Tracker::pay_owed_fines`]).
    pub outbox: redress_platform::outbox::Outbox,
}

impl Tracker {
    /// Records the lateness fines the complaint owed to a person not yet known when its limit
    /// passed (their assignment, made in time, reached the monitor late), now that `person` is
    /// named at `at`: one class-D record each, against them, as the scheduler would have
    /// recorded it at the due time.
    async fn pay_owed_fines(
        &self,
        conn: &mut PgConnection,
        complaint_id: &ComplaintId,
        person: &str,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        if person.is_empty() {
            return Ok(());
        }
        let owed = store::take_owed_fines(conn, complaint_id, at).await?;
        if owed.is_empty() {
            return Ok(());
        }
        let complaint = store::complaint(conn, complaint_id)
            .await?
            .unwrap_or_default();
        let mut records = Vec::new();
        for (kind, overdue_event_id) in owed {
            let Some(kind) = ClockKind::parse(&kind) else {
                continue;
            };
            tracing::info!(clock = kind.as_str(), responsible = %person,
                "lateness fine recorded once the responsible person was known");
            records.push(crate::envelope::PRODUCER.event(
                complaint_id.as_str(),
                at,
                &crate::envelope::PRODUCER.system_actor(),
                &overdue_event_id,
                Payload::AccountabilityRecorded(crate::scheduler::lateness_record(
                    &self.policy,
                    kind,
                    &complaint,
                    person,
                    at,
                )),
            ));
        }
        self.outbox.append(conn, &records).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handler for Tracker {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError> {
        let event = msg.event()?;
        if event.complaint_id.is_empty() {
            return Ok(());
        }
        let Some(payload) = event.payload.as_ref() else {
            return Err(HandleError::Permanent("event without payload".into()));
        };
        let at = time(event.occurred_at.as_ref())
            .ok_or_else(|| HandleError::Permanent("event without a valid occurred_at".into()))?;
        let id = ComplaintId::parse(&event.complaint_id)
            .map_err(|e| HandleError::Permanent(e.to_string()))?;
        self.apply(conn, &id, payload, at).await?;
        Ok(())
    }

    /// Runs of arrival events (received, confirmed, routed, assigned: most of the
    /// monitor's traffic) are applied a run at a time by [`Tracker::arrivals`]; any other
    /// message on its own, in its place, so each complaint's events keep their order.
    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        msgs: &[&Incoming<'_>],
    ) -> Result<(), HandleError> {
        handle_in_runs(self, conn, msgs).await
    }
}

#[async_trait::async_trait]
impl Runs for Tracker {
    fn in_run(&self, event: &v1::Event) -> bool {
        Arrival::is_arrival(event)
    }

    async fn apply_run(
        &self,
        conn: &mut PgConnection,
        run: Vec<(&Incoming<'_>, &v1::Event)>,
    ) -> Result<(), HandleError> {
        let run = run
            .into_iter()
            .map(|(msg, event)| Arrival::of(msg, event))
            .collect::<Result<Vec<_>, _>>()?;
        self.arrivals(conn, run).await
    }
}

/// An event of a complaint's arrival, decoded, with the message that brought it.
struct Arrival<'m, 'i> {
    msg: &'m Incoming<'i>,
    event: &'m v1::Event,
    id: ComplaintId,
    at: DateTime<Utc>,
}

impl<'m, 'i> Arrival<'m, 'i> {
    /// Whether the event is an arrival the monitor can apply in a run (one it cannot, say with
    /// a malformed id or time, is handled alone and refused there).
    fn is_arrival(event: &v1::Event) -> bool {
        matches!(
            event.payload,
            Some(
                Payload::ComplaintReceived(_)
                    | Payload::ComplaintConfirmed(_)
                    | Payload::ComplaintRouted(_)
                    | Payload::ComplaintAssigned(_)
            )
        ) && time(event.occurred_at.as_ref()).is_some()
            && ComplaintId::parse(&event.complaint_id).is_ok()
    }

    /// The arrival of an event [`Arrival::is_arrival`] took.
    fn of(msg: &'m Incoming<'i>, event: &'m v1::Event) -> Result<Self, HandleError> {
        let at = time(event.occurred_at.as_ref())
            .ok_or_else(|| HandleError::Permanent("event without a valid occurred_at".into()))?;
        let id = ComplaintId::parse(&event.complaint_id)
            .map_err(|e| HandleError::Permanent(e.to_string()))?;
        Ok(Arrival { msg, event, id, at })
    }
}

/// The class letter of a protobuf class, if set.
fn letter(c: i32) -> Option<&'static str> {
    Class::from_wire(c).map(Class::as_str)
}

fn promises_from(p: Option<&v1::Promises>) -> Option<Promises> {
    let p = p?;
    Some(Promises {
        acceptance_due: time(p.acceptance_due.as_ref())?,
        first_feedback_due: time(p.first_feedback_due.as_ref())?,
        completion_due: time(p.completion_due.as_ref())?,
        intermediate_due: time(p.intermediate_due.as_ref())?,
    })
}

impl Tracker {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        id: &ComplaintId,
        payload: &Payload,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        match payload {
            Payload::ComplaintReceived(r) => {
                store::note(
                    conn,
                    id,
                    ComplaintFacts {
                        number: Some(&r.complaint_number),
                        class: letter(r.class),
                        received_at: Some(at),
                        ..Default::default()
                    },
                )
                .await?;
                self.start_intake_clocks(conn, id, r.class, r.promises.as_ref(), at)
                    .await?;
                // DOMAIN §9: a complaint taken unconfirmed must be confirmed within its limit.
                if let Some(clock) = sla::confirmation_clock(&self.policy, at, r.confirmed) {
                    let clock = StoredClock::new(id.as_str(), "", clock);
                    store::insert_new(conn, &[clock], &self.wakeup).await?;
                }
            }
            Payload::ComplaintConfirmed(c) => {
                let when = time(c.confirmed_at.as_ref()).unwrap_or(at);
                self.update(conn, id, ClockKind::Confirmation, "", |c| {
                    c.clock.meet(when)
                })
                .await?
            }
            Payload::ComplaintReclassified(c) => {
                self.reclassify(conn, id, c.to_class, c.promises.as_ref())
                    .await?
            }
            // An invalid complaint becomes class D: its limits follow (DOMAIN §2).
            Payload::ValidityDecided(v) if Class::from_wire(v.class).is_some() => {
                self.reclassify(conn, id, v.class, None).await?
            }
            Payload::ComplaintRouted(r) => {
                // Routing starts only once the record is confirmed: a routed complaint was
                // confirmed, even if the confirmation reached the monitor late or not at all.
                self.update(conn, id, ClockKind::Confirmation, "", |c| c.clock.meet(at))
                    .await?;
                store::note(
                    conn,
                    id,
                    ComplaintFacts {
                        department_id: Some(&r.department_id),
                        acceptance_owner_id: Some(&r.acceptance_owner_id),
                        class: letter(r.class),
                        ..Default::default()
                    },
                )
                .await?
            }
            Payload::ComplaintAssigned(a) => {
                store::note(
                    conn,
                    id,
                    ComplaintFacts {
                        department_id: Some(&a.department_id),
                        handler_id: Some(&a.assignee_id),
                        handler_named_at: Some(at),
                        ..Default::default()
                    },
                )
                .await?;
                self.pay_owed_fines(conn, id, &a.assignee_id, at).await?;
            }
            Payload::CauseRecorded(c) => {
                store::note(
                    conn,
                    id,
                    ComplaintFacts {
                        responsible_person_id: Some(&c.responsible_person_id),
                        ..Default::default()
                    },
                )
                .await?;
                self.pay_owed_fines(conn, id, &c.responsible_person_id, at)
                    .await?;
            }
            Payload::AcceptedByDepartment(a) => {
                let when = time(a.accepted_at.as_ref()).unwrap_or(at);
                self.update(conn, id, ClockKind::Acceptance, "", |c| c.clock.meet(when))
                    .await?
            }
            Payload::FeedbackGiven(_) => {
                self.update(conn, id, ClockKind::FirstFeedback, "", |c| c.clock.meet(at))
                    .await?
            }
            Payload::IntermediateResultReported(_) => {
                self.update(conn, id, ClockKind::IntermediateResult, "", |c| {
                    c.clock.meet(at)
                })
                .await?
            }
            Payload::Resolved(r) => {
                let when = time(r.handed_in_at.as_ref()).unwrap_or(at);
                if !r.responsible_person_id.is_empty() {
                    store::note(
                        conn,
                        id,
                        ComplaintFacts {
                            responsible_person_id: Some(&r.responsible_person_id),
                            ..Default::default()
                        },
                    )
                    .await?;
                }
                self.update(conn, id, ClockKind::Completion, "", |c| c.clock.meet(when))
                    .await?;
                // DOMAIN §9: resolution stops every other clock but the revisits — no late
                // first feedback or intermediate result for a resolved complaint.
                for kind in ClockKind::ALL {
                    if kind.stopped_by_resolution() && kind != ClockKind::Completion {
                        self.update(conn, id, kind, "", |c| c.clock.stop()).await?;
                    }
                }
            }
            Payload::Closed(_) => {
                store::note(
                    conn,
                    id,
                    ComplaintFacts {
                        closed: Some(true),
                        ..Default::default()
                    },
                )
                .await?;
                let mut clocks = store::load_all(conn, id).await?;
                clocks.iter_mut().for_each(|c| c.clock.stop());
                store::save(conn, &clocks, &self.wakeup).await?;
            }
            Payload::Reopened(_) => self.reopen(conn, id, at).await?,
            Payload::SpecialReasonRecorded(s) => {
                let Some(kind) = ClockKind::from_wire(s.clock) else {
                    return Ok(());
                };
                let extended = time(s.extended_due_at.as_ref());
                let policy = self.policy.clone();
                // Revisit clocks are keyed by revisit id, which the reason does not carry: it
                // applies to the complaint's open revisit clocks.
                for key in store::keys(conn, id, kind).await? {
                    self.update(conn, id, kind, &key, |c| {
                        c.special_reason = s.reason.clone();
                        c.special_reason_by = s.approved_by.clone();
                        if let Some(due) = extended {
                            c.clock.reschedule(&policy, due);
                        }
                    })
                    .await?;
                }
            }
            Payload::RevisitScheduled(r) => {
                let Some(due) = time(r.due_at.as_ref()) else {
                    return Err(HandleError::Permanent(
                        "revisit.scheduled without due_at".into(),
                    ));
                };
                store::note(conn, id, ComplaintFacts::default()).await?;
                let mut c = match store::load(conn, id, ClockKind::Revisit, &r.revisit_id).await? {
                    // Rescheduled: the same revisit, a new due time.
                    Some(mut c) => {
                        c.clock.reschedule(&self.policy, due);
                        c
                    }
                    None => StoredClock::new(
                        id.as_str(),
                        &r.revisit_id,
                        LimitClock::start(&self.policy, ClockKind::Revisit, at, due),
                    ),
                };
                if !r.agent_id.is_empty() {
                    c.agent_id = r.agent_id.clone();
                }
                store::save(conn, &[c], &self.wakeup).await?;
            }
            Payload::RevisitClaimed(r) => {
                self.update(conn, id, ClockKind::Revisit, &r.revisit_id, |c| {
                    c.agent_id = r.agent_id.clone()
                })
                .await?
            }
            // An attempt that did not reach the customer leaves the revisit due (DOMAIN §6:
            // every complainant is revisited).
            Payload::RevisitCompleted(r) if r.reached => {
                self.update(conn, id, ClockKind::Revisit, &r.revisit_id, |c| {
                    c.clock.meet(at)
                })
                .await?
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies a run of arrival events as one, with the outcome of applying them one by one:
    /// the facts of each complaint folded and recorded in one statement, every new clock in
    /// one, the confirmation clocks met in one read and one write, owed fines paid as each
    /// assignment names a person. A confirmation or routing meets a confirmation clock only if
    /// it existed before that event, as one at a time.
    async fn arrivals(
        &self,
        conn: &mut PgConnection,
        run: Vec<Arrival<'_, '_>>,
    ) -> Result<(), HandleError> {
        if run.is_empty() {
            return Ok(());
        }
        let mut noted: Vec<store::Noted> = Vec::new();
        let mut slot: HashMap<&str, usize> = HashMap::new();
        let mut clocks = Vec::new();
        // Where in the run each complaint's confirmation clock is started.
        let mut started: HashMap<&str, usize> = HashMap::new();
        let mut meets: Vec<(usize, &str, DateTime<Utc>)> = Vec::new();
        let mut assigned: Vec<String> = Vec::new();
        for (i, a) in run.iter().enumerate() {
            let id = a.id.as_str();
            let at = a.at;
            let facts = match &a.event.payload {
                Some(Payload::ComplaintReceived(r)) => {
                    clocks.extend(self.intake_clocks(id, r.class, r.promises.as_ref(), at)?);
                    if let Some(clock) = sla::confirmation_clock(&self.policy, at, r.confirmed) {
                        clocks.push(StoredClock::new(id, "", clock));
                        started.entry(id).or_insert(i);
                    }
                    Some(ComplaintFacts {
                        number: Some(&r.complaint_number),
                        class: letter(r.class),
                        received_at: Some(at),
                        ..Default::default()
                    })
                }
                Some(Payload::ComplaintConfirmed(c)) => {
                    meets.push((i, id, time(c.confirmed_at.as_ref()).unwrap_or(at)));
                    None
                }
                Some(Payload::ComplaintRouted(r)) => {
                    meets.push((i, id, at));
                    Some(ComplaintFacts {
                        department_id: Some(&r.department_id),
                        acceptance_owner_id: Some(&r.acceptance_owner_id),
                        class: letter(r.class),
                        ..Default::default()
                    })
                }
                Some(Payload::ComplaintAssigned(x)) => {
                    assigned.push(id.to_owned());
                    Some(ComplaintFacts {
                        department_id: Some(&x.department_id),
                        handler_id: Some(&x.assignee_id),
                        handler_named_at: Some(at),
                        ..Default::default()
                    })
                }
                _ => None,
            };
            if let Some(facts) = facts {
                let k = *slot.entry(id).or_insert_with(|| {
                    noted.push(store::Noted::new(id));
                    noted.len() - 1
                });
                let trace = a
                    .msg
                    .span()
                    .in_scope(redress_platform::telemetry::current_traceparent);
                noted[k].add(&facts, trace);
            }
        }
        // Rows locked in id order, as by every writer of several, so replicas never deadlock;
        // the sort is stable, so of two starts of one clock the first is kept.
        noted.sort_by(|x, y| x.complaint_id.cmp(&y.complaint_id));
        clocks.sort_by(|x, y| x.complaint_id.cmp(&y.complaint_id));
        store::note_many(conn, &noted).await?;
        let inserted = store::insert_new(conn, &clocks, &self.wakeup).await?;
        let confirmation = ClockKind::Confirmation.as_str();
        let started_here: HashSet<&str> = inserted
            .iter()
            .filter(|(_, kind, _)| kind == confirmation)
            .map(|(id, _, _)| id.as_str())
            .collect();
        if !meets.is_empty() {
            let ids: Vec<String> = meets.iter().map(|(_, id, _)| (*id).to_owned()).collect();
            let mut found: HashMap<String, StoredClock> =
                store::load_kind(conn, &ids, ClockKind::Confirmation)
                    .await?
                    .into_iter()
                    .map(|c| (c.complaint_id.clone(), c))
                    .collect();
            let mut changed = HashSet::new();
            for (i, id, when) in meets {
                let existed = !started_here.contains(id) || started.get(id).is_some_and(|s| *s < i);
                if let Some(c) = found.get_mut(id)
                    && existed
                {
                    c.clock.meet(when);
                    changed.insert(id.to_owned());
                }
            }
            let changed: Vec<StoredClock> = found
                .into_values()
                .filter(|c| changed.contains(&c.complaint_id))
                .collect();
            store::save(conn, &changed, &self.wakeup).await?;
        }
        // Fines owed to a person not known when a limit passed (rare: events held up by a
        // fault) are paid by the assignment that names them, as one at a time.
        let owing = store::owing(conn, &assigned).await?;
        if !owing.is_empty() {
            for a in &run {
                if let Some(Payload::ComplaintAssigned(x)) = &a.event.payload
                    && owing.contains(a.id.as_str())
                {
                    self.pay_owed_fines(conn, &a.id, &x.assignee_id, a.at)
                        .instrument(a.msg.span())
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// DOMAIN §4: acceptance, first feedback, completion and intermediate result, from the
    /// promises the customer was told (or the policy, when the event carries none).
    async fn start_intake_clocks(
        &self,
        conn: &mut PgConnection,
        id: &ComplaintId,
        class: i32,
        promised: Option<&v1::Promises>,
        received_at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        let clocks = self.intake_clocks(id.as_str(), class, promised, received_at)?;
        store::insert_new(conn, &clocks, &self.wakeup).await?;
        Ok(())
    }

    /// The clocks [`Tracker::start_intake_clocks`] starts.
    fn intake_clocks(
        &self,
        id: &str,
        class: i32,
        promised: Option<&v1::Promises>,
        received_at: DateTime<Utc>,
    ) -> Result<Vec<StoredClock>, HandleError> {
        let promises = match (promises_from(promised), Class::from_wire(class)) {
            (Some(p), _) => p,
            (None, Some(class)) => redress_domain::promises(&self.policy, class, received_at),
            (None, None) => {
                return Err(HandleError::Permanent(
                    "complaint without class or promises".into(),
                ));
            }
        };
        Ok(sla::intake_clocks(&self.policy, received_at, &promises)
            .into_iter()
            .map(|c| StoredClock::new(id, "", c))
            .collect())
    }

    /// DOMAIN §2: "the new limits replace the old ones" — each open clock moves to the new
    /// class's limit from its own start.
    async fn reclassify(
        &self,
        conn: &mut PgConnection,
        id: &ComplaintId,
        to: i32,
        promised: Option<&v1::Promises>,
    ) -> Result<(), HandleError> {
        let Some(class) = Class::from_wire(to) else {
            return Err(HandleError::Permanent("reclassified to no class".into()));
        };
        store::note(
            conn,
            id,
            ComplaintFacts {
                class: Some(class.as_str()),
                ..Default::default()
            },
        )
        .await?;
        let promised = promises_from(promised);
        let mut clocks = store::load_all(conn, id).await?;
        // The confirmation limit does not depend on the class: a new class leaves it (and any
        // extension granted to it) as it is.
        for c in clocks
            .iter_mut()
            .filter(|c| c.clock.state.is_open() && c.clock.kind != ClockKind::Confirmation)
        {
            // The event's promises count from intake; a run restarted by a reopening counts
            // from the reopening, so it takes the policy's limit from its own start.
            let due = match (&promised, c.run) {
                (Some(p), 1) => match c.clock.kind {
                    ClockKind::Acceptance => Some(p.acceptance_due),
                    ClockKind::FirstFeedback => Some(p.first_feedback_due),
                    ClockKind::Completion => Some(p.completion_due),
                    ClockKind::IntermediateResult => Some(p.intermediate_due),
                    ClockKind::Revisit | ClockKind::Confirmation => None,
                },
                _ => sla::policy_due(&self.policy, class, c.clock.kind, c.clock.started_at),
            };
            if let Some(due) = due {
                c.clock.reschedule(&self.policy, due);
            }
        }
        store::save(conn, &clocks, &self.wakeup).await?;
        Ok(())
    }

    /// DOMAIN §3 (reopened: "the completion clock runs again"): completion and intermediate
    /// result restart from the reopening with the class's limits, as a new run.
    async fn reopen(
        &self,
        conn: &mut PgConnection,
        id: &ComplaintId,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        store::note(
            conn,
            id,
            ComplaintFacts {
                closed: Some(false),
                ..Default::default()
            },
        )
        .await?;
        let class = store::complaint(conn, id)
            .await?
            .and_then(|c| c.class.parse::<Class>().ok());
        let Some(class) = class else {
            return Err(HandleError::Permanent(
                "reopened a complaint the monitor never saw classified".into(),
            ));
        };
        let mut clocks = store::load_all(conn, id).await?;
        for c in clocks
            .iter_mut()
            .filter(|c| sla::restarted_by_reopening(c.clock.kind))
        {
            if let Some(due) = sla::policy_due(&self.policy, class, c.clock.kind, at) {
                c.clock.restart(&self.policy, at, due);
                c.run += 1;
                c.special_reason.clear();
                c.special_reason_by.clear();
            }
        }
        store::save(conn, &clocks, &self.wakeup).await?;
        Ok(())
    }

    /// Changes one clock, if the monitor has it (an event about a clock it never started —
    /// say, for a complaint received before the monitor existed — changes nothing).
    async fn update(
        &self,
        conn: &mut PgConnection,
        id: &ComplaintId,
        kind: ClockKind,
        key: &str,
        change: impl FnOnce(&mut StoredClock),
    ) -> Result<(), sqlx::Error> {
        if let Some(mut c) = store::load(conn, id, kind, key).await? {
            change(&mut c);
            store::save(conn, &[c], &self.wakeup).await?;
        }
        Ok(())
    }
}
