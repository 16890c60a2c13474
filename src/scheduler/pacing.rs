//! Snapshot pacing under overload: when a worker's ticks keep starting
//! late (its core is saturated), its worlds send each player a snapshot
//! every second tick, then every fourth, instead of letting every world
//! slow down. Snapshots are most of what a crowded world costs (encoding,
//! encryption, the sends), so this is where load can be shed without
//! touching the simulation: inputs, combat and ticks keep their rate.
//!
//! The worker looks at one window at a time: a quarter of its ticks late
//! by half a period or more sheds; windows with no late tick at all bring
//! the rate back, slowly, and more slowly each time that was too soon
//! (stepping down into an overload and out of it again, over and over,
//! would make every other second a slow one).

use std::time::{Duration, Instant};

/// Ticks that start this share of a period late or later count as late.
const LATE_SHARE: u32 = 2;
/// At least this share of a window's ticks late: snapshots are thinned.
const SHED_SHARE: usize = 4;
/// The most ticks between two snapshots (a power of two: the pace halves
/// and doubles).
const MAX_EVERY: u32 = 16;
/// Calm windows needed before the rate goes back up, at first.
const FIRST_CALM_WINDOWS: u32 = 5;
/// The most calm windows ever needed.
const MAX_CALM_WINDOWS: u32 = 160;
/// An overload this many windows or fewer after the rate went back up
/// means it went up too soon: the next time needs twice the calm.
const RELAPSE_WINDOWS: u32 = 30;

/// A worker's snapshot pace (see the module).
#[derive(Debug)]
pub(super) struct Pacer {
    every: u32,
    max_every: u32,
    window: Duration,
    window_start: Instant,
    ticks: usize,
    late: usize,
    calm: u32,
    calm_needed: u32,
    /// The window after a thinning is not judged: ticks behind their
    /// deadlines since before it are still catching up.
    settling: bool,
    /// Windows since the pace last went back up (`None`: not since it was
    /// first thinned).
    since_step_down: Option<u32>,
}

/// The pace changed: snapshots now every `every` ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PaceChange {
    pub from: u32,
    pub every: u32,
}

impl Pacer {
    /// A pacer that thins snapshots to one every `max_every` ticks at most
    /// (1: never), judging windows of `window`.
    pub fn new(max_every: u32, window: Duration, now: Instant) -> Self {
        Self {
            every: 1,
            // Rounded down to a power of two, so each step halves or doubles.
            max_every: 1 << max_every.clamp(1, MAX_EVERY).ilog2(),
            window,
            window_start: now,
            ticks: 0,
            late: 0,
            calm: 0,
            calm_needed: FIRST_CALM_WINDOWS,
            settling: false,
            since_step_down: None,
        }
    }

    /// Starts over at every tick, with no history (a worker left without
    /// worlds: whatever overloaded it is gone).
    pub fn reset(&mut self, now: Instant) {
        *self = Self::new(self.max_every, self.window, now);
    }

    /// Ticks between two snapshots of one player, now.
    pub fn every(&self) -> u32 {
        self.every
    }

