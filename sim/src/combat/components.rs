//! The components of things that fight.

use bevy_ecs::component::Component;
use serde::{Deserialize, Serialize};
use tessera_tables::values::Id;

use crate::{
    entity::SimId,
    hash::{StableHasher, StateHash},
    input::{SkillTarget, TeamId},
    movement::Position,
};

/// Hit points, and when a dead entity comes back.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Current HP, `0..=max`.
    pub hp: i32,
    /// Maximum HP.
    pub max: i32,
    /// `Some(tick)` while dead: the tick it respawns (`u64::MAX`: never).
    pub respawn_at: Option<u64>,
    /// The last entity that damaged it (gets the kill).
    pub last_attacker: Option<SimId>,
}

impl Health {
    /// Full health.
    pub fn full(max: i32) -> Self {
        Self {
            hp: max,
            max,
            respawn_at: None,
            last_attacker: None,
        }
    }

    /// Whether it is alive.
    pub fn alive(&self) -> bool {
        self.respawn_at.is_none()
    }
}

/// Who fights for whom.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allegiance {
    /// Players or NPCs.
    pub faction: Faction,
    /// The player's team, if any.
    pub team: Option<TeamId>,
    /// The player's side in a room, if any.
    pub side: Option<u8>,
}

/// The two sides of the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Faction {
    /// Player avatars.
    Players,
    /// Computer-controlled creatures.
    Npcs,
}

impl Allegiance {
    /// A player's allegiance before joining a team or a side.
    pub const PLAYER: Self = Self {
        faction: Faction::Players,
        team: None,
        side: None,
    };
    /// An NPC's.
    pub const NPC: Self = Self {
        faction: Faction::Npcs,
        team: None,
        side: None,
    };

    /// Whether `self` may damage `other`. Team mates never; players on
    /// different room sides always; other players only where `pvp` is on.
    pub fn hostile_to(&self, other: &Allegiance, pvp: bool) -> bool {
        match (self.faction, other.faction) {
            (Faction::Npcs, Faction::Npcs) => false,
            (Faction::Players, Faction::Players) => {
                if self.team.is_some() && self.team == other.team {
                    return false;
                }
                match (self.side, other.side) {
                    (Some(a), Some(b)) => a != b,
                    _ => pvp,
                }
            }
            _ => true,
        }
    }
}

/// The skills an entity can use (ids of `skills` rows).
#[derive(Component, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownSkills(#[serde(deserialize_with = "crate::checkpoint::unchecked_ids")] pub Vec<Id>);

/// When each used skill is ready again.
#[derive(Component, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cooldowns(
    #[serde(deserialize_with = "crate::checkpoint::unchecked_ids")] pub Vec<(Id, u64)>,
);

impl Cooldowns {
    /// The tick `skill` is ready (0: never used).
    pub fn ready_at(&self, skill: &str) -> u64 {
        self.0
            .iter()
            .find(|(id, _)| id.0 == skill)
            .map_or(0, |(_, t)| *t)
    }

    /// Starts `skill`'s cooldown: ready again at `tick`.
    pub fn start(&mut self, skill: &Id, tick: u64) {
        match self.0.iter_mut().find(|(id, _)| id == skill) {
            Some(entry) => entry.1 = tick,
            None => self.0.push((skill.clone(), tick)),
        }
    }
}

/// A cast in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cast {
    /// The skill.
    #[serde(deserialize_with = "crate::checkpoint::unchecked_ids")]
    pub skill: Id,
    /// The target.
    pub target: SkillTarget,
    /// The tick the effect lands.
    pub lands_at: u64,
}

/// The cast in progress, if any.
#[derive(Component, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Casting(pub Option<Cast>);

/// A buff on an entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveBuff {
    /// The `buffs` row.
    #[serde(deserialize_with = "crate::checkpoint::unchecked_ids")]
    pub id: Id,
    /// Stacks (1 unless the buff stacks).
    pub stacks: u32,
    /// The last tick it is active.
    pub expires_at: u64,
}

/// Buffs currently on an entity.
#[derive(Component, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buffs(pub Vec<ActiveBuff>);

/// Unbuffed numbers, from the class or NPC row (and level).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseStats {
    /// Ground speed, millimetres per second.
    pub speed_mm_s: u32,
    /// Max HP at level 1.
    pub base_hp: i32,
}

/// A player's experience.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experience {
    /// Total XP.
    pub xp: u64,
    /// Level reached (1-based).
    pub level: u32,
}

