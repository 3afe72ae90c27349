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
use redress_domain::{Class, Money, Policy, penalty};
use redress_platform::outbox::Outbox;
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use sqlx::{PgConnection, Row};

use crate::envelope::{PRODUCER, from_ts};
use crate::error::Error;
use redress_domain::accountability::{
    Payer, Reason, doubles_at_once, doubling_payer, missed_limit_payer,
};
use redress_domain::sla::ClockKind;

/// One entry to book.
pub struct Entry {
    pub complaint_id: String,
    pub person_id: String,
    pub reason: Reason,
    pub day: u32,
    pub department_id: String,
    pub class: i32,
    pub amount: Money,
    pub month: String,
    pub note: String,
    pub source_event_id: String,
}

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
        let inserted = sqlx::query(
            "INSERT INTO ledger_entries (complaint_id, person_id, reason, day, department_id,
                class, amount_fen, month, counts, note, source_event_id, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT DO NOTHING",
        )
        .bind(&e.complaint_id)
        .bind(&e.person_id)
        .bind(e.reason.code())
        .bind(i32::try_from(e.day).unwrap_or(i32::MAX))
        .bind(&e.department_id)
        .bind(e.class)
        .bind(e.amount.fen())
        .bind(&e.month)
        .bind(e.reason.counts_toward_suspension())
        .bind(&e.note)
        .bind(&e.source_event_id)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(false);
        }
        let mut events = Vec::new();
        if publish {
            events.push(PRODUCER.event(
                &e.complaint_id,
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
        let row = sqlx::query(
            "INSERT INTO person_months (person_id, month, counted) VALUES ($1, $2, 1)
             ON CONFLICT (person_id, month) DO UPDATE SET counted = person_months.counted + 1
             RETURNING counted, suspended_at IS NOT NULL AS suspended",
        )
        .bind(&e.person_id)
        .bind(&e.month)
        .fetch_one(&mut *conn)
        .await?;
        let counted: i32 = row.try_get("counted")?;
        let suspended: bool = row.try_get("suspended")?;
        let counted = u32::try_from(counted).unwrap_or(0);
        if suspended || !penalty::suspension_due(&self.policy, counted) {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE person_months SET suspended_at = $3 WHERE person_id = $1 AND month = $2",
        )
        .bind(&e.person_id)
        .bind(&e.month)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        let complaint_ids: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT complaint_id FROM ledger_entries
             WHERE person_id = $1 AND month = $2 AND counts ORDER BY complaint_id",
        )
        .bind(&e.person_id)
        .bind(&e.month)
        .fetch_all(&mut *conn)
        .await?;
        let department_id: Option<String> =
            sqlx::query_scalar("SELECT department_id FROM staff WHERE staff_id = $1")
                .bind(&e.person_id)
                .fetch_optional(&mut *conn)
                .await?;
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

    /// Applies one event to the ledger, after the ladder has noted its facts in `complaints`.
    pub async fn apply(
        &self,
        conn: &mut PgConnection,
        ev: &v1::Event,
        payload: &Payload,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let cid = ev.complaint_id.as_str();
        if cid.is_empty() {
            return Ok(());
        }
        let at = from_ts(ev.occurred_at.as_ref()).unwrap_or(now);
        match payload {
            Payload::ComplaintReceived(_) => {
                sqlx::query("UPDATE complaints SET received_at = $2 WHERE complaint_id = $1")
                    .bind(cid)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
            }
            Payload::CauseRecorded(c) => {
                sqlx::query("UPDATE complaints SET responsibility = $2 WHERE complaint_id = $1")
                    .bind(cid)
                    .bind(c.responsibility)
                    .execute(&mut *conn)
                    .await?;
            }
            Payload::SlaOverdue(o) => {
                sqlx::query(
                    "INSERT INTO overdues (complaint_id, clock, day, department_id, month)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(cid)
                .bind(o.clock)
                .bind(i32::try_from(o.overdue_day).unwrap_or(i32::MAX))
                .bind(&o.department_id)
                .bind(self.month(at))
                .execute(&mut *conn)
                .await?;
                self.missed_limit(conn, cid, &ev.event_id, now).await?;
            }
            Payload::AccountabilityRecorded(r) => {
                self.recorded(conn, ev, r, at, now).await?;
            }
            Payload::Resolved(_) | Payload::Closed(_) => {
                self.complaint_fine(conn, cid, &ev.event_id, at, now)
                    .await?;
            }
            Payload::RepeatComplaint(r) => {
                self.repeat(conn, cid, r, &ev.event_id, at, now).await?;
            }
            _ => {}
        }
        // Any complaint event: the first one seen dates the complaint until `received` does.
        sqlx::query(
            "UPDATE complaints SET received_at = $2 WHERE complaint_id = $1 AND received_at IS NULL",
        )
        .bind(cid)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The SLA monitor's records: an overdue class-D record, or one day of late acceptance.
    async fn recorded(
        &self,
        conn: &mut PgConnection,
        ev: &v1::Event,
        r: &v1::AccountabilityRecorded,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let person_id = match missed_limit_payer(&r.person_id, ClockKind::from_wire(r.clock)) {
            Payer::Named(person) => person.to_owned(),
            Payer::CentreManager => match self.centre_manager(conn).await? {
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
                complaint_id: ev.complaint_id.clone(),
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
                complaint_id: ev.complaint_id.clone(),
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
            self.missed_limit(conn, &ev.complaint_id, &ev.event_id, now)
                .await?;
        }
        Ok(())
    }

    /// The complaint centre's manager: the manager of the department marked as the service
    /// centre (routing's `department.upserted`), if known.
    async fn centre_manager(&self, conn: &mut PgConnection) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar(
            "SELECT manager_id FROM departments WHERE service_centre AND manager_id <> ''
             ORDER BY department_id LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?)
    }

    /// Marks a missed limit; an already-recorded repeat complaint about it is doubled now.
    async fn missed_limit(
        &self,
        conn: &mut PgConnection,
        cid: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO complaints (complaint_id, missed_limit) VALUES ($1, true)
             ON CONFLICT (complaint_id) DO UPDATE SET missed_limit = true",
        )
        .bind(cid)
        .execute(&mut *conn)
        .await?;
        let repeat: Option<(String, i32)> = sqlx::query_as(
            "SELECT person_id, class FROM repeats WHERE original_complaint_id = $1
             ORDER BY month LIMIT 1",
        )
        .bind(cid)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((person, class)) = repeat {
            self.double_missed(conn, cid, &person, class, source, now)
                .await?;
        }
        Ok(())
    }

    /// DOMAIN §7: the complaint's class fine against the responsible person, booked once when
    /// it is resolved or closed.
    async fn complaint_fine(
        &self,
        conn: &mut PgConnection,
        cid: &str,
        source: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let Some(row) = sqlx::query(
            "SELECT c.class, c.responsible_person_id, c.assignee_id, c.responsibility,
                    c.department_id, COALESCE(s.department_id, '') AS person_department
             FROM complaints c
             LEFT JOIN staff s ON s.staff_id = CASE WHEN c.responsible_person_id <> ''
                THEN c.responsible_person_id ELSE c.assignee_id END
             WHERE c.complaint_id = $1",
        )
        .bind(cid)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(());
        };
        let class: i32 = row.try_get("class")?;
        let named: String = row.try_get("responsible_person_id")?;
        let responsibility: i32 = row.try_get("responsibility")?;
        let Some(domain) = Class::from_wire(class) else {
            return Ok(());
        };
        let Some(person) = penalty::class_fine_person(&named, customer_responsible(responsibility))
            .map(str::to_owned)
        else {
            return Ok(());
        };
        let person_department: String = row.try_get("person_department")?;
        let department: String = row.try_get("department_id")?;
        let entry = Entry {
            complaint_id: cid.to_owned(),
            person_id: person,
            reason: Reason::Complaint,
            day: 0,
            department_id: if person_department.is_empty() {
                department
            } else {
                person_department
            },
            class,
            amount: penalty::complaint_penalty(&self.policy, domain, false),
            month: self.month(at),
            note: format!("class {domain:?} complaint"),
            source_event_id: source.to_owned(),
        };
        self.book(conn, &entry, now, &PRODUCER.system_actor(), true)
            .await?;
        Ok(())
    }

    /// A repeat complaint: remembered for a neglect finding; doubled at once when the original
    /// missed a limit (DOMAIN §9).
    async fn repeat(
        &self,
        conn: &mut PgConnection,
        cid: &str,
        r: &v1::RepeatComplaint,
        source: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if r.original_complaint_id.is_empty() {
            return Ok(());
        }
        let original = sqlx::query(
            "SELECT class, responsible_person_id, assignee_id, missed_limit
             FROM complaints WHERE complaint_id = $1",
        )
        .bind(&r.original_complaint_id)
        .fetch_optional(&mut *conn)
        .await?;
        let (mut class, mut named_on_original, mut missed) =
            (r.original_class, String::new(), false);
        if let Some(o) = original {
            if class == 0 {
                class = o.try_get("class")?;
            }
            named_on_original = o.try_get("responsible_person_id")?;
            missed = o.try_get("missed_limit")?;
        }
        let person = doubling_payer(&r.responsible_person_id, &named_on_original).to_owned();
        sqlx::query(
            "INSERT INTO repeats (original_complaint_id, repeat_complaint_id, department_id,
                person_id, class, month) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&r.original_complaint_id)
        .bind(cid)
        .bind(&r.department_id)
        .bind(&person)
        .bind(class)
        .bind(self.month(at))
        .execute(&mut *conn)
        .await?;
        if doubles_at_once(missed, &person) {
            self.double_missed(conn, &r.original_complaint_id, &person, class, source, now)
                .await?;
        }
        Ok(())
    }

    /// DOMAIN §9: doubling "applied automatically when the original missed a limit".
    async fn double_missed(
        &self,
        conn: &mut PgConnection,
        original: &str,
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
        original: &str,
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
        let department: Option<String> =
            sqlx::query_scalar("SELECT department_id FROM staff WHERE staff_id = $1")
                .bind(person)
                .fetch_optional(&mut *conn)
                .await?;
        let extra = penalty::repeat_extra(&self.policy, domain);
        let entry = Entry {
            complaint_id: original.to_owned(),
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
