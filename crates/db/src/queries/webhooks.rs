//! Webhook endpoints and their outbox (sql/0016), for both planes: a
//! tenant's (tenant-scoped tables, the tenant's own context) and the
//! platform's (control-plane tables, the platform-admin context).
//!
//! The outbox is written by [`enqueue_tenant`] and [`enqueue_platform`],
//! which `events::record` and `audit::record` call in the transaction of
//! the change they record: the endpoints are read under the caller's RLS
//! context, so a tenant's event can only ever reach that tenant's
//! endpoints (another tenant's are not visible to the SELECT that picks
//! them), and a rollback takes the deliveries with it.

use crate::Conn;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Interval, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use tenantry_core::TenantId;
use uuid::Uuid;

use crate::models::Page;
use crate::schema::{
    platform_webhook_deliveries, platform_webhook_endpoints, webhook_deliveries, webhook_endpoints,
};

/// Which plane's tables: a tenant's (its own context must be set) or the
/// platform's (the platform-admin context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    Tenant(TenantId),
    Platform,
}

impl Plane {
    fn endpoints(self) -> &'static str {
        match self {
            Self::Tenant(_) => "webhook_endpoints",
            Self::Platform => "platform_webhook_endpoints",
        }
    }

    fn deliveries(self) -> &'static str {
        match self {
            Self::Tenant(_) => "webhook_deliveries",
            Self::Platform => "platform_webhook_deliveries",
        }
    }

    /// The column naming the tenant on a delivery.
    fn tenant_column(self) -> &'static str {
        match self {
            Self::Tenant(_) => "tenant_id",
            Self::Platform => "about_tenant",
        }
    }

    /// The scope condition, on `$1` (the tenant, or NULL for the platform):
    /// a tenant's queries name `tenant_id` (Citus routes them to one shard).
    fn scope(self) -> &'static str {
        match self {
            Self::Tenant(_) => "tenant_id = $1",
            Self::Platform => "$1::uuid IS NULL",
        }
    }

    fn bind(self) -> Option<Uuid> {
        match self {
            Self::Tenant(t) => Some(*t.as_uuid()),
            Self::Platform => None,
        }
    }
}

/// An event as the outbox carries it.
#[derive(Debug, Clone)]
pub struct OutEvent<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub tenant: Option<TenantId>,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl OutEvent<'_> {
    /// The body every delivery of this event POSTs.
    #[must_use]
    pub fn payload(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "type": self.kind,
            "tenant_id": self.tenant,
            "occurred_at": self.occurred_at,
            "data": self.data,
        })
    }
}

/// One delivery row per enabled endpoint of `tenant` subscribed to the
/// event (its `event_types` NULL, or naming it). Read under the caller's
/// RLS context: in a context that is not `tenant`'s own, no endpoint is
/// visible and nothing is written.
pub async fn enqueue_tenant(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    event: &OutEvent<'_>,
) -> QueryResult<usize> {
    enqueue_tenant_all(conn, tenant, event.kind, std::slice::from_ref(event)).await
}

/// Deliveries in one insert at most: six parameters each, under the
/// protocol's 65,535 per statement.
const MAX_DELIVERIES_PER_INSERT: usize = 10_000;

/// [`enqueue_tenant`] for many events of one kind: one lookup of the
/// subscribed endpoints, one insert of every delivery.
pub async fn enqueue_tenant_all(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    kind: &str,
    events: &[OutEvent<'_>],
) -> QueryResult<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let endpoints: Vec<Uuid> = webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant))
        .filter(webhook_endpoints::enabled.eq(true))
        .filter(
            webhook_endpoints::event_types
                .is_null()
                .or(webhook_endpoints::event_types
                    .assume_not_null()
                    .contains(vec![kind.to_owned()])),
        )
        .select(webhook_endpoints::id)
        .load(conn)
        .await?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    // A statement takes at most 65,535 parameters, six per delivery.
    let per_statement = (MAX_DELIVERIES_PER_INSERT / endpoints.len()).max(1);
    let mut written = 0;
    for chunk in events.chunks(per_statement) {
        let mut rows = Vec::with_capacity(chunk.len() * endpoints.len());
        for event in chunk {
            let payload = event.payload();
            for endpoint in &endpoints {
                rows.push((
                    webhook_deliveries::tenant_id.eq(tenant),
                    webhook_deliveries::id.eq(Uuid::now_v7()),
                    webhook_deliveries::endpoint_id.eq(*endpoint),
                    webhook_deliveries::event_id.eq(event.id),
                    webhook_deliveries::event_type.eq(event.kind),
                    webhook_deliveries::payload.eq(payload.clone()),
                ));
            }
        }
        written += diesel::insert_into(webhook_deliveries::table)
            .values(rows)
            .execute(conn)
            .await?;
    }
    Ok(written)
}

