//! Custom domains on the API side: the settings (`[domains]`), the
//! verifier that looks for a domain's proof (a TXT lookup through hickory,
//! an HTTP GET through reqwest — each bounded in time, no redirect, the
//! body capped), and the host → tenant cache routing reads.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, Resolver};
use serde::Deserialize;
use tenantry_ops::domains::{HttpAnswer, Lookup, Verifier};

/// `[domains]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSettings {
    /// The nameserver (`host:port`, UDP then TCP) asked for the TXT proof;
    /// empty = the system's resolver configuration (`/etc/resolv.conf`).
    #[serde(default)]
    pub dns_resolver: String,
    /// The port the HTTP proof is fetched from (the URL shown to tenants
    /// says port 80; a test points this at a local server).
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    /// Connect the HTTP check to this address (`ip`) instead of the one the
    /// name resolves to; empty = resolve the name. For tests and for
    /// deployments whose egress goes through a fixed proxy address.
    #[serde(default)]
    pub http_connect_to: String,
    /// Each check (DNS, HTTP) gives up after this long.
    #[serde(with = "humantime_serde", default = "default_check_timeout")]
    pub check_timeout: Duration,
    /// How long a host → tenant answer (either way) is reused on this
    /// replica. Changes made on this replica invalidate it at once; other
    /// replicas see them after at most this long.
    #[serde(with = "humantime_serde", default = "default_cache_ttl")]
    pub cache_ttl: Duration,
}

const fn default_http_port() -> u16 {
    80
}

const fn default_check_timeout() -> Duration {
    Duration::from_secs(5)
}

const fn default_cache_ttl() -> Duration {
    Duration::from_secs(30)
}

impl Default for DomainSettings {
    fn default() -> Self {
        Self {
            dns_resolver: String::new(),
            http_port: default_http_port(),
            http_connect_to: String::new(),
            check_timeout: default_check_timeout(),
            cache_ttl: default_cache_ttl(),
        }
    }
}

/// Why the `[domains]` settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DomainSettingsError {
    #[error("domains.dns_resolver {0:?} is not an ip:port address")]
    Resolver(String),
    #[error("domains.http_connect_to {0:?} is not an IP address")]
    ConnectTo(String),
}

/// The largest HTTP body read: a token is 64 characters.
const BODY_CAP: usize = 1024;

/// The service's [`Verifier`].
#[derive(Debug, Clone)]
pub struct NetworkVerifier {
    nameserver: Option<SocketAddr>,
    http_port: u16,
    connect_to: Option<std::net::IpAddr>,
    timeout: Duration,
}

impl Default for NetworkVerifier {
    /// The system's resolver, port 80, the default timeout.
    fn default() -> Self {
        Self {
            nameserver: None,
            http_port: default_http_port(),
            connect_to: None,
            timeout: default_check_timeout(),
        }
    }
}

impl NetworkVerifier {
    pub fn new(settings: &DomainSettings) -> Result<Self, DomainSettingsError> {
        let nameserver = match settings.dns_resolver.trim() {
            "" => None,
            raw => Some(
                raw.parse()
                    .map_err(|_| DomainSettingsError::Resolver(raw.to_owned()))?,
            ),
        };
        let connect_to = match settings.http_connect_to.trim() {
            "" => None,
            raw => Some(
                raw.parse()
                    .map_err(|_| DomainSettingsError::ConnectTo(raw.to_owned()))?,
            ),
        };
        Ok(Self {
            nameserver,
            http_port: settings.http_port,
            connect_to,
            timeout: settings.check_timeout,
        })
    }

    /// A resolver per check: no answer (nor a "no such record") is cached
    /// from one check to the next, so a record published a moment ago is
    /// seen.
    fn resolver(&self) -> Result<Resolver<TokioConnectionProvider>, ResolveError> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match self.nameserver {
            Some(address) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(address, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(address, Protocol::Tcp));
                Resolver::builder_with_config(config, provider)
            }
            None => Resolver::builder(provider)?,
        };
        let options = builder.options_mut();
        options.timeout = self.timeout;
        options.attempts = 1;
        options.cache_size = 0;
        options.ndots = 0;
        Ok(builder.build())
    }

    async fn txt_values(&self, name: &str) -> Result<Vec<String>, String> {
        let resolver = self.resolver().map_err(|e| e.to_string())?;
        let lookup = tokio::time::timeout(self.timeout, resolver.txt_lookup(name))
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?;
        match lookup {
            Ok(records) => Ok(records
                .iter()
                .map(|txt| {
                    txt.txt_data()
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect::<String>()
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn get(&self, hostname: &str, path: &str) -> Result<HttpAnswer, String> {
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .no_proxy();
        if let Some(ip) = self.connect_to {
            client = client.resolve(hostname, SocketAddr::new(ip, self.http_port));
        }
        let client = client.build().map_err(|e| e.to_string())?;
        let url = if self.http_port == 80 {
            format!("http://{hostname}{path}")
        } else {
            format!("http://{hostname}:{}{path}", self.http_port)
        };
        let mut response = client.get(url).send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while body.len() < BODY_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err(describe(e)),
            }
        }
        body.truncate(BODY_CAP);
        Ok(HttpAnswer { status, body })
    }
}

/// reqwest's error without the URL (the detail names it once already).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        e.without_url().to_string()
    }
}

impl Verifier for NetworkVerifier {
    fn txt<'a>(&'a self, name: &'a str) -> Lookup<'a, Vec<String>> {
        Box::pin(self.txt_values(name))
    }

    fn http_get<'a>(&'a self, hostname: &'a str, path: &'a str) -> Lookup<'a, HttpAnswer> {
        Box::pin(self.get(hostname, path))
    }
}
