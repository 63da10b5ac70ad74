//! Parsed request values. Each `parse` returns a message naming what is
//! wrong; the API turns it into a 422 naming the field.

/// A display name: 1–200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        let len = trimmed.chars().count();
        if len == 0 || len > 200 {
            return Err("must be 1 to 200 characters".to_owned());
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters".to_owned());
        }
        Ok(Self(trimmed.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A region code such as `eu-west-1`: 1–64 of `[a-z0-9-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region(String);

impl Region {
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.is_empty() || input.len() > 64 {
            return Err("must be 1 to 64 characters".to_owned());
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("may contain only lowercase letters, digits and hyphens".to_owned());
        }
        Ok(Self(input.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, as far as a service without mail can tell: one `@`
/// with something on both sides, no whitespace or control characters, at
/// most 320 characters. Compared case-insensitively by the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, String> {
        let input = input.trim();
        if input.len() < 3 || input.len() > 320 {
            return Err("must be 3 to 320 characters".to_owned());
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace".to_owned());
        }
        match input.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Self(input.to_owned()))
            }
            _ => Err("must look like name@domain".to_owned()),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Bounds on what one instance may ask for.
pub const MAX_CPU_CORES: i64 = 1024;
pub const MAX_MEMORY_GB: i64 = 65_536;
pub const MAX_STORAGE_GB: i64 = 1_048_576;

/// An integer within `[min, max]`, as an `i32` for the database.
pub fn bounded(value: i64, min: i64, max: i64) -> Result<i32, String> {
    if value < min || value > max {
        return Err(format!("must be between {min} and {max}"));
    }
    i32::try_from(value).map_err(|_| format!("must be between {min} and {max}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse("  web  ").unwrap().as_str(), "web");
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"x".repeat(201)).is_err());
        assert!(Name::parse("a\u{0}b").is_err());
        assert!(Name::parse(&"é".repeat(200)).is_ok());
    }

    #[test]
    fn regions_are_lowercase_codes() {
        assert!(Region::parse("eu-west-1").is_ok());
        assert!(Region::parse("EU").is_err());
        assert!(Region::parse("").is_err());
        assert!(Region::parse("eu west").is_err());
    }

    #[test]
    fn emails_need_one_at_with_both_sides() {
        assert!(Email::parse("ada@example.com").is_ok());
        for bad in [
            "ada",
            "@example.com",
            "ada@",
            "a@b@c",
            "a da@example.com",
            "a\n@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bounded_refuses_values_outside_the_range() {
        assert_eq!(bounded(4, 1, MAX_CPU_CORES), Ok(4));
        assert!(bounded(0, 1, MAX_CPU_CORES).is_err());
        assert!(bounded(MAX_CPU_CORES + 1, 1, MAX_CPU_CORES).is_err());
        assert!(bounded(i64::MAX, 0, i64::MAX).is_err());
    }
}
