//! Teams: create, invite, accept, decline, leave, kick, promote; one team
//! per player; a size limit; leadership passes on when the leader leaves.

use std::collections::{BTreeMap, BTreeSet};

use bevy_app::{App, Plugin};
use bevy_ecs::{
    change_detection::DetectChanges,
    query::Changed,
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Query, Res, ResMut},
    world::Ref,
};
use serde::{Deserialize, Serialize};

use crate::{
    combat::components::{Allegiance, Health},
    hash::{StableHasher, StateHash},
    input::{Inbox, Input, PlayerId, TeamCommand, TeamId},
    output::{OutEvent, Outbox, Rejection, TeamView},
    players::{Player, PlayerIndex},
    schedule::{TickSchedule, TickSystems},
    state_hash::AppStateHashExt,
};

/// One team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// The leader (also in `members`).
    pub leader: PlayerId,
    /// Members in joining order.
    pub members: Vec<PlayerId>,
}

/// What changed, for the system to announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TeamEffect {
    /// A team's membership or leader changed.
    Changed(TeamId),
    /// `player` left `team` (kicked or not).
    Left {
        /// The player.
        player: PlayerId,
        /// The team.
        team: TeamId,
        /// Kicked by the leader.
        kicked: bool,
    },
    /// `to` was invited to `team` by `by`.
    Invited {
        /// The invitee.
        to: PlayerId,
        /// The team.
        team: TeamId,
        /// The leader who invited.
        by: PlayerId,
    },
}

/// Every team in the world.
#[derive(Resource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Teams {
    next: u64,
    teams: BTreeMap<TeamId, Team>,
    of: BTreeMap<PlayerId, TeamId>,
    invites: BTreeMap<PlayerId, BTreeSet<TeamId>>,
    /// Most members in a team.
    pub max_size: usize,
}

impl Default for Teams {
    fn default() -> Self {
        Self::with_max_size(5)
    }
}

type Outcome = Result<Vec<TeamEffect>, Rejection>;

impl Teams {
    /// No teams, at most `max_size` members each.
    pub fn with_max_size(max_size: usize) -> Self {
        Self {
            next: 0,
            teams: BTreeMap::new(),
            of: BTreeMap::new(),
            invites: BTreeMap::new(),
            max_size: max_size.max(1),
        }
    }

    /// The team of `player`.
    pub fn team_of(&self, player: PlayerId) -> Option<TeamId> {
        self.of.get(&player).copied()
    }

    /// A team.
    pub fn get(&self, team: TeamId) -> Option<&Team> {
        self.teams.get(&team)
    }

    /// A team as its members see it.
    pub fn view(&self, team: TeamId) -> Option<TeamView> {
        self.teams.get(&team).map(|t| TeamView {
            team,
            leader: t.leader,
            members: t.members.clone(),
        })
    }

    fn led_by(&self, leader: PlayerId) -> Result<TeamId, Rejection> {
        let team = self.team_of(leader).ok_or(Rejection::NotInTeam)?;
        if self.teams[&team].leader != leader {
            return Err(Rejection::NotLeader);
        }
        Ok(team)
    }

    /// `player` founds a team.
    pub fn create(&mut self, player: PlayerId) -> Outcome {
        if self.of.contains_key(&player) {
            return Err(Rejection::AlreadyInTeam);
        }
        self.next += 1;
        let team = TeamId(self.next);
        self.teams.insert(
            team,
            Team {
                leader: player,
                members: vec![player],
            },
        );
        self.of.insert(player, team);
        Ok(vec![TeamEffect::Changed(team)])
    }

    /// The leader invites `invitee` (who must be in the world: `present`).
    pub fn invite(&mut self, leader: PlayerId, invitee: PlayerId, present: bool) -> Outcome {
        let team = self.led_by(leader)?;
        if !present {
            return Err(Rejection::NoSuchPlayer);
        }
        if self.of.contains_key(&invitee) {
            return Err(Rejection::AlreadyInTeam);
        }
        if self.teams[&team].members.len() >= self.max_size {
            return Err(Rejection::TeamFull);
        }
        self.invites.entry(invitee).or_default().insert(team);
        Ok(vec![TeamEffect::Invited {
            to: invitee,
            team,
            by: leader,
        }])
    }

    /// `player` accepts `team`'s invitation.
    pub fn accept(&mut self, player: PlayerId, team: TeamId) -> Outcome {
        if !self.invites.get(&player).is_some_and(|i| i.contains(&team)) {
            return Err(Rejection::NoInvite);
        }
        if self.of.contains_key(&player) {
            return Err(Rejection::AlreadyInTeam);
        }
        let Some(entry) = self.teams.get_mut(&team) else {
            self.invites.get_mut(&player).map(|i| i.remove(&team));
            return Err(Rejection::NoInvite);
        };
        if entry.members.len() >= self.max_size {
            return Err(Rejection::TeamFull);
        }
        entry.members.push(player);
        self.of.insert(player, team);
        self.invites.remove(&player);
        Ok(vec![TeamEffect::Changed(team)])
    }

