//! The event catalogue: an AsyncAPI 3 document of every subject the system publishes or reads,
//! generated from the contracts so it cannot drift from them.
//!
//! `docs/events/asyncapi.json` is this document for the default prefix; the test
//! `the_checked_in_catalogue_is_current` fails when a contract changes and the file was not
//! regenerated (`REDRESS_BLESS=1 cargo test -p redress-proto --test catalogue`). Schemas follow the proto3 JSON
//! mapping, the form the board's gateway serves; on NATS the bodies are protobuf, except
//! notifications (JSON) and call-centre submissions (either).

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use crate::json::{JsonError, message};
use crate::{SCHEMA_VERSION, all_payloads, v1};

/// Headers every event carries on NATS.
const EVENT_HEADERS: [(&str, &str); 5] = [
    (
        "Nats-Msg-Id",
        "The event id (`evt_…`); JetStream drops a re-publication within its duplicate window.",
    ),
    (
        "Redress-Event-Type",
        "The event's kind (`complaint.received` …), the subject's suffix.",
    ),
    (
        "Redress-Complaint-Id",
        "The complaint (`cmp_…`), so a dashboard can filter without decoding; absent for events about no complaint.",
    ),
    (
        "Redress-Source-Service",
        "The service that wrote it: intake, routing, sla-monitor, escalation or revisit.",
    ),
    (
        "traceparent",
        "W3C trace context of the work that produced the event.",
    ),
];

