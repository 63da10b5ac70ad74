# syntax=docker/dockerfile:1
# Tenantry's container image:  docker build -t tenantry .
#
# One binary, nothing else: the SQL migrations, the RLS policy files and
# config/default.toml are compiled into it (crates/db/build.rs,
# crates/tenantry/src/settings.rs), so the runtime stage holds the binary
# and a non-root user. How to run it (the migrate job, the service, the
# sweep job, the keys): README.md, "Deploy"; compose.yaml and
# deploy/kubernetes/ are worked examples. scripts/deploy-check.sh (make
# test) checks this file: hadolint, every COPY source in the build context,
# every file the build reads inside it, and the commands below run against
# a real database.
#
# No HEALTHCHECK: the image has no HTTP client, and orchestrators probe
# over HTTP themselves: GET /healthz (liveness: the process answers) and
# GET /readyz (readiness: the database answers and the schema is current)
# on port 8080, as deploy/kubernetes/deployment.yaml does.

ARG RUST_VERSION=1.95
ARG DEBIAN_SUITE=bookworm

# --- Builder ------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_SUITE} AS builder
WORKDIR /src
# The workspace: its manifests and lock file, every member (cargo refuses a
# workspace with one missing; tests/ is only parsed), and what build.rs and
# include_str! embed: sql/, policies/, config/default.toml.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY tests ./tests
COPY sql ./sql
COPY policies ./policies
COPY config/default.toml ./config/default.toml
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tenantry \
    && install -D -m 0755 target/release/tenantry /out/tenantry

# --- Runtime ------------------------------------------------------------------------
FROM debian:12-slim AS runtime
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it; the
# working directory is the only place it may write (development keys).
RUN groupadd --system --gid 10001 tenantry \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/tenantry --shell /usr/sbin/nologin tenantry \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/tenantry
COPY --from=builder /out/tenantry /usr/local/bin/tenantry
WORKDIR /var/lib/tenantry
# Production unless told otherwise: no key is ever generated, so a missing
# signing key, API-key secret or context key stops the process with a
# message (set TENANTRY__ENVIRONMENT=development to try it out; compose.yaml
# does, with the keys in a volume). Listen on every interface of the
# container; /metrics on a port of its own (publish only 8080).
ENV TENANTRY__ENVIRONMENT=production \
    TENANTRY__SERVER__HOST=0.0.0.0 \
    TENANTRY__SERVER__PORT=8080 \
    TENANTRY__METRICS__LISTEN=0.0.0.0:9464 \
    TENANTRY__LOG__FORMAT=json
EXPOSE 8080 9464
USER 10001:10001
# PID 1 is tenantry itself: it handles SIGTERM (graceful stop within
# server.shutdown_timeout) and starts no child processes.
ENTRYPOINT ["tenantry"]
CMD ["serve"]
