//! The whole system for a system test: the five services as processes on one test bed, with a
//! policy of seconds, a small organisation, and the general manager named.

#![allow(dead_code)]

use std::time::Duration;

use redress_proto::v1;
use redress_test_support::{ServiceProcess, TestBed, eventually};

/// Limits of seconds, so a test sees warnings, overdues and escalations without waiting hours.
pub const POLICY: &str = r#"
[limits]
acceptance = "60s"
warning_share = 0.5
[limits.completion]
A = "4s"
B = "4s"
C = "4s"
D = "4s"
[limits.first_feedback]
A = "60s"
B = "60s"
C = "60s"
D = "60s"
[escalation]
l2_after = "3s"
unacknowledged_resend_after = "10m"
unacknowledged_raise_after = "1h"
"#;

/// One department, its manager, one handler (handler-1, whose token the test bed knows) and the
/// general manager.
pub const SEED: &str = r#"
default_department = "dept-network"

[[departments]]
id = "dept-network"
name = "Network Operations"
manager_id = "manager-1"
acceptance_owner_id = "manager-1"

[[staff]]
id = "handler-1"
name = "Handler One"
department_id = "dept-network"
role = "handler"

[[staff]]
id = "manager-1"
name = "Manager One"
department_id = "dept-network"
role = "department_manager"

[[staff]]
id = "gm-1"
name = "General Manager"
department_id = "dept-network"
role = "general_manager"

[[rules]]
id = "broadband"
category = "network_quality"
department_id = "dept-network"
"#;

/// The common organisation plus the complaint centre (`dept-centre`, managed by `centre-1`),
/// which owns complaints until they are confirmed and routed (DOMAIN §9).
pub fn seed_with_centre() -> String {
    format!(
        "{SEED}{}",
        r#"
[[departments]]
id = "dept-centre"
name = "Complaint Centre"
manager_id = "centre-1"
service_centre = true

[[staff]]
id = "centre-1"
name = "Centre Manager"
department_id = "dept-centre"
role = "department_manager"
"#
    )
}

pub const ESCALATION: &str = r#"
general_manager_id = "gm-1"
log_channel = true
tick_ms = 200
"#;

