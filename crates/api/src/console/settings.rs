use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};

use serde::Deserialize;

/// `[console]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Serve the console at `/console`.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// A session unused this long ends.
    #[serde(with = "humantime_serde", default = "default_idle")]
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in however it is used (or when
    /// the token it was exchanged for expires, if sooner).
    #[serde(with = "humantime_serde", default = "default_absolute")]
    pub absolute_timeout: Duration,
    /// Sign-in attempts per client address per minute (0 = unlimited).
    #[serde(default = "default_sign_in_per_minute")]
    pub sign_in_per_minute: u32,
    /// The session cookie's `Secure` attribute: `auto` (when the request
    /// came over TLS, as the connection or `X-Forwarded-Proto` says),
    /// `always`, or `never`.
    #[serde(default)]
    pub secure_cookie: SecureCookie,
}

/// When the session cookie is marked `Secure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookie {
    #[default]
    Auto,
    Always,
    Never,
}

fn default_enabled() -> bool {
    true
}

fn default_idle() -> Duration {
    Duration::from_secs(30 * 60)
}

fn default_absolute() -> Duration {
    Duration::from_secs(12 * 3600)
}

fn default_sign_in_per_minute() -> u32 {
    10
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            enabled: default_enabled(),
            idle_timeout: default_idle(),
            absolute_timeout: default_absolute(),
            sign_in_per_minute: default_sign_in_per_minute(),
            secure_cookie: SecureCookie::Auto,
        }
    }
}

/// The console's settings and its sign-in limiter, shared by every worker.
pub struct ConsoleState {
    pub settings: ConsoleSettings,
    /// Per client address; `None`: unlimited.
    sign_ins: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl std::fmt::Debug for ConsoleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Addresses the sign-in limiter remembers before it forgets idle ones.
const MAX_SIGN_IN_KEYS: usize = 10_000;

impl ConsoleState {
    #[must_use]
    pub fn new(settings: ConsoleSettings) -> Self {
        let sign_ins = NonZeroU32::new(settings.sign_in_per_minute)
            .map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)));
        Self { settings, sign_ins }
    }

    /// One sign-in attempt from `client` (IPv6 addresses count per /64, as
    /// the API's client limit does).
    #[must_use]
    pub fn allow_sign_in(&self, client: IpAddr) -> bool {
        let Some(limiter) = &self.sign_ins else {
            return true;
        };
        if limiter.len() > MAX_SIGN_IN_KEYS {
            limiter.retain_recent();
        }
        limiter
            .check_key(&crate::ratelimit::client_key(client))
            .is_ok()
    }
}
