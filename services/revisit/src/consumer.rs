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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_domain::{Clock, Policy};
use redress_platform::consumer::{HandleError, Handler, Incoming, Runs, handle_in_runs};
use redress_platform::outbox::Outbox;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;
use tracing::Instrument;

use crate::envelope::instant;
use crate::error::Error;
use crate::planner;
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
        let fresh =
            sqlx::query("INSERT INTO applied_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(&event.event_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                == 1;
        if !fresh {
            return Ok(()); // The same event, delivered again under another message id.
        }
        let at = instant(event.occurred_at.as_ref()).unwrap_or_else(|| self.clock.now());
        let id = &event.complaint_id;
        planner::ensure_complaint(conn, id).await?;
        if apply(conn, &self.policy, id, payload, at).await? {
            planner::plan_complaint(
                conn,
                &self.outbox,
                &self.policy,
                id,
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
    fn in_run(&self, event: &v1::Event) -> bool {
        arrival(event)
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
        let mut fresh: HashSet<String> = sqlx::query_scalar(
            "INSERT INTO applied_events (event_id) SELECT * FROM UNNEST($1::text[])
             ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
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
                        f.first_class = Class::from_wire(r.class).map(|c| c.as_str());
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
                    later(&mut f.department_id, &r.department_id);
                    later(&mut f.department_manager_id, &r.department_manager_id);
                }
                Some(Payload::ComplaintAssigned(a)) => {
                    later(&mut f.department_id, &a.department_id);
                    later(&mut f.department_manager_id, &a.department_manager_id);
                    later(&mut f.assignee_id, &a.assignee_id);
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
        planner::ensure_complaints(conn, &all).await?;
        macro_rules! column {
            ($rows:expr, $f:expr) => {
                $rows.iter().map($f).collect::<Vec<_>>()
            };
        }
        let received: Vec<&Folded> = folded.iter().filter(|f| f.received).collect();
        if !received.is_empty() {
            sqlx::query(
                "UPDATE complaints c SET number = r.number, class = COALESCE(c.class, r.class),
                    customer_name = r.customer_name, customer_phone = r.customer_phone,
                    summary = r.summary, completion_due = COALESCE(c.completion_due, r.due),
                    updated_at = now()
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::timestamptz[])
                    AS r(complaint_id, number, class, customer_name, customer_phone, summary, due)
                 WHERE c.complaint_id = r.complaint_id",
            )
            .bind(column!(received, |f| f.complaint_id.clone()))
            .bind(column!(received, |f| f.number.clone()))
            .bind(column!(received, |f| f.first_class))
            .bind(column!(received, |f| f.customer_name.clone()))
            .bind(column!(received, |f| f.customer_phone.clone()))
            .bind(column!(received, |f| f.summary.clone()))
            .bind(column!(received, |f| f.first_due))
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query(
            "UPDATE complaints c SET
                department_id = CASE WHEN d.department_id = '' THEN c.department_id
                                     ELSE d.department_id END,
                department_manager_id = CASE WHEN d.manager_id = '' THEN c.department_manager_id
                                             ELSE d.manager_id END,
                assignee_id = CASE WHEN d.assignee_id = '' THEN c.assignee_id
                                   ELSE d.assignee_id END
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
                AS d(complaint_id, department_id, manager_id, assignee_id)
             WHERE c.complaint_id = d.complaint_id
               AND (d.department_id <> '' OR d.manager_id <> '' OR d.assignee_id <> '')",
        )
        .bind(column!(folded, |f| f.complaint_id.clone()))
        .bind(column!(folded, |f| f.department_id.clone()))
        .bind(column!(folded, |f| f.department_manager_id.clone()))
        .bind(column!(folded, |f| f.assignee_id.clone()))
        .execute(&mut *conn)
        .await?;
        // Plans from the facts that result: most arrivals plan nothing yet, and only get the
        // time of their next check; a complaint with something to plan goes through the
        // planner, in the span of its last event.
        let now = self.clock.now();
        let facts = planner::facts_many(conn, &all).await?;
        let mut checks = Vec::with_capacity(facts.len());
        for (id, f) in &facts {
            if redress_domain::revisit::plan(&self.policy, f, now).is_empty() {
                checks.push((id.clone(), planner::next_check(&self.policy, f, now)));
                continue;
            }
            let Some(&i) = last.get(id) else { continue };
            let (msg, event) = &run[i];
            planner::plan_complaint(conn, &self.outbox, &self.policy, id, now, &event.event_id)
                .instrument(msg.span())
                .await?;
        }
        planner::set_next_checks(conn, &checks).await?;
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
    first_class: Option<&'static str>,
    first_due: Option<DateTime<Utc>>,
    customer_name: String,
    customer_phone: String,
    summary: String,
    /// From routings and assignments: a later non-empty value replaces an earlier one.
    department_id: String,
    department_manager_id: String,
    assignee_id: String,
    /// The last event's index in the run (its message's span and id cause the plans).
    last: usize,
}

impl Facts {}

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
    id: &str,
    payload: &Payload,
    at: DateTime<Utc>,
) -> Result<bool, Error> {
    match payload {
        Payload::ComplaintReceived(r) => {
            let details = r.details.clone().unwrap_or_default();
            let customer = details.customer.clone().unwrap_or_default();
            let completion_due = r
                .promises
                .as_ref()
                .and_then(|p| instant(p.completion_due.as_ref()));
            let summary = summary(&details);
            sqlx::query(
                "UPDATE complaints SET number = $2, class = COALESCE(class, $3), customer_name = $4,
                    customer_phone = $5, summary = $6,
                    completion_due = COALESCE(completion_due, $7), updated_at = now()
                 WHERE complaint_id = $1",
            )
            .bind(id)
            .bind(&r.complaint_number)
            .bind(Class::from_wire(r.class).map(|c| c.as_str()))
            .bind(&customer.name)
            .bind(&customer.phone)
            .bind(summary)
            .bind(completion_due)
            .execute(conn)
            .await?;
        }
        Payload::ComplaintReclassified(r) => {
            let due = r
                .promises
                .as_ref()
                .and_then(|p| instant(p.completion_due.as_ref()));
            set_class(conn, id, r.to_class, due).await?;
        }
        Payload::ValidityDecided(v) => set_class(conn, id, v.class, None).await?,
        Payload::ComplaintRouted(r) => {
            set_department(conn, id, &r.department_id, &r.department_manager_id, "").await?
        }
        Payload::ComplaintAssigned(a) => {
            set_department(
                conn,
                id,
                &a.department_id,
                &a.department_manager_id,
                &a.assignee_id,
            )
            .await?
        }
        Payload::AcceptedByDepartment(a) => {
            let accepted_at = instant(a.accepted_at.as_ref()).unwrap_or(at);
            sqlx::query(
                "UPDATE complaints SET accepted_at = COALESCE(accepted_at, $2),
                    department_id = CASE WHEN $3 = '' THEN department_id ELSE $3 END
                 WHERE complaint_id = $1",
            )
            .bind(id)
            .bind(accepted_at)
            .bind(&a.department_id)
            .execute(conn)
            .await?;
        }
        Payload::CauseRecorded(c) => {
            sqlx::query("UPDATE complaints SET responsible_person_id = $2 WHERE complaint_id = $1")
                .bind(id)
                .bind(&c.responsible_person_id)
                .execute(conn)
                .await?;
            return Ok(false);
        }
        Payload::Resolved(r) => {
            let resolved_at = instant(r.handed_in_at.as_ref()).unwrap_or(at);
            sqlx::query(
                "UPDATE complaints SET resolutions = resolutions + 1, resolved_at = $2, result = $3,
                    department_id = CASE WHEN $4 = '' THEN department_id ELSE $4 END,
                    responsible_person_id =
                        CASE WHEN $5 = '' THEN responsible_person_id ELSE $5 END
                 WHERE complaint_id = $1",
            )
            .bind(id)
            .bind(resolved_at)
            .bind(&r.result)
            .bind(&r.department_id)
            .bind(&r.responsible_person_id)
            .execute(&mut *conn)
            .await?;
            // The customer no longer waits: the after-resolution revisit takes over.
            planner::cancel_waiting(conn, id, None).await?;
        }
        Payload::Reopened(_) => reopen(conn, policy, id, at).await?,
        Payload::Closed(_) => {
            sqlx::query("UPDATE complaints SET closed = true WHERE complaint_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            planner::cancel_waiting(conn, id, None).await?;
        }
        Payload::SpecialReasonRecorded(s) => {
            let extended = instant(s.extended_due_at.as_ref());
            if s.clock() != v1::SlaClock::Completion || extended.is_none() {
                return Ok(false);
            }
            // An approved extension moves the promised time the customer waits for.
            sqlx::query("UPDATE complaints SET completion_due = $2 WHERE complaint_id = $1")
                .bind(id)
                .bind(extended)
                .execute(conn)
                .await?;
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
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let class: Option<String> =
        sqlx::query_scalar("SELECT class FROM complaints WHERE complaint_id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    let due = class
        .and_then(|c| redress_domain::Class::parse(&c).ok())
        .map(|c| at + policy.completion_limit(c));
    sqlx::query(
        "UPDATE complaints SET resolved_at = NULL, closed = false,
            completion_due = COALESCE($2, completion_due)
         WHERE complaint_id = $1",
    )
    .bind(id)
    .bind(due)
    .execute(conn)
    .await?;
    Ok(())
}

async fn set_class(
    conn: &mut PgConnection,
    id: &str,
    class: i32,
    completion_due: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE complaints SET class = COALESCE($2, class),
            completion_due = COALESCE($3, completion_due)
         WHERE complaint_id = $1",
    )
    .bind(id)
    .bind(Class::from_wire(class).map(|c| c.as_str()))
    .bind(completion_due)
    .execute(conn)
    .await?;
    Ok(())
}

async fn set_department(
    conn: &mut PgConnection,
    id: &str,
    department: &str,
    manager: &str,
    assignee: &str,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE complaints SET
            department_id = CASE WHEN $2 = '' THEN department_id ELSE $2 END,
            department_manager_id = CASE WHEN $3 = '' THEN department_manager_id ELSE $3 END,
            assignee_id = CASE WHEN $4 = '' THEN assignee_id ELSE $4 END
         WHERE complaint_id = $1",
    )
    .bind(id)
    .bind(department)
    .bind(manager)
    .bind(assignee)
    .execute(conn)
    .await?;
    Ok(())
}
