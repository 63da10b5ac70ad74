//! [`Application::build`]: everything `tenantry serve` does before it
//! answers a request — refuse the owner's credentials, run the isolation
//! guard, bind the listeners, load the keys, start the housekeeping and the
//! scheduled sweeper — and [`Application::run_until`]: serve until told to
//! stop, then stop in order.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tenantry_api::{AppState, Tenancy};
use tenantry_db::{Compatibility, Db, Violation};

use crate::settings::Settings;

/// Why the application did not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The isolation guard found these problems: the service refuses to
    /// serve a database whose isolation it cannot vouch for.
    #[error("the isolation guard refused the database ({} problem(s))", .0.len())]
    Refused(Vec<Violation>),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The service, built and listening, not yet serving.
#[derive(Debug)]
pub struct Application {
    state: AppState,
    address: SocketAddr,
    metrics_address: Option<SocketAddr>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    workers: usize,
    shutdown_timeout: Duration,
    drain: Duration,
    sweeper: Option<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Checks and binds everything `settings` asks for. Must run inside a
    /// tokio runtime (it starts the background work).
    pub async fn build(mut settings: Settings) -> Result<Self, BuildError> {
        // The owner role can disable RLS and rewrite policies: a process
        // that faces the network never holds it. Migrations are their own job.
        if settings.database.owner_url.is_some() {
            return Err(anyhow::anyhow!(
                "refusing to start: database.owner_url (TENANTRY__DATABASE__OWNER_URL) is set, \
                 and the service never holds the owner's credentials; run `tenantry migrate` \
                 with it as a separate step, and `tenantry serve` with only database.url (the \
                 service role)"
            )
            .into());
        }
        settings
            .usage
            .validate()
            .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?;
        // Every connection carries the usage history's period (the quota
        // charges add to its counters).
        settings.database.usage_interval = settings.usage.interval;
        let db = Db::new(&settings.database).context("cannot configure the database pool")?;
        let violations = db
            .check_isolation()
            .await
            .context("cannot run the isolation guard")?;
        if !violations.is_empty() {
            return Err(BuildError::Refused(violations));
        }
        // Not a refusal either way: /readyz answers for the schema as it is
        // when asked (a migrate job may be running now).
        match db.schema_state().await.map(|s| s.compatibility()) {
            Ok(Compatibility::Current) => {}
            Ok(Compatibility::Newer { unknown }) => tracing::info!(
                ?unknown,
                "the schema has migrations of a later release; serving it (they only expand it)"
            ),
            Ok(Compatibility::Behind { missing }) => tracing::warn!(
                ?missing,
                "the schema lacks migrations of this build; /readyz answers 503 until `tenantry migrate` runs"
            ),
            Ok(Compatibility::Edited { versions }) => tracing::warn!(
                ?versions,
                "migrations of this build were applied with other contents; /readyz answers 503"
            ),
            Err(err) => tracing::warn!(%err, "cannot read the schema state"),
        }
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener =
            TcpListener::bind(&address).with_context(|| format!("cannot listen on {address}"))?;
        let metrics_listener = match settings.metrics.listen.trim() {
            "" => None,
            address => Some(
                TcpListener::bind(address)
                    .with_context(|| format!("cannot listen for metrics on {address}"))?,
            ),
        };
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        if settings.server.per_tenant_metrics.is_some() {
            tracing::warn!(
                "server.per_tenant_metrics is retired and ignored: per-tenant series are \
                 [metrics] per_tenant, bounded by [metrics] tenant_series and tenant_allow_list"
            );
        }
        let tenancy: Tenancy = settings.tenancy().context("refusing to start")?;
        let state = AppState::new(db, &settings.auth, &settings.server, tenancy)
            .context("cannot load the auth keys")?
            .with_domains(&settings.domains)
            .context("invalid [domains] settings")?
            .with_console(settings.console.clone())
            .with_webhooks(settings.webhooks.clone())
            .with_metrics(&settings.metrics);
        spawn_housekeeping(&state, settings.quotas.reconcile_interval);
        spawn_webhooks(&state, &settings.webhooks).context("refusing to start")?;
        spawn_metrics_refresher(&state, settings.metrics.refresh_interval);
        let sweeper = settings.retention.enabled.then(|| spawn_sweeper(&state));
        if settings.usage.enabled {
            spawn_usage_sampler(&state);
        }
        Ok(Self {
            address: listener.local_addr().context("no local address")?,
            metrics_address: metrics_listener
                .as_ref()
                .map(TcpListener::local_addr)
                .transpose()
                .context("no local metrics address")?,
            state,
            listener,
            metrics_listener,
            workers,
            shutdown_timeout: settings.server.shutdown_timeout,
            drain: settings.server.shutdown_drain,
            sweeper,
        })
    }

