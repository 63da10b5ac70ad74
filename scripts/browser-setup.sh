#!/usr/bin/env bash
# What the console's browser tests (tests/tests/it/console_browser.rs, driven
# by tests/src/browser.rs) need, installed when missing; run by
# scripts/test.sh before the tests (BROWSER=0 skips it).
#
# - Debian's chromium and chromium-driver (apt-get, as root), when
#   /usr/bin/chromedriver or /usr/bin/chromium is missing;
# - axe-core from npm, pinned by tests/browser/package-lock.json, installed
#   with `npm ci` into $CARGO_TARGET_DIR/browser-tests (again only when the
#   lock changes); node and npm themselves with apt-get when missing.
#
# Prints, on stdout, the environment the test binary reads, one
# `export NAME=value` line each (scripts/test.sh evals it):
#   TENANTRY_CHROMEDRIVER  the chromedriver binary
#   TENANTRY_CHROMIUM      the browser binary chromedriver starts
#   TENANTRY_AXE_JS        axe.min.js, injected into pages by Browser::axe()
#   TENANTRY_SCREENSHOTS   where Browser::screenshot(name) saves <name>.png
# Everything else goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
log() { echo "browser-setup: $*" >&2; }
die() {
    log "$*"
    exit 1
}

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
chromedriver=/usr/bin/chromedriver
chromium=/usr/bin/chromium
src="$root/tests/browser"
work="$CARGO_TARGET_DIR/browser-tests"
screenshots="$CARGO_TARGET_DIR/console-screenshots"

apt_install() {
    [[ $(id -u) -eq 0 ]] || die "$* needed: apt-get install -y $* (as root)"
    log "installing $* (apt-get)"
    # Quietly first; on a machine whose package lists are stale or absent,
    # update them once and try again (with output, so a failure is legible).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
        {
            apt-get update -qq >&2 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
        } || die "could not install $*"
}

# --- Chromium and its driver ------------------------------------------------------
if [[ ! -x "$chromedriver" || ! -x "$chromium" ]]; then
    apt_install chromium chromium-driver
fi
[[ -x "$chromedriver" ]] || die "$chromedriver is still missing after installing chromium-driver"
[[ -x "$chromium" ]] || die "$chromium is still missing after installing chromium"
log "$("$chromedriver" --version 2>/dev/null | head -1)"

# --- axe-core -----------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
axe="$work/node_modules/axe-core/axe.min.js"
if ! cmp -s "$src/package-lock.json" "$work/package-lock.json" 2>/dev/null || [[ ! -f "$axe" ]]; then
    log "installing axe-core into $work (npm ci)"
    rm -rf -- "${work:?}"
    mkdir -p "$work"
    cp "$src/package.json" "$src/package-lock.json" "$work/"
    npm ci --prefix "$work" --no-audit --no-fund --loglevel=error >&2
fi
[[ -f "$axe" ]] || die "npm ci did not install $axe"

mkdir -p "$screenshots"

printf 'export TENANTRY_CHROMEDRIVER=%q\n' "$chromedriver"
printf 'export TENANTRY_CHROMIUM=%q\n' "$chromium"
printf 'export TENANTRY_AXE_JS=%q\n' "$axe"
printf 'export TENANTRY_SCREENSHOTS=%q\n' "$screenshots"
