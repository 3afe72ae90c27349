//! The clocks of a complaint's time limits and when each one warns and goes overdue.
//!
//! DOMAIN §4: "Per complaint the clock runs for: acceptance, first feedback to the customer,
//! completion (8/24/48/48 h by class), the intermediate result, and the follow-up call ... The
//! system warns before a limit is hit (default: at 75 % of it)." DOMAIN §7/§9: late acceptance
//! is fined "per started day late".
//!
//! A [`LimitClock`] is a small state machine: it runs from `started_at` to `due_at`, warns once
//! at `warn_at`, goes overdue once (the acceptance clock once per started day late), and is
//! stopped — met, or no longer applicable — by the events of the handling. [`LimitClock::fire`]
//! is the only place emissions are decided, and it records what it emitted in the clock itself,
//! so storing the clock with the emitted events in one transaction makes each emission happen
//! exactly once however often the clock is looked at.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::classification::Class;
use crate::deadlines::{Promises, promises, warning_at};
use crate::policy::Policy;

/// Which limit a clock watches (DOMAIN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClockKind {
    /// Acceptance by the business department (DOMAIN §9: 24 h from intake).
    Acceptance,
    /// First feedback to the customer (DOMAIN §3, §9).
    FirstFeedback,
    /// Completion of the handling (DOMAIN §2: 8/24/48/48 h).
    Completion,
    /// The intermediate result when the complaint cannot be finished in its limit (DOMAIN §3).
    IntermediateResult,
    /// A follow-up call or visit (DOMAIN §6); one clock per revisit.
    Revisit,
    /// The customer's confirmation of a record taken unconfirmed (DOMAIN §9: "one still
    /// unconfirmed at its confirmation limit (default 1 h) is escalated to that manager" — the
    /// complaint centre's). Runs only for complaints received unconfirmed; routing waits for the
    /// confirmation, so until it comes nobody else is late for anything they could act on.
    Confirmation,
}

impl ClockKind {
    /// Every kind, in the order a complaint's clocks are shown.
    pub const ALL: [ClockKind; 6] = [
        ClockKind::Confirmation,
        ClockKind::Acceptance,
        ClockKind::FirstFeedback,
        ClockKind::Completion,
        ClockKind::IntermediateResult,
        ClockKind::Revisit,
    ];

    /// The stored name (`acceptance`, `first_feedback`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::Acceptance => "acceptance",
            ClockKind::FirstFeedback => "first_feedback",
            ClockKind::Completion => "completion",
            ClockKind::IntermediateResult => "intermediate_result",
            ClockKind::Revisit => "revisit",
            ClockKind::Confirmation => "confirmation",
        }
    }

    /// The kind stored as `s`, if any.
    pub fn parse(s: &str) -> Option<ClockKind> {
        ClockKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// DOMAIN §7: "Late acceptance: 100 yuan per day" — the one clock that goes overdue again
    /// for each further started day. Every other clock goes overdue once.
    pub fn per_day(self) -> bool {
        matches!(self, ClockKind::Acceptance)
    }

    /// Whether missing this limit (without an approved special reason) books an accountability
    /// record. DOMAIN §9 "One lateness fine per complaint": only the completion limit gives the
    /// class-D record, against the responsible person; late acceptance is fined per started day,
    /// against the acceptance owner; a missed revisit is charged to the revisit's owner. A missed
    /// first-feedback or intermediate-result limit is escalated but fined no further; nor is a
    /// missed confirmation, which waits on the customer and is the complaint centre's to chase
    /// (escalated to its manager).
    pub fn fined_when_missed(self) -> bool {
        matches!(
            self,
            ClockKind::Acceptance | ClockKind::Completion | ClockKind::Revisit
        )
    }

    /// Whether resolving the complaint ends this clock. DOMAIN §9 "Resolution needs feedback":
    /// "Resolution stops every clock except the revisits" — a resolved complaint is neither
    /// late for its first feedback nor for an intermediate result any more.
    pub fn stopped_by_resolution(self) -> bool {
        !matches!(self, ClockKind::Revisit)
    }
}

/// Where a clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClockState {
    /// Running, before its warning point.
    Running,
    /// Running, the warning emitted.
    Warned,
    /// The limit passed (an overdue emitted); the clock still waits to be met.
    Overdue,
    /// Met: the awaited step happened (in time or late; compare `met_at` with `due_at`).
    Met,
    /// Stopped without being met (closed, resolved before an intermediate result was needed).
    Stopped,
}

