//! Webhooks: endpoints (a tenant admin's for its tenant's events, a
//! platform admin's for lifecycle, quota and purge events), the outbox the
//! event and audit writers fill in their own transaction
//! (`tenantry_db::queries::webhooks`), and the delivery worker that drains
//! it: claim due deliveries (`FOR UPDATE SKIP LOCKED`, so replicas share
//! the work), commit, POST each signed, record the attempt; retry with
//! exponential backoff and jitter until `max_attempts`, then `failed`
//! (replayable).
//!
//! No transaction is open while a request is in flight: a claim moves the
//! delivery a lease ahead, so a replica that dies mid-send leaves it due
//! again (at least once; receivers deduplicate by `Tenantry-Delivery-Id`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tenantry_db::Conn;

use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use tenantry_core::{DeliveryId, TenantId, WebhookId};
use tenantry_db::queries::webhooks::{
    self as q, AttemptRecord, Claimed, EndpointChange, NewEndpoint, Plane,
};
use tenantry_db::queries::{self};
use tenantry_db::{Db, DbError, ScopedFutureExt};

use crate::views::{DeliveryView, List, OutboxView, WebhookSecretView, WebhookView};
use crate::{Actor, Error, Operations, Page, TenantActor};

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Run the delivery worker in `serve` (the outbox fills either way).
    pub enabled: bool,
    /// How often the worker looks for due deliveries.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// One attempt's limit, connect to response headers.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts before a delivery is `failed` (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled after each next one.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Allow endpoints on loopback, private, link-local and metadata
    /// addresses (the SSRF guard off: tests, or an operator who means it).
    pub allow_private_targets: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            max_attempts: 8,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
            allow_private_targets: false,
        }
    }
}

impl WebhookSettings {
    /// Refuses settings the worker cannot run with.
    pub fn check(&self) -> Result<(), String> {
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return Err("webhooks.max_attempts: 1 to 100".to_owned());
        }
        if self.poll_interval.is_zero() || self.timeout.is_zero() {
            return Err("webhooks.poll_interval and webhooks.timeout must be positive".to_owned());
        }
        if self.backoff_max < self.backoff_base {
            return Err("webhooks.backoff_max must be at least backoff_base".to_owned());
        }
        Ok(())
    }

    /// The wait before attempt `n + 1` after `n` failed ones: `base·2^(n-1)`
    /// capped at `backoff_max`, less up to half of it at random (jitter:
    /// replicas and endpoints do not retry in lockstep).
    #[must_use]
    pub fn backoff(&self, failed: u32, random: u64) -> Duration {
        let exp = failed.saturating_sub(1).min(30);
        let full = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        let half = full / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if nanos == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(random % nanos)
        };
        full.saturating_sub(jitter)
    }
}

// ---- input ---------------------------------------------------------------

/// The longest URL an endpoint may have.
pub const MAX_URL_CHARS: usize = 2000;
/// At most this many event types per endpoint.
pub const MAX_EVENT_TYPES: usize = 50;

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    /// `None`: every event.
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A change; `None` keeps the value (`event_types: Some(None)`: every
/// event).
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub event_types: Option<Option<Vec<String>>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// Whether `ip` is one an endpoint may not be on (unless private targets
/// are allowed): loopback, private, link-local (cloud metadata at
/// 169.254.169.254 included), shared (CGNAT, 100.64/10, where some clouds
/// put metadata), unspecified, broadcast, multicast, documentation, and
/// IPv6's equivalents (unique local, link-local, IPv4-mapped forms).
#[must_use]
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0) // IPv4-compatible
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (wraps any IPv4)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15
        || o[0] >= 240
}

