//! Movement: steering intents become positions inside the world's bounds.

use bevy_app::{App, Plugin};
use bevy_ecs::{
    change_detection::DetectChangesMut,
    component::Component,
    schedule::IntoScheduleConfigs,
    system::{Query, Res, ResMut},
};
use serde::{Deserialize, Serialize};

use crate::{
    combat::components::Health,
    hash::{StableHasher, StateHash},
    input::{Inbox, Input},
    output::{Outbox, Rejection},
    players::{PlayerIndex, apply_presence},
    schedule::{TickSchedule, TickSystems},
    state_hash::AppStateHashExt,
    world::WorldSpec,
};

/// Where an entity stands, in millimetres from the world's origin corner.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// East.
    pub x: i32,
    /// North.
    pub y: i32,
}

/// The direction an entity is steering in (any length; zero stands still).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveIntent {
    /// x component.
    pub dir_x: i16,
    /// y component.
    pub dir_y: i16,
}

/// Ground speed, millimetres per tick.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Speed(pub u32);

/// The newest input sequence applied for this avatar, echoed to its client
/// so it can reconcile its prediction.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastInputSeq(pub u32);

macro_rules! hash_fields {
    ($t:ty => $($field:tt),+) => {
        impl StateHash for $t {
            fn hash_state(&self, hasher: &mut StableHasher) {
                $( self.$field.hash_state(hasher); )+
            }
        }
    };
}
hash_fields!(Position => x, y);
hash_fields!(MoveIntent => dir_x, dir_y);
hash_fields!(Speed => 0);
hash_fields!(LastInputSeq => 0);

/// Applies `Move` inputs and integrates positions every tick.
#[derive(Debug, Clone, Default)]
pub struct MovementPlugin;

impl Plugin for MovementPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            TickSchedule,
            apply_move_inputs
                .after(apply_presence)
                .in_set(TickSystems::Input),
        )
        .add_systems(TickSchedule, integrate.in_set(TickSystems::Movement))
        .hash_component::<Position>()
        .hash_component::<MoveIntent>()
        .hash_component::<Speed>()
        .hash_component::<LastInputSeq>();
    }
}

/// Stores each player's newest steering intent; stale sequences are ignored.
pub fn apply_move_inputs(
    inbox: Res<Inbox>,
    index: Res<PlayerIndex>,
    mut avatars: Query<(&mut MoveIntent, &mut LastInputSeq, &Health)>,
    mut outbox: ResMut<Outbox>,
) {
    let cutoffs = inbox.presence_cutoffs();
    for (position, envelope) in inbox.pending().iter().enumerate() {
        let Input::Move { seq, dir_x, dir_y } = envelope.input else {
            continue;
        };
        if let Some(cut) = cutoffs
            .get(&envelope.player)
            .filter(|cut| cut.skips(position))
        {
            if let Some(reason) = cut.refusal() {
                outbox.reject(envelope.player, envelope.request, reason);
            }
            continue;
        }
        let Some((mut intent, mut last_seq, health)) = index
            .get(envelope.player)
            .and_then(|entity| avatars.get_mut(entity).ok())
        else {
            outbox.reject(envelope.player, envelope.request, Rejection::NotJoined);
            continue;
        };
        if !health.alive() {
            outbox.reject(envelope.player, envelope.request, Rejection::Dead);
            continue;
        }
        // Unreliable delivery reorders and duplicates: only newer inputs count.
        if seq <= last_seq.0 {
            continue;
        }
        last_seq.0 = seq;
        intent.set_if_neq(MoveIntent { dir_x, dir_y });
    }
}

/// One step of `speed` along the normalised intent, clamped to the bounds.
pub fn step_position(
    position: Position,
    intent: MoveIntent,
    speed: u32,
    spec: &WorldSpec,
) -> Position {
    // Work at 2^16 finer resolution and round the length up, so truncation
    // can only ever make a step shorter than `speed`, never longer.
    let (dx, dy) = (
        i128::from(intent.dir_x) << 16,
        i128::from(intent.dir_y) << 16,
    );
    let squared = dx * dx + dy * dy;
    if squared == 0 {
        return position;
    }
    let mut length = squared.isqrt();
    if length * length < squared {
        length += 1;
    }
    let speed = i128::from(speed);
    let x = i128::from(position.x) + dx * speed / length;
    let y = i128::from(position.y) + dy * speed / length;
    Position {
        x: x.clamp(0, i128::from(spec.width)) as i32,
        y: y.clamp(0, i128::from(spec.height)) as i32,
    }
}

/// Moves every steering entity.
pub fn integrate(
    spec: Res<WorldSpec>,
    mut movers: Query<(&mut Position, &MoveIntent, &Speed, &Health)>,
) {
    for (mut position, intent, speed, health) in &mut movers {
        if !health.alive() {
            continue;
        }
        let next = step_position(*position, *intent, speed.0, &spec);
        position.set_if_neq(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec() -> WorldSpec {
        WorldSpec {
            width: 10_000,
            height: 5_000,
            ..WorldSpec::default()
        }
    }

    #[test]
    fn diagonal_moves_at_the_same_speed_as_straight() {
        let from = Position { x: 5_000, y: 2_500 };
        let straight = step_position(
            from,
            MoveIntent {
                dir_x: 100,
                dir_y: 0,
            },
            1_000,
            &spec(),
        );
        let diagonal = step_position(
            from,
            MoveIntent {
                dir_x: 100,
                dir_y: 100,
            },
            1_000,
            &spec(),
        );
        assert_eq!(straight, Position { x: 6_000, y: 2_500 });
        // 1000 / sqrt(2) = 707.1, rounded toward zero.
        assert_eq!(diagonal, Position { x: 5_707, y: 3_207 });
    }

    #[test]
    fn a_long_direction_vector_does_not_speed_up() {
        let from = Position { x: 5_000, y: 2_500 };
        let short = step_position(from, MoveIntent { dir_x: 1, dir_y: 0 }, 300, &spec());
        let long = step_position(
            from,
            MoveIntent {
                dir_x: i16::MAX,
                dir_y: 0,
            },
            300,
            &spec(),
        );
        assert_eq!(short, long);
    }

    proptest! {
        #[test]
        fn a_step_never_exceeds_the_speed(dx: i16, dy: i16, speed in 0u32..1_000_000) {
            let big = WorldSpec { width: i32::MAX, height: i32::MAX, ..WorldSpec::default() };
            let from = Position { x: 1 << 30, y: 1 << 30 };
            let to = step_position(from, MoveIntent { dir_x: dx, dir_y: dy }, speed, &big);
            let (mx, my) = (i128::from(to.x - from.x), i128::from(to.y - from.y));
            prop_assert!(mx * mx + my * my <= i128::from(speed) * i128::from(speed));
        }

        #[test]
        fn never_leaves_the_world(x in 0i32..=10_000, y in 0i32..=5_000, dx: i16, dy: i16, speed in 0u32..1_000_000) {
            let next = step_position(Position { x, y }, MoveIntent { dir_x: dx, dir_y: dy }, speed, &spec());
            prop_assert!((0..=10_000).contains(&next.x) && (0..=5_000).contains(&next.y));
        }
    }
}
