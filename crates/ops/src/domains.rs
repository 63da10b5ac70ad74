//! Custom domains. A tenant registers a host name (global: one name, one
//! tenant), publishes the token it is given — a DNS TXT record at
//! `_tenantry-challenge.<name>` or a file at
//! `http://<name>/.well-known/tenantry-challenge/<token>` — and asks for a
//! check; once verified, requests whose `Host` is the name address it.
//!
//! Verifying is two units of work with the network between them, so no
//! transaction (nor pooled connection) waits on DNS or HTTP: [`challenge`]
//! reads what to look for, [`check`] looks (every lookup bounded in time)
//! and returns a [`Proof`] only when the token was found, and [`verify`]
//! records it — only if the domain is still pending with that token.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tenantry_db::Conn;

use diesel::result::DatabaseErrorKind;
use serde_json::json;
use tenantry_core::{DomainId, Hostname, TenantId};
use tenantry_db::ScopedFutureExt;
use tenantry_db::models::Domain;
use tenantry_db::queries::{self, domains};

use crate::error::on_constraint;
use crate::views::{DNS_PREFIX, DomainView, HTTP_PATH, List};
use crate::{Error, Operations, Page, TenantActor};

/// A lookup's answer, or what went wrong (for people: it becomes part of
/// the problem's detail).
pub type Lookup<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// What an HTTP check got: the status and the start of the body.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    /// At most the verifier's cap (a token is short).
    pub body: Vec<u8>,
}

/// Where a domain's proof is looked for. The service's implementation
/// (`tenantry_api::domains`) asks a configured nameserver and connects
/// over HTTP; each call is bounded in time and never follows a redirect.
pub trait Verifier: Send + Sync + std::fmt::Debug {
    /// The TXT values at `name` (a record's strings joined).
    fn txt<'a>(&'a self, name: &'a str) -> Lookup<'a, Vec<String>>;
    /// `GET http://{hostname}{path}`.
    fn http_get<'a>(&'a self, hostname: &'a str, path: &'a str) -> Lookup<'a, HttpAnswer>;
}

/// Any one check gives up after this long, whatever the verifier does.
const CHECK_LIMIT: Duration = Duration::from_secs(15);

/// What [`check`] looks for.
#[derive(Debug, Clone)]
pub struct Challenge {
    id: DomainId,
    hostname: String,
    token: String,
    verified: bool,
}

impl Challenge {
    #[must_use]
    pub fn hostname(&self) -> &str {
        &self.hostname
    }
}

/// Evidence that the token was published (only [`check`] makes one).
#[derive(Debug, Clone)]
pub struct Proof {
    id: DomainId,
    token: String,
    /// `None`: the domain was already verified.
    method: Option<&'static str>,
}

/// A fresh token: 244 random bits (two v4 UUIDs), hex.
fn token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> Result<List<DomainView>, Error> {
    let (items, more) = domains::list(conn, tenant, page).await?;
    Ok(List::new(items, more, |d| *d.id.as_uuid()).map(Into::into))
}

pub async fn get(conn: &mut Conn<'_>, tenant: TenantId, id: DomainId) -> Result<DomainView, Error> {
    domains::get(conn, tenant, id)
        .await?
        .map(Into::into)
        .ok_or(Error::NotFound)
}

/// Registers `hostname` for the tenant, pending. A name any tenant already
/// holds — this one or another — is a conflict that says no more.
pub async fn create(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    hostname: &Hostname,
) -> Result<DomainView, Error> {
    let tenant = who.tenant;
    let id = DomainId::new();
    let domain = domains::create(conn, tenant, id, hostname.as_str(), &token())
        .await
        .map_err(|e| {
            on_constraint(
                e,
                DatabaseErrorKind::UniqueViolation,
                "domains_hostname_key",
                || Error::conflict("this host name is already registered"),
            )
        })?;
    record(conn, who, "domain.added", &domain).await?;
    Ok(domain.into())
}

/// What to look for to verify the domain.
pub async fn challenge(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: DomainId,
) -> Result<Challenge, Error> {
    let d = domains::get(conn, tenant, id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Challenge {
        id: d.id,
        hostname: d.hostname,
        token: d.token,
        verified: d.verified_at.is_some(),
    })
}