/// The AsyncAPI 3 document for an installation whose subjects start with `prefix`.
pub fn asyncapi(prefix: &str) -> Result<Value, JsonError> {
    let event = message("Event")?;
    let mut schemas = BTreeMap::new();
    collect_schemas(&event, &mut schemas);
    collect_schemas(&message("SubmitRequest")?, &mut schemas);

    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();

    for (field, kind) in payload_kinds(&event)? {
        let payload_msg = match field.kind() {
            Kind::Message(m) => m,
            _ => continue,
        };
        let id = lower_camel(field.name());
        let name = payload_msg.name().to_owned();
        let summary = comment(&field).unwrap_or_default();
        let example = event_example(&field, kind)?;
        messages.insert(
            id.clone(),
            json!({
                "name": name,
                "title": kind,
                "summary": summary,
                "description": comment_of_message(&payload_msg).unwrap_or_default(),
                "contentType": "application/x-protobuf",
                "headers": {"$ref": "#/components/schemas/EventHeaders"},
                "payload": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Event"},
                        {"type": "object", "required": [field.json_name()]}
                    ]
                },
                "examples": [{
                    "name": kind,
                    "headers": {
                        "Nats-Msg-Id": example["eventId"],
                        "Redress-Event-Type": kind,
                        "Redress-Complaint-Id": example["complaintId"],
                        "Redress-Source-Service": example["producer"],
                    },
                    "payload": example,
                }],
            }),
        );
        channels.insert(
            id.clone(),
            json!({
                "address": format!("{prefix}.events.{kind}"),
                "title": kind,
                "description": format!(
                    "{summary} Stored in stream `{}_EVENTS` (subjects `{prefix}.events.>`).",
                    stream_prefix(prefix)
                ),
                "messages": {id.clone(): {"$ref": format!("#/components/messages/{id}")}},
            }),
        );
        operations.insert(
            format!("publish_{id}"),
            json!({
                "action": "send",
                "channel": {"$ref": format!("#/channels/{id}")},
                "summary": format!("Redress publishes `{kind}`."),
            }),
        );
    }

    messages.insert(
        "submission".into(),
        json!({
            "name": "SubmitRequest",
            "title": "intake.submit",
            "summary": "A complaint from a call-centre integration.",
            "description": "Protobuf `SubmitRequest`, or the same in the proto3 JSON mapping with `Content-Type: application/json`. Set `Nats-Msg-Id` to your own request id: a re-sent submission is then recorded once.",
            "contentType": "application/json",
            "headers": {"type": "object", "properties": {
                "Nats-Msg-Id": {"type": "string", "description": "Your request id; submissions with the same id are recorded once."},
                "Content-Type": {"type": "string", "enum": ["application/json", "application/x-protobuf"]},
                "traceparent": {"type": "string"}
            }},
            "payload": {"$ref": "#/components/schemas/SubmitRequest"},
        }),
    );
    channels.insert(
        "submission".into(),
        json!({
            "address": format!("{prefix}.intake.submit"),
            "title": "intake.submit",
            "description": format!("Where integrations publish complaints. Stored in stream `{}_INTAKE`; a refused submission becomes `complaint.rejected` naming the field.", stream_prefix(prefix)),
            "messages": {"submission": {"$ref": "#/components/messages/submission"}},
        }),
    );
    operations.insert(
        "receive_submission".into(),
        json!({
            "action": "receive",
            "channel": {"$ref": "#/channels/submission"},
            "summary": "Intake records each submission once.",
        }),
    );

    messages.insert("notification".into(), notification_message());
    channels.insert(
        "notification".into(),
        json!({
            "address": format!("{prefix}.notifications.{{person}}"),
            "title": "notifications",
            "description": format!("Escalation notifications, one subject per person (the staff id, with characters NATS does not allow in a token replaced by `_`). Stored in stream `{}_NOTIFICATIONS`. A re-sent notification repeats the id with a higher `send`.", stream_prefix(prefix)),
            "parameters": {"person": {"description": "Staff id of the recipient."}},
            "messages": {"notification": {"$ref": "#/components/messages/notification"}},
        }),
    );
    operations.insert(
        "publish_notification".into(),
        json!({
            "action": "send",
            "channel": {"$ref": "#/channels/notification"},
            "summary": "Escalation notifies a manager or the general manager.",
        }),
    );

    messages.insert(
        "deadLetter".into(),
        json!({
            "name": "DeadLetter",
            "title": "deadletter",
            "summary": "A message a consumer gave up on, as it was received.",
            "description": "The body is the original message, unchanged (an `Event`, or a submission); the headers say why. `redress deadletters list|show|replay` works on them.",
            "contentType": "application/x-protobuf",
            "headers": {"type": "object", "properties": {
                "Redress-Dead-Letter-Reason": {"type": "string", "description": "Why the consumer gave up."},
                "Redress-Original-Subject": {"type": "string"},
                "Redress-Original-Message-Id": {"type": "string"},
                "Redress-Consumer": {"type": "string", "description": "The durable consumer, `<service>-<name>`."},
                "Redress-Deliveries": {"type": "string", "description": "How many times it was delivered."},
                "Content-Type": {"type": "string"}
            }},
            "payload": {"description": "The original message body (protobuf `Event`, or a submission in JSON or protobuf)."},
        }),
    );
    channels.insert(
        "deadLetter".into(),
        json!({
            "address": format!("{prefix}.deadletter.{{consumer}}"),
            "title": "dead letters",
            "description": format!("Stored in stream `{}_DEADLETTER`.", stream_prefix(prefix)),
            "parameters": {"consumer": {"description": "The durable consumer that gave up, e.g. `routing-events`."}},
            "messages": {"deadLetter": {"$ref": "#/components/messages/deadLetter"}},
        }),
    );
    operations.insert(
        "publish_deadLetter".into(),
        json!({
            "action": "send",
            "channel": {"$ref": "#/channels/deadLetter"},
            "summary": "A consumer gives up on a message whose content it cannot apply.",
        }),
    );

    let mut component_schemas: Map<String, Value> = schemas.into_iter().collect();
    component_schemas.insert("EventHeaders".into(), event_headers());

    Ok(json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Redress events",
            "version": format!("{SCHEMA_VERSION}.0.0"),
            "description": "Every subject the Redress services publish or read on NATS JetStream. Generated from `proto/` by `redress_proto::catalogue`; do not edit by hand. Bodies on NATS are protobuf (`redress.complaints.v1`); the schemas give the proto3 JSON mapping, which the board's gateway serves as Server-Sent Events.",
        },
        "defaultContentType": "application/x-protobuf",
        "servers": {
            "local": {"host": "127.0.0.1:4222", "protocol": "nats", "description": "`redress up`'s NATS server."}
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": component_schemas},
    }))
}

