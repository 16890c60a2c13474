//! Matchmaking: a queue per room kind that forms rooms from solo players and
//! whole teams. A party is never split and always shares a side; sides are
//! kept as even as parties allow. A room forms when full, or with at least
//! the minimum once the oldest ticket has waited its budget. Time is given
//! by the caller (any monotonic unit), never read here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::input::PlayerId;

/// How rooms of one kind are filled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRules {
    /// Players in a full room.
    pub room_size: usize,
    /// Sides in a room.
    pub sides: usize,
    /// Fewest players to start a room after the wait budget.
    pub min_players: usize,
    /// How long the oldest ticket waits for a full room.
    pub wait_budget: u64,
}

impl QueueRules {
    fn side_capacity(&self) -> usize {
        self.room_size.div_ceil(self.sides.max(1))
    }
}

/// Why a party could not queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// No queue for that kind.
    #[error("no queue for that room kind")]
    UnknownKind,
    /// A member is already queued.
    #[error("a member is already queued")]
    AlreadyQueued,
    /// The party cannot fit one side.
    #[error("the party is larger than a side")]
    PartyTooBig,
    /// An empty party.
    #[error("empty party")]
    EmptyParty,
}

/// A formed room: the kind and, per side, its players.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// The room kind.
    pub kind: String,
    /// Players per side.
    pub sides: Vec<Vec<PlayerId>>,
}

#[derive(Clone, Debug)]
struct Ticket {
    party: Vec<PlayerId>,
    since: u64,
}

#[derive(Clone, Debug)]
struct Queue {
    rules: QueueRules,
    tickets: Vec<Ticket>,
}

/// Every queue.
#[derive(Clone, Debug, Default)]
pub struct Matchmaker {
    queues: BTreeMap<String, Queue>,
    queued: BTreeMap<PlayerId, String>,
}

impl Matchmaker {
    /// Opens a queue for `kind`, or sets the rules of the one open (its
    /// tickets stay: dropping them would strand their players as queued).
    pub fn add_queue(&mut self, kind: &str, rules: QueueRules) {
        self.queues
            .entry(kind.into())
            .and_modify(|queue| queue.rules = rules.clone())
            .or_insert(Queue {
                rules,
                tickets: Vec::new(),
            });
    }

    /// Queues a party (one player, or a whole team) at time `now`.
    pub fn enqueue(
        &mut self,
        kind: &str,
        party: Vec<PlayerId>,
        now: u64,
    ) -> Result<(), QueueError> {
        let queue = self.queues.get_mut(kind).ok_or(QueueError::UnknownKind)?;
        if party.is_empty() {
            return Err(QueueError::EmptyParty);
        }
        if party.iter().any(|p| self.queued.contains_key(p)) {
            return Err(QueueError::AlreadyQueued);
        }
        if party.len() > queue.rules.side_capacity() {
            return Err(QueueError::PartyTooBig);
        }
        for player in &party {
            self.queued.insert(*player, kind.into());
        }
        queue.tickets.push(Ticket { party, since: now });
        Ok(())
    }

    /// Takes `player`'s whole party out of its queue; `false` if not queued.
    pub fn cancel(&mut self, player: PlayerId) -> bool {
        let Some(kind) = self.queued.get(&player).cloned() else {
            return false;
        };
        let Some(queue) = self.queues.get_mut(&kind) else {
            self.queued.remove(&player);
            return false;
        };
        if let Some(index) = queue.tickets.iter().position(|t| t.party.contains(&player)) {
            for member in queue.tickets.remove(index).party {
                self.queued.remove(&member);
            }
        }
        true
    }

    /// The kind `player` is queued for.
    pub fn queued_for(&self, player: PlayerId) -> Option<&str> {
        self.queued.get(&player).map(String::as_str)
    }

    /// Players waiting in `kind`'s queue.
    pub fn waiting(&self, kind: &str) -> usize {
        self.queues
            .get(kind)
            .map_or(0, |q| q.tickets.iter().map(|t| t.party.len()).sum())
    }

    /// Forms every room that can be formed at time `now`.
    pub fn poll(&mut self, now: u64) -> Vec<Match> {
        let mut formed = Vec::new();
        for (kind, queue) in &mut self.queues {
            while let Some(found) = Self::form(queue, now) {
                for side in &found {
                    for player in side {
                        self.queued.remove(player);
                    }
                }
                formed.push(Match {
                    kind: kind.clone(),
                    sides: found,
                });
            }
        }
        formed
    }

