"""Turns a bench run's records into bench/results/<date>[-label].{json,md} and a table.

Arguments: records tenants scale per clients duration [label [cluster]]; a label
(e.g. citus) names the files, the cluster line says what was measured on.
BENCH_NOTE (env), when set, is written under it (e.g. what else ran meanwhile).
"""
import datetime
import json
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


def ratio(a, b):
    return round(a / b, 3) if b else None


def met(a, b, target):
    """Whether a row meets its target: ratios when there is a database figure, else the value."""
    if not target[0] in "<>":
        return ""
    op, bound = target.split()
    value = ratio(a, b) if b is not None else a
    if value is None:
        return "no"
    return "yes" if (value >= float(bound) if op == ">=" else value <= float(bound)) else "no"


mem = r["memory"]
touched = max(mem["tenants_after"] - mem["tenants_before"], 1)
bytes_per_tenant = (mem["rss_after_kb"] - mem["rss_before_kb"]) * 1024 / touched
def rows_per_second(key):
    return round(r[key]["rows"] / r[key]["seconds"]) if r[key]["seconds"] else 0


pause = r["paced_purge"]["batch_pause"]


def backend_writes(key):
    """Buffers written out by backends (not the bgwriter/checkpointer) during the purge."""
    run = r[key]
    if "buffers_before" not in run:
        return None
    return run["buffers_after"]["backend"] - run["buffers_before"]["backend"]
rows = [
    ("1 read: service req/s vs pgbench simple", r["read_service"]["rps"], r["read_pgbench_simple"]["tps"], ">= 0.8"),
    ("1 read: service req/s vs pgbench prepared", r["read_service"]["rps"], r["read_pgbench_prepared"]["tps"], "(info)"),
    ("1 read: service p99 ms", r["read_service"]["p99_ms"], None, "<= 10"),
    ("2 write: service req/s vs pgbench simple", r["write_service"]["rps"], r["write_pgbench_simple"]["tps"], ">= 0.6"),
    ("2 write: service req/s vs pgbench prepared", r["write_service"]["rps"], r["write_pgbench_prepared"]["tps"], "(info)"),
    (f"3 read at {scale} tenants vs at {tenants}", r["read_service_scaled"]["rps"], r["read_service"]["rps"], ">= 0.9"),
    (f"3 (info) pgbench simple at {scale} tenants vs at {tenants}", r["read_pgbench_simple_scaled"]["tps"], r["read_pgbench_simple"]["tps"], "(info)"),
    (f"3 (info) service vs pgbench simple at {scale} tenants", r["read_service_scaled"]["rps"], r["read_pgbench_simple_scaled"]["tps"], "(info)"),
    ("3 RSS bytes per touched tenant", round(bytes_per_tenant), None, "<= 2048"),
    ("4 RLS on vs off (pgbench simple, same SQL)", r["read_pgbench_simple"]["tps"], r["read_pgbench_rls_off"]["tps"], ">= 0.95"),
    ("4 RLS on vs off (pgbench prepared, same SQL)", r["read_pgbench_prepared"]["tps"], r["read_pgbench_rls_off_prepared"]["tps"], ">= 0.95"),
    ("5 purge rows/s", rows_per_second("purge"), None, ">= 50000"),
    ("5 read p99 during purge vs without (ms)", r["read_during_purge"]["p99_ms"], r["read_before_purge"]["p99_ms"], "<= 2.0"),
    (f"5 paced purge (batch_pause {pause}) rows/s", rows_per_second("paced_purge"), None, ">= 50000"),
    ("5 (info) buffers written by backends during the purge", backend_writes("purge"), None, "(info)"),
    ("5 (info) buffers written by backends during the paced purge", backend_writes("paced_purge"), None, "(info)"),
    (f"5 read p99 during paced purge vs without (ms)", r["read_during_paced_purge"]["p99_ms"], r["read_before_paced_purge"]["p99_ms"], "<= 2.0"),
]
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
    "non2xx": {k: v.get("non2xx", 0) for k, v in r.items() if isinstance(v, dict) and "non2xx" in v},
}
(out / f"{stamp}.json").write_text(json.dumps(summary, indent=2) + "\n")
lines = [
    f"# Bench {summary['when']}" + (f" ({label})" if label else ""),
    "",
    f"{summary['machine']}; {tenants} tenants x {per} instances (and {scale} for scenario 3); {clients} connections; {duration} s per run.",
    "",
    *([cluster, ""] if cluster else []),
    *([note, ""] if note else []),
    "| scenario | service | database | ratio | target | met |",
    "|---|---|---|---|---|---|",
]
for s, a, b, t in rows:
    lines.append(f"| {s} | {a} | {'' if b is None else b} | {'' if b is None else ratio(a, b)} | {t} | {met(a, b, t)} |")
lines += ["", f"Non-2xx responses: {summary['non2xx']}", ""]
missed = [s for s, a, b, t in rows if met(a, b, t) == "no"]
if missed:
    lines += ["## Missed targets", "", *[f"- {s}" for s in missed], ""]
    notes = pathlib.Path("bench/NOTES.md")
    if notes.exists():
        lines += ["What remains and why (bench/NOTES.md):", "", notes.read_text().strip(), ""]
(out / f"{stamp}.md").write_text("\n".join(lines))
print("\n".join(lines))
print(f"written: bench/results/{stamp}.md and .json")
