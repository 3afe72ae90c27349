//! The event door: learns the organisation and each complaint from other services' events, and
//! turns the causes of DOMAIN §5–6 into ladder steps.
//!
//! - `department.upserted`, `staff.upserted` → who manages what, and how to reach them.
//! - `complaint.received` / `classified` / `reclassified` → number and class; a group complaint
//!   or media risk → the top rung at once (DOMAIN §5: "a major group-complaint risk → escalate";
//!   "media risk → a superior at once").
//! - `complaint.routed` / `assigned` / `cause_recorded` → department, its manager, the people.
//! - `sla.overdue` → level 1, class A → both (DOMAIN §9).
//! - `complaint.escalation_requested`, `complaint.customer_rejected` (second rejection on) → the
//!   level asked for, else the top.
//! - `complaint.repeat` → the top, with the business department told (DOMAIN §6).
//! - `complaint.resolved` / `closed` → open escalations close; `reopened` → unresolved again.

use redress_domain::escalation::{self as rules, Trigger};
use redress_domain::sla::ClockKind;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redress_platform::consumer::{HandleError, Handler, Incoming, Runs, handle_in_runs};
use redress_platform::metrics::AfterCommit;
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;
use tracing::Instrument;

use crate::ladder::{Ladder, RaiseError, Step, trigger_for_reason};

/// Applies events.
pub struct EventDoor {
    pub ladder: Ladder,
    /// The accountability ledger, fed from the same events after the ladder noted their facts.
    pub ledger: crate::ledger::Ledger,
}

impl From<RaiseError> for HandleError {
    fn from(e: RaiseError) -> Self {
        HandleError::Transient(e.into())
    }
}

/// Facts about a complaint an event carries; empty / 0 means "not said".
#[derive(Default)]
struct Facts<'a> {
    number: &'a str,
    class: i32,
    department_id: &'a str,
    department_manager_id: &'a str,
    assignee_id: &'a str,
    responsible_person_id: &'a str,
    resolved: Option<bool>,
    closed: Option<bool>,
    customer_type: i32,
}

async fn note(conn: &mut PgConnection, complaint_id: &str, f: Facts<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO complaints (complaint_id, number, class, department_id,
            department_manager_id, assignee_id, responsible_person_id, resolved, closed,
            customer_type)
         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, false), COALESCE($9, false), $10)
         ON CONFLICT (complaint_id) DO UPDATE SET
            customer_type = CASE WHEN EXCLUDED.customer_type <> 0 THEN EXCLUDED.customer_type
                ELSE complaints.customer_type END,
            number = COALESCE(NULLIF(EXCLUDED.number, ''), complaints.number),
            class = CASE WHEN EXCLUDED.class <> 0 THEN EXCLUDED.class ELSE complaints.class END,
            department_id = COALESCE(NULLIF(EXCLUDED.department_id, ''), complaints.department_id),
            department_manager_id = COALESCE(NULLIF(EXCLUDED.department_manager_id, ''),
                complaints.department_manager_id),
            assignee_id = COALESCE(NULLIF(EXCLUDED.assignee_id, ''), complaints.assignee_id),
            responsible_person_id = COALESCE(NULLIF(EXCLUDED.responsible_person_id, ''),
                complaints.responsible_person_id),
            resolved = COALESCE($8, complaints.resolved),
            closed = COALESCE($9, complaints.closed)",
    )
    .bind(complaint_id)
    .bind(f.number)
    .bind(f.class)
    .bind(f.department_id)
    .bind(f.department_manager_id)
    .bind(f.assignee_id)
    .bind(f.responsible_person_id)
    .bind(f.resolved)
    .bind(f.closed)
    .bind(f.customer_type)
    .execute(conn)
    .await?;
    Ok(())
}

/// DOMAIN §5: an escalation about a complaint resolved meanwhile closes without a decision.
async fn close_open(conn: &mut PgConnection, complaint_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE escalations SET state = 'closed', resend_at = NULL, raise_at = NULL
         WHERE complaint_id = $1 AND state IN ('raised', 'acknowledged')",
    )
    .bind(complaint_id)
    .execute(conn)
    .await?;
    Ok(())
}

