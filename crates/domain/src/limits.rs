//! The time limits in force for one complaint, followed from the events of the process, so that
//! the registry shows the due times the SLA monitor keeps (DOMAIN §9: "The registry is the
//! single view of a complaint: its record always shows the current class (D after an invalid
//! finding; after a reclassification), the due times the SLA monitor keeps …").
//!
//! The SLA monitor keeps one clock per limit; this is the same arithmetic without the clocks'
//! warning and overdue bookkeeping: what a due time is after each step. A limit that was met or
//! stopped keeps its due time (a reclassification moves only what still runs); a new class moves
//! each running limit to the new class's limit from the limit's own start ([`crate::sla`]:
//! `policy_due`); a reopening restarts completion and the intermediate result from the reopening
//! ([`crate::sla::restarted_by_reopening`]). Both sides compute from the one [`crate::promises`],
//! so they cannot disagree on the figures.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::classification::Class;
use crate::deadlines::Promises;
use crate::policy::Policy;
use crate::sla::{ClockKind, policy_due, restarted_by_reopening};

/// A complaint's class and the due times of its four intake limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsInForce {
    /// The class the limits follow from.
    pub class: Class,
    /// When the complaint was recorded: every limit of the first run counts from it.
    pub received_at: DateTime<Utc>,
    /// The due times in force.
    pub promises: Promises,
    /// Limits met or stopped: their due time no longer moves.
    #[serde(default)]
    pub settled: Vec<ClockKind>,
    /// When the latest reopening restarted completion and the intermediate result; their
    /// limits count from it since.
    #[serde(default)]
    pub restarted_at: Option<DateTime<Utc>>,
    /// Each class change so far: when it was made and the due times just before it. A limit
    /// met before a class change, but heard of only after it, gets its earlier due time back:
    /// it had stopped moving (what the SLA monitor, seeing the two in order, keeps).
    #[serde(default)]
    pub class_moves: Vec<ClassMove>,
}

/// A class change and the due times it replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassMove {
    pub at: DateTime<Utc>,
    pub before: Promises,
}

/// A step of the process that changes the limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitChange {
    /// Staff changed the class; `promised` are the limits told to the customer, counted from
    /// intake (the reclassification event carries them).
    Reclassified {
        to: Class,
        promised: Option<Promises>,
    },
    /// The department decided validity; the class after it (D when invalid, DOMAIN §2).
    ValidityDecided { class: Class },
    /// The awaited step happened: the department accepted, the first feedback was given, the
    /// intermediate result was reported.
    Met(ClockKind),
    /// Resolved: "Resolution stops every clock except the revisits" (DOMAIN §9).
    Resolved,
    /// Closed: nothing runs any more.
    Closed,
    /// Reopened at this time: "the completion clock runs again" (DOMAIN §3).
    Reopened(DateTime<Utc>),
    /// An approver extended a limit to a new due time (a special reason).
    Extended { kind: ClockKind, due: DateTime<Utc> },
}

impl LimitChange {
    /// Whether the change sets the class. Of two such changes the later one in time wins,
    /// whatever order they arrive in: a validity decision that reaches the registry after a
    /// later reclassification must not undo it (the SLA monitor and routing see them in that
    /// order too).
    pub fn sets_class(&self) -> bool {
        matches!(
            self,
            LimitChange::Reclassified { .. } | LimitChange::ValidityDecided { .. }
        )
    }
}

/// The four limits a complaint gets at intake, in the order of [`Promises`].
const INTAKE_KINDS: [ClockKind; 4] = [
    ClockKind::Acceptance,
    ClockKind::FirstFeedback,
    ClockKind::Completion,
    ClockKind::IntermediateResult,
];

fn due_mut(p: &mut Promises, kind: ClockKind) -> Option<&mut DateTime<Utc>> {
    match kind {
        ClockKind::Acceptance => Some(&mut p.acceptance_due),
        ClockKind::FirstFeedback => Some(&mut p.first_feedback_due),
        ClockKind::Completion => Some(&mut p.completion_due),
        ClockKind::IntermediateResult => Some(&mut p.intermediate_due),
        // Not among the promises told to the customer: the confirmation limit is the
        // complaint centre's (DOMAIN §9), kept by the SLA monitor's own clock.
        ClockKind::Revisit | ClockKind::Confirmation => None,
    }
}

fn due_of(p: &Promises, kind: ClockKind) -> Option<DateTime<Utc>> {
    let mut p = *p;
    due_mut(&mut p, kind).map(|d| *d)
}

impl LimitsInForce {
    /// The limits told to the customer at intake.
    pub fn at_intake(class: Class, received_at: DateTime<Utc>, promises: Promises) -> Self {
        LimitsInForce {
            class,
            received_at,
            promises,
            settled: Vec::new(),
            restarted_at: None,
            class_moves: Vec::new(),
        }
    }

    /// Whether the limit `kind` still runs (its due time may still move).
    pub fn runs(&self, kind: ClockKind) -> bool {
        !self.settled.contains(&kind)
    }

