//! The escalation service (上报, DOMAIN §5): turns overdue and unresolved complaints, risks and
//! repeat complaints into escalations to named people — the department manager, then the
//! general manager — with notifications that arrive once and are acted on.
//!
//! - [`api`]: the gRPC door (list, acknowledge, decide, business volume, report, neglect).
//! - [`access`]: who may list, acknowledge and decide escalations and read or feed the ledger.
//! - [`consumer`]: learns the organisation and each complaint from events; causes → steps.
//! - [`ladder`]: raising one step: row, recipient, notification, events — exactly once.
//! - [`worker`]: delivery with retries, re-sends, and climbing for want of acknowledgement or
//!   resolution; safe with several replicas.
//! - [`channel`]: the delivery channels (HTTP webhook, log) behind one trait.
//! - [`ledger`]: the accountability ledger (DOMAIN §7): fines, doublings, late acceptance,
//!   suspensions.
//! - [`store`]: all of the service's SQL.
//! - [`error`], [`envelope`], [`settings`]: the platform's error, this producer's events, the
//!   settings file (`REDRESS_ESCALATION_SETTINGS`).

pub mod access;
pub mod api;
pub mod channel;
pub mod consumer;
pub mod envelope;
pub mod error;
pub mod ladder;
pub mod ledger;
pub mod settings;
pub mod store;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redress_platform::config::CommonArgs;
use redress_platform::{Platform, ServiceInfo};
use redress_proto::v1::escalation_service_server::EscalationServiceServer;

use crate::channel::Channel;
use crate::settings::Settings;

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
    about = "Redress escalation service: escalations to named people, notifications, accountability"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The service's settings file (TOML): general manager id, webhooks, log channel, worker
    /// tick. See `settings.rs` for the format.
    #[arg(long, env = "REDRESS_ESCALATION_SETTINGS")]
    pub settings: Option<PathBuf>,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let settings = Arc::new(Settings::load(args.settings.as_deref())?);
    let mut platform = Platform::bootstrap(SERVICE, args.common, &MIGRATIONS).await?;

    let mut channels: HashMap<String, Arc<dyn Channel>> = HashMap::new();
    if settings.log_channel {
        channels.insert("log".into(), Arc::new(channel::Log));
    }
    for w in &settings.webhooks {
        channels.insert(w.name.clone(), Arc::new(channel::Webhook::new(w.clone())?));
    }
    let mut names: Vec<String> = channels.keys().cloned().collect();
    names.sort();
    let ladder = ladder::Ladder {
        policy: platform.policy.clone(),
        clock: platform.clock.clone(),
        outbox: platform.outbox.clone(),
        settings: settings.clone(),
        channels: Arc::new(names),
    };
    let ledger = ledger::Ledger {
        policy: platform.policy.clone(),
        outbox: platform.outbox.clone(),
    };
    let topology = platform.topology.clone();
    platform
        .consume(
            "ladder",
            topology.events_stream(),
            topology.event_subjects(redress_proto::every_kind_except(consumer::NOT_TAKEN)),
            Arc::new(consumer::EventDoor {
                ladder: ladder.clone(),
                ledger: ledger.clone(),
            }),
        )
        .await?;
    let worker = worker::Worker {
        pool: platform.pool.clone(),
        ladder: ladder.clone(),
        channels,
        tick: Duration::from_millis(settings.tick_ms.max(10)),
        batch: settings.batch,
    };
    platform.spawn_background(|stop| worker.run(stop));
    let api = api::Api {
        pool: platform.pool.clone(),
        ladder,
        ledger,
    };
    let routes = tonic::service::Routes::new(EscalationServiceServer::with_interceptor(
        api,
        platform.auth.clone(),
    ));
    platform.serve(routes).await
}
