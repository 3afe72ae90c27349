//! The escalation ladder (上报) as pure rules: which rungs a trigger reaches, when an
//! escalation is re-sent or raised for want of acknowledgement, and which state changes are
//! legal.
//!
//! DOMAIN §5: "Overdue → the responsible person's manager is notified; still unresolved → the
//! general manager"; "a major group-complaint risk → escalate per the internal ladder";
//! "Threatening customer, venting anger, media risk → a superior at once"; "Every escalation is
//! a notification to a named person, recorded when sent, seen and acted on". DOMAIN §6: a repeat
//! complaint → "the business department is told, the general manager is informed at the same
//! time". DOMAIN §9: "class A overdue → both". Levels are 1-based: level 1 is
//! `policy.escalation.ladder[0]` (the department manager by default), the top level is the last
//! rung (the general manager by default).

use chrono::{DateTime, Utc};

use crate::classification::Class;
use crate::policy::Policy;
use crate::sla::ClockKind;

/// What raised an escalation; mirrors the contract's `EscalationTrigger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// A time limit was missed.
    SlaOverdue,
    /// Still unresolved `l2_after` after the level-1 escalation.
    UnresolvedAfterL1,
    /// A class-A complaint overdue: both rungs at once (policy `class_a_overdue_both`).
    ClassAOverdue,
    /// The customer rejected the solution again.
    RejectedAgain,
    /// The department manager cannot settle it.
    CannotSettle,
    /// Risk of a major group complaint.
    GroupRisk,
    /// Media or consumer-association risk.
    MediaRisk,
    /// A repeat complaint after a dissatisfied revisit.
    RepeatComplaint,
    /// A threatening customer.
    ThreateningCustomer,
    /// Not acknowledged in time: one level up.
    Unacknowledged,
    /// A customer venting anger, reported upward as promised.
    VentingAnger,
    /// Beyond the handler's authority, or unsatisfied after the first handling.
    BeyondAuthority,
    /// An important event for the office head.
    ImportantEvent,
}

impl Trigger {
    /// Stable snake_case code, used in step keys and logs.
    pub fn code(self) -> &'static str {
        match self {
            Trigger::SlaOverdue => "sla_overdue",
            Trigger::UnresolvedAfterL1 => "unresolved_after_l1",
            Trigger::ClassAOverdue => "class_a_overdue",
            Trigger::RejectedAgain => "rejected_again",
            Trigger::CannotSettle => "cannot_settle",
            Trigger::GroupRisk => "group_risk",
            Trigger::MediaRisk => "media_risk",
            Trigger::RepeatComplaint => "repeat_complaint",
            Trigger::ThreateningCustomer => "threatening_customer",
            Trigger::Unacknowledged => "unacknowledged",
            Trigger::VentingAnger => "venting_anger",
            Trigger::BeyondAuthority => "beyond_authority",
            Trigger::ImportantEvent => "important_event",
        }
    }
}

/// The top rung's level (the general manager by default). Never 0: the policy check refuses an
/// empty ladder.
pub fn top_level(policy: &Policy) -> u32 {
    u32::try_from(policy.escalation.ladder.len().max(1)).unwrap_or(u32::MAX)
}

/// The role code of a level (`department_manager`, `general_manager`, …); `None` off the ladder.
pub fn role_at(policy: &Policy, level: u32) -> Option<&str> {
    let index = usize::try_from(level.checked_sub(1)?).ok()?;
    policy.escalation.ladder.get(index).map(String::as_str)
}

