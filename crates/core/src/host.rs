//! Host names, normalised so that one name has one spelling: the port
//! stripped (an IPv6 literal's too), one trailing dot dropped, lower case,
//! Unicode labels in their ASCII (punycode) form — UTS 46, as a browser
//! maps a URL's host. Host addressing (`{slug}.{base_domain}`) compares
//! only normalised names, so `B.Example.COM.:443` is `b.example.com`.
//!
//! Pure functions: no request, no state. The API's host addressing and a
//! tenant's custom domains ([`Hostname`]) share them: one implementation.

use std::net::Ipv6Addr;

use idna::AsciiDenyList;

/// Why a host cannot be read as a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the host is empty")]
    Empty,
    #[error("the port is not a port number")]
    Port,
    #[error("the IPv6 literal is malformed")]
    Ipv6,
    #[error("not a domain name (empty label, forbidden character or bad punycode)")]
    Name,
    #[error("more than one label under the base domain")]
    Depth,
    #[error("the request names more than one host")]
    Repeated,
    #[error("a base domain is a name only: no port, no IP literal")]
    NotADomain,
}

/// `name[:port]` → the normalised name. An IPv6 literal comes back in
/// brackets, in its canonical form (`[::1]`).
pub fn normalise(raw: &[u8]) -> Result<String, HostError> {
    let raw = std::str::from_utf8(raw).map_err(|_| HostError::Name)?;
    let name = strip_port(raw)?;
    if let Some(literal) = name.strip_prefix('[') {
        let address: Ipv6Addr = literal
            .strip_suffix(']')
            .and_then(|a| a.parse().ok())
            .ok_or(HostError::Ipv6)?;
        return Ok(format!("[{address}]"));
    }
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    // The WHATWG URL host rules: UTS 46 mapping (case folding, full-width
    // forms, `。` as a dot), punycode, and the forbidden code points
    // (`%`, `/`, `:`, `@`, spaces, controls, …) refused.
    let ascii = idna::domain_to_ascii_cow(name.as_bytes(), AsciiDenyList::URL)
        .map_err(|_| HostError::Name)?;
    let ascii = ascii.strip_suffix('.').unwrap_or(&ascii);
    if ascii.is_empty() || ascii.split('.').any(str::is_empty) {
        return Err(HostError::Name);
    }
    Ok(ascii.to_owned())
}

/// `host[:port]` → `host`; the port, when given, must be a port number
/// (an empty one is allowed, as RFC 3986 allows it).
fn strip_port(raw: &str) -> Result<&str, HostError> {
    let (name, port) = if raw.starts_with('[') {
        let end = raw.find(']').ok_or(HostError::Ipv6)?;
        let (name, rest) = raw.split_at(end + 1);
        match rest {
            "" => (name, None),
            rest => (name, Some(rest.strip_prefix(':').ok_or(HostError::Ipv6)?)),
        }
    } else {
        match raw.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (raw, None),
        }
    };
    match port {
        Some(port) if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) => {
            Err(HostError::Port)
        }
        Some(port) if !port.is_empty() && port.parse::<u16>().is_err() => Err(HostError::Port),
        _ => Ok(name),
    }
}

/// The tenant label a raw `Host` addresses under `base` (itself normalised,
/// see [`base_domain`]): `Some(label)` for exactly one label under it,
/// `None` for the base domain itself or a name outside it, and an error for
/// a host that cannot be normalised or lies deeper than one label.
pub fn addressed_label(raw: &[u8], base: &str) -> Result<Option<String>, HostError> {
    let host = normalise(raw)?;
    let Some(prefix) = host.strip_suffix(base) else {
        return Ok(None);
    };
    if prefix.is_empty() {
        return Ok(None);
    }
    // `xtenants.test` is another domain, not a label under `tenants.test`.
    let Some(label) = prefix.strip_suffix('.') else {
        return Ok(None);
    };
    if label.contains('.') {
        return Err(HostError::Depth);
    }
    Ok(Some(label.to_owned()))
}

/// A configured base domain, normalised like a host; empty (after trimming)
/// means host addressing is off. A port or an IP literal is refused.
pub fn base_domain(raw: &str) -> Result<Option<String>, HostError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.contains(':') || raw.contains('[') {
        return Err(HostError::NotADomain);
    }
    normalise(raw.as_bytes()).map(Some)
}

