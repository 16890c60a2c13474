//! The server's side of snapshot deltas: the views recently sent to each
//! client, which one it acknowledged, and the encoder that writes a
//! snapshot against that one within a byte budget.

use std::collections::VecDeque;

use super::{Seen, flags, zigzag};
use crate::proto;

/// What the server remembers a client knows of one entity: the fields a
/// change can carry. Kind and owner never change for an id, and an entity
/// entering a view is sent from its current state, so they are not kept
/// (a smaller entry: the views of a crowd are read and written twenty
/// times a second, and the encoder waits on that memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Known {
    pub x_dm: i32,
    pub y_dm: i32,
    pub hp: u32,
    pub max_hp: u32,
    pub dead: bool,
}

impl From<&Seen> for Known {
    fn from(seen: &Seen) -> Self {
        Self {
            x_dm: seen.x_dm,
            y_dm: seen.y_dm,
            hp: seen.hp,
            max_hp: seen.max_hp,
            dead: seen.dead,
        }
    }
}

/// The change from `old` to `new`, if any.
fn diff(id: u64, old: &Known, new: &Seen) -> Option<proto::EntityDelta> {
    let mut delta = proto::EntityDelta {
        id,
        dx_dm: new.x_dm.wrapping_sub(old.x_dm),
        dy_dm: new.y_dm.wrapping_sub(old.y_dm),
        ..Default::default()
    };
    if new.hp != old.hp {
        delta.flags |= flags::HP;
        delta.hp = new.hp;
    }
    if new.max_hp != old.max_hp {
        delta.flags |= flags::MAX_HP;
        delta.max_hp = new.max_hp;
    }
    if new.dead != old.dead {
        delta.flags |= flags::DEAD;
        delta.dead = new.dead;
    }
    let changed = delta.dx_dm != 0 || delta.dy_dm != 0 || delta.flags != 0;
    // Kind and owner never change for an id; a different one is a new entity.
    changed.then_some(delta)
}

/// An entity that could be in a player's view this tick.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    /// Its id.
    pub id: u64,
    /// Its state now.
    pub seen: Seen,
    /// Squared distance to the viewer (0 for the viewer itself).
    pub distance_sq: i64,
}

/// A view as the server keeps it: sorted by id (cheaper than a map for
/// the few dozen entries of a view, built and searched every tick).
type SentView = Vec<(u64, Known)>;

/// Views recently sent to one client, and which it acknowledged.
#[derive(Debug, Default)]
pub struct Baselines {
    sent: VecDeque<(u32, SentView)>,
    acked: Option<u32>,
    /// Snapshots each entity has waited through with an unsent change,
    /// sorted by id.
    waiting: Vec<(u64, u32)>,
    /// Buffers reused from tick to tick (a viewer in a crowd is encoded 20
    /// times a second): the view dropped from `sent`, the old waiting list.
    spare: SentView,
    spare_waiting: Vec<(u64, u32)>,
}

/// What one encode decided for a member of the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Not in the view (and nothing waits).
    Absent,
    /// Would enter, but the budget ran out.
    AbsentWaiting,
    /// In the view unchanged.
    Old,
    /// Changed, but the budget ran out: the old state stays.
    OldWaiting,
    /// Sent whole or as a change.
    New,
}

/// Per-encode working space, kept per thread so encoding a crowd of
/// viewers allocates nothing once warm.
#[derive(Default)]
struct Scratch {
    /// Members' indices in id order.
    by_id: Vec<u32>,
    /// Each member's state in the baseline.
    olds: Vec<Option<Known>>,
    /// Each member's place in the baseline (where `olds` has one).
    at: Vec<u32>,
    /// The snapshot's moves: (place, zigzag x, zigzag y) triples.
    moves: Vec<u32>,
    /// How long each member's change has waited.
    waits: Vec<u32>,
    /// Sort keys with a member index in their low bits.
    keys: Vec<u64>,
    outcome: Vec<Outcome>,
    /// Ids that left the view.
    removed: Vec<u64>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Views kept per client: acknowledgements older than this many snapshots
/// find no baseline and get a full snapshot.
pub const BASELINES_KEPT: usize = 8;

/// What framing a snapshot as a `ServerMessage` adds, for budgeting: the
/// field's key and a length prefix as long as a message of `budget` bytes
/// needs.
fn framing(budget: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(budget as u64)
}

/// The most one member costs in a snapshot (a whole entity state with
/// every field at its widest, and its framing).
const MAX_ENTRY_BYTES: usize = 64;

/// Bits of a packed sort key that hold the member's index.
const INDEX_BITS: u32 = 16;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// Priorities beyond this (entities over ~11 km away) tie, broken by
/// index: the key has 48 bits for them.
const MAX_PRIORITY: i64 = (1 << 47) - 1;

/// `by_id`: the members' indices in id order. Ids and indices are packed
/// into one integer and sorted as such when they fit (entity ids are
/// small), which is several times faster than sorting indices by a key
/// looked up in `members`.
fn sort_by_id(members: &[Candidate], keys: &mut Vec<u64>, by_id: &mut Vec<u32>) {
    by_id.clear();
    if members.iter().all(|m| m.id >> (64 - INDEX_BITS) == 0) {
        keys.clear();
        keys.extend(
            members
                .iter()
                .enumerate()
                .map(|(index, m)| m.id << INDEX_BITS | index as u64),
        );
        keys.sort_unstable();
        by_id.extend(keys.iter().map(|key| (key & INDEX_MASK) as u32));
    } else {
        by_id.extend(0..members.len() as u32);
        by_id.sort_unstable_by_key(|&i| members[i as usize].id);
    }
}

/// Snapshot fields the encoder writes (`proto::Snapshot`).
mod field {
    pub const ENTITIES: u32 = 5;
    pub const BASELINE: u32 = 6;
    pub const REMOVED: u32 = 7;
    pub const CHANGED: u32 = 8;
    pub const MOVES: u32 = 9;
}

/// A snapshot's entries as they are decided: written to `out` (entered and
/// changed entities) or gathered in `moves` (written last, as one packed
/// field), each costing exactly what it writes, within `budget`.
struct Entries<'a> {
    out: &'a mut Vec<u8>,
    moves: &'a mut Vec<u32>,
    used: usize,
    budget: usize,
}

