//! `tenantry`: the one binary. `serve`, `migrate`, `policies check`,
//! `token`, `tenants create`.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tenantry_api::auth::{Issuer, keys};
use tenantry_api::{AppState, Tenancy};
use tenantry_core::{Name, Scope, Scopes, Slug, TenantId};
use tenantry_db::{Db, DbError, ScopedFutureExt, migrate, queries};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

mod import;
mod settings;

use settings::{LogFormat, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "tenantry",
    version,
    about = "Multi-tenant platform service on PostgreSQL row-level security"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (refuses to start if the isolation guard fails,
    /// or if it is given the owner's URL: migrations are a separate job).
    Serve,
    /// Apply pending migrations and the RLS policies, as the owner role.
    Migrate {
        /// Revert the most recent migration instead.
        #[arg(long)]
        down: bool,
        /// After installing database.context_key, remove every other
        /// context key (the last step of a key rotation, once every
        /// replica runs with the new key).
        #[arg(long, conflicts_with = "down")]
        retire_other_context_keys: bool,
    },
    /// Isolation checks against the live catalog.
    Policies {
        #[command(subcommand)]
        command: PoliciesCommand,
    },
    /// Print a token signed with the service's key (alone on stdout).
    Token {
        /// A platform-admin token (scope platform:admin, no tenant).
        #[arg(long, conflicts_with_all = ["tenant", "tenants_file"], required_unless_present_any = ["tenant", "tenants_file"])]
        admin: bool,
        /// One tenant token per line of this file of tenant ids (load tests).
        #[arg(long, value_name = "FILE", conflicts_with = "tenant")]
        tenants_file: Option<std::path::PathBuf>,
        /// A tenant token for this tenant id (scopes tenant:read tenant:write).
        #[arg(long, value_name = "ID")]
        tenant: Option<TenantId>,
        /// Space-separated scopes instead of the defaults.
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime, e.g. 15m, 12h.
        #[arg(long, default_value = "15m")]
        ttl: humantime::Duration,
        /// The token's subject.
        #[arg(long, default_value = "cli")]
        sub: String,
    },
    /// Purge deleted tenants whose retention period has passed.
    Sweep {
        /// One sweep, then exit (cron, a Kubernetes CronJob); otherwise
        /// sweep every retention.sweep_interval.
        #[arg(long)]
        once: bool,
        /// Report what would be purged; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Quota maintenance.
    Quotas {
        #[command(subcommand)]
        command: QuotasCommand,
    },
    /// Manage tenants from the command line.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum QuotasCommand {
    /// Recompute usage from the rows and report drift per tenant and
    /// resource; exit 1 if any is found (unless --fix repaired it).
    Reconcile {
        /// Set each drifting usage row to what its rows add up to.
        #[arg(long)]
        fix: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// Create an active tenant with the default quotas; prints it as JSON.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
    },
    /// Load an export (GET /v1/admin/tenants/{id}/export) into a NEW tenant,
    /// in one transaction: every row parsed and quota-charged as the API
    /// does, with new ids; API keys skipped; events marked imported. Prints
    /// the tenant, the rows per table and what was skipped.
    Import {
        /// The NDJSON file; "-" for standard input.
        #[arg(long)]
        file: String,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum PoliciesCommand {
    /// Check RLS, foreign keys, views and the service's role; exit 1 naming
    /// each offending object.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("tenantry: {err:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tenantry: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tenantry: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Token {
            admin,
            tenant,
            tenants_file,
            scope,
            ttl,
            sub,
        } => {
            let scopes = match scope {
                Some(words) => parse_scopes(&words)?,
                None if admin => [Scope::PlatformAdmin].into_iter().collect(),
                None => [Scope::TenantRead, Scope::TenantWrite]
                    .into_iter()
                    .collect(),
            };
            let issuer = Issuer::new(&settings.auth, keys::load_service_key(&settings.auth)?);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if let Some(file) = tenants_file {
                let ids = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                for line in ids.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let id: TenantId = line
                        .parse()
                        .with_context(|| format!("not a tenant id: {line}"))?;
                    writeln!(out, "{}", issuer.sign(&sub, Some(id), &scopes, ttl.into())?)?;
                }
            } else {
                let token =
                    issuer.sign(&sub, if admin { None } else { tenant }, &scopes, ttl.into())?;
                writeln!(out, "{token}")?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tenants {
            command: TenantsCommand::Import { file, slug, name },
        } => import::run(&settings, &file, &slug, &name).await,
        Command::Sweep { once, dry_run } => {
            let db = Db::new(&settings.database)?;
            let dry_run = dry_run || settings.retention.dry_run;
            let name = tenantry_sweeper::instance_name();
            // SIGTERM/SIGINT: finish the current batch, report, exit.
            let (raise, mut stop) = tenantry_sweeper::Stop::new();
            let mut signals = Signals::new()?;
            tokio::spawn(async move {
                signals.next().await;
                raise.send_replace(true);
                // Keep the sender alive: dropping it would also read as "stop".
                std::future::pending::<()>().await;
            });
            loop {
                let report =
                    tenantry_sweeper::sweep(&db, &settings.retention, &name, dry_run, &stop)
                        .await?;
                writeln!(std::io::stdout(), "{}", serde_json::to_string(&report)?)?;
                if once || stop.is_raised() {
                    return Ok(ExitCode::SUCCESS);
                }
                let every = tenantry_sweeper::effective_interval(&settings.retention);
                tokio::select! {
                    () = tokio::time::sleep(tenantry_sweeper::jittered(every)) => {}
                    () = stop.raised() => return Ok(ExitCode::SUCCESS),
                }
            }
        }
        Command::Quotas {
            command: QuotasCommand::Reconcile { fix },
        } => {
            let db = Db::new(&settings.database)?;
            let drifts = tenantry_db::reconcile::reconcile(&db, fix).await?;
            let mut out = std::io::stdout();
            for d in &drifts {
                writeln!(
                    out,
                    "{} ({}): {} recorded {} actual {}{}",
                    d.slug,
                    d.tenant,
                    d.resource,
                    d.recorded,
                    d.actual,
                    if fix { " (fixed)" } else { "" }
                )?;
            }
            eprintln!(
                "quotas reconcile: {} drifting resource(s){}",
                drifts.len(),
                if fix { ", fixed" } else { "" }
            );
            Ok(if drifts.is_empty() || fix {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Tenants {
            command: TenantsCommand::Create { slug, name },
        } => {
            let slug = Slug::parse(&slug).map_err(|e| anyhow::anyhow!("--slug: {e}"))?;
            let name = Name::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let limits = settings.quotas.default.clone();
            let db = Db::new(&settings.database)?;
            let tenant = db
                .platform()
                .run(|conn| {
                    async move {
                        Ok::<_, DbError>(
                            queries::tenants::create(
                                conn,
                                TenantId::new(),
                                slug.as_str(),
                                name.as_str(),
                                &limits,
                            )
                            .await?,
                        )
                    }
                    .scope_boxed()
                })
                .await
                .map_err(|e| match e {
                    DbError::Query(diesel_unique)
                        if diesel_unique.to_string().contains("tenants_slug_unique") =>
                    {
                        anyhow::anyhow!("a tenant with this slug already exists")
                    }
                    other => other.into(),
                })?;
            writeln!(
                std::io::stdout(),
                "{}",
                serde_json::to_string_pretty(&tenant)?
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => serve(settings).await,
        Command::Migrate {
            down,
            retire_other_context_keys,
        } => {
            let owner_url = owner_url(&settings)?;
            if down {
                let version = migrate::revert_last(owner_url).await?;
                eprintln!("reverted {version}");
            } else {
                let key = settings
                    .database
                    .context_key
                    .as_ref()
                    .context("no database.context_key")
                    .and_then(|k| Ok(tenantry_db::ContextKey::new(k)?))?;
                let options = tenantry_db::MigrateOptions {
                    retire_other_keys: retire_other_context_keys,
                    citus_shard_count: settings.database.citus.shard_count,
                };
                let report = migrate::run(owner_url, &key, &options).await?;
                if report.distributed {
                    eprintln!("citus: every table placed (sql/citus.sql)");
                }
                if report.context_key_installed {
                    eprintln!("context key {} installed", key.id());
                }
                if report.context_keys_retired > 0 {
                    eprintln!(
                        "{} other context key(s) retired",
                        report.context_keys_retired
                    );
                }
                if report.applied.is_empty() {
                    eprintln!(
                        "schema is current; {} policy files re-applied",
                        report.policies
                    );
                } else {
                    eprintln!(
                        "applied {}; {} policy files applied",
                        report.applied.join(", "),
                        report.policies
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policies {
            command: PoliciesCommand::Check,
        } => {
            let db = Db::new(&settings.database)?;
            let violations = db.check_isolation().await?;
            if violations.is_empty() {
                eprintln!("policies check: ok");
                Ok(ExitCode::SUCCESS)
            } else {
                for v in &violations {
                    eprintln!("policies check: {v}");
                }
                eprintln!("policies check: {} violation(s)", violations.len());
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

fn parse_scopes(words: &str) -> anyhow::Result<Scopes> {
    words
        .split_whitespace()
        .map(|w| Scope::parse(w).ok_or_else(|| anyhow::anyhow!("--scope: unknown scope {w:?}")))
        .collect()
}

fn owner_url(settings: &Settings) -> anyhow::Result<&SecretString> {
    settings.database.owner_url.as_ref().context(
        "migrations run as the owner role: set database.owner_url (TENANTRY__DATABASE__OWNER_URL)",
    )
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
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
    // Not a refusal either way: /readyz answers for the schema as it is
    // when asked (a migrate job may be running now).
    match db.schema_state().await.map(|s| s.compatibility()) {
        Ok(migrate::Compatibility::Current) => {}
        Ok(migrate::Compatibility::Newer { unknown }) => tracing::info!(
            ?unknown,
            "the schema has migrations of a later release; serving it (they only expand it)"
        ),
        Ok(migrate::Compatibility::Behind { missing }) => tracing::warn!(
            ?missing,
            "the schema lacks migrations of this build; /readyz answers 503 until `tenantry migrate` runs"
        ),
        Ok(migrate::Compatibility::Edited { versions }) => tracing::warn!(
            ?versions,
            "migrations of this build were applied with other contents; /readyz answers 503"
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
    let signal = signals.next().await;
    // One signal stops everything: /readyz turns 503 at once and sweeps stop
    // at their next batch boundary; after the drain (SIGTERM only) the
    // listener closes and in-flight requests get the shutdown timeout (one
    // deadline for them and the sweeper); a second signal exits at once.
    state.begin_draining();
    state.raise_stop();
    tokio::spawn(async move {
        signals.next().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    let drain = match signal {
        Signal::Term => settings.server.shutdown_drain,
        Signal::Int => std::time::Duration::ZERO,
    };
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
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM and SIGINT (Ctrl-C), registered up front so that none is lost
/// to the default handler once the process runs.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Term,
            _ = self.int.recv() => Signal::Int,
        }
    }
}

/// Which stop was asked for: SIGTERM (an orchestrator: drain first) or
/// SIGINT (Ctrl-C at a terminal: stop now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Term,
    Int,
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

fn init_tracing(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // FmtSpan::CLOSE: one line per finished request span, carrying its
    // request_id, tenant_id, route and status (the access log).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    match settings.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
