//! Fines, doubling, late acceptance, suspension (DOMAIN §7).

use super::*;

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
    pub(super) fn check(&self, problems: &mut Vec<String>) {
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