fn class_name(class: i32) -> &'static str {
    redress_domain::Class::from_wire(class).map_or("?", redress_domain::Class::as_str)
}

fn clock_words(clock: v1::SlaClock) -> &'static str {
    match clock {
        v1::SlaClock::Acceptance => "acceptance",
        v1::SlaClock::FirstFeedback => "first-feedback",
        v1::SlaClock::Completion => "completion",
        v1::SlaClock::IntermediateResult => "intermediate-result",
        v1::SlaClock::Revisit => "follow-up",
        v1::SlaClock::Confirmation => "customer-confirmation",
        v1::SlaClock::Unspecified => "a",
    }
}

/// DOMAIN §2/§9: the customer types reported to a superior at once, and as what.
fn superior_at_once(customer_type: i32) -> Option<(Trigger, &'static str)> {
    match v1::CustomerType::try_from(customer_type).ok()? {
        v1::CustomerType::Threatening => Some((
            Trigger::ThreateningCustomer,
            "the customer is threatening; report to a superior immediately",
        )),
        v1::CustomerType::VentingAnger => Some((
            Trigger::VentingAnger,
            "the customer is venting anger and was told it will be reported upward",
        )),
        _ => None,
    }
}

/// What one cause asks of the ladder.
struct Cause<'a> {
    complaint_id: &'a str,
    trigger: Trigger,
    /// Distinguishes causes of the same trigger on one complaint (the SLA clock); the step key
    /// is `<complaint>/<trigger>/<discriminator>/L<level>`.
    discriminator: String,
    class: i32,
    department_id: &'a str,
    clock: i32,
    requested_level: u32,
    summary: String,
    causation_id: &'a str,
}

impl EventDoor {
    async fn escalate(
        &self,
        conn: &mut PgConnection,
        after_commit: &AfterCommit,
        c: Cause<'_>,
    ) -> Result<(), HandleError> {
        let ladder = &self.ladder;
        let class = if c.class != 0 {
            c.class
        } else {
            sqlx::query_scalar("SELECT class FROM complaints WHERE complaint_id = $1")
                .bind(c.complaint_id)
                .fetch_optional(&mut *conn)
                .await?
                .unwrap_or(0)
        };
        let domain_class = redress_domain::Class::from_wire(class);
        let clock = ClockKind::from_wire(c.clock);
        let levels = rules::levels_for(
            &ladder.policy,
            c.trigger,
            domain_class,
            clock,
            c.requested_level,
        );
        let may_climb = rules::may_climb(c.trigger, clock);
        let highest = levels.iter().map(|(l, _)| *l).max().unwrap_or(1);
        for (level, trigger) in levels {
            ladder
                .raise(
                    conn,
                    after_commit,
                    Step {
                        complaint_id: c.complaint_id.to_owned(),
                        level,
                        trigger,
                        step_key: format!(
                            "{}/{}/{}/L{level}",
                            c.complaint_id,
                            c.trigger.code(),
                            c.discriminator
                        ),
                        clock: c.clock,
                        class,
                        department_id: c.department_id.to_owned(),
                        summary: c.summary.clone(),
                        // Only the highest step raised at once climbs further on its own.
                        unresolved_timer: level == highest,
                        may_climb,
                        causation_id: c.causation_id.to_owned(),
                    },
                )
                .await?;
        }
        Ok(())
    }
}

impl EventDoor {
    /// A threatening or venting-anger customer goes to a superior at once (DOMAIN §2, §9),
    /// once per complaint: whichever of receipt (unconfirmed) or routing comes first raises it.
    async fn superior_at_once(
        &self,
        conn: &mut PgConnection,
        after_commit: &AfterCommit,
        cid: &str,
        department_id: &str,
        causation_id: &str,
    ) -> Result<(), HandleError> {
        let known: Option<(i32, String, i32)> = sqlx::query_as(
            "SELECT customer_type, number, class FROM complaints WHERE complaint_id = $1",
        )
        .bind(cid)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((customer_type, number, class)) = known else {
            return Ok(());
        };
        let Some((trigger, words)) = superior_at_once(customer_type) else {
            return Ok(());
        };
        self.escalate(
            conn,
            after_commit,
            Cause {
                complaint_id: cid,
                trigger,
                discriminator: "customer".into(),
                class,
                department_id,
                clock: 0,
                requested_level: 0,
                summary: format!("Complaint {number} (class {}): {words}.", class_name(class)),
                causation_id,
            },
        )
        .await
    }
}

