//! The complaint record of DOMAIN §1, and the one gate every submission passes through.
//!
//! Parse, don't validate: edges (gRPC, NATS events from call-centre systems, the CLI) fill a
//! [`SubmissionDraft`] with whatever arrived — raw strings, maybe blank, maybe nonsense — and
//! [`validate`] turns it into a [`ComplaintRecord`] whose fields are already the domain types
//! ([`Phone`], [`Money`], [`Channel`]…), or returns **every** problem at once so the caller can
//! fix them in one round trip. Nothing downstream re-checks a record.
//!
//! DOMAIN §1: "Do not pass a complaint on before it is understood: routing waits until the
//! required fields are complete and the record is confirmed." Completeness is enforced here;
//! confirmation may come with the submission ([`ComplaintRecord::is_confirmed`]) or later.
//!
//! Text is stored as received (after trimming): Chinese, rare CJK Extension B characters and
//! emoji pass byte for byte; no Unicode normalisation is applied. The only rewrite is `\r\n` →
//! `\n`, so text typed into a web form (which sends CRLF) is not refused as containing a control
//! character.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::classification::{
    Classification, ClassificationFacts, EmotionLevel, ProcedureBreach, PublicImpact, classify,
};
use crate::customer_type::CustomerType;
use crate::email::Email;
use crate::money::Money;
use crate::phone::Phone;
use crate::policy::{FieldLimits, Policy};
use crate::text::{UnknownValue, text_enum, token_matches};

text_enum! {
    /// How the complaint reached the company (DOMAIN §1).
    pub enum Channel ("channel") {
        /// Walk-in at a counter or business hall.
        Counter => "counter",
        /// The complaint hotline (来电).
        Hotline => "hotline",
        /// A letter (来信).
        Letter => "letter",
        /// The opinion board (意见板).
        OpinionBoard => "opinion_board",
        /// Told directly to a member of staff (直接投诉).
        DirectToStaff => "direct_to_staff",
        /// Passed on by the manufacturer's or head office's line (002's "800 line").
        HeadOfficeLine => "head_office_line",
        /// Press or other media (报刊媒介).
        Media => "media",
        /// A consumer association (消协).
        ConsumerAssociation => "consumer_association",
        /// A web form, app or e-mail.
        Online => "online",
    }
}

impl Channel {
    /// DOMAIN §2: "a complaint from or threatening the media / consumer association gets top
    /// priority and goes up at once" — arriving through them is media risk by definition.
    pub fn is_media_risk(self) -> bool {
        matches!(self, Channel::Media | Channel::ConsumerAssociation)
    }
}

text_enum! {
    /// How the customer wants to hear back (DOMAIN §1, [004 §4.1]).
    pub enum ReplyChannel ("reply channel") {
        /// A phone call.
        Phone => "phone",
        /// A text message.
        Sms => "sms",
        /// An e-mail.
        Email => "email",
    }
}

text_enum! {
    /// What the first employee asked did (DOMAIN §1, first-contact responsibility 首问责任制).
    pub enum FirstContactDisposition ("first-contact disposition") {
        /// Told the customer at once which department handles it, with a contact person and phone.
        ToldDepartment => "told_department",
        /// Recorded the complaint and passed it to the customer-service centre.
        PassedToServiceCentre => "passed_to_service_centre",
    }
}

text_enum! {
    /// How the customer confirmed the record read back to them (DOMAIN §1).
    pub enum ConfirmationMethod ("confirmation method") {
        /// Signed.
        Signature => "signature",
        /// Said yes in person.
        Verbal => "verbal",
        /// Said yes on the phone.
        Phone => "phone",
    }
}

// ---------------------------------------------------------------------------------------------
// What arrives

/// A submission as it arrives from an edge: nothing checked yet. Blank strings and `None` mean
/// the same ("not given"), so an edge can copy proto3 strings straight in. `Debug` masks the
/// customer's name, phone and e-mail ([`crate::personal`]).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubmissionDraft {
    /// The integrating system, e.g. `callcentre` (letters, digits, `_ - .`).
    pub source_system: String,
    /// That system's id for the complaint; with `source_system`, the deduplication key.
    pub external_id: String,
    /// Customer name.
    pub customer_name: String,
    /// Contact phone, any common notation.
    pub customer_phone: String,
    /// Customer account number.
    pub customer_account: Option<String>,
    /// Customer e-mail address.
    pub customer_email: Option<String>,
    /// `phone`, `sms` or `email`; default `phone`.
    pub preferred_reply: Option<String>,
    /// One of [`Channel`]'s names.
    pub channel: String,
    /// When it happened.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Business or product concerned.
    pub business: String,
    /// What went wrong.
    pub description: String,
    /// What the customer asks for (诉求).
    pub demand: String,
    /// How serious the customer feels it is, in their words.
    pub perceived_severity: Option<String>,
    /// One of [`EmotionLevel`]'s names; default `calm`.
    pub emotion: Option<String>,
    /// The company's loss in fen.
    pub company_loss_fen: i64,
    /// The customer's loss in fen.
    pub customer_loss_fen: i64,
    /// One of [`PublicImpact`]'s names; default `none`.
    pub public_impact: Option<String>,
    /// One of [`ProcedureBreach`]'s names; default `none`.
    pub procedure_breach: Option<String>,
    /// A policy category code; blank = not yet categorised.
    pub category: Option<String>,
    /// A group (群体性) complaint.
    pub group_complaint: bool,
    /// Customers affected; 0 is read as 1 (the complainant).
    pub customers_affected: u32,
    /// The media or a consumer association is involved or threatened.
    pub media_risk: bool,
    /// One of [`CustomerType`]'s names.
    pub customer_type: Option<String>,
    /// The unit or person complained about.
    pub complained_about: Option<String>,
    /// Call records, logs, service records.
    pub evidence_refs: Vec<String>,
    /// Region or site.
    pub region: Option<String>,
    /// Who was asked first, and what they did.
    pub first_contact: FirstContactDraft,
    /// Present when the record was already read back and confirmed.
    pub confirmation: Option<ConfirmationDraft>,
}

