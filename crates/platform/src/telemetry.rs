//! Logs and traces: readable lines by default, JSON with `--log-format json`, and OpenTelemetry
//! spans exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! Trace context crosses process boundaries in W3C `traceparent`/`tracestate` headers: in NATS
//! message headers (see [`inject_nats`], [`extract_nats`]) and in gRPC metadata (see
//! [`extract_http`]), so one complaint's journey through the five services is one trace.
//! Spans are recorded even when no exporter is configured, so trace ids still propagate and
//! still appear in the logs: an operator can join log lines of five services by one id.
//!
//! Log lines carry the `trace_id` and `complaint_id` fields of the span they are written in, and
//! every line passes through [`redress_domain::personal::mask_phone_numbers`] on its way out.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::span;
use tracing::subscriber::Interest;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{CommonArgs, LogFormat};

/// Keeps the trace exporter alive; dropping it flushes the spans still buffered.
#[must_use = "dropping the guard shuts the exporter down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("trace exporter shutdown: {e}");
        }
    }
}

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(service: &'static str, args: &CommonArgs) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&args.log_filter)
        .or_else(|_| EnvFilter::try_new("info"))
        .map_err(|e| anyhow::anyhow!("log filter: {e}"))?;

    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(service)
            .build(),
    );
    if args.otlp_endpoint.is_some() {
        // The endpoint is read from OTEL_EXPORTER_OTLP_ENDPOINT by the exporter itself.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer(service);
    opentelemetry::global::set_tracer_provider(provider.clone());

    subscriber(args.log_format, filter, MaskedStdout, tracer)
        .try_init()
        .map_err(|e| anyhow::anyhow!("tracing already initialised: {e}"))?;
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// The log layer and the span layer, each with its own filter.
///
/// The `RUST_LOG` filter (`log_filter`) applies to the log layer only; spans at info and above
/// always reach OpenTelemetry, or a quiet log level would silently cut traces short (and with
/// them the trace context that events carry from service to service).
fn subscriber<W>(
    format: LogFormat,
    log_filter: EnvFilter,
    writer: W,
    tracer: opentelemetry_sdk::trace::Tracer,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt_layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(writer)
            .with_filter(AskEveryTime(log_filter))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(writer)
            .with_filter(AskEveryTime(log_filter))
            .boxed(),
    };
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(AskEveryTime(EnvFilter::new("info")));
    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
}

/// A per-layer filter that never lets a callsite cache "always enabled".
///
/// Works around tokio-rs/tracing#2519: per-layer filters pass their verdict from `enabled` to
/// `on_new_span` through a thread-local, and a callsite cached as "always" skips `enabled`, so
/// it reads whatever the previous check left there. sqlx checks `enabled!` after every query
/// without logging anything; the next span was then dropped from the log layer or from
/// OpenTelemetry — logs lost their span fields and events their trace context, every other
/// message, whenever the two layers' filters differed (`RUST_LOG=debug`). Asking every time
/// keeps the verdict fresh; the cost is one filter check per span or event.
struct AskEveryTime<F>(F);

impl<S, F: Filter<S>> Filter<S> for AskEveryTime<F> {
    fn enabled(&self, meta: &tracing::Metadata<'_>, cx: &Context<'_, S>) -> bool {
        self.0.enabled(meta, cx)
    }
    fn callsite_enabled(&self, meta: &'static tracing::Metadata<'static>) -> Interest {
        let interest = self.0.callsite_enabled(meta);
        if interest.is_always() {
            Interest::sometimes()
        } else {
            interest
        }
    }
    fn event_enabled(&self, event: &tracing::Event<'_>, cx: &Context<'_, S>) -> bool {
        self.0.event_enabled(event, cx)
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.0.max_level_hint()
    }
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, cx)
    }
    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        self.0.on_record(id, values, cx)
    }
    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        self.0.on_enter(id, cx)
    }
    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        self.0.on_exit(id, cx)
    }
    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        self.0.on_close(id, cx)
    }
}

/// Standard output with phone numbers masked. The fmt layer writes each log line with one
/// `write_all`, so each call here sees a whole line.
struct MaskedStdout;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MaskedStdout {
    type Writer = MaskedWriter<std::io::Stdout>;
    fn make_writer(&'a self) -> Self::Writer {
        MaskedWriter(std::io::stdout())
    }
}

/// Writes through to `W` with [`redress_domain::personal::mask_phone_numbers`] applied.
pub struct MaskedWriter<W>(pub W);

