#!/usr/bin/env bash
# The TypeScript side of the API contract: generates types from the committed
# OpenAPI document (crates/client/openapi.json) with openapi-typescript and
# type-checks them, with a small caller (crates/client/ts/check.ts), with tsc.
# Run by scripts/test.sh after the Rust tests (TS_CLIENT=0 skips it); needs no
# database or server.
#
# openapi-typescript and typescript come from npm, every package pinned by
# crates/client/ts/package-lock.json, installed once into
# $CARGO_TARGET_DIR/ts-client (again when the lock changes). node and npm are
# installed with apt-get when missing (as root).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"
log() { echo "ts-client: $*" >&2; }
die() {
    log "$*"
    exit 1
}

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
src="$root/crates/client/ts"
document="$root/crates/client/openapi.json"
work="$CARGO_TARGET_DIR/ts-client"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    [[ $(id -u) -eq 0 ]] || die "node and npm are needed: apt-get install nodejs npm"
    log "installing node and npm (apt-get)"
    apt-get install -y -qq nodejs npm >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq nodejs npm >/dev/null; }
fi

if ! cmp -s "$src/package-lock.json" "$work/package-lock.json" 2>/dev/null ||
    [[ ! -x "$work/node_modules/.bin/tsc" ]]; then
    log "installing openapi-typescript and typescript into $work"
    rm -rf -- "${work:?}"
    mkdir -p "$work"
    cp "$src/package.json" "$src/package-lock.json" "$work/"
    (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
fi

cp "$src/check.ts" "$src/tsconfig.json" "$work/"
rm -f -- "$work/tenantry.d.ts"
"$work/node_modules/.bin/openapi-typescript" "$document" -o "$work/tenantry.d.ts"
"$work/node_modules/.bin/tsc" -p "$work/tsconfig.json"
log "generated $work/tenantry.d.ts from crates/client/openapi.json; it type-checks"
