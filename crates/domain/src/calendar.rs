//! Working time: how a limit becomes a due time when the policy counts business hours only.
//!
//! Issue 5: "A business-hours calendar with holidays is supported per policy (the anchors
//! Zammad, Zendesk and Znuny have it), off by default since the source documents count
//! wall-clock hours." DOMAIN §2 writes limits as hours ("8 h", "24 h"); with
//! `calendar.business_hours` off (the default) every function here is plain wall-clock
//! arithmetic, exactly what the rules did before. With it on, only the hours inside the working
//! window (`working_hours_start`..`working_hours_end`, local time at `calendar.timezone`) of a
//! working day count: a weekday in `working_days` that is not in `holidays`, or a date listed in
//! `workdays` (China's make-up workdays, 调休). See ADR 0015.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};

use crate::policy::Calendar;

/// How many local days a walk through the calendar may take before it gives up (ten years).
/// Validation guarantees working days exist, so this only bounds absurd limits.
const MAX_DAYS: u32 = 3_660;

/// Whether `date` (local) has working time.
pub fn is_working_day(calendar: &Calendar, date: NaiveDate) -> bool {
    if calendar.workdays.contains(&date) {
        return true;
    }
    calendar.working_days.contains(&date.weekday()) && !calendar.holidays.contains(&date)
}

/// When a limit of `limit` running from `start` falls due.
///
/// Wall clock when business hours are off. Otherwise the limit is consumed in working windows
/// only: a start outside working time counts from the next window's opening; a limit that ends
/// exactly at a window's close is due at the close (not the next opening). A zero or negative
/// limit is due at `start`.
pub fn add_business_time(
    calendar: &Calendar,
    start: DateTime<Utc>,
    limit: Duration,
) -> DateTime<Utc> {
    let wall = start
        .checked_add_signed(limit)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if !calendar.business_hours || limit <= Duration::zero() {
        return wall;
    }
    let mut left = limit;
    let mut cursor = to_local(calendar, start);
    for _ in 0..MAX_DAYS {
        let date = cursor.date();
        if let Some((open, close)) = window(calendar, date) {
            let from = cursor.max(open);
            if from < close {
                let available = close - from;
                if left <= available {
                    return to_utc(calendar, from + left);
                }
                left -= available;
            }
        }
        match date.succ_opt() {
            Some(next) => cursor = next.and_time(chrono::NaiveTime::MIN),
            None => break,
        }
    }
    DateTime::<Utc>::MAX_UTC
}

