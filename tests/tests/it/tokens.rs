//! Hostile and edge-case bearer tokens: every one is refused with 401, never 200 or 500.
//!
//! Tokens are built by hand here (base64url segments signed with
//! ed25519-dalek directly) so that any header or payload can be sent —
//! including the ones a JWT library refuses to produce. A baseline token
//! built the same way is shown to be accepted first, so every refusal below
//! is about the one thing each case changes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use ed25519_dalek::{Signer as _, SigningKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value, json};
use tenantry_api::auth::keys::JWKS_MIN_REFETCH;
use tenantry_api::auth::{AuthSettings, Authenticator, ServiceKey, generate_signing_key_pem};
use tenantry_core::{Scope, TenantId};
use tenantry_tests::{TEST_AUDIENCE, TEST_ISSUER, TestApp, TestDb, test_auth_settings};

/// The external identity provider of the JWKS-URL tests.
const IDP: &str = "https://idp.test/";
/// The shared secret of the HS256 tests.
const SHARED_SECRET: &str = "a-shared-secret-of-at-least-32-bytes!!";

// --- Keys and raw tokens ---------------------------------------------------

/// An Ed25519 key pair held by the test: the app's own, an external
/// identity provider's, or an attacker's.
struct Key {
    signing: SigningKey,
    kid: String,
    public: [u8; 32],
}

impl Key {
    fn from_pem(pem: &str) -> Self {
        let service = ServiceKey::from_pem(pem).unwrap();
        Self {
            signing: SigningKey::from_pkcs8_pem(pem).unwrap(),
            kid: service.kid,
            public: service.public,
        }
    }

    /// The key the app signs (and verifies) its own tokens with.
    fn of(app: &TestApp) -> Self {
        Self::from_pem(app.auth.signing_key.as_ref().unwrap().expose_secret())
    }

    /// A fresh key nobody trusts.
    fn fresh() -> Self {
        Self::from_pem(generate_signing_key_pem().unwrap().expose_secret())
    }

    /// The public half as a JWK with this `kid`.
    fn jwk(&self, kid: &str) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64(self.public),
            "kid": kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }

    /// The public half as SPKI PEM: the classic HS256-confusion secret.
    fn public_pem(&self) -> String {
        self.signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn segment(value: &Value) -> String {
    b64(value.to_string())
}

/// `header.payload.signature` over exactly these two (already encoded)
/// segments, EdDSA-signed with `key`.
fn sign_segments(key: &Key, header: &str, payload: &str) -> String {
    let input = format!("{header}.{payload}");
    let signature = key.signing.sign(input.as_bytes());
    format!("{input}.{}", b64(signature.to_bytes()))
}

/// A token with exactly this header and these claims, EdDSA-signed with `key`.
fn sign_ed(key: &Key, header: &Value, claims: &Value) -> String {
    sign_segments(key, &segment(header), &segment(claims))
}

fn ed_header(kid: &str) -> Value {
    json!({"alg": "EdDSA", "typ": "JWT", "kid": kid})
}

/// An HMAC token (HS256/384/512) signed with `secret`.
fn hmac(alg: Algorithm, secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap()
}

/// Claims the test app accepts for `tenant`: every spec claim, both scopes.
fn claims_for(tenant: TenantId) -> Value {
    let now = now();
    json!({
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
        "sub": "token-tester",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
        "tenant_id": tenant.to_string(),
        "scope": "tenant:read tenant:write",
    })
}

/// `claims` with `edit` applied.
fn edited(claims: &Value, edit: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut claims = claims.clone();
    edit(claims.as_object_mut().unwrap());
    claims
}

fn with(claims: &Value, name: &str, value: Value) -> Value {
    edited(claims, |c| {
        c.insert(name.to_owned(), value);
    })
}

fn without(claims: &Value, name: &str) -> Value {
    edited(claims, |c| {
        c.remove(name);
    })
}

/// The three segments of a compact token.
fn parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.');
    let (h, p, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    assert!(it.next().is_none(), "not a three-segment token: {token}");
    (h.to_owned(), p.to_owned(), s.to_owned())
}

// --- Answers ----------------------------------------------------------------

/// What came back, read once so it can be checked and reported.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    www_authenticate: Option<String>,
    body: String,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Self {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let content_type = header("content-type").unwrap_or_default();
        let www_authenticate = header("www-authenticate");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        Self {
            status,
            content_type,
            www_authenticate,
            body,
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// An `application/problem+json` answer with this status and `code`.
    fn problem(&self, status: u16, code: &str) -> Result<(), String> {
        if self.status != status {
            return Err(format!(
                "expected {status} {code}, got {}: {}",
                self.status, self.body
            ));
        }
        if self.content_type != "application/problem+json" {
            return Err(format!(
                "expected content-type application/problem+json, got {:?}",
                self.content_type
            ));
        }
        let body = self.json();
        if body["code"] != code || body["status"] != status {
            return Err(format!("expected code {code:?}, got {}", self.body));
        }
        if status == 401
            && !self
                .www_authenticate
                .as_deref()
                .is_some_and(|v| v.to_ascii_lowercase().starts_with("bearer"))
        {
            return Err(format!(
                "401 without a Bearer WWW-Authenticate challenge: {:?}",
                self.www_authenticate
            ));
        }
        Ok(())
    }

    fn unauthorized(&self) -> Result<(), String> {
        self.problem(401, "unauthorized")
    }

    fn forbidden(&self) -> Result<(), String> {
        self.problem(403, "forbidden")
    }

    /// `GET /v1/tenant` answered with `tenant`.
    fn tenant(&self, tenant: TenantId) -> Result<(), String> {
        if self.status != 200 {
            return Err(format!("expected 200, got {}: {}", self.status, self.body));
        }
        let body = self.json();
        if body["id"] != tenant.to_string() {
            return Err(format!("expected tenant {tenant}, got {}", self.body));
        }
        Ok(())
    }
}

/// Failed cases of one test, reported together.
#[derive(Debug, Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, case: &str, result: Result<(), String>) {
        if let Err(e) = result {
            self.0.push(format!("{case}: {e}"));
        }
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} case(s) failed:\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

// --- The app under test -----------------------------------------------------

/// An app, one tenant in it, and the app's signing key.
struct Fixture {
    app: TestApp,
    key: Key,
    tenant: TenantId,
    /// The body of the 401 for a request without credentials: every
    /// refusal must look exactly like it, whatever the reason.
    refusal: String,
}

impl Fixture {
    /// The default test app, after showing that the hand-built baseline
    /// token is accepted.
    async fn new() -> Self {
        Self::on(TestApp::spawn().await).await
    }

    async fn with_auth(auth: AuthSettings) -> Self {
        let test_db = TestDb::new().await;
        let settings = test_db.settings(4);
        Self::on(TestApp::spawn_with(test_db, &settings, auth).await).await
    }

    async fn on(app: TestApp) -> Self {
        let tenant = app.create_tenant("tokens").await;
        let key = Key::of(&app);
        let mut fixture = Self {
            app,
            key,
            tenant,
            refusal: String::new(),
        };
        let anonymous = fixture.get_with_header(None).await;
        anonymous
            .unauthorized()
            .unwrap_or_else(|e| panic!("a request without credentials must get 401: {e}"));
        fixture.refusal = anonymous.body;
        let baseline = fixture.valid();
        fixture
            .get(&baseline)
            .await
            .tenant(tenant)
            .unwrap_or_else(|e| panic!("the baseline token must be accepted: {e}"));
        fixture
    }

    /// [`claims_for`] the fixture's tenant, under the app's tenant claim.
    fn claims(&self) -> Value {
        let claims = claims_for(self.tenant);
        match self.app.auth.tenant_claim.as_str() {
            "tenant_id" => claims,
            name => with(
                &without(&claims, "tenant_id"),
                name,
                self.tenant.to_string().into(),
            ),
        }
    }

    /// Signed with the app's key and kid.
    fn sign(&self, claims: &Value) -> String {
        sign_ed(&self.key, &ed_header(&self.key.kid), claims)
    }

    fn valid(&self) -> String {
        self.sign(&self.claims())
    }

    /// `GET /v1/tenant` with this bearer token.
    async fn get(&self, token: &str) -> Answer {
        Answer::of(
            self.app
                .with_token(Method::GET, "/v1/tenant", token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// `GET /v1/tenant` with this raw `Authorization` value (or none).
    async fn get_with_header(&self, authorization: Option<HeaderValue>) -> Answer {
        let mut request = self.app.client.get(self.app.url("/v1/tenant"));
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        Answer::of(request.send().await.unwrap()).await
    }

    async fn refused(&self, failures: &mut Failures, case: &str, token: &str) {
        let answer = self.get(token).await;
        failures.check(case, self.same_refusal(&answer));
    }

    /// 401 `unauthorized`, with exactly the body of any other refusal: the
    /// client learns nothing about why.
    fn same_refusal(&self, answer: &Answer) -> Result<(), String> {
        answer.unauthorized()?;
        if answer.body != self.refusal {
            return Err(format!(
                "the 401 body tells this refusal apart: {} (anonymous: {})",
                answer.body, self.refusal
            ));
        }
        Ok(())
    }

    async fn accepted(&self, failures: &mut Failures, case: &str, token: &str) {
        failures.check(case, self.get(token).await.tenant(self.tenant));
    }
}

// --- Baseline -----------------------------------------------------------------

#[tokio::test]
async fn a_well_formed_token_signed_with_the_service_key_is_accepted() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    fx.accepted(&mut failures, "hand-built EdDSA token", &fx.valid())
        .await;
    // The same claims through jsonwebtoken, as a client library would.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(fx.key.kid.clone());
    let pem = fx.app.auth.signing_key.as_ref().unwrap().expose_secret();
    let library = jsonwebtoken::encode(
        &header,
        &fx.claims(),
        &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    fx.accepted(&mut failures, "jsonwebtoken-encoded token", &library)
        .await;
    fx.accepted(
        &mut failures,
        "the app's own issuer",
        &fx.app.tenant_token(fx.tenant),
    )
    .await;
    // The kid the test derives is the one the app publishes.
    let jwks = Answer::of(fx.app.get("/.well-known/jwks.json").await)
        .await
        .json();
    assert_eq!(jwks["keys"][0]["kid"], fx.key.kid.as_str());
    assert_eq!(jwks["keys"][0]["x"], b64(fx.key.public).as_str());
    let body = fx.get(&fx.valid()).await.json();
    assert_eq!(body["slug"], "tokens");
    assert_eq!(body["status"], "active");
    failures.assert_none();
}

// --- Algorithms -----------------------------------------------------------------

#[tokio::test]
async fn alg_none_is_refused_in_every_casing_with_or_without_a_signature() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let payload = segment(&fx.claims());
    let real_signature = parts(&fx.valid()).2;
    for alg in ["none", "None", "NONE", "nOnE"] {
        for kid in [None, Some(fx.key.kid.as_str())] {
            let mut header = json!({"alg": alg, "typ": "JWT"});
            if let Some(kid) = kid {
                header["kid"] = kid.into();
            }
            let head = segment(&header);
            for (what, signature) in [
                ("empty signature", String::new()),
                ("junk signature", b64("junk-signature-bytes")),
                ("the real EdDSA signature", real_signature.clone()),
            ] {
                let case = format!("alg {alg:?}, kid {kid:?}, {what}");
                fx.refused(
                    &mut failures,
                    &case,
                    &format!("{head}.{payload}.{signature}"),
                )
                .await;
            }
        }
    }
    failures.assert_none();
}

#[tokio::test]
async fn hs256_signed_with_the_service_public_key_is_refused_when_no_secret_is_configured() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let jwks = Answer::of(fx.app.get("/.well-known/jwks.json").await)
        .await
        .json();
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let pem = fx.key.public_pem();
    let secrets: [(&str, &[u8]); 3] = [
        ("raw 32-byte public key", &fx.key.public),
        ("JWKS x string", x.as_bytes()),
        ("SPKI PEM of the public key", pem.as_bytes()),
    ];
    for (what, secret) in secrets {
        for kid in [Some(fx.key.kid.as_str()), None] {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let case = format!("{alg:?} with the {what}, kid {kid:?}");
                fx.refused(&mut failures, &case, &hmac(alg, secret, kid, &fx.claims()))
                    .await;
            }
        }
    }
    failures.assert_none();
}

#[tokio::test]
async fn an_algorithm_that_does_not_match_the_key_is_refused() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let (_, payload, signature) = parts(&fx.valid());
    // The service key's real signature, under another algorithm's name.
    for alg in [
        "ES256", "RS256", "PS256", "HS256", "ES384", "Ed25519", "eddsa", "EDDSA",
    ] {
        let head = segment(&json!({"alg": alg, "typ": "JWT", "kid": fx.key.kid}));
        fx.refused(
            &mut failures,
            &format!("alg {alg} over an EdDSA signature"),
            &format!("{head}.{payload}.{signature}"),
        )
        .await;
    }
    failures.assert_none();
}

