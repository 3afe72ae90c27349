//! Intake's registry as a process, against real NATS JetStream and PostgreSQL: complaints taken
//! in through the bus door have intake's own timeline entries (ADR 0017), one at a time and in
//! batches, exactly as those taken in through gRPC.

use std::time::Duration;

use prost::Message as _;
use redress_proto::v1::{self, intake_service_client::IntakeServiceClient};
use redress_test_support::{TestBed, authed, poll};

mod common;
use common::{AGENT, intake};

const SECOND: Duration = Duration::from_secs(1);

fn details(key: &str, confirmed: bool) -> v1::ComplaintDetails {
    v1::ComplaintDetails {
        key: Some(v1::SubmissionKey {
            source_system: "callcentre".into(),
            external_id: key.into(),
        }),
        customer: Some(v1::Customer {
            name: "王芳".into(),
            phone: "138 0013 8000".into(),
            ..Default::default()
        }),
        channel: v1::Channel::Hotline as i32,
        business: "broadband".into(),
        description: "Broadband down for three days.".into(),
        demand: "Fix the line.".into(),
        first_contact: Some(v1::FirstContact {
            employee_id: "e-1001".into(),
            ..Default::default()
        }),
        confirmation: confirmed.then(|| v1::Confirmation {
            method: v1::ConfirmationMethod::Phone as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn publish_submission(bed: &TestBed, d: v1::ComplaintDetails) {
    let body = v1::SubmitRequest { details: Some(d) }.encode_to_vec();
    bed.submit_on_bus(async_nats::HeaderMap::new(), body).await;
}

/// The complaint ids of the `complaint.received` events, by the submission's external id.
fn ids_by_key(received: &[v1::Event]) -> std::collections::HashMap<String, String> {
    received
        .iter()
        .filter_map(|e| match &e.payload {
            Some(v1::event::Payload::ComplaintReceived(r)) => Some((
                r.details.as_ref()?.key.as_ref()?.external_id.clone(),
                e.complaint_id.clone(),
            )),
            _ => None,
        })
        .collect()
}

/// Submits a confirmed complaint through gRPC; its acknowledgement.
async fn submit(
    client: &mut IntakeServiceClient<tonic::transport::Channel>,
    key: &str,
) -> v1::Acknowledgement {
    client
        .submit(authed(
            AGENT,
            v1::SubmitRequest {
                details: Some(details(key, true)),
            },
        ))
        .await
        .expect("submit")
        .into_inner()
}

/// The registry's view of a complaint.
async fn view(
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

/// The kinds in a complaint's timeline, oldest first.
async fn timeline(
    client: &mut IntakeServiceClient<tonic::transport::Channel>,
    complaint_id: &str,
) -> Vec<String> {
    view(client, complaint_id)
        .await
        .timeline
        .into_iter()
        .map(|t| t.kind)
        .collect()
}

/// ADR 0017: intake writes its own events' timeline entries with them, whichever door the
/// complaint came through. The bus door's batch path writes its events straight to the outbox,
/// so it must write their entries too; nothing reads intake's own events back from the bus.
#[tokio::test]
async fn bus_submissions_have_intake_s_own_timeline_entries_one_at_a_time_and_in_batches() {
    let bed = TestBed::start().await;

    // A backlog waiting while intake is stopped (its first start made the streams), so it is
    // taken in batches.
    let (mut svc, _client) = intake(&bed, &[]).await;
    svc.terminate(10 * SECOND).await.expect("stopped");
    for i in 0..20 {
        publish_submission(&bed, details(&format!("backlog-{i}"), i % 2 == 0)).await;
    }
    let (_svc, mut client) = intake(&bed, &[("REDRESS_CONSUMER_BATCH", "16")]).await;
    let received = bed.events("complaint.received", 20, 30 * SECOND).await;
    assert_eq!(received.len(), 20);
    // One more while it runs, alone.
    publish_submission(&bed, details("alone", false)).await;
    let received = bed.events("complaint.received", 21, 30 * SECOND).await;
    assert_eq!(received.len(), 21);
    let ids = ids_by_key(&received);

    // Submit answers only after the commit; the entries are written in that same transaction,
    // so they are there as soon as the complaint is readable — no waiting for the bus.
    for (key, id) in &ids {
        let confirmed = key
            .strip_prefix("backlog-")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n % 2 == 0);
        let mut want = vec!["complaint.received", "complaint.classified"];
        if confirmed {
            want.push("complaint.confirmed");
        }
        assert_eq!(timeline(&mut client, id).await, want, "{key} ({id})");
    }
    let mut conn = bed.db.connect().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.timeline")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(rows, 21 * 2 + 10, "each event's entry once");
}

/// Another service's event about `complaint_id`, `seconds_later` after now (so the registry's
/// "status only moves forward in time" keeps them in order).
fn foreign(
    n: u32,
    producer: &str,
    complaint_id: &str,
    seconds_later: i64,
    payload: v1::event::Payload,
) -> v1::Event {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    v1::Event {
        event_id: format!("evt_registry_regression_{n:04}"),
        complaint_id: complaint_id.to_owned(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: now + seconds_later,
            nanos: 0,
        }),
        schema_version: 1,
        producer: producer.into(),
        payload: Some(payload),
        ..Default::default()
    }
}

/// Waits until the complaint's view satisfies `ok`, then returns it (or the last one seen).
async fn until(
    client: &mut IntakeServiceClient<tonic::transport::Channel>,
    complaint_id: &str,
    ok: impl Fn(&v1::ComplaintView) -> bool,
) -> v1::ComplaintView {
    poll(15 * SECOND, async || view(client, complaint_id).await, ok).await
}

/// DOMAIN §9 "The registry is the single view" and "Closing", as the consistency system test
/// found them missing: the satisfaction a feedback records is the registry's too (routing keeps
/// the latest of feedback and revisit); a repeat complaint reopens a closed complaint in the
/// registry as in routing; and a closed complaint is not reclassified.
#[tokio::test]
async fn feedback_satisfaction_a_reopened_closed_complaint_and_no_reclassifying_it() {
    use v1::event::Payload;
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    let id = submit(&mut client, "regression-1").await.complaint_id;

    // Received, classified, confirmed. Feedback in which the customer was asked: dissatisfied,
    // then satisfied; one where the customer was not asked changes nothing.
    let feedback = |satisfied: Option<bool>| {
        Payload::FeedbackGiven(v1::FeedbackGiven {
            content: "A technician is booked.".into(),
            sequence: 1,
            satisfied,
            ..Default::default()
        })
    };
    bed.publish_event(&foreign(1, "routing", &id, 1, feedback(Some(false))))
        .await;
    let v = until(&mut client, &id, |v| !v.satisfaction.is_empty()).await;
    assert_eq!(v.satisfaction, "dissatisfied", "feedback's satisfaction");
    bed.publish_event(&foreign(2, "routing", &id, 2, feedback(Some(true))))
        .await;
    bed.publish_event(&foreign(3, "routing", &id, 3, feedback(None)))
        .await;
    let v = until(&mut client, &id, |v| v.timeline.len() >= 6).await;
    assert_eq!(v.timeline.len(), 6, "{:?}", v.timeline);
    assert_eq!(v.satisfaction, "satisfied", "the latest asked feedback");

    // Resolved, closed, then a repeat complaint reopens it.
    bed.publish_event(&foreign(
        4,
        "routing",
        &id,
        4,
        Payload::Resolved(v1::Resolved::default()),
    ))
    .await;
    bed.publish_event(&foreign(
        5,
        "routing",
        &id,
        5,
        Payload::Closed(v1::Closed {
            note: "done".into(),
            ..Default::default()
        }),
    ))
    .await;
    let v = until(&mut client, &id, |v| v.status == "closed").await;
    assert_eq!(v.status, "closed");

    let refused = client
        .reclassify(authed(
            AGENT,
            v1::ReclassifyRequest {
                complaint_id: id.clone(),
                class: v1::Class::A as i32,
                reason: "a journalist called about it".into(),
            },
        ))
        .await
        .expect_err("a closed complaint is not reclassified");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused}");

    bed.publish_event(&foreign(
        6,
        "revisit",
        &id,
        6,
        Payload::Reopened(v1::Reopened {
            reason: "repeat complaint".into(),
            repeat_complaint: true,
            ..Default::default()
        }),
    ))
    .await;
    let v = until(&mut client, &id, |v| v.status == "reopened").await;
    assert_eq!(
        v.status, "reopened",
        "a repeat complaint reopens a closed one"
    );
    assert!(
        !v.timeline
            .iter()
            .any(|t| t.kind == "complaint.reclassified"),
        "the refused reclassification left nothing"
    );
}

/// Of two class changes the later one wins, whatever order they arrive in: a validity decision
/// routing made before intake's reclassification, but reaching the registry after it (as under
/// load, found by the stress run of the consistency test), does not undo the reclassification.
#[tokio::test]
async fn a_late_arriving_older_validity_decision_does_not_undo_a_later_reclassification() {
    use v1::event::Payload;
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    let id = submit(&mut client, "order-1").await.complaint_id;
    client
        .reclassify(authed(
            AGENT,
            v1::ReclassifyRequest {
                complaint_id: id.clone(),
                class: v1::Class::A as i32,
                reason: "a journalist called about it".into(),
            },
        ))
        .await
        .expect("reclassified");
    // Decided invalid ten seconds before the reclassification, delivered only now.
    bed.publish_event(&foreign(
        20,
        "routing",
        &id,
        -10,
        Payload::ValidityDecided(v1::ValidityDecided {
            valid: false,
            class: v1::Class::D as i32,
            explanation: "outside our service".into(),
        }),
    ))
    .await;
    let v = until(&mut client, &id, |v| {
        v.timeline
            .iter()
            .any(|t| t.kind == "complaint.validity_decided")
    })
    .await;
    assert!(
        v.timeline
            .iter()
            .any(|t| t.kind == "complaint.validity_decided"),
        "the decision is in the timeline: {:?}",
        v.timeline
    );
    assert_eq!(v.class(), v1::Class::A, "the later reclassification stands");
    // A decision made after it does change the class.
    bed.publish_event(&foreign(
        21,
        "routing",
        &id,
        10,
        Payload::ValidityDecided(v1::ValidityDecided {
            valid: false,
            class: v1::Class::D as i32,
            explanation: "outside our service".into(),
        }),
    ))
    .await;
    let v = until(&mut client, &id, |v| v.class() == v1::Class::D).await;
    assert_eq!(v.class(), v1::Class::D);
}

/// A limit met before a reclassification, but heard of after it, keeps the due time it had when
/// it was met — as the SLA monitor, seeing the two in order, keeps it (found by the stress run
/// of the consistency test: intake applies its own reclassification at once, routing's earlier
/// feedback arrived later).
#[tokio::test]
async fn a_limit_met_before_a_reclassification_but_heard_of_after_keeps_its_due_time() {
    use v1::event::Payload;
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    let ack = submit(&mut client, "order-2").await;
    let id = ack.complaint_id.clone();
    let promised = ack.promises.clone().expect("promises");
    client
        .reclassify(authed(
            AGENT,
            v1::ReclassifyRequest {
                complaint_id: id.clone(),
                class: v1::Class::A as i32,
                reason: "a journalist called about it".into(),
            },
        ))
        .await
        .expect("reclassified");
    let moved = until(&mut client, &id, |_| true).await;
    assert_ne!(
        moved
            .promises
            .as_ref()
            .expect("promises")
            .first_feedback_due,
        promised.first_feedback_due,
        "the reclassification moved the running limit"
    );
    // The first feedback was given ten seconds before the reclassification; heard of now.
    bed.publish_event(&foreign(
        30,
        "routing",
        &id,
        -10,
        Payload::FeedbackGiven(v1::FeedbackGiven {
            content: "A technician is booked.".into(),
            sequence: 1,
            ..Default::default()
        }),
    ))
    .await;
    let v = until(&mut client, &id, |v| {
        v.timeline
            .iter()
            .any(|t| t.kind == "complaint.feedback_given")
    })
    .await;
    assert_eq!(
        v.promises.as_ref().expect("promises").first_feedback_due,
        promised.first_feedback_due,
        "met before the reclassification: the due time it had then"
    );
}

/// The registry names people as the organisation calls them (routing's `staff.upserted`), in
/// every line that mentions them, and falls back to the id for someone it has not heard of.
#[tokio::test]
async fn the_timeline_names_people_from_the_organisation() {
    use v1::event::Payload;
    let bed = TestBed::start().await;
    let (_svc, mut client) = intake(&bed, &[]).await;
    let id = submit(&mut client, "names-1").await.complaint_id;
    let staff = foreign(
        1,
        "routing",
        "",
        0,
        Payload::StaffUpserted(v1::StaffUpserted {
            staff_id: "handler-1".into(),
            name: "Liu Yang".into(),
            department_id: "dept-network".into(),
            ..Default::default()
        }),
    );
    bed.publish_event(&staff).await;
    bed.publish_event(&foreign(
        2,
        "routing",
        &id,
        1,
        Payload::AcceptedByDepartment(v1::AcceptedByDepartment {
            accepted_by: "handler-1".into(),
            ..Default::default()
        }),
    ))
    .await;
    bed.publish_event(&foreign(
        3,
        "escalation",
        &id,
        2,
        Payload::NotificationSent(v1::NotificationSent {
            recipient_id: "manager-9".into(),
            channel: "log".into(),
            ..Default::default()
        }),
    ))
    .await;
    let v = until(&mut client, &id, |v| v.timeline.len() >= 5).await;
    let summaries: Vec<&str> = v.timeline.iter().map(|t| t.summary.as_str()).collect();
    assert!(
        summaries.contains(&"accepted by Liu Yang"),
        "{summaries:#?}"
    );
    assert!(
        summaries.contains(&"notification to manager-9 (log)"),
        "someone the registry has not heard of is named by id: {summaries:#?}"
    );
}