    /// When the current run of `kind` started.
    fn started_at(&self, kind: ClockKind) -> DateTime<Utc> {
        match self.restarted_at {
            Some(at) if restarted_by_reopening(kind) => at,
            _ => self.received_at,
        }
    }

    fn settle(&mut self, kind: ClockKind) {
        if self.runs(kind) {
            self.settled.push(kind);
            self.settled.sort();
        }
    }

    /// Moves every running limit to `class`: to `promised` where it is the first run and the
    /// event says, otherwise to the class's limit from the limit's own start.
    fn move_to(&mut self, policy: &Policy, class: Class, promised: Option<&Promises>) {
        self.class = class;
        for kind in INTAKE_KINDS {
            if !self.runs(kind) {
                continue;
            }
            let first_run = self.restarted_at.is_none() || !restarted_by_reopening(kind);
            let due = match promised {
                Some(p) if first_run => due_of(p, kind),
                _ => policy_due(policy, class, kind, self.started_at(kind)),
            };
            if let (Some(due), Some(slot)) = (due, due_mut(&mut self.promises, kind)) {
                *slot = due;
            }
        }
    }

    /// The limits after `change`, made at `at`, whatever order the changes arrive in: a class
    /// change is remembered with the due times it replaced, and a limit met (or resolved) before
    /// a class change that was applied first gets back the due time it had when it was met.
    pub fn apply_at(&mut self, policy: &Policy, change: LimitChange, at: DateTime<Utc>) {
        let settles: &[ClockKind] = match &change {
            LimitChange::Met(kind) => std::slice::from_ref(kind),
            LimitChange::Resolved | LimitChange::Closed => &INTAKE_KINDS,
            _ => &[],
        };
        // The first class change made after the limit was met: the due time before it.
        let before = self
            .class_moves
            .iter()
            .filter(|m| m.at > at)
            .min_by_key(|m| m.at)
            .map(|m| m.before);
        if let Some(before) = before {
            for &kind in settles {
                if self.runs(kind)
                    && let (Some(due), Some(slot)) =
                        (due_of(&before, kind), due_mut(&mut self.promises, kind))
                {
                    *slot = due;
                }
            }
        }
        if change.sets_class() {
            self.class_moves.push(ClassMove {
                at,
                before: self.promises,
            });
        }
        self.apply(policy, change);
    }

    /// The limits after `change`. Applying the same change twice leaves them as once.
    pub fn apply(&mut self, policy: &Policy, change: LimitChange) {
        match change {
            LimitChange::Reclassified { to, promised } => {
                self.move_to(policy, to, promised.as_ref())
            }
            LimitChange::ValidityDecided { class } => self.move_to(policy, class, None),
            LimitChange::Met(kind) => self.settle(kind),
            LimitChange::Resolved | LimitChange::Closed => {
                INTAKE_KINDS.into_iter().for_each(|k| self.settle(k))
            }
            LimitChange::Reopened(at) => {
                self.restarted_at = Some(at);
                for kind in INTAKE_KINDS
                    .into_iter()
                    .filter(|k| restarted_by_reopening(*k))
                {
                    self.settled.retain(|k| *k != kind);
                    if let (Some(due), Some(slot)) = (
                        policy_due(policy, self.class, kind, at),
                        due_mut(&mut self.promises, kind),
                    ) {
                        *slot = due;
                    }
                }
            }
            LimitChange::Extended { kind, due } => {
                if let Some(slot) = due_mut(&mut self.promises, kind) {
                    *slot = due;
                }
            }
        }
    }
}

/// The reasons shown for the class after a finding of invalidity (DOMAIN §2: "the complaint is
/// found invalid → D admonition").
pub fn reasons_after_invalid_finding(explanation: &str) -> Vec<String> {
    let explanation = explanation.trim();
    if explanation.is_empty() {
        vec!["Found invalid by the department: class D".to_owned()]
    } else {
        vec![format!(
            "Found invalid by the department: class D ({explanation})"
        )]
    }
}

