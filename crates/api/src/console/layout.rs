//! The console's page shell and the small pieces every page uses: times
//! (absolute and relative), numbers, pagers, notices.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::session::Session;

/// The navigation's entries; the current page's is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Tenants,
    Accounts,
    Plans,
    Retention,
    Audit,
    /// A page that is none of the entries (errors): the navigation is
    /// shown with no entry current.
    None,
    /// No navigation at all (sign-in).
    Hidden,
}

const ENTRIES: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "/console/overview", "Overview"),
    (Nav::Tenants, "/console/tenants", "Tenants"),
    (Nav::Accounts, "/console/accounts", "Accounts"),
    (Nav::Plans, "/console/plans", "Plans"),
    (Nav::Retention, "/console/retention", "Retention"),
    (Nav::Audit, "/console/audit", "Audit log"),
];

/// A whole page: skip link, header (who is signed in, sign-out), the
/// navigation, and `body` under one `<h1>`.
#[must_use]
pub fn page(session: Option<&Session>, title: &str, nav: Nav, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · Tenantry console" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console/overview" { "Tenantry console" }
                    @if let Some(s) = session {
                        div.who {
                            span { "Signed in as " strong { (s.subject) } }
                            form method="post" action="/console/sign-out" {
                                (csrf_field(s))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                @if nav != Nav::Hidden {
                    nav aria-label="Console" {
                        ul {
                            @for (entry, href, label) in ENTRIES {
                                li {
                                    @if *entry == nav {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// `markup` as an HTML answer with `status`.
#[must_use]
pub fn respond(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// `200 OK` with a whole page.
#[must_use]
pub fn ok(session: &Session, title: &str, nav: Nav, body: Markup) -> HttpResponse {
    respond(StatusCode::OK, page(Some(session), title, nav, body))
}

/// `303 See Other` to `location` (after a form: the browser GETs it).
#[must_use]
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The hidden CSRF field every form posted by a signed-in admin carries.
#[must_use]
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A time as people read it: absolute (UTC) and relative ("3 h ago"); the
/// script keeps the relative part current.
#[must_use]
pub fn time(at: DateTime<Utc>) -> Markup {
    time_at(at, Utc::now())
}

fn time_at(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
            (at.format("%Y-%m-%d %H:%M UTC"))
            " "
            span.rel { "(" (relative(at, now)) ")" }
        }
    }
}

/// "in 3 days", "5 min ago", "just now".
#[must_use]
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    let abs = secs.unsigned_abs();
    let amount = match abs {
        0..45 => return "just now".to_owned(),
        45..5400 => format!("{} min", (abs + 30) / 60),
        5400..129_600 => format!("{} h", (abs + 1800) / 3600),
        _ => {
            let days = (abs + 43_200) / 86_400;
            if days == 1 {
                "1 day".to_owned()
            } else {
                format!("{days} days")
            }
        }
    };
    if secs < 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// `1234567` as `1,234,567`.
#[must_use]
pub fn number(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Percent-escapes `s` for a query string value.
#[must_use]
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A "Next page" link when there is one: `base` is the page's URL with
/// its filters (`?a=b&` or `?`), the cursor is appended.
#[must_use]
pub fn pager(next_cursor: Option<&str>, base: &str) -> Markup {
    html! {
        @if let Some(cursor) = next_cursor {
            nav.pager aria-label="Pages" {
                a rel="next" href={ (base) "cursor=" (query_escape(cursor)) } { "Next page" }
            }
        }
    }
}

/// A message confirming what the last action did (`role="status"`).
#[must_use]
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            div.notice role="status" { (text) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_thousands_separators() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(1000), "1,000");
        assert_eq!(number(-1_234_567), "-1,234,567");
        assert_eq!(number(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn relative_times_read_both_ways() {
        let now = Utc::now();
        assert_eq!(relative(now, now), "just now");
        assert_eq!(
            relative(now - chrono::Duration::minutes(5), now),
            "5 min ago"
        );
        assert_eq!(relative(now + chrono::Duration::hours(3), now), "in 3 h");
        assert_eq!(
            relative(now + chrono::Duration::days(90), now),
            "in 90 days"
        );
        assert_eq!(relative(now - chrono::Duration::days(1), now), "24 h ago");
        assert_eq!(relative(now - chrono::Duration::days(2), now), "2 days ago");
    }

    #[test]
    fn text_is_escaped_in_pages_and_queries() {
        let page = page(None, "<script>x</script>", Nav::Hidden, html! {});
        assert!(!page.into_string().contains("<script>x"));
        assert_eq!(
            query_escape("/console/t?a=b&c"),
            "%2Fconsole%2Ft%3Fa%3Db%26c"
        );
    }
}