    /// Oldest tickets first, each party whole onto the emptiest side it fits.
    fn form(queue: &mut Queue, now: u64) -> Option<Vec<Vec<PlayerId>>> {
        let rules = &queue.rules;
        let oldest = queue.tickets.first()?.since;
        let mut sides: Vec<Vec<PlayerId>> = vec![Vec::new(); rules.sides.max(1)];
        let mut taken = Vec::new();
        let mut total = 0;
        for (index, ticket) in queue.tickets.iter().enumerate() {
            if total + ticket.party.len() > rules.room_size {
                continue;
            }
            let best = (0..sides.len())
                .filter(|s| sides[*s].len() + ticket.party.len() <= rules.side_capacity())
                .min_by_key(|s| (sides[*s].len(), *s));
            if let Some(side) = best {
                sides[side].extend(&ticket.party);
                total += ticket.party.len();
                taken.push(index);
            }
            if total == rules.room_size {
                break;
            }
        }
        let ready = total == rules.room_size
            || (now.saturating_sub(oldest) >= rules.wait_budget
                && total >= rules.min_players.max(1));
        if !ready {
            return None;
        }
        for index in taken.into_iter().rev() {
            queue.tickets.remove(index);
        }
        Some(sides)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena() -> Matchmaker {
        let mut mm = Matchmaker::default();
        mm.add_queue(
            "arena",
            QueueRules {
                room_size: 6,
                sides: 2,
                min_players: 2,
                wait_budget: 100,
            },
        );
        mm
    }

    fn p(ids: &[u64]) -> Vec<PlayerId> {
        ids.iter().map(|i| PlayerId(*i)).collect()
    }

    #[test]
    fn reopening_a_queue_keeps_its_tickets() {
        let mut mm = arena();
        mm.enqueue("arena", p(&[1]), 0).unwrap();
        mm.add_queue(
            "arena",
            QueueRules {
                room_size: 2,
                sides: 2,
                min_players: 2,
                wait_budget: 100,
            },
        );
        assert_eq!(mm.waiting("arena"), 1, "the queued player is still queued");
        mm.enqueue("arena", p(&[2]), 1).unwrap();
        assert_eq!(mm.poll(2).len(), 1, "the new rules form a duel");
        assert!(
            !mm.cancel(PlayerId(1)),
            "matched players are no longer queued"
        );
    }

    #[test]
    fn a_team_of_three_is_never_split_and_shares_a_side() {
        let mut mm = arena();
        mm.enqueue("arena", p(&[1]), 0).unwrap();
        mm.enqueue("arena", p(&[10, 11, 12]), 1).unwrap();
        mm.enqueue("arena", p(&[2]), 2).unwrap();
        mm.enqueue("arena", p(&[3]), 3).unwrap();
        let formed = mm.poll(4);
        assert_eq!(formed.len(), 1);
        let sides = &formed[0].sides;
        let team_side = sides.iter().find(|s| s.contains(&PlayerId(10))).unwrap();
        assert!(team_side.contains(&PlayerId(11)) && team_side.contains(&PlayerId(12)));
        assert_eq!(sides.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3]);
        assert_eq!(mm.waiting("arena"), 0);
    }

    #[test]
    fn parties_that_cannot_fit_wait_for_the_next_room() {
        let mut mm = arena();
        // Three teams of two cannot fill 3 + 3 without splitting one.
        for (i, team) in [[1, 2], [3, 4], [5, 6]].iter().enumerate() {
            mm.enqueue("arena", p(team), i as u64).unwrap();
        }
        mm.enqueue("arena", p(&[7]), 3).unwrap();
        mm.enqueue("arena", p(&[8]), 4).unwrap();
        let formed = mm.poll(5);
        assert_eq!(formed.len(), 1);
        for side in &formed[0].sides {
            assert_eq!(side.len(), 3);
            for pair in [[1, 2], [3, 4], [5, 6]] {
                let has = side.iter().filter(|x| pair.contains(&x.0)).count();
                assert!(
                    has == 0 || has == 2,
                    "team {pair:?} split: {:?}",
                    formed[0].sides
                );
            }
        }
        assert_eq!(mm.waiting("arena"), 2, "one team waits");
    }

    #[test]
    fn the_wait_budget_starts_a_smaller_room() {
        let mut mm = arena();
        mm.enqueue("arena", p(&[1]), 0).unwrap();
        assert!(mm.poll(50).is_empty());
        mm.enqueue("arena", p(&[2]), 60).unwrap();
        assert!(
            mm.poll(99).is_empty(),
            "the oldest has not waited its budget"
        );
        let formed = mm.poll(100);
        assert_eq!(formed[0].sides, vec![p(&[1]), p(&[2])]);
    }

    #[test]
    fn queue_errors() {
        let mut mm = arena();
        assert_eq!(mm.enqueue("nope", p(&[1]), 0), Err(QueueError::UnknownKind));
        assert_eq!(
            mm.enqueue("arena", p(&[1, 2, 3, 4]), 0),
            Err(QueueError::PartyTooBig)
        );
        assert_eq!(mm.enqueue("arena", vec![], 0), Err(QueueError::EmptyParty));
        mm.enqueue("arena", p(&[1, 2]), 0).unwrap();
        assert_eq!(
            mm.enqueue("arena", p(&[2]), 0),
            Err(QueueError::AlreadyQueued)
        );
        assert!(mm.cancel(PlayerId(1)));
        assert_eq!(
            mm.waiting("arena"),
            0,
            "cancelling takes out the whole party"
        );
        assert!(!mm.cancel(PlayerId(2)));
    }
}
