//! The authenticated principal as typed extractors. A tenant-plane handler
//! takes a `TenantPrincipal` and reaches the database only through
//! [`TenantPrincipal::read`] / [`TenantPrincipal::write`] (or their `_as`
//! forms), which run the tenant gate first, inside the same transaction.
//!
//! Two kinds of caller reach the tenant plane:
//! - a machine credential (a service-issued or API-key token): it carries
//!   tenant-plane scopes and names its tenant; its scopes are what it may
//!   do, checked before any database work;
//! - a member (a person's token from the identity provider): it carries no
//!   tenant-plane scope; its tenant is the one it names or, naming none,
//!   the one the request addresses (`resolve`). The gate finds the
//!   person's members row in the tenant's own transaction — none: refused
//!   exactly as a tenant that does not exist — and its role's scopes,
//!   lowered by the token's `role` claim, are checked there.

use std::sync::Arc;
use tenantry_db::Conn;

use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, HOST};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use tenantry_core::{AccountId, ApiKeyId, Role, Scope, Scopes, TenantId, TenantStatus};
use tenantry_db::{ScopedBoxFuture, ScopedFutureExt, queries};
use tenantry_ops::Authority;
use tracing_actix_web::RootSpan;

use super::Principal;
use super::resolve::{self, no_such_tenant};
use crate::ratelimit::{Rate, RateLimits};
use crate::{ApiError, AppState};

/// A verified token that names a tenant.
#[derive(Debug, Clone)]
pub struct TenantPrincipal {
    pub tenant_id: TenantId,
    pub sub: String,
    /// The account the token is confined to, if it names one.
    pub account: Option<AccountId>,
    /// The role the token claims, if any.
    pub role: Option<Role>,
    pub scopes: Scopes,
    /// The API key this token was exchanged for: the gate refuses the token
    /// as soon as the key is revoked.
    pub api_key: Option<ApiKeyId>,
    /// Slugs the request addressed (`/t/{slug}/…`, `{slug}.{base_domain}`).
    addressed: Vec<String>,
    /// Verified custom domains (some tenant's) the request addressed: the
    /// gate requires each to be this tenant's.
    custom_hosts: Vec<String>,
    caller: Caller,
}

/// How a tenant-plane caller is authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// Its token's tenant-plane scopes.
    Machine,
    /// Its members row in the tenant (read by the gate).
    Member,
}

fn is_tenant_scope(scope: Scope) -> bool {
    matches!(
        scope,
        Scope::TenantRead | Scope::TenantWrite | Scope::TenantAdmin
    )
}

/// A tenant-plane unit of work that is told what its caller may do.
pub trait Work<'a, R>:
    for<'r> FnOnce(&'r mut Conn<'r>, Authority) -> ScopedBoxFuture<'a, 'r, Result<R, ApiError>>
    + Send
    + 'a
{
}

impl<'a, R, F> Work<'a, R> for F where
    F: for<'r> FnOnce(&'r mut Conn<'r>, Authority) -> ScopedBoxFuture<'a, 'r, Result<R, ApiError>>
        + Send
        + 'a
{
}

/// A verified platform-admin token (scope `platform:admin`, no tenant).
#[derive(Debug, Clone)]
pub struct PlatformAdmin {
    pub sub: String,
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthorized)?
        .to_str()
        .map_err(|_| ApiError::Unauthorized)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    Ok(token.to_owned())
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("AppState is not registered"))
}

async fn verify(state: &AppState, token: Result<String, ApiError>) -> Result<Principal, ApiError> {
    let token = token?;
    state.auth.verify(&token).await.map_err(|reason| {
        tracing::debug!(%reason, "token refused");
        ApiError::Unauthorized
    })
}

/// The slugs this request addresses, from the path and the host.
///
/// Every name the request gives for its host counts: the request target's
/// authority (absolute form, RFC 9112 §3.2.2) and the `Host` header, each
/// normalised (`crate::host`) before it is matched against
/// `{slug}.{base_domain}`. A host that cannot be normalised, more than one
/// label deep under the base domain, or more than one `Host` header, might
/// stand for any tenant: it addresses the empty slug, which no tenant has,
/// so the gate refuses it (`tenant_mismatch`) instead of letting it through
/// unchecked.
fn addressed_slugs(req: &HttpRequest, state: &AppState) -> Vec<String> {
    let mut slugs = Vec::new();
    if let Some(slug) = req.match_info().get("tenant_slug") {
        slugs.push(slug.to_owned());
    }
    if let Some(base) = state.addressing.base_domain.as_deref() {
        let mut names: Vec<Result<&[u8], crate::host::HostError>> = Vec::new();
        if let Some(authority) = req.uri().authority() {
            names.push(Ok(authority.as_str().as_bytes()));
        }
        let mut hosts = req.headers().get_all(HOST);
        match (hosts.next(), hosts.next()) {
            (Some(host), None) => names.push(Ok(host.as_bytes())),
            (Some(_), Some(_)) => names.push(Err(crate::host::HostError::Repeated)),
            (None, _) => {}
        }
        for name in names {
            match name.and_then(|raw| crate::host::addressed_label(raw, base)) {
                Ok(Some(slug)) => slugs.push(slug),
                Ok(None) => {}
                Err(reason) => {
                    tracing::debug!(%reason, "unreadable host: addressing no tenant");
                    slugs.push(String::new());
                }
            }
        }
    }
    slugs
}

