//! DOMAIN §9 "The registry is the single view of a complaint": after an invalid finding and
//! after a reclassification, intake's `GetComplaint` and `ListComplaints` show the class, the
//! due times, the stage and the handler that routing and the SLA monitor answer with — on the
//! five real services over real NATS JetStream and PostgreSQL.

mod common;

use std::time::Duration;

use redress_proto::v1::{
    self, intake_service_client::IntakeServiceClient, routing_service_client::RoutingServiceClient,
    sla_monitor_service_client::SlaMonitorServiceClient,
};
use redress_test_support::{TestBed, authed, poll};
use tonic::transport::Channel;

const AGENT: &str = "test-agent-token";
const HANDLER: &str = "test-handler-token";
const WAIT: Duration = Duration::from_secs(30);

/// Limits of hours, each class its own, so a changed class shows in every due time and nothing
/// goes overdue while the test runs.
const POLICY: &str = r#"
[limits]
acceptance = "2h"
[limits.completion]
A = "8h"
B = "24h"
C = "48h"
D = "72h"
"#;

struct Clients {
    intake: IntakeServiceClient<Channel>,
    routing: RoutingServiceClient<Channel>,
    sla: SlaMonitorServiceClient<Channel>,
}

impl Clients {
    async fn view(&mut self, id: &str) -> v1::ComplaintView {
        self.intake
            .get_complaint(authed(
                AGENT,
                v1::GetComplaintRequest {
                    complaint_id: id.to_owned(),
                },
            ))
            .await
            .expect("get complaint")
            .into_inner()
    }

    async fn handling(&mut self, id: &str) -> v1::GetHandlingResponse {
        self.try_handling(id).await.expect("get handling")
    }