    /// Where the API listens (port 0 in the settings: the port picked).
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where `/metrics` listens, if anywhere.
    #[must_use]
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// `server.shutdown_drain`: how long a SIGTERM'd replica keeps serving
    /// with `/readyz` at 503, so load balancers take it out first.
    #[must_use]
    pub fn drain(&self) -> Duration {
        self.drain
    }

    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `stop` resolves to a drain period, then stops:
    /// `/readyz` turns 503 at once and sweeps stop at their next batch
    /// boundary; every other route keeps serving for the drain; then the
    /// listener closes and in-flight requests get `server.shutdown_timeout`
    /// (one deadline for them and the sweeper).
    pub async fn run_until(self, stop: impl Future<Output = Duration>) -> anyhow::Result<()> {
        let Self {
            state,
            listener,
            metrics_listener,
            workers,
            shutdown_timeout,
            sweeper,
            ..
        } = self;
        let metrics = match metrics_listener {
            Some(listener) => {
                let server = tenantry_api::metrics_server(listener, state.clone())?;
                let handle = server.handle();
                Some((handle, tokio::spawn(server)))
            }
            None => None,
        };
        let server = tenantry_api::server(listener, state.clone(), workers, shutdown_timeout)?;
        let handle = server.handle();
        let mut running = tokio::spawn(server);
        let drain = tokio::select! {
            drain = stop => drain,
            // The server stopped by itself (it cannot, short of a bug).
            result = &mut running => {
                result??;
                anyhow::bail!("the HTTP server stopped unexpectedly");
            }
        };
        state.begin_draining();
        state.raise_stop();
        if !drain.is_zero() {
            tracing::info!(
                ?drain,
                "shutting down: /readyz answers 503; still serving while load balancers take this replica out"
            );
            tokio::time::sleep(drain).await;
        }
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        let deadline = tokio::time::Instant::now() + shutdown_timeout;
        handle.stop(true).await;
        running.await??;
        if let Some((handle, running)) = metrics {
            handle.stop(true).await;
            running.await??;
        }
        if let Some(sweeper) = sweeper
            && tokio::time::timeout_at(deadline, sweeper).await.is_err()
        {
            tracing::warn!("the sweeper did not stop in time; its open batch rolls back");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The webhook delivery worker (`[webhooks] enabled`): drains the outbox
/// every `poll_interval` until shutdown. Any number of replicas may run it
/// (claims skip rows another holds).
fn spawn_webhooks(
    state: &AppState,
    settings: &tenantry_ops::webhooks::WebhookSettings,
) -> anyhow::Result<()> {
    settings.check().map_err(anyhow::Error::msg)?;
    if !settings.enabled {
        return Ok(());
    }
    tokio::spawn(tenantry_ops::webhooks::run_worker(
        state.db.clone(),
        settings.clone(),
        Arc::clone(&state.webhook_stats),
        state.stop.clone(),
    ));
    Ok(())
}

/// How often a serving process deletes idempotency keys past their 24
/// hours and console sessions a day after they ended (every replica may;
/// a row deleted twice is deleted once).
const IDEMPOTENCY_EXPIRY_EVERY: Duration = Duration::from_secs(3600);

/// Background work of a serving process: prune idle rate-limiter state,
/// expire idempotency keys, and reconcile quotas on a schedule (report
/// only).
fn spawn_housekeeping(state: &AppState, reconcile_every: Duration) {
    let limits = Arc::clone(&state.rate_limits);
    let (exchange, clients) = (
        Arc::clone(&state.exchange_limits),
        Arc::clone(&state.client_limits),
    );
    let metrics = Arc::clone(&state.metrics);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(tenantry_api::RATE_LIMIT_IDLE / 5);
        loop {
            tick.tick().await;
            metrics.rate_limiter_tenants(limits.prune());
            exchange.prune();
            clients.prune();
        }
    });
    let db = state.db.clone();
    let console_idle = state.console.settings.idle_timeout;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(IDEMPOTENCY_EXPIRY_EVERY);
        tick.tick().await; // not at startup: the first run after one interval
        loop {
            tick.tick().await;
            match tenantry_ops::idempotency::expire(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired idempotency keys"),
                Err(e) => tracing::warn!(error = %e, "idempotency key expiry failed"),
            }
            match tenantry_ops::console::expire(&db, console_idle).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted ended console sessions"),
                Err(e) => tracing::warn!(error = %e, "console session expiry failed"),
            }
        }
    });
    if reconcile_every.is_zero() {
        return;
    }
    let db = state.db.clone();
    let metrics = Arc::clone(&state.metrics);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(reconcile_every);
        tick.tick().await; // not at startup: the first run after one interval
        loop {
            tick.tick().await;
            match tenantry_db::reconcile::reconcile(&db, false, "reconciler").await {
                Ok(drifts) => {
                    for d in &drifts {
                        tracing::warn!(tenant = %d.tenant, slug = %d.slug, resource = d.resource, recorded = d.recorded, actual = d.actual, "quota usage drift");
                    }
                    metrics.reconciled(drifts.len());
                }
                Err(e) => tracing::warn!(error = %e, "quota reconcile failed"),
            }
        }
    });
}

