//! The accountability ledger (处罚, DOMAIN §7 and §9): fines against named people, booked from
//! other services' events, and the suspension that three complaints in a month bring.
//!
//! Who pays and what counts are the domain's decisions ([`redress_domain::accountability`],
//! [`redress_domain::penalty`]); this module stores them:
//!
//! - A complaint's class fine is booked when it is resolved (or closed), against its named
//!   responsible person only (DOMAIN §9 "Class fines need a named person"); nothing when the
//!   customer is responsible.
//! - An overdue class-D record and late acceptance per started day come from the SLA monitor's
//!   `accountability.recorded`; a missed revisit nobody claimed falls on the complaint centre's
//!   manager.
//! - A repeat complaint doubles the original's class fine: automatically when the original missed
//!   a limit, otherwise on a manager's neglect finding (DOMAIN §9).
//!
//! Every entry is unique per complaint + person + reason + day number, so redelivery, a copy of
//! an event under another message id, or a second finding never books twice. See ADR 0014.

use chrono::{DateTime, Utc};
use redress_domain::accountability::{
    Payer, Reason, doubles_at_once, doubling_payer, missed_limit_payer,
};
use redress_domain::sla::ClockKind;
use redress_domain::{Class, ComplaintId, Money, Policy, penalty};
use redress_platform::outbox::Outbox;
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;

use crate::envelope::{PRODUCER, from_ts};
use crate::error::Error;
use crate::store::complaints;
use crate::store::ledger::{self as store, Entry, Repeat};

/// Books entries and emits what follows from them, on the caller's transaction.
#[derive(Clone)]
pub struct Ledger {
    pub policy: std::sync::Arc<Policy>,
    pub outbox: Outbox,
}

/// Whose fault it is when the customer misused or misunderstood: nobody on the staff.
fn customer_responsible(responsibility: i32) -> bool {
    matches!(
        v1::Responsibility::try_from(responsibility),
        Ok(v1::Responsibility::CustomerMisuse | v1::Responsibility::CustomerMisunderstanding)
    )
}

impl Ledger {
    fn month(&self, at: DateTime<Utc>) -> String {
        penalty::month_of(&self.policy, at)
    }

    /// Books `e` unless its key is taken; returns whether it was new. A new entry the ledger
    /// originates is published as `accountability.recorded` (`publish`); a new counting entry
    /// may suspend the person.
    pub async fn book(
        &self,
        conn: &mut PgConnection,
        e: &Entry,
        now: DateTime<Utc>,
        actor: &v1::Actor,
        publish: bool,
    ) -> Result<bool, Error> {
        let inserted = store::book(conn, e, now).await?;
        if !inserted {
            return Ok(false);
        }
        let mut events = Vec::new();
        if publish {
            events.push(PRODUCER.event(
                e.complaint_id.as_str(),
                now,
                actor,
                &e.source_event_id,
                Payload::AccountabilityRecorded(v1::AccountabilityRecorded {
                    person_id: e.person_id.clone(),
                    department_id: e.department_id.clone(),
                    class_counted: e.class,
                    amount_fen: e.amount.fen(),
                    reason: e.reason.to_wire(),
                    days: e.day,
                    month: e.month.clone(),
                    note: e.note.clone(),
                    clock: v1::SlaClock::Unspecified as i32,
                }),
            ));
        }
        if e.reason.counts_toward_suspension() {
            events.extend(self.count(conn, e, now).await?);
        }
        if !events.is_empty() {
            self.outbox.append(conn, &events).await?;
        }
        Ok(true)
    }

    /// Counts one more complaint against the person in the month; at the threshold, the one
    /// `staff.suspended` of that person-month. The row lock on `person_months` serialises
    /// concurrent bookings (two replicas), so the threshold is crossed exactly once.
    async fn count(
        &self,
        conn: &mut PgConnection,
        e: &Entry,
        now: DateTime<Utc>,
    ) -> Result<Option<v1::Event>, Error> {
        let store::PersonMonth { counted, suspended } =
            store::count(conn, &e.person_id, &e.month).await?;
        if suspended || !penalty::suspension_due(&self.policy, counted) {
            return Ok(None);
        }
        store::suspend(conn, &e.person_id, &e.month, now).await?;
        let complaint_ids = store::counted_complaints(conn, &e.person_id, &e.month)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        let department_id = complaints::staff_department(conn, &e.person_id).await?;
        tracing::info!(person = %e.person_id, month = %e.month, counted, "staff suspended");
        Ok(Some(
            PRODUCER.event(
                "",
                now,
                &PRODUCER.system_actor(),
                &e.source_event_id,
                Payload::StaffSuspended(v1::StaffSuspended {
                    person_id: e.person_id.clone(),
                    month: e.month.clone(),
                    count: counted,
                    department_id: department_id
                        .filter(|d| !d.is_empty())
                        .unwrap_or_else(|| e.department_id.clone()),
                    complaint_ids,
                }),
            ),
        ))
    }

