#!/usr/bin/env bash
# Checks the deployment files (Dockerfile, .dockerignore, compose.yaml,
# deploy/kubernetes/), with scripts/deploy_check.py in a venv of its own
# (hadolint, kubernetes-validate, check-jsonschema and PyYAML from PyPI,
# pinned in scripts/deploy-check-requirements.txt). Run by scripts/test.sh
# (DEPLOY_CHECK=0 skips it); `make deploy-check` runs it alone.
#
# Static: hadolint; every COPY source exists and is in the build context;
# the builder's copy of the repository is a complete workspace with a
# current Cargo.lock, holding every file the binary's build reads (its
# dep-info and the build scripts' inputs); the runtime stage (non-root
# numeric USER, only the binary, production, 0.0.0.0, EXPOSE = the
# configured ports). compose.yaml against the Compose schema and its
# structure; the manifests with kubernetes-validate --strict (Kubernetes
# 1.29 and 1.37 schemas) and their cross-references (selectors, ports,
# probes, ConfigMap/Secret keys, non-root uid = the image's, resources).
# Every command the files run parses (`tenantry <command> --help`).
#
# Running, against the test cluster (PostgreSQL only; skipped on Citus):
# the image's default command with no keys refuses to start; the Job's,
# Deployment's and CronJob's commands with the environment the manifests
# give them (ConfigMap, Secrets as files at their mount paths) migrate a
# fresh database that deploy/compose/initdb.sh created, serve (probes,
# /metrics, an admin call with a `tenantry token --admin`, SIGTERM) and
# sweep once; the same for compose.yaml's services. Only the listening
# ports are replaced by free ones.
#
# Needs the environment scripts/test.sh exports (TENANTRY_TEST_*, TENANTRY_BIN).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"
log() { echo "deploy-check: $*" >&2; }
die() {
    log "$*"
    exit 1
}
: "${TENANTRY_BIN:?run through scripts/test.sh (make deploy-check)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
command -v openssl >/dev/null || die "openssl is needed (it makes the Ed25519 key, as secret.example.yaml says): apt-get install openssl"

venv="$CARGO_TARGET_DIR/deploy-check-venv"
requirements="$root/scripts/deploy-check-requirements.txt"
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
    log "installing hadolint, kubernetes-validate, check-jsonschema into $venv"
    rm -rf -- "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        [[ $(id -u) -eq 0 ]] || die "python3 -m venv failed: apt-get install python3-venv"
        apt-get install -y -qq python3-venv >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null && apt-get install -y -qq python3-venv >/dev/null; }
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi

HADOLINT="$venv/bin/hadolint" KUBERNETES_VALIDATE="$venv/bin/kubernetes-validate" \
    CHECK_JSONSCHEMA="$venv/bin/check-jsonschema" \
    "$venv/bin/python" "$root/scripts/deploy_check.py"
