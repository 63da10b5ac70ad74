//! The command line: clap's types and nothing else. Every argument has its
//! help text and every command an example (the tests below walk the tree
//! and fail on a missing one); `commands::*` run them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tenantry_core::{AccountId, Role, TenantId};

/// Where `--help` and the man pages say the settings come from.
const SETTINGS: &str = "\
Settings: config/default.toml built in, then $TENANTRY_CONFIG_DIR/$TENANTRY_ENV.toml \
(when TENANTRY_ENV is set), then TENANTRY__SECTION__KEY variables, e.g. \
TENANTRY__DATABASE__URL.";

#[derive(Debug, Parser)]
#[command(
    name = "tenantry",
    version,
    about = "Multi-tenant platform service on PostgreSQL row-level security",
    after_help = SETTINGS,
    after_long_help = concat!(
        "Settings: config/default.toml built in, then $TENANTRY_CONFIG_DIR/$TENANTRY_ENV.toml ",
        "(when TENANTRY_ENV is set), then TENANTRY__SECTION__KEY variables, e.g. ",
        "TENANTRY__DATABASE__URL.\n\n",
        "Examples:\n",
        "  TENANTRY__DATABASE__OWNER_URL=postgres://owner@db/tenantry tenantry migrate\n",
        "  tenantry serve\n",
        "  tenantry tenants create --slug acme --name 'Acme Corp'\n",
        "  tenantry completions bash > /etc/bash_completion.d/tenantry",
    )
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (refuses to start if the isolation guard fails,
    /// or if it is given the owner's URL: migrations are a separate job).
    #[command(
        after_help = "Example:\n  TENANTRY__DATABASE__URL=postgres://tenantry_app@db/tenantry tenantry serve"
    )]
    Serve,
    /// Apply pending migrations and the RLS policies, as the owner role.
    #[command(after_help = "Examples:\n  \
        TENANTRY__DATABASE__OWNER_URL=postgres://owner@db/tenantry tenantry migrate\n  \
        tenantry migrate --down\n  \
        tenantry migrate --retire-other-context-keys")]
    Migrate(MigrateArgs),
    /// Isolation checks against the live catalog.
    #[command(subcommand, after_help = "Example:\n  tenantry policies check")]
    Policies(PoliciesCommand),
    /// Print a token signed with the service's key (alone on stdout).
    #[command(after_help = "Examples:\n  \
        tenantry token --admin\n  \
        tenantry token --tenant 0190c3a6-7b1c-7d3e-9f00-000000000001 --ttl 1h\n  \
        tenantry token --tenants-file tenants.txt --scope tenant:read > tokens.txt")]
    Token(TokenArgs),
    /// Check the configured database for this service: roles and RLS (as
    /// `policies check`) and the server settings that matter (memory,
    /// bgwriter, WAL, connections versus pools, timeouts), each finding with
    /// what is wrong, why it matters and the setting to use. Exit 1 on a
    /// failing check (or, with --strict, a warning), 2 if the database
    /// cannot be reached.
    #[command(after_help = "Examples:\n  \
        tenantry doctor\n  \
        tenantry doctor --replicas 3 --server-memory 16GB --strict\n  \
        tenantry doctor --format json --ignore random_page_cost > doctor.json")]
    Doctor(DoctorArgs),
    /// Purge deleted tenants whose retention period has passed; progress
    /// on stderr, each sweep's report as JSON on stdout.
    #[command(after_help = "Examples:\n  \
        tenantry sweep --once --dry-run\n  \
        tenantry sweep --once > sweep-report.json\n  \
        tenantry sweep")]
    Sweep(SweepArgs),
    /// Quota maintenance.
    #[command(subcommand, after_help = "Example:\n  tenantry quotas reconcile --fix")]
    Quotas(QuotasCommand),
    /// The usage history for billing: sample now, or export it as CSV.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            tenantry usage sample\n  \
            tenantry usage export --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z --granularity day > january.csv"
    )]
    Usage(UsageCommand),
    /// Manage tenants from the command line.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            tenantry tenants create --slug acme --name 'Acme Corp'\n  \
            tenantry tenants import --file acme.ndjson --slug acme-copy --name 'Acme copy'"
    )]
    Tenants(TenantsCommand),
    /// Print a shell completion script on stdout.
    #[command(after_help = "Examples:\n  \
        tenantry completions bash > /etc/bash_completion.d/tenantry\n  \
        tenantry completions zsh > \"${fpath[1]}/_tenantry\"\n  \
        tenantry completions fish > ~/.config/fish/completions/tenantry.fish")]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per command
    /// into a directory.
    #[command(after_help = "Examples:\n  \
        tenantry man | man -l -\n  \
        tenantry man --out /usr/local/share/man/man1")]
    Man(ManArgs),
}

