//! What decides a class (DOMAIN §2).

use super::*;

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
    pub(super) fn check(&self, problems: &mut Vec<String>) {
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
