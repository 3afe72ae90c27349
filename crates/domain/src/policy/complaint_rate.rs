//! The complaint-rate bands (DOMAIN §8).

use super::*;

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
    pub(super) fn check(&self, problems: &mut Vec<String>) {
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
