//! Progress on stderr for long commands (`tenants import`, `sweep`).
//!
//! At a terminal: one status line, redrawn in place (at most ten times a
//! second) and cleared before any line that stays. Anywhere else (a pipe,
//! a file, a CI log): no redrawing and no escape sequences, only the plain
//! lines the command chooses to keep, so logs stay readable and tests can
//! read them.
//!
//! Own code rather than a progress-bar crate: a status line and plain
//! lines are all the CLI draws.

use std::io::{IsTerminal as _, Write};
use std::time::{Duration, Instant};

/// How often a terminal's status line is redrawn at most.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// A progress writer; see the module documentation.
#[derive(Debug)]
pub struct Progress<W: Write> {
    out: W,
    terminal: bool,
    /// A status line is on the screen (terminal only).
    drawn: bool,
    last_draw: Option<Instant>,
}

impl Progress<std::io::Stderr> {
    /// Progress on stderr, drawing a status line if stderr is a terminal.
    #[must_use]
    pub fn stderr() -> Self {
        let terminal = std::io::stderr().is_terminal();
        Self::new(std::io::stderr(), terminal)
    }
}

impl<W: Write> Progress<W> {
    #[must_use]
    pub fn new(out: W, terminal: bool) -> Self {
        Self {
            out,
            terminal,
            drawn: false,
            last_draw: None,
        }
    }

    /// Whether this draws a status line (a person at a terminal).
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// A status that changes often: redrawn in place at a terminal (the
    /// text is made only when it is drawn), nothing elsewhere.
    pub fn status(&mut self, text: impl FnOnce() -> String) {
        if !self.terminal {
            return;
        }
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|last| now.duration_since(last) < REDRAW_EVERY)
        {
            return;
        }
        self.last_draw = Some(now);
        // \r: back to the start of the line; ESC[K: erase to its end.
        let _ = write!(self.out, "\r{}\x1b[K", text());
        let _ = self.out.flush();
        self.drawn = true;
    }

    /// A line that stays, at a terminal and elsewhere alike.
    pub fn line(&mut self, text: &str) {
        self.clear();
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// Removes the status line, if one is drawn.
    pub fn clear(&mut self) {
        if self.drawn {
            let _ = write!(self.out, "\r\x1b[K");
            let _ = self.out.flush();
            self.drawn = false;
            // The next status is drawn at once, not a redraw period later.
            self.last_draw = None;
        }
    }
}

impl<W: Write> Drop for Progress<W> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Rows done per table, reported as they are done: plain lines every
/// `every` rows of a table and when the rows move on to another table (or
/// end); at a terminal, a status line with every table's count.
#[derive(Debug)]
pub struct RowCounter<W: Write> {
    progress: Progress<W>,
    verb: &'static str,
    every: u64,
    /// Rows per table, in the order the tables came.
    counts: Vec<(&'static str, u64)>,
    /// The table of the last row, and whether its count was just printed.
    current: Option<(&'static str, bool)>,
}

impl<W: Write> RowCounter<W> {
    /// `verb` opens every line: "imported 10000 rows of users".
    #[must_use]
    pub fn new(progress: Progress<W>, verb: &'static str, every: u64) -> Self {
        Self {
            progress,
            verb,
            every: every.max(1),
            counts: Vec::new(),
            current: None,
        }
    }

    fn count(&self, table: &str) -> u64 {
        self.counts
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n)
    }

    fn print(&mut self, table: &str) {
        let n = self.count(table);
        let text = format!("{} {n} rows of {table}", self.verb);
        self.progress.line(&text);
    }

    /// One more row of `table` is done.
    pub fn row(&mut self, table: &'static str) {
        if let Some((previous, printed)) = self.current
            && previous != table
            && !printed
        {
            self.print(previous);
        }
        let n = match self.counts.iter_mut().find(|(t, _)| *t == table) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.counts.push((table, 1));
                1
            }
        };
        let printed = !self.progress.is_terminal() && n % self.every == 0;
        if printed {
            self.print(table);
        }
        self.current = Some((table, printed));
        let (verb, counts) = (self.verb, &self.counts);
        self.progress.status(|| {
            let done: Vec<String> = counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
            format!("{verb}: {}", done.join(", "))
        });
    }

    /// The rows are done: the last table's line, if not just printed.
    pub fn finish(&mut self) {
        if let Some((table, false)) = self.current.take() {
            self.print(table);
        }
        self.progress.clear();
    }

    /// All rows counted so far.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    /// A line that stays, between the counts.
    pub fn line(&mut self, text: &str) {
        self.progress.line(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn piped_output_is_plain_lines_every_n_rows_and_per_table() {
        let mut out = Vec::new();
        let mut counter = RowCounter::new(Progress::new(&mut out, false), "imported", 2);
        for table in ["users", "users", "users", "clusters", "events", "events"] {
            counter.row(table);
        }
        counter.finish();
        assert_eq!(counter.total(), 6);
        drop(counter);
        assert_eq!(
            text(&out),
            "imported 2 rows of users\n\
             imported 3 rows of users\n\
             imported 1 rows of clusters\n\
             imported 2 rows of events\n",
            "no repeat of a count just printed, no escape sequences"
        );
    }

    #[test]
    fn a_terminal_gets_a_status_line_redrawn_in_place_then_cleared() {
        let mut out = Vec::new();
        let mut progress = Progress::new(&mut out, true);
        progress.status(|| "importing: users 1".to_owned());
        // Within the redraw period: not drawn (and the text not even made).
        progress.status(|| unreachable!("throttled"));
        progress.line("done");
        progress.status(|| "importing: users 2".to_owned());
        drop(progress);
        assert_eq!(
            text(&out),
            "\rimporting: users 1\x1b[K\r\x1b[Kdone\n\rimporting: users 2\x1b[K\r\x1b[K"
        );
    }

    #[test]
    fn a_terminal_gets_no_periodic_lines_only_the_tables_done() {
        let mut out = Vec::new();
        let mut counter = RowCounter::new(Progress::new(&mut out, true), "imported", 1);
        counter.row("users");
        counter.row("users");
        counter.finish();
        drop(counter);
        let out = text(&out);
        assert!(out.starts_with("\rimported: users 1\x1b[K"), "{out:?}");
        assert!(
            out.ends_with("\r\x1b[Kimported 2 rows of users\n"),
            "{out:?}"
        );
        assert_eq!(out.matches("rows of users").count(), 1, "{out:?}");
    }
}