/// The database gauges of `/metrics` (lifecycle counts, pending purges,
/// quota pressure, the tracked tenants' usage): one platform-scope
/// transaction on the admin pool every `[metrics] refresh_interval`, the
/// first at startup. Scrapes never query.
fn spawn_metrics_refresher(state: &AppState, every: Duration) {
    let ops = state.ops.clone();
    let metrics = Arc::clone(&state.metrics);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let tracked = metrics.tenants().tracked();
            match tenantry_ops::metrics::snapshot(&ops, tracked).await {
                Ok(snapshot) => metrics.refreshed(&snapshot),
                Err(e) => tracing::warn!(error = %e, "metrics refresh failed"),
            }
        }
    });
}

/// The retention sweeper inside `serve`, every `retention.sweep_interval`
/// with jitter. Replicas may all run it: the purge lock keeps one sweeper
/// per tenant.
fn spawn_sweeper(state: &AppState) -> tokio::task::JoinHandle<()> {
    let db = state.db.clone();
    let metrics = Arc::clone(&state.metrics);
    let settings = state.ops.tenancy.retention.clone();
    let mut stop = state.stop.clone();
    tokio::spawn(async move {
        let name = tenantry_sweeper::instance_name();
        loop {
            let pause = tenantry_sweeper::jittered(tenantry_sweeper::effective_interval(&settings));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.raised() => return,
            }
            let started = std::time::Instant::now();
            // Paced by the service's own request latency too (recorded by
            // the request metrics middleware), besides the database's load.
            let requests = Some(tenantry_sweeper::RequestLoad::process());
            let swept = tenantry_sweeper::sweep_paced(
                &db,
                &settings,
                &name,
                settings.dry_run,
                &stop,
                requests,
                |_| {},
            );
            match swept.await {
                Ok(report) => metrics.swept(&report.into(), started.elapsed()),
                Err(e) => tracing::warn!(error = %e, "sweep failed; retrying next interval"),
            }
        }
    })
}

/// Periods the sampler closes when it starts: those missed while no
/// replica ran (each exact, see `tenantry_ops::usage`).
const USAGE_CATCH_UP: u32 = 24;

/// The usage sampler inside `serve`: just after each `[usage] interval`
/// boundary (UTC), closes the period that ended for every tenant (and the
/// one before, in case a clock was early), and prunes past
/// `[usage] retention`. Replicas may all run it: a period is written once.
fn spawn_usage_sampler(state: &AppState) {
    let ops = state.ops.clone();
    let mut stop = state.stop.clone();
    tokio::spawn(async move {
        let mut periods = USAGE_CATCH_UP;
        loop {
            match tenantry_ops::usage::sample(&ops, periods).await {
                Ok(report) => {
                    let sampled: usize = report.periods.iter().map(|(_, n)| n).sum();
                    tracing::debug!(sampled, pruned = report.pruned, "usage sampled");
                    periods = 2;
                }
                Err(e) => tracing::warn!(error = %e, "usage sampling failed; retrying next period"),
            }
            let now = chrono::Utc::now();
            let pause = (ops.tenancy.usage.next_run(now) - now)
                .to_std()
                .unwrap_or(Duration::from_secs(1));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.raised() => return,
            }
        }
    });
}
