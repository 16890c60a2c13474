//! The world's door out: events for players and the host, drained after each tick.
//!
//! This is a deliberate registry of everything a world can say; keep it in
//! one file so the protocol layer has one place to map from.

use bevy_ecs::resource::Resource;
use serde::{Deserialize, Serialize};

use crate::{
    entity::SimId,
    input::{ChatChannel, PlayerId, SkillTarget, TeamId},
};

/// Why the world refused an input. Every refusal reaches the sender as data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Rejection {
    /// `Join` from a player who is already in this world.
    AlreadyJoined,
    /// An input from a player who has not joined this world.
    NotJoined,
    /// The world is at capacity.
    WorldFull,
    /// `Join` with a class the tables do not have.
    UnknownClass,
    /// The avatar is dead.
    Dead,
    /// No such skill in the tables.
    UnknownSkill,
    /// The avatar's class does not know the skill.
    SkillNotKnown,
    /// The skill is cooling down.
    Cooldown,
    /// Another cast is in progress.
    AlreadyCasting,
    /// The target does not exist in this world.
    NoSuchTarget,
    /// The target is dead.
    TargetDead,
    /// The target is beyond the skill's range.
    OutOfRange,
    /// A damage skill aimed at a friend.
    NotHostile,
    /// A heal aimed at an enemy.
    NotFriendly,
    /// The target kind does not suit the skill (e.g. a point for a single-target skill).
    WrongTargetKind,
    /// The room is not running (skills wait for the fight to start).
    NotRunning,
    /// Already in a team.
    AlreadyInTeam,
    /// Not in a team.
    NotInTeam,
    /// Only the team leader may do that.
    NotLeader,
    /// The team is at its size limit.
    TeamFull,
    /// No pending invitation from that team.
    NoInvite,
    /// The player is not a member of the team.
    NotAMember,
    /// The player is not in this world.
    NoSuchPlayer,
    /// Chat text is empty after trimming.
    ChatEmpty,
    /// Chat text exceeds the length limit.
    ChatTooLong,
    /// Too many chat messages; wait.
    ChatRateLimited,
    /// Only the room's owner may start it.
    NotOwner,
    /// Not enough players to start.
    NotEnoughPlayers,
}

/// A team's membership, as sent to its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamView {
    /// The team.
    pub team: TeamId,
    /// Its leader.
    pub leader: PlayerId,
    /// Members in the order they joined.
    pub members: Vec<PlayerId>,
}

/// One player's numbers in a finished room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerResult {
    /// The player.
    pub player: PlayerId,
    /// Their side.
    pub side: u8,
    /// Kills.
    pub kills: u32,
    /// Deaths.
    pub deaths: u32,
    /// Damage dealt.
    pub damage: u64,
    /// Healing done.
    pub healing: u64,
}

/// How a room ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomResult {
    /// The winning side, `None` for a draw.
    pub winner: Option<u8>,
    /// The tick it finished.
    pub finished_at: u64,
    /// Per-player numbers, by player id.
    pub players: Vec<PlayerResult>,
}

/// A room's lifecycle stage, as announced to its players.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomStage {
    /// Gathering players.
    Waiting,
    /// Starting at the given tick.
    Countdown {
        /// The first running tick.
        starts_at: u64,
    },
    /// Fighting.
    Running,
    /// Over.
    Finished,
}

/// Something that happened during a tick that someone outside should hear about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OutEvent {
    /// A player's avatar entered the world.
    Joined {
        /// The player.
        player: PlayerId,
        /// Their avatar's stable id in this world.
        id: SimId,
    },
    /// A player's avatar left the world.
    Left {
        /// The player.
        player: PlayerId,
    },
    /// An input was refused; goes back to `player` only.
    Rejected {
        /// The sender of the refused input.
        player: PlayerId,
        /// The request number the input came with (0: none).
        request: u32,
        /// Why.
        reason: Rejection,
    },
    /// A cast began (the cooldown starts now).
    CastStarted {
        /// Who casts.
        caster: SimId,
        /// The skill.
        skill: String,
        /// At what.
        target: SkillTarget,
        /// The tick the effect lands.
        lands_at: u64,
    },
    /// A cast could not land (target died or moved away meanwhile).
    CastFailed {
        /// Who cast.
        caster: SimId,
        /// The skill.
        skill: String,
        /// Why.
        reason: Rejection,
    },
    /// A skill hit: damage (negative `amount`) or a heal (positive).
    SkillHit {
        /// Who cast.
        caster: SimId,
        /// Who was hit.
        target: SimId,
        /// The skill.
        skill: String,
        /// HP change applied.
        amount: i32,
        /// The target's HP afterwards.
        hp: i32,
    },
    /// An entity died.
    Died {
        /// Who.
        id: SimId,
        /// The last entity to damage it.
        killer: Option<SimId>,
    },
    /// An entity came back to life.
    Respawned {
        /// Who.
        id: SimId,
    },
    /// A player reached a new level.
    LevelUp {
        /// The player.
        player: PlayerId,
        /// The new level.
        level: u32,
    },
    /// A player was invited to a team.
    TeamInvite {
        /// The invitee.
        to: PlayerId,
        /// The team.
        team: TeamId,
        /// The inviter.
        by: PlayerId,
    },
    /// A team's membership changed; sent to every member.
    TeamChanged {
        /// The recipients.
        to: Vec<PlayerId>,
        /// The team as it is now.
        view: TeamView,
    },
    /// A player is no longer in a team (left, kicked or disbanded).
    TeamLeft {
        /// The player.
        to: PlayerId,
        /// The team.
        team: TeamId,
        /// Whether they were kicked.
        kicked: bool,
    },
    /// A team member's health, for the other members.
    TeamMemberHp {
        /// The recipients.
        to: Vec<PlayerId>,
        /// Whose health.
        member: PlayerId,
        /// HP.
        hp: i32,
        /// Max HP.
        max_hp: i32,
    },
    /// A chat message.
    Chat {
        /// The recipients; `None` means everyone in the world.
        to: Option<Vec<PlayerId>>,
        /// The sender.
        from: PlayerId,
        /// The channel.
        channel: ChatChannel,
        /// The text.
        text: String,
    },
    /// A room changed stage.
    RoomStage {
        /// The stage.
        stage: RoomStage,
    },
    /// A player was put on a side in a room.
    RoomSide {
        /// The player.
        player: PlayerId,
        /// The side.
        side: u8,
    },
    /// A room finished; for persistence and the players.
    RoomFinished(RoomResult),
    /// Every player left a room: the host should end this world.
    RoomEmpty,
}

/// Events produced this tick, drained by the host after the tick ends.
#[derive(Resource, Default, Debug)]
pub struct Outbox {
    events: Vec<OutEvent>,
}

impl Outbox {
    /// Queues an event for the host.
    pub fn push(&mut self, event: OutEvent) {
        self.events.push(event);
    }

    /// Queues a refusal for `player`.
    pub fn reject(&mut self, player: PlayerId, request: u32, reason: Rejection) {
        self.events.push(OutEvent::Rejected {
            player,
            request,
            reason,
        });
    }

    /// Events queued so far this tick.
    pub fn events(&self) -> &[OutEvent] {
        &self.events
    }

    /// Takes every queued event.
    pub fn take(&mut self) -> Vec<OutEvent> {
        std::mem::take(&mut self.events)
    }
}
