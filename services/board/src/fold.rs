//! What an event changes on the board: a pure mapping from events to [`Change`]s, kept apart
//! from the SQL that applies them so it can be read and tested without a database.

use chrono::{DateTime, Utc};
use redress_proto::v1::{self, event::Payload};

/// A complaint's stage as the board groups it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Received,
    Routed,
    Assigned,
    Accepted,
    Reopened,
    Resolved,
    Closed,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Received => "received",
            Stage::Routed => "routed",
            Stage::Assigned => "assigned",
            Stage::Accepted => "accepted",
            Stage::Reopened => "reopened",
            Stage::Resolved => "resolved",
            Stage::Closed => "closed",
        }
    }

    /// Order along the process: events from different services may arrive out of order, and
    /// a later stage is never overwritten by an earlier one. `5` and above is no longer open.
    pub fn rank(self) -> i32 {
        match self {
            Stage::Received => 0,
            Stage::Routed => 1,
            Stage::Assigned => 2,
            Stage::Accepted | Stage::Reopened => 3,
            Stage::Resolved => 5,
            Stage::Closed => 6,
        }
    }
}

/// What a complaint is about, for the reports: channel, category, customer type, business.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub channel: String,
    pub category: String,
    pub customer_type: String,
    pub business: String,
}

/// A wire enum's name without its prefix, lower case (`CHANNEL_HOTLINE` → `hotline`).
fn short(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_ascii_lowercase()
}

/// An escalation as the board lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Raised {
    pub escalation_id: String,
    pub complaint_id: String,
    pub level: i32,
    pub recipient_id: String,
    pub recipient_name: String,
    pub department_id: String,
    pub summary: String,
    pub raised_at: DateTime<Utc>,
    pub acknowledge_by: Option<DateTime<Utc>>,
}

/// One change to the projection.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Nothing,
    Received {
        complaint_id: String,
        number: String,
        class: String,
        at: DateTime<Utc>,
        completion_due: Option<DateTime<Utc>>,
        /// What the reports break complaints down by.
        facts: Facts,
    },
    Class {
        complaint_id: String,
        class: String,
        completion_due: Option<DateTime<Utc>>,
    },
    Stage {
        complaint_id: String,
        stage: Stage,
        department_id: Option<String>,
        /// Id and name, when the event names the handler.
        handler: Option<(String, String)>,
    },
    /// Resolved or closed: when, and (closed) whether the customer was satisfied.
    Finished {
        complaint_id: String,
        stage: Stage,
        department_id: Option<String>,
        at: DateTime<Utc>,
        satisfied: Option<bool>,
    },
    Warning {
        complaint_id: String,
        clock: String,
        due_at: Option<DateTime<Utc>>,
    },
    Overdue {
        complaint_id: String,
        clock: String,
        due_at: Option<DateTime<Utc>>,
    },
    EscalationRaised(Raised),
    EscalationAnswered {
        escalation_id: String,
        at: DateTime<Utc>,
    },
    RevisitScheduled {
        revisit_id: String,
        complaint_id: String,
        department_id: String,
        due_at: DateTime<Utc>,
    },
    RevisitCompleted {
        revisit_id: String,
        at: DateTime<Utc>,
        reached: bool,
        satisfied: bool,
    },
    Department {
        id: String,
        name: String,
    },
    /// Who or what was found responsible (`company_network`, `customer_misuse`…).
    Cause {
        complaint_id: String,
        cause: String,
    },
    /// A department's business volume for a month (`YYYY-MM`).
    Volume {
        department_id: String,
        month: String,
        volume: i64,
    },
}

/// The class as the board shows it: `A`…`D`, or empty when the wire does not say.
pub fn class_letter(class: i32) -> String {
    match v1::Class::try_from(class) {
        Ok(v1::Class::A) => "A",
        Ok(v1::Class::B) => "B",
        Ok(v1::Class::C) => "C",
        Ok(v1::Class::D) => "D",
        _ => "",
    }
    .to_owned()
}

