"""Where the readers' time goes while bench reads run (scenario 5).

Arguments: psql url out.json max_seconds service_pid metrics_url [interval_s (0.2)]

Every interval, over one psql connection (each sample its own transaction,
so a fresh view of pg_stat_activity), the state and wait event of every
client backend and autovacuum worker, tallied by who it is: the service's
readers (application_name "tenantry"), the sweep (application_name
"tenantry-bench-sweep", which bench.sh gives it) and autovacuum. A backend
that is active without a wait event is on a CPU or waiting for one.

From the kernel (/proc/<pid>/schedstat: time on a CPU and time runnable but
waiting for one), over the same span: the service's threads (scanned at the
start, once a second and at the end; a thread that exits keeps its last
reading from those scans, one born in the span counts from zero; a thread
that lives less than a second between two scans can be missed), the
readers' backends (those present at the first sample and at the last),
the sweep's backend (its last reading while it was seen) and the sweep
process's threads (counted as the service's, from zero: it starts after
the window does). The machine's CPU time by kind (/proc/stat),
the share of time some task stalled on CPU or IO (/proc/pressure) and the
mean count of runnable tasks (/proc/loadavg).

From the service's own latency histogram: the requests it answered over the
sampled span and how many took over 50 and 100 ms ("served", the
per-request figures' divisor), and the same each second, beside whether
the sweep's backend was running a statement in that second's samples.

Stops at SIGINT/SIGTERM or after max_seconds (a bounded count of samples)
and writes the tally to out.json.
"""
import collections
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

psql, url, out, max_seconds, service_pid, metrics_url, *rest = sys.argv[1:]
interval = float(rest[0]) if rest else 0.2
max_samples = max(1, int(float(max_seconds) / interval))
READERS, SWEEP = "tenantry", "tenantry-bench-sweep"

QUERY = """SELECT pid, backend_type, application_name, coalesce(state, ''),
       coalesce(wait_event_type || ':' || wait_event, ''), translate(coalesce(left(query, 60), ''), E'\\n\\t\\r', '   ')
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid()
   AND backend_type IN ('client backend', 'autovacuum worker');
\\echo __END__
"""

stop = False


def on_signal(*_):
    global stop
    stop = True


signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGTERM, on_signal)


def schedstat(pid):
    """(ns on a CPU, ns runnable and waiting) of one thread or process, or None when gone."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            on_cpu, waiting, _ = f.read().split()
        return int(on_cpu), int(waiting)
    except (OSError, ValueError):
        return None


def threads(pid):
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def cpu_times():
    """The machine's CPU time by kind (/proc/stat's first line, in ticks)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:9]
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, map(int, fields)))


def pressure(kind):
    """µs during which some task stalled on `kind` (/proc/pressure), or None."""
    try:
        with open(f"/proc/pressure/{kind}") as f:
            return int(f.readline().split("total=")[1])
    except (OSError, IndexError, ValueError):
        return None


def runnable():
    """Tasks runnable right now, machine-wide (/proc/loadavg's fourth field)."""
    with open("/proc/loadavg") as f:
        return int(f.read().split()[3].split("/")[0])


