//! PostgreSQL settings for a machine and the service's pools: the one
//! formula behind the dev cluster `scripts/pg.sh up` tunes (the script
//! mirrors it in shell; a test compares the two) and behind the values
//! `tenantry doctor` recommends. Pure: the caller says how much memory and
//! how many cores there are. DEPLOYMENT.md explains each value.

/// Who the settings are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A developer's machine, shared with builds and editors: the cluster
    /// takes less of it (shared_buffers capped at 2 GB, half the memory
    /// counted as page cache).
    Development,
    /// A database server that runs PostgreSQL and little else.
    Production,
}

/// The machine (or container) PostgreSQL runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// Memory in MiB (the cgroup's limit when smaller than the RAM).
    pub memory_mib: u64,
    /// Cores PostgreSQL may use.
    pub cpus: u32,
}

/// Connections beyond the pools: a migration job, CLI commands, the
/// sweeper's dedicated session, psql, monitoring.
pub const HEADROOM_CONNECTIONS: u32 = 10;

/// The service's connection pools (`[database]`) and how many replicas run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pools {
    /// `database.max_connections`: the tenant-work pool of one replica.
    pub app: u32,
    /// `database.admin_connections`: the admin pool of one replica.
    pub admin: u32,
    /// Replicas of `tenantry serve` (each with both pools).
    pub replicas: u32,
    /// Slots the server keeps for superusers (`superuser_reserved_connections`
    /// plus, from PostgreSQL 16, `reserved_connections`).
    pub reserved: u32,
}

impl Pools {
    /// The smallest `max_connections` with which every replica's pools can
    /// fill and a migration, CLI command or psql still gets in:
    /// `replicas × (app + admin) + HEADROOM_CONNECTIONS + reserved`.
    #[must_use]
    pub fn required_connections(&self) -> u32 {
        self.replicas
            .max(1)
            .saturating_mul(self.app.saturating_add(self.admin))
            .saturating_add(HEADROOM_CONNECTIONS)
            .saturating_add(self.reserved)
    }
}

/// The settings for one machine, pool sizing and profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub shared_buffers_mib: u64,
    pub effective_cache_size_mib: u64,
    pub work_mem_mib: u64,
    pub maintenance_work_mem_mib: u64,
    pub max_connections: u32,
    pub bgwriter_delay_ms: u32,
    pub bgwriter_lru_maxpages: u32,
    /// Written as is (`4.0`).
    pub bgwriter_lru_multiplier: &'static str,
    pub max_wal_size_mib: u64,
    pub min_wal_size_mib: u64,
    pub checkpoint_timeout_min: u32,
    pub checkpoint_completion_target: &'static str,
    pub wal_compression: &'static str,
    pub random_page_cost: &'static str,
    pub effective_io_concurrency: u32,
    pub idle_in_transaction_session_timeout_s: u32,
    pub track_io_timing: bool,
    pub max_worker_processes: u32,
    pub max_parallel_workers: u32,
    pub max_parallel_workers_per_gather: u32,
    pub max_parallel_maintenance_workers: u32,
}

/// The bgwriter writes at least this fast at most (bytes per second) in a
/// plan: 1000 pages of 8 kB every 50 ms is 160 MB/s; PostgreSQL's default
/// (100 pages every 200 ms) is 4 MB/s.
pub const BGWRITER_MIN_RATE: u64 = 64 * 1024 * 1024;

fn clamp(v: u64, lo: u64, hi: u64) -> u64 {
    v.max(lo).min(hi.max(lo))
}

