//! `tenantry tenants import` trusts nothing in the file (issue #12): every
//! row goes through the API's parsers and quota charge, ids are new, API
//! keys are never imported as working credentials, imported history says
//! it is imported; and the export carries no secret. Also: the API-key hash
//! binds the tenant, and keys minted before that change still work.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::sql_types::{Int2, Jsonb, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::Sha256;
use tenantry_core::TenantId;
use tenantry_db::{DbError, ScopedFutureExt, migrate};
use tenantry_tests::{TestApp, TestDb, run_tenantry_with, test_auth_settings, test_limits};

async fn call(
    app: &TestApp,
    tenant: TenantId,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.call(&app.tenant_token(tenant), method, path, body)
        .await
}

async fn create(app: &TestApp, tenant: TenantId, path: &str, body: Value) -> Value {
    let (status, created) = call(app, tenant, Method::POST, path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
    created
}

async fn items(app: &TestApp, tenant: TenantId, path: &str) -> Vec<Value> {
    let (status, body) = call(app, tenant, Method::GET, &format!("{path}?limit=100"), None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body["items"].as_array().unwrap().clone()
}

/// The export of `tenant` as text, as an operator would save it.
async fn export_text(app: &TestApp, tenant: TenantId) -> String {
    let response = app
        .with_token(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant}/export"),
            &app.admin_token(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// `rows` as an export file: one `{"table", "row"}` a line and the trailer.
fn ndjson(rows: &[(&str, Value)]) -> String {
    let mut text: String = rows
        .iter()
        .map(|(table, row)| format!("{}\n", json!({"table": table, "row": row})))
        .collect();
    text.push_str(&format!("{}\n", json!({"end": true, "rows": rows.len()})));
    text
}

/// Runs `tenantry tenants import` on `text`; returns (success, stdout, stderr).
fn import_with(
    app: &TestApp,
    text: &str,
    slug: &str,
    name: &str,
    settings: &[(&str, &str)],
) -> (bool, String, String) {
    let file =
        std::env::temp_dir().join(format!("tenantry-import-{}.ndjson", uuid::Uuid::new_v4()));
    std::fs::write(&file, text).unwrap();
    let result = run_tenantry_with(
        &app.test_db,
        &[
            "tenants",
            "import",
            "--file",
            file.to_str().unwrap(),
            "--slug",
            slug,
            "--name",
            name,
        ],
        settings,
    );
    std::fs::remove_file(&file).unwrap();
    result
}

/// Imports `text` as `slug`; the new tenant's id and the command's report.
fn import(app: &TestApp, text: &str, slug: &str) -> (TenantId, Value) {
    let (ok, stdout, stderr) = import_with(app, text, slug, "Imported", &[]);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let id = report["tenant"]["id"].as_str().unwrap().parse().unwrap();
    (id, report)
}

/// The import of `text` is refused, saying `expected`, and leaves no tenant.
async fn refused(app: &TestApp, text: &str, expected: &[&str]) {
    refused_with(app, text, "Imported", expected, &[]).await;
}

async fn refused_with(
    app: &TestApp,
    text: &str,
    name: &str,
    expected: &[&str],
    settings: &[(&str, &str)],
) {
    let before = tenants(app).await;
    let (ok, stdout, stderr) = import_with(app, text, "refused", name, settings);
    assert!(!ok, "imported: {stdout}");
    for part in expected {
        assert!(stderr.contains(part), "{part:?} not in: {stderr}");
    }
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants/refused", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{stderr}");
    assert_eq!(tenants(app).await, before, "a refused import left a tenant");
}

async fn tenants(app: &TestApp) -> usize {
    let (status, body) = app
        .admin_call(Method::GET, "/v1/admin/tenants?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    body["items"].as_array().unwrap().len()
}

/// The API key `text`, re-addressed to `tenant`: same key id, same secret.
fn readdressed(text: &str, tenant: TenantId) -> String {
    let mut raw = URL_SAFE_NO_PAD
        .decode(text.strip_prefix("tnry_").unwrap())
        .unwrap();
    raw[16..32].copy_from_slice(tenant.as_uuid().as_bytes());
    format!("tnry_{}", URL_SAFE_NO_PAD.encode(raw))
}

async fn exchange(app: &TestApp, key: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/v1/auth/token"))
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn a_cluster(id: &str, name: &str) -> Value {
    json!({"tenant_id": uuid::Uuid::now_v7(), "id": id, "name": name, "region": "eu-west",
           "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "2024-01-01T00:00:00+00:00"})
}

fn an_instance(cluster: &str, name: &str, cpu_cores: i64) -> Value {
    json!({"tenant_id": uuid::Uuid::now_v7(), "id": uuid::Uuid::now_v7(), "cluster_id": cluster,
           "name": name, "cpu_cores": cpu_cores, "memory_gb": 1, "storage_gb": 0,
           "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "2024-01-01T00:00:00+00:00"})
}

fn a_user(email: &str) -> Value {
    json!({"tenant_id": uuid::Uuid::now_v7(), "id": uuid::Uuid::now_v7(), "email": email, "name": "",
           "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "2024-01-01T00:00:00+00:00"})
}

#[tokio::test]
async fn an_exported_then_imported_tenants_api_keys_do_not_exchange_on_the_new_tenant() {
    let app = TestApp::spawn().await;
    let source = app.create_tenant("source").await;
    let key = create(&app, source, "/v1/api-keys", json!({"name": "ci"})).await;
    let secret = key["secret"].as_str().unwrap().to_owned();
    let (copy, report) = import(&app, &export_text(&app, source).await, "copy");

    // The attack: the same key id and secret, addressed to the copy.
    let (status, body) = exchange(&app, &readdressed(&secret, copy)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(items(&app, copy, "/v1/api-keys").await.is_empty());
    assert_eq!(report["skipped"]["api_keys"], 1, "{report}");
    let (_, quotas) = call(&app, copy, Method::GET, "/v1/quotas", None).await;
    assert_eq!(quotas["usage"]["api_keys"], 0);
    // The source's own key is untouched.
    assert_eq!(exchange(&app, &secret).await.0, StatusCode::OK);
}

#[derive(diesel::QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Jsonb)]
    row: Value,
}

#[tokio::test]
async fn a_key_row_copied_to_another_tenant_does_not_verify_there() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("key-a").await;
    let b = app.create_tenant("key-b").await;
    let key = create(&app, a, "/v1/api-keys", json!({"name": "ci"})).await;
    let secret = key["secret"].as_str().unwrap().to_owned();
    // Copy the stored row, hash and all, into B, as a copy of the database
    // (or yesterday's import) would.
    let mut row = app
        .db
        .tenant(a)
        .run(|conn| {
            async move {
                let row: JsonRow = diesel::sql_query(
                    "SELECT to_jsonb(k) AS row FROM api_keys k WHERE tenant_id = $1",
                )
                .bind::<SqlUuid, _>(a)
                .get_result(conn)
                .await?;
                Ok::<_, DbError>(row.row)
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    row["tenant_id"] = json!(b);
    app.db
        .tenant(b)
        .run(|conn| {
            async move {
                // Column by column from the JSON (Citus refuses INSERT … SELECT
                // from a function under RLS).
                diesel::sql_query(
                    "INSERT INTO api_keys (tenant_id, id, name, prefix, secret_hash, hash_version)
                     VALUES (($1->>'tenant_id')::uuid, ($1->>'id')::uuid, $1->>'name', $1->>'prefix',
                             decode(substr($1->>'secret_hash', 3), 'hex'), ($1->>'hash_version')::smallint)",
                )
                .bind::<Jsonb, _>(row)
                .execute(conn)
                .await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    let (status, body) = exchange(&app, &readdressed(&secret, b)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(exchange(&app, &secret).await.0, StatusCode::OK);
}

#[derive(diesel::QueryableByName)]
struct Version {
    #[diesel(sql_type = Int2)]
    hash_version: i16,
    #[diesel(sql_type = Text)]
    name: String,
}

#[tokio::test]
async fn a_key_minted_before_the_hash_binding_migration_still_exchanges() {
    let test_db = TestDb::new().await;
    let owner = SecretString::from(test_db.owner_url());
    if tenantry_tests::citus() {
        // No going back on a distributed schema (a documented refusal);
        // the legacy hash is not database-specific and is proven on
        // plain PostgreSQL.
        assert!(matches!(
            migrate::revert_last(&owner).await,
            Err(migrate::MigrateError::RevertOnCitus)
        ));
        return;
    }
    // Back to the schema before the migration (and whatever came after it).
    let mut reverted = Vec::new();
    while reverted.last().map(String::as_str) != Some("0006_api_key_hash_binding") {
        reverted.push(migrate::revert_last(&owner).await.unwrap());
    }
    // A key as the code before the migration minted and stored it:
    // HMAC-SHA256(secret key, key id ‖ secret), no version column.
    let auth = test_auth_settings();
    let hash_key = auth.api_key_secret.clone().unwrap();
    let tenant = TenantId::new();
    let id = uuid::Uuid::new_v4();
    let secret: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|u| *u.as_bytes())
        .collect();
    let mut raw = id.as_bytes().to_vec();
    raw.extend_from_slice(tenant.as_uuid().as_bytes());
    raw.extend_from_slice(&secret);
    let text = format!("tnry_{}", URL_SAFE_NO_PAD.encode(&raw));
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(hash_key.expose_secret().as_bytes()).unwrap();
    mac.update(id.as_bytes());
    mac.update(&secret);
    let hash = mac.finalize().into_bytes().to_vec();
    let db = test_db.db(1);
    db.platform()
        .provision(tenant, |conn| {
            let prefix = text[..17].to_owned();
            async move {
                // By hand: this is the schema of 0005, and today's query
                // reads columns later migrations add.
                let l = test_limits();
                diesel::sql_query("INSERT INTO tenants (id, slug, name) VALUES ($1, 'legacy', 'Legacy')")
                    .bind::<SqlUuid, _>(tenant)
                    .execute(conn)
                    .await?;
                diesel::sql_query(
                    "INSERT INTO tenant_quotas (tenant_id, max_users, max_api_keys, max_clusters, max_instances,
                                                max_cpu_cores, max_memory_gb, max_storage_gb, requests_per_second, burst)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<diesel::sql_types::Integer, _>(l.max_users)
                .bind::<diesel::sql_types::Integer, _>(l.max_api_keys)
                .bind::<diesel::sql_types::Integer, _>(l.max_clusters)
                .bind::<diesel::sql_types::Integer, _>(l.max_instances)
                .bind::<diesel::sql_types::Integer, _>(l.max_cpu_cores)
                .bind::<diesel::sql_types::Integer, _>(l.max_memory_gb)
                .bind::<diesel::sql_types::Integer, _>(l.max_storage_gb)
                .bind::<diesel::sql_types::Integer, _>(l.requests_per_second)
                .bind::<diesel::sql_types::Integer, _>(l.burst)
                .execute(conn)
                .await?;
                diesel::sql_query("INSERT INTO tenant_usage (tenant_id) VALUES ($1)")
                    .bind::<SqlUuid, _>(tenant)
                    .execute(conn)
                    .await?;
                diesel::sql_query(
                    "INSERT INTO api_keys (tenant_id, id, name, prefix, secret_hash)
                     VALUES ($1, $2, 'legacy', $3, $4)",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<SqlUuid, _>(id)
                .bind::<Text, _>(&prefix)
                .bind::<diesel::sql_types::Bytea, _>(&hash)
                .execute(conn)
                .await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    drop(db);
    // The deployment upgrades: the migration runs, then the new service.
    let report = migrate::run(
        &owner,
        &tenantry_tests::context_key(),
        &migrate::MigrateOptions::default(),
    )
    .await
    .unwrap();
    reverted.reverse();
    assert_eq!(report.applied, reverted);
    let settings = test_db.settings(4);
    let app = TestApp::spawn_with(test_db, &settings, auth).await;

    let (status, body) = exchange(&app, &text).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let (status, me) = app.call(access, Method::GET, "/v1/tenant", None).await;
    assert_eq!((status, me["id"].clone()), (StatusCode::OK, json!(tenant)));
    // Still not valid for another tenant, and new keys are tenant-bound.
    assert_eq!(
        exchange(&app, &readdressed(&text, TenantId::new())).await.0,
        StatusCode::UNAUTHORIZED
    );
    create(&app, tenant, "/v1/api-keys", json!({"name": "new"})).await;
    let versions = app
        .db
        .tenant(tenant)
        .run(|conn| {
            async move {
                let rows: Vec<Version> = diesel::sql_query(
                    "SELECT hash_version, name FROM api_keys WHERE tenant_id = $1 ORDER BY name",
                )
                .bind::<SqlUuid, _>(tenant)
                .load(conn)
                .await?;
                Ok::<_, DbError>(rows)
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    let versions: Vec<(String, i16)> = versions
        .into_iter()
        .map(|v| (v.name, v.hash_version))
        .collect();
    assert_eq!(
        versions,
        [("legacy".to_owned(), 1), ("new".to_owned(), 2)],
        "old rows verify as version 1, new keys are version 2"
    );
}

#[tokio::test]
async fn an_export_contains_no_secret_hash() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let key = create(&app, tenant, "/v1/api-keys", json!({"name": "ci"})).await;
    let text = export_text(&app, tenant).await;
    assert!(!text.contains("secret_hash"), "{text}");
    assert!(!text.contains("hash_version"), "{text}");
    assert!(!text.contains(key["secret"].as_str().unwrap()));
    let keys: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["table"] == "api_keys")
        .collect();
    assert_eq!(keys.len(), 1);
    let fields: BTreeSet<&str> = keys[0]["row"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "tenant_id",
            "id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "revoked_at"
        ])
    );
}

#[tokio::test]
async fn importing_over_the_new_tenants_limits_fails_and_leaves_nothing() {
    let app = TestApp::spawn().await;
    // The attack: 101 users against the default max_users of 100.
    let users: Vec<(&str, Value)> = (0..101)
        .map(|i| ("users", a_user(&format!("u{i}@example.com"))))
        .collect();
    refused(
        &app,
        &ndjson(&users),
        &["line 101", "users", "quota", "max_users"],
    )
    .await;
    // 2 × 200 cores against the default max_cpu_cores of 256.
    let cluster = uuid::Uuid::now_v7().to_string();
    let big = [
        ("clusters", a_cluster(&cluster, "main")),
        ("instances", an_instance(&cluster, "vm-1", 200)),
        ("instances", an_instance(&cluster, "vm-2", 200)),
    ];
    refused(&app, &ndjson(&big), &["line 3", "instances", "cpu_cores"]).await;
    // Lower limits (the config's defaults) are charged the same way.
    refused_with(
        &app,
        &ndjson(&users[..3]),
        "Imported",
        &["line 3", "max_users"],
        &[("TENANTRY__QUOTAS__DEFAULT__MAX_USERS", "2")],
    )
    .await;
    // One instance asking for more than any instance may: the API's bound.
    let huge = [
        ("clusters", a_cluster(&cluster, "main")),
        ("instances", an_instance(&cluster, "vm-1", 500_000)),
    ];
    refused(
        &app,
        &ndjson(&huge),
        &["line 2", "instances.cpu_cores", "between 1 and 1024"],
    )
    .await;
    let (status, audit) = app
        .admin_call(Method::GET, "/v1/admin/audit?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        audit["items"].as_array().unwrap().len(),
        0,
        "a refused import leaves no audit entry: {audit}"
    );
    // What fits imports, into the slug the refusals left free; usage is
    // what was charged.
    let (copy, _) = import(&app, &ndjson(&users[..100]), "refused");
    let (_, quotas) = call(&app, copy, Method::GET, "/v1/quotas", None).await;
    assert_eq!(quotas["usage"]["users"], 100);
    assert_eq!(items(&app, copy, "/v1/users").await.len(), 100);
}

#[tokio::test]
async fn a_row_with_a_newline_ansi_escape_or_bidi_override_in_a_text_field_is_refused() {
    let app = TestApp::spawn().await;
    let cluster = uuid::Uuid::now_v7().to_string();
    let good = a_cluster(&cluster, "main");
    let with = |row: &Value, field: &str, value: &str| {
        let mut row = row.clone();
        row[field] = json!(value);
        row
    };
    let event = json!({"tenant_id": uuid::Uuid::now_v7(), "id": uuid::Uuid::now_v7(),
        "kind": "cluster.created", "actor": "test-user", "subject": null,
        "data": {"name": "main"}, "at": "2024-01-01T00:00:00+00:00"});
    let mut event_data = event.clone();
    event_data["data"]["name"] = json!("ok\u{1b}]8;;http://evil/\u{7}click");
    for (rows, expected) in [
        (
            vec![("clusters", with(&good, "name", "evil\nname"))],
            ["line 1", "clusters.name", "control"],
        ),
        (
            vec![("clusters", with(&good, "name", "\u{1b}[31mred"))],
            ["line 1", "clusters.name", "control"],
        ),
        (
            vec![("clusters", with(&good, "region", "eu\nwest"))],
            ["line 1", "clusters.region", "lowercase"],
        ),
        (
            vec![("users", a_user("ada\u{1b}[0m@example.com"))],
            ["line 1", "users.email", "whitespace"],
        ),
        (
            vec![
                ("clusters", good.clone()),
                ("instances", an_instance(&cluster, "vm\u{202e}gpj.exe", 1)),
            ],
            ["line 2", "instances.name", "bidirectional"],
        ),
        (
            vec![("events", with(&event, "actor", "admin\u{1b}[2J"))],
            ["line 1", "events.actor", "control"],
        ),
        (
            vec![("events", event_data)],
            ["line 1", "events.data.name", "control"],
        ),
        (
            // The limits section is read only as a whole (and applied only
            // with --restore-limits).
            vec![("tenant_quotas", json!({"max_users": 1_000_000}))],
            ["line 1", "tenant_quotas.max_api_keys", "is required"],
        ),
        (
            vec![("clusters", with(&good, "is_admin", "true"))],
            ["line 1", "clusters.is_admin", "unknown field"],
        ),
    ] {
        refused(&app, &ndjson(&rows), &expected).await;
    }
    // The command's own --name goes through the same parser.
    refused_with(
        &app,
        &ndjson(&[("clusters", good.clone())]),
        "Evil\u{202e}Corp",
        &["--name", "bidirectional"],
        &[],
    )
    .await;
    // And a file without its trailer is refused.
    let no_trailer = format!("{}\n", json!({"table": "clusters", "row": good}));
    refused(&app, &no_trailer, &["truncated"]).await;
}

#[tokio::test]
async fn a_forged_event_comes_back_marked_as_imported_with_a_new_id() {
    let app = TestApp::spawn().await;
    let forged = uuid::Uuid::now_v7();
    let source = uuid::Uuid::now_v7();
    let file = ndjson(&[(
        "events",
        json!({"tenant_id": source, "id": forged, "kind": "tenant.suspend",
               "actor": "platform-admin:security-team", "subject": null,
               "data": {"reason": "fraud"}, "at": "2020-01-01T00:00:00+00:00"}),
    )]);
    let (copy, _) = import(&app, &file, "copy");
    // /v1/events merges the tenant's events with its audit entries: the
    // import's own entry, and the one imported event.
    let events = items(&app, copy, "/v1/events").await;
    assert_eq!(events.len(), 2, "{events:?}");
    let kinds: BTreeSet<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, BTreeSet::from(["event.imported", "tenant.imported"]));
    let event = events
        .iter()
        .find(|e| e["kind"] == "event.imported")
        .unwrap();
    assert_ne!(event["id"], json!(forged));
    assert_eq!(event["actor"], "import:cli");
    assert_ne!(
        event["at"], "2020-01-01T00:00:00Z",
        "the time of the import"
    );
    let original = &event["data"]["original"];
    assert_eq!(original["id"], json!(forged));
    assert_eq!(original["kind"], "tenant.suspend");
    assert_eq!(original["actor"], "platform-admin:security-team");
    assert_eq!(original["at"], "2020-01-01T00:00:00Z");
    assert_eq!(original["tenant_id"], json!(source));
    assert_eq!(original["data"], json!({"reason": "fraud"}));
    assert!(
        !events
            .iter()
            .any(|e| e["actor"] == "platform-admin:security-team"),
        "nothing poses as the original actor"
    );
}

#[tokio::test]
async fn imported_rows_get_new_ids_and_instances_still_point_at_their_cluster() {
    let app = TestApp::spawn().await;
    let source = app.create_tenant("source").await;
    let eu = create(
        &app,
        source,
        "/v1/clusters",
        json!({"name": "eu", "region": "eu-west"}),
    )
    .await;
    let us = create(
        &app,
        source,
        "/v1/clusters",
        json!({"name": "us", "region": "us-east"}),
    )
    .await;
    for (name, cluster, cores) in [("a", &eu, 2), ("b", &us, 3), ("c", &eu, 4)] {
        create(
            &app,
            source,
            "/v1/instances",
            json!({"name": name, "cluster_id": cluster["id"], "cpu_cores": cores, "memory_gb": 1}),
        )
        .await;
    }
    create(
        &app,
        source,
        "/v1/users",
        json!({"email": "ada@example.com", "name": "Ada"}),
    )
    .await;
    let (copy, report) = import(&app, &export_text(&app, source).await, "copy");
    assert_eq!(
        report["rows"],
        json!({"clusters": 2, "instances": 3, "users": 1, "events": 6}),
        "{report}"
    );

    let ids = |rows: &[Value]| -> BTreeSet<String> {
        rows.iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let cluster_names = |rows: &[Value]| -> BTreeMap<String, String> {
        rows.iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_owned(),
                    c["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let placement = |instances: &[Value], clusters: &BTreeMap<String, String>| {
        instances
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().unwrap().to_owned(),
                    clusters[i["cluster_id"].as_str().unwrap()].clone(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let mut all_source = BTreeSet::new();
    let mut all_copy = BTreeSet::new();
    for path in ["/v1/clusters", "/v1/instances", "/v1/users", "/v1/events"] {
        let (before, mut after) = (
            items(&app, source, path).await,
            items(&app, copy, path).await,
        );
        // The copy's history also holds the import's own audit entry.
        after.retain(|e| e["kind"] != "tenant.imported");
        assert_eq!(before.len(), after.len(), "{path}");
        all_source.extend(ids(&before));
        all_copy.extend(ids(&after));
    }
    assert!(
        all_source.is_disjoint(&all_copy),
        "every imported row has a new id"
    );
    let (source_clusters, copy_clusters) = (
        cluster_names(&items(&app, source, "/v1/clusters").await),
        cluster_names(&items(&app, copy, "/v1/clusters").await),
    );
    let copy_instances = items(&app, copy, "/v1/instances").await;
    assert_eq!(
        placement(&copy_instances, &copy_clusters),
        placement(
            &items(&app, source, "/v1/instances").await,
            &source_clusters
        ),
        "each instance is in the imported cluster of the same name"
    );
    // The imported history points at the imported rows.
    for event in items(&app, copy, "/v1/events").await {
        if event["kind"] == "tenant.imported" {
            continue;
        }
        assert_eq!(event["kind"], "event.imported");
        let subject = event["subject"].as_str().unwrap();
        assert!(all_copy.contains(subject), "{event}");
        assert!(all_source.contains(event["data"]["original"]["subject"].as_str().unwrap()));
    }
    // Quota was charged row by row.
    let (_, quotas) = call(&app, copy, Method::GET, "/v1/quotas", None).await;
    assert_eq!(
        (
            quotas["usage"]["clusters"].as_i64(),
            quotas["usage"]["instances"].as_i64(),
            quotas["usage"]["cpu_cores"].as_i64(),
            quotas["usage"]["users"].as_i64()
        ),
        (Some(2), Some(3), Some(9), Some(1))
    );
    // The user came through the same parser: same address, same name.
    let user = &items(&app, copy, "/v1/users").await[0];
    assert_eq!(
        (user["email"].as_str(), user["name"].as_str()),
        (Some("ada@example.com"), Some("Ada"))
    );
}
