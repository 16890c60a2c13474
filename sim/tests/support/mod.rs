//! A world on the default game's tables, driven one tick at a time, with
//! the events of each tick kept for assertions.

#![allow(dead_code)]

use std::sync::Arc;

use bevy_ecs::component::{Component, Mutable};
use tessera_sim::{
    Input, OutEvent, PlayerId, Rejection, SimId, SimWorld, WorldSpec, entity::SimIds,
    movement::Position, players::avatar_id, rules::WorldRules,
};
use tessera_tables::generate::default_tables;

pub struct Arena {
    pub world: SimWorld,
    /// Events of the last step.
    pub events: Vec<OutEvent>,
}

impl Arena {
    /// A world of `kind` (a zones row, or anything else for a plain field)
    /// on the default tables; one tick is run so the zone is set up.
    pub fn new(kind: &str) -> Self {
        let tables = Arc::new(default_tables());
        let (tick_hz, width, height, capacity) = match tables.zones.get(kind) {
            Some(zone) => (
                zone.tick_hz as u16,
                zone.width.mm as i32,
                zone.height.mm as i32,
                zone.capacity,
            ),
            None => (20, 200_000, 200_000, 1_000),
        };
        let spec = WorldSpec {
            kind: kind.into(),
            seed: 7,
            tick_hz,
            width,
            height,
            capacity,
        };
        let mut world = SimWorld::new(spec).unwrap();
        world.set_tables(tables);
        let mut arena = Self {
            world,
            events: Vec::new(),
        };
        arena.step();
        arena
    }

    /// A plain field where players may fight each other.
    pub fn pvp() -> Self {
        let mut arena = Self::new("field");
        arena.world.world_mut().resource_mut::<WorldRules>().pvp = true;
        arena
    }

    pub fn input(&mut self, player: u64, input: Input) {
        self.world.push_input(PlayerId(player), input);
    }

    pub fn step(&mut self) -> &[OutEvent] {
        self.world.step();
        self.events = self.world.drain_events();
        &self.events
    }

    pub fn steps(&mut self, n: u64) -> Vec<OutEvent> {
        let mut all = Vec::new();
        for _ in 0..n {
            self.step();
            all.append(&mut self.events.clone());
        }
        all
    }

    /// Joins `player` as `class` at `(x, y)` metres and returns its id.
    pub fn join(&mut self, player: u64, class: &str, x: i32, y: i32) -> SimId {
        self.input(
            player,
            Input::Join {
                class: class.into(),
            },
        );
        self.step();
        let id = avatar_id(self.world.world(), PlayerId(player)).expect("joined");
        self.place(id, x, y);
        id
    }

    /// Puts an entity at `(x, y)` metres (test set-up).
    pub fn place(&mut self, id: SimId, x: i32, y: i32) {
        *self.get_mut::<Position>(id) = Position {
            x: x * 1_000,
            y: y * 1_000,
        };
    }

    pub fn get<T: Component + Clone>(&self, id: SimId) -> T {
        let entity = self
            .world
            .world()
            .resource::<SimIds>()
            .get(id)
            .expect("live entity");
        self.world
            .world()
            .get::<T>(entity)
            .expect("component")
            .clone()
    }

    pub fn get_mut<T: Component<Mutability = Mutable>>(
        &mut self,
        id: SimId,
    ) -> bevy_ecs::world::Mut<'_, T> {
        let entity = self
            .world
            .world()
            .resource::<SimIds>()
            .get(id)
            .expect("live entity");
        self.world
            .world_mut()
            .get_mut::<T>(entity)
            .expect("component")
    }

    pub fn rejections(&self, player: u64) -> Vec<Rejection> {
        self.events
            .iter()
            .filter_map(|e| match e {
                OutEvent::Rejected {
                    player: p, reason, ..
                } if p.0 == player => Some(*reason),
                _ => None,
            })
            .collect()
    }

    pub fn tick(&self) -> u64 {
        self.world.tick()
    }
}

pub fn hits(events: &[OutEvent]) -> Vec<(SimId, SimId, String, i32)> {
    events
        .iter()
        .filter_map(|e| match e {
            OutEvent::SkillHit {
                caster,
                target,
                skill,
                amount,
                ..
            } => Some((*caster, *target, skill.clone(), *amount)),
            _ => None,
        })
        .collect()
}
