#!/usr/bin/env python3
"""Cross-file checks of the deployment files that no schema can express.

Run by scripts/validate-deploy.sh after the schema checks, with the rendered kustomize output:

    check_deploy.py --repo . --rendered base=/tmp/base.yaml --rendered dev=... --rendered prod=...

It checks that the facts the services depend on agree everywhere they are written down: binary
names (Cargo manifests, Dockerfile, compose build args), ports (env, probes, container ports,
Services, Prometheus targets, annotations), references (ConfigMaps, Secrets, volumes, HPA and PDB
targets, compose depends_on and mounts), pinned versions (NATS in tools.sh, compose and Helm),
the security settings every pod must have, the policy file's keys, and the ADRs' shape.
Prints one line per problem and exits 1 if there was any.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

# The services and their fixed facts (ARCHITECTURE.md, the platform crate's config).
SERVICES = {
    # name: (grpc port, metrics port, schema)
    "intake": (50051, 9101, "intake"),
    "routing": (50052, 9102, "routing"),
    "sla-monitor": (50053, 9103, "sla_monitor"),
    "escalation": (50054, 9104, "escalation"),
    "revisit": (50055, 9105, "revisit"),
    "board": (50056, 9106, "board"),
}
AUTOSCALED = {"intake", "routing"}
BINARIES = ["redress"] + [f"redress-{s}" for s in SERVICES]
ROLES = {"handler", "department_manager", "customer_service_agent", "general_manager", "integration", "operator", "viewer"}
NAMESPACE = "redress"
POLICY_PATH = "/etc/redress/policy.toml"
# Settings every service must receive in Kubernetes and in compose.
REQUIRED_ENV = [
    "REDRESS_DATABASE_URL", "REDRESS_AUTH_TOKENS", "REDRESS_NATS_URL", "REDRESS_SUBJECT_PREFIX",
    "REDRESS_POLICY_FILE", "REDRESS_LOG_FORMAT", "REDRESS_GRPC_ADDR", "REDRESS_METRICS_ADDR",
]
# Non-secret settings the shared ConfigMap must carry.
CONFIGMAP_KEYS = [
    "REDRESS_NATS_URL", "REDRESS_SUBJECT_PREFIX", "REDRESS_DB_MAX_CONNECTIONS", "REDRESS_POLICY_FILE",
    "REDRESS_CLOCK", "REDRESS_LOG_FORMAT", "RUST_LOG", "REDRESS_CONSUMER_BATCH", "REDRESS_MAX_DELIVER",
    "REDRESS_OUTBOX_POLL_MS", "REDRESS_SHUTDOWN_GRACE_SECS",
]
SECRET_KEYS = ["REDRESS_AUTH_TOKENS", "REDRESS_DATABASE_URL"]
# Secrets each rendering expects to exist in the cluster without creating them itself.
EXTERNAL_SECRETS = {
    "base": {"redress-secrets"},
    "dev": set(),
    "prod": {"redress-secrets", "redress-pg-app"},
}
# Metrics the dashboard shows; each must still be emitted somewhere in the Rust sources.
METRICS = [
    "redress_messages_consumed_total", "redress_outbox_published_total", "redress_outbox_backlog",
    "redress_dead_letters_total", "redress_batch_seconds", "redress_duplicates_skipped_total",
    "redress_consumer_pending", "redress_consumer_ack_pending", "redress_grpc_request_seconds",
    "redress_grpc_requests_total", "redress_sla_clocks", "redress_sla_overdue_total",
    "redress_notifications_total", "redress_escalation_raised_total",
]
NAMESPACED_KINDS = {
    "ConfigMap", "Secret", "Service", "Deployment", "StatefulSet", "PodDisruptionBudget",
    "HorizontalPodAutoscaler", "Cluster", "ServiceAccount", "NetworkPolicy",
}


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.checked = 0

    def check(self, ok: bool, area: str, message: str) -> bool:
        self.checked += 1
        if not ok:
            self.errors.append(f"[{area}] {message}")
        return ok

    def error(self, area: str, message: str) -> None:
        self.check(False, area, message)


R = Report()


# ---------------------------------------------------------------------------------------------
# helpers

def load_yaml_docs(path: Path) -> list[dict]:
    try:
        with path.open() as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        R.error(str(path), f"cannot read YAML: {e}")
        return []


def load_yaml(path: Path):
    docs = load_yaml_docs(path)
    return docs[0] if docs else None


def dig(obj, *keys, default=None):
    for k in keys:
        if isinstance(obj, dict) and k in obj:
            obj = obj[k]
        elif isinstance(obj, list) and isinstance(k, int) and 0 <= k < len(obj):
            obj = obj[k]
        else:
            return default
    return obj


def interpolate(value: str) -> str:
    """Resolves compose `${VAR:-default}` / `${VAR-default}` / `${VAR}` with the defaults."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", str(value))


def port_of(addr: str) -> int | None:
    m = re.fullmatch(r"(?:\[[^\]]+\]|[^:]+):(\d+)", str(addr))
    return int(m.group(1)) if m else None


def check_auth_tokens(area: str, value: str) -> None:
    for entry in filter(None, (e.strip() for e in value.split(","))):
        m = re.fullmatch(r"([^=\s]+)=([^:\s]+):([a-z_]+)(?:@[^:+\s]+(?:\+[^:+\s]+)*)?(?::(.+))?", entry)
        if not R.check(m is not None, area,
                       f"auth token entry {entry!r} is not token=actor_id:role[@department[+department…]][:display name]"):
            continue
        R.check(m.group(3) in ROLES, area, f"auth token role {m.group(3)!r} is not one of {sorted(ROLES)}")


