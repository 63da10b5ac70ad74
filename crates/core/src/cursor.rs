//! Pagination cursors: the last id of a page, URL-safe base64 without
//! padding. Opaque to clients; anything this API did not hand out is
//! refused, never guessed at.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

/// A parsed `cursor` parameter: the id the next page starts after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(Uuid);

/// Longest cursor text looked at (an encoded id is 22 characters).
pub const MAX_CURSOR_LEN: usize = 64;

impl Cursor {
    #[must_use]
    pub const fn after(id: Uuid) -> Self {
        Self(id)
    }

    /// `None` for anything that is not a cursor this API returned.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() > MAX_CURSOR_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Uuid::from_slice(&bytes).ok().map(Self)
    }

    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    #[must_use]
    pub const fn id(&self) -> Uuid {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let id = Uuid::from_u128(0x0192_3456_789a_7bcd_8ef0_1234_5678_9abc);
        let text = Cursor::after(id).encode();
        assert_eq!(text.len(), 22);
        assert_eq!(Cursor::parse(&text), Some(Cursor::after(id)));
        for bad in [
            "",
            "!!",
            "AAAA",
            "x".repeat(65).as_str(),
            &format!("{text}="),
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
