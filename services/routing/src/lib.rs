//! The routing service: dispatches every complaint to the responsible department and person and runs the department's handling (DOMAIN §3).
//!
//! Today this binary carries the shared foundation only: it connects, provisions its schema,
//! reports healthy on `grpc.health.v1`, and stops cleanly. Its own behaviour lands with its
//! issue; nothing here pretends to do that work.

use redress_platform::config::CommonArgs;
use redress_platform::{Platform, ServiceInfo};

/// The service's identity and default ports.
pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "routing",
    grpc_port: 50052,
    metrics_port: 9102,
};

/// Migrations of this service's schema, applied at start.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Command-line settings.
#[derive(Debug, clap::Parser)]
#[command(name = "redress-routing", version, about = "Redress routing service")]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let platform = Platform::bootstrap(SERVICE, args.common, &MIGRATIONS).await?;
    platform.serve(tonic::service::Routes::default()).await
}
