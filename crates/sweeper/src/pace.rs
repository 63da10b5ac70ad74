//! How fast the purge goes: a pure controller (no I/O, no clock of its
//! own) that the sweep loop feeds one [`Observation`] per batch and asks
//! for the next batch size and pause.
//!
//! Additive increase, multiplicative decrease, on both knobs at once:
//! - calm (no signal of pressure): the batch grows by a tenth of the cap
//!   (`batch_size`) per batch up to the cap, and the pause shrinks by a
//!   quarter towards `batch_pause` (the shortest pause, a speed cap);
//! - pressure: the batch halves (down to [`FLOOR_ROWS`]) and the pause
//!   doubles (from at least [`FIRST_BACKOFF`]) up to `max_batch_pause`.
//!
//! Pressure is any of: the batch itself took longer than
//! `target_batch_latency`; client backends writing dirty buffers out
//! faster than [`BACKEND_WRITES_PER_SECOND`] while there is traffic (the
//! purge's dirty pages being evicted on requests' time); inside `serve`,
//! the service's recent request latency risen against its own baseline
//! ([`RequestLoad`]). A purge alone on an idle database sees none of these
//! and runs at the cap with `batch_pause`, as before.
//!
//! Other active sessions ([`Observation::other_active`]) say that there is
//! traffic, not that it suffers, and are no pressure by themselves: with
//! them counted as pressure (more than twice the CPUs), a purge under the
//! bench's 32 reading connections sat at the floor and the longest pause
//! and removed 1,000,000 rows in 634 s (1,600 rows/s; a run that shared
//! the machine with the test suite) while the reads' p99 rose 1.25×
//! (bench/NOTES.md). What they do decide is whether backend
//! writes are the purge's own (no traffic) or evictions on the requests'
//! time.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The smallest batch the pacer backs off to (or the cap, when smaller):
/// a batch's fixed cost (BEGIN, the contexts, the progress update, COMMIT)
/// stays under its rows' cost from about here.
pub const FLOOR_ROWS: i64 = 100;

/// The first pause of a backoff when `batch_pause` is zero (doubling zero
/// would stay zero).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(5);

/// Client backends writing out more dirty buffers than this per second
/// (≈ 4 MB/s of 8 kB pages) count as pressure while there is traffic:
/// PostgreSQL's default background writer cleans at most 500 buffers per
/// second (`bgwriter_lru_maxpages = 100` every `bgwriter_delay = 200ms`),
/// so beyond it the backends, readers included, are doing its work on
/// their requests' time (bench/NOTES.md, the purge at 100,000 tenants).
pub const BACKEND_WRITES_PER_SECOND: f64 = 500.0;

/// Backend writes count only this long after other active backends were
/// last seen: without traffic, the writes are the purge's own.
pub const TRAFFIC_MEMORY: Duration = Duration::from_secs(2);

/// The request latency counts as risen at this ratio to its baseline…
pub const REQUEST_SLOWDOWN: f64 = 1.25;
/// …and by at least this much (sub-millisecond noise is not pressure).
pub const REQUEST_SLOWDOWN_MIN: Duration = Duration::from_micros(500);

/// The limits the pacer works within (`[retention]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Pace at all; `false`: every batch is `cap` rows, every pause `min_pause`.
    pub adaptive: bool,
    /// `batch_size`: the largest batch.
    pub cap: i64,
    /// `batch_pause`: the shortest pause.
    pub min_pause: Duration,
    /// `max_batch_pause`: the longest pause.
    pub max_pause: Duration,
    /// `target_batch_latency`: a slower batch is pressure.
    pub target_latency: Duration,
}

/// What was seen of one batch and of the database right after it.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    /// When (monotonic).
    pub at: Instant,
    /// How long the batch's transaction took, round trips included.
    pub latency: Duration,
    /// Other active backends of the service's role (`pg_stat_activity`,
    /// the sweeper's own excluded): traffic, when more than none; `None`:
    /// not sampled.
    pub other_active: Option<u32>,
    /// Buffers written by client backends since the server's statistics
    /// began (a cumulative counter); `None`: not sampled.
    pub backend_writes: Option<u64>,
    /// The service's recent request latency has risen against its
    /// baseline ([`RequestLoad::slowed`]); `false` outside `serve`.
    pub requests_slowed: bool,
}