impl Command {
    /// Whether the command runs without the settings (and so without a
    /// database, keys or a config file): it only describes the CLI.
    #[must_use]
    pub fn is_offline(&self) -> bool {
        matches!(self, Self::Completions(_) | Self::Man(_))
    }
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Revert the most recent migration instead.
    #[arg(long)]
    pub down: bool,
    /// After installing database.context_key, remove every other
    /// context key (the last step of a key rotation, once every
    /// replica runs with the new key).
    #[arg(long, conflicts_with = "down")]
    pub retire_other_context_keys: bool,
}

#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Check RLS, foreign keys, views and the service's role; exit 1 naming
    /// each offending object.
    #[command(after_help = "Example:\n  tenantry policies check && echo isolated")]
    Check,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// A platform-admin token (scope platform:admin, no tenant).
    #[arg(long, conflicts_with_all = ["tenant", "tenants_file"], required_unless_present_any = ["tenant", "tenants_file"])]
    pub admin: bool,
    /// One tenant token per line of this file of tenant ids (load tests).
    #[arg(long, value_name = "FILE", conflicts_with = "tenant")]
    pub tenants_file: Option<PathBuf>,
    /// A tenant token for this tenant id (scopes tenant:read tenant:write
    /// tenant:admin: an operator's machine token).
    #[arg(long, value_name = "ID")]
    pub tenant: Option<TenantId>,
    /// Space-separated scopes instead of the defaults, e.g. "tenant:read".
    #[arg(long, value_name = "SCOPES")]
    pub scope: Option<String>,
    /// Lifetime, e.g. 15m, 12h.
    #[arg(long, default_value = "15m")]
    pub ttl: humantime::Duration,
    /// The token's subject (its `sub` claim).
    #[arg(long, default_value = "cli")]
    pub sub: String,
    /// Confine the token to this account id (written under auth.account_claim).
    #[arg(long, value_name = "ID", conflicts_with = "admin")]
    pub account: Option<AccountId>,
    /// The role the token claims: viewer, member, admin or owner (written
    /// under auth.role_claim); it can only lower a member's role.
    #[arg(long, value_name = "ROLE", conflicts_with = "admin")]
    pub role: Option<Role>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// How to print the report: text (for people) or json (one document).
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    pub format: DoctorFormat,
    /// Exit 1 on warnings too, not only on failing checks.
    #[arg(long)]
    pub strict: bool,
    /// Replicas of `tenantry serve` sharing this database: max_connections
    /// must cover replicas x (database.max_connections +
    /// database.admin_connections) + headroom + reserved.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub replicas: u32,
    /// The database server's memory, e.g. 16GB (PostgreSQL cannot tell it;
    /// without this it is assumed from effective_cache_size).
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub server_memory: Option<u64>,
    /// A check whose finding does not count towards the exit code (listed
    /// as ignored), e.g. random_page_cost on spinning disks. Repeatable.
    #[arg(long, value_name = "CHECK")]
    pub ignore: Vec<String>,
}

fn parse_memory(text: &str) -> Result<u64, String> {
    tenantry_core::tuning::parse_memory_mib(text)
        .ok_or_else(|| format!("not a memory size: {text:?} (e.g. 16GB, 512MB)"))
}

