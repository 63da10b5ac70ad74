//! The tenant registry and its lifecycle (admin plane). Every change is
//! audited in the same transaction, with the tenant before and after.

use diesel::result::DatabaseErrorKind;
use serde_json::json;
use tenantry_core::{AccountId, Action, Name, Slug, TenantId, TenantStatus, transition};
use tenantry_db::Conn;
use tenantry_db::models::{Limits, QuotaOrigin, Tenant};
use tenantry_db::{DbError, ScopedFutureExt, queries};

use crate::error::on_constraint;
use crate::quotas::LimitsPatch;
use crate::views::{DataHealthView, EventView, LimitsView, List, TenantView};
use crate::{Actor, Error, Operations, Page};

/// A tenant to create, on `plan` (by id or name) or on none; `limits`
/// override the plan's limits (or `[quotas.default]`) one by one, and stay
/// the tenant's own (overrides) when the plan changes.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: Slug,
    pub name: Name,
    pub limits: LimitsPatch,
    /// The tenant's first owner (a person's subject), added as a member in
    /// the same transaction.
    pub owner: Option<crate::members::Subject>,
    /// The account that owns it; `None`: the default account.
    pub account: Option<AccountId>,
    /// The plan (id or name) its limits come from; `None`: the defaults.
    pub plan: Option<String>,
}

/// Fields to change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct TenantChange {
    pub name: Option<Name>,
    pub legal_hold: Option<bool>,
    /// Why (at most 1000 characters); kept in the audit entry.
    pub reason: Option<String>,
}

/// `{id_or_slug}`: a key that parses as a UUID, in any form, is only ever
/// an id; anything else only ever a slug. Unambiguous because no slug
/// parses as a UUID (`Slug::parse`, and the `tenants_slug_not_uuid` CHECK).
pub async fn resolve(conn: &mut Conn<'_>, key: &str) -> Result<Tenant, Error> {
    match key.parse::<TenantId>() {
        Ok(id) => Ok(queries::tenants::get(conn, id).await?),
        Err(_) if !crate::could_name_a_row(key) => Err(Error::NotFound),
        Err(_) => Ok(queries::tenants::find_by_slug(conn, key).await?),
    }
}

fn snapshot(view: &TenantView) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or_default()
}

/// Creates the tenant with its quota and usage rows, in its account (which
/// counts it against its `max_tenants`), and, when named, its first owner as
/// a member; audited as `tenant.created` with the tenant and its limits (and
/// `member.added`). One provisioning transaction: the platform context for
/// the registry, the new tenant's own for its member.
pub async fn create(ops: &Operations, actor: &Actor, new: NewTenant) -> Result<TenantView, Error> {
    let id = TenantId::new();
    ops.db
        .platform()
        .provision(id, |conn| {
            async move { create_on(conn, &ops.tenancy, actor, id, new).await }.scope_boxed()
        })
        .await
}

/// [`create`] on the connection of a provisioning transaction for `id`
/// the caller holds (an idempotent create claims its key in it first,
/// `crate::idempotency::platform`).
pub async fn create_on(
    conn: &mut Conn<'_>,
    tenancy: &crate::Tenancy,
    actor: &Actor,
    id: TenantId,
    new: NewTenant,
) -> Result<TenantView, Error> {
    // Every given limit ≥ 0, before any database work.
    new.limits.apply(&tenancy.default_limits)?;
    let retention = tenancy.retention.period;
    let plan = match new.plan.as_deref() {
        Some(key) => Some(crate::plans::named(conn, key).await?),
        None => None,
    };
    let base = plan.as_ref().map_or_else(
        || tenancy.default_limits.clone(),
        |p| LimitsView::from(Limits::from(p)),
    );
    let limits = new.limits.apply(&base)?;
    // The account's tenant count first: a full account refuses before any
    // other work.
    let account = crate::accounts::admit_tenant(conn, new.account).await?;
    let tenant = queries::tenants::create_in_account(
        conn,
        id,
        new.slug.as_str(),
        new.name.as_str(),
        &(&limits).into(),
        Some(account),
    )
    .await
    .map_err(|e| {
        on_constraint(
            e,
            DatabaseErrorKind::UniqueViolation,
            "tenants_slug_unique",
            || {
                Error::conflict(
                    "this slug is taken (by a live tenant or one not yet purged and released)",
                )
            },
        )
    })?;
    let origin = QuotaOrigin {
        overrides: new.limits.given().into_iter().map(str::to_owned).collect(),
        plan_name: plan.as_ref().map(|p| p.name.clone()),
    };
    if let Some(plan) = &plan {
        queries::plans::set_plan(conn, id, Some(plan.id)).await?;
    }
    if plan.is_some() || !origin.overrides.is_empty() {
        queries::plans::set_origin(conn, id, &origin).await?;
    }
    let view = TenantView::new(tenant, retention);
    let after = json!({
        "tenant": snapshot(&view),
        "plan": origin.plan_name,
        "limits": limits,
    });
    queries::audit::record(
        conn,
        Some(id),
        actor.as_str(),
        "tenant.created",
        None,
        Some(after),
        None,
    )
    .await?;
    if let Some(subject) = new.owner {
        let owner = crate::members::NewMember {
            subject,
            role: tenantry_core::Role::Owner,
        };
        crate::members::add_in(conn, id, actor, true, owner).await?;
    }
    Ok(view)
}