/// The levels a trigger reaches at once, lowest first, and the trigger each is recorded under.
///
/// - SLA overdue → level 1; a class-A complaint's missed **completion** limit, with
///   `class_a_overdue_both`, level 1 and the top together (DOMAIN §9: the general manager comes
///   in "class A: at the completion limit" — never for a first-feedback or intermediate limit).
///   `clock` is the missed limit, `None` when unknown (then it counts as completion).
/// - Rejected again, cannot settle, group or media risk → the top at once (DOMAIN §5: "if the
///   department manager cannot settle it, it goes to the general manager"; "a superior at once").
/// - Repeat complaint → the top, and level 1 so the business department is told (DOMAIN §6);
///   a threatening or venting-anger customer likewise (DOMAIN §9 "Superior at once").
/// - Escalation requested with an explicit level (`requested_level` > 0) → that level, capped at
///   the top.
/// - Unresolved after L1 / unacknowledged → use [`next_level`] instead; here they give level 2.
pub fn levels_for(
    policy: &Policy,
    trigger: Trigger,
    class: Option<Class>,
    clock: Option<ClockKind>,
    requested_level: u32,
) -> Vec<(u32, Trigger)> {
    let top = top_level(policy);
    if requested_level > 0 {
        return vec![(requested_level.min(top), trigger)];
    }
    let completion = matches!(clock, None | Some(ClockKind::Completion));
    let mut levels = match trigger {
        Trigger::SlaOverdue | Trigger::ClassAOverdue => {
            if class == Some(Class::A) && completion && policy.escalation.class_a_overdue_both {
                vec![(1, Trigger::ClassAOverdue), (top, Trigger::ClassAOverdue)]
            } else {
                vec![(1, Trigger::SlaOverdue)]
            }
        }
        // DOMAIN §9 "Superior at once": a threatening or venting-anger customer notifies the
        // department manager at once, and is among the immediate triggers the general manager
        // is told of at once — like a repeat complaint.
        Trigger::RepeatComplaint | Trigger::ThreateningCustomer | Trigger::VentingAnger => {
            vec![(1, trigger), (top, trigger)]
        }
        Trigger::UnresolvedAfterL1 | Trigger::Unacknowledged => vec![(2.min(top), trigger)],
        Trigger::BeyondAuthority => vec![(1, trigger)],
        Trigger::RejectedAgain
        | Trigger::CannotSettle
        | Trigger::GroupRisk
        | Trigger::MediaRisk
        | Trigger::ImportantEvent => vec![(top, trigger)],
    };
    levels.dedup_by_key(|(level, _)| *level);
    levels
}

/// How a new cause meets the escalations its complaint already has at the same level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joining {
    /// A cause of its own: raised (and notified) unless the same cause was raised before.
    Own,
    /// Joins the complaint's open escalation at that level, if any, without a new notification
    /// (a climb someone at that level already has in hand).
    Open,
    /// Joins the complaint's open escalation at that level, else its earlier missed-limit
    /// escalation there in any state: DOMAIN §9, "the first missed limit of a complaint notifies
    /// the department manager once; later missed limits of the same complaint are added to that
    /// escalation (visible in its record) without a new notification".
    OpenOrMissedLimit,
}

/// How `trigger` joins existing escalations ([`Joining`]).
pub fn joining(trigger: Trigger) -> Joining {
    match trigger {
        Trigger::SlaOverdue | Trigger::ClassAOverdue => Joining::OpenOrMissedLimit,
        Trigger::UnresolvedAfterL1 | Trigger::Unacknowledged => Joining::Open,
        _ => Joining::Own,
    }
}

/// Whether an escalation raised by this cause may go further up on its own — when nobody
/// acknowledges it, or the complaint stays unresolved (DOMAIN §9). A missed limit other than
/// completion may not: "its overdue joins the complaint's escalation at the department manager,
/// never the general manager on its own"; the general manager is notified "when the complaint is
/// still unresolved the set time after its completion limit". Such an escalation is re-sent to
/// the manager while unacknowledged, and gains the right to climb when the completion limit is
/// missed too.
pub fn may_climb(trigger: Trigger, clock: Option<ClockKind>) -> bool {
    match trigger {
        Trigger::SlaOverdue | Trigger::ClassAOverdue => {
            matches!(clock, None | Some(ClockKind::Completion))
        }
        _ => true,
    }
}

/// The level above `level`, if the ladder has one.
pub fn next_level(policy: &Policy, level: u32) -> Option<u32> {
    let next = level.checked_add(1)?;
    (next <= top_level(policy)).then_some(next)
}

/// When a still-unresolved complaint escalated at `level` goes further up (DOMAIN §9: "still
/// unresolved a set time later → general manager"); `None` at the top.
pub fn unresolved_raise_at(
    policy: &Policy,
    level: u32,
    raised_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    next_level(policy, level).map(|_| raised_at + policy.escalation.l2_after)
}

/// When an unacknowledged escalation is sent again (DOMAIN §5: "recorded when sent, seen and
/// acted on"; the interval is a product choice, `unacknowledged_resend_after`).
pub fn resend_at(policy: &Policy, last_sent_at: DateTime<Utc>) -> DateTime<Utc> {
    last_sent_at + policy.escalation.unacknowledged_resend_after
}

/// The "acknowledge by" time: past it, an unacknowledged escalation goes one level up
/// (`unacknowledged_raise_after`). At the top there is nowhere to go, but the time is still
/// shown to the recipient.
pub fn acknowledge_by(policy: &Policy, raised_at: DateTime<Utc>) -> DateTime<Utc> {
    raised_at + policy.escalation.unacknowledged_raise_after
}

