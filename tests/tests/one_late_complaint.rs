//! DOMAIN §9 on the whole system: a late complaint is one fine and one climb, not one per clock;
//! threatening and venting-anger customers go up at once, once; a complaint nobody has confirmed
//! yet still reaches a person (the complaint centre's manager) when it is late, and one left
//! unconfirmed past its confirmation limit is escalated to that manager.
//!
//! All five services as processes on a real NATS JetStream and PostgreSQL, with limits of
//! seconds: first feedback 2 s, intermediate result 3 s (half of completion), completion 6 s,
//! "still unresolved" 3 s after that.

mod common;

use std::time::Duration;

use prost_types::Timestamp;
use redress_proto::v1::{
    self, escalation_service_client::EscalationServiceClient, event::Payload,
    intake_service_client::IntakeServiceClient,
    sla_monitor_service_client::SlaMonitorServiceClient,
};
use redress_test_support::{TestBed, authed};

const WAIT: Duration = Duration::from_secs(40);

const POLICY: &str = r#"
[limits]
acceptance = "60s"
warning_share = 0.5
intermediate_share = 0.5
[limits.completion]
A = "6s"
B = "6s"
C = "6s"
D = "6s"
[limits.first_feedback]
A = "2s"
B = "2s"
C = "2s"
D = "2s"
[escalation]
l2_after = "3s"
unacknowledged_resend_after = "10m"
unacknowledged_raise_after = "1h"
"#;

fn raised(e: &v1::Event) -> &v1::EscalationRaised {
    match &e.payload {
        Some(Payload::EscalationRaised(r)) => r,
        other => panic!("not an escalation.raised: {other:?}"),
    }
}

