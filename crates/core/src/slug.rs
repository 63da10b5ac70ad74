//! Tenant slugs: the human-readable, URL-safe tenant name.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Words a tenant may not take as its slug: they collide with routes, hosts
/// or operator vocabulary.
const RESERVED: &[&str] = &[
    "admin", "api", "app", "auth", "default", "internal", "metrics", "platform", "root", "static",
    "status", "system", "tenantry", "www",
];

/// A validated slug: 2–63 characters of `[a-z0-9-]`, no leading or trailing
/// hyphen, not a reserved word, and never anything that parses as a UUID
/// (an address is one thing: `/v1/admin/tenants/{id_or_slug}` reads a UUID
/// as an id, so a slug shaped like one could stand for another tenant).
/// The only way to get one is [`Slug::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("slug must be 2 to 63 characters long")]
    Length,
    #[error("slug may contain only lowercase letters, digits and hyphens")]
    Charset,
    #[error("slug may not start or end with a hyphen")]
    Hyphen,
    #[error("slug '{0}' is reserved")]
    Reserved(String),
    #[error("slug may not be a UUID (in any form): UUIDs address tenants by id")]
    LooksLikeId,
}

impl Slug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        if !(2..=63).contains(&input.len()) {
            return Err(SlugError::Length);
        }
        // Before the charset, so an upper-case id is told why, too.
        if looks_like_id(input) {
            return Err(SlugError::LooksLikeId);
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SlugError::Charset);
        }
        if input.starts_with('-') || input.ends_with('-') {
            return Err(SlugError::Hyphen);
        }
        if RESERVED.contains(&input) {
            return Err(SlugError::Reserved(input.to_owned()));
        }
        Ok(Self(input.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `key` parses as a UUID in any form the `uuid` crate reads
/// (hyphenated, simple, braced, URN; any case): such a key is only ever an
/// id, never a slug.
#[must_use]
pub fn looks_like_id(key: &str) -> bool {
    uuid::Uuid::try_parse(key).is_ok()
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Slug::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_slugs() {
        for ok in ["ab", "acme", "acme-corp", "a1", "0-9", &"a".repeat(63)] {
            assert_eq!(Slug::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_bad_length() {
        assert_eq!(Slug::parse("a"), Err(SlugError::Length));
        assert_eq!(Slug::parse(""), Err(SlugError::Length));
        assert_eq!(Slug::parse(&"a".repeat(64)), Err(SlugError::Length));
    }

    #[test]
    fn rejects_characters_outside_the_charset() {
        for bad in ["Acme", "ac_me", "ac me", "acmé", "ac.me", "ac/me", "ac\0me"] {
            assert_eq!(Slug::parse(bad), Err(SlugError::Charset), "{bad:?}");
        }
    }

    #[test]
    fn rejects_leading_or_trailing_hyphens() {
        assert_eq!(Slug::parse("-acme"), Err(SlugError::Hyphen));
        assert_eq!(Slug::parse("acme-"), Err(SlugError::Hyphen));
    }

    #[test]
    fn rejects_reserved_words() {
        assert!(matches!(Slug::parse("admin"), Err(SlugError::Reserved(_))));
        assert!(matches!(Slug::parse("www"), Err(SlugError::Reserved(_))));
    }

    #[test]
    fn rejects_anything_that_parses_as_a_uuid() {
        let id = uuid::Uuid::now_v7();
        for bad in [
            id.hyphenated().to_string(),
            id.simple().to_string(),
            id.hyphenated().to_string().to_uppercase(),
            id.simple().to_string().to_uppercase(),
            id.braced().to_string(),
            id.urn().to_string(),
            "00000000-0000-0000-0000-000000000000".to_owned(),
        ] {
            let err = Slug::parse(&bad).unwrap_err();
            assert!(err.to_string().contains("UUID"), "{bad}: {err}");
        }
        // Hex that is not a UUID is an ordinary slug.
        for ok in [
            "deadbeef",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789ab-cdef-0123-4567-89abcdef",
        ] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_key_is_an_id_exactly_when_it_is_no_slug() {
        let id = uuid::Uuid::now_v7();
        for key in [
            id.hyphenated().to_string(),
            id.simple().to_string().to_uppercase(),
            id.braced().to_string(),
            id.urn().to_string(),
            "acme".to_owned(),
            "deadbeef".to_owned(),
            format!("{}0", id.simple()),
        ] {
            let is_id = key.parse::<crate::TenantId>().is_ok();
            assert_eq!(looks_like_id(&key), is_id, "{key}");
            assert!(!(is_id && Slug::parse(&key).is_ok()), "{key} is both");
        }
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<Slug>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<Slug>("\"-acme\"").is_err());
    }
}