    /// A tick of `period` started `late_by` after its deadline, at `now`;
    /// says when that ends a window that changes the pace.
    pub fn observe(
        &mut self,
        late_by: Duration,
        period: Duration,
        now: Instant,
    ) -> Option<PaceChange> {
        if self.ticks == 0 && now.saturating_duration_since(self.window_start) >= self.window {
            // The first tick after a time with none (a worker with no
            // worlds): a window of one tick would judge the worker by it.
            self.window_start = now;
        }
        self.ticks += 1;
        self.late += usize::from(late_by >= period / LATE_SHARE);
        if now.saturating_duration_since(self.window_start) < self.window {
            return None;
        }
        let (ticks, late) = (self.ticks, self.late);
        self.ticks = 0;
        self.late = 0;
        self.window_start = now;
        self.since_step_down = self.since_step_down.map(|w| w.saturating_add(1));
        let from = self.every;
        if std::mem::take(&mut self.settling) {
            return None;
        }
        if late * SHED_SHARE >= ticks {
            self.calm = 0;
            if self.since_step_down.is_some_and(|w| w <= RELAPSE_WINDOWS) {
                self.calm_needed = (self.calm_needed * 2).min(MAX_CALM_WINDOWS);
                self.since_step_down = None;
            }
            self.every = (self.every * 2).min(self.max_every);
            self.settling = self.every != from;
        } else if late == 0 {
            // Not one late tick: a loaded run (3,000 roam100 bots) that took
            // fewer than 1 in 16 as calm went back to every 2nd tick into
            // the overload several times more (610 overruns against 22-31).
            self.calm += 1;
            if self.every > 1 && self.calm >= self.calm_needed {
                self.every /= 2;
                self.calm = 0;
                self.since_step_down = Some(0);
            } else if self.every == 1 && self.calm >= MAX_CALM_WINDOWS {
                // Long at full rate: the next overload starts afresh.
                self.calm_needed = FIRST_CALM_WINDOWS;
            }
        } else {
            self.calm = 0;
        }
        (self.every != from).then_some(PaceChange {
            from,
            every: self.every,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_millis(50);
    const WINDOW: Duration = Duration::from_secs(1);

    /// Feeds one window of 20 ticks, `late` of them half a period late,
    /// and returns the pace after it.
    fn window(pacer: &mut Pacer, now: &mut Instant, late: usize) -> u32 {
        for tick in 0..20 {
            *now += PERIOD;
            let late_by = if tick < late {
                PERIOD / 2
            } else {
                PERIOD / 2 - Duration::from_millis(1)
            };
            pacer.observe(late_by, PERIOD, *now);
        }
        pacer.every()
    }

    #[test]
    fn an_overloaded_worker_thins_snapshots_to_its_limit_and_no_further() {
        let mut now = Instant::now();
        let mut pacer = Pacer::new(4, WINDOW, now);
        assert_eq!(
            window(&mut pacer, &mut now, 4),
            1,
            "4 late ticks in 20 are noise"
        );
        assert_eq!(window(&mut pacer, &mut now, 5), 2, "a quarter late sheds");
        assert_eq!(
            window(&mut pacer, &mut now, 20),
            2,
            "the window after a thinning is not judged (the backlog drains)"
        );
        assert_eq!(window(&mut pacer, &mut now, 20), 4);
        assert_eq!(window(&mut pacer, &mut now, 20), 4);
        assert_eq!(window(&mut pacer, &mut now, 20), 4, "never past the limit");

        let mut never = Pacer::new(1, WINDOW, now);
        assert_eq!(window(&mut never, &mut now, 20), 1, "1: never thinned");
    }

    #[test]
    fn a_limit_is_a_power_of_two_of_at_most_sixteen() {
        let mut now = Instant::now();
        for (asked, limit) in [(0, 1), (3, 2), (6, 4), (16, 16), (u32::MAX, 16)] {
            let mut pacer = Pacer::new(asked, WINDOW, now);
            for _ in 0..20 {
                window(&mut pacer, &mut now, 20);
            }
            assert_eq!(pacer.every(), limit, "asked for {asked}");
        }
    }

    #[test]
    fn the_rate_comes_back_after_calm_windows_and_later_each_time_it_was_too_soon() {
        let mut now = Instant::now();
        let mut pacer = Pacer::new(4, WINDOW, now);
        window(&mut pacer, &mut now, 20);
        assert_eq!(pacer.every(), 2);
        assert_eq!(window(&mut pacer, &mut now, 0), 2, "settling: not counted");
        // A window with a late tick is not calm.
        for _ in 0..FIRST_CALM_WINDOWS - 1 {
            assert_eq!(window(&mut pacer, &mut now, 0), 2);
        }
        assert_eq!(window(&mut pacer, &mut now, 1), 2);
        for _ in 0..FIRST_CALM_WINDOWS - 1 {
            assert_eq!(window(&mut pacer, &mut now, 0), 2);
        }
        assert_eq!(
            window(&mut pacer, &mut now, 0),
            1,
            "five calm windows in a row"
        );

        // Overloaded again at once: twice the calm next time.
        assert_eq!(window(&mut pacer, &mut now, 20), 2);
        assert_eq!(window(&mut pacer, &mut now, 0), 2, "settling");
        for _ in 0..2 * FIRST_CALM_WINDOWS - 1 {
            assert_eq!(window(&mut pacer, &mut now, 0), 2);
        }
        assert_eq!(window(&mut pacer, &mut now, 0), 1);

        // Long calm forgets the relapses.
        for _ in 0..MAX_CALM_WINDOWS {
            window(&mut pacer, &mut now, 0);
        }
        assert_eq!(window(&mut pacer, &mut now, 20), 2);
        assert_eq!(window(&mut pacer, &mut now, 0), 2, "settling");
        for _ in 0..FIRST_CALM_WINDOWS - 1 {
            assert_eq!(window(&mut pacer, &mut now, 0), 2);
        }
        assert_eq!(window(&mut pacer, &mut now, 0), 1);
    }

    #[test]
    fn a_late_tick_after_an_idle_time_is_not_a_window_of_its_own() {
        let start = Instant::now();
        let mut pacer = Pacer::new(4, WINDOW, start);
        // A worker with no worlds for a minute, then a late first tick and
        // a second on time.
        let then = start + Duration::from_secs(60);
        assert_eq!(pacer.observe(PERIOD, PERIOD, then), None);
        let mut now = then;
        assert_eq!(window(&mut pacer, &mut now, 0), 1);
    }

    #[test]
    fn a_window_ends_by_time_not_by_ticks() {
        let start = Instant::now();
        let mut pacer = Pacer::new(4, WINDOW, start);
        // Many worlds on a worker: 100 late ticks within half a second
        // are one window's worth still.
        for tick in 0..100u32 {
            let change = pacer.observe(PERIOD, PERIOD, start + WINDOW / 2 * tick / 100);
            assert_eq!(change, None);
        }
        assert_eq!(
            pacer.observe(PERIOD, PERIOD, start + WINDOW),
            Some(PaceChange { from: 1, every: 2 })
        );
    }
}
