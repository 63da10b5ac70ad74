"""Turns a bench run's records into bench/results/<date>[-label].{json,md} and a table.

Arguments: records tenants scale per clients duration [label [cluster]]; a label
(e.g. citus) names the files, the cluster line says what was measured on.
BENCH_NOTE (env), when set, is written under it (e.g. what else ran meanwhile).
"""
import datetime
import json
import re
import os
import pathlib
import platform
import sys

records_file, tenants, scale, per, clients, duration, *mode = sys.argv[1:]
label, cluster = (mode + ["", ""])[:2]
note = os.environ.get("BENCH_NOTE", "")
r = {}
for line in pathlib.Path(records_file).read_text().splitlines():
    item = json.loads(line)
    r[item["key"]] = item["value"]


def met(a, b, target):
    """Whether a row meets its target: ratios when there is a database figure, else the value."""
    if not target[0] in "<>":
        return ""
    op, bound = target.split()
    value = ratio(a, b) if b is not None else a
    if value is None:
        return "no"
    return "yes" if (value >= float(bound) if op == ">=" else value <= float(bound)) else "no"


class Missing(dict):
    """A scenario this run skipped (BENCH_METRICS_ONLY=1): every figure None."""

    def __getitem__(self, key):
        return None


def get(key):
    return r[key] if key in r else Missing()


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


partial = "memory" not in r
if partial:
    # A partial run: the rows of the scenarios it skipped are left out.
    r.setdefault("memory", {"rss_before_kb": 0, "rss_after_kb": 0, "tenants_before": 0, "tenants_after": 0})
    for key in ("purge", "idle_purge", "tuned_purge", "paced_purge"):
        r.setdefault(key, {"rows": None, "seconds": 0, "settings": "-"})
mem = r["memory"]
touched = max(mem["tenants_after"] - mem["tenants_before"], 1)
bytes_per_tenant = None if partial else (mem["rss_after_kb"] - mem["rss_before_kb"]) * 1024 / touched
def rows_per_second(key):
    run = r.get(key, {})
    return round(run["rows"] / run["seconds"]) if run.get("seconds") and run.get("rows") is not None else None


# The fixed-pace purge is optional (BENCH_PURGE_FIXED=0); before #18 it was
# keyed by its batch_pause alone.
fixed = r.get("paced_purge", {"settings": "-"})
pause = fixed.get("settings", fixed.get("batch_pause", "-"))
tuned = r.get("tuned_purge", {}).get("settings", "-").replace("TENANTRY__RETENTION__TARGET_BATCH_LATENCY=", "target_batch_latency = ")
adaptive = get("purge_binary")["adaptive"]
sweeper = "adaptive sweeper" if adaptive else "sweeper defaults, binary without adaptive pacing"


def backend_writes(key):
    """Buffers written out by backends (not the bgwriter/checkpointer) during the purge."""
    run = r.get(key, {})
    if "buffers_before" not in run or "backend" not in run.get("buffers_after", {}):
        return None
    return run["buffers_after"]["backend"] - run["buffers_before"]["backend"]
def backend_writes_per_second(key):
    written, run = backend_writes(key), r.get(key, {})
    return round(written / run["seconds"]) if written is not None and run.get("seconds") else None


def reads_alone_writes(key):
    """Backend writes per second over the reads right before the purge (no purge running)."""
    run = r.get(f"buffers_read_before_{key}")
    if not run or "backend" not in run.get("after", {}):
        return None
    return round((run["after"]["backend"] - run["before"]["backend"]) / max(run["seconds"], 1))


def control_p99(key):
    """The read p99 without the purge: the mean of the controls around it (reads
    measured as beside it, beside a sleep); a run without controls, the plain
    run before it."""
    p99s = [get(f"read_during_control_{when}_{key}")["p99_ms"] for when in ("before", "after")]
    p99s = [p for p in p99s if p is not None]
    return round(sum(p99s) / len(p99s), 3) if p99s else get(f"read_before_{key}")["p99_ms"]


