//! The SLA monitor as a process, against real NATS JetStream and PostgreSQL. The tests play
//! intake, routing and revisit by publishing their events, with a policy of limits in seconds.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redress_domain::{ComplaintId, EventId};
use redress_proto::v1::{
    self, event::Payload, sla_monitor_service_client::SlaMonitorServiceClient,
};
use redress_test_support::{
    ClockControl, ServiceProcess, TestBed, authed, envelope, eventually, poll,
};
use tonic::Code;

const SECOND: Duration = Duration::from_secs(1);
const MANAGER: &str = "test-manager-token";
/// Reads every complaint, routed or not (docs/access.md).
const GM: &str = "test-gm-token";

/// Limits of seconds; warnings at half of each limit. First feedback is capped by completion.
const POLICY: &str = r#"
[limits]
acceptance = "2s"
warning_share = 0.5
intermediate_share = 0.5
[limits.completion]
A = "3s"
B = "6s"
C = "20s"
D = "20s"
[limits.first_feedback]
A = "3d"
B = "3d"
C = "3d"
D = "3d"
"#;

struct Policy(std::path::PathBuf);

impl Policy {
    fn write() -> Self {
        Self::write_text(POLICY)
    }
    fn write_text(text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("sla-policy-{}.toml", uuid::Uuid::now_v7()));
        std::fs::write(&path, text).expect("write policy");
        Self(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn monitor(bed: &TestBed, policy: &Policy) -> ServiceProcess {
    bed.spawn(
        "redress-sla-monitor",
        &[
            ("REDRESS_POLICY_FILE", policy.path()),
            ("REDRESS_SLA_MAX_SLEEP_MS", "200"),
            // A replica killed mid-batch leaves its messages unacknowledged: they go to the
            // other replica after this (the default, 30 s, would outlast the test's waits).
            ("REDRESS_ACK_WAIT_SECS", "3"),
        ],
    )
    .await
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn time(t: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.as_ref().expect("timestamp");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid")
}

/// Publishes an event as another service would, at `at`.
async fn publish_at(bed: &TestBed, complaint_id: &str, at: DateTime<Utc>, payload: Payload) {
    let e = envelope(
        EventId::new().to_string(),
        complaint_id,
        "test",
        ts(at),
        payload,
    );
    bed.publish_event(&e).await;
}

async fn publish(bed: &TestBed, complaint_id: &str, payload: Payload) {
    publish_at(bed, complaint_id, Utc::now(), payload).await
}

/// A complaint received now, class `class`, without promises (the monitor takes the policy's).
async fn receive(bed: &TestBed, class: v1::Class) -> (String, DateTime<Utc>) {
    let id = ComplaintId::new().to_string();
    let at = Utc::now();
    publish_at(
        bed,
        &id,
        at,
        Payload::ComplaintReceived(v1::ComplaintReceived {
            complaint_number: format!("RD-{}", &id[id.len() - 6..]),
            class: class as i32,
            confirmed: true,
            ..Default::default()
        }),
    )
    .await;
    (id, at)
}

async fn route_and_assign(bed: &TestBed, id: &str) {
    publish(
        bed,
        id,
        Payload::ComplaintRouted(v1::ComplaintRouted {
            department_id: "dep-1".into(),
            acceptance_owner_id: "owner-1".into(),
            department_manager_id: "manager-1".into(),
            ..Default::default()
        }),
    )
    .await;
    publish(
        bed,
        id,
        Payload::ComplaintAssigned(v1::ComplaintAssigned {
            department_id: "dep-1".into(),
            assignee_id: "handler-1".into(),
            ..Default::default()
        }),
    )
    .await;
}

/// SLA events of a kind, grouped by (complaint, clock).
fn per_clock(events: &[v1::Event]) -> HashMap<(String, i32), Vec<&v1::Event>> {
    let mut out: HashMap<(String, i32), Vec<&v1::Event>> = HashMap::new();
    for e in events {
        let clock = match &e.payload {
            Some(Payload::SlaWarning(w)) => w.clock,
            Some(Payload::SlaOverdue(o)) => o.clock,
            _ => continue,
        };
        out.entry((e.complaint_id.clone(), clock))
            .or_default()
            .push(e);
    }
    out
}

fn of(events: &[v1::Event], id: &str) -> Vec<v1::Event> {
    events
        .iter()
        .filter(|e| e.complaint_id == id)
        .cloned()
        .collect()
}

/// Waits until the monitor has handled every event published so far, no clock of `ids` (of
/// `kind`, when given) is due to fire within the next minute, and its outbox is relayed: the SLA
/// events about them on the stream are then all there will be, without a fixed wait.
async fn settled(bed: &TestBed, ids: &[&str], kind: Option<&str>) {
    bed.consumed("sla-monitor-clocks", 30 * SECOND).await;
    let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    let mut conn = bed.db.connect().await;
    eventually("the clocks to have nothing due", 30 * SECOND, async || {
        let due: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sla_monitor.clocks
              WHERE complaint_id = ANY($1) AND ($2::TEXT IS NULL OR kind = $2)
                AND next_fire_at < now() + interval '1 minute'",
        )
        .bind(&ids)
        .bind(kind)
        .fetch_one(&mut conn)
        .await
        .ok()?;
        (due == 0).then_some(())
    })
    .await;
    bed.outbox_flushed("sla_monitor", 10 * SECOND).await;
}

const ALL_FOUR: [v1::SlaClock; 4] = [
    v1::SlaClock::Acceptance,
    v1::SlaClock::FirstFeedback,
    v1::SlaClock::Completion,
    v1::SlaClock::IntermediateResult,
];

#[tokio::test]
async fn every_clock_warns_then_goes_overdue_once_with_an_accountability_record() {
    let bed = TestBed::start().await;
    let policy = Policy::write();
    let svc = monitor(&bed, &policy).await;
    let (id, received) = receive(&bed, v1::Class::A).await;
    route_and_assign(&bed, &id).await;
    let revisit_due = Utc::now() + chrono::Duration::seconds(2);
    publish(
        &bed,
        &id,
        Payload::RevisitScheduled(v1::RevisitScheduled {
            revisit_id: "rvt_1".into(),
            due_at: Some(ts(revisit_due)),
            agent_id: "agent-7".into(),
            department_id: "dep-1".into(),
            ..Default::default()
        }),
    )
    .await;

    let overdue = bed.events("sla.overdue", 5, 20 * SECOND).await;
    let warnings = bed.events("sla.warning", 5, 5 * SECOND).await;
    let records = bed.events("accountability.recorded", 3, 5 * SECOND).await;
    let by_clock_o = per_clock(&overdue);
    let by_clock_w = per_clock(&warnings);
    for clock in ALL_FOUR.into_iter().chain([v1::SlaClock::Revisit]) {
        let key = (id.clone(), clock as i32);
        assert_eq!(
            by_clock_w.get(&key).map(Vec::len),
            Some(1),
            "{clock:?} warning: {}",
            svc.logs()
        );
        assert_eq!(
            by_clock_o.get(&key).map(Vec::len),
            Some(1),
            "{clock:?} overdue"
        );
        let o = by_clock_o[&key][0];
        let Some(Payload::SlaOverdue(p)) = &o.payload else {
            panic!()
        };
        let due = time(&p.due_at);
        // Never before the limit; the lateness bound is the benchmark's business.
        assert!(time(&o.occurred_at) > due, "{clock:?} fired early");
        let w = by_clock_w[&key][0];
        assert!(time(&w.occurred_at) < due + chrono::Duration::seconds(1));
        assert_eq!(p.department_id, "dep-1");
        assert_eq!(p.class, v1::Class::A as i32);
        let expected_person = match clock {
            v1::SlaClock::Acceptance => "owner-1",
            v1::SlaClock::Revisit => "agent-7",
            _ => "handler-1",
        };
        assert_eq!(p.responsible_person_id, expected_person, "{clock:?}");
        assert_eq!(p.overdue_day, u32::from(clock == v1::SlaClock::Acceptance));
        // The accountability record follows from this overdue — for completion, acceptance
        // and the revisit only: a missed first-feedback or intermediate-result limit is
        // escalated, not fined (DOMAIN §9 "One lateness fine per complaint").
        let rec: Vec<_> = records
            .iter()
            .filter(|r| r.causation_id == o.event_id)
            .collect();
        if matches!(
            clock,
            v1::SlaClock::FirstFeedback | v1::SlaClock::IntermediateResult
        ) {
            assert!(rec.is_empty(), "{clock:?} is not fined: {rec:?}");
            continue;
        }
        assert_eq!(rec.len(), 1, "{clock:?} accountability");
        let Some(Payload::AccountabilityRecorded(a)) = &rec[0].payload else {
            panic!()
        };
        assert_eq!(a.person_id, expected_person);
        if clock == v1::SlaClock::Acceptance {
            assert_eq!(a.reason(), v1::AccountabilityReason::LateAcceptance);
            assert_eq!((a.days, a.amount_fen), (1, 10_000));
        } else {
            assert_eq!(a.reason(), v1::AccountabilityReason::Overdue);
            assert_eq!((a.class_counted(), a.amount_fen), (v1::Class::D, 5_000));
        }
    }
    // Due times follow the policy: acceptance 2 s, completion 3 s, intermediate at half.
    let due = |c: v1::SlaClock| {
        let Some(Payload::SlaOverdue(p)) = &by_clock_o[&(id.clone(), c as i32)][0].payload else {
            panic!()
        };
        (time(&p.due_at) - received).num_milliseconds()
    };
    // PostgreSQL keeps microseconds: allow the rounding of the received time.
    let near = |ms: i64, want: i64| assert!((ms - want).abs() <= 1, "{ms} ms, expected {want}");
    near(due(v1::SlaClock::Acceptance), 2000);
    near(due(v1::SlaClock::Completion), 3000);
    near(due(v1::SlaClock::FirstFeedback), 3000);
    near(due(v1::SlaClock::IntermediateResult), 1500);

    // The status shows each clock overdue, with negative time left.
    let mut client = SlaMonitorServiceClient::new(bed.channel(&svc).await);
    let status = client
        .get_sla_status(authed(
            MANAGER,
            v1::GetSlaStatusRequest {
                complaint_id: id.clone(),
            },
        ))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.clocks.len(), 5);
    assert!(
        status
            .clocks
            .iter()
            .all(|c| c.state() == v1::ClockState::Overdue)
    );
    assert!(
        status
            .clocks
            .iter()
            .all(|c| c.time_left.as_ref().expect("left").seconds <= 0)
    );
    assert_eq!(status.clocks[0].overdue_days, 1);
    // Paged by two: the handler's complaint has five overdue clocks.
    let mut token = String::new();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_overdue(authed(
                MANAGER,
                v1::ListOverdueRequest {
                    department_id: "dep-1".into(),
                    class: v1::Class::A as i32,
                    handler_id: "handler-1".into(),
                    page: Some(v1::PageRequest {
                        page_size: 2,
                        page_token: token,
                    }),
                },
            ))
            .await
            .expect("list")
            .into_inner();
        pages += 1;
        seen.extend(
            page.items
                .into_iter()
                .map(|i| i.clock.expect("clock").clock),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!((pages, seen.len()), (3, 5), "{seen:?}");
    // Most overdue first: the intermediate result fell first.
    assert_eq!(seen[0], v1::SlaClock::IntermediateResult as i32);
    let other = client
        .list_overdue(authed(
            MANAGER,
            v1::ListOverdueRequest {
                department_id: "dep-2".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("other department")
        .into_inner();
    assert!(other.items.is_empty());
    let err = client
        .get_sla_status(authed(
            MANAGER,
            v1::GetSlaStatusRequest {
                complaint_id: "nope".into(),
            },
        ))
        .await
        .expect_err("bad id");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("complaint_id"));
}

#[tokio::test]
async fn reclassification_moves_resolution_stops_and_reopening_restarts() {
    let bed = TestBed::start().await;
    let policy = Policy::write();
    let _svc = monitor(&bed, &policy).await;

    // C (20 s) reclassified to A (3 s): the completion deadline moves to received + 3 s.
    let (moved, moved_at) = receive(&bed, v1::Class::C).await;
    publish(
        &bed,
        &moved,
        Payload::ComplaintReclassified(v1::ComplaintReclassified {
            from_class: v1::Class::C as i32,
            to_class: v1::Class::A as i32,
            reason: "media risk".into(),
            promises: None,
        }),
    )
    .await;

    // A, every step done in time, then resolved: nothing fires.
    let (done, _) = receive(&bed, v1::Class::A).await;
    route_and_assign(&bed, &done).await;
    for p in [
        Payload::AcceptedByDepartment(v1::AcceptedByDepartment::default()),
        Payload::FeedbackGiven(v1::FeedbackGiven {
            sequence: 1,
            ..Default::default()
        }),
        Payload::Resolved(v1::Resolved {
            result: "fixed".into(),
            ..Default::default()
        }),
    ] {
        publish(&bed, &done, p).await;
    }

    let overdue = bed.events_of("sla.overdue", &moved, 4, 15 * SECOND).await;
    let completion = overdue
        .iter()
        .find(|e| {
            e.complaint_id == moved
                && matches!(&e.payload, Some(Payload::SlaOverdue(o)) if o.clock() == v1::SlaClock::Completion)
        })
        .expect("moved completion overdue");
    let Some(Payload::SlaOverdue(o)) = &completion.payload else {
        panic!()
    };
    assert!(((time(&o.due_at) - moved_at).num_milliseconds() - 3000).abs() <= 1);

    // Resolved in time: none of its clocks fired, and none is left to fire.
    settled(&bed, &[&done], None).await;
    let all = bed.events("sla.>", 0, SECOND).await;
    assert!(of(&all, &done).is_empty(), "{:?}", of(&all, &done));

    // Reopened: completion and intermediate run again from the reopening.
    let reopened_at = Utc::now();
    publish_at(
        &bed,
        &done,
        reopened_at,
        Payload::Reopened(v1::Reopened::default()),
    )
    .await;
    let overdue = bed.events_of("sla.overdue", &done, 2, 15 * SECOND).await;
    let again = per_clock(&overdue);
    assert_eq!(again.len(), 2, "{again:?}");
    let c = &again[&(done.clone(), v1::SlaClock::Completion as i32)];
    assert_eq!(c.len(), 1);
    let Some(Payload::SlaOverdue(o)) = &c[0].payload else {
        panic!()
    };
    assert!(((time(&o.due_at) - reopened_at).num_milliseconds() - 3000).abs() <= 1);
    assert!(again.contains_key(&(done.clone(), v1::SlaClock::IntermediateResult as i32)));
    // Closed: the reopened clocks stop; the restarted run already fired, nothing more.
    publish(&bed, &done, Payload::Closed(v1::Closed::default())).await;
}

#[tokio::test]
async fn a_special_reason_means_no_accountability_record() {
    let bed = TestBed::start().await;
    let policy = Policy::write();
    let svc = monitor(&bed, &policy).await;
    let (id, _) = receive(&bed, v1::Class::B).await; // completion 6 s
    route_and_assign(&bed, &id).await;
    let mut client = SlaMonitorServiceClient::new(bed.channel(&svc).await);
    // Wait for the clocks to exist.
    eventually("the complaint's clocks", 5 * SECOND, async || {
        client
            .get_sla_status(authed(
                MANAGER,
                v1::GetSlaStatusRequest {
                    complaint_id: id.clone(),
                },
            ))
            .await
            .ok()
    })
    .await;
    let request = |reason: &str, approved_by: &str| v1::RecordSpecialReasonRequest {
        complaint_id: id.clone(),
        clock: v1::SlaClock::Completion as i32,
        reason: reason.into(),
        approved_by: approved_by.into(),
        extended_due_at: None,
    };
    let err = client
        .record_special_reason(authed(MANAGER, request("", "manager-1")))
        .await
        .expect_err("no reason");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("reason"), "{}", err.message());
    let err = client
        .record_special_reason(authed("test-handler-token", request("parts", "manager-1")))
        .await
        .expect_err("a handler may not approve");
    assert_eq!(err.code(), Code::PermissionDenied);
    // The approver is whoever records it: a manager cannot write the general manager's name.
    let err = client
        .record_special_reason(authed(MANAGER, request("parts", "gm-1")))
        .await
        .expect_err("approved in somebody else's name");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("approved_by"), "{}", err.message());
    for approved_by in ["manager-1", ""] {
        let r = client
            .record_special_reason(authed(MANAGER, request("parts on back order", approved_by)))
            .await
            .expect("recorded")
            .into_inner();
        assert_eq!(
            r.clock.expect("clock").special_reason_approved_by,
            "manager-1"
        );
    }
    let overdue = bed.events("sla.overdue", 4, 20 * SECOND).await;
    let records = bed.events("accountability.recorded", 1, 5 * SECOND).await;
    let completion = overdue
        .iter()
        .find(|e| matches!(&e.payload, Some(Payload::SlaOverdue(o)) if o.clock() == v1::SlaClock::Completion))
        .expect("completion still goes overdue");
    assert!(
        records
            .iter()
            .all(|r| r.causation_id != completion.event_id)
    );
    // Of the other three clocks, only acceptance books a record (late acceptance, day 1): a
    // missed first-feedback or intermediate-result limit is not fined (DOMAIN §9).
    assert_eq!(records.len(), 1, "{records:?}");
    let Some(Payload::AccountabilityRecorded(a)) = &records[0].payload else {
        panic!()
    };
    assert_eq!(a.reason(), v1::AccountabilityReason::LateAcceptance);
    // Recorded once, although asked twice.
    let reasons = bed
        .events("sla.special_reason_recorded", 1, 5 * SECOND)
        .await;
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].actor.as_ref().expect("actor").id, "manager-1");
}

