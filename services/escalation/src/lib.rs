//! The escalation service: turns overdue and unresolved complaints into notifications to the department manager and the general manager (DOMAIN §5, §7).
//!
//! Today this binary carries the shared foundation only: it connects, provisions its schema,
//! reports healthy on `grpc.health.v1`, and stops cleanly. Its own behaviour lands with its
//! issue; nothing here pretends to do that work.

use redress_platform::config::CommonArgs;
use redress_platform::{Platform, ServiceInfo};

/// The service's identity and default ports.
pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "escalation",
    grpc_port: 50054,
    metrics_port: 9104,
};

/// Migrations of this service's schema, applied at start.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Command-line settings.
#[derive(Debug, clap::Parser)]
#[command(
    name = "redress-escalation",
    version,
    about = "Redress escalation service"
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