/// The names the request gives for its host (authority, one `Host`
/// header) that could be custom domains (`AppState::custom_host`).
fn custom_host_names(req: &HttpRequest, state: &AppState) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(authority) = req.uri().authority() {
        names.extend(state.custom_host(authority.as_str().as_bytes()));
    }
    let mut hosts = req.headers().get_all(HOST);
    if let (Some(host), None) = (hosts.next(), hosts.next()) {
        names.extend(state.custom_host(host.as_bytes()));
    }
    names.dedup();
    names
}

impl FromRequest for TenantPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state(req);
        let token = bearer(req);
        let span = req.extensions().get::<RootSpan>().cloned();
        let request = req.clone();
        let addressed = state
            .as_ref()
            .map(|s| addressed_slugs(req, s))
            .unwrap_or_default();
        let names = state
            .as_ref()
            .map(|s| custom_host_names(req, s))
            .unwrap_or_default();
        Box::pin(async move {
            let state = state?;
            let principal = verify(&state, token).await?;
            // Looked up only for a verified token: an anonymous caller
            // cannot make the service query hosts.
            let mut custom_hosts = Vec::new();
            for name in names {
                if state.tenant_for_host(&name).await?.is_some() {
                    custom_hosts.push(name);
                }
            }
            let caller =
                if principal.api_key.is_some() || principal.scopes.iter().any(is_tenant_scope) {
                    Caller::Machine
                } else {
                    Caller::Member
                };
            let tenant_id = match (caller, principal.tenant) {
                (Caller::Machine, Some(tenant)) => tenant,
                (Caller::Machine, None) => {
                    return Err(ApiError::forbidden(
                        "this token names no tenant: platform tokens cannot use the tenant plane",
                    ));
                }
                (Caller::Member, _) if principal.scopes.contains(Scope::PlatformAdmin) => {
                    return Err(ApiError::forbidden(
                        "platform tokens cannot use the tenant plane",
                    ));
                }
                (Caller::Member, Some(tenant)) => tenant,
                (Caller::Member, None) => {
                    resolve::addressed_tenant(&state, &custom_hosts, &addressed).await?
                }
            };
            if let Some(span) = span {
                span.record("tenant_id", tracing::field::display(tenant_id));
                // Its OpenTelemetry name, for traces ([traces] enabled).
                if crate::telemetry::traces() {
                    tracing_opentelemetry::OpenTelemetrySpanExt::set_attribute(
                        &*span,
                        "tenant.id",
                        tenant_id.to_string(),
                    );
                }
            }
            request.extensions_mut().insert(tenant_id);
            state.metrics.tenants().rank(tenant_id);
            Ok(Self {
                tenant_id,
                sub: principal.sub,
                account: principal.account,
                role: principal.role,
                scopes: principal.scopes,
                api_key: principal.api_key,
                addressed,
                caller,
                custom_hosts,
            })
        })
    }
}

impl FromRequest for PlatformAdmin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state(req);
        let token = bearer(req);
        Box::pin(async move {
            let state = state?;
            let principal = verify(&state, token).await?;
            if principal.tenant.is_some() {
                return Err(ApiError::forbidden(
                    "tenant tokens cannot use the admin plane",
                ));
            }
            if !principal.scopes.contains(Scope::PlatformAdmin) {
                return Err(ApiError::forbidden("requires scope platform:admin"));
            }
            Ok(Self { sub: principal.sub })
        })
    }
}

impl PlatformAdmin {
    /// Who the audit log names for this admin's actions.
    #[must_use]
    pub fn actor(&self) -> tenantry_ops::Actor {
        tenantry_ops::Actor::subject(self.sub.clone())
    }
}