#[tokio::test]
async fn two_replicas_and_a_restart_emit_every_warning_and_overdue_exactly_once() {
    let bed = TestBed::start().await;
    let policy = Policy::write();
    let mut first = monitor(&bed, &policy).await;
    let _second = monitor(&bed, &policy).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let (id, _) = receive(
            &bed,
            if i % 2 == 0 {
                v1::Class::A
            } else {
                v1::Class::B
            },
        )
        .await;
        ids.push(id);
        if i == 20 {
            // One replica dies mid-run (no clean shutdown) and a new one takes its place.
            first.kill();
            first = monitor(&bed, &policy).await;
        }
        // Paced so that arrivals and their clocks straddle the kill and the restart: the
        // spacing is the scenario, there is nothing to await.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected = ids.len() * 4;
    let overdue = bed.events("sla.overdue", expected, 40 * SECOND).await;
    let warnings = bed.events("sla.warning", expected, 10 * SECOND).await;
    // Every clock fired and every emission relayed: a duplicate would be on the stream now.
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    settled(&bed, &all, None).await;
    let overdue_again = bed.events("sla.overdue", expected, SECOND).await;
    let warnings_again = bed.events("sla.warning", expected, SECOND).await;
    assert_eq!(overdue.len(), expected, "{}", first.logs());
    assert_eq!(warnings.len(), expected);
    assert_eq!(overdue_again.len(), expected);
    assert_eq!(warnings_again.len(), expected);
    for events in [&overdue_again, &warnings_again] {
        let grouped = per_clock(events);
        assert_eq!(grouped.len(), expected);
        assert!(grouped.values().all(|v| v.len() == 1));
    }
}

