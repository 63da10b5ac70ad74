//! `tenantry quotas reconcile`: usage recomputed from the rows.

use std::io::Write as _;
use std::process::ExitCode;

use tenantry_db::Db;

use crate::cli::QuotasCommand;
use crate::settings::Settings;

pub async fn run(settings: &Settings, command: &QuotasCommand) -> anyhow::Result<ExitCode> {
    match command {
        QuotasCommand::Reconcile { fix } => reconcile(settings, *fix).await,
    }
}

async fn reconcile(settings: &Settings, fix: bool) -> anyhow::Result<ExitCode> {
    let db = Db::new(&settings.database)?;
    let drifts =
        tenantry_db::reconcile::reconcile(&db, fix, tenantry_ops::Actor::cli().as_str()).await?;
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
