//! Test support: a fresh database per test, cloned from the migrated
//! template that `make test` (scripts/test.sh) prepares on a throwaway
//! cluster; the real app spawned on port 0; the real binary.
//!
//! Everything here panics on failure: it is test scaffolding.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test scaffolding fails loudly and early"
)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use secrecy::{ExposeSecret, SecretString};
use tenantry_api::ServerSettings;
use tenantry_api::auth::{
    AuthSettings, Issuer, ServiceKey, generate_secret, generate_signing_key_pem,
};
use tenantry_core::{Scope, Scopes, TenantId};
use tenantry_db::models::Limits;
use tenantry_db::{ContextKey, DatabaseSettings, Db, ScopedFutureExt};

pub mod browser;
pub mod console;
pub mod fake_dns;
pub mod otlp;
pub mod process;
pub mod proxy;
pub mod webhook_receiver;

/// A TCP port nothing listens on right now (bound, then released).
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with `make test`, which starts a throwaway PostgreSQL"
        )
    })
}

/// A database of its own for one test, cloned from the migrated template,
/// and dropped when the last clone of this handle goes. On a Citus test
/// cluster (`make test-citus`) the database is cloned on every node (each
/// node has the template; the coordinator's copy names the workers').
#[derive(Debug, Clone)]
pub struct TestDb {
    pub name: String,
    host: String,
    port: String,
    _cleanup: Option<std::sync::Arc<DropDatabase>>,
}

/// `CREATE DATABASE name TEMPLATE template` on one node, as its superuser,
/// with the privileges scripts/bootstrap-roles.sql gives (not cloned).
async fn clone_template(superuser_url: &str, template: &str, name: &str) {
    let mut admin = AsyncPgConnection::establish(superuser_url)
        .await
        .expect("connect as the test cluster's superuser");
    // Cloning is refused while anything is connected to the template;
    // nothing should be, but retry briefly rather than flake.
    let mut last_error = None;
    for _ in 0..20 {
        match admin
            .batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE {template} OWNER tenantry_owner"
            ))
            .await
        {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(e) => {
                last_error = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    if let Some(e) = last_error {
        panic!("cannot clone {template} into {name}: {e}");
    }
    admin
        .batch_execute(&format!(
            "REVOKE ALL ON DATABASE {name} FROM PUBLIC;
             GRANT CONNECT, TEMPORARY ON DATABASE {name} TO tenantry_owner;
             GRANT CONNECT ON DATABASE {name} TO tenantry_service;"
        ))
        .await
        .expect("set the test database's privileges");
}

/// The superuser URLs of the test cluster's nodes: the workers first, then
/// the coordinator (plain PostgreSQL: the one server).
fn node_superuser_urls() -> Vec<String> {
    let coordinator = env("TENANTRY_TEST_PG_SUPERUSER_URL");
    let mut urls: Vec<String> = citus_workers()
        .iter()
        .map(|node| {
            format!(
                "postgres://postgres:{}@{node}/postgres",
                env("TENANTRY_TEST_PG_SUPERUSER_PASSWORD")
            )
        })
        .collect();
    urls.push(coordinator);
    urls
}

/// The tenant's `status` as each node's own copy of `tenants` has it
/// (read as the superuser, bypassing RLS): workers first, then the
/// coordinator; one entry on plain PostgreSQL. A reference table must say
/// the same everywhere.
pub async fn tenant_status_on_every_node(test_db: &TestDb, tenant: TenantId) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
    }
    let mut statuses = Vec::new();
    for url in node_superuser_urls() {
        let (base, _) = url.rsplit_once('/').expect("a URL with a database");
        let mut conn = AsyncPgConnection::establish(&format!("{base}/{}", test_db.name))
            .await
            .expect("connect to a node as its superuser");
        let row: Row = diesel::sql_query("SELECT status FROM tenants WHERE id = $1")
            .bind::<diesel::sql_types::Uuid, _>(tenant)
            .get_result(&mut conn)
            .await
            .expect("the node's copy of the tenant");
        statuses.push(row.status);
    }
    statuses
}

/// Whether the test cluster is a Citus cluster (`make test-citus`).
#[must_use]
pub fn citus() -> bool {
    std::env::var("TENANTRY_TEST_CITUS").is_ok_and(|v| v == "1")
}

