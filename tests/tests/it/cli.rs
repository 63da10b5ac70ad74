//! The command line as an operator meets it (issue #14): completions and
//! man pages from the real binary, and progress on stderr, as plain lines
//! when stderr is a pipe, from `tenants import` (which streams its input)
//! and `sweep --once`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_db::{DbError, ScopedFutureExt};
use tenantry_tests::{TestApp, tenantry_bin};

/// Every command of the tree, as `tenantry help` would list them.
const TOP_LEVEL: [&str; 11] = [
    "serve",
    "migrate",
    "policies",
    "doctor",
    "token",
    "sweep",
    "quotas",
    "tenants",
    "usage",
    "completions",
    "man",
];
const NESTED: [(&str, &str); 6] = [
    ("policies", "check"),
    ("quotas", "reconcile"),
    ("tenants", "create"),
    ("tenants", "import"),
    ("usage", "sample"),
    ("usage", "export"),
];

/// The binary with no database and a settings environment that cannot
/// load: completions and man pages must not need either.
fn offline(args: &[&str]) -> (String, String) {
    let output = Command::new(tenantry_bin())
        .args(args)
        .env("TENANTRY_ENV", "no-such-environment")
        .env("TENANTRY_CONFIG_DIR", "/nonexistent")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "{args:?}: {stderr}");
    (stdout, stderr)
}

#[test]
fn completion_scripts_name_every_subcommand_without_any_settings() {
    let (bash, _) = offline(&["completions", "bash"]);
    assert!(bash.contains("complete -F _tenantry"), "{bash}");
    for name in TOP_LEVEL.iter().chain(NESTED.iter().map(|(_, n)| n)) {
        assert!(bash.contains(name), "bash completion lacks {name}");
    }
    // Flags complete too: the nested import's own.
    assert!(bash.contains("--progress-every"), "{bash}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let (script, _) = offline(&["completions", shell]);
        assert!(script.contains("tenants"), "{shell}: {script}");
    }
    let refused = Command::new(tenantry_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "clap's usage error");
}

#[test]
fn the_man_page_renders_and_names_every_subcommand() {
    let (page, _) = offline(&["man"]);
    assert!(page.contains(".TH tenantry 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for name in TOP_LEVEL {
        assert!(
            page.contains(&format!("tenantry\\-{name}(1)")),
            "{name} missing from the man page"
        );
    }
    // One page per command, nested ones included, each a roff page with
    // its examples.
    let dir = std::env::temp_dir().join(format!("tenantry-man-{}", uuid::Uuid::new_v4()));
    let (_, stderr) = offline(&["man", "--out", dir.to_str().unwrap()]);
    assert!(stderr.contains("wrote 18 man pages"), "{stderr}");
    let mut names: Vec<String> = TOP_LEVEL.iter().map(|n| format!("tenantry-{n}")).collect();
    names.extend(NESTED.iter().map(|(p, n)| format!("tenantry-{p}-{n}")));
    names.push("tenantry".to_owned());
    for name in names {
        let page = std::fs::read_to_string(dir.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("{name}.1: {e}"));
        assert!(page.contains(&format!(".TH {name} 1")), "{name}: {page}");
        assert!(page.contains("Example"), "{name}: no example");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Reads `child`'s stderr on a thread, a line at a time, so the test can
/// wait for a line while the child still runs.
fn lines_of(stderr: std::process::ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (at most 30 s) for a line equal to `wanted`; every line seen.
fn wait_for(lines: &mpsc::Receiver<String>, wanted: &str, seen: &mut Vec<String>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = line == wanted;
                seen.push(line);
                if done {
                    return;
                }
            }
            Err(e) => panic!("no {wanted:?} on stderr ({e}); saw {seen:?}"),
        }
    }
}

fn row(table: &str, row: &Value) -> String {
    format!("{}\n", json!({"table": table, "row": row}))
}

fn event(n: usize) -> Value {
    json!({"tenant_id": uuid::Uuid::now_v7(), "id": uuid::Uuid::now_v7(), "kind": "cluster.created",
           "actor": "test-user", "subject": null, "data": {"n": n}, "at": "2024-01-01T00:00:00+00:00"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_streams_its_input_and_reports_progress_per_table_in_plain_lines() {
    let app = TestApp::spawn().await;
    let mut child = Command::new(tenantry_bin())
        .args([
            "tenants",
            "import",
            "--file",
            "-",
            "--slug",
            "streamed",
            "--name",
            "Streamed",
            "--progress-every",
            "50",
        ])
        .envs(app.test_db.binary_env())
        .env_remove("TENANTRY_ENV")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = lines_of(child.stderr.take().unwrap());
    let cluster = uuid::Uuid::now_v7();
    let mut head = String::new();
    for i in 0..3 {
        head.push_str(&row(
            "users",
            &json!({"id": uuid::Uuid::now_v7(), "email": format!("u{i}@example.com"), "name": ""}),
        ));
    }
    head.push_str(&row(
        "clusters",
        &json!({"id": cluster, "name": "main", "region": "eu-west"}),
    ));
    for i in 0..2 {
        head.push_str(&row(
            "instances",
            &json!({"id": uuid::Uuid::now_v7(), "cluster_id": cluster, "name": format!("vm-{i}"),
                    "cpu_cores": 1, "memory_gb": 1}),
        ));
    }
    for i in 0..120 {
        head.push_str(&row("events", &event(i)));
    }
    stdin.write_all(head.as_bytes()).unwrap();
    stdin.flush().unwrap();

    // The input is still open and has no trailer: a command that read the
    // whole file first could not have written (or reported) any row yet.
    let mut seen = Vec::new();
    wait_for(&lines, "imported 100 rows of events", &mut seen);
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited early: {seen:?}"
    );

    let mut tail = String::new();
    for i in 120..150 {
        tail.push_str(&row("events", &event(i)));
    }
    tail.push_str(&format!("{}\n", json!({"end": true, "rows": 156})));
    stdin.write_all(tail.as_bytes()).unwrap();
    drop(stdin);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    seen.extend(lines.iter());
    assert!(output.status.success(), "{seen:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["rows"],
        json!({"users": 3, "clusters": 1, "instances": 2, "events": 150}),
        "{report}"
    );
    let slug = report["tenant"]["slug"].as_str().unwrap();
    // Log lines (tracing) may come between; the progress lines are these.
    let progress: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("imported ") || l.starts_with("committed: "))
        .collect();
    assert_eq!(
        progress,
        [
            "imported 3 rows of users",
            "imported 1 rows of clusters",
            "imported 2 rows of instances",
            "imported 50 rows of events",
            "imported 100 rows of events",
            "imported 150 rows of events",
            format!("committed: 156 rows into tenant {slug}").as_str(),
        ],
        "plain lines, in order, when stderr is a pipe"
    );
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants/streamed", None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_refused_midstream_leaves_nothing_and_says_where() {
    let app = TestApp::spawn().await;
    let mut text: String = (0..60).map(|i| row("events", &event(i))).collect();
    text.push_str("{\"table\": \"events\", \"row\": \n");
    let file = std::env::temp_dir().join(format!("tenantry-cli-{}.ndjson", uuid::Uuid::new_v4()));
    std::fs::write(&file, &text).unwrap();
    let (ok, stdout, stderr) = tenantry_tests::run_tenantry(
        &app.test_db,
        &[
            "tenants",
            "import",
            "--file",
            file.to_str().unwrap(),
            "--slug",
            "half",
            "--name",
            "Half",
            "--progress-every",
            "50",
        ],
    );
    std::fs::remove_file(&file).unwrap();
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("imported 50 rows of events"), "{stderr}");
    assert!(
        stderr.contains("refused; nothing was imported: line 61: not JSON"),
        "{stderr}"
    );
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants/half", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the transaction rolled back");
}

