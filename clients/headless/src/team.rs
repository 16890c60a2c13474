//! The `team` behaviour: form a team or take an invitation, then follow the
//! leader, keeping within a few metres of them.
//!
//! It works from what a real client sees: team events (`team_invite`,
//! `team`) and snapshots. The leader creates the team and invites the
//! players it is given (more may be added later); a member accepts the
//! first invitation and then steers toward the leader's avatar whenever it
//! is farther than `keep_within`. A leader given a room kind queues the
//! whole team for it once the team is complete.

use tessera_net::proto::{self, client_message::Body, event, team_command};

/// A player's part in a team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Creates the team and invites these players.
    Leader {
        /// Who to invite.
        invite: Vec<u64>,
    },
    /// Accepts an invitation and follows the leader.
    Member,
}

/// The team behaviour's state.
#[derive(Clone, Debug)]
pub struct Team {
    role: Role,
    keep_within_dm: i32,
    created: bool,
    invited: std::collections::BTreeSet<u64>,
    /// Queue the team for this room kind once it has this many members.
    queue: Option<(String, usize)>,
    /// The queue command went out.
    pub queued: bool,
    /// The team as last announced.
    pub view: Option<proto::TeamView>,
    seq: u32,
}

impl Team {
    /// A bot playing `role`, following within `keep_within_dm` decimetres.
    pub fn new(role: Role, keep_within_dm: i32) -> Self {
        Self {
            role,
            keep_within_dm,
            created: false,
            invited: Default::default(),
            queue: None,
            queued: false,
            view: None,
            seq: 0,
        }
    }

    /// Leaders: once the team has `size` members, queue it for `kind`.
    pub fn queue_for(mut self, kind: &str, size: usize) -> Self {
        self.queue = Some((kind.to_string(), size));
        self
    }

    /// Leaders: invite these players too (each once).
    pub fn invite(&mut self, players: impl IntoIterator<Item = u64>) {
        if let Role::Leader { invite } = &mut self.role {
            for player in players {
                if !invite.contains(&player) {
                    invite.push(player);
                }
            }
        }
    }

    /// Starts over (back in a zone after a room: the team is formed again).
    pub fn reset(&mut self) {
        self.created = false;
        self.invited.clear();
        self.queued = false;
        self.view = None;
    }

    /// The messages to send after reading `events` (the session's new
    /// events) and `snapshot` (its latest view of the world).
    pub fn step(
        &mut self,
        events: &[proto::Event],
        snapshot: Option<&proto::Snapshot>,
    ) -> Vec<Body> {
        let mut out = Vec::new();
        let team = |kind| Body::Team(proto::TeamCommand { kind: Some(kind) });
        for event in events {
            match &event.kind {
                Some(event::Kind::Team(view)) => self.view = Some(view.clone()),
                // Of this team: a late notice of an old one (reliable
                // messages are not ordered) leaves a new team alone.
                Some(event::Kind::TeamLeft(left))
                    if self
                        .view
                        .as_ref()
                        .is_some_and(|view| view.team == left.team) =>
                {
                    self.view = None
                }
                Some(event::Kind::TeamInvite(invite))
                    if self.role == Role::Member && self.view.is_none() =>
                {
                    out.push(team(team_command::Kind::Accept(invite.team)));
                }
                _ => {}
            }
        }
        if let Role::Leader { invite } = &self.role {
            if !self.created {
                self.created = true;
                out.push(team(team_command::Kind::Create(proto::Empty {})));
            } else if let Some(view) = &self.view {
                for player in invite {
                    if self.invited.insert(*player) {
                        out.push(team(team_command::Kind::Invite(*player)));
                    }
                }
                if let Some((kind, size)) = &self.queue
                    && !self.queued
                    && view.members.len() >= *size
                {
                    self.queued = true;
                    out.push(Body::Room(proto::RoomCommand {
                        kind: Some(proto::room_command::Kind::Queue(proto::RoomQueue {
                            kind: kind.clone(),
                            class: String::new(),
                        })),
                    }));
                }
            }
            return out;
        }
        if let (Some(view), Some(snapshot)) = (&self.view, snapshot)
            && let Some(leader) = snapshot.entities.iter().find(|e| e.player == view.leader)
            && let Some(me) = snapshot.entities.iter().find(|e| e.id == snapshot.avatar)
        {
            let (dx, dy) = (leader.x_dm - me.x_dm, leader.y_dm - me.y_dm);
            let far = dx.abs().max(dy.abs()) > self.keep_within_dm;
            let scale = i64::from(dx.abs().max(dy.abs()).max(1));
            let dir = |d: i32| {
                if far {
                    (i64::from(d) * i64::from(i16::MAX) / scale) as i32
                } else {
                    0
                }
            };
            self.seq += 1;
            out.push(Body::Move(proto::MoveInput {
                seq: self.seq,
                dir_x: dir(dx),
                dir_y: dir(dy),
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: event::Kind) -> proto::Event {
        proto::Event { kind: Some(kind) }
    }

    /// A team is gone when the notice names it; a late notice of an
    /// earlier team (reliable messages arrive in any order) leaves the
    /// team the player is in now.
    #[test]
    fn only_a_notice_naming_the_team_ends_it() {
        let mut team = Team::new(Role::Member, 30);
        let view = proto::TeamView {
            team: 7,
            leader: 1,
            members: vec![1, 2],
        };
        let left = |team| {
            event(event::Kind::TeamLeft(proto::TeamLeft {
                team,
                kicked: false,
                reason: String::new(),
            }))
        };
        team.step(&[event(event::Kind::Team(view.clone())), left(6)], None);
        assert_eq!(team.view, Some(view));
        team.step(&[left(7)], None);
        assert_eq!(team.view, None);
    }
}
