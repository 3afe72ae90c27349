//! Customer types and how to respond to each, shown to the handler.
//!
//! DOMAIN §2: "Customer type [000 scenes 1-8; 002 slides 16-19], each with a recommended way to
//! respond, shown to the handler ... Three carry actions [002]: **restrained anger** → assign
//! someone more senior; **venting anger** → the customer is told it will be reported upward, and
//! it is; **threatening** → offer 2–3 solutions, keep watching, and **report to a superior
//! immediately**."
//!
//! The advice is text for people, paraphrased in English from the Chinese sources with the
//! original's gist alongside; the [`Action`]s are what the workflow acts on (the escalation
//! service reports upward, routing assigns a senior handler). "Talkative" appears in both
//! sources (000 scene 6 喋喋不休, 002 slide 18 发言型) and is one type here.

use serde::Serialize;

use crate::text::text_enum;

text_enum! {
    /// A customer type of DOMAIN §2.
    pub enum CustomerType ("customer type") {
        /// 理性 — cares about reasons and logic [000 scene 1].
        Rational => "rational",
        /// 感性 — cares about feelings and being valued [000 scene 2].
        Emotional => "emotional",
        /// 态度强硬 — firm demand we cannot meet, with a threat to act [000 scene 3].
        HardLine => "hard_line",
        /// 情绪激动 — scolding or pouring out grievances [000 scene 4].
        Agitated => "agitated",
        /// 现实型 — the complaint is pressure to get a real problem solved [000 scene 5].
        Pragmatic => "pragmatic",
        /// 喋喋不休 / 发言型 — many words, drifting topics [000 scene 6, 002 slide 18].
        Talkative => "talkative",
        /// 宣泄型 — wants mainly to be heard [000 scene 7].
        Venting => "venting",
        /// 要求权益 — wants an explanation and their rights, not compensation [000 scene 8].
        RightsSeeking => "rights_seeking",
        /// 消极者(控制愤怒型) — terse, asks for the decision maker [002 slide 16].
        RestrainedAnger => "restrained_anger",
        /// 发怒者(发泄愤怒型) — openly angry about everything [002 slide 17].
        VentingAnger => "venting_anger",
        /// 危胁型 — many demands, explicit threats, may take other action [002 slide 19].
        Threatening => "threatening",
    }
}

/// Something the workflow does because of the customer type, beyond advising the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Hand the complaint to someone more senior (002 slide 16: 适用职位高一点原则).
    AssignSenior,
    /// Report the complaint upward; `tell_customer`: the customer is told it will be
    /// (002 slide 17: 告知将向上层汇报此事).
    ReportUpward {
        /// Whether the customer is told it will be reported.
        tell_customer: bool,
    },
    /// Offer the customer between `min` and `max` solutions (002 slide 19: 提供2-3个解决方案).
    OfferSolutions {
        /// Fewest solutions to offer.
        min: u8,
        /// Most solutions to offer.
        max: u8,
    },
    /// Keep watching the case after the offer (002 slide 19: 追踪观察).
    KeepWatching,
    /// Report to a superior at once (002 slide 19: 立即向上级反映).
    ReportSuperiorImmediately,
    /// Take the customer away from other customers (002 slides 17 and 19: 与其他用户隔离).
    SeparateFromOthers,
}

impl Action {
    /// True for actions that put the complaint in front of a superior now (DOMAIN §5:
    /// "Threatening customer, venting anger, media risk → a superior at once").
    pub fn reports_upward(&self) -> bool {
        matches!(
            self,
            Action::ReportUpward { .. } | Action::ReportSuperiorImmediately
        )
    }
}

/// The advice for one customer type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Guidance {
    /// Which type this is about.
    pub customer_type: CustomerType,
    /// How the type shows itself, in English.
    pub signs: &'static str,
    /// How to respond, in English.
    pub text: &'static str,
    /// The gist of the Chinese source.
    pub original_zh: &'static str,
    /// Where it comes from, e.g. "000 scene 1".
    pub source: &'static str,
    /// What the workflow does about it.
    pub actions: Vec<Action>,
}