impl std::fmt::Debug for SubmissionDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::personal::mask;
        f.debug_struct("SubmissionDraft")
            .field("source_system", &self.source_system)
            .field("external_id", &self.external_id)
            .field("customer_name", &mask(&self.customer_name))
            .field("customer_phone", &mask(&self.customer_phone))
            .field("customer_account", &self.customer_account)
            .field("customer_email", &self.customer_email.as_deref().map(mask))
            .field("channel", &self.channel)
            .field("business", &self.business)
            .field("category", &self.category)
            .field("emotion", &self.emotion)
            .field("public_impact", &self.public_impact)
            .field("media_risk", &self.media_risk)
            .field("group_complaint", &self.group_complaint)
            .field("first_contact", &self.first_contact.employee_id)
            .finish_non_exhaustive()
    }
}

/// The first-contact part of a [`SubmissionDraft`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FirstContactDraft {
    /// Employee id of the first person asked.
    pub employee_id: String,
    /// Their name.
    pub employee_name: Option<String>,
    /// `told_department` or `passed_to_service_centre`; default `passed_to_service_centre`.
    pub disposition: Option<String>,
    /// The department the customer was told about.
    pub department_told: Option<String>,
    /// The contact person the customer was given.
    pub contact_person: Option<String>,
    /// The contact phone the customer was given.
    pub contact_phone: Option<String>,
}

/// The confirmation part of a [`SubmissionDraft`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfirmationDraft {
    /// `signature`, `verbal` or `phone`.
    pub method: String,
    /// When; default the time of receipt.
    pub confirmed_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------------------------------------
// What is kept

/// Where a submission came from. The pair is unique: DOMAIN §1, "The same complaint is never
/// recorded twice (a caller re-sending, an integration retrying)".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceRef {
    /// The integrating system (letters, digits, `_ - .`; never `:`).
    pub system: String,
    /// That system's id for the complaint.
    pub external_id: String,
}

impl SourceRef {
    /// `system:external_id` — unambiguous because a system name never contains `:`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.system, self.external_id)
    }
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.system, self.external_id)
    }
}

/// The customer (DOMAIN §1). `Debug` masks the name ([`crate::personal`]); the phone and
/// e-mail mask themselves.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Name.
    pub name: String,
    /// Contact phone, normalised.
    pub phone: Phone,
    /// Account number.
    pub account: Option<String>,
    /// E-mail address.
    pub email: Option<Email>,
    /// How they want to hear back.
    pub preferred_reply: ReplyChannel,
}

impl std::fmt::Debug for Customer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Customer")
            .field("name", &crate::personal::mask(&self.name))
            .field("phone", &self.phone)
            .field("account", &self.account)
            .field("email", &self.email)
            .field("preferred_reply", &self.preferred_reply)
            .finish()
    }
}

/// Isolated or group complaint (DOMAIN §2: scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// A group (群体性) complaint.
    pub group_complaint: bool,
    /// Customers affected, at least 1.
    pub customers_affected: u32,
}

/// First-contact responsibility (DOMAIN §1: 首问责任制).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstContact {
    /// Employee id of the first person asked.
    pub employee_id: String,
    /// Their name.
    pub employee_name: Option<String>,
    /// What they did.
    pub disposition: FirstContactDisposition,
    /// The department the customer was told about (required when told).
    pub department_told: Option<String>,
    /// The contact person the customer was given (required when told).
    pub contact_person: Option<String>,
    /// The contact phone the customer was given (required when told).
    pub contact_phone: Option<Phone>,
}

/// The customer's confirmation of the record (DOMAIN §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// Signature, verbal or phone.
    pub method: ConfirmationMethod,
    /// When.
    pub confirmed_at: DateTime<Utc>,
}

