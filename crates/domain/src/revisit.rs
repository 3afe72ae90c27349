//! Revisit plans (回访, DOMAIN §6): which follow-up calls a complaint needs, when each is due,
//! and when an unreached customer is tried again. Pure functions of the [`Policy`] and the facts
//! the revisit service learned from events; the service stores what they return.
//!
//! DOMAIN §6:
//! - "General complaints: the centre phones the customer **the day after acceptance**";
//! - "Every complainant is revisited **within three days, 100 %**";
//! - "After on-site service, a phone follow-up **within one week**";
//! - "While the customer waits for a result, timely revisits".
//!
//! Each planned revisit is identified by `(kind, sequence)` so that planning the same facts twice
//! yields the same plan, and a store can keep one row per complaint, kind and sequence.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::classification::Class;
use crate::deadlines::days_after_due;
use crate::policy::Policy;

/// The occasion of a revisit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevisitKind {
    /// "the day after acceptance" (general complaints).
    DayAfterAcceptance,
    /// "within three days, 100 %" of resolution, for every complainant.
    AfterResolution,
    /// "within one week" after on-site service.
    AfterOnSiteService,
    /// While the customer waits beyond the promised completion time.
    WhileWaiting,
}

impl RevisitKind {
    /// Every kind, in the order of [`RevisitKind::as_str`]'s table.
    pub const ALL: [RevisitKind; 4] = [
        RevisitKind::DayAfterAcceptance,
        RevisitKind::AfterResolution,
        RevisitKind::AfterOnSiteService,
        RevisitKind::WhileWaiting,
    ];

    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RevisitKind::DayAfterAcceptance => "day_after_acceptance",
            RevisitKind::AfterResolution => "after_resolution",
            RevisitKind::AfterOnSiteService => "after_onsite_service",
            RevisitKind::WhileWaiting => "while_waiting",
        }
    }

    /// The kind with this stored name.
    pub fn parse(raw: &str) -> Option<RevisitKind> {
        RevisitKind::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// What the revisit service knows about a complaint, from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComplaintFacts {
    /// The class, once `complaint.received` (or a reclassification) told it.
    pub class: Option<Class>,
    /// When the business department accepted it.
    pub accepted_at: Option<DateTime<Utc>>,
    /// How many times it was resolved (a reopened complaint is resolved again), and when last.
    pub resolutions: u32,
    /// When it was last resolved; `None` while it is open.
    pub resolved_at: Option<DateTime<Utc>>,
    /// How many on-site services were recorded, and when the last one was made.
    pub on_site_services: u32,
    /// When the last on-site service was made.
    pub on_site_at: Option<DateTime<Utc>>,
    /// The promised completion time; `None` until known.
    pub completion_due: Option<DateTime<Utc>>,
    /// Closed for good: the customer no longer waits for anything.
    pub closed: bool,
}

/// One revisit the facts call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// Its occasion.
    pub kind: RevisitKind,
    /// 1 for the first revisit of this kind on the complaint, then 2, 3… (a second resolution
    /// after a reopening, each period of waiting).
    pub sequence: u32,
    /// By when it must be made.
    pub due_at: DateTime<Utc>,
}

/// Whether `class` is a "general complaint" for the next-day call (DOMAIN §6; §9: D as C).
pub fn is_general(policy: &Policy, class: Class) -> bool {
    policy.revisit.general_classes.contains(&class)
}