/// Parses and checks an endpoint URL: `http` or `https`, a host, no
/// credentials, no fragment; when private targets are not allowed, no IP
/// literal that [`is_forbidden`] and no `localhost` name (names are
/// checked again, resolved, at every delivery).
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, Error> {
    let field = "url";
    if url.chars().count() > MAX_URL_CHARS {
        return Err(Error::validation(
            field,
            format!("at most {MAX_URL_CHARS} characters"),
        ));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::validation(field, format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::validation(field, "the scheme must be http or https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::validation(
            field,
            "must not carry credentials (user:password@)",
        ));
    }
    if parsed.fragment().is_some() {
        return Err(Error::validation(field, "must not have a fragment"));
    }
    let Some(host) = parsed.host() else {
        return Err(Error::validation(field, "must name a host"));
    };
    if !allow_private {
        let refused = match host {
            url::Host::Ipv4(ip) => is_forbidden(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => is_forbidden(IpAddr::V6(ip)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
        };
        if refused {
            return Err(Error::validation(
                field,
                "loopback, private, link-local and metadata addresses are not allowed",
            ));
        }
    }
    Ok(parsed)
}

fn check_event_types(types: Option<Vec<String>>) -> Result<Option<Vec<String>>, Error> {
    let Some(mut types) = types else {
        return Ok(None);
    };
    let field = "event_types";
    if types.is_empty() {
        return Err(Error::validation(
            field,
            "name at least one event type, or leave it out (null) for every event",
        ));
    }
    if types.len() > MAX_EVENT_TYPES {
        return Err(Error::validation(
            field,
            format!("at most {MAX_EVENT_TYPES} event types"),
        ));
    }
    for t in &types {
        let ok = !t.is_empty()
            && t.len() <= 100
            && t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_'));
        if !ok {
            return Err(Error::validation(
                field,
                "each is 1 to 100 characters of a-z, 0-9, '.' and '_' (like user.created)",
            ));
        }
    }
    types.sort();
    types.dedup();
    Ok(Some(types))
}

fn check_description(d: Option<String>) -> Result<Option<String>, Error> {
    match d {
        Some(d) if d.chars().count() > 500 => {
            Err(Error::validation("description", "at most 500 characters"))
        }
        Some(d) if d.chars().any(char::is_control) => Err(Error::validation(
            "description",
            "must not contain control characters",
        )),
        other => Ok(other),
    }
}

/// A fresh signing secret: `whsec_` and 244 random bits (two v4 UUIDs), hex.
fn secret() -> String {
    format!(
        "whsec_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// `Tenantry-Signature`'s value for `body` sent at `t` (unix seconds):
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
#[must_use]
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("t={t},v1={hex}")
}

// ---- endpoints (both planes) ---------------------------------------------

struct Checked {
    url: String,
    event_types: Option<Vec<String>>,
    description: String,
    enabled: bool,
}

fn check_new(new: NewWebhook, allow_private: bool) -> Result<Checked, Error> {
    let url = check_url(new.url.trim(), allow_private)?;
    Ok(Checked {
        url: url.to_string(),
        event_types: check_event_types(new.event_types)?,
        description: check_description(new.description)?.unwrap_or_default(),
        enabled: new.enabled.unwrap_or(true),
    })
}

struct CheckedPatch {
    url: Option<String>,
    event_types: Option<Option<Vec<String>>>,
    description: Option<String>,
    enabled: Option<bool>,
}

fn check_patch(p: WebhookPatch, allow_private: bool) -> Result<CheckedPatch, Error> {
    Ok(CheckedPatch {
        url: p
            .url
            .map(|u| check_url(u.trim(), allow_private).map(|u| u.to_string()))
            .transpose()?,
        event_types: p.event_types.map(check_event_types).transpose()?,
        description: check_description(p.description)?,
        enabled: p.enabled,
    })
}

fn audit_view(v: &WebhookView) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

async fn create_in(
    conn: &mut Conn<'_>,
    plane: Plane,
    actor: &Actor,
    c: Checked,
) -> Result<WebhookSecretView, Error> {
    let secret = secret();
    let endpoint = q::create_endpoint(
        conn,
        plane,
        &NewEndpoint {
            id: *WebhookId::new().as_uuid(),
            url: &c.url,
            event_types: c.event_types.as_deref(),
            description: &c.description,
            enabled: c.enabled,
            secret: &secret,
        },
    )
    .await?;
    let view = WebhookView::from(endpoint);
    audit(
        conn,
        plane,
        actor,
        "webhook.created",
        None,
        Some(audit_view(&view)),
    )
    .await?;
    Ok(WebhookSecretView {
        webhook: view,
        secret,
    })
}

async fn update_in(
    conn: &mut Conn<'_>,
    plane: Plane,
    actor: &Actor,
    id: WebhookId,
    p: CheckedPatch,
) -> Result<WebhookView, Error> {
    let before = q::get_endpoint(conn, plane, *id.as_uuid())
        .await?
        .ok_or(Error::NotFound)?;
    let change = EndpointChange {
        url: p.url.as_deref(),
        event_types: p.event_types.as_ref().map(Option::as_deref),
        description: p.description.as_deref(),
        enabled: p.enabled,
        secret: None,
    };
    let after = q::update_endpoint(conn, plane, *id.as_uuid(), &change)
        .await?
        .ok_or(Error::NotFound)?;
    let (before, after) = (WebhookView::from(before), WebhookView::from(after));
    audit(
        conn,
        plane,
        actor,
        "webhook.updated",
        Some(audit_view(&before)),
        Some(audit_view(&after)),
    )
    .await?;
    Ok(after)
}

async fn rotate_in(
    conn: &mut Conn<'_>,
    plane: Plane,
    actor: &Actor,
    id: WebhookId,
) -> Result<WebhookSecretView, Error> {
    let secret = secret();
    let change = EndpointChange {
        secret: Some(&secret),
        ..EndpointChange::default()
    };
    let endpoint = q::update_endpoint(conn, plane, *id.as_uuid(), &change)
        .await?
        .ok_or(Error::NotFound)?;
    let view = WebhookView::from(endpoint);
    audit(
        conn,
        plane,
        actor,
        "webhook.secret_rotated",
        None,
        Some(json!({ "id": view.id })),
    )
    .await?;
    Ok(WebhookSecretView {
        webhook: view,
        secret,
    })
}

async fn delete_in(
    conn: &mut Conn<'_>,
    plane: Plane,
    actor: &Actor,
    id: WebhookId,
) -> Result<(), Error> {
    let gone = q::delete_endpoint(conn, plane, *id.as_uuid())
        .await?
        .ok_or(Error::NotFound)?;
    let view = WebhookView::from(gone);
    audit(
        conn,
        plane,
        actor,
        "webhook.deleted",
        Some(audit_view(&view)),
        None,
    )
    .await
}

async fn deliveries_in(
    conn: &mut Conn<'_>,
    plane: Plane,
    id: WebhookId,
    page: Page,
) -> Result<List<DeliveryView>, Error> {
    q::get_endpoint(conn, plane, *id.as_uuid())
        .await?
        .ok_or(Error::NotFound)?;
    let (items, more) = q::list_deliveries(conn, plane, *id.as_uuid(), page).await?;
    Ok(List::new(items, more, |d| d.id).map(DeliveryView::from))
}

async fn replay_in(
    conn: &mut Conn<'_>,
    plane: Plane,
    actor: &Actor,
    id: WebhookId,
    delivery: DeliveryId,
) -> Result<DeliveryView, Error> {
    let d = q::replay(conn, plane, *id.as_uuid(), *delivery.as_uuid())
        .await?
        .ok_or(Error::NotFound)?;
    audit(
        conn,
        plane,
        actor,
        "webhook.delivery_replayed",
        None,
        Some(json!({ "webhook": id, "delivery": delivery, "event_id": d.event_id })),
    )
    .await?;
    Ok(d.into())
}

async fn audit(
    conn: &mut Conn<'_>,
    plane: Plane,
    actor: &Actor,
    action: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), Error> {
    let tenant = match plane {
        Plane::Tenant(t) => Some(t),
        Plane::Platform => None,
    };
    queries::audit::record(conn, tenant, actor.as_str(), action, before, after, None).await?;
    Ok(())
}

// ---- tenant plane (the caller's transaction, the tenant's context) -------

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> Result<List<WebhookView>, Error> {
    let (items, more) = q::list_endpoints(conn, Plane::Tenant(tenant), page).await?;
    Ok(List::new(items, more, |e| e.id).map(WebhookView::from))
}

pub async fn get(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: WebhookId,
) -> Result<WebhookView, Error> {
    q::get_endpoint(conn, Plane::Tenant(tenant), *id.as_uuid())
        .await?
        .map(WebhookView::from)
        .ok_or(Error::NotFound)
}

/// Registers an endpoint for the tenant's events; the answer carries its
/// secret (shown this once). Validated before any write.
pub async fn create(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    settings: &WebhookSettings,
    new: NewWebhook,
) -> Result<WebhookSecretView, Error> {
    let c = check_new(new, settings.allow_private_targets)?;
    create_in(conn, Plane::Tenant(who.tenant), &who.actor, c).await
}

/// Checks a new endpoint as [`create`] would, writing nothing.
pub fn check(settings: &WebhookSettings, new: &NewWebhook) -> Result<(), Error> {
    check_new(new.clone(), settings.allow_private_targets).map(|_| ())
}

pub async fn update(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    settings: &WebhookSettings,
    id: WebhookId,
    patch: WebhookPatch,
) -> Result<WebhookView, Error> {
    let p = check_patch(patch, settings.allow_private_targets)?;
    update_in(conn, Plane::Tenant(who.tenant), &who.actor, id, p).await
}

pub async fn rotate_secret(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    id: WebhookId,
) -> Result<WebhookSecretView, Error> {
    rotate_in(conn, Plane::Tenant(who.tenant), &who.actor, id).await
}

pub async fn delete(conn: &mut Conn<'_>, who: &TenantActor, id: WebhookId) -> Result<(), Error> {
    delete_in(conn, Plane::Tenant(who.tenant), &who.actor, id).await
}

pub async fn deliveries(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: WebhookId,
    page: Page,
) -> Result<List<DeliveryView>, Error> {
    deliveries_in(conn, Plane::Tenant(tenant), id, page).await
}

pub async fn replay(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    id: WebhookId,
    delivery: DeliveryId,
) -> Result<DeliveryView, Error> {
    replay_in(conn, Plane::Tenant(who.tenant), &who.actor, id, delivery).await
}

// ---- admin plane (platform endpoints, the platform context) --------------

pub async fn admin_list(ops: &Operations, page: Page) -> Result<List<WebhookView>, Error> {
    let (items, more) = ops
        .db
        .platform()
        .run(|conn| {
            async move { Ok::<_, Error>(q::list_endpoints(conn, Plane::Platform, page).await?) }
                .scope_boxed()
        })
        .await?;
    Ok(List::new(items, more, |e| e.id).map(WebhookView::from))
}

pub async fn admin_get(ops: &Operations, id: WebhookId) -> Result<WebhookView, Error> {
    ops.db
        .platform()
        .run(|conn| {
            async move {
                q::get_endpoint(conn, Plane::Platform, *id.as_uuid())
                    .await?
                    .map(WebhookView::from)
                    .ok_or(Error::NotFound)
            }
            .scope_boxed()
        })
        .await
}

pub async fn admin_create(
    ops: &Operations,
    actor: &Actor,
    settings: &WebhookSettings,
    new: NewWebhook,
) -> Result<WebhookSecretView, Error> {
    let c = check_new(new, settings.allow_private_targets)?;
    ops.db
        .platform()
        .run(|conn| async move { create_in(conn, Plane::Platform, actor, c).await }.scope_boxed())
        .await
}

pub async fn admin_update(
    ops: &Operations,
    actor: &Actor,
    settings: &WebhookSettings,
    id: WebhookId,
    patch: WebhookPatch,
) -> Result<WebhookView, Error> {
    let p = check_patch(patch, settings.allow_private_targets)?;
    ops.db
        .platform()
        .run(|conn| {
            async move { update_in(conn, Plane::Platform, actor, id, p).await }.scope_boxed()
        })
        .await
}

pub async fn admin_rotate_secret(
    ops: &Operations,
    actor: &Actor,
    id: WebhookId,
) -> Result<WebhookSecretView, Error> {
    ops.db
        .platform()
        .run(|conn| async move { rotate_in(conn, Plane::Platform, actor, id).await }.scope_boxed())
        .await
}

pub async fn admin_delete(ops: &Operations, actor: &Actor, id: WebhookId) -> Result<(), Error> {
    ops.db
        .platform()
        .run(|conn| async move { delete_in(conn, Plane::Platform, actor, id).await }.scope_boxed())
        .await
}

pub async fn admin_deliveries(
    ops: &Operations,
    id: WebhookId,
    page: Page,
) -> Result<List<DeliveryView>, Error> {
    ops.db
        .platform()
        .run(|conn| {
            async move { deliveries_in(conn, Plane::Platform, id, page).await }.scope_boxed()
        })
        .await
}

pub async fn admin_replay(
    ops: &Operations,
    actor: &Actor,
    id: WebhookId,
    delivery: DeliveryId,
) -> Result<DeliveryView, Error> {
    ops.db
        .platform()
        .run(|conn| {
            async move { replay_in(conn, Plane::Platform, actor, id, delivery).await }.scope_boxed()
        })
        .await
}

/// The outbox's counts (all tenants and the platform) and this process's
/// delivery totals.
pub async fn outbox(ops: &Operations, stats: &DeliveryStats) -> Result<OutboxView, Error> {
    let counts = ops
        .db
        .platform()
        .run(|conn| async move { Ok::<_, Error>(q::outbox_counts(conn).await?) }.scope_boxed())
        .await?;
    Ok(OutboxView::new(counts, stats.totals()))
}

// ---- the delivery worker ---------------------------------------------------

/// What the worker did since the process started (`/metrics` shows them as
/// `tenantry_webhook_deliveries_total{outcome}`).
#[derive(Debug, Default)]
pub struct DeliveryStats {
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    gave_up: AtomicU64,
}

impl DeliveryStats {
    /// (delivered, failed attempts, gave up).
    #[must_use]
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.failed_attempts.load(Ordering::Relaxed),
            self.gave_up.load(Ordering::Relaxed),
        )
    }

    fn count(&self, outcome: &str) {
        let counter = match outcome {
            "delivered" => &self.delivered,
            "failed" => &self.gave_up,
            _ => &self.failed_attempts,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Deliveries claimed per plane (and per tenant) per round.
const BATCH: i64 = 20;
/// Tenants with due deliveries looked at per round.
const TENANTS_PER_ROUND: i64 = 50;

/// The worker: every `poll_interval`, deliver what is due, until `stop`
/// turns true.
pub async fn run_worker(
    db: Db,
    settings: WebhookSettings,
    stats: Arc<DeliveryStats>,
    mut stop: tenantry_sweeper::Stop,
) {
    let mut tick = tokio::time::interval(settings.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.raised() => return,
        }
        // A round that delivered a full batch runs again at once.
        for _ in 0..10 {
            match deliver_due(&db, &settings, &stats).await {
                Ok(n) if n >= usize::try_from(BATCH).unwrap_or(usize::MAX) => {}
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery round failed");
                    break;
                }
            }
        }
    }
}

/// One round: the platform's due deliveries, then each tenant's (claimed in
/// its own context). Returns how many were attempted.
pub async fn deliver_due(
    db: &Db,
    settings: &WebhookSettings,
    stats: &DeliveryStats,
) -> Result<usize, DbError> {
    let lease = settings.timeout + Duration::from_secs(30);
    let mut attempted = 0;
    let claimed = db
        .platform()
        .run(|conn| {
            async move { Ok::<_, DbError>(q::claim(conn, Plane::Platform, BATCH, lease).await?) }
                .scope_boxed()
        })
        .await?;
    attempted += send_all(db, settings, stats, Plane::Platform, claimed).await;
    let tenants = db
        .platform()
        .run(|conn| {
            async move { Ok::<_, DbError>(q::tenants_with_due(conn, TENANTS_PER_ROUND).await?) }
                .scope_boxed()
        })
        .await?;
    for tenant in tenants {
        let plane = Plane::Tenant(tenant);
        let claimed = db
            .tenant(tenant)
            .run(|conn| {
                async move { Ok::<_, DbError>(q::claim(conn, plane, BATCH, lease).await?) }
                    .scope_boxed()
            })
            .await?;
        attempted += send_all(db, settings, stats, plane, claimed).await;
    }
    Ok(attempted)
}

async fn send_all(
    db: &Db,
    settings: &WebhookSettings,
    stats: &DeliveryStats,
    plane: Plane,
    claimed: Vec<Claimed>,
) -> usize {
    let n = claimed.len();
    let sends = claimed.into_iter().map(|c| async move {
        let record = attempt(settings, &c).await;
        stats.count(record.outcome);
        let id = c.delivery.id;
        let result = match plane {
            Plane::Platform => {
                db.platform()
                    .run(|conn| {
                        async move {
                            Ok::<_, DbError>(q::record_attempt(conn, plane, id, &record).await?)
                        }
                        .scope_boxed()
                    })
                    .await
            }
            Plane::Tenant(t) => {
                db.tenant(t)
                    .run(|conn| {
                        async move {
                            Ok::<_, DbError>(q::record_attempt(conn, plane, id, &record).await?)
                        }
                        .scope_boxed()
                    })
                    .await
            }
        };
        if let Err(e) = result {
            // The lease ends and the delivery is attempted again.
            tracing::warn!(error = %e, delivery = %id, "cannot record a webhook attempt");
        }
    });
    futures_util::future::join_all(sends).await;
    n
}

/// Where a URL's host resolves, each address checked by the SSRF guard.
async fn resolve(url: &reqwest::Url, allow_private: bool) -> Result<Vec<SocketAddr>, &'static str> {
    let port = url.port_or_known_default().ok_or("invalid_url")?;
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| "dns")?
            .collect(),
        None => return Err("invalid_url"),
    };
    if addrs.is_empty() {
        return Err("dns");
    }
    if !allow_private && addrs.iter().any(|a| is_forbidden(a.ip())) {
        return Err("refused_address");
    }
    Ok(addrs)
}

