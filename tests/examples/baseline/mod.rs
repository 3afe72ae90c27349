//! The raw ceilings of this machine, measured in the same run as a benchmark so its figures
//! stand beside them: JetStream publish (async, acks awaited in bulk) and PostgreSQL single-row
//! commits. Shared by the benchmarks (`mod baseline;`), with the complaint they all submit.

use std::time::{Duration, Instant};

use redress_proto::v1;
use redress_test_support::TestBed;
use sqlx::Connection;

/// Publishes in flight before their acks are awaited.
pub const WINDOW: usize = 2_000;

pub async fn raw_jetstream(bed: &TestBed, n: usize) -> f64 {
    let stream = bed
        .js
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "BASELINE".into(),
            subjects: vec!["baseline.>".into()],
            ..Default::default()
        })
        .await
        .expect("baseline stream");
    let body = bytes::Bytes::from(vec![b'x'; 512]);
    let started = Instant::now();
    // async-nats allows 5,000 unacknowledged publishes: await the acks in windows below that.
    let mut acks = Vec::with_capacity(WINDOW);
    for _ in 0..n {
        acks.push(
            bed.js
                .publish("baseline.x", body.clone())
                .await
                .expect("publish"),
        );
        if acks.len() == WINDOW {
            for a in acks.drain(..) {
                a.await.expect("ack");
            }
        }
    }
    for a in acks {
        a.await.expect("ack");
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    drop(stream);
    rate
}

pub async fn raw_postgres(bed: &TestBed, secs: u64) -> f64 {
    let mut admin = bed.db.connect().await;
    sqlx::query("CREATE TABLE IF NOT EXISTS baseline (id bigserial primary key, v text)")
        .execute(&mut admin)
        .await
        .expect("table");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = bed.db.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
            let mut n = 0u64;
            while Instant::now() < deadline {
                sqlx::query("INSERT INTO baseline (v) VALUES ('x')")
                    .execute(&mut c)
                    .await
                    .expect("insert");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / secs as f64
}

/// The confirmed call-centre complaint the benchmarks submit, keyed `<prefix>-<i>`: class
/// A, B or C by its emotion and loss, routed by its category.
pub fn details(prefix: &str, i: usize) -> v1::ComplaintDetails {
    v1::ComplaintDetails {
        key: Some(v1::SubmissionKey {
            source_system: "bench".into(),
            external_id: format!("{prefix}-{i:08}"),
        }),
        customer: Some(v1::Customer {
            name: "王芳".into(),
            phone: format!("138{:08}", i % 100_000_000),
            ..Default::default()
        }),
        channel: v1::Channel::Hotline as i32,
        business: "broadband".into(),
        description: "Line down for three days; the visit never came.".into(),
        demand: "Repair and refund.".into(),
        category: "network_quality".into(),
        emotion: (i % 3 + 1) as i32,
        company_loss_fen: (i % 7) as i64 * 100_000,
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
