//! The policy: every number and list the rules use, with DOMAIN.md's values as defaults.
//!
//! DOMAIN.md: "the system makes each rule **configurable** and ships the values below as its
//! default policy: every number here is a default, not a constant in code." So no rule in this
//! crate hard-codes a limit, an amount or a threshold; it reads them from a [`Policy`].
//!
//! The defaults live twice, deliberately: in the `Default` impls below (so any serde source —
//! a TOML file, a service's layered configuration — can name only what it changes, thanks to
//! `#[serde(default)]` on every table) and in the commented file `policy/default.toml`
//! ([`DEFAULT_POLICY_TOML`]), which is what operators read and copy. Tests keep the two equal
//! and check the file names every setting. Unknown keys are refused, so a typo in an override
//! is an error, not a silently ignored setting.
//!
//! Arrays (categories, rate bands, ladder roles, revisit classes) are replaced whole by an
//! override: there is no sensible way to merge two lists of bands.

use std::collections::HashSet;

use chrono::{Duration, FixedOffset, NaiveDate, NaiveTime, Offset, Weekday};
use serde::{Deserialize, Serialize};

use crate::classification::Class;
use crate::duration::human;
use crate::money::Money;

/// The commented default policy file, embedded so the shipped defaults are always at hand
/// (e.g. `redress policy print-default`).
pub const DEFAULT_POLICY_TOML: &str = include_str!("../policy/default.toml");

/// Why a policy was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML, an unknown key, or a value of the wrong shape.
    #[error("policy is not valid TOML for this schema: {0}")]
    Parse(#[from] toml::de::Error),
    /// Well-formed but inconsistent; every problem is listed.
    #[error("policy is inconsistent: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Could not be written back as TOML.
    #[error("policy could not be written as TOML: {0}")]
    Serialize(#[from] toml::ser::Error),
}

/// All configurable rules. Build it with [`Policy::default`] or [`Policy::from_toml_str`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Time zone and business-day end, for "same day" limits.
    pub calendar: Calendar,
    /// Acceptance, feedback, completion and intermediate limits; the warning point.
    pub limits: Limits,
    /// Thresholds of the classification criteria.
    pub classification: ClassificationPolicy,
    /// When overdue work and unacknowledged notifications go up the ladder.
    pub escalation: EscalationPolicy,
    /// Fines against the responsible person or acceptance owner.
    pub penalties: PenaltyPolicy,
    /// The department head's penalty by monthly complaint rate.
    pub complaint_rate: ComplaintRatePolicy,
    /// When customers are called back.
    pub revisit: RevisitPolicy,
    /// Limits on what a submission may contain.
    pub fields: FieldLimits,
    /// Complaint categories, by stable code.
    pub categories: Vec<Category>,
}

/// DOMAIN.md's defaults, section by section.
impl Default for Policy {
    fn default() -> Self {
        Policy {
            calendar: Calendar::default(),
            limits: Limits::default(),
            classification: ClassificationPolicy::default(),
            escalation: EscalationPolicy::default(),
            penalties: PenaltyPolicy::default(),
            complaint_rate: ComplaintRatePolicy::default(),
            revisit: RevisitPolicy::default(),
            fields: FieldLimits::default(),
            categories: default_categories(),
        }
    }
}

impl Policy {
    /// Reads a policy file. Whatever it does not name keeps its default; the result is
    /// validated ([`Policy::validate`]).
    pub fn from_toml_str(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text)?;
        policy.validate()?;
        Ok(policy)
    }

    /// The policy as TOML (without comments), e.g. to show the effective configuration.
    pub fn to_toml_string(&self) -> Result<String, PolicyError> {
        Ok(toml::to_string(self)?)
    }

    /// Checks the settings against each other; lists every problem at once.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut problems = Vec::new();
        self.calendar.check(&mut problems);
        self.limits.check(&mut problems);
        self.classification.check(&mut problems);
        self.escalation.check(&mut problems);
        self.penalties.check(&mut problems);
        self.complaint_rate.check(&mut problems);
        self.revisit.check(&mut problems);
        self.fields.check(&mut problems);
        check_categories(&self.categories, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::Invalid(problems))
        }
    }

    /// The completion limit of `class` (DOMAIN §2: 8/24/48/48 h).
    pub fn completion_limit(&self, class: Class) -> Duration {
        *self.limits.completion.get(class)
    }

    /// The first-feedback limit of `class` before the completion cap (DOMAIN §3).
    pub fn feedback_limit(&self, class: Class) -> FeedbackLimit {
        *self.limits.first_feedback.get(class)
    }

    /// The category with this code, if the policy knows it.
    pub fn category(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }
}