/// Every revisit the facts call for at `now`. Planning is idempotent: the same facts give the
/// same `(kind, sequence, due_at)` triples, so a store keeps each once.
///
/// - Day after acceptance: general classes only, by the end of the business day
///   `general_after_days` after acceptance (`deadlines::days_after_due`).
/// - After resolution: for the latest resolution, `every_complainant_within` after it.
/// - After on-site service: for the latest one, `after_on_site_within` after it.
/// - While waiting: see [`waiting`].
pub fn plan(policy: &Policy, facts: &ComplaintFacts, now: DateTime<Utc>) -> Vec<Planned> {
    let r = &policy.revisit;
    let mut out = Vec::new();
    if let (Some(class), Some(accepted_at)) = (facts.class, facts.accepted_at)
        && is_general(policy, class)
    {
        out.push(Planned {
            kind: RevisitKind::DayAfterAcceptance,
            sequence: 1,
            due_at: days_after_due(policy, accepted_at, r.general_after_days),
        });
    }
    if let Some(resolved_at) = facts.resolved_at {
        out.push(Planned {
            kind: RevisitKind::AfterResolution,
            sequence: facts.resolutions.max(1),
            due_at: add(resolved_at, r.every_complainant_within),
        });
    }
    if let Some(served_at) = facts.on_site_at {
        out.push(Planned {
            kind: RevisitKind::AfterOnSiteService,
            sequence: facts.on_site_services.max(1),
            due_at: add(served_at, r.after_on_site_within),
        });
    }
    if let Some(w) = waiting(policy, facts, now) {
        out.push(w);
    }
    out
}

/// DOMAIN §6: "While the customer waits for a result, timely revisits" — once the promised
/// completion time has passed and the complaint is neither resolved nor closed, one revisit per
/// `waiting_every` period: the k-th period starts at `completion_due + (k-1)·every` and its
/// revisit is due at its end. Only the current period's revisit is returned: a service that was
/// down for days plans one call now, not a backlog of calls already too late to make.
pub fn waiting(policy: &Policy, facts: &ComplaintFacts, now: DateTime<Utc>) -> Option<Planned> {
    let due = facts.completion_due?;
    if facts.resolved_at.is_some() || facts.closed || now < due {
        return None;
    }
    let every = policy.revisit.waiting_every.num_milliseconds().max(1);
    let elapsed = (now - due).num_milliseconds();
    let period = u32::try_from(elapsed / every).unwrap_or(u32::MAX - 1) + 1;
    let due_at = add(
        due,
        Duration::milliseconds(every.saturating_mul(i64::from(period))),
    );
    Some(Planned {
        kind: RevisitKind::WhileWaiting,
        sequence: period,
        due_at,
    })
}

/// After an attempt that did not reach the customer: when to try again, or `None` when the
/// policy's attempts are used up (the customer is then listed as never reached).
///
/// `attempts_made` counts the failed attempts including the one just made. Attempts are
/// `unreached_spacing` apart so that each falls at a different time of day (DOMAIN §6 practice:
/// a customer out at work in the morning may answer at noon or in the evening). A spacing that
/// is a whole number of days would call at the same hour each time, so it is shifted by a
/// quarter of a day to keep the times of day apart.
pub fn next_attempt(
    policy: &Policy,
    attempts_made: u32,
    attempted_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let r = &policy.revisit;
    if attempts_made >= r.unreached_attempts {
        return None;
    }
    let mut spacing = r.unreached_spacing;
    if spacing.num_seconds() % 86_400 == 0 {
        spacing += Duration::hours(6);
    }
    Some(add(attempted_at, spacing))
}

/// Whether a revisit due at `due_at` and made at `made_at` was on time (DOMAIN §6's revisit
/// rate counts "revisits done on time ÷ due").
pub fn on_time(due_at: DateTime<Utc>, made_at: DateTime<Utc>) -> bool {
    made_at <= due_at
}

/// The revisit rate in basis points (10000 = 100 %); 10000 when nothing was due.
pub fn rate_bp(on_time: u32, due: u32) -> u32 {
    if due == 0 {
        return 10_000;
    }
    let bp = u64::from(on_time.min(due)) * 10_000 / u64::from(due);
    u32::try_from(bp).unwrap_or(10_000)
}

