//! Frame sync (lockstep rooms): what travels, and how a bundle becomes sim
//! inputs on both ends.
//!
//! A bundle is every input of one frame, in the order the sim applies it:
//! joins and leaves as they arrived, then one command per member in player
//! order. Server and clients turn a bundle into inputs with the same
//! [`Bundle::inputs`], push them and step the same `sim`, so equal bundles
//! give equal state hashes. The relay that builds bundles on the server is
//! [`crate::relay`].

use serde::{Deserialize, Serialize};
use tessera_sim::{Checkpoint, Input, PlayerId, SkillTarget, WorldSpec};

use crate::{
    codec::{DecodeError, direction, skill_target, wire_id},
    proto,
};

/// Commands one uplink may carry (a client repeats its last few frames).
pub const MAX_UPLINK_COMMANDS: usize = 16;

/// One player's command for one frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameCommand {
    /// The frame it is for.
    pub frame: u64,
    /// Movement direction (0, 0 = stand).
    pub dir: (i16, i16),
    /// A skill used on this frame.
    pub skill: Option<(String, SkillTarget)>,
}

impl FrameCommand {
    fn decode(command: proto::FrameCommand) -> Result<Self, DecodeError> {
        let skill = match command.skill {
            Some(skill) => Some((
                wire_id(skill.skill, "skill id")?,
                skill_target(skill.target)?,
            )),
            None => None,
        };
        Ok(Self {
            frame: command.frame,
            dir: (direction(command.dir_x)?, direction(command.dir_y)?),
            skill,
        })
    }

    /// The wire form.
    pub fn encode(&self) -> proto::FrameCommand {
        proto::FrameCommand {
            frame: self.frame,
            dir_x: i32::from(self.dir.0),
            dir_y: i32::from(self.dir.1),
            skill: self.skill.as_ref().map(|(skill, target)| proto::UseSkill {
                skill: skill.clone(),
                target: Some(encode_target(target)),
            }),
        }
    }
}

fn encode_target(target: &SkillTarget) -> proto::SkillTarget {
    use proto::skill_target::Kind;
    proto::SkillTarget {
        kind: Some(match target {
            SkillTarget::Entity(id) => Kind::Entity(id.0),
            SkillTarget::Point { x, y } => Kind::Point(proto::Vec2 { x: *x, y: *y }),
            SkillTarget::Caster => Kind::Caster(proto::Empty {}),
        }),
    }
}

/// A client's frame-sync message, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uplink {
    /// Its commands, for some recent and coming frames.
    pub commands: Vec<FrameCommand>,
    /// Every bundle up to this frame has arrived.
    pub ack: u64,
    /// A frame the client simulated and its state hash there.
    pub hash: Option<(u64, u64)>,
}

impl Uplink {
    /// Validates the wire form.
    pub fn decode(uplink: proto::FrameUplink) -> Result<Self, DecodeError> {
        if uplink.commands.len() > MAX_UPLINK_COMMANDS {
            return Err(DecodeError::Invalid("more than 16 frame commands"));
        }
        Ok(Self {
            commands: uplink
                .commands
                .into_iter()
                .map(FrameCommand::decode)
                .collect::<Result<_, _>>()?,
            ack: uplink.ack,
            hash: (uplink.hash_frame != 0).then_some((uplink.hash_frame, uplink.hash)),
        })
    }

    /// The wire form.
    pub fn encode(&self) -> proto::FrameUplink {
        let (hash_frame, hash) = self.hash.unwrap_or((0, 0));
        proto::FrameUplink {
            commands: self.commands.iter().map(FrameCommand::encode).collect(),
            ack: self.ack,
            hash_frame,
            hash,
        }
    }
}

/// What a bundle says one player did on its frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BundleInput {
    /// Joined with this class.
    Join(String),
    /// Left.
    Leave,
    /// Moved and maybe used a skill.
    Command(FrameCommand),
}

/// Every input of one frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The frame: the sim tick these inputs are applied on.
    pub frame: u64,
    /// In the order the sim applies them.
    pub inputs: Vec<(PlayerId, BundleInput)>,
    /// The server's state hash after this frame, when it was checked (else 0).
    pub hash: u64,
}

impl Bundle {
    /// The sim inputs, in order. A command moves with the frame as its
    /// sequence (so a repeated direction is a new input, not a duplicate).
    pub fn inputs(&self) -> Vec<(PlayerId, Input)> {
        let mut out = Vec::with_capacity(self.inputs.len() + 1);
        for (player, input) in &self.inputs {
            match input {
                BundleInput::Join(class) => out.push((
                    *player,
                    Input::Join {
                        class: class.clone(),
                    },
                )),
                BundleInput::Leave => out.push((*player, Input::Leave)),
                BundleInput::Command(command) => {
                    out.push((
                        *player,
                        Input::Move {
                            seq: u32::try_from(self.frame).unwrap_or(u32::MAX),
                            dir_x: command.dir.0,
                            dir_y: command.dir.1,
                        },
                    ));
                    if let Some((skill, target)) = &command.skill {
                        out.push((
                            *player,
                            Input::UseSkill {
                                skill: skill.clone(),
                                target: *target,
                            },
                        ));
                    }
                }
            }
        }
        out
    }