def check_sample_organisation(repo: Path) -> None:
    """The Kubernetes base ships the same sample organisation as `redress up` and compose."""
    base = repo / "deploy/k8s/base/org/sample-organisation.toml"
    R.check(base.read_text() == (repo / "deploy/demo/seed.toml").read_text(), "k8s/base",
            "org/sample-organisation.toml must be a copy of deploy/demo/seed.toml")


def check_liveness_probes(repo: Path) -> None:
    """Liveness asks the `liveness` health service: readiness ("") turns NOT_SERVING while
    PostgreSQL or NATS is away, and a liveness probe on it would restart pods through an outage."""
    for path in sorted((repo / "deploy/k8s/base").glob("*.yaml")):
        text = path.read_text()
        if "livenessProbe:" not in text:
            continue
        block = text.split("livenessProbe:", 1)[1].split("lifecycle:", 1)[0]
        R.check("service: liveness" in block, f"k8s/base/{path.name}",
                "livenessProbe must ask the health service `liveness`, not readiness (\"\")")


def dev_tokens(repo: Path) -> str | None:
    """The development token table `redress up` uses (DEV_AUTH_TOKENS in crates/cli/src/up.rs)."""
    text = (repo / "crates/cli/src/up.rs").read_text()
    m = re.search(r'pub const DEV_AUTH_TOKENS: &str = "((?:[^"\\]|\\\n)*)";', text)
    if not m:
        return None
    return re.sub(r"\\\n\s*", "", m.group(1))


def nats_version(repo: Path) -> str | None:
    text = (repo / "scripts/tools.sh").read_text() if (repo / "scripts/tools.sh").exists() else ""
    m = re.search(r'NATS_VERSION="\$\{NATS_VERSION:-([0-9.]+)\}"', text)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------------------------
# workspace, Dockerfile, .dockerignore

def workspace_binaries(repo: Path) -> set[str]:
    root = tomllib.loads((repo / "Cargo.toml").read_text())
    bins: set[str] = set()
    for member in dig(root, "workspace", "members", default=[]):
        manifest = repo / member / "Cargo.toml"
        if not manifest.exists():
            continue
        data = tomllib.loads(manifest.read_text())
        declared = [b.get("name") for b in data.get("bin", [])]
        if declared:
            bins.update(declared)
        elif (repo / member / "src/main.rs").exists():
            bins.add(data["package"]["name"])
    return bins


def check_dockerfile(repo: Path) -> None:
    area = "Dockerfile"
    text = (repo / "Dockerfile").read_text()
    bins = workspace_binaries(repo)
    for b in BINARIES:
        R.check(b in bins, "Cargo", f"binary {b} is not declared by any workspace member")
        R.check(re.search(rf"(?<![\w-]){re.escape(b)}(?![\w-])", text) is not None, area,
                f"binary {b} is not built/copied/allowed by the Dockerfile")
    for needle, why in [
        ("rust:1.95.0-bookworm", "the builder must be rust:1.95.0-bookworm"),
        ("debian:bookworm-slim", "the runtime must be debian:bookworm-slim"),
        ("cargo chef prepare", "dependency caching (cargo chef prepare)"),
        ("cargo chef cook", "dependency caching (cargo chef cook)"),
        ("ARG SERVICE", "ARG SERVICE selects the binary"),
        ("grpc_health_probe", "the compose health check needs grpc_health_probe"),
        ("ca-certificates", "the runtime needs CA certificates"),
    ]:
        R.check(needle in text, area, f"missing `{needle}`: {why}")
    R.check(re.search(r"cargo build --release[^\n]*--workspace[^\n]*--bins", text) is not None, area,
            "the build must be `cargo build --release --workspace --bins`")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    R.check(bool(users) and users[-1].split(":")[0] not in ("root", "0"), area,
            "the final stage must switch to a non-root USER")
    R.check(re.search(r'^ENTRYPOINT\s+\[', text, re.M) is not None, area, "exec-form ENTRYPOINT expected")

    ignore = [l.strip() for l in (repo / ".dockerignore").read_text().splitlines()
              if l.strip() and not l.startswith("#")]
    for needed in ["target/", ".tools/", ".redress/", ".git/"]:
        R.check(needed in ignore, ".dockerignore", f"must exclude {needed}")
    for kept in ["crates", "services", "proto", "Cargo.toml", "Cargo.lock"]:
        R.check(not any(p.rstrip("/") in (kept, kept + "/**", "*", "**") for p in ignore), ".dockerignore",
                f"must not exclude {kept} (the build needs it)")


# ---------------------------------------------------------------------------------------------
# docker-compose.yml and the observability configs it mounts