/// The Citus workers (`host:port`) of the test cluster; none on plain PostgreSQL.
#[must_use]
pub fn citus_workers() -> Vec<String> {
    std::env::var("TENANTRY_TEST_CITUS_WORKERS")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Drops a test database on every node (WITH FORCE: the test's server may
/// still hold connections). Errors are ignored: the cluster is thrown away
/// at the end of the run anyway; this only keeps a run's databases (and, on
/// Citus, their maintenance daemons) few.
#[derive(Debug)]
struct DropDatabase {
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                for url in node_superuser_urls().iter().rev() {
                    if let Ok(mut conn) = AsyncPgConnection::establish(url).await {
                        let _ = conn
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                }
            });
        });
        let _ = dropper.join();
    }
}

impl TestDb {
    pub async fn new() -> Self {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let template = env("TENANTRY_TEST_TEMPLATE_DB");
        for url in node_superuser_urls() {
            clone_template(&url, &template, &name).await;
        }
        Self {
            name: name.clone(),
            host: env("TENANTRY_TEST_PG_HOST"),
            port: env("TENANTRY_TEST_PG_PORT"),
            _cleanup: Some(std::sync::Arc::new(DropDatabase { name })),
        }
    }

    /// An existing database `name` on another cluster that uses the test
    /// run's role passwords (see [`process::Cluster`]).
    #[must_use]
    pub fn on(name: &str, host: &str, port: u16) -> Self {
        Self {
            name: name.to_owned(),
            host: host.to_owned(),
            port: port.to_string(),
            _cleanup: None,
        }
    }

    /// [`Self::settings`], connecting through `proxy` instead of directly.
    #[must_use]
    pub fn settings_via(&self, proxy: &proxy::Proxy, max_connections: usize) -> DatabaseSettings {
        let direct = format!("@{}:{}/", self.host, self.port);
        let via = format!("@127.0.0.1:{}/", proxy.port());
        let mut settings = self.settings(max_connections);
        settings.url = SecretString::from(self.app_url().replacen(&direct, &via, 1));
        settings
    }

    /// The PostgreSQL server's `host:port` (the coordinator, on Citus).
    #[must_use]
    pub fn server_address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The service role's URL for this database.
    #[must_use]
    pub fn app_url(&self) -> String {
        format!(
            "postgres://tenantry_app:{}@{}:{}/{}",
            env("TENANTRY_TEST_APP_PASSWORD"),
            self.host,
            self.port,
            self.name
        )
    }

    /// The owner role's URL for this database (migrations, test fixtures
    /// that change the schema).
    #[must_use]
    pub fn owner_url(&self) -> String {
        format!(
            "postgres://tenantry_owner:{}@{}:{}/{}",
            env("TENANTRY_TEST_OWNER_PASSWORD"),
            self.host,
            self.port,
            self.name
        )
    }

    /// The service's database settings: the app role only, as `serve`
    /// requires (never the owner's URL).
    #[must_use]
    pub fn settings(&self, max_connections: usize) -> DatabaseSettings {
        DatabaseSettings {
            url: SecretString::from(self.app_url()),
            owner_url: None,
            max_connections,
            admin_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            recycle_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(10),
            application_name: "tenantry-test".to_owned(),
            context_key: Some(context_secret()),
            context_key_file: None,
            citus: tenantry_db::CitusSettings {
                tenant_multi_shard: tenantry_db::MultiShardLevel::Error,
                ..tenantry_db::CitusSettings::default()
            },
            usage_interval: tenantry_db::default_usage_interval(),
        }
    }

    /// The service's pool on this database, for tests that work in scopes
    /// directly: their statements are deliberately unfiltered (RLS alone
    /// must keep tenants apart), so on Citus they may reach every shard.
    /// The app the HTTP tests spawn refuses that (`settings`).
    #[must_use]
    pub fn db(&self, max_connections: usize) -> Db {
        let mut settings = self.settings(max_connections);
        settings.citus.tenant_multi_shard = tenantry_db::MultiShardLevel::Off;
        Db::new(&settings).expect("build the pool")
    }