/// A clock as the board names it (`completion`, `acceptance`…).
pub fn clock_name(clock: i32) -> String {
    v1::SlaClock::try_from(clock)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("SLA_CLOCK_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn instant(t: Option<&redress_proto::prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
}

/// What `event` changes. Events the board does not show change nothing.
pub fn fold(event: &v1::Event) -> Change {
    let Some(payload) = &event.payload else {
        return Change::Nothing;
    };
    let id = event.complaint_id.clone();
    let at = instant(event.occurred_at.as_ref()).unwrap_or_else(Utc::now);
    let stage = |stage: Stage, department: &str, handler: Option<(String, String)>| Change::Stage {
        complaint_id: id.clone(),
        stage,
        department_id: (!department.is_empty()).then(|| department.to_owned()),
        handler,
    };
    let completion =
        |p: &Option<v1::Promises>| p.as_ref().and_then(|p| instant(p.completion_due.as_ref()));
    match payload {
        Payload::ComplaintReceived(r) => {
            let d = r.details.clone().unwrap_or_default();
            Change::Received {
                complaint_id: id,
                number: r.complaint_number.clone(),
                class: class_letter(r.class),
                at,
                completion_due: completion(&r.promises),
                facts: Facts {
                    channel: v1::Channel::try_from(d.channel)
                        .map(|c| short(c.as_str_name(), "CHANNEL_"))
                        .unwrap_or_default(),
                    category: d.category,
                    customer_type: v1::CustomerType::try_from(d.customer_type)
                        .map(|c| short(c.as_str_name(), "CUSTOMER_TYPE_"))
                        .unwrap_or_default(),
                    business: d.business,
                },
            }
        }
        Payload::ComplaintClassified(c) => Change::Class {
            complaint_id: id,
            class: class_letter(c.class),
            completion_due: completion(&c.promises),
        },
        Payload::ComplaintReclassified(c) => Change::Class {
            complaint_id: id,
            class: class_letter(c.to_class),
            completion_due: completion(&c.promises),
        },
        Payload::ValidityDecided(v) if v.class != 0 => Change::Class {
            complaint_id: id,
            class: class_letter(v.class),
            completion_due: None,
        },
        Payload::ComplaintRouted(r) => stage(Stage::Routed, &r.department_id, None),
        Payload::ComplaintAssigned(a) => stage(
            Stage::Assigned,
            &a.department_id,
            Some((a.assignee_id.clone(), a.assignee_name.clone())),
        ),
        Payload::AcceptedByDepartment(a) => stage(Stage::Accepted, &a.department_id, None),
        Payload::Resolved(r) => Change::Finished {
            complaint_id: id,
            stage: Stage::Resolved,
            department_id: (!r.department_id.is_empty()).then(|| r.department_id.clone()),
            at,
            satisfied: None,
        },
        Payload::Closed(c) => Change::Finished {
            complaint_id: id,
            stage: Stage::Closed,
            department_id: None,
            at,
            satisfied: Some(c.satisfied),
        },
        Payload::Reopened(_) => stage(Stage::Reopened, "", None),
        Payload::SlaWarning(w) => Change::Warning {
            complaint_id: id,
            clock: clock_name(w.clock),
            due_at: instant(w.due_at.as_ref()),
        },
        Payload::SlaOverdue(o) => Change::Overdue {
            complaint_id: id,
            clock: clock_name(o.clock),
            due_at: instant(o.due_at.as_ref()),
        },
        Payload::EscalationRaised(r) => Change::EscalationRaised(Raised {
            escalation_id: r.escalation_id.clone(),
            complaint_id: id,
            level: i32::try_from(r.level).unwrap_or(i32::MAX),
            recipient_id: r.recipient_id.clone(),
            recipient_name: r.recipient_name.clone(),
            department_id: r.department_id.clone(),
            summary: r.summary.clone(),
            raised_at: at,
            acknowledge_by: instant(r.acknowledge_by.as_ref()),
        }),
        Payload::EscalationAcknowledged(a) => Change::EscalationAnswered {
            escalation_id: a.escalation_id.clone(),
            at,
        },
        Payload::EscalationDecided(d) => Change::EscalationAnswered {
            escalation_id: d.escalation_id.clone(),
            at,
        },
        Payload::RevisitScheduled(r) => match instant(r.due_at.as_ref()) {
            Some(due_at) => Change::RevisitScheduled {
                revisit_id: r.revisit_id.clone(),
                complaint_id: id,
                department_id: r.department_id.clone(),
                due_at,
            },
            None => Change::Nothing,
        },
        Payload::RevisitCompleted(r) => Change::RevisitCompleted {
            revisit_id: r.revisit_id.clone(),
            at,
            reached: r.reached,
            satisfied: r.satisfied,
        },
        Payload::DepartmentUpserted(d) => Change::Department {
            id: d.department_id.clone(),
            name: d.name.clone(),
        },
        Payload::CauseRecorded(c) => Change::Cause {
            complaint_id: id,
            cause: v1::Responsibility::try_from(c.responsibility)
                .ok()
                .filter(|r| *r != v1::Responsibility::Unspecified)
                .map(|r| short(r.as_str_name(), "RESPONSIBILITY_"))
                .unwrap_or_default(),
        },
        Payload::BusinessVolumeEntered(v) => Change::Volume {
            department_id: v.department_id.clone(),
            month: v.month.clone(),
            volume: i64::try_from(v.volume).unwrap_or(i64::MAX),
        },
        _ => Change::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: Payload) -> v1::Event {
        v1::Event {
            event_id: "evt_1".into(),
            complaint_id: "cmp_1".into(),
            occurred_at: Some(redress_proto::prost_types::Timestamp {
                seconds: 1_764_000_000,
                nanos: 0,
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    #[test]
    fn a_later_stage_outranks_an_earlier_one_and_closed_is_not_open() {
        assert!(Stage::Assigned.rank() > Stage::Routed.rank());
        assert!(Stage::Resolved.rank() >= 5 && Stage::Closed.rank() >= 5);
        assert!(
            Stage::Reopened.rank() < 5,
            "a reopened complaint is open again"
        );
    }

    #[test]
    fn an_assignment_names_the_department_and_the_handler() {
        let change = fold(&event(Payload::ComplaintAssigned(v1::ComplaintAssigned {
            department_id: "dept-network".into(),
            assignee_id: "handler-1".into(),
            assignee_name: "Handler One".into(),
            ..Default::default()
        })));
        assert_eq!(
            change,
            Change::Stage {
                complaint_id: "cmp_1".into(),
                stage: Stage::Assigned,
                department_id: Some("dept-network".into()),
                handler: Some(("handler-1".into(), "Handler One".into())),
            }
        );
    }

    #[test]
    fn a_missed_limit_names_its_clock() {
        let change = fold(&event(Payload::SlaOverdue(v1::SlaOverdue {
            clock: v1::SlaClock::Completion as i32,
            ..Default::default()
        })));
        let Change::Overdue { clock, .. } = change else {
            panic!("{change:?}")
        };
        assert_eq!(clock, "completion");
    }

    #[test]
    fn a_cause_is_named_by_who_was_responsible_and_a_volume_by_department_and_month() {
        let cause = fold(&event(Payload::CauseRecorded(v1::CauseRecorded {
            responsibility: v1::Responsibility::CompanyNetwork as i32,
            cause: "free text is not a category".into(),
            ..Default::default()
        })));
        assert_eq!(
            cause,
            Change::Cause {
                complaint_id: "cmp_1".into(),
                cause: "company_network".into()
            }
        );
        let volume = fold(&event(Payload::BusinessVolumeEntered(
            v1::BusinessVolumeEntered {
                department_id: "dept-network".into(),
                month: "2026-11".into(),
                volume: 10_000,
                previous_volume: 0,
            },
        )));
        assert_eq!(
            volume,
            Change::Volume {
                department_id: "dept-network".into(),
                month: "2026-11".into(),
                volume: 10_000
            }
        );
    }

    #[test]
    fn an_event_without_payload_or_of_no_interest_changes_nothing() {
        let mut e = event(Payload::FeedbackGiven(v1::FeedbackGiven::default()));
        assert_eq!(fold(&e), Change::Nothing);
        e.payload = None;
        assert_eq!(fold(&e), Change::Nothing);
    }
}
