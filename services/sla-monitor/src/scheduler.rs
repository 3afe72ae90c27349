//! The scheduler: sleeps until the earliest clock falls due, then emits its warning or overdue
//! exactly once.
//!
//! Never a scan: the earliest `next_fire_at` is one read of a partial index, and due clocks are
//! taken in batches, earliest first, with `FOR UPDATE SKIP LOCKED`. The clock's new state and
//! the events it emits commit in one transaction, so a crash before the commit emits nothing
//! and the next round (here or on another replica) emits it; after the commit the clock no
//! longer matches. Several replicas share the work without ever taking the same clock twice.
//!
//! Wake-ups: a handler that writes an earlier deadline wakes the scheduler of its process
//! ([`Wakeup`]); the sleep is capped (default 1 s) so deadlines written by other replicas are
//! seen in time too.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use redress_domain::sla::{ClockKind, Emission, late_day};
use redress_domain::{Class, Clock, Policy};
use redress_platform::metrics::AfterCommit;
use redress_platform::outbox::{AppendError, Outbox};
use redress_platform::telemetry;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::envelope::{PRODUCER, ts};
use crate::store::{self, Complaint, StoredClock, Wakeup};
use redress_proto::Wire as _;
use redress_proto::convert::class_letter_to_wire;

/// Runs the clocks of this service's schema.
pub struct Scheduler {
    pub pool: PgPool,
    pub outbox: Outbox,
    pub clock: Arc<dyn Clock>,
    pub policy: Arc<Policy>,
    pub wakeup: Arc<Wakeup>,
    /// Clocks taken per transaction.
    pub batch: i64,
    /// Longest sleep, so other replicas' deadlines are noticed.
    pub max_sleep: StdDuration,
}