impl<W: Write> Write for MaskedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => {
                let masked = redress_domain::personal::mask_phone_numbers(text);
                self.0.write_all(masked.as_bytes())?;
            }
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

struct NatsHeaders<'a>(&'a mut async_nats::HeaderMap);

impl Injector for NatsHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct NatsHeadersRef<'a>(&'a async_nats::HeaderMap);

impl Extractor for NatsHeadersRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// Writes the current span's trace context into NATS headers.
pub fn inject_nats(headers: &mut async_nats::HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut NatsHeaders(headers))
    });
}

/// Current trace context as `(traceparent, tracestate)` header pairs, for storing with an
/// outbox row so the relay can publish it later under the original trace.
pub fn current_trace_headers() -> Vec<(String, String)> {
    let mut map = HashMap::new();
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut map));
    map.into_iter().collect()
}

/// Makes `span` a child of the trace carried in NATS headers (when there is one), and records
/// its trace id (see [`record_trace_id`]).
pub fn extract_nats(span: &tracing::Span, headers: Option<&async_nats::HeaderMap>) {
    if let Some(h) = headers {
        let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&NatsHeadersRef(h)));
        let _ = span.set_parent(cx);
    }
    record_trace_id(span);
}

/// The current span's W3C `traceparent`, to store beside state that will cause events later
/// (an SLA clock), so those events continue the trace that set it. Empty without a trace.
pub fn current_traceparent() -> String {
    current_trace_headers()
        .into_iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// Makes `span` a child of a stored `traceparent` (from [`current_traceparent`]); an empty or
/// malformed one leaves `span` a new root.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    if !traceparent.is_empty() {
        let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
        let _ = span.set_parent(cx);
    }
    record_trace_id(span);
}

/// Fills the span's `trace_id` field (declared `trace_id = tracing::field::Empty`) so every log
/// line written inside it names the trace. Starts the span's OpenTelemetry side: call it after
/// the parent is set.
pub fn record_trace_id(span: &tracing::Span) {
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

struct HttpHeaders<'a>(&'a tonic::codegen::http::HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes `span` a child of the trace carried in gRPC (HTTP/2) request headers, and records its
/// trace id.
pub fn extract_http(span: &tracing::Span, headers: &tonic::codegen::http::HeaderMap) {
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HttpHeaders(headers)));
    let _ = span.set_parent(cx);
    record_trace_id(span);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::MaskedWriter;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// tokio-rs/tracing#2519, as the services met it: sqlx asks `log` whether a query log is
    /// enabled (through the `log` → tracing bridge) and logs nothing; with different filters
    /// on the two layers, the next span then vanished from one of them, every other time.
    #[test]
    fn spans_keep_their_trace_when_a_library_only_asks_whether_logging_is_enabled() {
        use opentelemetry::trace::TracerProvider as _;

        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let _ = tracing_log::LogTracer::init();
        let buffer = Buffer::default();
        let out = buffer.clone();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = super::subscriber(
            crate::config::LogFormat::Text,
            tracing_subscriber::EnvFilter::new("info,redress_platform=debug"),
            move || MaskedWriter(out.clone()),
            provider.tracer("test"),
        );
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let mut headers = Vec::new();
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..4 {
                let _ = log::log_enabled!(target: "sqlx::query", log::Level::Debug);
                let span = tracing::info_span!("consume", i, trace_id = tracing::field::Empty);
                super::continue_trace(&span, &format!("00-{trace_id}-00f067aa0ba902b7-01"));
                span.in_scope(|| {
                    tracing::debug!("handled");
                    headers.push(super::current_traceparent());
                });
            }
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        for (i, line) in lines.iter().enumerate() {
            assert!(
                line.contains(&format!("consume{{i={i} trace_id={trace_id}}}: handled")),
                "{text}"
            );
        }
        for traceparent in headers {
            assert!(traceparent.contains(trace_id), "{traceparent:?}");
        }
    }

    #[test]
    fn log_lines_leave_with_phone_numbers_masked() {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || MaskedWriter(out.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("consume", complaint_id = "cmp_01JABC");
            let _entered = span.enter();
            tracing::warn!(
                phone = "13800138000",
                "customer asked for a call back on +86 138 0013 8000"
            );
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(!text.contains("13800138000"), "{text}");
        assert!(!text.contains("0013"), "{text}");
        assert!(text.contains("138****8000"), "{text}");
        assert!(text.contains("complaint_id=\"cmp_01JABC\""), "{text}");
    }
}
