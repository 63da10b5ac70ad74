"""scripts/profile.sh's analysis: perf samples -> folded stacks -> categories.

  profile.py fold SERVICE_PID < `perf script -F comm,pid,ip,sym,dso` > folded
  profile.py from-gdb SERVICE_PID < gdb-folded > folded
  profile.py report RECORDS OUT tenants per clients duration NAME=FOLDED...

A folded line is "process;thread;root;...;leaf COUNT" (the flamegraph input
format), process being "tenantry" (the service) or "postgres" (any
PostgreSQL process). Each sample goes to ONE category: walking from the leaf
towards the root, the first frame that names a categorised crate (Rust) or
function (PostgreSQL) decides. Generic frames (core/alloc/std, libc,
malloc, the kernel, hash maps, PostgreSQL's memory contexts) pass the sample
on to their caller, so a memcpy or a send(2) counts for whoever asked for
it: the socket writes of tokio-postgres are "database client", those of
actix "HTTP".
"""
import collections
import datetime
import json
import os
import pathlib
import platform
import re
import sys

# --- The service ---------------------------------------------------------------
# (path prefix, category); the first prefix a frame's paths match decides,
# None = generic (look at the caller).
RUST_RULES = [
    ("tenantry_api::auth", "auth/JWT"),
    ("tenantry_api::metrics", "tracing/metrics"),
    ("tenantry_api::telemetry", "tracing/metrics"),
    ("tenantry_db::pool", "pool"),
    ("diesel_async::pooled_connection", "pool"),
    ("deadpool", "pool"),
    ("tokio::runtime", "async runtime"),
    ("tokio::time", "async runtime"),
    ("tokio::task", "async runtime"),
    ("tokio::loom", None),
    ("tokio::sync", None),
    ("tokio::net", None),
    ("tokio::io", None),
    ("tokio_util", None),
    ("mio", None),
    ("actix_", "HTTP/actix"),
    ("httparse", "HTTP/actix"),
    ("http::", "HTTP/actix"),
    ("mime", "HTTP/actix"),
    ("h2::", "HTTP/actix"),
    ("jsonwebtoken", "auth/JWT"),
    ("ed25519", "auth/JWT"),
    ("curve25519", "auth/JWT"),
    ("sha2", "auth/JWT"),
    ("hmac", "auth/JWT"),
    ("rsa::", "auth/JWT"),
    ("ring::", "auth/JWT"),
    ("base64", "auth/JWT"),
    ("subtle", "auth/JWT"),
    ("tokio_postgres", "database client"),
    ("postgres_protocol", "database client"),
    ("postgres_types", "database client"),
    ("diesel", "database client"),
    ("tenantry_db", "database client"),
    ("serde_json", "serialization"),
    ("serde_urlencoded", "serialization"),
    ("serde::", "serialization"),
    ("tenantry_ops::views", "serialization"),
    ("ryu", "serialization"),
    ("itoa", "serialization"),
    ("uuid", "serialization"),
    ("chrono", "serialization"),
    ("time::", "serialization"),
    ("tracing", "tracing/metrics"),
    ("metrics", "tracing/metrics"),
    ("prometheus", "tracing/metrics"),
    ("opentelemetry", "tracing/metrics"),
    ("quanta", "tracing/metrics"),
    ("tenantry", "app code (routes, ops, gate, rate limits)"),
    ("governor", "app code (routes, ops, gate, rate limits)"),
]
PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_{][A-Za-z0-9_{}#]*)+")


def rust_category(sym):
    for path in PATH.findall(sym):
        for prefix, category in RUST_RULES:
            if path.startswith(prefix):
                if category is not None:
                    return category
                break
    return None


# --- PostgreSQL (a stripped Debian build: exported functions only) ----------
PG_RULES = [
    ("network I/O (protocol, sockets)", r"^(secure_read|secure_write|pq_|socket_|internal_flush|WaitEventSetWait|WaitLatchOrSocket|ReadCommand|SocketBackend|be_tls_)"),
    ("locking", r"^(Lock[A-Z]|LockAcquire|LockRelease|LWLock|UnlockRelation|AcquireExecutorLocks|AcquirePlannerLocks|GrantLock|FastPath|s_lock|ProcSleep|XactLockTableWait|VirtualXactLock|ConditionalLock|LockRelationOid|LockTuple|SetupLockInTable|RemoveLocalLock|CheckDeadLock)"),
    ("parse/plan (incl. plan cache, RLS rewrite)", r"^(planner|standard_planner|subquery_planner|query_planner|grouping_planner|create_|make_one_rel|set_base_rel|set_rel|cost_|get_relation_info|pg_plan|raw_parser|base_yyparse|core_yylex|parse_analyze|transform|pg_analyze_and_rewrite|pg_rewrite|QueryRewrite|fireRIRrules|get_row_security_policies|RevalidateCachedQuery|GetCachedPlan|BuildCachedPlan|CheckCachedPlan|CompleteCachedPlan|CreateCachedPlan|eval_const_expressions|preprocess_|build_simple_rel|add_path|add_paths|match_clause|clause_selectivity|estimate|exec_parse_message|expression_planner|extract_|find_|generate_|index_path|make_|pull_up|reduce_|remove_useless|setup_simple_rel|clauselist_selectivity|restriction_selectivity|scalarineqsel|eqsel|get_attstatsslot|examine_variable|contain_|fix_|set_plan_references|SS_|build_|expand_|query_tree_walker|expression_tree_walker|expression_tree_mutator|copyObject|equal$|_copy|_equal|nodeToString|stringToNode)"),
    ("transaction, snapshots, WAL", r"^(StartTransaction|CommitTransaction|AbortTransaction|RecordTransactionCommit|XLog|AtEOXact|AtStart|AtCommit|AtAbort|ProcArray|GetSnapshotData|GetTransactionSnapshot|GetLatestSnapshot|TransactionId|CommandCounterIncrement|BeginTransactionBlock|EndTransactionBlock|Xact|xact_|CommitTransactionCommand|StartTransactionCommand|GetNewTransactionId|PushActiveSnapshot|PopActiveSnapshot|RegisterSnapshot|UnregisterSnapshot|issue_xlog_fsync|pg_fsync|WALInsert|CopyXLog|ReserveXLog|log_heap|heap_page_prune|clog|SimpleLru|TransactionLog)"),
    ("catalog/relation caches", r"^(SearchCatCache|SearchSysCache|SysCache|CatalogCache|RelationIdGetRelation|RelationBuild|RelationClose|relation_open|relation_close|table_open|table_close|index_open|index_close|try_relation_open|AcceptInvalidationMessages|LocalExecuteInvalidationMessage|RelationCache|get_rel_|get_func_|get_op|get_type|lookup_type_cache|InvalidateCatalogSnapshot|GetCatalogSnapshot|ReleaseSysCache|ReleaseCatCache)"),
    ("executor (scans, index, heap, expressions, PL/pgSQL)", r"^(Exec|ExecutorStart|ExecutorRun|ExecutorEnd|standard_Executor|InitPlan|heap|heapam|index_|bt|_bt|IndexNext|slot_|tts_|table_|SPI_|_SPI|plpgsql_|exec_stmt|exec_eval|ReadBuffer|PinBuffer|UnpinBuffer|ReleaseBuffer|BufferAlloc|StrategyGetBuffer|LockBuffer|MarkBuffer|FlushBuffer|BufTable|hash_uint32|uuid_|texteq|byteaeq|textout|textin|sha256|pg_cryptohash|pg_sha|FunctionCall|fmgr_|OidFunctionCall|DirectFunctionCall|toast_|detoast|pg_detoast|datum|int4|int8|numeric|timestamp|date_|text_|varlena|bpchar|byteaout|encode|binary_encode|hex_encode|check_|CreateExecutorState|FreeExecutorState|CreateExprContext|ReScan|MultiExecProcNode|tuplesort|ExecProcNode|ExecScan|ExecInterpExpr|ExecEvalExpr|CheckValidResultRel|ExecInsert|ExecUpdate|ExecDelete|simple_heap|HeapTuple|heap_|visibilitymap|PageAdd|PageGet|PageInit|RelationGetBufferForTuple|_hash|GenericXLog|CreateTupleDesc|CreateTemplateTupleDesc|BlessTupleDesc|printtup|SendRowDescription|ExecMakeTableFunctionResult|pgstat_count)"),
    ("protocol dispatch, portals, stats", r"^(exec_bind_message|exec_execute_message|exec_simple_query|exec_describe|PostgresMain|Portal|CreatePortal|MarkPortal|pgstat_|pq_|EndCommand|BeginCommand|ReadyForQuery|set_ps_display|finish_xact_command|start_xact_command|CreateDestReceiver|CreateQueryDesc|FreeQueryDesc|ProcessUtility|standard_ProcessUtility|ResourceOwner|CreateCommandTag|GetCommandTagName)"),
]
PG_COMPILED = [(c, re.compile(p)) for c, p in PG_RULES]
PG_GENERIC = re.compile(r"^(palloc|pfree|repalloc|AllocSet|MemoryContext|Generation|Slab|hash_search|hash_bytes|hash_any|hash_|memcpy|memset|memmove|strlen|strcmp|__|_int_|malloc|free|list_|lappend|lcons|bms_|pg_qsort|qsort|pg_strncasecmp|appendStringInfo|initStringInfo|enlargeStringInfo|resetStringInfo|errstart|errfinish|elog_|pg_atomic)")


def pg_category(sym):
    if sym in ("[unknown]", "") or PG_GENERIC.match(sym):
        return None
    for category, pattern in PG_COMPILED:
        if pattern.match(sym):
            return category
    return None


def category(process, frames):
    """frames: root..leaf, each "sym|dso". The first categorised frame from the leaf decides."""
    pick = rust_category if process == "tenantry" else pg_category
    for frame in reversed(frames):
        sym, _, dso = frame.partition("|")
        if "kernel" in dso or dso.endswith(".ko"):
            continue
        c = pick(sym)
        if c:
            return c, frame
    leaf = frames[-1] if frames else ""
    if "kernel" in leaf:
        return "kernel (syscalls, scheduling), caller unknown", leaf
    return "other (unattributed)", leaf


# --- fold ----------------------------------------------------------------------------
def fold(service_pid):
    """`perf script -F comm,pid,ip,sym,dso` (samples: a header line, then frames leaf first)."""
    counts = collections.Counter()
    header, frames = None, []

    def flush():
        if header is None:
            return
        comm, pid = header
        process = "tenantry" if pid == service_pid else "postgres"
        stack = [process, comm.replace(";", ":").replace(" ", "_")] + list(reversed(frames))
        counts[";".join(stack)] += 1

    line_re = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")
    for line in sys.stdin:
        if not line.strip():
            flush()
            header, frames = None, []
            continue
        if not line[0].isspace():
            flush()
            frames = []
            parts = line.split()
            # "comm pid" where comm may contain spaces: the pid is the last number.
            pid = next((p for p in reversed(parts) if p.isdigit()), "0")
            comm = " ".join(parts[: parts.index(pid)]) if pid in parts else parts[0]
            header = (comm, pid)
            continue
        m = line_re.match(line)
        if m:
            sym, dso = m.group(1), m.group(2)
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
            dso = os.path.basename(dso)
            frames.append(f"{sym}|{dso}".replace(";", ":").replace(" ", "\u00a0"))
    flush()
    for stack, n in counts.most_common():
        print(f"{stack} {n}")


def from_gdb(service_pid):
    """gdb_sample's lines ("comm;root;...;leaf COUNT", comm of the process)."""
    for line in sys.stdin:
        stack, _, n = line.rstrip("\n").rpartition(" ")
        comm, _, frames = stack.partition(";")
        process = "tenantry" if comm.startswith("tenantry") else "postgres"
        frames = ";".join(f"{f.replace(' ', chr(0xa0))}|" for f in frames.split(";") if f)
        print(f"{process};{comm};{frames} {n}")


# --- report -------------------------------------------------------------------------
def read_folded(path):
    for line in pathlib.Path(path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        parts = stack.split(";")
        yield parts[0], parts[1], parts[2:], int(n)


def pretty(frame):
    sym = frame.partition("|")[0].replace("\u00a0", " ")
    sym = re.sub(r"::h[0-9a-f]{16}$", "", sym)
    return sym if len(sym) <= 110 else sym[:107] + "..."


def report(records, out, tenants, per, clients, duration, named):
    r = {}
    for line in pathlib.Path(records).read_text().splitlines():
        item = json.loads(line)
        r[item["key"]] = item["value"]
    sampler = os.environ.get("PROFILE_SAMPLER", "perf")
    freq = os.environ.get("PROFILE_FREQ", "499")
    note = os.environ.get("PROFILE_NOTE", "")
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        f"# Profile {now.isoformat(timespec='seconds')} (before/after #18: see bench/NOTES.md)",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores; release build (line tables); {tenants} tenants x {per} instances; "
        f"wrk {clients} connections, {duration} s per scenario; the bench cluster (PostgreSQL defaults).",
        "",
        (f"Sampler: `perf record -e cpu-clock -F {freq} --call-graph dwarf` on the service and every PostgreSQL process "
         "(cpu-clock: a software event, as the container has no hardware counters). "
         if sampler == "perf" else
         "Sampler: gdb stack samples (`thread apply all bt` of every process in turn), not perf (perf could not record "
         "here, or PROFILE_SAMPLER=gdb): wall-clock samples of every thread, idle ones included, a few per second, "
         "and the processes stop while gdb looks; the categories are a coarse picture, the µs are not CPU. "),
        "Each sample goes to the first categorised frame from the leaf up: a memcpy, malloc or send(2) counts for the "
        "code that asked for it (tokio-postgres's socket writes are \"database client\", actix's \"HTTP\"). "
        "PostgreSQL is Debian's stripped build: only its exported functions have names. "
        "In the kernel, cpu-clock samples land where interrupts are re-enabled (`finish_task_switch`, "
        "`_raw_spin_unlock_irqrestore`): the kernel share of a category is right, the kernel symbol is not.",
        "",
        *([note, ""] if note else []),
    ]
    summary = {"when": now.isoformat(timespec="seconds"), "sampler": sampler, "scenarios": {}}
    for spec in named:
        name, _, path = spec.partition("=")
        run = r.get(name, {})
        cpu = r.get(f"cpu_{name}", {})
        reqs = run.get("requests") or 0
        hz = cpu.get("hz", 100)
        us = lambda ticks: round(ticks / hz * 1e6 / reqs) if reqs else None  # noqa: E731
        svc_us, pg_us = us(cpu.get("service_ticks", 0)), us(cpu.get("postgres_ticks", 0))
        busy, idle = cpu.get("machine_busy_ticks", 0), cpu.get("machine_idle_ticks", 0)
        ours = cpu.get("service_ticks", 0) + cpu.get("postgres_ticks", 0)
        wrk_us = us(round(cpu.get("wrk_seconds", 0) * hz))
        other_us = us(max(busy - ours - round(cpu.get("wrk_seconds", 0) * hz), 0))  # everything else on the machine
        wall_us = round(duration_s(run) * 1e6 / reqs * int(clients)) if reqs else None
        procs = {"tenantry": collections.Counter(), "postgres": collections.Counter()}
        kernel = {"tenantry": collections.Counter(), "postgres": collections.Counter()}
        syms = {"tenantry": collections.defaultdict(collections.Counter), "postgres": collections.defaultdict(collections.Counter)}
        folded_out = pathlib.Path(f"{out}-{name}.folded")
        with folded_out.open("w") as f:
            for process, comm, frames, n in read_folded(path):
                c, decided = category(process, frames)
                procs[process][c] += n
                if frames and "kernel" in frames[-1]:
                    kernel[process][c] += n
                if frames:
                    syms[process][c][pretty(decided)] += n
                readable = ";".join([process, comm] + [pretty(x).replace(" ", "\u00a0").replace(";", ":") for x in frames])
                f.write(f"{readable} {n}\n")
        lines += [
            f"## {name}: {'GET' if name == 'read' else 'POST'} /v1/instances",
            "",
            f"{run.get('rps')} req/s, p50 {run.get('p50_ms')} ms, p99 {run.get('p99_ms')} ms, non-2xx {run.get('non2xx')} "
            f"(under perf: absolute rates are lower than `make bench`'s). Load average at the end: {cpu.get('load')}.",
            "",
            "CPU per request (from /proc: utime + stime over the run, divided by the requests served):",
            "",
            "| where | µs CPU / request |",
            "|---|---|",
            f"| the service (tenantry) | {svc_us} |",
            f"| PostgreSQL (all its processes) | {pg_us} |",
            f"| wrk (the load generator) | {wrk_us} |",
            f"| everything else on the machine (other work: builds, if any) | {other_us} |",
            f"| wall time a request spends in flight ({clients} connections) | {wall_us} |",
            "",
        ]
        other_share = max(busy - ours - cpu.get("wrk_seconds", 0) * hz, 0) / max(busy + idle, 1)
        if other_share > 0.05:
            lines += [
                f"**Under other load**: {other_share * 100:.0f}% of the machine's CPU over the run went to other "
                f"processes (other engineers' builds), {idle * 100 / max(busy + idle, 1):.0f}% was idle. The shares "
                "below stay meaningful; absolute rates and µs per request do not (a request's CPU is stretched by "
                "cache and scheduler contention).",
                "",
            ]
        summary["scenarios"][name] = {"run": run, "cpu": cpu, "us_per_request": {"service": svc_us, "postgres": pg_us, "wrk": wrk_us, "other": other_us, "wall": wall_us}, "categories": {}}
        for process, title, per_req in (("tenantry", "The service's samples", svc_us), ("postgres", "PostgreSQL's samples", pg_us)):
            total = sum(procs[process].values())
            if not total:
                continue
            lines += [
                f"{title} ({total} samples; µs / request = share × the CPU per request above):",
                "",
                "| category | share | µs / request | of which in the kernel | top frames that decided (share of the category) |",
                "|---|---|---|---|---|",
            ]
            cats = {}
            for c, n in procs[process].most_common():
                share = n / total
                top = ", ".join(f"`{s}` {m * 100 / n:.0f}%" for s, m in syms[process][c].most_common(3))
                lines.append(f"| {c} | {share * 100:.1f}% | {round(share * per_req) if per_req else ''} | {kernel[process][c] * 100 / n:.0f}% | {top} |")
                cats[c] = {"share": round(share, 4), "us_per_request": round(share * per_req) if per_req else None}
            summary["scenarios"][name]["categories"][process] = cats
            lines.append("")
    pathlib.Path(f"{out}.json").write_text(json.dumps(summary, indent=2) + "\n")
    pathlib.Path(f"{out}.md").write_text("\n".join(lines))
    print("\n".join(lines))


def duration_s(run):
    return run.get("duration_s") or 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "fold":
        fold(sys.argv[2])
    elif cmd == "from-gdb":
        from_gdb(sys.argv[2])
    elif cmd == "report":
        records, out, tenants, per, clients, duration, *named = sys.argv[2:]
        report(records, out, tenants, per, clients, duration, named)
    else:
        sys.exit(f"unknown command {cmd}")
