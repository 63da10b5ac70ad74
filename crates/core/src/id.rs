//! Typed identifiers. A `TenantId` cannot be passed where an `InstanceId`
//! belongs; all of them are UUIDs in the database.

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::{FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{Output, ToSql};
use diesel::sql_types;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            Serialize, Deserialize, AsExpression, FromSqlRow,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = sql_types::Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random (time-ordered, v7) id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl ToSql<sql_types::Uuid, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
                <Uuid as ToSql<sql_types::Uuid, Pg>>::to_sql(&self.0, out)
            }
        }

        impl FromSql<sql_types::Uuid, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> diesel::deserialize::Result<Self> {
                <Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(bytes).map(Self)
            }
        }
    };
}

typed_id!(
    /// A tenant: the unit of isolation. Every tenant-scoped row carries one.
    TenantId
);
typed_id!(UserId);
typed_id!(ApiKeyId);
typed_id!(ClusterId);
typed_id!(InstanceId);
typed_id!(EventId);
typed_id!(
    /// An account: the customer that owns one or more tenants.
    AccountId
);
typed_id!(
    /// A plan: a named quota template tenants are sold on.
    PlanId
);
typed_id!(
    /// A person's membership of one tenant, with a role.
    MemberId
);
typed_id!(
    /// A custom domain registered by a tenant.
    DomainId
);
typed_id!(
    /// A webhook endpoint (a tenant's, or the platform's).
    WebhookId
);
typed_id!(
    /// One event's delivery to one webhook endpoint.
    DeliveryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_string_form() {
        let id = TenantId::new();
        let parsed: TenantId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }

    #[test]
    fn ids_reject_non_uuid_text() {
        assert!("not-a-uuid".parse::<InstanceId>().is_err());
        assert!("".parse::<TenantId>().is_err());
    }

    #[test]
    fn ids_serialize_as_bare_uuid_strings() {
        let uuid = Uuid::nil();
        let json = serde_json::to_string(&TenantId::from_uuid(uuid)).unwrap();
        assert_eq!(json, format!("\"{uuid}\""));
        let back: TenantId = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_uuid(), &uuid);
    }
}
