//! The expand/contract rule of sql/README.md, checked: a migration whose
//! `up.sql` contracts the schema — drops or renames something, changes a
//! column's type, makes a column required, adds a constraint or a unique
//! index to an existing table, takes a privilege from the service — must
//! say so in a `contract.md` beside it, with the reason no running binary
//! needs what it takes away. Everything else only expands the schema, and
//! the previous release's binary serves the result (scripts/compat.sh).
//!
//! A lint over the SQL text, not a proof: it reads tokens, not a parse
//! tree, and cannot see what a replaced function body or a policy file
//! changes (sql/README.md says what review must still catch).

/// One contracting statement of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contraction {
    /// The statement, whitespace collapsed (at most 120 characters).
    pub(crate) statement: String,
    pub(crate) why: &'static str,
}

/// The contracting statements of one migration's `up.sql`.
pub(crate) fn contractions(up: &str) -> Vec<Contraction> {
    let mut created: Vec<String> = Vec::new();
    let mut found = Vec::new();
    for statement in crate::migrate::statements(up) {
        let tokens = tokens(statement);
        // DDL inside a DO block or a function body counts too: the body's
        // statements start after `;`, BEGIN, THEN, ELSE, LOOP.
        for sub in
            tokens.split(|t| matches!(t.as_str(), ";" | "BEGIN" | "THEN" | "ELSE" | "LOOP" | "DO"))
        {
            for why in judge(sub, &mut created) {
                found.push(Contraction {
                    statement: shown(statement),
                    why,
                });
            }
        }
    }
    found
}

/// The reason a `contract.md` gives: its first line that is not empty or a
/// heading, if it says something (at least three words).
pub(crate) fn marker_reason(contract_md: &str) -> Option<&str> {
    contract_md
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| l.split_whitespace().count() >= 3)
}

