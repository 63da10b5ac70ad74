//! Hostile and edge-case bearer tokens: every one is refused with 401, never 200 or 500.
