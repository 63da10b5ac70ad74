use tenantry_core::TenantId;

/// Who did it, as the event and audit logs record it: a token's subject,
/// or `cli:<user>@<host>` for the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// The subject of a verified token (or of a console session).
    #[must_use]
    pub fn subject(sub: impl Into<String>) -> Self {
        Self(sub.into())
    }

    /// The person running the CLI on this machine: `cli:<user>@<host>`.
    #[must_use]
    pub fn cli() -> Self {
        let user = ["SUDO_USER", "USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Self(format!("cli:{user}@{host}"))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant-plane caller: the tenant it acts in and who it is.
#[derive(Debug, Clone)]
pub struct TenantActor {
    pub tenant: TenantId,
    pub actor: Actor,
}
