//! The sla-monitor service: watches every time limit of every complaint and emits warnings and overdue events (DOMAIN §4).
//!
//! Today this binary carries the shared foundation only: it connects, provisions its schema,
//! reports healthy on `grpc.health.v1`, and stops cleanly. Its own behaviour lands with its
//! issue; nothing here pretends to do that work.

use redress_platform::config::CommonArgs;
use redress_platform::{Platform, ServiceInfo};

/// The service's identity and default ports.
pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "sla-monitor",
    grpc_port: 50053,
    metrics_port: 9103,
};

/// Migrations of this service's schema, applied at start.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Command-line settings.
#[derive(Debug, clap::Parser)]
#[command(
    name = "redress-sla-monitor",
    version,
    about = "Redress sla-monitor service"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let platform = Platform::bootstrap(SERVICE, args.common, &MIGRATIONS).await?;
    platform.serve(tonic::service::Routes::default()).await
}
