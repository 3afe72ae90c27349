//! One line of plain words per event, for timelines, the CLI and the demo.
//!
//! Kept beside the contracts so every reader of events (intake's registry, the `redress` CLI,
//! dashboards written in Rust) tells the story the same way.

use crate::v1::{self, event::Payload};

/// The short name of a prost enum value: `CLASS_A` → `A`, `SLA_CLOCK_FIRST_FEEDBACK` →
/// `first feedback`.
fn short(full: &str, prefix: &str) -> String {
    full.trim_start_matches(prefix)
        .to_ascii_lowercase()
        .replace('_', " ")
}

fn class(c: i32) -> String {
    v1::Class::try_from(c)
        .map(|c| c.as_str_name().trim_start_matches("CLASS_").to_owned())
        .unwrap_or_else(|_| "?".into())
}

fn clock(c: i32) -> String {
    v1::SlaClock::try_from(c)
        .map(|c| short(c.as_str_name(), "SLA_CLOCK_"))
        .unwrap_or_else(|_| "?".into())
}

/// A person as a reader knows them: the name the event carries, else what `name` makes of the
/// id (a reader with a staff list shows the name, one without shows the id).
fn person(event_name: &str, id: &str, name: &dyn Fn(&str) -> String) -> String {
    if event_name.is_empty() {
        name(id)
    } else {
        event_name.to_owned()
    }
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02} yuan", fen / 100, (fen % 100).abs())
}

impl Payload {
    /// What happened, in a few words a supervisor reads; people appear by id.
    pub fn describe(&self) -> String {
        self.describe_naming(&|id: &str| id.to_owned())
    }

