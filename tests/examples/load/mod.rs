//! Load as a call centre sends it: confirmed submissions published on the bus, as JSON or
//! protobuf, as fast as JetStream takes them or paced. Shared by the pipeline and board
//! benchmarks (`mod load;`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_proto::v1;
use redress_test_support::TestBed;

use crate::baseline::{WINDOW, details};

/// The body and its content type, as an integration would send it.
pub fn body(json: bool, d: v1::ComplaintDetails) -> (Vec<u8>, &'static str) {
    let request = v1::SubmitRequest { details: Some(d) };
    if !json {
        return (request.encode_to_vec(), "application/protobuf");
    }
    static DESC: std::sync::LazyLock<prost_reflect::MessageDescriptor> =
        std::sync::LazyLock::new(|| {
            prost_reflect::DescriptorPool::decode(redress_proto::FILE_DESCRIPTOR_SET)
                .expect("descriptors")
                .get_message_by_name("redress.complaints.v1.SubmitRequest")
                .expect("SubmitRequest")
        });
    let dynamic =
        prost_reflect::DynamicMessage::decode(DESC.clone(), request.encode_to_vec().as_slice())
            .expect("re-read");
    (
        serde_json::to_vec(&dynamic).expect("json"),
        "application/json",
    )
}

/// Publishes `n` submissions keyed `<prefix>-<i>`; returns when each was stored by JetStream.
/// `rate`: submissions a second, or as fast as JetStream takes them when `None`.
pub async fn publish(
    bed: &TestBed,
    json: bool,
    prefix: &str,
    n: usize,
    rate: Option<f64>,
) -> HashMap<String, DateTime<Utc>> {
    let subject = format!("{}.intake.submit", bed.prefix);
    let mut sent = HashMap::with_capacity(n);
    let mut acks = Vec::with_capacity(WINDOW);
    let started = Instant::now();
    for i in 0..n {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let d = details(prefix, i);
        let key = d
            .key
            .as_ref()
            .map(|k| k.external_id.clone())
            .unwrap_or_default();
        let (payload, content_type) = body(json, d);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Content-Type", content_type);
        acks.push(
            bed.js
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
                .expect("publish"),
        );
        sent.insert(key, Utc::now());
        if acks.len() == WINDOW || (rate.is_some() && acks.len() >= 50) {
            for a in acks.drain(..) {
                a.await.expect("stored");
            }
        }
    }
    for a in acks {
        a.await.expect("stored");
    }
    sent
}