/// Where an escalation stands; mirrors the contract's `EscalationState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Raised, not yet acknowledged.
    Raised,
    /// Acknowledged with instructions, no decision yet.
    Acknowledged,
    /// Decided by the recipient.
    Decided,
    /// Went one level up; a new escalation carries it on.
    Superseded,
    /// Closed without a decision: the complaint was resolved, or the final decision was given.
    Closed,
}

impl State {
    /// Stable code, as stored.
    pub fn code(self) -> &'static str {
        match self {
            State::Raised => "raised",
            State::Acknowledged => "acknowledged",
            State::Decided => "decided",
            State::Superseded => "superseded",
            State::Closed => "closed",
        }
    }

    /// Parses a stored code.
    pub fn parse(code: &str) -> Option<State> {
        Some(match code {
            "raised" => State::Raised,
            "acknowledged" => State::Acknowledged,
            "decided" => State::Decided,
            "superseded" => State::Superseded,
            "closed" => State::Closed,
            _ => return None,
        })
    }

    /// Whether the escalation still waits for its recipient.
    pub fn is_open(self) -> bool {
        matches!(self, State::Raised | State::Acknowledged)
    }
}

/// An illegal state change, naming the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("escalation is {}, cannot {action}", .current.code())]
pub struct TransitionError {
    /// The state it is in.
    pub current: State,
    /// What was attempted.
    pub action: &'static str,
}

/// Acknowledging: only a raised escalation (acknowledging twice is refused, so instructions are
/// never silently overwritten).
pub fn acknowledge(current: State) -> Result<State, TransitionError> {
    match current {
        State::Raised => Ok(State::Acknowledged),
        _ => Err(TransitionError {
            current,
            action: "acknowledge",
        }),
    }
}

/// Deciding: a raised or acknowledged escalation. DOMAIN §5: the general manager "coordinates
/// and gives the final decision" — see [`is_final`].
pub fn decide(current: State) -> Result<State, TransitionError> {
    match current {
        State::Raised | State::Acknowledged => Ok(State::Decided),
        _ => Err(TransitionError {
            current,
            action: "decide",
        }),
    }
}

/// Whether a decision at `level` is final (given at the top of the ladder).
pub fn is_final(policy: &Policy, level: u32) -> bool {
    level >= top_level(policy)
}

