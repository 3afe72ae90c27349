//! Accountability: fines per complaint, late acceptance, suspension and the complaint-rate table.
//!
//! DOMAIN §7 (source [002 slides 9-11]) with the choices of DOMAIN §9. All amounts and thresholds
//! come from `policy.penalties` and `policy.complaint_rate`; all arithmetic is on integers (fen,
//! basis points) so a boundary never depends on floating-point rounding.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::classification::Class;
use crate::money::Money;
use crate::policy::Policy;

/// The fine against the responsible person for one complaint of `class`.
///
/// Who carries a complaint's class fine (DOMAIN §7, §9 "Class fines need a named person"): the
/// responsible person the department named; nobody when nobody was named or the cause lies with
/// the customer. The handler is fined only when named — handling a complaint is not causing it.
pub fn class_fine_person(named_responsible: &str, customer_side_cause: bool) -> Option<&str> {
    (!customer_side_cause && !named_responsible.is_empty()).then_some(named_responsible)
}

/// DOMAIN §7: "D 50 yuan, C 100, B 200 (+ the loss), A 500 (+ administrative penalty + the
/// loss)" — the loss and the administrative penalty are decided by people and not included.
/// `repeat`: DOMAIN §9, "Doubling doubles the original class fine of the complaint that led to
/// the repeat complaint" — pass the original's class; the multiplier is
/// `penalties.repeat_multiplier` (2).
pub fn complaint_penalty(policy: &Policy, class: Class, repeat: bool) -> Money {
    let base = *policy.penalties.per_class.get(class);
    if repeat {
        base.saturating_mul(i64::from(policy.penalties.repeat_multiplier))
    } else {
        base
    }
}

/// Late acceptance: started days late and the fine, against the acceptance owner.
///
/// DOMAIN §7: "Late acceptance: 100 yuan per day"; §9: "each started day late beyond it is one
/// 100-yuan unit" — one millisecond late is one day, exactly 24 h late is one day, 24 h and one
/// millisecond is two. Accepted on or before `due`: no days, no fine.
pub fn late_acceptance_penalty(
    policy: &Policy,
    accepted_at: DateTime<Utc>,
    due: DateTime<Utc>,
) -> (u32, Money) {
    if accepted_at <= due {
        return (0, Money::ZERO);
    }
    const DAY_MS: u64 = 86_400_000;
    // Sub-millisecond lateness rounds down to 0 ms; it is still late.
    let late_ms = u64::try_from((accepted_at - due).num_milliseconds().max(1)).unwrap_or(u64::MAX);
    let days = late_ms.div_ceil(DAY_MS);
    let days = u32::try_from(days).unwrap_or(u32::MAX);
    let fine = policy
        .penalties
        .late_acceptance_per_day
        .saturating_mul(i64::from(days));
    (days, fine)
}

/// DOMAIN §7: "Three or more complaints against one person in a month → suspension and
/// rectification." Count per calendar month; DOMAIN §9: the overdue class-D records count too.
pub fn suspension_due(policy: &Policy, complaints_this_month: u32) -> bool {
    complaints_this_month >= policy.penalties.suspension_threshold
}

/// Where a department's monthly complaint rate falls in DOMAIN §7's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "band", rename_all = "snake_case")]
pub enum RateBand {
    /// No business volume was entered: the rate is undefined, so no penalty is computed and the
    /// month needs a person's look rather than a guess.
    NoVolume,
    /// Below the threshold (T < 0.80 %): no penalty.
    Below {
        /// T in basis points.
        rate_bp: u64,
    },
    /// Exactly the threshold (T = 0.80 %).
    AtThreshold {
        /// T in basis points.
        rate_bp: u64,
        /// The department head's penalty.
        penalty: Money,
    },
    /// Within a band (e.g. 0.80 % < T ≤ 0.85 %).
    Band {
        /// T in basis points.
        rate_bp: u64,
        /// Exclusive lower bound of the band.
        above_bp: u64,
        /// Inclusive upper bound of the band.
        up_to_bp: u64,
        /// The department head's penalty.
        penalty: Money,
    },
    /// Above the last band (T > 1.00 %): an approver chooses within `min`..=`max`.
    Above {
        /// T in basis points.
        rate_bp: u64,
        /// The default amount (DOMAIN §9: 500 yuan).
        penalty: Money,
        /// The lowest an approver may choose.
        min: Money,
        /// The highest an approver may choose.
        max: Money,
    },
}

