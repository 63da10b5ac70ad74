//! One module per top-level command; [`run`] dispatches to them. Each
//! command is a small function over its arguments and the settings.

use std::process::ExitCode;

use crate::cli::Command;
use crate::settings::Settings;

pub mod completions;
pub mod doctor;
pub mod man;
pub mod migrate;
pub mod policies;
pub mod quotas;
pub mod serve;
pub mod sweep;
pub mod tenants;
pub mod token;
pub mod usage;

/// Runs a command that needs the settings (and mostly the database).
pub async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => serve::run(settings).await,
        Command::Migrate(args) => migrate::run(&settings, &args).await,
        Command::Policies(command) => policies::run(&settings, &command).await,
        Command::Doctor(args) => doctor::run(&settings, &args).await,
        Command::Token(args) => token::run(&settings, args),
        Command::Sweep(args) => sweep::run(&settings, &args).await,
        Command::Quotas(command) => quotas::run(&settings, &command).await,
        Command::Tenants(command) => tenants::run(&settings, command).await,
        Command::Usage(command) => usage::run(&settings, command).await,
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
    }
}

/// The operations layer on the service's database, with the configured
/// tenancy rules: what the CLI's state-changing commands call.
pub fn operations(settings: &Settings) -> anyhow::Result<tenantry_ops::Operations> {
    let db = tenantry_db::Db::new(&settings.database)?;
    Ok(tenantry_ops::Operations::new(db, settings.tenancy()?))
}

/// Runs a command that only describes the CLI (`Command::is_offline`):
/// no settings, no runtime, no database.
pub fn run_offline(command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        other => anyhow::bail!("`{other:?}` needs the settings"),
    }
}
