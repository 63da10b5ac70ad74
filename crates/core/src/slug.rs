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
/// hyphen, not a reserved word. The only way to get one is [`Slug::parse`].
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
}

impl Slug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        if !(2..=63).contains(&input.len()) {
            return Err(SlugError::Length);
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
    fn deserializing_validates() {
        assert!(serde_json::from_str::<Slug>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<Slug>("\"-acme\"").is_err());
    }
}
