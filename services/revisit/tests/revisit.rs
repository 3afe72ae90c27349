//! The revisit service as a process against real NATS JetStream and PostgreSQL. The tests play
//! intake and routing by publishing their events on the bus, as those services do.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redress_proto::v1::{self, event::Payload, revisit_service_client::RevisitServiceClient};
use redress_test_support::{ServiceProcess, TestBed, authed, eventually};
use tonic::Code;
use tonic::transport::Channel;

const AGENT: &str = "test-agent-token"; // agent-1
const OPERATOR: &str = "test-operator-token"; // ops, also makes revisits
const MANAGER: &str = "test-manager-token"; // manager-1
const SECOND: Duration = Duration::from_secs(1);
/// How long a test waits for the events it expects.
const WAIT: Duration = Duration::from_secs(20);

type Client = RevisitServiceClient<Channel>;

/// Two attempts an hour apart, so a test sees retries and a customer never reached.
const POLICY: &str = "[revisit]\nunreached_attempts = 2\nunreached_spacing = \"1h\"\n";

async fn revisit(bed: &TestBed) -> (ServiceProcess, Client, tempfile_path::Path) {
    let policy = tempfile_path::Path::write(POLICY);
    let svc = bed
        .spawn(
            "redress-revisit",
            &[
                ("REDRESS_POLICY_FILE", policy.as_str()),
                ("REDRESS_REVISIT_PLANNER_MS", "100"),
            ],
        )
        .await;
    let client = RevisitServiceClient::new(bed.channel(&svc).await);
    (svc, client, policy)
}

/// A temporary policy file, removed on drop.
mod tempfile_path {
    pub struct Path(std::path::PathBuf);
    impl Path {
        pub fn write(text: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "redress-revisit-policy-{}-{}.toml",
                std::process::id(),
                redress_domain::EventId::new()
            ));
            std::fs::write(&p, text).expect("write policy");
            Path(p)
        }
        pub fn as_str(&self) -> &str {
            self.0.to_str().expect("utf-8 path")
        }
    }
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

fn at(t: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.as_ref().expect("timestamp");
    DateTime::from_timestamp(t.seconds, 0).expect("instant")
}

fn complaint_id() -> String {
    redress_domain::ComplaintId::new().to_string()
}

fn envelope(complaint: &str, event_id: &str, producer: &str, payload: Payload) -> v1::Event {
    redress_test_support::envelope(
        event_id.to_owned(),
        complaint,
        producer,
        ts(Utc::now()),
        payload,
    )
}

async fn publish(bed: &TestBed, complaint: &str, producer: &str, payload: Payload) -> v1::Event {
    let e = envelope(
        complaint,
        redress_domain::EventId::new().as_ref(),
        producer,
        payload,
    );
    bed.publish_event(&e).await;
    e
}

/// Intake's `complaint.received` and routing's `complaint.routed` for a new complaint.
async fn received_and_routed(
    bed: &TestBed,
    class: v1::Class,
    completion_due: DateTime<Utc>,
) -> String {
    let id = complaint_id();
    publish(
        bed,
        &id,
        "intake",
        Payload::ComplaintReceived(v1::ComplaintReceived {
            details: Some(v1::ComplaintDetails {
                customer: Some(v1::Customer {
                    name: "王芳".into(),
                    phone: "+8613800138000".into(),
                    ..Default::default()
                }),
                business: "broadband".into(),
                description: "line down for three days".into(),
                ..Default::default()
            }),
            complaint_number: format!("RD-{}", &id[id.len() - 6..]),
            class: class as i32,
            promises: Some(v1::Promises {
                completion_due: Some(ts(completion_due)),
                ..Default::default()
            }),
            confirmed: true,
            ..Default::default()
        }),
    )
    .await;
    publish(
        bed,
        &id,
        "routing",
        Payload::ComplaintRouted(v1::ComplaintRouted {
            department_id: "dept-network".into(),
            department_name: "Network".into(),
            department_manager_id: "manager-1".into(),
            class: class as i32,
            ..Default::default()
        }),
    )
    .await;
    id
}