/// `tenantry doctor --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    /// One block per finding, for people.
    Text,
    /// The report as one JSON document on stdout.
    Json,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// One sweep, then exit (cron, a Kubernetes CronJob); otherwise
    /// sweep every retention.sweep_interval.
    #[arg(long)]
    pub once: bool,
    /// Report what would be purged; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum QuotasCommand {
    /// Recompute usage from the rows and report drift per tenant and
    /// resource; exit 1 if any is found (unless --fix repaired it).
    #[command(after_help = "Examples:\n  \
        tenantry quotas reconcile\n  \
        tenantry quotas reconcile --fix")]
    Reconcile {
        /// Set each drifting usage row to what its rows add up to.
        #[arg(long)]
        fix: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsageCommand {
    /// Close the periods that ended (the last --periods of them) for every
    /// tenant, as `serve` does after each `[usage] interval`, and prune
    /// past `[usage] retention`; idempotent. Prints what it did.
    #[command(
        after_help = "Examples:\n  tenantry usage sample\n  tenantry usage sample --periods 24"
    )]
    Sample {
        /// How many of the latest ended periods to close.
        #[arg(long, default_value_t = 1)]
        periods: u32,
    },
    /// Print the usage history as CSV on stdout (a header, then one record
    /// per tenant and period), every tenant's or one's; the same report as
    /// `GET /v1/admin/usage`.
    #[command(after_help = "Examples:\n  \
        tenantry usage export > last-24h.csv\n  \
        tenantry usage export --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z --granularity day --tenant acme")]
    Export {
        /// RFC 3339; default: 24 hours before --to.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339; default: now.
        #[arg(long)]
        to: Option<String>,
        /// hour (default), day or period.
        #[arg(long)]
        granularity: Option<String>,
        /// Only this tenant (id or slug).
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create an active tenant with the default quotas (or a plan's, with
    /// --plan); prints it as JSON.
    #[command(after_help = "Example:\n  tenantry tenants create --slug acme --name 'Acme Corp'")]
    Create(CreateArgs),
    /// Load an export (GET /v1/admin/tenants/{id}/export) into a NEW tenant,
    /// in one transaction: every row parsed and quota-charged as the API
    /// does, with new ids; API keys skipped; events marked imported. Prints
    /// the tenant, the rows per table and what was skipped; progress on
    /// stderr.
    #[command(after_help = "Examples:\n  \
        tenantry tenants import --file acme.ndjson --slug acme-copy --name 'Acme copy'\n  \
        curl -sH \"authorization: Bearer $ADMIN\" $URL/v1/admin/tenants/acme/export \\\n    \
        | tenantry tenants import --file - --slug acme-copy --name 'Acme copy'")]
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The tenant's slug: lowercase letters, digits and hyphens, unique.
    #[arg(long)]
    pub slug: String,
    /// The tenant's display name.
    #[arg(long)]
    pub name: String,
    /// The tenant's first owner: a person's subject (the `sub` of their
    /// identity provider's tokens), added as a member with role owner.
    #[arg(long, value_name = "SUBJECT")]
    pub owner: Option<String>,
    /// The id of the account that owns it; left out: the default account.
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: Option<String>,
    /// The plan (id or name) the tenant's limits come from; without it,
    /// the default quotas.
    #[arg(long)]
    pub plan: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The NDJSON export file; "-" for standard input. Read a line at a
    /// time, never whole.
    #[arg(long, value_name = "FILE")]
    pub file: String,
    /// The new tenant's slug: lowercase letters, digits and hyphens, unique.
    #[arg(long)]
    pub slug: String,
    /// The new tenant's display name.
    #[arg(long)]
    pub name: String,
    /// When stderr is not a terminal, print a progress line every this many
    /// rows of a table (and one when each table is done).
    #[arg(long, value_name = "ROWS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub progress_every: u64,
    /// Give the new tenant the limits the file carries (its `tenant_quotas`
    /// line) instead of [quotas.default]; rows are then charged against
    /// them. Only for files you trust: a file could raise its own quota.
    #[arg(long)]
    pub restore_limits: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells `tenantry completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU Bash.
    Bash,
    /// Z shell.
    Zsh,
    /// The friendly interactive shell.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write tenantry.1 and one page per subcommand (tenantry-tenants-import.1,
    /// ...) into this directory instead of printing tenantry.1.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// Every command of the tree, with its full name (`tenantry tenants import`).
    fn walk(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        let name = format!("{path}{}", command.get_name());
        out.push((name.clone(), command.clone()));
        for sub in command.get_subcommands() {
            walk(sub, &format!("{name} "), out);
        }
    }

    fn commands() -> Vec<(String, clap::Command)> {
        let mut command = Cli::command();
        command.build();
        let mut all = Vec::new();
        walk(&command, "", &mut all);
        // clap's own `help` subcommands describe themselves.
        all.retain(|(name, _)| !name.ends_with(" help") && !name.contains(" help "));
        all
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_has_help_text() {
        let mut missing = Vec::new();
        for (name, command) in commands() {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{name}: {id}"));
                }
            }
        }
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }

    #[test]
    fn every_command_has_an_about_and_an_example() {
        for (name, command) in commands() {
            assert!(
                command.get_about().is_some() || name == "tenantry",
                "{name}: no about"
            );
            let after = [command.get_after_help(), command.get_after_long_help()]
                .into_iter()
                .flatten()
                .map(ToString::to_string)
                .collect::<String>();
            assert!(
                after.contains("Example") && after.contains("tenantry "),
                "{name}: no example in after_help: {after:?}"
            );
        }
    }

    #[test]
    fn the_tree_has_the_commands_operators_use() {
        let names: Vec<String> = commands().into_iter().map(|(n, _)| n).collect();
        for expected in [
            "tenantry serve",
            "tenantry migrate",
            "tenantry policies check",
            "tenantry doctor",
            "tenantry token",
            "tenantry sweep",
            "tenantry quotas reconcile",
            "tenantry tenants create",
            "tenantry tenants import",
            "tenantry completions",
            "tenantry man",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }

    #[test]
    fn only_completions_and_man_run_without_settings() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().command.is_offline();
        assert!(parse(&["tenantry", "completions", "bash"]));
        assert!(parse(&["tenantry", "man"]));
        assert!(!parse(&["tenantry", "serve"]));
        assert!(!parse(&["tenantry", "sweep", "--once"]));
    }

    #[test]
    fn import_refuses_a_zero_progress_interval() {
        let args = [
            "tenantry", "tenants", "import", "--file", "-", "--slug", "a", "--name", "A",
        ];
        assert!(Cli::try_parse_from(args).is_ok());
        let mut zero = args.to_vec();
        zero.extend(["--progress-every", "0"]);
        assert!(Cli::try_parse_from(zero).is_err());
    }
}