    /// Routing's handling, or its refusal (NotFound until routing has read intake's event).
    async fn try_handling(&mut self, id: &str) -> Result<v1::GetHandlingResponse, tonic::Status> {
        self.routing
            .get_handling(authed(
                AGENT,
                v1::GetHandlingRequest {
                    complaint_id: id.to_owned(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn sla(&mut self, id: &str) -> Option<v1::GetSlaStatusResponse> {
        self.sla
            .get_sla_status(authed(
                AGENT,
                v1::GetSlaStatusRequest {
                    complaint_id: id.to_owned(),
                },
            ))
            .await
            .ok()
            .map(|r| r.into_inner())
    }

    async fn list(&mut self, class: v1::Class) -> Vec<v1::ComplaintSummary> {
        self.intake
            .list_complaints(authed(
                AGENT,
                v1::ListComplaintsRequest {
                    class: class as i32,
                    ..Default::default()
                },
            ))
            .await
            .expect("list")
            .into_inner()
            .complaints
    }

    /// Waits until routing's stage is `stage`.
    async fn until_stage(&mut self, id: &str, stage: &str) {
        // NotFound until routing has read intake's event.
        let h = poll(
            WAIT,
            async || self.try_handling(id).await,
            |h| h.as_ref().is_ok_and(|h| h.stage == stage),
        )
        .await;
        assert!(
            h.as_ref().is_ok_and(|h| h.stage == stage),
            "stage {stage} never reached: {h:?}"
        );
    }

    /// Waits until the SLA monitor keeps `class` and the registry's timeline has an entry of
    /// `kind` (the registry has read the event), then returns the SLA monitor's answer.
    async fn until_seen(
        &mut self,
        id: &str,
        class: v1::Class,
        kind: &str,
    ) -> v1::GetSlaStatusResponse {
        let seen = |(sla, view): &(Option<v1::GetSlaStatusResponse>, v1::ComplaintView)| {
            sla.as_ref().is_some_and(|s| s.class() == class)
                && view.timeline.iter().any(|t| t.kind == kind)
        };
        let got = poll(
            WAIT,
            async || (self.sla(id).await, self.view(id).await),
            seen,
        )
        .await;
        assert!(
            seen(&got),
            "{kind} / class {class:?} never seen: {:?}",
            got.1
        );
        got.0.expect("seen")
    }
}

/// The SLA monitor's due time of `clock`.
fn sla_due(sla: &v1::GetSlaStatusResponse, clock: v1::SlaClock) -> Option<prost_types::Timestamp> {
    sla.clocks
        .iter()
        .find(|c| c.clock() == clock)
        .and_then(|c| c.due_at)
}

/// The registry's view agrees with routing and the SLA monitor on class, due times, stage and
/// handler.
fn assert_agree(
    view: &v1::ComplaintView,
    h: &v1::GetHandlingResponse,
    sla: &v1::GetSlaStatusResponse,
) {
    assert_eq!(view.class(), h.class(), "class as routing has it");
    assert_eq!(view.class(), sla.class(), "class as the SLA monitor has it");
    let p = view.promises.as_ref().expect("promises");
    for (clock, due) in [
        (v1::SlaClock::Acceptance, p.acceptance_due),
        (v1::SlaClock::FirstFeedback, p.first_feedback_due),
        (v1::SlaClock::Completion, p.completion_due),
        (v1::SlaClock::IntermediateResult, p.intermediate_due),
    ] {
        assert_eq!(
            due,
            sla_due(sla, clock),
            "{clock:?} due as the SLA monitor keeps it"
        );
    }
    assert_eq!(view.status, h.stage, "stage as routing has it");
    assert_eq!(view.assignee_id, h.assignee_id, "handler as routing has it");
    assert_eq!(view.department_id, h.department_id);
}

async fn start(bed: &TestBed) -> (common::Stack, Clients, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).expect("policy");
    let policy = policy.display().to_string();
    let stack = common::start(bed, &[("REDRESS_POLICY_FILE", &policy)]).await;
    let clients = Clients {
        intake: IntakeServiceClient::new(bed.channel(&stack.intake).await),
        routing: RoutingServiceClient::new(bed.channel(&stack.routing).await),
        sla: SlaMonitorServiceClient::new(bed.channel(&stack.sla).await),
    };
    (stack, clients, dir)
}

async fn submit(c: &mut Clients, details: v1::ComplaintDetails) -> v1::Acknowledgement {
    c.intake
        .submit(authed(
            AGENT,
            v1::SubmitRequest {
                details: Some(details),
            },
        ))
        .await
        .expect("submit")
        .into_inner()
}

#[tokio::test]
async fn an_invalid_finding_makes_the_registry_show_class_d_with_the_monitor_s_due_times() {
    let bed = TestBed::start().await;
    let (_stack, mut c, _dir) = start(&bed).await;
    // A loss to the customer: class B.
    let ack = submit(
        &mut c,
        v1::ComplaintDetails {
            customer_loss_fen: 5_000,
            ..common::complaint("invalid-1")
        },
    )
    .await;
    assert_eq!(ack.class(), v1::Class::B);
    let id = ack.complaint_id.clone();
    c.until_stage(&id, "assigned").await;

    c.routing
        .accept_complaint(authed(
            HANDLER,
            v1::AcceptComplaintRequest {
                complaint_id: id.clone(),
            },
        ))
        .await
        .expect("accept");
    // The first feedback is met before the finding: its due time stays where it was.
    c.routing
        .give_feedback(authed(
            HANDLER,
            v1::GiveFeedbackRequest {
                complaint_id: id.clone(),
                content: "We are looking at the line.".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("feedback");
    let explanation = "The outage was announced a week ahead; the contract excludes it.";
    c.routing
        .decide_validity(authed(
            HANDLER,
            v1::DecideValidityRequest {
                complaint_id: id.clone(),
                valid: false,
                explanation: explanation.into(),
            },
        ))
        .await
        .expect("decide validity");

    let sla = c
        .until_seen(&id, v1::Class::D, "complaint.validity_decided")
        .await;
    let view = c.view(&id).await;
    let h = c.handling(&id).await;
    assert_eq!(view.class(), v1::Class::D);
    assert_agree(&view, &h, &sla);
    assert_eq!(view.status, "accepted");
    assert_eq!(view.assignee_id, "handler-1");
    assert_ne!(
        view.promises.as_ref().and_then(|p| p.completion_due),
        ack.promises.as_ref().and_then(|p| p.completion_due),
        "class D's completion limit replaced class B's"
    );
    assert!(
        view.classification_reasons
            .iter()
            .any(|r| r.contains(explanation)),
        "the finding is the reason for class D: {:?}",
        view.classification_reasons
    );
    assert!(
        view.promises
            .as_ref()
            .is_some_and(|p| p.reason.starts_with("class D")),
        "the customer is told class D's limit: {:?}",
        view.promises
    );

    // ListComplaints finds it by its current class only, with the monitor's completion time.
    let d = c.list(v1::Class::D).await;
    let found = d
        .iter()
        .find(|s| s.complaint_id == id)
        .expect("listed as class D");
    assert_eq!(found.class(), v1::Class::D);
    assert_eq!(found.status, "accepted");
    assert_eq!(
        found.completion_due,
        sla_due(&sla, v1::SlaClock::Completion)
    );
    assert!(
        c.list(v1::Class::B)
            .await
            .iter()
            .all(|s| s.complaint_id != id)
    );
}

#[tokio::test]
async fn a_reclassification_makes_the_registry_show_the_new_class_s_due_times() {
    let bed = TestBed::start().await;
    let (_stack, mut c, _dir) = start(&bed).await;
    let ack = submit(&mut c, common::complaint("reclassify-1")).await;
    assert_eq!(ack.class(), v1::Class::C);
    let id = ack.complaint_id.clone();
    c.until_stage(&id, "assigned").await;
    // The registry has read routing's events so far.
    c.until_seen(&id, v1::Class::C, "complaint.assigned").await;

    let reason = "The customer is a hospital: the outage stops its switchboard.";
    c.intake
        .reclassify(authed(
            AGENT,
            v1::ReclassifyRequest {
                complaint_id: id.clone(),
                class: v1::Class::A as i32,
                reason: reason.into(),
            },
        ))
        .await
        .expect("reclassify");
    let sla = c
        .until_seen(&id, v1::Class::A, "complaint.reclassified")
        .await;
    // Routing learns the class from intake's event too.
    let h = poll(
        WAIT,
        async || c.handling(&id).await,
        |h| h.class() == v1::Class::A,
    )
    .await;
    let view = c.view(&id).await;
    assert_agree(&view, &h, &sla);
    assert_eq!(view.status, "assigned");
    assert!(
        view.classification_reasons
            .iter()
            .any(|r| r.contains(reason)),
        "{:?}",
        view.classification_reasons
    );

    let a = c.list(v1::Class::A).await;
    let found = a
        .iter()
        .find(|s| s.complaint_id == id)
        .expect("listed as class A");
    assert_eq!(
        found.completion_due,
        sla_due(&sla, v1::SlaClock::Completion),
        "the list shows the completion time the SLA monitor keeps"
    );
    assert!(
        c.list(v1::Class::C)
            .await
            .iter()
            .all(|s| s.complaint_id != id)
    );
}
