//! `tenantry doctor` as an operator runs it (the real binary, as the
//! service's role) on the throwaway test cluster, which runs PostgreSQL's
//! defaults (plus fsync off: it is a test cluster); and `scripts/pg.sh
//! tune-plan`, the dev cluster's tuning, against the formula in
//! `tenantry_core::tuning`.

use std::path::Path;
use std::process::Command;

use diesel_async::SimpleAsyncConnection;
use serde_json::Value;
use tenantry_core::tuning::{Machine, Plan, Pools, Profile};
use tenantry_tests::{TestDb, tenantry_bin};

/// Runs `tenantry doctor ARGS` against `db`: (exit code, stdout, stderr).
fn doctor(db: &TestDb, args: &[&str], settings: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(tenantry_bin())
        .arg("doctor")
        .args(args)
        .envs(db.binary_env())
        .envs(settings.iter().copied())
        .env_remove("TENANTRY_ENV")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(db: &TestDb, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = doctor(db, &all, &[]);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("doctor --format json: {e}\n{stdout}\n{stderr}"));
    (code, report)
}

fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding: {report:#}"))
}

/// The test cluster's durability shortcuts (PG_FAST=1): not what these
/// tests are about.
const TEST_CLUSTER: [&str; 6] = [
    "--ignore",
    "fsync",
    "--ignore",
    "full_page_writes",
    "--ignore",
    "synchronous_commit",
];

#[tokio::test]
async fn postgres_defaults_are_flagged_with_the_values_to_use() {
    let test_db = TestDb::new().await;
    let (code, report) = json(&test_db, &[]);
    // The report's documented fields.
    for field in ["status", "server", "memory", "connections", "findings"] {
        assert!(report.get(field).is_some(), "{field}: {report:#}");
    }
    assert!(report["server"]["version_num"].as_i64().unwrap() >= 150_000);
    assert_eq!(report["memory"]["source"], "effective_cache_size");
    assert!(
        report["memory"]["note"]
            .as_str()
            .unwrap()
            .contains("assumed"),
        "{report:#}"
    );
    for f in report["findings"].as_array().unwrap() {
        for field in ["check", "status", "summary", "why", "ignored"] {
            assert!(f.get(field).is_some(), "{field} in {f}");
        }
        assert!(
            ["ok", "info", "warn", "fail"].contains(&f["status"].as_str().unwrap()),
            "{f}"
        );
    }
    // fsync is off on a test cluster: a failing check, exit 1.
    assert_eq!(finding(&report, "fsync")["status"], "fail");
    assert_eq!(report["status"], "fail");
    assert_eq!(code, 1);

    // PostgreSQL's 128MB of shared_buffers, with a value computed from the
    // memory assumed from effective_cache_size (its 4GB default: 5460 MiB).
    let sb = finding(&report, "shared_buffers");
    assert_eq!(sb["status"], "warn", "{sb}");
    assert_eq!(sb["current"], "128MB");
    assert_eq!(sb["recommended"], "1365MB");
    assert!(
        sb["fix"]
            .as_str()
            .unwrap()
            .contains("ALTER SYSTEM SET shared_buffers = '1365MB'"),
        "{sb}"
    );
    // The bgwriter's 100 pages per 200 ms.
    let bg = finding(&report, "bgwriter");
    assert_eq!(bg["status"], "warn", "{bg}");
    assert!(
        bg["recommended"]
            .as_str()
            .unwrap()
            .contains("bgwriter_lru_maxpages = 1000"),
        "{bg}"
    );
    for check in ["max_wal_size", "random_page_cost", "wal_compression"] {
        assert_eq!(finding(&report, check)["status"], "warn", "{check}");
    }
    // The roles and RLS of the migrated schema pass, as `policies check`.
    assert_eq!(finding(&report, "isolation")["status"], "ok");
    // The plain test cluster's 200 connections cover the pools; Citus's
    // test nodes run 400, over 4x what they need: a warning.
    let expected = if tenantry_tests::citus() {
        "warn"
    } else {
        "ok"
    };
    assert_eq!(finding(&report, "max_connections")["status"], expected);
    if tenantry_tests::citus() {
        assert!(report["server"]["citus"].is_string(), "{report:#}");
        assert_eq!(finding(&report, "citus")["status"], "info");
        // 400 prepared transactions for 400 connections.
        assert_eq!(
            finding(&report, "max_prepared_transactions")["status"],
            "ok"
        );
    }
    // The pools of config/default.toml: 1 x (16 + 2) + 10 + 3.
    assert_eq!(report["connections"]["required"], 31);
}

#[tokio::test]
async fn warnings_pass_unless_strict_and_text_says_what_to_set() {
    let test_db = TestDb::new().await;
    let (code, report) = json(&test_db, &TEST_CLUSTER);
    assert_eq!(report["status"], "warn", "{report:#}");
    assert_eq!(finding(&report, "fsync")["ignored"], true);
    assert_eq!(code, 0, "warnings alone pass");

    let mut strict = TEST_CLUSTER.to_vec();
    strict.push("--strict");
    let (code, stdout, stderr) = doctor(&test_db, &strict, &[]);
    assert_eq!(code, 1, "--strict fails on warnings\n{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("warn  shared_buffers: shared_buffers = 128MB")),
        "{stdout}"
    );
    assert!(
        stdout.contains("      use: 1365MB") && stdout.contains("      why: "),
        "{stdout}"
    );
    assert!(stdout.contains("fail (ignored) fsync"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("doctor: warn: 0 fail,"),
        "{stdout}"
    );
}

#[tokio::test]
async fn more_replicas_than_max_connections_allows_fail() {
    let test_db = TestDb::new().await;
    // 30 x (16 + 2) + 13 = 553, more than the test cluster's 200 (Citus: 400).
    let mut args = TEST_CLUSTER.to_vec();
    args.extend(["--replicas", "30"]);
    let (code, report) = json(&test_db, &args);
    let f = finding(&report, "max_connections");
    assert_eq!(f["status"], "fail", "{f}");
    assert_eq!(f["recommended"], "553");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("30 replica(s) x (16 + 2) + 10 headroom + 3 reserved = 553"),
        "{f}"
    );
    assert_eq!(report["connections"]["replicas"], 30);
    assert_eq!(code, 1);
}