#[async_trait::async_trait]
impl Handler for EventDoor {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError> {
        let event = msg.event()?;
        if event.producer == "escalation" {
            return Ok(());
        }
        let Some(payload) = event.payload.as_ref() else {
            return Err(HandleError::Permanent("event without payload".into()));
        };
        let cid = event.complaint_id.as_str();
        let eid = event.event_id.as_str();
        match payload {
            Payload::DepartmentUpserted(d) => {
                sqlx::query(
                    "INSERT INTO departments (department_id, name, manager_id, service_centre)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (department_id) DO UPDATE SET
                        name = EXCLUDED.name, manager_id = EXCLUDED.manager_id,
                        service_centre = EXCLUDED.service_centre",
                )
                .bind(&d.department_id)
                .bind(&d.name)
                .bind(&d.manager_id)
                .bind(d.service_centre)
                .execute(&mut *conn)
                .await?;
            }
            Payload::StaffUpserted(s) => {
                sqlx::query(
                    "INSERT INTO staff (staff_id, name, department_id, role, phone, email,
                        on_leave, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now())
                     ON CONFLICT (staff_id) DO UPDATE SET name = EXCLUDED.name,
                        department_id = EXCLUDED.department_id, role = EXCLUDED.role,
                        phone = EXCLUDED.phone, email = EXCLUDED.email,
                        on_leave = EXCLUDED.on_leave, updated_at = now()",
                )
                .bind(&s.staff_id)
                .bind(&s.name)
                .bind(&s.department_id)
                .bind(s.role)
                .bind(&s.phone)
                .bind(&s.email)
                .bind(s.on_leave)
                .execute(&mut *conn)
                .await?;
            }
            _ if cid.is_empty() => {}
            Payload::ComplaintReceived(r) => {
                let details = r.details.clone().unwrap_or_default();
                note(
                    conn,
                    cid,
                    Facts {
                        number: &r.complaint_number,
                        class: r.class,
                        customer_type: details.customer_type,
                        ..Facts::default()
                    },
                )
                .await?;
                // Not yet confirmed, so not routed soon: the complaint centre's manager is the
                // superior now (DOMAIN §9). A confirmed one waits for its routing, below.
                if !r.confirmed {
                    self.superior_at_once(conn, msg.after_commit, cid, "", eid)
                        .await?;
                }
                let risk = if details.group_complaint {
                    Some((Trigger::GroupRisk, "risk of a major group complaint"))
                } else if details.media_risk {
                    Some((Trigger::MediaRisk, "media or consumer-association risk"))
                } else {
                    None
                };
                if let Some((trigger, words)) = risk {
                    self.escalate(
                        conn,
                        msg.after_commit,
                        Cause {
                            complaint_id: cid,
                            trigger,
                            discriminator: "received".into(),
                            class: r.class,
                            department_id: "",
                            clock: 0,
                            requested_level: 0,
                            summary: format!(
                                "Complaint {} (class {}): {words}; to be reported at once.",
                                r.complaint_number,
                                class_name(r.class)
                            ),
                            causation_id: eid,
                        },
                    )
                    .await?;
                }
            }
            Payload::ComplaintClassified(c) => {
                let f = Facts {
                    class: c.class,
                    ..Facts::default()
                };
                note(conn, cid, f).await?;
            }
            Payload::ComplaintReclassified(c) => {
                let f = Facts {
                    class: c.to_class,
                    ..Facts::default()
                };
                note(conn, cid, f).await?;
            }
            Payload::ValidityDecided(v) => {
                let f = Facts {
                    class: v.class,
                    ..Facts::default()
                };
                note(conn, cid, f).await?;
            }
            Payload::ComplaintRouted(r) => {
                let f = Facts {
                    class: r.class,
                    department_id: &r.department_id,
                    department_manager_id: &r.department_manager_id,
                    ..Facts::default()
                };
                note(conn, cid, f).await?;
                // DOMAIN §9 "Superior at once": the routed department's manager.
                self.superior_at_once(conn, msg.after_commit, cid, &r.department_id, eid)
                    .await?;
            }
            Payload::ComplaintAssigned(a) => {
                let f = Facts {
                    department_id: &a.department_id,
                    department_manager_id: &a.department_manager_id,
                    assignee_id: &a.assignee_id,
                    ..Facts::default()
                };
                note(conn, cid, f).await?;
            }
            Payload::CauseRecorded(c) => {
                let f = Facts {
                    responsible_person_id: &c.responsible_person_id,
                    ..Facts::default()
                };
                note(conn, cid, f).await?;
            }
            Payload::Resolved(r) => {
                let f = Facts {
                    responsible_person_id: &r.responsible_person_id,
                    resolved: Some(true),
                    ..Facts::default()
                };
                note(conn, cid, f).await?;
                close_open(conn, cid).await?;
            }
            Payload::Closed(_) => {
                let f = Facts {
                    resolved: Some(true),
                    closed: Some(true),
                    ..Facts::default()
                };
                note(conn, cid, f).await?;
                close_open(conn, cid).await?;
            }
            Payload::Reopened(_) => {
                let f = Facts {
                    resolved: Some(false),
                    closed: Some(false),
                    ..Facts::default()
                };
                note(conn, cid, f).await?;
            }
            Payload::SlaOverdue(o) => {
                note(
                    conn,
                    cid,
                    Facts {
                        number: &o.complaint_number,
                        class: o.class,
                        department_id: &o.department_id,
                        ..Facts::default()
                    },
                )
                .await?;
                let clock = o.clock();
                let due = crate::envelope::from_ts(o.due_at.as_ref())
                    .map(|d| d.to_rfc3339())
                    .unwrap_or_default();
                self.escalate(
                    conn,
                    msg.after_commit,
                    Cause {
                        complaint_id: cid,
                        trigger: Trigger::SlaOverdue,
                        discriminator: clock.as_str_name().to_ascii_lowercase(),
                        class: o.class,
                        department_id: &o.department_id,
                        clock: o.clock,
                        requested_level: 0,
                        summary: format!(
                            "Complaint {} (class {}) missed its {} limit due {due}; \
                             responsible: {}.",
                            o.complaint_number,
                            class_name(o.class),
                            clock_words(clock),
                            o.responsible_person_id
                        ),
                        causation_id: eid,
                    },
                )
                .await?;
            }
            Payload::EscalationRequested(r) => {
                let trigger = trigger_for_reason(r.reason());
                self.escalate(
                    conn,
                    msg.after_commit,
                    Cause {
                        complaint_id: cid,
                        trigger,
                        discriminator: "requested".into(),
                        class: r.class,
                        department_id: &r.department_id,
                        clock: 0,
                        requested_level: r.target_level,
                        summary: format!("Escalation requested ({}): {}", trigger.code(), r.note),
                        causation_id: eid,
                    },
                )
                .await?;
            }
            Payload::CustomerRejected(r) if r.rejection_count >= 2 => {
                self.escalate(
                    conn,
                    msg.after_commit,
                    Cause {
                        complaint_id: cid,
                        trigger: Trigger::RejectedAgain,
                        discriminator: "requested".into(),
                        class: 0,
                        department_id: "",
                        clock: 0,
                        requested_level: 0,
                        summary: format!(
                            "The customer rejected the solution again ({} rejections): {}",
                            r.rejection_count, r.reason
                        ),
                        causation_id: eid,
                    },
                )
                .await?;
            }
            Payload::RepeatComplaint(r) => {
                note(
                    conn,
                    cid,
                    Facts {
                        class: r.original_class,
                        department_id: &r.department_id,
                        ..Facts::default()
                    },
                )
                .await?;
                self.escalate(
                    conn,
                    msg.after_commit,
                    Cause {
                        complaint_id: cid,
                        trigger: Trigger::RepeatComplaint,
                        discriminator: r.original_complaint_id.clone(),
                        class: r.original_class,
                        department_id: &r.department_id,
                        clock: 0,
                        requested_level: 0,
                        summary: format!(
                            "Repeat complaint: the customer complained again about {}: {}. \
                             Corrective measures until the customer is satisfied.",
                            r.original_complaint_id, r.reason
                        ),
                        causation_id: eid,
                    },
                )
                .await?;
            }
            _ => {}
        }
        self.ledger
            .apply(conn, event, payload, self.ladder.now())
            .await?;
        Ok(())
    }

    /// Runs of plain arrival facts (received — confirmed, without risk —, classified,
    /// confirmed, routed, assigned: most of the traffic) are applied a run at a time by
    /// [`EventDoor::apply_run`]; any other message on its own, in its place.
    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        msgs: &[&Incoming<'_>],
    ) -> Result<(), HandleError> {
        handle_in_runs(self, conn, msgs).await
    }
}

