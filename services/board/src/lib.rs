//! The board service: the live operations board of the complaint centre.
//!
//! - [`consumer`]: every event folded into the board's projection (its own schema).
//! - [`fold`]: what each event changes on the board, pure.
//! - [`store`]: all SQL — the projection's writes and the wallboard's reads.
//! - [`gateway`]: the events stream as Server-Sent Events in JSON, for dashboards.
//! - [`access`]: bearer tokens, reach and masking, as in the gRPC services.
//! - [`api`]: the HTTP door — the wallboard page, its snapshot, the event stream.

pub mod access;
pub mod api;
pub mod consumer;
pub mod error;
pub mod fold;
pub mod gateway;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use redress_platform::config::CommonArgs;
use redress_platform::{Platform, ServiceInfo};

/// The service's identity and default ports.
pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "board",
    grpc_port: 50056,
    metrics_port: 9106,
};

/// Migrations of this service's schema, applied at start.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Command-line settings.
#[derive(Debug, clap::Parser)]
#[command(
    name = "redress-board",
    version,
    about = "Redress live operations board"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where the wallboard and the event gateway listen (HTTP).
    #[arg(
        long,
        env = "REDRESS_BOARD_HTTP_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub http_addr: SocketAddr,
    /// Events buffered for the slowest client before it is dropped.
    #[arg(long, env = "REDRESS_BOARD_BUFFER", default_value_t = 4096)]
    pub buffer: usize,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut platform = Platform::bootstrap(SERVICE, args.common, &MIGRATIONS).await?;
    let topology = platform.topology.clone();
    platform
        .consume(
            "projection",
            topology.events_stream(),
            vec![topology.all_events()],
            Arc::new(consumer::Projection),
        )
        .await?;
    let gateway = Arc::new(gateway::Gateway::new(
        platform.js.clone(),
        topology,
        platform.pool.clone(),
        args.buffer,
    ));
    {
        let gateway = gateway.clone();
        platform.spawn_background(|stop| gateway.run(stop));
    }
    let listener =
        redress_platform::listen::bind(args.http_addr, redress_platform::listen::BIND_PATIENCE)
            .await
            .with_context(|| {
                format!("REDRESS_BOARD_HTTP_ADDR {}: cannot listen", args.http_addr)
            })?;
    let http_addr = listener.local_addr()?;
    platform.listening_on("http", http_addr);
    tracing::info!(addr = %http_addr, "board listening");
    let stop = platform.shutdown.clone();
    let board = api::Board {
        pool: platform.pool.clone(),
        auth: platform.auth.clone(),
        gateway,
        clock: platform.clock.clone(),
        policy: platform.policy.clone(),
        stop: stop.clone(),
    };
    let rpc = api::Rpc {
        board: board.clone(),
    };
    platform.spawn_background(move |_| async move {
        let served = axum::serve(listener, api::router(board))
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "board HTTP server");
        }
    });
    let routes = tonic::service::Routes::new(
        redress_proto::v1::board_service_server::BoardServiceServer::with_interceptor(
            rpc,
            platform.auth.clone(),
        ),
    );
    platform.serve(routes).await
}