/// Which signal made the pacer back off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Latency,
    BackendWrites,
    Requests,
}

/// What the pacer made of an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No pressure: speeding up (or at full speed).
    Calm,
    /// Backing off, for this reason (the first that applied).
    Pressure(Signal),
}

/// How a sweep was paced, for its report and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pacing {
    pub adaptive: bool,
    /// Batches that removed rows, and the rows they removed.
    pub batches: u64,
    pub rows: i64,
    /// The smallest and largest batch size used, and the last (0: none).
    pub min_batch: i64,
    pub max_batch: i64,
    pub last_batch: i64,
    /// The longest single pause, and all the pauses together.
    pub longest_pause: Duration,
    pub paused: Duration,
    /// Backoffs, by the signal that caused them.
    pub backoffs_latency: u64,
    pub backoffs_backend_writes: u64,
    pub backoffs_requests: u64,
}

impl Pacing {
    /// Backoffs of any cause.
    #[must_use]
    pub fn backoffs(&self) -> u64 {
        self.backoffs_latency + self.backoffs_backend_writes + self.backoffs_requests
    }
}

/// The controller. One per sweep: what it learnt of the load carries from
/// one tenant to the next.
#[derive(Debug, Clone)]
pub struct Pacer {
    limits: Limits,
    batch: i64,
    pause: Duration,
    /// The backend-write counter when it last moved, and when.
    writes_seen: Option<(u64, Instant)>,
    /// When other active backends were last seen.
    traffic_seen: Option<Instant>,
    pacing: Pacing,
}

impl Pacer {
    /// Adaptive: starts at the floor (a purge starting under load does not
    /// open with its largest batch) and the shortest pause.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            cap: limits.cap.max(1),
            max_pause: limits.max_pause.max(limits.min_pause),
            ..limits
        };
        Self {
            batch: if limits.adaptive {
                floor(limits.cap)
            } else {
                limits.cap
            },
            pause: limits.min_pause,
            writes_seen: None,
            traffic_seen: None,
            pacing: Pacing {
                adaptive: limits.adaptive,
                ..Pacing::default()
            },
            limits,
        }
    }

    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Rows to ask of the next batch.
    #[must_use]
    pub fn batch(&self) -> i64 {
        self.batch
    }

    /// The pause to take after the batch just observed.
    #[must_use]
    pub fn pause(&self) -> Duration {
        self.pause
    }

    /// What has been done so far.
    #[must_use]
    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// Records a batch of `rows` (asked for [`Self::batch`]) and what was
    /// seen after it; moves the batch size and pause for the next one.
    pub fn observe(&mut self, rows: i64, seen: &Observation) -> Verdict {
        let p = &mut self.pacing;
        p.batches += 1;
        p.last_batch = self.batch;
        p.min_batch = if p.min_batch == 0 {
            self.batch
        } else {
            p.min_batch.min(self.batch)
        };
        p.max_batch = p.max_batch.max(self.batch);
        p.rows += rows.max(0);
        let verdict = self.judge(seen);
        if !self.limits.adaptive {
            return verdict;
        }
        match verdict {
            Verdict::Calm => {
                self.batch = (self.batch + step(self.limits.cap)).min(self.limits.cap);
                let shorter = self.pause.mul_f64(0.75);
                self.pause = if shorter <= self.limits.min_pause + Duration::from_millis(1) {
                    self.limits.min_pause
                } else {
                    shorter
                };
            }
            Verdict::Pressure(signal) => {
                self.batch = (self.batch / 2).max(floor(self.limits.cap));
                self.pause = (self.pause * 2)
                    .max(FIRST_BACKOFF)
                    .clamp(self.limits.min_pause, self.limits.max_pause);
                let p = &mut self.pacing;
                match signal {
                    Signal::Latency => p.backoffs_latency += 1,
                    Signal::BackendWrites => p.backoffs_backend_writes += 1,
                    Signal::Requests => p.backoffs_requests += 1,
                }
            }
        }
        verdict
    }

    /// Records a pause taken.
    pub fn paused(&mut self, pause: Duration) {
        self.pacing.paused += pause;
        self.pacing.longest_pause = self.pacing.longest_pause.max(pause);
    }

    fn judge(&mut self, seen: &Observation) -> Verdict {
        let active = seen.other_active.unwrap_or(0);
        if active > 0 {
            self.traffic_seen = Some(seen.at);
        }
        let traffic = self
            .traffic_seen
            .is_some_and(|t| seen.at.saturating_duration_since(t) <= TRAFFIC_MEMORY);
        let writing = self.backend_writes_rate(seen) > BACKEND_WRITES_PER_SECOND;
        if seen.latency > self.limits.target_latency {
            Verdict::Pressure(Signal::Latency)
        } else if seen.requests_slowed {
            Verdict::Pressure(Signal::Requests)
        } else if writing && traffic {
            Verdict::Pressure(Signal::BackendWrites)
        } else {
            Verdict::Calm
        }
    }

    /// Buffers per second written by client backends since the counter
    /// last moved (PostgreSQL publishes it in steps, about a second
    /// apart); 0 when it has not moved or was reset.
    fn backend_writes_rate(&mut self, seen: &Observation) -> f64 {
        let Some(now) = seen.backend_writes else {
            return 0.0;
        };
        match self.writes_seen {
            Some((before, _)) if now == before => 0.0,
            Some((before, since)) if now > before => {
                self.writes_seen = Some((now, seen.at));
                let secs = seen
                    .at
                    .saturating_duration_since(since)
                    .max(Duration::from_millis(100))
                    .as_secs_f64();
                // (More than 2^32 buffers at once: as good as infinite.)
                let written = u32::try_from(now - before).map_or(f64::MAX, f64::from);
                written / secs
            }
            // First sample, or the statistics were reset.
            _ => {
                self.writes_seen = Some((now, seen.at));
                0.0
            }
        }
    }
}