#[async_trait::async_trait]
impl Runs for EventDoor {
    fn in_run(&self, event: &v1::Event) -> bool {
        plain_arrival(event)
    }

    /// Applies a run of plain arrivals as one, with the outcome of one at a time: each
    /// complaint's facts folded and recorded in one statement, its date in another, and a
    /// threatening or venting-anger customer's superior called at routing (DOMAIN §9), in the
    /// span of the routing's message.
    async fn apply_run(
        &self,
        conn: &mut PgConnection,
        run: Vec<(&Incoming<'_>, &v1::Event)>,
    ) -> Result<(), HandleError> {
        if run.is_empty() {
            return Ok(());
        }
        let now = self.ladder.now();
        let mut folded: Vec<Folded> = Vec::new();
        let mut slot: HashMap<String, usize> = HashMap::new();
        for (_, event) in &run {
            let cid = &event.complaint_id;
            let k = *slot.entry(cid.clone()).or_insert_with(|| {
                folded.push(Folded {
                    complaint_id: cid.clone(),
                    ..Default::default()
                });
                folded.len() - 1
            });
            let at = crate::envelope::from_ts(event.occurred_at.as_ref()).unwrap_or(now);
            let f = &mut folded[k];
            f.first_at.get_or_insert(at);
            match &event.payload {
                Some(Payload::ComplaintReceived(r)) => {
                    f.received_at = Some(at);
                    f.add(Facts {
                        number: &r.complaint_number,
                        class: r.class,
                        customer_type: r.details.as_ref().map_or(0, |d| d.customer_type),
                        ..Facts::default()
                    });
                }
                Some(Payload::ComplaintClassified(c)) => f.add(Facts {
                    class: c.class,
                    ..Facts::default()
                }),
                Some(Payload::ComplaintRouted(r)) => f.add(Facts {
                    class: r.class,
                    department_id: &r.department_id,
                    department_manager_id: &r.department_manager_id,
                    ..Facts::default()
                }),
                Some(Payload::ComplaintAssigned(a)) => f.add(Facts {
                    department_id: &a.department_id,
                    department_manager_id: &a.department_manager_id,
                    assignee_id: &a.assignee_id,
                    ..Facts::default()
                }),
                _ => {}
            }
        }
        // Rows locked in id order, as by every writer of several, so replicas never deadlock.
        folded.sort_by(|x, y| x.complaint_id.cmp(&y.complaint_id));
        let noted: Vec<&Folded> = folded.iter().filter(|f| f.noted).collect();
        macro_rules! column {
            ($rows:expr, $f:expr) => {
                $rows.iter().map($f).collect::<Vec<_>>()
            };
        }
        if !noted.is_empty() {
            sqlx::query(
                "INSERT INTO complaints AS c (complaint_id, number, class, department_id,
                    department_manager_id, assignee_id, customer_type)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::text[],
                    $6::text[], $7::int[])
                 ON CONFLICT (complaint_id) DO UPDATE SET
                    customer_type = CASE WHEN EXCLUDED.customer_type <> 0
                        THEN EXCLUDED.customer_type ELSE c.customer_type END,
                    number = COALESCE(NULLIF(EXCLUDED.number, ''), c.number),
                    class = CASE WHEN EXCLUDED.class <> 0 THEN EXCLUDED.class ELSE c.class END,
                    department_id = COALESCE(NULLIF(EXCLUDED.department_id, ''), c.department_id),
                    department_manager_id = COALESCE(NULLIF(EXCLUDED.department_manager_id, ''),
                        c.department_manager_id),
                    assignee_id = COALESCE(NULLIF(EXCLUDED.assignee_id, ''), c.assignee_id)",
            )
            .bind(column!(noted, |f| f.complaint_id.clone()))
            .bind(column!(noted, |f| f.number.clone()))
            .bind(column!(noted, |f| f.class))
            .bind(column!(noted, |f| f.department_id.clone()))
            .bind(column!(noted, |f| f.department_manager_id.clone()))
            .bind(column!(noted, |f| f.assignee_id.clone()))
            .bind(column!(noted, |f| f.customer_type))
            .execute(&mut *conn)
            .await?;
        }
        // The ledger's date of each complaint: its receipt, else the first event seen.
        sqlx::query(
            "UPDATE complaints c SET received_at = COALESCE(r.received_at, c.received_at, r.first_at)
             FROM UNNEST($1::text[], $2::timestamptz[], $3::timestamptz[])
                AS r(complaint_id, received_at, first_at)
             WHERE c.complaint_id = r.complaint_id",
        )
        .bind(column!(folded, |f| f.complaint_id.clone()))
        .bind(column!(folded, |f| f.received_at))
        .bind(column!(folded, |f| f.first_at))
        .execute(&mut *conn)
        .await?;
        // DOMAIN §9 "Superior at once": at routing, for the customer types that call for it.
        let routed: Vec<String> = run
            .iter()
            .filter(|(_, e)| matches!(e.payload, Some(Payload::ComplaintRouted(_))))
            .map(|(_, e)| e.complaint_id.clone())
            .collect();
        if routed.is_empty() {
            return Ok(());
        }
        let types: HashMap<String, i32> = sqlx::query_as(
            "SELECT complaint_id, customer_type FROM complaints WHERE complaint_id = ANY($1)",
        )
        .bind(&routed)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        for (msg, event) in &run {
            if let Some(Payload::ComplaintRouted(r)) = &event.payload
                && types
                    .get(&event.complaint_id)
                    .is_some_and(|t| superior_at_once(*t).is_some())
            {
                self.superior_at_once(
                    conn,
                    msg.after_commit,
                    &event.complaint_id,
                    &r.department_id,
                    &event.event_id,
                )
                .instrument(msg.span())
                .await?;
            }
        }
        Ok(())
    }
}