impl Plan {
    /// The formula (integer MiB arithmetic, as the shell does it).
    #[must_use]
    pub fn new(machine: Machine, pools: Pools, profile: Profile) -> Self {
        let mem = machine.memory_mib;
        let cpus = machine.cpus.max(1);
        let dev = profile == Profile::Development;
        let shared_buffers_mib = clamp(mem / 4, 128, if dev { 2048 } else { u64::MAX });
        let effective_cache_size_mib = if dev { mem / 2 } else { mem / 4 * 3 }.max(256);
        let maintenance_work_mem_mib = clamp(mem / 16, 64, if dev { 512 } else { 2048 });
        let max_connections = pools.required_connections();
        let work_mem_mib = clamp(
            mem.saturating_sub(shared_buffers_mib) / (u64::from(max_connections) * 4),
            4,
            64,
        );
        let max_wal_size_mib = if dev { 2048 } else { 4096 };
        let half = (cpus / 2).max(1);
        Self {
            shared_buffers_mib,
            effective_cache_size_mib,
            work_mem_mib,
            maintenance_work_mem_mib,
            max_connections,
            bgwriter_delay_ms: 50,
            bgwriter_lru_maxpages: 1000,
            bgwriter_lru_multiplier: "4.0",
            max_wal_size_mib,
            min_wal_size_mib: max_wal_size_mib / 4,
            checkpoint_timeout_min: 15,
            checkpoint_completion_target: "0.9",
            wal_compression: "on",
            random_page_cost: "1.1",
            effective_io_concurrency: 200,
            idle_in_transaction_session_timeout_s: if dev { 300 } else { 60 },
            track_io_timing: true,
            max_worker_processes: cpus.max(8),
            max_parallel_workers: cpus,
            max_parallel_workers_per_gather: half.min(4),
            max_parallel_maintenance_workers: half.min(4),
        }
    }

    /// `name = value` pairs in postgresql.conf syntax, in a fixed order
    /// (what `scripts/pg.sh tune-plan` prints, line for line).
    #[must_use]
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("shared_buffers", format!("{}MB", self.shared_buffers_mib)),
            (
                "effective_cache_size",
                format!("{}MB", self.effective_cache_size_mib),
            ),
            ("work_mem", format!("{}MB", self.work_mem_mib)),
            (
                "maintenance_work_mem",
                format!("{}MB", self.maintenance_work_mem_mib),
            ),
            ("max_connections", self.max_connections.to_string()),
            ("bgwriter_delay", format!("{}ms", self.bgwriter_delay_ms)),
            (
                "bgwriter_lru_maxpages",
                self.bgwriter_lru_maxpages.to_string(),
            ),
            (
                "bgwriter_lru_multiplier",
                self.bgwriter_lru_multiplier.to_owned(),
            ),
            ("max_wal_size", format!("{}MB", self.max_wal_size_mib)),
            ("min_wal_size", format!("{}MB", self.min_wal_size_mib)),
            (
                "checkpoint_timeout",
                format!("{}min", self.checkpoint_timeout_min),
            ),
            (
                "checkpoint_completion_target",
                self.checkpoint_completion_target.to_owned(),
            ),
            ("wal_compression", self.wal_compression.to_owned()),
            ("random_page_cost", self.random_page_cost.to_owned()),
            (
                "effective_io_concurrency",
                self.effective_io_concurrency.to_string(),
            ),
            (
                "idle_in_transaction_session_timeout",
                format!("{}s", self.idle_in_transaction_session_timeout_s),
            ),
            (
                "track_io_timing",
                if self.track_io_timing { "on" } else { "off" }.to_owned(),
            ),
            (
                "max_worker_processes",
                self.max_worker_processes.to_string(),
            ),
            (
                "max_parallel_workers",
                self.max_parallel_workers.to_string(),
            ),
            (
                "max_parallel_workers_per_gather",
                self.max_parallel_workers_per_gather.to_string(),
            ),
            (
                "max_parallel_maintenance_workers",
                self.max_parallel_maintenance_workers.to_string(),
            ),
        ]
    }
}

/// The memory a server has, assumed from its `effective_cache_size` when
/// nothing else says (the production plan sets that to ¾ of the memory).
#[must_use]
pub fn memory_from_effective_cache_size(effective_cache_size_mib: u64) -> u64 {
    effective_cache_size_mib / 3 * 4
}

/// The most the bgwriter can write per second: `maxpages` blocks every
/// `delay_ms` (0 pages: it never cleans).
#[must_use]
pub fn bgwriter_rate(delay_ms: u64, maxpages: u64, block_size: u64) -> u64 {
    if delay_ms == 0 {
        return u64::MAX;
    }
    maxpages.saturating_mul(block_size).saturating_mul(1000) / delay_ms
}