/// Business hours on: Mon–Fri 09:00–18:00 at +08:00, Monday 14 January 2030 a holiday. Limits
/// in hours; the dates lie in the future so nothing fires while the test looks.
const BUSINESS_POLICY: &str = r#"
[calendar]
timezone = "+08:00"
business_hours = true
working_hours_start = "09:00"
working_hours_end = "18:00"
working_days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
holidays = ["2030-01-14"]
[limits]
warning_share = 0.75
intermediate_share = 0.5
[limits.completion]
A = "2h"
B = "4h"
"#;

fn local(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("rfc 3339").to_utc()
}

/// The monitor's due time and warning point of a complaint's completion clock, once it has one
/// whose due time satisfies `ready`.
async fn completion_clock(
    bed: &TestBed,
    svc: &ServiceProcess,
    id: &str,
    ready: impl Fn(DateTime<Utc>) -> bool,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let mut client = SlaMonitorServiceClient::new(bed.channel(svc).await);
    let mut conn = bed.db.connect().await;
    let found = poll(
        15 * SECOND,
        async || {
            let status = client
                .get_sla_status(authed(
                    GM,
                    v1::GetSlaStatusRequest {
                        complaint_id: id.to_owned(),
                    },
                ))
                .await;
            let due = status.ok().and_then(|s| {
                s.into_inner()
                    .clocks
                    .iter()
                    .find(|c| c.clock() == v1::SlaClock::Completion)
                    .map(|c| time(&c.due_at))
            })?;
            ready(due).then_some(due)
        },
        Option::is_some,
    )
    .await;
    let Some(due) = found else {
        panic!("no completion clock for {id}: {}", svc.logs());
    };
    let warn: DateTime<Utc> = sqlx::query_scalar(
        "SELECT warn_at FROM sla_monitor.clocks WHERE complaint_id = $1 AND kind = 'completion'",
    )
    .bind(id)
    .fetch_one(&mut conn)
    .await
    .expect("completion clock row");
    (due, warn)
}

