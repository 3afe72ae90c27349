//! The routing service as a process, against real NATS JetStream and PostgreSQL. The tests play
//! intake's part by publishing `complaint.received` / `complaint.confirmed` themselves.

use std::time::Duration;

use async_nats::HeaderMap;
use prost::Message as _;
use redress_proto::v1::{self, event::Payload, routing_service_client::RoutingServiceClient};
use redress_test_support::{ServiceProcess, TestBed, authed, dead_letter_reason, poll};
use tonic::Code;
use tonic::transport::Channel;

const OPERATOR: &str = "test-operator-token";
const HANDLER: &str = "test-handler-token"; // handler-1
const MANAGER: &str = "test-manager-token"; // manager-1
const GM: &str = "test-gm-token";
const AGENT: &str = "test-agent-token"; // agent-1
/// The customer-service centre's manager and the network department's (tokens added below).
const SVC_MANAGER: &str = "test-svc-manager-token";
const NET_MANAGER: &str = "test-net-manager-token";
const SECOND: Duration = Duration::from_secs(1);

const SEED: &str = r#"
default_department = "service"

[[departments]]
id = "service"
name = "Customer-service centre"
manager_id = "svc-manager"
service_centre = true

[[departments]]
id = "billing"
name = "Billing"
manager_id = "manager-1"

[[departments]]
id = "network"
name = "Network"
manager_id = "net-manager"
acceptance_owner_id = "net-owner"

[[staff]]
id = "handler-1"
name = "Handler One"
department_id = "billing"
role = "handler"
seniority = 1

[[staff]]
id = "handler-2"
name = "Handler Two"
department_id = "billing"
role = "handler"
seniority = 5

[[staff]]
id = "manager-1"
name = "Manager One"
department_id = "billing"
role = "department_manager"

[[staff]]
id = "net-1"
name = "Net One"
department_id = "network"
role = "handler"

[[staff]]
id = "svc-1"
name = "Service One"
department_id = "service"
role = "handler"

[[rules]]
id = "billing-by-category"
category = "billing_dispute"
department_id = "billing"

[[rules]]
id = "network-hotline-north"
channel = "hotline"
region = "north"
department_id = "network"
"#;

struct Routing {
    svc: ServiceProcess,
    client: RoutingServiceClient<Channel>,
    _seed: tempfile::NamedTempFile,
}

async fn routing(bed: &TestBed, seed: &str) -> Routing {
    routing_with(bed, seed, &[]).await
}

async fn routing_with(bed: &TestBed, seed: &str, env: &[(&str, &str)]) -> Routing {
    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(file.path(), seed).expect("write seed");
    let path = file.path().to_string_lossy().to_string();
    let tokens = format!(
        "{},test-svc-manager-token=svc-manager:department_manager:Svc Manager,\
         test-net-manager-token=net-manager:department_manager:Net Manager",
        redress_test_support::TEST_TOKENS
    );
    let mut all = vec![
        ("REDRESS_ROUTING_SEED", path.as_str()),
        ("REDRESS_AUTH_TOKENS", tokens.as_str()),
    ];
    all.extend_from_slice(env);
    let svc = bed.spawn("redress-routing", &all).await;
    let client = RoutingServiceClient::new(bed.channel(&svc).await);
    Routing {
        svc,
        client,
        _seed: file,
    }
}

/// An event as intake would publish it, now.
fn envelope(complaint_id: &str, payload: Payload) -> v1::Event {
    let now = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp(),
        nanos: 0,
    };
    let id = redress_domain::EventId::new().to_string();
    redress_test_support::envelope(id, complaint_id, "intake", now, payload)
}

struct Complaint {
    category: &'static str,
    channel: v1::Channel,
    region: &'static str,
    class: v1::Class,
    customer_type: v1::CustomerType,
    group: bool,
    confirmed: bool,
}

impl Default for Complaint {
    fn default() -> Self {
        Complaint {
            category: "billing_dispute",
            channel: v1::Channel::Counter,
            region: "",
            class: v1::Class::C,
            customer_type: v1::CustomerType::Unspecified,
            group: false,
            confirmed: true,
        }
    }
}

