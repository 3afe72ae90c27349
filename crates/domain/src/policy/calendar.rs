//! The business calendar that gives "same day" a meaning (DOMAIN §9).

use super::*;

/// The business calendar that gives "same day" a meaning.
///
/// DOMAIN §9: "'Same day' means by the end of the business day of acceptance (a calendar
/// setting)." A fixed UTC offset (not a named zone) because mainland China has no daylight
/// saving time and a fixed offset needs no time-zone database. Every calendar day counts as a
/// business day for "same day": complaint centres take complaints every day. Limits may
/// optionally count working time only (`business_hours`, [`crate::calendar`], ADR 0015).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Calendar {
    /// The offset local times are read in, e.g. `+08:00`.
    #[serde(with = "offset_text")]
    pub timezone: FixedOffset,
    /// When the business day ends, local time, e.g. `18:00`.
    #[serde(with = "time_text")]
    pub business_day_end: NaiveTime,
    /// Whether limits count working time only ([`crate::calendar`]). Off by default: the
    /// source documents count wall-clock hours ("8小时", "24小时"); the anchors (Zammad,
    /// Zendesk, Znuny) offer a business-hours calendar, so it is one setting away.
    pub business_hours: bool,
    /// When working time starts each working day, local time (business hours only).
    #[serde(with = "time_text")]
    pub working_hours_start: NaiveTime,
    /// When working time ends each working day, local time (business hours only).
    #[serde(with = "time_text")]
    pub working_hours_end: NaiveTime,
    /// The weekdays that are working days (`"Mon"` … `"Sun"`), unless listed as holidays.
    pub working_days: Vec<Weekday>,
    /// Dates with no working time even on a working weekday (public holidays).
    pub holidays: Vec<NaiveDate>,
    /// Extra working days on a weekday otherwise off (China's make-up workdays, 调休).
    pub workdays: Vec<NaiveDate>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            timezone: FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::Utc.fix()),
            business_day_end: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or(NaiveTime::MIN),
            business_hours: false,
            working_hours_start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
            working_hours_end: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or(NaiveTime::MIN),
            working_days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            holidays: Vec::new(),
            workdays: Vec::new(),
        }
    }
}

impl Calendar {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.working_hours_start >= self.working_hours_end {
            problems.push(format!(
                "calendar.working_hours_start ({}) must be before calendar.working_hours_end ({})",
                self.working_hours_start.format("%H:%M"),
                self.working_hours_end.format("%H:%M")
            ));
        }
        if self.business_hours && self.working_days.is_empty() && self.workdays.is_empty() {
            problems.push(
                "calendar.business_hours is on but calendar.working_days and calendar.workdays \
                 are both empty: no limit could ever fall due"
                    .into(),
            );
        }
        if let Some(day) = self.holidays.iter().find(|d| self.workdays.contains(d)) {
            problems.push(format!(
                "calendar: {day} is listed both in holidays and in workdays"
            ));
        }
    }
}

mod offset_text {
    use chrono::FixedOffset;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(offset: &FixedOffset, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(offset)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FixedOffset, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(d)?;
        raw.trim().parse().map_err(|_| {
            serde::de::Error::custom(format!("timezone {raw:?} is not a UTC offset like +08:00"))
        })
    }
}

mod time_text {
    use chrono::{NaiveTime, Timelike};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        if time.second() == 0 {
            s.collect_str(&time.format("%H:%M"))
        } else {
            s.collect_str(&time.format("%H:%M:%S"))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(d)?;
        let raw = raw.trim();
        NaiveTime::parse_from_str(raw, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(raw, "%H:%M:%S"))
            .map_err(|_| serde::de::Error::custom(format!("time {raw:?} is not HH:MM")))
    }
}