def check_compose(repo: Path) -> None:
    area = "compose"
    compose = load_yaml(repo / "docker-compose.yml")
    if not isinstance(compose, dict):
        R.error(area, "docker-compose.yml is empty or not a mapping")
        return
    services = compose.get("services", {})
    declared_volumes = set((compose.get("volumes") or {}).keys())
    host_ports: dict[str, str] = {}
    want_nats = nats_version(repo)
    R.check(want_nats is not None, "scripts/tools.sh", "cannot read the pinned NATS_VERSION")

    for name, svc in services.items():
        # depends_on targets exist; service_healthy targets have a health check.
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, cond in deps.items():
            if not R.check(dep in services, area, f"{name} depends on unknown service {dep}"):
                continue
            if (cond or {}).get("condition") == "service_healthy":
                R.check("healthcheck" in services[dep], area,
                        f"{name} waits for {dep} to be healthy but {dep} has no healthcheck")
        # Volumes: named volumes declared, bind sources present.
        for vol in svc.get("volumes") or []:
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if source.startswith((".", "/")):
                R.check((repo / source).exists(), area, f"{name} mounts {source}, which does not exist")
            elif source:
                R.check(source in declared_volumes, area, f"{name} uses volume {source} not declared at top level")
        for p in svc.get("ports") or []:
            host = str(p).rsplit(":", 1)[0] if ":" in str(p) else str(p)
            R.check(host not in host_ports, area, f"host port {host} used by {name} and {host_ports.get(host)}")
            host_ports[host] = name
        image = str(svc.get("image", ""))
        R.check(bool(image) and not image.endswith(":latest") and (":" in image), area,
                f"{name}: pin an image tag (got {image!r})")

    # Infrastructure.
    nats = services.get("nats", {})
    R.check(nats.get("image") == f"nats:{want_nats}-alpine", area,
            f"nats image must be nats:{want_nats}-alpine (scripts/tools.sh pins {want_nats}), got {nats.get('image')}")
    cmd = " ".join(map(str, nats.get("command") or []))
    for flag in ["-js", "-sd /data", "-m 8222"]:
        R.check(flag in cmd, area, f"nats command lacks `{flag}`")
    R.check("js-enabled-only=true" in json.dumps(dig(nats, "healthcheck", "test")), area,
            "nats health check must use /healthz?js-enabled-only=true")
    pg = services.get("postgres", {})
    m = re.fullmatch(r"postgres:(\d+).*", str(pg.get("image", "")))
    R.check(m is not None and int(m.group(1)) >= 15, area, "postgres image must be PostgreSQL 15+")
    R.check("pg_isready" in json.dumps(dig(pg, "healthcheck", "test")), area, "postgres health check must use pg_isready")
    pg_env = {k: interpolate(v) for k, v in (pg.get("environment") or {}).items()}

    for svc_name, (grpc, metrics, schema) in SERVICES.items():
        svc = services.get(svc_name)
        if not R.check(svc is not None, area, f"service {svc_name} missing"):
            continue
        a = f"compose:{svc_name}"
        R.check(dig(svc, "build", "args", "SERVICE") == f"redress-{svc_name}", a,
                f"build arg SERVICE must be redress-{svc_name}")
        dockerfile = repo / dig(svc, "build", "context", default=".") / dig(svc, "build", "dockerfile", default="Dockerfile")
        R.check(dockerfile.exists(), a, f"build uses {dockerfile}, which does not exist")
        env = {k: interpolate(v) for k, v in (svc.get("environment") or {}).items()}
        for key in REQUIRED_ENV + ["OTEL_EXPORTER_OTLP_ENDPOINT"]:
            R.check(key in env, a, f"environment lacks {key}")
        R.check(env.get("REDRESS_GRPC_ADDR") == f"0.0.0.0:{grpc}", a, f"REDRESS_GRPC_ADDR must be 0.0.0.0:{grpc}")
        R.check(env.get("REDRESS_METRICS_ADDR") == f"0.0.0.0:{metrics}", a, f"REDRESS_METRICS_ADDR must be 0.0.0.0:{metrics}")
        R.check(env.get("REDRESS_LOG_FORMAT") == "json", a, "REDRESS_LOG_FORMAT must be json in containers")
        R.check(env.get("REDRESS_DB_SCHEMA", schema) == schema, a, f"REDRESS_DB_SCHEMA must be {schema}")
        check_auth_tokens(a, env.get("REDRESS_AUTH_TOKENS", ""))
        dev = dev_tokens(repo)
        R.check(dev is not None and env.get("REDRESS_AUTH_TOKENS") == dev, a,
                "the default REDRESS_AUTH_TOKENS must be the development tokens `redress up` "
                "prints and the README uses (DEV_AUTH_TOKENS in crates/cli/src/up.rs)")
        if svc_name == "routing":
            seed = env.get("REDRESS_ROUTING_SEED", "")
            R.check(any(isinstance(v, str) and v.split(":")[1:2] == [seed]
                        for v in svc.get("volumes") or []), a,
                    "routing must mount the sample organisation it names in REDRESS_ROUTING_SEED "
                    "(a fresh install must route complaints)")
            R.check(env.get("REDRESS_ROUTING_SEED_IF_EMPTY") == "true", a,
                    "the sample organisation is loaded only while none exists "
                    "(REDRESS_ROUTING_SEED_IF_EMPTY=true)")
        url = re.fullmatch(r"postgres(?:ql)?://([^:@/]+)(?::([^@/]*))?@([^:/]+)(?::(\d+))?/(\w+)",
                           env.get("REDRESS_DATABASE_URL", ""))
        if R.check(url is not None, a, "REDRESS_DATABASE_URL is not postgres://user:password@host:port/db"):
            user, password, host, _, db = url.groups()
            R.check(host in services, a, f"database host {host} is not a compose service")
            R.check(user == pg_env.get("POSTGRES_USER", "postgres"), a, "database user differs from POSTGRES_USER")
            R.check(password == pg_env.get("POSTGRES_PASSWORD"), a, "database password differs from POSTGRES_PASSWORD")
            R.check(db == pg_env.get("POSTGRES_DB", user), a, "database name differs from POSTGRES_DB")
        nats_url = re.fullmatch(r"nats://([^:/]+):(\d+)", env.get("REDRESS_NATS_URL", ""))
        R.check(nats_url is not None and nats_url.group(1) in services, a, "REDRESS_NATS_URL must name a compose service")
        otel = re.fullmatch(r"http://([^:/]+):4318/?", env.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
        R.check(otel is not None and otel.group(1) in services, a,
                "OTEL_EXPORTER_OTLP_ENDPOINT must be http://<compose service>:4318 (OTLP/HTTP)")
        policy_mounts = [v for v in svc.get("volumes") or [] if isinstance(v, str) and f":{POLICY_PATH}" in v]
        R.check(bool(policy_mounts) and env.get("REDRESS_POLICY_FILE") == POLICY_PATH, a,
                f"the policy file must be mounted at {POLICY_PATH} and named by REDRESS_POLICY_FILE")
        test = json.dumps(dig(svc, "healthcheck", "test"))
        R.check("grpc_health_probe" in test and f":{grpc}" in test, a,
                f"healthcheck must run grpc_health_probe against port {grpc}")
        deps = svc.get("depends_on") or {}
        for infra in ["nats", "postgres"]:
            R.check(dig(deps, infra, "condition") == "service_healthy", a,
                    f"must depend on {infra} with condition service_healthy")
        ports = [str(p) for p in svc.get("ports") or []]
        R.check(f"{grpc}:{grpc}" in ports and f"{metrics}:{metrics}" in ports, a,
                f"should publish {grpc} and {metrics}")

    check_observability(repo, services)


def check_observability(repo: Path, services: dict) -> None:
    # Prometheus: one target per service on its metrics port, labelled with the service name.
    area = "prometheus.yml"
    prom = load_yaml(repo / "deploy/compose/prometheus.yml") or {}
    targets = {}
    for job in prom.get("scrape_configs", []):
        for sc in job.get("static_configs", []):
            for t in sc.get("targets", []):
                targets[t] = (sc.get("labels") or {}).get("service")
    for svc_name, (_, metrics, _) in SERVICES.items():
        t = f"{svc_name}:{metrics}"
        R.check(t in targets, area, f"no scrape target {t}")
        R.check(targets.get(t) == svc_name, area, f"target {t} must carry label service={svc_name}")
    for t in targets:
        host = t.split(":")[0]
        R.check(host in services or host in ("127.0.0.1", "localhost"), area, f"target {t} is not a compose service")

    # Alerting rules: the file prometheus.yml loads is mounted there by compose; every rule is
    # complete, and every redress_* series it reads is emitted by some Rust source.
    area = "alerts.yml"
    R.check(prom.get("rule_files") == ["/etc/prometheus/alerts.yml"], area,
            "prometheus.yml must load /etc/prometheus/alerts.yml")
    mounts = dig(services, "prometheus", "volumes", default=[]) or []
    R.check("./deploy/compose/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts, area,
            "compose must mount deploy/compose/alerts.yml at /etc/prometheus/alerts.yml")
    rules = load_yaml(repo / "deploy/compose/alerts.yml") or {}
    rust = "\n".join(f.read_text() for d in ("crates", "services") for f in (repo / d).rglob("*.rs")
                     if "target" not in f.parts)
    names = set()
    groups = rules.get("groups") or []
    R.check(bool(groups), area, "no rule groups")
    for g in groups:
        for rule in g.get("rules") or []:
            name = rule.get("alert", "?")
            R.check(name not in names, area, f"alert {name} is defined twice")
            names.add(name)
            expr = rule.get("expr", "")
            R.check(bool(expr), area, f"{name}: no expr")
            R.check(dig(rule, "labels", "severity") in ("warning", "critical"), area,
                    f"{name}: labels.severity must be warning or critical")
            for key in ("summary", "description"):
                R.check(bool(dig(rule, "annotations", key)), area, f"{name}: no annotations.{key}")
            R.check(expr.count("(") == expr.count(")"), area, f"{name}: unbalanced parentheses")
            for series in set(re.findall(r"redress_[a-z_]+", expr)):
                base = re.sub(r"_(bucket|count|sum)$", "", series)
                R.check(f'"{base}"' in rust, area, f"{name} reads {series}, which no Rust source emits")

    # OpenTelemetry collector: pipelines reference defined components; OTLP/HTTP on 0.0.0.0:4318.
    area = "otel-collector.yaml"
    otel = load_yaml(repo / "deploy/compose/otel-collector.yaml") or {}
    for kind in ["receivers", "processors", "exporters"]:
        defined = set((otel.get(kind) or {}).keys())
        for pname, pipe in (dig(otel, "service", "pipelines", default={}) or {}).items():
            for comp in pipe.get(kind, []):
                R.check(comp in defined, area, f"pipeline {pname} uses undefined {kind[:-1]} {comp}")
    R.check(dig(otel, "receivers", "otlp", "protocols", "http", "endpoint") == "0.0.0.0:4318", area,
            "the OTLP/HTTP receiver must listen on 0.0.0.0:4318")
    for ename, exp in (otel.get("exporters") or {}).items():
        ep = (exp or {}).get("endpoint")
        if ep:
            R.check(ep.split(":")[0] in services, area, f"exporter {ename} sends to {ep}, not a compose service")
    R.check("traces" in (dig(otel, "service", "pipelines", default={}) or {}), area, "no traces pipeline")

    # Grafana: provisioned data source uids and the dashboard that uses them.
    area = "grafana"
    ds = load_yaml(repo / "deploy/compose/grafana/provisioning/datasources/datasources.yaml") or {}
    uids = {d.get("uid") for d in ds.get("datasources", [])}
    for d in ds.get("datasources", []):
        host = re.sub(r"^https?://", "", d.get("url", "")).split(":")[0]
        R.check(host in services, area, f"data source {d.get('name')} points at {host}, not a compose service")
    dash_dir = repo / "deploy/compose/grafana/dashboards"
    prov = load_yaml(repo / "deploy/compose/grafana/provisioning/dashboards/dashboards.yaml") or {}
    R.check(bool(prov.get("providers")), area, "no dashboard provider")
    dashboards = sorted(dash_dir.glob("*.json"))
    R.check(bool(dashboards), area, "no dashboard JSON")
    exprs = []
    for path in dashboards:
        try:
            dash = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            R.error(area, f"{path.name}: {e}")
            continue
        for panel in dash.get("panels", []):
            for p in [panel] + panel.get("panels", []):
                uid = dig(p, "datasource", "uid")
                R.check(uid is None or uid in uids, area, f"{path.name}: panel {p.get('title')} uses unknown data source {uid}")
                exprs += [t.get("expr", "") for t in p.get("targets", [])]
    sources = "\n".join(f.read_text() for d in ("crates", "services") for f in (repo / d).rglob("*.rs")
                        if "target" not in f.parts)
    for metric in METRICS:
        R.check(any(metric in e for e in exprs), area, f"no dashboard panel shows {metric}")
        R.check(f'"{metric}"' in sources, area, f"{metric} is shown on the dashboard but no Rust source emits it")
    gen = repo / "deploy/tools/make_dashboard.py"
    if gen.exists():
        r = subprocess.run([sys.executable, str(gen), "--check"], capture_output=True, text=True)
        R.check(r.returncode == 0, area, (r.stderr or r.stdout).strip() or "dashboard JSON is stale")


# ---------------------------------------------------------------------------------------------
# Kubernetes (rendered kustomize output)

def labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s(name: str, path: Path, repo: Path) -> None:
    area = f"k8s:{name}"
    docs = load_yaml_docs(path)
    if not R.check(bool(docs), area, "kustomize rendered nothing"):
        return
    index: dict[tuple[str, str], dict] = {}
    for d in docs:
        kind, meta = d.get("kind"), d.get("metadata") or {}
        ok = R.check(bool(d.get("apiVersion")) and bool(kind) and bool(meta.get("name")), area,
                     f"object without apiVersion/kind/metadata.name: {str(d)[:80]}")
        if not ok:
            continue
        if kind in NAMESPACED_KINDS:
            R.check(meta.get("namespace") == NAMESPACE, area, f"{kind}/{meta['name']} is not in namespace {NAMESPACE}")
        key = (kind, meta["name"])
        R.check(key not in index, area, f"duplicate {kind}/{meta['name']}")
        index[key] = d

    external = EXTERNAL_SECRETS.get(name, set())

    def exists(kind: str, obj_name: str, key: str | None = None) -> bool:
        obj = index.get((kind, obj_name))
        if obj is None:
            return kind == "Secret" and obj_name in external
        if key is None:
            return True
        return key in (obj.get("data") or {}) or key in (obj.get("stringData") or {})

    deployments = {n: d for (k, n), d in index.items() if k == "Deployment"}
    policies_checked: set[str] = set()
    hpas = {n: d for (k, n), d in index.items() if k == "HorizontalPodAutoscaler"}
    hpa_targets = {dig(h, "spec", "scaleTargetRef", "name") for h in hpas.values()}

    config = next((d for (k, n), d in index.items() if k == "ConfigMap" and n.startswith("redress-config")), None)
    if R.check(config is not None, area, "ConfigMap redress-config missing"):
        for key in CONFIGMAP_KEYS:
            R.check(key in (config.get("data") or {}), area, f"ConfigMap redress-config lacks {key}")
        R.check(config["data"].get("REDRESS_POLICY_FILE") == POLICY_PATH, area,
                f"REDRESS_POLICY_FILE must be {POLICY_PATH}")
        R.check(config["data"].get("REDRESS_LOG_FORMAT") == "json", area, "REDRESS_LOG_FORMAT must be json")
    for (k, n), d in index.items():
        if k == "Secret" and n.startswith("redress-secrets"):
            data = dict(d.get("stringData") or {})
            import base64
            for key, val in (d.get("data") or {}).items():
                data[key] = base64.b64decode(val).decode()
            for key in SECRET_KEYS:
                R.check(key in data, area, f"Secret {n} lacks {key}")
            check_auth_tokens(f"{area}:{n}", data.get("REDRESS_AUTH_TOKENS", ""))

    for svc_name, (grpc, metrics, schema) in SERVICES.items():
        a = f"{area}:{svc_name}"
        dep = deployments.get(svc_name)
        if not R.check(dep is not None, a, "Deployment missing"):
            continue
        for kind in ["Service", "PodDisruptionBudget"]:
            R.check((kind, svc_name) in index, a, f"{kind} missing")
        if svc_name in AUTOSCALED:
            R.check(svc_name in hpa_targets, a, "HorizontalPodAutoscaler missing")
        spec = dep.get("spec", {})
        tmpl = spec.get("template", {})
        pod = tmpl.get("spec", {})
        labels = dig(tmpl, "metadata", "labels", default={})
        R.check(labels_match(dig(spec, "selector", "matchLabels", default={}), labels), a,
                "Deployment selector does not match the pod template labels")
        if svc_name in hpa_targets:
            R.check("replicas" not in spec, a, "Deployment sets replicas although an HPA scales it")
        R.check(dig(pod, "securityContext", "runAsNonRoot") is True, a, "pod securityContext.runAsNonRoot must be true")
        R.check(dig(pod, "securityContext", "seccompProfile", "type") == "RuntimeDefault", a,
                "pod seccompProfile must be RuntimeDefault")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        containers = pod.get("containers", [])
        R.check(len(containers) == 1, a, "expected exactly one container")
        for c in containers:
            cports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
            R.check(cports.get("grpc") == grpc, a, f"container port grpc must be {grpc}")
            R.check(cports.get("metrics") == metrics, a, f"container port metrics must be {metrics}")
            image = c.get("image", "")
            R.check(name == "base" or (":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")), a,
                    f"image {image!r} must carry a pinned tag")
            R.check(f"redress-{svc_name}" in image, a, f"image {image!r} is not redress-{svc_name}")
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"]:
                R.check(dig(c, probe, "grpc", "port") == grpc, a, f"{probe} must be a gRPC probe on port {grpc}")
            env = {e["name"]: e for e in c.get("env", [])}
            R.check(dig(env, "REDRESS_GRPC_ADDR", "value") == f"0.0.0.0:{grpc}", a, f"REDRESS_GRPC_ADDR must be 0.0.0.0:{grpc}")
            R.check(dig(env, "REDRESS_METRICS_ADDR", "value") == f"0.0.0.0:{metrics}", a,
                    f"REDRESS_METRICS_ADDR must be 0.0.0.0:{metrics}")
            R.check(dig(env, "REDRESS_DB_SCHEMA", "value", default=schema) == schema, a, f"REDRESS_DB_SCHEMA must be {schema}")
            R.check(str(dig(tmpl, "metadata", "annotations", "prometheus.io/port")) == str(metrics), a,
                    f"prometheus.io/port annotation must be {metrics}")
            provided = set(env)
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    ref = src["configMapRef"]["name"]
                    if R.check(exists("ConfigMap", ref), a, f"envFrom ConfigMap {ref} does not exist"):
                        provided |= set(index[("ConfigMap", ref)].get("data", {}))
                if "secretRef" in src:
                    ref = src["secretRef"]["name"]
                    if R.check(exists("Secret", ref), a, f"envFrom Secret {ref} does not exist"):
                        obj = index.get(("Secret", ref))
                        provided |= set(SECRET_KEYS) if obj is None else set(obj.get("data") or {}) | set(obj.get("stringData") or {})
            for e in env.values():
                for kind, field in [("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")]:
                    ref = dig(e, "valueFrom", field)
                    if ref:
                        R.check(exists(kind, ref["name"], ref.get("key")) or ref.get("optional"), a,
                                f"env {e['name']} refers to {kind} {ref['name']} key {ref.get('key')}, which does not exist")
            for key in REQUIRED_ENV:
                R.check(key in provided, a, f"no source provides {key}")
            res = c.get("resources", {})
            for part in ["requests", "limits"]:
                for r in ["cpu", "memory"]:
                    R.check(r in res.get(part, {}), a, f"resources.{part}.{r} missing")
            sc = c.get("securityContext", {})
            R.check(sc.get("readOnlyRootFilesystem") is True, a, "container needs readOnlyRootFilesystem: true")
            R.check(sc.get("allowPrivilegeEscalation") is False, a, "container needs allowPrivilegeEscalation: false")
            R.check("ALL" in (dig(sc, "capabilities", "drop") or []), a, "container must drop ALL capabilities")
            mounted_policy = False
            for vm in c.get("volumeMounts", []):
                vol = volumes.get(vm["name"])
                if not R.check(vol is not None, a, f"volumeMount {vm['name']} has no volume"):
                    continue
                # A ConfigMap volume, or a projected volume of several.
                config_maps = [vol["configMap"]] if "configMap" in vol else [
                    src["configMap"] for src in dig(vol, "projected", "sources") or [] if "configMap" in src]
                for source in config_maps:
                    cm = source["name"]
                    if R.check(exists("ConfigMap", cm), a, f"volume {vm['name']} refers to missing ConfigMap {cm}"):
                        data = index[("ConfigMap", cm)].get("data", {})
                        items = source.get("items") or [{"key": k, "path": k} for k in data]
                        for it in items:
                            R.check(it["key"] in data, a, f"ConfigMap {cm} has no key {it['key']}")
                            mounted = f"{vm['mountPath'].rstrip('/')}/{it['path']}"
                            if mounted == POLICY_PATH and it["key"] in data:
                                mounted_policy = True
                                if cm not in policies_checked:
                                    policies_checked.add(cm)
                                    check_policy_text(f"{area}:{cm}", data[it["key"]], repo)
                            if it["key"] in data and it["path"].endswith("organisation.toml"):
                                seeds = [e.get("value") for e in c.get("env", [])
                                         if e.get("name") == "REDRESS_ROUTING_SEED"]
                                R.check(seeds == [mounted], a,
                                        f"REDRESS_ROUTING_SEED must name the mounted organisation {mounted}")
                                org = tomllib.loads(data[it["key"]])
                                R.check(bool(org.get("departments")) and bool(org.get("default_department")), a,
                                        f"ConfigMap {cm}: the sample organisation needs departments and a default_department")
                if "secret" in vol:
                    R.check(exists("Secret", vol["secret"]["secretName"]), a, f"volume {vm['name']} refers to a missing Secret")
            R.check(mounted_policy, a, f"the policy ConfigMap is not mounted at {POLICY_PATH}")

    for (k, n), d in index.items():
        a = f"{area}:{k}/{n}"
        if k == "Service":
            sel = dig(d, "spec", "selector", default={})
            targets = [dep for dep in deployments.values() if labels_match(sel, dig(dep, "spec", "template", "metadata", "labels", default={}))]
            if R.check(bool(targets), a, "selector matches no Deployment's pods"):
                ports = {}
                for c in dig(targets[0], "spec", "template", "spec", "containers", default=[]):
                    for p in c.get("ports", []):
                        ports[p.get("name")] = p["containerPort"]
                for p in dig(d, "spec", "ports", default=[]):
                    tp = p.get("targetPort", p.get("port"))
                    R.check(tp in ports or tp in ports.values(), a, f"targetPort {tp} is not a container port")
        elif k == "PodDisruptionBudget":
            sel = dig(d, "spec", "selector", "matchLabels", default={})
            targets = [dep for dep in deployments.values() if labels_match(sel, dig(dep, "spec", "template", "metadata", "labels", default={}))]
            if R.check(bool(targets), a, "selector matches no Deployment's pods"):
                dep = targets[0]
                min_avail = dig(d, "spec", "minAvailable")
                if name == "base":
                    R.check(min_avail == 1, a, "minAvailable must be 1")
                if isinstance(min_avail, int) and dep["metadata"]["name"] not in hpa_targets:
                    R.check(dep["spec"].get("replicas", 1) > min_avail, a,
                            "minAvailable is not below the replica count: node drains would block")
        elif k == "HorizontalPodAutoscaler":
            ref = dig(d, "spec", "scaleTargetRef", default={})
            R.check(ref.get("kind") == "Deployment" and ref.get("name") in deployments, a,
                    f"scaleTargetRef {ref} is not a Deployment here")
            lo, hi = dig(d, "spec", "minReplicas", default=1), dig(d, "spec", "maxReplicas", default=0)
            R.check(1 <= lo <= hi, a, f"replica range {lo}-{hi} is invalid")
            cpu = [m for m in dig(d, "spec", "metrics", default=[]) if dig(m, "resource", "name") == "cpu"]
            R.check(bool(cpu) and dig(cpu[0], "resource", "target", "averageUtilization") == 70, a,
                    "must scale on CPU utilisation 70 %")
            if name == "base":
                R.check((lo, hi) == (2, 10), a, "base range must be 2-10 replicas")


