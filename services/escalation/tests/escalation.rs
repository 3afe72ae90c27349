//! The escalation service as a process against real NATS JetStream and PostgreSQL, with a real
//! HTTP receiver (axum on 127.0.0.1:0) for the webhook. The tests play routing, intake, the SLA
//! monitor and revisit by publishing their events.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redress_escalation::channel::signature;
use redress_proto::v1::{self, escalation_service_client::EscalationServiceClient, event::Payload};
use redress_test_support::{ServiceProcess, TestBed, authed, dead_letter_reason, poll};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "test-webhook-secret";

/// One request the receiver got: the signature header and the body.
type Received = (String, Vec<u8>);

/// A webhook receiver: records every request; answers 503 while `down`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
    refused: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let state = state.clone();
                    async move {
                        if state.down.load(Ordering::SeqCst) {
                            *state.refused.lock().unwrap() += 1;
                            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        let sig = headers
                            .get("x-redress-signature")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        state.got.lock().unwrap().push((sig, body.to_vec()));
                        axum::http::StatusCode::OK
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, format!("http://{addr}/hook"))
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        poll(WAIT, async || self.bodies(), |got| got.len() >= n).await
    }
}

struct Svc {
    _files: Vec<tempfile::NamedTempFile>,
    svc: ServiceProcess,
    client: EscalationServiceClient<tonic::transport::Channel>,
}

fn temp(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// Starts the service with a webhook to `url` and the given `[escalation]` policy section.
async fn start(bed: &TestBed, url: &str, escalation_policy: &str) -> Svc {
    start_with(bed, url, escalation_policy, &[]).await
}

async fn start_with(
    bed: &TestBed,
    url: &str,
    escalation_policy: &str,
    env: &[(&str, &str)],
) -> Svc {
    let settings = temp(&format!(
        "tick_ms = 50\n[[webhooks]]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n\
         initial_backoff_ms = 100\nmax_backoff_ms = 300\nmax_attempts = 50\n"
    ));
    let policy = temp(&format!("[escalation]\n{escalation_policy}\n"));
    let mut all = vec![
        (
            "REDRESS_ESCALATION_SETTINGS",
            settings.path().to_str().unwrap(),
        ),
        ("REDRESS_POLICY_FILE", policy.path().to_str().unwrap()),
    ];
    all.extend_from_slice(env);
    let svc = bed.spawn("redress-escalation", &all).await;
    let client = EscalationServiceClient::new(bed.channel(&svc).await);
    Svc {
        _files: vec![settings, policy],
        svc,
        client,
    }
}

fn envelope(complaint_id: &str, producer: &str, payload: Payload) -> v1::Event {
    let now = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp(),
        nanos: 0,
    };
    let id = redress_domain::EventId::new().to_string();
    redress_test_support::envelope(id, complaint_id, producer, now, payload)
}

async fn publish(bed: &TestBed, e: &v1::Event) {
    bed.publish_event(e).await;
}

/// Routing's organisation: department d-1 managed by manager-1, general manager gm-1.
async fn organisation(bed: &TestBed) {
    publish(
        bed,
        &envelope(
            "",
            "routing",
            Payload::DepartmentUpserted(v1::DepartmentUpserted {
                department_id: "d-1".into(),
                name: "Broadband".into(),
                manager_id: "manager-1".into(),
                service_centre: false,
            }),
        ),
    )
    .await;
    for (id, name, role) in [
        ("manager-1", "Manager One", v1::Role::DepartmentManager),
        ("gm-1", "General Manager", v1::Role::GeneralManager),
        ("handler-1", "Handler One", v1::Role::Handler),
    ] {
        publish(
            bed,
            &envelope(
                "",
                "routing",
                Payload::StaffUpserted(v1::StaffUpserted {
                    staff_id: id.into(),
                    name: name.into(),
                    department_id: "d-1".into(),
                    role: role as i32,
                    phone: "+8613800138000".into(),
                    email: format!("{id}@example.com"),
                    on_leave: false,
                }),
            ),
        )
        .await;
    }
}

