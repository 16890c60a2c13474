//! Checkpoints: a world's whole gameplay state between two ticks, from which
//! a world is rebuilt that goes on exactly as the original would.
//!
//! Frame-sync rooms hand one (plus the bundles after it) to a late joiner, a
//! reconnecting client or a desynced one, so that catching up costs the same
//! whatever the room's age.
//!
//! # What is in one
//!
//! Every component of every gameplay entity, and every resource a tick reads
//! that is not rebuilt from scratch: the tick, the RNG, the id allocator, the
//! zone set-up flag, rules, room, teams, chat history, parked progress and the
//! spatial grid (NPCs read the previous tick's grid before it is rebuilt). The
//! player index is rebuilt from the avatars. Inbox and outbox are left out:
//! queued inputs belong to the next tick, events to the last. The last tick's
//! hash parts are kept so that `hash_parts` reads the same after a restore.
//!
//! # Why entity order is part of the state
//!
//! Systems walk queries in storage order: tables in the order their
//! archetypes were created, each row by row, and a table's row order is the
//! history of its spawns and swap-removing despawns. The spatial grid files
//! entities in that order too. Today's systems sort by `SimId` before
//! anything order-sensitive (RNG draws, nearest-target ties), but one that
//! did not would make the order part of the state, and nothing would notice
//! until a restored world diverged. So a checkpoint keeps it: archetypes in
//! creation order (empty ones too) with their entities in row order, and a
//! restore spawns them in that order, one whole bundle per entity, which
//! makes bevy create the same archetypes, tables and rows. Without `unsafe` only shapes known at compile time can be spawned in
//! one step: the two the sim spawns, [`AvatarBundle`] and [`NpcBundle`]. An
//! entity of any other shape fails the checkpoint rather than come back
//! different, and a restore walks its own storage afterwards and refuses to
//! hand out a world whose order differs from the checkpoint's.
//!
//! # Change detection
//!
//! Team health sharing reads `Changed<Health>`, which compares a component's
//! change tick with the last run of the reading system. The systems of a
//! rebuilt world have never run, so every restored component would look
//! changed on its first tick. Restored components are therefore aged past
//! bevy's change horizon, so that the first tick sees as changed exactly what
//! the original's would: what that tick itself changes. This holds because
//! nothing writes gameplay components after the `Output` stage.

mod ids;
mod restore;

pub(crate) use ids::unchecked_ids;

use bevy_ecs::{
    bundle::Bundle,
    change_detection::Tick,
    component::{Component, ComponentId, Components},
    entity::Entity,
    world::{EntityRef, EntityWorldMut, World},
};
use serde::{Deserialize, Deserializer, Serialize};
use tessera_tables::TablesHash;

use crate::{
    chat::ChatHistory,
    combat::components::{
        Allegiance, BaseStats, Buffs, Casting, CombatStats, Cooldowns, Experience, Health, Home,
        KnownSkills,
    },
    entity::{SimId, SimIds},
    movement::{LastInputSeq, MoveIntent, Position, Speed},
    npc::{Npc, NpcBundle},
    players::{AvatarBundle, ClassOf, Parked, Player, PlayerIndex},
    rng::SimRng,
    room::Room,
    rules::WorldRules,
    spatial::SpatialGrid,
    teams::Teams,
    world::{SimWorld, SpecError, WorldSpec},
    zone::ZoneSetUp,
};

/// The format this build writes and reads.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

/// Most entity ids a checkpoint may have handed out. Restoring the allocator
/// takes a slot per id ever handed out, so a bound keeps a hostile checkpoint
/// from asking for gigabytes (this one costs at most 128 MiB).
pub const MAX_SIM_IDS: u64 = 1 << 24;