    /// Applies one event about complaint `cid` to the ledger, after the ladder has noted its
    /// facts in `complaints`.
    pub async fn apply(
        &self,
        conn: &mut PgConnection,
        cid: &ComplaintId,
        ev: &v1::Event,
        payload: &Payload,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let at = from_ts(ev.occurred_at.as_ref()).unwrap_or(now);
        match payload {
            Payload::ComplaintReceived(_) => complaints::set_received_at(conn, cid, at).await?,
            Payload::CauseRecorded(c) => {
                complaints::set_responsibility(conn, cid, c.responsibility).await?;
            }
            Payload::SlaOverdue(o) => {
                store::record_overdue(
                    conn,
                    cid,
                    o.clock,
                    o.overdue_day,
                    &o.department_id,
                    &self.month(at),
                )
                .await?;
                self.missed_limit(conn, cid, &ev.event_id, now).await?;
            }
            Payload::AccountabilityRecorded(r) => {
                self.recorded(conn, cid, ev, r, at, now).await?;
            }
            Payload::Resolved(_) | Payload::Closed(_) => {
                self.complaint_fine(conn, cid, &ev.event_id, at, now)
                    .await?;
            }
            Payload::RepeatComplaint(r) => {
                let original = match r.original_complaint_id.as_str() {
                    "" => None,
                    raw => Some(
                        ComplaintId::parse(raw)
                            .map_err(|e| Error::invalid("original_complaint_id", &e.to_string()))?,
                    ),
                };
                self.repeat(conn, cid, original.as_ref(), r, &ev.event_id, at, now)
                    .await?;
            }
            _ => {}
        }
        // Any complaint event: the first one seen dates the complaint until `received` does.
        complaints::date_if_undated(conn, cid, at).await?;
        Ok(())
    }

    /// The SLA monitor's records: an overdue class-D record, or one day of late acceptance.
    async fn recorded(
        &self,
        conn: &mut PgConnection,
        cid: &ComplaintId,
        ev: &v1::Event,
        r: &v1::AccountabilityRecorded,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let person_id = match missed_limit_payer(&r.person_id, ClockKind::from_wire(r.clock)) {
            Payer::Named(person) => person.to_owned(),
            Payer::CentreManager => match complaints::centre_manager(conn).await? {
                Some(manager) => manager,
                None => return Ok(()),
            },
            Payer::Nobody => return Ok(()),
        };
        let month = if penalty::month_bounds(&self.policy, &r.month).is_some() {
            r.month.clone()
        } else {
            self.month(at)
        };
        let given = |fallback: Money| {
            if r.amount_fen > 0 {
                Money::from_fen(r.amount_fen)
            } else {
                fallback
            }
        };
        let entry = match r.reason() {
            v1::AccountabilityReason::Overdue => Entry {
                complaint_id: cid.clone(),
                person_id: person_id.clone(),
                reason: Reason::Overdue,
                day: 0,
                department_id: r.department_id.clone(),
                class: v1::Class::D as i32,
                amount: given(penalty::complaint_penalty(&self.policy, Class::D, false)),
                month,
                note: r.note.clone(),
                source_event_id: ev.event_id.clone(),
            },
            v1::AccountabilityReason::LateAcceptance => Entry {
                complaint_id: cid.clone(),
                person_id: person_id.clone(),
                reason: Reason::LateAcceptance,
                // One record per started day late; `days` is which day this is.
                day: r.days.max(1),
                department_id: r.department_id.clone(),
                class: 0,
                amount: given(self.policy.penalties.late_acceptance_per_day),
                month,
                note: r.note.clone(),
                source_event_id: ev.event_id.clone(),
            },
            // Complaint fines and doublings are this ledger's own; others' copies are ignored.
            _ => return Ok(()),
        };
        let overdue = entry.reason == Reason::Overdue;
        self.book(conn, &entry, now, &PRODUCER.system_actor(), false)
            .await?;
        if overdue {
            self.missed_limit(conn, cid, &ev.event_id, now).await?;
        }
        Ok(())
    }