/// The `payload` oneof's fields with the kind each one is published under, read by encoding
/// one value of every variant, so the kinds come from `Payload::kind` itself.
fn payload_kinds(
    event: &MessageDescriptor,
) -> Result<Vec<(FieldDescriptor, &'static str)>, JsonError> {
    let mut out = Vec::new();
    for payload in all_payloads() {
        let kind = payload.kind();
        let encoded = v1::Event {
            payload: Some(payload),
            ..Default::default()
        }
        .encode_to_vec();
        let dynamic =
            DynamicMessage::decode(event.clone(), encoded.as_slice()).map_err(|source| {
                JsonError::Decode {
                    message: "Event",
                    source,
                }
            })?;
        let field = event
            .oneofs()
            .find(|o| o.name() == "payload")
            .and_then(|o| o.fields().find(|f| dynamic.has_field(f)))
            .ok_or_else(|| JsonError::Descriptors(format!("no payload field for {kind}")))?;
        out.push((field, kind));
    }
    Ok(out)
}

/// An example event of one kind: the envelope filled in, the payload's fields given sample
/// values of their type.
fn event_example(field: &FieldDescriptor, kind: &str) -> Result<Value, JsonError> {
    let Kind::Message(payload) = field.kind() else {
        return Ok(Value::Null);
    };
    let about_complaint = kind.starts_with("complaint.")
        || kind.starts_with("sla.")
        || kind.starts_with("escalation.")
        || kind.starts_with("revisit.")
        || kind.starts_with("notification.")
        || kind.starts_with("accountability.");
    let mut out = Map::new();
    out.insert("eventId".into(), json!("evt_01JD8Z4Q7V6M2N3P4R5S6T7U8V"));
    if about_complaint && kind != "complaint.rejected" {
        out.insert(
            "complaintId".into(),
            json!("cmp_01JD8Z4PZ1X2Y3Z4A5B6C7D8E9"),
        );
    }
    out.insert("occurredAt".into(), json!("2026-12-01T09:30:00Z"));
    out.insert(
        "actor".into(),
        json!({"id": producer_of(kind), "displayName": producer_of(kind), "role": "ROLE_SYSTEM"}),
    );
    out.insert("schemaVersion".into(), json!(SCHEMA_VERSION));
    out.insert(
        "correlationId".into(),
        json!("evt_01JD8Z4PZ1X2Y3Z4A5B6C7D8E0"),
    );
    out.insert("producer".into(), json!(producer_of(kind)));
    out.insert(field.json_name().to_owned(), sample(&payload, 0));
    Ok(Value::Object(out))
}

/// Which service writes each kind of event (read from the services' sources when this was
/// written; the example's `producer` only, nothing routes by it).
fn producer_of(kind: &str) -> &'static str {
    match kind {
        "complaint.received"
        | "complaint.rejected"
        | "complaint.confirmed"
        | "complaint.classified"
        | "complaint.reclassified" => "intake",
        "complaint.repeat" | "complaint.satisfaction_reported" | "complaint.reopened" => "revisit",
        _ if kind.starts_with("revisit.") => "revisit",
        _ if kind.starts_with("sla.") => "sla-monitor",
        _ if kind.starts_with("escalation.")
            || kind.starts_with("notification.")
            || kind.starts_with("accountability.")
            || kind == "staff.suspended"
            || kind == "department.business_volume_entered" =>
        {
            "escalation"
        }
        _ => "routing",
    }
}

/// A sample value of a message, every field filled by its type (to a small depth).
fn sample(desc: &MessageDescriptor, depth: usize) -> Value {
    let mut out = Map::new();
    let mut oneofs_done = BTreeSet::new();
    for field in desc.fields() {
        if let Some(o) = field.containing_oneof()
            && !field.field_descriptor_proto().proto3_optional()
            && !oneofs_done.insert(o.name().to_owned())
        {
            continue;
        }
        let value = sample_field(&field, depth);
        if value.is_null() {
            continue;
        }
        let value = if field.is_list() {
            json!([value])
        } else if field.is_map() {
            continue;
        } else {
            value
        };
        out.insert(field.json_name().to_owned(), value);
    }
    Value::Object(out)
}

fn sample_field(field: &FieldDescriptor, depth: usize) -> Value {
    match field.kind() {
        Kind::String => json!(sample_text(field.name())),
        Kind::Bool => json!(true),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => json!(1),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => json!("5000"),
        Kind::Float | Kind::Double => json!(0.5),
        Kind::Bytes => json!("AQID"),
        Kind::Enum(e) => {
            let v = e
                .values()
                .find(|v| v.number() != 0)
                .or_else(|| e.values().next());
            v.map_or(Value::Null, |v| json!(v.name()))
        }
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => json!("2026-12-01T17:30:00Z"),
            "google.protobuf.Duration" => json!("28800s"),
            _ if depth >= 2 => Value::Null,
            _ => sample(&m, depth + 1),
        },
    }
}

