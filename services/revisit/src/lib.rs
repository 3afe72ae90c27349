//! The revisit service: plans and records the follow-up calls, and turns dissatisfaction into a repeat complaint (DOMAIN §6).
//!
//! Today this binary carries the shared foundation only: it connects, provisions its schema,
//! reports healthy on `grpc.health.v1`, and stops cleanly. Its own behaviour lands with its
//! issue; nothing here pretends to do that work.

use redress_platform::config::CommonArgs;
use redress_platform::{Platform, ServiceInfo};

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
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let platform = Platform::bootstrap(SERVICE, args.common, &MIGRATIONS).await?;
    platform.serve(tonic::service::Routes::default()).await
}