    /// A raw connection as the service's role, outside any scope: for tests
    /// of what the role can do when no one set a context.
    /// With the one session setting the service's pool gives every
    /// connection that decides what a context reaches: on Citus, `SET
    /// LOCAL` propagates to the workers (a placeholder on plain PostgreSQL).
    pub async fn app_conn(&self) -> AsyncPgConnection {
        let mut conn = AsyncPgConnection::establish(&self.app_url())
            .await
            .expect("connect as tenantry_app");
        conn.batch_execute("SET citus.propagate_set_commands = 'local'")
            .await
            .expect("session settings");
        conn
    }

    /// The superuser's URL for this database (the coordinator, on Citus):
    /// for tests that read Citus's metadata.
    #[must_use]
    pub fn superuser_url(&self) -> String {
        let url = env("TENANTRY_TEST_PG_SUPERUSER_URL");
        let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    /// A raw connection as the owner role.
    pub async fn owner_conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.owner_url())
            .await
            .expect("connect as tenantry_owner")
    }

    /// Environment for running the real binary against this database, as
    /// the service's role. No metrics listener: its default port is fixed,
    /// and tests (and other checkouts' tests) run side by side.
    #[must_use]
    pub fn binary_env(&self) -> Vec<(String, String)> {
        vec![
            ("TENANTRY__DATABASE__URL".to_owned(), self.app_url()),
            (
                "TENANTRY__DATABASE__CONTEXT_KEY".to_owned(),
                context_secret().expose_secret().to_owned(),
            ),
            ("TENANTRY__METRICS__LISTEN".to_owned(), String::new()),
            // As the in-process app: a tenant-plane statement reaching
            // more than one shard fails the test.
            (
                "TENANTRY__DATABASE__CITUS__TENANT_MULTI_SHARD".to_owned(),
                "error".to_owned(),
            ),
        ]
    }

    /// The owner's URL, for `tenantry migrate` only (`serve` refuses it).
    #[must_use]
    pub fn owner_env(&self) -> Vec<(String, String)> {
        vec![("TENANTRY__DATABASE__OWNER_URL".to_owned(), self.owner_url())]
    }
}

/// The context key `make test` installed in the template (and so in every
/// test database cloned from it).
#[must_use]
pub fn context_secret() -> SecretString {
    SecretString::from(env("TENANTRY_TEST_CONTEXT_KEY"))
}

#[must_use]
pub fn context_key() -> ContextKey {
    ContextKey::new(&context_secret()).expect("the test context key is long enough")
}

/// `SELECT set_tenant_context(...)` with `tenant`'s real proof, for tests
/// that drive the service's role by hand. Literal values: use it only with
/// ids the test made.
#[must_use]
pub fn tenant_context_sql(tenant: TenantId) -> String {
    format!(
        "SELECT set_tenant_context('{tenant}', '{}')",
        context_key().tenant_proof(tenant)
    )
}

/// `SELECT set_platform_admin_context(...)` with the real proof.
#[must_use]
pub fn platform_context_sql() -> String {
    format!(
        "SELECT set_platform_admin_context('{}')",
        context_key().platform_proof()
    )
}

/// Creates an active tenant through the platform scope (as the service
/// would) and returns its id.
pub async fn create_tenant(db: &Db, slug: &str) -> TenantId {
    let id = TenantId::new();
    let slug = slug.to_owned();
    db.platform()
        .run(|conn| {
            async move {
                diesel::sql_query("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2)")
                    .bind::<SqlUuid, _>(id)
                    .bind::<Text, _>(&slug)
                    .execute(conn)
                    .await?;
                Ok::<_, tenantry_db::DbError>(())
            }
            .scope_boxed()
        })
        .await
        .expect("create tenant");
    id
}