/// Declares a table with one value per class (`A = …`, `B = …`), each defaulting on its own so
/// an override may name a single class.
macro_rules! per_class {
    (
        $(#[$meta:meta])*
        $name:ident: $ty:ty $(, with = $with:literal)?;
        defaults $a:expr, $b:expr, $c:expr, $d:expr $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Class A (major).
            #[serde(rename = "A" $(, with = $with)?)]
            pub a: $ty,
            /// Class B (serious).
            #[serde(rename = "B" $(, with = $with)?)]
            pub b: $ty,
            /// Class C (general).
            #[serde(rename = "C" $(, with = $with)?)]
            pub c: $ty,
            /// Class D (admonition).
            #[serde(rename = "D" $(, with = $with)?)]
            pub d: $ty,
        }

        impl Default for $name {
            fn default() -> Self {
                Self { a: $a, b: $b, c: $c, d: $d }
            }
        }

        impl $name {
            /// The value for `class`.
            pub fn get(&self, class: Class) -> &$ty {
                match class {
                    Class::A => &self.a,
                    Class::B => &self.b,
                    Class::C => &self.c,
                    Class::D => &self.d,
                }
            }

            fn values(&self) -> [(Class, &$ty); 4] {
                [(Class::A, &self.a), (Class::B, &self.b), (Class::C, &self.c), (Class::D, &self.d)]
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Calendar

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
    fn check(&self, problems: &mut Vec<String>) {
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

// ---------------------------------------------------------------------------------------------
// Limits

/// The first-feedback limit before it is capped by the completion limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackLimit {
    /// By the end of the business day of acceptance; after the end, the next day's end
    /// (DOMAIN §3: "general complaints the same day").
    SameDay,
    /// Within a duration of receipt (DOMAIN §3: "serious and above within three days").
    Within(Duration),
}

impl Serialize for FeedbackLimit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FeedbackLimit::SameDay => s.serialize_str("same_day"),
            FeedbackLimit::Within(d) => s.serialize_str(&crate::duration::format(*d)),
        }
    }
}

impl<'de> Deserialize<'de> for FeedbackLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(d)?;
        if crate::text::token_matches(&raw, "same_day") {
            return Ok(FeedbackLimit::SameDay);
        }
        crate::duration::parse(&raw)
            .map(FeedbackLimit::Within)
            .map_err(|e| serde::de::Error::custom(format!("{e}, or \"same_day\"")))
    }
}

per_class! {
    /// Completion limit per class. DOMAIN §2: "completion limit 8 h / 24 h / 48 h / 48 h".
    CompletionLimits: Duration, with = "human";
    defaults Duration::hours(8), Duration::hours(24), Duration::hours(48), Duration::hours(48),
}

per_class! {
    /// First-feedback limit per class. DOMAIN §3: "general complaints the same day; serious and
    /// above within three days"; §9: D "default as C".
    FeedbackLimits: FeedbackLimit;
    defaults
        FeedbackLimit::Within(Duration::days(3)),
        FeedbackLimit::Within(Duration::days(3)),
        FeedbackLimit::SameDay,
        FeedbackLimit::SameDay,
}