impl TenantPrincipal {
    /// The tenant this caller acts in and who it is, for operations.
    #[must_use]
    pub fn actor(&self) -> tenantry_ops::TenantActor {
        tenantry_ops::TenantActor {
            tenant: self.tenant_id,
            actor: tenantry_ops::Actor::subject(self.sub.clone()),
        }
    }

    /// A read-only unit of work (scope `tenant:read`).
    pub async fn read<'a, R, F>(&self, state: &AppState, work: F) -> Result<R, ApiError>
    where
        F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<R, ApiError>>
            + Send
            + 'a,
        R: Send + 'a,
    {
        self.read_as(state, Scope::TenantRead, move |conn, _| work(conn))
            .await
    }

    /// A read-only unit of work that needs `scope` and is told what the
    /// caller may do.
    pub async fn read_as<'a, R, F>(
        &self,
        state: &AppState,
        scope: Scope,
        work: F,
    ) -> Result<R, ApiError>
    where
        F: Work<'a, R>,
        R: Send + 'a,
    {
        self.run(state, false, scope, work).await
    }

    /// A unit of work that writes (scope `tenant:write`). It holds the
    /// tenant's lifecycle lock, shared, for its duration, so a suspension
    /// waits for it and no write commits after a suspension.
    pub async fn write<'a, R, F>(&self, state: &AppState, work: F) -> Result<R, ApiError>
    where
        F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<R, ApiError>>
            + Send
            + 'a,
        R: Send + 'a,
    {
        self.write_as(state, Scope::TenantWrite, move |conn, _| work(conn))
            .await
    }

    /// A writing unit of work (as [`Self::write`]) that needs `scope` and
    /// is told what the caller may do.
    pub async fn write_as<'a, R, F>(
        &self,
        state: &AppState,
        scope: Scope,
        work: F,
    ) -> Result<R, ApiError>
    where
        F: Work<'a, R>,
        R: Send + 'a,
    {
        self.run(state, true, scope, work).await
    }

    /// A write that, with `dry_run`, is rehearsed instead: the same unit of
    /// work — validation, uniqueness, quota — runs to the end and is then
    /// rolled back, so nothing is written. Returns what the work returned.
    pub async fn write_or_rehearse<'a, R, F>(
        &self,
        state: &AppState,
        dry_run: bool,
        work: F,
    ) -> Result<R, ApiError>
    where
        F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<R, ApiError>>
            + Send
            + 'a,
        R: Send + 'a,
    {
        self.write_or_rehearse_as(state, dry_run, Scope::TenantWrite, move |conn, _| {
            work(conn)
        })
        .await
    }

    /// [`Self::write_or_rehearse`] needing `scope`, told what the caller
    /// may do.
    pub async fn write_or_rehearse_as<'a, R, F>(
        &self,
        state: &AppState,
        dry_run: bool,
        scope: Scope,
        work: F,
    ) -> Result<R, ApiError>
    where
        F: Work<'a, R>,
        R: Send + 'a,
    {
        if !dry_run {
            return self.write_as(state, scope, work).await;
        }
        self.require_early(scope)?;
        let tenant = self.tenant_id;
        self.admit(state).await?;
        let gate = self.gate_input(state);
        let grant = self.grant();
        // No lifecycle lock: a rehearsal commits nothing, so it has nothing
        // a suspension must wait for.
        let outcome = state
            .db
            .tenant(tenant)
            .run(move |conn| {
                async move {
                    let role = gate.run(conn).await.map_err(Rehearsal::Failed)?;
                    let authority = grant.authority(role, scope).map_err(Rehearsal::Failed)?;
                    // An error rolls the transaction back: a finished
                    // rehearsal leaves as one, carrying its result.
                    match work(conn, authority).await {
                        Ok(result) => Err::<(), _>(Rehearsal::Done(result)),
                        Err(e) => Err(Rehearsal::Failed(e)),
                    }
                }
                .scope_boxed()
            })
            .await;
        let result = match outcome {
            Err(Rehearsal::Done(result)) => Ok(result),
            Err(Rehearsal::Failed(e)) => Err(e),
            Ok(()) => Err(ApiError::internal("a rehearsal committed")),
        };
        observe(state, tenant, result)
    }

    /// A machine credential's scope check, before any database work (a
    /// member's comes after the gate has read its role).
    fn require_early(&self, scope: Scope) -> Result<(), ApiError> {
        match self.caller {
            Caller::Machine => require(&self.scopes, scope),
            Caller::Member => Ok(()),
        }
    }

    fn grant(&self) -> Grant {
        Grant {
            caller: self.caller,
            scopes: self.scopes.clone(),
            claimed: self.role,
        }
    }

    /// The rate limit, from the cached limits: decided before the request
    /// takes a connection, so a throttled request costs no database work.
    async fn admit(&self, state: &AppState) -> Result<(), ApiError> {
        let admitted = state
            .rate_limits
            .admit(self.tenant_id)
            .await
            .map_err(ApiError::RateLimited);
        observe(state, self.tenant_id, admitted)
    }

    fn gate_input(&self, state: &AppState) -> Gate {
        Gate {
            tenant: self.tenant_id,
            member: (self.caller == Caller::Member).then(|| self.sub.clone()),
            api_key: self.api_key,
            account: self.account,
            addressed: self.addressed.clone(),
            custom_hosts: self.custom_hosts.clone(),
            limits: Arc::clone(&state.rate_limits),
        }
    }

    async fn run<'a, R, F>(
        &self,
        state: &AppState,
        writes: bool,
        required: Scope,
        work: F,
    ) -> Result<R, ApiError>
    where
        F: Work<'a, R>,
        R: Send + 'a,
    {
        self.require_early(required)?;
        let tenant = self.tenant_id;
        self.admit(state).await?;
        let gate = self.gate_input(state);
        let grant = self.grant();
        let machine = self.caller == Caller::Machine;
        let scope = state.db.tenant(tenant);
        let scope = if writes {
            scope.writing()
        } else {
            scope.read_only()
        };
        let result = scope
            .run(move |conn| {
                async move {
                    if machine {
                        // A machine credential's authority is its scopes,
                        // known before the gate: the work's statements go
                        // out in the same flight as the gate's, right
                        // behind them, and the gate's verdict still decides
                        // before anything is answered or committed.
                        let authority = grant.authority(None, required)?;
                        let (mut g, mut w): (Conn<'_>, Conn<'_>) = (&**conn, &**conn);
                        gate_first(gate.run(&mut g), work(&mut w, authority)).await
                    } else {
                        // A member's authority is the role the gate reads.
                        let role = gate.run(conn).await?;
                        let authority = grant.authority(role, required)?;
                        work(conn, authority).await
                    }
                }
                .scope_boxed()
            })
            .await;
        observe(state, tenant, result)
    }
}