/// Intake received and routing routed a complaint of `class` to d-1.
async fn complaint(bed: &TestBed, class: v1::Class, group: bool, media: bool) -> String {
    let cid = redress_domain::ComplaintId::new().to_string();
    publish(
        bed,
        &envelope(
            &cid,
            "intake",
            Payload::ComplaintReceived(v1::ComplaintReceived {
                details: Some(v1::ComplaintDetails {
                    group_complaint: group,
                    media_risk: media,
                    ..Default::default()
                }),
                complaint_number: format!("RD-{}", &cid[cid.len() - 4..]),
                class: class as i32,
                confirmed: true,
                ..Default::default()
            }),
        ),
    )
    .await;
    publish(
        bed,
        &envelope(
            &cid,
            "routing",
            Payload::ComplaintRouted(v1::ComplaintRouted {
                department_id: "d-1".into(),
                department_name: "Broadband".into(),
                department_manager_id: "manager-1".into(),
                acceptance_owner_id: "manager-1".into(),
                class: class as i32,
                ..Default::default()
            }),
        ),
    )
    .await;
    cid
}

fn overdue(cid: &str, class: v1::Class) -> v1::Event {
    envelope(
        cid,
        "sla-monitor",
        Payload::SlaOverdue(v1::SlaOverdue {
            clock: v1::SlaClock::Completion as i32,
            due_at: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp() - 60,
                nanos: 0,
            }),
            responsible_person_id: "handler-1".into(),
            department_id: "d-1".into(),
            class: class as i32,
            overdue_day: 0,
            complaint_number: "RD-1".into(),
        }),
    )
}

async fn escalations(
    client: &mut EscalationServiceClient<tonic::transport::Channel>,
    cid: &str,
) -> Vec<v1::Escalation> {
    let mut out = client
        .list_escalations(authed(
            "test-operator-token",
            v1::ListEscalationsRequest {
                complaint_id: cid.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .escalations;
    out.sort_by_key(|e| e.level);
    out
}

/// Waits until the complaint has at least `n` escalations.
async fn wait_escalations(svc: &mut Svc, cid: &str, n: usize) -> Vec<v1::Escalation> {
    poll(
        WAIT,
        async || escalations(&mut svc.client, cid).await,
        |got| got.len() >= n,
    )
    .await
}

fn raised_for<'a>(events: &'a [v1::Event], cid: &str) -> Vec<&'a v1::EscalationRaised> {
    events
        .iter()
        .filter(|e| e.complaint_id == cid)
        .filter_map(|e| match &e.payload {
            Some(Payload::EscalationRaised(r)) => Some(r),
            _ => None,
        })
        .collect()
}

async fn count(bed: &TestBed, sql: &str, cid: &str) -> i64 {
    let mut conn = bed.db.connect().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(cid)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

const NOTIFICATIONS_OF: &str = "SELECT count(*) FROM escalation.notifications n
    JOIN escalation.escalations e USING (escalation_id) WHERE e.complaint_id = $1";

#[tokio::test]
async fn overdue_goes_to_the_department_manager_signed_and_once_under_redelivery() {
    let bed = TestBed::start().await;
    let (receiver, url) = Receiver::start().await;
    let mut svc = start(&bed, &url, "").await;
    organisation(&bed).await;
    let cid = complaint(&bed, v1::Class::C, false, false).await;
    let late = overdue(&cid, v1::Class::C);
    publish(&bed, &late).await;

    let got = wait_escalations(&mut svc, &cid, 1).await;
    assert_eq!(got.len(), 1, "{}", svc.svc.logs());
    let e = &got[0];
    assert_eq!(e.level, 1);
    assert_eq!(e.recipient_id, "manager-1");
    assert_eq!(e.department_id, "d-1");
    assert_eq!(e.trigger(), v1::EscalationTrigger::SlaOverdue);
    assert_eq!(e.state(), v1::EscalationState::Raised);
    assert!(e.summary.contains("completion"), "{}", e.summary);

    // The event, the per-person subject, and the signed webhook.
    let raised = bed.events("escalation.raised", 1, WAIT).await;
    let r = raised_for(&raised, &cid);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].recipient_name, "Manager One");
    let on_subject = bed
        .read_stream("T_NOTIFICATIONS", "t.notifications.manager-1", 1, WAIT)
        .await;
    assert_eq!(on_subject.len(), 1);
    let published: serde_json::Value = serde_json::from_slice(&on_subject[0].payload).unwrap();
    assert_eq!(published["escalation_id"], e.escalation_id.as_str());
    let bodies = receiver.wait_for(1).await;
    assert_eq!(bodies[0]["escalation_id"], e.escalation_id.as_str());
    assert_eq!(bodies[0]["recipient_email"], "manager-1@example.com");
    {
        let got = receiver.got.lock().unwrap();
        assert_eq!(got[0].0, signature(SECRET.as_bytes(), &got[0].1));
        assert!(got[0].0.starts_with("sha256="));
    }
    let delivered = bed.events("notification.delivered", 2, WAIT).await;
    assert!(delivered.iter().any(|d| matches!(&d.payload,
        Some(Payload::NotificationDelivered(n)) if n.channel == "webhook")));

    // Redelivery: the same event again under its id (JetStream drops it) and under another
    // message id (the consumer sees it as new) → still one escalation and one notification.
    publish(&bed, &late).await;
    bed.publish_event_as(&late, "redelivered-overdue").await;
    // A later complaint's overdue is the barrier: once it is escalated, the copies before it
    // were processed.
    let barrier = complaint(&bed, v1::Class::C, false, false).await;
    publish(&bed, &overdue(&barrier, v1::Class::C)).await;
    assert_eq!(wait_escalations(&mut svc, &barrier, 1).await.len(), 1);
    assert_eq!(escalations(&mut svc.client, &cid).await.len(), 1);
    assert_eq!(count(&bed, NOTIFICATIONS_OF, &cid).await, 1);
    receiver.wait_for(2).await;
    let to_first: Vec<_> = receiver
        .bodies()
        .into_iter()
        .filter(|b| b["complaint_id"] == cid.as_str())
        .collect();
    assert_eq!(to_first.len(), 1);
}

