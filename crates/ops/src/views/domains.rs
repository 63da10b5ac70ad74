use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::DomainId;
use tenantry_db::models::Domain;

/// Where the DNS proof is published: `_tenantry-challenge.<hostname>`.
pub const DNS_PREFIX: &str = "_tenantry-challenge";
/// Where the HTTP proof is served: `http://<hostname>/.well-known/tenantry-challenge/<token>`.
pub const HTTP_PATH: &str = "/.well-known/tenantry-challenge/";

/// A tenant's custom domain. Once verified, requests whose `Host` is this
/// name address the tenant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DomainView {
    pub id: DomainId,
    /// Normalised: lower case, Unicode labels as punycode, no trailing dot.
    pub hostname: String,
    /// `pending` until `POST /v1/domains/{id}/verify` finds the proof, then
    /// `verified`.
    #[schema(example = "pending")]
    pub status: String,
    pub verified_at: Option<DateTime<Utc>>,
    /// `dns` or `http`: which proof was found.
    pub verified_by: Option<String>,
    pub created_at: DateTime<Utc>,
    /// How to prove control of the name: publish either.
    pub verification: VerificationView,
}

/// Either proof verifies the domain.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerificationView {
    pub dns: DnsChallengeView,
    pub http: HttpChallengeView,
}

/// A TXT record to publish.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DnsChallengeView {
    /// Always `TXT`.
    #[schema(example = "TXT")]
    pub record_type: String,
    /// e.g. `_tenantry-challenge.shop.example.com`.
    pub name: String,
    /// The record's value: the token.
    pub value: String,
}

/// A file to serve over plain HTTP (port 80), with no redirect.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HttpChallengeView {
    /// e.g. `http://shop.example.com/.well-known/tenantry-challenge/<token>`.
    pub url: String,
    /// The body to answer with (200, the token itself; surrounding
    /// whitespace is ignored).
    pub body: String,
}

impl From<Domain> for DomainView {
    fn from(d: Domain) -> Self {
        let verification = VerificationView {
            dns: DnsChallengeView {
                record_type: "TXT".to_owned(),
                name: format!("{DNS_PREFIX}.{}", d.hostname),
                value: d.token.clone(),
            },
            http: HttpChallengeView {
                url: format!("http://{}{HTTP_PATH}{}", d.hostname, d.token),
                body: d.token,
            },
        };
        Self {
            id: d.id,
            hostname: d.hostname,
            status: if d.verified_at.is_some() {
                "verified"
            } else {
                "pending"
            }
            .to_owned(),
            verified_at: d.verified_at,
            verified_by: d.verified_by,
            created_at: d.created_at,
            verification,
        }
    }
}
