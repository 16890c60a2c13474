//! Building a world from a checkpoint, in the steps the module docs of
//! [`crate::checkpoint`] explain: resources, entities in storage order,
//! the spatial grid, change ticks, then a check of the layout.

use std::sync::Arc;

use bevy_app::App;
use bevy_ecs::{
    change_detection::{DetectChangesMut, MAX_CHANGE_AGE, Tick},
    component::{Component, Mutable},
    entity::Entity,
    world::{EntityWorldMut, World},
};
use tessera_tables::{Tables, TablesHash, values::Id};

use super::{
    CHECKPOINT_FORMAT_VERSION, Checkpoint, CheckpointError, MAX_SIM_IDS, Shape, Storage,
    age_components, layout,
};
use crate::{
    chat::ChatHistory,
    combat::components::{
        Allegiance, BaseStats, Buffs, Casting, CombatStats, Cooldowns, Experience, Health, Home,
        KnownSkills,
    },
    entity::{SimId, SimIds},
    input::PlayerId,
    movement::{LastInputSeq, MoveIntent, Position, Speed},
    npc::{Npc, NpcBundle},
    players::{AvatarBundle, ClassOf, Parked, Player, PlayerIndex},
    rng::SimRng,
    room::Room,
    rules::WorldRules,
    schedule::TickSchedule,
    spatial::{GridEntry, SpatialGrid},
    state_hash::StateHashes,
    teams::Teams,
    world::{SimWorld, Tick as SimTick},
    zone::ZoneSetUp,
};

impl SimWorld {
    /// A world that continues from `checkpoint` exactly as the original
    /// would, on `tables` (the ones it ran on).
    pub fn from_checkpoint(
        tables: Arc<Tables>,
        checkpoint: &Checkpoint,
    ) -> Result<Self, CheckpointError> {
        Self::from_checkpoint_with(tables, checkpoint, |_| {})
    }

    /// [`SimWorld::from_checkpoint`] for a world built with extra plugins
    /// (give the same `extra` as the original's [`SimWorld::build`]). State
    /// those plugins add is theirs to restore.
    pub fn from_checkpoint_with(
        tables: Arc<Tables>,
        checkpoint: &Checkpoint,
        extra: impl FnOnce(&mut App),
    ) -> Result<Self, CheckpointError> {
        let cp = checkpoint;
        if cp.format_version != CHECKPOINT_FORMAT_VERSION {
            return Err(CheckpointError::Version {
                found: cp.format_version,
            });
        }
        if cp.ids_allocated > MAX_SIM_IDS {
            return Err(CheckpointError::TooManyIds {
                allocated: cp.ids_allocated,
            });
        }
        let mut sim = SimWorld::build(cp.spec.clone(), extra)?;
        if tables.hash().0 != cp.tables_hash {
            return Err(CheckpointError::Tables {
                recorded: TablesHash(cp.tables_hash),
                given: tables.hash(),
            });
        }
        sim.set_tables(tables);
        if sim.hash_part_names() != cp.hash_names {
            return Err(CheckpointError::HashLayout {
                recorded: cp.hash_names.clone(),
                current: sim.hash_part_names(),
            });
        }
        let world = sim.world_mut();
        // The original built its schedule (registering components and
        // stamping each system's first run) before its first entity: so do we.
        world
            .try_schedule_scope(TickSchedule, |world, schedule| {
                match schedule.initialize(world) {
                    Ok(_) => Ok(()),
                    Err(error) => Err(error.to_string(schedule.graph(), world)),
                }
            })
            .map_err(|e| e.to_string())
            .flatten()
            .map_err(CheckpointError::Schedule)?;
        restore_resources(world, cp)?;
        let (bound, avatars) = spawn_in_order(world, cp);
        let ids = SimIds::restored(cp.ids_allocated, bound.iter().copied()).ok_or(
            CheckpointError::Inconsistent("entity ids are repeated or out of range"),
        )?;
        restore_grid(world, cp, &ids)?;
        *world.resource_mut::<SimIds>() = ids;
        *world.resource_mut::<PlayerIndex>() = PlayerIndex::of(avatars)
            .ok_or(CheckpointError::Inconsistent("a player has two avatars"))?;
        let horizon = Tick::new(world.change_tick().get().wrapping_sub(MAX_CHANGE_AGE));
        for (_, entity) in &bound {
            if let Ok(mut entity) = world.get_entity_mut(*entity) {
                age_components(&mut entity, horizon);
            }
        }
        check_layout(world, cp)?;
        // Placeholder despawns left removal records behind.
        world.clear_trackers();
        sim.restore_clock(cp.tick, cp.hash);
        Ok(sim)
    }
}

fn restore_resources(world: &mut World, cp: &Checkpoint) -> Result<(), CheckpointError> {
    if !world
        .resource_mut::<StateHashes>()
        .restore_parts(&cp.hash_parts)
    {
        return Err(CheckpointError::Inconsistent(
            "hash parts do not match their names",
        ));
    }
    world.resource_mut::<SimTick>().0 = cp.tick;
    *world.resource_mut::<SimRng>() = cp.rng.clone();
    world.resource_mut::<ZoneSetUp>().0 = cp.zone_set_up;
    *world.resource_mut::<WorldRules>() = cp.rules.clone();
    *world.resource_mut::<Room>() = cp.room.clone();
    *world.resource_mut::<Teams>() = cp.teams.clone();
    *world.resource_mut::<ChatHistory>() = cp.chat.clone();
    *world.resource_mut::<Parked>() = cp.parked.clone();
    Ok(())
}

