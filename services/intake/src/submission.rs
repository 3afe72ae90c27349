//! From what arrives to a [`ComplaintRecord`]: the edge of intake.
//!
//! Both doors (gRPC `Submit` and the JetStream subject) carry a protobuf `ComplaintDetails`;
//! the bus also accepts it as JSON in the proto3 JSON mapping, decoded here through the same
//! descriptors so the two encodings cannot drift apart. The details become a domain
//! [`SubmissionDraft`] and pass the one gate, [`redress_domain::validate`], which reports every
//! problem at once. Field paths in errors are given as the integrator knows them: the proto
//! path (`details.customer.phone`), not the domain's.

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_domain::record::{ConfirmationDraft, FirstContactDraft};
use redress_domain::{ComplaintRecord, FieldError, Policy, SubmissionDraft};
use redress_proto::v1;

/// One problem with a submission, named by its proto field path.
pub type Violation = v1::FieldViolation;

fn violation(field: impl Into<String>, reason: impl Into<String>) -> Violation {
    Violation {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Largest accepted submission body: far above any legitimate record, small enough that a
/// garbage message cannot make us allocate much.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// How a bus message is encoded, from its `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// `None` (and a missing header) means protobuf; anything else not understood is refused.
    pub fn from_content_type(ct: Option<&str>) -> Result<Self, Violation> {
        let Some(ct) = ct else {
            return Ok(Encoding::Protobuf);
        };
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "" | "application/protobuf" | "application/x-protobuf" | "application/octet-stream" => {
                Ok(Encoding::Protobuf)
            }
            "application/json" => Ok(Encoding::Json),
            other => Err(violation(
                "Content-Type",
                format!(
                    "unsupported content type {other:?}: use application/protobuf or application/json"
                ),
            )),
        }
    }
}

/// Decodes a bus message body into a `SubmitRequest`.
pub fn decode_body(body: &[u8], encoding: Encoding) -> Result<v1::SubmitRequest, Violation> {
    if body.len() > MAX_BODY_BYTES {
        return Err(violation(
            "body",
            format!(
                "{} bytes is more than the {MAX_BODY_BYTES} allowed",
                body.len()
            ),
        ));
    }
    match encoding {
        Encoding::Protobuf => v1::SubmitRequest::decode(body)
            .map_err(|e| violation("body", format!("not a protobuf SubmitRequest: {e}"))),
        Encoding::Json => decode_json(body),
    }
}

/// The `SubmitRequest` descriptor, decoded once: rebuilding the descriptor pool for every JSON
/// message cost 2.9 ms of CPU per complaint, inside the consumer's open transaction (issue 18).
static SUBMIT_REQUEST: std::sync::LazyLock<Result<prost_reflect::MessageDescriptor, String>> =
    std::sync::LazyLock::new(|| {
        let pool = prost_reflect::DescriptorPool::decode(redress_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("descriptor pool: {e}"))?;
        pool.get_message_by_name("redress.complaints.v1.SubmitRequest")
            .ok_or_else(|| "SubmitRequest descriptor missing".to_owned())
    });

fn decode_json(body: &[u8]) -> Result<v1::SubmitRequest, Violation> {
    let desc = SUBMIT_REQUEST
        .as_ref()
        .map_err(|e| violation("body", e.clone()))?
        .clone();
    let text = std::str::from_utf8(body)
        .map_err(|e| violation("body", format!("JSON must be UTF-8: {e}")))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let dynamic = prost_reflect::DynamicMessage::deserialize(desc, &mut de).map_err(|e| {
        violation(
            "body",
            format!(
                "not a JSON SubmitRequest: {}",
                without_values(&e.to_string())
            ),
        )
    })?;
    de.end()
        .map_err(|e| violation("body", format!("trailing data after JSON: {e}")))?;
    dynamic
        .transcode_to::<v1::SubmitRequest>()
        .map_err(|e| violation("body", format!("cannot read JSON SubmitRequest: {e}")))
}

/// A parser's message with the values it quotes taken out: a field of the wrong type may hold
/// a name or a phone number, and a rejection is published and logged (issue 17: "rejections
/// name the field and the fault, never the value"). Text in double, single or back quotes
/// becomes `…` between the same quotes (serde quotes strings with `"`, prost-reflect enum values
/// with `'`); runs of four or more digits become `…`. An unclosed quote hides the rest.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 4 {
            out.push('…');
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    let mut quoted = String::new();
    for c in message.chars() {
        if let Some(q) = quote {
            if c == q {
                // A field name or an enum constant is shown; anything else might be a value.
                if is_name(&quoted) {
                    out.push_str(&quoted);
                } else {
                    out.push('…');
                }
                out.push(q);
                quote = None;
                quoted.clear();
            } else {
                quoted.push(c);
            }
            continue;
        }
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out);
        out.push(c);
        if matches!(c, '"' | '\'' | '`') {
            quote = Some(c);
        }
    }
    if let Some(q) = quote {
        out.push('…');
        out.push(q);
    }
    flush(&mut digits, &mut out);
    out
}