/// A broadband complaint from the call centre (class C, routed to dept-network by the seed's
/// rule), keyed by `external_id`.
pub fn complaint(external_id: &str) -> v1::ComplaintDetails {
    v1::ComplaintDetails {
        key: Some(v1::SubmissionKey {
            source_system: "callcentre".into(),
            external_id: external_id.into(),
        }),
        customer: Some(v1::Customer {
            name: "王芳".into(),
            phone: "13800138000".into(),
            ..Default::default()
        }),
        channel: v1::Channel::Hotline as i32,
        business: "broadband".into(),
        description: "Line down.".into(),
        demand: "Repair.".into(),
        category: "network_quality".into(),
        first_contact: Some(v1::FirstContact {
            employee_id: "e-1".into(),
            ..Default::default()
        }),
        confirmation: Some(v1::Confirmation {
            method: v1::ConfirmationMethod::Phone as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Submits `details` through intake's gRPC door as the agent; the new complaint's id.
pub async fn submit(bed: &TestBed, stack: &Stack, details: v1::ComplaintDetails) -> String {
    v1::intake_service_client::IntakeServiceClient::new(bed.channel(&stack.intake).await)
        .submit(redress_test_support::authed(
            "test-agent-token",
            v1::SubmitRequest {
                details: Some(details),
            },
        ))
        .await
        .expect("submit")
        .into_inner()
        .complaint_id
}

/// The five running services.
pub struct Stack {
    pub intake: ServiceProcess,
    pub routing: ServiceProcess,
    pub sla: ServiceProcess,
    pub escalation: ServiceProcess,
    pub revisit: ServiceProcess,
    _dir: tempfile::TempDir,
}

/// Starts all five with the settings above plus `extra` environment for each.
pub async fn start(bed: &TestBed, extra: &[(&str, &str)]) -> Stack {
    start_with(bed, POLICY, SEED, extra).await
}

/// Starts all five with this policy and organisation seed.
pub async fn start_with(bed: &TestBed, policy: &str, seed: &str, extra: &[(&str, &str)]) -> Stack {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let policy = write("policy.toml", policy);
    let seed = write("seed.toml", seed);
    let escalation = write("escalation.toml", ESCALATION);
    let with = |more: &[(&'static str, String)]| {
        let mut env: Vec<(String, String)> = vec![("REDRESS_POLICY_FILE".into(), policy.clone())];
        env.extend(more.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    let spawn = |binary: &'static str, env: Vec<(String, String)>| async move {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        bed.spawn(binary, &env).await
    };
    Stack {
        intake: spawn("redress-intake", with(&[])).await,
        routing: spawn(
            "redress-routing",
            with(&[("REDRESS_ROUTING_SEED", seed.clone())]),
        )
        .await,
        sla: spawn("redress-sla-monitor", with(&[])).await,
        escalation: spawn(
            "redress-escalation",
            with(&[("REDRESS_ESCALATION_SETTINGS", escalation.clone())]),
        )
        .await,
        revisit: spawn("redress-revisit", with(&[])).await,
        _dir: dir,
    }
}

/// The barrier for "nothing more comes of it" (issue 16), instead of a fixed wait: follows the
/// complaints `ids` down the pipeline — each consumer has acknowledged everything, no SLA clock
/// and no climb of their escalations is due within `horizon` (past the limits the test is
/// about, short of those it is not), each outbox is relayed — so the events about them on the
/// stream are all there will be until then.
pub async fn settled(bed: &TestBed, ids: &[&str], horizon: Duration) {
    const WITHIN: Duration = Duration::from_secs(30);
    let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    bed.outbox_flushed("intake", WITHIN).await;
    bed.consumed("routing-intake-events", WITHIN).await;
    bed.outbox_flushed("routing", WITHIN).await;
    bed.consumed("sla-monitor-clocks", WITHIN).await;
    nothing_due(
        bed,
        &ids,
        horizon,
        "the SLA clocks",
        "SELECT count(*) FROM sla_monitor.clocks WHERE complaint_id = ANY($1)
            AND next_fire_at < now() + make_interval(secs => $2)",
    )
    .await;
    bed.outbox_flushed("sla_monitor", WITHIN).await;
    bed.consumed("escalation-ladder", WITHIN).await;
    nothing_due(
        bed,
        &ids,
        horizon,
        "the escalation ladder",
        // The ladder's two timers as its worker reads them, below the top of the default
        // two-level ladder.
        "SELECT count(*) FROM escalation.escalations WHERE complaint_id = ANY($1) AND level < 2
            AND ((state = 'raised' AND may_climb
                  AND acknowledge_by < now() + make_interval(secs => $2))
              OR (state IN ('raised', 'acknowledged')
                  AND raise_at < now() + make_interval(secs => $2)))",
    )
    .await;
    bed.outbox_flushed("escalation", WITHIN).await;
    bed.consumed("revisit-facts", WITHIN).await;
    bed.outbox_flushed("revisit", WITHIN).await;
    bed.consumed("intake-registry", WITHIN).await;
    bed.outbox_flushed("intake", WITHIN).await;
}

/// Waits until `sql` (counting what of `ids` is due before now + `horizon`) gives 0.
async fn nothing_due(
    bed: &TestBed,
    ids: &[String],
    horizon: Duration,
    what: &str,
    sql: &'static str,
) {
    let mut conn = bed.db.connect().await;
    eventually(
        &format!("{what} to have nothing due"),
        Duration::from_secs(30),
        async || {
            let due: i64 = sqlx::query_scalar(sql)
                .bind(ids)
                .bind(horizon.as_secs_f64())
                .fetch_one(&mut conn)
                .await
                .ok()?;
            (due == 0).then_some(())
        },
    )
    .await;
}