/// Creates a cluster and `count` instances in it for `tenant`, through the
/// tenant's own scope.
pub async fn create_instances(db: &Db, tenant: TenantId, count: usize) {
    db.tenant(tenant)
        .run(|conn| {
            async move {
                let cluster = uuid::Uuid::now_v7();
                diesel::sql_query(
                    "INSERT INTO clusters (tenant_id, id, name, region) VALUES ($1, $2, 'main', 'eu-west')",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<SqlUuid, _>(cluster)
                .execute(conn)
                .await?;
                for i in 0..count {
                    diesel::sql_query(
                        "INSERT INTO instances (tenant_id, id, cluster_id, name, cpu_cores, memory_gb)
                         VALUES ($1, $2, $3, $4, 1, 1)",
                    )
                    .bind::<SqlUuid, _>(tenant)
                    .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
                    .bind::<SqlUuid, _>(cluster)
                    .bind::<Text, _>(format!("vm-{i}"))
                    .execute(conn)
                    .await?;
                }
                Ok::<_, tenantry_db::DbError>(())
            }
            .scope_boxed()
        })
        .await
        .expect("create instances");
}

/// The audience and issuer the test app expects.
pub const TEST_ISSUER: &str = "tenantry-test";
pub const TEST_AUDIENCE: &str = "tenantry-test-api";
/// Host-based addressing domain of the test app.
pub const TEST_BASE_DOMAIN: &str = "tenants.test";

/// Generous limits for tests that are not about quotas.
#[must_use]
pub fn test_limits() -> Limits {
    Limits {
        max_users: 1000,
        max_api_keys: 1000,
        max_clusters: 1000,
        max_instances: 1000,
        max_cpu_cores: 100_000,
        max_memory_gb: 100_000,
        max_storage_gb: 1_000_000,
        requests_per_second: 10_000,
        burst: 10_000,
    }
}

/// Retention settings for tests: `period`, small batches, no cooling-off.
#[must_use]
pub fn test_retention(period: Duration) -> tenantry_sweeper::RetentionSettings {
    tenantry_sweeper::RetentionSettings {
        period,
        sweep_interval: Duration::from_secs(3600),
        batch_size: 50,
        enabled: false,
        dry_run: false,
        slug_cooling_off: Duration::ZERO,
        lock_timeout: Duration::from_secs(2),
        batch_pause: Duration::ZERO,
        adaptive: true,
        max_batch_pause: Duration::from_millis(250),
        target_batch_latency: Duration::from_millis(50),
    }
}

/// Auth settings with fresh in-memory keys; `tweak` adjusts them.
#[must_use]
pub fn test_auth_settings() -> AuthSettings {
    AuthSettings {
        issuer: TEST_ISSUER.to_owned(),
        trusted_issuers: Vec::new(),
        audience: TEST_AUDIENCE.to_owned(),
        audiences: Vec::new(),
        tenant_claim: "tenant_id".to_owned(),
        account_claim: "account_id".to_owned(),
        role_claim: "role".to_owned(),
        leeway: Duration::from_secs(30),
        exchange_ttl: Duration::from_secs(300),
        signing_key: Some(generate_signing_key_pem().expect("generate a signing key")),
        signing_key_file: None,
        api_key_secret: Some(generate_secret()),
        api_key_secret_file: None,
        generate_missing_keys: false,
        jwks_file: None,
        jwks_url: None,
        jwks_refresh: Duration::from_secs(300),
        jwks_refresh_max: Duration::from_secs(900),
        jwks_max_stale: Duration::from_secs(24 * 3600),
        token_cache_ttl: Duration::from_secs(300),
        token_cache_capacity: 50_000,
        hs256_secret: None,
    }
}

#[must_use]
pub fn test_server_settings() -> ServerSettings {
    ServerSettings {
        host: "127.0.0.1".to_owned(),
        port: 0,
        workers: 1,
        max_body_bytes: 1024 * 1024,
        tenant_path_prefix: true,
        tenant_base_domain: TEST_BASE_DOMAIN.to_owned(),
        per_tenant_metrics: None,
        // Off: every test's requests come from 127.0.0.1; the tests of
        // these limits turn them on.
        client_requests_per_second: 0,
        client_burst: 0,
        token_exchange_per_second: 0,
        token_exchange_burst: 0,
        shutdown_timeout: Duration::from_secs(5),
        shutdown_drain: Duration::ZERO,
    }
}

/// The real app, served on 127.0.0.1 port 0, against a fresh database.
#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    /// The metrics listener (`GET /metrics`), apart from `address`.
    pub metrics_address: String,
    pub db: Db,
    pub test_db: TestDb,
    pub client: reqwest::Client,
    pub auth: AuthSettings,
    pub issuer: Issuer,
}