fn received(id: &str, c: &Complaint) -> v1::Event {
    let now = chrono::Utc::now().timestamp();
    let hours = match c.class {
        v1::Class::A => 8,
        v1::Class::B => 24,
        _ => 48,
    };
    envelope(
        id,
        Payload::ComplaintReceived(v1::ComplaintReceived {
            details: Some(v1::ComplaintDetails {
                customer: Some(v1::Customer {
                    name: "王芳".into(),
                    phone: "+8613800138000".into(),
                    ..Default::default()
                }),
                channel: c.channel as i32,
                category: c.category.into(),
                region: c.region.into(),
                description: "Billed twice".into(),
                demand: "Refund".into(),
                group_complaint: c.group,
                customer_type: c.customer_type as i32,
                ..Default::default()
            }),
            complaint_number: format!("RD-{id}"),
            class: c.class as i32,
            promises: Some(v1::Promises {
                completion_due: Some(prost_types::Timestamp {
                    seconds: now + hours * 3600,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            confirmed: c.confirmed,
            ..Default::default()
        }),
    )
}

fn confirmed(id: &str) -> v1::Event {
    envelope(
        id,
        Payload::ComplaintConfirmed(v1::ComplaintConfirmed {
            method: v1::ConfirmationMethod::Verbal as i32,
            ..Default::default()
        }),
    )
}

fn new_id() -> String {
    redress_domain::ComplaintId::new().to_string()
}

/// Publishes a complaint as intake would (received, then confirmed) and returns its id.
async fn arrive(bed: &TestBed, c: &Complaint) -> String {
    let id = new_id();
    bed.publish_event(&received(&id, c)).await;
    if c.confirmed {
        bed.publish_event(&confirmed(&id)).await;
    }
    id
}

async fn handling(r: &mut Routing, id: &str) -> Option<v1::GetHandlingResponse> {
    r.client
        .get_handling(authed(
            GM,
            v1::GetHandlingRequest {
                complaint_id: id.into(),
            },
        ))
        .await
        .ok()
        .map(|r| r.into_inner())
}

/// Waits until the complaint reaches `stage` (or gives up after 20 s and fails).
async fn wait_stage(r: &mut Routing, id: &str, stage: &str) -> v1::GetHandlingResponse {
    let h = poll(
        20 * SECOND,
        async || handling(r, id).await,
        |h| h.as_ref().is_some_and(|h| h.stage == stage),
    )
    .await;
    match h {
        Some(h) if h.stage == stage => h,
        other => panic!("{id} never reached {stage}: {other:?}"),
    }
}

async fn assigned_events(bed: &TestBed, id: &str, at_least: usize) -> Vec<v1::ComplaintAssigned> {
    bed.events("complaint.assigned", at_least, 5 * SECOND)
        .await
        .into_iter()
        .filter(|e| e.complaint_id == id)
        .filter_map(|e| match e.payload {
            Some(Payload::ComplaintAssigned(a)) => Some(a),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn rules_route_by_category_and_channel_region_else_default() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let by_category = arrive(&bed, &Complaint::default()).await;
    let by_channel_region = arrive(
        &bed,
        &Complaint {
            category: "network_quality",
            channel: v1::Channel::Hotline,
            region: "north",
            ..Default::default()
        },
    )
    .await;
    let to_default = arrive(
        &bed,
        &Complaint {
            category: "network_quality",
            channel: v1::Channel::Hotline,
            region: "south",
            ..Default::default()
        },
    )
    .await;
    let h = wait_stage(&mut r, &by_category, "assigned").await;
    assert_eq!(h.department_id, "billing");
    assert_eq!(h.acceptance_owner_id, "manager-1");
    let h = wait_stage(&mut r, &by_channel_region, "assigned").await;
    assert_eq!(h.department_id, "network");
    assert_eq!(h.assignee_id, "net-1");
    assert_eq!(h.acceptance_owner_id, "net-owner");
    let h = wait_stage(&mut r, &to_default, "assigned").await;
    assert_eq!(h.department_id, "service");

    let routed = bed.events("complaint.routed", 3, 10 * SECOND).await;
    let of = |id: &str| {
        routed
            .iter()
            .find(|e| e.complaint_id == id)
            .and_then(|e| match &e.payload {
                Some(Payload::ComplaintRouted(r)) => Some(r.clone()),
                _ => None,
            })
            .expect("routed event")
    };
    assert_eq!(of(&by_category).rule_id, "billing-by-category");
    assert_eq!(of(&by_category).department_manager_id, "manager-1");
    assert_eq!(of(&by_channel_region).rule_id, "network-hotline-north");
    assert_eq!(of(&to_default).rule_id, "");
    assert_eq!(of(&to_default).reason, "default department");
    // The seed published the organisation for escalation and revisit.
    let depts = bed.events("department.upserted", 3, 10 * SECOND).await;
    assert_eq!(depts.len(), 3);
    assert!(bed.events("staff.upserted", 5, 10 * SECOND).await.len() >= 5);
}

#[tokio::test]
async fn routing_waits_for_confirmation_in_either_order() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let id = new_id();
    bed.publish_event(&received(
        &id,
        &Complaint {
            confirmed: false,
            ..Default::default()
        },
    ))
    .await;
    wait_stage(&mut r, &id, "awaiting_confirmation").await;
    bed.publish_event(&confirmed(&id)).await;
    wait_stage(&mut r, &id, "assigned").await;

    // Confirmed arriving before received (two replicas, or a late delivery).
    let early = new_id();
    bed.publish_event(&confirmed(&early)).await;
    bed.publish_event(&received(
        &early,
        &Complaint {
            confirmed: false,
            ..Default::default()
        },
    ))
    .await;
    wait_stage(&mut r, &early, "assigned").await;
}

#[tokio::test]
async fn redelivered_received_and_confirmed_events_assign_once() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let id = new_id();
    let rec = received(&id, &Complaint::default());
    let conf = confirmed(&id);
    for _ in 0..3 {
        bed.publish_event(&rec).await;
        bed.publish_event(&conf).await;
    }
    // The same events again under new message ids (an upstream replay): still one assignment.
    let mut rec2 = rec.clone();
    rec2.event_id = redress_domain::EventId::new().to_string();
    let mut conf2 = conf.clone();
    conf2.event_id = redress_domain::EventId::new().to_string();
    bed.publish_event(&rec2).await;
    bed.publish_event(&conf2).await;
    wait_stage(&mut r, &id, "assigned").await;
    // A marker complaint published afterwards: once it is assigned, everything before is applied.
    let marker = arrive(&bed, &Complaint::default()).await;
    wait_stage(&mut r, &marker, "assigned").await;
    assert_eq!(assigned_events(&bed, &id, 2).await.len(), 1);
    let routed: Vec<_> = bed
        .events("complaint.routed", 2, 5 * SECOND)
        .await
        .into_iter()
        .filter(|e| e.complaint_id == id)
        .collect();
    assert_eq!(routed.len(), 1);
}

/// Waits until every complaint routing knows is assigned (fails after 30 s); returns a
/// database connection for the assertions.
async fn all_assigned(bed: &TestBed) -> sqlx::PgConnection {
    let mut conn = bed.db.connect().await;
    let pending = poll(
        30 * SECOND,
        async || -> i64 {
            sqlx::query_scalar("SELECT count(*) FROM routing.handling WHERE stage <> 'assigned'")
                .fetch_one(&mut conn)
                .await
                .expect("count")
        },
        |pending| *pending == 0,
    )
    .await;
    assert_eq!(pending, 0, "not every complaint was assigned");
    conn
}

/// The per-handler load counters the database keeps (migration `handler_load`) equal a
/// recount of the open handling rows: the cheap figure assignment reads is the true one.
async fn assert_loads_kept(conn: &mut sqlx::PgConnection) {
    let kept: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT staff_id, class, open_count FROM routing.handler_load
         WHERE open_count <> 0 ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("counters");
    let counted: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT assignee_id, class, count(*) FROM routing.handling
         WHERE open AND assignee_id <> '' GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("recount");
    assert!(!counted.is_empty(), "something is open");
    assert_eq!(kept, counted, "load counters against a recount");
}

const BULK_SEED: &str = r#"
default_department = "bulk"

[[departments]]
id = "bulk"
name = "Bulk"
manager_id = "bulk-manager"

[[staff]]
id = "away"
name = "On leave"
department_id = "bulk"
role = "handler"
on_leave = true

[[staff]]
id = "susp"
name = "To be suspended"
department_id = "bulk"
role = "handler"
"#;

/// [`BULK_SEED`] with `handlers` more handlers, `h1`…, in the bulk department.
fn bulk_seed(handlers: usize) -> String {
    let mut seed = BULK_SEED.to_owned();
    for i in 1..=handlers {
        seed.push_str(&format!(
            "\n[[staff]]\nid = \"h{i}\"\nname = \"H{i}\"\ndepartment_id = \"bulk\"\nrole = \"handler\"\n"
        ));
    }
    seed
}

#[tokio::test]
async fn thousand_complaints_over_seven_handlers_stay_balanced_skipping_unavailable_staff() {
    let bed = TestBed::start().await;
    let seed = bulk_seed(7);
    let mut r = routing(&bed, &seed).await;
    // Escalation suspends one of them (DOMAIN §7).
    bed.publish_event(&envelope(
        "",
        Payload::StaffSuspended(v1::StaffSuspended {
            person_id: "susp".into(),
            month: "2026-01".into(),
            count: 3,
            department_id: "bulk".into(),
            complaint_ids: vec![],
        }),
    ))
    .await;
    let classes = [v1::Class::A, v1::Class::B, v1::Class::C, v1::Class::D];
    let mut last = String::new();
    for n in 0..1000 {
        let c = Complaint {
            class: classes[n % 4],
            ..Default::default()
        };
        // Half arrive already confirmed (routed on receipt), half confirmed afterwards.
        let id = new_id();
        let mut recv = received(&id, &c);
        if n % 2 == 0 {
            if let Some(Payload::ComplaintReceived(p)) = recv.payload.as_mut() {
                p.confirmed = false;
            }
            bed.publish_event(&recv).await;
            bed.publish_event(&confirmed(&id)).await;
        } else {
            bed.publish_event(&recv).await;
        }
        last = id;
    }
    wait_stage(&mut r, &last, "assigned").await;
    let mut conn = all_assigned(&bed).await;
    let loads: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT assignee_id, count(*),
                SUM(CASE class WHEN 'A' THEN 4 WHEN 'B' THEN 3 WHEN 'C' THEN 2 ELSE 1 END)
         FROM routing.handling GROUP BY assignee_id ORDER BY assignee_id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("loads");
    let names: Vec<&str> = loads.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        names,
        ["h1", "h2", "h3", "h4", "h5", "h6", "h7"],
        "{loads:?}"
    );
    let max = loads.iter().map(|l| l.2).max().unwrap_or(0);
    let min = loads.iter().map(|l| l.2).min().unwrap_or(0);
    assert!(
        max - min <= 4,
        "weighted loads within one complaint: {loads:?}"
    );
    assert_eq!(loads.iter().map(|l| l.1).sum::<i64>(), 1000);
    assert_loads_kept(&mut conn).await;
}

#[tokio::test]
async fn restrained_anger_goes_to_the_most_senior_handler() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    for _ in 0..3 {
        let id = arrive(
            &bed,
            &Complaint {
                customer_type: v1::CustomerType::RestrainedAnger,
                ..Default::default()
            },
        )
        .await;
        let h = wait_stage(&mut r, &id, "assigned").await;
        assert_eq!(h.assignee_id, "handler-2", "seniority 5 beats 1");
    }
}

/// Feedback to the customer, recording their satisfaction when `satisfied` is set.
async fn feedback(r: &mut Routing, id: &str, satisfied: Option<bool>) -> v1::GiveFeedbackResponse {
    r.client
        .give_feedback(authed(
            HANDLER,
            v1::GiveFeedbackRequest {
                complaint_id: id.into(),
                content: "We refund the double charge.".into(),
                satisfied,
                ..Default::default()
            },
        ))
        .await
        .expect("feedback")
        .into_inner()
}

async fn resolve(
    r: &mut Routing,
    id: &str,
    responsible_person_id: &str,
) -> Result<v1::ResolveResponse, tonic::Status> {
    r.client
        .resolve(authed(
            HANDLER,
            v1::ResolveRequest {
                complaint_id: id.into(),
                result: "Refunded".into(),
                responsible_person_id: responsible_person_id.into(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// Takes an assigned billing complaint of handler-1 to `resolved` the way DOMAIN §9 asks:
/// valid, feedback with the customer's satisfaction, accepted, the responsible person named.
async fn resolve_with_feedback(r: &mut Routing, id: &str) {
    accept_and_decide(r, id).await;
    feedback(r, id, Some(true)).await;
    propose(r, id).await.expect("propose");
    customer(r, id, true).await;
    resolve(r, id, "handler-1").await.expect("resolve");
    wait_stage(r, id, "resolved").await;
}

/// A billing complaint assigned to handler-1 (reassigned to them by the manager if the
/// automatic choice was handler-2).
async fn billing_complaint(bed: &TestBed, r: &mut Routing) -> String {
    let id = arrive(bed, &Complaint::default()).await;
    let h = wait_stage(r, &id, "assigned").await;
    if h.assignee_id != "handler-1" {
        r.client
            .reassign(authed(
                MANAGER,
                v1::ReassignRequest {
                    complaint_id: id.clone(),
                    staff_id: "handler-1".into(),
                    reason: "test setup".into(),
                },
            ))
            .await
            .expect("reassign to handler-1");
    }
    id
}

async fn accept_and_decide(r: &mut Routing, id: &str) {
    r.client
        .accept_complaint(authed(
            HANDLER,
            v1::AcceptComplaintRequest {
                complaint_id: id.into(),
            },
        ))
        .await
        .expect("accept");
    r.client
        .decide_validity(authed(
            HANDLER,
            v1::DecideValidityRequest {
                complaint_id: id.into(),
                valid: true,
                explanation: String::new(),
            },
        ))
        .await
        .expect("valid");
}

async fn propose(r: &mut Routing, id: &str) -> Result<u32, tonic::Status> {
    r.client
        .propose_resolution(authed(
            HANDLER,
            v1::ProposeResolutionRequest {
                complaint_id: id.into(),
                solution: "Refund the double charge".into(),
                remedies: vec![],
            },
        ))
        .await
        .map(|r| r.into_inner().attempt)
}

async fn customer(r: &mut Routing, id: &str, accepted: bool) -> v1::RecordCustomerResponseResponse {
    r.client
        .record_customer_response(authed(
            HANDLER,
            v1::RecordCustomerResponseRequest {
                complaint_id: id.into(),
                accepted,
                reason: "not enough".into(),
            },
        ))
        .await
        .expect("customer response")
        .into_inner()
}

#[tokio::test]
async fn illegal_transitions_are_refused_naming_the_stage_and_change_nothing() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let id = billing_complaint(&bed, &mut r).await;
    let before = handling(&mut r, &id).await.expect("handling");
    // Resolve, propose, record the customer's answer before acceptance.
    let err = r
        .client
        .resolve(authed(
            HANDLER,
            v1::ResolveRequest {
                complaint_id: id.clone(),
                result: "done".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("assigned"), "{}", err.message());
    let err = propose(&mut r, &id).await.expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("assigned"), "{}", err.message());
    let err = r
        .client
        .record_customer_response(authed(
            HANDLER,
            v1::RecordCustomerResponseRequest {
                complaint_id: id.clone(),
                accepted: true,
                reason: String::new(),
            },
        ))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(handling(&mut r, &id).await.expect("h"), before);

    // After acceptance: the cause before validity, and the customer's answer before a proposal.
    r.client
        .accept_complaint(authed(
            HANDLER,
            v1::AcceptComplaintRequest {
                complaint_id: id.clone(),
            },
        ))
        .await
        .expect("accept");
    let again = r
        .client
        .accept_complaint(authed(
            HANDLER,
            v1::AcceptComplaintRequest {
                complaint_id: id.clone(),
            },
        ))
        .await
        .expect("accept again")
        .into_inner();
    assert!(again.already_accepted);
    let err = r
        .client
        .record_cause(authed(
            HANDLER,
            v1::RecordCauseRequest {
                complaint_id: id.clone(),
                cause: "billing system".into(),
                responsibility: v1::Responsibility::CompanySystem as i32,
                ..Default::default()
            },
        ))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("accepted"), "{}", err.message());
    // Bad input is InvalidArgument naming the field.
    let err = r
        .client
        .decide_validity(authed(
            HANDLER,
            v1::DecideValidityRequest {
                complaint_id: id.clone(),
                valid: false,
                explanation: String::new(),
            },
        ))
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("explanation"), "{}", err.message());
    // Invalid → class D.
    let d = r
        .client
        .decide_validity(authed(
            HANDLER,
            v1::DecideValidityRequest {
                complaint_id: id.clone(),
                valid: false,
                explanation: "The charge was correct; explained patiently.".into(),
            },
        ))
        .await
        .expect("invalid decided")
        .into_inner();
    assert_eq!(d.class(), v1::Class::D);
    // A complaint routing does not know.
    let err = r
        .client
        .give_feedback(authed(
            MANAGER,
            v1::GiveFeedbackRequest {
                complaint_id: new_id(),
                content: "x".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("unknown complaint");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn role_checks_handler_only_their_own_manager_only_their_department() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let network = arrive(
        &bed,
        &Complaint {
            category: "x",
            channel: v1::Channel::Hotline,
            region: "north",
            ..Default::default()
        },
    )
    .await;
    wait_stage(&mut r, &network, "assigned").await;
    for token in [HANDLER, MANAGER] {
        let err = r
            .client
            .accept_complaint(authed(
                token,
                v1::AcceptComplaintRequest {
                    complaint_id: network.clone(),
                },
            ))
            .await
            .expect_err("not theirs");
        assert_eq!(err.code(), Code::PermissionDenied);
    }
    let err = r
        .client
        .upsert_department(authed(
            MANAGER,
            v1::UpsertDepartmentRequest {
                department: Some(v1::Department {
                    id: "x".into(),
                    name: "X".into(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect_err("operator only");
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn concurrent_reassignments_one_wins_and_state_stays_consistent() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let id = billing_complaint(&bed, &mut r).await;
    // Add a third billing handler so the two reassignments name different people.
    r.client
        .upsert_staff(authed(
            OPERATOR,
            v1::UpsertStaffRequest {
                staff: Some(v1::Staff {
                    id: "handler-3".into(),
                    name: "Handler Three".into(),
                    department_id: "billing".into(),
                    role: v1::Role::Handler as i32,
                    ..Default::default()
                }),
                lift_suspension: false,
            },
        ))
        .await
        .expect("upsert");
    let mut a = r.client.clone();
    let mut b = r.client.clone();
    let (id_a, id_b) = (id.clone(), id.clone());
    let ta = tokio::spawn(async move {
        a.reassign(authed(
            MANAGER,
            v1::ReassignRequest {
                complaint_id: id_a,
                staff_id: "handler-2".into(),
                reason: "workload".into(),
            },
        ))
        .await
    });
    let tb = tokio::spawn(async move {
        b.reassign(authed(
            MANAGER,
            v1::ReassignRequest {
                complaint_id: id_b,
                staff_id: "handler-3".into(),
                reason: "expertise".into(),
            },
        ))
        .await
    });
    let ra = ta.await.expect("join").expect("a");
    let rb = tb.await.expect("join").expect("b").into_inner();
    let ra = ra.into_inner();
    // Serialised: one of them ran second and saw the other's result as its previous assignee.
    let (first, second) = if rb.previous_assignee_id == ra.assignee_id {
        (ra, rb)
    } else {
        (rb, ra)
    };
    assert_eq!(first.previous_assignee_id, "handler-1");
    assert_eq!(second.previous_assignee_id, first.assignee_id);
    let h = handling(&mut r, &id).await.expect("h");
    assert_eq!(h.assignee_id, second.assignee_id, "the last one wins");
    let events = assigned_events(&bed, &id, 3).await;
    let chain: Vec<(String, String)> = events
        .iter()
        .map(|a| (a.previous_assignee_id.clone(), a.assignee_id.clone()))
        .collect();
    // The automatic assignment, possibly the setup's reassignment, then the two racing ones.
    assert!(chain.len() >= 3, "{chain:?}");
    assert_eq!(
        chain.last().map(|c| c.1.as_str()),
        Some(h.assignee_id.as_str())
    );
    for w in chain.windows(2) {
        assert_eq!(
            w[1].0, w[0].1,
            "each event's previous is the one before: {chain:?}"
        );
    }
    // Reason is required.
    let err = r
        .client
        .reassign(authed(
            MANAGER,
            v1::ReassignRequest {
                complaint_id: id.clone(),
                staff_id: "handler-1".into(),
                reason: " ".into(),
            },
        ))
        .await
        .expect_err("no reason");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("reason"));
    assert_loads_kept(&mut bed.db.connect().await).await;
}

#[tokio::test]
async fn second_rejection_requests_escalation() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let id = billing_complaint(&bed, &mut r).await;
    accept_and_decide(&mut r, &id).await;
    assert_eq!(propose(&mut r, &id).await.expect("propose"), 1);
    let first = customer(&mut r, &id, false).await;
    assert!(first.re_study_requested && !first.escalation_requested);
    wait_stage(&mut r, &id, "re_study").await;
    assert_eq!(propose(&mut r, &id).await.expect("propose again"), 2);
    let second = customer(&mut r, &id, false).await;
    assert_eq!(second.rejection_count, 2);
    assert!(second.escalation_requested && !second.re_study_requested);
    wait_stage(&mut r, &id, "escalated").await;
    let esc = bed
        .events("complaint.escalation_requested", 1, 10 * SECOND)
        .await;
    assert_eq!(esc.len(), 1);
    let Some(Payload::EscalationRequested(e)) = &esc[0].payload else {
        panic!("payload")
    };
    assert_eq!(e.reason(), v1::EscalationReason::RejectedAgain);
    assert_eq!(e.department_id, "billing");
    assert_eq!(
        bed.events("complaint.restudy_requested", 1, 5 * SECOND)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn open_subtasks_block_resolution() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let id = billing_complaint(&bed, &mut r).await;
    accept_and_decide(&mut r, &id).await;
    let due = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + 3600,
        nanos: 0,
    };
    let task = r
        .client
        .create_sub_task(authed(
            HANDLER,
            v1::CreateSubTaskRequest {
                complaint_id: id.clone(),
                department_id: "network".into(),
                owner_id: String::new(),
                description: "Check the line records".into(),
                due_at: Some(due),
            },
        ))
        .await
        .expect("sub-task")
        .into_inner()
        .task_id;
    feedback(&mut r, &id, Some(true)).await;
    propose(&mut r, &id).await.expect("propose");
    customer(&mut r, &id, true).await;
    let resolve = |c: &mut RoutingServiceClient<Channel>| {
        let mut c = c.clone();
        let id = id.clone();
        async move {
            c.resolve(authed(
                HANDLER,
                v1::ResolveRequest {
                    complaint_id: id,
                    result: "Refunded".into(),
                    responsible_person_id: "handler-1".into(),
                    ..Default::default()
                },
            ))
            .await
        }
    };
    let err = resolve(&mut r.client).await.expect_err("blocked");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("sub-task"), "{}", err.message());
    let h = handling(&mut r, &id).await.expect("h");
    assert_eq!(h.sub_tasks.len(), 1);
    assert_eq!(
        h.sub_tasks[0].owner_id, "net-manager",
        "the department's manager by default"
    );
    // The handler of the complaint (the owner is net-manager) completes it here.
    r.client
        .complete_sub_task(authed(
            HANDLER,
            v1::CompleteSubTaskRequest {
                complaint_id: id.clone(),
                task_id: task,
                result: "Line records checked".into(),
            },
        ))
        .await
        .expect("complete");
    resolve(&mut r.client).await.expect("resolved");
    wait_stage(&mut r, &id, "resolved").await;
    assert_eq!(
        bed.events("complaint.resolved", 1, 10 * SECOND).await.len(),
        1
    );
}

/// Intake's events may be applied out of order: a reclassification applied before the
/// complaint's `complaint.received` keeps its class, and of two reclassifications the later
/// (by when it happened) wins whatever order they are applied in.
#[tokio::test]
async fn a_reclassification_applied_before_receipt_is_kept() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let id = new_id();
    let reclassified = |to: v1::Class, seconds_ago: i64| {
        let mut e = envelope(
            &id,
            Payload::ComplaintReclassified(v1::ComplaintReclassified {
                from_class: v1::Class::C as i32,
                to_class: to as i32,
                reason: "the media called".into(),
                promises: None,
            }),
        );
        if let Some(t) = e.occurred_at.as_mut() {
            t.seconds -= seconds_ago;
        }
        e
    };
    bed.publish_event(&reclassified(v1::Class::A, 10)).await;
    // An older reclassification delivered late changes nothing.
    bed.publish_event(&reclassified(v1::Class::B, 60)).await;
    bed.publish_event(&received(&id, &Complaint::default()))
        .await;
    let h = wait_stage(&mut r, &id, "assigned").await;
    assert_eq!(h.class, v1::Class::A as i32, "{h:?}");
}

/// A dissatisfied customer's repeat complaint (revisit's `complaint.reopened`) puts a resolved
/// complaint back in handling with its handler, who proposes again; a redelivered copy and a
/// reopening of a complaint still in handling change nothing.
#[tokio::test]
async fn a_reopened_complaint_returns_to_its_handler() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let id = billing_complaint(&bed, &mut r).await;
    resolve_with_feedback(&mut r, &id).await;

    // Still in handling: a reopening changes nothing.
    let other = billing_complaint(&bed, &mut r).await;
    let reopened = |cid: &str| {
        let mut e = envelope(
            cid,
            Payload::Reopened(v1::Reopened {
                reason: "repeat complaint (再度投诉): still double-charged".into(),
                repeat_complaint: true,
                revisit_id: "rev_test".into(),
            }),
        );
        e.producer = "revisit".into();
        e
    };
    bed.publish_event(&reopened(&other)).await;

    let event = reopened(&id);
    bed.publish_event(&event).await;
    bed.publish_event(&event).await; // redelivered: applied once
    let h = wait_stage(&mut r, &id, "reopened").await;
    assert_eq!(h.assignee_id, "handler-1", "the same handler");

    assert_eq!(propose(&mut r, &id).await.expect("propose again"), 2);
    wait_stage(&mut r, &id, "resolution_proposed").await;
    assert_eq!(
        handling(&mut r, &other).await.expect("other").stage,
        "assigned",
        "a complaint still in handling is not reopened"
    );
    assert_eq!(
        bed.events("complaint.reopened", 3, 2 * SECOND).await.len(),
        2,
        "the two published (the copy deduplicated); routing follows, it announces none"
    );
    // A reclassification of an assigned complaint moves its weight between classes.
    bed.publish_event(&envelope(
        &other,
        Payload::ComplaintReclassified(v1::ComplaintReclassified {
            from_class: v1::Class::C as i32,
            to_class: v1::Class::A as i32,
            reason: "the media called".into(),
            promises: None,
        }),
    ))
    .await;
    let class = poll(
        5 * SECOND,
        async || handling(&mut r, &other).await.map_or(0, |h| h.class),
        |class| *class == v1::Class::A as i32,
    )
    .await;
    assert_eq!(class, v1::Class::A as i32, "reclassified while assigned");
    assert_loads_kept(&mut bed.db.connect().await).await;
}

#[tokio::test]
async fn queue_orders_by_class_group_then_time_left() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let c = arrive(&bed, &Complaint::default()).await;
    let b = arrive(
        &bed,
        &Complaint {
            class: v1::Class::B,
            ..Default::default()
        },
    )
    .await;
    let b_group = arrive(
        &bed,
        &Complaint {
            class: v1::Class::B,
            group: true,
            ..Default::default()
        },
    )
    .await;
    let a = arrive(
        &bed,
        &Complaint {
            class: v1::Class::A,
            ..Default::default()
        },
    )
    .await;
    for id in [&c, &b, &b_group, &a] {
        wait_stage(&mut r, id, "assigned").await;
    }
    let q = r
        .client
        .list_queue(authed(
            MANAGER,
            v1::ListQueueRequest {
                department_id: "billing".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("queue")
        .into_inner();
    let order: Vec<&str> = q.items.iter().map(|i| i.complaint_id.as_str()).collect();
    assert_eq!(
        order,
        [a.as_str(), b_group.as_str(), b.as_str(), c.as_str()]
    );
    let left = q.items[0].time_left.expect("time left").seconds;
    assert!(left > 7 * 3600 && left <= 8 * 3600, "{left}");
}

/// The queue pages by keyset: a complaint that arrives (at the top) while a supervisor pages
/// through it neither repeats a row on the next page nor hides one (OFFSET pages did both), and
/// a token from another list is refused naming the field.
#[tokio::test]
async fn the_queue_pages_without_repeating_or_skipping_while_complaints_arrive() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(arrive(&bed, &Complaint::default()).await);
    }
    for id in &ids {
        wait_stage(&mut r, id, "assigned").await;
    }
    let page = |token: String| v1::ListQueueRequest {
        department_id: "billing".into(),
        page: Some(v1::PageRequest {
            page_size: 3,
            page_token: token,
        }),
        ..Default::default()
    };
    let first = r
        .client
        .list_queue(authed(MANAGER, page(String::new())))
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(first.items.len(), 3);
    // A class A complaint arrives and goes to the top of the queue.
    let urgent = arrive(
        &bed,
        &Complaint {
            class: v1::Class::A,
            ..Default::default()
        },
    )
    .await;
    wait_stage(&mut r, &urgent, "assigned").await;
    let mut seen: Vec<String> = first.items.iter().map(|i| i.complaint_id.clone()).collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let next = r
            .client
            .list_queue(authed(MANAGER, page(token)))
            .await
            .expect("next page")
            .into_inner();
        seen.extend(next.items.iter().map(|i| i.complaint_id.clone()));
        token = next.next_page_token;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a row repeated: {seen:?}");
    for id in &ids {
        assert!(seen.contains(id), "{id} skipped: {seen:?}");
    }
    let refused = r
        .client
        .list_queue(authed(MANAGER, page("3".into())))
        .await
        .expect_err("an OFFSET token is not ours");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("page.page_token"), "{refused:?}");
}

#[tokio::test]
async fn two_replicas_assign_each_complaint_once_and_stay_balanced() {
    let bed = TestBed::start().await;
    let seed = bulk_seed(4);
    let mut r = routing(&bed, &seed).await;
    // A second replica on the same database and stream, sharing the durable consumer.
    let _second = routing(&bed, &seed).await;
    let mut last = String::new();
    for n in 0..300 {
        let c = Complaint {
            class: [v1::Class::A, v1::Class::C][n % 2],
            ..Default::default()
        };
        last = arrive(&bed, &c).await;
    }
    wait_stage(&mut r, &last, "assigned").await;
    let mut conn = all_assigned(&bed).await;
    let assigned = bed.events("complaint.assigned", 300, 20 * SECOND).await;
    let mut ids: Vec<&str> = assigned.iter().map(|e| e.complaint_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        (assigned.len(), ids.len()),
        (300, 300),
        "one assignment each"
    );
    let loads: Vec<(String, i64)> = sqlx::query_as(
        "SELECT assignee_id, SUM(CASE class WHEN 'A' THEN 4 ELSE 2 END)::BIGINT
         FROM routing.handling GROUP BY assignee_id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("loads");
    // h1–h4 and `susp` (not suspended in this test); `away` is on leave.
    assert_eq!(loads.len(), 5, "{loads:?}");
    assert!(loads.iter().all(|l| l.0 != "away"), "{loads:?}");
    let max = loads.iter().map(|l| l.1).max().unwrap_or(0);
    let min = loads.iter().map(|l| l.1).min().unwrap_or(0);
    assert!(max - min <= 4, "{loads:?}");
    assert_loads_kept(&mut conn).await;
}

/// Two replicas share the consumer, and a complaint's receipt and confirmation may go one to
/// each, in either order: a replica's batch records the complaint rows in one statement, in
/// complaint-id order, so two batches crossing each other's complaints wait for each other
/// rather than deadlock. The backlog is published before both replicas start, with every
/// confirmation 40 messages from its receipt (before it for half the complaints, after for the
/// others), and batches of 32, so concurrent batches cross in both directions. Before the fix
/// (receipts in one statement, confirmations in a second) this deadlocked, and the
/// consumer took each deadlock for an outage and put its batch back with a delay.
#[tokio::test]
async fn two_replicas_crossing_receipts_and_confirmations_never_deadlock() {
    let bed = TestBed::start().await;
    let seed = bulk_seed(4);
    // Started once so the streams and the durable consumer exist, then stopped.
    let mut first = routing(&bed, &seed).await;
    first.svc.terminate(10 * SECOND).await.expect("stopped");
    const N: usize = 3000;
    const GAP: usize = 40;
    let ids: Vec<String> = (0..N).map(|_| new_id()).collect();
    let unconfirmed = Complaint {
        confirmed: false,
        ..Default::default()
    };
    // Message slot of each half: complaint i's first half at 2i, its second GAP slots later.
    let mut slots: Vec<(usize, v1::Event)> = Vec::with_capacity(2 * N);
    for (i, id) in ids.iter().enumerate() {
        let (early, late) = if i % 2 == 0 {
            (received(id, &unconfirmed), confirmed(id))
        } else {
            (confirmed(id), received(id, &unconfirmed))
        };
        slots.push((2 * i, early));
        slots.push((2 * i + GAP + 1, late));
    }
    slots.sort_by_key(|(slot, _)| *slot);
    for (_, e) in &slots {
        bed.publish_event(e).await;
    }
    let env = [
        ("REDRESS_CONSUMER_BATCH", "32"),
        ("RUST_LOG", "info,redress_platform=debug"),
    ];
    let (a, b) = tokio::join!(
        routing_with(&bed, &seed, &env),
        routing_with(&bed, &seed, &env)
    );
    let mut conn = all_assigned(&bed).await;
    let assigned = bed.events("complaint.assigned", N, 30 * SECOND).await;
    let mut once: Vec<&str> = assigned.iter().map(|e| e.complaint_id.as_str()).collect();
    once.sort_unstable();
    once.dedup();
    assert_eq!((assigned.len(), once.len()), (N, N), "one assignment each");
    for r in [&a, &b] {
        let c = r
            .svc
            .consumed("routing-intake-events", 1.0, 10 * SECOND)
            .await;
        // Both replicas took part.
        assert!(c.messages > 0.0 && c.batches > 1.0, "{}", c.page);
        let logs = r.svc.logs();
        assert!(!logs.contains("deadlock"), "{logs}");
        assert!(!logs.contains("batch failed"), "{logs}");
    }
    let deadlocks: i64 = sqlx::query_scalar(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await
    .expect("stats");
    assert_eq!(deadlocks, 0);
    assert_loads_kept(&mut conn).await;
}

/// DOMAIN §9 "Resolution needs feedback" (issue 13 point 4): accepted by the customer but
/// without feedback recording the customer's satisfaction, or — valid — without a responsible
/// person or a customer-side cause, `Resolve` is refused naming what is missing.
#[tokio::test]
async fn resolution_needs_feedback_with_satisfaction_and_someone_to_answer_for_it() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let id = billing_complaint(&bed, &mut r).await;
    accept_and_decide(&mut r, &id).await;
    propose(&mut r, &id).await.expect("propose");
    customer(&mut r, &id, true).await;
    let before = handling(&mut r, &id).await.expect("h");
    let err = resolve(&mut r, &id, "").await.expect_err("no feedback");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("no feedback"), "{}", err.message());
    assert!(
        err.message().contains("responsible person"),
        "{}",
        err.message()
    );
    assert_eq!(
        handling(&mut r, &id).await.expect("h"),
        before,
        "nothing changed"
    );

    // Feedback that did not ask the customer is not enough.
    feedback(&mut r, &id, None).await;
    let err = resolve(&mut r, &id, "").await.expect_err("no satisfaction");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("satisfaction"), "{}", err.message());

    // Satisfaction recorded; the valid complaint still names nobody.
    let second = feedback(&mut r, &id, Some(false)).await;
    assert_eq!(second.sequence, 2);
    let err = resolve(&mut r, &id, "").await.expect_err("nobody named");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(!err.message().contains("feedback"), "{}", err.message());
    assert!(
        err.message().contains("responsible person"),
        "{}",
        err.message()
    );
    let err = resolve(&mut r, &id, "nobody-here")
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("responsible_person_id"),
        "{}",
        err.message()
    );

    // Named in the resolve request itself: resolved, and the person is on the event.
    resolve(&mut r, &id, "handler-2").await.expect("resolve");
    let h = wait_stage(&mut r, &id, "resolved").await;
    assert_eq!(h.responsible_person_id, "handler-2");
    assert_eq!(h.satisfied, Some(false), "the latest satisfaction recorded");
    let feedback_events = bed.events("complaint.feedback_given", 3, 10 * SECOND).await;
    let satisfied: Vec<Option<bool>> = feedback_events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::FeedbackGiven(f)) => Some(f.satisfied),
            _ => None,
        })
        .collect();
    assert_eq!(satisfied, [None, Some(false)]);
    let resolved = bed.events("complaint.resolved", 1, 10 * SECOND).await;
    let Some(Payload::Resolved(res)) = &resolved[0].payload else {
        panic!("payload")
    };
    assert_eq!(res.responsible_person_id, "handler-2");

    // A customer-side cause needs no name; an invalid complaint needs only the feedback.
    let misuse = billing_complaint(&bed, &mut r).await;
    accept_and_decide(&mut r, &misuse).await;
    r.client
        .record_cause(authed(
            HANDLER,
            v1::RecordCauseRequest {
                complaint_id: misuse.clone(),
                cause: "the customer set the plan to roaming".into(),
                responsibility: v1::Responsibility::CustomerMisuse as i32,
                ..Default::default()
            },
        ))
        .await
        .expect("cause");
    feedback(&mut r, &misuse, Some(true)).await;
    propose(&mut r, &misuse).await.expect("propose");
    customer(&mut r, &misuse, true).await;
    resolve(&mut r, &misuse, "")
        .await
        .expect("customer-side cause");
    let invalid = billing_complaint(&bed, &mut r).await;
    r.client
        .accept_complaint(authed(
            HANDLER,
            v1::AcceptComplaintRequest {
                complaint_id: invalid.clone(),
            },
        ))
        .await
        .expect("accept");
    r.client
        .decide_validity(authed(
            HANDLER,
            v1::DecideValidityRequest {
                complaint_id: invalid.clone(),
                valid: false,
                explanation: "The charge was correct.".into(),
            },
        ))
        .await
        .expect("invalid");
    propose(&mut r, &invalid).await.expect("propose");
    customer(&mut r, &invalid, true).await;
    let err = resolve(&mut r, &invalid, "")
        .await
        .expect_err("no feedback");
    assert!(!err.message().contains("responsible"), "{}", err.message());
    feedback(&mut r, &invalid, Some(true)).await;
    resolve(&mut r, &invalid, "")
        .await
        .expect("invalid, with feedback");
}

async fn close(
    r: &mut Routing,
    token: &str,
    id: &str,
    note: &str,
) -> Result<v1::CloseResponse, tonic::Status> {
    r.client
        .close(authed(
            token,
            v1::CloseRequest {
                complaint_id: id.into(),
                note: note.into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

fn closed_events(events: &[v1::Event], id: &str) -> Vec<v1::Closed> {
    events
        .iter()
        .filter(|e| e.complaint_id == id)
        .filter_map(|e| match &e.payload {
            Some(Payload::Closed(c)) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// DOMAIN §9 "Closing": the complaint centre closes a resolved complaint explicitly; the
/// close is `complaint.closed`, shown by GetHandling and (asked for) in the queue; a closed
/// complaint changes only when a repeat complaint reopens it.
#[tokio::test]
async fn the_complaint_centre_closes_a_resolved_complaint_and_a_repeat_reopens_it() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let id = billing_complaint(&bed, &mut r).await;
    accept_and_decide(&mut r, &id).await;
    let err = close(&mut r, GM, &id, "done")
        .await
        .expect_err("not resolved");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("accepted"), "{}", err.message());
    feedback(&mut r, &id, Some(true)).await;
    propose(&mut r, &id).await.expect("propose");
    customer(&mut r, &id, true).await;
    resolve(&mut r, &id, "handler-1").await.expect("resolve");
    wait_stage(&mut r, &id, "resolved").await;

    let err = close(&mut r, GM, &id, "  ").await.expect_err("no note");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("note"), "{}", err.message());
    for token in [HANDLER, AGENT, NET_MANAGER] {
        let err = close(&mut r, token, &id, "archive")
            .await
            .expect_err("not theirs");
        assert_eq!(err.code(), Code::PermissionDenied, "{token}: {err:?}");
    }
    let closed = close(&mut r, SVC_MANAGER, &id, "customer satisfied on the phone")
        .await
        .expect("the centre's manager closes");
    assert_eq!(closed.satisfied, Some(true));
    let h = wait_stage(&mut r, &id, "closed").await;
    assert!(h.closed_at.is_some());
    let err = close(&mut r, GM, &id, "again")
        .await
        .expect_err("already closed");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("closed"), "{}", err.message());
    let err = feedback_err(&mut r, &id).await;
    assert_eq!(err.code(), Code::FailedPrecondition);

    // The department's own manager may close too.
    let other = billing_complaint(&bed, &mut r).await;
    resolve_with_feedback(&mut r, &other).await;
    close(&mut r, MANAGER, &other, "archived by the department")
        .await
        .expect("the department manager closes");
    wait_stage(&mut r, &other, "closed").await;

    let events = bed.events("complaint.closed", 3, 3 * SECOND).await;
    assert_eq!(events.len(), 2, "one complaint.closed per close");
    let c = closed_events(&events, &id);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].note, "customer satisfied on the phone");
    assert!(c[0].satisfied && c[0].revisit_id.is_empty());

    // Closed complaints leave the work queue but are listed when asked for.
    let queue = |all: bool| v1::ListQueueRequest {
        department_id: "billing".into(),
        include_finished: all,
        ..Default::default()
    };
    let open = r
        .client
        .list_queue(authed(MANAGER, queue(false)))
        .await
        .expect("queue")
        .into_inner();
    assert!(open.items.iter().all(|i| i.complaint_id != id));
    let all = r
        .client
        .list_queue(authed(MANAGER, queue(true)))
        .await
        .expect("queue")
        .into_inner();
    let item = all
        .items
        .iter()
        .find(|i| i.complaint_id == id)
        .expect("listed");
    assert_eq!(item.stage, "closed");

    // A repeat complaint reopens the closed complaint with its handler.
    let mut e = envelope(
        &id,
        Payload::Reopened(v1::Reopened {
            reason: "repeat complaint (再度投诉): charged twice again".into(),
            repeat_complaint: true,
            revisit_id: "rvt_test".into(),
        }),
    );
    e.producer = "revisit".into();
    bed.publish_event(&e).await;
    let h = wait_stage(&mut r, &id, "reopened").await;
    assert_eq!(h.assignee_id, "handler-1");
    assert!(h.closed_at.is_none());
    // Reopened, the customer must be asked again before it is resolved again.
    propose(&mut r, &id).await.expect("propose again");
    customer(&mut r, &id, true).await;
    let err = resolve(&mut r, &id, "").await.expect_err("feedback again");
    assert!(err.message().contains("satisfaction"), "{}", err.message());
    feedback(&mut r, &id, Some(true)).await;
    resolve(&mut r, &id, "").await.expect("resolved again");
}

async fn feedback_err(r: &mut Routing, id: &str) -> tonic::Status {
    r.client
        .give_feedback(authed(
            HANDLER,
            v1::GiveFeedbackRequest {
                complaint_id: id.into(),
                content: "x".into(),
                satisfied: Some(true),
                ..Default::default()
            },
        ))
        .await
        .expect_err("refused")
}

fn revisit_event(id: &str, payload: Payload) -> v1::Event {
    let mut e = envelope(id, payload);
    e.producer = "revisit".into();
    e
}

fn revisit_completed(id: &str, revisit_id: &str, satisfied: bool) -> v1::Event {
    revisit_event(
        id,
        Payload::RevisitCompleted(v1::RevisitCompleted {
            revisit_id: revisit_id.into(),
            reached: true,
            satisfied,
            kind: v1::RevisitKind::AfterResolution as i32,
            agent_id: "agent-1".into(),
            department_id: "billing".into(),
            ..Default::default()
        }),
    )
}

/// DOMAIN §9 "Closing" (ADR 0018): a resolved complaint is closed once a revisit finds the
/// customer satisfied, or the department manager signs a revisit off — once, however often
/// the revisit events are delivered; a revisit while the complaint is still handled closes
/// nothing.
#[tokio::test]
async fn a_satisfied_revisit_or_a_sign_off_closes_a_resolved_complaint_once() {
    let bed = TestBed::start().await;
    let mut r = routing(&bed, SEED).await;
    let satisfied = billing_complaint(&bed, &mut r).await;
    resolve_with_feedback(&mut r, &satisfied).await;
    let dissatisfied = billing_complaint(&bed, &mut r).await;
    resolve_with_feedback(&mut r, &dissatisfied).await;
    let open = billing_complaint(&bed, &mut r).await;

    let e = revisit_completed(&satisfied, "rvt_1", true);
    bed.publish_event(&e).await;
    bed.publish_event(&e).await; // redelivered
    bed.publish_event(&revisit_completed(&satisfied, "rvt_2", true))
        .await; // a later revisit
    bed.publish_event(&revisit_completed(&open, "rvt_3", true))
        .await;
    bed.publish_event(&revisit_completed(&dissatisfied, "rvt_4", false))
        .await;

    let h = wait_stage(&mut r, &satisfied, "closed").await;
    assert_eq!(h.satisfied, Some(true));
    // The dissatisfied customer's complaint waits for the manager's sign-off: every revisit
    // event published above has been handled by now.
    bed.consumed("routing-intake-events", 10 * SECOND).await;
    let d = handling(&mut r, &dissatisfied).await.expect("h");
    assert_eq!((d.stage.as_str(), d.satisfied), ("resolved", Some(false)));
    assert_eq!(handling(&mut r, &open).await.expect("h").stage, "assigned");
    bed.publish_event(&revisit_event(
        &dissatisfied,
        Payload::RevisitSignedOff(v1::RevisitSignedOff {
            revisit_id: "rvt_4".into(),
            manager_id: "manager-1".into(),
            result: "explained the refund date".into(),
        }),
    ))
    .await;
    wait_stage(&mut r, &dissatisfied, "closed").await;

    // Everything handled and relayed: the closings below are all there will be.
    bed.consumed("routing-intake-events", 10 * SECOND).await;
    bed.outbox_flushed("routing", 10 * SECOND).await;
    let events = bed.events("complaint.closed", 0, Duration::ZERO).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let c = closed_events(&events, &satisfied);
    assert_eq!(c.len(), 1, "closed once");
    assert!(c[0].satisfied);
    assert_eq!(c[0].revisit_id, "rvt_1");
    assert_eq!(
        events
            .iter()
            .find(|e| e.complaint_id == satisfied)
            .map(|e| e.producer.as_str()),
        Some("routing")
    );
    let c = closed_events(&events, &dissatisfied);
    assert_eq!(c.len(), 1);
    assert!(!c[0].satisfied);
    assert!(c[0].note.contains("signed off"), "{}", c[0].note);
}

/// A backlog (here: published while routing was down) is routed in batches — receipts,
/// confirmations and assignments a batch at a time — with the outcome of one message at a
/// time: halves in either order, a reclassification in the middle of the
/// run, the rules, the senior handler for restrained anger, one assignment per complaint, the
/// load counters true, and each event continuing its complaint's trace.
#[tokio::test]
async fn a_backlog_is_routed_in_batches_with_the_outcome_of_one_at_a_time() {
    let bed = TestBed::start().await;
    let mut first = routing(&bed, SEED).await;
    first.svc.terminate(10 * SECOND).await.expect("stopped");

    let mut ids = Vec::new();
    let mut expected = std::collections::HashMap::new();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    for i in 0..150 {
        let id = new_id();
        let mut c = Complaint::default();
        let mut who = "billing";
        if i % 10 == 0 {
            c.customer_type = v1::CustomerType::RestrainedAnger;
            who = "handler-2";
        } else if i % 7 == 0 {
            (c.category, c.channel, c.region) = ("network_quality", v1::Channel::Hotline, "north");
            who = "net-1";
        } else if i % 11 == 0 {
            c.category = "something_else";
            who = "svc-1";
        }
        expected.insert(id.clone(), who);
        match i % 3 {
            // As intake sends a confirmed submission: received (confirmed), classified, confirmed.
            0 => {
                let recv = received(&id, &c);
                if i == 3 {
                    let mut headers = HeaderMap::new();
                    headers.insert(
                        "traceparent",
                        format!("00-{trace_id}-00f067aa0ba902b7-01").as_str(),
                    );
                    bed.publish_event_with(&recv, headers).await;
                } else {
                    bed.publish_event(&recv).await;
                }
                let classified = envelope(
                    &id,
                    Payload::ComplaintClassified(v1::ComplaintClassified {
                        class: c.class as i32,
                        ..Default::default()
                    }),
                );
                bed.publish_event(&classified).await;
                bed.publish_event(&confirmed(&id)).await;
            }
            // Taken unconfirmed, confirmed later.
            1 => {
                c.confirmed = false;
                bed.publish_event(&received(&id, &c)).await;
                bed.publish_event(&confirmed(&id)).await;
            }
            // The confirmation applied before the receipt.
            _ => {
                c.confirmed = false;
                bed.publish_event(&confirmed(&id)).await;
                bed.publish_event(&received(&id, &c)).await;
            }
        }
        ids.push(id);
    }
    // A reclassification in the middle of the run: applied on its own, in its place.
    let reclassified_id = ids[40].clone();
    bed.publish_event(&envelope(
        &reclassified_id,
        Payload::ComplaintReclassified(v1::ComplaintReclassified {
            from_class: v1::Class::C as i32,
            to_class: v1::Class::A as i32,
            reason: "the media called".into(),
            promises: None,
        }),
    ))
    .await;
    for _ in 150..160 {
        let id = new_id();
        bed.publish_event(&received(&id, &Complaint::default()))
            .await;
        expected.insert(id.clone(), "billing");
        ids.push(id);
    }

    let mut r = routing_with(
        &bed,
        SEED,
        &[
            ("REDRESS_CONSUMER_BATCH", "128"),
            ("RUST_LOG", "info,redress_platform=debug"),
        ],
    )
    .await;
    wait_stage(&mut r, ids.last().expect("ids"), "assigned").await;
    let mut conn = all_assigned(&bed).await;
    let assigned = bed.events("complaint.assigned", 160, 20 * SECOND).await;
    assert_eq!(
        bed.events("complaint.assigned", 161, SECOND).await.len(),
        160,
        "one assignment per complaint"
    );
    let mut by_complaint = std::collections::HashMap::new();
    for e in &assigned {
        let Some(Payload::ComplaintAssigned(a)) = &e.payload else {
            panic!("{e:?}");
        };
        assert!(
            by_complaint
                .insert(e.complaint_id.clone(), a.assignee_id.clone())
                .is_none(),
            "assigned twice: {e:?}"
        );
    }
    for (id, who) in &expected {
        let got = by_complaint.get(id).map(String::as_str).unwrap_or("nobody");
        match *who {
            "billing" => assert!(got == "handler-1" || got == "handler-2", "{id}: {got}"),
            person => assert_eq!(got, person, "{id}"),
        }
    }
    let h = handling(&mut r, &reclassified_id).await.expect("handling");
    assert_eq!(h.class, v1::Class::A as i32, "the reclassification kept");
    assert_loads_kept(&mut conn).await;

    // The traced complaint's assignment continues its trace.
    let traced: Vec<_> = bed
        .event_messages("complaint.assigned", 160, SECOND)
        .await
        .into_iter()
        .filter(|m| v1::Event::decode(m.payload.clone()).is_ok_and(|e| e.complaint_id == ids[3]))
        .collect();
    assert_eq!(traced.len(), 1);
    let traceparent = traced[0]
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    assert!(traceparent.contains(trace_id), "{traceparent:?}");

    // Batches were used, and none fell back to one message at a time.
    let c = r
        .svc
        .consumed("routing-intake-events", 311.0, 10 * SECOND)
        .await;
    // 50 × 2 (routing does not subscribe to `classified`) + 100 × 2 + the reclassification + 10.
    assert_eq!(c.messages, 311.0, "{}", c.page);
    assert!(
        c.batches < c.messages / 4.0,
        "{} batches for {} messages",
        c.batches,
        c.messages
    );
    let logs = r.svc.logs();
    assert!(!logs.contains("batch failed"), "{logs}");
}

/// Complaint ids are parsed where an event is decoded: a receipt or a confirmation naming no
/// complaint is set aside as a dead letter, once each, and the arrivals around it in the same
/// backlog are routed as if it were not there.
#[tokio::test]
async fn an_arrival_naming_no_complaint_is_dead_lettered_and_its_neighbours_are_routed() {
    let bed = TestBed::start().await;
    // A first start makes the streams; the backlog then waits for the second.
    let mut first = routing(&bed, SEED).await;
    first.svc.terminate(10 * SECOND).await.expect("stopped");
    let before = new_id();
    let after = new_id();
    let malformed = "cmp_not-an-id";
    bed.publish_event(&received(&before, &Complaint::default()))
        .await;
    bed.publish_event(&confirmed(&before)).await;
    bed.publish_event(&received(malformed, &Complaint::default()))
        .await;
    bed.publish_event(&confirmed(malformed)).await;
    bed.publish_event(&received(&after, &Complaint::default()))
        .await;
    bed.publish_event(&confirmed(&after)).await;

    let mut r = routing_with(&bed, SEED, &[("REDRESS_CONSUMER_BATCH", "128")]).await;
    assert_eq!(
        wait_stage(&mut r, &before, "assigned").await.department_id,
        "billing"
    );
    assert_eq!(
        wait_stage(&mut r, &after, "assigned").await.department_id,
        "billing"
    );
    let dead = bed.dead_letters(2, 10 * SECOND).await;
    assert_eq!(dead.len(), 2);
    for d in &dead {
        assert_eq!(
            d.subject.as_str(),
            format!("{}.deadletter.routing-intake-events", bed.prefix)
        );
        let reason = dead_letter_reason(d);
        assert!(reason.contains(malformed), "{reason}");
    }
    assert!(
        handling(&mut r, malformed).await.is_none(),
        "the malformed id has no handling"
    );
}
