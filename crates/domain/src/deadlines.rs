//! The time limits a complaint runs against, computed once from the policy at intake.
//!
//! DOMAIN §4: "Per complaint the clock runs for: acceptance, first feedback to the customer,
//! completion (8/24/48/48 h by class), the intermediate result, and the follow-up call."
//! DOMAIN §1: the customer "is told ... the expected time limit **and the reason for it**" —
//! [`explain`] words it. Every limit is counted from intake (`received_at`), not from
//! acceptance: a late acceptance is fined (DOMAIN §7) but must not buy the handler more time.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{add_business_time, business_time_between};
use crate::classification::Class;
use crate::duration::describe;
use crate::policy::{FeedbackLimit, Policy};

/// The deadlines promised for one complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promises {
    /// When the acceptance owner must have accepted it (DOMAIN §9: 24 h).
    pub acceptance_due: DateTime<Utc>,
    /// When the customer must have had first feedback (DOMAIN §9: the earlier of the feedback
    /// limit and the completion limit).
    pub first_feedback_due: DateTime<Utc>,
    /// When it must be completed (DOMAIN §2).
    pub completion_due: DateTime<Utc>,
    /// When an intermediate result is due if it is not complete by then (DOMAIN §3).
    pub intermediate_due: DateTime<Utc>,
}

/// The deadlines of a `class` complaint received at `received_at`, all from `policy`.
///
/// DOMAIN §9: "First feedback due = the earlier of the feedback limit (same day for C/D, 3 days
/// for A/B) and the completion limit ... 'Same day' means by the end of the business day of
/// acceptance."
///
/// Limits count working time when the policy's calendar says so ([`crate::calendar`], ADR 0015);
/// "same day" keeps its meaning either way.
pub fn promises(policy: &Policy, class: Class, received_at: DateTime<Utc>) -> Promises {
    let cal = &policy.calendar;
    let completion = policy.completion_limit(class);
    let completion_due = add_business_time(cal, received_at, completion);
    let feedback_due = match policy.feedback_limit(class) {
        FeedbackLimit::SameDay => same_day_due(policy, received_at),
        FeedbackLimit::Within(limit) => add_business_time(cal, received_at, limit),
    };
    Promises {
        acceptance_due: add_business_time(cal, received_at, policy.limits.acceptance),
        first_feedback_due: feedback_due.min(completion_due),
        completion_due,
        intermediate_due: add_business_time(
            cal,
            received_at,
            share_of(completion, policy.limits.intermediate_at()),
        ),
    }
}

/// The business day `at` belongs to: its local date, or the next day when `at` is at or after
/// the business day end. At exactly the end the day is over — a deadline equal to the moment of
/// receipt could never be met.
pub fn business_date(policy: &Policy, at: DateTime<Utc>) -> NaiveDate {
    let calendar = &policy.calendar;
    let local = at.with_timezone(&calendar.timezone);
    let date = local.date_naive();
    if local.time() >= calendar.business_day_end {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    }
}

/// The end of business day `date`, as an instant.
pub fn business_day_end(policy: &Policy, date: NaiveDate) -> DateTime<Utc> {
    let calendar = &policy.calendar;
    let local = date.and_time(calendar.business_day_end);
    let offset = Duration::seconds(i64::from(calendar.timezone.local_minus_utc()));
    (local - offset).and_utc()
}

/// "The same day" (DOMAIN §3, §9): by the end of the business day `at` belongs to.
pub fn same_day_due(policy: &Policy, at: DateTime<Utc>) -> DateTime<Utc> {
    business_day_end(policy, business_date(policy, at))
}

/// By the end of the business day `days` days after the one `at` belongs to — DOMAIN §6's
/// "the day after acceptance" is `days_after_due(policy, accepted_at, 1)`.
pub fn days_after_due(policy: &Policy, at: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let date = business_date(policy, at);
    let date = date
        .checked_add_days(chrono::Days::new(u64::from(days)))
        .unwrap_or(date);
    business_day_end(policy, date)
}

/// When to warn that the limit running from `started` to `due` is close (DOMAIN §4: "warns
/// before a limit is hit (default: at 75 % of it)"). With business hours on, the share is of
/// the working time between the two, counted on in working time.
pub fn warning_at(policy: &Policy, started: DateTime<Utc>, due: DateTime<Utc>) -> DateTime<Utc> {
    if due <= started {
        return due;
    }
    let cal = &policy.calendar;
    let limit = business_time_between(cal, started, due);
    add_business_time(cal, started, share_of(limit, policy.limits.warning_share)).min(due)
}

