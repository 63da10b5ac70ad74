//! `tenantry serve`: the HTTP server, with the housekeeping and the
//! retention sweeper of a serving process.

use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::Context as _;
use tenantry_api::{AppState, Tenancy};
use tenantry_db::Db;

use crate::settings::Settings;
use crate::signals::Signals;

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    // The owner role can disable RLS and rewrite policies: a process that
    // faces the network never holds it. Migrations are their own job.
    if settings.database.owner_url.is_some() {
        anyhow::bail!(
            "refusing to start: database.owner_url (TENANTRY__DATABASE__OWNER_URL) is set, and \
             the service never holds the owner's credentials; run `tenantry migrate` with it as \
             a separate step, and `tenantry serve` with only database.url (the service role)"
        );
    }
    // Listening from the start: a SIGTERM during startup is a graceful stop
    // too, not the default kill.
    let mut signals = Signals::new()?;
    let db = Db::new(&settings.database)?;
    let violations = db
        .check_isolation()
        .await
        .context("cannot run the isolation guard")?;
    if !violations.is_empty() {
        for v in &violations {
            tracing::error!(object = %v.object, problem = %v.problem, "isolation guard");
            eprintln!("tenantry: refusing to start: {v}");
        }
        return Ok(ExitCode::FAILURE);
    }
    match db.schema_state().await {
        Ok(state) if state.is_current() => {}
        Ok(_) => tracing::warn!(
            "schema is not current; /readyz answers 503 until `tenantry migrate` runs"
        ),
        Err(err) => tracing::warn!(%err, "cannot read the schema state"),
    }
    let address = format!("{}:{}", settings.server.host, settings.server.port);
    let listener =
        TcpListener::bind(&address).with_context(|| format!("cannot listen on {address}"))?;
    let local = listener.local_addr()?;
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
    tracing::info!(%local, workers, "listening");
    let tenancy = Tenancy {
        default_limits: settings.quotas.default.clone(),
        retention: settings.retention.clone(),
    };
    let state = AppState::new(db, &settings.auth, &settings.server, tenancy)
        .context("cannot load the auth keys")?;
    spawn_housekeeping(&state, settings.quotas.reconcile_interval);
    let sweeper = settings.retention.enabled.then(|| spawn_sweeper(&state));
    eprintln!("tenantry: listening on http://{local}");
    let metrics = match metrics_listener {
        Some(listener) => {
            let address = listener.local_addr()?;
            tracing::info!(%address, "serving /metrics");
            eprintln!("tenantry: metrics on http://{address}/metrics");
            let server = tenantry_api::metrics_server(listener, state.clone())?;
            let handle = server.handle();
            Some((handle, tokio::spawn(server)))
        }
        None => None,
    };
    let shutdown_timeout = settings.server.shutdown_timeout;
    let server = tenantry_api::server(listener, state.clone(), workers, shutdown_timeout)?;
    let handle = server.handle();
    let running = tokio::spawn(server);
    signals.next().await;
    // One signal stops everything: sweeps at their next batch boundary, the
    // listener at once, in-flight requests within the shutdown timeout (one
    // deadline for all of it); a second signal exits at once.
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    let deadline = tokio::time::Instant::now() + shutdown_timeout;
    state.raise_stop();
    tokio::spawn(async move {
        signals.next().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
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
    Ok(ExitCode::SUCCESS)
}

/// Background work of a serving process: prune idle rate-limiter state,
/// and reconcile quotas on a schedule (report only).
fn spawn_housekeeping(state: &AppState, reconcile_every: std::time::Duration) {
    let limits = std::sync::Arc::clone(&state.rate_limits);
    let (exchange, clients) = (
        std::sync::Arc::clone(&state.exchange_limits),
        std::sync::Arc::clone(&state.client_limits),
    );
    let metrics = std::sync::Arc::clone(&state.metrics);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(tenantry_api::RATE_LIMIT_IDLE / 5);
        loop {
            tick.tick().await;
            metrics.rate_limiter_tenants(limits.prune());
            exchange.prune();
            clients.prune();
        }
    });
    if reconcile_every.is_zero() {
        return;
    }
    let db = state.db.clone();
    let metrics = std::sync::Arc::clone(&state.metrics);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(reconcile_every);
        tick.tick().await; // not at startup: the first run after one interval
        loop {
            tick.tick().await;
            match tenantry_db::reconcile::reconcile(&db, false).await {
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

/// The retention sweeper inside `serve`, every `retention.sweep_interval`
/// with jitter. Replicas may all run it: the purge lock keeps one sweeper
/// per tenant.
fn spawn_sweeper(state: &AppState) -> tokio::task::JoinHandle<()> {
    let db = state.db.clone();
    let metrics = std::sync::Arc::clone(&state.metrics);
    let settings = state.tenancy.retention.clone();
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
            match tenantry_sweeper::sweep(&db, &settings, &name, settings.dry_run, &stop).await {
                Ok(report) => metrics.swept(&report, started.elapsed()),
                Err(e) => tracing::warn!(error = %e, "sweep failed; retrying next interval"),
            }
        }
    })
}
