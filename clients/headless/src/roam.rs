//! The `roam` behaviour: walk to a random waypoint, pick another, repeat.

use tessera_sim::{Input, movement::Position, rng::SimRng};

/// Steers toward random waypoints inside a `width` x `height` area.
#[derive(Clone, Debug)]
pub struct Roam {
    rng: SimRng,
    origin: Position,
    width: i32,
    height: i32,
    waypoint: Position,
    arrive_within: i32,
    seq: u32,
}

impl Roam {
    /// A roamer seeded by `seed`; it counts a waypoint reached within `arrive_within` mm.
    pub fn new(seed: u64, width: i32, height: i32, arrive_within: i32) -> Self {
        let mut rng = SimRng::from_seed(seed);
        let waypoint = Position {
            x: rng.range_i32(0, width),
            y: rng.range_i32(0, height),
        };
        Self {
            rng,
            origin: Position::default(),
            width,
            height,
            waypoint,
            arrive_within,
            seq: 0,
        }
    }

    /// A roamer that stays within `radius` mm (a square) of `centre`.
    pub fn around(seed: u64, centre: Position, radius: i32, arrive_within: i32) -> Self {
        let mut roam = Self::new(seed, 2 * radius, 2 * radius, arrive_within);
        roam.origin = Position {
            x: centre.x - radius,
            y: centre.y - radius,
        };
        roam.waypoint.x += roam.origin.x;
        roam.waypoint.y += roam.origin.y;
        roam
    }

    /// The waypoint being walked to.
    pub fn waypoint(&self) -> Position {
        self.waypoint
    }

    /// The input to send given where the avatar is now.
    pub fn next_input(&mut self, at: Position) -> Input {
        let (dx, dy) = (
            i64::from(self.waypoint.x) - i64::from(at.x),
            i64::from(self.waypoint.y) - i64::from(at.y),
        );
        if dx.abs() <= i64::from(self.arrive_within) && dy.abs() <= i64::from(self.arrive_within) {
            self.waypoint = Position {
                x: self.origin.x + self.rng.range_i32(0, self.width),
                y: self.origin.y + self.rng.range_i32(0, self.height),
            };
        }
        let (dx, dy) = (
            i64::from(self.waypoint.x) - i64::from(at.x),
            i64::from(self.waypoint.y) - i64::from(at.y),
        );
        // Scale into i16 while keeping the direction.
        let scale = dx.abs().max(dy.abs()).max(1);
        self.seq += 1;
        Input::Move {
            seq: self.seq,
            dir_x: (dx * i64::from(i16::MAX) / scale) as i16,
            dir_y: (dy * i64::from(i16::MAX) / scale) as i16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_sim::{PlayerId, SimWorld, WorldSpec, players::PlayerIndex};

    fn position(world: &SimWorld, player: PlayerId) -> Position {
        let entity = world.world().resource::<PlayerIndex>().get(player).unwrap();
        *world.world().get::<Position>(entity).unwrap()
    }

    #[test]
    fn a_roamer_reaches_several_waypoints_in_a_real_world() {
        let spec = WorldSpec {
            width: 50_000,
            height: 50_000,
            ..WorldSpec::default()
        };
        let mut world = SimWorld::new(spec).unwrap();
        let player = PlayerId(1);
        world.push_input(
            player,
            Input::Join {
                class: "warrior".into(),
            },
        );
        world.step();
        let mut roam = Roam::new(3, 50_000, 50_000, 300);
        let mut reached = 0;
        let mut waypoint = roam.waypoint();
        for _ in 0..2_000 {
            let input = roam.next_input(position(&world, player));
            if roam.waypoint() != waypoint {
                reached += 1;
                waypoint = roam.waypoint();
            }
            world.push_input(player, input);
            world.step();
        }
        assert!(reached >= 3, "reached only {reached} waypoints");
    }
}