/// The time limit and its reason in words, for the customer (DOMAIN §1: "the expected time
/// limit and the reason for it"), e.g. "class B (serious complaint): completion within 24 hours,
/// first feedback within 24 hours".
pub fn explain(policy: &Policy, class: Class) -> String {
    let completion = policy.completion_limit(class);
    let feedback = match policy.feedback_limit(class) {
        FeedbackLimit::Within(limit) if limit < completion => {
            format!("first feedback within {}", limit_in_words(limit))
        }
        FeedbackLimit::Within(_) => format!("first feedback within {}", limit_in_words(completion)),
        FeedbackLimit::SameDay => {
            let end = policy.calendar.business_day_end.format("%H:%M");
            format!(
                "first feedback the same day, by {end} (by {end} the next day if received after {end})"
            )
        }
    };
    format!(
        "class {} ({} complaint): completion within {}, {feedback}",
        class,
        class.name(),
        limit_in_words(completion)
    )
}

/// Limits up to two days in hours, as the sources write them ("24小时", "48小时"); longer ones
/// in days and hours ("3 days").
fn limit_in_words(d: Duration) -> String {
    let whole_hours = d.num_milliseconds() % 3_600_000 == 0;
    if whole_hours && d > Duration::zero() && d <= Duration::hours(48) {
        let hours = d.num_hours();
        format!("{hours} {}", if hours == 1 { "hour" } else { "hours" })
    } else {
        describe(d)
    }
}