impl RateBand {
    /// The penalty (the default one above the last band); zero without one.
    pub fn penalty(&self) -> Money {
        match *self {
            RateBand::NoVolume | RateBand::Below { .. } => Money::ZERO,
            RateBand::AtThreshold { penalty, .. }
            | RateBand::Band { penalty, .. }
            | RateBand::Above { penalty, .. } => penalty,
        }
    }

    /// The band's bounds and its label as the policy's table writes it (`0.80% < T <= 0.85%`);
    /// `None` without a rate. One wording for every report that shows a band.
    pub fn bounds(&self, policy: &Policy) -> Option<BandBounds> {
        let table = &policy.complaint_rate;
        let threshold = u64::from(table.threshold_bp);
        Some(match *self {
            RateBand::NoVolume => return None,
            RateBand::Below { .. } => BandBounds {
                label: format!("T < {}", percent(threshold)),
                lower_bp: 0,
                lower_inclusive: true,
                upper_bp: Some(threshold.saturating_sub(1)),
            },
            RateBand::AtThreshold { .. } => BandBounds {
                label: format!("T = {}", percent(threshold)),
                lower_bp: threshold,
                lower_inclusive: true,
                upper_bp: Some(threshold),
            },
            RateBand::Band {
                above_bp, up_to_bp, ..
            } => BandBounds {
                label: format!("{} < T <= {}", percent(above_bp), percent(up_to_bp)),
                lower_bp: above_bp,
                lower_inclusive: false,
                upper_bp: Some(up_to_bp),
            },
            RateBand::Above { .. } => {
                let last = table
                    .bands
                    .last()
                    .map_or(threshold, |b| u64::from(b.up_to_bp));
                BandBounds {
                    label: format!("T > {}", percent(last)),
                    lower_bp: last,
                    lower_inclusive: false,
                    upper_bp: None,
                }
            }
        })
    }

    /// T in basis points, if defined.
    pub fn rate_bp(&self) -> Option<u64> {
        match *self {
            RateBand::NoVolume => None,
            RateBand::Below { rate_bp }
            | RateBand::AtThreshold { rate_bp, .. }
            | RateBand::Band { rate_bp, .. }
            | RateBand::Above { rate_bp, .. } => Some(rate_bp),
        }
    }
}

/// T = complaints ÷ business volume in basis points (1 bp = 0.01 %), rounded to the nearest
/// basis point, halves up: DOMAIN §9 compares "at 0.01 % precision", and T is stated to that
/// precision the way a report would print it (0.795 % is reported, and fined, as 0.80 %).
/// `None` when the volume is zero.
pub fn rate_bp(complaints: u64, business_volume: u64) -> Option<u64> {
    if business_volume == 0 {
        return None;
    }
    let numerator = u128::from(complaints) * 10_000 * 2 + u128::from(business_volume);
    let bp = numerator / (u128::from(business_volume) * 2);
    Some(u64::try_from(bp).unwrap_or(u64::MAX))
}

/// Where a band of the complaint-rate table starts and ends, in basis points, and its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BandBounds {
    pub label: String,
    pub lower_bp: u64,
    pub lower_inclusive: bool,
    /// `None` for the open band above the last.
    pub upper_bp: Option<u64>,
}

/// `12345` basis points as `123.45%`.
pub fn percent(bp: u64) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

/// The band of DOMAIN §7's monthly complaint-rate table that `complaints` out of
/// `business_volume` falls in, with the department head's penalty.
pub fn rate_band(policy: &Policy, complaints: u64, business_volume: u64) -> RateBand {
    let Some(rate_bp) = rate_bp(complaints, business_volume) else {
        return RateBand::NoVolume;
    };
    let table = &policy.complaint_rate;
    let threshold = u64::from(table.threshold_bp);
    if rate_bp < threshold {
        return RateBand::Below { rate_bp };
    }
    if rate_bp == threshold {
        return RateBand::AtThreshold {
            rate_bp,
            penalty: table.at_threshold,
        };
    }
    let mut above_bp = threshold;
    for band in &table.bands {
        let up_to_bp = u64::from(band.up_to_bp);
        if rate_bp <= up_to_bp {
            return RateBand::Band {
                rate_bp,
                above_bp,
                up_to_bp,
                penalty: band.penalty,
            };
        }
        above_bp = up_to_bp;
    }
    RateBand::Above {
        rate_bp,
        penalty: table.above_default,
        min: table.above_min,
        max: table.above_max,
    }
}