    /// The wire form.
    pub fn encode(&self) -> proto::FrameBundle {
        use proto::frame_input::Kind;
        proto::FrameBundle {
            frame: self.frame,
            inputs: self
                .inputs
                .iter()
                .map(|(player, input)| proto::FrameInput {
                    player: player.0,
                    kind: Some(match input {
                        BundleInput::Join(class) => Kind::Join(class.clone()),
                        BundleInput::Leave => Kind::Leave(proto::Empty {}),
                        BundleInput::Command(command) => Kind::Command(command.encode()),
                    }),
                })
                .collect(),
            hash: self.hash,
        }
    }

    /// Reads the wire form (clients).
    pub fn decode(bundle: proto::FrameBundle) -> Result<Self, DecodeError> {
        use proto::frame_input::Kind;
        let inputs = bundle
            .inputs
            .into_iter()
            .map(|input| {
                let kind = match input.kind.ok_or(DecodeError::Missing("frame input"))? {
                    Kind::Join(class) => BundleInput::Join(wire_id(class, "class id")?),
                    Kind::Leave(_) => BundleInput::Leave,
                    Kind::Command(command) => BundleInput::Command(FrameCommand::decode(command)?),
                };
                Ok((PlayerId(input.player), kind))
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(Self {
            frame: bundle.frame,
            inputs,
            hash: bundle.hash,
        })
    }
}

/// What a client needs to reach a room's current state (late join,
/// reconnect, resync): the newest checkpoint of the room's world and the
/// bundles after it; before the first checkpoint, every bundle from frame 1.
/// Sent rmp-serde encoded in a `FrameCatchUp`.
///
/// Fields are encoded as an array in this order: new ones go at the end
/// with `#[serde(default)]`, so a catch-up from an older server still reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The room's world.
    pub spec: WorldSpec,
    /// Content hash of the tables it runs on (the client must have the same).
    pub tables_hash: String,
    /// The bundles after the checkpoint (from frame 1 without one), in order.
    pub bundles: Vec<Bundle>,
    /// The room's world after frame `checkpoint.tick()`: build the sim from
    /// it, then run the bundles. `None`: run every bundle from frame 1.
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
}

impl History {
    /// The frame the bundles follow on from (0 without a checkpoint).
    pub fn start(&self) -> u64 {
        self.checkpoint.as_ref().map_or(0, Checkpoint::tick)
    }

    /// Whether the bundles are exactly frames `start() + 1 ..`, in order.
    pub fn is_contiguous(&self) -> bool {
        self.bundles
            .iter()
            .zip(self.start() + 1..)
            .all(|(bundle, frame)| bundle.frame == frame)
    }

    /// Encodes for a `FrameCatchUp`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec(self)
    }

    /// Decodes a `FrameCatchUp`'s `history` bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn command(frame: u64, dir: (i16, i16)) -> FrameCommand {
        FrameCommand {
            frame,
            dir,
            skill: None,
        }
    }

    #[test]
    fn a_bundle_round_trips_and_becomes_the_same_inputs() {
        let bundle = Bundle {
            frame: 7,
            inputs: vec![
                (PlayerId(3), BundleInput::Join("mage".into())),
                (PlayerId(1), BundleInput::Command(command(7, (1, -1)))),
                (
                    PlayerId(2),
                    BundleInput::Command(FrameCommand {
                        frame: 7,
                        dir: (0, 0),
                        skill: Some(("fireball".into(), SkillTarget::Point { x: 5, y: 6 })),
                    }),
                ),
                (PlayerId(4), BundleInput::Leave),
            ],
            hash: 99,
        };
        let back = Bundle::decode(bundle.encode()).unwrap();
        assert_eq!(back, bundle);
        let inputs = bundle.inputs();
        assert_eq!(inputs.len(), 5, "the skill adds an input: {inputs:?}");
        assert_eq!(
            inputs[1],
            (
                PlayerId(1),
                Input::Move {
                    seq: 7,
                    dir_x: 1,
                    dir_y: -1
                }
            )
        );
    }

    #[test]
    fn an_uplink_with_too_many_commands_is_refused() {
        let uplink = Uplink {
            commands: (0..17).map(|f| command(f, (0, 1))).collect(),
            ack: 0,
            hash: None,
        };
        assert!(Uplink::decode(uplink.encode()).is_err());
        let fine = Uplink {
            commands: (0..16).map(|f| command(f, (0, 1))).collect(),
            ack: 3,
            hash: Some((30, 12345)),
        };
        assert_eq!(Uplink::decode(fine.encode()).unwrap(), fine);
    }

    #[test]
    fn a_history_from_before_checkpoints_still_reads() {
        // The layout servers sent before `checkpoint` was added.
        #[derive(Serialize)]
        struct Old {
            spec: WorldSpec,
            tables_hash: String,
            bundles: Vec<Bundle>,
        }
        let bundles = vec![
            Bundle {
                frame: 1,
                inputs: vec![(PlayerId(1), BundleInput::Join("mage".into()))],
                hash: 0,
            },
            Bundle {
                frame: 2,
                ..Bundle::default()
            },
        ];
        let old = Old {
            spec: WorldSpec::default(),
            tables_hash: "abc".into(),
            bundles: bundles.clone(),
        };
        let history = History::from_bytes(&rmp_serde::to_vec(&old).unwrap()).unwrap();
        assert_eq!(
            history,
            History {
                spec: WorldSpec::default(),
                tables_hash: "abc".into(),
                bundles,
                checkpoint: None,
            }
        );
        assert_eq!(history.start(), 0);
        assert!(history.is_contiguous());
    }

    proptest! {
        #[test]
        fn any_bytes_are_a_history_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = History::from_bytes(&bytes);
        }
    }
}