/// One delivery row per enabled platform endpoint subscribed to the event.
/// Only the platform-admin context sees platform endpoints: in any other,
/// nothing is written.
pub async fn enqueue_platform(conn: &mut Conn<'_>, event: &OutEvent<'_>) -> QueryResult<usize> {
    let endpoints: Vec<Uuid> = platform_webhook_endpoints::table
        .filter(platform_webhook_endpoints::enabled.eq(true))
        .filter(
            platform_webhook_endpoints::event_types.is_null().or(
                platform_webhook_endpoints::event_types
                    .assume_not_null()
                    .contains(vec![event.kind.to_owned()]),
            ),
        )
        .select(platform_webhook_endpoints::id)
        .load(conn)
        .await?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let payload = event.payload();
    let tenant = event.tenant;
    let rows: Vec<_> = endpoints
        .into_iter()
        .map(|endpoint| {
            (
                platform_webhook_deliveries::id.eq(Uuid::now_v7()),
                platform_webhook_deliveries::endpoint_id.eq(endpoint),
                platform_webhook_deliveries::about_tenant.eq(tenant),
                platform_webhook_deliveries::event_id.eq(event.id),
                platform_webhook_deliveries::event_type.eq(event.kind),
                platform_webhook_deliveries::payload.eq(payload.clone()),
            )
        })
        .collect();
    diesel::insert_into(platform_webhook_deliveries::table)
        .values(rows)
        .execute(conn)
        .await
}

/// An endpoint, secret included (only the ops layer decides who sees it).
#[derive(Debug, Clone, QueryableByName)]
pub struct Endpoint {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    pub event_types: Option<Vec<String>>,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Bool)]
    pub enabled: bool,
    #[diesel(sql_type = Text)]
    pub secret: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str =
    "id, url, event_types, description, enabled, secret, created_at, updated_at";

/// A delivery with its attempts.
#[derive(Debug, Clone, QueryableByName)]
pub struct Delivery {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub tenant: Option<Uuid>,
    #[diesel(sql_type = SqlUuid)]
    pub endpoint_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    pub next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub last_status: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub attempt_log: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub delivered_at: Option<DateTime<Utc>>,
}

fn delivery_columns(plane: Plane) -> String {
    format!(
        "id, {} AS tenant, endpoint_id, event_id, event_type, payload, status, attempts, \
         next_attempt_at, last_status, last_error, attempt_log, created_at, delivered_at",
        plane.tenant_column()
    )
}

/// A new endpoint's fields.
#[derive(Debug, Clone)]
pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub url: &'a str,
    pub event_types: Option<&'a [String]>,
    pub description: &'a str,
    pub enabled: bool,
    pub secret: &'a str,
}

