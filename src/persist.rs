//! The node's persistence: which store, the flush worker, and the per-tick
//! hand-over of each world's changed player data.

use std::sync::Arc;

use anyhow::Context;
use tessera_persistence::{
    dirty::{self, Dirty},
    embedded::EmbeddedStore,
    flush::{Backend, ChangeSender, FlushSettings, Flusher},
    mongo::MongoStore,
};
use tessera_sim::SimWorld;

use crate::config::{NodeConfig, StoreKind};

/// Environment variable that overrides `mongodb_uri` (it may hold a password).
pub const MONGODB_URI_VAR: &str = "TESSERA_MONGODB_URI";

/// Opens the configured store and starts the flush worker.
pub async fn start(
    config: &NodeConfig,
    cache: Option<tessera_persistence::redis_state::RedisState>,
) -> anyhow::Result<Flusher> {
    let backend = match config.store {
        StoreKind::Embedded => {
            let store = EmbeddedStore::open(&config.store_path)
                .with_context(|| format!("embedded store {}", config.store_path.display()))?;
            tracing::info!(path = %config.store_path.display(), "player data in the embedded store");
            Backend::Embedded(Arc::new(store))
        }
        StoreKind::Mongodb => {
            let uri = std::env::var(MONGODB_URI_VAR).unwrap_or_else(|_| config.mongodb_uri.clone());
            // Connecting is lazy: a node whose MongoDB is down still starts,
            // keeps changes pending and retries.
            let store = MongoStore::connect(&uri, &config.mongodb_database)
                .await
                .context("mongodb")?;
            tracing::info!(database = %config.mongodb_database, "player data in mongodb");
            Backend::Mongo(store)
        }
    };
    let settings = FlushSettings {
        interval: std::time::Duration::from_millis(config.flush_interval_ms.max(1)),
        max_pending: config.max_pending_players,
        cache,
        ..FlushSettings::default()
    };
    Ok(Flusher::start(backend, settings))
}

/// The most time between two captures of a world's changed player data
/// (a crash loses at most this plus one flush interval). Reading every
/// change at the tick rate cost a third of a crowded zone's tick.
pub const CAPTURE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Ticks between two captures for a world at `tick_hz` whose changes are
/// written every `flush_interval`: [`CAPTURE_EVERY`], or the flush
/// interval when that is shorter.
pub fn capture_ticks(tick_hz: u16, flush_interval: std::time::Duration) -> u64 {
    let every = CAPTURE_EVERY.min(flush_interval);
    ((every.as_millis() as u64 * u64::from(tick_hz)) / 1_000).max(1)
}

/// Which ticks a world captures its changed player data at: every `every`
/// ticks, shifted by the world's place among the node's worlds, so worlds
/// sharing a worker capture on different ticks (each capture serialises a
/// crowd's changes) instead of all on the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureTicks {
    every: u64,
    phase: u64,
}

impl CaptureTicks {
    /// Every `every` ticks (at least 1) for the node's `world`-th world.
    pub fn new(every: u64, world: u64) -> Self {
        let every = every.max(1);
        Self {
            every,
            phase: world % every,
        }
    }

    /// Whether the world captures after `tick`.
    pub fn due(&self, tick: u64) -> bool {
        (tick % self.every + self.phase).is_multiple_of(self.every)
    }
}

/// After a tick: at the world's capture ticks, captures its changed player
/// data and hands it to the flush worker (a non-blocking send; the world
/// never waits for a store). A tick in which players left hands over at
/// once: their parts were captured as they went, and the flush worker
/// writes them without waiting for its interval.
pub fn hand_over(sim: &mut SimWorld, to_store: &ChangeSender, capture: CaptureTicks) {
    if capture.due(sim.tick()) {
        dirty::capture(sim.world_mut());
    }
    send(sim, to_store);
}

/// When a world ends: captures and hands over everything still marked.
pub fn hand_over_all(sim: &mut SimWorld, to_store: &ChangeSender) {
    dirty::capture(sim.world_mut());
    send(sim, to_store);
}

