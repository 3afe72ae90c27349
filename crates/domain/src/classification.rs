//! Severity classes A–D and how the facts of a complaint decide one.
//!
//! DOMAIN §2: "Severity class from the customer's emotion, economic loss, breach of procedure and
//! public impact." DOMAIN §9: "the highest class any criterion reaches; a loss to the customer
//! rules out C". [`classify`] applies that and lists every criterion that reached the class, so
//! the handler (and later the customer) sees *why*. Class D (admonition) is never produced here:
//! it follows from the business department finding the complaint invalid, a decision, not a fact.
//! Staff may override a class with a reason ([`Reclassification`]), kept in the history.

use std::cmp::Ordering;
use std::fmt;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::policy::Policy;
use crate::text::text_enum;

text_enum! {
    /// The severity class. Ordered by severity: `Class::A > Class::B > Class::C > Class::D`.
    pub enum Class ("class") {
        /// Major (重大投诉).
        A => "A",
        /// Serious (严重投诉).
        B => "B",
        /// General (一般投诉).
        C => "C",
        /// Admonition (告诫): found invalid; still explained patiently and recorded as a warning.
        D => "D",
    }
}

impl Class {
    /// 3 for A down to 0 for D.
    fn severity(self) -> u8 {
        match self {
            Class::A => 3,
            Class::B => 2,
            Class::C => 1,
            Class::D => 0,
        }
    }

    /// The completion limit of this class under `policy` (DOMAIN §2: 8/24/48/48 h).
    pub fn limit(self, policy: &Policy) -> Duration {
        policy.completion_limit(self)
    }

    /// The English name of DOMAIN §2's table: major, serious, general, admonition.
    pub fn name(self) -> &'static str {
        match self {
            Class::A => "major",
            Class::B => "serious",
            Class::C => "general",
            Class::D => "admonition",
        }
    }

    /// The Chinese name used by the source [002].
    pub fn name_zh(self) -> &'static str {
        match self {
            Class::A => "重大投诉",
            Class::B => "严重投诉",
            Class::C => "一般投诉",
            Class::D => "告诫",
        }
    }
}

impl PartialOrd for Class {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// By severity: A is the highest, so `max` of several classes is the most severe.
impl Ord for Class {
    fn cmp(&self, other: &Self) -> Ordering {
        self.severity().cmp(&other.severity())
    }
}

text_enum! {
    /// How strongly the customer expresses the complaint (DOMAIN §2). Recorded apart from the
    /// real harm [001 §3.1], so venting alone is one criterion among several.
    #[derive(PartialOrd, Ord)]
    pub enum EmotionLevel ("emotion level") {
        /// 情绪较平稳 — class C.
        Calm => "calm",
        /// 情绪强烈 — class B.
        Strong => "strong",
        /// 情绪极度强烈 — class A.
        ExtremelyStrong => "extremely_strong",
    }
}

text_enum! {
    /// Negative impact on the company's image (DOMAIN §2).
    #[derive(PartialOrd, Ord)]
    pub enum PublicImpact ("public impact") {
        /// None — no criterion.
        None => "none",
        /// 一定的负面影响 — class B.
        Some => "some",
        /// 在社会上造成较大负面影响 — class A.
        Large => "large",
    }
}

text_enum! {
    /// Breach of procedure or of responsibility by staff (DOMAIN §2).
    #[derive(PartialOrd, Ord)]
    pub enum ProcedureBreach ("procedure breach") {
        /// None; at most poor communication or service — class C.
        None => "none",
        /// 违反操作规程、责任心不强 — class B.
        Breach => "breach",
        /// 严重违反操作规程,没有责任心 — class A.
        Severe => "severe",
    }
}

/// The facts DOMAIN §2 classifies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassificationFacts {
    /// How strongly the customer expresses it.
    pub emotion: EmotionLevel,
    /// The company's economic loss.
    pub company_loss: Money,
    /// The customer's economic loss.
    pub customer_loss: Money,
    /// Negative impact on the company's image.
    pub public_impact: PublicImpact,
    /// Breach of procedure by staff.
    pub procedure_breach: ProcedureBreach,
}