/// A complete complaint record (DOMAIN §1). Built only by [`validate`]; the fields are public
/// for reading and for storage round trips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintRecord {
    /// Where it came from; the deduplication key.
    pub source: SourceRef,
    /// Who complains and how to answer them.
    pub customer: Customer,
    /// How it arrived.
    pub channel: Channel,
    /// When it happened, if known.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Business or product concerned.
    pub business: String,
    /// What went wrong.
    pub description: String,
    /// What the customer asks for (诉求).
    pub demand: String,
    /// How serious the customer feels it is, in their words.
    pub perceived_severity: Option<String>,
    /// The facts classification reads (DOMAIN §2).
    pub facts: ClassificationFacts,
    /// Policy category code; `None` until categorised at analysis.
    pub category: Option<String>,
    /// Isolated or group.
    pub scope: Scope,
    /// Media or consumer association involved or threatened (also set by the channel).
    pub media_risk: bool,
    /// Customer type, if judged at intake.
    pub customer_type: Option<CustomerType>,
    /// The unit or person complained about [003].
    pub complained_about: Option<String>,
    /// Evidence references [004 §2.2].
    pub evidence_refs: Vec<String>,
    /// Region or site.
    pub region: Option<String>,
    /// Who was asked first.
    pub first_contact: FirstContact,
    /// Present once the customer confirmed the record.
    pub confirmation: Option<Confirmation>,
    /// When the system received it: every limit runs from here.
    pub received_at: DateTime<Utc>,
}

impl ComplaintRecord {
    /// DOMAIN §1: "A submission can arrive already confirmed ...: then routing starts on receipt."
    pub fn is_confirmed(&self) -> bool {
        self.confirmation.is_some()
    }

    /// The class its facts reach (DOMAIN §2, §9).
    pub fn classify(&self, policy: &Policy) -> Classification {
        classify(policy, &self.facts)
    }
}

// ---------------------------------------------------------------------------------------------
// The gate