impl Scheduler {
    /// Fires clocks until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let now = self.clock.now();
            match self.fire_due(now).await {
                // A full batch: more may be due at once.
                Ok(n) if n as i64 >= self.batch => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "firing clocks failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(StdDuration::from_millis(500)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
            }
            let next = match self.earliest().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the next deadline failed");
                    None
                }
            };
            let now = self.clock.now();
            let hint = self.wakeup.take_hint(now);
            if hint.is_some_and(|h| h <= now) {
                continue; // Written while we were firing: look again.
            }
            let cap = now
                + chrono::Duration::from_std(self.max_sleep)
                    .unwrap_or_else(|_| chrono::Duration::seconds(1));
            let wake_at = [next, hint, Some(cap)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(cap);
            self.wakeup.plan(wake_at);
            let wait = (wake_at - now).to_std().unwrap_or(StdDuration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wakeup.notified() => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }

    /// The earliest time any clock must be looked at.
    pub async fn earliest(&self) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        store::earliest_fire_at(&self.pool).await
    }

    /// Takes up to one batch of clocks due at `now`, emits what each owes, and commits the
    /// clocks with their events. Returns how many clocks were taken.
    pub async fn fire_due(&self, now: DateTime<Utc>) -> Result<usize, anyhow::Error> {
        let mut tx = self.outbox.begin(&self.pool).await?;
        let due = store::take_due(&mut tx, now, self.batch).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let taken = due.len();
        let mut clocks = Vec::with_capacity(taken);
        let mut owed: Vec<(StoredClock, String, Complaint)> = Vec::new();
        let mut messages = Vec::new();
        let after_commit = AfterCommit::default();
        for store::Due {
            clock: mut c,
            complaint,
            trace_parent,
        } in due
        {
            // The events continue the trace of the complaint that set the clock.
            let span = tracing::info_span!("sla.fire", complaint_id = %c.complaint_id,
                clock = c.clock.kind.as_str(), trace_id = tracing::field::Empty);
            telemetry::continue_trace(&span, &trace_parent);
            span.in_scope(|| -> Result<(), AppendError> {
                let mut events = Vec::new();
                for emission in c.clock.fire(now, late_day()) {
                    let first = events.len();
                    let overdue = matches!(emission, Emission::Overdue { .. });
                    self.emit(&c, &complaint, emission, now, &mut events, &after_commit);
                    if overdue && fine_waits_for_a_person(&c, &complaint) {
                        owed.push((c.clone(), events[first].event_id.clone(), complaint.clone()));
                    }
                }
                for e in &events {
                    messages.push(self.outbox.message_for(e)?);
                }
                Ok(())
            })?;
            clocks.push(c);
        }
        store::save(&mut tx, &clocks, &self.wakeup).await?;
        for (c, overdue_event_id, mut complaint) in owed {
            // The assignment may have committed since the row was read: read it again, waiting
            // for a tracker still writing it (and holding it from one that starts now, so that
            // one finds the fine owed).
            if let Some(now_known) = store::complaint_for_share(&mut tx, &c.complaint_id).await? {
                complaint = now_known;
            }
            let person = complaint.fined_for(&c);
            if complaint.handler_id.is_empty() && complaint.responsible_person_id.is_empty() {
                store::owe_fine(&mut tx, &c, &overdue_event_id).await?;
            } else if !person.is_empty() {
                let record = PRODUCER.event(
                    &c.complaint_id,
                    now,
                    &PRODUCER.system_actor(),
                    &overdue_event_id,
                    Payload::AccountabilityRecorded(lateness_record(
                        &self.policy,
                        c.clock.kind,
                        &complaint,
                        &person,
                        now,
                    )),
                );
                messages.push(self.outbox.message_for(&record)?);
            }
        }
        self.outbox.append_messages(&mut tx, &messages).await?;
        tx.commit().await?;
        after_commit.committed();
        Ok(taken)
    }

    /// The events of one emission (DOMAIN §4): a warning; or an overdue and, without a special
    /// reason, the accountability record against the person responsible. Counted once the
    /// emission commits.
    fn emit(
        &self,
        c: &StoredClock,
        complaint: &Complaint,
        emission: Emission,
        now: DateTime<Utc>,
        events: &mut Vec<v1::Event>,
        after_commit: &AfterCommit,
    ) {
        let person = complaint.responsible_for(c);
        let class = class_letter_to_wire(&complaint.class);
        let clock = c.clock.kind.to_wire();
        let kind = c.clock.kind.as_str();
        match emission {
            Emission::Warning => {
                tracing::debug!(clock = kind, responsible = %person, "warning");
                let lateness = seconds(now - c.clock.warn_at);
                after_commit.defer(move || {
                    metrics::counter!("redress_sla_warnings_total", "clock" => kind).increment(1);
                    metrics::histogram!("redress_sla_lateness_seconds", "what" => "warning")
                        .record(lateness);
                });
                events.push(PRODUCER.event(
                    &c.complaint_id,
                    now,
                    &PRODUCER.system_actor(),
                    "",
                    Payload::SlaWarning(v1::SlaWarning {
                        clock,
                        due_at: Some(ts(c.clock.due_at)),
                        responsible_person_id: person,
                        department_id: complaint.department_id.clone(),
                        class,
                        complaint_number: complaint.number.clone(),
                    }),
                ));
            }
            Emission::Overdue { day } => {
                tracing::info!(clock = kind, day, responsible = %person, "overdue");
                let lateness = seconds(now - c.clock.due_at);
                let class_label = Class::parse(&complaint.class).map_or("unknown", Class::as_str);
                after_commit.defer(move || {
                    metrics::counter!("redress_sla_overdue_total", "clock" => kind,
                        "class" => class_label)
                    .increment(1);
                    metrics::histogram!("redress_sla_lateness_seconds", "what" => "overdue")
                        .record(lateness);
                });
                let overdue = PRODUCER.event(
                    &c.complaint_id,
                    now,
                    &PRODUCER.system_actor(),
                    "",
                    Payload::SlaOverdue(v1::SlaOverdue {
                        clock,
                        due_at: Some(ts(c.clock.due_at)),
                        responsible_person_id: person.clone(),
                        department_id: complaint.department_id.clone(),
                        class,
                        overdue_day: day,
                        complaint_number: complaint.number.clone(),
                    }),
                );
                // Late acceptance and revisits have their owners; a missed completion fines the
                // person responsible by the due time.
                let fined = match c.clock.kind {
                    ClockKind::Acceptance | ClockKind::Revisit => person.clone(),
                    _ => complaint.fined_for(c),
                };
                let record = self.accountability(c, complaint, &fined, day, now, &overdue);
                events.push(overdue);
                events.extend(record);
            }
        }
    }

    /// DOMAIN §4: "A complaint not finished in its limit without a special reason makes its
    /// responsible person subject to a negative incentive, recorded as a class D complaint
    /// against that person"; DOMAIN §7: late acceptance, 100 yuan per started day against the
    /// acceptance owner. None with a recorded special reason, and none when nobody is named
    /// (DOMAIN §7: "only where a person is named").
    fn accountability(
        &self,
        c: &StoredClock,
        complaint: &Complaint,
        person: &str,
        day: u32,
        now: DateTime<Utc>,
        overdue: &v1::Event,
    ) -> Option<v1::Event> {
        // DOMAIN §9: one lateness fine per complaint (completion), late acceptance per day, a
        // missed revisit to its owner; other missed limits are escalated, not fined.
        if !c.special_reason.is_empty() || !c.clock.kind.fined_when_missed() {
            return None;
        }
        // Nobody named: no record (DOMAIN §7), except a revisit nobody claimed, which the
        // escalation service's ledger charges to the complaint centre's manager (§9).
        if person.is_empty() && c.clock.kind != ClockKind::Revisit {
            return None;
        }
        let month = now
            .with_timezone(&self.policy.calendar.timezone)
            .format("%Y-%m")
            .to_string();
        let record = if c.clock.kind == ClockKind::Acceptance {
            v1::AccountabilityRecorded {
                person_id: person.to_owned(),
                department_id: complaint.department_id.clone(),
                class_counted: v1::Class::Unspecified as i32,
                amount_fen: self.policy.penalties.late_acceptance_per_day.fen(),
                reason: v1::AccountabilityReason::LateAcceptance as i32,
                days: day,
                month,
                note: format!("acceptance late, day {day}"),
                clock: c.clock.kind.to_wire(),
            }
        } else {
            lateness_record(&self.policy, c.clock.kind, complaint, person, now)
        };
        Some(PRODUCER.event(
            &c.complaint_id,
            now,
            &PRODUCER.system_actor(),
            &overdue.event_id,
            Payload::AccountabilityRecorded(record),
        ))
    }
}