# ---------------------------------------------------------------------------------------------
# policy, Helm values, CloudNativePG, ADRs, README

def policy_schema(repo: Path) -> dict[str, set[str]] | None:
    """Field names of the policy structs, read from the domain crate (None if not found)."""
    folder = repo / "crates/domain/src/policy"
    files = sorted(folder.glob("*.rs")) if folder.is_dir() else [repo / "crates/domain/src/policy.rs"]
    text = "\n".join(f.read_text() for f in files if f.exists())
    if not text:
        return None

    def fields(struct: str) -> dict[str, str] | None:
        m = re.search(rf"pub struct {struct} \{{(.*?)\n\}}", text, re.S)
        if not m:
            return None
        out = {}
        for fm in re.finditer(r"((?:\s*#\[[^\n]*\]\n|\s*///[^\n]*\n)*)\s*pub (\w+): ([^,\n]+),", m.group(1)):
            attrs, fname, ftype = fm.groups()
            rename = re.search(r'rename = "([^"]+)"', attrs)
            out[rename.group(1) if rename else fname] = ftype.strip()
        return out

    top = fields("Policy")
    if not top:
        return None
    schema: dict[str, set[str]] = {"": set(top)}
    for key, ftype in top.items():
        sub = fields(ftype)
        if sub is not None:
            schema[key] = set(sub)
    return schema