// --- Signatures -------------------------------------------------------------------

#[tokio::test]
async fn a_bad_signature_or_a_tampered_payload_is_refused() {
    let fx = Fixture::new().await;
    let victim = fx.app.create_tenant("victim").await;
    let mut failures = Failures::default();
    let token = fx.valid();
    let (head, payload, signature) = parts(&token);
    let signature_bytes = URL_SAFE_NO_PAD.decode(&signature).unwrap();
    for index in [0, 31, 32, 63] {
        let mut flipped = signature_bytes.clone();
        flipped[index] ^= 0x01;
        fx.refused(
            &mut failures,
            &format!("signature byte {index} flipped"),
            &format!("{head}.{payload}.{}", b64(&flipped)),
        )
        .await;
    }
    for (what, sig) in [
        ("all-zero signature", b64([0_u8; 64])),
        ("truncated signature", b64(&signature_bytes[..63])),
        (
            "signature doubled",
            b64([signature_bytes.clone(), signature_bytes.clone()].concat()),
        ),
        (
            "signature by an unknown key",
            parts(&sign_ed(
                &Key::fresh(),
                &ed_header(&fx.key.kid),
                &fx.claims(),
            ))
            .2,
        ),
        ("another token's signature", parts(&fx.valid()).2),
    ] {
        fx.refused(&mut failures, what, &format!("{head}.{payload}.{sig}"))
            .await;
    }
    // The payload changed after signing; the signature kept.
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload).unwrap()).unwrap();
    for (what, tampered) in [
        (
            "tenant_id swapped for another tenant",
            with(&claims, "tenant_id", victim.to_string().into()),
        ),
        (
            "scope widened to platform:admin",
            with(
                &claims,
                "scope",
                "tenant:read tenant:write platform:admin".into(),
            ),
        ),
        ("sub changed", with(&claims, "sub", "someone-else".into())),
        (
            "exp extended",
            with(&claims, "exp", (now() + 86_400).into()),
        ),
        ("tenant_id removed", without(&claims, "tenant_id")),
    ] {
        fx.refused(
            &mut failures,
            what,
            &format!("{head}.{}.{signature}", segment(&tampered)),
        )
        .await;
    }
    // Same claims, different bytes (pretty-printed JSON): the signature is
    // over the bytes, not the meaning.
    let pretty = b64(serde_json::to_string_pretty(&claims).unwrap());
    fx.refused(
        &mut failures,
        "payload re-serialised",
        &format!("{head}.{pretty}.{signature}"),
    )
    .await;
    // The header changed after signing (kid kept, typ changed).
    let header2 = segment(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": fx.key.kid}));
    fx.refused(
        &mut failures,
        "header changed after signing",
        &format!("{header2}.{payload}.{signature}"),
    )
    .await;
    failures.assert_none();
    // And the victim's data was never served to the tampered token.
    let answer = fx
        .get(&format!(
            "{head}.{}.{signature}",
            segment(&with(&claims, "tenant_id", victim.to_string().into()))
        ))
        .await;
    assert!(
        !answer.body.contains(&victim.to_string()),
        "{}",
        answer.body
    );
}

// --- Time -------------------------------------------------------------------------

#[tokio::test]
async fn expiry_and_not_before_are_enforced_beyond_the_leeway_only() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let claims = fx.claims();
    let now = now();
    let iat_past = |c: &Value| with(c, "iat", (now - 600).into());
    for (what, exp) in [
        ("expired 120 s ago", now - 120),
        ("expired 45 s ago (leeway is 30 s)", now - 45),
        ("expired at the epoch", 0),
        ("expired at 1", 1),
    ] {
        let c = with(&without(&iat_past(&claims), "nbf"), "exp", exp.into());
        fx.refused(&mut failures, what, &fx.sign(&c)).await;
    }
    fx.refused(
        &mut failures,
        "negative exp",
        &fx.sign(&with(&without(&claims, "nbf"), "exp", (-1).into())),
    )
    .await;
    let c = with(
        &without(&iat_past(&claims), "nbf"),
        "exp",
        (now - 10).into(),
    );
    fx.accepted(
        &mut failures,
        "expired 10 s ago, within the leeway",
        &fx.sign(&c),
    )
    .await;
    for (what, nbf) in [
        ("nbf 120 s ahead", now + 120),
        ("nbf 60 s ahead", now + 60),
        ("nbf a year ahead", now + 365 * 86_400),
    ] {
        let c = with(&claims, "nbf", nbf.into());
        fx.refused(&mut failures, what, &fx.sign(&c)).await;
    }
    let c = with(&claims, "nbf", (now + 10).into());
    fx.accepted(
        &mut failures,
        "nbf 10 s ahead, within the leeway",
        &fx.sign(&c),
    )
    .await;
    fx.refused(
        &mut failures,
        "nbf as a string",
        &fx.sign(&with(&claims, "nbf", "0".into())),
    )
    .await;
    failures.assert_none();
}

// --- Claims -----------------------------------------------------------------------

#[tokio::test]
async fn claims_that_are_wrong_missing_or_malformed_are_refused() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let claims = fx.claims();
    let cases: Vec<(&str, Value)> = vec![
        ("wrong aud", with(&claims, "aud", "someone-else-api".into())),
        (
            "aud array without ours",
            with(&claims, "aud", json!(["a", "b"])),
        ),
        ("empty aud array", with(&claims, "aud", json!([]))),
        (
            "aud differing in case",
            with(&claims, "aud", TEST_AUDIENCE.to_uppercase().into()),
        ),
        ("aud as a number", with(&claims, "aud", 42.into())),
        ("missing aud", without(&claims, "aud")),
        (
            "wrong iss",
            with(&claims, "iss", "https://evil.test/".into()),
        ),
        (
            "iss with a trailing slash",
            with(&claims, "iss", format!("{TEST_ISSUER}/").into()),
        ),
        (
            "iss differing in case",
            with(&claims, "iss", TEST_ISSUER.to_uppercase().into()),
        ),
        ("missing iss", without(&claims, "iss")),
        ("missing exp", without(&claims, "exp")),
        ("exp as a string", with(&claims, "exp", "9999999999".into())),
        ("exp null", with(&claims, "exp", Value::Null)),
        ("missing sub", without(&claims, "sub")),
        ("empty sub", with(&claims, "sub", "".into())),
        ("sub as a number", with(&claims, "sub", 42.into())),
        (
            "sub of 257 bytes",
            with(&claims, "sub", "s".repeat(257).into()),
        ),
        (
            "tenant_id not a UUID",
            with(&claims, "tenant_id", "not-a-uuid".into()),
        ),
        ("tenant_id empty", with(&claims, "tenant_id", "".into())),
        (
            "tenant_id as a number",
            with(&claims, "tenant_id", 42.into()),
        ),
        (
            "tenant_id as an array",
            with(&claims, "tenant_id", json!([fx.tenant.to_string()])),
        ),
        (
            "tenant_id as an object",
            with(&claims, "tenant_id", json!({"id": fx.tenant.to_string()})),
        ),
        (
            "tenant_id with SQL",
            with(
                &claims,
                "tenant_id",
                format!("{}' OR '1'='1", fx.tenant).into(),
            ),
        ),
    ];
    for (what, c) in cases {
        fx.refused(&mut failures, what, &fx.sign(&c)).await;
    }
    failures.assert_none();
}

/// RFC 7519 §4.1.1: `iss` is one StringOrURI. An array that names the
/// service's issuer next to another one is not the service's token.
#[tokio::test]
async fn an_iss_that_is_not_a_single_string_is_refused() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let claims = fx.claims();
    for (what, iss) in [
        (
            "iss array: evil issuer and ours",
            json!(["https://evil.test/", TEST_ISSUER]),
        ),
        ("iss array: ours alone", json!([TEST_ISSUER])),
        ("iss as a number", json!(1)),
        ("iss as an object", json!({"iss": TEST_ISSUER})),
    ] {
        fx.refused(&mut failures, what, &fx.sign(&with(&claims, "iss", iss)))
            .await;
    }
    failures.assert_none();
}

// --- Key ids and key-carrying headers ---------------------------------------------

#[tokio::test]
async fn an_unknown_or_path_like_kid_is_refused() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let claims = fx.claims();
    let kids: Vec<(&str, Value)> = vec![
        ("unknown kid", "no-such-key".into()),
        ("kid ../../etc/passwd", "../../etc/passwd".into()),
        ("kid /dev/null", "/dev/null".into()),
        ("kid file:///dev/null", "file:///dev/null".into()),
        ("kid with a NUL", format!("{}\u{0}", fx.key.kid).into()),
        ("kid with SQL", "x' OR '1'='1".into()),
        ("kid differing in case", fx.key.kid.to_uppercase().into()),
        (
            "kid with a trailing space",
            format!("{} ", fx.key.kid).into(),
        ),
        ("empty kid", "".into()),
        (
            "kid of 6 KB (under the size limit)",
            "k".repeat(6 * 1024).into(),
        ),
        ("kid of 10 KB", "k".repeat(10 * 1024).into()),
        ("kid as a number", 1.into()),
        ("kid as an array", json!([fx.key.kid])),
    ];
    for (what, kid) in kids {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
        // Signed with the app's real key: only the kid is wrong.
        fx.refused(&mut failures, what, &sign_ed(&fx.key, &header, &claims))
            .await;
    }
    // An attacker's key under any of the path-like kids is refused too.
    let attacker = Key::fresh();
    for kid in ["../../etc/passwd", "/dev/null", attacker.kid.as_str()] {
        let token = sign_ed(&attacker, &ed_header(kid), &claims);
        fx.refused(&mut failures, &format!("attacker key, kid {kid}"), &token)
            .await;
    }
    failures.assert_none();
}

/// A JWKS document on 127.0.0.1 port 0 that counts every request it gets
/// (any path); its answer can be changed while it runs.
struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
    /// Status, body, and how long to wait before answering.
    reply: Arc<Mutex<(u16, String, Duration)>>,
    /// `Cache-Control` and `ETag` of the answer; with an ETag, a request
    /// whose `If-None-Match` names it gets 304.
    caching: Arc<Mutex<(Option<String>, Option<String>)>>,
    /// 304s answered.
    not_modified: Arc<AtomicUsize>,
    handle: ServerHandle,
}