/// A size in bytes from `pg_settings` (`setting` in `unit`: `8kB`, `kB`,
/// `MB`, `B`, or none). `None` for what is not a size (`-1` included).
#[must_use]
pub fn pg_size_bytes(setting: &str, unit: Option<&str>) -> Option<u64> {
    let value: u64 = setting.trim().parse().ok()?;
    let unit = unit.unwrap_or("B").trim();
    let (count, base) = match unit.find(|c: char| c.is_ascii_alphabetic()) {
        Some(0) | None => (1, unit),
        Some(i) => (unit[..i].parse::<u64>().ok()?, &unit[i..]),
    };
    let scale: u64 = match base {
        "" | "B" => 1,
        "kB" => 1024,
        "MB" => 1024 * 1024,
        "GB" => 1024 * 1024 * 1024,
        "TB" => 1024 * 1024 * 1024 * 1024,
        _ => return None,
    };
    value.checked_mul(count)?.checked_mul(scale)
}

/// A duration in milliseconds from `pg_settings` (`setting` in `unit`:
/// `us`, `ms`, `s`, `min`, `h`, `d`). `None` for what is not a duration.
#[must_use]
pub fn pg_duration_ms(setting: &str, unit: Option<&str>) -> Option<u64> {
    let value: i64 = setting.trim().parse().ok()?;
    let value = u64::try_from(value).ok()?;
    Some(match unit.unwrap_or("ms").trim() {
        "us" => value / 1000,
        "ms" => value,
        "s" => value.checked_mul(1000)?,
        "min" => value.checked_mul(60_000)?,
        "h" => value.checked_mul(3_600_000)?,
        "d" => value.checked_mul(86_400_000)?,
        _ => return None,
    })
}

/// A memory size as people write it (`16GB`, `16GiB`, `16G`, `512MB`,
/// `512M`; binary units either way), in MiB. `None` for anything else,
/// or less than 1 MiB.
#[must_use]
pub fn parse_memory_mib(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "m" | "mb" | "mib" => 1,
        "g" | "gb" | "gib" => 1024,
        "t" | "tb" | "tib" => 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(scale).filter(|mib| *mib > 0)
}

/// A size for people and for postgresql.conf: whole GB when it is one,
/// else whole MB, else kB.
#[must_use]
pub fn format_size(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = KB * 1024;
    const GB: u64 = MB * 1024;
    if bytes >= GB && bytes.is_multiple_of(GB) {
        format!("{}GB", bytes / GB)
    } else if bytes >= MB {
        format!("{}MB", bytes / MB)
    } else {
        format!("{}kB", bytes / KB)
    }
}