    /// Marks a missed limit; an already-recorded repeat complaint about it is doubled now.
    async fn missed_limit(
        &self,
        conn: &mut PgConnection,
        cid: &ComplaintId,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        complaints::mark_missed_limit(conn, cid).await?;
        if let Some(repeat) = store::first_repeat(conn, cid).await? {
            self.double_missed(conn, cid, &repeat.person_id, repeat.class, source, now)
                .await?;
        }
        Ok(())
    }

    /// DOMAIN §7: the complaint's class fine against the responsible person, booked once when
    /// it is resolved or closed.
    async fn complaint_fine(
        &self,
        conn: &mut PgConnection,
        cid: &ComplaintId,
        source: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let Some(facts) = complaints::fine_facts(conn, cid).await? else {
            return Ok(());
        };
        let Some(domain) = Class::from_wire(facts.class) else {
            return Ok(());
        };
        let Some(person) = penalty::class_fine_person(
            &facts.responsible_person_id,
            customer_responsible(facts.responsibility),
        )
        .map(str::to_owned) else {
            return Ok(());
        };
        let entry = Entry {
            complaint_id: cid.clone(),
            person_id: person,
            reason: Reason::Complaint,
            day: 0,
            department_id: if facts.person_department.is_empty() {
                facts.department_id
            } else {
                facts.person_department
            },
            class: facts.class,
            amount: penalty::complaint_penalty(&self.policy, domain, false),
            month: self.month(at),
            note: format!("class {domain:?} complaint"),
            source_event_id: source.to_owned(),
        };
        self.book(conn, &entry, now, &PRODUCER.system_actor(), true)
            .await?;
        Ok(())
    }

    /// A repeat complaint `cid` about `original` (`None` when it names none): remembered for a
    /// neglect finding; doubled at once when the original missed a limit (DOMAIN §9).
    #[allow(clippy::too_many_arguments)]
    async fn repeat(
        &self,
        conn: &mut PgConnection,
        cid: &ComplaintId,
        original: Option<&ComplaintId>,
        r: &v1::RepeatComplaint,
        source: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let Some(original_id) = original else {
            return Ok(());
        };
        let (mut class, mut named_on_original, mut missed) =
            (r.original_class, String::new(), false);
        if let Some(o) = complaints::original(conn, original_id).await? {
            if class == 0 {
                class = o.class;
            }
            named_on_original = o.responsible_person_id;
            missed = o.missed_limit;
        }
        let person = doubling_payer(&r.responsible_person_id, &named_on_original).to_owned();
        store::record_repeat(
            conn,
            original_id,
            cid,
            &Repeat {
                person_id: person.clone(),
                class,
                department_id: r.department_id.clone(),
            },
            &self.month(at),
        )
        .await?;
        if doubles_at_once(missed, &person) {
            self.double_missed(conn, original_id, &person, class, source, now)
                .await?;
        }
        Ok(())
    }

    /// DOMAIN §9: doubling "applied automatically when the original missed a limit".
    async fn double_missed(
        &self,
        conn: &mut PgConnection,
        original: &ComplaintId,
        person: &str,
        class: i32,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let note = "repeat complaint after a missed time limit";
        self.double(
            conn,
            original,
            person,
            class,
            source,
            note,
            now,
            &PRODUCER.system_actor(),
        )
        .await?;
        Ok(())
    }

    /// Books the doubling of `original`'s class fine for `person`; returns the extra amount
    /// and whether it was new.
    #[allow(clippy::too_many_arguments)]
    pub async fn double(
        &self,
        conn: &mut PgConnection,
        original: &ComplaintId,
        person: &str,
        class: i32,
        source: &str,
        note: &str,
        now: DateTime<Utc>,
        actor: &v1::Actor,
    ) -> Result<(Money, bool), Error> {
        let Some(domain) = Class::from_wire(class) else {
            return Ok((Money::ZERO, false));
        };
        let department = complaints::staff_department(conn, person).await?;
        let extra = penalty::repeat_extra(&self.policy, domain);
        let entry = Entry {
            complaint_id: original.clone(),
            person_id: person.to_owned(),
            reason: Reason::RepeatDoubling,
            day: 0,
            department_id: department.unwrap_or_default(),
            class,
            amount: extra,
            month: self.month(now),
            note: note.to_owned(),
            source_event_id: source.to_owned(),
        };
        let new = self.book(conn, &entry, now, actor, true).await?;
        Ok((extra, new))
    }
}