/// Drives the gate and the work together (the gate first, so its
/// statements are sent first) and answers as if the gate had run alone
/// before the work: a refusal wins over whatever the work found, and the
/// work's result counts only once the gate has let the caller through. A
/// refused request's work is dropped; its transaction rolls back.
async fn gate_first<R>(
    gate: impl Future<Output = Result<Option<Role>, ApiError>>,
    work: impl Future<Output = Result<R, ApiError>>,
) -> Result<R, ApiError> {
    use futures_util::future::{Either, select};
    let (gate, work) = (std::pin::pin!(gate), std::pin::pin!(work));
    match select(gate, work).await {
        Either::Left((verdict, work)) => {
            verdict?;
            work.await
        }
        Either::Right((done, gate)) => {
            gate.await?;
            done
        }
    }
}

fn require(scopes: &Scopes, scope: Scope) -> Result<(), ApiError> {
    if scopes.contains(scope) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            format!("requires scope {scope}").into(),
        ))
    }
}

/// What the caller may do, once the gate has run.
struct Grant {
    caller: Caller,
    /// A machine credential's scopes.
    scopes: Scopes,
    /// The token's `role` claim: lowers a member's role, never raises it.
    claimed: Option<Role>,
}

impl Grant {
    /// The caller's authority, given the role the gate found (members
    /// only), if it includes `required`.
    fn authority(&self, role: Option<Role>, required: Scope) -> Result<Authority, ApiError> {
        let authority = match (self.caller, role) {
            (Caller::Machine, _) => Authority::machine(self.scopes.clone()),
            (Caller::Member, Some(role)) => Authority::member(role, self.claimed),
            // The gate refuses a member token without a members row.
            (Caller::Member, None) => return Err(no_such_tenant()),
        };
        require(&authority.scopes, required)?;
        Ok(authority)
    }
}

/// Counts refusals worth watching.
fn observe<R>(
    state: &AppState,
    tenant: TenantId,
    result: Result<R, ApiError>,
) -> Result<R, ApiError> {
    match &result {
        Err(ApiError::Operation(tenantry_ops::Error::QuotaExceeded(e))) => {
            state.metrics.quota_rejected(tenant, e.resource)
        }
        Err(ApiError::RateLimited(_)) => state.metrics.rate_limited(tenant),
        _ => {}
    }
    result
}