/// A duration for people and for postgresql.conf.
#[must_use]
pub fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        "0".to_owned()
    } else if ms.is_multiple_of(60_000) {
        format!("{}min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOLS: Pools = Pools {
        app: 16,
        admin: 2,
        replicas: 1,
        reserved: 3,
    };

    fn get(plan: &Plan, name: &str) -> String {
        plan.settings()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .unwrap()
    }

    #[test]
    fn connections_cover_every_replicas_pools_plus_headroom_and_reserved() {
        assert_eq!(POOLS.required_connections(), 16 + 2 + 10 + 3);
        let three = Pools {
            replicas: 3,
            ..POOLS
        };
        assert_eq!(three.required_connections(), 3 * 18 + 10 + 3);
        // Zero replicas is read as one: a server always has a service.
        let zero = Pools {
            replicas: 0,
            ..POOLS
        };
        assert_eq!(zero.required_connections(), 31);
    }

    #[test]
    fn shared_buffers_is_a_quarter_of_memory_capped_on_a_dev_box() {
        let big = Machine {
            memory_mib: 64 * 1024,
            cpus: 16,
        };
        assert_eq!(
            Plan::new(big, POOLS, Profile::Production).shared_buffers_mib,
            16 * 1024
        );
        assert_eq!(
            Plan::new(big, POOLS, Profile::Development).shared_buffers_mib,
            2048
        );
        let small = Machine {
            memory_mib: 256,
            cpus: 1,
        };
        // Never below PostgreSQL's own default.
        assert_eq!(
            Plan::new(small, POOLS, Profile::Production).shared_buffers_mib,
            128
        );
    }

    #[test]
    fn an_8_gb_4_core_server() {
        let plan = Plan::new(
            Machine {
                memory_mib: 8192,
                cpus: 4,
            },
            Pools {
                replicas: 2,
                ..POOLS
            },
            Profile::Production,
        );
        assert_eq!(get(&plan, "shared_buffers"), "2048MB");
        assert_eq!(get(&plan, "effective_cache_size"), "6144MB");
        assert_eq!(get(&plan, "maintenance_work_mem"), "512MB");
        assert_eq!(get(&plan, "max_connections"), "49");
        // (8192 - 2048) / (49 * 4) = 31
        assert_eq!(get(&plan, "work_mem"), "31MB");
        assert_eq!(get(&plan, "bgwriter_delay"), "50ms");
        assert_eq!(get(&plan, "bgwriter_lru_maxpages"), "1000");
        assert_eq!(get(&plan, "max_wal_size"), "4096MB");
        assert_eq!(get(&plan, "min_wal_size"), "1024MB");
        assert_eq!(get(&plan, "checkpoint_timeout"), "15min");
        assert_eq!(get(&plan, "idle_in_transaction_session_timeout"), "60s");
        assert_eq!(get(&plan, "max_worker_processes"), "8");
        assert_eq!(get(&plan, "max_parallel_workers_per_gather"), "2");
        // The plan's bgwriter keeps well ahead of the default's 4 MB/s.
        assert!(bgwriter_rate(50, 1000, 8192) >= BGWRITER_MIN_RATE);
        assert!(bgwriter_rate(200, 100, 8192) < BGWRITER_MIN_RATE);
    }

    #[test]
    fn work_mem_stays_between_4_and_64_mb() {
        let tiny = Plan::new(
            Machine {
                memory_mib: 512,
                cpus: 1,
            },
            Pools {
                replicas: 10,
                ..POOLS
            },
            Profile::Production,
        );
        assert_eq!(tiny.work_mem_mib, 4);
        let huge = Plan::new(
            Machine {
                memory_mib: 512 * 1024,
                cpus: 64,
            },
            POOLS,
            Profile::Production,
        );
        assert_eq!(huge.work_mem_mib, 64);
        assert_eq!(huge.maintenance_work_mem_mib, 2048);
        assert_eq!(huge.max_parallel_workers_per_gather, 4);
    }

    #[test]
    fn memory_is_assumed_back_from_effective_cache_size() {
        let plan = Plan::new(
            Machine {
                memory_mib: 16 * 1024,
                cpus: 4,
            },
            POOLS,
            Profile::Production,
        );
        assert_eq!(
            memory_from_effective_cache_size(plan.effective_cache_size_mib),
            16 * 1024
        );
    }

    #[test]
    fn pg_settings_units_are_read() {
        assert_eq!(pg_size_bytes("16384", Some("8kB")), Some(128 * 1024 * 1024));
        assert_eq!(pg_size_bytes("4096", Some("kB")), Some(4 * 1024 * 1024));
        assert_eq!(pg_size_bytes("1024", Some("MB")), Some(1 << 30));
        assert_eq!(pg_size_bytes("8192", None), Some(8192));
        assert_eq!(pg_size_bytes("-1", Some("kB")), None);
        assert_eq!(pg_size_bytes("x", Some("kB")), None);
        assert_eq!(pg_duration_ms("200", Some("ms")), Some(200));
        assert_eq!(pg_duration_ms("300", Some("s")), Some(300_000));
        assert_eq!(pg_duration_ms("5", Some("min")), Some(300_000));
        assert_eq!(pg_duration_ms("-1", Some("ms")), None);
        assert_eq!(format_size(128 * 1024 * 1024), "128MB");
        assert_eq!(format_size(2 << 30), "2GB");
        assert_eq!(format_size(64 * 1024), "64kB");
        assert_eq!(format_duration_ms(900_000), "15min");
        assert_eq!(format_duration_ms(10_000), "10s");
        assert_eq!(format_duration_ms(50), "50ms");
        assert_eq!(format_duration_ms(0), "0");
        assert_eq!(parse_memory_mib("16GB"), Some(16 * 1024));
        assert_eq!(parse_memory_mib("16GiB"), Some(16 * 1024));
        assert_eq!(parse_memory_mib("512M"), Some(512));
        assert_eq!(parse_memory_mib("1 TB"), Some(1024 * 1024));
        assert_eq!(parse_memory_mib("0GB"), None);
        assert_eq!(parse_memory_mib("16"), None);
        assert_eq!(parse_memory_mib("lots"), None);
        assert_eq!(parse_memory_mib("16kB"), None);
    }
}