/// One attempt: resolve and check the address, POST the payload signed,
/// and say what to record.
async fn attempt(settings: &WebhookSettings, c: &Claimed) -> AttemptRecord {
    let started = Instant::now();
    let at = Utc::now();
    let (status, error) = match post(settings, c).await {
        Ok(status) if (200..300).contains(&status) => (Some(i32::from(status)), None),
        Ok(status) => (Some(i32::from(status)), Some(format!("http_{status}"))),
        Err(kind) => (None, Some(kind)),
    };
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let failed = u32::try_from(c.delivery.attempts)
        .unwrap_or(0)
        .saturating_add(1);
    let (outcome, next) = if error.is_none() {
        ("delivered", at)
    } else if failed >= settings.max_attempts {
        ("failed", at)
    } else {
        let random = u64::try_from(uuid::Uuid::new_v4().as_u128() & u128::from(u64::MAX))
            .unwrap_or_default();
        let wait = settings.backoff(failed, random);
        let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
        ("pending", at + wait)
    };
    AttemptRecord {
        entry: json!({
            "at": at,
            "status": status,
            "error": error,
            "duration_ms": duration_ms,
        }),
        status_code: status,
        error,
        outcome,
        next_attempt_at: next,
        at,
    }
}

/// The POST; the answer's status, or the kind of failure. The response
/// body is never read (the connection is dropped with it).
async fn post(settings: &WebhookSettings, c: &Claimed) -> Result<u16, String> {
    let url = reqwest::Url::parse(&c.url).map_err(|_| "invalid_url".to_owned())?;
    let addrs = resolve(&url, settings.allow_private_targets)
        .await
        .map_err(str::to_owned)?;
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("tenantry-webhooks/", env!("CARGO_PKG_VERSION")));
    // Connect to the addresses just checked, not to what a second lookup
    // might answer (DNS rebinding).
    if let Some(url::Host::Domain(name)) = url.host() {
        builder = builder.resolve_to_addrs(name, &addrs);
    }
    let client = builder.build().map_err(|_| "request".to_owned())?;
    let body = serde_json::to_vec(&c.delivery.payload).map_err(|_| "request".to_owned())?;
    let t = Utc::now().timestamp();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("tenantry-signature", signature(&c.secret, t, &body))
        .header("tenantry-event-id", c.delivery.event_id.to_string())
        .header("tenantry-event-type", c.delivery.event_type.as_str())
        .header("tenantry-delivery-id", c.delivery.id.to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timeout".to_owned()
            } else if e.is_connect() {
                "connect".to_owned()
            } else {
                "request".to_owned()
            }
        })?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_refuses_private_and_metadata_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://example.com/hook", false).is_ok());
        for bad in [
            "ftp://example.com/x",
            "http://127.0.0.1:8080/x",
            "http://[::1]/x",
            "http://localhost/x",
            "http://169.254.169.254/latest",
            "http://user:pw@example.com/",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:8080/x", true).is_ok());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_at_most_half() {
        let s = WebhookSettings {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            ..WebhookSettings::default()
        };
        assert_eq!(s.backoff(1, 0), Duration::from_secs(10));
        assert_eq!(s.backoff(2, 0), Duration::from_secs(20));
        assert_eq!(s.backoff(3, 0), Duration::from_secs(40));
        assert_eq!(s.backoff(9, 0), Duration::from_secs(60));
        for r in [1, 12345, u64::MAX] {
            let b = s.backoff(2, r);
            assert!(
                b <= Duration::from_secs(20) && b >= Duration::from_secs(10),
                "{b:?}"
            );
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 does not cover this framing; check against a value
        // computed independently: HMAC-SHA256("key", "1.{}").
        let sig = signature("key", 1, b"{}");
        assert!(sig.starts_with("t=1,v1="));
        assert_eq!(sig.len(), "t=1,v1=".len() + 64);
        assert_ne!(sig, signature("key", 2, b"{}"));
        assert_ne!(sig, signature("other", 1, b"{}"));
    }
}
