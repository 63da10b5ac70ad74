//! API keys: long-lived keys a tenant exchanges for short-lived tokens.
//! The front door mints the secret (it holds the key-hashing secret); only
//! the keyed hash reaches the database. Each counts against `max_api_keys`.

use serde_json::json;
use tenantry_core::{ApiKeyId, Name, Resource, TenantId};
use tenantry_db::AsyncPgConnection;
use tenantry_db::queries::api_keys::{self, StoredHash};

use crate::views::{ApiKeyView, List};
use crate::{Error, Page, TenantActor, quotas};

/// A key to store: its id, name, shown prefix and keyed hash.
#[derive(Debug)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub name: Name,
    pub prefix: String,
    pub hash: StoredHash,
}

/// Active (unrevoked) keys.
pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    page: Page,
) -> Result<List<ApiKeyView>, Error> {
    let (items, more) = api_keys::list(conn, tenant, page).await?;
    Ok(List::new(items, more, |k| *k.id.as_uuid()).map(Into::into))
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    who: &TenantActor,
    new: NewApiKey,
) -> Result<ApiKeyView, Error> {
    let tenant = who.tenant;
    let key = api_keys::create(
        conn,
        tenant,
        new.id,
        new.name.as_str(),
        &new.prefix,
        &new.hash,
    )
    .await?;
    quotas::charge(conn, tenant, quotas::one(Resource::ApiKeys)).await?;
    tenantry_db::queries::events::record(
        conn,
        tenant,
        "api_key.created",
        who.actor.as_str(),
        Some(*new.id.as_uuid()),
        json!({"prefix": new.prefix}),
    )
    .await?;
    Ok(key.into())
}

pub async fn revoke(
    conn: &mut AsyncPgConnection,
    who: &TenantActor,
    id: ApiKeyId,
) -> Result<(), Error> {
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
