//! A service's life: bootstrap the shared plumbing, run consumers and the gRPC server, stop in
//! order.
//!
//! Every service `main` is the same few lines: parse settings, [`telemetry::init`],
//! [`Platform::bootstrap`], register consumers with [`Platform::consume`], then
//! [`Platform::serve`] its gRPC services. Shutdown (SIGINT/SIGTERM) runs in the order that loses
//! nothing: health goes NOT_SERVING and the gRPC server drains its calls; consumers stop pulling
//! and finish (commit and ack) the batch in hand; background work ([`Platform::spawn_background`])
//! finishes its step; the outbox relay publishes what those commits wrote; then the pools close.
//!
//! [`telemetry::init`]: crate::telemetry::init

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use redress_domain::clock::Clock;
use redress_domain::policy::Policy;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::auth::Authenticator;
use crate::config::CommonArgs;
use crate::consumer::{Consumer, Handler};
use crate::nats::{self, ConsumerSpec, Topology};
use crate::outbox::{Outbox, Relay};
use crate::{db, shutdown, telemetry};

/// How often the gauges read from elsewhere (each consumer's pending counts in JetStream, the
/// outbox backlog) are refreshed.
const SAMPLE_PERIOD: Duration = Duration::from_secs(5);

/// What distinguishes one service from another at start.
#[derive(Clone, Copy, Debug)]
pub struct ServiceInfo {
    /// `intake`, `routing`, `sla-monitor`, `escalation` or `revisit`.
    pub name: &'static str,
    /// Default gRPC port.
    pub grpc_port: u16,
    /// Default metrics port.
    pub metrics_port: u16,
}

