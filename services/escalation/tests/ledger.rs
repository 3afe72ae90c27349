//! The accountability ledger, suspensions and the monthly report, with the service as a process
//! against real NATS JetStream and PostgreSQL. The tests play intake, routing, the SLA monitor
//! and revisit by publishing their events; events are dated in March 2026 so that the month is
//! fixed whatever day the tests run.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::time::Duration;

use redress_proto::v1::{self, escalation_service_client::EscalationServiceClient, event::Payload};
use redress_test_support::{ServiceProcess, TestBed, authed, poll};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);
const MONTH: &str = "2026-03";
/// 2026-03-10 12:00 +08:00.
const IN_MARCH: i64 = 1_773_115_200;
/// 2026-04-10 12:00 +08:00.
const IN_APRIL: i64 = IN_MARCH + 31 * 86_400;

type Client = EscalationServiceClient<tonic::transport::Channel>;

async fn start(bed: &TestBed) -> (ServiceProcess, Client) {
    let svc = bed.spawn("redress-escalation", &[]).await;
    let client = EscalationServiceClient::new(bed.channel(&svc).await);
    (svc, client)
}

fn envelope(cid: &str, at: i64, producer: &str, payload: Payload) -> v1::Event {
    let at = prost_types::Timestamp {
        seconds: at,
        nanos: 0,
    };
    let id = redress_domain::EventId::new().to_string();
    redress_test_support::envelope(id, cid, producer, at, payload)
}

/// Publishes as the producing service would, with the event id as message id; `copy` publishes
/// it under another message id (a re-publication JetStream cannot deduplicate).
async fn publish(bed: &TestBed, e: &v1::Event, copy: bool) {
    let id = if copy {
        format!("{}-copy", e.event_id)
    } else {
        e.event_id.clone()
    };
    bed.publish_event_as(e, &id).await;
}

/// A complaint of `class` received and routed to `dept`, handled by `handler`; returns its id.
async fn received(bed: &TestBed, class: v1::Class, dept: &str, handler: &str, at: i64) -> String {
    let cid = redress_domain::ComplaintId::new().to_string();
    let events = [
        Payload::ComplaintReceived(v1::ComplaintReceived {
            complaint_number: format!("RD-{}", &cid[cid.len() - 4..]),
            class: class as i32,
            confirmed: true,
            ..Default::default()
        }),
        Payload::ComplaintRouted(v1::ComplaintRouted {
            department_id: dept.into(),
            department_manager_id: "manager-1".into(),
            acceptance_owner_id: "manager-1".into(),
            class: class as i32,
            ..Default::default()
        }),
        Payload::ComplaintAssigned(v1::ComplaintAssigned {
            department_id: dept.into(),
            assignee_id: handler.into(),
            department_manager_id: "manager-1".into(),
            ..Default::default()
        }),
    ];
    for p in events {
        publish(bed, &envelope(&cid, at, "routing", p), false).await;
    }
    cid
}

/// Routing names the responsible person (empty: nobody) and resolves the complaint.
async fn resolved(bed: &TestBed, cid: &str, person: &str, responsibility: v1::Responsibility) {
    let cause = Payload::CauseRecorded(v1::CauseRecorded {
        responsibility: responsibility as i32,
        responsible_person_id: person.into(),
        ..Default::default()
    });
    publish(bed, &envelope(cid, IN_MARCH, "routing", cause), false).await;
    let done = envelope(
        cid,
        IN_MARCH,
        "routing",
        Payload::Resolved(v1::Resolved {
            responsible_person_id: person.into(),
            ..Default::default()
        }),
    );
    publish(bed, &done, false).await;
    // A re-publication under another message id books nothing more.
    publish(bed, &done, true).await;
}

/// The SLA monitor's accountability record.
fn record(cid: &str, person: &str, reason: v1::AccountabilityReason, days: u32) -> v1::Event {
    let late = reason == v1::AccountabilityReason::LateAcceptance;
    envelope(
        cid,
        IN_MARCH,
        "sla-monitor",
        Payload::AccountabilityRecorded(v1::AccountabilityRecorded {
            person_id: person.into(),
            department_id: "d-1".into(),
            class_counted: if late { 0 } else { v1::Class::D as i32 },
            amount_fen: if late { 10_000 } else { 5_000 },
            reason: reason as i32,
            days,
            month: MONTH.into(),
            note: String::new(),
            clock: if late {
                v1::SlaClock::Acceptance as i32
            } else {
                v1::SlaClock::Completion as i32
            },
        }),
    )
}