impl JwksServer {
    fn start(doc: &Value) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let not_modified = Arc::new(AtomicUsize::new(0));
        let reply = Arc::new(Mutex::new((200_u16, doc.to_string(), Duration::ZERO)));
        let caching = Arc::new(Mutex::new((None::<String>, None::<String>)));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let state = (
            hits.clone(),
            reply.clone(),
            caching.clone(),
            not_modified.clone(),
        );
        let server = HttpServer::new(move || {
            let state = state.clone();
            App::new().default_service(web::to(move |req: actix_web::HttpRequest| {
                let (h, r, c, n) = state.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let (status, body, delay) = r.lock().unwrap().clone();
                    let (cache_control, etag) = c.lock().unwrap().clone();
                    tokio::time::sleep(delay).await;
                    let mut response = HttpResponse::build(StatusCode::from_u16(status).unwrap());
                    if let Some(cc) = &cache_control {
                        response.insert_header(("cache-control", cc.as_str()));
                    }
                    if let Some(etag) = &etag {
                        response.insert_header(("etag", etag.as_str()));
                        let asked = req
                            .headers()
                            .get("if-none-match")
                            .and_then(|v| v.to_str().ok());
                        if asked == Some(etag.as_str()) {
                            n.fetch_add(1, Ordering::SeqCst);
                            return response.status(StatusCode::NOT_MODIFIED).finish();
                        }
                    }
                    response.content_type("application/json").body(body)
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url,
            hits,
            reply,
            caching,
            not_modified,
            handle,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn not_modified(&self) -> usize {
        self.not_modified.load(Ordering::SeqCst)
    }

    fn reply_with(&self, status: u16, body: &str) {
        self.reply_slowly(status, body, Duration::ZERO);
    }

    fn reply_slowly(&self, status: u16, body: &str, delay: Duration) {
        *self.reply.lock().unwrap() = (status, body.to_owned(), delay);
    }

    fn cache_with(&self, cache_control: Option<&str>, etag: Option<&str>) {
        *self.caching.lock().unwrap() = (cache_control.map(str::to_owned), etag.map(str::to_owned));
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

#[tokio::test]
async fn jku_x5u_and_embedded_jwk_headers_are_never_followed_or_trusted() {
    let fx = Fixture::new().await;
    let attacker = Key::fresh();
    let lure = JwksServer::start(&json!({"keys": [
        attacker.jwk(&attacker.kid),
        attacker.jwk(&fx.key.kid),
    ]}));
    let mut failures = Failures::default();
    let claims = fx.claims();
    for kid in [attacker.kid.clone(), fx.key.kid.clone()] {
        let headers = [
            ("jku", json!({"alg": "EdDSA", "kid": kid, "jku": lure.url})),
            ("x5u", json!({"alg": "EdDSA", "kid": kid, "x5u": lure.url})),
            (
                "jku and x5u",
                json!({"alg": "EdDSA", "kid": kid, "jku": lure.url, "x5u": lure.url}),
            ),
            (
                "embedded jwk",
                json!({"alg": "EdDSA", "kid": kid, "jwk": attacker.jwk(&kid)}),
            ),
        ];
        for (what, header) in headers {
            let token = sign_ed(&attacker, &header, &claims);
            fx.refused(&mut failures, &format!("{what}, kid {kid}"), &token)
                .await;
        }
    }
    // Without any kid: only the header's own key could verify it.
    for (what, header) in [
        ("jku without kid", json!({"alg": "EdDSA", "jku": lure.url})),
        ("x5u without kid", json!({"alg": "EdDSA", "x5u": lure.url})),
        (
            "embedded jwk without kid",
            json!({"alg": "EdDSA", "jwk": attacker.jwk(&attacker.kid)}),
        ),
    ] {
        fx.refused(&mut failures, what, &sign_ed(&attacker, &header, &claims))
            .await;
    }
    // Give any background fetch a moment to land before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        lure.hits(),
        0,
        "the app fetched a URL named in a token header"
    );
    // The lure does count: one request of our own shows up.
    fx.app.client.get(&lure.url).send().await.unwrap();
    assert_eq!(lure.hits(), 1, "the lure server does not count requests");
    lure.stop().await;
    failures.assert_none();
}

// --- Malformed tokens ---------------------------------------------------------------

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let valid = fx.valid();
    let (head, payload, signature) = parts(&valid);
    let mut padded_claims = fx.claims();
    padded_claims["padding"] = "p".repeat(20 * 1024).into();
    let sign_payload = |raw: &[u8]| sign_segments(&fx.key, &head, &b64(raw));
    let cases: Vec<(&str, String)> = vec![
        ("non-base64 segments", "not base64!.@@@@.####".to_owned()),
        ("non-base64 header", format!("!!!.{payload}.{signature}")),
        ("non-base64 payload", format!("{head}.%%%.{signature}")),
        ("non-base64 signature", format!("{head}.{payload}.***")),
        (
            "standard base64 alphabet",
            format!("{head}+/.{payload}.{signature}"),
        ),
        ("2 segments", format!("{head}.{payload}")),
        ("4 segments", format!("{valid}.{signature}")),
        (
            "5 segments (JWE-shaped)",
            format!("{head}.{payload}.{payload}.{payload}.{signature}"),
        ),
        ("1 segment", head.clone()),
        ("just dots", "..".to_owned()),
        ("empty segments", format!("..{signature}")),
        ("empty string", String::new()),
        ("20 KB of junk", "a".repeat(20 * 1024)),
        ("validly signed 20 KB token", fx.sign(&padded_claims)),
        ("JSON array as payload", sign_payload(b"[1,2,3]")),
        ("JSON string as payload", sign_payload(b"\"tenant\"")),
        ("JSON null as payload", sign_payload(b"null")),
        ("non-JSON payload", sign_payload(b"not json at all")),
        (
            "truncated JSON payload",
            sign_payload(&fx.claims().to_string().as_bytes()[..20]),
        ),
        (
            "JSON array as header",
            sign_segments(&fx.key, &b64("[\"EdDSA\"]"), &payload),
        ),
        (
            "non-JSON header",
            sign_segments(&fx.key, &b64("EdDSA"), &payload),
        ),
        (
            "header without alg",
            sign_ed(&fx.key, &json!({"kid": fx.key.kid}), &fx.claims()),
        ),
    ];
    for (what, token) in cases {
        fx.refused(&mut failures, what, &token).await;
    }
    failures.assert_none();
}

/// RFC 7515 §4.1.11: a recipient MUST reject a JWS whose `crit` header
/// lists an extension it does not understand (e.g. RFC 7797 `b64`, which
/// changes what the signature covers).
#[tokio::test]
async fn a_header_with_a_critical_extension_the_service_does_not_understand_is_refused() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let claims = fx.claims();
    for (what, header) in [
        (
            "crit naming an unknown extension",
            json!({"alg": "EdDSA", "kid": fx.key.kid, "crit": ["urn:example:must-understand"], "urn:example:must-understand": true}),
        ),
        (
            "crit b64 (RFC 7797), b64 false",
            json!({"alg": "EdDSA", "kid": fx.key.kid, "crit": ["b64"], "b64": false}),
        ),
    ] {
        fx.refused(&mut failures, what, &sign_ed(&fx.key, &header, &claims))
            .await;
    }
    failures.assert_none();
}

// --- The Authorization header ---------------------------------------------------------

#[tokio::test]
async fn the_authorization_header_must_carry_a_bearer_token() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let valid = fx.valid();
    let text = |s: String| Some(HeaderValue::from_str(&s).unwrap());
    let refused: Vec<(&str, Option<HeaderValue>)> = vec![
        ("missing", None),
        ("Bearer with nothing", text("Bearer".to_owned())),
        ("Bearer and a space", text("Bearer ".to_owned())),
        ("Bearer and spaces", text("Bearer    ".to_owned())),
        ("Basic credentials", text("Basic dXNlcjpwYXNz".to_owned())),
        ("Token scheme", text(format!("Token {valid}"))),
        ("no scheme", text(valid.clone())),
        ("Bearer glued to the token", text(format!("Bearer{valid}"))),
        ("two tokens", text(format!("Bearer {valid} {valid}"))),
        (
            "non-ASCII token",
            Some(HeaderValue::from_bytes("Bearer jéton.ïnvalide.ß".as_bytes()).unwrap()),
        ),
        (
            "valid token with a trailing non-ASCII byte",
            Some(
                HeaderValue::from_bytes(&[format!("Bearer {valid}").as_bytes(), &[0xff]].concat())
                    .unwrap(),
            ),
        ),
        (
            "non-ASCII scheme",
            Some(HeaderValue::from_bytes(&[b"B\xe9arer ", valid.as_bytes()].concat()).unwrap()),
        ),
    ];
    for (what, value) in refused {
        failures.check(what, fx.same_refusal(&fx.get_with_header(value).await));
    }
    // The scheme is case-insensitive (RFC 7235 §2.1).
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        failures.check(
            &format!("scheme {scheme}"),
            fx.get_with_header(text(format!("{scheme} {valid}")))
                .await
                .tenant(fx.tenant),
        );
    }
    // The token is read from the header only, never from the query string.
    let answer = Answer::of(
        fx.app
            .client
            .get(fx.app.url(&format!("/v1/tenant?access_token={valid}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    failures.check("access_token in the query string", fx.same_refusal(&answer));
    failures.assert_none();
}

// --- Planes and scopes ------------------------------------------------------------------

#[tokio::test]
async fn a_platform_token_is_forbidden_on_the_tenant_plane() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    failures.check(
        "admin_token()",
        fx.get(&fx.app.admin_token()).await.forbidden(),
    );
    let claims = fx.claims();
    for (what, c) in [
        (
            "no tenant claim, tenant scopes",
            without(&claims, "tenant_id"),
        ),
        ("tenant claim null", with(&claims, "tenant_id", Value::Null)),
        (
            "tenant under another claim name",
            with(
                &without(&claims, "tenant_id"),
                "tid",
                fx.tenant.to_string().into(),
            ),
        ),
        (
            "platform:admin without a tenant",
            with(
                &without(&claims, "tenant_id"),
                "scope",
                "platform:admin".into(),
            ),
        ),
    ] {
        failures.check(what, fx.get(&fx.sign(&c)).await.forbidden());
    }
    failures.assert_none();
}

#[tokio::test]
async fn scopes_decide_what_a_tenant_token_may_do() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let reader = fx
        .app
        .token("reader", Some(fx.tenant), &[Scope::TenantRead]);
    let writer = fx
        .app
        .token("writer", Some(fx.tenant), &[Scope::TenantWrite]);
    let nobody = fx.app.token("nobody", Some(fx.tenant), &[]);
    fx.accepted(&mut failures, "tenant:read reads", &reader)
        .await;
    failures.check("no scope reads", fx.get(&nobody).await.forbidden());
    let body = json!({"name": "c1", "region": "eu-west"});
    let post = |token: &str| {
        fx.app
            .with_token(Method::POST, "/v1/clusters", token)
            .json(&body)
            .send()
    };
    failures.check(
        "tenant:read writes",
        Answer::of(post(&reader).await.unwrap()).await.forbidden(),
    );
    failures.check(
        "no scope writes",
        Answer::of(post(&nobody).await.unwrap()).await.forbidden(),
    );
    // Scope names are case-sensitive; platform:admin grants nothing here.
    for (what, scope) in [
        ("upper-case scope", "TENANT:READ TENANT:WRITE"),
        ("platform:admin with a tenant", "platform:admin"),
        ("scope prefix", "tenant"),
    ] {
        let token = fx.sign(&with(&fx.claims(), "scope", scope.into()));
        failures.check(what, fx.get(&token).await.forbidden());
    }
    let app = &fx.app;
    let list = |token: String| async move {
        Answer::of(
            app.with_token(Method::GET, "/v1/clusters", &token)
                .send()
                .await
                .unwrap(),
        )
        .await
        .json()
    };
    assert_eq!(
        list(reader.clone()).await["items"],
        json!([]),
        "a refused write left a row"
    );
    let created = Answer::of(post(&writer).await.unwrap()).await;
    assert_eq!(
        created.status, 201,
        "tenant:write creates: {}",
        created.body
    );
    assert_eq!(created.json()["name"], "c1");
    let items = list(reader).await["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    failures.assert_none();
}

#[tokio::test]
async fn a_scopes_array_is_accepted_and_a_scope_of_the_wrong_type_is_refused() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    let bare = without(&fx.claims(), "scope");
    fx.accepted(
        &mut failures,
        "scopes array",
        &fx.sign(&with(&bare, "scopes", json!(["tenant:read"]))),
    )
    .await;
    fx.accepted(
        &mut failures,
        "scopes array with an unknown name",
        &fx.sign(&with(&bare, "scopes", json!(["email", "tenant:read"]))),
    )
    .await;
    for (what, c) in [
        ("scope as a number", with(&bare, "scope", 1.into())),
        ("scope as a boolean", with(&bare, "scope", true.into())),
        (
            "scope as an object",
            with(&bare, "scope", json!({"tenant:read": true})),
        ),
        (
            "scope as an array",
            with(&bare, "scope", json!(["tenant:read"])),
        ),
        (
            "scopes as a string",
            with(&bare, "scopes", "tenant:read".into()),
        ),
        (
            "scopes with a number",
            with(&bare, "scopes", json!(["tenant:read", 7])),
        ),
        ("scopes as a number", with(&bare, "scopes", 7.into())),
    ] {
        fx.refused(&mut failures, what, &fx.sign(&c)).await;
    }
    failures.assert_none();
}

#[tokio::test]
async fn a_token_for_a_tenant_that_does_not_exist_is_forbidden() {
    let fx = Fixture::new().await;
    let mut failures = Failures::default();
    for (what, id) in [
        ("random tenant id", TenantId::new().to_string()),
        ("nil tenant id", uuid::Uuid::nil().to_string()),
    ] {
        let token = fx.sign(&with(&fx.claims(), "tenant_id", id.into()));
        failures.check(what, fx.get(&token).await.forbidden());
    }
    failures.assert_none();
}

// --- HS256 with a shared secret --------------------------------------------------------

#[tokio::test]
async fn hs256_is_accepted_only_with_the_configured_shared_secret() {
    let mut auth = test_auth_settings();
    auth.hs256_secret = Some(SecretString::from(SHARED_SECRET));
    let fx = Fixture::with_auth(auth).await;
    let mut failures = Failures::default();
    let claims = fx.claims();
    fx.accepted(
        &mut failures,
        "HS256 with the shared secret, no kid",
        &hmac(Algorithm::HS256, SHARED_SECRET.as_bytes(), None, &claims),
    )
    .await;
    // The service's own EdDSA tokens keep working.
    fx.accepted(&mut failures, "EdDSA next to HS256", &fx.valid())
        .await;
    let x = b64(fx.key.public);
    let pem = fx.key.public_pem();
    let cases = [
        (
            "HS256 with the wrong secret",
            hmac(
                Algorithm::HS256,
                b"another-shared-secret-of-32-bytes!!!",
                None,
                &claims,
            ),
        ),
        (
            "HS256 with the secret truncated",
            hmac(
                Algorithm::HS256,
                &SHARED_SECRET.as_bytes()[..32],
                None,
                &claims,
            ),
        ),
        (
            "HS384 with the shared secret",
            hmac(Algorithm::HS384, SHARED_SECRET.as_bytes(), None, &claims),
        ),
        (
            "HS512 with the shared secret",
            hmac(Algorithm::HS512, SHARED_SECRET.as_bytes(), None, &claims),
        ),
        (
            "HS256 with the Ed25519 public key and the service kid",
            hmac(Algorithm::HS256, &fx.key.public, Some(&fx.key.kid), &claims),
        ),
        (
            "HS256 with the Ed25519 public key, no kid",
            hmac(Algorithm::HS256, &fx.key.public, None, &claims),
        ),
        (
            "HS256 with the JWKS x string and the service kid",
            hmac(Algorithm::HS256, x.as_bytes(), Some(&fx.key.kid), &claims),
        ),
        (
            "HS256 with the public PEM and the service kid",
            hmac(Algorithm::HS256, pem.as_bytes(), Some(&fx.key.kid), &claims),
        ),
        (
            "HS256 with the shared secret, expired",
            hmac(
                Algorithm::HS256,
                SHARED_SECRET.as_bytes(),
                None,
                &with(&claims, "exp", (now() - 120).into()),
            ),
        ),
        (
            "HS256 with the shared secret, wrong aud",
            hmac(
                Algorithm::HS256,
                SHARED_SECRET.as_bytes(),
                None,
                &with(&claims, "aud", "x".into()),
            ),
        ),
        (
            "EdDSA by an attacker, no kid",
            sign_ed(&Key::fresh(), &json!({"alg": "EdDSA"}), &claims),
        ),
        ("EdDSA header over an HS256 signature, no kid", {
            let (_, p, s) = parts(&hmac(
                Algorithm::HS256,
                SHARED_SECRET.as_bytes(),
                None,
                &claims,
            ));
            format!(
                "{}.{p}.{s}",
                segment(&json!({"alg": "EdDSA", "typ": "JWT"}))
            )
        }),
    ];
    for (what, token) in cases {
        fx.refused(&mut failures, what, &token).await;
    }
    failures.assert_none();
}

// --- Keys from a JWKS file: ES256, RS256 and their confusions ----------------------

/// A P-256 key generated for these tests only (PKCS#8) and its public JWK.
const ES256_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDOVw8OoZKiqvzyqD
nf8Gc/RRKDFhjJFNP8cczwcdXB+hRANCAASrPSrvwhF+oBTxwbZgB4BRCGY7ZJWf
XCEzuVLbJ7lwD+e7SsHnen1d2rLObiES7GYMqqfpSEwJLHF0qpqtp3xr
-----END PRIVATE KEY-----
";
const ES256_X: &str = "qz0q78IRfqAU8cG2YAeAUQhmO2SVn1whM7lS2ye5cA8";
const ES256_Y: &str = "57tKwed6fV3ass5uIRLsZgyqp-lITAkscXSqmq2nfGs";

/// An RSA-2048 key generated for these tests only (PKCS#8), its public
/// half (SPKI PEM) and modulus.
const RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCotBCIzkKmp9RV
arE6EqJSucpz3hNrfzNUrVRYA5XErT84QTV/BcTdG3jhoTWx3Mr7xWYdVGXFkM3M
d095hUPqSxJ01llQKMr4La0XN1KowbZFOf4omG2XoCO+3hzVMkw9/dPvp4pOUR3v
CXCJLkL2cxBjQ7qr8Qj+gcgsV76XwoWSLjxm5OmTMzhBWI8AWiDTZLocJqxOgrfM
H8iDf8K8uHmFCnMMmTPlCvN19BWfe01V77elhW0+NcX74LZHQBMDCIqGVTg0BA5D
F/7OquVrZJkMUt9CwBJ86l3o3BWcylJWmnBhbvZPNT3cgzH32H8z6kcmcUmresCS
Ice7zDr9AgMBAAECggEARvjx18wGSDxk3MZ05rx+I5Vb8aDkxJ2Px7jfueNQN5y2
8wCj89tGdcqf8TQz9a6winkCO6aM5i/EFJfBDJue9cs9aX/ftRRkR0JYBmNU2AAe
oUMDhKqTuG07fInO0XZGkvHdHn56dfY0RKLRADVBIJNJuqj8uGc/5GpO/zCu0wLo
4J9RNG7F7eqZ6UPUvzvfFFBL129gnXTV2aEd0bX+EoqbYAaYIinS5WveBvX3Kf7z
gIitisCeu3HVOsfZ9tbXueB3QcBIRD9v1GjGVuJOl3n7/aiiwdx0yBGFOsJjj+LJ
MsHZ/m1Hzihp9gHceEeeyjIePvV8ZtrOj5i8fLuUtQKBgQDWy+u5ret6h5n+Btci
gjNvfXrmPWcs6RS3ALQxp+VHTcIvVwOMkDeop93sALgsjiRu8l+PZjlCfxEDTb31
UAODy74l8Yf7goxbuSPbo2VVsxY7FdhA5MbgkPpnCkxXq7PB6vPG37pjqjGOdSOW
HhzUyo1ggOkLlNb1F83SKL8VowKBgQDJEKG9i81toKgrNzr1fBypcQgfnt+pK+d6
OvjUkX3LDGKLtVIZWhwsmk7N4ez5+e4zxTaJWzdkRHHd+2ff41mBU/rWNeS80EwC
nXvjXWfFzGmPDnmmK9dRIiG9NMlhiKCYjvr97KO32vMZ0Q7vbLATwyHcsTciOHtt
toVH8pg23wKBgCMoV5oZzIxOu7bnmbkNRKwABui+ri+cqwZVOClUiOPF533mKS+N
v358k4d4iqzIS1BZnaiUG9U1hSxcQjZv9VNSOvps8UwKjzzILgVaVlDTslTTe4UL
rT2+nS3Wcq567T5VXbd0kUaU6e2eYMfGgAOYb9GW6A48O378eXTntHcvAoGAPKp2
Arjx7MfytcdeVL9z7nQaXWAUX/jNSQYOGiUj7WX5PeohsWCM67BLYrduRyZwBtLU
V7FcDzbPnIjEmLsCQJFUN9nfAFFg/dEClmGSdA3vM6jMb6T+vI4t2+bXdERDIITT
mlYSN+EqRHndpcQHhI714p7d4cdlBn9xy3mZD8UCgYEAyQB9DpqHChumc1rPBLwZ
HKoSy9Sw54pHY9UQIHKhbAGkgNJTAfemP07be46w7JHav6dKoktA6/Zr9GpQ+CFr
BX1cJCwc9L+YqZlcPU5DVtgPVTujSYIe/qVrisgg3SLw8rbkRc7vui+7SciMhUuB
WIP308ssd/f6ROSLVPlOzzw=
-----END PRIVATE KEY-----
";
const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqLQQiM5CpqfUVWqxOhKi
UrnKc94Ta38zVK1UWAOVxK0/OEE1fwXE3Rt44aE1sdzK+8VmHVRlxZDNzHdPeYVD
6ksSdNZZUCjK+C2tFzdSqMG2RTn+KJhtl6Ajvt4c1TJMPf3T76eKTlEd7wlwiS5C
9nMQY0O6q/EI/oHILFe+l8KFki48ZuTpkzM4QViPAFog02S6HCasToK3zB/Ig3/C
vLh5hQpzDJkz5QrzdfQVn3tNVe+3pYVtPjXF++C2R0ATAwiKhlU4NAQOQxf+zqrl
a2SZDFLfQsASfOpd6NwVnMpSVppwYW72TzU93IMx99h/M+pHJnFJq3rAkiHHu8w6
/QIDAQAB
-----END PUBLIC KEY-----
";
const RSA_N: &str = "qLQQiM5CpqfUVWqxOhKiUrnKc94Ta38zVK1UWAOVxK0_OEE1fwXE3Rt44aE1sdzK-8VmHVRlxZDNzHdPeYVD6ksSdNZZUCjK-C2tFzdSqMG2RTn-KJhtl6Ajvt4c1TJMPf3T76eKTlEd7wlwiS5C9nMQY0O6q_EI_oHILFe-l8KFki48ZuTpkzM4QViPAFog02S6HCasToK3zB_Ig3_CvLh5hQpzDJkz5QrzdfQVn3tNVe-3pYVtPjXF--C2R0ATAwiKhlU4NAQOQxf-zqrla2SZDFLfQsASfOpd6NwVnMpSVppwYW72TzU93IMx99h_M-pHJnFJq3rAkiHHu8w6_Q";

/// A token signed by jsonwebtoken with `alg` and this key.
fn library_token(alg: Algorithm, key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test]
async fn es256_and_rs256_keys_from_a_jwks_file_verify_only_under_their_own_algorithm() {
    let file_ed = Key::fresh();
    let oct_secret = b"an-oct-key-published-in-the-jwks-file";
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "x": ES256_X, "y": ES256_Y, "kid": "es-1", "alg": "ES256", "use": "sig"},
        {"kty": "RSA", "n": RSA_N, "e": "AQAB", "kid": "rs-1", "alg": "RS256", "use": "sig"},
        {"kty": "RSA", "n": RSA_N, "e": "AQAB", "kid": "rs-ps", "alg": "PS256"},
        {"kty": "EC", "crv": "P-256", "x": ES256_X, "y": ES256_Y, "kid": "es-as-rs", "alg": "RS256"},
        file_ed.jwk("file-ed"),
        {"kty": "oct", "k": b64(oct_secret), "kid": "file-hmac", "alg": "HS256"},
    ]});
    let path = std::env::temp_dir().join(format!("tenantry-tokens-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, jwks.to_string()).unwrap();
    let mut auth = test_auth_settings();
    auth.jwks_file = Some(path.clone());
    auth.trusted_issuers = vec![IDP.to_owned()];
    let fx = Fixture::with_auth(auth).await;
    std::fs::remove_file(&path).unwrap();
    let mut failures = Failures::default();
    // Keys from a JWKS vouch only for the trusted issuers.
    let claims = with(&fx.claims(), "iss", IDP.into());
    let ec = EncodingKey::from_ec_pem(ES256_PEM.as_bytes()).unwrap();
    let rsa = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap();
    for (what, token) in [
        (
            "ES256, kid es-1",
            library_token(Algorithm::ES256, &ec, "es-1", &claims),
        ),
        (
            "RS256, kid rs-1",
            library_token(Algorithm::RS256, &rsa, "rs-1", &claims),
        ),
        (
            "EdDSA, kid file-ed",
            sign_ed(&file_ed, &ed_header("file-ed"), &claims),
        ),
        (
            "PS256 by the RSA key, kid rs-ps (a PS256 JWK)",
            library_token(Algorithm::PS256, &rsa, "rs-ps", &claims),
        ),
    ] {
        fx.accepted(&mut failures, what, &token).await;
    }
    let n = URL_SAFE_NO_PAD.decode(RSA_N).unwrap();
    let refused = [
        (
            "HS256, kid rs-1, RSA public PEM as secret",
            hmac(
                Algorithm::HS256,
                RSA_PUBLIC_PEM.as_bytes(),
                Some("rs-1"),
                &claims,
            ),
        ),
        (
            "HS256, kid rs-1, modulus as secret",
            hmac(Algorithm::HS256, &n, Some("rs-1"), &claims),
        ),
        (
            "HS256, kid es-1, x as secret",
            hmac(Algorithm::HS256, ES256_X.as_bytes(), Some("es-1"), &claims),
        ),
        (
            "HS256, kid file-hmac, the JWKS oct key",
            hmac(Algorithm::HS256, oct_secret, Some("file-hmac"), &claims),
        ),
        (
            "PS256 by the RSA key, kid rs-1",
            library_token(Algorithm::PS256, &rsa, "rs-1", &claims),
        ),
        (
            "RS512 by the RSA key, kid rs-1",
            library_token(Algorithm::RS512, &rsa, "rs-1", &claims),
        ),
        (
            "RS256 by the RSA key, kid rs-ps",
            library_token(Algorithm::RS256, &rsa, "rs-ps", &claims),
        ),
        (
            "RS256 by the RSA key, kid es-1",
            library_token(Algorithm::RS256, &rsa, "es-1", &claims),
        ),
        (
            "ES256 by the EC key, kid rs-1",
            library_token(Algorithm::ES256, &ec, "rs-1", &claims),
        ),
        (
            "ES256 by the EC key, kid es-as-rs (alg contradicts kty)",
            library_token(Algorithm::ES256, &ec, "es-as-rs", &claims),
        ),
        (
            "ES256 by the EC key, kid file-ed",
            library_token(Algorithm::ES256, &ec, "file-ed", &claims),
        ),
        (
            "ES256 by the EC key, no kid",
            jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &ec).unwrap(),
        ),
        (
            "ES256, kid es-1, the service's own iss (a JWKS key cannot speak for the service)",
            library_token(
                Algorithm::ES256,
                &ec,
                "es-1",
                &with(&claims, "iss", TEST_ISSUER.into()),
            ),
        ),
        (
            "EdDSA, kid file-ed, the service's own iss",
            sign_ed(
                &file_ed,
                &ed_header("file-ed"),
                &with(&claims, "iss", TEST_ISSUER.into()),
            ),
        ),
        (
            "ES256, kid es-1, untrusted iss",
            library_token(
                Algorithm::ES256,
                &ec,
                "es-1",
                &with(&claims, "iss", "https://evil.test/".into()),
            ),
        ),
        (
            "RS256, kid rs-1, expired",
            library_token(
                Algorithm::RS256,
                &rsa,
                "rs-1",
                &with(&claims, "exp", (now() - 120).into()),
            ),
        ),
    ];
    for (what, token) in refused {
        fx.refused(&mut failures, what, &token).await;
    }
    failures.assert_none();
}

// --- Keys from a JWKS URL --------------------------------------------------------------

/// An app that trusts `IDP` with keys from `server`.
async fn idp_app(server: &JwksServer) -> Fixture {
    let mut auth = test_auth_settings();
    auth.jwks_url = Some(server.url.clone());
    auth.trusted_issuers = vec![IDP.to_owned()];
    Fixture::with_auth(auth).await
}

fn idp_claims(fx: &Fixture) -> Value {
    with(&fx.claims(), "iss", IDP.into())
}

#[tokio::test]
async fn keys_from_a_jwks_url_are_cached_refetched_sparingly_and_survive_the_url_going_down() {
    let external = Key::fresh();
    let hmac_secret = b"an-oct-key-published-in-the-jwks!";
    let server = JwksServer::start(&json!({"keys": [
        external.jwk("ext-1"),
        // Keys the service must ignore: symmetric, encryption-only, unknown type.
        {"kty": "oct", "k": b64(hmac_secret), "kid": "ext-hmac", "alg": "HS256"},
        {"kty": "OKP", "crv": "X25519", "x": b64([9_u8; 32]), "kid": "ext-enc", "use": "enc"},
        {"kty": "AKP", "alg": "ML-DSA-44", "pub": b64([1_u8; 32]), "kid": "ext-pq"},
    ]}));
    let fx = idp_app(&server).await;
    let mut failures = Failures::default();
    let claims = idp_claims(&fx);
    let ext = |kid: &str| sign_ed(&external, &ed_header(kid), &claims);
    fx.accepted(&mut failures, "external key ext-1", &ext("ext-1"))
        .await;
    assert_eq!(
        server.hits(),
        1,
        "one JWKS fetch for the first external token"
    );
    // The external key does not make just any token acceptable.
    for (what, token) in [
        (
            "external key, untrusted iss",
            sign_ed(
                &external,
                &ed_header("ext-1"),
                &with(&claims, "iss", "https://evil.test/".into()),
            ),
        ),
        (
            "external key under the service kid",
            sign_ed(&external, &ed_header(&fx.key.kid), &claims),
        ),
        (
            "attacker key under kid ext-1",
            sign_ed(&Key::fresh(), &ed_header("ext-1"), &claims),
        ),
        (
            "HS256 with kid ext-1 and its x as the secret",
            hmac(
                Algorithm::HS256,
                b64(external.public).as_bytes(),
                Some("ext-1"),
                &claims,
            ),
        ),
        (
            "HS256 with the JWKS oct key",
            hmac(Algorithm::HS256, hmac_secret, Some("ext-hmac"), &claims),
        ),
        ("external key, kid ext-enc", ext("ext-enc")),
        ("external key, kid ext-pq", ext("ext-pq")),
    ] {
        fx.refused(&mut failures, what, &token).await;
    }
    // Twenty tokens with unknown kids, all at once: at most one refetch.
    let before = server.hits();
    let unknown: Vec<String> = (0..20).map(|i| ext(&format!("unknown-{i}"))).collect();
    let answers = futures_util::future::join_all(unknown.iter().map(|token| fx.get(token))).await;
    for (i, answer) in answers.iter().enumerate() {
        failures.check(&format!("unknown kid #{i}"), answer.unauthorized());
    }
    let refetches = server.hits() - before;
    assert!(
        refetches <= 1,
        "20 unknown kids within {JWKS_MIN_REFETCH:?} caused {refetches} JWKS fetches"
    );
    // The URL goes down: the cached key keeps verifying.
    server.stop().await;
    fx.accepted(
        &mut failures,
        "ext-1 after the JWKS URL went down",
        &ext("ext-1"),
    )
    .await;
    fx.refused(
        &mut failures,
        "unknown kid after the URL went down",
        &ext("unknown-x"),
    )
    .await;
    fx.accepted(&mut failures, "ext-1 once more", &ext("ext-1"))
        .await;
    fx.accepted(
        &mut failures,
        "the service's own key next to the JWKS",
        &fx.valid(),
    )
    .await;
    failures.assert_none();
}

#[tokio::test]
async fn after_the_refetch_window_an_unknown_kid_refetches_and_a_failing_url_neither_stalls_nor_drops_cached_keys()
 {
    let external = Key::fresh();
    let server = JwksServer::start(&json!({"keys": [external.jwk("ext-1")]}));
    let fx = idp_app(&server).await;
    let mut failures = Failures::default();
    let claims = idp_claims(&fx);
    let ext = |kid: &str| sign_ed(&external, &ed_header(kid), &claims);
    fx.accepted(&mut failures, "ext-1", &ext("ext-1")).await;
    let before = server.hits();
    // From now on the URL hangs for 3 s (under the fetch timeout), then fails.
    let hang = Duration::from_secs(3);
    server.reply_slowly(500, "{\"error\": \"down\"}", hang);
    tokio::time::sleep(JWKS_MIN_REFETCH + Duration::from_secs(1)).await;
    // An unknown kid starts a refetch; while it hangs, the cached key answers.
    let unknown = ext("unknown-1");
    let cached = ext("ext-1");
    let (refused, (answer, took)) = tokio::join!(fx.get(&unknown), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let start = std::time::Instant::now();
        let answer = fx.get(&cached).await;
        (answer, start.elapsed())
    });
    failures.check("unknown kid after the window", fx.same_refusal(&refused));
    failures.check("ext-1 while a refetch hangs", answer.tenant(fx.tenant));
    if took >= hang / 2 {
        failures.0.push(format!(
            "ext-1 waited {took:?} for a JWKS refetch in flight (the URL hangs {hang:?})"
        ));
    }
    assert_eq!(
        server.hits() - before,
        1,
        "an unknown kid after the window must refetch once"
    );
    fx.accepted(&mut failures, "ext-1 after a failed refetch", &ext("ext-1"))
        .await;
    fx.refused(
        &mut failures,
        "unknown kid right after a failed refetch",
        &ext("unknown-2"),
    )
    .await;
    assert_eq!(
        server.hits() - before,
        1,
        "refetched again within the window"
    );
    server.stop().await;
    failures.assert_none();
}