    /// What happened, with every person named by `name` (from their id), so a reader that knows
    /// the staff names each person the same way in every line, whichever event mentions them.
    pub fn describe_naming(&self, name: &dyn Fn(&str) -> String) -> String {
        match self {
            Payload::ComplaintReceived(r) => {
                format!(
                    "received as {} (class {})",
                    r.complaint_number,
                    class(r.class)
                )
            }
            Payload::ComplaintRejected(r) => format!(
                "submission rejected: {}",
                r.violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Payload::ComplaintClassified(c) => {
                format!("classified {}: {}", class(c.class), c.reasons.join("; "))
            }
            Payload::ComplaintReclassified(c) => format!(
                "reclassified {} → {}: {}",
                class(c.from_class),
                class(c.to_class),
                c.reason
            ),
            Payload::ComplaintConfirmed(c) => format!(
                "record confirmed by the customer ({})",
                v1::ConfirmationMethod::try_from(c.method)
                    .map(|m| short(m.as_str_name(), "CONFIRMATION_METHOD_"))
                    .unwrap_or_default()
            ),
            Payload::ComplaintRouted(r) => {
                format!(
                    "routed to {}",
                    if r.department_name.is_empty() {
                        &r.department_id
                    } else {
                        &r.department_name
                    }
                )
            }
            Payload::ComplaintAssigned(a) => {
                format!(
                    "assigned to {}",
                    person(&a.assignee_name, &a.assignee_id, name)
                )
            }
            Payload::AcceptedByDepartment(a) => format!("accepted by {}", name(&a.accepted_by)),
            Payload::ValidityDecided(v) if v.valid => "found valid".into(),
            Payload::ValidityDecided(v) => format!("found invalid (class D): {}", v.explanation),
            Payload::CauseRecorded(c) => format!("cause: {}", c.cause),
            Payload::FeedbackGiven(f) => format!(
                "feedback to the customer: {}{}",
                f.content,
                match f.satisfied {
                    Some(true) => " (customer satisfied)",
                    Some(false) => " (customer not satisfied)",
                    None => "",
                }
            ),
            Payload::IntermediateResultReported(r) => format!("intermediate result: {}", r.content),
            Payload::ResolutionProposed(p) => format!("solution proposed: {}", p.solution),
            Payload::CustomerAccepted(_) => "customer accepted the solution".into(),
            Payload::CustomerRejected(r) => {
                format!(
                    "customer rejected the solution ({}): {}",
                    r.rejection_count, r.reason
                )
            }
            Payload::ReStudyRequested(_) => "department re-studies it".into(),
            Payload::EscalationRequested(_) => "escalation to the general manager requested".into(),
            Payload::Resolved(r) => format!("resolved: {}", r.result),
            Payload::Reopened(r) if r.repeat_complaint => {
                format!("reopened as a repeat complaint: {}", r.reason)
            }
            Payload::Reopened(r) => format!("reopened: {}", r.reason),
            Payload::Closed(c) if c.note.is_empty() => "closed".into(),
            Payload::Closed(c) => format!("closed: {}", c.note),
            Payload::SubTaskCreated(t) => format!("sub-task for {}", t.department_id),
            Payload::SubTaskCompleted(t) => format!("sub-task {} done", t.task_id),
            Payload::SlaWarning(w) => format!("{} limit at risk (warning)", clock(w.clock)),
            Payload::SlaOverdue(o) if o.overdue_day > 1 => {
                format!(
                    "{} limit missed, day {} (overdue)",
                    clock(o.clock),
                    o.overdue_day
                )
            }
            Payload::SlaOverdue(o) => format!("{} limit missed (overdue)", clock(o.clock)),
            Payload::SpecialReasonRecorded(s) => format!("special reason: {}", s.reason),
            Payload::EscalationRaised(e) => format!(
                "escalated to level {}: {} ({})",
                e.level,
                person(&e.recipient_name, &e.recipient_id, name),
                v1::EscalationTrigger::try_from(e.trigger)
                    .map(|t| short(t.as_str_name(), "ESCALATION_TRIGGER_"))
                    .unwrap_or_default()
            ),
            Payload::EscalationAcknowledged(a) => {
                format!("{} acknowledged the escalation", name(&a.acknowledged_by))
            }
            Payload::EscalationDecided(d) => {
                format!("decision by {}: {}", name(&d.decided_by), d.decision)
            }
            Payload::NotificationSent(n) => {
                format!("notification to {} ({})", name(&n.recipient_id), n.channel)
            }
            Payload::NotificationDelivered(n) => {
                format!(
                    "notification delivered to {} ({})",
                    name(&n.recipient_id),
                    n.channel
                )
            }
            Payload::NotificationFailed(n) => {
                format!(
                    "notification to {} failed ({})",
                    name(&n.recipient_id),
                    n.channel
                )
            }
            Payload::RevisitScheduled(r) => format!(
                "revisit planned ({})",
                v1::RevisitKind::try_from(r.kind)
                    .map(|k| short(k.as_str_name(), "REVISIT_KIND_"))
                    .unwrap_or_default()
            ),
            Payload::RevisitCompleted(r) if !r.reached => "revisit: customer not reached".into(),
            Payload::RevisitCompleted(r) => format!(
                "revisit: customer {}{}",
                if r.satisfied {
                    "satisfied"
                } else {
                    "dissatisfied"
                },
                if r.feelings.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", r.feelings)
                }
            ),
            Payload::RepeatComplaint(r) => format!("repeat complaint: {}", r.reason),
            Payload::SatisfactionReported(s) => format!(
                "satisfaction reported to the department: {}{}",
                if s.satisfied {
                    "satisfied"
                } else {
                    "dissatisfied"
                },
                if s.summary.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", s.summary)
                }
            ),
            Payload::AccountabilityRecorded(a) => format!(
                "accountability: {} fined {} ({})",
                // A revisit nobody claimed: the escalation ledger charges it to the complaint
                // centre's manager (DOMAIN §9), whom the SLA monitor does not know.
                if a.person_id.is_empty() {
                    "the owner (named by the ledger)".to_owned()
                } else {
                    name(&a.person_id)
                },
                yuan(a.amount_fen),
                v1::AccountabilityReason::try_from(a.reason)
                    .map(|r| short(r.as_str_name(), "ACCOUNTABILITY_REASON_"))
                    .unwrap_or_default()
            ),
            Payload::StaffSuspended(s) => {
                format!(
                    "{} suspended for {} ({} complaints)",
                    name(&s.person_id),
                    s.month,
                    s.count
                )
            }
            Payload::BusinessVolumeEntered(v) => format!(
                "business volume of {} for {} entered: {}",
                v.department_id, v.month, v.volume
            ),
            other => other.kind().replace(['.', '_'], " "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_in_words() {
        let p = Payload::SlaOverdue(v1::SlaOverdue {
            clock: v1::SlaClock::FirstFeedback as i32,
            ..Default::default()
        });
        assert_eq!(p.describe(), "first feedback limit missed (overdue)");
        let a = Payload::AccountabilityRecorded(v1::AccountabilityRecorded {
            person_id: "handler-1".into(),
            amount_fen: 5_000,
            reason: v1::AccountabilityReason::Overdue as i32,
            ..Default::default()
        });
        assert_eq!(
            a.describe(),
            "accountability: handler-1 fined 50.00 yuan (overdue)"
        );
    }

    #[test]
    fn a_reader_with_a_staff_list_names_every_person_alike() {
        let name = |id: &str| match id {
            "handler-1" => "Liu Yang".to_owned(),
            other => other.to_owned(),
        };
        let fined = Payload::AccountabilityRecorded(v1::AccountabilityRecorded {
            person_id: "handler-1".into(),
            amount_fen: 5_000,
            reason: v1::AccountabilityReason::Overdue as i32,
            ..Default::default()
        });
        let accepted = Payload::AcceptedByDepartment(v1::AcceptedByDepartment {
            accepted_by: "handler-1".into(),
            ..Default::default()
        });
        let assigned = Payload::ComplaintAssigned(v1::ComplaintAssigned {
            assignee_id: "handler-1".into(),
            ..Default::default()
        });
        assert_eq!(
            fined.describe_naming(&name),
            "accountability: Liu Yang fined 50.00 yuan (overdue)"
        );
        assert_eq!(accepted.describe_naming(&name), "accepted by Liu Yang");
        assert_eq!(assigned.describe_naming(&name), "assigned to Liu Yang");
    }
}