/// Connections and shared state of a running service.
pub struct Platform {
    pub service: ServiceInfo,
    pub args: CommonArgs,
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub topology: Topology,
    pub outbox: Outbox,
    pub clock: Arc<dyn Clock>,
    pub policy: Arc<Policy>,
    pub auth: Authenticator,
    /// Cancelled on SIGINT/SIGTERM.
    pub shutdown: CancellationToken,
    consumers: JoinSet<()>,
    consumers_stop: CancellationToken,
    background: JoinSet<()>,
    background_stop: CancellationToken,
    metrics_addr: Option<SocketAddr>,
    /// Further ports the service listens on (the board's HTTP), named in the ready file.
    listening: Vec<(&'static str, SocketAddr)>,
}

impl Platform {
    /// Connects to PostgreSQL (schema and migrations) and NATS (streams), loads the policy and
    /// the clock, and starts the metrics endpoint. Fails fast with a message naming the setting.
    pub async fn bootstrap(
        service: ServiceInfo,
        args: CommonArgs,
        migrations: &'static Migrator,
    ) -> anyhow::Result<Self> {
        let shutdown = shutdown::on_signal();
        let auth = Authenticator::parse(&args.auth_tokens)?;
        if auth.is_empty() {
            tracing::warn!(
                "REDRESS_AUTH_TOKENS is empty: every gRPC call except health will be refused"
            );
        }
        let policy = match &args.policy_file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("REDRESS_POLICY_FILE {}", p.display()))?;
                Policy::from_toml_str(&text)
                    .with_context(|| format!("REDRESS_POLICY_FILE {}", p.display()))?
            }
            None => Policy::default(),
        };
        let clock: Arc<dyn Clock> = match args.clock.trim().strip_prefix("file:") {
            Some(path) => Arc::new(
                crate::clock_file::FileClock::open(path.trim())
                    .with_context(|| format!("REDRESS_CLOCK {:?}", args.clock))?,
            ),
            None => redress_domain::clock::clock_from_spec(&args.clock)
                .with_context(|| format!("REDRESS_CLOCK {:?}", args.clock))?,
        };
        let topology = Topology::new(&args.subject_prefix).context("REDRESS_SUBJECT_PREFIX")?;
        let metrics_addr = crate::metrics::serve(
            args.metrics_addr
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], service.metrics_port))),
            shutdown.clone(),
        )
        .await
        .context("REDRESS_METRICS_ADDR")?;

        let schema = args.schema(service.name);
        let pool = db::connect(
            &args.database_url,
            &schema,
            args.db_max_connections,
            args.db_create,
            migrations,
        )
        .await
        .context("REDRESS_DATABASE_URL")?;
        let client = nats::connect(&args.nats_url, &format!("redress-{}", service.name))
            .await
            .context("REDRESS_NATS_URL")?;
        let js = jetstream::new(client.clone());
        nats::ensure_streams(&js, &topology)
            .await
            .context("JetStream provisioning")?;
        tracing::info!(service = service.name, %schema, prefix = topology.prefix(), "connected");
        Ok(Self {
            service,
            outbox: Outbox::new(topology.clone(), service.name),
            args,
            pool,
            nats: client,
            js,
            topology,
            clock,
            policy: Arc::new(policy),
            auth,
            shutdown,
            consumers: JoinSet::new(),
            consumers_stop: CancellationToken::new(),
            background: JoinSet::new(),
            background_stop: CancellationToken::new(),
            metrics_addr,
            listening: Vec::new(),
        })
    }

    /// Provisions a durable consumer named `<service>-<name>` on `stream` and runs `handler` on
    /// it until shutdown.
    pub async fn consume<H: Handler>(
        &mut self,
        name: &str,
        stream: String,
        filter_subjects: Vec<String>,
        handler: Arc<H>,
    ) -> anyhow::Result<()> {
        let durable = format!("{}-{name}", self.service.name);
        let spec = ConsumerSpec {
            durable: durable.clone(),
            stream,
            filter_subjects,
            max_deliver: self.args.max_deliver,
            ack_wait: Duration::from_secs(self.args.ack_wait_secs.max(1)),
        };
        let pull = nats::ensure_consumer(&self.js, &spec).await?;
        let consumer = Consumer::new(
            durable,
            self.pool.clone(),
            self.outbox.clone(),
            handler,
            pull,
            self.args.consumer_batch,
            self.args.max_deliver,
        )
        .with_exit_after_commit(self.args.fault_exit_after_commit)
        .with_progress(spec.ack_wait)
        .with_linger(Duration::from_millis(self.args.consumer_linger_ms));
        let stop = self.consumers_stop.clone();
        self.consumers
            .spawn(consumer.watch_pending(SAMPLE_PERIOD, stop.clone()));
        self.consumers.spawn(consumer.replayer().run(stop.clone()));
        self.consumers.spawn(consumer.run(stop));
        Ok(())
    }

    /// Runs a service's own background work (the SLA scheduler, the revisit planner, the
    /// escalation worker, a gauge sampler) until shutdown. `work` gets the token that stops it.
    /// It is stopped after the consumers and before the outbox relay, and joined, so what it
    /// commits on its way out is still published and nothing is cut off mid-transaction.
    pub fn spawn_background<F>(&mut self, work: impl FnOnce(CancellationToken) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.background.spawn(work(self.background_stop.clone()));
    }

    /// Names another address the service listens on, for the ready file (`{"http": …}`), so a
    /// launcher that asked for port 0 learns which port it got.
    pub fn listening_on(&mut self, name: &'static str, addr: SocketAddr) {
        self.listening.push((name, addr));
    }

    /// Serves gRPC (the given services plus health and reflection) and runs the outbox relay
    /// until shutdown, then stops everything in order.
    pub async fn serve(mut self, routes: Routes) -> anyhow::Result<()> {
        let grpc_addr = self
            .args
            .grpc_addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], self.service.grpc_port)));
        let listener = crate::listen::bind(grpc_addr, crate::listen::BIND_PATIENCE)
            .await
            .with_context(|| format!("REDRESS_GRPC_ADDR {grpc_addr}: cannot listen"))?;
        let grpc_addr = listener.local_addr()?;

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        // Liveness, apart from readiness: `SERVING` as long as the process runs, so an outage
        // of PostgreSQL or NATS (readiness `NOT_SERVING`) does not get the pod restarted.
        health
            .set_service_status(LIVENESS, tonic_health::ServingStatus::Serving)
            .await;
        let readiness_stop = CancellationToken::new();
        let readiness = tokio::spawn(watch_readiness(
            self.pool.clone(),
            self.nats.clone(),
            health.clone(),
            readiness_stop.clone(),
        ));
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(redress_proto::FILE_DESCRIPTOR_SET)
            .build_v1()?;

        let relay_stop = CancellationToken::new();
        let relay = if self.args.outbox_relay {
            let relay = Relay::new(
                self.pool.clone(),
                self.js.clone(),
                &self.outbox,
                self.args.outbox_poll(),
            )
            .with_retention(Duration::from_secs(self.args.outbox_retention_hours * 3600))
            .with_processed_retention(Duration::from_secs(
                self.args.processed_retention_hours * 3600,
            ))
            .with_exit_after_publish(self.args.fault_exit_after_publish);
            tokio::spawn(relay.watch_backlog(SAMPLE_PERIOD, relay_stop.clone()));
            Some(tokio::spawn(relay.run(relay_stop.clone())))
        } else {
            None
        };

        let server_stop = CancellationToken::new();
        let server = {
            let stop = server_stop.clone();
            // Every service's dead letters, on its own port (operators only).
            let dead_letters =
                redress_proto::v1::dead_letter_service_server::DeadLetterServiceServer::with_interceptor(
                    crate::deadletters::DeadLetters {
                        pool: self.pool.clone(),
                    },
                    self.auth.clone(),
                );
            let routes = routes
                .add_service(health_service)
                .add_service(reflection)
                .add_service(dead_letters);
            tokio::spawn(
                tonic::transport::Server::builder()
                    .trace_fn(|req| {
                        let span = tracing::info_span!("grpc", path = %req.uri().path(),
                            trace_id = tracing::field::Empty,
                            complaint_id = tracing::field::Empty);
                        telemetry::extract_http(&span, req.headers());
                        span
                    })
                    .layer(crate::metrics::GrpcLayer)
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(
                        // Replies go out at once: without TCP_NODELAY a reply spanning several
                        // segments waits ~40 ms for the client's delayed ACK (Nagle).
                        tokio_stream::StreamExt::map(
                            tokio_stream::wrappers::TcpListenerStream::new(listener),
                            |conn| {
                                conn.and_then(|s| {
                                    s.set_nodelay(true)?;
                                    Ok(s)
                                })
                            },
                        ),
                        async move { stop.cancelled().await },
                    ),
            )
        };

        if let Some(path) = &self.args.ready_file {
            write_ready_file(path, grpc_addr, self.metrics_addr, &self.listening)?;
        }
        tracing::info!(service = self.service.name, %grpc_addr, metrics = ?self.metrics_addr, "ready");

        self.shutdown.cancelled().await;
        tracing::info!(service = self.service.name, "shutting down");
        let grace = self.args.shutdown_grace();
        readiness_stop.cancel();
        let _ = readiness.await;
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        server_stop.cancel();
        let _ = tokio::time::timeout(grace, server).await;
        self.consumers_stop.cancel();
        let _ = tokio::time::timeout(grace, async {
            while self.consumers.join_next().await.is_some() {}
        })
        .await;
        self.background_stop.cancel();
        let _ = tokio::time::timeout(grace, async {
            while self.background.join_next().await.is_some() {}
        })
        .await;
        relay_stop.cancel();
        if let Some(relay) = relay {
            let _ = tokio::time::timeout(grace, relay).await;
        }
        self.pool.close().await;
        tracing::info!(service = self.service.name, "stopped");
        Ok(())
    }
}