#[tokio::test]
async fn after_the_refetch_window_a_rotated_key_is_picked_up() {
    let first = Key::fresh();
    let second = Key::fresh();
    let server = JwksServer::start(&json!({"keys": [first.jwk("ext-1")]}));
    let fx = idp_app(&server).await;
    let mut failures = Failures::default();
    let claims = idp_claims(&fx);
    fx.accepted(
        &mut failures,
        "ext-1",
        &sign_ed(&first, &ed_header("ext-1"), &claims),
    )
    .await;
    server.reply_with(
        200,
        &json!({"keys": [first.jwk("ext-1"), second.jwk("ext-2")]}).to_string(),
    );
    // Within the window the new key is not known yet…
    let ext2 = sign_ed(&second, &ed_header("ext-2"), &claims);
    fx.refused(&mut failures, "ext-2 within the window", &ext2)
        .await;
    tokio::time::sleep(JWKS_MIN_REFETCH + Duration::from_secs(1)).await;
    // …after it, the unknown kid triggers a refetch that finds it.
    fx.accepted(&mut failures, "ext-2 after the window", &ext2)
        .await;
    fx.accepted(
        &mut failures,
        "ext-1 still published",
        &sign_ed(&first, &ed_header("ext-1"), &claims),
    )
    .await;
    server.stop().await;
    failures.assert_none();
}