rows = [
    ("1 read: service req/s vs pgbench simple", get("read_service")["rps"], get("read_pgbench_simple")["tps"], ">= 1.3"),
    ("1 read: service req/s vs pgbench prepared", get("read_service")["rps"], get("read_pgbench_prepared")["tps"], ">= 0.8"),
    ("1 read: service req/s vs pgbench prepared pipelined (the new limit)", get("read_service")["rps"], get("read_pgbench_pipeline")["tps"], "(info)"),
    (f"1 read: service p99 vs pgbench prepared p99 at {clients} connections (ms)", get("read_service")["p99_ms"], get("read_pgbench_prepared")["p99_ms"], "<= 1.5"),
    ("1 (info) read p99: pgbench simple (ms)", get("read_pgbench_simple")["p99_ms"], None, "(info)"),
    ("1 (info) read p99: pgbench prepared pipelined (ms)", get("read_pgbench_pipeline")["p99_ms"], None, "(info)"),
    ("2 write: service req/s vs pgbench prepared", get("write_service")["rps"], get("write_pgbench_prepared")["tps"], ">= 0.8"),
    ("2 write: service req/s vs pgbench simple", get("write_service")["rps"], get("write_pgbench_simple")["tps"], "(info)"),
    ("2 write: service req/s vs pgbench prepared pipelined (the new limit)", get("write_service")["rps"], get("write_pgbench_pipeline")["tps"], "(info)"),
    (f"2 (info) write: service p99 vs pgbench prepared p99 (ms)", get("write_service")["p99_ms"], get("write_pgbench_prepared")["p99_ms"], "(info)"),
    (f"3 read at {scale} tenants vs at {tenants}", get("read_service_scaled")["rps"], get("read_service")["rps"], ">= 0.9"),
    (f"3 (info) pgbench simple at {scale} tenants vs at {tenants}", get("read_pgbench_simple_scaled")["tps"], get("read_pgbench_simple")["tps"], "(info)"),
    (f"3 (info) service vs pgbench simple at {scale} tenants", get("read_service_scaled")["rps"], get("read_pgbench_simple_scaled")["tps"], "(info)"),
    (f"3 (info) as loaded, before VACUUM: read at {scale} tenants vs at {tenants}", get("read_service_scaled_fresh")["rps"], get("read_service")["rps"], "(info)"),
    (f"3 (info) as loaded, before VACUUM: pgbench simple at {scale} tenants vs at {tenants}", get("read_pgbench_simple_scaled_fresh")["tps"], get("read_pgbench_simple")["tps"], "(info)"),
    ("3 RSS bytes per touched tenant", None if bytes_per_tenant is None else round(bytes_per_tenant), None, "<= 2048"),
    ("4 RLS on vs off (pgbench simple, same SQL)", get("read_pgbench_simple")["tps"], get("read_pgbench_rls_off")["tps"], ">= 0.95"),
    ("4 RLS on vs off (pgbench prepared, same SQL)", get("read_pgbench_prepared")["tps"], get("read_pgbench_rls_off_prepared")["tps"], ">= 0.95"),
    (f"5 read p99 during the purge vs without: the controls ({sweeper}, ms)", get("read_during_purge")["p99_ms"], control_p99("purge"), "<= 1.5"),
    ("5 (info) read p99 during the purge vs a plain run right before it, as before #18 (ms)", get("read_during_purge")["p99_ms"], get("read_before_purge")["p99_ms"], "(info)"),
    ("5 (info) read p99 of the controls before and after the purge (ms)", get("read_during_control_before_purge")["p99_ms"], get("read_during_control_after_purge")["p99_ms"], "(info)"),
    (f"5 purge rows/s while reads run ({sweeper})", rows_per_second("purge"), None, ">= 20000"),
    (f"5 purge rows/s idle, no traffic ({sweeper})", rows_per_second("idle_purge"), None, ">= 50000"),
    ("5 (info) buffers written by backends during the purge", backend_writes("purge"), None, "(info)"),
    ("5 (info) buffers written by backends per second, reads alone before it", reads_alone_writes("purge"), None, "(info)"),
    ("5 (info) buffers written by backends per second during the purge", backend_writes_per_second("purge"), None, "(info)"),
    (f"5 (info) purge with {tuned} rows/s while reads run", rows_per_second("tuned_purge"), None, "(info)"),
    (f"5 (info) read p99 during the purge with {tuned} vs its controls (ms)", get("read_during_tuned_purge")["p99_ms"], control_p99("tuned_purge"), "(info)"),
    (f"5 (info) fixed-pace purge ({pause}) rows/s while reads run", rows_per_second("paced_purge"), None, "(info)"),
    (f"5 (info) read p99 during the fixed-pace purge vs its controls (ms)", get("read_during_paced_purge")["p99_ms"], control_p99("paced_purge"), "(info)"),
    ("5 (info) buffers written by backends during the fixed-pace purge", backend_writes("paced_purge"), None, "(info)"),
    ("6 read: per-tenant metrics on vs off (req/s)", get("read_metrics_on")["rps"], get("read_metrics_off")["rps"], ">= 0.95"),
    ("6 (info) tenant values in tenantry_http_requests_total (<= 52)", get("metrics_series")["tenant_values"], None, "<= 52"),
]
# Rows of scenarios this run skipped.
rows = [row for row in rows if row[1] is not None]
now = datetime.datetime.now(datetime.timezone.utc)
stamp = now.strftime("%Y-%m-%d-%H%M") + (f"-{label}" if label else "")
out = pathlib.Path("bench/results")
out.mkdir(parents=True, exist_ok=True)
summary = {
    "when": now.isoformat(timespec="seconds"),
    "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
    **({"cluster": cluster} if cluster else {}),
    **({"note": note} if note else {}),
    "setup": {"tenants": int(tenants), "scale_tenants": int(scale), "instances_per_tenant": int(per), "clients": int(clients), "seconds_per_run": int(duration)},
    "raw": r,
    "table": [{"scenario": s, "service": a, "database": b, "ratio": ratio(a, b) if b is not None else None, "target": t, "met": met(a, b, t)} for s, a, b, t in rows],
    # A run in rounds is listed once, its errors summed over the rounds.
    "non2xx": {k: v.get("non2xx", 0) for k, v in r.items() if isinstance(v, dict) and "non2xx" in v and not re.search(r"_r[0-9]$", k)},
}
(out / f"{stamp}.json").write_text(json.dumps(summary, indent=2) + "\n")
lines = [
    f"# Bench {summary['when']}" + (f" ({label})" if label else ""),
    "",
    f"{summary['machine']}; {tenants} tenants x {per} instances (and {scale} for scenarios 3 and 5); {clients} connections; {duration} s per run. "
    "Latency percentiles are exact: wrk --latency for the service, pgbench's per-transaction log (--log) for pgbench. "
    "The pipelined pgbench runs the same script inside `\\startpipeline`/`\\endpipeline` (-M prepared): one round trip per transaction.",
    "",
    *([cluster, ""] if cluster else []),
    *([note, ""] if note else []),
    "| scenario | service | database | ratio | target | met |",
    "|---|---|---|---|---|---|",
]
for s, a, b, t in rows:
    lines.append(f"| {s} | {a} | {'' if b is None else b} | {'' if b is None else ratio(a, b)} | {t} | {met(a, b, t)} |")