/// Tenants in id order, optionally of one status and of one account.
pub async fn list(
    ops: &Operations,
    status: Option<TenantStatus>,
    account: Option<AccountId>,
    page: Page,
) -> Result<List<TenantView>, Error> {
    search(ops, status, account, None, page).await
}

/// The longest search text [`search`] takes.
pub const MAX_QUERY_CHARS: usize = 100;

/// A search text: trimmed, none when empty; refused (`q`) when longer than
/// [`MAX_QUERY_CHARS`] or holding a control character.
pub fn query_text(q: Option<&str>) -> Result<Option<String>, Error> {
    let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(Error::validation(
            "q",
            format!("at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    if q.chars().any(char::is_control) {
        return Err(Error::validation(
            "q",
            "must not contain control characters",
        ));
    }
    Ok(Some(q.to_owned()))
}

/// [`list`], optionally only the tenants whose slug or name contains `q`
/// (case-insensitive, `%` and `_` taken literally; see [`query_text`]).
pub async fn search(
    ops: &Operations,
    status: Option<TenantStatus>,
    account: Option<AccountId>,
    q: Option<&str>,
    page: Page,
) -> Result<List<TenantView>, Error> {
    let q = query_text(q)?;
    let retention = ops.tenancy.retention.period;
    let (items, more) = ops
        .db
        .platform()
        .run(|conn| {
            async move {
                Ok::<_, Error>(
                    queries::tenants::search(conn, status, account, q.as_deref(), page).await?,
                )
            }
            .scope_boxed()
        })
        .await?;
    Ok(List::new(items, more, |t| *t.id.as_uuid()).map(|t| TenantView::new(t, retention)))
}

pub async fn get(ops: &Operations, key: &str) -> Result<TenantView, Error> {
    let retention = ops.tenancy.retention.period;
    let tenant = ops
        .db
        .platform()
        .run(|conn| async move { resolve(conn, key).await }.scope_boxed())
        .await?;
    Ok(TenantView::new(tenant, retention))
}

/// Renames, or sets or lifts the legal hold; audited as `tenant.updated`
/// (with the reason, when given).
pub async fn update(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    change: TenantChange,
) -> Result<TenantView, Error> {
    let reason = crate::reason(change.reason.clone())?;
    let retention = ops.tenancy.retention.period;
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let before = TenantView::new(resolve(conn, key).await?, retention);
                let tenant = queries::tenants::update(
                    conn,
                    before.id,
                    change.name.as_ref().map(Name::as_str),
                    change.legal_hold,
                )
                .await?;
                let after = TenantView::new(tenant, retention);
                queries::audit::record(
                    conn,
                    Some(after.id),
                    actor.as_str(),
                    "tenant.updated",
                    Some(snapshot(&before)),
                    Some(snapshot(&after)),
                    reason.as_deref(),
                )
                .await?;
                Ok(after)
            }
            .scope_boxed()
        })
        .await
}

