//! Accounts (admin plane): a B2B customer is an account that owns several
//! isolated tenants and is administered as one — its registry, its limits
//! over the sum of its tenants, and lifecycle actions applied to all its
//! tenants at once. Every change is audited in the same transaction.
//!
//! The account's quota is charged where the tenant's is
//! (`tenantry_db::queries::accounts::consume`, called by
//! `queries::quotas::consume`) and, for its tenant count, when a tenant is
//! created in it (`ops::tenants::create`); a purge gives both back.

use diesel::result::DatabaseErrorKind;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use tenantry_core::{AccountId, Action, Name, Slug, TenantStatus, transition};
use tenantry_db::Conn;
use tenantry_db::models::{Account, AccountLimits, Tenant};
use tenantry_db::queries::accounts::DEFAULT_ACCOUNT;
use tenantry_db::{ScopedFutureExt, queries};

use crate::error::on_constraint;
use crate::views::{AccountLimitsView, AccountTransitionView, AccountView, List, TenantView};
use crate::{Actor, Error, Operations, Page};

/// An account to create; limits left out are unlimited.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub slug: Slug,
    pub name: Name,
    pub limits: AccountLimitsView,
}

fn some<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i32>>, D::Error> {
    Option::<i32>::deserialize(d).map(Some)
}

/// Limits to change: a number sets one, `null` lifts it (unlimited), a
/// limit left out keeps its value.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountLimitsPatch {
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i32>)]
    pub max_tenants: Option<Option<i32>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i32>)]
    pub max_users: Option<Option<i32>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i32>)]
    pub max_api_keys: Option<Option<i32>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i32>)]
    pub max_clusters: Option<Option<i32>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i32>)]
    pub max_instances: Option<Option<i32>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i32>)]
    pub max_cpu_cores: Option<Option<i32>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i32>)]
    pub max_memory_gb: Option<Option<i32>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i32>)]
    pub max_storage_gb: Option<Option<i32>>,
}

impl AccountLimitsPatch {
    fn is_empty(&self) -> bool {
        [
            self.max_tenants,
            self.max_users,
            self.max_api_keys,
            self.max_clusters,
            self.max_instances,
            self.max_cpu_cores,
            self.max_memory_gb,
            self.max_storage_gb,
        ]
        .iter()
        .all(Option::is_none)
    }

    /// `base` with the given limits replaced; refused if one is negative.
    pub fn apply(&self, base: &AccountLimitsView) -> Result<AccountLimitsView, Error> {
        let pick =
            |name: &'static str, value: Option<Option<i32>>, current: Option<i32>| match value {
                Some(Some(v)) if v < 0 => Err(Error::validation(name, "must be 0 or more")),
                Some(v) => Ok(v),
                None => Ok(current),
            };
        Ok(AccountLimitsView {
            max_tenants: pick("max_tenants", self.max_tenants, base.max_tenants)?,
            max_users: pick("max_users", self.max_users, base.max_users)?,
            max_api_keys: pick("max_api_keys", self.max_api_keys, base.max_api_keys)?,
            max_clusters: pick("max_clusters", self.max_clusters, base.max_clusters)?,
            max_instances: pick("max_instances", self.max_instances, base.max_instances)?,
            max_cpu_cores: pick("max_cpu_cores", self.max_cpu_cores, base.max_cpu_cores)?,
            max_memory_gb: pick("max_memory_gb", self.max_memory_gb, base.max_memory_gb)?,
            max_storage_gb: pick("max_storage_gb", self.max_storage_gb, base.max_storage_gb)?,
        })
    }
}

impl From<&AccountLimitsView> for AccountLimitsPatch {
    fn from(l: &AccountLimitsView) -> Self {
        Self {
            max_tenants: Some(l.max_tenants),
            max_users: Some(l.max_users),
            max_api_keys: Some(l.max_api_keys),
            max_clusters: Some(l.max_clusters),
            max_instances: Some(l.max_instances),
            max_cpu_cores: Some(l.max_cpu_cores),
            max_memory_gb: Some(l.max_memory_gb),
            max_storage_gb: Some(l.max_storage_gb),
        }
    }
}

/// Fields to change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    pub name: Option<Name>,
    pub limits: AccountLimitsPatch,
}

/// `{id_or_slug}`: a key that parses as a UUID is only ever an id, anything
/// else only ever a slug (no account slug parses as a UUID:
/// `accounts_slug_not_uuid`).
pub async fn resolve(conn: &mut Conn<'_>, key: &str) -> Result<Account, Error> {
    match key.parse::<AccountId>() {
        Ok(id) => Ok(queries::accounts::get(conn, id).await?),
        Err(_) if !crate::could_name_a_row(key) => Err(Error::NotFound),
        Err(_) => Ok(queries::accounts::find_by_slug(conn, key).await?),
    }
}

