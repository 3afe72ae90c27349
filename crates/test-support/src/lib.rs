//! The test bed: real NATS JetStream, real PostgreSQL, real service binaries.
//!
//! Nothing here is a mock. Each test gets
//! - its own `nats-server` (the pinned current release, on a free port, with its own store
//!   directory, killed on drop) — so a test may restart or stop it;
//! - its own PostgreSQL database, created fresh and dropped on drop;
//! - its own subject prefix;
//!
//! and starts the services it needs as separate processes ([`ServiceProcess`]) from the binaries
//! `cargo build --workspace --bins` produced, waiting until each reports ready.

#![allow(clippy::unwrap_used)]

mod barrier;
mod browser;
mod clock;
mod db;
mod envelope;
mod nats;
mod outage;
mod poll;
pub mod ports;
mod postgres;
mod process;
pub mod sse;

pub use barrier::{DEAD_LETTER_REASON, dead_letter_reason};
pub use browser::Browser;
pub use clock::ClockControl;
pub use db::TestDb;
pub use envelope::envelope;
pub use nats::{NatsCluster, NatsServer};
pub use outage::DbOutage;
pub use poll::{EVERY, eventually, poll};
pub use postgres::{PostgresServer, StopMode};
pub use process::{Consumed, ServiceProcess, binary_path};

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use prost::Message as _;
use redress_proto::v1;

/// Tokens every test service accepts (`REDRESS_AUTH_TOKENS`), one per role, and a second
/// handler and manager of another department for access tests. `manager-1` heads the
/// departments the test organisations give them; `handler-1` works in `dept-network`.
pub const TEST_TOKENS: &str = "test-operator-token=ops:operator:Operator,\
test-agent-token=agent-1:customer_service_agent:Agent One,\
test-handler-token=handler-1:handler@dept-network:Handler One,\
test-manager-token=manager-1:department_manager@d-1+dept-network+dept-billing+dep-1+billing+network:Manager One,\
test-handler2-token=handler-2:handler@d-2:Handler Two,\
test-manager2-token=manager-2:department_manager@d-2:Manager Two,\
test-gm-token=gm-1:general_manager:General Manager,\
test-integration-token=callcentre:integration:Call Centre,\
test-viewer-token=wall-1:viewer:Wall Screen";

/// The value of the series named exactly `series` (name and labels) on a Prometheus page, or 0
/// when the page does not have it.
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The workspace root (where `Cargo.toml` and `target/` live).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// A whole isolated environment for one test.
pub struct TestBed {
    pub nats: NatsServer,
    pub db: TestDb,
    pub prefix: String,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
}

impl TestBed {
    pub async fn start() -> Self {
        let nats = NatsServer::start();
        let db = TestDb::create().await;
        let prefix = "t".to_owned();
        let client = async_nats::connect(nats.url())
            .await
            .expect("connect to test nats");
        let js = jetstream::new(client.clone());
        Self {
            nats,
            db,
            prefix,
            client,
            js,
        }
    }

    /// Environment for a service process of this bed.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("REDRESS_NATS_URL".into(), self.nats.url()),
            ("REDRESS_DATABASE_URL".into(), self.db.url.clone()),
            ("REDRESS_SUBJECT_PREFIX".into(), self.prefix.clone()),
            ("REDRESS_AUTH_TOKENS".into(), TEST_TOKENS.into()),
            ("REDRESS_OUTBOX_POLL_MS".into(), "100".into()),
            ("RUST_LOG".into(), "info".into()),
        ]
    }

    /// Starts a service binary (`redress-intake`, …) with this bed's environment plus `extra`.
    pub async fn spawn(&self, binary: &str, extra: &[(&str, &str)]) -> ServiceProcess {
        let mut env = self.env();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        ServiceProcess::spawn(binary, &env).await
    }

    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.prefix.to_ascii_uppercase())
    }

    /// Reads every message stored on `subject_filter` (wildcards allowed) in `stream`, waiting
    /// until at least `at_least` arrived or `timeout` passed.
    pub async fn read_stream(
        &self,
        stream: &str,
        subject_filter: &str,
        at_least: usize,
        timeout: Duration,
    ) -> Vec<async_nats::Message> {
        poll(
            timeout,
            async || self.read_stream_once(stream, subject_filter).await,
            |got| got.len() >= at_least,
        )
        .await
    }

    async fn read_stream_once(
        &self,
        stream: &str,
        subject_filter: &str,
    ) -> Vec<async_nats::Message> {
        let Ok(stream) = self.js.get_stream(stream).await else {
            return Vec::new();
        };
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: subject_filter.to_owned(),
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("ordered consumer");
        let pending = consumer.cached_info().num_pending as usize;
        let mut out = Vec::with_capacity(pending);
        if pending == 0 {
            return out;
        }
        let mut messages = consumer.messages().await.expect("messages");
        while out.len() < pending {
            match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
                Ok(Some(Ok(m))) => out.push(m.message),
                _ => break,
            }
        }
        out
    }

    /// Domain events on `<prefix>.events.<kind_filter>`, decoded, waiting for at least `at_least`.
    pub async fn events(
        &self,
        kind_filter: &str,
        at_least: usize,
        timeout: Duration,
    ) -> Vec<v1::Event> {
        self.event_messages(kind_filter, at_least, timeout)
            .await
            .into_iter()
            .map(|m| v1::Event::decode(m.payload).expect("event decodes"))
            .collect()
    }

    /// The messages (headers included) on `<prefix>.events.<kind_filter>`, waiting for at least
    /// `at_least`.
    pub async fn event_messages(
        &self,
        kind_filter: &str,
        at_least: usize,
        timeout: Duration,
    ) -> Vec<async_nats::Message> {
        let subject = format!("{}.events.{kind_filter}", self.prefix);
        self.read_stream(&self.events_stream(), &subject, at_least, timeout)
            .await
    }

    /// Publishes a domain event as its producing service's relay would: on
    /// `<prefix>.events.<kind>` with `Nats-Msg-Id` = the event id. How a test plays another
    /// service's part.
    pub async fn publish_event(&self, event: &v1::Event) {
        self.publish_event_as(event, &event.event_id).await;
    }

    /// Connects a gRPC channel to a service.
    pub async fn channel(&self, service: &ServiceProcess) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", service.grpc_addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("grpc connect")
    }
}

/// Adds `authorization: Bearer <token>` to a request.
pub fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    req
}
