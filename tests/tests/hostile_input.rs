//! No personal data in any service's log, whatever arrives (issue 17): a corpus of hostile and
//! malformed submissions — wrong JSON types, truncated JSON, invalid UTF-8, garbage protobuf,
//! oversized and control-character fields, phone numbers written with dots, spaces, dashes and
//! brackets, names hidden in other fields — goes through both doors (gRPC and the bus), next to
//! valid complaints carrying the same personal data that run through all five services. Then
//! every service's log is read: no name, phone number, e-mail or account appears in it, no
//! service panicked, and every one still answers.

mod common;

use std::time::Duration;

use prost::Message as _;
use redress_proto::v1::{self, intake_service_client::IntakeServiceClient};
use redress_test_support::{TestBed, authed, poll};

const NAME: &str = "李雷雷";
const EMAIL: &str = "lilei.secret@example.com";
const ACCOUNT: &str = "ACCT-99887766";

/// The same mobile number written as people write it.
const PHONES: [&str; 6] = [
    "13911112222",
    "139.1111.2222",
    "139 1111 2222",
    "139-1111-2222",
    "+86 139 1111 2222",
    "(139)1111-2222",
];

/// What must never appear in a log line: the name, the e-mail, the account, and the number in
/// any of its forms (its digits in groups, too).
const SECRETS: [&str; 10] = [
    NAME,
    "lilei.secret",
    "99887766",
    "13911112222",
    "139.1111",
    "139 1111",
    "139-1111",
    "1111.2222",
    "1111 2222",
    "1111-2222",
];

fn valid(key: &str, phone: &str) -> v1::ComplaintDetails {
    let mut d = common::complaint(key);
    let customer = d.customer.as_mut().expect("customer");
    customer.name = NAME.into();
    customer.phone = phone.into();
    customer.email = EMAIL.into();
    customer.account = ACCOUNT.into();
    d.description = format!("{NAME} says: call me on {phone} or write to {EMAIL}.");
    d
}

/// Bus bodies and their content types: each malformed in its own way, each carrying personal
/// data where a careless error message would quote it.
fn hostile_bus_bodies() -> Vec<(Vec<u8>, &'static str)> {
    let json = |s: String| (s.into_bytes(), "application/json");
    let mut bodies = vec![
        json(format!(
            r#"{{"details":{{"customer":{{"name":12345,"phone":"{}"}}}}}}"#,
            PHONES[1]
        )),
        json(format!(
            r#"{{"details":{{"customer":{{"name":"{NAME}","phone":["{}"]}}}}}}"#,
            PHONES[2]
        )),
        json(format!(
            r#"{{"details":{{"customer":{{"name":{{"first":"{NAME}"}},"phone":{}}}}}}}"#,
            PHONES[0]
        )),
        json(format!(
            r#"{{"details":{{"customer":{{"name":"{NAME} tel:{}","phone":true}}}}}}"#,
            PHONES[0]
        )),
        json(format!(r#"{{"details":{{"customer":{{"name":"{NAME}"#)),
        json(format!(
            r#"{{"details":{{"nickname":"{NAME}","customer":{{"phone":"{}"}}}}}}"#,
            PHONES[3]
        )),
        json(format!(
            r#"{{"details":{{"customer":{{"name":"{NAME}","phone":"{}","email":"{EMAIL}",
               "account":"{ACCOUNT}"}},"channel":"CHANNEL_NOPE"}}}}"#,
            PHONES[4]
        )),
        json(format!(
            r#"{{"details":{{"customer":{{"name":"{NAME}","phone":"{}"}},"companyLossFen":"lots"}}}}"#,
            PHONES[5]
        )),
        // Personal data as the string value of a field of another type, or as an enum
        // value: where a parser's error message would quote it.
        json(format!(
            r#"{{"details":{{"customer":{{"name":"x","phone":"{}"}},"companyLossFen":"{NAME} {}"}}}}"#,
            PHONES[0], PHONES[1]
        )),
        json(format!(
            r#"{{"details":{{"channel":"{NAME} {}","emotion":"{EMAIL}"}}}}"#,
            PHONES[3]
        )),
        json(format!(
            r#"{{"details":{{"customer":{{"preferredReply":"{ACCOUNT} {NAME}"}}}}}}"#
        )),
        json(format!("not json at all, {NAME} {}", PHONES[1])),
        json(format!("{}{NAME}{}", "[".repeat(500), "]".repeat(500))),
        json(format!(
            r#"{{"details":{{"customer":{{"name":"{}","phone":"{}"}}}}}}"#,
            NAME.repeat(5_000),
            PHONES[0]
        )),
        json(format!(
            "{{\"details\":{{\"customer\":{{\"name\":\"{NAME}\u{0}\u{7}\u{1b}[31m\",\
             \"phone\":\"{}\"}},\"description\":\"\u{202e}{NAME}\"}}}}",
            PHONES[0]
        )),
    ];
    // Invalid UTF-8 around the number.
    let mut bytes = br#"{"details":{"customer":{"name":""#.to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    bytes.extend_from_slice(PHONES[0].as_bytes());
    bytes.extend_from_slice(br#""}}}"#);
    bodies.push((bytes, "application/json"));
    // Protobuf that is not a SubmitRequest: the number as raw bytes in a field.
    let mut garbage = vec![0x0a, 0x40];
    garbage.extend_from_slice(format!("{NAME}{}", PHONES[0]).as_bytes());
    bodies.push((garbage, "application/protobuf"));
    // A well-formed protobuf whose fields are invalid (the phone is not a phone).
    let mut bad = valid("hostile-pb", &format!("{NAME} {}", PHONES[1]));
    bad.demand = String::new();
    bodies.push((
        v1::SubmitRequest { details: Some(bad) }.encode_to_vec(),
        "application/protobuf",
    ));
    // No content type at all.
    bodies.push((format!("{NAME} {}", PHONES[2]).into_bytes(), ""));
    bodies
}