/// Routing's organisation, so the ladder can tell the people a repeat complaint goes to.
async fn organisation(bed: &TestBed) {
    let dept = Payload::DepartmentUpserted(v1::DepartmentUpserted {
        department_id: "d-1".into(),
        name: "Broadband".into(),
        manager_id: "manager-1".into(),
        service_centre: false,
    });
    publish(bed, &envelope("", IN_MARCH, "routing", dept), false).await;
    for (id, role) in [
        ("manager-1", v1::Role::DepartmentManager),
        ("gm-1", v1::Role::GeneralManager),
    ] {
        let staff = Payload::StaffUpserted(v1::StaffUpserted {
            staff_id: id.into(),
            name: id.into(),
            department_id: "d-1".into(),
            role: role as i32,
            ..Default::default()
        });
        publish(bed, &envelope("", IN_MARCH, "routing", staff), false).await;
    }
}

async fn query_i64(bed: &TestBed, sql: &str, arg: &str) -> i64 {
    let mut conn = bed.db.connect().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(arg)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

const ENTRIES_OF: &str = "SELECT count(*) FROM escalation.ledger_entries WHERE person_id = $1";
const TOTAL_OF: &str = "SELECT COALESCE(sum(amount_fen), 0)::BIGINT FROM escalation.ledger_entries WHERE person_id = $1";

/// Waits until `sql` with `arg` gives at least `n`.
async fn wait_for(bed: &TestBed, sql: &str, arg: &str, n: i64) -> i64 {
    poll(
        WAIT,
        async || query_i64(bed, sql, arg).await,
        |got| *got >= n,
    )
    .await
}

/// Publishes a marker complaint booked against `barrier` and waits for it: the consumer applies
/// the stream in order, so everything published before has been applied too.
async fn barrier(bed: &TestBed, barrier: &str) {
    let cid = received(bed, v1::Class::C, "d-x", barrier, IN_MARCH).await;
    resolved(bed, &cid, barrier, v1::Responsibility::CompanyStaff).await;
    assert_eq!(wait_for(bed, ENTRIES_OF, barrier, 1).await, 1);
}

async fn report(client: &mut Client, format: v1::ReportFormat) -> v1::MonthlyReportResponse {
    client
        .monthly_report(authed(
            "test-operator-token",
            v1::MonthlyReportRequest {
                month: MONTH.into(),
                format: format as i32,
                department_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn class_fines_per_named_person_and_late_acceptance_per_day_book_once() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = start(&bed).await;
    let staff = v1::Responsibility::CompanyStaff;
    for (class, person) in [
        (v1::Class::A, "p-a"),
        (v1::Class::B, "p-b"),
        (v1::Class::C, "p-c"),
        (v1::Class::D, "p-d"),
    ] {
        let cid = received(&bed, class, "d-1", "handler-1", IN_MARCH).await;
        resolved(&bed, &cid, person, staff).await;
    }
    // Nobody named books nothing, whatever the class — the handler is fined only when named
    // (DOMAIN §9 "Class fines need a named person"); the customer's own fault books nothing.
    let c = received(&bed, v1::Class::C, "d-1", "h-c", IN_MARCH).await;
    resolved(&bed, &c, "", v1::Responsibility::CompanyNetwork).await;
    let d = received(&bed, v1::Class::D, "d-1", "h-d", IN_MARCH).await;
    resolved(&bed, &d, "", v1::Responsibility::CompanyNetwork).await;
    let m = received(&bed, v1::Class::B, "d-1", "h-m", IN_MARCH).await;
    resolved(&bed, &m, "p-m", v1::Responsibility::CustomerMisuse).await;
    // Late acceptance: day 1 and day 2, day 2 published twice under different message ids.
    let late = received(&bed, v1::Class::C, "d-1", "handler-1", IN_MARCH).await;
    let late_acceptance = v1::AccountabilityReason::LateAcceptance;
    publish(&bed, &record(&late, "owner-1", late_acceptance, 1), false).await;
    let day2 = record(&late, "owner-1", late_acceptance, 2);
    publish(&bed, &day2, false).await;
    publish(&bed, &day2, true).await;
    barrier(&bed, "barrier-1").await;

    for (person, fen) in [
        ("p-a", 50_000),
        ("p-b", 20_000),
        ("p-c", 10_000),
        ("p-d", 5_000),
        ("owner-1", 20_000),
    ] {
        assert_eq!(query_i64(&bed, TOTAL_OF, person).await, fen, "{person}");
    }
    for person in ["p-a", "p-b", "p-c", "p-d"] {
        assert_eq!(query_i64(&bed, ENTRIES_OF, person).await, 1, "{person}");
    }
    assert_eq!(query_i64(&bed, ENTRIES_OF, "owner-1").await, 2);
    for nobody in ["h-c", "h-d", "p-m", "h-m"] {
        assert_eq!(query_i64(&bed, ENTRIES_OF, nobody).await, 0, "{nobody}");
    }
    // The ledger publishes its own class fines.
    let published = bed.events("accountability.recorded", 8, WAIT).await;
    let own: Vec<_> = published
        .iter()
        .filter(|e| e.producer == "escalation")
        .collect();
    assert_eq!(own.len(), 5, "A, B, C, D and the barrier");

    let r = report(&mut client, v1::ReportFormat::Json).await;
    let owner = r.people.iter().find(|p| p.person_id == "owner-1").unwrap();
    assert_eq!(owner.penalties_fen, 20_000);
    assert_eq!(owner.complaints, 0, "late acceptance is no complaint");
    let pa = r.people.iter().find(|p| p.person_id == "p-a").unwrap();
    assert_eq!(
        (pa.complaints, pa.penalties_fen, pa.suspended),
        (1, 50_000, false)
    );
}

#[tokio::test]
async fn repeat_complaint_doubles_after_a_missed_limit_or_on_a_neglect_finding() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = start(&bed).await;
    organisation(&bed).await;
    let staff = v1::Responsibility::CompanyStaff;
    // O1 (class C, p-1) missed a limit; O2 (class B, p-2) did not.
    let o1 = received(&bed, v1::Class::C, "d-1", "p-1", IN_MARCH).await;
    publish(
        &bed,
        &record(&o1, "p-1", v1::AccountabilityReason::Overdue, 0),
        false,
    )
    .await;
    resolved(&bed, &o1, "p-1", staff).await;
    let o2 = received(&bed, v1::Class::B, "d-1", "p-2", IN_MARCH).await;
    resolved(&bed, &o2, "p-2", staff).await;
    for (original, person, class) in [(&o1, "p-1", v1::Class::C), (&o2, "p-2", v1::Class::B)] {
        let repeat = redress_domain::ComplaintId::new().to_string();
        let e = envelope(
            &repeat,
            IN_MARCH,
            "revisit",
            Payload::RepeatComplaint(v1::RepeatComplaint {
                original_complaint_id: original.to_string(),
                department_id: "d-1".into(),
                responsible_person_id: person.into(),
                original_class: class as i32,
                ..Default::default()
            }),
        );
        publish(&bed, &e, false).await;
        publish(&bed, &e, true).await;
    }
    barrier(&bed, "barrier-2").await;
    // p-1: C 10 000 + overdue D record 5 000 + doubling 10 000, at once.
    assert_eq!(query_i64(&bed, TOTAL_OF, "p-1").await, 25_000);
    assert_eq!(query_i64(&bed, ENTRIES_OF, "p-1").await, 3);
    // p-2: B 20 000 only, until a manager finds neglect.
    assert_eq!(query_i64(&bed, TOTAL_OF, "p-2").await, 20_000);
    let find = |original: String, finding: &str| {
        authed(
            "test-manager-token",
            v1::RecordNeglectFindingRequest {
                original_complaint_id: original,
                finding: finding.into(),
            },
        )
    };
    let first = client
        .record_neglect_finding(find(o2.clone(), "perfunctory handling"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            first.person_id.as_str(),
            first.extra_fen,
            first.newly_booked
        ),
        ("p-2", 20_000, true)
    );
    let again = client
        .record_neglect_finding(find(o2.clone(), "perfunctory handling"))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.newly_booked);
    assert_eq!(query_i64(&bed, TOTAL_OF, "p-2").await, 40_000);
    // A finding about the missed-limit original is already booked: nothing more.
    let auto = client
        .record_neglect_finding(find(o1.clone(), "also neglect"))
        .await
        .unwrap()
        .into_inner();
    assert!(!auto.newly_booked);
    assert_eq!(query_i64(&bed, TOTAL_OF, "p-1").await, 25_000);
    // Bad input and an original without a repeat complaint.
    let err = client
        .record_neglect_finding(find(o2.clone(), "  "))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("finding"));
    let err = client
        .record_neglect_finding(find("nonsense".into(), "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let stranger = redress_domain::ComplaintId::new().to_string();
    let err = client
        .record_neglect_finding(find(stranger, "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = client
        .record_neglect_finding(authed(
            "test-handler-token",
            v1::RecordNeglectFindingRequest {
                original_complaint_id: o2.clone(),
                finding: "x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn third_complaint_in_a_month_suspends_exactly_once() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = start(&bed).await;
    let staff = v1::Responsibility::CompanyStaff;
    // Two complaints in March, then an overdue class-D record (DOMAIN §9: it counts).
    for _ in 0..2 {
        let cid = received(&bed, v1::Class::C, "d-1", "p-s", IN_MARCH).await;
        resolved(&bed, &cid, "p-s", staff).await;
    }
    let overdue_of = received(&bed, v1::Class::B, "d-1", "someone-else", IN_MARCH).await;
    let third = record(&overdue_of, "p-s", v1::AccountabilityReason::Overdue, 0);
    publish(&bed, &third, false).await;
    publish(&bed, &third, true).await;
    let suspended = bed.events("staff.suspended", 1, WAIT).await;
    assert_eq!(suspended.len(), 1);
    let Some(Payload::StaffSuspended(s)) = &suspended[0].payload else {
        panic!("not a suspension: {:?}", suspended[0]);
    };
    assert_eq!(
        (s.person_id.as_str(), s.month.as_str(), s.count),
        ("p-s", MONTH, 3)
    );
    assert_eq!(s.complaint_ids.len(), 3);
    // A fourth in March does not suspend again; two in April do not either.
    let fourth = received(&bed, v1::Class::D, "d-1", "p-s", IN_MARCH).await;
    resolved(&bed, &fourth, "p-s", staff).await;
    for _ in 0..2 {
        let cid = received(&bed, v1::Class::C, "d-1", "p-s", IN_APRIL).await;
        let cause = Payload::CauseRecorded(v1::CauseRecorded {
            responsibility: staff as i32,
            responsible_person_id: "p-s".into(),
            ..Default::default()
        });
        publish(&bed, &envelope(&cid, IN_APRIL, "routing", cause), false).await;
        let done = Payload::Resolved(v1::Resolved {
            responsible_person_id: "p-s".into(),
            ..Default::default()
        });
        publish(&bed, &envelope(&cid, IN_APRIL, "routing", done), false).await;
    }
    barrier(&bed, "barrier-3").await;
    assert_eq!(wait_for(&bed, ENTRIES_OF, "p-s", 6).await, 6);
    let all = bed
        .events("staff.suspended", 2, Duration::from_secs(2))
        .await;
    assert_eq!(all.len(), 1, "one suspension per person-month");
    let r = report(&mut client, v1::ReportFormat::Json).await;
    let ps = r.people.iter().find(|p| p.person_id == "p-s").unwrap();
    assert_eq!(ps.complaints, 4);
    assert_eq!(ps.penalties_fen, 10_000 + 10_000 + 5_000 + 5_000);
    assert!(ps.suspended);
}

#[tokio::test]
async fn report_bands_at_the_boundaries_and_csv_matches_json() {
    let bed = TestBed::start().await;
    let (_svc, mut client) = start(&bed).await;
    let volume = |dept: &str, month: &str, volume: u64| {
        authed(
            "test-operator-token",
            v1::SetBusinessVolumeRequest {
                department_id: dept.into(),
                month: month.into(),
                volume,
            },
        )
    };
    // Bad input names the field and changes nothing.
    for (req, field) in [
        (volume("", MONTH, 1), "department_id"),
        (volume("d-79", "2026-3", 1), "month"),
        (volume("d-79", MONTH, 0), "volume"),
    ] {
        let err = client.set_business_volume(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(field), "{}", err.message());
    }
    let err = client
        .set_business_volume(authed(
            "test-handler-token",
            v1::SetBusinessVolumeRequest {
                department_id: "d-79".into(),
                month: MONTH.into(),
                volume: 1,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let first = client
        .set_business_volume(volume("d-79", MONTH, 5))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.previous_volume, 0);
    // Complaints per 10 000: T = 0.79 %, 0.80 %, 0.85 %, 1.00 %, 1.01 %.
    let cases: [(&str, u64); 5] = [
        ("d-79", 79),
        ("d-80", 80),
        ("d-85", 85),
        ("d-100", 100),
        ("d-101", 101),
    ];
    for (dept, n) in cases {
        let r = client
            .set_business_volume(volume(dept, MONTH, 10_000))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.previous_volume, if dept == "d-79" { 5 } else { 0 });
        for _ in 0..n {
            let cid = redress_domain::ComplaintId::new().to_string();
            let routed = Payload::ComplaintRouted(v1::ComplaintRouted {
                department_id: dept.into(),
                class: v1::Class::C as i32,
                ..Default::default()
            });
            publish(&bed, &envelope(&cid, IN_MARCH, "routing", routed), false).await;
        }
    }
    // One April complaint does not count in March.
    let april = redress_domain::ComplaintId::new().to_string();
    let routed = Payload::ComplaintRouted(v1::ComplaintRouted {
        department_id: "d-101".into(),
        ..Default::default()
    });
    publish(&bed, &envelope(&april, IN_APRIL, "routing", routed), false).await;
    let all = wait_for(
        &bed,
        "SELECT count(*) FROM escalation.complaints WHERE department_id LIKE $1",
        "d-%",
        446,
    )
    .await;
    assert_eq!(all, 446);

    let json = report(&mut client, v1::ReportFormat::Json).await;
    assert!(json.csv.is_empty());
    let line = |d: &str| {
        json.departments
            .iter()
            .find(|x| x.department_id == d)
            .unwrap()
            .clone()
    };
    let expect = [
        ("d-79", 79, "T < 0.80%", 0, false),
        ("d-80", 80, "T = 0.80%", 5_000, false),
        ("d-85", 85, "0.80% < T <= 0.85%", 10_000, false),
        ("d-100", 100, "0.95% < T <= 1.00%", 30_000, false),
        ("d-101", 101, "T > 1.00%", 50_000, true),
    ];
    for (dept, bp, label, fen, approval) in expect {
        let l = line(dept);
        assert_eq!(l.complaints, bp, "{dept}");
        assert_eq!(l.business_volume, 10_000);
        assert_eq!(l.rate_bp, Some(bp), "{dept}");
        assert_eq!(l.penalty_band.as_ref().unwrap().label, label, "{dept}");
        assert_eq!(l.head_penalty_fen, fen, "{dept}");
        assert_eq!(l.head_penalty_needs_approval, approval, "{dept}");
    }
    let b80 = line("d-80").penalty_band.unwrap();
    assert_eq!(
        (b80.lower_bp, b80.lower_inclusive, b80.upper_bp),
        (80, true, Some(80))
    );
    let b85 = line("d-85").penalty_band.unwrap();
    assert_eq!(
        (b85.lower_bp, b85.lower_inclusive, b85.upper_bp),
        (80, false, Some(85))
    );

    // The CSV parses to the same figures.
    let csv = report(&mut client, v1::ReportFormat::Csv).await;
    assert_eq!(csv.departments, json.departments);
    let text = String::from_utf8(csv.csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "row");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut seen = 0;
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        assert_eq!(cells.len(), header.len(), "{l}");
        if cells[col("row")] != "department" {
            continue;
        }
        let j = line(cells[col("department_id")]);
        assert_eq!(cells[col("complaints")], j.complaints.to_string());
        assert_eq!(cells[col("business_volume")], j.business_volume.to_string());
        assert_eq!(cells[col("rate_bp")], j.rate_bp.unwrap().to_string());
        assert_eq!(cells[col("band")], j.penalty_band.unwrap().label);
        assert_eq!(
            cells[col("head_penalty_fen")],
            j.head_penalty_fen.to_string()
        );
        assert_eq!(
            cells[col("head_penalty_needs_approval")],
            j.head_penalty_needs_approval.to_string()
        );
        seen += 1;
    }
    assert_eq!(seen, json.departments.len());
    assert_eq!(seen, 5);
    let err = client
        .monthly_report(authed(
            "test-operator-token",
            v1::MonthlyReportRequest {
                month: "March".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("month"));
}
