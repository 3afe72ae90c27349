//! The intake service as a process, against real NATS JetStream and PostgreSQL: both doors,
//! every classification boundary, every rejection, duplicates, crashes, and the registry.

use std::time::Duration;

use prost::Message as _;
use redress_proto::v1::{self, intake_service_client::IntakeServiceClient};
use redress_test_support::{TestBed, authed, dead_letter_reason, eventually, poll};
use tonic::Code;

mod common;
use common::{AGENT, intake};

const SECOND: Duration = Duration::from_secs(1);

fn details(key: &str) -> v1::ComplaintDetails {
    v1::ComplaintDetails {
        key: Some(v1::SubmissionKey {
            source_system: "callcentre".into(),
            external_id: key.into(),
        }),
        customer: Some(v1::Customer {
            name: "王芳".into(),
            phone: "138 0013 8000".into(),
            account: "ACC-778812".into(),
            ..Default::default()
        }),
        channel: v1::Channel::Hotline as i32,
        business: "宽带 broadband 100M".into(),
        description: "Broadband down for three days; two visits promised, none came.".into(),
        demand: "Fix the line and refund the days without service.".into(),
        first_contact: Some(v1::FirstContact {
            employee_id: "e-1001".into(),
            employee_name: "李娜".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn submit(
    client: &mut IntakeServiceClient<tonic::transport::Channel>,
    d: v1::ComplaintDetails,
) -> Result<v1::Acknowledgement, tonic::Status> {
    client
        .submit(authed(AGENT, v1::SubmitRequest { details: Some(d) }))
        .await
        .map(|r| r.into_inner())
}

/// `GetComplaint`, as the agent.
async fn get(
    client: &mut IntakeServiceClient<tonic::transport::Channel>,
    complaint_id: &str,
) -> v1::ComplaintView {
    client
        .get_complaint(authed(
            AGENT,
            v1::GetComplaintRequest {
                complaint_id: complaint_id.to_owned(),
            },
        ))
        .await
        .expect("get")
        .into_inner()
}

async fn complaint_count(bed: &TestBed) -> i64 {
    let mut conn = bed.db.connect().await;
    sqlx::query_scalar("SELECT count(*) FROM intake.complaints")
        .fetch_one(&mut conn)
        .await
        .expect("count")
}

#[tokio::test]
async fn grpc_submit_acknowledges_with_class_and_promises_and_publishes_events() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    let ack = submit(&mut client, details("k-1")).await.expect("submit");
    assert!(ack.complaint_id.starts_with("cmp_"));
    assert!(ack.complaint_number.starts_with("RD"));
    assert_eq!(ack.class(), v1::Class::C);
    assert!(!ack.duplicate);
    let p = ack.promises.expect("promises");
    let received = ack.received_at.expect("received").seconds;
    assert_eq!(
        p.completion_due.expect("completion").seconds - received,
        48 * 3600
    );
    assert_eq!(
        p.acceptance_due.expect("acceptance").seconds - received,
        24 * 3600
    );
    assert!(p.first_feedback_due.expect("feedback").seconds <= received + 48 * 3600);
    assert!(p.reason.contains("48"), "{}", p.reason);

    // Intake's own events are in the timeline as soon as Submit answers: they are written in
    // the same transaction, not read back from the bus.
    let view = get(&mut client, &ack.complaint_id).await;
    let kinds: Vec<&str> = view.timeline.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["complaint.received", "complaint.classified"],
        "{:?}",
        view.timeline
    );

    let received_events = bed.events("complaint.received", 1, 10 * SECOND).await;
    assert_eq!(received_events.len(), 1);
    let e = &received_events[0];
    assert_eq!(e.complaint_id, ack.complaint_id);
    assert_eq!(e.producer, "intake");
    assert_eq!(e.actor.as_ref().expect("actor").id, "agent-1");
    let classified = bed.events("complaint.classified", 1, 10 * SECOND).await;
    assert_eq!(classified.len(), 1);
    // The phone was normalised to E.164 in what was recorded and published.
    let Some(v1::event::Payload::ComplaintReceived(r)) = &e.payload else {
        panic!("payload")
    };
    assert_eq!(
        r.details
            .as_ref()
            .and_then(|d| d.customer.as_ref())
            .expect("customer")
            .phone,
        "+8613800138000"
    );
}

#[tokio::test]
async fn every_classification_boundary() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    use v1::{EmotionLevel as E, ProcedureBreach as P, PublicImpact as I};
    // (case, company loss fen, customer loss fen, emotion, impact, breach, expected)
    let cases: Vec<(&str, i64, i64, E, I, P, v1::Class)> = vec![
        ("loss 0", 0, 0, E::Calm, I::None, P::None, v1::Class::C),
        ("loss 0.01", 1, 0, E::Calm, I::None, P::None, v1::Class::B),
        (
            "loss 3000.00",
            300_000,
            0,
            E::Calm,
            I::None,
            P::None,
            v1::Class::B,
        ),
        (
            "loss 3000.01",
            300_001,
            0,
            E::Calm,
            I::None,
            P::None,
            v1::Class::A,
        ),
        (
            "customer loss",
            0,
            5_000,
            E::Calm,
            I::None,
            P::None,
            v1::Class::B,
        ),
        ("calm", 0, 0, E::Calm, I::None, P::None, v1::Class::C),
        ("strong", 0, 0, E::Strong, I::None, P::None, v1::Class::B),
        (
            "extremely strong",
            0,
            0,
            E::ExtremelyStrong,
            I::None,
            P::None,
            v1::Class::A,
        ),
        ("some impact", 0, 0, E::Calm, I::Some, P::None, v1::Class::B),
        (
            "large impact",
            0,
            0,
            E::Calm,
            I::Large,
            P::None,
            v1::Class::A,
        ),
        ("breach", 0, 0, E::Calm, I::None, P::Breach, v1::Class::B),
        (
            "severe breach",
            0,
            0,
            E::Calm,
            I::None,
            P::Severe,
            v1::Class::A,
        ),
        (
            "highest wins",
            1,
            0,
            E::Strong,
            I::Large,
            P::Breach,
            v1::Class::A,
        ),
        ("B beats C", 0, 0, E::Strong, I::None, P::None, v1::Class::B),
    ];
    for (i, (name, company, customer, emotion, impact, breach, expected)) in
        cases.into_iter().enumerate()
    {
        let mut d = details(&format!("cls-{i}"));
        d.company_loss_fen = company;
        d.customer_loss_fen = customer;
        d.emotion = emotion as i32;
        d.public_impact = impact as i32;
        d.procedure_breach = breach as i32;
        let ack = submit(&mut client, d).await.expect(name);
        assert_eq!(
            ack.class(),
            expected,
            "{name}: {:?}",
            ack.classification_reasons
        );
        if expected != v1::Class::C {
            assert!(
                !ack.classification_reasons.is_empty(),
                "{name}: reasons given"
            );
        }
        let completion = ack
            .promises
            .as_ref()
            .and_then(|p| p.completion_due)
            .expect("due")
            .seconds
            - ack.received_at.expect("at").seconds;
        let hours = match expected {
            v1::Class::A => 8,
            v1::Class::B => 24,
            _ => 48,
        };
        assert_eq!(completion, hours * 3600, "{name}: completion limit");
    }
}

#[tokio::test]
async fn grpc_rejections_name_every_field_and_store_nothing() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;

    let status = client
        .submit(authed(AGENT, v1::SubmitRequest { details: None }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("details"), "{}", status.message());

    let status = submit(&mut client, v1::ComplaintDetails::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    for field in [
        "details.key.source_system",
        "details.key.external_id",
        "details.customer.name",
        "details.customer.phone",
        "details.channel",
        "details.business",
        "details.description",
        "details.demand",
        "details.first_contact.employee_id",
    ] {
        assert!(
            status.message().contains(field),
            "{field} missing from: {}",
            status.message()
        );
    }

    let mut bad = details("bad-1");
    bad.customer.as_mut().expect("customer").phone = "call me maybe".into();
    bad.company_loss_fen = -5;
    bad.channel = 4242;
    bad.description = "x".repeat(100_000);
    bad.category = "no_such_category".into();
    let status = submit(&mut client, bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    for field in [
        "details.customer.phone",
        "details.company_loss_fen",
        "details.channel",
        "details.description",
        "details.category",
    ] {
        assert!(
            status.message().contains(field),
            "{field} missing from: {}",
            status.message()
        );
    }

    // Unauthenticated calls are refused before anything happens.
    let status = client
        .submit(tonic::Request::new(v1::SubmitRequest {
            details: Some(details("anon")),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    assert_eq!(complaint_count(&bed).await, 0);
    // Every call has returned: whatever they committed is relayed once the outbox is empty.
    bed.outbox_flushed("intake", 10 * SECOND).await;
    assert!(
        bed.events("complaint.>", 0, Duration::ZERO)
            .await
            .is_empty()
    );
}

async fn publish_submission(bed: &TestBed, content_type: Option<&str>, body: Vec<u8>) {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(ct) = content_type {
        headers.insert("Content-Type", ct);
    }
    bed.submit_on_bus(headers, body).await;
}

#[tokio::test]
async fn bus_accepts_protobuf_and_json_alike() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    let mut proto = details("bus-proto");
    proto.company_loss_fen = 300_001;
    publish_submission(
        &bed,
        Some("application/protobuf"),
        v1::SubmitRequest {
            details: Some(proto),
        }
        .encode_to_vec(),
    )
    .await;
    let json = serde_json::json!({
        "details": {
            "key": {"sourceSystem": "callcentre", "externalId": "bus-json"},
            "customer": {"name": "赵六", "phone": "+86 139 0000 1111", "preferredReply": "REPLY_CHANNEL_SMS"},
            "channel": "CHANNEL_HOTLINE",
            "occurredAt": "2026-11-20T08:30:00Z",
            "business": "mobile billing",
            "description": "Charged twice for the same data package.",
            "demand": "Refund the second charge.",
            "emotion": "EMOTION_LEVEL_STRONG",
            "customerLossFen": "3000",
            "firstContact": {"employeeId": "e-2002"}
        }
    });
    publish_submission(
        &bed,
        Some("application/json"),
        json.to_string().into_bytes(),
    )
    .await;

    let received = bed.events("complaint.received", 2, 15 * SECOND).await;
    assert_eq!(received.len(), 2);
    let by_key = |k: &str| {
        received
            .iter()
            .find_map(|e| match &e.payload {
                Some(v1::event::Payload::ComplaintReceived(r))
                    if r.details
                        .as_ref()
                        .and_then(|d| d.key.as_ref())
                        .map(|k| k.external_id.as_str())
                        == Some(k) =>
                {
                    Some((e.complaint_id.clone(), r.class()))
                }
                _ => None,
            })
            .expect(k)
    };
    assert_eq!(by_key("bus-proto").1, v1::Class::A);
    let (json_id, json_class) = by_key("bus-json");
    assert_eq!(json_class, v1::Class::B);
    // The same complaint is readable through gRPC, with its timeline.
    let view = get(&mut client, &json_id).await;
    assert_eq!(
        view.details
            .as_ref()
            .and_then(|d| d.customer.as_ref())
            .expect("c")
            .name,
        "赵六"
    );
    assert_eq!(view.class(), v1::Class::B);
    // Sending the JSON again records nothing new.
    publish_submission(
        &bed,
        Some("application/json"),
        json.to_string().into_bytes(),
    )
    .await;
    // Handled and acknowledged, and whatever it wrote relayed: the counts below are final.
    bed.consumed("intake-submissions", 10 * SECOND).await;
    bed.outbox_flushed("intake", 10 * SECOND).await;
    assert_eq!(complaint_count(&bed).await, 2);
    assert_eq!(bed.events("complaint.received", 2, SECOND).await.len(), 2);
}

#[tokio::test]
async fn bus_rejections_carry_the_key_and_every_reason() {
    let bed = TestBed::start().await;
    let (_svc, _client) = intake(&bed, &[]).await;
    publish_submission(
        &bed,
        Some("application/protobuf"),
        vec![0xff, 0xfe, 0x00, 0x13, 0x37, 0x99],
    )
    .await;
    publish_submission(&bed, Some("text/xml"), b"<complaint/>".to_vec()).await;
    publish_submission(
        &bed,
        Some("application/json"),
        br#"{"details": {"bogusField": 1}}"#.to_vec(),
    )
    .await;
    publish_submission(
        &bed,
        Some("application/json"),
        b"\xff\xfe not utf8".to_vec(),
    )
    .await;
    let mut bad = details("bus-bad");
    bad.customer.as_mut().expect("c").phone = "not a phone".into();
    bad.demand.clear();
    publish_submission(
        &bed,
        None,
        v1::SubmitRequest { details: Some(bad) }.encode_to_vec(),
    )
    .await;

    let rejected = bed.events("complaint.rejected", 5, 15 * SECOND).await;
    assert_eq!(rejected.len(), 5);
    let rejections: Vec<v1::ComplaintRejected> = rejected
        .into_iter()
        .map(|e| match e.payload {
            Some(v1::event::Payload::ComplaintRejected(r)) => r,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let reasons = |r: &v1::ComplaintRejected| {
        r.violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.reason))
            .collect::<Vec<_>>()
            .join("; ")
    };
    assert!(
        reasons(&rejections[0]).contains("body"),
        "{}",
        reasons(&rejections[0])
    );
    assert!(
        reasons(&rejections[1]).contains("Content-Type"),
        "{}",
        reasons(&rejections[1])
    );
    assert!(
        reasons(&rejections[2]).contains("bogusField"),
        "{}",
        reasons(&rejections[2])
    );
    assert!(
        reasons(&rejections[3]).contains("UTF-8"),
        "{}",
        reasons(&rejections[3])
    );
    let last = &rejections[4];
    assert_eq!(last.key.as_ref().expect("key").external_id, "bus-bad");
    assert!(
        reasons(last).contains("details.customer.phone"),
        "{}",
        reasons(last)
    );
    assert!(
        reasons(last).contains("details.demand"),
        "{}",
        reasons(last)
    );
    assert!(!last.message_id.is_empty());
    assert_eq!(
        complaint_count(&bed).await,
        0,
        "nothing stored for a rejected submission"
    );
}

#[tokio::test]
async fn fifty_concurrent_duplicates_make_one_complaint() {
    let bed = TestBed::start().await;
    let (_svc, client) = intake(&bed, &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            submit(&mut c, details("dup-1")).await
        }));
    }
    let mut acks = Vec::new();
    for t in tasks {
        acks.push(t.await.expect("task").expect("submit"));
    }
    let first = acks.iter().filter(|a| !a.duplicate).count();
    assert_eq!(first, 1, "exactly one submission recorded the complaint");
    let id = &acks[0].complaint_id;
    assert!(
        acks.iter()
            .all(|a| &a.complaint_id == id && a.complaint_number == acks[0].complaint_number)
    );
    assert_eq!(complaint_count(&bed).await, 1);
    // Every call has returned: once the outbox is empty, every event they made is on the stream.
    bed.outbox_flushed("intake", 10 * SECOND).await;
    assert_eq!(
        bed.events("complaint.received", 1, 5 * SECOND).await.len(),
        1
    );
}

/// A backlog on the bus (here: published while intake was down) is recorded in batches — one
/// insert for many complaints — with the same outcome as one at a time: a key repeated in the
/// backlog makes one complaint, every invalid submission its rejection, each complaint its own
/// number, and a submission's trace context reaches its events.
#[tokio::test]
async fn a_backlog_is_recorded_in_batches_with_the_outcome_of_one_at_a_time() {
    let bed = TestBed::start().await;
    let (mut svc, _client) = intake(&bed, &[]).await;
    svc.terminate(10 * SECOND).await.expect("stopped");

    let body = |d: v1::ComplaintDetails| v1::SubmitRequest { details: Some(d) }.encode_to_vec();
    for i in 0..200 {
        publish_submission(&bed, None, body(details(&format!("burst-{i}")))).await;
    }
    for i in 0..50 {
        publish_submission(&bed, None, body(details(&format!("burst-{i}")))).await;
        let mut bad = details(&format!("bad-{i}"));
        bad.description.clear();
        publish_submission(&bed, None, body(bad)).await;
    }
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{trace_id}-b7ad6b7169203331-01").as_str(),
    );
    bed.submit_on_bus(headers, body(details("burst-traced")))
        .await;
    // Twins next to each other, so within one batch.
    for _ in 0..2 {
        publish_submission(&bed, None, body(details("burst-twin"))).await;
    }

    let (svc, _client) = intake(
        &bed,
        &[
            ("REDRESS_CONSUMER_BATCH", "128"),
            ("RUST_LOG", "info,redress_platform=debug"),
        ],
    )
    .await;
    let received = bed.events("complaint.received", 202, 30 * SECOND).await;
    let rejected = bed.events("complaint.rejected", 50, 10 * SECOND).await;
    // The whole backlog handled and acknowledged, and its events relayed: nothing more comes.
    bed.consumed("intake-submissions", 30 * SECOND).await;
    bed.outbox_flushed("intake", 10 * SECOND).await;
    assert_eq!(complaint_count(&bed).await, 202);
    assert_eq!(received.len(), 202, "one complaint.received per complaint");
    assert_eq!(
        bed.events("complaint.received", 0, Duration::ZERO)
            .await
            .len(),
        202,
        "and no more"
    );
    assert_eq!(rejected.len(), 50);
    for r in &rejected {
        let Some(v1::event::Payload::ComplaintRejected(r)) = &r.payload else {
            panic!("{r:?}");
        };
        assert!(
            r.violations
                .iter()
                .any(|v| v.field == "details.description"),
            "{r:?}"
        );
    }
    let mut conn = bed.db.connect().await;
    let numbers: i64 = sqlx::query_scalar("SELECT count(DISTINCT number) FROM intake.complaints")
        .fetch_one(&mut conn)
        .await
        .expect("numbers");
    assert_eq!(numbers, 202, "every complaint its own number");

    // The traced submission's events continue its trace.
    let traced: Vec<_> = bed
        .event_messages("complaint.received", 202, SECOND)
        .await
        .into_iter()
        .filter(|m| {
            v1::Event::decode(m.payload.clone()).is_ok_and(|e| {
                matches!(&e.payload, Some(v1::event::Payload::ComplaintReceived(r))
                    if r.details.as_ref().and_then(|d| d.key.as_ref())
                        .is_some_and(|k| k.external_id == "burst-traced"))
            })
        })
        .collect();
    assert_eq!(traced.len(), 1);
    let traceparent = traced[0]
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    assert!(traceparent.contains(trace_id), "{traceparent:?}");

    // Batches were used: fewer batches than messages.
    let c = svc.consumed("intake-submissions", 303.0, 10 * SECOND).await;
    assert_eq!(c.messages, 303.0, "{}", c.page);
    assert!(
        c.batches < c.messages / 4.0,
        "{} batches for {} messages",
        c.batches,
        c.messages
    );
    // And no batch fell back to one message at a time (which would hide a batch-path bug).
    let logs = svc.logs();
    assert!(!logs.contains("batch failed"), "{logs}");
}

#[tokio::test]
async fn chinese_rare_cjk_and_emoji_round_trip_byte_exact() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    let mut d = details("unicode-1");
    let name = "𠀀𪚥龘 欧阳娜娜";
    let description = "网络断了三天 😡🔥 客服说“马上处理”，结果没人来。\n第二行：𠮷野家 𩸽 🇨🇳 👩‍👩‍👧";
    d.customer.as_mut().expect("c").name = name.into();
    d.description = description.into();
    d.demand = "退还三天费用🙏".into();
    let ack = submit(&mut client, d).await.expect("submit");
    let view = get(&mut client, &ack.complaint_id).await;
    let got = view.details.expect("details");
    assert_eq!(got.customer.expect("c").name.as_bytes(), name.as_bytes());
    assert_eq!(got.description.as_bytes(), description.as_bytes());
    assert_eq!(got.demand, "退还三天费用🙏");
    let events = bed.events("complaint.received", 1, 10 * SECOND).await;
    let Some(v1::event::Payload::ComplaintReceived(r)) = &events[0].payload else {
        panic!()
    };
    assert_eq!(
        r.details.as_ref().expect("d").description.as_bytes(),
        description.as_bytes()
    );
}