/// An app that trusts `IDP` with keys from `server`, refetched every
/// `refresh` (a `max-age` clamped to at most `refresh_max`), keys trusted
/// for `max_stale` without a successful fetch.
async fn scheduled_idp_app(
    server: &JwksServer,
    refresh: Duration,
    refresh_max: Duration,
    max_stale: Duration,
) -> Fixture {
    let mut auth = test_auth_settings();
    auth.jwks_url = Some(server.url.clone());
    auth.trusted_issuers = vec![IDP.to_owned()];
    auth.jwks_refresh = refresh;
    auth.jwks_refresh_max = refresh_max;
    auth.jwks_max_stale = max_stale;
    Fixture::with_auth(auth).await
}

/// Polls `GET /v1/tenant` with `token` until it is refused, for at most
/// `within`; returns how long that took, or `None` if it never was.
async fn refused_within(fx: &Fixture, token: &str, within: Duration) -> Option<Duration> {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        let answer = fx.get(token).await;
        if answer.status == 401 {
            return Some(started.elapsed());
        }
        assert_eq!(answer.status, 200, "{}", answer.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The scheduled refetch, not an unknown kid, finds that a key is gone: its
/// tokens — already verified and remembered — get 401 within the refresh
/// period (plus the fetch), while the key still published keeps verifying.
#[tokio::test]
async fn a_key_removed_at_the_jwks_url_stops_verifying_within_the_refresh_period() {
    let (removed, kept) = (Key::fresh(), Key::fresh());
    let server = JwksServer::start(&json!({"keys": [removed.jwk("ext-1"), kept.jwk("ext-2")]}));
    let refresh = Duration::from_secs(1);
    let fx = scheduled_idp_app(
        &server,
        refresh,
        Duration::from_secs(2),
        Duration::from_secs(3600),
    )
    .await;
    let mut failures = Failures::default();
    let claims = idp_claims(&fx);
    let doomed = sign_ed(&removed, &ed_header("ext-1"), &claims);
    let other = sign_ed(&kept, &ed_header("ext-2"), &claims);
    for round in ["first", "remembered"] {
        fx.accepted(&mut failures, &format!("ext-1, {round}"), &doomed)
            .await;
        fx.accepted(&mut failures, &format!("ext-2, {round}"), &other)
            .await;
    }
    // The background refetch runs without any request asking for it.
    let before = server.hits();
    tokio::time::sleep(refresh * 3).await;
    assert!(
        server.hits() >= before + 2,
        "{} scheduled fetches in {:?} at a period of {refresh:?}",
        server.hits() - before,
        refresh * 3
    );
    server.reply_with(200, &json!({"keys": [kept.jwk("ext-2")]}).to_string());
    let bound = refresh + tenantry_api::auth::keys::JWKS_FETCH_TIMEOUT;
    let took = refused_within(&fx, &doomed, bound + Duration::from_secs(2)).await;
    match took {
        Some(took) => assert!(took <= bound, "refused only after {took:?}"),
        None => failures
            .0
            .push(format!("ext-1 still verifies {bound:?} after its removal")),
    }
    fx.refused(&mut failures, "ext-1 after its removal", &doomed)
        .await;
    fx.accepted(&mut failures, "ext-2, still published", &other)
        .await;
    server.stop().await;
    failures.assert_none();
}

/// A `max-age` longer than the period, within `jwks_refresh_max`, delays
/// the scheduled refetch; a removed key then verifies until it runs out.
#[tokio::test]
async fn a_long_max_age_within_the_bound_delays_the_refetch() {
    let key = Key::fresh();
    let server = JwksServer::start(&json!({"keys": [key.jwk("ext-1")]}));
    server.cache_with(Some("public, max-age=60"), None);
    let fx = scheduled_idp_app(
        &server,
        Duration::from_secs(1),
        Duration::from_secs(300),
        Duration::from_secs(3600),
    )
    .await;
    let mut failures = Failures::default();
    let token = sign_ed(&key, &ed_header("ext-1"), &idp_claims(&fx));
    fx.accepted(&mut failures, "ext-1", &token).await;
    let before = server.hits();
    server.reply_with(200, &json!({"keys": []}).to_string());
    // Without max-age this is three periods (the test above); with it, the
    // keys are fresh for a minute.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server.hits(), before, "refetched within max-age");
    fx.accepted(&mut failures, "ext-1 within max-age", &token)
        .await;
    server.stop().await;
    failures.assert_none();
}

/// A `max-age` past `jwks_refresh_max` is cut to it: a key removed at the
/// URL stops verifying within `jwks_refresh_max`, whatever the URL says.
#[tokio::test]
async fn a_max_age_past_the_bound_is_clamped_to_refresh_max() {
    let key = Key::fresh();
    let server = JwksServer::start(&json!({"keys": [key.jwk("ext-1")]}));
    server.cache_with(Some("max-age=86400"), None);
    let refresh_max = Duration::from_secs(2);
    let fx = scheduled_idp_app(
        &server,
        Duration::from_secs(1),
        refresh_max,
        Duration::from_secs(3600),
    )
    .await;
    let mut failures = Failures::default();
    let token = sign_ed(&key, &ed_header("ext-1"), &idp_claims(&fx));
    fx.accepted(&mut failures, "ext-1", &token).await;
    server.reply_with(200, &json!({"keys": []}).to_string());
    let bound = refresh_max + tenantry_api::auth::keys::JWKS_FETCH_TIMEOUT;
    match refused_within(&fx, &token, bound + Duration::from_secs(2)).await {
        Some(took) => assert!(took <= bound, "refused only after {took:?}"),
        None => failures
            .0
            .push(format!("ext-1 still verifies {bound:?} after its removal")),
    }
    server.stop().await;
    failures.assert_none();
}

/// With an `ETag`, refetches are conditional: a 304 keeps (and confirms)
/// the keys; a new document under a new ETag replaces them.
#[tokio::test]
async fn an_etag_makes_the_refetch_conditional_and_a_304_keeps_the_keys() {
    let key = Key::fresh();
    let server = JwksServer::start(&json!({"keys": [key.jwk("ext-1")]}));
    server.cache_with(None, Some("\"v1\""));
    let fx = scheduled_idp_app(
        &server,
        Duration::from_secs(1),
        Duration::from_secs(2),
        Duration::from_secs(3),
    )
    .await;
    let mut failures = Failures::default();
    let token = sign_ed(&key, &ed_header("ext-1"), &idp_claims(&fx));
    fx.accepted(&mut failures, "ext-1", &token).await;
    // Past jwks_max_stale, on 304s alone: they confirm the keys.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(server.not_modified() >= 2, "{} 304s", server.not_modified());
    fx.accepted(&mut failures, "ext-1 after 304s only", &token)
        .await;
    server.reply_with(200, &json!({"keys": []}).to_string());
    server.cache_with(None, Some("\"v2\""));
    if refused_within(&fx, &token, Duration::from_secs(5))
        .await
        .is_none()
    {
        failures
            .0
            .push("ext-1 still verifies under ETag v2".to_owned());
    }
    server.stop().await;
    failures.assert_none();
}

/// While the URL is down its last keys keep verifying, for at most
/// `jwks_max_stale` after the last fetch that succeeded; then 401.
#[tokio::test]
async fn keys_are_trusted_for_at_most_jwks_max_stale_while_the_url_is_down() {
    let key = Key::fresh();
    let server = JwksServer::start(&json!({"keys": [key.jwk("ext-1")]}));
    let max_stale = Duration::from_secs(3);
    let fx = scheduled_idp_app(
        &server,
        Duration::from_secs(1),
        Duration::from_secs(1),
        max_stale,
    )
    .await;
    let mut failures = Failures::default();
    let token = sign_ed(&key, &ed_header("ext-1"), &idp_claims(&fx));
    fx.accepted(&mut failures, "ext-1", &token).await;
    server.stop().await;
    let down = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fx.accepted(&mut failures, "ext-1 with the URL down", &token)
        .await;
    match refused_within(&fx, &token, max_stale + Duration::from_secs(3)).await {
        Some(_) => {
            let took = down.elapsed();
            // Confirmed at most one period (1 s) before the URL went down.
            assert!(
                took >= max_stale - Duration::from_secs(1)
                    && took <= max_stale + Duration::from_secs(2),
                "refused {took:?} after the URL went down (max stale {max_stale:?})"
            );
        }
        None => failures
            .0
            .push("ext-1 still verifies past jwks_max_stale".to_owned()),
    }
    failures.assert_none();
}

/// A remembered verification ends at the token's `exp` (no leeway here).
#[tokio::test]
async fn a_remembered_token_is_not_served_past_its_exp() {
    let mut auth = test_auth_settings();
    auth.leeway = Duration::ZERO;
    let fx = Fixture::with_auth(auth).await;
    let mut failures = Failures::default();
    let exp = now() + 2;
    let token = fx.sign(&with(&fx.claims(), "exp", exp.into()));
    fx.accepted(&mut failures, "before exp", &token).await;
    fx.accepted(&mut failures, "before exp, remembered", &token)
        .await;
    // jsonwebtoken accepts a token through the second of its exp; the
    // cache forgets it at exp, so from the next second on it is refused.
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fx.refused(&mut failures, "past exp", &token).await;
    failures.assert_none();
}

// --- Configuration ------------------------------------------------------------------------

#[test]
fn a_leeway_over_30_seconds_a_short_hs256_secret_or_an_untrusted_jwks_is_refused_at_startup() {
    let pem = generate_signing_key_pem().unwrap();
    let key = ServiceKey::from_pem(pem.expose_secret()).unwrap();
    let build = |tweak: &dyn Fn(&mut AuthSettings)| {
        let mut auth = test_auth_settings();
        tweak(&mut auth);
        Authenticator::new(&auth, &key)
    };
    assert!(build(&|a| a.leeway = Duration::from_secs(30)).is_ok());
    assert!(build(&|a| a.leeway = Duration::from_secs(31)).is_err());
    assert!(build(&|a| a.leeway = Duration::from_secs(3600)).is_err());
    assert!(build(&|a| a.hs256_secret = Some(SecretString::from(SHARED_SECRET))).is_ok());
    assert!(
        build(&|a| a.hs256_secret = Some(SecretString::from("thirty-one-bytes-is-too-short!!")))
            .is_err()
    );
    assert!(build(&|a| a.hs256_secret = Some(SecretString::from(""))).is_err());
    // A JWKS URL with no trusted issuer could verify nothing: a config error.
    assert!(build(&|a| a.jwks_url = Some("http://127.0.0.1:1/jwks.json".to_owned())).is_err());
    assert!(
        build(&|a| {
            a.jwks_url = Some("http://127.0.0.1:1/jwks.json".to_owned());
            a.trusted_issuers = vec![IDP.to_owned()];
        })
        .is_ok()
    );
    // A refresh schedule that cannot bound a removed key's life.
    assert!(build(&|a| a.jwks_refresh = Duration::ZERO).is_err());
    assert!(build(&|a| a.jwks_refresh_max = a.jwks_refresh / 2).is_err());
    assert!(build(&|a| a.jwks_max_stale = a.jwks_refresh_max).is_err());
    assert!(build(&|a| a.token_cache_ttl = Duration::from_secs(24 * 3600 + 1)).is_err());
    assert!(
        build(&|a| a.token_cache_ttl = Duration::ZERO).is_ok(),
        "0s: off"
    );
}

// --- Keys of every kind (issue #15: token interoperability) --------------------------------

/// A private key an identity provider of these tests signs with, and the
/// JWK it publishes for it (which pins the key's algorithm).
struct Signer {
    kid: String,
    /// The algorithm its JWK pins it to.
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl Signer {
    /// A token the way the identity provider signs it.
    fn sign(&self, claims: &Value) -> String {
        library_token(self.alg, &self.encoding, &self.kid, claims)
    }
}

fn alg_name(alg: Algorithm) -> Value {
    serde_json::to_value(alg).unwrap()
}

/// A real RSA key: generated here, as an identity provider would.
fn rsa_private(bits: usize) -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).unwrap()
}

/// The committed 2048-bit test key ([`RSA_PEM`]): generating one takes
/// tens of seconds in a debug build, so only the tests about key kinds do.
fn rsa_fixed() -> rsa::RsaPrivateKey {
    use rsa::pkcs8::DecodePrivateKey as _;
    rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PEM).unwrap()
}