/// The clocks of DOMAIN §4 and when to warn about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// DOMAIN §9: "Acceptance limit ... default 24 h from intake."
    #[serde(with = "human")]
    pub acceptance: Duration,
    /// DOMAIN §9: "one still unconfirmed at its confirmation limit (default 1 h) is escalated"
    /// to the complaint centre's manager. Counted from intake, for complaints taken unconfirmed.
    #[serde(with = "human")]
    pub confirmation: Duration,
    /// DOMAIN §4: "The system warns before a limit is hit (default: at 75 % of it)." A share of
    /// the limit, strictly between 0 and 1.
    pub warning_share: f64,
    /// When the intermediate result is due, as a share of the completion limit (strictly between
    /// 0 and 1). DOMAIN §3/§4 require an intermediate result when the limit cannot be met but give
    /// no time; half the limit (A 4 h, B 12 h, C/D 24 h) leaves time to act on it.
    pub intermediate_share: f64,
    /// DOMAIN §2: completion limit by class.
    pub completion: CompletionLimits,
    /// DOMAIN §3 and §9: first feedback by class, capped by completion.
    pub first_feedback: FeedbackLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            acceptance: Duration::hours(24),
            confirmation: Duration::hours(1),
            warning_share: 0.75,
            intermediate_share: 0.5,
            completion: CompletionLimits::default(),
            first_feedback: FeedbackLimits::default(),
        }
    }
}

