//! SLA monitor benchmark (a command, not a test): `cargo bench -p redress-sla-monitor --bench sla`
//! (or `scripts/bench-sla.sh`). Sizes from `SLA_BENCH_SIZES` (default `10000,100000,1000000`).
//!
//! For each size: that many open clocks far in the future fill the table; then
//! `SLA_BENCH_RATE` (default 1,000) clocks a second fall due for `SLA_BENCH_SECONDS` (default 5)
//! seconds. `SLA_BENCH_RATE=10000 SLA_BENCH_SECONDS=1` is STACK.md's "10,000 deadlines falling
//! due in the same second". Reported: lateness of the
//! overdue events (the monitor's emit time − due time, and arrival on NATS − due time),
//! p50/p99/max; the monitor's CPU while idle and while firing, and its RSS (from /proc); and
//! clock-update throughput from events (complaint.received → four clocks written). A baseline
//! measured in the same run: raw PostgreSQL single-row commits per second.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use prost::Message as _;
use redress_domain::{ComplaintId, EventId};
use redress_proto::v1::{self, event::Payload};
use redress_test_support::TestBed;
use sqlx::{Connection, Executor, PgConnection};

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th overall.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU share of one core used by `pid` over `d`.
async fn cpu_over(pid: u32, d: Duration) -> f64 {
    let t0 = cpu_ticks(pid);
    let start = Instant::now();
    tokio::time::sleep(d).await;
    let ticks = cpu_ticks(pid) - t0;
    ticks as f64 / 100.0 / start.elapsed().as_secs_f64() * 100.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn time(t: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.as_ref().unwrap();
    DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap()
}

async fn baseline_commits(conn: &mut PgConnection) -> f64 {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS public.bench_commit (id BIGSERIAL PRIMARY KEY, v TEXT)",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("INSERT INTO public.bench_commit (v) VALUES ('x')")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

struct Row {
    size: i64,
    emitted: usize,
    expected: i64,
    emit: [f64; 3],
    arrive: [f64; 3],
    idle_cpu: f64,
    busy_cpu: f64,
    rss: f64,
    updates_per_s: f64,
}

#[tokio::main]
async fn main() {
    let sizes: Vec<i64> = std::env::var("SLA_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let seconds: i64 = std::env::var("SLA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rate: i64 = std::env::var("SLA_BENCH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(1000);
    let bed = TestBed::start().await;
    let svc = bed
        .spawn("redress-sla-monitor", &[("RUST_LOG", "warn")])
        .await;
    let pid = svc.pid();
    let mut conn = PgConnection::connect(&bed.db.url).await.unwrap();
    let baseline = baseline_commits(&mut conn).await;
    let mut rows = Vec::new();
    for &size in &sizes {
        eprintln!("size {size}: filling");
        conn.execute("TRUNCATE sla_monitor.clocks, sla_monitor.complaints")
            .await
            .unwrap();
        // Open clocks far in the future: they must cost nothing while they wait.
        sqlx::query(
            "INSERT INTO sla_monitor.clocks (complaint_id, kind, key, started_at, due_at, warn_at,
                state, next_fire_at)
             SELECT 'cmp_fill_' || g, 'completion', '', now(), now() + interval '30 days',
                now() + interval '20 days', 'running', now() + interval '20 days' + g * interval '1 ms'
             FROM generate_series(1, $1) AS g",
        )
        .bind(size)
        .execute(&mut conn)
        .await
        .unwrap();
        conn.execute("ANALYZE sla_monitor.clocks").await.unwrap();
        let idle_cpu = cpu_over(pid, Duration::from_secs(3)).await;

        // `rate` clocks a second fall due, starting 2 s from now, for `seconds` seconds; they are
        // already warned, so each emits exactly one overdue at due + 1 ms.
        let n = rate * seconds;
        let mut sub = bed.client.subscribe("t.events.sla.overdue").await.unwrap();
        let t0 = Utc::now() + chrono::Duration::seconds(2);
        sqlx::query(
            "INSERT INTO sla_monitor.clocks (complaint_id, kind, key, started_at, due_at, warn_at,
                state, warned_at, next_fire_at)
             SELECT 'cmp_due_' || g, 'completion', '', $2, d, $2, 'warned', $2, d + interval '1 ms'
             FROM generate_series(1, $1) AS g,
                  LATERAL (SELECT $2 + g * ($3 * interval '1 microsecond')) AS t(d)",
        )
        .bind(n)
        .bind(t0)
        .bind(1_000_000 / rate)
        .execute(&mut conn)
        .await
        .unwrap();
        let cpu_start = cpu_ticks(pid);
        let wall = Instant::now();
        let mut emit = Vec::with_capacity(n as usize);
        let mut arrive = Vec::with_capacity(n as usize);
        let deadline = Instant::now() + Duration::from_secs(seconds as u64 + 20);
        while (emit.len() as i64) < n && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
                Ok(Some(m)) => {
                    let now = Utc::now();
                    let e = v1::Event::decode(m.payload).unwrap();
                    if let Some(Payload::SlaOverdue(o)) = &e.payload {
                        let due = time(&o.due_at);
                        emit.push(
                            (time(&e.occurred_at) - due).num_microseconds().unwrap() as f64
                                / 1000.0,
                        );
                        arrive.push((now - due).num_microseconds().unwrap() as f64 / 1000.0);
                    }
                }
                _ => break,
            }
        }
        let busy_cpu =
            (cpu_ticks(pid) - cpu_start) as f64 / 100.0 / wall.elapsed().as_secs_f64() * 100.0;
        let rss = rss_mib(pid);
        emit.sort_by(f64::total_cmp);
        arrive.sort_by(f64::total_cmp);

        // Clock updates from events: complaint.received events, each writing four clocks.
        let k = 2000;
        let start = Instant::now();
        for _ in 0..k {
            let id = ComplaintId::new().to_string();
            let e = v1::Event {
                event_id: EventId::new().to_string(),
                complaint_id: id.clone(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: Utc::now().timestamp(),
                    nanos: 0,
                }),
                schema_version: redress_proto::SCHEMA_VERSION,
                producer: "bench".into(),
                payload: Some(Payload::ComplaintReceived(v1::ComplaintReceived {
                    class: v1::Class::C as i32,
                    complaint_number: id,
                    ..Default::default()
                })),
                ..Default::default()
            };
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", e.event_id.as_str());
            // Fire-and-forget publish; acks are awaited below through the count.
            let _ack = bed
                .js
                .publish_with_headers("t.events.complaint.received", h, e.encode_to_vec().into())
                .await
                .unwrap();
        }
        loop {
            let done: i64 = sqlx::query_scalar("SELECT count(*) FROM sla_monitor.complaints")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            if done >= k || start.elapsed() > Duration::from_secs(120) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let updates_per_s = (k * 4) as f64 / start.elapsed().as_secs_f64();
        rows.push(Row {
            size,
            emitted: emit.len(),
            expected: n,
            emit: [
                pct(&emit, 0.5),
                pct(&emit, 0.99),
                emit.last().copied().unwrap_or(f64::NAN),
            ],
            arrive: [
                pct(&arrive, 0.5),
                pct(&arrive, 0.99),
                arrive.last().copied().unwrap_or(f64::NAN),
            ],
            idle_cpu,
            busy_cpu,
            rss,
            updates_per_s,
        });
    }
    println!(
        "\nSLA monitor, {rate} deadlines/s for {seconds} s per size; lateness in ms (emit = event time − due, arrive = on NATS − due)"
    );
    println!("baseline: raw PostgreSQL single-row commits/s: {baseline:.0}\n");
    println!(
        "| open clocks | overdue emitted | emit p50 | emit p99 | emit max | arrive p50 | arrive p99 | arrive max | idle CPU % | firing CPU % | RSS MiB | clock updates/s from events |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {}/{} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} |",
            r.size,
            r.emitted,
            r.expected,
            r.emit[0],
            r.emit[1],
            r.emit[2],
            r.arrive[0],
            r.arrive[1],
            r.arrive[2],
            r.idle_cpu,
            r.busy_cpu,
            r.rss,
            r.updates_per_s
        );
    }
}