fn floor(cap: i64) -> i64 {
    FLOOR_ROWS.min(cap).max(1)
}

fn step(cap: i64) -> i64 {
    (cap / 10).max(1)
}

/// The service's recent request latency against its own baseline, shared
/// lock-free between the request middleware (which records every answered
/// request) and the sweeper inside `serve` (which reads it once a batch).
///
/// Two exponentially weighted means of the request duration, as `f64` bits
/// in atomics: `recent` (weight 1/16 a request) and `baseline` (1/256),
/// the baseline frozen while a purge runs in this process, so that what
/// the purge does to requests cannot become the norm it is judged by.
/// Updates are a load and a store, not a compare-and-swap: two requests
/// recording at once may lose one sample, which a mean can afford.
#[derive(Debug)]
pub struct RequestLoad {
    recent: AtomicU64,
    baseline: AtomicU64,
    purging: AtomicU32,
    /// When a request was last recorded (ms since the Unix epoch).
    last: AtomicU64,
}

static PROCESS_LOAD: RequestLoad = RequestLoad::new();

impl Default for RequestLoad {
    fn default() -> Self {
        Self::new()
    }
}

/// No single request moves the means by more than one of this long (an
/// export or an import is not the service slowing down).
const SAMPLE_CEILING: f64 = 1.0;