/// Looks for the token in DNS and over HTTP (both, at once); a [`Proof`]
/// if either has it, else [`Error::NotVerified`] saying what each found.
/// No transaction is open meanwhile.
pub async fn check(verifier: &dyn Verifier, c: &Challenge) -> Result<Proof, Error> {
    if c.verified {
        return Ok(Proof {
            id: c.id,
            token: c.token.clone(),
            method: None,
        });
    }
    let name = format!("{DNS_PREFIX}.{}.", c.hostname);
    let path = format!("{HTTP_PATH}{}", c.token);
    let url = format!("http://{}{path}", c.hostname);
    let (txt, http) = tokio::join!(
        tokio::time::timeout(CHECK_LIMIT, verifier.txt(&name)),
        tokio::time::timeout(CHECK_LIMIT, verifier.http_get(&c.hostname, &path)),
    );
    let (txt, http) = (bounded(txt), bounded(http));
    let shown = name.trim_end_matches('.');
    let dns_found = match &txt {
        Ok(values) if values.iter().any(|v| v.trim() == c.token) => {
            return Ok(proof(c, "dns"));
        }
        Ok(values) if values.is_empty() => format!("no TXT record at {shown}"),
        Ok(values) => format!(
            "{} TXT value(s) at {shown}, none of them this domain's token",
            values.len()
        ),
        Err(e) => format!("TXT lookup of {shown} failed: {e}"),
    };
    let http_found = match &http {
        Ok(a) if a.status == 200 && trimmed(&a.body) == c.token.as_bytes() => {
            return Ok(proof(c, "http"));
        }
        // The body is never echoed: the service fetched it, the caller
        // did not, and it may come from anywhere the name points.
        Ok(a) if a.status == 200 => format!("{url} answered 200 with a body that is not the token"),
        Ok(a) => format!("{url} answered {}", a.status),
        Err(e) => format!("GET {url} failed: {e}"),
    };
    Err(Error::NotVerified(format!(
        "DNS: {dns_found}; HTTP: {http_found}"
    )))
}

fn bounded<T>(r: Result<Result<T, String>, tokio::time::error::Elapsed>) -> Result<T, String> {
    r.unwrap_or_else(|_| Err(format!("no answer within {}s", CHECK_LIMIT.as_secs())))
}

fn proof(c: &Challenge, method: &'static str) -> Proof {
    Proof {
        id: c.id,
        token: c.token.clone(),
        method: Some(method),
    }
}

fn trimmed(body: &[u8]) -> &[u8] {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let end = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &body[start..end.max(start)]
}

/// Records a [`Proof`]: the domain becomes verified (if still pending with
/// the token that was found; otherwise it changed meanwhile and is a
/// conflict, or gone).
pub async fn verify(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    proof: Proof,
) -> Result<DomainView, Error> {
    let tenant = who.tenant;
    let Some(method) = proof.method else {
        return get(conn, tenant, proof.id).await;
    };
    match domains::mark_verified(conn, tenant, proof.id, &proof.token, method).await? {
        Some(domain) => {
            record(conn, who, "domain.verified", &domain).await?;
            Ok(domain.into())
        }
        None => match domains::get(conn, tenant, proof.id).await? {
            Some(d) if d.verified_at.is_some() => Ok(d.into()),
            Some(_) => Err(Error::conflict(
                "the domain changed while it was checked; retry",
            )),
            None => Err(Error::NotFound),
        },
    }
}

/// Removes the domain: its name routes nothing from now on and is free for
/// anyone to register. Returns the name (for the caller's cache).
pub async fn delete(conn: &mut Conn<'_>, who: &TenantActor, id: DomainId) -> Result<String, Error> {
    let domain = domains::delete(conn, who.tenant, id)
        .await?
        .ok_or(Error::NotFound)?;
    record(conn, who, "domain.removed", &domain).await?;
    Ok(domain.hostname)
}

/// The tenant's event and the audit entry.
async fn record(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    kind: &str,
    domain: &Domain,
) -> Result<(), Error> {
    let data = json!({
        "hostname": domain.hostname,
        "verified_by": domain.verified_by,
    });
    queries::events::record(
        conn,
        who.tenant,
        kind,
        who.actor.as_str(),
        Some(*domain.id.as_uuid()),
        data.clone(),
    )
    .await?;
    queries::audit::record(
        conn,
        Some(who.tenant),
        who.actor.as_str(),
        kind,
        None,
        Some(json!({"domain": domain.id, "hostname": domain.hostname, "verified_by": domain.verified_by})),
        None,
    )
    .await?;
    Ok(())
}

/// Admin plane: a tenant's domains, by id or slug (platform context).
pub async fn list_for_tenant(
    ops: &Operations,
    key: &str,
    page: Page,
) -> Result<List<DomainView>, Error> {
    let (items, more) = ops
        .db
        .platform()
        .run(|conn| {
            async move {
                let tenant = crate::tenants::resolve(conn, key).await?;
                Ok::<_, Error>(domains::list(conn, tenant.id, page).await?)
            }
            .scope_boxed()
        })
        .await?;
    Ok(List::new(items, more, |d| *d.id.as_uuid()).map(Into::into))
}

/// Routing's lookup (platform context): the tenant whose verified domain
/// `hostname` (normalised) is.
pub async fn tenant_for_host(ops: &Operations, hostname: &str) -> Result<Option<TenantId>, Error> {
    let hostname = hostname.to_owned();
    ops.db
        .platform()
        .run(|conn| {
            async move { Ok::<_, Error>(domains::tenant_for_host(conn, &hostname).await?) }
                .scope_boxed()
        })
        .await
}