fn shown(statement: &str) -> String {
    let code: String = statement
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut text = code.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.len() > 120 {
        let mut cut = 117;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// Upper-cased words and the punctuation `( ) , ;`, without comments;
/// a quoted string becomes `''` (its text is data, not DDL); dollar quotes
/// are dropped so that a body's statements are read as code.
fn tokens(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
        } else if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            let mut depth = 0_usize;
            while i < bytes.len() {
                if sql[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if sql[i..].starts_with("*/") {
                    depth = depth.saturating_sub(1);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'\'' {
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push("''".to_owned());
        } else if c == b'$' {
            // $tag$ (not $1): a dollar quote, dropped.
            let end = sql[i + 1..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map(|n| i + 1 + n);
            match end {
                Some(end) if bytes[end] == b'$' => i = end + 1,
                _ => i += 1,
            }
        } else if matches!(c, b'(' | b')' | b',' | b';') {
            out.push((c as char).to_string());
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            let start = i;
            while i < bytes.len()
                && !bytes[i].is_ascii_whitespace()
                && !matches!(bytes[i], b'(' | b')' | b',' | b';' | b'\'')
                && (bytes[i] != b'-' || bytes.get(i + 1) != Some(&b'-'))
            {
                i += 1;
            }
            out.push(sql[start..i].trim_matches('"').to_ascii_uppercase());
        }
    }
    out
}

/// A table's name as a statement gives it, without `public.`.
fn table_name(token: Option<&String>) -> String {
    token
        .map(|t| t.trim_start_matches("PUBLIC.").to_owned())
        .unwrap_or_default()
}

/// What makes one (sub-)statement a contraction; records tables it creates.
fn judge(t: &[String], created: &mut Vec<String>) -> Vec<&'static str> {
    let word = |i: usize| t.get(i).map_or("", String::as_str);
    let mut why = Vec::new();
    if t.iter().any(|w| w == "RENAME") {
        why.push("renames something an older binary may name");
    }
    match (word(0), word(1)) {
        ("DROP", _) => why.push("drops something an older binary may use"),
        ("TRUNCATE", _) => why.push("deletes every row of a table"),
        ("CREATE", "TABLE") => {
            let mut at = 2;
            if word(2) == "IF" {
                at = 5; // IF NOT EXISTS
            }
            created.push(table_name(t.get(at)));
        }
        ("CREATE", "UNIQUE") => {
            // CREATE UNIQUE INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON [ONLY] table
            if let Some(on) = t.iter().position(|w| w == "ON") {
                let at = if word(on + 1) == "ONLY" {
                    on + 2
                } else {
                    on + 1
                };
                if !created.contains(&table_name(t.get(at))) {
                    why.push(
                        "adds a unique index to an existing table: it refuses writes an older binary may make",
                    );
                }
            }
        }
        ("ALTER", "TABLE") => {
            let mut at = 2;
            if word(at) == "IF" {
                at += 2; // IF EXISTS
            }
            if word(at) == "ONLY" {
                at += 1;
            }
            // A table of this same migration: no binary uses it yet.
            if !created.contains(&table_name(t.get(at))) {
                why.extend(alter_table_actions(&t[at + 1..]));
            }
        }
        ("ALTER", _) if drops_other_than_not_null(t) => {
            why.push("drops something an older binary may use");
        }
        ("REVOKE", _) => {
            if let Some(from) = t.iter().rposition(|w| w == "FROM")
                && t[from..]
                    .iter()
                    .any(|w| w == "TENANTRY_SERVICE" || w == "TENANTRY_APP")
            {
                why.push("takes a privilege from the service's role");
            }
        }
        _ => {}
    }
    why
}

/// `DROP` anywhere but in `DROP NOT NULL` (which only widens).
fn drops_other_than_not_null(t: &[String]) -> bool {
    t.iter()
        .enumerate()
        .any(|(i, w)| w == "DROP" && t.get(i + 1).is_none_or(|n| n != "NOT"))
}

/// The actions of `ALTER TABLE <existing table> ...`, split at top-level
/// commas.
fn alter_table_actions(rest: &[String]) -> Vec<&'static str> {
    let mut actions: Vec<&[String]> = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, w) in rest.iter().enumerate() {
        match w.as_str() {
            "(" => depth += 1,
            ")" => depth -= 1,
            "," if depth == 0 => {
                actions.push(&rest[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    actions.push(&rest[start..]);
    let mut why = Vec::new();
    for action in actions {
        let has = |a: &str, b: &str| action.windows(2).any(|w| w[0] == a && w[1] == b);
        match action.first().map(String::as_str) {
            Some("DROP") if action.get(1).is_none_or(|n| n != "NOT") => {
                why.push("drops a column, constraint or default an older binary may use");
            }
            Some("ALTER") => {
                if action.iter().any(|w| w == "TYPE") {
                    why.push("changes a column's type");
                }
                if has("SET", "NOT") {
                    why.push("makes a column NOT NULL: an older binary may write none");
                }
                if drops_other_than_not_null(action) {
                    why.push("drops a column's default or identity an older binary may rely on");
                }
            }
            Some("ADD") => match action.get(1).map(String::as_str) {
                Some("CONSTRAINT" | "CHECK" | "UNIQUE" | "PRIMARY" | "FOREIGN" | "EXCLUDE") => {
                    why.push(
                        "adds a constraint to an existing table: it refuses writes an older binary may make",
                    );
                }
                _ => {
                    let defaulted = action.iter().any(|w| w == "DEFAULT" || w == "GENERATED");
                    if has("NOT", "NULL") && !defaulted {
                        why.push(
                            "adds a NOT NULL column without a default: an older binary's inserts fail",
                        );
                    }
                }
            },
            _ => {}
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn whys(sql: &str) -> Vec<&'static str> {
        contractions(sql).into_iter().map(|c| c.why).collect()
    }

    #[test]
    fn expanding_statements_pass() {
        let sql = "
            -- a comment may say DROP TABLE users; it is not code
            CREATE TABLE notes (
                tenant_id uuid NOT NULL REFERENCES tenants (id),
                id uuid NOT NULL,
                body text NOT NULL CHECK (char_length(body) <= 200),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE UNIQUE INDEX notes_body ON notes (tenant_id, body);
            ALTER TABLE notes ADD CONSTRAINT notes_short CHECK (char_length(body) < 100);
            ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
            ALTER TABLE users ADD COLUMN nickname text;
            ALTER TABLE users ADD COLUMN tier smallint NOT NULL DEFAULT 1 CONSTRAINT users_tier CHECK (tier IN (1, 2));
            ALTER TABLE users ALTER COLUMN name DROP NOT NULL, ALTER COLUMN name SET DEFAULT '';
            CREATE INDEX users_created ON users (tenant_id, created_at);
            CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'DROP TABLE users' $$;
            GRANT SELECT ON notes TO tenantry_service;
            REVOKE ALL ON notes FROM PUBLIC;
            INSERT INTO audit_events (actor, action) VALUES ('x', 'rename');
        ";
        assert_eq!(contractions(sql), vec![]);
    }

    #[test]
    fn contracting_statements_are_found() {
        for (sql, expected) in [
            ("DROP TABLE users;", "drops something"),
            ("DROP INDEX IF EXISTS users_created;", "drops something"),
            ("ALTER TABLE users DROP COLUMN name;", "drops a column"),
            ("ALTER TABLE users DROP name;", "drops a column"),
            (
                "ALTER TABLE users DROP CONSTRAINT users_email;",
                "drops a column",
            ),
            (
                "ALTER TABLE users RENAME COLUMN name TO full_name;",
                "renames",
            ),
            ("ALTER TABLE users RENAME TO people;", "renames"),
            (
                "ALTER TABLE users ALTER COLUMN name TYPE varchar(50);",
                "type",
            ),
            (
                "ALTER TABLE users ALTER name SET DATA TYPE varchar(50);",
                "type",
            ),
            (
                "ALTER TABLE users ALTER COLUMN name SET NOT NULL;",
                "NOT NULL",
            ),
            (
                "ALTER TABLE ONLY users ALTER COLUMN name DROP DEFAULT;",
                "default",
            ),
            (
                "ALTER TABLE users ADD COLUMN tier smallint NOT NULL;",
                "without a default",
            ),
            (
                "ALTER TABLE users ADD CONSTRAINT c CHECK (name <> '') NOT VALID;",
                "constraint",
            ),
            (
                "ALTER TABLE users ADD UNIQUE (tenant_id, name);",
                "constraint",
            ),
            (
                "CREATE UNIQUE INDEX users_name ON users (tenant_id, name);",
                "unique index",
            ),
            ("ALTER TYPE status RENAME VALUE 'a' TO 'b';", "renames"),
            ("REVOKE SELECT ON users FROM tenantry_service;", "privilege"),
            ("TRUNCATE events;", "every row"),
            (
                "DO $$ BEGIN IF true THEN EXECUTE 'x'; DROP FUNCTION f(); END IF; END $$;",
                "drops something",
            ),
            (
                "ALTER TABLE users ADD COLUMN ok text, ALTER COLUMN email TYPE text;",
                "type",
            ),
        ] {
            let found = whys(sql);
            assert!(
                found.iter().any(|w| w.contains(expected)),
                "{sql}: {found:?}"
            );
        }
    }

    #[test]
    fn a_marker_needs_a_reason() {
        assert_eq!(marker_reason(""), None);
        assert_eq!(marker_reason("# Contract\n\nyes\n"), None);
        assert_eq!(
            marker_reason("# Contract\n\nDrops x: nothing reads it since 0.12.\n"),
            Some("Drops x: nothing reads it since 0.12.")
        );
    }

    /// The rule itself, over every migration in sql/: one that contracts
    /// carries `contract.md` with its reason.
    #[test]
    fn every_contracting_migration_says_so_in_its_contract_md() {
        let sql = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql");
        let mut failures = Vec::new();
        for migration in crate::migrate::MIGRATIONS {
            let found = contractions(migration.up);
            if found.is_empty() {
                continue;
            }
            let marker = std::fs::read_to_string(sql.join(migration.version).join("contract.md"))
                .unwrap_or_default();
            if marker_reason(&marker).is_none() {
                let list: Vec<String> = found
                    .iter()
                    .map(|c| format!("    {} ({})", c.statement, c.why))
                    .collect();
                failures.push(format!(
                    "{}: contracts the schema, but sql/{}/contract.md gives no reason:\n{}",
                    migration.version,
                    migration.version,
                    list.join("\n")
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "a migration may only expand the schema (sql/README.md); a contract step \
             ships in a later release than the code that stops using what it removes, \
             with sql/<migration>/contract.md saying why no running binary needs it:\n{}",
            failures.join("\n")
        );
    }
}