def check_policy_text(area: str, text: str, repo: Path) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        R.error(area, f"policy is not valid TOML: {e}")
        return
    schema = policy_schema(repo)
    if not R.check(schema is not None, area, "the policy structs were not found in crates/domain/src/policy/"):
        return
    for key, value in data.items():
        if not R.check(key in schema[""], area, f"unknown policy table or key {key!r}"):
            continue
        if isinstance(value, dict) and key in schema:
            for sub in value:
                R.check(sub in schema[key], area, f"unknown policy key {key}.{sub}")
    duration = re.compile(r"^(\d+(d|h|m|s|ms))+$")
    limits = data.get("limits", {})
    for k in ["acceptance"]:
        if k in limits:
            R.check(bool(duration.match(str(limits[k]))), area, f"limits.{k} is not a duration like 24h")
    for cls, v in (limits.get("completion") or {}).items():
        R.check(cls in "ABCD" and bool(duration.match(str(v))), area, f"limits.completion.{cls} = {v!r} is invalid")


def check_helm(repo: Path) -> None:
    area = "helm/nats-values.yaml"
    path = repo / "deploy/helm/nats-values.yaml"
    values = load_yaml(path) or {}
    want = nats_version(repo)
    R.check(dig(values, "config", "cluster", "enabled") is True, area, "config.cluster.enabled must be true")
    R.check(dig(values, "config", "cluster", "replicas") == 3, area, "config.cluster.replicas must be 3")
    R.check(dig(values, "config", "jetstream", "enabled") is True, area, "JetStream must be enabled")
    R.check(dig(values, "config", "jetstream", "fileStore", "enabled") is True, area, "file storage must be enabled")
    R.check(dig(values, "config", "jetstream", "fileStore", "pvc", "enabled") is True, area, "file storage needs PVCs")
    R.check(dig(values, "container", "image", "tag") == f"{want}-alpine", area,
            f"container.image.tag must be {want}-alpine (scripts/tools.sh)")
    R.check("REDRESS_STREAM_REPLICAS" in path.read_text(), area,
            "the note on REDRESS_STREAM_REPLICAS (streams with 3 replicas) is missing")
    prod = (repo / "deploy/k8s/overlays/prod/kustomization.yaml").read_text()
    R.check("REDRESS_STREAM_REPLICAS=3" in prod, "k8s/overlays/prod",
            "the prod overlay must run the streams with 3 replicas on the 3-node NATS cluster")