lines += ["", f"Non-2xx responses: {summary['non2xx']}", ""]


def per_round(a, fa, b, fb):
    """The ratio a/b round by round (scenarios 1 and 2 record their rounds)."""
    ra, rb = get(a).get("rounds") or [], get(b).get("rounds") or []
    return [ratio(x[fa], y[fb]) for x, y in zip(ra, rb)]


if get("read_service").get("rounds"):
    lines += [
        f"Scenarios 1 and 2 and scenario 3's settled reads ran in {len(get('read_service')['rounds'])} interleaved rounds; each of their figures above is the median of its rounds. Round by round:",
        "",
        f"- reads vs pgbench prepared: {per_round('read_service', 'rps', 'read_pgbench_prepared', 'tps')}",
        f"- reads vs pgbench simple: {per_round('read_service', 'rps', 'read_pgbench_simple', 'tps')}",
        f"- read p99 vs pgbench prepared p99: {per_round('read_service', 'p99_ms', 'read_pgbench_prepared', 'p99_ms')}",
        f"- writes vs pgbench prepared: {per_round('write_service', 'rps', 'write_pgbench_prepared', 'tps')}",
        f"- service vs pgbench simple at {scale} tenants: {per_round('read_service_scaled', 'rps', 'read_pgbench_simple_scaled', 'tps')}",
        f"- service reads/s: {[x['rps'] for x in get('read_service')['rounds']]}; pgbench prepared tx/s: {[x['tps'] for x in get('read_pgbench_prepared')['rounds']]}",
        f"- service reads/s at {scale} tenants: {[x['rps'] for x in get('read_service_scaled').get('rounds') or []]}; pgbench simple tx/s: {[x['tps'] for x in get('read_pgbench_simple_scaled').get('rounds') or []]}",
        f"- service writes/s: {[x['rps'] for x in get('write_service').get('rounds') or []]}; pgbench prepared tx/s: {[x['tps'] for x in get('write_pgbench_prepared').get('rounds') or []]}",
        "",
    ]