/// With no request for this long there is no traffic to yield to: the
/// recent mean (a mean per request, not per second) is stale.
pub const REQUESTS_STALE_AFTER: Duration = Duration::from_secs(10);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RequestLoad {
    #[must_use]
    pub const fn new() -> Self {
        Self {
            recent: AtomicU64::new(0),
            baseline: AtomicU64::new(0),
            purging: AtomicU32::new(0),
            last: AtomicU64::new(0),
        }
    }

    /// The one this process's request middleware records into.
    #[must_use]
    pub fn process() -> &'static Self {
        &PROCESS_LOAD
    }

    /// One answered request that took `seconds`.
    pub fn record(&self, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        let seconds = seconds.min(SAMPLE_CEILING);
        self.last.store(now_ms(), Ordering::Relaxed);
        ewma(&self.recent, seconds, 1.0 / 16.0);
        if self.purging.load(Ordering::Relaxed) == 0 {
            ewma(&self.baseline, seconds, 1.0 / 256.0);
        }
    }

    /// Recent mean and baseline, in seconds (0: nothing recorded yet).
    #[must_use]
    pub fn means(&self) -> (f64, f64) {
        (
            f64::from_bits(self.recent.load(Ordering::Relaxed)),
            f64::from_bits(self.baseline.load(Ordering::Relaxed)),
        )
    }

    /// Requests have slowed: the recent mean is [`REQUEST_SLOWDOWN`] times
    /// the baseline and [`REQUEST_SLOWDOWN_MIN`] above it, and a request
    /// came in the last [`REQUESTS_STALE_AFTER`]. Never before a baseline
    /// exists.
    #[must_use]
    pub fn slowed(&self) -> bool {
        self.slowed_at(now_ms())
    }

    fn slowed_at(&self, now_ms: u64) -> bool {
        let (recent, baseline) = self.means();
        let last = self.last.load(Ordering::Relaxed);
        let stale = u64::try_from(REQUESTS_STALE_AFTER.as_millis()).unwrap_or(u64::MAX);
        now_ms.saturating_sub(last) <= stale
            && baseline > 0.0
            && recent > baseline * REQUEST_SLOWDOWN
            && recent - baseline > REQUEST_SLOWDOWN_MIN.as_secs_f64()
    }

    /// Freezes the baseline until the guard is dropped (a purge runs).
    #[must_use]
    pub fn purging(&self) -> Purging<'_> {
        self.purging.fetch_add(1, Ordering::Relaxed);
        Purging(self)
    }
}

fn ewma(cell: &AtomicU64, sample: f64, weight: f64) {
    let old = f64::from_bits(cell.load(Ordering::Relaxed));
    let new = if old > 0.0 {
        old + (sample - old) * weight
    } else {
        sample.max(f64::MIN_POSITIVE)
    };
    cell.store(new.to_bits(), Ordering::Relaxed);
}

/// A purge in progress ([`RequestLoad::purging`]).
#[derive(Debug)]
pub struct Purging<'a>(&'a RequestLoad);

