//! One complaint's journey is one OpenTelemetry trace across NATS and gRPC: the five services
//! export their spans over OTLP/HTTP to an in-memory collector in this test, and every service's
//! spans carry the trace id the caller started. That includes the overdue the SLA monitor's
//! scheduler fires seconds later, with no message in hand, and the escalation it causes. Every
//! service's log lines name the trace and the complaint, and none shows the customer's name or
//! phone number.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use redress_proto::v1::{self, intake_service_client::IntakeServiceClient};
use redress_test_support::{TestBed, poll};

/// The parts of OTLP's `ExportTraceServiceRequest` this test reads (field numbers from
/// opentelemetry-proto's trace_service.proto, trace.proto, resource.proto, common.proto).
#[derive(Clone, PartialEq, Message)]
struct ExportTraceServiceRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}
#[derive(Clone, PartialEq, Message)]
struct ResourceSpans {
    #[prost(message, optional, tag = "1")]
    resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
}
#[derive(Clone, PartialEq, Message)]
struct Resource {
    #[prost(message, repeated, tag = "1")]
    attributes: Vec<KeyValue>,
}
#[derive(Clone, PartialEq, Message)]
struct KeyValue {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<AnyValue>,
}
#[derive(Clone, PartialEq, Message)]
struct AnyValue {
    #[prost(string, tag = "1")]
    string_value: String,
}
#[derive(Clone, PartialEq, Message)]
struct ScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<Span>,
}
#[derive(Clone, PartialEq, Message)]
struct Span {
    #[prost(bytes = "vec", tag = "1")]
    trace_id: Vec<u8>,
    #[prost(string, tag = "5")]
    name: String,
}

type Spans = Arc<Mutex<Vec<(String, String, String)>>>;

/// An OTLP/HTTP receiver keeping (service, trace id, span name) in memory.
async fn collector() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let store = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                if let Ok(req) = ExportTraceServiceRequest::decode(body) {
                    let mut out = store.lock().expect("lock");
                    for rs in req.resource_spans {
                        let service = rs
                            .resource
                            .iter()
                            .flat_map(|r| r.attributes.iter())
                            .find(|kv| kv.key == "service.name")
                            .and_then(|kv| kv.value.as_ref())
                            .map(|v| v.string_value.clone())
                            .unwrap_or_default();
                        for ss in rs.scope_spans {
                            for s in ss.spans {
                                let trace: String =
                                    s.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                                out.push((service.clone(), trace, s.name));
                            }
                        }
                    }
                }
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), spans)
}

#[tokio::test]
async fn one_complaint_is_one_trace_across_all_five_services() {
    let bed = TestBed::start().await;
    let (endpoint, spans) = collector().await;
    let stack = common::start(
        &bed,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            // Each handled message is logged at debug level, in its span.
            ("RUST_LOG", "info,redress_platform=debug"),
        ],
    )
    .await;

    // The caller starts the trace, as an instrumented call-centre system would.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut client = IntakeServiceClient::new(bed.channel(&stack.intake).await);
    let mut req = redress_test_support::authed(
        "test-agent-token",
        v1::SubmitRequest {
            details: Some(common::complaint("traced-1")),
        },
    );
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .expect("header"),
    );
    let ack = client.submit(req).await.expect("submit").into_inner();

    // Let the story run to the manager's escalation (completion overdue after 4 s).
    let raised = bed
        .events("escalation.raised", 1, Duration::from_secs(30))
        .await;
    assert!(raised.iter().any(|e| e.complaint_id == ack.complaint_id));

    let wanted: BTreeSet<&str> =
        ["intake", "routing", "sla-monitor", "escalation", "revisit"].into();
    let in_trace = poll(
        Duration::from_secs(20),
        async || {
            let mut in_trace: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (service, trace, name) in spans.lock().expect("lock").iter() {
                if trace == trace_id {
                    in_trace
                        .entry(service.clone())
                        .or_default()
                        .insert(name.clone());
                }
            }
            in_trace
        },
        |in_trace| wanted.iter().all(|s| in_trace.contains_key(*s)),
    )
    .await;
    let seen: BTreeSet<&str> = in_trace.keys().map(String::as_str).collect();
    assert!(
        wanted.is_subset(&seen),
        "services with spans in the caller's trace: {in_trace:?}"
    );
    assert!(in_trace["intake"].contains("grpc"), "{in_trace:?}");
    assert!(in_trace["routing"].contains("consume"), "{in_trace:?}");
    // The scheduler fired the overdue inside the complaint's trace.
    assert!(in_trace["sla-monitor"].contains("sla.fire"), "{in_trace:?}");

    // The overdue and the escalation it raised carry the trace on the bus.
    for kind in ["sla.overdue", "escalation.raised"] {
        let messages = bed.event_messages(kind, 1, Duration::from_secs(10)).await;
        let ours: Vec<_> = messages
            .iter()
            .filter_map(|m| m.headers.as_ref())
            .filter(|h| {
                h.get("Redress-Complaint-Id").map(|v| v.as_str()) == Some(ack.complaint_id.as_str())
            })
            .collect();
        assert!(!ours.is_empty(), "no {kind} for the complaint");
        for headers in ours {
            let traceparent = headers.get("traceparent").map(|v| v.as_str().to_owned());
            assert!(
                traceparent.as_deref().is_some_and(|t| t.contains(trace_id)),
                "{kind} traceparent {traceparent:?}"
            );
        }
    }

    // Logs: each service names the trace and the complaint; none shows the customer.
    for service in [
        &stack.intake,
        &stack.routing,
        &stack.sla,
        &stack.escalation,
        &stack.revisit,
    ] {
        let logs = service.logs();
        let joined = logs
            .lines()
            .any(|l| l.contains(trace_id) && l.contains(&ack.complaint_id));
        assert!(
            joined,
            "{}: no log line with both the trace id and the complaint id:\n{logs}",
            service.name
        );
        for secret in ["王芳", "13800138000"] {
            assert!(!logs.contains(secret), "{} logged {secret}", service.name);
        }
    }
}