/// An event that only adds facts (and, when routed, may call a superior at once): no risk to
/// escalate, no ledger entry but the complaint's date.
fn plain_arrival(event: &v1::Event) -> bool {
    if event.complaint_id.is_empty() || event.producer == "escalation" {
        return false;
    }
    match &event.payload {
        Some(Payload::ComplaintReceived(r)) => {
            let d = r.details.as_ref();
            r.confirmed && !d.is_some_and(|d| d.group_complaint || d.media_risk)
        }
        Some(
            Payload::ComplaintClassified(_)
            | Payload::ComplaintConfirmed(_)
            | Payload::ComplaintRouted(_)
            | Payload::ComplaintAssigned(_),
        ) => true,
        _ => false,
    }
}

/// The facts of several events about one complaint folded in order, as [`note`] records them
/// one after the other, with the complaint's date as the ledger keeps it.
#[derive(Default)]
struct Folded {
    complaint_id: String,
    noted: bool,
    number: String,
    class: i32,
    department_id: String,
    department_manager_id: String,
    assignee_id: String,
    customer_type: i32,
    /// The last receipt's time (a receipt dates the complaint).
    received_at: Option<DateTime<Utc>>,
    /// The first event's time (dates it while no receipt has).
    first_at: Option<DateTime<Utc>>,
}

impl Folded {
    fn add(&mut self, f: Facts<'_>) {
        let later = |v: &mut String, new: &str| {
            if !new.is_empty() {
                *v = new.to_owned();
            }
        };
        self.noted = true;
        later(&mut self.number, f.number);
        later(&mut self.department_id, f.department_id);
        later(&mut self.department_manager_id, f.department_manager_id);
        later(&mut self.assignee_id, f.assignee_id);
        if f.class != 0 {
            self.class = f.class;
        }
        if f.customer_type != 0 {
            self.customer_type = f.customer_type;
        }
    }
}

impl EventDoor {}