/// A deleted tenant with `events` rows, past a 1 s retention period once
/// a second has passed.
async fn deleted_tenant(app: &TestApp, slug: &str, events: i64) -> TenantId {
    let tenant = app.create_tenant(slug).await;
    app.db
        .platform()
        .provision(tenant, |conn| {
            async move {
                tenantry_tests::insert_events(conn, tenant, events).await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    let (status, body) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{tenant}/delete"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tenant
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_once_reports_each_tenant_on_stderr_and_its_report_on_stdout() {
    let app = TestApp::spawn().await;
    let first = deleted_tenant(&app, "doomed-1", 30).await;
    let second = deleted_tenant(&app, "doomed-2", 30).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (ok, stdout, stderr) = tenantry_tests::run_tenantry_with(
        &app.test_db,
        &["sweep", "--once"],
        &[
            ("TENANTRY__RETENTION__PERIOD", "1s"),
            ("TENANTRY__RETENTION__BATCH_SIZE", "10"),
        ],
    );
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["purged"].as_array().unwrap().len(), 2, "{report}");
    let removed = report["rows_removed"].as_i64().unwrap();
    assert!(removed >= 60, "{report}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("sweep: "))
        .collect();
    assert_eq!(
        lines.first(),
        Some(&"sweep: 2 tenant(s) past their retention period"),
        "{stderr}"
    );
    for tenant in [first, second] {
        let (started, purged) = (
            lines
                .iter()
                .position(|l| l.contains(&format!("{tenant}: sweeping"))),
            lines
                .iter()
                .position(|l| l.contains(&format!("{tenant}: purged, "))),
        );
        assert!(
            matches!((started, purged), (Some(s), Some(p)) if s < p),
            "{tenant}: {stderr}"
        );
        // The first batch of each tenant is reported, 10 rows at a time.
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("{tenant}: 10 rows removed (last batch: 10 of"))),
            "{tenant}: {stderr}"
        );
    }
    assert!(lines.iter().any(|l| l.starts_with("sweep: tenant 1/2 ")));
    assert!(lines.iter().any(|l| l.starts_with("sweep: tenant 2/2 ")));
    assert_eq!(
        lines.last(),
        Some(
            &format!(
                "sweep: done, {removed} rows removed, {} slug(s) released",
                report["slugs_released"]
            )
            .as_str()
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "no terminal drawing on a pipe: {stderr:?}"
    );
}
