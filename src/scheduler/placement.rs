//! Where a new world goes: the worker whose worlds cost least to tick.
//!
//! Counting worlds is not enough: a zone of a thousand players costs more
//! than a hundred empty rooms, and a node that placed by count would put
//! every other new room beside that zone. Each worker publishes the time
//! its ticks took over its last second; the scheduler adds what it expects
//! of each world placed since (a burst of new rooms would otherwise all
//! land on the worker that was idle a second ago): what worlds of the same
//! kind took per tick so far, at the new world's tick rate.
//!
//! A worker that thins its snapshots (see `pacing`) is overloaded whatever
//! its tick time says: thinned ticks are cheaper, so by time alone it would
//! look like the best place for the next room and sink deeper. It gets a
//! new world only when every worker thins as much or more.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// What one worker costs, shared between it and the scheduler.
#[derive(Debug, Default)]
pub(super) struct Load {
    /// Worlds on the worker: counted up when the scheduler places one,
    /// down when the worker ends one.
    worlds: AtomicU64,
    /// Tick time over the worker's last measured second, µs.
    busy_us: AtomicU64,
    /// Expected tick time per second of the worlds placed since then, µs.
    pending_us: AtomicU64,
    /// Ticks between two snapshots the worker's worlds send (0 before the
    /// worker first says: taken as 1).
    snapshot_every: AtomicU32,
}

/// The least a world is taken to cost, µs of ticks per second (an empty
/// zone at 20 Hz takes about this): new kinds and idle worlds still spread
/// out by number.
const LEAST_WORLD_US: u64 = 1_000;

impl Load {
    /// A world expected to cost `expected_us` per second was placed here.
    pub fn placed(&self, expected_us: u64) {
        self.worlds.fetch_add(1, Ordering::Relaxed);
        self.pending_us.fetch_add(expected_us, Ordering::Relaxed);
    }

    /// A world here ended.
    pub fn ended(&self) {
        self.worlds.fetch_sub(1, Ordering::Relaxed);
    }

    /// The worker's snapshot pace changed to every `every` ticks.
    pub fn paced(&self, every: u32) {
        self.snapshot_every.store(every, Ordering::Relaxed);
    }

    /// The worker's snapshot pace: every this many ticks.
    pub fn snapshot_every(&self) -> u32 {
        self.snapshot_every.load(Ordering::Relaxed).max(1)
    }

    fn cost(&self) -> Cost {
        Cost {
            worlds: self.worlds.load(Ordering::Relaxed),
            busy_us: self.busy_us.load(Ordering::Relaxed),
            pending_us: self.pending_us.load(Ordering::Relaxed),
            snapshot_every: self.snapshot_every(),
        }
    }
}

/// One worker's load as the scheduler reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Cost {
    pub worlds: u64,
    pub busy_us: u64,
    pub pending_us: u64,
    pub snapshot_every: u32,
}

/// What a new world is expected to cost per second: what worlds of its
/// kind took per tick so far (`mean_tick_us`; `None` for a kind not seen
/// yet), at its tick rate; never below [`LEAST_WORLD_US`].
pub(super) fn expected_us(mean_tick_us: Option<u64>, tick_hz: u16) -> u64 {
    mean_tick_us
        .map_or(0, |mean| mean.saturating_mul(u64::from(tick_hz)))
        .max(LEAST_WORLD_US)
}

/// The worker to place a new world on: the least thinned snapshots, then
/// the least tick time per second (measured, plus what was placed since),
/// then the fewest worlds, then the lowest index. A worker without worlds
/// is free, whatever it measured or thinned last. `None` without workers.
pub(super) fn least_loaded<'a>(loads: impl IntoIterator<Item = &'a Load>) -> Option<usize> {
    loads
        .into_iter()
        .map(Load::cost)
        .enumerate()
        .min_by_key(|(index, cost)| {
            let (every, estimate) = match cost.worlds {
                0 => (1, 0),
                _ => (
                    cost.snapshot_every,
                    cost.busy_us.saturating_add(cost.pending_us),
                ),
            };
            (every, estimate, cost.worlds, *index)
        })
        .map(|(index, _)| index)
}

/// A worker's measuring of its own tick time, published once a second.
#[derive(Debug)]
pub(super) struct Meter {
    since: Instant,
    busy: Duration,
}

impl Meter {
    pub fn new(now: Instant) -> Self {
        Self {
            since: now,
            busy: Duration::ZERO,
        }
    }

