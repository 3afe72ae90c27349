//! Every service's `/metrics` tells what happened to one complaint on the real stack: the gRPC
//! call that submitted it (latency and status code), the events each relay published by kind,
//! the messages each consumer applied and what it still has pending, the clock that went
//! overdue (counted, and still open), and the escalation's notification queued and delivered.
//! Dead-letter series exist at zero before any dead letter.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use redress_proto::v1::{self, intake_service_client::IntakeServiceClient};
use redress_test_support::{ServiceProcess, TestBed, poll};

const SUBMIT: &str = "/redress.complaints.v1.IntakeService/Submit";

/// One line of the Prometheus text format: `name{label="value",…} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the exposition text; comment lines (`# HELP`, `# TYPE`) are skipped.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("not a sample line: {line:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find('{') {
        Some(open) => (&line[..open], &line[open + 1..]),
        None => {
            let (name, value) = line.split_once(' ')?;
            return Some(Sample {
                name: name.to_owned(),
                labels: BTreeMap::new(),
                value: value.trim().parse().ok()?,
            });
        }
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.char_indices().peekable();
    let end = loop {
        while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
            chars.next();
        }
        let (start, c) = chars.next()?;
        if c == '}' {
            break start;
        }
        let eq = rest[start..].find('=')? + start;
        let key = rest[start..eq].to_owned();
        while chars.peek().is_some_and(|(i, _)| *i <= eq) {
            chars.next();
        }
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()?.1 {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                other => value.push(other),
            }
        }
        labels.insert(key, value);
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value: rest[end + 1..].trim().parse().ok()?,
    })
}

/// The samples named `name` whose labels include all of `labels`.
fn matching<'a>(
    samples: &'a [Sample],
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a Sample> + 'a {
    samples.iter().filter(move |s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// The sum of the matching samples, or `None` when there is no such series.
fn total(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = matching(samples, name, labels).peekable();
    found.peek()?;
    Some(found.map(|s| s.value).sum())
}

/// Scrapes `service` until every check holds (they are about things that happen a few seconds
/// apart), then returns the samples; panics with the failing checks and the last scrape.
async fn eventually(service: &ServiceProcess, checks: &[Check<'_>]) -> Vec<Sample> {
    let (text, samples, failing) = poll(
        Duration::from_secs(45),
        async || {
            let text = service.metrics().await;
            let samples = parse(&text);
            let failing: Vec<String> = checks
                .iter()
                .filter(|c| !c.holds(&samples))
                .map(|c| c.to_string())
                .collect();
            (text, samples, failing)
        },
        |(_, _, failing)| failing.is_empty(),
    )
    .await;
    assert!(
        failing.is_empty(),
        "{}: still not true after 45 s: {failing:#?}\n--- /metrics ---\n{text}",
        service.name
    );
    samples
}

/// What a series must show.
enum Expect {
    AtLeast(f64),
    Equals(f64),
    Present,
}

struct Check<'a> {
    name: &'a str,
    labels: Vec<(&'a str, &'a str)>,
    expect: Expect,
}

impl Check<'_> {
    fn holds(&self, samples: &[Sample]) -> bool {
        match (total(samples, self.name, &self.labels), &self.expect) {
            (Some(v), Expect::AtLeast(min)) => v >= *min,
            (Some(v), Expect::Equals(want)) => v == *want,
            (Some(_), Expect::Present) => true,
            (None, _) => false,
        }
    }
}

impl std::fmt::Display for Check<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let want = match self.expect {
            Expect::AtLeast(v) => format!(">= {v}"),
            Expect::Equals(v) => format!("== {v}"),
            Expect::Present => "present".to_owned(),
        };
        write!(f, "{}{:?} {want}", self.name, self.labels)
    }
}

fn at_least<'a>(name: &'a str, labels: &[(&'a str, &'a str)], min: f64) -> Check<'a> {
    Check {
        name,
        labels: labels.to_vec(),
        expect: Expect::AtLeast(min),
    }
}

fn equals<'a>(name: &'a str, labels: &[(&'a str, &'a str)], want: f64) -> Check<'a> {
    Check {
        name,
        labels: labels.to_vec(),
        expect: Expect::Equals(want),
    }
}

fn present<'a>(name: &'a str, labels: &[(&'a str, &'a str)]) -> Check<'a> {
    Check {
        name,
        labels: labels.to_vec(),
        expect: Expect::Present,
    }
}

/// What every durable consumer reports: messages applied, pending counts from JetStream, and
/// its dead letters at zero.
fn consumer_checks(consumer: &str, consumed: bool) -> Vec<Check<'_>> {
    let c = [("consumer", consumer)];
    let mut checks = vec![
        present("redress_consumer_pending", &c),
        present("redress_consumer_ack_pending", &c),
        equals("redress_dead_letters_total", &c, 0.0),
    ];
    if consumed {
        checks.push(at_least("redress_messages_consumed_total", &c, 1.0));
        checks.push(at_least("redress_batch_seconds_count", &c, 1.0));
    }
    checks
}

fn submission() -> v1::SubmitRequest {
    v1::SubmitRequest {
        details: Some(common::complaint("metrics-1")),
    }
}