#[tokio::test]
async fn business_calendar_across_a_weekend_and_a_holiday() {
    let bed = TestBed::start().await;
    let policy = Policy::write_text(BUSINESS_POLICY);
    let domain = redress_domain::Policy::from_toml_str(BUSINESS_POLICY).expect("policy");
    let svc = monitor(&bed, &policy).await;

    // Friday 17:00 + 2 working hours, promises computed by intake's domain function: one hour
    // on Friday, one on Monday.
    let friday = local("2030-01-04T17:00:00+08:00");
    let promised = redress_domain::promises(&domain, redress_domain::Class::A, friday);
    assert_eq!(promised.completion_due, local("2030-01-07T10:00:00+08:00"));
    let id = ComplaintId::new().to_string();
    publish_at(
        &bed,
        &id,
        friday,
        Payload::ComplaintReceived(v1::ComplaintReceived {
            complaint_number: "RD-BH1".into(),
            class: v1::Class::A as i32,
            confirmed: true,
            promises: Some(v1::Promises {
                acceptance_due: Some(ts(promised.acceptance_due)),
                first_feedback_due: Some(ts(promised.first_feedback_due)),
                completion_due: Some(ts(promised.completion_due)),
                intermediate_due: Some(ts(promised.intermediate_due)),
                reason: String::new(),
            }),
            ..Default::default()
        }),
    )
    .await;
    let (due, warn) = completion_clock(&bed, &svc, &id, |_| true).await;
    assert_eq!(due, local("2030-01-07T10:00:00+08:00"));
    // The warning at 75 % of the two working hours: 1.5 h after Friday 17:00.
    assert_eq!(warn, local("2030-01-07T09:30:00+08:00"));

    // The next Friday, no promises in the event: the monitor computes them itself, and the
    // Monday holiday pushes the due time to Tuesday.
    let holiday_friday = local("2030-01-11T17:00:00+08:00");
    let id = ComplaintId::new().to_string();
    publish_at(
        &bed,
        &id,
        holiday_friday,
        Payload::ComplaintReceived(v1::ComplaintReceived {
            complaint_number: "RD-BH2".into(),
            class: v1::Class::A as i32,
            confirmed: true,
            ..Default::default()
        }),
    )
    .await;
    let (due, warn) = completion_clock(&bed, &svc, &id, |_| true).await;
    assert_eq!(due, local("2030-01-15T10:00:00+08:00"));
    assert_eq!(warn, local("2030-01-15T09:30:00+08:00"));

    // Reclassified to B (4 working hours): recomputed in working time from intake.
    publish(
        &bed,
        &id,
        Payload::ComplaintReclassified(v1::ComplaintReclassified {
            from_class: v1::Class::A as i32,
            to_class: v1::Class::B as i32,
            reason: "less serious".into(),
            promises: None,
        }),
    )
    .await;
    let moved = local("2030-01-15T12:00:00+08:00");
    let (due, warn) = completion_clock(&bed, &svc, &id, |d| d == moved).await;
    assert_eq!(due, moved);
    // 75 % of 4 working hours = 3 h: Friday 1 h, Tuesday 2 h.
    assert_eq!(warn, local("2030-01-15T11:00:00+08:00"));
    assert_eq!(
        due,
        redress_domain::promises(&domain, redress_domain::Class::B, holiday_friday).completion_due
    );
}

