//! One complaint's whole journey through the five real services, as separate processes on a
//! real NATS JetStream and PostgreSQL, with a policy of seconds instead of hours:
//!
//! intake records and classifies it → routing routes and assigns it → nobody acts, so the SLA
//! monitor warns and then reports it overdue → escalation notifies the department manager, and
//! the general manager when it stays unresolved → the handler accepts, answers and resolves it →
//! revisit calls the customer back, who is dissatisfied and complains again → a repeat complaint
//! that reaches the general manager and goes back to its handler — and intake's timeline shows
//! every service's part.

mod common;

use std::time::Duration;

use redress_proto::v1::{
    self, event::Payload, intake_service_client::IntakeServiceClient,
    revisit_service_client::RevisitServiceClient, routing_service_client::RoutingServiceClient,
};
use redress_test_support::{TestBed, authed, eventually, poll};

const WAIT: Duration = Duration::from_secs(30);

/// The shared complaint, told the way the journey's customer tells it.
fn details() -> v1::ComplaintDetails {
    v1::ComplaintDetails {
        description: "Line down for three days; two promised visits never came.".into(),
        demand: "Repair and refund the days without service.".into(),
        ..common::complaint("journey-1")
    }
}

fn escalations_to<'a>(events: &'a [v1::Event], recipient: &str) -> Vec<&'a v1::EscalationRaised> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::EscalationRaised(r)) if r.recipient_id == recipient => Some(r),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_complaint_travels_through_all_five_services() {
    let bed = TestBed::start().await;
    let stack = common::start(&bed, &[]).await;
    let (intake, routing, revisit) = (&stack.intake, &stack.routing, &stack.revisit);

    // Intake: recorded, classified, already confirmed on the call.
    let mut intake_client = IntakeServiceClient::new(bed.channel(intake).await);
    let ack = intake_client
        .submit(authed(
            "test-agent-token",
            v1::SubmitRequest {
                details: Some(details()),
            },
        ))
        .await
        .expect("submit")
        .into_inner();
    let id = ack.complaint_id.clone();
    assert_eq!(ack.class(), v1::Class::C);

    // Routing: to the department of the matching rule, and to its one handler.
    let assigned = bed.events("complaint.assigned", 1, WAIT).await;
    let Some(Payload::ComplaintAssigned(a)) = &assigned.first().expect("assigned").payload else {
        panic!("assigned payload")
    };
    assert_eq!(a.assignee_id, "handler-1");
    assert_eq!(a.department_id, "dept-network");

    // Nobody acts: the SLA monitor warns at half the limit, then reports it overdue.
    let warnings = bed.events("sla.warning", 1, WAIT).await;
    assert!(
        warnings.iter().any(|e| e.complaint_id == id),
        "warning for the complaint"
    );
    let overdue = bed.events("sla.overdue", 1, WAIT).await;
    assert!(
        overdue.iter().any(|e| e.complaint_id == id),
        "overdue for the complaint"
    );

    // Escalation: the department manager first, the general manager while it stays unresolved.
    let raised = bed.events("escalation.raised", 2, WAIT).await;
    assert!(
        !escalations_to(&raised, "manager-1").is_empty(),
        "manager notified: {raised:?}"
    );
    let raised = poll(
        WAIT,
        async || bed.events("escalation.raised", 2, Duration::ZERO).await,
        |r| !escalations_to(r, "gm-1").is_empty(),
    )
    .await;
    assert!(
        !escalations_to(&raised, "gm-1").is_empty(),
        "general manager notified"
    );
    let to_manager = bed
        .read_stream("T_NOTIFICATIONS", "t.notifications.manager-1", 1, WAIT)
        .await;
    assert!(
        !to_manager.is_empty(),
        "a notification on the manager's subject"
    );
    // The body carries exactly the fields the event catalogue documents
    // (docs/events/asyncapi.json), no more and no fewer.
    let body: serde_json::Value =
        serde_json::from_slice(&to_manager[0].payload).expect("notification is JSON");
    let mut sent: Vec<&str> = body
        .as_object()
        .expect("notification is an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut documented: Vec<&str> = redress_proto::catalogue::NOTIFICATION_FIELDS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    sent.sort_unstable();
    documented.sort_unstable();
    assert_eq!(
        sent, documented,
        "notification fields against the catalogue"
    );

    // The handler takes it up and resolves it with the customer's agreement.
    let mut routing_client = RoutingServiceClient::new(bed.channel(routing).await);
    let h = "test-handler-token";
    routing_client
        .accept_complaint(authed(
            h,
            v1::AcceptComplaintRequest {
                complaint_id: id.clone(),
            },
        ))
        .await
        .expect("accept");
    routing_client
        .decide_validity(authed(
            h,
            v1::DecideValidityRequest {
                complaint_id: id.clone(),
                valid: true,
                explanation: "the line card failed".into(),
            },
        ))
        .await
        .expect("validity");
    // DOMAIN §9: the responsible person named, and the customer's satisfaction asked.
    routing_client
        .record_cause(authed(
            h,
            v1::RecordCauseRequest {
                complaint_id: id.clone(),
                cause: "the line card alarm was not acted on".into(),
                responsibility: v1::Responsibility::CompanyStaff as i32,
                responsible_person_id: "handler-1".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("cause");
    routing_client
        .give_feedback(authed(
            h,
            v1::GiveFeedbackRequest {
                complaint_id: id.clone(),
                channel: v1::ReplyChannel::Phone as i32,
                content: "A technician is booked for this afternoon.".into(),
                satisfied: Some(true),
                ..Default::default()
            },
        ))
        .await
        .expect("feedback");
    routing_client
        .propose_resolution(authed(
            h,
            v1::ProposeResolutionRequest {
                complaint_id: id.clone(),
                solution: "Replace the line card and refund three days.".into(),
                remedies: vec![],
            },
        ))
        .await
        .expect("propose");
    routing_client
        .record_customer_response(authed(
            h,
            v1::RecordCustomerResponseRequest {
                complaint_id: id.clone(),
                accepted: true,
                reason: String::new(),
            },
        ))
        .await
        .expect("customer accepts");
    routing_client
        .resolve(authed(
            h,
            v1::ResolveRequest {
                complaint_id: id.clone(),
                result: "Line card replaced; three days refunded.".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("resolve");
    assert_eq!(bed.events("complaint.resolved", 1, WAIT).await.len(), 1);
    // DOMAIN §9: however many of its limits it missed, the late complaint reached the manager
    // once and the general manager once, and gave one lateness fine.
    common::settled(&bed, &[&id], Duration::from_secs(5)).await;
    let raised = bed.events("escalation.raised", 2, WAIT).await;
    assert_eq!(escalations_to(&raised, "manager-1").len(), 1, "{raised:?}");
    assert_eq!(escalations_to(&raised, "gm-1").len(), 1, "{raised:?}");
    let overdue_fines = bed
        .events("accountability.recorded", 1, WAIT)
        .await
        .into_iter()
        .filter(|e| {
            matches!(&e.payload, Some(Payload::AccountabilityRecorded(a))
                if a.reason() == v1::AccountabilityReason::Overdue)
        })
        .count();
    assert_eq!(overdue_fines, 1, "one lateness fine");

    // Revisit: the after-resolution call; the customer is dissatisfied and complains again.
    let mut revisit_client = RevisitServiceClient::new(bed.channel(revisit).await);
    let agent = "test-agent-token";
    let revisit_id = eventually("an after-resolution revisit due", WAIT, async || {
        let due = revisit_client
            .list_due_revisits(authed(
                agent,
                v1::ListDueRevisitsRequest {
                    due_before: Some(prost_types::Timestamp {
                        seconds: 4_102_444_800,
                        nanos: 0,
                    }),
                    ..Default::default()
                },
            ))
            .await
            .expect("list")
            .into_inner();
        due.revisits
            .iter()
            .find(|r| r.complaint_id == id && r.kind() == v1::RevisitKind::AfterResolution)
            .map(|r| r.revisit_id.clone())
    })
    .await;
    revisit_client
        .claim_revisit(authed(
            agent,
            v1::ClaimRevisitRequest {
                revisit_id: revisit_id.clone(),
            },
        ))
        .await
        .expect("claim");
    revisit_client
        .record_outcome(authed(
            agent,
            v1::RecordOutcomeRequest {
                revisit_id,
                reached: true,
                satisfied: false,
                feelings: "angry: the refund never arrived".into(),
                remaining_dissatisfaction: "no refund".into(),
                method: v1::RevisitMethod::Phone as i32,
                complains_again: true,
                repeat_reason: "refund promised but not paid".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("outcome");
    let repeat = bed.events("complaint.repeat", 1, WAIT).await;
    assert_eq!(repeat.len(), 1);
    assert_eq!(repeat[0].complaint_id, id);

    // The repeat complaint reaches the general manager.
    eventually(
        "the repeat complaint at the general manager",
        WAIT,
        async || {
            let raised = bed.events("escalation.raised", 1, Duration::ZERO).await;
            escalations_to(&raised, "gm-1")
                .iter()
                .any(|r| r.trigger() == v1::EscalationTrigger::RepeatComplaint)
                .then_some(())
        },
    )
    .await;

    // And it is back with its handler, to be handled again.
    let stage = poll(
        WAIT,
        async || {
            routing_client
                .get_handling(authed(
                    h,
                    v1::GetHandlingRequest {
                        complaint_id: id.clone(),
                    },
                ))
                .await
                .expect("handling")
                .into_inner()
                .stage
        },
        |stage| stage == "reopened",
    )
    .await;
    assert_eq!(stage, "reopened", "routing resumed the handling");

    // The original missed its limit, so the repeat complaint doubles the handler's class fine
    // (DOMAIN §7, §9): the ledger books the extra once.
    let doubling = poll(
        WAIT,
        async || {
            bed.events("accountability.recorded", 1, Duration::ZERO)
                .await
                .into_iter()
                .filter_map(|e| match e.payload {
                    Some(Payload::AccountabilityRecorded(a))
                        if e.complaint_id == id
                            && a.reason() == v1::AccountabilityReason::RepeatDoubling =>
                    {
                        Some(a)
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        },
        |doubling| !doubling.is_empty(),
    )
    .await;
    assert_eq!(doubling.len(), 1, "one doubling entry");
    assert_eq!(doubling[0].person_id, "handler-1");
    assert_eq!(
        doubling[0].amount_fen, 10_000,
        "the class C fine of 100 yuan, doubled"
    );

    // Intake's timeline holds every service's part of the story.
    let (producers, satisfaction) = poll(
        WAIT,
        async || {
            let view = intake_client
                .get_complaint(authed(
                    agent,
                    v1::GetComplaintRequest {
                        complaint_id: id.clone(),
                    },
                ))
                .await
                .expect("get")
                .into_inner();
            let producers: std::collections::BTreeSet<String> = view
                .timeline
                .iter()
                .map(|t| t.source_service.clone())
                .collect();
            (producers, view.satisfaction)
        },
        |(producers, satisfaction)| producers.len() >= 5 && satisfaction == "dissatisfied",
    )
    .await;
    assert_eq!(
        satisfaction, "dissatisfied",
        "the registry has the revisit's finding"
    );
    let expected: std::collections::BTreeSet<String> =
        ["intake", "routing", "sla-monitor", "escalation", "revisit"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    assert!(
        expected.is_subset(&producers),
        "timeline sources: {producers:?}"
    );
}
