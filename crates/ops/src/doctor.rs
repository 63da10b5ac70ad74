//! `tenantry doctor`: a production database checked the way this service
//! needs it — the isolation guard (`tenantry policies check`'s checks, as
//! they are) and the server settings that matter to Tenantry, each finding
//! with what is wrong, why it matters here and the setting to use,
//! computed from what the server reports ([`tenantry_core::tuning`]).
//! Reads only what the service's role can read.

use std::time::Duration;

use serde::Serialize;
use tenantry_core::tuning::{
    self, BGWRITER_MIN_RATE, Machine, Plan, Pools, Profile, format_duration_ms, format_size,
    pg_duration_ms, pg_size_bytes,
};
use tenantry_db::doctor::{ServerFacts, Setting};
use tenantry_db::{Db, DbError, Violation};

const MIB: u64 = 1024 * 1024;

/// What doctor is told beyond what the server says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorOptions {
    /// `database.max_connections` and `database.admin_connections`.
    pub app_connections: u32,
    pub admin_connections: u32,
    /// Replicas of `tenantry serve` sharing the server.
    pub replicas: u32,
    /// The server's memory, when the operator knows it (the server cannot
    /// tell); otherwise it is assumed from `effective_cache_size`.
    pub server_memory_mib: Option<u64>,
    /// `database.statement_timeout` and `database.idle_in_transaction_timeout`,
    /// which the pool sets on each of the service's connections.
    pub statement_timeout: Duration,
    pub idle_in_transaction_timeout: Duration,
    /// `database.citus.shard_count`.
    pub citus_shard_count: u32,
    /// Checks whose findings do not count towards the exit status.
    pub ignore: Vec<String>,
}

/// How bad a finding is. Ordered: the report's status is its worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Worth knowing; nothing to fix.
    Info,
    /// Works, but slower or less safe than it should be (fails with --strict).
    Warn,
    /// The service is unsafe or cannot work as configured.
    Fail,
}

impl Status {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check's name (a setting's, or `isolation`, `server_version`, ...):
    /// what `--ignore` takes.
    pub check: String,
    pub status: Status,
    /// What was found (for a warn or fail: what is wrong).
    pub summary: String,
    /// Why it matters for Tenantry.
    pub why: String,
    /// The server's value, as PostgreSQL writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// The value to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended: Option<String>,
    /// How to set it (SQL for a superuser, or what to run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// `--ignore`d: listed, not counted.
    pub ignored: bool,
}

/// How much memory the recommendations assume, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryBasis {
    pub mib: u64,
    /// `given` (`--server-memory`) or `effective_cache_size`.
    pub source: &'static str,
    pub note: String,
}

/// The server as doctor saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    pub version: String,
    pub version_num: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citus: Option<String>,
}

/// The connections the configuration needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionBudget {
    pub replicas: u32,
    pub app: u32,
    pub admin: u32,
    pub headroom: u32,
    pub reserved: u32,
    pub required: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
}

/// Everything doctor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The worst status of the findings that are not ignored.
    pub status: Status,
    pub server: ServerInfo,
    pub memory: MemoryBasis,
    pub connections: ConnectionBudget,
    pub findings: Vec<Finding>,
}

impl Report {
    /// How many findings (not ignored) have `status`.
    #[must_use]
    pub fn count(&self, status: Status) -> usize {
        self.findings
            .iter()
            .filter(|f| !f.ignored && f.status == status)
            .count()
    }
}

/// Reads the server and the guard's verdict and judges them.
pub async fn diagnose(db: &Db, options: &DoctorOptions) -> Result<Report, DbError> {
    let violations = db.check_isolation().await?;
    let facts = db.server_facts().await?;
    Ok(assess(&facts, &violations, options))
}

/// The judging, on what was read: a pure function.
#[must_use]
pub fn assess(facts: &ServerFacts, violations: &[Violation], options: &DoctorOptions) -> Report {
    let mut c = Checker::new(facts, options);
    c.isolation(violations);
    c.version();
    c.durability();
    c.memory();
    c.bgwriter();
    c.wal();
    c.storage();
    c.connections();
    c.timeouts();
    c.observability();
    c.citus();
    let mut findings = c.findings;
    for f in &mut findings {
        f.ignored = options.ignore.iter().any(|i| i == &f.check);
    }
    let status = findings
        .iter()
        .filter(|f| !f.ignored)
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Ok);
    Report {
        status,
        server: ServerInfo {
            version: facts.version.clone(),
            version_num: facts.version_num,
            citus: facts.extensions.get("citus").cloned(),
        },
        memory: c.basis,
        connections: c.budget,
        findings,
    }
}

struct Checker<'a> {
    facts: &'a ServerFacts,
    options: &'a DoctorOptions,
    plan: Plan,
    basis: MemoryBasis,
    budget: ConnectionBudget,
    findings: Vec<Finding>,
}

/// Bytes per second in decimal MB/s, one decimal.
#[expect(clippy::cast_precision_loss, reason = "a rate shown to one decimal")]
fn format_rate(bytes_per_second: u64) -> String {
    format!("{:.1} MB/s", bytes_per_second as f64 / 1e6)
}

fn alter(name: &str, value: &str) -> String {
    format!("ALTER SYSTEM SET {name} = '{value}';")
}

