//! No outage loses a message (issue 17): submissions JetStream acknowledged while intake's
//! database was away all become complaints once it is back, and none is dead-lettered for it.
//! Meanwhile the service reports itself not ready (gRPC health `NOT_SERVING`), and ready again
//! on its own once the database answers.
//!
//! The outage is real for the service: its only path to PostgreSQL is cut — every open
//! connection drops, every new one is refused — for longer than it takes a message to use up
//! its allowed deliveries (`REDRESS_MAX_DELIVER=2`).

mod common;

use std::time::Duration;

use prost::Message as _;
use redress_proto::v1;
use redress_test_support::{DbOutage, ServiceProcess, TestBed, poll};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

fn submission(n: usize) -> Vec<u8> {
    v1::SubmitRequest {
        details: Some(common::complaint(&format!("outage-{n}"))),
    }
    .encode_to_vec()
}

async fn publish(bed: &TestBed, n: usize) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/protobuf");
    bed.submit_on_bus(headers, submission(n)).await;
}

async fn count(bed: &TestBed, sql: &str) -> i64 {
    let mut conn = bed.db.connect().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut conn)
        .await
        .expect("count")
}

async fn health(bed: &TestBed, service: &ServiceProcess) -> ServingStatus {
    health_of(bed, service, "").await
}

/// The status of one health service name: `""` readiness, `liveness` liveness.
async fn health_of(bed: &TestBed, service: &ServiceProcess, name: &str) -> ServingStatus {
    HealthClient::new(bed.channel(service).await)
        .check(HealthCheckRequest {
            service: name.to_owned(),
        })
        .await
        .expect("health answers without the database")
        .into_inner()
        .status()
}

/// Polls health until it reports `want`, for at most `within`; returns what it reported last.
async fn health_becomes(
    bed: &TestBed,
    service: &ServiceProcess,
    want: ServingStatus,
    within: Duration,
) -> ServingStatus {
    poll(
        within,
        async || health(bed, service).await,
        |now| *now == want,
    )
    .await
}

#[tokio::test]
async fn submissions_acknowledged_during_a_database_outage_all_become_complaints() {
    let bed = TestBed::start().await;
    let outage = DbOutage::for_url(&bed.db.url).await;
    let url = outage.url_for(&bed.db.url);
    let intake = bed
        .spawn(
            "redress-intake",
            &[
                ("REDRESS_DATABASE_URL", url.as_str()),
                ("REDRESS_MAX_DELIVER", "2"),
            ],
        )
        .await;
    publish(&bed, 0).await;
    let complaints = "SELECT count(*) FROM intake.complaints";
    let before = poll(
        Duration::from_secs(10),
        async || count(&bed, complaints).await,
        |n| *n == 1,
    )
    .await;
    assert_eq!(before, 1, "before the outage");
    assert_eq!(health(&bed, &intake).await, ServingStatus::Serving);

    // The database goes away; the call centre keeps sending, and JetStream acknowledges.
    outage.cut().await;
    let sent = 20;
    for n in 1..=sent {
        publish(&bed, n).await;
        // Paced: the call centre keeps sending through the outage; the spacing is the
        // scenario, there is nothing to await.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Not ready while the database is away (checked every second).
    assert_eq!(
        health_becomes(
            &bed,
            &intake,
            ServingStatus::NotServing,
            Duration::from_secs(10)
        )
        .await,
        ServingStatus::NotServing,
        "health during the outage"
    );
    // Alive all the same: a restart would not bring the database back.
    assert_eq!(
        health_of(&bed, &intake, "liveness").await,
        ServingStatus::Serving,
        "liveness during the outage"
    );
    // Long enough for every message to be delivered (and fail) more than twice. Kept as a
    // wait: JetStream reports deliveries only in total, not per message, so "each message more
    // than twice" (past REDRESS_MAX_DELIVER) cannot be awaited.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(health(&bed, &intake).await, ServingStatus::NotServing);
    outage.restore();
    assert_eq!(
        health_becomes(
            &bed,
            &intake,
            ServingStatus::Serving,
            Duration::from_secs(30)
        )
        .await,
        ServingStatus::Serving,
        "ready again on its own:\n{}",
        intake.logs()
    );

    let expected = i64::try_from(sent).expect("small") + 1;
    let recorded = poll(
        Duration::from_secs(120),
        async || count(&bed, complaints).await,
        |n| *n >= expected,
    )
    .await;
    assert_eq!(
        recorded,
        expected,
        "every acknowledged submission is a complaint:\n{}",
        intake.logs()
    );
    assert_eq!(
        count(&bed, "SELECT count(*) FROM intake.dead_letters").await,
        0,
        "none dead-lettered for the outage"
    );
    let dead = bed.dead_letters(0, Duration::ZERO).await;
    assert!(dead.is_empty(), "{dead:?}");
}