/// Why a checkpoint could not be taken, read or restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The checkpoint could not be encoded.
    #[error("checkpoint encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The bytes are not a checkpoint.
    #[error("checkpoint is not valid: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// A checkpoint of another format.
    #[error(
        "checkpoint format version {found} is not supported (this build reads {CHECKPOINT_FORMAT_VERSION})"
    )]
    Version {
        /// The version in the checkpoint.
        found: u32,
    },
    /// The checkpoint's world spec cannot be built.
    #[error("checkpoint world spec is invalid: {0}")]
    Spec(#[from] SpecError),
    /// The tables given are not the ones the world ran on.
    #[error("checkpoint was taken on tables {recorded} but the tables given are {given}")]
    Tables {
        /// The checkpoint's tables.
        recorded: TablesHash,
        /// The tables given.
        given: TablesHash,
    },
    /// The checkpoint comes from a sim that hashes different state.
    #[error("checkpoint hashes {recorded:?} but this build hashes {current:?}")]
    HashLayout {
        /// Part names in the checkpoint.
        recorded: Vec<String>,
        /// Part names in this build.
        current: Vec<String>,
    },
    /// Entities of a shape a restore could not recreate exactly.
    #[error(
        "entities with components {components:?} cannot be checkpointed: only avatars and NPCs are restored in order"
    )]
    Shape {
        /// The archetype's components (unknown ones by number).
        components: Vec<String>,
    },
    /// More entity ids were handed out than a checkpoint carries.
    #[error("{allocated} entity ids were handed out; a checkpoint carries at most {MAX_SIM_IDS}")]
    TooManyIds {
        /// Ids handed out.
        allocated: u64,
    },
    /// The world's bookkeeping, or the checkpoint's, contradicts itself.
    #[error("inconsistent world state: {0}")]
    Inconsistent(&'static str),
    /// The rebuilt world would walk its entities in another order than the
    /// original did, so it would diverge.
    #[error("the restored world does not lay out its entities as the original did")]
    Order,
    /// The tick schedule could not be built.
    #[error("cannot build the tick schedule: {0}")]
    Schedule(String),
}

/// One archetype's entities, in row order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Storage {
    Avatars(Vec<AvatarBundle>),
    Npcs(Vec<NpcBundle>),
}

/// The shapes a checkpoint can restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Avatar,
    Npc,
}

/// A world's gameplay state after some tick. Built by
/// [`SimWorld::checkpoint`], turned back into a world by
/// [`SimWorld::from_checkpoint`]; MessagePack on the wire
/// ([`Checkpoint::to_bytes`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    // First, so that any later format can still be told apart.
    format_version: u32,
    spec: WorldSpec,
    tables_hash: u64,
    hash_names: Vec<String>,
    tick: u64,
    hash: u64,
    hash_parts: Vec<u64>,
    rng: SimRng,
    ids_allocated: u64,
    /// In archetype creation order.
    storages: Vec<Storage>,
    /// The spatial grid's entries in its own order.
    grid: Vec<(SimId, Position, Allegiance)>,
    zone_set_up: bool,
    rules: WorldRules,
    room: Room,
    teams: Teams,
    chat: ChatHistory,
    parked: Parked,
}

impl Checkpoint {
    /// The tick it was taken after.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// The state hash of that tick.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The world's spec.
    pub fn spec(&self) -> &WorldSpec {
        &self.spec
    }

    /// The content hash of the tables the world ran on.
    pub fn tables_hash(&self) -> TablesHash {
        TablesHash(self.tables_hash)
    }

    /// How many entities it holds.
    pub fn entities(&self) -> usize {
        self.storages
            .iter()
            .map(|s| match s {
                Storage::Avatars(list) => list.len(),
                Storage::Npcs(list) => list.len(),
            })
            .sum()
    }

    /// MessagePack (rmp-serde, fields as arrays).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        Ok(rmp_serde::to_vec(self)?)
    }

    /// Reads [`Checkpoint::to_bytes`]'s output; any other bytes give an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CheckpointError> {
        match rmp_serde::from_slice::<Self>(bytes) {
            Ok(checkpoint) if checkpoint.format_version == CHECKPOINT_FORMAT_VERSION => {
                Ok(checkpoint)
            }
            Ok(checkpoint) => Err(CheckpointError::Version {
                found: checkpoint.format_version,
            }),
            // Another version's layout fails to decode: name its version if it has one.
            Err(error) => match rmp_serde::from_slice::<LeadingVersion>(bytes) {
                Ok(LeadingVersion(found)) if found != CHECKPOINT_FORMAT_VERSION => {
                    Err(CheckpointError::Version { found })
                }
                _ => Err(error.into()),
            },
        }
    }
}

