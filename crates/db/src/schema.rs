//! Diesel's view of the tables in ../../sql. Kept by hand; the test
//! `diesel_schema_matches_the_migrated_catalog` compares it with the catalog.

diesel::table! {
    tenants (id) {
        id -> Uuid,
        slug -> Text,
        name -> Text,
        status -> Text,
        legal_hold -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        purged_at -> Nullable<Timestamptz>,
        slug_released_at -> Nullable<Timestamptz>,
        account_id -> Uuid,
        plan_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    accounts (id) {
        id -> Uuid,
        slug -> Text,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    account_quotas (account_id) {
        account_id -> Uuid,
        max_tenants -> Nullable<Int4>,
        max_users -> Nullable<Int4>,
        max_api_keys -> Nullable<Int4>,
        max_clusters -> Nullable<Int4>,
        max_instances -> Nullable<Int4>,
        max_cpu_cores -> Nullable<Int4>,
        max_memory_gb -> Nullable<Int4>,
        max_storage_gb -> Nullable<Int4>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    account_usage (account_id) {
        account_id -> Uuid,
        tenants -> Int4,
        users -> Int4,
        api_keys -> Int4,
        clusters -> Int4,
        instances -> Int4,
        cpu_cores -> Int4,
        memory_gb -> Int4,
        storage_gb -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    tenant_quotas (tenant_id) {
        tenant_id -> Uuid,
        max_users -> Int4,
        max_api_keys -> Int4,
        max_clusters -> Int4,
        max_instances -> Int4,
        max_cpu_cores -> Int4,
        max_memory_gb -> Int4,
        max_storage_gb -> Int4,
        requests_per_second -> Int4,
        burst -> Int4,
        updated_at -> Timestamptz,
        overrides -> Array<Text>,
        plan_name -> Nullable<Text>,
    }
}

diesel::table! {
    plans (id) {
        id -> Uuid,
        name -> Text,
        max_users -> Int4,
        max_api_keys -> Int4,
        max_clusters -> Int4,
        max_instances -> Int4,
        max_cpu_cores -> Int4,
        max_memory_gb -> Int4,
        max_storage_gb -> Int4,
        requests_per_second -> Int4,
        burst -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    tenant_usage (tenant_id) {
        tenant_id -> Uuid,
        users -> Int4,
        api_keys -> Int4,
        clusters -> Int4,
        instances -> Int4,
        cpu_cores -> Int4,
        memory_gb -> Int4,
        storage_gb -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Uuid,
        tenant_id -> Nullable<Uuid>,
        actor -> Text,
        action -> Text,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        reason -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::table! {
    retention_runs (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        slug -> Text,
        deleted_at -> Timestamptz,
        started_at -> Timestamptz,
        purged_at -> Nullable<Timestamptz>,
        rows_removed -> Jsonb,
        sweeper -> Text,
    }
}

diesel::table! {
    users (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        email -> Text,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        name -> Text,
        prefix -> Text,
        secret_hash -> Bytea,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        hash_version -> Int2,
        scopes -> Nullable<Text>,
    }
}

diesel::table! {
    clusters (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        name -> Text,
        region -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    instances (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        cluster_id -> Uuid,
        name -> Text,
        cpu_cores -> Int4,
        memory_gb -> Int4,
        storage_gb -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    events (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        kind -> Text,
        actor -> Text,
        subject -> Nullable<Uuid>,
        data -> Jsonb,
        at -> Timestamptz,
    }
}

diesel::table! {
    members (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        subject -> Text,
        role -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    idempotency_keys (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        key -> Text,
        operation -> Text,
        request_hash -> Bytea,
        response_status -> Nullable<Int4>,
        response_body -> Nullable<Jsonb>,
        location -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    admin_idempotency_keys (id) {
        id -> Uuid,
        key -> Text,
        operation -> Text,
        request_hash -> Bytea,
        response_status -> Nullable<Int4>,
        response_body -> Nullable<Jsonb>,
        location -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Operator console sessions: control plane, no tenant (sql/0014).
    console_sessions (id) {
        id -> Uuid,
        token_hash -> Bytea,
        subject -> Text,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        expires_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Custom domains: control plane (a global claim on the name), each row
    /// a tenant's (sql/0012).
    domains (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        hostname -> Text,
        token -> Text,
        verified_at -> Nullable<Timestamptz>,
        verified_by -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    tenant_settings (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        version -> Int4,
        document -> Jsonb,
        updated_at -> Timestamptz,
        updated_by -> Text,
    }
}

diesel::table! {
    /// A tenant's webhook endpoints (sql/0016): tenant-scoped.
    webhook_endpoints (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        url -> Text,
        event_types -> Nullable<Array<Text>>,
        description -> Text,
        enabled -> Bool,
        secret -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// The outbox of a tenant's webhook deliveries (sql/0016): tenant-scoped.
    webhook_deliveries (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        endpoint_id -> Uuid,
        event_id -> Uuid,
        event_type -> Text,
        payload -> Jsonb,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        attempt_log -> Jsonb,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Platform webhook endpoints (sql/0016): control plane.
    platform_webhook_endpoints (id) {
        id -> Uuid,
        url -> Text,
        event_types -> Nullable<Array<Text>>,
        description -> Text,
        enabled -> Bool,
        secret -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// The outbox of platform webhook deliveries (sql/0016): control plane.
    platform_webhook_deliveries (id) {
        id -> Uuid,
        endpoint_id -> Uuid,
        about_tenant -> Nullable<Uuid>,
        event_id -> Uuid,
        event_type -> Text,
        payload -> Jsonb,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        attempt_log -> Jsonb,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Usage history for billing (sql/0015): per tenant and period, the
    /// usage at its end and what its charges provisioned and released.
    usage_history (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        period_start -> Timestamptz,
        users -> Nullable<Int4>,
        api_keys -> Nullable<Int4>,
        clusters -> Nullable<Int4>,
        instances -> Nullable<Int4>,
        cpu_cores -> Nullable<Int4>,
        memory_gb -> Nullable<Int4>,
        storage_gb -> Nullable<Int4>,
        sampled_at -> Nullable<Timestamptz>,
        users_provisioned -> Int4,
        users_released -> Int4,
        api_keys_provisioned -> Int4,
        api_keys_released -> Int4,
        clusters_provisioned -> Int4,
        clusters_released -> Int4,
        instances_provisioned -> Int4,
        instances_released -> Int4,
        cpu_cores_provisioned -> Int4,
        cpu_cores_released -> Int4,
        memory_gb_provisioned -> Int4,
        memory_gb_released -> Int4,
        storage_gb_provisioned -> Int4,
        storage_gb_released -> Int4,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    accounts,
    account_quotas,
    account_usage,
    tenant_quotas,
    tenant_usage,
    plans,
    audit_events,
    retention_runs,
    users,
    api_keys,
    clusters,
    instances,
    events,
    members,
    idempotency_keys,
    admin_idempotency_keys,
    console_sessions,
    domains,
    tenant_settings,
    webhook_endpoints,
    webhook_deliveries,
    platform_webhook_endpoints,
    platform_webhook_deliveries,
    usage_history,
);

/// The tenant-scoped tables, children before parents (the purge order).
pub const TENANT_TABLES: &[&str] = &[
    "webhook_deliveries",
    "webhook_endpoints",
    "usage_history",
    "idempotency_keys",
    "events",
    "instances",
    "clusters",
    "api_keys",
    "users",
    "members",
    "tenant_settings",
];