/// Builds a [`TestApp`]: the real [`tenantry::Application`], as `tenantry
/// serve` builds it (isolation guard, housekeeping, the scheduled sweeper
/// when retention is enabled), on a fresh database cloned from the
/// migrated template unless [`Self::on`] gives one. The database is dropped
/// when the app (and every other handle on it) is dropped.
#[derive(Debug, Default)]
pub struct TestAppBuilder {
    test_db: Option<TestDb>,
    database: Option<DatabaseSettings>,
    pool: Option<usize>,
    auth: Option<AuthSettings>,
    retention: Option<tenantry_sweeper::RetentionSettings>,
    server: Option<ServerSettings>,
    domains: Option<tenantry_api::DomainSettings>,
    tenancy: Option<tenantry::settings::TenancySettings>,
    console: Option<tenantry_api::console::ConsoleSettings>,
    usage: Option<tenantry_ops::usage::UsageSettings>,
    webhooks: Option<tenantry_ops::webhooks::WebhookSettings>,
    metrics: Option<tenantry_api::MetricsSettings>,
}

/// `[webhooks]` for tests: the worker on, polling every 100 ms, a 1 s
/// timeout, 3 attempts 200 ms apart at first, and private targets allowed
/// (the receiver is on 127.0.0.1).
#[must_use]
pub fn test_webhooks() -> tenantry_ops::webhooks::WebhookSettings {
    tenantry_ops::webhooks::WebhookSettings {
        enabled: true,
        poll_interval: Duration::from_millis(100),
        timeout: Duration::from_secs(1),
        max_attempts: 3,
        backoff_base: Duration::from_millis(200),
        backoff_max: Duration::from_millis(400),
        allow_private_targets: true,
    }
}

impl TestAppBuilder {
    /// With these `[webhooks]` settings (see [`test_webhooks`]). Without
    /// it the delivery worker is off (the outbox still fills), so other
    /// tests do not share the pool with it.
    #[must_use]
    pub fn webhooks(mut self, webhooks: tenantry_ops::webhooks::WebhookSettings) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    /// As [`Self::webhooks`] with only the SSRF guard's switch changed from
    /// [`test_webhooks`] (`false`: the guard as in production).
    #[must_use]
    pub fn allow_private_targets(self, allow: bool) -> Self {
        let webhooks = self.webhooks.clone().unwrap_or_else(test_webhooks);
        self.webhooks(tenantry_ops::webhooks::WebhookSettings {
            allow_private_targets: allow,
            ..webhooks
        })
    }

    /// With these `[usage]` settings (a short interval, the sampler off).
    #[must_use]
    pub fn usage(mut self, usage: tenantry_ops::usage::UsageSettings) -> Self {
        self.usage = Some(usage);
        self
    }

    /// With these `[metrics]` settings (K, the allow list, the refresh
    /// interval); `listen` is always a free loopback port.
    #[must_use]
    pub fn metrics(mut self, metrics: tenantry_api::MetricsSettings) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// With these `[console]` settings (timeouts, sign-in rate, enabled).
    #[must_use]
    pub fn console(mut self, console: tenantry_api::console::ConsoleSettings) -> Self {
        self.console = Some(console);
        self
    }

    /// With these `[tenancy]` settings (the settings schema, the import
    /// bound); default: the built-in ones.
    #[must_use]
    pub fn tenancy(mut self, tenancy: tenantry::settings::TenancySettings) -> Self {
        self.tenancy = Some(tenancy);
        self
    }

    /// With these `[domains]` settings (e.g. a fake nameserver on 127.0.0.1).
    #[must_use]
    pub fn domains(mut self, domains: tenantry_api::DomainSettings) -> Self {
        self.domains = Some(domains);
        self
    }

    /// On this database instead of a fresh one.
    #[must_use]
    pub fn on(mut self, test_db: TestDb) -> Self {
        self.test_db = Some(test_db);
        self
    }

    /// With these database settings (default: `test_db.settings(pool)`).
    #[must_use]
    pub fn database(mut self, settings: DatabaseSettings) -> Self {
        self.database = Some(settings);
        self
    }

    /// A pool of `max_connections` (default 4).
    #[must_use]
    pub fn pool(mut self, max_connections: usize) -> Self {
        self.pool = Some(max_connections);
        self
    }

    #[must_use]
    pub fn auth(mut self, auth: AuthSettings) -> Self {
        self.auth = Some(auth);
        self
    }

    #[must_use]
    pub fn retention(mut self, retention: tenantry_sweeper::RetentionSettings) -> Self {
        self.retention = Some(retention);
        self
    }