/// One lifecycle step, guarded by the tenant's current status: the pure
/// transition decides, the conditional UPDATE makes two racing admins get
/// one success and one `InvalidTransition`. Audited as `tenant.<action>`
/// with the reason.
pub async fn transition_to(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    action: Action,
    reason: Option<String>,
) -> Result<TenantView, Error> {
    let reason = crate::reason(reason)?;
    let retention = ops.tenancy.retention.period;
    // The tenant's own context too (besides the platform's): its webhook
    // endpoints hear of the change, picked under its RLS in this
    // transaction (`queries::audit::record`).
    let id = ops
        .db
        .platform()
        .run(|conn| async move { Ok::<_, Error>(resolve(conn, key).await?.id) }.scope_boxed())
        .await?;
    ops.db
        .platform()
        .provision(id, |conn| {
            async move {
                let current = queries::tenants::get(conn, id).await?;
                let refused = |from| Error::InvalidTransition { from, to: action.target() };
                let to = transition(current.status, action).map_err(|e| refused(e.from))?;
                if current.purged_at.is_some() {
                    return Err(refused(current.status));
                }
                let Some(updated) =
                    queries::tenants::transition(conn, current.id, current.status, to).await?
                else {
                    // Lost a race (or a purge has started): say where it stands now.
                    let now = queries::tenants::get(conn, current.id).await?;
                    return Err(refused(now.status));
                };
                let before = TenantView::new(current, retention);
                let after = TenantView::new(updated, retention);
                queries::audit::record(
                    conn,
                    Some(after.id),
                    actor.as_str(),
                    &format!("tenant.{action}"),
                    Some(json!({ "status": before.status })),
                    Some(json!({ "status": after.status, "deleted_at": after.deleted_at, "purge_after": after.purge_after })),
                    reason.as_deref(),
                )
                .await?;
                Ok(after)
            }
            .scope_boxed()
        })
        .await
}

/// Status, rows per table, usage against limits, last activity, size.
pub async fn health(ops: &Operations, key: &str) -> Result<DataHealthView, Error> {
    let (tenant, limits, usage) = ops
        .db
        .platform()
        .run(|conn| {
            async move {
                let tenant = resolve(conn, key).await?;
                let (limits, usage) = queries::tenants::limits_and_usage(conn, tenant.id).await?;
                Ok::<_, Error>((tenant, limits, usage))
            }
            .scope_boxed()
        })
        .await?;
    let id = tenant.id;
    // Row counts need the tenant's own context: the platform context sees
    // no tenant rows.
    let data = ops
        .db
        .tenant(id)
        .run(|conn| {
            async move { Ok::<_, DbError>(queries::export::health(conn, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(DataHealthView {
        id: tenant.id,
        slug: tenant.slug,
        status: tenant.status,
        counts: data.counts,
        usage: usage.map(Into::into),
        limits: limits.map(Into::into),
        last_activity_at: data.last_activity_at,
        approx_bytes: data.approx_bytes,
    })
}

/// The tenant's `limit` latest events (its own activity), newest first,
/// read in its own scope (the platform context sees no tenant rows).
pub async fn latest_events(
    ops: &Operations,
    key: &str,
    limit: i64,
) -> Result<Vec<EventView>, Error> {
    let tenant = ops
        .db
        .platform()
        .run(|conn| async move { resolve(conn, key).await }.scope_boxed())
        .await?;
    let id = tenant.id;
    let events = ops
        .db
        .tenant(id)
        .run(|conn| {
            async move { Ok::<_, DbError>(queries::events::latest(conn, id, limit).await?) }
                .scope_boxed()
        })
        .await?;
    Ok(events
        .into_iter()
        .map(|e| EventView {
            id: *e.id.as_uuid(),
            kind: e.kind,
            actor: e.actor,
            subject: e.subject,
            data: e.data,
            at: e.at,
        })
        .collect())
}

/// A snapshot export being read: rows as `(table, row)` while they are
/// read, then whether the export is whole.
#[derive(Debug)]
pub struct Export {
    pub rows: tokio::sync::mpsc::Receiver<(&'static str, serde_json::Value)>,
    pub complete: tokio::sync::oneshot::Receiver<bool>,
}

/// Starts exporting a tenant's rows in ONE snapshot of its own scope (RLS:
/// only its rows can come out); refused once its data has been purged.
pub async fn export(ops: &Operations, key: &str) -> Result<Export, Error> {
    let tenant = ops
        .db
        .platform()
        .run(|conn| async move { resolve(conn, key).await }.scope_boxed())
        .await?;
    if tenant.purged_at.is_some() {
        return Err(Error::TenantPurged);
    }
    let id = tenant.id;
    let (tx, rows) = tokio::sync::mpsc::channel(256);
    let (done, complete) = tokio::sync::oneshot::channel();
    let db = ops.db.clone();
    tokio::spawn(async move {
        let result = db
            .tenant(id)
            .read_snapshot(|conn| {
                async move { Ok::<_, DbError>(queries::export::export(conn, id, tx).await?) }
                    .scope_boxed()
            })
            .await;
        if let Err(e) = &result {
            tracing::error!(tenant = %id, error = %e, "export failed midway");
        }
        let _ = done.send(result.is_ok());
    });
    Ok(Export { rows, complete })
}