/// The first field of an encoded checkpoint, whatever follows it.
struct LeadingVersion(u32);

impl<'de> Deserialize<'de> for LeadingVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = LeadingVersion;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array starting with a format version")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let version = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(LeadingVersion(version))
            }
        }
        deserializer.deserialize_seq(Visit)
    }
}

impl SimWorld {
    /// The world's gameplay state now (between ticks). Fails when the world
    /// holds entities a restore could not recreate in the same order, or its
    /// bookkeeping contradicts itself, rather than produce a checkpoint that
    /// would diverge.
    pub fn checkpoint(&self) -> Result<Checkpoint, CheckpointError> {
        let world = self.world();
        let ids = world.resource::<SimIds>();
        if ids.allocated() > MAX_SIM_IDS {
            return Err(CheckpointError::TooManyIds {
                allocated: ids.allocated(),
            });
        }
        let mut storages = Vec::new();
        let mut entities = 0;
        let mut avatars = Vec::new();
        for (shape, rows) in layout(world)? {
            for entity in &rows {
                let id = world.get::<SimId>(*entity).copied();
                if id.and_then(|id| ids.get(id)) != Some(*entity) {
                    return Err(CheckpointError::Inconsistent(
                        "an entity's SimId is not bound to it",
                    ));
                }
            }
            entities += rows.len();
            let read = |entity: &Entity| world.get_entity(*entity).ok();
            let missing = CheckpointError::Inconsistent("an entity lacks a component of its shape");
            storages.push(match shape {
                Shape::Avatar => {
                    let list: Vec<AvatarBundle> = rows
                        .iter()
                        .map(|e| read(e).and_then(read_avatar))
                        .collect::<Option<_>>()
                        .ok_or(missing)?;
                    avatars.extend(rows.iter().zip(&list).map(|(e, a)| (a.player.0, *e)));
                    Storage::Avatars(list)
                }
                Shape::Npc => Storage::Npcs(
                    rows.iter()
                        .map(|e| read(e).and_then(read_npc))
                        .collect::<Option<_>>()
                        .ok_or(missing)?,
                ),
            });
        }
        if ids.live().count() != entities {
            return Err(CheckpointError::Inconsistent(
                "a live SimId names no avatar or NPC",
            ));
        }
        avatars.sort();
        if !world.resource::<PlayerIndex>().iter().eq(avatars) {
            return Err(CheckpointError::Inconsistent(
                "the player index disagrees with the avatars",
            ));
        }
        let grid = world
            .resource::<SpatialGrid>()
            .entries()
            .iter()
            .map(|e| {
                (ids.get(e.id) == Some(e.entity))
                    .then_some((e.id, e.position, e.allegiance))
                    .ok_or(CheckpointError::Inconsistent(
                        "the spatial grid names a despawned entity",
                    ))
            })
            .collect::<Result<_, _>>()?;
        Ok(Checkpoint {
            format_version: CHECKPOINT_FORMAT_VERSION,
            spec: self.spec().clone(),
            tables_hash: self.tables_hash().0,
            hash_names: self.hash_part_names(),
            tick: self.tick(),
            hash: self.last_hash(),
            hash_parts: self.hash_parts().to_vec(),
            rng: world.resource::<SimRng>().clone(),
            ids_allocated: ids.allocated(),
            storages,
            grid,
            zone_set_up: world.resource::<ZoneSetUp>().0,
            rules: world.resource::<WorldRules>().clone(),
            room: world.resource::<Room>().clone(),
            teams: world.resource::<Teams>().clone(),
            chat: world.resource::<ChatHistory>().clone(),
            parked: world.resource::<Parked>().clone(),
        })
    }
}