impl Default for ClassificationFacts {
    /// The mildest facts: calm, no loss, no impact, no breach (class C).
    fn default() -> Self {
        ClassificationFacts {
            emotion: EmotionLevel::Calm,
            company_loss: Money::ZERO,
            customer_loss: Money::ZERO,
            public_impact: PublicImpact::None,
            procedure_breach: ProcedureBreach::None,
        }
    }
}

/// Which criterion of DOMAIN §2 a reason is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// The customer's emotion.
    Emotion,
    /// The company's economic loss.
    CompanyLoss,
    /// The customer's economic loss.
    CustomerLoss,
    /// Negative public impact.
    PublicImpact,
    /// Breach of procedure.
    ProcedureBreach,
}

/// One criterion and what it says, e.g. "company loss 3000.01 > 3000.00".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The criterion.
    pub criterion: Criterion,
    /// The class this criterion alone reaches.
    pub class: Class,
    /// For people.
    pub text: String,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The class and every criterion that reached it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// The highest class any criterion reaches.
    pub class: Class,
    /// The criteria that reached `class` (not those below it), in a fixed order.
    pub reasons: Vec<Reason>,
}

impl Classification {
    /// The reasons joined for display: "emotion strong; company loss 0.01 > 0.00".
    pub fn summary(&self) -> String {
        self.reasons
            .iter()
            .map(|r| r.text.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Classifies by DOMAIN §2 and §9: each criterion reaches a class, the complaint gets the
/// highest; "Any A criterion makes it A, else any B criterion makes it B" and "a loss to the
/// customer rules out C". Thresholds come from `policy.classification`.
pub fn classify(policy: &Policy, facts: &ClassificationFacts) -> Classification {
    let thresholds = &policy.classification;
    let mut findings: Vec<Reason> = Vec::with_capacity(5);
    let mut note = |criterion, class, text: String| {
        findings.push(Reason {
            criterion,
            class,
            text,
        })
    };

    let emotion_class = match facts.emotion {
        EmotionLevel::ExtremelyStrong => Class::A,
        EmotionLevel::Strong => Class::B,
        EmotionLevel::Calm => Class::C,
    };
    note(
        Criterion::Emotion,
        emotion_class,
        format!("emotion {}", facts.emotion.as_str().replace('_', " ")),
    );

    let loss = facts.company_loss;
    if loss > thresholds.class_a_company_loss_above {
        note(
            Criterion::CompanyLoss,
            Class::A,
            format!(
                "company loss {loss} > {}",
                thresholds.class_a_company_loss_above
            ),
        );
    } else if loss > thresholds.class_b_company_loss_above {
        note(
            Criterion::CompanyLoss,
            Class::B,
            format!(
                "company loss {loss} > {} and <= {}",
                thresholds.class_b_company_loss_above, thresholds.class_a_company_loss_above
            ),
        );
    } else {
        note(
            Criterion::CompanyLoss,
            Class::C,
            format!(
                "company loss {loss} <= {}",
                thresholds.class_b_company_loss_above
            ),
        );
    }

    let loss = facts.customer_loss;
    if loss > thresholds.class_b_customer_loss_above {
        note(
            Criterion::CustomerLoss,
            Class::B,
            format!(
                "customer loss {loss} > {} rules out C",
                thresholds.class_b_customer_loss_above
            ),
        );
    } else {
        note(
            Criterion::CustomerLoss,
            Class::C,
            format!("no customer loss ({loss})"),
        );
    }

    let impact_class = match facts.public_impact {
        PublicImpact::Large => Class::A,
        PublicImpact::Some => Class::B,
        PublicImpact::None => Class::C,
    };
    note(
        Criterion::PublicImpact,
        impact_class,
        format!("public impact {}", facts.public_impact),
    );

    let breach_class = match facts.procedure_breach {
        ProcedureBreach::Severe => Class::A,
        ProcedureBreach::Breach => Class::B,
        ProcedureBreach::None => Class::C,
    };
    note(
        Criterion::ProcedureBreach,
        breach_class,
        format!("procedure breach {}", facts.procedure_breach),
    );

    let class = findings.iter().map(|r| r.class).max().unwrap_or(Class::C);
    findings.retain(|r| r.class == class);
    Classification {
        class,
        reasons: findings,
    }
}

/// Why a class override was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReclassificationError {
    /// DOMAIN §2: "Staff may override the class with a reason" — the reason is required.
    #[error("a class override needs a reason")]
    MissingReason,
    /// Overriding a class with itself records nothing.
    #[error("the complaint is already class {0}")]
    SameClass(Class),
}

/// A staff override of the class, with its reason (DOMAIN §2: "kept in the history").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawReclassification")]
pub struct Reclassification {
    from: Class,
    to: Class,
    reason: String,
}

#[derive(Deserialize)]
struct RawReclassification {
    from: Class,
    to: Class,
    reason: String,
}

impl TryFrom<RawReclassification> for Reclassification {
    type Error = ReclassificationError;
    fn try_from(raw: RawReclassification) -> Result<Self, Self::Error> {
        Reclassification::new(raw.from, raw.to, &raw.reason)
    }
}

impl Reclassification {
    /// An override from `from` to `to`; the reason is trimmed and must not be empty.
    pub fn new(from: Class, to: Class, reason: &str) -> Result<Self, ReclassificationError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ReclassificationError::MissingReason);
        }
        if from == to {
            return Err(ReclassificationError::SameClass(from));
        }
        Ok(Reclassification {
            from,
            to,
            reason: reason.to_owned(),
        })
    }

    /// The class before.
    pub fn from(&self) -> Class {
        self.from
    }

    /// The class after.
    pub fn to(&self) -> Class {
        self.to
    }

    /// Why, in the words of the person who overrode it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// True when the override raises the class.
    pub fn is_upgrade(&self) -> bool {
        self.to > self.from
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ClassificationFacts {
        ClassificationFacts::default()
    }

    fn class_of(f: ClassificationFacts) -> Class {
        classify(&Policy::default(), &f).class
    }

    fn yuan(s: &str) -> Money {
        Money::parse_yuan(s).unwrap()
    }

    #[test]
    fn class_order_puts_a_highest() {
        assert!(Class::A > Class::B && Class::B > Class::C && Class::C > Class::D);
        assert_eq!(
            [Class::C, Class::A, Class::D].into_iter().max(),
            Some(Class::A)
        );
        let mut all = Class::ALL.to_vec();
        all.sort();
        assert_eq!(all, vec![Class::D, Class::C, Class::B, Class::A]);
    }

    #[test]
    fn class_text_and_limits() {
        assert_eq!(Class::parse("b"), Ok(Class::B));
        assert_eq!(Class::B.as_str(), "B");
        assert!(Class::parse("E").is_err());
        assert_eq!(Class::A.limit(&Policy::default()), Duration::hours(8));
        assert_eq!(Class::D.limit(&Policy::default()), Duration::hours(48));
        assert_eq!(Class::A.name(), "major");
    }

    #[test]
    fn mildest_facts_are_c_never_d() {
        let c = classify(&Policy::default(), &facts());
        assert_eq!(c.class, Class::C);
        assert_eq!(c.reasons.len(), 5, "every criterion sits at C: {c:?}");
    }

    #[test]
    fn company_loss_boundaries() {
        let with_loss = |s| ClassificationFacts {
            company_loss: yuan(s),
            ..facts()
        };
        assert_eq!(class_of(with_loss("0")), Class::C);
        assert_eq!(class_of(with_loss("0.01")), Class::B);
        assert_eq!(class_of(with_loss("3000.00")), Class::B);
        assert_eq!(class_of(with_loss("3000.01")), Class::A);
        let a = classify(&Policy::default(), &with_loss("3000.01"));
        assert_eq!(a.reasons.len(), 1);
        assert_eq!(a.reasons[0].text, "company loss 3000.01 > 3000.00");
        assert_eq!(a.reasons[0].criterion, Criterion::CompanyLoss);
    }

    #[test]
    fn customer_loss_rules_out_c_but_never_reaches_a() {
        let with_loss = |s| ClassificationFacts {
            customer_loss: yuan(s),
            ..facts()
        };
        assert_eq!(class_of(with_loss("0")), Class::C);
        assert_eq!(class_of(with_loss("0.01")), Class::B);
        assert_eq!(class_of(with_loss("1000000")), Class::B);
        let b = classify(&Policy::default(), &with_loss("12.50"));
        assert_eq!(b.reasons[0].text, "customer loss 12.50 > 0.00 rules out C");
    }

    #[test]
    fn each_emotion_level() {
        let with = |emotion| ClassificationFacts { emotion, ..facts() };
        assert_eq!(class_of(with(EmotionLevel::Calm)), Class::C);
        assert_eq!(class_of(with(EmotionLevel::Strong)), Class::B);
        assert_eq!(class_of(with(EmotionLevel::ExtremelyStrong)), Class::A);
        let a = classify(&Policy::default(), &with(EmotionLevel::ExtremelyStrong));
        assert_eq!(a.summary(), "emotion extremely strong");
    }

    #[test]
    fn each_public_impact() {
        let with = |public_impact| ClassificationFacts {
            public_impact,
            ..facts()
        };
        assert_eq!(class_of(with(PublicImpact::None)), Class::C);
        assert_eq!(class_of(with(PublicImpact::Some)), Class::B);
        assert_eq!(class_of(with(PublicImpact::Large)), Class::A);
    }

    #[test]
    fn each_procedure_breach() {
        let with = |procedure_breach| ClassificationFacts {
            procedure_breach,
            ..facts()
        };
        assert_eq!(class_of(with(ProcedureBreach::None)), Class::C);
        assert_eq!(class_of(with(ProcedureBreach::Breach)), Class::B);
        assert_eq!(class_of(with(ProcedureBreach::Severe)), Class::A);
    }

    #[test]
    fn highest_criterion_wins_and_all_reaching_it_are_listed() {
        let f = ClassificationFacts {
            emotion: EmotionLevel::Strong,
            company_loss: yuan("3000.01"),
            customer_loss: yuan("5"),
            public_impact: PublicImpact::Large,
            procedure_breach: ProcedureBreach::Breach,
        };
        let c = classify(&Policy::default(), &f);
        assert_eq!(c.class, Class::A);
        let criteria: Vec<_> = c.reasons.iter().map(|r| r.criterion).collect();
        assert_eq!(
            criteria,
            vec![Criterion::CompanyLoss, Criterion::PublicImpact]
        );

        let calm_but_breach = ClassificationFacts {
            procedure_breach: ProcedureBreach::Breach,
            ..facts()
        };
        assert_eq!(class_of(calm_but_breach), Class::B);
    }

    #[test]
    fn thresholds_come_from_the_policy() {
        let mut policy = Policy::default();
        policy.classification.class_a_company_loss_above = Money::from_fen(100_000);
        let f = ClassificationFacts {
            company_loss: yuan("1000.01"),
            ..facts()
        };
        assert_eq!(classify(&policy, &f).class, Class::A);
        assert_eq!(class_of(f), Class::B);
    }

    #[test]
    fn enums_parse_case_insensitively_and_name_allowed_values() {
        assert_eq!(
            EmotionLevel::parse("Extremely_Strong"),
            Ok(EmotionLevel::ExtremelyStrong)
        );
        assert_eq!(PublicImpact::parse("LARGE"), Ok(PublicImpact::Large));
        assert_eq!(
            ProcedureBreach::parse("severe"),
            Ok(ProcedureBreach::Severe)
        );
        let err = EmotionLevel::parse("furious").unwrap_err();
        assert!(
            err.to_string().contains("calm, strong, extremely_strong"),
            "{err}"
        );
    }

    #[test]
    fn reclassification_needs_a_reason_and_a_change() {
        assert_eq!(
            Reclassification::new(Class::C, Class::B, "  "),
            Err(ReclassificationError::MissingReason)
        );
        assert_eq!(
            Reclassification::new(Class::B, Class::B, "same"),
            Err(ReclassificationError::SameClass(Class::B))
        );
        let r = Reclassification::new(Class::C, Class::A, " reporter called ").unwrap();
        assert_eq!(r.reason(), "reporter called");
        assert!(r.is_upgrade());
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Reclassification>(&json).unwrap(), r);
        assert!(
            serde_json::from_str::<Reclassification>(r#"{"from":"C","to":"B","reason":""}"#)
                .is_err()
        );
    }
}