impl Drop for Purging<'_> {
    fn drop(&mut self) {
        self.0.purging.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limits() -> Limits {
        Limits {
            adaptive: true,
            cap: 1000,
            min_pause: Duration::ZERO,
            max_pause: 250 * MS,
            target_latency: 50 * MS,
        }
    }

    /// A quiet batch at `at` ms: fast, nobody else active, no writes.
    fn quiet(at: u32, start: Instant) -> Observation {
        Observation {
            at: start + at * MS,
            latency: 10 * MS,
            other_active: Some(0),
            backend_writes: Some(1000),
            requests_slowed: false,
        }
    }

    fn run(pacer: &mut Pacer, seen: Observation) -> Verdict {
        let rows = pacer.batch();
        let verdict = pacer.observe(rows, &seen);
        pacer.paused(pacer.pause());
        verdict
    }

    #[test]
    fn idle_it_grows_additively_to_the_cap_with_the_shortest_pause() {
        let start = Instant::now();
        let mut pacer = Pacer::new(limits());
        assert_eq!(pacer.batch(), FLOOR_ROWS);
        let mut sizes = vec![pacer.batch()];
        for i in 0..20 {
            assert_eq!(run(&mut pacer, quiet(i * 20, start)), Verdict::Calm);
            sizes.push(pacer.batch());
            assert_eq!(pacer.pause(), Duration::ZERO);
        }
        assert_eq!(
            &sizes[..11],
            &[100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1000]
        );
        assert!(sizes.iter().all(|s| *s <= 1000));
        let pacing = pacer.pacing();
        assert_eq!((pacing.min_batch, pacing.max_batch), (100, 1000));
        assert_eq!((pacing.paused, pacing.backoffs()), (Duration::ZERO, 0));
    }

    fn at_cap(limits: Limits, start: Instant) -> Pacer {
        let mut pacer = Pacer::new(limits);
        for i in 0..20 {
            run(&mut pacer, quiet(i, start));
        }
        assert_eq!(pacer.batch(), limits.cap);
        pacer
    }

    #[test]
    fn every_signal_halves_the_batch_and_lengthens_the_pause() {
        let start = Instant::now();
        let slow = Observation {
            latency: 80 * MS,
            ..quiet(100, start)
        };
        let requests = Observation {
            requests_slowed: true,
            ..quiet(100, start)
        };
        // 2,000 buffers in 1 s with traffic about.
        let writing = Observation {
            other_active: Some(1),
            backend_writes: Some(3000),
            ..quiet(1020, start)
        };
        for (seen, signal) in [
            (slow, Signal::Latency),
            (requests, Signal::Requests),
            (writing, Signal::BackendWrites),
        ] {
            let mut pacer = at_cap(limits(), start);
            assert_eq!(run(&mut pacer, seen), Verdict::Pressure(signal));
            assert_eq!(pacer.batch(), 500, "{signal:?}");
            assert_eq!(pacer.pause(), FIRST_BACKOFF, "{signal:?}");
            assert_eq!(pacer.pacing().backoffs(), 1);
            // Again: halved again, the pause doubled.
            let again = Observation {
                at: seen.at + MS,
                backend_writes: seen.backend_writes.map(|w| w + 2000),
                ..seen
            };
            assert_eq!(run(&mut pacer, again), Verdict::Pressure(signal));
            assert_eq!(pacer.batch(), 250, "{signal:?}");
            assert_eq!(pacer.pause(), 2 * FIRST_BACKOFF, "{signal:?}");
        }
    }

    #[test]
    fn under_steady_pressure_it_stops_at_the_floor_and_the_longest_pause() {
        let start = Instant::now();
        let mut pacer = at_cap(limits(), start);
        for i in 0..30 {
            let seen = Observation {
                latency: 90 * MS,
                ..quiet(100 + i, start)
            };
            run(&mut pacer, seen);
            assert!(pacer.batch() >= FLOOR_ROWS);
            assert!(pacer.pause() <= 250 * MS);
        }
        assert_eq!((pacer.batch(), pacer.pause()), (FLOOR_ROWS, 250 * MS));
        assert_eq!(pacer.pacing().longest_pause, 250 * MS);
        assert_eq!(pacer.pacing().min_batch, FLOOR_ROWS);
    }

    #[test]
    fn it_recovers_once_the_pressure_is_gone() {
        let start = Instant::now();
        let mut pacer = at_cap(limits(), start);
        for i in 0..30 {
            let seen = Observation {
                latency: 200 * MS,
                ..quiet(100 + i, start)
            };
            run(&mut pacer, seen);
        }
        assert_eq!((pacer.batch(), pacer.pause()), (FLOOR_ROWS, 250 * MS));
        let mut calm = 0;
        while pacer.batch() < 1000 || pacer.pause() > Duration::ZERO {
            assert_eq!(run(&mut pacer, quiet(200 + calm, start)), Verdict::Calm);
            calm += 1;
            assert!(calm < 40, "no recovery");
        }
        assert_eq!((pacer.batch(), pacer.pause()), (1000, Duration::ZERO));
    }

    #[test]
    fn batch_pause_is_the_shortest_pause_and_max_batch_pause_the_longest() {
        let start = Instant::now();
        let limits = Limits {
            min_pause: 20 * MS,
            max_pause: 60 * MS,
            ..limits()
        };
        let mut pacer = Pacer::new(limits);
        assert_eq!(pacer.pause(), 20 * MS);
        for i in 0..10 {
            run(&mut pacer, quiet(i, start));
            assert_eq!(pacer.pause(), 20 * MS);
        }
        let slow = Observation {
            latency: 51 * MS,
            ..quiet(100, start)
        };
        run(&mut pacer, slow);
        assert_eq!(pacer.pause(), 40 * MS);
        run(&mut pacer, slow);
        assert_eq!(pacer.pause(), 60 * MS);
        run(&mut pacer, slow);
        assert_eq!(pacer.pause(), 60 * MS);
        for i in 0..20 {
            run(&mut pacer, quiet(200 + i, start));
            assert!(pacer.pause() >= 20 * MS);
        }
        assert_eq!(pacer.pause(), 20 * MS);
        // A `max_batch_pause` below `batch_pause` cannot make it faster.
        let inverted = Pacer::new(Limits {
            min_pause: 20 * MS,
            max_pause: 5 * MS,
            ..limits
        });
        assert_eq!(inverted.limits().max_pause, 20 * MS);
    }

    #[test]
    fn a_busy_database_alone_is_no_pressure_and_writes_without_traffic_are_the_purges_own() {
        let start = Instant::now();
        let mut pacer = Pacer::new(limits());
        run(&mut pacer, quiet(0, start));
        let before = pacer.batch();
        // Fifty other sessions at work, but the batch is fast and nobody
        // writes buffers out: it keeps growing.
        let busy = Observation {
            other_active: Some(50),
            ..quiet(10, start)
        };
        assert_eq!(run(&mut pacer, busy), Verdict::Calm);
        assert_eq!(pacer.batch(), before + 100);
        // Lots of backend writes, but nobody else was active lately.
        let lonely = Observation {
            backend_writes: Some(1_000_000),
            ..quiet(5_000, start)
        };
        assert_eq!(run(&mut pacer, lonely), Verdict::Calm);
        let lonely = Observation {
            backend_writes: Some(2_000_000),
            ..quiet(6_000, start)
        };
        assert_eq!(run(&mut pacer, lonely), Verdict::Calm);
        // A counter reset is not a jump.
        let reset = Observation {
            other_active: Some(1),
            backend_writes: Some(5),
            ..quiet(6_100, start)
        };
        assert_eq!(run(&mut pacer, reset), Verdict::Calm);
        // A slow trickle is not pressure either (100 buffers over 1 s).
        let trickle = Observation {
            other_active: Some(1),
            backend_writes: Some(105),
            ..quiet(7_100, start)
        };
        assert_eq!(run(&mut pacer, trickle), Verdict::Calm);
    }

    #[test]
    fn fixed_pacing_never_moves() {
        let start = Instant::now();
        let mut pacer = Pacer::new(Limits {
            adaptive: false,
            min_pause: 15 * MS,
            ..limits()
        });
        for i in 0..10 {
            let seen = Observation {
                latency: 500 * MS,
                other_active: Some(50),
                ..quiet(i, start)
            };
            run(&mut pacer, seen);
            assert_eq!((pacer.batch(), pacer.pause()), (1000, 15 * MS));
        }
        let pacing = pacer.pacing();
        assert!(!pacing.adaptive);
        assert_eq!(
            (pacing.min_batch, pacing.max_batch, pacing.backoffs()),
            (1000, 1000, 0)
        );
        assert_eq!(pacing.paused, 150 * MS);
    }

    #[test]
    fn request_latency_counts_against_its_own_baseline() {
        let load = RequestLoad::new();
        assert!(!load.slowed(), "no baseline yet");
        for _ in 0..2000 {
            load.record(0.004);
        }
        assert!(!load.slowed());
        {
            let _purge = load.purging();
            for _ in 0..200 {
                load.record(0.010);
            }
            let (recent, baseline) = load.means();
            assert!((baseline - 0.004).abs() < 1e-6, "frozen: {baseline}");
            assert!(recent > 0.009, "{recent}");
            assert!(load.slowed());
        }
        for _ in 0..200 {
            load.record(0.004);
        }
        assert!(!load.slowed(), "recovered");
        // Slowed, but no request for longer than the staleness bound.
        {
            let _purge = load.purging();
            for _ in 0..200 {
                load.record(0.010);
            }
        }
        let last = load.last.load(Ordering::Relaxed);
        assert!(load.slowed_at(last + 9_000));
        assert!(!load.slowed_at(last + 11_000), "stale");
        // Sub-millisecond noise does not count, nor one huge request.
        let fast = RequestLoad::new();
        for _ in 0..1000 {
            fast.record(0.0002);
        }
        for _ in 0..100 {
            fast.record(0.0004);
        }
        assert!(!fast.slowed());
        let load = RequestLoad::new();
        for _ in 0..1000 {
            load.record(0.010);
        }
        load.record(f64::NAN);
        load.record(-1.0);
        load.record(3600.0);
        let (recent, _) = load.means();
        assert!(recent < 0.08, "{recent}");
    }
}