impl ClockState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockState::Running => "running",
            ClockState::Warned => "warned",
            ClockState::Overdue => "overdue",
            ClockState::Met => "met",
            ClockState::Stopped => "stopped",
        }
    }

    /// The state stored as `s`, if any.
    pub fn parse(s: &str) -> Option<ClockState> {
        [
            ClockState::Running,
            ClockState::Warned,
            ClockState::Overdue,
            ClockState::Met,
            ClockState::Stopped,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether the clock still waits for its step (and may still fire).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ClockState::Running | ClockState::Warned | ClockState::Overdue
        )
    }
}

/// What a clock emits when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emission {
    /// The warning share of the limit has elapsed (DOMAIN §4).
    Warning,
    /// The limit passed. `day` is the started day late for per-day clocks (1, 2, …), 0 for the
    /// others.
    Overdue { day: u32 },
}

/// The length of one "day late" for per-day clocks (DOMAIN §9: "each started day late beyond
/// it is one 100-yuan unit"). Counted in 24-hour periods from the due time, as
/// [`crate::penalty::late_acceptance_penalty`] counts them.
pub fn late_day() -> Duration {
    Duration::days(1)
}

/// The first instant of started day `n` (1-based) late after `due`: a limit is passed one
/// millisecond after it falls — met exactly at `due` is in time, as in
/// [`crate::penalty::late_acceptance_penalty`], where exactly 24 h late is one day and 24 h
/// and 1 ms is two.
pub fn day_late_starts(due: DateTime<Utc>, n: u32, day: Duration) -> DateTime<Utc> {
    let offset = day
        .checked_mul(i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX))
        .unwrap_or(Duration::MAX);
    due.checked_add_signed(offset)
        .and_then(|t| t.checked_add_signed(Duration::milliseconds(1)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Started days late at `now` for a limit due at `due` (0 while not passed).
pub fn days_late(due: DateTime<Utc>, now: DateTime<Utc>, day: Duration) -> u32 {
    let late_ms = (now - due).num_milliseconds();
    let day_ms = day.num_milliseconds().max(1);
    if late_ms < 1 {
        return 0;
    }
    u32::try_from((late_ms - 1) / day_ms + 1).unwrap_or(u32::MAX)
}

/// One clock of one complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitClock {
    pub kind: ClockKind,
    /// When the limit started running (intake, or the reopening for a restarted clock).
    pub started_at: DateTime<Utc>,
    /// When the limit falls.
    pub due_at: DateTime<Utc>,
    /// When the warning falls due (DOMAIN §4: `limits.warning_share` of the limit).
    pub warn_at: DateTime<Utc>,
    pub state: ClockState,
    /// When the warning was emitted.
    pub warned_at: Option<DateTime<Utc>>,
    /// Overdue events emitted in this run of the clock (per-day clocks: started days so far).
    pub overdue_days: u32,
    /// When the awaited step happened.
    pub met_at: Option<DateTime<Utc>>,
}

impl LimitClock {
    /// A running clock from `started_at` to `due_at`, warning at the policy's share.
    pub fn start(
        policy: &Policy,
        kind: ClockKind,
        started_at: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> Self {
        Self {
            kind,
            started_at,
            due_at,
            warn_at: warning_at(policy, started_at, due_at),
            state: ClockState::Running,
            warned_at: None,
            overdue_days: 0,
            met_at: None,
        }
    }

    /// When the scheduler must look at this clock next; `None` once it can emit nothing more.
    pub fn next_fire_at(&self, day: Duration) -> Option<DateTime<Utc>> {
        if !self.state.is_open() {
            None
        } else if self.warned_at.is_none() {
            Some(self.warn_at)
        } else if self.overdue_days == 0 {
            Some(day_late_starts(self.due_at, 1, day))
        } else if self.kind.per_day() {
            Some(day_late_starts(
                self.due_at,
                self.overdue_days.saturating_add(1),
                day,
            ))
        } else {
            None
        }
    }

    /// Emits what is due at `now` and records it in the clock. A clock looked at late (the
    /// monitor was down) catches up in order: the warning, then each overdue — so every clock
    /// that goes overdue has exactly one warning before it.
    pub fn fire(&mut self, now: DateTime<Utc>, day: Duration) -> Vec<Emission> {
        let mut out = Vec::new();
        if !self.state.is_open() {
            return out;
        }
        if self.warned_at.is_none() && now >= self.warn_at {
            self.warned_at = Some(now);
            self.state = ClockState::Warned;
            out.push(Emission::Warning);
        }
        let late = days_late(self.due_at, now, day);
        let owed = if self.kind.per_day() {
            late
        } else {
            late.min(1)
        };
        while self.overdue_days < owed {
            self.overdue_days += 1;
            out.push(Emission::Overdue {
                day: if self.kind.per_day() {
                    self.overdue_days
                } else {
                    0
                },
            });
        }
        if self.overdue_days > 0 {
            self.state = ClockState::Overdue;
        }
        out
    }

    /// The awaited step happened at `at` (accepted, feedback given, resolved…): the clock is met.
    /// A clock already stopped or met keeps its first outcome (redelivered or repeated events).
    pub fn meet(&mut self, at: DateTime<Utc>) {
        if self.state.is_open() {
            self.state = ClockState::Met;
            self.met_at = Some(at);
        }
    }

    /// The clock no longer applies (the complaint was closed, or resolved before an
    /// intermediate result was needed).
    pub fn stop(&mut self) {
        if self.state.is_open() {
            self.state = ClockState::Stopped;
        }
    }

    /// Whether it was met by its limit (DOMAIN §4: met in time means no accountability).
    pub fn met_in_time(&self) -> bool {
        self.state == ClockState::Met && self.met_at.is_some_and(|m| m <= self.due_at)
    }

    /// The limit moved (reclassification, an approved extension). The warning point follows
    /// from the same start; what was already emitted stays emitted, so a moved deadline never
    /// warns or goes overdue twice.
    pub fn reschedule(&mut self, policy: &Policy, due_at: DateTime<Utc>) {
        self.due_at = due_at;
        self.warn_at = warning_at(policy, self.started_at, due_at);
    }

    /// The clock runs again from `started_at` (a reopened complaint), as a fresh run: it may
    /// warn and go overdue again.
    pub fn restart(&mut self, policy: &Policy, started_at: DateTime<Utc>, due_at: DateTime<Utc>) {
        *self = LimitClock::start(policy, self.kind, started_at, due_at);
    }
}

/// The four clocks a complaint gets at intake (DOMAIN §4), from the promises the customer was
/// told, all running from `received_at` (limits count from intake, DOMAIN §2).
pub fn intake_clocks(policy: &Policy, received_at: DateTime<Utc>, p: &Promises) -> Vec<LimitClock> {
    [
        (ClockKind::Acceptance, p.acceptance_due),
        (ClockKind::FirstFeedback, p.first_feedback_due),
        (ClockKind::Completion, p.completion_due),
        (ClockKind::IntermediateResult, p.intermediate_due),
    ]
    .into_iter()
    .map(|(kind, due)| LimitClock::start(policy, kind, received_at, due))
    .collect()
}

/// The due time of `kind` for a `class` complaint whose limits run from `started_at`, from the
/// policy — used when an event carries no promises, and when a reopened complaint's completion
/// restarts (`None` for revisits, whose due time comes with the revisit). The confirmation limit
/// does not depend on the class.
pub fn policy_due(
    policy: &Policy,
    class: Class,
    kind: ClockKind,
    started_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let p = promises(policy, class, started_at);
    match kind {
        ClockKind::Acceptance => Some(p.acceptance_due),
        ClockKind::FirstFeedback => Some(p.first_feedback_due),
        ClockKind::Completion => Some(p.completion_due),
        ClockKind::IntermediateResult => Some(p.intermediate_due),
        ClockKind::Revisit => None,
        ClockKind::Confirmation => Some(confirmation_due(policy, started_at)),
    }
}

/// When a complaint received unconfirmed at `received_at` must be confirmed (DOMAIN §9,
/// `limits.confirmation`, default 1 h), counted like every other limit from intake — in working
/// time when the business-hours calendar is on.
pub fn confirmation_due(policy: &Policy, received_at: DateTime<Utc>) -> DateTime<Utc> {
    crate::calendar::add_business_time(&policy.calendar, received_at, policy.limits.confirmation)
}

/// The confirmation clock of a complaint, if it needs one: only a complaint received
/// unconfirmed waits for the customer's confirmation; one confirmed at receipt gets none.
pub fn confirmation_clock(
    policy: &Policy,
    received_at: DateTime<Utc>,
    confirmed: bool,
) -> Option<LimitClock> {
    (!confirmed).then(|| {
        LimitClock::start(
            policy,
            ClockKind::Confirmation,
            received_at,
            confirmation_due(policy, received_at),
        )
    })
}

/// Clocks a reopening restarts (DOMAIN §3: "The completion clock runs again"). The intermediate
/// result is due again at its share of the new completion limit: the customer waits again.
pub fn restarted_by_reopening(kind: ClockKind) -> bool {
    matches!(kind, ClockKind::Completion | ClockKind::IntermediateResult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lateness_fine_per_complaint_and_resolution_stops_all_but_revisits() {
        use ClockKind::*;
        let fined: Vec<_> = ClockKind::ALL
            .into_iter()
            .filter(|k| k.fined_when_missed())
            .collect();
        assert_eq!(fined, vec![Acceptance, Completion, Revisit]);
        let kept: Vec<_> = ClockKind::ALL
            .into_iter()
            .filter(|k| !k.stopped_by_resolution())
            .collect();
        assert_eq!(kept, vec![Revisit]);
    }

    #[test]
    fn every_kind_round_trips_through_its_stored_name() {
        for k in ClockKind::ALL {
            assert_eq!(ClockKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(
            ClockKind::parse("confirmation"),
            Some(ClockKind::Confirmation)
        );
    }

    #[test]
    fn only_an_unconfirmed_complaint_gets_a_confirmation_clock_due_at_its_limit() {
        let p = Policy::default();
        let received = t("2024-05-01T09:00:00Z");
        assert_eq!(confirmation_clock(&p, received, true), None);
        let c = confirmation_clock(&p, received, false).expect("unconfirmed: a clock");
        assert_eq!(c.kind, ClockKind::Confirmation);
        assert_eq!(c.started_at, received);
        // DOMAIN §9: default 1 h; warned at the policy's share (75 %).
        assert_eq!(c.due_at, t("2024-05-01T10:00:00Z"));
        assert_eq!(c.warn_at, t("2024-05-01T09:45:00Z"));
        assert_eq!(
            policy_due(&p, Class::A, ClockKind::Confirmation, received),
            Some(c.due_at)
        );
        assert!(!ClockKind::Confirmation.fined_when_missed());
        assert!(ClockKind::Confirmation.stopped_by_resolution());
        assert!(!ClockKind::Confirmation.per_day());
        assert!(!restarted_by_reopening(ClockKind::Confirmation));
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn completion_a() -> (Policy, LimitClock) {
        let p = Policy::default();
        let start = t("2024-05-01T00:00:00Z");
        let c = LimitClock::start(&p, ClockKind::Completion, start, start + Duration::hours(8));
        (p, c)
    }

    #[test]
    fn warns_at_the_share_then_goes_overdue_once() {
        let (_, mut c) = completion_a();
        let day = late_day();
        assert_eq!(c.warn_at, t("2024-05-01T06:00:00Z"));
        assert_eq!(c.next_fire_at(day), Some(c.warn_at));
        assert!(c.fire(t("2024-05-01T05:59:59Z"), day).is_empty());
        assert_eq!(
            c.fire(t("2024-05-01T06:00:00Z"), day),
            vec![Emission::Warning]
        );
        assert_eq!(c.state, ClockState::Warned);
        assert!(c.fire(t("2024-05-01T07:00:00Z"), day).is_empty());
        // Exactly at the limit is still in time.
        assert!(c.fire(t("2024-05-01T08:00:00Z"), day).is_empty());
        assert_eq!(c.next_fire_at(day), Some(t("2024-05-01T08:00:00.001Z")));
        assert_eq!(
            c.fire(t("2024-05-01T08:00:00.001Z"), day),
            vec![Emission::Overdue { day: 0 }]
        );
        assert_eq!(c.state, ClockState::Overdue);
        assert_eq!(c.next_fire_at(day), None);
        assert!(c.fire(t("2024-05-09T00:00:00Z"), day).is_empty());
    }

    #[test]
    fn a_late_look_catches_up_in_order() {
        let (_, mut c) = completion_a();
        assert_eq!(
            c.fire(t("2024-05-02T00:00:00Z"), late_day()),
            vec![Emission::Warning, Emission::Overdue { day: 0 }]
        );
    }

    #[test]
    fn late_acceptance_one_overdue_per_started_day() {
        let p = Policy::default();
        let start = t("2024-05-01T00:00:00Z");
        let due = start + Duration::hours(24);
        let day = late_day();
        let mut c = LimitClock::start(&p, ClockKind::Acceptance, start, due);
        c.fire(t("2024-05-01T18:00:00Z"), day);
        assert_eq!(
            c.fire(due + Duration::milliseconds(1), day),
            vec![Emission::Overdue { day: 1 }]
        );
        // Exactly 24 h late is still day 1; one millisecond more starts day 2.
        assert!(c.fire(due + Duration::hours(24), day).is_empty());
        assert_eq!(
            c.next_fire_at(day),
            Some(due + Duration::milliseconds(86_400_001))
        );
        assert_eq!(
            c.fire(due + Duration::milliseconds(86_400_001), day),
            vec![Emission::Overdue { day: 2 }]
        );
        // Down for two days: both missed days are emitted, numbered.
        assert_eq!(
            c.fire(due + Duration::hours(80), day),
            vec![Emission::Overdue { day: 3 }, Emission::Overdue { day: 4 }]
        );
        c.meet(due + Duration::hours(81));
        assert_eq!(c.state, ClockState::Met);
        assert!(!c.met_in_time());
        assert_eq!(c.next_fire_at(day), None);
    }

    #[test]
    fn days_late_agrees_with_the_late_acceptance_fine() {
        let p = Policy::default();
        let due = t("2024-05-02T00:00:00Z");
        for late_ms in [0, 1, 3_600_000, 86_400_000, 86_400_001, 3 * 86_400_000 + 5] {
            let at = due + Duration::milliseconds(late_ms);
            let (days, _) = crate::penalty::late_acceptance_penalty(&p, at, due);
            assert_eq!(days_late(due, at, late_day()), days, "{late_ms} ms");
        }
        // A tiny day for tests of the rule itself.
        assert_eq!(
            days_late(due, due + Duration::seconds(5), Duration::seconds(2)),
            3
        );
    }

    #[test]
    fn met_before_due_is_in_time_and_stops_firing() {
        let (_, mut c) = completion_a();
        c.meet(t("2024-05-01T07:59:00Z"));
        assert!(c.met_in_time());
        assert_eq!(c.next_fire_at(late_day()), None);
        assert!(c.fire(t("2024-05-02T00:00:00Z"), late_day()).is_empty());
        // A later stop does not overwrite the outcome.
        c.stop();
        assert_eq!(c.state, ClockState::Met);
    }

    #[test]
    fn reclassification_moves_the_deadline_without_emitting_twice() {
        let (p, mut c) = completion_a();
        let day = late_day();
        // C → A: 48 h became 8 h. The other way round here: A → C, later limit.
        c.fire(t("2024-05-01T06:30:00Z"), day);
        c.reschedule(&p, t("2024-05-03T00:00:00Z"));
        assert_eq!(c.warn_at, t("2024-05-02T12:00:00Z"));
        // Already warned: the next look is the new due time, not a second warning.
        assert_eq!(c.next_fire_at(day), Some(t("2024-05-03T00:00:00.001Z")));
        assert_eq!(
            c.fire(t("2024-05-03T01:00:00Z"), day),
            vec![Emission::Overdue { day: 0 }]
        );
    }

    #[test]
    fn reopening_restarts_a_fresh_run() {
        let (p, mut c) = completion_a();
        let day = late_day();
        c.fire(t("2024-05-01T09:00:00Z"), day);
        c.meet(t("2024-05-01T10:00:00Z"));
        let reopened = t("2024-05-04T00:00:00Z");
        let due = policy_due(&p, Class::A, ClockKind::Completion, reopened).unwrap();
        c.restart(&p, reopened, due);
        assert_eq!(c.state, ClockState::Running);
        assert_eq!(c.due_at, t("2024-05-04T08:00:00Z"));
        assert_eq!(c.next_fire_at(day), Some(t("2024-05-04T06:00:00Z")));
        assert_eq!(
            c.fire(t("2024-05-04T09:00:00Z"), day),
            vec![Emission::Warning, Emission::Overdue { day: 0 }]
        );
        assert!(restarted_by_reopening(ClockKind::Completion));
        assert!(!restarted_by_reopening(ClockKind::Acceptance));
    }

    #[test]
    fn intake_clocks_follow_the_promises() {
        let p = Policy::default();
        let at = t("2024-05-01T09:00:00+08:00");
        let promised = promises(&p, Class::B, at);
        let clocks = intake_clocks(&p, at, &promised);
        assert_eq!(clocks.len(), 4);
        assert_eq!(clocks[2].kind, ClockKind::Completion);
        assert_eq!(clocks[2].due_at, t("2024-05-02T09:00:00+08:00"));
        assert_eq!(clocks[2].warn_at, t("2024-05-02T03:00:00+08:00"));
        assert!(clocks.iter().all(|c| c.state == ClockState::Running));
        for k in ClockKind::ALL {
            assert_eq!(ClockKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ClockState::parse("warned"), Some(ClockState::Warned));
        assert_eq!(policy_due(&p, Class::B, ClockKind::Revisit, at), None);
    }

    #[test]
    fn a_limit_of_zero_warns_and_falls_at_once() {
        let p = Policy::default();
        let at = t("2024-05-01T00:00:00Z");
        let mut c = LimitClock::start(&p, ClockKind::Revisit, at, at);
        assert_eq!(c.warn_at, at);
        assert_eq!(
            c.fire(at + Duration::seconds(1), late_day()),
            vec![Emission::Warning, Emission::Overdue { day: 0 }]
        );
    }
}
