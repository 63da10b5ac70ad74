use crate::Conn;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tenantry_core::{ApiKeyId, TenantId};

use crate::models::{ApiKey, Page};
use crate::schema::api_keys;

/// Active (unrevoked) keys.
pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> QueryResult<(Vec<ApiKey>, bool)> {
    let mut query = api_keys::table
        .filter(
            api_keys::tenant_id
                .eq(tenant)
                .and(api_keys::revoked_at.is_null()),
        )
        .select(ApiKey::as_select())
        .order(api_keys::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(api_keys::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}

/// A key's stored hash and how it was computed (`hash_version`: see
/// `tenantry_api::auth::api_key`).
pub struct StoredHash {
    pub hash: Vec<u8>,
    pub version: i16,
}

impl std::fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredHash")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

pub async fn create(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: ApiKeyId,
    name: &str,
    prefix: &str,
    secret: &StoredHash,
    scopes: &str,
) -> QueryResult<ApiKey> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::tenant_id.eq(tenant),
            api_keys::id.eq(id),
            api_keys::name.eq(name),
            api_keys::prefix.eq(prefix),
            api_keys::secret_hash.eq(&secret.hash),
            api_keys::hash_version.eq(secret.version),
            api_keys::scopes.eq(scopes),
        ))
        .returning(ApiKey::as_returning())
        .get_result(conn)
        .await
}

/// Revokes an active key; returns whether one was revoked.
pub async fn revoke(conn: &mut Conn<'_>, tenant: TenantId, id: ApiKeyId) -> QueryResult<bool> {
    let n = diesel::update(
        api_keys::table.filter(
            api_keys::tenant_id
                .eq(tenant)
                .and(api_keys::id.eq(id))
                .and(api_keys::revoked_at.is_null()),
        ),
    )
    .set(api_keys::revoked_at.eq(Some(Utc::now())))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// An active key as the exchange needs it: its stored hash and what its
/// tokens may do.
#[derive(Debug)]
pub struct ExchangeKey {
    pub hash: StoredHash,
    /// Space-separated scopes; `None` for a key from before migration 0009.
    pub scopes: Option<String>,
}

type ExchangeColumns = (Vec<u8>, i16, Option<DateTime<Utc>>, Option<String>);

/// The stored hash of an active key (and its version) and its scopes, for
/// the exchange.
pub async fn hash_for_exchange(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: ApiKeyId,
) -> QueryResult<Option<ExchangeKey>> {
    let hash: Option<ExchangeColumns> = api_keys::table
        .filter(api_keys::tenant_id.eq(tenant).and(api_keys::id.eq(id)))
        .select((
            api_keys::secret_hash,
            api_keys::hash_version,
            api_keys::revoked_at,
            api_keys::scopes,
        ))
        .first(conn)
        .await
        .optional()?;
    match hash {
        Some((hash, version, None, scopes)) => Ok(Some(ExchangeKey {
            hash: StoredHash { hash, version },
            scopes,
        })),
        _ => Ok(None),
    }
}

pub async fn touch(conn: &mut Conn<'_>, tenant: TenantId, id: ApiKeyId) -> QueryResult<()> {
    diesel::update(api_keys::table.filter(api_keys::tenant_id.eq(tenant).and(api_keys::id.eq(id))))
        .set(api_keys::last_used_at.eq(Some(Utc::now())))
        .execute(conn)
        .await
        .map(|_| ())
}