    #[must_use]
    pub fn server(mut self, server: ServerSettings) -> Self {
        self.server = Some(server);
        self
    }

    pub async fn spawn(self) -> TestApp {
        let test_db = match self.test_db {
            Some(db) => db,
            None => TestDb::new().await,
        };
        let auth = self.auth.unwrap_or_else(test_auth_settings);
        let mut settings = tenantry::settings::Settings::defaults().expect("built-in settings");
        settings.database = self
            .database
            .unwrap_or_else(|| test_db.settings(self.pool.unwrap_or(4)));
        settings.auth = auth.clone();
        settings.server = self.server.unwrap_or_else(test_server_settings);
        settings.server.shutdown_timeout = Duration::from_secs(5);
        if let Some(domains) = self.domains {
            settings.domains = domains;
        }
        if let Some(metrics) = self.metrics {
            settings.metrics = metrics;
        }
        settings.metrics.listen = "127.0.0.1:0".to_owned();
        settings.quotas.default = test_limits().into();
        if let Some(tenancy) = self.tenancy {
            settings.tenancy = tenancy;
        }
        if let Some(console) = self.console {
            settings.console = console;
        }
        settings.webhooks =
            self.webhooks
                .unwrap_or_else(|| tenantry_ops::webhooks::WebhookSettings {
                    enabled: false,
                    ..test_webhooks()
                });
        // As the scheduled sweeper: off unless a test asks for it (the
        // charges still write the usage counters).
        settings.usage = self.usage.unwrap_or(tenantry_ops::usage::UsageSettings {
            enabled: false,
            ..tenantry_ops::usage::UsageSettings::default()
        });
        settings.retention = self
            .retention
            .unwrap_or_else(|| test_retention(Duration::from_secs(90 * 24 * 3600)));
        let app = tenantry::Application::build(settings)
            .await
            .expect("the application builds (the isolation guard passes)");
        let address = format!("http://{}", app.address());
        let metrics_address = format!(
            "http://{}",
            app.metrics_address().expect("a metrics listener")
        );
        let db = app.state().db.clone();
        tokio::spawn(app.run_until(std::future::pending::<Duration>()));
        let key = auth.signing_key.as_ref().expect("test keys are inline");
        let issuer = Issuer::new(
            &auth,
            ServiceKey::from_pem(key.expose_secret()).expect("parse the key"),
        );
        TestApp {
            address,
            metrics_address,
            db,
            test_db,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                // Under the server's 5 s keep-alive (actix's default): a
                // pooled connection the server is closing just then would
                // take the next request with it (a reset, seen under load
                // in tenant_plane::host_addressing_…).
                .pool_idle_timeout(Duration::from_secs(3))
                .build()
                .expect("http client"),
            auth,
            issuer,
        }
    }
}

impl TestApp {
    /// How every other `spawn` builds the app: [`TestAppBuilder`].
    #[must_use]
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    pub async fn spawn_on(test_db: TestDb) -> Self {
        Self::builder().on(test_db).spawn().await
    }

    /// The app on `test_db`, with these pool and auth settings.
    pub async fn spawn_with(
        test_db: TestDb,
        settings: &DatabaseSettings,
        auth: AuthSettings,
    ) -> Self {
        Self::builder()
            .on(test_db)
            .database(settings.clone())
            .auth(auth)
            .spawn()
            .await
    }

    /// A fresh app whose retention period is `period`.
    pub async fn spawn_with_retention(period: Duration) -> Self {
        Self::builder()
            .retention(test_retention(period))
            .spawn()
            .await
    }

    pub async fn spawn_full(
        test_db: TestDb,
        settings: &DatabaseSettings,
        auth: AuthSettings,
        retention: tenantry_sweeper::RetentionSettings,
    ) -> Self {
        Self::builder()
            .on(test_db)
            .database(settings.clone())
            .auth(auth)
            .retention(retention)
            .spawn()
            .await
    }

