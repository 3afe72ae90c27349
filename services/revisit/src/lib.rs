//! The revisit service (回访, DOMAIN §6): plans the follow-up calls from the complaint's events,
//! hands them to customer-service agents, records what the customer said, reports satisfaction
//! to the business department, and turns a dissatisfied customer who complains again into a
//! repeat complaint.
//!
//! - [`api`]: the gRPC door (commands; the work list and the revisit-rate report).
//! - [`access`]: who may make, sign and record revisits, and whose customers they see.
//! - [`consumer`]: what the other services' events tell about a complaint → plans.
//! - [`planner`]: turns the domain's plans (`redress_domain::revisit`) into revisits and
//!   events, and the background tick for customers still waiting past the promised time.
//! - [`work`]: claim, record the outcome (retries, satisfaction, repeat complaint), sign off.
//! - [`store`]: all the SQL, by table group (complaints, revisits).
//! - [`envelope`]: the events this service publishes, timestamps, revisit states.
//! - [`error`]: the platform's one error, as this service uses it.

pub mod access;
pub mod api;
pub mod consumer;
pub mod envelope;
pub mod error;
pub mod planner;
pub mod store;
pub mod work;

use std::sync::Arc;
use std::time::Duration;

use redress_platform::config::CommonArgs;
use redress_platform::{Platform, ServiceInfo};
use redress_proto::v1::revisit_service_server::RevisitServiceServer;

/// The service's identity and default ports.
pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "revisit",
    grpc_port: 50055,
    metrics_port: 9105,
};

/// Migrations of this service's schema, applied at start.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Command-line settings.
#[derive(Debug, clap::Parser)]
#[command(name = "redress-revisit", version, about = "Redress revisit service")]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// How often the planner looks for customers waiting past the promised time, in ms.
    #[arg(long, env = "REDRESS_REVISIT_PLANNER_MS", default_value_t = 1000)]
    pub planner_ms: u64,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut platform = Platform::bootstrap(SERVICE, args.common, &MIGRATIONS).await?;
    let work = work::Work {
        policy: platform.policy.clone(),
        clock: platform.clock.clone(),
        outbox: platform.outbox.clone(),
    };
    let topology = platform.topology.clone();
    platform
        .consume(
            "facts",
            topology.events_stream(),
            topology.event_subjects(consumer::KINDS.iter().copied()),
            Arc::new(consumer::Facts {
                outbox: platform.outbox.clone(),
                policy: platform.policy.clone(),
                clock: platform.clock.clone(),
            }),
        )
        .await?;
    let ticker = planner::Ticker {
        pool: platform.pool.clone(),
        outbox: platform.outbox.clone(),
        policy: platform.policy.clone(),
        clock: platform.clock.clone(),
        interval: Duration::from_millis(args.planner_ms.max(10)),
    };
    platform.spawn_background(|stop| ticker.run(stop));
    let api = api::Api {
        pool: platform.pool.clone(),
        work,
    };
    let routes = tonic::service::Routes::new(RevisitServiceServer::with_interceptor(
        api,
        platform.auth.clone(),
    ));
    platform.serve(routes).await
}