    /// A tick took `elapsed`; at `now`, once a second has passed, the
    /// share of it spent ticking goes to `load` (and replaces what was
    /// expected of the worlds placed meanwhile: they ticked in it).
    pub fn record(&mut self, elapsed: Duration, now: Instant, load: &Load) {
        self.busy += elapsed;
        let window = now.saturating_duration_since(self.since);
        if window < Duration::from_secs(1) {
            return;
        }
        let per_second = self.busy.as_micros() * 1_000_000 / window.as_micros().max(1);
        load.busy_us.store(
            u64::try_from(per_second).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        load.pending_us.store(0, Ordering::Relaxed);
        *self = Self::new(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(worlds: u64, busy_us: u64, pending_us: u64) -> Load {
        Load {
            worlds: worlds.into(),
            busy_us: busy_us.into(),
            pending_us: pending_us.into(),
            snapshot_every: 0.into(),
        }
    }

    fn thinning(every: u32, worlds: u64, busy_us: u64) -> Load {
        let load = load(worlds, busy_us, 0);
        load.paced(every);
        load
    }

    #[test]
    fn a_new_world_goes_beside_the_cheap_worlds_not_the_expensive_one() {
        // A big zone alone on worker 0; five idle rooms on worker 1.
        let loads = [load(1, 400_000, 0), load(5, 5_000, 0)];
        assert_eq!(least_loaded(&loads), Some(1));
    }

    #[test]
    fn worlds_placed_since_the_last_measure_count_at_what_they_are_expected_to_cost() {
        let loads = [load(2, 100_000, 0), load(3, 60_000, 50_000)];
        assert_eq!(least_loaded(&loads), Some(0));
        let loads = [load(2, 100_000, 0), load(3, 60_000, 30_000)];
        assert_eq!(least_loaded(&loads), Some(1));
    }

    #[test]
    fn unmeasured_workers_spread_worlds_by_number_then_index() {
        assert_eq!(least_loaded(&[load(0, 0, 0), load(0, 0, 0)]), Some(0));
        assert_eq!(least_loaded(&[load(1, 0, 1_000), load(0, 0, 0)]), Some(1));
        assert_eq!(
            least_loaded(&[load(3, 0, 3_000), load(2, 0, 2_000)]),
            Some(1)
        );
        assert_eq!(least_loaded(&[load(2, 0, 0), load(1, 0, 0)]), Some(1));
        assert_eq!(least_loaded(&[]), None);
    }

    #[test]
    fn a_worker_without_worlds_is_free_whatever_it_measured_last() {
        let loads = [load(0, 900_000, 0), load(1, 2_000, 0)];
        assert_eq!(least_loaded(&loads), Some(0));
    }

    #[test]
    fn a_worker_that_thins_snapshots_gets_a_new_world_only_when_all_thin_as_much() {
        // Worker 0's ticks look cheap because they send a quarter of the
        // snapshots: the busier worker 1 keeps pace and takes the world.
        let loads = [thinning(4, 2, 300_000), load(6, 700_000, 0)];
        assert_eq!(least_loaded(&loads), Some(1));
        // Back to full pace, it is judged by its time again.
        loads[0].paced(1);
        assert_eq!(least_loaded(&loads), Some(0));
        // All thinning: the one thinning least, then by time.
        let loads = [thinning(4, 1, 100_000), thinning(2, 3, 900_000)];
        assert_eq!(least_loaded(&loads), Some(1));
        let loads = [thinning(2, 1, 800_000), thinning(2, 3, 600_000)];
        assert_eq!(least_loaded(&loads), Some(1));
        // A worker left without worlds is free, whatever it thinned last.
        let loads = [load(1, 50_000, 0), thinning(4, 0, 900_000)];
        assert_eq!(least_loaded(&loads), Some(1));
    }

    #[test]
    fn a_world_is_expected_to_cost_what_its_kind_did_at_its_rate() {
        assert_eq!(expected_us(Some(2_000), 20), 40_000);
        assert_eq!(expected_us(Some(10), 20), LEAST_WORLD_US, "at least");
        assert_eq!(expected_us(None, 60), LEAST_WORLD_US, "a new kind");
        assert_eq!(expected_us(Some(u64::MAX), 30), u64::MAX);
    }

    #[test]
    fn the_meter_publishes_the_share_of_each_second_spent_ticking() {
        let load = load(3, 0, 7_000);
        let start = Instant::now();
        let mut meter = Meter::new(start);
        meter.record(
            Duration::from_millis(100),
            start + Duration::from_millis(500),
            &load,
        );
        assert_eq!(
            load.cost(),
            Cost {
                worlds: 3,
                busy_us: 0,
                pending_us: 7_000,
                snapshot_every: 1,
            },
            "not a second yet"
        );
        meter.record(
            Duration::from_millis(150),
            start + Duration::from_secs(2),
            &load,
        );
        // 250 ms over 2 s; the placed worlds are in that measure now.
        assert_eq!(
            load.cost(),
            Cost {
                worlds: 3,
                busy_us: 125_000,
                pending_us: 0,
                snapshot_every: 1,
            }
        );
        // The next second starts from nothing.
        meter.record(
            Duration::from_millis(10),
            start + Duration::from_secs(3),
            &load,
        );
        assert_eq!(load.cost().busy_us, 10_000);
    }
}