async fn view(conn: &mut Conn<'_>, account: Account) -> Result<AccountView, Error> {
    let (limits, usage) = queries::accounts::limits_and_usage(conn, account.id).await?;
    Ok(AccountView::new(account, limits, usage))
}

fn snapshot(view: &AccountView) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or_default()
}

/// Creates the account with its quota and (zero) usage rows; audited as
/// `account.created`.
pub async fn create(
    ops: &Operations,
    actor: &Actor,
    new: NewAccount,
) -> Result<AccountView, Error> {
    ops.db
        .platform()
        .run(|conn| async move { create_on(conn, actor, new).await }.scope_boxed())
        .await
}

/// [`create`] on the connection of a platform-scope transaction the caller
/// holds (an idempotent create claims its key in it first).
pub async fn create_on(
    conn: &mut Conn<'_>,
    actor: &Actor,
    new: NewAccount,
) -> Result<AccountView, Error> {
    let limits = AccountLimitsPatch::from(&new.limits).apply(&AccountLimitsView::default())?;
    let id = AccountId::new();
    let account = queries::accounts::create(
        conn,
        id,
        new.slug.as_str(),
        new.name.as_str(),
        &AccountLimits::from(&limits),
    )
    .await
    .map_err(|e| {
        on_constraint(
            e,
            DatabaseErrorKind::UniqueViolation,
            "accounts_slug_unique",
            || Error::conflict("this account slug is taken"),
        )
    })?;
    let view = view(conn, account).await?;
    queries::audit::record(
        conn,
        None,
        actor.as_str(),
        "account.created",
        None,
        Some(json!({ "account": snapshot(&view) })),
        None,
    )
    .await?;
    Ok(view)
}

/// Accounts in id order.
pub async fn list(ops: &Operations, page: Page) -> Result<List<AccountView>, Error> {
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let (items, more) = queries::accounts::list(conn, page).await?;
                let more_ids = List::new(items, more, |a| *a.id.as_uuid());
                let mut views = Vec::with_capacity(more_ids.items.len());
                for account in more_ids.items {
                    views.push(view(conn, account).await?);
                }
                Ok(List {
                    items: views,
                    next_cursor: more_ids.next_cursor,
                })
            }
            .scope_boxed()
        })
        .await
}

pub async fn get(ops: &Operations, key: &str) -> Result<AccountView, Error> {
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let account = resolve(conn, key).await?;
                view(conn, account).await
            }
            .scope_boxed()
        })
        .await
}

/// Renames and/or changes the limits; audited as `account.updated` with
/// the account before and after. The default account is unmetered: limits
/// on it are refused.
pub async fn update(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    change: AccountChange,
) -> Result<AccountView, Error> {
    // Validate before any database work: every given value ≥ 0.
    change.limits.apply(&AccountLimitsView::default())?;
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let account = resolve(conn, key).await?;
                let id = account.id;
                let before = view(conn, account).await?;
                if !change.limits.is_empty() {
                    let Some(current) = before.limits.as_ref() else {
                        return Err(Error::validation(
                            "limits",
                            "the default account is unmetered: it takes no limits",
                        ));
                    };
                    let next = change.limits.apply(current)?;
                    queries::accounts::set_limits(conn, id, &AccountLimits::from(&next)).await?;
                }
                let renamed =
                    queries::accounts::rename(conn, id, change.name.as_ref().map(Name::as_str))
                        .await?;
                let after = view(conn, renamed).await?;
                queries::audit::record(
                    conn,
                    None,
                    actor.as_str(),
                    "account.updated",
                    Some(json!({ "account": snapshot(&before) })),
                    Some(json!({ "account": snapshot(&after) })),
                    None,
                )
                .await?;
                Ok(after)
            }
            .scope_boxed()
        })
        .await
}

/// The account's tenants in id order, optionally of one status.
pub async fn tenants(
    ops: &Operations,
    key: &str,
    status: Option<TenantStatus>,
    page: Page,
) -> Result<List<TenantView>, Error> {
    let retention = ops.tenancy.retention.period;
    let (items, more) = ops
        .db
        .platform()
        .run(|conn| {
            async move {
                let account = resolve(conn, key).await?;
                Ok::<_, Error>(
                    queries::tenants::list_in_account(conn, status, Some(account.id), page).await?,
                )
            }
            .scope_boxed()
        })
        .await?;
    Ok(List::new(items, more, |t| *t.id.as_uuid()).map(|t| TenantView::new(t, retention)))
}

