//! The SLA monitor (时限, DOMAIN §4): watches every time limit of every complaint, warns before
//! a limit is hit and reports it overdue when missed — exactly once per clock, across
//! redelivery, restarts and replicas — and records the accountability an overdue causes.
//!
//! - [`api`]: the gRPC door (status, at-risk and overdue lists, special reasons).
//! - [`access`]: who may see clocks and who may excuse a missed limit.
//! - [`consumer`]: the clocks, kept from the other services' events.
//! - [`scheduler`]: sleeps until the earliest deadline; fires due clocks through the outbox.
//! - [`gauges`]: how many clocks are warned and overdue now, for the metrics.
//! - [`store`]: all the SQL, over the `complaints`, `clocks` and `owed_fines` tables.
//! - [`envelope`]: event envelopes and protobuf conversions.
//! - [`error`]: the platform's one error, as this service uses it.
//!
//! The rules themselves (when a clock warns, goes overdue, is met) are
//! [`redress_domain::sla`].

pub mod access;
pub mod api;
pub mod consumer;
pub mod envelope;
pub mod error;
pub mod gauges;
pub mod scheduler;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use redress_platform::config::CommonArgs;
use redress_platform::{Platform, ServiceInfo};
use redress_proto::v1::sla_monitor_service_server::SlaMonitorServiceServer;

/// The service's identity and default ports.
pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "sla-monitor",
    grpc_port: 50053,
    metrics_port: 9103,
};

/// Migrations of the `sla_monitor` schema, applied at start.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Command-line settings.
#[derive(Debug, clap::Parser)]
#[command(
    name = "redress-sla-monitor",
    version,
    about = "Redress SLA monitor: warns before and reports every missed time limit"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Clocks the scheduler takes per transaction.
    #[arg(long, env = "REDRESS_SLA_BATCH", default_value_t = 500)]
    pub sla_batch: i64,

    /// Longest the scheduler sleeps, in milliseconds: how soon a deadline written by another
    /// replica is noticed at worst.
    #[arg(long, env = "REDRESS_SLA_MAX_SLEEP_MS", default_value_t = 1000)]
    pub sla_max_sleep_ms: u64,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut platform = Platform::bootstrap(SERVICE, args.common, &MIGRATIONS).await?;
    let wakeup = store::Wakeup::new();
    let topology = platform.topology.clone();
    platform
        .consume(
            "clocks",
            topology.events_stream(),
            topology.event_subjects(consumer::KINDS.iter().copied()),
            Arc::new(consumer::Tracker {
                policy: platform.policy.clone(),
                wakeup: wakeup.clone(),
                outbox: platform.outbox.clone(),
            }),
        )
        .await?;
    let scheduler = scheduler::Scheduler {
        pool: platform.pool.clone(),
        outbox: platform.outbox.clone(),
        clock: platform.clock.clone(),
        policy: platform.policy.clone(),
        wakeup: wakeup.clone(),
        batch: args.sla_batch.max(1),
        max_sleep: Duration::from_millis(args.sla_max_sleep_ms.max(1)),
    };
    platform.spawn_background(|stop| scheduler.run(stop));
    let pool = platform.pool.clone();
    platform.spawn_background(|stop| gauges::run(pool, gauges::PERIOD, stop));
    let api = api::Api {
        pool: platform.pool.clone(),
        outbox: platform.outbox.clone(),
        clock: platform.clock.clone(),
        policy: platform.policy.clone(),
        wakeup,
    };
    let routes = tonic::service::Routes::new(SlaMonitorServiceServer::with_interceptor(
        api,
        platform.auth.clone(),
    ));
    platform.serve(routes).await
}