/// What an entity has done (room results, persistence).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CombatStats {
    /// Kills.
    pub kills: u32,
    /// Deaths.
    pub deaths: u32,
    /// Damage dealt.
    pub damage: u64,
    /// Healing done.
    pub healing: u64,
}

/// Where an entity comes back after death (NPCs: their spawn point).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Home(pub Position);

macro_rules! hash_fields {
    ($($t:ty => |$s:ident, $h:ident| $body:block)*) => {$(
        impl StateHash for $t {
            fn hash_state(&self, $h: &mut StableHasher) {
                let $s = self;
                $body
            }
        }
    )*};
}

fn hash_id(id: &Id, hasher: &mut StableHasher) {
    id.0.hash_state(hasher);
}

fn hash_target(target: &SkillTarget, hasher: &mut StableHasher) {
    match target {
        SkillTarget::Entity(id) => {
            hasher.write_u64(1);
            id.hash_state(hasher);
        }
        SkillTarget::Point { x, y } => {
            hasher.write_u64(2);
            x.hash_state(hasher);
            y.hash_state(hasher);
        }
        SkillTarget::Caster => hasher.write_u64(3),
    }
}

hash_fields! {
    Health => |s, h| { s.hp.hash_state(h); s.max.hash_state(h); s.respawn_at.hash_state(h); s.last_attacker.hash_state(h); }
    Allegiance => |s, h| {
        h.write_u64(match s.faction { Faction::Players => 1, Faction::Npcs => 2 });
        s.team.map(|t| t.0).hash_state(h);
        s.side.hash_state(h);
    }
    KnownSkills => |s, h| { h.write_u64(s.0.len() as u64); s.0.iter().for_each(|id| hash_id(id, h)); }
    Cooldowns => |s, h| { h.write_u64(s.0.len() as u64); for (id, t) in &s.0 { hash_id(id, h); t.hash_state(h); } }
    Casting => |s, h| {
        match &s.0 {
            None => h.write_u64(0),
            Some(cast) => { h.write_u64(1); hash_id(&cast.skill, h); hash_target(&cast.target, h); cast.lands_at.hash_state(h); }
        }
    }
    Buffs => |s, h| { h.write_u64(s.0.len() as u64); for b in &s.0 { hash_id(&b.id, h); b.stacks.hash_state(h); b.expires_at.hash_state(h); } }
    BaseStats => |s, h| { s.speed_mm_s.hash_state(h); s.base_hp.hash_state(h); }
    Experience => |s, h| { s.xp.hash_state(h); s.level.hash_state(h); }
    CombatStats => |s, h| { s.kills.hash_state(h); s.deaths.hash_state(h); s.damage.hash_state(h); s.healing.hash_state(h); }
    Home => |s, h| { s.0.x.hash_state(h); s.0.y.hash_state(h); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostility_rules() {
        let a = Allegiance {
            team: Some(TeamId(1)),
            ..Allegiance::PLAYER
        };
        let mate = Allegiance {
            team: Some(TeamId(1)),
            ..Allegiance::PLAYER
        };
        let stranger = Allegiance::PLAYER;
        assert!(Allegiance::PLAYER.hostile_to(&Allegiance::NPC, false));
        assert!(Allegiance::NPC.hostile_to(&Allegiance::PLAYER, false));
        assert!(!Allegiance::NPC.hostile_to(&Allegiance::NPC, true));
        assert!(
            !a.hostile_to(&mate, true),
            "friendly fire is off even with pvp"
        );
        assert!(!a.hostile_to(&stranger, false), "no pvp in zones");
        assert!(a.hostile_to(&stranger, true));
        let red = Allegiance {
            side: Some(0),
            ..Allegiance::PLAYER
        };
        let blue = Allegiance {
            side: Some(1),
            ..Allegiance::PLAYER
        };
        assert!(red.hostile_to(&blue, false));
        assert!(!red.hostile_to(&red, true));
    }

    #[test]
    fn cooldowns_track_each_skill() {
        let mut cooldowns = Cooldowns::default();
        assert_eq!(cooldowns.ready_at("slash"), 0);
        cooldowns.start(&Id("slash".into()), 40);
        cooldowns.start(&Id("heal".into()), 70);
        cooldowns.start(&Id("slash".into()), 60);
        assert_eq!(
            (cooldowns.ready_at("slash"), cooldowns.ready_at("heal")),
            (60, 70)
        );
    }
}