/// `share` of `d`, to the millisecond (rounded half away from zero).
fn share_of(d: Duration, share: f64) -> Duration {
    // The `as` cast saturates; shares are validated to lie in (0, 1), so the result fits.
    Duration::milliseconds((d.num_milliseconds() as f64 * share).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn class_c_received_before_and_after_business_day_end() {
        let p = Policy::default();
        let early = promises(&p, Class::C, t("2024-05-01T17:59:00+08:00"));
        assert_eq!(early.first_feedback_due, t("2024-05-01T18:00:00+08:00"));
        assert_eq!(early.completion_due, t("2024-05-03T17:59:00+08:00"));
        assert_eq!(early.acceptance_due, t("2024-05-02T17:59:00+08:00"));
        assert_eq!(early.intermediate_due, t("2024-05-03T05:59:00+08:00"));

        let late = promises(&p, Class::C, t("2024-05-01T18:01:00+08:00"));
        assert_eq!(late.first_feedback_due, t("2024-05-02T18:00:00+08:00"));

        let exactly = promises(&p, Class::C, t("2024-05-01T18:00:00+08:00"));
        assert_eq!(exactly.first_feedback_due, t("2024-05-02T18:00:00+08:00"));
    }

    #[test]
    fn local_date_not_utc_date_decides_the_business_day() {
        // 01:30 local on 2 May is still 1 May in UTC.
        let p = Policy::default();
        let due = same_day_due(&p, t("2024-05-02T01:30:00+08:00"));
        assert_eq!(due, t("2024-05-02T18:00:00+08:00"));
        // Year end rolls over.
        let due = same_day_due(&p, t("2024-12-31T19:00:00+08:00"));
        assert_eq!(due, t("2025-01-01T18:00:00+08:00"));
    }

    #[test]
    fn class_a_feedback_is_capped_by_its_completion() {
        let p = Policy::default();
        let received = t("2024-05-01T09:00:00+08:00");
        let a = promises(&p, Class::A, received);
        assert_eq!(a.completion_due, t("2024-05-01T17:00:00+08:00"));
        assert_eq!(a.first_feedback_due, a.completion_due);
        // DOMAIN §9: unset, the intermediate result is due at the completion warning point.
        assert_eq!(a.intermediate_due, t("2024-05-01T15:00:00+08:00"));
        let mut earlier = p.clone();
        earlier.limits.warning_share = 0.5;
        let a = promises(&earlier, Class::A, received);
        assert_eq!(a.intermediate_due, t("2024-05-01T13:00:00+08:00"));
        earlier.limits.intermediate_share = Some(0.25);
        let a = promises(&earlier, Class::A, received);
        assert_eq!(a.intermediate_due, t("2024-05-01T11:00:00+08:00"));

        let b = promises(&p, Class::B, received);
        assert_eq!(b.completion_due, t("2024-05-02T09:00:00+08:00"));
        assert_eq!(b.first_feedback_due, b.completion_due);
    }

    #[test]
    fn same_day_feedback_is_capped_by_completion_too() {
        let mut p = Policy::default();
        p.limits.completion.c = Duration::hours(2);
        let c = promises(&p, Class::C, t("2024-05-01T09:00:00+08:00"));
        assert_eq!(c.first_feedback_due, t("2024-05-01T11:00:00+08:00"));
    }

    #[test]
    fn d_defaults_as_c() {
        let p = Policy::default();
        let at = t("2024-05-01T10:00:00+08:00");
        let c = promises(&p, Class::C, at);
        let d = promises(&p, Class::D, at);
        assert_eq!(c, d);
    }

    #[test]
    fn everything_follows_the_policy() {
        let p = Policy::from_toml_str(
            r#"
            [calendar]
            timezone = "+00:00"
            business_day_end = "17:00"
            [limits]
            acceptance = "2h"
            intermediate_share = 0.25
            [limits.first_feedback]
            C = "4h"
            "#,
        )
        .unwrap();
        let received = t("2024-05-01T16:30:00Z");
        let c = promises(&p, Class::C, received);
        assert_eq!(c.acceptance_due, t("2024-05-01T18:30:00Z"));
        assert_eq!(c.first_feedback_due, t("2024-05-01T20:30:00Z"));
        assert_eq!(c.intermediate_due, t("2024-05-02T04:30:00Z"));
        assert_eq!(same_day_due(&p, received), t("2024-05-01T17:00:00Z"));
    }

    #[test]
    fn revisit_the_day_after_acceptance() {
        let p = Policy::default();
        assert_eq!(
            days_after_due(&p, t("2024-05-01T10:00:00+08:00"), 1),
            t("2024-05-02T18:00:00+08:00")
        );
        assert_eq!(
            days_after_due(&p, t("2024-05-01T19:00:00+08:00"), 1),
            t("2024-05-03T18:00:00+08:00")
        );
    }

    #[test]
    fn warning_at_three_quarters() {
        let p = Policy::default();
        let start = t("2024-05-01T00:00:00Z");
        assert_eq!(
            warning_at(&p, start, start + Duration::hours(8)),
            t("2024-05-01T06:00:00Z")
        );
        assert_eq!(warning_at(&p, start, start), start);
    }

    #[test]
    fn business_hours_move_promises_past_weekend_and_holiday() {
        let mut p = Policy::default();
        p.calendar.business_hours = true;
        p.calendar.holidays = vec!["2026-09-28".parse().unwrap()];
        p.limits.completion.a = Duration::hours(2);
        // Friday 17:00, Monday a holiday: one hour Friday, one hour Tuesday.
        let a = promises(&p, Class::A, t("2026-09-25T17:00:00+08:00"));
        assert_eq!(a.completion_due, t("2026-09-29T10:00:00+08:00"));
        assert_eq!(a.intermediate_due, t("2026-09-29T09:30:00+08:00"));
        assert_eq!(a.first_feedback_due, a.completion_due);
        // 24 working hours of acceptance: Fri 1 h, Tue 9 h, Wed 9 h, Thu 5 h.
        assert_eq!(a.acceptance_due, t("2026-10-01T14:00:00+08:00"));
        // "Same day" is unchanged by the calendar.
        let c = promises(&p, Class::C, t("2026-09-25T17:00:00+08:00"));
        assert_eq!(c.first_feedback_due, t("2026-09-25T18:00:00+08:00"));
        // The warning falls at 75 % of the working time: 1.5 h after Friday 17:00.
        assert_eq!(
            warning_at(&p, t("2026-09-25T17:00:00+08:00"), a.completion_due),
            t("2026-09-29T09:30:00+08:00")
        );
    }

    #[test]
    fn business_hours_off_is_the_wall_clock() {
        let p = Policy::default();
        let at = t("2026-09-25T17:00:00+08:00");
        let b = promises(&p, Class::B, at);
        assert_eq!(b.completion_due, at + Duration::hours(24));
        assert_eq!(b.acceptance_due, at + Duration::hours(24));
        assert_eq!(b.intermediate_due, at + Duration::hours(18));
        assert_eq!(
            warning_at(&p, at, at + Duration::hours(2)),
            at + Duration::minutes(90)
        );
    }

    #[test]
    fn explains_limit_and_reason() {
        let p = Policy::default();
        assert_eq!(
            explain(&p, Class::B),
            "class B (serious complaint): completion within 24 hours, first feedback within 24 hours"
        );
        assert_eq!(
            explain(&p, Class::A),
            "class A (major complaint): completion within 8 hours, first feedback within 8 hours"
        );
        assert_eq!(
            explain(&p, Class::C),
            "class C (general complaint): completion within 48 hours, first feedback the same day, \
             by 18:00 (by 18:00 the next day if received after 18:00)"
        );
        let mut longer = Policy::default();
        longer.limits.completion.b = Duration::days(5);
        assert!(explain(&longer, Class::B).ends_with("first feedback within 3 days"));
    }
}