def sweep_process():
    """The `tenantry sweep` process's pid, when one runs."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if len(args) > 1 and args[0].endswith(b"tenantry") and args[1] == b"sweep":
                return entry
    return None


class Threads:
    """CPU and run-queue time of one process's threads over the window, threads
    that exit in it included (each keeps its last reading) and threads born in
    it counted from zero."""

    def __init__(self, pid, born=False):
        # born: the process started after the window did (the sweep), so
        # even its first scan counts from zero.
        self.pid, self.seen, self.scans = pid, {}, 1 if born else 0

    def scan(self):
        for t in threads(self.pid):
            s = schedstat(f"{self.pid}/task/{t}")
            if s:
                first = self.seen[t][0] if t in self.seen else (s if self.scans == 0 else (0, 0))
                self.seen[t] = [first, s]
        self.scans += 1

    def span(self):
        return span(
            [sum(v[0][0] for v in self.seen.values()), sum(v[0][1] for v in self.seen.values())],
            [sum(v[1][0] for v in self.seen.values()), sum(v[1][1] for v in self.seen.values())],
        )


def span(first, last):
    return {"cpu_ms": round((last[0] - first[0]) / 1e6, 1), "runqueue_ms": round((last[1] - first[1]) / 1e6, 1)}


def served():
    """(requests, of them over 50 ms, over 100 ms) the service has answered, from its own histogram."""
    try:
        text = urllib.request.urlopen(metrics_url, timeout=2).read().decode()
    except OSError:
        return None
    total = [0, 0, 0]
    for line in text.splitlines():
        if not line.startswith("tenantry_http_request_duration_seconds_"):
            continue
        name, value = line.rsplit(" ", 1)
        if name.startswith("tenantry_http_request_duration_seconds_count"):
            total[0] += float(value)
        elif 'le="0.05"' in name:
            total[1] += float(value)
        elif 'le="0.1"' in name:
            total[2] += float(value)
    return total[0], total[0] - total[1], total[0] - total[2]


conn = subprocess.Popen(
    [psql, url, "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1"],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    text=True,
)

tally = {"readers": collections.Counter(), "sweep": collections.Counter(), "autovacuum": collections.Counter()}
autovacuum_work = collections.Counter()
readers_first = {}
readers_last = {}
sweep_seen = {}
service = Threads(service_pid)
service.scan()
served_first = served()
cpu_first, pressure_first = cpu_times(), {k: pressure(k) for k in ("cpu", "io")}
sweeper = None
runnable_total = 0
# Each second: requests answered, of them over 50 and 100 ms, and in how
# many of its samples the sweep's backend was running a statement.
seconds, second = [], None
started = time.monotonic()
samples = 0
while samples < max_samples and not stop:
    t0 = time.monotonic()
    try:
        conn.stdin.write(QUERY)
        conn.stdin.flush()
    except OSError:
        break  # psql went away
    rows = []
    for line in conn.stdout:
        line = line.rstrip("\n")
        if line == "__END__":
            break
        fields = line.split("\t")
        if len(fields) == 6:
            rows.append(fields)
    else:
        break  # psql went away
    samples += 1
    runnable_total += runnable()
    if second is None or t0 - second["at"] >= 1.0:
        now = served()
        if second is not None and now is not None and second["served"] is not None:
            seconds.append(
                [round(second["at"] - started, 1), *(round(a - b) for a, b in zip(now, second["served"])),
                 second["sweep_active"], second["samples"]]
            )
        second = {"at": t0, "served": now, "sweep_active": 0, "samples": 0}
    second["samples"] += 1
    second["sweep_active"] += any(r[2] == SWEEP and r[3] == "active" for r in rows)
    # The same /proc scan once a second in every window (controls and
    # purges alike), whether or not a sweep was found already.
    if (samples - 1) % max(1, round(1 / interval)) == 0:
        found = sweep_process()
        if found is not None and (sweeper is None or sweeper.pid != found):
            sweeper = Threads(found, born=True)
        service.scan()
    if sweeper is not None:
        sweeper.scan()
    for pid, backend_type, app, state, wait, query in rows:
        if backend_type == "autovacuum worker":
            who = "autovacuum"
            autovacuum_work[query] += 1
        elif app == READERS:
            who = "readers"
            s = schedstat(pid)
            if s:
                if samples == 1:
                    readers_first[pid] = s
                readers_last[pid] = s
        elif app == SWEEP:
            who = "sweep"
            s = schedstat(pid)
            if s:
                sweep_seen.setdefault(pid, [s, s])[1] = s
        else:
            continue
        if who != "autovacuum" and state != "active":
            tally[who][state or "?"] += 1
        else:
            tally[who]["active, " + (wait or "no wait (CPU)")] += 1
    time.sleep(max(0.0, interval - (time.monotonic() - t0)))
elapsed = time.monotonic() - started
service.scan()
served_last = served()
cpu_last, pressure_last = cpu_times(), {k: pressure(k) for k in ("cpu", "io")}
ticks = sum(cpu_last.values()) - sum(cpu_first.values()) or 1
try:
    conn.stdin.close()
except OSError:
    pass
conn.wait(timeout=10)


both = [p for p in readers_first if p in readers_last]
readers_sched = span(
    [sum(readers_first[p][0] for p in both), sum(readers_first[p][1] for p in both)],
    [sum(readers_last[p][0] for p in both), sum(readers_last[p][1] for p in both)],
)
readers_sched["backends"] = len(both)
sweep_sched = span(
    [sum(v[0][0] for v in sweep_seen.values()), sum(v[0][1] for v in sweep_seen.values())],
    [sum(v[1][0] for v in sweep_seen.values()), sum(v[1][1] for v in sweep_seen.values())],
)
json.dump(
    {
        "samples": samples,
        "seconds": round(elapsed, 2),
        "waits": {k: dict(v.most_common()) for k, v in tally.items()},
        "autovacuum_work": dict(autovacuum_work.most_common(5)),
        "sched": {
            "service": service.span(),
            "readers": readers_sched,
            "sweep": sweep_sched,
            "sweep_process": sweeper.span() if sweeper else {"cpu_ms": 0.0, "runqueue_ms": 0.0},
        },
        "cpu_share": {k: round((cpu_last[k] - cpu_first[k]) / ticks, 4) for k in cpu_first},
        "stalled_share": {
            k: round((pressure_last[k] - pressure_first[k]) / 1e6 / elapsed, 4)
            for k in pressure_first
            if pressure_first[k] is not None and pressure_last[k] is not None
        },
        "runnable_mean": round(runnable_total / max(samples, 1), 2),
        # [requests, over 50 ms, over 100 ms] the service answered within
        # the sampled span (the per-request figures' divisor), or None.
        "served": [round(b - a) for a, b in zip(served_first, served_last)] if served_first and served_last else None,
        # [second, requests, over 50 ms, over 100 ms, samples with the sweep active, samples]
        "per_second": seconds,
    },
    open(out, "w"),
)