#[tokio::test]
async fn a_broken_policy_fails_the_isolation_check() {
    let test_db = TestDb::new().await;
    // As the owner, as a careless migration would.
    test_db
        .owner_conn()
        .await
        .batch_execute("ALTER TABLE clusters NO FORCE ROW LEVEL SECURITY")
        .await
        .unwrap();
    let (code, report) = json(&test_db, &TEST_CLUSTER);
    let broken: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "isolation" && f["status"] == "fail")
        .collect();
    assert!(
        broken.iter().any(|f| {
            let s = f["summary"].as_str().unwrap();
            s.contains("table clusters") && s.contains("not forced")
        }),
        "{report:#}"
    );
    assert_eq!(report["status"], "fail");
    assert_eq!(code, 1);
}

#[tokio::test]
async fn an_unreachable_database_exits_2() {
    let test_db = TestDb::new().await;
    let (code, stdout, stderr) = doctor(
        &test_db,
        &[],
        &[
            (
                "TENANTRY__DATABASE__URL",
                "postgres://tenantry_app:x@127.0.0.1:1/tenantry",
            ),
            ("TENANTRY__DATABASE__CONNECT_TIMEOUT", "2s"),
        ],
    );
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("doctor: cannot check the database"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[tokio::test]
async fn a_bad_memory_size_is_a_usage_error() {
    let test_db = TestDb::new().await;
    let (code, _, stderr) = doctor(&test_db, &["--server-memory", "lots"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a memory size"), "{stderr}");
}

// --- scripts/pg.sh tune-plan: the dev cluster's settings -----------------------

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn tune_plan(args: &[&str]) -> Vec<(String, String)> {
    let output = Command::new(repo().join("scripts/pg.sh"))
        .arg("tune-plan")
        .args(args)
        .env_remove("TENANTRY__DATABASE__MAX_CONNECTIONS")
        .env_remove("TENANTRY__DATABASE__ADMIN_CONNECTIONS")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|l| {
            let (name, value) = l.split_once(" = ").unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn expected(plan: &Plan) -> Vec<(String, String)> {
    plan.settings()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect()
}

/// `[database] KEY` of config/default.toml.
fn configured(key: &str) -> u32 {
    let text = std::fs::read_to_string(repo().join("config/default.toml")).unwrap();
    let database = text.split("\n[database]\n").nth(1).unwrap();
    database
        .lines()
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_dev_cluster_tuning_is_the_core_formula_for_any_machine() {
    for (memory_mib, cpus, replicas, profile) in [
        (2048_u64, 1_u32, 1_u32, "development"),
        (8192, 4, 2, "production"),
        (24_105, 2, 2, "development"),
        (65_536, 16, 3, "production"),
        (262_144, 64, 10, "development"),
    ] {
        let shell = tune_plan(&[
            "--memory-mib",
            &memory_mib.to_string(),
            "--cpus",
            &cpus.to_string(),
            "--replicas",
            &replicas.to_string(),
            "--app-connections",
            "16",
            "--admin-connections",
            "2",
            "--reserved",
            "3",
            "--profile",
            profile,
        ]);
        let plan = Plan::new(
            Machine { memory_mib, cpus },
            Pools {
                app: 16,
                admin: 2,
                replicas,
                reserved: 3,
            },
            if profile == "production" {
                Profile::Production
            } else {
                Profile::Development
            },
        );
        assert_eq!(shell, expected(&plan), "{memory_mib} MiB, {cpus} cpus");
    }
}

#[test]
fn the_dev_cluster_is_sized_for_the_configured_pools_and_this_machine() {
    // No pools given: config/default.toml's, for 2 replicas (a local
    // rolling deploy); no machine given: this one's.
    let shell = tune_plan(&["--memory-mib", "4096", "--cpus", "2"]);
    let plan = Plan::new(
        Machine {
            memory_mib: 4096,
            cpus: 2,
        },
        Pools {
            app: configured("max_connections"),
            admin: configured("admin_connections"),
            replicas: 2,
            reserved: 3,
        },
        Profile::Development,
    );
    assert_eq!(shell, expected(&plan));
    let here = tune_plan(&[]);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_mib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .unwrap()
        / 1024;
    let shared_buffers = &here.iter().find(|(n, _)| n == "shared_buffers").unwrap().1;
    let mib: u64 = shared_buffers.trim_end_matches("MB").parse().unwrap();
    // A quarter of the memory (or the cgroup's smaller limit), at most 2 GB.
    assert!(mib <= (total_mib / 4).clamp(128, 2048), "{shared_buffers}");
    assert!(mib >= 128, "{shared_buffers}");
    let cpus = std::thread::available_parallelism().unwrap().get();
    let workers = &here
        .iter()
        .find(|(n, _)| n == "max_parallel_workers")
        .unwrap()
        .1;
    assert!(workers.parse::<usize>().unwrap() <= cpus, "{workers}");
}

#[test]
fn tune_plan_refuses_what_is_not_a_number() {
    let output = Command::new(repo().join("scripts/pg.sh"))
        .args(["tune-plan", "--memory-mib", "lots"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not a number"),
        "{output:?}"
    );
}
