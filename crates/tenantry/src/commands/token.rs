//! `tenantry token`: a JWT signed with the service's key, alone on stdout.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use tenantry_api::auth::{Confinement, Issuer, keys};
use tenantry_core::{Scope, Scopes, TenantId};

use crate::cli::TokenArgs;
use crate::settings::Settings;

pub fn run(settings: &Settings, args: TokenArgs) -> anyhow::Result<ExitCode> {
    let TokenArgs {
        admin,
        tenants_file,
        tenant,
        scope,
        ttl,
        sub,
        account,
        role,
    } = args;
    let scopes = match scope {
        Some(words) => parse_scopes(&words)?,
        None if admin => [Scope::PlatformAdmin].into_iter().collect(),
        None => [Scope::TenantRead, Scope::TenantWrite, Scope::TenantAdmin]
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
            let confinement = Confinement {
                tenant: Some(id),
                account,
                role,
            };
            let token = issuer.sign_confined(&sub, confinement, &scopes, ttl.into())?;
            writeln!(out, "{token}")?;
        }
    } else {
        let confinement = Confinement {
            tenant: if admin { None } else { tenant },
            account,
            role,
        };
        let token = issuer.sign_confined(&sub, confinement, &scopes, ttl.into())?;
        writeln!(out, "{token}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn parse_scopes(words: &str) -> anyhow::Result<Scopes> {
    words
        .split_whitespace()
        .map(|w| Scope::parse(w).ok_or_else(|| anyhow::anyhow!("--scope: unknown scope {w:?}")))
        .collect()
}