/// The extra amount a repeat complaint adds to the original's fine: DOMAIN §9, "Doubling doubles
/// the original class fine of the complaint that led to the repeat complaint" — booked as its
/// own entry beside the original fine, so the two together are the doubled fine.
pub fn repeat_extra(policy: &Policy, class: Class) -> Money {
    let doubled = complaint_penalty(policy, class, true).fen();
    let base = complaint_penalty(policy, class, false).fen();
    Money::from_fen(doubled.saturating_sub(base))
}

/// The calendar month (`YYYY-MM`) an instant falls in, read in the policy's timezone: DOMAIN §7
/// counts suspensions and complaint rates "in a month", a local calendar month.
pub fn month_of(policy: &Policy, at: DateTime<Utc>) -> String {
    at.with_timezone(&policy.calendar.timezone)
        .format("%Y-%m")
        .to_string()
}

/// The instants `[start, end)` bounding a `YYYY-MM` month in the policy's timezone; `None` when
/// the text is not such a month.
pub fn month_bounds(policy: &Policy, month: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let y: i32 = y.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    let first = chrono::NaiveDate::from_ymd_opt(y, m, 1)?;
    let next = if m == 12 {
        chrono::NaiveDate::from_ymd_opt(y.checked_add(1)?, 1, 1)?
    } else {
        chrono::NaiveDate::from_ymd_opt(y, m + 1, 1)?
    };
    let tz = policy.calendar.timezone;
    let local = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(tz).single())
            .map(|t| t.to_utc())
    };
    Some((local(first)?, local(next)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_fine_needs_a_named_person() {
        assert_eq!(class_fine_person("p-7", false), Some("p-7"));
        assert_eq!(class_fine_person("", false), None);
        assert_eq!(class_fine_person("p-7", true), None);
    }
    use chrono::Duration;

    fn p() -> Policy {
        Policy::default()
    }

    #[test]
    fn class_fines_and_doubling() {
        let policy = p();
        let fen = |class, repeat| complaint_penalty(&policy, class, repeat).fen();
        assert_eq!(fen(Class::D, false), 5_000);
        assert_eq!(fen(Class::C, false), 10_000);
        assert_eq!(fen(Class::B, false), 20_000);
        assert_eq!(fen(Class::A, false), 50_000);
        assert_eq!(fen(Class::C, true), 20_000);
        assert_eq!(fen(Class::A, true), 100_000);
        let mut triple = p();
        triple.penalties.repeat_multiplier = 3;
        assert_eq!(complaint_penalty(&triple, Class::B, true).fen(), 60_000);
    }

    #[test]
    fn late_acceptance_counts_started_days() {
        let policy = p();
        let due = DateTime::parse_from_rfc3339("2024-05-02T10:00:00+08:00")
            .unwrap()
            .to_utc();
        let late = |d: Duration| late_acceptance_penalty(&policy, due + d, due);
        assert_eq!(late(-Duration::hours(1)), (0, Money::ZERO));
        assert_eq!(late(Duration::zero()), (0, Money::ZERO));
        assert_eq!(late(Duration::nanoseconds(1)), (1, Money::from_fen(10_000)));
        assert_eq!(
            late(Duration::milliseconds(1)),
            (1, Money::from_fen(10_000))
        );
        assert_eq!(late(Duration::hours(24)), (1, Money::from_fen(10_000)));
        assert_eq!(
            late(Duration::hours(24) + Duration::milliseconds(1)),
            (2, Money::from_fen(20_000))
        );
        assert_eq!(
            late(Duration::days(3) + Duration::hours(1)),
            (4, Money::from_fen(40_000))
        );
    }

    #[test]
    fn suspension_at_three_in_a_month() {
        assert!(!suspension_due(&p(), 2));
        assert!(suspension_due(&p(), 3));
        assert!(suspension_due(&p(), 4));
    }

    #[test]
    fn rate_band_boundaries() {
        let policy = p();
        // Business volume 10 000: one complaint is one basis point.
        let band = |complaints| rate_band(&policy, complaints, 10_000);
        assert_eq!(band(0), RateBand::Below { rate_bp: 0 });
        assert_eq!(band(79), RateBand::Below { rate_bp: 79 });
        assert_eq!(
            band(80),
            RateBand::AtThreshold {
                rate_bp: 80,
                penalty: Money::from_fen(5_000)
            }
        );
        assert_eq!(
            band(81),
            RateBand::Band {
                rate_bp: 81,
                above_bp: 80,
                up_to_bp: 85,
                penalty: Money::from_fen(10_000)
            }
        );
        assert_eq!(band(85).penalty(), Money::from_fen(10_000));
        assert_eq!(band(86).penalty(), Money::from_fen(15_000));
        assert_eq!(band(90).penalty(), Money::from_fen(15_000));
        assert_eq!(band(91).penalty(), Money::from_fen(20_000));
        assert_eq!(band(95).penalty(), Money::from_fen(20_000));
        assert_eq!(band(96).penalty(), Money::from_fen(30_000));
        assert_eq!(band(100).penalty(), Money::from_fen(30_000));
        assert_eq!(
            band(101),
            RateBand::Above {
                rate_bp: 101,
                penalty: Money::from_fen(50_000),
                min: Money::from_fen(50_000),
                max: Money::from_fen(150_000)
            }
        );
        assert_eq!(band(200).rate_bp(), Some(200));
        assert_eq!(band(20_000).rate_bp(), Some(20_000));
    }

    #[test]
    fn zero_volume_has_no_rate() {
        assert_eq!(rate_band(&p(), 5, 0), RateBand::NoVolume);
        assert_eq!(rate_band(&p(), 0, 0).penalty(), Money::ZERO);
        assert_eq!(rate_bp(1, 0), None);
    }

    #[test]
    fn rate_rounds_to_the_nearest_basis_point_halves_up() {
        // 0.7949 % → 0.79 %; 0.795 % → 0.80 %.
        assert_eq!(rate_bp(7_949, 1_000_000), Some(79));
        assert_eq!(rate_bp(7_950, 1_000_000), Some(80));
        assert!(matches!(
            rate_band(&p(), 7_950, 1_000_000),
            RateBand::AtThreshold { .. }
        ));
        // 1.0049 % → 1.00 %; 1.005 % → 1.01 %.
        assert_eq!(
            rate_band(&p(), 10_049, 1_000_000).penalty(),
            Money::from_fen(30_000)
        );
        assert_eq!(
            rate_band(&p(), 10_050, 1_000_000).penalty(),
            Money::from_fen(50_000)
        );
        // Huge numbers do not overflow.
        assert_eq!(rate_bp(u64::MAX, u64::MAX), Some(10_000));
        assert_eq!(rate_bp(u64::MAX, 1), Some(u64::MAX));
    }

    #[test]
    fn bands_come_from_the_policy() {
        let policy = Policy::from_toml_str(
            r#"
            [complaint_rate]
            threshold_bp = 50
            bands = [{ up_to_bp = 60, penalty_fen = 777 }]
            "#,
        )
        .unwrap();
        assert_eq!(
            rate_band(&policy, 55, 10_000).penalty(),
            Money::from_fen(777)
        );
        assert!(matches!(
            rate_band(&policy, 61, 10_000),
            RateBand::Above { .. }
        ));
    }
    #[test]
    fn repeat_extra_is_the_difference_to_the_doubled_fine() {
        assert_eq!(repeat_extra(&p(), Class::C).fen(), 10_000);
        assert_eq!(repeat_extra(&p(), Class::A).fen(), 50_000);
        let mut triple = p();
        triple.penalties.repeat_multiplier = 3;
        assert_eq!(repeat_extra(&triple, Class::B).fen(), 40_000);
    }

    #[test]
    fn months_are_local_calendar_months() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        // 2026-03-31 17:00 UTC is 2026-04-01 01:00 in +08:00.
        assert_eq!(month_of(&p(), at("2026-03-31T17:00:00Z")), "2026-04");
        assert_eq!(month_of(&p(), at("2026-03-31T15:59:59Z")), "2026-03");
        let (start, end) = month_bounds(&p(), "2026-12").unwrap();
        assert_eq!(start, at("2026-11-30T16:00:00Z"));
        assert_eq!(end, at("2026-12-31T16:00:00Z"));
        for bad in ["2026-13", "2026-1", "26-01", "", "2026/01", "abcd-ef"] {
            assert_eq!(month_bounds(&p(), bad), None, "{bad}");
        }
    }
}
