use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::MemberId;
use tenantry_db::models::Member;

/// A person's membership of the tenant and its role.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub id: MemberId,
    /// The person: the identity provider's `sub` in their tokens. Unique
    /// within the tenant.
    pub subject: String,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        Self {
            id: m.id,
            subject: m.subject,
            role: m.role,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}
