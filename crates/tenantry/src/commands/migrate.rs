//! `tenantry migrate`: pending migrations and the RLS policies, as the
//! owner role (the only command given its URL).

use std::process::ExitCode;

use anyhow::Context as _;
use secrecy::SecretString;
use tenantry_db::migrate;

use crate::cli::MigrateArgs;
use crate::settings::Settings;

pub async fn run(settings: &Settings, args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let owner_url = owner_url(settings)?;
    if args.down {
        let version = migrate::revert_last(owner_url).await?;
        eprintln!("reverted {version}");
        return Ok(ExitCode::SUCCESS);
    }
    let key = settings
        .database
        .context_key
        .as_ref()
        .context("no database.context_key")
        .and_then(|k| Ok(tenantry_db::ContextKey::new(k)?))?;
    let options = tenantry_db::MigrateOptions {
        retire_other_keys: args.retire_other_context_keys,
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
    Ok(ExitCode::SUCCESS)
}

fn owner_url(settings: &Settings) -> anyhow::Result<&SecretString> {
    settings.database.owner_url.as_ref().context(
        "migrations run as the owner role: set database.owner_url (TENANTRY__DATABASE__OWNER_URL)",
    )
}