#[tokio::test]
async fn no_personal_data_reaches_any_log_whatever_arrives() {
    let bed = TestBed::start().await;
    let stack = common::start(&bed, &[]).await;
    let mut intake = IntakeServiceClient::new(bed.channel(&stack.intake).await);

    // Valid complaints carrying the personal data, every way of writing the number: they run
    // through routing, the clocks (4 s completion: late), escalation and revisit planning.
    let mut accepted = 0;
    for (i, phone) in PHONES.iter().enumerate() {
        let r = intake
            .submit(authed(
                "test-agent-token",
                v1::SubmitRequest {
                    details: Some(valid(&format!("valid-{i}"), phone)),
                },
            ))
            .await;
        if r.is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted >= 1, "at least the plain number is a valid phone");

    // Invalid through gRPC: each refused with an error naming the field, not the value.
    let mut refused = Vec::new();
    for (i, details) in [
        valid("bad-1", &format!("{NAME} {}", PHONES[1])),
        valid("bad-2", &format!("{}x", PHONES[0])),
        {
            let mut d = valid("bad-3", PHONES[0]);
            d.customer.as_mut().expect("customer").email = format!("{EMAIL}@@");
            d
        },
        {
            let mut d = valid("bad-4", PHONES[0]);
            d.customer.as_mut().expect("customer").name = NAME.repeat(10_000);
            d
        },
        {
            let mut d = valid("bad-5", PHONES[0]);
            d.demand = String::new();
            d.customer.as_mut().expect("customer").phone = format!("\u{0}{}", PHONES[3]);
            d
        },
    ]
    .into_iter()
    .enumerate()
    {
        let err = intake
            .submit(authed(
                "test-agent-token",
                v1::SubmitRequest {
                    details: Some(details),
                },
            ))
            .await
            .expect_err(&format!("hostile submission {i} refused"));
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        refused.push(err.message().to_owned());
    }
    for m in &refused {
        for secret in SECRETS {
            assert!(!m.contains(secret), "the refusal quotes {secret:?}: {m}");
        }
    }

    // Hostile bodies on the bus, acknowledged by JetStream like any other.
    let bodies = hostile_bus_bodies();
    for (body, content_type) in &bodies {
        let mut headers = async_nats::HeaderMap::new();
        if !content_type.is_empty() {
            headers.insert("Content-Type", *content_type);
        }
        bed.submit_on_bus(headers, body.clone()).await;
    }
    // Each hostile bus body is answered: a rejection event or a dead letter, nothing silent.
    let (rejected, dead) = poll(
        Duration::from_secs(30),
        async || {
            (
                bed.events("complaint.rejected", 0, Duration::ZERO).await,
                bed.dead_letters(0, Duration::ZERO).await,
            )
        },
        |(rejected, dead)| rejected.len() + dead.len() >= bodies.len(),
    )
    .await;
    assert_eq!(
        rejected.len() + dead.len(),
        bodies.len(),
        "every hostile body rejected or dead-lettered: {} rejected, {} dead letters",
        rejected.len(),
        dead.len()
    );

    // Let the valid complaints run their course (late at 4 s, escalated, fined).
    bed.events("escalation.raised", accepted, Duration::from_secs(40))
        .await;
    // Settled: every consumer caught up, the general manager's climb (3 s after) done, every
    // outbox relayed; nothing else is due for a while (first feedback warns at 30 s).
    let received = bed
        .events("complaint.received", accepted, Duration::ZERO)
        .await;
    let ids: Vec<&str> = received.iter().map(|e| e.complaint_id.as_str()).collect();
    common::settled(&bed, &ids, Duration::from_secs(10)).await;

    let services = [
        &stack.intake,
        &stack.routing,
        &stack.sla,
        &stack.escalation,
        &stack.revisit,
    ];
    // The rejections were logged (with their reasons): the scan below reads real lines.
    let rejections = stack
        .intake
        .logs()
        .lines()
        .filter(|l| l.contains("submission rejected"))
        .count();
    assert!(
        rejections >= rejected.len(),
        "{rejections} rejections logged for {} rejected",
        rejected.len()
    );
    let mut leaks = Vec::new();
    for service in services {
        let logs = service.logs();
        assert!(!logs.is_empty(), "{} wrote no log", service.name);
        for line in logs.lines() {
            if line.contains("panicked") {
                leaks.push(format!("{}: panic: {line}", service.name));
            }
            for secret in SECRETS {
                if line.contains(secret) {
                    leaks.push(format!("{}: {secret:?} in: {line}", service.name));
                }
            }
        }
        // Still serving.
        let mut health =
            tonic_health::pb::health_client::HealthClient::new(bed.channel(service).await);
        health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .unwrap_or_else(|e| panic!("{} no longer answers: {e}", service.name));
    }
    assert!(
        leaks.is_empty(),
        "personal data in the logs:\n{}",
        leaks.join("\n")
    );
}