impl Entries<'_> {
    /// What the packed moves field costs besides its numbers: its key and
    /// a length prefix as long as the longest it could need.
    fn moves_header(&self) -> usize {
        // The viewer's move goes over the budget by at most its 15 bytes.
        prost::encoding::key_len(field::MOVES)
            + prost::encoding::encoded_len_varint(self.budget as u64 + 15)
    }

    /// Adds a move of the baseline's entry `place` when it fits (the
    /// viewer's always goes).
    fn put_move(&mut self, place: u32, dx: i32, dy: i32, viewer: bool) -> bool {
        let numbers = [place, zigzag(dx), zigzag(dy)];
        let header = if self.moves.is_empty() {
            self.moves_header()
        } else {
            0
        };
        let cost = header
            + numbers
                .iter()
                .map(|&n| prost::encoding::encoded_len_varint(u64::from(n)))
                .sum::<usize>();
        let fits = self.used + cost <= self.budget || viewer;
        if fits {
            self.used += cost;
            self.moves.extend_from_slice(&numbers);
        }
        fits
    }

    /// Writes `entry` as field `tag` when it fits (the viewer's always
    /// goes): its length is worked out once, for the budget and the prefix
    /// alike.
    fn put<M: prost::Message>(&mut self, tag: u32, entry: &M, viewer: bool) -> bool {
        let len = entry.encoded_len();
        let cost =
            prost::encoding::key_len(tag) + prost::encoding::encoded_len_varint(len as u64) + len;
        let fits = self.used + cost <= self.budget || viewer;
        if fits {
            self.used += cost;
            prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, self.out);
            prost::encoding::encode_varint(len as u64, self.out);
            entry.encode_raw(self.out);
        }
        fits
    }

    /// Writes the gathered moves as one packed field.
    fn finish(self) {
        if self.moves.is_empty() {
            return;
        }
        let len: usize = self
            .moves
            .iter()
            .map(|&n| prost::encoding::encoded_len_varint(u64::from(n)))
            .sum();
        prost::encoding::encode_key(
            field::MOVES,
            prost::encoding::WireType::LengthDelimited,
            self.out,
        );
        prost::encoding::encode_varint(len as u64, self.out);
        for &n in self.moves.iter() {
            prost::encoding::encode_varint(u64::from(n), self.out);
        }
    }
}

/// Sends member `index` (whole if the baseline lacks it, as a move if it
/// only moved, else as a change, when it changed) when it fits; the viewer
/// (index 0) always goes.
fn decide(
    index: usize,
    members: &[Candidate],
    olds: &[Option<Known>],
    at: &[u32],
    entries: &mut Entries<'_>,
) -> Outcome {
    let candidate = &members[index];
    let viewer = index == 0;
    match &olds[index] {
        Some(old) => match diff(candidate.id, old, &candidate.seen) {
            None => Outcome::Old,
            Some(change) if change.flags == 0 => {
                if entries.put_move(at[index], change.dx_dm, change.dy_dm, viewer) {
                    Outcome::New
                } else {
                    Outcome::OldWaiting
                }
            }
            Some(change) if entries.put(field::CHANGED, &change, viewer) => Outcome::New,
            Some(_) => Outcome::OldWaiting,
        },
        None => {
            let state = candidate.seen.to_state(candidate.id);
            if entries.put(field::ENTITIES, &state, viewer) {
                Outcome::New
            } else {
                // Not in view yet: it enters when there is room.
                Outcome::AbsentWaiting
            }
        }
    }
}

