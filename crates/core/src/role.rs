//! A member's role in a tenant. Roles are ordered — `viewer` < `member` <
//! `admin` < `owner` — and each grants a set of tenant-plane scopes, so
//! every permission check on the tenant plane is a scope check, whether the
//! caller is a member (scopes from its role) or a machine credential
//! (scopes from its token).

use std::fmt;
use std::str::FromStr;

use crate::{Scope, Scopes};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Reads and writes the tenant's resources.
    Member,
    /// A member who also manages members, API keys and settings.
    Admin,
    /// An admin who may also manage owners; a tenant keeps at least one.
    Owner,
}

/// A role name that is not one of `owner`, `admin`, `member`, `viewer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected owner, admin, member or viewer")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Self; 4] = [Self::Viewer, Self::Member, Self::Admin, Self::Owner];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// The tenant-plane scopes this role grants.
    #[must_use]
    pub fn scopes(self) -> Scopes {
        let mut scopes = vec![Scope::TenantRead];
        if self >= Self::Member {
            scopes.push(Scope::TenantWrite);
        }
        if self >= Self::Admin {
            scopes.push(Scope::TenantAdmin);
        }
        scopes.into_iter().collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_what_they_may_do() {
        assert!(Role::Viewer < Role::Member);
        assert!(Role::Member < Role::Admin);
        assert!(Role::Admin < Role::Owner);
    }

    #[test]
    fn a_viewer_reads_only_and_only_admins_administer() {
        let viewer = Role::Viewer.scopes();
        assert!(viewer.contains(Scope::TenantRead));
        assert!(!viewer.contains(Scope::TenantWrite));
        assert!(!viewer.contains(Scope::TenantAdmin));
        assert!(Role::Member.scopes().contains(Scope::TenantWrite));
        assert!(!Role::Member.scopes().contains(Scope::TenantAdmin));
        for role in [Role::Admin, Role::Owner] {
            assert!(role.scopes().contains(Scope::TenantAdmin), "{role}");
        }
        for role in Role::ALL {
            assert!(!role.scopes().contains(Scope::PlatformAdmin), "{role}");
        }
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("Owner".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }
}