/// A readable sample for a text field, by what its name says it holds.
fn sample_text(name: &str) -> String {
    if name == "complaint_id" || name.ends_with("complaint_id") {
        "cmp_01JD8Z4PZ1X2Y3Z4A5B6C7D8E9".into()
    } else if name.ends_with("department_id") {
        "dept-broadband".into()
    } else if name.ends_with("_id") || name == "id" {
        format!(
            "{}-1",
            name.trim_end_matches("_id")
                .trim_end_matches("id")
                .replace('_', "-")
        )
        .trim_start_matches('-')
        .to_owned()
    } else if name.contains("number") {
        "C-20261201-0001".into()
    } else {
        format!("<{}>", name.replace('_', " "))
    }
}

/// JSON Schemas of `root` and every message it reaches, keyed by short name.
fn collect_schemas(root: &MessageDescriptor, out: &mut BTreeMap<String, Value>) {
    let key = schema_key(root);
    if out.contains_key(&key) || is_well_known(root) {
        return;
    }
    out.insert(key.clone(), Value::Null);
    let mut properties = Map::new();
    for field in root.fields() {
        let mut schema = field_schema(&field);
        if field.is_list() {
            schema = json!({"type": "array", "items": schema});
        } else if field.is_map()
            && let Kind::Message(entry) = field.kind()
        {
            let value = entry.map_entry_value_field();
            schema = json!({"type": "object", "additionalProperties": field_schema(&value)});
        }
        if let (Some(text), Some(obj)) = (comment(&field), schema.as_object_mut()) {
            obj.insert("description".into(), json!(text));
        }
        properties.insert(field.json_name().to_owned(), schema);
        if let Kind::Message(m) = field.kind() {
            if field.is_map() {
                if let Kind::Message(v) = m.map_entry_value_field().kind() {
                    collect_schemas(&v, out);
                }
            } else {
                collect_schemas(&m, out);
            }
        }
    }
    let mut schema = json!({
        "type": "object",
        "title": root.full_name(),
        "properties": properties,
    });
    if let (Some(text), Some(obj)) = (comment_of_message(root), schema.as_object_mut()) {
        obj.insert("description".into(), json!(text));
    }
    out.insert(key, schema);
}

fn field_schema(field: &FieldDescriptor) -> Value {
    match field.kind() {
        Kind::String => json!({"type": "string"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "minimum": 0}),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            json!({"type": "string", "pattern": "^-?[0-9]+$", "description": "64-bit integer, as a string in the JSON mapping"})
        }
        Kind::Float | Kind::Double => json!({"type": "number"}),
        Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Kind::Enum(e) => json!({
            "type": "string",
            "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>(),
        }),
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
            "google.protobuf.Duration" => {
                json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"})
            }
            _ => json!({"$ref": format!("#/components/schemas/{}", schema_key(&m))}),
        },
    }
}

fn is_well_known(m: &MessageDescriptor) -> bool {
    m.full_name().starts_with("google.protobuf.")
}

/// Short names for `redress.complaints.v1` messages, full names (dots as `_`) otherwise.
fn schema_key(m: &MessageDescriptor) -> String {
    m.full_name()
        .strip_prefix("redress.complaints.v1.")
        .map_or_else(|| m.full_name().replace('.', "_"), str::to_owned)
}

fn event_headers() -> Value {
    let properties: Map<String, Value> = EVENT_HEADERS
        .iter()
        .map(|(name, description)| {
            (
                (*name).to_owned(),
                json!({"type": "string", "description": description}),
            )
        })
        .collect();
    json!({"type": "object", "properties": properties, "required": ["Nats-Msg-Id", "Redress-Event-Type"]})
}

