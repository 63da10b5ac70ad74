//! `tenantry tenants ...`: tenants from the command line. Each subcommand
//! is one function over its arguments.

use std::io::Write as _;
use std::process::ExitCode;

use tenantry_core::{Name, Slug};
use tenantry_ops::Actor;

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
/// JSON. The same operation as `POST /v1/admin/tenants` — the same checks,
/// the same audit entry — with the CLI's actor.
async fn create(settings: &Settings, args: &CreateArgs) -> anyhow::Result<ExitCode> {
    let new = tenantry_ops::tenants::NewTenant {
        slug: Slug::parse(&args.slug).map_err(|e| anyhow::anyhow!("--slug: {e}"))?,
        name: Name::parse(&args.name).map_err(|e| anyhow::anyhow!("--name: {e}"))?,
        limits: tenantry_ops::quotas::LimitsPatch::default(),
        owner: args
            .owner
            .as_deref()
            .map(tenantry_ops::members::Subject::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--owner: {e}"))?,
        account: args
            .account
            .as_deref()
            .map(|a| {
                a.parse::<tenantry_core::AccountId>()
                    .map_err(|_| anyhow::anyhow!("--account: not an account id"))
            })
            .transpose()?,
        plan: args.plan.clone(),
    };
    let tenant = tenantry_ops::tenants::create(&super::operations(settings)?, &Actor::cli(), new)
        .await
        .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&tenant)?
    )?;
    Ok(ExitCode::SUCCESS)
}