/// One problem with a submission: where (a dotted path such as `customer.phone` or
/// `evidence_refs[2]`) and why, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Dotted path of the field in the record.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Checks a submission against DOMAIN §1 and the policy's field limits and builds the record,
/// or returns every problem found. `now` is the time of receipt.
///
/// Field paths in errors: `source.system`, `source.external_id`, `customer.name`,
/// `customer.phone`, `customer.account`, `customer.email`, `customer.preferred_reply`,
/// `channel`, `occurred_at`, `business`, `description`, `demand`, `perceived_severity`,
/// `facts.emotion`, `facts.company_loss_fen`, `facts.customer_loss_fen`, `facts.public_impact`,
/// `facts.procedure_breach`, `category`, `customer_type`, `complained_about`, `evidence_refs`,
/// `evidence_refs[i]`, `region`, `first_contact.employee_id`, `first_contact.employee_name`,
/// `first_contact.disposition`, `first_contact.department_told`, `first_contact.contact_person`,
/// `first_contact.contact_phone`, `confirmation.method`, `confirmation.confirmed_at`.
///
/// Rules beyond "required" and "at most N characters":
/// - text is trimmed; control characters other than line feed and tab are refused, and
///   single-line fields (names, ids, phone-like fields) refuse those too;
/// - `occurred_at` may be at most `fields.clock_skew` in the future and `fields.max_occurred_age`
///   in the past;
/// - losses are never negative;
/// - `category`, when given, must be a policy category code (case-insensitive); blank means not
///   yet categorised (DOMAIN §2 records the category at analysis time);
/// - `preferred_reply = email` needs an e-mail address;
/// - `told_department` needs the department, contact person and contact phone (DOMAIN §1);
/// - arriving by media or consumer association sets `media_risk` (DOMAIN §2).
pub fn validate(
    policy: &Policy,
    draft: SubmissionDraft,
    now: DateTime<Utc>,
) -> Result<ComplaintRecord, Vec<FieldError>> {
    let limits = &policy.fields;
    let mut c = Check {
        limits,
        errors: Vec::new(),
    };

    let source = SourceRef {
        system: c.source_system(&draft.source_system),
        external_id: c.required(
            "source.external_id",
            &draft.external_id,
            limits.external_id,
            Line::Single,
        ),
    };

    let name = c.required(
        "customer.name",
        &draft.customer_name,
        limits.customer_name,
        Line::Single,
    );
    let phone = c.required_phone("customer.phone", &draft.customer_phone);
    let account = c.optional(
        "customer.account",
        draft.customer_account.as_deref(),
        limits.customer_account,
        Line::Single,
    );
    let email = c.email("customer.email", draft.customer_email.as_deref());
    let preferred_reply = c
        .optional_enum(
            "customer.preferred_reply",
            draft.preferred_reply.as_deref(),
            ReplyChannel::parse,
        )
        .unwrap_or(ReplyChannel::Phone);
    if preferred_reply == ReplyChannel::Email && email.is_none() && !c.has_error("customer.email") {
        c.fail(
            "customer.email",
            "is required when the preferred reply channel is email",
        );
    }

    let channel = c.required_enum("channel", &draft.channel, Channel::parse);
    let occurred_at = c.occurred_at(draft.occurred_at, now);
    let business = c.required("business", &draft.business, limits.business, Line::Single);
    let description = c.required(
        "description",
        &draft.description,
        limits.description,
        Line::Multi,
    );
    let demand = c.required("demand", &draft.demand, limits.demand, Line::Multi);
    let perceived_severity = c.optional(
        "perceived_severity",
        draft.perceived_severity.as_deref(),
        limits.perceived_severity,
        Line::Multi,
    );

    let facts = ClassificationFacts {
        emotion: c
            .optional_enum(
                "facts.emotion",
                draft.emotion.as_deref(),
                EmotionLevel::parse,
            )
            .unwrap_or(EmotionLevel::Calm),
        company_loss: c.loss("facts.company_loss_fen", draft.company_loss_fen),
        customer_loss: c.loss("facts.customer_loss_fen", draft.customer_loss_fen),
        public_impact: c
            .optional_enum(
                "facts.public_impact",
                draft.public_impact.as_deref(),
                PublicImpact::parse,
            )
            .unwrap_or(PublicImpact::None),
        procedure_breach: c
            .optional_enum(
                "facts.procedure_breach",
                draft.procedure_breach.as_deref(),
                ProcedureBreach::parse,
            )
            .unwrap_or(ProcedureBreach::None),
    };
    let category = c.category(policy, draft.category.as_deref());
    let customer_type = c.optional_enum(
        "customer_type",
        draft.customer_type.as_deref(),
        CustomerType::parse,
    );
    let complained_about = c.optional(
        "complained_about",
        draft.complained_about.as_deref(),
        limits.complained_about,
        Line::Single,
    );
    let evidence_refs = c.evidence_refs(&draft.evidence_refs);
    let region = c.optional(
        "region",
        draft.region.as_deref(),
        limits.region,
        Line::Single,
    );
    let first_contact = c.first_contact(&draft.first_contact);
    let confirmation = draft
        .confirmation
        .as_ref()
        .and_then(|raw| c.confirmation(raw, now));

    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    // Without errors every check produced its value; the `else` is unreachable, but spelled
    // out rather than unwrapped.
    let (Some(phone), Some(channel), Some(first_contact)) = (phone, channel, first_contact) else {
        return Err(vec![FieldError {
            field: "record".to_owned(),
            reason: "incomplete after validation".to_owned(),
        }]);
    };

    Ok(ComplaintRecord {
        source,
        customer: Customer {
            name,
            phone,
            account,
            email,
            preferred_reply,
        },
        media_risk: draft.media_risk || channel.is_media_risk(),
        channel,
        occurred_at,
        business,
        description,
        demand,
        perceived_severity,
        facts,
        category,
        scope: Scope {
            group_complaint: draft.group_complaint,
            customers_affected: draft.customers_affected.max(1),
        },
        customer_type,
        complained_about,
        evidence_refs,
        region,
        first_contact,
        confirmation,
        received_at: now,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Names, ids, short labels: no line breaks or tabs.
    Single,
    /// Descriptions: line breaks and tabs allowed.
    Multi,
}

/// Collects every problem while producing best-effort values, so one pass reports everything.
struct Check<'a> {
    limits: &'a FieldLimits,
    errors: Vec<FieldError>,
}

impl Check<'_> {
    fn fail(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    fn has_error(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    /// Trimmed, CRLF → LF, control characters and length checked. Blank → `""`.
    fn text(&mut self, field: &str, raw: &str, max: usize, line: Line) -> String {
        let normalised;
        let raw = if raw.contains("\r\n") {
            normalised = raw.replace("\r\n", "\n");
            normalised.as_str()
        } else {
            raw
        };
        let text = raw.trim();
        if let Some(bad) = text.chars().find(|&ch| match ch {
            '\n' | '\t' => line == Line::Single,
            ch => ch.is_control(),
        }) {
            let reason = match bad {
                '\n' => "must be a single line".to_owned(),
                '\t' => "must not contain tabs".to_owned(),
                other => format!("contains control character U+{:04X}", u32::from(other)),
            };
            self.fail(field, reason);
        }
        let len = text.chars().count();
        if len > max {
            self.fail(
                field,
                format!("is {len} characters long; at most {max} are allowed"),
            );
        }
        text.to_owned()
    }

    fn required(&mut self, field: &str, raw: &str, max: usize, line: Line) -> String {
        let text = self.text(field, raw, max, line);
        if text.is_empty() {
            self.fail(field, "is required");
        }
        text
    }

    fn optional(
        &mut self,
        field: &str,
        raw: Option<&str>,
        max: usize,
        line: Line,
    ) -> Option<String> {
        let text = self.text(field, raw.unwrap_or(""), max, line);
        (!text.is_empty()).then_some(text)
    }

    fn source_system(&mut self, raw: &str) -> String {
        let field = "source.system";
        let text = self.required(field, raw, self.limits.source_system, Line::Single);
        if text
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            self.fail(
                field,
                "may contain only ASCII letters, digits, '_', '-' and '.'",
            );
        }
        text
    }

    fn required_phone(&mut self, field: &str, raw: &str) -> Option<Phone> {
        if raw.trim().is_empty() {
            self.fail(field, "is required");
            return None;
        }
        match Phone::parse(raw) {
            Ok(phone) => Some(phone),
            Err(e) => {
                self.fail(field, e.to_string());
                None
            }
        }
    }

    fn email(&mut self, field: &str, raw: Option<&str>) -> Option<Email> {
        let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
        let len = raw.chars().count();
        if len > self.limits.customer_email {
            self.fail(
                field,
                format!(
                    "is {len} characters long; at most {} are allowed",
                    self.limits.customer_email
                ),
            );
            return None;
        }
        Email::parse(raw)
            .map_err(|e| self.fail(field, e.to_string()))
            .ok()
    }

    fn required_enum<T>(
        &mut self,
        field: &str,
        raw: &str,
        parse: fn(&str) -> Result<T, UnknownValue>,
    ) -> Option<T> {
        if raw.trim().is_empty() {
            self.fail(field, "is required");
            return None;
        }
        self.optional_enum(field, Some(raw), parse)
    }

    fn optional_enum<T>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        parse: fn(&str) -> Result<T, UnknownValue>,
    ) -> Option<T> {
        let raw = raw.filter(|s| !s.trim().is_empty())?;
        parse(raw).map_err(|e| self.fail(field, e.to_string())).ok()
    }

    fn occurred_at(
        &mut self,
        at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let at = at?;
        let latest = now
            .checked_add_signed(self.limits.clock_skew)
            .unwrap_or(now);
        let earliest = now
            .checked_sub_signed(self.limits.max_occurred_age)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        if at > latest {
            self.fail("occurred_at", format!("{at} is in the future"));
        } else if at < earliest {
            self.fail(
                "occurred_at",
                format!(
                    "{at} is more than {} ago",
                    crate::duration::describe(self.limits.max_occurred_age)
                ),
            );
        }
        Some(at)
    }

    fn loss(&mut self, field: &str, fen: i64) -> Money {
        if fen < 0 {
            self.fail(field, "must not be negative");
        }
        Money::from_fen(fen)
    }

    fn category(&mut self, policy: &Policy, raw: Option<&str>) -> Option<String> {
        let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
        match policy
            .categories
            .iter()
            .find(|c| token_matches(raw, &c.code))
        {
            Some(category) => Some(category.code.clone()),
            None => {
                let allowed: Vec<&str> =
                    policy.categories.iter().map(|c| c.code.as_str()).collect();
                self.fail(
                    "category",
                    format!("unknown category {raw:?}; allowed: {}", allowed.join(", ")),
                );
                None
            }
        }
    }

    fn evidence_refs(&mut self, raw: &[String]) -> Vec<String> {
        let max = self.limits.max_evidence_refs;
        if raw.len() > max {
            self.fail(
                "evidence_refs",
                format!("has {} references; at most {max} are allowed", raw.len()),
            );
        }
        raw.iter()
            .enumerate()
            .map(|(i, r)| {
                self.required(
                    &format!("evidence_refs[{i}]"),
                    r,
                    self.limits.evidence_ref,
                    Line::Single,
                )
            })
            .collect()
    }

    fn first_contact(&mut self, raw: &FirstContactDraft) -> Option<FirstContact> {
        let l = self.limits;
        let employee_id = self.required(
            "first_contact.employee_id",
            &raw.employee_id,
            l.employee_id,
            Line::Single,
        );
        let employee_name = self.optional(
            "first_contact.employee_name",
            raw.employee_name.as_deref(),
            l.employee_name,
            Line::Single,
        );
        let disposition = self.optional_enum(
            "first_contact.disposition",
            raw.disposition.as_deref(),
            FirstContactDisposition::parse,
        );
        let disposition_ok = !self.has_error("first_contact.disposition");
        let disposition = disposition.unwrap_or(FirstContactDisposition::PassedToServiceCentre);
        let department_told = self.optional(
            "first_contact.department_told",
            raw.department_told.as_deref(),
            l.department,
            Line::Single,
        );
        let contact_person = self.optional(
            "first_contact.contact_person",
            raw.contact_person.as_deref(),
            l.contact_person,
            Line::Single,
        );
        let contact_phone_raw = raw
            .contact_phone
            .as_deref()
            .filter(|s| !s.trim().is_empty());
        let contact_phone = match contact_phone_raw {
            Some(p) => self.required_phone("first_contact.contact_phone", p),
            None => None,
        };
        if disposition == FirstContactDisposition::ToldDepartment {
            // DOMAIN §1: "tell the customer at once which department handles it, with a contact
            // person and phone number".
            let why = "is required when the customer was told the department";
            if department_told.is_none() && !self.has_error("first_contact.department_told") {
                self.fail("first_contact.department_told", why);
            }
            if contact_person.is_none() && !self.has_error("first_contact.contact_person") {
                self.fail("first_contact.contact_person", why);
            }
            if contact_phone_raw.is_none() {
                self.fail("first_contact.contact_phone", why);
            }
        }
        disposition_ok.then_some(FirstContact {
            employee_id,
            employee_name,
            disposition,
            department_told,
            contact_person,
            contact_phone,
        })
    }

    fn confirmation(
        &mut self,
        raw: &ConfirmationDraft,
        now: DateTime<Utc>,
    ) -> Option<Confirmation> {
        let method = self.required_enum(
            "confirmation.method",
            &raw.method,
            ConfirmationMethod::parse,
        );
        let confirmed_at = raw.confirmed_at.unwrap_or(now);
        let latest = now
            .checked_add_signed(self.limits.clock_skew)
            .unwrap_or(now);
        if confirmed_at > latest {
            self.fail(
                "confirmation.confirmed_at",
                format!("{confirmed_at} is in the future"),
            );
        }
        Some(Confirmation {
            method: method?,
            confirmed_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T10:00:00+08:00")
            .unwrap()
            .to_utc()
    }

    fn draft() -> SubmissionDraft {
        SubmissionDraft {
            source_system: "callcentre".into(),
            external_id: "CC-2024-000123".into(),
            customer_name: "李雷".into(),
            customer_phone: "138 0013 8000".into(),
            channel: "hotline".into(),
            business: "宽带".into(),
            description: "网络每天晚上断线".into(),
            demand: "尽快修复并减免本月费用".into(),
            first_contact: FirstContactDraft {
                employee_id: "E1001".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn ok(d: SubmissionDraft) -> ComplaintRecord {
        validate(&Policy::default(), d, now()).unwrap()
    }

    /// The errors of an invalid draft, as `field: reason` lines.
    fn errors(d: SubmissionDraft) -> Vec<String> {
        validate(&Policy::default(), d, now())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn has(errors: &[String], field: &str, reason_part: &str) -> bool {
        errors
            .iter()
            .any(|e| e.starts_with(&format!("{field}: ")) && e.contains(reason_part))
    }

    #[test]
    fn a_minimal_submission_becomes_a_record_with_defaults() {
        let r = ok(draft());
        assert_eq!(r.source.key(), "callcentre:CC-2024-000123");
        assert_eq!(r.customer.phone.as_str(), "+8613800138000");
        assert_eq!(r.customer.preferred_reply, ReplyChannel::Phone);
        assert_eq!(r.channel, Channel::Hotline);
        assert_eq!(r.facts, ClassificationFacts::default());
        assert_eq!(r.category, None);
        assert_eq!(r.scope.customers_affected, 1);
        assert!(!r.media_risk);
        assert_eq!(
            r.first_contact.disposition,
            FirstContactDisposition::PassedToServiceCentre
        );
        assert!(!r.is_confirmed());
        assert_eq!(r.received_at, now());
        assert_eq!(r.classify(&Policy::default()).class, crate::Class::C);
    }

    #[test]
    fn every_missing_required_field_is_reported_at_once() {
        let errs = errors(SubmissionDraft::default());
        for field in [
            "source.system",
            "source.external_id",
            "customer.name",
            "customer.phone",
            "channel",
            "business",
            "description",
            "demand",
            "first_contact.employee_id",
        ] {
            assert!(
                has(&errs, field, "is required"),
                "{field} missing from {errs:#?}"
            );
        }
        assert_eq!(errs.len(), 9, "{errs:#?}");
    }

    #[test]
    fn blank_is_missing() {
        let errs = errors(SubmissionDraft {
            customer_name: " \u{3000}\t ".into(),
            ..draft()
        });
        assert_eq!(errs, vec!["customer.name: is required"]);
    }

    #[test]
    fn unicode_passes_byte_exact() {
        let name = "张三𠀀𪚥";
        let description = "信号差 😀👨‍👩‍👧 🇨🇳\n第二行\t缩进 é (combining: e\u{301})";
        let demand = "退款 ¥50.00,谢谢🙏";
        let r = ok(SubmissionDraft {
            customer_name: format!("  {name}  "),
            description: description.into(),
            demand: demand.into(),
            complained_about: Some("营业厅 𠀀 窗口".into()),
            evidence_refs: vec!["录音#𠀀-1".into()],
            ..draft()
        });
        assert_eq!(r.customer.name.as_bytes(), name.as_bytes());
        assert_eq!(r.description.as_bytes(), description.as_bytes());
        assert_eq!(r.demand.as_bytes(), demand.as_bytes());
        assert_eq!(r.complained_about.as_deref(), Some("营业厅 𠀀 窗口"));
        // And through serde, as a store would keep it.
        let json = serde_json::to_string(&r).unwrap();
        let back: ComplaintRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        let limit = Policy::default().fields.customer_name;
        let at_limit = "𠀀".repeat(limit);
        assert_eq!(
            ok(SubmissionDraft {
                customer_name: at_limit.clone(),
                ..draft()
            })
            .customer
            .name,
            at_limit
        );
        let errs = errors(SubmissionDraft {
            customer_name: "𠀀".repeat(limit + 1),
            ..draft()
        });
        assert_eq!(
            errs,
            vec![format!(
                "customer.name: is {} characters long; at most {limit} are allowed",
                limit + 1
            )]
        );
        let errs = errors(SubmissionDraft {
            description: "字".repeat(4001),
            ..draft()
        });
        assert!(has(&errs, "description", "at most 4000"));
    }

    #[test]
    fn control_characters_are_refused_but_crlf_becomes_lf() {
        let errs = errors(SubmissionDraft {
            description: "bell\u{7}".into(),
            demand: "cr\ronly".into(),
            ..draft()
        });
        assert!(has(&errs, "description", "U+0007"));
        assert!(has(&errs, "demand", "U+000D"));
        let r = ok(SubmissionDraft {
            description: "line one\r\nline two".into(),
            ..draft()
        });
        assert_eq!(r.description, "line one\nline two");
    }

    #[test]
    fn single_line_fields_refuse_line_breaks_and_tabs() {
        let errs = errors(SubmissionDraft {
            customer_name: "Li\nLei".into(),
            business: "broad\tband".into(),
            ..draft()
        });
        assert!(has(&errs, "customer.name", "single line"));
        assert!(has(&errs, "business", "tabs"));
    }

    #[test]
    fn phones_are_parsed_with_reasons() {
        let errs = errors(SubmissionDraft {
            customer_phone: "call me maybe".into(),
            ..draft()
        });
        assert!(has(&errs, "customer.phone", "'c'"), "{errs:?}");
        let errs = errors(SubmissionDraft {
            customer_phone: "123".into(),
            ..draft()
        });
        assert!(has(&errs, "customer.phone", "at least 5"), "{errs:?}");
    }

    #[test]
    fn source_system_is_a_plain_name() {
        let errs = errors(SubmissionDraft {
            source_system: "call centre:1".into(),
            ..draft()
        });
        assert!(has(&errs, "source.system", "ASCII letters"));
    }

    #[test]
    fn occurred_at_within_skew_and_age() {
        let p = Policy::default();
        let fine = now() + Duration::minutes(4);
        assert_eq!(
            ok(SubmissionDraft {
                occurred_at: Some(fine),
                ..draft()
            })
            .occurred_at,
            Some(fine)
        );
        let errs = errors(SubmissionDraft {
            occurred_at: Some(now() + Duration::minutes(6)),
            ..draft()
        });
        assert!(has(&errs, "occurred_at", "in the future"));
        let errs = errors(SubmissionDraft {
            occurred_at: Some(now() - p.fields.max_occurred_age - Duration::seconds(1)),
            ..draft()
        });
        assert!(has(&errs, "occurred_at", "ago"));
        let old_but_fine = now() - p.fields.max_occurred_age;
        assert!(
            validate(
                &p,
                SubmissionDraft {
                    occurred_at: Some(old_but_fine),
                    ..draft()
                },
                now()
            )
            .is_ok()
        );
    }

    #[test]
    fn losses_are_never_negative() {
        let errs = errors(SubmissionDraft {
            company_loss_fen: -1,
            customer_loss_fen: -100,
            ..draft()
        });
        assert!(has(&errs, "facts.company_loss_fen", "negative"));
        assert!(has(&errs, "facts.customer_loss_fen", "negative"));
        let r = ok(SubmissionDraft {
            company_loss_fen: 300_001,
            emotion: Some("Strong".into()),
            ..draft()
        });
        assert_eq!(r.facts.company_loss, Money::from_fen(300_001));
        assert_eq!(r.facts.emotion, EmotionLevel::Strong);
        assert_eq!(r.classify(&Policy::default()).class, crate::Class::A);
    }

    #[test]
    fn enums_are_case_insensitive_and_errors_list_allowed_values() {
        let r = ok(SubmissionDraft {
            channel: "Opinion_Board".into(),
            customer_type: Some("THREATENING".into()),
            public_impact: Some("some".into()),
            procedure_breach: Some("Severe".into()),
            ..draft()
        });
        assert_eq!(r.channel, Channel::OpinionBoard);
        assert_eq!(r.customer_type, Some(CustomerType::Threatening));
        let errs = errors(SubmissionDraft {
            channel: "pigeon".into(),
            emotion: Some("furious".into()),
            public_impact: Some("huge".into()),
            procedure_breach: Some("minor".into()),
            customer_type: Some("grumpy".into()),
            preferred_reply: Some("fax".into()),
            ..draft()
        });
        assert!(has(&errs, "channel", "allowed: counter, hotline, letter"));
        assert!(has(
            &errs,
            "facts.emotion",
            "allowed: calm, strong, extremely_strong"
        ));
        assert!(has(
            &errs,
            "facts.public_impact",
            "allowed: none, some, large"
        ));
        assert!(has(
            &errs,
            "facts.procedure_breach",
            "allowed: none, breach, severe"
        ));
        assert!(has(&errs, "customer_type", "restrained_anger"));
        assert!(has(
            &errs,
            "customer.preferred_reply",
            "allowed: phone, sms, email"
        ));
        assert_eq!(errs.len(), 6, "{errs:#?}");
    }

    #[test]
    fn categories_come_from_the_policy() {
        let r = ok(SubmissionDraft {
            category: Some("Billing_Dispute".into()),
            ..draft()
        });
        assert_eq!(r.category.as_deref(), Some("billing_dispute"));
        assert_eq!(
            ok(SubmissionDraft {
                category: Some("  ".into()),
                ..draft()
            })
            .category,
            None
        );
        let errs = errors(SubmissionDraft {
            category: Some("weather".into()),
            ..draft()
        });
        assert!(has(
            &errs,
            "category",
            "unknown category \"weather\"; allowed: network_quality"
        ));
    }

    #[test]
    fn evidence_reference_limits() {
        let max = Policy::default().fields.max_evidence_refs;
        let errs = errors(SubmissionDraft {
            evidence_refs: vec!["call-1".into(); max + 1],
            ..draft()
        });
        assert!(has(&errs, "evidence_refs", &format!("at most {max}")));
        let errs = errors(SubmissionDraft {
            evidence_refs: vec!["call-1".into(), " ".into(), "x".repeat(501)],
            ..draft()
        });
        assert!(has(&errs, "evidence_refs[1]", "is required"));
        assert!(has(&errs, "evidence_refs[2]", "at most 500"));
    }

    #[test]
    fn email_checks_and_the_email_reply_channel() {
        let errs = errors(SubmissionDraft {
            customer_email: Some("li.example.com".into()),
            ..draft()
        });
        assert!(has(&errs, "customer.email", "'@'"));
        let errs = errors(SubmissionDraft {
            preferred_reply: Some("email".into()),
            ..draft()
        });
        assert_eq!(
            errs,
            vec!["customer.email: is required when the preferred reply channel is email"]
        );
        let r = ok(SubmissionDraft {
            preferred_reply: Some("Email".into()),
            customer_email: Some(" li@example.com ".into()),
            ..draft()
        });
        assert_eq!(
            r.customer.email.as_ref().map(Email::as_str),
            Some("li@example.com")
        );
        assert_eq!(r.customer.preferred_reply, ReplyChannel::Email);
    }

    #[test]
    fn telling_the_department_needs_contact_details() {
        let told =
            |department: Option<&str>, person: Option<&str>, phone: Option<&str>| SubmissionDraft {
                first_contact: FirstContactDraft {
                    employee_id: "E1001".into(),
                    disposition: Some("told_department".into()),
                    department_told: department.map(Into::into),
                    contact_person: person.map(Into::into),
                    contact_phone: phone.map(Into::into),
                    ..Default::default()
                },
                ..draft()
            };
        let errs = errors(told(None, None, None));
        for field in [
            "first_contact.department_told",
            "first_contact.contact_person",
            "first_contact.contact_phone",
        ] {
            assert!(has(&errs, field, "is required when"), "{field}: {errs:#?}");
        }
        let errs = errors(told(Some("售后部"), Some("王经理"), Some("ext. 12")));
        assert!(has(&errs, "first_contact.contact_phone", "'e'"));
        let r = ok(told(Some("售后部"), Some("王经理"), Some("0755-8888 6666")));
        assert_eq!(
            r.first_contact.disposition,
            FirstContactDisposition::ToldDepartment
        );
        assert_eq!(
            r.first_contact.contact_phone.as_ref().map(Phone::as_str),
            Some("+8675588886666")
        );
        let errs = errors(SubmissionDraft {
            first_contact: FirstContactDraft {
                employee_id: "E1001".into(),
                disposition: Some("shrugged".into()),
                ..Default::default()
            },
            ..draft()
        });
        assert!(has(&errs, "first_contact.disposition", "told_department"));
    }

    #[test]
    fn confirmation_on_arrival() {
        let r = ok(SubmissionDraft {
            confirmation: Some(ConfirmationDraft {
                method: "Phone".into(),
                confirmed_at: None,
            }),
            ..draft()
        });
        assert!(r.is_confirmed());
        assert_eq!(
            r.confirmation,
            Some(Confirmation {
                method: ConfirmationMethod::Phone,
                confirmed_at: now()
            })
        );
        let errs = errors(SubmissionDraft {
            confirmation: Some(ConfirmationDraft {
                method: "telepathy".into(),
                confirmed_at: Some(now() + Duration::hours(1)),
            }),
            ..draft()
        });
        assert!(has(
            &errs,
            "confirmation.method",
            "signature, verbal, phone"
        ));
        assert!(has(&errs, "confirmation.confirmed_at", "in the future"));
        let errs = errors(SubmissionDraft {
            confirmation: Some(ConfirmationDraft::default()),
            ..draft()
        });
        assert!(has(&errs, "confirmation.method", "is required"));
    }

    #[test]
    fn media_channels_mean_media_risk() {
        for (channel, risk) in [
            ("media", true),
            ("consumer_association", true),
            ("counter", false),
        ] {
            let r = ok(SubmissionDraft {
                channel: channel.into(),
                ..draft()
            });
            assert_eq!(r.media_risk, risk, "{channel}");
        }
        assert!(
            ok(SubmissionDraft {
                media_risk: true,
                ..draft()
            })
            .media_risk
        );
    }

    #[test]
    fn group_scope_is_kept() {
        let r = ok(SubmissionDraft {
            group_complaint: true,
            customers_affected: 40,
            ..draft()
        });
        assert_eq!(
            r.scope,
            Scope {
                group_complaint: true,
                customers_affected: 40
            }
        );
    }

    #[test]
    fn drafts_deserialise_from_partial_json() {
        let d: SubmissionDraft = serde_json::from_str(
            r#"{"source_system":"web","external_id":"1","customer_name":"Ann",
                "customer_phone":"+44 20 7946 0958","channel":"online","business":"broadband",
                "description":"down","demand":"fix","first_contact":{"employee_id":"web"}}"#,
        )
        .unwrap();
        assert_eq!(ok(d).customer.phone.as_str(), "+442079460958");
    }
}