/// Written once the service is ready: the launcher and the test bed read the bound ports here.
fn write_ready_file(
    path: &PathBuf,
    grpc: SocketAddr,
    metrics: Option<SocketAddr>,
    listening: &[(&'static str, SocketAddr)],
) -> anyhow::Result<()> {
    let mut body = serde_json::json!({
        "grpc": grpc.to_string(),
        "metrics": metrics.map(|m| m.to_string()),
        "pid": std::process::id(),
    });
    for (name, addr) in listening {
        body[*name] = serde_json::Value::String(addr.to_string());
    }
    // Write then rename, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body.to_string())?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The health service name that reports liveness only (Kubernetes `livenessProbe.grpc.service`).
pub const LIVENESS: &str = "liveness";

/// How often readiness is checked, and how long one database probe may take.
const READINESS_PERIOD: Duration = Duration::from_secs(1);

/// Keeps the gRPC health status (what Kubernetes' readiness probe and load balancers read)
/// true to what the service can do: `NOT_SERVING` while PostgreSQL does not answer `SELECT 1`
/// within a second or the NATS connection is down, `SERVING` again once both are back. Nothing
/// is lost meanwhile — consumers hold their messages and retry (ADR 0004) — but callers should
/// be sent to a replica that can commit. `redress_ready` shows the same as a gauge.
async fn watch_readiness(
    pool: PgPool,
    nats: async_nats::Client,
    health: tonic_health::server::HealthReporter,
    stop: CancellationToken,
) {
    let mut ready = true;
    metrics::gauge!("redress_ready").set(1.0);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(READINESS_PERIOD) => {}
        }
        let database = tokio::time::timeout(READINESS_PERIOD, async {
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(&pool)
                .await
        })
        .await
        .is_ok_and(|r| r.is_ok());
        let broker = nats.connection_state() == async_nats::connection::State::Connected;
        let now = database && broker;
        if now != ready {
            ready = now;
            let status = if ready {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            if ready {
                tracing::info!("ready again: PostgreSQL and NATS answer");
            } else {
                tracing::warn!(
                    database,
                    broker,
                    "not ready: health reports NOT_SERVING until both answer"
                );
            }
            metrics::gauge!("redress_ready").set(if ready { 1.0 } else { 0.0 });
            health.set_service_status("", status).await;
        }
    }
}