fn millis(t: Option<&Timestamp>) -> i64 {
    let t = t.expect("timestamp");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

#[tokio::test]
async fn an_untouched_complaint_is_one_fine_one_manager_notification_and_the_gm_after_completion() {
    let bed = TestBed::start().await;
    let stack = common::start_with(&bed, POLICY, &common::seed_with_centre(), &[]).await;
    let id = common::submit(&bed, &stack, common::complaint("late-1")).await;

    // Nobody acts: first feedback (2 s), intermediate result (3 s) and completion (6 s) are missed.
    let overdue = bed.events_of("sla.overdue", &id, 3, WAIT).await;
    let completion = overdue
        .iter()
        .find(|e| {
            matches!(&e.payload, Some(Payload::SlaOverdue(o))
                if o.clock() == v1::SlaClock::Completion)
        })
        .unwrap_or_else(|| panic!("completion overdue among {overdue:?}"));

    // The general manager, once, the set time (3 s) after the completion limit was missed.
    let escalations = bed.events_of("escalation.raised", &id, 2, WAIT).await;
    let to_gm: Vec<_> = escalations
        .iter()
        .filter(|e| raised(e).recipient_id == "gm-1")
        .collect();
    assert_eq!(to_gm.len(), 1, "{escalations:?}");
    assert!(
        millis(to_gm[0].occurred_at.as_ref())
            >= millis(completion.occurred_at.as_ref()) + 3_000 - 50,
        "the general manager came in before completion was overdue + l2_after: {to_gm:?} vs \
         {completion:?}"
    );
    assert_eq!(
        raised(to_gm[0]).trigger(),
        v1::EscalationTrigger::UnresolvedAfterL1
    );

    // Everything that came of the missed limits handled and relayed, no step due for a while
    // (acceptance warns at 30 s): a duplicate would be on the stream now.
    common::settled(&bed, &[&id], Duration::from_secs(10)).await;
    let escalations = bed.events_of("escalation.raised", &id, 2, WAIT).await;
    let to_manager: Vec<_> = escalations
        .iter()
        .filter(|e| raised(e).recipient_id == "manager-1")
        .collect();
    assert_eq!(
        to_manager.len(),
        1,
        "one manager notification for three missed limits: {escalations:?}"
    );
    assert_eq!(escalations.len(), 2, "{escalations:?}");

    // One lateness fine: the completion limit's class-D record, nothing for the others.
    let records: Vec<_> = bed
        .events_of("accountability.recorded", &id, 1, WAIT)
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::AccountabilityRecorded(r)) if e.producer == "sla-monitor" => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].clock(), v1::SlaClock::Completion);
    assert_eq!(records[0].class_counted(), v1::Class::D);

    // The manager's one escalation shows every limit it gathered.
    let mut client = EscalationServiceClient::new(bed.channel(&stack.escalation).await);
    let listed = client
        .list_escalations(authed(
            "test-gm-token",
            v1::ListEscalationsRequest {
                complaint_id: id.clone(),
                recipient_id: "manager-1".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner()
        .escalations;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let clocks: Vec<_> = listed[0].causes.iter().map(|c| c.clock()).collect();
    assert_eq!(
        clocks,
        vec![
            v1::SlaClock::FirstFeedback,
            v1::SlaClock::IntermediateResult,
            v1::SlaClock::Completion
        ],
        "{listed:?}"
    );
}

/// DOMAIN §9 for class A: "class A overdue → both", and only for its completion limit (ADR 0012
/// amended). Its missed first feedback and intermediate result reach the department manager
/// alone; the general manager is told when completion is missed, at once rather than the set
/// time later, and once.
#[tokio::test]
async fn a_late_class_a_complaint_reaches_the_gm_only_at_its_completion_limit() {
    let bed = TestBed::start().await;
    let stack = common::start_with(&bed, POLICY, &common::seed_with_centre(), &[]).await;
    let id = common::submit(
        &bed,
        &stack,
        v1::ComplaintDetails {
            company_loss_fen: 300_001,
            ..common::complaint("late-a")
        },
    )
    .await;
    let overdue = bed.events_of("sla.overdue", &id, 3, WAIT).await;
    let at = |clock: v1::SlaClock| {
        overdue
            .iter()
            .find(|e| matches!(&e.payload, Some(Payload::SlaOverdue(o)) if o.clock() == clock))
            .map(|e| millis(e.occurred_at.as_ref()))
            .unwrap_or_else(|| panic!("{clock:?} overdue among {overdue:?}"))
    };
    let completion = at(v1::SlaClock::Completion);
    assert!(at(v1::SlaClock::FirstFeedback) < completion);

    common::settled(&bed, &[&id], Duration::from_secs(10)).await;
    let escalations = bed.events_of("escalation.raised", &id, 2, WAIT).await;
    let to = |who: &str| -> Vec<&v1::Event> {
        escalations
            .iter()
            .filter(|e| raised(e).recipient_id == who)
            .collect()
    };
    assert_eq!(to("manager-1").len(), 1, "{escalations:?}");
    assert!(
        millis(to("manager-1")[0].occurred_at.as_ref()) < completion,
        "the manager came in at the first missed limit: {escalations:?}"
    );
    let gm = to("gm-1");
    assert_eq!(gm.len(), 1, "{escalations:?}");
    assert!(
        millis(gm[0].occurred_at.as_ref()) >= completion,
        "not before completion was missed: {escalations:?}"
    );
    assert_eq!(
        raised(gm[0]).trigger(),
        v1::EscalationTrigger::ClassAOverdue,
        "class A's completion overdue itself, not the unresolved-after-level-1 climb"
    );
    assert_eq!(raised(gm[0]).clock(), v1::SlaClock::Completion);
    assert_eq!(escalations.len(), 2, "{escalations:?}");
}

/// Every limit an hour away: whatever reaches a superior while the test looks came of the
/// customer, not of a clock.
const QUIET_POLICY: &str = r#"
[limits]
acceptance = "1h"
confirmation = "1h"
[limits.completion]
A = "1h"
B = "1h"
C = "1h"
D = "1h"
[limits.first_feedback]
A = "1h"
B = "1h"
C = "1h"
D = "1h"
[escalation]
l2_after = "1h"
unacknowledged_resend_after = "1h"
unacknowledged_raise_after = "1h"
"#;

/// Who was told of a complaint, and as what, sorted.
fn told(escalations: &[v1::Event]) -> Vec<(String, v1::EscalationTrigger)> {
    let mut got: Vec<_> = escalations
        .iter()
        .map(|e| (raised(e).recipient_id.clone(), raised(e).trigger()))
        .collect();
    got.sort();
    got
}

/// DOMAIN §9 "Superior at once": a threatening or venting-anger customer reaches the routed
/// department's manager (the complaint centre's before routing) and the general manager at
/// once, before any limit passed — once per complaint, whichever of receipt or routing comes
/// first.
#[tokio::test]
async fn threatening_and_venting_anger_customers_reach_their_superiors_at_once_and_once() {
    let bed = TestBed::start().await;
    let stack = common::start_with(&bed, QUIET_POLICY, &common::seed_with_centre(), &[]).await;
    let customer = |kind: v1::CustomerType, external_id: &str| v1::ComplaintDetails {
        customer_type: kind as i32,
        ..common::complaint(external_id)
    };
    let threat = common::submit(
        &bed,
        &stack,
        customer(v1::CustomerType::Threatening, "threat-1"),
    )
    .await;
    let venting = common::submit(
        &bed,
        &stack,
        customer(v1::CustomerType::VentingAnger, "vent-1"),
    )
    .await;
    // Not yet confirmed, so not routed: the complaint centre's manager is the superior.
    let unrouted = common::submit(
        &bed,
        &stack,
        v1::ComplaintDetails {
            confirmation: None,
            ..customer(v1::CustomerType::VentingAnger, "vent-unconfirmed")
        },
    )
    .await;
    use v1::EscalationTrigger::{ThreateningCustomer, VentingAnger};
    for (id, trigger, manager) in [
        (&threat, ThreateningCustomer, "manager-1"),
        (&venting, VentingAnger, "manager-1"),
        (&unrouted, VentingAnger, "centre-1"),
    ] {
        let escalations = bed.events_of("escalation.raised", id, 2, WAIT).await;
        let mut expected = vec![("gm-1".to_owned(), trigger), (manager.to_owned(), trigger)];
        expected.sort();
        assert_eq!(
            told(&escalations),
            expected,
            "{trigger:?}: the superior and the general manager, before any limit passed"
        );
    }

    // Confirmed and routed later, the unconfirmed one is not raised a second time.
    let mut intake = IntakeServiceClient::new(bed.channel(&stack.intake).await);
    intake
        .confirm(authed(
            "test-agent-token",
            v1::ConfirmRequest {
                complaint_id: unrouted.clone(),
                confirmation: Some(v1::Confirmation {
                    method: v1::ConfirmationMethod::Phone as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("confirm");
    bed.events_of("complaint.assigned", &unrouted, 1, WAIT)
        .await;
    common::settled(
        &bed,
        &[&threat, &venting, &unrouted],
        Duration::from_secs(5),
    )
    .await;
    for (id, trigger, manager) in [
        (&threat, ThreateningCustomer, "manager-1"),
        (&venting, VentingAnger, "manager-1"),
        (&unrouted, VentingAnger, "centre-1"),
    ] {
        let escalations = bed.events_of("escalation.raised", id, 2, WAIT).await;
        let mut expected = vec![("gm-1".to_owned(), trigger), (manager.to_owned(), trigger)];
        expected.sort();
        assert_eq!(
            told(&escalations),
            expected,
            "{trigger:?}: once per complaint"
        );
    }
    let mut conn = bed.db.connect().await;
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM escalation.dead_letters")
        .fetch_one(&mut conn)
        .await
        .expect("dead letters");
    assert_eq!(dead, 0);
}

#[tokio::test]
async fn a_late_unconfirmed_complaint_goes_to_the_complaint_centres_manager() {
    let bed = TestBed::start().await;
    let stack = common::start_with(&bed, POLICY, &common::seed_with_centre(), &[]).await;
    let id = common::submit(
        &bed,
        &stack,
        v1::ComplaintDetails {
            confirmation: None,
            ..common::complaint("unconfirmed-1")
        },
    )
    .await;
    let escalations = bed.events_of("escalation.raised", &id, 1, WAIT).await;
    assert!(
        escalations
            .iter()
            .any(|e| raised(e).recipient_id == "centre-1"),
        "the centre's manager is told of the unconfirmed complaint's missed limit: {escalations:?}"
    );
}

/// A confirmation limit of 2 s; every other limit far enough away that only the confirmation can
/// be missed while the test looks.
const CONFIRMATION_POLICY: &str = r#"
[limits]
acceptance = "120s"
confirmation = "2s"
warning_share = 0.5
intermediate_share = 0.5
[limits.completion]
A = "120s"
B = "120s"
C = "120s"
D = "120s"
[limits.first_feedback]
A = "120s"
B = "120s"
C = "120s"
D = "120s"
[escalation]
l2_after = "1s"
unacknowledged_resend_after = "10m"
unacknowledged_raise_after = "2s"
"#;

async fn unconfirmed(bed: &TestBed, stack: &common::Stack, external_id: &str) -> String {
    common::submit(
        bed,
        stack,
        v1::ComplaintDetails {
            confirmation: None,
            ..common::complaint(external_id)
        },
    )
    .await
}

fn overdue_clocks(events: &[v1::Event]) -> Vec<v1::SlaClock> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::SlaOverdue(o)) => Some(o.clock()),
            _ => None,
        })
        .collect()
}

async fn confirmation_clock(
    bed: &TestBed,
    stack: &common::Stack,
    id: &str,
) -> Option<v1::ClockStatus> {
    let mut sla = SlaMonitorServiceClient::new(bed.channel(&stack.sla).await);
    sla.get_sla_status(authed(
        "test-agent-token",
        v1::GetSlaStatusRequest {
            complaint_id: id.to_owned(),
        },
    ))
    .await
    .expect("sla status")
    .into_inner()
    .clocks
    .into_iter()
    .find(|c| c.clock() == v1::SlaClock::Confirmation)
}

/// DOMAIN §9: "one still unconfirmed at its confirmation limit (default 1 h) is escalated to
/// that manager" — the complaint centre's — without a fine, and never on to the general manager
/// on its own.
#[tokio::test]
async fn a_complaint_left_unconfirmed_past_its_limit_goes_to_the_centres_manager_only() {
    let bed = TestBed::start().await;
    let stack =
        common::start_with(&bed, CONFIRMATION_POLICY, &common::seed_with_centre(), &[]).await;
    let id = unconfirmed(&bed, &stack, "unconfirmed-late").await;

    let overdue = bed.events_of("sla.overdue", &id, 1, WAIT).await;
    assert_eq!(
        overdue_clocks(&overdue),
        vec![v1::SlaClock::Confirmation],
        "{overdue:?}"
    );
    let escalations = bed.events_of("escalation.raised", &id, 1, WAIT).await;
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    let r = raised(&escalations[0]);
    assert_eq!(r.recipient_id, "centre-1", "{r:?}");
    assert_eq!(r.level, 1, "{r:?}");
    assert_eq!(r.trigger(), v1::EscalationTrigger::SlaOverdue, "{r:?}");
    assert_eq!(r.clock(), v1::SlaClock::Confirmation, "{r:?}");

    // The monitor shows the clock overdue.
    let clock = confirmation_clock(&bed, &stack, &id)
        .await
        .expect("GetSlaStatus lists the confirmation clock");
    assert_eq!(clock.state(), v1::ClockState::Overdue, "{clock:?}");

    // Past l2_after and the unacknowledged raise time: still only the centre's manager, and no
    // accountability record (a missed confirmation is not fined).
    // Settled: nothing due within 10 s (past both), everything that came of it relayed.
    common::settled(&bed, &[&id], Duration::from_secs(10)).await;
    let escalations = bed.events_of("escalation.raised", &id, 1, WAIT).await;
    assert!(
        escalations
            .iter()
            .all(|e| raised(e).recipient_id == "centre-1"),
        "nobody but the centre's manager: {escalations:?}"
    );
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    let records = bed.events_of("accountability.recorded", &id, 0, WAIT).await;
    assert!(records.is_empty(), "{records:?}");

    // The centre manager's escalation lists the missed confirmation.
    let mut client = EscalationServiceClient::new(bed.channel(&stack.escalation).await);
    let listed = client
        .list_escalations(authed(
            "test-gm-token",
            v1::ListEscalationsRequest {
                complaint_id: id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner()
        .escalations;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let clocks: Vec<_> = listed[0].causes.iter().map(|c| c.clock()).collect();
    assert_eq!(clocks, vec![v1::SlaClock::Confirmation], "{listed:?}");
}

/// Confirmed within its limit: the confirmation clock is met, nothing goes overdue, nobody is
/// told. Confirmed at receipt: no confirmation clock at all.
#[tokio::test]
async fn a_complaint_confirmed_in_time_or_at_receipt_has_no_confirmation_overdue() {
    let bed = TestBed::start().await;
    let stack =
        common::start_with(&bed, CONFIRMATION_POLICY, &common::seed_with_centre(), &[]).await;
    let id = unconfirmed(&bed, &stack, "unconfirmed-in-time").await;
    let at_receipt = common::submit(&bed, &stack, common::complaint("confirmed-at-receipt")).await;

    let mut intake = IntakeServiceClient::new(bed.channel(&stack.intake).await);
    intake
        .confirm(authed(
            "test-agent-token",
            v1::ConfirmRequest {
                complaint_id: id.clone(),
                confirmation: Some(v1::Confirmation {
                    method: v1::ConfirmationMethod::Phone as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("confirm");

    // Routed once confirmed; by then the clock is met.
    bed.events_of("complaint.routed", &id, 1, WAIT).await;
    // Settled past the 2 s limit: no clock due within 10 s, everything that came of it relayed.
    common::settled(&bed, &[&id, &at_receipt], Duration::from_secs(10)).await;
    let overdue = bed.events_of("sla.overdue", &id, 0, WAIT).await;
    assert!(overdue.is_empty(), "{overdue:?}");
    let escalations = bed.events_of("escalation.raised", &id, 0, WAIT).await;
    assert!(escalations.is_empty(), "{escalations:?}");
    let clock = confirmation_clock(&bed, &stack, &id)
        .await
        .expect("the unconfirmed complaint had a confirmation clock");
    assert_eq!(clock.state(), v1::ClockState::Met, "{clock:?}");

    assert_eq!(confirmation_clock(&bed, &stack, &at_receipt).await, None);
    let overdue = bed.events_of("sla.overdue", &at_receipt, 0, WAIT).await;
    assert!(overdue.is_empty(), "{overdue:?}");
}

#[tokio::test]
async fn a_complaint_no_rule_routes_waits_with_the_complaint_centre_whose_manager_is_told() {
    let bed = TestBed::start().await;
    // The organisation without a default department: only the broadband rule routes.
    // No default department and no rule: nothing the organisation says routes a complaint.
    let seed = common::seed_with_centre()
        .replace("default_department = \"dept-network\"\n", "")
        .replace(
            "[[rules]]\nid = \"broadband\"\ncategory = \"network_quality\"\n\
             department_id = \"dept-network\"\n",
            "",
        );
    assert!(!seed.contains("[[rules]]"), "{seed}");
    assert!(!seed.contains("default_department"), "{seed}");
    let stack = common::start_with(&bed, common::POLICY, &seed, &[]).await;
    let id = common::submit(
        &bed,
        &stack,
        v1::ComplaintDetails {
            category: "billing_dispute".into(),
            ..common::complaint("unroutable-1")
        },
    )
    .await;
    let routed = bed.events_of("complaint.routed", &id, 1, WAIT).await;
    let Some(Payload::ComplaintRouted(r)) = routed.first().and_then(|e| e.payload.as_ref()) else {
        panic!("routed to the centre, not dead-lettered: {routed:?}")
    };
    assert_eq!(r.department_id, "dept-centre");
    let escalations = bed.events_of("escalation.raised", &id, 1, WAIT).await;
    assert!(
        escalations
            .iter()
            .any(|e| raised(e).recipient_id == "centre-1" && raised(e).level == 1),
        "the centre's manager is told: {escalations:?}"
    );
    assert!(
        escalations.iter().all(|e| raised(e).recipient_id != "gm-1"),
        "{escalations:?}"
    );
    let mut conn = bed.db.connect().await;
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.dead_letters")
        .fetch_one(&mut conn)
        .await
        .expect("dead letters");
    assert_eq!(dead, 0);
}
