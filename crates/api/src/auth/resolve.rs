//! Which tenant a member token acts in when it names none: the one the
//! request addresses. Detection order (each step answers or passes to the
//! next): a custom domain (to come), `{slug}.{base_domain}`, then
//! `/t/{slug}/…`. Every name the request gives must agree.
//!
//! The slug's tenant is looked up in the platform scope, before the tenant's
//! transaction (which needs the id), and remembered in a bounded cache for a
//! few seconds. The cache decides nothing: the tenant gate compares the
//! addressed slugs with the tenant's registry row again, in SQL, and checks
//! the caller's membership there, so a stale entry can only make a request
//! be refused, never let one through.

use std::time::Duration;

use tenantry_core::{Slug, TenantId};
use tenantry_db::{DbError, ScopedFutureExt, queries};

use crate::{ApiError, AppState};

/// How many slugs are remembered.
pub const CACHE_CAPACITY: u64 = 10_000;
/// How long a slug's tenant (or its absence) is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Slugs to tenant ids, remembered briefly (an absent tenant too, so
/// repeated requests for a slug that does not exist cost no lookup).
pub struct AddressedTenants {
    cache: moka::sync::Cache<String, Option<TenantId>>,
}

impl std::fmt::Debug for AddressedTenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressedTenants")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Default for AddressedTenants {
    fn default() -> Self {
        Self::new(CACHE_CAPACITY, CACHE_TTL)
    }
}

impl AddressedTenants {
    #[must_use]
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    async fn by_slug(&self, state: &AppState, slug: &str) -> Result<Option<TenantId>, ApiError> {
        if let Some(found) = self.cache.get(slug) {
            return Ok(found);
        }
        // A name no tenant can have is not looked up.
        if Slug::parse(slug).is_err() {
            return Ok(None);
        }
        let key = slug.to_owned();
        let found = state
            .db
            .platform()
            .run(|conn| {
                async move {
                    match queries::tenants::find_by_slug(conn, &key).await {
                        Ok(tenant) => Ok::<_, DbError>(Some(tenant.id)),
                        Err(diesel::result::Error::NotFound) => Ok(None),
                        Err(e) => Err(e.into()),
                    }
                }
                .scope_boxed()
            })
            .await?;
        self.cache.insert(slug.to_owned(), found);
        Ok(found)
    }
}

/// The answer to a tenant that does not exist, or that the caller may not
/// use: the same for both, so no caller learns whether a tenant it is not
/// a member of exists.
#[must_use]
pub fn no_such_tenant() -> ApiError {
    ApiError::forbidden("no such tenant, or not one this token may use")
}

/// The tenant a token that names none acts in: the one the request
/// addresses, detected in this order: a verified custom domain
/// (`custom_hosts`, found by `AppState::tenant_for_host`), then the
/// subdomain, then the path. `addressed`: the slugs the request gives (path
/// and host, `extract::addressed_slugs`; an empty one is a host that could
/// not be read). All must agree — the gate checks every custom domain and
/// every slug against the tenant it picks, in SQL; none at all is refused,
/// saying how to name one.
pub async fn addressed_tenant(
    state: &AppState,
    custom_hosts: &[String],
    addressed: &[String],
) -> Result<TenantId, ApiError> {
    if let Some(host) = custom_hosts.first() {
        return state
            .tenant_for_host(host)
            .await?
            .ok_or_else(no_such_tenant);
    }
    let Some(first) = addressed.first() else {
        return Err(ApiError::forbidden(
            "this token names no tenant and the request addresses none: \
             address one (/t/{slug}/v1/… or {slug}.<base domain>) or use a token that names it",
        ));
    };
    if addressed.iter().any(|slug| slug != first) {
        return Err(ApiError::TenantMismatch);
    }
    if first.is_empty() {
        return Err(no_such_tenant());
    }
    state
        .addressed_tenants
        .by_slug(state, first)
        .await?
        .ok_or_else(no_such_tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_holds_its_bound_and_forgets_after_its_ttl() {
        let tenants = AddressedTenants::new(10, Duration::from_millis(200));
        for i in 0..1_000 {
            tenants.cache.insert(format!("t{i}"), Some(TenantId::new()));
        }
        tenants.cache.run_pending_tasks();
        assert!(tenants.cache.entry_count() <= 10);
        tenants.cache.insert("kept".to_owned(), None);
        assert_eq!(tenants.cache.get("kept"), Some(None));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(tenants.cache.get("kept"), None);
    }
}
