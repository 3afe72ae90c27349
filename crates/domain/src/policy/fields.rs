//! Field limits of a complaint record.

use super::*;

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
    pub(super) fn check(&self, problems: &mut Vec<String>) {
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
