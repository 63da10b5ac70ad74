//! Tenantry's domain types. Nothing here performs I/O: no database, no HTTP,
//! no clock reads, so every rule in this crate is testable as a pure function.

pub mod cursor;
pub mod host;
pub mod id;
pub mod input;
pub mod lifecycle;
pub mod quota;
pub mod role;
pub mod scope;
pub mod slug;
pub mod status;
pub mod tuning;

pub use cursor::Cursor;
pub use host::{Hostname, HostnameError};
pub use id::{
    AccountId, ApiKeyId, ClusterId, DeliveryId, DomainId, EventId, InstanceId, MemberId, PlanId,
    TenantId, UserId, WebhookId,
};
pub use input::{Email, Name, Region};
pub use lifecycle::{Action, InvalidTransition, transition};
pub use quota::{Amounts, Exceeded, Resource};
pub use role::{Role, UnknownRole};
pub use scope::{Scope, Scopes};
pub use slug::{Slug, SlugError};
pub use status::{TenantStatus, UnknownStatus};