    /// `player` declines `team`'s invitation.
    pub fn decline(&mut self, player: PlayerId, team: TeamId) -> Outcome {
        if self
            .invites
            .get_mut(&player)
            .is_some_and(|pending| pending.remove(&team))
        {
            Ok(Vec::new())
        } else {
            Err(Rejection::NoInvite)
        }
    }

    fn remove(&mut self, player: PlayerId, kicked: bool) -> Vec<TeamEffect> {
        let Some(team) = self.of.remove(&player) else {
            return Vec::new();
        };
        let mut effects = vec![TeamEffect::Left {
            player,
            team,
            kicked,
        }];
        let entry = self.teams.get_mut(&team).expect("a member's team exists");
        entry.members.retain(|m| *m != player);
        if entry.members.is_empty() {
            self.teams.remove(&team);
            for pending in self.invites.values_mut() {
                pending.remove(&team);
            }
        } else {
            if entry.leader == player {
                entry.leader = entry.members[0];
            }
            effects.push(TeamEffect::Changed(team));
        }
        effects
    }

    /// `player` leaves their team.
    pub fn leave(&mut self, player: PlayerId) -> Outcome {
        if !self.of.contains_key(&player) {
            return Err(Rejection::NotInTeam);
        }
        Ok(self.remove(player, false))
    }

    /// The leader removes `member`.
    pub fn kick(&mut self, leader: PlayerId, member: PlayerId) -> Outcome {
        let team = self.led_by(leader)?;
        if member == leader || self.team_of(member) != Some(team) {
            return Err(Rejection::NotAMember);
        }
        Ok(self.remove(member, true))
    }

    /// The leader hands over to `member`.
    pub fn promote(&mut self, leader: PlayerId, member: PlayerId) -> Outcome {
        let team = self.led_by(leader)?;
        if self.team_of(member) != Some(team) {
            return Err(Rejection::NotAMember);
        }
        self.teams.get_mut(&team).expect("exists").leader = member;
        Ok(vec![TeamEffect::Changed(team)])
    }

    /// A player left the world: out of their team, invitations dropped.
    pub fn forget(&mut self, player: PlayerId) -> Vec<TeamEffect> {
        self.invites.remove(&player);
        self.remove(player, false)
    }
}

impl StateHash for Teams {
    fn hash_state(&self, hasher: &mut StableHasher) {
        hasher.write_u64(self.next);
        for (id, team) in &self.teams {
            hasher.write_u64(id.0);
            team.leader.hash_state(hasher);
            team.members.hash_state(hasher);
        }
        for (player, pending) in &self.invites {
            player.hash_state(hasher);
            for team in pending {
                hasher.write_u64(team.0);
            }
        }
    }
}

/// Applies team commands (and leaves from the world), keeps avatars'
/// `Allegiance::team` in step and tells the players concerned.
pub fn apply_team_commands(
    inbox: Res<Inbox>,
    index: Res<PlayerIndex>,
    mut teams: ResMut<Teams>,
    mut allegiances: Query<&mut Allegiance>,
    mut outbox: ResMut<Outbox>,
) {
    for envelope in inbox.pending() {
        let player = envelope.player;
        let outcome = match &envelope.input {
            Input::Leave => Ok(teams.forget(player)),
            Input::Team(command) => match *command {
                TeamCommand::Create => teams.create(player),
                TeamCommand::Invite(invitee) => {
                    let present = index.get(invitee).is_some();
                    teams.invite(player, invitee, present)
                }
                TeamCommand::Accept(team) => teams.accept(player, team),
                TeamCommand::Decline(team) => teams.decline(player, team),
                TeamCommand::Leave => teams.leave(player),
                TeamCommand::Kick(member) => teams.kick(player, member),
                TeamCommand::Promote(member) => teams.promote(player, member),
            },
            _ => continue,
        };
        let effects = match outcome {
            Ok(effects) => effects,
            Err(reason) => {
                outbox.reject(player, envelope.request, reason);
                continue;
            }
        };
        for effect in effects {
            match effect {
                TeamEffect::Changed(team) => {
                    let Some(view) = teams.view(team) else {
                        continue;
                    };
                    for member in &view.members {
                        if let Some(mut allegiance) =
                            index.get(*member).and_then(|e| allegiances.get_mut(e).ok())
                        {
                            allegiance.team = Some(team);
                        }
                    }
                    outbox.push(OutEvent::TeamChanged {
                        to: view.members.clone(),
                        view,
                    });
                }
                TeamEffect::Left {
                    player,
                    team,
                    kicked,
                } => {
                    if let Some(mut allegiance) =
                        index.get(player).and_then(|e| allegiances.get_mut(e).ok())
                    {
                        allegiance.team = None;
                    }
                    outbox.push(OutEvent::TeamLeft {
                        to: player,
                        team,
                        kicked,
                    });
                }
                TeamEffect::Invited { to, team, by } => {
                    outbox.push(OutEvent::TeamInvite { to, team, by })
                }
            }
        }
    }
}