#[test]
fn the_text_format_parses_with_and_without_labels() {
    let samples = parse(
        "# TYPE a counter\na 3\nb{x=\"1\",y=\"q\\\"uote, comma\"} 2.5\nc_bucket{le=\"+Inf\"} 7\n",
    );
    assert_eq!(samples.len(), 3);
    assert_eq!(total(&samples, "a", &[]), Some(3.0));
    assert_eq!(total(&samples, "b", &[("y", "q\"uote, comma")]), Some(2.5));
    assert_eq!(total(&samples, "b", &[("x", "2")]), None);
    assert_eq!(total(&samples, "c_bucket", &[("le", "+Inf")]), Some(7.0));
}

#[tokio::test]
async fn every_service_reports_what_one_complaint_did() {
    let bed = TestBed::start().await;
    let stack = common::start(&bed, &[]).await;

    let mut client = IntakeServiceClient::new(bed.channel(&stack.intake).await);
    // Refused for want of a token: an error reply, counted with its status code.
    let refused = client
        .submit(tonic::Request::new(submission()))
        .await
        .expect_err("a call without a token is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let ack = client
        .submit(redress_test_support::authed(
            "test-agent-token",
            submission(),
        ))
        .await
        .expect("submit")
        .into_inner();

    // The completion limit (4 s) passes; the overdue raises the manager's escalation.
    let raised = bed
        .events("escalation.raised", 1, Duration::from_secs(30))
        .await;
    assert!(raised.iter().any(|e| e.complaint_id == ack.complaint_id));

    let unauthenticated = (tonic::Code::Unauthenticated as i32).to_string();
    let mut intake = vec![
        at_least(
            "redress_grpc_request_seconds_count",
            &[("method", SUBMIT)],
            2.0,
        ),
        at_least(
            "redress_grpc_requests_total",
            &[("method", SUBMIT), ("code", "0")],
            1.0,
        ),
        at_least(
            "redress_grpc_requests_total",
            &[("method", SUBMIT), ("code", unauthenticated.as_str())],
            1.0,
        ),
        at_least(
            "redress_outbox_published_total",
            &[("event", "complaint.received")],
            1.0,
        ),
        present("redress_outbox_backlog", &[]),
    ];
    intake.extend(consumer_checks("intake-submissions", false));
    intake.extend(consumer_checks("intake-registry", false));
    let samples = eventually(&stack.intake, &intake).await;
    // The histogram's buckets add up to its count.
    let count = total(
        &samples,
        "redress_grpc_request_seconds_count",
        &[("method", SUBMIT)],
    );
    let inf = total(
        &samples,
        "redress_grpc_request_seconds_bucket",
        &[("method", SUBMIT), ("le", "+Inf")],
    );
    assert_eq!(count, inf, "Submit: +Inf bucket vs count");

    let mut routing = vec![at_least(
        "redress_outbox_published_total",
        &[("event", "complaint.routed")],
        1.0,
    )];
    routing.extend(consumer_checks("routing-intake-events", true));
    eventually(&stack.routing, &routing).await;

    let mut sla = vec![
        at_least("redress_sla_overdue_total", &[("clock", "completion")], 1.0),
        present("redress_sla_clocks", &[("state", "warned")]),
        at_least("redress_sla_clocks", &[("state", "overdue")], 1.0),
        at_least(
            "redress_outbox_published_total",
            &[("event", "sla.overdue")],
            1.0,
        ),
    ];
    sla.extend(consumer_checks("sla-monitor-clocks", true));
    let samples = eventually(&stack.sla, &sla).await;
    let classes: Vec<&str> = matching(&samples, "redress_sla_overdue_total", &[])
        .filter_map(|s| s.labels.get("class").map(String::as_str))
        .collect();
    assert!(
        !classes.is_empty() && classes.iter().all(|c| ["A", "B", "C", "D"].contains(c)),
        "overdue counted by class: {classes:?}"
    );

    // The common settings deliver notifications through the log channel.
    let log_pending = [("channel", "log"), ("status", "pending")];
    let log_delivered = [("channel", "log"), ("status", "delivered")];
    let mut escalation = vec![
        at_least("redress_notifications_total", &log_pending, 1.0),
        at_least("redress_notifications_total", &log_delivered, 1.0),
        at_least("redress_escalation_raised_total", &[], 1.0),
        at_least(
            "redress_outbox_published_total",
            &[("event", "escalation.raised")],
            1.0,
        ),
        at_least(
            "redress_outbox_published_total",
            &[("event", "notification")],
            1.0,
        ),
    ];
    escalation.extend(consumer_checks("escalation-ladder", true));
    let samples = eventually(&stack.escalation, &escalation).await;
    // Every delivery queued was delivered or is still waiting: never more outcomes than queued.
    let queued = total(&samples, "redress_notifications_total", &log_pending).unwrap_or(0.0);
    let done = total(&samples, "redress_notifications_total", &log_delivered).unwrap_or(0.0)
        + total(
            &samples,
            "redress_notifications_total",
            &[("channel", "log"), ("status", "failed")],
        )
        .unwrap_or(0.0);
    assert!(
        done <= queued,
        "{done} outcomes for {queued} queued deliveries"
    );

    eventually(&stack.revisit, &consumer_checks("revisit-facts", true)).await;
}