/// Reads one id per 64 bytes of `entries` and folds them, so the reads
/// cannot be left out: about one read per cache line (a speed-up only; a
/// line it misses is read by the walk as before).
fn touch<T: Copy>(entries: &[(u64, T)]) -> u64 {
    let step = (64 / std::mem::size_of::<(u64, T)>()).max(1);
    entries
        .iter()
        .step_by(step)
        .fold(0, |folded, (id, _)| folded ^ id)
}

/// The least an entry for entity `id` can cost. One the baseline has
/// (`known`) costs at least a move's three one-byte numbers; one entering
/// costs its field key and length prefix, a byte each at least, and its id
/// (field 1 of the message; 0 is not written).
fn least_cost(id: u64, known: bool) -> usize {
    if known {
        3
    } else if id == 0 {
        2
    } else {
        3 + prost::encoding::encoded_len_varint(id)
    }
}

impl Baselines {
    /// The client has snapshot `id`.
    pub fn ack(&mut self, id: u32) {
        let newer = match self.acked {
            None => true,
            Some(current) => {
                let position = |wanted: u32| self.sent.iter().position(|(s, _)| *s == wanted);
                match (position(id), position(current)) {
                    (Some(new), Some(old)) => new > old,
                    (Some(_), None) => true,
                    _ => false,
                }
            }
        };
        if newer {
            self.acked = Some(id);
            // Views older than the acknowledged one can never be a baseline
            // again (acknowledgements only move forward): dropped now, a
            // client keeps about two views instead of eight, and the
            // encoder's working set over a thousand clients is that much
            // smaller. One becomes the buffer of the next view.
            let at = self.sent.iter().position(|(sent, _)| *sent == id);
            for _ in 0..at.unwrap_or(0) {
                if let Some((_, old)) = self.sent.pop_front()
                    && self.spare.capacity() == 0
                {
                    self.spare = old;
                }
            }
        }
    }

    fn base(&self) -> Option<(u32, &SentView)> {
        let acked = self.acked?;
        self.sent
            .iter()
            .find(|(id, _)| *id == acked)
            .map(|(id, view)| (*id, view))
    }

