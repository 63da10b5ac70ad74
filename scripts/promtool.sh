#!/usr/bin/env bash
# The Prometheus alert rules (deploy/prometheus/) checked with promtool.
#
#   scripts/promtool.sh           installs promtool when missing, then
#                                 `promtool check rules deploy/prometheus/alerts.yml`
#                                 and `promtool test rules deploy/prometheus/*.test.yml`
#   scripts/promtool.sh install   only installs it when missing and prints, on stdout,
#                                 `export TENANTRY_PROMTOOL=<path>` (scripts/test.sh evals
#                                 it: the dashboard's PromQL test, tests/tests/it/dashboard.rs,
#                                 runs that promtool)
#
# promtool comes from Debian's `prometheus` package (/usr/bin/promtool),
# installed with apt-get as root, quietly, without recommends (no node
# exporter), and WITHOUT starting or enabling the Prometheus server the
# package also ships: its postinst starts the service through invoke-rc.d /
# deb-systemd-invoke, which a policy-rc.d answering 101 ("action forbidden")
# stops for the length of the install (an existing policy-rc.d is put back
# afterwards); the boot-time enablement the postinst writes (update-rc.d
# defaults, deb-systemd-helper enable) is undone right after. Set
# PROMTOOL_BIN to use another promtool instead (nothing is installed then).
#
# scripts/test.sh runs both steps (PROMTOOL=0 skips them); `make deploy-check` too.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"
log() { echo "promtool.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

policy=/usr/sbin/policy-rc.d

# Put back the policy-rc.d that was there before (or remove ours).
# shellcheck disable=SC2317 # invoked via trap
restore_policy() {
    if [[ -n "${policy_backup:-}" ]]; then
        if [[ -f "$policy_backup" ]]; then
            mv -f -- "$policy_backup" "$policy"
        else
            rm -f -- "$policy"
        fi
        policy_backup=""
    fi
}

install_promtool() {
    [[ $(id -u) -eq 0 ]] ||
        die "promtool is missing: apt-get install --no-install-recommends prometheus (as root; then 'systemctl disable --now prometheus' if you only want promtool), or set PROMTOOL_BIN"
    log "installing promtool (Debian's prometheus package, apt-get; its service is neither started nor enabled)"
    policy_backup=$(mktemp /tmp/policy-rc.d.XXXXXX)
    if [[ -f "$policy" ]]; then
        cp -p -- "$policy" "$policy_backup"
    else
        rm -f -- "$policy_backup"
    fi
    trap restore_policy EXIT
    printf '#!/bin/sh\n# scripts/promtool.sh: no service starts while it installs promtool\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    local apt=(apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold prometheus)
    # Quietly first; with stale or absent package lists, update them once and
    # try again with output, so that a failure is legible.
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null 2>&1 ||
        {
            apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2
        } || die "could not install the prometheus package"
    restore_policy
    trap - EXIT
    # Not at boot either: undo what the postinst enabled.
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        systemctl disable --now --quiet prometheus.service >&2 || log "warning: could not disable prometheus.service"
    elif command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
    fi
    if [[ -x /etc/init.d/prometheus ]] && command -v update-rc.d >/dev/null; then
        update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
}

promtool=${PROMTOOL_BIN:-}
if [[ -z "$promtool" ]]; then
    promtool=/usr/bin/promtool
    [[ -x "$promtool" ]] || install_promtool
fi
[[ -x "$promtool" ]] || die "$promtool is missing"
log "$("$promtool" --version 2>&1 | head -1)"

case "${1:-check}" in
install)
    printf 'export TENANTRY_PROMTOOL=%q\n' "$promtool"
    ;;
check)
    rc=0
    log "promtool check rules deploy/prometheus/alerts.yml"
    "$promtool" check rules deploy/prometheus/alerts.yml || rc=1
    shopt -s nullglob
    tests=(deploy/prometheus/*.test.yml)
    ((${#tests[@]})) || die "no deploy/prometheus/*.test.yml"
    log "promtool test rules ${tests[*]}"
    "$promtool" test rules "${tests[@]}" || rc=1
    exit "$rc"
    ;;
*)
    die "usage: scripts/promtool.sh [check|install]"
    ;;
esac
