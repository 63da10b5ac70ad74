//! `tenantry tenants ...`: tenants from the command line. Each subcommand
//! is one function over its arguments.

use std::io::Write as _;
use std::process::ExitCode;

use tenantry_core::{Name, Slug, TenantId};
use tenantry_db::{Db, DbError, ScopedFutureExt, queries};

use crate::cli::{CreateArgs, TenantsCommand};
use crate::settings::Settings;

pub mod import;

pub async fn run(settings: &Settings, command: TenantsCommand) -> anyhow::Result<ExitCode> {
    match command {
        TenantsCommand::Create(args) => create(settings, &args).await,
        TenantsCommand::Import(args) => import::run(settings, &args).await,
    }
}

/// `tenants create`: an active tenant with the default quotas, printed as
/// JSON.
async fn create(settings: &Settings, args: &CreateArgs) -> anyhow::Result<ExitCode> {
    let slug = Slug::parse(&args.slug).map_err(|e| anyhow::anyhow!("--slug: {e}"))?;
    let name = Name::parse(&args.name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
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