    /// Snapshot `id`'s entities: against the acknowledged view when there is
    /// one, within `budget` bytes. `candidates`: the viewer first, then the
    /// entities in reach, at most `max_entities` in all (the first ones).
    /// Appends to `out` the encoded `proto::Snapshot` fields `baseline`,
    /// `entities`, `removed`, `changed` and `moves`, written as decided, so
    /// no entry is encoded twice. `out` holds the snapshot's other fields
    /// (id, tick, avatar, sequence), written first: they count against the
    /// budget as they are, with the framing.
    pub fn encode(
        &mut self,
        id: u32,
        candidates: &[Candidate],
        max_entities: usize,
        budget: usize,
        out: &mut Vec<u8>,
    ) {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            self.encode_with(id, candidates, max_entities, budget, out, &mut scratch);
        });
    }

    fn encode_with(
        &mut self,
        id: u32,
        candidates: &[Candidate],
        max_entities: usize,
        budget: usize,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) {
        let mut view = std::mem::take(&mut self.spare);
        let mut waiting = std::mem::take(&mut self.spare_waiting);
        let empty = SentView::new();
        let (baseline, base) = self.base().map_or((0, &empty), |(b, v)| (b, v));
        // One client's memory of a thousand, last touched a tick or more
        // ago, is out of the cache. Reading a word of each cache line of
        // it now, in a loop of independent loads, brings it in many lines
        // at a time, where the walks below would wait for one line after
        // another. The buffers about to be overwritten come in too.
        std::hint::black_box(touch(base) ^ touch(&self.waiting) ^ touch(&view) ^ touch(&waiting));
        view.clear();
        waiting.clear();
        if baseline != 0 {
            prost::encoding::uint32::encode(field::BASELINE, &baseline, out);
        }
        // A view is far smaller than the index bits of a sort key allow.
        let members = &candidates[..candidates
            .len()
            .min(max_entities)
            .min(INDEX_MASK as usize + 1)];
        let Scratch {
            by_id,
            olds,
            at,
            moves,
            waits,
            keys,
            outcome,
            removed,
        } = scratch;
        removed.clear();
        sort_by_id(members, keys, by_id);
        // One walk in id order over the members, the baseline and the
        // waiting list (all sorted by id): each member's old state and how
        // long its change has waited, and the baseline's leavers.
        olds.clear();
        olds.resize(members.len(), None);
        at.clear();
        at.resize(members.len(), 0);
        waits.clear();
        waits.resize(members.len(), 0);
        let (mut b, mut w) = (0, 0);
        for &index in by_id.iter() {
            let member = members[index as usize].id;
            // Leavers first: cheap, and a stale entity is worse than none.
            while b < base.len() && base[b].0 < member {
                removed.push(base[b].0);
                b += 1;
            }
            if b < base.len() && base[b].0 == member {
                olds[index as usize] = Some(base[b].1);
                at[index as usize] = b as u32;
                b += 1;
            }
            // Past entries of entities no longer in view (rare), then a
            // hit or a miss taken without a branch: in a crowd over the
            // budget about two members in three wait, in no order a
            // branch predictor could learn.
            while w < self.waiting.len() && self.waiting[w].0 < member {
                w += 1;
            }
            let (waited, ticks) = self.waiting.get(w).copied().unwrap_or((u64::MAX, 0));
            let hit = waited == member;
            waits[index as usize] = if hit { ticks } else { 0 };
            w += usize::from(hit);
        }
        removed.extend(base[b..].iter().map(|(old, _)| *old));
        if !removed.is_empty() {
            prost::encoding::uint64::encode_packed(field::REMOVED, removed, out);
        }
        let used = framing(budget) + out.len();
        outcome.clear();
        outcome.resize(members.len(), Outcome::Absent);
        moves.clear();
        let written_before = out.len();
        let mut entries = Entries {
            out,
            moves,
            used,
            budget,
        };
        // When every member surely fits, priority changes nothing but the
        // order on the wire, and the sort is skipped (a crowd over the
        // budget goes straight to the sort: trying first would encode the
        // members that fit twice).
        let mut fits =
            members.len() * MAX_ENTRY_BYTES + entries.moves_header() <= budget.saturating_sub(used);
        if fits {
            for (index, slot) in outcome.iter_mut().enumerate() {
                match decide(index, members, olds, at, &mut entries) {
                    // The bound was wrong; the sort below still decides.
                    Outcome::OldWaiting | Outcome::AbsentWaiting => {
                        fits = false;
                        break;
                    }
                    decided => *slot = decided,
                }
            }
        }
        if !fits {
            entries.out.truncate(written_before);
            entries.moves.clear();
            entries.used = used;
            // By priority: distance, shrunk by how long a change has
            // waited; the viewer first. Priority and index packed in one
            // integer sort several times faster than as a pair.
            keys.clear();
            keys.extend(members.iter().enumerate().map(|(index, c)| {
                let priority = if index == 0 {
                    0
                } else {
                    (c.distance_sq.max(0) >> waits[index].min(30)).min(MAX_PRIORITY) as u64 + 1
                };
                priority << INDEX_BITS | index as u64
            }));
            keys.sort_unstable();
            for &key in keys.iter() {
                let index = (key & INDEX_MASK) as usize;
                let member = &members[index];
                let least = least_cost(member.id, olds[index].is_some());
                outcome[index] = if index != 0 && entries.used + least > budget {
                    // Nothing of it can fit: only whether it waits is
                    // worked out (most of a crowd, once the budget is
                    // spent), not the entry it cannot send.
                    match &olds[index] {
                        Some(old) if *old == Known::from(&member.seen) => Outcome::Old,
                        Some(_) => Outcome::OldWaiting,
                        None => Outcome::AbsentWaiting,
                    }
                } else {
                    decide(index, members, olds, at, &mut entries)
                };
            }
        }
        entries.finish();
        // The view and the waiting list, in id order as they are kept.
        for &index in by_id.iter() {
            let index = index as usize;
            let member = &members[index];
            match outcome[index] {
                Outcome::New => view.push((member.id, Known::from(&member.seen))),
                Outcome::Old | Outcome::OldWaiting => {
                    if let Some(old) = olds[index] {
                        view.push((member.id, old));
                    }
                }
                Outcome::Absent | Outcome::AbsentWaiting => {}
            }
            if matches!(outcome[index], Outcome::OldWaiting | Outcome::AbsentWaiting) {
                waiting.push((member.id, waits[index] + 1));
            }
        }
        self.spare_waiting = std::mem::replace(&mut self.waiting, waiting);
        self.sent.push_back((id, view));
        while self.sent.len() > BASELINES_KEPT {
            if let Some((_, old)) = self.sent.pop_front() {
                self.spare = old;
            }
        }
    }

    /// The view recorded for snapshot `id` (tests).
    #[cfg(test)]
    pub(super) fn view(&self, id: u32) -> Option<&SentView> {
        self.sent.iter().find(|(s, _)| *s == id).map(|(_, v)| v)
    }

    /// The acknowledged snapshot and the view recorded for it, while it
    /// is a baseline (tests).
    #[cfg(test)]
    pub(super) fn acked_view(&self) -> Option<(u32, &SentView)> {
        self.base()
    }
}