/// A complaint received unconfirmed, now.
async fn receive_unconfirmed(bed: &TestBed) -> String {
    let id = ComplaintId::new().to_string();
    publish(
        bed,
        &id,
        Payload::ComplaintReceived(v1::ComplaintReceived {
            complaint_number: format!("RD-{}", &id[id.len() - 6..]),
            class: v1::Class::C as i32,
            confirmed: false,
            ..Default::default()
        }),
    )
    .await;
    id
}

/// The state of a complaint's confirmation clock as GetSlaStatus shows it, if it has one.
async fn confirmation_state(
    client: &mut SlaMonitorServiceClient<tonic::transport::Channel>,
    id: &str,
) -> Option<v1::ClockState> {
    client
        .get_sla_status(authed(
            GM,
            v1::GetSlaStatusRequest {
                complaint_id: id.to_owned(),
            },
        ))
        .await
        .expect("status")
        .into_inner()
        .clocks
        .into_iter()
        .find(|c| c.clock() == v1::SlaClock::Confirmation)
        .map(|c| c.state())
}

/// The SLA events of one complaint's confirmation clock.
fn confirmation_events(events: &[v1::Event], id: &str) -> Vec<v1::Event> {
    of(events, id)
        .into_iter()
        .filter(|e| match &e.payload {
            Some(Payload::SlaWarning(w)) => w.clock() == v1::SlaClock::Confirmation,
            Some(Payload::SlaOverdue(o)) => o.clock() == v1::SlaClock::Confirmation,
            Some(Payload::AccountabilityRecorded(r)) => r.clock() == v1::SlaClock::Confirmation,
            _ => false,
        })
        .collect()
}

