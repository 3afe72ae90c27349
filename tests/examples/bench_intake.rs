//! Intake throughput: call-centre submissions published on the bus → complaints recorded,
//! classified and their events published — measured beside the raw ceilings of this machine,
//! measured in the same run: JetStream publish (async, acks awaited in bulk) and PostgreSQL
//! single-row commits.
//!
//! Run: `scripts/bench.sh` (release build), or
//! `REDRESS_BIN_DIR=target/release cargo run --release -p redress-system-tests --example bench_intake -- 20000`.

mod baseline;

use std::time::{Duration, Instant};

use baseline::{WINDOW, details, raw_jetstream, raw_postgres};
use prost::Message as _;
use redress_proto::v1;
use redress_test_support::TestBed;

fn submission(i: usize) -> Vec<u8> {
    v1::SubmitRequest {
        details: Some(details("b", i)),
    }
    .encode_to_vec()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let bed = TestBed::start().await;
    let js_rate = raw_jetstream(&bed, n).await;
    eprintln!("baseline JetStream: {js_rate:.0} msg/s");
    let pg_rate = raw_postgres(&bed, 3).await;
    eprintln!("baseline PostgreSQL: {pg_rate:.0} commits/s");

    let svc = bed
        .spawn(
            "redress-intake",
            &[("RUST_LOG", "warn"), ("REDRESS_CONSUMER_BATCH", "512")],
        )
        .await;
    // Publish everything first (as a call centre's backlog would arrive), then time the drain.
    let subject = format!("{}.intake.submit", bed.prefix);
    let started = Instant::now();
    let mut acks = Vec::with_capacity(WINDOW);
    for i in 0..n {
        acks.push(
            bed.js
                .publish(subject.clone(), submission(i).into())
                .await
                .expect("publish"),
        );
        if acks.len() == WINDOW {
            for a in acks.drain(..) {
                a.await.expect("stored");
            }
        }
    }
    for a in acks {
        a.await.expect("stored");
    }
    let published = started.elapsed();
    eprintln!(
        "published {n} submissions in {:.1} s",
        published.as_secs_f64()
    );
    let mut conn = bed.db.connect().await;
    let recorded = loop {
        let c: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.complaints")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        if c as usize >= n {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {c} of {n} recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let events_out = loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.outbox")
            .fetch_one(&mut conn)
            .await
            .expect("outbox");
        if left == 0 {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.outbox_published")
        .fetch_one(&mut conn)
        .await
        .expect("events");
    drop(svc);

    println!("\nintake throughput, {n} submissions (protobuf, confirmed, on the bus)\n");
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
        "| complaints recorded (validated, classified, stored) | {:.0} /s ({:.2} s) |",
        n as f64 / recorded.as_secs_f64(),
        recorded.as_secs_f64()
    );
    println!(
        "| their events published ({events}: received, classified, confirmed) | {:.0} events/s ({:.2} s) |",
        events as f64 / events_out.as_secs_f64(),
        events_out.as_secs_f64()
    );
}
