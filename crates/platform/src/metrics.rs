//! Prometheus metrics: a recorder for the `metrics` facade, a `/metrics` endpoint, and the few
//! ways every service records them.
//!
//! The endpoint is served on a listener bound here (not by the exporter) so that port 0 works
//! and the bound address can be reported in the ready file.
//!
//! - [`AfterCommit`]: counts of changes made in a transaction, applied only once it commits, so
//!   a rolled-back or replayed batch counts once.
//! - [`sample_every`]: gauges that mirror state held elsewhere (JetStream, a table), read on a
//!   timer.
//! - [`GrpcLayer`]: latency and outcome of every gRPC call, by method
//!   (`redress_grpc_request_seconds`, `redress_grpc_requests_total`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Installs the global recorder (once per process) and serves it. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<SocketAddr>> {
    let handle = match install() {
        Some(h) => h,
        None => return Ok(None),
    };
    let listener = crate::listen::bind(addr, crate::listen::BIND_PATIENCE).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let h = handle.clone();
            async move { h.render() }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok(Some(bound))
}

fn install() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Histograms (not summaries) so dashboards can aggregate latency across replicas.
            let buckets = [
                0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            PrometheusBuilder::new()
                .set_buckets(&buckets)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Metric updates that describe changes made in an open transaction. Recorded with
/// [`defer`](Self::defer) while the transaction runs; [`committed`](Self::committed) applies
/// them after `commit()` returned, and dropping the value without it forgets them — so a batch
/// rolled back and replayed message by message counts each change once.
#[derive(Default)]
pub struct AfterCommit {
    updates: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

impl AfterCommit {
    /// Runs `update` if and when the transaction commits.
    pub fn defer(&self, update: impl FnOnce() + Send + 'static) {
        if let Ok(mut updates) = self.updates.lock() {
            updates.push(Box::new(update));
        }
    }

    /// The transaction committed: applies the updates recorded so far.
    pub fn committed(&self) {
        let updates = match self.updates.lock() {
            Ok(mut updates) => std::mem::take(&mut *updates),
            Err(_) => return,
        };
        for update in updates {
            update();
        }
    }
}

impl std::fmt::Debug for AfterCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.updates.lock().map(|u| u.len()).unwrap_or(0);
        f.debug_struct("AfterCommit").field("updates", &n).finish()
    }
}

/// Calls `sample` at once and then every `period` until `stop`. For gauges whose truth lives
/// elsewhere (a consumer's pending count in JetStream, clock counts in a table): reading it on a
/// timer costs one query per period, whatever the traffic. A sample that fails should log and
/// leave the gauge as it was.
pub async fn sample_every<F, Fut>(period: Duration, stop: CancellationToken, mut sample: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => sample().await,
        }
    }
}

/// Records every gRPC call: `redress_grpc_request_seconds{method}` (time until the response
/// headers, which for a unary call is the whole handling) and
/// `redress_grpc_requests_total{method,code}`. Applied once to the server in
/// [`Platform::serve`](crate::app::Platform::serve).
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcLayer;

impl<S> tower_layer::Layer<S> for GrpcLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// The service [`GrpcLayer`] wraps around the server's routes.
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let started = Instant::now();
        let reply = self.inner.call(req);
        Box::pin(async move {
            let reply = reply.await;
            let code = match &reply {
                Ok(response) => grpc_code(response.headers()),
                Err(_) => "transport".to_owned(),
            };
            // Paths nobody serves (scanners, typos) would each make new series: one label for all.
            let method = if code == UNIMPLEMENTED {
                "unknown".to_owned()
            } else {
                method
            };
            metrics::histogram!("redress_grpc_request_seconds", "method" => method.clone())
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("redress_grpc_requests_total", "method" => method, "code" => code)
                .increment(1);
            reply
        })
    }
}

const UNIMPLEMENTED: &str = "12";

/// The call's status code: tonic's error replies are trailers-only, so their `grpc-status` is
/// in the response headers; a reply with a body carries it in the trailers, and only an OK
/// reply has a body here.
fn grpc_code(headers: &http::HeaderMap) -> String {
    match headers.get("grpc-status").map(|v| v.as_bytes()) {
        None => "0".to_owned(),
        // Codes are 0–16; anything else is not worth a series of its own.
        Some(v) if (1..=2).contains(&v.len()) && v.iter().all(u8::is_ascii_digit) => {
            String::from_utf8_lossy(v).into_owned()
        }
        Some(_) => "invalid".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_commit_applies_only_when_committed() {
        let applied = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rolled_back = AfterCommit::default();
        let a = applied.clone();
        rolled_back.defer(move || {
            a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        drop(rolled_back);
        assert_eq!(applied.load(std::sync::atomic::Ordering::SeqCst), 0);

        let committed = AfterCommit::default();
        for _ in 0..2 {
            let a = applied.clone();
            committed.defer(move || {
                a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        committed.committed();
        committed.committed();
        assert_eq!(applied.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn grpc_code_reads_trailers_only_status_else_ok() {
        let mut h = http::HeaderMap::new();
        assert_eq!(grpc_code(&h), "0");
        h.insert("grpc-status", http::HeaderValue::from_static("16"));
        assert_eq!(grpc_code(&h), "16");
        h.insert("grpc-status", http::HeaderValue::from_static("bogus"));
        assert_eq!(grpc_code(&h), "invalid");
    }
}