/// Whether an overdue clock owes a lateness fine that waits for its person: a clock fined when
/// missed (the completion limit), without a special reason, whose responsible person the
/// monitor does not know yet. Late acceptance and revisits have their own owners.
fn fine_waits_for_a_person(c: &StoredClock, complaint: &Complaint) -> bool {
    c.special_reason.is_empty()
        && c.clock.kind.fined_when_missed()
        && !matches!(c.clock.kind, ClockKind::Acceptance | ClockKind::Revisit)
        && complaint.responsible_person_id.is_empty()
        && complaint.handler_id.is_empty()
}

/// DOMAIN §9 "One lateness fine per complaint": the class-D record against `person` for a
/// missed limit, as of `now` (its month).
pub fn lateness_record(
    policy: &Policy,
    kind: ClockKind,
    complaint: &Complaint,
    person: &str,
    now: DateTime<Utc>,
) -> v1::AccountabilityRecorded {
    v1::AccountabilityRecorded {
        person_id: person.to_owned(),
        department_id: complaint.department_id.clone(),
        class_counted: v1::Class::D as i32,
        amount_fen: redress_domain::complaint_penalty(policy, Class::D, false).fen(),
        reason: v1::AccountabilityReason::Overdue as i32,
        days: 0,
        month: now
            .with_timezone(&policy.calendar.timezone)
            .format("%Y-%m")
            .to_string(),
        note: format!("{} limit missed without a special reason", kind.as_str()),
        clock: kind.to_wire(),
    }
}

fn seconds(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}