impl CustomerType {
    /// English display name, e.g. "restrained anger".
    pub fn label(self) -> &'static str {
        match self {
            CustomerType::Rational => "rational",
            CustomerType::Emotional => "emotional",
            CustomerType::HardLine => "hard-line",
            CustomerType::Agitated => "agitated",
            CustomerType::Pragmatic => "pragmatic",
            CustomerType::Talkative => "talkative",
            CustomerType::Venting => "venting",
            CustomerType::RightsSeeking => "rights-seeking",
            CustomerType::RestrainedAnger => "restrained anger",
            CustomerType::VentingAnger => "venting anger",
            CustomerType::Threatening => "threatening",
        }
    }

    /// The recommended way to respond, and the actions it carries (DOMAIN §2).
    pub fn guidance(&self) -> Guidance {
        let (signs, text, original_zh, source, actions): (_, _, _, _, Vec<Action>) = match self {
            CustomerType::Rational => (
                "Cares about reasons; thinks things through and wants logic.",
                "Reason with them: explain the rule or process and the grounds for it until it \
                 makes sense to them. Never improvise an explanation you cannot back up — it \
                 will sound like twisting words and make things worse.",
                "理性的客户:晓之以理。让客户从逻辑上认同公司的规章、流程;对完全无法理解理由和依据的事情,绝对不要瞎解释,否则让对方认为我们强词夺理。",
                "000 scene 1",
                vec![],
            ),
            CustomerType::Emotional => (
                "Cares about how they are treated and about feelings.",
                "Appeal to feeling: show that the company values them and is doing its best for \
                 them; apologise for the trouble, say their account will be recorded and passed \
                 to the department concerned so it does not happen again.",
                "感性的客户:动之以情。让客户从感情上认同公司在努力提供尽可能好的服务;致歉,记录并反馈相关部门,避免问题再次出现。",
                "000 scene 2",
                vec![],
            ),
            CustomerType::HardLine => (
                "States a clear demand we cannot meet, with a threat of action if it is not met.",
                "First build rapport, for example by acknowledging their knowledge as a long-time \
                 customer; then state the company's position firmly and early. Promise to pass \
                 the case to the department, check it and call back.",
                "态度强硬的客户:先表扬客户,达到亲和、关怀的目的;再第一时间坚定立场,软化客户意志;反馈相关部门,查证后再联络。",
                "000 scene 3",
                vec![],
            ),
            CustomerType::Agitated => (
                "Scolds or pours out grievances: the cause, the background, the harm and the \
                 hurt feelings.",
                "Let them vent and show you are listening with short acknowledgements. When they \
                 drift off the subject, bring them back with a series of questions, e.g. \"How \
                 would you like us to resolve this?\"",
                "情绪激动的客户:适时回应,引导客户发泄;客户跑题时用连续提问引导思路回到业务话题(您希望我们怎样帮您解决呢?)。",
                "000 scene 4",
                vec![],
            ),
            CustomerType::Pragmatic => (
                "Under real pressure; the complaint (about attitude or rules) is leverage to get \
                 their own problem solved.",
                "Solve the underlying problem — that is what ends the complaint. If it cannot be \
                 solved yet, offer another way to reach the same result in the meantime.",
                "现实型客户:投诉本身或许不是目的;解决客户的问题是化解抱怨的途径;暂时无法解决时寻求替代方案达到同样结果。",
                "000 scene 5",
                vec![],
            ),
            CustomerType::Talkative => (
                "Talks a lot, drifts between topics, criticises, insists on their view and \
                 enjoys winning the argument.",
                "Be sincere to win trust; note the key points; avoid small talk and use questions \
                 to pin down what they want and keep control; once the problem is clear, confirm \
                 it with yes/no questions and in writing; stay calm, propose the follow-up steps \
                 and get their agreement. Mind the time spent.",
                "喋喋不休/发言型客户:态度真诚取得信任;记录重点;避免闲谈,用问题确定目的并取得主动;问题清楚后用是或否的封闭提问确认;保持冷静,提出跟进事项并获得顾客同意;节约处理时间。",
                "000 scene 6; 002 slide 18",
                vec![],
            ),
            CustomerType::Venting => (
                "Mostly wants someone to complain to.",
                "Listen above all. Do not spend long explaining the handling plan: patient \
                 listening in itself is usually enough to dissolve the complaint.",
                "宣泄型客户:投诉处理是听说读写的过程,以听为主;耐心倾听本身就足以化解客户的抱怨。",
                "000 scene 7",
                vec![],
            ),
            CustomerType::RightsSeeking => (
                "Wants no compensation, only an explanation and their rights acknowledged.",
                "Give a sound explanation — the standard official wording is better than an \
                 improvised one. Collect their opinions and suggestions and say they will be \
                 reported upward.",
                "要求权益的客户:给客户一个合理的解释,或用标准统一口径,好过乱解释;收集客户意见和建议,表示会向上反映。",
                "000 scene 8",
                vec![],
            ),
            CustomerType::RestrainedAnger => (
                "Terse; goes straight for whoever decides; will not answer questions, keeps \
                 asking them. Often senior, holding back anger for the sake of status and short \
                 of time.",
                "Show respect and use polite forms; repeat their key points so they feel heard; \
                 stay at your post and explain. Have someone more senior take it over.",
                "消极者(控制愤怒型):尊重顾客,多使用敬语;重复顾客说话的重点;紧守岗位并向顾客解释;适用职位高一点原则。",
                "002 slide 16",
                vec![Action::AssignSenior],
            ),
            CustomerType::VentingAnger => (
                "Volunteers every grievance, exaggerated in words and gestures, related or not; \
                 angry at something or someone else, tired or under pressure.",
                "Take them away from other customers; let them vent; acknowledge and share their \
                 feelings; answer positively; change the subject when you can; involve them in \
                 the decision. Tell them it will be reported to management — and report it.",
                "发怒者(发泄愤怒型):与其他用户隔离;给顾客机会发泄情绪;认同及体谅顾客的感受;作出肯定、正面的回应;转换话题;让顾客一同参与做决定;告知将向上层汇报此事。",
                "002 slide 17",
                vec![
                    Action::SeparateFromOthers,
                    Action::ReportUpward {
                        tell_customer: true,
                    },
                ],
            ),
            CustomerType::Threatening => (
                "Makes many demands, reasonable and not; threatens and names the compensation \
                 wanted; may take other action.",
                "Take them away from other customers; offer help and meet the reasonable demands; \
                 offer two or three solutions; keep watching the case; report to your superior \
                 immediately.",
                "危胁型:与其他用户隔离;主动提供帮助,满足用户的合理要求;提供2-3个解决方案;追踪观察;立即向上级反映。",
                "002 slide 19",
                vec![
                    Action::SeparateFromOthers,
                    Action::OfferSolutions { min: 2, max: 3 },
                    Action::KeepWatching,
                    Action::ReportSuperiorImmediately,
                ],
            ),
        };
        Guidance {
            customer_type: *self,
            signs,
            text,
            original_zh,
            source,
            actions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_guidance_and_a_source() {
        assert_eq!(CustomerType::ALL.len(), 11);
        for t in CustomerType::ALL {
            let g = t.guidance();
            assert_eq!(g.customer_type, *t);
            assert!(!g.text.is_empty() && !g.signs.is_empty() && !g.original_zh.is_empty());
            assert!(
                g.source.starts_with("000") || g.source.starts_with("002"),
                "{t}"
            );
        }
    }

    #[test]
    fn the_three_actions_of_domain_section_2() {
        assert_eq!(
            CustomerType::RestrainedAnger.guidance().actions,
            vec![Action::AssignSenior]
        );
        let venting = CustomerType::VentingAnger.guidance().actions;
        assert!(venting.contains(&Action::ReportUpward {
            tell_customer: true
        }));
        let threatening = CustomerType::Threatening.guidance().actions;
        assert!(threatening.contains(&Action::OfferSolutions { min: 2, max: 3 }));
        assert!(threatening.contains(&Action::ReportSuperiorImmediately));
        assert!(threatening.contains(&Action::KeepWatching));
    }

    #[test]
    fn only_venting_anger_and_threatening_report_upward() {
        let reporting: Vec<_> = CustomerType::ALL
            .iter()
            .filter(|t| t.guidance().actions.iter().any(Action::reports_upward))
            .copied()
            .collect();
        assert_eq!(
            reporting,
            vec![CustomerType::VentingAnger, CustomerType::Threatening]
        );
    }

    #[test]
    fn parses_snake_case_and_serialises_guidance() {
        assert_eq!(CustomerType::parse("Hard-Line"), Ok(CustomerType::HardLine));
        assert_eq!(
            CustomerType::parse("restrained_anger"),
            Ok(CustomerType::RestrainedAnger)
        );
        assert!(CustomerType::parse("grumpy").is_err());
        let json = serde_json::to_value(CustomerType::Threatening.guidance()).unwrap();
        assert_eq!(json["customer_type"], "threatening");
        assert_eq!(json["actions"][1]["action"], "offer_solutions");
        assert_eq!(json["actions"][1]["max"], 3);
    }
}
