//! Time limits per class and clock (DOMAIN §2, §4).

use super::*;

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
    /// 0 and 1). DOMAIN §9: it is asked "when completion is at risk (by default at the completion
    /// warning point)", so unset it follows `warning_share` ([`Limits::intermediate_at`]); set it
    /// to ask earlier or later (ADR 0009).
    pub intermediate_share: Option<f64>,
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
            intermediate_share: None,
            completion: CompletionLimits::default(),
            first_feedback: FeedbackLimits::default(),
        }
    }
}

impl Limits {
    /// The share of the completion limit at which the intermediate result is due: the one set,
    /// else the completion warning point (DOMAIN §9).
    pub fn intermediate_at(&self) -> f64 {
        self.intermediate_share.unwrap_or(self.warning_share)
    }

    pub(super) fn check(&self, problems: &mut Vec<String>) {
        positive("limits.acceptance", self.acceptance, problems);
        positive("limits.confirmation", self.confirmation, problems);
        share("limits.warning_share", self.warning_share, problems);
        if let Some(s) = self.intermediate_share {
            share("limits.intermediate_share", s, problems);
        }
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
