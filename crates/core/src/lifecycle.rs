//! The tenant lifecycle (design.md "Lifecycle") as a pure function.
//!
//! | from \ to  | active   | suspended | archived | deleted |
//! |------------|----------|-----------|----------|---------|
//! | active     | —        | suspend   | archive  | delete  |
//! | suspended  | activate | —         | archive  | delete  |
//! | archived   | —        | —         | —        | delete  |
//! | deleted    | —        | —         | restore (only before purge) | — |

use std::fmt;

use crate::TenantStatus;

/// What an operator asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Suspend,
    Activate,
    Archive,
    Delete,
    Restore,
}

impl Action {
    pub const ALL: [Self; 5] = [
        Self::Suspend,
        Self::Activate,
        Self::Archive,
        Self::Delete,
        Self::Restore,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Activate => "activate",
            Self::Archive => "archive",
            Self::Delete => "delete",
            Self::Restore => "restore",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The status the action leads to, wherever it is allowed.
    #[must_use]
    pub const fn target(self) -> TenantStatus {
        match self {
            Self::Suspend => TenantStatus::Suspended,
            Self::Activate => TenantStatus::Active,
            Self::Archive | Self::Restore => TenantStatus::Archived,
            Self::Delete => TenantStatus::Deleted,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transition the table does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a tenant that is {from}")]
pub struct InvalidTransition {
    pub from: TenantStatus,
    pub action: Action,
}

impl InvalidTransition {
    #[must_use]
    pub const fn to(&self) -> TenantStatus {
        self.action.target()
    }
}

/// The status after `action`, or why not. "Restore only before purge" is
/// the caller's to check: a purge is not a status.
pub const fn transition(
    from: TenantStatus,
    action: Action,
) -> Result<TenantStatus, InvalidTransition> {
    use Action as A;
    use TenantStatus as S;
    match (from, action) {
        (S::Active, A::Suspend)
        | (S::Suspended, A::Activate)
        | (S::Active | S::Suspended, A::Archive)
        | (S::Active | S::Suspended | S::Archived, A::Delete)
        | (S::Deleted, A::Restore) => Ok(action.target()),
        _ => Err(InvalidTransition { from, action }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TenantStatus as S;

    /// design.md's table, cell by cell: (from, the action named in the
    /// cell, to). Everything else is refused.
    const TABLE: [(S, Action, S); 8] = [
        (S::Active, Action::Suspend, S::Suspended),
        (S::Active, Action::Archive, S::Archived),
        (S::Active, Action::Delete, S::Deleted),
        (S::Suspended, Action::Activate, S::Active),
        (S::Suspended, Action::Archive, S::Archived),
        (S::Suspended, Action::Delete, S::Deleted),
        (S::Archived, Action::Delete, S::Deleted),
        (S::Deleted, Action::Restore, S::Archived),
    ];

    #[test]
    fn every_status_and_action_pair_follows_the_design_table() {
        for from in S::ALL {
            for action in Action::ALL {
                let cell = TABLE.iter().find(|(f, a, _)| *f == from && *a == action);
                match (transition(from, action), cell) {
                    (Ok(to), Some((_, _, expected))) => assert_eq!(to, *expected),
                    (Err(e), None) => assert_eq!((e.from, e.to()), (from, action.target())),
                    (got, cell) => panic!("{from} --{action}-->: got {got:?}, table says {cell:?}"),
                }
            }
        }
    }

    #[test]
    fn no_status_transitions_to_itself() {
        for from in S::ALL {
            for action in Action::ALL {
                if let Ok(to) = transition(from, action) {
                    assert_ne!(from, to);
                }
            }
        }
    }

    #[test]
    fn actions_round_trip_through_their_names() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("purge"), None);
    }
}