/// Whether an account-wide `action` concerns this tenant at all: a purged
/// tenant is a tombstone; a deleted one is on its way out and only delete
/// (nothing to do) and restore concern it; restore concerns only deleted
/// tenants; a tenant already in the target status has nothing to do.
fn concerns(tenant: &Tenant, action: Action) -> bool {
    if tenant.purged_at.is_some() || tenant.status == action.target() {
        return false;
    }
    match action {
        Action::Restore => tenant.status == TenantStatus::Deleted,
        _ => tenant.status != TenantStatus::Deleted,
    }
}

/// How many slugs a refusal names at most.
const NAMED: usize = 20;

/// One lifecycle action on every tenant of the account, in ONE transaction:
/// all or nothing. If any tenant it concerns cannot make the transition
/// (the state machine forbids it, or a purge has started), nothing changes
/// and the answer is a conflict naming how many cannot and which (up to
/// 20 slugs). Tenants it does not concern (`concerns`) are left alone.
/// Audited per tenant (`tenant.<action>`, as a tenant's own action is,
/// naming the account) and once for the account (`account.<action>`).
pub async fn transition_all(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    action: Action,
    reason: Option<String>,
) -> Result<AccountTransitionView, Error> {
    let reason = crate::reason(reason)?;
    let retention = ops.tenancy.retention.period;
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let account = resolve(conn, key).await?;
                let all = queries::accounts::tenants_of(conn, account.id).await?;
                let (todo, left): (Vec<Tenant>, Vec<Tenant>) =
                    all.into_iter().partition(|t| concerns(t, action));
                let blocked: Vec<&Tenant> =
                    todo.iter().filter(|t| transition(t.status, action).is_err()).collect();
                if !blocked.is_empty() {
                    return Err(refusal(action, &blocked));
                }
                let mut changed = Vec::with_capacity(todo.len());
                for current in todo {
                    let to = action.target();
                    let Some(updated) =
                        queries::tenants::transition(conn, current.id, current.status, to).await?
                    else {
                        // Changed since it was read, or a purge has started:
                        // the whole action rolls back.
                        return Err(refusal(action, &[&current]));
                    };
                    let before = TenantView::new(current, retention);
                    let after = TenantView::new(updated, retention);
                    queries::audit::record(
                        conn,
                        Some(after.id),
                        actor.as_str(),
                        &format!("tenant.{action}"),
                        Some(json!({ "status": before.status })),
                        Some(json!({ "status": after.status, "deleted_at": after.deleted_at, "purge_after": after.purge_after, "account": account.id })),
                        reason.as_deref(),
                    )
                    .await?;
                    changed.push(after);
                }
                let unchanged: Vec<_> = left.into_iter().map(|t| t.id).collect();
                queries::audit::record(
                    conn,
                    None,
                    actor.as_str(),
                    &format!("account.{action}"),
                    None,
                    Some(json!({
                        "account": account.id,
                        "changed": changed.iter().map(|t| t.id).collect::<Vec<_>>(),
                        "unchanged": unchanged,
                    })),
                    reason.as_deref(),
                )
                .await?;
                Ok(AccountTransitionView {
                    account: account.id,
                    action: action.to_string(),
                    changed,
                    unchanged,
                })
            }
            .scope_boxed()
        })
        .await
}

fn refusal(action: Action, blocked: &[&Tenant]) -> Error {
    let named: Vec<String> = blocked
        .iter()
        .take(NAMED)
        .map(|t| format!("{} ({})", t.slug, t.status))
        .collect();
    let more = blocked.len().saturating_sub(NAMED);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Error::Conflict(
        format!(
            "{} of the account's tenants cannot {action}: {}{tail}; nothing was changed",
            blocked.len(),
            named.join(", ")
        )
        .into(),
    )
}

/// The account a new tenant goes into (`None`: the default), which must
/// exist; takes one of its `max_tenants` in the creating transaction.
pub(crate) async fn admit_tenant(
    conn: &mut Conn<'_>,
    account: Option<AccountId>,
) -> Result<AccountId, Error> {
    let account = account.unwrap_or(DEFAULT_ACCOUNT);
    queries::accounts::get(conn, account)
        .await
        .map_err(|e| match e {
            diesel::result::Error::NotFound => Error::validation("account", "no such account"),
            other => other.into(),
        })?;
    match queries::accounts::take_tenant(conn, account).await? {
        Ok(()) => Ok(account),
        Err((limit, used)) => Err(Error::Conflict(
            format!("the account's tenant limit is reached: {used} of {limit} tenants").into(),
        )),
    }
}