av = {k: r[f"autovacuum_{k}"] for k in ("scaled_fresh", "scaled") if f"autovacuum_{k}" in r}
if av:
    # Scenario 3's reads as loaded and after VACUUM: what autovacuum was
    # doing at the start and end of each (workers, tables, runs finished).
    lines += [f"Autovacuum at the start and end of scenario 3's reads: {json.dumps(av)}", ""]
paced = {k: r[k]["pacing"] for k in ("purge", "idle_purge", "tuned_purge", "paced_purge") if r.get(k, {}).get("pacing")}
if paced:
    lines += ["How each purge paced itself (the sweep report's `pacing`):", ""]
    lines += [f"- {k}: {json.dumps(v)}" for k, v in paced.items()]
    lines += [""]


def waits_section(key):
    """The readers' time in the control before the purge, during it and in the
    control after it (bench/sampler.py)."""
    runs = {
        "before": r.get(f"waits_during_control_before_{key}"),
        "during": r.get(f"waits_during_{key}"),
        "after": r.get(f"waits_during_control_after_{key}"),
    }
    runs = {k: v for k, v in runs.items() if v}
    if "before" not in runs or "during" not in runs:
        return []
    cols = list(runs)
    wrk_keys = {"before": f"read_during_control_before_{key}", "during": f"read_during_{key}", "after": f"read_during_control_after_{key}"}
    # Requests the service answered within the sampled span (its own
    # histogram); from a sampler without that, wrk's whole run.
    reqs = {k: (run.get("served") or [None])[0] or get(wrk_keys[k])["requests"] for k, run in runs.items()}
    head = "| " + " | ".join(cols) + " |"
    rule = "|---|" + "---|" * len(cols)
    out = [
        f"Where the readers' time went around the `{key}` (bench/sampler.py: "
        + ", ".join(f"{runs[k]['samples']} samples {k}" for k in cols)
        + " of pg_stat_activity; /proc schedstat; per request: over the requests the service answered in each sampled span):",
        "",
        f"| share of samples {head}",
        rule,
    ]

    def shares(run, who):
        counts = run["waits"].get(who, {})
        total = sum(counts.values()) or 1
        return {k: v / total for k, v in counts.items()}

    for who in ("readers", "sweep"):
        sh = {k: shares(run, who) for k, run in runs.items()}
        states = set().union(*sh.values())
        for state in sorted(states, key=lambda st: -sum(v.get(st, 0) for v in sh.values())):
            if max(v.get(state, 0) for v in sh.values()) >= 0.005:
                out.append(f"| {who}: {state} | " + " | ".join(f"{sh[k].get(state, 0):.1%}" for k in cols) + " |")
    out.append("| autovacuum workers (mean present) | " + " | ".join(f"{sum(runs[k]['waits'].get('autovacuum', {}).values()) / max(runs[k]['samples'], 1):.2f}" for k in cols) + " |")
    out += ["", f"| per read request (µs) {head}", rule]
    for who, label in (("readers", "readers' backends"), ("service", "the service's threads"), ("sweep", "the sweep's backend"), ("sweep_process", "the sweep process")):
        for field, what in (("cpu_ms", "on a CPU"), ("runqueue_ms", "runnable, waiting for a CPU")):
            vals = [runs[k]["sched"].get(who, {}).get(field, 0) * 1000 / max(reqs[k] or 0, 1) for k in cols]
            out.append(f"| {label}: {what} | " + " | ".join(f"{v:.0f}" for v in vals) + " |")
    if "cpu_share" in runs["during"]:
        out += ["", f"| the machine {head}", rule]
        for kind in ("user", "system", "softirq", "iowait", "steal", "idle"):
            out.append(f"| CPU time: {kind} | " + " | ".join(f"{runs[k]['cpu_share'].get(kind, 0):.1%}" for k in cols) + " |")
        for kind in ("cpu", "io"):
            if kind in runs["during"].get("stalled_share", {}):
                out.append(f"| some task stalled on {kind} (PSI) | " + " | ".join(f"{runs[k].get('stalled_share', {}).get(kind, 0):.1%}" for k in cols) + " |")
        out.append("| tasks runnable (mean of samples) | " + " | ".join(str(runs[k]["runnable_mean"]) for k in cols) + " |")
    per_second = runs["during"].get("per_second") or []
    if per_second:
        # Seconds in which the sweep's backend was running a statement in
        # at least half of the samples, against the others.
        busy = [s for s in per_second if s[4] * 2 >= s[5]]
        quiet = [s for s in per_second if s[4] * 2 < s[5]]

        def slow(group, column):
            n = sum(s[1] for s in group)
            return f"{sum(s[column] for s in group) / n:.2%} of {n}" if n else "-"

        out += [
            "",
            "| requests over 50 ms (over 100 ms), by second | share |",
            "|---|---|",
            f"| the purge: seconds with the sweep's backend busy ({len(busy)}) | {slow(busy, 2)} ({slow(busy, 3)}) |",
            f"| the purge: seconds with it mostly idle ({len(quiet)}) | {slow(quiet, 2)} ({slow(quiet, 3)}) |",
        ]
        for k in ("before", "after"):
            if k in runs:
                ps = runs[k].get("per_second") or []
                out.append(f"| the control {k} it ({len(ps)} s) | {slow(ps, 2)} ({slow(ps, 3)}) |")
    if runs["during"].get("autovacuum_work"):
        out += ["", f"Autovacuum during it: {json.dumps(runs['during']['autovacuum_work'])}"]
    return out + [""]


for key in ("purge", "tuned_purge", "paced_purge"):
    lines += waits_section(key)
missed = [s for s, a, b, t in rows if met(a, b, t) == "no"]
if missed:
    lines += ["## Missed targets", "", *[f"- {s}" for s in missed], ""]
    notes = pathlib.Path("bench/NOTES.md")
    if notes.exists():
        lines += ["What remains and why (bench/NOTES.md):", "", notes.read_text().strip(), ""]
(out / f"{stamp}.md").write_text("\n".join(lines))
print("\n".join(lines))
print(f"written: bench/results/{stamp}.md and .json")