fn resolved(handed_in_at: DateTime<Utc>) -> Payload {
    Payload::Resolved(v1::Resolved {
        result: "line repaired, two days refunded".into(),
        handed_in_at: Some(ts(handed_in_at)),
        department_id: "dept-network".into(),
        handler_id: "handler-1".into(),
        responsible_person_id: "staff-77".into(),
    })
}

/// Revisit rows of a complaint as (kind, sequence, due_at, state), waiting until `n` exist.
async fn rows(
    bed: &TestBed,
    complaint: &str,
    n: usize,
) -> Vec<(String, i32, DateTime<Utc>, String, String)> {
    let mut conn = bed.db.connect().await;
    let what = format!("{n} revisits for {complaint}");
    eventually(&what, 15 * SECOND, async || {
        let got: Vec<(String, i32, DateTime<Utc>, String, String)> = sqlx::query_as(
            "SELECT kind, sequence, due_at, state, revisit_id FROM revisit.revisits
             WHERE complaint_id = $1 ORDER BY created_at, kind",
        )
        .bind(complaint)
        .fetch_all(&mut conn)
        .await
        .expect("rows");
        (got.len() >= n).then_some(got)
    })
    .await
}

async fn claim(client: &mut Client, token: &str, id: &str) -> Result<v1::Revisit, tonic::Status> {
    client
        .claim_revisit(authed(
            token,
            v1::ClaimRevisitRequest {
                revisit_id: id.into(),
            },
        ))
        .await
        .map(|r| r.into_inner().revisit.expect("revisit"))
}

async fn outcome(
    client: &mut Client,
    token: &str,
    req: v1::RecordOutcomeRequest,
) -> Result<v1::RecordOutcomeResponse, tonic::Status> {
    client
        .record_outcome(authed(token, req))
        .await
        .map(|r| r.into_inner())
}

fn unreached(id: &str) -> v1::RecordOutcomeRequest {
    v1::RecordOutcomeRequest {
        revisit_id: id.into(),
        reached: false,
        ..Default::default()
    }
}

