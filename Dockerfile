# syntax=docker/dockerfile:1.7
#
# One Dockerfile for the five Redress services and the `redress` CLI.
#
#   docker build --build-arg SERVICE=redress-intake -t redress-intake:dev .
#
# SERVICE picks the binary the image runs (its ENTRYPOINT): redress-intake, redress-routing,
# redress-sla-monitor, redress-escalation, redress-revisit, redress-board, or redress (the CLI).
#
# Why one image per service (ARG SERVICE) rather than one image holding every binary with a
# `command:` per service: the services are deployed, versioned and rolled back separately
# (ARCHITECTURE.md: "five separately deployable services"), so each Deployment names its own
# image and tag, an image holds only the code it runs, and a vulnerability scan of one image
# reports only what that service ships. It costs nothing at build time: the builder stages
# below do not depend on SERVICE, so BuildKit builds the workspace once and every service
# image reuses that cached stage; only the small final stage differs.
#
# Every image also carries the `redress` CLI (for `kubectl exec` / `docker compose exec`
# operations) and grpc_health_probe (the compose health check; Kubernetes uses its built-in
# gRPC probes instead).

ARG RUST_IMAGE=rust:1.95.0-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
# chef: the Rust toolchain plus cargo-chef, which splits "build the dependencies" (slow, rarely
# changes) from "build our crates" (fast, changes every commit) into separate cached layers.
FROM ${RUST_IMAGE} AS chef
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

# planner: reduces the workspace to its manifests and Cargo.lock (recipe.json). The recipe only
# changes when a dependency or a manifest changes, so the `cook` layer below stays cached
# across ordinary source edits.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# builder: compile the dependencies from the recipe, then the workspace itself.
FROM chef AS builder
# The sqlx `query!` macros (if any crate uses them) must not look for a database at build
# time; migrations are embedded from each crate's `migrations/` directory by `sqlx::migrate!`.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0
COPY --from=planner /src/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo chef cook --release --locked --workspace --recipe-path recipe.json
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked --workspace --bins \
 && mkdir -p /out \
 && for bin in redress redress-intake redress-routing redress-sla-monitor redress-escalation redress-revisit redress-board; do \
        cp "target/release/${bin}" /out/ || exit 1; \
    done

# ---------------------------------------------------------------------------------------------
# probe: fetches grpc_health_probe, a static binary, so the runtime image needs no curl.
FROM ${RUNTIME_IMAGE} AS probe
ARG GRPC_HEALTH_PROBE_VERSION=v0.4.38
# Optional: the SHA-256 of the release asset for this architecture; verified when given.
ARG GRPC_HEALTH_PROBE_SHA256=""
# Set by BuildKit (amd64, arm64), matching the release asset names.
ARG TARGETARCH=amd64
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && curl -fsSL -o /grpc_health_probe \
      "https://github.com/grpc-ecosystem/grpc-health-probe/releases/download/${GRPC_HEALTH_PROBE_VERSION}/grpc_health_probe-linux-${TARGETARCH}" \
 && if [ -n "${GRPC_HEALTH_PROBE_SHA256}" ]; then echo "${GRPC_HEALTH_PROBE_SHA256}  /grpc_health_probe" | sha256sum -c -; fi \
 && chmod 0755 /grpc_health_probe

# ---------------------------------------------------------------------------------------------
# runtime: Debian slim with CA certificates, a fixed non-root user, one service binary.
FROM ${RUNTIME_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# This layer does not depend on SERVICE, so it is shared by all six images.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 redress \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin redress \
 && mkdir -p /etc/redress
COPY --from=probe /grpc_health_probe /usr/local/bin/grpc_health_probe
COPY --from=builder /out/redress /usr/local/bin/redress

ARG SERVICE=redress-intake
RUN case "${SERVICE}" in \
      redress|redress-intake|redress-routing|redress-sla-monitor|redress-escalation|redress-revisit|redress-board) ;; \
      *) echo "unknown SERVICE '${SERVICE}': use redress-intake, redress-routing, redress-sla-monitor, redress-escalation, redress-revisit, redress-board or redress" >&2; exit 1 ;; \
    esac
COPY --from=builder /out/${SERVICE} /usr/local/bin/${SERVICE}
# A fixed entrypoint name, since an exec-form ENTRYPOINT cannot expand ${SERVICE}.
RUN ln -sf "/usr/local/bin/${SERVICE}" /usr/local/bin/redress-service

LABEL org.opencontainers.image.title="${SERVICE}" \
      org.opencontainers.image.description="Redress complaint handling: ${SERVICE}" \
      org.opencontainers.image.licenses="Apache-2.0"

# Container defaults; the listen addresses (0.0.0.0:<port>) are per service and set by
# docker-compose.yml and the Kubernetes manifests.
ENV REDRESS_SERVICE=${SERVICE} \
    REDRESS_LOG_FORMAT=json \
    RUST_LOG=info

USER 10001:10001
ENTRYPOINT ["/usr/local/bin/redress-service"]
