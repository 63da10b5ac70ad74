//! Real processes for the fault tests: a PostgreSQL cluster of a test's own
//! (so it can be stopped and started without disturbing other tests), and
//! the `tenantry serve` binary as a child process (so it can be SIGKILLed
//! or SIGTERMed).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tenantry_api::auth::{AuthSettings, Issuer, ServiceKey, generate_secret};
use tenantry_core::{Scope, Scopes, TenantId};

use crate::{TestDb, env, free_port, tenantry_bin, test_auth_settings};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A scratch directory under the test run's directory (which the
/// `postgres` OS user can reach), removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        let dir = PathBuf::from(env("TENANTRY_TEST_DIR")).join(format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A PostgreSQL cluster of one test's own, with the service's roles and a
/// migrated database, started through `scripts/pg.sh` like every other
/// cluster of the project.
#[derive(Debug)]
pub struct Cluster {
    dir: Scratch,
    pub port: u16,
    pub db: TestDb,
}

impl Cluster {
    /// initdb, start, bootstrap the roles, migrate with the real binary.
    #[must_use]
    pub fn start() -> Self {
        let dir = Scratch::new("pg");
        let port = free_port();
        let db = TestDb::on("tenantry", "127.0.0.1", port);
        let cluster = Self { dir, port, db };
        cluster.pg(&["up"], true);
        let (ok, _, stderr) = crate::run_tenantry(&cluster.db, &["migrate"]);
        assert!(ok, "migrate the fault-test cluster: {stderr}");
        cluster
    }

    fn pg(&self, command: &[&str], with_port: bool) {
        let mut cmd = Command::new(repo_root().join("scripts/pg.sh"));
        cmd.args(command).arg(&self.dir.0);
        if with_port {
            cmd.arg(self.port.to_string());
        }
        let output = cmd
            .env("PG_FAST", "1")
            .env("TENANTRY_DB_NAME", "tenantry")
            .env(
                "TENANTRY_OWNER_PASSWORD",
                env("TENANTRY_TEST_OWNER_PASSWORD"),
            )
            .env("TENANTRY_APP_PASSWORD", env("TENANTRY_TEST_APP_PASSWORD"))
            .output()
            .expect("run scripts/pg.sh");
        assert!(
            output.status.success(),
            "pg.sh {command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `pg_ctl stop -m fast`: every session is terminated.
    pub fn stop(&self) {
        self.pg(&["down"], false);
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&self) {
        self.pg(&["up"], true);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/pg.sh"))
            .arg("down")
            .arg(&self.dir.0)
            .output();
    }
}

/// `tenantry serve` as a child process on a free port, with keys of its
/// own that the test can sign tokens with.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    pub address: String,
    pub client: reqwest::Client,
    issuer: Issuer,
    dir: Scratch,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Server {
    /// Starts the server against `db` with `extra` settings
    /// (`TENANTRY__...` pairs) and waits until `/healthz` answers.
    pub async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Self {
        let dir = Scratch::new("srv");
        let auth: AuthSettings = test_auth_settings();
        let pem = auth.signing_key.as_ref().expect("test keys are inline");
        std::fs::write(dir.0.join("signing-key.pem"), pem.expose_secret()).expect("write key");
        std::fs::write(
            dir.0.join("api-key-secret"),
            generate_secret().expose_secret(),
        )
        .expect("write the api-key secret");
        let issuer = Issuer::new(
            &auth,
            ServiceKey::from_pem(pem.expose_secret()).expect("parse the key"),
        );
        let port = free_port();
        let mut env: Vec<(String, String)> = db.binary_env();
        let path = |name: &str| dir.0.join(name).to_string_lossy().into_owned();
        for (k, v) in [
            ("TENANTRY__SERVER__PORT", port.to_string()),
            ("TENANTRY__SERVER__WORKERS", "2".to_owned()),
            ("TENANTRY__SERVER__SHUTDOWN_TIMEOUT", "10s".to_owned()),
            // No drain unless a test asks for one (tests/tests/it/rolling.rs).
            ("TENANTRY__SERVER__SHUTDOWN_DRAIN", "0s".to_owned()),
            ("TENANTRY__AUTH__ISSUER", auth.issuer.clone()),
            ("TENANTRY__AUTH__AUDIENCE", auth.audience.clone()),
            ("TENANTRY__AUTH__SIGNING_KEY_FILE", path("signing-key.pem")),
            (
                "TENANTRY__AUTH__API_KEY_SECRET_FILE",
                path("api-key-secret"),
            ),
            ("TENANTRY__AUTH__GENERATE_MISSING_KEYS", "false".to_owned()),
            ("TENANTRY__QUOTAS__RECONCILE_INTERVAL", "0s".to_owned()),
            ("TENANTRY__RETENTION__ENABLED", "false".to_owned()),
            ("TENANTRY__LOG__LEVEL", "info".to_owned()),
        ] {
            env.push((k.to_owned(), v));
        }
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let log = dir.0.join("server.log");
        let mut server = Self {
            child: None,
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
            issuer,
            dir,
            env,
            log,
        };
        server.spawn().await;
        server
    }

    /// (Re)starts the process with the same settings.
    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let child = Command::new(tenantry_bin())
            .arg("serve")
            .env_remove("TENANTRY_ENV")
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.dir.0)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tenantry serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self.client.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Some(status) = self.try_exit() {
                panic!("tenantry serve exited with {status}: {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "tenantry serve did not come up: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// The exit status, if it has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("poll the child"))
    }

    /// Waits (bounded) for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    }

    #[must_use]
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    #[must_use]
    pub fn tenant_token(&self, tenant: TenantId) -> String {
        let scopes: Scopes = [Scope::TenantRead, Scope::TenantWrite]
            .into_iter()
            .collect();
        self.issuer
            .sign(
                "fault-test",
                Some(tenant),
                &scopes,
                Duration::from_secs(600),
            )
            .expect("sign a token")
    }

    #[must_use]
    pub fn admin_token(&self) -> String {
        let scopes: Scopes = [Scope::PlatformAdmin].into_iter().collect();
        self.issuer
            .sign("fault-admin", None, &scopes, Duration::from_secs(600))
            .expect("sign a token")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
