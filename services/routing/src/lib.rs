//! The routing service (处理, DOMAIN §3, §5): passes every confirmed complaint to the responsible
//! business department, gives it a handler at once, and records the department's handling
//! until the customer accepts — or the complaint goes up to the general manager.
//!
//! - [`api`]: the gRPC door, split by concern (organisation, queue, handling).
//! - [`consumer`]: the consumer of intake's (and escalation's, revisit's) events: route and
//!   assign, follow suspensions, reopenings and revisits.
//! - [`commands`]: the handling commands, each through the domain's state machine
//!   ([`redress_domain::handling`]) with its events in the same transaction.
//! - [`access`]: who may act on a complaint (the role checks the gRPC door asks).
//! - [`org`]: the organisation's rules — what a valid department, member of staff or rule set
//!   is, where a complaint goes — and the seed file.
//! - [`assignment`]: who gets a complaint — least open load weighted by class, round robin.
//! - [`store`]: all of the service's SQL, as named statements on the caller's transaction.
//! - [`envelope`]: the events this service publishes and their timestamps.
//! - [`error`]: the platform's one error, as this service returns it.

pub mod access;
pub mod api;
pub mod assignment;
pub mod commands;
pub mod consumer;
pub mod envelope;
pub mod error;
pub mod org;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use redress_platform::config::CommonArgs;
use redress_platform::{Platform, ServiceInfo};
use redress_proto::v1::routing_service_server::RoutingServiceServer;

/// The service's identity and default ports.
pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "routing",
    grpc_port: 50052,
    metrics_port: 9102,
};

/// Migrations of the `routing` schema, applied at start.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Command-line settings.
#[derive(Debug, clap::Parser)]
#[command(
    name = "redress-routing",
    version,
    about = "Redress routing service: route, assign and handle complaints"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// A TOML file of departments, staff and routing rules applied at start (upserted; see
    /// docs/adr/0013-routing-assignment-and-handling.md for the format).
    #[arg(long, env = "REDRESS_ROUTING_SEED")]
    pub seed: Option<PathBuf>,
    /// Apply the seed only while the organisation is empty (no department yet): a sample
    /// organisation for a first start that never overwrites one an operator built since.
    #[arg(long, env = "REDRESS_ROUTING_SEED_IF_EMPTY", default_value_t = false, action = clap::ArgAction::Set)]
    pub seed_if_empty: bool,
    /// Weight of one open complaint of each class in a handler's load, `A=4,B=3,C=2,D=1`.
    #[arg(
        long,
        env = "REDRESS_ROUTING_WEIGHTS",
        default_value = "A=4,B=3,C=2,D=1"
    )]
    pub weights: String,
    /// Customer rejections after which escalation is requested instead of a re-study.
    #[arg(
        long,
        env = "REDRESS_ROUTING_REJECTIONS_BEFORE_ESCALATION",
        default_value_t = 2
    )]
    pub rejections_before_escalation: u32,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let weights = assignment::Weights::parse(&args.weights)?;
    let mut platform = Platform::bootstrap(SERVICE, args.common, &MIGRATIONS).await?;
    let ctx = commands::Ctx {
        pool: platform.pool.clone(),
        clock: platform.clock.clone(),
        outbox: platform.outbox.clone(),
        weights,
        rejections_before_escalation: args.rejections_before_escalation,
    };
    if let Some(path) = &args.seed {
        org::seed_from_file(&ctx, path, args.seed_if_empty).await?;
    }
    let topology = platform.topology.clone();
    // Not `complaint.classified`: on receipt it restates the class `complaint.received` carries
    // (events.proto), and taking it would cost a delivery, an ack and a dedup row per complaint.
    let kinds = [
        "complaint.received",
        "complaint.confirmed",
        "complaint.reclassified",
        "staff.suspended",
        "complaint.reopened",
        "revisit.completed",
        "revisit.signed_off",
    ];
    platform
        .consume(
            "intake-events",
            topology.events_stream(),
            topology.event_subjects(kinds),
            Arc::new(consumer::IntakeEvents { ctx: ctx.clone() }),
        )
        .await?;
    let api = api::Api { ctx };
    let routes = tonic::service::Routes::new(RoutingServiceServer::with_interceptor(
        api,
        platform.auth.clone(),
    ));
    platform.serve(routes).await
}