fn add(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    at.checked_add_signed(d).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Timelike;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn kinds(p: &[Planned]) -> Vec<(RevisitKind, u32)> {
        p.iter().map(|p| (p.kind, p.sequence)).collect()
    }

    #[test]
    fn general_complaint_is_called_the_day_after_acceptance_by_business_day_end() {
        let policy = Policy::default();
        for class in [Class::C, Class::D] {
            let facts = ComplaintFacts {
                class: Some(class),
                accepted_at: Some(t("2025-01-14T10:00:00+08:00")),
                ..Default::default()
            };
            let p = plan(&policy, &facts, t("2025-01-14T10:00:00+08:00"));
            assert_eq!(kinds(&p), vec![(RevisitKind::DayAfterAcceptance, 1)]);
            assert_eq!(p[0].due_at, t("2025-01-15T18:00:00+08:00"));
        }
        // Accepted after the business day ended: that belongs to the next business day.
        let facts = ComplaintFacts {
            class: Some(Class::C),
            accepted_at: Some(t("2025-01-14T19:00:00+08:00")),
            ..Default::default()
        };
        let p = plan(&policy, &facts, t("2025-01-14T19:00:00+08:00"));
        assert_eq!(p[0].due_at, t("2025-01-16T18:00:00+08:00"));
    }

    #[test]
    fn serious_complaints_get_no_next_day_call_unless_the_policy_says_so() {
        let mut policy = Policy::default();
        let facts = ComplaintFacts {
            class: Some(Class::A),
            accepted_at: Some(t("2025-01-14T10:00:00+08:00")),
            ..Default::default()
        };
        assert!(plan(&policy, &facts, t("2025-01-14T10:00:00+08:00")).is_empty());
        policy.revisit.general_classes = vec![Class::A];
        assert_eq!(
            plan(&policy, &facts, t("2025-01-14T10:00:00+08:00")).len(),
            1
        );
        // Unknown class: nothing yet.
        let unknown = ComplaintFacts {
            class: None,
            ..facts
        };
        assert!(plan(&policy, &unknown, t("2025-01-14T10:00:00+08:00")).is_empty());
    }

    #[test]
    fn every_resolution_gets_a_revisit_within_three_days() {
        let policy = Policy::default();
        let facts = ComplaintFacts {
            class: Some(Class::B),
            resolutions: 1,
            resolved_at: Some(t("2025-01-14T10:00:00Z")),
            ..Default::default()
        };
        let p = plan(&policy, &facts, t("2025-01-14T10:00:00Z"));
        assert_eq!(kinds(&p), vec![(RevisitKind::AfterResolution, 1)]);
        assert_eq!(p[0].due_at, t("2025-01-17T10:00:00Z"));
        // Reopened and resolved again: a second after-resolution revisit.
        let again = ComplaintFacts {
            resolutions: 2,
            resolved_at: Some(t("2025-01-20T10:00:00Z")),
            ..facts
        };
        let p = plan(&policy, &again, t("2025-01-20T10:00:00Z"));
        assert_eq!(kinds(&p), vec![(RevisitKind::AfterResolution, 2)]);
        assert_eq!(p[0].due_at, t("2025-01-23T10:00:00Z"));
    }

    #[test]
    fn on_site_service_gets_a_revisit_within_a_week() {
        let policy = Policy::default();
        let facts = ComplaintFacts {
            on_site_services: 1,
            on_site_at: Some(t("2025-01-14T10:00:00Z")),
            ..Default::default()
        };
        let p = plan(&policy, &facts, t("2025-01-14T10:00:00Z"));
        assert_eq!(kinds(&p), vec![(RevisitKind::AfterOnSiteService, 1)]);
        assert_eq!(p[0].due_at, t("2025-01-21T10:00:00Z"));
    }

    #[test]
    fn waiting_customer_is_revisited_every_period_after_the_promised_time() {
        let policy = Policy::default(); // every 1 day
        let due = t("2025-01-14T10:00:00Z");
        let facts = ComplaintFacts {
            completion_due: Some(due),
            ..Default::default()
        };
        assert_eq!(waiting(&policy, &facts, t("2025-01-14T09:59:59Z")), None);
        let first = waiting(&policy, &facts, due).unwrap();
        assert_eq!(
            (first.sequence, first.due_at),
            (1, t("2025-01-15T10:00:00Z"))
        );
        let still_first = waiting(&policy, &facts, t("2025-01-15T09:59:59Z")).unwrap();
        assert_eq!(still_first, first);
        let second = waiting(&policy, &facts, t("2025-01-15T10:00:00Z")).unwrap();
        assert_eq!(
            (second.sequence, second.due_at),
            (2, t("2025-01-16T10:00:00Z"))
        );
        // Down for a week: one call for the current period, not a backlog.
        let late = waiting(&policy, &facts, t("2025-01-21T11:00:00Z")).unwrap();
        assert_eq!(late.sequence, 8);
        // Resolved or closed: no longer waiting.
        let resolved = ComplaintFacts {
            resolved_at: Some(t("2025-01-15T00:00:00Z")),
            resolutions: 1,
            ..facts.clone()
        };
        assert_eq!(waiting(&policy, &resolved, t("2025-01-16T00:00:00Z")), None);
        let closed = ComplaintFacts {
            closed: true,
            ..facts
        };
        assert_eq!(waiting(&policy, &closed, t("2025-01-16T00:00:00Z")), None);
    }

    #[test]
    fn planning_twice_gives_the_same_plan() {
        let policy = Policy::default();
        let facts = ComplaintFacts {
            class: Some(Class::C),
            accepted_at: Some(t("2025-01-14T02:00:00Z")),
            completion_due: Some(t("2025-01-16T02:00:00Z")),
            ..Default::default()
        };
        let now = t("2025-01-16T05:00:00Z");
        assert_eq!(plan(&policy, &facts, now), plan(&policy, &facts, now));
        assert_eq!(
            kinds(&plan(&policy, &facts, now)),
            vec![
                (RevisitKind::DayAfterAcceptance, 1),
                (RevisitKind::WhileWaiting, 1)
            ]
        );
    }

    #[test]
    fn unreached_customer_is_retried_at_different_times_of_day_until_attempts_run_out() {
        let policy = Policy::default(); // 3 attempts, 2 h apart
        let first = t("2025-01-14T01:00:00Z");
        let second = next_attempt(&policy, 1, first).unwrap();
        let third = next_attempt(&policy, 2, second).unwrap();
        assert_eq!(second, t("2025-01-14T03:00:00Z"));
        assert_eq!(third, t("2025-01-14T05:00:00Z"));
        assert_eq!(next_attempt(&policy, 3, third), None);
        let hours = [first.hour(), second.hour(), third.hour()];
        assert!(hours[0] != hours[1] && hours[1] != hours[2] && hours[0] != hours[2]);

        let mut daily = Policy::default();
        daily.revisit.unreached_spacing = Duration::days(1);
        let next = next_attempt(&daily, 1, first).unwrap();
        assert_ne!(
            next.hour(),
            first.hour(),
            "a daily spacing would call at the same hour"
        );
    }

    #[test]
    fn rate_counts_on_time_against_due() {
        assert_eq!(rate_bp(0, 0), 10_000);
        assert_eq!(rate_bp(3, 4), 7_500);
        assert_eq!(rate_bp(1, 3), 3_333);
        assert!(on_time(
            t("2025-01-14T10:00:00Z"),
            t("2025-01-14T10:00:00Z")
        ));
        assert!(!on_time(
            t("2025-01-14T10:00:00Z"),
            t("2025-01-14T10:00:01Z")
        ));
    }

    #[test]
    fn kinds_round_trip_their_stored_names() {
        for k in RevisitKind::ALL {
            assert_eq!(RevisitKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(RevisitKind::parse("nope"), None);
    }
}