/// Whether quoted text is a name a parser quotes — a field (`customerName`) or an enum constant
/// (`CHANNEL_HOTLINE`) — rather than a value: ASCII letters, digits, `_` and `.`, starting with a
/// letter or `_`, at most 64 long, and no run of four digits (a phone number's part).
fn is_name(text: &str) -> bool {
    let mut run = 0;
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| {
            run = if c.is_ascii_digit() { run + 1 } else { 0 };
            (c.is_ascii_alphanumeric() || c == '_' || c == '.') && run < 4
        })
}

/// Validates details into a record at time `now`, or returns every violation.
pub fn validate(
    policy: &Policy,
    details: &v1::ComplaintDetails,
    now: DateTime<Utc>,
) -> Result<ComplaintRecord, Vec<Violation>> {
    let mut violations = Vec::new();
    let draft = draft(details, &mut violations);
    let result = redress_domain::validate(policy, draft, now);
    match result {
        Ok(record) if violations.is_empty() => Ok(record),
        Ok(_) => Err(violations),
        Err(errors) => {
            violations.extend(
                errors
                    .into_iter()
                    .map(|FieldError { field, reason }| violation(proto_path(&field), reason)),
            );
            Err(violations)
        }
    }
}

/// The proto path of a domain field path, e.g. `source.system` → `details.key.source_system`.
pub fn proto_path(domain: &str) -> String {
    let mapped = match domain {
        "source.system" => "key.source_system".to_owned(),
        "source.external_id" => "key.external_id".to_owned(),
        d if d.starts_with("facts.") => d.trim_start_matches("facts.").to_owned(),
        d => d.to_owned(),
    };
    format!("details.{mapped}")
}

fn draft(d: &v1::ComplaintDetails, violations: &mut Vec<Violation>) -> SubmissionDraft {
    let key = d.key.clone().unwrap_or_default();
    let customer = d.customer.clone().unwrap_or_default();
    let fc = d.first_contact.clone().unwrap_or_default();
    let mut enum_name = |field: &str, raw: i32, name: Option<&'static str>, prefix: &str| {
        enum_text(field, raw, name, prefix, violations)
    };
    let preferred_reply = enum_name(
        "details.customer.preferred_reply",
        customer.preferred_reply,
        v1::ReplyChannel::try_from(customer.preferred_reply)
            .ok()
            .map(|v| v.as_str_name()),
        "REPLY_CHANNEL_",
    );
    let channel = enum_name(
        "details.channel",
        d.channel,
        v1::Channel::try_from(d.channel)
            .ok()
            .map(|v| v.as_str_name()),
        "CHANNEL_",
    );
    let emotion = enum_name(
        "details.emotion",
        d.emotion,
        v1::EmotionLevel::try_from(d.emotion)
            .ok()
            .map(|v| v.as_str_name()),
        "EMOTION_LEVEL_",
    );
    let public_impact = enum_name(
        "details.public_impact",
        d.public_impact,
        v1::PublicImpact::try_from(d.public_impact)
            .ok()
            .map(|v| v.as_str_name()),
        "PUBLIC_IMPACT_",
    );
    let procedure_breach = enum_name(
        "details.procedure_breach",
        d.procedure_breach,
        v1::ProcedureBreach::try_from(d.procedure_breach)
            .ok()
            .map(|v| v.as_str_name()),
        "PROCEDURE_BREACH_",
    );
    let customer_type = enum_name(
        "details.customer_type",
        d.customer_type,
        v1::CustomerType::try_from(d.customer_type)
            .ok()
            .map(|v| v.as_str_name()),
        "CUSTOMER_TYPE_",
    );
    let disposition = enum_name(
        "details.first_contact.disposition",
        fc.disposition,
        v1::FirstContactDisposition::try_from(fc.disposition)
            .ok()
            .map(|v| v.as_str_name()),
        "FIRST_CONTACT_DISPOSITION_",
    );
    let confirmation = d.confirmation.as_ref().map(|c| ConfirmationDraft {
        method: enum_text(
            "details.confirmation.method",
            c.method,
            v1::ConfirmationMethod::try_from(c.method)
                .ok()
                .map(|v| v.as_str_name()),
            "CONFIRMATION_METHOD_",
            violations,
        )
        .unwrap_or_default(),
        confirmed_at: c
            .confirmed_at
            .as_ref()
            .and_then(|t| timestamp("details.confirmation.confirmed_at", t, violations)),
    });
    let occurred_at = d
        .occurred_at
        .as_ref()
        .and_then(|t| timestamp("details.occurred_at", t, violations));
    SubmissionDraft {
        source_system: key.source_system,
        external_id: key.external_id,
        customer_name: customer.name,
        customer_phone: customer.phone,
        customer_account: non_empty(customer.account),
        customer_email: non_empty(customer.email),
        preferred_reply,
        channel: channel.unwrap_or_default(),
        occurred_at,
        business: d.business.clone(),
        description: d.description.clone(),
        demand: d.demand.clone(),
        perceived_severity: non_empty(d.perceived_severity.clone()),
        emotion,
        company_loss_fen: d.company_loss_fen,
        customer_loss_fen: d.customer_loss_fen,
        public_impact,
        procedure_breach,
        category: non_empty(d.category.clone()),
        group_complaint: d.group_complaint,
        customers_affected: d.customers_affected,
        media_risk: d.media_risk,
        customer_type,
        complained_about: non_empty(d.complained_about.clone()),
        evidence_refs: d.evidence_refs.clone(),
        region: non_empty(d.region.clone()),
        first_contact: FirstContactDraft {
            employee_id: fc.employee_id,
            employee_name: non_empty(fc.employee_name),
            disposition,
            department_told: non_empty(fc.department_told),
            contact_person: non_empty(fc.contact_person),
            contact_phone: non_empty(fc.contact_phone),
        },
        confirmation,
    }
}