fn reached(id: &str, satisfied: bool) -> v1::RecordOutcomeRequest {
    v1::RecordOutcomeRequest {
        revisit_id: id.into(),
        reached: true,
        satisfied,
        feelings: "calmer than last week".into(),
        remaining_dissatisfaction: if satisfied {
            ""
        } else {
            "still drops at night"
        }
        .into(),
        opinions: "call before visiting".into(),
        method: v1::RevisitMethod::Phone as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn plans_a_revisit_for_each_trigger() {
    let bed = TestBed::start().await;
    let (_svc, mut client, _policy) = revisit(&bed).await;
    let policy = redress_domain::Policy::default();
    let far = Utc::now() + chrono::Duration::days(30);

    // General complaint (C): the day after acceptance, by the business day end.
    let general = received_and_routed(&bed, v1::Class::C, far).await;
    let accepted_at = Utc::now() - chrono::Duration::hours(1);
    publish(
        &bed,
        &general,
        "routing",
        Payload::AcceptedByDepartment(v1::AcceptedByDepartment {
            department_id: "dept-network".into(),
            accepted_by: "handler-1".into(),
            accepted_at: Some(ts(accepted_at)),
        }),
    )
    .await;
    let r = rows(&bed, &general, 1).await;
    assert_eq!(r[0].0, "day_after_acceptance");
    assert_eq!(
        r[0].2,
        redress_domain::deadlines::days_after_due(&policy, ts_round(accepted_at), 1)
    );

    // Resolved: every complainant within three days.
    let handed_in = Utc::now() - chrono::Duration::minutes(5);
    publish(&bed, &general, "routing", resolved(handed_in)).await;
    let r = rows(&bed, &general, 2).await;
    let after = r
        .iter()
        .find(|r| r.0 == "after_resolution")
        .expect("after resolution");
    assert_eq!(after.2, ts_round(handed_in) + chrono::Duration::days(3));

    // On-site service: within a week.
    let served = Utc::now() - chrono::Duration::hours(2);
    let onsite = client
        .record_on_site_service(authed(
            AGENT,
            v1::RecordOnSiteServiceRequest {
                complaint_id: general.clone(),
                served_at: Some(ts(served)),
            },
        ))
        .await
        .expect("on-site")
        .into_inner()
        .revisit
        .expect("revisit");
    assert_eq!(onsite.kind(), v1::RevisitKind::AfterOnsiteService);
    assert_eq!(
        at(&onsite.due_at),
        ts_round(served) + chrono::Duration::days(7)
    );
    assert_eq!(onsite.customer_name, "王芳");
    assert_eq!(onsite.department_id, "dept-network");

    // Serious complaint (A) accepted: no next-day call; waiting past the promised time: a
    // waiting revisit, then none once resolved.
    let overdue_due = Utc::now() - chrono::Duration::minutes(1);
    let serious = received_and_routed(&bed, v1::Class::A, overdue_due).await;
    publish(
        &bed,
        &serious,
        "routing",
        Payload::AcceptedByDepartment(v1::AcceptedByDepartment {
            department_id: "dept-network".into(),
            accepted_by: "handler-1".into(),
            accepted_at: Some(ts(Utc::now())),
        }),
    )
    .await;
    let r = rows(&bed, &serious, 1).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, "while_waiting");
    assert_eq!(r[0].1, 1);
    assert_eq!(r[0].2, ts_round(overdue_due) + policy.revisit.waiting_every);

    let scheduled = bed.events_of("revisit.scheduled", &general, 3, WAIT).await;
    assert_eq!(scheduled.len(), 3);
    assert!(scheduled.iter().all(|e| e.producer == "revisit"));
    let scheduled = bed.events_of("revisit.scheduled", &serious, 1, WAIT).await;
    let Some(Payload::RevisitScheduled(s)) = &scheduled[0].payload else {
        panic!("payload")
    };
    assert_eq!(s.kind(), v1::RevisitKind::WhileWaiting);
    assert_eq!(s.revisit_id, r[0].4);
    // Planned on receipt, possibly before routing named the department; the work list shows it
    // under the department once the routing event is applied (events may still be in flight).
    eventually(
        "the waiting revisit listed under its department",
        10 * SECOND,
        async || {
            let listed = client
                .list_due_revisits(authed(
                    AGENT,
                    v1::ListDueRevisitsRequest {
                        department_id: "dept-network".into(),
                        ..Default::default()
                    },
                ))
                .await
                .expect("list")
                .into_inner();
            listed
                .revisits
                .iter()
                .any(|v| v.revisit_id == s.revisit_id)
                .then_some(())
        },
    )
    .await;
}

/// Timestamps travel in whole seconds in these tests.
fn ts_round(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("instant")
}

#[tokio::test]
async fn unreached_customer_is_retried_then_listed_as_never_reached() {
    let bed = TestBed::start().await;
    let (_svc, mut client, _policy) = revisit(&bed).await;
    let id = received_and_routed(&bed, v1::Class::B, Utc::now() + chrono::Duration::days(3)).await;
    publish(&bed, &id, "routing", resolved(Utc::now())).await;
    let rvt = rows(&bed, &id, 1).await[0].4.clone();

    claim(&mut client, AGENT, &rvt).await.expect("claim");
    let before = Utc::now();
    let first = outcome(&mut client, AGENT, unreached(&rvt))
        .await
        .expect("attempt 1");
    let r = first.revisit.expect("revisit");
    assert_eq!(r.state(), v1::RevisitState::Unreached);
    assert_eq!(r.attempts, 1);
    assert!(r.agent_id.is_empty(), "the retry is open to any agent");
    // The retry is scheduled an hour later (policy), and is on the work list.
    let scheduled = bed.events_of("revisit.scheduled", &id, 2, WAIT).await;
    let Some(Payload::RevisitScheduled(retry)) = &scheduled[1].payload else {
        panic!("payload")
    };
    let retry_at = at(&retry.due_at);
    assert!(retry_at >= ts_round(before) + chrono::Duration::hours(1));
    assert!(retry_at <= Utc::now() + chrono::Duration::hours(1));
    let due = client
        .list_due_revisits(authed(AGENT, v1::ListDueRevisitsRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(due.revisits.len(), 1);

    // A different agent takes the second attempt; it fails too: attempts are used up.
    claim(&mut client, OPERATOR, &rvt)
        .await
        .expect("claim again");
    let second = outcome(&mut client, OPERATOR, unreached(&rvt))
        .await
        .expect("attempt 2");
    assert_eq!(second.revisit.expect("revisit").attempts, 2);
    let due = client
        .list_due_revisits(authed(AGENT, v1::ListDueRevisitsRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert!(due.revisits.is_empty(), "no third attempt");
    let again = claim(&mut client, AGENT, &rvt)
        .await
        .expect_err("exhausted");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("unreached"), "{}", again.message());
    let completed = bed.events_of("revisit.completed", &id, 2, WAIT).await;
    assert_eq!(completed.len(), 2);
    assert_eq!(
        bed.events_of("revisit.scheduled", &id, 2, WAIT).await.len(),
        2
    );

    let report = client
        .revisit_rate_report(authed(MANAGER, v1::RevisitRateReportRequest::default()))
        .await
        .expect("report")
        .into_inner();
    assert_eq!(report.never_reached.len(), 1);
    assert_eq!(report.never_reached[0].attempts, 2);
    assert_eq!(report.never_reached[0].customer_name, "王芳");
    assert_eq!(report.missing, 1);
}

#[tokio::test]
async fn dissatisfied_is_not_a_repeat_but_complaining_again_reopens_as_repeat_complaint() {
    let bed = TestBed::start().await;
    let (_svc, mut client, _policy) = revisit(&bed).await;
    let far = Utc::now() + chrono::Duration::days(3);

    // Dissatisfied, does not complain again: satisfaction reported, no repeat.
    let quiet = received_and_routed(&bed, v1::Class::B, far).await;
    publish(&bed, &quiet, "routing", resolved(Utc::now())).await;
    let rvt = rows(&bed, &quiet, 1).await[0].4.clone();
    claim(&mut client, AGENT, &rvt).await.expect("claim");
    let resp = outcome(&mut client, AGENT, reached(&rvt, false))
        .await
        .expect("outcome");
    assert!(!resp.repeat_complaint);
    assert_eq!(resp.revisit.as_ref().expect("r").satisfied, Some(false));
    let reported = bed
        .events_of("complaint.satisfaction_reported", &quiet, 1, WAIT)
        .await;
    let Some(Payload::SatisfactionReported(s)) = &reported[0].payload else {
        panic!("payload")
    };
    assert!(!s.satisfied);
    assert_eq!(s.department_id, "dept-network");
    assert_eq!(s.revisit_id, rvt);

    // Dissatisfied and complains again: the repeat complaint, on the original, reopened.
    let repeat = received_and_routed(&bed, v1::Class::B, far).await;
    publish(
        &bed,
        &repeat,
        "routing",
        Payload::CauseRecorded(v1::CauseRecorded {
            responsible_person_id: "staff-77".into(),
            ..Default::default()
        }),
    )
    .await;
    publish(&bed, &repeat, "routing", resolved(Utc::now())).await;
    let rvt2 = rows(&bed, &repeat, 1).await[0].4.clone();
    claim(&mut client, AGENT, &rvt2).await.expect("claim");
    // Satisfied customers do not complain again; a repeat needs its reason.
    let mut bad = reached(&rvt2, true);
    bad.complains_again = true;
    bad.repeat_reason = "x".into();
    let err = outcome(&mut client, AGENT, bad)
        .await
        .expect_err("satisfied repeat");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("complains_again"));
    let mut no_reason = reached(&rvt2, false);
    no_reason.complains_again = true;
    let err = outcome(&mut client, AGENT, no_reason)
        .await
        .expect_err("no reason");
    assert!(err.message().contains("repeat_reason"));

    let mut again = reached(&rvt2, false);
    again.complains_again = true;
    again.repeat_reason = "the line still drops every night".into();
    let resp = outcome(&mut client, AGENT, again).await.expect("repeat");
    assert!(resp.repeat_complaint);

    let repeats = bed.events_of("complaint.repeat", &repeat, 1, WAIT).await;
    assert_eq!(repeats.len(), 1);
    let Some(Payload::RepeatComplaint(rc)) = &repeats[0].payload else {
        panic!("payload")
    };
    assert_eq!(rc.original_complaint_id, repeat);
    assert_eq!(rc.revisit_id, rvt2);
    assert_eq!(rc.department_id, "dept-network");
    assert_eq!(rc.responsible_person_id, "staff-77");
    assert_eq!(rc.original_class(), v1::Class::B);
    assert!(rc.reason.contains("drops"));
    let reopened = bed.events_of("complaint.reopened", &repeat, 1, WAIT).await;
    let Some(Payload::Reopened(ro)) = &reopened[0].payload else {
        panic!("payload")
    };
    assert!(ro.repeat_complaint);
    assert_eq!(ro.revisit_id, rvt2);
    // "Dissatisfied" stays apart from "repeat": the quiet complaint has neither event.
    assert!(
        bed.events_of("complaint.repeat", &quiet, 0, WAIT)
            .await
            .is_empty()
    );
    assert!(
        bed.events_of("complaint.reopened", &quiet, 0, WAIT)
            .await
            .is_empty()
    );

    // Recording twice is an illegal transition; nothing more is published.
    let err = outcome(&mut client, AGENT, reached(&rvt2, false))
        .await
        .expect_err("twice");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("completed"));

    // Sign-off by the department manager.
    let signed = client
        .sign_off(authed(
            MANAGER,
            v1::SignOffRequest {
                revisit_id: rvt2.clone(),
                manager_id: String::new(),
                result: "technician to replace the modem".into(),
            },
        ))
        .await
        .expect("sign off")
        .into_inner()
        .revisit
        .expect("revisit");
    assert_eq!(signed.state(), v1::RevisitState::SignedOff);
    assert_eq!(
        bed.events_of("revisit.signed_off", &repeat, 1, WAIT)
            .await
            .len(),
        1
    );
    let err = client
        .sign_off(authed(
            AGENT,
            v1::SignOffRequest {
                revisit_id: rvt.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("agents do not sign");
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn the_same_event_redelivered_under_another_message_id_plans_once() {
    let bed = TestBed::start().await;
    let (mut svc, _client, _policy) = revisit(&bed).await;
    let id = received_and_routed(&bed, v1::Class::B, Utc::now() + chrono::Duration::days(3)).await;
    let e = envelope(
        &id,
        "evt_resolved_once_0001",
        "routing",
        resolved(Utc::now()),
    );
    bed.publish_event_as(&e, &e.event_id).await;
    bed.publish_event_as(&e, &e.event_id).await; // platform dedup (same Nats-Msg-Id)
    bed.publish_event_as(&e, "another-message-id-1").await; // past dedup: same payload event id
    rows(&bed, &id, 1).await;
    // Another event after them proves the three were consumed.
    let marker =
        received_and_routed(&bed, v1::Class::B, Utc::now() + chrono::Duration::days(3)).await;
    publish(&bed, &marker, "routing", resolved(Utc::now())).await;
    rows(&bed, &marker, 1).await;
    // And again after a restart.
    svc.terminate(10 * SECOND).await;
    let (_svc2, _client2, _policy2) = revisit(&bed).await;
    bed.publish_event_as(&e, "another-message-id-2").await;
    let marker2 =
        received_and_routed(&bed, v1::Class::B, Utc::now() + chrono::Duration::days(3)).await;
    publish(&bed, &marker2, "routing", resolved(Utc::now())).await;
    rows(&bed, &marker2, 1).await;

    assert_eq!(rows(&bed, &id, 1).await.len(), 1);
    assert_eq!(
        bed.events_of("revisit.scheduled", &id, 1, WAIT).await.len(),
        1
    );
}

#[tokio::test]
async fn exactly_one_of_racing_agents_claims_a_revisit() {
    let bed = TestBed::start().await;
    let (svc, mut client, _policy) = revisit(&bed).await;
    let id = received_and_routed(&bed, v1::Class::B, Utc::now() + chrono::Duration::days(3)).await;
    publish(&bed, &id, "routing", resolved(Utc::now())).await;
    let rvt = rows(&bed, &id, 1).await[0].4.clone();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut c = RevisitServiceClient::new(bed.channel(&svc).await);
        let rvt = rvt.clone();
        let token = if i % 2 == 0 { AGENT } else { OPERATOR };
        tasks.push(tokio::spawn(async move {
            (token, claim(&mut c, token, &rvt).await)
        }));
    }
    let mut winners = std::collections::HashSet::new();
    let mut refused = 0;
    for t in tasks {
        let (token, res) = t.await.expect("task");
        match res {
            Ok(_) => {
                winners.insert(token);
            }
            Err(e) => {
                assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1, "one agent holds it");
    assert!(refused >= 4);
    // The loser cannot record the outcome.
    let loser = if winners.contains(AGENT) {
        OPERATOR
    } else {
        AGENT
    };
    let err = outcome(&mut client, loser, reached(&rvt, true))
        .await
        .expect_err("loser");
    assert_eq!(err.code(), Code::PermissionDenied);
    // Every call has returned: once the outbox is empty, every event they made is on the stream.
    bed.outbox_flushed("revisit", WAIT).await;
    assert_eq!(
        bed.events_of("revisit.claimed", &id, 1, WAIT).await.len(),
        1
    );
}

#[tokio::test]
async fn rate_report_counts_on_time_late_and_missing_by_department() {
    let bed = TestBed::start().await;
    let (_svc, mut client, _policy) = revisit(&bed).await;
    let far = Utc::now() + chrono::Duration::days(30);
    // Resolved four days ago: its three-day revisit was due yesterday → made now, it is late.
    let late = received_and_routed(&bed, v1::Class::B, far).await;
    publish(
        &bed,
        &late,
        "routing",
        resolved(Utc::now() - chrono::Duration::days(4)),
    )
    .await;
    // Resolved now: made now, on time.
    let on_time = received_and_routed(&bed, v1::Class::B, far).await;
    publish(&bed, &on_time, "routing", resolved(Utc::now())).await;
    // Resolved now, never made: missing.
    let missing = received_and_routed(&bed, v1::Class::B, far).await;
    publish(&bed, &missing, "routing", resolved(Utc::now())).await;
    rows(&bed, &missing, 1).await;
    for c in [&late, &on_time] {
        let rvt = rows(&bed, c, 1).await[0].4.clone();
        claim(&mut client, AGENT, &rvt).await.expect("claim");
        outcome(&mut client, AGENT, reached(&rvt, true))
            .await
            .expect("outcome");
    }
    let report = client
        .revisit_rate_report(authed(
            MANAGER,
            v1::RevisitRateReportRequest {
                department_id: "dept-network".into(),
                from: Some(ts(Utc::now() - chrono::Duration::days(10))),
                to: Some(ts(Utc::now() + chrono::Duration::days(10))),
                kind: v1::RevisitKind::AfterResolution as i32,
            },
        ))
        .await
        .expect("report")
        .into_inner();
    assert_eq!(
        (report.due, report.on_time, report.late, report.missing),
        (3, 1, 1, 1)
    );
    assert_eq!(report.rate_bp, 3333);
    assert_eq!(report.by_department.len(), 1);
    assert_eq!(report.by_department[0].department_id, "dept-network");
    assert_eq!(report.by_department[0].rate_bp, 3333);
    assert!(
        report.never_reached.is_empty(),
        "nobody was tried and missed"
    );

    let bad = client
        .revisit_rate_report(authed(
            MANAGER,
            v1::RevisitRateReportRequest {
                from: Some(ts(Utc::now())),
                to: Some(ts(Utc::now() - chrono::Duration::days(1))),
                ..Default::default()
            },
        ))
        .await
        .expect_err("bad period");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("to"));
}

/// A backlog of arrivals (here: published while the service was down) is applied in batches
/// with the outcome of one at a time: each complaint's customer, number and department as its
/// events tell them, the next check at the promised time, a customer already waiting past it
/// given one waiting revisit, and an event republished under another message id applied once.
#[tokio::test]
async fn a_backlog_of_arrivals_is_applied_in_batches_with_the_outcome_of_one_at_a_time() {
    let bed = TestBed::start().await;
    let (mut first, _client, policy) = revisit(&bed).await;
    first.terminate(10 * SECOND).await;

    let promised = Utc::now() + chrono::Duration::days(2);
    let mut waiting = Vec::new();
    let mut on_time = Vec::new();
    for i in 0..50 {
        let due = if i % 5 == 0 {
            Utc::now() - chrono::Duration::hours(1)
        } else {
            promised
        };
        let id = received_and_routed(&bed, v1::Class::B, due).await;
        let assigned = publish(
            &bed,
            &id,
            "routing",
            Payload::ComplaintAssigned(v1::ComplaintAssigned {
                department_id: "dept-network".into(),
                department_manager_id: "manager-1".into(),
                assignee_id: format!("handler-{}", i % 3),
                ..Default::default()
            }),
        )
        .await;
        if i == 7 {
            bed.publish_event_as(&assigned, "assigned-again-under-another-id")
                .await;
        }
        if i % 5 == 0 {
            waiting.push(id);
        } else {
            on_time.push((id, format!("handler-{}", i % 3)));
        }
    }

    let svc = bed
        .spawn(
            "redress-revisit",
            &[
                ("REDRESS_POLICY_FILE", policy.as_str()),
                ("REDRESS_CONSUMER_BATCH", "128"),
                ("RUST_LOG", "info,redress_platform=debug"),
            ],
        )
        .await;
    let c = svc.consumed("revisit-facts", 151.0, 30 * SECOND).await;
    // 50 × 3 arrivals and the copy.
    assert_eq!(c.messages, 151.0, "{}", c.page);
    assert!(c.batches < 151.0 / 4.0, "{} batches", c.batches);
    assert!(!svc.logs().contains("batch failed"), "{}", svc.logs());

    for id in &waiting {
        let planned = rows(&bed, id, 1).await;
        assert_eq!(planned.len(), 1, "{id}: {planned:?}");
        assert_eq!(planned[0].0, "while_waiting", "{id}: {planned:?}");
    }
    let mut conn = bed.db.connect().await;
    for (id, handler) in &on_time {
        let (number, name, summary, manager, assignee, check): (
            String,
            String,
            String,
            String,
            String,
            Option<DateTime<Utc>>,
        ) = sqlx::query_as(
            "SELECT number, customer_name, summary, department_manager_id, assignee_id,
                    waiting_check_at
             FROM revisit.complaints WHERE complaint_id = $1",
        )
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .expect("complaint");
        assert_eq!(number, format!("RD-{}", &id[id.len() - 6..]));
        assert_eq!(
            (name.as_str(), summary.as_str()),
            ("王芳", "broadband: line down for three days")
        );
        assert_eq!(
            (manager.as_str(), assignee.as_str()),
            ("manager-1", handler.as_str())
        );
        assert_eq!(
            check.map(|c| c.timestamp()),
            Some(promised.timestamp()),
            "next looked at when the promise falls due: {id}"
        );
        let none: i64 =
            sqlx::query_scalar("SELECT count(*) FROM revisit.revisits WHERE complaint_id = $1")
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .expect("count");
        assert_eq!(none, 0, "nothing to plan yet: {id}");
    }
}
