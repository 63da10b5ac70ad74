//! People of a tenant. Email unique within the tenant; each counts against
//! `max_users`.

use diesel::result::DatabaseErrorKind;
use serde_json::json;
use tenantry_core::{Email, Name, Resource, TenantId, UserId};
use tenantry_db::Conn;
use tenantry_db::queries::users;

use crate::error::on_constraint;
use crate::views::{List, UserView};
use crate::{Error, Page, TenantActor, quotas};

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: Option<Name>,
}

/// Fields to change; `None` keeps the current value. `name: Some(None)`
/// clears the name.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub email: Option<Email>,
    pub name: Option<Option<Name>>,
}

fn duplicate_email(err: diesel::result::Error) -> Error {
    on_constraint(
        err,
        DatabaseErrorKind::UniqueViolation,
        "users_tenant_email",
        || Error::conflict("a user with this email already exists"),
    )
}

fn name_str(name: Option<&Name>) -> &str {
    name.map_or("", Name::as_str)
}

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> Result<List<UserView>, Error> {
    let (items, more) = users::list(conn, tenant, page).await?;
    Ok(List::new(items, more, |u| *u.id.as_uuid()).map(Into::into))
}

pub async fn get(conn: &mut Conn<'_>, tenant: TenantId, id: UserId) -> Result<UserView, Error> {
    Ok(users::get(conn, tenant, id).await?.into())
}

pub async fn create(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    new: NewUser,
) -> Result<UserView, Error> {
    let tenant = who.tenant;
    let user = users::create(
        conn,
        tenant,
        new.email.as_str(),
        name_str(new.name.as_ref()),
    )
    .await
    .map_err(duplicate_email)?;
    quotas::charge(conn, tenant, quotas::one(Resource::Users)).await?;
    tenantry_db::queries::events::record(
        conn,
        tenant,
        "user.created",
        who.actor.as_str(),
        Some(*user.id.as_uuid()),
        json!({"email": user.email}),
    )
    .await?;
    Ok(user.into())
}

pub async fn update(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    id: UserId,
    change: UserChange,
) -> Result<UserView, Error> {
    let tenant = who.tenant;
    let user = users::update(
        conn,
        tenant,
        id,
        change.email.as_ref().map(Email::as_str),
        change.name.as_ref().map(|n| name_str(n.as_ref())),
    )
    .await
    .map_err(duplicate_email)?;
    tenantry_db::queries::events::record(
        conn,
        tenant,
        "user.updated",
        who.actor.as_str(),
        Some(*id.as_uuid()),
        json!({}),
    )
    .await?;
    Ok(user.into())
}

pub async fn delete(conn: &mut Conn<'_>, who: &TenantActor, id: UserId) -> Result<(), Error> {
    let tenant = who.tenant;
    if !users::delete(conn, tenant, id).await? {
        return Err(Error::NotFound);
    }
    quotas::charge(conn, tenant, quotas::one(Resource::Users).negated()).await?;
    tenantry_db::queries::events::record(
        conn,
        tenant,
        "user.deleted",
        who.actor.as_str(),
        Some(*id.as_uuid()),
        json!({}),
    )
    .await?;
    Ok(())
}
