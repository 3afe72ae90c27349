//! The access matrix of `docs/access.md`, played on the whole system: every role calls every
//! read and every department-scoped command of the five services, once on a complaint of its own
//! department and once on another department's, and gets what the matrix says — refused, seen
//! in full, or seen with the customer masked.
//!
//! Two departments, as the test bed's token table has them: `dept-network` (manager-1,
//! handler-1) and `d-2` (manager-2, handler-2).

mod common;

use std::time::Duration;

use redress_proto::v1::{
    self, escalation_service_client::EscalationServiceClient,
    intake_service_client::IntakeServiceClient, revisit_service_client::RevisitServiceClient,
    routing_service_client::RoutingServiceClient,
    sla_monitor_service_client::SlaMonitorServiceClient,
};
use redress_test_support::{TestBed, authed, poll};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(40);
const NAME: &str = "王芳";

/// The common organisation plus a second department with its own manager and handler.
fn seed() -> String {
    format!(
        "{}{}",
        common::SEED,
        r#"
[[departments]]
id = "d-2"
name = "Billing"
manager_id = "manager-2"
acceptance_owner_id = "manager-2"

[[staff]]
id = "handler-2"
name = "Handler Two"
department_id = "d-2"
role = "handler"

[[staff]]
id = "manager-2"
name = "Manager Two"
department_id = "d-2"
role = "department_manager"

[[rules]]
id = "billing"
category = "billing_dispute"
department_id = "d-2"
"#
    )
}

/// What a call returned, as the matrix names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    /// Refused (`PermissionDenied`), or left out of a list.
    No,
    /// Allowed; the customer (where the answer shows one) in full.
    Full,
    /// Allowed with the customer masked.
    Masked,
    /// Allowed; the answer shows no customer.
    Yes,
}
use Got::{Full, Masked, No, Yes};

fn seen(name: &str) -> Got {
    if name == NAME {
        Full
    } else {
        assert!(name.contains('*'), "neither the name nor masked: {name:?}");
        Masked
    }
}

/// A command's outcome: refused for access, or let through (it may still fail on the state of
/// the complaint, which is not this test's concern — but never for access).
fn allowed<T>(r: Result<T, tonic::Status>) -> Got {
    match r {
        Err(s) if s.code() == Code::PermissionDenied => No,
        Err(s) => {
            assert!(
                !matches!(s.code(), Code::Unauthenticated | Code::Internal),
                "{s:?}"
            );
            Yes
        }
        Ok(_) => Yes,
    }
}

/// The roles of the matrix and their test tokens.
const ROLES: [(&str, &str); 9] = [
    ("general manager", "test-gm-token"),
    ("agent", "test-agent-token"),
    ("operator", "test-operator-token"),
    ("integration", "test-integration-token"),
    ("manager of dept-network", "test-manager-token"),
    ("handler-1 of dept-network", "test-handler-token"),
    ("manager of d-2", "test-manager2-token"),
    ("handler-2 of d-2", "test-handler2-token"),
    ("viewer (a wall screen)", "test-viewer-token"),
];

struct Clients {
    intake: IntakeServiceClient<tonic::transport::Channel>,
    routing: RoutingServiceClient<tonic::transport::Channel>,
    sla: SlaMonitorServiceClient<tonic::transport::Channel>,
    escalation: EscalationServiceClient<tonic::transport::Channel>,
    revisit: RevisitServiceClient<tonic::transport::Channel>,
}

/// Calls once per complaint (or escalation) and notes whether access let the call through.
macro_rules! each {
    ($list:expr, |$item:ident| $call:expr) => {{
        let mut got = [No; 2];
        for (i, $item) in $list.iter().enumerate() {
            got[i] = allowed($call.await);
        }
        got
    }};
}

