//! The whole pipeline end to end: confirmed call-centre submissions published on the bus →
//! intake records and classifies them → routing routes and assigns each to a handler → the SLA
//! monitor sets its clocks; all five services running, as in production. Measured beside the
//! raw ceilings of this machine in the same run (JetStream publish, PostgreSQL commits).
//!
//! The backlog is published first (as a call centre's queue arrives after an outage), then the
//! drain is timed; latency is publish → `complaint.assigned` committed, per complaint.
//!
//! Run: `scripts/bench.sh pipeline 20000` (release build). `BENCH_BODY=protobuf` sends protobuf
//! bodies instead of JSON; `BENCH_OPEN=N` first fills the system with N open complaints, to see
//! whether the rate holds as open complaints pile up.

mod baseline;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use baseline::{WINDOW, details, raw_jetstream, raw_postgres};
use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_proto::v1;
use redress_test_support::TestBed;

/// An organisation with one department, its manager and eight handlers, and the general
/// manager; every complaint routes by the category rule.
const SEED: &str = r#"
default_department = "dept-network"

[[departments]]
id = "dept-network"
name = "Network Operations"
manager_id = "manager-1"

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

fn seed() -> String {
    let mut s = SEED.to_owned();
    for h in 1..=8 {
        s.push_str(&format!(
            "\n[[staff]]\nid = \"handler-{h}\"\nname = \"Handler {h}\"\n\
             department_id = \"dept-network\"\nrole = \"handler\"\n"
        ));
    }
    s
}

/// The body and its content type, as an integration would send it.
fn body(json: bool, d: v1::ComplaintDetails) -> (Vec<u8>, &'static str) {
    let request = v1::SubmitRequest { details: Some(d) };
    if !json {
        return (request.encode_to_vec(), "application/protobuf");
    }
    static DESC: std::sync::LazyLock<prost_reflect::MessageDescriptor> =
        std::sync::LazyLock::new(|| {
            prost_reflect::DescriptorPool::decode(redress_proto::FILE_DESCRIPTOR_SET)
                .expect("descriptors")
                .get_message_by_name("redress.complaints.v1.SubmitRequest")
                .expect("SubmitRequest")
        });
    let dynamic =
        prost_reflect::DynamicMessage::decode(DESC.clone(), request.encode_to_vec().as_slice())
            .expect("re-read");
    (
        serde_json::to_vec(&dynamic).expect("json"),
        "application/json",
    )
}

/// Publishes `n` submissions keyed `<prefix>-<i>`; returns when each was stored by JetStream.
async fn publish(
    bed: &TestBed,
    json: bool,
    prefix: &str,
    n: usize,
) -> HashMap<String, DateTime<Utc>> {
    let subject = format!("{}.intake.submit", bed.prefix);
    let mut sent = HashMap::with_capacity(n);
    let mut acks = Vec::with_capacity(WINDOW);
    for i in 0..n {
        let d = details(prefix, i);
        let key = d
            .key
            .as_ref()
            .map(|k| k.external_id.clone())
            .unwrap_or_default();
        let (payload, content_type) = body(json, d);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Content-Type", content_type);
        acks.push(
            bed.js
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
                .expect("publish"),
        );
        sent.insert(key, Utc::now());
        if acks.len() == WINDOW {
            for a in acks.drain(..) {
                a.await.expect("stored");
            }
        }
    }
    for a in acks {
        a.await.expect("stored");
    }
    sent
}

async fn count(conn: &mut sqlx::PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(conn)
        .await
        .expect("count")
}

