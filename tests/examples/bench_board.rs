//! The board's event gateway under load: all five services and the board, confirmed
//! submissions published at a steady rate, and 50 dashboards (Server-Sent Events clients) each
//! receiving every event. Measured: the lag from an event's commit (its `occurredAt`, the
//! service's clock when it wrote the event in the same transaction) to its arrival at each SSE
//! client, beside the same lag for a plain NATS subscriber on the events' subjects in the same
//! run — the difference is what the gateway adds. Also the events delivered per second, the
//! clients dropped as too slow, and the board's CPU and memory.
//!
//! Run: `scripts/bench.sh board 5000` (release build). `BENCH_RATE` (complaints/s, default
//! 300), `BENCH_CLIENTS` (default 50).

mod baseline;
mod load;
mod procstat;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use baseline::{raw_jetstream, raw_postgres};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use load::publish;
use procstat::{MachineCpu, PidCpu, cpu_seconds, rss_mib};
use redress_test_support::TestBed;
use redress_test_support::sse::{SseClient, SseResponse};
use tokio::sync::Mutex;

/// The `occurredAt` of an event's JSON, found without parsing all of it (50 clients parse
/// every event; the bench must not be the bottleneck it measures).
fn occurred_at(data: &str) -> Option<DateTime<Utc>> {
    let key = "\"occurredAt\":\"";
    let start = data.find(key)? + key.len();
    let end = start + data[start..].find('"')?;
    DateTime::parse_from_rfc3339(&data[start..end])
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn lag_ms(at: DateTime<Utc>) -> f64 {
    (Utc::now() - at).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

fn percentiles(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        at(0.5),
        at(0.99),
        at(1.0),
        v.len()
    )
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000);
    let rate: f64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300.0);
    let clients: usize = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let bed = TestBed::start().await;
    let js_rate = raw_jetstream(&bed, 20_000).await;
    eprintln!("baseline JetStream: {js_rate:.0} msg/s");
    let pg_rate = raw_postgres(&bed, 3).await;
    eprintln!("baseline PostgreSQL: {pg_rate:.0} commits/s");

    let quiet = [("RUST_LOG", "warn")];
    let mut services = Vec::new();
    for binary in [
        "redress-intake",
        "redress-routing",
        "redress-sla-monitor",
        "redress-escalation",
        "redress-revisit",
    ] {
        services.push(bed.spawn(binary, &quiet).await);
    }
    let board = bed
        .spawn(
            "redress-board",
            &[
                ("RUST_LOG", "warn"),
                ("REDRESS_BOARD_HTTP_ADDR", "127.0.0.1:0"),
            ],
        )
        .await;
    let http: SocketAddr = *board.listening.get("http").expect("board http");

    // The baseline subscriber: plain NATS on the same subjects, same lag measure.
    let raw_lags = Arc::new(Mutex::new(Vec::new()));
    let mut sub = async_nats::connect(bed.nats.url())
        .await
        .expect("connect")
        .subscribe(format!("{}.events.>", bed.prefix))
        .await
        .expect("subscribe");
    let raw = {
        let raw_lags = raw_lags.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let Ok(event) = <redress_proto::v1::Event as prost::Message>::decode(m.payload)
                else {
                    continue;
                };
                if let Some(t) = event.occurred_at {
                    let at =
                        DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap_or_default();
                    raw_lags.lock().await.push(lag_ms(at));
                }
            }
        })
    };

    // The dashboards.
    let sse_lags = Arc::new(Mutex::new(Vec::new()));
    let delivered = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..clients {
        let mut client = match SseClient::connect(
            http,
            "/events",
            &[("Authorization", "Bearer test-viewer-token")],
        )
        .await
        {
            SseResponse::Stream(c) => c,
            SseResponse::Refused { status, body } => panic!("refused {status}: {body}"),
        };
        let (sse_lags, delivered, dropped, done) = (
            sse_lags.clone(),
            delivered.clone(),
            dropped.clone(),
            done.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let Some(e) = client.next(Duration::from_millis(500)).await else {
                    continue;
                };
                if e.event == "dropped" {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                if let Some(at) = occurred_at(&e.data) {
                    mine.push(lag_ms(at));
                }
                delivered.fetch_add(1, Ordering::Relaxed);
            }
            sse_lags.lock().await.extend(mine);
        }));
    }

    let cpu_before = cpu_seconds(board.pid());
    let me_before = cpu_seconds(std::process::id());
    let pg_before = PidCpu::postgres();
    let machine_before = MachineCpu::now();
    let started = Instant::now();
    eprintln!("publishing {n} complaints at {rate:.0}/s to {clients} dashboards…");
    publish(&bed, true, "board", n, Some(rate)).await;
    // Let the tail of the events arrive, then stop reading.
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = delivered.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let busy = started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(board.pid()) - cpu_before) / busy * 100.0;
    let pg = PidCpu::postgres().since(&pg_before) / busy * 100.0;
    let me = (cpu_seconds(std::process::id()) - me_before) / busy * 100.0;
    let machine = MachineCpu::now().since(&machine_before);
    let rss = rss_mib(board.pid());
    done.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.await;
    }
    raw.abort();
    let raw_lags = raw_lags.lock().await.clone();
    let events = raw_lags.len();
    drop(services);

    println!("\nboard event gateway: {n} complaints at {rate:.0}/s, {clients} SSE clients\n");
    println!("| measure | figure |");
    println!("|---|---|");
    println!("| baseline: raw JetStream publish, 512 B | {js_rate:.0} msg/s |");
    println!(
        "| baseline: raw PostgreSQL single-row commits, 8 connections | {pg_rate:.0} commits/s |"
    );
    println!(
        "| events published by the services (seen by a plain NATS subscriber) | {events} ({:.0}/s) |",
        events as f64 / busy
    );
    println!(
        "| **baseline: commit → plain NATS subscriber** | {} |",
        percentiles(raw_lags)
    );
    println!(
        "| **commit → each of {clients} SSE clients** | {} |",
        percentiles(sse_lags.lock().await.clone())
    );
    println!(
        "| events delivered to SSE clients | {} ({:.0}/s) |",
        delivered.load(Ordering::Relaxed),
        delivered.load(Ordering::Relaxed) as f64 / busy
    );
    println!(
        "| clients dropped as too slow | {} |",
        dropped.load(Ordering::Relaxed)
    );
    println!("| board CPU (100 % = one core) / resident memory | {cpu:.0} % / {rss:.0} MiB |");
    println!(
        "| PostgreSQL CPU over the run (all services and the board's projection) | {pg:.0} % |"
    );
    println!(
        "| this benchmark's own CPU (the {clients} clients reading, the NATS subscriber) | {me:.0} % |"
    );
    println!("| the whole machine over the run (`/proc/stat`) | {machine} |");
}