/// The reasons shown for the class after a staff override (DOMAIN §2: "Staff may override the
/// class with a reason, kept in the history").
pub fn reasons_after_reclassification(from: Class, to: Class, reason: &str) -> Vec<String> {
    vec![format!(
        "Reclassified from {} to {} by staff: {}",
        from.as_str(),
        to.as_str(),
        reason.trim()
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_met_before_a_class_change_heard_of_after_it_keeps_its_earlier_due_time() {
        let policy = Policy::default();
        let t0 = DateTime::parse_from_rfc3339("2030-01-07T09:00:00+08:00")
            .unwrap()
            .to_utc();
        let start = LimitsInForce::at_intake(Class::B, t0, crate::promises(&policy, Class::B, t0));
        let fed_back = t0 + chrono::Duration::minutes(10);
        let reclassified = t0 + chrono::Duration::minutes(20);
        let change = LimitChange::Reclassified {
            to: Class::D,
            promised: None,
        };
        // In order: the feedback meets the limit, the reclassification leaves it alone.
        let mut in_order = start.clone();
        in_order.apply_at(
            &policy,
            LimitChange::Met(ClockKind::FirstFeedback),
            fed_back,
        );
        in_order.apply_at(&policy, change, reclassified);
        // Out of order: the reclassification first, the earlier feedback heard of after it.
        let mut late = start.clone();
        late.apply_at(&policy, change, reclassified);
        late.apply_at(
            &policy,
            LimitChange::Met(ClockKind::FirstFeedback),
            fed_back,
        );
        assert_eq!(
            late.promises.first_feedback_due,
            start.promises.first_feedback_due
        );
        assert_eq!(late.promises, in_order.promises);
        assert_eq!(late.class, Class::D);
        // A feedback after the reclassification keeps the new due time.
        let mut after = start.clone();
        after.apply_at(&policy, change, reclassified);
        let moved = after.promises.first_feedback_due;
        after.apply_at(
            &policy,
            LimitChange::Met(ClockKind::FirstFeedback),
            reclassified + chrono::Duration::minutes(1),
        );
        assert_eq!(after.promises.first_feedback_due, moved);
    }
    use crate::promises;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn received() -> DateTime<Utc> {
        t("2026-11-23T02:00:00Z")
    }

    fn limits(policy: &Policy, class: Class) -> LimitsInForce {
        LimitsInForce::at_intake(class, received(), promises(policy, class, received()))
    }

    #[test]
    fn an_invalid_finding_moves_running_limits_to_class_d_and_keeps_met_ones() {
        let policy = Policy::default();
        let mut l = limits(&policy, Class::B);
        let before = l.promises;
        l.apply(&policy, LimitChange::Met(ClockKind::Acceptance));
        l.apply(&policy, LimitChange::Met(ClockKind::FirstFeedback));
        l.apply(&policy, LimitChange::ValidityDecided { class: Class::D });
        let d = promises(&policy, Class::D, received());
        assert_eq!(l.class, Class::D);
        assert_eq!(l.promises.completion_due, d.completion_due);
        assert_eq!(l.promises.intermediate_due, d.intermediate_due);
        assert_eq!(l.promises.acceptance_due, before.acceptance_due);
        assert_eq!(l.promises.first_feedback_due, before.first_feedback_due);
        // Redelivered: the same.
        let once = l.clone();
        l.apply(&policy, LimitChange::ValidityDecided { class: Class::D });
        l.apply(&policy, LimitChange::Met(ClockKind::FirstFeedback));
        assert_eq!(l, once);
    }

    #[test]
    fn a_reclassification_takes_the_promised_limits_for_the_first_run() {
        let policy = Policy::default();
        let mut l = limits(&policy, Class::C);
        let a = promises(&policy, Class::A, received());
        l.apply(
            &policy,
            LimitChange::Reclassified {
                to: Class::A,
                promised: Some(a),
            },
        );
        assert_eq!(l.class, Class::A);
        assert_eq!(l.promises, a);
    }

    #[test]
    fn a_reopening_restarts_completion_from_the_reopening_and_a_new_class_counts_from_it() {
        let policy = Policy::default();
        let mut l = limits(&policy, Class::C);
        l.apply(&policy, LimitChange::Resolved);
        let reopened = t("2026-11-25T02:00:00Z");
        l.apply(&policy, LimitChange::Reopened(reopened));
        let from_reopening = promises(&policy, Class::C, reopened);
        assert_eq!(l.promises.completion_due, from_reopening.completion_due);
        assert!(l.runs(ClockKind::Completion));
        assert!(!l.runs(ClockKind::FirstFeedback));
        // A reclassification now: the restarted limits count from the reopening, not intake.
        let a_at_intake = promises(&policy, Class::A, received());
        l.apply(
            &policy,
            LimitChange::Reclassified {
                to: Class::A,
                promised: Some(a_at_intake),
            },
        );
        assert_eq!(
            l.promises.completion_due,
            promises(&policy, Class::A, reopened).completion_due
        );
        // Settled limits stayed.
        assert_eq!(
            l.promises.first_feedback_due,
            promises(&policy, Class::C, received()).first_feedback_due
        );
    }

    #[test]
    fn an_extension_sets_the_due_time_and_closing_freezes_everything() {
        let policy = Policy::default();
        let mut l = limits(&policy, Class::B);
        let due = t("2026-12-01T00:00:00Z");
        l.apply(
            &policy,
            LimitChange::Extended {
                kind: ClockKind::Completion,
                due,
            },
        );
        assert_eq!(l.promises.completion_due, due);
        l.apply(&policy, LimitChange::Closed);
        let closed = l.clone();
        l.apply(&policy, LimitChange::ValidityDecided { class: Class::D });
        assert_eq!(l.promises, closed.promises);
        assert_eq!(l.class, Class::D);
    }

    #[test]
    fn stored_form_round_trips() {
        let policy = Policy::default();
        let mut l = limits(&policy, Class::B);
        l.apply(&policy, LimitChange::Met(ClockKind::Acceptance));
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<LimitsInForce>(&json).unwrap(), l);
    }
}