/// The working time between `a` and `b` (zero when `b` is not after `a`) — what a share of a
/// limit (the warning point) and "time left" are measured in. Wall clock when business hours
/// are off.
pub fn business_time_between(calendar: &Calendar, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
    if b <= a {
        return Duration::zero();
    }
    if !calendar.business_hours {
        return b - a;
    }
    let (from, to) = (to_local(calendar, a), to_local(calendar, b));
    let mut total = Duration::zero();
    let mut date = from.date();
    for _ in 0..MAX_DAYS {
        if date > to.date() {
            break;
        }
        if let Some((open, close)) = window(calendar, date) {
            let (s, e) = (from.max(open), to.min(close));
            if s < e {
                total += e - s;
            }
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    total
}

/// The working window of `date` (local), if it is a working day.
fn window(calendar: &Calendar, date: NaiveDate) -> Option<(NaiveDateTime, NaiveDateTime)> {
    is_working_day(calendar, date).then(|| {
        (
            date.and_time(calendar.working_hours_start),
            date.and_time(calendar.working_hours_end),
        )
    })
}

fn to_local(calendar: &Calendar, at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&calendar.timezone).naive_local()
}

fn to_utc(calendar: &Calendar, local: NaiveDateTime) -> DateTime<Utc> {
    let offset = Duration::seconds(i64::from(calendar.timezone.local_minus_utc()));
    (local - offset).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Mon–Fri 09:00–18:00 at +08:00; 2026-10-01 (a Thursday) and 2026-10-02 are holidays,
    /// Saturday 2026-10-10 is a make-up workday.
    fn on() -> Calendar {
        Calendar {
            business_hours: true,
            holidays: vec![d("2026-10-01"), d("2026-10-02")],
            workdays: vec![d("2026-10-10")],
            ..Calendar::default()
        }
    }

    #[test]
    fn off_is_the_wall_clock() {
        let c = Calendar::default();
        assert!(!c.business_hours);
        let start = t("2026-09-25T17:00:00+08:00"); // a Friday
        for h in [0, 1, 2, 8, 24, 48, 100] {
            let limit = Duration::hours(h) + Duration::milliseconds(7);
            assert_eq!(add_business_time(&c, start, limit), start + limit);
            assert_eq!(business_time_between(&c, start, start + limit), limit);
        }
        assert_eq!(
            business_time_between(&c, start, start - Duration::hours(1)),
            Duration::zero()
        );
    }

    #[test]
    fn across_a_weekend() {
        let c = on();
        // Friday 17:00 + 2 h: one hour on Friday, one on Monday.
        let due = add_business_time(&c, t("2026-09-25T17:00:00+08:00"), Duration::hours(2));
        assert_eq!(due, t("2026-09-28T10:00:00+08:00"));
        assert_eq!(
            business_time_between(&c, t("2026-09-25T17:00:00+08:00"), due),
            Duration::hours(2)
        );
        // 24 working hours from Friday 09:00: Fri 9 h, Mon 9 h, Tue 6 h.
        assert_eq!(
            add_business_time(&c, t("2026-09-25T09:00:00+08:00"), Duration::hours(24)),
            t("2026-09-29T15:00:00+08:00")
        );
    }

    #[test]
    fn across_a_holiday() {
        let c = on();
        // Wednesday 17:30 + 1 h: Thursday and Friday are holidays, then the weekend.
        let due = add_business_time(&c, t("2026-09-30T17:30:00+08:00"), Duration::hours(1));
        assert_eq!(due, t("2026-10-05T09:30:00+08:00"));
        assert_eq!(
            business_time_between(&c, t("2026-09-30T17:30:00+08:00"), due),
            Duration::hours(1)
        );
    }

    #[test]
    fn starting_outside_working_hours() {
        let c = on();
        // Before opening: counts from 09:00.
        assert_eq!(
            add_business_time(&c, t("2026-09-28T06:00:00+08:00"), Duration::hours(2)),
            t("2026-09-28T11:00:00+08:00")
        );
        // After closing: counts from the next morning.
        assert_eq!(
            add_business_time(&c, t("2026-09-28T20:00:00+08:00"), Duration::hours(2)),
            t("2026-09-29T11:00:00+08:00")
        );
        // Saturday: counts from Monday.
        assert_eq!(
            add_business_time(&c, t("2026-09-26T12:00:00+08:00"), Duration::minutes(30)),
            t("2026-09-28T09:30:00+08:00")
        );
        assert_eq!(
            business_time_between(
                &c,
                t("2026-09-26T12:00:00+08:00"),
                t("2026-09-27T23:00:00+08:00")
            ),
            Duration::zero()
        );
    }

    #[test]
    fn starting_on_a_holiday() {
        let c = on();
        assert_eq!(
            add_business_time(&c, t("2026-10-01T10:00:00+08:00"), Duration::hours(3)),
            t("2026-10-05T12:00:00+08:00")
        );
    }

    #[test]
    fn exact_boundaries() {
        let c = on();
        // Ending exactly at the close is due at the close, not the next opening.
        assert_eq!(
            add_business_time(&c, t("2026-09-25T17:00:00+08:00"), Duration::hours(1)),
            t("2026-09-25T18:00:00+08:00")
        );
        // Starting exactly at the close: nothing left that day.
        assert_eq!(
            add_business_time(&c, t("2026-09-25T18:00:00+08:00"), Duration::minutes(1)),
            t("2026-09-28T09:01:00+08:00")
        );
        // Starting exactly at the opening; a whole day is a whole window.
        assert_eq!(
            add_business_time(&c, t("2026-09-28T09:00:00+08:00"), Duration::hours(9)),
            t("2026-09-28T18:00:00+08:00")
        );
        // A zero limit is due at once.
        let sat = t("2026-09-26T12:00:00+08:00");
        assert_eq!(add_business_time(&c, sat, Duration::zero()), sat);
    }

    #[test]
    fn make_up_workday_counts() {
        let c = on();
        assert!(is_working_day(&c, d("2026-10-10")));
        assert!(!is_working_day(&c, d("2026-10-11")));
        // Friday 9 Oct 17:00 + 2 h: one hour Friday, one on the make-up Saturday.
        assert_eq!(
            add_business_time(&c, t("2026-10-09T17:00:00+08:00"), Duration::hours(2)),
            t("2026-10-10T10:00:00+08:00")
        );
    }

    #[test]
    fn read_from_the_policy_file_and_checked() {
        let p = crate::Policy::from_toml_str(
            r#"
            [calendar]
            business_hours = true
            working_days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
            holidays = ["2026-10-01"]
            workdays = ["2026-10-11"]
            "#,
        )
        .unwrap();
        assert!(is_working_day(&p.calendar, d("2026-10-03")));
        assert!(!is_working_day(&p.calendar, d("2026-10-01")));
        assert!(is_working_day(&p.calendar, d("2026-10-11")));
        let bad = crate::Policy::from_toml_str(
            r#"
            [calendar]
            business_hours = true
            working_hours_start = "18:00"
            working_hours_end = "09:00"
            working_days = []
            holidays = ["2026-10-01"]
            workdays = ["2026-10-01"]
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("working_hours_start"), "{bad}");
        assert!(
            bad.contains("both empty") || bad.contains("workdays"),
            "{bad}"
        );
        assert!(bad.contains("both in holidays and in workdays"), "{bad}");
    }

    #[test]
    fn local_time_not_utc_decides() {
        let c = on();
        // 00:30 UTC on Monday is 08:30 local: half an hour before opening.
        assert_eq!(
            add_business_time(&c, t("2026-09-28T00:30:00Z"), Duration::hours(1)),
            t("2026-09-28T10:00:00+08:00")
        );
    }
}
