//! The event door: learns the organisation and each complaint from other services' events, and
//! turns the causes of DOMAIN §5–6 into ladder steps.
//!
//! - `department.upserted`, `staff.upserted` → who manages what, and how to reach them.
//! - `complaint.received` / `reclassified` → number and class; a group complaint
//!   or media risk → the top rung at once (DOMAIN §5: "a major group-complaint risk → escalate";
//!   "media risk → a superior at once").
//! - `complaint.routed` / `assigned` / `cause_recorded` → department, its manager, the people.
//! - `sla.overdue` → level 1, class A → both (DOMAIN §9).
//! - `complaint.escalation_requested`, `complaint.customer_rejected` (second rejection on) → the
//!   level asked for, else the top.
//! - `complaint.repeat` → the top, with the business department told (DOMAIN §6).
//! - `complaint.resolved` / `closed` → open escalations close; `reopened` → unresolved again.

use std::collections::HashMap;

use redress_domain::ComplaintId;
use redress_domain::escalation::{self as rules, Trigger};
use redress_domain::sla::ClockKind;

use redress_platform::consumer::{HandleError, Handler, Incoming, Runs, handle_in_runs};
use redress_platform::metrics::AfterCommit;
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;
use tracing::Instrument;

use crate::ladder::{Ladder, RaiseError, Step, trigger_for_reason};
use crate::store::complaints::{self, Facts, Folded};
use crate::store::escalations;

/// The kinds the door does not subscribe to (it takes every other one). On receipt intake's
/// `complaint.classified` restates the class `complaint.received` carries (events.proto), and
/// a confirmation changes nothing here: taking them would cost two deliveries, acks and dedup
/// rows per complaint for nothing.
pub const NOT_TAKEN: &[&str] = &["complaint.classified", "complaint.confirmed"];

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

/// The complaint an event is about, parsed once here so everything after works on a typed id;
/// `None` for organisation events. A malformed id cannot name a complaint: retrying would not
/// change that.
fn complaint_of(event: &v1::Event) -> Result<Option<ComplaintId>, HandleError> {
    if event.complaint_id.is_empty() {
        return Ok(None);
    }
    ComplaintId::parse(&event.complaint_id)
        .map(Some)
        .map_err(|e| HandleError::Permanent(format!("complaint_id: {e}")))
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
    complaint_id: &'a ComplaintId,
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
            complaints::known(conn, c.complaint_id)
                .await?
                .map_or(0, |k| k.class)
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
                        complaint_id: c.complaint_id.clone(),
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
        cid: &ComplaintId,
        department_id: &str,
        causation_id: &str,
    ) -> Result<(), HandleError> {
        let Some(known) = complaints::known(conn, cid).await? else {
            return Ok(());
        };
        let Some((trigger, words)) = superior_at_once(known.customer_type) else {
            return Ok(());
        };
        let (number, class) = (known.number, known.class);
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
        let complaint = complaint_of(event)?;
        let eid = event.event_id.as_str();
        match payload {
            Payload::DepartmentUpserted(d) => complaints::upsert_department(conn, d).await?,
            Payload::StaffUpserted(s) => complaints::upsert_staff(conn, s).await?,
            _ => {}
        }
        let Some(cid) = complaint.as_ref() else {
            return Ok(());
        };
        match payload {
            Payload::ComplaintReceived(r) => {
                let details = r.details.clone().unwrap_or_default();
                complaints::note(
                    conn,
                    cid,
                    &Facts {
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
            Payload::ComplaintReclassified(c) => {
                let f = Facts {
                    class: c.to_class,
                    ..Facts::default()
                };
                complaints::note(conn, cid, &f).await?;
            }
            Payload::ValidityDecided(v) => {
                let f = Facts {
                    class: v.class,
                    ..Facts::default()
                };
                complaints::note(conn, cid, &f).await?;
            }
            Payload::ComplaintRouted(r) => {
                let f = Facts {
                    class: r.class,
                    department_id: &r.department_id,
                    department_manager_id: &r.department_manager_id,
                    ..Facts::default()
                };
                complaints::note(conn, cid, &f).await?;
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
                complaints::note(conn, cid, &f).await?;
            }
            Payload::CauseRecorded(c) => {
                let f = Facts {
                    responsible_person_id: &c.responsible_person_id,
                    ..Facts::default()
                };
                complaints::note(conn, cid, &f).await?;
            }
            Payload::Resolved(r) => {
                let f = Facts {
                    responsible_person_id: &r.responsible_person_id,
                    resolved: Some(true),
                    ..Facts::default()
                };
                complaints::note(conn, cid, &f).await?;
                escalations::close_open(conn, cid, None).await?;
            }
            Payload::Closed(_) => {
                let f = Facts {
                    resolved: Some(true),
                    closed: Some(true),
                    ..Facts::default()
                };
                complaints::note(conn, cid, &f).await?;
                escalations::close_open(conn, cid, None).await?;
            }
            Payload::Reopened(_) => {
                let f = Facts {
                    resolved: Some(false),
                    closed: Some(false),
                    ..Facts::default()
                };
                complaints::note(conn, cid, &f).await?;
            }
            Payload::SlaOverdue(o) => {
                complaints::note(
                    conn,
                    cid,
                    &Facts {
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
                complaints::note(
                    conn,
                    cid,
                    &Facts {
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
            .apply(conn, cid, event, payload, self.ladder.now())
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
        let mut slot: HashMap<ComplaintId, usize> = HashMap::new();
        // Parsed once per event; `in_run` let only parseable ids into the run.
        let mut ids = Vec::with_capacity(run.len());
        for (_, event) in &run {
            let Some(cid) = complaint_of(event)? else {
                return Err(HandleError::Permanent(
                    "a run's event names no complaint".into(),
                ));
            };
            let k = *slot.entry(cid.clone()).or_insert_with(|| {
                folded.push(Folded::new(cid.clone()));
                folded.len() - 1
            });
            ids.push(cid);
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
        folded.sort_by(|x, y| x.complaint_id.cmp(&y.complaint_id));
        complaints::note_run(conn, &folded).await?;
        // DOMAIN §9 "Superior at once": at routing, for the customer types that call for it.
        let routed: Vec<&ComplaintId> = run
            .iter()
            .zip(&ids)
            .filter(|((_, e), _)| matches!(e.payload, Some(Payload::ComplaintRouted(_))))
            .map(|(_, id)| id)
            .collect();
        if routed.is_empty() {
            return Ok(());
        }
        let types = complaints::customer_types(conn, &routed).await?;
        for ((msg, event), cid) in run.iter().zip(&ids) {
            if let Some(Payload::ComplaintRouted(r)) = &event.payload
                && types
                    .get(cid)
                    .is_some_and(|t| superior_at_once(*t).is_some())
            {
                self.superior_at_once(
                    conn,
                    msg.after_commit,
                    cid,
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
/// escalate, no ledger entry but the complaint's date. One whose complaint id does not parse is
/// left to [`Handler::handle`], to fail on its own rather than with its run.
fn plain_arrival(event: &v1::Event) -> bool {
    if ComplaintId::parse(&event.complaint_id).is_err() || event.producer == "escalation" {
        return false;
    }
    match &event.payload {
        Some(Payload::ComplaintReceived(r)) => {
            let d = r.details.as_ref();
            r.confirmed && !d.is_some_and(|d| d.group_complaint || d.media_risk)
        }
        Some(Payload::ComplaintRouted(_) | Payload::ComplaintAssigned(_)) => true,
        _ => false,
    }
}

/// Folds events' facts in order, as [`complaints::note`] records them one after the other.
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