/// `private` published under `kid`, with `alg` (or, `None`, without one).
fn rsa_signer(private: &rsa::RsaPrivateKey, kid: &str, alg: Option<Algorithm>) -> Signer {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::traits::PublicKeyParts as _;
    let der = private.to_pkcs1_der().unwrap();
    let mut jwk = json!({
        "kty": "RSA",
        "n": b64(private.n().to_bytes_be()),
        "e": b64(private.e().to_bytes_be()),
        "kid": kid,
        "use": "sig",
    });
    if let Some(alg) = alg {
        jwk["alg"] = alg_name(alg);
    }
    Signer {
        kid: kid.to_owned(),
        alg: alg.unwrap_or(Algorithm::RS256),
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk,
    }
}

/// The RSA public key as SPKI and PKCS#1 PEM: HS256-confusion secrets.
fn rsa_public_pems(private: &rsa::RsaPrivateKey) -> [String; 2] {
    use rsa::pkcs1::EncodeRsaPublicKey as _;
    use rsa::pkcs8::EncodePublicKey as _;
    let public = private.to_public_key();
    [
        public.to_public_key_pem(LineEnding::LF).unwrap(),
        public.to_pkcs1_pem(LineEnding::LF).unwrap(),
    ]
}

/// A fresh P-256 key as an ES256 signer, and its raw key (for tokens no
/// library would sign). `stated`: the JWK says its `alg`.
fn p256_signer(kid: &str, stated: bool) -> (Signer, p256::ecdsa::SigningKey) {
    use p256::pkcs8::EncodePrivateKey as _;
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let mut jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid,
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
    });
    if stated {
        jwk["alg"] = "ES256".into();
    }
    let der = key.to_pkcs8_der().unwrap();
    let signer = Signer {
        kid: kid.to_owned(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk,
    };
    (signer, key)
}

/// A fresh P-384 key as an ES384 signer.
fn p384_signer(kid: &str, stated: bool) -> Signer {
    use p384::pkcs8::EncodePrivateKey as _;
    let key = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let mut jwk = json!({
        "kty": "EC", "crv": "P-384", "kid": kid,
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
    });
    if stated {
        jwk["alg"] = "ES384".into();
    }
    let der = key.to_pkcs8_der().unwrap();
    Signer {
        kid: kid.to_owned(),
        alg: Algorithm::ES384,
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk,
    }
}

/// A fresh Ed25519 key as an EdDSA signer.
fn ed_signer(kid: &str) -> Signer {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let key = Key::fresh();
    let der = key.signing.to_pkcs8_der().unwrap();
    Signer {
        kid: kid.to_owned(),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
        jwk: key.jwk(kid),
    }
}

fn jwks_of(signers: &[&Signer]) -> Value {
    json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()})
}