/// DOMAIN §9: a complaint taken unconfirmed must be confirmed within its confirmation limit;
/// missed, it warns and goes overdue once (escalated elsewhere), never fined. The customer's
/// confirmation meets it, so does routing (which waits for it); a complaint confirmed at
/// receipt has no such clock.
#[tokio::test]
async fn an_unconfirmed_complaint_runs_a_confirmation_clock_until_confirmed_or_routed() {
    let bed = TestBed::start().await;
    let policy = Policy::write_text(&POLICY.replace(
        "acceptance = \"2s\"",
        "acceptance = \"2s\"\nconfirmation = \"2s\"",
    ));
    let svc = monitor(&bed, &policy).await;

    let late = receive_unconfirmed(&bed).await;
    let confirmed = receive_unconfirmed(&bed).await;
    let routed = receive_unconfirmed(&bed).await;
    let (at_receipt, _) = receive(&bed, v1::Class::C).await;
    publish(
        &bed,
        &confirmed,
        Payload::ComplaintConfirmed(v1::ComplaintConfirmed {
            confirmed_at: Some(ts(Utc::now())),
            ..Default::default()
        }),
    )
    .await;
    route_and_assign(&bed, &routed).await;

    let overdue = bed.events_of("sla.overdue", &late, 2, 15 * SECOND).await;
    assert!(
        !confirmation_events(&overdue, &late).is_empty(),
        "the late complaint's confirmation went overdue: {overdue:?}"
    );
    // No confirmation clock left to fire, and every emission relayed.
    settled(
        &bed,
        &[&late, &confirmed, &routed, &at_receipt],
        Some("confirmation"),
    )
    .await;
    let all = bed.events(">", 0, SECOND).await;
    let late_events = confirmation_events(&all, &late);
    let kinds: Vec<_> = late_events
        .iter()
        .map(|e| e.payload.as_ref().expect("payload").kind())
        .collect();
    assert_eq!(kinds, vec!["sla.warning", "sla.overdue"], "{late_events:?}");
    for id in [&confirmed, &routed, &at_receipt] {
        let got = confirmation_events(&all, id);
        assert!(got.is_empty(), "{id}: {got:?}");
    }

    // GetSlaStatus lists it: overdue for the late one, met for the other two, absent when the
    // record was confirmed at receipt.
    let mut client = SlaMonitorServiceClient::new(bed.channel(&svc).await);
    assert_eq!(
        confirmation_state(&mut client, &late).await,
        Some(v1::ClockState::Overdue)
    );
    assert_eq!(
        confirmation_state(&mut client, &confirmed).await,
        Some(v1::ClockState::Met)
    );
    assert_eq!(
        confirmation_state(&mut client, &routed).await,
        Some(v1::ClockState::Met)
    );
    assert_eq!(confirmation_state(&mut client, &at_receipt).await, None);
}