#[tokio::test]
async fn class_a_overdue_reaches_both_rungs_at_once() {
    let bed = TestBed::start().await;
    let (_receiver, url) = Receiver::start().await;
    let mut svc = start(&bed, &url, "").await;
    organisation(&bed).await;
    let cid = complaint(&bed, v1::Class::A, false, false).await;
    publish(&bed, &overdue(&cid, v1::Class::A)).await;
    let got = wait_escalations(&mut svc, &cid, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].level, got[0].recipient_id.as_str()),
        (1, "manager-1")
    );
    assert_eq!((got[1].level, got[1].recipient_id.as_str()), (2, "gm-1"));
    assert!(
        got.iter()
            .all(|e| e.trigger() == v1::EscalationTrigger::ClassAOverdue)
    );
    assert_eq!(count(&bed, NOTIFICATIONS_OF, &cid).await, 2);
}

#[tokio::test]
async fn risks_requests_and_repeat_complaints_reach_the_general_manager() {
    let bed = TestBed::start().await;
    let (_receiver, url) = Receiver::start().await;
    let mut svc = start(&bed, &url, "").await;
    organisation(&bed).await;

    // Group complaint and media risk: the top at once, on receipt.
    let group = complaint(&bed, v1::Class::B, true, false).await;
    let media = complaint(&bed, v1::Class::C, false, true).await;
    for (cid, trigger) in [
        (&group, v1::EscalationTrigger::GroupRisk),
        (&media, v1::EscalationTrigger::MediaRisk),
    ] {
        let got = wait_escalations(&mut svc, cid, 1).await;
        assert_eq!(got.len(), 1, "{}", svc.svc.logs());
        assert_eq!((got[0].level, got[0].recipient_id.as_str()), (2, "gm-1"));
        assert_eq!(got[0].trigger(), trigger);
    }

    // The manager cannot settle it; the customer rejected again (both paths, one step).
    let settle = complaint(&bed, v1::Class::C, false, false).await;
    publish(
        &bed,
        &envelope(
            &settle,
            "routing",
            Payload::EscalationRequested(v1::EscalationRequested {
                reason: v1::EscalationReason::CannotSettle as i32,
                target_level: 0,
                note: "customer wants more than we can give".into(),
                department_id: "d-1".into(),
                class: v1::Class::C as i32,
            }),
        ),
    )
    .await;
    let rejected = complaint(&bed, v1::Class::C, false, false).await;
    publish(
        &bed,
        &envelope(
            &rejected,
            "routing",
            Payload::CustomerRejected(v1::CustomerRejected {
                reason: "still no".into(),
                rejection_count: 2,
                attempt: 2,
            }),
        ),
    )
    .await;
    publish(
        &bed,
        &envelope(
            &rejected,
            "routing",
            Payload::EscalationRequested(v1::EscalationRequested {
                reason: v1::EscalationReason::RejectedAgain as i32,
                department_id: "d-1".into(),
                ..Default::default()
            }),
        ),
    )
    .await;
    let got = wait_escalations(&mut svc, &settle, 1).await;
    assert_eq!(got[0].trigger(), v1::EscalationTrigger::CannotSettle);
    assert_eq!(got[0].recipient_id, "gm-1");
    let got = wait_escalations(&mut svc, &rejected, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].trigger(), v1::EscalationTrigger::RejectedAgain);
    assert_eq!(got[0].recipient_id, "gm-1");

    // A repeat complaint: the general manager and the business department.
    let original = complaint(&bed, v1::Class::B, false, false).await;
    let repeat = redress_domain::ComplaintId::new().to_string();
    publish(
        &bed,
        &envelope(
            &repeat,
            "revisit",
            Payload::RepeatComplaint(v1::RepeatComplaint {
                original_complaint_id: original.clone(),
                revisit_id: String::new(),
                reason: "customer dissatisfied at the revisit".into(),
                department_id: "d-1".into(),
                responsible_person_id: "handler-1".into(),
                original_class: v1::Class::B as i32,
            }),
        ),
    )
    .await;
    let got = wait_escalations(&mut svc, &repeat, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].level, got[0].recipient_id.as_str()),
        (1, "manager-1")
    );
    assert_eq!((got[1].level, got[1].recipient_id.as_str()), (2, "gm-1"));
    assert!(
        got.iter()
            .all(|e| e.trigger() == v1::EscalationTrigger::RepeatComplaint)
    );
    // Nothing escalated the second rejection twice.
    assert_eq!(escalations(&mut svc.client, &rejected).await.len(), 1);
}