pub async fn create_endpoint(
    conn: &mut Conn<'_>,
    plane: Plane,
    new: &NewEndpoint<'_>,
) -> QueryResult<Endpoint> {
    let (tenant_column, tenant_value) = match plane {
        Plane::Tenant(_) => ("tenant_id, ", "$1, "),
        Plane::Platform => ("", ""),
    };
    // $1 is bound either way (unused for the platform: cast so it types).
    let unused = match plane {
        Plane::Tenant(_) => "",
        Plane::Platform => " WHERE $1::uuid IS NULL",
    };
    sql_query(format!(
        "INSERT INTO {} ({tenant_column}id, url, event_types, description, enabled, secret)
         SELECT {tenant_value}$2, $3, $4, $5, $6, $7{unused}
         RETURNING {ENDPOINT_COLUMNS}",
        plane.endpoints()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<SqlUuid, _>(new.id)
    .bind::<Text, _>(new.url)
    .bind::<Nullable<Array<Text>>, _>(new.event_types)
    .bind::<Text, _>(new.description)
    .bind::<Bool, _>(new.enabled)
    .bind::<Text, _>(new.secret)
    .get_result(conn)
    .await
}

/// Endpoints in id order.
pub async fn list_endpoints(
    conn: &mut Conn<'_>,
    plane: Plane,
    page: Page,
) -> QueryResult<(Vec<Endpoint>, bool)> {
    let rows = sql_query(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM {} WHERE {} AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3",
        plane.endpoints(),
        plane.scope()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<Nullable<SqlUuid>, _>(page.after)
    .bind::<BigInt, _>(page.limit + 1)
    .load(conn)
    .await?;
    Ok(page.finish(rows))
}

pub async fn get_endpoint(
    conn: &mut Conn<'_>,
    plane: Plane,
    id: Uuid,
) -> QueryResult<Option<Endpoint>> {
    sql_query(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM {} WHERE {} AND id = $2",
        plane.endpoints(),
        plane.scope()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .optional()
}

/// What to change; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange<'a> {
    pub url: Option<&'a str>,
    /// `Some(None)`: every event type.
    pub event_types: Option<Option<&'a [String]>>,
    pub description: Option<&'a str>,
    pub enabled: Option<bool>,
    /// A new secret (rotation).
    pub secret: Option<&'a str>,
}

pub async fn update_endpoint(
    conn: &mut Conn<'_>,
    plane: Plane,
    id: Uuid,
    change: &EndpointChange<'_>,
) -> QueryResult<Option<Endpoint>> {
    let (set_types, types) = match change.event_types {
        Some(types) => (true, types),
        None => (false, None),
    };
    sql_query(format!(
        "UPDATE {} SET url = COALESCE($3, url),
                description = COALESCE($4, description),
                enabled = COALESCE($5, enabled),
                event_types = CASE WHEN $6 THEN $7 ELSE event_types END,
                secret = COALESCE($8, secret),
                updated_at = now()
          WHERE {} AND id = $2
         RETURNING {ENDPOINT_COLUMNS}",
        plane.endpoints(),
        plane.scope()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<SqlUuid, _>(id)
    .bind::<Nullable<Text>, _>(change.url)
    .bind::<Nullable<Text>, _>(change.description)
    .bind::<Nullable<Bool>, _>(change.enabled)
    .bind::<Bool, _>(set_types)
    .bind::<Nullable<Array<Text>>, _>(types)
    .bind::<Nullable<Text>, _>(change.secret)
    .get_result(conn)
    .await
    .optional()
}

/// Deletes the endpoint and (cascade) its deliveries.
pub async fn delete_endpoint(
    conn: &mut Conn<'_>,
    plane: Plane,
    id: Uuid,
) -> QueryResult<Option<Endpoint>> {
    sql_query(format!(
        "DELETE FROM {} WHERE {} AND id = $2 RETURNING {ENDPOINT_COLUMNS}",
        plane.endpoints(),
        plane.scope()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .optional()
}

/// An endpoint's deliveries, newest first (the cursor pages to older ones).
pub async fn list_deliveries(
    conn: &mut Conn<'_>,
    plane: Plane,
    endpoint: Uuid,
    page: Page,
) -> QueryResult<(Vec<Delivery>, bool)> {
    let rows = sql_query(format!(
        "SELECT {} FROM {} WHERE {} AND endpoint_id = $2 AND ($3::uuid IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
        delivery_columns(plane),
        plane.deliveries(),
        plane.scope()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<SqlUuid, _>(endpoint)
    .bind::<Nullable<SqlUuid>, _>(page.after)
    .bind::<BigInt, _>(page.limit + 1)
    .load(conn)
    .await?;
    Ok(page.finish(rows))
}

pub async fn get_delivery(
    conn: &mut Conn<'_>,
    plane: Plane,
    id: Uuid,
) -> QueryResult<Option<Delivery>> {
    sql_query(format!(
        "SELECT {} FROM {} WHERE {} AND id = $2",
        delivery_columns(plane),
        plane.deliveries(),
        plane.scope()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .optional()
}

/// Makes a delivery of `endpoint` due now, with a fresh attempt budget
/// (its attempt log is kept). `None`: no such delivery of that endpoint.
pub async fn replay(
    conn: &mut Conn<'_>,
    plane: Plane,
    endpoint: Uuid,
    id: Uuid,
) -> QueryResult<Option<Delivery>> {
    sql_query(format!(
        "UPDATE {} SET status = 'pending', attempts = 0, next_attempt_at = now(), delivered_at = NULL
          WHERE {} AND endpoint_id = $2 AND id = $3
         RETURNING {}",
        plane.deliveries(),
        plane.scope(),
        delivery_columns(plane),
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<SqlUuid, _>(endpoint)
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .optional()
}

#[derive(QueryableByName)]
struct TenantRow {
    #[diesel(sql_type = SqlUuid)]
    tenant_id: TenantId,
}

/// Tenants with deliveries due now (platform context: it may read, not
/// write, tenants' deliveries), at most `limit`.
pub async fn tenants_with_due(conn: &mut Conn<'_>, limit: i64) -> QueryResult<Vec<TenantId>> {
    let rows: Vec<TenantRow> = sql_query(
        "SELECT DISTINCT tenant_id FROM webhook_deliveries
          WHERE status = 'pending' AND next_attempt_at <= now() LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.tenant_id).collect())
}

/// A claimed delivery and where it goes.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: Delivery,
    pub url: String,
    pub secret: String,
}

/// Claims up to `limit` due deliveries of the plane: locks them (skipping
/// rows another replica holds), then moves them `lease` ahead so no one
/// else picks them while this replica sends (a replica that dies midway
/// leaves them due again once the lease ends: at least once). Commit the
/// transaction before sending.
pub async fn claim(
    conn: &mut Conn<'_>,
    plane: Plane,
    limit: i64,
    lease: std::time::Duration,
) -> QueryResult<Vec<Claimed>> {
    let due: Vec<Delivery> = sql_query(format!(
        "SELECT {} FROM {} WHERE {} AND status = 'pending' AND next_attempt_at <= now()
         ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        delivery_columns(plane),
        plane.deliveries(),
        plane.scope()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = due.iter().map(|d| d.id).collect();
    let lease_micros = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
    sql_query(format!(
        "UPDATE {} SET next_attempt_at = now() + $3 WHERE {} AND id = ANY($2)",
        plane.deliveries(),
        plane.scope()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Interval, _>(diesel::pg::data_types::PgInterval::from_microseconds(
        lease_micros,
    ))
    .execute(conn)
    .await?;
    let mut endpoint_ids: Vec<Uuid> = due.iter().map(|d| d.endpoint_id).collect();
    endpoint_ids.sort_unstable();
    endpoint_ids.dedup();
    let endpoints: Vec<Endpoint> = sql_query(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM {} WHERE {} AND id = ANY($2)",
        plane.endpoints(),
        plane.scope()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<Array<SqlUuid>, _>(&endpoint_ids)
    .load(conn)
    .await?;
    Ok(due
        .into_iter()
        .filter_map(|delivery| {
            let endpoint = endpoints.iter().find(|e| e.id == delivery.endpoint_id)?;
            Some(Claimed {
                url: endpoint.url.clone(),
                secret: endpoint.secret.clone(),
                delivery,
            })
        })
        .collect())
}

/// How many attempts a delivery's log keeps (the oldest go first).
pub const ATTEMPT_LOG_CAP: i32 = 50;

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The entry appended to the log.
    pub entry: serde_json::Value,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// `delivered`, `pending` (retry at `next_attempt_at`) or `failed`.
    pub outcome: &'static str,
    pub next_attempt_at: DateTime<Utc>,
    /// When the attempt began.
    pub at: DateTime<Utc>,
}

/// Records an attempt on a claimed delivery (still pending: a replay or a
/// delete meanwhile wins). `false`: the row was no longer there to record.
pub async fn record_attempt(
    conn: &mut Conn<'_>,
    plane: Plane,
    id: Uuid,
    attempt: &AttemptRecord,
) -> QueryResult<bool> {
    let n = sql_query(format!(
        "UPDATE {} SET attempts = attempts + 1,
                last_status = $3, last_error = $4,
                attempt_log = CASE WHEN jsonb_array_length(attempt_log) >= $8
                                   THEN (attempt_log - 0) || $5 ELSE attempt_log || $5 END,
                status = $6,
                next_attempt_at = $7,
                delivered_at = COALESCE($9, delivered_at)
          WHERE {} AND id = $2 AND status = 'pending'",
        plane.deliveries(),
        plane.scope()
    ))
    .bind::<Nullable<SqlUuid>, _>(plane.bind())
    .bind::<SqlUuid, _>(id)
    .bind::<Nullable<Integer>, _>(attempt.status_code)
    .bind::<Nullable<Text>, _>(attempt.error.as_deref())
    .bind::<Jsonb, _>(serde_json::Value::Array(vec![attempt.entry.clone()]))
    .bind::<Text, _>(attempt.outcome)
    .bind::<Timestamptz, _>(attempt.next_attempt_at)
    .bind::<Integer, _>(ATTEMPT_LOG_CAP)
    // Bound, not `CASE WHEN ... THEN now()`: Citus refuses a non-immutable
    // function inside CASE in a write to a distributed table.
    .bind::<Nullable<Timestamptz>, _>((attempt.outcome == "delivered").then_some(attempt.at))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

#[derive(QueryableByName)]
struct CountsRow {
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

/// The outbox across both planes (platform context).
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxCounts {
    pub tenant_pending: i64,
    pub tenant_failed: i64,
    pub platform_pending: i64,
    pub platform_failed: i64,
}

pub async fn outbox_counts(conn: &mut Conn<'_>) -> QueryResult<OutboxCounts> {
    // One statement per table: Citus plans a distributed and a local table
    // apart.
    let count = |table: &str| {
        format!(
            "SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                    count(*) FILTER (WHERE status = 'failed') AS failed FROM {table}"
        )
    };
    let tenant: CountsRow = sql_query(count("webhook_deliveries"))
        .get_result(conn)
        .await?;
    let platform: CountsRow = sql_query(count("platform_webhook_deliveries"))
        .get_result(conn)
        .await?;
    Ok(OutboxCounts {
        tenant_pending: tenant.pending,
        tenant_failed: tenant.failed,
        platform_pending: platform.pending,
        platform_failed: platform.failed,
    })
}
