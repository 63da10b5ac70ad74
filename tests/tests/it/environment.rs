//! `environment = "production"` (TENANTRY__ENVIRONMENT, which the container
//! image sets): the real binary never generates key material there. A
//! missing signing key, API-key secret or context key is a startup error
//! naming the key, and no file appears; given its keys, it serves. In
//! development the same settings generate the keys (so the refusal is the
//! environment's doing, not a missing directory).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tenantry_api::auth::generate_signing_key_pem;
use tenantry_tests::process::{Scratch, Server};
use tenantry_tests::{TestDb, free_port, tenantry_bin};

/// Runs `tenantry ARGS` in `dir` against `db` with `settings` on top of the
/// test database's; a process still running after 30 s (a server that
/// started although it should not have) is killed and reported as such.
fn run_in(dir: &Path, db: &TestDb, args: &[&str], settings: &[(&str, &str)]) -> Output {
    run_without(dir, db, args, settings, &[])
}

/// [`run_in`], without the test database's settings named in `unset`.
fn run_without(
    dir: &Path,
    db: &TestDb,
    args: &[&str],
    settings: &[(&str, &str)],
    unset: &[&str],
) -> Output {
    let mut child = Command::new(tenantry_bin())
        .args(args)
        .current_dir(dir)
        .envs(
            db.binary_env()
                .into_iter()
                .filter(|(k, _)| !unset.contains(&k.as_str())),
        )
        .env("TENANTRY__SERVER__PORT", free_port().to_string())
        .envs(settings.iter().copied())
        .env_remove("TENANTRY_ENV")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the tenantry binary");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("poll the child").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("reap the child");
            panic!(
                "tenantry {args:?} was still running after 30 s (it should have refused to start): {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    child.wait_with_output().expect("collect the output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn production_serve_without_a_signing_key_exits_naming_it_and_generates_nothing() {
    let db = TestDb::new().await;
    let dir = Scratch::new("prod");
    let key = dir.0.join("signing-key.pem");
    let secret = dir.0.join("api-key-secret");
    let output = run_in(
        &dir.0,
        &db,
        &["serve"],
        &[
            ("TENANTRY__ENVIRONMENT", "production"),
            ("TENANTRY__AUTH__SIGNING_KEY_FILE", key.to_str().unwrap()),
            (
                "TENANTRY__AUTH__API_KEY_SECRET_FILE",
                secret.to_str().unwrap(),
            ),
        ],
    );
    let text = stderr(&output);
    assert!(!output.status.success(), "serve started: {text}");
    assert!(
        text.contains("no signing_key") && text.contains(key.to_str().unwrap()),
        "{text}"
    );
    assert!(text.contains("production"), "{text}");
    assert!(!key.exists(), "production generated a signing key");
    assert!(!secret.exists(), "production generated an API-key secret");
}

#[tokio::test]
async fn production_serve_without_an_api_key_secret_exits_naming_it() {
    let db = TestDb::new().await;
    let dir = Scratch::new("prod");
    let secret = dir.0.join("api-key-secret");
    let pem = generate_signing_key_pem().unwrap();
    let output = run_in(
        &dir.0,
        &db,
        &["serve"],
        &[
            ("TENANTRY__ENVIRONMENT", "production"),
            ("TENANTRY__AUTH__SIGNING_KEY", pem.expose_secret()),
            (
                "TENANTRY__AUTH__API_KEY_SECRET_FILE",
                secret.to_str().unwrap(),
            ),
        ],
    );
    let text = stderr(&output);
    assert!(!output.status.success(), "serve started: {text}");
    assert!(text.contains("no api_key_secret"), "{text}");
    assert!(!secret.exists(), "production generated an API-key secret");
}

#[tokio::test]
async fn production_without_a_context_key_refuses_every_command() {
    let db = TestDb::new().await;
    let dir = Scratch::new("prod");
    let file = dir.0.join("context-key");
    for args in [&["serve"][..], &["migrate"], &["sweep", "--once"]] {
        // Not the test database's inline key: only a file that is absent.
        let output = run_without(
            &dir.0,
            &db,
            args,
            &[
                ("TENANTRY__ENVIRONMENT", "production"),
                (
                    "TENANTRY__DATABASE__CONTEXT_KEY_FILE",
                    file.to_str().unwrap(),
                ),
            ],
            &["TENANTRY__DATABASE__CONTEXT_KEY"],
        );
        let text = stderr(&output);
        assert!(!output.status.success(), "{args:?} ran: {text}");
        assert!(text.contains("no context_key"), "{args:?}: {text}");
        assert!(!file.exists(), "{args:?} generated a context key");
    }
}

#[tokio::test]
async fn production_with_its_keys_serves() {
    let db = TestDb::new().await;
    // Server::start gives the keys as files, as a mounted Secret would.
    let mut server = Server::start(&db, &[("TENANTRY__ENVIRONMENT", "production")]).await;
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200, "{}", server.log_text());
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        server.log_text()
    );
}

#[tokio::test]
async fn development_generates_the_missing_keys_production_refuses() {
    let db = TestDb::new().await;
    let dir = Scratch::new("dev");
    // The built-in defaults: .tenantry/signing-key.pem under the working dir.
    let key = dir.0.join(".tenantry/signing-key.pem");
    let production = run_in(
        &dir.0,
        &db,
        &["token", "--admin"],
        &[("TENANTRY__ENVIRONMENT", "production")],
    );
    assert!(!production.status.success(), "{}", stderr(&production));
    assert!(stderr(&production).contains("no signing_key"));
    assert!(!key.exists());

    let development = run_in(&dir.0, &db, &["token", "--admin"], &[]);
    assert!(development.status.success(), "{}", stderr(&development));
    assert!(key.exists(), "development did not generate the signing key");
    // Once the key is there, production uses it: only generating is refused.
    let with_key = run_in(
        &dir.0,
        &db,
        &["token", "--admin"],
        &[("TENANTRY__ENVIRONMENT", "production")],
    );
    assert!(with_key.status.success(), "{}", stderr(&with_key));
}

#[tokio::test]
async fn an_unknown_environment_is_a_configuration_error() {
    let db = TestDb::new().await;
    let dir = Scratch::new("env");
    let output = run_in(
        &dir.0,
        &db,
        &["token", "--admin"],
        &[("TENANTRY__ENVIRONMENT", "prod")],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("environment"),
        "{}",
        stderr(&output)
    );
}
