//! The API-key hash binds the tenant, and keys minted before that change
//! still work (issue #12).

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
use tenantry_db::{DbError, ScopedFutureExt, migrate, queries};
use tenantry_tests::{TestApp, TestDb, test_auth_settings, test_limits};

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

#[derive(diesel::QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Jsonb)]
    row: Value,
}

#[derive(diesel::QueryableByName)]
struct Version {
    #[diesel(sql_type = Int2)]
    hash_version: i16,
    #[diesel(sql_type = Text)]
    name: String,
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
                diesel::sql_query(
                    "INSERT INTO api_keys SELECT * FROM jsonb_populate_record(NULL::api_keys, $1)",
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

#[tokio::test]
async fn a_key_minted_before_the_hash_binding_migration_still_exchanges() {
    let test_db = TestDb::new().await;
    let owner = SecretString::from(test_db.owner_url());
    assert_eq!(
        migrate::revert_last(&owner).await.unwrap(),
        "0006_api_key_hash_binding"
    );
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
                queries::tenants::create(conn, tenant, "legacy", "Legacy", &test_limits()).await?;
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
    let report = migrate::run(&owner).await.unwrap();
    assert_eq!(report.applied, ["0006_api_key_hash_binding"]);
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
