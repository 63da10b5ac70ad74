use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::{DeliveryId, WebhookId};
use tenantry_db::queries::webhooks::{Delivery, Endpoint, OutboxCounts};

/// A webhook endpoint: where events are POSTed, signed with its secret
/// (shown only when the endpoint is created and when its secret is
/// rotated).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: WebhookId,
    /// `http` or `https`; never a loopback, private, link-local or metadata
    /// address unless the operator allows private targets.
    #[schema(example = "https://billing.example.com/hooks/tenantry")]
    pub url: String,
    /// The event types delivered (`user.created`, `tenant.suspend`, ...);
    /// `null`: every event.
    pub event_types: Option<Vec<String>>,
    pub description: String,
    /// A disabled endpoint gets no new deliveries (pending ones still go).
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for WebhookView {
    fn from(e: Endpoint) -> Self {
        Self {
            id: WebhookId::from(e.id),
            url: e.url,
            event_types: e.event_types,
            description: e.description,
            enabled: e.enabled,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret: the only time the secret is shown
/// (creation, rotation). Keep it; it verifies `Tenantry-Signature`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookSecretView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` and 64 hex digits: the HMAC-SHA256 key of every signature.
    #[schema(example = "whsec_3f2a...")]
    pub secret: String,
}

/// One attempt to deliver.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub at: Option<DateTime<Utc>>,
    /// The HTTP status the endpoint answered, if it answered.
    pub status_code: Option<i32>,
    /// Why there was no (2xx) answer: `timeout`, `connect`,
    /// `refused_address` (the SSRF guard), `invalid_url`, `request`, or
    /// `http_<status>`.
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
}

/// An event's delivery to one endpoint, with its attempts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    /// `pending` (due at `next_attempt_at`), `delivered`, or `failed`
    /// (every attempt used; `replay` makes it pending again).
    #[schema(example = "delivered")]
    pub status: String,
    /// Attempts since it was created or last replayed.
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body POSTed: `{id, type, tenant_id, occurred_at, data}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Every attempt recorded (the latest 50), oldest first.
    pub attempt_log: Vec<AttemptView>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let attempt_log = d
            .attempt_log
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| AttemptView {
                        at: e
                            .get("at")
                            .and_then(|v| serde_json::from_value(v.clone()).ok()),
                        status_code: e
                            .get("status")
                            .and_then(serde_json::Value::as_i64)
                            .and_then(|s| i32::try_from(s).ok()),
                        error: e
                            .get("error")
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned),
                        duration_ms: e.get("duration_ms").and_then(serde_json::Value::as_i64),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            id: DeliveryId::from(d.id),
            webhook_id: WebhookId::from(d.endpoint_id),
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            payload: d.payload,
            attempt_log,
        }
    }
}

/// The webhook outbox across all tenants and the platform.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutboxView {
    /// Deliveries waiting (or between attempts) to tenants' endpoints.
    pub tenant_pending: i64,
    /// Deliveries to tenants' endpoints that used every attempt.
    pub tenant_failed: i64,
    pub platform_pending: i64,
    pub platform_failed: i64,
    /// Since this process started: attempts answered 2xx.
    pub delivered_total: u64,
    /// Since this process started: attempts that failed (to be retried).
    pub failed_attempts_total: u64,
    /// Since this process started: deliveries that used every attempt.
    pub gave_up_total: u64,
}

impl OutboxView {
    #[must_use]
    pub fn new(c: OutboxCounts, totals: (u64, u64, u64)) -> Self {
        Self {
            tenant_pending: c.tenant_pending,
            tenant_failed: c.tenant_failed,
            platform_pending: c.platform_pending,
            platform_failed: c.platform_failed,
            delivered_total: totals.0,
            failed_attempts_total: totals.1,
            gave_up_total: totals.2,
        }
    }
}