/// Delay before webhook delivery attempt `attempt + 1` after attempt `attempt` failed:
/// `initial` doubled per failure, capped at `max`.
pub fn retry_delay(
    initial: std::time::Duration,
    max: std::time::Duration,
    attempt: u32,
) -> std::time::Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    initial.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as StdDuration;

    fn p() -> Policy {
        Policy::default()
    }

    #[test]
    fn overdue_goes_to_level_one_and_class_a_to_both() {
        let policy = p();
        assert_eq!(
            levels_for(&policy, Trigger::SlaOverdue, Some(Class::C), None, 0),
            vec![(1, Trigger::SlaOverdue)]
        );
        assert_eq!(
            levels_for(&policy, Trigger::SlaOverdue, Some(Class::A), None, 0),
            vec![(1, Trigger::ClassAOverdue), (2, Trigger::ClassAOverdue)]
        );
        let mut one_only = p();
        one_only.escalation.class_a_overdue_both = false;
        assert_eq!(
            levels_for(&one_only, Trigger::SlaOverdue, Some(Class::A), None, 0),
            vec![(1, Trigger::SlaOverdue)]
        );
    }

    #[test]
    fn only_a_missed_completion_limit_brings_in_the_general_manager() {
        let policy = p();
        for clock in [
            ClockKind::Acceptance,
            ClockKind::FirstFeedback,
            ClockKind::IntermediateResult,
            ClockKind::Revisit,
            ClockKind::Confirmation,
        ] {
            assert_eq!(
                levels_for(&policy, Trigger::SlaOverdue, Some(Class::A), Some(clock), 0),
                vec![(1, Trigger::SlaOverdue)],
                "{clock:?}"
            );
            assert!(!may_climb(Trigger::SlaOverdue, Some(clock)));
        }
        assert_eq!(
            levels_for(
                &policy,
                Trigger::SlaOverdue,
                Some(Class::A),
                Some(ClockKind::Completion),
                0
            ),
            vec![(1, Trigger::ClassAOverdue), (2, Trigger::ClassAOverdue)]
        );
        assert!(may_climb(Trigger::SlaOverdue, Some(ClockKind::Completion)));
        assert!(may_climb(Trigger::RepeatComplaint, None));
    }

    #[test]
    fn missed_limits_join_one_escalation_other_causes_stand_alone() {
        assert_eq!(joining(Trigger::SlaOverdue), Joining::OpenOrMissedLimit);
        assert_eq!(joining(Trigger::ClassAOverdue), Joining::OpenOrMissedLimit);
        assert_eq!(joining(Trigger::UnresolvedAfterL1), Joining::Open);
        assert_eq!(joining(Trigger::RepeatComplaint), Joining::Own);
        assert_eq!(joining(Trigger::ThreateningCustomer), Joining::Own);
    }

    #[test]
    fn threatening_and_venting_customers_reach_manager_and_top_at_once() {
        let policy = p();
        for t in [Trigger::ThreateningCustomer, Trigger::VentingAnger] {
            assert_eq!(levels_for(&policy, t, None, None, 0), vec![(1, t), (2, t)]);
        }
    }

    #[test]
    fn risks_and_refusals_go_to_the_top_and_repeat_tells_both() {
        let policy = p();
        for t in [
            Trigger::RejectedAgain,
            Trigger::CannotSettle,
            Trigger::GroupRisk,
            Trigger::MediaRisk,
        ] {
            assert_eq!(levels_for(&policy, t, None, None, 0), vec![(2, t)]);
        }
        assert_eq!(
            levels_for(&policy, Trigger::RepeatComplaint, None, None, 0),
            vec![(1, Trigger::RepeatComplaint), (2, Trigger::RepeatComplaint)]
        );
        assert_eq!(
            levels_for(&policy, Trigger::CannotSettle, None, None, 7),
            vec![(2, Trigger::CannotSettle)]
        );
    }

    #[test]
    fn a_one_rung_ladder_never_doubles_a_level() {
        let mut policy = p();
        policy.escalation.ladder = vec!["general_manager".into()];
        assert_eq!(
            levels_for(&policy, Trigger::SlaOverdue, Some(Class::A), None, 0),
            vec![(1, Trigger::ClassAOverdue)]
        );
        assert_eq!(next_level(&policy, 1), None);
        assert_eq!(unresolved_raise_at(&policy, 1, Utc::now()), None);
    }

    #[test]
    fn roles_and_levels() {
        let policy = p();
        assert_eq!(top_level(&policy), 2);
        assert_eq!(role_at(&policy, 1), Some("department_manager"));
        assert_eq!(role_at(&policy, 2), Some("general_manager"));
        assert_eq!(role_at(&policy, 0), None);
        assert_eq!(role_at(&policy, 3), None);
        assert_eq!(next_level(&policy, 1), Some(2));
        assert!(is_final(&policy, 2));
        assert!(!is_final(&policy, 1));
    }

    #[test]
    fn timers_come_from_the_policy() {
        let policy = p();
        let t0 = Utc::now();
        assert_eq!(
            unresolved_raise_at(&policy, 1, t0),
            Some(t0 + chrono::Duration::hours(4))
        );
        assert_eq!(resend_at(&policy, t0), t0 + chrono::Duration::minutes(30));
        assert_eq!(acknowledge_by(&policy, t0), t0 + chrono::Duration::hours(2));
    }

    #[test]
    fn state_machine() {
        assert_eq!(acknowledge(State::Raised), Ok(State::Acknowledged));
        let err = acknowledge(State::Acknowledged).unwrap_err();
        assert_eq!(
            err.to_string(),
            "escalation is acknowledged, cannot acknowledge"
        );
        assert_eq!(decide(State::Raised), Ok(State::Decided));
        assert_eq!(decide(State::Acknowledged), Ok(State::Decided));
        assert!(decide(State::Decided).is_err());
        assert!(decide(State::Closed).is_err());
        assert!(decide(State::Superseded).is_err());
        for s in [
            State::Raised,
            State::Acknowledged,
            State::Decided,
            State::Superseded,
            State::Closed,
        ] {
            assert_eq!(State::parse(s.code()), Some(s));
        }
        assert_eq!(State::parse("nope"), None);
    }

    #[test]
    fn retry_delay_doubles_and_caps() {
        let i = StdDuration::from_millis(100);
        let m = StdDuration::from_secs(1);
        assert_eq!(retry_delay(i, m, 1), StdDuration::from_millis(100));
        assert_eq!(retry_delay(i, m, 2), StdDuration::from_millis(200));
        assert_eq!(retry_delay(i, m, 3), StdDuration::from_millis(400));
        assert_eq!(retry_delay(i, m, 5), m);
        assert_eq!(retry_delay(i, m, u32::MAX), m);
    }
}
