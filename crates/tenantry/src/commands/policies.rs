//! `tenantry policies check`: the isolation guard against the live catalog.

use std::process::ExitCode;

use tenantry_db::Db;

use crate::cli::PoliciesCommand;
use crate::settings::Settings;

pub async fn run(settings: &Settings, command: &PoliciesCommand) -> anyhow::Result<ExitCode> {
    match command {
        PoliciesCommand::Check => check(settings).await,
    }
}

async fn check(settings: &Settings) -> anyhow::Result<ExitCode> {
    let db = Db::new(&settings.database)?;
    let violations = db.check_isolation().await?;
    if violations.is_empty() {
        eprintln!("policies check: ok");
        return Ok(ExitCode::SUCCESS);
    }
    for v in &violations {
        eprintln!("policies check: {v}");
    }
    eprintln!("policies check: {} violation(s)", violations.len());
    Ok(ExitCode::FAILURE)
}