/// Team members see each other's health whenever it changes.
pub fn share_team_health(
    teams: Res<Teams>,
    changed: Query<(&Player, Ref<Health>, &Allegiance), Changed<Health>>,
    mut outbox: ResMut<Outbox>,
) {
    let mut updates: Vec<(PlayerId, TeamId, i32, i32)> = changed
        .iter()
        .filter(|(_, health, _)| health.is_changed())
        .filter_map(|(player, health, allegiance)| {
            allegiance
                .team
                .map(|t| (player.0, t, health.hp, health.max))
        })
        .collect();
    updates.sort();
    for (member, team, hp, max_hp) in updates {
        let Some(entry) = teams.get(team) else {
            continue;
        };
        let to: Vec<PlayerId> = entry
            .members
            .iter()
            .copied()
            .filter(|m| *m != member)
            .collect();
        if !to.is_empty() {
            outbox.push(OutEvent::TeamMemberHp {
                to,
                member,
                hp,
                max_hp,
            });
        }
    }
}

/// Teams and their health sharing.
#[derive(Debug, Clone)]
pub struct TeamsPlugin {
    /// Most members in a team.
    pub max_size: usize,
}

impl Default for TeamsPlugin {
    fn default() -> Self {
        Self { max_size: 5 }
    }
}

impl Plugin for TeamsPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(Teams::with_max_size(self.max_size))
            .add_systems(
                TickSchedule,
                apply_team_commands.in_set(TickSystems::Social),
            )
            .add_systems(TickSchedule, share_team_health.in_set(TickSystems::Output))
            .hash_resource::<Teams>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: PlayerId = PlayerId(1);
    const B: PlayerId = PlayerId(2);
    const C: PlayerId = PlayerId(3);
    const D: PlayerId = PlayerId(4);

    fn team_of_three() -> (Teams, TeamId) {
        let mut teams = Teams::with_max_size(3);
        teams.create(A).unwrap();
        let team = teams.team_of(A).unwrap();
        for p in [B, C] {
            teams.invite(A, p, true).unwrap();
            teams.accept(p, team).unwrap();
        }
        (teams, team)
    }

    #[test]
    fn invite_accept_and_the_size_limit() {
        let (mut teams, team) = team_of_three();
        assert_eq!(teams.get(team).unwrap().members, vec![A, B, C]);
        assert_eq!(teams.invite(A, D, true), Err(Rejection::TeamFull));
        assert_eq!(teams.invite(B, D, true), Err(Rejection::NotLeader));
        assert_eq!(teams.invite(D, A, true), Err(Rejection::NotInTeam));
        assert_eq!(teams.accept(D, team), Err(Rejection::NoInvite));
    }

    #[test]
    fn one_team_per_player() {
        let (mut teams, team) = team_of_three();
        assert_eq!(teams.create(B), Err(Rejection::AlreadyInTeam));
        teams.create(D).unwrap();
        assert_eq!(teams.invite(D, A, true), Err(Rejection::AlreadyInTeam));
        assert_eq!(teams.team_of(A), Some(team));
    }

    #[test]
    fn decline_removes_the_invitation() {
        let mut teams = Teams::default();
        teams.create(A).unwrap();
        let team = teams.team_of(A).unwrap();
        teams.invite(A, B, true).unwrap();
        assert_eq!(teams.decline(B, team), Ok(vec![]));
        assert_eq!(teams.accept(B, team), Err(Rejection::NoInvite));
        assert_eq!(teams.decline(B, team), Err(Rejection::NoInvite));
        assert_eq!(teams.invite(A, C, false), Err(Rejection::NoSuchPlayer));
    }

    #[test]
    fn a_leaving_leader_hands_over_to_the_longest_member() {
        let (mut teams, team) = team_of_three();
        teams.leave(A).unwrap();
        assert_eq!(teams.get(team).unwrap().leader, B);
        assert_eq!(teams.get(team).unwrap().members, vec![B, C]);
        teams.leave(B).unwrap();
        teams.leave(C).unwrap();
        assert!(
            teams.get(team).is_none(),
            "the last one out disbands the team"
        );
        assert_eq!(teams.leave(C), Err(Rejection::NotInTeam));
    }

    #[test]
    fn kick_and_promote_are_for_the_leader() {
        let (mut teams, team) = team_of_three();
        assert_eq!(teams.kick(B, C), Err(Rejection::NotLeader));
        assert_eq!(teams.kick(A, D), Err(Rejection::NotAMember));
        let effects = teams.kick(A, C).unwrap();
        assert_eq!(
            effects[0],
            TeamEffect::Left {
                player: C,
                team,
                kicked: true
            }
        );
        assert_eq!(teams.team_of(C), None);
        teams.promote(A, B).unwrap();
        assert_eq!(teams.get(team).unwrap().leader, B);
        assert_eq!(teams.promote(A, B), Err(Rejection::NotLeader));
    }
}