impl<'a> Checker<'a> {
    fn new(facts: &'a ServerFacts, options: &'a DoctorOptions) -> Self {
        let basis = match options.server_memory_mib {
            Some(mib) => MemoryBasis {
                mib,
                source: "given",
                note: format!("{mib} MiB, as given (--server-memory)"),
            },
            None => {
                let ecs = facts
                    .settings
                    .get("effective_cache_size")
                    .and_then(|s| pg_size_bytes(&s.value, s.unit.as_deref()))
                    .map_or(4096, |b| b / MIB);
                let mib = tuning::memory_from_effective_cache_size(ecs);
                let default = facts
                    .settings
                    .get("effective_cache_size")
                    .is_none_or(|s| s.source == "default");
                MemoryBasis {
                    mib,
                    source: "effective_cache_size",
                    note: if default {
                        format!(
                            "the server cannot tell its memory and effective_cache_size is PostgreSQL's default ({}), which says nothing about it: assumed {mib} MiB (effective_cache_size = ¾ of memory); pass --server-memory for real figures",
                            format_size(ecs * MIB)
                        )
                    } else {
                        format!(
                            "the server cannot tell its memory: assumed {mib} MiB from effective_cache_size = {} (¾ of memory); pass --server-memory if that is not so",
                            format_size(ecs * MIB)
                        )
                    },
                }
            }
        };
        let reserved = ["superuser_reserved_connections", "reserved_connections"]
            .iter()
            .filter_map(|n| facts.settings.get(*n))
            .filter_map(|s| s.value.parse::<u32>().ok())
            .sum();
        let pools = Pools {
            app: options.app_connections,
            admin: options.admin_connections,
            replicas: options.replicas.max(1),
            reserved,
        };
        let plan = Plan::new(
            Machine {
                memory_mib: basis.mib,
                cpus: 1,
            },
            pools,
            Profile::Production,
        );
        let budget = ConnectionBudget {
            replicas: pools.replicas,
            app: pools.app,
            admin: pools.admin,
            headroom: tuning::HEADROOM_CONNECTIONS,
            reserved,
            required: pools.required_connections(),
            max_connections: facts
                .settings
                .get("max_connections")
                .and_then(|s| s.value.parse().ok()),
        };
        Self {
            facts,
            options,
            plan,
            basis,
            budget,
            findings: Vec::new(),
        }
    }

