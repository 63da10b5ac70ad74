//! Members and roles: a person (the identity provider's `sub`) is a member
//! of a tenant with a role — `viewer` < `member` < `admin` < `owner`
//! (`tenantry_core::Role`) — and the role's scopes decide what the tenant
//! plane lets them do. Managing members needs `tenant:admin`; only an owner
//! (or a platform admin) may make someone an owner or take it away; a tenant
//! that has an owner keeps at least one, also under concurrency (every
//! change that could take an owner away locks the tenant's owner rows
//! first). Every change is audited (`member.added`, `member.role_changed`,
//! `member.removed`) and recorded as a tenant event, in its transaction.

use diesel::result::DatabaseErrorKind;
use serde_json::json;
use tenantry_core::{MemberId, Role, Scope, Scopes, TenantId};
use tenantry_db::Conn;
use tenantry_db::ScopedFutureExt;
use tenantry_db::queries::{self, members};

use crate::error::on_constraint;
use crate::views::{List, MemberView};
use crate::{Actor, Error, Operations, Page, TenantActor};

/// The longest subject accepted (as the token's `sub`: bytes).
pub const MAX_SUBJECT_BYTES: usize = 256;

/// What a tenant-plane caller may do, as its request's tenant gate found
/// it: a machine credential's scopes, or a member's role (lowered by the
/// token's `role` claim, never raised) and its scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub scopes: Scopes,
    /// The member's effective role; `None` for a machine credential.
    pub role: Option<Role>,
}

impl Authority {
    /// A machine credential (a service-issued or API-key token): its scopes.
    #[must_use]
    pub fn machine(scopes: Scopes) -> Self {
        Self { scopes, role: None }
    }

    /// A member whose row says `role` and whose token claims `claimed`: the
    /// lower of the two.
    #[must_use]
    pub fn member(role: Role, claimed: Option<Role>) -> Self {
        let role = claimed.map_or(role, |claimed| claimed.min(role));
        Self {
            scopes: role.scopes(),
            role: Some(role),
        }
    }

    #[must_use]
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// Whether every scope of `scopes` is one of this caller's.
    #[must_use]
    pub fn covers(&self, scopes: &Scopes) -> bool {
        scopes.iter().all(|s| self.allows(s))
    }

    fn manages_owners(&self) -> bool {
        self.role == Some(Role::Owner)
    }
}

/// A person, by the subject their identity provider puts in `sub`: 1–256
/// bytes, kept exactly as given, nothing misleading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject(String);

