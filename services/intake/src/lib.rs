//! The intake service (受理, DOMAIN §1–2): accepts complaints from call-centre events and from
//! staff, records them fully, classifies them A/B/C/D, tells the customer what to expect, and
//! keeps the registry staff and dashboards read.
//!
//! - [`api`]: the gRPC door (commands; one complaint and the list).
//! - [`access`]: who may confirm and reclassify, who sees which complaints and their customer.
//! - [`consumer`]: the JetStream door (`<prefix>.intake.submit`).
//! - [`registry`]: complaint summaries and timelines built from every service's events.
//! - [`submission`]: what arrives (protobuf or JSON) → the domain's validated record.
//! - [`recording`]: record / confirm / reclassify, each with its events, exactly once.
//! - [`store`]: all the SQL, by table group (complaints, registry).
//! - [`envelope`]: intake as the producer of events.
//! - [`error`]: the platform's one error, as this service uses it.

pub mod access;
pub mod api;
pub mod consumer;
pub mod envelope;
pub mod error;
pub mod recording;
pub mod registry;
pub mod store;
pub mod submission;

use std::sync::Arc;

use redress_platform::config::CommonArgs;
use redress_platform::{Platform, ServiceInfo};
use redress_proto::v1::intake_service_server::IntakeServiceServer;

/// The service's identity and default ports.
pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "intake",
    grpc_port: 50051,
    metrics_port: 9101,
};

/// Migrations of the `intake` schema, applied at start.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Command-line settings.
#[derive(Debug, clap::Parser)]
#[command(
    name = "redress-intake",
    version,
    about = "Redress intake service: accept, record and classify complaints"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut platform = Platform::bootstrap(SERVICE, args.common, &MIGRATIONS).await?;
    let recorder = recording::Recorder {
        policy: platform.policy.clone(),
        clock: platform.clock.clone(),
        outbox: platform.outbox.clone(),
    };
    let topology = platform.topology.clone();
    platform
        .consume(
            "submissions",
            topology.intake_stream(),
            vec![topology.intake_submit()],
            Arc::new(consumer::BusDoor {
                recorder: recorder.clone(),
            }),
        )
        .await?;
    platform
        .consume(
            "registry",
            topology.events_stream(),
            registry::subjects(&topology),
            Arc::new(registry::Registry {
                policy: platform.policy.clone(),
            }),
        )
        .await?;
    let api = api::Api {
        pool: platform.pool.clone(),
        recorder,
    };
    let routes = tonic::service::Routes::new(IntakeServiceServer::with_interceptor(
        api,
        platform.auth.clone(),
    ));
    platform.serve(routes).await
}
