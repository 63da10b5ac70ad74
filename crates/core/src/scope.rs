//! OAuth scopes (RFC 9068 `scope`), parsed once at the edge.

use std::collections::BTreeSet;
use std::fmt;

/// The scopes Tenantry understands. Anything else in a token is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read the tenant plane.
    TenantRead,
    /// Write the tenant plane (implies nothing about reading).
    TenantWrite,
    /// Administer the tenant: its members, API keys and settings.
    TenantAdmin,
    /// Everything under `/v1/admin`.
    PlatformAdmin,
}

impl Scope {
    pub const ALL: [Self; 4] = [
        Self::TenantRead,
        Self::TenantWrite,
        Self::TenantAdmin,
        Self::PlatformAdmin,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TenantRead => "tenant:read",
            Self::TenantWrite => "tenant:write",
            Self::TenantAdmin => "tenant:admin",
            Self::PlatformAdmin => "platform:admin",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The set of known scopes a token grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// From a space-separated `scope` string and/or a `scopes` list; unknown
    /// names are dropped.
    pub fn from_claims<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        Self(
            words
                .into_iter()
                .flat_map(str::split_whitespace)
                .filter_map(Scope::parse)
                .collect(),
        )
    }

    #[must_use]
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// The RFC 9068 `scope` string.
    #[must_use]
    pub fn to_claim(&self) -> String {
        self.0
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_space_separated_scope_string() {
        let scopes = Scopes::from_claims(["tenant:read  tenant:write"]);
        assert!(scopes.contains(Scope::TenantRead));
        assert!(scopes.contains(Scope::TenantWrite));
        assert!(!scopes.contains(Scope::PlatformAdmin));
    }

    #[test]
    fn merges_a_scopes_array_and_drops_unknown_names() {
        let scopes = Scopes::from_claims(["platform:admin", "email", "TENANT:READ", "tenant:read"]);
        assert_eq!(
            scopes.iter().collect::<Vec<_>>(),
            vec![Scope::TenantRead, Scope::PlatformAdmin]
        );
    }

    #[test]
    fn round_trips_through_the_claim_string() {
        let scopes: Scopes = [Scope::TenantWrite, Scope::TenantRead]
            .into_iter()
            .collect();
        assert_eq!(scopes.to_claim(), "tenant:read tenant:write");
        assert_eq!(Scopes::from_claims([scopes.to_claim().as_str()]), scopes);
    }
}
