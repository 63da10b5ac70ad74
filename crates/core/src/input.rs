//! Parsed request values. Each `parse` returns a message naming what is
//! wrong; the API turns it into a 422 naming the field. The same parsers
//! check every row `tenantry tenants import` reads.

/// Why `c` must not appear in text a person reads, or `None` if it may:
/// control characters (newlines, ANSI escapes; also the line and paragraph
/// separators), bidirectional controls (they reorder what is displayed
/// around them: `"invoice\u{202E}fdp.exe"` reads as `invoiceexe.pdf`), and
/// invisible characters (zero-width and other format or filler characters
/// that make two different strings look the same, or a blank one look
/// like a name).
#[must_use]
pub const fn misleading(c: char) -> Option<&'static str> {
    match c {
        '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{2028}' | '\u{2029}' => {
            Some("control characters")
        }
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => Some("bidirectional control characters"),
        '\u{00AD}'
        | '\u{034F}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{17B4}'
        | '\u{17B5}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200D}'
        | '\u{2060}'..='\u{2065}'
        | '\u{206A}'..='\u{206F}'
        | '\u{2800}'
        | '\u{3164}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E007F}' => Some("invisible characters"),
        _ => None,
    }
}

/// Refuses text holding a [`misleading`] character, naming the first one
/// and where it is (`U+202E at character 8`).
pub fn readable(input: &str) -> Result<(), String> {
    match input
        .chars()
        .enumerate()
        .find_map(|(i, c)| misleading(c).map(|what| (i, c, what)))
    {
        None => Ok(()),
        Some((i, c, what)) => Err(format!(
            "must not contain {what} (U+{:04X} at character {})",
            u32::from(c),
            i + 1
        )),
    }
}

/// A display name: 1–200 characters after trimming, nothing [`misleading`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        let len = trimmed.chars().count();
        if len == 0 || len > 200 {
            return Err("must be 1 to 200 characters".to_owned());
        }
        readable(trimmed)?;
        Ok(Self(trimmed.to_owned()))
    }

    /// A name that may be left out: `""` is none, anything else must parse
    /// (a user's name).
    pub fn parse_optional(input: &str) -> Result<Option<Self>, String> {
        if input.is_empty() {
            return Ok(None);
        }
        Self::parse(input).map(Some)
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
            return Err("must not contain whitespace or control characters".to_owned());
        }
        readable(input)?;
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

/// An instance's `cpu_cores`: 1 to [`MAX_CPU_CORES`].
pub fn cpu_cores(value: i64) -> Result<i32, String> {
    bounded(value, 1, MAX_CPU_CORES)
}

/// An instance's `memory_gb`: 1 to [`MAX_MEMORY_GB`].
pub fn memory_gb(value: i64) -> Result<i32, String> {
    bounded(value, 1, MAX_MEMORY_GB)
}

/// An instance's `storage_gb`: 0 to [`MAX_STORAGE_GB`].
pub fn storage_gb(value: i64) -> Result<i32, String> {
    bounded(value, 0, MAX_STORAGE_GB)
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

    /// Every character the parsers refuse as misleading, by kind.
    const CONTROLS: &[char] = &[
        '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}',
    ];
    const BIDI: &[char] = &[
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
    ];
    const INVISIBLE: &[char] = &[
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{2060}',
        '\u{FEFF}',
        '\u{00AD}',
        '\u{180E}',
        '\u{2061}',
        '\u{2064}',
        '\u{3164}',
        '\u{FFA0}',
        '\u{115F}',
        '\u{2800}',
        '\u{E0041}',
    ];

    #[test]
    fn names_refuse_control_bidi_and_invisible_characters_naming_them() {
        for (chars, kind) in [
            (CONTROLS, "control characters"),
            (BIDI, "bidirectional control characters"),
            (INVISIBLE, "invisible characters"),
        ] {
            for &c in chars {
                let input = format!("ab{c}cd");
                let error = Name::parse(&input).unwrap_err();
                assert_eq!(
                    error,
                    format!(
                        "must not contain {kind} (U+{:04X} at character 3)",
                        u32::from(c)
                    ),
                    "{input:?}"
                );
                assert!(
                    Email::parse(&format!("a{c}b@example.com")).is_err(),
                    "{c:?}"
                );
                assert!(Name::parse_optional(&input).is_err(), "{c:?}");
            }
        }
        // The Trojan Source name: displayed as "invoiceexe.pdf".
        assert!(Name::parse("invoice\u{202E}fdp.exe").is_err());
        assert!(Email::parse("ada\u{200B}@example.com").is_err());
    }

    #[test]
    fn names_in_any_script_with_emoji_still_parse() {
        for name in [
            "Zoë",
            "東京チーム",
            "مرحبا بالعالم",
            "שלום",
            "Ünïcödé ✓",
            "🚀 launch",
            "café\u{301}",
        ] {
            assert_eq!(Name::parse(name).unwrap().as_str(), name);
        }
        assert!(Email::parse("zoë@exämple.com").is_ok());
    }

    #[test]
    fn an_optional_name_may_be_empty_but_not_blank() {
        assert_eq!(Name::parse_optional(""), Ok(None));
        assert!(Name::parse_optional("   ").is_err());
        assert_eq!(
            Name::parse_optional(" Ada ").unwrap().unwrap().as_str(),
            "Ada"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        #[test]
        fn no_parsed_name_or_email_holds_a_misleading_character(input in "\\PC{0,40}|.{0,40}") {
            if let Ok(name) = Name::parse(&input) {
                proptest::prop_assert!(name.as_str().chars().all(|c| misleading(c).is_none()));
            }
            if let Ok(email) = Email::parse(&input) {
                proptest::prop_assert!(email.as_str().chars().all(|c| misleading(c).is_none()));
            }
        }

        #[test]
        fn one_misleading_character_inside_a_valid_name_is_refused(
            name in "[A-Za-zé東 ]{1,20}",
            at in 0_usize..20,
            c in proptest::sample::select([CONTROLS, BIDI, INVISIBLE].concat()),
        ) {
            let chars: Vec<char> = format!("x{name}x").chars().collect();
            let at = 1 + at % (chars.len() - 1);
            let mut evil: String = chars[..at].iter().collect();
            evil.push(c);
            evil.extend(&chars[at..]);
            proptest::prop_assert!(Name::parse(&evil).is_err(), "{:?}", evil);
        }
    }

    #[test]
    fn instance_sizes_use_the_documented_bounds() {
        assert_eq!(cpu_cores(MAX_CPU_CORES), Ok(1024));
        assert!(cpu_cores(0).is_err() && cpu_cores(500_000).is_err());
        assert!(memory_gb(0).is_err() && memory_gb(MAX_MEMORY_GB + 1).is_err());
        assert_eq!(storage_gb(0), Ok(0));
        assert!(storage_gb(-1).is_err());
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