fn non_empty(s: String) -> Option<String> {
    if s.trim().is_empty() { None } else { Some(s) }
}

/// A proto enum value as the domain's snake_case name: `CHANNEL_HOTLINE` → `hotline`;
/// `*_UNSPECIFIED` (0) → not given; a number the contract does not define → a violation.
fn enum_text(
    field: &str,
    raw: i32,
    name: Option<&'static str>,
    prefix: &str,
    violations: &mut Vec<Violation>,
) -> Option<String> {
    match name {
        None => {
            violations.push(violation(field, format!("unknown enum value {raw}")));
            None
        }
        Some(n) if n.ends_with("_UNSPECIFIED") => None,
        Some(n) => Some(n.trim_start_matches(prefix).to_ascii_lowercase()),
    }
}

fn timestamp(
    field: &str,
    t: &prost_types::Timestamp,
    violations: &mut Vec<Violation>,
) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(t.nanos).ok().filter(|n| *n < 1_000_000_000);
    match nanos.and_then(|n| DateTime::from_timestamp(t.seconds, n)) {
        Some(dt) => Some(dt),
        None => {
            violations.push(violation(field, "is not a valid timestamp"));
            None
        }
    }
}

pub use redress_platform::events::ts;

/// The stored form of a record: the details as received, with the values the gate normalised
/// (trimmed text, the phone in E.164) put back, so what is stored is what was decided on.
pub fn normalised_details(
    original: &v1::ComplaintDetails,
    r: &ComplaintRecord,
) -> v1::ComplaintDetails {
    let mut d = original.clone();
    d.key = Some(v1::SubmissionKey {
        source_system: r.source.system.clone(),
        external_id: r.source.external_id.clone(),
    });
    let mut customer = d.customer.take().unwrap_or_default();
    customer.name = r.customer.name.clone();
    customer.phone = r.customer.phone.as_str().to_owned();
    customer.account = r.customer.account.clone().unwrap_or_default();
    customer.email = r
        .customer
        .email
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default();
    d.customer = Some(customer);
    d.business = r.business.clone();
    d.description = r.description.clone();
    d.demand = r.demand.clone();
    d.perceived_severity = r.perceived_severity.clone().unwrap_or_default();
    d.category = r.category.clone().unwrap_or_default();
    d.media_risk = r.media_risk;
    d.customers_affected = r.scope.customers_affected;
    d.complained_about = r.complained_about.clone().unwrap_or_default();
    d.evidence_refs = r.evidence_refs.clone();
    d.region = r.region.clone().unwrap_or_default();
    if let Some(fc) = d.first_contact.as_mut() {
        fc.employee_id = r.first_contact.employee_id.clone();
        fc.contact_phone = r
            .first_contact
            .contact_phone
            .as_ref()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
    }
    if let (Some(c), Some(rc)) = (d.confirmation.as_mut(), r.confirmation.as_ref()) {
        c.confirmed_at = Some(ts(rc.confirmed_at));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrongly_typed_personal_field_is_rejected_without_its_value() {
        for body in [
            r#"{"details": {"customer": {"name": ["李雷 tel:13911112222"]}}}"#,
            r#"{"details": {"customer": {"phone": 13911114444}}}"#,
            r#"{"details": {"customerLossFen": "139.1111.4444"}}"#,
            r#"{"details": {"customer": {"name": {"x": "李雷"}}}}"#,
        ] {
            let err = decode_json(body.as_bytes()).expect_err(body);
            assert_eq!(err.field, "body");
            for secret in [
                "李雷",
                "13911112222",
                "13911114444",
                "139.1111.4444",
                "1111",
            ] {
                assert!(
                    !err.reason.contains(secret),
                    "{secret} leaked: {}",
                    err.reason
                );
            }
        }
        // Valid JSON still decodes, through the cached descriptor, every time.
        for _ in 0..3 {
            let ok = decode_json(br#"{"details": {"business": "broadband"}}"#).expect("valid");
            assert_eq!(ok.details.expect("details").business, "broadband");
        }
    }

    #[test]
    fn values_are_taken_out_of_parser_messages() {
        assert_eq!(
            without_values(
                r#"invalid type: string "李雷 13911112222", expected i64 at line 1 column 42"#
            ),
            r#"invalid type: string "…", expected i64 at line 1 column 42"#
        );
        assert_eq!(
            without_values("invalid type: integer `13911114444`, expected a string"),
            "invalid type: integer `…`, expected a string"
        );
        assert_eq!(
            without_values("unrecognized enum value '李雷 139-1111-2222' at line 1 column 47"),
            "unrecognized enum value '…' at line 1 column 47"
        );
        assert_eq!(
            without_values("unterminated 'ACCT-99887766 李雷"),
            "unterminated '…'"
        );
        // Field names and enum constants are not values: they stay.
        assert_eq!(
            without_values("unrecognized field name 'customerName' at line 1 column 19"),
            "unrecognized field name 'customerName' at line 1 column 19"
        );
        assert_eq!(
            without_values("unknown variant `CHANNEL_NOPE`, expected one of …"),
            "unknown variant `CHANNEL_NOPE`, expected one of …"
        );
        assert_eq!(without_values("'LiLei13911112222'"), "'…'");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::from_content_type(None).ok(),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::from_content_type(Some("application/json; charset=utf-8")).ok(),
            Some(Encoding::Json)
        );
        let err = Encoding::from_content_type(Some("text/xml")).unwrap_err();
        assert_eq!(err.field, "Content-Type");
    }

    #[test]
    fn proto_paths() {
        assert_eq!(proto_path("source.system"), "details.key.source_system");
        assert_eq!(proto_path("facts.emotion"), "details.emotion");
        assert_eq!(proto_path("customer.phone"), "details.customer.phone");
        assert_eq!(proto_path("evidence_refs[2]"), "details.evidence_refs[2]");
    }

    #[test]
    fn garbage_bytes_are_a_violation_not_a_panic() {
        let err = decode_body(&[0xff, 0xfe, 0x00, 0x13, 0x37], Encoding::Protobuf).unwrap_err();
        assert_eq!(err.field, "body");
        let err = decode_body(b"{not json", Encoding::Json).unwrap_err();
        assert_eq!(err.field, "body");
        let err = decode_body(&[0xff, 0xfe], Encoding::Json).unwrap_err();
        assert!(err.reason.contains("UTF-8"));
    }

    #[test]
    fn json_uses_proto3_mapping() {
        let body = br#"{"details":{"key":{"sourceSystem":"cc","externalId":"1"},
            "channel":"CHANNEL_HOTLINE","companyLossFen":"300001","customer":{"name":"\u5f20\u4e09"}}}"#;
        let req = decode_body(body, Encoding::Json).expect("decodes");
        let d = req.details.expect("details");
        assert_eq!(d.channel(), v1::Channel::Hotline);
        assert_eq!(d.company_loss_fen, 300_001);
        assert_eq!(d.customer.expect("customer").name, "张三");
        let unknown = decode_body(br#"{"details":{"bogus":1}}"#, Encoding::Json).unwrap_err();
        assert!(unknown.reason.contains("bogus"), "{}", unknown.reason);
    }

    /// The README's example must stay a valid submission.
    #[test]
    fn documented_json_example_is_accepted() {
        let body = include_bytes!("../../../docs/examples/submission.json");
        let req = decode_body(body, Encoding::Json).expect("example decodes");
        let details = req.details.expect("details");
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00+08:00")
            .expect("time")
            .with_timezone(&Utc);
        let record = validate(&Policy::default(), &details, now).expect("example validates");
        assert_eq!(
            record.classify(&Policy::default()).class,
            redress_domain::Class::B
        );
        assert_eq!(record.customer.phone.as_str(), "+8613800138000");
    }

    #[test]
    fn unknown_enum_numbers_are_named() {
        let d = v1::ComplaintDetails {
            channel: 999,
            ..Default::default()
        };
        let errs = validate(&Policy::default(), &d, Utc::now()).unwrap_err();
        assert!(
            errs.iter()
                .any(|v| v.field == "details.channel" && v.reason.contains("999"))
        );
    }
}
