//! Property-based fuzzing of everything that parses untrusted text: bearer
//! tokens, API keys, slugs, pagination cursors, durations and the other
//! request values. None may panic; what they accept must be exactly what
//! they document.
//!
//! Seeded and bounded: `TENANTRY_FUZZ_CASES` cases per property (256 in
//! `make test`, many more in `make fuzz`) from `TENANTRY_FUZZ_SEED` (fixed
//! unless set), so a failure reproduces from the printed seed.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use secrecy::ExposeSecret;
use tenantry_api::auth::{Authenticator, Issuer, ServiceKey, api_key};
use tenantry_core::{Cursor, Email, Name, Region, Scope, Scopes, Slug, TenantId};

fn cases() -> u32 {
    std::env::var("TENANTRY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn seed() -> u64 {
    std::env::var("TENANTRY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x7e4a_47e1)
}

/// A runner with the run's seed and case count; prints both on failure,
/// and a line `make fuzz` sums into its report on success.
#[expect(clippy::print_stdout, reason = "the fuzz report is read from stdout")]
fn check<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut bytes = [0_u8; 32];
    bytes[..8].copy_from_slice(&seed().to_le_bytes());
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    if let Err(e) = runner.run(&strategy, test) {
        panic!(
            "{name}: {e} (TENANTRY_FUZZ_SEED={} TENANTRY_FUZZ_CASES={})",
            seed(),
            cases()
        );
    }
    println!("fuzz {name}: {} cases, 0 failures", cases());
}

/// Any text, biased towards the characters the parsers care about.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9-]{0,70}",
        "[A-Za-z0-9_=.+/-]{0,300}",
        "\\PC{0,80}",
    ]
}

#[test]
fn slugs_parse_without_panicking_and_accept_only_the_documented_form() {
    check("slug", text(), |input| {
        if let Ok(slug) = Slug::parse(&input) {
            let s = slug.as_str();
            prop_assert_eq!(s, input.as_str());
            prop_assert!((2..=63).contains(&s.len()));
            prop_assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            );
            prop_assert!(!s.starts_with('-') && !s.ends_with('-'));
            prop_assert_eq!(Slug::parse(s).ok(), Some(slug.clone()));
            prop_assert!(s.parse::<TenantId>().is_err(), "{} is a slug and an id", s);
        }
        Ok(())
    });
    // Every id, in every form it parses from, is refused as a slug.
    check("slug from an id", any::<u128>(), |n| {
        let id = uuid::Uuid::from_u128(n);
        for form in [
            id.hyphenated().to_string(),
            id.simple().to_string(),
            id.hyphenated().to_string().to_uppercase(),
            id.simple().to_string().to_uppercase(),
        ] {
            prop_assert!(Slug::parse(&form).is_err(), "{} was accepted", form);
        }
        Ok(())
    });
}

#[test]
fn cursors_parse_without_panicking_and_round_trip() {
    check("cursor", text(), |input| {
        if let Some(cursor) = Cursor::parse(&input) {
            // What parses is exactly the encoding of one id: nothing else.
            prop_assert_eq!(cursor.encode(), input);
        }
        Ok(())
    });
    check("cursor round trip", any::<u128>(), |n| {
        let cursor = Cursor::after(uuid::Uuid::from_u128(n));
        prop_assert_eq!(Cursor::parse(&cursor.encode()), Some(cursor));
        Ok(())
    });
}

#[test]
fn durations_parse_without_panicking() {
    // The configuration and `tenantry token --ttl` read durations with
    // humantime; a hostile or mistyped value is an error, never a crash.
    check(
        "duration",
        prop_oneof![
            text(),
            "[0-9]{1,30}(ns|us|ms|s|m|h|d|w|y)( [0-9]{1,25}[a-z]{1,6}){0,3}"
        ],
        |input| {
            if let Ok(d) = humantime::parse_duration(&input) {
                // What parses means what it says: printed and read back,
                // it is the same duration.
                let printed = humantime::format_duration(d).to_string();
                prop_assert_eq!(humantime::parse_duration(&printed).ok(), Some(d));
            }
            Ok(())
        },
    );
}

#[test]
fn request_values_parse_without_panicking_and_respect_their_bounds() {
    check("name/email/region", text(), |input| {
        if let Ok(name) = Name::parse(&input) {
            let n = name.as_str().chars().count();
            prop_assert!((1..=200).contains(&n));
            prop_assert!(
                name.as_str()
                    .chars()
                    .all(|c| tenantry_core::input::misleading(c).is_none())
            );
        }
        if let Ok(email) = Email::parse(&input) {
            prop_assert!((3..=320).contains(&email.as_str().len()));
        }
        if let Ok(region) = Region::parse(&input) {
            prop_assert!((1..=64).contains(&region.as_str().len()));
        }
        Ok(())
    });
}

#[test]
fn api_keys_parse_without_panicking_and_only_their_own_layout() {
    check(
        "api key",
        prop_oneof![text(), "tnry_[A-Za-z0-9_-]{0,120}"],
        |input| {
            if let Some(key) = api_key::parse(&input) {
                prop_assert!(input.starts_with("tnry_"));
                let _ = key;
            }
            Ok(())
        },
    );
    let secret = tenantry_api::auth::generate_secret();
    check("api key round trip", any::<u128>(), |n| {
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(n));
        let minted = api_key::mint(&secret, tenant);
        let parsed = api_key::parse(minted.secret.expose_secret());
        prop_assert!(parsed.is_some_and(|k| k.tenant == tenant && k.id == minted.id));
        Ok(())
    });
}

#[test]
fn bearer_tokens_never_panic_the_verifier_and_no_mutation_is_accepted() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let settings = tenantry_tests::test_auth_settings();
    let pem = settings
        .signing_key
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let auth = Authenticator::new(&settings, &ServiceKey::from_pem(&pem).unwrap()).unwrap();
    let issuer = Issuer::new(&settings, ServiceKey::from_pem(&pem).unwrap());
    let scopes: Scopes = [Scope::TenantRead].into_iter().collect();
    let valid = issuer
        .sign(
            "fuzz",
            Some(TenantId::new()),
            &scopes,
            Duration::from_secs(300),
        )
        .unwrap();
    assert!(runtime.block_on(auth.verify(&valid)).is_ok());

    let segment = "[A-Za-z0-9_-]{0,200}";
    check(
        "token text",
        prop_oneof![
            text(),
            (segment, segment, segment).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        ],
        |input| {
            prop_assert!(input == valid || runtime.block_on(auth.verify(&input)).is_err());
            Ok(())
        },
    );
    // One changed character anywhere in a valid token.
    let len = valid.len();
    check("token mutation", (0..len, any::<u8>()), |(at, byte)| {
        let mut bytes = valid.clone().into_bytes();
        bytes[at] = byte;
        let Ok(mutated) = String::from_utf8(bytes) else {
            return Ok(());
        };
        if mutated != valid {
            let verdict = runtime.block_on(auth.verify(&mutated));
            prop_assert!(
                verdict.is_err(),
                "accepted a token changed at {}: {}",
                at,
                mutated
            );
        }
        Ok(())
    });
}
