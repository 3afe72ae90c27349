#!/usr/bin/env python3
"""Writes deploy/compose/grafana/dashboards/redress-overview.json.

The dashboard is generated so its many near-identical panels stay consistent; edit this file
and re-run it (`python3 deploy/tools/make_dashboard.py`) rather than editing the JSON by hand.
scripts/validate-deploy.sh checks that the committed JSON is what this script produces.
"""
import json
import pathlib
import sys

DS = {"type": "prometheus", "uid": "redress-prometheus"}
SEL = 'service=~"$service"'
OUT = pathlib.Path(__file__).resolve().parents[1] / "compose/grafana/dashboards/redress-overview.json"

_next_id = 0


def _id():
    global _next_id
    _next_id += 1
    return _next_id


def target(expr, legend, ref, **extra):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}
    t.update(extra)
    return t


def timeseries(title, description, targets, x, y, w=12, h=8, unit="short", stack=False):
    return {
        "id": _id(),
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets,
    }


def stat(title, description, expr, x, y, unit="short", thresholds=None, w=6, h=4):
    steps = thresholds or [{"color": "green", "value": None}]
    return {
        "id": _id(),
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "textMode": "auto",
        },
        "targets": [target(expr, "", "A", instant=False)],
    }


def row(title, y):
    return {"id": _id(), "type": "row", "title": title, "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


# The pipeline's stages in order: the durable consumer that takes each one's input.
STAGES = "intake-submissions|routing-intake-events|sla-monitor-clocks|escalation-ladder|revisit-facts"


def pipeline(y):
    """The whole pipeline as one picture (issue 18): what each stage takes in per second and
    what waits before it. A stage whose backlog grows while its rate stays flat is the one that
    holds the pipeline back."""
    stage = f'consumer=~"{STAGES}"'
    return [
        row("Pipeline", y),
        timeseries(
            "Pipeline: rate through each stage",
            "Messages each stage applies per second (submissions at intake, events after it), beside "
            "the complaints intake records and the events each stage puts out.",
            [target(f"sum by (consumer) (rate(redress_messages_consumed_total{{{SEL},{stage}}}[$__rate_interval]))",
                    "in: {{consumer}}", "A"),
             target(f"sum(rate(redress_intake_recorded_total{{{SEL}}}[$__rate_interval]))",
                    "complaints recorded", "B"),
             target(f"sum by (service) (rate(redress_outbox_published_total{{{SEL}}}[$__rate_interval]))",
                    "out: {{service}}", "C")],
            0, y + 1, unit="ops"),
        timeseries(
            "Pipeline: backlog before each stage",
            "Messages waiting for each stage (not yet delivered, and delivered but not yet "
            "acknowledged), as the server counts them for all replicas.",
            [target(f"max by (consumer) (redress_consumer_pending{{{SEL},{stage}}}) + "
                    f"max by (consumer) (redress_consumer_ack_pending{{{SEL},{stage}}})",
                    "{{consumer}}", "A")],
            12, y + 1),
    ]


def shift(panels, at, by):
    """Moves every panel at or below row `at` down by `by`."""
    for p in panels:
        if p["gridPos"]["y"] >= at:
            p["gridPos"]["y"] += by
    return panels


def build():
    red = [{"color": "green", "value": None}, {"color": "red", "value": 1}]
    backlog = [{"color": "green", "value": None}, {"color": "orange", "value": 1000},
               {"color": "red", "value": 10000}]
    panels = [
        row("Overview", 0),
        stat("Consumed / s", "Messages applied by all durable consumers (redress_messages_consumed_total).",
             f"sum(rate(redress_messages_consumed_total{{{SEL}}}[$__rate_interval]))", 0, 1, unit="ops"),
        stat("Published / s", "Events the outbox relays published to JetStream (redress_outbox_published_total).",
             f"sum(rate(redress_outbox_published_total{{{SEL}}}[$__rate_interval]))", 6, 1, unit="ops"),
        stat("Outbox backlog", "Unpublished outbox rows, summed over the services' schemas "
             "(each replica reports its schema's backlog, hence max per service).",
             f"sum(max by (service) (redress_outbox_backlog{{{SEL}}}))", 12, 1, thresholds=backlog),
        stat("Dead letters (range)", "Messages given up on in the selected time range (redress_dead_letters_total).",
             f"sum(increase(redress_dead_letters_total{{{SEL}}}[$__range]))", 18, 1, thresholds=red),

        row("Throughput", 5),
        timeseries(
            "Events consumed per service",
            "Rate of messages applied by each service's durable pull consumers; replicas share a consumer.",
            [target(f"sum by (service) (rate(redress_messages_consumed_total{{{SEL}}}[$__rate_interval]))",
                    "{{service}}", "A")],
            0, 6, unit="ops", stack=True),
        timeseries(
            "Events published per service (outbox relay)",
            "Rate of events the outbox relay published; one relay per schema holds the advisory lock.",
            [target(f"sum by (service) (rate(redress_outbox_published_total{{{SEL}}}[$__rate_interval]))",
                    "{{service}}", "A")],
            12, 6, unit="ops", stack=True),
        timeseries(
            "Events consumed per consumer",
            "Rate per durable consumer (the `consumer` label).",
            [target(f"sum by (service, consumer) (rate(redress_messages_consumed_total{{{SEL}}}[$__rate_interval]))",
                    "{{service}} / {{consumer}}", "A")],
            0, 14, unit="ops"),
        timeseries(
            "Outbox backlog",
            "Rows written but not yet published. A backlog that keeps growing means the relay cannot "
            "reach NATS or cannot keep up.",
            [target(f"max by (service) (redress_outbox_backlog{{{SEL}}})", "{{service}}", "A")],
            12, 14),

        row("Failures and redelivery", 22),
        timeseries(
            "Dead letters",
            "Messages sent to <prefix>.deadletter.<consumer> after a permanent error or max deliveries.",
            [target(f"sum by (service, consumer) (increase(redress_dead_letters_total{{{SEL}}}[$__rate_interval]))",
                    "{{service}} / {{consumer}}", "A")],
            0, 23),
        timeseries(
            "Duplicates skipped",
            "Redelivered or re-published messages a consumer recognised by event id and skipped.",
            [target(f"sum by (service, consumer) (rate(redress_duplicates_skipped_total{{{SEL}}}[$__rate_interval]))",
                    "{{service}} / {{consumer}}", "A")],
            12, 23, unit="ops"),

        row("Consumer batch latency", 31),
        timeseries(
            "Consumer batch latency (p50 / p99 / mean)",
            "Time to apply one batch in one database transaction (redress_batch_seconds). Quantiles come "
            "from histogram buckets when the exporter is configured with buckets, else from the summary "
            "quantiles the Prometheus exporter renders by default; the mean works with either.",
            [
                target("histogram_quantile(0.99, sum by (le, service, consumer) "
                       f"(rate(redress_batch_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                       "p99 {{service}} / {{consumer}}", "A"),
                target("histogram_quantile(0.5, sum by (le, service, consumer) "
                       f"(rate(redress_batch_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                       "p50 {{service}} / {{consumer}}", "B"),
                target(f'max by (service, consumer) (redress_batch_seconds{{{SEL}, quantile="0.99"}})',
                       "p99 {{service}} / {{consumer}} (summary)", "C"),
                target(f"sum by (service, consumer) (rate(redress_batch_seconds_sum{{{SEL}}}[$__rate_interval])) / "
                       f"sum by (service, consumer) (rate(redress_batch_seconds_count{{{SEL}}}[$__rate_interval]))",
                       "mean {{service}} / {{consumer}}", "D"),
            ],
            0, 32, unit="s"),
        {
            "id": _id(),
            "type": "heatmap",
            "title": "Consumer batch latency histogram",
            "description": "Distribution of redress_batch_seconds over its histogram buckets "
                           "(empty while the exporter renders it as a summary).",
            "datasource": DS,
            "gridPos": {"x": 12, "y": 32, "w": 12, "h": 8},
            "options": {
                "calculate": False,
                "yAxis": {"unit": "s"},
                "color": {"mode": "scheme", "scheme": "Oranges"},
                "cellGap": 1,
                "tooltip": {"mode": "single", "yHistogram": True},
            },
            "targets": [target(f"sum by (le) (rate(redress_batch_seconds_bucket{{{SEL}}}[$__rate_interval]))",
                               "{{le}}", "A", format="heatmap")],
        },

        row("gRPC", 40),
        timeseries(
            "gRPC latency by method (p50 / p99)",
            "Time from request to response headers, which for a unary call is the whole handling "
            "(redress_grpc_request_seconds). Paths nobody serves are grouped as method=\"unknown\".",
            [
                target("histogram_quantile(0.99, sum by (le, service, method) "
                       f"(rate(redress_grpc_request_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                       "p99 {{method}}", "A"),
                target("histogram_quantile(0.5, sum by (le, service, method) "
                       f"(rate(redress_grpc_request_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                       "p50 {{method}}", "B"),
            ],
            0, 41, unit="s"),
        timeseries(
            "gRPC calls by method and status code",
            "Calls per second by gRPC status code (redress_grpc_requests_total; 0 = OK, 3 = invalid "
            "argument, 7 = permission denied, 16 = unauthenticated …).",
            [target(f"sum by (method, code) (rate(redress_grpc_requests_total{{{SEL}}}[$__rate_interval]))",
                    "{{method}} {{code}}", "A")],
            12, 41, unit="ops", stack=True),

        row("Events and consumers", 49),
        timeseries(
            "Events published per kind",
            "Rate of messages the outbox relays published, by event type (redress_outbox_published_total"
            "{event}); notifications and dead letters are event=\"notification\" / \"dead_letter\".",
            [target(f"sum by (event) (rate(redress_outbox_published_total{{{SEL}}}[$__rate_interval]))",
                    "{{event}}", "A")],
            0, 50, unit="ops", stack=True),
        timeseries(
            "Consumer pending",
            "Messages in the stream not yet delivered to each durable consumer (redress_consumer_pending) "
            "and delivered but not yet acknowledged (redress_consumer_ack_pending), as JetStream reports "
            "them every 5 s. Replicas report the same figure, hence max.",
            [
                target(f"max by (service, consumer) (redress_consumer_pending{{{SEL}}})",
                       "pending {{service}} / {{consumer}}", "A"),
                target(f"max by (service, consumer) (redress_consumer_ack_pending{{{SEL}}})",
                       "ack pending {{service}} / {{consumer}}", "B"),
            ],
            12, 50),

        row("Time limits and notifications", 58),
        timeseries(
            "Clocks at risk and overdue now",
            "Clocks warned and not yet met, and clocks overdue and not yet met (redress_sla_clocks"
            "{state}), counted every 5 s by the SLA monitor from its partial indexes.",
            [target(f"max by (state) (redress_sla_clocks{{{SEL}}})", "{{state}}", "A")],
            0, 59),
        timeseries(
            "Overdues emitted by clock and class",
            "Limits missed (redress_sla_overdue_total{clock, class}), counted when the overdue commits.",
            [target(f"sum by (clock, class) (increase(redress_sla_overdue_total{{{SEL}}}[$__rate_interval]))",
                    "{{clock}} {{class}}", "A")],
            12, 59, stack=True),
        timeseries(
            "Notifications by channel and status",
            "Escalation deliveries queued (pending), delivered and failed for good, per channel "
            "(redress_notifications_total{channel, status}).",
            [target(f"sum by (channel, status) (increase(redress_notifications_total{{{SEL}}}[$__rate_interval]))",
                    "{{channel}} {{status}}", "A")],
            0, 67),
        timeseries(
            "Escalations raised by trigger",
            "Escalation steps raised (redress_escalation_raised_total{trigger}).",
            [target(f"sum by (trigger) (increase(redress_escalation_raised_total{{{SEL}}}[$__rate_interval]))",
                    "{{trigger}}", "A")],
            12, 67, stack=True),
    ]
    # The pipeline's picture stands under the overview; the rest moves down to make room.
    panels = ([p for p in panels if p["gridPos"]["y"] < 5] + pipeline(5)
              + shift([p for p in panels if p["gridPos"]["y"] >= 5], 5, 9))
    return {
        "uid": "redress-overview",
        "title": "Redress overview",
        "description": "Event flow through the Redress services: consumption, outbox publication, "
                       "backlog, dead letters, duplicates, consumer batch latency and pending "
                       "messages, gRPC latency and status codes, clocks at risk and overdue, "
                       "escalations and notifications.",
        "tags": ["redress"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "service",
                    "label": "Service",
                    "type": "query",
                    "datasource": DS,
                    "query": {"query": 'label_values(up{job="redress"}, service)', "refId": "service"},
                    "definition": 'label_values(up{job="redress"}, service)',
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "sort": 1,
                }
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def render():
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        if not OUT.exists() or OUT.read_text() != render():
            print(f"{OUT} is stale: run python3 deploy/tools/make_dashboard.py", file=sys.stderr)
            sys.exit(1)
        sys.exit(0)
    OUT.write_text(render())
    print(f"wrote {OUT}")
