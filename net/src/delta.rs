//! Snapshot deltas: what a client knows ([`View`]), how the server encodes
//! a snapshot against the last view the client acknowledged, within a byte
//! budget, and how a client rebuilds the full view.
//!
//! A snapshot names its `baseline` (0: none, a full snapshot). Against a
//! baseline it carries entities that entered the view whole, `removed` ids
//! that left it, `changed` entries with position moves (decimetres,
//! relative) and whatever else changed, and, for entities that only moved,
//! their place in the baseline and the move in a packed `moves` list.
//! Entities with nothing new cost nothing. When the budget runs out, what
//! did not fit keeps its old state in the view the server records for that
//! snapshot, so the next delta still diffs against what the client really
//! has; entries waiting longer gain priority, so nothing in view starves.

use crate::proto;

mod baselines;
#[cfg(test)]
mod tests;

pub use baselines::{BASELINES_KEPT, Baselines, Candidate};

/// What a client knows of one entity, at wire precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Player or NPC (`proto::EntityKind`).
    pub kind: i32,
    /// Position, decimetres.
    pub x_dm: i32,
    /// Position, decimetres.
    pub y_dm: i32,
    /// Hit points.
    pub hp: u32,
    /// Maximum hit points.
    pub max_hp: u32,
    /// Dead (waiting to respawn).
    pub dead: bool,
    /// The owning player (0: an NPC).
    pub player: u64,
}

impl Seen {
    /// From a full entity state.
    pub fn from_state(state: &proto::EntityState) -> Self {
        Self {
            kind: state.kind,
            x_dm: state.x_dm,
            y_dm: state.y_dm,
            hp: state.hp,
            max_hp: state.max_hp,
            dead: state.dead,
            player: state.player,
        }
    }

    /// The full entity state.
    pub fn to_state(self, id: u64) -> proto::EntityState {
        proto::EntityState {
            id,
            kind: self.kind,
            x_dm: self.x_dm,
            y_dm: self.y_dm,
            hp: self.hp,
            max_hp: self.max_hp,
            dead: self.dead,
            player: self.player,
        }
    }
}

/// What a client knows: each entity's id and state, sorted by id (a
/// client rebuilds one per snapshot from an older one, and copying a
/// vector is far cheaper than cloning a tree).
pub type View = Vec<(u64, Seen)>;

/// What `view` knows of entity `id`.
pub fn lookup(view: &View, id: u64) -> Option<&Seen> {
    view.binary_search_by_key(&id, |(e, _)| *e)
        .ok()
        .map(|at| &view[at].1)
}

/// Flags of [`proto::EntityDelta::flags`]: which absolute fields are set.
pub mod flags {
    /// `hp` changed.
    pub const HP: u32 = 1;
    /// `max_hp` changed.
    pub const MAX_HP: u32 = 2;
    /// `dead` changed.
    pub const DEAD: u32 = 4;
}

/// A snapshot that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// Its baseline is not among the views kept.
    #[error("baseline {0} is unknown")]
    UnknownBaseline(u32),
    /// A change for an entity the baseline does not have.
    #[error("change for entity {0}, which the baseline does not have")]
    UnknownEntity(u64),
    /// A move for an index past the end of the baseline view.
    #[error("move for index {0}, past the end of the baseline")]
    UnknownIndex(u32),
    /// Moves that are not whole (index, x, y) triples.
    #[error("{0} move numbers are not whole triples")]
    PartialMove(usize),
}

/// Zigzag encoding (sint32's): small movements either way take one byte.
pub(crate) fn zigzag(value: i32) -> u32 {
    ((value << 1) ^ (value >> 31)) as u32
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(value: u32) -> i32 {
    (value >> 1) as i32 ^ -((value & 1) as i32)
}

/// The ids of the entities `snapshot` brings news of (entered, changed or
/// moved), `base` being the view of its baseline: for a client that
/// interpolates, or counts how fresh its view is.
pub fn updated(base: Option<&View>, snapshot: &proto::Snapshot) -> Vec<u64> {
    let moved = snapshot.moves.chunks_exact(3).filter_map(|triple| {
        base.and_then(|view| view.get(triple[0] as usize))
            .map(|(id, _)| *id)
    });
    snapshot
        .entities
        .iter()
        .map(|e| e.id)
        .chain(snapshot.changed.iter().map(|c| c.id))
        .chain(moved)
        .collect()
}

/// Rebuilds the view `snapshot` describes; `base` is the view of its
/// baseline (ignored for a full snapshot).
pub fn apply(base: Option<&View>, snapshot: &proto::Snapshot) -> Result<View, DeltaError> {
    let mut view = if snapshot.baseline == 0 {
        View::with_capacity(snapshot.entities.len())
    } else {
        base.ok_or(DeltaError::UnknownBaseline(snapshot.baseline))?
            .clone()
    };
    // Moves name entities by their place in the baseline: before anything
    // leaves or enters it.
    if !snapshot.moves.len().is_multiple_of(3) {
        return Err(DeltaError::PartialMove(snapshot.moves.len()));
    }
    for triple in snapshot.moves.chunks_exact(3) {
        let (_, seen) = view
            .get_mut(triple[0] as usize)
            .ok_or(DeltaError::UnknownIndex(triple[0]))?;
        seen.x_dm = seen.x_dm.wrapping_add(unzigzag(triple[1]));
        seen.y_dm = seen.y_dm.wrapping_add(unzigzag(triple[2]));
    }
    if !snapshot.removed.is_empty() {
        view.retain(|(id, _)| !snapshot.removed.contains(id));
    }
    for state in &snapshot.entities {
        let seen = Seen::from_state(state);
        match view.binary_search_by_key(&state.id, |(id, _)| *id) {
            Ok(at) => view[at].1 = seen,
            Err(at) => view.insert(at, (state.id, seen)),
        }
    }
    for change in &snapshot.changed {
        let at = view
            .binary_search_by_key(&change.id, |(id, _)| *id)
            .map_err(|_| DeltaError::UnknownEntity(change.id))?;
        let seen = &mut view[at].1;
        seen.x_dm = seen.x_dm.wrapping_add(change.dx_dm);
        seen.y_dm = seen.y_dm.wrapping_add(change.dy_dm);
        if change.flags & flags::HP != 0 {
            seen.hp = change.hp;
        }
        if change.flags & flags::MAX_HP != 0 {
            seen.max_hp = change.max_hp;
        }
        if change.flags & flags::DEAD != 0 {
            seen.dead = change.dead;
        }
    }
    Ok(view)
}