/// Waits until `sql` counts at least `want`; returns when.
async fn until(conn: &mut sqlx::PgConnection, sql: &str, want: i64, since: Instant) -> Duration {
    loop {
        let c = count(conn, sql).await;
        if c >= want {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(1800),
            "only {c} of {want}: {sql}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

const ASSIGNED: &str = "SELECT count(*) FROM routing.handling WHERE stage = 'assigned'";
const CLOCKS: &str = "SELECT count(*) FROM sla_monitor.clocks
    WHERE kind IN ('acceptance', 'first_feedback', 'completion', 'intermediate_result')";

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let json = std::env::var("BENCH_BODY").map_or(true, |b| b != "protobuf");
    let open: usize = std::env::var("BENCH_OPEN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bed = TestBed::start().await;
    let js_rate = raw_jetstream(&bed, n).await;
    eprintln!("baseline JetStream: {js_rate:.0} msg/s");
    let pg_rate = raw_postgres(&bed, 3).await;
    eprintln!("baseline PostgreSQL: {pg_rate:.0} commits/s");

    let dir = tempfile::tempdir().expect("tempdir");
    let seed_path = dir.path().join("seed.toml");
    std::fs::write(&seed_path, seed()).expect("seed");
    let seed_path = seed_path.display().to_string();
    let quiet = [("RUST_LOG", "warn")];
    let mut services = Vec::new();
    for binary in [
        "redress-intake",
        "redress-routing",
        "redress-sla-monitor",
        "redress-escalation",
        "redress-revisit",
    ] {
        let mut env: Vec<(&str, &str)> = quiet.to_vec();
        if binary == "redress-routing" {
            env.push(("REDRESS_ROUTING_SEED", &seed_path));
        }
        services.push(bed.spawn(binary, &env).await);
    }
    let mut conn = bed.db.connect().await;

    if open > 0 {
        eprintln!("filling the system with {open} open complaints…");
        let started = Instant::now();
        publish(&bed, json, "open", open).await;
        until(&mut conn, ASSIGNED, open as i64, started).await;
        eprintln!(
            "{open} open complaints in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    let before = count(&mut conn, ASSIGNED).await;
    let clocks_before = count(&mut conn, CLOCKS).await;

    let started = Instant::now();
    let sent = publish(&bed, json, "b", n).await;
    let published = started.elapsed();
    eprintln!(
        "published {n} submissions in {:.1} s",
        published.as_secs_f64()
    );
    let assigned = until(&mut conn, ASSIGNED, before + n as i64, started).await;
    let clocked = until(&mut conn, CLOCKS, clocks_before + 4 * n as i64, started).await;
    let done = assigned.max(clocked);

    // Publish → assigned, per complaint: routing's `complaint.assigned` outbox row is written
    // in the transaction that assigns.
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT c.external_id, o.created_at FROM routing.outbox o
         JOIN intake.complaints c ON c.complaint_id = o.complaint_id
         WHERE o.subject LIKE '%.events.complaint.assigned' AND c.external_id LIKE 'b-%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("assigned rows");
    let mut latencies: Vec<f64> = rows
        .iter()
        .filter_map(|(key, at)| {
            let sent_at = sent.get(key)?;
            Some((*at - *sent_at).num_milliseconds() as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    drop(services);

    let body = if json { "JSON" } else { "protobuf" };
    println!(
        "\nwhole pipeline, {n} confirmed submissions ({body} bodies on the bus), {open} open before\n"
    );
    println!("| measure | figure |");
    println!("|---|---|");
    println!(
        "| baseline: raw JetStream publish, 512 B, acks awaited in bulk | {js_rate:.0} msg/s |"
    );
    println!(
        "| baseline: raw PostgreSQL single-row commits, 8 connections | {pg_rate:.0} commits/s |"
    );
    println!(
        "| submissions published to the bus | {:.0} msg/s |",
        n as f64 / published.as_secs_f64()
    );
    println!(
        "| complaints recorded, routed and assigned | {:.0} /s ({:.1} s) |",
        n as f64 / assigned.as_secs_f64(),
        assigned.as_secs_f64()
    );
    println!(
        "| … and their four SLA clocks set | {:.0} /s ({:.1} s) |",
        n as f64 / done.as_secs_f64(),
        done.as_secs_f64()
    );
    println!(
        "| publish → assigned, p50 / p99 / max ({} complaints) | {:.1} s / {:.1} s / {:.1} s |",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
}
