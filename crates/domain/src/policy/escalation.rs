//! The ladder: who is told, and when it climbs (DOMAIN §5).

use super::*;

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
    pub(super) fn check(&self, problems: &mut Vec<String>) {
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