/// Why a name cannot be a tenant's custom domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    #[error("{0}")]
    Host(HostError),
    #[error("a port is not part of a domain name")]
    Port,
    #[error("an IP address is not a domain name")]
    IpAddress,
    #[error("a single-label name is not a public domain name")]
    SingleLabel,
    #[error("longer than 253 characters, or a label longer than 63")]
    TooLong,
    #[error("labels are letters, digits and inner hyphens only")]
    Characters,
    #[error("a name under the service's own base domain is addressed by slug, not registered")]
    UnderBaseDomain,
}

/// A tenant's custom domain, normalised exactly as [`normalise`] does a
/// `Host` (UTS 46, lower case, punycode, no trailing dot), and refused when
/// it is an IP literal, carries a port, has a single label, is overlong,
/// has a label that is not letters, digits and inner hyphens, or lies at or
/// under the service's own base domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

impl Hostname {
    /// `base`: the configured base domain (already normalised), if any.
    pub fn parse(raw: &str, base: Option<&str>) -> Result<Self, HostnameError> {
        let raw = raw.trim();
        if raw.starts_with('[') || raw.parse::<std::net::IpAddr>().is_ok() {
            return Err(HostnameError::IpAddress);
        }
        if raw.contains(':') {
            return Err(HostnameError::Port);
        }
        let name = normalise(raw.as_bytes()).map_err(HostnameError::Host)?;
        if name.len() > 253 {
            return Err(HostnameError::TooLong);
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err(HostnameError::SingleLabel);
        }
        if labels.iter().any(|l| l.len() > 63) {
            return Err(HostnameError::TooLong);
        }
        let ldh = |l: &&str| {
            l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !labels.iter().all(ldh) {
            return Err(HostnameError::Characters);
        }
        // A name whose last label is numeric reads as an IPv4 address to a
        // URL parser (`1.2.3.4`, `0x7f.1`, `127.1`).
        if labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()) || l.starts_with("0x"))
        {
            return Err(HostnameError::IpAddress);
        }
        if let Some(base) = base
            && (name == base || name.ends_with(&format!(".{base}")))
        {
            return Err(HostnameError::UnderBaseDomain);
        }
        Ok(Self(name))
    }

    /// A name read back from the database, where only parsed names are
    /// written.
    #[must_use]
    pub fn from_stored(name: String) -> Self {
        Self(name)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Hostname {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_domain_is_a_normalised_public_name() {
        let parse = |raw: &str| Hostname::parse(raw, Some("tenants.test"));
        for (raw, normal) in [
            ("shop.example.com", "shop.example.com"),
            ("Shop.Example.COM.", "shop.example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("a-b.c0.example", "a-b.c0.example"),
        ] {
            assert_eq!(
                parse(raw).map(|h| h.to_string()).as_deref(),
                Ok(normal),
                "{raw}"
            );
        }
        for (raw, error) in [
            ("127.0.0.1", HostnameError::IpAddress),
            ("[::1]", HostnameError::IpAddress),
            ("::1", HostnameError::IpAddress),
            ("10.1", HostnameError::IpAddress),
            ("shop.0x7f", HostnameError::IpAddress),
            ("shop.example.com:443", HostnameError::Port),
            ("localhost", HostnameError::SingleLabel),
            ("tenants.test", HostnameError::UnderBaseDomain),
            ("acme.tenants.test", HostnameError::UnderBaseDomain),
            ("a.b.tenants.test", HostnameError::UnderBaseDomain),
            ("_dmarc.example.com", HostnameError::Characters),
            ("-a.example.com", HostnameError::Characters),
            ("a*.example.com", HostnameError::Characters),
            ("", HostnameError::Host(HostError::Empty)),
            ("a..example", HostnameError::Host(HostError::Name)),
            ("a b.example", HostnameError::Host(HostError::Name)),
        ] {
            assert_eq!(parse(raw), Err(error), "{raw:?}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert_eq!(parse(&long_label), Err(HostnameError::TooLong));
        let long_name = format!("{}example", "abcdefghi.".repeat(25));
        assert_eq!(parse(&long_name), Err(HostnameError::TooLong));
        // Not under the base domain, only alike.
        assert!(parse("xtenants.test").is_ok());
        assert!(Hostname::parse("acme.tenants.test", None).is_ok());
    }

    fn norm(raw: &str) -> Result<String, HostError> {
        normalise(raw.as_bytes())
    }

    #[test]
    fn one_name_has_one_spelling() {
        for raw in [
            "b.example.com",
            "b.example.com.",
            "B.EXAMPLE.COM",
            "B.Example.Com.:443",
            "b.example.com:8080",
            "b.example.com:",
            "b。example。com",
            "ｂ.example.com",
        ] {
            assert_eq!(norm(raw).as_deref(), Ok("b.example.com"), "{raw:?}");
        }
    }

    #[test]
    fn unicode_labels_become_punycode() {
        for raw in [
            "bücher.example",
            "BÜCHER.example.",
            "xn--bcher-kva.example:80",
        ] {
            assert_eq!(norm(raw).as_deref(), Ok("xn--bcher-kva.example"), "{raw:?}");
        }
    }

    #[test]
    fn ip_addresses_are_names_that_address_no_tenant() {
        assert_eq!(norm("127.0.0.1:8080").as_deref(), Ok("127.0.0.1"));
        assert_eq!(norm("[::1]:8080").as_deref(), Ok("[::1]"));
        assert_eq!(norm("[0:0::1]").as_deref(), Ok("[::1]"));
        assert_eq!(norm("[2001:DB8::1]:443").as_deref(), Ok("[2001:db8::1]"));
    }

    #[test]
    fn what_cannot_be_read_is_an_error() {
        for (raw, error) in [
            ("", HostError::Empty),
            (":443", HostError::Empty),
            ("b.example.com:https", HostError::Port),
            ("b.example.com:65536", HostError::Port),
            ("b.example.com:-1", HostError::Port),
            ("[::1", HostError::Ipv6),
            ("[::1]x", HostError::Ipv6),
            ("[not-ip]", HostError::Ipv6),
            ("::1", HostError::Name),
            ("b.example.com..", HostError::Name),
            ("b..example.com", HostError::Name),
            (".", HostError::Name),
            ("b%2e.example.com", HostError::Name),
            ("user@b.example.com", HostError::Name),
            ("b example.com", HostError::Name),
            ("b/example.com", HostError::Name),
            ("xn--zz.example.com", HostError::Name),
        ] {
            assert_eq!(norm(raw), Err(error), "{raw:?}");
        }
        assert_eq!(normalise(b"b\xff.example.com"), Err(HostError::Name));
    }

    #[test]
    fn exactly_one_label_under_the_base_addresses_a_tenant() {
        let base = "tenants.test";
        let label = |raw: &str| addressed_label(raw.as_bytes(), base);
        assert_eq!(label("acme.tenants.test").unwrap().as_deref(), Some("acme"));
        assert_eq!(
            label("ACME.Tenants.Test.:443").unwrap().as_deref(),
            Some("acme")
        );
        assert_eq!(
            label("bücher.tenants.test").unwrap().as_deref(),
            Some("xn--bcher-kva")
        );
        for outside in [
            "tenants.test",
            "tenants.test.",
            "xtenants.test",
            "acme.example",
            "[::1]",
        ] {
            assert_eq!(label(outside), Ok(None), "{outside}");
        }
        assert_eq!(label("a.acme.tenants.test"), Err(HostError::Depth));
        assert_eq!(label("acme.tenants.test.."), Err(HostError::Name));
    }

    #[test]
    fn base_domains_are_normalised_and_names_only() {
        assert_eq!(base_domain(""), Ok(None));
        assert_eq!(base_domain("  "), Ok(None));
        assert_eq!(
            base_domain(" Tenants.Example.COM. ").unwrap().as_deref(),
            Some("tenants.example.com")
        );
        assert_eq!(
            base_domain("bücher.example").unwrap().as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(base_domain("tenants.test:443"), Err(HostError::NotADomain));
        assert_eq!(base_domain("[::1]"), Err(HostError::NotADomain));
        assert_eq!(base_domain("a..b"), Err(HostError::Name));
    }
}