/// The fault suite's find: a NATS leader change held back routing's `complaint.assigned` until
/// after the completion limit, and the lateness fine was never recorded — the monitor knew of no
/// responsible person when the clock fired. Now the fine waits for its person: an assignment
/// made by the due time but heard of after it records the one class-D fine against that
/// handler; an assignment made after the due time records none (nobody was named in time).
#[tokio::test]
async fn a_late_heard_assignment_still_gets_its_lateness_fine_once() {
    let bed = TestBed::start().await;
    let policy = Policy::write();
    let svc = monitor(&bed, &policy).await;
    // Class A: completion 3 s. Two complaints; neither assignment is heard of in time.
    let (in_time, received) = receive(&bed, v1::Class::A).await;
    let (too_late, _) = receive(&bed, v1::Class::A).await;
    let overdue = |events: &[v1::Event], id: &str| {
        events.iter().any(|e| {
            e.complaint_id == id
                && matches!(&e.payload, Some(Payload::SlaOverdue(o))
                    if o.clock == v1::SlaClock::Completion as i32)
        })
    };
    let events = poll(
        20 * SECOND,
        async || bed.events("sla.overdue", 0, SECOND).await,
        |events| overdue(events, &in_time) && overdue(events, &too_late),
    )
    .await;
    assert!(
        overdue(&events, &in_time) && overdue(&events, &too_late),
        "{}",
        svc.logs()
    );
    let fines_of = |events: &[v1::Event], id: &str| {
        events
            .iter()
            .filter(|e| e.complaint_id == id)
            .filter_map(|e| match &e.payload {
                Some(Payload::AccountabilityRecorded(a))
                    if a.reason == v1::AccountabilityReason::Overdue as i32 =>
                {
                    Some(a.clone())
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(
        fines_of(
            &bed.events("accountability.recorded", 0, SECOND).await,
            &in_time
        )
        .is_empty(),
        "nobody known yet, nobody fined yet"
    );
    // The assignments arrive now: one made a second after receipt (before the 3 s limit), the
    // other made just now, after it. Each twice, as a redelivery would.
    for _ in 0..2 {
        publish_at(
            &bed,
            &in_time,
            received + chrono::Duration::seconds(1),
            Payload::ComplaintAssigned(v1::ComplaintAssigned {
                department_id: "dep-1".into(),
                assignee_id: "handler-1".into(),
                ..Default::default()
            }),
        )
        .await;
        publish(
            &bed,
            &too_late,
            Payload::ComplaintAssigned(v1::ComplaintAssigned {
                department_id: "dep-1".into(),
                assignee_id: "handler-2".into(),
                ..Default::default()
            }),
        )
        .await;
    }
    let records = bed.events("accountability.recorded", 1, 10 * SECOND).await;
    // Both assignments handled, no clock left to fire, every emission relayed: a wrong second
    // record (or one for the late assignment) would be on the stream now.
    settled(&bed, &[&in_time, &too_late], None).await;
    let records = if records.is_empty() {
        records
    } else {
        bed.events("accountability.recorded", records.len(), SECOND)
            .await
    };
    let fined = fines_of(&records, &in_time);
    assert_eq!(
        fined.len(),
        1,
        "one fine for the in-time assignment: {records:?}\n{}",
        svc.logs()
    );
    assert_eq!(fined[0].person_id, "handler-1");
    assert_eq!(fined[0].class_counted, v1::Class::D as i32);
    assert!(
        fines_of(&records, &too_late).is_empty(),
        "no fine when the first person was named after the limit: {records:?}"
    );
}

/// A backlog (here: published while the monitor was down) is applied in batches — facts,
/// clocks and confirmations a run at a time — with the outcome of one message at a time:
/// intake's four clocks for each complaint, a confirmation clock met only by a confirmation or
/// routing that came after it started, a reclassification in the middle of the run applied in
/// its place, the handler and when they were named kept.
#[tokio::test]
async fn a_backlog_is_applied_in_batches_with_the_outcome_of_one_at_a_time() {
    let bed = TestBed::start().await;
    let policy = Policy::write_text(POLICY);
    let mut first = monitor(&bed, &policy).await;
    first.terminate(10 * SECOND).await.expect("stopped");

    let unconfirmed = |id: &str| {
        Payload::ComplaintReceived(v1::ComplaintReceived {
            complaint_number: format!("RD-{}", &id[id.len() - 6..]),
            class: v1::Class::C as i32,
            confirmed: false,
            ..Default::default()
        })
    };
    let confirmation = || {
        Payload::ComplaintConfirmed(v1::ComplaintConfirmed {
            confirmed_at: Some(ts(Utc::now())),
            ..Default::default()
        })
    };
    let mut assigned = Vec::new();
    let mut met = Vec::new();
    let mut running = Vec::new();
    for i in 0..90 {
        match i % 3 {
            // As intake and routing send it: received (confirmed), classified, routed, assigned.
            0 => {
                let (id, _) = receive(&bed, v1::Class::B).await;
                publish(
                    &bed,
                    &id,
                    Payload::ComplaintClassified(v1::ComplaintClassified {
                        class: v1::Class::B as i32,
                        ..Default::default()
                    }),
                )
                .await;
                route_and_assign(&bed, &id).await;
                assigned.push(id);
            }
            // Taken unconfirmed, then confirmed: the confirmation clock is met.
            1 => {
                let id = ComplaintId::new().to_string();
                publish(&bed, &id, unconfirmed(&id)).await;
                publish(&bed, &id, confirmation()).await;
                met.push(id);
            }
            // The confirmation heard before the receipt meets no clock: the one the receipt
            // starts runs on.
            _ => {
                let id = ComplaintId::new().to_string();
                publish(&bed, &id, confirmation()).await;
                publish(&bed, &id, unconfirmed(&id)).await;
                running.push(id);
            }
        }
    }
    // A reclassification in the middle of the run, of a complaint received in it.
    let moved = assigned[5].clone();
    publish(
        &bed,
        &moved,
        Payload::ComplaintReclassified(v1::ComplaintReclassified {
            from_class: v1::Class::B as i32,
            to_class: v1::Class::A as i32,
            reason: "the media called".into(),
            promises: None,
        }),
    )
    .await;
    for _ in 0..10 {
        let (id, _) = receive(&bed, v1::Class::C).await;
        route_and_assign(&bed, &id).await;
        assigned.push(id);
    }

    let svc = bed
        .spawn(
            "redress-sla-monitor",
            &[
                ("REDRESS_POLICY_FILE", policy.path()),
                ("REDRESS_CONSUMER_BATCH", "128"),
                ("RUST_LOG", "info,redress_platform=debug"),
            ],
        )
        .await;
    // 30 × 3 (the monitor does not subscribe to `classified`) + 30 × 2 + 30 × 2 + 1 + 10 × 3.
    let c = svc.consumed("sla-monitor-clocks", 241.0, 30 * SECOND).await;
    assert_eq!(c.messages, 241.0, "{}", c.page);
    assert!(c.batches < 241.0 / 4.0, "{} batches", c.batches);
    assert!(!svc.logs().contains("batch failed"), "{}", svc.logs());

    let mut conn = bed.db.connect().await;
    let clocks: Vec<(String, String, String)> =
        sqlx::query_as("SELECT complaint_id, kind, state FROM sla_monitor.clocks ORDER BY 1, 2")
            .fetch_all(&mut conn)
            .await
            .expect("clocks");
    let of = |id: &str| -> Vec<(String, String)> {
        clocks
            .iter()
            .filter(|c| c.0 == id)
            .map(|c| (c.1.clone(), c.2.clone()))
            .collect()
    };
    let kinds = |id: &str| -> Vec<String> { of(id).into_iter().map(|c| c.0).collect() };
    let intake = [
        "acceptance",
        "completion",
        "first_feedback",
        "intermediate_result",
    ];
    for id in &assigned {
        assert_eq!(kinds(id), intake, "{id}");
    }
    let confirmation = |id: &str| {
        of(id)
            .into_iter()
            .find(|c| c.0 == "confirmation")
            .map(|c| c.1)
    };
    for id in &met {
        assert_eq!(confirmation(id).as_deref(), Some("met"), "{id}");
        assert_eq!(kinds(id).len(), 5, "{id}");
    }
    for id in &running {
        let state = confirmation(id).unwrap_or_default();
        assert!(state != "met" && !state.is_empty(), "{id}: {state}");
    }
    let facts: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT complaint_id, class, handler_id, first_named_at IS NOT NULL
         FROM sla_monitor.complaints WHERE complaint_id = ANY($1) ORDER BY 1",
    )
    .bind(&assigned)
    .fetch_all(&mut conn)
    .await
    .expect("complaints");
    assert_eq!(facts.len(), assigned.len());
    for (id, class, handler, named) in &facts {
        assert_eq!((handler.as_str(), *named), ("handler-1", true), "{id}");
        let want = if *id == moved {
            "A"
        } else if assigned[..30].contains(id) {
            "B"
        } else {
            "C"
        };
        assert_eq!(class, want, "{id}");
    }
}

/// DOMAIN §2/§4 with the real policy, no limits of seconds: a class A complaint's 8-hour
/// completion limit warns at 75 % (6 h) and goes overdue after 8 h, exactly once each — tested
/// in seconds by moving the running monitor's clock (`REDRESS_CLOCK=file:`), not by sleeping.
#[tokio::test]
async fn the_real_eight_hour_limit_warns_and_goes_overdue_as_the_clock_is_moved() {
    let bed = TestBed::start().await;
    let clock = ClockControl::starting_at(Utc::now());
    let spec = clock.spec();
    let _svc = bed
        .spawn(
            "redress-sla-monitor",
            &[
                ("REDRESS_CLOCK", spec.as_str()),
                ("REDRESS_SLA_MAX_SLEEP_MS", "100"),
            ],
        )
        .await;
    let id = ComplaintId::new().to_string();
    let received = clock.now();
    publish_at(
        &bed,
        &id,
        received,
        Payload::ComplaintReceived(v1::ComplaintReceived {
            complaint_number: "RD-REAL-8H".into(),
            class: v1::Class::A as i32,
            confirmed: true,
            ..Default::default()
        }),
    )
    .await;
    route_and_assign(&bed, &id).await;
    let completion = |kind: &str, events: &[v1::Event]| -> Vec<v1::Event> {
        events
            .iter()
            .filter(|e| match (&e.payload, kind) {
                (Some(Payload::SlaWarning(w)), "warning") => {
                    w.clock == v1::SlaClock::Completion as i32
                }
                (Some(Payload::SlaOverdue(o)), "overdue") => {
                    o.clock == v1::SlaClock::Completion as i32
                }
                _ => false,
            })
            .cloned()
            .collect()
    };

    // Five hours on: not yet at the warning point.
    clock.advance(chrono::Duration::hours(5));
    // Six hours and a minute: past 75 % of eight hours.
    clock.advance(chrono::Duration::minutes(61));
    let warned = poll(
        10 * SECOND,
        async || {
            completion(
                "warning",
                &bed.events_of("sla.warning", &id, 1, SECOND).await,
            )
        },
        |w| !w.is_empty(),
    )
    .await;
    assert_eq!(
        warned.len(),
        1,
        "one completion warning after 6 h: {warned:?}"
    );
    let overdue_so_far = completion(
        "overdue",
        &bed.events_of("sla.overdue", &id, 0, Duration::ZERO).await,
    );
    assert!(
        overdue_so_far.is_empty(),
        "not overdue at 6 h: {overdue_so_far:?}"
    );

    // Eight hours and two minutes: the limit has passed.
    clock.advance(chrono::Duration::minutes(121));
    let overdue = poll(
        10 * SECOND,
        async || {
            completion(
                "overdue",
                &bed.events_of("sla.overdue", &id, 1, SECOND).await,
            )
        },
        |o| !o.is_empty(),
    )
    .await;
    assert_eq!(
        overdue.len(),
        1,
        "one completion overdue after 8 h: {overdue:?}"
    );
    let Some(Payload::SlaOverdue(o)) = &overdue[0].payload else {
        unreachable!()
    };
    assert_eq!(
        time(&o.due_at).timestamp_micros(),
        (received + chrono::Duration::hours(8)).timestamp_micros(),
        "the real class A limit"
    );
}