/// The gameplay archetypes in creation order (the order a query walks their
/// tables), each with its shape and its entities in row order.
fn layout(world: &World) -> Result<Vec<(Shape, Vec<Entity>)>, CheckpointError> {
    let components = world.components();
    let shapes = [
        (Shape::Avatar, component_set::<AvatarBundle>(components)),
        (Shape::Npc, component_set::<NpcBundle>(components)),
    ];
    let known = known_components(components);
    let mut out = Vec::new();
    for archetype in world.archetypes().iter() {
        let mut set = archetype.components().to_vec();
        if !set.iter().any(|c| known.iter().any(|(k, _)| k == c)) {
            continue;
        }
        set.sort();
        let Some(shape) = shapes
            .iter()
            .find(|(_, ids)| ids.as_ref() == Some(&set))
            .map(|(shape, _)| *shape)
        else {
            let names = set
                .iter()
                .map(|c| match known.iter().find(|(k, _)| k == c) {
                    Some((_, name)) => (*name).to_string(),
                    None => format!("component #{}", c.index()),
                })
                .collect();
            return Err(CheckpointError::Shape { components: names });
        };
        // Dense queries walk tables; with one archetype per table the rows
        // are the archetype's entities, in the same order.
        let rows = world
            .storages()
            .tables
            .get(archetype.table_id())
            .map_or(&[][..], |t| t.entities());
        if !rows
            .iter()
            .copied()
            .eq(archetype.entities().iter().map(|e| e.id()))
        {
            return Err(CheckpointError::Order);
        }
        out.push((shape, rows.to_vec()));
    }
    Ok(out)
}

/// A bundle's components, sorted; `None` while one is not registered.
fn component_set<B: Bundle>(components: &Components) -> Option<Vec<ComponentId>> {
    let mut ids = B::get_component_ids(components).collect::<Option<Vec<_>>>()?;
    ids.sort();
    Some(ids)
}

macro_rules! gameplay_components {
    ($($t:ty),* $(,)?) => {
        /// Every registered gameplay component with its name.
        fn known_components(components: &Components) -> Vec<(ComponentId, &'static str)> {
            let mut out = Vec::new();
            $(
                if let Some(id) = components.component_id::<$t>() {
                    out.push((id, stringify!($t)));
                }
            )*
            out
        }

        /// Marks every gameplay component of `entity` as last added (and
        /// changed) at `tick`.
        fn age_components(entity: &mut EntityWorldMut, tick: Tick) {
            $( restore::age::<$t>(entity, tick); )*
        }
    };
}

gameplay_components!(
    SimId,
    Player,
    ClassOf,
    Position,
    MoveIntent,
    Speed,
    LastInputSeq,
    Home,
    Npc,
    Health,
    Allegiance,
    KnownSkills,
    Cooldowns,
    Casting,
    Buffs,
    BaseStats,
    Experience,
    CombatStats,
);

fn take<T: Component + Clone>(entity: &EntityRef) -> Option<T> {
    entity.get::<T>().cloned()
}

fn read_avatar(e: EntityRef) -> Option<AvatarBundle> {
    Some(AvatarBundle {
        id: take(&e)?,
        player: take(&e)?,
        class: take(&e)?,
        position: take(&e)?,
        intent: take(&e)?,
        speed: take(&e)?,
        last_input: take(&e)?,
        health: take(&e)?,
        allegiance: take(&e)?,
        skills: take(&e)?,
        cooldowns: take(&e)?,
        casting: take(&e)?,
        buffs: take(&e)?,
        base: take(&e)?,
        experience: take(&e)?,
        stats: take(&e)?,
    })
}

fn read_npc(e: EntityRef) -> Option<NpcBundle> {
    Some(NpcBundle {
        id: take(&e)?,
        position: take(&e)?,
        intent: take(&e)?,
        speed: take(&e)?,
        last_input: take(&e)?,
        home: take(&e)?,
        npc: take(&e)?,
        health: take(&e)?,
        allegiance: take(&e)?,
        skills: take(&e)?,
        cooldowns: take(&e)?,
        casting: take(&e)?,
        buffs: take(&e)?,
        base: take(&e)?,
        stats: take(&e)?,
    })
}
