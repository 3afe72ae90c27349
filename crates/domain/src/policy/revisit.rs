//! Revisit timing and retries (DOMAIN §6).

use super::*;

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
    pub(super) fn check(&self, problems: &mut Vec<String>) {
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