#[tokio::test]
async fn receiver_down_then_back_delivers_once_with_every_attempt_recorded() {
    let bed = TestBed::start().await;
    let (receiver, url) = Receiver::start().await;
    receiver.down.store(true, Ordering::SeqCst);
    let mut svc = start(&bed, &url, "").await;
    organisation(&bed).await;
    let cid = complaint(&bed, v1::Class::C, false, false).await;
    publish(&bed, &overdue(&cid, v1::Class::C)).await;
    wait_escalations(&mut svc, &cid, 1).await;
    let failed = bed.events("notification.failed", 2, WAIT).await;
    assert!(failed.len() >= 2, "{}", svc.svc.logs());
    assert!(failed.iter().all(|f| matches!(&f.payload,
        Some(Payload::NotificationFailed(n)) if n.will_retry && n.error.contains("503"))));
    receiver.down.store(false, Ordering::SeqCst);
    let bodies = receiver.wait_for(1).await;
    assert_eq!(bodies.len(), 1);
    let delivered = bed.events("notification.delivered", 2, WAIT).await;
    let webhook: Vec<_> = delivered
        .iter()
        .filter_map(|d| match &d.payload {
            Some(Payload::NotificationDelivered(n)) if n.channel == "webhook" => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(webhook.len(), 1);
    assert!(webhook[0].attempt >= 3);
    let mut conn = bed.db.connect().await;
    let (status, attempts): (String, i32) = sqlx::query_as(
        "SELECT status, attempts FROM escalation.deliveries WHERE channel = 'webhook'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(status, "delivered");
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM escalation.delivery_attempts a
         JOIN escalation.deliveries d USING (delivery_id) WHERE d.channel = 'webhook'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(recorded, i64::from(attempts));
    let oks: i64 = sqlx::query_scalar("SELECT count(*) FROM escalation.delivery_attempts WHERE ok")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(oks, 2, "one webhook success and one log delivery");
    assert!(*receiver.refused.lock().unwrap() >= 2);
}

#[tokio::test]
async fn unacknowledged_is_resent_then_raised_and_acknowledgement_stops_it() {
    let bed = TestBed::start().await;
    let (receiver, url) = Receiver::start().await;
    let mut svc = start(
        &bed,
        &url,
        "unacknowledged_resend_after = \"1s\"\nunacknowledged_raise_after = \"3s\"\nl2_after = \"1h\"",
    )
    .await;
    organisation(&bed).await;
    let cid = complaint(&bed, v1::Class::C, false, false).await;
    publish(&bed, &overdue(&cid, v1::Class::C)).await;

    // Re-sent: a second send of the same notification reaches the receiver.
    let bodies = poll(
        WAIT,
        async || receiver.bodies(),
        |bodies| bodies.iter().any(|b| b["send"] == 2),
    )
    .await;
    let first = bodies.iter().find(|b| b["send"] == 1).expect("first send");
    let second = bodies.iter().find(|b| b["send"] == 2).expect("re-sent");
    assert_eq!(first["notification_id"], second["notification_id"]);
    assert_eq!(count(&bed, NOTIFICATIONS_OF, &cid).await, 1);

    // Raised: level 1 superseded, level 2 to the general manager.
    let got = wait_escalations(&mut svc, &cid, 2).await;
    assert_eq!(got.len(), 2, "{}", svc.svc.logs());
    assert_eq!(got[0].state(), v1::EscalationState::Superseded);
    assert_eq!(got[1].level, 2);
    assert_eq!(got[1].recipient_id, "gm-1");
    assert_eq!(got[1].trigger(), v1::EscalationTrigger::Unacknowledged);

    // The general manager acknowledges, then decides: final, closed for good.
    let top = got[1].escalation_id.clone();
    let wrong = svc
        .client
        .acknowledge(authed(
            "test-handler-token",
            v1::AcknowledgeRequest {
                escalation_id: top.clone(),
                instructions: "x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::PermissionDenied);
    let ack = svc
        .client
        .acknowledge(authed(
            "test-gm-token",
            v1::AcknowledgeRequest {
                escalation_id: top.clone(),
                instructions: "Call the customer today.".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .escalation
        .unwrap();
    assert_eq!(ack.state(), v1::EscalationState::Acknowledged);
    assert_eq!(ack.instructions, "Call the customer today.");
    let again = svc
        .client
        .acknowledge(authed(
            "test-gm-token",
            v1::AcknowledgeRequest {
                escalation_id: top.clone(),
                instructions: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(
        again.message().contains("acknowledged"),
        "{}",
        again.message()
    );
    let empty = svc
        .client
        .decide(authed(
            "test-gm-token",
            v1::DecideRequest {
                escalation_id: top.clone(),
                decision: " ".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.message().contains("decision"));
    let bad_id = svc
        .client
        .decide(authed(
            "test-gm-token",
            v1::DecideRequest {
                escalation_id: "nope".into(),
                decision: "x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    assert!(bad_id.message().contains("escalation_id"));
    let decided = svc
        .client
        .decide(authed(
            "test-gm-token",
            v1::DecideRequest {
                escalation_id: top.clone(),
                decision: "Refund two months and replace the modem.".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .escalation
        .unwrap();
    assert_eq!(decided.state(), v1::EscalationState::Decided);
    assert_eq!(decided.decided_by, "gm-1");
    let events = bed.events("escalation.decided", 1, WAIT).await;
    assert!(events.iter().any(|e| matches!(&e.payload,
        Some(Payload::EscalationDecided(d)) if d.final_decision && d.escalation_id == top)));
    let twice = svc
        .client
        .decide(authed(
            "test-gm-token",
            v1::DecideRequest {
                escalation_id: top.clone(),
                decision: "again".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(twice.message().contains("decided"));

    // By person and state.
    let mine = svc
        .client
        .list_escalations(authed(
            "test-gm-token",
            v1::ListEscalationsRequest {
                recipient_id: "gm-1".into(),
                state: v1::EscalationState::Decided as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .escalations;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].escalation_id, top);
}

#[tokio::test]
async fn still_unresolved_after_level_one_goes_up_and_resolution_closes() {
    let bed = TestBed::start().await;
    let (_receiver, url) = Receiver::start().await;
    let mut svc = start(
        &bed,
        &url,
        "l2_after = \"2s\"\nunacknowledged_resend_after = \"1h\"\nunacknowledged_raise_after = \"1h\"",
    )
    .await;
    organisation(&bed).await;
    let cid = complaint(&bed, v1::Class::C, false, false).await;
    publish(&bed, &overdue(&cid, v1::Class::C)).await;
    let first = wait_escalations(&mut svc, &cid, 1).await;
    svc.client
        .acknowledge(authed(
            "test-manager-token",
            v1::AcknowledgeRequest {
                escalation_id: first[0].escalation_id.clone(),
                instructions: "On it.".into(),
            },
        ))
        .await
        .unwrap();
    let got = wait_escalations(&mut svc, &cid, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].trigger(), v1::EscalationTrigger::UnresolvedAfterL1);
    assert_eq!(got[1].recipient_id, "gm-1");
    publish(
        &bed,
        &envelope(
            &cid,
            "routing",
            Payload::Resolved(v1::Resolved {
                result: "fixed".into(),
                department_id: "d-1".into(),
                ..Default::default()
            }),
        ),
    )
    .await;
    let got = poll(
        WAIT,
        async || escalations(&mut svc.client, &cid).await,
        |got| got[1].state() == v1::EscalationState::Closed,
    )
    .await;
    assert_eq!(got[1].state(), v1::EscalationState::Closed);
}

#[tokio::test]
async fn two_replicas_send_exactly_one_notification_per_step() {
    let bed = TestBed::start().await;
    let (receiver, url) = Receiver::start().await;
    let mut a = start(&bed, &url, "").await;
    let _b = start(&bed, &url, "").await;
    organisation(&bed).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let cid = complaint(&bed, v1::Class::A, false, false).await;
        let late = overdue(&cid, v1::Class::A);
        publish(&bed, &late).await;
        bed.publish_event_as(&late, &format!("copy-{cid}")).await;
        ids.push(cid);
    }
    for cid in &ids {
        assert_eq!(wait_escalations(&mut a, cid, 2).await.len(), 2);
    }
    // 10 complaints × 2 rungs: 20 notifications, each delivered to the webhook once.
    let bodies = receiver.wait_for(20).await;
    let delivered = bed.events("notification.delivered", 40, WAIT).await;
    let mut seen: Vec<String> = bodies
        .iter()
        .map(|b| b["notification_id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20);
    assert_eq!(bodies.len(), 20, "a notification was delivered twice");
    assert_eq!(delivered.len(), 40, "webhook + log for each notification");
    for cid in &ids {
        assert_eq!(count(&bed, NOTIFICATIONS_OF, cid).await, 2);
    }
}

/// A webhook endpoint that accepts connections and never answers.
async fn hung_receiver() -> (tokio::task::JoinHandle<()>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // read nothing, answer nothing, close nothing
        }
    });
    (task, format!("http://{addr}/hook"))
}

#[tokio::test]
async fn a_hung_webhook_delays_neither_the_ladder_nor_the_log_nor_shutdown() {
    let bed = TestBed::start().await;
    let (_hung, url) = hung_receiver().await;
    let settings = temp(&format!(
        "tick_ms = 50\nlog_channel = true\n[[webhooks]]\nurl = \"{url}\"\n\
         secret = \"{SECRET}\"\ntimeout_ms = 5000\n"
    ));
    let policy = temp(
        "[escalation]\nl2_after = \"2s\"\nunacknowledged_resend_after = \"1h\"\n\
         unacknowledged_raise_after = \"1h\"\n",
    );
    let mut svc = bed
        .spawn(
            "redress-escalation",
            &[
                (
                    "REDRESS_ESCALATION_SETTINGS",
                    settings.path().to_str().unwrap(),
                ),
                ("REDRESS_POLICY_FILE", policy.path().to_str().unwrap()),
            ],
        )
        .await;
    let mut client = EscalationServiceClient::new(bed.channel(&svc).await);
    organisation(&bed).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let cid = complaint(&bed, v1::Class::C, false, false).await;
        publish(&bed, &overdue(&cid, v1::Class::C)).await;
        ids.push(cid);
    }
    // Each complaint climbs to the general manager `l2_after` (2 s) after level 1, although
    // every webhook attempt hangs for its 5 s timeout.
    for cid in &ids {
        let got = poll(
            WAIT,
            async || escalations(&mut client, cid).await,
            |got| got.len() >= 2,
        )
        .await;
        assert_eq!(got.len(), 2, "{got:?}");
        let secs = |e: &v1::Escalation| e.raised_at.as_ref().unwrap().seconds;
        let gap = secs(&got[1]) - secs(&got[0]);
        // Generous for a loaded machine; a ladder waiting for the webhook took 20 s and more.
        assert!(
            gap < 10,
            "level 2 came {gap} s after level 1 (l2_after 2 s): the ladder waited for the webhook"
        );
    }
    // The log channel delivered every notification (4 complaints × 2 rungs). The level-2
    // escalation is listed as soon as it commits; its log delivery follows on the next tick, so
    // wait for all eight before comparing times.
    let mut conn = bed.db.connect().await;
    let log_delivered: i64 = poll(
        WAIT,
        async || {
            sqlx::query_scalar(
                "SELECT count(*) FROM escalation.deliveries WHERE channel = 'log' AND status = 'delivered'",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap()
        },
        |n| *n >= 8,
    )
    .await;
    assert_eq!(log_delivered, 8, "4 complaints × 2 rungs");
    // Each log delivery finished without waiting for the webhook: before the webhook's first
    // (hanging, 5 s) attempt at the same notification had even ended.
    let slow_log: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM escalation.deliveries l
         JOIN escalation.deliveries w
           ON w.notification_id = l.notification_id AND w.channel = 'webhook'
         WHERE l.channel = 'log'
           AND NOT (l.status = 'delivered' AND l.finished_at < COALESCE(
               (SELECT min(a.at) FROM escalation.delivery_attempts a
                WHERE a.delivery_id = w.delivery_id), 'infinity'))",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(slow_log, 0, "log deliveries waited for the webhook");
    // SIGTERM in the middle of a hanging attempt: out well within a 10 s grace.
    let asked = tokio::time::Instant::now();
    let status = svc.terminate(Duration::from_secs(10)).await;
    assert!(
        status.is_some(),
        "not stopped 10 s after SIGTERM:\n{}",
        svc.logs()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
}

/// A backlog of arrivals (here: published while the service was down) is applied in batches
/// with the outcome of one at a time: every complaint's facts and date as its events tell them,
/// and a threatening or venting-anger customer's department manager and general manager told
/// once each, at routing (DOMAIN §9).
#[tokio::test]
async fn a_backlog_of_arrivals_is_applied_in_batches_with_the_outcome_of_one_at_a_time() {
    let bed = TestBed::start().await;
    let (_receiver, url) = Receiver::start().await;
    let mut first = start(&bed, &url, "").await;
    first.svc.terminate(WAIT).await.expect("stopped");
    organisation(&bed).await;

    let mut plain = Vec::new();
    let mut told = Vec::new();
    for i in 0..60 {
        let cid = redress_domain::ComplaintId::new().to_string();
        let customer_type = match i % 20 {
            0 => v1::CustomerType::Threatening,
            7 => v1::CustomerType::VentingAnger,
            _ => v1::CustomerType::Rational,
        };
        let received = Payload::ComplaintReceived(v1::ComplaintReceived {
            details: Some(v1::ComplaintDetails {
                customer_type: customer_type as i32,
                ..Default::default()
            }),
            complaint_number: format!("RD-{i:04}"),
            class: v1::Class::C as i32,
            confirmed: true,
            ..Default::default()
        });
        publish(&bed, &envelope(&cid, "intake", received)).await;
        let classified = Payload::ComplaintClassified(v1::ComplaintClassified {
            class: v1::Class::B as i32,
            ..Default::default()
        });
        publish(&bed, &envelope(&cid, "intake", classified)).await;
        let confirmed = Payload::ComplaintConfirmed(v1::ComplaintConfirmed::default());
        publish(&bed, &envelope(&cid, "intake", confirmed)).await;
        let routed = Payload::ComplaintRouted(v1::ComplaintRouted {
            department_id: "d-1".into(),
            department_manager_id: "manager-1".into(),
            class: v1::Class::B as i32,
            ..Default::default()
        });
        publish(&bed, &envelope(&cid, "routing", routed)).await;
        let assigned = Payload::ComplaintAssigned(v1::ComplaintAssigned {
            department_id: "d-1".into(),
            department_manager_id: "manager-1".into(),
            assignee_id: "handler-1".into(),
            ..Default::default()
        });
        publish(&bed, &envelope(&cid, "routing", assigned)).await;
        if customer_type == v1::CustomerType::Rational {
            plain.push(cid);
        } else {
            told.push(cid);
        }
    }

    let mut svc = start_with(
        &bed,
        &url,
        "",
        &[
            ("REDRESS_CONSUMER_BATCH", "128"),
            ("RUST_LOG", "info,redress_platform=debug"),
        ],
    )
    .await;
    for cid in &told {
        let got = wait_escalations(&mut svc, cid, 2).await;
        let rungs: Vec<(u32, &str)> = got
            .iter()
            .map(|e| (e.level, e.recipient_id.as_str()))
            .collect();
        assert_eq!(rungs, [(1, "manager-1"), (2, "gm-1")], "{cid}");
    }
    // Organisation (1 + 3) and 60 × 3 arrivals (not `classified` or `confirmed`: the door does
    // not subscribe to them), then the service's own escalation events.
    let c = svc.svc.consumed("escalation-ladder", 184.0, WAIT).await;
    assert!(c.messages >= 184.0, "{}", c.page);
    assert!(
        c.batches < c.messages / 4.0,
        "{} batches for {} messages",
        c.batches,
        c.messages
    );
    assert!(
        !svc.svc.logs().contains("batch failed"),
        "{}",
        svc.svc.logs()
    );

    for cid in &plain {
        assert!(escalations(&mut svc.client, cid).await.is_empty(), "{cid}");
    }
    let mut conn = bed.db.connect().await;
    let facts: Vec<(String, String, i32, String, String, bool)> = sqlx::query_as(
        "SELECT complaint_id, number, class, department_manager_id, assignee_id,
                received_at IS NOT NULL
         FROM escalation.complaints WHERE complaint_id = ANY($1)",
    )
    .bind(plain.iter().chain(&told).cloned().collect::<Vec<_>>())
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(facts.len(), 60);
    for (cid, number, class, manager, assignee, dated) in facts {
        assert!(number.starts_with("RD-"), "{cid}");
        assert_eq!(class, v1::Class::B as i32, "the later class: {cid}");
        assert_eq!(
            (manager.as_str(), assignee.as_str(), dated),
            ("manager-1", "handler-1", true),
            "{cid}"
        );
    }
}

/// Complaint ids are parsed where an event is decoded: one that names no complaint is set
/// aside as a dead letter, once, and the arrivals around it in the same backlog are applied as
/// if it were not there.
#[tokio::test]
async fn an_event_naming_no_complaint_is_dead_lettered_and_its_neighbours_are_applied() {
    let bed = TestBed::start().await;
    let (_receiver, url) = Receiver::start().await;
    let mut first = start(&bed, &url, "").await;
    first.svc.terminate(WAIT).await.expect("stopped");
    organisation(&bed).await;

    let routed = |class: v1::Class| {
        Payload::ComplaintRouted(v1::ComplaintRouted {
            class: class as i32,
            department_id: "d-1".into(),
            department_manager_id: "manager-1".into(),
            ..Default::default()
        })
    };
    let before = redress_domain::ComplaintId::new().to_string();
    let after = redress_domain::ComplaintId::new().to_string();
    publish(&bed, &envelope(&before, "routing", routed(v1::Class::B))).await;
    publish(
        &bed,
        &envelope("cmp_not-an-id", "routing", routed(v1::Class::A)),
    )
    .await;
    publish(&bed, &envelope(&after, "routing", routed(v1::Class::C))).await;

    let _svc = start_with(&bed, &url, "", &[("REDRESS_CONSUMER_BATCH", "128")]).await;
    let dead = bed.dead_letters(1, WAIT).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].subject.as_str(),
        format!("{}.deadletter.escalation-ladder", bed.prefix)
    );
    let reason = dead_letter_reason(&dead[0]);
    assert!(reason.contains("cmp_not-an-id"), "{reason}");

    let mut conn = bed.db.connect().await;
    let classes = poll(
        WAIT,
        async || {
            sqlx::query_as::<_, (String, i32)>(
                "SELECT complaint_id, class FROM escalation.complaints ORDER BY complaint_id",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap()
        },
        |rows| rows.len() >= 2,
    )
    .await;
    let mut expected = vec![(before, v1::Class::B as i32), (after, v1::Class::C as i32)];
    expected.sort();
    assert_eq!(classes, expected, "the malformed id recorded nothing");
}