fn send(sim: &mut SimWorld, to_store: &ChangeSender) {
    if let Some(mut dirty) = sim.world_mut().get_resource_mut::<Dirty>()
        && (!dirty.players.is_empty() || !dirty.leaving.is_empty())
    {
        let changes = dirty
            .take()
            .into_iter()
            .map(|(player, parts)| (player.0, parts))
            .collect();
        let leaving = dirty.take_leaving().into_iter().map(|p| p.0).collect();
        if !to_store.send(changes) || !to_store.leaving(leaving) {
            tracing::error!("the flush worker has stopped; player changes cannot be saved");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tessera_persistence::{dirty::PersistencePlugin, flush::FlushSettings};
    use tessera_sim::{Input, PlayerId, WorldSpec};

    use super::*;

    #[test]
    fn captures_come_every_250_ms_or_every_flush_when_that_is_sooner() {
        assert_eq!(capture_ticks(20, Duration::from_secs(1)), 5);
        assert_eq!(capture_ticks(20, Duration::from_millis(100)), 2);
        assert_eq!(
            capture_ticks(1, Duration::from_secs(1)),
            1,
            "at least every tick"
        );
    }

    #[test]
    fn worlds_capture_at_their_rate_on_different_ticks() {
        let every = 5;
        let due: Vec<Vec<u64>> = (0..every)
            .map(|world| {
                let capture = CaptureTicks::new(every, world);
                (1..=50).filter(|&tick| capture.due(tick)).collect()
            })
            .collect();
        for (world, ticks) in due.iter().enumerate() {
            assert_eq!(ticks.len(), 10, "world {world}: {ticks:?}");
            assert!(
                ticks.windows(2).all(|pair| pair[1] - pair[0] == every),
                "world {world}: {ticks:?}"
            );
        }
        let mut firsts: Vec<u64> = due.iter().map(|ticks| ticks[0]).collect();
        firsts.sort_unstable();
        assert_eq!(firsts, vec![1, 2, 3, 4, 5], "one world per tick");
        assert_eq!(CaptureTicks::new(every, every), CaptureTicks::new(every, 0));
        assert!(CaptureTicks::new(0, 3).due(7), "a rate of 0 is every tick");
        for tick in [0, 1, 49, u64::MAX] {
            let due = (0..every)
                .filter(|&world| CaptureTicks::new(every, world).due(tick))
                .count();
            assert_eq!(due, 1, "tick {tick}: one world of every {every} captures");
        }
    }

    fn stale(sim: &SimWorld) -> bool {
        sim.world().resource::<Dirty>().has_stale()
    }

    #[tokio::test]
    async fn marked_parts_reach_the_store_at_a_due_tick_and_when_the_world_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("players.redb")).unwrap());
        let flusher = Flusher::start(
            Backend::Embedded(store.clone()),
            FlushSettings {
                interval: Duration::from_secs(3600),
                ..FlushSettings::default()
            },
        );
        let to_store = flusher.sender();
        let mut sim = SimWorld::build(
            WorldSpec {
                seed: 1,
                tick_hz: 20,
                ..WorldSpec::default()
            },
            |app| {
                app.add_plugins(PersistencePlugin);
            },
        )
        .unwrap();
        sim.set_tables(Arc::new(tessera_tables::generate::default_tables()));
        sim.push_input(
            PlayerId(7),
            Input::Join {
                class: "mage".into(),
            },
        );
        let every = capture_ticks(20, Duration::from_secs(1));
        let capture = CaptureTicks::new(every, 0);
        // Ticks 1-4: marked, not read, nothing written.
        while sim.tick() < every - 1 {
            sim.step();
            hand_over(&mut sim, &to_store, capture);
            assert!(stale(&sim), "tick {}: read before it was due", sim.tick());
        }
        flusher.flush_now().await.unwrap();
        assert!(store.load(7).unwrap().is_none());
        sim.step();
        hand_over(&mut sim, &to_store, capture);
        assert!(
            !stale(&sim),
            "tick {}: due, read and handed over",
            sim.tick()
        );
        flusher.flush_now().await.unwrap();
        assert_eq!(store.load(7).unwrap().unwrap().parts["class"], "mage");
        // A move after the capture, then the world ends before the next one.
        sim.push_input(
            PlayerId(7),
            Input::Move {
                seq: 1,
                dir_x: 1,
                dir_y: 0,
            },
        );
        sim.step();
        hand_over(&mut sim, &to_store, capture);
        assert!(stale(&sim));
        hand_over_all(&mut sim, &to_store);
        flusher.flush_now().await.unwrap();
        let avatar = sim
            .world()
            .resource::<tessera_sim::players::PlayerIndex>()
            .get(PlayerId(7))
            .unwrap();
        let x = sim
            .world()
            .get::<tessera_sim::movement::Position>(avatar)
            .unwrap()
            .x;
        assert_eq!(
            store.load(7).unwrap().unwrap().parts["position"]["x"],
            i64::from(x),
            "the end hands over the last position"
        );
    }
}