/// The notification body escalation publishes (JSON, not protobuf: it is also what webhook
/// receivers get, signed). Declared here field by field; the journey system test reads a real
/// one against this list.
pub const NOTIFICATION_FIELDS: [(&str, &str); 17] = [
    (
        "notification_id",
        "The notification (`ntf_…`); the same on every re-send.",
    ),
    ("send", "1 for the first send, then 2, 3… for reminders."),
    ("escalation_id", "The escalation (`esc_…`) to acknowledge."),
    ("complaint_id", "The complaint (`cmp_…`)."),
    (
        "complaint_number",
        "The complaint's number as the customer was told it.",
    ),
    ("level", "1 department manager, 2 general manager."),
    (
        "role",
        "The rung's role (`department_manager`, `general_manager`…).",
    ),
    (
        "trigger",
        "Why it was raised (`overdue`, `customer_dissatisfied`…).",
    ),
    ("recipient_id", "Staff id of the person told."),
    ("recipient_name", "Their name."),
    ("recipient_phone", "Their phone, for SMS channels."),
    ("recipient_email", "Their email, for mail channels."),
    ("department_id", "The department responsible."),
    ("class", "The complaint's class (`CLASS_A` …)."),
    ("summary", "One line in words."),
    ("raised_at", "When the escalation was raised (RFC 3339)."),
    (
        "acknowledge_by",
        "When it climbs to the next rung unless acknowledged (RFC 3339).",
    ),
];

fn notification_message() -> Value {
    let properties: Map<String, Value> = NOTIFICATION_FIELDS
        .iter()
        .map(|(name, description)| {
            let ty = if matches!(*name, "send" | "level") {
                "integer"
            } else {
                "string"
            };
            (
                (*name).to_owned(),
                json!({"type": ty, "description": description}),
            )
        })
        .collect();
    json!({
        "name": "Notification",
        "title": "notification",
        "summary": "Tells a manager about an escalation they must acknowledge.",
        "contentType": "application/json",
        "headers": {"type": "object", "properties": {
            "Nats-Msg-Id": {"type": "string", "description": "`<notification_id>-<send>`."},
            "Redress-Notification-Id": {"type": "string"},
            "Content-Type": {"type": "string", "const": "application/json"}
        }},
        "payload": {"type": "object", "properties": properties},
    })
}

fn stream_prefix(prefix: &str) -> String {
    prefix.to_ascii_uppercase().replace('-', "_")
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The leading comment of a field in the `.proto` source, on one line.
fn comment(field: &FieldDescriptor) -> Option<String> {
    leading_comment(field.parent_file().file_descriptor_proto(), field.path())
}

fn comment_of_message(m: &MessageDescriptor) -> Option<String> {
    leading_comment(m.parent_file().file_descriptor_proto(), m.path())
}

fn leading_comment(file: &prost_types::FileDescriptorProto, path: &[i32]) -> Option<String> {
    let info = file.source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let text = location.leading_comments.as_deref()?;
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// The catalogue as a page people read: one table row per subject, linking nothing the
/// AsyncAPI document does not say.
pub fn markdown(doc: &Value) -> String {
    let mut out = String::from(
        "# Event catalogue\n\n\
         Generated from `proto/` with the AsyncAPI document beside it ([asyncapi.json](asyncapi.json)); \
         do not edit by hand (`REDRESS_BLESS=1 cargo test -p redress-proto --test catalogue` rewrites both).\n\n\
         Subjects are shown for the default prefix `redress`. Events are protobuf `redress.complaints.v1.Event` \
         on NATS, with the headers `Nats-Msg-Id` (the event id), `Redress-Event-Type`, `Redress-Complaint-Id`, \
         `Redress-Source-Service` and `traceparent`; the board's gateway serves the same events as \
         Server-Sent Events in the proto3 JSON mapping (`GET /events`).\n\n\
         | subject | payload | from | what happened |\n|---|---|---|---|\n",
    );
    let messages = &doc["components"]["messages"];
    if let Some(channels) = doc["channels"].as_object() {
        for (id, channel) in channels {
            let message = &messages[id];
            let from = message["examples"][0]["headers"]["Redress-Source-Service"]
                .as_str()
                .unwrap_or("");
            out.push_str(&format!(
                "| `{}` | `{}` | {} | {} |\n",
                channel["address"].as_str().unwrap_or(""),
                message["name"].as_str().unwrap_or(""),
                from,
                message["summary"]
                    .as_str()
                    .unwrap_or("")
                    .replace('|', "\\|"),
            ));
        }
    }
    out
}