    /// A fresh app with these server settings (e.g. its client limits) and
    /// a pool of `max_connections`.
    pub async fn spawn_with_server(server: ServerSettings, max_connections: usize) -> Self {
        Self::builder()
            .server(server)
            .pool(max_connections)
            .spawn()
            .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `GET /metrics` from the metrics listener, as text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.metrics_address))
            .send()
            .await
            .expect("request /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// A request with a bearer token.
    pub fn with_token(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// Sends `method path` with `token` (and a JSON body); returns the status
    /// and the body as JSON (`Null` when it is not JSON).
    /// [`Self::call`] with a platform-admin token.
    pub async fn admin_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(&self.admin_token(), method, path, body).await
    }

    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self.with_token(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("response body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// A token signed with the app's own key.
    #[must_use]
    pub fn token(&self, sub: &str, tenant: Option<TenantId>, scopes: &[Scope]) -> String {
        let scopes: Scopes = scopes.iter().copied().collect();
        self.issuer
            .sign(sub, tenant, &scopes, Duration::from_secs(300))
            .expect("sign a token")
    }

    /// A machine token for `tenant` with every tenant-plane scope (reading,
    /// writing, and administering: members and API keys need `tenant:admin`).
    #[must_use]
    pub fn tenant_token(&self, tenant: TenantId) -> String {
        self.token(
            "test-user",
            Some(tenant),
            &[Scope::TenantRead, Scope::TenantWrite, Scope::TenantAdmin],
        )
    }

    #[must_use]
    pub fn admin_token(&self) -> String {
        self.token("test-admin", None, &[Scope::PlatformAdmin])
    }

    /// An active tenant with generous quotas, created as the service would.
    pub async fn create_tenant(&self, slug: &str) -> TenantId {
        let id = TenantId::new();
        let slug = slug.to_owned();
        self.db
            .platform()
            .run(|conn| {
                async move {
                    tenantry_db::queries::tenants::create(conn, id, &slug, &slug, &test_limits())
                        .await?;
                    Ok::<_, tenantry_db::DbError>(())
                }
                .scope_boxed()
            })
            .await
            .expect("create tenant");
        id
    }

    /// A tenant created through `POST /v1/admin/tenants` with these
    /// `quotas`, and a tenant token for it.
    pub async fn tenant_with(&self, slug: &str, quotas: serde_json::Value) -> (TenantId, String) {
        let (status, tenant) = self
            .call(
                &self.admin_token(),
                reqwest::Method::POST,
                "/v1/admin/tenants",
                Some(serde_json::json!({"slug": slug, "name": slug, "quotas": quotas})),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{tenant}");
        let id: TenantId = tenant["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("the created tenant's id");
        (id, self.tenant_token(id))
    }

    /// Sets a tenant's status directly (until the lifecycle API exists).
    pub async fn set_status(&self, tenant: TenantId, status: &str) {
        let status = status.to_owned();
        self.db
            .platform()
            .run(|conn| {
                async move {
                    // Two forms, not a CASE: Citus refuses a non-immutable
                    // function inside CASE in a write to a reference table.
                    diesel::sql_query(if status == "deleted" {
                        "UPDATE tenants SET status = $2, deleted_at = now() WHERE id = $1"
                    } else {
                        "UPDATE tenants SET status = $2, deleted_at = NULL WHERE id = $1"
                    })
                    .bind::<SqlUuid, _>(tenant)
                    .bind::<Text, _>(&status)
                    .execute(conn)
                    .await?;
                    Ok::<_, tenantry_db::DbError>(())
                }
                .scope_boxed()
            })
            .await
            .expect("set tenant status");
    }
}

/// The `tenantry` binary that `make test` built.
#[must_use]
pub fn tenantry_bin() -> PathBuf {
    PathBuf::from(env("TENANTRY_BIN"))
}

/// Runs `tenantry ARGS` against `db`; returns (success, stdout, stderr).
#[must_use]
pub fn run_tenantry(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    run_tenantry_with(db, args, &[])
}

/// [`run_tenantry`] with more settings (`TENANTRY__...` pairs). Only
/// `migrate` is given the owner's URL: no other command needs it.
#[must_use]
pub fn run_tenantry_with(
    db: &TestDb,
    args: &[&str],
    settings: &[(&str, &str)],
) -> (bool, String, String) {
    let owner = if args.first() == Some(&"migrate") {
        db.owner_env()
    } else {
        Vec::new()
    };
    let output = Command::new(tenantry_bin())
        .args(args)
        .envs(db.binary_env())
        .envs(owner)
        .envs(settings.iter().copied())
        .env_remove("TENANTRY_ENV")
        .output()
        .expect("run the tenantry binary");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// `SELECT count(*) FROM <table>` on `conn`, in whatever context it has.
pub async fn count_rows(
    conn: &mut tenantry_db::Conn<'_>,
    table: &str,
) -> Result<i64, diesel::result::Error> {
    allow_fan_out(conn).await?;
    let row: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result(conn)
        .await?;
    Ok(row.n)
}

/// For a test's deliberately unfiltered statement (no `WHERE tenant_id`,
/// to show RLS alone keeps tenants apart): on Citus it reaches every shard,
/// which the tenant plane's connections refuse (`tenant_multi_shard =
/// "error"`); this allows it for the rest of the transaction, one shard at a
/// time (so that a write to a reference table may follow in the same
/// transaction). Placeholder settings on plain PostgreSQL.
pub async fn allow_fan_out(conn: &mut tenantry_db::Conn<'_>) -> Result<(), diesel::result::Error> {
    conn.batch_execute(
        "SET LOCAL citus.multi_task_query_log_level = off;
         SET LOCAL citus.multi_shard_modify_mode = 'sequential';",
    )
    .await
}

/// Inserts `n` events (kind `bulk`) for `tenant` in the current transaction,
/// which must carry the tenant's context: multi-row `VALUES` in chunks, the
/// bulk insert Citus accepts under RLS (it refuses `INSERT … SELECT` from
/// `generate_series`).
pub async fn insert_events(
    conn: &mut tenantry_db::Conn<'_>,
    tenant: TenantId,
    n: i64,
) -> Result<(), diesel::result::Error> {
    let mut left = n;
    while left > 0 {
        let chunk = left.min(1000);
        let values: Vec<String> = (0..chunk)
            .map(|_| format!("('{tenant}', '{}', 'bulk', 'test')", uuid::Uuid::new_v4()))
            .collect();
        conn.batch_execute(&format!(
            "INSERT INTO events (tenant_id, id, kind, actor) VALUES {}",
            values.join(", ")
        ))
        .await?;
        left -= chunk;
    }
    Ok(())
}

/// [`insert_events`] in a transaction of its own on a fresh service-role
/// connection.
pub async fn seed_events(db: &TestDb, tenant: TenantId, n: i64) {
    let mut conn = db.app_conn().await;
    conn.batch_execute(&format!("BEGIN; {};", tenant_context_sql(tenant)))
        .await
        .expect("open a transaction in the tenant's context");
    insert_events(&mut &conn, tenant, n)
        .await
        .expect("insert the events");
    conn.batch_execute("COMMIT").await.expect("commit");
}

#[derive(diesel::QueryableByName)]
struct TenantRow {
    #[diesel(sql_type = SqlUuid)]
    tenant_id: uuid::Uuid,
}

/// The `tenant_id` of every row of `table` visible on `conn`.
pub async fn visible_tenants(
    conn: &mut tenantry_db::Conn<'_>,
    table: &str,
) -> Result<Vec<uuid::Uuid>, diesel::result::Error> {
    let rows: Vec<TenantRow> = diesel::sql_query(format!("SELECT tenant_id FROM {table}"))
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.tenant_id).collect())
}

/// The text of a database error, for asserting on what PostgreSQL refused.
#[must_use]
pub fn db_message(err: &diesel::result::Error) -> String {
    match err {
        diesel::result::Error::DatabaseError(_, info) => info.message().to_owned(),
        other => other.to_string(),
    }
}

/// `SELECT count(*) FROM <table>` inside `tenant`'s scope.
pub async fn count_as(db: &Db, tenant: TenantId, table: &'static str) -> i64 {
    db.tenant(tenant)
        .run(|conn| {
            async move { Ok::<_, tenantry_db::DbError>(count_rows(conn, table).await?) }
                .scope_boxed()
        })
        .await
        .expect("count rows in a tenant scope")
}

/// `SELECT count(*) FROM <table>` inside the platform scope.
pub async fn count_as_platform(db: &Db, table: &'static str) -> i64 {
    db.platform()
        .run(|conn| {
            async move { Ok::<_, tenantry_db::DbError>(count_rows(conn, table).await?) }
                .scope_boxed()
        })
        .await
        .expect("count rows in the platform scope")
}
