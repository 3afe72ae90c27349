//! Logs and traces: readable lines by default, JSON with `--log-format json`, and OpenTelemetry
//! spans exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! Trace context crosses process boundaries in W3C `traceparent`/`tracestate` headers: in NATS
//! message headers (see [`inject_nats`], [`extract_nats`]) and in gRPC metadata (see
//! [`extract_http`]), so one complaint's journey through the five services is one trace.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
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
///
/// The `RUST_LOG` filter applies to the log layer only; spans always reach the exporter, or a
/// quiet log level would silently cut traces short.
pub fn init(service: &'static str, args: &CommonArgs) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&args.log_filter)
        .or_else(|_| EnvFilter::try_new("info"))
        .map_err(|e| anyhow::anyhow!("log filter: {e}"))?;
    let fmt_layer = match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
    };

    let (otel_layer, provider) = match &args.otlp_endpoint {
        Some(_) => {
            // The endpoint is read from OTEL_EXPORTER_OTLP_ENDPOINT by the exporter itself.
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(service)
                        .build(),
                )
                .build();
            let tracer = provider.tracer(service);
            opentelemetry::global::set_tracer_provider(provider.clone());
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(EnvFilter::new("info"));
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };

    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|e| anyhow::anyhow!("tracing already initialised: {e}"))?;
    Ok(TelemetryGuard { provider })
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
    let mut map = std::collections::HashMap::new();
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut map));
    map.into_iter().collect()
}

/// Makes `span` a child of the trace carried in NATS headers (when there is one).
pub fn extract_nats(span: &tracing::Span, headers: Option<&async_nats::HeaderMap>) {
    if let Some(h) = headers {
        let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&NatsHeadersRef(h)));
        let _ = span.set_parent(cx);
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

/// Makes `span` a child of the trace carried in gRPC (HTTP/2) request headers.
pub fn extract_http(span: &tracing::Span, headers: &tonic::codegen::http::HeaderMap) {
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HttpHeaders(headers)));
    let _ = span.set_parent(cx);
}

/// Masks personal data for logs: keeps the first and last character of a name, the first
/// three and last four digits of a phone number.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 | 2 => "*".repeat(chars.len()),
        n if n >= 8 => {
            let head: String = chars[..3].iter().collect();
            let tail: String = chars[n - 4..].iter().collect();
            format!("{head}{}{tail}", "*".repeat(n - 7))
        }
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_names_and_phones() {
        assert_eq!(mask("张三丰"), "张*丰");
        assert_eq!(mask("+8613800138000"), "+86*******8000");
        assert_eq!(mask("李"), "*");
        assert_eq!(mask(""), "");
    }
}
