//! Events in the proto3 JSON mapping, for consumers that cannot read protobuf: the board's
//! event gateway (Server-Sent Events), the event catalogue's examples, and tools.
//!
//! The descriptor pool is decoded once per process: decoding it per message cost milliseconds
//! of CPU each (issue 18). Personal data is masked here, in the one place events become text
//! for people outside the services, the same way the domain types mask it in logs.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value};
use redress_domain::personal::mask;

use crate::{FILE_DESCRIPTOR_SET, v1};

/// Why an event could not be given as JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("the embedded descriptors cannot be read: {0}")]
    Descriptors(String),
    #[error("not a protobuf {message}: {source}")]
    Decode {
        message: &'static str,
        source: prost::DecodeError,
    },
    #[error("cannot write JSON: {0}")]
    Encode(String),
}

static POOL: LazyLock<Result<DescriptorPool, String>> =
    LazyLock::new(|| DescriptorPool::decode(FILE_DESCRIPTOR_SET).map_err(|e| e.to_string()));

/// The descriptors of every contract, decoded once.
pub fn pool() -> Result<&'static DescriptorPool, JsonError> {
    POOL.as_ref().map_err(|e| JsonError::Descriptors(e.clone()))
}

/// The descriptor of a message of package `redress.complaints.v1` (or a full name).
pub fn message(name: &str) -> Result<MessageDescriptor, JsonError> {
    let full = if name.contains('.') {
        name.to_owned()
    } else {
        format!("redress.complaints.v1.{name}")
    };
    pool()?
        .get_message_by_name(&full)
        .ok_or_else(|| JsonError::Descriptors(format!("{full} is not in the descriptors")))
}

/// Whether the JSON keeps the customer's name, phone and email or masks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersonalData {
    Shown,
    Masked,
}

fn decode_event(encoded: &[u8]) -> Result<DynamicMessage, JsonError> {
    DynamicMessage::decode(message("Event")?, encoded).map_err(|source| JsonError::Decode {
        message: "Event",
        source,
    })
}

/// An encoded `Event` as proto3 JSON (lowerCamelCase names, enums by name, 64-bit integers as
/// strings, timestamps in RFC 3339), with personal data masked unless `personal` is `Shown`.
pub fn event_json(encoded: &[u8], personal: PersonalData) -> Result<serde_json::Value, JsonError> {
    let mut dynamic = decode_event(encoded)?;
    if personal == PersonalData::Masked {
        mask_personal(&mut dynamic);
    }
    serde_json::to_value(&dynamic).map_err(|e| JsonError::Encode(e.to_string()))
}

/// An encoded `Event` as proto3 JSON text twice, from one decoding: with the customer shown,
/// and masked. The event gateway sends every event both ways; decoding it twice per event was
/// the larger part of its work per event.
pub fn event_json_texts(encoded: &[u8]) -> Result<(String, String), JsonError> {
    let mut dynamic = decode_event(encoded)?;
    let text =
        |m: &DynamicMessage| serde_json::to_string(m).map_err(|e| JsonError::Encode(e.to_string()));
    let full = text(&dynamic)?;
    mask_personal(&mut dynamic);
    let masked = text(&dynamic)?;
    Ok((full, masked))
}

/// A decoded event as proto3 JSON (see [`event_json`]).
pub fn to_json(event: &v1::Event, personal: PersonalData) -> Result<serde_json::Value, JsonError> {
    event_json(&prost::Message::encode_to_vec(event), personal)
}

/// Masks the personal fields of every `Customer` inside `message`, however deep.
fn mask_personal(message: &mut DynamicMessage) {
    let is_customer = message.descriptor().full_name() == "redress.complaints.v1.Customer";
    let fields: Vec<_> = message.descriptor().fields().collect();
    for field in fields {
        if !message.has_field(&field) {
            continue;
        }
        let value = message.get_field_mut(&field);
        match value {
            Value::String(s) if is_customer && PERSONAL.contains(&field.name()) => {
                *s = mask(s);
            }
            Value::Message(inner) => mask_personal(inner),
            Value::List(items) => {
                for item in items {
                    if let Value::Message(inner) = item {
                        mask_personal(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The `Customer` fields masked for those who may not see the customer: the same four as
/// `redress_platform::access::Sight` masks in the gRPC answers (docs/access.md).
const PERSONAL: [&str; 4] = ["name", "phone", "email", "account"];

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> v1::Event {
        v1::Event {
            event_id: "evt_1".into(),
            complaint_id: "cmp_1".into(),
            schema_version: crate::SCHEMA_VERSION,
            payload: Some(v1::event::Payload::ComplaintReceived(
                v1::ComplaintReceived {
                    details: Some(v1::ComplaintDetails {
                        customer: Some(v1::Customer {
                            name: "Wang Fang".into(),
                            phone: "13800138000".into(),
                            account: "ACC-1".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    complaint_number: "C-1".into(),
                    class: v1::Class::B as i32,
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    #[test]
    fn events_read_in_the_proto3_json_mapping() {
        let json = to_json(&received(), PersonalData::Shown).expect("json");
        assert_eq!(json["eventId"], "evt_1");
        assert_eq!(json["complaintReceived"]["complaintNumber"], "C-1");
        assert_eq!(json["complaintReceived"]["class"], "CLASS_B");
        assert_eq!(
            json["complaintReceived"]["details"]["customer"]["phone"],
            "13800138000"
        );
    }

    #[test]
    fn masked_json_hides_the_customer_as_the_grpc_answers_do() {
        let json = to_json(&received(), PersonalData::Masked).expect("json");
        let text = json.to_string();
        for personal in ["Wang Fang", "13800138000", "ACC-1"] {
            assert!(!text.contains(personal), "{personal} in {text}");
        }
        assert_eq!(json["complaintReceived"]["complaintNumber"], "C-1");
    }

    #[test]
    fn both_texts_from_one_decoding_agree_with_each_way_alone() {
        let encoded = prost::Message::encode_to_vec(&received());
        let (full, masked) = event_json_texts(&encoded).expect("texts");
        let parsed = |t: &str| serde_json::from_str::<serde_json::Value>(t).expect("json");
        assert_eq!(
            parsed(&full),
            to_json(&received(), PersonalData::Shown).unwrap()
        );
        assert_eq!(
            parsed(&masked),
            to_json(&received(), PersonalData::Masked).unwrap()
        );
        assert!(full.contains("13800138000") && !masked.contains("13800138000"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let err = event_json(&[0xff, 0xff, 0xff], PersonalData::Masked).unwrap_err();
        assert!(err.to_string().contains("not a protobuf Event"), "{err}");
    }
}
