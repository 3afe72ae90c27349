//! Helpers shared by the escalation service's system tests: playing other services' parts.
#![allow(clippy::unwrap_used, dead_code)] // Tests: a failed unwrap is a failed test.

use prost::Message as _;
use redress_proto::v1;
use redress_test_support::TestBed;

/// Publishes `e` on its event subject as its producer would, with message id `msg_id`.
pub async fn publish_as(bed: &TestBed, e: &v1::Event, msg_id: &str) {
    let kind = e.payload.as_ref().unwrap().kind();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
    bed.js
        .publish_with_headers(
            format!("{}.events.{kind}", bed.prefix),
            headers,
            e.encode_to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}