def check_postgres(repo: Path) -> None:
    area = "postgres"
    secrets = {}
    clusters = {}
    for path in sorted((repo / "deploy/postgres").glob("*.yaml")):
        for d in load_yaml_docs(path):
            meta = d.get("metadata") or {}
            a = f"{area}:{path.name}"
            if not R.check(bool(d.get("apiVersion")) and bool(d.get("kind")) and bool(meta.get("name")), a,
                           "object without apiVersion/kind/metadata.name"):
                continue
            R.check(meta.get("namespace") == NAMESPACE, a, f"{d['kind']}/{meta['name']} must be in namespace {NAMESPACE}")
            if d["kind"] == "Secret":
                secrets[meta["name"]] = d
            if d["kind"] == "Cluster":
                clusters[path.name] = d
                R.check(d["apiVersion"] == "postgresql.cnpg.io/v1", a, "Cluster must be postgresql.cnpg.io/v1")
                R.check(meta["name"] == "redress-pg", a,
                        "Cluster must be named redress-pg (the overlays use redress-pg-rw and redress-pg-app)")
                spec = d.get("spec", {})
                R.check(isinstance(spec.get("instances"), int) and spec["instances"] >= 1, a, "spec.instances missing")
                R.check(bool(dig(spec, "storage", "size")), a, "spec.storage.size missing")
                R.check(dig(spec, "bootstrap", "initdb", "database") == "redress", a, "initdb.database must be redress")
                R.check(dig(spec, "bootstrap", "initdb", "owner") == "redress", a, "initdb.owner must be redress")
                m = re.search(r":(\d+)", str(spec.get("imageName", "")))
                R.check(m is not None and int(m.group(1)) >= 15, a, "imageName must pin PostgreSQL 15+")
    prod = clusters.get("cluster.yaml")
    if R.check(prod is not None, area, "cluster.yaml has no Cluster"):
        R.check(dig(prod, "spec", "instances") == 3, area, "the production cluster must have 3 instances")
    for fname, c in clusters.items():
        ref = dig(c, "spec", "bootstrap", "initdb", "secret", "name")
        if ref:
            R.check(ref in secrets, f"{area}:{fname}", f"initdb secret {ref} is not defined in deploy/postgres")
    R.check((repo / "deploy/postgres/README.md").exists(), area, "README.md (the note) missing")