impl Subject {
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if input.len() > MAX_SUBJECT_BYTES {
            return Err(format!("at most {MAX_SUBJECT_BYTES} bytes"));
        }
        if input.chars().any(char::is_control) {
            return Err("must not contain control characters".to_owned());
        }
        tenantry_core::input::readable(input)?;
        Ok(Self(input.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A member to add.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub subject: Subject,
    pub role: Role,
}

fn parse_role(member: &tenantry_db::models::Member) -> Result<Role, Error> {
    member
        .role
        .parse()
        .map_err(|_| Error::Internal(format!("member {} has an unknown role", member.id)))
}

fn duplicate(err: diesel::result::Error) -> Error {
    on_constraint(
        err,
        DatabaseErrorKind::UniqueViolation,
        "members_tenant_subject",
        || Error::conflict("this subject is already a member of the tenant"),
    )
}

const OWNERS_ONLY: &str = "only an owner may make someone an owner or take it away";

fn snapshot(view: &MemberView) -> serde_json::Value {
    json!({ "id": view.id, "subject": view.subject, "role": view.role })
}

/// The audit entry and the tenant's event of one change, in its transaction.
async fn record(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    actor: &Actor,
    action: &str,
    before: Option<&MemberView>,
    after: Option<&MemberView>,
) -> Result<(), Error> {
    let subject = after.or(before).map(|m| *m.id.as_uuid());
    let data = json!({
        "subject": after.or(before).map(|m| m.subject.clone()),
        "role": after.map(|m| m.role.clone()),
        "previous_role": before.map(|m| m.role.clone()),
    });
    queries::events::record(conn, tenant, action, actor.as_str(), subject, data).await?;
    queries::audit::record(
        conn,
        Some(tenant),
        actor.as_str(),
        action,
        before.map(snapshot),
        after.map(snapshot),
        None,
    )
    .await?;
    Ok(())
}

/// Adds a member, on the connection of a transaction in the tenant's
/// context (the tenant plane's, the admin plane's, or a provisioning one).
/// `owners`: whether the caller may make someone an owner.
pub(crate) async fn add_in(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    actor: &Actor,
    owners: bool,
    new: NewMember,
) -> Result<MemberView, Error> {
    if new.role == Role::Owner && !owners {
        return Err(Error::Forbidden(OWNERS_ONLY));
    }
    let member = members::create(conn, tenant, new.subject.as_str(), new.role.as_str())
        .await
        .map_err(duplicate)?;
    let view = MemberView::from(member);
    record(conn, tenant, actor, "member.added", None, Some(&view)).await?;
    Ok(view)
}

async fn change_role_in(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    actor: &Actor,
    owners: bool,
    id: MemberId,
    role: Role,
) -> Result<MemberView, Error> {
    // The owners' lock first: the rows read below are then the latest.
    let owner_ids = members::lock_owners(conn, tenant).await?;
    let current = members::get(conn, tenant, id).await?;
    let from = parse_role(&current)?;
    let before = MemberView::from(current);
    if from == role {
        return Ok(before);
    }
    if (from == Role::Owner || role == Role::Owner) && !owners {
        return Err(Error::Forbidden(OWNERS_ONLY));
    }
    if from == Role::Owner && owner_ids.iter().all(|o| *o == id) {
        return Err(Error::LastOwner);
    }
    let after = MemberView::from(members::set_role(conn, tenant, id, role.as_str()).await?);
    record(
        conn,
        tenant,
        actor,
        "member.role_changed",
        Some(&before),
        Some(&after),
    )
    .await?;
    Ok(after)
}

async fn remove_in(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    actor: &Actor,
    owners: bool,
    id: MemberId,
) -> Result<(), Error> {
    let owner_ids = members::lock_owners(conn, tenant).await?;
    let current = members::get(conn, tenant, id).await?;
    let from = parse_role(&current)?;
    if from == Role::Owner {
        if !owners {
            return Err(Error::Forbidden(OWNERS_ONLY));
        }
        if owner_ids.iter().all(|o| *o == id) {
            return Err(Error::LastOwner);
        }
    }
    if !members::delete(conn, tenant, id).await? {
        return Err(Error::NotFound);
    }
    let before = MemberView::from(current);
    record(conn, tenant, actor, "member.removed", Some(&before), None).await?;
    Ok(())
}

// --- tenant plane: on the caller's transaction, gate already passed ---

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> Result<List<MemberView>, Error> {
    let (items, more) = members::list(conn, tenant, page).await?;
    Ok(List::new(items, more, |m| *m.id.as_uuid()).map(Into::into))
}

pub async fn get(conn: &mut Conn<'_>, tenant: TenantId, id: MemberId) -> Result<MemberView, Error> {
    Ok(members::get(conn, tenant, id).await?.into())
}

fn require_admin(authority: &Authority) -> Result<(), Error> {
    if authority.allows(Scope::TenantAdmin) {
        Ok(())
    } else {
        Err(Error::Forbidden("requires scope tenant:admin"))
    }
}

pub async fn add(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    authority: &Authority,
    new: NewMember,
) -> Result<MemberView, Error> {
    require_admin(authority)?;
    add_in(
        conn,
        who.tenant,
        &who.actor,
        authority.manages_owners(),
        new,
    )
    .await
}

pub async fn change_role(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    authority: &Authority,
    id: MemberId,
    role: Role,
) -> Result<MemberView, Error> {
    require_admin(authority)?;
    change_role_in(
        conn,
        who.tenant,
        &who.actor,
        authority.manages_owners(),
        id,
        role,
    )
    .await
}

pub async fn remove(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    authority: &Authority,
    id: MemberId,
) -> Result<(), Error> {
    require_admin(authority)?;
    remove_in(conn, who.tenant, &who.actor, authority.manages_owners(), id).await
}

// --- admin plane: a platform admin seeds and manages people ---

/// The tenant `key` names, refused once its data is purged.
async fn live_tenant(ops: &Operations, key: &str) -> Result<TenantId, Error> {
    let tenant = ops
        .db
        .platform()
        .run(|conn| async move { crate::tenants::resolve(conn, key).await }.scope_boxed())
        .await?;
    if tenant.purged_at.is_some() {
        return Err(Error::TenantPurged);
    }
    Ok(tenant.id)
}

pub async fn admin_list(
    ops: &Operations,
    key: &str,
    page: Page,
) -> Result<List<MemberView>, Error> {
    let tenant = live_tenant(ops, key).await?;
    ops.db
        .tenant(tenant)
        .run(|conn| async move { list(conn, tenant, page).await }.scope_boxed())
        .await
}

/// [`admin_add`] on the connection of a provisioning transaction for
/// `tenant` the caller holds (an idempotent create claims its key in it
/// first); `tenant` comes from [`live`].
pub async fn admin_add_on(
    conn: &mut Conn<'_>,
    actor: &Actor,
    tenant: TenantId,
    new: NewMember,
) -> Result<MemberView, Error> {
    add_in(conn, tenant, actor, true, new).await
}

/// The live tenant `key` (an id or a slug) names, for the admin plane.
pub async fn live(ops: &Operations, key: &str) -> Result<TenantId, Error> {
    live_tenant(ops, key).await
}

/// Adds a member of any role (a platform admin may name owners).
pub async fn admin_add(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    new: NewMember,
) -> Result<MemberView, Error> {
    let tenant = live_tenant(ops, key).await?;
    ops.db
        .tenant(tenant)
        .writing()
        .run(|conn| async move { add_in(conn, tenant, actor, true, new).await }.scope_boxed())
        .await
}

pub async fn admin_change_role(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    id: MemberId,
    role: Role,
) -> Result<MemberView, Error> {
    let tenant = live_tenant(ops, key).await?;
    ops.db
        .tenant(tenant)
        .writing()
        .run(|conn| {
            async move { change_role_in(conn, tenant, actor, true, id, role).await }.scope_boxed()
        })
        .await
}

pub async fn admin_remove(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    id: MemberId,
) -> Result<(), Error> {
    let tenant = live_tenant(ops, key).await?;
    ops.db
        .tenant(tenant)
        .writing()
        .run(|conn| async move { remove_in(conn, tenant, actor, true, id).await }.scope_boxed())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_claim_lowers_a_members_role_and_never_raises_it() {
        let lowered = Authority::member(Role::Admin, Some(Role::Viewer));
        assert_eq!(lowered.role, Some(Role::Viewer));
        assert!(!lowered.allows(Scope::TenantWrite));
        let not_raised = Authority::member(Role::Viewer, Some(Role::Owner));
        assert_eq!(not_raised.role, Some(Role::Viewer));
        assert!(!not_raised.allows(Scope::TenantAdmin));
        assert_eq!(
            Authority::member(Role::Member, None).role,
            Some(Role::Member)
        );
    }

    #[test]
    fn only_owners_manage_owners_and_machines_never_do() {
        assert!(Authority::member(Role::Owner, None).manages_owners());
        assert!(!Authority::member(Role::Owner, Some(Role::Admin)).manages_owners());
        assert!(!Authority::member(Role::Admin, None).manages_owners());
        assert!(!Authority::machine(Role::Owner.scopes()).manages_owners());
    }

    #[test]
    fn subjects_are_bounded_and_readable() {
        assert!(Subject::parse("auth0|5f3a").is_ok());
        assert!(Subject::parse("").is_err());
        assert!(Subject::parse(&"x".repeat(257)).is_err());
        assert!(Subject::parse(&"x".repeat(256)).is_ok());
        assert!(Subject::parse("a\nb").is_err());
        assert!(Subject::parse("a\u{202E}b").is_err());
    }
}