/// Spawns the checkpoint's entities archetype by archetype, row by row, one
/// whole bundle each: bevy then creates the archetypes and tables in the
/// original's order and fills their rows in the original's order. Returns
/// every entity's id, and every avatar's player.
type Spawned = (Vec<(SimId, Entity)>, Vec<(PlayerId, Entity)>);

fn spawn_in_order(world: &mut World, cp: &Checkpoint) -> Spawned {
    let mut bound = Vec::with_capacity(cp.entities());
    let mut avatars = Vec::new();
    for storage in &cp.storages {
        match storage {
            // Nobody in it now, but its place in the order still counts.
            Storage::Avatars(list) if list.is_empty() => {
                world.spawn(placeholder_avatar()).despawn();
            }
            Storage::Npcs(list) if list.is_empty() => {
                world.spawn(placeholder_npc()).despawn();
            }
            Storage::Avatars(list) => {
                for avatar in list {
                    let entity = world.spawn(avatar.clone()).id();
                    bound.push((avatar.id, entity));
                    avatars.push((avatar.player.0, entity));
                }
            }
            Storage::Npcs(list) => {
                for npc in list {
                    bound.push((npc.id, world.spawn(npc.clone()).id()));
                }
            }
        }
    }
    (bound, avatars)
}

fn restore_grid(world: &mut World, cp: &Checkpoint, ids: &SimIds) -> Result<(), CheckpointError> {
    let entries: Vec<GridEntry> = cp
        .grid
        .iter()
        .map(|(id, position, allegiance)| {
            ids.get(*id)
                .map(|entity| GridEntry {
                    id: *id,
                    entity,
                    position: *position,
                    allegiance: *allegiance,
                })
                .ok_or(CheckpointError::Inconsistent(
                    "the spatial grid names an unknown entity",
                ))
        })
        .collect::<Result<_, _>>()?;
    let mut grid = world.resource_mut::<SpatialGrid>();
    grid.rebuild(entries.iter().copied());
    // The same cell geometry files them in the same order; another would not.
    if grid.entries() != entries.as_slice() {
        return Err(CheckpointError::Order);
    }
    Ok(())
}

/// Walks the rebuilt storage as a query would and compares it with the
/// checkpoint's: a world that would iterate differently is never handed out.
fn check_layout(world: &World, cp: &Checkpoint) -> Result<(), CheckpointError> {
    let restored: Vec<(Shape, Vec<Option<SimId>>)> = layout(world)?
        .into_iter()
        .map(|(shape, rows)| {
            let ids = rows.iter().map(|e| world.get::<SimId>(*e).copied());
            (shape, ids.collect())
        })
        .collect();
    let expected: Vec<(Shape, Vec<Option<SimId>>)> = cp
        .storages
        .iter()
        .map(|s| match s {
            Storage::Avatars(list) => (Shape::Avatar, list.iter().map(|a| Some(a.id)).collect()),
            Storage::Npcs(list) => (Shape::Npc, list.iter().map(|n| Some(n.id)).collect()),
        })
        .collect();
    if restored == expected {
        Ok(())
    } else {
        Err(CheckpointError::Order)
    }
}

/// Marks a component as last added (and changed) at `tick`.
pub(super) fn age<T: Component<Mutability = Mutable>>(entity: &mut EntityWorldMut, tick: Tick) {
    if let Some(mut value) = entity.get_mut::<T>() {
        value.set_last_added(tick);
    }
}

fn placeholder_avatar() -> AvatarBundle {
    AvatarBundle {
        id: SimId(0),
        player: Player(PlayerId(0)),
        class: ClassOf(Id(String::new())),
        position: Position::default(),
        intent: MoveIntent::default(),
        speed: Speed(0),
        last_input: LastInputSeq(0),
        health: Health::full(0),
        allegiance: Allegiance::PLAYER,
        skills: KnownSkills::default(),
        cooldowns: Cooldowns::default(),
        casting: Casting::default(),
        buffs: Buffs::default(),
        base: BaseStats {
            speed_mm_s: 0,
            base_hp: 0,
        },
        experience: Experience::default(),
        stats: CombatStats::default(),
    }
}

fn placeholder_npc() -> NpcBundle {
    NpcBundle {
        id: SimId(0),
        position: Position::default(),
        intent: MoveIntent::default(),
        speed: Speed(0),
        last_input: LastInputSeq(0),
        home: Home(Position::default()),
        npc: Npc {
            kind: Id(String::new()),
            target: None,
            leashing: false,
            aggro_mm: 0,
            leash_mm: 0,
            reach_mm: 0,
            wants_to_cast: None,
        },
        health: Health::full(0),
        allegiance: Allegiance::NPC,
        skills: KnownSkills::default(),
        cooldowns: Cooldowns::default(),
        casting: Casting::default(),
        buffs: Buffs::default(),
        base: BaseStats {
            speed_mm_s: 0,
            base_hp: 0,
        },
        stats: CombatStats::default(),
    }
}