/// `doc` as a JWKS file for the identity provider `IDP`; the file is
/// removed once the app has read it.
async fn idp_file_app(doc: &Value, tweak: impl FnOnce(&mut AuthSettings)) -> Fixture {
    let path = std::env::temp_dir().join(format!("tenantry-jwks-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, doc.to_string()).unwrap();
    let mut auth = test_auth_settings();
    auth.jwks_file = Some(path.clone());
    auth.trusted_issuers = vec![IDP.to_owned()];
    tweak(&mut auth);
    let fx = Fixture::with_auth(auth).await;
    std::fs::remove_file(&path).unwrap();
    fx
}

/// The same, with the keys served at a JWKS URL.
async fn idp_url_app(server: &JwksServer, tweak: impl FnOnce(&mut AuthSettings)) -> Fixture {
    let mut auth = test_auth_settings();
    auth.jwks_url = Some(server.url.clone());
    auth.trusted_issuers = vec![IDP.to_owned()];
    tweak(&mut auth);
    Fixture::with_auth(auth).await
}

/// A token with this exact header, signed (ECDSA P-256 with SHA-256,
/// whatever the header says) by `key`.
fn sign_p256_raw(key: &p256::ecdsa::SigningKey, header: &Value, claims: &Value) -> String {
    use p256::ecdsa::signature::Signer as _;
    let input = format!("{}.{}", segment(header), segment(claims));
    let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(signature.to_bytes()))
}

#[tokio::test]
async fn every_kind_of_jwks_key_verifies_from_a_file_and_a_url_only_under_the_algorithm_its_jwk_pins()
 {
    let rsa = rsa_private(2048);
    let (es256, p256_raw) = p256_signer("es256", true);
    let signers = [
        rsa_signer(&rsa, "rs256", Some(Algorithm::RS256)),
        rsa_signer(&rsa, "rs384", Some(Algorithm::RS384)),
        rsa_signer(&rsa, "rs512", Some(Algorithm::RS512)),
        rsa_signer(&rsa, "ps256", Some(Algorithm::PS256)),
        rsa_signer(&rsa, "ps384", Some(Algorithm::PS384)),
        rsa_signer(&rsa, "ps512", Some(Algorithm::PS512)),
        // No alg: RS256 only.
        rsa_signer(&rsa, "rsa-no-alg", None),
        es256,
        // No alg: from the curve.
        p256_signer("es256-no-alg", false).0,
        p384_signer("es384", true),
        p384_signer("es384-no-alg", false),
        ed_signer("eddsa"),
    ];
    let doc = jwks_of(&signers.iter().collect::<Vec<_>>());
    let server = JwksServer::start(&doc);
    let from_file = idp_file_app(&doc, |_| {}).await;
    let from_url = idp_url_app(&server, |_| {}).await;
    let pems = rsa_public_pems(&rsa);
    for (source, fx) in [("file", &from_file), ("url", &from_url)] {
        let mut failures = Failures::default();
        let claims = idp_claims(fx);
        for signer in &signers {
            let case = format!("{source}: {:?}, kid {}", signer.alg, signer.kid);
            fx.accepted(&mut failures, &case, &signer.sign(&claims))
                .await;
            // Under its kid, a token of any other algorithm is refused:
            // signed by this very key under another RSA algorithm, or by
            // a key of another kind that names this kid.
            for other in signers.iter().filter(|o| o.alg != signer.alg) {
                let token = library_token(other.alg, &other.encoding, &signer.kid, &claims);
                let case = format!("{case}: a {:?} token (key {})", other.alg, other.kid);
                fx.refused(&mut failures, &case, &token).await;
            }
            // HS256 with the public key, in any form, as the secret.
            let mut secrets = vec![signer.jwk.to_string()];
            if signer.jwk["kty"] == "RSA" {
                secrets.extend(pems.iter().cloned());
            }
            for secret in secrets {
                let token = hmac(
                    Algorithm::HS256,
                    secret.as_bytes(),
                    Some(&signer.kid),
                    &claims,
                );
                let case = format!("{case}: HS256 with the public key as secret");
                fx.refused(&mut failures, &case, &token).await;
            }
        }
        // ES256 signatures labelled ES384 (kid of either curve), and a
        // header without kid.
        for (what, header) in [
            (
                "ES384 label, kid es256",
                json!({"alg": "ES384", "kid": "es256"}),
            ),
            (
                "ES384 label, kid es384",
                json!({"alg": "ES384", "kid": "es384"}),
            ),
            ("ES256, no kid", json!({"alg": "ES256"})),
            (
                "RS256 label, kid es256",
                json!({"alg": "RS256", "kid": "es256"}),
            ),
        ] {
            let token = sign_p256_raw(&p256_raw, &header, &claims);
            fx.refused(&mut failures, &format!("{source}: {what}"), &token)
                .await;
        }
        // The honest raw ES256 token is the baseline of those.
        let token = sign_p256_raw(&p256_raw, &json!({"alg": "ES256", "kid": "es256"}), &claims);
        fx.accepted(&mut failures, &format!("{source}: raw ES256"), &token)
            .await;
        // Wrong audience, whatever the key.
        for signer in &signers {
            let token = signer.sign(&with(&claims, "aud", "https://elsewhere.test".into()));
            let case = format!("{source}: kid {}, wrong aud", signer.kid);
            fx.refused(&mut failures, &case, &token).await;
        }
        failures.assert_none();
    }
    server.stop().await;
}

#[tokio::test]
async fn a_weak_rsa_key_fails_the_load_of_a_jwks_file_and_is_skipped_from_a_url() {
    let weak = rsa_signer(&rsa_private(1024), "weak-1024", Some(Algorithm::RS256));
    let strong = ed_signer("strong");
    let doc = jwks_of(&[&weak, &strong]);
    // A file: the service does not start, and says why.
    let path = std::env::temp_dir().join(format!("tenantry-jwks-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, doc.to_string()).unwrap();
    let pem = generate_signing_key_pem().unwrap();
    let key = ServiceKey::from_pem(pem.expose_secret()).unwrap();
    let mut auth = test_auth_settings();
    auth.jwks_file = Some(path.clone());
    auth.trusted_issuers = vec![IDP.to_owned()];
    let error = Authenticator::new(&auth, &key).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    for part in ["auth.jwks_file", "weak-1024", "1024 bits", "at least 2048"] {
        assert!(error.contains(part), "the error names {part:?}: {error}");
    }
    // A URL: that key is refused, the others keep verifying.
    let server = JwksServer::start(&doc);
    let fx = idp_url_app(&server, |_| {}).await;
    let claims = idp_claims(&fx);
    let mut failures = Failures::default();
    fx.accepted(&mut failures, "EdDSA beside it", &strong.sign(&claims))
        .await;
    fx.refused(
        &mut failures,
        "RS256 by the 1024-bit key",
        &weak.sign(&claims),
    )
    .await;
    failures.assert_none();
    server.stop().await;
}

// --- Audiences ----------------------------------------------------------------------------

#[tokio::test]
async fn any_configured_audience_is_accepted_as_a_string_or_in_an_array() {
    let rsa = rsa_signer(&rsa_fixed(), "rs", None);
    let doc = jwks_of(&[&rsa]);
    let fx = idp_file_app(&doc, |a| {
        a.audiences = vec!["https://api.example.com".into(), "api://default".into()];
    })
    .await;
    let mut failures = Failures::default();
    let own = fx.claims();
    let idp = idp_claims(&fx);
    let accepted: [(&str, Value); 5] = [
        ("the service's own audience", json!(TEST_AUDIENCE)),
        ("a configured one", json!("https://api.example.com")),
        ("another configured one", json!("api://default")),
        (
            "an array with one of them",
            json!(["https://idp.test/userinfo", "api://default"]),
        ),
        ("an array with the own one", json!([TEST_AUDIENCE])),
    ];
    for (what, aud) in &accepted {
        let case = format!("service key, {what}");
        fx.accepted(
            &mut failures,
            &case,
            &fx.sign(&with(&own, "aud", aud.clone())),
        )
        .await;
        let case = format!("RSA JWKS key, {what}");
        fx.accepted(
            &mut failures,
            &case,
            &rsa.sign(&with(&idp, "aud", aud.clone())),
        )
        .await;
    }
    let refused: [(&str, Value); 6] = [
        ("another audience", json!("https://api.example.org")),
        ("a prefix of one", json!("api://")),
        ("different case", json!("API://DEFAULT")),
        (
            "an array of others",
            json!(["https://idp.test/userinfo", "account"]),
        ),
        ("an empty array", json!([])),
        ("a number", json!(7)),
    ];
    for (what, aud) in &refused {
        let case = format!("service key, {what}");
        fx.refused(
            &mut failures,
            &case,
            &fx.sign(&with(&own, "aud", aud.clone())),
        )
        .await;
        let case = format!("RSA JWKS key, {what}");
        fx.refused(
            &mut failures,
            &case,
            &rsa.sign(&with(&idp, "aud", aud.clone())),
        )
        .await;
    }
    fx.refused(&mut failures, "no aud", &rsa.sign(&without(&idp, "aud")))
        .await;
    failures.assert_none();
}

// --- Claims by configured name: Auth0, Okta and Keycloak shapes ---------------------------

/// The principal an [`Authenticator`] with `auth` makes of `token`: what
/// the server does with the same settings, shown field by field.
async fn principal_of(auth: &AuthSettings, token: &str) -> tenantry_api::auth::Principal {
    let pem = auth.signing_key.as_ref().unwrap();
    let key = ServiceKey::from_pem(pem.expose_secret()).unwrap();
    Authenticator::new(auth, &key)
        .unwrap()
        .verify(token)
        .await
        .unwrap_or_else(|e| panic!("refused: {e}"))
}

/// One identity provider's token shape against an app configured for it.
struct Style {
    name: &'static str,
    fx: Fixture,
    signer: Signer,
    /// Claims the provider would issue for the fixture's tenant, account
    /// `account`, with role(s) naming admin.
    claims: Value,
    account: tenantry_core::AccountId,
}

impl Style {
    async fn accepted(&self, failures: &mut Failures, case: &str, claims: &Value) {
        let case = format!("{}: {case}", self.name);
        self.fx
            .accepted(failures, &case, &self.signer.sign(claims))
            .await;
    }

    async fn refused(&self, failures: &mut Failures, case: &str, claims: &Value) {
        let case = format!("{}: {case}", self.name);
        self.fx
            .refused(failures, &case, &self.signer.sign(claims))
            .await;
    }

    /// `GET /v1/tenant` answers 403: the token names no tenant.
    async fn no_tenant(&self, failures: &mut Failures, case: &str, claims: &Value) {
        let case = format!("{}: {case}", self.name);
        let answer = self.fx.get(&self.signer.sign(claims)).await;
        failures.check(&case, answer.forbidden());
    }
}

fn base_claims(iss: &str, sub: &str, aud: Value) -> Value {
    let now = now();
    json!({"iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + 300})
}

const AUTH0: &str = "https://example.eu.auth0.com/";
const OKTA: &str = "https://example.okta.com/oauth2/default";
const KEYCLOAK: &str = "https://sso.example.com/realms/tenantry";

/// An app trusting `iss` with `signer` (from a JWKS URL), with these claim
/// names and one more accepted audience.
async fn style_app(
    server: &JwksServer,
    iss: &str,
    audience: &str,
    names: [&str; 3],
) -> (Fixture, AuthSettings) {
    let mut auth = test_auth_settings();
    auth.jwks_url = Some(server.url.clone());
    auth.trusted_issuers = vec![iss.to_owned()];
    auth.audiences = vec![audience.to_owned()];
    auth.tenant_claim = names[0].to_owned();
    auth.account_claim = names[1].to_owned();
    auth.role_claim = names[2].to_owned();
    let fx = Fixture::on(TestApp::builder().auth(auth.clone()).spawn().await).await;
    (fx, auth)
}

#[tokio::test]
async fn auth0_okta_and_keycloak_shaped_tokens_are_read_by_the_configured_claim_names() {
    // The fixture's tenant is in the default account: the gate compares.
    let account = tenantry_db::queries::accounts::DEFAULT_ACCOUNT;
    let rsa = rsa_fixed();
    // Auth0: RS256, flat namespaced claims (URLs, dots and all), `scope`.
    let auth0_key = rsa_signer(&rsa, "auth0-key", Some(Algorithm::RS256));
    // Okta: RS256, flat custom claims, scopes in `scp`, roles as `groups`.
    let okta_key = rsa_signer(&rsa, "okta-key", None);
    // Keycloak: ES256 here (a realm may use either), nested claims.
    let keycloak_key = p256_signer("keycloak-key", true).0;
    let server = JwksServer::start(&jwks_of(&[&auth0_key, &okta_key, &keycloak_key]));

    let (fx, auth0_auth) = style_app(
        &server,
        AUTH0,
        "https://api.example.com",
        [
            "https://example.com/tenant_id",
            "https://example.com/account_id",
            "https://example.com/role",
        ],
    )
    .await;
    let tenant = fx.tenant.to_string();
    let claims = edited(
        &base_claims(
            AUTH0,
            "auth0|5f7c8ec7c33c6c004bbafe82",
            json!([
                "https://api.example.com",
                "https://example.eu.auth0.com/userinfo"
            ]),
        ),
        |c| {
            c.insert("azp".into(), "K5bNmMqvW8ok1yHb3gT5".into());
            c.insert(
                "scope".into(),
                "openid profile tenant:read tenant:write".into(),
            );
            c.insert(
                "https://example.com/tenant_id".into(),
                tenant.clone().into(),
            );
            c.insert(
                "https://example.com/account_id".into(),
                account.to_string().into(),
            );
            c.insert("https://example.com/role".into(), "admin".into());
        },
    );
    let auth0 = Style {
        name: "Auth0",
        fx,
        signer: auth0_key,
        claims,
        account,
    };

    let (fx, okta_auth) = style_app(
        &server,
        OKTA,
        "api://default",
        ["tenantId", "accountId", "groups"],
    )
    .await;
    let tenant = fx.tenant.to_string();
    let claims = edited(
        &base_claims(OKTA, "00u1a2b3c4d5e6f7g8h9", json!("api://default")),
        |c| {
            c.insert("ver".into(), 1.into());
            c.insert("cid".into(), "0oa1b2c3d4e5f6g7h8i9".into());
            c.insert("uid".into(), "00u1a2b3c4d5e6f7g8h9".into());
            c.insert(
                "scp".into(),
                json!(["openid", "tenant:read", "tenant:write"]),
            );
            c.insert("tenantId".into(), tenant.clone().into());
            c.insert("accountId".into(), account.to_string().into());
            c.insert("groups".into(), json!(["Everyone", "member", "admin"]));
        },
    );
    let okta = Style {
        name: "Okta",
        fx,
        signer: okta_key,
        claims,
        account,
    };

    let (fx, keycloak_auth) = style_app(
        &server,
        KEYCLOAK,
        "tenantry-api",
        ["tenant.id", "tenant.account.id", "realm_access.roles"],
    )
    .await;
    let tenant = fx.tenant.to_string();
    let claims = edited(
        &base_claims(
            KEYCLOAK,
            "f1b2c3d4-0000-4000-8000-000000000001",
            json!(["tenantry-api", "account"]),
        ),
        |c| {
            c.insert("typ".into(), "Bearer".into());
            c.insert("azp".into(), "tenantry-web".into());
            c.insert(
                "scope".into(),
                "openid email tenant:read tenant:write".into(),
            );
            c.insert(
                "tenant".into(),
                json!({"id": tenant, "account": {"id": account.to_string()}}),
            );
            c.insert(
                "realm_access".into(),
                json!({"roles": ["offline_access", "uma_authorization", "default-roles-tenantry", "admin", "viewer"]}),
            );
            c.insert(
                "resource_access".into(),
                json!({"account": {"roles": ["manage-account"]}}),
            );
        },
    );
    let keycloak = Style {
        name: "Keycloak",
        fx,
        signer: keycloak_key,
        claims,
        account,
    };

    let mut failures = Failures::default();
    for (style, auth) in [
        (&auth0, &auth0_auth),
        (&okta, &okta_auth),
        (&keycloak, &keycloak_auth),
    ] {
        // Through the server: the tenant comes from the configured claim.
        style
            .accepted(&mut failures, "as issued", &style.claims)
            .await;
        // The principal: account and role from their configured claims.
        let principal = principal_of(auth, &style.signer.sign(&style.claims)).await;
        failures.check(
            &format!("{}: principal", style.name),
            (principal.tenant == Some(style.fx.tenant)
                && principal.account == Some(style.account)
                && principal.role == Some(tenantry_core::Role::Admin)
                && principal.scopes.contains(Scope::TenantWrite))
            .then_some(())
            .ok_or_else(|| format!("{principal:?}")),
        );
    }

    // What each shape refuses, and what the default names no longer mean.
    let tenant = auth0.fx.tenant.to_string();
    let auth0_set = |name: &str, value: Value| with(&auth0.claims, name, value);
    auth0
        .refused(
            &mut failures,
            "the tenant claim is an array",
            &auth0_set("https://example.com/tenant_id", json!([tenant.clone()])),
        )
        .await;
    auth0
        .refused(
            &mut failures,
            "a role that is not a role",
            &auth0_set("https://example.com/role", "editor".into()),
        )
        .await;
    auth0
        .refused(
            &mut failures,
            "an account that is not an id",
            &auth0_set("https://example.com/account_id", "acme".into()),
        )
        .await;
    auth0
        .no_tenant(
            &mut failures,
            "the tenant only under the default name",
            &with(
                &without(&auth0.claims, "https://example.com/tenant_id"),
                "tenant_id",
                tenant.clone().into(),
            ),
        )
        .await;
    auth0
        .accepted(
            &mut failures,
            "no role and no account",
            &without(
                &without(&auth0.claims, "https://example.com/role"),
                "https://example.com/account_id",
            ),
        )
        .await;
    okta.refused(
        &mut failures,
        "groups with a non-string",
        &with(&okta.claims, "groups", json!(["admin", 7])),
    )
    .await;
    okta.refused(
        &mut failures,
        "scp of the wrong type",
        &with(&okta.claims, "scp", json!({"tenant:read": true})),
    )
    .await;
    okta.accepted(
        &mut failures,
        "groups naming no role",
        &with(&okta.claims, "groups", json!(["Everyone"])),
    )
    .await;
    let principal = principal_of(
        &okta_auth,
        &okta
            .signer
            .sign(&with(&okta.claims, "groups", json!(["Everyone"]))),
    )
    .await;
    failures.check(
        "Okta: groups naming no role claim no role",
        (principal.role.is_none())
            .then_some(())
            .ok_or_else(|| format!("{principal:?}")),
    );

    let keycloak_tenant = keycloak.fx.tenant.to_string();
    keycloak
        .refused(
            &mut failures,
            "tenant.id an array",
            &with(
                &keycloak.claims,
                "tenant",
                json!({"id": [keycloak_tenant.clone()]}),
            ),
        )
        .await;
    keycloak
        .refused(
            &mut failures,
            "tenant a string where the path needs an object",
            &with(&keycloak.claims, "tenant", json!(keycloak_tenant.clone())),
        )
        .await;
    keycloak
        .accepted(
            &mut failures,
            "the flat key tenant.id (a mapper with an escaped dot)",
            &with(
                &without(&keycloak.claims, "tenant"),
                "tenant.id",
                keycloak_tenant.clone().into(),
            ),
        )
        .await;
    keycloak
        .no_tenant(
            &mut failures,
            "no tenant object",
            &without(&keycloak.claims, "tenant"),
        )
        .await;
    keycloak
        .refused(
            &mut failures,
            "realm_access.roles not an array of strings",
            &with(
                &keycloak.claims,
                "realm_access",
                json!({"roles": [{"name": "admin"}]}),
            ),
        )
        .await;
    // Another tenant's provider cannot pass for this one: its tokens carry
    // their own iss, which this app does not trust.
    keycloak
        .refused(
            &mut failures,
            "Auth0's iss on the Keycloak app",
            &with(&keycloak.claims, "iss", AUTH0.into()),
        )
        .await;
    failures.assert_none();
    server.stop().await;
}

#[tokio::test]
async fn the_service_writes_account_and_role_under_the_configured_claim_names() {
    let mut auth = test_auth_settings();
    auth.tenant_claim = "https://example.com/tenant_id".into();
    auth.account_claim = "https://example.com/account_id".into();
    auth.role_claim = "realm_access.roles".into();
    let fx = Fixture::on(TestApp::builder().auth(auth.clone()).spawn().await).await;
    // The fixture's tenant is in the default account: the gate compares.
    let account = tenantry_db::queries::accounts::DEFAULT_ACCOUNT;
    let tenant = fx.tenant.to_string();
    let pem = auth
        .signing_key
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let (ok, stdout, stderr) = tenantry_tests::run_tenantry_with(
        &fx.app.test_db,
        &[
            "token",
            "--tenant",
            &tenant,
            "--account",
            &account.to_string(),
            "--role",
            "viewer",
            "--scope",
            "tenant:read",
        ],
        &[
            ("TENANTRY__AUTH__SIGNING_KEY", &pem),
            ("TENANTRY__AUTH__ISSUER", TEST_ISSUER),
            ("TENANTRY__AUTH__AUDIENCE", TEST_AUDIENCE),
            (
                "TENANTRY__AUTH__TENANT_CLAIM",
                "https://example.com/tenant_id",
            ),
            (
                "TENANTRY__AUTH__ACCOUNT_CLAIM",
                "https://example.com/account_id",
            ),
            ("TENANTRY__AUTH__ROLE_CLAIM", "realm_access.roles"),
        ],
    );
    assert!(ok, "tenantry token failed: {stderr}");
    let token = stdout.trim();
    let (_, payload, _) = parts(token);
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(
        payload["https://example.com/tenant_id"], tenant,
        "{payload}"
    );
    assert_eq!(
        payload["https://example.com/account_id"],
        account.to_string(),
        "{payload}"
    );
    assert_eq!(
        payload["realm_access.roles"], "viewer",
        "written as that exact key: {payload}"
    );
    assert!(
        payload.get("account_id").is_none() && payload.get("role").is_none(),
        "{payload}"
    );
    let mut failures = Failures::default();
    fx.accepted(&mut failures, "the CLI's token", token).await;
    failures.assert_none();
    let principal = principal_of(&auth, token).await;
    assert_eq!(principal.account, Some(account));
    assert_eq!(principal.role, Some(tenantry_core::Role::Viewer));
    // `--role` takes role names only.
    let (ok, _, stderr) = tenantry_tests::run_tenantry_with(
        &fx.app.test_db,
        &["token", "--tenant", &tenant, "--role", "editor"],
        &[("TENANTRY__AUTH__SIGNING_KEY", &pem)],
    );
    assert!(!ok && stderr.contains("editor"), "{stderr}");
}

#[test]
fn empty_claim_names_or_audiences_are_refused_at_startup() {
    let pem = generate_signing_key_pem().unwrap();
    let key = ServiceKey::from_pem(pem.expose_secret()).unwrap();
    let build = |tweak: &dyn Fn(&mut AuthSettings)| {
        let mut auth = test_auth_settings();
        tweak(&mut auth);
        Authenticator::new(&auth, &key)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        build(&|a| a.audiences = vec!["api://default".into()]),
        Ok(())
    );
    assert!(build(&|a| a.audiences = vec![String::new()]).is_err());
    for (name, tweak) in [
        (
            "tenant_claim",
            (|a: &mut AuthSettings| a.tenant_claim = String::new()) as fn(&mut AuthSettings),
        ),
        ("account_claim", |a| a.account_claim = " ".into()),
        ("role_claim", |a| a.role_claim = String::new()),
    ] {
        let error = build(&tweak).unwrap_err();
        assert!(error.contains(name), "{error}");
    }
    // A claim with a meaning of its own, or one claim for two settings.
    for (what, tweak) in [
        (
            "a tenant claim named sub",
            (|a: &mut AuthSettings| a.tenant_claim = "sub".into()) as fn(&mut AuthSettings),
        ),
        ("a role claim named scope", |a| {
            a.role_claim = "scope".into()
        }),
        ("an account claim named api_key_id", |a| {
            a.account_claim = "api_key_id".into()
        }),
        ("role and account in one claim", |a| {
            a.account_claim = "https://example.com/claims".into();
            a.role_claim = "https://example.com/claims".into();
        }),
        ("tenant and role in one claim", |a| {
            a.role_claim = "tenant_id".into()
        }),
    ] {
        assert!(build(&tweak).is_err(), "{what} is refused");
    }
    assert_eq!(
        build(&|a| {
            a.tenant_claim = "tenant.id".into();
            a.account_claim = "tenant.account.id".into();
            a.role_claim = "realm_access.roles".into();
        }),
        Ok(())
    );
}