    fn setting(&self, name: &str) -> Option<&'a Setting> {
        self.facts.settings.get(name)
    }

    fn bytes(&self, name: &str) -> Option<u64> {
        self.setting(name)
            .and_then(|s| pg_size_bytes(&s.value, s.unit.as_deref()))
    }

    fn millis(&self, name: &str) -> Option<u64> {
        self.setting(name)
            .and_then(|s| pg_duration_ms(&s.value, s.unit.as_deref()))
    }

    fn number(&self, name: &str) -> Option<f64> {
        self.setting(name).and_then(|s| s.value.parse().ok())
    }

    fn text(&self, name: &str) -> Option<String> {
        self.setting(name).map(|s| s.value.clone())
    }

    /// The server's value as people write it (`128MB`, `200ms`, `on`).
    fn shown(&self, name: &str) -> Option<String> {
        let s = self.setting(name)?;
        let shown = match s.unit.as_deref() {
            Some(u) if u.ends_with('B') => pg_size_bytes(&s.value, Some(u)).map(format_size),
            Some(u) => pg_duration_ms(&s.value, Some(u)).map(format_duration_ms),
            None => None,
        }
        .unwrap_or_else(|| s.value.clone());
        Some(if s.pending_restart {
            format!("{shown} (changed, waiting for a restart)")
        } else {
            shown
        })
    }

    fn restart_note(&self, name: &str) -> &'static str {
        match self.setting(name).map(|s| s.context.as_str()) {
            Some("postmaster") => " -- then restart the server",
            _ => " SELECT pg_reload_conf();",
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one finding's fields")]
    fn push(
        &mut self,
        check: &str,
        status: Status,
        summary: String,
        why: &str,
        current: Option<String>,
        recommended: Option<String>,
        fix: Option<String>,
    ) {
        self.findings.push(Finding {
            check: check.to_owned(),
            status,
            summary,
            why: why.to_owned(),
            current,
            recommended,
            fix,
            ignored: false,
        });
    }

    /// A setting with a recommended value: `bad` says whether the current
    /// one is a problem.
    fn setting_check(
        &mut self,
        name: &str,
        bad_status: Status,
        bad: Option<bool>,
        recommended: &str,
        summary_bad: String,
        why: &str,
    ) {
        let current = self.shown(name);
        match bad {
            None => self.push(
                name,
                Status::Info,
                format!("{name} is not visible to the service's role"),
                why,
                None,
                Some(recommended.to_owned()),
                None,
            ),
            Some(true) => {
                let fix = format!("{}{}", alter(name, recommended), self.restart_note(name));
                self.push(
                    name,
                    bad_status,
                    summary_bad,
                    why,
                    current,
                    Some(recommended.to_owned()),
                    Some(fix),
                );
            }
            Some(false) => self.push(
                name,
                Status::Ok,
                format!("{name} = {}", current.clone().unwrap_or_default()),
                why,
                current,
                Some(recommended.to_owned()),
                None,
            ),
        }
    }

    fn isolation(&mut self, violations: &[Violation]) {
        const WHY: &str = "Tenants share tables; row-level security, the service's role (not owner, not superuser, NOBYPASSRLS) and the proven context are all that keep them apart. `tenantry serve` refuses to start while any of this is wrong.";
        if violations.is_empty() {
            self.push(
                "isolation",
                Status::Ok,
                "roles and RLS: the isolation guard finds nothing (as `tenantry policies check`)"
                    .to_owned(),
                WHY,
                None,
                None,
                None,
            );
        }
        for v in violations {
            self.push(
                "isolation",
                Status::Fail,
                v.to_string(),
                WHY,
                None,
                None,
                Some("run `tenantry migrate` (as the owner) to restore the schema's policies and grants; never grant the service's role more".to_owned()),
            );
        }
    }

    fn version(&mut self) {
        const WHY: &str = "The schema needs PostgreSQL 15 (NULLS NOT DISTINCT, MERGE); releases are tested on 15, and on 15-17 with Citus 13.";
        let num = self.facts.version_num;
        let (status, summary) = if num < 150_000 {
            (
                Status::Fail,
                format!(
                    "PostgreSQL {} is older than 15: migrations fail",
                    self.facts.version
                ),
            )
        } else {
            (Status::Ok, format!("PostgreSQL {}", self.facts.version))
        };
        self.push(
            "server_version",
            status,
            summary,
            WHY,
            Some(self.facts.version.clone()),
            Some("15 or later".to_owned()),
            (status == Status::Fail).then(|| "upgrade the server (pg_upgrade)".to_owned()),
        );
    }

    fn durability(&mut self) {
        let off = |s: Option<String>| s.map(|v| v == "off");
        let fsync = off(self.text("fsync"));
        self.setting_check(
            "fsync",
            Status::Fail,
            fsync,
            "on",
            "fsync is off: a crash or power loss can corrupt the database".to_owned(),
            "A corrupt database loses every tenant's data at once, and what survives may no longer be isolated.",
        );
        let fpw = off(self.text("full_page_writes"));
        self.setting_check(
            "full_page_writes",
            Status::Fail,
            fpw,
            "on",
            "full_page_writes is off: a crash during a page write can leave torn pages".to_owned(),
            "Torn pages are corruption that recovery cannot repair.",
        );
        let sync = self
            .text("synchronous_commit")
            .map(|v| v == "off" || v == "local");
        self.setting_check(
            "synchronous_commit",
            Status::Warn,
            sync,
            "on",
            "synchronous_commit is off: a crash loses the last commits the service already answered".to_owned(),
            "A tenant would be told 201 Created for rows, quota charges and audit entries that are gone after a crash.",
        );
        let autovacuum = off(self.text("autovacuum"));
        self.setting_check(
            "autovacuum",
            Status::Fail,
            autovacuum,
            "on",
            "autovacuum is off: dead rows are never reclaimed".to_owned(),
            "The retention purge deletes whole tenants' rows; without vacuum the tables and indexes only grow, every request reads more pages, and transaction ids eventually wrap around.",
        );
    }

    fn memory(&mut self) {
        let mem = self.basis.mib * MIB;
        let assumed = format!("memory: {}", self.basis.note);
        // shared_buffers: about a quarter of the memory.
        let rec = self.plan.shared_buffers_mib * MIB;
        let bad = self
            .bytes("shared_buffers")
            .map(|sb| sb < rec / 2 || sb > mem / 5 * 2);
        let summary = format!(
            "shared_buffers = {} where about a quarter of memory ({}) fits; {assumed}",
            self.shown("shared_buffers").unwrap_or_default(),
            format_size(rec)
        );
        self.setting_check(
            "shared_buffers",
            Status::Warn,
            bad,
            &format_size(rec),
            summary,
            "Every request reads the tenant gate, the context proof and the tenant's rows; with a small buffer cache they come from the kernel or the disk, and the purge's writes evict what reads need (read p99 stretches while it runs).",
        );
        // effective_cache_size: about three quarters.
        let rec = self.plan.effective_cache_size_mib * MIB;
        let current = self.bytes("effective_cache_size");
        let default = self
            .setting("effective_cache_size")
            .is_some_and(|s| s.source == "default");
        let bad = current.map(|ecs| {
            if self.basis.source == "given" {
                ecs < mem / 2 || ecs > mem / 10 * 9
            } else {
                default
            }
        });
        let summary = if self.basis.source == "given" {
            format!(
                "effective_cache_size = {} for {} of memory; about ¾ of it ({}) fits",
                self.shown("effective_cache_size").unwrap_or_default(),
                format_size(mem),
                format_size(rec)
            )
        } else {
            "effective_cache_size is PostgreSQL's default (4GB), not this server's: set it to about ¾ of the server's memory".to_owned()
        };
        let recommended = if self.basis.source == "given" {
            format_size(rec)
        } else {
            "¾ of the server's memory".to_owned()
        };
        self.setting_check(
            "effective_cache_size",
            Status::Warn,
            bad,
            &recommended,
            summary,
            "The planner's idea of how much of the data is cached: too low and it prefers sequential scans over the tenant_id indexes every tenant-plane query relies on.",
        );
        // work_mem: (memory - shared_buffers) / (4 x max_connections), 4..64 MB.
        let rec = self.plan.work_mem_mib * MIB;
        let conns = self.budget.max_connections.unwrap_or(100);
        let bad = self
            .bytes("work_mem")
            .map(|wm| wm.saturating_mul(u64::from(conns)).saturating_mul(2) > mem);
        let summary = format!(
            "work_mem = {} x max_connections {conns} could take more than the server's memory",
            self.shown("work_mem").unwrap_or_default()
        );
        self.setting_check(
            "work_mem",
            Status::Warn,
            bad,
            &format_size(rec),
            summary,
            "Each sort or hash of every connection may take work_mem; the service's queries are small, but exports, the admin lists and the purge's scans sort.",
        );
        // maintenance_work_mem: memory / 16, 64 MB..2 GB.
        let rec = self.plan.maintenance_work_mem_mib * MIB;
        let bad = self.bytes("maintenance_work_mem").map(|m| m < rec / 2);
        let summary = format!(
            "maintenance_work_mem = {} is small for this server ({} fits); {assumed}",
            self.shown("maintenance_work_mem").unwrap_or_default(),
            format_size(rec)
        );
        self.setting_check(
            "maintenance_work_mem",
            Status::Warn,
            bad,
            &format_size(rec),
            summary,
            "Autovacuum (what reclaims the rows a purge deletes) and the migrations' index builds use it: too little and vacuum passes over the indexes several times.",
        );
    }

    fn bgwriter(&mut self) {
        const WHY: &str = "When the bgwriter falls behind, the backends serving requests must write dirty buffers themselves before they can read: under the purge's deletes and bulk imports that is what stretches read p99. PostgreSQL's default writes at most 4 MB/s.";
        let delay = self.millis("bgwriter_delay");
        let maxpages = self.number("bgwriter_lru_maxpages");
        let multiplier = self.number("bgwriter_lru_multiplier");
        let block = self.bytes("block_size").unwrap_or(8192);
        let rec = format!(
            "bgwriter_delay = {}ms, bgwriter_lru_maxpages = {}, bgwriter_lru_multiplier = {}",
            self.plan.bgwriter_delay_ms,
            self.plan.bgwriter_lru_maxpages,
            self.plan.bgwriter_lru_multiplier
        );
        let current = match (delay, maxpages, multiplier) {
            (Some(d), Some(p), Some(m)) => Some((d, p, m)),
            _ => None,
        };
        let Some((d, p, m)) = current else {
            self.push(
                "bgwriter",
                Status::Info,
                "the bgwriter's settings are not visible to the service's role".to_owned(),
                WHY,
                None,
                Some(rec),
                None,
            );
            return;
        };
        let pages = self
            .setting("bgwriter_lru_maxpages")
            .and_then(|s| s.value.parse::<u64>().ok())
            .unwrap_or(0);
        let rate = tuning::bgwriter_rate(d, pages, block);
        let evidence = match (self.facts.backend_writes, self.facts.bgwriter_writes) {
            (Some(b), Some(c)) => format!(
                "; since the statistics were reset, backends wrote {b} buffers themselves and the bgwriter {c}{}",
                self.facts
                    .bgwriter_maxwritten
                    .map(|n| format!(" (stopped {n} times at bgwriter_lru_maxpages)"))
                    .unwrap_or_default()
            ),
            _ => String::new(),
        };
        let shown = format!(
            "bgwriter_delay = {}, bgwriter_lru_maxpages = {p}, bgwriter_lru_multiplier = {m}",
            format_duration_ms(d)
        );
        let bad = rate < BGWRITER_MIN_RATE || m < 2.0;
        if bad {
            let fix = format!(
                "{} {} {} SELECT pg_reload_conf();",
                alter(
                    "bgwriter_delay",
                    &format!("{}ms", self.plan.bgwriter_delay_ms)
                ),
                alter(
                    "bgwriter_lru_maxpages",
                    &self.plan.bgwriter_lru_maxpages.to_string()
                ),
                alter("bgwriter_lru_multiplier", self.plan.bgwriter_lru_multiplier)
            );
            self.push(
                "bgwriter",
                Status::Warn,
                format!(
                    "{shown}: the bgwriter writes at most {}, so backends write dirty buffers themselves{evidence}",
                    format_rate(rate)
                ),
                WHY,
                Some(shown),
                Some(rec),
                Some(fix),
            );
        } else {
            self.push(
                "bgwriter",
                Status::Ok,
                format!("{shown}: up to {}{evidence}", format_rate(rate)),
                WHY,
                Some(shown),
                Some(rec),
                None,
            );
        }
    }

    fn wal(&mut self) {
        let rec = format!("{}MB", self.plan.max_wal_size_mib);
        let bad = self.bytes("max_wal_size").map(|b| b < 2048 * MIB);
        let summary = format!(
            "max_wal_size = {}: bursts of writes force checkpoints early",
            self.shown("max_wal_size").unwrap_or_default()
        );
        self.setting_check(
            "max_wal_size",
            Status::Warn,
            bad,
            &rec,
            summary,
            "A purge or a tenant import writes WAL fast; each forced checkpoint writes every dirty buffer and makes the next write of each page a full-page image, which slows every request meanwhile. (Set min_wal_size to a quarter of it.)",
        );
        let rec = format!("{}min", self.plan.checkpoint_timeout_min);
        let bad = self.millis("checkpoint_timeout").map(|ms| ms < 600_000);
        let summary = format!(
            "checkpoint_timeout = {}: checkpoints come often",
            self.shown("checkpoint_timeout").unwrap_or_default()
        );
        self.setting_check(
            "checkpoint_timeout",
            Status::Warn,
            bad,
            &rec,
            summary,
            "Each checkpoint makes the next write of every page a full-page image in the WAL; fewer checkpoints, less WAL and less I/O competing with requests (recovery takes longer, within minutes).",
        );
        let target = self.plan.checkpoint_completion_target;
        let bad = self.number("checkpoint_completion_target").map(|t| t < 0.9);
        let summary = format!(
            "checkpoint_completion_target = {}: checkpoints write in bursts",
            self.shown("checkpoint_completion_target")
                .unwrap_or_default()
        );
        self.setting_check(
            "checkpoint_completion_target",
            Status::Warn,
            bad,
            target,
            summary,
            "Spreading a checkpoint's writes over its interval keeps them from stalling requests.",
        );
        let lz4 = self
            .setting("wal_compression")
            .and_then(|s| s.enumvals.as_ref())
            .is_some_and(|v| v.iter().any(|e| e == "lz4"));
        let rec = if lz4 {
            "lz4"
        } else {
            self.plan.wal_compression
        };
        let bad = self.text("wal_compression").map(|v| v == "off");
        self.setting_check(
            "wal_compression",
            Status::Warn,
            bad,
            rec,
            "wal_compression is off: full-page images go to the WAL uncompressed".to_owned(),
            "Full-page images are most of the WAL after each checkpoint; compressing them costs little CPU and cuts WAL volume, replication traffic and checkpoint pressure.",
        );
    }

    fn storage(&mut self) {
        let rec = self.plan.random_page_cost;
        let bad = self.number("random_page_cost").map(|c| c >= 2.0);
        let summary = format!(
            "random_page_cost = {} assumes spinning disks; on SSD or cloud block storage use {rec} (on real HDDs keep it and --ignore random_page_cost)",
            self.shown("random_page_cost").unwrap_or_default()
        );
        self.setting_check(
            "random_page_cost",
            Status::Warn,
            bad,
            rec,
            summary,
            "Every tenant-plane query is an index lookup by tenant_id; a planner that thinks random reads cost 4x sequential ones picks sequential scans across all tenants' rows.",
        );
        let rec = self.plan.effective_io_concurrency.to_string();
        let low = self.number("effective_io_concurrency").map(|c| c < 100.0);
        let current = self.shown("effective_io_concurrency");
        match low {
            Some(true) => self.push(
                "effective_io_concurrency",
                Status::Info,
                format!(
                    "effective_io_concurrency = {}: on SSD, {rec} lets bitmap scans prefetch",
                    current.clone().unwrap_or_default()
                ),
                "Bitmap heap scans (admin lists, exports) prefetch this many pages; SSDs serve many at once.",
                current,
                Some(rec.clone()),
                Some(format!(
                    "{}{}",
                    alter("effective_io_concurrency", &rec),
                    self.restart_note("effective_io_concurrency")
                )),
            ),
            _ => self.setting_check(
                "effective_io_concurrency",
                Status::Info,
                low,
                &rec,
                String::new(),
                "Bitmap heap scans (admin lists, exports) prefetch this many pages; SSDs serve many at once.",
            ),
        }
    }

    fn connections(&mut self) {
        const WHY: &str = "Each replica opens up to database.max_connections + database.admin_connections; when the server runs out, new connections are refused and requests answer 503 (or a suspension waits) while the pools try to fill; the migrate job, `tenantry sweep --once` and psql need slots too.";
        let b = self.budget.clone();
        let formula = format!(
            "{} replica(s) x ({} + {}) + {} headroom + {} reserved = {}",
            b.replicas, b.app, b.admin, b.headroom, b.reserved, b.required
        );
        let Some(max) = b.max_connections else {
            self.push(
                "max_connections",
                Status::Info,
                format!("max_connections is not visible; the configuration needs {formula}"),
                WHY,
                None,
                Some(b.required.to_string()),
                None,
            );
            return;
        };
        let current = Some(max.to_string());
        let fix = Some(format!(
            "{} -- then restart the server; or lower database.max_connections / run fewer replicas",
            alter("max_connections", &b.required.to_string())
        ));
        if max < b.required {
            self.push(
                "max_connections",
                Status::Fail,
                format!("max_connections = {max} is less than the pools need: {formula}"),
                WHY,
                current,
                Some(b.required.to_string()),
                fix,
            );
        } else if max > b.required.saturating_mul(4) && max > 200 {
            self.push(
                "max_connections",
                Status::Warn,
                format!(
                    "max_connections = {max} is far above what the pools need ({formula})"
                ),
                "Every allowed connection may take work_mem several times over and slows snapshots; a pooler in front of the server or smaller pools do better than many connections.",
                current,
                Some(b.required.to_string()),
                fix,
            );
        } else {
            self.push(
                "max_connections",
                Status::Ok,
                format!("max_connections = {max} covers {formula}"),
                WHY,
                current,
                Some(b.required.to_string()),
                None,
            );
        }
    }

    fn timeouts(&mut self) {
        let configured = self.options.statement_timeout;
        let server = self.shown("statement_timeout").unwrap_or_default();
        if configured.is_zero() {
            self.push(
                "statement_timeout",
                Status::Warn,
                "database.statement_timeout is 0: a runaway statement holds its pooled connection (and its locks) forever".to_owned(),
                "A request's statement should fail fast, not tie up one of the pool's few connections.",
                Some("0".to_owned()),
                Some("5s".to_owned()),
                Some("set database.statement_timeout (TENANTRY__DATABASE__STATEMENT_TIMEOUT=5s)".to_owned()),
            );
        } else {
            let ms = u64::try_from(configured.as_millis()).unwrap_or(u64::MAX);
            self.push(
                "statement_timeout",
                Status::Ok,
                format!(
                    "the service sets statement_timeout = {} on each of its connections (database.statement_timeout); the server's default for other sessions (migrations, which may run long) is {server}",
                    format_duration_ms(ms)
                ),
                "A request's statement should fail fast, not tie up one of the pool's few connections.",
                Some(server),
                None,
                None,
            );
        }
        let rec = format!("{}s", self.plan.idle_in_transaction_session_timeout_s);
        let bad = self
            .millis("idle_in_transaction_session_timeout")
            .map(|ms| ms == 0);
        let service = self.options.idle_in_transaction_timeout;
        let service_ms = u64::try_from(service.as_millis()).unwrap_or(u64::MAX);
        let summary = format!(
            "idle_in_transaction_session_timeout is 0 on the server: the service sets {} on its own connections, but any other session (psql, a job) left idle in a transaction keeps its locks and its snapshot forever",
            format_duration_ms(service_ms)
        );
        self.setting_check(
            "idle_in_transaction_session_timeout",
            Status::Warn,
            bad,
            &rec,
            summary,
            "A forgotten open transaction blocks a tenant's lifecycle change (suspend, delete) and keeps vacuum from reclaiming what the purge deleted.",
        );
        if service.is_zero() {
            self.push(
                "database.idle_in_transaction_timeout",
                Status::Warn,
                "database.idle_in_transaction_timeout is 0: a request stuck between statements holds its connection and locks".to_owned(),
                "The pool's connections are few; one stuck transaction blocks the tenant's lifecycle lock.",
                Some("0".to_owned()),
                Some("10s".to_owned()),
                Some("set database.idle_in_transaction_timeout (TENANTRY__DATABASE__IDLE_IN_TRANSACTION_TIMEOUT=10s)".to_owned()),
            );
        }
    }

    fn observability(&mut self) {
        let off = self.text("track_io_timing").map(|v| v == "off");
        let current = self.shown("track_io_timing");
        const WHY: &str = "With it, pg_stat_statements, pg_stat_database and EXPLAIN (ANALYZE, BUFFERS) say how long reads and writes waited on I/O: the first question when request latency moves.";
        if off == Some(true) {
            self.push(
                "track_io_timing",
                Status::Info,
                "track_io_timing is off: I/O wait times are not recorded".to_owned(),
                WHY,
                current,
                Some("on".to_owned()),
                Some(format!(
                    "{} SELECT pg_reload_conf();",
                    alter("track_io_timing", "on")
                )),
            );
        } else {
            self.setting_check(
                "track_io_timing",
                Status::Info,
                off,
                "on",
                String::new(),
                WHY,
            );
        }
        let pgss = self.facts.extensions.get("pg_stat_statements");
        self.push(
            "pg_stat_statements",
            if pgss.is_some() { Status::Ok } else { Status::Info },
            match pgss {
                Some(v) => format!("pg_stat_statements {v} is installed"),
                None => "pg_stat_statements is not installed in this database".to_owned(),
            },
            "Per-statement totals (calls, time, buffers) show which of the service's statements costs what; the service's statements are few and fixed, so its view is easy to read.",
            pgss.cloned(),
            None,
            pgss.is_none().then(|| "shared_preload_libraries = 'pg_stat_statements' (restart), then CREATE EXTENSION pg_stat_statements; (as a superuser)".to_owned()),
        );
    }

    fn citus(&mut self) {
        let Some(version) = self.facts.extensions.get("citus").cloned() else {
            return;
        };
        self.push(
            "citus",
            Status::Info,
            format!(
                "Citus {version}: these findings are the coordinator's; run doctor against each worker's address too (their memory, bgwriter and WAL settings matter as much)"
            ),
            "On Citus the tenant's rows live on the workers; the coordinator plans and routes.",
            Some(version),
            None,
            None,
        );
        let prepared = self.number("max_prepared_transactions");
        let need = f64::from(self.budget.max_connections.unwrap_or(100));
        let bad = prepared.map(|p| p < need);
        let rec = self.budget.max_connections.unwrap_or(100).to_string();
        let summary = format!(
            "max_prepared_transactions = {} is below max_connections: a write that reaches more than one node (an admin change, a placement) commits with two-phase commit and can fail",
            self.shown("max_prepared_transactions").unwrap_or_default()
        );
        self.setting_check(
            "max_prepared_transactions",
            Status::Warn,
            bad,
            &rec,
            summary,
            "Citus commits multi-node transactions with two-phase commit, one prepared transaction per connection; set it on every node.",
        );
        if let Some(pool) = self.shown("citus.max_shared_pool_size") {
            self.push(
                "citus.max_shared_pool_size",
                Status::Info,
                format!("citus.max_shared_pool_size = {pool} (connections from this coordinator to each worker; 0 = max_connections)"),
                "The coordinator's connections to each worker count against the worker's max_connections: size the workers' max_connections to this plus their own headroom.",
                Some(pool),
                None,
                None,
            );
        }
        if let Some(shards) = self.text("citus.shard_count") {
            self.push(
                "citus.shard_count",
                Status::Info,
                format!(
                    "citus.shard_count = {shards}; database.citus.shard_count = {} is what `tenantry migrate` distributes with",
                    self.options.citus_shard_count
                ),
                "The tenant tables' shards are fixed when they are first distributed; later changes are a rebalance.",
                Some(shards),
                None,
                None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn setting(name: &str, value: &str, unit: Option<&str>, source: &str) -> (String, Setting) {
        (
            name.to_owned(),
            Setting {
                name: name.to_owned(),
                value: value.to_owned(),
                unit: unit.map(str::to_owned),
                source: source.to_owned(),
                context: if name == "shared_buffers" || name == "max_connections" {
                    "postmaster".to_owned()
                } else {
                    "sighup".to_owned()
                },
                enumvals: (name == "wal_compression").then(|| {
                    ["pglz", "lz4", "zstd", "on", "off"]
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect()
                }),
                pending_restart: false,
            },
        )
    }

    /// PostgreSQL 15's defaults, as the service's role reads them.
    fn defaults() -> ServerFacts {
        let settings: BTreeMap<String, Setting> = [
            setting("shared_buffers", "16384", Some("8kB"), "default"),
            setting("effective_cache_size", "524288", Some("8kB"), "default"),
            setting("work_mem", "4096", Some("kB"), "default"),
            setting("maintenance_work_mem", "65536", Some("kB"), "default"),
            setting("max_connections", "100", None, "default"),
            setting("superuser_reserved_connections", "3", None, "default"),
            setting("bgwriter_delay", "200", Some("ms"), "default"),
            setting("bgwriter_lru_maxpages", "100", None, "default"),
            setting("bgwriter_lru_multiplier", "2", None, "default"),
            setting("max_wal_size", "1024", Some("MB"), "default"),
            setting("min_wal_size", "80", Some("MB"), "default"),
            setting("checkpoint_timeout", "300", Some("s"), "default"),
            setting("checkpoint_completion_target", "0.9", None, "default"),
            setting("wal_compression", "off", None, "default"),
            setting("random_page_cost", "4", None, "default"),
            setting("effective_io_concurrency", "1", None, "default"),
            setting(
                "idle_in_transaction_session_timeout",
                "0",
                Some("ms"),
                "default",
            ),
            setting("statement_timeout", "0", Some("ms"), "default"),
            setting("track_io_timing", "off", None, "default"),
            setting("fsync", "on", None, "default"),
            setting("full_page_writes", "on", None, "default"),
            setting("synchronous_commit", "on", None, "default"),
            setting("autovacuum", "on", None, "default"),
            setting("block_size", "8192", None, "default"),
            setting("max_prepared_transactions", "0", None, "default"),
        ]
        .into_iter()
        .collect();
        ServerFacts {
            version: "15.10".to_owned(),
            version_num: 150_010,
            settings,
            extensions: [("plpgsql".to_owned(), "1.0".to_owned())].into(),
            backend_writes: Some(500),
            bgwriter_writes: Some(20),
            bgwriter_maxwritten: Some(3),
        }
    }

    fn options() -> DoctorOptions {
        DoctorOptions {
            app_connections: 16,
            admin_connections: 2,
            replicas: 1,
            server_memory_mib: None,
            statement_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(10),
            citus_shard_count: 32,
            ignore: Vec::new(),
        }
    }

    fn finding<'r>(report: &'r Report, check: &str) -> &'r Finding {
        report
            .findings
            .iter()
            .find(|f| f.check == check)
            .unwrap_or_else(|| panic!("no {check} finding in {report:#?}"))
    }

    #[test]
    fn postgres_defaults_warn_with_values_from_the_assumed_memory() {
        let report = assess(&defaults(), &[], &options());
        assert_eq!(report.status, Status::Warn);
        // 4GB effective_cache_size read as ¾ of 5460 MiB.
        assert_eq!(report.memory.mib, 5460);
        assert_eq!(report.memory.source, "effective_cache_size");
        let sb = finding(&report, "shared_buffers");
        assert_eq!(sb.status, Status::Warn);
        assert_eq!(sb.current.as_deref(), Some("128MB"));
        assert_eq!(sb.recommended.as_deref(), Some("1365MB"));
        assert!(sb.fix.as_deref().unwrap().contains("restart"), "{sb:?}");
        let bg = finding(&report, "bgwriter");
        assert_eq!(bg.status, Status::Warn);
        assert!(bg.summary.contains("at most 4.1 MB/s"), "{bg:?}");
        assert!(bg.summary.contains("backends wrote 500"), "{bg:?}");
        for check in [
            "max_wal_size",
            "checkpoint_timeout",
            "wal_compression",
            "random_page_cost",
            "idle_in_transaction_session_timeout",
            "effective_cache_size",
            "maintenance_work_mem",
        ] {
            assert_eq!(finding(&report, check).status, Status::Warn, "{check}");
        }
        assert_eq!(
            finding(&report, "wal_compression").recommended.as_deref(),
            Some("lz4")
        );
        for check in [
            "isolation",
            "server_version",
            "fsync",
            "max_connections",
            "statement_timeout",
            "checkpoint_completion_target",
            "work_mem",
        ] {
            assert_eq!(finding(&report, check).status, Status::Ok, "{check}");
        }
        assert_eq!(finding(&report, "track_io_timing").status, Status::Info);
        assert_eq!(finding(&report, "pg_stat_statements").status, Status::Info);
        assert_eq!(report.connections.required, 16 + 2 + 10 + 3);
    }

    #[test]
    fn a_tuned_server_is_ok() {
        let mut facts = defaults();
        let plan = Plan::new(
            Machine {
                memory_mib: 16 * 1024,
                cpus: 4,
            },
            Pools {
                app: 16,
                admin: 2,
                replicas: 1,
                reserved: 3,
            },
            Profile::Production,
        );
        for (name, value) in plan.settings() {
            let (number, unit) = match value.strip_suffix("MB") {
                Some(n) => (n.to_owned(), Some("MB")),
                None => match value.strip_suffix("min") {
                    Some(n) => (n.to_owned(), Some("min")),
                    None => match value.strip_suffix("ms") {
                        Some(n) => (n.to_owned(), Some("ms")),
                        None => match value.strip_suffix('s') {
                            Some(n) if n.parse::<u64>().is_ok() => (n.to_owned(), Some("s")),
                            _ => (value.clone(), None),
                        },
                    },
                },
            };
            facts.settings.insert(
                name.to_owned(),
                setting(name, &number, unit, "configuration file").1,
            );
        }
        facts
            .extensions
            .insert("pg_stat_statements".to_owned(), "1.10".to_owned());
        let report = assess(
            &facts,
            &[],
            &DoctorOptions {
                server_memory_mib: Some(16 * 1024),
                ..options()
            },
        );
        let not_ok: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.status != Status::Ok)
            .collect();
        assert!(not_ok.is_empty(), "{not_ok:#?}");
        assert_eq!(report.status, Status::Ok);
    }

    #[test]
    fn too_few_connections_for_the_replicas_fail() {
        let report = assess(
            &defaults(),
            &[],
            &DoctorOptions {
                replicas: 5,
                ..options()
            },
        );
        let f = finding(&report, "max_connections");
        assert_eq!(f.status, Status::Fail);
        // 5 x (16 + 2) + 10 + 3
        assert_eq!(f.recommended.as_deref(), Some("103"));
        assert!(f.summary.contains("5 replica(s) x (16 + 2)"), "{f:?}");
        assert_eq!(report.status, Status::Fail);
    }

    #[test]
    fn guard_violations_fail_and_ignoring_counts_them_out() {
        let violations = [Violation {
            object: "table users".to_owned(),
            problem: "row level security is not enabled".to_owned(),
        }];
        let mut facts = defaults();
        facts.settings.insert(
            "fsync".to_owned(),
            setting("fsync", "off", None, "command line").1,
        );
        let report = assess(&facts, &violations, &options());
        assert_eq!(report.status, Status::Fail);
        let iso = finding(&report, "isolation");
        assert_eq!(iso.status, Status::Fail);
        assert!(iso.summary.contains("table users"), "{iso:?}");
        assert_eq!(finding(&report, "fsync").status, Status::Fail);
        let ignored = assess(
            &facts,
            &violations,
            &DoctorOptions {
                ignore: vec!["fsync".to_owned(), "isolation".to_owned()],
                ..options()
            },
        );
        assert_eq!(ignored.status, Status::Warn);
        assert!(finding(&ignored, "fsync").ignored);
        assert_eq!(ignored.count(Status::Fail), 0);
    }

    #[test]
    fn citus_adds_its_own_checks() {
        let mut facts = defaults();
        facts
            .extensions
            .insert("citus".to_owned(), "13.2-1".to_owned());
        let report = assess(&facts, &[], &options());
        assert_eq!(report.server.citus.as_deref(), Some("13.2-1"));
        assert_eq!(finding(&report, "citus").status, Status::Info);
        assert_eq!(
            finding(&report, "max_prepared_transactions").status,
            Status::Warn
        );
    }

    #[test]
    fn a_report_serializes_with_its_documented_fields() {
        let report = assess(&defaults(), &[], &options());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["status"], "warn");
        assert_eq!(json["memory"]["source"], "effective_cache_size");
        assert_eq!(json["connections"]["required"], 31);
        let first = &json["findings"][0];
        for field in ["check", "status", "summary", "why", "ignored"] {
            assert!(first.get(field).is_some(), "{field} in {first}");
        }
    }
}