impl Limits {
    fn check(&self, problems: &mut Vec<String>) {
        positive("limits.acceptance", self.acceptance, problems);
        positive("limits.confirmation", self.confirmation, problems);
        share("limits.warning_share", self.warning_share, problems);
        share(
            "limits.intermediate_share",
            self.intermediate_share,
            problems,
        );
        for (class, limit) in self.completion.values() {
            positive(&format!("limits.completion.{class}"), *limit, problems);
        }
        for (class, limit) in self.first_feedback.values() {
            if let FeedbackLimit::Within(d) = limit {
                positive(&format!("limits.first_feedback.{class}"), *d, problems);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Classification

/// Thresholds of the money criteria of DOMAIN §2. The other criteria (emotion, public impact,
/// breach of procedure) are graded by people and map to classes one to one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassificationPolicy {
    /// DOMAIN §2/§9: company loss "> 3000 yuan" is A; "3000.00 is B, 3000.01 is A".
    #[serde(rename = "class_a_company_loss_above_fen")]
    pub class_a_company_loss_above: Money,
    /// DOMAIN §2: company loss "> 0 and ≤ 3000 yuan" is B.
    #[serde(rename = "class_b_company_loss_above_fen")]
    pub class_b_company_loss_above: Money,
    /// DOMAIN §9: "a loss to the customer rules out C (it is at least B)".
    #[serde(rename = "class_b_customer_loss_above_fen")]
    pub class_b_customer_loss_above: Money,
}

impl Default for ClassificationPolicy {
    fn default() -> Self {
        ClassificationPolicy {
            class_a_company_loss_above: Money::from_fen(300_000),
            class_b_company_loss_above: Money::ZERO,
            class_b_customer_loss_above: Money::ZERO,
        }
    }
}

impl ClassificationPolicy {
    fn check(&self, problems: &mut Vec<String>) {
        let fields = [
            (
                "class_a_company_loss_above_fen",
                self.class_a_company_loss_above,
            ),
            (
                "class_b_company_loss_above_fen",
                self.class_b_company_loss_above,
            ),
            (
                "class_b_customer_loss_above_fen",
                self.class_b_customer_loss_above,
            ),
        ];
        for (name, amount) in fields {
            if amount < Money::ZERO {
                problems.push(format!("classification.{name} must not be negative"));
            }
        }
        if self.class_a_company_loss_above < self.class_b_company_loss_above {
            problems.push(
                "classification.class_a_company_loss_above_fen must not be below the class B threshold"
                    .to_owned(),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Escalation

/// DOMAIN §5 and §9: who hears about overdue work, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationPolicy {
    /// The internal ladder, lowest rung first (DOMAIN §5: "The ladder's roles are configurable
    /// (department manager, service-centre manager, general manager…)"). Stable snake_case role
    /// codes; who holds a role is directory data, not policy.
    pub ladder: Vec<String>,
    /// DOMAIN §9: "overdue → department manager; still unresolved a set time later → general
    /// manager". This is that set time (the sources give none; 4 h is half an A limit).
    #[serde(with = "human")]
    pub l2_after: Duration,
    /// DOMAIN §9: "class A overdue → both" rungs at once.
    pub class_a_overdue_both: bool,
    /// DOMAIN §5: every escalation is "recorded when sent, seen and acted on". A notification not
    /// seen after this long is sent again (product choice; the sources are silent).
    #[serde(with = "human")]
    pub unacknowledged_resend_after: Duration,
    /// A notification still not seen after this long goes to the next rung (product choice).
    #[serde(with = "human")]
    pub unacknowledged_raise_after: Duration,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            ladder: vec![
                "department_manager".to_owned(),
                "general_manager".to_owned(),
            ],
            l2_after: Duration::hours(4),
            class_a_overdue_both: true,
            unacknowledged_resend_after: Duration::minutes(30),
            unacknowledged_raise_after: Duration::hours(2),
        }
    }
}

impl EscalationPolicy {
    fn check(&self, problems: &mut Vec<String>) {
        if self.ladder.is_empty() {
            problems.push("escalation.ladder needs at least one role".to_owned());
        }
        for role in &self.ladder {
            if !is_code(role) {
                problems.push(format!(
                    "escalation.ladder role {role:?} is not a snake_case code"
                ));
            }
        }
        if has_duplicates(self.ladder.iter()) {
            problems.push("escalation.ladder names a role twice".to_owned());
        }
        positive("escalation.l2_after", self.l2_after, problems);
        positive(
            "escalation.unacknowledged_resend_after",
            self.unacknowledged_resend_after,
            problems,
        );
        positive(
            "escalation.unacknowledged_raise_after",
            self.unacknowledged_raise_after,
            problems,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Penalties

per_class! {
    /// DOMAIN §7: "D 50 yuan, C 100, B 200 (+ the loss), A 500", in fen.
    ClassPenalties: Money;
    defaults Money::from_fen(50_000), Money::from_fen(20_000), Money::from_fen(10_000), Money::from_fen(5_000),
}

/// DOMAIN §7: fines and the suspension rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PenaltyPolicy {
    /// Fine per complaint by class, in fen.
    #[serde(rename = "per_class_fen")]
    pub per_class: ClassPenalties,
    /// DOMAIN §7: a repeat complaint caused by neglect or a missed limit: "the fine is doubled".
    pub repeat_multiplier: u32,
    /// DOMAIN §7: "Late acceptance: 100 yuan per day", in fen.
    #[serde(rename = "late_acceptance_per_day_fen")]
    pub late_acceptance_per_day: Money,
    /// DOMAIN §7: "Three or more complaints against one person in a month → suspension".
    pub suspension_threshold: u32,
}

impl Default for PenaltyPolicy {
    fn default() -> Self {
        PenaltyPolicy {
            per_class: ClassPenalties::default(),
            repeat_multiplier: 2,
            late_acceptance_per_day: Money::from_fen(10_000),
            suspension_threshold: 3,
        }
    }
}

impl PenaltyPolicy {
    fn check(&self, problems: &mut Vec<String>) {
        for (class, amount) in self.per_class.values() {
            if *amount < Money::ZERO {
                problems.push(format!(
                    "penalties.per_class_fen.{class} must not be negative"
                ));
            }
        }
        if self.repeat_multiplier == 0 {
            problems.push("penalties.repeat_multiplier must be at least 1".to_owned());
        }
        if self.late_acceptance_per_day < Money::ZERO {
            problems.push("penalties.late_acceptance_per_day_fen must not be negative".to_owned());
        }
        if self.suspension_threshold == 0 {
            problems.push("penalties.suspension_threshold must be at least 1".to_owned());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Complaint rate

/// One band of the complaint-rate table: rates above the previous bound and up to `up_to_bp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateBandRule {
    /// Upper bound, inclusive, in basis points (1 bp = 0.01 %).
    pub up_to_bp: u32,
    /// The department head's penalty in this band.
    #[serde(rename = "penalty_fen")]
    pub penalty: Money,
}

/// DOMAIN §7's monthly complaint-rate table, in basis points (1 bp = 0.01 %, the precision §9
/// compares at) and fen.
///
/// | T | penalty |
/// |---|---|
/// | T < `threshold_bp` | none |
/// | T = `threshold_bp` | `at_threshold` |
/// | previous bound < T ≤ `up_to_bp` | that band's penalty |
/// | T > last bound | `above_default`, chosen by an approver within `above_min`..=`above_max` |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplaintRatePolicy {
    /// DOMAIN §7: "T < 0.80 % none".
    pub threshold_bp: u32,
    /// DOMAIN §7: "T = 0.80 %: 50".
    #[serde(rename = "at_threshold_fen")]
    pub at_threshold: Money,
    /// DOMAIN §7: 100 / 150 / 200 / 300 up to 0.85 / 0.90 / 0.95 / 1.00 %. Ascending.
    pub bands: Vec<RateBandRule>,
    /// DOMAIN §9: "above 1.00 % the amount within 500–1500 is chosen by an approver (default 500)".
    #[serde(rename = "above_default_fen")]
    pub above_default: Money,
    /// Lowest amount an approver may choose above the last band.
    #[serde(rename = "above_min_fen")]
    pub above_min: Money,
    /// Highest amount an approver may choose above the last band.
    #[serde(rename = "above_max_fen")]
    pub above_max: Money,
}

impl Default for ComplaintRatePolicy {
    fn default() -> Self {
        let band = |up_to_bp, fen| RateBandRule {
            up_to_bp,
            penalty: Money::from_fen(fen),
        };
        ComplaintRatePolicy {
            threshold_bp: 80,
            at_threshold: Money::from_fen(5_000),
            bands: vec![
                band(85, 10_000),
                band(90, 15_000),
                band(95, 20_000),
                band(100, 30_000),
            ],
            above_default: Money::from_fen(50_000),
            above_min: Money::from_fen(50_000),
            above_max: Money::from_fen(150_000),
        }
    }
}

impl ComplaintRatePolicy {
    fn check(&self, problems: &mut Vec<String>) {
        let mut previous = self.threshold_bp;
        for band in &self.bands {
            if band.up_to_bp <= previous {
                problems.push(format!(
                    "complaint_rate.bands must ascend above threshold_bp: {} bp follows {previous} bp",
                    band.up_to_bp
                ));
            }
            if band.penalty < Money::ZERO {
                problems.push(format!(
                    "complaint_rate band up to {} bp has a negative penalty",
                    band.up_to_bp
                ));
            }
            previous = band.up_to_bp;
        }
        if self.at_threshold < Money::ZERO {
            problems.push("complaint_rate.at_threshold_fen must not be negative".to_owned());
        }
        if !(Money::ZERO <= self.above_min
            && self.above_min <= self.above_default
            && self.above_default <= self.above_max)
        {
            problems.push(
                "complaint_rate needs 0 <= above_min_fen <= above_default_fen <= above_max_fen"
                    .to_owned(),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Revisit

/// DOMAIN §6: when customers are called back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RevisitPolicy {
    /// Which classes are "general complaints" for the next-day call. DOMAIN §6 names general
    /// complaints (C); §9: D has no rule of its own, "default as C".
    pub general_classes: Vec<Class>,
    /// DOMAIN §6: "the centre phones the customer the day after acceptance": this many calendar
    /// days after the day of acceptance, by the end of that business day.
    pub general_after_days: u32,
    /// DOMAIN §6: "Every complainant is revisited within three days, 100 %".
    #[serde(with = "human")]
    pub every_complainant_within: Duration,
    /// DOMAIN §6: "After on-site service, a phone follow-up within one week".
    #[serde(with = "human")]
    pub after_on_site_within: Duration,
    /// DOMAIN §6: "While the customer waits for a result, timely revisits": how often.
    #[serde(with = "human")]
    pub waiting_every: Duration,
    /// A customer who cannot be reached is tried this many times in all (product choice).
    pub unreached_attempts: u32,
    /// Time between attempts to reach the customer (product choice).
    #[serde(with = "human")]
    pub unreached_spacing: Duration,
}

impl Default for RevisitPolicy {
    fn default() -> Self {
        RevisitPolicy {
            general_classes: vec![Class::C, Class::D],
            general_after_days: 1,
            every_complainant_within: Duration::days(3),
            after_on_site_within: Duration::days(7),
            waiting_every: Duration::days(1),
            unreached_attempts: 3,
            unreached_spacing: Duration::hours(2),
        }
    }
}

impl RevisitPolicy {
    fn check(&self, problems: &mut Vec<String>) {
        if self.general_after_days == 0 {
            problems.push("revisit.general_after_days must be at least 1".to_owned());
        }
        positive(
            "revisit.every_complainant_within",
            self.every_complainant_within,
            problems,
        );
        positive(
            "revisit.after_on_site_within",
            self.after_on_site_within,
            problems,
        );
        positive("revisit.waiting_every", self.waiting_every, problems);
        if self.unreached_attempts == 0 {
            problems.push("revisit.unreached_attempts must be at least 1".to_owned());
        }
        positive(
            "revisit.unreached_spacing",
            self.unreached_spacing,
            problems,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Field limits

/// What a submission may contain (DOMAIN §1's record). Lengths are in characters (Unicode scalar
/// values), not bytes, so a Chinese name gets as many characters as a Latin one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldLimits {
    /// How far in the future `occurred_at` may be, for clocks that disagree.
    #[serde(with = "human")]
    pub clock_skew: Duration,
    /// How far in the past `occurred_at` may be; older is a typo (e.g. the wrong year).
    #[serde(with = "human")]
    pub max_occurred_age: Duration,
    /// The integrating system's name.
    pub source_system: usize,
    /// The integrating system's id for the complaint.
    pub external_id: usize,
    /// Customer name.
    pub customer_name: usize,
    /// Customer account number.
    pub customer_account: usize,
    /// Customer e-mail address (RFC 5321 allows 254).
    pub customer_email: usize,
    /// Business or product concerned.
    pub business: usize,
    /// What went wrong.
    pub description: usize,
    /// What the customer asks for (诉求).
    pub demand: usize,
    /// How serious the customer feels it is, in their words.
    pub perceived_severity: usize,
    /// The unit or person complained about.
    pub complained_about: usize,
    /// Region or site.
    pub region: usize,
    /// One evidence reference (call record id, log link…).
    pub evidence_ref: usize,
    /// How many evidence references one complaint may carry.
    pub max_evidence_refs: usize,
    /// An employee id.
    pub employee_id: usize,
    /// An employee name.
    pub employee_name: usize,
    /// A department name.
    pub department: usize,
    /// A contact person's name.
    pub contact_person: usize,
    /// A free-text reason (class override, special reason for overdue…).
    pub reason: usize,
}

impl Default for FieldLimits {
    fn default() -> Self {
        FieldLimits {
            clock_skew: Duration::minutes(5),
            max_occurred_age: Duration::days(365),
            source_system: 64,
            external_id: 128,
            customer_name: 100,
            customer_account: 64,
            customer_email: 254,
            business: 200,
            description: 4000,
            demand: 2000,
            perceived_severity: 200,
            complained_about: 200,
            region: 100,
            evidence_ref: 500,
            max_evidence_refs: 20,
            employee_id: 64,
            employee_name: 100,
            department: 200,
            contact_person: 100,
            reason: 2000,
        }
    }
}

impl FieldLimits {
    fn check(&self, problems: &mut Vec<String>) {
        if self.clock_skew < Duration::zero() {
            problems.push("fields.clock_skew must not be negative".to_owned());
        }
        positive("fields.max_occurred_age", self.max_occurred_age, problems);
        let lengths = [
            ("source_system", self.source_system),
            ("external_id", self.external_id),
            ("customer_name", self.customer_name),
            ("customer_account", self.customer_account),
            ("customer_email", self.customer_email),
            ("business", self.business),
            ("description", self.description),
            ("demand", self.demand),
            ("perceived_severity", self.perceived_severity),
            ("complained_about", self.complained_about),
            ("region", self.region),
            ("evidence_ref", self.evidence_ref),
            ("max_evidence_refs", self.max_evidence_refs),
            ("employee_id", self.employee_id),
            ("employee_name", self.employee_name),
            ("department", self.department),
            ("contact_person", self.contact_person),
            ("reason", self.reason),
        ];
        for (name, n) in lengths {
            if n == 0 {
                problems.push(format!("fields.{name} must be greater than 0"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Categories

/// A complaint category (DOMAIN §2, [004 §2.1, 002 slide 15]). The code is stable and stored;
/// the names are for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Stable snake_case code, e.g. `billing_dispute`.
    pub code: String,
    /// English display name.
    pub name: String,
    /// Chinese display name.
    #[serde(default)]
    pub name_zh: String,
    /// Which line of business the category belongs to (e.g. `telecom`, `car_service`), so a
    /// deployment can show only its own.
    #[serde(default)]
    pub industry: String,
}

impl Category {
    fn new(industry: &str, code: &str, name: &str, name_zh: &str) -> Self {
        Category {
            code: code.to_owned(),
            name: name.to_owned(),
            name_zh: name_zh.to_owned(),
            industry: industry.to_owned(),
        }
    }
}

/// DOMAIN §2: "telecom — network quality, billing dispute, service handling, value-added service,
/// service attitude; car service — product fault, repair technique, repair cost, reception,
/// purchase, parts."
fn default_categories() -> Vec<Category> {
    vec![
        Category::new("telecom", "network_quality", "Network quality", "网络质量"),
        Category::new("telecom", "billing_dispute", "Billing dispute", "计费争议"),
        Category::new(
            "telecom",
            "service_handling",
            "Service handling",
            "业务办理",
        ),
        Category::new(
            "telecom",
            "value_added_service",
            "Value-added service",
            "增值服务",
        ),
        Category::new(
            "telecom",
            "service_attitude",
            "Service attitude",
            "服务态度",
        ),
        Category::new(
            "car_service",
            "product_fault",
            "Product fault",
            "产品投诉(故障)",
        ),
        Category::new(
            "car_service",
            "repair_technique",
            "Repair technique",
            "修理技术投诉",
        ),
        Category::new("car_service", "repair_cost", "Repair cost", "修理费用投诉"),
        Category::new("car_service", "reception", "Reception", "接待投诉"),
        Category::new("car_service", "purchase", "Purchase", "购买投诉"),
        Category::new("car_service", "parts", "Parts", "零件投诉"),
    ]
}

fn check_categories(categories: &[Category], problems: &mut Vec<String>) {
    for category in categories {
        if !is_code(&category.code) {
            problems.push(format!(
                "categories: code {:?} is not a snake_case code",
                category.code
            ));
        }
        if category.name.trim().is_empty() {
            problems.push(format!("categories: {:?} needs a name", category.code));
        }
    }
    if has_duplicates(categories.iter().map(|c| &c.code)) {
        problems.push("categories: a code appears twice".to_owned());
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn positive(name: &str, d: Duration, problems: &mut Vec<String>) {
    if d <= Duration::zero() {
        problems.push(format!("{name} must be longer than zero"));
    }
}

fn share(name: &str, value: f64, problems: &mut Vec<String>) {
    if !(value > 0.0 && value < 1.0) {
        problems.push(format!(
            "{name} must be strictly between 0 and 1, got {value}"
        ));
    }
}

/// Lowercase ASCII letters, digits and `_`, starting with a letter.
fn is_code(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn has_duplicates<'a>(items: impl Iterator<Item = &'a String>) -> bool {
    let mut seen = HashSet::new();
    items.into_iter().any(|item| !seen.insert(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key path in a TOML value, arrays of tables included (by index).
    fn key_paths(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            toml::Value::Table(table) => {
                for (key, value) in table {
                    let path = format!("{prefix}.{key}");
                    out.push(path.clone());
                    key_paths(value, &path, out);
                }
            }
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    key_paths(item, &format!("{prefix}[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn embedded_file_equals_the_code_defaults() {
        let from_file = Policy::from_toml_str(DEFAULT_POLICY_TOML).unwrap();
        assert_eq!(from_file, Policy::default());
    }

    #[test]
    fn embedded_file_names_every_setting() {
        let file: toml::Value = toml::from_str(DEFAULT_POLICY_TOML).unwrap();
        let code: toml::Value = toml::Value::try_from(Policy::default()).unwrap();
        let (mut in_file, mut in_code) = (Vec::new(), Vec::new());
        key_paths(&file, "", &mut in_file);
        key_paths(&code, "", &mut in_code);
        in_file.sort();
        in_code.sort();
        assert_eq!(in_file, in_code);
    }

    #[test]
    fn defaults_match_domain_md() {
        let p = Policy::default();
        assert_eq!(p.completion_limit(Class::A), Duration::hours(8));
        assert_eq!(p.completion_limit(Class::B), Duration::hours(24));
        assert_eq!(p.completion_limit(Class::C), Duration::hours(48));
        assert_eq!(p.completion_limit(Class::D), Duration::hours(48));
        assert_eq!(
            p.feedback_limit(Class::A),
            FeedbackLimit::Within(Duration::days(3))
        );
        assert_eq!(p.feedback_limit(Class::C), FeedbackLimit::SameDay);
        assert_eq!(p.feedback_limit(Class::D), FeedbackLimit::SameDay);
        assert_eq!(p.limits.acceptance, Duration::hours(24));
        assert_eq!(p.limits.warning_share, 0.75);
        assert_eq!(*p.penalties.per_class.get(Class::D), Money::from_fen(5_000));
        assert_eq!(p.complaint_rate.threshold_bp, 80);
        assert_eq!(p.categories.len(), 11);
        assert!(p.category("billing_dispute").is_some());
        assert!(p.category("weather").is_none());
        p.validate().unwrap();
    }

    #[test]
    fn a_partial_file_overrides_only_what_it_names() {
        let p = Policy::from_toml_str(
            r#"
            [limits.completion]
            A = "6h"
            [calendar]
            business_day_end = "17:30"
            "#,
        )
        .unwrap();
        assert_eq!(p.completion_limit(Class::A), Duration::hours(6));
        assert_eq!(p.completion_limit(Class::B), Duration::hours(24));
        assert_eq!(
            p.calendar.business_day_end,
            NaiveTime::from_hms_opt(17, 30, 0).unwrap()
        );
        assert_eq!(p.calendar.timezone, Policy::default().calendar.timezone);
        assert_eq!(p.penalties, Policy::default().penalties);
        assert_eq!(Policy::from_toml_str("").unwrap(), Policy::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        for bad in [
            "[limits]\ncompletoin = \"8h\"",
            "[limits.completion]\nE = \"8h\"",
            "[limits.completion]\nA = \"soon\"",
            "[limits.first_feedback]\nC = \"same day-ish\"",
            "[calendar]\ntimezone = \"Asia/Shanghai\"",
            "[calendar]\nbusiness_day_end = \"6pm\"",
            "[revisit]\ngeneral_classes = [\"E\"]",
            "colour = \"blue\"",
        ] {
            assert!(
                matches!(Policy::from_toml_str(bad), Err(PolicyError::Parse(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn inconsistent_settings_are_all_listed() {
        let err = Policy::from_toml_str(
            r#"
            [limits]
            warning_share = 1.0
            intermediate_share = 0.0
            [limits.completion]
            A = "0s"
            [penalties]
            repeat_multiplier = 0
            [complaint_rate]
            bands = [{ up_to_bp = 90, penalty_fen = 1 }, { up_to_bp = 85, penalty_fen = 2 }]
            above_default_fen = 10
            [escalation]
            ladder = []
            [fields]
            description = 0
            [[categories]]
            code = "Bad Code"
            name = ""
            "#,
        )
        .unwrap_err();
        let PolicyError::Invalid(problems) = err else {
            panic!("expected Invalid, got {err}");
        };
        let all = problems.join("\n");
        for expected in [
            "limits.warning_share",
            "limits.intermediate_share",
            "limits.completion.A",
            "penalties.repeat_multiplier",
            "complaint_rate.bands must ascend",
            "above_min_fen <= above_default_fen",
            "escalation.ladder",
            "fields.description",
            "\"Bad Code\"",
            "needs a name",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn same_day_spellings_and_durations() {
        let p =
            Policy::from_toml_str("[limits.first_feedback]\nA = \"Same-Day\"\nC = \"4h\"").unwrap();
        assert_eq!(p.feedback_limit(Class::A), FeedbackLimit::SameDay);
        assert_eq!(
            p.feedback_limit(Class::C),
            FeedbackLimit::Within(Duration::hours(4))
        );
    }

    #[test]
    fn written_toml_reads_back_identically() {
        let text = Policy::default().to_toml_string().unwrap();
        assert_eq!(Policy::from_toml_str(&text).unwrap(), Policy::default());
    }
}