/// The tenant gate: inside the unit of work's own transaction, the tenant
/// must exist, a member token's subject must be one of its members, the
/// credential behind the token must still be valid, the tenant must be the
/// one the request addressed and be active. If its row cannot be read the
/// transaction fails and the request gets 503 — never through. The limits
/// it reads refresh the rate-limit cache.
struct Gate {
    tenant: TenantId,
    /// A member token's subject: its members row must exist.
    member: Option<String>,
    api_key: Option<ApiKeyId>,
    account: Option<AccountId>,
    addressed: Vec<String>,
    custom_hosts: Vec<String>,
    limits: Arc<RateLimits>,
}

impl Gate {
    /// Returns a member token's role in the tenant. Its statements are
    /// independent of each other, so they are sent together; the checks
    /// then run on their answers in the order that decides what a refused
    /// caller may learn.
    async fn run(&self, conn: &mut Conn<'_>) -> Result<Option<Role>, ApiError> {
        let (mut c0, mut c1, mut c2, mut c3): (Conn<'_>, Conn<'_>, Conn<'_>, Conn<'_>) =
            (&**conn, &**conn, &**conn, &**conn);
        // A token confined to an account reaches only that account's
        // tenants: the database compares (a tenant of another account is
        // answered as one that does not exist).
        let row = queries::tenants::gate(&mut c0, self.tenant, self.api_key, self.account);
        let member = self.membership(&mut c1);
        // A request at a custom domain must be at a verified domain of THIS
        // tenant, as its own transaction sees them (not as a cache says).
        let domains = async {
            if self.custom_hosts.is_empty() {
                Ok(true)
            } else {
                queries::domains::all_verified_for(&mut c2, self.tenant, &self.custom_hosts).await
            }
        };
        // The tenant's rate limits, in the same flight when none are
        // cached; when cached, read again below only if the registry row
        // moved since (an admin's change of them moves it).
        let unknown = self.limits.stamp(self.tenant).is_none();
        let limits = async {
            if unknown {
                queries::tenants::rate_limits(&mut c3, self.tenant)
                    .await
                    .map(Some)
            } else {
                Ok(None)
            }
        };
        let (row, member, domains, limits) =
            futures_util::future::join4(row, member, domains, limits).await;
        let Some(row) = row? else {
            return Err(no_such_tenant());
        };
        if self.limits.stamp(self.tenant) != Some(row.stamp) {
            let limits = match limits {
                Ok(Some(limits)) => Ok(limits),
                _ => queries::tenants::rate_limits(conn, self.tenant).await,
            };
            // Best effort: the limits only decide later admissions. Read
            // after statements the work sent with the gate, this may find
            // the transaction aborted by them — then the work's own error
            // is the answer, and the limits are learnt next time.
            match limits {
                Ok(limits) => {
                    // No quota row: the default rate, not "unlimited".
                    let rate = limits.map(|(rps, burst)| Rate::from_columns(rps, burst));
                    self.limits
                        .learn_stamped(self.tenant, rate, Some(row.stamp));
                }
                Err(e) => tracing::debug!(error = %e, "rate limits not refreshed"),
            }
        }
        let role = member?;
        if !row.credential_valid {
            tracing::debug!(api_key = ?self.api_key, "token refused: its API key was revoked");
            return Err(ApiError::Unauthorized);
        }
        if self.addressed.iter().any(|a| *a != row.slug) {
            return Err(ApiError::TenantMismatch);
        }
        if !domains? {
            return Err(ApiError::TenantMismatch);
        }
        if row.status != TenantStatus::Active {
            return Err(ApiError::TenantInactive(row.status));
        }
        Ok(role)
    }

    /// A member token's members row, found in SQL in this transaction (RLS:
    /// only this tenant's rows are visible). None: refused exactly as a
    /// tenant that does not exist, before anything else about the tenant
    /// (its status, its slug) can show.
    async fn membership(&self, conn: &mut Conn<'_>) -> Result<Option<Role>, ApiError> {
        let Some(subject) = self.member.as_deref() else {
            return Ok(None);
        };
        let Some(role) = queries::members::role_of(conn, self.tenant, subject).await? else {
            return Err(no_such_tenant());
        };
        role.parse().map(Some).map_err(|_| {
            ApiError::internal(format!("a member of {} has an unknown role", self.tenant))
        })
    }
}

/// How a rehearsed unit of work ends: always by rolling back.
enum Rehearsal<R> {
    Done(R),
    Failed(ApiError),
}

impl<R> From<tenantry_db::DbError> for Rehearsal<R> {
    fn from(e: tenantry_db::DbError) -> Self {
        Self::Failed(e.into())
    }
}

impl<R> From<diesel::result::Error> for Rehearsal<R> {
    fn from(e: diesel::result::Error) -> Self {
        Self::Failed(e.into())
    }
}
