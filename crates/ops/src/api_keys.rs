//! API keys: long-lived keys a tenant exchanges for short-lived tokens.
//! The front door mints the secret (it holds the key-hashing secret); only
//! the keyed hash reaches the database. Each counts against `max_api_keys`.
//! Managing keys needs `tenant:admin`; a key's scopes — what the tokens it
//! is exchanged for may do — are never more than its creator's.

use serde_json::json;
use tenantry_core::{ApiKeyId, Name, Resource, Scope, Scopes, TenantId};
use tenantry_db::Conn;
use tenantry_db::queries::api_keys::{self, StoredHash};

use crate::views::{ApiKeyView, List};
use crate::{Authority, Error, Page, TenantActor, quotas};

/// What a key's tokens may do when it was minted without saying (and what
/// every key minted before scopes were stored may do).
#[must_use]
pub fn default_scopes() -> Scopes {
    [Scope::TenantRead, Scope::TenantWrite]
        .into_iter()
        .collect()
}

/// A stored key's scopes (`api_keys.scopes`): `None` is a key from before
/// they were stored.
#[must_use]
pub fn stored_scopes(stored: Option<&str>) -> Scopes {
    stored.map_or_else(default_scopes, |s| Scopes::from_claims([s]))
}

/// Tenant-plane scope names (`tenant:read`, `tenant:write`,
/// `tenant:admin`), at least one; anything else is refused.
pub fn parse_scopes<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, String> {
    let mut scopes = Vec::new();
    for name in names {
        match Scope::parse(name) {
            Some(s @ (Scope::TenantRead | Scope::TenantWrite | Scope::TenantAdmin)) => {
                scopes.push(s);
            }
            _ => {
                return Err(format!(
                    "{name:?} is not a tenant scope (tenant:read, tenant:write, tenant:admin)"
                ));
            }
        }
    }
    if scopes.is_empty() {
        return Err("at least one scope".to_owned());
    }
    Ok(scopes.into_iter().collect())
}

/// A key to store: its id, name, shown prefix and keyed hash.
#[derive(Debug)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub name: Name,
    pub prefix: String,
    pub hash: StoredHash,
    /// What its tokens may do; `None`: [`default_scopes`].
    pub scopes: Option<Scopes>,
}

fn require_admin(authority: &Authority) -> Result<(), Error> {
    if authority.allows(Scope::TenantAdmin) {
        Ok(())
    } else {
        Err(Error::Forbidden("requires scope tenant:admin"))
    }
}

/// Active (unrevoked) keys.
pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    authority: &Authority,
    page: Page,
) -> Result<List<ApiKeyView>, Error> {
    require_admin(authority)?;
    let (items, more) = api_keys::list(conn, tenant, page).await?;
    Ok(List::new(items, more, |k| *k.id.as_uuid()).map(Into::into))
}

/// Creates a key whose scopes are a subset of `authority`'s (refused with
/// a validation error naming `scopes` otherwise, before anything is written).
pub async fn create(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    authority: &Authority,
    new: NewApiKey,
) -> Result<ApiKeyView, Error> {
    require_admin(authority)?;
    let scopes = new.scopes.unwrap_or_else(default_scopes);
    if !authority.covers(&scopes) {
        return Err(Error::validation(
            "scopes",
            format!(
                "a key may not do more than its creator: {} asked, {} held",
                scopes.to_claim(),
                authority.scopes.to_claim()
            ),
        ));
    }
    let tenant = who.tenant;
    let key = api_keys::create(
        conn,
        tenant,
        new.id,
        new.name.as_str(),
        &new.prefix,
        &new.hash,
        &scopes.to_claim(),
    )
    .await?;
    quotas::charge(conn, tenant, quotas::one(Resource::ApiKeys)).await?;
    tenantry_db::queries::events::record(
        conn,
        tenant,
        "api_key.created",
        who.actor.as_str(),
        Some(*new.id.as_uuid()),
        json!({"prefix": new.prefix, "scopes": scopes.to_claim()}),
    )
    .await?;
    Ok(key.into())
}

pub async fn revoke(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    authority: &Authority,
    id: ApiKeyId,
) -> Result<(), Error> {
    require_admin(authority)?;
    let tenant = who.tenant;
    if !api_keys::revoke(conn, tenant, id).await? {
        return Err(Error::NotFound);
    }
    quotas::charge(conn, tenant, quotas::one(Resource::ApiKeys).negated()).await?;
    tenantry_db::queries::events::record(
        conn,
        tenant,
        "api_key.revoked",
        who.actor.as_str(),
        Some(*id.as_uuid()),
        json!({}),
    )
    .await?;
    Ok(())
}