def check_dev_database_url(repo: Path, rendered: Path) -> None:
    """The dev Secret's URL must match the dev cluster's service and bootstrap password."""
    dev_docs = {(d.get("kind"), d["metadata"]["name"]): d for d in load_yaml_docs(rendered) if d.get("metadata")}
    secret = next((d for (k, n), d in dev_docs.items() if k == "Secret" and n.startswith("redress-secrets")), None)
    cred = next((d for d in load_yaml_docs(repo / "deploy/postgres/cluster-dev.yaml") if d.get("kind") == "Secret"), None)
    if secret is None or cred is None:
        R.error("k8s:dev", "cannot compare the dev database URL with deploy/postgres/cluster-dev.yaml")
        return
    import base64
    url = base64.b64decode(secret["data"]["REDRESS_DATABASE_URL"]).decode()
    want = f"postgres://{cred['stringData']['username']}:{cred['stringData']['password']}@redress-pg-rw:5432/redress"
    R.check(url == want, "k8s:dev", f"REDRESS_DATABASE_URL {url!r} does not match the dev cluster ({want!r})")


def check_docs(repo: Path) -> None:
    adrs = sorted((repo / "docs/adr").glob("[0-9][0-9][0-9][0-9]-*.md"))
    R.check(len(adrs) >= 7, "adr", f"expected at least 7 ADRs, found {len(adrs)}")
    for i, path in enumerate(adrs, start=1):
        R.check(path.name.startswith(f"{i:04d}-"), "adr", f"{path.name}: ADR numbers must run 0001, 0002, ... without gaps")
        text = path.read_text()
        for section in ["## Context", "## Decision", "## Consequences"]:
            R.check(section in text, "adr", f"{path.name} lacks a `{section}` section")
        R.check(re.search(r"^Status:", text, re.M) is not None, "adr", f"{path.name} lacks a `Status:` line")
    readme = repo / "deploy/README.md"
    if R.check(readme.exists(), "deploy/README.md", "missing"):
        R.check("kubectl apply -k deploy/k8s/overlays/prod" in readme.read_text(), "deploy/README.md",
                "must show `kubectl apply -k deploy/k8s/overlays/prod`")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, default=Path("."))
    ap.add_argument("--rendered", action="append", default=[], metavar="NAME=FILE",
                    help="kustomize output of base, dev or prod")
    args = ap.parse_args()
    repo = args.repo.resolve()

    check_dockerfile(repo)
    check_compose(repo)
    check_policy_text("policy.toml", (repo / "deploy/k8s/base/policy/policy.toml").read_text(), repo)
    rendered = dict(item.split("=", 1) for item in args.rendered)
    for name in ["base", "dev", "prod"]:
        if R.check(name in rendered, "k8s", f"no rendered output for {name}"):
            check_k8s(name, Path(rendered[name]), repo)
    if "dev" in rendered:
        check_dev_database_url(repo, Path(rendered["dev"]))
    check_helm(repo)
    check_liveness_probes(repo)
    check_sample_organisation(repo)
    check_postgres(repo)
    check_docs(repo)

    for e in R.errors:
        print(f"ERROR {e}")
    print(f"cross-file checks: {R.checked - len(R.errors)} passed, {len(R.errors)} failed")
    return 1 if R.errors else 0


if __name__ == "__main__":
    sys.exit(main())
