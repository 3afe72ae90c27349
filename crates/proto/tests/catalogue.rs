//! The checked-in event catalogue (`docs/events/asyncapi.json`) is what the contracts generate:
//! a changed `.proto` without a regenerated catalogue fails here, in CI.
//!
//! Regenerate with `REDRESS_BLESS=1 cargo test -p redress-proto --test catalogue`.

use std::path::PathBuf;

use redress_proto::catalogue::{asyncapi, markdown};

fn checked_in(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/events")
        .join(name)
}

/// Rewrites the file under `REDRESS_BLESS`, else fails when it differs from `text`.
fn compare_or_bless(name: &str, text: &str) {
    let path = checked_in(name);
    if std::env::var_os("REDRESS_BLESS").is_some() {
        std::fs::write(&path, text).expect("write catalogue");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "{} is out of date with proto/: run REDRESS_BLESS=1 cargo test -p redress-proto --test catalogue",
        path.display()
    );
}

#[test]
fn the_checked_in_catalogue_is_current() {
    let generated = asyncapi("redress").expect("catalogue");
    compare_or_bless(
        "asyncapi.json",
        &(serde_json::to_string_pretty(&generated).expect("json") + "\n"),
    );
    compare_or_bless("README.md", &markdown(&generated));
}

#[test]
fn every_event_kind_has_a_channel_a_message_and_an_example() {
    let doc = asyncapi("redress").expect("catalogue");
    let channels = doc["channels"].as_object().expect("channels");
    for kind in redress_proto::every_kind() {
        let address = format!("redress.events.{kind}");
        let (id, channel) = channels
            .iter()
            .find(|(_, c)| c["address"] == address.as_str())
            .unwrap_or_else(|| panic!("no channel for {address}"));
        let message = &doc["components"]["messages"][id];
        assert_eq!(message["title"], kind, "{id}");
        assert!(
            channel["messages"][id]["$ref"].is_string(),
            "{id} has no message"
        );
        let example = &message["examples"][0]["payload"];
        assert_eq!(example["schemaVersion"], 1, "{id}");
        assert!(example["eventId"].is_string(), "{id}");
        assert!(
            example.as_object().expect("object").len() > 6,
            "{id}: the example carries its payload"
        );
    }
    for subject in [
        "redress.intake.submit",
        "redress.notifications.{person}",
        "redress.deadletter.{consumer}",
    ] {
        assert!(
            channels.values().any(|c| c["address"] == subject),
            "no channel for {subject}"
        );
    }
    // Every $ref points at a schema the document defines.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').expect("closing quote")];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref to {name}"
        );
    }
}

#[test]
fn examples_are_events_the_services_can_read() {
    // An example of every kind read back through the descriptors as an `Event`: the catalogue
    // shows messages a consumer would accept, not merely JSON of the right look.
    let doc = asyncapi("redress").expect("catalogue");
    let event = redress_proto::json::message("Event").expect("Event descriptor");
    for (id, message) in doc["components"]["messages"].as_object().expect("messages") {
        let Some(example) = message["examples"][0]["payload"].as_object() else {
            continue;
        };
        let text = serde_json::Value::Object(example.clone()).to_string();
        let mut de = serde_json::Deserializer::from_str(&text);
        prost_reflect::DynamicMessage::deserialize(event.clone(), &mut de)
            .unwrap_or_else(|e| panic!("{id}: example is not an Event: {e}"));
    }
}