#[tokio::test]
async fn confirm_and_reclassify_are_recorded_with_events() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    let ack = submit(&mut client, details("cr-1")).await.expect("submit");
    assert!(!ack.confirmed);
    let confirm = v1::ConfirmRequest {
        complaint_id: ack.complaint_id.clone(),
        confirmation: Some(v1::Confirmation {
            method: v1::ConfirmationMethod::Phone as i32,
            confirmed_at: None,
            note: "read back on the call".into(),
        }),
    };
    let first = client
        .confirm(authed(AGENT, confirm.clone()))
        .await
        .expect("confirm")
        .into_inner();
    assert!(!first.already_confirmed);
    let second = client
        .confirm(authed(AGENT, confirm))
        .await
        .expect("again")
        .into_inner();
    assert!(second.already_confirmed, "confirming twice changes nothing");
    assert_eq!(
        bed.events("complaint.confirmed", 1, 10 * SECOND)
            .await
            .len(),
        1
    );

    let missing_reason = client
        .reclassify(authed(
            AGENT,
            v1::ReclassifyRequest {
                complaint_id: ack.complaint_id.clone(),
                class: v1::Class::A as i32,
                reason: "  ".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing_reason.code(), Code::InvalidArgument);
    let handler_may_not = client
        .reclassify(authed(
            "test-handler-token",
            v1::ReclassifyRequest {
                complaint_id: ack.complaint_id.clone(),
                class: v1::Class::A as i32,
                reason: "media called".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(handler_may_not.code(), Code::PermissionDenied);
    let re = client
        .reclassify(authed(
            AGENT,
            v1::ReclassifyRequest {
                complaint_id: ack.complaint_id.clone(),
                class: v1::Class::A as i32,
                reason: "a journalist called about it".into(),
            },
        ))
        .await
        .expect("reclassify")
        .into_inner();
    assert_eq!(re.previous_class(), v1::Class::C);
    let due = re.promises.expect("p").completion_due.expect("due").seconds;
    assert_eq!(
        due - ack.received_at.expect("at").seconds,
        8 * 3600,
        "limits recomputed for A"
    );
    let events = bed.events("complaint.reclassified", 1, 10 * SECOND).await;
    let Some(v1::event::Payload::ComplaintReclassified(r)) = &events[0].payload else {
        panic!()
    };
    assert_eq!(r.reason, "a journalist called about it");

    let bad_id = client
        .get_complaint(authed(
            AGENT,
            v1::GetComplaintRequest {
                complaint_id: "nope".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    assert!(bad_id.message().contains("complaint_id"));
}

#[tokio::test]
async fn timeline_shows_events_from_another_service_and_lists_filter() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    let ack = submit(&mut client, details("tl-1")).await.expect("submit");
    let mut b = details("tl-2");
    b.emotion = v1::EmotionLevel::Strong as i32;
    submit(&mut client, b).await.expect("submit b");

    // Routing's event, as routing publishes it.
    let routed = v1::Event {
        event_id: "evt_routing_test_0001".into(),
        complaint_id: ack.complaint_id.clone(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: chrono_now() + 1,
            nanos: 0,
        }),
        actor: Some(v1::Actor {
            id: "routing".into(),
            display_name: "routing rules".into(),
            role: v1::Role::System as i32,
        }),
        schema_version: 1,
        producer: "routing".into(),
        payload: Some(v1::event::Payload::ComplaintRouted(v1::ComplaintRouted {
            department_id: "dept-network".into(),
            department_name: "Network Operations".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    bed.publish_event(&routed).await;

    let view = eventually("timeline with the routing event", 10 * SECOND, async || {
        let v = get(&mut client, &ack.complaint_id).await;
        (v.timeline.iter().any(|t| t.kind == "complaint.routed") && v.timeline.len() >= 3)
            .then_some(v)
    })
    .await;
    let kinds: Vec<&str> = view.timeline.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "complaint.received",
            "complaint.classified",
            "complaint.routed"
        ]
    );
    let routed_entry = &view.timeline[2];
    assert_eq!(routed_entry.source_service, "routing");
    assert!(routed_entry.summary.contains("Network Operations"));
    assert_eq!(view.status, "routed");
    assert_eq!(view.department_id, "dept-network");

    // Revisit's satisfaction report becomes a field on the complaint.
    let satisfaction = v1::Event {
        event_id: "evt_revisit_test_0001".into(),
        complaint_id: ack.complaint_id.clone(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: chrono_now() + 2,
            nanos: 0,
        }),
        schema_version: 1,
        producer: "revisit".into(),
        payload: Some(v1::event::Payload::SatisfactionReported(
            v1::SatisfactionReported {
                satisfied: false,
                department_id: "dept-network".into(),
                summary: "still no refund".into(),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    bed.publish_event(&satisfaction).await;
    let seen = poll(
        10 * SECOND,
        async || get(&mut client, &ack.complaint_id).await.satisfaction,
        |seen| !seen.is_empty(),
    )
    .await;
    assert_eq!(seen, "dissatisfied");

    let list = |req: v1::ListComplaintsRequest| {
        let mut c = client.clone();
        async move {
            c.list_complaints(authed(AGENT, req))
                .await
                .expect("list")
                .into_inner()
        }
    };
    let routed_only = list(v1::ListComplaintsRequest {
        department_id: "dept-network".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(routed_only.complaints.len(), 1);
    let b_only = list(v1::ListComplaintsRequest {
        class: v1::Class::B as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(b_only.complaints.len(), 1);
    assert_eq!(b_only.complaints[0].class(), v1::Class::B);
    // Pagination: one per page, two pages, no repeats.
    let p1 = list(v1::ListComplaintsRequest {
        page: Some(v1::PageRequest {
            page_size: 1,
            page_token: String::new(),
        }),
        ..Default::default()
    })
    .await;
    assert_eq!(p1.complaints.len(), 1);
    assert!(!p1.next_page_token.is_empty());
    let p2 = list(v1::ListComplaintsRequest {
        page: Some(v1::PageRequest {
            page_size: 1,
            page_token: p1.next_page_token.clone(),
        }),
        ..Default::default()
    })
    .await;
    assert_eq!(p2.complaints.len(), 1);
    assert_ne!(p1.complaints[0].complaint_id, p2.complaints[0].complaint_id);
    assert!(p2.next_page_token.is_empty());
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[tokio::test]
async fn crash_between_commit_and_publish_still_publishes_once() {
    let bed = TestBed::start().await;
    // 1. The relay publishes, then the process dies before marking the rows published.
    let (mut svc, mut client) = intake(&bed, &[("REDRESS_FAULT_EXIT_AFTER_PUBLISH", "true")]).await;
    // The process exits right after the relay's publish, which races the gRPC reply: the reply
    // may never be flushed. Only a transport failure is allowed; the commit is proven below from
    // the database, which is what the acknowledgement promises.
    let acked = submit(&mut client, details("crash-1")).await;
    if let Err(status) = &acked {
        assert!(
            matches!(
                status.code(),
                tonic::Code::Unknown | tonic::Code::Unavailable | tonic::Code::Cancelled
            ),
            "submit may lose its reply to the crash, nothing else: {status:?}"
        );
    }
    let status = svc
        .wait_exit(10 * SECOND)
        .await
        .expect("process exits at the fault point");
    assert_eq!(status.code(), Some(86));
    let mut conn = bed.db.connect().await;
    let unmarked: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.outbox")
        .fetch_one(&mut conn)
        .await
        .expect("outbox");
    assert!(unmarked >= 2, "rows stay unmarked after the crash");
    let complaint_id: String = sqlx::query_scalar(
        "SELECT complaint_id FROM intake.complaints WHERE external_id = 'crash-1'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("the submission was committed before the crash");
    if let Ok(ack) = &acked {
        assert_eq!(ack.complaint_id, complaint_id);
    }
    // 2. Restarted, the relay publishes them again; JetStream keeps one copy.
    let (_svc, _client) = intake(&bed, &[]).await;
    poll(
        10 * SECOND,
        async || -> i64 {
            sqlx::query_scalar("SELECT count(*) FROM intake.outbox")
                .fetch_one(&mut conn)
                .await
                .expect("outbox")
        },
        |left| *left == 0,
    )
    .await;
    let received = bed.events("complaint.received", 1, 5 * SECOND).await;
    assert_eq!(received.len(), 1, "published once");
    assert_eq!(received[0].complaint_id, complaint_id);
    assert_eq!(bed.events("complaint.classified", 1, SECOND).await.len(), 1);
}

#[tokio::test]
async fn killed_before_the_relay_ran_the_event_is_published_after_restart() {
    let bed = TestBed::start().await;
    let (mut svc, mut client) = intake(&bed, &[("REDRESS_OUTBOX_RELAY", "false")]).await;
    submit(&mut client, details("kill-1"))
        .await
        .expect("submit");
    svc.kill();
    assert!(
        bed.events("complaint.received", 0, Duration::ZERO)
            .await
            .is_empty()
    );
    let (_svc, _client) = intake(&bed, &[]).await;
    assert_eq!(
        bed.events("complaint.received", 1, 10 * SECOND).await.len(),
        1
    );
}

#[tokio::test]
async fn restart_between_receive_and_ack_yields_one_complaint() {
    let bed = TestBed::start().await;
    let (mut svc, _client) = intake(
        &bed,
        &[
            ("REDRESS_FAULT_EXIT_AFTER_COMMIT", "true"),
            ("REDRESS_ACK_WAIT_SECS", "1"),
        ],
    )
    .await;
    publish_submission(
        &bed,
        None,
        v1::SubmitRequest {
            details: Some(details("ack-1")),
        }
        .encode_to_vec(),
    )
    .await;
    let status = svc
        .wait_exit(10 * SECOND)
        .await
        .expect("exits after commit, before ack");
    assert_eq!(status.code(), Some(87));
    assert_eq!(complaint_count(&bed).await, 1);
    // The message was never acknowledged: JetStream redelivers it to the restarted service.
    let (_svc, _client) = intake(&bed, &[("REDRESS_ACK_WAIT_SECS", "1")]).await;
    let info = bed.consumed("intake-submissions", 10 * SECOND).await;
    assert!(info.delivered.stream_sequence >= 1, "{info:?}");
    assert_eq!(
        complaint_count(&bed).await,
        1,
        "the redelivery changed nothing"
    );
    // Acknowledged above; once the outbox is empty every event it made is on the stream.
    bed.outbox_flushed("intake", 10 * SECOND).await;
    assert_eq!(
        bed.events("complaint.received", 1, 5 * SECOND).await.len(),
        1
    );
}

#[tokio::test]
async fn poison_event_is_dead_lettered_and_the_registry_moves_on() {
    let bed = TestBed::start().await;
    let (svc, mut client) = intake(&bed, &[]).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, "poison-1");
    bed.js
        .publish_with_headers(
            format!("{}.events.complaint.routed", bed.prefix),
            headers,
            vec![0xde, 0xad, 0xbe, 0xef, 0xff].into(),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    let ack = submit(&mut client, details("after-poison"))
        .await
        .expect("submit");
    let dead = bed.dead_letters(1, 10 * SECOND).await;
    assert_eq!(dead.len(), 1);
    let reason = dead_letter_reason(&dead[0]);
    assert!(reason.contains("not an Event"), "{reason:?}");
    assert_eq!(dead[0].subject.as_str(), "t.deadletter.intake-registry");
    // Later events are still applied.
    eventually(
        "later events applied after the poison message",
        10 * SECOND,
        async || (get(&mut client, &ack.complaint_id).await.timeline.len() >= 2).then_some(()),
    )
    .await;
    drop(svc);
}

#[tokio::test]
async fn stops_cleanly_on_sigterm() {
    let bed = TestBed::start().await;
    let (mut svc, mut client) = intake(&bed, &[]).await;
    submit(&mut client, details("term-1"))
        .await
        .expect("submit");
    let status = svc.terminate(15 * SECOND).await.expect("exits");
    assert!(status.success(), "clean exit: {status}\n{}", svc.logs());
    assert!(svc.logs().contains("stopped"));
    // What was committed before the signal was flushed by the relay on the way out.
    assert_eq!(
        bed.events("complaint.received", 1, 5 * SECOND).await.len(),
        1
    );
}

/// A complaint's number carries the day of receipt in the policy's time zone (+08:00 by
/// default), the day the reports count it on: 22:47 UTC on 1 December is 06:47 on the 2nd.
#[tokio::test]
async fn the_complaint_number_has_the_local_day_of_receipt() {
    use chrono::TimeZone as _;
    let bed = TestBed::start().await;
    let clock = redress_test_support::ClockControl::starting_at(
        chrono::Utc
            .with_ymd_and_hms(2026, 12, 1, 22, 47, 0)
            .single()
            .expect("a time"),
    );
    let spec = clock.spec();
    let (_svc, mut client) = intake(&bed, &[("REDRESS_CLOCK", spec.as_str())]).await;
    let ack = submit(&mut client, details("k-local-day"))
        .await
        .expect("submit");
    assert!(
        ack.complaint_number.starts_with("RD20261202-"),
        "{}",
        ack.complaint_number
    );
}

/// Numbers past the millionth complaint keep every digit. They were cut to six, so the
/// millionth collided with an earlier number of the same day and was dead-lettered.
#[tokio::test]
async fn complaint_numbers_past_a_million_keep_every_digit() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    let first = submit(&mut client, details("k-before-a-million"))
        .await
        .expect("submit");
    let mut conn = bed.db.connect().await;
    sqlx::query("SELECT setval('intake.complaint_number_seq', 999999)")
        .execute(&mut conn)
        .await
        .expect("move the sequence");
    let millionth = submit(&mut client, details("k-a-million"))
        .await
        .expect("submit the millionth");
    let day = &first.complaint_number[..first.complaint_number.len() - 6];
    assert_eq!(millionth.complaint_number, format!("{day}1000000"));
    assert_eq!(first.complaint_number, format!("{day}000001"));
}