/// One row of observations: per call, what the role got on the network complaint and on the
/// billing complaint.
type Row = Vec<(&'static str, [Got; 2])>;

async fn observe(
    c: &mut Clients,
    token: &str,
    ids: &[String; 2],
    escalations: &[String; 2],
) -> Row {
    let mut row = Row::new();
    let mut each = [No; 2];
    for (i, id) in ids.iter().enumerate() {
        each[i] = match c
            .intake
            .get_complaint(authed(
                token,
                v1::GetComplaintRequest {
                    complaint_id: id.clone(),
                },
            ))
            .await
        {
            Ok(v) => {
                let v = v.into_inner();
                let customer = v.details.and_then(|d| d.customer).expect("customer");
                let shown = seen(&customer.name);
                // Stored normalised (`+8613800138000`).
                let phone = if customer.phone.ends_with("13800138000") {
                    Full
                } else {
                    assert!(customer.phone.contains('*'), "{:?}", customer.phone);
                    Masked
                };
                assert_eq!(phone, shown, "name and phone shown alike");
                shown
            }
            Err(s) if s.code() == Code::PermissionDenied => No,
            Err(s) => panic!("GetComplaint as {token}: {s:?}"),
        };
    }
    row.push(("GetComplaint", each));

    let listed = c
        .intake
        .list_complaints(authed(token, v1::ListComplaintsRequest::default()))
        .await
        .expect("ListComplaints")
        .into_inner()
        .complaints;
    row.push((
        "ListComplaints",
        ids.clone().map(|id| {
            listed
                .iter()
                .find(|s| s.complaint_id == id)
                .map_or(No, |s| seen(&s.customer_name))
        }),
    ));

    row.push((
        "GetHandling",
        each!(ids, |id| c.routing.get_handling(authed(
            token,
            v1::GetHandlingRequest {
                complaint_id: id.clone(),
            },
        ))),
    ));

    let mut each = [No; 2];
    for (i, (id, department)) in ids.iter().zip(["dept-network", "d-2"]).enumerate() {
        let items = c
            .routing
            .list_queue(authed(
                token,
                v1::ListQueueRequest {
                    department_id: department.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("ListQueue")
            .into_inner()
            .items;
        each[i] = items
            .iter()
            .find(|q| &q.complaint_id == id)
            .map_or(No, |q| seen(&q.customer_name));
    }
    row.push(("ListQueue", each));

    row.push((
        "GetSlaStatus",
        each!(ids, |id| c.sla.get_sla_status(authed(
            token,
            v1::GetSlaStatusRequest {
                complaint_id: id.clone(),
            },
        ))),
    ));

    let overdue = c
        .sla
        .list_overdue(authed(token, v1::ListOverdueRequest::default()))
        .await
        .expect("ListOverdue")
        .into_inner()
        .items;
    row.push((
        "ListOverdue",
        ids.clone().map(|id| {
            if overdue.iter().any(|o| o.complaint_id == id) {
                Yes
            } else {
                No
            }
        }),
    ));

    let listed = c
        .escalation
        .list_escalations(authed(token, v1::ListEscalationsRequest::default()))
        .await
        .expect("ListEscalations")
        .into_inner()
        .escalations;
    row.push((
        "ListEscalations",
        escalations.clone().map(|e| {
            if listed.iter().any(|l| l.escalation_id == e) {
                Yes
            } else {
                No
            }
        }),
    ));

    let revisits = c
        .revisit
        .list_due_revisits(authed(token, v1::ListDueRevisitsRequest::default()))
        .await
        .expect("ListDueRevisits")
        .into_inner()
        .revisits;
    row.push((
        "ListDueRevisits",
        ids.clone().map(|id| {
            revisits
                .iter()
                .find(|r| r.complaint_id == id)
                .map_or(No, |r| seen(&r.customer_name))
        }),
    ));

    // Commands scoped to the complaint's department. Each is harmless to repeat: confirming
    // again, reclassifying to the class it has, accepting again, a special reason with an
    // extension far away.
    row.push((
        "Confirm",
        each!(ids, |id| c.intake.confirm(authed(
            token,
            v1::ConfirmRequest {
                complaint_id: id.clone(),
                confirmation: Some(v1::Confirmation {
                    method: v1::ConfirmationMethod::Phone as i32,
                    ..Default::default()
                }),
            },
        ))),
    ));

    row.push((
        "Reclassify",
        each!(ids, |id| c.intake.reclassify(authed(
            token,
            v1::ReclassifyRequest {
                complaint_id: id.clone(),
                class: v1::Class::C as i32,
                reason: "checked again".into(),
            },
        ))),
    ));

    row.push((
        "AcceptComplaint",
        each!(ids, |id| c.routing.accept_complaint(authed(
            token,
            v1::AcceptComplaintRequest {
                complaint_id: id.clone(),
            },
        ))),
    ));

    row.push((
        "RecordSpecialReason",
        each!(ids, |id| c.sla.record_special_reason(authed(
            token,
            v1::RecordSpecialReasonRequest {
                complaint_id: id.clone(),
                clock: v1::SlaClock::FirstFeedback as i32,
                reason: "customer abroad until Friday".into(),
                ..Default::default()
            },
        ))),
    ));

    row.push((
        "Acknowledge",
        each!(escalations, |e| c.escalation.acknowledge(authed(
            token,
            v1::AcknowledgeRequest {
                escalation_id: e.clone(),
                instructions: "looking into it".into(),
            },
        ))),
    ));
    row
}

#[tokio::test]
async fn every_role_sees_and_does_what_the_access_matrix_says() {
    let bed = TestBed::start().await;
    let stack = common::start_with(&bed, common::POLICY, &seed(), &[]).await;
    let mut c = Clients {
        intake: IntakeServiceClient::new(bed.channel(&stack.intake).await),
        routing: RoutingServiceClient::new(bed.channel(&stack.routing).await),
        sla: SlaMonitorServiceClient::new(bed.channel(&stack.sla).await),
        escalation: EscalationServiceClient::new(bed.channel(&stack.escalation).await),
        revisit: RevisitServiceClient::new(bed.channel(&stack.revisit).await),
    };
    // One complaint for each department: network quality → dept-network (handler-1), billing
    // dispute → d-2 (handler-2).
    let mut ids = Vec::new();
    for (key, category) in [("net", "network_quality"), ("bill", "billing_dispute")] {
        let mut details = common::complaint(key);
        details.category = category.into();
        let ack = c
            .intake
            .submit(authed(
                "test-agent-token",
                v1::SubmitRequest {
                    details: Some(details),
                },
            ))
            .await
            .expect("submit")
            .into_inner();
        ids.push(ack.complaint_id);
    }
    let ids: [String; 2] = ids.try_into().expect("two");
    // The level-1 escalations of both (completion limit 4 s), to the two department managers.
    let raised = bed.events("escalation.raised", 2, WAIT).await;
    let mut escalations = [String::new(), String::new()];
    for ev in &raised {
        let Some(v1::event::Payload::EscalationRaised(e)) = &ev.payload else {
            panic!("raised payload");
        };
        let i = ids
            .iter()
            .position(|id| *id == ev.complaint_id)
            .expect("one of ours");
        assert_eq!(e.level, 1, "{e:?}");
        escalations[i] = e.escalation_id.clone();
    }
    assert!(escalations.iter().all(|e| !e.is_empty()), "{escalations:?}");
    // Every service knows each complaint's department and handler before the matrix is read:
    // the registry, the queue, the clocks and the revisit plan.
    for (id, handler) in ids.iter().zip(["handler-1", "handler-2"]) {
        let settled =
            |(v, revisits, overdue): &(v1::ComplaintView, Vec<v1::Revisit>, Vec<v1::SlaItem>)| {
                v.assignee_id == handler
                    && revisits
                        .iter()
                        .any(|r| &r.complaint_id == id && !r.department_id.is_empty())
                    && overdue
                        .iter()
                        .any(|o| &o.complaint_id == id && o.handler_id == handler)
            };
        let seen = poll(
            WAIT,
            async || {
                let v = c
                    .intake
                    .get_complaint(authed(
                        "test-gm-token",
                        v1::GetComplaintRequest {
                            complaint_id: id.clone(),
                        },
                    ))
                    .await
                    .expect("get")
                    .into_inner();
                let revisits = c
                    .revisit
                    .list_due_revisits(authed(
                        "test-gm-token",
                        v1::ListDueRevisitsRequest::default(),
                    ))
                    .await
                    .expect("revisits")
                    .into_inner()
                    .revisits;
                let overdue = c
                    .sla
                    .list_overdue(authed("test-gm-token", v1::ListOverdueRequest::default()))
                    .await
                    .expect("overdue")
                    .into_inner()
                    .items;
                (v, revisits, overdue)
            },
            settled,
        )
        .await;
        assert!(
            settled(&seen),
            "{id} not settled: assignee {:?}, revisits {:?}",
            seen.0.assignee_id,
            seen.1
        );
    }

    // The matrix (docs/access.md), per role: [network complaint, billing complaint]. The
    // network complaint is handler-1's and manager-1's; the billing one handler-2's and
    // manager-2's.
    let both = |g: Got| [g, g];
    let expected: Vec<(&str, Row)> = vec![
        (
            "general manager",
            vec![
                ("GetComplaint", both(Full)),
                ("ListComplaints", both(Full)),
                ("GetHandling", both(Yes)),
                ("ListQueue", both(Full)),
                ("GetSlaStatus", both(Yes)),
                ("ListOverdue", both(Yes)),
                ("ListEscalations", both(Yes)),
                ("ListDueRevisits", both(Full)),
                ("Confirm", both(No)),
                ("Reclassify", both(Yes)),
                ("AcceptComplaint", both(Yes)),
                ("RecordSpecialReason", both(Yes)),
                ("Acknowledge", both(Yes)),
            ],
        ),
        (
            "agent",
            vec![
                ("GetComplaint", both(Full)),
                ("ListComplaints", both(Full)),
                ("GetHandling", both(Yes)),
                ("ListQueue", both(Full)),
                ("GetSlaStatus", both(Yes)),
                ("ListOverdue", both(Yes)),
                ("ListEscalations", both(Yes)),
                ("ListDueRevisits", both(Full)),
                ("Confirm", both(Yes)),
                ("Reclassify", both(Yes)),
                ("AcceptComplaint", both(No)),
                ("RecordSpecialReason", both(No)),
                ("Acknowledge", both(No)),
            ],
        ),
        (
            "operator",
            vec![
                ("GetComplaint", both(Masked)),
                ("ListComplaints", both(Masked)),
                ("GetHandling", both(Yes)),
                ("ListQueue", both(Masked)),
                ("GetSlaStatus", both(Yes)),
                ("ListOverdue", both(Yes)),
                ("ListEscalations", both(Yes)),
                ("ListDueRevisits", both(Masked)),
                ("Confirm", both(Yes)),
                ("Reclassify", both(Yes)),
                ("AcceptComplaint", both(No)),
                ("RecordSpecialReason", both(No)),
                ("Acknowledge", both(No)),
            ],
        ),
        (
            "integration",
            vec![
                ("GetComplaint", both(Masked)),
                ("ListComplaints", both(Masked)),
                ("GetHandling", both(Yes)),
                ("ListQueue", both(Masked)),
                ("GetSlaStatus", both(Yes)),
                ("ListOverdue", both(Yes)),
                ("ListEscalations", both(Yes)),
                ("ListDueRevisits", both(Masked)),
                ("Confirm", both(Yes)),
                ("Reclassify", both(No)),
                ("AcceptComplaint", both(No)),
                ("RecordSpecialReason", both(No)),
                ("Acknowledge", both(No)),
            ],
        ),
        (
            "viewer (a wall screen)",
            vec![
                ("GetComplaint", both(Masked)),
                ("ListComplaints", both(Masked)),
                ("GetHandling", both(Yes)),
                ("ListQueue", both(Masked)),
                ("GetSlaStatus", both(Yes)),
                ("ListOverdue", both(Yes)),
                ("ListEscalations", both(Yes)),
                ("ListDueRevisits", both(Masked)),
                ("Confirm", both(No)),
                ("Reclassify", both(No)),
                ("AcceptComplaint", both(No)),
                ("RecordSpecialReason", both(No)),
                ("Acknowledge", both(No)),
            ],
        ),
        ("manager of dept-network", department_row(0, Full)),
        ("handler-1 of dept-network", handler_row(0)),
        ("manager of d-2", department_row(1, Full)),
        ("handler-2 of d-2", handler_row(1)),
    ];
    let mut wrong = Vec::new();
    for (role, token) in ROLES {
        let got = observe(&mut c, token, &ids, &escalations).await;
        let want = &expected.iter().find(|(r, _)| *r == role).expect("row").1;
        assert_eq!(got.len(), want.len(), "{role}: calls observed");
        for ((call, g), (wcall, w)) in got.iter().zip(want) {
            assert_eq!(call, wcall);
            if g != w {
                wrong.push(format!(
                    "{role} · {call}: got {g:?}, matrix says {w:?} (network, billing)"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "access differs from the matrix:\n{}",
        wrong.join("\n")
    );
}

/// A department manager: everything of their department (index `own`), nothing of the other.
fn department_row(own: usize, sight: Got) -> Row {
    let only = |g: Got| {
        let mut a = [No; 2];
        a[own] = g;
        a
    };
    vec![
        ("GetComplaint", only(sight)),
        ("ListComplaints", only(sight)),
        ("GetHandling", only(Yes)),
        ("ListQueue", only(sight)),
        ("GetSlaStatus", only(Yes)),
        ("ListOverdue", only(Yes)),
        ("ListEscalations", only(Yes)),
        ("ListDueRevisits", only(sight)),
        ("Confirm", only(Yes)),
        ("Reclassify", only(Yes)),
        ("AcceptComplaint", only(Yes)),
        ("RecordSpecialReason", only(Yes)),
        ("Acknowledge", only(Yes)),
    ]
}

/// A handler: their own (assigned) complaint in full, their department's revisits (made by
/// agents, not by them) masked; nothing of the other department; managers' work
/// (reclassifying, special reasons, acting on escalations) not theirs.
fn handler_row(own: usize) -> Row {
    let only = |g: Got| {
        let mut a = [No; 2];
        a[own] = g;
        a
    };
    vec![
        ("GetComplaint", only(Full)),
        ("ListComplaints", only(Full)),
        ("GetHandling", only(Yes)),
        ("ListQueue", only(Full)),
        ("GetSlaStatus", only(Yes)),
        ("ListOverdue", only(Yes)),
        ("ListEscalations", only(Yes)),
        ("ListDueRevisits", only(Masked)),
        ("Confirm", only(Yes)),
        ("Reclassify", both_no()),
        ("AcceptComplaint", only(Yes)),
        ("RecordSpecialReason", both_no()),
        ("Acknowledge", both_no()),
    ]
}

fn both_no() -> [Got; 2] {
    [No; 2]
}
