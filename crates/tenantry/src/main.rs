//! `tenantry`: the one binary. `serve`, `migrate`, `policies check`,
//! `token`, `tenants create`.

use std::io::Write as _;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tenantry_api::Tenancy;
use tenantry_api::auth::{Issuer, keys};
use tenantry_core::{Name, Scope, Scopes, Slug, TenantId};
use tenantry_db::{Db, migrate};
use tenantry_ops::Actor;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

mod import;

use tenantry::settings::{self, LogFormat, Settings};
use tenantry::{Application, BuildError};

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
                let report = tenantry_ops::views::SweepReportView::from(report);
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
            let drifts = tenantry_db::reconcile::reconcile(&db, fix, Actor::cli().as_str()).await?;
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
            // The same operation as `POST /v1/admin/tenants`: the same
            // checks, the same audit entry, with the CLI's actor.
            let new = tenantry_ops::tenants::NewTenant {
                slug: Slug::parse(&slug).map_err(|e| anyhow::anyhow!("--slug: {e}"))?,
                name: Name::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?,
                limits: tenantry_ops::quotas::LimitsPatch::default(),
            };
            let ops = operations(&settings)?;
            let tenant = tenantry_ops::tenants::create(&ops, &Actor::cli(), new)
                .await
                .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
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

/// The operations layer on the service's database, with the configured
/// tenancy rules: what the CLI's state-changing commands call.
fn operations(settings: &Settings) -> anyhow::Result<tenantry_ops::Operations> {
    let db = Db::new(&settings.database)?;
    Ok(tenantry_ops::Operations::new(
        db,
        Tenancy {
            default_limits: settings.quotas.default.clone(),
            retention: settings.retention.clone(),
        },
    ))
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
    // Listening from the start: a SIGTERM during startup is a graceful stop
    // too, not the default kill.
    let mut signals = Signals::new()?;
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(BuildError::Refused(violations)) => {
            for v in &violations {
                tracing::error!(object = %v.object, problem = %v.problem, "isolation guard");
                eprintln!("tenantry: refusing to start: {v}");
            }
            return Ok(ExitCode::FAILURE);
        }
        Err(BuildError::Other(e)) => return Err(e),
    };
    let local = app.address();
    tracing::info!(%local, "listening");
    eprintln!("tenantry: listening on http://{local}");
    if let Some(address) = app.metrics_address() {
        tracing::info!(%address, "serving /metrics");
        eprintln!("tenantry: metrics on http://{address}/metrics");
    }
    // One signal stops everything (`Application::run_until`); a second
    // exits at once.
    let stop = async move {
        signals.next().await;
        tokio::spawn(async move {
            signals.next().await;
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        });
    };
    app.run_until(stop).await?;
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
    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
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
